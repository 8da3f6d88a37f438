//! The dev-mode sealer: one key, no peers; seals a block as soon as a
//! transaction arrives (`--dev.block-time 0`) or every N seconds.

use std::{sync::Arc, time::Duration};

use infera_chainspec::ChainSpec;
use infera_primitives::{Address, ChainEvent};
use infera_storage::Database;
use infera_txpool::TxPool;
use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast};
use tracing::{error, info};

use crate::builder::{CommittedBlock, build_and_commit};

/// Pause after a failed seal before trying again, so a persistent fault
/// (a full disk) does not spin the CPU.
const SEAL_RETRY_DELAY: Duration = Duration::from_secs(1);

pub(crate) struct Sealer {
    pub db: Database,
    pub chain: Arc<ChainSpec>,
    pub pool: Arc<Mutex<TxPool>>,
    pub events: broadcast::Sender<ChainEvent>,
    pub tx_arrived: Arc<Notify>,
    pub block_time: Duration,
    pub coinbase: Address,
    /// Decoded AI models, shared with the RPC.
    pub models: Arc<infera_precompiles::ModelCache>,
}

impl Sealer {
    pub(crate) async fn run(self) {
        let mut interval = (!self.block_time.is_zero()).then(|| {
            let mut interval = tokio::time::interval(self.block_time);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        if let Some(interval) = interval.as_mut() {
            // The first tick completes at once; skip it so block 1 comes one period after start.
            interval.tick().await;
        }
        loop {
            match interval.as_mut() {
                Some(interval) => {
                    interval.tick().await;
                }
                None => {
                    if self.pool.lock().pending_count() == 0 {
                        self.tx_arrived.notified().await;
                    }
                }
            }
            match self.seal_one().await {
                Ok(Some(committed)) => {
                    log_sealed(&committed.block);
                    let empty = committed.block.transactions.is_empty();
                    let _ = self.events.send(ChainEvent::NewBlock {
                        block: committed.block,
                        receipts: committed.receipts,
                    });
                    if interval.is_none() && empty {
                        // Every candidate was invalid or deferred; sealing again
                        // at once would only spin. Wait for the next transaction.
                        self.tx_arrived.notified().await;
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    error!(target: "infera::sealer", %err, "sealing failed; retrying");
                    tokio::time::sleep(SEAL_RETRY_DELAY).await;
                }
            }
        }
    }

    /// Seals one block. In instant mode an empty pool seals nothing.
    async fn seal_one(&self) -> crate::NodeResult<Option<CommittedBlock>> {
        if self.block_time.is_zero() && self.pool.lock().pending_count() == 0 {
            return Ok(None);
        }
        let db = self.db.clone();
        let chain = self.chain.clone();
        let pool = self.pool.clone();
        let coinbase = self.coinbase;
        let models = self.models.clone();
        let now_s = crate::clique_inputs::unix_now_s();
        let committed = tokio::task::spawn_blocking(move || {
            build_and_commit(&db, &chain, &pool, coinbase, now_s, &models)
        })
        .await
        .map_err(|err| crate::NodeError::Invariant(format!("sealing task failed: {err}")))??;
        Ok(Some(committed))
    }
}

/// Logs a block this node sealed: one line for the dev and the Clique
/// sealer. Difficulty 2 marks an in-turn Clique block, 1 an out-of-turn one.
pub(crate) fn log_sealed(block: &infera_primitives::SealedBlock) {
    info!(
        target: "infera::sealer",
        number = block.number(),
        hash = %block.hash,
        txs = block.transactions.len(),
        gas_used = block.header.gas_used,
        base_fee = block.header.base_fee_per_gas.unwrap_or(0),
        difficulty = %block.header.difficulty,
        "sealed block"
    );
}
