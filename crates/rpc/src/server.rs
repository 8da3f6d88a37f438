//! The jsonrpsee surface: method names, parameter shapes, servers, limits, CORS.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{
    Block, FeeHistory, Filter, FilterChanges, Log as RpcLog, Transaction, TransactionRequest,
};
use jsonrpsee::{
    Extensions, PendingSubscriptionSink,
    core::{
        BoxError, RpcResult as JsonResult, SubscriptionResult, async_trait,
        http_helpers::{HttpError, read_body},
        server::Methods,
    },
    proc_macros::rpc,
    server::{
        BatchRequestConfig, HttpBody, HttpRequest, HttpResponse, Server, ServerConfig,
        ServerHandle, StopHandle, TowerService, TowerServiceBuilder, http::response,
        serve_with_graceful_shutdown, stop_channel,
    },
};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    time::{Instant, Sleep},
};
use tower::{
    Service,
    layer::util::{Identity, Stack},
};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::convert::RpcReceipt;
use crate::{RpcContext, RpcError, RpcResult, filters, pubsub};

/// The Ethereum JSON-RPC methods this node serves.
#[rpc(server)]
pub trait EthApi {
    #[method(name = "web3_clientVersion")]
    fn client_version(&self) -> JsonResult<String>;
    #[method(name = "web3_sha3")]
    fn sha3(&self, data: Bytes) -> JsonResult<B256>;
    #[method(name = "net_version")]
    fn net_version(&self) -> JsonResult<String>;
    #[method(name = "net_listening")]
    fn net_listening(&self) -> JsonResult<bool>;
    #[method(name = "net_peerCount")]
    fn net_peer_count(&self) -> JsonResult<U64>;
    #[method(name = "eth_chainId")]
    fn chain_id(&self) -> JsonResult<U64>;
    #[method(name = "eth_blockNumber")]
    fn block_number(&self) -> JsonResult<U64>;
    #[method(name = "eth_syncing")]
    fn syncing(&self) -> JsonResult<serde_json::Value>;
    #[method(name = "eth_accounts")]
    fn accounts(&self) -> JsonResult<Vec<Address>>;
    #[method(name = "eth_getBalance")]
    fn balance(&self, address: Address, block: Option<BlockId>) -> JsonResult<U256>;
    #[method(name = "eth_getTransactionCount")]
    fn transaction_count(&self, address: Address, block: Option<BlockId>) -> JsonResult<U256>;
    #[method(name = "eth_getCode")]
    fn code(&self, address: Address, block: Option<BlockId>) -> JsonResult<Bytes>;
    #[method(name = "eth_getStorageAt")]
    fn storage_at(
        &self,
        address: Address,
        slot: String,
        block: Option<BlockId>,
    ) -> JsonResult<B256>;
    #[method(name = "eth_getStorageValues")]
    fn storage_values(
        &self,
        request: std::collections::BTreeMap<Address, Vec<String>>,
        block: Option<BlockId>,
    ) -> JsonResult<std::collections::BTreeMap<Address, Vec<B256>>>;
    #[method(name = "eth_baseFee")]
    fn base_fee(&self) -> JsonResult<U256>;
    #[method(name = "eth_blobBaseFee")]
    fn blob_base_fee(&self) -> JsonResult<U256>;
    #[method(name = "eth_config")]
    fn eth_config(&self) -> JsonResult<alloy_eips::eip7910::EthConfig>;
    #[method(name = "eth_capabilities")]
    fn capabilities(&self) -> JsonResult<crate::capabilities::Capabilities>;
    #[method(name = "txpool_status")]
    fn txpool_status(&self) -> JsonResult<crate::txpool::TxPoolStatus>;
    #[method(name = "txpool_content")]
    fn txpool_content(&self) -> JsonResult<crate::txpool::TxPoolContent>;
    #[method(name = "txpool_contentFrom")]
    fn txpool_content_from(&self, address: Address)
    -> JsonResult<crate::txpool::TxPoolContentFrom>;
    #[method(name = "eth_createAccessList", blocking)]
    fn create_access_list(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> JsonResult<crate::access_list::AccessListResult>;
    #[method(name = "eth_getProof", blocking)]
    fn proof(
        &self,
        address: Address,
        keys: Vec<String>,
        block: Option<BlockId>,
    ) -> JsonResult<alloy_rpc_types_eth::EIP1186AccountProofResponse>;
    #[method(name = "eth_gasPrice")]
    fn gas_price(&self) -> JsonResult<U256>;
    #[method(name = "eth_maxPriorityFeePerGas")]
    fn max_priority_fee(&self) -> JsonResult<U256>;
    #[method(name = "eth_feeHistory", blocking)]
    fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> JsonResult<FeeHistory>;
    #[method(name = "eth_call", blocking)]
    fn call(&self, request: TransactionRequest, block: Option<BlockId>) -> JsonResult<Bytes>;
    #[method(name = "eth_simulateV1", blocking)]
    fn simulate_v1(
        &self,
        payload: alloy_rpc_types_eth::simulate::SimulatePayload,
        block: Option<BlockId>,
    ) -> JsonResult<Value>;
    #[method(name = "eth_estimateGas", blocking)]
    fn estimate_gas(&self, request: TransactionRequest, block: Option<BlockId>) -> JsonResult<U64>;
    #[method(name = "eth_sendRawTransaction")]
    fn send_raw_transaction(&self, raw: Bytes) -> JsonResult<B256>;
    #[method(name = "eth_getTransactionByHash")]
    fn transaction_by_hash(&self, hash: B256) -> JsonResult<Option<Transaction>>;
    #[method(name = "eth_getTransactionReceipt")]
    fn transaction_receipt(&self, hash: B256) -> JsonResult<Option<RpcReceipt>>;
    #[method(name = "eth_getBlockReceipts")]
    fn block_receipts(&self, block: BlockId) -> JsonResult<Option<Vec<RpcReceipt>>>;
    #[method(name = "eth_getBlockByNumber")]
    fn block_by_number(
        &self,
        number: BlockNumberOrTag,
        full: bool,
    ) -> JsonResult<Option<Block<Transaction>>>;
    #[method(name = "eth_getBlockByHash")]
    fn block_by_hash(&self, hash: B256, full: bool) -> JsonResult<Option<Block<Transaction>>>;
    #[method(name = "eth_getBlockTransactionCountByNumber")]
    fn block_tx_count_by_number(&self, number: BlockNumberOrTag) -> JsonResult<Option<U64>>;
    #[method(name = "eth_getBlockTransactionCountByHash")]
    fn block_tx_count_by_hash(&self, hash: B256) -> JsonResult<Option<U64>>;
    #[method(name = "eth_getTransactionByBlockNumberAndIndex")]
    fn tx_by_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> JsonResult<Option<Transaction>>;
    #[method(name = "eth_getTransactionByBlockHashAndIndex")]
    fn tx_by_hash_and_index(&self, hash: B256, index: U64) -> JsonResult<Option<Transaction>>;
    #[method(name = "eth_getUncleCountByBlockNumber")]
    fn uncle_count_by_number(&self, number: BlockNumberOrTag) -> JsonResult<Option<U64>>;
    #[method(name = "eth_getUncleCountByBlockHash")]
    fn uncle_count_by_hash(&self, hash: B256) -> JsonResult<Option<U64>>;
    #[method(name = "eth_getLogs", blocking)]
    fn logs(&self, filter: Filter) -> JsonResult<Vec<RpcLog>>;
    #[method(name = "eth_newFilter", with_extensions)]
    fn new_filter(&self, filter: Filter) -> JsonResult<String>;
    #[method(name = "eth_newBlockFilter", with_extensions)]
    fn new_block_filter(&self) -> JsonResult<String>;
    #[method(name = "eth_newPendingTransactionFilter", with_extensions)]
    fn new_pending_transaction_filter(&self) -> JsonResult<String>;
    #[method(name = "eth_getFilterChanges", blocking)]
    fn filter_changes(&self, id: String) -> JsonResult<FilterChanges>;
    #[method(name = "eth_getFilterLogs", blocking)]
    fn filter_logs(&self, id: String) -> JsonResult<Vec<RpcLog>>;
    #[method(name = "eth_uninstallFilter")]
    fn uninstall_filter(&self, id: String) -> JsonResult<bool>;
    #[subscription(name = "eth_subscribe" => "eth_subscription", unsubscribe = "eth_unsubscribe", item = Value)]
    async fn subscribe(&self, kind: String, params: Option<Value>) -> SubscriptionResult;
}

/// The `infera_` methods: the model registry and inference (see [`crate::infera`]).
#[rpc(server, namespace = "infera")]
pub trait InferaApi {
    #[method(name = "listModels", blocking)]
    fn list_models(
        &self,
        block: Option<BlockId>,
        start: Option<U64>,
        limit: Option<U64>,
    ) -> JsonResult<Vec<crate::infera::ModelSummary>>;
    #[method(name = "getModel", blocking)]
    fn get_model(
        &self,
        id: B256,
        block: Option<BlockId>,
    ) -> JsonResult<Option<crate::infera::ModelDetails>>;
    #[method(name = "getUpload", blocking)]
    fn get_upload(
        &self,
        uploader: Address,
        id: B256,
        block: Option<BlockId>,
    ) -> JsonResult<crate::infera::UploadDetails>;
    #[method(name = "dryRun", blocking)]
    fn dry_run(
        &self,
        id: B256,
        input: Bytes,
        block: Option<BlockId>,
    ) -> JsonResult<crate::infera::DryRun>;
}

impl InferaApiServer for RpcContext {
    fn list_models(
        &self,
        block: Option<BlockId>,
        start: Option<U64>,
        limit: Option<U64>,
    ) -> JsonResult<Vec<crate::infera::ModelSummary>> {
        ok(self.infera_list_models(block, start, limit))
    }
    fn get_model(
        &self,
        id: B256,
        block: Option<BlockId>,
    ) -> JsonResult<Option<crate::infera::ModelDetails>> {
        ok(self.infera_get_model(id, block))
    }
    fn get_upload(
        &self,
        uploader: Address,
        id: B256,
        block: Option<BlockId>,
    ) -> JsonResult<crate::infera::UploadDetails> {
        ok(self.infera_get_upload(uploader, id, block))
    }
    fn dry_run(
        &self,
        id: B256,
        input: Bytes,
        block: Option<BlockId>,
    ) -> JsonResult<crate::infera::DryRun> {
        ok(self.infera_dry_run(id, input, block))
    }
}

fn ok<T>(result: RpcResult<T>) -> JsonResult<T> {
    result.map_err(Into::into)
}

/// The address a request came from: the accept loop puts it in the HTTP
/// request's extensions, and jsonrpsee hands those to every call of the
/// request (and of the WebSocket connection it upgrades to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

fn client_ip(ext: &Extensions) -> Option<IpAddr> {
    ext.get::<ClientAddr>().map(|client| client.0)
}

#[async_trait]
impl EthApiServer for RpcContext {
    fn client_version(&self) -> JsonResult<String> {
        Ok(RpcContext::client_version(self))
    }
    fn sha3(&self, data: Bytes) -> JsonResult<B256> {
        Ok(alloy_primitives::keccak256(&data))
    }
    fn net_version(&self) -> JsonResult<String> {
        Ok(self.chain().chain_id().to_string())
    }
    fn net_listening(&self) -> JsonResult<bool> {
        // A node without a peer-to-peer network (--dev) accepts no peers.
        Ok(self
            .network()
            .is_some_and(|network| !network.listen_addrs().is_empty()))
    }
    fn net_peer_count(&self) -> JsonResult<U64> {
        let peers = match self.network() {
            Some(network) => network.peer_count(),
            None => self
                .peer_counter()
                .load(std::sync::atomic::Ordering::Relaxed),
        };
        Ok(U64::from(peers))
    }
    fn chain_id(&self) -> JsonResult<U64> {
        Ok(RpcContext::chain_id(self))
    }
    fn block_number(&self) -> JsonResult<U64> {
        ok(RpcContext::block_number(self))
    }
    fn syncing(&self) -> JsonResult<serde_json::Value> {
        // `false` at the head (a dev node always is); while catching up with
        // a peer, geth's object of hex quantities.
        let progress = *self.sync_progress().lock();
        let Some(progress) = progress else {
            return Ok(serde_json::Value::Bool(false));
        };
        let current = ok(RpcContext::block_number(self))?;
        if current.to::<u64>() >= progress.highest_block {
            return Ok(serde_json::Value::Bool(false));
        }
        Ok(serde_json::json!({
            "startingBlock": U64::from(progress.starting_block),
            "currentBlock": current,
            "highestBlock": U64::from(progress.highest_block),
        }))
    }
    fn accounts(&self) -> JsonResult<Vec<Address>> {
        // The dev accounts under `--dev` (see `signer.rs`); otherwise none.
        Ok(RpcContext::accounts(self))
    }
    fn balance(&self, address: Address, block: Option<BlockId>) -> JsonResult<U256> {
        ok(RpcContext::balance(self, address, block))
    }
    fn transaction_count(&self, address: Address, block: Option<BlockId>) -> JsonResult<U256> {
        ok(RpcContext::transaction_count(self, address, block))
    }
    fn code(&self, address: Address, block: Option<BlockId>) -> JsonResult<Bytes> {
        ok(RpcContext::code(self, address, block))
    }
    fn storage_at(
        &self,
        address: Address,
        slot: String,
        block: Option<BlockId>,
    ) -> JsonResult<B256> {
        let slot = crate::proof::decode_storage_key(&slot)?.0;
        ok(RpcContext::storage_at(self, address, slot.into(), block))
    }
    fn storage_values(
        &self,
        request: std::collections::BTreeMap<Address, Vec<String>>,
        block: Option<BlockId>,
    ) -> JsonResult<std::collections::BTreeMap<Address, Vec<B256>>> {
        ok(RpcContext::storage_values(self, request, block))
    }
    fn create_access_list(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> JsonResult<crate::access_list::AccessListResult> {
        ok(RpcContext::create_access_list(self, request, block))
    }
    fn base_fee(&self) -> JsonResult<U256> {
        ok(RpcContext::base_fee(self))
    }
    fn blob_base_fee(&self) -> JsonResult<U256> {
        ok(RpcContext::blob_base_fee(self))
    }
    fn eth_config(&self) -> JsonResult<alloy_eips::eip7910::EthConfig> {
        ok(RpcContext::eth_config(self))
    }
    fn capabilities(&self) -> JsonResult<crate::capabilities::Capabilities> {
        ok(RpcContext::capabilities(self))
    }
    fn txpool_status(&self) -> JsonResult<crate::txpool::TxPoolStatus> {
        Ok(RpcContext::txpool_status(self))
    }
    fn txpool_content(&self) -> JsonResult<crate::txpool::TxPoolContent> {
        Ok(RpcContext::txpool_content(self))
    }
    fn txpool_content_from(
        &self,
        address: Address,
    ) -> JsonResult<crate::txpool::TxPoolContentFrom> {
        Ok(RpcContext::txpool_content_from(self, address))
    }
    fn proof(
        &self,
        address: Address,
        keys: Vec<String>,
        block: Option<BlockId>,
    ) -> JsonResult<alloy_rpc_types_eth::EIP1186AccountProofResponse> {
        ok(RpcContext::proof(self, address, keys, block))
    }
    fn gas_price(&self) -> JsonResult<U256> {
        ok(RpcContext::gas_price(self))
    }
    fn max_priority_fee(&self) -> JsonResult<U256> {
        ok(RpcContext::max_priority_fee(self))
    }
    fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> JsonResult<FeeHistory> {
        ok(RpcContext::fee_history(
            self,
            block_count.to(),
            newest,
            percentiles,
        ))
    }
    fn call(&self, request: TransactionRequest, block: Option<BlockId>) -> JsonResult<Bytes> {
        ok(RpcContext::call(self, request, block))
    }
    fn simulate_v1(
        &self,
        payload: alloy_rpc_types_eth::simulate::SimulatePayload,
        block: Option<BlockId>,
    ) -> JsonResult<Value> {
        RpcContext::simulate_v1(self, payload, block)
    }
    fn estimate_gas(&self, request: TransactionRequest, block: Option<BlockId>) -> JsonResult<U64> {
        ok(RpcContext::estimate_gas(self, request, block))
    }
    fn send_raw_transaction(&self, raw: Bytes) -> JsonResult<B256> {
        ok(RpcContext::send_raw_transaction(self, raw))
    }
    fn transaction_by_hash(&self, hash: B256) -> JsonResult<Option<Transaction>> {
        ok(RpcContext::transaction_by_hash(self, hash))
    }
    fn transaction_receipt(&self, hash: B256) -> JsonResult<Option<RpcReceipt>> {
        ok(RpcContext::transaction_receipt(self, hash))
    }
    fn block_receipts(&self, block: BlockId) -> JsonResult<Option<Vec<RpcReceipt>>> {
        ok(RpcContext::block_receipts(self, block))
    }
    fn block_by_number(
        &self,
        number: BlockNumberOrTag,
        full: bool,
    ) -> JsonResult<Option<Block<Transaction>>> {
        ok(self.block_by_id(BlockId::Number(number), full))
    }
    fn block_by_hash(&self, hash: B256, full: bool) -> JsonResult<Option<Block<Transaction>>> {
        ok(self.block_by_id(BlockId::from(hash), full))
    }
    fn block_tx_count_by_number(&self, number: BlockNumberOrTag) -> JsonResult<Option<U64>> {
        ok(self.block_transaction_count(BlockId::Number(number)))
    }
    fn block_tx_count_by_hash(&self, hash: B256) -> JsonResult<Option<U64>> {
        ok(self.block_transaction_count(BlockId::from(hash)))
    }
    fn tx_by_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> JsonResult<Option<Transaction>> {
        ok(self.transaction_by_block_and_index(BlockId::Number(number), index))
    }
    fn tx_by_hash_and_index(&self, hash: B256, index: U64) -> JsonResult<Option<Transaction>> {
        ok(self.transaction_by_block_and_index(BlockId::from(hash), index))
    }
    fn uncle_count_by_number(&self, number: BlockNumberOrTag) -> JsonResult<Option<U64>> {
        ok(self
            .block_transaction_count(BlockId::Number(number))
            .map(|c| c.map(|_| U64::ZERO)))
    }
    fn uncle_count_by_hash(&self, hash: B256) -> JsonResult<Option<U64>> {
        ok(self
            .block_transaction_count(BlockId::from(hash))
            .map(|c| c.map(|_| U64::ZERO)))
    }
    fn logs(&self, filter: Filter) -> JsonResult<Vec<RpcLog>> {
        ok(RpcContext::logs(self, &filter))
    }
    fn new_filter(&self, ext: &Extensions, filter: Filter) -> JsonResult<String> {
        filters::with_client(client_ip(ext), || ok(RpcContext::new_filter(self, filter)))
    }
    fn new_block_filter(&self, ext: &Extensions) -> JsonResult<String> {
        filters::with_client(client_ip(ext), || ok(RpcContext::new_block_filter(self)))
    }
    fn new_pending_transaction_filter(&self, ext: &Extensions) -> JsonResult<String> {
        filters::with_client(client_ip(ext), || {
            ok(RpcContext::new_pending_transaction_filter(self))
        })
    }
    fn filter_changes(&self, id: String) -> JsonResult<FilterChanges> {
        ok(RpcContext::filter_changes(self, &id))
    }
    fn filter_logs(&self, id: String) -> JsonResult<Vec<RpcLog>> {
        ok(RpcContext::filter_logs(self, &id))
    }
    fn uninstall_filter(&self, id: String) -> JsonResult<bool> {
        Ok(RpcContext::uninstall_filter(self, &id))
    }
    async fn subscribe(
        &self,
        pending: PendingSubscriptionSink,
        kind: String,
        params: Option<Value>,
    ) -> SubscriptionResult {
        pubsub::subscribe(self.clone(), pending, kind, params).await
    }
}

/// The running servers.
pub struct RpcServers {
    /// Bound address of the HTTP server (WebSocket upgrades accepted too).
    pub http_addr: Option<SocketAddr>,
    /// Bound address of the dedicated WebSocket server.
    pub ws_addr: Option<SocketAddr>,
    handles: Vec<ServerHandle>,
}

impl RpcServers {
    /// Stops the servers and waits until they have stopped.
    pub async fn stop(self) {
        for handle in self.handles {
            let _ = handle.stop();
            handle.stopped().await;
        }
    }
}

/// Starts the HTTP server (which also accepts WebSocket upgrades) and the
/// dedicated WebSocket server, each when its address is given.
pub async fn start_servers(
    ctx: RpcContext,
    http: Option<SocketAddr>,
    ws: Option<SocketAddr>,
) -> RpcResult<RpcServers> {
    let mut servers = RpcServers {
        http_addr: None,
        ws_addr: None,
        handles: Vec::new(),
    };
    if let Some(addr) = http {
        let (bound, handle) = start_one(&ctx, addr).await?;
        servers.http_addr = Some(bound);
        servers.handles.push(handle);
    }
    if let Some(addr) = ws {
        let (bound, handle) = start_one(&ctx, addr).await?;
        servers.ws_addr = Some(bound);
        servers.handles.push(handle);
    }
    Ok(servers)
}

/// How long the accept loop pauses after a failed accept (out of file
/// descriptors, typically) before trying again, in milliseconds.
const ACCEPT_ERROR_BACKOFF_MS: u64 = 100;
/// How long a refused connection gets to take its 429 answer, in milliseconds.
const REFUSAL_LINGER_MS: u64 = 1_000;
/// Most bytes of a refused connection's request read (and dropped) so that
/// closing it does not reset the connection before the client reads the 429.
const REFUSAL_DRAIN_BYTES: usize = 64 * 1024;

type CorsStack = Stack<CorsLayer, Identity>;
type RpcStack = Stack<crate::metrics::RpcMetricsLayer, Identity>;
type ServiceBuilder = TowerServiceBuilder<RpcStack, CorsStack>;

/// Binds `addr` and serves it with our own accept loop rather than
/// jsonrpsee's `Server::start`: jsonrpsee bounds neither connections per
/// address nor the time a client may take to send a request, and it holds a
/// connection permit while a request body trickles in, so slow clients could
/// take every permit. Here each connection is served by jsonrpsee's tower
/// service behind [`TimedIo`] (header and idle deadlines) and a body read
/// with a deadline, and the accept loop counts connections per address.
async fn start_one(ctx: &RpcContext, addr: SocketAddr) -> RpcResult<(SocketAddr, ServerHandle)> {
    let config = ctx.config();
    let server_config = ServerConfig::builder()
        .max_request_body_size(config.max_request_bytes)
        .max_response_body_size(config.max_response_bytes)
        .max_connections(config.max_connections)
        .max_subscriptions_per_connection(crate::DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION)
        .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_len))
        .set_id_provider(HexIdProvider::default())
        .build();
    let origins = if config.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let parsed: Vec<_> = config
            .cors_origins
            .iter()
            .filter_map(|o| o.parse().ok())
            .collect();
        AllowOrigin::list(parsed)
    };
    let cors = CorsLayer::new()
        .allow_origin(origins)
        .allow_methods(Any)
        .allow_headers(Any);
    let methods: Methods = served_methods(ctx)?.into();
    let rpc_metrics = crate::metrics::RpcMetricsLayer::new(&methods, config.max_response_bytes);
    let builder: ServiceBuilder = Server::builder()
        .set_config(server_config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(cors))
        .set_rpc_middleware(
            jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new().layer(rpc_metrics),
        )
        .to_service_builder();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| RpcError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| RpcError::Bind { addr, source })?;
    let limits = ConnectionLimits::new(config);
    let (stop, handle) = stop_channel();
    tokio::spawn(accept_loop(listener, builder, methods, limits, stop));
    Ok((bound, handle))
}

