//! `infera node --metrics`: a dev node that sealed blocks, answered RPC
//! (single calls, a batch, an error) and ran inferences (in a block and in
//! `infera_dryRun`) serves Prometheus text on `/metrics` in which every
//! family of series moved.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use alloy_primitives::{B256, Bytes, U256};
use alloy_sol_types::SolCall;
use infera_precompiles::abi::{IInference, INFERENCE_ADDRESS};
use serde_json::{Value, json};

use crate::ai::infera;
use crate::http::{get, hex, post};
use crate::node::{Node, free_port};
use crate::send_ok;
use crate::wallet::Wallet;

/// One scrape of `/metrics`, parsed into its samples.
struct Scrape {
    text: String,
}

impl Scrape {
    fn take(addr: SocketAddr) -> Scrape {
        let response = get(addr, "/metrics", Duration::from_secs(10)).expect("GET /metrics");
        assert_eq!(response.status, 200, "{}", response.text());
        Scrape {
            text: response.text(),
        }
    }

    /// The sum of the samples of `name` whose labels include every one of
    /// `labels` (`key="value"`); `None` when there is no such sample.
    fn value(&self, name: &str, labels: &[&str]) -> Option<f64> {
        let mut found = None;
        for line in self.text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            if series_name != name {
                continue;
            }
            let have: Vec<&str> = series_labels.split(',').collect();
            if labels.iter().all(|l| have.contains(l)) {
                let value: f64 = value.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
                *found.get_or_insert(0.0) += value;
            }
        }
        found
    }

    fn positive(&self, name: &str, labels: &[&str]) -> f64 {
        match self.value(name, labels) {
            Some(v) if v > 0.0 => v,
            other => panic!(
                "{name}{labels:?} should be > 0, is {other:?}; scrape:\n{}",
                self.text
            ),
        }
    }
}

