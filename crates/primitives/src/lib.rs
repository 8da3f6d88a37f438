//! Types shared by every infera component.
//!
//! This crate holds data only: no I/O, no EVM, no database. Storage, the
//! executor, the pool and the RPC all speak in these types, so they are the
//! contract between the crates.

use std::collections::BTreeMap;

pub use alloy_consensus::{
    Header, ReceiptEnvelope, ReceiptWithBloom, Sealed, Signed, TxEnvelope, TxType,
};
pub use alloy_primitives::{Address, B256, Bloom, Bytes, KECCAK256_EMPTY, Log, U256, keccak256};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use serde::{Deserialize, Serialize};

/// Block number (height), genesis is 0.
pub type BlockNumber = u64;

/// The keccak256 of the RLP of an empty trie, the root of empty storage.
pub const EMPTY_ROOT_HASH: B256 =
    alloy_primitives::b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421");

/// An account as the state holds it, without its storage root (which storage
/// derives from the storage table when it computes the state root).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, RlpEncodable, RlpDecodable,
)]
pub struct Account {
    pub nonce: u64,
    pub balance: U256,
    /// keccak256 of the code; [`KECCAK256_EMPTY`] for accounts without code.
    pub code_hash: B256,
}

impl Account {
    /// A fresh account with a balance and nothing else.
    pub fn with_balance(balance: U256) -> Self {
        Self {
            nonce: 0,
            balance,
            code_hash: KECCAK256_EMPTY,
        }
    }

    /// True when the account has code.
    pub fn has_code(&self) -> bool {
        self.code_hash != KECCAK256_EMPTY && self.code_hash != B256::ZERO
    }

    /// EIP-161 emptiness: no nonce, no balance, no code.
    pub fn is_empty(&self) -> bool {
        self.nonce == 0 && self.balance.is_zero() && !self.has_code()
    }
}

/// The change one account underwent in a block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountChange {
    /// The account after the block; `None` when it was destroyed (or is empty
    /// and removed under EIP-161).
    pub info: Option<Account>,
    /// True when all storage the account had before the block must be dropped
    /// before `storage` applies (selfdestruct, or re-creation at the address).
    pub storage_wiped: bool,
    /// Storage slots written in the block, slot -> new value (zero deletes).
    pub storage: BTreeMap<U256, U256>,
}

/// Everything a block changed in state. Produced by the executor, applied by
/// storage in the same write transaction as the block itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// Changed accounts, ordered by address so that writes are deterministic.
    pub accounts: BTreeMap<Address, AccountChange>,
    /// Contract code created in the block, by code hash.
    pub contracts: BTreeMap<B256, Bytes>,
}

/// A transaction together with its recovered sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredTx {
    pub tx: TxEnvelope,
    pub sender: Address,
    /// keccak256 of the EIP-2718 encoding.
    pub hash: B256,
}

/// A block as storage keeps it: header, hash, and the transactions with their senders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBlock {
    pub header: Header,
    /// keccak256 of the RLP-encoded header.
    pub hash: B256,
    pub transactions: Vec<RecoveredTx>,
}

impl SealedBlock {
    /// Seal a header: computes its hash.
    pub fn new(header: Header, transactions: Vec<RecoveredTx>) -> Self {
        let hash = header.hash_slow();
        Self {
            header,
            hash,
            transactions,
        }
    }

    pub fn number(&self) -> BlockNumber {
        self.header.number
    }
}

/// Where a transaction sits in the canonical chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, RlpEncodable, RlpDecodable)]
pub struct TxLocation {
    pub block_number: BlockNumber,
    pub block_hash: B256,
    pub index: u64,
}

/// Read access to the world state at one point of the chain (the head, or
/// after some older block). Storage implements it over MDBX; the executor
/// runs the EVM on top of it.
pub trait StateReader {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The account at `address`, `None` if it does not exist.
    fn account(&self, address: Address) -> Result<Option<Account>, Self::Error>;

    /// The value of one storage slot, zero when unset.
    fn storage(&self, address: Address, slot: U256) -> Result<U256, Self::Error>;

    /// Contract code by its keccak256 hash.
    fn code_by_hash(&self, code_hash: B256) -> Result<Option<Bytes>, Self::Error>;

    /// Hash of the canonical block `number`, for the BLOCKHASH opcode.
    fn block_hash(&self, number: BlockNumber) -> Result<Option<B256>, Self::Error>;
}

impl<T: StateReader + ?Sized> StateReader for &T {
    type Error = T::Error;
    fn account(&self, address: Address) -> Result<Option<Account>, Self::Error> {
        (**self).account(address)
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, Self::Error> {
        (**self).storage(address, slot)
    }
    fn code_by_hash(&self, code_hash: B256) -> Result<Option<Bytes>, Self::Error> {
        (**self).code_by_hash(code_hash)
    }
    fn block_hash(&self, number: BlockNumber) -> Result<Option<B256>, Self::Error> {
        (**self).block_hash(number)
    }
}

/// What the node announces to its subscribers (RPC filters and
/// subscriptions; later the network).
#[derive(Clone, Debug)]
pub enum ChainEvent {
    /// A block became the canonical head, with its receipts.
    NewBlock {
        block: std::sync::Arc<SealedBlock>,
        receipts: std::sync::Arc<Vec<ReceiptEnvelope>>,
    },
    /// A transaction entered the pool.
    PendingTransaction(B256),
}

/// Signs a 32-byte digest with a secp256k1 key (RFC 6979 nonce, low `s`), as
/// every transaction and message signature of the node is made: the dev
/// accounts' `eth_sign*`, `infera model upload`'s key, the benchmarks.
pub fn sign_hash(secret: &secp256k1::SecretKey, hash: B256) -> alloy_primitives::Signature {
    let (recid, compact) = secp256k1::SECP256K1
        .sign_ecdsa_recoverable(secp256k1::Message::from_digest(hash.0), secret)
        .serialize_compact();
    alloy_primitives::Signature::new(
        U256::from_be_slice(&compact[..32]),
        U256::from_be_slice(&compact[32..]),
        i32::from(recid) == 1,
    )
}

/// The address of a secp256k1 key's account.
pub fn address_of_secret(secret: &secp256k1::SecretKey) -> Address {
    let public = secret
        .public_key(secp256k1::SECP256K1)
        .serialize_uncompressed();
    Address::from_raw_public_key(&public[1..])
}
