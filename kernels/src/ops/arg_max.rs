//! ArgMax along an axis, as int32 indices.

use super::Op;
use super::check::{Cx, Shaped, elems};
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::tensor::DType;
use crate::tensor::Tensor;

/// Wire tag.
pub(crate) const TAG: u8 = 15;

/// `axis u8`.
pub(crate) fn encode(w: &mut Writer, axis: usize) {
    w.axis(axis);
}

pub(crate) fn decode(r: &mut Reader<'_>) -> ModelResult<Op> {
    Ok(Op::ArgMax { axis: r.axis()? })
}

pub(crate) fn infer(cx: &Cx<'_>, axis: usize) -> ModelResult<Shaped> {
    cx.arity(1)?;
    let x = cx.inputs[0];
    let s = &x.spec.shape;
    if axis >= s.len() {
        return Err(cx.bad_axis(axis));
    }
    if cx.out_zero_point != 0 {
        return Err(cx.fail("an i32 output has zero point 0".into()));
    }
    let mut shape = s.clone();
    shape[axis] = 1;
    Ok(Shaped::new(cx.out(DType::I32, shape), elems(x)))
}

/// Reference kernel.
pub(crate) fn reference(run: &Run<'_>, axis: usize) -> Tensor {
    let x = run.x();
    Tensor::i32(
        run.out.spec.shape.clone(),
        cpu::layout::arg_max(&x.data, &x.shape, axis),
    )
}
