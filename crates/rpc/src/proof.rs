//! `eth_getProof` (EIP-1186), and the storage-key decoding geth applies to
//! every method taking a storage key.

use alloy_eips::BlockId;
use alloy_primitives::{Address, B256, U256};
use alloy_rpc_types_eth::{EIP1186AccountProofResponse, EIP1186StorageProof};
use alloy_serde::storage::JsonStorageKey;
use infera_primitives::{EMPTY_ROOT_HASH, KECCAK256_EMPTY};

use crate::{RpcContext, RpcError, RpcResult};

/// Most storage keys one `eth_getProof` may ask for.
pub const MAX_PROOF_KEYS: usize = 1_024;

/// A storage key as geth reads it: hex of at most 32 bytes (an odd number of
/// digits is allowed), left-padded to 32 bytes. Also returns its byte length.
pub(crate) fn decode_storage_key(key: &str) -> RpcResult<(B256, usize)> {
    let digits = key
        .strip_prefix("0x")
        .or_else(|| key.strip_prefix("0X"))
        .unwrap_or(key);
    let padded;
    let digits = if digits.len() % 2 == 1 {
        padded = format!("0{digits}");
        padded.as_str()
    } else {
        digits
    };
    let bytes = alloy_primitives::hex::decode(digits).map_err(|e| {
        RpcError::InvalidParams(format!("unable to decode storage key {key:?}: {e}"))
    })?;
    if bytes.len() > 32 {
        return Err(RpcError::InvalidParams(format!(
            "storage key too long (want at most 32 bytes): {key:?}"
        )));
    }
    let mut word = B256::ZERO;
    word[32 - bytes.len()..].copy_from_slice(&bytes);
    Ok((word, bytes.len()))
}

impl RpcContext {
    /// `eth_getProof`: the account and storage proofs of the head state.
    /// Proofs of older blocks need the hashed state of that block, which this
    /// node does not keep: they are refused.
    pub fn proof(
        &self,
        address: Address,
        keys: Vec<String>,
        block: Option<BlockId>,
    ) -> RpcResult<EIP1186AccountProofResponse> {
        if keys.len() > MAX_PROOF_KEYS {
            return Err(RpcError::InvalidParams(format!(
                "too many storage keys: {} (at most {MAX_PROOF_KEYS})",
                keys.len()
            )));
        }
        let decoded = keys
            .iter()
            .map(|k| decode_storage_key(k))
            .collect::<RpcResult<Vec<_>>>()?;
        let reader = self.db().reader()?;
        let number = self.resolve_state_block(&reader, block)?;
        let head = self.head(&reader)?;
        if number != head {
            return Err(RpcError::InvalidParams(format!(
                "proofs are available for the head block ({head}) only, not block {number}"
            )));
        }
        let slots: Vec<B256> = decoded.iter().map(|(slot, _)| *slot).collect();
        let proof = reader.latest_proof(address, &slots)?;
        let storage_proof = proof
            .storage_proofs
            .into_iter()
            .zip(&decoded)
            .map(|(p, (slot, len))| EIP1186StorageProof {
                // Like geth: a 32-byte key comes back as given, a shorter one
                // as a quantity.
                key: if *len == 32 {
                    JsonStorageKey::Hash(*slot)
                } else {
                    JsonStorageKey::Number(U256::from_be_bytes(slot.0))
                },
                value: p.value,
                proof: p.proof,
            })
            .collect();
        let account = proof.account;
        Ok(EIP1186AccountProofResponse {
            address,
            balance: account.map_or(U256::ZERO, |a| a.balance),
            code_hash: account.map_or(KECCAK256_EMPTY, |a| a.code_hash),
            nonce: account.map_or(0, |a| a.nonce),
            storage_hash: account.map_or(EMPTY_ROOT_HASH, |a| a.storage_root),
            account_proof: proof.account_proof,
            storage_proof,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys_decode_like_geth() {
        assert_eq!(decode_storage_key("0x00").unwrap(), (B256::ZERO, 1));
        assert_eq!(
            decode_storage_key("0x1").unwrap(),
            (B256::with_last_byte(1), 1)
        );
        assert_eq!(decode_storage_key("0x").unwrap(), (B256::ZERO, 0));
        let full = format!("0x{}", "ab".repeat(32));
        assert_eq!(decode_storage_key(&full).unwrap().1, 32);
        let long = format!("0x{}", "0".repeat(65));
        assert!(matches!(
            decode_storage_key(&long),
            Err(RpcError::InvalidParams(m)) if m.contains("too long")
        ));
        assert!(matches!(
            decode_storage_key("0xasdf"),
            Err(RpcError::InvalidParams(_))
        ));
    }
}
