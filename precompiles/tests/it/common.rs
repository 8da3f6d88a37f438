//! A dev chain on real storage, built by the node's block builder, for the
//! precompile tests: send transactions, seal blocks, make calls, reopen.

use std::{path::PathBuf, sync::Arc};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, b256};
use infera_chainspec::ChainSpec;
use infera_evm::{BlockEnvInput, CallOutcome, CallRequest, ExecutionConfig, recover};
use infera_node::builder::{CommittedBlock, build_and_commit};
use infera_precompiles::{InferaPrecompiles, ModelCache};
use infera_primitives::{Account, ReceiptEnvelope, StateReader};
use infera_storage::Database;
use infera_txpool::{PoolConfig, TxPool};
use parking_lot::Mutex;
use secp256k1::{Message, SECP256K1, SecretKey};

/// The first standard dev key (funded by the dev genesis).
pub const KEY: B256 = b256!("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
/// The second one.
pub const KEY2: B256 = b256!("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");

pub const DIGITS: &[u8] = include_bytes!("../../../kernels/models/digits/digits.infera");

pub fn address_of(key: B256) -> Address {
    let secret = SecretKey::from_byte_array(key.0).unwrap();
    let public = secret.public_key(SECP256K1).serialize_uncompressed();
    Address::from_raw_public_key(&public[1..])
}

fn sign(key: B256, tx: TxEip1559) -> TxEnvelope {
    let hash = tx.signature_hash();
    let secret = SecretKey::from_byte_array(key.0).unwrap();
    let signature = SECP256K1.sign_ecdsa_recoverable(Message::from_digest(hash.0), &secret);
    let (recid, bytes) = signature.serialize_compact();
    let sig = Signature::new(
        U256::from_be_slice(&bytes[..32]),
        U256::from_be_slice(&bytes[32..]),
        i32::from(recid) == 1,
    );
    TxEnvelope::from(tx.into_signed(sig))
}

pub struct DevChain {
    db: Option<Database>,
    pub chain: ChainSpec,
    pub pool: Mutex<TxPool>,
    pub models: Arc<ModelCache>,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
    timestamp: u64,
}

impl DevChain {
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("infera-precompiles-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let chain = ChainSpec::dev();
        let db = infera_node::open_datadir(&dir, &chain).unwrap();
        Self {
            db: Some(db),
            chain,
            pool: Mutex::new(TxPool::new(PoolConfig::default())),
            models: ModelCache::shared(),
            dir,
            _tmp: tmp,
            timestamp: 1_800_000_000,
        }
    }

    /// Close and reopen the database, with an empty model cache (a restart).
    pub fn reopen(&mut self) {
        drop(self.db.take());
        self.db = Some(infera_node::open_datadir(&self.dir, &self.chain).unwrap());
        self.models = ModelCache::shared();
    }

    pub fn db(&self) -> &Database {
        self.db.as_ref().expect("database open")
    }

    pub fn account(&self, address: Address) -> Option<Account> {
        self.db()
            .reader()
            .unwrap()
            .latest_state()
            .account(address)
            .unwrap()
    }

    pub fn code(&self, address: Address) -> Option<Bytes> {
        let account = self.account(address)?;
        self.db()
            .reader()
            .unwrap()
            .latest_state()
            .code_by_hash(account.code_hash)
            .unwrap()
    }

    /// Sign and pool a call from `key` (nonce from state plus pooled ones).
    pub fn send(&self, key: B256, to: TxKind, input: Bytes, gas_limit: u64) -> B256 {
        let sender = address_of(key);
        let account = self.account(sender).unwrap_or_default();
        let pooled = self
            .pool
            .lock()
            .best_transactions(0)
            .iter()
            .filter(|tx| tx.sender == sender)
            .count() as u64;
        let tx = recover(sign(
            key,
            TxEip1559 {
                chain_id: self.chain.chain_id(),
                nonce: account.nonce + pooled,
                gas_limit,
                max_fee_per_gas: 100_000_000_000,
                max_priority_fee_per_gas: 1,
                to,
                value: U256::ZERO,
                access_list: Default::default(),
                input,
            },
        ))
        .unwrap();
        let hash = tx.hash;
        self.pool
            .lock()
            .add(tx, account.nonce, account.balance, 1_000_000_000)
            .unwrap();
        hash
    }

    /// Seal one block with the pooled transactions.
    pub fn seal(&mut self) -> CommittedBlock {
        self.timestamp += 2;
        build_and_commit(
            self.db(),
            &self.chain,
            &self.pool,
            Address::repeat_byte(0xcb),
            self.timestamp,
            &self.models,
        )
        .unwrap()
    }

    /// Send one transaction, seal it alone; its receipt.
    pub fn transact(
        &mut self,
        key: B256,
        to: Address,
        input: Bytes,
        gas_limit: u64,
    ) -> ReceiptEnvelope {
        self.send(key, TxKind::Call(to), input, gas_limit);
        let block = self.seal();
        assert_eq!(
            block.block.transactions.len(),
            1,
            "transaction not included"
        );
        block.receipts[0].clone()
    }

    fn call_env(&self) -> (ExecutionConfig, BlockEnvInput) {
        let reader = self.db().reader().unwrap();
        let head = reader.head_number().unwrap().unwrap();
        let header = reader.header(head).unwrap().unwrap();
        let cfg = ExecutionConfig {
            chain_id: self.chain.chain_id(),
            spec: self.chain.spec_at(header.number, header.timestamp),
        };
        let env = BlockEnvInput {
            number: header.number,
            timestamp: header.timestamp,
            beneficiary: header.beneficiary,
            gas_limit: header.gas_limit,
            base_fee_per_gas: header.base_fee_per_gas.unwrap_or(0),
            prevrandao: header.mix_hash,
            parent_hash: header.parent_hash,
            ..Default::default()
        };
        (cfg, env)
    }

    /// `eth_call` on the head state with the node's precompiles.
    pub fn call_with(
        &self,
        from: Address,
        to: Address,
        input: Bytes,
        gas: Option<u64>,
    ) -> CallOutcome {
        let (cfg, env) = self.call_env();
        let reader = self.db().reader().unwrap();
        let precompiles = InferaPrecompiles::new(cfg.spec, self.models.clone());
        infera_evm::call_with_precompiles(
            reader.latest_state(),
            cfg,
            env,
            CallRequest {
                from: Some(from),
                to: Some(to),
                gas,
                input,
                ..Default::default()
            },
            precompiles,
        )
        .unwrap()
    }

    pub fn call(&self, to: Address, input: Bytes) -> CallOutcome {
        self.call_with(address_of(KEY), to, input, None)
    }

    /// The output of a call that must succeed.
    pub fn call_ok(&self, to: Address, input: Bytes) -> Bytes {
        match self.call(to, input) {
            CallOutcome::Success { output, .. } => output,
            other => panic!("call failed: {other:?}"),
        }
    }

    /// The revert data of a call that must revert.
    pub fn call_revert(&self, to: Address, input: Bytes) -> Bytes {
        match self.call(to, input) {
            CallOutcome::Revert { output, .. } => output,
            other => panic!("call did not revert: {other:?}"),
        }
    }

    /// Deploy `runtime` code from `KEY`; its address.
    pub fn deploy(&mut self, runtime: &[u8]) -> Address {
        let sender = address_of(KEY);
        let nonce = self.account(sender).unwrap().nonce;
        self.send(KEY, TxKind::Create, init_code(runtime), 1_000_000);
        let block = self.seal();
        assert!(block.receipts[0].status(), "deployment failed");
        sender.create(nonce)
    }
}

/// Init code that returns `runtime`.
pub fn init_code(runtime: &[u8]) -> Bytes {
    let len = u8::try_from(runtime.len()).unwrap();
    let mut code = vec![
        0x60, len, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, len, 0x60, 0x00, 0xf3,
    ];
    code.extend_from_slice(runtime);
    code.into()
}

/// How a [`forwarder`] calls its target.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Call,
    StaticCall,
}

