//! Global average pool: the mean over H and W.

use super::check::{Cx, Shaped, elems};
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::tensor::Tensor;

/// Wire tag; no parameters.
pub(crate) const TAG: u8 = 5;

pub(crate) fn infer(cx: &Cx<'_>) -> ModelResult<Shaped> {
    cx.arity(1)?;
    let x = cx.inputs[0];
    cx.want_i8(x)?;
    cx.same_zp(x)?;
    let [n, c, _, _] = cx.nchw(x)?;
    Ok(Shaped::new(cx.i8_out(vec![n, c, 1, 1]), elems(x)).requantising())
}

/// Reference kernel entry.
pub(crate) fn reference(run: &Run<'_>) -> Tensor {
    let x = run.x();
    run.i8_out(cpu::pool::global_avg_pool(
        run.x_i8(),
        x.zero_point,
        &x.shape,
    ))
}
