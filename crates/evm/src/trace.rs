//! Geth's default struct-log tracer (`debug_traceTransaction` and friends)
//! as a revm [`Inspector`], and the re-execution of a block's transactions
//! (or one call) on a state that feeds it.
//!
//! Each executed opcode yields one [`StructLog`] with the values before the
//! opcode runs (pc, gas left, stack, memory, return data, the transaction's
//! refund counter) and its cost. Storage appears on `SLOAD` and `SSTORE`
//! only, as the cumulative map of the slots this contract read or wrote in
//! the transaction so far, the current slot with its value (loaded, or about
//! to be stored).
//!
//! A trace can be far larger than the execution that produced it (a
//! 250k-gas loop growing memory yields gigabytes of memory words), so each
//! log is kept as its JSON text, counted as it is made, and the execution is
//! stopped as soon as the trace would pass [`StructLogConfig::max_bytes`]:
//! the trace never holds more than that (plus one log in flight).

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
};

use alloy_primitives::{Address, B256, Bytes, U256};
use infera_primitives::{RecoveredTx, StateReader};
use revm::{
    ExecuteEvm, InspectEvm, Inspector, MainBuilder,
    bytecode::opcode::{OpCode, SLOAD, SSTORE},
    context::{ContextTr, JournalTr, result::ExecutionResult},
    interpreter::{
        InstructionResult, Interpreter,
        interpreter::EthInterpreter,
        interpreter_types::{InputsTr, Jumps, LoopControl, MemoryTr, ReturnData},
    },
    primitives::hardfork::SpecId,
};
use serde::{Serialize, Serializer};

use crate::{
    call::{CallRequest, call_env, check_value_covered},
    db::StateDb,
    env::{BlockEnvInput, ExecutionConfig, tx_env},
    error::EvmError,
    executor::{EvmContext, InferaEvm, Precompiles, from_evm_error, pre_block_system_calls},
    limits::{CallLimits, Deadline},
};

/// Opcodes traced between two looks at the clock for
/// [`StructLogConfig::deadline`]: reading the clock costs about as much as
/// tracing an opcode, and a deadline needs no finer grain than this.
pub const DEADLINE_CHECK_INTERVAL_STEPS: u64 = 1_024;

/// A memory word, storage slot or value as JSON: `"0x` + 64 digits + `"`.
const WORD_JSON_BYTES: usize = 68;

/// The options of the struct logger (geth's `logger.Config`), and the
/// bounds the node puts on a trace.
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
    /// Most logs recorded per transaction (execution goes on, unlogged, as
    /// geth's); `None` for no limit.
    pub limit: Option<usize>,
    /// Most bytes the whole trace may take as JSON (every transaction of a
    /// block trace together); execution stops with
    /// [`TraceError::TooLarge`] before it would pass them. `None` for no
    /// bound.
    pub max_bytes: Option<usize>,
    /// When tracing gives up with [`EvmError::Timeout`] (as `eth_call`
    /// does); checked before each transaction and every
    /// [`DEADLINE_CHECK_INTERVAL_STEPS`] opcodes. `None` for no deadline.
    pub deadline: Option<Deadline>,
}

/// Why a trace was not produced.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The trace would pass [`StructLogConfig::max_bytes`].
    #[error(
        "trace exceeds the response limit of {limit} bytes (stopped after {logs} struct logs, \
         {bytes} bytes); use `limit`, or disable memory/stack/storage capture"
    )]
    TooLarge {
        /// The bound, in bytes.
        limit: usize,
        /// Bytes recorded when it stopped (never above `limit`).
        bytes: usize,
        /// Struct logs recorded when it stopped, every transaction together.
        logs: usize,
    },
    /// Execution failed, or (as [`EvmError::Timeout`]) ran past
    /// [`StructLogConfig::deadline`].
    #[error(transparent)]
    Evm(#[from] EvmError),
}

