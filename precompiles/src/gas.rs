//! The gas schedule of the AI precompiles. Every figure here is a consensus
//! rule: changing one changes which blocks are valid.
//!
//! # Inference
//! `infer`/`inferArgmax` cost [`inference_call_gas`]: the model's inference gas
//! fixed at registration ([`inference_gas`], from [`ModelCost`] and the model's
//! size) plus [`INFER_GAS_PER_IO_BYTE`] per input and output byte. All of it is
//! charged before the model runs.
//!
//! **Gas pays for the worst case of what it buys** (DESIGN.md, "Gas is a
//! promise about time"): on the slowest kernel path a node may take (the
//! portable loops, or any fast path, which must never be slower on a shape it
//! is chosen for) and with a cold cache, since an attacker can always cycle
//! more models than a cache holds and cache state never changes gas. So the
//! schedule prices what the kernels really do, not only the useful work:
//! - every call pays the cold load: a fixed [`INFER_LOAD_GAS`], the model's
//!   bytes ([`INFER_GAS_PER_MODEL_KIB`]), the kernels' prepared weights
//!   ([`INFER_GAS_PER_PREPARED_KIB`]: reductions padded to 16 lanes and
//!   widened to i16) and each output channel ([`INFER_CHANNEL_GAS`]);
//! - each node ([`INFER_NODE_GAS`]), the multiply-accumulates as executed,
//!   padding included ([`INFER_GAS_PER_KMAC`] on [`ModelCost::kernel_macs`]),
//!   and every element moved, gathered or requantised ([`INFER_GAS_PER_KELEM`]
//!   on [`ModelCost::moved_elements`] and `element_ops`);
//! - a model whose call would not fit one transaction (EIP-7825's 2^24 gas)
//!   is refused at registration ([`MAX_INFERENCE_TX_GAS`]), which with these
//!   prices is what bounds a model to 1 MiB (`MAX_MODEL_BYTES`).
//!
//! Proven by search, not by a few examples: `cargo run --release --locked -p
//! infera-bench --bin gas-calibration -- --adversarial` builds admitted models
//! at every operator's extreme shapes (groups, strides, dilation, padding,
//! int32 outputs, 512-node graphs, the largest models) and seeded random
//! graphs, and times 60 M-gas blocks of their calls through the node's
//! `BlockExecutor` on every kernel path (AMX, AVX-VNNI, AVX2 forced in turn,
//! portable), warm and cold, against a block of ERC-20 transfers (execution
//! only, in memory: the fastest block of ordinary EVM work, so the strictest
//! baseline). Target: every ratio at most 2. Figures in `precompiles/README.md`.
//!
//! # Registry
//! Model bytes are priced like contract code: per byte stored (the EVM charges
//! 200 gas per byte of deployed code), charged when the bytes arrive, so the
//! chunk that completes an upload only pays a fixed registration charge although
//! it hashes and validates the whole model. Slot writes and new accounts follow
//! the EVM's SSTORE (20,000) and account-creation (25,000) prices.

use infera_kernels::ModelCost;

// ---------------------------------------------------------------- inference

