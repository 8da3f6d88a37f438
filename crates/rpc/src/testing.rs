//! `testing_buildBlockV1`: builds an execution payload on top of a parent
//! from given transactions (or the pool's best ones) without committing
//! anything, as geth's `testing` namespace does.

use alloy_consensus::{Header, ReceiptEnvelope, Transaction as _};
use alloy_eips::{eip2718::Encodable2718, eip4895::Withdrawal, eip7685::Requests};
use alloy_primitives::{Address, B256, Bloom, Bytes, U64, U256};
pub use infera_chainspec::next_block::next_gas_limit;
use infera_chainspec::{BlockAttributes, BlockOutput, GasLimit, NextBlock, SpecId};
use infera_evm::{
    BlockEnvInput, BlockExecutor, EvmError, ExecutionConfig, ExecutionOutcome, Precompiles,
    decode_raw_transaction,
};
use infera_primitives::{RecoveredTx, StateChanges, StateReader};
use infera_storage::Reader;
use jsonrpsee::{core::RpcResult as JsonResult, proc_macros::rpc};
use serde::{Deserialize, Serialize};

use crate::{RpcContext, RpcError, RpcResult};

/// The gas limit a built block moves towards, at most parent/1024 per block
/// (geth's default miner gas ceiling).
pub const BUILD_GAS_LIMIT_TARGET: u64 = 60_000_000;

/// The `testing_` methods.
#[rpc(server, namespace = "testing")]
pub trait TestingApi {
    #[method(name = "buildBlockV1", blocking)]
    fn build_block_v1(
        &self,
        parent_hash: B256,
        attributes: PayloadAttributes,
        transactions: Option<Vec<Bytes>>,
        extra_data: Option<Bytes>,
    ) -> JsonResult<BuiltPayload>;
}

/// The Engine API's payload attributes (V3 shape).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadAttributes {
    pub timestamp: U64,
    pub prev_randao: B256,
    pub suggested_fee_recipient: Address,
    #[serde(default)]
    pub withdrawals: Option<Vec<Withdrawal>>,
    #[serde(default)]
    pub parent_beacon_block_root: Option<B256>,
}

/// An `ExecutionPayloadV3`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionPayload {
    pub parent_hash: B256,
    pub fee_recipient: Address,
    pub state_root: B256,
    pub receipts_root: B256,
    pub logs_bloom: Bloom,
    pub prev_randao: B256,
    pub block_number: U64,
    pub gas_limit: U64,
    pub gas_used: U64,
    pub timestamp: U64,
    pub extra_data: Bytes,
    pub base_fee_per_gas: U256,
    pub block_hash: B256,
    pub transactions: Vec<Bytes>,
    pub withdrawals: Vec<Withdrawal>,
    pub blob_gas_used: U64,
    pub excess_blob_gas: U64,
}

/// The blobs of the payload's blob transactions (none on this chain).
#[derive(Clone, Debug, Default, Serialize)]
pub struct BlobsBundle {
    pub commitments: Vec<Bytes>,
    pub proofs: Vec<Bytes>,
    pub blobs: Vec<Bytes>,
}

/// What `testing_buildBlockV1` answers (`engine_getPayloadV4`'s shape).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuiltPayload {
    pub execution_payload: ExecutionPayload,
    /// Priority fees the fee recipient earns, in wei.
    pub block_value: U256,
    pub blobs_bundle: BlobsBundle,
    /// EIP-7685 requests (type byte and data), empty ones left out.
    pub execution_requests: Vec<Bytes>,
    pub should_override_builder: bool,
}

impl TestingApiServer for RpcContext {
    fn build_block_v1(
        &self,
        parent_hash: B256,
        attributes: PayloadAttributes,
        transactions: Option<Vec<Bytes>>,
        extra_data: Option<Bytes>,
    ) -> JsonResult<BuiltPayload> {
        Ok(self.testing_build_block(
            parent_hash,
            attributes,
            transactions,
            extra_data.unwrap_or_default(),
        )?)
    }
}

