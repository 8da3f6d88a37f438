//! Softmax over the last axis, integer only: a table of exponentials and
//! one exact division per output.
//!
//! For each row (the last axis) of an int8 input with scale `s`:
//! 1. `m = max(x)`; every `d = m - x` is in `0..=255` (the zero point
//!    cancels, so it plays no part);
//! 2. `e = table[d]`, where the importer (off chain, floating point allowed
//!    there) built `table[d] = round(2^k * exp(-s * d))` (k = 30 in
//!    `infera-model-import`): `exp(s * (x - m))` as fixed point;
//! 3. `sum = Σ e` in u64;
//! 4. `y = clamp(round_div(256 * e, sum) - 128, -128, 127)`:
//!    `round_div` is [`crate::quant::round_div`], round half up
//!    (`floor((512 e + sum) / (2 sum))`), computed exactly in i64.
//!
//! The output quantisation is fixed, whatever the calibration: scale 1/256
//! and zero point -128, so `y + 128` counts 256ths of the row's total. Only
//! a row where one element holds all of the weight reaches 256, and that
//! clamps to 127 (one step short of 1.0).
//!
//! **Bounds.** Every entry is a u32 and a row is at most
//! [`MAX_DIM`] = 2^16 long, so `sum < 2^48`, `512 e < 2^41` and
//! `2 sum < 2^49`: all exact in i64 whatever the table (checked at compile
//! time below). Validation requires `table[0] >= 1` and entries that never
//! increase: then the row's maximum reads `table[0]`, the largest entry,
//! so `sum >= 1` (the division is defined) and `e <= sum` (the quotient is
//! at most 256). Accuracy: `kernels/README.md`.

use super::Operator;
use super::check::{Cx, Shaped, elems};
use crate::cpu::Run;
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::limits::MAX_DIM;
use crate::quant::round_div;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Entries of an exponential table: one per distance `d = max - x` of an
/// int8 row, `0..=255`.
pub const SOFTMAX_TABLE_ENTRIES: usize = 256;
/// Output steps per unit: the output scale is `1 / SOFTMAX_STEPS`.
pub const SOFTMAX_STEPS: i64 = 256;
/// The output's zero point: `y + 128` is the weight in 256ths.
pub const SOFTMAX_ZERO_POINT: i8 = -128;

// The row sum, `2 * sum` and `2 * 256 * e` stay exact in i64 for any u32
// table and the longest row (see the module docs).
const _: () = assert!((MAX_DIM as u128) * (u32::MAX as u128) * 2 <= i64::MAX as u128);
const _: () = assert!((u32::MAX as u128) * 2 * (SOFTMAX_STEPS as u128) <= i64::MAX as u128);

/// Softmax over the last axis, by a table of exponentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftmaxParams {
    /// [`SOFTMAX_TABLE_ENTRIES`] fixed-point exponentials: `table[d]` is the
    /// weight of an element `d` steps below its row's maximum. `table[0] >= 1`
    /// and the entries never increase.
    pub table: Vec<u32>,
}

impl SoftmaxParams {
    /// One row's output, `y` beside `x`.
    fn row(&self, x: &[i8], y: &mut [i8]) {
        let m = x.iter().copied().max().unwrap_or(0);
        let e = |v: i8| i64::from(self.table[(i16::from(m) - i16::from(v)) as usize]);
        let sum: i64 = x.iter().map(|&v| e(v)).sum();
        for (o, &v) in y.iter_mut().zip(x) {
            let q = round_div(SOFTMAX_STEPS * e(v), sum) + i64::from(SOFTMAX_ZERO_POINT);
            *o = q.clamp(-128, 127) as i8;
        }
    }
}

impl Operator for SoftmaxParams {
    const NAME: &'static str = "softmax";
    const TAG: u8 = 17;

    /// `table u32[256]`.
    fn encode(&self, w: &mut Writer) {
        self.table.iter().for_each(|&v| w.u32(v));
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        let table = (0..SOFTMAX_TABLE_ENTRIES)
            .map(|_| r.u32())
            .collect::<ModelResult<_>>()?;
        Ok(Self { table })
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        let x = cx.inputs[0];
        cx.want_i8(x)?;
        let t = &self.table;
        if t.len() != SOFTMAX_TABLE_ENTRIES {
            return Err(cx.fail(format!(
                "a table has {SOFTMAX_TABLE_ENTRIES} entries, got {}",
                t.len()
            )));
        }
        if t[0] == 0 {
            return Err(cx.fail("table[0] (the row maximum's weight) must be >= 1".into()));
        }
        if let Some(d) = (1..t.len()).find(|&d| t[d] > t[d - 1]) {
            return Err(cx.fail(format!(
                "table entries must not increase: table[{d}] = {} > table[{}] = {}",
                t[d],
                d - 1,
                t[d - 1]
            )));
        }
        if x.spec.shape.last().is_none_or(|&n| n == 0) {
            return Err(cx.fail(format!("needs a non-empty last axis, got {}", x.spec)));
        }
        if cx.out_zero_point != SOFTMAX_ZERO_POINT {
            return Err(cx.fail(format!(
                "the output zero point is fixed at {SOFTMAX_ZERO_POINT}, got {}",
                cx.out_zero_point
            )));
        }
        // Three passes over each row (max; table and sum; table again) and
        // a 64-bit division per output, priced as a requantisation.
        Ok(Shaped::new(cx.i8_out(x.spec.shape.clone()), 3 * elems(x)).requantising())
    }

