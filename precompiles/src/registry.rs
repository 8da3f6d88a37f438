//! The model registry precompile at
//! [`MODEL_REGISTRY_ADDRESS`](crate::abi::MODEL_REGISTRY_ADDRESS).

use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_sol_types::{SolCall, SolEvent, SolInterface};
use infera_kernels::Model;
use revm::context_interface::JournalTr;

use crate::{
    abi::{
        ChunkOutOfBounds, ChunkOutOfOrder, IModelRegistry, IModelRegistry::IModelRegistryCalls,
        InvalidModel, InvalidModelSize, MAX_MODEL_BYTES, MalformedCall, ModelHashMismatch,
        NoUpload, UnknownModel, UploadSizeConflict, WriteInStaticCall,
    },
    cache::ModelCache,
    gas,
    host::{GasMeter, Host, Step, revert, word_to_b256},
    layout::{
        self, MODEL_COUNT_SLOT, ModelRecord, PendingRecord, RECORD_WORDS, UploadRecord,
        chunk_address, model_address, model_list_slot, model_record_slot, pending_slot,
        upload_slot,
    },
};

/// Who calls and where: what a registry call needs besides its input.
pub(crate) struct CallEnv<'c> {
    pub(crate) caller: Address,
    pub(crate) is_static: bool,
    pub(crate) block_number: u64,
    pub(crate) cache: &'c ModelCache,
}

/// Read the record of model `id`, if registered.
pub(crate) fn read_record<J: JournalTr>(
    host: &mut Host<'_, J>,
    id: B256,
) -> Step<Option<ModelRecord>> {
    let base = model_record_slot(id);
    let word1 = host.sload(base.wrapping_add(U256::from(1)))?;
    if !ModelRecord::is_registered_word(word1) {
        return Ok(None);
    }
    let mut words = [U256::ZERO; RECORD_WORDS];
    words[1] = word1;
    for (i, word) in words.iter_mut().enumerate() {
        if i != 1 {
            *word = host.sload(base.wrapping_add(U256::from(i)))?;
        }
    }
    Ok(ModelRecord::decode(&words))
}

fn malformed(reason: impl Into<String>) -> crate::host::Exit {
    revert(MalformedCall {
        reason: reason.into(),
    })
}

fn check_size(size: u64) -> Step<()> {
    if size == 0 || size > u64::from(MAX_MODEL_BYTES) {
        return Err(revert(InvalidModelSize {
            size: U256::from(size),
            max: U256::from(MAX_MODEL_BYTES),
        }));
    }
    Ok(())
}

