//! The CPU reference backend: the definition of the right answer.
//!
//! Plain safe Rust with integer arithmetic only. Inputs reaching [`execute`] have
//! been validated by [`Op::infer`], so shapes agree and no accumulator can
//! overflow; the kernels still use wrapping adds so that a bug could only give a
//! wrong answer in a test, never a panic in a node.
//!
//! `threads > 1` splits output channels across scoped threads. Each output
//! element is computed by exactly the same code whichever thread runs it, so the
//! bytes never depend on the thread count.
//!
//! **Two implementations, one answer.** The portable kernels in this module
//! (`gemm.rs`, the loops below) are the definition and run on every target. On
//! x86-64, dense and convolution layers also have an AVX2 path (`x86/`), chosen
//! at run time by CPU feature detection (`is_x86_feature_detected!("avx2")`) and
//! by nothing else: no environment variable, thread count or configuration.
//! [`Kernels::Portable`] forces the portable kernels (tests compare the two).
//! Because validation proves every int32 sum exact, sums in another order and
//! blocking are the same integers, and the requantisation is the same i64 rule,
//! so both paths return identical bytes; cost and gas come from the graph alone
//! and never depend on the path.

mod gemm;
pub(crate) mod layout;
pub(crate) mod pool;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;

use crate::error::ModelResult;
use crate::ops::{Conv2dParams, DenseParams, Op};
use crate::quant::requantize;
use crate::tensor::{DType, Tensor, TensorData, TensorInfo};
pub use gemm::{LANES, padded_len};
pub(crate) use gemm::{gemm, widen_into};

/// Which implementation of the dense and convolution kernels runs. The output
/// bytes are identical for both; only the speed differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// The fastest kernels this CPU supports, found by CPU feature detection
    /// (AVX2 on x86-64), else the portable ones.
    #[default]
    Best,
    /// Only the portable reference kernels (the definition of the answer).
    Portable,
}

/// The fast kernels [`Kernels::Best`] uses on this CPU (`Some("avx2")`, or
/// `Some("avx2+avxvnni")` where dense and convolution layers use AVX-VNNI,
/// `Some("avx2+avxvnni+amx")` where they use AMX tiles), or `None` when it
/// runs the portable ones. Decided by CPU feature detection only (and, for
/// AMX, the OS granting the tile state to this process).
pub fn fast_kernels() -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    if let Some(isa) = x86::Avx2::detect() {
        return Some(match isa.vnni() {
            Some(v) if v.amx().is_some() => "avx2+avxvnni+amx",
            Some(_) => "avx2+avxvnni",
            None => "avx2",
        });
    }
    None
}

/// Fast-kernel levels, for [`limit_fast_kernels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FastLevel {
    /// No fast kernels: the portable ones only.
    None = 0,
    /// AVX2 at most.
    Avx2 = 1,
    /// AVX2 and AVX-VNNI at most.
    AvxVnni = 2,
    /// Everything the CPU has (AMX included): the default.
    All = 3,
}

/// Caps the fast kernels [`Kernels::Best`] may use in this process, so that a
/// benchmark can time every path a node on an older CPU would take (the gas
/// search, `gas-calibration --adversarial`). Never changes a result: every
/// path gives the same bytes. Set it before models are decoded (their packed
/// weights follow the level in force then; a pack of a higher level is not
/// used, and the layer runs on the portable kernels). Nodes never call it.
pub fn limit_fast_kernels(level: FastLevel) {
    #[cfg(target_arch = "x86_64")]
    x86::set_fast_limit(level as u8);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = level;
}

/// Per-node data a backend derives once from the weights: the fast path's packed
/// weights when this CPU has one, and the portable path's widened rows (built on
/// first use when the fast path exists, since only [`Kernels::Portable`] reads them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    portable: OnceLock<Rows>,
    #[cfg(target_arch = "x86_64")]
    fast: Option<x86::Pack>,
}

