//! Starting and running a node: the dev node (`run_dev_node`) and the
//! networked node (`run_network_node`) over the parts they share.

use std::sync::Arc;

use crate::{
    GenesisOutcome, KNOWN_PEERS_FILE, NODE_KEY_FILE, NodeConfig, NodeError, NodeResult,
    P2P_ADDRESSES_FILE, P2pConfig, chain, clique_sealer, inference_device, init_genesis, sealer,
    sync,
};
use infera_chainspec::ChainSpec;
use infera_precompiles::ModelCache;
use infera_rpc::RpcContext;
use infera_storage::Database;
use infera_txpool::{TxAdmission, TxPool};
use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast};
use tracing::info;

/// Capacity of the chain-event channel; a subscriber further behind than this
/// skips events rather than slowing the sealer.
pub const CHAIN_EVENT_CAPACITY: usize = 1024;

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

    /// Serves `/metrics` where `config` asks (`--metrics`), sampling this
    /// node's head, pool, peers and database.
    async fn serve_metrics(
        &self,
        config: &NodeConfig,
    ) -> NodeResult<Option<crate::metrics::NodeMetrics>> {
        let Some(addr) = config.metrics_addr else {
            return Ok(None);
        };
        let sampled = crate::metrics::Sampled {
            db: self.db.clone(),
            pool: self.pool.clone(),
            peers: self.rpc.peer_counter().clone(),
        };
        crate::metrics::start(addr, sampled).await.map(Some)
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
    let metrics = core.serve_metrics(&config).await?;
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
    drop(metrics);
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
    let metrics = core.serve_metrics(&config).await?;
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
        chain_id: config.chain.chain_id(),
        discovery: p2p.discovery,
        known_peers_file: Some(config.datadir.join(KNOWN_PEERS_FILE)),
        max_peers: p2p.max_peers,
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

    ctx.set_network(Arc::new(crate::net_admin::NetAdmin(net.clone())));
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
        #[cfg(feature = "test-hooks")]
        test_block_delay: p2p.test_sync_block_delay,
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
    drop(metrics);
    drop(db);
    info!(target: "infera::node", "stopped");
    Ok(())
}
