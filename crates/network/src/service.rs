//! The network task: owns the libp2p swarm and serialises everything that touches it.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    num::NonZeroU32,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant, SystemTime},
};

use alloy_primitives::{B256, Keccak256, hex};
use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, allow_block_list, connection_limits,
    gossipsub::{
        self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId, ValidationMode,
    },
    identify,
    identity::Keypair,
    kad::{self, store::MemoryStore},
    multiaddr::Protocol,
    noise,
    request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel},
    swarm::{
        NetworkBehaviour, SwarmEvent,
        behaviour::toggle::Toggle,
        dial_opts::{DialOpts, PeerCondition},
    },
    tcp, yamux,
};
use serde_bytes::ByteBuf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::{
    ChainView, Command, Connection, GossipId, NetworkEvent, NetworkHandle, Shared, Status, Topic,
    Verdict,
    codec::{Request, RequestFrame, Response, ServeError, WireCodec},
    config::*,
    error::{NetworkError, NetworkResult},
    key::load_or_create_key,
    known_peers::{KnownPeers, dialable},
    rate::TokenBucket,
};

const TARGET: &str = "infera::net";

/// The protocols we run; the blocker and the connection limits come first so that they refuse
/// connections before any other behaviour sees them.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    rpc: request_response::Behaviour<WireCodec>,
    identify: identify::Behaviour,
    /// Off without [`NetworkConfig::discovery`].
    kad: Toggle<kad::Behaviour<MemoryStore>>,
}

/// The request-response protocol.
pub(crate) const REQUEST_PROTOCOL: &str = "/infera/req/1";

/// What we call ourselves in identify (and so in other nodes' `admin_peers`).
pub(crate) fn agent_version() -> String {
    format!("infera/{}", env!("CARGO_PKG_VERSION"))
}

/// The DHT protocol: per chain (id and genesis), unlike the request protocol, because a
/// routing table must hold only peers of our chain; a node of another chain simply does not
/// speak it, and is neither asked nor answered.
pub(crate) fn kad_protocol(chain_id: u64, genesis: &B256) -> StreamProtocol {
    StreamProtocol::try_from_owned(format!(
        "/infera/{chain_id}/{}/kad/1.0.0",
        chain_tag(genesis)
    ))
    .expect("the name starts with a slash")
}

/// The first 8 bytes of the genesis hash in hex: the chain's tag in protocol and topic names.
fn chain_tag(genesis: &B256) -> String {
    hex::encode(&genesis[..8])
}

pub(crate) fn topic(genesis: &B256, topic: Topic) -> IdentTopic {
    let name = match topic {
        Topic::Blocks => "blocks",
        Topic::Transactions => "txs",
    };
    IdentTopic::new(format!("/infera/{}/{name}/1", chain_tag(genesis)))
}

/// Gossipsub peer scoring. Only invalid messages (P4, the count squared times the weight)
/// weigh much: one rejected message costs -10, two -40 (below the gossip threshold of -10),
/// three -90 (below the graylist threshold of -80: all its traffic is ignored). The count
/// decays by 1% a second (half-life about 70 s), so three rejections graylist a peer for about
/// 6 s and four for about 35 s. Good messages earn little (at most +3 for time in the mesh
/// and +10 for first deliveries per topic), so they cannot buy room for many bad ones.
/// Mesh delivery rates (P3) are not scored: a quiet chain delivers nothing for long
/// stretches and honest peers would be pruned.
fn score_params(topics: &[&IdentTopic]) -> gossipsub::PeerScoreParams {
    let mut params = gossipsub::PeerScoreParams::default();
    for topic in topics {
        let topic_params = gossipsub::TopicScoreParams {
            topic_weight: 1.0,
            time_in_mesh_weight: 0.01,
            time_in_mesh_quantum: Duration::from_secs(1),
            time_in_mesh_cap: 300.0,
            first_message_deliveries_weight: 0.5,
            first_message_deliveries_decay: 0.9,
            first_message_deliveries_cap: 20.0, // x 0.5 = +10
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            invalid_message_deliveries_weight: -10.0,
            invalid_message_deliveries_decay: 0.99,
            ..Default::default()
        };
        params.topics.insert(topic.hash(), topic_params);
    }
    params
}

