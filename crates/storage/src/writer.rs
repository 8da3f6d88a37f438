//! Write side: [`BlockWriter`], one MDBX write transaction per block.

use crate::{
    codec::{self, ADDRESS_BYTES, ChangeSetEntry, STORAGE_KEY_BYTES, WORD_BYTES},
    db::{MAX_META_KEY_BYTES, MAX_VALUE_BYTES, Tables, drain_prefix, get_raw, get_with},
    error::{StorageError, StorageResult},
    reader,
    tables::{Table, meta_keys},
    trie::{self, TrieId, TrieUpdate, TrieWalk},
};
use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_rlp::Encodable;
use alloy_trie::{EMPTY_ROOT_HASH, TrieAccount};
use infera_primitives::{
    Account, BlockNumber, ReceiptEnvelope, SealedBlock, StateChanges, TxLocation,
};
use signet_libmdbx::{MdbxError, WriteFlags, tx::aliases::RwTxSync};
use std::collections::{BTreeMap, BTreeSet};

/// The write transaction of one block. Everything written through it becomes
/// visible atomically at [`BlockWriter::commit`]; dropping it without commit
/// discards everything.
///
/// Typical use for block `n`: [`apply_state`](Self::apply_state) with the
/// executor's changes, [`state_root`](Self::state_root) to check (or fill) the
/// header's root, [`insert_block`](Self::insert_block), [`commit`](Self::commit).
#[derive(Debug)]
pub struct BlockWriter {
    tx: RwTxSync,
    tables: Tables,
    /// Hashed slots changed in this writer, by hashed address: the targets of
    /// each storage trie's walk. An account's storage root in
    /// `HashedAccounts` is stale until [`Self::update_tries`].
    changed_storage: BTreeMap<B256, BTreeSet<B256>>,
    /// Hashed addresses whose `HashedAccounts` leaf changed in this writer:
    /// the targets of the account trie's walk.
    changed_accounts: BTreeSet<B256>,
    /// Scratch buffer for value encodings.
    buf: Vec<u8>,
}

/// Puts `key -> value` unless `key` already exists (keeps the first "before"
/// value when one block touches an entry twice).
fn put_if_absent(
    tx: &RwTxSync,
    db: signet_libmdbx::Database,
    key: &[u8],
    value: &[u8],
) -> StorageResult<()> {
    match tx.put(db, key, value, WriteFlags::NO_OVERWRITE) {
        Ok(()) | Err(MdbxError::KeyExist) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn check_value_size(table: Table, value: &[u8]) -> StorageResult<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StorageError::invalid(
            table,
            format!(
                "value of {} bytes exceeds the limit of {MAX_VALUE_BYTES}",
                value.len()
            ),
        ));
    }
    Ok(())
}

impl BlockWriter {
    pub(crate) fn new(tx: RwTxSync, tables: Tables) -> Self {
        Self {
            tx,
            tables,
            changed_storage: BTreeMap::new(),
            changed_accounts: BTreeSet::new(),
            buf: Vec::new(),
        }
    }

    #[inline]
    fn db(&self, table: Table) -> signet_libmdbx::Database {
        self.tables.get(table)
    }

    // ---------------------------------------------------------------- reads

    /// Head block number as this transaction sees it.
    pub fn head_number(&self) -> StorageResult<Option<BlockNumber>> {
        reader::read_meta_u64(&self.tx, &self.tables, meta_keys::HEAD_NUMBER)
    }

    /// Current account at `address`, including writes of this transaction.
    pub fn account(&self, address: Address) -> StorageResult<Option<Account>> {
        reader::plain_account(&self.tx, &self.tables, &address)
    }

    /// Current storage value, including writes of this transaction.
    pub fn storage(&self, address: Address, slot: U256) -> StorageResult<U256> {
        reader::plain_storage(&self.tx, &self.tables, &address, &slot)
    }

    /// Hash of the canonical block `number`, including writes of this transaction.
    pub fn canonical_hash(&self, number: BlockNumber) -> StorageResult<Option<B256>> {
        reader::canonical_hash(&self.tx, &self.tables, number)
    }

    // ---------------------------------------------------------------- meta

