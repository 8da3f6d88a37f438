//! Who the sync loop bans, from the errors the chain and the RPC really
//! return: the sender of an invalid block, of malformed data (a block whose
//! transaction or seal recovers no signer, undecodable transaction bytes, a
//! transaction whose signature recovers nobody), and nobody for a fault of
//! this node or for a transaction that is merely stale.

use std::sync::Arc;

use alloy_consensus::{SignableTransaction, TxEip1559, proofs::calculate_transaction_root};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use infera_chainspec::TESTNET_CHAIN_ID;
use infera_consensus::sign_header;
use infera_node::{
    ImportError,
    chain::{ChainManager, InsertOutcome},
    import::{Block, Fault},
    open_datadir,
    sync::{block_ban, transaction_ban},
};
use infera_precompiles::ModelCache;
use infera_primitives::TxEnvelope;
use infera_rpc::{RpcConfig, RpcContext};
use infera_storage::Database;
use infera_txpool::{PoolConfig, TxAdmission, TxAdmissionError, TxPool};
use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast};

use crate::harness::{Node, chain, in_turn, key};

/// A transfer from `DEV_PRIVATE_KEYS[0]` (funded by the testnet genesis).
fn transfer(chain_id: u64, nonce: u64) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1,
        to: TxKind::Call(Address::repeat_byte(0x42)),
        value: U256::from(1),
        access_list: Default::default(),
        input: Bytes::new(),
    }
}

fn signed(tx: TxEip1559) -> TxEnvelope {
    let hash = tx.signature_hash();
    let sig = infera_primitives::sign_hash(&key(0), hash);
    tx.into_signed(sig).into()
}

/// A transaction whose signature (r = s = 0) recovers no sender.
fn unsigned_transfer() -> TxEnvelope {
    let zero = alloy_primitives::Signature::new(U256::ZERO, U256::ZERO, false);
    transfer(TESTNET_CHAIN_ID, 0).into_signed(zero).into()
}

/// An authority's valid block 1, and a follower that has not seen it.
fn block_and_follower() -> (Block, Node) {
    let mut builder = Node::new(ModelCache::shared());
    let block = builder.seal(in_turn(&builder.clique, 1), Vec::new());
    (block, Node::new(ModelCache::shared()))
}

/// `block` sealed again by its in-turn authority after `change`.
fn resealed(node: &Node, block: &Block, change: impl FnOnce(&mut Block)) -> Block {
    let mut bad = block.clone();
    change(&mut bad);
    let authority = key(in_turn(&node.clique, bad.header.number));
    sign_header(&mut bad.header, &authority).unwrap();
    bad
}

/// Inserts a block the follower must refuse; the head stays at genesis.
fn refused(node: &mut Node, block: Block) -> ImportError {
    let err = node.manager.insert(block).unwrap_err();
    assert_eq!(
        node.manager.head().number,
        0,
        "a refused block moved the head"
    );
    err
}

#[test]
fn the_sender_of_an_invalid_block_is_banned() {
    let (block, mut follower) = block_and_follower();
    let bad = resealed(&follower, &block, |b| {
        b.header.state_root = B256::repeat_byte(0xee)
    });
    let err = refused(&mut follower, bad);
    assert_eq!(err.fault(), Fault::BadBlock, "{err}");
    let reason = block_ban(&err).expect("the sender of an invalid block is banned");
    assert!(reason.contains("state root"), "{reason}");

    assert!(matches!(
        follower.manager.insert(block),
        Ok(InsertOutcome::Extended(_))
    ));
}

#[test]
fn the_sender_of_a_block_whose_transaction_recovers_no_sender_is_banned() {
    let (block, mut follower) = block_and_follower();
    let bad = resealed(&follower, &block, |b| {
        b.body.transactions.push(unsigned_transfer());
        b.header.transactions_root = calculate_transaction_root(&b.body.transactions);
    });
    let err = refused(&mut follower, bad);
    assert!(matches!(err, ImportError::Malformed { .. }), "{err}");
    assert_eq!(err.fault(), Fault::BadPeer);
    let reason = block_ban(&err).expect("the sender of malformed data is banned");
    assert!(reason.contains("transaction 0"), "{reason}");
}

#[test]
fn the_sender_of_a_block_with_an_unreadable_seal_is_banned() {
    let (block, mut follower) = block_and_follower();
    let mut bad = block.clone();
    let mut extra = bad.header.extra_data.to_vec();
    // The seal's recovery id: only 0 and 1 are signatures.
    *extra.last_mut().unwrap() = 7;
    bad.header.extra_data = extra.into();
    let err = refused(&mut follower, bad);
    assert_eq!(err.fault(), Fault::BadPeer, "{err}");
    assert!(block_ban(&err).is_some());

    // A seal by a key that is no authority is readable: a rule the block breaks.
    let mut forged = block;
    sign_header(&mut forged.header, &key(0)).unwrap();
    let err = refused(&mut follower, forged);
    assert_eq!(err.fault(), Fault::BadBlock, "{err}");
    assert!(block_ban(&err).is_some());
}

