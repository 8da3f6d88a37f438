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
//! Every CPU with AMX has AVX-512, so requantisation is the 16-lane code of
//! [`super::avx512`].
#![forbid(unsafe_code)]

use super::amx::{Granted, ROW_BYTES, Signs, TILE};
use super::avx2::OutMode;
use super::avx512::{clamp16, emit16, finish_row, rq16};
use super::{ChanRq, Grid};
use crate::cpu::OutSlice as Dst;

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
                    t.load_b(
                        j,
                        w,
                        (b0 + j) * block_bytes + s * TILE * ROW_BYTES,
                        ROW_BYTES,
                    );
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
    // One row of `chunk` accumulators per channel of a block pair.
    let chunk = POSITIONS.min(grid.positions);
    let mut scratch = vec![0i32; BLOCK * chunk];
    let mut q0 = 0;
    while q0 < grid.positions {
        let qc = chunk.min(grid.positions - q0);
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
                        t.store(i, j, &mut scratch, TILE * i * chunk + p + TILE * j, chunk);
                    }
                }
            }
            for j in 0..nb * TILE {
                let ch = b0 * TILE + j;
                if ch < rq.len() {
                    let row = &scratch[j * chunk..j * chunk + qc];
                    finish_row(row, &rq[ch], &c, grid, q0, dst, ch * grid.plane());
                }
            }
        }
        q0 += qc;
    }
}