/// The portable kernels' weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rows {
    /// Nothing to prepare.
    None,
    /// Weight rows widened to i16, each padded to `kp`.
    Rows {
        /// `rows * kp` values.
        weights: Vec<i16>,
        /// Padded reduction length.
        kp: usize,
    },
}

/// Prepare an operator for repeated execution.
pub fn prepare(op: &Op) -> Prepared {
    let portable = OnceLock::new();
    #[cfg(target_arch = "x86_64")]
    {
        let fast = x86::Avx2::detect().and_then(|isa| x86::prepare(isa, op));
        if fast.is_none() {
            let _ = portable.set(portable_rows(op));
        }
        Prepared { portable, fast }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = portable.set(portable_rows(op));
        Prepared { portable }
    }
}

impl Prepared {
    pub(crate) fn rows(&self, op: &Op) -> &Rows {
        self.portable.get_or_init(|| portable_rows(op))
    }

    /// The most bytes this preparation of `op` holds on the heap: the fast
    /// pack, plus the portable rows whether or not they are built yet (they
    /// are built on first use, so a cache counting this bound never grows
    /// past what it counted).
    pub fn heap_bytes(&self, op: &Op) -> usize {
        #[cfg(target_arch = "x86_64")]
        let fast = self.fast.as_ref().map_or(0, x86::Pack::heap_bytes);
        #[cfg(not(target_arch = "x86_64"))]
        let fast = 0;
        fast + portable_rows_bytes(op)
    }
}

/// Bytes of prepared weights charged for `op` whatever the CPU: the portable
/// rows, and for convolutions with several input channels per group the fast
/// paths' packs too (channel pairs, quads and AMX tiles of the same weights,
/// all built when a model is decoded, since which one runs depends on the
/// input's shape: measured at 5.7 ns per weight on an AMX CPU, five times a
/// dense layer's).
pub fn prepared_bytes_charged(op: &Op) -> usize {
    let packs = match op {
        Op::Conv2d(p) if p.in_channels / p.groups.max(1) > 1 => {
            CONV_PACK_BYTES_PER_WEIGHT * p.weights.len()
        }
        _ => 0,
    };
    portable_rows_bytes(op) + packs
}

/// Bytes per convolution weight [`prepared_bytes_charged`] counts for the
/// fast paths' packs.
pub const CONV_PACK_BYTES_PER_WEIGHT: usize = 6;

/// Heap bytes of [`portable_rows`] of `op`, computed without building them.
pub fn portable_rows_bytes(op: &Op) -> usize {
    weight_rows(op).map_or(0, |(w, red)| {
        w.len() / red * padded_len(red) * std::mem::size_of::<i16>()
    })
}

/// The weights of a dense or convolution layer and the length of the
/// reduction each output channel's row covers; `None` for other operators
/// (and for an empty reduction, which validation never lets through).
fn weight_rows(op: &Op) -> Option<(&[i8], usize)> {
    let (w, red) = match op {
        Op::Dense(p) => (&p.weights, p.in_features),
        Op::Conv2d(p) => (
            &p.weights,
            p.in_channels / p.groups.max(1) * p.kernel[0] * p.kernel[1],
        ),
        _ => return None,
    };
    (red != 0).then_some((w.as_slice(), red))
}

fn portable_rows(op: &Op) -> Rows {
    let Some((w, red)) = weight_rows(op) else {
        return Rows::None;
    };
    let kp = padded_len(red);
    let rows = w.len() / red;
    let mut weights = vec![0i16; rows * kp];
    for (dst, src) in weights.chunks_exact_mut(kp).zip(w.chunks_exact(red)) {
        gemm::widen_into(dst, src, 0);
    }
    Rows::Rows { weights, kp }
}

/// Validate one operator on concrete inputs and run it single-threaded.
///
/// The entry point of golden vectors and backend cross-checks.
pub fn execute_op(op: &Op, inputs: &[&Tensor], out_zero_point: i8) -> ModelResult<Tensor> {
    execute_op_with(op, inputs, out_zero_point, Kernels::Best)
}

