//! `eth_call` and `eth_estimateGas`: execute a request on a state without
//! keeping any change.

use alloy_eips::eip2930::AccessList;
use alloy_primitives::{Address, Bytes, Log, TxKind, U256};
use infera_primitives::StateReader;
use revm::{
    ExecuteEvm,
    context::{CfgEnv, TxEnv, result::ExecutionResult},
    handler::EthPrecompiles,
};

use crate::{
    db::StateDb,
    env::{BlockEnvInput, ExecutionConfig},
    error::{EvmError, InvalidTransaction, Result},
    executor::{InferaEvm, Precompiles, build_evm, from_evm_error},
    limits::{ActiveDeadline, CallLimits, Interruptible, install_jump_checks},
};

/// The least gas any transaction uses (a plain transfer).
pub const MIN_TRANSACTION_GAS: u64 = 21_000;

/// How far above the least sufficient gas [`estimate_gas_with_limits`] may
/// answer, in parts per thousand (geth's `estimateGasErrorRatio`, 1.5%):
/// wallets add more than that anyway, and it saves most of the search's runs.
pub const ESTIMATE_GAS_TOLERANCE_PER_MILLE: u64 = 15;

/// Most runs of the gas search after the first (at the highest gas limit).
/// An exact search over any range up to 2^32 gas fits; past it, the search
/// answers its lowest gas known to succeed.
pub const MAX_ESTIMATE_GAS_SEARCH_RUNS: u32 = 32;

/// Error of [`estimate_gas`]: [`EvmError::Revert`] carries the revert data when
/// the request reverts at every gas limit.
pub type EstimateError = EvmError;

/// A call to simulate, as `eth_call`/`eth_estimateGas` receive it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallRequest {
    /// Caller; the zero address when absent.
    pub from: Option<Address>,
    /// Callee; `None` creates a contract with `input` as init code.
    pub to: Option<Address>,
    /// Gas limit; the block gas limit (capped by EIP-7825) when absent.
    pub gas: Option<u64>,
    /// Legacy gas price, in wei.
    pub gas_price: Option<u128>,
    /// EIP-1559 max fee per gas, in wei.
    pub max_fee_per_gas: Option<u128>,
    /// EIP-1559 max priority fee per gas, in wei.
    pub max_priority_fee_per_gas: Option<u128>,
    /// Value sent, in wei.
    pub value: Option<U256>,
    /// Calldata, or init code for a create.
    pub input: Bytes,
    /// Nonce (not checked).
    pub nonce: Option<u64>,
    /// EIP-2930 access list.
    pub access_list: Option<AccessList>,
}

/// What a simulated call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call returned.
    Success {
        /// Return data (for a create: the deployed code).
        output: Bytes,
        /// Gas used, after refunds.
        gas_used: u64,
        /// Logs emitted.
        logs: Vec<Log>,
    },
    /// The call reverted.
    Revert {
        /// Revert data.
        output: Bytes,
        /// Gas used.
        gas_used: u64,
    },
    /// The call halted exceptionally (out of gas, invalid opcode, ...).
    Halt {
        /// Why it halted.
        reason: String,
        /// Gas used (all of it).
        gas_used: u64,
    },
}

impl CallOutcome {
    pub(crate) fn from_result(result: ExecutionResult) -> Self {
        let gas_used = result.tx_gas_used();
        match result {
            ExecutionResult::Success { output, logs, .. } => Self::Success {
                output: output.into_data(),
                gas_used,
                logs,
            },
            ExecutionResult::Revert { output, .. } => Self::Revert { output, gas_used },
            ExecutionResult::Halt { reason, .. } => Self::Halt {
                reason: format!("{reason:?}"),
                gas_used,
            },
        }
    }

    /// Gas used by the call.
    pub fn gas_used(&self) -> u64 {
        match self {
            Self::Success { gas_used, .. }
            | Self::Revert { gas_used, .. }
            | Self::Halt { gas_used, .. } => *gas_used,
        }
    }

    /// True for [`CallOutcome::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success { .. })
    }
}

/// Whether the request names a price (then balance and base fee are checked).
fn is_priced(req: &CallRequest) -> bool {
    req.gas_price.is_some()
        || req.max_fee_per_gas.is_some()
        || req.max_priority_fee_per_gas.is_some()
}