    /// Sets a raw `Meta` entry (key of 1 to [`MAX_META_KEY_BYTES`] bytes).
    pub fn set_meta(&mut self, key: &[u8], value: &[u8]) -> StorageResult<()> {
        if key.is_empty() || key.len() > MAX_META_KEY_BYTES {
            return Err(StorageError::invalid(
                Table::Meta,
                format!(
                    "key of {} bytes, must be 1..={MAX_META_KEY_BYTES}",
                    key.len()
                ),
            ));
        }
        check_value_size(Table::Meta, value)?;
        self.tx
            .put(self.db(Table::Meta), key, value, WriteFlags::empty())?;
        Ok(())
    }

    /// Records the genesis block hash.
    pub fn set_genesis_hash(&mut self, hash: B256) -> StorageResult<()> {
        self.set_meta(meta_keys::GENESIS_HASH, hash.as_slice())
    }

    /// Records the chain id.
    pub fn set_chain_id(&mut self, chain_id: u64) -> StorageResult<()> {
        self.set_meta(meta_keys::CHAIN_ID, &chain_id.to_be_bytes())
    }

    /// Sets the head block number ([`Self::insert_block`] does this already).
    pub fn set_head_number(&mut self, number: BlockNumber) -> StorageResult<()> {
        self.set_meta(meta_keys::HEAD_NUMBER, &number.to_be_bytes())
    }

    // ---------------------------------------------------------------- state

    /// Applies the state changes of block `block`: plain accounts, storage and
    /// code, the history of every value the block really changed (read from
    /// the plain tables before overwriting), the hashed tables, and the
    /// block's change set.
    ///
    /// `storage_wiped` deletes (and records in history) every slot the account
    /// had before `storage` applies. An account whose `info` is `None` is
    /// destroyed: its storage is wiped too and its `storage` writes ignored.
    ///
    /// Blocks must be applied in order: `block` must not be below the head
    /// (it is normally `head + 1`; equal to the head when
    /// [`Self::insert_block`] ran first in this writer). Calling it twice for
    /// one block keeps the first "before" values.
    pub fn apply_state(&mut self, block: BlockNumber, changes: &StateChanges) -> StorageResult<()> {
        if let Some(head) = self.head_number()?
            && block < head
        {
            return Err(StorageError::invalid(
                Table::BlockChangeSets,
                format!("state of block {block} applied below the head {head}"),
            ));
        }
        let mut entries = Vec::with_capacity(changes.accounts.len());
        for (address, change) in &changes.accounts {
            let hashed_address = keccak256(address);
            let old = reader::plain_account(&self.tx, &self.tables, address)?;
            let new = change.info;
            let mut entry = ChangeSetEntry {
                address: *address,
                account_changed: false,
                slots: Vec::new(),
            };

            if old != new {
                codec::encode_account_history(old.as_ref(), &mut self.buf);
                put_if_absent(
                    &self.tx,
                    self.db(Table::AccountHistory),
                    &codec::account_history_key(address, block),
                    &self.buf,
                )?;
                entry.account_changed = true;
            }

            if change.storage_wiped || new.is_none() {
                self.wipe_storage(address, &hashed_address, block, &mut entry.slots)?;
            }
            if new.is_some() {
                for (slot, value) in &change.storage {
                    self.write_slot(
                        address,
                        &hashed_address,
                        slot,
                        value,
                        block,
                        &mut entry.slots,
                    )?;
                }
            }

            if old != new {
                self.write_account(address, &hashed_address, new.as_ref())?;
            }

            if entry.account_changed || !entry.slots.is_empty() {
                entry.slots.sort_unstable();
                entry.slots.dedup();
                entries.push(entry);
            }
        }

        for (hash, code) in &changes.contracts {
            check_value_size(Table::Bytecodes, code)?;
            self.tx.put(
                self.db(Table::Bytecodes),
                hash.as_slice(),
                code,
                WriteFlags::empty(),
            )?;
        }

        self.write_change_set(block, entries)
    }

