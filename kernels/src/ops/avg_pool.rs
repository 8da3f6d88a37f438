//! Average pool.

use super::Op;
use super::check::{Cx, Shaped};
use super::max_pool::PoolParams;
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::tensor::Tensor;

/// Wire tag.
pub(crate) const TAG: u8 = 4;

/// `pool` (as [`PoolParams::encode`]), then `count_include_pad u8 (0|1)`.
pub(crate) fn encode(w: &mut Writer, pool: &PoolParams, count_include_pad: bool) {
    pool.encode(w);
    w.u8(u8::from(count_include_pad));
}

pub(crate) fn decode(r: &mut Reader<'_>) -> ModelResult<Op> {
    Ok(Op::AvgPool {
        pool: PoolParams::decode_window(r)?,
        count_include_pad: r.bool("count_include_pad")?,
    })
}

/// As a max pool, and every output requantised.
pub(crate) fn infer(cx: &Cx<'_>, pool: &PoolParams) -> ModelResult<Shaped> {
    Ok(pool.infer(cx)?.requantising())
}

/// Reference kernel entry.
pub(crate) fn reference(run: &Run<'_>, pool: &PoolParams, count_include_pad: bool) -> Tensor {
    let x = run.x();
    run.i8_out(cpu::pool::avg_pool(
        pool,
        count_include_pad,
        run.x_i8(),
        x.zero_point,
        &x.shape,
        &run.out.spec.shape,
    ))
}
