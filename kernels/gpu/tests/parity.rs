//! GPU parity suite: every case runs on the CPU reference and on
//! [`CudaBackend`], and the output bytes must be equal (`==` on bytes, no
//! tolerance). Failures print the case name and its seed.
//!
//! Without a CUDA device (`CudaBackend::open(0)` fails) each test prints
//! `SKIPPED: no CUDA device (<reason>)` to stderr and returns without checking
//! anything. With `INFERA_REQUIRE_GPU=1` a missing device is a failure.
//!
//! Cases: every golden vector of `kernels/vectors/`; randomized operators with
//! fixed seeds (odd and large shapes, -128/127 extremes, multipliers and shifts
//! at the rounding corners, exact ties); the demo models in `kernels/models/`.

use infera_kernels::ops::{
    ArgMaxParams, AvgPoolParams, ClipParams, ConcatParams, FlattenParams, GlobalAvgPoolParams,
    LayerNormParams, LutParams, PadParams, ReshapeParams, SoftmaxParams, TransposeParams,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use infera_gpu::{CudaBackend, GpuError};
use infera_kernels::cpu::execute_op;
use infera_kernels::ops::{AddParams, Conv2dParams, DenseParams, MulParams, PoolParams};
use infera_kernels::ops::{MatMulParams, ReduceParams};
use infera_kernels::quant::Requant;
use infera_kernels::{DType, Model, Op, Tensor, TensorInfo, TensorSpec};
use serde_json::Value;

/// Write past libtest's capture, so skips and summaries show in logs.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn required() -> bool {
    std::env::var("INFERA_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// The shared backend, opened once; `None` (after printing SKIPPED) without a GPU.
fn backend(test: &str) -> Option<std::sync::MutexGuard<'static, CudaBackend>> {
    static B: OnceLock<Result<Mutex<CudaBackend>, String>> = OnceLock::new();
    let b = B.get_or_init(|| match CudaBackend::open(0) {
        Ok(b) => {
            say(&format!("GPU: {}", b.device_name()));
            Ok(Mutex::new(b))
        }
        Err(e) => Err(e.to_string()),
    });
    match b {
        Ok(m) => Some(m.lock().unwrap_or_else(|e| e.into_inner())),
        Err(reason) => {
            assert!(
                !required(),
                "INFERA_REQUIRE_GPU=1 but no CUDA device: {reason}"
            );
            say(&format!("SKIPPED: no CUDA device ({reason}) [{test}]"));
            None
        }
    }
}

/// Collects mismatches; panics at the end listing every one.
#[derive(Default)]
struct Report {
    checked: usize,
    failures: Vec<String>,
}

impl Report {
    fn compare(&mut self, case: &str, seed: u64, cpu: &[u8], gpu: Result<Vec<u8>, GpuError>) {
        self.checked += 1;
        match gpu {
            Ok(g) if g == cpu => {}
            Ok(g) => {
                let first = g
                    .iter()
                    .zip(cpu)
                    .position(|(a, b)| a != b)
                    .unwrap_or(g.len().min(cpu.len()));
                self.failures.push(format!(
                    "{case} (seed {seed}): bytes differ: len gpu {} cpu {}, first difference at byte {first}",
                    g.len(),
                    cpu.len()
                ));
            }
            Err(e) => self
                .failures
                .push(format!("{case} (seed {seed}): GPU error: {e}")),
        }
    }
    fn finish(self, what: &str) {
        if !self.failures.is_empty() {
            for f in &self.failures {
                say(&format!("MISMATCH {f}"));
            }
            panic!(
                "{what}: {} of {} cases differ between GPU and CPU:\n{}",
                self.failures.len(),
                self.checked,
                self.failures.join("\n")
            );
        }
        say(&format!(
            "{what}: {} cases byte-identical on the GPU",
            self.checked
        ));
    }
}

// ---------------------------------------------------------------- golden vectors

fn kernels_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tensor_from_json(v: &Value) -> Tensor {
    let dtype: DType = serde_json::from_value(v["dtype"].clone()).expect("dtype");
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).expect("shape");
    let zero_point = v["zero_point"].as_i64().expect("zero_point") as i8;
    let bytes = hex::decode(v["hex"].as_str().expect("hex")).expect("hex digits");
    Tensor::from_bytes(
        &TensorInfo {
            spec: TensorSpec { dtype, shape },
            zero_point,
        },
        &bytes,
    )
    .expect("tensor bytes")
}

