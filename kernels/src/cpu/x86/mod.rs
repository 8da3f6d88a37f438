//! The x86-64 fast path: AVX2 (and, for dense layers, AVX-VNNI) kernels, chosen
//! at run time by CPU feature detection and nothing else.
//!
//! The portable kernels in [`super`] stay the definition of the answer; this
//! path computes the same exact integer sums in a different order and blocking,
//! so its bytes are identical by construction (validation proves that every
//! int32 sum is exact). The property tests in `tests/it/simd.rs` check it
//! against the portable path on random and extreme cases, and every golden
//! vector runs through both.
//!
//! Layout, in brief: every product is a `vpmaddwd` of two i16 pairs. The
//! reduction is cut into *steps* of two elements (two inputs of a dense row; two
//! input channels at one kernel tap of a convolution; two taps of a depthwise
//! row), and each operand is stored as one i32 per step holding the two i16
//! values ([`pair`]). Dense layers keep 8 output channels in the lanes of a
//! vector and broadcast an activation pair; convolutions keep 8 output
//! positions in the lanes and broadcast a weight pair. Stride-1 convolutions
//! read a zero-padded copy of the input directly (no im2col): position `q` of a
//! row of the padded width is the output, so every tap is a fixed offset;
//! other strides gather an im2col tile in the same pair layout.
//!
//! On CPUs with AVX-VNNI, dense layers pack four inputs per step instead
//! ([`Pack::DenseVnni`]) for `vpdpbusd` (u8 activations offset by 128, the
//! offset folded into the bias), and stride-1 convolutions read four input
//! channels per i32 ([`ConvQuads`]); strided and depthwise ones keep pairs.
//!
//! On CPUs with AMX-INT8 (and an OS that grants the tile state), dense layers
//! of at least [`AMX_MIN_ROWS`] rows and stride-1 convolutions of at least
//! [`AMX_MIN_CHANNELS`] input channels per group run on tiles once a call has
//! [`AMX_MIN_MACS`] multiply-accumulates ([`amx_kernels`]): the same u8-offset
//! operands and bias correction, 16 x 16 i32 accumulators, requantised with
//! AVX-512 ([`avx512`], also used by depthwise layers where the CPU has it).
//!
//! This module is plain safe Rust (packing, geometry, threads); the vector code
//! is in [`avx2`], [`avx512`] and [`amx_kernels`] (safe `#[target_feature]`
//! functions), the calls into it in [`token`], and the tile instructions in
//! [`amx`]: the crate's only `unsafe`.

mod amx;
mod amx_kernels;
mod avx2;
mod avx512;
mod token;

pub(crate) use token::{Avx2, Vnni, set_fast_limit};

use super::{Out, OutSlice, ranges};
use crate::ops::{Conv2dParams, DenseParams, Op};
use crate::quant::Requant;
use crate::tensor::{Tensor, TensorInfo};
use avx2::{CB, CV, DR, DV, OutMode, WV};

/// i32 lanes in one 256-bit vector.
pub(crate) const L: usize = 8;
/// Output positions per im2col tile (bounds its scratch to `steps * TP` i32).
const TP: usize = 128;

/// Two i16 values in one i32: `lo` in the low half, the element `vpmaddwd`
/// multiplies first.
#[inline(always)]
pub(crate) fn pair(lo: i16, hi: i16) -> i32 {
    (u32::from(lo as u16) | (u32::from(hi as u16) << 16)) as i32
}

/// Requantisation constants of one output channel (see `avx2::requant8`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ChanRq {
    bias: i32,
    mult: i32,
    shift: i64,
    /// `2^(shift - 1) + 2^62`.
    round: i64,
    /// `2^(62 - shift)`.
    offset: i64,
}

impl ChanRq {
    fn new(bias: i32, rq: Option<&Requant>) -> Self {
        // int32 outputs use only the bias; any valid shift keeps the vector code defined.
        let (mult, shift) = rq.map_or((0, 1), |r| (r.multiplier, i64::from(r.shift)));
        ChanRq {
            bias,
            mult,
            shift,
            round: (1i64 << (shift - 1)) + (1i64 << 62),
            offset: 1i64 << (62 - shift),
        }
    }
}

fn chan_rq(bias: &[i32], rq: &[Requant]) -> Vec<ChanRq> {
    bias.iter()
        .enumerate()
        .map(|(i, &b)| ChanRq::new(b, rq.get(i)))
        .collect()
}

/// Which output positions a run of accumulators covers. Accumulator `q` (from 0)
/// is virtual position `first + q` of rows `row` wide; it is the output
/// `(q / row, q % row)` when that lies inside `oh x ow`, and is dropped otherwise.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    /// Accumulators computed (a multiple of the tile width).
    positions: usize,
    first: usize,
    row: usize,
    oh: usize,
    ow: usize,
}

impl Grid {
    fn plane(&self) -> usize {
        self.oh * self.ow
    }

