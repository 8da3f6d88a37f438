//! ONNX (float) to infera (integer) import with calibration.
//!
//! 1. tract parses the ONNX protobuf; the importer walks its nodes and builds a
//!    float graph of infera operators, folding BatchNormalization into the
//!    preceding Conv, `MatMul + Add` into one dense layer, and a following
//!    Relu/Clip into the producer's output clamp (only where it is the
//!    producer's sole reader). Also mapped: MaxPool, AveragePool,
//!    GlobalAveragePool, Add, Mul, Flatten, Reshape, Transpose, Concat, Pad,
//!    Softmax (last axis).
//! 2. tract runs the float model on every calibration sample with each fused
//!    value exposed as an output, giving each value's real range.
//! 3. Values get asymmetric int8 quantisation (`scale = (max - min) / 255`, range
//!    widened to contain 0); weights get symmetric per-output-channel int8; biases
//!    int32 at `scale_x * scale_w`; every rescale becomes an integer multiplier
//!    and shift. Pools, reshapes, transposes, pads and standalone clips keep
//!    their input's scale; Concat takes its output's calibrated scale and
//!    inputs on another scale get a Requantize node in front.
//! 4. The integer model runs on the same samples and the report counts how
//!    often its top-1 class agrees with the float model's.

use crate::npy::Npy;
use crate::{ToolError, ToolResult};
use infera_kernels::model::{Model, Node};
use infera_kernels::ops::{AddParams, ClipParams, Conv2dParams, DenseParams, Op};
use infera_kernels::quant::Requant;
use infera_kernels::{DType, TensorInfo, TensorSpec};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tract_onnx::pb;
use tract_onnx::prelude::*;

mod activation;
mod layer_norm;
mod rules;

/// What the import did and how faithful the integer model is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    /// Calibration samples used.
    pub samples: usize,
    /// Samples where the integer model's top-1 class equals the float model's.
    pub top1_agreement: usize,
    /// Largest |dequantised integer output - float output| over all samples.
    pub max_abs_error: f32,
    /// Largest |float output|, for scale.
    pub max_abs_output: f32,
    /// One line per integer node: what it came from.
    pub notes: Vec<String>,
}

/// A float operator after fusion, before quantisation.
#[derive(Debug, Clone)]
enum FOp {
    Dense {
        w: Vec<f32>,
        b: Vec<f32>,
        k: usize,
        n: usize,
    },
    Conv {
        w: Vec<f32>,
        b: Vec<f32>,
        c: usize,
        oc: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        pads: [usize; 4],
        groups: usize,
    },
    Add,
    Clip(f32, f32),
    /// An integer operator whose parameters do not depend on quantisation
    /// (layout operators, pools): the import rule builds it directly.
    Int(Op, OutScale),
    /// An integer operator whose parameters depend on the calibrated
    /// scales: the import rule gives the function that builds it.
    Quantized(Quantizer),
}

/// Which quantisation an integer operator's output has.
#[derive(Debug, Clone, Copy)]
enum OutScale {
    /// Its first input's: the operator only moves or selects values.
    Input,
    /// Its own calibrated range's: the operator rescales.
    Own,
}

/// Builds an integer operator from its inputs' quantisations and its own;
/// its output has its own, or the fixed quantisation the operator defines
/// (Softmax's 1/256) whatever the calibration.
#[derive(Clone)]
struct Quantizer(Arc<QuantizeFn>, Option<Q>);

/// Inputs' quantisations, the output's own, to the integer operator.
type QuantizeFn = dyn Fn(&[Q], Q) -> ToolResult<Op> + Send + Sync;

impl Quantizer {
    fn new(f: impl Fn(&[Q], Q) -> ToolResult<Op> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f), None)
    }

    /// An operator whose output quantisation is `out`, not its calibrated
    /// range's.
    fn with_output(out: Q, f: impl Fn(&[Q], Q) -> ToolResult<Op> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f), Some(out))
    }
}

