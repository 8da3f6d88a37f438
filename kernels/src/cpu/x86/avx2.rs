//! The AVX2 kernels: safe `#[target_feature(enable = "avx2")]` functions.
//!
//! Nothing here is `unsafe`: since Rust 1.86 a target-feature function may be
//! safe, and inside one the value-only `core::arch` intrinsics are safe to call.
//! Slices become vectors through `bytemuck` casts of arrays (`[i32; 8]` to
//! `__m256i`), which compile to unaligned loads after the usual bounds check.
//! Only calling these functions from code without AVX2 needs `unsafe`; that
//! happens in exactly one place, [`super::token`], behind run-time detection.
//!
//! Exactness: every product is `vpmaddwd` of i16 operands (an int8 weight and an
//! activation minus its zero point, both well inside i16), whose pair sums fit
//! in i32 exactly; accumulation is wrapping `vpaddd`, and validation proves every
//! complete sum fits in i32, so the result equals the portable kernels' bit for
//! bit whatever the order. `vpmaddubsw` (saturating i16 pair sums) is never used.
//! Where the CPU has AVX-VNNI, dense layers use `vpdpbusd` instead
//! ([`dense_vnni`]): activations offset by 128 to u8 times int8 weights, four
//! products added to an i32 lane without saturation, and the offset taken out
//! of the bias (`(zero point + 128) * sum(w)` per channel); every partial and
//! complete sum is within the same validated bound, so the bytes are the same.
//! Requantisation is the i64 rule of [`crate::quant::requantize`], done with
//! `vpmuldq` and a logical shift of a biased value (see [`requant8`]).
#![forbid(unsafe_code)]

use core::arch::x86_64::*;

use super::{ChanRq, Grid, L, Plane, blocks, pair};
use crate::cpu::OutSlice as Dst;

/// Output channels per dense micro-kernel tile, in vectors of [`L`].
pub(crate) const DV: usize = 2;
/// Activation rows per dense micro-kernel tile.
pub(crate) const DR: usize = 6;
/// Output positions per convolution tile, in vectors of [`L`].
pub(crate) const CV: usize = 2;
/// Output channels per convolution tile.
pub(crate) const CB: usize = 6;
/// Output positions per depthwise tile, in vectors of [`L`].
pub(crate) const WV: usize = 4;
/// Virtual output positions whose accumulators are kept before requantisation.
pub(crate) const CHUNK: usize = 256;
/// Output positions of a convolution computed for all channel blocks in turn.
pub(crate) const CONV_CHUNK: usize = 128;

const _: () = assert!(
    CONV_CHUNK.is_multiple_of(L * CV) && CONV_CHUNK <= CHUNK && CHUNK.is_multiple_of(L * WV)
);

/// The clamp and zero point of an int8 output, as vectors.
#[derive(Clone, Copy)]
pub(super) struct Clamp {
    /// `act_min - zero_point` in each i64 lane.
    lo: __m256i,
    /// `act_max - zero_point` in each i64 lane.
    hi: __m256i,
    /// The zero point in each i32 lane.
    zp: __m256i,
}

/// Output conversion of one op: zero point and clamp of int8 outputs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutMode {
    pub zero_point: i8,
    pub lo: i8,
    pub hi: i8,
}

#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn clamp_of(m: OutMode) -> Clamp {
    Clamp {
        lo: _mm256_set1_epi64x(i64::from(m.lo) - i64::from(m.zero_point)),
        hi: _mm256_set1_epi64x(i64::from(m.hi) - i64::from(m.zero_point)),
        zp: _mm256_set1_epi32(i32::from(m.zero_point)),
    }
}

/// Requantisation constants of 8 lanes (one channel each, or one channel in all).
/// i64 constants come as even lanes (0, 2, 4, 6) and odd lanes (1, 3, 5, 7).
#[derive(Clone, Copy)]
pub(super) struct Rq8 {
    bias: __m256i,
    mult: __m256i,
    mult_odd: __m256i,
    shift: [__m256i; 2],
    round: [__m256i; 2],
    offset: [__m256i; 2],
}

