//! Clip (ReLU, ReLU6 on int8).

use super::Op;
use super::check::{Cx, Shaped, elems};
use crate::cpu::Run;
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::tensor::Tensor;

/// Wire tag.
pub(crate) const TAG: u8 = 6;

/// `min i8, max i8`.
pub(crate) fn encode(w: &mut Writer, min: i8, max: i8) {
    w.i8(min);
    w.i8(max);
}

pub(crate) fn decode(r: &mut Reader<'_>) -> ModelResult<Op> {
    Ok(Op::Clip {
        min: r.i8()?,
        max: r.i8()?,
    })
}

pub(crate) fn infer(cx: &Cx<'_>, min: i8, max: i8) -> ModelResult<Shaped> {
    cx.arity(1)?;
    let x = cx.inputs[0];
    cx.want_i8(x)?;
    cx.same_zp(x)?;
    if min > max {
        return Err(cx.fail(format!("min {min} > max {max}")));
    }
    Ok(Shaped::new(cx.i8_out(x.spec.shape.clone()), elems(x)))
}

/// Reference kernel.
pub(crate) fn reference(run: &Run<'_>, min: i8, max: i8) -> Tensor {
    run.i8_out(run.x_i8().iter().map(|&v| v.clamp(min, max)).collect())
}
