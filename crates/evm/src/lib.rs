//! Block and call execution on revm: transaction validation, receipts, state changes.
//!
//! - [`BlockExecutor`] runs a block's transactions on one EVM over a
//!   [`StateReader`](infera_primitives::StateReader) and yields receipts and
//!   [`StateChanges`](infera_primitives::StateChanges).
//! - [`call`] and [`estimate_gas`] serve `eth_call` and `eth_estimateGas`.
//! - [`validate_transaction`] is the pool's admission check.
//! - [`recover`] and [`decode_raw_transaction`] turn signed transactions into
//!   [`RecoveredTx`](infera_primitives::RecoveredTx).
//!
//! Precompiles plug in through a [`Precompiles`] provider (default: revm's
//! Ethereum set), so the AI precompiles can wrap it.

mod access_list;
mod call;
mod db;
mod decode;
mod env;
mod error;
mod executor;
mod limits;
mod simulate;
mod trace;
mod validate;

pub use access_list::{AccessListOutcome, MAX_ACCESS_LIST_RUNS, create_access_list};
pub use call::{
    CallOutcome, CallRequest, ESTIMATE_GAS_TOLERANCE_PER_MILLE, EstimateError,
    MAX_ESTIMATE_GAS_SEARCH_RUNS, call, call_with_limits, call_with_precompiles, estimate_gas,
    estimate_gas_with_limits, estimate_gas_with_precompiles,
};
pub use db::{StateDb, StateDbError, StateReaderRef};
pub use decode::{decode_raw_transaction, recover, recover_any};
pub use env::{BlockEnvInput, ExecutionConfig, TX_GAS_LIMIT_CAP, tx_env};
pub use error::{EvmError, InvalidTransaction, Result, decode_revert_reason};
pub use executor::{
    BlockExecutor, DEPOSIT_EVENT_TOPIC, EvmContext, ExecutionOutcome, InferaEvm, Precompiles,
    block_reward, eth_precompiles,
};
pub use limits::{CallLimits, DEADLINE_CHECK_INTERVAL_JUMPS, Deadline};
pub use revm::{context::TxEnv, handler::EthPrecompiles, primitives::hardfork::SpecId};
pub use simulate::{AccountOverride, MovablePrecompiles, OverrideError, SimulatedCall, Simulator};
pub use trace::{
    DEADLINE_CHECK_INTERVAL_STEPS, StructLog, StructLogConfig, StructLogger, TraceError,
    TxStructTrace, trace_block, trace_call,
};
pub use validate::{intrinsic_gas, validate_transaction, validate_transaction_with_config};
