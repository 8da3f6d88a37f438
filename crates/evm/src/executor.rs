//! Block execution: transactions one after another on one EVM, receipts, state changes.

use alloy_consensus::{Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxType};
use alloy_eips::{eip4895::Withdrawal, eip7685::Requests};
use alloy_primitives::{Address, B256, Bloom, Bytes, U256, b256};
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

/// The EVM the executor runs, generic over the precompile provider and the
/// inspector (none for execution, the struct logger for traces).
pub type InferaEvm<S, P = EthPrecompiles, I = ()> = Evm<
    EvmContext<S>,
    I,
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
            EvmError::InvalidBlock(format!("invalid block environment: {header}"))
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
            env.block_env(cfg.spec),
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
        pre_block_system_calls(&mut self.evm, self.cfg.spec, &self.env)
    }

    /// Credits EIP-4895 withdrawals (Shanghai and later): each amount, in
    /// gwei, goes to its address; zero amounts change nothing.
    pub fn apply_withdrawals(&mut self, withdrawals: &[Withdrawal]) -> Result<()> {
        for withdrawal in withdrawals {
            if withdrawal.amount == 0 {
                continue;
            }
            self.db()
                .increment_balance(withdrawal.address, withdrawal.amount_wei())?;
        }
        Ok(())
    }

    /// Pays the proof-of-work block reward (before the merge): the fork's
    /// reward plus 1/32 of it per ommer to `beneficiary`, and to each ommer's
    /// beneficiary `(8 + ommer number - block number) / 8` of it.
    /// `ommers` holds (beneficiary, number) pairs. Nothing from the merge on.
    pub fn apply_block_rewards(&mut self, ommers: &[(Address, u64)]) -> Result<()> {
        let Some(reward) = block_reward(self.cfg.spec) else {
            return Ok(());
        };
        let number = self.env.number;
        for (ommer_beneficiary, ommer_number) in ommers {
            let distance = number.saturating_sub(*ommer_number);
            let share = (reward * U256::from(8u64.saturating_sub(distance))) / U256::from(8u64);
            self.db().increment_balance(*ommer_beneficiary, share)?;
        }
        let total = reward + reward / U256::from(32u64) * U256::from(ommers.len());
        let beneficiary = self.env.beneficiary;
        self.db().increment_balance(beneficiary, total)?;
        Ok(())
    }

    /// The EIP-7685 requests of the block (Prague and later): EIP-6110
    /// deposits from `deposit_contract`'s logs, then the EIP-7002 and EIP-7251
    /// system calls (skipped where their contracts have no code). Call after
    /// the last transaction.
    pub fn apply_post_block_requests(&mut self, deposit_contract: Address) -> Result<Requests> {
        let logs = self.receipts.iter().flat_map(|receipt| receipt.logs());
        block_requests(&mut self.evm, self.cfg.spec, deposit_contract, logs)
    }

    /// Everything the block changed so far (for pre-Byzantium receipts, which
    /// carry the state root after each transaction).
    pub fn changes(&self) -> StateChanges {
        self.evm.ctx.journaled_state.database.changes()
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
        let receipt = Receipt {
            status: Eip658Value::Eip658(result.is_success()),
            cumulative_gas_used: self.gas_used,
            logs: result.into_logs(),
        };
        let bloom = receipt.bloom_slow();
        self.logs_bloom.accrue_bloom(&bloom);
        let envelope = receipt_envelope(tx.tx.tx_type(), ReceiptWithBloom::new(receipt, bloom));
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

/// The receipt as the envelope of its transaction's type.
fn receipt_envelope(tx_type: TxType, receipt: ReceiptWithBloom) -> ReceiptEnvelope {
    match tx_type {
        TxType::Legacy => ReceiptEnvelope::Legacy(receipt),
        TxType::Eip2930 => ReceiptEnvelope::Eip2930(receipt),
        TxType::Eip1559 => ReceiptEnvelope::Eip1559(receipt),
        TxType::Eip4844 => ReceiptEnvelope::Eip4844(receipt),
        TxType::Eip7702 => ReceiptEnvelope::Eip7702(receipt),
    }
}

/// keccak256("DepositEvent(bytes,bytes,bytes,bytes,bytes)"), the deposit
/// contract's event (EIP-6110).
pub const DEPOSIT_EVENT_TOPIC: B256 =
    b256!("649bbc62d0e31342afea4e5cd82d4049e7e1ee912fc0889aa790803be39038c5");

/// The proof-of-work block reward of a fork in wei, `None` from the merge on.
pub fn block_reward(spec: SpecId) -> Option<U256> {
    const ETH: u128 = 1_000_000_000_000_000_000;
    let eth = if spec.is_enabled_in(SpecId::MERGE) {
        return None;
    } else if spec.is_enabled_in(SpecId::PETERSBURG) {
        2
    } else if spec.is_enabled_in(SpecId::BYZANTIUM) {
        3
    } else {
        5
    };
    Some(U256::from(eth * ETH))
}

/// The EIP-6110 request bytes of one `DepositEvent` log: pubkey (48),
/// withdrawal credentials (32), amount (8), signature (96), index (8), taken
/// from the ABI encoding of five `bytes` values.
fn parse_deposit_log(data: &[u8]) -> Result<Vec<u8>> {
    const FIELDS: [usize; 5] = [48, 32, 8, 96, 8];
    let word = |at: usize| -> Result<usize> {
        let bytes = data.get(at..at + 32).ok_or_else(|| {
            EvmError::InvalidBlock(format!("deposit log of {} bytes is too short", data.len()))
        })?;
        usize::try_from(U256::from_be_slice(bytes))
            .map_err(|_| EvmError::InvalidBlock("deposit log offset out of range".into()))
    };
    let mut out = Vec::with_capacity(192);
    for (i, size) in FIELDS.iter().enumerate() {
        let offset = word(i * 32)?;
        let len = word(offset)?;
        if len != *size {
            return Err(EvmError::InvalidBlock(format!(
                "deposit log field {i} is {len} bytes, expected {size}"
            )));
        }
        let start = offset + 32;
        let field = data
            .get(start..start + len)
            .ok_or_else(|| EvmError::InvalidBlock("deposit log field runs past the data".into()))?;
        out.extend_from_slice(field);
    }
    Ok(out)
}

/// The system calls at the start of a block, in order: EIP-4788 (beacon
/// root, from Cancun) and EIP-2935 (parent hash, from Prague); none for
/// genesis. Each is made only where its contract has code.
fn pre_block_calls(spec: SpecId, env: &BlockEnvInput) -> Vec<(Address, Bytes)> {
    use alloy_eips::{eip2935::HISTORY_STORAGE_ADDRESS, eip4788::BEACON_ROOTS_ADDRESS};
    let mut calls = Vec::new();
    if spec.is_enabled_in(SpecId::CANCUN)
        && let Some(root) = env.parent_beacon_block_root
        && env.number > 0
    {
        calls.push((
            BEACON_ROOTS_ADDRESS,
            Bytes::copy_from_slice(root.as_slice()),
        ));
    }
    if spec.is_enabled_in(SpecId::PRAGUE) && env.number > 0 {
        calls.push((
            HISTORY_STORAGE_ADDRESS,
            Bytes::copy_from_slice(env.parent_hash.as_slice()),
        ));
    }
    calls
}

/// The [`pre_block_calls`] on `evm`. Shared by block execution,
/// `eth_simulateV1` and block traces (which pass the struct logger as `I`;
/// system calls are not traced).
pub(crate) fn pre_block_system_calls<S: StateReader, P: Precompiles<S>, I>(
    evm: &mut InferaEvm<S, P, I>,
    spec: SpecId,
    env: &BlockEnvInput,
) -> Result<()> {
    for (contract, data) in pre_block_calls(spec, env) {
        system_call(evm, spec, contract, data)?;
    }
    Ok(())
}

/// The EIP-7685 requests at the end of a block (empty before Prague):
/// EIP-6110 deposits from `deposit_contract`'s logs, then the EIP-7002 and
/// EIP-7251 system calls (skipped where their contracts have no code).
pub(crate) fn block_requests<'a, S: StateReader, P: Precompiles<S>>(
    evm: &mut InferaEvm<S, P>,
    spec: SpecId,
    deposit_contract: Address,
    logs: impl IntoIterator<Item = &'a alloy_primitives::Log>,
) -> Result<Requests> {
    use alloy_eips::{
        eip6110::DEPOSIT_REQUEST_TYPE,
        eip7002::{WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, WITHDRAWAL_REQUEST_TYPE},
        eip7251::{CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS, CONSOLIDATION_REQUEST_TYPE},
    };
    let mut requests = Requests::default();
    if !spec.is_enabled_in(SpecId::PRAGUE) {
        return Ok(requests);
    }
    requests.push_request_with_type(
        DEPOSIT_REQUEST_TYPE,
        deposit_requests(deposit_contract, logs)?,
    );
    for (contract, request_type) in [
        (
            WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
            WITHDRAWAL_REQUEST_TYPE,
        ),
        (
            CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
            CONSOLIDATION_REQUEST_TYPE,
        ),
    ] {
        let output = system_call(evm, spec, contract, Bytes::new())?.unwrap_or_default();
        requests.push_request_with_type(request_type, output);
    }
    Ok(requests)
}