/// [`execute_op`] with a choice of kernels (the bytes are the same for both).
pub fn execute_op_with(
    op: &Op,
    inputs: &[&Tensor],
    out_zero_point: i8,
    kernels: Kernels,
) -> ModelResult<Tensor> {
    let infos: Vec<TensorInfo> = inputs.iter().map(|t| t.info()).collect();
    let refs: Vec<&TensorInfo> = infos.iter().collect();
    let (out, _) = op.infer(0, &refs, out_zero_point)?;
    Ok(execute(op, &prepare(op), inputs, &out, 1, kernels))
}

/// Run a validated operator. `out` is the output info from [`Op::infer`].
pub fn execute(
    op: &Op,
    prep: &Prepared,
    inputs: &[&Tensor],
    out: &TensorInfo,
    threads: usize,
    kernels: Kernels,
) -> Tensor {
    let threads = threads.max(1);
    let x = inputs[0];
    #[cfg(target_arch = "x86_64")]
    if kernels == Kernels::Best
        && let (Some(isa), Some(pack)) = (x86::Avx2::detect(), &prep.fast)
        && let Some(t) = x86::execute(isa, pack, op, x, out, threads)
    {
        return t;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = kernels;
    op.reference(&Run {
        op,
        prep,
        inputs,
        out,
        threads,
    })
}

/// What an operator's reference kernel entry (`reference` in its module
/// under [`crate::ops`]) gets: validated inputs, the output's info from
/// [`Op::infer`], the node's prepared weights and the thread budget.
pub(crate) struct Run<'a> {
    pub op: &'a Op,
    pub prep: &'a Prepared,
    pub inputs: &'a [&'a Tensor],
    pub out: &'a TensorInfo,
    pub threads: usize,
}

impl Run<'_> {
    /// The first input.
    pub fn x(&self) -> &Tensor {
        self.inputs[0]
    }

    /// The first input's int8 values.
    pub fn x_i8(&self) -> &[i8] {
        i8s(self.inputs[0])
    }

    /// The output: int8 values in the validated shape and zero point.
    pub fn i8_out(&self, data: Vec<i8>) -> Tensor {
        Tensor::i8(self.out.spec.shape.clone(), self.out.zero_point, data)
    }

    /// The output: elements of either type in the validated shape.
    pub fn out_data(&self, data: TensorData) -> Tensor {
        Tensor {
            shape: self.out.spec.shape.clone(),
            zero_point: self.out.zero_point,
            data,
        }
    }
}

pub(crate) fn i8s(t: &Tensor) -> &[i8] {
    t.as_i8().expect("validated: i8 input")
}

/// Turn accumulators into the output type: raw i32, or requantised int8.
#[derive(Clone, Copy)]
struct Finish<'a> {
    bias: &'a [i32],
    requant: &'a [crate::quant::Requant],
    zero_point: i8,
    lo: i8,
    hi: i8,
}

impl Finish<'_> {
    #[inline(always)]
    fn i32(&self, channel: usize, acc: i32) -> i32 {
        acc.wrapping_add(self.bias[channel])
    }
    #[inline(always)]
    fn i8(&self, channel: usize, acc: i32) -> i8 {
        requantize(
            self.i32(channel, acc),
            self.requant[channel],
            self.zero_point,
            self.lo,
            self.hi,
        )
    }
}

/// Output buffer for either output type.
pub(crate) enum Out {
    I8(Vec<i8>),
    I32(Vec<i32>),
}

impl Out {
    fn new(dtype: DType, len: usize) -> Self {
        match dtype {
            DType::I8 => Out::I8(vec![0; len]),
            DType::I32 => Out::I32(vec![0; len]),
        }
    }
    #[cfg(target_arch = "x86_64")]
    fn len(&self) -> usize {
        match self {
            Out::I8(v) => v.len(),
            Out::I32(v) => v.len(),
        }
    }
    fn into_tensor(self, out: &TensorInfo) -> Tensor {
        let shape = out.spec.shape.clone();
        match self {
            Out::I8(v) => Tensor::i8(shape, out.zero_point, v),
            Out::I32(v) => Tensor::i32(shape, v),
        }
    }
}

