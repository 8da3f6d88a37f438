//! Admission checks for the pool: everything that makes a transaction
//! invalid against a state, without executing it.

use alloy_consensus::{Transaction as _, TxEnvelope};
use alloy_primitives::U256;
use infera_primitives::{Account, RecoveredTx};
use revm::{
    context_interface::cfg::gas::calculate_initial_tx_gas, primitives::eip3860::MAX_INITCODE_SIZE,
};

use crate::{ExecutionConfig, SpecId, error::InvalidTransaction};

/// Gas a transaction needs before any code runs: the intrinsic gas (base,
/// calldata per EIP-2028, access list per EIP-2930, init code per EIP-3860,
/// authorizations per EIP-7702) or, when higher, the EIP-7623 calldata floor.
pub fn intrinsic_gas(tx: &TxEnvelope, spec: SpecId) -> u64 {
    let (accounts, slots) = tx.access_list().map_or((0, 0), |list| {
        (
            list.len() as u64,
            list.iter().map(|item| item.storage_keys.len() as u64).sum(),
        )
    });
    let authorizations = tx.authorization_list().map_or(0, |list| list.len() as u64);
    let gas = calculate_initial_tx_gas(
        spec,
        tx.input(),
        tx.kind().is_create(),
        accounts,
        slots,
        authorizations,
        None,
    );
    (gas.initial_regular_gas + gas.initial_state_gas).max(gas.floor_gas)
}

/// The pool's admission check under the newest fork
/// ([`validate_transaction_with_config`] with `SpecId::default()`).
pub fn validate_transaction(
    tx: &RecoveredTx,
    chain_id: u64,
    sender: Option<Account>,
    base_fee: u64,
    block_gas_limit: u64,
) -> Result<(), InvalidTransaction> {
    let cfg = ExecutionConfig {
        chain_id,
        spec: SpecId::default(),
    };
    validate_transaction_with_config(tx, &cfg, sender, base_fee, block_gas_limit)
}

/// The pool's admission check: transaction type, chain id, gas limit (block
/// limit and the EIP-7825 cap), intrinsic gas, init code size, fees (tip not
/// above max fee, max fee not below `base_fee`), nonce not below the sender's,
/// and a balance that covers `gas_limit * max_fee + value`. The signature is
/// already recovered. A nonce above the sender's is fine (the pool queues it).
pub fn validate_transaction_with_config(
    tx: &RecoveredTx,
    cfg: &ExecutionConfig,
    sender: Option<Account>,
    base_fee: u64,
    block_gas_limit: u64,
) -> Result<(), InvalidTransaction> {
    let envelope = &tx.tx;
    let spec = cfg.spec;
    let type_fork = match envelope {
        TxEnvelope::Legacy(_) => SpecId::FRONTIER,
        TxEnvelope::Eip2930(_) => SpecId::BERLIN,
        TxEnvelope::Eip1559(_) => SpecId::LONDON,
        TxEnvelope::Eip4844(_) => return Err(InvalidTransaction::BlobTransactionUnsupported),
        TxEnvelope::Eip7702(_) => SpecId::PRAGUE,
    };
    if !spec.is_enabled_in(type_fork) {
        return Err(InvalidTransaction::TypeNotSupported(
            envelope.tx_type() as u8
        ));
    }
    if let Some(chain_id) = envelope.chain_id()
        && chain_id != cfg.chain_id
    {
        return Err(InvalidTransaction::WrongChainId {
            tx: chain_id,
            expected: cfg.chain_id,
        });
    }

    let gas_limit = envelope.gas_limit();
    if gas_limit > block_gas_limit {
        return Err(InvalidTransaction::GasLimitAboveBlockLimit {
            gas_limit,
            block_gas_limit,
        });
    }
    if let Some(cap) = cfg.tx_gas_limit_cap()
        && gas_limit > cap
    {
        return Err(InvalidTransaction::GasLimitAboveCap { gas_limit, cap });
    }
    let intrinsic_gas = intrinsic_gas(envelope, spec);
    if gas_limit < intrinsic_gas {
        return Err(InvalidTransaction::IntrinsicGasTooLow {
            gas_limit,
            intrinsic_gas,
        });
    }
    if envelope.kind().is_create()
        && spec.is_enabled_in(SpecId::SHANGHAI)
        && envelope.input().len() > MAX_INITCODE_SIZE
    {
        return Err(InvalidTransaction::InitCodeTooLarge {
            size: envelope.input().len(),
            limit: MAX_INITCODE_SIZE,
        });
    }
    if let TxEnvelope::Eip7702(signed) = envelope
        && signed.tx().authorization_list.is_empty()
    {
        return Err(InvalidTransaction::EmptyAuthorizationList);
    }

    let max_fee = envelope.max_fee_per_gas();
    if let Some(tip) = envelope.max_priority_fee_per_gas()
        && tip > max_fee
    {
        return Err(InvalidTransaction::TipAboveFeeCap { tip, max_fee });
    }
    if max_fee < u128::from(base_fee) {
        return Err(InvalidTransaction::FeeCapBelowBaseFee { max_fee, base_fee });
    }

    let account = sender.unwrap_or_default();
    if envelope.nonce() < account.nonce {
        return Err(InvalidTransaction::NonceTooLow {
            tx: envelope.nonce(),
            state: account.nonce,
        });
    }
    if account.nonce == u64::MAX {
        return Err(InvalidTransaction::NonceOverflow);
    }
    let cost = U256::from(gas_limit)
        .checked_mul(U256::from(max_fee))
        .and_then(|gas_cost| gas_cost.checked_add(envelope.value()))
        .ok_or(InvalidTransaction::CostOverflow)?;
    if cost > account.balance {
        return Err(InvalidTransaction::InsufficientFunds {
            balance: account.balance,
            cost,
        });
    }
    Ok(())
}
