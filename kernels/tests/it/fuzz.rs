//! A structure-aware mutation fuzzer for `Model::decode`, on stable Rust.
//!
//! libFuzzer needs a nightly toolchain, so this fuzzer brings its own loop:
//! it starts from valid models (the committed `.infera` files, a model per
//! golden-vector case, a small CNN), knows where every integer field, length and
//! node of those encodings sits, and mutates them with bit flips, boundary
//! values written into fields, length changes, truncation, insertion, deletion,
//! node duplication and splicing. Feedback is semantic rather than
//! instrumented: each result is reduced to a feature (which error, which field or
//! limit, which operator and reason; for accepted models the operator sequence),
//! and an input that shows a feature not seen before joins the corpus.
//!
//! Every input must decode to a model or an error without panicking. A model
//! that decodes must re-encode to the same bytes and run without panicking on
//! zero, extreme and random inputs of its declared spec, giving output of the
//! declared size.
//!
//! Shared by `examples/fuzz_decode.rs` (long runs) and the bounded run in
//! `tests/it/parser.rs`.
#![allow(dead_code)]

use crate::cases::{self, Rng};
use infera_kernels::model::{Model, Node};
use infera_kernels::ops::{
    ArgMaxParams, AvgPoolParams, ClipParams, ConcatParams, FlattenParams, GlobalAvgPoolParams,
    LayerNormParams, LutParams, PadParams, ReshapeParams, SoftmaxParams, TransposeParams,
};
use infera_kernels::ops::{Op, PoolParams, ReduceParams};
use infera_kernels::{DType, ModelError, TensorInfo, TensorSpec};
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// conv(1->4, 3x3, pad 1, ReLU) -> max pool 2x2 -> flatten -> dense(64->10) -> argmax.
pub fn small_cnn() -> Model {
    let mut rng = Rng(7);
    let (conv, _, conv_zp) = cases::conv(
        &mut rng,
        1,
        1,
        [8, 8],
        4,
        [3, 3],
        [1, 1],
        [1, 1],
        [1, 1, 1, 1],
        1,
        DType::I8,
    );
    let (dense, _, dense_zp) = cases::dense(&mut rng, 1, 64, 10, DType::I8);
    let node = |op, inputs, zero_point| Node {
        op,
        inputs,
        zero_point,
        scale_bits: 0x3c00_0000,
    };
    let nodes = vec![
        node(conv, vec![0], conv_zp),
        node(
            Op::MaxPool(PoolParams {
                kernel: [2, 2],
                stride: [2, 2],
                pads: [0; 4],
            }),
            vec![1],
            conv_zp,
        ),
        node(Op::Flatten(FlattenParams { axis: 1 }), vec![2], conv_zp),
        node(dense, vec![3], dense_zp),
        node(Op::ArgMax(ArgMaxParams { axis: 1 }), vec![4], 0),
    ];
    let input = TensorInfo {
        spec: TensorSpec {
            dtype: DType::I8,
            shape: vec![1, 1, 8, 8],
        },
        zero_point: -5,
    };
    Model::new(input, 0x3d80_0000, nodes, 5).expect("valid model")
}

/// One model per golden-vector case: the operator applied to the model input
/// (read once per operand), so every operator and parameter layout is seeded.
pub fn case_models() -> Vec<(String, Model)> {
    cases::all()
        .into_iter()
        .map(|c| {
            let node = Node {
                op: c.op.clone(),
                inputs: vec![0; c.inputs.len()],
                zero_point: c.out_zero_point,
                scale_bits: 0x3f80_0000,
            };
            let m = Model::new(c.inputs[0].info(), 0x3f80_0000, vec![node], 1)
                .unwrap_or_else(|e| panic!("case {} as a model: {e}", c.name));
            (c.name, m)
        })
        .collect()
}

/// Every committed `kernels/models/*/*.infera`.
pub fn committed_models() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for d in dirs {
        let Ok(files) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut files: Vec<PathBuf> = files.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            if f.extension().is_some_and(|e| e == "infera") {
                let bytes = std::fs::read(&f).expect("read committed model");
                out.push((f.display().to_string(), bytes));
            }
        }
    }
    out
}

