//! The node's side of the peer-to-peer network: what it serves to peers
//! ([`StorageChainView`]) and what it does with what peers send
//! ([`run_sync`]): gossiped blocks and transactions are validated before they
//! are forwarded, a peer that is ahead is caught up with by range requests,
//! and a peer that sends an invalid block or malformed data is penalised.
//!
//! Whether a peer is penalised is decided on typed errors only
//! ([`block_ban`], [`transaction_ban`]), never on their text: a fault of
//! this node (database, accelerator, I/O) never counts against a peer.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::U256;
use alloy_rlp::Encodable;
use infera_network::{ChainView, GossipId, NetworkEvent, NetworkHandle, PeerId, Status, Verdict};
use infera_primitives::{B256, ChainEvent};
use infera_rpc::RpcContext;
use infera_storage::Database;
use infera_txpool::{TxAdmission, TxAdmissionError};
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

use crate::{
    builder::CommittedBlock,
    chain::{ChainManager, HeadInfo, InsertOutcome, MAX_REORG_DEPTH, block_of},
    import::{Block, Fault, ImportError, decode_block},
};

/// Why the peer that sent a block the chain refused is banned, or `None`
/// when it is not (the refusal is this node's own fault).
pub fn block_ban(err: &ImportError) -> Option<String> {
    match err.fault() {
        Fault::BadBlock | Fault::BadPeer => Some(err.to_string()),
        Fault::Local => None,
    }
}

/// Why the peer that gossiped a transaction the node refused is banned, or
/// `None` when it is not: only malformed data is the peer's fault; a
/// transaction stale for our state or refused by our pool may be valid
/// elsewhere, and our own faults are ours.
pub fn transaction_ban(err: &TxAdmissionError) -> Option<String> {
    match err {
        TxAdmissionError::Malformed(err) => Some(format!("bad transaction: {err}")),
        TxAdmissionError::Invalid(_) | TxAdmissionError::Pool(_) | TxAdmissionError::Local(_) => {
            None
        }
    }
}

/// Blocks asked for per range request.
pub const SYNC_BATCH_BLOCKS: u64 = 128;

/// How often the node asks its peers for their head, to notice it is behind.
pub const STATUS_POLL_INTERVAL: Duration = Duration::from_secs(3);

/// How often range sync logs its progress (and asks the peer for its head
/// again, so `eth_syncing`'s `highestBlock` follows a growing chain).
pub const SYNC_PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// A catch-up's counters, for its progress lines.
#[derive(Debug)]
struct SyncProgress {
    started: Instant,
    last_report: Instant,
    first_head: u64,
    highest: u64,
    imported: u64,
    gas: u64,
}

impl SyncProgress {
    fn new(first_head: u64, highest: u64, now: Instant) -> Self {
        Self {
            started: now,
            last_report: now,
            first_head,
            highest,
            imported: 0,
            gas: 0,
        }
    }

    fn record(&mut self, blocks: u64, gas: u64) {
        self.imported += blocks;
        self.gas += gas;
    }

    /// Whether a progress line is due at `now` (and marks it given).
    fn report_due(&mut self, now: Instant) -> bool {
        if now.duration_since(self.last_report) < SYNC_PROGRESS_INTERVAL {
            return false;
        }
        self.last_report = now;
        true
    }

    fn blocks_per_s(&self, now: Instant) -> f64 {
        self.imported as f64 / now.duration_since(self.started).as_secs_f64().max(1e-9)
    }

    fn mgas_per_s(&self, now: Instant) -> f64 {
        self.gas as f64 / 1e6 / now.duration_since(self.started).as_secs_f64().max(1e-9)
    }

    /// Time left at the rate so far to reach the highest block known, from
    /// `head`; `None` before the first block (no rate yet).
    fn eta(&self, head: u64, now: Instant) -> Option<Duration> {
        let rate = self.blocks_per_s(now);
        let left = self.highest.saturating_sub(head);
        (self.imported > 0 && rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate))
    }
}

/// `1h02m`, `3m05s`, `12s`: an ETA short enough for a log line.
fn format_eta(eta: Option<Duration>) -> String {
    let Some(eta) = eta else {
        return "unknown".into();
    };
    let s = eta.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec:02}s"),
        (h, min, _) => format!("{h}h{min:02}m"),
    }
}

/// Serves the canonical chain to peers from storage.
pub struct StorageChainView {
    pub db: Database,
    pub genesis_hash: B256,
    pub head: Arc<Mutex<HeadInfo>>,
}

impl ChainView for StorageChainView {
    fn status(&self) -> Status {
        let head = *self.head.lock();
        Status {
            genesis_hash: self.genesis_hash,
            head_number: head.number,
            head_hash: head.hash,
            total_difficulty: head.total_difficulty,
        }
    }

