//! AVX-512 requantisation: 16 lanes at a time, with the 64-bit arithmetic
//! shift (`vpsravq`) and min/max (`vpminsq`, `vpmaxsq`) that AVX2 lacks, so
//! the rounding rule of [`crate::quant::requantize`] is written directly, in
//! about half the operations per output of `avx2::requant8`. Used by the AMX
//! kernels and by depthwise layers on CPUs with AVX-512F.
#![forbid(unsafe_code)]

use core::arch::x86_64::*;

use super::avx2::{CHUNK, OutMode};
use super::{ChanRq, Grid};
use crate::cpu::OutSlice as Dst;

/// Requantisation constants of 16 lanes (one channel each, or one in all);
/// i64 values for the even lanes (0, 2, ..) and the odd lanes (1, 3, ..).
#[derive(Clone, Copy)]
pub(super) struct Rq16 {
    bias: __m512i,
    /// Each lane's multiplier in the low half of its i64 lane pair.
    mult: [__m512i; 2],
    shift: [__m512i; 2],
    round: [__m512i; 2],
}

/// Clamp (relative to the zero point) and zero point of int8 outputs.
#[derive(Clone, Copy)]
pub(super) struct Clamp16 {
    lo: __m512i,
    hi: __m512i,
    zp: __m512i,
}

#[inline]
#[target_feature(enable = "avx2,avx512f")]
pub(super) fn clamp16(m: OutMode) -> Clamp16 {
    Clamp16 {
        lo: _mm512_set1_epi64(i64::from(m.lo) - i64::from(m.zero_point)),
        hi: _mm512_set1_epi64(i64::from(m.hi) - i64::from(m.zero_point)),
        zp: _mm512_set1_epi32(i32::from(m.zero_point)),
    }
}

/// Constants of up to 16 consecutive channels, one per lane (missing ones zero).
#[inline]
#[target_feature(enable = "avx2,avx512f")]
pub(super) fn rq16(cs: &[ChanRq]) -> Rq16 {
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
pub(super) fn rq16_splat(c: &ChanRq) -> Rq16 {
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
pub(super) fn requant16(acc: __m512i, q: &Rq16, c: &Clamp16) -> [i8; 16] {
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
pub(super) fn load16(s: &[i32]) -> __m512i {
    bytemuck::cast::<[i32; 16], __m512i>(s[..16].try_into().unwrap_or([0; 16]))
}

/// Write 16 accumulators (`n` of them real) requantised, or plus the bias.
#[inline]
#[target_feature(enable = "avx2,avx512f")]
pub(super) fn emit16(acc: &[i32], q: &Rq16, c: &Clamp16, dst: &mut Dst<'_>, at: usize, n: usize) {
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
/// row.len()` (a multiple of 16, at most [`CHUNK`]) and store the real ones into its plane
/// `dst[at..]`.
#[inline]
#[target_feature(enable = "avx2,avx512f")]
pub(super) fn finish_row(
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
            let mut buf = [0i8; CHUNK];
            for (o, v) in buf.chunks_exact_mut(16).zip(row.chunks_exact(16)) {
                o.copy_from_slice(&requant16(load16(v), &q, clamp));
            }
            grid.scatter(&buf, row.len(), q0, &mut d[at..at + plane]);
        }
        Dst::I32(d) => {
            let mut buf = [0i32; CHUNK];
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
