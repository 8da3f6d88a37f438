//! Average pool.

use super::Op;
use super::check::{Cx, Shaped};
use super::max_pool::PoolParams;
use crate::error::ModelResult;
use crate::format::{Reader, Writer};

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
