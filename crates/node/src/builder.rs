//! Building a block from the pool on top of the current head, and committing
//! it: execution, state root, header, and one storage write transaction.

use std::sync::Arc;

use alloy_consensus::{
    EMPTY_OMMER_ROOT_HASH, Header,
    proofs::{calculate_receipt_root, calculate_transaction_root},
};
use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use infera_chainspec::{ChainSpec, SpecId};
use infera_evm::{BlockEnvInput, BlockExecutor, EvmError, ExecutionConfig, InvalidTransaction};
use infera_precompiles::{InferaPrecompiles, ModelCache};
use infera_primitives::{
    Address, B256, Bytes, EMPTY_ROOT_HASH, ReceiptEnvelope, RecoveredTx, SealedBlock, keccak256,
};
use infera_storage::Database;
use infera_txpool::TxPool;
use parking_lot::Mutex;
use tracing::{debug, warn};

use crate::{NodeError, NodeResult};

/// Extra data the dev sealer writes into every header (at most 32 bytes).
pub const DEV_EXTRA_DATA: &[u8] = b"infera";

/// A block that was built and committed, with its receipts.
#[derive(Debug, Clone)]
pub struct CommittedBlock {
    pub block: Arc<SealedBlock>,
    pub receipts: Arc<Vec<ReceiptEnvelope>>,
}

/// Builds the next block from the best pool transactions and commits it.
///
/// `timestamp_s` is the wall clock; the block gets at least parent + 1 so that
/// timestamps strictly increase even when several blocks are sealed in one second.
/// Transactions run with the AI precompiles, decoding models through `models`.
pub fn build_and_commit(
    db: &Database,
    chain: &ChainSpec,
    pool: &Mutex<TxPool>,
    beneficiary: Address,
    timestamp_s: u64,
    models: &Arc<ModelCache>,
) -> NodeResult<CommittedBlock> {
    build_and_commit_sealed(db, chain, pool, beneficiary, timestamp_s, models, &|_| {
        Ok(())
    })
}

