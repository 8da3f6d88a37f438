//! Configuration and the limits the network layer enforces.

use std::{path::PathBuf, time::Duration};

use alloy_primitives::B256;
use libp2p::Multiaddr;

/// Largest gossip payload (a block's RLP or a transaction's EIP-2718 bytes).
/// EIP-7934 caps a block's RLP at 10 MiB; one more MiB leaves room for our own encoding
/// differences without letting a peer push arbitrarily large messages.
pub const MAX_GOSSIP_PAYLOAD_BYTES: usize = 11 * 1024 * 1024;
/// Gossipsub frame limit: the payload plus the envelope (topic, signature, key, sequence number).
pub const MAX_GOSSIP_TRANSMIT_BYTES: usize = MAX_GOSSIP_PAYLOAD_BYTES + 64 * 1024;
/// Largest request read from a peer. Requests are a status or two integers: a few hundred bytes.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest response read from (and written to) a peer.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// The `max_bytes` handed to [`crate::ChainView::blocks`]: the view may exceed it by one block
/// (at most [`MAX_GOSSIP_PAYLOAD_BYTES`]), which must still fit a response.
pub const RANGE_SOFT_LIMIT_BYTES: usize = 4 * 1024 * 1024;
/// Room left in a response for CBOR framing of the blocks (a few bytes per block).
pub const RESPONSE_OVERHEAD_BYTES: usize = 64 * 1024;
/// Most blocks served for one range request; larger requests are clamped to this.
pub const MAX_BLOCKS_PER_REQUEST: u64 = 128;
/// Most peers whose bans are remembered; beyond it the ban closest to expiry is forgotten first.
pub const MAX_BANNED_PEERS: usize = 1024;
/// Most requests of ours waiting for an answer at once.
pub const MAX_PENDING_OUTBOUND_REQUESTS: usize = 256;
/// Most inbound requests being served (reading the chain on blocking threads) at once;
/// beyond it peers get a `Busy` answer instead of queueing work.
pub const MAX_CONCURRENT_SERVES: usize = 32;
/// Most concurrent request-response streams on one connection.
pub const MAX_STREAMS_PER_CONNECTION: usize = 32;
/// Most per-peer request limiters kept; beyond it those of disconnected peers are dropped.
pub const MAX_TRACKED_LIMITERS: usize = 1024;
/// Capacity of the channel from [`crate::NetworkHandle`] to the network task.
pub const COMMAND_CHANNEL_CAPACITY: usize = 1024;
/// How many rate-limit violations a peer may commit in a burst before it is banned;
/// the allowance refills at [`RATE_VIOLATIONS_REFILL_PER_SECOND`].
pub const RATE_VIOLATIONS_BURST: u32 = 20;
/// Refill rate of the violation allowance: a peer that keeps exceeding its request rate
/// by more than this many requests per second is banned.
pub const RATE_VIOLATIONS_REFILL_PER_SECOND: u32 = 1;
/// A connection with no open stream is closed after this long.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait at start for the listener to report its bound address.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Most dials that discovery (and the known peers of earlier runs) keeps in flight at once.
pub const MAX_DISCOVERY_DIALS: usize = 8;
/// Most discovered peers waiting to be dialled; beyond it newly found ones are dropped
/// (the next random walk finds them again if they are still about).
pub const MAX_DIAL_CANDIDATES: usize = 256;
/// The first random walk of the DHT starts this soon, and again this soon after a walk
/// that found someone new.
pub const MIN_WALK_INTERVAL: Duration = Duration::from_secs(1);
/// A walk that finds nobody new doubles the wait before the next, up to this.
pub const MAX_WALK_INTERVAL: Duration = Duration::from_secs(60);
/// How long one DHT query may run.
pub const DHT_QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most addresses taken from a peer's identify message (for the DHT and for known peers).
pub const MAX_ADDRS_PER_PEER: usize = 4;
/// Most peers remembered in the known-peers file; the longest unseen are forgotten first.
pub const MAX_KNOWN_PEERS: usize = 256;
/// A known-peers file larger than this is not read (ours stay far below it).
pub const MAX_KNOWN_PEERS_FILE_BYTES: u64 = 1024 * 1024;
/// How often the known peers are written when they changed (and once at shutdown).
pub const KNOWN_PEERS_SAVE_INTERVAL: Duration = Duration::from_secs(30);
/// Most peers added by `add_peer` (and re-dialled like bootnodes); the oldest goes first.
pub const MAX_STATIC_PEERS: usize = 64;

const _: () = assert!(
    RANGE_SOFT_LIMIT_BYTES + MAX_GOSSIP_PAYLOAD_BYTES + RESPONSE_OVERHEAD_BYTES
        <= MAX_RESPONSE_BYTES,
    "a range response (soft limit plus one maximal block) must fit the response limit"
);
const _: () = assert!(MAX_GOSSIP_PAYLOAD_BYTES < MAX_GOSSIP_TRANSMIT_BYTES);

