//! Transaction pool: pending by effective tip, queued nonce gaps, replacement, bounds.
//!
//! Per sender, transactions are kept by nonce. Those contiguous from the
//! sender's state nonce are *pending* (executable now), up to
//! [`PoolConfig::account_slots`] of them; the rest (after a gap, or beyond the
//! slots) are *queued* until the gap fills or blocks make room. The pool checks
//! only what depends on other pooled transactions (duplicates, replacement,
//! nonce gaps, bounds, cumulative cost); stateless and state checks are
//! `infera_evm::validate_transaction`'s, which [`TxAdmission`] runs first.
//!
//! # Bounds and who gives way
//!
//! The pool never holds more than `global_slots + global_queue` transactions,
//! of which at most `global_queue` are queued and, per sender, at most
//! `account_slots` pending and `account_queue` queued. Their encoded sizes
//! add up to at most [`PoolConfig::global_bytes`], and none is larger than
//! [`MAX_TX_BYTES`]: counts alone would let a full pool of large transactions
//! hold gigabytes. The byte bound gives way by the same rules as the counts
//! (a large newcomer may need several transactions to go; when it cannot have
//! them all, nothing goes). When a bound is hit:
//!
//! - A transaction that extends its sender's contiguous run (the next
//!   executable nonce: it fills a gap or follows the pending ones) is never
//!   refused because of queued transactions: the worst queued transaction
//!   goes instead (its own sender's highest nonce, or that of the sender with
//!   the most queued). Only when nothing is queued may it take the place of
//!   another sender's last pending transaction, and only by outbidding that
//!   transaction's effective tip by the replacement price bump: pending
//!   transactions cannot be pushed out for free.
//! - A queued transaction only ever displaces queued ones: its sender's own
//!   higher nonces, or the highest nonce of the sender with the most queued.
//! - Queued transactions of a sender with no activity (nothing added, nothing
//!   mined) for [`PoolConfig::lifetime`] expire, so a sender whose gap never
//!   fills does not hold the room for good.

mod admission;
mod room;

pub use admission::{AdmissionFault, STANDALONE_EVENT_CAPACITY, TxAdmission, TxAdmissionError};
use room::Newcomer;

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BinaryHeap, HashMap},
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering as AtomicOrdering},
    },
    time::{Duration, Instant},
};

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, B256, U256};
use infera_primitives::RecoveredTx;

/// Default number of pending (executable) transactions one sender may have
/// (geth: `--txpool.accountslots`, 16 there; larger here so that deployment
/// scripts of a few hundred transactions go through in one go, as on anvil).
pub const DEFAULT_ACCOUNT_SLOTS: usize = 256;
/// Default pool room for pending transactions (geth: `--txpool.globalslots`).
pub const DEFAULT_GLOBAL_SLOTS: usize = 8_192;
/// Default number of queued (not yet executable) transactions one sender may
/// have (geth: `--txpool.accountqueue`, 64 there; here enough for a few
/// hundred transactions sent concurrently, so arriving out of nonce order).
pub const DEFAULT_ACCOUNT_QUEUE: usize = 256;
/// Default number of queued transactions in the whole pool (geth: `--txpool.globalqueue`).
pub const DEFAULT_GLOBAL_QUEUE: usize = 4_096;
/// Default time a sender's queued transactions survive without activity, in
/// seconds (geth: `--txpool.lifetime`, 3 hours).
pub const DEFAULT_LIFETIME_SECS: u64 = 3 * 60 * 60;
/// Default fee increase a replacement must offer, in percent.
pub const DEFAULT_PRICE_BUMP_PERCENT: u128 = 10;
/// Largest encoded (EIP-2718) transaction the pool admits, in bytes.
///
/// geth's `txMaxSize` is 128 KiB (4 slots of 32 KiB); this is 5 slots,
/// because 128 KiB is too small for this chain's own largest transaction, a
/// one-transaction `register(model)`: `infera model upload` sends one when it
/// needs at most 90% of the EIP-7825 gas cap of 2^24, which at 100 gas per
/// model byte plus calldata is up to ~143,500 model bytes when most bytes are
/// zero (4 gas each), and the whole cap pays for ~159,600 (plus 68 bytes of
/// ABI and ~110 of envelope). `uploadChunk` transactions carry at most
/// ~101,500 model bytes (`infera_precompiles::gas::largest_chunk`) and
/// contract creations at most 49,152 bytes of init code (EIP-3860).
pub const MAX_TX_BYTES: usize = 160 * 1024;
/// Default bound on the encoded size of all pooled transactions together, in
/// bytes (geth has none: it bounds 32 KiB slots instead, ~160 MiB by default).
/// Room for ~400 transactions of [`MAX_TX_BYTES`], or the counts' 12,288 of
/// up to ~5 KiB each.
pub const DEFAULT_GLOBAL_BYTES: usize = 64 * 1024 * 1024;

