//! Max, average and global average pooling over NCHW int8.

use crate::ops::PoolParams;
use crate::quant::round_div;

/// Visit the valid input positions of each output window of one plane.
#[inline(always)]
fn windows(
    p: &PoolParams,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    mut f: impl FnMut(usize, &mut dyn Iterator<Item = usize>),
) {
    let [kh, kw] = p.kernel;
    let [sh, sw] = p.stride;
    let (pt, pl) = (p.pads[0], p.pads[1]);
    for oy in 0..oh {
        // Window rows clipped to the input: padding contributes nothing.
        let y0 = (oy * sh).saturating_sub(pt);
        let y1 = (oy * sh + kh).saturating_sub(pt).min(h);
        for ox in 0..ow {
            let x0 = (ox * sw).saturating_sub(pl);
            let x1 = (ox * sw + kw).saturating_sub(pl).min(w);
            let mut it = (y0..y1).flat_map(move |y| (x0..x1).map(move |x| y * w + x));
            f(oy * ow + ox, &mut it);
        }
    }
}

/// Max pool; padded positions are ignored (every window holds a real element).
pub fn max_pool(p: &PoolParams, x: &[i8], in_shape: &[usize], out_shape: &[usize]) -> Vec<i8> {
    let (h, w, oh, ow) = (in_shape[2], in_shape[3], out_shape[2], out_shape[3]);
    let planes = in_shape[0] * in_shape[1];
    let mut out = vec![0i8; planes * oh * ow];
    for (src, dst) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
        windows(p, h, w, oh, ow, |o, it| {
            dst[o] = it.map(|i| src[i]).max().unwrap_or(i8::MIN);
        });
    }
    out
}

/// Average pool: `zp + round_half_up(sum(x - zp) / count)`, where `count` is the
/// full window if `count_include_pad` (padding is 0.0) else the real elements.
pub fn avg_pool(
    p: &PoolParams,
    count_include_pad: bool,
    x: &[i8],
    zp: i8,
    in_shape: &[usize],
    out_shape: &[usize],
) -> Vec<i8> {
    let (h, w, oh, ow) = (in_shape[2], in_shape[3], out_shape[2], out_shape[3]);
    let planes = in_shape[0] * in_shape[1];
    let full = (p.kernel[0] * p.kernel[1]) as i64;
    let z = i64::from(zp);
    let mut out = vec![0i8; planes * oh * ow];
    for (src, dst) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
        windows(p, h, w, oh, ow, |o, it| {
            let (mut sum, mut n) = (0i64, 0i64);
            for i in it {
                sum += i64::from(src[i]) - z;
                n += 1;
            }
            let count = if count_include_pad { full } else { n.max(1) };
            // The mean of int8 offsets stays within the int8 range of the input.
            dst[o] = (round_div(sum, count) + z).clamp(-128, 127) as i8;
        });
    }
    out
}

/// Mean of each H x W plane, rounded like [`avg_pool`].
pub fn global_avg_pool(x: &[i8], zp: i8, in_shape: &[usize]) -> Vec<i8> {
    let hw = in_shape[2] * in_shape[3];
    let z = i64::from(zp);
    x.chunks_exact(hw)
        .map(|plane| {
            let sum: i64 = plane.iter().map(|&v| i64::from(v) - z).sum();
            (round_div(sum, hw as i64) + z).clamp(-128, 127) as i8
        })
        .collect()
}
