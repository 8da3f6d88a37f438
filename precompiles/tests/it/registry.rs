//! The model registry: single-call and chunked uploads, typed errors, state.

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_sol_types::{SolCall, SolError, SolEvent};
use infera_precompiles::{
    abi::*,
    layout::{CODE_PREFIX, chunk_address, model_address},
};

use crate::common::{DIGITS, DevChain, KEY, KEY2, Via, address_of, forwarder};

fn register_call(model: &[u8]) -> Bytes {
    IModelRegistry::registerCall {
        model: Bytes::copy_from_slice(model),
    }
    .abi_encode()
    .into()
}

fn begin(id: B256, size: u32) -> Bytes {
    IModelRegistry::beginUploadCall { id, size }
        .abi_encode()
        .into()
}

fn chunk(id: B256, offset: u32, data: &[u8]) -> Bytes {
    IModelRegistry::uploadChunkCall {
        id,
        offset,
        data: Bytes::copy_from_slice(data),
    }
    .abi_encode()
    .into()
}

fn status(chain: &DevChain, uploader: Address, id: B256) -> (u32, u32) {
    let out = chain.call_ok(
        MODEL_REGISTRY_ADDRESS,
        IModelRegistry::uploadStatusCall { uploader, id }
            .abi_encode()
            .into(),
    );
    let r = IModelRegistry::uploadStatusCall::abi_decode_returns(&out).unwrap();
    (r.received, r.size)
}

pub fn model_info(chain: &DevChain, id: B256) -> ModelInfo {
    let out = chain.call_ok(
        MODEL_REGISTRY_ADDRESS,
        IModelRegistry::modelInfoCall { id }.abi_encode().into(),
    );
    IModelRegistry::modelInfoCall::abi_decode_returns(&out).unwrap()
}

fn model_count(chain: &DevChain) -> U256 {
    let out = chain.call_ok(
        MODEL_REGISTRY_ADDRESS,
        IModelRegistry::modelCountCall {}.abi_encode().into(),
    );
    IModelRegistry::modelCountCall::abi_decode_returns(&out).unwrap()
}

/// Register the digits model in one transaction; its id.
pub fn register_digits(chain: &mut DevChain) -> B256 {
    let receipt = chain.transact(
        KEY,
        MODEL_REGISTRY_ADDRESS,
        register_call(DIGITS),
        5_000_000,
    );
    assert!(receipt.status(), "register failed: {receipt:?}");
    keccak256(DIGITS)
}

#[test]
fn register_in_one_call_stores_the_model_in_state() {
    let mut chain = DevChain::new();
    let id = keccak256(DIGITS);
    let receipt = chain.transact(
        KEY,
        MODEL_REGISTRY_ADDRESS,
        register_call(DIGITS),
        5_000_000,
    );
    assert!(receipt.status());
    let logs = receipt.logs();
    assert_eq!(logs.len(), 1);
    let event = IModelRegistry::ModelRegistered::decode_log_data(&logs[0].data).unwrap();
    assert_eq!(event.id, id);
    assert_eq!(event.uploader, address_of(KEY));
    assert_eq!(event.size as usize, DIGITS.len());

    // The model is the code of its account, behind a STOP byte.
    let code = chain.code(model_address(id)).unwrap();
    assert_eq!(code[0], CODE_PREFIX);
    assert_eq!(&code[1..], DIGITS);

    let info = model_info(&chain, id);
    let model = infera_kernels::Model::decode(DIGITS).unwrap();
    assert_eq!(info.id, id);
    assert_eq!(info.size as usize, DIGITS.len());
    assert_eq!(info.uploader, address_of(KEY));
    assert_eq!(info.blockNumber, 1);
    assert_eq!(
        info.inferenceGas,
        infera_precompiles::gas::inference_gas(&model.cost(), DIGITS.len() as u64)
    );
    assert_eq!(event.inferenceGas, info.inferenceGas);
    assert_eq!(info.inputType, 0);
    assert_eq!(info.inputShape, vec![1, 1, 8, 8]);
    assert_eq!(info.inputBytes, 64);
    assert_eq!(info.outputBytes as usize, model.output_spec().byte_len());
    assert_eq!(model_count(&chain), U256::from(1));
    let at = chain.call_ok(
        MODEL_REGISTRY_ADDRESS,
        IModelRegistry::modelAtCall { index: U256::ZERO }
            .abi_encode()
            .into(),
    );
    assert_eq!(
        IModelRegistry::modelAtCall::abi_decode_returns(&at).unwrap(),
        id
    );

    // Registering again succeeds and changes nothing.
    let receipt = chain.transact(
        KEY2,
        MODEL_REGISTRY_ADDRESS,
        register_call(DIGITS),
        5_000_000,
    );
    assert!(receipt.status());
    assert!(receipt.logs().is_empty());
    assert_eq!(model_count(&chain), U256::from(1));
    assert_eq!(model_info(&chain, id).uploader, address_of(KEY));
}

