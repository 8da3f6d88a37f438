//! The node path: a fresh MDBX database with the benchmark genesis, a pool,
//! and blocks built and committed by the node's own builder.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_consensus::Header;
use eyre::{ContextCompat as _, Result, WrapErr as _};
use infera_chainspec::ChainSpec;
use infera_node::builder::BuildTimings;
use infera_primitives::{Address, RecoveredTx, SealedBlock, StateReader};
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

/// Where one block's time went: the builder's own phases
/// ([`BuildTimings`]) and what its write transaction wrote.
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
    /// Transaction and receipt roots, header, `insert_block` (the builder's `insert`).
    pub block: Duration,
    /// MDBX commit (durable: fsync of data and meta pages).
    pub commit: Duration,
    /// Pool update after the block (`on_new_block`).
    pub pool: Duration,
    /// Bytes this process sent to storage during the build (`write_bytes`
    /// of /proc/self/io; 0 where unavailable). The map is write-mapped, so
    /// the block's pages reach storage with its commit.
    pub commit_bytes: u64,
    /// Pages the block's write transaction allocated or copied (MDBX page
    /// ops `newly + cow`), in bytes: what a copy-on-write commit must write.
    pub dirty_bytes: u64,
}

impl Phases {
    fn from_timings(t: &BuildTimings) -> Self {
        Self {
            select: t.select,
            execute: t.execute,
            apply: t.apply,
            root: t.root,
            block: t.insert,
            commit: t.commit,
            pool: t.pool,
            commit_bytes: 0,
            dirty_bytes: 0,
        }
    }

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

    /// One block through the node's builder (`build_and_commit_timed`):
    /// its time as a whole, its phases, and what its write transaction wrote.
    pub fn build(&self, timestamp: u64) -> Result<(Arc<SealedBlock>, Duration, Phases)> {
        let pages_before = self.dirty_pages()?;
        let io_before = proc_write_bytes();
        let start = Instant::now();
        let (committed, timings) = infera_node::builder::build_and_commit_timed(
            &self.db,
            &self.chain,
            &self.pool,
            self.coinbase,
            timestamp,
            &self.models,
            &|_| Ok(()),
        )?;
        let time = start.elapsed();
        let mut phases = Phases::from_timings(&timings);
        phases.commit_bytes = proc_write_bytes().saturating_sub(io_before);
        let page = u64::from(self.db.env().stat()?.page_size());
        phases.dirty_bytes = self.dirty_pages()?.saturating_sub(pages_before) * page;
        Ok((committed.block, time, phases))
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

/// The same next block on two databases with the same pool contents, both
/// through the node's builder, checked to have the same hash; the time and
/// phases are `timed`'s. Which goes first alternates with the block number,
/// so neither always gets the warmer caches.
pub fn build_pair(
    timed: &Rig,
    twin: &Rig,
    timestamp: u64,
) -> Result<(Arc<SealedBlock>, Duration, Phases)> {
    let number = timed.head()?.number + 1;
    let ((block, time, phases), (twin_block, ..)) = if number % 2 == 0 {
        let a = timed.build(timestamp)?;
        (a, twin.build(timestamp)?)
    } else {
        let b = twin.build(timestamp)?;
        (timed.build(timestamp)?, b)
    };
    eyre::ensure!(
        block.hash == twin_block.hash,
        "block {number}: the two databases built different blocks ({} vs {})",
        block.hash,
        twin_block.hash
    );
    Ok((block, time, phases))
}