    /// Writes (or deletes) an account in the plain and hashed tables. The
    /// hashed entry keeps its current storage root; the root is recomputed
    /// later if the storage changed.
    fn write_account(
        &mut self,
        address: &Address,
        hashed_address: &B256,
        account: Option<&Account>,
    ) -> StorageResult<()> {
        self.changed_accounts.insert(*hashed_address);
        match account {
            Some(acc) => {
                self.buf.clear();
                acc.encode(&mut self.buf);
                self.tx.put(
                    self.db(Table::PlainAccounts),
                    address.as_slice(),
                    &self.buf,
                    WriteFlags::empty(),
                )?;
                let storage_root = self.stored_storage_root(hashed_address)?;
                let trie_account =
                    TrieAccount::new(acc.nonce, acc.balance, storage_root, acc.code_hash);
                self.buf.clear();
                trie_account.encode(&mut self.buf);
                self.tx.put(
                    self.db(Table::HashedAccounts),
                    hashed_address.as_slice(),
                    &self.buf,
                    WriteFlags::empty(),
                )?;
            }
            None => {
                self.tx
                    .del(self.db(Table::PlainAccounts), address.as_slice(), None)?;
                self.tx.del(
                    self.db(Table::HashedAccounts),
                    hashed_address.as_slice(),
                    None,
                )?;
            }
        }
        Ok(())
    }

    /// The storage root currently stored for an account, or the empty root.
    fn stored_storage_root(&self, hashed_address: &B256) -> StorageResult<B256> {
        Ok(self
            .hashed_account(hashed_address)?
            .map_or(EMPTY_ROOT_HASH, |a| a.storage_root))
    }

    fn hashed_account(&self, hashed_address: &B256) -> StorageResult<Option<TrieAccount>> {
        get_with(
            &self.tx,
            &self.tables,
            Table::HashedAccounts,
            hashed_address.as_slice(),
            |v| codec::decode_rlp(Table::HashedAccounts, hashed_address.as_slice(), v),
        )
    }

    /// Sets one slot (zero deletes), recording the old value in history.
    fn write_slot(
        &mut self,
        address: &Address,
        hashed_address: &B256,
        slot: &U256,
        value: &U256,
        block: BlockNumber,
        changed: &mut Vec<U256>,
    ) -> StorageResult<()> {
        let old = reader::plain_storage(&self.tx, &self.tables, address, slot)?;
        if old == *value {
            return Ok(());
        }
        put_if_absent(
            &self.tx,
            self.db(Table::StorageHistory),
            &codec::storage_history_key(address, slot, block),
            &old.to_be_bytes::<WORD_BYTES>(),
        )?;
        changed.push(*slot);
        self.set_slot(address, hashed_address, slot, value)
    }

    /// Sets one slot in the plain and hashed tables (zero deletes), no history.
    fn set_slot(
        &mut self,
        address: &Address,
        hashed_address: &B256,
        slot: &U256,
        value: &U256,
    ) -> StorageResult<()> {
        let key = codec::storage_key(address, slot);
        let slot_bytes = slot.to_be_bytes::<WORD_BYTES>();
        let hashed_slot = keccak256(slot_bytes);
        let hashed_key = codec::hashed_storage_key(hashed_address, &hashed_slot);
        if value.is_zero() {
            self.tx.del(self.db(Table::PlainStorage), key, None)?;
            self.tx
                .del(self.db(Table::HashedStorage), hashed_key, None)?;
        } else {
            self.tx.put(
                self.db(Table::PlainStorage),
                key,
                value.to_be_bytes::<WORD_BYTES>(),
                WriteFlags::empty(),
            )?;
            self.buf.clear();
            value.encode(&mut self.buf);
            self.tx.put(
                self.db(Table::HashedStorage),
                hashed_key,
                &self.buf,
                WriteFlags::empty(),
            )?;
        }
        self.changed_storage
            .entry(*hashed_address)
            .or_default()
            .insert(hashed_slot);
        Ok(())
    }

    /// Deletes every slot of `address`, recording each in history.
    fn wipe_storage(
        &mut self,
        address: &Address,
        hashed_address: &B256,
        block: BlockNumber,
        changed: &mut Vec<U256>,
    ) -> StorageResult<()> {
        let history = self.db(Table::StorageHistory);
        let tx = &self.tx;
        drain_prefix(
            tx,
            &self.tables,
            Table::PlainStorage,
            address.as_slice(),
            |k, v| {
                if k.len() != STORAGE_KEY_BYTES {
                    return Err(StorageError::corrupt(
                        Table::PlainStorage,
                        k,
                        "bad key length",
                    ));
                }
                let slot = U256::from_be_slice(&k[ADDRESS_BYTES..]);
                let value = codec::decode_word(Table::PlainStorage, k, v)?;
                put_if_absent(
                    tx,
                    history,
                    &codec::storage_history_key(address, &slot, block),
                    &value.to_be_bytes::<WORD_BYTES>(),
                )?;
                changed.push(slot);
                Ok(())
            },
        )?;
        let any = drain_prefix(
            tx,
            &self.tables,
            Table::HashedStorage,
            hashed_address.as_slice(),
            |_, _| Ok(()),
        )? > 0;
        if any || !changed.is_empty() {
            // With no stored node left, the next walk reads all of the
            // account's leaves: only those written after the wipe.
            trie::delete_storage_trie(&self.tx, &self.tables, hashed_address)?;
            self.changed_storage.entry(*hashed_address).or_default();
        }
        Ok(())
    }