/// One executed opcode, shaped as geth's `StructLogRes`. Kept only while
/// its opcode runs: the trace keeps its JSON text ([`StructLog::to_json`]),
/// which the derived `Serialize` gives too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StructLog {
    pub pc: u64,
    pub op: Cow<'static, str>,
    pub gas: u64,
    pub gas_cost: u64,
    pub depth: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Bottom first; serialised as minimal hex quantities.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_stack"
    )]
    pub stack: Option<Vec<U256>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_data: Option<Bytes>,
    /// The memory's bytes; serialised as 32-byte words.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_memory"
    )]
    pub memory: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<BTreeMap<B256, B256>>,
    #[serde(skip_serializing_if = "is_zero")]
    pub refund: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn serialize_stack<S: Serializer>(
    stack: &Option<Vec<U256>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match stack {
        Some(items) => s.collect_seq(items.iter().map(|v| format!("{v:#x}"))),
        None => s.serialize_none(),
    }
}

fn serialize_memory<S: Serializer>(
    memory: &Option<Bytes>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match memory {
        Some(bytes) => s.collect_seq(bytes.chunks(32).map(memory_word)),
        None => s.serialize_none(),
    }
}

/// A chunk of memory as a word (the last chunk is zero-padded; memory grows
/// by whole words, so it is only short for a hand-made log).
fn memory_word(chunk: &[u8]) -> B256 {
    let mut w = [0u8; 32];
    w[..chunk.len()].copy_from_slice(chunk);
    B256::from(w)
}

// The JSON keys, shared by the writer and the length computation so the two
// cannot disagree.
const KEY_PC: &str = r#"{"pc":"#;
const KEY_OP: &str = r#","op":""#;
const KEY_GAS: &str = r#"","gas":"#;
const KEY_GAS_COST: &str = r#","gasCost":"#;
const KEY_DEPTH: &str = r#","depth":"#;
const KEY_ERROR: &str = r#","error":""#;
const KEY_STACK: &str = r#","stack":["#;
const KEY_RETURN_DATA: &str = r#","returnData":"#;
const KEY_MEMORY: &str = r#","memory":["#;
const KEY_STORAGE: &str = r#","storage":{"#;
const KEY_REFUND: &str = r#","refund":"#;

/// Digits of `n` in decimal.
fn dec_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// A quoted minimal hex quantity (`"0x0"`, `"0x1f"`).
fn quantity_json_len(v: &U256) -> usize {
    4 + v.bit_len().div_ceil(4).max(1)
}

/// Quoted `0x`-prefixed hex of `len` bytes.
fn bytes_json_len(len: usize) -> usize {
    4 + 2 * len
}

/// `n` items of `item` bytes each, comma-separated.
fn list_len(n: usize, items: usize) -> usize {
    items + n.saturating_sub(1)
}

/// The `"memory"` member for `size` bytes of memory.
fn memory_json_len(size: usize) -> usize {
    let words = size.div_ceil(32);
    KEY_MEMORY.len() + list_len(words, words * WORD_JSON_BYTES) + 1
}

/// The `"storage"` member for `n` slots.
fn storage_json_len(n: usize) -> usize {
    KEY_STORAGE.len() + list_len(n, n * (2 * WORD_JSON_BYTES + 1)) + 1
}

/// A string's length once escaped as serde_json escapes it.
fn escaped_len(s: &str) -> usize {
    s.chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum()
}