fn build_behaviour(keypair: &Keypair, config: &NetworkConfig) -> NetworkResult<Behaviour> {
    let blocks = topic(&config.genesis_hash, Topic::Blocks);
    let txs = topic(&config.genesis_hash, Topic::Transactions);
    let gossip_config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(config.gossip_heartbeat)
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(MAX_GOSSIP_TRANSMIT_BYTES)
        // Content-addressed ids: the same block published by two nodes is one message.
        .message_id_fn(|message: &gossipsub::Message| {
            let mut hasher = Keccak256::new();
            hasher.update(message.topic.as_str().as_bytes());
            hasher.update(&message.data);
            MessageId::from(hasher.finalize().to_vec())
        })
        .build()
        .map_err(|e| NetworkError::Config(format!("gossipsub: {e}")))?;
    let mut gossipsub =
        gossipsub::Behaviour::new(MessageAuthenticity::Signed(keypair.clone()), gossip_config)
            .map_err(|e| NetworkError::Config(format!("gossipsub: {e}")))?;
    gossipsub
        .with_peer_score(
            score_params(&[&blocks, &txs]),
            gossipsub::PeerScoreThresholds::default(),
        )
        .map_err(|e| NetworkError::Config(format!("gossipsub scoring: {e}")))?;
    for topic in [&blocks, &txs] {
        gossipsub
            .subscribe(topic)
            .map_err(|e| NetworkError::Config(format!("subscribing to {topic}: {e}")))?;
    }

    // One protocol name for every chain (unlike the topics): a peer of another chain must
    // reach the status handshake, where its genesis gets it banned, rather than fail protocol
    // negotiation and be dialled again forever.
    let protocol = StreamProtocol::new(REQUEST_PROTOCOL);
    let rpc = request_response::Behaviour::with_codec(
        WireCodec,
        [(protocol, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(config.request_timeout)
            .with_max_concurrent_streams(MAX_STREAMS_PER_CONNECTION),
    );

    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(config.max_peers))
        // Two, not one: when two nodes dial each other at once, each side may keep a
        // different one of the two connections, and a limit of one would close both.
        .with_max_established_per_peer(Some(2))
        .with_max_pending_incoming(Some(config.max_peers))
        .with_max_pending_outgoing(Some(config.max_peers));

    let identify = identify::Behaviour::new(
        identify::Config::new(
            format!("/infera/{}/1.0.0", chain_tag(&config.genesis_hash)),
            keypair.public(),
        )
        .with_agent_version(agent_version()),
    );

    let kad = config.discovery.then(|| {
        let local = keypair.public().to_peer_id();
        let mut kad_config = kad::Config::new(kad_protocol(config.chain_id, &config.genesis_hash));
        kad_config
            .set_query_timeout(DHT_QUERY_TIMEOUT)
            // Our own walks (see `Service::discover`) replace the periodic bootstrap.
            .set_periodic_bootstrap_interval(None)
            // Discovery only: records other nodes put are never stored.
            .set_record_filtering(kad::StoreInserts::FilterBoth);
        let mut kad = kad::Behaviour::with_config(local, MemoryStore::new(local), kad_config);
        // Server mode from the start: its automatic choice waits for a confirmed external
        // address, which a node on a LAN or loopback never gets, and a client-mode node is
        // never asked for peers.
        kad.set_mode(Some(kad::Mode::Server));
        kad
    });

    Ok(Behaviour {
        blocked: allow_block_list::Behaviour::default(),
        limits: connection_limits::Behaviour::new(limits),
        gossipsub,
        rpc,
        identify,
        kad: kad.into(),
    })
}

/// Refuses settings that would stall or disable the network (tokio intervals panic on zero).
fn validate(config: &NetworkConfig) -> NetworkResult<()> {
    let zero = |name: &str| {
        Err(NetworkError::Config(format!(
            "{name} must be greater than zero"
        )))
    };
    if config.max_peers == 0 {
        return zero("max_peers");
    }
    if config.gossip_heartbeat.is_zero() {
        return zero("gossip_heartbeat");
    }
    if config.redial_interval.is_zero() {
        return zero("redial_interval");
    }
    if config.request_timeout.is_zero() {
        return zero("request_timeout");
    }
    if config.inbound_request_burst == 0 {
        return zero("inbound_request_burst");
    }
    if config.event_channel_capacity == 0 {
        return zero("event_channel_capacity");
    }
    if config.ban_duration > MAX_BAN_DURATION {
        return Err(NetworkError::Config(format!(
            "ban_duration {:?} exceeds the maximum of {MAX_BAN_DURATION:?}",
            config.ban_duration
        )));
    }
    Ok(())
}

/// Splits `/.../p2p/<id>` into the peer id and the full address.
fn bootnode_peer(addr: &Multiaddr) -> NetworkResult<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Ok(peer),
        _ => Err(NetworkError::BootnodeWithoutPeerId { addr: addr.clone() }),
    }
}

fn build_swarm(keypair: Keypair, behaviour: Behaviour) -> NetworkResult<Swarm<Behaviour>> {
    Ok(SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetworkError::Transport(e.to_string()))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| NetworkError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build())
}

