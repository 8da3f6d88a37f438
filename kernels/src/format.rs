//! The binary model format, version 1.
//!
//! All integers are little-endian; every length is explicit; nothing is optional
//! except where a tag says so; decoding consumes every byte. Layout:
//!
//! ```text
//! magic      8 bytes  "INFERA\0M"
//! version    u16      1
//! flags      u16      0 (reserved)
//! input      value    dtype u8, rank u8, dims u32[rank], zero_point i8, scale_bits u32
//! node_count u32
//! node*      op tag u8, n_inputs u8, inputs u32[n], zero_point i8, scale_bits u32, params
//! output     value id u32, dtype u8, rank u8, dims u32[rank]
//! ```
//!
//! Values are numbered in order: value 0 is the model input and value `i + 1`
//! is the output of node `i`, so a node may only read earlier values and the
//! graph is acyclic by construction. `scale_bits` is the IEEE-754 bit pattern of
//! the real scale of a value: metadata for tools (quantising inputs and
//! dequantising outputs); the engine never interprets it.
//!
//! Operator tags and parameter layouts are in each operator's module under
//! [`crate::ops`] (its `TAG` and `encode`).

use crate::error::{ModelError, ModelResult};
use crate::limits::*;
use crate::ops::Op;
use crate::quant::Requant;
use crate::tensor::{DType, TensorSpec};

/// The first 8 bytes of every model.
pub const MAGIC: [u8; 8] = *b"INFERA\0M";
/// The format version this engine reads and writes.
pub const FORMAT_VERSION: u16 = 1;

/// Bounds-checked little-endian reader that reports offsets in its errors.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Take `n` bytes, or fail without allocating if fewer remain.
    pub(crate) fn take(&mut self, n: u64) -> ModelResult<&'a [u8]> {
        if n > self.remaining() as u64 {
            return Err(ModelError::Truncated {
                offset: self.pos,
                needed: usize::try_from(n).unwrap_or(usize::MAX),
                len: self.bytes.len(),
            });
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> ModelResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N as u64)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> ModelResult<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn i8(&mut self) -> ModelResult<i8> {
        Ok(self.u8()? as i8)
    }

    pub(crate) fn u16(&mut self) -> ModelResult<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> ModelResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> ModelResult<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    pub(crate) fn usize(&mut self) -> ModelResult<usize> {
        Ok(self.u32()? as usize)
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> ModelResult<bool> {
        let at = self.pos;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(ModelError::InvalidField {
                field,
                offset: at,
                value: v.into(),
            }),
        }
    }

    pub(crate) fn dtype(&mut self) -> ModelResult<DType> {
        let at = self.pos;
        let tag = self.u8()?;
        DType::from_tag(tag).ok_or(ModelError::InvalidField {
            field: "dtype",
            offset: at,
            value: tag.into(),
        })
    }

    /// A rank byte, checked against `MAX_RANK` before anything is allocated.
    pub(crate) fn rank(&mut self) -> ModelResult<usize> {
        let rank = self.u8()? as usize;
        check_rank(rank)?;
        Ok(rank)
    }

    pub(crate) fn dims(&mut self, rank: usize) -> ModelResult<Vec<usize>> {
        (0..rank).map(|_| self.usize()).collect()
    }

    /// `count` int8 values; `count` is checked against the bytes left first.
    pub(crate) fn i8_vec(&mut self, count: u64) -> ModelResult<Vec<i8>> {
        Ok(self.take(count)?.iter().map(|&b| b as i8).collect())
    }

    pub(crate) fn i32_vec(&mut self, count: u64) -> ModelResult<Vec<i32>> {
        let bytes = self.take(count.saturating_mul(4))?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    pub(crate) fn requant_vec(&mut self, count: u64) -> ModelResult<Vec<Requant>> {
        let bytes = self.take(count.saturating_mul(5))?;
        Ok(bytes
            .chunks_exact(5)
            .map(|c| Requant {
                multiplier: i32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                shift: c[4],
            })
            .collect())
    }

    pub(crate) fn requant(&mut self) -> ModelResult<Requant> {
        Ok(Requant {
            multiplier: self.i32()?,
            shift: self.u8()?,
        })
    }

    pub(crate) fn pair(&mut self) -> ModelResult<[usize; 2]> {
        Ok([self.usize()?, self.usize()?])
    }

    pub(crate) fn quad(&mut self) -> ModelResult<[usize; 4]> {
        Ok([self.usize()?, self.usize()?, self.usize()?, self.usize()?])
    }

    /// An axis written as one byte.
    pub(crate) fn axis(&mut self) -> ModelResult<usize> {
        Ok(self.u8()? as usize)
    }
}

fn check_rank(rank: usize) -> ModelResult<()> {
    if rank > MAX_RANK {
        return Err(ModelError::LimitExceeded {
            limit: "MAX_RANK",
            max: MAX_RANK as u64,
            actual: rank as u64,
        });
    }
    Ok(())
}

/// Little-endian writer, the exact inverse of [`Reader`].
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }
    pub(crate) fn i8(&mut self, v: i8) {
        self.bytes.push(v as u8);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i32(&mut self, v: i32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    /// Lengths are bounded by limits far below `u32::MAX` in any valid model;
    /// larger values are written saturated so that decoding rejects them.
    pub(crate) fn usize(&mut self, v: usize) {
        self.u32(u32::try_from(v).unwrap_or(u32::MAX));
    }
    pub(crate) fn spec(&mut self, spec: &TensorSpec) {
        self.u8(spec.dtype.tag());
        self.u8(u8::try_from(spec.shape.len()).unwrap_or(u8::MAX));
        for &d in &spec.shape {
            self.usize(d);
        }
    }
    pub(crate) fn requant(&mut self, rq: Requant) {
        self.i32(rq.multiplier);
        self.u8(rq.shift);
    }
    pub(crate) fn axes(&mut self, v: &[usize]) {
        for &d in v {
            self.usize(d);
        }
    }
    /// A rank byte; too long a list is written saturated, so that decoding
    /// rejects it.
    pub(crate) fn rank(&mut self, rank: usize) {
        self.u8(u8::try_from(rank).unwrap_or(u8::MAX));
    }
    /// An axis as one byte, saturated like [`Writer::rank`].
    pub(crate) fn axis(&mut self, axis: usize) {
        self.u8(u8::try_from(axis).unwrap_or(u8::MAX));
    }
}

/// Wire tag of an operator.
pub fn op_tag(op: &Op) -> u8 {
    op.tag()
}
