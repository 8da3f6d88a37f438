//! One import rule per ONNX operator type: attributes and constants to a
//! float operator, its inputs and its output shape. Fusions into an earlier
//! node (BatchNormalization, bias Add, Relu/Clip) are in the parent module.

use super::{
    Builder, FOp, OutScale, Q, Quantizer, attr, attr_f, attr_int, attr_ints, normalize_axis,
    to_requant, unsupported, window_out,
};
use crate::ToolResult;
use infera_kernels::Op;
use infera_kernels::ops::{
    AvgPoolParams, ConcatParams, FlattenParams, GlobalAvgPoolParams, MulParams, PadParams,
    PoolParams, ReshapeParams, SOFTMAX_STEPS, SOFTMAX_TABLE_ENTRIES, SOFTMAX_ZERO_POINT,
    SoftmaxParams, TransposeParams,
};
use infera_kernels::ops::{MatMulParams, ReduceParams};
use tract_onnx::pb;

/// One ONNX node to map, whose first input is value `x` of shape `xs`.
pub(super) struct Rule<'a> {
    pub b: &'a Builder<'a>,
    pub n: &'a pb::NodeProto,
    pub op: &'a str,
    pub x: usize,
    pub xs: &'a [usize],
}

/// A float operator, the values it reads and its output shape.
pub(super) type Mapped = (FOp, Vec<usize>, Vec<usize>);

impl Rule<'_> {
    fn value(&self, name: &str) -> ToolResult<usize> {
        self.b.value(self.op, name)
    }

    fn fconst(&self, name: &str) -> ToolResult<&(Vec<usize>, Vec<f32>)> {
        self.b.fconst(self.op, name)
    }
}

/// The rule of `r.op`.
pub(super) fn map(r: &Rule<'_>) -> ToolResult<Mapped> {
    match r.op {
        "Conv" => conv(r),
        // Constant weights stay a dense layer; a second activation (attention's
        // Q Kᵀ and P V) is the product of two activations.
        "MatMul" if !r.b.consts.f.contains_key(&r.n.input[1]) => mat_mul(r),
        "Gemm" | "MatMul" => gemm(r),
        "ReduceMean" | "ReduceSum" => reduce(r),
        "Add" => binary(r, FOp::Add),
        "MaxPool" | "AveragePool" => pool(r),
        "GlobalAveragePool" => Ok((
            layout(Op::GlobalAvgPool(GlobalAvgPoolParams {})),
            vec![r.x],
            vec![r.xs[0], r.xs[1], 1, 1],
        )),
        "Mul" => {
            if r.b.consts.f.contains_key(&r.n.input[1]) {
                return Err(unsupported(
                    "Mul by a constant (only the product of two activations)".into(),
                ));
            }
            binary(r, FOp::Quantized(Quantizer::new(mul)))
        }
        "Transpose" => transpose(r),
        "Concat" => concat(r),
        "Pad" => pad(r),
        "Flatten" => flatten(r),
        "Reshape" => reshape(r),
        "Softmax" => softmax(r),
        "LayerNormalization" => super::layer_norm::layer_norm(r),
        other => match super::activation::activation(other, r.n) {
            Some(f) => Ok((super::activation::lut_op(f), vec![r.x], r.xs.to_vec())),
            None => Err(unsupported(format!("ONNX operator {other}"))),
        },
    }
}