impl std::fmt::Debug for Quantizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Quantizer")
    }
}

#[derive(Debug, Clone)]
struct FNode {
    op: FOp,
    inputs: Vec<usize>,
    /// Fused output clamp (real units).
    act: Option<(f32, f32)>,
    /// ONNX tensor whose calibrated range is this value's range.
    onnx_name: String,
    origin: String,
}

struct Consts {
    f: HashMap<String, (Vec<usize>, Vec<f32>)>,
    i: HashMap<String, Vec<i64>>,
}

fn load_consts(graph: &pb::GraphProto) -> ToolResult<Consts> {
    let mut f = HashMap::new();
    let mut i = HashMap::new();
    let mut add = |t: &pb::TensorProto| -> ToolResult<()> {
        let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
        match t.data_type {
            1 => {
                let v = if !t.raw_data.is_empty() {
                    t.raw_data
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
                        .collect()
                } else {
                    t.float_data.clone()
                };
                f.insert(t.name.clone(), (dims, v));
            }
            7 => {
                let v = if !t.raw_data.is_empty() {
                    t.raw_data
                        .chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().expect("8")))
                        .collect()
                } else {
                    t.int64_data.clone()
                };
                i.insert(t.name.clone(), v);
            }
            other => {
                return Err(ToolError::Unsupported(format!(
                    "initializer {} of ONNX type {other}",
                    t.name
                )));
            }
        }
        Ok(())
    };
    for t in &graph.initializer {
        add(t)?;
    }
    for n in &graph.node {
        if n.op_type == "Constant"
            && let Some(t) = n
                .attribute
                .iter()
                .find(|a| a.name == "value")
                .and_then(|a| a.t.as_ref())
        {
            let mut t = t.clone();
            t.name = n.output[0].clone();
            add(&t)?;
        }
    }
    Ok(Consts { f, i })
}

fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}
fn attr_ints(n: &pb::NodeProto, name: &str) -> Option<Vec<usize>> {
    attr(n, name).map(|a| a.ints.iter().map(|&v| v.max(0) as usize).collect())
}
fn attr_int(n: &pb::NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map(|a| a.i).unwrap_or(default)
}
fn attr_f(n: &pb::NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).map(|a| a.f).unwrap_or(default)
}

fn window_out(
    input: usize,
    k: usize,
    s: usize,
    d: usize,
    p0: usize,
    p1: usize,
) -> ToolResult<usize> {
    let span = d * (k - 1) + 1;
    if input + p0 + p1 < span {
        return Err(ToolError::Unsupported(
            "window larger than padded input".into(),
        ));
    }
    Ok((input + p0 + p1 - span) / s + 1)
}

fn unsupported(m: String) -> ToolError {
    ToolError::Unsupported(m)
}

/// The float graph being built: values by ONNX name, their shapes, the
/// fused nodes, and how many readers each tensor has.
struct Builder<'g> {
    consts: &'g Consts,
    /// The model's ONNX (default domain) opset: some attributes' defaults
    /// depend on it (Softmax's axis).
    opset: i64,
    ids: HashMap<String, usize>,
    shapes: Vec<Vec<usize>>,
    nodes: Vec<FNode>,
    readers: HashMap<&'g str, usize>,
}