/// Errors of the pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The transaction is already in the pool.
    #[error("already known: {0}")]
    AlreadyKnown(B256),
    /// The nonce is below the sender's account nonce.
    #[error("nonce too low: tx {tx}, state {state}")]
    NonceTooLow {
        /// Nonce of the transaction.
        tx: u64,
        /// Nonce of the sender account.
        state: u64,
    },
    /// A transaction with the same sender and nonce is in the pool and the new
    /// one does not raise both max fee and tip by the price bump.
    #[error(
        "replacement transaction underpriced: needs max fee >= {min_max_fee} and tip >= {min_tip}"
    )]
    ReplacementUnderpriced {
        /// Least acceptable max fee per gas.
        min_max_fee: u128,
        /// Least acceptable max priority fee per gas.
        min_tip: u128,
    },
    /// The pool is full and the transaction may not displace any other.
    #[error("txpool is full")]
    PoolFull,
    /// The transaction's encoding is larger than any pooled transaction may be.
    #[error(
        "oversized data: transaction of {size} bytes exceeds the pool's limit of {limit} bytes"
    )]
    OversizedData {
        /// Encoded (EIP-2718) size of the transaction.
        size: usize,
        /// [`MAX_TX_BYTES`].
        limit: usize,
    },
    /// The sender already has the most queued (not yet executable)
    /// transactions one sender may have, none with a higher nonce than this one.
    #[error(
        "sender {sender} has too many queued transactions in the pool (limit {limit}); \
         send the missing nonce {next_nonce} first"
    )]
    SenderLimit {
        /// The sender.
        sender: Address,
        /// The per-sender bound on queued transactions.
        limit: usize,
        /// The nonce that would make the sender's queued transactions executable.
        next_nonce: u64,
    },
    /// The sender cannot pay for this transaction together with its earlier pooled ones.
    #[error("insufficient funds for gas * price + value: balance {balance}, cost {cost}")]
    InsufficientFunds {
        /// The sender's balance.
        balance: U256,
        /// Cost of this transaction plus the sender's pooled ones before it.
        cost: U256,
    },
}

/// Result alias of `infera-txpool`.
pub type Result<T, E = PoolError> = std::result::Result<T, E>;

/// Pool bounds and rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most pending (executable) transactions of one sender; its contiguous
    /// transactions beyond these wait as queued ones.
    pub account_slots: usize,
    /// Pool room that queued transactions never take: the pool holds at most
    /// `global_slots + global_queue` transactions.
    pub global_slots: usize,
    /// Most queued transactions of one sender.
    pub account_queue: usize,
    /// Most queued transactions in the pool.
    pub global_queue: usize,
    /// Most bytes (transactions' EIP-2718 encodings) in the pool, pending and
    /// queued together.
    pub global_bytes: usize,
    /// How long a sender's queued transactions survive without activity
    /// (nothing added, nothing mined).
    pub lifetime: Duration,
    /// Fee increase (of both max fee and tip) a replacement needs, in percent;
    /// also what a transaction must outbid to displace another's pending one.
    pub price_bump_percent: u128,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            account_slots: DEFAULT_ACCOUNT_SLOTS,
            global_slots: DEFAULT_GLOBAL_SLOTS,
            account_queue: DEFAULT_ACCOUNT_QUEUE,
            global_queue: DEFAULT_GLOBAL_QUEUE,
            global_bytes: DEFAULT_GLOBAL_BYTES,
            lifetime: Duration::from_secs(DEFAULT_LIFETIME_SECS),
            price_bump_percent: DEFAULT_PRICE_BUMP_PERCENT,
        }
    }
}

impl PoolConfig {
    /// Most transactions the pool holds.
    pub fn capacity(&self) -> usize {
        self.global_slots.saturating_add(self.global_queue)
    }

    /// Checks that the bounds can work: every limit at least 1 (a zero would
    /// refuse every transaction), room in bytes for one transaction of the
    /// largest size, and a non-zero lifetime.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, value) in [
            ("account slots (--txpool.accountslots)", self.account_slots),
            ("global slots (--txpool.globalslots)", self.global_slots),
            ("account queue (--txpool.accountqueue)", self.account_queue),
            ("global queue (--txpool.globalqueue)", self.global_queue),
        ] {
            if value == 0 {
                return Err(format!("txpool {name} must be at least 1"));
            }
        }
        if self.global_bytes < MAX_TX_BYTES {
            return Err(format!(
                "txpool global bytes (--txpool.globalbytes) of {} must be at least {MAX_TX_BYTES}, \
                 the largest transaction the pool admits",
                self.global_bytes
            ));
        }
        if self.lifetime.is_zero() {
            return Err("txpool lifetime (--txpool.lifetime) must be longer than zero".into());
        }
        Ok(())
    }
}

