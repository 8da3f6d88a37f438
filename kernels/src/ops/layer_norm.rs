//! Layer normalisation over the last axis, integer-only.
//!
//! For one row `x` of `n` int8 values (the zero point cancels in centring):
//!
//! ```text
//! sum   = Σ x_j                                   (i32, |sum| <= 128 n)
//! c_i   = n x_i - sum                             (= n (x_i - mean), exact)
//! var   = Σ c_j²                                  (= n³ · population variance)
//! d     = max(1, isqrt((var + eps) << 2K))        (isqrt = floor of the square root)
//! z_i   = round_div(c_i · S · 2^K, d)             (S = isqrt(n << 2F) = floor(√n · 2^F))
//! y_i   = clamp(zy + round_shift(z_i · gamma_i + beta_i, shift), -128, 127)
//! ```
//!
//! `z_i` is the normalised value `(x_i - mean) / std` in fixed point with
//! [`NORM_FRAC_BITS`] (`F`) fraction bits: `c_i √n / √var` equals it exactly,
//! and the `2^K` ([`NORM_SQRT_EXTRA_BITS`]) carried through the square root
//! keeps `d`'s own rounding (at most one unit) small against the variance of
//! the flattest non-constant row. `eps` is ONNX's epsilon in `var` units
//! (`epsilon · n³ / sx²`, set by the importer from the input's scale). A
//! constant row has `c = 0`, hence `z = 0` and `y = zy + beta` rounded,
//! whatever `d` is (clamped to 1 so the division is defined).
//!
//! `gamma` and `beta` hold the learned scale and bias together with the
//! output's quantisation: `gamma_i ≈ g_i / sy · 2^(shift - F)` and
//! `beta_i ≈ b_i / sy · 2^shift`. Both roundings are the engine's one rule,
//! half up (`quant::round_div`, `quant::round_shift`), as in every
//! requantisation.
//!
//! Overflow (checked by `infer` through [`MAX_NORM_LEN`], [`MAX_NORM_EPS`],
//! the shift range, and the asserts below): with `n <= 2^12`, `|c| <= 255 n
//! < 2^20`; `var <= n³ · 255² / 4 < 2^50`, so `(var + eps) << 10 < 2^61`;
//! `|c · S · 2^K| < 2^20 · 2^22 · 2^5 = 2^47`. Since `c_i² <= var`, `|c_i
//! 2^K| <= √((var + eps) 2^2K)`, which is at least 32 when `var >= 1`, so
//! `d` is at least 31/32 of it and `|z| <= S · 32/31 + 1 < 2^23`; then `|z ·
//! gamma + beta| < 2^54 + 2^31` and the rounding term is at most `2^61`, all
//! inside i64.

use super::Operator;
use super::check::{Cx, Shaped, check_limit, elems};
use crate::cpu::Run;
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::limits::{MAX_NORM_EPS, MAX_NORM_LEN, MAX_SHIFT_BITS};
use crate::quant::{round_div, round_shift, saturate_i8};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Fraction bits `F` of the normalised value `z`.
pub const NORM_FRAC_BITS: u32 = 16;
/// Extra bits `K` of the row's standard deviation: the square root is taken
/// of `var · 2^2K`.
pub const NORM_SQRT_EXTRA_BITS: u32 = 5;
/// Iterations of [`isqrt`] (one per result bit), counted as element work per
/// row.
pub const ISQRT_STEPS: u64 = 32;

/// Element work a row costs besides its elements: the square root's steps,
/// the row's sums and setup, three times the steps as measured by the gas
/// search (`gas-calibration --adversarial`: rows of one element were the
/// slowest per gas at one step each).
pub const NORM_ROW_WORK: u64 = 3 * ISQRT_STEPS;

const F: u32 = NORM_FRAC_BITS;
const K: u32 = NORM_SQRT_EXTRA_BITS;

