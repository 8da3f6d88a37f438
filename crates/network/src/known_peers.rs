//! Peers met on earlier runs, remembered in the datadir so that a restart can reach the
//! network even when its bootnodes are gone.
//!
//! The file is JSON, `{"version": 1, "peers": [{"id": "12D3…", "addrs": ["/ip4/…/tcp/…"],
//! "lastSeen": <unix seconds>}]}`, written to a temporary file and renamed over the old one,
//! so a crash leaves either the old list or the new one. Only peers that completed the status
//! handshake (so are on our chain) are remembered, at most [`MAX_KNOWN_PEERS`] of them.

use std::{
    collections::HashMap,
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::config::{MAX_ADDRS_PER_PEER, MAX_KNOWN_PEERS, MAX_KNOWN_PEERS_FILE_BYTES};

const TARGET: &str = "infera::net";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct FileContents {
    version: u32,
    peers: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    id: String,
    addrs: Vec<String>,
    last_seen: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Known {
    pub(crate) addrs: Vec<Multiaddr>,
    pub(crate) last_seen: u64,
}

/// The remembered peers and where they are written.
pub(crate) struct KnownPeers {
    path: Option<PathBuf>,
    peers: HashMap<PeerId, Known>,
    /// Changed since the last save.
    dirty: bool,
    /// Saves run on blocking threads; each takes this lock and skips its write if a later
    /// generation was already written, so an older list never replaces a newer one.
    written: Arc<Mutex<u64>>,
    generation: u64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The address without a trailing `/p2p/<id>` (the id is stored beside it), or `None` for an
/// address nobody else could dial (unspecified IP, a relay circuit).
pub(crate) fn dialable(addr: &Multiaddr) -> Option<Multiaddr> {
    let mut addr = addr.clone();
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    let usable = addr.iter().all(|p| match p {
        Protocol::Ip4(ip) => !ip.is_unspecified(),
        Protocol::Ip6(ip) => !ip.is_unspecified(),
        Protocol::P2pCircuit | Protocol::P2p(_) => false,
        _ => true,
    });
    (usable && !addr.is_empty()).then_some(addr)
}

/// Decodes a known-peers file; any fault makes the whole file unusable, named in the error.
fn decode(bytes: &[u8]) -> Result<HashMap<PeerId, Known>, String> {
    let contents: FileContents =
        serde_json::from_slice(bytes).map_err(|e| format!("not a known-peers JSON file: {e}"))?;
    if contents.version != VERSION {
        return Err(format!(
            "version {} (this node reads version {VERSION})",
            contents.version
        ));
    }
    if contents.peers.len() > MAX_KNOWN_PEERS {
        return Err(format!(
            "{} peers, more than the {MAX_KNOWN_PEERS} this node writes",
            contents.peers.len()
        ));
    }
    let mut peers = HashMap::new();
    for (i, entry) in contents.peers.into_iter().enumerate() {
        let peer: PeerId = entry
            .id
            .parse()
            .map_err(|e| format!("peer #{i}: id `{}` is not a peer id: {e}", entry.id))?;
        let addrs = entry
            .addrs
            .iter()
            .take(MAX_ADDRS_PER_PEER)
            .map(|a| {
                a.parse::<Multiaddr>().map_err(|e| {
                    format!("peer #{i} ({peer}): address `{a}` is not a multiaddr: {e}")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        peers.insert(
            peer,
            Known {
                addrs,
                last_seen: entry.last_seen,
            },
        );
    }
    Ok(peers)
}

fn encode(peers: &HashMap<PeerId, Known>) -> Vec<u8> {
    let mut entries: Vec<Entry> = peers
        .iter()
        .map(|(peer, known)| Entry {
            id: peer.to_string(),
            addrs: known.addrs.iter().map(ToString::to_string).collect(),
            last_seen: known.last_seen,
        })
        .collect();
    entries.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.id.cmp(&b.id)));
    let contents = FileContents {
        version: VERSION,
        peers: entries,
    };
    serde_json::to_vec_pretty(&contents).expect("known peers serialise")
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)
}

impl KnownPeers {
    /// Reads the file at `path`. A missing file is an empty list; an unreadable, oversized or
    /// malformed one is logged with what is wrong and treated as empty.
    pub(crate) fn load(path: Option<PathBuf>) -> Self {
        let peers = path.as_deref().map(read_file).unwrap_or_default();
        Self {
            path,
            peers,
            dirty: false,
            written: Arc::default(),
            generation: 0,
        }
    }

    /// The remembered peers, most recently seen first.
    pub(crate) fn by_recency(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut peers: Vec<_> = self.peers.iter().collect();
        peers.sort_by_key(|(_, known)| std::cmp::Reverse(known.last_seen));
        peers
            .into_iter()
            .map(|(peer, known)| (*peer, known.addrs.clone()))
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn get(&self, peer: &PeerId) -> Option<&Known> {
        self.peers.get(peer)
    }

    /// Remembers `peer` at `addrs` (the dialable ones, at most [`MAX_ADDRS_PER_PEER`]), seen
    /// now; past [`MAX_KNOWN_PEERS`] the longest unseen peer is forgotten.
    pub(crate) fn insert(&mut self, peer: PeerId, addrs: impl IntoIterator<Item = Multiaddr>) {
        let mut usable: Vec<Multiaddr> = Vec::new();
        for addr in addrs.into_iter().filter_map(|a| dialable(&a)) {
            if !usable.contains(&addr) && usable.len() < MAX_ADDRS_PER_PEER {
                usable.push(addr);
            }
        }
        if usable.is_empty() {
            return;
        }
        let now = unix_now();
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_KNOWN_PEERS {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(_, known)| known.last_seen)
                .map(|(peer, _)| *peer);
            if let Some(oldest) = oldest {
                self.peers.remove(&oldest);
            }
        }
        let known = Known {
            addrs: usable,
            last_seen: now,
        };
        if self.peers.insert(peer, known.clone()).as_ref() != Some(&known) {
            self.dirty = true;
        }
    }

    /// Forgets `peer` (banned, or removed by the operator).
    pub(crate) fn remove(&mut self, peer: &PeerId) {
        if self.peers.remove(peer).is_some() {
            self.dirty = true;
        }
    }

    /// Writes the list on a blocking thread if it changed since the last save.
    pub(crate) fn save_in_background(&mut self) {
        if let Some((path, bytes, generation)) = self.snapshot() {
            let written = Arc::clone(&self.written);
            tokio::task::spawn_blocking(move || save(&path, &bytes, generation, &written));
        }
    }

    /// Writes the list now if it changed (at shutdown).
    pub(crate) fn save_now(&mut self) {
        if let Some((path, bytes, generation)) = self.snapshot() {
            save(&path, &bytes, generation, &self.written);
        }
    }

    fn snapshot(&mut self) -> Option<(PathBuf, Vec<u8>, u64)> {
        let path = self.path.clone().filter(|_| self.dirty)?;
        self.dirty = false;
        self.generation += 1;
        Some((path, encode(&self.peers), self.generation))
    }
}

fn save(path: &Path, bytes: &[u8], generation: u64, written: &Mutex<u64>) {
    let mut last = written.lock();
    if *last >= generation {
        return;
    }
    match write_atomic(path, bytes) {
        Ok(()) => *last = generation,
        Err(e) => {
            tracing::warn!(target: TARGET, path = %path.display(), "cannot write the known peers: {e}")
        }
    }
}

fn read_file(path: &Path) -> HashMap<PeerId, Known> {
    let result = match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return HashMap::new(),
        Err(e) => Err(format!("cannot read it: {e}")),
        Ok(meta) if meta.len() > MAX_KNOWN_PEERS_FILE_BYTES => Err(format!(
            "{} bytes, more than the {MAX_KNOWN_PEERS_FILE_BYTES} this node reads",
            meta.len()
        )),
        Ok(_) => fs::read(path)
            .map_err(|e| format!("cannot read it: {e}"))
            .and_then(|bytes| decode(&bytes)),
    };
    match result {
        Ok(peers) => {
            tracing::info!(target: TARGET, path = %path.display(), peers = peers.len(), "loaded known peers");
            peers
        }
        Err(problem) => {
            tracing::warn!(target: TARGET, path = %path.display(), "ignoring the known-peers file: {problem}");
            HashMap::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn round_trips_and_keeps_only_dialable_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("network/known-peers.json");
        let mut known = KnownPeers::load(Some(path.clone()));
        let peer = PeerId::random();
        known.insert(
            peer,
            [
                addr(1).with(Protocol::P2p(peer)),
                "/ip4/0.0.0.0/tcp/2".parse().unwrap(),
                addr(1),
                addr(3),
            ],
        );
        known.save_now();
        let again = KnownPeers::load(Some(path.clone()));
        assert_eq!(again.get(&peer).unwrap().addrs, vec![addr(1), addr(3)]);
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn is_bounded_by_forgetting_the_longest_unseen() {
        let mut known = KnownPeers::load(None);
        let first = PeerId::random();
        known.insert(first, [addr(1)]);
        known.peers.get_mut(&first).unwrap().last_seen = 0;
        for port in 0..MAX_KNOWN_PEERS as u16 {
            known.insert(PeerId::random(), [addr(port + 2)]);
        }
        assert_eq!(known.peers.len(), MAX_KNOWN_PEERS);
        assert!(known.get(&first).is_none());
    }

    #[test]
    fn a_corrupt_file_is_named_and_ignored() {
        let peer = PeerId::random();
        let err = decode(b"{").unwrap_err();
        assert!(err.contains("not a known-peers JSON file"), "{err}");
        let err = decode(br#"{"version": 2, "peers": []}"#).unwrap_err();
        assert!(err.contains("version 2"), "{err}");
        let bad_id = r#"{"version": 1, "peers": [{"id": "nope", "addrs": [], "lastSeen": 1}]}"#;
        let err = decode(bad_id.as_bytes()).unwrap_err();
        assert!(err.contains("peer #0") && err.contains("`nope`"), "{err}");
        let bad_addr = format!(
            r#"{{"version": 1, "peers": [{{"id": "{peer}", "addrs": ["tcp/1"], "lastSeen": 1}}]}}"#
        );
        let err = decode(bad_addr.as_bytes()).unwrap_err();
        assert!(err.contains("`tcp/1`"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known-peers.json");
        std::fs::write(&path, "garbage").unwrap();
        let mut known = KnownPeers::load(Some(path.clone()));
        assert!(known.by_recency().is_empty());
        known.insert(peer, [addr(9)]);
        known.save_now();
        assert_eq!(KnownPeers::load(Some(path)).by_recency().len(), 1);
    }
}
