//! The `eth_`, `net_` and `web3_` methods as plain functions on
//! [`RpcContext`]; [`crate::server`] exposes them over jsonrpsee.

use alloy_consensus::{Header, Transaction as _};
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, Bytes, TxKind, U64, U256};
use alloy_rpc_types_eth::{
    Block, FeeHistory, Filter, FilterBlockOption, FilterChanges, Log as RpcLog, Transaction,
    TransactionRequest,
};
use infera_evm::{BlockEnvInput, CallLimits, CallOutcome, CallRequest, EvmError, ExecutionConfig};
use infera_primitives::{ChainEvent, SealedBlock, StateReader};
use infera_storage::Reader;

use crate::convert::RpcReceipt;
use crate::{
    DEFAULT_PRIORITY_FEE_WEI, MAX_FEE_HISTORY_BLOCKS, RpcContext, RpcError, RpcResult,
    convert::{self, TxContext},
    filters::FilterKind,
};

impl RpcContext {
    // --- chain info ---------------------------------------------------------

    /// `web3_clientVersion`.
    pub fn client_version(&self) -> String {
        self.config().client_version.clone()
    }

    /// `eth_chainId`.
    pub fn chain_id(&self) -> U64 {
        U64::from(self.chain().chain_id())
    }

    /// `eth_blockNumber`.
    pub fn block_number(&self) -> RpcResult<U64> {
        Ok(U64::from(self.head(&self.db().reader()?)?))
    }

    pub(crate) fn head(&self, reader: &Reader) -> RpcResult<u64> {
        reader
            .head_number()?
            .ok_or_else(|| RpcError::Evm("the database holds no chain".into()))
    }

    /// The block number a tag or number names, if that block exists.
    pub(crate) fn resolve_number(
        &self,
        reader: &Reader,
        tag: BlockNumberOrTag,
    ) -> RpcResult<Option<u64>> {
        let head = self.head(reader)?;
        let number = match tag {
            // Dev mode has no separate pending block, no finality lag.
            BlockNumberOrTag::Latest
            | BlockNumberOrTag::Pending
            | BlockNumberOrTag::Safe
            | BlockNumberOrTag::Finalized => head,
            BlockNumberOrTag::Earliest => 0,
            BlockNumberOrTag::Number(n) => n,
        };
        Ok((number <= head).then_some(number))
    }

    /// Resolves a block id for a state query; unknown blocks are an error.
    pub(crate) fn resolve_state_block(
        &self,
        reader: &Reader,
        id: Option<BlockId>,
    ) -> RpcResult<u64> {
        let id = id.unwrap_or(BlockId::Number(BlockNumberOrTag::Latest));
        let number = match id {
            BlockId::Number(tag) => self.resolve_number(reader, tag)?,
            BlockId::Hash(hash) => reader.block_number(hash.block_hash)?,
        };
        number.ok_or_else(|| RpcError::NotFound(format!("header not found for block {id}")))
    }

    /// Runs `f` on the state after block `id`.
    fn with_state<T>(
        &self,
        id: Option<BlockId>,
        f: impl FnOnce(&dyn StateView) -> RpcResult<T>,
    ) -> RpcResult<T> {
        let reader = self.db().reader()?;
        let number = self.resolve_state_block(&reader, id)?;
        if number == self.head(&reader)? {
            f(&Adapter(reader.latest_state()))
        } else {
            f(&Adapter(reader.state_at(number)))
        }
    }

    // --- accounts -----------------------------------------------------------

