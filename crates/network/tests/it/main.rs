//! Integration tests: real nodes on 127.0.0.1 (port 0) with temporary key files.

mod discovery;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{B256, U256};
use infera_network::{
    ChainView, NetworkConfig, NetworkError, NetworkEvent, NetworkHandle, PeerId, ServeError,
    Status, Verdict, config::MAX_BLOCKS_PER_REQUEST, start,
};
use libp2p::Multiaddr;
use tempfile::TempDir;
use tokio::sync::mpsc;

/// A chain of `blocks.len()` blocks; block `n` is `blocks[n]`.
struct TestChain {
    genesis: B256,
    blocks: Vec<Vec<u8>>,
}

impl TestChain {
    fn new(genesis: B256, blocks: Vec<Vec<u8>>) -> Arc<Self> {
        Arc::new(Self { genesis, blocks })
    }
    /// `n` blocks of `size` bytes, block `i` filled with `i as u8`.
    fn uniform(genesis: B256, n: usize, size: usize) -> Arc<Self> {
        Self::new(genesis, (0..n).map(|i| vec![i as u8; size]).collect())
    }
}

impl ChainView for TestChain {
    fn status(&self) -> Status {
        let head = self.blocks.len().saturating_sub(1) as u64;
        Status {
            genesis_hash: self.genesis,
            head_number: head,
            head_hash: B256::with_last_byte(self.blocks.len() as u8),
            total_difficulty: U256::from(head),
        }
    }

    fn blocks(&self, start: u64, count: u64, max_bytes: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut total = 0;
        for block in self.blocks.iter().skip(start as usize).take(count as usize) {
            if total > max_bytes {
                break;
            }
            total += block.len();
            out.push(block.clone());
        }
        out
    }
}

const GENESIS: B256 = B256::repeat_byte(0x11);
const WAIT: Duration = Duration::from_secs(10);

struct Node {
    handle: NetworkHandle,
    events: mpsc::Receiver<NetworkEvent>,
    _dir: TempDir,
}

impl Node {
    fn id(&self) -> PeerId {
        self.handle.local_peer_id()
    }
    fn addr(&self) -> Multiaddr {
        self.handle.listen_addrs()[0].clone()
    }

    /// Waits for the first event `pick` accepts, skipping the others.
    async fn expect<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&NetworkEvent) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(event)) => {
                    if let Some(t) = pick(&event) {
                        return t;
                    }
                }
                Ok(None) => panic!("event channel closed while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    /// Collects events for `period`, asserting none matches `bad`.
    async fn expect_none(
        &mut self,
        period: Duration,
        what: &str,
        mut bad: impl FnMut(&NetworkEvent) -> bool,
    ) {
        let deadline = Instant::now() + period;
        while let Ok(Some(event)) = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            self.events.recv(),
        )
        .await
        {
            assert!(!bad(&event), "unexpected {what}: {event:?}");
        }
    }

    async fn connected_to(&mut self, peer: PeerId) -> Status {
        self.expect(&format!("PeerConnected({peer})"), |e| match e {
            NetworkEvent::PeerConnected { peer: p, status } if *p == peer => Some(status.clone()),
            _ => None,
        })
        .await
    }

    async fn disconnected_from(&mut self, peer: PeerId) {
        self.expect(&format!("PeerDisconnected({peer})"), |e| {
            matches!(e, NetworkEvent::PeerDisconnected { peer: p } if *p == peer).then_some(())
        })
        .await
    }
}

fn config(dir: &TempDir, genesis: B256, bootnodes: Vec<Multiaddr>) -> NetworkConfig {
    NetworkConfig {
        listen_addr: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        bootnodes,
        key_file: dir.path().join("node.key"),
        genesis_hash: genesis,
        gossip_heartbeat: Duration::from_millis(100),
        redial_interval: Duration::from_millis(200),
        ..NetworkConfig::default()
    }
}