    fn reference(&self, run: &Run<'_>) -> Tensor {
        let x = run.x_i8();
        let n = *run.out.spec.shape.last().expect("validated: rank >= 1");
        let mut y = vec![0i8; x.len()];
        for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
            self.row(xr, yr);
        }
        run.i8_out(y)
    }

    fn heap_bytes(&self) -> usize {
        4 * self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu;
    use crate::model::{Model, Node, RunOptions};
    use crate::tensor::{DType, TensorInfo, TensorSpec};
    use crate::{ModelError, Op};

    /// `2^16` halving every 8 steps, linear inside each octave: close to
    /// `2^16 * 2^(-d / 8)` in integers only (any non-increasing table will
    /// do for these properties).
    fn table() -> Vec<u32> {
        (0..256u32)
            .map(|d| {
                let (oct, frac) = (d / 8, d % 8);
                let hi = (1u64 << 16) >> oct.min(63);
                (hi - hi * u64::from(frac) / 16) as u32
            })
            .collect()
    }

    fn softmax(x: &[i8], shape: Vec<usize>, tab: Vec<u32>) -> ModelResult<Vec<i8>> {
        let t = Tensor::i8(shape, 3, x.to_vec());
        let out = cpu::execute_op(&Op::Softmax(SoftmaxParams { table: tab }), &[&t], -128)?;
        Ok(out.as_i8().expect("i8").to_vec())
    }

    /// SplitMix64 values for test data.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed;
        move || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn rows_sum_to_256_steps_within_rounding() {
        let mut r = rng(17);
        for case in 0..200 {
            let n = 1 + (r() % 300) as usize;
            let rows = 1 + (r() % 4) as usize;
            // Narrow and full-range rows, so both flat and peaked outputs occur.
            let span = if case % 2 == 0 { 256 } else { 9 };
            let x: Vec<i8> = (0..rows * n)
                .map(|_| (r() % span) as i64 - 128)
                .map(|v| v as i8)
                .collect();
            let y = softmax(&x, vec![rows, n], table()).expect("valid");
            for row in y.chunks_exact(n) {
                let steps: i64 = row.iter().map(|&v| i64::from(v) + 128).sum();
                // Each output is within half a step of its exact share, and
                // the clamp of a lone 256 takes one step more.
                let slack = (n as i64 + 1) / 2 + 1;
                assert!(
                    (steps - 256).abs() <= slack,
                    "row of {n}: {steps} steps (slack {slack})"
                );
            }
        }
    }

    #[test]
    fn known_rows() {
        // Equal inputs share equally: 256 / 4 = 64 steps each.
        assert_eq!(softmax(&[5; 4], vec![4], table()).unwrap(), [-64; 4]);
        // One element alone is all of the weight: 256 steps clamp to 127.
        assert_eq!(softmax(&[-7], vec![1, 1], table()).unwrap(), [127]);
        // 2^16 against 2^15 (8 steps below): 2/3 and 1/3 of 256, rounded
        // half up: 170.67 -> 171, 85.33 -> 85.
        assert_eq!(softmax(&[10, 2], vec![2], table()).unwrap(), [43, -43]);
        // Halves round up: 256 * 511/512 = 255.5 -> 256 (clamped to 127)
        // and 256 * 1/512 = 0.5 -> 1.
        let mut t = vec![0u32; 256];
        t[0] = 511;
        t[1] = 1;
        assert_eq!(softmax(&[1, 0], vec![2], t).unwrap(), [127, -127]);
        // The zero point cancels: shifting every input shifts nothing.
        let a = softmax(&[-100, -90, -95], vec![3], table()).unwrap();
        let b = softmax(&[0, 10, 5], vec![3], table()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn validation_rejects_bad_tables_and_zero_points() {
        let fail = |tab: Vec<u32>, zp: i8| {
            let t = Tensor::i8(vec![2, 3], 0, vec![0; 6]);
            cpu::execute_op(&Op::Softmax(SoftmaxParams { table: tab }), &[&t], zp).unwrap_err()
        };
        let reason = |e: ModelError| match e {
            ModelError::InvalidNode { reason, .. } => reason,
            other => panic!("{other}"),
        };
        assert!(reason(fail(vec![1; 255], -128)).contains("256 entries"));
        assert!(reason(fail(vec![0; 256], -128)).contains("table[0]"));
        let mut up = table();
        up[40] = up[39] + 1;
        assert!(reason(fail(up, -128)).contains("table[40]"));
        assert!(reason(fail(table(), 0)).contains("fixed at -128"));
        // The largest entries on the longest row are still exact.
        let long = Tensor::i8(vec![1, MAX_DIM as usize], 0, vec![7; MAX_DIM as usize]);
        let y = cpu::execute_op(
            &Op::Softmax(SoftmaxParams {
                table: vec![u32::MAX; 256],
            }),
            &[&long],
            -128,
        )
        .unwrap();
        // 256 / 2^16 = 1/256 of a step each: rounds to 0.
        assert!(y.as_i8().unwrap().iter().all(|&v| v == -128));
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        let mut r = rng(4);
        let (rows, n) = (37, 129);
        let x: Vec<u8> = (0..rows * n).map(|_| r() as u8).collect();
        let input = TensorInfo {
            spec: TensorSpec {
                dtype: DType::I8,
                shape: vec![rows, n],
            },
            zero_point: 0,
        };
        let node = Node {
            op: Op::Softmax(SoftmaxParams { table: table() }),
            inputs: vec![0],
            zero_point: -128,
            scale_bits: 0x3b80_0000,
        };
        let m = Model::new(input, 0x3c00_0000, vec![node], 1).expect("valid");
        let one = m.run(&x).expect("run");
        for threads in [1, 4] {
            let opts = RunOptions {
                threads,
                ..RunOptions::default()
            };
            assert_eq!(m.run_with(&x, opts).expect("run"), one);
        }
    }
}
