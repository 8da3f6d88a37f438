//! Operator definitions: one module per operator.
//!
//! Each operator's module holds all of it apart from the backends' vector
//! and GPU code: its parameters, wire tag and encoding, validation (shape
//! rules, parameter ranges, the proof that no int32 accumulator can
//! overflow), its work counts for gas, and the entry of its CPU reference
//! kernel. [`Op`] ties them together with one dispatch per concern, here;
//! backends ([`crate::cpu`], `infera-gpu`) only compute.
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
pub(crate) mod max_pool;
pub(crate) mod mul;
pub(crate) mod pad;
pub(crate) mod requantize;
pub(crate) mod reshape;
pub(crate) mod transpose;

pub use add::AddParams;
pub(crate) use check::{check_limit, checked_product};
pub use conv2d::Conv2dParams;
pub use dense::DenseParams;
pub use max_pool::PoolParams;
pub use mul::MulParams;

use crate::error::{ModelError, ModelResult};
use crate::format::{Reader, Writer};
use crate::quant::Requant;
use crate::tensor::{DType, TensorInfo};
use check::{Cx, Shaped};
use serde::{Deserialize, Serialize};

/// One operator with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Op {
    /// Fully connected / matmul against constant weights.
    Dense(DenseParams),
    /// 2-D convolution (incl. depthwise and grouped).
    Conv2d(Conv2dParams),
    /// Max pool; padded positions are ignored.
    MaxPool(PoolParams),
    /// Average pool: `zp + round_half_up(sum(x - zp) / count)`.
    AvgPool {
        /// The window.
        pool: PoolParams,
        /// Divide by the full window (padding counts as 0.0) instead of the
        /// number of real elements.
        count_include_pad: bool,
    },
    /// Mean over H and W of NCHW, to `[N, C, 1, 1]`, rounded like `AvgPool`.
    GlobalAvgPool,
    /// Clamp int8 values to `[min, max]` (ReLU: `min = zero point`; ReLU6 too with
    /// `max = quantised 6`).
    Clip {
        /// Lower bound.
        min: i8,
        /// Upper bound.
        max: i8,
    },
    /// Element-wise add with requantisation (same shapes).
    Add(AddParams),
    /// Element-wise multiply with requantisation (same shapes).
    Mul(MulParams),
    /// Rescale int8 (`x - zx`) or int32 (`x`) to int8: `clamp(zy + round(v * m / 2^s))`.
    Requantize(Requant),
    /// Same elements, new shape.
    Reshape {
        /// New dimensions (no wildcards).
        shape: Vec<usize>,
    },
    /// ONNX Flatten: to `[prod(dims[..axis]), prod(dims[axis..])]`.
    Flatten {
        /// Split axis, `0..=rank`.
        axis: usize,
    },
    /// Permute axes: output axis `i` is input axis `perm[i]`.
    Transpose {
        /// A permutation of `0..rank`.
        perm: Vec<usize>,
    },
    /// Join inputs along one axis (same dtype and zero point).
    Concat {
        /// The joined axis.
        axis: usize,
    },
    /// Pad with the zero point (0 for int32).
    Pad {
        /// Elements added before, per axis.
        before: Vec<usize>,
        /// Elements added after, per axis.
        after: Vec<usize>,
    },
    /// Index of the largest value along an axis (first one on ties), as int32,
    /// keeping the axis with length 1.
    ArgMax {
        /// The reduced axis.
        axis: usize,
    },
}

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
    /// Short operator name (as in golden vectors).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Dense(_) => "dense",
            Op::Conv2d(_) => "conv2d",
            Op::MaxPool(_) => "max_pool",
            Op::AvgPool { .. } => "avg_pool",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Clip { .. } => "clip",
            Op::Add(_) => "add",
            Op::Mul(_) => "mul",
            Op::Requantize(_) => "requantize",
            Op::Reshape { .. } => "reshape",
            Op::Flatten { .. } => "flatten",
            Op::Transpose { .. } => "transpose",
            Op::Concat { .. } => "concat",
            Op::Pad { .. } => "pad",
            Op::ArgMax { .. } => "arg_max",
        }
    }

    /// Wire tag (see [`crate::format`]).
    pub fn tag(&self) -> u8 {
        match self {
            Op::Dense(_) => dense::TAG,
            Op::Conv2d(_) => conv2d::TAG,
            Op::MaxPool(_) => max_pool::TAG,
            Op::AvgPool { .. } => avg_pool::TAG,
            Op::GlobalAvgPool => global_avg_pool::TAG,
            Op::Clip { .. } => clip::TAG,
            Op::Add(_) => add::TAG,
            Op::Mul(_) => mul::TAG,
            Op::Requantize(_) => requantize::TAG,
            Op::Reshape { .. } => reshape::TAG,
            Op::Flatten { .. } => flatten::TAG,
            Op::Transpose { .. } => transpose::TAG,
            Op::Concat { .. } => concat::TAG,
            Op::Pad { .. } => pad::TAG,
            Op::ArgMax { .. } => arg_max::TAG,
        }
    }

    /// Write the operator's parameters (not its tag); each layout is
    /// documented on its module's `encode`.
    pub(crate) fn encode(&self, w: &mut Writer) {
        match self {
            Op::Dense(p) => p.encode(w),
            Op::Conv2d(p) => p.encode(w),
            Op::MaxPool(p) => p.encode(w),
            Op::AvgPool {
                pool,
                count_include_pad,
            } => avg_pool::encode(w, pool, *count_include_pad),
            Op::GlobalAvgPool => {}
            Op::Clip { min, max } => clip::encode(w, *min, *max),
            Op::Add(p) => p.encode(w),
            Op::Mul(p) => p.encode(w),
            Op::Requantize(rq) => requantize::encode(w, *rq),
            Op::Reshape { shape } => reshape::encode(w, shape),
            Op::Flatten { axis } => flatten::encode(w, *axis),
            Op::Transpose { perm } => transpose::encode(w, perm),
            Op::Concat { axis } => concat::encode(w, *axis),
            Op::Pad { before, after } => pad::encode(w, before, after),
            Op::ArgMax { axis } => arg_max::encode(w, *axis),
        }
    }

    /// Read an operator's parameters for a tag (the inverse of [`Op::encode`]).
    ///
    /// Only encoding is checked here (tags, lengths against the bytes left); the
    /// meaning of the parameters is checked by [`Op::infer`].
    pub(crate) fn decode(r: &mut Reader<'_>, tag_at: usize, tag: u8) -> ModelResult<Op> {
        match tag {
            dense::TAG => DenseParams::decode(r),
            conv2d::TAG => Conv2dParams::decode(r),
            max_pool::TAG => PoolParams::decode(r),
            avg_pool::TAG => avg_pool::decode(r),
            global_avg_pool::TAG => Ok(Op::GlobalAvgPool),
            clip::TAG => clip::decode(r),
            add::TAG => AddParams::decode(r),
            mul::TAG => MulParams::decode(r),
            requantize::TAG => requantize::decode(r),
            reshape::TAG => reshape::decode(r),
            flatten::TAG => flatten::decode(r),
            transpose::TAG => transpose::decode(r),
            concat::TAG => concat::decode(r),
            pad::TAG => pad::decode(r),
            arg_max::TAG => arg_max::decode(r),
            other => Err(ModelError::InvalidField {
                field: "op",
                offset: tag_at,
                value: other.into(),
            }),
        }
    }

    /// The constant tables of a dense or convolution layer: weights, biases
    /// and requantisation entries.
    fn tables(&self) -> Option<(&[i8], &[i32], &[Requant])> {
        match self {
            Op::Dense(p) => Some((&p.weights, &p.bias, &p.requant)),
            Op::Conv2d(p) => Some((&p.weights, &p.bias, &p.requant)),
            _ => None,
        }
    }

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

    /// Heap bytes of the operator's own vectors (weights, biases,
    /// requantisation tables, shapes, permutations, pads): what a decoded
    /// model's node holds besides its inputs (see `Model::heap_bytes`).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Op::Dense(DenseParams {
                weights,
                bias,
                requant,
                ..
            })
            | Op::Conv2d(Conv2dParams {
                weights,
                bias,
                requant,
                ..
            }) => {
                weights.len()
                    + std::mem::size_of_val(bias.as_slice())
                    + std::mem::size_of_val(requant.as_slice())
            }
            Op::Reshape { shape } => shape.len() * 8,
            Op::Transpose { perm } => perm.len() * 8,
            Op::Pad { before, after } => (before.len() + after.len()) * 8,
            _ => 0,
        }
    }

    /// Output channels of a dense or convolution layer (each with its own
    /// bias, requantisation and packed row), else 0.
    pub fn channels(&self) -> u64 {
        match self {
            Op::Dense(p) => p.out_features as u64,
            Op::Conv2d(p) => p.out_channels as u64,
            _ => 0,
        }
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

    fn infer_shape(&self, cx: &Cx<'_>) -> ModelResult<Shaped> {
        match self {
            Op::Dense(p) => p.infer(cx),
            Op::Conv2d(p) => p.infer(cx),
            Op::MaxPool(p) => p.infer(cx),
            Op::AvgPool { pool, .. } => avg_pool::infer(cx, pool),
            Op::GlobalAvgPool => global_avg_pool::infer(cx),
            Op::Clip { min, max } => clip::infer(cx, *min, *max),
            Op::Add(p) => p.infer(cx),
            Op::Mul(p) => p.infer(cx),
            Op::Requantize(rq) => requantize::infer(cx, *rq),
            Op::Reshape { shape } => reshape::infer(cx, shape),
            Op::Flatten { axis } => flatten::infer(cx, *axis),
            Op::Transpose { perm } => transpose::infer(cx, perm),
            Op::Concat { axis } => concat::infer(cx, *axis),
            Op::Pad { before, after } => pad::infer(cx, before, after),
            Op::ArgMax { axis } => arg_max::infer(cx, *axis),
        }
    }

    /// Run the operator's CPU reference kernel (the portable code, the
    /// definition of the answer) on validated inputs.
    pub(crate) fn reference(&self, run: &crate::cpu::Run<'_>) -> crate::tensor::Tensor {
        match self {
            Op::Dense(p) => p.reference(run),
            Op::Conv2d(p) => p.reference(run),
            Op::MaxPool(p) => p.reference(run),
            Op::AvgPool {
                pool,
                count_include_pad,
            } => avg_pool::reference(run, pool, *count_include_pad),
            Op::GlobalAvgPool => global_avg_pool::reference(run),
            Op::Clip { min, max } => clip::reference(run, *min, *max),
            Op::Add(p) => p.reference(run),
            Op::Mul(p) => p.reference(run),
            Op::Requantize(rq) => requantize::reference(run, *rq),
            Op::Reshape { .. } => reshape::reference(run),
            Op::Flatten { .. } => flatten::reference(run),
            Op::Transpose { perm } => transpose::reference(run, perm),
            Op::Concat { axis } => concat::reference(run, *axis),
            Op::Pad { before, .. } => pad::reference(run, before),
            Op::ArgMax { axis } => arg_max::reference(run, *axis),
        }
    }
}