    /// Copy the real outputs among accumulators `q0..q0 + n` (`vals[..n]`) into
    /// the plane `out`, one output row segment at a time.
    fn scatter<T: Copy>(&self, vals: &[T], n: usize, q0: usize, out: &mut [T]) {
        let start = self.first + q0;
        let (mut oy, mut ox) = (start / self.row, start % self.row);
        let mut from = 0;
        while from < n && oy < self.oh {
            let seg = (self.row - ox).min(n - from);
            if ox < self.ow {
                let len = (self.ow - ox).min(seg);
                let to = oy * self.ow + ox;
                copy_blocks(&mut out[to..to + len], &vals[from..from + len]);
            }
            from += seg;
            oy += 1;
            ox = 0;
        }
    }
}

/// Call `f(i)` for the starts of `B`-element blocks covering `0..len` (`len >= B`):
/// `0, B, 2B, ..`, and `len - B` for the remainder (overlapping the previous
/// block, so whatever `f` writes there is written again with the same values).
/// Returns false, calling nothing, when `len < B`.
#[inline(always)]
pub(crate) fn blocks<const B: usize>(len: usize, mut f: impl FnMut(usize)) -> bool {
    if len < B {
        return false;
    }
    let mut i = 0;
    while i + B <= len {
        f(i);
        i += B;
    }
    if i < len {
        f(len - B);
    }
    true
}

/// `dst.copy_from_slice(src)` in fixed blocks of [`L`] (short rows are common).
#[inline(always)]
fn copy_blocks<T: Copy>(dst: &mut [T], src: &[T]) {
    let n = dst.len().min(src.len());
    if !blocks::<L>(n, |i| dst[i..i + L].copy_from_slice(&src[i..i + L])) {
        dst[..n].copy_from_slice(&src[..n]);
    }
}

/// A zero-padded input plane laid out with rows `wp` wide, `len` elements long
/// (the padded image plus slack so that every tile's reads stay inside).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plane {
    h: usize,
    w: usize,
    pt: usize,
    pl: usize,
    wp: usize,
    len: usize,
}

/// Weights of one operator in the fast path's layout, built once per model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pack {
    /// Per block of `8 * DV` output channels, per step, `16 * DV` int8 weights
    /// (channel-major i16 pairs: `w[c][2s], w[c][2s + 1]`).
    Dense {
        w: Vec<i8>,
        steps: usize,
        rq: Vec<ChanRq>,
    },
    /// Per group, per block of `CB` output channels, per step
    /// `(channel pair, ky, kx)`, `CB` weight pairs.
    Conv {
        w: Vec<i32>,
        steps: usize,
        blocks: usize,
        rq: Vec<ChanRq>,
        /// The same weights as channel quads for AVX-VNNI (stride-1
        /// convolutions on CPUs that have it).
        quads: Option<ConvQuads>,
        /// The same weights as AMX tiles (stride-1 convolutions of at least
        /// [`AMX_MIN_CHANNELS`] input channels on CPUs with AMX).
        tiles: Option<ConvTiles>,
    },
    /// [`Pack::Dense`] for AVX-VNNI: per block of `8 * DV` output channels,
    /// per step of four inputs, `32 * DV` int8 weights (channel-major quads
    /// `w[c][4s..4s + 4]`), and each channel's weight sum, which the kernel
    /// needs to undo the u8 offset of the activations. On CPUs with AMX the
    /// steps are padded with zero weights to a multiple of 16 (64 inputs), so
    /// that each block's panel is a column of AMX `B` tiles.
    DenseVnni {
        w: Vec<i8>,
        steps: usize,
        wsum: Vec<i32>,
    },
    /// One input channel per group, stride 1: per output channel, per step
    /// `(ky, pair of kx)`, one weight pair.
    Depthwise {
        w: Vec<i32>,
        steps: usize,
        rq: Vec<ChanRq>,
    },
}

impl Pack {
    /// Bytes this pack holds on the heap (what a model cache must count).
    pub(crate) fn heap_bytes(&self) -> usize {
        fn bytes<T>(v: &[T]) -> usize {
            std::mem::size_of_val(v)
        }
        match self {
            Pack::Dense { w, rq, .. } => bytes(w) + bytes(rq),
            Pack::Conv {
                w,
                rq,
                quads,
                tiles,
                ..
            } => {
                bytes(w)
                    + bytes(rq)
                    + quads.as_ref().map_or(0, |q| bytes(&q.w) + bytes(&q.wsum))
                    + tiles.as_ref().map_or(0, |t| bytes(&t.w))
            }
            Pack::DenseVnni { w, wsum, .. } => bytes(w) + bytes(wsum),
            Pack::Depthwise { w, rq, .. } => bytes(w) + bytes(rq),
        }
    }
}

/// Convolution weights for AVX-VNNI: per group, per block of `CB` output
/// channels, per step `(channel quad, ky, kx)`, `CB` int8 quads (four input
/// channels of one tap), and each output channel's weight sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConvQuads {
    w: Vec<i32>,
    steps: usize,
    wsum: Vec<i32>,
}

/// Fewest activation rows for which dense layers use AMX tiles (fewer rows
/// leave most of each 16-row tile empty; AVX-VNNI is faster there).
const AMX_MIN_ROWS: usize = 8;
/// Fewest input channels per group for which stride-1 convolutions use AMX
/// tiles (fewer give each tile step too little reduction).
const AMX_MIN_CHANNELS: usize = 16;

