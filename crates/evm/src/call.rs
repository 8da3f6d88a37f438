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
};

/// The least gas any transaction uses (a plain transfer).
pub const MIN_TRANSACTION_GAS: u64 = 21_000;

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
        gas_limit: req.gas.unwrap_or(default_gas),
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
    let (cfg_env, tx) = call_env(&cfg, &env, &req)?;
    let mut db = StateDb::new(state);
    check_value_covered(&mut db, &tx)?;
    let mut evm = build_evm(db, cfg_env, env.block_env(cfg.spec), precompiles);
    run(&mut evm, tx)
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
) -> Result<CallOutcome> {
    let result = evm.transact_one(tx);
    // Drop the journal: nothing of a call is kept.
    let _ = evm.finalize();
    Ok(CallOutcome::from_result(result.map_err(from_evm_error)?))
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

/// [`estimate_gas`] with a custom precompile provider.
pub fn estimate_gas_with_precompiles<S: StateReader, P: Precompiles<S>>(
    state: S,
    cfg: ExecutionConfig,
    env: BlockEnvInput,
    req: CallRequest,
    precompiles: P,
) -> Result<u64, EstimateError> {
    let (cfg_env, mut tx) = call_env(&cfg, &env, &req)?;
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
    let mut evm = build_evm(db, cfg_env, env.block_env(cfg.spec), precompiles);

    tx.gas_limit = hi;
    let gas_used = match run(&mut evm, tx.clone())? {
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
    let mut lo = gas_used.max(MIN_TRANSACTION_GAS) - 1;
    let succeeds = |evm: &mut InferaEvm<S, P>, gas: u64| -> Result<bool> {
        let mut attempt = tx.clone();
        attempt.gas_limit = gas;
        match run(evm, attempt) {
            Ok(outcome) => Ok(outcome.is_success()),
            Err(EvmError::InvalidTransaction(_)) => Ok(false),
            Err(other) => Err(other),
        }
    };
    // Most calls need a little above what they used (the 63/64 rule): try that first.
    let optimistic = (gas_used + gas_used / 63 + 2_300).min(hi);
    if optimistic > lo && optimistic < hi {
        if succeeds(&mut evm, optimistic)? {
            hi = optimistic;
        } else {
            lo = optimistic;
        }
    }
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if succeeds(&mut evm, mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}
