//! Block execution: transfers, contracts, reverts, invalid transactions, state changes.

use alloy_consensus::TxReceipt;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, address};
use infera_evm::{BlockExecutor, EvmError, InvalidTransaction};

use crate::common::*;

const RECIPIENT: Address = address!("0x00000000000000000000000000000000000000aa");

fn invalid(result: Result<impl std::fmt::Debug, EvmError>) -> InvalidTransaction {
    match result {
        Err(EvmError::InvalidTransaction(invalid)) => invalid,
        other => panic!("expected an invalid transaction, got {other:?}"),
    }
}

#[test]
fn transfer_moves_balance_and_pays_priority_fee() {
    let state = MemState::default().with_account(sender(), ONE_ETHER);
    let tx = eip1559(0, TxKind::Call(RECIPIENT), 1_000, 21_000, Bytes::new());
    let mut executor = BlockExecutor::new(&state, config(), block_env()).unwrap();
    let receipt = executor.execute_transaction(&tx).unwrap().clone();
    assert!(receipt.status());
    assert_eq!(receipt.cumulative_gas_used(), 21_000);
    assert_eq!(executor.gas_used(), 21_000);
    let outcome = executor.finish();
    assert_eq!(outcome.gas_used, 21_000);
    assert_eq!(outcome.tx_gas_used, vec![21_000]);

    let changes = &outcome.changes.accounts;
    // max fee 10, tip 2, base fee 7: price 9, of which 2 to the coinbase.
    let sender_after = changes[&sender()].info.unwrap();
    assert_eq!(
        sender_after.balance,
        U256::from(ONE_ETHER - 21_000 * 9 - 1_000)
    );
    assert_eq!(sender_after.nonce, 1);
    assert_eq!(changes[&RECIPIENT].info.unwrap().balance, U256::from(1_000));
    assert_eq!(
        changes[&COINBASE].info.unwrap().balance,
        U256::from(21_000 * 2)
    );
    assert_eq!(changes.len(), 3);
    assert!(outcome.changes.contracts.is_empty());
}

#[test]
fn legacy_eip155_and_pre155_transfers_execute() {
    let state = MemState::default().with_account(sender(), ONE_ETHER);
    let mut executor = BlockExecutor::new(&state, config(), block_env()).unwrap();
    executor
        .execute_transaction(&legacy(0, RECIPIENT, 5, 8, Some(CHAIN_ID)))
        .unwrap();
    executor
        .execute_transaction(&legacy(1, RECIPIENT, 5, 8, None))
        .unwrap();
    let outcome = executor.finish();
    assert_eq!(
        outcome.changes.accounts[&RECIPIENT].info.unwrap().balance,
        U256::from(10)
    );
    // Legacy: tip = gas price - base fee = 1.
    assert_eq!(
        outcome.changes.accounts[&COINBASE].info.unwrap().balance,
        U256::from(2 * 21_000)
    );
}

#[test]
fn create_then_call_writes_storage_and_logs() {
    let mut state = MemState::default().with_account(sender(), ONE_ETHER);
    let runtime = store_and_log_runtime();
    let contract = sender().create(0);

    let mut executor = BlockExecutor::new(&state, config(), block_env()).unwrap();
    let create = eip1559(0, TxKind::Create, 0, 200_000, init_code(&runtime));
    assert!(executor.execute_transaction(&create).unwrap().status());
    // The second transaction of the block sees the contract of the first.
    let word = B256::with_last_byte(0x77);
    let call = eip1559(
        1,
        TxKind::Call(contract),
        0,
        100_000,
        Bytes::copy_from_slice(word.as_slice()),
    );
    let receipt = executor.execute_transaction(&call).unwrap().clone();
    assert!(receipt.status());
    let logs = receipt.logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].address, contract);
    assert_eq!(logs[0].topics(), &[B256::with_last_byte(0xaa)]);
    assert_eq!(logs[0].data.data.as_ref(), word.as_slice());
    assert!(
        receipt
            .bloom()
            .contains_input(alloy_primitives::BloomInput::Raw(contract.as_slice()))
    );

    let outcome = executor.finish();
    assert!(
        outcome
            .logs_bloom
            .contains_input(alloy_primitives::BloomInput::Raw(contract.as_slice()))
    );
    let change = &outcome.changes.accounts[&contract];
    let info = change.info.unwrap();
    assert_eq!(info.code_hash, alloy_primitives::keccak256(&runtime));
    assert_eq!(info.nonce, 1);
    assert_eq!(change.storage.get(&U256::ZERO), Some(&U256::from(0x77)));
    assert_eq!(change.storage.len(), 1);
    assert_eq!(outcome.changes.contracts[&info.code_hash], runtime);
    assert_eq!(outcome.receipts[1].cumulative_gas_used(), outcome.gas_used);

    // A later block on the applied state reads code and storage back.
    state.apply(&outcome.changes);
    assert_eq!(state.storage[&(contract, U256::ZERO)], U256::from(0x77));
    let mut next = BlockExecutor::new(&state, config(), block_env()).unwrap();
    let zero = eip1559(
        2,
        TxKind::Call(contract),
        0,
        100_000,
        B256::ZERO.to_vec().into(),
    );
    assert!(next.execute_transaction(&zero).unwrap().status());
    let outcome = next.finish();
    // Slot 0 goes back to zero: a delete.
    assert_eq!(
        outcome.changes.accounts[&contract].storage.get(&U256::ZERO),
        Some(&U256::ZERO)
    );
    assert!(!outcome.changes.accounts[&contract].storage_wiped);
}