/// Fewest multiply-accumulates of one call (a dense layer, or one image and
/// group of a convolution) for which AMX tiles are used: below about this the
/// set-up, the rounding of rows and positions up to whole tiles, and the
/// requantisation outweigh the faster products (measured on Sapphire Rapids:
/// a 16->16 1x1 convolution on 8x8 is 10 % slower on tiles, 16->16 3x3 on 8x8
/// 10 % faster, dense 8x256x64 20 % faster and 8x64x16 50 % slower).
const AMX_MIN_MACS: usize = 1 << 17;

/// Convolution weights as AMX `A` tiles: per group, per block of 16 output
/// channels, per kernel tap, per block of up to 64 input channels, 16 rows
/// (channels) of `k_bytes` int8 (zero past the group's channels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConvTiles {
    w: Vec<i8>,
    /// Input channel blocks per tap.
    chunks: usize,
    /// Bytes per tile row: `4 * min(16, channel quads)`.
    k_bytes: usize,
    /// Output channel blocks of 16 per group.
    blocks: usize,
}

fn conv_tiles(p: &Conv2dParams) -> ConvTiles {
    let cg = p.in_channels / p.groups;
    let og = p.out_channels / p.groups;
    let [kh, kw] = p.kernel;
    let red = cg * kh * kw;
    let cq = cg.div_ceil(4);
    let k_bytes = 4 * cq.min(amx::TILE);
    let chunks = cq.div_ceil(amx::TILE);
    let blocks = og.div_ceil(amx::TILE);
    let tile = amx::TILE * k_bytes;
    let mut w = vec![0i8; p.groups * blocks * kh * kw * chunks * tile];
    for g in 0..p.groups {
        for oc in 0..og {
            let wk = &p.weights[(g * og + oc) * red..][..red];
            let (b, row) = (oc / amx::TILE, oc % amx::TILE);
            for ky in 0..kh {
                for kx in 0..kw {
                    let tap = ky * kw + kx;
                    for ci in 0..cg {
                        let (cc, at) = (ci / (k_bytes), ci % k_bytes);
                        let t = ((g * blocks + b) * kh * kw + tap) * chunks + cc;
                        w[t * tile + row * k_bytes + at] = wk[(ci * kh + ky) * kw + kx];
                    }
                }
            }
        }
    }
    ConvTiles {
        w,
        chunks,
        k_bytes,
        blocks,
    }
}

fn conv_quads(p: &Conv2dParams, blocks: usize) -> ConvQuads {
    let quad = |v: [i8; 4]| i32::from_le_bytes(v.map(|b| b as u8));
    let (w, steps) = conv_panel::<4>(p, blocks, quad);
    let red = p.in_channels / p.groups * p.kernel[0] * p.kernel[1];
    ConvQuads {
        w,
        steps,
        wsum: row_sums(&p.weights, red),
    }
}

/// Convolution weights for [`Pack::Conv`] (`PER = 2`, i16 pairs) or
/// [`ConvQuads`] (`PER = 4`): per group, per block of `CB` output channels,
/// per step `(group of per input channels, ky, kx)`, `CB` values, each the
/// `per` weights of one tap (zero beyond the group's channels) as `encode`
/// packs them into an i32. Returns the panel and its steps.
fn conv_panel<const PER: usize>(
    p: &Conv2dParams,
    blocks: usize,
    encode: impl Fn([i8; 4]) -> i32,
) -> (Vec<i32>, usize) {
    let per = PER;
    let cg = p.in_channels / p.groups;
    let og = p.out_channels / p.groups;
    let [kh, kw] = p.kernel;
    let cgroups = cg.div_ceil(per);
    let steps = cgroups * kh * kw;
    let red = cg * kh * kw;
    let mut w = vec![0i32; p.groups * blocks * steps * CB];
    for (gb, panel) in w.chunks_exact_mut(steps * CB).enumerate() {
        let (g, b) = (gb / blocks, gb % blocks);
        for j in 0..CB {
            let oc = b * CB + j;
            if oc >= og {
                break;
            }
            let wk = &p.weights[(g * og + oc) * red..][..red];
            for c in 0..cgroups {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let v = core::array::from_fn(|i| {
                            let ci = per * c + i;
                            if i < per && ci < cg {
                                wk[(ci * kh + ky) * kw + kx]
                            } else {
                                0
                            }
                        });
                        panel[((c * kh + ky) * kw + kx) * CB + j] = encode(v);
                    }
                }
            }
        }
    }
    (w, steps)
}

