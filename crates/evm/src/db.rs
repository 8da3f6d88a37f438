//! The revm database over a [`StateReader`], with a per-block cache that also
//! holds the block's own writes (the overlay later transactions read from).

use std::collections::BTreeMap;

use infera_primitives::{Account, AccountChange, StateChanges, StateReader};
use revm::{
    Database, DatabaseRef,
    bytecode::Bytecode,
    database_interface::DBErrorMarker,
    primitives::{
        Address, AddressMap, B256, B256Map, KECCAK_EMPTY, StorageKey, StorageValue, U256, U256Map,
        hardfork::SpecId,
    },
    state::{AccountInfo, EvmState},
};

/// A failure of the underlying [`StateReader`], carried through revm.
#[derive(Debug, thiserror::Error)]
#[error("state read failed: {0}")]
pub struct StateDbError(pub Box<dyn std::error::Error + Send + Sync + 'static>);

impl DBErrorMarker for StateDbError {}

impl StateDbError {
    fn new<E: std::error::Error + Send + Sync + 'static>(error: E) -> Self {
        Self(Box::new(error))
    }
}

/// One account as the block sees it.
#[derive(Debug, Default)]
struct CachedAccount {
    /// The account as the state held it before the block.
    original: Option<Account>,
    /// The account now (after the committed transactions of the block).
    info: Option<AccountInfo>,
    /// Known storage values now: read from state, or written in the block.
    storage: U256Map<StorageValue>,
    /// Storage was dropped in this block (selfdestruct or creation): slots not in
    /// `storage` are zero and the state is not asked.
    storage_cleared: bool,
    /// Slots written in the block, with their value before the block.
    written: U256Map<StorageValue>,
    /// A committed transaction touched this account.
    touched: bool,
}

/// A revm [`Database`] over any [`StateReader`]: caches every read for the
/// block and receives each committed transaction's state, so the next
/// transaction of the block sees it. [`StateDb::take_changes`] turns the
/// accumulated writes into [`StateChanges`].
#[derive(Debug)]
pub struct StateDb<S> {
    state: S,
    accounts: AddressMap<CachedAccount>,
    contracts: B256Map<Bytecode>,
    new_contracts: BTreeMap<B256, infera_primitives::Bytes>,
    block_hashes: revm::primitives::HashMap<u64, B256>,
}

fn to_info(account: &Account) -> AccountInfo {
    AccountInfo {
        balance: account.balance,
        nonce: account.nonce,
        code_hash: if account.code_hash == B256::ZERO {
            KECCAK_EMPTY
        } else {
            account.code_hash
        },
        code: None,
        ..Default::default()
    }
}

fn from_info(info: &AccountInfo) -> Account {
    Account {
        nonce: info.nonce,
        balance: info.balance,
        code_hash: info.code_hash,
    }
}

impl<S: StateReader> StateDb<S> {
    /// A cache over `state` with nothing read yet.
    pub fn new(state: S) -> Self {
        Self {
            state,
            accounts: AddressMap::default(),
            contracts: B256Map::default(),
            new_contracts: BTreeMap::new(),
            block_hashes: Default::default(),
        }
    }

    /// The underlying state reader.
    pub fn state(&self) -> &S {
        &self.state
    }

