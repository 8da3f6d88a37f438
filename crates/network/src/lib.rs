//! Peer-to-peer networking on libp2p.
//!
//! This crate moves bytes and manages peers; it knows nothing of EVM types. Blocks travel as
//! their RLP, transactions as EIP-2718 bytes. The node drives it through [`NetworkHandle`]
//! and receives [`NetworkEvent`]s; it answers the network's questions through [`ChainView`].
//!
//! Wire protocols, all over TCP + noise + yamux:
//! - gossipsub (`/infera/<genesis>/blocks/1`, `/infera/<genesis>/txs/1`, where `<genesis>` is
//!   the first 8 bytes of the genesis hash in hex, so different chains never share a topic),
//!   in validation mode: a message is forwarded only once the node reports it acceptable;
//! - request-response (`/infera/req/1`, CBOR): the status handshake (where a peer of another
//!   chain is banned) and block ranges;
//! - identify;
//! - Kademlia (`/infera/<chain id>/<genesis>/kad/1.0.0`), for discovery only (no records).
//!
//! Peers are found through the configured bootnodes (dialled at start and again while
//! disconnected), the peers added by [`NetworkHandle::add_peer`] (likewise), the known peers of
//! earlier runs ([`NetworkConfig::known_peers_file`]) and, with [`NetworkConfig::discovery`],
//! random walks of the DHT. Every limit is a named constant or a [`NetworkConfig`] field; see
//! [`config`].
//!
//! Misbehaviour and its cost: an undecodable or oversized request, a status naming another
//! genesis, or a request rate persistently above the limit gets the peer banned (disconnected
//! and refused both ways for [`NetworkConfig::ban_duration`]); a gossip message the node
//! rejects lowers the forwarder's gossipsub score (three rejections in quick succession
//! graylist it); [`NetworkHandle::penalize`] bans on the node's behalf.
//!
//! All swarm work runs on one task. Gossipsub signs and hashes a message on that task when it
//! is published: for a 10 MiB block that is tens of milliseconds in a release build (seconds
//! in an unoptimised one).

mod codec;
pub mod config;
mod error;
mod key;
mod known_peers;
mod rate;
mod service;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use alloy_primitives::{B256, U256};
use libp2p::gossipsub::MessageId;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use codec::ServeError;
pub use config::NetworkConfig;
pub use error::{NetworkError, NetworkResult};
pub use key::load_or_create_key;
use libp2p::multiaddr;
pub use libp2p::{Multiaddr, PeerId};

use crate::{
    codec::{Request, Response},
    config::{MAX_BLOCKS_PER_REQUEST, MAX_GOSSIP_PAYLOAD_BYTES},
};

/// A node's view of its chain, exchanged in the handshake and on request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub genesis_hash: B256,
    pub head_number: u64,
    pub head_hash: B256,
    pub total_difficulty: U256,
}

/// What the network asks of the node. Always called from a blocking thread
/// (`tokio::task::spawn_blocking`), never on the async executor, so implementations may read
/// the database directly.
pub trait ChainView: Send + Sync + 'static {
    /// Our current status.
    fn status(&self) -> Status;
    /// Canonical blocks `start..start + count` as RLP, stopping early at the head or once
    /// `max_bytes` is exceeded (at least one block if any exists).
    fn blocks(&self, start: u64, count: u64, max_bytes: usize) -> Vec<Vec<u8>>;
}

/// Identifies a received gossip message, to report a [`Verdict`] on it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GossipId {
    message_id: MessageId,
    /// The peer that forwarded it to us (not necessarily its author).
    source: PeerId,
}

impl GossipId {
    /// The peer that forwarded the message to us.
    pub fn source(&self) -> PeerId {
        self.source
    }
}

/// The node's judgement of a gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it to our mesh peers.
    Accept,
    /// Not forwarded, nobody penalized (e.g. a block we already have, a transaction the pool
    /// is too full for).
    Ignore,
    /// Invalid: not forwarded, and the source's gossip score drops (repeated offenders are
    /// graylisted by gossipsub).
    Reject,
}