/// What a field holds, to pick mutations that matter for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Version, flags, dtype, bool: small enumerations.
    Enum,
    /// A count or rank that says how many things follow.
    Len,
    /// A dimension, kernel, stride, pad, axis or feature count.
    Dim,
    /// A value id.
    Ref,
    /// Zero point, clamp bound, multiplier, shift, bias: arithmetic parameters.
    Num,
    /// The operator tag of a node.
    Tag,
}

/// An integer field of an encoding.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub at: usize,
    pub width: usize,
    pub kind: Kind,
}

/// Where things are in one valid encoding.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub fields: Vec<Field>,
    /// `(start, end)` of every node.
    pub nodes: Vec<(usize, usize)>,
    /// Offset of the node count.
    pub node_count_at: usize,
    /// `(start, len, row)` of every weight table, for row-wide edits.
    pub weights: Vec<(usize, usize, usize)>,
}

struct Walk {
    pos: usize,
    l: Layout,
}

impl Walk {
    fn f(&mut self, width: usize, kind: Kind) {
        self.l.fields.push(Field {
            at: self.pos,
            width,
            kind,
        });
        self.pos += width;
    }
    fn spec(&mut self, s: &TensorSpec) {
        self.f(1, Kind::Enum);
        self.f(1, Kind::Len);
        for _ in &s.shape {
            self.f(4, Kind::Dim);
        }
    }
    fn out_mode(&mut self, dtype: DType, outs: usize, red: usize) {
        self.f(1, Kind::Enum);
        self.f(1, Kind::Num);
        self.f(1, Kind::Num);
        self.l.weights.push((self.pos, outs * red, red));
        self.pos += outs * red;
        for _ in 0..outs {
            self.f(4, Kind::Num);
        }
        if dtype == DType::I8 {
            for _ in 0..outs {
                self.f(4, Kind::Num);
                self.f(1, Kind::Num);
            }
        }
    }
}

/// The layout of a valid model's canonical encoding (mirrors `format.rs`).
pub fn layout(m: &Model) -> Layout {
    let mut w = Walk {
        pos: 8,
        l: Layout::default(),
    };
    w.f(2, Kind::Enum);
    w.f(2, Kind::Enum);
    w.spec(m.input_spec());
    w.f(1, Kind::Num);
    w.f(4, Kind::Num);
    w.l.node_count_at = w.pos;
    w.f(4, Kind::Len);
    for n in m.nodes() {
        let start = w.pos;
        w.f(1, Kind::Tag);
        w.f(1, Kind::Len);
        for _ in &n.inputs {
            w.f(4, Kind::Ref);
        }
        w.f(1, Kind::Num);
        w.f(4, Kind::Num);
        match &n.op {
            Op::Dense(p) => {
                w.f(4, Kind::Dim);
                w.f(4, Kind::Dim);
                w.out_mode(p.out_dtype, p.out_features, p.in_features);
            }
            Op::Conv2d(p) => {
                for _ in 0..13 {
                    w.f(4, Kind::Dim);
                }
                let red = p.in_channels / p.groups * p.kernel[0] * p.kernel[1];
                w.out_mode(p.out_dtype, p.out_channels, red);
            }
            Op::MaxPool(_) | Op::AvgPool(AvgPoolParams { .. }) => {
                for _ in 0..8 {
                    w.f(4, Kind::Dim);
                }
                if matches!(n.op, Op::AvgPool(AvgPoolParams { .. })) {
                    w.f(1, Kind::Enum);
                }
            }
            Op::GlobalAvgPool(GlobalAvgPoolParams {}) => {}
            Op::Clip(ClipParams { .. }) => {
                w.f(1, Kind::Num);
                w.f(1, Kind::Num);
            }
            Op::Add(_) => {
                w.f(4, Kind::Num);
                w.f(4, Kind::Num);
                for _ in 0..3 {
                    w.f(1, Kind::Num);
                }
            }
            Op::Mul(_) => {
                w.f(4, Kind::Num);
                for _ in 0..3 {
                    w.f(1, Kind::Num);
                }
            }
            Op::Requantize(_) => {
                w.f(4, Kind::Num);
                w.f(1, Kind::Num);
            }
            Op::Reshape(ReshapeParams { shape }) => {
                w.f(1, Kind::Len);
                for _ in shape {
                    w.f(4, Kind::Dim);
                }
            }
            Op::Flatten(FlattenParams { .. })
            | Op::Concat(ConcatParams { .. })
            | Op::ArgMax(ArgMaxParams { .. }) => w.f(1, Kind::Dim),
            Op::Transpose(TransposeParams { perm }) => {
                w.f(1, Kind::Len);
                for _ in perm {
                    w.f(1, Kind::Dim);
                }
            }
            Op::Pad(PadParams { before, .. }) => {
                w.f(1, Kind::Len);
                for _ in 0..2 * before.len() {
                    w.f(4, Kind::Dim);
                }
            }
            Op::Lut(LutParams { table }) => {
                for _ in table {
                    w.f(1, Kind::Num);
                }
            }
            Op::Softmax(SoftmaxParams { table }) => {
                for _ in table {
                    w.f(4, Kind::Num);
                }
            }
            Op::LayerNorm(LayerNormParams { gamma, beta, .. }) => {
                w.f(4, Kind::Len);
                for _ in gamma.iter().chain(beta) {
                    w.f(4, Kind::Num);
                }
                // eps (low and high words), shift.
                w.f(4, Kind::Num);
                w.f(4, Kind::Num);
                w.f(1, Kind::Num);
            }
            Op::MatMul(_) => {
                w.f(4, Kind::Num);
                for _ in 0..3 {
                    w.f(1, Kind::Num);
                }
            }
            Op::Reduce(ReduceParams { axes, .. }) => {
                w.f(1, Kind::Len);
                for _ in axes {
                    w.f(1, Kind::Dim);
                }
                w.f(1, Kind::Enum);
                w.f(1, Kind::Enum);
                w.f(4, Kind::Num);
                w.f(1, Kind::Num);
            }
        }
        w.l.nodes.push((start, w.pos));
    }
    w.f(4, Kind::Ref);
    w.spec(m.output_spec());
    w.l
}