fn write_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => write_fmt(out, format_args!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// Formats into a `String`, which cannot fail.
fn write_fmt(out: &mut String, args: std::fmt::Arguments<'_>) {
    out.write_fmt(args)
        .expect("formatting into a String cannot fail");
}

impl StructLog {
    /// Its JSON text: what `serde_json` makes of it, byte for byte, written
    /// into a buffer of exactly [`StructLog::json_len`] bytes.
    pub fn to_json(&self) -> String {
        let len = self.json_len();
        let mut out = String::with_capacity(len);
        out.push_str(KEY_PC);
        write_fmt(&mut out, format_args!("{}", self.pc));
        out.push_str(KEY_OP);
        write_escaped(&mut out, &self.op);
        out.push_str(KEY_GAS);
        write_fmt(&mut out, format_args!("{}", self.gas));
        out.push_str(KEY_GAS_COST);
        write_fmt(&mut out, format_args!("{}", self.gas_cost));
        out.push_str(KEY_DEPTH);
        write_fmt(&mut out, format_args!("{}", self.depth));
        if let Some(error) = &self.error {
            out.push_str(KEY_ERROR);
            write_escaped(&mut out, error);
            out.push('"');
        }
        if let Some(stack) = &self.stack {
            out.push_str(KEY_STACK);
            for (i, v) in stack.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_fmt(&mut out, format_args!("\"{v:#x}\""));
            }
            out.push(']');
        }
        if let Some(data) = &self.return_data {
            out.push_str(KEY_RETURN_DATA);
            write_fmt(&mut out, format_args!("\"{data}\""));
        }
        if let Some(memory) = &self.memory {
            out.push_str(KEY_MEMORY);
            for (i, chunk) in memory.chunks(32).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_fmt(&mut out, format_args!("\"{}\"", memory_word(chunk)));
            }
            out.push(']');
        }
        if let Some(storage) = &self.storage {
            out.push_str(KEY_STORAGE);
            for (i, (slot, value)) in storage.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_fmt(&mut out, format_args!("\"{slot}\":\"{value}\""));
            }
            out.push('}');
        }
        if self.refund != 0 {
            out.push_str(KEY_REFUND);
            write_fmt(&mut out, format_args!("{}", self.refund));
        }
        out.push('}');
        debug_assert_eq!(out.len(), len, "json_len disagrees with to_json");
        out
    }

    /// The length of [`StructLog::to_json`], computed without writing it.
    pub fn json_len(&self) -> usize {
        let mut n = KEY_PC.len()
            + dec_len(self.pc)
            + KEY_OP.len()
            + escaped_len(&self.op)
            + KEY_GAS.len()
            + dec_len(self.gas)
            + KEY_GAS_COST.len()
            + dec_len(self.gas_cost)
            + KEY_DEPTH.len()
            + dec_len(self.depth)
            + 1;
        if let Some(error) = &self.error {
            n += KEY_ERROR.len() + escaped_len(error) + 1;
        }
        if let Some(stack) = &self.stack {
            let items = stack.iter().map(quantity_json_len).sum();
            n += KEY_STACK.len() + list_len(stack.len(), items) + 1;
        }
        if let Some(data) = &self.return_data {
            n += KEY_RETURN_DATA.len() + bytes_json_len(data.len());
        }
        if let Some(memory) = &self.memory {
            n += memory_json_len(memory.len());
        }
        if let Some(storage) = &self.storage {
            n += storage_json_len(storage.len());
        }
        if self.refund != 0 {
            n += KEY_REFUND.len() + dec_len(self.refund);
        }
        n
    }
}

/// The trace of one transaction, shaped as geth's `ExecutionResult`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxStructTrace {
    /// Gas the transaction used (after refunds).
    pub gas: u64,
    /// True when it reverted or halted.
    pub failed: bool,
    /// Its output (revert data when reverted; empty when halted).
    pub return_value: Bytes,
    /// Each log's JSON text ([`StructLog::to_json`]), in execution order:
    /// the trace is held as what it will be sent as, so its size is known
    /// and bounded as it grows.
    pub struct_logs: Vec<String>,
}

/// The JSON length of a [`TxStructTrace`] without its logs, as
/// `{"gas":…,"failed":…,"returnValue":…,"structLogs":[…]}`.
fn tx_trace_json_len(gas: u64, failed: bool, return_value_len: usize) -> usize {
    r#"{"gas":"#.len()
        + dec_len(gas)
        + r#","failed":"#.len()
        + if failed { 4 } else { 5 }
        + r#","returnValue":"#.len()
        + bytes_json_len(return_value_len)
        + r#","structLogs":[]}"#.len()
}

