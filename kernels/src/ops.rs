//! Operator definitions: parameters, shape rules, validation and work counts.
//!
//! Each operator is defined here once. [`Op::infer`] is the whole contract of an
//! operator apart from its arithmetic: which inputs it takes, which parameters
//! are legal, what it produces, that its int32 accumulators cannot overflow, and
//! how much work it does. Backends ([`crate::cpu`], later CUDA) only compute.
//!
//! Layouts are row-major; images are NCHW; dense weights are `[out, in]`;
//! convolution weights are `[out_channels, in_channels / groups, kh, kw]`.

use crate::error::{ModelError, ModelResult};
use crate::limits::*;
use crate::quant::Requant;
use crate::tensor::{DType, TensorInfo, TensorSpec};
use serde::{Deserialize, Serialize};

/// Fully connected layer: `y[.., o] = requant(bias[o] + sum_k (x[.., k] - zx) * w[o, k])`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenseParams {
    /// Length of the reduced (last) input axis.
    pub in_features: usize,
    /// Length of the output's last axis.
    pub out_features: usize,
    /// `I8`: requantised with `requant` and clamped to `[act_min, act_max]`;
    /// `I32`: the raw accumulators (then `requant` is empty).
    pub out_dtype: DType,
    /// `[out_features, in_features]`, symmetric (zero point 0).
    pub weights: Vec<i8>,
    /// One per output feature, in accumulator units.
    pub bias: Vec<i32>,
    /// One per output feature when `out_dtype` is `I8`, else empty.
    pub requant: Vec<Requant>,
    /// Lower clamp of the int8 output (a fused ReLU sets it to the zero point).
    pub act_min: i8,
    /// Upper clamp of the int8 output.
    pub act_max: i8,
}

/// 2-D convolution over NCHW with stride, padding, dilation and groups.
///
/// Padding takes the input's zero point (the quantised 0.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dParams {
    /// Input channels `C`.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// `[dh, dw]`.
    pub dilation: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Groups; `groups == in_channels == out_channels` is depthwise.
    pub groups: usize,
    /// As in [`DenseParams::out_dtype`].
    pub out_dtype: DType,
    /// `[out_channels, in_channels / groups, kh, kw]`.
    pub weights: Vec<i8>,
    /// One per output channel.
    pub bias: Vec<i32>,
    /// One per output channel when `out_dtype` is `I8`, else empty.
    pub requant: Vec<Requant>,
    /// Lower clamp of the int8 output.
    pub act_min: i8,
    /// Upper clamp of the int8 output.
    pub act_max: i8,
}

