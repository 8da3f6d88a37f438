//! Golden vector files: one JSON object per case with sorted keys
//! (`expected`, `inputs`, `name`, `op`, `output_zero_point`, `params`, `seed`).
//! Tensors are `{dtype, hex, shape, zero_point}` with the canonical bytes in hex.
#![allow(dead_code)]

use infera_kernels::{DType, Op, Tensor, TensorInfo, TensorSpec};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// Directory of the golden vectors.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// Rebuild every object with its keys in sorted order, whatever serde_json's map is.
pub fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut pairs: Vec<(String, Value)> = m.into_iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

pub fn tensor_json(t: &Tensor) -> Value {
    json!({ "dtype": t.dtype(), "hex": hex::encode(t.to_bytes()), "shape": t.shape, "zero_point": t.zero_point })
}

pub fn tensor_from_json(v: &Value) -> Tensor {
    let dtype: DType = serde_json::from_value(v["dtype"].clone()).expect("dtype");
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).expect("shape");
    let zero_point = v["zero_point"].as_i64().expect("zero_point") as i8;
    let bytes = hex::decode(v["hex"].as_str().expect("hex")).expect("hex digits");
    Tensor::from_bytes(
        &TensorInfo {
            spec: TensorSpec { dtype, shape },
            zero_point,
        },
        &bytes,
    )
    .expect("tensor bytes")
}

pub fn to_json(
    name: &str,
    seed: u64,
    op: &Op,
    inputs: &[Tensor],
    out_zero_point: i8,
    expected: &Tensor,
) -> Value {
    sorted(json!({
        "expected": tensor_json(expected),
        "inputs": inputs.iter().map(tensor_json).collect::<Vec<_>>(),
        "name": name,
        "op": op.name(),
        "output_zero_point": out_zero_point,
        "params": op,
        "seed": seed,
    }))
}

pub struct Vector {
    pub name: String,
    pub seed: u64,
    pub op: Op,
    pub inputs: Vec<Tensor>,
    pub out_zero_point: i8,
    pub expected: Tensor,
}

pub fn from_json(v: &Value) -> Vector {
    let op: Op = serde_json::from_value(v["params"].clone()).expect("params");
    assert_eq!(v["op"].as_str(), Some(op.name()), "op name matches params");
    Vector {
        name: v["name"].as_str().expect("name").to_string(),
        seed: v["seed"].as_u64().expect("seed"),
        op,
        inputs: v["inputs"]
            .as_array()
            .expect("inputs")
            .iter()
            .map(tensor_from_json)
            .collect(),
        out_zero_point: v["output_zero_point"].as_i64().expect("output_zero_point") as i8,
        expected: tensor_from_json(&v["expected"]),
    }
}

/// Every vector file, sorted by path.
pub fn load_all() -> Vec<(PathBuf, Vector)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("kernels/vectors exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read vector");
            let v: Value = serde_json::from_str(&text).expect("vector json");
            (p, from_json(&v))
        })
        .collect()
}