#[inline]
#[target_feature(enable = "avx2")]
fn rq_splat(c: &ChanRq) -> Rq8 {
    Rq8 {
        bias: _mm256_set1_epi32(c.bias),
        mult: _mm256_set1_epi32(c.mult),
        mult_odd: _mm256_set1_epi32(c.mult),
        shift: [_mm256_set1_epi64x(c.shift); 2],
        round: [_mm256_set1_epi64x(c.round); 2],
        offset: [_mm256_set1_epi64x(c.offset); 2],
    }
}

/// Constants of up to 8 consecutive channels, one per lane (missing lanes zero).
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn rq_lanes(cs: &[ChanRq]) -> Rq8 {
    let at = |i: usize| cs.get(i).copied().unwrap_or_default();
    let i32s = |f: &dyn Fn(&ChanRq) -> i32| -> __m256i {
        bytemuck::cast::<[i32; L], __m256i>(core::array::from_fn(|i| f(&at(i))))
    };
    let i64s = |f: &dyn Fn(&ChanRq) -> i64| -> [__m256i; 2] {
        [0, 1].map(|odd| {
            bytemuck::cast::<[i64; 4], __m256i>(core::array::from_fn(|i| f(&at(2 * i + odd))))
        })
    };
    let mult = i32s(&|c| c.mult);
    Rq8 {
        bias: i32s(&|c| c.bias),
        mult,
        mult_odd: _mm256_srli_epi64::<32>(mult),
        shift: i64s(&|c| c.shift),
        round: i64s(&|c| c.round),
        offset: i64s(&|c| c.offset),
    }
}

/// `clamp(zp + round_half_up((acc + bias) * mult / 2^shift), lo, hi)` in 8
/// lanes, exactly [`crate::quant::requantize`] of the wrapping sum `acc + bias`.
///
/// The product `p` of an i32 and a multiplier below 2^31 satisfies
/// `|p| < 2^62`, so `u = p + 2^(shift-1) + 2^62` lies in `(0, 2^64)` and a
/// logical right shift gives `floor(u / 2^shift) = round(p / 2^shift) +
/// 2^(62-shift)` (2^62 is a multiple of 2^shift): subtracting the offset leaves
/// the arithmetic-shift result that AVX2 has no instruction for. The clamp is
/// done in i64, before narrowing.
#[inline]
#[target_feature(enable = "avx2")]
fn requant8(acc: __m256i, q: &Rq8, c: &Clamp) -> __m256i {
    let v = _mm256_add_epi32(acc, q.bias);
    let even = _mm256_mul_epi32(v, q.mult);
    let odd = _mm256_mul_epi32(_mm256_srli_epi64::<32>(v), q.mult_odd);
    let fix = |p: __m256i, i: usize| {
        let y = _mm256_sub_epi64(
            _mm256_srlv_epi64(_mm256_add_epi64(p, q.round[i]), q.shift[i]),
            q.offset[i],
        );
        let y = _mm256_blendv_epi8(y, c.lo, _mm256_cmpgt_epi64(c.lo, y));
        _mm256_blendv_epi8(y, c.hi, _mm256_cmpgt_epi64(y, c.hi))
    };
    let (even, odd) = (fix(even, 0), fix(odd, 1));
    let joined = _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd));
    _mm256_add_epi32(joined, c.zp)
}

/// The low bytes of 8 i32 lanes already within int8.
#[inline]
#[target_feature(enable = "avx2")]
fn narrow(v: __m256i) -> [i8; L] {
    let n: [i8; 2 * L] = narrow16(v, v);
    let mut out = [0i8; L];
    out.copy_from_slice(&n[..L]);
    out
}

/// The low bytes of the lanes of `a` then `b`, all already within int8.
#[inline]
#[target_feature(enable = "avx2")]
fn narrow16(a: __m256i, b: __m256i) -> [i8; 2 * L] {
    // [a0-3 b0-3 | a4-7 b4-7] as i16, then as bytes (twice per 128-bit lane).
    let w = _mm256_packs_epi32(a, b);
    let bytes = _mm256_packs_epi16(w, w);
    let ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 0, 4, 1, 5));
    bytemuck::cast(_mm256_castsi256_si128(ordered))
}

#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn load(s: &[i32]) -> __m256i {
    bytemuck::cast::<[i32; L], __m256i>(s[..L].try_into().unwrap_or([0; L]))
}

