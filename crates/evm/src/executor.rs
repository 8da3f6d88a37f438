//! Block execution: transactions one after another on one EVM, receipts, state changes.

use alloy_consensus::{Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxType};
use alloy_primitives::{Address, Bloom, Bytes};
use infera_primitives::{RecoveredTx, StateChanges, StateReader};
use revm::{
    Context, ExecuteEvm, MainBuilder, SystemCallEvm,
    context::{BlockEnv, CfgEnv, Evm, Journal, TxEnv, result::EVMError},
    handler::{
        EthFrame, EthPrecompiles, PrecompileProvider, instructions::EthInstructions,
        system_call::SYSTEM_ADDRESS,
    },
    interpreter::{InterpreterResult, interpreter::EthInterpreter},
    primitives::hardfork::SpecId,
    state::EvmState,
};

use crate::{
    db::{StateDb, StateDbError},
    env::{BlockEnvInput, ExecutionConfig, tx_env},
    error::{EvmError, InvalidTransaction, Result, from_revm_invalid},
};

/// The revm context the executor runs: mainnet types over a [`StateDb`].
pub type EvmContext<S> = Context<BlockEnv, TxEnv, CfgEnv, StateDb<S>, Journal<StateDb<S>>, ()>;

/// The EVM the executor runs, generic over the precompile provider.
pub type InferaEvm<S, P = EthPrecompiles> = Evm<
    EvmContext<S>,
    (),
    EthInstructions<EthInterpreter, EvmContext<S>>,
    P,
    EthFrame<EthInterpreter>,
>;

/// A precompile provider the executor can run with: revm's [`EthPrecompiles`],
/// or a wrapper around it that adds the AI precompiles.
pub trait Precompiles<S: StateReader>:
    PrecompileProvider<EvmContext<S>, Output = InterpreterResult>
{
}

impl<S: StateReader, T> Precompiles<S> for T where
    T: PrecompileProvider<EvmContext<S>, Output = InterpreterResult>
{
}

/// The Ethereum precompiles for `spec`.
pub fn eth_precompiles(spec: SpecId) -> EthPrecompiles {
    EthPrecompiles::new(spec)
}

pub(crate) fn build_evm<S: StateReader, P: Precompiles<S>>(
    db: StateDb<S>,
    cfg: CfgEnv,
    block: BlockEnv,
    precompiles: P,
) -> InferaEvm<S, P> {
    let spec = cfg.spec;
    EvmContext::<S>::new(db, spec)
        .with_cfg(cfg)
        .with_block(block)
        .build_mainnet()
        .with_precompiles(precompiles)
}

/// Map a revm error of a transaction to ours.
pub(crate) fn from_evm_error(error: EVMError<StateDbError>) -> EvmError {
    match error {
        EVMError::Transaction(invalid) => EvmError::InvalidTransaction(from_revm_invalid(invalid)),
        EVMError::Database(db) => EvmError::Database(db),
        EVMError::Header(header) => {
            EvmError::Internal(format!("invalid block environment: {header}"))
        }
        EVMError::Custom(message) => EvmError::Internal(message),
        EVMError::CustomAny(any) => EvmError::Internal(any.to_string()),
    }
}

/// What executing a block produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionOutcome {
    /// Everything the block changed in state.
    pub changes: StateChanges,
    /// One receipt per transaction, in order.
    pub receipts: Vec<ReceiptEnvelope>,
    /// Gas used by the whole block.
    pub gas_used: u64,
    /// The union of the receipts' blooms.
    pub logs_bloom: Bloom,
    /// Gas used by each transaction, in order.
    pub tx_gas_used: Vec<u64>,
}

/// Executes the transactions of one block on top of a state.
pub struct BlockExecutor<S: StateReader, P: Precompiles<S> = EthPrecompiles> {
    evm: InferaEvm<S, P>,
    cfg: ExecutionConfig,
    env: BlockEnvInput,
    receipts: Vec<ReceiptEnvelope>,
    tx_gas_used: Vec<u64>,
    gas_used: u64,
    logs_bloom: Bloom,
}

impl<S: StateReader, P: Precompiles<S>> std::fmt::Debug for BlockExecutor<S, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockExecutor")
            .field("cfg", &self.cfg)
            .field("env", &self.env)
            .field("transactions", &self.receipts.len())
            .field("gas_used", &self.gas_used)
            .finish_non_exhaustive()
    }
}

impl<S: StateReader> BlockExecutor<S, EthPrecompiles> {
    /// An executor with the Ethereum precompiles. Runs the pre-block system
    /// calls (EIP-2935, EIP-4788) where their contracts are deployed.
    pub fn new(state: S, cfg: ExecutionConfig, env: BlockEnvInput) -> Result<Self> {
        Self::with_precompiles(state, cfg, env, EthPrecompiles::new(cfg.spec))
    }
}

impl<S: StateReader, P: Precompiles<S>> BlockExecutor<S, P> {
    /// An executor with a custom precompile provider (e.g. the AI precompiles
    /// wrapped around [`EthPrecompiles`]).
    pub fn with_precompiles(
        state: S,
        cfg: ExecutionConfig,
        env: BlockEnvInput,
        precompiles: P,
    ) -> Result<Self> {
        let evm = build_evm(
            StateDb::new(state),
            cfg.cfg_env(),
            env.block_env(),
            precompiles,
        );
        let mut executor = Self {
            evm,
            cfg,
            env,
            receipts: Vec::new(),
            tx_gas_used: Vec::new(),
            gas_used: 0,
            logs_bloom: Bloom::ZERO,
        };
        executor.apply_pre_block_system_calls()?;
        Ok(executor)
    }

