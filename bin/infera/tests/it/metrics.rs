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
