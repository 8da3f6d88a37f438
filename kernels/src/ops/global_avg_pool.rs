//! Global average pool: the mean over H and W.

use super::Operator;
use super::check::{Cx, Shaped, elems};
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// No parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalAvgPoolParams {}

impl Operator for GlobalAvgPoolParams {
    const NAME: &'static str = "global_avg_pool";
    const TAG: u8 = 5;

    /// Nothing.
    fn encode(&self, _: &mut Writer) {}

    fn decode(_: &mut Reader<'_>) -> ModelResult<Self> {
        Ok(Self {})
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        let x = cx.inputs[0];
        cx.want_i8(x)?;
        cx.same_zp(x)?;
        let [n, c, _, _] = cx.nchw(x)?;
        Ok(Shaped::new(cx.i8_out(vec![n, c, 1, 1]), elems(x)).requantising())
    }

    fn reference(&self, run: &Run<'_>) -> Tensor {
        let x = run.x();
        run.i8_out(cpu::pool::global_avg_pool(
            run.x_i8(),
            x.zero_point,
            &x.shape,
        ))
    }
}
