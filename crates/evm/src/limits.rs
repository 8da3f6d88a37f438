//! Bounds on one RPC execution (`eth_call`, `eth_estimateGas`,
//! `eth_createAccessList`, `eth_simulateV1`): a gas cap, and a wall-clock
//! deadline that stops the interpreter itself, as geth's `evm.Cancel()` does,
//! so that a request past its time releases its CPU instead of running on
//! after its answer is given up.
//!
//! The deadline is checked where execution can go on for long: every
//! [`DEADLINE_CHECK_INTERVAL_JUMPS`]-th `JUMP`/`JUMPI` (every loop passes
//! through one) and at every call frame, before any precompile runs (an AI
//! inference can take a second). A single inference already started runs to
//! its end: the kernels have no interruption point.
//!
//! The active deadline lives in a thread-local because revm's instruction
//! functions are plain `fn` pointers over a context that has no free slot; the
//! execution is synchronous on one thread, and [`ActiveDeadline`] restores the
//! previous value when dropped. Block execution never installs the checks.

use std::{
    cell::Cell,
    time::{Duration, Instant},
};

use infera_primitives::StateReader;
use revm::{
    bytecode::opcode::{JUMP, JUMPI},
    context::ContextTr,
    context_interface::context::ContextError,
    handler::PrecompileProvider,
    interpreter::{
        CallInputs, Instruction, InstructionContext, InstructionExecResult, InstructionResult,
        InterpreterResult, instructions::control, interpreter::EthInterpreter,
    },
    primitives::{AddressSet, hardfork::SpecId},
};

use crate::{
    error::EvmError,
    executor::{EvmContext, InferaEvm, Precompiles},
};

/// Jumps between two reads of the clock while a deadline is active: a read
/// costs about as much as a few dozen cheap instructions, and a thousand
/// loop iterations take microseconds.
pub const DEADLINE_CHECK_INTERVAL_JUMPS: u32 = 1_024;

/// What revm carries up from the interpreter when the deadline passes; turned
/// into [`EvmError::Timeout`] by the caller that set the deadline.
const DEADLINE_MESSAGE: &str = "execution deadline passed";

/// A wall-clock limit on one request's executions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    /// `timeout` from `start` (e.g. when the request arrived, so that time
    /// spent queued counts).
    pub fn new(start: Instant, timeout: Duration) -> Self {
        // A timeout too far to represent never comes: a century is as good.
        let at = start
            .checked_add(timeout)
            .unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 24 * 3_600));
        Self { at, timeout }
    }

    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        Self::new(Instant::now(), timeout)
    }

    /// When it passes.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// The timeout it was made with (what the error reports).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// True once the deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// The error of an execution stopped by this deadline.
    pub fn error(&self) -> EvmError {
        EvmError::Timeout {
            timeout: self.timeout,
        }
    }

    /// `Err(timeout)` once the deadline has passed.
    pub fn check(&self) -> Result<(), EvmError> {
        if self.expired() {
            Err(self.error())
        } else {
            Ok(())
        }
    }
}

/// The bounds of one RPC execution. The default bounds nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallLimits {
    /// Most gas any one execution gets; more is lowered to it (as geth's
    /// `--rpc.gascap`). `None`: no cap beyond the block's and EIP-7825's.
    pub gas_cap: Option<u64>,
    /// When executions stop with [`EvmError::Timeout`].
    pub deadline: Option<Deadline>,
}

impl CallLimits {
    /// `gas` lowered to the cap.
    pub fn cap_gas(&self, gas: u64) -> u64 {
        self.gas_cap.map_or(gas, |cap| gas.min(cap))
    }

    /// `Err(timeout)` once the deadline has passed.
    pub fn check(&self) -> Result<(), EvmError> {
        self.deadline.as_ref().map_or(Ok(()), Deadline::check)
    }
}

thread_local! {
    static ACTIVE: Cell<Option<Instant>> = const { Cell::new(None) };
    static TRIPPED: Cell<bool> = const { Cell::new(false) };
    static COUNTDOWN: Cell<u32> = const { Cell::new(DEADLINE_CHECK_INTERVAL_JUMPS) };
}

/// Makes a deadline the one this thread's interruptible executions check,
/// until dropped.
#[derive(Debug)]
pub(crate) struct ActiveDeadline {
    deadline: Option<Deadline>,
    previous: Option<Instant>,
    previous_tripped: bool,
}

impl ActiveDeadline {
    pub(crate) fn enter(deadline: Option<Deadline>) -> Self {
        let previous = ACTIVE.replace(deadline.map(|d| d.at));
        let previous_tripped = TRIPPED.replace(false);
        COUNTDOWN.set(DEADLINE_CHECK_INTERVAL_JUMPS);
        Self {
            deadline,
            previous,
            previous_tripped,
        }
    }

    /// `error` as it should be reported: [`EvmError::Timeout`] when the
    /// deadline stopped the execution (revm reports that as an internal error).
    pub(crate) fn map_err(&self, error: EvmError) -> EvmError {
        match self.deadline {
            Some(deadline) if TRIPPED.get() => deadline.error(),
            _ => error,
        }
    }

    /// `Err(timeout)` once the deadline has passed.
    pub(crate) fn check(&self) -> Result<(), EvmError> {
        self.deadline.as_ref().map_or(Ok(()), Deadline::check)
    }
}

