//! Tiny ONNX graphs built in code (tract's protobuf types, encoded with prost),
//! so each importer rule has a test without committed files or Python.

use infera_model_import::npy::{Npy, NpyData};
use prost::Message;
use tract_onnx::pb::{
    self, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// ONNX `AttributeProto.AttributeType` values used here.
const ATTR_FLOAT: i32 = 1;
const ATTR_INT: i32 = 2;
const ATTR_STRING: i32 = 3;
const ATTR_INTS: i32 = 7;

pub fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: output.into(),
        attribute: attrs,
        ..Default::default()
    }
}

pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: ATTR_INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: ATTR_INT,
        i: v,
        ..Default::default()
    }
}

#[allow(dead_code)]
pub fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: ATTR_FLOAT,
        f: v,
        ..Default::default()
    }
}

pub fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: ATTR_STRING,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

pub fn f32_tensor(name: &str, dims: &[i64], v: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: v,
        ..Default::default()
    }
}

pub fn i64_tensor(name: &str, v: Vec<i64>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: 7,
        int64_data: v,
        ..Default::default()
    }
}

fn value_info(name: &str, shape: &[usize]) -> ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension};
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: shape
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(dimension::Value::DimValue(d as i64)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A model with graph input `x` of `in_shape`, output `y` of `out_shape`.
pub fn model(
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    in_shape: &[usize],
    out_shape: &[usize],
) -> Vec<u8> {
    model_at_opset(13, nodes, initializers, in_shape, out_shape)
}

/// [`model`] at another ONNX opset.
pub fn model_at_opset(
    opset: i64,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    in_shape: &[usize],
    out_shape: &[usize],
) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        producer_name: "infera-tests".into(),
        graph: Some(GraphProto {
            name: "test".into(),
            node: nodes,
            initializer: initializers,
            input: vec![value_info("x", in_shape)],
            output: vec![value_info("y", out_shape)],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Write ONNX bytes to a temporary file (kept alive by the returned handle).
pub fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new()
        .suffix(".onnx")
        .tempfile()
        .expect("temp file");
    std::fs::write(f.path(), bytes).expect("write onnx");
    f
}

/// `n` deterministic samples of `shape` uniform in `[-1, 1]`, as `[n, ..shape[1..]]`.
pub fn calibration(n: usize, shape: &[usize]) -> Npy {
    let per: usize = shape.iter().product();
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let data = (0..n * per)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect();
    let mut full = vec![n];
    full.extend_from_slice(&shape[1..]);
    Npy {
        shape: full,
        data: NpyData::F32(data),
    }
}