async fn node_with(config: NetworkConfig, dir: TempDir, chain: Arc<dyn ChainView>) -> Node {
    let (handle, events) = start(config, chain).await.expect("network starts");
    Node {
        handle,
        events,
        _dir: dir,
    }
}

async fn node(genesis: B256, bootnodes: Vec<Multiaddr>, chain: Arc<dyn ChainView>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, genesis, bootnodes);
    node_with(config, dir, chain).await
}

/// A and B, B dialling A, both handshaken.
async fn pair(chain_a: Arc<dyn ChainView>, chain_b: Arc<dyn ChainView>) -> (Node, Node) {
    let mut a = node(GENESIS, vec![], chain_a).await;
    let mut b = node(GENESIS, vec![a.addr()], chain_b).await;
    a.connected_to(b.id()).await;
    b.connected_to(a.id()).await;
    (a, b)
}

#[tokio::test]
async fn node_key_persists_and_corrupt_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::uniform(GENESIS, 1, 10);
    let (first, _events) = start(config(&dir, GENESIS, vec![]), chain.clone())
        .await
        .unwrap();
    let id = first.local_peer_id();
    let addr = first.listen_addrs()[0].clone();
    assert!(
        addr.to_string().starts_with("/ip4/127.0.0.1/tcp/"),
        "{addr}"
    );
    assert!(
        !addr.to_string().contains("/tcp/0/"),
        "port 0 must be resolved: {addr}"
    );
    assert!(addr.to_string().ends_with(&format!("/p2p/{id}")), "{addr}");
    first.shutdown().await;

    let (second, _events) = start(config(&dir, GENESIS, vec![]), chain.clone())
        .await
        .unwrap();
    assert_eq!(second.local_peer_id(), id, "restart must keep the peer id");
    second.shutdown().await;

    std::fs::write(dir.path().join("node.key"), "corrupt\n").unwrap();
    let err = start(config(&dir, GENESIS, vec![]), chain)
        .await
        .unwrap_err();
    assert!(matches!(err, NetworkError::KeyFile { .. }), "{err}");
    assert!(err.to_string().contains("node.key"), "{err}");
}

#[tokio::test]
async fn zero_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::uniform(GENESIS, 1, 1);
    let mut zero_peers = config(&dir, GENESIS, vec![]);
    zero_peers.max_peers = 0;
    let mut zero_redial = config(&dir, GENESIS, vec![]);
    zero_redial.redial_interval = Duration::ZERO;
    for config in [zero_peers, zero_redial] {
        let err = start(config, chain.clone()).await.unwrap_err();
        assert!(matches!(err, NetworkError::Config(_)), "{err}");
    }
}