/// 16 int8 weights sign-extended to i16 (8 lanes of i16 pairs).
#[inline]
#[target_feature(enable = "avx2")]
fn load_w(s: &[i8]) -> __m256i {
    let raw: [i8; 16] = s[..16].try_into().unwrap_or([0; 16]);
    _mm256_cvtepi8_epi16(bytemuck::cast::<[i8; 16], __m128i>(raw))
}

/// Dense tile: `DV` vectors of 8 output channels by `R` activation rows.
/// `w` holds, for each step (a pair of inputs), `16 * DV` int8 weights laid out
/// as i16 pairs per channel; `x[s * R + r]` is the pair of activations of row
/// `r` at step `s`.
#[inline]
#[target_feature(enable = "avx2")]
fn dense_tile<const R: usize>(w: &[i8], x: &[i32]) -> [[__m256i; DV]; R] {
    let mut acc = [[_mm256_setzero_si256(); DV]; R];
    for (ws, xs) in w.chunks_exact(16 * DV).zip(x.chunks_exact(R)) {
        let wv: [__m256i; DV] = core::array::from_fn(|v| load_w(&ws[16 * v..]));
        for (r, &xr) in xs.iter().enumerate() {
            let b = _mm256_set1_epi32(xr);
            for v in 0..DV {
                acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(wv[v], b));
            }
        }
    }
    acc
}

/// [`dense_tile`] with AVX-VNNI: `w` holds, per step (four inputs), `32 * DV`
/// int8 weights (four consecutive inputs of one channel per i32 lane);
/// `x[s * R + r]` holds the four activations of row `r` at step `s`, each
/// offset by 128 to u8. `vpdpbusd` multiplies u8 by i8 and adds the four
/// products to each i32 lane without saturation: the sum is exact.
#[inline]
#[target_feature(enable = "avx2,avxvnni")]
fn dense_tile_vnni<const R: usize>(w: &[i8], x: &[i32]) -> [[__m256i; DV]; R] {
    let mut acc = [[_mm256_setzero_si256(); DV]; R];
    for (ws, xs) in w.chunks_exact(32 * DV).zip(x.chunks_exact(R)) {
        let wv: [__m256i; DV] = core::array::from_fn(|v| {
            let raw: [i8; 32] = ws[32 * v..32 * v + 32].try_into().unwrap_or([0; 32]);
            bytemuck::cast::<[i8; 32], __m256i>(raw)
        });
        for (r, &xr) in xs.iter().enumerate() {
            let b = _mm256_set1_epi32(xr);
            for v in 0..DV {
                acc[r][v] = _mm256_dpbusd_avx_epi32(acc[r][v], b, wv[v]);
            }
        }
    }
    acc
}

/// Convolution tile: `V` vectors of 8 consecutive positions by `B` output
/// channels; step `s` reads the `8 * V` position pairs `panel[s * 8V..]` and
/// the `B` weight pairs `w[s * B..]`.
#[inline]
#[target_feature(enable = "avx2")]
fn conv_tile<const V: usize, const B: usize>(panel: &[i32], w: &[i32]) -> [[__m256i; V]; B] {
    let mut acc = [[_mm256_setzero_si256(); V]; B];
    for (xs, ws) in panel.chunks_exact(L * V).zip(w.chunks_exact(B)) {
        let xv: [__m256i; V] = core::array::from_fn(|v| load(&xs[L * v..]));
        for (j, &wp) in ws.iter().enumerate() {
            let b = _mm256_set1_epi32(wp);
            for v in 0..V {
                acc[j][v] = _mm256_add_epi32(acc[j][v], _mm256_madd_epi16(xv[v], b));
            }
        }
    }
    acc
}

/// [`conv_tile`] with AVX-VNNI: each position lane holds four input channels
/// offset to u8, each weight a quad of the same four channels as int8.
#[inline]
#[target_feature(enable = "avx2,avxvnni")]
fn conv_tile_vnni<const V: usize, const B: usize>(panel: &[i32], w: &[i32]) -> [[__m256i; V]; B] {
    let mut acc = [[_mm256_setzero_si256(); V]; B];
    for (xs, ws) in panel.chunks_exact(L * V).zip(w.chunks_exact(B)) {
        let xv: [__m256i; V] = core::array::from_fn(|v| load(&xs[L * v..]));
        for (j, &wq) in ws.iter().enumerate() {
            let b = _mm256_set1_epi32(wq);
            for v in 0..V {
                acc[j][v] = _mm256_dpbusd_avx_epi32(acc[j][v], xv[v], b);
            }
        }
    }
    acc
}

