//! The node: opens storage, writes genesis, seals blocks in dev mode, serves
//! JSON-RPC, and shuts down cleanly.
//!
//! Crash safety does not depend on a clean shutdown: every block is committed
//! in one MDBX write transaction ([`builder::build_and_commit`]), so a
//! `kill -9` at any moment leaves the last committed block and its state.

pub mod builder;
pub mod chain;
pub mod consensus;
pub mod genesis;
pub mod import;
mod sealer;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use infera_chainspec::ChainSpec;
use infera_primitives::{Address, B256};
use infera_rpc::{RpcConfig, RpcContext};
use infera_storage::Database;
use infera_txpool::{PoolConfig, TxPool};
use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast};
use tracing::{info, warn};

pub use genesis::{GenesisOutcome, init_genesis};
pub use import::{
    ChainImport, ChainImportError, ImportConfig, ImportError, decode_block, decode_blocks,
    import_block, import_block_with, import_chain,
};

/// Capacity of the chain-event channel; a subscriber further behind than this
/// skips events rather than slowing the sealer.
pub const CHAIN_EVENT_CAPACITY: usize = 1024;

/// Errors of the node's wiring.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] infera_storage::StorageError),
    /// Execution failed for a reason other than an invalid transaction.
    #[error(transparent)]
    Evm(#[from] infera_evm::EvmError),
    /// The RPC server could not start.
    #[error(transparent)]
    Rpc(#[from] infera_rpc::RpcError),
    /// The datadir holds a different chain than the one requested.
    #[error(
        "the datadir holds a chain with genesis {stored}, but the chain spec's genesis is {expected}; use another --datadir"
    )]
    WrongChain { stored: B256, expected: B256 },
    /// The datadir has no genesis block (run `infera init`).
    #[error("the datadir holds no chain; run `infera init` or start with --dev")]
    NoGenesis,
    /// An internal invariant failed: a bug or corrupted data.
    #[error("internal invariant violated: {0}")]
    Invariant(String),
    /// The node's configuration cannot work (e.g. a key that is not an authority).
    #[error("{0}")]
    Config(String),
    /// I/O error (datadir creation, signals).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias for this crate.
pub type NodeResult<T> = Result<T, NodeError>;

/// Everything needed to start a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where the database lives (`<datadir>/db`).
    pub datadir: PathBuf,
    /// The chain to run.
    pub chain: ChainSpec,
    /// HTTP JSON-RPC listen address (also accepts WebSocket upgrades); `None` disables it.
    pub http_addr: Option<SocketAddr>,
    /// Dedicated WebSocket listen address; `None` disables it.
    pub ws_addr: Option<SocketAddr>,
    /// Dev sealing period: zero seals as soon as a transaction arrives.
    pub dev_block_time: Duration,
    /// Receiver of block rewards (priority fees).
    pub coinbase: Address,
    /// RPC limits and CORS.
    pub rpc: RpcConfig,
    /// Transaction pool bounds.
    pub pool: PoolConfig,
}

/// Name of the file in the datadir that lists the node's peer-to-peer
/// addresses (one multiaddr with `/p2p/<peer id>` per line), written at start
/// so scripts can pass them to other nodes as `--bootnodes`.
pub const P2P_ADDRESSES_FILE: &str = "p2p-addresses";

/// Name of the node key file under the datadir.
pub const NODE_KEY_FILE: &str = "nodekey";

/// Opens the datadir's database, writing genesis if it is empty.
pub fn open_datadir(datadir: &std::path::Path, chain: &ChainSpec) -> NodeResult<Database> {
    std::fs::create_dir_all(datadir)?;
    let db = Database::open(&datadir.join("db"))?;
    match init_genesis(&db, chain)? {
        GenesisOutcome::Written(hash) => {
            info!(target: "infera::node", %hash, chain_id = chain.chain_id(), "wrote genesis block")
        }
        GenesisOutcome::AlreadyPresent(hash) => {
            info!(target: "infera::node", %hash, chain_id = chain.chain_id(), "found existing chain")
        }
    }
    Ok(db)
}

/// Runs a dev node until `shutdown` resolves.
pub async fn run_dev_node(
    config: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> NodeResult<()> {
    let db = open_datadir(&config.datadir, &config.chain)?;
    {
        let reader = db.reader()?;
        let head = reader.head_number()?.ok_or(NodeError::NoGenesis)?;
        let hash = reader.canonical_hash(head)?.unwrap_or_default();
        info!(target: "infera::node", head, %hash, datadir = %config.datadir.display(), "opened database");
    }
    let chain = Arc::new(config.chain.clone());
    let pool = Arc::new(Mutex::new(TxPool::new(config.pool)));
    let (events, _) = broadcast::channel(CHAIN_EVENT_CAPACITY);
    let tx_arrived = Arc::new(Notify::new());

    let ctx = RpcContext::new(
        db.clone(),
        chain.clone(),
        pool.clone(),
        events.clone(),
        tx_arrived.clone(),
        config.rpc.clone(),
    );
    let models = ctx.model_cache().clone();
    let servers = infera_rpc::start_servers(ctx, config.http_addr, config.ws_addr).await?;
    if let Some(addr) = servers.http_addr {
        info!(target: "infera::rpc", url = %format!("http://{addr}"), "HTTP JSON-RPC listening (WebSocket upgrades accepted)");
    }
    if let Some(addr) = servers.ws_addr {
        info!(target: "infera::rpc", url = %format!("ws://{addr}"), "WebSocket JSON-RPC listening");
    }

    let sealer = sealer::Sealer {
        db: db.clone(),
        chain,
        pool,
        events,
        tx_arrived,
        block_time: config.dev_block_time,
        coinbase: config.coinbase,
        models,
    };
    let sealer_task = tokio::spawn(sealer.run());
    info!(
        target: "infera::node",
        block_time_s = config.dev_block_time.as_secs(),
        "dev sealer started ({})",
        if config.dev_block_time.is_zero() { "a block per arriving transaction" } else { "periodic blocks" }
    );

    shutdown.await;
    info!(target: "infera::node", "shutting down");
    servers.stop().await;
    sealer_task.abort();
    // The sealer commits inside spawn_blocking; aborting the task does not
    // interrupt a commit in progress, and an interrupted one is rolled back by MDBX.
    let _ = sealer_task.await;
    drop(db);
    info!(target: "infera::node", "stopped");
    Ok(())
}