/// Build the fused float graph. Value 0 is the input.
fn build_graph(
    graph: &pb::GraphProto,
    consts: &Consts,
    opset: i64,
    input_shape: &[usize],
) -> ToolResult<(String, Vec<FNode>)> {
    let input_name = graph
        .input
        .iter()
        .map(|i| i.name.clone())
        .find(|n| !consts.f.contains_key(n) && !consts.i.contains_key(n))
        .ok_or_else(|| unsupported("no graph input".into()))?;
    // Readers of each tensor (the graph output counts as one): an op is fused
    // into its producer only when it is the producer's sole reader, or another
    // reader would see the fused (e.g. clamped) value.
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for name in graph
        .node
        .iter()
        .flat_map(|n| n.input.iter())
        .chain(graph.output.iter().map(|o| &o.name))
    {
        *readers.entry(name.as_str()).or_default() += 1;
    }
    let mut b = Builder {
        consts,
        opset,
        ids: HashMap::from([(input_name.clone(), 0)]),
        shapes: vec![input_shape.to_vec()],
        nodes: Vec::new(),
        readers,
    };
    for n in &graph.node {
        // Add is commutative: `bias + x` (PyTorch's `b + x @ w`) is read as
        // `x + bias`, so the bias folds like any other.
        let swapped;
        let n = if n.op_type == "Add"
            && n.input.len() == 2
            && consts.f.contains_key(&n.input[0])
            && !consts.f.contains_key(&n.input[1])
        {
            let mut m = n.clone();
            m.input.swap(0, 1);
            swapped = m;
            &swapped
        } else {
            n
        };
        if n.op_type != "Constant" {
            b.node(n)?;
        }
    }
    let out = graph
        .output
        .first()
        .ok_or_else(|| unsupported("no graph output".into()))?;
    let v = *b
        .ids
        .get(&out.name)
        .ok_or_else(|| unsupported("graph output is not computed".into()))?;
    if v != b.nodes.len() {
        return Err(unsupported(
            "the graph output must be the last operator".into(),
        ));
    }
    Ok((input_name, b.nodes))
}

