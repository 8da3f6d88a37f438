//! Transpose: permute axes.

use super::Op;
use super::check::{Cx, Shaped, elems, same_type};
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::tensor::Tensor;

/// Wire tag.
pub(crate) const TAG: u8 = 12;

/// `rank u8, perm u8[rank]`.
pub(crate) fn encode(w: &mut Writer, perm: &[usize]) {
    w.rank(perm.len());
    perm.iter().for_each(|&a| w.axis(a));
}

pub(crate) fn decode(r: &mut Reader<'_>) -> ModelResult<Op> {
    let rank = r.rank()?;
    Ok(Op::Transpose {
        perm: (0..rank).map(|_| r.axis()).collect::<ModelResult<_>>()?,
    })
}

pub(crate) fn infer(cx: &Cx<'_>, perm: &[usize]) -> ModelResult<Shaped> {
    cx.arity(1)?;
    let x = cx.inputs[0];
    cx.same_zp(x)?;
    let s = &x.spec.shape;
    let mut seen = vec![false; s.len()];
    if perm.len() != s.len()
        || perm
            .iter()
            .any(|&a| a >= s.len() || std::mem::replace(&mut seen[a], true))
    {
        return Err(cx.fail(format!(
            "{perm:?} is not a permutation of the axes of {}",
            x.spec
        )));
    }
    let shape = perm.iter().map(|&a| s[a]).collect();
    Ok(Shaped::new(same_type(x, shape), elems(x)))
}

/// Reference kernel.
pub(crate) fn reference(run: &Run<'_>, perm: &[usize]) -> Tensor {
    let x = run.x();
    run.out_data(cpu::layout::transpose(&x.data, &x.shape, perm))
}