/// Window of a max or average pool over NCHW.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolParams {
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]`, each smaller than the kernel extent so every
    /// window holds at least one real element.
    pub pads: [usize; 4],
}

/// Element-wise `y = zy + round(((a - za) * ma + (b - zb) * mb) / 2^shift)`, clamped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddParams {
    /// Multiplier of the first input.
    pub multiplier_a: i32,
    /// Multiplier of the second input.
    pub multiplier_b: i32,
    /// Shared right shift, `1..=MAX_SHIFT_BITS`.
    pub shift: u8,
    /// Lower clamp.
    pub act_min: i8,
    /// Upper clamp.
    pub act_max: i8,
}

/// Element-wise `y = zy + round((a - za) * (b - zb) * m / 2^shift)`, clamped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MulParams {
    /// Rescale of the product.
    pub requant: Requant,
    /// Lower clamp.
    pub act_min: i8,
    /// Upper clamp.
    pub act_max: i8,
}

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

    /// Bytes of constant parameters (weights, biases, requant tables).
    pub fn param_bytes(&self) -> u64 {
        let (w, b, r) = match self {
            Op::Dense(p) => (p.weights.len(), p.bias.len(), p.requant.len()),
            Op::Conv2d(p) => (p.weights.len(), p.bias.len(), p.requant.len()),
            _ => (0, 0, 0),
        };
        (w + 4 * b + 5 * r) as u64
    }

    /// Number of learned parameters (weights + biases).
    pub fn param_count(&self) -> u64 {
        match self {
            Op::Dense(p) => (p.weights.len() + p.bias.len()) as u64,
            Op::Conv2d(p) => (p.weights.len() + p.bias.len()) as u64,
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
        let (out, mut work) = self.infer_shape(node, inputs, out_zero_point)?;
        let elems = |t: &TensorInfo| t.spec.elements() as u64;
        let width = |t: &TensorInfo| match t.spec.dtype {
            DType::I8 => 1,
            DType::I32 => 4,
        };
        let read: u64 = inputs.iter().map(|t| elems(t) * width(t)).sum();
        let written = elems(&out) * width(&out);
        let (kernel_macs, gathered) = match self {
            Op::Dense(p) => {
                let rows = elems(inputs[0]) / p.in_features as u64;
                let kp = crate::cpu::padded_len(p.in_features) as u64;
                // Every row is widened and padded before the GEMM.
                (rows * p.out_features as u64 * kp, rows * kp)
            }
            Op::Conv2d(p) => {
                let [n, _, oh, ow] = [
                    out.spec.shape[0],
                    out.spec.shape[1],
                    out.spec.shape[2],
                    out.spec.shape[3],
                ]
                .map(|d| d as u64);
                let taps = (p.kernel[0] * p.kernel[1]) as u64;
                let plane = oh * ow;
                let cg = (p.in_channels / p.groups) as u64;
                if cg == 1 {
                    // Depthwise: every tap of every output as a scalar
                    // multiply-add over short rows, priced as a gather.
                    (0, n * p.out_channels as u64 * plane * taps)
                } else {
                    let kp = crate::cpu::padded_len(cg as usize * taps as usize) as u64;
                    // im2col gathers a padded row per position and group.
                    (
                        n * p.out_channels as u64 * plane * kp,
                        n * p.groups as u64 * plane * kp,
                    )
                }
            }
            _ => (0, 0),
        };
        // Requantising an output (an i64 product, a rounding shift and a
        // clamp) costs about five element moves on the portable kernels.
        let requantised = match self {
            Op::Dense(DenseParams {
                out_dtype: DType::I8,
                ..
            })
            | Op::Conv2d(Conv2dParams {
                out_dtype: DType::I8,
                ..
            })
            | Op::Requantize(_)
            | Op::Add(_)
            | Op::Mul(_)
            | Op::AvgPool { .. }
            | Op::GlobalAvgPool => elems(&out),
            _ => 0,
        };
        // A pool's window element is a compare or add with an index step:
        // counted twice (as an element op and as a move), as measured.
        let windows = match self {
            Op::MaxPool(_) | Op::AvgPool { .. } => work.element_ops,
            _ => 0,
        };
        work.kernel_macs = kernel_macs;
        work.moved_elements = read
            .saturating_add(written)
            .saturating_add(gathered.saturating_mul(GATHER_ELEMENT_MOVES))
            .saturating_add(requantised.saturating_mul(REQUANT_ELEMENT_MOVES))
            .saturating_add(windows);
        Ok((out, work))
    }

    fn infer_shape(
        &self,
        node: usize,
        inputs: &[&TensorInfo],
        out_zero_point: i8,
    ) -> ModelResult<(TensorInfo, Work)> {
        let name = self.name();
        let fail = |reason: String| ModelError::InvalidNode {
            node,
            op: name,
            reason,
        };
        let arity = |n: usize| -> ModelResult<()> {
            if inputs.len() == n {
                Ok(())
            } else {
                Err(fail(format!("takes {n} inputs, got {}", inputs.len())))
            }
        };
        let want_i8 = |t: &TensorInfo| -> ModelResult<()> {
            if t.spec.dtype == DType::I8 {
                Ok(())
            } else {
                Err(fail(format!("needs an i8 input, got {}", t.spec)))
            }
        };
        let same_zp = |t: &TensorInfo| -> ModelResult<()> {
            if t.zero_point == out_zero_point {
                Ok(())
            } else {
                Err(fail(format!(
                    "output zero point {out_zero_point} must equal the input's {}",
                    t.zero_point
                )))
            }
        };
        let i8_out = |shape: Vec<usize>| TensorInfo {
            spec: TensorSpec {
                dtype: DType::I8,
                shape,
            },
            zero_point: out_zero_point,
        };
        let elems = |t: &TensorInfo| t.spec.elements() as u64;

        match self {
            Op::Dense(p) => {
                arity(1)?;
                let x = inputs[0];
                want_i8(x)?;
                let k = p.in_features;
                if x.spec.shape.last() != Some(&k) {
                    return Err(fail(format!(
                        "input {} must end in in_features {k}",
                        x.spec
                    )));
                }
                check_limit("MAX_REDUCTION_LEN", k as u64, MAX_REDUCTION_LEN)?;
                check_limit("MAX_DIM", p.out_features as u64, MAX_DIM)?;
                if p.out_features == 0 {
                    return Err(fail("out_features is 0".into()));
                }
                check_weights(&fail, &p.weights, &p.bias, p.out_features, k)?;
                check_output_mode(
                    &fail,
                    p.out_dtype,
                    &p.requant,
                    p.out_features,
                    p.act_min,
                    p.act_max,
                    out_zero_point,
                )?;
                check_accumulators(node, &p.weights, &p.bias, k)?;
                let rows = elems(x) / k as u64;
                let mut shape = x.spec.shape.clone();
                *shape.last_mut().expect("rank >= 1") = p.out_features;
                let work = Work {
                    macs: rows * (k * p.out_features) as u64,
                    element_ops: 0,
                    ..Work::default()
                };
                Ok((
                    TensorInfo {
                        spec: TensorSpec {
                            dtype: p.out_dtype,
                            shape,
                        },
                        zero_point: out_zero_point,
                    },
                    work,
                ))
            }
            Op::Conv2d(p) => {
                arity(1)?;
                let x = inputs[0];
                want_i8(x)?;
                let [n, c, h, w] = nchw(&fail, x)?;
                if c != p.in_channels {
                    return Err(fail(format!(
                        "input has {c} channels, params say {}",
                        p.in_channels
                    )));
                }
                if p.groups == 0 || p.in_channels % p.groups != 0 || p.out_channels % p.groups != 0
                {
                    return Err(fail(format!(
                        "groups {} must divide in_channels {} and out_channels {}",
                        p.groups, p.in_channels, p.out_channels
                    )));
                }
                check_limit("MAX_DIM", p.out_channels as u64, MAX_DIM)?;
                if p.out_channels == 0 {
                    return Err(fail("out_channels is 0".into()));
                }
                for d in 0..2 {
                    check_range(&fail, "kernel", p.kernel[d], MAX_KERNEL_DIM)?;
                    check_range(&fail, "stride", p.stride[d], MAX_STRIDE)?;
                    check_range(&fail, "dilation", p.dilation[d], MAX_DILATION)?;
                }
                for &pad in &p.pads {
                    check_limit("MAX_PAD", pad as u64, MAX_PAD)?;
                }
                let red = p.in_channels / p.groups * p.kernel[0] * p.kernel[1];
                check_limit("MAX_REDUCTION_LEN", red as u64, MAX_REDUCTION_LEN)?;
                let oh = out_extent(
                    &fail,
                    h,
                    p.kernel[0],
                    p.stride[0],
                    p.dilation[0],
                    p.pads[0],
                    p.pads[2],
                )?;
                let ow = out_extent(
                    &fail,
                    w,
                    p.kernel[1],
                    p.stride[1],
                    p.dilation[1],
                    p.pads[1],
                    p.pads[3],
                )?;
                check_weights(&fail, &p.weights, &p.bias, p.out_channels, red)?;
                check_output_mode(
                    &fail,
                    p.out_dtype,
                    &p.requant,
                    p.out_channels,
                    p.act_min,
                    p.act_max,
                    out_zero_point,
                )?;
                check_accumulators(node, &p.weights, &p.bias, red)?;
                let macs = (n * p.out_channels * oh * ow) as u64 * red as u64;
                let shape = vec![n, p.out_channels, oh, ow];
                Ok((
                    TensorInfo {
                        spec: TensorSpec {
                            dtype: p.out_dtype,
                            shape,
                        },
                        zero_point: out_zero_point,
                    },
                    Work {
                        macs,
                        element_ops: 0,
                        ..Work::default()
                    },
                ))
            }
            Op::MaxPool(p) | Op::AvgPool { pool: p, .. } => {
                arity(1)?;
                let x = inputs[0];
                want_i8(x)?;
                same_zp(x)?;
                let [n, c, h, w] = nchw(&fail, x)?;
                for d in 0..2 {
                    check_range(&fail, "kernel", p.kernel[d], MAX_KERNEL_DIM)?;
                    check_range(&fail, "stride", p.stride[d], MAX_STRIDE)?;
                }
                for (i, &pad) in p.pads.iter().enumerate() {
                    if pad >= p.kernel[i % 2] {
                        return Err(fail(format!("pad {pad} must be smaller than the kernel")));
                    }
                }
                let oh = out_extent(&fail, h, p.kernel[0], p.stride[0], 1, p.pads[0], p.pads[2])?;
                let ow = out_extent(&fail, w, p.kernel[1], p.stride[1], 1, p.pads[1], p.pads[3])?;
                let work = Work {
                    macs: 0,
                    element_ops: (n * c * oh * ow * p.kernel[0] * p.kernel[1]) as u64,
                    ..Work::default()
                };
                Ok((i8_out(vec![n, c, oh, ow]), work))
            }
            Op::GlobalAvgPool => {
                arity(1)?;
                let x = inputs[0];
                want_i8(x)?;
                same_zp(x)?;
                let [n, c, _, _] = nchw(&fail, x)?;
                Ok((
                    i8_out(vec![n, c, 1, 1]),
                    Work {
                        macs: 0,
                        element_ops: elems(x),
                        ..Work::default()
                    },
                ))
            }
            Op::Clip { min, max } => {
                arity(1)?;
                want_i8(inputs[0])?;
                same_zp(inputs[0])?;
                if min > max {
                    return Err(fail(format!("min {min} > max {max}")));
                }
                Ok((
                    i8_out(inputs[0].spec.shape.clone()),
                    Work {
                        macs: 0,
                        element_ops: elems(inputs[0]),
                        ..Work::default()
                    },
                ))
            }
            Op::Add(p) => {
                arity(2)?;
                want_i8(inputs[0])?;
                want_i8(inputs[1])?;
                same_shape(&fail, inputs[0], inputs[1])?;
                for m in [p.multiplier_a, p.multiplier_b] {
                    check_requant(
                        &fail,
                        Requant {
                            multiplier: m,
                            shift: p.shift,
                        },
                    )?;
                }
                check_act(&fail, p.act_min, p.act_max)?;
                Ok((
                    i8_out(inputs[0].spec.shape.clone()),
                    Work {
                        macs: 0,
                        element_ops: 2 * elems(inputs[0]),
                        ..Work::default()
                    },
                ))
            }
            Op::Mul(p) => {
                arity(2)?;
                want_i8(inputs[0])?;
                want_i8(inputs[1])?;
                same_shape(&fail, inputs[0], inputs[1])?;
                check_requant(&fail, p.requant)?;
                check_act(&fail, p.act_min, p.act_max)?;
                Ok((
                    i8_out(inputs[0].spec.shape.clone()),
                    Work {
                        macs: 0,
                        element_ops: 2 * elems(inputs[0]),
                        ..Work::default()
                    },
                ))
            }
            Op::Requantize(rq) => {
                arity(1)?;
                check_requant(&fail, *rq)?;
                Ok((
                    i8_out(inputs[0].spec.shape.clone()),
                    Work {
                        macs: 0,
                        element_ops: elems(inputs[0]),
                        ..Work::default()
                    },
                ))
            }
            Op::Reshape { shape } => {
                arity(1)?;
                same_zp(inputs[0])?;
                check_limit("MAX_RANK", shape.len() as u64, MAX_RANK as u64)?;
                let count = checked_product(shape);
                if count != Some(elems(inputs[0])) {
                    return Err(fail(format!(
                        "cannot reshape {} to {shape:?}",
                        inputs[0].spec
                    )));
                }
                Ok((
                    same_type(inputs[0], shape.clone()),
                    Work {
                        macs: 0,
                        element_ops: elems(inputs[0]),
                        ..Work::default()
                    },
                ))
            }
            Op::Flatten { axis } => {
                arity(1)?;
                same_zp(inputs[0])?;
                let s = &inputs[0].spec.shape;
                if *axis > s.len() {
                    return Err(fail(format!(
                        "axis {axis} out of range for {}",
                        inputs[0].spec
                    )));
                }
                let shape = vec![s[..*axis].iter().product(), s[*axis..].iter().product()];
                Ok((
                    same_type(inputs[0], shape),
                    Work {
                        macs: 0,
                        element_ops: elems(inputs[0]),
                        ..Work::default()
                    },
                ))
            }
            Op::Transpose { perm } => {
                arity(1)?;
                same_zp(inputs[0])?;
                let s = &inputs[0].spec.shape;
                let mut seen = vec![false; s.len()];
                if perm.len() != s.len()
                    || perm
                        .iter()
                        .any(|&a| a >= s.len() || std::mem::replace(&mut seen[a], true))
                {
                    return Err(fail(format!(
                        "{perm:?} is not a permutation of the axes of {}",
                        inputs[0].spec
                    )));
                }
                let shape = perm.iter().map(|&a| s[a]).collect();
                Ok((
                    same_type(inputs[0], shape),
                    Work {
                        macs: 0,
                        element_ops: elems(inputs[0]),
                        ..Work::default()
                    },
                ))
            }
            Op::Concat { axis } => {
                if inputs.is_empty() || inputs.len() > MAX_NODE_INPUTS {
                    return Err(fail(format!(
                        "takes 1..={MAX_NODE_INPUTS} inputs, got {}",
                        inputs.len()
                    )));
                }
                let first = inputs[0];
                let rank = first.spec.shape.len();
                if *axis >= rank {
                    return Err(fail(format!("axis {axis} out of range for {}", first.spec)));
                }
                let mut total = 0usize;
                for t in inputs {
                    same_zp(t)?;
                    let ok = t.spec.dtype == first.spec.dtype
                        && t.spec.shape.len() == rank
                        && (0..rank).all(|d| d == *axis || t.spec.shape[d] == first.spec.shape[d]);
                    if !ok {
                        return Err(fail(format!(
                            "cannot concat {} with {}",
                            first.spec, t.spec
                        )));
                    }
                    total = total.saturating_add(t.spec.shape[*axis]);
                }
                let mut shape = first.spec.shape.clone();
                shape[*axis] = total;
                let work = inputs.iter().map(|t| elems(t)).sum();
                Ok((
                    same_type(first, shape),
                    Work {
                        macs: 0,
                        element_ops: work,
                        ..Work::default()
                    },
                ))
            }
            Op::Pad { before, after } => {
                arity(1)?;
                same_zp(inputs[0])?;
                let s = &inputs[0].spec.shape;
                if before.len() != s.len() || after.len() != s.len() {
                    return Err(fail(format!("pads need {} entries per side", s.len())));
                }
                for &p in before.iter().chain(after) {
                    check_limit("MAX_PAD", p as u64, MAX_PAD)?;
                }
                let shape: Vec<usize> = (0..s.len()).map(|d| s[d] + before[d] + after[d]).collect();
                let out = same_type(inputs[0], shape);
                let work = out.spec.elements() as u64;
                Ok((
                    out,
                    Work {
                        macs: 0,
                        element_ops: work,
                        ..Work::default()
                    },
                ))
            }
            Op::ArgMax { axis } => {
                arity(1)?;
                let s = &inputs[0].spec.shape;
                if *axis >= s.len() {
                    return Err(fail(format!(
                        "axis {axis} out of range for {}",
                        inputs[0].spec
                    )));
                }
                if out_zero_point != 0 {
                    return Err(fail("an i32 output has zero point 0".into()));
                }
                let mut shape = s.clone();
                shape[*axis] = 1;
                let out = TensorInfo {
                    spec: TensorSpec {
                        dtype: DType::I32,
                        shape,
                    },
                    zero_point: 0,
                };
                Ok((
                    out,
                    Work {
                        macs: 0,
                        element_ops: elems(inputs[0]),
                        ..Work::default()
                    },
                ))
            }
        }
    }
}

/// Error if `actual > max`, naming the limit.
pub(crate) fn check_limit(limit: &'static str, actual: u64, max: u64) -> ModelResult<()> {
    if actual > max {
        Err(ModelError::LimitExceeded { limit, max, actual })
    } else {
        Ok(())
    }
}

/// Product of dims, `None` on overflow.
pub(crate) fn checked_product(dims: &[usize]) -> Option<u64> {
    dims.iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
}

fn same_type(t: &TensorInfo, shape: Vec<usize>) -> TensorInfo {
    TensorInfo {
        spec: TensorSpec {
            dtype: t.spec.dtype,
            shape,
        },
        zero_point: t.zero_point,
    }
}

fn check_range(
    fail: &impl Fn(String) -> ModelError,
    what: &str,
    v: usize,
    max: u64,
) -> ModelResult<()> {
    if v == 0 || v as u64 > max {
        Err(fail(format!("{what} {v} outside 1..={max}")))
    } else {
        Ok(())
    }
}

fn nchw(fail: &impl Fn(String) -> ModelError, x: &TensorInfo) -> ModelResult<[usize; 4]> {
    match x.spec.shape[..] {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(fail(format!(
            "needs an NCHW (rank 4) input, got {}",
            x.spec
        ))),
    }
}

fn same_shape(
    fail: &impl Fn(String) -> ModelError,
    a: &TensorInfo,
    b: &TensorInfo,
) -> ModelResult<()> {
    if a.spec.shape == b.spec.shape {
        Ok(())
    } else {
        Err(fail(format!("shapes differ: {} vs {}", a.spec, b.spec)))
    }
}

fn check_requant(fail: &impl Fn(String) -> ModelError, rq: Requant) -> ModelResult<()> {
    if rq.is_valid() {
        Ok(())
    } else {
        Err(fail(format!(
            "requant multiplier {} must be >= 0 and shift {} in 1..={MAX_SHIFT_BITS}",
            rq.multiplier, rq.shift
        )))
    }
}

fn check_act(fail: &impl Fn(String) -> ModelError, lo: i8, hi: i8) -> ModelResult<()> {
    if lo <= hi {
        Ok(())
    } else {
        Err(fail(format!("act_min {lo} > act_max {hi}")))
    }
}

/// Output extent of a sliding window, erroring when the window does not fit.
fn out_extent(
    fail: &impl Fn(String) -> ModelError,
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    pad_end: usize,
) -> ModelResult<usize> {
    let span = dilation * (kernel - 1) + 1;
    let padded = input + pad_begin + pad_end;
    if padded < span {
        return Err(fail(format!(
            "window of {span} does not fit padded extent {padded}"
        )));
    }
    Ok((padded - span) / stride + 1)
}

fn check_weights(
    fail: &impl Fn(String) -> ModelError,
    weights: &[i8],
    bias: &[i32],
    outs: usize,
    red: usize,
) -> ModelResult<()> {
    if weights.len() != outs * red || bias.len() != outs {
        return Err(fail(format!(
            "expected {} weights and {outs} biases, got {} and {}",
            outs * red,
            weights.len(),
            bias.len()
        )));
    }
    Ok(())
}

fn check_output_mode(
    fail: &impl Fn(String) -> ModelError,
    dtype: DType,
    requant: &[Requant],
    outs: usize,
    lo: i8,
    hi: i8,
    zp: i8,
) -> ModelResult<()> {
    match dtype {
        DType::I8 => {
            if requant.len() != outs {
                return Err(fail(format!(
                    "expected {outs} requant entries, got {}",
                    requant.len()
                )));
            }
            for &rq in requant {
                check_requant(fail, rq)?;
            }
            check_act(fail, lo, hi)
        }
        DType::I32 => {
            if !requant.is_empty() || zp != 0 {
                return Err(fail("an i32 output has no requant and zero point 0".into()));
            }
            Ok(())
        }
    }
}

/// Prove that `|bias[o]| + sum_k 255 * |w[o, k]|` fits in i32 for every output:
/// since `|x - zx| <= 255`, every partial sum of every input stays in range, in
/// any order of summation.
fn check_accumulators(node: usize, weights: &[i8], bias: &[i32], red: usize) -> ModelResult<()> {
    for (channel, (row, &b)) in weights.chunks_exact(red).zip(bias).enumerate() {
        let sum: i64 = row.iter().map(|&w| i64::from(w).abs()).sum();
        if 255 * sum + i64::from(b).abs() > i64::from(i32::MAX) {
            return Err(ModelError::AccumulatorOverflow { node, channel });
        }
    }
    Ok(())
}
