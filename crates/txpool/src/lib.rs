//! Transaction pool: pending by effective tip, queued nonce gaps, replacement, bounds.
//!
//! Per sender, transactions are kept by nonce. Those contiguous from the
//! sender's state nonce are *pending* (executable now); those after a gap are
//! *queued* until the gap fills. The pool checks only what depends on other
//! pooled transactions (duplicates, replacement, nonce gaps, bounds, cumulative
//! cost); stateless and state checks are `infera_evm::validate_transaction`'s,
//! which the caller runs first.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BinaryHeap, HashMap},
};

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, B256, U256};
use infera_primitives::RecoveredTx;

/// Default bound on the number of transactions in the pool.
pub const DEFAULT_MAX_TRANSACTIONS: usize = 10_000;
/// Default bound on the number of transactions one sender may have in the pool.
pub const DEFAULT_MAX_PER_SENDER: usize = 64;
/// Default fee increase a replacement must offer, in percent.
pub const DEFAULT_PRICE_BUMP_PERCENT: u128 = 10;

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
    /// The pool is full and the transaction pays too little to evict another.
    #[error("txpool is full")]
    PoolFull,
    /// The sender already has the most transactions one sender may have.
    #[error("sender {sender} has too many transactions in the pool (limit {limit})")]
    SenderLimit {
        /// The sender.
        sender: Address,
        /// The per-sender bound.
        limit: usize,
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
    /// Most transactions in the pool.
    pub max_transactions: usize,
    /// Most transactions of one sender.
    pub max_per_sender: usize,
    /// Fee increase (of both max fee and tip) a replacement needs, in percent.
    pub price_bump_percent: u128,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_transactions: DEFAULT_MAX_TRANSACTIONS,
            max_per_sender: DEFAULT_MAX_PER_SENDER,
            price_bump_percent: DEFAULT_PRICE_BUMP_PERCENT,
        }
    }
}

/// Where an added transaction went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// Executable now: contiguous from the sender's nonce.
    Pending,
    /// Waiting for a nonce gap to fill.
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
    /// Transactions evicted to make room.
    pub evicted: Vec<B256>,
}

#[derive(Debug, Clone)]
struct PoolTx {
    tx: RecoveredTx,
    max_fee: u128,
    tip: u128,
    cost: U256,
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

#[derive(Debug, Default)]
struct SenderTxs {
    state_nonce: u64,
    txs: BTreeMap<u64, PoolTx>,
    /// Number of transactions contiguous from `state_nonce`.
    pending: usize,
}

impl SenderTxs {
    fn recount(&mut self) {
        self.pending = (self.state_nonce..)
            .zip(self.txs.range(self.state_nonce..).map(|(nonce, _)| *nonce))
            .take_while(|(expected, nonce)| expected == nonce)
            .count();
    }

    fn queued(&self) -> usize {
        self.txs.len() - self.pending
    }

    fn is_pending(&self, nonce: u64) -> bool {
        nonce >= self.state_nonce && nonce < self.state_nonce + self.pending as u64
    }

    fn pending_txs(&self) -> impl Iterator<Item = &PoolTx> {
        self.txs
            .range(self.state_nonce..)
            .take(self.pending)
            .map(|(_, tx)| tx)
    }