/// Dense weights for [`Pack::Dense`] (`PER = 2`) or [`Pack::DenseVnni`]
/// (`PER = 4`): per block of `8 * DV` output channels, per step of `per`
/// inputs, each channel's `per` weights (zero past the row's end), the steps
/// padded with zeros to a multiple of `pad`. Returns the panel and its steps.
fn dense_panel<const PER: usize>(p: &DenseParams, pad: usize) -> (Vec<i8>, usize) {
    let per = PER;
    let (k, n) = (p.in_features, p.out_features);
    let steps = k.div_ceil(per).div_ceil(pad) * pad;
    let blk = L * DV;
    let blocks = n.div_ceil(blk);
    let mut w = vec![0i8; blocks * steps * blk * per];
    for (b, panel) in w.chunks_exact_mut(steps * blk * per).enumerate() {
        for (s, step) in panel.chunks_exact_mut(blk * per).enumerate() {
            for (j, group) in step.chunks_exact_mut(per).enumerate() {
                let ch = b * blk + j;
                if ch < n {
                    let row = &p.weights[ch * k..(ch + 1) * k];
                    let (lo, hi) = ((per * s).min(k), (per * s + per).min(k));
                    group[..hi - lo].copy_from_slice(&row[lo..hi]);
                }
            }
        }
    }
    (w, steps)
}

/// The sum of each `k`-long row of `weights` (one per output channel).
fn row_sums(weights: &[i8], k: usize) -> Vec<i32> {
    weights
        .chunks_exact(k)
        .map(|row| row.iter().map(|&v| i32::from(v)).sum())
        .collect()
}

/// Channel constants for the u8-offset (VNNI) kernels, whose sums carry an
/// extra `(zx + 128) * sum(w)` per channel: taken out of each bias, in
/// wrapping i32 (the true sums are within the validated bound).
fn offset_rq(bias: &[i32], requant: &[Requant], wsum: &[i32], zx: i8) -> Vec<ChanRq> {
    let offset = i32::from(zx) + 128;
    let bias: Vec<i32> = bias
        .iter()
        .zip(wsum)
        .map(|(&b, &sw)| b.wrapping_sub(offset.wrapping_mul(sw)))
        .collect();
    chan_rq(&bias, requant)
}

/// Pack an operator's weights for the fast path (`None`: it has none).
pub(crate) fn prepare(isa: Avx2, op: &Op) -> Option<Pack> {
    match op {
        Op::Dense(p) => Some(prepare_dense(isa, p)),
        Op::Conv2d(p) => prepare_conv(isa, p),
        _ => None,
    }
}

fn prepare_dense(isa: Avx2, p: &DenseParams) -> Pack {
    if let Some(vnni) = isa.vnni() {
        let pad = if vnni.amx().is_some() { amx::TILE } else { 1 };
        let (w, steps) = dense_panel::<4>(p, pad);
        let wsum = row_sums(&p.weights, p.in_features);
        return Pack::DenseVnni { w, steps, wsum };
    }
    let (w, steps) = dense_panel::<2>(p, 1);
    Pack::Dense {
        w,
        steps,
        rq: chan_rq(&p.bias, &p.requant),
    }
}

fn prepare_conv(isa: Avx2, p: &Conv2dParams) -> Option<Pack> {
    if p.in_channels / p.groups == 1 {
        return prepare_depthwise(p);
    }
    // Fewer output channels per group than a block leaves most of every
    // block empty: measured up to 45x slower than the portable im2col.
    if p.out_channels / p.groups < CB {
        return None;
    }
    let blocks = (p.out_channels / p.groups).div_ceil(CB);
    let pairs = |v: [i8; 4]| pair(i16::from(v[0]), i16::from(v[1]));
    let (w, steps) = conv_panel::<2>(p, blocks, pairs);
    let quads = (p.stride == [1, 1] && isa.vnni().is_some()).then(|| conv_quads(p, blocks));
    let tiles = (quads.is_some()
        && p.in_channels / p.groups >= AMX_MIN_CHANNELS
        && isa.vnni().and_then(|v| v.amx()).is_some())
    .then(|| conv_tiles(p));
    Some(Pack::Conv {
        w,
        steps,
        blocks,
        rq: chan_rq(&p.bias, &p.requant),
        quads,
        tiles,
    })
}

/// Depthwise weights as horizontal tap pairs (stride 1 only).
fn prepare_depthwise(p: &Conv2dParams) -> Option<Pack> {
    if p.stride != [1, 1] {
        return None;
    }
    let [kh, kw] = p.kernel;
    let kwp = kw.div_ceil(2);
    let steps = kh * kwp;
    let mut w = vec![0i32; p.out_channels * steps];
    for (ch, dst) in w.chunks_exact_mut(steps).enumerate() {
        let wk = &p.weights[ch * kh * kw..(ch + 1) * kh * kw];
        for ky in 0..kh {
            for j in 0..kwp {
                let a = i16::from(wk[ky * kw + 2 * j]);
                let b = if 2 * j + 1 < kw {
                    i16::from(wk[ky * kw + 2 * j + 1])
                } else {
                    0
                };
                dst[ky * kwp + j] = pair(a, b);
            }
        }
    }
    Some(Pack::Depthwise {
        w,
        steps,
        rq: chan_rq(&p.bias, &p.requant),
    })
}