/// Split `units` work units into at most `threads` contiguous ranges of whole
/// multiples of `align` units (so micro-kernel blocks are never cut).
pub(crate) fn ranges(units: usize, threads: usize, align: usize) -> Vec<std::ops::Range<usize>> {
    let blocks = units.div_ceil(align);
    let per = blocks.div_ceil(threads.max(1)).max(1) * align;
    (0..units)
        .step_by(per)
        .map(|s| s..(s + per).min(units))
        .collect()
}

pub(crate) fn dense(
    p: &DenseParams,
    prep: &Rows,
    x: &Tensor,
    out: &TensorInfo,
    threads: usize,
) -> Tensor {
    let Rows::Rows { weights, kp } = prep else {
        unreachable!("dense is prepared")
    };
    let kp = *kp;
    let k = p.in_features;
    let n_out = p.out_features;
    let xs = i8s(x);
    let rows = xs.len() / k;
    let mut xw = vec![0i16; rows * kp];
    for (dst, src) in xw.chunks_exact_mut(kp).zip(xs.chunks_exact(k)) {
        gemm::widen_into(dst, src, x.zero_point);
    }
    let fin = Finish {
        bias: &p.bias,
        requant: &p.requant,
        zero_point: out.zero_point,
        lo: p.act_min,
        hi: p.act_max,
    };
    // Each range of output features is computed into its own [rows, len] block,
    // then scattered: identical arithmetic whatever the split.
    let parts = ranges(n_out, threads, gemm::MR);
    let compute = |r: std::ops::Range<usize>| -> Vec<i32> {
        let len = r.len();
        let mut acc = vec![0i32; rows * len];
        gemm::gemm(
            &weights[r.start * kp..r.end * kp],
            len,
            &xw,
            rows,
            kp,
            |o, row, v| {
                acc[row * len + o] = fin.i32(r.start + o, v);
            },
        );
        acc
    };
    let blocks: Vec<Vec<i32>> = if parts.len() > 1 {
        std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .iter()
                .cloned()
                .map(|r| s.spawn(move || compute(r)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("kernel thread"))
                .collect()
        })
    } else {
        parts.iter().cloned().map(compute).collect()
    };
    let mut res = Out::new(p.out_dtype, rows * n_out);
    for (r, block) in parts.iter().zip(blocks) {
        let len = r.len();
        for row in 0..rows {
            for o in 0..len {
                let v = block[row * len + o];
                let at = row * n_out + r.start + o;
                match &mut res {
                    Out::I8(d) => {
                        d[at] =
                            requantize(v, fin.requant[r.start + o], fin.zero_point, fin.lo, fin.hi)
                    }
                    Out::I32(d) => d[at] = v,
                }
            }
        }
    }
    res.into_tensor(out)
}

/// Geometry of one convolution, shared by its workers.
struct ConvGeom {
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    cg: usize,
    og: usize,
    red: usize,
    kp: usize,
}

/// Output positions per im2col tile: bounds scratch memory to `TILE * kp` i16.
const TILE: usize = 64;

