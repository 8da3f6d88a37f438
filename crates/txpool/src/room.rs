//! Making room under the pool's bounds (counts, queues, bytes): who gives
//! way to a newcomer, and putting everything back when it is refused after all.
//! The rules are in the crate documentation, "Bounds and who gives way".

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, B256};

use crate::{PoolError, PoolTx, Result, SenderTxs, Taken, TxPool, bumped};

/// Whether the newcomer is itself queued (and so competes with other queued
/// transactions on equal terms) or extends its sender's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Newcomer {
    Executable,
    Queued,
}

impl TxPool {
    /// Frees what the newcomer needs under every bound, or refuses it;
    /// `replacing`: the size of the transaction it replaces (same sender and
    /// nonce), which frees no count. Returns the evicted hashes; when the
    /// newcomer is refused, every transaction evicted for it is put back.
    pub(crate) fn make_room(
        &mut self,
        sender: Address,
        nonce: u64,
        newcomer: Newcomer,
        new: &PoolTx,
        base_fee: u64,
        replacing: Option<usize>,
    ) -> Result<Vec<B256>> {
        let mut taken = Vec::new();
        match self.free_room(
            sender, nonce, newcomer, new, base_fee, replacing, &mut taken,
        ) {
            Ok(()) => Ok(taken.into_iter().map(|t| t.tx.tx.hash).collect()),
            Err(error) => {
                self.put_back(taken);
                Err(error)
            }
        }
    }

    /// Whether the newcomer fits every pool-wide bound as the pool is now.
    fn fits(&self, newcomer: Newcomer, size: usize, replacing: Option<usize>) -> bool {
        let bytes_fit =
            self.bytes_total - replacing.unwrap_or(0) + size <= self.config.global_bytes;
        if replacing.is_some() {
            return bytes_fit;
        }
        bytes_fit
            && self.len() < self.config.capacity()
            && (newcomer == Newcomer::Executable || self.queued_count() < self.config.global_queue)
    }

    /// [`TxPool::make_room`]'s evictions, recorded in `taken`.
    #[allow(clippy::too_many_arguments)]
    fn free_room(
        &mut self,
        sender: Address,
        nonce: u64,
        newcomer: Newcomer,
        new: &PoolTx,
        base_fee: u64,
        replacing: Option<usize>,
        taken: &mut Vec<Taken>,
    ) -> Result<()> {
        let mut take = |pool: &mut Self, victim: Address, victim_nonce: u64| {
            taken.extend(pool.take_one(victim, victim_nonce));
        };
        match newcomer {
            Newcomer::Executable => {
                // Inserting it moves none of its sender's transactions into the
                // queue, so only the pool's totals can be in the way.
                while !self.fits(newcomer, new.size, replacing) {
                    if let Some((victim, victim_nonce)) = self.worst_queued(None) {
                        take(self, victim, victim_nonce);
                        continue;
                    }
                    let new_tip = new.effective_tip(base_fee).unwrap_or(0);
                    let Some((victim, victim_nonce, victim_tip)) =
                        self.cheapest_pending_tail(sender, base_fee)
                    else {
                        return Err(PoolError::PoolFull);
                    };
                    if new_tip <= victim_tip
                        || new_tip < bumped(victim_tip, self.config.price_bump_percent)
                    {
                        return Err(PoolError::PoolFull);
                    }
                    take(self, victim, victim_nonce);
                }
                Ok(())
            }
            Newcomer::Queued => {
                let own = self
                    .senders
                    .get(&sender)
                    .map(|entry| (entry.queued(), entry.highest_queued(), entry.next_nonce()));
                if replacing.is_none()
                    && let Some((queued, highest, next_nonce)) = own
                    && queued >= self.config.account_queue
                {
                    match highest {
                        Some(highest) if highest > nonce => take(self, sender, highest),
                        _ => {
                            return Err(PoolError::SenderLimit {
                                sender,
                                limit: self.config.account_queue,
                                next_nonce,
                            });
                        }
                    }
                }
                while !self.fits(newcomer, new.size, replacing) {
                    let Some((victim, victim_nonce)) = self.worst_queued(Some((sender, nonce)))
                    else {
                        return Err(PoolError::PoolFull);
                    };
                    take(self, victim, victim_nonce);
                }
                Ok(())
            }
        }
    }

    /// The queued transaction to give way: the highest nonce of the sender
    /// with the most queued (ties: the lowest address). With `newcomer`
    /// (a queued newcomer's sender and nonce), that sender counts one more
    /// and wins ties, and `None` comes back when the newcomer itself would be
    /// (or replaces) its sender's highest: a queued transaction does not push
    /// out a closer one.
    pub(crate) fn worst_queued(&self, newcomer: Option<(Address, u64)>) -> Option<(Address, u64)> {
        let (address, entry) = self
            .senders
            .iter()
            .filter(|(_, entry)| entry.queued() > 0)
            .max_by(|(a, x), (b, y)| {
                let weight = |address: &Address, entry: &SenderTxs| {
                    let own = newcomer.is_some_and(|(sender, _)| sender == *address);
                    (entry.queued() + usize::from(own), own)
                };
                weight(a, x).cmp(&weight(b, y)).then_with(|| b.cmp(a))
            })?;
        let highest = entry.highest_queued()?;
        match newcomer {
            // `>=`: a replacement of the highest does not push out itself.
            Some((sender, nonce)) if sender == *address && nonce >= highest => None,
            _ => Some((*address, highest)),
        }
    }

    /// The pending transaction cheapest to lose: the last pending one of the
    /// sender (other than `except`) whose last has the lowest effective tip.
    /// Returns (sender, nonce, effective tip).
    fn cheapest_pending_tail(
        &self,
        except: Address,
        base_fee: u64,
    ) -> Option<(Address, u64, u128)> {
        self.senders
            .iter()
            .filter(|(address, _)| **address != except)
            .filter_map(|(address, entry)| {
                let tx = entry.pending_txs().last()?;
                Some((
                    *address,
                    tx.tx.tx.nonce(),
                    tx.effective_tip(base_fee).unwrap_or(0),
                ))
            })
            .min_by_key(|(address, _, tip)| (*tip, *address))
    }
}