#[test]
fn golden_vectors() {
    let Some(gpu) = backend("golden_vectors") else {
        return;
    };
    let dir = kernels_dir().join("vectors");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no golden vectors in {}", dir.display());
    let mut report = Report::default();
    for p in paths {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
        let op: Op = serde_json::from_value(v["params"].clone()).expect("params");
        let name = v["name"].as_str().expect("name");
        let seed = v["seed"].as_u64().expect("seed");
        let inputs: Vec<Tensor> = v["inputs"]
            .as_array()
            .expect("inputs")
            .iter()
            .map(tensor_from_json)
            .collect();
        let zp = v["output_zero_point"].as_i64().expect("zp") as i8;
        let expected = tensor_from_json(&v["expected"]).to_bytes();
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let cpu = execute_op(&op, &refs, zp).expect("cpu").to_bytes();
        assert_eq!(
            cpu, expected,
            "{name}: CPU reference differs from the vector"
        );
        report.compare(
            &format!("vector {name}"),
            seed,
            &expected,
            gpu.run_op(&op, &refs, zp).map(|t| t.to_bytes()),
        );
    }
    report.finish("golden vectors");
}

// ---------------------------------------------------------------- randomized

/// splitmix64: a fixed, dependency-free generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
    fn usize(&mut self, lo: usize, hi: usize) -> usize {
        self.range(lo as i64, hi as i64) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.usize(0, xs.len() - 1)]
    }
    /// int8 data: uniform, all -128, all 127, or only the two extremes.
    fn i8s(&mut self, n: usize) -> Vec<i8> {
        match self.range(0, 9) {
            0 => vec![-128; n],
            1 => vec![127; n],
            2 => (0..n)
                .map(|_| if self.next() & 1 == 0 { -128 } else { 127 })
                .collect(),
            _ => (0..n).map(|_| self.range(-128, 127) as i8).collect(),
        }
    }
    fn zp(&mut self) -> i8 {
        match self.range(0, 4) {
            0 => -128,
            1 => 127,
            2 => 0,
            _ => self.range(-128, 127) as i8,
        }
    }
    /// Multiplier and shift at the rounding corners: exact halves (ties),
    /// the largest multiplier, the smallest and largest shifts.
    fn requant(&mut self) -> Requant {
        let shift = match self.range(0, 5) {
            0 => 1,
            1 => 62,
            2 => 31,
            _ => self.range(1, 40) as u8,
        };
        let multiplier = match self.range(0, 6) {
            0 => 1,        // v / 2^s: ties on every odd multiple of 2^(s-1)
            1 => i32::MAX, // the largest product
            2 => 0,        // everything to the zero point
            3 => 1 << 30,  // a power of two: many exact ties
            4 => (1 << 30) + 1,
            _ => self.range(0, i64::from(i32::MAX)) as i32,
        };
        Requant { multiplier, shift }
    }
    fn act(&mut self) -> (i8, i8) {
        if self.next().is_multiple_of(3) {
            (-128, 127)
        } else {
            let a = self.range(-128, 127) as i8;
            let b = self.range(-128, 127) as i8;
            (a.min(b), a.max(b))
        }
    }
}

/// Weights with `|bias| + 255 * sum|w| < 2^31` per row (the validator's bound).
fn weights_and_bias(r: &mut Rng, rows: usize, red: usize) -> (Vec<i8>, Vec<i32>) {
    let limit = i64::from(i32::MAX) / 255 / red as i64;
    let cap = limit.min(127);
    let mut w = Vec::with_capacity(rows * red);
    for _ in 0..rows * red {
        let v = if r.next().is_multiple_of(8) {
            if r.next() & 1 == 0 { -cap } else { cap }
        } else {
            r.range(-cap, cap)
        };
        w.push(v as i8);
    }
    let bias = w
        .chunks_exact(red)
        .map(|row| {
            let sum: i64 = row.iter().map(|&v| i64::from(v).abs()).sum();
            let room = (i64::from(i32::MAX) - 255 * sum).clamp(0, 1 << 24);
            r.range(-room, room) as i32
        })
        .collect();
    (w, bias)
}

fn out_mode(r: &mut Rng, outs: usize) -> (DType, Vec<Requant>, i8, i8, i8) {
    if r.next().is_multiple_of(4) {
        (DType::I32, vec![], -128, 127, 0)
    } else {
        let rq = (0..outs).map(|_| r.requant()).collect();
        let (lo, hi) = r.act();
        (DType::I8, rq, lo, hi, r.zp())
    }
}

/// One random case: the operator, its inputs, the output zero point.
type Case = (String, Op, Vec<Tensor>, i8);

/// A case generator.
type Generator = fn(&mut Rng) -> Case;

fn i8_tensor(r: &mut Rng, shape: Vec<usize>) -> Tensor {
    let n = shape.iter().product();
    let zp = r.zp();
    Tensor::i8(shape, zp, r.i8s(n))
}

fn i32_tensor(r: &mut Rng, shape: Vec<usize>) -> Tensor {
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|_| match r.range(0, 5) {
            0 => i32::MIN,
            1 => i32::MAX,
            _ => r.next() as i32,
        })
        .collect();
    Tensor::i32(shape, data)
}

