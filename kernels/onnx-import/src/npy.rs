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

/// Largest `.npy` header accepted, in bytes: the most a version 1.0 file can
/// declare. NumPy itself refuses headers over 10,000 bytes by default.
pub const MAX_NPY_HEADER_BYTES: usize = u16::MAX as usize;
/// Most dimensions an array may have (NumPy 2's own limit).
pub const MAX_NPY_DIMS: usize = 64;
/// Most elements an array may have: 2^28, so that the f32 copy every tool
/// makes stays at 1 GiB.
pub const MAX_NPY_ELEMENTS: usize = 1 << 28;
/// Most bytes of element data an array may have (1 GiB).
pub const MAX_NPY_DATA_BYTES: usize = 1 << 30;
/// Largest `.npy` file read, in bytes: the data bound plus the header and its
/// 12-byte preamble.
pub const MAX_NPY_FILE_BYTES: u64 = (MAX_NPY_DATA_BYTES + MAX_NPY_HEADER_BYTES + 12) as u64;

/// The number of elements of `shape`, checked against overflow and
/// [`MAX_NPY_ELEMENTS`].
pub fn checked_elements(shape: &[usize]) -> ToolResult<usize> {
    let n = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            ToolError::Npy(format!(
                "shape {shape:?} has more elements than a machine word can count"
            ))
        })?;
    if n > MAX_NPY_ELEMENTS {
        return Err(ToolError::Npy(format!(
            "shape {shape:?} has {n} elements, more than the {MAX_NPY_ELEMENTS} accepted"
        )));
    }
    Ok(n)
}

