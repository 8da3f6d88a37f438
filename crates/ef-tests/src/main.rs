//! `infera-ef-tests <path>...`: runs the Ethereum state and blockchain test
//! fixtures under each path through the node's own code, prints every
//! failure with its name and reason, and ends with `N passed, M failed`.
//! Exits non-zero when a failure is not listed in the exclusions.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use infera_ef_tests::{EXCLUSIONS, Exclusions, RPC_PASS_THRESHOLD_PERCENT, Report, rpc, run_path};

const USAGE: &str = "usage: infera-ef-tests [--threads N] [--exclusions FILE] [--no-exclusions] <fixture dir or file>...";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut paths = Vec::new();
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut exclusions_text = Some(EXCLUSIONS.to_string());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => threads = n,
                None => return usage("--threads needs a number"),
            },
            "--exclusions" => match args.next().map(std::fs::read_to_string) {
                Some(Ok(text)) => exclusions_text = Some(text),
                Some(Err(err)) => return usage(&format!("cannot read exclusions: {err}")),
                None => return usage("--exclusions needs a file"),
            },
            "--no-exclusions" => exclusions_text = None,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    if paths.is_empty() {
        return usage("no fixture path given");
    }
    let exclusions = match exclusions_text.as_deref().map(Exclusions::parse) {
        Some(Ok(ex)) => ex,
        Some(Err(err)) => return usage(&err),
        None => Exclusions::default(),
    };
    let start = Instant::now();
    let mut outcomes = Vec::new();
    let mut rpc_ok = true;
    let mut fixture_paths = 0;
    for path in &paths {
        if !path.exists() {
            return usage(&format!("{} does not exist", path.display()));
        }
        if path.join("headfcu.json").exists() {
            rpc_ok &= run_rpc(path);
        } else {
            fixture_paths += 1;
            outcomes.extend(run_path(path, threads));
        }
    }
    let report = Report::new(&outcomes, &exclusions);
    for failure in &report.failed {
        if let Err(reason) = &failure.result {
            println!("FAIL {} ({}): {reason}", failure.id, failure.file);
        }
    }
    for stale in &report.excluded_passed {
        println!(
            "note: excluded {} passes now; its exclusion can go",
            stale.id
        );
    }
    // An RPC-only run has printed its own summary line.
    if fixture_paths > 0 {
        println!(
            "{} in {:.1}s",
            report.summary(),
            start.elapsed().as_secs_f64()
        );
    }
    if report.failed.is_empty() && rpc_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the execution-apis JSON-RPC tests of `dir`; false when the pass
/// rate is below [`RPC_PASS_THRESHOLD_PERCENT`] or the run could not start.
fn run_rpc(dir: &std::path::Path) -> bool {
    let outcomes = match rpc::run(dir) {
        Ok(outcomes) => outcomes,
        Err(err) => {
            println!("FAIL rpc tests in {}: {err}", dir.display());
            return false;
        }
    };
    for o in outcomes.iter().filter(|o| o.result.is_err()) {
        if let Err(reason) = &o.result {
            println!("FAIL rpc {}/{}: {reason}", o.method, o.name);
        }
    }
    println!("per method (passed/total):");
    for (method, (passed, failed)) in rpc::per_method(&outcomes) {
        println!("  {method:45} {passed}/{}", passed + failed);
    }
    let summary = rpc::Summary::new(&outcomes);
    println!("RPC: {}", summary.line());
    summary.percent() >= RPC_PASS_THRESHOLD_PERCENT
}

fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}\n{USAGE}");
    ExitCode::from(2)
}