/// The methods a server answers: every namespace's, less those
/// [`crate::RpcConfig::apis`] leaves out (`--http.api`).
pub fn served_methods(ctx: &RpcContext) -> RpcResult<jsonrpsee::RpcModule<RpcContext>> {
    let mut methods = EthApiServer::into_rpc(ctx.clone());
    methods
        .merge(InferaApiServer::into_rpc(ctx.clone()))
        .map_err(|e| RpcError::Evm(format!("registering the infera_ methods: {e}")))?;
    methods
        .merge(crate::signer::SignerApiServer::into_rpc(ctx.clone()))
        .map_err(|e| RpcError::Evm(format!("registering the signing methods: {e}")))?;
    methods
        .merge(crate::debug::DebugApiServer::into_rpc(ctx.clone()))
        .map_err(|e| RpcError::Evm(format!("registering the debug_ methods: {e}")))?;
    methods
        .merge(crate::testing::TestingApiServer::into_rpc(ctx.clone()))
        .map_err(|e| RpcError::Evm(format!("registering the testing_ methods: {e}")))?;
    methods
        .merge(crate::admin::AdminApiServer::into_rpc(ctx.clone()))
        .map_err(|e| RpcError::Evm(format!("registering the admin_ methods: {e}")))?;
    let unserved: Vec<&'static str> = methods
        .method_names()
        .filter(|name| !ctx.config().apis.serves(name))
        .collect();
    for name in unserved {
        methods.remove_method(name);
    }
    Ok(methods)
}

