//! `testing_buildBlockV1`: builds an execution payload on top of a parent
//! from given transactions (or the pool's best ones) without committing
//! anything, as geth's `testing` namespace does.

use alloy_consensus::Transaction as _;
use alloy_eips::{eip2718::Encodable2718, eip4895::Withdrawal};
use alloy_primitives::{Address, B256, Bloom, Bytes, U64, U256};
pub use infera_chainspec::next_block::next_gas_limit;
use infera_chainspec::{BlockAttributes, BlockOutput, GasLimit, NextBlock, SpecId};
use infera_evm::{BlockEnvInput, BlockExecutor, EvmError, ExecutionConfig, decode_raw_transaction};
use infera_primitives::RecoveredTx;
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
        let number = parent.number + 1;
        let timestamp = attributes.timestamp.to::<u64>();
        if timestamp <= parent.timestamp {
            return Err(RpcError::InvalidParams(format!(
                "timestamp {timestamp} is not after the parent's {}",
                parent.timestamp
            )));
        }
        let chain = self.chain();
        let spec = chain.spec_at(number, timestamp);
        let withdrawals = attributes.withdrawals.unwrap_or_default();
        if spec.is_enabled_in(SpecId::CANCUN) && attributes.parent_beacon_block_root.is_none() {
            return Err(RpcError::InvalidParams(
                "parentBeaconBlockRoot is required from Cancun on".into(),
            ));
        }
        let next = NextBlock::new(
            chain,
            &parent,
            parent_hash,
            &BlockAttributes {
                timestamp,
                beneficiary: attributes.suggested_fee_recipient,
                prev_randao: attributes.prev_randao,
                gas_limit: GasLimit::Towards(BUILD_GAS_LIMIT_TARGET),
                extra_data: extra_data.clone(),
                parent_beacon_block_root: attributes.parent_beacon_block_root.unwrap_or_default(),
                withdrawals: withdrawals.clone(),
            },
        );
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

        let mut included: Vec<RecoveredTx> = Vec::new();
        let mut block_value = U256::ZERO;
        let mut tip = |tx: &RecoveredTx, gas: u64| {
            let per_gas = tx.tx.effective_tip_per_gas(base_fee).unwrap_or(0);
            block_value += U256::from(per_gas) * U256::from(gas);
        };
        match transactions {
            Some(raw) => {
                for (i, bytes) in raw.iter().enumerate() {
                    let tx = decode_raw_transaction(bytes).map_err(|e| {
                        RpcError::InvalidParams(format!("transaction {i} does not decode: {e}"))
                    })?;
                    let before = executor.gas_used();
                    executor.execute_transaction(&tx).map_err(|e| match e {
                        EvmError::InvalidTransaction(err) => RpcError::TransactionRejected(
                            format!("transaction {i} ({}): {err}", tx.hash),
                        ),
                        other => RpcError::Evm(other.to_string()),
                    })?;
                    tip(&tx, executor.gas_used() - before);
                    included.push(tx);
                }
            }
            None => {
                // The pool's best transactions; ones that do not fit are skipped.
                let candidates = self.pool().lock().best_transactions(base_fee);
                let mut skipped: Vec<Address> = Vec::new();
                for tx in candidates {
                    if skipped.contains(&tx.sender) {
                        continue;
                    }
                    let before = executor.gas_used();
                    match executor.execute_transaction(&tx) {
                        Ok(_) => {
                            tip(&tx, executor.gas_used() - before);
                            included.push(tx);
                        }
                        Err(EvmError::InvalidTransaction(_)) => skipped.push(tx.sender),
                        Err(other) => return Err(RpcError::Evm(other.to_string())),
                    }
                }
            }
        }
        let requests = executor
            .apply_post_block_requests(chain.deposit_contract())
            .map_err(|e| RpcError::Evm(format!("post-block requests: {e}")))?;
        if spec.is_enabled_in(SpecId::SHANGHAI) {
            executor
                .apply_withdrawals(&withdrawals)
                .map_err(|e| RpcError::Evm(e.to_string()))?;
        } else if !withdrawals.is_empty() {
            return Err(RpcError::InvalidParams(
                "withdrawals before Shanghai".into(),
            ));
        }
        executor
            .apply_block_rewards(&[])
            .map_err(|e| RpcError::Evm(e.to_string()))?;
        let outcome = executor.finish();
        drop(reader);

        // The state root from a write transaction that is thrown away.
        let state_root = {
            let mut scratch = self.db().writer()?;
            scratch.apply_state(number, &outcome.changes)?;
            scratch.state_root()?
        };
        let envelopes: Vec<_> = included.iter().map(|tx| tx.tx.clone()).collect();
        let header = next.finish(BlockOutput {
            state_root,
            transactions: &envelopes,
            receipts: &outcome.receipts,
            requests: &requests,
        });
        let block_hash = header.hash_slow();
        Ok(BuiltPayload {
            execution_payload: ExecutionPayload {
                parent_hash,
                fee_recipient: attributes.suggested_fee_recipient,
                state_root,
                receipts_root: header.receipts_root,
                logs_bloom: header.logs_bloom,
                prev_randao: attributes.prev_randao,
                block_number: U64::from(number),
                gas_limit: U64::from(header.gas_limit),
                gas_used: U64::from(header.gas_used),
                timestamp: U64::from(timestamp),
                extra_data,
                base_fee_per_gas: U256::from(base_fee),
                block_hash,
                transactions: included
                    .iter()
                    .map(|tx| tx.tx.encoded_2718().into())
                    .collect(),
                withdrawals,
                blob_gas_used: U64::from(header.blob_gas_used.unwrap_or_default()),
                excess_blob_gas: U64::from(header.excess_blob_gas.unwrap_or_default()),
            },
            block_value,
            blobs_bundle: BlobsBundle::default(),
            execution_requests: requests
                .iter()
                .filter(|request| request.len() > 1)
                .cloned()
                .collect(),
            should_override_builder: false,
        })
    }
}
