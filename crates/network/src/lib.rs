//! Peer-to-peer networking on libp2p.