/// Run `op` on the fast path if it has one for these shapes (`None`: use the portable path).
pub(crate) fn execute(
    isa: Avx2,
    pack: &Pack,
    op: &Op,
    x: &Tensor,
    out: &TensorInfo,
    threads: usize,
) -> Option<Tensor> {
    match (op, pack) {
        (Op::Dense(p), Pack::Dense { w, steps, rq }) => Some(dense(
            DenseKernel::Pairs(isa, w, rq),
            p,
            *steps,
            x,
            out,
            threads,
        )),
        (Op::Dense(p), Pack::DenseVnni { w, steps, wsum }) => {
            let vnni = isa.vnni()?;
            Some(dense(
                DenseKernel::Quads(vnni, w, wsum),
                p,
                *steps,
                x,
                out,
                threads,
            ))
        }
        (
            Op::Conv2d(p),
            Pack::Conv {
                w,
                steps,
                blocks,
                rq,
                quads,
                tiles,
            },
        ) => Some(conv(
            isa,
            p,
            w,
            *steps,
            *blocks,
            rq,
            quads.as_ref(),
            tiles.as_ref(),
            x,
            out,
            threads,
        )),
        (Op::Conv2d(p), Pack::Depthwise { w, steps, rq }) => {
            depthwise(isa, p, w, *steps, rq, x, out, threads)
        }
        _ => None,
    }
}

fn mode_of(zero_point: i8, lo: i8, hi: i8) -> OutMode {
    OutMode { zero_point, lo, hi }
}

/// Run `f(part, slice)` over consecutive slices of `data`, `len` elements for
/// each part, in scoped threads when there is more than one part.
fn split<T: Send, R: Send>(data: &mut [T], parts: Vec<(R, usize)>, f: impl Fn(R, &mut [T]) + Sync) {
    let mut rest = data;
    let mut slices = Vec::with_capacity(parts.len());
    for (r, len) in parts {
        let (head, tail) = rest.split_at_mut(len);
        slices.push((r, head));
        rest = tail;
    }
    if slices.len() > 1 {
        std::thread::scope(|s| {
            for (r, slice) in slices {
                let f = &f;
                s.spawn(move || f(r, slice));
            }
        });
    } else {
        for (r, slice) in slices {
            f(r, slice);
        }
    }
}

fn slice_of(o: &mut Out, at: usize, len: usize) -> OutSlice<'_> {
    match o {
        Out::I8(v) => OutSlice::I8(&mut v[at..at + len]),
        Out::I32(v) => OutSlice::I32(&mut v[at..at + len]),
    }
}

/// Split `channels` output planes (`plane` elements each, back to back in `dst`)
/// into at most `threads` runs of whole blocks of `per` channels, and run
/// `f(channel range, planes of those channels)` on each.
fn split_channels(
    dst: OutSlice<'_>,
    per: usize,
    channels: usize,
    plane: usize,
    threads: usize,
    f: impl Fn(std::ops::Range<usize>, &mut OutSlice<'_>) + Sync,
) {
    let parts: Vec<(std::ops::Range<usize>, usize)> = ranges(channels.div_ceil(per), threads, 1)
        .into_iter()
        .map(|r| {
            let ch = r.start * per..(r.end * per).min(channels);
            let len = ch.len() * plane;
            (ch, len)
        })
        .collect();
    match dst {
        OutSlice::I8(d) => split(d, parts, |r, s| f(r, &mut OutSlice::I8(s))),
        OutSlice::I32(d) => split(d, parts, |r, s| f(r, &mut OutSlice::I32(s))),
    }
}

#[allow(clippy::too_many_arguments)]
/// The packed weights of a dense layer and the kernel that reads them.
#[derive(Clone, Copy)]
enum DenseKernel<'a> {
    /// [`Pack::Dense`]: i16 pairs, AVX2 `vpmaddwd`; the channels' constants.
    Pairs(Avx2, &'a [i8], &'a [ChanRq]),
    /// [`Pack::DenseVnni`]: u8 x i8 quads, AVX-VNNI `vpdpbusd`; weight sums.
    Quads(Vnni, &'a [i8], &'a [i32]),
}

