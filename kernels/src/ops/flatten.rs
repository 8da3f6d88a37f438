//! ONNX Flatten: to two dimensions split at an axis.

use super::Operator;
use super::check::{Cx, Shaped, elems, same_type};
use crate::cpu::Run;
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// The split axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenParams {
    /// Split axis, `0..=rank`.
    pub axis: usize,
}

impl Operator for FlattenParams {
    const NAME: &'static str = "flatten";
    const TAG: u8 = 11;

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
        cx.same_zp(x)?;
        let s = &x.spec.shape;
        let axis = self.axis;
        if axis > s.len() {
            return Err(cx.bad_axis(axis));
        }
        let shape = vec![s[..axis].iter().product(), s[axis..].iter().product()];
        Ok(Shaped::new(same_type(x, shape), elems(x)))
    }

    /// A reshape.
    fn reference(&self, run: &Run<'_>) -> Tensor {
        super::reshape::copy(run)
    }
}
