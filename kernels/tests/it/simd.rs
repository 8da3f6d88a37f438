//! The fast kernels (`Kernels::Best`: AVX2 on an x86-64 CPU that has it)
//! against the portable reference kernels (`Kernels::Portable`): identical
//! bytes on random shapes (odd sizes, reductions that are not a multiple of any
//! lane width, one row, tile edges, large layers), extreme values (activations
//! and weights at -128 and 127, zero points at -128 and 127, biases that use
//! the whole accumulator headroom, multipliers 0 and `i32::MAX`, shifts 1 and
//! 62), through `execute_op` and through `Model::run_with` with threads.
//!
//! On a CPU without a fast path both sides run the portable kernels and the
//! tests still pass; `fast_path_is_reported` says which case this is.

use crate::cases::Rng;
use crate::{single_op_model, vectors};
use infera_kernels::cpu::{self, Kernels};
use infera_kernels::model::RunOptions;
use infera_kernels::ops::{Conv2dParams, DenseParams};
use infera_kernels::quant::Requant;
use infera_kernels::{DType, Op, Tensor};
use proptest::prelude::*;

/// How extreme the generated values are.
#[derive(Debug, Clone, Copy)]
struct Style {
    /// 0 random, 1 all -128, 2 all 127, 3 alternating -128 / 127.
    values: u8,
    /// 0 random, 1 all -128, 2 all 127, 3 alternating -128 / 127, 4 sparse.
    weights: u8,
    /// 0 small random, 1 the largest valid zero point magnitudes (-128 or 127).
    zero_points: u8,
    /// 0 small random bias, 1 the whole headroom `i32::MAX - 255 * sum|w|`, signed at random.
    bias: u8,
    /// 0 typical requant, 1 extreme multipliers and shifts.
    requant: u8,
    /// int8 output (else int32).
    i8_out: bool,
}

fn style() -> impl Strategy<Value = Style> {
    (0u8..4, 0u8..5, 0u8..2, 0u8..2, 0u8..2, any::<bool>()).prop_map(
        |(values, weights, zero_points, bias, requant, i8_out)| Style {
            values,
            weights,
            zero_points,
            bias,
            requant,
            i8_out,
        },
    )
}

fn fill(rng: &mut Rng, n: usize, kind: u8) -> Vec<i8> {
    (0..n)
        .map(|i| match kind {
            1 => -128,
            2 => 127,
            3 => {
                if i % 2 == 0 {
                    -128
                } else {
                    127
                }
            }
            4 if rng.range(0, 3) != 0 => 0,
            _ => rng.i8(),
        })
        .collect()
}

fn zero_point(rng: &mut Rng, st: &Style) -> i8 {
    if st.zero_points == 1 {
        if rng.range(0, 1) == 0 { -128 } else { 127 }
    } else {
        rng.zp()
    }
}

/// Biases, requant, output zero point and clamp for `outs` channels of `red` weights each.
struct Tail {
    bias: Vec<i32>,
    requant: Vec<Requant>,
    out_dtype: DType,
    zp: i8,
    lo: i8,
    hi: i8,
}

fn tail(rng: &mut Rng, st: &Style, weights: &[i8], outs: usize, red: usize) -> Tail {
    let bias = weights
        .chunks_exact(red)
        .map(|row| {
            let room =
                i64::from(i32::MAX) - 255 * row.iter().map(|&w| i64::from(w).abs()).sum::<i64>();
            let b = if st.bias == 1 {
                room
            } else {
                rng.range(-5000, 5000).clamp(-room, room)
            };
            (if rng.range(0, 1) == 0 { b } else { -b }) as i32
        })
        .collect();
    if !st.i8_out {
        return Tail {
            bias,
            requant: Vec::new(),
            out_dtype: DType::I32,
            zp: 0,
            lo: -128,
            hi: 127,
        };
    }
    let requant = (0..outs)
        .map(|_| {
            if st.requant == 1 {
                let multiplier = match rng.range(0, 3) {
                    0 => 0,
                    1 => i32::MAX,
                    2 => 1,
                    _ => rng.range(0, i64::from(i32::MAX)) as i32,
                };
                let shift = match rng.range(0, 3) {
                    0 => 1,
                    1 => 62,
                    2 => 31,
                    _ => rng.range(1, 62) as u8,
                };
                Requant { multiplier, shift }
            } else {
                // About the scale of a real layer, so that outputs are not all clamped.
                Requant {
                    multiplier: rng.range(1 << 30, i64::from(i32::MAX)) as i32,
                    shift: rng.range(20, 40) as u8,
                }
            }
        })
        .collect();
    let zp = zero_point(rng, st);
    let (a, b) = (rng.i8(), rng.i8());
    let (lo, hi) = match rng.range(0, 2) {
        0 => (-128, 127),
        1 => (zp, 127),
        _ => (a.min(b), a.max(b)),
    };
    Tail {
        bias,
        requant,
        out_dtype: DType::I8,
        zp,
        lo,
        hi,
    }
}

