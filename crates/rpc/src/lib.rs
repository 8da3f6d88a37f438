//! Ethereum JSON-RPC over HTTP and WebSocket, served by jsonrpsee.
//!
//! [`RpcContext`] holds handles to the node's parts (storage, chain spec,
//! pool, event channel, transaction admission, model cache); [`eth`]
//! implements the methods on it as plain functions, and [`server`] exposes
//! them through jsonrpsee with limits and CORS. Filters and subscriptions
//! feed on the node's [`ChainEvent`]s.

pub mod access_list;
pub mod admin;
mod apis;
pub mod capabilities;
pub mod convert;
pub mod debug;
mod error;
pub mod eth;
pub mod eth_config;
pub mod fees;
mod filters;
pub mod heavy;
pub mod infera;
mod metrics;
mod proof;
mod pubsub;
pub mod server;
pub mod signer;
pub mod simulate;
pub mod storage_values;
#[cfg(test)]
mod test_context;
pub mod testing;
pub mod txpool;

use std::sync::Arc;

use infera_chainspec::ChainSpec;
use infera_precompiles::ModelCache;
use infera_primitives::ChainEvent;
use infera_storage::Database;
use infera_txpool::{TxAdmission, TxPool};
use parking_lot::Mutex;
use tokio::sync::broadcast;

pub use apis::{ALL_NAMESPACES, PUBLIC_NAMESPACES, RpcApis};
pub use error::*;
pub use server::{RpcServers, start_servers};
pub use signer::DevSigner;

/// Largest request body accepted, in bytes. Large enough for a chunk of a
/// model upload (a transaction is bounded far below this by gas).
pub const DEFAULT_MAX_REQUEST_BYTES: u32 = 15 * 1024 * 1024;
/// Largest response body produced, in bytes.
pub const DEFAULT_MAX_RESPONSE_BYTES: u32 = 150 * 1024 * 1024;
/// Most calls in one batch request.
pub const DEFAULT_MAX_BATCH_LEN: u32 = 1_000;
/// Most simultaneous connections per server.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 500;
/// Most subscriptions per WebSocket connection.
pub const DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 1_024;
/// Widest block range one `eth_getLogs` may scan.
pub const DEFAULT_MAX_LOGS_BLOCK_RANGE: u64 = 10_000;
/// Most logs one `eth_getLogs` may return.
pub const DEFAULT_MAX_LOGS_RESULTS: usize = 20_000;
/// Most blocks one `eth_feeHistory` may cover.
pub const MAX_FEE_HISTORY_BLOCKS: u64 = 1_024;
/// Most filters installed at once (all clients together).
pub const MAX_INSTALLED_FILTERS: usize = 4_096;
/// A filter not polled for this long is removed, in seconds (geth: 5 minutes).
pub const FILTER_TIMEOUT_S: u64 = 300;
/// Most filters one client (IP address) may have installed at once, so that
/// one client cannot take all [`MAX_INSTALLED_FILTERS`].
pub const DEFAULT_MAX_FILTERS_PER_CLIENT: usize = 256;
/// Most simultaneous connections from one IP address per server (loopback
/// included), so that one address cannot take all `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: u32 = 64;
/// Time a client has to send a request's headers, counted from the request's
/// first byte, in seconds.
pub const DEFAULT_HEADER_READ_TIMEOUT_S: u64 = 10;
/// Time a client has to send a request's body, counted from the end of its
/// headers, in seconds.
pub const DEFAULT_BODY_READ_TIMEOUT_S: u64 = 30;
/// An HTTP connection with no request in progress for this long is closed,
/// in seconds (as is one whose peer stops reading a response for this long).
pub const DEFAULT_IDLE_TIMEOUT_S: u64 = 60;
/// Most gas one RPC execution (`eth_call`, `eth_estimateGas`...) may be
/// given; more is lowered to it (geth's `--rpc.gascap`). 0: no cap.
pub const DEFAULT_RPC_GAS_CAP: u64 = 50_000_000;
/// Wall-clock time one RPC execution request may take, waiting for its turn
/// included, in milliseconds (geth's `--rpc.evmtimeout`, 5 s). 0: no limit.
pub const DEFAULT_RPC_EVM_TIMEOUT_MS: u64 = 5_000;
/// Most execution requests waiting for their turn at once; more are refused
/// at once. Below tokio's 512 blocking threads, where they wait.
pub const MAX_QUEUED_HEAVY_CALLS: usize = 256;
/// The priority fee suggested by `eth_maxPriorityFeePerGas` when recent
/// blocks give no signal, in wei (1 gwei).
pub const DEFAULT_PRIORITY_FEE_WEI: u128 = 1_000_000_000;