    /// The EIP-2935 (parent hash) and EIP-4788 (beacon root) system calls, each
    /// only when its contract has code in state.
    fn apply_pre_block_system_calls(&mut self) -> Result<()> {
        use alloy_eips::{eip2935::HISTORY_STORAGE_ADDRESS, eip4788::BEACON_ROOTS_ADDRESS};
        if self.cfg.spec.is_enabled_in(SpecId::CANCUN)
            && let Some(root) = self.env.parent_beacon_block_root
            && self.env.number > 0
        {
            self.system_call(
                BEACON_ROOTS_ADDRESS,
                Bytes::copy_from_slice(root.as_slice()),
            )?;
        }
        if self.cfg.spec.is_enabled_in(SpecId::PRAGUE) && self.env.number > 0 {
            let parent = self.env.parent_hash;
            self.system_call(
                HISTORY_STORAGE_ADDRESS,
                Bytes::copy_from_slice(parent.as_slice()),
            )?;
        }
        Ok(())
    }

    fn system_call(&mut self, contract: Address, data: Bytes) -> Result<()> {
        let has_code = self
            .db()
            .account(contract)?
            .is_some_and(|account| account.has_code());
        if !has_code {
            return Ok(());
        }
        let result = self.evm.system_call_one(contract, data);
        let mut state = self.evm.finalize();
        let result = result.map_err(from_evm_error)?;
        if !result.is_success() {
            return Err(EvmError::Internal(format!(
                "system call to {contract} failed: {result:?}"
            )));
        }
        state.remove(&SYSTEM_ADDRESS);
        self.commit(state);
        Ok(())
    }

    fn db(&mut self) -> &mut StateDb<S> {
        &mut self.evm.ctx.journaled_state.database
    }

    fn commit(&mut self, state: EvmState) {
        let spec = self.cfg.spec;
        self.db().commit(state, spec);
    }

    /// The chain config.
    pub fn config(&self) -> &ExecutionConfig {
        &self.cfg
    }

    /// The block environment.
    pub fn block_env(&self) -> &BlockEnvInput {
        &self.env
    }

    /// Gas used by the transactions executed so far.
    pub fn gas_used(&self) -> u64 {
        self.gas_used
    }

    /// Receipts of the transactions executed so far.
    pub fn receipts(&self) -> &[ReceiptEnvelope] {
        &self.receipts
    }

    /// The account as the block sees it now (after the executed transactions).
    pub fn account(&mut self, address: Address) -> Result<Option<infera_primitives::Account>> {
        Ok(self.db().account(address)?)
    }

    /// Checks revm does not make, or makes without the numbers a message needs.
    fn precheck(&self, tx: &TxEnv) -> Result<(), InvalidTransaction> {
        if let Some(chain_id) = tx.chain_id
            && chain_id != self.cfg.chain_id
        {
            return Err(InvalidTransaction::WrongChainId {
                tx: chain_id,
                expected: self.cfg.chain_id,
            });
        }
        let remaining = self.env.gas_limit.saturating_sub(self.gas_used);
        if tx.gas_limit > remaining {
            return Err(InvalidTransaction::GasLimitAboveBlockRemaining {
                gas_limit: tx.gas_limit,
                remaining,
            });
        }
        if let Some(tip) = tx.gas_priority_fee
            && tip > tx.gas_price
        {
            return Err(InvalidTransaction::TipAboveFeeCap {
                tip,
                max_fee: tx.gas_price,
            });
        }
        if tx.gas_price < u128::from(self.env.base_fee_per_gas) {
            return Err(InvalidTransaction::FeeCapBelowBaseFee {
                max_fee: tx.gas_price,
                base_fee: self.env.base_fee_per_gas,
            });
        }
        Ok(())
    }

    /// Execute one transaction and add its receipt. An invalid transaction
    /// (`EvmError::InvalidTransaction`) changes nothing; a transaction that
    /// reverts is a receipt with status 0. Other errors are local faults.
    pub fn execute_transaction(&mut self, tx: &RecoveredTx) -> Result<&ReceiptEnvelope> {
        let env = tx_env(tx)?;
        self.precheck(&env)?;
        let result = self.evm.transact_one(env);
        let state = self.evm.finalize();
        let result = result.map_err(from_evm_error)?;
        self.commit(state);

        let gas = result.tx_gas_used();
        self.gas_used += gas;
        self.tx_gas_used.push(gas);
        let success = result.is_success();
        let receipt = Receipt {
            status: Eip658Value::Eip658(success),
            cumulative_gas_used: self.gas_used,
            logs: result.into_logs(),
        };
        let bloom = receipt.bloom_slow();
        self.logs_bloom.accrue_bloom(&bloom);
        let with_bloom = ReceiptWithBloom::new(receipt, bloom);
        let envelope = match tx.tx.tx_type() {
            TxType::Legacy => ReceiptEnvelope::Legacy(with_bloom),
            TxType::Eip2930 => ReceiptEnvelope::Eip2930(with_bloom),
            TxType::Eip1559 => ReceiptEnvelope::Eip1559(with_bloom),
            TxType::Eip4844 => ReceiptEnvelope::Eip4844(with_bloom),
            TxType::Eip7702 => ReceiptEnvelope::Eip7702(with_bloom),
        };
        self.receipts.push(envelope);
        Ok(self.receipts.last().expect("just pushed"))
    }

    /// End the block: its state changes, receipts and gas.
    pub fn finish(self) -> ExecutionOutcome {
        ExecutionOutcome {
            changes: self.evm.ctx.journaled_state.database.into_changes(),
            receipts: self.receipts,
            gas_used: self.gas_used,
            logs_bloom: self.logs_bloom,
            tx_gas_used: self.tx_gas_used,
        }
    }
}
