//! Installed filters (`eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`), polled by `eth_getFilterChanges`.
//!
//! Block and log filters remember the last block they reported and read the
//! chain from storage when polled; a pending-transaction filter keeps its own
//! receiver on the node's event channel. Filters not polled for
//! [`FILTER_TIMEOUT_S`](crate::FILTER_TIMEOUT_S) are dropped.
//!
//! Two caps bound the store: [`MAX_INSTALLED_FILTERS`] for all clients
//! together, and a per-client cap ([`RpcConfig::max_filters_per_client`](crate::RpcConfig))
//! so that one client cannot take every slot. A client is the IP address the
//! request came from (the server puts it in each call's extensions); the
//! jsonrpsee layer names it with [`with_client`] around the call, which keeps
//! the plain functions of `eth.rs` free of transport details.

use std::{
    cell::Cell,
    collections::{HashMap, hash_map::RandomState},
    hash::BuildHasher,
    net::IpAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use alloy_rpc_types_eth::Filter;
use infera_primitives::ChainEvent;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::{FILTER_TIMEOUT_S, MAX_INSTALLED_FILTERS, RpcError, RpcResult};

/// Who installed a filter, for the per-client cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FilterOwner {
    /// A client of the RPC servers, by address.
    Remote(IpAddr),
    /// A call made inside the process (tests, tools), not through a server.
    Local,
}

impl std::fmt::Display for FilterOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Remote(ip) => write!(f, "client {ip}"),
            Self::Local => f.write_str("the local caller"),
        }
    }
}

thread_local! {
    /// The owner of filters installed by the call running on this thread;
    /// set by [`with_client`] for exactly one synchronous call.
    static CURRENT_OWNER: Cell<Option<FilterOwner>> = const { Cell::new(None) };
}

/// Runs `f` (a synchronous RPC method) on behalf of the client at `client`:
/// filters it installs count against that client's cap.
pub(crate) fn with_client<T>(client: Option<IpAddr>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<FilterOwner>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT_OWNER.with(|owner| owner.set(self.0));
        }
    }
    let owner = client.map(FilterOwner::Remote);
    let _restore = Restore(CURRENT_OWNER.with(|current| current.replace(owner)));
    f()
}

fn current_owner() -> FilterOwner {
    CURRENT_OWNER.with(Cell::get).unwrap_or(FilterOwner::Local)
}

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
    owner: FilterOwner,
}

/// All installed filters, by id.
pub(crate) struct FilterStore {
    filters: Mutex<HashMap<u64, InstalledFilter>>,
    next_id: AtomicU64,
    /// Keys the hash that turns the counter into ids: a client cannot guess
    /// (and so poll away or uninstall) another client's filters.
    id_seed: RandomState,
    max_per_client: usize,
}

impl FilterStore {
    /// An empty store allowing `max_per_client` filters to each client.
    pub fn new(max_per_client: usize) -> Self {
        Self {
            filters: Mutex::default(),
            next_id: AtomicU64::new(0),
            id_seed: RandomState::new(),
            max_per_client,
        }
    }

    /// Installs a filter for the current client (see [`with_client`]) and
    /// returns its id as the hex quantity clients see.
    pub fn install(&self, kind: FilterKind, last_block: u64) -> RpcResult<String> {
        self.install_at(kind, last_block, current_owner(), Instant::now())
    }

