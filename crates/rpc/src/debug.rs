//! The `debug_` methods: raw (consensus-encoded) blocks, headers, receipts
//! and transactions, and geth's default struct-log tracer over re-executed
//! blocks and transactions, and over calls.
//!
//! A trace is bounded while it is built: the tracer counts the bytes of its
//! JSON as it goes and stops execution before the trace would pass the
//! node's largest response ([`crate::RpcConfig::max_response_bytes`]), so a
//! trace that could not be sent is never held in memory either. Tracing is
//! a heavy call ([`crate::heavy`]): it waits its turn among the executions,
//! and stops at the request's deadline; `debug_traceCall` gets the gas cap.

use alloy_eips::{BlockId, BlockNumberOrTag, eip2718::Encodable2718};
use alloy_primitives::{B256, Bytes};
use alloy_rpc_types_eth::TransactionRequest;
use infera_evm::{CallLimits, Deadline, EvmError, StructLogConfig, TraceError, TxStructTrace};
use infera_primitives::SealedBlock;
use infera_storage::Reader;
use jsonrpsee::{core::RpcResult as JsonResult, proc_macros::rpc};
use serde::Serialize;
use serde_json::{Value, value::RawValue};

use crate::{RpcContext, RpcError, RpcResult, eth::evm_error};

/// The `debug_` methods this node serves.
#[rpc(server, namespace = "debug")]
pub trait DebugApi {
    #[method(name = "getRawBlock", blocking)]
    fn get_raw_block(&self, block: Value) -> JsonResult<Bytes>;
    #[method(name = "getRawHeader", blocking)]
    fn get_raw_header(&self, block: Value) -> JsonResult<Bytes>;
    #[method(name = "getRawReceipts", blocking)]
    fn get_raw_receipts(&self, block: Value) -> JsonResult<Vec<Bytes>>;
    #[method(name = "getRawTransaction", blocking)]
    fn get_raw_transaction(&self, hash: String) -> JsonResult<Option<Bytes>>;
    #[method(name = "traceBlockByNumber", blocking)]
    fn trace_block_by_number(
        &self,
        number: Value,
        config: Option<Value>,
    ) -> JsonResult<Vec<BlockTraceEntry>>;
    #[method(name = "traceBlockByHash", blocking)]
    fn trace_block_by_hash(
        &self,
        hash: String,
        config: Option<Value>,
    ) -> JsonResult<Vec<BlockTraceEntry>>;
    #[method(name = "traceTransaction", blocking)]
    fn trace_transaction(&self, hash: String, config: Option<Value>) -> JsonResult<StructTrace>;
    #[method(name = "traceCall", blocking)]
    fn trace_call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        config: Option<Value>,
    ) -> JsonResult<StructTrace>;
}

/// The options of the `debug_trace*` methods (geth's `TraceConfig` with the
/// default struct logger; other tracers are refused).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TraceConfig {
    #[serde(default)]
    pub disable_stack: bool,
    #[serde(default)]
    pub disable_storage: bool,
    #[serde(default)]
    pub enable_memory: bool,
    #[serde(default)]
    pub enable_return_data: bool,
    /// Only the default struct logger is implemented: `None` or an empty name.
    #[serde(default)]
    pub tracer: Option<String>,
    /// Accepted for compatibility; the struct logger has no options.
    #[serde(default)]
    pub tracer_config: Option<serde_json::Value>,
    /// A deadline of the request's own (`5s`, `300ms`, or milliseconds);
    /// the node's (`--rpc.evmtimeout`) applies when it is sooner.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Accepted for compatibility (geth: reexec depth); state is always at hand.
    #[serde(default)]
    pub reexec: Option<u64>,
    /// Most struct logs recorded per transaction (execution goes on
    /// unlogged, as geth's); 0 means no limit.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Accepted for compatibility (geth's deprecated name of `enableMemory`'s opposite).
    #[serde(default)]
    pub disable_memory: Option<bool>,
}

