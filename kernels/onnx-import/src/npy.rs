//! Minimal `.npy` (NumPy format 1.0-3.0) reader and writer for C-ordered arrays
//! of f32, f64, i8, u8, i32 and i64.

use crate::{ToolError, ToolResult};

/// Elements of an array.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `<f4`
    F32(Vec<f32>),
    /// `<f8`
    F64(Vec<f64>),
    /// `|i1`
    I8(Vec<i8>),
    /// `|u1`
    U8(Vec<u8>),
    /// `<i4`
    I32(Vec<i32>),
    /// `<i8`
    I64(Vec<i64>),
}

/// A C-ordered array.
#[derive(Debug, Clone, PartialEq)]
pub struct Npy {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Elements.
    pub data: NpyData,
}

impl Npy {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements as f32 (integers converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            NpyData::F32(v) => v.clone(),
            NpyData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I8(v) => v.iter().map(|&x| f32::from(x)).collect(),
            NpyData::U8(v) => v.iter().map(|&x| f32::from(x)).collect(),
            NpyData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Elements as i64 if integral.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        match &self.data {
            NpyData::I8(v) => Some(v.iter().map(|&x| x.into()).collect()),
            NpyData::U8(v) => Some(v.iter().map(|&x| x.into()).collect()),
            NpyData::I32(v) => Some(v.iter().map(|&x| x.into()).collect()),
            NpyData::I64(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// Parse `.npy` bytes.
    pub fn parse(bytes: &[u8]) -> ToolResult<Self> {
        let bad = |m: &str| ToolError::Npy(m.to_string());
        if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
            return Err(bad("not an .npy file"));
        }
        let (hlen, start) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 if bytes.len() >= 12 => (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            ),
            _ => return Err(bad("unsupported .npy version")),
        };
        let header = bytes
            .get(start..start + hlen)
            .ok_or_else(|| bad("truncated header"))?;
        let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
        let field = |key: &str| -> ToolResult<&str> {
            let at = header
                .find(&format!("'{key}'"))
                .ok_or_else(|| bad(&format!("no {key}")))?;
            Ok(header[at + key.len() + 2..].trim_start_matches([':', ' ']))
        };
        let descr = field("descr")?;
        let descr = descr
            .trim_start_matches('\'')
            .split('\'')
            .next()
            .unwrap_or("");
        if field("fortran_order")?.starts_with("True") {
            return Err(bad("Fortran order is not supported"));
        }
        let shape_text = field("shape")?;
        let inner = shape_text
            .trim_start_matches('(')
            .split(')')
            .next()
            .unwrap_or("");
        let shape = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>().map_err(|_| bad("bad shape")))
            .collect::<ToolResult<Vec<_>>>()?;
        let n: usize = shape.iter().product();
        let body = &bytes[start + hlen..];
        let need = |size: usize| -> ToolResult<&[u8]> {
            body.get(..n * size)
                .ok_or_else(|| bad("data shorter than the shape"))
        };
        let data = match descr {
            "<f4" => NpyData::F32(
                need(4)?
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
                    .collect(),
            ),
            "<f8" => NpyData::F64(
                need(8)?
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8")))
                    .collect(),
            ),
            "|i1" => NpyData::I8(need(1)?.iter().map(|&b| b as i8).collect()),
            "|u1" => NpyData::U8(need(1)?.to_vec()),
            "<i4" => NpyData::I32(
                need(4)?
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().expect("4")))
                    .collect(),
            ),
            "<i8" => NpyData::I64(
                need(8)?
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8")))
                    .collect(),
            ),
            other => return Err(bad(&format!("unsupported dtype {other}"))),
        };
        Ok(Npy { shape, data })
    }

    /// Read a `.npy` file.
    pub fn read(path: &std::path::Path) -> ToolResult<Self> {
        Self::parse(&crate::read_file(path)?)
    }

    /// Encode as `.npy` version 1.0.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (descr, body): (&str, Vec<u8>) = match &self.data {
            NpyData::F32(v) => ("<f4", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            NpyData::F64(v) => ("<f8", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            NpyData::I8(v) => ("|i1", v.iter().map(|&x| x as u8).collect()),
            NpyData::U8(v) => ("|u1", v.clone()),
            NpyData::I32(v) => ("<i4", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            NpyData::I64(v) => ("<i8", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        };
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        let shape = if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend(body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = Npy {
            shape: vec![2, 3],
            data: NpyData::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]),
        };
        assert_eq!(Npy::parse(&a.to_bytes()).unwrap(), a);
        let b = Npy {
            shape: vec![4],
            data: NpyData::I8(vec![1, -2, 3, 4]),
        };
        assert_eq!(Npy::parse(&b.to_bytes()).unwrap(), b);
    }
}