/// Runtime code that forwards its calldata to `target` (CALL or STATICCALL,
/// all gas), then returns the returned data on success and reverts with it on
/// failure; with `revert_after`, it reverts with the returned data either way.
pub fn forwarder(target: Address, via: Via, revert_after: bool) -> Vec<u8> {
    let mut code = vec![
        0x36, 0x60, 0x00, 0x60, 0x00, 0x37, // calldatacopy(0, 0, calldatasize)
        0x60, 0x00, 0x60, 0x00, // retSize, retOffset
        0x36, 0x60, 0x00, // argsSize, argsOffset
    ];
    if via == Via::Call {
        code.extend_from_slice(&[0x60, 0x00]); // value
    }
    code.push(0x73);
    code.extend_from_slice(target.as_slice());
    code.push(0x5a); // gas
    code.push(if via == Via::Call { 0xf1 } else { 0xfa });
    code.extend_from_slice(&[0x3d, 0x60, 0x00, 0x60, 0x00, 0x3e]); // returndatacopy(0, 0, size)
    if revert_after {
        code.extend_from_slice(&[0x50, 0x3d, 0x60, 0x00, 0xfd]); // pop; revert(0, size)
        return code;
    }
    let dest = u8::try_from(code.len() + 7).unwrap();
    code.extend_from_slice(&[0x60, dest, 0x57]); // jumpi(dest, success)
    code.extend_from_slice(&[0x3d, 0x60, 0x00, 0xfd]); // revert(0, size)
    code.push(0x5b); // dest:
    code.extend_from_slice(&[0x3d, 0x60, 0x00, 0xf3]); // return(0, size)
    code
}

/// The quantised `index`-th held-out digit of the demo model, and its label.
pub fn digit(index: usize) -> (Vec<u8>, i64) {
    let model = infera_kernels::Model::decode(DIGITS).unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../kernels/models/digits/");
    let x = infera_model_import::npy::Npy::read(std::path::Path::new(&format!("{dir}test_x.npy")))
        .unwrap();
    let y = infera_model_import::npy::Npy::read(std::path::Path::new(&format!("{dir}test_y.npy")))
        .unwrap();
    let inputs = infera_model_import::tool::input_batches(&model, &x).unwrap();
    (inputs[index].clone(), y.to_i64().unwrap()[index])
}