pub(crate) fn conv2d(
    p: &Conv2dParams,
    prep: &Rows,
    x: &Tensor,
    out: &TensorInfo,
    threads: usize,
) -> Tensor {
    let Rows::Rows { weights, kp } = prep else {
        unreachable!("conv is prepared")
    };
    let [n, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let (oh, ow) = (out.spec.shape[2], out.spec.shape[3]);
    let g = ConvGeom {
        c,
        h,
        w,
        oh,
        ow,
        cg: c / p.groups,
        og: p.out_channels / p.groups,
        red: c / p.groups * p.kernel[0] * p.kernel[1],
        kp: *kp,
    };
    let xs = i8s(x);
    let plane = oh * ow;
    let oc = p.out_channels;
    if g.cg == 1 {
        return depthwise(p, &g, n, xs, x.zero_point, out);
    }
    let fin = Finish {
        bias: &p.bias,
        requant: &p.requant,
        zero_point: out.zero_point,
        lo: p.act_min,
        hi: p.act_max,
    };
    let mut res = Out::new(p.out_dtype, n * oc * plane);
    // Work unit: one output channel of one image, a contiguous `plane` of the output.
    let parts = ranges(n * oc, threads, 1);
    let run = |first: usize, dst: &mut OutSlice<'_>| {
        let units = dst.len() / plane;
        let mut col = vec![0i16; TILE * g.kp];
        let mut unit = first;
        while unit < first + units {
            // Channels of the same image and group share one im2col tile.
            let (img, ch) = (unit / oc, unit % oc);
            let group = ch / g.og;
            let end = (first + units).min(img * oc + (group + 1) * g.og);
            let xi = &xs[img * c * h * w..(img + 1) * c * h * w];
            let wg = &weights[ch * g.kp..(ch + end - unit) * g.kp];
            let mut p0 = 0;
            while p0 < plane {
                let t = TILE.min(plane - p0);
                im2col(p, &g, xi, x.zero_point, group, p0, t, &mut col);
                gemm::gemm(wg, end - unit, &col, t, g.kp, |o, j, v| {
                    let at = (unit + o - first) * plane + p0 + j;
                    dst.set(at, ch + o, v, &fin);
                });
                p0 += t;
            }
            unit = end;
        }
    };
    match &mut res {
        Out::I8(d) => split_run(d, &parts, plane, threads, |f, s| {
            run(f, &mut OutSlice::I8(s))
        }),
        Out::I32(d) => split_run(d, &parts, plane, threads, |f, s| {
            run(f, &mut OutSlice::I32(s))
        }),
    }
    res.into_tensor(out)
}

/// Run `f(first_unit, slice)` over disjoint slices of `data`, in threads if asked.
fn split_run<T: Send>(
    data: &mut [T],
    parts: &[std::ops::Range<usize>],
    unit_len: usize,
    threads: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let mut rest = data;
    let mut slices = Vec::with_capacity(parts.len());
    for r in parts {
        let (head, tail) = rest.split_at_mut(r.len() * unit_len);
        slices.push((r.start, head));
        rest = tail;
    }
    if threads > 1 && slices.len() > 1 {
        std::thread::scope(|s| {
            for (first, slice) in slices {
                let f = &f;
                s.spawn(move || f(first, slice));
            }
        });
    } else {
        for (first, slice) in slices {
            f(first, slice);
        }
    }
}

pub(crate) enum OutSlice<'a> {
    I8(&'a mut [i8]),
    I32(&'a mut [i32]),
}

impl OutSlice<'_> {
    fn len(&self) -> usize {
        match self {
            OutSlice::I8(s) => s.len(),
            OutSlice::I32(s) => s.len(),
        }
    }
    #[inline(always)]
    fn set(&mut self, at: usize, channel: usize, acc: i32, fin: &Finish<'_>) {
        match self {
            OutSlice::I8(s) => s[at] = fin.i8(channel, acc),
            OutSlice::I32(s) => s[at] = fin.i32(channel, acc),
        }
    }
}

/// Gather `t` output positions starting at `p0` into rows of `col`
/// (`x - zero_point` as i16, 0 for padding and the tail up to `kp`).
#[allow(clippy::too_many_arguments)]
fn im2col(
    p: &Conv2dParams,
    g: &ConvGeom,
    xi: &[i8],
    zx: i8,
    group: usize,
    p0: usize,
    t: usize,
    col: &mut [i16],
) {
    let [kh, kw] = p.kernel;
    let [sh, sw] = p.stride;
    let [dh, dw] = p.dilation;
    let (pt, pl) = (p.pads[0] as isize, p.pads[1] as isize);
    for j in 0..t {
        let pos = p0 + j;
        let (oy, ox) = (pos / g.ow, pos % g.ow);
        let row = &mut col[j * g.kp..(j + 1) * g.kp];
        let mut k = 0;
        for ci in 0..g.cg {
            let chan = &xi[(group * g.cg + ci) * g.h * g.w..][..g.h * g.w];
            for ky in 0..kh {
                let iy = (oy * sh + ky * dh) as isize - pt;
                let in_y = iy >= 0 && (iy as usize) < g.h;
                for kx in 0..kw {
                    let ix = (ox * sw + kx * dw) as isize - pl;
                    row[k] = if in_y && ix >= 0 && (ix as usize) < g.w {
                        i16::from(chan[iy as usize * g.w + ix as usize]) - i16::from(zx)
                    } else {
                        0
                    };
                    k += 1;
                }
            }
        }
        row[g.red..].fill(0);
    }
    let _ = (g.c, g.oh);
}