    /// `eth_getBalance`.
    pub fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        self.with_state(block, |state| {
            Ok(state.account(address)?.map_or(U256::ZERO, |a| a.balance))
        })
    }

    /// `eth_getTransactionCount`; `pending` counts the pool's transactions too.
    pub fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        let nonce = self.with_state(block, |state| {
            Ok(state.account(address)?.map_or(0, |a| a.nonce))
        })?;
        let pending = matches!(block, Some(BlockId::Number(BlockNumberOrTag::Pending)));
        let nonce = if pending {
            self.pool()
                .lock()
                .pending_nonce(address)
                .map_or(nonce, |pool| pool.max(nonce))
        } else {
            nonce
        };
        Ok(U256::from(nonce))
    }

    /// `eth_getCode`.
    pub fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes> {
        self.with_state(block, |state| {
            let Some(account) = state.account(address)? else {
                return Ok(Bytes::new());
            };
            if !account.has_code() {
                return Ok(Bytes::new());
            }
            state.code(account.code_hash)
        })
    }

    /// `eth_getStorageAt`.
    pub fn storage_at(
        &self,
        address: Address,
        slot: U256,
        block: Option<BlockId>,
    ) -> RpcResult<B256> {
        self.with_state(block, |state| Ok(B256::from(state.storage(address, slot)?)))
    }

    // --- fees ---------------------------------------------------------------

    pub(crate) fn next_base_fee(&self, reader: &Reader) -> RpcResult<(Header, u64)> {
        let head = self.head(reader)?;
        let header = reader
            .header(head)?
            .ok_or_else(|| RpcError::NotFound("head header missing".into()))?;
        let base_fee = self.chain().next_base_fee(&header).unwrap_or(0);
        Ok((header, base_fee))
    }

    /// `eth_maxPriorityFeePerGas`.
    pub fn max_priority_fee(&self) -> RpcResult<U256> {
        Ok(U256::from(DEFAULT_PRIORITY_FEE_WEI))
    }

    /// `eth_gasPrice`: next block's base fee plus the suggested tip.
    pub fn gas_price(&self) -> RpcResult<U256> {
        let (_, base_fee) = self.next_base_fee(&self.db().reader()?)?;
        Ok(U256::from(u128::from(base_fee) + DEFAULT_PRIORITY_FEE_WEI))
    }

    /// `eth_feeHistory`.
    pub fn fee_history(
        &self,
        block_count: u64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        // Like geth: an empty percentile list asks for no rewards.
        let percentiles = percentiles.filter(|p| !p.is_empty());
        if let Some(p) = &percentiles {
            let sorted = p.windows(2).all(|w| w[0] <= w[1]);
            if !sorted || p.iter().any(|v| !(0.0..=100.0).contains(v)) || p.len() > 100 {
                return Err(RpcError::InvalidParams(
                    "reward percentiles must be at most 100 ascending values within [0, 100]"
                        .into(),
                ));
            }
        }
        let reader = self.db().reader()?;
        let newest = self
            .resolve_number(&reader, newest)?
            .ok_or_else(|| RpcError::NotFound("newest block not found".into()))?;
        let block_count = block_count.min(MAX_FEE_HISTORY_BLOCKS).min(newest + 1);
        let mut history = FeeHistory {
            oldest_block: newest + 1 - block_count,
            ..Default::default()
        };
        if block_count == 0 {
            return Ok(history);
        }
        let mut rewards = Vec::new();
        for number in history.oldest_block..=newest {
            let block = reader
                .block(number)?
                .ok_or_else(|| RpcError::NotFound(format!("block {number} missing")))?;
            let header = &block.header;
            history
                .base_fee_per_gas
                .push(header.base_fee_per_gas.unwrap_or(0).into());
            history
                .gas_used_ratio
                .push(ratio(header.gas_used, header.gas_limit));
            history
                .base_fee_per_blob_gas
                .push(self.blob_fee_of(header).unwrap_or(0));
            history
                .blob_gas_used_ratio
                .push(self.blob_gas_used_ratio(header));
            if let Some(percentiles) = &percentiles {
                let receipts = reader.receipts(number)?.unwrap_or_default();
                rewards.push(block_rewards(&block, &receipts, percentiles));
            }
        }
        let last = reader
            .header(newest)?
            .ok_or_else(|| RpcError::NotFound("header missing".into()))?;
        history
            .base_fee_per_gas
            .push(self.chain().next_base_fee(&last).unwrap_or(0).into());
        // The block after the newest: what `eth_blobBaseFee` answers when the
        // newest block is the head.
        history
            .base_fee_per_blob_gas
            .push(self.next_blob_fee(&last).unwrap_or(0));
        history.reward = percentiles.map(|_| rewards);
        Ok(history)
    }

    // --- execution ----------------------------------------------------------

    pub(crate) fn call_env(
        &self,
        reader: &Reader,
        number: u64,
    ) -> RpcResult<(ExecutionConfig, BlockEnvInput)> {
        let header = reader
            .header(number)?
            .ok_or_else(|| RpcError::NotFound(format!("block {number} missing")))?;
        let spec = self.chain().spec_at(header.number, header.timestamp);
        let cfg = ExecutionConfig {
            chain_id: self.chain().chain_id(),
            spec,
        };
        let env = BlockEnvInput::from_header(&header, None);
        Ok((cfg, env))
    }

    /// `eth_call`: waits its turn among the heavy calls, within the gas cap
    /// and the deadline.
    pub fn call(&self, request: TransactionRequest, block: Option<BlockId>) -> RpcResult<Bytes> {
        let req = call_request(request)?;
        let outcome = self.heavy(|limits| self.call_outcome(req, block, limits))?;
        match outcome {
            CallOutcome::Success { output, .. } => Ok(output),
            CallOutcome::Revert { output, .. } => Err(reverted(output)),
            CallOutcome::Halt { reason, .. } => {
                Err(RpcError::Halted(format!("execution halted: {reason}")))
            }
        }
    }

    /// Executes `req` on the state after `block` within `limits`, keeping no
    /// change: the path `eth_call` and the `infera_` namespace share.
    pub(crate) fn call_outcome(
        &self,
        req: CallRequest,
        block: Option<BlockId>,
        limits: CallLimits,
    ) -> RpcResult<CallOutcome> {
        let reader = self.db().reader()?;
        let number = self.resolve_state_block(&reader, block)?;
        let (cfg, env) = self.call_env(&reader, number)?;
        let precompiles = self.precompiles(cfg.spec);
        if number == self.head(&reader)? {
            infera_evm::call_with_limits(reader.latest_state(), cfg, env, req, precompiles, limits)
        } else {
            let state = reader.state_at(number);
            infera_evm::call_with_limits(state, cfg, env, req, precompiles, limits)
        }
        .map_err(evm_error)
    }

    /// `eth_estimateGas`: waits its turn among the heavy calls; the whole
    /// search runs within the gas cap and the one deadline.
    pub fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
    ) -> RpcResult<U64> {
        let req = call_request(request)?;
        let gas = self.heavy(|limits| {
            let reader = self.db().reader()?;
            let number = self.resolve_state_block(&reader, block)?;
            let (cfg, env) = self.call_env(&reader, number)?;
            let precompiles = self.precompiles(cfg.spec);
            if number == self.head(&reader)? {
                let state = reader.latest_state();
                infera_evm::estimate_gas_with_limits(state, cfg, env, req, precompiles, limits)
            } else {
                let state = reader.state_at(number);
                infera_evm::estimate_gas_with_limits(state, cfg, env, req, precompiles, limits)
            }
            .map_err(evm_error)
        })?;
        Ok(U64::from(gas))
    }

    // --- transactions -------------------------------------------------------

    /// `eth_sendRawTransaction`: decode, validate against the head state, pool
    /// ([`infera_txpool::TxAdmission`], which peers' transactions go through too).
    pub fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256> {
        Ok(self.admission().admit(&raw)?)
    }

    /// `eth_getTransactionByHash`: mined, or pending in the pool.
    pub fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>> {
        let reader = self.db().reader()?;
        if let Some(location) = reader.transaction_location(hash)? {
            let Some(block) = reader.block(location.block_number)? else {
                return Ok(None);
            };
            let index = location.index as usize;
            return Ok(block
                .transactions
                .get(index)
                .map(|tx| convert::rpc_transaction(tx, Some(TxContext::of(&block, index)))));
        }
        Ok(self
            .pool()
            .lock()
            .get(&hash)
            .map(|tx| convert::rpc_transaction(tx, None)))
    }

    /// `eth_getTransactionReceipt`.
    pub fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<RpcReceipt>> {
        let reader = self.db().reader()?;
        let Some(location) = reader.transaction_location(hash)? else {
            return Ok(None);
        };
        let Some(block) = reader.block(location.block_number)? else {
            return Ok(None);
        };
        let receipts = reader.receipts(location.block_number)?.unwrap_or_default();
        let blob_fee = self.blob_fee_of(&block.header);
        Ok(
            convert::rpc_receipt(&block, &receipts, location.index as usize)
                .map(|r| with_blob_fields(&block, blob_fee, r)),
        )
    }

    /// `eth_getBlockReceipts`.
    pub fn block_receipts(&self, id: BlockId) -> RpcResult<Option<Vec<RpcReceipt>>> {
        let reader = self.db().reader()?;
        let Some(block) = self.block(&reader, id)? else {
            return Ok(None);
        };
        let receipts = reader.receipts(block.number())?.unwrap_or_default();
        // One blob fee for the whole block, not one per receipt.
        let blob_fee = self.blob_fee_of(&block.header);
        Ok(Some(
            (0..block.transactions.len())
                .filter_map(|i| convert::rpc_receipt(&block, &receipts, i))
                .map(|r| with_blob_fields(&block, blob_fee, r))
                .collect(),
        ))
    }

    // --- blocks -------------------------------------------------------------

    fn block(&self, reader: &Reader, id: BlockId) -> RpcResult<Option<SealedBlock>> {
        Ok(match id {
            BlockId::Hash(hash) => reader.block_by_hash(hash.block_hash)?,
            BlockId::Number(tag) => match self.resolve_number(reader, tag)? {
                Some(number) => reader.block(number)?,
                None => None,
            },
        })
    }

    /// `eth_getBlockByNumber` / `eth_getBlockByHash`.
    pub fn block_by_id(&self, id: BlockId, full: bool) -> RpcResult<Option<Block<Transaction>>> {
        let reader = self.db().reader()?;
        Ok(self
            .block(&reader, id)?
            .map(|block| convert::rpc_block(&block, full)))
    }

    /// `eth_getBlockTransactionCountBy*`.
    pub fn block_transaction_count(&self, id: BlockId) -> RpcResult<Option<U64>> {
        let reader = self.db().reader()?;
        Ok(self
            .block(&reader, id)?
            .map(|block| U64::from(block.transactions.len())))
    }

    /// `eth_getTransactionByBlock*AndIndex`.
    pub fn transaction_by_block_and_index(
        &self,
        id: BlockId,
        index: U64,
    ) -> RpcResult<Option<Transaction>> {
        let reader = self.db().reader()?;
        let Some(block) = self.block(&reader, id)? else {
            return Ok(None);
        };
        let index = index.to::<usize>();
        Ok(block
            .transactions
            .get(index)
            .map(|tx| convert::rpc_transaction(tx, Some(TxContext::of(&block, index)))))
    }

    // --- logs and filters ---------------------------------------------------

    /// `eth_getLogs`.
    pub fn logs(&self, filter: &Filter) -> RpcResult<Vec<RpcLog>> {
        let reader = self.db().reader()?;
        let (from, to) = match filter.block_option {
            FilterBlockOption::AtBlockHash(hash) => {
                let number = reader
                    .block_number(hash)?
                    .ok_or_else(|| RpcError::NotFound(format!("unknown block {hash}")))?;
                (number, number)
            }
            FilterBlockOption::Range {
                from_block,
                to_block,
            } => {
                let head = self.head(&reader)?;
                let resolve = |tag: Option<BlockNumberOrTag>| -> RpcResult<u64> {
                    Ok(match tag.unwrap_or(BlockNumberOrTag::Latest) {
                        BlockNumberOrTag::Number(n) => n,
                        BlockNumberOrTag::Earliest => 0,
                        _ => head,
                    })
                };
                let (from, to) = (resolve(from_block)?, resolve(to_block)?);
                if to > head {
                    return Err(RpcError::InvalidParams(
                        "block range extends beyond current head block".into(),
                    ));
                }
                if from > to {
                    return Err(RpcError::InvalidParams(format!(
                        "invalid block range params: fromBlock {from} is after toBlock {to}"
                    )));
                }
                (from, to.min(head))
            }
        };
        self.logs_in_range(&reader, filter, from, to)
    }

    fn logs_in_range(
        &self,
        reader: &Reader,
        filter: &Filter,
        from: u64,
        to: u64,
    ) -> RpcResult<Vec<RpcLog>> {
        if from > to {
            return Ok(Vec::new());
        }
        let max_range = self.config().max_logs_block_range;
        if to - from >= max_range {
            return Err(RpcError::LimitExceeded(format!(
                "block range {from}..={to} is wider than the limit of {max_range} blocks; query smaller ranges"
            )));
        }
        let max_results = self.config().max_logs_results;
        let mut logs = Vec::new();
        for number in from..=to {
            let Some(header) = reader.header(number)? else {
                break;
            };
            if !filter.matches_bloom(header.logs_bloom) {
                continue;
            }
            let Some(block) = reader.block(number)? else {
                break;
            };
            let receipts = reader.receipts(number)?.unwrap_or_default();
            collect_block_logs(filter, &block, &receipts, &mut logs);
            if logs.len() > max_results {
                return Err(RpcError::LimitExceeded(format!(
                    "query returned more than {max_results} logs; narrow the block range or the filter"
                )));
            }
        }
        Ok(logs)
    }

    /// `eth_newFilter`.
    pub fn new_filter(&self, filter: Filter) -> RpcResult<String> {
        let head = self.head(&self.db().reader()?)?;
        let start = match filter.block_option.get_from_block() {
            Some(&BlockNumberOrTag::Number(n)) => n.saturating_sub(1).min(head),
            _ => head,
        };
        self.filters()
            .install(FilterKind::Logs(Box::new(filter)), start)
    }

    /// `eth_newBlockFilter`.
    pub fn new_block_filter(&self) -> RpcResult<String> {
        let head = self.head(&self.db().reader()?)?;
        self.filters().install(FilterKind::Blocks, head)
    }

    /// `eth_newPendingTransactionFilter`.
    pub fn new_pending_transaction_filter(&self) -> RpcResult<String> {
        let head = self.head(&self.db().reader()?)?;
        self.filters().install(
            FilterKind::PendingTransactions(self.events().subscribe()),
            head,
        )
    }

    /// `eth_getFilterChanges`.
    pub fn filter_changes(&self, id: &str) -> RpcResult<FilterChanges> {
        let reader = self.db().reader()?;
        let head = self.head(&reader)?;
        self.filters().with(id, |filter| {
            let from = filter.last_block + 1;
            let changes = match &mut filter.kind {
                FilterKind::Blocks => {
                    let mut hashes = Vec::new();
                    for number in from..=head {
                        hashes.extend(reader.canonical_hash(number)?);
                    }
                    filter.last_block = head;
                    FilterChanges::Hashes(hashes)
                }
                FilterKind::Logs(log_filter) => {
                    let to = match log_filter.block_option.get_to_block() {
                        Some(&BlockNumberOrTag::Number(n)) => n.min(head),
                        _ => head,
                    };
                    let to = to.min(from.saturating_add(self.config().max_logs_block_range - 1));
                    let logs = self.logs_in_range(&reader, log_filter, from, to)?;
                    filter.last_block = filter.last_block.max(to);
                    FilterChanges::Logs(logs)
                }
                FilterKind::PendingTransactions(receiver) => {
                    let mut hashes = Vec::new();
                    loop {
                        match receiver.try_recv() {
                            Ok(ChainEvent::PendingTransaction(hash)) => hashes.push(hash),
                            Ok(_) => {}
                            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                            Err(_) => break,
                        }
                    }
                    FilterChanges::Hashes(hashes)
                }
            };
            Ok(changes)
        })
    }

    /// `eth_getFilterLogs`.
    pub fn filter_logs(&self, id: &str) -> RpcResult<Vec<RpcLog>> {
        let filter = self.filters().with(id, |filter| match &filter.kind {
            FilterKind::Logs(filter) => Ok(filter.as_ref().clone()),
            _ => Err(RpcError::InvalidParams("filter is not a log filter".into())),
        })?;
        self.logs(&filter)
    }

    /// `eth_uninstallFilter`.
    pub fn uninstall_filter(&self, id: &str) -> bool {
        self.filters().uninstall(id)
    }
}