impl NpyData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            NpyData::F32(v) => v.len(),
            NpyData::F64(v) => v.len(),
            NpyData::I8(v) => v.len(),
            NpyData::U8(v) => v.len(),
            NpyData::I32(v) => v.len(),
            NpyData::I64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Npy {
    /// Number of elements (of the data; [`Npy::check`] makes sure the shape
    /// agrees).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that the shape is within bounds and counts exactly the elements
    /// held; returns that count. Arrays built in code are not checked on
    /// construction: every tool that consumes one calls this first.
    pub fn check(&self) -> ToolResult<usize> {
        if self.shape.len() > MAX_NPY_DIMS {
            return Err(ToolError::Npy(format!(
                "{} dimensions, more than the {MAX_NPY_DIMS} accepted",
                self.shape.len()
            )));
        }
        let n = checked_elements(&self.shape)?;
        if n != self.data.len() {
            return Err(ToolError::Npy(format!(
                "shape {:?} has {n} elements but the array holds {}",
                self.shape,
                self.data.len()
            )));
        }
        Ok(n)
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

    /// Parse `.npy` bytes. The shape's element count is checked (overflow,
    /// [`MAX_NPY_ELEMENTS`], [`MAX_NPY_DATA_BYTES`]) and the data must be
    /// exactly shape x element size: a truncated or padded file is an error,
    /// never a shorter array.
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
            2 | 3 => return Err(bad("truncated header")),
            v => return Err(bad(&format!("unsupported .npy version {v}"))),
        };
        if hlen > MAX_NPY_HEADER_BYTES {
            return Err(bad(&format!(
                "header of {hlen} bytes, more than the {MAX_NPY_HEADER_BYTES} accepted"
            )));
        }
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
        let size = match descr {
            "|i1" | "|u1" => 1,
            "<f4" | "<i4" => 4,
            "<f8" | "<i8" => 8,
            other => return Err(bad(&format!("unsupported dtype {other}"))),
        };
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
            .map(|s| {
                s.parse::<usize>()
                    .map_err(|_| bad(&format!("bad shape ({inner}): {s} is not a dimension")))
            })
            .collect::<ToolResult<Vec<_>>>()?;
        if shape.len() > MAX_NPY_DIMS {
            return Err(bad(&format!(
                "{} dimensions, more than the {MAX_NPY_DIMS} accepted",
                shape.len()
            )));
        }
        let n = checked_elements(&shape)?;
        let want = n
            .checked_mul(size)
            .filter(|&b| b <= MAX_NPY_DATA_BYTES)
            .ok_or_else(|| {
                bad(&format!(
                    "shape {shape:?} of {descr} needs {n} x {size} bytes, more than the {MAX_NPY_DATA_BYTES} accepted"
                ))
            })?;
        let body = &bytes[start + hlen..];
        if body.len() != want {
            let what = if body.len() < want {
                "truncated"
            } else {
                "has trailing bytes"
            };
            return Err(bad(&format!(
                "data {what}: shape {shape:?} of {descr} needs {want} bytes, the file holds {}",
                body.len()
            )));
        }
        let data = match descr {
            "<f4" => NpyData::F32(
                body.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
                    .collect(),
            ),
            "<f8" => NpyData::F64(
                body.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8")))
                    .collect(),
            ),
            "|i1" => NpyData::I8(body.iter().map(|&b| b as i8).collect()),
            "|u1" => NpyData::U8(body.to_vec()),
            "<i4" => NpyData::I32(
                body.chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().expect("4")))
                    .collect(),
            ),
            "<i8" => NpyData::I64(
                body.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8")))
                    .collect(),
            ),
            _ => unreachable!("dtype {descr} was matched above"),
        };
        Ok(Npy { shape, data })
    }

    /// Read a `.npy` file; errors name it. A file larger than
    /// [`MAX_NPY_FILE_BYTES`] is refused before it is read.
    pub fn read(path: &std::path::Path) -> ToolResult<Self> {
        let io = |source| ToolError::Io {
            path: path.display().to_string(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_NPY_FILE_BYTES {
            return Err(ToolError::Npy(format!(
                "{}: {len} bytes, more than the {MAX_NPY_FILE_BYTES} accepted",
                path.display()
            )));
        }
        Self::parse(&crate::read_file(path)?).map_err(|e| match e {
            ToolError::Npy(m) => ToolError::Npy(format!("{}: {m}", path.display())),
            other => other,
        })
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

    /// A version 1.0 file with any header fields, as a hostile writer makes it.
    fn raw(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
        let header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    fn npy_err(bytes: &[u8]) -> String {
        match Npy::parse(bytes) {
            Ok(a) => panic!("accepted {:?} with {} elements", a.shape, a.len()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn shapes_whose_element_count_overflows_are_refused() {
        // 2^62 x 2^62 wraps to 0 in a plain product: an empty array.
        let err = npy_err(&raw(
            "<f4",
            "(4611686018427387904, 4611686018427387904)",
            &[],
        ));
        assert!(err.contains("more elements than a machine word"), "{err}");
        let err = npy_err(&raw("|u1", "(18446744073709551615, 2)", &[]));
        assert!(err.contains("more elements than a machine word"), "{err}");
    }

    #[test]
    fn shapes_over_the_bounds_are_refused() {
        let err = npy_err(&raw("|i1", "(1099511627776,)", &[]));
        assert!(
            err.contains(&format!("more than the {MAX_NPY_ELEMENTS} accepted")),
            "{err}"
        );
        // Within the element bound, over the byte bound.
        let err = npy_err(&raw("<f8", &format!("({MAX_NPY_ELEMENTS},)"), &[]));
        assert!(
            err.contains(&format!("more than the {MAX_NPY_DATA_BYTES} accepted")),
            "{err}"
        );
        let dims = vec!["1"; MAX_NPY_DIMS + 1].join(", ");
        let err = npy_err(&raw("<f4", &format!("({dims})"), &[0; 4]));
        assert!(err.contains("dimensions"), "{err}");
        let err = npy_err(&raw("<f4", "(2, -3)", &[]));
        assert!(err.contains("-3 is not a dimension"), "{err}");
    }

    #[test]
    fn data_must_be_exactly_shape_times_element_size() {
        assert_eq!(
            Npy::parse(&raw("<i4", "(2, 2)", &[1; 16])).unwrap().len(),
            4
        );
        let err = npy_err(&raw("<i4", "(2, 2)", &[1; 15]));
        assert!(
            err.contains("truncated") && err.contains("needs 16 bytes, the file holds 15"),
            "{err}"
        );
        let err = npy_err(&raw("<i4", "(2, 2)", &[1; 17]));
        assert!(err.contains("trailing bytes"), "{err}");
        // A zero-length dimension holds nothing, and nothing more.
        assert!(Npy::parse(&raw("<f4", "(0, 3)", &[])).unwrap().is_empty());
        let err = npy_err(&raw("<f4", "(0, 3)", &[0; 4]));
        assert!(err.contains("trailing bytes"), "{err}");
    }

    #[test]
    fn headers_are_bounded_and_dtypes_named() {
        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        v2.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = npy_err(&v2);
        assert!(
            err.contains(&format!("more than the {MAX_NPY_HEADER_BYTES} accepted")),
            "{err}"
        );
        let err = npy_err(&raw("<c8", "(1,)", &[0; 8]));
        assert!(err.contains("unsupported dtype <c8"), "{err}");
    }

    #[test]
    fn arrays_built_in_code_are_checked() {
        let good = Npy {
            shape: vec![2, 2],
            data: NpyData::U8(vec![0; 4]),
        };
        assert_eq!(good.check().unwrap(), 4);
        let short = Npy {
            shape: vec![3, 2],
            data: NpyData::U8(vec![0; 4]),
        };
        let err = short.check().unwrap_err().to_string();
        assert!(
            err.contains("has 6 elements but the array holds 4"),
            "{err}"
        );
        let huge = Npy {
            shape: vec![1 << 62, 1 << 62],
            data: NpyData::U8(Vec::new()),
        };
        assert!(huge.check().is_err());
    }

    #[test]
    fn read_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.npy");
        std::fs::write(&path, raw("<f4", "(3,)", &[0; 8])).unwrap();
        let err = Npy::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("short.npy") && err.contains("truncated"),
            "{err}"
        );
    }
}