// The bounds of the module docs, for the largest row and epsilon.
const MAX_C: u64 = 255 * MAX_NORM_LEN;
const MAX_VAR: u64 = MAX_NORM_LEN * MAX_NORM_LEN * MAX_NORM_LEN * 255 * 255 / 4;
const _: () = assert!(MAX_NORM_LEN <= 1 << 12);
const _: () = assert!(MAX_NORM_LEN * 128 <= i32::MAX as u64); // sum, n x_i
const _: () = assert!(MAX_C < 1 << 20);
const _: () = assert!(MAX_VAR < 1 << 50 && MAX_NORM_EPS <= 1 << 50);
const _: () = assert!((MAX_VAR + MAX_NORM_EPS) < 1 << (62 - 2 * K)); // the isqrt input
const _: () = assert!(MAX_NORM_LEN << (2 * F) < 1 << 62); // S's isqrt input
const _: () = assert!(20 + (6 + F) + K < 62); // c · S · 2^K and round_div's 2 num + den
const _: () = assert!((7 + F) + 31 < 61); // z · gamma, beside beta and 2^(shift-1) <= 2^61
const _: () = assert!(MAX_SHIFT_BITS <= 62);

/// `floor(sqrt(v))` for every `u64`, digit by digit (one result bit per
/// step, [`ISQRT_STEPS`] steps): exact, with no division and no floating
/// point, so every backend computes it the same way (`infera_isqrt` in
/// `kernels/cuda/layer_norm.cu` is the same loop).
pub fn isqrt(v: u64) -> u64 {
    let mut rem = v;
    let mut root = 0u64;
    let mut bit = 1u64 << 62;
    for _ in 0..ISQRT_STEPS {
        // Without a branch: whether the bit is taken depends on the data,
        // and a mispredicted branch per step cost more than the step.
        let trial = root + bit;
        let take = u64::from(rem >= trial);
        rem -= trial * take;
        root = (root >> 1) + bit * take;
        bit >>= 2;
    }
    root
}

/// `S · 2^K`, `S = floor(√n · 2^F)`, exact.
fn sqrt_len(n: usize) -> i64 {
    (isqrt((n as u64) << (2 * F)) as i64) << K
}

/// Layer normalisation of each row of the last axis, with a per-channel
/// scale and bias and the output's requantisation folded into them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerNormParams {
    /// One per channel of the last axis: `g / sy · 2^(shift - F)`, the
    /// multiplier of the normalised value `z` (`F` fraction bits).
    pub gamma: Vec<i32>,
    /// One per channel: `b / sy · 2^shift`, added before the final shift.
    pub beta: Vec<i32>,
    /// ONNX's epsilon in the units of the row's `var` (`epsilon · n³ / sx²`),
    /// at most [`MAX_NORM_EPS`].
    pub eps: u64,
    /// Right shift of `z · gamma + beta`, `1..=MAX_SHIFT_BITS`.
    pub shift: u8,
}

impl LayerNormParams {
    /// Normalise one row into `out`; `s` is [`sqrt_len`] of its length.
    fn row(&self, row: &[i8], s: i64, zy: i8, out: &mut Vec<i8>) {
        let n = row.len() as i32;
        let sum: i32 = row.iter().map(|&v| i32::from(v)).sum();
        let centred = |v: i8| i64::from(n * i32::from(v) - sum);
        let var: u64 = row.iter().map(|&v| centred(v).unsigned_abs().pow(2)).sum();
        let d = isqrt((var + self.eps) << (2 * K)).max(1) as i64;
        for ((&v, &g), &b) in row.iter().zip(&self.gamma).zip(&self.beta) {
            let z = round_div(centred(v) * s, d);
            let acc = z * i64::from(g) + i64::from(b);
            out.push(saturate_i8(
                round_shift(acc, self.shift) + i64::from(zy),
                i8::MIN,
                i8::MAX,
            ));
        }
    }
}

impl Operator for LayerNormParams {
    const NAME: &'static str = "layer_norm";
    const TAG: u8 = 18;