/// The JSON length of a block trace's wrapper around one transaction's
/// trace, `{"txHash":…,"result":…}`, with the comma after it.
const BLOCK_ENTRY_JSON_BYTES: usize =
    r#"{"txHash":"#.len() + WORD_JSON_BYTES + r#","result":}"#.len() + 1;

/// Why the logger stopped execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    TooLarge,
    Deadline(Deadline),
}

/// The struct logger: an [`Inspector`] collecting [`StructLog`]s as JSON,
/// counting their bytes, and halting execution when the trace is full or
/// its deadline passed.
#[derive(Clone, Debug, Default)]
pub struct StructLogger {
    config: StructLogConfig,
    /// The current transaction's logs, as JSON.
    logs: Vec<String>,
    /// The log of the opcode in flight, finished by `step_end`.
    pending: Option<StructLog>,
    /// Storage seen so far, per contract.
    storage: HashMap<Address, BTreeMap<B256, B256>>,
    /// The slot an `SLOAD` in flight reads (its value is known after it runs).
    pending_sload: Option<(Address, B256)>,
    /// The refund counter of each active frame (depth 1 first); revm keeps
    /// refunds per frame and merges them on return, geth keeps one counter.
    refunds: Vec<i64>,
    /// Bytes the trace takes as JSON so far, every transaction together.
    bytes: usize,
    /// Logs recorded so far, every transaction together.
    recorded: usize,
    /// Opcodes seen, for the cadence of the deadline check.
    steps: u64,
    stop: Option<Stop>,
}

impl StructLogger {
    /// A logger with `config` and nothing recorded.
    pub fn new(config: StructLogConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    /// Bytes the trace takes as JSON so far (logs, commas and the wrappers
    /// [`trace_block`] adds), every transaction together.
    pub fn bytes_used(&self) -> usize {
        self.bytes
    }

    /// The current transaction's logs (JSON), leaving the logger ready for
    /// the next transaction; the byte count goes on.
    pub fn take_logs(&mut self) -> Vec<String> {
        if let Some(log) = self.pending.take() {
            self.record(log);
        }
        self.storage.clear();
        self.refunds.clear();
        self.pending_sload = None;
        std::mem::take(&mut self.logs)
    }

    /// Why the logger stopped execution, if it did.
    pub fn stopped(&self) -> Option<TraceError> {
        self.stop.map(|stop| match stop {
            Stop::TooLarge => TraceError::TooLarge {
                limit: self.max_bytes(),
                bytes: self.bytes,
                logs: self.recorded,
            },
            Stop::Deadline(deadline) => deadline.error().into(),
        })
    }

    /// The per-opcode hook: true when execution must stop because the trace
    /// is full or its deadline passed (the clock is read once every
    /// [`DEADLINE_CHECK_INTERVAL_STEPS`] calls).
    pub fn should_stop(&mut self) -> bool {
        if self.stop.is_none() {
            self.steps += 1;
            if self.steps.is_multiple_of(DEADLINE_CHECK_INTERVAL_STEPS) {
                self.check_deadline();
            }
        }
        self.stop.is_some()
    }

    fn check_deadline(&mut self) {
        if let Some(deadline) = self.config.deadline
            && deadline.expired()
        {
            self.stop.get_or_insert(Stop::Deadline(deadline));
        }
    }

    fn max_bytes(&self) -> usize {
        self.config.max_bytes.unwrap_or(usize::MAX)
    }

    fn fits(&self, bytes: usize) -> bool {
        self.bytes.saturating_add(bytes) <= self.max_bytes()
    }

    /// Counts `bytes` more; false, and stopped, when they do not fit.
    fn charge(&mut self, bytes: usize) -> bool {
        if !self.fits(bytes) {
            self.stop.get_or_insert(Stop::TooLarge);
            return false;
        }
        self.bytes += bytes;
        true
    }

    /// Keeps `log` if it fits (with the comma after it); false when not.
    fn record(&mut self, log: StructLog) -> bool {
        if !self.charge(log.json_len() + 1) {
            return false;
        }
        self.logs.push(log.to_json());
        self.recorded += 1;
        true
    }
}

/// Geth's name of an opcode.
fn op_name(op: u8) -> Cow<'static, str> {
    match OpCode::new(op) {
        Some(code) => Cow::Borrowed(code.as_str()),
        None => Cow::Owned(format!("opcode {op:#x} not defined")),
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
        // revm 43 always ends a step with `step_end`; a log left over would
        // be one whose opcode never finished, kept as geth would have it.
        if let Some(log) = self.pending.take() {
            self.record(log);
        }
        self.pending_sload = None;
        if self.should_stop() {
            // Halting each frame as it next runs unwinds the whole
            // transaction in a few steps; nothing of it is kept.
            interp.halt(InstructionResult::OutOfGas);
            return;
        }
        if self
            .config
            .limit
            .is_some_and(|limit| self.logs.len() >= limit)
        {
            return;
        }
        // Memory is the part that can dwarf everything else (and grows with
        // every step of a loop): refuse it before copying it.
        let memory_size = interp.memory.size();
        let capture_memory = self.config.enable_memory && memory_size > 0;
        if capture_memory && !self.fits(memory_json_len(memory_size)) {
            self.stop.get_or_insert(Stop::TooLarge);
            interp.halt(InstructionResult::OutOfGas);
            return;
        }
        let depth = context.journal().depth().max(1);
        self.refunds.resize(depth, 0);
        self.refunds[depth - 1] = interp.gas.refunded();
        let refund = self.refunds.iter().sum::<i64>().max(0) as u64;

        let op = interp.bytecode.opcode();
        let data = interp.stack.data();
        let stack = (!self.config.disable_stack).then(|| data.to_vec());
        let memory =
            capture_memory.then(|| Bytes::copy_from_slice(&interp.memory.slice(0..memory_size)));
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
        self.pending = Some(StructLog {
            pc: interp.bytecode.pc() as u64,
            op: op_name(op),
            gas: interp.gas.remaining(),
            gas_cost: 0,
            depth: depth as u64,
            error: None,
            stack,
            return_data,
            memory,
            storage,
            refund,
        });
    }

