//! The adversarial search of `gas-calibration --adversarial`: models an
//! attacker may register, chosen to make a block slow for the gas it pays.
//!
//! Every case is a model the validator admits (built through `Model::new`,
//! registered through the registry precompile). Each runs as 60 M-gas blocks
//! of inference calls through the node's `BlockExecutor`, on every kernel path
//! the node may take (the fastest this CPU has, and the portable reference
//! forced), with a warm cache and with a cache that keeps nothing (every call
//! loads and decodes the model from state: the cold, cycled-cache case).
//! A case whose call does not fit one transaction is refused by the registry
//! (`InvalidModel`) and reported as such.
//!
//! The families: every operator at its extreme shapes (reduction 1 and 2^16,
//! 2^16 outputs, grouped convolutions with one or two channels per group,
//! strides, dilations, paddings that make most taps fall outside the image,
//! 32x32 windows), int32 outputs, the per-node overhead (512 tiny nodes),
//! layout operators on the largest tensors, the largest models, and seeded
//! random graphs.

use infera_kernels::ops::{
    ArgMaxParams, AvgPoolParams, ClipParams, ConcatParams, GlobalAvgPoolParams, LayerNormParams,
    LutParams, MatMulParams, PadParams, ReduceParams, ReshapeParams, SoftmaxParams,
    TransposeParams,
};
use infera_kernels::{
    DType, Model, Op, TensorInfo, TensorSpec,
    model::Node,
    ops::{AddParams, Conv2dParams, DenseParams, MulParams, PoolParams},
    quant::Requant,
};

use crate::cases::Rng;

/// One candidate: a model and one valid input for it.
pub struct Case {
    pub name: String,
    pub model: Model,
    pub input: Vec<u8>,
}

/// Weights whose every channel passes the accumulator check for a reduction
/// of `red` (the largest magnitudes an attacker could use).
fn weights(rng: &mut Rng, count: usize, red: usize) -> Vec<i8> {
    let max = (i64::from(i32::MAX) / 255 / red.max(1) as i64 - 1).clamp(0, 127);
    (0..count).map(|_| rng.range(-max, max) as i8).collect()
}

fn requants(rng: &mut Rng, count: usize, red: usize) -> Vec<Requant> {
    (0..count)
        .map(|_| crate::cases::requant_for(rng, red as u64 * 64))
        .collect()
}

fn dense(rng: &mut Rng, k: usize, n: usize, out: DType) -> Op {
    Op::Dense(DenseParams {
        in_features: k,
        out_features: n,
        out_dtype: out,
        weights: weights(rng, k * n, k),
        bias: (0..n).map(|_| rng.range(-100, 100) as i32).collect(),
        requant: if out == DType::I8 {
            requants(rng, n, k)
        } else {
            Vec::new()
        },
        act_min: -128,
        act_max: 127,
    })
}

#[allow(clippy::too_many_arguments)]
fn conv(
    rng: &mut Rng,
    c: usize,
    oc: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    pads: [usize; 4],
    groups: usize,
    out: DType,
) -> Op {
    let red = c / groups * kernel[0] * kernel[1];
    Op::Conv2d(Conv2dParams {
        in_channels: c,
        out_channels: oc,
        kernel,
        stride,
        dilation,
        pads,
        groups,
        out_dtype: out,
        weights: weights(rng, oc * red, red),
        bias: (0..oc).map(|_| rng.range(-100, 100) as i32).collect(),
        requant: if out == DType::I8 {
            requants(rng, oc, red)
        } else {
            Vec::new()
        },
        act_min: -128,
        act_max: 127,
    })
}

fn pool(kernel: usize, stride: usize, pad: usize) -> PoolParams {
    PoolParams {
        kernel: [kernel, kernel],
        stride: [stride, stride],
        pads: [pad; 4],
    }
}

fn i8_input(shape: Vec<usize>) -> TensorInfo {
    TensorInfo {
        spec: TensorSpec {
            dtype: DType::I8,
            shape,
        },
        zero_point: 3,
    }
}

