//! Independent check of the state: the state root recomputed from scratch
//! from the plain tables, compared with the head header's root.
//!
//! [`crate::BlockWriter::state_root`] builds the root from `HashedAccounts`
//! and `HashedStorage`, which the writer maintains beside the plain tables.
//! This check reads only `PlainAccounts`, `PlainStorage` and `Bytecodes`, so
//! it catches a plain state that drifted from the hashed one (or from the
//! chain) as well as damaged entries.

use crate::{
    codec::{self, ADDRESS_BYTES, STORAGE_KEY_BYTES, WORD_BYTES},
    db::get_raw,
    error::{StorageError, StorageResult},
    reader::{self, Reader},
    tables::Table,
};
use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_rlp::Encodable;
use alloy_trie::{EMPTY_ROOT_HASH, HashBuilder, Nibbles, TrieAccount};
use infera_primitives::{BlockNumber, KECCAK256_EMPTY};
use std::borrow::Cow;

/// Most problems a [`VerifyReport`] lists one by one; beyond that only
/// [`VerifyReport::problem_count`] grows, so a badly damaged database does
/// not make the report itself unbounded.
pub const MAX_REPORTED_PROBLEMS: usize = 16;

/// What [`Reader::verify_state`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The head block the state belongs to.
    pub head_number: BlockNumber,
    /// Its hash.
    pub head_hash: B256,
    /// The state root its header commits to.
    pub header_state_root: B256,
    /// The state root recomputed from the plain tables.
    pub computed_state_root: B256,
    /// Accounts in `PlainAccounts`.
    pub accounts: u64,
    /// Storage slots of those accounts in `PlainStorage`.
    pub slots: u64,
    /// Entries of `Bytecodes` (each checked against its keccak256 key).
    pub code_entries: u64,
    /// Inconsistencies that do not show in the root (code missing or stored
    /// under a wrong hash, storage of no account, zero values stored), at
    /// most [`MAX_REPORTED_PROBLEMS`] of them.
    pub problems: Vec<String>,
    /// Number of all such inconsistencies found.
    pub problem_count: u64,
}

impl VerifyReport {
    /// The recomputed root equals the header's.
    pub fn root_matches(&self) -> bool {
        self.computed_state_root == self.header_state_root
    }

    /// The root matches and no other inconsistency was found.
    pub fn is_ok(&self) -> bool {
        self.root_matches() && self.problem_count == 0
    }

    fn problem(&mut self, text: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_REPORTED_PROBLEMS {
            self.problems.push(text);
        }
    }
}