    fn step_end(&mut self, interp: &mut Interpreter<EthInterpreter>, _context: &mut CTX) {
        let Some(mut log) = self.pending.take() else {
            return;
        };
        log.gas_cost = log.gas.saturating_sub(interp.gas.remaining());
        if let Some(result) = interp.bytecode.instruction_result() {
            log.error = error_text(result);
        }
        if let Some((address, slot)) = self.pending_sload.take()
            && log.error.is_none()
            && let Some(value) = interp.stack.data().last()
        {
            let slots = self.storage.entry(address).or_default();
            slots.insert(slot, word(*value));
            log.storage = Some(slots.clone());
        }
        if !self.record(log) {
            interp.halt(InstructionResult::OutOfGas);
        }
    }
}

/// The EVM the tracer runs: the executor's, with a [`StructLogger`].
type TracingEvm<S, P> = InferaEvm<S, P, StructLogger>;

fn tracing_evm<S: StateReader, P: Precompiles<S>>(
    db: StateDb<S>,
    cfg: revm::context::CfgEnv,
    env: &BlockEnvInput,
    spec: SpecId,
    precompiles: P,
    config: StructLogConfig,
) -> TracingEvm<S, P> {
    EvmContext::<S>::new(db, spec)
        .with_cfg(cfg)
        .with_block(env.block_env(spec))
        .build_mainnet_with_inspector(StructLogger::new(config))
        .with_precompiles(precompiles)
}

