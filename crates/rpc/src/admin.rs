//! The `admin_` namespace, shaped as geth answers it so that operators' tools work:
//! `admin_nodeInfo`, `admin_peers`, `admin_addPeer`, `admin_removePeer`.
//!
//! A peer's address is a libp2p multiaddr ending in `/p2p/<peer id>`, this node's equivalent
//! of an enode URL. The RPC crate knows nothing of libp2p: the node hands the context an
//! [`AdminNetwork`] ([`RpcContext::set_network`]); without one (a `--dev` node) the node
//! reports no peers and refuses to add any.
//!
//! Not in [`crate::PUBLIC_NAMESPACES`]: adding and removing peers is the operator's business.
//! `--dev` serves it, and any node whose `--http.api` names `admin`.

use std::sync::Arc;

use alloy_primitives::{B256, U256};
use jsonrpsee::{core::RpcResult as JsonResult, proc_macros::rpc};
use serde::Serialize;

use crate::{RpcContext, RpcError, RpcResult};

/// What the admin API asks of the peer-to-peer network.
pub trait AdminNetwork: Send + Sync + 'static {
    /// This node's peer id.
    fn local_peer_id(&self) -> String;
    /// The bound listen addresses, each ending in `/p2p/<peer id>`.
    fn listen_addrs(&self) -> Vec<String>;
    /// Connected peers that completed the status handshake.
    fn peers(&self) -> Vec<NetworkPeer>;
    /// How many peers [`Self::peers`] would list.
    fn peer_count(&self) -> usize;
    /// Dials `addr` (a multiaddr ending in `/p2p/<peer id>`) and keeps it connected;
    /// `Err` says what is wrong with the address.
    fn add_peer(&self, addr: &str) -> Result<(), String>;
    /// Disconnects the peer `addr` names and stops dialling it; `Err` as for `add_peer`.
    fn remove_peer(&self, addr: &str) -> Result<(), String>;
}

/// One connected peer, as [`AdminNetwork::peers`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkPeer {
    pub id: String,
    /// The address of its connection.
    pub remote_addr: String,
    /// The addresses it says it listens on.
    pub listen_addrs: Vec<String>,
    pub inbound: bool,
    /// Unix seconds.
    pub connected_since: u64,
    /// Its client name and version, if it said.
    pub name: Option<String>,
    pub head_number: u64,
    pub head_hash: B256,
    pub total_difficulty: U256,
}

/// The `admin_` methods.
#[rpc(server, namespace = "admin")]
pub trait AdminApi {
    #[method(name = "nodeInfo", blocking)]
    fn node_info(&self) -> JsonResult<NodeInfo>;
    #[method(name = "peers")]
    fn peers(&self) -> JsonResult<Vec<PeerResponse>>;
    #[method(name = "addPeer")]
    fn add_peer(&self, addr: String) -> JsonResult<bool>;
    #[method(name = "removePeer")]
    fn remove_peer(&self, addr: String) -> JsonResult<bool>;
}

/// `admin_nodeInfo`. The network fields are `null` on a node without one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// The peer id.
    pub id: Option<String>,
    /// The enode equivalent: the first listen address with `/p2p/<peer id>`.
    pub enode: Option<String>,
    pub name: String,
    pub ip: Option<String>,
    /// The first listen address, without the peer id.
    pub listen_addr: Option<String>,
    pub listen_addrs: Vec<String>,
    pub ports: Option<Ports>,
    pub protocols: Protocols,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Ports {
    /// The DHT runs over the same TCP connections as everything else.
    pub discovery: u16,
    pub listener: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Protocols {
    pub infera: ChainInfo,
}

/// Our chain, as geth's `protocols.eth` describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainInfo {
    /// The network id, which is the chain id.
    pub network: u64,
    pub chain_id: u64,
    pub genesis: B256,
    pub head: B256,
    pub head_number: u64,
}

/// One entry of `admin_peers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerResponse {
    pub id: String,
    /// The enode equivalent: the address it listens on (else that of its connection) with
    /// `/p2p/<peer id>`.
    pub enode: String,
    /// Its client name and version (`""` until it said).
    pub name: String,
    /// Every address known for it: its connection's first, then those it listens on.
    pub addresses: Vec<String>,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// Unix seconds.
    pub connected_since: u64,
    pub network: PeerNetwork,
    /// Its head as of the last status it sent.
    pub head: PeerHead,
    pub protocols: PeerProtocols,
}