async fn accept_loop(
    listener: TcpListener,
    builder: ServiceBuilder,
    methods: Methods,
    limits: Arc<ConnectionLimits>,
    stop: StopHandle,
) {
    let stopped = stop.clone().shutdown();
    tokio::pin!(stopped);
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => accepted,
        };
        let (socket, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::debug!(%err, "accepting an RPC connection failed");
                tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_BACKOFF_MS)).await;
                continue;
            }
        };
        let ip = remote.ip().to_canonical();
        let activity = Arc::new(Activity::new(
            limits.header_read_timeout,
            limits.idle_timeout,
        ));
        match limits.try_open(ip, &activity) {
            Ok(slot) => {
                let service = builder.clone().build(methods.clone(), stop.clone());
                serve_connection(
                    socket,
                    slot,
                    activity,
                    service,
                    limits.clone(),
                    stop.clone(),
                );
            }
            Err(reason) => {
                tracing::debug!(%remote, %reason, "RPC connection refused");
                tokio::spawn(refuse(socket, reason));
            }
        }
    }
}

/// Connections open per address and in all, for one server.
///
/// When the server is full, a newcomer from an address holding fewer
/// connections than the busiest address takes the oldest connection of that
/// address (which is closed): many slow connections from a few addresses
/// then cannot keep a client from another address out.
struct ConnectionLimits {
    per_ip: u32,
    total: u32,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    idle_timeout: Duration,
    max_request_bytes: u32,
    open: Mutex<OpenConnections>,
}