/// A storage fault injected during import: the follower's database is open
/// read-only, so the write transaction of a valid block fails. Its sender is
/// not banned, and the same block imports where storage works.
#[test]
fn a_storage_fault_during_import_bans_nobody() {
    let (block, mut healthy) = block_and_follower();
    let dir = tempfile::tempdir().unwrap();
    let spec = chain();
    drop(open_datadir(dir.path(), &spec).unwrap());
    let read_only = Database::open_read_only(&dir.path().join("db")).unwrap();
    let (events, _) = broadcast::channel(16);
    let mut manager = ChainManager::new(
        read_only,
        Arc::new(spec),
        ModelCache::shared(),
        Arc::new(Mutex::new(TxPool::new(PoolConfig::default()))),
        events,
    )
    .unwrap();

    let err = manager.insert(block.clone()).unwrap_err();
    assert!(matches!(err, ImportError::Node(_)), "{err}");
    assert_eq!(err.fault(), Fault::Local);
    assert_eq!(
        block_ban(&err),
        None,
        "a local fault banned the peer: {err}"
    );
    assert_eq!(manager.head().number, 0);

    assert!(matches!(
        healthy.manager.insert(block),
        Ok(InsertOutcome::Extended(_))
    ));
}

/// The admission the network glue uses for `node`'s pool.
fn admission_of(node: &Node) -> TxAdmission {
    let (events, _) = broadcast::channel(16);
    TxAdmission::new(
        node.manager.db().clone(),
        node.manager.chain().clone(),
        node.pool.clone(),
        events,
        Arc::new(Notify::new()),
    )
}

#[test]
fn a_gossiped_transaction_bans_its_sender_only_when_malformed() {
    let node = Node::new(ModelCache::shared());
    let admission = admission_of(&node);
    let rpc = RpcContext::new(
        admission.clone(),
        node.manager.models().clone(),
        RpcConfig::default(),
    );
    let admit = |raw: Vec<u8>| admission.admit(&raw).unwrap_err();

    for (what, raw) in [
        ("undecodable bytes", vec![0x02, 0xc0, 0x01]),
        (
            "a signature that recovers nobody",
            unsigned_transfer().encoded_2718(),
        ),
    ] {
        let err = admit(raw.clone());
        assert!(
            matches!(err, TxAdmissionError::Malformed(_)),
            "{what}: {err}"
        );
        assert!(transaction_ban(&err).is_some(), "{what}: {err}");
        // What RPC clients see is unchanged: -32000 with the reason.
        let rpc_err = rpc.send_raw_transaction(raw.into()).unwrap_err();
        assert!(
            matches!(rpc_err, infera_rpc::RpcError::TransactionRejected(_)),
            "{what}: {rpc_err}"
        );
        assert_eq!(rpc_err.to_string(), err.to_string());
    }

    // Well-formed but refused here: another chain's, then a replay of a
    // pooled nonce at the same price. Not the peer's fault.
    let other_chain = signed(transfer(TESTNET_CHAIN_ID + 1, 0)).encoded_2718();
    let err = admit(other_chain);
    assert!(matches!(err, TxAdmissionError::Invalid(_)), "{err}");
    assert_eq!(transaction_ban(&err), None);

    let good = signed(transfer(TESTNET_CHAIN_ID, 0)).encoded_2718();
    admission.admit(&good).unwrap();
    let err = admit(good);
    assert!(matches!(err, TxAdmissionError::Pool(_)), "{err}");
    assert_eq!(transaction_ban(&err), None);
}

/// A fault of this node while admitting a gossiped transaction (here a
/// database that holds no chain) is ours: the peer is not banned.
#[test]
fn a_local_fault_during_admission_bans_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let empty = Database::open(&dir.path().join("db")).unwrap();
    let (events, _) = broadcast::channel(16);
    let admission = TxAdmission::new(
        empty,
        Arc::new(chain()),
        Arc::new(Mutex::new(TxPool::new(PoolConfig::default()))),
        events,
        Arc::new(Notify::new()),
    );
    let good = signed(transfer(TESTNET_CHAIN_ID, 0)).encoded_2718();
    let err = admission.admit(&good).unwrap_err();
    assert!(matches!(err, TxAdmissionError::Local(_)), "{err}");
    assert_eq!(transaction_ban(&err), None);
}
