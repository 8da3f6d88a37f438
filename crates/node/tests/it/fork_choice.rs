//! Fork choice and reorgs on a proof-of-authority chain, in process: two
//! databases build competing chains with the real block builder and Clique
//! seals, then one receives the other's blocks through `ChainManager::insert`.

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use infera_consensus::{Clique, sign_header};
use infera_node::{
    ImportError,
    chain::{InsertOutcome, block_of},
    clique_sealer::address_of_key,
};
use infera_precompiles::ModelCache;
use infera_primitives::{RecoveredTx, TxEnvelope};

use crate::harness::{Node, in_turn, key};

/// A signed EIP-1559 transfer of `value` wei from dev account `from`.
fn transfer(from: usize, nonce: u64, to: Address, value: u64) -> RecoveredTx {
    let tx = TxEip1559 {
        chain_id: infera_chainspec::TESTNET_CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1,
        to: TxKind::Call(to),
        value: U256::from(value),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    let hash = tx.signature_hash();
    let sig = infera_primitives::sign_hash(&key(from), hash);
    infera_evm::recover_any(TxEnvelope::from(tx.into_signed(sig))).unwrap()
}

/// The authority one place after the in-turn one (out of turn, difficulty 1).
fn out_of_turn(clique: &Clique, n: u64) -> usize {
    let signer = clique.in_turn_signer(n + 1);
    (7..10)
        .find(|&i| address_of_key(&key(i)) == signer)
        .unwrap()
}

const LIGHT_BLOCKS: u64 = 65;
const HEAVY_BLOCKS: u64 = 70;

#[test]
fn a_heavier_chain_replaces_65_blocks_and_the_dropped_transactions_return_to_the_pool() {
    let light_receiver = Address::repeat_byte(0x11);
    let heavy_receiver = Address::repeat_byte(0x22);

    // Node A: 65 out-of-turn blocks (difficulty 1 each); the first ten carry a
    // transfer from dev account 0.
    let mut a = Node::new(ModelCache::shared());
    let mut dropped = Vec::new();
    for n in 1..=LIGHT_BLOCKS {
        let txs = if n <= 10 {
            let tx = transfer(0, n - 1, light_receiver, 1_000 + n);
            dropped.push(tx.hash);
            vec![tx]
        } else {
            Vec::new()
        };
        let signer = out_of_turn(&a.clique, n);
        a.seal(signer, txs);
    }
    // Genesis has difficulty 1.
    assert_eq!(
        a.manager.head().total_difficulty,
        U256::from(1 + LIGHT_BLOCKS)
    );
    assert_eq!(
        a.balance(light_receiver),
        U256::from((1..=10u64).map(|n| 1_000 + n).sum::<u64>())
    );

    // Node B: 70 in-turn blocks (difficulty 2 each) with transfers of account 1.
    let mut b = Node::new(ModelCache::shared());
    let mut heavy = Vec::new();
    for n in 1..=HEAVY_BLOCKS {
        let txs = if n % 7 == 0 {
            vec![transfer(1, n / 7 - 1, heavy_receiver, 5)]
        } else {
            Vec::new()
        };
        let signer = in_turn(&b.clique, n);
        heavy.push(b.seal(signer, txs));
    }

    // A tampered heavy block: signed correctly by its in-turn authority, but
    // with a state root that execution does not reproduce.
    let tipping = (LIGHT_BLOCKS / 2 + 1) as usize; // the block whose chain outweighs A's
    let mut tampered = heavy[tipping - 1].clone();
    tampered.header.state_root = B256::repeat_byte(0xee);
    sign_header(
        &mut tampered.header,
        &key(in_turn(&b.clique, tipping as u64)),
    )
    .unwrap();

    let a_head = a.manager.head();
    let a_root = a.state_root();
    for block in &heavy[..tipping - 1] {
        assert!(matches!(
            a.manager.insert(block.clone()).unwrap(),
            InsertOutcome::Side
        ));
    }
    assert_eq!(
        a.manager.head(),
        a_head,
        "a lighter side chain must not move the head"
    );

    // The tampered block would make the side chain heavier: A unwinds, fails
    // to execute it, and goes back to its own chain.
    match a.manager.insert(tampered) {
        Err(ImportError::Invalid { reason, .. }) => {
            assert!(reason.contains("state root"), "{reason}")
        }
        other => panic!("tampered block accepted: {other:?}"),
    }
    assert_eq!(a.manager.head(), a_head);
    assert_eq!(a.state_root(), a_root);
    assert_eq!(a.balance(heavy_receiver), U256::ZERO);

    // The honest block tips the balance: a 65-block reorg.
    match a.manager.insert(heavy[tipping - 1].clone()).unwrap() {
        InsertOutcome::Reorged { unwound, imported } => {
            assert_eq!(unwound, LIGHT_BLOCKS);
            assert_eq!(imported.len(), tipping);
        }
        other => panic!("expected a reorg, got {other:?}"),
    }
    for block in &heavy[tipping..] {
        assert!(matches!(
            a.manager.insert(block.clone()).unwrap(),
            InsertOutcome::Extended(_)
        ));
    }
    assert_eq!(a.manager.head(), b.manager.head());
    assert_eq!(a.state_root(), b.state_root());
    assert_eq!(a.balance(light_receiver), U256::ZERO);
    assert_eq!(
        a.balance(heavy_receiver),
        U256::from(5 * (HEAVY_BLOCKS / 7))
    );
    // The light chain's transfers were dropped with it: back in the pool.
    let pool = a.pool.lock();
    for hash in &dropped {
        assert!(
            pool.contains(hash),
            "transaction {hash} of an unwound block is not in the pool"
        );
    }
    drop(pool);

    // And the old blocks are known side blocks now: offering them again changes nothing.
    let head = a.manager.head();
    let old = {
        let mut c = Node::new(ModelCache::shared());
        for n in 1..=3 {
            let signer = out_of_turn(&c.clique, n);
            let tx = transfer(0, n - 1, light_receiver, 1_000 + n);
            c.seal(signer, vec![tx]);
        }
        c.manager.db().reader().unwrap().block(1).unwrap().unwrap()
    };
    assert!(matches!(
        a.manager.insert(block_of(&old)).unwrap(),
        InsertOutcome::Known
    ));
    assert_eq!(a.manager.head(), head);
}

#[test]
fn blocks_with_unknown_parents_and_bad_seals_are_refused() {
    let mut a = Node::new(ModelCache::shared());
    let mut b = Node::new(ModelCache::shared());
    let b1 = b.seal(in_turn(&b.clique, 1), Vec::new());
    let b2 = b.seal(in_turn(&b.clique, 2), Vec::new());
    assert!(matches!(
        a.manager.insert(b2.clone()).unwrap(),
        InsertOutcome::UnknownParent
    ));

    // Signed by a key that is not an authority.
    let mut forged = b1.clone();
    sign_header(&mut forged.header, &key(0)).unwrap();
    assert!(matches!(
        a.manager.insert(forged),
        Err(ImportError::Invalid { .. })
    ));
    // Claims to be in turn while sealed out of turn.
    let mut wrong_difficulty = b1.clone();
    wrong_difficulty.header.difficulty = U256::from(1);
    sign_header(&mut wrong_difficulty.header, &key(in_turn(&b.clique, 1))).unwrap();
    assert!(matches!(
        a.manager.insert(wrong_difficulty),
        Err(ImportError::Invalid { .. })
    ));
    assert_eq!(a.manager.head().number, 0);

    assert!(matches!(
        a.manager.insert(b1).unwrap(),
        InsertOutcome::Extended(_)
    ));
    assert!(matches!(
        a.manager.insert(b2).unwrap(),
        InsertOutcome::Extended(_)
    ));
    assert_eq!(a.manager.head(), b.manager.head());
}