/// Parses a size in bytes: a plain number (`67108864`) or one with a binary
/// unit (`64MiB`, `512KiB`, `1GiB`; also `B`).
pub fn parse_byte_size(text: &str) -> std::result::Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let expected = "expected bytes, or a number with KiB, MiB or GiB (e.g. 64MiB)";
    if digits.is_empty() {
        return Err(format!("invalid size {text:?}: {expected}"));
    }
    let multiplier: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "invalid size {text:?}: unknown unit {other:?}; {expected}"
            ));
        }
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|value| value.checked_mul(multiplier))
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// Parses a lifetime in geth's notation (`3h0m0s`, `90m`, `45s`, `1h30m`) or
/// as plain seconds (`10800`).
pub fn parse_lifetime(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration; expected e.g. 3h, 90m, 1h30m or seconds".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => {
                return Err(format!(
                    "invalid duration {text:?}: unexpected {c:?}; expected e.g. 3h, 90m, 1h30m or seconds"
                ));
            }
        };
        let value: u64 = digits.parse().map_err(|_| {
            format!("invalid duration {text:?}: unit {c:?} without a number before it")
        })?;
        digits.clear();
        total = value
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
    }
    if !digits.is_empty() {
        return Err(format!(
            "invalid duration {text:?}: number {digits} without a unit (h, m or s)"
        ));
    }
    Ok(Duration::from_secs(total))
}

/// Where the pool reads the time (queued transactions' expiry), so that tests
/// can move it without sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The system's monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to (tests). Clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    start: Instant,
    elapsed_ms: Arc<AtomicU64>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock standing at the current instant.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            elapsed_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.elapsed_ms.fetch_add(ms, AtomicOrdering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + Duration::from_millis(self.elapsed_ms.load(AtomicOrdering::SeqCst))
    }
}

/// Where an added transaction went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// Executable now: contiguous from the sender's nonce.
    Pending,
    /// Waiting for a nonce gap to fill (or for room among the sender's slots).
    Queued,
}

/// What [`TxPool::add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOutcome {
    /// Hash of the added transaction.
    pub hash: B256,
    /// Where it went.
    pub status: TxStatus,
    /// The transaction it replaced (same sender and nonce), if any.
    pub replaced: Option<B256>,
    /// Queued transactions of the same sender that became pending.
    pub promoted: Vec<B256>,
    /// Transactions that left the pool meanwhile: evicted to make room,
    /// expired, or below the sender's nonce.
    pub evicted: Vec<B256>,
}

#[derive(Debug, Clone)]
struct PoolTx {
    tx: RecoveredTx,
    max_fee: u128,
    tip: u128,
    cost: U256,
    /// EIP-2718 encoded size, what the byte bound counts.
    size: usize,
    /// Arrival order, to break ties.
    seq: u64,
}

impl PoolTx {
    /// min(tip, max_fee - base_fee); `None` when the max fee is below the base fee.
    fn effective_tip(&self, base_fee: u64) -> Option<u128> {
        let room = self.max_fee.checked_sub(u128::from(base_fee))?;
        Some(self.tip.min(room))
    }
}

#[derive(Debug)]
struct SenderTxs {
    state_nonce: u64,
    txs: BTreeMap<u64, PoolTx>,
    /// Number of transactions contiguous from `state_nonce`.
    run: usize,
    /// `run` capped at the account slots: the executable ones.
    pending: usize,
    /// Last time a transaction of this sender was added or mined; its queued
    /// transactions expire a lifetime after it.
    last_active: Instant,
}

impl SenderTxs {
    fn new(state_nonce: u64, now: Instant) -> Self {
        Self {
            state_nonce,
            txs: BTreeMap::new(),
            run: 0,
            pending: 0,
            last_active: now,
        }
    }

    fn recount(&mut self, account_slots: usize) {
        self.run = (self.state_nonce..)
            .zip(self.txs.range(self.state_nonce..).map(|(nonce, _)| *nonce))
            .take_while(|(expected, nonce)| expected == nonce)
            .count();
        self.pending = self.run.min(account_slots);
    }

    fn queued(&self) -> usize {
        self.txs.len() - self.pending
    }

    fn is_pending(&self, nonce: u64) -> bool {
        nonce >= self.state_nonce && nonce - self.state_nonce < self.pending as u64
    }

    /// The nonce that extends the contiguous run.
    fn next_nonce(&self) -> u64 {
        self.state_nonce + self.run as u64
    }