/// The logs of `block` matching `filter`, appended to `out`.
pub(crate) fn collect_block_logs(
    filter: &Filter,
    block: &SealedBlock,
    receipts: &[infera_primitives::ReceiptEnvelope],
    out: &mut Vec<RpcLog>,
) {
    let mut log_index = 0u64;
    for (i, (tx, receipt)) in block.transactions.iter().zip(receipts).enumerate() {
        let ctx = TxContext::of(block, i);
        for log in convert::rpc_logs(receipt, tx, ctx, log_index) {
            if filter.matches_address(log.address()) && filter.matches_topics(log.topics()) {
                out.push(log);
            }
        }
        log_index += receipt.logs().len() as u64;
    }
}

/// The state views `with_state` hands out, boxed behind one trait so latest
/// and historical state share the code of every state method.
trait StateView {
    fn account(&self, address: Address) -> RpcResult<Option<infera_primitives::Account>>;
    fn storage(&self, address: Address, slot: U256) -> RpcResult<U256>;
    fn code(&self, code_hash: B256) -> RpcResult<Bytes>;
}

struct Adapter<S>(S);

impl<S: StateReader> StateView for Adapter<S> {
    fn account(&self, address: Address) -> RpcResult<Option<infera_primitives::Account>> {
        self.0
            .account(address)
            .map_err(|e| RpcError::Evm(e.to_string()))
    }
    fn storage(&self, address: Address, slot: U256) -> RpcResult<U256> {
        self.0
            .storage(address, slot)
            .map_err(|e| RpcError::Evm(e.to_string()))
    }
    fn code(&self, code_hash: B256) -> RpcResult<Bytes> {
        Ok(self
            .0
            .code_by_hash(code_hash)
            .map_err(|e| RpcError::Evm(e.to_string()))?
            .unwrap_or_default())
    }
}