/// geth's `network` object of a peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerNetwork {
    pub remote_address: String,
    pub inbound: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerHead {
    pub hash: B256,
    pub number: u64,
    pub total_difficulty: U256,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerProtocols {
    pub infera: PeerHead,
}

/// The IP and TCP port of `/ip4/<ip>/tcp/<port>/...` (or ip6, dns).
fn ip_and_port(addr: &str) -> (Option<String>, Option<u16>) {
    let parts: Vec<&str> = addr.split('/').collect();
    let mut ip = None;
    let mut port = None;
    for pair in parts.windows(2) {
        match pair[0] {
            "ip4" | "ip6" | "dns" | "dns4" | "dns6" if ip.is_none() => {
                ip = Some(pair[1].to_string())
            }
            "tcp" if port.is_none() => port = pair[1].parse().ok(),
            _ => {}
        }
    }
    (ip, port)
}

fn without_peer_id(addr: &str) -> &str {
    addr.find("/p2p/").map_or(addr, |at| &addr[..at])
}

const NO_NETWORK: &str = "this node runs no peer-to-peer network (a --dev node has none)";

impl RpcContext {
    /// `admin_nodeInfo`.
    pub fn admin_node_info(&self) -> RpcResult<NodeInfo> {
        let reader = self.db().reader()?;
        let head_number = self.head(&reader)?;
        let head = reader
            .canonical_hash(head_number)?
            .ok_or_else(|| RpcError::NotFound(format!("no canonical block {head_number}")))?;
        let genesis = reader
            .genesis_hash()?
            .ok_or_else(|| RpcError::Evm("the database holds no genesis".into()))?;
        let chain_id = self.chain().chain_id();
        let mut info = NodeInfo {
            id: None,
            enode: None,
            name: self.client_version(),
            ip: None,
            listen_addr: None,
            listen_addrs: Vec::new(),
            ports: None,
            protocols: Protocols {
                infera: ChainInfo {
                    network: chain_id,
                    chain_id,
                    genesis,
                    head,
                    head_number,
                },
            },
        };
        if let Some(network) = self.network() {
            info.id = Some(network.local_peer_id());
            info.listen_addrs = network.listen_addrs();
            if let Some(first) = info.listen_addrs.first() {
                let (ip, port) = ip_and_port(first);
                info.ip = ip;
                info.ports = port.map(|port| Ports {
                    discovery: port,
                    listener: port,
                });
                info.listen_addr = Some(without_peer_id(first).to_string());
                info.enode = Some(first.clone());
            }
        }
        Ok(info)
    }

    /// `admin_peers`: the handshaken peers, longest connected first.
    pub fn admin_peers(&self) -> Vec<PeerResponse> {
        let Some(network) = self.network() else {
            return Vec::new();
        };
        let mut peers: Vec<PeerResponse> = network
            .peers()
            .into_iter()
            .map(|peer| {
                let listening = peer.listen_addrs.first().unwrap_or(&peer.remote_addr);
                let enode = format!("{}/p2p/{}", without_peer_id(listening), peer.id);
                let mut addresses = vec![peer.remote_addr.clone()];
                addresses.extend(
                    peer.listen_addrs
                        .iter()
                        .filter(|a| **a != peer.remote_addr)
                        .cloned(),
                );
                let head = PeerHead {
                    hash: peer.head_hash,
                    number: peer.head_number,
                    total_difficulty: peer.total_difficulty,
                };
                PeerResponse {
                    enode,
                    name: peer.name.unwrap_or_default(),
                    addresses,
                    direction: if peer.inbound { "inbound" } else { "outbound" },
                    connected_since: peer.connected_since,
                    network: PeerNetwork {
                        remote_address: peer.remote_addr,
                        inbound: peer.inbound,
                    },
                    protocols: PeerProtocols {
                        infera: head.clone(),
                    },
                    head,
                    id: peer.id,
                }
            })
            .collect();
        peers.sort_by(|a, b| (a.connected_since, &a.id).cmp(&(b.connected_since, &b.id)));
        peers
    }

    /// `admin_addPeer`: true once the dial is queued (as geth, not once connected).
    pub fn admin_add_peer(&self, addr: &str) -> RpcResult<bool> {
        let network = self
            .network()
            .ok_or_else(|| RpcError::NotFound(NO_NETWORK.into()))?;
        network
            .add_peer(addr.trim())
            .map_err(RpcError::InvalidParams)?;
        Ok(true)
    }

    /// `admin_removePeer`: true once the disconnection is queued.
    pub fn admin_remove_peer(&self, addr: &str) -> RpcResult<bool> {
        let network = self
            .network()
            .ok_or_else(|| RpcError::NotFound(NO_NETWORK.into()))?;
        network
            .remove_peer(addr.trim())
            .map_err(RpcError::InvalidParams)?;
        Ok(true)
    }

    /// The peer-to-peer network, if the node runs one.
    pub(crate) fn network(&self) -> Option<&Arc<dyn AdminNetwork>> {
        self.network_slot().get()
    }
}

impl AdminApiServer for RpcContext {
    fn node_info(&self) -> JsonResult<NodeInfo> {
        Ok(self.admin_node_info()?)
    }
    fn peers(&self) -> JsonResult<Vec<PeerResponse>> {
        Ok(self.admin_peers())
    }
    fn add_peer(&self, addr: String) -> JsonResult<bool> {
        Ok(self.admin_add_peer(&addr)?)
    }
    fn remove_peer(&self, addr: String) -> JsonResult<bool> {
        Ok(self.admin_remove_peer(&addr)?)
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;
    use crate::{RpcConfig, test_context::dev_context};

    const ID: &str = "12D3KooWLocal";

    #[derive(Default)]
    struct FakeNetwork {
        added: Mutex<Vec<String>>,
    }

    impl AdminNetwork for FakeNetwork {
        fn local_peer_id(&self) -> String {
            ID.into()
        }
        fn listen_addrs(&self) -> Vec<String> {
            vec![format!("/ip4/10.0.0.1/tcp/30303/p2p/{ID}")]
        }
        fn peers(&self) -> Vec<NetworkPeer> {
            vec![NetworkPeer {
                id: "12D3KooWPeer".into(),
                remote_addr: "/ip4/10.0.0.2/tcp/50000".into(),
                listen_addrs: vec!["/ip4/10.0.0.2/tcp/30303".into()],
                inbound: true,
                connected_since: 1_700_000_000,
                name: Some("infera/0.1.0".into()),
                head_number: 7,
                head_hash: B256::repeat_byte(7),
                total_difficulty: U256::from(14),
            }]
        }
        fn peer_count(&self) -> usize {
            1
        }
        fn add_peer(&self, addr: &str) -> Result<(), String> {
            if !addr.contains("/p2p/") {
                return Err(format!(
                    "peer address {addr}: it does not end in /p2p/<peer id>"
                ));
            }
            self.added.lock().push(addr.into());
            Ok(())
        }
        fn remove_peer(&self, addr: &str) -> Result<(), String> {
            self.add_peer(addr)
        }
    }

    #[test]
    fn without_a_network_the_chain_is_reported_and_peers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dev_context(dir.path(), RpcConfig::default());
        let info = ctx.admin_node_info().unwrap();
        assert_eq!(info.id, None);
        assert_eq!(info.protocols.infera.chain_id, ctx.chain().chain_id());
        assert_eq!(info.protocols.infera.head_number, 0);
        assert_eq!(info.protocols.infera.head, info.protocols.infera.genesis);
        assert!(ctx.admin_peers().is_empty());
        let err = ctx.admin_add_peer("/ip4/1.2.3.4/tcp/1/p2p/x").unwrap_err();
        assert!(err.to_string().contains("no peer-to-peer network"), "{err}");
    }

    #[test]
    fn with_a_network_node_info_and_peers_take_geths_shape() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dev_context(dir.path(), RpcConfig::default());
        let network = Arc::new(FakeNetwork::default());
        ctx.set_network(network.clone());
        let info = serde_json::to_value(ctx.admin_node_info().unwrap()).unwrap();
        assert_eq!(info["id"], ID);
        assert_eq!(info["enode"], format!("/ip4/10.0.0.1/tcp/30303/p2p/{ID}"));
        assert_eq!(info["ip"], "10.0.0.1");
        assert_eq!(info["listenAddr"], "/ip4/10.0.0.1/tcp/30303");
        assert_eq!(info["ports"]["listener"], 30303);
        assert_eq!(info["protocols"]["infera"]["network"], 6174);

        let peers = serde_json::to_value(ctx.admin_peers()).unwrap();
        let peer = &peers[0];
        assert_eq!(peer["id"], "12D3KooWPeer");
        assert_eq!(peer["enode"], "/ip4/10.0.0.2/tcp/30303/p2p/12D3KooWPeer");
        assert_eq!(peer["direction"], "inbound");
        assert_eq!(peer["network"]["inbound"], true);
        assert_eq!(peer["connectedSince"], 1_700_000_000);
        assert_eq!(peer["head"]["number"], 7);
        assert_eq!(
            peer["addresses"],
            serde_json::json!(["/ip4/10.0.0.2/tcp/50000", "/ip4/10.0.0.2/tcp/30303"])
        );

        assert!(ctx.admin_add_peer(" /ip4/10.0.0.3/tcp/1/p2p/x ").unwrap());
        assert_eq!(*network.added.lock(), vec!["/ip4/10.0.0.3/tcp/1/p2p/x"]);
        let err = ctx.admin_remove_peer("nonsense").unwrap_err();
        let object = jsonrpsee::types::ErrorObjectOwned::from(err);
        assert_eq!(object.code(), -32602);
        assert!(
            object.message().contains("/p2p/<peer id>"),
            "{}",
            object.message()
        );
    }
}