/// Longest accepted [`NetworkConfig::ban_duration`] (a year): bans are in memory and end with
/// the process anyway, and the bound keeps `now + duration` far from overflowing.
pub const MAX_BAN_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);
const _: () = assert!(DEFAULT_BAN_DURATION.as_secs() <= MAX_BAN_DURATION.as_secs());

/// Default for [`NetworkConfig::max_peers`].
pub const DEFAULT_MAX_PEERS: u32 = 50;
/// Default for [`NetworkConfig::gossip_heartbeat`] (gossipsub's own default).
pub const DEFAULT_GOSSIP_HEARTBEAT: Duration = Duration::from_secs(1);
/// Default for [`NetworkConfig::redial_interval`].
pub const DEFAULT_REDIAL_INTERVAL: Duration = Duration::from_secs(5);
/// Default for [`NetworkConfig::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`NetworkConfig::ban_duration`].
pub const DEFAULT_BAN_DURATION: Duration = Duration::from_secs(60 * 60);
/// Default for [`NetworkConfig::inbound_requests_per_second`].
pub const DEFAULT_INBOUND_REQUESTS_PER_SECOND: u32 = 10;
/// Default for [`NetworkConfig::inbound_request_burst`].
pub const DEFAULT_INBOUND_REQUEST_BURST: u32 = 20;
/// Default for [`NetworkConfig::event_channel_capacity`].
pub const DEFAULT_EVENT_CHANNEL_CAPACITY: usize = 1024;

/// How to run the network layer. [`Default`] gives the documented defaults with a listen
/// address of `/ip4/0.0.0.0/tcp/30303`, no bootnodes, a key file `node.key` in the current
/// directory and a zero genesis hash: callers set at least `key_file` and `genesis_hash`.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Where to listen, e.g. `/ip4/127.0.0.1/tcp/30303`; port 0 picks any free port.
    pub listen_addr: Multiaddr,
    /// Peers dialled at start and re-dialled every `redial_interval` while disconnected.
    /// Each must end in `/p2p/<peer id>`.
    pub bootnodes: Vec<Multiaddr>,
    /// The persistent ed25519 node key (hex of the 32-byte secret). Created with mode 0600 if
    /// missing; an unreadable or malformed file is an error, never replaced.
    pub key_file: PathBuf,
    /// Genesis of our chain: part of the gossip topic names and checked in the status handshake.
    pub genesis_hash: B256,
    /// Our chain id: with the genesis, part of the DHT protocol name, so that nodes of
    /// different chains never share a routing table.
    pub chain_id: u64,
    /// Find peers beyond the bootnodes through the Kademlia DHT (and dial the known peers of
    /// earlier runs). Without it the node only dials its bootnodes and added peers.
    pub discovery: bool,
    /// Where the peers met are remembered across restarts (`None`: nowhere). A missing file is
    /// an empty list; a corrupt one is logged and ignored (and replaced at the next save).
    pub known_peers_file: Option<PathBuf>,
    /// Most established connections, inbound and outbound together. Discovery dials only
    /// while fewer than half of them are outbound, leaving the rest to nodes that dial us
    /// (if every node filled its slots by dialling, a new node could join nobody).
    pub max_peers: u32,
    /// Gossipsub heartbeat: how often meshes are repaired. Tests use ~100 ms.
    pub gossip_heartbeat: Duration,
    /// How often disconnected bootnodes are dialled again.
    pub redial_interval: Duration,
    /// How long a request to a peer may take before it fails.
    pub request_timeout: Duration,
    /// How long a penalized peer is refused.
    pub ban_duration: Duration,
    /// Sustained rate of requests a peer may send us.
    pub inbound_requests_per_second: u32,
    /// Requests a peer may send at once before the rate applies.
    pub inbound_request_burst: u32,
    /// Capacity of the event channel to the node. When it is full, gossip events are dropped
    /// (and counted) rather than stalling the network task.
    pub event_channel_capacity: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen_addr: "/ip4/0.0.0.0/tcp/30303"
                .parse()
                .expect("a valid multiaddr literal"),
            bootnodes: Vec::new(),
            key_file: PathBuf::from("node.key"),
            genesis_hash: B256::ZERO,
            chain_id: 0,
            discovery: true,
            known_peers_file: None,
            max_peers: DEFAULT_MAX_PEERS,
            gossip_heartbeat: DEFAULT_GOSSIP_HEARTBEAT,
            redial_interval: DEFAULT_REDIAL_INTERVAL,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            ban_duration: DEFAULT_BAN_DURATION,
            inbound_requests_per_second: DEFAULT_INBOUND_REQUESTS_PER_SECOND,
            inbound_request_burst: DEFAULT_INBOUND_REQUEST_BURST,
            event_channel_capacity: DEFAULT_EVENT_CHANNEL_CAPACITY,
        }
    }
}
