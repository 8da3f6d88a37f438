//! EIP-1186 Merkle proofs (`eth_getProof`) of the head state, built from the
//! hashed tables: the trie leaves are fed to alloy-trie's `HashBuilder` with a
//! `ProofRetainer` that keeps the nodes on the paths to the requested keys.

use crate::{
    codec::{HASHED_STORAGE_KEY_BYTES, WORD_BYTES},
    error::{StorageError, StorageResult},
    reader::{Reader, plain_storage},
    tables::Table,
};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::Decodable;
use alloy_trie::{EMPTY_ROOT_HASH, HashBuilder, Nibbles, TrieAccount, proof::ProofRetainer};
use std::borrow::Cow;

/// The proof of one account and some of its storage slots, against the state
/// root of the head block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountProof {
    /// The account as stored in the trie; `None` when it does not exist (the
    /// proof then shows its absence).
    pub account: Option<TrieAccount>,
    /// Trie nodes from the state root towards `keccak256(address)`.
    pub account_proof: Vec<Bytes>,
    /// One entry per requested slot, in request order.
    pub storage_proofs: Vec<StorageProof>,
}

/// The proof of one storage slot against the account's storage root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageProof {
    /// The slot, as requested.
    pub slot: B256,
    /// Its value (zero when unset).
    pub value: U256,
    /// Trie nodes from the storage root towards `keccak256(slot)`; empty for
    /// an empty storage trie.
    pub proof: Vec<Bytes>,
}

impl Reader {
    /// The EIP-1186 proof of `address` and `slots` in the head state.
    ///
    /// Cost: the account trie is rebuilt from every `HashedAccounts` entry
    /// (as [`crate::BlockWriter::state_root`] does), the storage trie from the
    /// account's `HashedStorage` entries.
    pub fn latest_proof(&self, address: Address, slots: &[B256]) -> StorageResult<AccountProof> {
        let hashed_address = keccak256(address);
        let account_target = Nibbles::unpack(hashed_address);
        let mut hb =
            HashBuilder::default().with_proof_retainer(ProofRetainer::new(vec![account_target]));
        let mut account = None;
        let mut cursor = self.tx.cursor(self.tables.get(Table::HashedAccounts))?;
        let mut item = cursor.first::<Cow<'_, [u8]>, Cow<'_, [u8]>>()?;
        while let Some((k, v)) = item {
            if k.len() != WORD_BYTES {
                return Err(StorageError::corrupt(
                    Table::HashedAccounts,
                    &k,
                    "bad key length",
                ));
            }
            if k.as_ref() == hashed_address.as_slice() {
                let mut slice = v.as_ref();
                account = Some(TrieAccount::decode(&mut slice).map_err(|_| {
                    StorageError::corrupt(Table::HashedAccounts, &k, "bad trie account")
                })?);
            }
            hb.add_leaf(Nibbles::unpack(&k), &v);
            item = cursor.next()?;
        }
        hb.root();
        let account_proof = path_nodes(&hb.take_proof_nodes(), &account_target);

        let storage_root = account.as_ref().map_or(EMPTY_ROOT_HASH, |a| a.storage_root);
        let storage_proofs = if slots.is_empty() {
            Vec::new()
        } else if storage_root == EMPTY_ROOT_HASH {
            slots
                .iter()
                .map(|&slot| StorageProof {
                    slot,
                    value: U256::ZERO,
                    proof: Vec::new(),
                })
                .collect()
        } else {
            let targets: Vec<Nibbles> = slots
                .iter()
                .map(|s| Nibbles::unpack(keccak256(s)))
                .collect();
            let mut hb =
                HashBuilder::default().with_proof_retainer(ProofRetainer::new(targets.clone()));
            let mut cursor = self.tx.cursor(self.tables.get(Table::HashedStorage))?;
            let mut item =
                cursor.set_range::<Cow<'_, [u8]>, Cow<'_, [u8]>>(hashed_address.as_slice())?;
            while let Some((k, v)) = item {
                if k.get(..WORD_BYTES) != Some(hashed_address.as_slice()) {
                    break;
                }
                if k.len() != HASHED_STORAGE_KEY_BYTES {
                    return Err(StorageError::corrupt(
                        Table::HashedStorage,
                        &k,
                        "bad key length",
                    ));
                }
                hb.add_leaf(Nibbles::unpack(&k[WORD_BYTES..]), &v);
                item = cursor.next()?;
            }
            hb.root();
            let nodes = hb.take_proof_nodes();
            slots
                .iter()
                .zip(&targets)
                .map(|(&slot, target)| {
                    Ok(StorageProof {
                        slot,
                        value: plain_storage(&self.tx, &self.tables, &address, &slot.into())?,
                        proof: path_nodes(&nodes, target),
                    })
                })
                .collect::<StorageResult<_>>()?
        };
        Ok(AccountProof {
            account,
            account_proof,
            storage_proofs,
        })
    }
}

/// The retained nodes on the path to `target`, root first.
fn path_nodes(nodes: &alloy_trie::proof::ProofNodes, target: &Nibbles) -> Vec<Bytes> {
    nodes
        .matching_nodes_sorted(target)
        .into_iter()
        .map(|(_, node)| node)
        .collect()
}