#[derive(Default)]
struct OpenConnections {
    total: u32,
    next_id: u64,
    /// Each address's open connections, oldest first.
    by_ip: HashMap<IpAddr, BTreeMap<u64, Arc<Activity>>>,
}

/// One open connection, counted until dropped (with its socket, which may
/// outlive the HTTP exchange as a WebSocket).
struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
    id: u64,
}

impl ConnectionLimits {
    fn new(config: &crate::RpcConfig) -> Arc<Self> {
        Arc::new(Self {
            per_ip: config.max_connections_per_ip,
            total: config.max_connections,
            header_read_timeout: config.header_read_timeout,
            body_read_timeout: config.body_read_timeout,
            idle_timeout: config.idle_timeout,
            max_request_bytes: config.max_request_bytes,
            open: Mutex::default(),
        })
    }

    fn try_open(
        self: &Arc<Self>,
        ip: IpAddr,
        activity: &Arc<Activity>,
    ) -> Result<ConnectionSlot, String> {
        let mut open = self.open.lock();
        let from_ip = open.by_ip.get(&ip).map_or(0, BTreeMap::len);
        if from_ip >= self.per_ip as usize {
            return Err(format!(
                "too many connections from {ip} (at most {} per address, \
                 --rpc.max-conns-per-ip); close some or try again later",
                self.per_ip
            ));
        }
        if open.total >= self.total {
            let busiest = open
                .by_ip
                .iter()
                .map(|(ip, conns)| (*ip, conns.len()))
                .max_by_key(|(_, n)| *n);
            let Some((busiest, held)) = busiest.filter(|(_, held)| *held > from_ip + 1) else {
                return Err(format!(
                    "too many connections (at most {} per server); try again later",
                    self.total
                ));
            };
            let conns = open.by_ip.get_mut(&busiest).expect("found just above");
            if let Some((_, oldest)) = conns.pop_first() {
                oldest.evict();
            }
            if conns.is_empty() {
                open.by_ip.remove(&busiest);
            }
            open.total -= 1;
            infera_metrics::rpc::connection_closed();
            tracing::debug!(%busiest, held, newcomer = %ip, "RPC server full: closed the busiest address's oldest connection");
        }
        let id = open.next_id;
        open.next_id += 1;
        open.by_ip
            .entry(ip)
            .or_default()
            .insert(id, activity.clone());
        open.total += 1;
        infera_metrics::rpc::connection_opened();
        Ok(ConnectionSlot {
            limits: self.clone(),
            ip,
            id,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock();
        let Some(conns) = open.by_ip.get_mut(&self.ip) else {
            return;
        };
        // An evicted connection was uncounted when it was evicted.
        if conns.remove(&self.id).is_some() {
            if conns.is_empty() {
                open.by_ip.remove(&self.ip);
            }
            open.total -= 1;
            infera_metrics::rpc::connection_closed();
        }
    }
}

/// Most bytes read past `--rpc.max-request-bytes` from a request that
/// declared a larger body, so that its 413 reaches the client (16 MiB).
const TOO_LARGE_DRAIN_BYTES: u64 = 16 << 20;

/// Answers a connection over a limit with 429 and the reason, then closes it.
async fn refuse(mut socket: TcpStream, reason: String) {
    let body = format!("{reason}\n");
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let linger = async {
        socket.write_all(answer.as_bytes()).await?;
        socket.shutdown().await?;
        // Closing with unread request bytes would reset the connection and
        // could discard the answer before the client reads it.
        let mut drained = 0;
        let mut buf = [0u8; 4096];
        while drained < REFUSAL_DRAIN_BYTES {
            match socket.read(&mut buf).await? {
                0 => break,
                n => drained += n,
            }
        }
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_millis(REFUSAL_LINGER_MS), linger).await;
}

/// Serves one accepted connection with jsonrpsee's tower service. The request
/// body is read here, under the body deadline and outside jsonrpsee (whose
/// connection permit is then held only while a call runs), and handed on in
/// memory.
fn serve_connection(
    socket: TcpStream,
    slot: ConnectionSlot,
    activity: Arc<Activity>,
    service: TowerService<RpcStack, CorsStack>,
    limits: Arc<ConnectionLimits>,
    stop: StopHandle,
) {
    let ip = slot.ip;
    let _ = socket.set_nodelay(true);
    let io = TimedIo::new(socket, slot, activity.clone(), limits.idle_timeout);
    let stop_for_requests = stop.clone();
    let http = tower::service_fn(move |request: HttpRequest<_>| {
        let mut service = service.clone();
        let activity = activity.clone();
        let limits = limits.clone();
        let stop = stop_for_requests.clone();
        let handled: Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>> =
            Box::pin(async move {
                let _request = activity.begin_request();
                let (mut parts, body) = request.into_parts();
                parts.extensions.insert(ClientAddr(ip));
                let is_rpc_call = parts.method == "POST"
                    && jsonrpsee::server::http::is_json(parts.headers.get("content-type"));
                let request = if is_rpc_call {
                    let max = limits.max_request_bytes;
                    let declared: Option<u64> = parts
                        .headers
                        .get("content-length")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse().ok());
                    if let Some(declared) = declared
                        && declared > u64::from(max)
                    {
                        // Answering before the body is read makes the close
                        // reset the connection, and a client still writing
                        // sees a broken pipe instead of the 413 and its
                        // reason. A body not far over the limit is read
                        // first (bounded, under the body deadline).
                        if declared <= u64::from(max) + TOO_LARGE_DRAIN_BYTES {
                            let cap = u32::try_from(declared).unwrap_or(u32::MAX);
                            // No headers: the declared length is not
                            // checked again, the body is read to its end.
                            let no_headers = Default::default();
                            let drain = read_body(&no_headers, body, cap);
                            let _ = tokio::time::timeout(limits.body_read_timeout, drain).await;
                        }
                        return Ok(response::too_large(max));
                    }
                    let read = tokio::time::timeout(
                        limits.body_read_timeout,
                        read_body(&parts.headers, body, max),
                    );
                    let read = tokio::select! {
                        read = read => read,
                        _ = stop.shutdown() => return Ok(plain_response(503, "the server is stopping".into())),
                    };
                    let bytes = match read {
                        Err(_elapsed) => {
                            return Ok(plain_response(
                                408,
                                format!(
                                    "request body not received within {} ms; closing the connection",
                                    limits.body_read_timeout.as_millis()
                                ),
                            ));
                        }
                        Ok(Err(HttpError::TooLarge)) => return Ok(response::too_large(max)),
                        Ok(Err(HttpError::Malformed)) => return Ok(response::malformed()),
                        Ok(Err(HttpError::Stream(err))) => {
                            tracing::debug!(%err, "reading an RPC request body failed");
                            return Ok(response::internal_error());
                        }
                        Ok(Ok((bytes, _single))) => bytes,
                    };
                    if let Some(problem) = unsupported_id(&bytes) {
                        return Ok(invalid_request(&problem));
                    }
                    HttpRequest::from_parts(parts, HttpBody::from(bytes))
                } else {
                    // jsonrpsee answers these (WebSocket upgrade, 405, 415) from
                    // the headers alone; an unread body makes hyper close the
                    // connection after the answer.
                    drop(body);
                    HttpRequest::from_parts(parts, HttpBody::empty())
                };
                let response = service.call(request).await?;
                if response.status().as_u16() == 101 {
                    activity.upgraded();
                }
                Ok(response)
            });
        handled
    });
    // Spawned as is: awaiting it inside another async block makes rustc
    // re-prove jsonrpsee's `Into<BoxError>` bounds for all lifetimes, which
    // fails. The slot lives in the socket, so it is freed with the connection.
    tokio::spawn(serve_with_graceful_shutdown(io, http, stop.shutdown()));
}

/// A plain-text answer that also closes the connection.
fn plain_response(status: u16, text: String) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(text));
    if let Ok(status) = status.try_into() {
        *response.status_mut() = status;
    }
    if let Ok(value) = "text/plain".parse() {
        response.headers_mut().insert("content-type", value);
    }
    if let Ok(value) = "close".parse() {
        response.headers_mut().insert("connection", value);
    }
    response
}

