//! Operator definitions: one module per operator.
//!
//! Each operator's module holds all of it apart from the backends' vector
//! and GPU code: its parameter type, which implements [`Operator`] (name,
//! wire tag and encoding, validation: shape rules, parameter ranges, the
//! proof that no int32 accumulator can overflow; its work counts for gas,
//! and the entry of its CPU reference kernel). The one list of operators is
//! [`with_operators!`](crate::with_operators): it generates the [`Op`] enum
//! and every dispatch over it here, and the GPU backend's dispatch from the
//! same list, so adding an operator is its module, one line in that list,
//! its CUDA kernel with a `Launch` impl in `infera-gpu`, and one ONNX import
//! rule (ARCHITECTURE.md walks through it).
//!
//! Layouts are row-major; images are NCHW; dense weights are `[out, in]`;
//! convolution weights are `[out_channels, in_channels / groups, kh, kw]`.

pub(crate) mod add;
pub(crate) mod affine;
pub(crate) mod arg_max;
pub(crate) mod avg_pool;
pub(crate) mod check;
pub(crate) mod clip;
pub(crate) mod concat;
pub(crate) mod conv2d;
pub(crate) mod dense;
pub(crate) mod flatten;
pub(crate) mod global_avg_pool;
pub(crate) mod layer_norm;
pub(crate) mod lut;
pub(crate) mod mat_mul;
pub(crate) mod max_pool;
pub(crate) mod mul;
pub(crate) mod pad;
pub(crate) mod reduce;
pub(crate) mod requantize;
pub(crate) mod reshape;
pub(crate) mod softmax;
pub(crate) mod transpose;

pub use add::AddParams;
pub use arg_max::ArgMaxParams;
pub use avg_pool::AvgPoolParams;
pub(crate) use check::{check_limit, checked_product};
pub use clip::ClipParams;
pub use concat::ConcatParams;
pub use conv2d::Conv2dParams;
pub use dense::DenseParams;
pub use flatten::FlattenParams;
pub use global_avg_pool::GlobalAvgPoolParams;
pub use layer_norm::{LayerNormParams, NORM_FRAC_BITS, NORM_SQRT_EXTRA_BITS, isqrt};
pub use lut::{LUT_ENTRIES, LutParams};
pub use mat_mul::MatMulParams;
pub use max_pool::PoolParams;
pub use mul::MulParams;
pub use pad::PadParams;
pub use reduce::ReduceParams;
pub use reshape::ReshapeParams;
pub use softmax::{SOFTMAX_STEPS, SOFTMAX_TABLE_ENTRIES, SOFTMAX_ZERO_POINT, SoftmaxParams};
pub use transpose::TransposeParams;

use crate::error::{ModelError, ModelResult};
use crate::format::{Reader, Writer};
use crate::quant::Requant;
use crate::tensor::{DType, TensorInfo};
use check::{Cx, Shaped};
use serde::{Deserialize, Serialize};

use crate::cpu::Run;
use crate::tensor::Tensor;

/// What every operator defines, in its own module, on its parameter type.
///
/// Nothing outside `ops` dispatches on the operator kind except backends
/// choosing a faster computation of the same bytes.
pub(crate) trait Operator: Sized {
    /// Short name (as in golden vectors and error messages).
    const NAME: &'static str;
    /// Wire tag (see [`crate::format`]); unique (a test checks).
    const TAG: u8;

    /// Write the parameters (not the tag); the layout is documented on each
    /// implementation.
    fn encode(&self, w: &mut Writer);