/// A model reading value `inputs` per node (`None`: the previous value).
fn graph(input: TensorInfo, ops: Vec<(Op, Option<Vec<usize>>)>) -> Option<Model> {
    let count = ops.len();
    let zp = input.zero_point;
    let nodes = ops
        .into_iter()
        .enumerate()
        .map(|(i, (op, inputs))| Node {
            inputs: inputs.unwrap_or_else(|| vec![i]),
            // Int32 outputs have zero point 0; every int8 value keeps the input's
            // (ops that keep the zero point need it).
            zero_point: match &op {
                Op::Dense(DenseParams {
                    out_dtype: DType::I32,
                    ..
                })
                | Op::Conv2d(Conv2dParams {
                    out_dtype: DType::I32,
                    ..
                })
                | Op::ArgMax(ArgMaxParams { .. }) => 0,
                // Softmax writes its fixed output quantisation.
                Op::Softmax(_) => -128,
                _ => zp,
            },
            scale_bits: 0,
            op,
        })
        .collect();
    Model::new(input, 0, nodes, count).ok()
}

fn chain(input: TensorInfo, ops: Vec<Op>) -> Option<Model> {
    graph(input, ops.into_iter().map(|op| (op, None)).collect())
}

fn case(rng: &mut Rng, name: impl Into<String>, model: Option<Model>, out: &mut Vec<Case>) {
    let name = name.into();
    match model {
        Some(model) => {
            let len = model.input_spec().byte_len();
            let input = (0..len).map(|_| rng.i8() as u8).collect();
            out.push(Case { name, model, input });
        }
        None => eprintln!("adversarial: case {name} is not a valid model; skipped"),
    }
}

/// A softmax whose exponentials fall off as `exp(-d / 20)`, in the
/// engine's 2^30 fixed point.
fn softmax() -> Op {
    Op::Softmax(SoftmaxParams {
        table: (0..256)
            .map(|d| ((1u64 << 30) as f64 * (-f64::from(d) / 20.0).exp()).round() as u32)
            .collect(),
    })
}

fn layer_norm(n: usize) -> Op {
    Op::LayerNorm(LayerNormParams {
        gamma: vec![1 << 12; n],
        beta: vec![-(1 << 10); n],
        eps: 1 << 20,
        shift: 24,
    })
}

fn reduce(axes: Vec<usize>, mean: bool, keep_dims: bool) -> Op {
    Op::Reduce(ReduceParams {
        axes,
        mean,
        keep_dims,
        requant: Requant {
            multiplier: 1 << 30,
            shift: 36,
        },
    })
}

