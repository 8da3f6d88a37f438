//! Tensor types: element types, shapes, and owned tensors.

use crate::error::{ModelError, ModelResult};
use serde::{Deserialize, Serialize};

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// Signed 8-bit, quantised with a zero point.
    I8,
    /// Signed 32-bit little-endian (raw accumulators, indices).
    I32,
}

impl DType {
    /// Wire tag of the type.
    pub fn tag(self) -> u8 {
        match self {
            DType::I8 => 1,
            DType::I32 => 2,
        }
    }

    /// The type for a wire tag.
    pub fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(DType::I8),
            2 => Some(DType::I32),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I32 => 4,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            DType::I8 => "i8",
            DType::I32 => "i32",
        }
    }
}

/// Shape and type of a tensor: what a caller needs to build input bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Element type.
    pub dtype: DType,
    /// Dimensions, outermost first (row-major; images are NCHW).
    pub shape: Vec<usize>,
}

impl TensorSpec {
    /// Number of elements.
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Length of the tensor's byte encoding (little-endian, row-major).
    pub fn byte_len(&self) -> usize {
        self.elements() * self.dtype.size_bytes()
    }
}

impl std::fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:?}", self.dtype.name(), self.shape)
    }
}

/// A tensor's spec plus its quantisation zero point (the int8 value that means 0.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    /// Type and shape.
    pub spec: TensorSpec,
    /// Zero point; always 0 for i32 tensors.
    pub zero_point: i8,
}

/// Element storage of a tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorData {
    /// int8 elements.
    I8(Vec<i8>),
    /// int32 elements.
    I32(Vec<i32>),
}

/// An owned tensor with its zero point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Zero point (0 for i32).
    pub zero_point: i8,
    /// Elements, row-major.
    pub data: TensorData,
}

impl Tensor {
    /// An int8 tensor.
    pub fn i8(shape: Vec<usize>, zero_point: i8, data: Vec<i8>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor {
            shape,
            zero_point,
            data: TensorData::I8(data),
        }
    }

    /// An int32 tensor.
    pub fn i32(shape: Vec<usize>, data: Vec<i32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor {
            shape,
            zero_point: 0,
            data: TensorData::I32(data),
        }
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        match self.data {
            TensorData::I8(_) => DType::I8,
            TensorData::I32(_) => DType::I32,
        }
    }

    /// Spec and zero point.
    pub fn info(&self) -> TensorInfo {
        TensorInfo {
            spec: TensorSpec {
                dtype: self.dtype(),
                shape: self.shape.clone(),
            },
            zero_point: self.zero_point,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.data {
            TensorData::I8(v) => v.len(),
            TensorData::I32(v) => v.len(),
        }
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The int8 elements, if this is an int8 tensor.
    pub fn as_i8(&self) -> Option<&[i8]> {
        match &self.data {
            TensorData::I8(v) => Some(v),
            TensorData::I32(_) => None,
        }
    }

    /// The int32 elements, if this is an int32 tensor.
    pub fn as_i32(&self) -> Option<&[i32]> {
        match &self.data {
            TensorData::I32(v) => Some(v),
            TensorData::I8(_) => None,
        }
    }

    /// Canonical byte encoding: int8 as is, int32 little-endian; row-major.
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.data {
            TensorData::I8(v) => v.iter().map(|&x| x as u8).collect(),
            TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// Decode a tensor from its canonical bytes.
    pub fn from_bytes(info: &TensorInfo, bytes: &[u8]) -> ModelResult<Self> {
        let expected = info.spec.byte_len();
        if bytes.len() != expected {
            return Err(ModelError::InputLength {
                expected,
                actual: bytes.len(),
            });
        }
        let data = match info.spec.dtype {
            DType::I8 => TensorData::I8(bytes.iter().map(|&b| b as i8).collect()),
            DType::I32 => TensorData::I32(
                bytes
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
        };
        Ok(Tensor {
            shape: info.spec.shape.clone(),
            zero_point: info.zero_point,
            data,
        })
    }
}