    fn pending_txs(&self) -> impl Iterator<Item = &PoolTx> {
        self.txs
            .range(self.state_nonce..)
            .take(self.pending)
            .map(|(_, tx)| tx)
    }

    /// The highest queued nonce; queued transactions always sit above the
    /// pending ones, so it is the highest nonce whenever any is queued.
    fn highest_queued(&self) -> Option<u64> {
        if self.queued() == 0 {
            return None;
        }
        self.txs.keys().next_back().copied()
    }

    /// Drop transactions below the state nonce; returns them.
    fn drop_stale(&mut self) -> Vec<PoolTx> {
        let keep = self.txs.split_off(&self.state_nonce);
        let stale = std::mem::replace(&mut self.txs, keep);
        stale.into_values().collect()
    }
}

/// A transaction evicted to make room, with what puts it back if the
/// newcomer is refused after all.
#[derive(Debug)]
struct Taken {
    sender: Address,
    tx: PoolTx,
    /// The sender's state when the transaction went, in case it was the last.
    state_nonce: u64,
    last_active: Instant,
}

/// The transaction pool. Not thread-safe by itself: wrap it in a lock.
#[derive(Debug)]
pub struct TxPool {
    config: PoolConfig,
    clock: Arc<dyn Clock>,
    by_hash: HashMap<B256, (Address, u64)>,
    senders: HashMap<Address, SenderTxs>,
    /// Sum of the senders' `pending`.
    pending_total: usize,
    /// Sum of the pooled transactions' `size`.
    bytes_total: usize,
    next_seq: u64,
    /// No queued transaction expires before this instant (a lower bound:
    /// reaching it triggers a scan, which sets it again). `None`: nothing queued.
    next_expiry: Option<Instant>,
}

impl Default for TxPool {
    fn default() -> Self {
        Self::new(PoolConfig::default())
    }
}

fn cost_of(tx: &RecoveredTx) -> U256 {
    U256::from(tx.tx.gas_limit())
        .saturating_mul(U256::from(tx.tx.max_fee_per_gas()))
        .saturating_add(tx.tx.value())
}

fn bumped(value: u128, percent: u128) -> u128 {
    value.saturating_mul(100 + percent).div_ceil(100)
}

/// The transaction a newcomer would replace (same sender and nonce): what
/// the replacement rules compare, and whether it is pending.
#[derive(Debug, Clone, Copy)]
struct Occupant {
    pending: bool,
    max_fee: u128,
    tip: u128,
    size: usize,
}

impl TxPool {
    /// An empty pool on the system clock.
    pub fn new(config: PoolConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// An empty pool reading the time from `clock`.
    pub fn with_clock(config: PoolConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            clock,
            by_hash: HashMap::new(),
            senders: HashMap::new(),
            pending_total: 0,
            bytes_total: 0,
            next_seq: 0,
            next_expiry: None,
        }
    }

    /// The pool's rules.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Recounts a sender after its transactions or nonce changed, keeping the
    /// pool's totals, and forgets it once it has nothing left.
    fn refresh(&mut self, sender: Address) {
        let Some(entry) = self.senders.get_mut(&sender) else {
            return;
        };
        self.pending_total -= entry.pending;
        entry.recount(self.config.account_slots);
        self.pending_total += entry.pending;
        if entry.txs.is_empty() {
            self.senders.remove(&sender);
        }
    }

    /// Removes one transaction (no cascade: for queued ones and pending tails).
    fn remove_one(&mut self, sender: Address, nonce: u64) -> Option<B256> {
        self.take_one(sender, nonce).map(|taken| taken.tx.tx.hash)
    }

    /// Removes one transaction and returns what [`TxPool::put_back`] needs.
    fn take_one(&mut self, sender: Address, nonce: u64) -> Option<Taken> {
        let entry = self.senders.get_mut(&sender)?;
        let (state_nonce, last_active) = (entry.state_nonce, entry.last_active);
        let tx = entry.txs.remove(&nonce)?;
        self.by_hash.remove(&tx.tx.hash);
        self.bytes_total -= tx.size;
        self.refresh(sender);
        Some(Taken {
            sender,
            tx,
            state_nonce,
            last_active,
        })
    }

    /// Undoes [`TxPool::take_one`]s, latest first, leaving the pool as before them.
    fn put_back(&mut self, taken: Vec<Taken>) {
        for Taken {
            sender,
            tx,
            state_nonce,
            last_active,
        } in taken.into_iter().rev()
        {
            let entry = self
                .senders
                .entry(sender)
                .or_insert_with(|| SenderTxs::new(state_nonce, last_active));
            self.by_hash.insert(tx.tx.hash, (sender, tx.tx.tx.nonce()));
            self.bytes_total += tx.size;
            entry.txs.insert(tx.tx.tx.nonce(), tx);
            // `refresh` subtracts the sender's old pending count; a sender
            // created just now has none.
            self.refresh(sender);
        }
    }