#[tokio::test]
async fn bootnode_without_peer_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bootnodes = vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()];
    let err = start(
        config(&dir, GENESIS, bootnodes),
        TestChain::uniform(GENESIS, 1, 1),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, NetworkError::BootnodeWithoutPeerId { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn nodes_handshake_through_a_bootnode_and_see_each_others_status() {
    let chain_a = TestChain::uniform(GENESIS, 5, 10);
    let chain_b = TestChain::uniform(GENESIS, 3, 10);
    let mut a = node(GENESIS, vec![], chain_a.clone()).await;
    let mut b = node(GENESIS, vec![a.addr()], chain_b.clone()).await;
    assert_eq!(a.connected_to(b.id()).await, chain_b.status());
    assert_eq!(b.connected_to(a.id()).await, chain_a.status());
    assert_eq!(a.handle.peers(), vec![(b.id(), chain_b.status())]);
    assert_eq!(b.handle.peers(), vec![(a.id(), chain_a.status())]);
    assert_eq!(
        b.handle.request_status(a.id()).await.unwrap(),
        chain_a.status()
    );

    // A clean shutdown is a disconnection, not a ban.
    let b_id = b.id();
    b.handle.clone().shutdown().await;
    a.disconnected_from(b_id).await;
    assert!(a.handle.peers().is_empty());
    let err = a.handle.request_status(b_id).await.unwrap_err();
    assert!(
        matches!(err, NetworkError::NotConnected(p) if p == b_id),
        "{err}"
    );
}

#[tokio::test]
async fn a_restarted_bootnode_is_redialled() {
    let dir_a = tempfile::tempdir().unwrap();
    let mut config_a = config(&dir_a, GENESIS, vec![]);
    let chain = TestChain::uniform(GENESIS, 2, 10);
    let (a, _a_events) = start(config_a.clone(), chain.clone()).await.unwrap();
    let a_id = a.local_peer_id();
    let a_addr = a.listen_addrs()[0].clone();
    let mut b = node(GENESIS, vec![a_addr.clone()], chain.clone()).await;
    b.connected_to(a_id).await;
    a.shutdown().await;
    b.disconnected_from(a_id).await;

    // Same key, same port: B finds A again by itself.
    config_a.listen_addr = a_addr
        .iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect();
    let (a, _a_events) = start(config_a, chain).await.unwrap();
    assert_eq!(a.local_peer_id(), a_id);
    b.connected_to(a_id).await;
    a.shutdown().await;
}

/// Which gossip topic a scenario exercises.
#[derive(Clone, Copy)]
enum Kind {
    Block,
    Transaction,
}

fn publish(node: &Node, kind: Kind, data: Vec<u8>) {
    match kind {
        Kind::Block => node.handle.publish_block(data),
        Kind::Transaction => node.handle.publish_transaction(data),
    }
}

/// The payload and gossip id of a gossip event of `kind`.
fn gossip(kind: Kind, event: &NetworkEvent) -> Option<(PeerId, infera_network::GossipId, Vec<u8>)> {
    match (kind, event) {
        (Kind::Block, NetworkEvent::NewBlock { source, id, block }) => {
            Some((*source, id.clone(), block.clone()))
        }
        (Kind::Transaction, NetworkEvent::NewTransaction { source, id, tx }) => {
            Some((*source, id.clone(), tx.clone()))
        }
        _ => None,
    }
}

/// A -- B -- C: what A publishes reaches C only through B, and only if B accepts it.
async fn gossip_is_forwarded_only_after_accept(kind: Kind) {
    let chain = TestChain::uniform(GENESIS, 1, 10);
    let a = node(GENESIS, vec![], chain.clone()).await;
    let mut b = node(GENESIS, vec![a.addr()], chain.clone()).await;
    let mut c = node(GENESIS, vec![b.addr()], chain.clone()).await;
    b.connected_to(a.id()).await;
    c.connected_to(b.id()).await;
    assert!(
        c.handle.peers().iter().all(|(p, _)| *p == b.id()),
        "C must know only B"
    );

    // Publish distinct payloads until one crosses A -> B -> C (meshes form over a few
    // heartbeats; publishing before a subscription arrives is dropped, never an error).
    let deadline = Instant::now() + WAIT;
    let mut n = 0u32;
    let delivered = loop {
        assert!(Instant::now() < deadline, "no message reached C through B");
        n += 1;
        let payload = format!("good payload {n}").into_bytes();
        publish(&a, kind, payload.clone());
        // B validates whatever arrives (maybe an earlier payload) and accepts it.
        let got = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                match b.events.recv().await {
                    Some(event) => {
                        if let Some((source, id, data)) = gossip(kind, &event) {
                            assert_eq!(source, a.id());
                            assert_eq!(id.source(), a.id());
                            b.handle.report(id, Verdict::Accept);
                            return data;
                        }
                    }
                    None => panic!("B's events closed"),
                }
            }
        })
        .await;
        let Ok(accepted) = got else { continue };
        let at_c = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                if let Some((source, _, data)) = gossip(kind, &c.events.recv().await.unwrap()) {
                    return (source, data);
                }
            }
        })
        .await;
        if let Ok((source, data)) = at_c {
            assert_eq!(source, b.id(), "C hears only from B");
            break (accepted, data);
        }
    };
    assert!(
        String::from_utf8_lossy(&delivered.1).starts_with("good payload"),
        "{delivered:?}"
    );

    // The mesh A -> B -> C works. A rejected message stops at B.
    let bad = b"bad payload".to_vec();
    publish(&a, kind, bad.clone());
    let id = b
        .expect("the bad payload at B", |e| {
            gossip(kind, e)
                .filter(|(_, _, d)| *d == bad)
                .map(|(_, id, _)| id)
        })
        .await;
    b.handle.report(id, Verdict::Reject);
    c.expect_none(
        Duration::from_secs(1),
        "forwarding of a rejected message",
        |e| gossip(kind, e).is_some_and(|(_, _, d)| d == bad),
    )
    .await;
}

