//! Elementwise activations (Sigmoid, Tanh, HardSigmoid, HardSwish, GELU) as
//! lookup tables: the float function evaluated, here and off chain, at the
//! real value of each of the 256 int8 inputs, and quantised to the output's
//! calibrated range. On chain the engine only indexes the table
//! (`infera_kernels::ops::LutParams`), so the function's floating point
//! never reaches consensus.

use super::{FOp, Q, Quantizer, attr_f};
use crate::ToolResult;
use infera_kernels::Op;
use infera_kernels::ops::LutParams;
use tract_onnx::pb;

/// A real function of one value.
type Activation = Box<dyn Fn(f64) -> f64 + Send + Sync>;

/// The activation of ONNX operator `op`, with its attributes, if it is one.
pub(super) fn activation(op: &str, n: &pb::NodeProto) -> Option<Activation> {
    Some(match op {
        "Sigmoid" => Box::new(sigmoid),
        "Tanh" => Box::new(f64::tanh),
        "HardSigmoid" => {
            let (alpha, beta) = (
                f64::from(attr_f(n, "alpha", 0.2)),
                f64::from(attr_f(n, "beta", 0.5)),
            );
            Box::new(move |x| (alpha * x + beta).clamp(0.0, 1.0))
        }
        "HardSwish" => Box::new(|x| x * (x / 6.0 + 0.5).clamp(0.0, 1.0)),
        "Gelu" => {
            let tanh = super::attr(n, "approximate").is_some_and(|a| a.s == b"tanh");
            if tanh {
                Box::new(gelu_tanh)
            } else {
                Box::new(gelu)
            }
        }
        _ => return None,
    })
}

/// The float operator of an activation: a table built at quantisation,
/// from the input's quantisation and the output's own.
pub(super) fn lut_op(f: Activation) -> FOp {
    FOp::Quantized(Quantizer::new(move |q: &[Q], own: Q| -> ToolResult<Op> {
        let x = q[0];
        Ok(Op::Lut(LutParams::from_fn(|v| {
            let real = f64::from(x.scale) * (f64::from(v) - f64::from(x.zp));
            own.quantize(f(real) as f32)
        })))
    }))
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `x Φ(x)`, Φ the standard normal distribution function.
fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// The tanh approximation (ONNX `Gelu` with `approximate = "tanh"`).
fn gelu_tanh(x: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044_715 * x * x * x)).tanh())
}

/// The error function, to about 1e-7 (Abramowitz and Stegun 7.1.26):
/// far below an int8 step, which is all a table resolves.
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x < 0.0 { -y } else { y }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_and_gelu_match_known_values() {
        // erf(0.5), erf(1), erf(2) to 7 digits.
        for (x, want) in [(0.5, 0.520_499_9), (1.0, 0.842_700_8), (2.0, 0.995_322_3)] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x})");
            assert!((erf(-x) + want).abs() < 2e-7, "erf(-{x})");
        }
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-5);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-12);
    }
}
