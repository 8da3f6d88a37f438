//! ONNX `LayerNormalization` (opset 17) over the last axis, as the integer
//! `layer_norm` operator (`infera_kernels::ops::LayerNormParams`).
//!
//! The normalised value does not depend on the input's scale, so only
//! epsilon (in the integer variance's units) and the learned scale and bias
//! (with the output's quantisation folded in) are computed here, in floating
//! point, off chain, from the calibrated scales.

use super::rules::{Mapped, Rule};
use super::{FOp, Q, Quantizer, attr_f, attr_int, normalize_axis, unsupported};
use crate::ToolResult;
use infera_kernels::Op;
use infera_kernels::limits::{MAX_NORM_EPS, MAX_SHIFT_BITS};
use infera_kernels::ops::{LayerNormParams, NORM_FRAC_BITS};

/// `LayerNormalization(X, Scale, B)`: the axis must be the last one, Scale
/// and B constants with one value per channel (or one for all).
pub(super) fn layer_norm(r: &Rule<'_>) -> ToolResult<Mapped> {
    let (n, xs) = (r.n, r.xs);
    let rank = xs.len();
    let axis = attr_int(n, "axis", -1);
    if rank == 0 || normalize_axis(axis, rank) != Some(rank - 1) {
        return Err(unsupported(format!(
            "LayerNormalization over axis {axis} of a rank-{rank} input (only the last axis)"
        )));
    }
    let len = xs[rank - 1];
    let channel = |ix: usize, default: f32| -> ToolResult<Vec<f32>> {
        let Some(name) = n.input.get(ix).filter(|s| !s.is_empty()) else {
            return Ok(vec![default; len]);
        };
        let v = &r.b.fconst(r.op, name)?.1;
        match v.len() {
            1 => Ok(vec![v[0]; len]),
            l if l == len => Ok(v.clone()),
            l => Err(unsupported(format!(
                "LayerNormalization: {name} has {l} values for {len} channels"
            ))),
        }
    };
    let (scale, bias) = (channel(1, 1.0)?, channel(2, 0.0)?);
    let eps = f64::from(attr_f(n, "epsilon", 1e-5));
    let build = move |q: &[Q], own: Q| quantize(&scale, &bias, eps, q[0], own);
    Ok((
        FOp::Quantized(Quantizer::new(build)),
        vec![r.x],
        xs.to_vec(),
    ))
}

/// The integer parameters for input quantisation `x` and output `own`:
/// `eps · n³ / sx²`, `gamma = g / sy · 2^(shift - F)`, `beta = b / sy ·
/// 2^shift`, with the largest shift that keeps both in i32.
fn quantize(g: &[f32], b: &[f32], eps: f64, x: Q, own: Q) -> ToolResult<Op> {
    let n = g.len() as f64;
    let (sx, sy) = (f64::from(x.scale), f64::from(own.scale));
    let eps_q = (eps * n * n * n / (sx * sx)).round();
    if !(0.0..=MAX_NORM_EPS as f64).contains(&eps_q) {
        return Err(unsupported(format!(
            "LayerNormalization epsilon {eps} is {eps_q} in integer variance units, above {MAX_NORM_EPS}"
        )));
    }
    let gr: Vec<f64> = g.iter().map(|&v| f64::from(v) / sy).collect();
    let br: Vec<f64> = b.iter().map(|&v| f64::from(v) / sy).collect();
    let max = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let (gmax, bmax) = (max(&gr), max(&br));
    // Below i32::MAX by one, so that rounding cannot step past it.
    let room = f64::from(i32::MAX) - 1.0;
    let f = NORM_FRAC_BITS as i32;
    let shift = (1..=i32::from(MAX_SHIFT_BITS))
        .rev()
        .find(|&s| gmax * 2f64.powi(s - f) <= room && bmax * 2f64.powi(s) <= room)
        .ok_or_else(|| {
            unsupported(format!(
                "LayerNormalization scale {gmax} or bias {bmax} (in output steps) out of range"
            ))
        })?;
    let fixed = |v: &[f64], bits: i32| -> Vec<i32> {
        v.iter()
            .map(|x| (x * 2f64.powi(bits)).round() as i32)
            .collect()
    };
    Ok(Op::LayerNorm(LayerNormParams {
        gamma: fixed(&gr, shift - f),
        beta: fixed(&br, shift),
        eps: eps_q as u64,
        shift: shift as u8,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_and_bias_take_the_largest_shift_that_fits() {
        let (x, own) = (
            Q {
                scale: 2.0 / 255.0,
                zp: 0,
            },
            Q { scale: 0.03, zp: 5 },
        );
        let (g, b) = ([1.0f32, -0.5, 2.0], [0.25f32, 0.0, -1.5]);
        let Op::LayerNorm(p) = quantize(&g, &b, 1e-5, x, own).expect("quantizes") else {
            unreachable!()
        };
        let s = i32::from(p.shift);
        let (f, sy) = (NORM_FRAC_BITS as i32, f64::from(own.scale));
        for i in 0..3 {
            let want_g = f64::from(g[i]) / sy * 2f64.powi(s - f);
            let want_b = f64::from(b[i]) / sy * 2f64.powi(s);
            assert!((f64::from(p.gamma[i]) - want_g).abs() <= 0.5, "gamma {i}");
            assert!((f64::from(p.beta[i]) - want_b).abs() <= 0.5, "beta {i}");
        }
        // One more bit would overflow the largest bias (1.5 / 0.03 = 50 steps).
        assert!(50.0 * 2f64.powi(s + 1) > f64::from(i32::MAX) - 1.0);
        // epsilon · n³ / sx².
        let want_eps = 1e-5 * 27.0 / (2.0f64 / 255.0).powi(2);
        assert!((p.eps as f64 - want_eps).abs() <= 1.0, "eps {}", p.eps);
    }

    #[test]
    fn an_epsilon_beyond_the_limit_is_refused() {
        let (x, own) = (Q { scale: 1e-6, zp: 0 }, Q { scale: 0.03, zp: 0 });
        assert!(quantize(&[1.0; 4096], &[0.0; 4096], 1.0, x, own).is_err());
    }
}
