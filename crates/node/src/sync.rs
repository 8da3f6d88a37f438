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
        let started = Instant::now();
        let first_head = self.head().number;
        let mut first = first_head + 1;
        if let Ok(status) = self.net.request_status(peer).await {
            *self.rpc.sync_progress().lock() = Some(infera_rpc::SyncProgress {
                starting_block: first_head,
                highest_block: status.head_number,
            });
            // A peer can be heavier without being longer (a branch with more
            // in-turn blocks): start at its head, whose parent either is ours
            // (fork choice then compares the two) or is not (the back-off finds
            // the fork point).
            first = first.min(status.head_number).max(1);
        }
        self.catch_up(peer, started, first_head, first).await;
        *self.rpc.sync_progress().lock() = None;
    }

    async fn catch_up(&self, peer: PeerId, started: Instant, first_head: u64, first: u64) {
        let mut next = first;
        let mut backed_off = false;
        let mut imported = 0u64;
        let mut gas = 0u64;
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
                match self.insert(block).await {
                    Ok(InsertOutcome::Extended(_)) => {
                        imported += 1;
                        gas += block_gas;
                        infera_metrics::network::sync_blocks(1);
                    }
                    Ok(InsertOutcome::Reorged {
                        imported: blocks, ..
                    }) => {
                        imported += blocks.len() as u64;
                        gas += blocks.iter().map(|b| b.block.header.gas_used).sum::<u64>();
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
            }
            next = restart.unwrap_or(last);
            if imported > 0 {
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                let head = self.head();
                info!(
                    target: "infera::sync",
                    %peer,
                    head = head.number,
                    imported,
                    blocks_per_s = format!("{:.1}", imported as f64 / secs),
                    mgas_per_s = format!("{:.2}", gas as f64 / 1e6 / secs),
                    "syncing"
                );
            }
        }
        if imported > 0 {
            let head = self.head();
            info!(target: "infera::sync", %peer, from = first_head, to = head.number, imported, secs = format!("{:.2}", started.elapsed().as_secs_f64()), "caught up");
        }
    }
}
