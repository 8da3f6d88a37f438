//! Requantise int8 or int32 to int8.

use super::Op;
use super::check::{Cx, Shaped, elems};
use crate::cpu::Run;
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::quant::Requant;
use crate::quant::requantize;
use crate::tensor::{Tensor, TensorData};

/// Wire tag.
pub(crate) const TAG: u8 = 9;

/// `m i32, shift u8`.
pub(crate) fn encode(w: &mut Writer, rq: Requant) {
    w.requant(rq);
}

pub(crate) fn decode(r: &mut Reader<'_>) -> ModelResult<Op> {
    Ok(Op::Requantize(r.requant()?))
}

pub(crate) fn infer(cx: &Cx<'_>, rq: Requant) -> ModelResult<Shaped> {
    cx.arity(1)?;
    cx.requant(rq)?;
    let x = cx.inputs[0];
    Ok(Shaped::new(cx.i8_out(x.spec.shape.clone()), elems(x)).requantising())
}

/// Reference kernel: int8 inputs are offset by their zero point first.
pub(crate) fn reference(run: &Run<'_>, rq: Requant) -> Tensor {
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