/// Values that sit on the edges of checks: zero, one, limits, signed and
/// unsigned extremes, and the named limits of `limits.rs` and one past them.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    15,
    16,
    17,
    31,
    32,
    33,
    62,
    63,
    64,
    65,
    127,
    128,
    255,
    256,
    512,
    513,
    0x7fff,
    0x8000,
    0xffff,
    1 << 16,
    (1 << 16) + 1,
    1 << 22,
    (1 << 22) + 1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
];

/// A corpus entry: bytes and, when they are a valid model's encoding (or a
/// same-length mutation of one), its layout.
#[derive(Clone)]
pub struct Entry {
    pub bytes: Vec<u8>,
    pub layout: Option<std::rc::Rc<Layout>>,
}

/// Fuzzing options.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub max_iterations: u64,
    pub max_time: Option<Duration>,
    /// Where failing inputs are written.
    pub crash_dir: Option<PathBuf>,
    /// Most MACs + element ops of an accepted model that is run (cheaper ones
    /// are run on four inputs; costlier ones only decoded and re-encoded).
    pub run_budget: u64,
    /// Print progress every this often.
    pub report_every: Option<Duration>,
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub iterations: u64,
    pub accepted: u64,
    pub runs: u64,
    pub run_skipped: u64,
    pub features: usize,
    pub corpus: usize,
    pub elapsed: Duration,
    /// Count of each error kind.
    pub errors: std::collections::BTreeMap<&'static str, u64>,
}

/// A failing input: what went wrong and where it was written.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub input: Vec<u8>,
    pub iteration: u64,
    pub seed: u64,
    pub written: Option<PathBuf>,
}

fn error_kind(e: &ModelError) -> &'static str {
    match e {
        ModelError::Truncated { .. } => "truncated",
        ModelError::BadMagic => "bad_magic",
        ModelError::UnsupportedVersion(_) => "version",
        ModelError::TrailingBytes { .. } => "trailing",
        ModelError::InvalidField { .. } => "invalid_field",
        ModelError::LimitExceeded { .. } => "limit",
        ModelError::InvalidNode { .. } => "invalid_node",
        ModelError::AccumulatorOverflow { .. } => "accumulator",
        ModelError::OutputMismatch { .. } => "output_mismatch",
        ModelError::InputLength { .. } => "input_length",
    }
}

