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
//! Operator tags and parameter layouts are in [`encode_op`] / [`decode_op`].

use crate::error::{ModelError, ModelResult};
use crate::limits::*;
use crate::ops::{AddParams, Conv2dParams, DenseParams, MulParams, Op, PoolParams};
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

    fn usize(&mut self) -> ModelResult<usize> {
        Ok(self.u32()? as usize)
    }

    fn bool(&mut self, field: &'static str) -> ModelResult<bool> {
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
    fn i8_vec(&mut self, count: u64) -> ModelResult<Vec<i8>> {
        Ok(self.take(count)?.iter().map(|&b| b as i8).collect())
    }

    fn i32_vec(&mut self, count: u64) -> ModelResult<Vec<i32>> {
        let bytes = self.take(count.saturating_mul(4))?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn requant_vec(&mut self, count: u64) -> ModelResult<Vec<Requant>> {
        let bytes = self.take(count.saturating_mul(5))?;
        Ok(bytes
            .chunks_exact(5)
            .map(|c| Requant {
                multiplier: i32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                shift: c[4],
            })
            .collect())
    }

    fn requant(&mut self) -> ModelResult<Requant> {
        Ok(Requant {
            multiplier: self.i32()?,
            shift: self.u8()?,
        })
    }

    fn pair(&mut self) -> ModelResult<[usize; 2]> {
        Ok([self.usize()?, self.usize()?])
    }

    fn quad(&mut self) -> ModelResult<[usize; 4]> {
        Ok([self.usize()?, self.usize()?, self.usize()?, self.usize()?])
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
    fn requant(&mut self, rq: Requant) {
        self.i32(rq.multiplier);
        self.u8(rq.shift);
    }
    fn axes(&mut self, v: &[usize]) {
        for &d in v {
            self.usize(d);
        }
    }
}

/// Operator wire tags.
mod tag {
    pub const DENSE: u8 = 1;
    pub const CONV2D: u8 = 2;
    pub const MAX_POOL: u8 = 3;
    pub const AVG_POOL: u8 = 4;
    pub const GLOBAL_AVG_POOL: u8 = 5;
    pub const CLIP: u8 = 6;
    pub const ADD: u8 = 7;
    pub const MUL: u8 = 8;
    pub const REQUANTIZE: u8 = 9;
    pub const RESHAPE: u8 = 10;
    pub const FLATTEN: u8 = 11;
    pub const TRANSPOSE: u8 = 12;
    pub const CONCAT: u8 = 13;
    pub const PAD: u8 = 14;
    pub const ARG_MAX: u8 = 15;
}

/// Wire tag of an operator.
pub fn op_tag(op: &Op) -> u8 {
    match op {
        Op::Dense(_) => tag::DENSE,
        Op::Conv2d(_) => tag::CONV2D,
        Op::MaxPool(_) => tag::MAX_POOL,
        Op::AvgPool { .. } => tag::AVG_POOL,
        Op::GlobalAvgPool => tag::GLOBAL_AVG_POOL,
        Op::Clip { .. } => tag::CLIP,
        Op::Add(_) => tag::ADD,
        Op::Mul(_) => tag::MUL,
        Op::Requantize(_) => tag::REQUANTIZE,
        Op::Reshape { .. } => tag::RESHAPE,
        Op::Flatten { .. } => tag::FLATTEN,
        Op::Transpose { .. } => tag::TRANSPOSE,
        Op::Concat { .. } => tag::CONCAT,
        Op::Pad { .. } => tag::PAD,
        Op::ArgMax { .. } => tag::ARG_MAX,
    }
}

/// Write an operator's parameters (not its tag).
///
/// Dense: `in u32, out u32, out_dtype u8, act_min i8, act_max i8, weights i8[out*in],
/// bias i32[out], requant (i32, u8)[out if out_dtype is i8]`.
/// Conv2d: `in_c, out_c, kh, kw, sh, sw, dh, dw, pad_t, pad_l, pad_b, pad_r, groups`
/// (u32 each), then as Dense from `out_dtype` on with `weights i8[out_c*in_c/groups*kh*kw]`.
/// Pools: `kh, kw, sh, sw, pad_t, pad_l, pad_b, pad_r` (u32), then for AvgPool
/// `count_include_pad u8 (0|1)`. Clip: `min i8, max i8`. Add: `ma i32, mb i32,
/// shift u8, act_min i8, act_max i8`. Mul: `m i32, shift u8, act_min i8, act_max i8`.
/// Requantize: `m i32, shift u8`. Reshape: `rank u8, dims u32[rank]`. Flatten,
/// Concat, ArgMax: `axis u8`. Transpose: `rank u8, perm u8[rank]`. Pad: `rank u8,
/// before u32[rank], after u32[rank]`. GlobalAvgPool: nothing.
pub(crate) fn encode_op(w: &mut Writer, op: &Op) {
    fn out_mode(
        w: &mut Writer,
        dtype: DType,
        lo: i8,
        hi: i8,
        weights: &[i8],
        bias: &[i32],
        rq: &[Requant],
    ) {
        w.u8(dtype.tag());
        w.i8(lo);
        w.i8(hi);
        weights.iter().for_each(|&v| w.i8(v));
        bias.iter().for_each(|&v| w.i32(v));
        if dtype == DType::I8 {
            rq.iter().for_each(|&r| w.requant(r));
        }
    }
    fn pool(w: &mut Writer, p: &PoolParams) {
        w.axes(&p.kernel);
        w.axes(&p.stride);
        w.axes(&p.pads);
    }
    fn axis(w: &mut Writer, a: usize) {
        w.u8(u8::try_from(a).unwrap_or(u8::MAX));
    }
    match op {
        Op::Dense(p) => {
            w.usize(p.in_features);
            w.usize(p.out_features);
            out_mode(
                w,
                p.out_dtype,
                p.act_min,
                p.act_max,
                &p.weights,
                &p.bias,
                &p.requant,
            );
        }
        Op::Conv2d(p) => {
            w.usize(p.in_channels);
            w.usize(p.out_channels);
            w.axes(&p.kernel);
            w.axes(&p.stride);
            w.axes(&p.dilation);
            w.axes(&p.pads);
            w.usize(p.groups);
            out_mode(
                w,
                p.out_dtype,
                p.act_min,
                p.act_max,
                &p.weights,
                &p.bias,
                &p.requant,
            );
        }
        Op::MaxPool(p) => pool(w, p),
        Op::AvgPool {
            pool: p,
            count_include_pad,
        } => {
            pool(w, p);
            w.u8(u8::from(*count_include_pad));
        }
        Op::GlobalAvgPool => {}
        Op::Clip { min, max } => {
            w.i8(*min);
            w.i8(*max);
        }
        Op::Add(p) => {
            w.i32(p.multiplier_a);
            w.i32(p.multiplier_b);
            w.u8(p.shift);
            w.i8(p.act_min);
            w.i8(p.act_max);
        }
        Op::Mul(p) => {
            w.requant(p.requant);
            w.i8(p.act_min);
            w.i8(p.act_max);
        }
        Op::Requantize(rq) => w.requant(*rq),
        Op::Reshape { shape } => {
            w.u8(u8::try_from(shape.len()).unwrap_or(u8::MAX));
            w.axes(shape);
        }
        Op::Flatten { axis: a } | Op::Concat { axis: a } | Op::ArgMax { axis: a } => axis(w, *a),
        Op::Transpose { perm } => {
            w.u8(u8::try_from(perm.len()).unwrap_or(u8::MAX));
            perm.iter().for_each(|&a| axis(w, a));
        }
        Op::Pad { before, after } => {
            w.u8(u8::try_from(before.len()).unwrap_or(u8::MAX));
            w.axes(before);
            w.axes(after);
        }
    }
}

/// Read an operator's parameters for a tag (the inverse of [`encode_op`]).
///
/// Only encoding is checked here (tags, lengths against the bytes left); the
/// meaning of the parameters is checked by [`Op::infer`].
pub(crate) fn decode_op(r: &mut Reader<'_>, tag_at: usize, op_tag: u8) -> ModelResult<Op> {
    // Weight tables: the count comes from untrusted dims, so it is computed in u64
    // and `take` refuses it before allocating if the file is shorter.
    #[allow(clippy::type_complexity)]
    fn out_mode(
        r: &mut Reader<'_>,
        outs: usize,
        red: u64,
    ) -> ModelResult<(DType, i8, i8, Vec<i8>, Vec<i32>, Vec<Requant>)> {
        let dtype = r.dtype()?;
        let lo = r.i8()?;
        let hi = r.i8()?;
        let weights = r.i8_vec((outs as u64).saturating_mul(red))?;
        let bias = r.i32_vec(outs as u64)?;
        let requant = if dtype == DType::I8 {
            r.requant_vec(outs as u64)?
        } else {
            Vec::new()
        };
        Ok((dtype, lo, hi, weights, bias, requant))
    }
    fn pool(r: &mut Reader<'_>) -> ModelResult<PoolParams> {
        Ok(PoolParams {
            kernel: r.pair()?,
            stride: r.pair()?,
            pads: r.quad()?,
        })
    }
    fn axis(r: &mut Reader<'_>) -> ModelResult<usize> {
        Ok(r.u8()? as usize)
    }
    Ok(match op_tag {
        tag::DENSE => {
            let in_features = r.usize()?;
            let out_features = r.usize()?;
            let (out_dtype, act_min, act_max, weights, bias, requant) =
                out_mode(r, out_features, in_features as u64)?;
            Op::Dense(DenseParams {
                in_features,
                out_features,
                out_dtype,
                weights,
                bias,
                requant,
                act_min,
                act_max,
            })
        }
        tag::CONV2D => {
            let in_channels = r.usize()?;
            let out_channels = r.usize()?;
            let kernel = r.pair()?;
            let stride = r.pair()?;
            let dilation = r.pair()?;
            let pads = r.quad()?;
            let groups = r.usize()?;
            let red = (in_channels.checked_div(groups).unwrap_or(0) as u64)
                .saturating_mul(kernel[0] as u64)
                .saturating_mul(kernel[1] as u64);
            let (out_dtype, act_min, act_max, weights, bias, requant) =
                out_mode(r, out_channels, red)?;
            Op::Conv2d(Conv2dParams {
                in_channels,
                out_channels,
                kernel,
                stride,
                dilation,
                pads,
                groups,
                out_dtype,
                weights,
                bias,
                requant,
                act_min,
                act_max,
            })
        }
        tag::MAX_POOL => Op::MaxPool(pool(r)?),
        tag::AVG_POOL => Op::AvgPool {
            pool: pool(r)?,
            count_include_pad: r.bool("count_include_pad")?,
        },
        tag::GLOBAL_AVG_POOL => Op::GlobalAvgPool,
        tag::CLIP => Op::Clip {
            min: r.i8()?,
            max: r.i8()?,
        },
        tag::ADD => Op::Add(AddParams {
            multiplier_a: r.i32()?,
            multiplier_b: r.i32()?,
            shift: r.u8()?,
            act_min: r.i8()?,
            act_max: r.i8()?,
        }),
        tag::MUL => Op::Mul(MulParams {
            requant: r.requant()?,
            act_min: r.i8()?,
            act_max: r.i8()?,
        }),
        tag::REQUANTIZE => Op::Requantize(r.requant()?),
        tag::RESHAPE => {
            let rank = r.rank()?;
            Op::Reshape {
                shape: r.dims(rank)?,
            }
        }
        tag::FLATTEN => Op::Flatten { axis: axis(r)? },
        tag::TRANSPOSE => {
            let rank = r.rank()?;
            Op::Transpose {
                perm: (0..rank).map(|_| axis(r)).collect::<ModelResult<_>>()?,
            }
        }
        tag::CONCAT => Op::Concat { axis: axis(r)? },
        tag::PAD => {
            let rank = r.rank()?;
            Op::Pad {
                before: r.dims(rank)?,
                after: r.dims(rank)?,
            }
        }
        tag::ARG_MAX => Op::ArgMax { axis: axis(r)? },
        other => {
            return Err(ModelError::InvalidField {
                field: "op",
                offset: tag_at,
                value: other.into(),
            });
        }
    })
}
