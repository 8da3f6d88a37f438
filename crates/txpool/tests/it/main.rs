//! Integration tests of the transaction pool.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_primitives::{Address, Signature, TxKind, U256, address};
use infera_primitives::RecoveredTx;
use infera_txpool::{PoolConfig, PoolError, TxPool, TxStatus};

const ALICE: Address = address!("0x000000000000000000000000000000000000a11c");
const BOB: Address = address!("0x0000000000000000000000000000000000000b0b");
const CAROL: Address = address!("0x00000000000000000000000000000000000ca201");
const BASE_FEE: u64 = 10;
const RICH: U256 = U256::MAX;

/// An unsigned-for-real transaction with a given sender (the pool trusts the sender).
fn tx(sender: Address, nonce: u64, max_fee: u128, tip: u128) -> RecoveredTx {
    let inner = TxEip1559 {
        chain_id: 1,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: tip,
        to: TxKind::Call(sender),
        ..Default::default()
    };
    let signed = inner.into_signed(Signature::test_signature());
    let hash = *signed.hash();
    RecoveredTx {
        tx: TxEnvelope::from(signed),
        sender,
        hash,
    }
}

fn order(pool: &TxPool) -> Vec<(Address, u64)> {
    use alloy_consensus::Transaction;
    pool.best_transactions(BASE_FEE)
        .iter()
        .map(|t| (t.sender, t.tx.nonce()))
        .collect()
}

#[test]
fn best_transactions_order_by_effective_tip_keeping_nonce_order() {
    let mut pool = TxPool::new(PoolConfig::default());
    pool.add(tx(ALICE, 0, 100, 1), 0, RICH, BASE_FEE).unwrap();
    pool.add(tx(ALICE, 1, 100, 50), 0, RICH, BASE_FEE).unwrap();
    pool.add(tx(BOB, 0, 100, 5), 0, RICH, BASE_FEE).unwrap();
    // Tip 40 but max fee leaves only 12 above the base fee.
    pool.add(tx(CAROL, 0, 22, 40), 0, RICH, BASE_FEE).unwrap();
    assert_eq!(
        order(&pool),
        vec![(CAROL, 0), (BOB, 0), (ALICE, 0), (ALICE, 1)]
    );
    // At a base fee of 25, Carol's max fee is too low: skipped.
    let at_25: Vec<Address> = pool
        .best_transactions(25)
        .iter()
        .map(|t| t.sender)
        .collect();
    assert_eq!(at_25, vec![BOB, ALICE, ALICE]);
}

#[test]
fn nonce_gaps_are_queued_then_promoted() {
    let mut pool = TxPool::new(PoolConfig::default());
    assert_eq!(
        pool.add(tx(ALICE, 2, 100, 1), 0, RICH, BASE_FEE)
            .unwrap()
            .status,
        TxStatus::Queued
    );
    assert_eq!(
        pool.add(tx(ALICE, 3, 100, 1), 0, RICH, BASE_FEE)
            .unwrap()
            .status,
        TxStatus::Queued
    );
    assert_eq!((pool.pending_count(), pool.queued_count()), (0, 2));
    assert_eq!(pool.pending_nonce(ALICE), None);
    assert!(order(&pool).is_empty());

    let first = pool.add(tx(ALICE, 0, 100, 1), 0, RICH, BASE_FEE).unwrap();
    assert_eq!(first.status, TxStatus::Pending);
    assert!(first.promoted.is_empty());
    let gap = pool.add(tx(ALICE, 1, 100, 1), 0, RICH, BASE_FEE).unwrap();
    assert_eq!(gap.status, TxStatus::Pending);
    assert_eq!(gap.promoted.len(), 2);
    assert_eq!((pool.pending_count(), pool.queued_count()), (4, 0));
    assert_eq!(pool.pending_nonce(ALICE), Some(4));
    assert_eq!(
        order(&pool),
        vec![(ALICE, 0), (ALICE, 1), (ALICE, 2), (ALICE, 3)]
    );
}

#[test]
fn duplicates_and_stale_nonces_are_rejected() {
    let mut pool = TxPool::new(PoolConfig::default());
    let t = tx(ALICE, 5, 100, 1);
    pool.add(t.clone(), 5, RICH, BASE_FEE).unwrap();
    assert_eq!(
        pool.add(t.clone(), 5, RICH, BASE_FEE),
        Err(PoolError::AlreadyKnown(t.hash))
    );
    assert_eq!(
        pool.add(tx(ALICE, 4, 100, 1), 5, RICH, BASE_FEE),
        Err(PoolError::NonceTooLow { tx: 4, state: 5 })
    );
    assert!(pool.contains(&t.hash));
    assert_eq!(pool.get(&t.hash), Some(&t));
}

#[test]
fn replacement_needs_a_price_bump_on_both_fees() {
    let mut pool = TxPool::new(PoolConfig::default());
    let original = tx(ALICE, 0, 100, 10);
    pool.add(original.clone(), 0, RICH, BASE_FEE).unwrap();
    let error = pool
        .add(tx(ALICE, 0, 109, 11), 0, RICH, BASE_FEE)
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("replacement transaction underpriced"),
        "{error}"
    );
    assert!(matches!(
        pool.add(tx(ALICE, 0, 200, 10), 0, RICH, BASE_FEE),
        Err(PoolError::ReplacementUnderpriced { .. })
    ));
    let better = tx(ALICE, 0, 110, 11);
    let outcome = pool.add(better.clone(), 0, RICH, BASE_FEE).unwrap();
    assert_eq!(outcome.replaced, Some(original.hash));
    assert_eq!(outcome.status, TxStatus::Pending);
    assert!(!pool.contains(&original.hash));
    assert!(pool.contains(&better.hash));
    assert_eq!(pool.len(), 1);
}

