//! CPU reference throughput, single-threaded (one JSON object per line):
//!
//! ```sh
//! cargo run --release -p infera-kernels --example bench            # or kernels/bench.sh
//! cargo run --release -p infera-kernels --example bench -- conv --fast-only
//! ```
//!
//! Optional arguments: a substring of the case names to run, and `--fast-only`
//! to skip timing the portable kernels (for quick comparisons while tuning).
//!
//! Layers are single-op models with random int8 weights, timed through
//! `Model::run_with` (the path precompiles use), best of several rounds, with
//! the kernels `Model::run` uses (`seconds`: the fast path this CPU has, see
//! `kernels`) and with the portable kernels forced (`portable_seconds`). The
//! two outputs are checked to be identical before timing.

#[path = "../tests/it/cases.rs"]
mod cases;

use cases::Rng;
use infera_kernels::model::{Model, Node, RunOptions};
use infera_kernels::{DType, Kernels, Op};
use std::time::Instant;

fn model_of(op: Op, input: &infera_kernels::Tensor, zp: i8) -> Model {
    Model::new(
        input.info(),
        0,
        vec![Node {
            op,
            inputs: vec![0],
            zero_point: zp,
            scale_bits: 0,
        }],
        1,
    )
    .expect("valid")
}

/// Best seconds per run over rounds of at least ~0.2 s.
fn time(model: &Model, input: &[u8], kernels: Kernels) -> f64 {
    let opts = RunOptions {
        threads: 1,
        kernels,
    };
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed().as_secs_f64() < 0.2 || n < 3 {
            std::hint::black_box(model.run_with(input, opts).expect("run"));
            n += 1;
        }
        best = best.min(start.elapsed().as_secs_f64() / f64::from(n));
    }
    best
}

/// One JSON line: both kernel paths, after checking that they agree.
fn report(name: &str, shape: &str, model: &Model, input: &[u8]) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fast_only = args.iter().any(|a| a == "--fast-only");
    if !args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .all(|f| name.contains(f.as_str()))
    {
        return;
    }
    let fast = model.run(input).expect("run");
    let portable = model
        .run_with(
            input,
            RunOptions {
                threads: 1,
                kernels: Kernels::Portable,
            },
        )
        .expect("run");
    assert_eq!(fast, portable, "{name}: fast and portable kernels differ");
    let secs = time(model, input, Kernels::Best);
    let port = if fast_only {
        f64::NAN
    } else {
        time(model, input, Kernels::Portable)
    };
    let macs = model.cost().macs;
    let kernels = infera_kernels::cpu::fast_kernels().unwrap_or("portable");
    println!(
        "{{\"name\":\"{name}\",\"shape\":\"{shape}\",\"macs\":{macs},\"kernels\":\"{kernels}\",\"seconds\":{secs:.9},\"gmacs\":{:.3},\"portable_seconds\":{port:.9},\"portable_gmacs\":{:.3}}}",
        macs as f64 / secs / 1e9,
        macs as f64 / port / 1e9
    );
}

fn main() {
    let mut rng = Rng(42);
    // Dense: GEMV (batch 1) and batch 64, 1024 -> 1024.
    for rows in [1usize, 64] {
        let (op, ins, zp) = cases::dense(&mut rng, rows, 1024, 1024, DType::I8);
        let m = model_of(op, &ins[0], zp);
        report(
            &format!("dense_{rows}x1024x1024"),
            &format!("[{rows},1024]x[1024,1024]"),
            &m,
            &ins[0].to_bytes(),
        );
    }
    // ResNet-style 3x3 conv, 64 -> 64 channels on 56x56, and a MobileNet-style depthwise 3x3.
    let (op, ins, zp) = cases::conv(
        &mut rng,
        1,
        64,
        [56, 56],
        64,
        [3, 3],
        [1, 1],
        [1, 1],
        [1, 1, 1, 1],
        1,
        DType::I8,
    );
    report(
        "conv3x3_64x56x56",
        "[1,64,56,56] 3x3 pad 1 -> 64",
        &model_of(op, &ins[0], zp),
        &ins[0].to_bytes(),
    );
    let (op, ins, zp) = cases::conv(
        &mut rng,
        1,
        128,
        [28, 28],
        128,
        [3, 3],
        [1, 1],
        [1, 1],
        [1, 1, 1, 1],
        128,
        DType::I8,
    );
    report(
        "depthwise3x3_128x28x28",
        "[1,128,28,28] 3x3 dw",
        &model_of(op, &ins[0], zp),
        &ins[0].to_bytes(),
    );
    let (op, ins, zp) = cases::conv(
        &mut rng,
        1,
        128,
        [28, 28],
        128,
        [1, 1],
        [1, 1],
        [1, 1],
        [0, 0, 0, 0],
        1,
        DType::I8,
    );
    report(
        "conv1x1_128x28x28",
        "[1,128,28,28] 1x1 -> 128",
        &model_of(op, &ins[0], zp),
        &ins[0].to_bytes(),
    );
    // The demo models, one sample each.
    for (name, shape, file) in [
        (
            "digits_model",
            "[1,1,8,8] MLP",
            "models/digits/digits.infera",
        ),
        (
            "digits_cnn",
            "[1,1,8,8] CNN",
            "models/digits_cnn/digits_cnn.infera",
        ),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let model = Model::decode(&std::fs::read(path).expect(file)).expect("valid");
        let input = vec![0u8; model.input_spec().byte_len()];
        report(name, shape, &model, &input);
    }
}
