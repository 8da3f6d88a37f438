//! What dense and convolution layers share: constant weights, a bias and
//! requantisation per output channel, and the proof that their int32
//! accumulators cannot overflow.

use super::check::Cx;
use crate::error::{ModelError, ModelResult};
use crate::format::{Reader, Writer};
use crate::quant::Requant;
use crate::tensor::DType;

/// The output channels' constants, in wire order.
pub(crate) struct OutMode {
    pub dtype: DType,
    pub act_min: i8,
    pub act_max: i8,
    pub weights: Vec<i8>,
    pub bias: Vec<i32>,
    pub requant: Vec<Requant>,
}

/// Write `out_dtype u8, act_min i8, act_max i8, weights i8[..], bias i32[..],
/// requant (i32, u8)[..]` (the requant table only for an int8 output).
pub(crate) fn encode(
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

/// Read what [`encode`] wrote for `outs` channels of `red` weights each.
///
/// The count comes from untrusted dims, so it is computed in u64 and `take`
/// refuses it before allocating if the file is shorter.
pub(crate) fn decode(r: &mut Reader<'_>, outs: usize, red: u64) -> ModelResult<OutMode> {
    let dtype = r.dtype()?;
    let act_min = r.i8()?;
    let act_max = r.i8()?;
    let weights = r.i8_vec((outs as u64).saturating_mul(red))?;
    let bias = r.i32_vec(outs as u64)?;
    let requant = if dtype == DType::I8 {
        r.requant_vec(outs as u64)?
    } else {
        Vec::new()
    };
    Ok(OutMode {
        dtype,
        act_min,
        act_max,
        weights,
        bias,
        requant,
    })
}

pub(crate) fn check_weights(
    cx: &Cx<'_>,
    weights: &[i8],
    bias: &[i32],
    outs: usize,
    red: usize,
) -> ModelResult<()> {
    if weights.len() != outs * red || bias.len() != outs {
        return Err(cx.fail(format!(
            "expected {} weights and {outs} biases, got {} and {}",
            outs * red,
            weights.len(),
            bias.len()
        )));
    }
    Ok(())
}

pub(crate) fn check_output_mode(
    cx: &Cx<'_>,
    dtype: DType,
    requant: &[Requant],
    outs: usize,
    lo: i8,
    hi: i8,
) -> ModelResult<()> {
    match dtype {
        DType::I8 => {
            if requant.len() != outs {
                return Err(cx.fail(format!(
                    "expected {outs} requant entries, got {}",
                    requant.len()
                )));
            }
            for &rq in requant {
                cx.requant(rq)?;
            }
            cx.act(lo, hi)
        }
        DType::I32 => {
            if !requant.is_empty() || cx.out_zero_point != 0 {
                return Err(cx.fail("an i32 output has no requant and zero point 0".into()));
            }
            Ok(())
        }
    }
}

/// Prove that `|bias[o]| + sum_k 255 * |w[o, k]|` fits in i32 for every output:
/// since `|x - zx| <= 255`, every partial sum of every input stays in range, in
/// any order of summation.
pub(crate) fn check_accumulators(
    node: usize,
    weights: &[i8],
    bias: &[i32],
    red: usize,
) -> ModelResult<()> {
    for (channel, (row, &b)) in weights.chunks_exact(red).zip(bias).enumerate() {
        let sum: i64 = row.iter().map(|&w| i64::from(w).abs()).sum();
        if 255 * sum + i64::from(b).abs() > i64::from(i32::MAX) {
            return Err(ModelError::AccumulatorOverflow { node, channel });
        }
    }
    Ok(())
}

/// Heap bytes of a layer's constant tables.
pub(crate) fn table_bytes(weights: &[i8], bias: &[i32], requant: &[Requant]) -> usize {
    weights.len() + std::mem::size_of_val(bias) + std::mem::size_of_val(requant)
}