#[test]
fn chunked_upload_across_blocks_resumes_and_registers() {
    let mut chain = DevChain::new();
    let id = keccak256(DIGITS);
    let size = DIGITS.len() as u32;
    let me = address_of(KEY);
    let parts = [&DIGITS[..3000], &DIGITS[3000..6000], &DIGITS[6000..]];

    assert!(
        chain
            .transact(KEY, MODEL_REGISTRY_ADDRESS, begin(id, size), 1_000_000)
            .status()
    );
    assert_eq!(status(&chain, me, id), (0, size));
    let receipt = chain.transact(
        KEY,
        MODEL_REGISTRY_ADDRESS,
        chunk(id, 0, parts[0]),
        2_000_000,
    );
    assert!(receipt.status());
    let progress =
        IModelRegistry::UploadProgress::decode_log_data(&receipt.logs()[0].data).unwrap();
    assert_eq!((progress.received, progress.size), (3000, size));
    assert_eq!(status(&chain, me, id), (3000, size));
    // The chunk lives in its own account until completion.
    assert_eq!(
        &chain.code(chunk_address(me, id, 0)).unwrap()[1..],
        parts[0]
    );

    // Inference says the upload is incomplete.
    let revert = chain.call_revert(
        INFERENCE_ADDRESS,
        IInference::inferCall {
            id,
            input: vec![0u8; 64].into(),
        }
        .abi_encode()
        .into(),
    );
    assert_eq!(
        UploadIncomplete::abi_decode(&revert).unwrap(),
        UploadIncomplete {
            id,
            received: 3000,
            size
        }
    );

    // Resuming (same size) keeps the progress; another size conflicts.
    assert!(
        chain
            .transact(KEY, MODEL_REGISTRY_ADDRESS, begin(id, size), 1_000_000)
            .status()
    );
    assert_eq!(status(&chain, me, id), (3000, size));
    let conflict = chain.call_revert(MODEL_REGISTRY_ADDRESS, begin(id, size + 1));
    assert_eq!(
        UploadSizeConflict::abi_decode(&conflict).unwrap(),
        UploadSizeConflict {
            id,
            size,
            requested: size + 1
        }
    );
    // Out of order and out of bounds chunks are refused.
    let out_of_order = chain.call_revert(MODEL_REGISTRY_ADDRESS, chunk(id, 0, parts[1]));
    assert_eq!(
        ChunkOutOfOrder::abi_decode(&out_of_order).unwrap(),
        ChunkOutOfOrder {
            id,
            expectedOffset: 3000,
            offset: 0
        }
    );
    let mut too_long = parts[1].to_vec();
    too_long.extend_from_slice(parts[2]);
    too_long.push(0);
    let out_of_bounds = chain.call_revert(MODEL_REGISTRY_ADDRESS, chunk(id, 3000, &too_long));
    assert_eq!(
        ChunkOutOfBounds::abi_decode(&out_of_bounds).unwrap(),
        ChunkOutOfBounds {
            id,
            offset: 3000,
            length: too_long.len() as u32,
            size
        }
    );

    // Two more chunks in two more blocks; the last registers the model.
    assert!(
        chain
            .transact(
                KEY,
                MODEL_REGISTRY_ADDRESS,
                chunk(id, 3000, parts[1]),
                2_000_000
            )
            .status()
    );
    let receipt = chain.transact(
        KEY,
        MODEL_REGISTRY_ADDRESS,
        chunk(id, 6000, parts[2]),
        5_000_000,
    );
    assert!(receipt.status(), "{receipt:?}");
    let registered = receipt
        .logs()
        .iter()
        .find_map(|log| IModelRegistry::ModelRegistered::decode_log_data(&log.data).ok())
        .expect("ModelRegistered");
    assert_eq!(registered.id, id);
    let info = model_info(&chain, id);
    assert_eq!(info.blockNumber, 5);
    assert_eq!(info.uploader, me);
    assert_eq!(&chain.code(model_address(id)).unwrap()[1..], DIGITS);
    // The upload and its chunk accounts are gone.
    assert_eq!(status(&chain, me, id), (0, 0));
    assert!(chain.account(chunk_address(me, id, 0)).is_none());
    assert!(chain.account(chunk_address(me, id, 1)).is_none());
}

