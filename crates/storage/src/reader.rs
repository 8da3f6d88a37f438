//! Read side: [`Reader`] (one MDBX read transaction) and the state views
//! [`LatestState`] and [`HistoricalState`].

use crate::{
    codec::{self, ADDRESS_BYTES, STORAGE_KEY_BYTES},
    db::{Tables, get_raw, get_with},
    error::{StorageError, StorageResult},
    tables::{Table, meta_keys},
};
use alloy_primitives::{Address, B256, Bytes, U256};
use infera_primitives::{
    Account, BlockNumber, Header, ReceiptEnvelope, RecoveredTx, SealedBlock, StateReader,
    TxLocation,
};
use signet_libmdbx::{TransactionKind, tx::Tx, tx::aliases::RoTxSync};
use std::{borrow::Cow, marker::PhantomData};

/// A consistent read-only snapshot of the database (one MDBX read
/// transaction). Owns its transaction: `Send + Sync + 'static`, cheap to clone
/// (clones share the snapshot).
#[derive(Clone, Debug)]
pub struct Reader {
    pub(crate) tx: RoTxSync,
    pub(crate) tables: Tables,
}

impl Reader {
    pub(crate) fn new(tx: RoTxSync, tables: Tables) -> Self {
        Self { tx, tables }
    }

    /// Raw value of a `Meta` key.
    pub fn meta_get(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        Ok(get_raw(&self.tx, &self.tables, Table::Meta, key)?.map(Cow::into_owned))
    }

    /// Number of the canonical head block, `None` before genesis is written.
    pub fn head_number(&self) -> StorageResult<Option<BlockNumber>> {
        read_meta_u64(&self.tx, &self.tables, meta_keys::HEAD_NUMBER)
    }

    /// Hash of the genesis block, if recorded.
    pub fn genesis_hash(&self) -> StorageResult<Option<B256>> {
        get_with(
            &self.tx,
            &self.tables,
            Table::Meta,
            meta_keys::GENESIS_HASH,
            |v| codec::decode_b256(Table::Meta, meta_keys::GENESIS_HASH, v),
        )
    }

    /// Chain id, if recorded.
    pub fn chain_id(&self) -> StorageResult<Option<u64>> {
        read_meta_u64(&self.tx, &self.tables, meta_keys::CHAIN_ID)
    }

    /// Hash of the canonical block at height `number`.
    pub fn canonical_hash(&self, number: BlockNumber) -> StorageResult<Option<B256>> {
        canonical_hash(&self.tx, &self.tables, number)
    }

    /// Number of the stored block with hash `hash` (canonical or not).
    pub fn block_number(&self, hash: B256) -> StorageResult<Option<BlockNumber>> {
        get_with(
            &self.tx,
            &self.tables,
            Table::HeaderNumbers,
            hash.as_slice(),
            |v| codec::decode_u64(Table::HeaderNumbers, hash.as_slice(), v),
        )
    }

    /// Header of the canonical block `number`.
    pub fn header(&self, number: BlockNumber) -> StorageResult<Option<Header>> {
        match self.canonical_hash(number)? {
            Some(hash) => self.header_by_hash(hash),
            None => Ok(None),
        }
    }

    /// Header of the stored block with hash `hash`.
    pub fn header_by_hash(&self, hash: B256) -> StorageResult<Option<Header>> {
        get_with(
            &self.tx,
            &self.tables,
            Table::Headers,
            hash.as_slice(),
            |v| codec::decode_rlp(Table::Headers, hash.as_slice(), v),
        )
    }

    /// The canonical block `number` with its transactions and senders.
    pub fn block(&self, number: BlockNumber) -> StorageResult<Option<SealedBlock>> {
        match self.canonical_hash(number)? {
            Some(hash) => self.block_by_hash(hash),
            None => Ok(None),
        }
    }

    /// The stored block with hash `hash`.
    pub fn block_by_hash(&self, hash: B256) -> StorageResult<Option<SealedBlock>> {
        let Some(header) = self.header_by_hash(hash)? else {
            return Ok(None);
        };
        let transactions = self.transactions_by_hash(hash)?.unwrap_or_default();
        Ok(Some(SealedBlock {
            header,
            hash,
            transactions,
        }))
    }