/// The transformer operators at their extremes: the longest rows and the
/// most rows of one element (per-row work: a maximum, a sum, an integer
/// square root), the longest MatMul reduction and the most MACs, and
/// reductions over everything or over one element each.
fn transformer_cases(r: &mut Rng, o: &mut Vec<Case>) {
    for shape in [
        vec![4, 65_536],
        vec![65_536, 4],
        vec![4, 65_536, 1],
        vec![16_384, 1],
        vec![1, 65_536],
        vec![256, 256],
    ] {
        let m = chain(i8_input(shape.clone()), vec![softmax()]);
        case(r, format!("transformer softmax {shape:?}"), m, o);
    }
    for shape in [
        vec![32, 4_096],
        vec![65_536, 1],
        vec![16_384, 1],
        vec![32_768, 2],
        vec![8_192, 2],
        vec![8_192, 16],
        vec![4, 4_096],
    ] {
        let n = *shape.last().expect("rank 2");
        let m = chain(i8_input(shape.clone()), vec![layer_norm(n)]);
        case(r, format!("transformer layer_norm {shape:?}"), m, o);
    }
    // x [b, m, k] times its own transpose: [b, m, m] outputs of k MACs each.
    for (b, m, k) in [
        (1, 1, 32_768),
        (1, 256, 256),
        (1, 512, 8),
        (64, 16, 64),
        (1, 32, 4_096),
        (4, 128, 128),
    ] {
        let mm = Op::MatMul(MatMulParams {
            requant: Requant {
                multiplier: 1 << 30,
                shift: 45,
            },
            act_min: -128,
            act_max: 127,
        });
        let model = graph(
            i8_input(vec![b, m, k]),
            vec![
                (
                    Op::Transpose(TransposeParams {
                        perm: vec![0, 2, 1],
                    }),
                    None,
                ),
                (mm, Some(vec![0, 1])),
            ],
        );
        case(r, format!("transformer mat_mul b{b} m{m} k{k}"), model, o);
    }
    for (shape, axes, keep) in [
        (vec![4, 65_536], vec![1], false),
        (vec![65_536, 4], vec![1], false),
        (vec![4, 65_536, 1], vec![2], false),
        (vec![16_384, 1], vec![1], false),
        (vec![16, 64, 64], vec![0, 1, 2], true),
        (vec![64, 16, 256], vec![0, 2], false),
    ] {
        let m = chain(
            i8_input(shape.clone()),
            vec![reduce(axes.clone(), true, keep)],
        );
        case(
            r,
            format!("transformer reduce_mean {shape:?} axes {axes:?}"),
            m,
            o,
        );
    }
    for shape in [vec![4, 65_536], vec![1_024, 256]] {
        let m = chain(
            i8_input(shape.clone()),
            vec![Op::Lut(LutParams::from_fn(|x| x.wrapping_mul(5)))],
        );
        case(r, format!("transformer lut {shape:?}"), m, o);
    }
}