/// Run one registry call.
pub(crate) fn run<J: JournalTr>(
    host: &mut Host<'_, J>,
    gas_meter: &mut GasMeter,
    env: &CallEnv<'_>,
    input: &[u8],
) -> Step<Bytes> {
    gas_meter.charge(gas::REGISTRY_BASE_GAS)?;
    let call = IModelRegistryCalls::abi_decode(input)
        .map_err(|e| malformed(format!("model registry: {e}")))?;
    let writes = matches!(
        call,
        IModelRegistryCalls::register(_)
            | IModelRegistryCalls::beginUpload(_)
            | IModelRegistryCalls::uploadChunk(_)
            | IModelRegistryCalls::cancelUpload(_)
    );
    if writes && env.is_static {
        return Err(revert(WriteInStaticCall {}));
    }
    match call {
        IModelRegistryCalls::register(c) => register(host, gas_meter, env, &c.model),
        IModelRegistryCalls::beginUpload(c) => begin_upload(host, gas_meter, env, c.id, c.size),
        IModelRegistryCalls::uploadChunk(c) => {
            upload_chunk(host, gas_meter, env, c.id, c.offset, &c.data)
        }
        IModelRegistryCalls::cancelUpload(c) => cancel_upload(host, gas_meter, env, c.id),
        IModelRegistryCalls::uploadStatus(c) => {
            gas_meter.charge_to(gas::view_gas(1))?;
            let record = UploadRecord::decode(host.sload(upload_slot(c.uploader, c.id))?)
                .unwrap_or_default();
            Ok(IModelRegistry::uploadStatusCall::abi_encode_returns(
                &IModelRegistry::uploadStatusReturn {
                    received: record.received,
                    size: record.size,
                },
            )
            .into())
        }
        IModelRegistryCalls::modelInfo(c) => {
            gas_meter.charge_to(gas::view_gas(RECORD_WORDS as u64))?;
            let record =
                read_record(host, c.id)?.ok_or_else(|| revert(UnknownModel { id: c.id }))?;
            Ok(IModelRegistry::modelInfoCall::abi_encode_returns(&record.to_info(c.id)).into())
        }
        IModelRegistryCalls::modelCount(_) => {
            gas_meter.charge_to(gas::view_gas(1))?;
            let count = host.sload(MODEL_COUNT_SLOT)?;
            Ok(IModelRegistry::modelCountCall::abi_encode_returns(&count).into())
        }
        IModelRegistryCalls::modelAt(c) => {
            gas_meter.charge_to(gas::view_gas(2))?;
            let count = host.sload(MODEL_COUNT_SLOT)?;
            if c.index >= count {
                return Err(malformed(format!(
                    "modelAt: index {} out of range ({count} models)",
                    c.index
                )));
            }
            let index =
                u64::try_from(c.index).map_err(|_| malformed("modelAt: index too large"))?;
            let id = word_to_b256(host.sload(model_list_slot(index))?);
            Ok(IModelRegistry::modelAtCall::abi_encode_returns(&id).into())
        }
    }
}

fn register<J: JournalTr>(
    host: &mut Host<'_, J>,
    gas_meter: &mut GasMeter,
    env: &CallEnv<'_>,
    bytes: &Bytes,
) -> Step<Bytes> {
    check_size(bytes.len() as u64)?;
    gas_meter.charge_to(gas::register_gas(bytes.len() as u64))?;
    let id = keccak256(bytes);
    if read_record(host, id)?.is_none() {
        let model = decode_model(id, bytes)?;
        register_model(host, env, id, bytes, model)?;
    }
    Ok(IModelRegistry::registerCall::abi_encode_returns(&id).into())
}

fn decode_model(id: B256, bytes: &[u8]) -> Step<Model> {
    Model::decode(bytes).map_err(|e| {
        revert(InvalidModel {
            id,
            reason: e.to_string(),
        })
    })
}

