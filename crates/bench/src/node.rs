//! The node path: a fresh MDBX database with the benchmark genesis, a pool,
//! and blocks built and committed by the node's own builder.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_consensus::{
    EMPTY_OMMER_ROOT_HASH, Header,
    proofs::{calculate_receipt_root, calculate_transaction_root},
};
use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use eyre::{ContextCompat as _, Result, WrapErr as _};
use infera_chainspec::{ChainSpec, SpecId};
use infera_evm::{BlockEnvInput, BlockExecutor, EvmError, ExecutionConfig, InvalidTransaction};
use infera_primitives::{
    Address, B256, Bytes, EMPTY_ROOT_HASH, RecoveredTx, SealedBlock, StateReader, keccak256,
};
use infera_storage::Database;
use infera_txpool::{PoolConfig, TxPool};
use parking_lot::Mutex;

/// One node: database in a temp dir, chain, pool.
pub struct Rig {
    pub db: Database,
    pub chain: Arc<ChainSpec>,
    pub pool: Arc<Mutex<TxPool>>,
    pub coinbase: Address,
    /// Decoded AI models, as the node shares them between blocks.
    pub models: Arc<infera_precompiles::ModelCache>,
    _dir: tempfile::TempDir,
}

/// Where one block's time went in the instrumented builder.
#[derive(Debug, Default, Clone, Copy)]
pub struct Phases {
    /// `pool.best_transactions`.
    pub select: Duration,
    /// EVM execution of every transaction (BlockExecutor), receipts included.
    pub execute: Duration,
    /// `apply_state`: plain, hashed and history tables, change set.
    pub apply: Duration,
    /// `state_root`: storage roots of touched accounts + account trie over all accounts.
    pub root: Duration,
    /// Transaction and receipt roots, header, `insert_block`.
    pub block: Duration,
    /// MDBX commit (durable: fsync of data and meta pages).
    pub commit: Duration,
    /// Pool update after the block (`on_new_block`).
    pub pool: Duration,
    /// Bytes this process sent to storage during the commit (`write_bytes`
    /// of /proc/self/io; 0 where unavailable).
    pub commit_bytes: u64,
    /// Pages the block's write transaction allocated or copied (MDBX page
    /// ops `newly + cow`), in bytes: what a copy-on-write commit must write.
    pub dirty_bytes: u64,
}

impl Phases {
    pub fn total(&self) -> Duration {
        self.select + self.execute + self.apply + self.root + self.block + self.commit + self.pool
    }

    /// State root + MDBX write: everything after execution.
    pub fn commit_side(&self) -> Duration {
        self.apply + self.root + self.block + self.commit
    }

    pub fn add(&mut self, other: &Phases) {
        self.select += other.select;
        self.execute += other.execute;
        self.apply += other.apply;
        self.root += other.root;
        self.block += other.block;
        self.commit += other.commit;
        self.pool += other.pool;
        self.commit_bytes += other.commit_bytes;
        self.dirty_bytes += other.dirty_bytes;
    }
}