    fn load(&mut self, address: Address) -> Result<&mut CachedAccount, StateDbError> {
        use std::collections::hash_map::Entry;
        match self.accounts.entry(address) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => {
                let original = self.state.account(address).map_err(StateDbError::new)?;
                let info = original.as_ref().map(to_info);
                Ok(entry.insert(CachedAccount {
                    original,
                    info,
                    ..Default::default()
                }))
            }
        }
    }

    fn code(&mut self, code_hash: B256) -> Result<Bytecode, StateDbError> {
        if code_hash == KECCAK_EMPTY || code_hash == B256::ZERO {
            return Ok(Bytecode::new());
        }
        if let Some(code) = self.contracts.get(&code_hash) {
            return Ok(code.clone());
        }
        let bytes = self
            .state
            .code_by_hash(code_hash)
            .map_err(StateDbError::new)?
            .ok_or_else(|| {
                StateDbError(format!("code {code_hash} is missing from state").into())
            })?;
        let code = Bytecode::new_raw(bytes);
        self.contracts.insert(code_hash, code.clone());
        Ok(code)
    }

    /// The account as the block sees it now (after its committed transactions).
    pub fn account(&mut self, address: Address) -> Result<Option<Account>, StateDbError> {
        Ok(self.load(address)?.info.as_ref().map(from_info))
    }

    /// Apply one transaction's state (from revm) to the overlay.
    pub fn commit(&mut self, state: EvmState, spec: SpecId) {
        let clear_empty = spec.is_enabled_in(SpecId::SPURIOUS_DRAGON);
        for (address, account) in state {
            if !account.is_touched() {
                continue;
            }
            // Every touched account was loaded through `basic`, so the entry exists;
            // fall back to an empty one if not.
            let cached = self.accounts.entry(address).or_default();
            cached.touched = true;
            if account.is_selfdestructed() {
                cached.info = None;
                cached.storage.clear();
                cached.written.clear();
                cached.storage_cleared = true;
                continue;
            }
            if account.is_created() {
                cached.storage.clear();
                cached.written.clear();
                cached.storage_cleared = true;
            }
            for (slot, value) in account.changed_storage_slots() {
                let before = if cached.storage_cleared {
                    U256::ZERO
                } else {
                    value.original_value
                };
                cached.written.entry(*slot).or_insert(before);
                cached.storage.insert(*slot, value.present_value);
            }
            if clear_empty && account.is_empty() {
                cached.info = None;
                continue;
            }
            let created = account.is_created();
            let mut info = account.info;
            if created
                && info.code_hash != KECCAK_EMPTY
                && let Some(code) = &info.code
            {
                self.new_contracts
                    .insert(info.code_hash, code.original_bytes());
                self.contracts
                    .entry(info.code_hash)
                    .or_insert_with(|| code.clone());
            }
            // EIP-7702 delegations set code on an EOA without `is_created`.
            if info.code_hash != KECCAK_EMPTY
                && !self.contracts.contains_key(&info.code_hash)
                && let Some(code) = &info.code
                && !code.is_empty()
            {
                self.new_contracts
                    .insert(info.code_hash, code.original_bytes());
                self.contracts.insert(info.code_hash, code.clone());
            }
            info.code = None;
            cached.info = Some(info);
        }
    }

    /// Adds `amount` wei to an account outside any transaction (block and
    /// ommer rewards, EIP-4895 withdrawals), creating it if needed.
    pub fn increment_balance(
        &mut self,
        address: Address,
        amount: U256,
    ) -> Result<(), StateDbError> {
        let cached = self.load(address)?;
        let info = cached.info.get_or_insert_with(|| AccountInfo {
            code_hash: KECCAK_EMPTY,
            ..Default::default()
        });
        info.balance = info.balance.saturating_add(amount);
        cached.touched = true;
        Ok(())
    }

    /// Overrides an account outside any transaction (`eth_simulateV1` state
    /// overrides): each given field replaces the current one; `storage`
    /// replaces the whole storage, `storage_diff` sets single slots.
    pub fn override_account(
        &mut self,
        address: Address,
        nonce: Option<u64>,
        balance: Option<U256>,
        code: Option<infera_primitives::Bytes>,
        storage: Option<&BTreeMap<U256, U256>>,
        storage_diff: Option<&BTreeMap<U256, U256>>,
    ) -> Result<(), StateDbError> {
        let code = code.map(|bytes| {
            let bytecode = Bytecode::new_raw(bytes.clone());
            (bytecode.hash_slow(), bytecode, bytes)
        });
        if let Some((hash, bytecode, bytes)) = &code
            && *hash != KECCAK_EMPTY
        {
            self.new_contracts.insert(*hash, bytes.clone());
            self.contracts.insert(*hash, bytecode.clone());
        }
        // Slot values before the override, for `written` (read while not yet cleared).
        let mut before = Vec::new();
        if let Some(diff) = storage_diff {
            for slot in diff.keys() {
                before.push((*slot, Database::storage(self, address, *slot)?));
            }
        }
        let cached = self.load(address)?;
        let info = cached.info.get_or_insert_with(|| AccountInfo {
            code_hash: KECCAK_EMPTY,
            ..Default::default()
        });
        if let Some(nonce) = nonce {
            info.nonce = nonce;
        }
        if let Some(balance) = balance {
            info.balance = balance;
        }
        if let Some((hash, _, _)) = code {
            info.code_hash = hash;
        }
        cached.touched = true;
        if let Some(storage) = storage {
            cached.storage = storage.iter().map(|(k, v)| (*k, *v)).collect();
            cached.written.clear();
            cached.storage_cleared = true;
        }
        if let Some(diff) = storage_diff {
            for (slot, old) in before {
                let old = if cached.storage_cleared {
                    U256::ZERO
                } else {
                    old
                };
                cached.written.entry(slot).or_insert(old);
                cached.storage.insert(slot, diff[&slot]);
            }
        }
        Ok(())
    }

    /// The hash BLOCKHASH gives for `number` (simulated blocks, which the
    /// state does not know).
    pub fn set_block_hash(&mut self, number: u64, hash: B256) {
        self.block_hashes.insert(number, hash);
    }

    /// Everything the committed transactions changed so far, relative to the
    /// state before the block.
    pub fn changes(&self) -> StateChanges {
        let mut changes = StateChanges {
            accounts: BTreeMap::new(),
            contracts: self.new_contracts.clone(),
        };
        for (address, cached) in &self.accounts {
            let address = *address;
            if !cached.touched {
                continue;
            }
            let info = cached.info.as_ref().map(from_info);
            let storage_wiped = cached.storage_cleared && cached.original.is_some();
            let storage: BTreeMap<U256, U256> = if cached.storage_cleared {
                cached
                    .storage
                    .iter()
                    .filter(|(_, value)| !value.is_zero())
                    .map(|(slot, value)| (*slot, *value))
                    .collect()
            } else {
                cached
                    .written
                    .iter()
                    .filter_map(|(slot, before)| {
                        let now = cached.storage.get(slot).copied().unwrap_or_default();
                        (now != *before).then_some((*slot, now))
                    })
                    .collect()
            };
            let unchanged = info == cached.original && storage.is_empty() && !storage_wiped;
            if !unchanged {
                changes.accounts.insert(
                    address,
                    AccountChange {
                        info,
                        storage_wiped,
                        storage,
                    },
                );
            }
        }
        changes
    }

    /// Everything the committed transactions changed, relative to the state
    /// before the block.
    pub fn into_changes(self) -> StateChanges {
        self.changes()
    }
}

