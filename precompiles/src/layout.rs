//! Where the registry keeps models and their metadata in state.
//!
//! - **Model bytes**: the code of the model account [`model_address`]`(id)`,
//!   as `0x00 ‖ model` ([`CODE_PREFIX`], a STOP, so a plain call to the account
//!   does nothing and the bytes can never read as an EIP-7702 delegation).
//!   Content-addressed like contract code: stored once by hash, committed by
//!   the state root, synced and persisted like any contract.
//! - **Chunks of an unfinished upload**: the code of chunk accounts
//!   [`chunk_address`]`(uploader, id, i)`, same prefix; cleared (the accounts
//!   deleted) when the upload completes or is cancelled.
//! - **Metadata**: a few storage slots of the registry account
//!   ([`MODEL_REGISTRY_ADDRESS`](crate::abi::MODEL_REGISTRY_ADDRESS)), at
//!   keccak-derived keys so the kinds never collide:
//!   - [`MODEL_COUNT_SLOT`] (slot 0): number of registered models;
//!   - [`model_list_slot`]`(i)`: id of the `i`-th registered model;
//!   - [`model_record_slot`]`(id) + 0..4`: the [`ModelRecord`];
//!   - [`upload_slot`]`(uploader, id)`: the [`UploadRecord`] of an upload;
//!   - [`pending_slot`]`(id)`: the [`PendingRecord`] that lets `infer` tell an
//!     unfinished upload from an unknown model.
//!
//! The registry account gets nonce 1 on its first write so it is never an
//! "empty" account that EIP-161 would delete with its storage.

use alloy_primitives::{Address, B256, U256, keccak256};

use crate::abi::ModelInfo;

/// First byte of the code of model and chunk accounts (STOP).
pub const CODE_PREFIX: u8 = 0x00;

/// Domain tags of the derived addresses and slots.
const MODEL_ACCOUNT_TAG: &[u8] = b"infera.model";
const CHUNK_ACCOUNT_TAG: &[u8] = b"infera.chunk";
const LIST_SLOT_TAG: &[u8] = b"infera.registry.list";
const RECORD_SLOT_TAG: &[u8] = b"infera.registry.model";
const UPLOAD_SLOT_TAG: &[u8] = b"infera.registry.upload";
const PENDING_SLOT_TAG: &[u8] = b"infera.registry.pending";

/// Slot holding the number of registered models.
pub const MODEL_COUNT_SLOT: U256 = U256::ZERO;

/// Slots of a model record: two words of fields, two of shape dimensions.
pub const RECORD_WORDS: usize = 4;

/// Dimensions per shape word (eight `u32`).
const DIMS_PER_WORD: usize = 8;

/// Most dimensions (input and output together) a record holds.
pub const MAX_RECORD_DIMS: usize = (RECORD_WORDS - 2) * DIMS_PER_WORD;

fn hash_parts(parts: &[&[u8]]) -> B256 {
    let mut buf = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        buf.extend_from_slice(part);
    }
    keccak256(&buf)
}

fn to_address(hash: B256) -> Address {
    Address::from_slice(&hash[12..])
}

/// The account whose code holds model `id`: `keccak256("infera.model" ‖ id)[12..]`.
pub fn model_address(id: B256) -> Address {
    to_address(hash_parts(&[MODEL_ACCOUNT_TAG, id.as_slice()]))
}

/// The account holding chunk `index` of `uploader`'s upload of `id`:
/// `keccak256("infera.chunk" ‖ uploader ‖ id ‖ index as 4 big-endian bytes)[12..]`.
pub fn chunk_address(uploader: Address, id: B256, index: u32) -> Address {
    to_address(hash_parts(&[
        CHUNK_ACCOUNT_TAG,
        uploader.as_slice(),
        id.as_slice(),
        &index.to_be_bytes(),
    ]))
}

/// Slot of the id of the `index`-th registered model.
pub fn model_list_slot(index: u64) -> U256 {
    U256::from_be_bytes(hash_parts(&[LIST_SLOT_TAG, &index.to_be_bytes()]).0)
}

/// First slot of the record of model `id` (the record takes [`RECORD_WORDS`]).
pub fn model_record_slot(id: B256) -> U256 {
    U256::from_be_bytes(hash_parts(&[RECORD_SLOT_TAG, id.as_slice()]).0)
}

/// Slot of `uploader`'s upload of `id`.
pub fn upload_slot(uploader: Address, id: B256) -> U256 {
    U256::from_be_bytes(hash_parts(&[UPLOAD_SLOT_TAG, uploader.as_slice(), id.as_slice()]).0)
}

/// Slot of the pending-upload summary of `id`.
pub fn pending_slot(id: B256) -> U256 {
    U256::from_be_bytes(hash_parts(&[PENDING_SLOT_TAG, id.as_slice()]).0)
}

/// ABI dtype tag of the registry (0 = int8, 1 = int32).
pub fn dtype_tag(dtype: infera_kernels::DType) -> u8 {
    match dtype {
        infera_kernels::DType::I8 => 0,
        infera_kernels::DType::I32 => 1,
    }
}

