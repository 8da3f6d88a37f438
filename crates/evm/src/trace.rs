//! Geth's default struct-log tracer (`debug_traceTransaction` and friends)
//! as a revm [`Inspector`], and the re-execution of a block's transactions
//! on its parent state that feeds it.
//!
//! Each executed opcode yields one [`StructLog`] with the values before the
//! opcode runs (pc, gas left, stack, memory, return data, the transaction's
//! refund counter) and its cost. Storage appears on `SLOAD` and `SSTORE`
//! only, as the cumulative map of the slots this contract read or wrote in
//! the transaction so far, the current slot with its value (loaded, or about
//! to be stored).

use std::collections::{BTreeMap, HashMap};

use alloy_primitives::{Address, B256, Bytes, U256};
use infera_primitives::{RecoveredTx, StateReader};
use revm::{
    ExecuteEvm, InspectEvm, Inspector, MainBuilder, SystemCallEvm,
    bytecode::opcode::{OpCode, SLOAD, SSTORE},
    context::{ContextTr, Evm, JournalTr},
    handler::{EthFrame, instructions::EthInstructions, system_call::SYSTEM_ADDRESS},
    interpreter::{
        InstructionResult, Interpreter,
        interpreter::EthInterpreter,
        interpreter_types::{InputsTr, Jumps, LoopControl, MemoryTr, ReturnData},
    },
    primitives::hardfork::SpecId,
};
use serde::Serialize;

use crate::{
    db::StateDb,
    env::{BlockEnvInput, ExecutionConfig, tx_env},
    error::{EvmError, Result},
    executor::{EvmContext, Precompiles, from_evm_error},
};

/// The options of the struct logger (geth's `logger.Config`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StructLogConfig {
    /// Leave out the stack.
    pub disable_stack: bool,
    /// Leave out storage on `SLOAD`/`SSTORE`.
    pub disable_storage: bool,
    /// Include memory (as 32-byte words).
    pub enable_memory: bool,
    /// Include the return data of the last call.
    pub enable_return_data: bool,
    /// Most logs recorded; `None` for no limit.
    pub limit: Option<usize>,
}

/// One executed opcode, shaped as geth's `StructLogRes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StructLog {
    pub pc: u64,
    pub op: String,
    pub gas: u64,
    pub gas_cost: u64,
    pub depth: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_data: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<BTreeMap<B256, B256>>,
    #[serde(skip_serializing_if = "is_zero")]
    pub refund: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The trace of one transaction, shaped as geth's `ExecutionResult`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxStructTrace {
    /// Gas the transaction used (after refunds).
    pub gas: u64,
    /// True when it reverted or halted.
    pub failed: bool,
    /// Its output (revert data when reverted; empty when halted).
    pub return_value: Bytes,
    pub struct_logs: Vec<StructLog>,
}

/// The struct logger: an [`Inspector`] collecting [`StructLog`]s.
#[derive(Clone, Debug, Default)]
pub struct StructLogger {
    config: StructLogConfig,
    logs: Vec<StructLog>,
    /// Storage seen so far, per contract.
    storage: HashMap<Address, BTreeMap<B256, B256>>,
    /// Gas left before the opcode being executed.
    gas_before: u64,
    /// The slot an `SLOAD` in flight reads (its value is known after it runs).
    pending_sload: Option<(Address, B256)>,
    /// Whether the opcode in flight was logged.
    logged: bool,
    /// The refund counter of each active frame (depth 1 first); revm keeps
    /// refunds per frame and merges them on return, geth keeps one counter.
    refunds: Vec<i64>,
}