#[tokio::test]
async fn blocks_are_forwarded_only_after_accept() {
    gossip_is_forwarded_only_after_accept(Kind::Block).await;
}

#[tokio::test]
async fn transactions_are_forwarded_only_after_accept() {
    gossip_is_forwarded_only_after_accept(Kind::Transaction).await;
}

#[tokio::test]
async fn gossip_events_are_dropped_and_counted_when_the_node_lags() {
    let chain = TestChain::uniform(GENESIS, 1, 10);
    let mut a = node(GENESIS, vec![], chain.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config_b = config(&dir, GENESIS, vec![a.addr()]);
    config_b.event_channel_capacity = 2;
    let mut b = node_with(config_b, dir, chain).await;
    a.connected_to(b.id()).await;
    // B never reads its events: once its 2 slots fill, gossip is dropped, not queued.
    let deadline = Instant::now() + WAIT;
    let mut n = 0u32;
    while b.handle.dropped_gossip_events() == 0 {
        assert!(Instant::now() < deadline, "nothing was dropped");
        n += 1;
        a.handle.publish_transaction(format!("tx {n}").into_bytes());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The network task is not blocked by the full channel: B still answers requests.
    assert_eq!(
        a.handle.request_status(b.id()).await.unwrap().head_number,
        0
    );
    // Peer events are never dropped: B's handshake event is delivered once B reads.
    b.connected_to(a.id()).await;
}

#[tokio::test]
async fn block_ranges_are_clamped_stop_at_head_and_respect_the_byte_limit() {
    let small = TestChain::uniform(GENESIS, 300, 100);
    let (a, b) = pair(small.clone(), small.clone()).await;
    let blocks = b.handle.request_blocks(a.id(), 5, 3).await.unwrap();
    assert_eq!(blocks, small.blocks[5..8].to_vec());
    let clamped = b.handle.request_blocks(a.id(), 0, 1_000).await.unwrap();
    assert_eq!(clamped.len() as u64, MAX_BLOCKS_PER_REQUEST);
    assert_eq!(clamped, small.blocks[..128].to_vec());
    let at_head = b.handle.request_blocks(a.id(), 290, 50).await.unwrap();
    assert_eq!(at_head, small.blocks[290..].to_vec());
    assert!(
        b.handle
            .request_blocks(a.id(), 300, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        b.handle
            .request_blocks(a.id(), u64::MAX, u64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        b.handle
            .request_blocks(a.id(), 0, 0)
            .await
            .unwrap()
            .is_empty()
    );

    // 1 MiB blocks: the response stops after the block that crosses the 4 MiB soft limit.
    let big = TestChain::uniform(GENESIS, 10, 1024 * 1024);
    let (a, b) = pair(big.clone(), small).await;
    let blocks = b.handle.request_blocks(a.id(), 0, 10).await.unwrap();
    assert_eq!(blocks, big.blocks[..5].to_vec());
    // One block of 10 MiB (the EIP-7934 maximum) still travels.
    let huge = TestChain::new(GENESIS, vec![vec![7u8; 10 * 1024 * 1024], vec![8u8; 10]]);
    let (a, b) = pair(huge.clone(), big).await;
    assert_eq!(
        b.handle.request_blocks(a.id(), 0, 2).await.unwrap(),
        huge.blocks[..1].to_vec()
    );
}

#[tokio::test]
async fn a_peer_of_another_chain_is_refused() {
    let mut a = node(GENESIS, vec![], TestChain::uniform(GENESIS, 1, 1)).await;
    let other = B256::repeat_byte(0x22);
    let mut b = node(other, vec![a.addr()], TestChain::uniform(other, 1, 1)).await;
    // B keeps re-dialling (every 200 ms) and is refused every time.
    let (a_id, b_id) = (a.id(), b.id());
    a.expect_none(
        Duration::from_secs(2),
        "connection to another chain",
        |e| matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == b_id),
    )
    .await;
    b.expect_none(
        Duration::from_millis(100),
        "connection to another chain",
        |e| matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == a_id),
    )
    .await;
    assert!(a.handle.peers().is_empty());
    assert!(b.handle.peers().is_empty());
    // Whichever side checked the other's status first banned it; the other side banned too
    // (on the WrongGenesis answer) unless the connection was gone before the answer came.
    assert!(
        a.handle.banned_peers() == vec![b_id] || b.handle.banned_peers() == vec![a_id],
        "the foreign peer is banned, not just dropped"
    );
}

#[tokio::test]
async fn a_penalized_peer_is_disconnected_and_refused_until_the_ban_expires() {
    let chain = TestChain::uniform(GENESIS, 1, 1);
    let dir = tempfile::tempdir().unwrap();
    let mut config_a = config(&dir, GENESIS, vec![]);
    config_a.ban_duration = Duration::from_secs(2);
    let mut a = node_with(config_a, dir, chain.clone()).await;
    let mut b = node(GENESIS, vec![a.addr()], chain).await;
    let b_id = b.id();
    a.connected_to(b_id).await;
    b.connected_to(a.id()).await;

    a.handle.penalize(b_id, "test: misbehaved");
    a.disconnected_from(b_id).await;
    b.disconnected_from(a.id()).await;
    assert_eq!(a.handle.banned_peers(), vec![b_id]);
    // B's redial loop tries again every 200 ms; A refuses it while the ban lasts.
    a.expect_none(
        Duration::from_millis(1500),
        "reconnection of a banned peer",
        |e| matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == b_id),
    )
    .await;
    assert!(a.handle.peers().is_empty());
    assert!(b.handle.peers().is_empty());
    let err = b.handle.request_status(a.id()).await.unwrap_err();
    assert!(
        matches!(
            err,
            NetworkError::NotConnected(_) | NetworkError::Request { .. }
        ),
        "{err}"
    );
    // After the ban, B's redial gets through.
    a.connected_to(b_id).await;
    assert!(a.handle.banned_peers().is_empty());
}

#[tokio::test]
async fn the_request_rate_is_limited_and_persistent_excess_is_banned() {
    let chain = TestChain::uniform(GENESIS, 1, 1);
    let (mut a, mut b) = pair(chain.clone(), chain).await;
    let (mut served, mut limited) = (0, 0);
    let ended = loop {
        assert!(served + limited < 500, "never banned");
        match b.handle.request_blocks(a.id(), 0, 1).await {
            Ok(blocks) => {
                assert_eq!(blocks.len(), 1);
                served += 1;
            }
            Err(NetworkError::Refused {
                error: ServeError::RateLimited,
                ..
            }) => limited += 1,
            Err(other) => break other,
        }
    };
    // Burst 20 (the handshake used one) plus what refilled at 10/s meanwhile.
    assert!((15..=35).contains(&served), "served {served}");
    assert!(limited >= 10, "limited {limited}");
    assert!(
        matches!(
            ended,
            NetworkError::Request { .. } | NetworkError::NotConnected(_)
        ),
        "{ended}"
    );
    a.disconnected_from(b.id()).await;
    b.disconnected_from(a.id()).await;
    assert_eq!(a.handle.banned_peers(), vec![b.id()]);
}

/// What a misbehaving client sends: it understands our status request (so that it can hold
/// our handshake open instead of failing it), but sends a request we cannot decode.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum ClientRequest {
    Status(Status),
    Garbage(String),
}