/// What the registry stores about a registered model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRecord {
    /// Who completed the upload.
    pub uploader: Address,
    /// Model size in bytes.
    pub size: u32,
    /// Block in which registration completed.
    pub block_number: u64,
    /// Inference gas fixed at registration.
    pub inference_gas: u64,
    /// Registration index (position in `modelAt`).
    pub index: u64,
    /// Input dtype tag (0 = int8, 1 = int32).
    pub input_type: u8,
    /// Output dtype tag.
    pub output_type: u8,
    /// Input shape.
    pub input_shape: Vec<u32>,
    /// Output shape.
    pub output_shape: Vec<u32>,
    /// Exact input length in bytes.
    pub input_bytes: u32,
    /// Exact output length in bytes.
    pub output_bytes: u32,
}

/// Marker byte of a word 1 that belongs to a registered model.
const REGISTERED: u8 = 1;

impl ModelRecord {
    /// Encode as [`RECORD_WORDS`] storage words. `None` if the shapes have more
    /// than [`MAX_RECORD_DIMS`] dimensions in all (the kernels' rank limit keeps
    /// every valid model far below).
    pub fn encode(&self) -> Option<[U256; RECORD_WORDS]> {
        let dims = self.input_shape.len() + self.output_shape.len();
        if dims > MAX_RECORD_DIMS || self.input_shape.len() > usize::from(u8::MAX) {
            return None;
        }
        let mut w0 = [0u8; 32];
        w0[..20].copy_from_slice(self.uploader.as_slice());
        w0[20..24].copy_from_slice(&self.size.to_be_bytes());
        w0[24..32].copy_from_slice(&self.block_number.to_be_bytes());
        let mut w1 = [0u8; 32];
        w1[0] = REGISTERED;
        w1[1] = self.input_type;
        w1[2] = self.output_type;
        w1[3] = u8::try_from(self.input_shape.len()).ok()?;
        w1[4] = u8::try_from(self.output_shape.len()).ok()?;
        w1[8..16].copy_from_slice(&self.inference_gas.to_be_bytes());
        w1[16..24].copy_from_slice(&self.index.to_be_bytes());
        w1[24..28].copy_from_slice(&self.input_bytes.to_be_bytes());
        w1[28..32].copy_from_slice(&self.output_bytes.to_be_bytes());
        let mut dim_words = [[0u8; 32]; RECORD_WORDS - 2];
        for (i, dim) in self
            .input_shape
            .iter()
            .chain(self.output_shape.iter())
            .enumerate()
        {
            let word = &mut dim_words[i / DIMS_PER_WORD];
            let at = (i % DIMS_PER_WORD) * 4;
            word[at..at + 4].copy_from_slice(&dim.to_be_bytes());
        }
        Some([
            U256::from_be_bytes(w0),
            U256::from_be_bytes(w1),
            U256::from_be_bytes(dim_words[0]),
            U256::from_be_bytes(dim_words[1]),
        ])
    }

    /// True if word 1 of a record marks a registered model.
    pub fn is_registered_word(word1: U256) -> bool {
        word1.to_be_bytes::<32>()[0] == REGISTERED
    }

    /// Decode from storage words; `None` when the words hold no registered model.
    pub fn decode(words: &[U256; RECORD_WORDS]) -> Option<Self> {
        if !Self::is_registered_word(words[1]) {
            return None;
        }
        let w0 = words[0].to_be_bytes::<32>();
        let w1 = words[1].to_be_bytes::<32>();
        let u32_at = |w: &[u8; 32], at: usize| {
            u32::from_be_bytes(w[at..at + 4].try_into().expect("4 bytes"))
        };
        let u64_at = |w: &[u8; 32], at: usize| {
            u64::from_be_bytes(w[at..at + 8].try_into().expect("8 bytes"))
        };
        let in_rank = usize::from(w1[3]);
        let out_rank = usize::from(w1[4]);
        if in_rank + out_rank > MAX_RECORD_DIMS {
            return None;
        }
        let dim_words = [words[2].to_be_bytes::<32>(), words[3].to_be_bytes::<32>()];
        let dim = |i: usize| u32_at(&dim_words[i / DIMS_PER_WORD], (i % DIMS_PER_WORD) * 4);
        Some(Self {
            uploader: Address::from_slice(&w0[..20]),
            size: u32_at(&w0, 20),
            block_number: u64_at(&w0, 24),
            inference_gas: u64_at(&w1, 8),
            index: u64_at(&w1, 16),
            input_type: w1[1],
            output_type: w1[2],
            input_shape: (0..in_rank).map(dim).collect(),
            output_shape: (in_rank..in_rank + out_rank).map(dim).collect(),
            input_bytes: u32_at(&w1, 24),
            output_bytes: u32_at(&w1, 28),
        })
    }