fn dense_case(r: &mut Rng, large: bool) -> Case {
    let k = if large {
        r.pick(&[1024, 2048, 4096, 4095])
    } else {
        r.pick(&[1, 2, 3, 4, 5, 7, 8, 16, 17, 31, 64, 255, 256, 1000])
    };
    let n_out = if large {
        r.pick(&[255, 256, 512])
    } else {
        r.usize(1, 40)
    };
    let rows = if large {
        r.pick(&[1, 33, 64])
    } else {
        r.usize(1, 9)
    };
    let (weights, bias) = weights_and_bias(r, n_out, k);
    let (out_dtype, requant, act_min, act_max, zp) = out_mode(r, n_out);
    let shape = if r.next() & 1 == 0 {
        vec![rows, k]
    } else {
        vec![1, rows, k]
    };
    let x = i8_tensor(r, shape);
    let op = Op::Dense(DenseParams {
        in_features: k,
        out_features: n_out,
        out_dtype,
        weights,
        bias,
        requant,
        act_min,
        act_max,
    });
    (
        format!("dense rows={rows} k={k} n={n_out}"),
        op,
        vec![x],
        zp,
    )
}

fn conv_case(r: &mut Rng, large: bool) -> Case {
    let (n, c, h, w) = if large {
        (1, r.pick(&[32, 64]), r.pick(&[56, 57]), r.pick(&[56, 31]))
    } else {
        (r.usize(1, 2), r.usize(1, 8), r.usize(1, 13), r.usize(1, 13))
    };
    let kernel = [r.usize(1, 5.min(h + 2)), r.usize(1, 5.min(w + 2))];
    let stride = [r.usize(1, 3), r.usize(1, 3)];
    let dilation = [r.usize(1, 2), r.usize(1, 2)];
    let groups = match r.range(0, 2) {
        0 => 1,
        1 => c, // depthwise (channel multiplier below)
        _ => {
            if c % 2 == 0 {
                2
            } else {
                1
            }
        }
    };
    let og = if large {
        r.pick(&[1, 2]) * 64 / groups.min(64)
    } else {
        r.usize(1, 3)
    };
    let oc = (groups * og).max(1);
    let mut pads = [0; 4];
    for p in &mut pads {
        *p = r.usize(0, 2);
    }
    // Output size must be >= 1: shrink pads/dilation if the window does not fit.
    let ext = |k: usize, d: usize| (k - 1) * d + 1;
    let mut dilation = dilation;
    for d in 0..2 {
        let size = if d == 0 { h } else { w };
        while ext(kernel[d], dilation[d]) > size + pads[d] + pads[d + 2] && dilation[d] > 1 {
            dilation[d] -= 1;
        }
        while ext(kernel[d], dilation[d]) > size + pads[d] + pads[d + 2] {
            pads[d] += 1;
        }
    }
    let red = c / groups * kernel[0] * kernel[1];
    let (weights, bias) = weights_and_bias(r, oc, red);
    let (out_dtype, requant, act_min, act_max, zp) = out_mode(r, oc);
    let x = i8_tensor(r, vec![n, c, h, w]);
    let op = Op::Conv2d(Conv2dParams {
        in_channels: c,
        out_channels: oc,
        kernel,
        stride,
        dilation,
        pads,
        groups,
        out_dtype,
        weights,
        bias,
        requant,
        act_min,
        act_max,
    });
    (
        format!(
            "conv2d x=[{n},{c},{h},{w}] oc={oc} k={kernel:?} s={stride:?} d={dilation:?} p={pads:?} g={groups}"
        ),
        op,
        vec![x],
        zp,
    )
}

fn pool_case(r: &mut Rng) -> Case {
    let shape = vec![r.usize(1, 2), r.usize(1, 5), r.usize(1, 12), r.usize(1, 12)];
    let x = i8_tensor(r, shape.clone());
    let zp = x.zero_point;
    let kernel = [
        r.usize(1, 4.min(shape[2] + 1)),
        r.usize(1, 4.min(shape[3] + 1)),
    ];
    let mut pads = [0; 4];
    for (i, p) in pads.iter_mut().enumerate() {
        *p = r.usize(0, kernel[i % 2] - 1);
    }
    let pool = PoolParams {
        kernel,
        stride: [r.usize(1, 3), r.usize(1, 3)],
        pads,
    };
    let (name, op) = match r.range(0, 2) {
        0 => ("max_pool", Op::MaxPool(pool)),
        1 => (
            "avg_pool",
            Op::AvgPool(AvgPoolParams {
                pool,
                count_include_pad: r.next() & 1 == 0,
            }),
        ),
        _ => ("global_avg_pool", Op::GlobalAvgPool(GlobalAvgPoolParams {})),
    };
    (format!("{name} x={shape:?} {op:?}"), op, vec![x], zp)
}

fn random_shape(r: &mut Rng, rank: usize, max: usize) -> Vec<usize> {
    (0..rank).map(|_| r.usize(1, max)).collect()
}