impl Reader {
    /// Recomputes the state root of this snapshot from `PlainAccounts`,
    /// `PlainStorage` and `Bytecodes` alone, as Ethereum defines it (leaves
    /// keyed by keccak256 of the address / slot; an account leaf is the RLP
    /// of [nonce, balance, storage root, code hash]), and compares it with
    /// the head header's state root.
    ///
    /// Memory is O(accounts): the trie needs its leaves in hashed-key order,
    /// while `PlainAccounts` is in address order, so every account is held as
    /// a (keccak256(address), address) pair of 52 bytes and sorted. Storage
    /// is walked one account at a time, so it adds only O(slots of the
    /// largest account). Time is O(state + code bytes).
    ///
    /// Errors only when there is nothing to verify (no head block, or its
    /// header missing) or on a read or decode failure; a wrong root or other
    /// inconsistency is reported in the returned [`VerifyReport`].
    pub fn verify_state(&self) -> StorageResult<VerifyReport> {
        let head_number = self
            .head_number()?
            .ok_or_else(|| StorageError::Verify("the database has no head block".into()))?;
        let head_hash = self.canonical_hash(head_number)?.ok_or_else(|| {
            StorageError::Verify(format!(
                "no canonical hash for the head block {head_number}"
            ))
        })?;
        let header = self.header_by_hash(head_hash)?.ok_or_else(|| {
            StorageError::Verify(format!(
                "no header for the head block {head_number} ({head_hash})"
            ))
        })?;
        let mut report = VerifyReport {
            head_number,
            head_hash,
            header_state_root: header.state_root,
            computed_state_root: EMPTY_ROOT_HASH,
            accounts: 0,
            slots: 0,
            code_entries: 0,
            problems: Vec::new(),
            problem_count: 0,
        };

        let accounts = self.hashed_addresses()?;
        report.accounts = accounts.len() as u64;

        let mut hb = HashBuilder::default();
        let mut slots: Vec<(B256, U256)> = Vec::new();
        let mut buf = Vec::new();
        let mut zero_slots = 0u64;
        let mut storage = self.tx.cursor(self.tables.get(Table::PlainStorage))?;
        for (hashed_address, address) in &accounts {
            let account =
                reader::plain_account(&self.tx, &self.tables, address)?.ok_or_else(|| {
                    StorageError::corrupt(
                        Table::PlainAccounts,
                        address.as_slice(),
                        "entry vanished within one read snapshot",
                    )
                })?;

            slots.clear();
            let mut item = storage.set_range::<Cow<'_, [u8]>, Cow<'_, [u8]>>(address.as_slice())?;
            while let Some((k, v)) = item {
                if k.get(..ADDRESS_BYTES) != Some(address.as_slice()) {
                    break;
                }
                if k.len() != STORAGE_KEY_BYTES {
                    return Err(StorageError::corrupt(
                        Table::PlainStorage,
                        &k,
                        "bad key length",
                    ));
                }
                let value = codec::decode_word(Table::PlainStorage, &k, &v)?;
                if value.is_zero() {
                    zero_slots += 1;
                    // Zero means absent in the trie: counting it as a leaf
                    // would hide the writer's bug behind a root mismatch.
                    report.problem(format!(
                        "{address} slot 0x{} is stored with value zero",
                        B256::from_slice(&k[ADDRESS_BYTES..])
                    ));
                } else {
                    slots.push((keccak256(&k[ADDRESS_BYTES..]), value));
                }
                item = storage.next()?;
            }
            report.slots += slots.len() as u64;
            let storage_root = storage_root(&mut slots, &mut buf);

            if account.code_hash != KECCAK256_EMPTY
                && get_raw(
                    &self.tx,
                    &self.tables,
                    Table::Bytecodes,
                    account.code_hash.as_slice(),
                )?
                .is_none()
            {
                report.problem(format!(
                    "{address} has code hash {} but no such code is stored",
                    account.code_hash
                ));
            }

            buf.clear();
            TrieAccount::new(
                account.nonce,
                account.balance,
                storage_root,
                account.code_hash,
            )
            .encode(&mut buf);
            hb.add_leaf(Nibbles::unpack(hashed_address), &buf);
        }
        report.computed_state_root = hb.root();

        // Slots walked above belong to existing accounts; any other entry is
        // storage of an account that does not exist.
        let stored_slots = self
            .tx
            .db_stat(&self.tables.get(Table::PlainStorage))?
            .entries() as u64;
        let walked_slots = report.slots + zero_slots;
        if stored_slots > walked_slots {
            report.problem(format!(
                "PlainStorage holds {} slots of accounts that do not exist",
                stored_slots - walked_slots
            ));
        }

        self.check_code(&mut report)?;
        Ok(report)
    }

    /// Every address of `PlainAccounts` with its keccak256, sorted by the
    /// hash: the account trie's leaf order.
    fn hashed_addresses(&self) -> StorageResult<Vec<(B256, Address)>> {
        let entries = self
            .tx
            .db_stat(&self.tables.get(Table::PlainAccounts))?
            .entries();
        let mut out = Vec::with_capacity(entries);
        let mut cursor = self.tx.cursor(self.tables.get(Table::PlainAccounts))?;
        let mut item = cursor.first::<Cow<'_, [u8]>, ()>()?;
        while let Some((k, ())) = item {
            let address = Address::try_from(&k[..])
                .map_err(|_| StorageError::corrupt(Table::PlainAccounts, &k, "bad key length"))?;
            out.push((keccak256(address), address));
            item = cursor.next()?;
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Checks that every `Bytecodes` entry is stored under keccak256 of its
    /// bytes.
    fn check_code(&self, report: &mut VerifyReport) -> StorageResult<()> {
        let mut cursor = self.tx.cursor(self.tables.get(Table::Bytecodes))?;
        let mut item = cursor.first::<Cow<'_, [u8]>, Cow<'_, [u8]>>()?;
        while let Some((k, v)) = item {
            if k.len() != WORD_BYTES {
                return Err(StorageError::corrupt(
                    Table::Bytecodes,
                    &k,
                    "bad key length",
                ));
            }
            report.code_entries += 1;
            let hash = keccak256(&v);
            if hash.as_slice() != &k[..] {
                report.problem(format!(
                    "code stored under 0x{} hashes to {hash}",
                    B256::from_slice(&k)
                ));
            }
            item = cursor.next()?;
        }
        Ok(())
    }
}

/// Root of one storage trie from its (keccak256(slot), value) leaves, which
/// it sorts. Leaf values are the RLP of the value, as in Ethereum.
fn storage_root(slots: &mut [(B256, U256)], buf: &mut Vec<u8>) -> B256 {
    if slots.is_empty() {
        return EMPTY_ROOT_HASH;
    }
    slots.sort_unstable_by_key(|(hashed_slot, _)| *hashed_slot);
    let mut hb = HashBuilder::default();
    for (hashed_slot, value) in slots.iter() {
        buf.clear();
        value.encode(buf);
        hb.add_leaf(Nibbles::unpack(hashed_slot), buf);
    }
    hb.root()
}