/// Depthwise tile: `V` vectors of 8 consecutive positions of one channel; step
/// `s` reads the pairs at `src[base + offs[s]..]` and the weight pair `w[s]`.
#[inline]
#[target_feature(enable = "avx2")]
fn offset_tile<const V: usize>(
    src: &[i32],
    offs: &[usize],
    base: usize,
    w: &[i32],
) -> [__m256i; V] {
    let mut acc = [_mm256_setzero_si256(); V];
    for (&o, &wp) in offs.iter().zip(w) {
        let xs = &src[base + o..base + o + L * V];
        let b = _mm256_set1_epi32(wp);
        for v in 0..V {
            acc[v] = _mm256_add_epi32(acc[v], _mm256_madd_epi16(load(&xs[L * v..]), b));
        }
    }
    acc
}

/// Write the requantised (or raw + bias) lanes `v` to `dst` (at most 8 long).
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn emit(v: __m256i, q: &Rq8, c: &Clamp, dst: &mut Dst<'_>, at: usize, n: usize) {
    match dst {
        Dst::I8(d) => d[at..at + n].copy_from_slice(&narrow(requant8(v, q, c))[..n]),
        Dst::I32(d) => {
            let r: [i32; L] = bytemuck::cast(_mm256_add_epi32(v, q.bias));
            d[at..at + n].copy_from_slice(&r[..n]);
        }
    }
}

/// Defines a dense layer function over a micro-kernel tile: the same
/// blocking and output code for the i16-pair (AVX2) and the u8-quad (AVX-VNNI)
/// layouts, which differ only in the tile and the bytes of a step.
macro_rules! dense_kernel {
    ($(#[$doc:meta])* $name:ident, $features:literal, $tile:ident, $step_bytes:expr) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        pub(crate) fn $name(
            w: &[i8],
            x: &[i32],
            rows: usize,
            steps: usize,
            rq: &[ChanRq],
            mode: OutMode,
            dst: &mut Dst<'_>,
        ) {
            let len = rq.len();
            let c = clamp_of(mode);
            let panel = steps * $step_bytes;
            for (b, wb) in w.chunks_exact(panel).enumerate() {
                let ch0 = b * L * DV;
                if ch0 >= len {
                    break;
                }
                let q: [Rq8; DV] = core::array::from_fn(|v| {
                    let lo = (ch0 + L * v).min(len);
                    rq_lanes(&rq[lo..(lo + L).min(len)])
                });
                let mut r = 0;
                while r < rows {
                    let nr = (rows - r).min(DR);
                    let xg = &x[r * steps..(r + nr) * steps];
                    let mut acc = [[_mm256_setzero_si256(); DV]; DR];
                    match nr {
                        DR => acc = $tile::<DR>(wb, xg),
                        5 => acc[..5].copy_from_slice(&$tile::<5>(wb, xg)),
                        4 => acc[..4].copy_from_slice(&$tile::<4>(wb, xg)),
                        3 => acc[..3].copy_from_slice(&$tile::<3>(wb, xg)),
                        2 => acc[..2].copy_from_slice(&$tile::<2>(wb, xg)),
                        _ => acc[..1].copy_from_slice(&$tile::<1>(wb, xg)),
                    }
                    for (i, accr) in acc.iter().enumerate().take(nr) {
                        for (v, &a) in accr.iter().enumerate() {
                            let ch = ch0 + L * v;
                            if ch < len {
                                emit(a, &q[v], &c, dst, (r + i) * len + ch, L.min(len - ch));
                            }
                        }
                    }
                    r += nr;
                }
            }
        }
    };
}

dense_kernel!(
    /// Dense layer for the output channels of blocks `blocks` (each `8 * DV`
    /// channels). `w` is the packed weight panel of those blocks; `x` the
    /// activation pairs in groups of `DR` rows (the last group may be shorter),
    /// each group stored step-major (`[step][row]`); `rq` the constants of the
    /// channels; `dst` is `[rows, len]` where `len = rq.len()`.
    dense, "avx2", dense_tile, 16 * DV
);