#[test]
fn metrics_endpoint_serves_every_family_after_blocks_rpc_and_inference() {
    let metrics: SocketAddr = (Ipv4Addr::LOCALHOST, free_port()).into();
    let mut node = Node::start_with_args(&["--metrics", &metrics.to_string()]);

    // Before any activity: the endpoint answers, with the descriptions.
    let first = Scrape::take(metrics);
    assert!(
        first.text.contains("# TYPE infera_chain_head_number gauge"),
        "{}",
        first.text
    );
    assert_eq!(
        first.value("infera_inference_gpu_fallbacks_total", &[]),
        Some(0.0)
    );
    let not_found = get(metrics, "/", Duration::from_secs(10)).unwrap();
    assert_eq!(not_found.status, 404);

    // A model registered by the CLI (transactions, so sealed blocks) ...
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernels/models/digits/digits.infera");
    let url = format!("http://{}", node.http);
    let out = infera(&[
        "model",
        "upload",
        model.to_str().unwrap(),
        "--rpc",
        &url,
        "--key",
        "env:INFERA_E2E_KEY",
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: B256 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let id_label = format!("model=\"{id}\"");
    // Registration leaves the decoded model in the cache; a restart empties
    // it (and the counters), so the first call below misses.
    node.stop();
    node.restart();
    let rpc = &node.rpc;

    // ... then called in a block (a transaction to the precompile: a cache
    // miss) and over RPC (a hit).
    let alice = Wallet::dev(1);
    let input = vec![3u8; 64];
    let call = IInference::inferCall {
        id,
        input: Bytes::from(input.clone()),
    }
    .abi_encode();
    let tx = alice.tx(0, Some(INFERENCE_ADDRESS), U256::ZERO, call, 1_000_000);
    let receipt = send_ok(rpc, &tx);
    let dry = rpc.ok("infera_dryRun", json!([id, hex(&input)]));
    assert!(dry["output"].is_string(), "{dry}");
    // A refused transaction (sent again: already known or nonce too low), an
    // error answer.
    let refused = rpc
        .send_raw(&tx.raw)
        .expect_err("a repeated transaction is refused");
    assert!(refused.code != 0);
    // A batch: its calls are counted one by one.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "no_suchMethod", "params": []},
    ]);
    let answer = post(
        node.http,
        batch.to_string().as_bytes(),
        Duration::from_secs(10),
    )
    .unwrap();
    let answers: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(answers.as_array().map(Vec::len), Some(3), "{answers}");

    // The gauges are sampled every second: wait for the head to show.
    let head = u64::from_str_radix(
        receipt["blockNumber"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let scrape = loop {
        let scrape = Scrape::take(metrics);
        if scrape.value("infera_chain_head_number", &[]) >= Some(head as f64) {
            break scrape;
        }
        assert!(
            Instant::now() < deadline,
            "head gauge never reached {head}:\n{}",
            scrape.text
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // Chain: blocks sealed, each phase timed, gas counted.
    scrape.positive("infera_chain_blocks_total", &["source=\"sealed\""]);
    scrape.positive("infera_chain_transactions_total", &["source=\"sealed\""]);
    for phase in ["execute", "state_root", "commit"] {
        let phase = format!("phase=\"{phase}\"");
        scrape.positive("infera_chain_seal_phase_seconds_count", &[&phase]);
        scrape.positive(
            "infera_chain_seal_phase_seconds_bucket",
            &[&phase, "le=\"+Inf\""],
        );
    }
    scrape.positive("infera_chain_seal_seconds_count", &[]);
    scrape.positive("infera_chain_gas_used_total", &["source=\"sealed\""]);
    scrape.positive("infera_chain_gas_per_second", &["source=\"sealed\""]);
    assert!(scrape.value("infera_chain_head_age_seconds", &[]).is_some());
    // Pool: admitted, refused by reason, sizes sampled.
    scrape.positive("infera_txpool_admitted_total", &[]);
    scrape.positive("infera_txpool_rejected_total", &[]);
    assert!(scrape.value("infera_txpool_pending", &[]).is_some());
    assert!(scrape.value("infera_txpool_queued", &[]).is_some());
    // RPC: per method, errors, latency; batch entries one by one; unknown
    // methods under one label.
    scrape.positive(
        "infera_rpc_requests_total",
        &["method=\"eth_sendRawTransaction\""],
    );
    scrape.positive(
        "infera_rpc_errors_total",
        &["method=\"eth_sendRawTransaction\""],
    );
    scrape.positive("infera_rpc_requests_total", &["method=\"eth_blockNumber\""]);
    scrape.positive("infera_rpc_errors_total", &["method=\"unknown\""]);
    scrape.positive(
        "infera_rpc_request_seconds_count",
        &["method=\"infera_dryRun\""],
    );
    assert!(
        !scrape.text.contains("no_suchMethod"),
        "a client's method name became a label"
    );
    assert!(scrape.value("infera_rpc_connections", &[]).is_some());
    // Inference: the block's call and the dry run, on the CPU, with gas; the
    // cache missed once and then hit.
    assert!(
        scrape.positive(
            "infera_inference_calls_total",
            &[&id_label, "device=\"cpu\""]
        ) >= 2.0
    );
    scrape.positive(
        "infera_inference_seconds_count",
        &[&id_label, "device=\"cpu\""],
    );
    scrape.positive("infera_inference_gas_total", &[&id_label, "device=\"cpu\""]);
    scrape.positive("infera_inference_model_cache_misses_total", &[]);
    scrape.positive("infera_inference_model_cache_hits_total", &[]);
    scrape.positive("infera_inference_model_cache_bytes", &[]);
    assert_eq!(
        scrape.value("infera_inference_gpu_mismatches_total", &[]),
        Some(0.0)
    );
    // Storage: the data file and the pages each commit wrote.
    scrape.positive("infera_storage_db_file_bytes", &[]);
    scrape.positive("infera_storage_db_used_bytes", &[]);
    scrape.positive("infera_storage_pages_written_total", &[]);
    scrape.positive("infera_storage_commit_pages_count", &["source=\"sealed\""]);
    // Network: a dev node has no peers, and says so.
    assert_eq!(scrape.value("infera_network_peers", &[]), Some(0.0));
}

/// The first two testnet authorities' keys (as in `network.rs`).
const AUTHORITY_KEYS: [&str; 2] = [
    "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
];

/// One `infera node` on the testnet rules (an authority when given a key),
/// killed on drop (log tail printed when the test fails).
struct NetNode {
    child: std::process::Child,
    dir: tempfile::TempDir,
    rpc: crate::http::Rpc,
}

impl NetNode {
    fn start(
        genesis: &Path,
        key: Option<&str>,
        bootnode: Option<&str>,
        metrics: Option<SocketAddr>,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("infera-metrics-")
            .tempdir()
            .unwrap();
        let http = free_port();
        let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_infera"));
        cmd.arg("node")
            .arg("--chain")
            .arg(genesis)
            .arg("--datadir")
            .arg(dir.path().join("data"))
            .args([
                "--http",
                "--http.addr",
                "127.0.0.1",
                "--http.port",
                &http.to_string(),
            ])
            .args([
                "--p2p.addr",
                "127.0.0.1",
                "--port",
                &free_port().to_string(),
            ])
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(key) = key {
            cmd.env("INFERA_AUTHORITY_KEY", key)
                .args(["--authority.key", "env:INFERA_AUTHORITY_KEY"]);
        }
        if let Some(bootnode) = bootnode {
            cmd.args(["--bootnodes", bootnode]);
        }
        if let Some(metrics) = metrics {
            cmd.args(["--metrics", &metrics.to_string()]);
        }
        let node = NetNode {
            child: cmd.spawn().unwrap(),
            dir,
            rpc: crate::http::Rpc::new((Ipv4Addr::LOCALHOST, http).into()),
        };
        wait_for("the node to start", || {
            node.rpc
                .try_request("eth_chainId", json!([]))
                .is_ok_and(|r| r.is_ok())
                && node.dir.path().join("data/p2p-addresses").exists()
        });
        node
    }

    fn enode(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("data/p2p-addresses")).unwrap();
        text.lines().next().unwrap().to_string()
    }

    fn head(&self) -> u64 {
        self.rpc.block_number()
    }
}

impl Drop for NetNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "---- node log tail ----\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_follower_counts_range_sync_imports_peers_and_gossip() {
    // The testnet rules with the dev chain id and a one-second period.
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(repo.join("genesis/testnet.json")).unwrap();
    let mut genesis: Value = serde_json::from_str(&text).unwrap();
    genesis["config"]["chainId"] = json!(crate::node::CHAIN_ID);
    genesis["config"]["clique"]["period"] = json!(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    genesis["timestamp"] = json!(format!("{now:#x}"));
    let genesis_path = dir.path().join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_string()).unwrap();

    // Two authorities of three seal (a block a second); a follower started
    // behind them catches up by range sync, then imports gossiped blocks.
    let first = NetNode::start(&genesis_path, Some(AUTHORITY_KEYS[0]), None, None);
    let second = NetNode::start(
        &genesis_path,
        Some(AUTHORITY_KEYS[1]),
        Some(&first.enode()),
        None,
    );
    wait_for("block 3", || first.head() >= 3 && second.head() >= 3);
    let metrics: SocketAddr = (Ipv4Addr::LOCALHOST, free_port()).into();
    let follower = NetNode::start(&genesis_path, None, Some(&first.enode()), Some(metrics));
    wait_for("a gossiped block on the follower", || {
        Scrape::take(metrics).value(
            "infera_network_gossip_messages_total",
            &["direction=\"in\"", "topic=\"block\""],
        ) > Some(0.0)
    });
    let head = follower.head();
    assert!(head >= 3, "{head}");
    // Gauges are sampled every second.
    std::thread::sleep(Duration::from_millis(1500));

    let scrape = Scrape::take(metrics);
    scrape.positive("infera_network_sync_blocks_total", &[]);
    scrape.positive("infera_network_peers", &[]);
    scrape.positive("infera_chain_blocks_total", &["source=\"imported\""]);
    assert_eq!(
        scrape.value("infera_chain_blocks_total", &["source=\"sealed\""]),
        None,
        "a follower seals nothing"
    );
    for phase in ["validate", "execute", "state_root", "commit"] {
        let phase = format!("phase=\"{phase}\"");
        scrape.positive("infera_chain_import_phase_seconds_count", &[&phase]);
    }
    scrape.positive("infera_chain_import_seconds_count", &[]);
    scrape.positive(
        "infera_storage_commit_pages_count",
        &["source=\"imported\""],
    );
    assert!(scrape.positive("infera_chain_head_number", &[]) >= head as f64);
    // Nobody misbehaved.
    assert_eq!(scrape.value("infera_network_peer_bans_total", &[]), None);
}