fn elementwise_case(r: &mut Rng) -> Case {
    let rank = r.usize(1, 4);
    let shape = random_shape(r, rank, if rank > 2 { 7 } else { 300 });
    match r.range(0, 6) {
        5 => {
            // Rows along the last axis; a non-increasing table from one of
            // the extremes of table[0] (1, the importer's 2^30, u32::MAX),
            // falling by a random ratio per entry (to 0 where it runs out).
            let x = i8_tensor(r, shape.clone());
            let mut e = u64::from(r.pick(&[1, 1 << 16, 1 << 30, u32::MAX]));
            let table = (0..256)
                .map(|_| {
                    let v = e as u32;
                    e = e * r.range(128, 256) as u64 / 256;
                    v
                })
                .collect();
            (
                format!("softmax {shape:?}"),
                Op::Softmax(SoftmaxParams { table }),
                vec![x],
                -128,
            )
        }
        4 => {
            let x = i8_tensor(r, shape.clone());
            let table = (0..256).map(|_| r.range(-128, 127) as i8).collect();
            let zp = r.range(-128, 127) as i8;
            (
                format!("lut {shape:?}"),
                Op::Lut(LutParams { table }),
                vec![x],
                zp,
            )
        }
        0 => {
            let x = i8_tensor(r, shape.clone());
            let (min, max) = r.act();
            let zp = x.zero_point;
            (
                format!("clip {shape:?}"),
                Op::Clip(ClipParams { min, max }),
                vec![x],
                zp,
            )
        }
        1 => {
            let a = i8_tensor(r, shape.clone());
            let b = i8_tensor(r, shape.clone());
            let rq = r.requant();
            let (act_min, act_max) = r.act();
            let op = Op::Add(AddParams {
                multiplier_a: rq.multiplier,
                multiplier_b: r.requant().multiplier,
                shift: rq.shift,
                act_min,
                act_max,
            });
            (format!("add {shape:?}"), op, vec![a, b], r.zp())
        }
        2 => {
            let a = i8_tensor(r, shape.clone());
            let b = i8_tensor(r, shape.clone());
            let (act_min, act_max) = r.act();
            let op = Op::Mul(MulParams {
                requant: r.requant(),
                act_min,
                act_max,
            });
            (format!("mul {shape:?}"), op, vec![a, b], r.zp())
        }
        3 => {
            let x = i8_tensor(r, shape.clone());
            (
                format!("requantize i8 {shape:?}"),
                Op::Requantize(r.requant()),
                vec![x],
                r.zp(),
            )
        }
        _ => {
            let x = i32_tensor(r, shape.clone());
            (
                format!("requantize i32 {shape:?}"),
                Op::Requantize(r.requant()),
                vec![x],
                r.zp(),
            )
        }
    }
}

fn layout_case(r: &mut Rng) -> Case {
    let rank = r.usize(1, 5);
    let shape = random_shape(r, rank, if rank > 3 { 5 } else { 17 });
    let i32s = r.next().is_multiple_of(3);
    let mk = |r: &mut Rng, s: Vec<usize>| {
        if i32s {
            i32_tensor(r, s)
        } else {
            i8_tensor(r, s)
        }
    };
    let ty = if i32s { "i32" } else { "i8" };
    match r.range(0, 5) {
        0 => {
            let mut perm: Vec<usize> = (0..rank).collect();
            for i in (1..rank).rev() {
                let j = r.usize(0, i);
                perm.swap(i, j);
            }
            let x = mk(r, shape.clone());
            let zp = x.zero_point;
            (
                format!("transpose {ty} {shape:?} {perm:?}"),
                Op::Transpose(TransposeParams { perm }),
                vec![x],
                zp,
            )
        }
        1 => {
            let axis = r.usize(0, rank - 1);
            let first = mk(r, shape.clone());
            let zp = first.zero_point;
            let mut ins = vec![first];
            for _ in 0..r.usize(0, 3) {
                let mut s = shape.clone();
                s[axis] = r.usize(1, 6);
                let mut t = mk(r, s);
                t.zero_point = zp;
                ins.push(t);
            }
            (
                format!("concat {ty} {shape:?} axis={axis} n={}", ins.len()),
                Op::Concat(ConcatParams { axis }),
                ins,
                zp,
            )
        }
        2 => {
            let before: Vec<usize> = (0..rank).map(|_| r.usize(0, 3)).collect();
            let after: Vec<usize> = (0..rank).map(|_| r.usize(0, 3)).collect();
            let x = mk(r, shape.clone());
            let zp = x.zero_point;
            (
                format!("pad {ty} {shape:?} {before:?} {after:?}"),
                Op::Pad(PadParams { before, after }),
                vec![x],
                zp,
            )
        }
        3 => {
            let axis = r.usize(0, rank - 1);
            let x = mk(r, shape.clone());
            (
                format!("arg_max {ty} {shape:?} axis={axis}"),
                Op::ArgMax(ArgMaxParams { axis }),
                vec![x],
                0,
            )
        }
        4 => {
            let x = mk(r, shape.clone());
            let zp = x.zero_point;
            let n: usize = shape.iter().product();
            (
                format!("reshape {ty} {shape:?}"),
                Op::Reshape(ReshapeParams { shape: vec![n] }),
                vec![x],
                zp,
            )
        }
        _ => {
            let axis = r.usize(0, rank);
            let x = mk(r, shape.clone());
            let zp = x.zero_point;
            (
                format!("flatten {ty} {shape:?} axis={axis}"),
                Op::Flatten(FlattenParams { axis }),
                vec![x],
                zp,
            )
        }
    }
}

