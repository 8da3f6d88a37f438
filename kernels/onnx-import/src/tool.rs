//! What `infera model inspect` and `infera model run` print.

use crate::npy::{Npy, NpyData};
use crate::{ToolError, ToolResult};
use infera_kernels::DType;
use infera_kernels::model::Model;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Real scale stored as metadata bits (1.0 if absent or not a positive number).
fn scale(bits: u32) -> f32 {
    let s = f32::from_bits(bits);
    if s.is_finite() && s > 0.0 { s } else { 1.0 }
}

/// Quantise one float sample with the model's input scale and zero point.
pub fn quantize_input(model: &Model, x: &[f32]) -> ToolResult<Vec<u8>> {
    let (info, bits) = model.input_info();
    if info.spec.dtype != DType::I8 || x.len() != info.spec.elements() {
        return Err(ToolError::Input(format!(
            "{} values do not fit input {}",
            x.len(),
            info.spec
        )));
    }
    let s = scale(bits);
    Ok(x.iter()
        .map(|v| {
            (v / s + f32::from(info.zero_point))
                .round()
                .clamp(-128.0, 127.0) as i8 as u8
        })
        .collect())
}

/// Output bytes as integers.
fn output_ints(model: &Model, bytes: &[u8]) -> Vec<i64> {
    match model.output_spec().dtype {
        DType::I8 => bytes.iter().map(|&b| i64::from(b as i8)).collect(),
        DType::I32 => bytes
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
    }
}

/// Dequantised output values (int32 outputs are returned as is).
fn dequantize(model: &Model, ints: &[i64]) -> Vec<f32> {
    let (info, bits) = model.output_info();
    match info.spec.dtype {
        DType::I8 => ints
            .iter()
            .map(|&v| (v - i64::from(info.zero_point)) as f32 * scale(bits))
            .collect(),
        DType::I32 => ints.iter().map(|&v| v as f32).collect(),
    }
}

/// Quantise a float sample, run the integer model, dequantise the output.
pub fn run_float(model: &Model, x: &[f32]) -> ToolResult<Vec<f32>> {
    let out = model.run(&quantize_input(model, x)?)?;
    Ok(dequantize(model, &output_ints(model, &out)))
}

/// How many samples of the model's input `x` holds. Its shape must be the
/// input's own, `[N, ..input]`, or `[N, ..input[1..]]` when the input's leading
/// dimension is a batch of 1 (NCHW images `[1, C, H, W]` come as `[N, C, H, W]`).
/// Anything else, an empty batch, or a shape that disagrees with the data is an
/// error naming both shapes.
pub fn sample_count(model: &Model, x: &Npy) -> ToolResult<usize> {
    x.check()?;
    let spec = model.input_spec();
    let dims = &spec.shape;
    let batched = x.shape.split_first().and_then(|(&n, rest)| {
        let whole = rest == dims.as_slice();
        let leading_one = dims.first() == Some(&1) && rest == &dims[1..];
        (whole || leading_one).then_some(n)
    });
    let n = if x.shape == *dims {
        1
    } else {
        batched.ok_or_else(|| {
            ToolError::Input(format!(
                "array of shape {:?} does not match the model's input {spec}: expected {dims:?} or [N, ...] samples of it",
                x.shape
            ))
        })?
    };
    if n == 0 || spec.elements() == 0 {
        return Err(ToolError::Input(format!(
            "array of shape {:?} holds no samples of the model's input {spec}",
            x.shape
        )));
    }
    Ok(n)
}

/// Input bytes for each sample of an array: int8 arrays are taken as already
/// quantised, anything else is quantised with the model's input scale.
pub fn input_batches(model: &Model, x: &Npy) -> ToolResult<Vec<Vec<u8>>> {
    sample_count(model, x)?;
    let per = model.input_spec().elements();
    match &x.data {
        NpyData::I8(v) if model.input_spec().dtype == DType::I8 => Ok(v
            .chunks_exact(per)
            .map(|c| c.iter().map(|&b| b as u8).collect())
            .collect()),
        _ => x
            .to_f32()
            .chunks_exact(per)
            .map(|c| quantize_input(model, c))
            .collect(),
    }
}

/// Run every sample of `x`; JSON with the raw integer output, its dequantised
/// values and (with `argmax`) the top-1 index of each sample.
pub fn run_npy(model: &Model, x: &Npy, argmax: bool) -> ToolResult<Value> {
    let (info, bits) = model.output_info();
    let mut results = Vec::new();
    for input in input_batches(model, x)? {
        let out = model.run(&input)?;
        let ints = output_ints(model, &out);
        let mut r = json!({ "values": ints, "dequantized": dequantize(model, &ints) });
        if argmax {
            let best = ints
                .iter()
                .enumerate()
                .fold(0, |b, (i, &v)| if v > ints[b] { i } else { b });
            r["argmax"] = json!(best);
        }
        results.push(r);
    }
    Ok(json!({
        "output": { "dtype": info.spec.dtype, "shape": info.spec.shape, "zero_point": info.zero_point, "scale": scale(bits) },
        "results": results,
    }))
}

