//! Element-wise multiplication with requantisation.

use super::Operator;
use super::check::{Cx, Shaped, elems};
use crate::cpu::{Run, i8s};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::quant::Requant;
use crate::quant::requantize;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Element-wise `y = zy + round((a - za) * (b - zb) * m / 2^shift)`, clamped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MulParams {
    /// Rescale of the product.
    pub requant: Requant,
    /// Lower clamp.
    pub act_min: i8,
    /// Upper clamp.
    pub act_max: i8,
}

impl Operator for MulParams {
    const NAME: &'static str = "mul";
    const TAG: u8 = 8;

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
        cx.same_shape(a, b)?;
        cx.requant(self.requant)?;
        cx.act(self.act_min, self.act_max)?;
        Ok(Shaped::new(cx.i8_out(a.spec.shape.clone()), 2 * elems(a)).requantising())
    }
    /// Reference kernel.
    fn reference(&self, run: &Run<'_>) -> Tensor {
        let [a, b] = [run.inputs[0], run.inputs[1]];
        let zp = run.out.zero_point;
        let (za, zb) = (i32::from(a.zero_point), i32::from(b.zero_point));
        let data = i8s(a)
            .iter()
            .zip(i8s(b))
            .map(|(&x, &y)| {
                let prod = (i32::from(x) - za) * (i32::from(y) - zb);
                requantize(prod, self.requant, zp, self.act_min, self.act_max)
            })
            .collect();
        run.i8_out(data)
    }
}