/// RPC limits and CORS.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    pub max_request_bytes: u32,
    pub max_response_bytes: u32,
    pub max_batch_len: u32,
    pub max_connections: u32,
    /// Most simultaneous connections from one IP address, per server.
    pub max_connections_per_ip: u32,
    /// Time to send a request's headers, from its first byte.
    pub header_read_timeout: std::time::Duration,
    /// Time to send a request's body, from the end of its headers.
    pub body_read_timeout: std::time::Duration,
    /// An HTTP connection idle (or not reading its response) this long is closed.
    pub idle_timeout: std::time::Duration,
    /// Most installed filters per client (IP address).
    pub max_filters_per_client: usize,
    pub max_logs_block_range: u64,
    pub max_logs_results: usize,
    /// Allowed CORS origins; `["*"]` allows any.
    pub cors_origins: Vec<String>,
    /// What `web3_clientVersion` answers.
    pub client_version: String,
    /// Most gas one execution gets (`eth_call`, `eth_estimateGas`,
    /// `eth_createAccessList`, `eth_simulateV1` in all, `infera_dryRun`); 0: no cap.
    pub gas_cap: u64,
    /// Time one execution request may take, waiting included; zero: no limit.
    pub evm_timeout: std::time::Duration,
    /// Most execution requests executing at once (the others wait in line).
    pub max_heavy_calls: usize,
    /// Unlocked accounts (`eth_accounts`, `eth_sendTransaction`, `eth_sign`...):
    /// [`DevSigner::dev_accounts`] under `--dev`, empty on every other chain.
    pub dev_signers: Vec<DevSigner>,
    /// The namespaces the servers answer (`--http.api`); the others' methods
    /// are not registered, so calls get -32601 "method not found".
    pub apis: RpcApis,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_batch_len: DEFAULT_MAX_BATCH_LEN,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            header_read_timeout: std::time::Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_S),
            body_read_timeout: std::time::Duration::from_secs(DEFAULT_BODY_READ_TIMEOUT_S),
            idle_timeout: std::time::Duration::from_secs(DEFAULT_IDLE_TIMEOUT_S),
            max_filters_per_client: DEFAULT_MAX_FILTERS_PER_CLIENT,
            max_logs_block_range: DEFAULT_MAX_LOGS_BLOCK_RANGE,
            max_logs_results: DEFAULT_MAX_LOGS_RESULTS,
            cors_origins: vec!["*".to_string()],
            client_version: format!("infera/v{}", env!("CARGO_PKG_VERSION")),
            dev_signers: Vec::new(),
            gas_cap: DEFAULT_RPC_GAS_CAP,
            evm_timeout: std::time::Duration::from_millis(DEFAULT_RPC_EVM_TIMEOUT_MS),
            max_heavy_calls: heavy::default_max_heavy_calls(),
            apis: RpcApis::default(),
        }
    }
}

/// Handles to the node's parts that the RPC methods use.
#[derive(Clone)]
pub struct RpcContext {
    inner: Arc<RpcContextInner>,
}

