//! Concat: join inputs along one axis.

use super::Operator;
use super::check::{Cx, Shaped, same_type};
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::limits::*;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// The joined axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcatParams {
    /// The joined axis.
    pub axis: usize,
}

impl Operator for ConcatParams {
    const NAME: &'static str = "concat";
    const TAG: u8 = 13;

    /// `axis u8`.
    fn encode(&self, w: &mut Writer) {
        w.axis(self.axis);
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        Ok(Self { axis: r.axis()? })
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        let inputs = cx.inputs;
        let axis = self.axis;
        if inputs.is_empty() || inputs.len() > MAX_NODE_INPUTS {
            return Err(cx.fail(format!(
                "takes 1..={MAX_NODE_INPUTS} inputs, got {}",
                inputs.len()
            )));
        }
        let first = inputs[0];
        let rank = first.spec.shape.len();
        if axis >= rank {
            return Err(cx.bad_axis(axis));
        }
        let mut total = 0usize;
        for t in inputs {
            cx.same_zp(t)?;
            let ok = t.spec.dtype == first.spec.dtype
                && t.spec.shape.len() == rank
                && (0..rank).all(|d| d == axis || t.spec.shape[d] == first.spec.shape[d]);
            if !ok {
                return Err(cx.fail(format!("cannot concat {} with {}", first.spec, t.spec)));
            }
            total = total.saturating_add(t.spec.shape[axis]);
        }
        let mut shape = first.spec.shape.clone();
        shape[axis] = total;
        let work = inputs.iter().map(|t| t.spec.elements() as u64).sum();
        Ok(Shaped::new(same_type(first, shape), work))
    }

    fn reference(&self, run: &Run<'_>) -> Tensor {
        run.out_data(cpu::layout::concat(run.inputs, self.axis))
    }
}
