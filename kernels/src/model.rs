//! A validated model: decode, validate, cost, encode, run.

use crate::cpu::{self, Kernels};
use crate::error::{ModelError, ModelResult};
use crate::format::{FORMAT_VERSION, MAGIC, Reader, Writer};
use crate::limits::*;
use crate::ops::{Op, Work, check_limit, checked_product};
use crate::tensor::{DType, Tensor, TensorInfo, TensorSpec};
use serde::{Deserialize, Serialize};

/// One operator applied to earlier values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The operator and its parameters.
    pub op: Op,
    /// Value ids read: 0 is the model input, `i + 1` the output of node `i`.
    pub inputs: Vec<usize>,
    /// Zero point of the node's output.
    pub zero_point: i8,
    /// IEEE-754 bits of the output's real scale: metadata, never read by the engine.
    pub scale_bits: u32,
}

/// The work of one inference, counted from the graph alone. Deterministic, so
/// it can price inference gas when a model is registered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCost {
    /// Multiply-accumulates (dense and convolution layers).
    pub macs: u64,
    /// Other element operations (pool windows, element-wise ops, copies).
    pub element_ops: u64,
    /// Elements of all tensors produced (bounds the memory of one run).
    pub activation_elements: u64,
    /// Learned parameters (weights and biases).
    pub params: u64,
    /// Bytes of constant parameters.
    pub param_bytes: u64,
    /// Operator nodes.
    pub nodes: u64,
    /// Multiply-accumulates the portable kernels execute, padding included
    /// (see [`Work::kernel_macs`]).
    #[serde(default)]
    pub kernel_macs: u64,
    /// Elements moved besides the MACs (see [`Work::moved_elements`]).
    #[serde(default)]
    pub moved_elements: u64,
    /// Bytes of prepared weights a cold load builds, as charged
    /// ([`cpu::prepared_bytes_charged`]: the portable rows, reductions padded
    /// to 16 lanes and widened to i16, plus the convolution packs): computed
    /// from the graph, so the same on every node.
    #[serde(default)]
    pub prepared_bytes: u64,
    /// Output channels of dense and convolution layers: each has its own
    /// bias, requantisation and packed row, whose decoding costs time of
    /// its own however short the row.
    #[serde(default)]
    pub channels: u64,
}

/// How to run an inference. The result never depends on these options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Threads to split dense and convolution layers across (1 = no threads).
    pub threads: usize,
    /// Which kernels run: [`Kernels::Best`] (default; the CPU's fastest, chosen
    /// by feature detection) or [`Kernels::Portable`] (the reference loops, for
    /// tests and benchmarks). Identical bytes either way.
    pub kernels: Kernels,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: 1,
            kernels: Kernels::Best,
        }
    }
}

/// A model that passed validation; only constructible through [`Model::new`] or
/// [`Model::decode`], so every `Model` is safe to run on any input of its spec.
#[derive(Debug, Clone)]
pub struct Model {
    input: TensorInfo,
    input_scale_bits: u32,
    nodes: Vec<Node>,
    output: usize,
    /// Inferred info of every value (index = value id).
    values: Vec<TensorInfo>,
    work: Vec<Work>,
    /// For each value, the last node that reads it (to free it early).
    last_use: Vec<usize>,
    cost: ModelCost,
    prepared: Vec<cpu::Prepared>,
}

impl PartialEq for Model {
    fn eq(&self, other: &Self) -> bool {
        self.input == other.input
            && self.input_scale_bits == other.input_scale_bits
            && self.nodes == other.nodes
            && self.output == other.output
    }
}