/// Every family at its extremes, then `random` seeded random graphs.
pub fn cases(seed: u64, random: usize) -> Vec<Case> {
    let mut rng = Rng(seed);
    let r = &mut rng;
    let mut out = Vec::new();
    let o = &mut out;
    use DType::{I8, I32};

    // Dense: padding of short reductions, wide outputs, long reductions,
    // many rows, int32 outputs, the largest weights (memory-bound GEMV).
    for (rows, k, n, dt) in [
        (1, 1, 65_536, I8),
        (64, 1, 65_536, I32),
        (4_096, 1, 1_024, I8),
        (1_024, 17, 1_024, I32),
        (64, 65_536, 1, I8),
        (1, 65_536, 16, I32),
        (1, 3, 3, I8),
        (1, 4_000, 4_096, I8),
        (1, 2_048, 4_096, I32),
        (16, 1_024, 1_024, I8),
        (256, 256, 256, I8),
        // The same families shrunk until one call fits one transaction.
        (8, 1, 8_192, I32),
        (512, 1, 1_024, I8),
        (128, 17, 1_024, I32),
        (4, 65_536, 1, I8),
        (1, 65_536, 1, I32),
        (1, 512, 1_024, I8),
        (1, 256, 2_048, I32),
        (2, 1_024, 512, I8),
    ] {
        let op = dense(r, k, n, dt);
        let m = chain(i8_input(vec![rows, k]), vec![op]);
        case(r, format!("dense {rows}x{k}->{n} {dt:?}"), m, o);
    }

    // Convolutions: (c, hw, oc, kernel, stride, dilation, pad, groups, dtype).
    type ConvCase = (
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        DType,
    );
    let convs: [ConvCase; 35] = [
        // The reported attack: grouped 1x1, stride 2, two channels a group.
        (65_536, 4, 65_536, 1, 2, 1, 0, 32_768, I32),
        (65_536, 2, 65_536, 1, 1, 1, 0, 32_768, I8),
        (512, 64, 512, 1, 2, 1, 0, 256, I32),
        (512, 32, 256, 3, 1, 1, 1, 256, I8),
        (256, 32, 1_024, 1, 1, 1, 0, 256, I8),
        // Depthwise: strided (no fast path), wide windows, channel multipliers.
        (1_024, 64, 1_024, 3, 2, 1, 1, 1_024, I8),
        (64, 64, 64, 32, 1, 1, 16, 64, I32),
        (16, 128, 1_024, 3, 1, 1, 1, 16, I8),
        // Most taps in the padding: dilation and padding at their limits.
        (4, 4, 16, 3, 1, 32, 64, 1, I8),
        (1, 1, 64, 32, 1, 1, 64, 1, I8),
        // One input channel, many outputs; huge strides.
        (1, 256, 4_096, 1, 1, 1, 0, 1, I32),
        (8, 1_024, 8, 3, 32, 1, 1, 1, I8),
        // Ordinary shapes (fast paths at their best and worst).
        (64, 56, 64, 3, 1, 1, 1, 1, I8),
        (3, 224, 64, 7, 2, 1, 3, 1, I8),
        (128, 28, 128, 1, 1, 1, 0, 1, I32),
        (2_048, 7, 2_048, 3, 1, 1, 1, 1, I8),
        // The same families shrunk until one call fits one transaction.
        (8_192, 4, 8_192, 1, 2, 1, 0, 4_096, I32),
        (4_096, 2, 4_096, 1, 1, 1, 0, 2_048, I8),
        (512, 16, 512, 1, 2, 1, 0, 256, I32),
        (512, 8, 256, 3, 1, 1, 1, 256, I8),
        (1_024, 16, 1_024, 3, 2, 1, 1, 1_024, I8),
        (16, 16, 16, 32, 1, 1, 16, 16, I32),
        (1, 1, 4, 32, 1, 1, 64, 1, I8),
        (64, 14, 64, 3, 1, 1, 1, 1, I8),
        (3, 56, 64, 7, 2, 1, 3, 1, I8),
        (256, 7, 256, 3, 1, 1, 1, 1, I8),
        (16, 64, 16, 3, 1, 1, 1, 1, I32),
        (32, 32, 32, 5, 2, 2, 4, 2, I8),
        // The most weights for the least work: decoding (packing for every
        // fast path) dominates a cold call.
        (256, 1, 256, 3, 1, 1, 1, 1, I8),
        (64, 1, 1_024, 3, 1, 1, 1, 1, I32),
        (128, 2, 128, 3, 1, 1, 1, 1, I8),
        (1_024, 1, 512, 1, 1, 1, 0, 1, I8),
        (16, 1, 64, 32, 1, 1, 16, 1, I8),
        (160, 1, 160, 3, 1, 1, 1, 1, I8),
        (512, 1, 256, 1, 1, 1, 0, 1, I32),
    ];
    for (c, hw, oc, k, s, d, p, g, dt) in convs {
        let op = conv(r, c, oc, [k, k], [s, s], [d, d], [p; 4], g, dt);
        let m = chain(i8_input(vec![1, c, hw, hw]), vec![op]);
        case(
            r,
            format!("conv c{c} {hw}x{hw} -> {oc} k{k} s{s} d{d} p{p} g{g} {dt:?}"),
            m,
            o,
        );
    }

    // Pools: 32x32 windows at stride 1, and the global mean of the largest tensor.
    for (c, hw, k, s, avg) in [
        (1, 128, 32, 1, false),
        (1, 128, 32, 1, true),
        (64, 128, 2, 1, false),
        (1_024, 64, 3, 1, true),
        (1, 48, 32, 1, false),
        (1, 48, 32, 1, true),
        (16, 64, 2, 1, false),
        (64, 32, 3, 1, true),
    ] {
        let p = pool(k, s, 0);
        let op = if avg {
            Op::AvgPool(AvgPoolParams {
                pool: p,
                count_include_pad: true,
            })
        } else {
            Op::MaxPool(p)
        };
        let m = chain(i8_input(vec![1, c, hw, hw]), vec![op]);
        case(
            r,
            format!(
                "{} c{c} {hw}x{hw} k{k} s{s}",
                if avg { "avg_pool" } else { "max_pool" }
            ),
            m,
            o,
        );
    }
    for c in [1_024, 64] {
        let m = chain(
            i8_input(vec![1, c, 64, 64]),
            vec![Op::GlobalAvgPool(GlobalAvgPoolParams {})],
        );
        case(r, format!("global_avg_pool c{c} 64x64"), m, o);
    }

    // Per-node overhead: the most nodes on the smallest tensors.
    let m = chain(
        i8_input(vec![1]),
        (0..512)
            .map(|_| Op::Clip(ClipParams { min: -5, max: 5 }))
            .collect(),
    );
    case(r, "512 clips of 1 element", m, o);
    let m = chain(
        i8_input(vec![1]),
        (0..512)
            .map(|_| Op::Lut(LutParams::from_fn(|x| x.wrapping_mul(3))))
            .collect(),
    );
    case(r, "512 lookup tables of 1 element", m, o);
    transformer_cases(r, o);
    // The largest tensor through a table: a gather per element whose index
    // depends on the data.
    for c in [1_024, 64] {
        let m = chain(
            i8_input(vec![1, c, 64, 64]),
            vec![Op::Lut(LutParams::from_fn(|x| x.wrapping_mul(-7)))],
        );
        case(r, format!("lut c{c} 64x64"), m, o);
    }
    let m = chain(
        i8_input(vec![1, 1]),
        (0..512)
            .map(|_| Op::Transpose(TransposeParams { perm: vec![1, 0] }))
            .collect(),
    );
    case(r, "512 transposes of 1 element", m, o);
    let m = chain(
        i8_input(vec![16]),
        (0..512)
            .map(|i| {
                if i % 2 == 0 {
                    Op::Reshape(ReshapeParams { shape: vec![4, 4] })
                } else {
                    Op::Reshape(ReshapeParams { shape: vec![16] })
                }
            })
            .collect(),
    );
    case(r, "512 reshapes of 16 elements", m, o);

    // Layout and element-wise operators on the largest tensors.
    let m = chain(
        i8_input(vec![2_048, 2_048]),
        vec![Op::Transpose(TransposeParams { perm: vec![1, 0] }); 4],
    );
    case(r, "4 transposes of 2048x2048", m, o);
    for count in [32, 2] {
        let m = chain(
            i8_input(vec![8, 8, 8, 8, 8, 8]),
            vec![
                Op::Transpose(TransposeParams {
                    perm: vec![5, 4, 3, 2, 1, 0]
                });
                count
            ],
        );
        case(r, format!("{count} rank-6 transposes of 8^6"), m, o);
    }
    let m = chain(
        i8_input(vec![256, 256]),
        vec![Op::Transpose(TransposeParams { perm: vec![1, 0] }); 4],
    );
    case(r, "4 transposes of 256x256", m, o);
    for rows in [256, 8] {
        let m = graph(
            i8_input(vec![1, rows, 1_024]),
            vec![(Op::Concat(ConcatParams { axis: 1 }), Some(vec![0; 16]))],
        );
        case(r, format!("concat of 16 x {rows}K along axis 1"), m, o);
    }
    for count in [12, 2] {
        let m = chain(
            i8_input(vec![1, 1]),
            vec![
                Op::Pad(PadParams {
                    before: vec![64, 64],
                    after: vec![64, 64],
                });
                count
            ],
        );
        case(r, format!("{count} pads of 64 from 1x1"), m, o);
    }
    let add = Op::Add(AddParams {
        multiplier_a: 1 << 30,
        multiplier_b: 1 << 29,
        shift: 31,
        act_min: -128,
        act_max: 127,
    });
    for rows in [4_096, 128] {
        let m = graph(
            i8_input(vec![rows, 1_024]),
            vec![
                (add.clone(), Some(vec![0, 0])),
                (add.clone(), Some(vec![1, 1])),
            ],
        );
        case(r, format!("2 adds of {rows}K"), m, o);
    }
    let mul = Op::Mul(MulParams {
        requant: Requant {
            multiplier: 1 << 30,
            shift: 37,
        },
        act_min: -128,
        act_max: 127,
    });
    for rows in [4_096, 128] {
        let m = graph(
            i8_input(vec![rows, 1_024]),
            vec![(mul.clone(), Some(vec![0, 0]))],
        );
        case(r, format!("mul of {rows}K"), m, o);
    }
    let m = chain(
        i8_input(vec![1, 64]),
        vec![
            dense(r, 64, 4_096, I32),
            Op::Requantize(Requant {
                multiplier: 1 << 30,
                shift: 40,
            }),
            Op::ArgMax(ArgMaxParams { axis: 1 }),
        ],
    );
    case(r, "dense to int32, requantize, argmax", m, o);
    for rows in [4_096, 128] {
        let m = chain(
            i8_input(vec![rows, 1_024]),
            vec![Op::ArgMax(ArgMaxParams { axis: 0 })],
        );
        case(r, format!("argmax over axis 0 of {rows}x1024"), m, o);
    }

    for i in 0..random {
        let m = random_graph(r);
        case(r, format!("random graph {i}"), m, o);
    }
    out
}