    /// The transactions (with senders) of the stored block with hash `hash`.
    pub fn transactions_by_hash(&self, hash: B256) -> StorageResult<Option<Vec<RecoveredTx>>> {
        get_with(
            &self.tx,
            &self.tables,
            Table::BlockBodies,
            hash.as_slice(),
            |v| codec::decode_body(hash.as_slice(), v),
        )
    }

    /// Receipts of the canonical block `number`.
    pub fn receipts(&self, number: BlockNumber) -> StorageResult<Option<Vec<ReceiptEnvelope>>> {
        match self.canonical_hash(number)? {
            Some(hash) => self.receipts_by_hash(hash),
            None => Ok(None),
        }
    }

    /// Receipts of the stored block with hash `hash`.
    pub fn receipts_by_hash(&self, hash: B256) -> StorageResult<Option<Vec<ReceiptEnvelope>>> {
        get_with(
            &self.tx,
            &self.tables,
            Table::Receipts,
            hash.as_slice(),
            |v| codec::decode_receipts(hash.as_slice(), v),
        )
    }

    /// Where the canonical transaction `tx_hash` sits.
    pub fn transaction_location(&self, tx_hash: B256) -> StorageResult<Option<TxLocation>> {
        get_with(
            &self.tx,
            &self.tables,
            Table::TxLookup,
            tx_hash.as_slice(),
            |v| codec::decode_rlp(Table::TxLookup, tx_hash.as_slice(), v),
        )
    }

    /// The canonical transaction `tx_hash` with its location.
    pub fn transaction(&self, tx_hash: B256) -> StorageResult<Option<(RecoveredTx, TxLocation)>> {
        let Some(loc) = self.transaction_location(tx_hash)? else {
            return Ok(None);
        };
        let Some(txs) = self.transactions_by_hash(loc.block_hash)? else {
            return Ok(None);
        };
        let tx = usize::try_from(loc.index)
            .ok()
            .and_then(|i| txs.into_iter().nth(i));
        Ok(tx.map(|tx| (tx, loc)))
    }

    /// Contract code by hash.
    pub fn code_by_hash(&self, code_hash: B256) -> StorageResult<Option<Bytes>> {
        code_by_hash(&self.tx, &self.tables, code_hash)
    }

    /// The state at the head (what the last commit left).
    ///
    /// The view owns a clone of this snapshot, so it may outlive `self`; the
    /// lifetime parameter is only there for signatures written as
    /// `LatestState<'_>`.
    pub fn latest_state(&self) -> LatestState<'static> {
        LatestState {
            reader: self.clone(),
            _marker: PhantomData,
        }
    }

    /// The state after block `block` was applied, answered from the current
    /// state plus the history tables. For `block >= head` it equals the
    /// latest state. Like [`Reader::latest_state`], it owns its snapshot.
    pub fn state_at(&self, block: BlockNumber) -> HistoricalState<'static> {
        HistoricalState {
            reader: self.clone(),
            block,
            _marker: PhantomData,
        }
    }
}

/// The head state of one [`Reader`] snapshot. Implements [`StateReader`].
#[derive(Clone, Debug)]
pub struct LatestState<'a> {
    reader: Reader,
    _marker: PhantomData<&'a ()>,
}

impl StateReader for LatestState<'_> {
    type Error = StorageError;

    fn account(&self, address: Address) -> StorageResult<Option<Account>> {
        plain_account(&self.reader.tx, &self.reader.tables, &address)
    }

    fn storage(&self, address: Address, slot: U256) -> StorageResult<U256> {
        plain_storage(&self.reader.tx, &self.reader.tables, &address, &slot)
    }

    fn code_by_hash(&self, code_hash: B256) -> StorageResult<Option<Bytes>> {
        self.reader.code_by_hash(code_hash)
    }

    fn block_hash(&self, number: BlockNumber) -> StorageResult<Option<B256>> {
        self.reader.canonical_hash(number)
    }
}

/// The state after an older block, in one [`Reader`] snapshot. Implements
/// [`StateReader`].
#[derive(Clone, Debug)]
pub struct HistoricalState<'a> {
    reader: Reader,
    block: BlockNumber,
    _marker: PhantomData<&'a ()>,
}

impl HistoricalState<'_> {
    /// The block after which this view shows the state.
    pub fn block(&self) -> BlockNumber {
        self.block
    }
}