/// [`build_and_commit`] with a seal: `seal` sees the finished header (every
/// root filled in) before its hash is taken, and may set the difficulty and
/// extra data (a proof-of-authority signature). A failing seal commits nothing.
pub fn build_and_commit_sealed(
    db: &Database,
    chain: &ChainSpec,
    pool: &Mutex<TxPool>,
    beneficiary: Address,
    timestamp_s: u64,
    models: &Arc<ModelCache>,
    seal: &dyn Fn(&mut Header) -> NodeResult<()>,
) -> NodeResult<CommittedBlock> {
    let reader = db.reader()?;
    let head = reader.head_number()?.ok_or(NodeError::NoGenesis)?;
    let parent = reader.header(head)?.ok_or_else(|| {
        NodeError::Invariant(format!("head block {head} has no header in storage"))
    })?;
    let parent_hash = reader
        .canonical_hash(head)?
        .ok_or_else(|| NodeError::Invariant(format!("head block {head} has no canonical hash")))?;

    let number = head + 1;
    let timestamp = timestamp_s.max(parent.timestamp + 1);
    let spec = chain.spec_at(number, timestamp);
    let base_fee = chain.next_base_fee(&parent).unwrap_or(0);
    let gas_limit = parent.gas_limit;
    // Dev mode has no beacon chain: derive PREVRANDAO from the parent so that
    // re-executing the block reproduces it.
    let prevrandao = keccak256(parent_hash);
    let env = BlockEnvInput {
        number,
        timestamp,
        beneficiary,
        gas_limit,
        base_fee_per_gas: base_fee,
        prevrandao,
        excess_blob_gas: 0,
        parent_hash,
        parent_beacon_block_root: spec.is_enabled_in(SpecId::CANCUN).then_some(B256::ZERO),
        ..Default::default()
    };
    let cfg = ExecutionConfig {
        chain_id: chain.chain_id(),
        spec,
    };

    let candidates = pool.lock().best_transactions(base_fee);
    let precompiles = InferaPrecompiles::new(spec, models.clone());
    let mut executor =
        BlockExecutor::with_precompiles(reader.latest_state(), cfg, env, precompiles)?;
    let mut included: Vec<RecoveredTx> = Vec::with_capacity(candidates.len());
    let mut invalid: Vec<B256> = Vec::new();
    let mut skipped_senders: Vec<Address> = Vec::new();
    for tx in candidates {
        if skipped_senders.contains(&tx.sender) {
            continue;
        }
        match executor.execute_transaction(&tx) {
            Ok(_) => included.push(tx),
            Err(EvmError::InvalidTransaction(err)) if is_temporarily_unfit(&err) => {
                // Keep it for a later block; its successors cannot go first.
                debug!(target: "infera::builder", tx = %tx.hash, %err, "transaction left for a later block");
                skipped_senders.push(tx.sender);
            }
            Err(EvmError::InvalidTransaction(err)) => {
                warn!(target: "infera::builder", tx = %tx.hash, %err, "dropping invalid transaction");
                invalid.push(tx.hash);
                skipped_senders.push(tx.sender);
            }
            Err(err) => return Err(err.into()),
        }
    }
    let outcome = executor.finish();

    let mut writer = db.writer()?;
    writer.apply_state(number, &outcome.changes)?;
    let state_root = writer.state_root()?;
    let envelopes: Vec<_> = included.iter().map(|tx| tx.tx.clone()).collect();
    let header = Header {
        parent_hash,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary,
        state_root,
        transactions_root: calculate_transaction_root(&envelopes),
        receipts_root: calculate_receipt_root(&outcome.receipts),
        logs_bloom: outcome.logs_bloom,
        difficulty: Default::default(),
        number,
        gas_limit,
        gas_used: outcome.gas_used,
        timestamp,
        extra_data: Bytes::from_static(DEV_EXTRA_DATA),
        mix_hash: prevrandao,
        nonce: Default::default(),
        base_fee_per_gas: spec.is_enabled_in(SpecId::LONDON).then_some(base_fee),
        withdrawals_root: spec
            .is_enabled_in(SpecId::SHANGHAI)
            .then_some(EMPTY_ROOT_HASH),
        blob_gas_used: spec.is_enabled_in(SpecId::CANCUN).then_some(0),
        excess_blob_gas: spec.is_enabled_in(SpecId::CANCUN).then_some(0),
        parent_beacon_block_root: env.parent_beacon_block_root,
        requests_hash: spec
            .is_enabled_in(SpecId::PRAGUE)
            .then_some(EMPTY_REQUESTS_HASH),
        block_access_list_hash: None,
        slot_number: None,
    };
    let mut header = header;
    seal(&mut header)?;
    let block = SealedBlock::new(header, included);
    writer.insert_block(&block, &outcome.receipts)?;
    writer.commit()?;

    let block = Arc::new(block);
    let receipts = Arc::new(outcome.receipts);
    {
        let reader = db.reader()?;
        let state = reader.latest_state();
        let mined: Vec<B256> = block.transactions.iter().map(|tx| tx.hash).collect();
        let mut pool = pool.lock();
        for hash in invalid {
            pool.remove_invalid(hash);
        }
        pool.on_new_block(&mined, |address| {
            infera_primitives::StateReader::account(&state, address)
                .ok()
                .flatten()
                .map_or(0, |account| account.nonce)
        });
    }
    Ok(CommittedBlock { block, receipts })
}

/// Errors that say "not in this block" rather than "never".
fn is_temporarily_unfit(err: &InvalidTransaction) -> bool {
    matches!(
        err,
        InvalidTransaction::NonceTooHigh { .. }
            | InvalidTransaction::GasLimitAboveBlockRemaining { .. }
            | InvalidTransaction::FeeCapBelowBaseFee { .. }
    )
}
