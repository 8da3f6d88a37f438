//! What the in-process chain tests share: the testnet with a one-second
//! period, the dev keys, and a node (database, pool, `ChainManager`) that
//! seals its own Clique blocks.

use std::sync::Arc;

use alloy_primitives::{Address, B256, U256};
use infera_chainspec::{ChainSpec, DEV_PRIVATE_KEYS, TESTNET_GENESIS_JSON};
use infera_consensus::{Clique, sign_header};
use infera_node::{
    builder::CommittedBlock,
    chain::{ChainManager, block_of},
    clique_sealer::address_of_key,
    import::Block,
    open_datadir,
};
use infera_precompiles::ModelCache;
use infera_primitives::{RecoveredTx, StateReader};
use infera_txpool::{PoolConfig, TxPool};
use parking_lot::Mutex;
use secp256k1::SecretKey;
use tokio::sync::broadcast;

/// The testnet with a one-second period, so block n can carry timestamp n.
pub(crate) fn chain() -> ChainSpec {
    let json = TESTNET_GENESIS_JSON.replace("\"period\": 2", "\"period\": 1");
    assert_ne!(
        json, TESTNET_GENESIS_JSON,
        "the testnet genesis changed shape"
    );
    ChainSpec::from_json(&json).unwrap()
}

pub(crate) fn key(index: usize) -> SecretKey {
    SecretKey::from_byte_array(DEV_PRIVATE_KEYS[index].0).unwrap()
}

/// The authority (index into `DEV_PRIVATE_KEYS`) in turn for block `n`.
pub(crate) fn in_turn(clique: &Clique, n: u64) -> usize {
    let signer = clique.in_turn_signer(n);
    (7..10)
        .find(|&i| address_of_key(&key(i)) == signer)
        .unwrap()
}

pub(crate) struct Node {
    _dir: tempfile::TempDir,
    pub(crate) manager: ChainManager,
    pub(crate) pool: Arc<Mutex<TxPool>>,
    pub(crate) clique: Clique,
}

impl Node {
    pub(crate) fn new(models: Arc<ModelCache>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let chain = chain();
        let clique = Clique::from_chain(&chain).unwrap();
        let db = open_datadir(dir.path(), &chain).unwrap();
        let pool = Arc::new(Mutex::new(TxPool::new(PoolConfig::default())));
        let (events, _) = broadcast::channel(1024);
        let manager = ChainManager::new(db, Arc::new(chain), models, pool.clone(), events).unwrap();
        Self {
            _dir: dir,
            manager,
            pool,
            clique,
        }
    }

    /// Seals the next block as the authority with `DEV_PRIVATE_KEYS[authority]`,
    /// with `txs` in the pool first.
    pub(crate) fn seal_committed(
        &mut self,
        authority: usize,
        txs: Vec<RecoveredTx>,
    ) -> CommittedBlock {
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
        committed
    }

    /// [`Node::seal_committed`], as the block a peer receives.
    pub(crate) fn seal(&mut self, authority: usize, txs: Vec<RecoveredTx>) -> Block {
        block_of(&self.seal_committed(authority, txs).block)
    }

    pub(crate) fn state_root(&self) -> B256 {
        let reader = self.manager.db().reader().unwrap();
        reader
            .header(self.manager.head().number)
            .unwrap()
            .unwrap()
            .state_root
    }

    pub(crate) fn balance(&self, address: Address) -> U256 {
        let reader = self.manager.db().reader().unwrap();
        reader
            .latest_state()
            .account(address)
            .unwrap()
            .map_or(U256::ZERO, |a| a.balance)
    }

    pub(crate) fn nonce(&self, address: Address) -> u64 {
        let reader = self.manager.db().reader().unwrap();
        reader
            .latest_state()
            .account(address)
            .unwrap()
            .map_or(0, |a| a.nonce)
    }
}