impl RpcContext {
    /// `testing_buildBlockV1`: executes the block on the parent's state and
    /// returns its payload; nothing is written and the pool is left as is.
    /// The parent must be the head (the only state the builder can root).
    pub fn testing_build_block(
        &self,
        parent_hash: B256,
        attributes: PayloadAttributes,
        transactions: Option<Vec<Bytes>>,
        extra_data: Bytes,
    ) -> RpcResult<BuiltPayload> {
        if extra_data.len() > infera_chainspec::MAX_EXTRA_DATA_BYTES {
            return Err(RpcError::InvalidParams(format!(
                "extra data is {} bytes, at most {} allowed",
                extra_data.len(),
                infera_chainspec::MAX_EXTRA_DATA_BYTES
            )));
        }
        let reader = self.db().reader()?;
        let parent = self.build_parent(&reader, parent_hash, &attributes)?;
        let chain = self.chain();
        let withdrawals = attributes.withdrawals.unwrap_or_default();
        let next = NextBlock::new(
            chain,
            &parent,
            parent_hash,
            &BlockAttributes {
                timestamp: attributes.timestamp.to::<u64>(),
                beneficiary: attributes.suggested_fee_recipient,
                prev_randao: attributes.prev_randao,
                gas_limit: GasLimit::Towards(BUILD_GAS_LIMIT_TARGET),
                extra_data,
                parent_beacon_block_root: attributes.parent_beacon_block_root.unwrap_or_default(),
                withdrawals: withdrawals.clone(),
            },
        );
        let spec = next.spec();
        let env = BlockEnvInput::from_header(next.header(), next.blob_base_fee_update_fraction());
        let base_fee = env.base_fee_per_gas;
        let cfg = ExecutionConfig {
            chain_id: chain.chain_id(),
            spec,
        };
        let mut executor = BlockExecutor::with_precompiles(
            reader.latest_state(),
            cfg,
            env,
            self.precompiles(spec),
        )
        .map_err(|e| RpcError::Evm(format!("pre-block system calls: {e}")))?;
        let included = match transactions {
            Some(raw) => execute_given(&mut executor, &raw, base_fee)?,
            None => self.execute_pool_best(&mut executor, base_fee)?,
        };
        let (requests, outcome) =
            finish_execution(executor, chain.deposit_contract(), spec, &withdrawals)?;
        // The scratch writer below is opened with no read transaction left.
        drop(reader);
        let state_root = self.scratch_state_root(next.header().number, &outcome.changes)?;
        let header = seal_header(
            next,
            state_root,
            &included.transactions,
            &outcome.receipts,
            &requests,
        );
        Ok(built_payload(
            &header,
            base_fee,
            included,
            withdrawals,
            &requests,
        ))
    }

    /// The parent `testing_buildBlockV1` may build on with these attributes:
    /// the head, older than the new block's timestamp, and given a beacon
    /// root where the new block needs one.
    fn build_parent(
        &self,
        reader: &Reader,
        parent_hash: B256,
        attributes: &PayloadAttributes,
    ) -> RpcResult<Header> {
        let parent = reader
            .header_by_hash(parent_hash)?
            .ok_or_else(|| RpcError::NotFound(format!("parent block {parent_hash} not found")))?;
        let head = reader
            .head_number()?
            .ok_or_else(|| RpcError::Evm("the database holds no chain".into()))?;
        if parent.number != head {
            return Err(RpcError::NotFound(format!(
                "parent block {} is not the head ({head}); only the head's state can be built on",
                parent.number
            )));
        }
        let timestamp = attributes.timestamp.to::<u64>();
        if timestamp <= parent.timestamp {
            return Err(RpcError::InvalidParams(format!(
                "timestamp {timestamp} is not after the parent's {}",
                parent.timestamp
            )));
        }
        let spec = self.chain().spec_at(parent.number + 1, timestamp);
        if spec.is_enabled_in(SpecId::CANCUN) && attributes.parent_beacon_block_root.is_none() {
            return Err(RpcError::InvalidParams(
                "parentBeaconBlockRoot is required from Cancun on".into(),
            ));
        }
        Ok(parent)
    }

    /// Executes the pool's best transactions; one that does not fit is
    /// skipped, and with it its sender's later ones (their nonces would gap).
    fn execute_pool_best<S: StateReader, P: Precompiles<S>>(
        &self,
        executor: &mut BlockExecutor<S, P>,
        base_fee: u64,
    ) -> RpcResult<Included> {
        let candidates = self.pool().lock().best_transactions(base_fee);
        let mut included = Included::default();
        let mut skipped: Vec<Address> = Vec::new();
        for tx in candidates {
            if skipped.contains(&tx.sender) {
                continue;
            }
            let before = executor.gas_used();
            match executor.execute_transaction(&tx) {
                Ok(_) => included.push(tx, executor.gas_used() - before, base_fee),
                Err(EvmError::InvalidTransaction(_)) => skipped.push(tx.sender),
                Err(other) => return Err(RpcError::Evm(other.to_string())),
            }
        }
        Ok(included)
    }

    /// The state root of `changes` laid over the head state, from a write
    /// transaction that is thrown away (shared with `eth_simulateV1`).
    pub(crate) fn scratch_state_root(
        &self,
        number: u64,
        changes: &StateChanges,
    ) -> RpcResult<B256> {
        let mut scratch = self.db().writer()?;
        scratch.apply_state(number, changes)?;
        Ok(scratch.state_root()?)
    }
}

