//! Seeded operator cases shared by the golden-vector generator
//! (`examples/gen_vectors.rs`) and the property tests.
//!
//! The generator is a local SplitMix64 so a seed names the same case forever,
//! whatever version of `rand` is around.
#![allow(dead_code)]

use infera_kernels::ops::{AddParams, Conv2dParams, DenseParams, MulParams, Op, PoolParams};
use infera_kernels::ops::{
    ArgMaxParams, AvgPoolParams, ClipParams, ConcatParams, FlattenParams, GlobalAvgPoolParams,
    LayerNormParams, LutParams, PadParams, ReshapeParams, SoftmaxParams, TransposeParams,
};
use infera_kernels::ops::{MatMulParams, ReduceParams};
use infera_kernels::quant::Requant;
use infera_kernels::{DType, Tensor};

/// SplitMix64: tiny, stable, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
    pub fn usize(&mut self, lo: usize, hi: usize) -> usize {
        self.range(lo as i64, hi as i64) as usize
    }
    pub fn i8(&mut self) -> i8 {
        self.range(-128, 127) as i8
    }
    pub fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.i8()).collect()
    }
    pub fn zp(&mut self) -> i8 {
        self.range(-20, 20) as i8
    }
}

/// A requant that maps accumulators of about `scale` in magnitude onto int8.
pub fn requant_for(rng: &mut Rng, scale: u64) -> Requant {
    let bits = 64 - scale.max(1).leading_zeros() as u8; // ~log2(scale)
    Requant {
        multiplier: rng.range(1 << 30, i32::MAX as i64) as i32,
        shift: (31 + bits).saturating_sub(7).max(1),
    }
}

/// Layer normalisation of rows of `n` with gammas of about 40 output steps
/// per standard deviation (the shift is `F + 4`), biases of up to 40 steps
/// and epsilon below `max_eps`.
pub fn layer_norm(rng: &mut Rng, n: usize, max_eps: u64) -> LayerNormParams {
    LayerNormParams {
        gamma: (0..n).map(|_| rng.range(-640, 640) as i32).collect(),
        beta: (0..n)
            .map(|_| rng.range(-40 << 20, 40 << 20) as i32)
            .collect(),
        eps: rng.range(0, max_eps as i64) as u64,
        shift: infera_kernels::ops::NORM_FRAC_BITS as u8 + 4,
    }
}

/// MatMul of two random int8 tensors of `shape` (square in its last two axes).
fn mat_mul(r: &mut Rng, shape: Vec<usize>, clamp: bool) -> (Op, Vec<Tensor>, i8) {
    let k = shape[shape.len() - 1] as u64;
    let a = tensor(r, shape.clone());
    let b = tensor(r, shape);
    let requant = requant_for(r, k * 64 * 64);
    let zp = r.zp();
    let (act_min, act_max) = if clamp { (zp, 100) } else { (-128, 127) };
    let p = MatMulParams {
        requant,
        act_min,
        act_max,
    };
    (Op::MatMul(p), vec![a, b], zp)
}

pub struct Case {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<Tensor>,
    pub out_zero_point: i8,
    pub seed: u64,
}

/// A softmax table from `one` down, each entry a random fraction in
/// `[200/256, 1]` of the one before (integers only, never increasing).
pub fn softmax(rng: &mut Rng, one: u32) -> Op {
    let mut e = u64::from(one);
    let table = (0..256)
        .map(|_| {
            let v = e as u32;
            e = e * rng.range(200, 256) as u64 / 256;
            v
        })
        .collect();
    Op::Softmax(SoftmaxParams { table })
}

fn tensor(rng: &mut Rng, shape: Vec<usize>) -> Tensor {
    let n = shape.iter().product();
    let zp = rng.zp();
    Tensor::i8(shape, zp, rng.i8s(n))
}

/// Dense case: `rows` rows of `k` features to `n` outputs.
pub fn dense(rng: &mut Rng, rows: usize, k: usize, n: usize, out: DType) -> (Op, Vec<Tensor>, i8) {
    let weights = rng.i8s(n * k);
    let bias = (0..n).map(|_| rng.range(-5000, 5000) as i32).collect();
    let (requant, zp) = match out {
        DType::I8 => (
            (0..n)
                .map(|_| requant_for(rng, (k as u64) * 64 * 64 / 4))
                .collect(),
            rng.zp(),
        ),
        DType::I32 => (Vec::new(), 0),
    };
    let act_min = if rng.range(0, 1) == 0 { -128 } else { zp };
    let p = DenseParams {
        in_features: k,
        out_features: n,
        out_dtype: out,
        weights,
        bias,
        requant,
        act_min,
        act_max: 127,
    };
    (Op::Dense(p), vec![tensor(rng, vec![rows, k])], zp)
}

