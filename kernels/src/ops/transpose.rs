//! Transpose: permute axes.

use super::Operator;
use super::check::{Cx, Shaped, elems, same_type};
use crate::cpu::{self, Run};
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// The permutation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransposeParams {
    /// A permutation of `0..rank`.
    pub perm: Vec<usize>,
}

impl Operator for TransposeParams {
    const NAME: &'static str = "transpose";
    const TAG: u8 = 12;

    /// `rank u8, perm u8[rank]`.
    fn encode(&self, w: &mut Writer) {
        w.rank(self.perm.len());
        self.perm.iter().for_each(|&a| w.axis(a));
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        let rank = r.rank()?;
        Ok(Self {
            perm: (0..rank).map(|_| r.axis()).collect::<ModelResult<_>>()?,
        })
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        let x = cx.inputs[0];
        cx.same_zp(x)?;
        let s = &x.spec.shape;
        let perm = &self.perm;
        let mut seen = vec![false; s.len()];
        if perm.len() != s.len()
            || perm
                .iter()
                .any(|&a| a >= s.len() || std::mem::replace(&mut seen[a], true))
        {
            return Err(cx.fail(format!(
                "{perm:?} is not a permutation of the axes of {}",
                x.spec
            )));
        }
        let shape = perm.iter().map(|&a| s[a]).collect();
        Ok(Shaped::new(same_type(x, shape), elems(x)))
    }

    fn reference(&self, run: &Run<'_>) -> Tensor {
        let x = run.x();
        run.out_data(cpu::layout::transpose(&x.data, &x.shape, &self.perm))
    }

    fn heap_bytes(&self) -> usize {
        self.perm.len() * 8
    }
}