pub(crate) fn call_env(
    cfg: &ExecutionConfig,
    env: &BlockEnvInput,
    req: &CallRequest,
    limits: &CallLimits,
) -> Result<(CfgEnv, TxEnv)> {
    let mut cfg_env = cfg.cfg_env();
    cfg_env.disable_nonce_check = true;
    // Calls may come from contract addresses (EIP-3607 applies to signed txs only).
    cfg_env.disable_eip3607 = true;
    if !is_priced(req) {
        cfg_env.disable_balance_check = true;
        cfg_env.disable_base_fee = true;
    }
    let default_gas = match cfg.tx_gas_limit_cap() {
        Some(cap) => env.gas_limit.min(cap),
        None => env.gas_limit,
    };
    let (tx_type, gas_price, gas_priority_fee) =
        if req.max_fee_per_gas.is_some() || req.max_priority_fee_per_gas.is_some() {
            if req.gas_price.is_some() {
                return Err(EvmError::InvalidRequest(
                    "both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified".into(),
                ));
            }
            let tip = req.max_priority_fee_per_gas.unwrap_or(0);
            let max_fee = req
                .max_fee_per_gas
                .unwrap_or_else(|| u128::from(env.base_fee_per_gas) + tip);
            (2, max_fee, Some(tip))
        } else if req.access_list.is_some() {
            (1, req.gas_price.unwrap_or(0), None)
        } else {
            (0, req.gas_price.unwrap_or(0), None)
        };
    let tx = TxEnv {
        tx_type,
        caller: req.from.unwrap_or(Address::ZERO),
        gas_limit: limits.cap_gas(req.gas.unwrap_or(default_gas)),
        gas_price,
        kind: req.to.map_or(TxKind::Create, TxKind::Call),
        value: req.value.unwrap_or_default(),
        data: req.input.clone(),
        nonce: req.nonce.unwrap_or(0),
        chain_id: Some(cfg.chain_id),
        access_list: req.access_list.clone().unwrap_or_default(),
        gas_priority_fee,
        blob_hashes: Vec::new(),
        max_fee_per_blob_gas: 0,
        authorization_list: Vec::new(),
    };
    Ok((cfg_env, tx))
}

/// `eth_call` with the Ethereum precompiles: run `req` on `state` and keep nothing.
pub fn call<S: StateReader>(
    state: S,
    cfg: ExecutionConfig,
    env: BlockEnvInput,
    req: CallRequest,
) -> Result<CallOutcome> {
    call_with_precompiles(state, cfg, env, req, EthPrecompiles::new(cfg.spec))
}

/// [`call`] with a custom precompile provider.
pub fn call_with_precompiles<S: StateReader, P: Precompiles<S>>(
    state: S,
    cfg: ExecutionConfig,
    env: BlockEnvInput,
    req: CallRequest,
    precompiles: P,
) -> Result<CallOutcome> {
    call_with_limits(state, cfg, env, req, precompiles, CallLimits::default())
}

/// [`call_with_precompiles`] within `limits`: the gas is lowered to the cap,
/// and past the deadline the execution stops with [`EvmError::Timeout`].
pub fn call_with_limits<S: StateReader, P: Precompiles<S>>(
    state: S,
    cfg: ExecutionConfig,
    env: BlockEnvInput,
    req: CallRequest,
    precompiles: P,
    limits: CallLimits,
) -> Result<CallOutcome> {
    let (cfg_env, tx) = call_env(&cfg, &env, &req, &limits)?;
    let mut db = StateDb::new(state);
    check_value_covered(&mut db, &tx)?;
    let mut evm = build_call_evm(db, cfg_env, &env, cfg, precompiles);
    let deadline = ActiveDeadline::enter(limits.deadline);
    run(&mut evm, tx, &deadline)
}

/// The EVM of RPC executions: every call frame and every
/// `DEADLINE_CHECK_INTERVAL_JUMPS`-th jump checks the thread's active deadline.
pub(crate) fn build_call_evm<S: StateReader, P: Precompiles<S>>(
    db: StateDb<S>,
    cfg_env: CfgEnv,
    env: &BlockEnvInput,
    cfg: ExecutionConfig,
    precompiles: P,
) -> InferaEvm<S, Interruptible<P>> {
    let mut evm = build_evm(
        db,
        cfg_env,
        env.block_env(cfg.spec),
        Interruptible(precompiles),
    );
    install_jump_checks(&mut evm);
    evm
}

/// Like geth, a call may skip paying for gas but not move value it does not
/// have: revm's disabled balance check would otherwise mint it.
pub(crate) fn check_value_covered<S: StateReader>(db: &mut StateDb<S>, tx: &TxEnv) -> Result<()> {
    if tx.value.is_zero() {
        return Ok(());
    }
    let balance = db
        .account(tx.caller)?
        .map(|account| account.balance)
        .unwrap_or_default();
    if balance < tx.value {
        return Err(InvalidTransaction::InsufficientFunds {
            balance,
            cost: tx.value,
        }
        .into());
    }
    Ok(())
}

