//! Mutation fuzzer for `Model::decode` that runs on stable Rust (see
//! `tests/it/fuzz.rs` for what it mutates and checks).
//!
//! ```sh
//! cargo run --profile fuzz -p infera-kernels --example fuzz-decode -- --seconds 60 [--seed N]
//! cargo run --profile fuzz -p infera-kernels --example fuzz-decode -- --reproduce FILE
//! ```
//!
//! The `fuzz` profile is release with overflow checks and debug assertions, so
//! an integer overflow is a failure rather than a silent wrap. On a failure the
//! input is written to `--crash-dir` (default `target/fuzz-crashes`), the seed
//! and iteration are printed, and the exit status is 1.

#[path = "../tests/it/cases.rs"]
mod cases;
#[path = "../tests/it/fuzz.rs"]
mod fuzz;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: fuzz-decode [--seconds N] [--iterations N] [--seed N] \
[--crash-dir DIR] [--run-budget OPS] | --reproduce FILE";

fn main() -> ExitCode {
    let mut opts = fuzz::Options {
        seed: 0,
        max_iterations: u64::MAX,
        max_time: Some(Duration::from_secs(60)),
        crash_dir: Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/fuzz-crashes"
        ))),
        run_budget: 1 << 20,
        report_every: Some(Duration::from_secs(10)),
    };
    let mut reproduce = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        let parsed: Result<(), String> = (|| {
            match a.as_str() {
                "--seconds" => {
                    let s: u64 = value()?.parse().map_err(|e| format!("--seconds: {e}"))?;
                    opts.max_time = Some(Duration::from_secs(s));
                }
                "--iterations" => {
                    opts.max_iterations =
                        value()?.parse().map_err(|e| format!("--iterations: {e}"))?;
                    opts.max_time = None;
                }
                "--seed" => opts.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
                "--crash-dir" => opts.crash_dir = Some(PathBuf::from(value()?)),
                "--run-budget" => {
                    opts.run_budget = value()?.parse().map_err(|e| format!("--run-budget: {e}"))?
                }
                "--reproduce" => reproduce = Some(PathBuf::from(value()?)),
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument {other}")),
            }
            Ok(())
        })();
        if let Err(e) = parsed {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }

    if let Some(path) = reproduce {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        return match fuzz::guarded(&bytes, 0, opts.run_budget) {
            Ok((Ok(m), ran)) => {
                println!(
                    "decodes: {} nodes, cost {:?}, ran: {ran}",
                    m.nodes().len(),
                    m.cost()
                );
                ExitCode::SUCCESS
            }
            Ok((Err(e), _)) => {
                println!("error: {e}");
                ExitCode::SUCCESS
            }
            Err(msg) => {
                println!("PANIC: {msg}");
                ExitCode::from(1)
            }
        };
    }

    // Panics are caught and reported once, with the input; the default hook
    // would print every one with a backtrace note.
    std::panic::set_hook(Box::new(|_| {}));
    eprintln!(
        "fuzzing Model::decode: seed {}, {}",
        opts.seed,
        match opts.max_time {
            Some(t) => format!("{} s", t.as_secs()),
            None => format!("{} iterations", opts.max_iterations),
        }
    );
    match fuzz::fuzz(&opts) {
        Ok(s) => {
            let secs = s.elapsed.as_secs_f64().max(1e-9);
            println!(
                "{} iterations in {secs:.1} s ({:.0}/s): {} accepted ({} run on 4 inputs, {} over the run budget), {} features, corpus {}",
                s.iterations,
                s.iterations as f64 / secs,
                s.accepted,
                s.runs,
                s.run_skipped,
                s.features,
                s.corpus
            );
            println!("errors by kind: {:?}", s.errors);
            println!("no panics");
            ExitCode::SUCCESS
        }
        Err(f) => {
            println!(
                "FAILURE at iteration {} (seed {}): {}",
                f.iteration, f.seed, f.message
            );
            match &f.written {
                Some(p) => println!(
                    "input written to {}; reproduce with --reproduce {}",
                    p.display(),
                    p.display()
                ),
                None => println!("input (hex): {}", hex_string(&f.input)),
            }
            ExitCode::from(1)
        }
    }
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
