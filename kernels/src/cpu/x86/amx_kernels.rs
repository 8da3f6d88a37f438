//! Dense and stride-1 convolution layers on AMX tiles (see [`super::amx`]),
//! with the requantisation and output code of the AVX2 kernels.
//!
//! Both compute 2 x 2 blocks of 16 x 16 accumulator tiles, one reduction step
//! of up to 64 int8 at a time, then requantise the block with AVX2:
//!
//! * **Dense**: `C[row][channel] = A[row][k] * B[k][channel]`. `A` is the
//!   activations offset by 128 to u8, rows padded to a multiple of 16 and the
//!   reduction to a multiple of 64 with zeros; `B` is the AVX-VNNI weight
//!   panel ([`super::Pack::DenseVnni`]), whose 16-channel blocks of four-input
//!   quads are exactly AMX's `B` layout once the steps are padded to a
//!   multiple of 16. The bias already subtracts `(zero point + 128) * sum(w)`.
//! * **Convolution**: `C[channel][position] = A[channel][c] * B[c][position]`
//!   per kernel tap and block of up to 64 input channels. `A` is the packed
//!   weights ([`super::ConvTiles`]); `B` is 16 consecutive positions of the
//!   u8 channel-quad planes of `conv_input_quads` at the tap's fixed offset,
//!   one quad plane per tile row: no im2col, as in the AVX2 direct path.
//!
//! Every CPU with AMX has AVX-512, so requantisation works on 16 lanes with
//! its 64-bit arithmetic shift and min/max ([`requant16`]), which AVX2 lacks.
#![forbid(unsafe_code)]

use core::arch::x86_64::*;

use super::amx::{Granted, ROW_BYTES, Signs, TILE};
use super::avx2::OutMode;
use super::{ChanRq, Grid};
use crate::cpu::OutSlice as Dst;

/// Requantisation constants of 16 lanes (one channel each, or one in all);
/// i64 values for the even lanes (0, 2, ..) and the odd lanes (1, 3, ..).
#[derive(Clone, Copy)]
struct Rq16 {
    bias: __m512i,
    /// Each lane's multiplier in the low half of its i64 lane pair.
    mult: [__m512i; 2],
    shift: [__m512i; 2],
    round: [__m512i; 2],
}

/// Clamp (relative to the zero point) and zero point of int8 outputs.
#[derive(Clone, Copy)]
struct Clamp16 {
    lo: __m512i,
    hi: __m512i,
    zp: __m512i,
}

#[inline]
#[target_feature(enable = "avx2,avx512f")]
fn clamp16(m: OutMode) -> Clamp16 {
    Clamp16 {
        lo: _mm512_set1_epi64(i64::from(m.lo) - i64::from(m.zero_point)),
        hi: _mm512_set1_epi64(i64::from(m.hi) - i64::from(m.zero_point)),
        zp: _mm512_set1_epi32(i32::from(m.zero_point)),
    }
}

/// Constants of up to 16 consecutive channels, one per lane (missing ones zero).
#[inline]
#[target_feature(enable = "avx2,avx512f")]
fn rq16(cs: &[ChanRq]) -> Rq16 {
    let at = |i: usize| cs.get(i).copied().unwrap_or_default();
    let i64s = |f: &dyn Fn(&ChanRq) -> i64| -> [__m512i; 2] {
        [0, 1].map(|odd| {
            bytemuck::cast::<[i64; 8], __m512i>(core::array::from_fn(|i| f(&at(2 * i + odd))))
        })
    };
    Rq16 {
        bias: bytemuck::cast::<[i32; 16], __m512i>(core::array::from_fn(|i| at(i).bias)),
        mult: i64s(&|c| i64::from(c.mult)),
        shift: i64s(&|c| c.shift),
        // Missing lanes (the default, shift 0) round by nothing.
        round: i64s(&|c| (1i64 << c.shift) >> 1),
    }
}

/// [`rq16`] of one channel in every lane.
#[inline]
#[target_feature(enable = "avx2,avx512f")]
fn rq16_splat(c: &ChanRq) -> Rq16 {
    Rq16 {
        bias: _mm512_set1_epi32(c.bias),
        mult: [_mm512_set1_epi64(i64::from(c.mult)); 2],
        shift: [_mm512_set1_epi64(c.shift); 2],
        round: [_mm512_set1_epi64((1i64 << c.shift) >> 1); 2],
    }
}