    /// Read the parameters (the inverse of [`Operator::encode`]). Only the
    /// encoding is checked here (lengths against the bytes left); the
    /// meaning is checked by [`Operator::infer`].
    fn decode(r: &mut Reader<'_>) -> ModelResult<Self>;

    /// Validate against the inputs: the output, the work for gas, and what
    /// moves besides MACs.
    #[doc(hidden)]
    fn infer(&self, cx: &Cx<'_>) -> ModelResult<Shaped>;

    /// The CPU reference kernel (the portable code, the definition of the
    /// answer) on validated inputs.
    #[doc(hidden)]
    fn reference(&self, run: &Run<'_>) -> Tensor;

    /// Heap bytes of the parameters' own vectors.
    fn heap_bytes(&self) -> usize {
        0
    }

    /// The constant tables of a layer with weights: weights, biases and
    /// requantisation entries.
    fn tables(&self) -> Option<(&[i8], &[i32], &[Requant])> {
        None
    }

    /// Output channels of a layer with weights (each with its own bias,
    /// requantisation and packed row), else 0.
    fn channels(&self) -> u64 {
        0
    }
}

/// The one list of operators: calls `$callback!` with every operator as
/// `/// docs Variant(ParamType)`, so that the [`Op`] enum, its dispatches
/// and the GPU backend's launch dispatch are all generated from it.
#[macro_export]
macro_rules! with_operators {
    ($callback:ident) => {
        $callback! {
            /// Fully connected / matmul against constant weights.
            Dense($crate::ops::DenseParams),
            /// 2-D convolution (incl. depthwise and grouped).
            Conv2d($crate::ops::Conv2dParams),
            /// Max pool; padded positions are ignored.
            MaxPool($crate::ops::PoolParams),
            /// Average pool: `zp + round_half_up(sum(x - zp) / count)`.
            AvgPool($crate::ops::AvgPoolParams),
            /// Mean over H and W of NCHW, to `[N, C, 1, 1]`, rounded like `AvgPool`.
            GlobalAvgPool($crate::ops::GlobalAvgPoolParams),
            /// Clamp int8 values to `[min, max]` (ReLU: `min = zero point`;
            /// ReLU6 too with `max = quantised 6`).
            Clip($crate::ops::ClipParams),
            /// Element-wise add with requantisation (same shapes).
            Add($crate::ops::AddParams),
            /// Element-wise multiply with requantisation (same shapes).
            Mul($crate::ops::MulParams),
            /// Rescale int8 (`x - zx`) or int32 (`x`) to int8:
            /// `clamp(zy + round(v * m / 2^s))`.
            Requantize($crate::quant::Requant),
            /// Same elements, new shape.
            Reshape($crate::ops::ReshapeParams),
            /// ONNX Flatten: to `[prod(dims[..axis]), prod(dims[axis..])]`.
            Flatten($crate::ops::FlattenParams),
            /// Permute axes: output axis `i` is input axis `perm[i]`.
            Transpose($crate::ops::TransposeParams),
            /// Join inputs along one axis (same dtype and zero point).
            Concat($crate::ops::ConcatParams),
            /// Pad with the zero point (0 for int32).
            Pad($crate::ops::PadParams),
            /// Index of the largest value along an axis (first one on ties),
            /// as int32, keeping the axis with length 1.
            ArgMax($crate::ops::ArgMaxParams),
            /// Any function of one int8 value, as its 256 answers (GELU,
            /// Sigmoid, Tanh, SiLU, HardSwish).
            Lut($crate::ops::LutParams),
            /// Softmax over the last axis by a table of exponentials, to the
            /// fixed output scale 1/256 (zero point -128).
            Softmax($crate::ops::SoftmaxParams),
            /// Layer normalisation over the last axis (integer square root),
            /// with per-channel scale and bias.
            LayerNorm($crate::ops::LayerNormParams),
            /// Product of two int8 activations `[.., m, k] x [.., k, n]`,
            /// batched over equal leading axes, requantised from int32.
            MatMul($crate::ops::MatMulParams),
            /// Sum or mean of `x - zx` over given axes, rescaled to int8.
            Reduce($crate::ops::ReduceParams),
        }
    };
}

macro_rules! define_operators {
    ($($(#[$doc:meta])* $variant:ident($params:ty)),* $(,)?) => {
        /// One operator with its parameters. The serde form is internally
        /// tagged: `{"kind": "clip", "min": -128, "max": 127}`.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum Op {
            $($(#[$doc])* $variant($params),)*
        }

        impl Op {
            /// Short operator name (as in golden vectors).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Op::$variant(_) => <$params as Operator>::NAME,)*
                }
            }

            /// Wire tag (see [`crate::format`]).
            pub fn tag(&self) -> u8 {
                match self {
                    $(Op::$variant(_) => <$params as Operator>::TAG,)*
                }
            }

            /// Every operator's wire tag and name, in list order.
            pub fn tags() -> &'static [(u8, &'static str)] {
                &[$((<$params as Operator>::TAG, <$params as Operator>::NAME),)*]
            }

            /// Write the operator's parameters (not its tag); each layout is
            /// documented on its module's `encode`.
            pub(crate) fn encode(&self, w: &mut Writer) {
                match self {
                    $(Op::$variant(p) => p.encode(w),)*
                }
            }

            /// Read an operator's parameters for a tag (the inverse of
            /// [`Op::encode`]).
            ///
            /// Only encoding is checked here (tags, lengths against the bytes
            /// left); the meaning of the parameters is checked by [`Op::infer`].
            pub(crate) fn decode(r: &mut Reader<'_>, tag_at: usize, tag: u8) -> ModelResult<Op> {
                $(if tag == <$params as Operator>::TAG {
                    return Ok(Op::$variant(<$params as Operator>::decode(r)?));
                })*
                Err(ModelError::InvalidField {
                    field: "op",
                    offset: tag_at,
                    value: tag.into(),
                })
            }

            /// The constant tables of a layer with weights (dense,
            /// convolution): weights, biases and requantisation entries.
            pub fn tables(&self) -> Option<(&[i8], &[i32], &[Requant])> {
                match self {
                    $(Op::$variant(p) => p.tables(),)*
                }
            }

            /// Heap bytes of the operator's own vectors (weights, biases,
            /// requantisation tables, shapes, permutations, pads): what a
            /// decoded model's node holds besides its inputs (see
            /// `Model::heap_bytes`).
            pub fn heap_bytes(&self) -> usize {
                match self {
                    $(Op::$variant(p) => p.heap_bytes(),)*
                }
            }

            /// Output channels of a dense or convolution layer (each with its
            /// own bias, requantisation and packed row), else 0.
            pub fn channels(&self) -> u64 {
                match self {
                    $(Op::$variant(p) => p.channels(),)*
                }
            }

            fn infer_shape(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
                match self {
                    $(Op::$variant(p) => p.infer(cx),)*
                }
            }

            /// Run the operator's CPU reference kernel (the portable code, the
            /// definition of the answer) on validated inputs.
            pub(crate) fn reference(&self, run: &Run<'_>) -> Tensor {
                match self {
                    $(Op::$variant(p) => p.reference(run),)*
                }
            }
        }
    };
}

crate::with_operators!(define_operators);

/// Element moves one requantised output counts for in [`Work::moved_elements`].
pub const REQUANT_ELEMENT_MOVES: u64 = 4;
/// Element moves one gathered element (an im2col entry with its bounds
/// checks, a depthwise tap) counts for in [`Work::moved_elements`].
pub const GATHER_ELEMENT_MOVES: u64 = 3;

/// Work an operator does, counted from shapes alone (for gas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Work {
    /// Multiply-accumulates.
    pub macs: u64,
    /// Other element reads (pool windows, element-wise inputs, copies).
    pub element_ops: u64,
    /// Multiply-accumulates the portable kernels really execute: reductions
    /// padded to [`crate::cpu::LANES`], every tap of a depthwise window.
    /// What gas prices, since padding costs time although it adds nothing.
    #[serde(default)]
    pub kernel_macs: u64,
    /// Elements the kernels move besides the MACs: inputs read, outputs
    /// written (int32 ones four bytes each), im2col gathers of grouped
    /// convolutions, activations widened for dense layers.
    #[serde(default)]
    pub moved_elements: u64,
}

impl Op {
    /// Bytes of constant parameters (weights, biases, requant tables).
    pub fn param_bytes(&self) -> u64 {
        let (w, b, r) = self
            .tables()
            .map_or((0, 0, 0), |(w, b, r)| (w.len(), b.len(), r.len()));
        (w + 4 * b + 5 * r) as u64
    }