impl Model {
    /// Build and fully validate a model from its parts.
    pub fn new(
        input: TensorInfo,
        input_scale_bits: u32,
        nodes: Vec<Node>,
        output: usize,
    ) -> ModelResult<Self> {
        check_limit("MAX_NODES", nodes.len() as u64, MAX_NODES as u64)?;
        if input.spec.dtype == DType::I32 && input.zero_point != 0 {
            return Err(ModelError::InvalidField {
                field: "input zero_point",
                offset: 0,
                value: 0,
            });
        }
        check_spec(&input.spec)?;
        let mut values = vec![input.clone()];
        let mut work = Vec::with_capacity(nodes.len());
        let mut last_use = vec![0usize; nodes.len() + 1];
        let mut cost = ModelCost {
            nodes: nodes.len() as u64,
            ..ModelCost::default()
        };
        cost.activation_elements = input.spec.elements() as u64;
        for (i, node) in nodes.iter().enumerate() {
            if node.inputs.len() > MAX_NODE_INPUTS {
                return Err(ModelError::LimitExceeded {
                    limit: "MAX_NODE_INPUTS",
                    max: MAX_NODE_INPUTS as u64,
                    actual: node.inputs.len() as u64,
                });
            }
            let mut ins = Vec::with_capacity(node.inputs.len());
            for &v in &node.inputs {
                // Only earlier values: the graph is acyclic by construction.
                if v > i {
                    return Err(ModelError::InvalidNode {
                        node: i,
                        op: node.op.name(),
                        reason: format!("reads value {v}, which is not defined before it"),
                    });
                }
                ins.push(&values[v]);
                last_use[v] = i;
            }
            let (out, w) = node.op.infer(i, &ins, node.zero_point)?;
            check_spec(&out.spec)?;
            cost.macs = cost.macs.saturating_add(w.macs);
            cost.element_ops = cost.element_ops.saturating_add(w.element_ops);
            cost.activation_elements += out.spec.elements() as u64;
            cost.params += node.op.param_count();
            cost.param_bytes += node.op.param_bytes();
            cost.kernel_macs = cost.kernel_macs.saturating_add(w.kernel_macs);
            cost.moved_elements = cost.moved_elements.saturating_add(w.moved_elements);
            cost.prepared_bytes = cost
                .prepared_bytes
                .saturating_add(cpu::prepared_bytes_charged(&node.op) as u64);
            cost.channels += node.op.channels();
            check_limit("MAX_MODEL_MACS", cost.macs, MAX_MODEL_MACS)?;
            check_limit(
                "MAX_TOTAL_ELEMENTS",
                cost.activation_elements,
                MAX_TOTAL_ELEMENTS,
            )?;
            values.push(out);
            work.push(w);
        }
        if output >= values.len() {
            return Err(ModelError::InvalidField {
                field: "output",
                offset: 0,
                value: output as u64,
            });
        }
        // The output must survive to the end.
        last_use[output] = usize::MAX;
        let prepared = nodes.iter().map(|n| cpu::prepare(&n.op)).collect();
        Ok(Model {
            input,
            input_scale_bits,
            nodes,
            output,
            values,
            work,
            last_use,
            cost,
            prepared,
        })
    }

