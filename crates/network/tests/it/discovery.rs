//! Discovery through the DHT, the known-peers file, and the admin operations (add, remove,
//! peer details).

use std::time::{Duration, Instant, SystemTime};

use infera_network::{ChainView, NetworkError, NetworkEvent, start};

use crate::{GENESIS, Node, TestChain, config, node, node_with};

/// Polls `check` every 50 ms until it holds, panicking with `what` after `limit`.
async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_nodes_that_know_only_the_first_find_one_another_and_outlive_it() {
    let chain = TestChain::uniform(GENESIS, 1, 1);
    let first = node(GENESIS, vec![], chain.clone()).await;
    let mut others: Vec<Node> = Vec::new();
    for _ in 0..4 {
        others.push(node(GENESIS, vec![first.addr()], chain.clone()).await);
    }
    eventually(
        "every node to have at least 3 peers",
        Duration::from_secs(20),
        || first.handle.peers().len() >= 3 && others.iter().all(|n| n.handle.peers().len() >= 3),
    )
    .await;

    // Without the first node, the others still reach one another.
    let first_id = first.id();
    first.handle.shutdown().await;
    for node in &mut others {
        node.disconnected_from(first_id).await;
    }
    eventually(
        "the others to stay connected among themselves",
        Duration::from_secs(5),
        || others.iter().all(|n| n.handle.peers().len() >= 2),
    )
    .await;
    let block = b"sealed after the bootnode left".to_vec();
    // Gossipsub builds its mesh a heartbeat after a subscription: publish until it is there.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (author, receivers) = others.split_first_mut().unwrap();
    for receiver in receivers.iter_mut() {
        loop {
            author.handle.publish_block(block.clone());
            let got = tokio::time::timeout(Duration::from_millis(300), async {
                loop {
                    match receiver.events.recv().await {
                        Some(NetworkEvent::NewBlock { block: b, .. }) if b == block => {
                            return true;
                        }
                        Some(_) => {}
                        None => return false,
                    }
                }
            })
            .await;
            if got == Ok(true) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the block did not reach {}",
                receiver.id()
            );
        }
    }
}

#[tokio::test]
async fn known_peers_are_remembered_and_dialled_at_the_next_start() {
    let chain = TestChain::uniform(GENESIS, 1, 1);
    let mut a = node(GENESIS, vec![], chain.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("network").join("known-peers.json");
    let mut config_b = config(&dir, GENESIS, vec![a.addr()]);
    config_b.known_peers_file = Some(file.clone());
    let (b, mut b_events) = start(config_b.clone(), chain.clone()).await.unwrap();
    let b_id = b.local_peer_id();
    a.connected_to(b_id).await;
    // B remembers A once its own handshake with A completes.
    let handshaken = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = b_events.recv().await {
            if matches!(event, NetworkEvent::PeerConnected { .. }) {
                return;
            }
        }
    });
    handshaken.await.expect("B handshakes with A");
    b.shutdown().await;
    a.disconnected_from(b_id).await;
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&a.id().to_string()), "{text}");

    // No bootnode this time: only the file says where A is.
    config_b.bootnodes.clear();
    let (b, _b_events) = start(config_b.clone(), chain.clone()).await.unwrap();
    a.connected_to(b_id).await;
    b.shutdown().await;
    a.disconnected_from(b_id).await;

    // A corrupt file is ignored: the node starts, with nobody to dial.
    std::fs::write(&file, "{ not json").unwrap();
    let (b, _b_events) = start(config_b, chain).await.unwrap();
    a.expect_none(Duration::from_millis(1500), "a connection", |e| {
        matches!(e, NetworkEvent::PeerConnected { .. })
    })
    .await;
    b.shutdown().await;
}

#[tokio::test]
async fn added_peers_are_dialled_reported_and_removed() {
    let chain = TestChain::uniform(GENESIS, 3, 1);
    let quiet = |dir: &tempfile::TempDir| {
        let mut c = config(dir, GENESIS, vec![]);
        c.discovery = false;
        c
    };
    let dir_a = tempfile::tempdir().unwrap();
    let mut a = node_with(quiet(&dir_a), dir_a, chain.clone()).await;
    let dir_b = tempfile::tempdir().unwrap();
    let mut b = node_with(quiet(&dir_b), dir_b, chain.clone()).await;
    assert!(a.handle.is_listening());

    let before = SystemTime::now() - Duration::from_secs(1);
    assert_eq!(a.handle.add_peer(b.addr()).unwrap(), b.id());
    a.connected_to(b.id()).await;
    b.connected_to(a.id()).await;
    eventually(
        "identify to report the agent",
        Duration::from_secs(5),
        || a.handle.peer_infos().iter().all(|p| p.agent.is_some()),
    )
    .await;
    let infos = a.handle.peer_infos();
    assert_eq!(infos.len(), 1);
    let info = &infos[0];
    assert_eq!(info.peer, b.id());
    assert!(!info.inbound, "A dialled B");
    assert!(info.connected_since >= before, "{:?}", info.connected_since);
    assert_eq!(info.status, chain.status());
    assert!(info.agent.as_deref().unwrap().starts_with("infera/"));
    let b_addr = b.addr().to_string();
    assert!(
        info.listen_addrs
            .iter()
            .any(|addr| b_addr.starts_with(&addr.to_string())),
        "{info:?}"
    );
    assert!(b.handle.peer_infos()[0].inbound, "B was dialled");

    // Bad addresses are refused, naming the problem.
    let no_id: libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
    let err = a.handle.add_peer(no_id.clone()).unwrap_err();
    assert!(err.to_string().contains("/p2p/<peer id>"), "{err}");
    assert!(a.handle.remove_peer(&no_id).is_err());
    let err = a.handle.add_peer(a.addr()).unwrap_err();
    assert!(err.to_string().contains("own peer id"), "{err}");

    assert_eq!(a.handle.remove_peer(&b.addr()).unwrap(), b.id());
    a.disconnected_from(b.id()).await;
    b.disconnected_from(a.id()).await;
    // Removed peers are not re-dialled (the test config re-dials every 200 ms).
    a.expect_none(Duration::from_millis(1000), "a reconnection", |e| {
        matches!(e, NetworkEvent::PeerConnected { .. })
    })
    .await;
    assert!(a.handle.peer_infos().is_empty());

    // A banned peer cannot be added.
    a.handle.penalize(b.id(), "test");
    eventually("the ban", Duration::from_secs(5), || {
        !a.handle.banned_peers().is_empty()
    })
    .await;
    let err = a.handle.add_peer(b.addr()).unwrap_err();
    assert!(
        matches!(err, NetworkError::Banned(p) if p == b.id()),
        "{err}"
    );
}