#[test]
fn revert_has_status_zero_and_consumes_gas() {
    let contract = address!("0x00000000000000000000000000000000000c0de0");
    let state = MemState::default()
        .with_account(sender(), ONE_ETHER)
        .with_code(contract, store_and_log_runtime());
    let mut executor = BlockExecutor::new(&state, config(), block_env()).unwrap();
    let tx = eip1559(0, TxKind::Call(contract), 0, 100_000, Bytes::new());
    let receipt = executor.execute_transaction(&tx).unwrap().clone();
    assert!(!receipt.status());
    assert!(receipt.logs().is_empty());
    let used = receipt.cumulative_gas_used();
    assert!(used > 21_000 && used < 100_000, "gas used {used}");
    let outcome = executor.finish();
    let sender_after = outcome.changes.accounts[&sender()].info.unwrap();
    assert_eq!(sender_after.nonce, 1);
    assert_eq!(
        sender_after.balance,
        U256::from(ONE_ETHER - u128::from(used) * 9)
    );
    // The contract's storage is untouched.
    assert!(!outcome.changes.accounts.contains_key(&contract));
}

#[test]
fn invalid_transactions_are_rejected_and_change_nothing() {
    let state = MemState::default().with_account(sender(), ONE_ETHER);
    let mut executor = BlockExecutor::new(&state, config(), block_env()).unwrap();
    executor
        .execute_transaction(&eip1559(
            0,
            TxKind::Call(RECIPIENT),
            1,
            21_000,
            Bytes::new(),
        ))
        .unwrap();

    let low = invalid(executor.execute_transaction(&eip1559(
        0,
        TxKind::Call(RECIPIENT),
        1,
        21_000,
        Bytes::new(),
    )));
    assert_eq!(low, InvalidTransaction::NonceTooLow { tx: 0, state: 1 });
    assert_eq!(low.to_string(), "nonce too low: tx 0, state 1");

    let high = invalid(executor.execute_transaction(&eip1559(
        5,
        TxKind::Call(RECIPIENT),
        1,
        21_000,
        Bytes::new(),
    )));
    assert_eq!(high, InvalidTransaction::NonceTooHigh { tx: 5, state: 1 });

    let funds = invalid(executor.execute_transaction(&eip1559(
        1,
        TxKind::Call(RECIPIENT),
        ONE_ETHER,
        21_000,
        Bytes::new(),
    )));
    assert!(
        matches!(funds, InvalidTransaction::InsufficientFunds { .. }),
        "{funds}"
    );
    assert!(funds.to_string().starts_with("insufficient funds"));

    let cheap = invalid(executor.execute_transaction(&legacy(1, RECIPIENT, 1, 6, Some(CHAIN_ID))));
    assert_eq!(
        cheap,
        InvalidTransaction::FeeCapBelowBaseFee {
            max_fee: 6,
            base_fee: BASE_FEE
        }
    );

    let chain = invalid(executor.execute_transaction(&legacy(1, RECIPIENT, 1, 8, Some(1))));
    assert_eq!(
        chain,
        InvalidTransaction::WrongChainId {
            tx: 1,
            expected: CHAIN_ID
        }
    );

    let intrinsic = invalid(executor.execute_transaction(&eip1559(
        1,
        TxKind::Call(RECIPIENT),
        1,
        20_000,
        Bytes::new(),
    )));
    assert_eq!(
        intrinsic,
        InvalidTransaction::IntrinsicGasTooLow {
            gas_limit: 20_000,
            intrinsic_gas: 21_000
        }
    );

    let too_big = invalid(executor.execute_transaction(&eip1559(
        1,
        TxKind::Call(RECIPIENT),
        1,
        BLOCK_GAS_LIMIT,
        Bytes::new(),
    )));
    assert!(
        matches!(
            too_big,
            InvalidTransaction::GasLimitAboveBlockRemaining { .. }
        ),
        "{too_big}"
    );

    // Only the first transaction happened.
    assert_eq!(executor.receipts().len(), 1);
    assert_eq!(executor.gas_used(), 21_000);
    let outcome = executor.finish();
    assert_eq!(outcome.changes.accounts[&sender()].info.unwrap().nonce, 1);
    assert_eq!(
        outcome.changes.accounts[&RECIPIENT].info.unwrap().balance,
        U256::from(1)
    );
}