    fn blocks(&self, start: u64, count: u64, max_bytes: usize) -> Vec<Vec<u8>> {
        let Ok(reader) = self.db.reader() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for number in start..start.saturating_add(count) {
            let Ok(Some(sealed)) = reader.block(number) else {
                break;
            };
            let mut rlp = Vec::new();
            block_of(&sealed).encode(&mut rlp);
            if !out.is_empty() && bytes + rlp.len() > max_bytes {
                break;
            }
            bytes += rlp.len();
            out.push(rlp);
        }
        out
    }
}

/// What the sync loop works with.
pub(crate) struct Sync {
    pub manager: Arc<Mutex<ChainManager>>,
    /// The head, readable while an import holds the manager.
    pub head: Arc<Mutex<HeadInfo>>,
    pub net: NetworkHandle,
    /// Where gossiped transactions enter the pool, by the RPC's rules.
    pub admission: TxAdmission,
    /// For `eth_syncing`'s progress.
    pub rpc: RpcContext,
    pub syncing: Arc<AtomicBool>,
    /// Connected peers, for `net_peerCount`.
    pub peers: Arc<std::sync::atomic::AtomicUsize>,
    /// Test only: a pause before each range-synced block is imported, so
    /// tests can watch a catch-up in progress.
    #[cfg(feature = "test-hooks")]
    pub test_block_delay: Duration,
}

/// Runs until the network's event stream ends.
pub(crate) async fn run_sync(
    sync: Sync,
    mut net_events: mpsc::Receiver<NetworkEvent>,
    mut local_blocks: mpsc::UnboundedReceiver<CommittedBlock>,
    mut chain_events: broadcast::Receiver<ChainEvent>,
) {
    let sync = Arc::new(sync);
    let mut poll = tokio::time::interval(STATUS_POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = net_events.recv() => {
                let Some(event) = event else { break };
                sync.clone().on_network_event(event).await;
            }
            Some(committed) = local_blocks.recv() => {
                let mut rlp = Vec::new();
                block_of(&committed.block).encode(&mut rlp);
                sync.net.publish_block(rlp);
            }
            event = chain_events.recv() => match event {
                Ok(ChainEvent::PendingTransaction(hash)) => {
                    let raw = sync.pool_tx(hash);
                    if let Some(raw) = raw {
                        sync.net.publish_transaction(raw);
                    }
                }
                Ok(ChainEvent::NewBlock { .. }) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    debug!(target: "infera::sync", skipped = n, "chain events lagged");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = poll.tick() => sync.clone().poll_peers().await,
        }
    }
}

impl Sync {
    fn pool_tx(&self, hash: B256) -> Option<Vec<u8>> {
        let pool = self.admission.pool().lock();
        pool.get(&hash).map(|tx| tx.tx.encoded_2718())
    }

    async fn on_network_event(self: Arc<Self>, event: NetworkEvent) {
        match event {
            NetworkEvent::PeerConnected { peer, status } => {
                self.peers.store(self.net.peers().len(), Ordering::Relaxed);
                info!(target: "infera::sync", %peer, head = status.head_number, td = %status.total_difficulty, "peer connected");
                self.maybe_sync(peer, status.total_difficulty);
            }
            NetworkEvent::PeerDisconnected { peer } => {
                self.peers.store(self.net.peers().len(), Ordering::Relaxed);
                debug!(target: "infera::sync", %peer, "peer disconnected");
            }
            NetworkEvent::NewBlock { source, id, block } => {
                self.on_gossip_block(source, id, block).await;
            }
            NetworkEvent::NewTransaction { source, id, tx } => {
                let admission = self.admission.clone();
                let result = tokio::task::spawn_blocking(move || admission.admit(&tx)).await;
                let verdict = match result {
                    Ok(Ok(_)) => Verdict::Accept,
                    Ok(Err(err)) => match transaction_ban(&err) {
                        Some(reason) => {
                            self.net.penalize(source, &reason);
                            Verdict::Reject
                        }
                        None => {
                            if let TxAdmissionError::Local(err) = &err {
                                warn!(target: "infera::sync", %err, "could not admit a gossiped transaction");
                            }
                            Verdict::Ignore
                        }
                    },
                    Err(_) => Verdict::Ignore,
                };
                self.net.report(id, verdict);
            }
        }
    }

