//! Pad with the zero point.

use super::Operator;
use super::check::{Cx, Shaped, check_limit, same_type};
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::limits::*;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Padding per axis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PadParams {
    /// Elements added before, per axis.
    pub before: Vec<usize>,
    /// Elements added after, per axis.
    pub after: Vec<usize>,
}

impl Operator for PadParams {
    const NAME: &'static str = "pad";
    const TAG: u8 = 14;

    /// `rank u8, before u32[rank], after u32[rank]`.
    fn encode(&self, w: &mut Writer) {
        w.rank(self.before.len());
        w.axes(&self.before);
        w.axes(&self.after);
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        let rank = r.rank()?;
        Ok(Self {
            before: r.dims(rank)?,
            after: r.dims(rank)?,
        })
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        let x = cx.inputs[0];
        cx.same_zp(x)?;
        let Self { before, after } = self;
        let s = &x.spec.shape;
        if before.len() != s.len() || after.len() != s.len() {
            return Err(cx.fail(format!("pads need {} entries per side", s.len())));
        }
        for &p in before.iter().chain(after) {
            check_limit("MAX_PAD", p as u64, MAX_PAD)?;
        }
        let shape: Vec<usize> = (0..s.len()).map(|d| s[d] + before[d] + after[d]).collect();
        let out = same_type(x, shape);
        let work = out.spec.elements() as u64;
        Ok(Shaped::new(out, work))
    }

    fn reference(&self, run: &Run<'_>) -> Tensor {
        let x = run.x();
        let out = run.out;
        run.out_data(cpu::layout::pad(
            &x.data,
            &x.shape,
            &self.before,
            &out.spec.shape,
            out.zero_point,
        ))
    }

    fn heap_bytes(&self) -> usize {
        (self.before.len() + self.after.len()) * 8
    }
}
