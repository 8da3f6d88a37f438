//! Installed filters (`eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`), polled by `eth_getFilterChanges`.
//!
//! Block and log filters remember the last block they reported and read the
//! chain from storage when polled; a pending-transaction filter keeps its own
//! receiver on the node's event channel. Filters not polled for
//! [`FILTER_TIMEOUT_S`](crate::FILTER_TIMEOUT_S) are dropped.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use alloy_rpc_types_eth::Filter;
use infera_primitives::ChainEvent;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::{FILTER_TIMEOUT_S, MAX_INSTALLED_FILTERS, RpcError, RpcResult};

/// What a filter watches.
pub(crate) enum FilterKind {
    /// New block hashes.
    Blocks,
    /// Logs matching a filter.
    Logs(Box<Filter>),
    /// Hashes of transactions entering the pool.
    PendingTransactions(broadcast::Receiver<ChainEvent>),
}

pub(crate) struct InstalledFilter {
    pub kind: FilterKind,
    /// The last block number already reported.
    pub last_block: u64,
    last_poll: Instant,
}

/// All installed filters, by id.
#[derive(Default)]
pub(crate) struct FilterStore {
    filters: Mutex<HashMap<u64, InstalledFilter>>,
    next_id: AtomicU64,
}

impl FilterStore {
    /// Installs a filter and returns its id as the hex quantity clients see.
    pub fn install(&self, kind: FilterKind, last_block: u64) -> RpcResult<String> {
        let mut filters = self.filters.lock();
        sweep_expired(&mut filters);
        if filters.len() >= MAX_INSTALLED_FILTERS {
            return Err(RpcError::LimitExceeded(format!(
                "too many installed filters (at most {MAX_INSTALLED_FILTERS}); uninstall some"
            )));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        filters.insert(
            id,
            InstalledFilter {
                kind,
                last_block,
                last_poll: Instant::now(),
            },
        );
        Ok(format!("{id:#x}"))
    }

    /// Runs `f` on the filter with this id, refreshing its expiry.
    pub fn with<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut InstalledFilter) -> RpcResult<T>,
    ) -> RpcResult<T> {
        let key = parse_id(id)?;
        let mut filters = self.filters.lock();
        sweep_expired(&mut filters);
        let filter = filters
            .get_mut(&key)
            .ok_or_else(|| RpcError::NotFound("filter not found".into()))?;
        filter.last_poll = Instant::now();
        f(filter)
    }

    /// Removes a filter; true if it existed.
    pub fn uninstall(&self, id: &str) -> bool {
        parse_id(id).is_ok_and(|key| self.filters.lock().remove(&key).is_some())
    }
}

fn parse_id(id: &str) -> RpcResult<u64> {
    let digits = id.strip_prefix("0x").unwrap_or(id);
    u64::from_str_radix(digits, 16)
        .map_err(|_| RpcError::InvalidParams(format!("malformed filter id {id:?}")))
}

fn sweep_expired(filters: &mut HashMap<u64, InstalledFilter>) {
    let timeout = Duration::from_secs(FILTER_TIMEOUT_S);
    filters.retain(|_, filter| filter.last_poll.elapsed() < timeout);
}
