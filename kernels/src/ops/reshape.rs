//! Reshape: same elements, new shape.

use super::Op;
use super::check::{Cx, Shaped, check_limit, checked_product, elems, same_type};
use crate::cpu::Run;
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::limits::*;
use crate::tensor::Tensor;

/// Wire tag.
pub(crate) const TAG: u8 = 10;

/// `rank u8, dims u32[rank]`.
pub(crate) fn encode(w: &mut Writer, shape: &[usize]) {
    w.rank(shape.len());
    w.axes(shape);
}

pub(crate) fn decode(r: &mut Reader<'_>) -> ModelResult<Op> {
    let rank = r.rank()?;
    Ok(Op::Reshape {
        shape: r.dims(rank)?,
    })
}

pub(crate) fn infer(cx: &Cx<'_>, shape: &[usize]) -> ModelResult<Shaped> {
    cx.arity(1)?;
    let x = cx.inputs[0];
    cx.same_zp(x)?;
    check_limit("MAX_RANK", shape.len() as u64, MAX_RANK as u64)?;
    if checked_product(shape) != Some(elems(x)) {
        return Err(cx.fail(format!("cannot reshape {} to {shape:?}", x.spec)));
    }
    Ok(Shaped::new(same_type(x, shape.to_vec()), elems(x)))
}

/// Reference kernel: the same elements (also Flatten's).
pub(crate) fn reference(run: &Run<'_>) -> Tensor {
    run.out_data(run.x().data.clone())
}