struct RpcContextInner {
    /// Also the RPC's storage, chain spec, pool and event channel, so that
    /// `eth_sendRawTransaction` admits into the pool the other methods read.
    admission: TxAdmission,
    config: RpcConfig,
    filters: filters::FilterStore,
    /// The node's decoded models, shared by every execution (calls,
    /// estimates) with the block builder and the importer.
    models: Arc<ModelCache>,
    /// Held from nonce fill to pool admission by `eth_sendTransaction`, so
    /// concurrent sends from one dev account get distinct nonces.
    signing: Mutex<()>,
    /// Connected peers, for `net_peerCount`; zero without a network.
    peers: Arc<std::sync::atomic::AtomicUsize>,
    /// A catch-up with a peer in progress, for `eth_syncing`.
    sync: Arc<Mutex<Option<SyncProgress>>>,
    /// The peer-to-peer network, once the node started one (never on a `--dev` node).
    network: std::sync::OnceLock<Arc<dyn admin::AdminNetwork>>,
    /// Lets at most `config.max_heavy_calls` executions run at once.
    heavy: heavy::HeavyCallGate,
}

/// What `eth_syncing` reports while the node catches up with a peer (the
/// current block is the head at the time of the call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncProgress {
    /// The head when the catch-up started.
    pub starting_block: u64,
    /// The head of the peer being caught up with.
    pub highest_block: u64,
}

impl RpcContext {
    /// Bundles the node's handles for the RPC: `admission` (with the
    /// storage, chain spec, pool and event channel it works on) and the
    /// node's model cache, which its blocks are built and imported with.
    pub fn new(admission: TxAdmission, models: Arc<ModelCache>, config: RpcConfig) -> Self {
        let filters = filters::FilterStore::new(config.max_filters_per_client);
        let heavy = heavy::HeavyCallGate::new(config.max_heavy_calls, MAX_QUEUED_HEAVY_CALLS);
        Self {
            inner: Arc::new(RpcContextInner {
                admission,
                config,
                filters,
                models,
                signing: Mutex::new(()),
                peers: Arc::default(),
                sync: Arc::default(),
                network: std::sync::OnceLock::new(),
                heavy,
            }),
        }
    }

    pub(crate) fn db(&self) -> &Database {
        self.inner.admission.db()
    }
    pub(crate) fn chain(&self) -> &ChainSpec {
        self.inner.admission.chain()
    }
    pub(crate) fn pool(&self) -> &Mutex<TxPool> {
        self.inner.admission.pool()
    }
    pub(crate) fn events(&self) -> &broadcast::Sender<ChainEvent> {
        self.inner.admission.events()
    }
    pub(crate) fn admission(&self) -> &TxAdmission {
        &self.inner.admission
    }
    pub(crate) fn config(&self) -> &RpcConfig {
        &self.inner.config
    }
    pub(crate) fn heavy_gate(&self) -> &heavy::HeavyCallGate {
        &self.inner.heavy
    }
    pub(crate) fn signing_lock(&self) -> &Mutex<()> {
        &self.inner.signing
    }
    pub(crate) fn filters(&self) -> &filters::FilterStore {
        &self.inner.filters
    }
    /// The precompile provider every execution of the RPC runs with: the
    /// Ethereum precompiles plus the model registry and inference.
    pub fn precompiles(&self, spec: infera_evm::SpecId) -> infera_precompiles::InferaPrecompiles {
        infera_precompiles::InferaPrecompiles::new(spec, self.inner.models.clone())
    }
    /// The counter `net_peerCount` reports; the network keeps it current.
    pub fn peer_counter(&self) -> &Arc<std::sync::atomic::AtomicUsize> {
        &self.inner.peers
    }
    /// Hands the RPC the node's peer-to-peer network, for `admin_`, `net_peerCount` and
    /// `net_listening`. Started after the context, so set once it runs; a second call is
    /// ignored.
    pub fn set_network(&self, network: Arc<dyn admin::AdminNetwork>) {
        let _ = self.inner.network.set(network);
    }
    pub(crate) fn network_slot(&self) -> &std::sync::OnceLock<Arc<dyn admin::AdminNetwork>> {
        &self.inner.network
    }
    /// The catch-up `eth_syncing` reports; the network's sync keeps it current.
    pub fn sync_progress(&self) -> &Arc<Mutex<Option<SyncProgress>>> {
        &self.inner.sync
    }
    /// A pending or queued transaction of the pool, by hash.
    pub fn pool_transaction(
        &self,
        hash: infera_primitives::B256,
    ) -> Option<infera_primitives::RecoveredTx> {
        self.pool().lock().get(&hash).cloned()
    }
}
