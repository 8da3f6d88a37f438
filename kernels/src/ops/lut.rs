//! Lookup table: any function of one int8 value, as its 256 answers.
//!
//! The nonlinear activations of transformers (GELU, Sigmoid, Tanh,
//! SiLU/Swish, HardSwish) map an int8 input to an int8 output, so each is
//! exactly a table of 256 int8 entries, computed off chain by the importer
//! from the input's and output's quantisation (floating point allowed there)
//! and applied on chain by indexing: `y = table[x + 128]`. No arithmetic
//! runs on chain, so no rounding rule or overflow bound is needed, and every
//! backend returns the same bytes by construction. The accuracy this costs
//! is only the int8 rounding of the output (half an output step at most,
//! on top of the input's own quantisation): see `kernels/README.md`.

use super::Operator;
use super::check::{Cx, Shaped, elems};
use crate::cpu::Run;
use crate::error::ModelResult;
use crate::format::{Reader, Writer};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Entries of a table: one per int8 value.
pub const LUT_ENTRIES: usize = 256;

/// The table, indexed by `x + 128`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LutParams {
    /// [`LUT_ENTRIES`] outputs: `table[i]` is the answer for input `i - 128`.
    pub table: Vec<i8>,
}

impl LutParams {
    /// The table of `f`, a function of the int8 input value.
    pub fn from_fn(f: impl Fn(i8) -> i8) -> Self {
        Self {
            table: (i8::MIN..=i8::MAX).map(f).collect(),
        }
    }

    fn at(&self, x: i8) -> i8 {
        self.table[(i16::from(x) + 128) as usize]
    }
}

impl Operator for LutParams {
    const NAME: &'static str = "lut";
    const TAG: u8 = 16;

    /// `table i8[256]`.
    fn encode(&self, w: &mut Writer) {
        self.table.iter().for_each(|&v| w.i8(v));
    }

    fn decode(r: &mut Reader<'_>) -> ModelResult<Self> {
        let bytes = r.take(LUT_ENTRIES as u64)?;
        Ok(Self {
            table: bytes.iter().map(|&b| b as i8).collect(),
        })
    }

    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        cx.arity(1)?;
        let x = cx.inputs[0];
        cx.want_i8(x)?;
        if self.table.len() != LUT_ENTRIES {
            return Err(cx.fail(format!(
                "a table has {LUT_ENTRIES} entries, got {}",
                self.table.len()
            )));
        }
        Ok(Shaped::new(cx.i8_out(x.spec.shape.clone()), elems(x)))
    }

    fn reference(&self, run: &Run<'_>) -> Tensor {
        run.i8_out(run.x_i8().iter().map(|&v| self.at(v)).collect())
    }

    fn heap_bytes(&self) -> usize {
        self.table.len()
    }
}