impl TraceConfig {
    /// The tracer's options, bounded by `max_bytes` (the response limit)
    /// and by `timeout` from now when given.
    fn struct_log_config(&self, max_bytes: usize) -> RpcResult<StructLogConfig> {
        if let Some(tracer) = self.tracer.as_deref().filter(|t| !t.is_empty()) {
            return Err(RpcError::InvalidParams(format!(
                "tracer {tracer:?} is not supported; only the default struct logger is"
            )));
        }
        let deadline = match self.timeout.as_deref() {
            None => None,
            Some(timeout) => {
                let timeout = crate::heavy::parse_evm_timeout(timeout)
                    .map_err(|e| RpcError::InvalidParams(format!("invalid timeout: {e}")))?;
                Some(Deadline::after(timeout))
            }
        };
        Ok(StructLogConfig {
            disable_stack: self.disable_stack,
            disable_storage: self.disable_storage,
            enable_memory: self.enable_memory,
            enable_return_data: self.enable_return_data,
            limit: self
                .limit
                .filter(|l| *l > 0)
                .map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
            max_bytes: Some(max_bytes),
            deadline,
        })
    }
}

/// A transaction's trace as answered, shaped as geth's `ExecutionResult`;
/// the struct logs go out as the JSON the tracer wrote them as (the tracer
/// counts their bytes in this order and shape).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StructTrace {
    pub gas: u64,
    pub failed: bool,
    pub return_value: Bytes,
    pub struct_logs: Vec<Box<RawValue>>,
}

impl TryFrom<TxStructTrace> for StructTrace {
    type Error = RpcError;

    fn try_from(trace: TxStructTrace) -> RpcResult<Self> {
        let struct_logs = trace
            .struct_logs
            .into_iter()
            .map(|log| {
                RawValue::from_string(log)
                    .map_err(|e| RpcError::Evm(format!("the tracer wrote invalid JSON: {e}")))
            })
            .collect::<RpcResult<_>>()?;
        Ok(Self {
            gas: trace.gas,
            failed: trace.failed,
            return_value: trace.return_value,
            struct_logs,
        })
    }
}

/// One transaction's entry in a block trace.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockTraceEntry {
    pub tx_hash: B256,
    pub result: StructTrace,
}

impl DebugApiServer for RpcContext {
    fn get_raw_block(&self, block: Value) -> JsonResult<Bytes> {
        Ok(self.debug_raw_block(param(0, block)?)?)
    }
    fn get_raw_header(&self, block: Value) -> JsonResult<Bytes> {
        Ok(self.debug_raw_header(param(0, block)?)?)
    }
    fn get_raw_receipts(&self, block: Value) -> JsonResult<Vec<Bytes>> {
        Ok(self.debug_raw_receipts(param(0, block)?)?)
    }
    fn get_raw_transaction(&self, hash: String) -> JsonResult<Option<Bytes>> {
        Ok(self.debug_raw_transaction(parse_hash(&hash)?)?)
    }
    fn trace_block_by_number(
        &self,
        number: Value,
        config: Option<Value>,
    ) -> JsonResult<Vec<BlockTraceEntry>> {
        let number: BlockNumberOrTag = param(0, number)?;
        let config = trace_config(config.map(|c| (1, c)))?;
        Ok(self.debug_trace_block(BlockId::Number(number), config)?)
    }
    fn trace_block_by_hash(
        &self,
        hash: String,
        config: Option<Value>,
    ) -> JsonResult<Vec<BlockTraceEntry>> {
        let hash = parse_hash(&hash)?;
        let config = trace_config(config.map(|c| (1, c)))?;
        Ok(self.debug_trace_block(BlockId::from(hash), config)?)
    }
    fn trace_transaction(&self, hash: String, config: Option<Value>) -> JsonResult<StructTrace> {
        let hash = parse_hash(&hash)?;
        let config = trace_config(config.map(|c| (1, c)))?;
        Ok(self.debug_trace_transaction(hash, config)?)
    }
    fn trace_call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        config: Option<Value>,
    ) -> JsonResult<StructTrace> {
        let config = trace_config(config.map(|c| (2, c)))?;
        Ok(self.debug_trace_call(request, block, config)?)
    }
}