/// The trace of a finished transaction: its result, and the logs the logger
/// holds, once the JSON around them (and, in a block trace, the entry
/// wrapping it) is counted.
fn finish_trace(
    logger: &mut StructLogger,
    result: &ExecutionResult,
    in_block: bool,
) -> std::result::Result<TxStructTrace, TraceError> {
    let failed = !result.is_success();
    let return_value = match result {
        ExecutionResult::Halt { .. } => Bytes::new(),
        other => other.output().cloned().unwrap_or_default(),
    };
    let gas = result.tx_gas_used();
    let wrapper = if in_block { BLOCK_ENTRY_JSON_BYTES } else { 0 };
    let framing = tx_trace_json_len(gas, failed, return_value.len()) + wrapper;
    if !logger.charge(framing) {
        return Err(logger.stopped().expect("charge stopped the logger"));
    }
    Ok(TxStructTrace {
        gas,
        failed,
        return_value,
        struct_logs: logger.take_logs(),
    })
}

/// Re-executes `transactions` (a whole block) on `state` (its parent's),
/// after the block's pre-transaction system calls, and traces each with the
/// struct logger; with `only`, runs the transactions before that index
/// untraced and returns the one trace. The bounds of `config` apply to the
/// whole block trace.
pub fn trace_block<S: StateReader, P: Precompiles<S>>(
    state: S,
    cfg: ExecutionConfig,
    env: BlockEnvInput,
    transactions: &[RecoveredTx],
    precompiles: P,
    config: StructLogConfig,
    only: Option<usize>,
) -> std::result::Result<Vec<TxStructTrace>, TraceError> {
    if let Some(index) = only
        && index >= transactions.len()
    {
        return Err(EvmError::Internal(format!(
            "transaction index {index} is past the block's {} transactions",
            transactions.len()
        ))
        .into());
    }
    let spec = cfg.spec;
    let mut evm = tracing_evm(
        StateDb::new(state),
        cfg.cfg_env(),
        &env,
        spec,
        precompiles,
        config,
    );
    pre_block_system_calls(&mut evm, spec, &env)?;

    let in_block = only.is_none();
    // The brackets of the block trace's array.
    if in_block && !evm.inspector.charge(2) {
        return Err(evm.inspector.stopped().expect("charge stopped the logger"));
    }
    let mut traces = Vec::new();
    for (i, tx) in transactions.iter().enumerate() {
        evm.inspector.check_deadline();
        if let Some(stopped) = evm.inspector.stopped() {
            return Err(stopped);
        }
        let traced = only.is_none_or(|index| index == i);
        let tx_env = tx_env(tx).map_err(EvmError::from)?;
        let result = if traced {
            evm.inspect_one_tx(tx_env)
        } else {
            evm.transact_one(tx_env)
        };
        let state = evm.finalize();
        if let Some(stopped) = evm.inspector.stopped() {
            return Err(stopped);
        }
        let result = result.map_err(from_evm_error)?;
        evm.ctx.journaled_state.database.commit(state, spec);
        if traced {
            traces.push(finish_trace(&mut evm.inspector, &result, in_block)?);
            if only.is_some() {
                break;
            }
        }
    }
    Ok(traces)
}

/// Runs `req` on `state` as `eth_call` does (keeping nothing, its gas
/// lowered to `gas_cap`) and traces it with the struct logger
/// (`debug_traceCall`).
pub fn trace_call<S: StateReader, P: Precompiles<S>>(
    state: S,
    cfg: ExecutionConfig,
    env: BlockEnvInput,
    req: CallRequest,
    precompiles: P,
    config: StructLogConfig,
    gas_cap: Option<u64>,
) -> std::result::Result<TxStructTrace, TraceError> {
    let limits = CallLimits {
        gas_cap,
        deadline: config.deadline,
    };
    let (cfg_env, tx) = call_env(&cfg, &env, &req, &limits)?;
    let mut db = StateDb::new(state);
    check_value_covered(&mut db, &tx)?;
    let mut evm = tracing_evm(db, cfg_env, &env, cfg.spec, precompiles, config);
    evm.inspector.check_deadline();
    if let Some(stopped) = evm.inspector.stopped() {
        return Err(stopped);
    }
    let result = evm.inspect_one_tx(tx);
    if let Some(stopped) = evm.inspector.stopped() {
        return Err(stopped);
    }
    let result = result.map_err(from_evm_error)?;
    finish_trace(&mut evm.inspector, &result, false)
}

