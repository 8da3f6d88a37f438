//! Requantise int8 or int32 to int8.

use super::Operator;
use super::check::{Cx, Shaped, elems};
use crate::cpu::Run;
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::quant::Requant;
use crate::quant::requantize;
use crate::tensor::{Tensor, TensorData};

impl Operator for Requant {
    const NAME: &'static str = "requantize";
    const TAG: u8 = 9;

    /// `m i32, shift u8`.
    fn encode(&self, w: &mut Writer) {
        w.requant(*self);
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        r.requant()
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        cx.requant(*self)?;
        let x = cx.inputs[0];
        Ok(Shaped::new(cx.i8_out(x.spec.shape.clone()), elems(x)).requantising())
    }

    /// Int8 inputs are offset by their zero point first.
    fn reference(&self, run: &Run<'_>) -> Tensor {
        let rq = *self;
        let x = run.x();
        let zp = run.out.zero_point;
        let (lo, hi) = (i8::MIN, i8::MAX);
        let data = match &x.data {
            TensorData::I8(v) => v
                .iter()
                .map(|&e| requantize(i32::from(e) - i32::from(x.zero_point), rq, zp, lo, hi))
                .collect(),
            TensorData::I32(v) => v.iter().map(|&e| requantize(e, rq, zp, lo, hi)).collect(),
        };
        run.i8_out(data)
    }
}
