//! Fork choice and reorgs on a proof-of-authority chain, in process: two
//! databases build competing chains with the real block builder and Clique
//! seals, then one receives the other's blocks through `ChainManager::insert`.

use std::sync::Arc;

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256};
use infera_chainspec::{ChainSpec, DEV_PRIVATE_KEYS, TESTNET_GENESIS_JSON};
use infera_consensus::{Clique, sign_header};
use infera_node::{
    ImportError,
    chain::{ChainManager, InsertOutcome, block_of},
    consensus::address_of_key,
    import::Block,
    open_datadir,
};
use infera_precompiles::ModelCache;
use infera_primitives::{RecoveredTx, StateReader, TxEnvelope};
use infera_txpool::{PoolConfig, TxPool};
use parking_lot::Mutex;
use secp256k1::{Message, SECP256K1, SecretKey};
use tokio::sync::broadcast;

/// The testnet with a one-second period, so block n can carry timestamp n.
fn chain() -> ChainSpec {
    let json = TESTNET_GENESIS_JSON.replace("\"period\": 2", "\"period\": 1");
    assert_ne!(
        json, TESTNET_GENESIS_JSON,
        "the testnet genesis changed shape"
    );
    ChainSpec::from_json(&json).unwrap()
}

fn key(index: usize) -> SecretKey {
    SecretKey::from_byte_array(DEV_PRIVATE_KEYS[index].0).unwrap()
}

struct Node {
    _dir: tempfile::TempDir,
    manager: ChainManager,
    pool: Arc<Mutex<TxPool>>,
    clique: Clique,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let chain = chain();
        let clique = Clique::from_chain(&chain).unwrap();
        let db = open_datadir(dir.path(), &chain).unwrap();
        let pool = Arc::new(Mutex::new(TxPool::new(PoolConfig::default())));
        let (events, _) = broadcast::channel(1024);
        let manager = ChainManager::new(
            db,
            Arc::new(chain),
            ModelCache::shared(),
            pool.clone(),
            events,
        )
        .unwrap();
        Self {
            _dir: dir,
            manager,
            pool,
            clique,
        }
    }

    /// Seals the next block as the authority with `DEV_PRIVATE_KEYS[authority]`,
    /// with `txs` in the pool first.
    fn seal(&mut self, authority: usize, txs: Vec<RecoveredTx>) -> Block {
        {
            let reader = self.manager.db().reader().unwrap();
            let state = reader.latest_state();
            let mut pool = self.pool.lock();
            for tx in txs {
                let account = state.account(tx.sender).unwrap().unwrap();
                pool.add(tx, account.nonce, account.balance, u64::MAX)
                    .unwrap();
            }
        }
        let key = key(authority);
        let signer = address_of_key(&key);
        let number = self.manager.head().number + 1;
        let difficulty = self.clique.difficulty(number, signer);
        let seal = move |header: &mut alloy_consensus::Header| {
            header.difficulty = difficulty;
            sign_header(header, &key).unwrap();
            Ok(())
        };
        let committed = self.manager.seal_next(signer, number, &seal).unwrap();
        assert_eq!(committed.block.number(), number);
        block_of(&committed.block)
    }

    fn state_root(&self) -> B256 {
        let reader = self.manager.db().reader().unwrap();
        reader
            .header(self.manager.head().number)
            .unwrap()
            .unwrap()
            .state_root
    }

    fn balance(&self, address: Address) -> U256 {
        let reader = self.manager.db().reader().unwrap();
        reader
            .latest_state()
            .account(address)
            .unwrap()
            .map_or(U256::ZERO, |a| a.balance)
    }
}

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
    let signature = SECP256K1.sign_ecdsa_recoverable(Message::from_digest(hash.0), &key(from));
    let (recid, bytes) = signature.serialize_compact();
    let sig = Signature::new(
        U256::from_be_slice(&bytes[..32]),
        U256::from_be_slice(&bytes[32..]),
        i32::from(recid) == 1,
    );
    infera_evm::recover_any(TxEnvelope::from(tx.into_signed(sig))).unwrap()
}

/// Index into DEV_PRIVATE_KEYS of the testnet authority whose turn block `n` is
/// (the signers are keys 7, 8, 9 in ascending address order).
fn in_turn(clique: &Clique, n: u64) -> usize {
    let signer = clique.in_turn_signer(n);
    (7..10)
        .find(|&i| address_of_key(&key(i)) == signer)
        .unwrap()
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
    let mut a = Node::new();
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
    let mut b = Node::new();
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
        let mut c = Node::new();
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
    let mut a = Node::new();
    let mut b = Node::new();
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
