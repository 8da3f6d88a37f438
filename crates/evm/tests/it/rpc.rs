//! `call`, `estimate_gas`, raw decoding and pool validation.

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, address};
use infera_evm::{
    BlockExecutor, CallOutcome, CallRequest, EvmError, InvalidTransaction, call,
    decode_raw_transaction, estimate_gas, validate_transaction,
};
use infera_primitives::Account;

use crate::common::*;

const CONTRACT: Address = address!("0x00000000000000000000000000000000000c0de0");

fn state() -> MemState {
    MemState::default()
        .with_account(sender(), ONE_ETHER)
        .with_code(CONTRACT, store_and_log_runtime())
}

#[test]
fn call_returns_revert_data_and_success_logs() {
    let state = state();
    let req = CallRequest {
        to: Some(CONTRACT),
        ..Default::default()
    };
    match call(&state, config(), block_env(), req).unwrap() {
        CallOutcome::Revert { output, gas_used } => {
            assert_eq!(output, Bytes::from(B256::with_last_byte(42).to_vec()));
            assert!(gas_used > 21_000);
        }
        other => panic!("expected a revert, got {other:?}"),
    }
    let req = CallRequest {
        to: Some(CONTRACT),
        input: B256::with_last_byte(9).to_vec().into(),
        ..Default::default()
    };
    match call(&state, config(), block_env(), req).unwrap() {
        CallOutcome::Success { logs, .. } => assert_eq!(logs.len(), 1),
        other => panic!("expected success, got {other:?}"),
    }
    // Nothing was kept.
    assert!(state.storage.is_empty());
}

#[test]
fn estimate_gas_is_the_least_that_succeeds() {
    let state = state();
    let input: Bytes = B256::with_last_byte(9).to_vec().into();
    let req = CallRequest {
        from: Some(sender()),
        to: Some(CONTRACT),
        input: input.clone(),
        ..Default::default()
    };
    let estimate = estimate_gas(&state, config(), block_env(), req).unwrap();
    assert!(estimate > 21_000);

    let run = |gas: u64| {
        let mut executor = BlockExecutor::new(&state, config(), block_env()).unwrap();
        let tx = eip1559(0, TxKind::Call(CONTRACT), 0, gas, input.clone());
        executor.execute_transaction(&tx).unwrap().clone()
    };
    assert!(run(estimate).status(), "estimate {estimate} must succeed");
    assert!(!run(estimate - 1).status(), "estimate - 1 must fail");

    // A plain transfer is 21000.
    let req = CallRequest {
        from: Some(sender()),
        to: Some(address!("0x00000000000000000000000000000000000000aa")),
        value: Some(U256::from(1)),
        ..Default::default()
    };
    assert_eq!(
        estimate_gas(&state, config(), block_env(), req).unwrap(),
        21_000
    );
}

#[test]
fn estimate_gas_reports_revert_data() {
    let req = CallRequest {
        to: Some(CONTRACT),
        ..Default::default()
    };
    match estimate_gas(state(), config(), block_env(), req) {
        Err(EvmError::Revert { output }) => {
            assert_eq!(output, Bytes::from(B256::with_last_byte(42).to_vec()))
        }
        other => panic!("expected a revert, got {other:?}"),
    }
}

#[test]
fn raw_transactions_decode_and_recover() {
    let tx = eip1559(3, TxKind::Call(CONTRACT), 1, 21_000, Bytes::new());
    let raw = tx.tx.encoded_2718();
    let decoded = decode_raw_transaction(&raw).unwrap();
    assert_eq!(decoded, tx);
    assert_eq!(decoded.sender, sender());
    assert_eq!(decoded.hash, alloy_primitives::keccak256(&raw));

    let mut trailing = raw.clone();
    trailing.push(0);
    assert!(
        decode_raw_transaction(&trailing)
            .unwrap_err()
            .to_string()
            .contains("trailing")
    );
    let error = decode_raw_transaction(&[0x05, 0xc0])
        .unwrap_err()
        .to_string();
    assert!(error.contains("unsupported transaction type"), "{error}");
    let error = decode_raw_transaction(&raw[..raw.len() - 3])
        .unwrap_err()
        .to_string();
    assert!(error.contains("RLP"), "{error}");
    assert!(decode_raw_transaction(&[]).is_err());
}

#[test]
fn pool_validation() {
    let account = Some(Account {
        nonce: 2,
        ..Account::with_balance(U256::from(ONE_ETHER))
    });
    let ok = eip1559(2, TxKind::Call(CONTRACT), 1, 21_000, Bytes::new());
    validate_transaction(&ok, CHAIN_ID, account, BASE_FEE, BLOCK_GAS_LIMIT).unwrap();
    // Future nonces are the pool's business.
    let future = eip1559(9, TxKind::Call(CONTRACT), 1, 21_000, Bytes::new());
    validate_transaction(&future, CHAIN_ID, account, BASE_FEE, BLOCK_GAS_LIMIT).unwrap();

    let stale = eip1559(1, TxKind::Call(CONTRACT), 1, 21_000, Bytes::new());
    assert_eq!(
        validate_transaction(&stale, CHAIN_ID, account, BASE_FEE, BLOCK_GAS_LIMIT),
        Err(InvalidTransaction::NonceTooLow { tx: 1, state: 2 })
    );
    assert_eq!(
        validate_transaction(&ok, 1, account, BASE_FEE, BLOCK_GAS_LIMIT),
        Err(InvalidTransaction::WrongChainId {
            tx: CHAIN_ID,
            expected: 1
        })
    );
    let poor = Some(Account {
        nonce: 2,
        ..Account::with_balance(U256::from(1000))
    });
    assert!(matches!(
        validate_transaction(&ok, CHAIN_ID, poor, BASE_FEE, BLOCK_GAS_LIMIT),
        Err(InvalidTransaction::InsufficientFunds { .. })
    ));
    assert_eq!(
        validate_transaction(&ok, CHAIN_ID, account, 11, BLOCK_GAS_LIMIT),
        Err(InvalidTransaction::FeeCapBelowBaseFee {
            max_fee: 10,
            base_fee: 11
        })
    );
    let calldata = eip1559(2, TxKind::Call(CONTRACT), 1, 21_100, vec![1u8; 10].into());
    assert_eq!(
        validate_transaction(&calldata, CHAIN_ID, account, BASE_FEE, BLOCK_GAS_LIMIT),
        Err(InvalidTransaction::IntrinsicGasTooLow {
            gas_limit: 21_100,
            intrinsic_gas: 21_400
        })
    );
    let huge = eip1559(2, TxKind::Call(CONTRACT), 1, (1 << 24) + 1, Bytes::new());
    assert_eq!(
        validate_transaction(&huge, CHAIN_ID, account, BASE_FEE, 60_000_000),
        Err(InvalidTransaction::GasLimitAboveCap {
            gas_limit: (1 << 24) + 1,
            cap: 1 << 24
        })
    );
    assert!(matches!(
        validate_transaction(&huge, CHAIN_ID, account, BASE_FEE, 100_000),
        Err(InvalidTransaction::GasLimitAboveBlockLimit { .. })
    ));
    let initcode = eip1559(2, TxKind::Create, 0, 10_000_000, vec![0u8; 49_153].into());
    assert!(matches!(
        validate_transaction(&initcode, CHAIN_ID, account, BASE_FEE, BLOCK_GAS_LIMIT),
        Err(InvalidTransaction::InitCodeTooLarge { .. })
    ));
}