dense_kernel!(
    /// [`dense`] over the u8-quad layout of [`dense_tile_vnni`]: a step is
    /// four inputs, `x` holds activation quads offset to u8, and `rq`'s biases
    /// already subtract `(zero point + 128) * sum(w)` of each channel.
    dense_vnni, "avx2,avxvnni", dense_tile_vnni, 32 * DV
);

/// Defines a convolution function over a micro-kernel tile: the same
/// chunking and output code for i16 pairs (AVX2) and u8 quads (AVX-VNNI).
macro_rules! conv_kernel {
    ($(#[$doc:meta])* $name:ident, $features:literal, $tile:ident) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $features)]
        pub(crate) fn $name(
            src: &[i32],
            offs: &[usize],
            w: &[i32],
            rq: &[ChanRq],
            grid: &Grid,
            mode: OutMode,
            dst: &mut Dst<'_>,
        ) {
            const T: usize = L * CV;
            let c = clamp_of(mode);
            let steps = offs.len();
            let mut scratch = [[0i32; CONV_CHUNK]; CB];
            let mut panel = vec![0i32; CONV_CHUNK / T * steps * T];
            let mut q0 = 0;
            while q0 < grid.positions {
                let qc = CONV_CHUNK.min(grid.positions - q0);
                let panel = &mut panel[..qc / T * steps * T];
                for (t, pt) in panel.chunks_exact_mut(steps * T).enumerate() {
                    let base = q0 + t * T;
                    for (d, &o) in pt.chunks_exact_mut(T).zip(offs) {
                        d.copy_from_slice(&src[base + o..base + o + T]);
                    }
                }
                for (b, wb) in w.chunks_exact(steps * CB).enumerate() {
                    let ch0 = b * CB;
                    if ch0 >= rq.len() {
                        break;
                    }
                    for (t, pt) in panel.chunks_exact(steps * T).enumerate() {
                        let acc = $tile::<CV, CB>(pt, wb);
                        for (row, a) in scratch.iter_mut().zip(acc) {
                            for (v, &av) in a.iter().enumerate() {
                                row[t * T + L * v..t * T + L * (v + 1)].copy_from_slice(&bytemuck::cast::<
                                    __m256i,
                                    [i32; L],
                                >(
                                    av
                                ));
                            }
                        }
                    }
                    for (j, row) in scratch.iter().enumerate() {
                        let ch = ch0 + j;
                        if ch < rq.len() {
                            finish_row(&row[..qc], &rq[ch], &c, grid, q0, dst, ch * grid.plane());
                        }
                    }
                }
                q0 += qc;
            }
        }
    };
}

conv_kernel!(
    /// Convolution over one packed input for output channel blocks `w` (each
    /// `steps * CB` weight pairs, channels `rq[CB * b..]`), positions of `grid`;
    /// step `s` of position `q` reads the pair `src[q + offs[s]]`. `dst` holds the
    /// output planes of the channels of `rq`, back to back.
    ///
    /// For each chunk of positions, the pairs every tile reads are first copied into
    /// a sequential panel (`[tile][step][8 * CV]`, one 64-byte copy per step and
    /// tile, shared by all channel blocks), so the micro-kernel walks both operands
    /// in order, with no offset table or per-step bounds check.
    conv, "avx2", conv_tile
);

conv_kernel!(
    /// [`conv`] over u8 channel quads ([`conv_tile_vnni`]): `src` from
    /// `conv_input_quads`, `w` weight quads, and `rq`'s biases already
    /// subtract `(zero point + 128) * sum(w)` of each channel.
    conv_vnni, "avx2,avxvnni", conv_tile_vnni
);

/// Defines a depthwise convolution over the pair layout with a given
/// requantisation (AVX2's 8 lanes, or AVX-512's 16 where the CPU has it).
macro_rules! depthwise_kernel {
    ($(#[$doc:meta])* $name:ident, $features:literal, $clamp:path, $finish:path) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $features)]
        pub(crate) fn $name(
            x: &[i8],
            zx: i8,
            pln: &Plane,
            dw: usize,
            ch0: usize,
            og: usize,
            w: &[i32],
            offs: &[usize],
            rq: &[ChanRq],
            grid: &Grid,
            mode: OutMode,
            dst: &mut Dst<'_>,
        ) {
            let c = $clamp(mode);
            let hw = pln.h * pln.w;
            let mut wide = vec![0i16; pln.len + dw];
            let mut pairs = vec![0i32; pln.len];
            let mut scratch = [0i32; CHUNK];
            let mut last = usize::MAX;
            for (i, (wc, q)) in w.chunks_exact(offs.len()).zip(rq).enumerate() {
                let ci = (ch0 + i) / og;
                if ci != last {
                    last = ci;
                    // Only the interior is ever written, so the padding stays zero.
                    let src = &x[ci * hw..(ci + 1) * hw];
                    let z = i16::from(zx);
                    for (y, row) in src.chunks_exact(pln.w).enumerate() {
                        let d = &mut wide[(y + pln.pt) * pln.wp + pln.pl..][..pln.w];
                        let widen = |d: &mut [i16], s: &[i8]| {
                            for (d, &v) in d.iter_mut().zip(s) {
                                *d = i16::from(v) - z;
                            }
                        };
                        if !blocks::<16>(pln.w, |i| widen(&mut d[i..i + 16], &row[i..i + 16])) {
                            widen(d, row);
                        }
                    }
                    for (d, (&a, &b)) in pairs.iter_mut().zip(wide.iter().zip(&wide[dw..])) {
                        *d = pair(a, b);
                    }
                }
                let mut q0 = 0;
                while q0 < grid.positions {
                    let qc = CHUNK.min(grid.positions - q0);
                    for t in (0..qc).step_by(L * WV) {
                        let acc = offset_tile::<WV>(&pairs, offs, q0 + t, wc);
                        for (v, &av) in acc.iter().enumerate() {
                            scratch[t + L * v..t + L * (v + 1)]
                                .copy_from_slice(&bytemuck::cast::<__m256i, [i32; L]>(av));
                        }
                    }
                    $finish(&scratch[..qc], q, &c, grid, q0, dst, i * grid.plane());
                    q0 += qc;
                }
            }
        }
    };
}

depthwise_kernel!(
    /// Depthwise convolution (one input channel per group, stride 1) of output
    /// channels `ch0..ch0 + rq.len()` of one image `x` (`og` outputs per input
    /// channel). Each input plane is widened into a zero-padded plane, then into a
    /// plane of pairs `(x[q], x[q + dw])`, so a step (two horizontal taps) is one
    /// load at the fixed offset `offs[step]`.
    depthwise, "avx2", clamp_of, finish_row
);

depthwise_kernel!(
    /// [`depthwise`] requantised with AVX-512 ([`super::avx512::finish_row`]).
    depthwise_avx512, "avx2,avx512f", super::avx512::clamp16, super::avx512::finish_row
);

/// Four channels `(4i..4i + 4)` of `cg` channels of one image, each offset by
/// 128 to u8, into `planes` (at least `cg.div_ceil(4)`) planes of `pln.len`
/// quads; padding, slack and the extra planes hold the zero point (offset
/// too), which is what padding means. Rows are interleaved 16 positions at a
/// time with byte and word unpacks.
#[target_feature(enable = "avx2")]
pub(crate) fn conv_input_quads(
    x: &[i8],
    zx: i8,
    cg: usize,
    pln: &Plane,
    planes: usize,
) -> Vec<i32> {
    let hw = pln.h * pln.w;
    let z = (zx as u8) ^ 0x80;
    let mut out = vec![i32::from_le_bytes([z; 4]); planes * pln.len];
    let flip = _mm_set1_epi8(-128);
    for (c4, dst) in out
        .chunks_exact_mut(pln.len)
        .enumerate()
        .take(cg.div_ceil(4))
    {
        let chans: [Option<&[i8]>; 4] = core::array::from_fn(|i| {
            let ci = 4 * c4 + i;
            (ci < cg).then(|| &x[ci * hw..(ci + 1) * hw])
        });
        for y in 0..pln.h {
            let d = &mut dst[(y + pln.pt) * pln.wp + pln.pl..][..pln.w];
            let row = |i: usize| chans[i].map(|ch| &ch[y * pln.w..(y + 1) * pln.w]);
            let rows: [Option<&[i8]>; 4] = core::array::from_fn(row);
            let interleave = |d: &mut [i32], at: usize| {
                let v: [__m128i; 4] = core::array::from_fn(|i| match rows[i] {
                    Some(r) => {
                        let raw: [i8; 16] = r[at..at + 16].try_into().unwrap_or([0; 16]);
                        _mm_xor_si128(bytemuck::cast(raw), flip)
                    }
                    None => _mm_set1_epi8(z as i8),
                });
                let (lo01, hi01) = (_mm_unpacklo_epi8(v[0], v[1]), _mm_unpackhi_epi8(v[0], v[1]));
                let (lo23, hi23) = (_mm_unpacklo_epi8(v[2], v[3]), _mm_unpackhi_epi8(v[2], v[3]));
                let q = [
                    _mm_unpacklo_epi16(lo01, lo23),
                    _mm_unpackhi_epi16(lo01, lo23),
                    _mm_unpacklo_epi16(hi01, hi23),
                    _mm_unpackhi_epi16(hi01, hi23),
                ];
                for (i, qi) in q.iter().enumerate() {
                    d[at + 4 * i..at + 4 * i + 4]
                        .copy_from_slice(&bytemuck::cast::<__m128i, [i32; 4]>(*qi));
                }
            };
            if !blocks::<16>(pln.w, |at| interleave(d, at)) {
                for (xi, dq) in d.iter_mut().enumerate() {
                    let q = core::array::from_fn(|i| rows[i].map_or(z, |r| (r[xi] as u8) ^ 0x80));
                    *dq = i32::from_le_bytes(q);
                }
            }
        }
    }
    out
}

/// Channel pairs `(2i, 2i + 1)` of `cg` channels (the last one alone when `cg` is
/// odd) of one image, minus the zero point, into zero-padded planes of `pln.len`.
#[target_feature(enable = "avx2")]
pub(crate) fn conv_input(x: &[i8], zx: i8, cg: usize, pln: &Plane) -> Vec<i32> {
    let hw = pln.h * pln.w;
    let zx = i16::from(zx);
    let cp = cg.div_ceil(2);
    let mut out = vec![0i32; cp * pln.len];
    for (c2, dst) in out.chunks_exact_mut(pln.len).enumerate() {
        let a = &x[2 * c2 * hw..(2 * c2 + 1) * hw];
        let b = (2 * c2 + 1 < cg).then(|| &x[(2 * c2 + 1) * hw..(2 * c2 + 2) * hw]);
        for y in 0..pln.h {
            let d = &mut dst[(y + pln.pt) * pln.wp + pln.pl..][..pln.w];
            let ra = &a[y * pln.w..][..pln.w];
            match b {
                Some(b) => {
                    let rb = &b[y * pln.w..][..pln.w];
                    for ((d, &va), &vb) in d.iter_mut().zip(ra).zip(rb) {
                        *d = pair(i16::from(va) - zx, i16::from(vb) - zx);
                    }
                }
                None => {
                    for (d, &va) in d.iter_mut().zip(ra) {
                        *d = pair(i16::from(va) - zx, 0);
                    }
                }
            }
        }
    }
    out
}

/// Requantise the accumulators of virtual positions `q0..q0 + row.len()` of one
/// channel (a multiple of 16 long) and store the real ones into its output
/// plane at `dst[at..]`.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn finish_row(
    row: &[i32],
    c: &ChanRq,
    clamp: &Clamp,
    grid: &Grid,
    q0: usize,
    dst: &mut Dst<'_>,
    at: usize,
) {
    let q = rq_splat(c);
    match dst {
        Dst::I8(d) => {
            let mut buf = [0i8; CHUNK + L];
            for (o, v) in buf.chunks_exact_mut(2 * L).zip(row.chunks_exact(2 * L)) {
                let (a, b) = (load(v), load(&v[L..]));
                o.copy_from_slice(&narrow16(requant8(a, &q, clamp), requant8(b, &q, clamp)));
            }
            grid.scatter(&buf, row.len(), q0, &mut d[at..at + grid.plane()]);
        }
        Dst::I32(d) => {
            let mut buf = [0i32; CHUNK + L];
            for (o, v) in buf.chunks_exact_mut(L).zip(row.chunks_exact(L)) {
                o.copy_from_slice(&bytemuck::cast::<__m256i, [i32; L]>(_mm256_add_epi32(
                    load(v),
                    q.bias,
                )));
            }
            grid.scatter(&buf, row.len(), q0, &mut d[at..at + grid.plane()]);
        }
    }
}