/// What the network tells the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkEvent {
    /// A peer completed the status handshake that runs on every new connection. A peer with
    /// another genesis is banned and never reported.
    PeerConnected { peer: PeerId, status: Status },
    /// A reported peer's last connection closed.
    PeerDisconnected { peer: PeerId },
    /// A block's RLP arrived by gossip. Report a [`Verdict`] with [`NetworkHandle::report`].
    NewBlock {
        source: PeerId,
        id: GossipId,
        block: Vec<u8>,
    },
    /// A transaction's EIP-2718 bytes arrived by gossip. Report a [`Verdict`].
    NewTransaction {
        source: PeerId,
        id: GossipId,
        tx: Vec<u8>,
    },
}

/// Which gossip topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Topic {
    Blocks,
    Transactions,
}

impl Topic {
    /// The metrics' `topic` label.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::Blocks => "block",
            Self::Transactions => "tx",
        }
    }
}

/// What a handle asks of the network task.
pub(crate) enum Command {
    Publish {
        topic: Topic,
        data: Vec<u8>,
    },
    Report {
        id: GossipId,
        verdict: Verdict,
    },
    Request {
        peer: PeerId,
        request: Request,
        reply: oneshot::Sender<NetworkResult<Response>>,
    },
    Penalize {
        peer: PeerId,
        reason: String,
    },
    /// Dial the peer now, and again whenever it is disconnected.
    AddPeer {
        peer: PeerId,
        addr: Multiaddr,
    },
    /// Stop re-dialling the peer, forget it and disconnect it.
    RemovePeer {
        peer: PeerId,
    },
    Shutdown,
}

/// One connected peer, as the admin API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub peer: PeerId,
    /// The address of the first connection (theirs if we dialled, the socket's if they did).
    pub remote_addr: Multiaddr,
    /// The addresses it says it listens on (identify), if it said so yet.
    pub listen_addrs: Vec<Multiaddr>,
    /// Whether it dialled us.
    pub inbound: bool,
    /// When the first of its current connections was established.
    pub connected_since: std::time::SystemTime,
    /// Its client name and version (identify), if it said so yet.
    pub agent: Option<String>,
    /// Its last known status: head and total difficulty.
    pub status: Status,
}

/// What the network task records of a connected peer, for [`PeerInfo`].
#[derive(Clone, Debug)]
pub(crate) struct Connection {
    pub(crate) remote_addr: Multiaddr,
    pub(crate) inbound: bool,
    pub(crate) since: std::time::SystemTime,
    pub(crate) listen_addrs: Vec<Multiaddr>,
    pub(crate) agent: Option<String>,
}

/// The peer id at the end of `/.../p2p/<id>`.
pub(crate) fn peer_of(addr: &Multiaddr) -> NetworkResult<PeerId> {
    match addr.iter().last() {
        Some(multiaddr::Protocol::P2p(peer)) => Ok(peer),
        _ => Err(NetworkError::BadPeerAddress {
            addr: addr.clone(),
            reason: "it does not end in /p2p/<peer id>".into(),
        }),
    }
}

/// State the network task shares with handles.
#[derive(Default)]
pub(crate) struct Shared {
    /// Handshaken peers and their last known status.
    pub(crate) peers: RwLock<std::collections::HashMap<PeerId, Status>>,
    /// Every connected peer (handshaken or not), from its first connection to its last.
    pub(crate) connections: RwLock<std::collections::HashMap<PeerId, Connection>>,
    /// Bound listen addresses, each ending in `/p2p/<local peer id>`.
    pub(crate) listen_addrs: RwLock<Vec<Multiaddr>>,
    /// Banned peers and when their ban ends; at most [`config::MAX_BANNED_PEERS`].
    pub(crate) bans: RwLock<std::collections::HashMap<PeerId, std::time::Instant>>,
    /// Gossip events dropped because the node did not keep up with the event channel.
    pub(crate) dropped_gossip_events: AtomicU64,
    /// Commands dropped because the command channel was full.
    pub(crate) dropped_commands: AtomicU64,
}

/// Starts the network: loads (or creates) the node key, binds the listen address, dials the
/// bootnodes and spawns the network task on the current tokio runtime.
///
/// Returns once the listener is bound, so [`NetworkHandle::listen_addrs`] is usable at once.
pub async fn start(
    config: NetworkConfig,
    chain: Arc<dyn ChainView>,
) -> NetworkResult<(NetworkHandle, mpsc::Receiver<NetworkEvent>)> {
    service::start(config, chain).await
}