    /// Drop transactions below the state nonce; returns their hashes.
    fn drop_stale(&mut self) -> Vec<B256> {
        let keep = self.txs.split_off(&self.state_nonce);
        let stale = std::mem::replace(&mut self.txs, keep);
        stale.into_values().map(|tx| tx.tx.hash).collect()
    }
}

/// The transaction pool. Not thread-safe by itself: wrap it in a lock.
#[derive(Debug, Default)]
pub struct TxPool {
    config: PoolConfig,
    by_hash: HashMap<B256, (Address, u64)>,
    senders: HashMap<Address, SenderTxs>,
    next_seq: u64,
}

fn cost_of(tx: &RecoveredTx) -> U256 {
    U256::from(tx.tx.gas_limit())
        .saturating_mul(U256::from(tx.tx.max_fee_per_gas()))
        .saturating_add(tx.tx.value())
}

fn bumped(value: u128, percent: u128) -> u128 {
    value.saturating_mul(100 + percent).div_ceil(100)
}

impl TxPool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    /// The pool's rules.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Add a validated transaction. `state_nonce` and `sender_balance` are the
    /// sender's account at the head; `base_fee` that of the next block.
    pub fn add(
        &mut self,
        tx: RecoveredTx,
        state_nonce: u64,
        sender_balance: U256,
        base_fee: u64,
    ) -> Result<AddOutcome> {
        let hash = tx.hash;
        if self.by_hash.contains_key(&hash) {
            return Err(PoolError::AlreadyKnown(hash));
        }
        let nonce = tx.tx.nonce();
        if nonce < state_nonce {
            return Err(PoolError::NonceTooLow {
                tx: nonce,
                state: state_nonce,
            });
        }
        let sender = tx.sender;
        let new = PoolTx {
            max_fee: tx.tx.max_fee_per_gas(),
            tip: tx
                .tx
                .max_priority_fee_per_gas()
                .unwrap_or_else(|| tx.tx.max_fee_per_gas()),
            cost: cost_of(&tx),
            seq: self.next_seq,
            tx,
        };

        // Bring the sender's view up to date with the caller's state.
        let mut evicted = Vec::new();
        if let Some(entry) = self.senders.get_mut(&sender)
            && entry.state_nonce != state_nonce
        {
            entry.state_nonce = state_nonce;
            for stale in entry.drop_stale() {
                self.by_hash.remove(&stale);
                evicted.push(stale);
            }
            entry.recount();
        }

        let (replacing, sender_len, earlier_cost) = match self.senders.get(&sender) {
            Some(entry) => (
                entry.txs.get(&nonce).map(|old| (old.max_fee, old.tip)),
                entry.txs.len(),
                entry
                    .txs
                    .range(state_nonce..nonce)
                    .fold(U256::ZERO, |sum, (_, tx)| sum.saturating_add(tx.cost)),
            ),
            None => (None, 0, U256::ZERO),
        };
        let cost = earlier_cost.saturating_add(new.cost);
        if cost > sender_balance {
            return Err(PoolError::InsufficientFunds {
                balance: sender_balance,
                cost,
            });
        }

        if let Some((old_max_fee, old_tip)) = replacing {
            let min_max_fee = bumped(old_max_fee, self.config.price_bump_percent);
            let min_tip = bumped(old_tip, self.config.price_bump_percent);
            if new.max_fee < min_max_fee || new.tip < min_tip {
                return Err(PoolError::ReplacementUnderpriced {
                    min_max_fee,
                    min_tip,
                });
            }
            let entry = self
                .senders
                .get_mut(&sender)
                .expect("sender has the replaced tx");
            let status = if entry.is_pending(nonce) {
                TxStatus::Pending
            } else {
                TxStatus::Queued
            };
            let old = entry.txs.insert(nonce, new).expect("replaced tx present");
            self.by_hash.remove(&old.tx.hash);
            self.by_hash.insert(hash, (sender, nonce));
            self.next_seq += 1;
            return Ok(AddOutcome {
                hash,
                status,
                replaced: Some(old.tx.hash),
                promoted: Vec::new(),
                evicted,
            });
        }

        if sender_len >= self.config.max_per_sender {
            return Err(PoolError::SenderLimit {
                sender,
                limit: self.config.max_per_sender,
            });
        }
        let would_be_pending = match self.senders.get(&sender) {
            Some(entry) => nonce == entry.state_nonce + entry.pending as u64,
            None => nonce == state_nonce,
        };
        if self.by_hash.len() >= self.config.max_transactions {
            let victim = self.eviction_candidate(base_fee, sender, nonce);
            let Some((victim_sender, victim_nonce, victim_pending, victim_tip)) = victim else {
                return Err(PoolError::PoolFull);
            };
            let new_tip = new.effective_tip(base_fee).unwrap_or(0);
            let evict = match (would_be_pending, victim_pending) {
                (true, false) => true,
                (false, true) => false,
                _ => new_tip > victim_tip,
            };
            if !evict {
                return Err(PoolError::PoolFull);
            }
            evicted.extend(self.remove_from(victim_sender, victim_nonce));
        }

        let entry = self.senders.entry(sender).or_insert_with(|| SenderTxs {
            state_nonce,
            ..Default::default()
        });
        let pending_before = entry.pending;
        entry.txs.insert(nonce, new);
        entry.recount();
        self.by_hash.insert(hash, (sender, nonce));
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
        Ok(AddOutcome {
            hash,
            status,
            replaced: None,
            promoted,
            evicted,
        })
    }

