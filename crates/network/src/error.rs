//! The crate's one error type.

use std::path::PathBuf;

use alloy_primitives::B256;
use libp2p::{Multiaddr, PeerId};

use crate::codec::ServeError;

/// Result alias for this crate.
pub type NetworkResult<T> = Result<T, NetworkError>;

/// Everything that can go wrong in the network layer, each variant naming its cause.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The node key file exists but cannot be read or does not hold a key.
    /// It is never replaced silently: a new key would change the node's identity.
    #[error("node key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    /// A bootnode address must end in `/p2p/<peer id>` so that the peer can be authenticated.
    #[error("bootnode address {addr} does not end in /p2p/<peer id>")]
    BootnodeWithoutPeerId { addr: Multiaddr },
    /// A peer's address (given to `add_peer` or `remove_peer`) cannot be used.
    #[error("peer address {addr}: {reason}")]
    BadPeerAddress { addr: Multiaddr, reason: String },
    /// The peer is banned, so it is not dialled.
    #[error("peer {0} is banned")]
    Banned(PeerId),
    /// The transport (TCP + noise + yamux) could not be built.
    #[error("building the libp2p transport failed: {0}")]
    Transport(String),
    /// A gossipsub or request-response component refused its configuration.
    #[error("invalid network configuration: {0}")]
    Config(String),
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    /// The network task has stopped (shut down, or all handles dropped).
    #[error("the network task has stopped")]
    Stopped,
    /// A request was addressed to a peer with no open connection.
    #[error("peer {0} is not connected")]
    NotConnected(PeerId),
    /// Too many requests of ours are waiting for answers.
    #[error("too many outbound requests in flight (limit {0})")]
    TooManyRequests(usize),
    /// The request failed on the wire (dial failure, timeout, closed connection, I/O).
    #[error("request to {peer} failed: {reason}")]
    Request { peer: PeerId, reason: String },
    /// The peer answered with an error instead of data.
    #[error("peer {peer} refused the request: {error}")]
    Refused { peer: PeerId, error: ServeError },
    /// The peer answered with something that does not fit the request.
    #[error("peer {peer} sent an invalid response: {reason}")]
    InvalidResponse { peer: PeerId, reason: String },
    /// The peer is on another chain (its status names another genesis).
    #[error("peer {peer} is on another chain: its genesis is {theirs}")]
    GenesisMismatch { peer: PeerId, theirs: B256 },
    /// Reading our own chain status failed (the blocking task panicked).
    #[error("reading the local chain status failed: {0}")]
    ChainView(String),
}
