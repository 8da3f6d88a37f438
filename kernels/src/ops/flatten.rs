//! ONNX Flatten: to two dimensions split at an axis.

use super::Op;
use super::check::{Cx, Shaped, elems, same_type};
use crate::cpu::Run;
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::tensor::Tensor;

/// Wire tag.
pub(crate) const TAG: u8 = 11;

/// `axis u8`.
pub(crate) fn encode(w: &mut Writer, axis: usize) {
    w.axis(axis);
}

pub(crate) fn decode(r: &mut Reader<'_>) -> ModelResult<Op> {
    Ok(Op::Flatten { axis: r.axis()? })
}

pub(crate) fn infer(cx: &Cx<'_>, axis: usize) -> ModelResult<Shaped> {
    cx.arity(1)?;
    let x = cx.inputs[0];
    cx.same_zp(x)?;
    let s = &x.spec.shape;
    if axis > s.len() {
        return Err(cx.bad_axis(axis));
    }
    let shape = vec![s[..axis].iter().product(), s[axis..].iter().product()];
    Ok(Shaped::new(same_type(x, shape), elems(x)))
}

/// Reference kernel: a reshape.
pub(crate) fn reference(run: &Run<'_>) -> Tensor {
    super::reshape::reference(run)
}