/// Layer normalisation: rows of odd and extreme lengths (up to
/// `MAX_NORM_LEN`), constant and two-valued rows from `i8s`, gammas and
/// betas at the i32 extremes, epsilon from 0 to its limit, every shift
/// corner.
fn layer_norm_case(r: &mut Rng) -> Case {
    let n = r.pick(&[1, 2, 3, 7, 16, 64, 300, 1024, 4096]);
    let rows = r.usize(1, if n > 300 { 3 } else { 9 });
    let shape = match r.range(0, 2) {
        0 => vec![n],
        1 => vec![rows, n],
        _ => vec![2, rows, n],
    };
    let x = i8_tensor(r, shape.clone());
    let int = |r: &mut Rng| match r.range(0, 5) {
        0 => i32::MAX,
        1 => i32::MIN,
        2 => 0,
        _ => r.range(-(1 << 20), 1 << 20) as i32,
    };
    let gamma = (0..n).map(|_| int(r)).collect();
    let beta = (0..n).map(|_| int(r)).collect();
    let max_eps = infera_kernels::limits::MAX_NORM_EPS;
    let eps = match r.range(0, 3) {
        0 => 0,
        1 => max_eps,
        _ => r.range(0, 1 << 40) as u64,
    };
    let shift = match r.range(0, 4) {
        0 => 1,
        1 => 62,
        _ => r.range(16, 40) as u8,
    };
    let zp = r.zp();
    (
        format!("layer_norm {shape:?} eps={eps} shift={shift}"),
        Op::LayerNorm(LayerNormParams {
            gamma,
            beta,
            eps,
            shift,
        }),
        vec![x],
        zp,
    )
}

/// MatMul of two activations: batched shapes of rank 2 to 4, the longest
/// reduction now and then, extreme data and requantisation corners.
fn mat_mul_case(r: &mut Rng) -> Case {
    let rank = r.usize(2, 4);
    let mut lead: Vec<usize> = (0..rank - 2).map(|_| r.usize(1, 4)).collect();
    let (m, k, n) = match r.range(0, 19) {
        // K at MAX_MATMUL_REDUCTION: the accumulator's bound is reached by
        // all-extreme data.
        0 => {
            lead.iter_mut().for_each(|d| *d = 1);
            (r.usize(1, 2), 1 << 15, r.usize(1, 2))
        }
        1 => (r.usize(1, 8), r.usize(200, 3000), r.usize(1, 8)),
        _ => (r.usize(1, 40), r.usize(1, 70), r.usize(1, 40)),
    };
    let sa: Vec<usize> = lead.iter().copied().chain([m, k]).collect();
    let sb: Vec<usize> = lead.iter().copied().chain([k, n]).collect();
    let a = i8_tensor(r, sa.clone());
    let b = i8_tensor(r, sb.clone());
    let (act_min, act_max) = r.act();
    let op = Op::MatMul(MatMulParams {
        requant: r.requant(),
        act_min,
        act_max,
    });
    (format!("mat_mul {sa:?} x {sb:?}"), op, vec![a, b], r.zp())
}

/// Reduce over a random non-empty set of axes, sum or mean, kept or dropped.
fn reduce_case(r: &mut Rng) -> Case {
    // One case in ten is a long reduction (many terms, the mean's division
    // by a large count), up to 60,000 of MAX_REDUCTION_LEN's 65,536.
    let shape = if r.range(0, 9) == 0 {
        vec![r.usize(1, 3), r.usize(1000, 20_000)]
    } else {
        let rank = r.usize(1, 5);
        random_shape(r, rank, if rank > 2 { 7 } else { 40 })
    };
    let rank = shape.len();
    let mut axes: Vec<usize> = (0..rank).filter(|_| r.next() & 1 == 0).collect();
    if axes.is_empty() {
        axes.push(r.usize(0, rank - 1));
    }
    let mean = r.next() & 1 == 0;
    let keep_dims = axes.len() == rank || r.next() & 1 == 0;
    let x = i8_tensor(r, shape.clone());
    let op = Op::Reduce(ReduceParams {
        axes: axes.clone(),
        mean,
        keep_dims,
        requant: r.requant(),
    });
    (
        format!("reduce {shape:?} axes={axes:?} mean={mean} keep={keep_dims}"),
        op,
        vec![x],
        r.zp(),
    )
}