impl Builder<'_> {
    fn value(&self, op: &str, name: &str) -> ToolResult<usize> {
        self.ids
            .get(name)
            .copied()
            .ok_or_else(|| unsupported(format!("{op}: input {name} is not an activation")))
    }

    fn fconst(&self, op: &str, name: &str) -> ToolResult<&(Vec<usize>, Vec<f32>)> {
        self.consts
            .f
            .get(name)
            .ok_or_else(|| unsupported(format!("{op}: {name} must be a constant")))
    }

    /// The node whose output `v` is, if a following op reading `n.input[0]`
    /// can be fused into it: `v` is the latest node's output and this op
    /// its only reader.
    fn last_fusable(&self, n: &pb::NodeProto, v: usize) -> Option<usize> {
        let sole_reader = self.readers.get(n.input[0].as_str()) == Some(&1);
        (v == self.nodes.len() && v > 0 && sole_reader).then(|| v - 1)
    }

    /// Map one ONNX node: fold it into its producer, alias it, or add a
    /// node through its rule in [`rules`].
    fn node(&mut self, n: &pb::NodeProto) -> ToolResult<()> {
        let op = n.op_type.as_str();
        let out_name = n.output.first().cloned().unwrap_or_default();
        match op {
            "Identity" | "Dropout" => {
                let v = self.value(op, &n.input[0])?;
                self.ids.insert(out_name, v);
                return Ok(());
            }
            "BatchNormalization" => return self.fold_batch_norm(n, out_name),
            "Relu" | "Clip" => return self.clip(n, out_name),
            _ => {}
        }
        let x = self.value(op, &n.input[0])?;
        if op == "Add" && self.consts.f.contains_key(&n.input[1]) {
            return self.fold_bias(n, x, out_name);
        }
        let rule = rules::Rule {
            b: self,
            n,
            op,
            x,
            xs: &self.shapes[x],
        };
        let (fop, inputs, shape) = rules::map(&rule)?;
        self.push(fop, inputs, shape, out_name, op);
        Ok(())
    }

    fn fold_batch_norm(&mut self, n: &pb::NodeProto, out_name: String) -> ToolResult<()> {
        let op = n.op_type.as_str();
        let v = self.value(op, &n.input[0])?;
        let i = self
            .last_fusable(n, v)
            .ok_or_else(|| unsupported("BatchNormalization not after Conv".into()))?;
        let consts = self.consts;
        let fconst = |name: &str| {
            consts
                .f
                .get(name)
                .ok_or_else(|| unsupported(format!("{op}: {name} must be a constant")))
        };
        let (scale, bias, mean, var) = (
            fconst(&n.input[1])?,
            fconst(&n.input[2])?,
            fconst(&n.input[3])?,
            fconst(&n.input[4])?,
        );
        let eps = attr_f(n, "epsilon", 1e-5);
        let FOp::Conv { w, b, oc, .. } = &mut self.nodes[i].op else {
            return Err(unsupported("BatchNormalization not after Conv".into()));
        };
        let per = w.len() / *oc;
        for o in 0..*oc {
            let g = scale.1[o] / (var.1[o] + eps).sqrt();
            w[o * per..(o + 1) * per].iter_mut().for_each(|x| *x *= g);
            b[o] = (b[o] - mean.1[o]) * g + bias.1[o];
        }
        self.nodes[i].onnx_name = out_name.clone();
        self.nodes[i].origin += " + BatchNormalization (folded)";
        self.ids.insert(out_name, v);
        Ok(())
    }

    /// Relu or Clip: the producer's output clamp where it can take one,
    /// else a Clip node.
    fn clip(&mut self, n: &pb::NodeProto, out_name: String) -> ToolResult<()> {
        let op = n.op_type.as_str();
        let v = self.value(op, &n.input[0])?;
        let (lo, hi) = if op == "Relu" {
            (0.0, f32::INFINITY)
        } else {
            let get = |ix: usize, attr_name: &str, d: f32| -> f32 {
                n.input
                    .get(ix)
                    .filter(|s| !s.is_empty())
                    .and_then(|s| self.consts.f.get(s))
                    .map(|c| c.1[0])
                    .unwrap_or_else(|| attr_f(n, attr_name, d))
            };
            (
                get(1, "min", f32::NEG_INFINITY),
                get(2, "max", f32::INFINITY),
            )
        };
        if let Some(i) = self.last_fusable(n, v).filter(|&i| {
            matches!(
                self.nodes[i].op,
                FOp::Dense { .. } | FOp::Conv { .. } | FOp::Add
            ) && self.nodes[i].act.is_none()
        }) {
            self.nodes[i].act = Some((lo, hi));
            self.nodes[i].onnx_name = out_name.clone();
            self.nodes[i].origin += &format!(" + {op} (fused)");
            self.ids.insert(out_name, v);
            return Ok(());
        }
        let shape = self.shapes[v].clone();
        self.push(FOp::Clip(lo, hi), vec![v], shape, out_name, op);
        Ok(())
    }

    /// Bias add after a MatMul or Conv: fold into its bias.
    fn fold_bias(&mut self, n: &pb::NodeProto, x: usize, out_name: String) -> ToolResult<()> {
        let c = &self.consts.f[&n.input[1]].1;
        let i = self
            .last_fusable(n, x)
            .ok_or_else(|| unsupported("Add of a constant not after MatMul/Conv".into()))?;
        let no_act = self.nodes[i].act.is_none();
        match &mut self.nodes[i].op {
            FOp::Dense { b, .. } | FOp::Conv { b, .. }
                if no_act && (c.len() == b.len() || c.len() == 1) =>
            {
                for (o, bo) in b.iter_mut().enumerate() {
                    *bo += c[if c.len() == 1 { 0 } else { o }];
                }
            }
            _ => {
                return Err(unsupported(
                    "Add of a constant not after MatMul/Conv".into(),
                ));
            }
        }
        self.nodes[i].onnx_name = out_name.clone();
        self.nodes[i].origin += " + Add (bias folded)";
        self.ids.insert(out_name, x);
        Ok(())
    }

    fn push(
        &mut self,
        op: FOp,
        inputs: Vec<usize>,
        shape: Vec<usize>,
        onnx_name: String,
        origin: &str,
    ) {
        self.nodes.push(FNode {
            op,
            inputs,
            act: None,
            onnx_name: onnx_name.clone(),
            origin: origin.to_string(),
        });
        self.shapes.push(shape);
        self.ids.insert(onnx_name, self.nodes.len());
    }
}