#[test]
fn bounds_per_sender_and_total() {
    // Room for 3: 2 pending slots and 1 queued.
    let config = PoolConfig {
        account_slots: 2,
        global_slots: 2,
        account_queue: 1,
        global_queue: 1,
        ..Default::default()
    };
    let mut pool = TxPool::new(config);
    pool.add(tx(ALICE, 0, 100, 5), 0, RICH, BASE_FEE).unwrap();
    pool.add(tx(ALICE, 1, 100, 5), 0, RICH, BASE_FEE).unwrap();
    // Beyond Alice's 2 slots, nonce 2 waits; nonce 3 exceeds her queue.
    assert_eq!(
        pool.add(tx(ALICE, 2, 100, 5), 0, RICH, BASE_FEE)
            .unwrap()
            .status,
        TxStatus::Queued
    );
    assert_eq!(
        pool.add(tx(ALICE, 3, 100, 5), 0, RICH, BASE_FEE),
        Err(PoolError::SenderLimit {
            sender: ALICE,
            limit: 1,
            next_nonce: 3
        })
    );
    // Full: a pending newcomer evicts the queued transaction.
    let outcome = pool.add(tx(CAROL, 0, 100, 3), 0, RICH, BASE_FEE).unwrap();
    assert_eq!(outcome.evicted, vec![tx(ALICE, 2, 100, 5).hash]);
    assert_eq!(pool.len(), 3);
    // Full of pending: a newcomer paying less than the cheapest is rejected...
    assert_eq!(
        pool.add(tx(BOB, 0, 100, 2), 0, RICH, BASE_FEE),
        Err(PoolError::PoolFull)
    );
    assert_eq!(
        pool.add(tx(BOB, 0, 100, 2), 0, RICH, BASE_FEE)
            .unwrap_err()
            .to_string(),
        "txpool is full"
    );
    // ...and one outbidding it by the price bump evicts the lowest-paying pending tail.
    let outcome = pool.add(tx(BOB, 0, 100, 9), 0, RICH, BASE_FEE).unwrap();
    assert_eq!(outcome.evicted, vec![tx(CAROL, 0, 100, 3).hash]);
    assert_eq!(pool.pending_nonce(CAROL), None);
    assert_eq!(pool.len(), 3);
}

#[test]
fn cumulative_cost_must_fit_the_balance() {
    let mut pool = TxPool::new(PoolConfig::default());
    let one = U256::from(21_000u64 * 100);
    pool.add(tx(ALICE, 0, 100, 1), 0, one * U256::from(2), BASE_FEE)
        .unwrap();
    pool.add(tx(ALICE, 1, 100, 1), 0, one * U256::from(2), BASE_FEE)
        .unwrap();
    assert!(matches!(
        pool.add(tx(ALICE, 2, 100, 1), 0, one * U256::from(2), BASE_FEE),
        Err(PoolError::InsufficientFunds { .. })
    ));
}

#[test]
fn new_block_removes_mined_and_stale_and_promotes() {
    let mut pool = TxPool::new(PoolConfig::default());
    let a0 = tx(ALICE, 0, 100, 1);
    let a1 = tx(ALICE, 1, 100, 1);
    let a3 = tx(ALICE, 3, 100, 1);
    let b0 = tx(BOB, 0, 100, 1);
    for t in [&a0, &a1, &a3, &b0] {
        pool.add(t.clone(), 0, RICH, BASE_FEE).unwrap();
    }
    assert_eq!((pool.pending_count(), pool.queued_count()), (3, 1));
    // a0 mined; a1 replaced by another tx in the block (Alice's nonce is now 3); Bob unchanged.
    let removed = pool.on_new_block(&[a0.hash], |sender| if sender == ALICE { 3 } else { 0 });
    assert_eq!(removed.len(), 2);
    assert!(!pool.contains(&a1.hash));
    assert_eq!((pool.pending_count(), pool.queued_count()), (2, 0));
    assert_eq!(pool.pending_nonce(ALICE), Some(4));
    assert_eq!(pool.all_pending().len(), 2);
}

#[test]
fn remove_invalid_drops_descendants() {
    let mut pool = TxPool::new(PoolConfig::default());
    let txs: Vec<_> = (0..4).map(|n| tx(ALICE, n, 100, 1)).collect();
    for t in &txs {
        pool.add(t.clone(), 0, RICH, BASE_FEE).unwrap();
    }
    pool.add(tx(BOB, 0, 100, 1), 0, RICH, BASE_FEE).unwrap();
    let removed = pool.remove_invalid(txs[1].hash);
    assert_eq!(removed, vec![txs[1].hash, txs[2].hash, txs[3].hash]);
    assert_eq!(pool.pending_nonce(ALICE), Some(1));
    assert_eq!(pool.len(), 2);
    assert!(pool.remove_invalid(txs[1].hash).is_empty());
}