/// A cheap, cloneable handle to the network task. The task stops on [`NetworkHandle::shutdown`]
/// or when every handle has been dropped.
#[derive(Clone)]
pub struct NetworkHandle {
    local_peer_id: PeerId,
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    chain: Arc<dyn ChainView>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for NetworkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkHandle")
            .field("local_peer_id", &self.local_peer_id)
            .finish_non_exhaustive()
    }
}

impl NetworkHandle {
    /// Our peer id (derived from the node key).
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// The addresses actually bound (port 0 resolved), each ending in `/p2p/<local peer id>`:
    /// ready to be used as another node's bootnode.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.shared.listen_addrs.read().clone()
    }

    /// Gossips a block's RLP. Never fails: with no subscribed peer yet, or a block that is too
    /// large, the message is dropped and logged (a block is also fetched by range sync).
    pub fn publish_block(&self, block: Vec<u8>) {
        self.publish(Topic::Blocks, block);
    }

    /// Gossips a transaction's EIP-2718 bytes. Never fails, like [`Self::publish_block`].
    pub fn publish_transaction(&self, tx: Vec<u8>) {
        self.publish(Topic::Transactions, tx);
    }

    fn publish(&self, topic: Topic, data: Vec<u8>) {
        if data.len() > MAX_GOSSIP_PAYLOAD_BYTES {
            tracing::warn!(target: "infera::net", ?topic, bytes = data.len(), limit = MAX_GOSSIP_PAYLOAD_BYTES, "not publishing an oversized gossip message");
            return;
        }
        self.send_command(Command::Publish { topic, data });
    }

    /// Reports the node's verdict on a gossip message. Gossip runs in validation mode: the
    /// message is forwarded to other peers only after [`Verdict::Accept`].
    pub fn report(&self, id: GossipId, verdict: Verdict) {
        self.send_command(Command::Report { id, verdict });
    }

    /// Disconnects the peer and refuses it (both directions) for the configured ban duration,
    /// logging `reason`.
    pub fn penalize(&self, peer: PeerId, reason: &str) {
        self.send_command(Command::Penalize {
            peer,
            reason: reason.to_string(),
        });
    }

    /// Connected, handshaken peers with their last known status.
    pub fn peers(&self) -> Vec<(PeerId, Status)> {
        self.shared
            .peers
            .read()
            .iter()
            .map(|(peer, status)| (*peer, status.clone()))
            .collect()
    }

    /// Connected, handshaken peers with what is known of their connections.
    pub fn peer_infos(&self) -> Vec<PeerInfo> {
        let peers = self.shared.peers.read();
        let connections = self.shared.connections.read();
        let mut infos: Vec<PeerInfo> = peers
            .iter()
            .filter_map(|(peer, status)| {
                let connection = connections.get(peer)?;
                Some(PeerInfo {
                    peer: *peer,
                    remote_addr: connection.remote_addr.clone(),
                    listen_addrs: connection.listen_addrs.clone(),
                    inbound: connection.inbound,
                    connected_since: connection.since,
                    agent: connection.agent.clone(),
                    status: status.clone(),
                })
            })
            .collect();
        infos.sort_by_key(|info| info.connected_since);
        infos
    }

    /// Whether the node accepts connections: at least one listen address is bound.
    pub fn is_listening(&self) -> bool {
        !self.shared.listen_addrs.read().is_empty()
    }

    /// Dials the peer at `addr` (which must end in `/p2p/<peer id>`) and keeps dialling it
    /// whenever it is disconnected, as a bootnode (at most [`config::MAX_STATIC_PEERS`] such
    /// peers; the oldest is dropped). Returns once the dial is queued, not connected.
    pub fn add_peer(&self, addr: Multiaddr) -> NetworkResult<PeerId> {
        let peer = peer_of(&addr)?;
        if !addr
            .iter()
            .any(|p| matches!(p, multiaddr::Protocol::Tcp(_)))
        {
            return Err(NetworkError::BadPeerAddress {
                addr,
                reason: "this node dials TCP only; the address has no /tcp/<port>".into(),
            });
        }
        if peer == self.local_peer_id {
            return Err(NetworkError::BadPeerAddress {
                addr,
                reason: "that is this node's own peer id".into(),
            });
        }
        if self.shared.bans.read().contains_key(&peer) {
            return Err(NetworkError::Banned(peer));
        }
        self.send_command(Command::AddPeer { peer, addr });
        Ok(peer)
    }

    /// Disconnects the peer that `addr` names (by its `/p2p/<peer id>`; the rest of the address
    /// is not compared), stops re-dialling it if it was added, and forgets it for discovery and
    /// the known-peers file. It may come back by dialling us or through a bootnode's DHT.
    pub fn remove_peer(&self, addr: &Multiaddr) -> NetworkResult<PeerId> {
        let peer = peer_of(addr)?;
        self.send_command(Command::RemovePeer { peer });
        Ok(peer)
    }

    /// Peers currently banned (by [`Self::penalize`] or for misbehaving on the wire).
    pub fn banned_peers(&self) -> Vec<PeerId> {
        self.shared.bans.read().keys().copied().collect()
    }

    /// Gossip events dropped so far because the node did not drain the event channel in time.
    pub fn dropped_gossip_events(&self) -> u64 {
        self.shared.dropped_gossip_events.load(Ordering::Relaxed)
    }

    /// Commands (publish, report, penalize) dropped so far because the network task did not
    /// keep up with [`config::COMMAND_CHANNEL_CAPACITY`] queued commands.
    pub fn dropped_commands(&self) -> u64 {
        self.shared.dropped_commands.load(Ordering::Relaxed)
    }

    /// Asks a connected peer for its status (sending ours, as in the handshake).
    pub async fn request_status(&self, peer: PeerId) -> NetworkResult<Status> {
        let chain = Arc::clone(&self.chain);
        let ours = tokio::task::spawn_blocking(move || chain.status())
            .await
            .map_err(|e| NetworkError::ChainView(e.to_string()))?;
        match self.request(peer, Request::Status(ours)).await? {
            Response::Status(status) => Ok(status),
            Response::Error(error) => Err(NetworkError::Refused { peer, error }),
            Response::Blocks(_) => Err(NetworkError::InvalidResponse {
                peer,
                reason: "blocks in answer to a status request".into(),
            }),
        }
    }

    /// Asks a connected peer for canonical blocks `start..start + count` (RLP). The peer serves
    /// at most [`MAX_BLOCKS_PER_REQUEST`] blocks and may stop early (at its head or its response
    /// size limit); an empty answer means it has no block at `start`.
    pub async fn request_blocks(
        &self,
        peer: PeerId,
        start: u64,
        count: u64,
    ) -> NetworkResult<Vec<Vec<u8>>> {
        match self.request(peer, Request::Blocks { start, count }).await? {
            Response::Blocks(blocks) => {
                let most = count.min(MAX_BLOCKS_PER_REQUEST);
                if blocks.len() as u64 > most {
                    return Err(NetworkError::InvalidResponse {
                        peer,
                        reason: format!("{} blocks for a request of at most {most}", blocks.len()),
                    });
                }
                Ok(blocks.into_iter().map(|b| b.into_vec()).collect())
            }
            Response::Error(error) => Err(NetworkError::Refused { peer, error }),
            Response::Status(_) => Err(NetworkError::InvalidResponse {
                peer,
                reason: "status in answer to a blocks request".into(),
            }),
        }
    }

    async fn request(&self, peer: PeerId, request: Request) -> NetworkResult<Response> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Request {
                peer,
                request,
                reply,
            })
            .await
            .map_err(|_| NetworkError::Stopped)?;
        answer.await.map_err(|_| NetworkError::Stopped)?
    }

    fn send_command(&self, command: Command) {
        match self.commands.try_send(command) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.dropped_commands.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "infera::net", "network command channel full; command dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!(target: "infera::net", "network task stopped; command dropped");
            }
        }
    }

    /// Stops the network task and waits for it: connections are closed and the listener
    /// released. Other clones of the handle then fail with [`NetworkError::Stopped`].
    pub async fn shutdown(self) {
        // A full channel must not prevent shutdown: wait for room.
        let _ = self.commands.send(Command::Shutdown).await;
        let task = self.task.lock().take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::warn!(target: "infera::net", "network task ended abnormally: {e}");
        }
    }
}
