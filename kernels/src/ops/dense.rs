//! Dense (fully connected) layer.

use super::affine::{self, check_accumulators, check_output_mode, check_weights};
use super::check::{Cx, Shaped, check_limit, elems};
use super::{Operator, Work};
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::limits::*;
use crate::quant::Requant;
use crate::tensor::DType;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Fully connected layer: `y[.., o] = requant(bias[o] + sum_k (x[.., k] - zx) * w[o, k])`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenseParams {
    /// Length of the reduced (last) input axis.
    pub in_features: usize,
    /// Length of the output's last axis.
    pub out_features: usize,
    /// `I8`: requantised with `requant` and clamped to `[act_min, act_max]`;
    /// `I32`: the raw accumulators (then `requant` is empty).
    pub out_dtype: DType,
    /// `[out_features, in_features]`, symmetric (zero point 0).
    pub weights: Vec<i8>,
    /// One per output feature, in accumulator units.
    pub bias: Vec<i32>,
    /// One per output feature when `out_dtype` is `I8`, else empty.
    pub requant: Vec<Requant>,
    /// Lower clamp of the int8 output (a fused ReLU sets it to the zero point).
    pub act_min: i8,
    /// Upper clamp of the int8 output.
    pub act_max: i8,
}

impl Operator for DenseParams {
    const NAME: &'static str = "dense";
    const TAG: u8 = 1;

    /// `in u32, out u32`, then the output mode ([`affine::encode`]) with
    /// `weights i8[out*in]`.
    fn encode(&self, w: &mut Writer) {
        w.usize(self.in_features);
        w.usize(self.out_features);
        affine::encode(
            w,
            self.out_dtype,
            self.act_min,
            self.act_max,
            &self.weights,
            &self.bias,
            &self.requant,
        );
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        let in_features = r.usize()?;
        let out_features = r.usize()?;
        let m = affine::decode(r, out_features, in_features as u64)?;
        Ok(Self {
            in_features,
            out_features,
            out_dtype: m.dtype,
            weights: m.weights,
            bias: m.bias,
            requant: m.requant,
            act_min: m.act_min,
            act_max: m.act_max,
        })
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        let x = cx.inputs[0];
        cx.want_i8(x)?;
        let k = self.in_features;
        if x.spec.shape.last() != Some(&k) {
            return Err(cx.fail(format!("input {} must end in in_features {k}", x.spec)));
        }
        check_limit("MAX_REDUCTION_LEN", k as u64, MAX_REDUCTION_LEN)?;
        check_limit("MAX_DIM", self.out_features as u64, MAX_DIM)?;
        if self.out_features == 0 {
            return Err(cx.fail("out_features is 0".into()));
        }
        check_weights(cx, &self.weights, &self.bias, self.out_features, k)?;
        check_output_mode(
            cx,
            self.out_dtype,
            &self.requant,
            self.out_features,
            self.act_min,
            self.act_max,
        )?;
        check_accumulators(cx.node, &self.weights, &self.bias, k)?;
        let rows = elems(x) / k as u64;
        let mut shape = x.spec.shape.clone();
        *shape.last_mut().expect("rank >= 1") = self.out_features;
        let out = cx.out(self.out_dtype, shape);
        let kp = crate::cpu::padded_len(k) as u64;
        let requantised = match self.out_dtype {
            DType::I8 => elems(&out),
            DType::I32 => 0,
        };
        Ok(Shaped {
            out,
            work: Work {
                macs: rows * (k * self.out_features) as u64,
                element_ops: 0,
                kernel_macs: rows * self.out_features as u64 * kp,
                moved_elements: 0,
            },
            // Every row is widened and padded before the GEMM.
            gathered: rows * kp,
            requantised,
            windows: 0,
        })
    }
    /// Reference kernel entry: the portable GEMM over widened rows.
    fn reference(&self, run: &Run<'_>) -> Tensor {
        cpu::dense(self, run.prep.rows(run.op), run.x(), run.out, run.threads)
    }

    fn tables(&self) -> Option<(&[i8], &[i32], &[Requant])> {
        Some((&self.weights, &self.bias, &self.requant))
    }

    fn channels(&self) -> u64 {
        self.out_features as u64
    }

    fn heap_bytes(&self) -> usize {
        affine::table_bytes(&self.weights, &self.bias, &self.requant)
    }
}