fn dense(
    kernel: DenseKernel<'_>,
    p: &DenseParams,
    steps: usize,
    x: &Tensor,
    out: &TensorInfo,
    threads: usize,
) -> Tensor {
    let (k, n) = (p.in_features, p.out_features);
    let xs = x.as_i8().expect("validated: i8 input");
    let rows = xs.len() / k;
    let zx = i16::from(x.zero_point);
    let per_step = match kernel {
        DenseKernel::Pairs(..) => 2,
        DenseKernel::Quads(..) => 4,
    };
    // Activations in groups of `DR` rows, each group step-major: one
    // contiguous read per step of the micro-kernel. Pairs hold `x - zx` as
    // i16; quads hold `x + 128` as u8, and the bias absorbs the difference:
    // sum((x + 128) * w) - (zx + 128) * sum(w) = sum((x - zx) * w), exact in
    // wrapping i32 because validation bounds the true sum.
    let amx = match kernel {
        DenseKernel::Quads(v, ..)
            if rows >= AMX_MIN_ROWS
                && rows * k * n >= AMX_MIN_MACS
                && steps.is_multiple_of(amx::TILE) =>
        {
            v.amx()
        }
        _ => None,
    };
    // For AMX: `rows` (padded to a multiple of 16) of `4 * steps` u8.
    let mut xa = Vec::new();
    let mut xp = Vec::new();
    if amx.is_some() {
        let kp = 4 * steps;
        xa = vec![0u8; rows.div_ceil(amx::TILE) * amx::TILE * kp];
        for (dst, src) in xa.chunks_exact_mut(kp).zip(xs.chunks_exact(k)) {
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = (v as u8) ^ 0x80;
            }
        }
    } else {
        xp = vec![0i32; rows * steps];
    }
    for (g, panel) in xp.chunks_mut(DR * steps).enumerate() {
        let nr = panel.len() / steps;
        for i in 0..nr {
            let src = &xs[(g * DR + i) * k..(g * DR + i + 1) * k];
            for (s, grp) in src.chunks(per_step).enumerate() {
                panel[s * nr + i] = match kernel {
                    DenseKernel::Pairs(..) => {
                        let hi = grp.get(1).map_or(0, |&v| i16::from(v) - zx);
                        pair(i16::from(grp[0]) - zx, hi)
                    }
                    DenseKernel::Quads(..) => {
                        let u = |j: usize| grp.get(j).map_or(0, |&v| (v as u8) ^ 0x80);
                        i32::from_le_bytes([u(0), u(1), u(2), u(3)])
                    }
                };
            }
        }
    }
    let quad_rq;
    let (w, rq) = match kernel {
        DenseKernel::Pairs(_, w, rq) => (w, rq),
        DenseKernel::Quads(_, w, wsum) => {
            quad_rq = offset_rq(&p.bias, &p.requant, wsum, x.zero_point);
            (w, &quad_rq[..])
        }
    };
    let blk = L * DV;
    let panel = steps * blk * per_step;
    let mode = mode_of(out.zero_point, p.act_min, p.act_max);
    let parts = ranges(n.div_ceil(blk), threads, 1);
    let compute = |r: std::ops::Range<usize>| -> Out {
        let (c0, c1) = (r.start * blk, (r.end * blk).min(n));
        let mut o = Out::new(p.out_dtype, rows * (c1 - c0));
        let len = o.len();
        let (wr, rqr, dst) = (
            &w[r.start * panel..r.end * panel],
            &rq[c0..c1],
            &mut slice_of(&mut o, 0, len),
        );
        match (kernel, amx) {
            (_, Some(amx)) => amx.dense(
                bytemuck::cast_slice(wr),
                &xa,
                rows,
                steps / amx::TILE,
                rqr,
                mode,
                dst,
            ),
            (DenseKernel::Pairs(isa, ..), _) => isa.dense(wr, &xp, rows, steps, rqr, mode, dst),
            (DenseKernel::Quads(vnni, ..), _) => vnni.dense(wr, &xp, rows, steps, rqr, mode, dst),
        }
        o
    };
    if parts.len() == 1 {
        return compute(parts[0].clone()).into_tensor(out);
    }
    let blocks: Vec<Out> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .cloned()
            .map(|r| s.spawn(move || compute(r)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("kernel thread"))
            .collect()
    });
    // Interleave the [rows, len] blocks into [rows, n].
    let mut res = Out::new(p.out_dtype, rows * n);
    for (r, b) in parts.iter().zip(&blocks) {
        let (c0, c1) = (r.start * blk, (r.end * blk).min(n));
        let len = c1 - c0;
        for row in 0..rows {
            match (&mut res, b) {
                (Out::I8(d), Out::I8(s)) => {
                    d[row * n + c0..row * n + c1].copy_from_slice(&s[row * len..(row + 1) * len])
                }
                (Out::I32(d), Out::I32(s)) => {
                    d[row * n + c0..row * n + c1].copy_from_slice(&s[row * len..(row + 1) * len])
                }
                _ => unreachable!("same dtype"),
            }
        }
    }
    res.into_tensor(out)
}

/// Channel pairs of `cg` channels of an `h x w` image, unpadded (for im2col).
fn pairs_unpadded(x: &[i8], zx: i8, cg: usize, hw: usize) -> Vec<i32> {
    let zx = i16::from(zx);
    let cp = cg.div_ceil(2);
    let mut out = vec![0i32; cp * hw];
    for (c2, dst) in out.chunks_exact_mut(hw).enumerate() {
        let a = &x[2 * c2 * hw..][..hw];
        if 2 * c2 + 1 < cg {
            let b = &x[(2 * c2 + 1) * hw..][..hw];
            for ((d, &va), &vb) in dst.iter_mut().zip(a).zip(b) {
                *d = pair(i16::from(va) - zx, i16::from(vb) - zx);
            }
        } else {
            for (d, &va) in dst.iter_mut().zip(a) {
                *d = pair(i16::from(va) - zx, 0);
            }
        }
    }
    out
}