impl Rig {
    /// A fresh database with the genesis of `chain` written by the node.
    pub fn new(chain: Arc<ChainSpec>, coinbase: Address) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("infera-bench-").tempdir()?;
        let db = Database::open(&dir.path().join("db"))?;
        infera_node::init_genesis(&db, &chain)?;
        let pool = TxPool::new(PoolConfig {
            global_slots: 1_000_000,
            account_slots: 100_000,
            ..PoolConfig::default()
        });
        Ok(Self {
            db,
            chain,
            pool: Arc::new(Mutex::new(pool)),
            coinbase,
            models: infera_precompiles::ModelCache::shared(),
            _dir: dir,
        })
    }

    pub fn head(&self) -> Result<Header> {
        let reader = self.db.reader()?;
        let head = reader.head_number()?.wrap_err("no head")?;
        reader.header(head)?.wrap_err("no head header")
    }

    /// Adds transactions to the pool as the RPC would (sender nonce and
    /// balance from the head state, next block's base fee). Not timed.
    pub fn add(&self, txs: &[RecoveredTx]) -> Result<()> {
        let base_fee = self.chain.next_base_fee(&self.head()?).unwrap_or(0);
        let reader = self.db.reader()?;
        let state = reader.latest_state();
        let mut pool = self.pool.lock();
        for tx in txs {
            let account = state.account(tx.sender)?.unwrap_or_default();
            pool.add(tx.clone(), account.nonce, account.balance, base_fee)
                .wrap_err_with(|| format!("pool rejected {}", tx.hash))?;
        }
        Ok(())
    }

    pub fn pool_len(&self) -> usize {
        self.pool.lock().len()
    }

    /// One block through the node's `build_and_commit`, timed as a whole.
    pub fn build(&self, timestamp: u64) -> Result<(Arc<SealedBlock>, Duration)> {
        let start = Instant::now();
        let committed = infera_node::builder::build_and_commit(
            &self.db,
            &self.chain,
            &self.pool,
            self.coinbase,
            timestamp,
            &self.models,
        )?;
        Ok((committed.block, start.elapsed()))
    }

    /// The same steps as `infera_node::builder::build_and_commit` (copied from
    /// crates/node/src/builder.rs, public APIs only), with a timer around
    /// each. The caller checks it yields the same block hash as the real one.
    pub fn build_instrumented(&self, timestamp_s: u64) -> Result<(Arc<SealedBlock>, Phases)> {
        let mut phases = Phases::default();
        let chain = &*self.chain;
        let t = Instant::now();
        let reader = self.db.reader()?;
        let head = reader.head_number()?.wrap_err("no head")?;
        let parent = reader.header(head)?.wrap_err("no head header")?;
        let parent_hash = reader.canonical_hash(head)?.wrap_err("no head hash")?;
        let number = head + 1;
        let timestamp = timestamp_s.max(parent.timestamp + 1);
        let spec = chain.spec_at(number, timestamp);
        let base_fee = chain.next_base_fee(&parent).unwrap_or(0);
        let gas_limit = parent.gas_limit;
        let prevrandao = keccak256(parent_hash);
        let env = BlockEnvInput {
            number,
            timestamp,
            beneficiary: self.coinbase,
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
        let candidates = self.pool.lock().best_transactions(base_fee);
        phases.select = t.elapsed();

        let t = Instant::now();
        let precompiles = infera_precompiles::InferaPrecompiles::new(spec, self.models.clone());
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
                    skipped_senders.push(tx.sender);
                }
                Err(EvmError::InvalidTransaction(_)) => {
                    invalid.push(tx.hash);
                    skipped_senders.push(tx.sender);
                }
                Err(err) => return Err(err.into()),
            }
        }
        let outcome = executor.finish();
        phases.execute = t.elapsed();

        let pages_before = self.dirty_pages()?;
        let t = Instant::now();
        let mut writer = self.db.writer()?;
        writer.apply_state(number, &outcome.changes)?;
        phases.apply = t.elapsed();

        let t = Instant::now();
        let state_root = writer.state_root()?;
        phases.root = t.elapsed();

        let t = Instant::now();
        let envelopes: Vec<_> = included.iter().map(|tx| tx.tx.clone()).collect();
        let header = Header {
            parent_hash,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: self.coinbase,
            state_root,
            transactions_root: calculate_transaction_root(&envelopes),
            receipts_root: calculate_receipt_root(&outcome.receipts),
            logs_bloom: outcome.logs_bloom,
            difficulty: Default::default(),
            number,
            gas_limit,
            gas_used: outcome.gas_used,
            timestamp,
            extra_data: Bytes::from_static(infera_node::builder::DEV_EXTRA_DATA),
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
        let block = SealedBlock::new(header, included);
        writer.insert_block(&block, &outcome.receipts)?;
        phases.block = t.elapsed();

        let io_before = proc_write_bytes();
        let t = Instant::now();
        writer.commit()?;
        drop(reader);
        phases.commit = t.elapsed();
        phases.commit_bytes = proc_write_bytes().saturating_sub(io_before);
        let page = u64::from(self.db.env().stat()?.page_size());
        phases.dirty_bytes = self.dirty_pages()?.saturating_sub(pages_before) * page;

        let t = Instant::now();
        {
            let reader = self.db.reader()?;
            let state = reader.latest_state();
            let mined: Vec<B256> = block.transactions.iter().map(|tx| tx.hash).collect();
            let mut pool = self.pool.lock();
            for hash in invalid {
                pool.remove_invalid(hash);
            }
            pool.on_new_block(&mined, |address| {
                state
                    .account(address)
                    .ok()
                    .flatten()
                    .map_or(0, |account| account.nonce)
            });
        }
        phases.pool = t.elapsed();
        Ok((Arc::new(block), phases))
    }

    /// MDBX's counter of pages allocated (`newly`) or copied for update (`cow`).
    fn dirty_pages(&self) -> Result<u64> {
        let ops = self.db.env().info()?.page_ops();
        Ok(ops.newly + ops.cow)
    }

    /// Pages in use (all tables, MDBX `env_stat`) and the high-water mark
    /// of the data file (`last_pgno`), in bytes.
    pub fn used_bytes(&self) -> Result<(u64, u64)> {
        let env = self.db.env();
        let stat = env.stat()?;
        let info = env.info()?;
        let page = u64::from(stat.page_size());
        let live = (stat.leaf_pages() + stat.branch_pages() + stat.overflow_pages()) as u64;
        Ok((live * page, (info.last_pgno() as u64 + 1) * page))
    }

    /// One state-root computation over the current state, without changes
    /// (the writer is dropped, nothing is written).
    pub fn time_state_root(&self) -> Result<Duration> {
        let mut writer = self.db.writer()?;
        let t = Instant::now();
        writer.state_root().wrap_err("state root")?;
        Ok(t.elapsed())
    }
}

/// `write_bytes` of /proc/self/io: bytes this process caused to be written
/// to storage (0 where the file does not exist).
fn proc_write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|line| line.strip_prefix("write_bytes:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn is_temporarily_unfit(err: &InvalidTransaction) -> bool {
    matches!(
        err,
        InvalidTransaction::NonceTooHigh { .. }
            | InvalidTransaction::GasLimitAboveBlockRemaining { .. }
            | InvalidTransaction::FeeCapBelowBaseFee { .. }
    )
}

/// The same next block on two databases with the same pool contents: through
/// `build_and_commit` on `plain` (its time) and through the instrumented copy
/// on `instrumented` (its phases), checked to have the same hash. Which goes
/// first alternates with the block number, so neither always gets the warmer
/// caches.
pub fn build_pair(
    plain: &Rig,
    instrumented: &Rig,
    timestamp: u64,
) -> Result<(Arc<SealedBlock>, Duration, Phases)> {
    let number = plain.head()?.number + 1;
    let ((block, time), (twin, phases)) = if number % 2 == 0 {
        let a = plain.build(timestamp)?;
        (a, instrumented.build_instrumented(timestamp)?)
    } else {
        let b = instrumented.build_instrumented(timestamp)?;
        (plain.build(timestamp)?, b)
    };
    eyre::ensure!(
        block.hash == twin.hash,
        "block {number}: build_and_commit and the instrumented copy disagree ({} vs {})",
        block.hash,
        twin.hash
    );
    Ok((block, time, phases))
}