impl<S: StateReader> Database for StateDb<S> {
    type Error = StateDbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        let Some(mut info) = self.load(address)?.info.clone() else {
            return Ok(None);
        };
        info.code = Some(self.code(info.code_hash)?);
        Ok(Some(info))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        self.code(code_hash)
    }

    fn storage(
        &mut self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        let cached = self.load(address)?;
        if let Some(value) = cached.storage.get(&index) {
            return Ok(*value);
        }
        let value = if cached.storage_cleared || cached.original.is_none() {
            U256::ZERO
        } else {
            self.state
                .storage(address, index)
                .map_err(StateDbError::new)?
        };
        if let Some(cached) = self.accounts.get_mut(&address) {
            cached.storage.insert(index, value);
        }
        Ok(value)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        if let Some(hash) = self.block_hashes.get(&number) {
            return Ok(*hash);
        }
        let hash = self
            .state
            .block_hash(number)
            .map_err(StateDbError::new)?
            .unwrap_or_default();
        self.block_hashes.insert(number, hash);
        Ok(hash)
    }
}

/// A [`DatabaseRef`] straight over a [`StateReader`], without caching; for
/// callers that wrap it in their own cache (e.g. revm's `CacheDB`).
#[derive(Debug, Clone, Copy)]
pub struct StateReaderRef<S>(pub S);

impl<S: StateReader> DatabaseRef for StateReaderRef<S> {
    type Error = StateDbError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        let Some(account) = self.0.account(address).map_err(StateDbError::new)? else {
            return Ok(None);
        };
        let mut info = to_info(&account);
        info.code = Some(self.code_by_hash_ref(info.code_hash)?);
        Ok(Some(info))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if code_hash == KECCAK_EMPTY || code_hash == B256::ZERO {
            return Ok(Bytecode::new());
        }
        let bytes = self
            .0
            .code_by_hash(code_hash)
            .map_err(StateDbError::new)?
            .ok_or_else(|| {
                StateDbError(format!("code {code_hash} is missing from state").into())
            })?;
        Ok(Bytecode::new_raw(bytes))
    }

    fn storage_ref(
        &self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        self.0.storage(address, index).map_err(StateDbError::new)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        Ok(self
            .0
            .block_hash(number)
            .map_err(StateDbError::new)?
            .unwrap_or_default())
    }
}