/// JSON-RPC 2.0's Invalid Request answer: code -32600 and `id: null`, since
/// the request's own id cannot be echoed.
fn invalid_request(problem: &str) -> HttpResponse {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": INVALID_REQUEST_CODE, "message": format!("invalid request: {problem}") },
    });
    let mut response = response::ok_response(body.to_string());
    if let Ok(status) = 400u16.try_into() {
        *response.status_mut() = status;
    }
    response
}

/// JSON-RPC 2.0's code for a request object that is not a valid request.
const INVALID_REQUEST_CODE: i32 = -32600;

/// Describes the first call of `body` whose `id` jsonrpsee cannot carry (an
/// object, array, boolean, fraction or negative number). jsonrpsee would read
/// such a call as a notification and answer nothing; the client deserves an
/// error that names the problem. `None` when every id is fine, or when the
/// body is not JSON (jsonrpsee reports that itself).
fn unsupported_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Call<'a> {
        #[serde(borrow, default)]
        id: Option<&'a serde_json::value::RawValue>,
    }
    fn problem(call: &serde_json::value::RawValue) -> Option<String> {
        let id = serde_json::from_str::<Call<'_>>(call.get()).ok()?.id?;
        if serde_json::from_str::<jsonrpsee::types::Id<'_>>(id.get()).is_ok() {
            return None;
        }
        let mut shown: String = id.get().chars().take(64).collect();
        if shown.len() < id.get().len() {
            shown.push('…');
        }
        Some(format!(
            "`id` must be a string, an integer from 0 to 2^64-1, or null; got {shown}"
        ))
    }
    match body.first()? {
        b'{' => problem(serde_json::from_slice(body).ok()?),
        b'[' => {
            let calls: Vec<&serde_json::value::RawValue> = serde_json::from_slice(body).ok()?;
            calls.iter().enumerate().find_map(|(index, call)| {
                problem(call).map(|p| format!("{p} (batch entry {index}; the batch was not run)"))
            })
        }
        _ => None,
    }
}