fn ratio(used: u64, limit: u64) -> f64 {
    if limit == 0 {
        0.0
    } else {
        used as f64 / limit as f64
    }
}

/// Priority fees paid at the given gas-weighted percentiles of one block.
fn block_rewards(
    block: &SealedBlock,
    receipts: &[infera_primitives::ReceiptEnvelope],
    percentiles: &[f64],
) -> Vec<u128> {
    let base_fee = block.header.base_fee_per_gas;
    let mut tips: Vec<(u128, u64)> = Vec::with_capacity(block.transactions.len());
    let mut previous = 0;
    for (tx, receipt) in block.transactions.iter().zip(receipts) {
        let gas = receipt.cumulative_gas_used() - previous;
        previous = receipt.cumulative_gas_used();
        tips.push((
            tx.tx
                .effective_tip_per_gas(base_fee.unwrap_or(0))
                .unwrap_or(0),
            gas,
        ));
    }
    if tips.is_empty() {
        return vec![0; percentiles.len()];
    }
    tips.sort_unstable_by_key(|(tip, _)| *tip);
    let total: u64 = tips.iter().map(|(_, gas)| gas).sum();
    percentiles
        .iter()
        .map(|p| {
            let threshold = (total as f64 * p / 100.0) as u64;
            let mut cumulative = 0;
            for (tip, gas) in &tips {
                cumulative += gas;
                if cumulative >= threshold {
                    return *tip;
                }
            }
            tips.last().map_or(0, |(tip, _)| *tip)
        })
        .collect()
}