impl StructLogger {
    /// A logger with `config` and nothing recorded.
    pub fn new(config: StructLogConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    /// The logs recorded, leaving the logger empty.
    pub fn take_logs(&mut self) -> Vec<StructLog> {
        self.storage.clear();
        self.refunds.clear();
        std::mem::take(&mut self.logs)
    }
}

/// Geth's name of an opcode.
fn op_name(op: u8) -> String {
    match OpCode::new(op) {
        Some(code) => code.as_str().to_string(),
        None => format!("opcode {op:#x} not defined"),
    }
}

/// Geth's error text for an opcode that fails.
fn error_text(result: InstructionResult) -> Option<String> {
    use InstructionResult as R;
    let text = match result {
        R::Stop | R::Return | R::SelfDestruct | R::Revert | R::Suspend => return None,
        R::OutOfGas
        | R::MemoryOOG
        | R::MemoryLimitOOG
        | R::PrecompileOOG
        | R::InvalidOperandOOG
        | R::ReentrancySentryOOG => "out of gas".into(),
        R::OpcodeNotFound | R::InvalidFEOpcode | R::NotActivated => "invalid opcode".into(),
        R::StateChangeDuringStaticCall | R::CallNotAllowedInsideStatic => "write protection".into(),
        R::InvalidJump => "invalid jump destination".into(),
        R::StackUnderflow => "stack underflow".into(),
        R::StackOverflow => "stack limit reached 1024".into(),
        R::CallTooDeep => "max call depth exceeded".into(),
        R::OutOfFunds => "insufficient balance for transfer".into(),
        R::CreateCollision => "contract address collision".into(),
        R::OutOfOffset => "return data out of bounds".into(),
        other => format!("{other:?}"),
    };
    Some(text)
}

fn word(value: U256) -> B256 {
    B256::from(value)
}

impl<CTX: ContextTr> Inspector<CTX, EthInterpreter> for StructLogger {
    fn step(&mut self, interp: &mut Interpreter<EthInterpreter>, context: &mut CTX) {
        self.logged = false;
        self.pending_sload = None;
        if self
            .config
            .limit
            .is_some_and(|limit| self.logs.len() >= limit)
        {
            return;
        }
        let depth = context.journal().depth().max(1);
        self.refunds.resize(depth, 0);
        self.refunds[depth - 1] = interp.gas.refunded();
        let refund = self.refunds.iter().sum::<i64>().max(0) as u64;

        let op = interp.bytecode.opcode();
        let gas = interp.gas.remaining();
        self.gas_before = gas;
        let data = interp.stack.data();
        let stack =
            (!self.config.disable_stack).then(|| data.iter().map(|v| format!("{v:#x}")).collect());
        let memory = (self.config.enable_memory && interp.memory.size() > 0).then(|| {
            interp
                .memory
                .slice(0..interp.memory.size())
                .chunks(32)
                .map(|chunk| {
                    let mut w = [0u8; 32];
                    w[..chunk.len()].copy_from_slice(chunk);
                    B256::from(w).to_string()
                })
                .collect()
        });
        let return_data = (self.config.enable_return_data
            && !interp.return_data.buffer().is_empty())
        .then(|| interp.return_data.buffer().clone());
        let mut storage = None;
        if !self.config.disable_storage && (op == SLOAD || op == SSTORE) {
            let address = interp.input.target_address();
            let n = data.len();
            if op == SSTORE && n >= 2 {
                let slots = self.storage.entry(address).or_default();
                slots.insert(word(data[n - 1]), word(data[n - 2]));
                storage = Some(slots.clone());
            } else if op == SLOAD && n >= 1 {
                self.pending_sload = Some((address, word(data[n - 1])));
            }
        }
        self.logs.push(StructLog {
            pc: interp.bytecode.pc() as u64,
            op: op_name(op),
            gas,
            gas_cost: 0,
            depth: depth as u64,
            error: None,
            stack,
            return_data,
            memory,
            storage,
            refund,
        });
        self.logged = true;
    }