#[test]
fn uploads_that_fail_validation_or_hash_revert_and_can_be_cancelled() {
    let mut chain = DevChain::new();
    let me = address_of(KEY);

    // Not a model: InvalidModel with the engine's reason.
    let garbage = vec![7u8; 100];
    let revert = chain.call_revert(MODEL_REGISTRY_ADDRESS, register_call(&garbage));
    let error = InvalidModel::abi_decode(&revert).unwrap();
    assert_eq!(error.id, keccak256(&garbage));
    assert!(error.reason.contains("magic"), "{}", error.reason);
    // Empty and oversized models.
    let revert = chain.call_revert(MODEL_REGISTRY_ADDRESS, register_call(&[]));
    assert_eq!(
        InvalidModelSize::abi_decode(&revert).unwrap(),
        InvalidModelSize {
            size: U256::ZERO,
            max: U256::from(MAX_MODEL_BYTES)
        }
    );
    let revert = chain.call_revert(
        MODEL_REGISTRY_ADDRESS,
        begin(B256::ZERO, MAX_MODEL_BYTES + 1),
    );
    assert!(InvalidModelSize::abi_decode(&revert).is_ok());

    // An upload whose bytes do not hash to its id.
    let wrong_id = B256::repeat_byte(9);
    let size = DIGITS.len() as u32;
    assert!(
        chain
            .transact(
                KEY,
                MODEL_REGISTRY_ADDRESS,
                begin(wrong_id, size),
                1_000_000
            )
            .status()
    );
    assert!(
        chain
            .transact(
                KEY,
                MODEL_REGISTRY_ADDRESS,
                chunk(wrong_id, 0, &DIGITS[..100]),
                1_000_000
            )
            .status()
    );
    let revert = chain.call_revert(MODEL_REGISTRY_ADDRESS, chunk(wrong_id, 100, &DIGITS[100..]));
    assert_eq!(
        ModelHashMismatch::abi_decode(&revert).unwrap(),
        ModelHashMismatch {
            expected: wrong_id,
            actual: keccak256(DIGITS)
        }
    );
    // A reverted transaction keeps the upload as it was.
    let receipt = chain.transact(
        KEY,
        MODEL_REGISTRY_ADDRESS,
        chunk(wrong_id, 100, &DIGITS[100..]),
        3_000_000,
    );
    assert!(!receipt.status());
    assert_eq!(status(&chain, me, wrong_id), (100, size));

    // Cancel drops the upload and its chunk account; a second cancel has nothing to drop.
    let cancel: Bytes = IModelRegistry::cancelUploadCall { id: wrong_id }
        .abi_encode()
        .into();
    assert!(
        chain
            .transact(KEY, MODEL_REGISTRY_ADDRESS, cancel.clone(), 1_000_000)
            .status()
    );
    assert_eq!(status(&chain, me, wrong_id), (0, 0));
    assert!(chain.account(chunk_address(me, wrong_id, 0)).is_none());
    let revert = chain.call_revert(MODEL_REGISTRY_ADDRESS, cancel);
    assert_eq!(
        NoUpload::abi_decode(&revert).unwrap(),
        NoUpload {
            uploader: me,
            id: wrong_id
        }
    );
    // And inference no longer reports it as incomplete.
    let revert = chain.call_revert(
        INFERENCE_ADDRESS,
        IInference::inferCall {
            id: wrong_id,
            input: Bytes::new(),
        }
        .abi_encode()
        .into(),
    );
    assert_eq!(
        UnknownModel::abi_decode(&revert).unwrap(),
        UnknownModel { id: wrong_id }
    );
    // Chunk without an upload.
    let revert = chain.call_revert(MODEL_REGISTRY_ADDRESS, chunk(wrong_id, 0, b"x"));
    assert!(NoUpload::abi_decode(&revert).is_ok());
    assert_eq!(model_count(&chain), U256::ZERO);
}