/// The transactions a built block includes, and what they pay its fee
/// recipient.
#[derive(Default)]
struct Included {
    transactions: Vec<RecoveredTx>,
    /// Priority fees, in wei.
    block_value: U256,
}

impl Included {
    fn push(&mut self, tx: RecoveredTx, gas_used: u64, base_fee: u64) {
        let per_gas = tx.tx.effective_tip_per_gas(base_fee).unwrap_or(0);
        self.block_value += U256::from(per_gas) * U256::from(gas_used);
        self.transactions.push(tx);
    }
}

/// Executes the request's own transactions in order; unlike the pool's, any
/// that does not decode or apply fails the request.
fn execute_given<S: StateReader, P: Precompiles<S>>(
    executor: &mut BlockExecutor<S, P>,
    raw: &[Bytes],
    base_fee: u64,
) -> RpcResult<Included> {
    let mut included = Included::default();
    for (i, bytes) in raw.iter().enumerate() {
        let tx = decode_raw_transaction(bytes).map_err(|e| {
            RpcError::InvalidParams(format!("transaction {i} does not decode: {e}"))
        })?;
        let before = executor.gas_used();
        executor.execute_transaction(&tx).map_err(|e| match e {
            EvmError::InvalidTransaction(err) => {
                RpcError::TransactionRejected(format!("transaction {i} ({}): {err}", tx.hash))
            }
            other => RpcError::Evm(other.to_string()),
        })?;
        included.push(tx, executor.gas_used() - before, base_fee);
    }
    Ok(included)
}

/// What follows the transactions: the EIP-7685 requests, the withdrawals
/// and the rewards. Withdrawals before Shanghai are refused only here, after
/// the transactions, so a request with a failing transaction reports that.
fn finish_execution<S: StateReader, P: Precompiles<S>>(
    mut executor: BlockExecutor<S, P>,
    deposit_contract: Address,
    spec: SpecId,
    withdrawals: &[Withdrawal],
) -> RpcResult<(Requests, ExecutionOutcome)> {
    let requests = executor
        .apply_post_block_requests(deposit_contract)
        .map_err(|e| RpcError::Evm(format!("post-block requests: {e}")))?;
    if spec.is_enabled_in(SpecId::SHANGHAI) {
        executor
            .apply_withdrawals(withdrawals)
            .map_err(|e| RpcError::Evm(e.to_string()))?;
    } else if !withdrawals.is_empty() {
        return Err(RpcError::InvalidParams(
            "withdrawals before Shanghai".into(),
        ));
    }
    executor
        .apply_block_rewards(&[])
        .map_err(|e| RpcError::Evm(e.to_string()))?;
    Ok((requests, executor.finish()))
}

/// The complete header of an executed block (shared with `eth_simulateV1`).
pub(crate) fn seal_header(
    next: NextBlock,
    state_root: B256,
    transactions: &[RecoveredTx],
    receipts: &[ReceiptEnvelope],
    requests: &Requests,
) -> Header {
    let envelopes: Vec<_> = transactions.iter().map(|tx| tx.tx.clone()).collect();
    next.finish(BlockOutput {
        state_root,
        transactions: &envelopes,
        receipts,
        requests,
    })
}

/// The payload of the built block, in `engine_getPayloadV4`'s shape.
fn built_payload(
    header: &Header,
    base_fee: u64,
    included: Included,
    withdrawals: Vec<Withdrawal>,
    requests: &Requests,
) -> BuiltPayload {
    BuiltPayload {
        execution_payload: ExecutionPayload {
            parent_hash: header.parent_hash,
            fee_recipient: header.beneficiary,
            state_root: header.state_root,
            receipts_root: header.receipts_root,
            logs_bloom: header.logs_bloom,
            prev_randao: header.mix_hash,
            block_number: U64::from(header.number),
            gas_limit: U64::from(header.gas_limit),
            gas_used: U64::from(header.gas_used),
            timestamp: U64::from(header.timestamp),
            extra_data: header.extra_data.clone(),
            base_fee_per_gas: U256::from(base_fee),
            block_hash: header.hash_slow(),
            transactions: included
                .transactions
                .iter()
                .map(|tx| tx.tx.encoded_2718().into())
                .collect(),
            withdrawals,
            blob_gas_used: U64::from(header.blob_gas_used.unwrap_or_default()),
            excess_blob_gas: U64::from(header.excess_blob_gas.unwrap_or_default()),
        },
        block_value: included.block_value,
        blobs_bundle: BlobsBundle::default(),
        execution_requests: requests
            .iter()
            .filter(|request| request.len() > 1)
            .cloned()
            .collect(),
        should_override_builder: false,
    }
}