/// Fixed part of every inference's gas: call decoding, the registry lookup,
/// setting up the run. Also what an inference call that fails before the model
/// runs (unknown model, wrong input length, malformed call) is charged.
pub const INFER_BASE_GAS: u64 = 3_000;
/// Fixed gas of loading a model whatever its size, in every call's gas:
/// reading its record and code from state and allocating the decoded graph
/// (a cold call of a three-weight model measured 4 us).
pub const INFER_LOAD_GAS: u64 = 16_000;
/// Gas per operator node: allocating its output, dispatch, the fixed cost of
/// a kernel call whatever its size.
pub const INFER_NODE_GAS: u64 = 4_000;
/// Gas per thousand multiply-accumulates as the kernels execute them
/// ([`ModelCost::kernel_macs`]: reductions padded to 16 lanes, every tap of a
/// depthwise window), not only the useful ones.
pub const INFER_GAS_PER_KMAC: u64 = 400;
/// Gas per thousand other element operations and elements moved (inputs
/// read, outputs written, int32 ones counted four times, im2col gathers).
pub const INFER_GAS_PER_KELEM: u64 = 5_000;
/// Gas per KiB of the model: loading it from state and decoding it when it is
/// not in a node's cache. Cache state never changes gas, so every call pays
/// the cold price (an attacker can always cycle more models than a cache holds).
pub const INFER_GAS_PER_MODEL_KIB: u64 = 8_192;
/// Gas per KiB of the weights the portable kernels prepare
/// ([`ModelCost::prepared_bytes`]): building them on a cold load, and
/// streaming them from memory on every call.
pub const INFER_GAS_PER_PREPARED_KIB: u64 = 4_096;
/// Gas per output channel of a dense or convolution layer
/// ([`ModelCost::channels`]): decoding its bias and requantisation and
/// packing its row on a cold load, finishing it on every call.
pub const INFER_CHANNEL_GAS: u64 = 600;
/// Gas per byte of input and of output (copying, ABI encoding, memory).
pub const INFER_GAS_PER_IO_BYTE: u64 = 3;
/// The most gas one inference call may cost (the EIP-7825 per-transaction cap
/// of Osaka): the registry refuses a model no transaction could call.
pub const MAX_INFERENCE_TX_GAS: u64 = 1 << 24;

/// The inference gas of a model, fixed when it is registered: the base, its
/// nodes, the multiply-accumulates its kernels execute, the elements they move,
/// and the cold load of its bytes and prepared weights. Saturating.
pub fn inference_gas(cost: &ModelCost, model_bytes: u64) -> u64 {
    let kmacs = cost.kernel_macs.div_ceil(1000);
    let kelems = cost
        .element_ops
        .saturating_add(cost.moved_elements)
        .div_ceil(1000);
    INFER_BASE_GAS
        .saturating_add(cold_load_gas(cost, model_bytes))
        .saturating_add(cost.nodes.saturating_mul(INFER_NODE_GAS))
        .saturating_add(kmacs.saturating_mul(INFER_GAS_PER_KMAC))
        .saturating_add(kelems.saturating_mul(INFER_GAS_PER_KELEM))
}

/// The part of [`inference_gas`] that pays for a cold load: the fixed load,
/// the model's bytes, its prepared weights and its output channels (whose
/// gas also covers finishing them on every call). Saturating.
pub fn cold_load_gas(cost: &ModelCost, model_bytes: u64) -> u64 {
    INFER_LOAD_GAS
        .saturating_add(cost.channels.saturating_mul(INFER_CHANNEL_GAS))
        .saturating_add(
            model_bytes
                .div_ceil(1024)
                .saturating_mul(INFER_GAS_PER_MODEL_KIB),
        )
        .saturating_add(
            cost.prepared_bytes
                .div_ceil(1024)
                .saturating_mul(INFER_GAS_PER_PREPARED_KIB),
        )
}

/// Total gas of one `infer`/`inferArgmax` call of a model whose registered
/// inference gas is `inference_gas`. Saturating.
pub fn inference_call_gas(inference_gas: u64, input_bytes: u64, output_bytes: u64) -> u64 {
    inference_gas.saturating_add(
        input_bytes
            .saturating_add(output_bytes)
            .saturating_mul(INFER_GAS_PER_IO_BYTE),
    )
}

/// The least gas of a transaction calling the inference precompile directly
/// with `input_bytes` of input: 21,000, and the ABI-encoded calldata (selector,
/// id, offset, length, input padded to words) at 16 gas a byte (the worst case).
pub fn inference_tx_gas(call_gas: u64, input_bytes: u64) -> u64 {
    let calldata = 4 + 3 * 32 + input_bytes.div_ceil(32) * 32;
    21_000u64
        .saturating_add(calldata.saturating_mul(16))
        .saturating_add(call_gas)
}