fn dense_case(seed: u64, st: &Style, rows: usize, k: usize, n: usize) -> (Op, Tensor, i8) {
    let mut rng = Rng(seed);
    let weights = fill(&mut rng, n * k, st.weights);
    let t = tail(&mut rng, st, &weights, n, k);
    let zx = zero_point(&mut rng, st);
    let x = Tensor::i8(vec![rows, k], zx, fill(&mut rng, rows * k, st.values));
    let op = Op::Dense(DenseParams {
        in_features: k,
        out_features: n,
        out_dtype: t.out_dtype,
        weights,
        bias: t.bias,
        requant: t.requant,
        act_min: t.lo,
        act_max: t.hi,
    });
    (op, x, t.zp)
}

/// Convolution geometry.
#[derive(Debug, Clone, Copy)]
struct Geom {
    n: usize,
    groups: usize,
    cg: usize,
    og: usize,
    hw: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    pads: [usize; 4],
}

fn conv_case(seed: u64, st: &Style, g: &Geom) -> Option<(Op, Tensor, i8)> {
    let [h, w] = g.hw;
    for d in 0..2 {
        let extent = g.dilation[d] * (g.kernel[d] - 1) + 1;
        if g.hw[d] + g.pads[d] + g.pads[d + 2] < extent {
            return None;
        }
    }
    let mut rng = Rng(seed);
    let (c, oc) = (g.groups * g.cg, g.groups * g.og);
    let red = g.cg * g.kernel[0] * g.kernel[1];
    let weights = fill(&mut rng, oc * red, st.weights);
    let t = tail(&mut rng, st, &weights, oc, red);
    let zx = zero_point(&mut rng, st);
    let x = Tensor::i8(
        vec![g.n, c, h, w],
        zx,
        fill(&mut rng, g.n * c * h * w, st.values),
    );
    let op = Op::Conv2d(Conv2dParams {
        in_channels: c,
        out_channels: oc,
        kernel: g.kernel,
        stride: g.stride,
        dilation: g.dilation,
        pads: g.pads,
        groups: g.groups,
        out_dtype: t.out_dtype,
        weights,
        bias: t.bias,
        requant: t.requant,
        act_min: t.lo,
        act_max: t.hi,
    });
    Some((op, x, t.zp))
}

/// Both paths, single-threaded, through `execute_op_with`.
fn same_bytes(op: &Op, x: &Tensor, zp: i8) -> Result<(), TestCaseError> {
    let fast = cpu::execute_op_with(op, &[x], zp, Kernels::Best).expect("valid case");
    let portable = cpu::execute_op_with(op, &[x], zp, Kernels::Portable).expect("valid case");
    prop_assert_eq!(fast.to_bytes(), portable.to_bytes());
    prop_assert_eq!(fast, portable);
    Ok(())
}

/// Convolutions wide enough for the AMX tiles (16 or more input channels per
/// group, stride 1 mostly, most above the tiles' minimum work), with few
/// output positions to keep cases cheap.
fn wide_geom() -> impl Strategy<Value = Geom> {
    (
        (1usize..3, 1usize..3, 16usize..150, 8usize..40),
        (4usize..12, 4usize..14, 1usize..4, 1usize..4),
        (0usize..4, 1usize..3, 1usize..3),
        prop::array::uniform4(0usize..3),
    )
        .prop_map(
            |((n, groups, cg, og), (h, w, kh, kw), (s, dh, dw), pads)| Geom {
                n,
                groups,
                cg,
                og,
                hw: [h, w],
                kernel: [kh, kw],
                stride: [s.saturating_sub(2) + 1; 2],
                dilation: [dh, dw],
                pads,
            },
        )
}