impl StateReader for HistoricalState<'_> {
    type Error = StorageError;

    fn account(&self, address: Address) -> StorageResult<Option<Account>> {
        historical_account(&self.reader.tx, &self.reader.tables, &address, self.block)
    }

    fn storage(&self, address: Address, slot: U256) -> StorageResult<U256> {
        historical_storage(
            &self.reader.tx,
            &self.reader.tables,
            &address,
            &slot,
            self.block,
        )
    }

    fn code_by_hash(&self, code_hash: B256) -> StorageResult<Option<Bytes>> {
        self.reader.code_by_hash(code_hash)
    }

    fn block_hash(&self, number: BlockNumber) -> StorageResult<Option<B256>> {
        self.reader.canonical_hash(number)
    }
}

// ---- shared read helpers (also used by the writer) ----

pub(crate) fn read_meta_u64<K: TransactionKind>(
    tx: &Tx<K>,
    tables: &Tables,
    key: &[u8],
) -> StorageResult<Option<u64>> {
    get_with(tx, tables, Table::Meta, key, |v| {
        codec::decode_u64(Table::Meta, key, v)
    })
}

pub(crate) fn canonical_hash<K: TransactionKind>(
    tx: &Tx<K>,
    tables: &Tables,
    number: BlockNumber,
) -> StorageResult<Option<B256>> {
    let key = number.to_be_bytes();
    get_with(tx, tables, Table::CanonicalHeaders, &key, |v| {
        codec::decode_b256(Table::CanonicalHeaders, &key, v)
    })
}

pub(crate) fn code_by_hash<K: TransactionKind>(
    tx: &Tx<K>,
    tables: &Tables,
    code_hash: B256,
) -> StorageResult<Option<Bytes>> {
    Ok(get_raw(tx, tables, Table::Bytecodes, code_hash.as_slice())?
        .map(|v| Bytes::copy_from_slice(&v)))
}

pub(crate) fn plain_account<K: TransactionKind>(
    tx: &Tx<K>,
    tables: &Tables,
    address: &Address,
) -> StorageResult<Option<Account>> {
    get_with(tx, tables, Table::PlainAccounts, address.as_slice(), |v| {
        codec::decode_rlp(Table::PlainAccounts, address.as_slice(), v)
    })
}

pub(crate) fn plain_storage<K: TransactionKind>(
    tx: &Tx<K>,
    tables: &Tables,
    address: &Address,
    slot: &U256,
) -> StorageResult<U256> {
    let key = codec::storage_key(address, slot);
    Ok(get_with(tx, tables, Table::PlainStorage, &key, |v| {
        codec::decode_word(Table::PlainStorage, &key, v)
    })?
    .unwrap_or(U256::ZERO))
}

pub(crate) fn historical_account<K: TransactionKind>(
    tx: &Tx<K>,
    tables: &Tables,
    address: &Address,
    block: BlockNumber,
) -> StorageResult<Option<Account>> {
    if let Some(next) = block.checked_add(1) {
        let seek = codec::account_history_key(address, next);
        let mut cursor = tx.cursor(tables.get(Table::AccountHistory))?;
        if let Some((k, v)) = cursor.set_range::<Cow<'_, [u8]>, Cow<'_, [u8]>>(&seek)?
            && k.get(..ADDRESS_BYTES) == Some(address.as_slice())
        {
            return codec::decode_account_history(&k, &v);
        }
    }
    plain_account(tx, tables, address)
}

pub(crate) fn historical_storage<K: TransactionKind>(
    tx: &Tx<K>,
    tables: &Tables,
    address: &Address,
    slot: &U256,
    block: BlockNumber,
) -> StorageResult<U256> {
    if let Some(next) = block.checked_add(1) {
        let seek = codec::storage_history_key(address, slot, next);
        let mut cursor = tx.cursor(tables.get(Table::StorageHistory))?;
        if let Some((k, v)) = cursor.set_range::<Cow<'_, [u8]>, Cow<'_, [u8]>>(&seek)?
            && k.get(..STORAGE_KEY_BYTES) == Some(&seek[..STORAGE_KEY_BYTES])
        {
            return codec::decode_word(Table::StorageHistory, &k, &v);
        }
    }
    plain_storage(tx, tables, address, slot)
}