// ----------------------------------------------------------------- registry

/// Fixed gas of every registry call (decoding, the caller's records).
pub const REGISTRY_BASE_GAS: u64 = 2_000;
/// Gas per storage slot read (the EVM's cold SLOAD).
pub const SLOT_READ_GAS: u64 = 2_100;
/// Gas per storage slot written (the EVM's SSTORE of a new value).
pub const SLOT_WRITE_GAS: u64 = 20_000;
/// Gas per storage slot cleared or overwritten (the EVM's SSTORE reset).
pub const SLOT_RESET_GAS: u64 = 5_000;
/// Gas per account created (a chunk or model account; the EVM's new-account cost).
pub const NEW_ACCOUNT_GAS: u64 = 25_000;
/// Gas per byte of a model, charged when the byte arrives (in `register` or
/// `uploadChunk`): storing it for good in the model account, hashing it and
/// validating it when the upload completes.
pub const MODEL_BYTE_GAS: u64 = 100;
/// Extra gas per byte of a chunk of a multi-transaction upload: the bytes are
/// first kept in a chunk account and read back at completion.
pub const CHUNK_BYTE_GAS: u64 = 32;
/// Gas of one log: the EVM's LOG base, per topic, and per data byte.
pub const LOG_GAS: u64 = 375;
/// Gas per log topic.
pub const LOG_TOPIC_GAS: u64 = 375;
/// Gas per byte of log data.
pub const LOG_DATA_BYTE_GAS: u64 = 8;

/// Slots a model record takes (see `layout`).
pub const MODEL_RECORD_SLOTS: u64 = 4;

/// Gas of one event with `topics` topics and `data` bytes.
pub const fn log_gas(topics: u64, data: u64) -> u64 {
    LOG_GAS + topics * LOG_TOPIC_GAS + data * LOG_DATA_BYTE_GAS
}

/// Gas of an `UploadProgress` event (id and uploader indexed; two words of data).
pub const UPLOAD_PROGRESS_LOG_GAS: u64 = log_gas(3, 64);
/// Gas of a `ModelRegistered` event (id and uploader indexed; two words of data).
pub const MODEL_REGISTERED_LOG_GAS: u64 = log_gas(3, 64);

/// Gas of registering a validated model, beyond its bytes: the model account,
/// the record, the list entry and count, and the event.
pub const REGISTRATION_GAS: u64 = NEW_ACCOUNT_GAS
    + (MODEL_RECORD_SLOTS + 2) * SLOT_WRITE_GAS
    + SLOT_RESET_GAS
    + MODEL_REGISTERED_LOG_GAS;

/// Gas of `register(model)` with `len` model bytes (charged in full before any work).
pub fn register_gas(len: u64) -> u64 {
    REGISTRY_BASE_GAS
        .saturating_add(SLOT_READ_GAS * 2)
        .saturating_add(len.saturating_mul(MODEL_BYTE_GAS))
        .saturating_add(REGISTRATION_GAS)
}

/// Gas of `beginUpload`.
pub const BEGIN_UPLOAD_GAS: u64 =
    REGISTRY_BASE_GAS + SLOT_READ_GAS * 3 + SLOT_WRITE_GAS * 2 + UPLOAD_PROGRESS_LOG_GAS;

/// Gas of a chunk account's life: creating it, and clearing it when the upload
/// completes or is cancelled (prepaid so that completion's cost does not grow
/// with the number of chunks).
pub const CHUNK_ACCOUNT_GAS: u64 = NEW_ACCOUNT_GAS + SLOT_RESET_GAS;

