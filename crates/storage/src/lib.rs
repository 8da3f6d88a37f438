//! MDBX storage: every table in one list, block commits in one write
//! transaction, state history.
//!
//! # Schema
//!
//! All tables are declared in [`tables::Table`] (one macro list, with key and
//! value encodings). Keys are fixed-size byte strings with big-endian numbers,
//! so MDBX's lexicographic order is the numeric order and every prefix walk
//! (`address ++ ...`) is a contiguous range. In short:
//!
//! - chain: `CanonicalHeaders` (number -> hash), `HeaderNumbers`, `Headers`,
//!   `BlockBodies` (EIP-2718 transactions + senders), `Receipts`, `TxLookup`;
//! - current state: `PlainAccounts`, `PlainStorage` (nonzero values only),
//!   `Bytecodes`;
//! - history: `AccountHistory` / `StorageHistory` hold, at key
//!   `(… , block)`, the value *before* `block` changed it. The state after
//!   block `b` is found by seeking `(…, b + 1)`: the first entry for the same
//!   account/slot holds the value at `b`; with none, the current value is
//!   also the value at `b`. `BlockChangeSets` lists what each block changed so
//!   [`BlockWriter::unwind_to`] can revert it;
//! - trie: `HashedAccounts` (keccak(address) -> RLP of the trie account, with
//!   its storage root) and `HashedStorage` (keccak(address) ++ keccak(slot) ->
//!   RLP value) are the leaves of the state and storage tries, already sorted;
//!   `AccountsTrie` and `StoragesTrie` hold every branch node above them
//!   (masks and child hashes, by path). [`BlockWriter::state_root`] walks
//!   from those nodes along the paths to the keys changed since the last
//!   root only, reusing the stored hash of every untouched subtree, so a
//!   root costs O(changed keys × depth), not O(state) (`trie.rs`);
//! - `Meta`: head number, genesis hash, chain id, schema version.
//!
//! # Operator tools
//!
//! [`Database::open_read_only`] opens a datadir without writing (also while a
//! node runs on it); [`Database::stats`] gives every table's entries and
//! pages; [`Reader::verify_state`] recomputes the state root from the plain
//! tables alone and compares it with the head header.
//!
//! # Crash safety
//!
//! Everything a block writes (its state changes, history, change set, hashed
//! state, the block itself and the new head number) goes through one MDBX
//! write transaction, [`BlockWriter`], committed once. MDBX is copy-on-write
//! and runs in durable sync mode: a commit flushes the data pages, then
//! switches the meta page, then flushes that. A crash (kill -9, power loss)
//! before the meta page is durable leaves the previous commit as the
//! database; after it, the new one. So the database always holds whole
//! blocks: the head block's state is exactly the state after the head block.
//! [`Reader`]s see one committed snapshot each.

mod codec;
mod db;
mod error;
mod proof;
mod reader;
mod stats;
pub mod tables;
mod trie;
mod verify;
mod writer;

pub use db::{
    DATA_FILE_NAME, Database, GROWTH_STEP_BYTES, MAX_MAP_SIZE_BYTES, MAX_META_KEY_BYTES,
    MAX_READERS, MAX_VALUE_BYTES, SCHEMA_VERSION,
};
pub use error::{StorageError, StorageResult};
pub use proof::{AccountProof, StorageProof};
pub use reader::{HistoricalState, LatestState, Reader};
pub use stats::{DbStats, TableStats};
pub use tables::{Table, meta_keys};
pub use verify::{MAX_REPORTED_PROBLEMS, VerifyReport};
pub use writer::BlockWriter;

/// Compile-time check of the thread-safety the node relies on.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    send_sync::<Database>();
    send_sync::<Reader>();
    send_sync::<LatestState<'static>>();
    send_sync::<HistoricalState<'static>>();
    send::<BlockWriter>();
};
