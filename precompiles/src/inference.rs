//! The inference precompile at [`INFERENCE_ADDRESS`](crate::abi::INFERENCE_ADDRESS).

use std::{sync::Arc, time::Instant};

use alloy_primitives::{B256, Bytes, U256};
use alloy_sol_types::{SolCall, SolInterface};
use infera_kernels::{DType, Model};
use revm::context_interface::JournalTr;

use crate::{
    abi::{
        IInference, IInference::IInferenceCalls, InvalidInputLength, MalformedCall, UnknownModel,
        UploadIncomplete,
    },
    cache::ModelCache,
    gas,
    host::{Exit, GasMeter, Host, Step, revert},
    layout::{PendingRecord, model_address, pending_slot},
    registry::read_record,
};

/// Index of the largest element of an output tensor (the first one on ties).
pub fn argmax(dtype: DType, output: &[u8]) -> usize {
    let values: Box<dyn Iterator<Item = i64>> = match dtype {
        DType::I8 => Box::new(output.iter().map(|b| i64::from(*b as i8))),
        DType::I32 => Box::new(
            output
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        ),
    };
    let mut best: Option<(usize, i64)> = None;
    for (i, v) in values.enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| i)
}

/// The decoded model `id` from the cache, or from its account's code.
fn load_model<J: JournalTr>(
    host: &mut Host<'_, J>,
    cache: &ModelCache,
    id: B256,
) -> Step<Arc<Model>> {
    let cached = cache.get(&id);
    infera_metrics::inference::cache_lookup(cached.is_some());
    if let Some(model) = cached {
        return Ok(model);
    }
    let bytes = host
        .payload(model_address(id))?
        .ok_or_else(|| Exit::Fatal(format!("registered model {id} has no code in state")))?;
    let model = Model::decode(&bytes)
        .map_err(|e| Exit::Fatal(format!("registered model {id} fails to decode: {e}")))?;
    let model = Arc::new(model);
    cache.insert(id, model.clone());
    Ok(model)
}

/// Run one inference call.
pub(crate) fn run<J: JournalTr>(
    host: &mut Host<'_, J>,
    gas_meter: &mut GasMeter,
    cache: &ModelCache,
    input: &[u8],
) -> Step<Bytes> {
    gas_meter.charge(gas::INFER_BASE_GAS)?;
    let call = IInferenceCalls::abi_decode(input).map_err(|e| {
        revert(MalformedCall {
            reason: format!("inference: {e}"),
        })
    })?;
    let (id, data, want_argmax) = match call {
        IInferenceCalls::infer(c) => (c.id, c.input, false),
        IInferenceCalls::inferArgmax(c) => (c.id, c.input, true),
    };
    let Some(record) = read_record(host, id)? else {
        if let Some(pending) = PendingRecord::decode(host.sload(pending_slot(id))?) {
            return Err(revert(UploadIncomplete {
                id,
                received: pending.received,
                size: pending.size,
            }));
        }
        return Err(revert(UnknownModel { id }));
    };
    if data.len() != record.input_bytes as usize {
        return Err(revert(InvalidInputLength {
            id,
            expected: U256::from(record.input_bytes),
            actual: U256::from(data.len()),
        }));
    }
    let call_gas = gas::inference_call_gas(
        record.inference_gas,
        u64::from(record.input_bytes),
        u64::from(record.output_bytes),
    );
    gas_meter.charge_to(call_gas)?;
    let model = load_model(host, cache, id)?;
    let started = Instant::now();
    let (output, device) = cache.infer_on(id, &model, &data);
    infera_metrics::inference::call(id.to_string(), device, started.elapsed(), call_gas);
    #[cfg_attr(not(feature = "test-hooks"), expect(unused_mut))]
    let mut output = output.map_err(|e| {
        revert(MalformedCall {
            reason: format!("inference: {e}"),
        })
    })?;
    #[cfg(feature = "test-hooks")]
    if cache.corrupts_outputs() {
        // Rotating the tensor moves its largest element, so an argmax (the
        // form contracts use most) changes too, not only the raw bytes.
        if output.len() > 1 {
            output.rotate_left(1);
        } else if let Some(first) = output.first_mut() {
            *first = first.wrapping_add(1);
        }
    }
    if want_argmax {
        let label = argmax(model.output_spec().dtype, &output);
        Ok(IInference::inferArgmaxCall::abi_encode_returns(&U256::from(label)).into())
    } else {
        Ok(IInference::inferCall::abi_encode_returns(&Bytes::from(output)).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_largest() {
        assert_eq!(argmax(DType::I8, &[0x80, 5, 5, 0xff]), 1);
        let words: Vec<u8> = [-3i32, 7, 100, 100]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(argmax(DType::I32, &words), 2);
        assert_eq!(argmax(DType::I8, &[]), 0);
    }
}