    /// Add a validated transaction. `state_nonce` and `sender_balance` are the
    /// sender's account at the head; `base_fee` that of the next block.
    ///
    /// A `state_nonce` below what the pool already knows of the sender (a
    /// snapshot taken before the latest block) is ignored in favour of the
    /// pool's: only [`TxPool::on_new_block`] moves a sender's nonce back (reorgs).
    ///
    /// The checks run in a fixed order and the first failure is the one
    /// reported; expiry and dropping the sender's stale transactions happen
    /// even when a later check refuses the transaction.
    pub fn add(
        &mut self,
        tx: RecoveredTx,
        state_nonce: u64,
        sender_balance: U256,
        base_fee: u64,
    ) -> Result<AddOutcome> {
        let size = tx.tx.eip2718_encoded_length();
        if size > MAX_TX_BYTES {
            return Err(PoolError::OversizedData {
                size,
                limit: MAX_TX_BYTES,
            });
        }
        let now = self.clock.now();
        let mut evicted = self.expire(now);
        if self.by_hash.contains_key(&tx.hash) {
            return Err(PoolError::AlreadyKnown(tx.hash));
        }
        let sender = tx.sender;
        let nonce = tx.tx.nonce();
        let state_nonce = self
            .senders
            .get(&sender)
            .map_or(state_nonce, |entry| entry.state_nonce.max(state_nonce));
        if nonce < state_nonce {
            return Err(PoolError::NonceTooLow {
                tx: nonce,
                state: state_nonce,
            });
        }
        let new = self.pool_tx(tx, size);
        evicted.extend(self.catch_up_state_nonce(sender, state_nonce));
        self.check_funds(&new, state_nonce, sender_balance)?;
        if let Some(old) = self.slot_taken(sender, nonce) {
            return self.replace(new, old, now, base_fee, evicted);
        }
        self.add_new(new, state_nonce, now, base_fee, evicted)
    }

    /// The pooled form of a transaction, with its fees, cost and arrival order.
    fn pool_tx(&self, tx: RecoveredTx, size: usize) -> PoolTx {
        PoolTx {
            max_fee: tx.tx.max_fee_per_gas(),
            tip: tx
                .tx
                .max_priority_fee_per_gas()
                .unwrap_or_else(|| tx.tx.max_fee_per_gas()),
            cost: cost_of(&tx),
            size,
            seq: self.next_seq,
            tx,
        }
    }

    /// Brings the sender's view up to date with the caller's (newer) state
    /// nonce: its transactions below it were mined and go. Returns their hashes.
    fn catch_up_state_nonce(&mut self, sender: Address, state_nonce: u64) -> Vec<B256> {
        let mut dropped = Vec::new();
        if let Some(entry) = self.senders.get_mut(&sender)
            && entry.state_nonce < state_nonce
        {
            entry.state_nonce = state_nonce;
            for stale in entry.drop_stale() {
                self.by_hash.remove(&stale.tx.hash);
                self.bytes_total -= stale.size;
                dropped.push(stale.tx.hash);
            }
            self.refresh(sender);
        }
        dropped
    }

    /// The sender must afford the newcomer together with its pooled
    /// transactions of lower nonces, which run before it; those above it (and
    /// the one it would replace) do not count.
    fn check_funds(&self, new: &PoolTx, state_nonce: u64, sender_balance: U256) -> Result<()> {
        let nonce = new.tx.tx.nonce();
        let earlier_cost = self
            .senders
            .get(&new.tx.sender)
            .map_or(U256::ZERO, |entry| {
                entry
                    .txs
                    .range(state_nonce..nonce)
                    .fold(U256::ZERO, |sum, (_, tx)| sum.saturating_add(tx.cost))
            });
        let cost = earlier_cost.saturating_add(new.cost);
        if cost > sender_balance {
            return Err(PoolError::InsufficientFunds {
                balance: sender_balance,
                cost,
            });
        }
        Ok(())
    }

    /// The pooled transaction with the same sender and nonce, if any.
    fn slot_taken(&self, sender: Address, nonce: u64) -> Option<Occupant> {
        let entry = self.senders.get(&sender)?;
        let old = entry.txs.get(&nonce)?;
        Some(Occupant {
            pending: entry.is_pending(nonce),
            max_fee: old.max_fee,
            tip: old.tip,
            size: old.size,
        })
    }