/// Parameter `index` decoded from JSON; a malformed one is -32602 naming
/// the problem (without jsonrpsee's `data` member, as geth answers).
fn param<T: serde::de::DeserializeOwned>(index: usize, value: Value) -> RpcResult<T> {
    serde_json::from_value(value)
        .map_err(|e| RpcError::InvalidParams(format!("invalid argument {index}: {e}")))
}

/// The trace options, parameter `index` of its method.
fn trace_config(value: Option<(usize, Value)>) -> RpcResult<TraceConfig> {
    match value {
        None | Some((_, Value::Null)) => Ok(TraceConfig::default()),
        Some((index, value)) => param(index, value),
    }
}

/// `config` with the sooner of its own deadline and the request's.
fn within(mut config: StructLogConfig, limits: &CallLimits) -> StructLogConfig {
    config.deadline = match (config.deadline, limits.deadline) {
        (Some(own), Some(node)) => Some(if own.at() <= node.at() { own } else { node }),
        (own, node) => own.or(node),
    };
    config
}

/// A tracer's failure as the client sees it: a trace too large for a
/// response is a limit, as is a timeout; `context` names what was executed.
fn trace_error(err: TraceError, context: impl FnOnce() -> String) -> RpcError {
    match err {
        TraceError::TooLarge { .. } => RpcError::LimitExceeded(err.to_string()),
        TraceError::Evm(e @ EvmError::Timeout { .. }) => evm_error(e),
        TraceError::Evm(e) => RpcError::Evm(format!("{}: {e}", context())),
    }
}

/// A 32-byte hash parameter; unlike alloy's parser, a missing `0x` prefix is
/// refused (as geth does).
fn parse_hash(s: &str) -> RpcResult<B256> {
    let hex = s.strip_prefix("0x").ok_or_else(|| {
        RpcError::InvalidParams("invalid argument 0: hex string without 0x prefix".into())
    })?;
    if hex.len() != 64 {
        return Err(RpcError::InvalidParams(format!(
            "invalid argument 0: hex string of {} digits, expected 64 for a 32-byte hash",
            hex.len()
        )));
    }
    hex.parse::<B256>()
        .map_err(|e| RpcError::InvalidParams(format!("invalid argument 0: {e}")))
}

impl RpcContext {
    fn debug_block(&self, reader: &Reader, id: BlockId) -> RpcResult<SealedBlock> {
        let block = match id {
            BlockId::Hash(hash) => reader.block_by_hash(hash.block_hash)?,
            BlockId::Number(tag) => {
                let head = reader
                    .head_number()?
                    .ok_or_else(|| RpcError::Evm("the database holds no chain".into()))?;
                let number = match tag {
                    BlockNumberOrTag::Number(n) => n,
                    BlockNumberOrTag::Earliest => 0,
                    _ => head,
                };
                if number > head {
                    None
                } else {
                    reader.block(number)?
                }
            }
        };
        block.ok_or_else(|| RpcError::NotFound(format!("block {id} not found")))
    }

    /// `debug_getRawBlock`: the block's RLP (header, transactions, ommers
    /// and, from Shanghai, withdrawals).
    pub fn debug_raw_block(&self, id: BlockId) -> RpcResult<Bytes> {
        let block = self.debug_block(&self.db().reader()?, id)?;
        Ok(alloy_rlp::encode(consensus_block(&block)).into())
    }

    /// `debug_getRawHeader`: the header's RLP.
    pub fn debug_raw_header(&self, id: BlockId) -> RpcResult<Bytes> {
        let block = self.debug_block(&self.db().reader()?, id)?;
        Ok(alloy_rlp::encode(&block.header).into())
    }

