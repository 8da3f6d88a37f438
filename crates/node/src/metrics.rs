//! The node's side of its metrics (names and descriptions live in
//! `infera-metrics`): the `/metrics` endpoint's start, the sampler of the
//! gauges that are read rather than counted (head, pool sizes, peers, MDBX
//! size), and MDBX's page counter, read around each block's commit.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use infera_metrics::exporter::MetricsServer;
use infera_storage::Database;
use infera_txpool::TxPool;
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::{NodeError, NodeResult};

/// How often the sampled gauges are refreshed: a scrape (Prometheus' default
/// is every 15 s) sees values at most this old.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// A running `/metrics` endpoint and its sampler; both stop when dropped.
pub(crate) struct NodeMetrics {
    _server: MetricsServer,
    sampler: JoinHandle<()>,
}

impl Drop for NodeMetrics {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}

/// What the sampler reads.
pub(crate) struct Sampled {
    pub db: Database,
    pub pool: Arc<Mutex<TxPool>>,
    pub peers: Arc<AtomicUsize>,
}

/// Serves `/metrics` on `addr` and starts the sampler.
pub(crate) async fn start(addr: SocketAddr, sampled: Sampled) -> NodeResult<NodeMetrics> {
    let server = infera_metrics::exporter::serve(addr)
        .await
        .map_err(|e| NodeError::Config(format!("--metrics: {e}")))?;
    info!(target: "infera::metrics", url = %format!("http://{}/metrics", server.local_addr()), "Prometheus metrics listening");
    sample(&sampled);
    let sampler = tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            sample(&sampled);
        }
    });
    Ok(NodeMetrics {
        _server: server,
        sampler,
    })
}

fn sample(sampled: &Sampled) {
    let (pending, queued) = {
        let pool = sampled.pool.lock();
        (pool.pending_count(), pool.queued_count())
    };
    infera_metrics::txpool::sizes(pending, queued);
    infera_metrics::network::peers(sampled.peers.load(Ordering::Relaxed));
    if let Err(err) = sample_storage(&sampled.db) {
        debug!(target: "infera::metrics", %err, "sampling the database failed");
    }
}

fn sample_storage(db: &Database) -> NodeResult<()> {
    let reader = db.reader()?;
    if let Some(number) = reader.head_number()?
        && let Some(header) = reader.header(number)?
    {
        infera_metrics::chain::head(number, header.timestamp, crate::clique_inputs::unix_now_s());
    }
    drop(reader);
    let stats = db.stats()?;
    infera_metrics::storage::size(stats.file_size_bytes, stats.total_size_bytes());
    Ok(())
}

/// MDBX's count of pages written (allocated or copied for update) since the
/// environment opened; the difference across a block's write transaction is
/// what that block wrote (MDBX runs one write transaction at a time).
pub(crate) fn pages_written(db: &Database) -> Option<u64> {
    let ops = db.env().info().ok()?.page_ops();
    Some(ops.newly + ops.cow)
}

/// Records the pages written since `before` ([`pages_written`]) for a block
/// committed from `source` (`sealed` or `imported`).
pub(crate) fn record_commit_pages(db: &Database, source: &'static str, before: Option<u64>) {
    if let (Some(before), Some(after)) = (before, pages_written(db)) {
        infera_metrics::storage::commit_pages(source, after.saturating_sub(before));
    }
}