/// Convolution case.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    rng: &mut Rng,
    n: usize,
    c: usize,
    hw: [usize; 2],
    oc: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    pads: [usize; 4],
    groups: usize,
    out: DType,
) -> (Op, Vec<Tensor>, i8) {
    let red = c / groups * kernel[0] * kernel[1];
    let weights = rng.i8s(oc * red);
    let bias = (0..oc).map(|_| rng.range(-5000, 5000) as i32).collect();
    let (requant, zp) = match out {
        DType::I8 => (
            (0..oc)
                .map(|_| requant_for(rng, (red as u64) * 64 * 64 / 4))
                .collect(),
            rng.zp(),
        ),
        DType::I32 => (Vec::new(), 0),
    };
    let act_min = if rng.range(0, 1) == 0 { -128 } else { zp };
    let p = Conv2dParams {
        in_channels: c,
        out_channels: oc,
        kernel,
        stride,
        dilation,
        pads,
        groups,
        out_dtype: out,
        weights,
        bias,
        requant,
        act_min,
        act_max: 127,
    };
    (
        Op::Conv2d(p),
        vec![tensor(rng, vec![n, c, hw[0], hw[1]])],
        zp,
    )
}

/// Every golden case: name, seed, and its builder.
pub fn all() -> Vec<Case> {
    type Build = fn(&mut Rng) -> (Op, Vec<Tensor>, i8);
    let specs: Vec<(&str, Build)> = vec![
        ("dense_small", |r| dense(r, 1, 5, 3, DType::I8)),
        ("dense_batch_odd", |r| dense(r, 3, 37, 11, DType::I8)),
        ("dense_wide", |r| dense(r, 2, 200, 17, DType::I8)),
        ("dense_i32_out", |r| dense(r, 2, 19, 5, DType::I32)),
        ("conv2d_3x3_pad1", |r| {
            conv(
                r,
                1,
                3,
                [6, 7],
                5,
                [3, 3],
                [1, 1],
                [1, 1],
                [1, 1, 1, 1],
                1,
                DType::I8,
            )
        }),
        ("conv2d_stride2_dilation2_asym_pad", |r| {
            conv(
                r,
                2,
                2,
                [9, 8],
                3,
                [3, 2],
                [2, 1],
                [2, 2],
                [2, 0, 1, 3],
                1,
                DType::I8,
            )
        }),
        ("conv2d_grouped", |r| {
            conv(
                r,
                1,
                4,
                [5, 5],
                6,
                [3, 3],
                [1, 1],
                [1, 1],
                [1, 1, 1, 1],
                2,
                DType::I8,
            )
        }),
        ("conv2d_depthwise", |r| {
            conv(
                r,
                1,
                6,
                [7, 7],
                6,
                [3, 3],
                [2, 2],
                [1, 1],
                [1, 1, 1, 1],
                6,
                DType::I8,
            )
        }),
        ("conv2d_pointwise", |r| {
            conv(
                r,
                1,
                8,
                [4, 4],
                9,
                [1, 1],
                [1, 1],
                [1, 1],
                [0, 0, 0, 0],
                1,
                DType::I8,
            )
        }),
        ("conv2d_i32_out", |r| {
            conv(
                r,
                1,
                2,
                [4, 5],
                3,
                [2, 2],
                [1, 1],
                [1, 1],
                [0, 1, 1, 0],
                1,
                DType::I32,
            )
        }),
        ("max_pool_2x2_s2", |r| {
            let t = tensor(r, vec![1, 3, 6, 5]);
            let zp = t.zero_point;
            (
                Op::MaxPool(PoolParams {
                    kernel: [2, 2],
                    stride: [2, 2],
                    pads: [0; 4],
                }),
                vec![t],
                zp,
            )
        }),
        ("max_pool_3x3_s2_pad1", |r| {
            let t = tensor(r, vec![2, 2, 7, 7]);
            let zp = t.zero_point;
            (
                Op::MaxPool(PoolParams {
                    kernel: [3, 3],
                    stride: [2, 2],
                    pads: [1, 1, 1, 1],
                }),
                vec![t],
                zp,
            )
        }),
        ("avg_pool_3x3_pad1_exclude", |r| {
            let t = tensor(r, vec![1, 2, 5, 6]);
            let zp = t.zero_point;
            let pool = PoolParams {
                kernel: [3, 3],
                stride: [1, 1],
                pads: [1, 1, 1, 1],
            };
            (
                Op::AvgPool(AvgPoolParams {
                    pool,
                    count_include_pad: false,
                }),
                vec![t],
                zp,
            )
        }),
        ("avg_pool_2x3_s2_include_pad", |r| {
            let t = tensor(r, vec![1, 3, 6, 7]);
            let zp = t.zero_point;
            let pool = PoolParams {
                kernel: [2, 3],
                stride: [2, 2],
                pads: [1, 2, 0, 1],
            };
            (
                Op::AvgPool(AvgPoolParams {
                    pool,
                    count_include_pad: true,
                }),
                vec![t],
                zp,
            )
        }),
        ("global_avg_pool", |r| {
            let t = tensor(r, vec![2, 3, 5, 4]);
            let zp = t.zero_point;
            (Op::GlobalAvgPool(GlobalAvgPoolParams {}), vec![t], zp)
        }),
        ("clip_relu", |r| {
            let t = tensor(r, vec![4, 9]);
            let zp = t.zero_point;
            (Op::Clip(ClipParams { min: zp, max: 127 }), vec![t], zp)
        }),
        ("clip_relu6", |r| {
            let t = tensor(r, vec![3, 2, 5]);
            let zp = t.zero_point;
            (
                Op::Clip(ClipParams {
                    min: zp,
                    max: zp.saturating_add(60),
                }),
                vec![t],
                zp,
            )
        }),
        ("add_requant", |r| {
            let (a, b) = (tensor(r, vec![2, 3, 4]), tensor(r, vec![2, 3, 4]));
            let p = AddParams {
                multiplier_a: r.range(1 << 29, 1 << 30) as i32,
                multiplier_b: r.range(1 << 29, 1 << 30) as i32,
                shift: 30,
                act_min: -128,
                act_max: 127,
            };
            (Op::Add(p), vec![a, b], r.zp())
        }),
        ("add_relu", |r| {
            let (a, b) = (tensor(r, vec![1, 4, 3, 3]), tensor(r, vec![1, 4, 3, 3]));
            let zp = r.zp();
            let p = AddParams {
                multiplier_a: 1 << 30,
                multiplier_b: 3 << 28,
                shift: 31,
                act_min: zp,
                act_max: 127,
            };
            (Op::Add(p), vec![a, b], zp)
        }),
        ("mul_requant", |r| {
            let (a, b) = (tensor(r, vec![5, 7]), tensor(r, vec![5, 7]));
            let p = MulParams {
                requant: Requant {
                    multiplier: r.range(1 << 30, i32::MAX as i64) as i32,
                    shift: 38,
                },
                act_min: -128,
                act_max: 127,
            };
            (Op::Mul(p), vec![a, b], r.zp())
        }),
        ("requantize_i8", |r| {
            let t = tensor(r, vec![3, 11]);
            (
                Op::Requantize(Requant {
                    multiplier: r.range(1 << 30, i32::MAX as i64) as i32,
                    shift: 30,
                }),
                vec![t],
                r.zp(),
            )
        }),
        ("requantize_i32", |r| {
            let data = (0..24).map(|_| r.range(-200_000, 200_000) as i32).collect();
            let t = Tensor::i32(vec![2, 12], data);
            (
                Op::Requantize(Requant {
                    multiplier: 1_518_500_250,
                    shift: 42,
                }),
                vec![t],
                r.zp(),
            )
        }),
        ("reshape", |r| {
            let t = tensor(r, vec![2, 3, 4]);
            let zp = t.zero_point;
            (
                Op::Reshape(ReshapeParams { shape: vec![4, 6] }),
                vec![t],
                zp,
            )
        }),
        ("flatten_axis1", |r| {
            let t = tensor(r, vec![2, 3, 2, 2]);
            let zp = t.zero_point;
            (Op::Flatten(FlattenParams { axis: 1 }), vec![t], zp)
        }),
        ("transpose_nchw_to_nhwc", |r| {
            let t = tensor(r, vec![2, 3, 4, 5]);
            let zp = t.zero_point;
            (
                Op::Transpose(TransposeParams {
                    perm: vec![0, 2, 3, 1],
                }),
                vec![t],
                zp,
            )
        }),
        ("concat_channels", |r| {
            let zp = r.zp();
            let a = Tensor::i8(vec![1, 2, 3, 3], zp, r.i8s(18));
            let b = Tensor::i8(vec![1, 3, 3, 3], zp, r.i8s(27));
            (Op::Concat(ConcatParams { axis: 1 }), vec![a, b], zp)
        }),
        ("pad_spatial", |r| {
            let t = tensor(r, vec![1, 2, 3, 3]);
            let zp = t.zero_point;
            (
                Op::Pad(PadParams {
                    before: vec![0, 0, 1, 2],
                    after: vec![0, 1, 2, 0],
                }),
                vec![t],
                zp,
            )
        }),
        ("arg_max_last_axis", |r| {
            let t = Tensor::i8(
                vec![4, 10],
                0,
                r.i8s(40).into_iter().map(|v| v / 32).collect(),
            );
            (Op::ArgMax(ArgMaxParams { axis: 1 }), vec![t], 0)
        }),
        ("arg_max_i32_axis0", |r| {
            let t = Tensor::i32(vec![5, 3], (0..15).map(|_| r.range(-3, 3) as i32).collect());
            (Op::ArgMax(ArgMaxParams { axis: 0 }), vec![t], 0)
        }),
        // New cases go last: a case's seed is its position.
        ("lut_random_table", |r| {
            let t = tensor(r, vec![3, 5, 7]);
            let table = r.i8s(256);
            (Op::Lut(LutParams { table }), vec![t], r.zp())
        }),
        ("lut_every_input", |r| {
            // Every int8 value once, so every entry (both ends included) is read.
            let t = Tensor::i8(vec![2, 128], r.zp(), (i8::MIN..=i8::MAX).collect());
            let table = r.i8s(256);
            (Op::Lut(LutParams { table }), vec![t], r.zp())
        }),
        ("softmax_random_rows", |r| {
            let t = tensor(r, vec![3, 5, 7]);
            (softmax(r, 1 << 30), vec![t], -128)
        }),
        ("softmax_every_distance", |r| {
            // Row 0 holds every int8 value (every entry of the table is read,
            // the far ones rounding to 0 steps); row 1 is flat (256 / 256 = 1
            // step each); row 2 has one value far above the rest (its 256
            // steps clamp to 127).
            let mut x: Vec<i8> = (i8::MIN..=i8::MAX).collect();
            x.extend([7i8; 256]);
            x.extend((0..256).map(|i| if i == 100 { 127 } else { -128 }));
            let t = Tensor::i8(vec![3, 256], r.zp(), x);
            (softmax(r, 1 << 16), vec![t], -128)
        }),
        ("layer_norm_random", |r| {
            let t = tensor(r, vec![3, 4, 16]);
            (Op::LayerNorm(layer_norm(r, 16, 1 << 20)), vec![t], r.zp())
        }),
        ("layer_norm_constant_rows", |r| {
            // Constant rows (var = 0, with eps = 0: the clamped divisor),
            // both extremes, one value against the rest, and the extremes
            // -128 and 127 alternating.
            let mut data = vec![-128i8; 8];
            data.extend([127i8; 8]);
            data.extend([r.i8(); 8]);
            data.extend([-128, -128, -128, -128, -128, -128, -128, 127]);
            data.extend([-128, 127, -128, 127, -128, 127, -128, 127]);
            let t = Tensor::i8(vec![5, 8], r.zp(), data);
            let p = LayerNormParams {
                eps: 0,
                ..layer_norm(r, 8, 0)
            };
            (Op::LayerNorm(p), vec![t], r.zp())
        }),
        ("layer_norm_wide", |r| {
            let t = tensor(r, vec![2, 300]);
            (Op::LayerNorm(layer_norm(r, 300, 1 << 30)), vec![t], r.zp())
        }),
        // Square factors: the fuzzer's case models feed the model input to
        // both operands.
        ("mat_mul_heads", |r| mat_mul(r, vec![2, 3, 6, 6], false)),
        ("mat_mul_rank3_clamped", |r| mat_mul(r, vec![4, 5, 5], true)),
        ("mat_mul_rank2", |r| mat_mul(r, vec![17, 17], false)),
        ("reduce_mean_last_axis", |r| {
            let t = tensor(r, vec![2, 3, 8]);
            let requant = requant_for(r, 64);
            let p = ReduceParams {
                axes: vec![2],
                mean: true,
                keep_dims: true,
                requant,
            };
            (Op::Reduce(p), vec![t], r.zp())
        }),
        ("reduce_sum_two_axes", |r| {
            let t = tensor(r, vec![2, 4, 3, 5]);
            let requant = requant_for(r, 20 * 64);
            let p = ReduceParams {
                axes: vec![1, 3],
                mean: false,
                keep_dims: false,
                requant,
            };
            (Op::Reduce(p), vec![t], r.zp())
        }),
        ("reduce_mean_ties", |r| {
            // Pairs whose mean is an exact half, both signs: the rounding
            // rule decides every output.
            let data = (0..64).map(|_| r.range(-60, 60) as i8).collect();
            let t = Tensor::i8(vec![32, 2], 0, data);
            let p = ReduceParams {
                axes: vec![1],
                mean: true,
                keep_dims: false,
                requant: Requant {
                    multiplier: 1 << 30,
                    shift: 30,
                },
            };
            (Op::Reduce(p), vec![t], r.zp())
        }),
    ];
    specs
        .into_iter()
        .enumerate()
        .map(|(i, (name, build))| {
            let seed = 0x1000 + i as u64;
            let (op, inputs, out_zero_point) = build(&mut Rng(seed));
            Case {
                name: name.to_string(),
                op,
                inputs,
                out_zero_point,
                seed,
            }
        })
        .collect()
}
