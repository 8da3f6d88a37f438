//! Pad with the zero point.

use super::Op;
use super::check::{Cx, Shaped, check_limit, same_type};
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::limits::*;
use crate::tensor::Tensor;

/// Wire tag.
pub(crate) const TAG: u8 = 14;

/// `rank u8, before u32[rank], after u32[rank]`.
pub(crate) fn encode(w: &mut Writer, before: &[usize], after: &[usize]) {
    w.rank(before.len());
    w.axes(before);
    w.axes(after);
}

pub(crate) fn decode(r: &mut Reader<'_>) -> ModelResult<Op> {
    let rank = r.rank()?;
    Ok(Op::Pad {
        before: r.dims(rank)?,
        after: r.dims(rank)?,
    })
}

pub(crate) fn infer(cx: &Cx<'_>, before: &[usize], after: &[usize]) -> ModelResult<Shaped> {
    cx.arity(1)?;
    let x = cx.inputs[0];
    cx.same_zp(x)?;
    let s = &x.spec.shape;
    if before.len() != s.len() || after.len() != s.len() {
        return Err(cx.fail(format!("pads need {} entries per side", s.len())));
    }
    for &p in before.iter().chain(after) {
        check_limit("MAX_PAD", p as u64, MAX_PAD)?;
    }
    let shape: Vec<usize> = (0..s.len()).map(|d| s[d] + before[d] + after[d]).collect();
    let out = same_type(x, shape);
    let work = out.spec.elements() as u64;
    Ok(Shaped::new(out, work))
}

/// Reference kernel.
pub(crate) fn reference(run: &Run<'_>, before: &[usize]) -> Tensor {
    let x = run.x();
    let out = run.out;
    run.out_data(cpu::layout::pad(
        &x.data,
        &x.shape,
        before,
        &out.spec.shape,
        out.zero_point,
    ))
}