#[tokio::test]
async fn an_undecodable_request_gets_the_sender_banned() {
    use futures::StreamExt;
    use libp2p::{
        StreamProtocol, noise,
        request_response::{self, ProtocolSupport},
        swarm::SwarmEvent,
        tcp, yamux,
    };

    let a = node(GENESIS, vec![], TestChain::uniform(GENESIS, 1, 1)).await;
    let mut client = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::cbor::Behaviour::<ClientRequest, String>::new(
                [(StreamProtocol::new("/infera/req/1"), ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        })
        .unwrap()
        .build();
    let client_id = *client.local_peer_id();
    client.dial(a.addr()).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut held = Vec::new();
    let mut handshake_seen = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, client.select_next_some())
            .await
            .expect("A never closed the connection");
        match event {
            // A's handshake arrives: hold it unanswered, then misbehave.
            SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request: ClientRequest::Status(_),
                        channel,
                        ..
                    },
                ..
            }) => {
                handshake_seen = true;
                held.push(channel);
                client
                    .behaviour_mut()
                    .send_request(&a.id(), ClientRequest::Garbage("not a request".into()));
            }
            SwarmEvent::ConnectionClosed {
                num_established: 0, ..
            } => break,
            _ => {}
        }
    }
    assert!(handshake_seen, "the connection closed before A's handshake");
    assert_eq!(a.handle.banned_peers(), vec![client_id]);
    assert!(a.handle.peers().is_empty());

    // Banned: a new connection does not survive.
    client.dial(a.addr()).unwrap();
    let end = Instant::now() + Duration::from_secs(1);
    while tokio::time::timeout(
        end.saturating_duration_since(Instant::now()),
        client.select_next_some(),
    )
    .await
    .is_ok()
    {}
    assert!(!client.is_connected(&a.id()), "a banned peer reconnected");
}