/// A coarse "what path did this take" fingerprint of a result.
fn feature(r: &Result<Model, ModelError>) -> u64 {
    let mut h = DefaultHasher::new();
    match r {
        Ok(m) => {
            "ok".hash(&mut h);
            for n in m.nodes() {
                n.op.name().hash(&mut h);
                n.inputs.len().hash(&mut h);
            }
            m.output_spec().dtype.hash(&mut h);
            (64 - m.cost().macs.leading_zeros()).hash(&mut h);
        }
        Err(e) => {
            error_kind(e).hash(&mut h);
            match e {
                ModelError::InvalidField { field, .. } => field.hash(&mut h),
                ModelError::LimitExceeded { limit, .. } => limit.hash(&mut h),
                ModelError::InvalidNode { op, reason, .. } => {
                    op.hash(&mut h);
                    // The reason without its numbers names the check that failed.
                    reason
                        .chars()
                        .filter(|c| !c.is_ascii_digit())
                        .collect::<String>()
                        .hash(&mut h);
                }
                _ => {}
            }
        }
    }
    h.finish()
}

/// Decode and, if accepted, check and run. Panics are the caller's business.
/// Returns the decode result plus whether the model was run.
pub fn check_one(
    bytes: &[u8],
    rng_seed: u64,
    run_budget: u64,
) -> (Result<Model, ModelError>, bool) {
    let r = Model::decode(bytes);
    let Ok(m) = &r else {
        return (r, false);
    };
    let again = m.encode();
    assert!(
        again == bytes,
        "accepted bytes are not canonical: re-encoding gives {} bytes, input had {}",
        again.len(),
        bytes.len()
    );
    let m2 = Model::decode(&again).expect("a re-encoded model decodes");
    assert!(&m2 == m, "decode(encode(m)) != m");
    let c = m.cost();
    if c.macs.saturating_add(c.element_ops) > run_budget {
        return (r, false);
    }
    let spec = m.input_spec();
    let n = spec.byte_len();
    let mut rng = Rng(rng_seed);
    let random: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    let inputs: [Vec<u8>; 4] = [vec![0u8; n], vec![0x7f; n], vec![0x80; n], random];
    let want = m.output_spec().byte_len();
    let mut first_random = None;
    for (i, x) in inputs.iter().enumerate() {
        let out = m
            .run(x)
            .unwrap_or_else(|e| panic!("run on a valid input failed: {e}"));
        assert_eq!(out.len(), want, "output length");
        if i == 3 {
            first_random = Some(out);
        }
    }
    // Same bytes twice: no hidden state between runs.
    assert_eq!(
        m.run(&inputs[3]).expect("second run"),
        first_random.expect("ran"),
        "two runs on the same input differ"
    );
    // A wrong-sized input is an error, not a panic.
    assert!(matches!(
        m.run(&vec![0u8; n + 1]),
        Err(ModelError::InputLength { .. })
    ));
    (r, true)
}

