//! Clip (ReLU, ReLU6 on int8).

use super::Operator;
use super::check::{Cx, Shaped, elems};
use crate::cpu::Run;
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Clamp bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClipParams {
    /// Lower bound.
    pub min: i8,
    /// Upper bound.
    pub max: i8,
}

impl Operator for ClipParams {
    const NAME: &'static str = "clip";
    const TAG: u8 = 6;

    /// `min i8, max i8`.
    fn encode(&self, w: &mut Writer) {
        w.i8(self.min);
        w.i8(self.max);
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        Ok(Self {
            min: r.i8()?,
            max: r.i8()?,
        })
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        let x = cx.inputs[0];
        cx.want_i8(x)?;
        cx.same_zp(x)?;
        let Self { min, max } = *self;
        if min > max {
            return Err(cx.fail(format!("min {min} > max {max}")));
        }
        Ok(Shaped::new(cx.i8_out(x.spec.shape.clone()), elems(x)))
    }

    fn reference(&self, run: &Run<'_>) -> Tensor {
        let Self { min, max } = *self;
        run.i8_out(run.x_i8().iter().map(|&v| v.clamp(min, max)).collect())
    }
}