    /// The transaction to evict for a newcomer: the highest-nonce queued
    /// transaction of the sender with the most queued ones; failing that, the
    /// last pending transaction (of its sender) with the lowest effective tip.
    /// Returns (sender, nonce, is_pending, effective tip).
    fn eviction_candidate(
        &self,
        base_fee: u64,
        new_sender: Address,
        new_nonce: u64,
    ) -> Option<(Address, u64, bool, u128)> {
        let most_queued = self
            .senders
            .iter()
            .filter(|(_, entry)| entry.queued() > 0)
            .max_by_key(|(address, entry)| (entry.queued(), **address));
        if let Some((address, entry)) = most_queued {
            let (nonce, tx) = entry.txs.iter().next_back().expect("has queued txs");
            if !(*address == new_sender && *nonce < new_nonce) {
                return Some((
                    *address,
                    *nonce,
                    false,
                    tx.effective_tip(base_fee).unwrap_or(0),
                ));
            }
        }
        self.senders
            .iter()
            .filter_map(|(address, entry)| {
                let tx = entry.pending_txs().last()?;
                Some((
                    *address,
                    tx.tx.tx.nonce(),
                    true,
                    tx.effective_tip(base_fee).unwrap_or(0),
                ))
            })
            .min_by_key(|(address, _, _, tip)| (*tip, *address))
    }

    /// Remove the transaction at `sender`/`nonce` and the sender's later ones
    /// if it was pending (they could no longer execute). Returns the removed hashes.
    fn remove_from(&mut self, sender: Address, nonce: u64) -> Vec<B256> {
        let Some(entry) = self.senders.get_mut(&sender) else {
            return Vec::new();
        };
        let removed: Vec<B256> = if entry.is_pending(nonce) {
            entry
                .txs
                .split_off(&nonce)
                .into_values()
                .map(|tx| tx.tx.hash)
                .collect()
        } else {
            entry
                .txs
                .remove(&nonce)
                .map(|tx| tx.tx.hash)
                .into_iter()
                .collect()
        };
        entry.recount();
        if entry.txs.is_empty() {
            self.senders.remove(&sender);
        }
        for hash in &removed {
            self.by_hash.remove(hash);
        }
        removed
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
    /// whose nonce is now below its sender's (`nonce_of`), and promote queued
    /// ones that became contiguous. Returns the removed hashes.
    pub fn on_new_block(&mut self, mined: &[B256], nonce_of: impl Fn(Address) -> u64) -> Vec<B256> {
        let mut removed = Vec::new();
        for hash in mined {
            if let Some((sender, nonce)) = self.by_hash.remove(hash) {
                if let Some(entry) = self.senders.get_mut(&sender) {
                    entry.txs.remove(&nonce);
                }
                removed.push(*hash);
            }
        }
        let by_hash = &mut self.by_hash;
        self.senders.retain(|address, entry| {
            entry.state_nonce = nonce_of(*address);
            for stale in entry.drop_stale() {
                by_hash.remove(&stale);
                removed.push(stale);
            }
            entry.recount();
            !entry.txs.is_empty()
        });
        removed
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
        let removed: Vec<B256> = entry
            .txs
            .split_off(&nonce)
            .into_values()
            .map(|tx| tx.tx.hash)
            .collect();
        entry.recount();
        if entry.txs.is_empty() {
            self.senders.remove(&sender);
        }
        for hash in &removed {
            self.by_hash.remove(hash);
        }
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

    /// The nonce after the sender's pending chain; `None` when it has no pending transaction.
    pub fn pending_nonce(&self, sender: Address) -> Option<u64> {
        let entry = self.senders.get(&sender)?;
        (entry.pending > 0).then(|| entry.state_nonce + entry.pending as u64)
    }

    /// Number of pending transactions.
    pub fn pending_count(&self) -> usize {
        self.senders.values().map(|entry| entry.pending).sum()
    }

    /// Number of queued transactions.
    pub fn queued_count(&self) -> usize {
        self.senders.values().map(SenderTxs::queued).sum()
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
}