/// Run `count` cases from `gen` with seeds `base..base+count`; cases the
/// validator rejects are counted and skipped (the generator aims for valid ones).
fn random_suite(test: &str, base: u64, count: u64, generator: fn(&mut Rng) -> Case) {
    let Some(gpu) = backend(test) else {
        return;
    };
    let mut report = Report::default();
    let mut rejected = 0;
    for seed in base..base + count {
        let mut r = Rng(seed);
        let (name, op, inputs, zp) = generator(&mut r);
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let cpu = match execute_op(&op, &refs, zp) {
            Ok(t) => t.to_bytes(),
            Err(_) => {
                rejected += 1;
                continue;
            }
        };
        report.compare(
            &name,
            seed,
            &cpu,
            gpu.run_op(&op, &refs, zp).map(|t| t.to_bytes()),
        );
    }
    say(&format!(
        "{test}: {rejected} generated cases rejected by the validator (not run)"
    ));
    assert!(
        report.checked * 2 > count as usize,
        "{test}: too few valid cases"
    );
    report.finish(test);
}

#[test]
fn random_dense() {
    random_suite("random_dense", 1_000, 300, |r| dense_case(r, false));
}

#[test]
fn random_dense_large() {
    random_suite("random_dense_large", 2_000, 8, |r| dense_case(r, true));
}

#[test]
fn random_conv2d() {
    random_suite("random_conv2d", 3_000, 300, |r| conv_case(r, false));
}

#[test]
fn random_conv2d_large() {
    random_suite("random_conv2d_large", 4_000, 4, |r| conv_case(r, true));
}

#[test]
fn random_pool() {
    random_suite("random_pool", 5_000, 300, pool_case);
}

#[test]
fn random_elementwise() {
    random_suite("random_elementwise", 6_000, 400, elementwise_case);
}

#[test]
fn random_layout() {
    random_suite("random_layout", 7_000, 400, layout_case);
}

#[test]
fn random_layer_norm() {
    random_suite("random_layer_norm", 8_000, 200, layer_norm_case);
}

#[test]
fn random_mat_mul() {
    random_suite("random_mat_mul", 12_000, 300, mat_mul_case);
}

#[test]
fn random_reduce() {
    random_suite("random_reduce", 13_000, 300, reduce_case);
}

/// Exact ties of the requantisation: `v * 1 / 2^1` for every odd `v`, and
/// `v * 2^(s-1) / 2^s` over the whole int8 range, both signs.
#[test]
fn requantize_ties_exhaustive() {
    let Some(gpu) = backend("requantize_ties_exhaustive") else {
        return;
    };
    let mut report = Report::default();
    let all: Vec<i8> = (-128..=127).collect();
    for zx in [-128i8, -1, 0, 1, 127] {
        for zy in [-128i8, 0, 127] {
            for rq in [
                Requant {
                    multiplier: 1,
                    shift: 1,
                },
                Requant {
                    multiplier: 3,
                    shift: 2,
                },
                Requant {
                    multiplier: 1 << 29,
                    shift: 30,
                },
                Requant {
                    multiplier: i32::MAX,
                    shift: 62,
                },
                Requant {
                    multiplier: i32::MAX,
                    shift: 1,
                },
            ] {
                let x = Tensor::i8(vec![256], zx, all.clone());
                let op = Op::Requantize(rq);
                let cpu = execute_op(&op, &[&x], zy).expect("valid").to_bytes();
                report.compare(
                    &format!("requantize ties zx={zx} zy={zy} {rq:?}"),
                    0,
                    &cpu,
                    gpu.run_op(&op, &[&x], zy).map(|t| t.to_bytes()),
                );
            }
        }
    }
    report.finish("requantize_ties_exhaustive");
}

// ---------------------------------------------------------------- models

/// A multi-node graph built in code: conv, clip, pool, depthwise conv, avg
/// pool, flatten, dense (i32), requantize, arg_max.
fn chain_model(r: &mut Rng) -> Model {
    let input = TensorInfo {
        spec: TensorSpec {
            dtype: DType::I8,
            shape: vec![2, 3, 11, 9],
        },
        zero_point: -5,
    };
    let conv = |r: &mut Rng, c: usize, oc: usize, groups: usize, pads: [usize; 4]| {
        let red = c / groups * 9;
        let (weights, bias) = weights_and_bias(r, oc, red);
        Op::Conv2d(Conv2dParams {
            in_channels: c,
            out_channels: oc,
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            pads,
            groups,
            out_dtype: DType::I8,
            weights,
            bias,
            requant: (0..oc)
                .map(|_| Requant {
                    multiplier: r.range(1 << 20, 1 << 30) as i32,
                    shift: 36,
                })
                .collect(),
            act_min: -128,
            act_max: 127,
        })
    };
    let node = |op: Op, inputs: Vec<usize>, zero_point: i8| infera_kernels::Node {
        op,
        inputs,
        zero_point,
        scale_bits: 0,
    };
    let (dw, db) = weights_and_bias(r, 10, 72);
    let nodes = vec![
        node(conv(r, 3, 8, 1, [1, 1, 1, 1]), vec![0], 3),
        node(Op::Clip(ClipParams { min: 3, max: 127 }), vec![1], 3),
        node(
            Op::MaxPool(PoolParams {
                kernel: [2, 2],
                stride: [2, 2],
                pads: [0, 0, 1, 1],
            }),
            vec![2],
            3,
        ),
        node(conv(r, 8, 8, 8, [1, 1, 1, 1]), vec![3], -7),
        node(
            Op::AvgPool(AvgPoolParams {
                pool: PoolParams {
                    kernel: [3, 3],
                    stride: [2, 2],
                    pads: [1, 1, 1, 1],
                },
                count_include_pad: false,
            }),
            vec![4],
            -7,
        ),
        node(Op::Flatten(FlattenParams { axis: 1 }), vec![5], -7),
        node(
            Op::Dense(DenseParams {
                in_features: 72,
                out_features: 10,
                out_dtype: DType::I32,
                weights: dw,
                bias: db,
                requant: vec![],
                act_min: -128,
                act_max: 127,
            }),
            vec![6],
            0,
        ),
        node(
            Op::Requantize(Requant {
                multiplier: 1 << 20,
                shift: 30,
            }),
            vec![7],
            1,
        ),
        node(Op::ArgMax(ArgMaxParams { axis: 1 }), vec![8], 0),
    ];
    Model::new(input, 0, nodes, 9).expect("chain model is valid")
}