/// Maps alloy's request type onto the executor's.
pub(crate) fn call_request(request: TransactionRequest) -> RpcResult<CallRequest> {
    let input = request
        .input
        .try_into_unique_input()
        .map_err(|e| RpcError::InvalidParams(e.to_string()))?
        .unwrap_or_default();
    if request
        .blob_versioned_hashes
        .as_ref()
        .is_some_and(|h| !h.is_empty())
    {
        return Err(RpcError::InvalidParams(
            "blob transactions are not supported on this chain".into(),
        ));
    }
    Ok(CallRequest {
        from: request.from,
        to: match request.to {
            Some(TxKind::Call(to)) => Some(to),
            Some(TxKind::Create) | None => None,
        },
        gas: request.gas,
        gas_price: request.gas_price,
        max_fee_per_gas: request.max_fee_per_gas,
        max_priority_fee_per_gas: request.max_priority_fee_per_gas,
        value: request.value,
        input,
        nonce: request.nonce,
        access_list: request.access_list,
    })
}

pub(crate) fn reverted(output: Bytes) -> RpcError {
    RpcError::Reverted {
        // Names the AI precompiles' custom errors too, e.g. `UnknownModel { id: .. }`.
        reason: crate::infera::describe_revert(&output),
        data: output,
    }
}