    async fn on_gossip_block(self: Arc<Self>, source: PeerId, id: GossipId, bytes: Vec<u8>) {
        let block = match decode_block(&bytes) {
            Ok(block) => block,
            Err(reason) => {
                self.net.report(id, Verdict::Reject);
                self.net
                    .penalize(source, &format!("gossiped block: {reason}"));
                return;
            }
        };
        let number = block.header.number;
        match self.insert(block).await {
            Ok(InsertOutcome::Extended(c)) => {
                self.net.report(id, Verdict::Accept);
                info!(target: "infera::sync", number, hash = %c.block.hash, txs = c.block.transactions.len(), %source, "imported block");
            }
            Ok(InsertOutcome::Reorged { unwound, imported }) => {
                self.net.report(id, Verdict::Accept);
                info!(target: "infera::sync", number, unwound, imported = imported.len(), %source, "imported block (reorg)");
            }
            Ok(InsertOutcome::Side) => self.net.report(id, Verdict::Accept),
            Ok(InsertOutcome::Known | InsertOutcome::TooOld) => {
                self.net.report(id, Verdict::Ignore)
            }
            Ok(InsertOutcome::UnknownParent) => {
                self.net.report(id, Verdict::Ignore);
                let head = self.head();
                if number > head.number {
                    self.clone().start_sync(source);
                }
            }
            Err(err) => match block_ban(&err) {
                Some(reason) => {
                    self.net.report(id, Verdict::Reject);
                    warn!(target: "infera::sync", %reason, peer = %source, "rejected a gossiped block");
                    self.net.penalize(source, &reason);
                }
                None => {
                    self.net.report(id, Verdict::Ignore);
                    warn!(target: "infera::sync", %err, "could not import a gossiped block");
                }
            },
        }
    }

    fn head(&self) -> HeadInfo {
        *self.head.lock()
    }

    async fn insert(&self, block: Block) -> Result<InsertOutcome, ImportError> {
        let manager = self.manager.clone();
        tokio::task::spawn_blocking(move || manager.lock().insert(block))
            .await
            .map_err(|e| {
                ImportError::Node(crate::NodeError::Invariant(format!(
                    "import task failed: {e}"
                )))
            })?
    }

    fn maybe_sync(self: Arc<Self>, peer: PeerId, peer_td: U256) {
        if peer_td > self.head().total_difficulty {
            self.start_sync(peer);
        }
    }

    /// Starts catching up with `peer` unless a catch-up is running.
    fn start_sync(self: Arc<Self>, peer: PeerId) {
        if self.syncing.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(async move {
            self.sync_from(peer).await;
            self.syncing.store(false, Ordering::Release);
        });
    }

    async fn poll_peers(self: Arc<Self>) {
        if self.syncing.load(Ordering::Acquire) {
            return;
        }
        let ours = self.head().total_difficulty;
        let mut best: Option<(PeerId, U256)> = None;
        for (peer, _) in self.net.peers() {
            if let Ok(status) = self.net.request_status(peer).await
                && status.total_difficulty > ours
                && best.is_none_or(|(_, td)| status.total_difficulty > td)
            {
                best = Some((peer, status.total_difficulty));
            }
        }
        if let Some((peer, _)) = best {
            self.start_sync(peer);
        }
    }

    /// Range sync: fetches the peer's canonical blocks after our head and
    /// inserts them. If the peer is on another branch, backs off up to
    /// [`MAX_REORG_DEPTH`] blocks to find the fork point; fork choice then
    /// decides which chain wins.
    async fn sync_from(&self, peer: PeerId) {
        let first_head = self.head().number;
        let mut first = first_head + 1;
        let mut highest = first_head;
        if let Ok(status) = self.net.request_status(peer).await {
            highest = status.head_number;
            // A peer can be heavier without being longer (a branch with more
            // in-turn blocks): start at its head, whose parent either is ours
            // (fork choice then compares the two) or is not (the back-off finds
            // the fork point).
            first = first.min(status.head_number).max(1);
        }
        let mut progress = SyncProgress::new(first_head, highest, Instant::now());
        self.publish_progress(&progress);
        self.catch_up(peer, first, &mut progress).await;
        *self.rpc.sync_progress().lock() = None;
    }

    /// What `eth_syncing` answers while this catch-up runs.
    fn publish_progress(&self, progress: &SyncProgress) {
        *self.rpc.sync_progress().lock() = Some(infera_rpc::SyncProgress {
            starting_block: progress.first_head,
            highest_block: progress.highest,
        });
    }

    /// The progress line (every [`SYNC_PROGRESS_INTERVAL`]), after asking
    /// the peer for its head again.
    async fn report_progress(&self, peer: PeerId, progress: &mut SyncProgress) {
        if let Ok(status) = self.net.request_status(peer).await {
            progress.highest = progress.highest.max(status.head_number);
        }
        let head = self.head().number;
        progress.highest = progress.highest.max(head);
        self.publish_progress(progress);
        let now = Instant::now();
        info!(
            target: "infera::sync",
            %peer,
            head,
            highest = progress.highest,
            imported = progress.imported,
            blocks_per_s = format!("{:.1}", progress.blocks_per_s(now)),
            mgas_per_s = format!("{:.2}", progress.mgas_per_s(now)),
            peers = self.net.peers().len(),
            eta = format_eta(progress.eta(head, now)),
            "syncing"
        );
    }