fn random_inputs(model: &Model, seed: u64, count: usize) -> Vec<(String, u64, Vec<u8>)> {
    let spec = model.input_spec();
    let mut r = Rng(seed);
    (0..count)
        .map(|i| {
            let n = spec.elements();
            let bytes = match spec.dtype {
                DType::I8 => r.i8s(n).into_iter().map(|v| v as u8).collect(),
                DType::I32 => (0..n)
                    .flat_map(|_| (r.next() as i32).to_le_bytes())
                    .collect(),
            };
            (format!("random input {i}"), seed + i as u64, bytes)
        })
        .collect()
}

fn check_model(
    gpu: &CudaBackend,
    name: &str,
    model: &Model,
    inputs: &[(String, u64, Vec<u8>)],
    report: &mut Report,
) {
    // `run` (parameters uploaded per call) and `run_loaded` (uploaded once).
    let loaded = match gpu.load(model) {
        Ok(l) => Some(l),
        Err(e) => {
            report.compare(&format!("{name}: load"), 0, &[], Err(e));
            None
        }
    };
    for (case, seed, bytes) in inputs {
        let cpu = model.run(bytes).expect("cpu run");
        report.compare(
            &format!("{name}: {case}"),
            *seed,
            &cpu,
            gpu.run(model, bytes),
        );
        if let Some(l) = &loaded {
            report.compare(
                &format!("{name}: {case} (loaded)"),
                *seed,
                &cpu,
                gpu.run_loaded(l, bytes),
            );
        }
    }
}

#[test]
fn chain_models() {
    let Some(gpu) = backend("chain_models") else {
        return;
    };
    let mut report = Report::default();
    for seed in 0..10u64 {
        let model = chain_model(&mut Rng(9_000 + seed));
        // Also through the canonical encoding, as a node would load it.
        let model = Model::decode(&model.encode()).expect("decode");
        check_model(
            &gpu,
            &format!("chain model {seed}"),
            &model,
            &random_inputs(&model, 9_100 + seed * 10, 5),
            &mut report,
        );
    }
    report.finish("chain_models");
}

/// Parse a little-endian float32 `.npy` (C order) into its shape and values.
fn read_npy_f32(path: &Path) -> Option<(Vec<usize>, Vec<f32>)> {
    let b = std::fs::read(path).ok()?;
    if b.get(..6)? != b"\x93NUMPY" {
        return None;
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        _ => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
    };
    let header = std::str::from_utf8(b.get(start..start + hlen)?).ok()?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return None;
    }
    let dims = header.split("'shape': (").nth(1)?.split(')').next()?;
    let shape: Vec<usize> = dims
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().ok())
        .collect::<Option<_>>()?;
    let data = b[start + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some((shape, data))
}

/// A demo model and its inputs: (label, model, inputs).
type Demo = (String, Model, Vec<(String, u64, Vec<u8>)>);

