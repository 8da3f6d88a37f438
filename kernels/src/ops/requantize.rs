//! Requantise int8 or int32 to int8.

use super::Op;
use super::check::{Cx, Shaped, elems};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::quant::Requant;

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