    async fn catch_up(&self, peer: PeerId, first: u64, progress: &mut SyncProgress) {
        let mut next = first;
        let mut backed_off = false;
        loop {
            let blocks = match self.net.request_blocks(peer, next, SYNC_BATCH_BLOCKS).await {
                Ok(blocks) => blocks,
                Err(err) => {
                    debug!(target: "infera::sync", %peer, %err, "range request failed");
                    break;
                }
            };
            if blocks.is_empty() {
                break;
            }
            let mut last = next;
            let mut restart = None;
            for bytes in blocks {
                let block = match decode_block(&bytes) {
                    Ok(block) => block,
                    Err(reason) => {
                        self.net
                            .penalize(peer, &format!("range response: {reason}"));
                        return;
                    }
                };
                let number = block.header.number;
                if number != last {
                    self.net.penalize(
                        peer,
                        &format!("range response: block {number} where {last} was asked"),
                    );
                    return;
                }
                let block_gas = block.header.gas_used;
                #[cfg(feature = "test-hooks")]
                if !self.test_block_delay.is_zero() {
                    tokio::time::sleep(self.test_block_delay).await;
                }
                match self.insert(block).await {
                    Ok(InsertOutcome::Extended(_)) => {
                        progress.record(1, block_gas);
                        infera_metrics::network::sync_blocks(1);
                    }
                    Ok(InsertOutcome::Reorged {
                        imported: blocks, ..
                    }) => {
                        progress.record(
                            blocks.len() as u64,
                            blocks.iter().map(|b| b.block.header.gas_used).sum::<u64>(),
                        );
                        infera_metrics::network::sync_blocks(blocks.len() as u64);
                    }
                    Ok(InsertOutcome::Known | InsertOutcome::Side) => {}
                    Ok(InsertOutcome::UnknownParent) if !backed_off => {
                        backed_off = true;
                        restart = Some(number.saturating_sub(MAX_REORG_DEPTH).max(1));
                        break;
                    }
                    Ok(InsertOutcome::UnknownParent | InsertOutcome::TooOld) => {
                        debug!(target: "infera::sync", %peer, number, "peer's chain does not connect within the reorg limit");
                        return;
                    }
                    Err(err) => {
                        match block_ban(&err) {
                            Some(reason) => {
                                warn!(target: "infera::sync", %reason, %peer, "peer served a bad block");
                                self.net.penalize(peer, &reason);
                            }
                            None => {
                                warn!(target: "infera::sync", %err, "import failed during sync")
                            }
                        }
                        return;
                    }
                }
                last += 1;
                if progress.report_due(Instant::now()) {
                    self.report_progress(peer, progress).await;
                }
            }
            next = restart.unwrap_or(last);
        }
        if progress.imported > 0 {
            let head = self.head();
            let now = Instant::now();
            info!(
                target: "infera::sync",
                %peer,
                from = progress.first_head,
                to = head.number,
                imported = progress.imported,
                secs = format!("{:.2}", now.duration_since(progress.started).as_secs_f64()),
                blocks_per_s = format!("{:.1}", progress.blocks_per_s(now)),
                mgas_per_s = format!("{:.2}", progress.mgas_per_s(now)),
                "caught up"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_follows_the_rate_so_far() {
        let start = Instant::now();
        let mut p = SyncProgress::new(100, 1_100, start);
        assert_eq!(p.eta(100, start), None, "no rate before the first block");
        p.record(100, 5_000_000);
        let now = start + Duration::from_secs(10);
        // 100 blocks in 10 s: 10 blocks/s, 900 left from head 200.
        assert_eq!(p.eta(200, now), Some(Duration::from_secs(90)));
        assert!((p.mgas_per_s(now) - 0.5).abs() < 1e-9);
        assert_eq!(p.eta(1_100, now), Some(Duration::ZERO));
    }

    #[test]
    fn progress_lines_are_due_every_interval() {
        let start = Instant::now();
        let mut p = SyncProgress::new(0, 10, start);
        assert!(!p.report_due(start + Duration::from_secs(1)));
        assert!(p.report_due(start + SYNC_PROGRESS_INTERVAL));
        assert!(!p.report_due(start + SYNC_PROGRESS_INTERVAL + Duration::from_secs(1)));
    }

    #[test]
    fn eta_formats_short() {
        assert_eq!(format_eta(None), "unknown");
        assert_eq!(format_eta(Some(Duration::from_secs(12))), "12s");
        assert_eq!(format_eta(Some(Duration::from_secs(185))), "3m05s");
        assert_eq!(format_eta(Some(Duration::from_secs(3_720))), "1h02m");
    }
}