/// The demo models of `kernels/models/` with their test inputs (float32
/// `test_x.npy`, quantised with the model's input scale and zero point; a
/// test-side conversion only) and random inputs.
fn demo_cases() -> Vec<Demo> {
    let mut out = Vec::new();
    let models = kernels_dir().join("models");
    for dir in ["digits", "digits_cnn"] {
        let d = models.join(dir);
        let Ok(entries) = std::fs::read_dir(&d) else {
            say(&format!("demo models: {} absent, not checked", d.display()));
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "infera"))
            .collect();
        files.sort();
        for f in files {
            let name = f.file_name().expect("name").to_string_lossy().into_owned();
            let model = Model::decode(&std::fs::read(&f).expect("read model")).expect("decode");
            let mut inputs = random_inputs(&model, 11_000, 20);
            let (info, scale_bits) = model.input_info();
            let scale = f32::from_bits(scale_bits);
            let per = info.spec.elements();
            match read_npy_f32(&d.join("test_x.npy")) {
                Some((shape, xs))
                    if info.spec.dtype == DType::I8
                        && scale > 0.0
                        && shape.iter().skip(1).product::<usize>() == per =>
                {
                    for (i, chunk) in xs.chunks_exact(per).enumerate() {
                        let bytes = chunk
                            .iter()
                            .map(|&v| {
                                let q = (v / scale).round() as i64 + i64::from(info.zero_point);
                                q.clamp(-128, 127) as i8 as u8
                            })
                            .collect();
                        inputs.push((format!("test_x[{i}]"), i as u64, bytes));
                    }
                }
                _ => say(&format!(
                    "demo models: {dir}/test_x.npy does not fit {name} (input {}); random inputs only",
                    info.spec
                )),
            }
            out.push((format!("{dir}/{name}"), model, inputs));
        }
    }
    out
}

#[test]
fn demo_models() {
    let Some(gpu) = backend("demo_models") else {
        return;
    };
    let mut report = Report::default();
    for (name, model, inputs) in demo_cases() {
        check_model(&gpu, &name, &model, &inputs, &mut report);
    }
    report.finish("demo_models");
}

// ---------------------------------------------------------------- CPU side only

/// Runs without a GPU: the generators above produce cases the validator
/// accepts (so the GPU run is not vacuous), the chain models are valid, and
/// the demo models decode and run on the CPU. Checks no GPU result.
#[test]
fn suite_inputs_are_valid_on_the_cpu() {
    let gens: [(&str, u64, u64, Generator); 6] = [
        ("dense", 1_000, 300, |r| dense_case(r, false)),
        ("conv2d", 3_000, 300, |r| conv_case(r, false)),
        ("pool", 5_000, 300, pool_case),
        ("elementwise", 6_000, 400, elementwise_case),
        ("layout", 7_000, 400, layout_case),
        ("layer_norm", 8_000, 200, layer_norm_case),
    ];
    for (name, base, count, generator) in gens {
        let mut valid = 0;
        let mut first_err = None;
        for seed in base..base + count {
            let (case, op, inputs, zp) = generator(&mut Rng(seed));
            let refs: Vec<&Tensor> = inputs.iter().collect();
            match execute_op(&op, &refs, zp) {
                Ok(_) => valid += 1,
                Err(e) => {
                    first_err.get_or_insert(format!("{case} (seed {seed}): {e}"));
                }
            }
        }
        say(&format!(
            "generator {name}: {valid}/{count} cases valid (CPU only){}",
            first_err
                .map(|e| format!("; first rejected: {e}"))
                .unwrap_or_default()
        ));
        assert!(
            valid * 10 >= count * 9,
            "generator {name}: only {valid}/{count} valid"
        );
    }
    for seed in 0..10u64 {
        let model = chain_model(&mut Rng(9_000 + seed));
        for (_, _, bytes) in random_inputs(&model, 9_100 + seed * 10, 2) {
            model.run(&bytes).expect("chain model runs on the CPU");
        }
    }
    for (name, model, inputs) in demo_cases() {
        for (case, _, bytes) in &inputs {
            model
                .run(bytes)
                .unwrap_or_else(|e| panic!("{name} {case}: {e}"));
        }
        say(&format!(
            "demo model {name}: {} inputs run on the CPU",
            inputs.len()
        ));
    }
}

/// Runs without a GPU: the MatMul and Reduce generators produce cases the
/// validator accepts, so their GPU runs are not vacuous.
#[test]
fn mat_mul_and_reduce_inputs_are_valid_on_the_cpu() {
    let gens: [(&str, u64, Generator); 2] = [
        ("mat_mul", 12_000, mat_mul_case),
        ("reduce", 13_000, reduce_case),
    ];
    for (name, base, generator) in gens {
        let mut valid = 0;
        for seed in base..base + 300 {
            let (case, op, inputs, zp) = generator(&mut Rng(seed));
            let refs: Vec<&Tensor> = inputs.iter().collect();
            match execute_op(&op, &refs, zp) {
                Ok(_) => valid += 1,
                Err(e) => panic!("generator {name}: {case} (seed {seed}): {e}"),
            }
        }
        say(&format!(
            "generator {name}: {valid}/300 cases valid (CPU only)"
        ));
    }
}

/// Without a device, `gpu-bench` says it needs one and exits 0. (With a
/// device it is run by `gpu-check.sh`, not here.)
#[test]
fn gpu_bench_without_a_gpu_exits_0() {
    if CudaBackend::open(0).is_ok() {
        say("gpu_bench_without_a_gpu_exits_0: a GPU is present; gpu-check.sh runs the bench");
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gpu-bench"))
        .arg("--quick")
        .output()
        .expect("run gpu-bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "gpu-bench failed: {text}");
    assert!(
        text.contains("needs a CUDA GPU"),
        "unexpected output: {text}"
    );
}
