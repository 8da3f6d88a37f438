//! Data movement: transpose, concat, pad, and arg-max.

use crate::tensor::{Tensor, TensorData};

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Output axis `i` is input axis `perm[i]`.
///
/// Walks the output in order with an odometer over its axes, so each element
/// costs an add rather than a division per axis (a rank-6 transpose was five
/// times slower with divisions than its gas allowed).
pub fn transpose(data: &TensorData, shape: &[usize], perm: &[usize]) -> TensorData {
    let in_strides = strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
    let src_strides: Vec<usize> = perm.iter().map(|&a| in_strides[a]).collect();
    match data {
        TensorData::I8(v) => TensorData::I8(walk(v, &out_shape, &src_strides)),
        TensorData::I32(v) => TensorData::I32(walk(v, &out_shape, &src_strides)),
    }
}

/// The elements of `src` at `sum(index[d] * src_strides[d])` for every index
/// of `out_shape` in row-major order.
fn walk<T: Copy>(src: &[T], out_shape: &[usize], src_strides: &[usize]) -> Vec<T> {
    let n: usize = out_shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let Some((&inner, outer)) = out_shape.split_last() else {
        out.extend(src.first().copied());
        return out;
    };
    if n == 0 {
        return out;
    }
    let inner_stride = src_strides[outer.len()];
    let mut rows = Odometer::new(outer, src_strides, 0);
    loop {
        let base = rows.offset;
        out.extend((0..inner).map(|j| src[base + j * inner_stride]));
        if !rows.advance() {
            return out;
        }
    }
}

/// Row-major steps over the indices of `extents`, keeping
/// `offset = start + sum(index[d] * strides[d])` with an add or two per step
/// instead of a division per axis.
struct Odometer<'a> {
    extents: &'a [usize],
    strides: &'a [usize],
    index: Vec<usize>,
    offset: usize,
}

impl<'a> Odometer<'a> {
    fn new(extents: &'a [usize], strides: &'a [usize], start: usize) -> Self {
        Odometer {
            extents,
            strides,
            index: vec![0; extents.len()],
            offset: start,
        }
    }

    /// Moves to the next index, last axis fastest; false once past the last.
    fn advance(&mut self) -> bool {
        for d in (0..self.extents.len()).rev() {
            self.index[d] += 1;
            self.offset += self.strides[d];
            if self.index[d] < self.extents[d] {
                return true;
            }
            self.offset -= self.strides[d] * self.extents[d];
            self.index[d] = 0;
        }
        false
    }
}

/// Join along `axis`: for each outer index, copy each input's inner block in turn.
pub fn concat(inputs: &[&Tensor], axis: usize) -> TensorData {
    let shape = &inputs[0].shape;
    let outer: usize = shape[..axis].iter().product();
    let inner_of = |t: &Tensor| -> usize { t.shape[axis..].iter().product() };
    let total: usize = inputs.iter().map(|t| t.len()).sum();
    match inputs[0].data {
        TensorData::I8(_) => {
            let mut out = Vec::with_capacity(total);
            for o in 0..outer {
                for t in inputs {
                    let b = inner_of(t);
                    out.extend_from_slice(
                        &t.as_i8().expect("validated: same dtype")[o * b..(o + 1) * b],
                    );
                }
            }
            TensorData::I8(out)
        }
        TensorData::I32(_) => {
            let mut out = Vec::with_capacity(total);
            for o in 0..outer {
                for t in inputs {
                    let b = inner_of(t);
                    out.extend_from_slice(
                        &t.as_i32().expect("validated: same dtype")[o * b..(o + 1) * b],
                    );
                }
            }
            TensorData::I32(out)
        }
    }
}

/// Pad with `zp` (int8) or 0 (int32).
pub fn pad(
    data: &TensorData,
    shape: &[usize],
    before: &[usize],
    out_shape: &[usize],
    zp: i8,
) -> TensorData {
    let out_strides = strides(out_shape);
    let total: usize = out_shape.iter().product();
    match data {
        TensorData::I8(v) => {
            let mut out = vec![zp; total];
            scatter_rows(v, &mut out, shape, before, &out_strides);
            TensorData::I8(out)
        }
        TensorData::I32(v) => {
            let mut out = vec![0; total];
            scatter_rows(v, &mut out, shape, before, &out_strides);
            TensorData::I32(out)
        }
    }
}

