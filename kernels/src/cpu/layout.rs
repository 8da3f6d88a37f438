//! Data movement: transpose, concat, pad, and arg-max.

use crate::tensor::{Tensor, TensorData};

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Map each output index to its input index and gather.
fn gather(data: &TensorData, n: usize, index: impl Fn(usize) -> usize) -> TensorData {
    match data {
        TensorData::I8(v) => TensorData::I8((0..n).map(|i| v[index(i)]).collect()),
        TensorData::I32(v) => TensorData::I32((0..n).map(|i| v[index(i)]).collect()),
    }
}

/// Output axis `i` is input axis `perm[i]`.
pub fn transpose(data: &TensorData, shape: &[usize], perm: &[usize]) -> TensorData {
    let in_strides = strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
    let out_strides = strides(&out_shape);
    let n = shape.iter().product();
    gather(data, n, |mut i| {
        let mut src = 0;
        for d in 0..perm.len() {
            let coord = i / out_strides[d];
            i %= out_strides[d];
            src += coord * in_strides[perm[d]];
        }
        src
    })
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
    let in_strides = strides(shape);
    let n: usize = shape.iter().product();
    let dst_of = |mut i: usize| {
        let mut dst = 0;
        for d in 0..shape.len() {
            let coord = i / in_strides[d];
            i %= in_strides[d];
            dst += (coord + before[d]) * out_strides[d];
        }
        dst
    };
    let total: usize = out_shape.iter().product();
    match data {
        TensorData::I8(v) => {
            let mut out = vec![zp; total];
            (0..n).for_each(|i| out[dst_of(i)] = v[i]);
            TensorData::I8(out)
        }
        TensorData::I32(v) => {
            let mut out = vec![0; total];
            (0..n).for_each(|i| out[dst_of(i)] = v[i]);
            TensorData::I32(out)
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