fn conv(r: &Rule<'_>) -> ToolResult<Mapped> {
    let (n, xs) = (r.n, r.xs);
    if attr(n, "auto_pad").is_some_and(|a| a.s != b"NOTSET") {
        return Err(unsupported("Conv auto_pad".into()));
    }
    let (wd, w) = r.fconst(&n.input[1])?;
    let (oc, kernel) = (wd[0], [wd[2], wd[3]]);
    let b = match n.input.get(2).filter(|s| !s.is_empty()) {
        Some(name) => r.fconst(name)?.1.clone(),
        None => vec![0.0; oc],
    };
    let stride = attr_ints(n, "strides").unwrap_or(vec![1, 1]);
    let dil = attr_ints(n, "dilations").unwrap_or(vec![1, 1]);
    let pads = attr_ints(n, "pads").unwrap_or(vec![0; 4]);
    let groups = attr_int(n, "group", 1) as usize;
    let oh = window_out(xs[2], kernel[0], stride[0], dil[0], pads[0], pads[2])?;
    let ow = window_out(xs[3], kernel[1], stride[1], dil[1], pads[1], pads[3])?;
    let fop = FOp::Conv {
        w: w.clone(),
        b,
        c: xs[1],
        oc,
        kernel,
        stride: [stride[0], stride[1]],
        dilation: [dil[0], dil[1]],
        pads: [pads[0], pads[1], pads[2], pads[3]],
        groups,
    };
    Ok((fop, vec![r.x], vec![xs[0], oc, oh, ow]))
}

fn gemm(r: &Rule<'_>) -> ToolResult<Mapped> {
    let n = r.n;
    if attr_int(n, "transA", 0) != 0 {
        return Err(unsupported("Gemm transA".into()));
    }
    let (wd, w) = r.fconst(&n.input[1])?;
    let (alpha, beta) = (attr_f(n, "alpha", 1.0), attr_f(n, "beta", 1.0));
    let trans_b = attr_int(n, "transB", 0) != 0;
    let (k, nn) = if trans_b {
        (wd[1], wd[0])
    } else {
        (wd[0], wd[1])
    };
    let mut wt = vec![0.0f32; k * nn];
    for o in 0..nn {
        for i in 0..k {
            wt[o * k + i] = alpha * if trans_b { w[o * k + i] } else { w[i * nn + o] };
        }
    }
    let b = match n.input.get(2).filter(|s| !s.is_empty()) {
        Some(name) => {
            let c = &r.fconst(name)?.1;
            (0..nn)
                .map(|o| beta * c[if c.len() == 1 { 0 } else { o }])
                .collect()
        }
        None => vec![0.0; nn],
    };
    let mut shape = r.xs.to_vec();
    *shape.last_mut().expect("rank") = nn;
    Ok((FOp::Dense { w: wt, b, k, n: nn }, vec![r.x], shape))
}

/// An operator that only moves or selects values: its output keeps its
/// input's quantisation.
fn layout(op: Op) -> FOp {
    FOp::Int(op, OutScale::Input)
}

/// The product of two activations: `(a - za)(b - zb)` rescaled by
/// `sa * sb / sy`.
fn mul(q: &[Q], own: Q) -> ToolResult<Op> {
    let real = f64::from(q[0].scale) * f64::from(q[1].scale) / f64::from(own.scale);
    let (act_min, act_max) = own.clamp_range(None);
    Ok(Op::Mul(MulParams {
        requant: to_requant(real)?,
        act_min,
        act_max,
    }))
}

/// MatMul of two activations `[.., m, k] x [.., k, n]` with the same
/// leading dimensions (no broadcasting), rescaled by `sa * sb / sy` like Mul.
fn mat_mul(r: &Rule<'_>) -> ToolResult<Mapped> {
    let y = r.value(&r.n.input[1])?;
    let (xs, ys) = (r.xs, &r.b.shapes[y]);
    let rank = xs.len();
    if !(2..=4).contains(&rank)
        || ys.len() != rank
        || xs[..rank - 2] != ys[..rank - 2]
        || xs[rank - 1] != ys[rank - 2]
    {
        return Err(unsupported(format!(
            "MatMul of activations {xs:?} x {ys:?} (only [.., m, k] x [.., k, n] of rank 2 to 4 \
             with equal leading dimensions)"
        )));
    }
    let mut shape = xs.to_vec();
    shape[rank - 1] = ys[rank - 1];
    let fop = FOp::Quantized(Quantizer::new(|q: &[Q], own: Q| {
        let real = f64::from(q[0].scale) * f64::from(q[1].scale) / f64::from(own.scale);
        let (act_min, act_max) = own.clamp_range(None);
        Ok(Op::MatMul(MatMulParams {
            requant: to_requant(real)?,
            act_min,
            act_max,
        }))
    }));
    Ok((fop, vec![r.x, y], shape))
}