/// ONNX axis (negative counts from the end) to an index below `len`.
fn normalize_axis(axis: i64, len: usize) -> Option<usize> {
    let a = if axis < 0 { axis + len as i64 } else { axis };
    (0..len as i64).contains(&a).then_some(a as usize)
}

/// Asymmetric int8 quantisation of a real range (widened to contain 0).
#[derive(Debug, Clone, Copy)]
struct Q {
    scale: f32,
    zp: i8,
}

impl Q {
    fn from_range(min: f32, max: f32) -> Self {
        let (min, max) = (min.min(0.0), max.max(0.0));
        let scale = if max > min { (max - min) / 255.0 } else { 1.0 };
        let zp = (-128.0 - min / scale).round().clamp(-128.0, 127.0) as i8;
        Q { scale, zp }
    }
    fn quantize(&self, v: f32) -> i8 {
        (v / self.scale + f32::from(self.zp))
            .round()
            .clamp(-128.0, 127.0) as i8
    }
    fn clamp_range(&self, act: Option<(f32, f32)>) -> (i8, i8) {
        match act {
            None => (-128, 127),
            Some((lo, hi)) => (
                if lo.is_finite() {
                    self.quantize(lo)
                } else {
                    -128
                },
                if hi.is_finite() {
                    self.quantize(hi)
                } else {
                    127
                },
            ),
        }
    }
}

/// `real ~= multiplier / 2^shift` with the multiplier in `[2^30, 2^31)`.
fn to_requant(real: f64) -> ToolResult<Requant> {
    if !(real > 0.0 && real.is_finite()) {
        return Ok(Requant {
            multiplier: 0,
            shift: 1,
        });
    }
    let mut shift = 30 - real.log2().floor() as i32;
    let mut m = (real * 2f64.powi(shift)).round();
    if m >= 2f64.powi(31) {
        m /= 2.0;
        shift -= 1;
    }
    if !(1..=62).contains(&shift) {
        return Err(ToolError::Unsupported(format!(
            "rescale {real} is out of range"
        )));
    }
    Ok(Requant {
        multiplier: m as i32,
        shift: shift as u8,
    })
}

/// Per-output-channel symmetric int8 weights, int32 bias and requant.
fn quantize_layer(
    w: &[f32],
    b: &[f32],
    outs: usize,
    sx: f32,
    sy: f32,
) -> ToolResult<(Vec<i8>, Vec<i32>, Vec<Requant>)> {
    let per = w.len() / outs;
    let (mut wq, mut bq, mut rq) = (
        Vec::with_capacity(w.len()),
        Vec::with_capacity(outs),
        Vec::with_capacity(outs),
    );
    for o in 0..outs {
        let row = &w[o * per..(o + 1) * per];
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let sw = if max > 0.0 { max / 127.0 } else { 1.0 };
        wq.extend(
            row.iter()
                .map(|v| (v / sw).round().clamp(-127.0, 127.0) as i8),
        );
        let bias = (f64::from(b[o]) / (f64::from(sx) * f64::from(sw))).round();
        bq.push(bias.clamp(-1e9, 1e9) as i32);
        rq.push(to_requant(f64::from(sx) * f64::from(sw) / f64::from(sy))?);
    }
    Ok((wq, bq, rq))
}

/// A float model run by tract with every fused value exposed.
struct FloatRunner {
    plan: Arc<TypedRunnableModel>,
    input_shape: Vec<usize>,
}