/// Checks that `labels` has one label per sample of `x`.
pub fn check_labels(model: &Model, x: &Npy, labels: &[i64]) -> ToolResult<()> {
    let n = sample_count(model, x)?;
    if labels.len() != n {
        return Err(ToolError::Input(format!(
            "{} labels for {n} samples (array of shape {:?}): one label per sample is needed",
            labels.len(),
            x.shape
        )));
    }
    Ok(())
}

/// Top-1 accuracy of the integer model on labelled float samples.
pub fn accuracy(model: &Model, x: &Npy, labels: &[i64]) -> ToolResult<f64> {
    check_labels(model, x, labels)?;
    let inputs = input_batches(model, x)?;
    let mut right = 0usize;
    for (input, &l) in inputs.iter().zip(labels) {
        let ints = output_ints(model, &model.run(input)?);
        let best = ints
            .iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > ints[b] { i } else { b });
        right += usize::from(best as i64 == l);
    }
    Ok(right as f64 / inputs.len().max(1) as f64)
}

/// Human-readable graph, shapes, parameters and MACs (gas is the precompiles' to price).
pub fn inspect(model: &Model, file_bytes: usize) -> String {
    let mut s = String::new();
    let (inp, ib) = model.input_info();
    let _ = writeln!(
        s,
        "infera model: {file_bytes} bytes, format v{}",
        infera_kernels::format::FORMAT_VERSION
    );
    let _ = writeln!(
        s,
        "input   {}  zero_point {}  scale {}",
        inp.spec,
        inp.zero_point,
        scale(ib)
    );
    let _ = writeln!(
        s,
        "{:>4}  {:<16} {:<10} {:<22} {:>5} {:>10} {:>12}",
        "node", "op", "inputs", "output", "zp", "params", "MACs"
    );
    for (i, n) in model.nodes().iter().enumerate() {
        let out = model.value(i + 1).expect("validated");
        let work = model.node_work(i).unwrap_or_default();
        let _ = writeln!(
            s,
            "{:>4}  {:<16} {:<10} {:<22} {:>5} {:>10} {:>12}",
            i,
            n.op.name(),
            format!("{:?}", n.inputs),
            out.spec.to_string(),
            out.zero_point,
            n.op.param_count(),
            work.macs
        );
    }
    let (out, ob) = model.output_info();
    let _ = writeln!(
        s,
        "output  value {}  {}  zero_point {}  scale {}",
        model.output_value(),
        out.spec,
        out.zero_point,
        scale(ob)
    );
    let c = model.cost();
    let _ = writeln!(s, "parameters {}  ({} bytes)", c.params, c.param_bytes);
    let _ = writeln!(
        s,
        "MACs {}  element ops {}  activation elements {}",
        c.macs, c.element_ops, c.activation_elements
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo model: input i8[1, 1, 8, 8].
    fn digits() -> Model {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/digits/digits.infera");
        Model::decode(&std::fs::read(path).unwrap()).unwrap()
    }

    fn zeros(shape: &[usize]) -> Npy {
        Npy {
            shape: shape.to_vec(),
            data: NpyData::F32(vec![0.0; shape.iter().product()]),
        }
    }

    #[test]
    fn samples_are_counted_from_the_shape() {
        let m = digits();
        assert_eq!(sample_count(&m, &zeros(&[1, 1, 8, 8])).unwrap(), 1);
        assert_eq!(sample_count(&m, &zeros(&[5, 1, 8, 8])).unwrap(), 5);
        assert_eq!(sample_count(&m, &zeros(&[3, 1, 1, 8, 8])).unwrap(), 3);
        assert_eq!(input_batches(&m, &zeros(&[5, 1, 8, 8])).unwrap().len(), 5);
    }

    #[test]
    fn a_shape_that_is_not_the_models_input_names_both() {
        let m = digits();
        // Same element count as two samples, wrong layout.
        for shape in [&[2, 64][..], &[64], &[1, 8, 8, 1], &[2, 1, 8, 4]] {
            let err = input_batches(&m, &zeros(shape)).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{shape:?}")) && err.contains("i8[1, 1, 8, 8]"),
                "{shape:?}: {err}"
            );
        }
        let err = input_batches(&m, &zeros(&[0, 1, 8, 8]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds no samples"), "{err}");
    }

    #[test]
    fn arrays_whose_shape_disagrees_with_their_data_are_refused() {
        let m = digits();
        let overflowing = Npy {
            shape: vec![1 << 62, 1 << 62],
            data: NpyData::F32(Vec::new()),
        };
        let err = run_npy(&m, &overflowing, false).unwrap_err().to_string();
        assert!(err.contains("more elements than a machine word"), "{err}");
        let short = Npy {
            shape: vec![2, 1, 8, 8],
            data: NpyData::F32(vec![0.0; 64]),
        };
        let err = run_npy(&m, &short, false).unwrap_err().to_string();
        assert!(
            err.contains("has 128 elements but the array holds 64"),
            "{err}"
        );
    }

    #[test]
    fn accuracy_needs_one_label_per_sample() {
        let m = digits();
        let x = zeros(&[3, 1, 8, 8]);
        assert!(accuracy(&m, &x, &[0, 1, 2]).is_ok());
        let err = accuracy(&m, &x, &[0, 1]).unwrap_err().to_string();
        assert!(err.contains("2 labels for 3 samples"), "{err}");
    }
}
