//! Building a block from the pool on top of the current head, and committing
//! it: execution, state root, header, and one storage write transaction.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_consensus::Header;
use infera_chainspec::{BlockAttributes, BlockOutput, ChainSpec, GasLimit, NextBlock};
use infera_evm::{BlockEnvInput, BlockExecutor, EvmError, ExecutionConfig, InvalidTransaction};
use infera_precompiles::{InferaPrecompiles, ModelCache};
use infera_primitives::{
    Address, B256, Bytes, ReceiptEnvelope, RecoveredTx, SealedBlock, keccak256,
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

/// Where one block's build went, phase by phase (what the benchmarks report).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BuildTimings {
    /// Reading the parent, the header template and `pool.best_transactions`.
    pub select: Duration,
    /// EVM execution of every transaction and the post-block steps
    /// (requests, rewards), receipts included.
    pub execute: Duration,
    /// `apply_state`: plain, hashed and history tables, change set.
    pub apply: Duration,
    /// `state_root`: the trie walk from the changed keys.
    pub root: Duration,
    /// Transaction and receipt roots, the header, its seal, `insert_block`.
    pub insert: Duration,
    /// The MDBX commit (durable: data and meta pages synced).
    pub commit: Duration,
    /// The pool's update after the block (`on_new_block`).
    pub pool: Duration,
}

impl BuildTimings {
    /// Every phase together.
    pub fn total(&self) -> Duration {
        self.select + self.execute + self.apply + self.root + self.insert + self.commit + self.pool
    }

    /// Each phase with its metrics label, in build order.
    pub fn phases(&self) -> [(&'static str, Duration); 7] {
        [
            ("select", self.select),
            ("execute", self.execute),
            ("apply", self.apply),
            ("state_root", self.root),
            ("insert", self.insert),
            ("commit", self.commit),
            ("pool", self.pool),
        ]
    }
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
    build_and_commit_timed(db, chain, pool, beneficiary, timestamp_s, models, seal)
        .map(|(committed, _)| committed)
}

/// [`build_and_commit_sealed`], with the time each phase took.
pub fn build_and_commit_timed(
    db: &Database,
    chain: &ChainSpec,
    pool: &Mutex<TxPool>,
    beneficiary: Address,
    timestamp_s: u64,
    models: &Arc<ModelCache>,
    seal: &dyn Fn(&mut Header) -> NodeResult<()>,
) -> NodeResult<(CommittedBlock, BuildTimings)> {
    let mut timings = BuildTimings::default();
    let pages_before = crate::metrics::pages_written(db);
    let t = Instant::now();
    let reader = db.reader()?;
    let head = reader.head_number()?.ok_or(NodeError::NoGenesis)?;
    let parent = reader.header(head)?.ok_or_else(|| {
        NodeError::Invariant(format!("head block {head} has no header in storage"))
    })?;
    let parent_hash = reader
        .canonical_hash(head)?
        .ok_or_else(|| NodeError::Invariant(format!("head block {head} has no canonical hash")))?;

    let next = NextBlock::new(
        chain,
        &parent,
        parent_hash,
        &BlockAttributes {
            timestamp: timestamp_s.max(parent.timestamp + 1),
            beneficiary,
            // Dev mode has no beacon chain: derive PREVRANDAO from the parent
            // so that re-executing the block reproduces it.
            prev_randao: keccak256(parent_hash),
            gas_limit: GasLimit::Parent,
            extra_data: Bytes::from_static(DEV_EXTRA_DATA),
            parent_beacon_block_root: B256::ZERO,
            withdrawals: Vec::new(),
        },
    );
    let number = next.header().number;
    let spec = next.spec();
    // The environment the importer derives from the finished header.
    let env = BlockEnvInput::from_header(next.header(), next.blob_base_fee_update_fraction());
    let cfg = ExecutionConfig {
        chain_id: chain.chain_id(),
        spec,
    };
    let candidates = pool.lock().best_transactions(env.base_fee_per_gas);
    timings.select = t.elapsed();

    let t = Instant::now();
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
    // The steps after the transactions, in the importer's order (no
    // withdrawals without a beacon chain, no ommers).
    let requests = executor.apply_post_block_requests(chain.deposit_contract())?;
    executor.apply_block_rewards(&[])?;
    let outcome = executor.finish();
    timings.execute = t.elapsed();

    let t = Instant::now();
    let mut writer = db.writer()?;
    writer.apply_state(number, &outcome.changes)?;
    timings.apply = t.elapsed();

    let t = Instant::now();
    let state_root = writer.state_root()?;
    timings.root = t.elapsed();

    let t = Instant::now();
    let envelopes: Vec<_> = included.iter().map(|tx| tx.tx.clone()).collect();
    let mut header = next.finish(BlockOutput {
        state_root,
        transactions: &envelopes,
        receipts: &outcome.receipts,
        requests: &requests,
    });
    seal(&mut header)?;
    let block = SealedBlock::new(header, included);
    writer.insert_block(&block, &outcome.receipts)?;
    timings.insert = t.elapsed();

    let t = Instant::now();
    writer.commit()?;
    drop(reader);
    timings.commit = t.elapsed();
    crate::metrics::record_commit_pages(db, "sealed", pages_before);

    let t = Instant::now();
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
    timings.pool = t.elapsed();
    infera_metrics::chain::sealed(
        &timings.phases(),
        timings.total(),
        block.transactions.len(),
        block.header.gas_used,
    );
    Ok((CommittedBlock { block, receipts }, timings))
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
