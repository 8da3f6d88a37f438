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
    let mut index = vec![0usize; outer.len()];
    let mut base = 0usize;
    loop {
        out.extend((0..inner).map(|j| src[base + j * inner_stride]));
        // Advance the odometer over the outer axes, last axis fastest.
        let mut d = outer.len();
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            index[d] += 1;
            base += src_strides[d];
            if index[d] < outer[d] {
                break;
            }
            base -= src_strides[d] * outer[d];
            index[d] = 0;
        }
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
    let mut index = vec![0usize; outer.len()];
    let mut base: usize = before.iter().zip(out_strides).map(|(b, s)| b * s).sum();
    for row in src.chunks_exact(inner) {
        dst[base..base + inner].copy_from_slice(row);
        let mut d = outer.len();
        while d > 0 {
            d -= 1;
            index[d] += 1;
            base += out_strides[d];
            if index[d] < outer[d] {
                break;
            }
            base -= out_strides[d] * outer[d];
            index[d] = 0;
        }
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
