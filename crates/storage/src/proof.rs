//! EIP-1186 Merkle proofs (`eth_getProof`) of the head state, built from the
//! stored branch nodes: the walk of `trie.rs` towards the requested keys is
//! fed to alloy-trie's `HashBuilder` with a `ProofRetainer` that keeps the
//! nodes on the paths to them.

use crate::{
    codec,
    db::get_with,
    error::StorageResult,
    reader::{Reader, plain_storage},
    tables::Table,
    trie::{self, TrieId},
};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_trie::{EMPTY_ROOT_HASH, Nibbles, TrieAccount};

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
    /// Cost: O(depth) per key, whatever the size of the state: each trie is
    /// walked from its stored branch nodes along the paths to the requested
    /// keys only (siblings enter by their stored hashes), and the nodes on
    /// those paths are rebuilt and retained.
    pub fn latest_proof(&self, address: Address, slots: &[B256]) -> StorageResult<AccountProof> {
        let hashed_address = keccak256(address);
        let account = get_with(
            &self.tx,
            &self.tables,
            Table::HashedAccounts,
            hashed_address.as_slice(),
            |v| {
                codec::decode_rlp::<TrieAccount>(
                    Table::HashedAccounts,
                    hashed_address.as_slice(),
                    v,
                )
            },
        )?;
        let account_target = Nibbles::unpack(hashed_address);
        let walk = trie::walk(&self.tx, &self.tables, TrieId::Accounts, &[hashed_address])?;
        let (_, nodes) = walk.proof(vec![account_target]);
        let account_proof = path_nodes(&nodes, &account_target);

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
            let hashed_slots: Vec<B256> = slots.iter().map(keccak256).collect();
            let mut walk_targets = hashed_slots.clone();
            walk_targets.sort_unstable();
            walk_targets.dedup();
            let targets: Vec<Nibbles> = hashed_slots.iter().map(Nibbles::unpack).collect();
            let walk = trie::walk(
                &self.tx,
                &self.tables,
                TrieId::Storage(hashed_address),
                &walk_targets,
            )?;
            let (_, nodes) = walk.proof(targets.clone());
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