impl FloatRunner {
    fn new(path: &Path, input_shape: &[usize], outputs: &[String]) -> ToolResult<Self> {
        let err = |e: TractError| ToolError::Onnx(format!("{e:#}"));
        let model = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(err)?
            .with_input_fact(0, f32::fact(input_shape).into())
            .map_err(err)?
            .with_outputs_by_name(outputs)
            .map_err(err)?;
        let plan = model
            .into_optimized()
            .map_err(err)?
            .into_runnable()
            .map_err(err)?;
        Ok(FloatRunner {
            plan,
            input_shape: input_shape.to_vec(),
        })
    }

    fn run(&self, x: &[f32]) -> ToolResult<Vec<Vec<f32>>> {
        let err = |e: TractError| ToolError::Onnx(format!("{e:#}"));
        let t = Tensor::from_shape(&self.input_shape, x).map_err(err)?;
        let outs = self.plan.run(tvec!(t.into())).map_err(err)?;
        outs.iter()
            .map(|o| {
                Ok(o.to_plain_array_view::<f32>()
                    .map_err(err)?
                    .iter()
                    .copied()
                    .collect())
            })
            .collect()
    }
}

/// Split an `[N, ...]` array into samples of `shape` (`N` may be absent for one sample).
pub fn samples(x: &Npy, sample_shape: &[usize]) -> ToolResult<Vec<Vec<f32>>> {
    let per: usize = sample_shape.iter().product();
    if per == 0 || !x.len().is_multiple_of(per) {
        return Err(ToolError::Input(format!(
            "array of shape {:?} is not a batch of {sample_shape:?}",
            x.shape
        )));
    }
    Ok(x.to_f32().chunks_exact(per).map(<[f32]>::to_vec).collect())
}

/// Top-1 index (first maximum).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Import a float ONNX model, calibrating on `calib` (`[N, ...input dims]`, the
/// model's batch fixed to 1). Returns the validated integer model and a report.
pub fn import_onnx(onnx_path: &Path, calib: &Npy) -> ToolResult<(Model, ImportReport)> {
    let proto = tract_onnx::onnx()
        .proto_model_for_path(onnx_path)
        .map_err(|e| ToolError::Onnx(format!("{e:#}")))?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| ToolError::Onnx("model has no graph".into()))?;
    let consts = load_consts(graph)?;
    let opset = proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version);
    let mut input_shape = calib.shape.clone();
    if input_shape.is_empty() {
        return Err(ToolError::Input("calibration array is a scalar".into()));
    }
    input_shape[0] = 1;
    let (_, fnodes) = build_graph(graph, &consts, opset, &input_shape)?;
    let (xs, ranges, float_out) = calibrate(onnx_path, calib, &input_shape, &fnodes)?;
    let (model, notes) = quantize_graph(&fnodes, &ranges, &input_shape)?;

    // Agreement of the integer model with the float model on the same samples.
    let (mut agree, mut max_err, mut max_out) = (0, 0.0f32, 0.0f32);
    for (x, f) in xs.iter().zip(&float_out) {
        let y = crate::tool::run_float(&model, x)?;
        agree += usize::from(argmax(&y) == argmax(f));
        for (a, b) in y.iter().zip(f) {
            max_err = max_err.max((a - b).abs());
            max_out = max_out.max(b.abs());
        }
    }
    let report = ImportReport {
        samples: xs.len(),
        top1_agreement: agree,
        max_abs_error: max_err,
        max_abs_output: max_out,
        notes,
    };
    Ok((model, report))
}

/// Samples, real ranges of every fused value over them (value 0 is the
/// input), and the float model's outputs.
type Calibration = (Vec<Vec<f32>>, Vec<(f32, f32)>, Vec<Vec<f32>>);