#[test]
fn selfdestruct_in_creating_transaction_deletes_account() {
    let contract = sender().create(0);
    // Pre-funded address: the account exists before the block.
    let state = MemState::default()
        .with_account(sender(), ONE_ETHER)
        .with_account(contract, 5);
    // Constructor: sstore(0, 1); selfdestruct(RECIPIENT).
    let mut init = vec![0x60, 0x01, 0x60, 0x00, 0x55, 0x73];
    init.extend_from_slice(RECIPIENT.as_slice());
    init.push(0xff);
    let mut executor = BlockExecutor::new(&state, config(), block_env()).unwrap();
    let tx = eip1559(0, TxKind::Create, 0, 200_000, init.into());
    assert!(executor.execute_transaction(&tx).unwrap().status());
    let outcome = executor.finish();
    let change = &outcome.changes.accounts[&contract];
    assert_eq!(change.info, None);
    assert!(change.storage_wiped);
    assert!(change.storage.is_empty());
    assert_eq!(
        outcome.changes.accounts[&RECIPIENT].info.unwrap().balance,
        U256::from(5)
    );
    assert!(outcome.changes.contracts.is_empty());
}

#[test]
fn blob_transactions_are_rejected() {
    use alloy_consensus::{TxEip4844, TxEnvelope};
    let tx = TxEip4844 {
        chain_id: CHAIN_ID,
        gas_limit: 21_000,
        max_fee_per_gas: 10,
        ..Default::default()
    };
    let signed = sign(tx);
    assert!(matches!(signed, TxEnvelope::Eip4844(_)));
    let error = infera_evm::recover(signed).unwrap_err();
    assert!(error.to_string().contains("EIP-4844"), "{error}");
}

#[test]
fn history_system_call_runs_only_where_deployed() {
    use alloy_eips::eip2935::HISTORY_STORAGE_ADDRESS;
    let parent = B256::repeat_byte(0x11);
    let env = infera_evm::BlockEnvInput {
        parent_hash: parent,
        ..block_env()
    };
    // Not deployed: nothing happens.
    let state = MemState::default();
    let outcome = BlockExecutor::new(&state, config(), env).unwrap().finish();
    assert!(outcome.changes.accounts.is_empty());
    // Deployed (a stand-in: `sstore(0, calldataload(0))`): the parent hash is stored.
    let code = Bytes::from_static(&[0x60, 0x00, 0x35, 0x60, 0x00, 0x55, 0x00]);
    let state = MemState::default().with_code(HISTORY_STORAGE_ADDRESS, code);
    let outcome = BlockExecutor::new(&state, config(), env).unwrap().finish();
    let change = &outcome.changes.accounts[&HISTORY_STORAGE_ADDRESS];
    assert_eq!(change.storage[&U256::ZERO], U256::from_be_bytes(parent.0));
    assert!(
        !outcome
            .changes
            .accounts
            .contains_key(&revm_system_address())
    );
    assert_eq!(outcome.gas_used, 0);
}

fn revm_system_address() -> Address {
    address!("0xfffffffffffffffffffffffffffffffffffffffe")
}

#[test]
fn slot_written_back_to_its_value_is_not_a_change() {
    let contract = address!("0x00000000000000000000000000000000000c0de0");
    let mut state = MemState::default()
        .with_account(sender(), ONE_ETHER)
        .with_code(contract, store_and_log_runtime());
    state.storage.insert((contract, U256::ZERO), U256::from(5));
    let mut executor = BlockExecutor::new(&state, config(), block_env()).unwrap();
    let set = |nonce, value: u8| {
        eip1559(
            nonce,
            TxKind::Call(contract),
            0,
            100_000,
            B256::with_last_byte(value).to_vec().into(),
        )
    };
    executor.execute_transaction(&set(0, 9)).unwrap();
    executor.execute_transaction(&set(1, 5)).unwrap();
    let outcome = executor.finish();
    assert!(
        !outcome.changes.accounts.contains_key(&contract),
        "{:?}",
        outcome.changes.accounts.get(&contract)
    );
}
