//! ArgMax along an axis, as int32 indices.

use super::Operator;
use super::check::{Cx, Shaped, elems};
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::tensor::DType;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// The reduced axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgMaxParams {
    /// The reduced axis.
    pub axis: usize,
}

impl Operator for ArgMaxParams {
    const NAME: &'static str = "arg_max";
    const TAG: u8 = 15;

    /// `axis u8`.
    fn encode(&self, w: &mut Writer) {
        w.axis(self.axis);
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        Ok(Self { axis: r.axis()? })
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        let x = cx.inputs[0];
        let s = &x.spec.shape;
        let axis = self.axis;
        if axis >= s.len() {
            return Err(cx.bad_axis(axis));
        }
        if cx.out_zero_point != 0 {
            return Err(cx.fail("an i32 output has zero point 0".into()));
        }
        let mut shape = s.clone();
        shape[axis] = 1;
        Ok(Shaped::new(cx.out(DType::I32, shape), elems(x)))
    }

    fn reference(&self, run: &Run<'_>) -> Tensor {
        let x = run.x();
        Tensor::i32(
            run.out.spec.shape.clone(),
            cpu::layout::arg_max(&x.data, &x.shape, self.axis),
        )
    }
}