/// Where a connection is between requests, which decides its read deadline.
enum Phase {
    /// No request in progress since this instant: the idle deadline.
    Idle(Instant),
    /// A request's first bytes arrived; its headers are due by this instant.
    Headers(Instant),
    /// This many requests are being read (under the body deadline) or run.
    Busy(usize),
    /// A WebSocket now: jsonrpsee's pings decide when it is dead.
    Upgraded,
}

/// The phase of one connection, shared by its reader ([`TimedIo`]) and its
/// request handler.
struct Activity {
    phase: Mutex<(Phase, Option<Waker>)>,
    /// Set when a newcomer took this connection's place; its reads and
    /// writes fail from then on.
    evicted: AtomicBool,
    header_read_timeout: Duration,
    idle_timeout: Duration,
}

/// Marks one request in progress until dropped.
struct RequestInProgress(Arc<Activity>);

impl Activity {
    fn new(header_read_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            phase: Mutex::new((Phase::Idle(Instant::now()), None)),
            evicted: AtomicBool::new(false),
            header_read_timeout,
            idle_timeout,
        }
    }

    fn bytes_arrived(&self) {
        let mut state = self.phase.lock();
        if let Phase::Idle(_) = state.0 {
            state.0 = Phase::Headers(Instant::now() + self.header_read_timeout);
        }
    }

    fn begin_request(self: &Arc<Self>) -> RequestInProgress {
        let mut state = self.phase.lock();
        state.0 = match state.0 {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Upgraded => Phase::Upgraded,
            Phase::Idle(_) | Phase::Headers(_) => Phase::Busy(1),
        };
        RequestInProgress(self.clone())
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        if let Some(waker) = self.phase.lock().1.take() {
            waker.wake();
        }
    }

    fn evicted(&self) -> std::io::Result<()> {
        if self.evicted.load(Ordering::Relaxed) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the server is full and this address holds the most connections",
            ));
        }
        Ok(())
    }

    fn upgraded(&self) {
        self.phase.lock().0 = Phase::Upgraded;
    }

    /// The instant reads must make progress by, and what is late then.
    fn read_deadline(&self, waker: &Waker) -> Option<(Instant, &'static str)> {
        let mut state = self.phase.lock();
        state.1 = Some(waker.clone());
        match state.0 {
            Phase::Idle(since) => Some((since + self.idle_timeout, "idle connection timed out")),
            Phase::Headers(due) => Some((due, "request headers not received in time")),
            Phase::Busy(_) | Phase::Upgraded => None,
        }
    }
}

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        let mut state = self.0.phase.lock();
        match state.0 {
            Phase::Busy(n) if n > 1 => state.0 = Phase::Busy(n - 1),
            Phase::Busy(_) => {
                state.0 = Phase::Idle(Instant::now());
                // The reader may be parked without a deadline: let it arm one.
                if let Some(waker) = state.1.take() {
                    waker.wake();
                }
            }
            Phase::Idle(_) | Phase::Headers(_) | Phase::Upgraded => {}
        }
    }
}

/// A TCP stream whose reads fail with `TimedOut` when the connection's
/// [`Activity`] says a deadline passed (headers too slow, idle too long), and
/// whose writes fail when the peer has not taken any bytes for the idle
/// timeout. hyper then drops the connection.
struct TimedIo {
    inner: TcpStream,
    _slot: ConnectionSlot,
    activity: Arc<Activity>,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Option<Pin<Box<Sleep>>>,
    write_stall_timeout: Duration,
}

impl TimedIo {
    fn new(
        inner: TcpStream,
        slot: ConnectionSlot,
        activity: Arc<Activity>,
        write_stall_timeout: Duration,
    ) -> Self {
        Self {
            inner,
            _slot: slot,
            activity,
            read_timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            write_timer: None,
            write_stall_timeout,
        }
    }

