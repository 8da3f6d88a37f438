//! What a node is started with: [`NodeConfig`] for every node, [`P2pConfig`]
//! for one on a network, and the names of its files in the datadir.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::InferenceDevice;
use infera_chainspec::ChainSpec;
use infera_primitives::Address;
use infera_rpc::RpcConfig;
use infera_txpool::PoolConfig;

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
    /// Where Prometheus scrapes `/metrics` (`--metrics`); `None`: not served.
    pub metrics_addr: Option<SocketAddr>,
}

/// Peer-to-peer settings of a networked (non-dev) node.
#[derive(Debug, Clone)]
pub struct P2pConfig {
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/30303`.
    pub listen_addr: infera_network::Multiaddr,
    /// Peers to dial at start and whenever they are disconnected.
    pub bootnodes: Vec<infera_network::Multiaddr>,
    /// Find further peers through the DHT and dial the known peers of earlier runs
    /// (`<datadir>/network/known-peers.json`); without it, only the bootnodes.
    pub discovery: bool,
    /// Most peer connections, inbound and outbound together.
    pub max_peers: u32,
    /// This node's authority key, if it seals blocks.
    pub authority_key: Option<secp256k1::SecretKey>,
    /// Fault injection for consensus tests: compute wrong inference outputs
    /// (see `ModelCache::set_corrupt_outputs`). Honoured only by builds with
    /// the `test-hooks` feature; others ignore it.
    pub corrupt_inference: bool,
    /// Test only: a pause before each range-synced block, so tests can watch
    /// `eth_syncing` during a catch-up. Honoured only with `test-hooks`.
    pub test_sync_block_delay: std::time::Duration,
}

/// Name of the file in the datadir that lists the node's peer-to-peer
/// addresses (one multiaddr with `/p2p/<peer id>` per line), written at start
/// so scripts can pass them to other nodes as `--bootnodes`.
pub const P2P_ADDRESSES_FILE: &str = "p2p-addresses";

/// Default for [`P2pConfig::max_peers`] (`--max-peers`).
pub const DEFAULT_MAX_PEERS: u32 = infera_network::config::DEFAULT_MAX_PEERS;

/// Where the peers met are remembered across restarts, under the datadir.
pub const KNOWN_PEERS_FILE: &str = "network/known-peers.json";

/// Name of the node key file under the datadir.
pub const NODE_KEY_FILE: &str = "nodekey";
