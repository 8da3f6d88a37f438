//! The jsonrpsee surface: method names, parameter shapes, servers, limits, CORS.

use std::net::SocketAddr;

use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{
    Block, FeeHistory, Filter, FilterChanges, Log as RpcLog, Transaction, TransactionReceipt,
    TransactionRequest,
};
use jsonrpsee::{
    PendingSubscriptionSink,
    core::{RpcResult as JsonResult, SubscriptionResult, async_trait},
    proc_macros::rpc,
    server::{BatchRequestConfig, Server, ServerConfig, ServerHandle},
};
use serde_json::Value;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::{RpcContext, RpcError, RpcResult, pubsub};

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
    fn capabilities(&self) -> JsonResult<crate::extra::Capabilities>;
    #[method(name = "txpool_status")]
    fn txpool_status(&self) -> JsonResult<crate::extra::TxPoolStatus>;
    #[method(name = "txpool_content")]
    fn txpool_content(&self) -> JsonResult<crate::extra::TxPoolContent>;
    #[method(name = "txpool_contentFrom")]
    fn txpool_content_from(&self, address: Address) -> JsonResult<crate::extra::TxPoolContentFrom>;
    #[method(name = "eth_createAccessList", blocking)]
    fn create_access_list(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> JsonResult<crate::extra::AccessListResult>;
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
    fn transaction_receipt(&self, hash: B256) -> JsonResult<Option<TransactionReceipt>>;
    #[method(name = "eth_getBlockReceipts")]
    fn block_receipts(&self, block: BlockId) -> JsonResult<Option<Vec<TransactionReceipt>>>;
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
    #[method(name = "eth_newFilter")]
    fn new_filter(&self, filter: Filter) -> JsonResult<String>;
    #[method(name = "eth_newBlockFilter")]
    fn new_block_filter(&self) -> JsonResult<String>;
    #[method(name = "eth_newPendingTransactionFilter")]
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
        Ok(true)
    }
    fn net_peer_count(&self) -> JsonResult<U64> {
        let peers = self
            .peer_counter()
            .load(std::sync::atomic::Ordering::Relaxed);
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
    ) -> JsonResult<crate::extra::AccessListResult> {
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
    fn capabilities(&self) -> JsonResult<crate::extra::Capabilities> {
        ok(RpcContext::capabilities(self))
    }
    fn txpool_status(&self) -> JsonResult<crate::extra::TxPoolStatus> {
        Ok(RpcContext::txpool_status(self))
    }
    fn txpool_content(&self) -> JsonResult<crate::extra::TxPoolContent> {
        Ok(RpcContext::txpool_content(self))
    }
    fn txpool_content_from(&self, address: Address) -> JsonResult<crate::extra::TxPoolContentFrom> {
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
    fn transaction_receipt(&self, hash: B256) -> JsonResult<Option<TransactionReceipt>> {
        ok(RpcContext::transaction_receipt(self, hash))
    }
    fn block_receipts(&self, block: BlockId) -> JsonResult<Option<Vec<TransactionReceipt>>> {
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
    fn new_filter(&self, filter: Filter) -> JsonResult<String> {
        ok(RpcContext::new_filter(self, filter))
    }
    fn new_block_filter(&self) -> JsonResult<String> {
        ok(RpcContext::new_block_filter(self))
    }
    fn new_pending_transaction_filter(&self) -> JsonResult<String> {
        ok(RpcContext::new_pending_transaction_filter(self))
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
    let server = Server::builder()
        .set_config(server_config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(cors))
        .build(addr)
        .await
        .map_err(|source| RpcError::Bind { addr, source })?;
    let bound = server
        .local_addr()
        .map_err(|source| RpcError::Bind { addr, source })?;
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
    let handle = server.start(methods);
    Ok((bound, handle))
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