    /// Replaces `old` by `new` (same sender and nonce) when `new` raises both
    /// max fee and tip by the price bump and, being perhaps larger, finds room
    /// in bytes. The sender's counts do not change.
    fn replace(
        &mut self,
        new: PoolTx,
        old: Occupant,
        now: Instant,
        base_fee: u64,
        mut evicted: Vec<B256>,
    ) -> Result<AddOutcome> {
        let min_max_fee = bumped(old.max_fee, self.config.price_bump_percent);
        let min_tip = bumped(old.tip, self.config.price_bump_percent);
        if new.max_fee < min_max_fee || new.tip < min_tip {
            return Err(PoolError::ReplacementUnderpriced {
                min_max_fee,
                min_tip,
            });
        }
        let (hash, sender, nonce, size) = (new.tx.hash, new.tx.sender, new.tx.tx.nonce(), new.size);
        let kind = if old.pending {
            Newcomer::Executable
        } else {
            Newcomer::Queued
        };
        evicted.extend(self.make_room(sender, nonce, kind, &new, base_fee, Some(old.size))?);
        let entry = self
            .senders
            .get_mut(&sender)
            .expect("sender has the replaced tx");
        let status = if entry.is_pending(nonce) {
            TxStatus::Pending
        } else {
            TxStatus::Queued
        };
        entry.last_active = now;
        let old = entry.txs.insert(nonce, new).expect("replaced tx present");
        self.by_hash.remove(&old.tx.hash);
        self.by_hash.insert(hash, (sender, nonce));
        self.bytes_total = self.bytes_total - old.size + size;
        self.next_seq += 1;
        Ok(AddOutcome {
            hash,
            status,
            replaced: Some(old.tx.hash),
            promoted: Vec::new(),
            evicted,
        })
    }

    /// Adds a transaction at a free nonce: it competes for room as executable
    /// only when it extends its sender's run within the account slots.
    fn add_new(
        &mut self,
        new: PoolTx,
        state_nonce: u64,
        now: Instant,
        base_fee: u64,
        mut evicted: Vec<B256>,
    ) -> Result<AddOutcome> {
        let (sender, nonce) = (new.tx.sender, new.tx.tx.nonce());
        let (run, pending) = self
            .senders
            .get(&sender)
            .map_or((0, 0), |entry| (entry.run, entry.pending));
        let extends_run = nonce == state_nonce + run as u64;
        let newcomer = if extends_run && pending < self.config.account_slots {
            Newcomer::Executable
        } else {
            Newcomer::Queued
        };
        evicted.extend(self.make_room(sender, nonce, newcomer, &new, base_fee, None)?);
        let (hash, status, promoted) = self.insert(new, state_nonce, now);
        Ok(AddOutcome {
            hash,
            status,
            replaced: None,
            promoted,
            evicted,
        })
    }

    /// Inserts a transaction for which room was made, keeping the totals and
    /// the next expiry. Returns its hash, where it went, and its sender's
    /// queued transactions it made pending.
    fn insert(
        &mut self,
        new: PoolTx,
        state_nonce: u64,
        now: Instant,
    ) -> (B256, TxStatus, Vec<B256>) {
        let (hash, sender, nonce, size) = (new.tx.hash, new.tx.sender, new.tx.tx.nonce(), new.size);
        let account_slots = self.config.account_slots;
        let entry = self
            .senders
            .entry(sender)
            .or_insert_with(|| SenderTxs::new(state_nonce, now));
        let pending_before = entry.pending;
        entry.last_active = now;
        entry.txs.insert(nonce, new);
        self.pending_total -= entry.pending;
        entry.recount(account_slots);
        self.pending_total += entry.pending;
        self.by_hash.insert(hash, (sender, nonce));
        self.bytes_total += size;
        self.next_seq += 1;
        let status = if entry.is_pending(nonce) {
            TxStatus::Pending
        } else {
            TxStatus::Queued
        };
        let promoted = if status == TxStatus::Pending {
            entry
                .pending_txs()
                .skip(pending_before)
                .map(|tx| tx.tx.hash)
                .filter(|h| *h != hash)
                .collect()
        } else {
            Vec::new()
        };
        if entry.queued() > 0 {
            let deadline = now + self.config.lifetime;
            self.next_expiry = Some(self.next_expiry.map_or(deadline, |at| at.min(deadline)));
        }
        (hash, status, promoted)
    }

    /// Drops the queued transactions of senders idle for a lifetime; returns
    /// their hashes. Runs on every [`TxPool::add`] and
    /// [`TxPool::on_new_block`]; call it on a timer to free memory of an idle pool.
    pub fn evict_expired(&mut self) -> Vec<B256> {
        let now = self.clock.now();
        self.expire(now)
    }

