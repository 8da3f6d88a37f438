//! Tests of the model tools on committed files and on ONNX graphs built in
//! code (no Python needed).

mod cnn;
mod onnx;
mod ops;

use infera_kernels::Model;
use infera_model_import::npy::Npy;
use infera_model_import::{import_onnx, tool};
use std::path::{Path, PathBuf};

fn digits(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/digits")
        .join(file)
}

fn labels() -> Vec<i64> {
    Npy::read(&digits("test_y.npy")).unwrap().to_i64().unwrap()
}

#[test]
fn committed_digits_model_meets_its_accuracy_target() {
    let model =
        Model::decode(&std::fs::read(digits("digits.infera")).unwrap()).expect("valid model");
    let x = Npy::read(&digits("test_x.npy")).unwrap();
    let acc = tool::accuracy(&model, &x, &labels()).unwrap();
    assert!(acc >= 0.95, "integer accuracy {acc}");
    // The README states these figures; keep them true.
    assert_eq!((acc * 360.0).round() as usize, 348);
}

#[test]
fn importing_the_onnx_reproduces_an_equivalent_model() {
    let calib = Npy::read(&digits("calib.npy")).unwrap();
    let (model, report) = import_onnx(&digits("digits.onnx"), &calib).expect("import");
    assert_eq!(report.samples, 200);
    assert!(
        report.top1_agreement >= 198,
        "agreement {}/200",
        report.top1_agreement
    );
    let x = Npy::read(&digits("test_x.npy")).unwrap();
    let float =
        infera_model_import::import::float_accuracy(&digits("digits.onnx"), &x, &labels()).unwrap();
    let int = tool::accuracy(&model, &x, &labels()).unwrap();
    assert!(float - int <= 0.01, "float {float} int {int}");
}

#[test]
fn run_json_has_labels() {
    let model = Model::decode(&std::fs::read(digits("digits.infera")).unwrap()).unwrap();
    let x = Npy::read(&digits("test_x.npy")).unwrap();
    let v = tool::run_npy(&model, &x, true).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 360);
    assert_eq!(results[0]["values"].as_array().unwrap().len(), 10);
    assert!(results[0]["argmax"].as_u64().unwrap() < 10);
    let text = tool::inspect(&model, 0);
    assert!(text.contains("MACs 6464"), "{text}");
}