    /// Number of learned parameters (weights + biases).
    pub fn param_count(&self) -> u64 {
        self.tables()
            .map_or(0, |(w, b, _)| (w.len() + b.len()) as u64)
    }

    /// Validate the operator against its inputs and give its output and work.
    ///
    /// `node` only labels errors. Checks input count, types, shapes, parameter
    /// ranges, that no int32 accumulator can overflow for any input, and the
    /// per-operator limits. The output's dimension limits are checked by the caller.
    pub fn infer(
        &self,
        node: usize,
        inputs: &[&TensorInfo],
        out_zero_point: i8,
    ) -> ModelResult<(TensorInfo, Work)> {
        let cx = Cx {
            node,
            op: self.name(),
            inputs,
            out_zero_point,
        };
        let Shaped {
            out,
            mut work,
            gathered,
            requantised,
            windows,
        } = self.infer_shape(&cx)?;
        let elems = |t: &TensorInfo| t.spec.elements() as u64;
        let width = |t: &TensorInfo| match t.spec.dtype {
            DType::I8 => 1,
            DType::I32 => 4,
        };
        let read: u64 = inputs.iter().map(|t| elems(t) * width(t)).sum();
        let written = elems(&out) * width(&out);
        work.moved_elements = read
            .saturating_add(written)
            .saturating_add(gathered.saturating_mul(GATHER_ELEMENT_MOVES))
            .saturating_add(requantised.saturating_mul(REQUANT_ELEMENT_MOVES))
            .saturating_add(windows);
        Ok((out, work))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_tags_and_names_are_unique() {
        let tags = Op::tags();
        for (i, (tag, name)) in tags.iter().enumerate() {
            for (other_tag, other_name) in &tags[i + 1..] {
                assert_ne!(tag, other_tag, "{name} and {other_name} share a tag");
                assert_ne!(name, other_name);
            }
        }
    }
}