    fn expire(&mut self, now: Instant) -> Vec<B256> {
        if self.next_expiry.is_none_or(|at| now < at) {
            return Vec::new();
        }
        let lifetime = self.config.lifetime;
        let expired_senders: Vec<Address> = self
            .senders
            .iter()
            .filter(|(_, entry)| entry.queued() > 0 && entry.last_active + lifetime <= now)
            .map(|(address, _)| *address)
            .collect();
        let mut expired = Vec::new();
        for sender in expired_senders {
            let entry = self.senders.get_mut(&sender).expect("listed above");
            let first_queued = entry.state_nonce + entry.pending as u64;
            let queued = entry.txs.split_off(&first_queued);
            for tx in queued.into_values() {
                self.by_hash.remove(&tx.tx.hash);
                self.bytes_total -= tx.size;
                expired.push(tx.tx.hash);
            }
            self.refresh(sender);
        }
        self.next_expiry = self
            .senders
            .values()
            .filter(|entry| entry.queued() > 0)
            .map(|entry| entry.last_active + lifetime)
            .min();
        expired
    }

    /// Pending transactions in the order a block should include them: by
    /// effective tip (`min(tip, max_fee - base_fee)`) across senders, each
    /// sender's in nonce order. A transaction whose max fee is below `base_fee`
    /// is skipped, together with its sender's later ones.
    pub fn best_transactions(&self, base_fee: u64) -> Vec<RecoveredTx> {
        struct Head<'a> {
            tip: u128,
            seq: u64,
            sender: &'a SenderTxs,
            index: usize,
        }
        impl Ord for Head<'_> {
            fn cmp(&self, other: &Self) -> Ordering {
                // Highest tip first; then earliest arrival.
                self.tip
                    .cmp(&other.tip)
                    .then_with(|| other.seq.cmp(&self.seq))
            }
        }
        impl PartialOrd for Head<'_> {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl PartialEq for Head<'_> {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == Ordering::Equal
            }
        }
        impl Eq for Head<'_> {}

        let head = |sender: &SenderTxs, index: usize| -> Option<(u128, u64)> {
            let tx = sender.pending_txs().nth(index)?;
            Some((tx.effective_tip(base_fee)?, tx.seq))
        };
        let mut heap: BinaryHeap<Head<'_>> = self
            .senders
            .values()
            .filter_map(|sender| {
                let (tip, seq) = head(sender, 0)?;
                Some(Head {
                    tip,
                    seq,
                    sender,
                    index: 0,
                })
            })
            .collect();
        let mut out = Vec::with_capacity(self.pending_count());
        while let Some(Head { sender, index, .. }) = heap.pop() {
            let tx = sender.pending_txs().nth(index).expect("head exists");
            out.push(tx.tx.clone());
            if let Some((tip, seq)) = head(sender, index + 1) {
                heap.push(Head {
                    tip,
                    seq,
                    sender,
                    index: index + 1,
                });
            }
        }
        out
    }

    /// A block was added: drop the mined transactions and every transaction
    /// whose nonce is now below its sender's (`nonce_of`), promote queued
    /// ones that became contiguous, and expire idle senders' queued ones.
    /// Returns the removed hashes.
    pub fn on_new_block(&mut self, mined: &[B256], nonce_of: impl Fn(Address) -> u64) -> Vec<B256> {
        let now = self.clock.now();
        let mut removed = Vec::new();
        for hash in mined {
            if let Some((sender, nonce)) = self.by_hash.remove(hash) {
                if let Some(tx) = self
                    .senders
                    .get_mut(&sender)
                    .and_then(|entry| entry.txs.remove(&nonce))
                {
                    self.bytes_total -= tx.size;
                }
                removed.push(*hash);
            }
        }
        let account_slots = self.config.account_slots;
        let by_hash = &mut self.by_hash;
        let bytes_total = &mut self.bytes_total;
        let mut pending_total = 0;
        self.senders.retain(|address, entry| {
            let nonce = nonce_of(*address);
            if nonce > entry.state_nonce {
                // Progress: the sender is alive, its queued ones may still fill in.
                entry.last_active = now;
            }
            entry.state_nonce = nonce;
            for stale in entry.drop_stale() {
                by_hash.remove(&stale.tx.hash);
                *bytes_total -= stale.size;
                removed.push(stale.tx.hash);
            }
            entry.recount(account_slots);
            pending_total += entry.pending;
            !entry.txs.is_empty()
        });
        self.pending_total = pending_total;
        // A reorg can move nonces back and turn pending transactions into
        // queued ones beyond the queue's bounds.
        removed.extend(self.enforce_queue_bounds());
        self.next_expiry = Some(now);
        removed.extend(self.expire(now));
        removed
    }

    /// Evicts queued transactions until every queue bound holds again.
    fn enforce_queue_bounds(&mut self) -> Vec<B256> {
        let mut evicted = Vec::new();
        let over: Vec<Address> = self
            .senders
            .iter()
            .filter(|(_, entry)| entry.queued() > self.config.account_queue)
            .map(|(address, _)| *address)
            .collect();
        for sender in over {
            while let Some(entry) = self.senders.get(&sender)
                && entry.queued() > self.config.account_queue
                && let Some(highest) = entry.highest_queued()
            {
                evicted.extend(self.remove_one(sender, highest));
            }
        }
        while self.queued_count() > self.config.global_queue
            && let Some((sender, nonce)) = self.worst_queued(None)
        {
            evicted.extend(self.remove_one(sender, nonce));
        }
        evicted
    }

    /// Remove a transaction found invalid, and its sender's later ones (they
    /// depend on it). Returns the removed hashes.
    pub fn remove_invalid(&mut self, hash: B256) -> Vec<B256> {
        let Some(&(sender, nonce)) = self.by_hash.get(&hash) else {
            return Vec::new();
        };
        let Some(entry) = self.senders.get_mut(&sender) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for tx in entry.txs.split_off(&nonce).into_values() {
            self.by_hash.remove(&tx.tx.hash);
            self.bytes_total -= tx.size;
            removed.push(tx.tx.hash);
        }
        self.refresh(sender);
        removed
    }

    /// The pooled transaction with this hash.
    pub fn get(&self, hash: &B256) -> Option<&RecoveredTx> {
        let (sender, nonce) = self.by_hash.get(hash)?;
        self.senders.get(sender)?.txs.get(nonce).map(|tx| &tx.tx)
    }

    /// True when the transaction is in the pool.
    pub fn contains(&self, hash: &B256) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// The nonce after the sender's contiguous run of pooled transactions
    /// (pending, and those waiting only for a free slot); `None` when it has
    /// no transaction at its state nonce.
    pub fn pending_nonce(&self, sender: Address) -> Option<u64> {
        let entry = self.senders.get(&sender)?;
        (entry.run > 0).then(|| entry.next_nonce())
    }

    /// Number of pending transactions.
    pub fn pending_count(&self) -> usize {
        self.pending_total
    }

    /// Number of queued transactions.
    pub fn queued_count(&self) -> usize {
        self.by_hash.len() - self.pending_total
    }

    /// Encoded size of all pooled transactions, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes_total
    }

    /// Number of transactions in the pool.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// True when the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// All pending transactions, each sender's in nonce order.
    pub fn all_pending(&self) -> Vec<RecoveredTx> {
        self.senders
            .values()
            .flat_map(|entry| entry.pending_txs().map(|tx| tx.tx.clone()))
            .collect()
    }

    /// All queued transactions, each sender's in nonce order.
    pub fn all_queued(&self) -> Vec<RecoveredTx> {
        self.senders
            .values()
            .flat_map(|entry| {
                entry
                    .txs
                    .values()
                    .filter(|tx| !entry.is_pending(tx.tx.tx.nonce()))
                    .map(|tx| tx.tx.clone())
            })
            .collect()
    }

    /// Panics when an internal count or bound is off (tests).
    #[cfg(test)]
    fn check_invariants(&self) {
        let mut pending = 0;
        let mut count = 0;
        let mut bytes = 0;
        for (address, entry) in &self.senders {
            assert!(!entry.txs.is_empty(), "empty sender {address} kept");
            let (run, cached) = (entry.run, entry.pending);
            let mut copy = SenderTxs::new(entry.state_nonce, entry.last_active);
            copy.txs = entry.txs.clone();
            copy.recount(self.config.account_slots);
            assert_eq!(
                (copy.run, copy.pending),
                (run, cached),
                "stale counts of {address}"
            );
            assert!(entry.pending <= self.config.account_slots);
            assert!(
                entry.queued() <= self.config.account_queue,
                "{address} has {} queued",
                entry.queued()
            );
            assert!(entry.txs.keys().all(|nonce| *nonce >= entry.state_nonce));
            for (nonce, tx) in &entry.txs {
                assert_eq!(self.by_hash.get(&tx.tx.hash), Some(&(*address, *nonce)));
                assert_eq!(tx.size, tx.tx.tx.eip2718_encoded_length());
                assert!(tx.size <= MAX_TX_BYTES);
                bytes += tx.size;
            }
            pending += entry.pending;
            count += entry.txs.len();
        }
        assert_eq!(pending, self.pending_total, "pending total");
        assert_eq!(count, self.by_hash.len(), "index size");
        assert_eq!(bytes, self.bytes_total, "byte total");
        assert!(
            self.bytes_total <= self.config.global_bytes,
            "over the byte bound"
        );
        assert!(self.len() <= self.config.capacity(), "over capacity");
        assert!(
            self.queued_count() <= self.config.global_queue,
            "over the global queue"
        );
    }
}

#[cfg(test)]
mod tests;
