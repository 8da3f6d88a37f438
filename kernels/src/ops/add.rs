//! Element-wise addition with requantisation.

use super::Operator;
use super::check::{Cx, Shaped, elems};
use crate::cpu::{Run, i8s};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::quant::Requant;
use crate::quant::{round_shift, saturate_i8};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Element-wise `y = zy + round(((a - za) * ma + (b - zb) * mb) / 2^shift)`, clamped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddParams {
    /// Multiplier of the first input.
    pub multiplier_a: i32,
    /// Multiplier of the second input.
    pub multiplier_b: i32,
    /// Shared right shift, `1..=MAX_SHIFT_BITS`.
    pub shift: u8,
    /// Lower clamp.
    pub act_min: i8,
    /// Upper clamp.
    pub act_max: i8,
}

impl Operator for AddParams {
    const NAME: &'static str = "add";
    const TAG: u8 = 7;

    /// `ma i32, mb i32, shift u8, act_min i8, act_max i8`.
    fn encode(&self, w: &mut Writer) {
        w.i32(self.multiplier_a);
        w.i32(self.multiplier_b);
        w.u8(self.shift);
        w.i8(self.act_min);
        w.i8(self.act_max);
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        Ok(Self {
            multiplier_a: r.i32()?,
            multiplier_b: r.i32()?,
            shift: r.u8()?,
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
        for multiplier in [self.multiplier_a, self.multiplier_b] {
            cx.requant(Requant {
                multiplier,
                shift: self.shift,
            })?;
        }
        cx.act(self.act_min, self.act_max)?;
        Ok(Shaped::new(cx.i8_out(a.spec.shape.clone()), 2 * elems(a)).requantising())
    }
    /// Reference kernel.
    fn reference(&self, run: &Run<'_>) -> Tensor {
        let [a, b] = [run.inputs[0], run.inputs[1]];
        let zp = run.out.zero_point;
        let (za, zb) = (i64::from(a.zero_point), i64::from(b.zero_point));
        let (ma, mb) = (i64::from(self.multiplier_a), i64::from(self.multiplier_b));
        let data = i8s(a)
            .iter()
            .zip(i8s(b))
            .map(|(&x, &y)| {
                let v = (i64::from(x) - za) * ma + (i64::from(y) - zb) * mb;
                saturate_i8(
                    round_shift(v, self.shift) + i64::from(zp),
                    self.act_min,
                    self.act_max,
                )
            })
            .collect();
        run.i8_out(data)
    }
}
