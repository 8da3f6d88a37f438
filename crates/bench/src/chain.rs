//! The benchmark chain: deterministic keys, a dev genesis that funds them,
//! signed EIP-1559 transactions and the ERC-20 artifact.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use eyre::{Context as _, ContextCompat as _, Result};
use infera_chainspec::ChainSpec;
use infera_primitives::RecoveredTx;
use secp256k1::SecretKey;

/// Chain id of the dev chain (genesis/dev.json).
pub const CHAIN_ID: u64 = 6174;
/// Block gas limit of the benchmark chain.
pub const GAS_LIMIT: u64 = 60_000_000;
/// Max fee per gas of every benchmark transaction (1000 gwei: far above the
/// base fee, which rises 12.5% per full block).
pub const MAX_FEE: u128 = 1_000_000_000_000;
/// Priority fee of every benchmark transaction (1 gwei).
pub const TIP: u128 = 1_000_000_000;
/// Gas limit of one ERC-20 call.
pub const ERC20_GAS: u64 = 100_000;

const DEV_GENESIS: &str = include_str!("../../../genesis/dev.json");
const ERC20_ARTIFACT: &str = include_str!("../../../bin/infera/tests/contracts/out/ERC20.json");

/// A key and its address.
#[derive(Clone, Copy)]
pub struct Key {
    pub secret: SecretKey,
    pub address: Address,
}

/// The `i`-th deterministic key: keccak256("infera-bench-key" ++ i).
pub fn key(i: u64) -> Key {
    let mut seed = b"infera-bench-key".to_vec();
    seed.extend_from_slice(&i.to_be_bytes());
    let secret = SecretKey::from_byte_array(keccak256(&seed).0)
        .expect("a keccak output is a valid secp256k1 key with overwhelming probability");
    Key {
        secret,
        address: infera_primitives::address_of_secret(&secret),
    }
}

/// A fresh address that holds nothing: `keccak256(tag ++ i)[12..]`.
pub fn fresh_address(tag: &str, i: u64) -> Address {
    let mut seed = tag.as_bytes().to_vec();
    seed.extend_from_slice(&i.to_be_bytes());
    Address::from_slice(&keccak256(&seed)[12..])
}

/// The dev genesis (genesis/dev.json) with `funded` added to its allocation,
/// each with `balance` wei, and the benchmark's gas limit.
pub fn chain_spec(funded: &[Address], balance: U256) -> Result<ChainSpec> {
    let mut genesis: serde_json::Value =
        serde_json::from_str(DEV_GENESIS).wrap_err("parse genesis/dev.json")?;
    genesis["gasLimit"] = format!("{GAS_LIMIT:#x}").into();
    let alloc = genesis["alloc"]
        .as_object_mut()
        .wrap_err("genesis/dev.json has no alloc object")?;
    for address in funded {
        alloc.insert(
            address.to_checksum(None),
            serde_json::json!({ "balance": format!("{balance:#x}") }),
        );
    }
    let chain = ChainSpec::from_json(&genesis.to_string()).wrap_err("benchmark chain spec")?;
    eyre::ensure!(chain.chain_id() == CHAIN_ID, "unexpected chain id");
    Ok(chain)
}

/// Creation code of the test ERC-20 (constructor without arguments: mints
/// 1e27 units to the deployer).
pub fn erc20_creation_code() -> Result<Bytes> {
    let artifact: serde_json::Value = serde_json::from_str(ERC20_ARTIFACT)?;
    let hex = artifact["bytecode"]
        .as_str()
        .wrap_err("ERC20.json has no bytecode string")?;
    Ok(hex.parse()?)
}

/// Calldata of `transfer(to, amount)`.
pub fn erc20_transfer(to: Address, amount: U256) -> Bytes {
    let mut data = Vec::with_capacity(68);
    data.extend_from_slice(&[0xa9, 0x05, 0x9c, 0xbb]);
    data.extend_from_slice(B256::left_padding_from(to.as_slice()).as_slice());
    data.extend_from_slice(&amount.to_be_bytes::<32>());
    data.into()
}

/// Calldata of `balanceOf(owner)`.
pub fn erc20_balance_of(owner: Address) -> Bytes {
    let mut data = Vec::with_capacity(36);
    data.extend_from_slice(&[0x70, 0xa0, 0x82, 0x31]);
    data.extend_from_slice(B256::left_padding_from(owner.as_slice()).as_slice());
    data.into()
}

/// An unsigned transaction and the key that signs it.
pub struct Unsigned {
    pub key: Key,
    pub tx: TxEip1559,
}

impl Unsigned {
    pub fn new(
        key: Key,
        nonce: u64,
        to: TxKind,
        value: U256,
        gas_limit: u64,
        input: Bytes,
    ) -> Self {
        Self {
            key,
            tx: TxEip1559 {
                chain_id: CHAIN_ID,
                nonce,
                gas_limit,
                max_fee_per_gas: MAX_FEE,
                max_priority_fee_per_gas: TIP,
                to,
                value,
                access_list: Default::default(),
                input,
            },
        }
    }

    /// Signs with secp256k1; the sender is known, the hash is the envelope's.
    pub fn sign(self) -> RecoveredTx {
        let signature = infera_primitives::sign_hash(&self.key.secret, self.tx.signature_hash());
        let tx = TxEnvelope::from(self.tx.into_signed(signature));
        RecoveredTx {
            hash: *tx.tx_hash(),
            sender: self.key.address,
            tx,
        }
    }
}

/// Signs all transactions, on every core, keeping their order.
pub fn sign_all(unsigned: Vec<Unsigned>) -> Vec<RecoveredTx> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = unsigned.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<Unsigned>> = Vec::new();
    let mut rest = unsigned.into_iter().peekable();
    while rest.peek().is_some() {
        chunks.push(rest.by_ref().take(chunk).collect());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| scope.spawn(move || c.into_iter().map(Unsigned::sign).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signing thread panicked"))
            .collect()
    })
}

/// Checks one signature the slow way (recovering the sender), so that a
/// signing mistake fails here and not as "invalid transaction" later.
pub fn check_signature(tx: &RecoveredTx) -> Result<()> {
    let recovered = infera_evm::recover(tx.tx.clone()).wrap_err("recover benchmark tx")?;
    eyre::ensure!(
        recovered.sender == tx.sender && recovered.hash == tx.hash,
        "signature check failed: recovered {} expected {}",
        recovered.sender,
        tx.sender
    );
    Ok(())
}