/// Gas of `uploadChunk` with `len` bytes; `completes` when the chunk is the
/// upload's last (then it also pays [`REGISTRATION_GAS`]).
pub fn upload_chunk_gas(len: u64, completes: bool) -> u64 {
    let base = REGISTRY_BASE_GAS
        .saturating_add(SLOT_READ_GAS * 4)
        .saturating_add(SLOT_RESET_GAS * 2)
        .saturating_add(UPLOAD_PROGRESS_LOG_GAS)
        .saturating_add(len.saturating_mul(MODEL_BYTE_GAS + CHUNK_BYTE_GAS));
    if completes {
        base.saturating_add(REGISTRATION_GAS)
    } else {
        base.saturating_add(CHUNK_ACCOUNT_GAS)
    }
}

/// Gas of `cancelUpload` (its chunk accounts were prepaid).
pub const CANCEL_UPLOAD_GAS: u64 =
    REGISTRY_BASE_GAS + SLOT_READ_GAS * 2 + SLOT_RESET_GAS * 2 + UPLOAD_PROGRESS_LOG_GAS;

/// Gas of the view functions, per slot they read.
pub const fn view_gas(slots: u64) -> u64 {
    REGISTRY_BASE_GAS + slots * SLOT_READ_GAS
}

/// Bytes of calldata of an `uploadChunk` besides the chunk: selector, id,
/// offset, the bytes' offset and length words.
pub const UPLOAD_CHUNK_CALLDATA_OVERHEAD: u64 = 4 + 4 * 32;

/// The largest chunk a non-final `uploadChunk` transaction sent straight to the
/// registry can carry with `tx_gas` gas, counting every calldata byte as
/// non-zero (16 gas, the worst case) and the 21,000 gas of a transaction.
pub fn largest_chunk(tx_gas: u64) -> u64 {
    let fits = |len: u64| {
        let calldata = UPLOAD_CHUNK_CALLDATA_OVERHEAD + len.div_ceil(32) * 32;
        21_000u64
            .saturating_add(calldata.saturating_mul(16))
            .saturating_add(upload_chunk_gas(len, false))
            <= tx_gas
    };
    let (mut lo, mut hi) = (0u64, tx_gas);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inference_gas_grows_with_work_and_saturates() {
        let small = ModelCost {
            macs: 1_000,
            ..ModelCost::default()
        };
        let big = ModelCost {
            kernel_macs: 1_000_000,
            nodes: 1,
            ..ModelCost::default()
        };
        assert_eq!(inference_gas(&small, 0), INFER_BASE_GAS + INFER_LOAD_GAS);
        let small = ModelCost {
            kernel_macs: 1_000,
            nodes: 1,
            ..ModelCost::default()
        };
        assert_eq!(
            inference_gas(&small, 0),
            INFER_BASE_GAS + INFER_LOAD_GAS + INFER_NODE_GAS + INFER_GAS_PER_KMAC
        );
        assert!(inference_gas(&big, 0) > inference_gas(&small, 0));
        assert_eq!(
            inference_gas(&small, 2048) - inference_gas(&small, 0),
            2 * INFER_GAS_PER_MODEL_KIB
        );
        let huge = ModelCost {
            macs: u64::MAX,
            kernel_macs: u64::MAX,
            element_ops: u64::MAX,
            moved_elements: u64::MAX,
            activation_elements: u64::MAX,
            prepared_bytes: u64::MAX,
            nodes: u64::MAX,
            ..ModelCost::default()
        };
        assert!(inference_gas(&huge, u64::MAX) > u64::MAX / 2); // no overflow panic
        assert_eq!(inference_call_gas(u64::MAX, 1, 1), u64::MAX);
        assert_eq!(inference_call_gas(10, 2, 3), 10 + 5 * INFER_GAS_PER_IO_BYTE);
    }

    #[test]
    fn chunk_gas_counts_bytes_and_completion() {
        assert!(upload_chunk_gas(1000, true) > upload_chunk_gas(1000, false));
        assert_eq!(
            upload_chunk_gas(1001, false) - upload_chunk_gas(1000, false),
            MODEL_BYTE_GAS + CHUNK_BYTE_GAS
        );
    }
}