/// Apply one random mutation.
fn mutate(rng: &mut Rng, e: &Entry, corpus: &[Entry]) -> Entry {
    let mut b = e.bytes.clone();
    let same_len = |b: Vec<u8>| Entry {
        bytes: b,
        layout: e.layout.clone(),
    };
    let fresh = |b: Vec<u8>| Entry {
        bytes: b,
        layout: None,
    };
    if b.is_empty() {
        return fresh((0..rng.usize(1, 64)).map(|_| rng.next() as u8).collect());
    }
    let len = b.len();
    let pick = rng.usize(0, 99);
    if let Some(l) = e.layout.as_deref() {
        match pick {
            // Boundary values into fields, picked by kind.
            0..=29 => {
                let f = l.fields[rng.usize(0, l.fields.len() - 1)];
                let v = match (f.kind, rng.usize(0, 3)) {
                    (Kind::Enum, _) | (Kind::Tag, 0) => rng.usize(0, 3) as u64,
                    (Kind::Tag, _) => rng.usize(0, 16) as u64,
                    (Kind::Ref, 0..=1) => rng.usize(0, 6) as u64,
                    (Kind::Len | Kind::Dim, 0) => rng.usize(0, 8) as u64,
                    (Kind::Num, 0) => rng.next(),
                    _ => INTERESTING[rng.usize(0, INTERESTING.len() - 1)],
                };
                // Negative-looking values for signed fields: the two's complement.
                let v = if f.kind == Kind::Num && rng.usize(0, 2) == 0 {
                    v.wrapping_neg()
                } else {
                    v
                };
                b[f.at..f.at + f.width].copy_from_slice(&v.to_le_bytes()[..f.width]);
                return same_len(b);
            }
            // Small arithmetic on a field.
            30..=39 => {
                let f = l.fields[rng.usize(0, l.fields.len() - 1)];
                let mut v = [0u8; 8];
                v[..f.width].copy_from_slice(&b[f.at..f.at + f.width]);
                let d = rng.range(-3, 3);
                let v = u64::from_le_bytes(v).wrapping_add(d as u64);
                b[f.at..f.at + f.width].copy_from_slice(&v.to_le_bytes()[..f.width]);
                return same_len(b);
            }
            // A whole weight row at -128 (the accumulator bound).
            40..=42 if !l.weights.is_empty() => {
                let (at, n, row) = l.weights[rng.usize(0, l.weights.len() - 1)];
                if n > 0 && row > 0 {
                    let r = rng.usize(0, n / row - 1);
                    b[at + r * row..at + (r + 1) * row].fill(0x80);
                }
                return same_len(b);
            }
            // Duplicate or drop a node, fixing the node count.
            43..=49 if !l.nodes.is_empty() => {
                let (s, t) = l.nodes[rng.usize(0, l.nodes.len() - 1)];
                let c = l.node_count_at;
                let count = u32::from_le_bytes(b[c..c + 4].try_into().expect("4"));
                let node = b[s..t].to_vec();
                if rng.usize(0, 1) == 0 {
                    let at = l.nodes[rng.usize(0, l.nodes.len() - 1)].1;
                    b.splice(at..at, node);
                    b[c..c + 4].copy_from_slice(&count.wrapping_add(1).to_le_bytes());
                } else {
                    b.drain(s..t);
                    b[c..c + 4].copy_from_slice(&count.wrapping_sub(1).to_le_bytes());
                }
                return fresh(b);
            }
            // Splice at node boundaries of two valid models: a prefix of nodes
            // from one, the rest of another.
            50..=54 => {
                let other = &corpus[rng.usize(0, corpus.len() - 1)];
                if let Some(o) = other.layout.as_deref()
                    && !l.nodes.is_empty()
                    && !o.nodes.is_empty()
                {
                    let cut = l.nodes[rng.usize(0, l.nodes.len() - 1)].1;
                    let from = o.nodes[rng.usize(0, o.nodes.len() - 1)].1;
                    if from <= other.bytes.len() {
                        b.truncate(cut);
                        b.extend_from_slice(&other.bytes[from..]);
                        return fresh(b);
                    }
                }
            }
            _ => {}
        }
    }
    match pick % 10 {
        0 | 1 => {
            let i = rng.usize(0, len - 1);
            b[i] ^= 1 << rng.usize(0, 7);
        }
        2 => {
            let i = rng.usize(0, len - 1);
            b[i] = rng.next() as u8;
        }
        3 => {
            // An unaligned field write of 1, 2 or 4 bytes.
            let w = [1, 2, 4][rng.usize(0, 2)];
            if len >= w {
                let i = rng.usize(0, len - w);
                let v = INTERESTING[rng.usize(0, INTERESTING.len() - 1)];
                b[i..i + w].copy_from_slice(&v.to_le_bytes()[..w]);
            }
        }
        4 => b.truncate(rng.usize(0, len - 1)),
        5 => {
            let i = rng.usize(0, len);
            let n = rng.usize(1, 16);
            let ins: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            b.splice(i..i, ins);
        }
        6 => {
            let i = rng.usize(0, len - 1);
            let n = rng.usize(1, 16.min(len - i));
            b.drain(i..i + n);
        }
        7 => {
            // Duplicate a chunk in place.
            let i = rng.usize(0, len - 1);
            let n = rng.usize(1, 32.min(len - i));
            let chunk = b[i..i + n].to_vec();
            b.splice(i..i, chunk);
        }
        8 => {
            let other = &corpus[rng.usize(0, corpus.len() - 1)].bytes;
            let cut = rng.usize(0, len);
            let from = rng.usize(0, other.len());
            b.truncate(cut);
            b.extend_from_slice(&other[from..]);
        }
        _ => {
            // Several bit flips.
            for _ in 0..rng.usize(2, 8) {
                let i = rng.usize(0, len - 1);
                b[i] ^= 1 << rng.usize(0, 7);
            }
        }
    }
    if b.len() == len {
        same_len(b)
    } else {
        fresh(b)
    }
}

