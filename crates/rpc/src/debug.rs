//! The `debug_` methods: raw (consensus-encoded) blocks, headers, receipts
//! and transactions, and geth's default struct-log tracer over re-executed
//! blocks and transactions.

use alloy_eips::{BlockId, BlockNumberOrTag, eip2718::Encodable2718};
use alloy_primitives::{B256, Bytes};
use infera_evm::{StructLogConfig, TxStructTrace};
use infera_primitives::SealedBlock;
use infera_storage::Reader;
use jsonrpsee::{core::RpcResult as JsonResult, proc_macros::rpc};
use serde::Serialize;
use serde_json::Value;

use crate::{RpcContext, RpcError, RpcResult};

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
    fn trace_transaction(&self, hash: String, config: Option<Value>) -> JsonResult<TxStructTrace>;
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
    /// Accepted for compatibility; tracing is bounded by the block gas limit.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Accepted for compatibility (geth: reexec depth); state is always at hand.
    #[serde(default)]
    pub reexec: Option<u64>,
    /// Most struct logs recorded per transaction; 0 means no limit.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Accepted for compatibility (geth's deprecated name of `enableMemory`'s opposite).
    #[serde(default)]
    pub disable_memory: Option<bool>,
}

impl TraceConfig {
    fn struct_log_config(&self) -> RpcResult<StructLogConfig> {
        if let Some(tracer) = self.tracer.as_deref().filter(|t| !t.is_empty()) {
            return Err(RpcError::InvalidParams(format!(
                "tracer {tracer:?} is not supported; only the default struct logger is"
            )));
        }
        Ok(StructLogConfig {
            disable_stack: self.disable_stack,
            disable_storage: self.disable_storage,
            enable_memory: self.enable_memory,
            enable_return_data: self.enable_return_data,
            limit: self.limit.filter(|l| *l > 0).map(|l| l as usize),
        })
    }
}

/// One transaction's entry in a block trace.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockTraceEntry {
    pub tx_hash: B256,
    pub result: TxStructTrace,
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
        let config = trace_config(config)?;
        Ok(self.debug_trace_block(BlockId::Number(number), config)?)
    }
    fn trace_block_by_hash(
        &self,
        hash: String,
        config: Option<Value>,
    ) -> JsonResult<Vec<BlockTraceEntry>> {
        let hash = parse_hash(&hash)?;
        let config = trace_config(config)?;
        Ok(self.debug_trace_block(BlockId::from(hash), config)?)
    }
    fn trace_transaction(&self, hash: String, config: Option<Value>) -> JsonResult<TxStructTrace> {
        let hash = parse_hash(&hash)?;
        let config = trace_config(config)?;
        Ok(self.debug_trace_transaction(hash, config)?)
    }
}

/// Parameter `index` decoded from JSON; a malformed one is -32602 naming
/// the problem (without jsonrpsee's `data` member, as geth answers).
fn param<T: serde::de::DeserializeOwned>(index: usize, value: Value) -> RpcResult<T> {
    serde_json::from_value(value)
        .map_err(|e| RpcError::InvalidParams(format!("invalid argument {index}: {e}")))
}

fn trace_config(value: Option<Value>) -> RpcResult<TraceConfig> {
    match value {
        None | Some(Value::Null) => Ok(TraceConfig::default()),
        Some(value) => param(1, value),
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

    /// `debug_traceBlockByNumber` / `debug_traceBlockByHash`.
    pub fn debug_trace_block(
        &self,
        id: BlockId,
        config: TraceConfig,
    ) -> RpcResult<Vec<BlockTraceEntry>> {
        let config = config.struct_log_config()?;
        let reader = self.db().reader()?;
        let block = self.debug_block(&reader, id)?;
        let traces = self.trace_in_block(&reader, &block, None, config)?;
        Ok(block
            .transactions
            .iter()
            .zip(traces)
            .map(|(tx, result)| BlockTraceEntry {
                tx_hash: tx.hash,
                result,
            })
            .collect())
    }

    /// `debug_traceTransaction`.
    pub fn debug_trace_transaction(
        &self,
        hash: B256,
        config: TraceConfig,
    ) -> RpcResult<TxStructTrace> {
        let config = config.struct_log_config()?;
        let reader = self.db().reader()?;
        let (_, location) = reader
            .transaction(hash)?
            .ok_or_else(|| RpcError::NotFound("transaction not found".into()))?;
        let block = self.debug_block(&reader, BlockId::Number(location.block_number.into()))?;
        let index = location.index as usize;
        self.trace_in_block(&reader, &block, Some(index), config)?
            .pop()
            .ok_or_else(|| RpcError::Evm(format!("transaction {hash} produced no trace")))
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
        .map_err(|e| RpcError::Evm(format!("re-executing block {number}: {e}")))
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
        assert!(config.struct_log_config().is_err());
        let config: TraceConfig = serde_json::from_str(
            r#"{"disableStack":true,"enableMemory":true,"enableReturnData":true}"#,
        )
        .unwrap();
        let c = config.struct_log_config().unwrap();
        assert!(c.disable_stack && c.enable_memory && c.enable_return_data && !c.disable_storage);
    }
}