    /// `n u32, gamma i32[n], beta i32[n], eps u64 (low u32, then high u32),
    /// shift u8` (`n` is `gamma`'s length; validation requires `beta`'s to
    /// equal it).
    fn encode(&self, w: &mut Writer) {
        w.usize(self.gamma.len());
        self.gamma.iter().for_each(|&v| w.i32(v));
        self.beta.iter().for_each(|&v| w.i32(v));
        w.u32(self.eps as u32);
        w.u32((self.eps >> 32) as u32);
        w.u8(self.shift);
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        let n = r.usize()? as u64;
        let gamma = r.i32_vec(n)?;
        let beta = r.i32_vec(n)?;
        let lo = u64::from(r.u32()?);
        let hi = u64::from(r.u32()?);
        Ok(Self {
            gamma,
            beta,
            eps: lo | hi << 32,
            shift: r.u8()?,
        })
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        let x = cx.inputs[0];
        cx.want_i8(x)?;
        let Some(&n) = x.spec.shape.last() else {
            return Err(cx.fail(format!("needs an input of rank >= 1, got {}", x.spec)));
        };
        if n == 0 {
            return Err(cx.fail("the normalised axis is empty".into()));
        }
        check_limit("MAX_NORM_LEN", n as u64, MAX_NORM_LEN)?;
        if self.gamma.len() != n || self.beta.len() != n {
            return Err(cx.fail(format!(
                "expected {n} gamma and beta entries, got {} and {}",
                self.gamma.len(),
                self.beta.len()
            )));
        }
        check_limit("MAX_NORM_EPS", self.eps, MAX_NORM_EPS)?;
        if !(1..=MAX_SHIFT_BITS).contains(&self.shift) {
            return Err(cx.fail(format!("shift {} outside 1..={MAX_SHIFT_BITS}", self.shift)));
        }
        let rows = elems(x) / n as u64;
        // Per element: the sum, the square, and a 64-bit division counted
        // twice; per row: the square root. The scale, bias and shift are the
        // requantisation.
        let work = 4 * elems(x) + rows * NORM_ROW_WORK;
        Ok(Shaped::new(cx.i8_out(x.spec.shape.clone()), work).requantising())
    }

    fn reference(&self, run: &Run<'_>) -> Tensor {
        let n = self.gamma.len();
        let s = sqrt_len(n);
        let zy = run.out.zero_point;
        let x = run.x_i8();
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks_exact(n) {
            self.row(row, s, zy, &mut out);
        }
        run.i8_out(out)
    }