/// The starting corpus: every committed model, every case model, the small CNN.
pub fn seed_corpus() -> Vec<Entry> {
    let mut models: Vec<Model> = committed_models()
        .into_iter()
        .map(|(name, b)| Model::decode(&b).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect();
    models.push(small_cnn());
    models.extend(case_models().into_iter().map(|(_, m)| m));
    models
        .iter()
        .map(|m| Entry {
            bytes: m.encode(),
            layout: Some(std::rc::Rc::new(layout(m))),
        })
        .collect()
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// Check one input with panics caught; `Err` carries the panic message.
pub fn guarded(
    bytes: &[u8],
    seed: u64,
    budget: u64,
) -> Result<(Result<Model, ModelError>, bool), String> {
    catch_unwind(AssertUnwindSafe(|| check_one(bytes, seed, budget)))
        .map_err(|p| panic_message(p.as_ref()))
}

/// Run the fuzzer. Stops at the first failure.
pub fn fuzz(opts: &Options) -> Result<Stats, Box<Failure>> {
    let start = Instant::now();
    let mut rng = Rng(opts.seed);
    let mut corpus = seed_corpus();
    let seeds = corpus.len();
    let mut features = HashSet::new();
    let mut stats = Stats::default();
    let mut last_report = Instant::now();
    let fail = |message: String, input: Vec<u8>, iteration: u64| -> Box<Failure> {
        let written = opts.crash_dir.as_ref().and_then(|d| {
            std::fs::create_dir_all(d).ok()?;
            let p = d.join(format!("crash-seed{}-iter{iteration}.infera", opts.seed));
            std::fs::write(&p, &input).ok()?;
            Some(p)
        });
        Box::new(Failure {
            message,
            input,
            iteration,
            seed: opts.seed,
            written,
        })
    };
    // Deterministic part first: every seed, every truncation of it.
    let mut queue: Vec<Vec<u8>> = Vec::new();
    for e in &corpus {
        for cut in 0..=e.bytes.len() {
            queue.push(e.bytes[..cut].to_vec());
        }
    }
    let mut queue = queue.into_iter();
    loop {
        if stats.iterations >= opts.max_iterations
            || opts.max_time.is_some_and(|t| start.elapsed() >= t)
        {
            break;
        }
        let (input, layout) = match queue.next() {
            Some(b) => (b, None),
            None => {
                // Half the time a valid seed, whose layout makes mutations precise.
                let parent = if rng.usize(0, 1) == 0 {
                    rng.usize(0, seeds - 1)
                } else {
                    rng.usize(0, corpus.len() - 1)
                };
                let mut e = mutate(&mut rng, &corpus[parent], &corpus);
                // Stack a few mutations now and then.
                for _ in 0..rng.usize(0, 3).saturating_sub(1) {
                    e = mutate(&mut rng, &e, &corpus);
                }
                (e.bytes, e.layout)
            }
        };
        let run_seed = rng.next();
        let (result, ran) = guarded(&input, run_seed, opts.run_budget)
            .map_err(|m| fail(m, input.clone(), stats.iterations))?;
        stats.iterations += 1;
        match &result {
            Ok(_) => stats.accepted += 1,
            Err(e) => *stats.errors.entry(error_kind(e)).or_default() += 1,
        }
        if ran {
            stats.runs += 1;
        } else if result.is_ok() {
            stats.run_skipped += 1;
        }
        if features.insert(feature(&result)) && corpus.len() < 4096 {
            let layout = match &result {
                Ok(m) => Some(std::rc::Rc::new(self::layout(m))),
                Err(_) => layout,
            };
            corpus.push(Entry {
                bytes: input,
                layout,
            });
        }
        if let Some(every) = opts.report_every
            && last_report.elapsed() >= every
        {
            last_report = Instant::now();
            let s = start.elapsed().as_secs_f64();
            eprintln!(
                "[{s:>6.1}s] {} iterations ({:.0}/s), {} accepted, {} runs, {} features, corpus {}",
                stats.iterations,
                stats.iterations as f64 / s,
                stats.accepted,
                stats.runs,
                features.len(),
                corpus.len()
            );
        }
    }
    stats.features = features.len();
    stats.corpus = corpus.len();
    stats.elapsed = start.elapsed();
    Ok(stats)
}
