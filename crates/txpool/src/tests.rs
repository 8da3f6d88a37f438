//! Unit tests of the bounds: gap filling with full queues, eviction order,
//! expiry, and the limits themselves (checked against the pool's internals
//! after every step).

use std::{sync::Arc, time::Duration};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_primitives::{Address, Signature, TxKind, U256};

use super::*;

const BASE_FEE: u64 = 10;
const RICH: U256 = U256::MAX;
const LIFETIME: Duration = Duration::from_secs(3 * 60 * 60);

fn who(n: u8) -> Address {
    Address::with_last_byte(n)
}

fn tx(sender: Address, nonce: u64, tip: u128) -> RecoveredTx {
    with_input(sender, nonce, tip, 1_000, 0)
}

fn with_input(
    sender: Address,
    nonce: u64,
    tip: u128,
    max_fee: u128,
    input_len: usize,
) -> RecoveredTx {
    let inner = TxEip1559 {
        chain_id: 1,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: tip,
        to: TxKind::Call(sender),
        input: vec![0xab; input_len].into(),
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

/// A transaction whose EIP-2718 encoding is exactly `size` bytes (at least
/// ~120), with a max fee that grows with the tip, so that a higher tip is a
/// valid replacement.
fn sized(sender: Address, nonce: u64, tip: u128, size: usize) -> RecoveredTx {
    let max_fee = 1_000 * (tip + 1);
    let empty = with_input(sender, nonce, tip, max_fee, 0);
    let mut input_len = size.saturating_sub(empty.tx.eip2718_encoded_length());
    // Length prefixes grow by a byte now and then: step down to the exact size.
    loop {
        let tx = with_input(sender, nonce, tip, max_fee, input_len);
        match tx.tx.eip2718_encoded_length().cmp(&size) {
            Ordering::Equal => return tx,
            Ordering::Greater => input_len -= 1,
            Ordering::Less => panic!("no input length encodes to {size} bytes"),
        }
    }
}

fn config(
    account_slots: usize,
    global_slots: usize,
    account_queue: usize,
    global_queue: usize,
) -> PoolConfig {
    PoolConfig {
        account_slots,
        global_slots,
        account_queue,
        global_queue,
        lifetime: LIFETIME,
        ..PoolConfig::default()
    }
}

fn pool_with(config: PoolConfig) -> (TxPool, ManualClock) {
    let clock = ManualClock::new();
    (TxPool::with_clock(config, Arc::new(clock.clone())), clock)
}

/// Adds at state nonce 0 and checks the invariants after.
fn add(pool: &mut TxPool, sender: Address, nonce: u64, tip: u128) -> Result<AddOutcome> {
    let outcome = pool.add(tx(sender, nonce, tip), 0, RICH, BASE_FEE);
    pool.check_invariants();
    outcome
}

fn nonces(pool: &TxPool, sender: Address) -> Vec<u64> {
    let mut all: Vec<u64> = pool
        .all_pending()
        .into_iter()
        .chain(pool.all_queued())
        .filter(|t| t.sender == sender)
        .map(|t| t.tx.nonce())
        .collect();
    all.sort_unstable();
    all
}

#[test]
fn gap_filler_is_admitted_when_the_senders_queue_is_full() {
    let (mut pool, _) = pool_with(config(256, 1_000, 64, 1_000));
    let a = who(1);
    for nonce in 1..=64 {
        assert_eq!(
            add(&mut pool, a, nonce, 1).unwrap().status,
            TxStatus::Queued
        );
    }
    // A 65th queued one is refused, and the error says what would unblock it.
    let error = add(&mut pool, a, 65, 1).unwrap_err();
    assert_eq!(
        error,
        PoolError::SenderLimit {
            sender: a,
            limit: 64,
            next_nonce: 0
        }
    );
    assert!(
        error.to_string().contains("send the missing nonce 0 first"),
        "{error}"
    );
    // The gap filler goes in and makes all 64 executable.
    let outcome = add(&mut pool, a, 0, 1).unwrap();
    assert_eq!(outcome.status, TxStatus::Pending);
    assert_eq!(outcome.promoted.len(), 64);
    assert!(outcome.evicted.is_empty());
    assert_eq!((pool.pending_count(), pool.queued_count()), (65, 0));
    assert_eq!(pool.pending_nonce(a), Some(65));
    assert_eq!(pool.best_transactions(BASE_FEE).len(), 65);
}

#[test]
fn lower_queued_nonce_displaces_the_senders_highest_when_its_queue_is_full() {
    let (mut pool, _) = pool_with(config(256, 1_000, 3, 1_000));
    let a = who(1);
    let high: Vec<_> = [5, 6, 7].iter().map(|n| tx(a, *n, 1)).collect();
    for t in &high {
        pool.add(t.clone(), 0, RICH, BASE_FEE).unwrap();
    }
    // Nonce 2 is closer to executable than 7: 7 goes.
    let outcome = add(&mut pool, a, 2, 1).unwrap();
    assert_eq!(outcome.evicted, vec![high[2].hash]);
    assert_eq!(nonces(&pool, a), vec![2, 5, 6]);
    // Nonce 9 is further than every queued one: refused.
    assert!(matches!(
        add(&mut pool, a, 9, 1),
        Err(PoolError::SenderLimit { limit: 3, .. })
    ));
    // Filling 0 and 1 promotes 2; the queue frees up again.
    add(&mut pool, a, 0, 1).unwrap();
    add(&mut pool, a, 1, 1).unwrap();
    assert_eq!((pool.pending_count(), pool.queued_count()), (3, 2));
    add(&mut pool, a, 9, 1).unwrap();
    assert_eq!(nonces(&pool, a), vec![0, 1, 2, 5, 6, 9]);
}

#[test]
fn gap_filler_evicts_the_worst_queued_of_a_full_pool() {
    // Capacity 4 + 4 = 8.
    let (mut pool, _) = pool_with(config(16, 4, 16, 4));
    let (a, b, c) = (who(1), who(2), who(3));
    // B: 3 queued, C: 1 queued, A: 4 pending. Full.
    for nonce in [10, 11, 12] {
        add(&mut pool, b, nonce, 1).unwrap();
    }
    add(&mut pool, c, 5, 1).unwrap();
    for nonce in 0..4 {
        add(&mut pool, a, nonce, 1).unwrap();
    }
    assert_eq!(pool.len(), 8);
    // Executable newcomers take the room of queued ones, worst first: the
    // highest nonce of the sender with the most queued.
    let outcome = add(&mut pool, a, 4, 1).unwrap();
    assert_eq!(outcome.evicted, vec![tx(b, 12, 1).hash]);
    let outcome = add(&mut pool, a, 5, 1).unwrap();
    assert_eq!(outcome.evicted, vec![tx(b, 11, 1).hash]);
    // B and C have one queued each now: ties go to the lowest address.
    let outcome = add(&mut pool, who(9), 0, 1).unwrap();
    assert_eq!(outcome.evicted, vec![tx(b, 10, 1).hash]);
    let outcome = add(&mut pool, who(9), 1, 1).unwrap();
    assert_eq!(outcome.evicted, vec![tx(c, 5, 1).hash]);
    assert_eq!(pool.queued_count(), 0);
    assert_eq!(pool.len(), 8);
}

#[test]
fn executable_newcomer_displaces_pending_only_by_outbidding() {
    let (mut pool, _) = pool_with(config(16, 2, 16, 1));
    let (a, b, stranger) = (who(1), who(2), who(3));
    add(&mut pool, a, 0, 100).unwrap();
    add(&mut pool, b, 0, 50).unwrap();
    add(&mut pool, b, 1, 50).unwrap();
    assert_eq!((pool.len(), pool.queued_count()), (3, 0));
    // Equal tip, or less than the price bump above it: refused.
    assert_eq!(add(&mut pool, stranger, 0, 50), Err(PoolError::PoolFull));
    assert_eq!(add(&mut pool, stranger, 0, 54), Err(PoolError::PoolFull));
    // A queued newcomer never displaces a pending transaction.
    assert_eq!(add(&mut pool, stranger, 7, 900), Err(PoolError::PoolFull));
    // Outbidding by the bump takes the place of the cheapest sender's last one.
    let outcome = add(&mut pool, stranger, 0, 55).unwrap();
    assert_eq!(outcome.evicted, vec![tx(b, 1, 50).hash]);
    assert_eq!(nonces(&pool, b), vec![0]);
    // Not outbidding the cheapest pending one (B's, tip 50): refused.
    assert_eq!(add(&mut pool, stranger, 1, 40), Err(PoolError::PoolFull));
}

#[test]
fn queued_newcomers_compete_only_with_queued_ones() {
    let (mut pool, _) = pool_with(config(16, 100, 16, 3));
    let (a, b, c) = (who(1), who(2), who(3));
    for nonce in [3, 4, 5] {
        add(&mut pool, a, nonce, 1).unwrap();
    }
    // The global queue is full. B has fewer queued than A: A's highest gives way.
    let outcome = add(&mut pool, b, 9, 1).unwrap();
    assert_eq!(outcome.evicted, vec![tx(a, 5, 1).hash]);
    // With the newcomer B would tie with A: the newcomer's sender gives way,
    // with its highest nonce if that is above the newcomer...
    let outcome = add(&mut pool, b, 8, 1).unwrap();
    assert_eq!(outcome.evicted, vec![tx(b, 9, 1).hash]);
    // ...else the newcomer is refused.
    assert_eq!(add(&mut pool, b, 20, 1), Err(PoolError::PoolFull));
    let outcome = add(&mut pool, c, 7, 1).unwrap();
    assert_eq!(outcome.evicted, vec![tx(a, 4, 1).hash]);
    assert_eq!(nonces(&pool, a), vec![3]);
    assert_eq!(nonces(&pool, b), vec![8]);
    // Pending transactions do not count against the queue: B fills its gap.
    for nonce in 0..8 {
        add(&mut pool, b, nonce, 1).unwrap();
    }
    assert_eq!((pool.pending_count(), pool.queued_count()), (9, 2));
}

#[test]
fn account_slots_bound_the_pending_run_and_the_rest_waits() {
    let (mut pool, _) = pool_with(config(4, 100, 2, 100));
    let a = who(1);
    for nonce in 0..4 {
        assert_eq!(
            add(&mut pool, a, nonce, 1).unwrap().status,
            TxStatus::Pending
        );
    }
    // Beyond the slots, contiguous ones wait in the queue...
    assert_eq!(add(&mut pool, a, 4, 1).unwrap().status, TxStatus::Queued);
    assert_eq!(add(&mut pool, a, 5, 1).unwrap().status, TxStatus::Queued);
    // ...which is bounded too: 4 slots + 2 queued in flight.
    assert!(matches!(
        add(&mut pool, a, 6, 1),
        Err(PoolError::SenderLimit { next_nonce: 6, .. })
    ));
    // The pending nonce counts the whole run, so wallets do not reuse a nonce.
    assert_eq!(pool.pending_nonce(a), Some(6));
    assert_eq!(pool.best_transactions(BASE_FEE).len(), 4);
    // A block mines two: the waiting ones become pending.
    let mined: Vec<B256> = [0, 1].iter().map(|n| tx(a, *n, 1).hash).collect();
    pool.on_new_block(&mined, |_| 2);
    pool.check_invariants();
    assert_eq!((pool.pending_count(), pool.queued_count()), (4, 0));
    add(&mut pool, a, 6, 1).unwrap();
}

#[test]
fn queued_transactions_expire_after_the_lifetime_without_activity() {
    let (mut pool, clock) = pool_with(config(16, 100, 16, 100));
    let (a, b, c) = (who(1), who(2), who(3));
    add(&mut pool, a, 0, 1).unwrap();
    add(&mut pool, a, 2, 1).unwrap();
    add(&mut pool, b, 5, 1).unwrap();
    clock.advance(LIFETIME / 2);
    // B stays active: its lifetime starts again.
    add(&mut pool, b, 7, 1).unwrap();
    clock.advance(LIFETIME / 2 - Duration::from_secs(1));
    assert!(pool.evict_expired().is_empty());
    clock.advance(Duration::from_secs(1));
    // A's queued one expires, its pending one stays; B is still within its lifetime.
    assert_eq!(pool.evict_expired(), vec![tx(a, 2, 1).hash]);
    pool.check_invariants();
    assert_eq!(nonces(&pool, a), vec![0]);
    assert_eq!(nonces(&pool, b), vec![5, 7]);
    // Expiry also runs on insertion: B's go when C adds one after B's lifetime.
    clock.advance(LIFETIME / 2);
    let outcome = add(&mut pool, c, 0, 1).unwrap();
    let mut expected = vec![tx(b, 5, 1).hash, tx(b, 7, 1).hash];
    let mut got = outcome.evicted;
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    assert!(nonces(&pool, b).is_empty());
    assert_eq!(pool.len(), 2);
}

#[test]
fn mined_transactions_keep_the_senders_queue_alive_and_blocks_expire_idle_ones() {
    let (mut pool, clock) = pool_with(config(16, 100, 16, 100));
    let (a, b) = (who(1), who(2));
    add(&mut pool, a, 0, 1).unwrap();
    add(&mut pool, a, 2, 1).unwrap();
    add(&mut pool, b, 3, 1).unwrap();
    clock.advance(LIFETIME - Duration::from_secs(1));
    // A's nonce moves: progress.
    pool.on_new_block(&[tx(a, 0, 1).hash], |address| u64::from(address == a));
    clock.advance(Duration::from_secs(1));
    let removed = pool.on_new_block(&[], |address| u64::from(address == a));
    pool.check_invariants();
    assert_eq!(removed, vec![tx(b, 3, 1).hash]);
    assert_eq!(nonces(&pool, a), vec![2]);
    clock.advance(LIFETIME);
    assert_eq!(pool.evict_expired(), vec![tx(a, 2, 1).hash]);
    assert!(pool.is_empty());
}

#[test]
fn a_stale_state_nonce_does_not_move_the_sender_back() {
    let (mut pool, _) = pool_with(config(16, 100, 16, 100));
    let a = who(1);
    add(&mut pool, a, 0, 1).unwrap();
    add(&mut pool, a, 1, 1).unwrap();
    add(&mut pool, a, 2, 1).unwrap();
    // Block mines 0 and 1; the pool knows nonce 2.
    pool.on_new_block(&[tx(a, 0, 1).hash, tx(a, 1, 1).hash], |_| 2);
    // The RPC read the account before that block: nonce 0. Nonce 3 must
    // still be pending, not queued behind a gap that is already mined.
    let outcome = pool.add(tx(a, 3, 1), 0, RICH, BASE_FEE).unwrap();
    pool.check_invariants();
    assert_eq!(outcome.status, TxStatus::Pending);
    assert_eq!(
        pool.add(tx(a, 1, 2), 0, RICH, BASE_FEE),
        Err(PoolError::NonceTooLow { tx: 1, state: 2 })
    );
}

#[test]
fn a_reorg_that_turns_pending_into_queued_respects_the_queue_bounds() {
    let (mut pool, _) = pool_with(config(16, 100, 2, 100));
    let a = who(1);
    // The sender's nonce is 5 and it has 5..9 pending.
    for nonce in 5..10 {
        pool.add(tx(a, nonce, 1), 5, RICH, BASE_FEE).unwrap();
    }
    pool.check_invariants();
    // A reorg drops the block that took it to 5: everything is behind a gap now.
    let removed = pool.on_new_block(&[], |_| 3);
    pool.check_invariants();
    assert_eq!(removed.len(), 3);
    assert_eq!(nonces(&pool, a), vec![5, 6]);
}

/// `next(bound)`: a xorshift64 draw in `0..bound`, reproducible from `seed`.
fn xorshift(mut state: u64) -> impl FnMut(u64) -> u64 {
    move |bound| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    }
}

/// The random mixes' block: the 8 best transactions are mined and every
/// sender's nonce (indexed by its address's last byte) moves past them.
fn mine_best(pool: &mut TxPool, nonces_of: &mut [u64; 8]) {
    let mined: Vec<B256> = pool
        .best_transactions(BASE_FEE)
        .iter()
        .take(8)
        .map(|t| t.hash)
        .collect();
    for hash in &mined {
        let t = pool.get(hash).unwrap();
        let slot = usize::from(t.sender.0[19]);
        nonces_of[slot] = nonces_of[slot].max(t.tx.nonce() + 1);
    }
    pool.on_new_block(&mined, |address| nonces_of[usize::from(address.0[19])]);
}

/// A long pseudo-random mix of senders, nonces, tips and blocks never breaks
/// a bound or an internal count.
#[test]
fn bounds_hold_under_a_random_mix() {
    let (mut pool, clock) = pool_with(config(5, 20, 4, 10));
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let mut nonces_of = [0u64; 8];
    for step in 0..5_000 {
        match next(10) {
            0 => mine_best(&mut pool, &mut nonces_of),
            1 => clock.advance(LIFETIME / 3),
            _ => {
                let slot = next(8) as usize;
                let sender = who(slot as u8);
                let nonce = nonces_of[slot] + next(12);
                let _ = pool.add(
                    tx(sender, nonce, u128::from(next(100))),
                    nonces_of[slot],
                    RICH,
                    BASE_FEE,
                );
            }
        }
        pool.check_invariants();
        assert!(pool.len() <= 30, "step {step}");
    }
}

#[test]
fn config_validation_and_lifetime_parsing() {
    assert!(PoolConfig::default().validate().is_ok());
    assert_eq!(PoolConfig::default().capacity(), 12_288);
    let error = config(0, 1, 1, 1).validate().unwrap_err();
    assert!(error.contains("account slots"), "{error}");
    let zero = PoolConfig {
        lifetime: Duration::ZERO,
        ..PoolConfig::default()
    };
    assert!(zero.validate().unwrap_err().contains("lifetime"));

    for (text, secs) in [
        ("3h0m0s", 10_800),
        ("3h", 10_800),
        ("90m", 5_400),
        ("1h30m15s", 5_415),
        ("45s", 45),
        ("10800", 10_800),
    ] {
        assert_eq!(
            parse_lifetime(text),
            Ok(Duration::from_secs(secs)),
            "{text}"
        );
    }
    for bad in ["", "3x", "h", "3h5", "1.5h"] {
        assert!(parse_lifetime(bad).is_err(), "{bad:?} should not parse");
    }
}

/// The defaults hold 200 transactions of one sender in flight whatever order
/// they arrive in (in order, reversed), as a deployment script sends them.
#[test]
fn defaults_hold_200_transactions_of_one_sender_in_any_order() {
    for reversed in [false, true] {
        let (mut pool, _) = pool_with(PoolConfig::default());
        let a = who(1);
        let mut order: Vec<u64> = (0..200).collect();
        if reversed {
            order.reverse();
        }
        for nonce in order {
            add(&mut pool, a, nonce, 1).unwrap_or_else(|e| panic!("nonce {nonce}: {e}"));
        }
        assert_eq!((pool.pending_count(), pool.queued_count()), (200, 0));
        assert_eq!(pool.best_transactions(BASE_FEE).len(), 200);
    }
}

/// Byte-bound tests: generous counts, so that only the bytes bind.
fn bytes_config(global_bytes: usize) -> PoolConfig {
    PoolConfig {
        global_bytes,
        ..config(16, 1_000, 16, 1_000)
    }
}

/// Adds a transaction of `size` bytes at state nonce 0 and checks the invariants after.
fn add_sized(
    pool: &mut TxPool,
    sender: Address,
    nonce: u64,
    tip: u128,
    size: usize,
) -> Result<AddOutcome> {
    let outcome = pool.add(sized(sender, nonce, tip, size), 0, RICH, BASE_FEE);
    pool.check_invariants();
    outcome
}

fn all_hashes(pool: &TxPool) -> Vec<B256> {
    let mut all: Vec<B256> = pool
        .all_pending()
        .into_iter()
        .chain(pool.all_queued())
        .map(|t| t.hash)
        .collect();
    all.sort();
    all
}

#[test]
fn oversized_transactions_are_refused_naming_both_sizes() {
    let (mut pool, _) = pool_with(PoolConfig::default());
    let a = who(1);
    let error = add_sized(&mut pool, a, 0, 1, MAX_TX_BYTES + 1).unwrap_err();
    assert_eq!(
        error,
        PoolError::OversizedData {
            size: MAX_TX_BYTES + 1,
            limit: MAX_TX_BYTES
        }
    );
    assert_eq!(
        error.to_string(),
        "oversized data: transaction of 163841 bytes exceeds the pool's limit of 163840 bytes"
    );
    // Far beyond: what a transaction with all of EIP-7825's gas in zero bytes could carry.
    assert!(matches!(
        pool.add(with_input(a, 0, 1, 1_000, 1_600_000), 0, RICH, BASE_FEE),
        Err(PoolError::OversizedData { .. })
    ));
    assert!(pool.is_empty());
    // The limit itself is admitted: an `uploadChunk` of ~101.5 KB fits with
    // room to spare, and so does the largest one-transaction `register`.
    add_sized(&mut pool, a, 0, 1, MAX_TX_BYTES).unwrap();
    assert_eq!(pool.bytes(), MAX_TX_BYTES);
    // A larger replacement is held to the same limit.
    assert!(matches!(
        add_sized(&mut pool, a, 0, 2, MAX_TX_BYTES + 1),
        Err(PoolError::OversizedData { .. })
    ));
}

#[test]
fn the_byte_bound_evicts_queued_for_a_gap_filler_several_if_needed() {
    let (mut pool, _) = pool_with(bytes_config(10_000));
    let (a, b, c) = (who(1), who(2), who(3));
    // 4 KB pending of A; 4 queued of B and 1 of C, 1 KB each: 9 KB of 10 KB.
    add_sized(&mut pool, a, 0, 1, 4_000).unwrap();
    for nonce in 10..14 {
        add_sized(&mut pool, b, nonce, 1, 1_000).unwrap();
    }
    add_sized(&mut pool, c, 5, 1, 1_000).unwrap();
    assert_eq!(pool.bytes(), 9_000);
    // A's next one needs 2.5 KB: B's two highest go (the sender with the most queued).
    let outcome = add_sized(&mut pool, a, 1, 1, 2_500).unwrap();
    assert_eq!(outcome.status, TxStatus::Pending);
    assert_eq!(
        outcome.evicted,
        vec![sized(b, 13, 1, 1_000).hash, sized(b, 12, 1, 1_000).hash]
    );
    assert_eq!(nonces(&pool, b), vec![10, 11]);
    assert_eq!(pool.bytes(), 9_500);
    // A queued newcomer competes with queued ones only: B, with the most
    // queued, gives way.
    let d = who(4);
    let outcome = add_sized(&mut pool, d, 4, 1, 1_000).unwrap();
    assert_eq!(outcome.status, TxStatus::Queued);
    assert_eq!(outcome.evicted, vec![sized(b, 11, 1, 1_000).hash]);
    // A larger replacement of a pending transaction makes room the same way:
    // B, C and D have one queued each, and ties go to the lowest address.
    let outcome = add_sized(&mut pool, a, 1, 2, 3_500).unwrap();
    assert_eq!(outcome.replaced, Some(sized(a, 1, 1, 2_500).hash));
    assert_eq!(outcome.evicted, vec![sized(b, 10, 1, 1_000).hash]);
    assert_eq!(pool.bytes(), 9_500);
    assert_eq!(pool.len(), 4);
}

#[test]
fn a_newcomer_that_cannot_evict_enough_is_refused_and_evicts_nothing() {
    let (mut pool, _) = pool_with(bytes_config(10_000));
    let (a, b, c, stranger) = (who(1), who(2), who(3), who(4));
    // Pending only: A 4 KB at tip 50, B 2 × 2 KB at tip 100 and 20; one queued of C.
    add_sized(&mut pool, a, 0, 50, 4_000).unwrap();
    add_sized(&mut pool, b, 0, 100, 2_000).unwrap();
    add_sized(&mut pool, b, 1, 20, 2_000).unwrap();
    add_sized(&mut pool, c, 3, 1, 1_000).unwrap();
    let before = all_hashes(&pool);
    // A queued newcomer that needs more than the queued 1 KB: refused, and
    // C's queued one, evicted on the way, is back.
    assert_eq!(
        add_sized(&mut pool, stranger, 5, 1_000, 2_500),
        Err(PoolError::PoolFull)
    );
    assert_eq!(all_hashes(&pool), before);
    // An executable one of 4.5 KB needs C's queued one and B's last pending
    // one (tip 20) to go, then A's (tip 50): it outbids the first but not the
    // second. Nothing goes.
    assert_eq!(
        add_sized(&mut pool, stranger, 0, 30, 4_500),
        Err(PoolError::PoolFull)
    );
    assert_eq!(all_hashes(&pool), before);
    assert_eq!(pool.bytes(), 9_000);
    // 3 KB need only C's queued one and B's tail, which it outbids by the bump.
    let outcome = add_sized(&mut pool, stranger, 0, 30, 3_000).unwrap();
    let mut evicted = outcome.evicted;
    evicted.sort();
    let mut expected = vec![sized(c, 3, 1, 1_000).hash, sized(b, 1, 20, 2_000).hash];
    expected.sort();
    assert_eq!(evicted, expected);
    assert_eq!(pool.bytes(), 9_000);
    // A queued replacement that grows beyond the bound while it is its
    // sender's only queued one would have to push out itself: refused.
    add_sized(&mut pool, c, 3, 1, 1_000).unwrap();
    assert_eq!(
        add_sized(&mut pool, c, 3, 2, 2_000),
        Err(PoolError::PoolFull)
    );
    assert!(pool.contains(&sized(c, 3, 1, 1_000).hash));
}

#[test]
fn the_count_bounds_still_hold_when_the_bytes_have_room() {
    let (mut pool, _) = pool_with(PoolConfig {
        global_bytes: MAX_TX_BYTES,
        ..config(16, 2, 16, 1)
    });
    let (a, b) = (who(1), who(2));
    add_sized(&mut pool, a, 0, 1, 200).unwrap();
    add_sized(&mut pool, a, 1, 1, 200).unwrap();
    add_sized(&mut pool, b, 4, 1, 200).unwrap();
    // Capacity (3) reached with 600 bytes of 160 KiB: a queued newcomer
    // further than B's queued one is refused, an executable one takes its place.
    assert_eq!(add_sized(&mut pool, b, 9, 1, 200), Err(PoolError::PoolFull));
    let outcome = add_sized(&mut pool, a, 2, 1, 200).unwrap();
    assert_eq!(outcome.evicted, vec![sized(b, 4, 1, 200).hash]);
    assert_eq!(pool.len(), 3);
}

/// The random mix with transactions of random sizes and a byte bound that
/// binds as often as the counts do.
#[test]
fn byte_and_count_bounds_hold_under_a_random_mix() {
    let (mut pool, clock) = pool_with(PoolConfig {
        global_bytes: MAX_TX_BYTES + 20_000,
        ..config(5, 20, 4, 10)
    });
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let mut nonces_of = [0u64; 8];
    let mut over_bytes = 0;
    for step in 0..3_000 {
        match next(10) {
            0 => mine_best(&mut pool, &mut nonces_of),
            1 => clock.advance(LIFETIME / 3),
            _ => {
                let slot = next(8) as usize;
                let nonce = nonces_of[slot] + next(12);
                // Mostly small, now and then up to the largest.
                let size = if next(8) == 0 {
                    200 + next(MAX_TX_BYTES as u64 - 199) as usize
                } else {
                    200 + next(4_000) as usize
                };
                pool.evict_expired();
                let before = (all_hashes(&pool), pool.bytes());
                if before.1 + size > pool.config().global_bytes {
                    over_bytes += 1;
                }
                let result = pool.add(
                    sized(who(slot as u8), nonce, u128::from(next(100)), size),
                    nonces_of[slot],
                    RICH,
                    BASE_FEE,
                );
                if result.is_err() {
                    // A refusal leaves the pool as it was: what it evicted on
                    // the way is back.
                    assert_eq!((all_hashes(&pool), pool.bytes()), before, "step {step}");
                }
            }
        }
        pool.check_invariants();
    }
    assert!(
        over_bytes > 100,
        "the byte bound bound only {over_bytes} times"
    );
}

#[test]
fn byte_bound_validation_and_size_parsing() {
    assert_eq!(PoolConfig::default().global_bytes, 64 * 1024 * 1024);
    let small = PoolConfig {
        global_bytes: MAX_TX_BYTES - 1,
        ..PoolConfig::default()
    };
    let error = small.validate().unwrap_err();
    assert!(
        error.contains("--txpool.globalbytes") && error.contains("163840"),
        "{error}"
    );
    for (text, bytes) in [
        ("64MiB", 64 << 20),
        ("512KiB", 512 << 10),
        ("1GiB", 1 << 30),
        ("4096", 4_096),
        ("4096B", 4_096),
        (" 2 MiB ", 2 << 20),
    ] {
        assert_eq!(parse_byte_size(text), Ok(bytes), "{text}");
    }
    for bad in ["", "MiB", "64MB", "1.5MiB", "-1", "99999999999999999999GiB"] {
        assert!(parse_byte_size(bad).is_err(), "{bad:?} should not parse");
    }
}