impl Drop for ActiveDeadline {
    fn drop(&mut self) {
        ACTIVE.set(self.previous);
        TRIPPED.set(self.previous_tripped);
    }
}

/// True when the active deadline has passed; remembers it for
/// [`ActiveDeadline::map_err`].
fn passed() -> bool {
    let Some(at) = ACTIVE.get() else {
        return false;
    };
    if Instant::now() < at {
        return false;
    }
    TRIPPED.set(true);
    true
}

/// [`passed`], reading the clock only every [`DEADLINE_CHECK_INTERVAL_JUMPS`] calls.
fn passed_sampled() -> bool {
    if ACTIVE.get().is_none() {
        return false;
    }
    let left = COUNTDOWN.get();
    if left > 0 {
        COUNTDOWN.set(left - 1);
        return false;
    }
    COUNTDOWN.set(DEADLINE_CHECK_INTERVAL_JUMPS);
    passed()
}

fn stop<S: StateReader>(
    context: InstructionContext<'_, EvmContext<S>, EthInterpreter>,
) -> InstructionExecResult {
    // revm returns the context's error as the transaction's error; the halt
    // itself is never turned into a result (see `Frame::return_result`).
    *context.host.error() = Err(ContextError::Custom(DEADLINE_MESSAGE.into()));
    Err(InstructionResult::FatalExternalError)
}

fn interruptible_jump<S: StateReader>(
    context: InstructionContext<'_, EvmContext<S>, EthInterpreter>,
) -> InstructionExecResult {
    if passed_sampled() {
        return stop(context);
    }
    control::jump(context)
}

fn interruptible_jumpi<S: StateReader>(
    context: InstructionContext<'_, EvmContext<S>, EthInterpreter>,
) -> InstructionExecResult {
    if passed_sampled() {
        return stop(context);
    }
    control::jumpi(context)
}

/// Makes `evm`'s jumps check the thread's active deadline.
pub(crate) fn install_jump_checks<S: StateReader, P: Precompiles<S>>(evm: &mut InferaEvm<S, P>) {
    let gas = *evm.instruction.gas_table();
    evm.instruction.insert_instruction(
        JUMP,
        Instruction::new(interruptible_jump::<S>),
        gas[JUMP as usize],
    );
    evm.instruction.insert_instruction(
        JUMPI,
        Instruction::new(interruptible_jumpi::<S>),
        gas[JUMPI as usize],
    );
}

/// `Err` when the active deadline has passed: called at every call frame,
/// before a precompile (an inference) may run.
pub(crate) fn check_frame() -> Result<(), String> {
    if passed() {
        Err(DEADLINE_MESSAGE.into())
    } else {
        Ok(())
    }
}

/// A precompile provider that checks the thread's active deadline at every
/// call frame before handing it to `P`.
#[derive(Debug, Clone)]
pub(crate) struct Interruptible<P>(pub(crate) P);

impl<S: StateReader, P: Precompiles<S>> PrecompileProvider<EvmContext<S>> for Interruptible<P> {
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: SpecId) -> bool {
        self.0.set_spec(spec)
    }

    fn run(
        &mut self,
        context: &mut EvmContext<S>,
        inputs: &CallInputs,
    ) -> Result<Option<InterpreterResult>, String> {
        check_frame()?;
        self.0.run(context, inputs)
    }

    fn warm_addresses(&self) -> &AddressSet {
        self.0.warm_addresses()
    }

    fn contains(&self, address: &alloy_primitives::Address) -> bool {
        self.0.contains(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_reports_the_timeout_as_geth_words_it() {
        let deadline = Deadline::after(Duration::from_secs(5));
        assert!(!deadline.expired());
        assert_eq!(
            deadline.error().to_string(),
            "execution aborted (timeout = 5s)"
        );
        let past = Deadline::new(Instant::now(), Duration::from_millis(0));
        assert!(past.expired());
        assert!(past.check().is_err());
        assert_eq!(
            Deadline::after(Duration::from_millis(1_500))
                .error()
                .to_string(),
            "execution aborted (timeout = 1.5s)"
        );
    }

    #[test]
    fn a_huge_timeout_never_passes() {
        assert!(!Deadline::after(Duration::MAX).expired());
    }

    #[test]
    fn gas_is_lowered_to_the_cap() {
        let limits = CallLimits {
            gas_cap: Some(50_000_000),
            deadline: None,
        };
        assert_eq!(limits.cap_gas(u64::MAX), 50_000_000);
        assert_eq!(limits.cap_gas(21_000), 21_000);
        assert_eq!(CallLimits::default().cap_gas(u64::MAX), u64::MAX);
    }

    #[test]
    fn the_active_deadline_is_restored_when_left() {
        let outer = ActiveDeadline::enter(Some(Deadline::new(Instant::now(), Duration::ZERO)));
        assert!(check_frame().is_err());
        {
            let _inner = ActiveDeadline::enter(None);
            assert!(check_frame().is_ok());
            assert!(!passed_sampled());
        }
        assert!(check_frame().is_err());
        assert!(matches!(
            outer.map_err(EvmError::Internal(DEADLINE_MESSAGE.into())),
            EvmError::Timeout { .. }
        ));
        drop(outer);
        assert!(check_frame().is_ok());
    }
}
