//! `gpu-bench`: GPU vs CPU speed of the infera engine. Timing only (floats are
//! used for the report, never for a result); every GPU output timed here is
//! also compared byte for byte with the CPU's, and a difference exits 1.
//!
//! Without a CUDA device it prints that it needs one and exits 0.
//!
//! ```sh
//! cargo run --release -p infera-gpu --bin gpu-bench            # everything
//! cargo run --release -p infera-gpu --bin gpu-bench -- --quick # smaller GEMMs
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use infera_gpu::CudaBackend;
use infera_kernels::cpu::{self, Kernels};
use infera_kernels::ops::DenseParams;
use infera_kernels::quant::Requant;
use infera_kernels::{DType, Model, Node, Op, RunOptions, Tensor, TensorInfo, TensorSpec};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.next() as i8).collect()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_each(n: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn demo_models() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let mut out = Vec::new();
    for dir in ["digits", "digits_cnn"] {
        if let Ok(rd) = std::fs::read_dir(root.join(dir)) {
            let mut v: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "infera"))
                .collect();
            v.sort();
            out.extend(v);
        }
    }
    out
}

fn bench_models(gpu: &CudaBackend, batch: usize) -> Result<(), String> {
    println!(
        "\n## Demo models (one inference, median of 50: `gpu ms` uploads the weights each run, \
         `gpu ms load` runs a model loaded once; batch: {batch} sequential inferences of the \
         loaded model)"
    );
    println!(
        "{:<28} {:>10} {:>10} {:>12} {:>8} | {:>11} {:>11} {:>8}",
        "model",
        "cpu ms",
        "gpu ms",
        "gpu ms load",
        "gpu/cpu",
        "cpu batch s",
        "gpu batch s",
        "gpu/cpu"
    );
    for path in demo_models() {
        let name = path
            .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"))
            .unwrap_or(&path)
            .display()
            .to_string();
        let bytes = std::fs::read(&path).map_err(|e| format!("{name}: {e}"))?;
        let model = Model::decode(&bytes).map_err(|e| format!("{name}: {e}"))?;
        let mut r = Rng(42);
        let n = model.input_spec().byte_len();
        let inputs: Vec<Vec<u8>> = (0..batch)
            .map(|_| r.i8s(n).into_iter().map(|v| v as u8).collect())
            .collect();
        // Parity of everything timed.
        for (i, x) in inputs.iter().enumerate() {
            let c = model.run(x).map_err(|e| format!("{name}: cpu: {e}"))?;
            let g = gpu
                .run(&model, x)
                .map_err(|e| format!("{name}: gpu: {e}"))?;
            if c != g {
                return Err(format!(
                    "{name}: GPU output differs from the CPU on input {i}"
                ));
            }
        }
        let x = &inputs[0];
        let cpu1 = time_each(50, || {
            model.run(x).expect("cpu");
        });
        let gpu1 = time_each(50, || {
            gpu.run(&model, x).expect("gpu");
        });
        let loaded = gpu.load(&model).map_err(|e| format!("{name}: load: {e}"))?;
        let gpul = time_each(50, || {
            gpu.run_loaded(&loaded, x).expect("gpu");
        });
        let t = Instant::now();
        for x in &inputs {
            model.run(x).expect("cpu");
        }
        let cpub = t.elapsed();
        let t = Instant::now();
        for x in &inputs {
            gpu.run_loaded(&loaded, x).expect("gpu");
        }
        let gpub = t.elapsed();
        println!(
            "{:<28} {:>10.4} {:>10.4} {:>12.4} {:>8.2} | {:>11.4} {:>11.4} {:>8.2}",
            name,
            ms(cpu1),
            ms(gpu1),
            ms(gpul),
            gpul.as_secs_f64() / cpu1.as_secs_f64(),
            cpub.as_secs_f64(),
            gpub.as_secs_f64(),
            gpub.as_secs_f64() / cpub.as_secs_f64(),
        );
    }
    Ok(())
}

fn dense_op(m: usize, k: usize, n: usize, r: &mut Rng) -> (Op, Tensor) {
    // |w| <= 127 and k <= 65536 keep 255 * sum|w| + |b| within i32 (validated below).
    let op = Op::Dense(DenseParams {
        in_features: k,
        out_features: n,
        out_dtype: DType::I8,
        weights: r.i8s(n * k),
        bias: (0..n).map(|_| (r.next() % 2001) as i32 - 1000).collect(),
        requant: (0..n)
            .map(|_| Requant {
                multiplier: (1 << 30) + (r.next() % (1 << 20)) as i32,
                shift: 40,
            })
            .collect(),
        act_min: -128,
        act_max: 127,
    });
    (op, Tensor::i8(vec![m, k], 3, r.i8s(m * k)))
}

/// A model of `layers` dense `width x width` layers with i8 outputs.
fn mlp(width: usize, layers: usize, r: &mut Rng) -> Result<Model, String> {
    let nodes = (0..layers)
        .map(|i| {
            let (op, _) = dense_op(1, width, width, r);
            Node {
                op,
                inputs: vec![i],
                zero_point: 0,
                scale_bits: 0,
            }
        })
        .collect();
    let input = TensorInfo {
        spec: TensorSpec {
            dtype: DType::I8,
            shape: vec![1, width],
        },
        zero_point: 0,
    };
    Model::new(input, 0, nodes, layers).map_err(|e| format!("mlp {width}x{layers}: {e}"))
}