/// The EIP-6110 deposit requests of `deposit_contract`'s `DepositEvent`
/// logs, concatenated in log order.
fn deposit_requests<'a>(
    deposit_contract: Address,
    logs: impl IntoIterator<Item = &'a alloy_primitives::Log>,
) -> Result<Vec<u8>> {
    let mut deposits = Vec::new();
    for log in logs {
        if log.address == deposit_contract && log.topics().first() == Some(&DEPOSIT_EVENT_TOPIC) {
            deposits.extend_from_slice(&parse_deposit_log(&log.data.data)?);
        }
    }
    Ok(deposits)
}

/// Calls a system contract as EIP-4788/2935/7002/7251 define and commits its
/// changes; returns its output, or `None` when the contract has no code
/// (nothing happens then).
fn system_call<S: StateReader, P: Precompiles<S>, I>(
    evm: &mut InferaEvm<S, P, I>,
    spec: SpecId,
    contract: Address,
    data: Bytes,
) -> Result<Option<Bytes>> {
    let has_code = evm
        .ctx
        .journaled_state
        .database
        .account(contract)?
        .is_some_and(|account| account.has_code());
    if !has_code {
        return Ok(None);
    }
    let result = evm.system_call_one(contract, data);
    let mut state = evm.finalize();
    let result = result.map_err(from_evm_error)?;
    if !result.is_success() {
        return Err(EvmError::InvalidBlock(format!(
            "system call to {contract} failed: {result:?}"
        )));
    }
    state.remove(&SYSTEM_ADDRESS);
    evm.ctx.journaled_state.database.commit(state, spec);
    Ok(Some(result.output().cloned().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What import penalises a peer for must never include this node's own
    /// failures: revm's header refusals are the block's, custom errors (fatal
    /// precompile errors, the deadline) ours.
    #[test]
    fn revm_failures_are_split_between_the_block_and_this_node() {
        let header = from_evm_error(EVMError::Header(
            revm::context::result::InvalidHeader::PrevrandaoNotSet,
        ));
        assert!(matches!(header, EvmError::InvalidBlock(_)), "{header}");
        let custom = from_evm_error(EVMError::Custom("model missing from state".into()));
        assert!(matches!(custom, EvmError::Internal(_)), "{custom}");
        assert_eq!(custom.to_string(), "evm failure: model missing from state");
    }

    #[test]
    fn a_malformed_deposit_log_makes_the_block_invalid() {
        let err = parse_deposit_log(&[0u8; 40]).unwrap_err();
        assert!(matches!(err, EvmError::InvalidBlock(_)), "{err}");
    }
}