    /// Writes the change set of `block`, merged with one already stored (when
    /// `apply_state` runs more than once for the same block).
    fn write_change_set(
        &mut self,
        block: BlockNumber,
        mut entries: Vec<ChangeSetEntry>,
    ) -> StorageResult<()> {
        let key = block.to_be_bytes();
        let existing: Option<Vec<ChangeSetEntry>> =
            get_with(&self.tx, &self.tables, Table::BlockChangeSets, &key, |v| {
                codec::decode_rlp(Table::BlockChangeSets, &key, v)
            })?;
        if let Some(existing) = existing {
            for old in existing {
                match entries.iter_mut().find(|e| e.address == old.address) {
                    Some(e) => {
                        e.account_changed |= old.account_changed;
                        e.slots.extend(old.slots);
                        e.slots.sort_unstable();
                        e.slots.dedup();
                    }
                    None => entries.push(old),
                }
            }
            entries.sort_unstable_by_key(|e| e.address);
        }
        if entries.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        entries.encode(&mut self.buf);
        check_value_size(Table::BlockChangeSets, &self.buf)?;
        self.tx.put(
            self.db(Table::BlockChangeSets),
            key,
            &self.buf,
            WriteFlags::empty(),
        )?;
        Ok(())
    }

    /// Brings every trie up to date with this writer's changes and returns
    /// the state root. Runs in `state_root` and `commit`, so the stored
    /// branch nodes always match the committed leaves.
    ///
    /// Walks need the transaction, so they run on this thread; builds are
    /// pure CPU, so they overlap with it. In order:
    ///
    /// 1. walk the storage tries of the accounts whose storage changed;
    /// 2. build them on another thread, while this one walks the account
    ///    trie (those accounts are among its targets; their leaves are read
    ///    with the old storage roots);
    /// 3. patch the new storage roots into those leaves and build the
    ///    account trie on another thread, while this one writes the storage
    ///    tries' nodes and the accounts' new leaves;
    /// 4. write the account trie's nodes.
    fn update_tries(&mut self) -> StorageResult<B256> {
        let changed_storage = std::mem::take(&mut self.changed_storage);
        // The accounts whose storage tries are walked, each with its leaf as
        // read here (its storage root is replaced below), and their walks.
        let mut storage_owners = Vec::with_capacity(changed_storage.len());
        let mut storage_walks = Vec::with_capacity(changed_storage.len());
        for (hashed_address, slots) in &changed_storage {
            let Some(account) = self.hashed_account(hashed_address)? else {
                // Gone (destroyed, or unwound before its creation): so are
                // its leaves, and its nodes must go too.
                trie::delete_storage_trie(&self.tx, &self.tables, hashed_address)?;
                continue;
            };
            let targets: Vec<B256> = slots.iter().copied().collect();
            let trie = TrieId::Storage(*hashed_address);
            storage_walks.push(trie::walk(&self.tx, &self.tables, trie, &targets)?);
            storage_owners.push((*hashed_address, account));
        }

        let mut account_targets = std::mem::take(&mut self.changed_accounts);
        account_targets.extend(
            storage_owners
                .iter()
                .map(|(hashed_address, _)| *hashed_address),
        );
        let account_targets: Vec<B256> = account_targets.into_iter().collect();
        let (storage_updates, account_walk) = if storage_walks.is_empty() {
            let walk = trie::walk(&self.tx, &self.tables, TrieId::Accounts, &account_targets);
            (Vec::new(), walk)
        } else {
            std::thread::scope(|scope| {
                let builds = scope.spawn(|| build_in_parallel(&storage_walks));
                let account_walk =
                    trie::walk(&self.tx, &self.tables, TrieId::Accounts, &account_targets);
                let storage_updates = builds.join().expect("a trie build panicked");
                (storage_updates, account_walk)
            })
        };
        let mut account_walk = account_walk?;

        // The accounts' leaves with their new storage roots.
        let mut new_leaves = Vec::with_capacity(storage_updates.len());
        for ((hashed_address, account), update) in storage_owners.iter().zip(&storage_updates) {
            if update.root != account.storage_root {
                let mut account = *account;
                account.storage_root = update.root;
                new_leaves.push((*hashed_address, alloy_rlp::encode(account)));
            }
        }
        account_walk.replace_leaves(&new_leaves)?;

        let account_update = if storage_walks.is_empty() {
            account_walk.build()
        } else {
            let (account_update, written) = std::thread::scope(|scope| {
                let build = scope.spawn(|| account_walk.build());
                let written = (|| -> StorageResult<()> {
                    for ((hashed_address, _), update) in storage_owners.iter().zip(&storage_updates)
                    {
                        let trie = TrieId::Storage(*hashed_address);
                        trie::write_update(&self.tx, &self.tables, trie, update, &mut self.buf)?;
                    }
                    for (hashed_address, leaf) in &new_leaves {
                        self.tx.put(
                            self.tables.get(Table::HashedAccounts),
                            hashed_address.as_slice(),
                            leaf,
                            WriteFlags::empty(),
                        )?;
                    }
                    Ok(())
                })();
                (
                    build.join().expect("the account trie build panicked"),
                    written,
                )
            });
            written?;
            account_update
        };
        trie::write_update(
            &self.tx,
            &self.tables,
            TrieId::Accounts,
            &account_update,
            &mut self.buf,
        )?;
        Ok(account_update.root)
    }

