//! The network as the `admin_` RPC namespace sees it: [`infera_rpc::admin::AdminNetwork`]
//! over the network handle, with peer ids and addresses as strings.

use std::time::UNIX_EPOCH;

use infera_network::{Multiaddr, NetworkHandle};
use infera_rpc::admin::{AdminNetwork, NetworkPeer};

/// The node's network handle, for the RPC.
pub(crate) struct NetAdmin(pub(crate) NetworkHandle);

/// Parses a peer address given to `admin_addPeer`/`admin_removePeer`, naming what is wrong.
fn parse(addr: &str) -> Result<Multiaddr, String> {
    if addr.starts_with("enode://") {
        return Err(format!(
            "`{addr}` is an enode URL; this node's peers are multiaddrs such as /ip4/10.0.0.1/tcp/30303/p2p/<peer id> (see admin_nodeInfo's enode)"
        ));
    }
    addr.parse()
        .map_err(|e| format!("`{addr}` is not a multiaddr: {e}"))
}

impl AdminNetwork for NetAdmin {
    fn local_peer_id(&self) -> String {
        self.0.local_peer_id().to_string()
    }

    fn listen_addrs(&self) -> Vec<String> {
        self.0
            .listen_addrs()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn peers(&self) -> Vec<NetworkPeer> {
        self.0
            .peer_infos()
            .into_iter()
            .map(|info| NetworkPeer {
                id: info.peer.to_string(),
                remote_addr: info.remote_addr.to_string(),
                listen_addrs: info.listen_addrs.iter().map(ToString::to_string).collect(),
                inbound: info.inbound,
                connected_since: info
                    .connected_since
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default(),
                name: info.agent,
                head_number: info.status.head_number,
                head_hash: info.status.head_hash,
                total_difficulty: info.status.total_difficulty,
            })
            .collect()
    }

    fn peer_count(&self) -> usize {
        self.0.peers().len()
    }

    fn add_peer(&self, addr: &str) -> Result<(), String> {
        self.0
            .add_peer(parse(addr)?)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn remove_peer(&self, addr: &str) -> Result<(), String> {
        self.0
            .remove_peer(&parse(addr)?)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