    /// Decode and fully validate model bytes. Never panics; every malformed,
    /// truncated or out-of-limits file gives a precise [`ModelError`].
    pub fn decode(bytes: &[u8]) -> ModelResult<Self> {
        check_limit(
            "MAX_MODEL_BYTES",
            bytes.len() as u64,
            MAX_MODEL_BYTES as u64,
        )?;
        let mut r = Reader::new(bytes);
        if r.take(MAGIC.len() as u64)
            .map_err(|_| ModelError::BadMagic)?
            != MAGIC
        {
            return Err(ModelError::BadMagic);
        }
        let version = r.u16()?;
        if version != FORMAT_VERSION {
            return Err(ModelError::UnsupportedVersion(version));
        }
        let at = r.pos();
        let flags = r.u16()?;
        if flags != 0 {
            return Err(ModelError::InvalidField {
                field: "flags",
                offset: at,
                value: flags.into(),
            });
        }
        let dtype = r.dtype()?;
        let rank = r.rank()?;
        let shape = r.dims(rank)?;
        let zero_point = r.i8()?;
        let input_scale_bits = r.u32()?;
        let input = TensorInfo {
            spec: TensorSpec { dtype, shape },
            zero_point,
        };
        check_spec(&input.spec)?;
        let count = r.u32()? as u64;
        check_limit("MAX_NODES", count, MAX_NODES as u64)?;
        let mut nodes = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let tag_at = r.pos();
            let tag = r.u8()?;
            let n_inputs = r.u8()? as usize;
            check_limit("MAX_NODE_INPUTS", n_inputs as u64, MAX_NODE_INPUTS as u64)?;
            let inputs = (0..n_inputs)
                .map(|_| r.u32().map(|v| v as usize))
                .collect::<ModelResult<Vec<_>>>()?;
            let zero_point = r.i8()?;
            let scale_bits = r.u32()?;
            let op = Op::decode(&mut r, tag_at, tag)?;
            nodes.push(Node {
                op,
                inputs,
                zero_point,
                scale_bits,
            });
        }
        let output = r.u32()? as usize;
        let dtype = r.dtype()?;
        let rank = r.rank()?;
        let declared = TensorSpec {
            dtype,
            shape: r.dims(rank)?,
        };
        if r.remaining() != 0 {
            return Err(ModelError::TrailingBytes {
                offset: r.pos(),
                extra: r.remaining(),
            });
        }
        let model = Model::new(input, input_scale_bits, nodes, output)?;
        if model.output_spec() != &declared {
            return Err(ModelError::OutputMismatch {
                declared: declared.to_string(),
                inferred: model.output_spec().to_string(),
            });
        }
        Ok(model)
    }

    /// The canonical encoding; `decode(encode(m)) == m`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes.extend_from_slice(&MAGIC);
        w.u16(FORMAT_VERSION);
        w.u16(0);
        w.spec(&self.input.spec);
        w.i8(self.input.zero_point);
        w.u32(self.input_scale_bits);
        w.u32(self.nodes.len() as u32);
        for node in &self.nodes {
            w.u8(node.op.tag());
            w.u8(node.inputs.len() as u8);
            node.inputs.iter().for_each(|&v| w.usize(v));
            w.i8(node.zero_point);
            w.u32(node.scale_bits);
            node.op.encode(&mut w);
        }
        w.usize(self.output);
        w.spec(self.output_spec());
        w.bytes
    }

    /// Type and shape of the input bytes [`Model::run`] takes.
    pub fn input_spec(&self) -> &TensorSpec {
        &self.input.spec
    }

    /// Type and shape of the output bytes [`Model::run`] returns.
    pub fn output_spec(&self) -> &TensorSpec {
        &self.values[self.output].spec
    }

    /// Input spec with zero point and the real-scale metadata bits.
    pub fn input_info(&self) -> (&TensorInfo, u32) {
        (&self.input, self.input_scale_bits)
    }

    /// Output spec with zero point and the real-scale metadata bits.
    pub fn output_info(&self) -> (&TensorInfo, u32) {
        let bits = if self.output == 0 {
            self.input_scale_bits
        } else {
            self.nodes[self.output - 1].scale_bits
        };
        (&self.values[self.output], bits)
    }

    /// The graph's nodes.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Inferred info of value `id` (0 = input, `i + 1` = node `i`).
    pub fn value(&self, id: usize) -> Option<&TensorInfo> {
        self.values.get(id)
    }

    /// Work of node `i`.
    pub fn node_work(&self, i: usize) -> Option<Work> {
        self.work.get(i).copied()
    }

    /// Id of the output value.
    pub fn output_value(&self) -> usize {
        self.output
    }

    /// The work of one inference, from the graph alone.
    pub fn cost(&self) -> ModelCost {
        self.cost
    }

    /// The most bytes this decoded model holds on the heap: its parameters,
    /// the kernels' prepared weights (fast and portable), and the graph's
    /// bookkeeping. A model cache bounds its memory by this, not by the
    /// encoded size, which a decoded model can exceed many times (short
    /// reductions padded to 16 lanes and widened to i16, several packs of one
    /// convolution).
    pub fn heap_bytes(&self) -> usize {
        let params: usize = self
            .nodes
            .iter()
            .map(|n| {
                let vectors = n.op.heap_bytes();
                vectors + n.inputs.len() * 8 + std::mem::size_of::<Node>()
            })
            .sum();
        let prepared: usize = self
            .nodes
            .iter()
            .zip(&self.prepared)
            .map(|(n, p)| p.heap_bytes(&n.op) + std::mem::size_of::<cpu::Prepared>())
            .sum();
        let values: usize = self
            .values
            .iter()
            .map(|v| std::mem::size_of::<TensorInfo>() + v.spec.shape.len() * 8)
            .sum();
        params
            + prepared
            + values
            + self.work.len() * std::mem::size_of::<Work>()
            + self.last_use.len() * 8
            + std::mem::size_of::<Model>()
    }

    /// Run one inference on the CPU reference, single-threaded.
    pub fn run(&self, input: &[u8]) -> ModelResult<Vec<u8>> {
        self.run_with(input, RunOptions::default())
    }

    /// Run with options; the output bytes are identical for every option.
    pub fn run_with(&self, input: &[u8], opts: RunOptions) -> ModelResult<Vec<u8>> {
        let x = Tensor::from_bytes(&self.input, input)?;
        Ok(self.run_tensor(x, opts).to_bytes())
    }

    /// Run on a tensor (which must match [`Model::input_spec`] and zero point).
    pub fn run_tensor(&self, input: Tensor, opts: RunOptions) -> Tensor {
        assert_eq!(
            input.info(),
            self.input,
            "input tensor does not match the model"
        );
        let mut values: Vec<Option<Tensor>> = vec![None; self.values.len()];
        values[0] = Some(input);
        for (i, node) in self.nodes.iter().enumerate() {
            let out = {
                let ins: Vec<&Tensor> = node
                    .inputs
                    .iter()
                    .map(|&v| values[v].as_ref().expect("defined and live"))
                    .collect();
                cpu::execute(
                    &node.op,
                    &self.prepared[i],
                    &ins,
                    &self.values[i + 1],
                    opts.threads,
                    opts.kernels,
                )
            };
            debug_assert_eq!(out.info(), self.values[i + 1]);
            for &v in &node.inputs {
                if self.last_use[v] == i {
                    values[v] = None;
                }
            }
            values[i + 1] = Some(out);
        }
        values[self.output].take().expect("output is kept")
    }
}

/// Rank, dimensions and element count of a tensor within limits; no zero dims.
fn check_spec(spec: &TensorSpec) -> ModelResult<()> {
    check_limit("MAX_RANK", spec.shape.len() as u64, MAX_RANK as u64)?;
    for &d in &spec.shape {
        if d == 0 {
            return Err(ModelError::InvalidField {
                field: "dimension",
                offset: 0,
                value: 0,
            });
        }
        check_limit("MAX_DIM", d as u64, MAX_DIM)?;
    }
    let n = checked_product(&spec.shape).unwrap_or(u64::MAX);
    check_limit("MAX_TENSOR_ELEMENTS", n, MAX_TENSOR_ELEMENTS)
}
