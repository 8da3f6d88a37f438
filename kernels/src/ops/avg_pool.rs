//! Average pool.

use super::Operator;
use super::check::{Cx, Shaped};
use super::max_pool::PoolParams;
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// An average pool's window and divisor rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvgPoolParams {
    /// The window.
    pub pool: PoolParams,
    /// Divide by the full window (padding counts as 0.0) instead of the
    /// number of real elements.
    pub count_include_pad: bool,
}

impl Operator for AvgPoolParams {
    const NAME: &'static str = "avg_pool";
    const TAG: u8 = 4;

    /// `pool` (as [`PoolParams`]' encoding), then `count_include_pad u8 (0|1)`.
    fn encode(&self, w: &mut Writer) {
        self.pool.encode(w);
        w.u8(u8::from(self.count_include_pad));
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        Ok(Self {
            pool: PoolParams::decode(r)?,
            count_include_pad: r.bool("count_include_pad")?,
        })
    }

    /// As a max pool, and every output requantised.
    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        Ok(self.pool.infer(cx)?.requantising())
    }

    fn reference(&self, run: &Run<'_>) -> Tensor {
        let x = run.x();
        run.i8_out(cpu::pool::avg_pool(
            &self.pool,
            self.count_include_pad,
            run.x_i8(),
            x.zero_point,
            &x.shape,
            &run.out.spec.shape,
        ))
    }
}