/// Run the float model on every calibration sample with each fused value
/// exposed.
fn calibrate(
    onnx_path: &Path,
    calib: &Npy,
    input_shape: &[usize],
    fnodes: &[FNode],
) -> ToolResult<Calibration> {
    let names: Vec<String> = fnodes.iter().map(|n| n.onnx_name.clone()).collect();
    let runner = FloatRunner::new(onnx_path, input_shape, &names)?;
    let xs = samples(calib, input_shape)?;
    let mut ranges = vec![(0.0f32, 0.0f32); fnodes.len() + 1];
    let mut float_out = Vec::with_capacity(xs.len());
    for x in &xs {
        ranges[0] = x
            .iter()
            .fold(ranges[0], |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let outs = runner.run(x)?;
        for (i, o) in outs.iter().enumerate() {
            ranges[i + 1] = o
                .iter()
                .fold(ranges[i + 1], |(lo, hi), &v| (lo.min(v), hi.max(v)));
        }
        float_out.push(outs.last().cloned().unwrap_or_default());
    }
    Ok((xs, ranges, float_out))
}

/// Quantise the float graph on its calibrated ranges into a validated model
/// and one note per integer node.
fn quantize_graph(
    fnodes: &[FNode],
    ranges: &[(f32, f32)],
    input_shape: &[usize],
) -> ToolResult<(Model, Vec<String>)> {
    let mut q = vec![Q::from_range(ranges[0].0, ranges[0].1)];
    let mut nodes: Vec<Node> = Vec::with_capacity(fnodes.len());
    let mut notes = Vec::new();
    // Float value id -> integer value id (they part when Requantize nodes are
    // inserted in front of a Concat).
    let mut vmap = vec![0usize];
    for (i, f) in fnodes.iter().enumerate() {
        let mut inputs: Vec<usize> = f.inputs.iter().map(|&v| vmap[v]).collect();
        let own = Q::from_range(ranges[i + 1].0, ranges[i + 1].1);
        if matches!(f.op, FOp::Int(Op::Concat(_), _)) {
            rescale_concat_inputs(f, &q, own, &mut inputs, &mut nodes, &mut notes)?;
        }
        let (op, qy) = quantize_op(f, &q, own)?;
        notes.push(format!(
            "node {}: {} <- {} (scale {:.6}, zero point {})",
            nodes.len(),
            op.name(),
            f.origin,
            qy.scale,
            qy.zp
        ));
        nodes.push(Node {
            op,
            inputs,
            zero_point: qy.zp,
            scale_bits: qy.scale.to_bits(),
        });
        vmap.push(nodes.len());
        q.push(qy);
    }
    let input = TensorInfo {
        spec: TensorSpec {
            dtype: DType::I8,
            shape: input_shape.to_vec(),
        },
        zero_point: q[0].zp,
    };
    let model = Model::new(input, q[0].scale.to_bits(), nodes, vmap[fnodes.len()])?;
    Ok((model, notes))
}

/// The engine joins values of one scale and zero point: rescale every
/// input of a Concat that differs to the output's calibrated range (which
/// contains every input's range), through a Requantize node in front.
fn rescale_concat_inputs(
    f: &FNode,
    q: &[Q],
    own: Q,
    inputs: &mut [usize],
    nodes: &mut Vec<Node>,
    notes: &mut Vec<String>,
) -> ToolResult<()> {
    for (slot, &v) in f.inputs.iter().enumerate() {
        let qi = q[v];
        if qi.scale.to_bits() == own.scale.to_bits() && qi.zp == own.zp {
            continue;
        }
        let rq = to_requant(f64::from(qi.scale) / f64::from(own.scale))?;
        notes.push(format!(
            "node {}: requantize <- Concat input {slot} rescaled to the output (scale {:.6}, zero point {})",
            nodes.len(),
            own.scale,
            own.zp
        ));
        nodes.push(Node {
            op: Op::Requantize(rq),
            inputs: vec![inputs[slot]],
            zero_point: own.zp,
            scale_bits: own.scale.to_bits(),
        });
        inputs[slot] = nodes.len();
    }
    Ok(())
}

/// The integer operator of a float one and its output's quantisation:
/// `own` (its calibrated range) where it rescales, else its input's.
fn quantize_op(f: &FNode, q: &[Q], own: Q) -> ToolResult<(Op, Q)> {
    let qx = q[f.inputs[0]];
    Ok(match &f.op {
        FOp::Dense { w, b, k, n } => {
            let (weights, bias, requant) = quantize_layer(w, b, *n, qx.scale, own.scale)?;
            let (act_min, act_max) = own.clamp_range(f.act);
            let p = DenseParams {
                in_features: *k,
                out_features: *n,
                out_dtype: DType::I8,
                weights,
                bias,
                requant,
                act_min,
                act_max,
            };
            (Op::Dense(p), own)
        }
        FOp::Conv { .. } => (quantize_conv(f, qx, own)?, own),
        FOp::Add => (quantize_add(f, qx, q[f.inputs[1]], own)?, own),
        FOp::Clip(lo, hi) => {
            let (min, max) = qx.clamp_range(Some((*lo, *hi)));
            (Op::Clip(ClipParams { min, max }), qx)
        }
        FOp::Int(op, OutScale::Input) => (op.clone(), qx),
        FOp::Int(op, OutScale::Own) => (op.clone(), own),
        FOp::Quantized(build) => {
            let inputs: Vec<Q> = f.inputs.iter().map(|&v| q[v]).collect();
            let out = build.1.unwrap_or(own);
            ((build.0)(&inputs, out)?, out)
        }
    })
}

fn quantize_conv(f: &FNode, qx: Q, own: Q) -> ToolResult<Op> {
    let FOp::Conv {
        w,
        b,
        c,
        oc,
        kernel,
        stride,
        dilation,
        pads,
        groups,
    } = &f.op
    else {
        unreachable!("called on convolutions")
    };
    let (weights, bias, requant) = quantize_layer(w, b, *oc, qx.scale, own.scale)?;
    let (act_min, act_max) = own.clamp_range(f.act);
    Ok(Op::Conv2d(Conv2dParams {
        in_channels: *c,
        out_channels: *oc,
        kernel: *kernel,
        stride: *stride,
        dilation: *dilation,
        pads: *pads,
        groups: *groups,
        out_dtype: DType::I8,
        weights,
        bias,
        requant,
        act_min,
        act_max,
    }))
}

/// Both inputs' multipliers share the shift of the larger rescale.
fn quantize_add(f: &FNode, qx: Q, qb: Q, own: Q) -> ToolResult<Op> {
    let (ma, mb) = (
        f64::from(qx.scale) / f64::from(own.scale),
        f64::from(qb.scale) / f64::from(own.scale),
    );
    let r = to_requant(ma.max(mb))?;
    let m = |v: f64| {
        (v * 2f64.powi(i32::from(r.shift)))
            .round()
            .min(f64::from(i32::MAX)) as i32
    };
    let (act_min, act_max) = own.clamp_range(f.act);
    Ok(Op::Add(AddParams {
        multiplier_a: m(ma),
        multiplier_b: m(mb),
        shift: r.shift,
        act_min,
        act_max,
    }))
}

/// Top-1 accuracy of the float ONNX model (run by tract) on labelled samples.
pub fn float_accuracy(onnx_path: &Path, x: &Npy, labels: &[i64]) -> ToolResult<f64> {
    let mut shape = x.shape.clone();
    shape[0] = 1;
    let proto = tract_onnx::onnx()
        .proto_model_for_path(onnx_path)
        .map_err(|e| ToolError::Onnx(format!("{e:#}")))?;
    let out = proto
        .graph
        .as_ref()
        .and_then(|g| g.output.first())
        .map(|o| o.name.clone())
        .unwrap_or_default();
    let runner = FloatRunner::new(onnx_path, &shape, &[out])?;
    let xs = samples(x, &shape)?;
    let mut right = 0usize;
    for (s, &l) in xs.iter().zip(labels) {
        let y = runner.run(s)?;
        right += usize::from(argmax(&y[0]) as i64 == l);
    }
    Ok(right as f64 / xs.len().max(1) as f64)
}