    /// `debug_getRawReceipts`: each receipt's EIP-2718 encoding.
    pub fn debug_raw_receipts(&self, id: BlockId) -> RpcResult<Vec<Bytes>> {
        let reader = self.db().reader()?;
        let block = self.debug_block(&reader, id)?;
        let receipts = reader.receipts(block.number())?.unwrap_or_default();
        Ok(receipts.iter().map(|r| r.encoded_2718().into()).collect())
    }

    /// `debug_getRawTransaction`: the EIP-2718 encoding of a mined or pooled
    /// transaction; `null` when unknown.
    pub fn debug_raw_transaction(&self, hash: B256) -> RpcResult<Option<Bytes>> {
        let reader = self.db().reader()?;
        if let Some((tx, _)) = reader.transaction(hash)? {
            return Ok(Some(tx.tx.encoded_2718().into()));
        }
        Ok(self
            .pool()
            .lock()
            .get(&hash)
            .map(|tx| tx.tx.encoded_2718().into()))
    }

    /// The tracer's options for `config` within the response limit (its
    /// deadline, if any, counted from now).
    fn struct_log_config(&self, config: &TraceConfig) -> RpcResult<StructLogConfig> {
        let max_bytes = usize::try_from(self.config().max_response_bytes).unwrap_or(usize::MAX);
        config.struct_log_config(max_bytes)
    }

    /// `debug_traceBlockByNumber` / `debug_traceBlockByHash`. The response
    /// limit bounds the whole block's trace.
    pub fn debug_trace_block(
        &self,
        id: BlockId,
        config: TraceConfig,
    ) -> RpcResult<Vec<BlockTraceEntry>> {
        let config = self.struct_log_config(&config)?;
        let (block, traces) = self.heavy(|limits| {
            let reader = self.db().reader()?;
            let block = self.debug_block(&reader, id)?;
            let traces = self.trace_in_block(&reader, &block, None, within(config, &limits))?;
            Ok((block, traces))
        })?;
        block
            .transactions
            .iter()
            .zip(traces)
            .map(|(tx, result)| {
                Ok(BlockTraceEntry {
                    tx_hash: tx.hash,
                    result: result.try_into()?,
                })
            })
            .collect()
    }

    /// `debug_traceTransaction`.
    pub fn debug_trace_transaction(
        &self,
        hash: B256,
        config: TraceConfig,
    ) -> RpcResult<StructTrace> {
        let config = self.struct_log_config(&config)?;
        self.heavy(|limits| {
            let reader = self.db().reader()?;
            let (_, location) = reader
                .transaction(hash)?
                .ok_or_else(|| RpcError::NotFound("transaction not found".into()))?;
            let block = self.debug_block(&reader, BlockId::Number(location.block_number.into()))?;
            let index = location.index as usize;
            self.trace_in_block(&reader, &block, Some(index), within(config, &limits))?
                .pop()
                .ok_or_else(|| RpcError::Evm(format!("transaction {hash} produced no trace")))
        })?
        .try_into()
    }