/// Convolutions with one input channel per group (depthwise, channel
/// multipliers): im2col rows would be a few elements long, so accumulate
/// directly, one kernel tap at a time over contiguous output rows.
fn depthwise(
    p: &Conv2dParams,
    g: &ConvGeom,
    n: usize,
    xs: &[i8],
    zx: i8,
    out: &TensorInfo,
) -> Tensor {
    let [kh, kw] = p.kernel;
    let [sh, sw] = p.stride;
    let [dh, dw] = p.dilation;
    let (pt, pl) = (p.pads[0], p.pads[1]);
    let fin = Finish {
        bias: &p.bias,
        requant: &p.requant,
        zero_point: out.zero_point,
        lo: p.act_min,
        hi: p.act_max,
    };
    let plane = g.oh * g.ow;
    let mut res = Out::new(p.out_dtype, n * p.out_channels * plane);
    let mut acc = vec![0i32; plane];
    let mut xrow = vec![0i32; g.w];
    for img in 0..n {
        for ch in 0..p.out_channels {
            let src = &xs[(img * g.c + ch / g.og) * g.h * g.w..][..g.h * g.w];
            let wk = &p.weights[ch * kh * kw..(ch + 1) * kh * kw];
            acc.fill(0);
            for oy in 0..g.oh {
                let arow = &mut acc[oy * g.ow..(oy + 1) * g.ow];
                for ky in 0..kh {
                    let Some(iy) = (oy * sh + ky * dh).checked_sub(pt).filter(|&iy| iy < g.h)
                    else {
                        continue;
                    };
                    for (d, &s) in xrow.iter_mut().zip(&src[iy * g.w..(iy + 1) * g.w]) {
                        *d = i32::from(s) - i32::from(zx);
                    }
                    for kx in 0..kw {
                        let wv = i32::from(wk[ky * kw + kx]);
                        // Output columns whose tap lands inside the row: ix = ox*sw + kx*dw - pl.
                        let off = kx * dw;
                        let first = pl.saturating_sub(off).div_ceil(sw);
                        let Some(last) = (g.w + pl).checked_sub(off + 1).map(|v| v / sw) else {
                            continue;
                        }; // inclusive bound
                        if first > last.min(g.ow - 1) {
                            continue;
                        }
                        let last = last.min(g.ow - 1);
                        let base = first * sw + off - pl;
                        if sw == 1 {
                            let cols = &xrow[base..base + (last - first + 1)];
                            for (a, &v) in arow[first..=last].iter_mut().zip(cols) {
                                *a = a.wrapping_add(wv * v);
                            }
                        } else {
                            for (j, a) in arow[first..=last].iter_mut().enumerate() {
                                *a = a.wrapping_add(wv * xrow[base + j * sw]);
                            }
                        }
                    }
                }
            }
            let at = (img * p.out_channels + ch) * plane;
            match &mut res {
                Out::I8(d) => d[at..at + plane]
                    .iter_mut()
                    .zip(&acc)
                    .for_each(|(o, &v)| *o = fin.i8(ch, v)),
                Out::I32(d) => d[at..at + plane]
                    .iter_mut()
                    .zip(&acc)
                    .for_each(|(o, &v)| *o = fin.i32(ch, v)),
            }
        }
    }
    res.into_tensor(out)
}
