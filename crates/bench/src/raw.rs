//! The baseline: plain revm 43 on an in-memory database (`CacheDB<EmptyDB>`),
//! executing the same transactions in the same blocks, with `transact_commit`.

use std::time::{Duration, Instant};

use alloy_consensus::{Transaction as _, TxEnvelope};
use eyre::{Result, eyre};
use infera_chainspec::ChainSpec;
use infera_primitives::SealedBlock;
use revm::{
    Context, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext,
    context::{BlockEnv, CfgEnv, TxEnv},
    context_interface::block::BlobExcessGasAndPrice,
    database::{CacheDB, EmptyDB},
    handler::{MainnetContext, MainnetEvm},
    primitives::{U256, eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE, hardfork::SpecId},
    state::{AccountInfo, Bytecode},
};

type Db = CacheDB<EmptyDB>;

/// Plain revm with the genesis state in memory.
pub struct RawRevm {
    evm: MainnetEvm<MainnetContext<Db>>,
}

impl RawRevm {
    pub fn new(chain: &ChainSpec) -> Self {
        let mut db = Db::default();
        let genesis = chain.genesis_state();
        for (address, change) in genesis.accounts {
            let info = change.info.expect("genesis accounts exist");
            let code = genesis
                .contracts
                .get(&info.code_hash)
                .map(|code| Bytecode::new_raw(code.clone()));
            db.insert_account_info(
                address,
                AccountInfo {
                    balance: info.balance,
                    nonce: info.nonce,
                    code_hash: info.code_hash,
                    code,
                    ..Default::default()
                },
            );
            for (slot, value) in change.storage {
                db.insert_account_storage(address, slot, value)
                    .expect("in-memory db");
            }
        }
        let mut cfg = CfgEnv::new_with_spec(SpecId::OSAKA);
        cfg.chain_id = chain.chain_id();
        let evm = Context::mainnet().with_db(db).with_cfg(cfg).build_mainnet();
        Self { evm }
    }

    /// Executes `block`'s transactions (block env from its header) and
    /// returns the gas they used and the time taken (TxEnv building included).
    pub fn execute_block(&mut self, block: &SealedBlock) -> Result<(u64, Duration)> {
        let h = &block.header;
        let start = Instant::now();
        self.evm.set_block(BlockEnv {
            number: U256::from(h.number),
            beneficiary: h.beneficiary,
            timestamp: U256::from(h.timestamp),
            gas_limit: h.gas_limit,
            basefee: h.base_fee_per_gas.unwrap_or(0),
            difficulty: U256::ZERO,
            prevrandao: Some(h.mix_hash),
            blob_excess_gas_and_price: Some(BlobExcessGasAndPrice::new(
                0,
                BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE,
            )),
            slot_num: 0,
        });
        let mut gas = 0;
        for tx in &block.transactions {
            let env = tx_env(&tx.tx, tx.sender)?;
            let result = self
                .evm
                .transact_commit(env)
                .map_err(|e| eyre!("raw revm: tx {} failed: {e:?}", tx.hash))?;
            if !result.is_success() {
                return Err(eyre!("raw revm: tx {} reverted: {result:?}", tx.hash));
            }
            gas += result.tx_gas_used();
        }
        Ok((gas, start.elapsed()))
    }
}

/// revm's transaction environment of an EIP-1559 transaction.
fn tx_env(tx: &TxEnvelope, caller: alloy_primitives::Address) -> Result<TxEnv> {
    let TxEnvelope::Eip1559(_) = tx else {
        return Err(eyre!("the benchmark only sends EIP-1559 transactions"));
    };
    Ok(TxEnv {
        tx_type: tx.tx_type() as u8,
        caller,
        gas_limit: tx.gas_limit(),
        gas_price: tx.max_fee_per_gas(),
        kind: tx.kind(),
        value: tx.value(),
        data: tx.input().clone(),
        nonce: tx.nonce(),
        chain_id: tx.chain_id(),
        access_list: tx.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: tx.max_priority_fee_per_gas(),
        blob_hashes: Vec::new(),
        max_fee_per_blob_gas: 0,
        authorization_list: Vec::new(),
    })
}