/// Store a validated model: its account, record, list entry, count; emit
/// `ModelRegistered`.
fn register_model<J: JournalTr>(
    host: &mut Host<'_, J>,
    env: &CallEnv<'_>,
    id: B256,
    bytes: &[u8],
    model: Model,
) -> Step<()> {
    let size = u32::try_from(bytes.len()).map_err(|_| malformed("model too large"))?;
    let input = model.input_spec();
    let output = model.output_spec();
    let dims = |shape: &[usize]| -> Option<Vec<u32>> {
        shape.iter().map(|d| u32::try_from(*d).ok()).collect()
    };
    let invalid = |reason: &str| {
        revert(InvalidModel {
            id,
            reason: reason.to_string(),
        })
    };
    let count = host.sload(MODEL_COUNT_SLOT)?;
    let index = u64::try_from(count).map_err(|_| invalid("registry is full"))?;
    let record = ModelRecord {
        uploader: env.caller,
        size,
        block_number: env.block_number,
        inference_gas: gas::inference_gas(&model.cost(), bytes.len() as u64),
        index,
        input_type: layout::dtype_tag(input.dtype),
        output_type: layout::dtype_tag(output.dtype),
        input_shape: dims(&input.shape).ok_or_else(|| invalid("input dimension above u32"))?,
        output_shape: dims(&output.shape).ok_or_else(|| invalid("output dimension above u32"))?,
        input_bytes: u32::try_from(input.byte_len()).map_err(|_| invalid("input above 4 GiB"))?,
        output_bytes: u32::try_from(output.byte_len())
            .map_err(|_| invalid("output above 4 GiB"))?,
    };
    let call_gas = gas::inference_call_gas(
        record.inference_gas,
        u64::from(record.input_bytes),
        u64::from(record.output_bytes),
    );
    let tx_gas = gas::inference_tx_gas(call_gas, u64::from(record.input_bytes));
    if tx_gas > gas::MAX_INFERENCE_TX_GAS {
        return Err(invalid(&format!(
            "one inference costs {call_gas} gas ({tx_gas} with its transaction), over the per-transaction cap of {}: no transaction could call this model",
            gas::MAX_INFERENCE_TX_GAS
        )));
    }
    let words = record
        .encode()
        .ok_or_else(|| invalid("too many shape dimensions for the registry record"))?;
    host.set_payload(model_address(id), bytes)?;
    let base = model_record_slot(id);
    for (i, word) in words.iter().enumerate() {
        host.sstore(base.wrapping_add(U256::from(i)), *word)?;
    }
    host.sstore(model_list_slot(index), U256::from_be_bytes(id.0))?;
    host.sstore(MODEL_COUNT_SLOT, count + U256::from(1))?;
    if !host.sload(pending_slot(id))?.is_zero() {
        host.sstore(pending_slot(id), U256::ZERO)?;
    }
    host.log(
        IModelRegistry::ModelRegistered {
            id,
            uploader: env.caller,
            size,
            inferenceGas: record.inference_gas,
        }
        .encode_log_data(),
    );
    env.cache.insert(id, Arc::new(model));
    Ok(())
}

fn progress<J: JournalTr>(
    host: &mut Host<'_, J>,
    id: B256,
    uploader: Address,
    received: u32,
    size: u32,
) {
    host.log(
        IModelRegistry::UploadProgress {
            id,
            uploader,
            received,
            size,
        }
        .encode_log_data(),
    );
}

/// Update the per-id summary of unfinished uploads.
fn update_pending<J: JournalTr>(
    host: &mut Host<'_, J>,
    id: B256,
    uploads_delta: i32,
    progress: Option<(u32, u32)>,
) -> Step<()> {
    let slot = pending_slot(id);
    let word = host.sload(slot)?;
    let mut pending = PendingRecord::decode(word).unwrap_or_default();
    pending.uploads = pending.uploads.saturating_add_signed(uploads_delta);
    if let Some((received, size)) = progress
        && (received >= pending.received || pending.size == 0)
    {
        pending.received = received;
        pending.size = size;
    }
    let new = if pending.uploads == 0 {
        U256::ZERO
    } else {
        pending.encode()
    };
    if new != word {
        host.sstore(slot, new)?;
    }
    Ok(())
}

fn begin_upload<J: JournalTr>(
    host: &mut Host<'_, J>,
    gas_meter: &mut GasMeter,
    env: &CallEnv<'_>,
    id: B256,
    size: u32,
) -> Step<Bytes> {
    check_size(u64::from(size))?;
    gas_meter.charge_to(gas::BEGIN_UPLOAD_GAS)?;
    let slot = upload_slot(env.caller, id);
    match UploadRecord::decode(host.sload(slot)?) {
        Some(existing) if existing.size == size => {
            progress(host, id, env.caller, existing.received, size);
        }
        Some(existing) => {
            return Err(revert(UploadSizeConflict {
                id,
                size: existing.size,
                requested: size,
            }));
        }
        None => {
            let record = UploadRecord {
                chunks: 0,
                received: 0,
                size,
            };
            host.sstore(slot, record.encode())?;
            update_pending(host, id, 1, Some((0, size)))?;
            progress(host, id, env.caller, 0, size);
        }
    }
    Ok(Bytes::new())
}

