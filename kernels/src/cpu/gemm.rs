//! The int8 dot-product core shared by dense and convolution layers.
//!
//! Operands are widened to i16 and padded with zeros to a multiple of [`LANES`]
//! so that the inner loop has no tail and compiles to packed multiply-add
//! instructions (`pmaddwd` on x86, `smlal` on Arm) in safe Rust. Every product of
//! an int8 weight and an activation minus its zero point fits in i16
//! (`255 * 128 < 2^15`), and the sums are exact in i32 (proved at validation),
//! so blocking and order change nothing in the result.

/// Elements per step of the inner loop; rows are padded to a multiple of it.
pub const LANES: usize = 16;
/// Weight rows computed together by the micro-kernel.
pub const MR: usize = 4;
/// Activation rows computed together by the micro-kernel.
pub const NR: usize = 2;

/// `k` rounded up to a multiple of [`LANES`].
pub fn padded_len(k: usize) -> usize {
    k.div_ceil(LANES) * LANES
}

/// Copy `src` widened to i16 into `dst` (length `padded_len(src.len())`), zero tail.
pub fn widen_into(dst: &mut [i16], src: &[i8], zero_point: i8) {
    let (head, tail) = dst.split_at_mut(src.len());
    for (d, &s) in head.iter_mut().zip(src) {
        *d = i16::from(s) - i16::from(zero_point);
    }
    tail.fill(0);
}

/// One dot product of two `kp`-long rows, written in the shape LLVM turns into
/// packed multiply-adds (`pmaddwd`): independent lane accumulators, no tail.
#[inline(always)]
fn dot(a: &[i16], b: &[i16]) -> i32 {
    let mut acc = [0i32; LANES];
    for (ca, cb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] = acc[l].wrapping_add(i32::from(ca[l]) * i32::from(cb[l]));
        }
    }
    acc.iter().fold(0i32, |s, &v| s.wrapping_add(v))
}

/// Dot products of `R` rows of `a` with `C` rows of `b`, each row `kp` long
/// (rows back to back with stride `kp`). Blocking keeps the rows in L1 while
/// they are reused; each product is an independent [`dot`].
#[inline(always)]
fn block<const R: usize, const C: usize>(a: &[i16], b: &[i16], kp: usize) -> [[i32; C]; R] {
    let mut out = [[0i32; C]; R];
    for (i, row) in out.iter_mut().enumerate() {
        let ai = &a[i * kp..(i + 1) * kp];
        for (j, v) in row.iter_mut().enumerate() {
            *v = dot(ai, &b[j * kp..(j + 1) * kp]);
        }
    }
    out
}

/// For every row `i` of `a` (`m` rows) and row `j` of `b` (`n` rows), call
/// `sink(i, j, dot(a_i, b_j))`. Rows have stride `kp` (a multiple of [`LANES`]).
pub fn gemm(
    a: &[i16],
    m: usize,
    b: &[i16],
    n: usize,
    kp: usize,
    mut sink: impl FnMut(usize, usize, i32),
) {
    debug_assert!(kp.is_multiple_of(LANES) && a.len() >= m * kp && b.len() >= n * kp);
    let mut i = 0;
    while i < m {
        let rows = (m - i).min(MR);
        let ai = &a[i * kp..];
        let mut j = 0;
        while j < n {
            let cols = (n - j).min(NR);
            let bj = &b[j * kp..];
            if rows == MR && cols == NR {
                emit(&block::<MR, NR>(ai, bj, kp), i, j, &mut sink);
            } else if rows == MR {
                for dj in 0..cols {
                    emit(
                        &block::<MR, 1>(ai, &bj[dj * kp..], kp),
                        i,
                        j + dj,
                        &mut sink,
                    );
                }
            } else {
                // Bottom edge: one weight row at a time.
                for di in 0..rows {
                    if cols == NR {
                        emit(
                            &block::<1, NR>(&ai[di * kp..], bj, kp),
                            i + di,
                            j,
                            &mut sink,
                        );
                    } else {
                        for dj in 0..cols {
                            emit(
                                &block::<1, 1>(&ai[di * kp..], &bj[dj * kp..], kp),
                                i + di,
                                j + dj,
                                &mut sink,
                            );
                        }
                    }
                }
            }
            j += cols;
        }
        i += rows;
    }
}

#[inline(always)]
fn emit<const R: usize, const C: usize>(
    r: &[[i32; C]; R],
    i: usize,
    j: usize,
    sink: &mut impl FnMut(usize, usize, i32),
) {
    for (di, row) in r.iter().enumerate() {
        for (dj, &v) in row.iter().enumerate() {
            sink(i + di, j + dj, v);
        }
    }
}
