//! An in-memory world state for state tests: a [`StateReader`] the executor
//! runs over, the application of its [`StateChanges`], and the state root
//! computed with the same trie library (`alloy-trie`) storage uses.

use std::{collections::BTreeMap, convert::Infallible};

use alloy_trie::{
    TrieAccount,
    root::{state_root_unhashed, storage_root_unhashed},
};
use infera_primitives::{
    Account, Address, B256, BlockNumber, Bytes, KECCAK256_EMPTY, StateChanges, StateReader, U256,
    keccak256,
};

/// Accounts, storage and code held in memory.
#[derive(Clone, Debug, Default)]
pub struct MemoryState {
    accounts: BTreeMap<Address, Account>,
    storage: BTreeMap<Address, BTreeMap<U256, U256>>,
    code: BTreeMap<B256, Bytes>,
}

impl MemoryState {
    /// Adds an account with its code and storage (zero slots are dropped).
    pub fn insert(
        &mut self,
        address: Address,
        nonce: u64,
        balance: U256,
        code: Bytes,
        storage: impl IntoIterator<Item = (U256, U256)>,
    ) {
        let code_hash = if code.is_empty() {
            KECCAK256_EMPTY
        } else {
            let hash = keccak256(&code);
            self.code.insert(hash, code);
            hash
        };
        self.accounts.insert(
            address,
            Account {
                nonce,
                balance,
                code_hash,
            },
        );
        let slots: BTreeMap<U256, U256> =
            storage.into_iter().filter(|(_, v)| !v.is_zero()).collect();
        if slots.is_empty() {
            self.storage.remove(&address);
        } else {
            self.storage.insert(address, slots);
        }
    }

    /// Applies what a block (or transaction) changed.
    pub fn apply(&mut self, changes: &StateChanges) {
        self.code.extend(
            changes
                .contracts
                .iter()
                .map(|(hash, code)| (*hash, code.clone())),
        );
        for (address, change) in &changes.accounts {
            let Some(info) = change.info else {
                self.accounts.remove(address);
                self.storage.remove(address);
                continue;
            };
            if change.storage_wiped {
                self.storage.remove(address);
            }
            let slots = self.storage.entry(*address).or_default();
            for (slot, value) in &change.storage {
                if value.is_zero() {
                    slots.remove(slot);
                } else {
                    slots.insert(*slot, *value);
                }
            }
            if slots.is_empty() {
                self.storage.remove(address);
            }
            self.accounts.insert(*address, info);
        }
    }

    /// The Ethereum state root of these accounts.
    pub fn state_root(&self) -> B256 {
        state_root_unhashed(self.accounts.iter().map(|(address, account)| {
            let storage_root = storage_root_unhashed(
                self.storage
                    .get(address)
                    .into_iter()
                    .flatten()
                    .map(|(slot, value)| (B256::from(*slot), *value)),
            );
            (
                *address,
                TrieAccount {
                    nonce: account.nonce,
                    balance: account.balance,
                    storage_root,
                    code_hash: account.code_hash,
                },
            )
        }))
    }
}

impl StateReader for MemoryState {
    type Error = Infallible;

    fn account(&self, address: Address) -> Result<Option<Account>, Self::Error> {
        Ok(self.accounts.get(&address).copied())
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, Self::Error> {
        Ok(self
            .storage
            .get(&address)
            .and_then(|slots| slots.get(&slot))
            .copied()
            .unwrap_or_default())
    }

    fn code_by_hash(&self, code_hash: B256) -> Result<Option<Bytes>, Self::Error> {
        Ok(self.code.get(&code_hash).cloned())
    }

    /// State tests define BLOCKHASH(n) as keccak256 of n written in decimal.
    fn block_hash(&self, number: BlockNumber) -> Result<Option<B256>, Self::Error> {
        Ok(Some(keccak256(number.to_string().as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_state_has_the_empty_root_and_changes_apply() {
        let mut state = MemoryState::default();
        assert_eq!(state.state_root(), infera_primitives::EMPTY_ROOT_HASH);
        let a = Address::repeat_byte(1);
        state.insert(
            a,
            1,
            U256::from(5),
            Bytes::new(),
            [(U256::from(1), U256::from(2))],
        );
        let with_slot = state.state_root();
        let mut changes = StateChanges::default();
        changes.accounts.insert(
            a,
            infera_primitives::AccountChange {
                info: Some(Account {
                    nonce: 1,
                    balance: U256::from(5),
                    code_hash: KECCAK256_EMPTY,
                }),
                storage_wiped: false,
                storage: [(U256::from(1), U256::ZERO)].into(),
            },
        );
        state.apply(&changes);
        assert_ne!(state.state_root(), with_slot);
        assert_eq!(state.storage(a, U256::from(1)).unwrap(), U256::ZERO);
    }
}