/// ReduceMean and ReduceSum: axes from the attribute (ReduceMean before
/// opset 18) or a constant second input (ReduceSum from opset 13, ReduceMean
/// from 18); none means every axis. The output takes its own calibrated
/// range, rescaled by `sx / sy` (a mean divides by the count exactly, in the
/// engine).
fn reduce(r: &Rule<'_>) -> ToolResult<Mapped> {
    let (n, op, xs) = (r.n, r.op, r.xs);
    let listed: Vec<i64> = match n.input.get(1).filter(|s| !s.is_empty()) {
        Some(name) => {
            r.b.consts
                .i
                .get(name)
                .cloned()
                .ok_or_else(|| unsupported(format!("{op} axes must be a constant")))?
        }
        None => attr(n, "axes").map(|a| a.ints.clone()).unwrap_or_default(),
    };
    let mut axes = Vec::with_capacity(xs.len());
    for &a in &listed {
        axes.push(
            normalize_axis(a, xs.len())
                .ok_or_else(|| unsupported(format!("{op} axis {a} of rank {}", xs.len())))?,
        );
    }
    if axes.is_empty() {
        if attr_int(n, "noop_with_empty_axes", 0) != 0 {
            return Err(unsupported(format!("{op} with noop_with_empty_axes")));
        }
        axes = (0..xs.len()).collect();
    }
    axes.sort_unstable();
    axes.dedup();
    let keep_dims = attr_int(n, "keepdims", 1) != 0;
    if !keep_dims && axes.len() == xs.len() {
        return Err(unsupported(format!(
            "{op} of every axis without keepdims (a rank-0 result)"
        )));
    }
    let shape = (0..xs.len())
        .filter_map(|d| match (axes.contains(&d), keep_dims) {
            (false, _) => Some(xs[d]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    let mean = op == "ReduceMean";
    let fop = FOp::Quantized(Quantizer::new(move |q: &[Q], own: Q| {
        Ok(Op::Reduce(ReduceParams {
            axes: axes.clone(),
            mean,
            keep_dims,
            requant: to_requant(f64::from(q[0].scale) / f64::from(own.scale))?,
        }))
    }));
    Ok((fop, vec![r.x], shape))
}

/// Add or Mul of two activations of one shape.
fn binary(r: &Rule<'_>, fop: FOp) -> ToolResult<Mapped> {
    let y = r.value(&r.n.input[1])?;
    if r.b.shapes[y] != r.xs {
        return Err(unsupported(format!("{} with broadcasting", r.op)));
    }
    Ok((fop, vec![r.x, y], r.xs.to_vec()))
}

fn pool(r: &Rule<'_>) -> ToolResult<Mapped> {
    let (n, op, xs) = (r.n, r.op, r.xs);
    if attr_int(n, "ceil_mode", 0) != 0 {
        return Err(unsupported(format!("{op} ceil_mode")));
    }
    if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
        return Err(unsupported(format!("{op} dilations")));
    }
    let k =
        attr_ints(n, "kernel_shape").ok_or_else(|| unsupported(format!("{op} kernel_shape")))?;
    let s = attr_ints(n, "strides").unwrap_or(vec![1, 1]);
    let p = attr_ints(n, "pads").unwrap_or(vec![0; 4]);
    let pool = PoolParams {
        kernel: [k[0], k[1]],
        stride: [s[0], s[1]],
        pads: [p[0], p[1], p[2], p[3]],
    };
    let oh = window_out(xs[2], k[0], s[0], 1, p[0], p[2])?;
    let ow = window_out(xs[3], k[1], s[1], 1, p[1], p[3])?;
    let fop = if op == "MaxPool" {
        layout(Op::MaxPool(pool))
    } else {
        let count_include_pad = attr_int(n, "count_include_pad", 0) != 0;
        // Averaging rounds, so the output could take its own range; it
        // keeps the input's, which contains it.
        layout(Op::AvgPool(AvgPoolParams {
            pool,
            count_include_pad,
        }))
    };
    Ok((fop, vec![r.x], vec![xs[0], xs[1], oh, ow]))
}

fn transpose(r: &Rule<'_>) -> ToolResult<Mapped> {
    let xs = r.xs;
    let perm = attr_ints(r.n, "perm").unwrap_or_else(|| (0..xs.len()).rev().collect());
    let mut seen = vec![false; xs.len()];
    if perm.len() != xs.len()
        || perm
            .iter()
            .any(|&a| a >= xs.len() || std::mem::replace(&mut seen[a], true))
    {
        return Err(unsupported(format!(
            "Transpose perm {perm:?} for rank {}",
            xs.len()
        )));
    }
    let shape = perm.iter().map(|&a| xs[a]).collect();
    Ok((
        layout(Op::Transpose(TransposeParams { perm })),
        vec![r.x],
        shape,
    ))
}

fn concat(r: &Rule<'_>) -> ToolResult<Mapped> {
    let (n, xs) = (r.n, r.xs);
    let axis = attr(n, "axis")
        .map(|a| a.i)
        .ok_or_else(|| unsupported("Concat without axis".into()))?;
    let axis =
        normalize_axis(axis, xs.len()).ok_or_else(|| unsupported(format!("Concat axis {axis}")))?;
    let mut inputs = Vec::with_capacity(n.input.len());
    let mut shape = xs.to_vec();
    shape[axis] = 0;
    for name in &n.input {
        let v = r.value(name)?;
        let s = &r.b.shapes[v];
        if s.len() != xs.len() || (0..s.len()).any(|d| d != axis && s[d] != xs[d]) {
            return Err(unsupported(format!("Concat of {xs:?} and {s:?}")));
        }
        shape[axis] += s[axis];
        inputs.push(v);
    }
    // Inputs of other scales are rescaled to the output's own range first.
    Ok((
        FOp::Int(Op::Concat(ConcatParams { axis }), OutScale::Own),
        inputs,
        shape,
    ))
}

fn pad(r: &Rule<'_>) -> ToolResult<Mapped> {
    let (n, xs) = (r.n, r.xs);
    let mode = attr(n, "mode")
        .map(|a| a.s.as_slice())
        .unwrap_or(b"constant");
    if mode != b"constant" {
        return Err(unsupported(format!(
            "Pad mode {}",
            String::from_utf8_lossy(mode)
        )));
    }
    // Opset >= 11: pads (and the fill value) are inputs; before: attributes.
    let pads: Vec<i64> = match n.input.get(1).filter(|s| !s.is_empty()) {
        Some(name) => {
            r.b.consts
                .i
                .get(name)
                .cloned()
                .ok_or_else(|| unsupported("Pad pads must be a constant".into()))?
        }
        None => attr(n, "pads")
            .map(|a| a.ints.clone())
            .ok_or_else(|| unsupported("Pad without pads".into()))?,
    };
    if n.input.get(3).is_some_and(|s| !s.is_empty()) {
        return Err(unsupported("Pad with axes".into()));
    }
    let fill = match n.input.get(2).filter(|s| !s.is_empty()) {
        Some(name) => r.fconst(name)?.1.first().copied().unwrap_or(0.0),
        None => attr_f(n, "value", 0.0),
    };
    // The engine pads with the zero point, which is exactly real 0.
    if fill != 0.0 {
        return Err(unsupported(format!("Pad with value {fill} (only 0)")));
    }
    let rank = xs.len();
    if pads.len() != 2 * rank || pads.iter().any(|&p| p < 0) {
        return Err(unsupported(format!("Pad pads {pads:?} for rank {rank}")));
    }
    let before: Vec<usize> = pads[..rank].iter().map(|&p| p as usize).collect();
    let after: Vec<usize> = pads[rank..].iter().map(|&p| p as usize).collect();
    let shape = (0..rank).map(|d| xs[d] + before[d] + after[d]).collect();
    Ok((
        layout(Op::Pad(PadParams { before, after })),
        vec![r.x],
        shape,
    ))
}

fn flatten(r: &Rule<'_>) -> ToolResult<Mapped> {
    let xs = r.xs;
    let axis = attr_int(r.n, "axis", 1);
    // Flatten's axis may also equal the rank.
    let rank = xs.len() as i64;
    let axis = usize::try_from(if axis < 0 { axis + rank } else { axis })
        .ok()
        .filter(|&a| a <= xs.len())
        .ok_or_else(|| unsupported(format!("Flatten axis {axis}")))?;
    Ok((
        layout(Op::Flatten(FlattenParams { axis })),
        vec![r.x],
        vec![xs[..axis].iter().product(), xs[axis..].iter().product()],
    ))
}

fn reshape(r: &Rule<'_>) -> ToolResult<Mapped> {
    let xs = r.xs;
    let spec =
        r.b.consts
            .i
            .get(&r.n.input[1])
            .ok_or_else(|| unsupported("Reshape shape must be a constant".into()))?;
    let total: usize = xs.iter().product();
    let mut shape: Vec<usize> = spec
        .iter()
        .enumerate()
        .map(|(i, &d)| if d == 0 { xs[i] } else { d.max(1) as usize })
        .collect();
    if let Some(at) = spec.iter().position(|&d| d == -1) {
        let known: usize = shape
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != at)
            .map(|(_, d)| d)
            .product();
        shape[at] = total / known.max(1);
    }
    Ok((
        layout(Op::Reshape(ReshapeParams {
            shape: shape.clone(),
        })),
        vec![r.x],
        shape,
    ))
}

/// Fraction bits of the exponential table: `table[0] = 2^30`, so an
/// element stops counting only where `exp(-s d) < 2^-31`, and every sum of
/// a row of at most 2^16 stays far inside the engine's i64 bound.
const SOFTMAX_TABLE_BITS: i32 = 30;

/// Softmax over the last axis only. The axis defaults to -1 from opset 13;
/// before, to 1 with the input flattened from it, which is the same
/// operation only when that axis is the last.
fn softmax(r: &Rule<'_>) -> ToolResult<Mapped> {
    let rank = r.xs.len();
    let axis = attr_int(r.n, "axis", if r.b.opset >= 13 { -1 } else { 1 });
    let last = rank.checked_sub(1);
    if last.is_none() || normalize_axis(axis, rank) != last {
        return Err(unsupported(format!(
            "Softmax over axis {axis} of a rank-{rank} input (only the last axis is supported)"
        )));
    }
    let out = Q {
        scale: 1.0 / SOFTMAX_STEPS as f32,
        zp: SOFTMAX_ZERO_POINT,
    };
    Ok((
        FOp::Quantized(Quantizer::with_output(out, softmax_table)),
        vec![r.x],
        r.xs.to_vec(),
    ))
}

/// `table[d] = round(2^30 * exp(-s d))`, `s` the input's scale: the weight
/// of an element `d` input steps below its row's maximum.
fn softmax_table(q: &[Q], _out: Q) -> ToolResult<Op> {
    let s = f64::from(q[0].scale);
    let one = 2f64.powi(SOFTMAX_TABLE_BITS);
    let table = (0..SOFTMAX_TABLE_ENTRIES)
        .map(|d| (one * (-s * d as f64).exp()).round() as u32)
        .collect();
    Ok(Op::Softmax(SoftmaxParams { table }))
}
