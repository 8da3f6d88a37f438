//! Unit tests' RPC context: the dev chain's genesis written into a fresh
//! database in `dir`, an empty pool, and `config`.

use std::sync::Arc;

use infera_chainspec::ChainSpec;
use infera_primitives::SealedBlock;
use infera_storage::Database;
use infera_txpool::{PoolConfig, TxAdmission};

use crate::{RpcConfig, RpcContext};

pub(crate) fn dev_context(dir: &std::path::Path, config: RpcConfig) -> RpcContext {
    let chain = ChainSpec::dev();
    let db = Database::open(&dir.join("db")).unwrap();
    let mut writer = db.writer().unwrap();
    writer.apply_state(0, &chain.genesis_state()).unwrap();
    let root = writer.state_root().unwrap();
    let genesis = SealedBlock::new(chain.genesis_header(root), Vec::new());
    writer.insert_block(&genesis, &[]).unwrap();
    writer.set_genesis_hash(genesis.hash).unwrap();
    writer.set_chain_id(chain.chain_id()).unwrap();
    writer.commit().unwrap();
    RpcContext::new(
        TxAdmission::standalone(db, Arc::new(chain), PoolConfig::default()),
        infera_precompiles::ModelCache::shared(),
        config,
    )
}
