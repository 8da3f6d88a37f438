//! The work behind `infera model inspect | run | import`, file in, text out,
//! so the binary only parses arguments.

use crate::npy::Npy;
use crate::{ToolError, ToolResult, import, read_file, tool, write_file};
use infera_kernels::Model;
use serde_json::json;
use std::path::Path;

/// `infera model inspect <file>`.
pub fn inspect_file(path: &Path) -> ToolResult<String> {
    let bytes = read_file(path)?;
    let model = Model::decode(&bytes)?;
    Ok(tool::inspect(&model, bytes.len()))
}

/// `infera model run <file> --input x.npy [--argmax]`: JSON text.
pub fn run_file(path: &Path, input: &Path, argmax: bool) -> ToolResult<String> {
    let model = Model::decode(&read_file(path)?)?;
    let x = Npy::read(input)?;
    let v = tool::run_npy(&model, &x, argmax)?;
    Ok(serde_json::to_string_pretty(&v).expect("json"))
}

/// `infera model import model.onnx --calibrate samples.npy -o out.infera
/// [--eval x.npy --labels y.npy]`: writes the model, returns a JSON report.
pub fn import_file(
    onnx: &Path,
    calibrate: &Path,
    out: &Path,
    eval: Option<(&Path, &Path)>,
) -> ToolResult<String> {
    let calib = Npy::read(calibrate)?;
    let (model, report) = import::import_onnx(onnx, &calib)?;
    let bytes = model.encode();
    write_file(out, &bytes)?;
    let mut v = json!({
        "output": out.display().to_string(),
        "bytes": bytes.len(),
        "macs": model.cost().macs,
        "calibration_samples": report.samples,
        "top1_agreement_with_float": format!("{}/{} ({:.2}%)", report.top1_agreement, report.samples,
            100.0 * report.top1_agreement as f64 / report.samples.max(1) as f64),
        "max_abs_output_error": report.max_abs_error,
        "max_abs_float_output": report.max_abs_output,
        "nodes": report.notes,
    });
    if let Some((x, y)) = eval {
        let (x, y) = (Npy::read(x)?, Npy::read(y)?);
        let labels = y
            .to_i64()
            .ok_or_else(|| ToolError::Input("labels must be integers".into()))?;
        // Before the float model runs: both accuracies divide by the samples.
        tool::check_labels(&model, &x, &labels)?;
        let float = import::float_accuracy(onnx, &x, &labels)?;
        let int = tool::accuracy(&model, &x, &labels)?;
        v["eval"] = json!({
            "samples": labels.len(),
            "float_accuracy": float,
            "integer_accuracy": int,
            "points_lost": 100.0 * (float - int),
        });
    }
    Ok(serde_json::to_string_pretty(&v).expect("json"))
}