    /// `debug_traceCall`: `request` executed as `eth_call` executes it (on
    /// the state after `block`, keeping nothing), traced.
    pub fn debug_trace_call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        config: TraceConfig,
    ) -> RpcResult<StructTrace> {
        let config = self.struct_log_config(&config)?;
        let req = crate::eth::call_request(request)?;
        self.heavy(|limits| {
            let config = within(config, &limits);
            let reader = self.db().reader()?;
            let number = self.resolve_state_block(&reader, block)?;
            let (cfg, env) = self.call_env(&reader, number)?;
            let precompiles = self.precompiles(cfg.spec);
            let gas_cap = limits.gas_cap;
            if number == self.head(&reader)? {
                let state = reader.latest_state();
                infera_evm::trace_call(state, cfg, env, req, precompiles, config, gas_cap)
            } else {
                let state = reader.state_at(number);
                infera_evm::trace_call(state, cfg, env, req, precompiles, config, gas_cap)
            }
            .map_err(|e| match e {
                TraceError::Evm(e) => evm_error(e),
                other => trace_error(other, String::new),
            })
        })?
        .try_into()
    }

    /// Re-executes `block` on its parent's state with the AI precompiles,
    /// tracing every transaction, or only transaction `only`.
    fn trace_in_block(
        &self,
        reader: &Reader,
        block: &SealedBlock,
        only: Option<usize>,
        config: StructLogConfig,
    ) -> RpcResult<Vec<TxStructTrace>> {
        let number = block.number();
        if number == 0 {
            return Err(RpcError::NotFound("genesis is not traceable".into()));
        }
        let header = &block.header;
        let spec = self.chain().spec_at(number, header.timestamp);
        let cfg = infera_evm::ExecutionConfig {
            chain_id: self.chain().chain_id(),
            spec,
        };
        let env = infera_evm::BlockEnvInput::from_header(
            header,
            self.chain()
                .blob_base_fee_update_fraction_at(number, header.timestamp),
        );
        let precompiles = self.precompiles(spec);
        infera_evm::trace_block(
            reader.state_at(number - 1),
            cfg,
            env,
            &block.transactions,
            precompiles,
            config,
            only,
        )
        .map_err(|e| trace_error(e, || format!("re-executing block {number}")))
    }
}

