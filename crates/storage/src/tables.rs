//! Every MDBX table of the node, declared in one list.
//!
//! All tables are plain (no `DUP_SORT`, no `INTEGER_KEY`): keys are fixed-size
//! byte strings, numbers are big-endian, so MDBX's lexicographic order is the
//! numeric order and prefix walks (`address ++ ...`) are contiguous ranges.

/// Declares the table list: one enum variant per table, with its doc comment,
/// key encoding and value encoding, plus [`Table::ALL`].
macro_rules! tables {
    ($(
        $(#[doc = $doc:expr])*
        $name:ident { key: $key:expr, value: $value:expr $(,)? }
    ),* $(,)?) => {
        /// One MDBX table (named database). See each variant for its encoding.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Table {
            $(
                $(#[doc = $doc])*
                #[doc = ""]
                #[doc = concat!("Key: ", $key, ".")]
                #[doc = ""]
                #[doc = concat!("Value: ", $value, ".")]
                $name,
            )*
        }

        impl Table {
            /// Every table, in declaration order (the order of [`Table::index`]).
            pub const ALL: &'static [Table] = &[$(Table::$name),*];

            /// The MDBX name of the table.
            pub const fn name(self) -> &'static str {
                match self { $(Table::$name => stringify!($name)),* }
            }

            /// Human-readable description of the key encoding.
            pub const fn key_encoding(self) -> &'static str {
                match self { $(Table::$name => $key),* }
            }

            /// Human-readable description of the value encoding.
            pub const fn value_encoding(self) -> &'static str {
                match self { $(Table::$name => $value),* }
            }

            /// Position of the table in [`Table::ALL`].
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

tables! {
    /// Canonical chain: which block hash is canonical at each height.
    CanonicalHeaders {
        key: "block number, u64 big-endian (8 bytes)",
        value: "block hash (32 bytes)",
    },
    /// Block hash to block number, for every stored block (canonical or not).
    HeaderNumbers {
        key: "block hash (32 bytes)",
        value: "block number, u64 big-endian (8 bytes)",
    },
    /// Block headers by hash.
    Headers {
        key: "block hash (32 bytes)",
        value: "RLP of the alloy `Header`",
    },
    /// Block bodies by hash: transactions and their recovered senders.
    BlockBodies {
        key: "block hash (32 bytes)",
        value: "RLP list [ [tx...], [sender...] ], each tx an RLP byte string holding its EIP-2718 encoding, each sender a 20-byte address",
    },
    /// Receipts of a block, in transaction order.
    Receipts {
        key: "block hash (32 bytes)",
        value: "RLP list of RLP byte strings, each the EIP-2718 encoding of a `ReceiptEnvelope`",
    },
    /// Where each canonical transaction sits.
    TxLookup {
        key: "transaction hash (32 bytes)",
        value: "RLP of `TxLocation` [block_number, block_hash, index]",
    },
    /// Current (head) accounts.
    PlainAccounts {
        key: "address (20 bytes)",
        value: "RLP of `Account` [nonce, balance, code_hash]",
    },
    /// Current (head) storage; zero values are deleted, never stored.
    PlainStorage {
        key: "address (20 bytes) ++ slot (U256, 32 bytes big-endian)",
        value: "value (U256, 32 bytes big-endian, nonzero)",
    },
    /// Contract code (and other content-addressed blobs) by keccak256 hash.
    Bytecodes {
        key: "code hash (32 bytes)",
        value: "raw code bytes",
    },
    /// Account values before a block changed them. An entry exists only where
    /// the block really changed the account.
    AccountHistory {
        key: "address (20 bytes) ++ block number (u64 big-endian)",
        value: "0x00 when the account did not exist before the block, else 0x01 ++ RLP of `Account`",
    },
    /// Storage values before a block changed them. An entry exists only where
    /// the block really changed the slot.
    StorageHistory {
        key: "address (20 bytes) ++ slot (32 bytes big-endian) ++ block number (u64 big-endian)",
        value: "value before the block (U256, 32 bytes big-endian; zero means unset)",
    },
    /// Accounts keyed as in the state trie, with their storage root: the leaves
    /// of the account trie.
    HashedAccounts {
        key: "keccak256(address) (32 bytes)",
        value: "RLP of `TrieAccount` [nonce, balance, storage_root, code_hash] (the trie leaf value)",
    },
    /// Storage keyed as in the storage tries (nonzero values only).
    HashedStorage {
        key: "keccak256(address) (32 bytes) ++ keccak256(slot) (32 bytes)",
        value: "RLP of the U256 value (the trie leaf value)",
    },
    /// Branch nodes of the account trie (every one, so that a root follows
    /// the changed keys only; see `trie.rs`).
    AccountsTrie {
        key: "the node's path, one nibble (0..=15) a byte (0 to 63 bytes; the root is the empty key)",
        value: "state_mask, tree_mask, hash_mask (u16 big-endian each) ++ the hashed children's hashes (32 bytes each, in nibble order)",
    },
    /// Branch nodes of every storage trie.
    StoragesTrie {
        key: "keccak256(address) (32 bytes) ++ the node's path, one nibble a byte (0 to 63 bytes)",
        value: "as `AccountsTrie`",
    },
    /// Change set: what each block changed, so that it can be unwound.
    BlockChangeSets {
        key: "block number, u64 big-endian (8 bytes)",
        value: "RLP list of [address, account_changed (bool), [slot...]] for every account the block changed; history holds the old values",
    },
    /// Small metadata: head block number, genesis hash, chain id, schema version.
    Meta {
        key: "short ASCII name (at most `MAX_META_KEY_BYTES`)",
        value: "u64 big-endian for numbers, 32 bytes for hashes, raw bytes otherwise",
    },
}

/// Number of tables, i.e. `Table::ALL.len()`.
pub const TABLE_COUNT: usize = Table::ALL.len();

/// Well-known keys of the [`Table::Meta`] table.
pub mod meta_keys {
    /// Number of the canonical head block (u64 big-endian).
    pub const HEAD_NUMBER: &[u8] = b"head_number";
    /// Hash of the genesis block (32 bytes).
    pub const GENESIS_HASH: &[u8] = b"genesis_hash";
    /// Chain id (u64 big-endian).
    pub const CHAIN_ID: &[u8] = b"chain_id";
    /// Version of the table layout (u64 big-endian), see `SCHEMA_VERSION`.
    pub const SCHEMA_VERSION: &[u8] = b"schema_version";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_list_is_consistent() {
        for (i, table) in Table::ALL.iter().enumerate() {
            assert_eq!(table.index(), i);
            assert!(!table.key_encoding().is_empty());
            assert!(!table.value_encoding().is_empty());
        }
        let mut names: Vec<_> = Table::ALL.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE_COUNT);
    }
}