    /// [`Self::install`] for `owner` at time `now` (the tests' clock).
    fn install_at(
        &self,
        kind: FilterKind,
        last_block: u64,
        owner: FilterOwner,
        now: Instant,
    ) -> RpcResult<String> {
        let mut filters = self.filters.lock();
        sweep_expired(&mut filters, now);
        if filters.len() >= MAX_INSTALLED_FILTERS {
            return Err(RpcError::LimitExceeded(format!(
                "too many installed filters (at most {MAX_INSTALLED_FILTERS} for all clients); \
                 uninstall some or wait {FILTER_TIMEOUT_S} s for unpolled ones to expire"
            )));
        }
        let owned = filters.values().filter(|f| f.owner == owner).count();
        if owned >= self.max_per_client {
            return Err(RpcError::LimitExceeded(format!(
                "too many filters installed by {owner} (at most {} per client, \
                 --rpc.max-filters-per-client); uninstall some or wait {FILTER_TIMEOUT_S} s \
                 for unpolled ones to expire",
                self.max_per_client
            )));
        }
        let id = loop {
            let n = self.next_id.fetch_add(1, Ordering::Relaxed);
            let id = self.id_seed.hash_one(n);
            if !filters.contains_key(&id) {
                break id;
            }
        };
        filters.insert(
            id,
            InstalledFilter {
                kind,
                last_block,
                last_poll: now,
                owner,
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
        self.with_at(id, Instant::now(), f)
    }

    /// [`Self::with`] at time `now` (the tests' clock).
    fn with_at<T>(
        &self,
        id: &str,
        now: Instant,
        f: impl FnOnce(&mut InstalledFilter) -> RpcResult<T>,
    ) -> RpcResult<T> {
        let key = parse_id(id)?;
        let mut filters = self.filters.lock();
        sweep_expired(&mut filters, now);
        let filter = filters.get_mut(&key).ok_or_else(|| {
            RpcError::NotFound(format!(
                "filter not found (never installed, uninstalled, or expired after \
                 {FILTER_TIMEOUT_S} s without a poll)"
            ))
        })?;
        filter.last_poll = now;
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

/// Drops the filters not polled for [`FILTER_TIMEOUT_S`]. Run on every install
/// and poll, so an expired filter never answers and never holds a slot that
/// another install needs.
fn sweep_expired(filters: &mut HashMap<u64, InstalledFilter>, now: Instant) {
    let timeout = Duration::from_secs(FILTER_TIMEOUT_S);
    filters.retain(|_, filter| now.saturating_duration_since(filter.last_poll) < timeout);
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const A: FilterOwner = FilterOwner::Remote(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
    const B: FilterOwner = FilterOwner::Remote(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));

    fn install(store: &FilterStore, owner: FilterOwner, now: Instant) -> RpcResult<String> {
        store.install_at(FilterKind::Blocks, 0, owner, now)
    }

    #[test]
    fn a_client_over_its_quota_is_refused_while_another_still_installs() {
        let store = FilterStore::new(3);
        let now = Instant::now();
        for _ in 0..3 {
            install(&store, A, now).unwrap();
        }
        let err = install(&store, A, now).unwrap_err().to_string();
        assert!(err.contains("client 127.0.0.1"), "{err}");
        assert!(err.contains("at most 3 per client"), "{err}");
        install(&store, B, now).unwrap();
    }

    #[test]
    fn uninstalling_gives_the_slot_back() {
        let store = FilterStore::new(1);
        let now = Instant::now();
        let id = install(&store, A, now).unwrap();
        assert!(install(&store, A, now).is_err());
        assert!(!store.uninstall("0x1"), "ids are not a guessable counter");
        assert!(store.uninstall(&id));
        install(&store, A, now).unwrap();
    }

    #[test]
    fn the_global_cap_holds_across_clients() {
        let store = FilterStore::new(MAX_INSTALLED_FILTERS);
        let now = Instant::now();
        for i in 0..MAX_INSTALLED_FILTERS {
            let owner = FilterOwner::Remote(IpAddr::V4(Ipv4Addr::from(i as u32)));
            install(&store, owner, now).unwrap();
        }
        let err = install(&store, B, now).unwrap_err().to_string();
        assert!(err.contains("for all clients"), "{err}");
    }

    #[test]
    fn an_unpolled_filter_expires_and_frees_its_slot() {
        let store = FilterStore::new(1);
        let start = Instant::now();
        let id = install(&store, A, start).unwrap();
        let just_before = start + Duration::from_secs(FILTER_TIMEOUT_S) - Duration::from_secs(1);
        // A poll just before the deadline keeps it, and restarts its clock.
        store.with_at(&id, just_before, |_| Ok(())).unwrap();
        let after_first_deadline = start + Duration::from_secs(FILTER_TIMEOUT_S + 1);
        store
            .with_at(&id, after_first_deadline, |_| Ok(()))
            .unwrap();
        assert!(install(&store, A, after_first_deadline).is_err());

        let expired = after_first_deadline + Duration::from_secs(FILTER_TIMEOUT_S);
        let err = store
            .with_at(&id, expired, |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("filter not found"), "{err}");
        install(&store, A, expired).unwrap();
    }

    #[test]
    fn with_client_names_the_owner_for_one_call_only() {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
        assert_eq!(current_owner(), FilterOwner::Local);
        let inside = with_client(Some(ip), current_owner);
        assert_eq!(inside, FilterOwner::Remote(ip));
        assert_eq!(current_owner(), FilterOwner::Local);
    }
}