#[cfg(test)]
mod tests {
    use alloy_primitives::keccak256;
    use infera_primitives::Account;

    use super::*;

    fn sstore_log() -> StructLog {
        StructLog {
            pc: 4,
            op: op_name(SSTORE),
            gas: 79991,
            gas_cost: 20000,
            depth: 1,
            error: None,
            stack: Some(vec![U256::from(2)]),
            return_data: None,
            memory: None,
            storage: Some(BTreeMap::from([(word(U256::from(2)), word(U256::from(2)))])),
            refund: 0,
        }
    }

    #[test]
    fn logs_serialise_as_geth_does() {
        let log = sstore_log();
        let expected = serde_json::json!({
            "pc": 4, "op": "SSTORE", "gas": 79991, "gasCost": 20000, "depth": 1,
            "stack": ["0x2"],
            "storage": {
                "0x0000000000000000000000000000000000000000000000000000000000000002":
                "0x0000000000000000000000000000000000000000000000000000000000000002"
            }
        });
        assert_eq!(serde_json::to_value(&log).unwrap(), expected);
        let text: serde_json::Value = serde_json::from_str(&log.to_json()).unwrap();
        assert_eq!(text, expected);
    }

    #[test]
    fn the_json_writer_and_its_length_match_serde_json_byte_for_byte() {
        let mut memory = vec![0u8; 96];
        memory[31] = 0x60;
        memory[64] = 0xff;
        let full = StructLog {
            pc: 1_234_567,
            op: op_name(0x0c),
            gas: 0,
            gas_cost: u64::MAX,
            depth: 1024,
            error: Some("odd \"text\"\\ with\ncontrols \u{1}".into()),
            stack: Some(vec![
                U256::ZERO,
                U256::from(0x1f),
                U256::MAX,
                U256::from(1) << 255,
            ]),
            return_data: Some(Bytes::from(vec![0xab, 0x00, 0x01])),
            memory: Some(memory.into()),
            storage: Some(BTreeMap::from([
                (word(U256::from(1)), word(U256::MAX)),
                (word(U256::from(9)), B256::ZERO),
            ])),
            refund: 4800,
        };
        let empty_lists = StructLog {
            stack: Some(Vec::new()),
            return_data: Some(Bytes::new()),
            memory: Some(Bytes::new()),
            storage: Some(BTreeMap::new()),
            ..sstore_log()
        };
        let bare = StructLog {
            stack: None,
            storage: None,
            ..sstore_log()
        };
        for log in [full, empty_lists, bare, sstore_log()] {
            let text = log.to_json();
            assert_eq!(text, serde_json::to_string(&log).unwrap());
            assert_eq!(text.len(), log.json_len());
        }
    }

