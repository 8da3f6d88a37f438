//! In-memory state and transaction signing for the tests.

use std::{collections::HashMap, convert::Infallible};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, address, b256, keccak256};
use infera_evm::{BlockEnvInput, ExecutionConfig, recover};
use infera_primitives::{Account, BlockNumber, RecoveredTx, StateChanges, StateReader};
use secp256k1::{Message, SECP256K1, SecretKey};

pub const CHAIN_ID: u64 = 6174;
pub const BASE_FEE: u64 = 7;
pub const BLOCK_GAS_LIMIT: u64 = 30_000_000;
pub const COINBASE: Address = address!("0xc0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0");
/// A fixed test key (as given in the brief).
pub const KEY: B256 = b256!("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcb78d7c5d8a9e2f80");
pub const ONE_ETHER: u128 = 1_000_000_000_000_000_000;

#[derive(Debug, Default, Clone)]
pub struct MemState {
    pub accounts: HashMap<Address, Account>,
    pub storage: HashMap<(Address, U256), U256>,
    pub code: HashMap<B256, Bytes>,
}

impl MemState {
    pub fn with_account(mut self, address: Address, balance: u128) -> Self {
        self.accounts
            .insert(address, Account::with_balance(U256::from(balance)));
        self
    }

    pub fn with_code(mut self, address: Address, code: Bytes) -> Self {
        let hash = keccak256(&code);
        self.code.insert(hash, code);
        self.accounts.insert(
            address,
            Account {
                nonce: 1,
                balance: U256::ZERO,
                code_hash: hash,
            },
        );
        self
    }

    /// Apply a block's changes, as storage would.
    pub fn apply(&mut self, changes: &StateChanges) {
        for (hash, code) in &changes.contracts {
            self.code.insert(*hash, code.clone());
        }
        for (address, change) in &changes.accounts {
            if change.storage_wiped || change.info.is_none() {
                self.storage.retain(|(a, _), _| a != address);
            }
            match change.info {
                Some(info) => self.accounts.insert(*address, info),
                None => self.accounts.remove(address),
            };
            for (slot, value) in &change.storage {
                if value.is_zero() {
                    self.storage.remove(&(*address, *slot));
                } else {
                    self.storage.insert((*address, *slot), *value);
                }
            }
        }
    }
}

impl StateReader for MemState {
    type Error = Infallible;
    fn account(&self, address: Address) -> Result<Option<Account>, Infallible> {
        Ok(self.accounts.get(&address).copied())
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, Infallible> {
        Ok(self
            .storage
            .get(&(address, slot))
            .copied()
            .unwrap_or_default())
    }
    fn code_by_hash(&self, code_hash: B256) -> Result<Option<Bytes>, Infallible> {
        Ok(self.code.get(&code_hash).cloned())
    }
    fn block_hash(&self, number: BlockNumber) -> Result<Option<B256>, Infallible> {
        Ok(Some(keccak256(number.to_be_bytes())))
    }
}

pub fn secret() -> SecretKey {
    SecretKey::from_byte_array(KEY.0).unwrap()
}

pub fn sender() -> Address {
    let public = secret().public_key(SECP256K1).serialize_uncompressed();
    Address::from_raw_public_key(&public[1..])
}

pub fn sign<T: SignableTransaction<Signature>>(tx: T) -> TxEnvelope
where
    TxEnvelope: From<alloy_consensus::Signed<T>>,
{
    let hash = tx.signature_hash();
    let signature = SECP256K1.sign_ecdsa_recoverable(Message::from_digest(hash.0), &secret());
    let (recid, bytes) = signature.serialize_compact();
    let sig = Signature::new(
        U256::from_be_slice(&bytes[..32]),
        U256::from_be_slice(&bytes[32..]),
        i32::from(recid) == 1,
    );
    TxEnvelope::from(tx.into_signed(sig))
}

pub fn eip1559(nonce: u64, to: TxKind, value: u128, gas_limit: u64, input: Bytes) -> RecoveredTx {
    recover(sign(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit,
        max_fee_per_gas: 10,
        max_priority_fee_per_gas: 2,
        to,
        value: U256::from(value),
        access_list: Default::default(),
        input,
    }))
    .unwrap()
}

pub fn legacy(
    nonce: u64,
    to: Address,
    value: u128,
    gas_price: u128,
    chain_id: Option<u64>,
) -> RecoveredTx {
    recover(sign(TxLegacy {
        chain_id,
        nonce,
        gas_price,
        gas_limit: 21_000,
        to: TxKind::Call(to),
        value: U256::from(value),
        input: Bytes::new(),
    }))
    .unwrap()
}

pub fn config() -> ExecutionConfig {
    ExecutionConfig::new(CHAIN_ID)
}

pub fn block_env() -> BlockEnvInput {
    BlockEnvInput {
        number: 1,
        timestamp: 1_700_000_000,
        beneficiary: COINBASE,
        gas_limit: BLOCK_GAS_LIMIT,
        base_fee_per_gas: BASE_FEE,
        ..Default::default()
    }
}

/// Runtime: with calldata, `sstore(0, calldataload(0))` and `log1(word, topic 0xaa)`;
/// without calldata, revert with the word 42.
pub fn store_and_log_runtime() -> Bytes {
    Bytes::from(alloy_primitives::hex!(
        "36600e57602a60005260206000fd5b60003580600055600052" "60aa60206000a100"
    ))
}

/// Init code returning `runtime`.
pub fn init_code(runtime: &[u8]) -> Bytes {
    let len = u8::try_from(runtime.len()).unwrap();
    let mut code = vec![
        0x60, len, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, len, 0x60, 0x00, 0xf3,
    ];
    code.extend_from_slice(runtime);
    code.into()
}