#[test]
fn malformed_calls_static_writes_and_reverted_frames() {
    let mut chain = DevChain::new();
    // Unknown selector and undecodable arguments.
    let revert = chain.call_revert(MODEL_REGISTRY_ADDRESS, Bytes::from_static(&[1, 2, 3, 4]));
    assert!(MalformedCall::abi_decode(&revert).is_ok());
    let mut bad = register_call(DIGITS).to_vec();
    bad.truncate(40);
    let revert = chain.call_revert(MODEL_REGISTRY_ADDRESS, bad.into());
    assert!(MalformedCall::abi_decode(&revert).is_ok());
    let revert = chain.call_revert(
        MODEL_REGISTRY_ADDRESS,
        IModelRegistry::modelAtCall {
            index: U256::from(5),
        }
        .abi_encode()
        .into(),
    );
    assert!(
        MalformedCall::abi_decode(&revert)
            .unwrap()
            .reason
            .contains("out of range")
    );
    let revert = chain.call_revert(
        MODEL_REGISTRY_ADDRESS,
        IModelRegistry::modelInfoCall { id: B256::ZERO }
            .abi_encode()
            .into(),
    );
    assert_eq!(
        UnknownModel::abi_decode(&revert).unwrap(),
        UnknownModel { id: B256::ZERO }
    );

    // A state-changing call through STATICCALL.
    let static_fwd = chain.deploy(&forwarder(MODEL_REGISTRY_ADDRESS, Via::StaticCall, false));
    let revert = chain.call_revert(static_fwd, register_call(DIGITS));
    assert!(WriteInStaticCall::abi_decode(&revert).is_ok());
    // Views work through STATICCALL.
    let out = chain.call_ok(
        static_fwd,
        IModelRegistry::modelCountCall {}.abi_encode().into(),
    );
    assert_eq!(
        IModelRegistry::modelCountCall::abi_decode_returns(&out).unwrap(),
        U256::ZERO
    );

    // A contract registers a model and then reverts: nothing of it stays.
    let reverting = chain.deploy(&forwarder(MODEL_REGISTRY_ADDRESS, Via::Call, true));
    let receipt = chain.transact(KEY, reverting, register_call(DIGITS), 5_000_000);
    assert!(!receipt.status());
    assert!(receipt.logs().is_empty());
    assert_eq!(model_count(&chain), U256::ZERO);
    assert!(chain.account(model_address(keccak256(DIGITS))).is_none());
    assert!(chain.account(MODEL_REGISTRY_ADDRESS).is_none());

    // The same contract without the final revert registers it, as its own uploader.
    let caller = chain.deploy(&forwarder(MODEL_REGISTRY_ADDRESS, Via::Call, false));
    let receipt = chain.transact(KEY, caller, register_call(DIGITS), 5_000_000);
    assert!(receipt.status());
    assert_eq!(
        super::registry::model_info(&chain, keccak256(DIGITS)).uploader,
        caller
    );
    // The registry account is kept alive by its nonce.
    assert_eq!(chain.account(MODEL_REGISTRY_ADDRESS).unwrap().nonce, 1);
}

#[test]
fn the_largest_chunk_fits_one_transaction_under_the_osaka_cap() {
    // Documented in precompiles/README.md: the largest chunk of a non-final
    // uploadChunk that one transaction (EIP-7825: 2^24 gas) can carry.
    let cap = infera_evm::TX_GAS_LIMIT_CAP;
    let largest = infera_precompiles::gas::largest_chunk(cap);
    assert!(largest > 100_000, "{largest}");
    // The largest model goes in fewer than 200 such transactions.
    assert!(u64::from(MAX_MODEL_BYTES).div_ceil(largest) < 200);

    let mut chain = DevChain::new();
    let id = B256::repeat_byte(3);
    assert!(
        chain
            .transact(
                KEY,
                MODEL_REGISTRY_ADDRESS,
                begin(id, MAX_MODEL_BYTES),
                1_000_000
            )
            .status()
    );
    let data = vec![0xa5u8; largest as usize];
    let receipt = chain.transact(KEY, MODEL_REGISTRY_ADDRESS, chunk(id, 0, &data), cap);
    assert!(receipt.status(), "{receipt:?}");
    assert!(receipt.cumulative_gas_used() <= cap);
    assert_eq!(
        status(&chain, address_of(KEY), id),
        (largest as u32, MAX_MODEL_BYTES)
    );
}