fn upload_chunk<J: JournalTr>(
    host: &mut Host<'_, J>,
    gas_meter: &mut GasMeter,
    env: &CallEnv<'_>,
    id: B256,
    offset: u32,
    data: &Bytes,
) -> Step<Bytes> {
    gas_meter.charge_to(gas::REGISTRY_BASE_GAS + gas::SLOT_READ_GAS)?;
    let slot = upload_slot(env.caller, id);
    let mut record = UploadRecord::decode(host.sload(slot)?).ok_or_else(|| {
        revert(NoUpload {
            uploader: env.caller,
            id,
        })
    })?;
    if offset != record.received {
        return Err(revert(ChunkOutOfOrder {
            id,
            expectedOffset: record.received,
            offset,
        }));
    }
    let end = u64::from(offset) + data.len() as u64;
    if end > u64::from(record.size) {
        return Err(revert(ChunkOutOfBounds {
            id,
            offset,
            length: u32::try_from(data.len()).unwrap_or(u32::MAX),
            size: record.size,
        }));
    }
    let returns = |received: u32| -> Bytes {
        IModelRegistry::uploadChunkCall::abi_encode_returns(&received).into()
    };
    if data.is_empty() {
        return Ok(returns(record.received));
    }
    let completes = end == u64::from(record.size);
    gas_meter.charge_to(gas::upload_chunk_gas(data.len() as u64, completes))?;
    // `end <= size`, a u32.
    let received = end as u32;
    if !completes {
        host.set_payload(chunk_address(env.caller, id, record.chunks), data)?;
        record.chunks += 1;
        record.received = received;
        host.sstore(slot, record.encode())?;
        update_pending(host, id, 0, Some((received, record.size)))?;
        progress(host, id, env.caller, received, record.size);
        return Ok(returns(received));
    }

    let mut bytes = Vec::with_capacity(record.size as usize);
    for index in 0..record.chunks {
        let chunk = host
            .payload(chunk_address(env.caller, id, index))?
            .ok_or_else(|| {
                crate::host::Exit::Fatal(format!(
                    "chunk {index} of the upload of {id} by {} is missing from state",
                    env.caller
                ))
            })?;
        bytes.extend_from_slice(&chunk);
    }
    bytes.extend_from_slice(data);
    if bytes.len() != record.size as usize {
        return Err(crate::host::Exit::Fatal(format!(
            "upload of {id} by {} holds {} bytes, its record says {}",
            env.caller,
            bytes.len(),
            record.size
        )));
    }
    let actual = keccak256(&bytes);
    if actual != id {
        return Err(revert(ModelHashMismatch {
            expected: id,
            actual,
        }));
    }
    let registered = read_record(host, id)?.is_some();
    if !registered {
        let model = decode_model(id, &bytes)?;
        register_model(host, env, id, &bytes, model)?;
    } else {
        update_pending(host, id, -1, None)?;
    }
    drop_upload(host, env.caller, id, record)?;
    progress(host, id, env.caller, record.size, record.size);
    Ok(returns(record.size))
}

/// Delete an upload's chunk accounts and record.
fn drop_upload<J: JournalTr>(
    host: &mut Host<'_, J>,
    uploader: Address,
    id: B256,
    record: UploadRecord,
) -> Step<()> {
    for index in 0..record.chunks {
        host.clear_code(chunk_address(uploader, id, index))?;
    }
    host.sstore(upload_slot(uploader, id), U256::ZERO)
}

fn cancel_upload<J: JournalTr>(
    host: &mut Host<'_, J>,
    gas_meter: &mut GasMeter,
    env: &CallEnv<'_>,
    id: B256,
) -> Step<Bytes> {
    gas_meter.charge_to(gas::CANCEL_UPLOAD_GAS)?;
    let record =
        UploadRecord::decode(host.sload(upload_slot(env.caller, id))?).ok_or_else(|| {
            revert(NoUpload {
                uploader: env.caller,
                id,
            })
        })?;
    drop_upload(host, env.caller, id, record)?;
    update_pending(host, id, -1, None)?;
    progress(host, id, env.caller, 0, 0);
    Ok(Bytes::new())
}
