//! The node: opens storage, writes genesis, seals blocks in dev mode, serves
//! JSON-RPC, and shuts down cleanly.
//!
//! Crash safety does not depend on a clean shutdown: every block is committed
//! in one MDBX write transaction ([`builder::build_and_commit`]), so a
//! `kill -9` at any moment leaves the last committed block and its state.

pub mod builder;
pub mod chain;
mod clique_inputs;
pub mod clique_sealer;
pub mod genesis;
pub mod import;
pub mod inference_device;
mod sealer;
pub mod sync;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use infera_chainspec::ChainSpec;
use infera_precompiles::ModelCache;
use infera_primitives::{Address, B256};
use infera_rpc::{RpcConfig, RpcContext};
use infera_storage::Database;
use infera_txpool::{PoolConfig, TxAdmission, TxPool};
use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast};
use tracing::info;

pub use genesis::{GenesisOutcome, init_genesis};
pub use import::{
    ChainImport, ChainImportError, ImportConfig, ImportError, decode_block, decode_blocks,
    import_block, import_block_with, import_chain,
};
pub use inference_device::InferenceDevice;

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
    /// Where inferences run (`--inference.device`); never changes a result.
    pub inference_device: InferenceDevice,
}

/// Peer-to-peer settings of a networked (non-dev) node.
#[derive(Debug, Clone)]
pub struct P2pConfig {
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/30303`.
    pub listen_addr: infera_network::Multiaddr,
    /// Peers to dial at start and whenever they are disconnected.
    pub bootnodes: Vec<infera_network::Multiaddr>,
    /// This node's authority key, if it seals blocks.
    pub authority_key: Option<secp256k1::SecretKey>,
    /// Fault injection for consensus tests: compute wrong inference outputs
    /// (see `ModelCache::set_corrupt_outputs`). Honoured only by builds with
    /// the `test-hooks` feature; others ignore it.
    pub corrupt_inference: bool,
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

/// What the dev node and the networked node share: storage, the pool, the
/// chain-event channel, transaction admission, the inference engine and the
/// RPC context over them.
struct NodeCore {
    db: Database,
    chain: Arc<ChainSpec>,
    pool: Arc<Mutex<TxPool>>,
    events: broadcast::Sender<infera_primitives::ChainEvent>,
    /// Wakes the dev sealer when a transaction enters the pool.
    tx_arrived: Arc<Notify>,
    /// How transactions enter the pool, from the RPC and from peers.
    admission: TxAdmission,
    /// Decoded models, shared by the RPC, the importer and the sealers.
    models: Arc<ModelCache>,
    rpc: RpcContext,
}

impl NodeCore {
    /// Opens the datadir (writing genesis if it is empty) and builds the pool,
    /// the event channel, admission, the model cache and the RPC context.
    fn open(config: &NodeConfig) -> NodeResult<Self> {
        config.pool.validate().map_err(NodeError::Config)?;
        // Before the datadir: a device that was asked for and is missing
        // stops the node before it writes anything.
        let models = inference_device::model_cache(config.inference_device)?;
        let db = open_datadir(&config.datadir, &config.chain)?;
        let chain = Arc::new(config.chain.clone());
        let pool = Arc::new(Mutex::new(TxPool::new(config.pool)));
        let (events, _) = broadcast::channel(CHAIN_EVENT_CAPACITY);
        let tx_arrived = Arc::new(Notify::new());
        let admission = TxAdmission::new(
            db.clone(),
            chain.clone(),
            pool.clone(),
            events.clone(),
            tx_arrived.clone(),
        );
        let rpc = RpcContext::new(admission.clone(), models.clone(), config.rpc.clone());
        Ok(Self {
            db,
            chain,
            pool,
            events,
            tx_arrived,
            admission,
            models,
            rpc,
        })
    }
}

/// Starts the JSON-RPC servers `config` asks for and logs where they listen.
async fn serve_rpc(rpc: &RpcContext, config: &NodeConfig) -> NodeResult<infera_rpc::RpcServers> {
    let servers = infera_rpc::start_servers(rpc.clone(), config.http_addr, config.ws_addr).await?;
    if let Some(addr) = servers.http_addr {
        info!(target: "infera::rpc", url = %format!("http://{addr}"), "HTTP JSON-RPC listening (WebSocket upgrades accepted)");
    }
    if let Some(addr) = servers.ws_addr {
        info!(target: "infera::rpc", url = %format!("ws://{addr}"), "WebSocket JSON-RPC listening");
    }
    Ok(servers)
}

/// Runs a dev node until `shutdown` resolves.
pub async fn run_dev_node(
    config: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> NodeResult<()> {
    let core = NodeCore::open(&config)?;
    {
        let reader = core.db.reader()?;
        let head = reader.head_number()?.ok_or(NodeError::NoGenesis)?;
        let hash = reader.canonical_hash(head)?.unwrap_or_default();
        info!(target: "infera::node", head, %hash, datadir = %config.datadir.display(), "opened database");
    }
    let NodeCore {
        db,
        chain,
        pool,
        events,
        tx_arrived,
        models,
        rpc,
        ..
    } = core;
    let servers = serve_rpc(&rpc, &config).await?;

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

/// Runs a networked node (a chain with proof-of-authority rules) until
/// `shutdown` resolves: imports and re-executes every block from peers,
/// serves the chain to them, gossips transactions, and seals blocks in turn
/// when it holds an authority key.
pub async fn run_network_node(
    config: NodeConfig,
    p2p: P2pConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> NodeResult<()> {
    let Some(params) = config.chain.clique() else {
        return Err(NodeError::Config(
            "the chain has no proof-of-authority rules (config.clique in the genesis file); a networked node needs them".into(),
        ));
    };
    let clique = infera_consensus::Clique::new(params);
    let signer = match &p2p.authority_key {
        Some(key) => {
            let signer = clique_sealer::address_of_key(key);
            if !clique.is_signer(signer) {
                return Err(NodeError::Config(format!(
                    "--authority.key belongs to {signer}, which is not one of the chain's signers {:?}",
                    clique.signers()
                )));
            }
            Some(signer)
        }
        None => None,
    };

    let core = NodeCore::open(&config)?;
    let genesis_hash = core
        .db
        .reader()?
        .genesis_hash()?
        .ok_or(NodeError::NoGenesis)?;
    let NodeCore {
        db,
        chain,
        pool,
        events,
        admission,
        models,
        rpc: ctx,
        ..
    } = core;
    #[cfg(feature = "test-hooks")]
    if p2p.corrupt_inference {
        tracing::warn!(target: "infera::node", "TEST MODE: this node corrupts every inference output; honest peers will reject its blocks");
        models.set_corrupt_outputs(true);
    }
    let manager = chain::ChainManager::new(
        db.clone(),
        chain.clone(),
        models,
        pool.clone(),
        events.clone(),
    )?;
    let head = manager.head();
    info!(target: "infera::node", head = head.number, hash = %head.hash, total_difficulty = %head.total_difficulty, datadir = %config.datadir.display(), "opened database");
    let shared_head = manager.shared_head();
    let manager = Arc::new(Mutex::new(manager));

    let view = Arc::new(sync::StorageChainView {
        db: db.clone(),
        genesis_hash,
        head: shared_head.clone(),
    });
    let net_config = infera_network::NetworkConfig {
        listen_addr: p2p.listen_addr.clone(),
        bootnodes: p2p.bootnodes.clone(),
        key_file: config.datadir.join(NODE_KEY_FILE),
        genesis_hash,
        ..infera_network::NetworkConfig::default()
    };
    let (net, net_events) = infera_network::start(net_config, view)
        .await
        .map_err(|e| NodeError::Config(format!("cannot start the network: {e}")))?;
    let addresses: Vec<String> = net.listen_addrs().iter().map(ToString::to_string).collect();
    for addr in &addresses {
        info!(target: "infera::net", %addr, "p2p listening");
    }
    std::fs::write(
        config.datadir.join(P2P_ADDRESSES_FILE),
        addresses.join("\n") + "\n",
    )?;

    let servers = serve_rpc(&ctx, &config).await?;

    let (publish, local_blocks) = tokio::sync::mpsc::unbounded_channel();
    let sealer_task = match (p2p.authority_key, signer) {
        (Some(key), Some(signer)) => {
            info!(target: "infera::node", %signer, period_s = clique.period_s(), signers = clique.signers().len(), "sealing as an authority");
            let sealer = clique_sealer::CliqueSealer {
                manager: manager.clone(),
                clique: clique.clone(),
                key,
                signer,
                events: events.clone(),
                publish,
            };
            Some(tokio::spawn(sealer.run()))
        }
        _ => {
            info!(target: "infera::node", "following the chain (no --authority.key)");
            drop(publish);
            None
        }
    };
    let sync_state = sync::Sync {
        manager: manager.clone(),
        head: shared_head,
        net: net.clone(),
        admission,
        rpc: ctx.clone(),
        syncing: Arc::default(),
        peers: ctx.peer_counter().clone(),
    };
    let sync_task = tokio::spawn(sync::run_sync(
        sync_state,
        net_events,
        local_blocks,
        events.subscribe(),
    ));

    shutdown.await;
    info!(target: "infera::node", "shutting down");
    servers.stop().await;
    if let Some(task) = sealer_task {
        task.abort();
        let _ = task.await;
    }
    sync_task.abort();
    let _ = sync_task.await;
    net.shutdown().await;
    // An import or seal in progress runs on a blocking thread and finishes
    // (or is rolled back by MDBX if the process dies); wait for it.
    drop(manager.lock());
    drop(db);
    info!(target: "infera::node", "stopped");
    Ok(())
}
