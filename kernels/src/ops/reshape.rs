//! Reshape: same elements, new shape.

use super::Operator;
use super::check::{Cx, Shaped, check_limit, checked_product, elems, same_type};
use crate::cpu::Run;
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::limits::*;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// The new shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReshapeParams {
    /// New dimensions (no wildcards).
    pub shape: Vec<usize>,
}

impl Operator for ReshapeParams {
    const NAME: &'static str = "reshape";
    const TAG: u8 = 10;

    /// `rank u8, dims u32[rank]`.
    fn encode(&self, w: &mut Writer) {
        w.rank(self.shape.len());
        w.axes(&self.shape);
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        let rank = r.rank()?;
        Ok(Self {
            shape: r.dims(rank)?,
        })
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        let x = cx.inputs[0];
        cx.same_zp(x)?;
        let shape = &self.shape;
        check_limit("MAX_RANK", shape.len() as u64, MAX_RANK as u64)?;
        if checked_product(shape) != Some(elems(x)) {
            return Err(cx.fail(format!("cannot reshape {} to {shape:?}", x.spec)));
        }
        Ok(Shaped::new(same_type(x, shape.clone()), elems(x)))
    }

    /// The same elements (also Flatten's).
    fn reference(&self, run: &Run<'_>) -> Tensor {
        copy(run)
    }

    fn heap_bytes(&self) -> usize {
        self.shape.len() * 8
    }
}

/// The same elements under the output's shape.
pub(crate) fn copy(run: &Run<'_>) -> Tensor {
    run.out_data(run.x().data.clone())
}