    fn write_progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if let Err(err) = self.activity.evicted() {
            return Poll::Ready(Err(err));
        }
        if poll.is_ready() {
            self.write_timer = None;
            return poll;
        }
        let timeout = self.write_stall_timeout;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        this.activity.evicted()?;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.activity.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                let Some((deadline, late)) = this.activity.read_deadline(cx.waker()) else {
                    return Poll::Pending;
                };
                if this.read_timer.deadline() != deadline {
                    this.read_timer.as_mut().reset(deadline);
                }
                match this.read_timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, late)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.write_progress(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.write_progress(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.write_progress(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.write_progress(cx, poll)
    }
}

/// Subscription ids as geth, reth and erigon give them: `0x`-prefixed hex
/// strings (typed clients such as alloy parse them as hex numbers).
#[derive(Debug, Default)]
struct HexIdProvider {
    counter: std::sync::atomic::AtomicU64,
    seed: std::collections::hash_map::RandomState,
}

impl jsonrpsee::core::traits::IdProvider for HexIdProvider {
    fn next_id(&self) -> jsonrpsee::types::SubscriptionId<'static> {
        use std::hash::BuildHasher;
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Unpredictable across restarts, unique within one: a keyed hash of a counter.
        let high = self.seed.hash_one(n);
        jsonrpsee::types::SubscriptionId::Str(format!("0x{high:016x}{n:016x}").into())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use infera_chainspec::ChainSpec;
    use serde_json::json;
    use tokio::net::TcpSocket;

    use super::*;
    use crate::{LIMIT_EXCEEDED_CODE, RpcConfig};

    /// Every wait in these tests ends by this bound, far above the
    /// configured deadlines (a hung server fails the test, never hangs it).
    const WAIT_BOUND: Duration = Duration::from_secs(20);
    /// The address the misbehaving clients connect from; the well-behaved
    /// client uses 127.0.0.1.
    const OTHER_LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

    fn context(dir: &std::path::Path, config: RpcConfig) -> RpcContext {
        crate::test_context::dev_context(dir, config)
    }

    fn chain_id_hex() -> String {
        format!("{:#x}", ChainSpec::dev().chain_id())
    }

    fn short_deadlines() -> RpcConfig {
        RpcConfig {
            header_read_timeout: Duration::from_millis(500),
            body_read_timeout: Duration::from_millis(1_000),
            idle_timeout: Duration::from_millis(1_000),
            ..RpcConfig::default()
        }
    }

    async fn start(dir: &std::path::Path, config: RpcConfig) -> (RpcServers, SocketAddr) {
        let servers = start_servers(
            context(dir, config),
            Some((Ipv4Addr::LOCALHOST, 0).into()),
            None,
        )
        .await
        .unwrap();
        let addr = servers.http_addr.unwrap();
        (servers, addr)
    }

    async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind((from, 0).into()).unwrap();
        socket.connect(to).await.unwrap()
    }

    /// Reads until the server closes the connection (or resets it after
    /// answering); what it sent.
    async fn read_until_closed(stream: &mut TcpStream) -> String {
        let mut got = Vec::new();
        let read = tokio::time::timeout(WAIT_BOUND, async {
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        assert!(read.is_ok(), "the server kept the connection open");
        String::from_utf8_lossy(&got).into_owned()
    }

    /// POSTs `body` from `from` on a fresh connection; status and body.
    async fn post_from(from: Ipv4Addr, to: SocketAddr, body: &str) -> (u16, String) {
        let mut stream = connect_from(from, to).await;
        let request = format!(
            "POST / HTTP/1.1\r\nhost: {to}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = read_until_closed(&mut stream).await;
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {answer:?}"));
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, body.to_string())
    }

    async fn call_from(from: Ipv4Addr, to: SocketAddr, method: &str) -> serde_json::Value {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []});
        let (status, body) = post_from(from, to, &request.to_string()).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    #[tokio::test]
    async fn slow_bodies_from_one_address_neither_starve_others_nor_stay() {
        let dir = tempfile::tempdir().unwrap();
        let slow_clients = 6;
        // Before the per-address limit and the body deadline, these six
        // trickling bodies held all four of jsonrpsee's permits.
        let config = RpcConfig {
            max_connections: 4 + slow_clients,
            max_connections_per_ip: 4,
            ..short_deadlines()
        };
        let (servers, addr) = start(dir.path(), config).await;

        let mut trickling = Vec::new();
        for _ in 0..slow_clients {
            let mut stream = connect_from(OTHER_LOOPBACK, addr).await;
            trickling.push(tokio::spawn(async move {
                let head = format!(
                    "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{{"
                );
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return read_until_closed(&mut stream).await;
                }
                // One byte every 50 ms until the server answers or hangs up,
                // bounded by WAIT_BOUND.
                let trickle = async {
                    loop {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        if stream.write_all(b" ").await.is_err() {
                            break;
                        }
                        let mut buf = [0u8; 1];
                        if let Ok(Ok(_)) = tokio::time::timeout(Duration::ZERO, stream.peek(&mut buf)).await {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(WAIT_BOUND, trickle).await;
                read_until_closed(&mut stream).await
            }));
        }

        let answer = call_from(Ipv4Addr::LOCALHOST, addr, "eth_chainId").await;
        assert_eq!(answer["result"], chain_id_hex(), "{answer}");

        let mut timed_out = 0;
        let mut refused = 0;
        for client in trickling {
            let got = client.await.unwrap();
            if got.starts_with("HTTP/1.1 408") {
                assert!(
                    got.contains("request body not received within 1000 ms"),
                    "{got}"
                );
                timed_out += 1;
            } else {
                assert!(got.starts_with("HTTP/1.1 429"), "{got:?}");
                assert!(got.contains("too many connections from 127.0.0.2"), "{got}");
                refused += 1;
            }
        }
        assert_eq!((timed_out, refused), (4, slow_clients - 4));
        servers.stop().await;
    }

    #[tokio::test]
    async fn the_connection_over_the_per_address_limit_is_refused_and_others_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let config = RpcConfig {
            max_connections_per_ip: 2,
            ..RpcConfig::default()
        };
        let (servers, addr) = start(dir.path(), config).await;
        let first = connect_from(OTHER_LOOPBACK, addr).await;
        let _second = connect_from(OTHER_LOOPBACK, addr).await;

        let (status, body) = post_from(OTHER_LOOPBACK, addr, "{}").await;
        assert_eq!(status, 429, "{body}");
        assert!(
            body.contains("too many connections from 127.0.0.2 (at most 2 per address"),
            "{body}"
        );

        let answer = call_from(Ipv4Addr::LOCALHOST, addr, "eth_chainId").await;
        assert_eq!(answer["result"], chain_id_hex(), "{answer}");

        // Closing one gives its slot back (once the server has seen the close).
        drop(first);
        let reopened = tokio::time::timeout(WAIT_BOUND, async {
            loop {
                let request = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"});
                let (status, body) = post_from(OTHER_LOOPBACK, addr, &request.to_string()).await;
                if status == 200 {
                    return body;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the closed connection's slot never came back");
        assert!(reopened.contains(&chain_id_hex()), "{reopened}");
        servers.stop().await;
    }

    #[tokio::test]
    async fn a_full_server_gives_a_newcomer_the_busiest_address_oldest_connection() {
        let dir = tempfile::tempdir().unwrap();
        let config = RpcConfig {
            max_connections: 3,
            max_connections_per_ip: 3,
            ..RpcConfig::default()
        };
        let (servers, addr) = start(dir.path(), config).await;
        let mut oldest = connect_from(OTHER_LOOPBACK, addr).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(connect_from(OTHER_LOOPBACK, addr).await);
        }

        let answer = call_from(Ipv4Addr::LOCALHOST, addr, "eth_chainId").await;
        assert_eq!(answer["result"], chain_id_hex(), "{answer}");
        let got = read_until_closed(&mut oldest).await;
        assert!(got.is_empty(), "{got}");

        servers.stop().await;

        // One connection from each of two addresses fill a server of two:
        // nobody holds more than a newcomer's fair share, so it is refused.
        let dir = tempfile::tempdir().unwrap();
        let config = RpcConfig {
            max_connections: 2,
            ..RpcConfig::default()
        };
        let (servers, addr) = start(dir.path(), config).await;
        let _second = connect_from(OTHER_LOOPBACK, addr).await;
        let _third = connect_from(Ipv4Addr::new(127, 0, 0, 3), addr).await;
        let (status, body) = post_from(Ipv4Addr::LOCALHOST, addr, "{}").await;
        assert_eq!(status, 429, "{body}");
        assert!(
            body.contains("too many connections (at most 2 per server)"),
            "{body}"
        );
        servers.stop().await;
    }

    #[tokio::test]
    async fn headers_trickled_past_their_deadline_and_idle_connections_are_closed() {
        let dir = tempfile::tempdir().unwrap();
        let (servers, addr) = start(dir.path(), short_deadlines()).await;

        let mut idle = connect_from(OTHER_LOOPBACK, addr).await;
        let mut slow_headers = connect_from(OTHER_LOOPBACK, addr).await;
        let trickle = tokio::spawn(async move {
            let head = b"POST / HTTP/1.1\r\nhost: localhost\r\nx-slow: ";
            slow_headers.write_all(head).await.unwrap();
            // A header byte every 50 ms never completes the headers.
            let keep_sending = async {
                while slow_headers.write_all(b"a").await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            let closed = tokio::time::timeout(WAIT_BOUND, keep_sending).await;
            assert!(closed.is_ok(), "trickled headers kept the connection open");
        });
        let got = read_until_closed(&mut idle).await;
        assert!(got.is_empty(), "{got}");
        trickle.await.unwrap();

        // The deadlines fall on slow clients only: a keep-alive connection
        // that sends its requests promptly is served request after request.
        let mut stream = connect_from(Ipv4Addr::LOCALHOST, addr).await;
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).to_string();
        for _ in 0..3 {
            let request = format!(
                "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = tokio::time::timeout(WAIT_BOUND, stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            let answer = String::from_utf8_lossy(&buf[..n]);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        servers.stop().await;
    }

    #[tokio::test]
    async fn a_websocket_outlives_the_http_idle_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let (servers, addr) = start(dir.path(), short_deadlines()).await;
        let mut stream = connect_from(Ipv4Addr::LOCALHOST, addr).await;
        let upgrade = format!(
            "GET / HTTP/1.1\r\nhost: {addr}\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
        );
        stream.write_all(upgrade.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            tokio::time::timeout(WAIT_BOUND, stream.read_exact(&mut byte))
                .await
                .unwrap()
                .unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");

        // Twice the HTTP idle deadline with nothing sent.
        tokio::time::sleep(Duration::from_millis(2_000)).await;

        let call = json!({"jsonrpc": "2.0", "id": 7, "method": "eth_chainId"}).to_string();
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | call.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(call.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        stream.write_all(&frame).await.unwrap();
        let mut header = [0u8; 2];
        tokio::time::timeout(WAIT_BOUND, stream.read_exact(&mut header))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(header[0], 0x81, "expected one unmasked text frame");
        let mut payload = vec![0u8; usize::from(header[1])];
        stream.read_exact(&mut payload).await.unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            answer,
            json!({"jsonrpc": "2.0", "id": 7, "result": chain_id_hex()})
        );
        servers.stop().await;
    }

    #[tokio::test]
    async fn a_client_over_its_filter_quota_is_refused_while_another_installs() {
        let dir = tempfile::tempdir().unwrap();
        let config = RpcConfig {
            max_filters_per_client: 3,
            ..RpcConfig::default()
        };
        let (servers, addr) = start(dir.path(), config).await;
        for _ in 0..3 {
            let answer = call_from(OTHER_LOOPBACK, addr, "eth_newBlockFilter").await;
            assert!(answer["result"].is_string(), "{answer}");
        }
        let refused = call_from(OTHER_LOOPBACK, addr, "eth_newBlockFilter").await;
        assert_eq!(refused["error"]["code"], LIMIT_EXCEEDED_CODE, "{refused}");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(
            message
                .contains("too many filters installed by client 127.0.0.2 (at most 3 per client"),
            "{message}"
        );
        let other = call_from(Ipv4Addr::LOCALHOST, addr, "eth_newPendingTransactionFilter").await;
        assert!(other["result"].is_string(), "{other}");
        servers.stop().await;
    }

    #[tokio::test]
    async fn ids_are_echoed_exactly_and_unsupported_ones_refused_with_invalid_request() {
        let dir = tempfile::tempdir().unwrap();
        let (servers, addr) = start(dir.path(), RpcConfig::default()).await;
        let local = Ipv4Addr::LOCALHOST;
        for id in [
            json!("abc"),
            json!(0),
            json!(18446744073709551615u64),
            json!(null),
        ] {
            let request = json!({"jsonrpc": "2.0", "id": id, "method": "eth_chainId"});
            let (status, body) = post_from(local, addr, &request.to_string()).await;
            assert_eq!(status, 200, "{body}");
            let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(answer["id"], id, "{body}");
            assert_eq!(answer["result"], chain_id_hex(), "{body}");
        }
        for id in [
            json!({"a": 1}),
            json!([1]),
            json!(true),
            json!(-1),
            json!(1.5),
        ] {
            let request = json!({"jsonrpc": "2.0", "id": id, "method": "eth_chainId"});
            let (status, body) = post_from(local, addr, &request.to_string()).await;
            assert_eq!(status, 400, "{body}");
            let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(answer["id"], serde_json::Value::Null, "{body}");
            assert_eq!(answer["error"]["code"], INVALID_REQUEST_CODE, "{body}");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains("`id` must be a string"), "{message}");
        }
        let batch = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
            {"jsonrpc": "2.0", "id": {"a": 1}, "method": "eth_chainId"},
        ]);
        let (status, body) = post_from(local, addr, &batch.to_string()).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("batch entry 1"), "{body}");
        servers.stop().await;
    }
}