/// A random chain of 1-12 operators on a random NCHW input, each drawn with
/// random (valid or not: invalid draws are retried) parameters.
fn random_graph(r: &mut Rng) -> Option<Model> {
    for _ in 0..50 {
        let c = 1 << r.usize(0, 8);
        let hw = 1 << r.usize(0, 6);
        let mut shape = vec![1, c, hw, hw];
        let input = i8_input(shape.clone());
        let mut ops = Vec::new();
        for _ in 0..r.usize(1, 12) {
            let [_, c, h, _] = [shape[0], shape[1], shape[2], shape[3]];
            let op = match r.usize(0, 7) {
                0 => {
                    let g = [1, c, (c / 2).max(1)][r.usize(0, 2)];
                    let oc = g * r.usize(1, 4);
                    let k = r.usize(1, 5.min(h + 2));
                    let s = r.usize(1, 3);
                    let d = r.usize(1, 2);
                    let p = r.usize(0, k - 1);
                    let dt = if r.usize(0, 3) == 0 {
                        DType::I32
                    } else {
                        DType::I8
                    };
                    conv(r, c, oc, [k, k], [s, s], [d, d], [p; 4], g, dt)
                }
                1 => Op::MaxPool(pool(r.usize(1, 3), r.usize(1, 2), 0)),
                2 => Op::AvgPool(AvgPoolParams {
                    pool: pool(r.usize(1, 3), r.usize(1, 2), 0),
                    count_include_pad: r.usize(0, 1) == 1,
                }),
                3 => Op::Clip(ClipParams { min: -50, max: 50 }),
                4 => Op::Transpose(TransposeParams {
                    perm: vec![0, 1, 3, 2],
                }),
                5 => Op::Pad(PadParams {
                    before: vec![0, 0, 1, 1],
                    after: vec![0, 0, 1, 1],
                }),
                6 => Op::Lut(LutParams {
                    table: (0..256).map(|_| r.usize(0, 255) as u8 as i8).collect(),
                }),
                _ => Op::Requantize(Requant {
                    multiplier: 1 << 30,
                    shift: 31,
                }),
            };
            ops.push(op);
            let Some(m) = chain(input.clone(), ops.clone()) else {
                ops.pop();
                continue;
            };
            let out = m.output_spec();
            if out.dtype != DType::I8 || out.shape.len() != 4 {
                // Keep chains on int8 NCHW: requantise int32 outputs.
                ops.push(Op::Requantize(Requant {
                    multiplier: 1 << 30,
                    shift: 40,
                }));
            }
            shape = chain(input.clone(), ops.clone())?
                .output_spec()
                .shape
                .clone();
        }
        if let Some(m) = chain(input, ops) {
            return Some(m);
        }
    }
    None
}