    /// The state root of the current state (including this writer's changes),
    /// exactly as Ethereum defines it.
    ///
    /// Cost: follows the keys changed since the last call, not the size of
    /// the state: each trie is walked from its stored branch nodes along the
    /// paths to the changed keys only (see [`crate::trie`]).
    pub fn state_root(&mut self) -> StorageResult<B256> {
        self.update_tries()
    }

    // ---------------------------------------------------------------- blocks

    /// Stores a block and its receipts and makes it the canonical block at its
    /// height and the head: header, body with senders, receipts, transaction
    /// lookup, canonical mapping, head number.
    ///
    /// `block` must extend the head (`number == head + 1`; any number on an
    /// empty database). To replace canonical blocks, [`Self::unwind_to`] first.
    pub fn insert_block(
        &mut self,
        block: &SealedBlock,
        receipts: &[ReceiptEnvelope],
    ) -> StorageResult<()> {
        if receipts.len() != block.transactions.len() {
            return Err(StorageError::invalid(
                Table::Receipts,
                format!(
                    "block {} has {} transactions but {} receipts",
                    block.number(),
                    block.transactions.len(),
                    receipts.len()
                ),
            ));
        }
        let hash = block.hash;
        let number = block.number();
        if let Some(head) = self.head_number()?
            && head.checked_add(1) != Some(number)
        {
            return Err(StorageError::invalid(
                Table::CanonicalHeaders,
                format!("block {number} does not extend the head {head}"),
            ));
        }
        let number_key = number.to_be_bytes();

        self.buf.clear();
        block.header.encode(&mut self.buf);
        self.tx.put(
            self.db(Table::Headers),
            hash,
            &self.buf,
            WriteFlags::empty(),
        )?;
        self.tx.put(
            self.db(Table::HeaderNumbers),
            hash,
            number_key,
            WriteFlags::empty(),
        )?;
        self.tx.put(
            self.db(Table::CanonicalHeaders),
            number_key,
            hash,
            WriteFlags::empty(),
        )?;

        codec::encode_body(&block.transactions, &mut self.buf);
        check_value_size(Table::BlockBodies, &self.buf)?;
        self.tx.put(
            self.db(Table::BlockBodies),
            hash,
            &self.buf,
            WriteFlags::empty(),
        )?;

        codec::encode_receipts(receipts, &mut self.buf);
        check_value_size(Table::Receipts, &self.buf)?;
        self.tx.put(
            self.db(Table::Receipts),
            hash,
            &self.buf,
            WriteFlags::empty(),
        )?;

        let lookup = self.db(Table::TxLookup);
        for (index, tx) in (0u64..).zip(&block.transactions) {
            self.buf.clear();
            TxLocation {
                block_number: number,
                block_hash: hash,
                index,
            }
            .encode(&mut self.buf);
            self.tx
                .put(lookup, tx.hash, &self.buf, WriteFlags::empty())?;
        }

        self.set_head_number(number)
    }