fn run<S: StateReader, P: Precompiles<S>>(
    evm: &mut InferaEvm<S, P>,
    tx: TxEnv,
    deadline: &ActiveDeadline,
) -> Result<CallOutcome> {
    deadline.check()?;
    let result = evm.transact_one(tx);
    // Drop the journal: nothing of a call is kept.
    let _ = evm.finalize();
    let result = result.map_err(|e| deadline.map_err(from_evm_error(e)))?;
    Ok(CallOutcome::from_result(result))
}

/// `eth_estimateGas` with the Ethereum precompiles: the least gas limit with
/// which `req` succeeds, by binary search between the gas the first run used
/// and the cap (the request's gas, else the block gas limit capped by
/// EIP-7825, lowered to what the caller's balance can pay when priced).
pub fn estimate_gas<S: StateReader>(
    state: S,
    cfg: ExecutionConfig,
    env: BlockEnvInput,
    req: CallRequest,
) -> Result<u64, EstimateError> {
    estimate_gas_with_precompiles(state, cfg, env, req, EthPrecompiles::new(cfg.spec))
}

/// [`estimate_gas`] with a custom precompile provider: the least gas that
/// succeeds, exactly (up to [`MAX_ESTIMATE_GAS_SEARCH_RUNS`] runs of the search).
pub fn estimate_gas_with_precompiles<S: StateReader, P: Precompiles<S>>(
    state: S,
    cfg: ExecutionConfig,
    env: BlockEnvInput,
    req: CallRequest,
    precompiles: P,
) -> Result<u64, EstimateError> {
    estimate(state, cfg, env, req, precompiles, CallLimits::default(), 0)
}

/// `eth_estimateGas` as the RPC runs it: the search starts at most at the gas
/// cap, may answer up to [`ESTIMATE_GAS_TOLERANCE_PER_MILLE`] above the least
/// gas that succeeds (as geth), makes at most [`MAX_ESTIMATE_GAS_SEARCH_RUNS`]
/// runs after the first, and all of them stop at the one deadline.
pub fn estimate_gas_with_limits<S: StateReader, P: Precompiles<S>>(
    state: S,
    cfg: ExecutionConfig,
    env: BlockEnvInput,
    req: CallRequest,
    precompiles: P,
    limits: CallLimits,
) -> Result<u64, EstimateError> {
    estimate(
        state,
        cfg,
        env,
        req,
        precompiles,
        limits,
        ESTIMATE_GAS_TOLERANCE_PER_MILLE,
    )
}

fn estimate<S: StateReader, P: Precompiles<S>>(
    state: S,
    cfg: ExecutionConfig,
    env: BlockEnvInput,
    req: CallRequest,
    precompiles: P,
    limits: CallLimits,
    tolerance_per_mille: u64,
) -> Result<u64, EstimateError> {
    let (cfg_env, mut tx) = call_env(&cfg, &env, &req, &limits)?;
    let mut db = StateDb::new(state);
    check_value_covered(&mut db, &tx)?;
    let mut hi = tx.gas_limit;
    if is_priced(&req) && tx.gas_price > 0 {
        let balance = db
            .account(tx.caller)?
            .map(|account| account.balance)
            .unwrap_or_default();
        let available =
            balance
                .checked_sub(tx.value)
                .ok_or(InvalidTransaction::InsufficientFunds {
                    balance,
                    cost: tx.value,
                })?;
        let allowance = available / U256::from(tx.gas_price);
        hi = hi.min(u64::try_from(allowance).unwrap_or(u64::MAX));
    }
    let mut evm = build_call_evm(db, cfg_env, &env, cfg, precompiles);
    let deadline = ActiveDeadline::enter(limits.deadline);

    tx.gas_limit = hi;
    let gas_used = match run(&mut evm, tx.clone(), &deadline)? {
        CallOutcome::Success { gas_used, .. } => gas_used,
        CallOutcome::Revert { output, .. } => return Err(EvmError::Revert { output }),
        CallOutcome::Halt { reason, .. } => {
            return Err(EvmError::Halt {
                reason: format!("{reason} (gas limit {hi})"),
            });
        }
    };

    // `gas_used` (after refunds) is below what the call needs or equal to it, and
    // never below the intrinsic gas, so `gas_used - 1` is known to fail.
    let lo = gas_used.max(MIN_TRANSACTION_GAS) - 1;
    // Many calls need exactly what they used (a transfer: 21000), most of the
    // others a little more (the 63/64 rule): try those first.
    let optimistic = gas_used + gas_used / 63 + 2_300;
    search_gas(
        GasSearch {
            lo,
            hi,
            guesses: [Some(lo + 1), Some(optimistic)],
            tolerance_per_mille,
            max_runs: MAX_ESTIMATE_GAS_SEARCH_RUNS,
        },
        |gas| {
            let mut attempt = tx.clone();
            attempt.gas_limit = gas;
            match run(&mut evm, attempt, &deadline) {
                Ok(outcome) => Ok(outcome.is_success()),
                Err(EvmError::InvalidTransaction(_)) => Ok(false),
                Err(other) => Err(other),
            }
        },
    )
}