fn geom() -> impl Strategy<Value = Geom> {
    (
        (1usize..3, 1usize..4, 1usize..7, 1usize..15),
        (1usize..21, 1usize..21, 1usize..6, 1usize..6),
        (0usize..5, 0usize..5, 1usize..3, 1usize..3),
        prop::array::uniform4(0usize..4),
    )
        .prop_map(
            |((n, groups, cg, og), (h, w, kh, kw), (sh, sw, dh, dw), pads)| Geom {
                n,
                groups,
                cg,
                og,
                hw: [h, w],
                kernel: [kh, kw],
                // Stride 1 (the direct kernel) most of the time, 2..4 (im2col) otherwise.
                stride: [sh.saturating_sub(2) + 1, sw.saturating_sub(2) + 1],
                dilation: [dh, dw],
                pads,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    /// Small shapes (tile edges of the vector kernels), and shapes at AMX
    /// tile sizes (8+ rows, reductions of several 64-input steps).
    #[test]
    fn dense_fast_path_matches_portable(
        seed in any::<u64>(), st in style(),
        (rows, k, n) in prop_oneof![
            (1usize..14, 1usize..300, 1usize..70),
            (8usize..40, 300usize..700, 40usize..90),
        ],
    ) {
        let (op, x, zp) = dense_case(seed, &st, rows, k, n);
        same_bytes(&op, &x, zp)?;
    }

    #[test]
    fn conv_fast_path_matches_portable(
        seed in any::<u64>(), st in style(), g in prop_oneof![geom(), wide_geom()],
    ) {
        if let Some((op, x, zp)) = conv_case(seed, &st, &g) {
            same_bytes(&op, &x, zp)?;
        }
    }

    #[test]
    fn wide_layers_agree_across_threads(
        seed in any::<u64>(), st in style(), g in wide_geom(), threads in 2usize..5,
        (rows, k, n) in (8usize..70, 1usize..200, 1usize..90),
    ) {
        if let Some((op, x, zp)) = conv_case(seed, &st, &g) {
            threads_agree(op, &x, zp, threads)?;
        }
        let (op, x, zp) = dense_case(seed, &st, rows, k, n);
        threads_agree(op, &x, zp, threads)?;
    }

    #[test]
    fn depthwise_fast_path_matches_portable(
        seed in any::<u64>(), st in style(), mut g in geom(), c in 1usize..20, mult in 1usize..4,
        (h, w) in (1usize..40, 1usize..40),
    ) {
        // One input channel per group (depthwise, with a channel multiplier).
        g.groups = c;
        g.cg = 1;
        g.og = mult;
        g.hw = [h, w];
        if let Some((op, x, zp)) = conv_case(seed, &st, &g) {
            same_bytes(&op, &x, zp)?;
        }
    }

    #[test]
    fn models_agree_across_kernels_and_threads(
        seed in any::<u64>(), st in style(), g in geom(), threads in 1usize..5,
    ) {
        if let Some((op, x, zp)) = conv_case(seed, &st, &g) {
            threads_agree(op, &x, zp, threads)?;
        }
        let (op, x, zp) = dense_case(seed, &st, 1 + (seed % 9) as usize, 1 + (seed % 97) as usize, 1 + (seed % 53) as usize);
        threads_agree(op, &x, zp, threads)?;
    }
}

/// `op` as a one-node model: the fast kernels on `threads` threads give the
/// portable kernels' single-threaded bytes.
fn threads_agree(op: Op, x: &Tensor, zp: i8, threads: usize) -> Result<(), TestCaseError> {
    let fast = RunOptions {
        threads,
        kernels: Kernels::Best,
    };
    let portable = RunOptions {
        threads: 1,
        kernels: Kernels::Portable,
    };
    let model = single_op_model(op, x, zp);
    let bytes = x.to_bytes();
    prop_assert_eq!(
        model.run_with(&bytes, fast).expect("run"),
        model.run_with(&bytes, portable).expect("run")
    );
    Ok(())
}

fn styles() -> Vec<Style> {
    let mut out = Vec::new();
    for (values, weights) in [(0, 0), (1, 1), (2, 2), (3, 3), (1, 2), (2, 1)] {
        for i8_out in [true, false] {
            out.push(Style {
                values,
                weights,
                zero_points: 1,
                bias: 1,
                requant: u8::from(i8_out),
                i8_out,
            });
        }
    }
    out
}

#[test]
fn large_layers_and_extremes_match_portable() {
    let dense = [
        (1, 1024, 1024),
        (64, 1024, 130),
        (7, 2049, 33),
        (13, 255, 257),
        // AMX: rows at and past one tile, reductions short of a 64-input step.
        (8, 300, 70),
        (33, 129, 47),
        (100, 700, 100),
    ];
    let convs = [
        // 3x3 pad 1 (direct), 1x1, 3x3 stride 2 (im2col), 5x5 dilation 2, odd channels.
        (64, 16, [30, 30], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 1),
        (128, 24, [28, 28], [1, 1], [1, 1], [1, 1], [0, 0, 0, 0], 1),
        (32, 16, [29, 29], [3, 3], [2, 2], [1, 1], [1, 1, 1, 1], 1),
        (9, 7, [23, 19], [5, 5], [1, 1], [2, 2], [4, 3, 2, 1], 1),
        (48, 64, [20, 20], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 48),
        (24, 48, [17, 33], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 24),
        (16, 16, [10, 10], [3, 3], [1, 1], [1, 1], [0, 0, 0, 0], 4),
        // AMX: channel blocks of 64 with a partial last one, quads short of a
        // block, two groups, dilation, asymmetric pads.
        (80, 40, [12, 13], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 1),
        (100, 33, [9, 15], [3, 2], [1, 1], [2, 1], [2, 0, 1, 2], 1),
        (17, 50, [15, 15], [1, 1], [1, 1], [1, 1], [0, 0, 0, 0], 1),
        (64, 64, [14, 14], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 2),
        (200, 16, [7, 7], [1, 1], [1, 1], [1, 1], [0, 0, 0, 0], 1),
    ];
    for (i, st) in styles().iter().enumerate() {
        let seed = 0x5EED_0000 + i as u64;
        for &(rows, k, n) in &dense {
            let (op, x, zp) = dense_case(seed, st, rows, k, n);
            same_bytes(&op, &x, zp).unwrap_or_else(|e| panic!("dense {rows}x{k}x{n} {st:?}: {e}"));
        }
        for &(c, oc, hw, kernel, stride, dilation, pads, groups) in &convs {
            let g = Geom {
                n: 1,
                groups,
                cg: c / groups,
                og: oc / groups,
                hw,
                kernel,
                stride,
                dilation,
                pads,
            };
            let (op, x, zp) = conv_case(seed, st, &g).expect("fits");
            same_bytes(&op, &x, zp).unwrap_or_else(|e| panic!("conv {g:?} {st:?}: {e}"));
        }
    }
}

#[test]
fn golden_vectors_match_on_both_paths() {
    let all = vectors::load_all();
    assert!(!all.is_empty());
    for (path, v) in &all {
        let ins: Vec<&Tensor> = v.inputs.iter().collect();
        for kernels in [Kernels::Portable, Kernels::Best] {
            let got = cpu::execute_op_with(&v.op, &ins, v.out_zero_point, kernels)
                .unwrap_or_else(|e| panic!("{}: {e}", v.name));
            assert_eq!(
                got,
                v.expected,
                "vector {} with {kernels:?} kernels at {}",
                v.name,
                path.display()
            );
        }
    }
}

#[test]
fn fast_path_is_reported() {
    let fast = cpu::fast_kernels();
    #[cfg(target_arch = "x86_64")]
    assert_eq!(fast.is_some(), std::arch::is_x86_feature_detected!("avx2"));
    #[cfg(not(target_arch = "x86_64"))]
    assert_eq!(fast, None);
    eprintln!("fast kernels on this CPU: {fast:?}");
}

#[test]
fn cost_does_not_depend_on_the_kernels() {
    // Cost (and so gas) is a function of the graph alone: a model has one cost,
    // whichever kernels run it, and running it does not change it.
    let (op, x, zp) = dense_case(7, &styles()[0], 3, 100, 40);
    let model = single_op_model(op, &x, zp);
    let before = model.cost();
    for kernels in [Kernels::Best, Kernels::Portable] {
        model
            .run_with(
                &x.to_bytes(),
                RunOptions {
                    threads: 2,
                    kernels,
                },
            )
            .expect("run");
        assert_eq!(model.cost(), before);
    }
}