/// Copy each innermost row of `src` (of `shape`) to its place in `dst`, offset
/// by `before` on every axis: a row copy and an odometer step per row.
fn scatter_rows<T: Copy>(
    src: &[T],
    dst: &mut [T],
    shape: &[usize],
    before: &[usize],
    out_strides: &[usize],
) {
    let Some((&inner, outer)) = shape.split_last() else {
        dst[0] = src[0];
        return;
    };
    if inner == 0 {
        return;
    }
    let start = before.iter().zip(out_strides).map(|(b, s)| b * s).sum();
    let mut rows = Odometer::new(outer, out_strides, start);
    for row in src.chunks_exact(inner) {
        let base = rows.offset;
        dst[base..base + inner].copy_from_slice(row);
        rows.advance();
    }
}

/// First index of the maximum along `axis`, for every other index.
pub fn arg_max(data: &TensorData, shape: &[usize], axis: usize) -> Vec<i32> {
    let outer: usize = shape[..axis].iter().product();
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let value = |i: usize| -> i32 {
        match data {
            TensorData::I8(v) => i32::from(v[i]),
            TensorData::I32(v) => v[i],
        }
    };
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let mut best = 0;
            for a in 1..len {
                if value((o * len + a) * inner + i) > value((o * len + best) * inner + i) {
                    best = a;
                }
            }
            out.push(best as i32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row-major coordinates of flat index `i` in `shape`.
    fn coords(mut i: usize, shape: &[usize]) -> Vec<usize> {
        let strides = strides(shape);
        strides
            .iter()
            .map(|&s| {
                let c = i / s;
                i %= s;
                c
            })
            .collect()
    }

    fn flat(c: &[usize], shape: &[usize]) -> usize {
        c.iter().zip(strides(shape)).map(|(c, s)| c * s).sum()
    }

    /// Shapes of rank 0 to 4 with small extents, and every permutation of
    /// their axes or a pad on each side: both ops against the definition.
    #[test]
    fn transpose_and_pad_match_index_arithmetic() {
        let shapes: [&[usize]; 6] = [&[], &[5], &[3, 4], &[2, 1, 3], &[2, 3, 1, 4], &[1, 1, 1]];
        for shape in shapes {
            let n: usize = shape.iter().product();
            let data: Vec<i8> = (0..n).map(|i| (i * 7 % 251) as i8).collect();
            let wide: Vec<i32> = data.iter().map(|&v| i32::from(v) * 1000).collect();
            // Every permutation of the axes (ranks are small).
            let rank = shape.len();
            let mut perms: Vec<Vec<usize>> = vec![Vec::new()];
            for _ in 0..rank {
                let mut longer = Vec::new();
                for p in &perms {
                    for a in (0..rank).filter(|a| !p.contains(a)) {
                        longer.push([p.as_slice(), &[a]].concat());
                    }
                }
                perms = longer;
            }
            for perm in perms {
                let out_shape: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
                let want: Vec<i8> = (0..n)
                    .map(|i| {
                        let oc = coords(i, &out_shape);
                        let mut ic = vec![0; rank];
                        for (d, &a) in perm.iter().enumerate() {
                            ic[a] = oc[d];
                        }
                        data[flat(&ic, shape)]
                    })
                    .collect();
                let got = transpose(&TensorData::I8(data.clone()), shape, &perm);
                assert_eq!(got, TensorData::I8(want.clone()), "{shape:?} {perm:?}");
                let got = transpose(&TensorData::I32(wide.clone()), shape, &perm);
                let want_wide = want.iter().map(|&v| i32::from(v) * 1000).collect();
                assert_eq!(got, TensorData::I32(want_wide), "{shape:?} {perm:?}");
            }
            let before: Vec<usize> = (0..rank).map(|d| d % 2).collect();
            let after: Vec<usize> = (0..rank).map(|d| (d + 1) % 3).collect();
            let out_shape: Vec<usize> =
                (0..rank).map(|d| shape[d] + before[d] + after[d]).collect();
            let total: usize = out_shape.iter().product();
            let mut want = vec![-9i8; total];
            for (i, &v) in data.iter().enumerate() {
                let c: Vec<usize> = coords(i, shape)
                    .iter()
                    .zip(&before)
                    .map(|(c, b)| c + b)
                    .collect();
                want[flat(&c, &out_shape)] = v;
            }
            let got = pad(
                &TensorData::I8(data.clone()),
                shape,
                &before,
                &out_shape,
                -9,
            );
            assert_eq!(got, TensorData::I8(want), "{shape:?}");
        }
    }
}