    // ---------------------------------------------------------------- unwind

    /// Unwinds the canonical chain to block `target`: for every block above
    /// it (newest first) restores the state from history using the block's
    /// change set, removes its history entries and change set, its
    /// transaction lookups and its canonical mapping; then sets the head to
    /// `target`. Headers, bodies and receipts stay stored by hash.
    pub fn unwind_to(&mut self, target: BlockNumber) -> StorageResult<()> {
        let Some(head) = self.head_number()? else {
            return Err(StorageError::Unwind("database has no head block".into()));
        };
        if target > head {
            return Err(StorageError::Unwind(format!(
                "target {target} is above head {head}"
            )));
        }
        for block in (target + 1..=head).rev() {
            self.unwind_state(block)?;
            if let Some(hash) = self.canonical_hash(block)? {
                let txs = get_with(
                    &self.tx,
                    &self.tables,
                    Table::BlockBodies,
                    hash.as_slice(),
                    |v| codec::decode_body(hash.as_slice(), v),
                )?;
                for tx in txs.unwrap_or_default() {
                    self.tx.del(self.db(Table::TxLookup), tx.hash, None)?;
                }
                self.tx
                    .del(self.db(Table::CanonicalHeaders), block.to_be_bytes(), None)?;
            }
        }
        self.set_head_number(target)
    }

    /// Reverts the state changes of one block (the newest applied one).
    fn unwind_state(&mut self, block: BlockNumber) -> StorageResult<()> {
        let key = block.to_be_bytes();
        let entries: Option<Vec<ChangeSetEntry>> =
            get_with(&self.tx, &self.tables, Table::BlockChangeSets, &key, |v| {
                codec::decode_rlp(Table::BlockChangeSets, &key, v)
            })?;
        let Some(entries) = entries else {
            return Ok(());
        };
        for entry in &entries {
            let address = &entry.address;
            let hashed_address = keccak256(address);
            for slot in &entry.slots {
                let hkey = codec::storage_history_key(address, slot, block);
                let old = get_with(&self.tx, &self.tables, Table::StorageHistory, &hkey, |v| {
                    codec::decode_word(Table::StorageHistory, &hkey, v)
                })?
                .ok_or_else(|| {
                    StorageError::Unwind(format!(
                        "missing storage history of {address} slot {slot} at block {block}"
                    ))
                })?;
                self.set_slot(address, &hashed_address, slot, &old)?;
                self.tx.del(self.db(Table::StorageHistory), hkey, None)?;
            }
            if entry.account_changed {
                let hkey = codec::account_history_key(address, block);
                let raw = get_raw(&self.tx, &self.tables, Table::AccountHistory, &hkey)?
                    .map(|v| codec::decode_account_history(&hkey, &v))
                    .transpose()?
                    .ok_or_else(|| {
                        StorageError::Unwind(format!(
                            "missing account history of {address} at block {block}"
                        ))
                    })?;
                self.write_account(address, &hashed_address, raw.as_ref())?;
                self.tx.del(self.db(Table::AccountHistory), hkey, None)?;
                self.changed_storage.entry(hashed_address).or_default();
            }
        }
        self.tx.del(self.db(Table::BlockChangeSets), key, None)?;
        Ok(())
    }

    /// Commits everything written: durable once this returns.
    pub fn commit(mut self) -> StorageResult<()> {
        if !self.changed_storage.is_empty() || !self.changed_accounts.is_empty() {
            self.update_tries()?;
        }
        self.tx.commit()?;
        Ok(())
    }
}

/// Builds independent tries on up to every core. A build is pure CPU (its
/// walk already read everything), and each result lands at its own index, so
/// the outcome never depends on the number of threads.
fn build_in_parallel(walks: &[TrieWalk]) -> Vec<TrieUpdate> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(walks.len());
    if threads <= 1 {
        return walks.iter().map(TrieWalk::build).collect();
    }
    let mut updates: Vec<TrieUpdate> = std::iter::repeat_with(TrieUpdate::default)
        .take(walks.len())
        .collect();
    let chunk = walks.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (walks, updates) in walks.chunks(chunk).zip(updates.chunks_mut(chunk)) {
            scope.spawn(move || {
                for (walk, update) in walks.iter().zip(updates) {
                    *update = walk.build();
                }
            });
        }
    });
    updates
}