/// `clamp(zp + round_half_up((acc + bias) * mult / 2^shift), lo, hi)` in 16
/// lanes: [`crate::quant::requantize`] of the wrapping sum `acc + bias`, in
/// i64 (`|product| < 2^62`, so adding the rounding term cannot overflow).
#[inline]
#[target_feature(enable = "avx2,avx512f")]
fn requant16(acc: __m512i, q: &Rq16, c: &Clamp16) -> [i8; 16] {
    let v = _mm512_add_epi32(acc, q.bias);
    let fix = |p: __m512i, i: usize| {
        let y = _mm512_srav_epi64(_mm512_add_epi64(p, q.round[i]), q.shift[i]);
        _mm512_max_epi64(_mm512_min_epi64(y, c.hi), c.lo)
    };
    let even = fix(_mm512_mul_epi32(v, q.mult[0]), 0);
    let odd = fix(_mm512_mul_epi32(_mm512_srli_epi64::<32>(v), q.mult[1]), 1);
    let joined = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64::<32>(odd));
    bytemuck::cast(_mm512_cvtepi32_epi8(_mm512_add_epi32(joined, c.zp)))
}

#[inline]
#[target_feature(enable = "avx2,avx512f")]
fn load16(s: &[i32]) -> __m512i {
    bytemuck::cast::<[i32; 16], __m512i>(s[..16].try_into().unwrap_or([0; 16]))
}

/// Write 16 accumulators (`n` of them real) requantised, or plus the bias.
#[inline]
#[target_feature(enable = "avx2,avx512f")]
fn emit16(acc: &[i32], q: &Rq16, c: &Clamp16, dst: &mut Dst<'_>, at: usize, n: usize) {
    let v = load16(acc);
    match dst {
        Dst::I8(d) => d[at..at + n].copy_from_slice(&requant16(v, q, c)[..n]),
        Dst::I32(d) => {
            let r: [i32; 16] = bytemuck::cast(_mm512_add_epi32(v, q.bias));
            d[at..at + n].copy_from_slice(&r[..n]);
        }
    }
}

/// Requantise one channel's accumulators of virtual positions `q0..q0 +
/// row.len()` (a multiple of 16) and store the real ones into its plane
/// `dst[at..]`.
#[inline]
#[target_feature(enable = "avx2,avx512f")]
fn finish_row(
    row: &[i32],
    c: &ChanRq,
    clamp: &Clamp16,
    grid: &Grid,
    q0: usize,
    dst: &mut Dst<'_>,
    at: usize,
) {
    let q = rq16_splat(c);
    let plane = grid.plane();
    match dst {
        Dst::I8(d) => {
            let mut buf = [0i8; POSITIONS];
            for (o, v) in buf.chunks_exact_mut(16).zip(row.chunks_exact(16)) {
                o.copy_from_slice(&requant16(load16(v), &q, clamp));
            }
            grid.scatter(&buf, row.len(), q0, &mut d[at..at + plane]);
        }
        Dst::I32(d) => {
            let mut buf = [0i32; POSITIONS];
            for (o, v) in buf.chunks_exact_mut(16).zip(row.chunks_exact(16)) {
                o.copy_from_slice(&bytemuck::cast::<__m512i, [i32; 16]>(_mm512_add_epi32(
                    load16(v),
                    q.bias,
                )));
            }
            grid.scatter(&buf, row.len(), q0, &mut d[at..at + plane]);
        }
    }
}

/// Accumulator rows (or channels) and columns of one 2 x 2 block of tiles.
pub(crate) const BLOCK: usize = 2 * TILE;
/// Positions of a convolution computed for every channel block in turn.
pub(crate) const POSITIONS: usize = 128;