/// The block as the network encodes it. Ommers and withdrawals are not
/// stored: the chain has none (post-merge blocks without validator
/// withdrawals), so from Shanghai the withdrawals list is empty.
fn consensus_block(block: &SealedBlock) -> alloy_consensus::Block<infera_primitives::TxEnvelope> {
    alloy_consensus::Block {
        header: block.header.clone(),
        body: alloy_consensus::BlockBody {
            transactions: block.transactions.iter().map(|tx| tx.tx.clone()).collect(),
            ommers: Vec::new(),
            withdrawals: block.header.withdrawals_root.map(|_| Default::default()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_need_the_prefix_and_32_bytes() {
        let hex = "1000000000000000000000000000000000000000000000000000000000000001";
        assert!(matches!(parse_hash(hex), Err(RpcError::InvalidParams(_))));
        assert!(matches!(
            parse_hash("0x1234"),
            Err(RpcError::InvalidParams(_))
        ));
        let parsed = parse_hash(&format!("0x{hex}")).unwrap();
        assert_eq!(parsed.0[0], 0x10);
        assert_eq!(parsed.0[31], 0x01);
    }

    #[test]
    fn only_the_struct_logger_is_accepted() {
        let config: TraceConfig = serde_json::from_str(r#"{"tracer":"callTracer"}"#).unwrap();
        assert!(config.struct_log_config(1024).is_err());
        let config: TraceConfig = serde_json::from_str(
            r#"{"disableStack":true,"enableMemory":true,"enableReturnData":true}"#,
        )
        .unwrap();
        let c = config.struct_log_config(1024).unwrap();
        assert!(c.disable_stack && c.enable_memory && c.enable_return_data && !c.disable_storage);
    }
}

/// The tracer through the JSON-RPC surface (no server), on a dev-genesis
/// database with a small response limit.
#[cfg(test)]
mod trace_tests {
    use serde_json::json;

    use super::*;
    use crate::{INVALID_PARAMS_CODE, LIMIT_EXCEEDED_CODE, RpcConfig};

    const MAX_RESPONSE_BYTES: u32 = 1 << 20;
    /// Init code that never returns: an endless loop storing a word 1 KiB
    /// further on each round (`i = 0; loop { mstore(i, i); i += 1024 }`)
    /// until out of gas, so memory grows every round.
    const GROWER: &str = "0x60005b80805261040001600256";
    /// 250,000 gas: a trace of it with memory would take hundreds of MiB.
    const GAS: &str = "0x3d090";

    fn context(dir: &std::path::Path) -> RpcContext {
        context_with(
            dir,
            RpcConfig {
                max_response_bytes: MAX_RESPONSE_BYTES,
                ..RpcConfig::default()
            },
        )
    }

    fn context_with(dir: &std::path::Path, config: RpcConfig) -> RpcContext {
        crate::test_context::dev_context(dir, config)
    }

    /// `debug_traceCall` of the grower with `config`: the response's text.
    async fn trace_grower(ctx: &RpcContext, config: Value) -> String {
        let module = DebugApiServer::into_rpc(ctx.clone());
        let request = json!({
            "jsonrpc": "2.0", "id": 1, "method": "debug_traceCall",
            "params": [{"data": GROWER, "gas": GAS}, "latest", config],
        });
        let (response, _) = module
            .raw_json_request(&request.to_string(), 1)
            .await
            .unwrap();
        response.get().to_string()
    }

    #[tokio::test]
    async fn a_trace_past_the_response_limit_is_a_limit_error_and_the_node_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let response = trace_grower(&ctx, json!({"enableMemory": true})).await;
        let response: Value = serde_json::from_str(&response).unwrap();
        let error = &response["error"];
        assert_eq!(error["code"], LIMIT_EXCEEDED_CODE, "{response}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "trace exceeds the response limit of {MAX_RESPONSE_BYTES} bytes"
            )),
            "{message}"
        );
        assert!(
            message.ends_with("use `limit`, or disable memory/stack/storage capture"),
            "{message}"
        );

        // The same call without memory fits, and leaves memory out.
        let text = trace_grower(&ctx, Value::Null).await;
        assert!(text.len() <= MAX_RESPONSE_BYTES as usize);
        let response: Value = serde_json::from_str(&text).unwrap();
        let result = &response["result"];
        assert_eq!(result["gas"], 250_000, "{response}");
        assert_eq!(result["failed"], true);
        let logs = result["structLogs"].as_array().unwrap();
        assert!(logs.len() > 1_000, "{} logs", logs.len());
        assert!(logs.iter().all(|log| log.get("memory").is_none()));
        assert_eq!(logs[4]["op"], "MSTORE");
        assert_eq!(logs[4]["stack"], json!(["0x0", "0x0", "0x0"]));
    }

    #[tokio::test]
    async fn limit_gives_that_many_struct_logs() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let response = trace_grower(&ctx, json!({"limit": 5, "enableMemory": true})).await;
        let response: Value = serde_json::from_str(&response).unwrap();
        let logs = response["result"]["structLogs"].as_array().unwrap();
        assert_eq!(logs.len(), 5, "{response}");
        assert_eq!(response["result"]["gas"], 250_000);
        // Memory appears once there is some (after the first MSTORE).
        assert!(logs[4].get("memory").is_none());

        let response = trace_grower(&ctx, json!({"enableMemroy": true})).await;
        let response: Value = serde_json::from_str(&response).unwrap();
        assert_eq!(response["error"]["code"], INVALID_PARAMS_CODE, "{response}");
    }

    #[tokio::test]
    async fn trace_call_gets_the_gas_cap_and_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context_with(
            dir.path(),
            RpcConfig {
                gas_cap: 100_000,
                ..RpcConfig::default()
            },
        );
        let response = trace_grower(&ctx, json!({"limit": 1})).await;
        let response: Value = serde_json::from_str(&response).unwrap();
        assert_eq!(response["result"]["gas"], 100_000, "{response}");

        // A deadline already passed (the request's own, sooner than the
        // node's) stops the trace with eth_call's timeout error.
        let response = trace_grower(&ctx, json!({"timeout": "0ms"})).await;
        let response: Value = serde_json::from_str(&response).unwrap();
        let message = response["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("execution aborted (timeout"),
            "{message}"
        );

        let response = trace_grower(&ctx, json!({"timeout": "5x"})).await;
        let response: Value = serde_json::from_str(&response).unwrap();
        assert_eq!(response["error"]["code"], INVALID_PARAMS_CODE, "{response}");
    }
}
