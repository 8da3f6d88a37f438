//! Direct loops, written for clarity only, that the optimised kernels must match.

use infera_kernels::ops::{Conv2dParams, DenseParams, PoolParams};
use infera_kernels::quant::{requantize, round_div};
use infera_kernels::{DType, Tensor};

#[allow(clippy::too_many_arguments)]
fn finish(
    out: DType,
    acc: i64,
    ch: usize,
    bias: &[i32],
    rq: &[infera_kernels::quant::Requant],
    zp: i8,
    lo: i8,
    hi: i8,
) -> i64 {
    let acc = acc + i64::from(bias[ch]);
    match out {
        DType::I32 => acc,
        DType::I8 => i64::from(requantize(
            i32::try_from(acc).expect("validated bound"),
            rq[ch],
            zp,
            lo,
            hi,
        )),
    }
}

fn make(out: DType, shape: Vec<usize>, zp: i8, v: Vec<i64>) -> Tensor {
    match out {
        DType::I8 => Tensor::i8(shape, zp, v.into_iter().map(|e| e as i8).collect()),
        DType::I32 => Tensor::i32(shape, v.into_iter().map(|e| e as i32).collect()),
    }
}

pub fn dense(p: &DenseParams, x: &Tensor, zp: i8) -> Tensor {
    let xs = x.as_i8().unwrap();
    let rows = xs.len() / p.in_features;
    let mut out = Vec::new();
    for r in 0..rows {
        for o in 0..p.out_features {
            let mut acc = 0i64;
            for k in 0..p.in_features {
                acc += (i64::from(xs[r * p.in_features + k]) - i64::from(x.zero_point))
                    * i64::from(p.weights[o * p.in_features + k]);
            }
            out.push(finish(
                p.out_dtype,
                acc,
                o,
                &p.bias,
                &p.requant,
                zp,
                p.act_min,
                p.act_max,
            ));
        }
    }
    let mut shape = x.shape.clone();
    *shape.last_mut().unwrap() = p.out_features;
    make(p.out_dtype, shape, zp, out)
}

pub fn conv2d(p: &Conv2dParams, x: &Tensor, zp: i8) -> Tensor {
    let xs = x.as_i8().unwrap();
    let [n, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let [kh, kw] = p.kernel;
    let oh = (h + p.pads[0] + p.pads[2] - p.dilation[0] * (kh - 1) - 1) / p.stride[0] + 1;
    let ow = (w + p.pads[1] + p.pads[3] - p.dilation[1] * (kw - 1) - 1) / p.stride[1] + 1;
    let cg = c / p.groups;
    let og = p.out_channels / p.groups;
    let mut out = Vec::new();
    for b in 0..n {
        for o in 0..p.out_channels {
            let g = o / og;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0i64;
                    for ci in 0..cg {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * p.stride[0] + ky * p.dilation[0]) as i64
                                    - p.pads[0] as i64;
                                let ix = (ox * p.stride[1] + kx * p.dilation[1]) as i64
                                    - p.pads[1] as i64;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                    continue;
                                }
                                let v =
                                    xs[((b * c + g * cg + ci) * h + iy as usize) * w + ix as usize];
                                let wt = p.weights[((o * cg + ci) * kh + ky) * kw + kx];
                                acc += (i64::from(v) - i64::from(x.zero_point)) * i64::from(wt);
                            }
                        }
                    }
                    out.push(finish(
                        p.out_dtype,
                        acc,
                        o,
                        &p.bias,
                        &p.requant,
                        zp,
                        p.act_min,
                        p.act_max,
                    ));
                }
            }
        }
    }
    make(p.out_dtype, vec![n, p.out_channels, oh, ow], zp, out)
}

/// `avg = None` is max pool; `Some(include_pad)` is average pool.
pub fn pool(p: &PoolParams, x: &Tensor, avg: Option<bool>) -> Tensor {
    let xs = x.as_i8().unwrap();
    let [n, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let [kh, kw] = p.kernel;
    let oh = (h + p.pads[0] + p.pads[2] - kh) / p.stride[0] + 1;
    let ow = (w + p.pads[1] + p.pads[3] - kw) / p.stride[1] + 1;
    let z = i64::from(x.zero_point);
    let mut out = Vec::new();
    for pl in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut best, mut sum, mut cnt) = (i64::MIN, 0i64, 0i64);
                for ky in 0..kh {
                    for kx in 0..kw {
                        let iy = (oy * p.stride[0] + ky) as i64 - p.pads[0] as i64;
                        let ix = (ox * p.stride[1] + kx) as i64 - p.pads[1] as i64;
                        if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                            continue;
                        }
                        let v = i64::from(xs[(pl * h + iy as usize) * w + ix as usize]);
                        best = best.max(v);
                        sum += v - z;
                        cnt += 1;
                    }
                }
                out.push(match avg {
                    None => best as i8,
                    Some(include) => {
                        let count = if include { (kh * kw) as i64 } else { cnt };
                        (round_div(sum, count) + z) as i8
                    }
                });
            }
        }
    }
    Tensor::i8(vec![n, c, oh, ow], x.zero_point, out)
}