#[tokio::test]
async fn connections_beyond_max_peers_are_refused() {
    let chain = TestChain::uniform(GENESIS, 1, 1);
    let dir = tempfile::tempdir().unwrap();
    let mut config_a = config(&dir, GENESIS, vec![]);
    config_a.max_peers = 1;
    let mut a = node_with(config_a, dir, chain.clone()).await;
    let b = node(GENESIS, vec![a.addr()], chain.clone()).await;
    a.connected_to(b.id()).await;
    let mut c = node(GENESIS, vec![a.addr()], chain).await;
    let (a_id, c_id) = (a.id(), c.id());
    a.expect_none(
        Duration::from_millis(1500),
        "a peer beyond max_peers",
        |e| matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == c_id),
    )
    .await;
    c.expect_none(
        Duration::from_millis(100),
        "a peer beyond max_peers",
        |e| matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == a_id),
    )
    .await;
    assert_eq!(a.handle.peers().len(), 1);
    // Refused for lack of room, not banned: once B leaves, C's redial gets in.
    assert!(a.handle.banned_peers().is_empty());
    b.handle.shutdown().await;
    a.connected_to(c_id).await;
}

/// Multi-threaded: signing and verifying 10 MiB takes seconds in a debug build, and the
/// nodes must not wait on each other's CPU work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_maximal_block_travels_by_gossip() {
    let chain = TestChain::uniform(GENESIS, 1, 1);
    let (a, mut b) = pair(chain.clone(), chain).await;
    // Small blocks until the mesh carries one.
    let deadline = Instant::now() + WAIT;
    for n in 0u32.. {
        assert!(Instant::now() < deadline, "no block arrived");
        a.handle
            .publish_block(format!("small block {n}").into_bytes());
        let got = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                if let Some(NetworkEvent::NewBlock { .. }) = b.events.recv().await {
                    return;
                }
            }
        })
        .await;
        if got.is_ok() {
            break;
        }
    }
    // EIP-7934's 10 MiB cap on a block's RLP.
    let big: Vec<u8> = (0..10 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    a.handle.publish_block(big.clone());
    let got = b
        .expect("the 10 MiB block", |e| match e {
            NetworkEvent::NewBlock { block, .. } if block.len() > 1024 => Some(block.clone()),
            _ => None,
        })
        .await;
    assert!(got == big, "the 10 MiB block arrived altered");
    // Beyond the limit, publishing is refused locally (and logged), never an error or a panic.
    a.handle.publish_block(vec![
        0;
        infera_network::config::MAX_GOSSIP_PAYLOAD_BYTES + 1
    ]);
}