/// A gas search: `lo` is known to fail, `hi` to succeed.
#[derive(Debug, Clone, Copy)]
struct GasSearch {
    lo: u64,
    hi: u64,
    /// Tried first, in order, each when strictly between `lo` and `hi`.
    guesses: [Option<u64>; 2],
    /// Stop once `hi - lo` is below this share of `hi`, in parts per thousand.
    tolerance_per_mille: u64,
    /// Most calls of `succeeds`.
    max_runs: u32,
}

/// Bisects towards the least gas that `succeeds`; answers the lowest gas
/// known to succeed when the range is within tolerance or the runs are spent.
fn search_gas(search: GasSearch, mut succeeds: impl FnMut(u64) -> Result<bool>) -> Result<u64> {
    let GasSearch { mut lo, mut hi, .. } = search;
    let mut runs = 0;
    let mut guesses = search.guesses.into_iter().flatten();
    while lo + 1 < hi && runs < search.max_runs {
        let within_tolerance =
            u128::from(hi - lo) * 1_000 < u128::from(hi) * u128::from(search.tolerance_per_mille);
        if within_tolerance {
            break;
        }
        let mid = guesses
            .by_ref()
            .find(|gas| *gas > lo && *gas < hi)
            .unwrap_or(lo + (hi - lo) / 2);
        runs += 1;
        if succeeds(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(lo: u64, hi: u64, tolerance_per_mille: u64, needed: u64) -> (u64, u32) {
        let mut runs = 0;
        let gas = search_gas(
            GasSearch {
                lo,
                hi,
                guesses: [None, None],
                tolerance_per_mille,
                max_runs: MAX_ESTIMATE_GAS_SEARCH_RUNS,
            },
            |gas| {
                runs += 1;
                Ok(gas >= needed)
            },
        )
        .unwrap();
        (gas, runs)
    }

    #[test]
    fn an_exact_search_finds_the_least_gas() {
        assert_eq!(search(20_999, 30_000_000, 0, 123_457).0, 123_457);
    }

    #[test]
    fn the_search_stops_at_its_run_limit_with_gas_that_succeeds() {
        let (gas, runs) = search(20_999, u64::MAX, 0, 123_457);
        assert_eq!(runs, MAX_ESTIMATE_GAS_SEARCH_RUNS);
        assert!(gas >= 123_457, "{gas} must succeed");
    }

    #[test]
    fn the_tolerance_saves_runs_and_stays_above_the_need() {
        let (exact, exact_runs) = search(20_999, 50_000_000, 0, 1_000_000);
        let (close, close_runs) = search(
            20_999,
            50_000_000,
            ESTIMATE_GAS_TOLERANCE_PER_MILLE,
            1_000_000,
        );
        assert_eq!(exact, 1_000_000);
        // Stopped with hi - lo below 1.5% of hi, and lo fails: hi * 98.5% < need.
        assert!(close >= 1_000_000 && u128::from(close) * 985 < 1_000_000 * 1_000);
        assert!(close_runs < exact_runs, "{close_runs} vs {exact_runs}");
    }

    #[test]
    fn an_exact_first_guess_ends_the_search() {
        let mut tried = Vec::new();
        let gas = search_gas(
            GasSearch {
                lo: 20_999,
                hi: 30_000_000,
                guesses: [Some(21_000), Some(23_633)],
                tolerance_per_mille: ESTIMATE_GAS_TOLERANCE_PER_MILLE,
                max_runs: MAX_ESTIMATE_GAS_SEARCH_RUNS,
            },
            |gas| {
                tried.push(gas);
                Ok(gas >= 21_000)
            },
        )
        .unwrap();
        assert_eq!((gas, tried), (21_000, vec![21_000]));
    }

    #[test]
    fn a_good_second_guess_is_taken() {
        let mut tried = Vec::new();
        let gas = search_gas(
            GasSearch {
                lo: 50_000,
                hi: 30_000_000,
                guesses: [Some(50_001), Some(53_000)],
                tolerance_per_mille: ESTIMATE_GAS_TOLERANCE_PER_MILLE,
                max_runs: MAX_ESTIMATE_GAS_SEARCH_RUNS,
            },
            |gas| {
                tried.push(gas);
                Ok(gas >= 52_000)
            },
        )
        .unwrap();
        assert_eq!(tried[..2], [50_001, 53_000]);
        assert!((52_000..=53_000).contains(&gas), "{gas}");
    }
}