/// Listens on `addr` and waits for the bound address, so that listen_addrs() is
/// complete when start() returns.
async fn listen(swarm: &mut Swarm<Behaviour>, addr: &Multiaddr) -> NetworkResult<Multiaddr> {
    swarm
        .listen_on(addr.clone())
        .map_err(|e| NetworkError::Listen {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
    tokio::time::timeout(LISTEN_TIMEOUT, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                SwarmEvent::ListenerClosed { reason, .. } => {
                    return Err(format!("listener closed: {reason:?}"));
                }
                SwarmEvent::ListenerError { error, .. } => return Err(error.to_string()),
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| format!("no address bound within {LISTEN_TIMEOUT:?}"))
    .and_then(|r| r)
    .map_err(|reason| NetworkError::Listen {
        addr: addr.clone(),
        reason,
    })
}

pub(crate) async fn start(
    config: NetworkConfig,
    chain: Arc<dyn ChainView>,
) -> NetworkResult<(NetworkHandle, mpsc::Receiver<NetworkEvent>)> {
    validate(&config)?;
    let keypair = load_or_create_key(&config.key_file)?;
    let local_peer_id = keypair.public().to_peer_id();
    let bootnodes = config
        .bootnodes
        .iter()
        .map(|addr| Ok((bootnode_peer(addr)?, addr.clone())))
        .collect::<NetworkResult<Vec<_>>>()?
        .into_iter()
        .filter(|(peer, _)| *peer != local_peer_id)
        .collect::<Vec<_>>();

    let behaviour = build_behaviour(&keypair, &config)?;
    let mut swarm = build_swarm(keypair, behaviour)?;
    let known = KnownPeers::load(config.known_peers_file.clone());
    let mut discovery = Discovery::default();
    if config.discovery {
        for (peer, addr) in &bootnodes {
            if let Some(addr) = dialable(addr)
                && let Some(kad) = swarm.behaviour_mut().kad.as_mut()
            {
                kad.add_address(peer, addr);
            }
        }
        for (peer, addrs) in known.by_recency() {
            if peer == local_peer_id {
                continue;
            }
            if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
                for addr in &addrs {
                    kad.add_address(&peer, addr.clone());
                }
            }
            discovery.offer(peer, addrs);
        }
    }
    let bound = listen(&mut swarm, &config.listen_addr).await?;
    let shared = Arc::new(Shared::default());
    let bound = bound.with(Protocol::P2p(local_peer_id));
    tracing::info!(target: TARGET, peer = %local_peer_id, addr = %bound, "listening");
    shared.listen_addrs.write().push(bound);

    let (command_tx, command_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
    let (event_tx, event_rx) = mpsc::channel(config.event_channel_capacity);
    let (internal_tx, internal_rx) =
        mpsc::channel(MAX_CONCURRENT_SERVES + config.max_peers as usize);
    let mut service = Service {
        blocks_topic: topic(&config.genesis_hash, Topic::Blocks),
        txs_topic: topic(&config.genesis_hash, Topic::Transactions),
        max_pending_events: 4 * config.max_peers as usize + 16,
        swarm,
        chain: Arc::clone(&chain),
        shared: Arc::clone(&shared),
        commands: command_rx,
        events: event_tx,
        pending_events: VecDeque::new(),
        internal_tx,
        internal_rx,
        pending_requests: HashMap::new(),
        limiters: HashMap::new(),
        bootnodes,
        static_peers: VecDeque::new(),
        known,
        discovery,
        serve_permits: Arc::new(Semaphore::new(MAX_CONCURRENT_SERVES)),
        config,
    };
    service.redial();
    service.discover();
    let task = tokio::spawn(service.run());
    let handle = NetworkHandle {
        local_peer_id,
        commands: command_tx,
        shared,
        chain,
        task: Arc::new(parking_lot::Mutex::new(Some(task))),
    };
    Ok((handle, event_rx))
}

/// Discovery's state: peers waiting to be dialled and the pace of random walks.
struct Discovery {
    candidates: VecDeque<(PeerId, Vec<Multiaddr>)>,
    queued: HashSet<PeerId>,
    /// The walk in flight; one at a time.
    walk: Option<kad::QueryId>,
    /// Whether the walk in flight found a peer we had not queued or met.
    walk_found_new: bool,
    /// The first walk looks up our own id (so that the peers closest to us learn of us),
    /// later ones random ids.
    walked: bool,
    next_walk: Instant,
    walk_interval: Duration,
}

impl Default for Discovery {
    fn default() -> Self {
        Self {
            candidates: VecDeque::new(),
            queued: HashSet::new(),
            walk: None,
            walk_found_new: false,
            walked: false,
            next_walk: Instant::now() + MIN_WALK_INTERVAL,
            walk_interval: MIN_WALK_INTERVAL,
        }
    }
}

impl Discovery {
    /// Queues `peer` to be dialled; false if it was already queued or there is no room.
    fn offer(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) -> bool {
        if addrs.is_empty()
            || self.candidates.len() >= MAX_DIAL_CANDIDATES
            || !self.queued.insert(peer)
        {
            return false;
        }
        self.candidates.push_back((peer, addrs));
        true
    }

    fn forget(&mut self, peer: &PeerId) {
        if self.queued.remove(peer) {
            self.candidates.retain(|(p, _)| p != peer);
        }
    }
}

/// Results of work done off the network task, sent back to it.
enum Internal {
    /// Our status was read: send the handshake request.
    Handshake { peer: PeerId, ours: Status },
    /// An inbound request was served.
    Respond {
        peer: PeerId,
        channel: ResponseChannel<Response>,
        response: Response,
    },
}

/// Who waits for an outbound request's answer.
enum Pending {
    /// The connection handshake: the answer decides whether the peer is reported.
    Handshake,
    /// A handle's request.
    User(oneshot::Sender<NetworkResult<Response>>),
}

/// Per-peer inbound request limits.
struct PeerLimiter {
    requests: TokenBucket,
    /// Allowance of rate violations; when it runs out the peer is banned.
    violations: TokenBucket,
}

struct Service {
    config: NetworkConfig,
    swarm: Swarm<Behaviour>,
    chain: Arc<dyn ChainView>,
    shared: Arc<Shared>,
    blocks_topic: IdentTopic,
    txs_topic: IdentTopic,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    /// Peer events waiting for room in `events` (they are never dropped while below
    /// `max_pending_events`; gossip events are dropped instead of queued).
    pending_events: VecDeque<NetworkEvent>,
    max_pending_events: usize,
    internal_tx: mpsc::Sender<Internal>,
    internal_rx: mpsc::Receiver<Internal>,
    pending_requests: HashMap<OutboundRequestId, (PeerId, Pending)>,
    /// Request limits per peer. Kept after a disconnection until both buckets are full again,
    /// so that reconnecting does not buy a fresh allowance.
    limiters: HashMap<PeerId, PeerLimiter>,
    bootnodes: Vec<(PeerId, Multiaddr)>,
    /// Peers added through the handle, re-dialled like bootnodes; oldest first.
    static_peers: VecDeque<(PeerId, Multiaddr)>,
    known: KnownPeers,
    discovery: Discovery,
    serve_permits: Arc<Semaphore>,
}

impl Service {
    async fn run(mut self) {
        let mut redial = tokio::time::interval(self.config.redial_interval);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut maintenance = tokio::time::interval(Duration::from_secs(1));
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut save_known = tokio::time::interval(KNOWN_PEERS_SAVE_INTERVAL);
        save_known.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A clone, so that a reserved permit does not borrow `self`.
        let events = self.events.clone();
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    None | Some(Command::Shutdown) => break,
                    Some(command) => self.on_command(command),
                },
                Some(internal) = self.internal_rx.recv() => self.on_internal(internal),
                permit = events.reserve(), if !self.pending_events.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = self.pending_events.pop_front() {
                            permit.send(event);
                        }
                    }
                    // The node dropped its receiver: nobody is listening any more.
                    Err(_) => self.pending_events.clear(),
                },
                _ = redial.tick() => self.redial(),
                _ = maintenance.tick() => {
                    self.expire_bans();
                    self.forget_idle_limiters();
                    self.discover();
                }
                _ = save_known.tick() => self.known.save_in_background(),
            }
        }
        self.known.save_now();
        for (_, (_, pending)) in self.pending_requests.drain() {
            if let Pending::User(reply) = pending {
                let _ = reply.send(Err(NetworkError::Stopped));
            }
        }
        tracing::info!(target: TARGET, "network stopped");
    }

    fn redial(&mut self) {
        for (peer, addr) in self.bootnodes.iter().chain(&self.static_peers) {
            if self.shared.bans.read().contains_key(peer) || self.swarm.is_connected(peer) {
                continue;
            }
            let opts = DialOpts::peer_id(*peer)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match self.swarm.dial(opts) {
                Ok(()) => tracing::debug!(target: TARGET, %peer, %addr, "dialing bootnode"),
                Err(e) => {
                    tracing::debug!(target: TARGET, %peer, %addr, "cannot dial bootnode: {e}")
                }
            }
        }
    }

    /// Drops the limiters of disconnected peers that a fresh limiter would equal (both buckets
    /// full), and past [`MAX_TRACKED_LIMITERS`] those of all disconnected peers.
    fn forget_idle_limiters(&mut self) {
        let now = Instant::now();
        let swarm = &self.swarm;
        self.limiters.retain(|peer, limiter| {
            swarm.is_connected(peer)
                || !(limiter.requests.is_full(now) && limiter.violations.is_full(now))
        });
        if self.limiters.len() > MAX_TRACKED_LIMITERS {
            self.limiters.retain(|peer, _| swarm.is_connected(peer));
        }
    }

    fn expire_bans(&mut self) {
        let now = Instant::now();
        let mut expired = Vec::new();
        self.shared.bans.write().retain(|peer, until| {
            let keep = *until > now;
            if !keep {
                expired.push(*peer);
            }
            keep
        });
        for peer in expired {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            tracing::info!(target: TARGET, %peer, "ban expired");
        }
    }

    /// Disconnects `peer` and refuses it for the ban duration; `kind` is
    /// the metrics' label for `reason`.
    fn ban(&mut self, peer: PeerId, kind: &'static str, reason: &str) {
        infera_metrics::network::banned(kind);
        let forgotten = {
            let mut bans = self.shared.bans.write();
            let forgotten = if bans.len() >= MAX_BANNED_PEERS && !bans.contains_key(&peer) {
                let soonest = bans
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(p, _)| *p);
                soonest.inspect(|p| {
                    bans.remove(p);
                })
            } else {
                None
            };
            bans.insert(peer, Instant::now() + self.config.ban_duration);
            forgotten
        };
        if let Some(forgotten) = forgotten {
            self.swarm.behaviour_mut().blocked.unblock_peer(forgotten);
            tracing::debug!(target: TARGET, peer = %forgotten, "ban forgotten: too many bans");
        }
        // Closes every connection to the peer and refuses new ones in both directions.
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        self.forget_peer(&peer);
        tracing::info!(target: TARGET, %peer, duration = ?self.config.ban_duration, reason, "peer banned");
    }

    fn queue_event(&mut self, event: NetworkEvent) {
        if self.pending_events.is_empty() {
            match self.events.try_send(event) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(event)) => self.pending_events.push_back(event),
            }
        } else {
            self.pending_events.push_back(event);
        }
        if self.pending_events.len() > self.max_pending_events {
            self.pending_events.pop_front();
            tracing::warn!(target: TARGET, "node is not draining network events; oldest peer event dropped");
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data } => {
                let (topic_hash, bytes) = (self.topic_of(topic).hash(), data.len());
                match self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic_hash, data)
                {
                    Ok(id) => {
                        infera_metrics::network::gossip_out(topic.label());
                        tracing::debug!(target: TARGET, ?topic, bytes, %id, "published")
                    }
                    // Expected before any peer subscribed (see DEPENDENCIES.md), and for a
                    // message that was already seen: neither is the node's problem.
                    Err(e) => tracing::debug!(target: TARGET, ?topic, bytes, "not published: {e}"),
                }
            }
            Command::Report { id, verdict } => {
                let acceptance = match verdict {
                    Verdict::Accept => MessageAcceptance::Accept,
                    Verdict::Ignore => MessageAcceptance::Ignore,
                    Verdict::Reject => MessageAcceptance::Reject,
                };
                if !self.report_gossip(&id, acceptance) {
                    tracing::debug!(target: TARGET, id = %id.message_id, "verdict for a message no longer cached");
                }
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                if !self.swarm.is_connected(&peer) {
                    let _ = reply.send(Err(NetworkError::NotConnected(peer)));
                } else if self.pending_requests.len() >= MAX_PENDING_OUTBOUND_REQUESTS {
                    let _ = reply.send(Err(NetworkError::TooManyRequests(
                        MAX_PENDING_OUTBOUND_REQUESTS,
                    )));
                } else {
                    self.send_request(peer, request, Pending::User(reply));
                }
            }
            Command::Penalize { peer, reason } => self.ban(peer, "penalised", &reason),
            Command::AddPeer { peer, addr } => {
                self.static_peers.retain(|(p, _)| *p != peer);
                if self.static_peers.len() >= MAX_STATIC_PEERS
                    && let Some((dropped, _)) = self.static_peers.pop_front()
                {
                    tracing::info!(target: TARGET, peer = %dropped, "no longer re-dialling an added peer: too many added peers");
                }
                self.static_peers.push_back((peer, addr.clone()));
                tracing::info!(target: TARGET, %peer, %addr, "peer added");
                let opts = DialOpts::peer_id(peer)
                    .addresses(vec![addr.clone()])
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                if let Err(e) = self.swarm.dial(opts) {
                    tracing::debug!(target: TARGET, %peer, %addr, "cannot dial the added peer: {e}");
                }
            }
            Command::RemovePeer { peer } => {
                self.static_peers.retain(|(p, _)| *p != peer);
                self.forget_peer(&peer);
                let connected = self.swarm.disconnect_peer_id(peer).is_ok();
                tracing::info!(target: TARGET, %peer, connected, "peer removed");
            }
            Command::Shutdown => {}
        }
    }

    /// Sends `request` to `peer`; its answer goes to `pending`.
    fn send_request(&mut self, peer: PeerId, request: Request, pending: Pending) {
        let id = self
            .swarm
            .behaviour_mut()
            .rpc
            .send_request(&peer, RequestFrame::Valid(request));
        self.pending_requests.insert(id, (peer, pending));
    }

    /// Tells gossipsub whether to forward a message (and score its source); false when the
    /// message has left its cache.
    fn report_gossip(&mut self, id: &GossipId, acceptance: MessageAcceptance) -> bool {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id.message_id, &id.source, acceptance)
    }

    fn topic_of(&self, topic: Topic) -> &IdentTopic {
        match topic {
            Topic::Blocks => &self.blocks_topic,
            Topic::Transactions => &self.txs_topic,
        }
    }

    fn on_internal(&mut self, internal: Internal) {
        match internal {
            Internal::Handshake { peer, ours } => {
                if !self.swarm.is_connected(&peer) {
                    return;
                }
                if self.pending_requests.len() >= MAX_PENDING_OUTBOUND_REQUESTS {
                    tracing::debug!(target: TARGET, %peer, "too many requests in flight; dropping the connection");
                    let _ = self.swarm.disconnect_peer_id(peer);
                    return;
                }
                self.send_request(peer, Request::Status(ours), Pending::Handshake);
            }
            Internal::Respond {
                peer,
                channel,
                response,
            } => self.respond(peer, channel, response),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(event)) => self.on_rpc(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => self.on_identified(peer_id, info),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad(event),
            SwarmEvent::Behaviour(BehaviourEvent::Blocked(never)) => match never {},
            SwarmEvent::Behaviour(BehaviourEvent::Limits(never)) => match never {},
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                tracing::info!(target: TARGET, peer = %peer_id, addr = %endpoint.get_remote_address(), dialer = endpoint.is_dialer(), "connection established");
                if num_established == NonZeroU32::MIN {
                    self.shared.connections.write().insert(
                        peer_id,
                        Connection {
                            remote_addr: endpoint.get_remote_address().clone(),
                            inbound: !endpoint.is_dialer(),
                            since: SystemTime::now(),
                            listen_addrs: Vec::new(),
                            agent: None,
                        },
                    );
                    self.discovery.forget(&peer_id);
                    self.start_handshake(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                tracing::info!(target: TARGET, peer = %peer_id, cause = ?cause.map(|c| c.to_string()), "connection closed");
                if num_established == 0 {
                    self.shared.connections.write().remove(&peer_id);
                    if self.shared.peers.write().remove(&peer_id).is_some() {
                        self.queue_event(NetworkEvent::PeerDisconnected { peer: peer_id });
                    }
                    self.discover();
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                peer_id,
                ..
            } => {
                tracing::debug!(target: TARGET, peer = ?peer_id, addr = %send_back_addr, "incoming connection refused or failed: {error}");
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(target: TARGET, peer = ?peer_id, "dial failed: {error}");
                self.discover();
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let address = address.with(Protocol::P2p(*self.swarm.local_peer_id()));
                let mut addrs = self.shared.listen_addrs.write();
                if !addrs.contains(&address) {
                    tracing::info!(target: TARGET, addr = %address, "listening");
                    addrs.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                let address = address.with(Protocol::P2p(*self.swarm.local_peer_id()));
                self.shared.listen_addrs.write().retain(|a| *a != address);
            }
            _ => {}
        }
    }

    /// Forgets `peer` for discovery and the known-peers file (banned, or removed).
    fn forget_peer(&mut self, peer: &PeerId) {
        self.discovery.forget(peer);
        self.known.remove(peer);
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            kad.remove_peer(peer);
        }
    }

    /// Connections we dialled (each peer counted once).
    fn outbound_peers(&self) -> usize {
        self.shared
            .connections
            .read()
            .values()
            .filter(|c| !c.inbound)
            .count()
    }

    /// Starts a random walk of the DHT when it is due, and dials queued candidates while
    /// fewer than half the peer slots are outbound, with at most [`MAX_DISCOVERY_DIALS`]
    /// dials in flight.
    fn discover(&mut self) {
        if !self.config.discovery {
            return;
        }
        let max_peers = self.config.max_peers as usize;
        let outbound_target = max_peers.div_ceil(2);
        let now = Instant::now();
        let wants_more = self.outbound_peers() < outbound_target;
        if wants_more && self.discovery.walk.is_none() && now >= self.discovery.next_walk {
            let target = if self.discovery.walked {
                PeerId::random()
            } else {
                *self.swarm.local_peer_id()
            };
            if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                let query = kad.get_closest_peers(target);
                self.discovery.walk = Some(query);
                self.discovery.walk_found_new = false;
                tracing::debug!(target: TARGET, %target, "random walk of the DHT");
            }
        }
        loop {
            let info = self.swarm.network_info();
            let pending = info.connection_counters().num_pending_outgoing() as usize;
            let connected = info.num_peers();
            if pending >= MAX_DISCOVERY_DIALS
                || connected + pending >= max_peers
                || self.outbound_peers() + pending >= outbound_target
            {
                return;
            }
            let Some((peer, addrs)) = self.discovery.candidates.pop_front() else {
                return;
            };
            self.discovery.queued.remove(&peer);
            if peer == *self.swarm.local_peer_id()
                || self.swarm.is_connected(&peer)
                || self.shared.bans.read().contains_key(&peer)
            {
                continue;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match self.swarm.dial(opts) {
                Ok(()) => tracing::debug!(target: TARGET, %peer, "dialing a discovered peer"),
                Err(e) => {
                    tracing::debug!(target: TARGET, %peer, "cannot dial a discovered peer: {e}")
                }
            }
        }
    }

    /// Queues a peer the DHT told us of, unless it is us, connected, banned or queued.
    fn found(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if peer == *self.swarm.local_peer_id()
            || self.swarm.is_connected(&peer)
            || self.shared.bans.read().contains_key(&peer)
        {
            return;
        }
        if self.discovery.offer(peer, addrs) {
            self.discovery.walk_found_new = true;
        }
    }

    fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::RoutingUpdated {
                peer, addresses, ..
            } => {
                self.found(peer, addresses.into_vec());
                self.discover();
            }
            kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            } => {
                let peers = match result {
                    kad::QueryResult::GetClosestPeers(Ok(ok)) => ok.peers,
                    kad::QueryResult::GetClosestPeers(Err(
                        kad::GetClosestPeersError::Timeout { peers, .. },
                    )) => peers,
                    _ => Vec::new(),
                };
                for info in peers {
                    self.found(info.peer_id, info.addrs);
                }
                if step.last && self.discovery.walk == Some(id) {
                    let discovery = &mut self.discovery;
                    discovery.walk = None;
                    discovery.walked = true;
                    discovery.walk_interval = if discovery.walk_found_new {
                        MIN_WALK_INTERVAL
                    } else {
                        (discovery.walk_interval * 2).min(MAX_WALK_INTERVAL)
                    };
                    discovery.next_walk = Instant::now() + discovery.walk_interval;
                }
                self.discover();
            }
            _ => {}
        }
    }

    /// What identify told us of a peer: its listen addresses go to the DHT (if it speaks our
    /// DHT protocol: the DHT learns of peers that dialled us only this way) and, once the
    /// peer is handshaken, to the known peers.
    fn on_identified(&mut self, peer: PeerId, info: identify::Info) {
        tracing::debug!(target: TARGET, %peer, agent = %info.agent_version, protocol = %info.protocol_version, "identified");
        let listen_addrs: Vec<Multiaddr> = info
            .listen_addrs
            .iter()
            .filter_map(dialable)
            .take(MAX_ADDRS_PER_PEER)
            .collect();
        if let Some(connection) = self.shared.connections.write().get_mut(&peer) {
            connection.listen_addrs = listen_addrs.clone();
            connection.agent = Some(info.agent_version.chars().take(128).collect());
        }
        let protocol = kad_protocol(self.config.chain_id, &self.config.genesis_hash);
        if info.protocols.contains(&protocol)
            && let Some(kad) = self.swarm.behaviour_mut().kad.as_mut()
        {
            for addr in &listen_addrs {
                kad.add_address(&peer, addr.clone());
            }
        }
        self.remember(peer);
    }

    /// Records a handshaken peer in the known peers, at the addresses it listens on (or the
    /// one we dialled).
    fn remember(&mut self, peer: PeerId) {
        if !self.shared.peers.read().contains_key(&peer) {
            return;
        }
        let addrs = match self.shared.connections.read().get(&peer) {
            Some(c) if !c.listen_addrs.is_empty() => c.listen_addrs.clone(),
            Some(c) if !c.inbound => vec![c.remote_addr.clone()],
            _ => return,
        };
        self.known.insert(peer, addrs);
    }

    /// Reads our status off the executor, then sends it as the handshake request.
    fn start_handshake(&self, peer: PeerId) {
        let chain = Arc::clone(&self.chain);
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            match tokio::task::spawn_blocking(move || chain.status()).await {
                Ok(ours) => {
                    let _ = internal.send(Internal::Handshake { peer, ours }).await;
                }
                Err(e) => {
                    tracing::warn!(target: TARGET, %peer, "reading our status for the handshake failed: {e}")
                }
            }
        });
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            if let gossipsub::Event::Subscribed { peer_id, topic } = event {
                tracing::debug!(target: TARGET, peer = %peer_id, %topic, "peer subscribed");
            }
            return;
        };
        let id = GossipId {
            message_id,
            source: propagation_source,
        };
        let event = if message.topic == self.blocks_topic.hash() {
            infera_metrics::network::gossip_in(Topic::Blocks.label());
            NetworkEvent::NewBlock {
                source: propagation_source,
                id: id.clone(),
                block: message.data,
            }
        } else if message.topic == self.txs_topic.hash() {
            infera_metrics::network::gossip_in(Topic::Transactions.label());
            NetworkEvent::NewTransaction {
                source: propagation_source,
                id: id.clone(),
                tx: message.data,
            }
        } else {
            // Cannot happen: we subscribe to these two topics only.
            self.report_gossip(&id, MessageAcceptance::Ignore);
            return;
        };
        // Peer events waiting means the channel is full: keep their order, drop the gossip.
        let delivered = self.pending_events.is_empty()
            && match self.events.try_send(event) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => false,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            };
        if !delivered {
            let dropped = self
                .shared
                .dropped_gossip_events
                .fetch_add(1, Ordering::Relaxed)
                + 1;
            tracing::debug!(target: TARGET, dropped, "event channel full; gossip message dropped");
            // Free the message cache now instead of waiting for it to expire.
            self.report_gossip(&id, MessageAcceptance::Ignore);
        }
    }

    fn on_rpc(&mut self, event: request_response::Event<RequestFrame, Response>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_request(peer, request, channel),
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((_, pending)) = self.pending_requests.remove(&request_id) {
                    self.on_response(peer, pending, Ok(response));
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some((_, pending)) = self.pending_requests.remove(&request_id) {
                    let reason = error.to_string();
                    self.on_response(peer, pending, Err(NetworkError::Request { peer, reason }));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(target: TARGET, %peer, "inbound request failed: {error}");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    fn on_response(&mut self, peer: PeerId, pending: Pending, response: NetworkResult<Response>) {
        // Any status we see refreshes the peer's entry, and a foreign genesis bans it.
        let response = match response {
            Ok(Response::Status(status)) if status.genesis_hash != self.config.genesis_hash => {
                let error = NetworkError::GenesisMismatch {
                    peer,
                    theirs: status.genesis_hash,
                };
                self.ban(peer, "wrong_chain", &error.to_string());
                Err(error)
            }
            Ok(Response::Status(status)) => {
                let newly = {
                    let mut peers = self.shared.peers.write();
                    match peers.get_mut(&peer) {
                        Some(known) => {
                            *known = status.clone();
                            false
                        }
                        None if matches!(pending, Pending::Handshake)
                            && self.swarm.is_connected(&peer) =>
                        {
                            peers.insert(peer, status.clone());
                            true
                        }
                        None => false,
                    }
                };
                if newly {
                    self.remember(peer);
                    tracing::info!(target: TARGET, %peer, head = status.head_number, head_hash = %status.head_hash, "handshake complete");
                    self.queue_event(NetworkEvent::PeerConnected {
                        peer,
                        status: status.clone(),
                    });
                }
                Ok(Response::Status(status))
            }
            other => other,
        };
        match pending {
            Pending::User(reply) => {
                let _ = reply.send(response);
            }
            Pending::Handshake => match response {
                Ok(Response::Status(_)) => {}
                // It checked our status first and found another chain: ban it too, or its
                // address (if a bootnode) would be dialled again and again.
                Ok(Response::Error(ServeError::WrongGenesis)) => self.ban(
                    peer,
                    "wrong_chain",
                    "peer reports that we are on another chain",
                ),
                Ok(other) => {
                    tracing::debug!(target: TARGET, %peer, response = ?other, "handshake refused; disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                Err(e) => {
                    tracing::debug!(target: TARGET, %peer, "handshake failed; disconnecting: {e}");
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            },
        }
    }

    fn on_request(
        &mut self,
        peer: PeerId,
        request: RequestFrame,
        channel: ResponseChannel<Response>,
    ) {
        let request = match request {
            RequestFrame::Valid(request) => request,
            RequestFrame::Malformed(reason) => {
                self.ban(peer, "malformed_request", &reason);
                return;
            }
        };
        let now = Instant::now();
        let limiter = self.limiter(peer, now);
        if !limiter.requests.try_take(now) {
            if limiter.violations.try_take(now) {
                tracing::debug!(target: TARGET, %peer, "request rate exceeded");
                self.respond(peer, channel, Response::Error(ServeError::RateLimited));
            } else {
                self.ban(peer, "rate_limit", "kept exceeding the request rate");
            }
            return;
        }
        if let Request::Status(status) = &request {
            if status.genesis_hash != self.config.genesis_hash {
                let reason = format!(
                    "status names genesis {}, ours is {}",
                    status.genesis_hash, self.config.genesis_hash
                );
                self.respond(peer, channel, Response::Error(ServeError::WrongGenesis));
                self.ban(peer, "wrong_chain", &reason);
                return;
            }
            if let Some(known) = self.shared.peers.write().get_mut(&peer) {
                *known = status.clone();
            }
        }
        let Ok(permit) = Arc::clone(&self.serve_permits).try_acquire_owned() else {
            self.respond(peer, channel, Response::Error(ServeError::Busy));
            return;
        };
        self.serve_later(peer, request, channel, permit);
    }

    /// `peer`'s request limits, fresh ones for a peer not seen (or forgotten).
    fn limiter(&mut self, peer: PeerId, now: Instant) -> &mut PeerLimiter {
        let (per_second, burst) = (
            self.config.inbound_requests_per_second,
            self.config.inbound_request_burst,
        );
        self.limiters.entry(peer).or_insert_with(|| PeerLimiter {
            requests: TokenBucket::new(per_second, burst, now),
            violations: TokenBucket::new(
                RATE_VIOLATIONS_REFILL_PER_SECOND,
                RATE_VIOLATIONS_BURST,
                now,
            ),
        })
    }

    /// Serves `request` on a blocking thread, holding `permit` while it does, and
    /// hands the answer back to the network task to send.
    fn serve_later(
        &self,
        peer: PeerId,
        request: Request,
        channel: ResponseChannel<Response>,
        permit: OwnedSemaphorePermit,
    ) {
        let chain = Arc::clone(&self.chain);
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            let served = tokio::task::spawn_blocking(move || serve(chain.as_ref(), request)).await;
            drop(permit);
            let response = served.unwrap_or_else(|e| {
                tracing::warn!(target: TARGET, %peer, "serving a request failed: {e}");
                Response::Error(ServeError::Unavailable)
            });
            let _ = internal
                .send(Internal::Respond {
                    peer,
                    channel,
                    response,
                })
                .await;
        });
    }

    fn respond(&mut self, peer: PeerId, channel: ResponseChannel<Response>, response: Response) {
        if self
            .swarm
            .behaviour_mut()
            .rpc
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!(target: TARGET, %peer, "could not answer: the request's stream is gone");
        }
    }
}

/// Answers one request from the chain. Runs on a blocking thread.
pub(crate) fn serve(chain: &dyn ChainView, request: Request) -> Response {
    match request {
        Request::Status(_) => Response::Status(chain.status()),
        Request::Blocks { start, count } => {
            let count = count.min(MAX_BLOCKS_PER_REQUEST).min(u64::MAX - start);
            if count == 0 {
                return Response::Blocks(Vec::new());
            }
            let blocks = chain.blocks(start, count, RANGE_SOFT_LIMIT_BYTES);
            // Enforce the limits here too: a view that returns too much must not make us
            // send a response the peer will refuse.
            let budget = MAX_RESPONSE_BYTES - RESPONSE_OVERHEAD_BYTES;
            // Same rule as the view's: stop once the soft limit is exceeded (the block that
            // crosses it is included), and never exceed the response budget.
            let mut total = 0usize;
            let mut out = Vec::new();
            for block in blocks.into_iter().take(count as usize) {
                if total > RANGE_SOFT_LIMIT_BYTES || total.saturating_add(block.len()) > budget {
                    break;
                }
                total += block.len();
                out.push(ByteBuf::from(block));
            }
            Response::Blocks(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::U256;

    use super::*;

    /// A view that ignores `count` and `max_bytes`: the network must still bound its answer.
    struct Careless {
        block_bytes: usize,
        blocks: usize,
    }

    impl ChainView for Careless {
        fn status(&self) -> Status {
            Status {
                genesis_hash: B256::ZERO,
                head_number: 0,
                head_hash: B256::ZERO,
                total_difficulty: U256::ZERO,
            }
        }
        fn blocks(&self, _: u64, _: u64, _: usize) -> Vec<Vec<u8>> {
            vec![vec![1; self.block_bytes]; self.blocks]
        }
    }

    fn served(view: &Careless, start: u64, count: u64) -> Vec<usize> {
        match serve(view, Request::Blocks { start, count }) {
            Response::Blocks(blocks) => blocks.iter().map(|b| b.len()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn serving_clamps_a_careless_view() {
        let many = Careless {
            block_bytes: 10,
            blocks: 500,
        };
        assert_eq!(served(&many, 0, 1000).len() as u64, MAX_BLOCKS_PER_REQUEST);
        assert_eq!(served(&many, 0, 3).len(), 3);
        assert_eq!(served(&many, 5, 0).len(), 0);
        assert_eq!(
            served(&many, u64::MAX, 10).len(),
            0,
            "no block after u64::MAX"
        );
        // 3 MiB blocks: the second crosses the 4 MiB soft limit and is the last.
        let large = Careless {
            block_bytes: 3 << 20,
            blocks: 10,
        };
        assert_eq!(served(&large, 0, 10), vec![3 << 20; 2]);
        // 10 MiB blocks: one per response.
        let huge = Careless {
            block_bytes: 10 << 20,
            blocks: 3,
        };
        assert_eq!(served(&huge, 0, 3), vec![10 << 20]);
        // A block beyond the response budget is never sent.
        let oversized = Careless {
            block_bytes: MAX_RESPONSE_BYTES,
            blocks: 1,
        };
        assert!(served(&oversized, 0, 1).is_empty());
    }

    #[test]
    fn topics_are_per_chain() {
        let a = topic(&B256::repeat_byte(0xab), Topic::Blocks);
        assert_eq!(a.to_string(), "/infera/abababababababab/blocks/1");
        assert_ne!(
            a.hash(),
            topic(&B256::repeat_byte(0xcd), Topic::Blocks).hash()
        );
        assert_ne!(
            a.hash(),
            topic(&B256::repeat_byte(0xab), Topic::Transactions).hash()
        );
    }
}