#[tokio::test]
async fn rejected_gossip_lowers_the_source_score_until_it_is_ignored() {
    let chain = TestChain::uniform(GENESIS, 1, 1);
    let (a, mut b) = pair(chain.clone(), chain).await;
    // Accepted messages until the mesh carries them.
    let deadline = Instant::now() + WAIT;
    for n in 0u32.. {
        assert!(Instant::now() < deadline, "no block arrived");
        a.handle.publish_block(format!("good {n}").into_bytes());
        let got = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                if let Some(NetworkEvent::NewBlock { id, .. }) = b.events.recv().await {
                    return id;
                }
            }
        })
        .await;
        if let Ok(id) = got {
            b.handle.report(id, Verdict::Accept);
            break;
        }
    }
    // Three rejected messages: B graylists A (score -90, below -80) and ignores it for a while.
    for n in 0..3 {
        let bad = format!("bad {n}").into_bytes();
        a.handle.publish_block(bad.clone());
        let id = b
            .expect("a bad block", |e| match e {
                NetworkEvent::NewBlock { id, block, .. } if *block == bad => Some(id.clone()),
                _ => None,
            })
            .await;
        b.handle.report(id, Verdict::Reject);
    }
    // Give B's task time to apply the last verdict before A publishes again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for n in 0..5 {
        a.handle.publish_block(format!("after {n}").into_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.expect_none(
        Duration::from_millis(500),
        "gossip from a graylisted peer",
        |e| matches!(e, NetworkEvent::NewBlock { .. }),
    )
    .await;
    // Gossip scoring is not a ban: the connection and request-response stay up.
    assert_eq!(b.handle.peers().len(), 1);
    assert!(b.handle.request_status(a.id()).await.is_ok());
}

#[tokio::test]
async fn dropping_every_handle_stops_the_network_and_frees_the_port() {
    let chain = TestChain::uniform(GENESIS, 1, 1);
    let mut b = node(GENESIS, vec![], chain.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config_a = config(&dir, GENESIS, vec![b.addr()]);
    let (a, _a_events) = start(config_a.clone(), chain.clone()).await.unwrap();
    let (a_id, a_addr) = (a.local_peer_id(), a.listen_addrs()[0].clone());
    b.connected_to(a_id).await;
    let clone = a.clone();
    drop(a);
    // One handle left: still running.
    assert_eq!(clone.request_status(b.id()).await.unwrap(), chain.status());
    drop(clone);
    b.disconnected_from(a_id).await;
    // The listener is gone with the task: the same port can be bound again.
    config_a.listen_addr = a_addr
        .iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect();
    let (again, _events) = start(config_a, chain).await.expect("the port was released");
    assert_eq!(again.listen_addrs()[0], a_addr);
}