    /// The ABI view of this record for model `id`.
    pub fn to_info(&self, id: B256) -> ModelInfo {
        ModelInfo {
            id,
            size: self.size,
            uploader: self.uploader,
            blockNumber: self.block_number,
            inferenceGas: self.inference_gas,
            inputType: self.input_type,
            inputShape: self.input_shape.clone(),
            outputType: self.output_type,
            outputShape: self.output_shape.clone(),
            inputBytes: self.input_bytes,
            outputBytes: self.output_bytes,
        }
    }
}

/// One uploader's unfinished upload of one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UploadRecord {
    /// Chunk accounts written so far.
    pub chunks: u32,
    /// Bytes received so far.
    pub received: u32,
    /// Declared total size.
    pub size: u32,
}

impl UploadRecord {
    /// Encode as one word (`0` means "no upload"; an active upload has size ≥ 1).
    pub fn encode(&self) -> U256 {
        let mut w = [0u8; 32];
        w[20..24].copy_from_slice(&self.chunks.to_be_bytes());
        w[24..28].copy_from_slice(&self.received.to_be_bytes());
        w[28..32].copy_from_slice(&self.size.to_be_bytes());
        U256::from_be_bytes(w)
    }

    /// Decode a word; `None` for "no upload".
    pub fn decode(word: U256) -> Option<Self> {
        if word.is_zero() {
            return None;
        }
        let w = word.to_be_bytes::<32>();
        let u32_at = |at: usize| u32::from_be_bytes(w[at..at + 4].try_into().expect("4 bytes"));
        Some(Self {
            chunks: u32_at(20),
            received: u32_at(24),
            size: u32_at(28),
        })
    }
}

/// Summary of the unfinished uploads of one model id (over all uploaders), so
/// that `infer` can answer `UploadIncomplete` instead of `UnknownModel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PendingRecord {
    /// Unfinished uploads of the id.
    pub uploads: u32,
    /// Bytes received by the most advanced one.
    pub received: u32,
    /// Its declared size.
    pub size: u32,
}

impl PendingRecord {
    /// Encode as one word.
    pub fn encode(&self) -> U256 {
        let mut w = [0u8; 32];
        w[20..24].copy_from_slice(&self.uploads.to_be_bytes());
        w[24..28].copy_from_slice(&self.received.to_be_bytes());
        w[28..32].copy_from_slice(&self.size.to_be_bytes());
        U256::from_be_bytes(w)
    }

    /// Decode a word; `None` when no upload of the id is unfinished.
    pub fn decode(word: U256) -> Option<Self> {
        let w = word.to_be_bytes::<32>();
        let u32_at = |at: usize| u32::from_be_bytes(w[at..at + 4].try_into().expect("4 bytes"));
        let record = Self {
            uploads: u32_at(20),
            received: u32_at(24),
            size: u32_at(28),
        };
        (record.uploads > 0).then_some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    fn record() -> ModelRecord {
        ModelRecord {
            uploader: address!("00000000000000000000000000000000000000aa"),
            size: 7_549,
            block_number: 12,
            inference_gas: 9_999,
            index: 3,
            input_type: 0,
            output_type: 1,
            input_shape: vec![1, 1, 8, 8],
            output_shape: vec![1, 10],
            input_bytes: 64,
            output_bytes: 40,
        }
    }

    #[test]
    fn record_round_trips() {
        let r = record();
        let words = r.encode().unwrap();
        assert!(ModelRecord::is_registered_word(words[1]));
        assert_eq!(ModelRecord::decode(&words), Some(r));
        assert_eq!(ModelRecord::decode(&[U256::ZERO; RECORD_WORDS]), None);
    }

    #[test]
    fn record_with_too_many_dims_is_refused() {
        let mut r = record();
        r.input_shape = vec![1; 12];
        r.output_shape = vec![1; 5];
        assert_eq!(r.encode(), None);
        r.output_shape = vec![2; 4];
        let back = ModelRecord::decode(&r.encode().unwrap()).unwrap();
        assert_eq!(back.output_shape, vec![2; 4]);
    }

    #[test]
    fn upload_and_pending_round_trip() {
        let u = UploadRecord {
            chunks: 2,
            received: 100,
            size: 300,
        };
        assert_eq!(UploadRecord::decode(u.encode()), Some(u));
        assert_eq!(UploadRecord::decode(U256::ZERO), None);
        let p = PendingRecord {
            uploads: 1,
            received: 5,
            size: 9,
        };
        assert_eq!(PendingRecord::decode(p.encode()), Some(p));
        assert_eq!(PendingRecord::decode(U256::ZERO), None);
    }

    #[test]
    fn derived_keys_are_distinct() {
        let id = B256::repeat_byte(7);
        let who = Address::repeat_byte(1);
        assert_ne!(model_address(id), chunk_address(who, id, 0));
        assert_ne!(chunk_address(who, id, 0), chunk_address(who, id, 1));
        let slots = [
            model_list_slot(0),
            model_record_slot(id),
            upload_slot(who, id),
            pending_slot(id),
            MODEL_COUNT_SLOT,
        ];
        for (i, a) in slots.iter().enumerate() {
            for b in &slots[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