pub(crate) fn evm_error(err: EvmError) -> RpcError {
    match err {
        EvmError::Revert { output } => reverted(output),
        EvmError::Halt { reason } => RpcError::Halted(format!("execution halted: {reason}")),
        // geth's code and words: "execution aborted (timeout = 5s)".
        timeout @ EvmError::Timeout { .. } => RpcError::Halted(timeout.to_string()),
        EvmError::InvalidTransaction(e) => RpcError::TransactionRejected(e.to_string()),
        EvmError::InvalidRequest(e) => RpcError::InvalidParams(e),
        EvmError::Decode(e) | EvmError::InvalidSignature(e) => RpcError::InvalidParams(e),
        // The node's own faults, and block rules broken by a block the node
        // assembled itself (a call's or a simulation's): -32603.
        local @ (EvmError::Database(_) | EvmError::Internal(_) | EvmError::InvalidBlock(_)) => {
            RpcError::Execution(local)
        }
    }
}

/// Fills the blob fields as anvil and reth do: `blobGasPrice`, the blob base
/// fee of the block (`blob_fee`, `None` before Cancun), on every receipt, and
/// `blobGasUsed` on an EIP-4844 transaction's.
fn with_blob_fields(
    block: &SealedBlock,
    blob_fee: Option<u128>,
    mut receipt: RpcReceipt,
) -> RpcReceipt {
    let Some(blob_fee) = blob_fee else {
        return receipt;
    };
    let r = &mut receipt.receipt;
    r.blob_gas_price = Some(blob_fee);
    let hashes = r
        .transaction_index
        .and_then(|i| block.transactions.get(i as usize))
        .and_then(|tx| tx.tx.blob_versioned_hashes());
    if let Some(hashes) = hashes {
        r.blob_gas_used = Some(hashes.len() as u64 * alloy_eips::eip4844::DATA_GAS_PER_BLOB);
    }
    receipt
}