    fn step_end(&mut self, interp: &mut Interpreter<EthInterpreter>, _context: &mut CTX) {
        if !self.logged {
            return;
        }
        let result = interp.bytecode.instruction_result();
        let remaining = interp.gas.remaining();
        let pending = self.pending_sload.take();
        let Some(log) = self.logs.last_mut() else {
            return;
        };
        log.gas_cost = self.gas_before.saturating_sub(remaining);
        if let Some(result) = result {
            log.error = error_text(result);
        }
        if let Some((address, slot)) = pending
            && log.error.is_none()
            && let Some(value) = interp.stack.data().last()
        {
            let slots = self.storage.entry(address).or_default();
            slots.insert(slot, word(*value));
            log.storage = Some(slots.clone());
        }
    }
}

/// The EVM the tracer runs: the executor's, with a [`StructLogger`].
type TracingEvm<S, P> = Evm<
    EvmContext<S>,
    StructLogger,
    EthInstructions<EthInterpreter, EvmContext<S>>,
    P,
    EthFrame<EthInterpreter>,
>;

/// Re-executes `transactions` (a whole block) on `state` (its parent's),
/// after the block's pre-transaction system calls, and traces each with the
/// struct logger; with `only`, runs the transactions before that index
/// untraced and returns the one trace.
pub fn trace_block<S: StateReader, P: Precompiles<S>>(
    state: S,
    cfg: ExecutionConfig,
    env: BlockEnvInput,
    transactions: &[RecoveredTx],
    precompiles: P,
    config: StructLogConfig,
    only: Option<usize>,
) -> Result<Vec<TxStructTrace>> {
    if let Some(index) = only
        && index >= transactions.len()
    {
        return Err(EvmError::Internal(format!(
            "transaction index {index} is past the block's {} transactions",
            transactions.len()
        )));
    }
    let spec = cfg.spec;
    let mut evm: TracingEvm<S, P> = EvmContext::<S>::new(StateDb::new(state), spec)
        .with_cfg(cfg.cfg_env())
        .with_block(env.block_env(spec))
        .build_mainnet_with_inspector(StructLogger::new(config))
        .with_precompiles(precompiles);
    pre_block_system_calls(&mut evm, &env, spec)?;

    let mut traces = Vec::new();
    for (i, tx) in transactions.iter().enumerate() {
        let traced = only.is_none_or(|index| index == i);
        let tx_env = tx_env(tx)?;
        let result = if traced {
            evm.inspector = StructLogger::new(config);
            evm.inspect_one_tx(tx_env)
        } else {
            evm.transact_one(tx_env)
        };
        let state = evm.finalize();
        let result = result.map_err(from_evm_error)?;
        evm.ctx.journaled_state.database.commit(state, spec);
        if traced {
            let failed = !result.is_success();
            let return_value = match &result {
                revm::context::result::ExecutionResult::Halt { .. } => Bytes::new(),
                other => other.output().cloned().unwrap_or_default(),
            };
            traces.push(TxStructTrace {
                gas: result.tx_gas_used(),
                failed,
                return_value,
                struct_logs: evm.inspector.take_logs(),
            });
            if only.is_some() {
                break;
            }
        }
    }
    Ok(traces)
}

/// The EIP-4788 and EIP-2935 system calls, as [`crate::BlockExecutor`] makes
/// them, each only where its contract has code.
fn pre_block_system_calls<S: StateReader, P: Precompiles<S>>(
    evm: &mut TracingEvm<S, P>,
    env: &BlockEnvInput,
    spec: SpecId,
) -> Result<()> {
    // The same calls as BlockExecutor's; only the EVM type (with the
    // struct logger) differs, so the call loop is repeated here.
    for (contract, data) in crate::executor::pre_block_calls(spec, env) {
        let has_code = evm
            .ctx
            .journaled_state
            .database
            .account(contract)?
            .is_some_and(|account| account.has_code());
        if !has_code {
            continue;
        }
        let result = evm.system_call_one(contract, data);
        let mut state = evm.finalize();
        let result = result.map_err(from_evm_error)?;
        if !result.is_success() {
            return Err(EvmError::Internal(format!(
                "system call to {contract} failed: {result:?}"
            )));
        }
        state.remove(&SYSTEM_ADDRESS);
        evm.ctx.journaled_state.database.commit(state, spec);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_serialise_as_geth_does() {
        let log = StructLog {
            pc: 4,
            op: op_name(SSTORE),
            gas: 79991,
            gas_cost: 20000,
            depth: 1,
            error: None,
            stack: Some(vec!["0x2".into()]),
            return_data: None,
            memory: None,
            storage: Some(BTreeMap::from([(word(U256::from(2)), word(U256::from(2)))])),
            refund: 0,
        };
        let json = serde_json::to_value(&log).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "pc": 4, "op": "SSTORE", "gas": 79991, "gasCost": 20000, "depth": 1,
                "stack": ["0x2"],
                "storage": {
                    "0x0000000000000000000000000000000000000000000000000000000000000002":
                    "0x0000000000000000000000000000000000000000000000000000000000000002"
                }
            })
        );
    }

    #[test]
    fn unknown_opcodes_and_failures_are_named_as_geth_names_them() {
        assert_eq!(op_name(0x0c), "opcode 0xc not defined");
        assert_eq!(op_name(0x20), "KECCAK256");
        assert_eq!(
            error_text(InstructionResult::OutOfGas).as_deref(),
            Some("out of gas")
        );
        assert_eq!(error_text(InstructionResult::Revert), None);
    }
}
