//! MatMul of two activations (attention's `Q Kᵀ` and `P V`), batched over
//! identical leading dimensions (the heads).
//!
//! Both factors are int8 activations with their own zero points, so unlike
//! `Dense` there are no constant weights to check per channel: the bound on
//! the int32 accumulator comes from the shape alone. Each product
//! `(a - za)(b - zb)` is at most `255 * 255` in magnitude and `K` is at most
//! [`MAX_MATMUL_REDUCTION`], so `K * 255 * 255 < 2^31` (asserted in
//! `limits.rs`) and every sum is exact whatever the order of additions.

use super::check::{Cx, Shaped, checked_product, elems};
use super::{Operator, Work, check_limit};
use crate::cpu::{Run, i8s};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::limits::MAX_MATMUL_REDUCTION;
use crate::quant::{Requant, requantize};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// `y[.., m, n] = clamp(zy + round(Σ_k (a[.., m, k] - za)(b[.., k, n] - zb) * m / 2^s))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatMulParams {
    /// Rescale of each sum of products (`sa * sb / sy`).
    pub requant: Requant,
    /// Lower clamp.
    pub act_min: i8,
    /// Upper clamp.
    pub act_max: i8,
}

/// The shape of a validated MatMul: `batch` independent `[m, k] x [k, n]`
/// products.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

impl Dims {
    /// The dimensions of `a [.., m, k] x b [.., k, n]`, inputs already validated.
    pub fn of(a: &[usize], b: &[usize]) -> Self {
        let r = a.len();
        Dims {
            batch: a[..r - 2].iter().product(),
            m: a[r - 2],
            k: a[r - 1],
            n: b[r - 1],
        }
    }
}

impl Operator for MatMulParams {
    const NAME: &'static str = "mat_mul";
    const TAG: u8 = 19;

    /// `m i32, shift u8, act_min i8, act_max i8`.
    fn encode(&self, w: &mut Writer) {
        w.requant(self.requant);
        w.i8(self.act_min);
        w.i8(self.act_max);
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        Ok(Self {
            requant: r.requant()?,
            act_min: r.i8()?,
            act_max: r.i8()?,
        })
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(2)?;
        let [a, b] = [cx.inputs[0], cx.inputs[1]];
        cx.want_i8(a)?;
        cx.want_i8(b)?;
        let (sa, sb) = (&a.spec.shape, &b.spec.shape);
        let r = sa.len();
        if !(2..=4).contains(&r) || sb.len() != r {
            return Err(cx.fail(format!(
                "needs two inputs of one rank in 2..=4, got {} and {}",
                a.spec, b.spec
            )));
        }
        if sa[..r - 2] != sb[..r - 2] || sa[r - 1] != sb[r - 2] {
            return Err(cx.fail(format!(
                "{} x {}: needs [.., m, k] x [.., k, n] with the same leading dimensions",
                a.spec, b.spec
            )));
        }
        let d = Dims::of(sa, sb);
        check_limit("MAX_MATMUL_REDUCTION", d.k as u64, MAX_MATMUL_REDUCTION)?;
        cx.requant(self.requant)?;
        cx.act(self.act_min, self.act_max)?;
        let mut shape = sa.clone();
        shape[r - 1] = d.n;
        let out = cx.i8_out(shape);
        // Shapes are at most MAX_TENSOR_ELEMENTS each, so the product of the
        // output's elements and k fits in u64; saturate anyway, the model's
        // MAX_MODEL_MACS check rejects it.
        let macs = checked_product(&[elems(&out) as usize, d.k]).unwrap_or(u64::MAX);
        let kp = crate::cpu::padded_len(d.k);
        let mut s = Shaped::new(out, 0).requantising();
        s.work = Work {
            macs,
            // The GEMM core runs rows padded to its lanes, as dense layers do.
            kernel_macs: checked_product(&[elems(&s.out) as usize, kp]).unwrap_or(u64::MAX),
            ..Work::default()
        };
        // Both factors are widened (less their zero points) and padded before
        // the GEMM, `b` transposed so that each output reads two contiguous
        // rows.
        let rows = (d.batch * (d.m + d.n)) as u64;
        s.gathered = rows * kp as u64;
        Ok(s)
    }