    fn heap_bytes(&self) -> usize {
        4 * (self.gamma.len() + self.beta.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Op;
    use crate::cpu::execute_op;

    fn exact(v: u64, r: u64) -> bool {
        let (v, r) = (u128::from(v), u128::from(r));
        r * r <= v && v < (r + 1) * (r + 1)
    }

    #[test]
    fn isqrt_is_the_floor_of_the_square_root() {
        for v in 0..=1u64 << 20 {
            assert!(exact(v, isqrt(v)), "isqrt({v}) = {}", isqrt(v));
        }
        // Squares and their neighbours up to the top of u64, then random values.
        for r in (0..=u64::from(u32::MAX))
            .step_by(65_521)
            .chain([u64::from(u32::MAX)])
        {
            for v in [r * r, (r * r).saturating_sub(1), r * r + 1] {
                assert!(exact(v, isqrt(v)), "isqrt({v})");
            }
        }
        assert_eq!(isqrt(u64::MAX), u64::from(u32::MAX));
        let mut s = 0x1234_5678_9abc_def0u64;
        for _ in 0..200_000 {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            let v = (z ^ (z >> 31)) >> (s % 64);
            assert!(exact(v, isqrt(v)), "isqrt({v})");
        }
    }

    fn run(p: &LayerNormParams, shape: Vec<usize>, data: Vec<i8>, zy: i8) -> ModelResult<Vec<i8>> {
        let x = Tensor::i8(shape, 3, data);
        let y = execute_op(&Op::LayerNorm(p.clone()), &[&x], zy)?;
        Ok(y.as_i8().expect("i8").to_vec())
    }

    fn params(n: usize, gamma: i32, beta: i32, shift: u8) -> LayerNormParams {
        LayerNormParams {
            gamma: vec![gamma; n],
            beta: vec![beta; n],
            eps: 0,
            shift,
        }
    }

    #[test]
    fn normalises_to_unit_variance() {
        // Two values a and b normalise to -1 and +1; gamma 2^4 with shift
        // F + 4 gives the normalised value itself, times 10.
        let p = params(2, 10 << 4, 0, (F + 4) as u8);
        for (a, b) in [(-128, 127), (0, 1), (5, -7), (126, 127)] {
            assert_eq!(
                run(&p, vec![1, 2], vec![a, b], 0).expect("runs"),
                [if a < b { -10 } else { 10 }, if a < b { 10 } else { -10 }]
            );
        }
        // 0, 0, 0, 4: mean 1, population std √3: -1/√3 and √3 (times 50).
        let p = params(4, 50 << 4, 0, (F + 4) as u8);
        assert_eq!(
            run(&p, vec![1, 4], vec![0, 0, 0, 4], 5).expect("runs"),
            [5 - 29, 5 - 29, 5 - 29, 5 + 87]
        );
    }

    #[test]
    fn a_constant_row_gives_the_bias() {
        // var = 0 and eps = 0: d is clamped to 1 and z is 0.
        let p = params(8, i32::MAX, 3 << 10, 10);
        for v in [-128, 0, 127] {
            assert_eq!(run(&p, vec![1, 8], vec![v; 8], -4).expect("runs"), [-1; 8]);
        }
        // One channel's length: always constant.
        let p = params(1, i32::MIN, -(5 << 10), 10);
        assert_eq!(
            run(&p, vec![3, 1], vec![-128, 0, 127], 0).expect("runs"),
            [-5; 3]
        );
    }

    #[test]
    fn extremes_do_not_overflow() {
        // The longest row with the largest |z| (one value against all the
        // others) and the largest gamma, beta, eps and shift; overflow
        // checks are on in tests.
        let n = MAX_NORM_LEN as usize;
        let mut row = vec![-128i8; n];
        row[7] = 127;
        for (gamma, beta) in [(i32::MAX, i32::MAX), (i32::MIN, i32::MIN)] {
            for eps in [0, MAX_NORM_EPS] {
                for shift in [1, 62] {
                    let p = LayerNormParams {
                        eps,
                        ..params(n, gamma, beta, shift)
                    };
                    run(&p, vec![1, n], row.clone(), 0).expect("runs");
                    let flipped: Vec<i8> = row.iter().map(|&v| !v).collect();
                    run(&p, vec![1, n], flipped, 0).expect("runs");
                }
            }
        }
        // The same row normalises to about √(n - 1) there.
        let p = params(n, 1 << 4, 0, (F + 4) as u8);
        let y = run(&p, vec![1, n], row, 0).expect("runs");
        assert_eq!((y[7], y[0]), (64, 0));
    }

    #[test]
    fn validation_rejects_what_could_overflow() {
        let n = MAX_NORM_LEN as usize + 1;
        assert!(run(&params(n, 1, 0, 20), vec![1, n], vec![0; n], 0).is_err());
        assert!(run(&params(4, 1, 0, 0), vec![1, 4], vec![0; 4], 0).is_err());
        assert!(run(&params(4, 1, 0, 63), vec![1, 4], vec![0; 4], 0).is_err());
        let mut p = params(4, 1, 0, 20);
        p.eps = MAX_NORM_EPS + 1;
        assert!(run(&p, vec![1, 4], vec![0; 4], 0).is_err());
        p.eps = 0;
        p.beta.pop();
        assert!(run(&p, vec![1, 4], vec![0; 4], 0).is_err());
        assert!(run(&params(3, 1, 0, 20), vec![1, 4], vec![0; 4], 0).is_err());
    }
}