/// Dense layer for `rq.len()` output channels. `w` holds their 16-channel
/// blocks, each `k_steps * 1024` bytes (`k_steps` steps of 64 inputs); `x` is
/// `rows` rows (padded with zeros to a multiple of 16) of `k_steps * 64` u8
/// activations; `dst` is `[rows, rq.len()]`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,avx512f")]
pub(crate) fn dense(
    amx: Granted,
    w: &[u8],
    x: &[u8],
    rows: usize,
    k_steps: usize,
    rq: &[ChanRq],
    mode: OutMode,
    dst: &mut Dst<'_>,
) {
    let len = rq.len();
    let k_pad = k_steps * ROW_BYTES;
    let block_bytes = k_steps * TILE * ROW_BYTES;
    let c = clamp16(mode);
    let mut t = amx.tiles(ROW_BYTES, Signs::UnsignedA);
    let mut acc = [0i32; BLOCK * BLOCK];
    let blocks = len.div_ceil(TILE);
    for b0 in (0..blocks).step_by(2) {
        let nb = (blocks - b0).min(2);
        let ch0 = b0 * TILE;
        let q: [_; 2] = core::array::from_fn(|v| {
            let lo = (ch0 + TILE * v).min(len);
            rq16(&rq[lo..(lo + TILE).min(len)])
        });
        for r0 in (0..rows).step_by(BLOCK) {
            let nr = if rows - r0 > TILE { 2 } else { 1 };
            t.zero();
            for s in 0..k_steps {
                for i in 0..nr {
                    t.load_a(i, x, (r0 + TILE * i) * k_pad + s * ROW_BYTES, k_pad);
                }
                for j in 0..nb {
                    t.load_b(j, w, (b0 + j) * block_bytes + s * TILE * ROW_BYTES, ROW_BYTES);
                }
                for i in 0..nr {
                    for j in 0..nb {
                        t.mul(i, j);
                    }
                }
            }
            for i in 0..nr {
                for j in 0..nb {
                    t.store(i, j, &mut acc, TILE * i * BLOCK + TILE * j, BLOCK);
                }
            }
            for r in 0..(rows - r0).min(BLOCK) {
                for (j, qj) in q.iter().enumerate().take(nb) {
                    let ch = ch0 + TILE * j;
                    let a = &acc[r * BLOCK + TILE * j..];
                    emit16(a, qj, &c, dst, (r0 + r) * len + ch, TILE.min(len - ch));
                }
            }
        }
    }
}

/// Geometry of one stride-1 convolution on tiles.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvShape<'a> {
    /// Offset of each kernel tap from the output position, in the padded plane.
    pub taps: &'a [usize],
    /// Input channel blocks per tap.
    pub chunks: usize,
    /// Bytes of reduction per step: 4 per channel quad, at most 64.
    pub k_bytes: usize,
    /// Elements of one quad plane (`Plane::len`).
    pub plane_len: usize,
}

/// Convolution of one image and group for output channels `rq` (16-channel
/// blocks of `w`, each `taps * chunks` tiles of `16 * k_bytes` weights) at the
/// positions of `grid` (a multiple of 32), reading the quad planes `src`
/// (bytes of `conv_input_quads`, `chunks * 16` planes when `chunks > 1`).
/// `rq`'s biases already subtract `(zero point + 128) * sum(w)`. `dst` holds
/// the output planes of the channels of `rq`, back to back.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,avx512f")]
pub(crate) fn conv(
    amx: Granted,
    src: &[u8],
    shape: &ConvShape<'_>,
    w: &[u8],
    rq: &[ChanRq],
    grid: &Grid,
    mode: OutMode,
    dst: &mut Dst<'_>,
) {
    let c = clamp16(mode);
    let kb = shape.k_bytes;
    let tile_bytes = TILE * kb;
    let steps = shape.taps.len() * shape.chunks;
    let block_bytes = steps * tile_bytes;
    let stride = shape.plane_len * 4;
    let blocks = rq.len().div_ceil(TILE);
    let mut t = amx.tiles(kb, Signs::UnsignedB);
    let mut scratch = vec![0i32; BLOCK * POSITIONS];
    let mut q0 = 0;
    while q0 < grid.positions {
        let qc = POSITIONS.min(grid.positions - q0);
        for b0 in (0..blocks).step_by(2) {
            let nb = (blocks - b0).min(2);
            for p in (0..qc).step_by(BLOCK) {
                let pos = q0 + p;
                t.zero();
                for (ti, &off) in shape.taps.iter().enumerate() {
                    for cc in 0..shape.chunks {
                        let wt = (ti * shape.chunks + cc) * tile_bytes;
                        for i in 0..nb {
                            t.load_a(i, w, (b0 + i) * block_bytes + wt, kb);
                        }
                        let at = (cc * TILE * shape.plane_len + pos + off) * 4;
                        t.load_b(0, src, at, stride);
                        t.load_b(1, src, at + TILE * 4, stride);
                        for i in 0..nb {
                            t.mul(i, 0);
                            t.mul(i, 1);
                        }
                    }
                }
                for i in 0..nb {
                    for j in 0..2 {
                        t.store(i, j, &mut scratch, TILE * i * POSITIONS + p + TILE * j, POSITIONS);
                    }
                }
            }
            for j in 0..nb * TILE {
                let ch = b0 * TILE + j;
                if ch < rq.len() {
                    let row = &scratch[j * POSITIONS..j * POSITIONS + qc];
                    finish_row(row, &rq[ch], &c, grid, q0, dst, ch * grid.plane());
                }
            }
        }
        q0 += qc;
    }
}