    fn reference(&self, run: &Run<'_>) -> Tensor {
        let [a, b] = [run.inputs[0], run.inputs[1]];
        let Dims { batch, m, k, n } = Dims::of(&a.shape, &b.shape);
        let kp = crate::cpu::padded_len(k);
        let (as_, bs) = (i8s(a), i8s(b));
        let zy = run.out.zero_point;
        let mut y = vec![0i8; batch * m * n];
        // Rows of `a - za` and columns of `b - zb` (as rows), widened to i16
        // and padded: the dense layers' GEMM core. Every operand fits i16
        // (|x - z| <= 255) and every sum is exact in i32 (validation bounds
        // k * 255 * 255 < 2^31), so blocking changes nothing.
        let mut aw = vec![0i16; m * kp];
        let mut bt = vec![0i16; n * kp];
        let mut col = vec![0i8; k];
        for g in 0..batch {
            for (row, src) in aw
                .chunks_exact_mut(kp)
                .zip(as_[g * m * k..].chunks_exact(k))
            {
                crate::cpu::widen_into(row, src, a.zero_point);
            }
            let bg = &bs[g * k * n..(g + 1) * k * n];
            for (j, row) in bt.chunks_exact_mut(kp).enumerate() {
                for (kk, c) in col.iter_mut().enumerate() {
                    *c = bg[kk * n + j];
                }
                crate::cpu::widen_into(row, &col, b.zero_point);
            }
            let yg = &mut y[g * m * n..(g + 1) * m * n];
            crate::cpu::gemm(&aw, m, &bt, n, kp, |i, j, acc| {
                yg[i * n + j] = requantize(acc, self.requant, zy, self.act_min, self.act_max);
            });
        }
        run.i8_out(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::execute_op;
    use crate::error::ModelError;

    fn op() -> crate::Op {
        crate::Op::MatMul(MatMulParams {
            requant: Requant {
                multiplier: 1 << 30,
                shift: 31,
            },
            act_min: -128,
            act_max: 127,
        })
    }

    #[test]
    fn batched_product_matches_the_definition() {
        // Two heads of [2, 3] x [3, 2]; zero points 1 and -2; y = sum / 2.
        let a = Tensor::i8(vec![2, 2, 3], 1, vec![1, 2, 3, 4, 5, 6, -1, 0, 1, 2, 3, 4]);
        let b = Tensor::i8(vec![2, 3, 2], -2, vec![0, 1, 2, 3, 4, 5, 1, 0, 0, 1, -2, 2]);
        let y = execute_op(&op(), &[&a, &b], 3).expect("valid");
        assert_eq!(y.shape, [2, 2, 2]);
        let mut want = Vec::new();
        for g in 0..2 {
            for i in 0..2 {
                for j in 0..2 {
                    let s: i32 = (0..3)
                        .map(|kk| {
                            let av = i32::from(i8s(&a)[g * 6 + i * 3 + kk]) - 1;
                            let bv = i32::from(i8s(&b)[g * 6 + kk * 2 + j]) + 2;
                            av * bv
                        })
                        .sum();
                    // Half up: (s + 1) >> 1, plus the output zero point.
                    want.push(((s + 1) >> 1) as i8 + 3);
                }
            }
        }
        assert_eq!(y.as_i8().expect("i8"), want.as_slice());
    }

    #[test]
    fn the_longest_reduction_is_exact_and_one_more_is_refused() {
        // Every product at its extreme: (-128 - 127) * (-128 - 127) = 65025.
        let k = MAX_MATMUL_REDUCTION as usize;
        let a = Tensor::i8(vec![1, k], 127, vec![-128; k]);
        let b = Tensor::i8(vec![k, 1], 127, vec![-128; k]);
        let one = crate::Op::MatMul(MatMulParams {
            requant: Requant {
                multiplier: 1,
                shift: 30,
            },
            act_min: -128,
            act_max: 127,
        });
        let y = execute_op(&one, &[&a, &b], 0).expect("valid");
        // 32768 * 65025 / 2^30 = 1.98..., rounds to 2: no wrap.
        assert_eq!(y.as_i8().expect("i8"), &[2]);
        let a = Tensor::i8(vec![1, k + 1], 0, vec![0; k + 1]);
        let b = Tensor::i8(vec![k + 1, 1], 0, vec![0; k + 1]);
        assert!(matches!(
            execute_op(&one, &[&a, &b], 0),
            Err(ModelError::LimitExceeded {
                limit: "MAX_MATMUL_REDUCTION",
                ..
            })
        ));
    }

    #[test]
    fn mismatched_shapes_are_refused() {
        let t = |s: Vec<usize>| Tensor::i8(s.clone(), 0, vec![0; s.iter().product()]);
        for (sa, sb) in [
            (vec![2, 3], vec![2, 3]),                   // k differs
            (vec![2, 2, 3], vec![3, 3, 2]),             // batch differs
            (vec![2, 3], vec![1, 3, 2]),                // ranks differ
            (vec![3], vec![3]),                         // rank 1
            (vec![1, 1, 1, 2, 3], vec![1, 1, 1, 3, 2]), // rank 5
        ] {
            assert!(
                execute_op(&op(), &[&t(sa.clone()), &t(sb.clone())], 0).is_err(),
                "{sa:?} x {sb:?}"
            );
        }
    }
}