/// im2col of positions `p0..p0 + n` into `col` (`steps` rows of `tp` pairs,
/// zero for padding and past `n`), steps in the order `(channel pair, ky, kx)`.
#[allow(clippy::too_many_arguments)]
fn im2col_pairs(
    p: &Conv2dParams,
    xc: &[i32],
    cp: usize,
    h: usize,
    w: usize,
    ow: usize,
    p0: usize,
    n: usize,
    tp: usize,
    col: &mut [i32],
) {
    let [kh, kw] = p.kernel;
    let [sh, sw] = p.stride;
    let [dh, dw] = p.dilation;
    let (pt, pl) = (p.pads[0] as isize, p.pads[1] as isize);
    let ys: Vec<isize> = (p0..p0 + n)
        .map(|q| ((q / ow) * sh) as isize - pt)
        .collect();
    let xs: Vec<isize> = (p0..p0 + n)
        .map(|q| ((q % ow) * sw) as isize - pl)
        .collect();
    let mut s = 0;
    for c2 in 0..cp {
        let chan = &xc[c2 * h * w..][..h * w];
        for ky in 0..kh {
            for kx in 0..kw {
                let row = &mut col[s * tp..(s + 1) * tp];
                let (oy, ox) = ((ky * dh) as isize, (kx * dw) as isize);
                for ((d, &y0), &x0) in row.iter_mut().zip(&ys).zip(&xs) {
                    let (iy, ix) = (y0 + oy, x0 + ox);
                    *d = if iy >= 0 && (iy as usize) < h && ix >= 0 && (ix as usize) < w {
                        chan[iy as usize * w + ix as usize]
                    } else {
                        0
                    };
                }
                row[n..].fill(0);
                s += 1;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn conv(
    isa: Avx2,
    p: &Conv2dParams,
    wpk: &[i32],
    steps: usize,
    blocks: usize,
    rq: &[ChanRq],
    quads: Option<&ConvQuads>,
    tiles: Option<&ConvTiles>,
    x: &Tensor,
    out: &TensorInfo,
    threads: usize,
) -> Tensor {
    let xs = x.as_i8().expect("validated: i8 input");
    let [n, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let (oh, ow) = (out.spec.shape[2], out.spec.shape[3]);
    let (cg, og) = (c / p.groups, p.out_channels / p.groups);
    let cp = cg.div_ceil(2);
    let [kh, kw] = p.kernel;
    let [dh, dw] = p.dilation;
    let [pt, pl, pb, pr] = p.pads;
    let (hp, wp) = (h + pt + pb, w + pl + pr);
    let plane = oh * ow;
    let tile = L * CV;
    // Direct when stride 1 and the padded copy is not much larger than the input
    // (bounded memory) and few virtual positions are wasted; else im2col tiles.
    let direct = p.stride == [1, 1] && hp * wp <= 2 * h * w + 64 && wp <= 2 * ow;
    let mode = mode_of(out.zero_point, p.act_min, p.act_max);
    let mut res = Out::new(p.out_dtype, n * p.out_channels * plane);
    // Stride 1 on an AVX-VNNI CPU: channel quads and `vpdpbusd`, with the u8
    // offset of the input taken out of the bias.
    let vnni = match (direct, quads, isa.vnni()) {
        (true, Some(q), Some(v)) => {
            Some((v, q, offset_rq(&p.bias, &p.requant, &q.wsum, x.zero_point)))
        }
        _ => None,
    };
    // ... and on AMX tiles when the CPU has them (same constants).
    let amx = match (&vnni, tiles) {
        (Some((v, ..)), Some(t)) if plane * og * cg * kh * kw >= AMX_MIN_MACS => {
            v.amx().map(|a| (a, t))
        }
        _ => None,
    };
    // AMX reads 32 positions at a time, the AVX2 kernels `tile`.
    let tile = if amx.is_some() {
        amx_kernels::BLOCK
    } else {
        tile
    };
    for img in 0..n {
        for g in 0..p.groups {
            let xg = &xs[(img * c + g * cg) * h * w..][..cg * h * w];
            let rqg = &rq[g * og..(g + 1) * og];
            let wg = &wpk[g * blocks * steps * CB..(g + 1) * blocks * steps * CB];
            let dst = slice_of(
                &mut res,
                (img * p.out_channels + g * og) * plane,
                og * plane,
            );
            if direct {
                let qt = (oh * wp).div_ceil(tile) * tile;
                let max_off = (kh - 1) * dh * wp + (kw - 1) * dw;
                let pln = Plane {
                    h,
                    w,
                    pt,
                    pl,
                    wp,
                    len: (hp * wp).max(qt + max_off),
                };
                let grid = Grid {
                    positions: qt,
                    first: 0,
                    row: wp,
                    oh,
                    ow,
                };
                let offsets = |groups: usize| {
                    let mut offs = Vec::with_capacity(groups * kh * kw);
                    for c in 0..groups {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                offs.push(c * pln.len + ky * dh * wp + kx * dw);
                            }
                        }
                    }
                    offs
                };
                if let (Some((amx, t)), Some((_, _, qrq))) = (amx, &vnni) {
                    // One chunk: the group's quads; more: 16 planes per chunk.
                    let planes = t.chunks * t.k_bytes / 4;
                    let src = isa.conv_input_quads(xg, x.zero_point, cg, &pln, planes);
                    let taps: Vec<usize> = offsets(1);
                    let shape = amx_kernels::ConvShape {
                        taps: &taps,
                        chunks: t.chunks,
                        k_bytes: t.k_bytes,
                        plane_len: pln.len,
                    };
                    let tb = kh * kw * t.chunks * amx::TILE * t.k_bytes;
                    let wt = &t.w[g * t.blocks * tb..(g + 1) * t.blocks * tb];
                    let qrqg = &qrq[g * og..(g + 1) * og];
                    let src = bytemuck::cast_slice::<i32, u8>(&src);
                    split_channels(dst, amx::TILE, og, plane, threads, |r, d| {
                        let b0 = r.start / amx::TILE;
                        let wr = &wt[b0 * tb..(b0 + r.len().div_ceil(amx::TILE)) * tb];
                        amx.conv(
                            src,
                            &shape,
                            bytemuck::cast_slice(wr),
                            &qrqg[r],
                            &grid,
                            mode,
                            d,
                        );
                    });
                    continue;
                }
                if let Some((v, q, qrq)) = &vnni {
                    let src = isa.conv_input_quads(xg, x.zero_point, cg, &pln, cg.div_ceil(4));
                    let offs = offsets(cg.div_ceil(4));
                    let qs = q.steps;
                    let wq = &q.w[g * blocks * qs * CB..(g + 1) * blocks * qs * CB];
                    let qrqg = &qrq[g * og..(g + 1) * og];
                    split_channels(dst, CB, og, plane, threads, |r, d| {
                        let wr = &wq[r.start * qs..r.start * qs + r.len().div_ceil(CB) * qs * CB];
                        v.conv(&src, &offs, wr, &qrqg[r], &grid, mode, d);
                    });
                    continue;
                }
                let src = isa.conv_input(xg, x.zero_point, cg, &pln);
                let offs = offsets(cp);
                split_channels(dst, CB, og, plane, threads, |r, d| {
                    let wr =
                        &wg[r.start * steps..r.start * steps + r.len().div_ceil(CB) * steps * CB];
                    isa.conv(&src, &offs, wr, &rqg[r], &grid, mode, d);
                });
            } else {
                let xc = pairs_unpadded(xg, x.zero_point, cg, h * w);
                split_channels(dst, CB, og, plane, threads, |r, d| {
                    let wr =
                        &wg[r.start * steps..r.start * steps + r.len().div_ceil(CB) * steps * CB];
                    let mut col = vec![0i32; steps * TP];
                    for p0 in (0..plane).step_by(TP) {
                        let cnt = TP.min(plane - p0);
                        let tp = cnt.div_ceil(tile) * tile;
                        im2col_pairs(p, &xc, cp, h, w, ow, p0, cnt, tp, &mut col);
                        let offs: Vec<usize> = (0..steps).map(|s| s * tp).collect();
                        let grid = Grid {
                            positions: tp,
                            first: p0,
                            row: ow,
                            oh,
                            ow,
                        };
                        isa.conv(&col, &offs, wr, &rqg[r.clone()], &grid, mode, d);
                    }
                });
            }
        }
    }
    res.into_tensor(out)
}

#[allow(clippy::too_many_arguments)]
fn depthwise(
    isa: Avx2,
    p: &Conv2dParams,
    wpk: &[i32],
    steps: usize,
    rq: &[ChanRq],
    x: &Tensor,
    out: &TensorInfo,
    threads: usize,
) -> Option<Tensor> {
    let xs = x.as_i8().expect("validated: i8 input");
    let [n, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let (oh, ow) = (out.spec.shape[2], out.spec.shape[3]);
    let [kh, kw] = p.kernel;
    let kwp = kw.div_ceil(2);
    let [dh, dw] = p.dilation;
    let [pt, pl, pb, pr] = p.pads;
    let (hp, wp) = (h + pt + pb, w + pl + pr);
    if hp * wp > 2 * h * w + 64 || wp > 2 * ow {
        return None;
    }
    let og = p.out_channels / c;
    let plane = oh * ow;
    let tile = L * WV;
    let qt = (oh * wp).div_ceil(tile) * tile;
    let max_off = (kh - 1) * dh * wp + 2 * (kwp - 1) * dw;
    let pln = Plane {
        h,
        w,
        pt,
        pl,
        wp,
        len: (hp * wp).max(qt + max_off),
    };
    let mut offs = Vec::with_capacity(steps);
    for ky in 0..kh {
        for j in 0..kwp {
            offs.push(ky * dh * wp + 2 * j * dw);
        }
    }
    let grid = Grid {
        positions: qt,
        first: 0,
        row: wp,
        oh,
        ow,
    };
    let mode = mode_of(out.zero_point, p.act_min, p.act_max);
    let oc = p.out_channels;
    let mut res = Out::new(p.out_dtype, n * oc * plane);
    for img in 0..n {
        let xi = &xs[img * c * h * w..][..c * h * w];
        let dst = slice_of(&mut res, img * oc * plane, oc * plane);
        split_channels(dst, 1, oc, plane, threads, |r, d| {
            isa.depthwise(
                xi,
                x.zero_point,
                &pln,
                dw,
                r.start,
                og,
                &wpk[r.start * steps..r.end * steps],
                &offs,
                &rq[r],
                &grid,
                mode,
                d,
            );
        });
    }
    Some(res.into_tensor(out))
}