/// The node's question for `--inference.device auto`: from what size on is
/// one inference faster on the GPU than on the CPU as the node runs it (one
/// thread, best kernels)? The node answers it per model by timing its first
/// runs; this sweep shows where the answer flips on this machine.
fn bench_crossover(gpu: &CudaBackend) -> Result<(), String> {
    println!(
        "\n## Crossover (one inference of an MLP of 4 dense WxW layers, i8; CPU as the node runs \
         it: 1 thread, best kernels; GPU: weights loaded once; median of 30)"
    );
    println!(
        "{:<8} {:>12} {:>10} {:>10} {:>8}",
        "W", "MACs", "cpu us", "gpu us", "gpu/cpu"
    );
    let node_opts = RunOptions {
        threads: 1,
        kernels: Kernels::Best,
    };
    let mut r = Rng(11);
    let mut crossover = None;
    for width in [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096] {
        let model = mlp(width, 4, &mut r)?;
        let x: Vec<u8> = r.i8s(width).into_iter().map(|v| v as u8).collect();
        let loaded = gpu
            .load(&model)
            .map_err(|e| format!("W={width}: load: {e}"))?;
        let want = model
            .run_with(&x, node_opts)
            .map_err(|e| format!("W={width}: {e}"))?;
        let got = gpu
            .run_loaded(&loaded, &x)
            .map_err(|e| format!("W={width}: gpu: {e}"))?;
        if got != want {
            return Err(format!(
                "crossover W={width}: GPU output differs from the CPU"
            ));
        }
        let cpu_t = time_each(30, || {
            model.run_with(&x, node_opts).expect("cpu");
        });
        let gpu_t = time_each(30, || {
            gpu.run_loaded(&loaded, &x).expect("gpu");
        });
        let macs = 4 * width * width;
        if gpu_t < cpu_t && crossover.is_none() {
            crossover = Some(macs);
        }
        println!(
            "{:<8} {:>12} {:>10.1} {:>10.1} {:>8.2}",
            width,
            macs,
            cpu_t.as_secs_f64() * 1e6,
            gpu_t.as_secs_f64() * 1e6,
            gpu_t.as_secs_f64() / cpu_t.as_secs_f64()
        );
    }
    match crossover {
        Some(macs) => println!("crossover: the GPU is faster from about {macs} MACs per inference"),
        None => println!("crossover: the CPU was faster at every size measured"),
    }
    Ok(())
}

fn bench_gemm(gpu: &CudaBackend, shapes: &[(usize, usize, usize)]) -> Result<(), String> {
    println!(
        "\n## int8 GEMM (dense layer, i8 out): TOPS = 2*M*N*K / time; GPU: kernel launches only \
         (data resident), CPU: {} threads, best kernels",
        threads()
    );
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "M x K x N", "cpu ms", "gpu ms", "cpu TOPS", "gpu TOPS", "gpu/cpu"
    );
    let mut r = Rng(7);
    for &(m, k, n) in shapes {
        let (op, x) = dense_op(m, k, n, &mut r);
        let (out, _) = op
            .infer(0, &[&x.info()], 0)
            .map_err(|e| format!("{m}x{k}x{n}: {e}"))?;
        let prep = cpu::prepare(&op);
        let t = Instant::now();
        let cpu_out = cpu::execute(&op, &prep, &[&x], &out, threads(), Kernels::Best);
        let cpu_t = t.elapsed();
        let reps = 5;
        let (gpu_out, gpu_total) = gpu
            .time_op(&op, &[&x], 0, reps)
            .map_err(|e| format!("{m}x{k}x{n}: {e}"))?;
        if gpu_out.to_bytes() != cpu_out.to_bytes() {
            return Err(format!("{m}x{k}x{n}: GPU output differs from the CPU"));
        }
        let gpu_t = gpu_total / reps as u32;
        let ops = 2.0 * m as f64 * k as f64 * n as f64;
        let (ct, gt) = (
            ops / cpu_t.as_secs_f64() / 1e12,
            ops / gpu_t.as_secs_f64() / 1e12,
        );
        println!(
            "{:<22} {:>10.2} {:>10.3} {:>10.3} {:>10.3} {:>9.1}",
            format!("{m} x {k} x {n}"),
            ms(cpu_t),
            ms(gpu_t),
            ct,
            gt,
            gt / ct
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let gpu = match CudaBackend::open(0) {
        Ok(g) => g,
        Err(e) => {
            println!("gpu-bench needs a CUDA GPU; none usable here: {e}. Nothing measured.");
            return ExitCode::SUCCESS;
        }
    };
    println!(
        "# gpu-bench on {} (CPU: {} threads)",
        gpu.device_name(),
        threads()
    );
    let shapes: &[(usize, usize, usize)] = if quick {
        &[(256, 1024, 1024), (1023, 1025, 511)]
    } else {
        &[
            (1, 4096, 4096),
            (64, 4096, 4096),
            (1023, 1025, 511),
            (1024, 4096, 4096),
            (4096, 4096, 4096),
        ]
    };
    let res = bench_models(&gpu, if quick { 100 } else { 1000 })
        .and_then(|()| bench_crossover(&gpu))
        .and_then(|()| bench_gemm(&gpu, shapes));
    match res {
        Ok(()) => {
            println!("\nAll timed GPU outputs were byte-identical to the CPU's.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("\nFAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