    #[test]
    fn framing_lengths_match_the_serialised_shapes() {
        let framing = format!(
            r#"{{"gas":{},"failed":{},"returnValue":"{}","structLogs":[]}}"#,
            21_000,
            false,
            Bytes::from(vec![1, 2, 3])
        );
        assert_eq!(tx_trace_json_len(21_000, false, 3), framing.len());
        assert_eq!(
            tx_trace_json_len(7, true, 0),
            r#"{"gas":7,"failed":true,"returnValue":"0x","structLogs":[]}"#.len()
        );
        let entry = format!(r#"{{"txHash":"{}","result":}},"#, B256::ZERO);
        assert_eq!(BLOCK_ENTRY_JSON_BYTES, entry.len());
    }

    #[test]
    fn the_logger_refuses_what_does_not_fit_and_says_so() {
        let log = sstore_log();
        let len = log.json_len() + 1;
        let mut logger = StructLogger::new(StructLogConfig {
            max_bytes: Some(2 * len),
            ..Default::default()
        });
        assert!(logger.record(log.clone()) && logger.record(log.clone()));
        assert!(!logger.record(log));
        assert_eq!(logger.bytes_used(), 2 * len);
        assert!(logger.should_stop());
        match logger.stopped() {
            Some(TraceError::TooLarge { limit, bytes, logs }) => {
                assert_eq!((limit, bytes, logs), (2 * len, 2 * len, 2));
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert_eq!(logger.take_logs().len(), 2);
    }

    #[test]
    fn a_passed_deadline_stops_within_one_check_interval() {
        let mut logger = StructLogger::new(StructLogConfig {
            deadline: Some(Deadline::after(std::time::Duration::ZERO)),
            ..Default::default()
        });
        let steps = (1..=DEADLINE_CHECK_INTERVAL_STEPS)
            .find(|_| logger.should_stop())
            .expect("the deadline is seen within one interval");
        assert_eq!(steps, DEADLINE_CHECK_INTERVAL_STEPS);
        assert!(matches!(
            logger.stopped(),
            Some(TraceError::Evm(EvmError::Timeout { .. }))
        ));
    }

    /// A state holding only [`CONTRACT`] with `code`.
    struct OneContract(Bytes);

    const CONTRACT: Address = Address::repeat_byte(0xc0);

    impl StateReader for OneContract {
        type Error = std::convert::Infallible;
        fn account(&self, address: Address) -> std::result::Result<Option<Account>, Self::Error> {
            Ok((address == CONTRACT).then(|| Account {
                nonce: 1,
                balance: U256::ZERO,
                code_hash: keccak256(&self.0),
            }))
        }
        fn storage(&self, _: Address, _: U256) -> std::result::Result<U256, Self::Error> {
            Ok(U256::ZERO)
        }
        fn code_by_hash(&self, hash: B256) -> std::result::Result<Option<Bytes>, Self::Error> {
            Ok((hash == keccak256(&self.0)).then(|| self.0.clone()))
        }
        fn block_hash(&self, _: u64) -> std::result::Result<Option<B256>, Self::Error> {
            Ok(None)
        }
    }

    /// Runtime: 100 rounds of `mstore(i, i); i += 1024`, then `STOP`.
    fn bounded_grower() -> Bytes {
        Bytes::from(alloy_primitives::hex!(
            "6000" "5b" "80" "80" "52" "610400" "01" "80" "62019000" "11" "6002" "57" "00"
        ))
    }

    /// Calls the bounded grower with the logger, straight on the EVM.
    fn run_grower(config: StructLogConfig) -> (ExecutionResult, StructLogger) {
        let cfg = ExecutionConfig::new(1);
        let env = BlockEnvInput {
            gas_limit: 30_000_000,
            ..Default::default()
        };
        let req = CallRequest {
            to: Some(CONTRACT),
            gas: Some(1_000_000),
            ..Default::default()
        };
        let (cfg_env, tx) = call_env(&cfg, &env, &req, &CallLimits::default()).unwrap();
        let state = StateDb::new(OneContract(bounded_grower()));
        let precompiles = revm::handler::EthPrecompiles::new(cfg.spec);
        let mut evm = tracing_evm(state, cfg_env, &env, cfg.spec, precompiles, config);
        let result = evm.inspect_one_tx(tx).unwrap();
        (result, evm.inspector)
    }

    #[test]
    fn a_full_trace_halts_the_execution_itself() {
        let (result, mut logger) = run_grower(StructLogConfig::default());
        assert!(result.is_success(), "{result:?}");
        let steps = logger.take_logs().len();
        assert!(steps > 1_000);

        let max_bytes = 64 * 1024;
        let (result, mut logger) = run_grower(StructLogConfig {
            enable_memory: true,
            max_bytes: Some(max_bytes),
            ..Default::default()
        });
        // Had only the recording stopped, the loop would have run to its STOP.
        assert!(
            matches!(
                result,
                ExecutionResult::Halt {
                    reason: revm::context::result::HaltReason::OutOfGas(_),
                    ..
                }
            ),
            "{result:?}"
        );
        assert!(matches!(
            logger.stopped(),
            Some(TraceError::TooLarge { .. })
        ));
        assert!(logger.bytes_used() <= max_bytes);
        assert!(logger.take_logs().len() < steps / 10);
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
