//! `--rpc-heavy`: how fast cheap JSON-RPC methods stay while executions flood
//! the node. The node's real server (default `RpcConfig`: gas cap, timeout,
//! one execution slot per core) runs over a fresh database whose genesis holds
//! an infinite-loop contract; 200 `eth_call`s of it are sent at once, each on
//! its own connection, while a few clients measure `eth_blockNumber` and
//! `eth_sendRawTransaction` (fresh signed transfers) until the flood is over.
//!
//! The chain is the dev chain before Osaka, so that no EIP-7825 per-transaction
//! cap hides the node's own bounds: each loop runs to the RPC gas cap.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_eips::eip2718::Encodable2718 as _;
use alloy_primitives::{Address, TxKind, U256, address};
use eyre::{Result, WrapErr as _, eyre};
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, body::Bytes, client::conn::http1::SendRequest, header};
use hyper_util::rt::TokioIo;
use infera_chainspec::ChainSpec;
use tokio::{net::TcpStream, sync::Mutex};

use crate::{
    chain::{self, Unsigned},
    node::Rig,
};

/// `JUMPDEST PUSH1 0 JUMP`: loops until the gas runs out.
const LOOP: Address = address!("0x0000000000000000000000000000000000001007");
/// Heavy calls sent at once.
const HEAVY_CALLS: usize = 200;
/// Concurrent clients of each cheap method.
const CHEAP_CLIENTS: usize = 4;
/// Time between two requests of one cheap client (open loop, as wallets poll):
/// 4 clients make 800 requests/s per method.
const CHEAP_INTERVAL: Duration = Duration::from_millis(5);
/// Signed transfers available to `eth_sendRawTransaction` (one per sender):
/// more than the baseline and a flood of twice the timeout use.
const RAW_TRANSACTIONS: u64 = 12_000;
/// Length of the idle baseline of the cheap methods.
const BASELINE: Duration = Duration::from_secs(2);

/// The benchmark chain without Osaka, with the loop contract.
fn chain_spec(funded: &[Address]) -> Result<ChainSpec> {
    let base = chain::chain_spec(funded, U256::from(10).pow(U256::from(24)))?;
    let mut genesis = serde_json::to_value(&base.genesis)?;
    genesis["config"]
        .as_object_mut()
        .ok_or_else(|| eyre!("genesis without config"))?
        .remove("osakaTime");
    genesis["alloc"][LOOP.to_checksum(None)] =
        serde_json::json!({ "balance": "0x0", "code": "0x5b600056" });
    ChainSpec::from_json(&genesis.to_string()).wrap_err("heavy benchmark chain spec")
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request; its latency and the JSON-RPC response.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    body: String,
) -> Result<(Duration, serde_json::Value)> {
    let request = Request::post(format!("http://{addr}/"))
        .header(header::HOST, addr.to_string())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let sent = Instant::now();
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let bytes = response.into_body().collect().await?.to_bytes();
    let latency = sent.elapsed();
    Ok((latency, serde_json::from_slice(&bytes)?))
}

fn body(method: &str, params: serde_json::Value) -> String {
    serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string()
}

/// Latencies of one cheap method; errors counted apart.
#[derive(Default)]
struct Latencies {
    samples: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

impl Latencies {
    fn record(&mut self, latency: Duration, response: &serde_json::Value) {
        if response.get("result").is_some() {
            self.samples.push(latency);
        } else {
            self.errors += 1;
            self.first_error
                .get_or_insert_with(|| response["error"].to_string());
        }
    }

    fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i]
    }

    fn line(&self, name: &str) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut line = format!(
            "{name:<24} {:>6} answers  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            self.samples.len(),
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            ms(self.percentile(1.0)),
        );
        if self.errors > 0 {
            line.push_str(&format!(
                "  ({} errors, first: {})",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        line
    }
}

/// Cheap clients: `CHEAP_CLIENTS` each of `eth_blockNumber` and
/// `eth_sendRawTransaction`, one request in flight per client, until `stop`.
async fn cheap_load(
    addr: SocketAddr,
    raw: Arc<Mutex<std::vec::IntoIter<String>>>,
    stop: Arc<AtomicBool>,
) -> Result<(Latencies, Latencies)> {
    let mut tasks = Vec::new();
    for client in 0..2 * CHEAP_CLIENTS {
        let raw = raw.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await?;
            let mut latencies = Latencies::default();
            let mut ticks = tokio::time::interval(CHEAP_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                ticks.tick().await;
                let request = if client % 2 == 0 {
                    body("eth_blockNumber", serde_json::json!([]))
                } else {
                    let Some(tx) = raw.lock().await.next() else {
                        break;
                    };
                    body("eth_sendRawTransaction", serde_json::json!([tx]))
                };
                let (latency, response) = send(&mut sender, addr, request).await?;
                latencies.record(latency, &response);
            }
            Ok::<_, eyre::Report>((client % 2 == 0, latencies))
        }));
    }
    let mut block_number = Latencies::default();
    let mut send_raw = Latencies::default();
    for task in tasks {
        let (is_block_number, latencies) = task.await??;
        if is_block_number {
            block_number.merge(latencies);
        } else {
            send_raw.merge(latencies);
        }
    }
    Ok((block_number, send_raw))
}

pub fn run() -> Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("infera JSON-RPC under an execution flood (--rpc-heavy)");
    println!(
        "machine: {cpus} logical CPUs, {}; server and clients share them",
        if cfg!(debug_assertions) {
            "DEBUG build (use --release)"
        } else {
            "release build"
        },
    );
    let senders: Vec<chain::Key> = (0..RAW_TRANSACTIONS).map(chain::key).collect();
    let funded: Vec<Address> = senders.iter().map(|k| k.address).collect();
    let chain = Arc::new(chain_spec(&funded)?);
    let rig = Rig::new(chain.clone(), chain::fresh_address("coinbase", 0))?;
    let raw: Vec<String> = chain::sign_all(
        senders
            .iter()
            .enumerate()
            .map(|(i, key)| {
                Unsigned::new(
                    *key,
                    0,
                    TxKind::Call(chain::fresh_address("heavy-recipient", i as u64)),
                    U256::from(1),
                    21_000,
                    Default::default(),
                )
            })
            .collect(),
    )
    .iter()
    .map(|tx| alloy_primitives::hex::encode_prefixed(tx.tx.encoded_2718()))
    .collect();
    let config = infera_rpc::RpcConfig {
        // Every client of this benchmark is on loopback: one address.
        max_connections_per_ip: 2 * HEAVY_CALLS as u32,
        ..infera_rpc::RpcConfig::default()
    };
    println!(
        "node: default RPC bounds: gas cap {} gas, timeout {:?}, {} execution slots (one per core), at most {} waiting",
        config.gas_cap,
        config.evm_timeout,
        config.max_heavy_calls,
        infera_rpc::MAX_QUEUED_HEAVY_CALLS
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (events, _) = tokio::sync::broadcast::channel(infera_node::CHAIN_EVENT_CAPACITY);
        let ctx = infera_rpc::RpcContext::new(
            infera_txpool::TxAdmission::new(
                rig.db.clone(),
                chain.clone(),
                rig.pool.clone(),
                events,
                Arc::new(tokio::sync::Notify::new()),
            ),
            infera_precompiles::ModelCache::shared(),
            config,
        );
        let servers =
            infera_rpc::start_servers(ctx, Some("127.0.0.1:0".parse()?), None).await?;
        let addr = servers.http_addr.ok_or_else(|| eyre!("no HTTP address"))?;
        let raw = Arc::new(Mutex::new(raw.into_iter()));

        // Idle baseline.
        let stop = Arc::new(AtomicBool::new(false));
        let baseline = tokio::spawn(cheap_load(addr, raw.clone(), stop.clone()));
        tokio::time::sleep(BASELINE).await;
        stop.store(true, Ordering::Relaxed);
        let (idle_block_number, idle_send_raw) = baseline.await??;

        // The flood: every heavy call on its own connection, all at once.
        let mut heavy_senders = Vec::with_capacity(HEAVY_CALLS);
        for _ in 0..HEAVY_CALLS {
            heavy_senders.push(connect(addr).await?);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let cheap = tokio::spawn(cheap_load(addr, raw.clone(), stop.clone()));
        let started = Instant::now();
        let mut heavy = Vec::with_capacity(HEAVY_CALLS);
        for mut sender in heavy_senders {
            heavy.push(tokio::spawn(async move {
                let request = body("eth_call", serde_json::json!([{ "to": LOOP }, "latest"]));
                send(&mut sender, addr, request).await
            }));
        }
        let mut heavy_latencies = Vec::with_capacity(HEAVY_CALLS);
        let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
        for call in heavy {
            let (latency, response) = call.await??;
            heavy_latencies.push(latency);
            let outcome = response["error"]["message"]
                .as_str()
                .map_or_else(|| "answered".to_string(), str::to_string);
            *outcomes.entry(outcome).or_default() += 1;
        }
        let flood = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let (block_number, send_raw) = cheap.await??;
        servers.stop().await;

        heavy_latencies.sort_unstable();
        let pct = |p: f64| {
            let i = ((heavy_latencies.len() as f64 * p).ceil() as usize)
                .clamp(1, heavy_latencies.len())
                - 1;
            heavy_latencies[i].as_secs_f64()
        };
        println!();
        println!(
            "== idle ({BASELINE:?}, {CHEAP_CLIENTS} clients per method, one request per {CHEAP_INTERVAL:?} each) =="
        );
        println!("{}", idle_block_number.line("eth_blockNumber"));
        println!("{}", idle_send_raw.line("eth_sendRawTransaction"));
        println!();
        println!(
            "== {HEAVY_CALLS} infinite-loop eth_calls at once: all answered in {:.2} s (p50 {:.2} s, p99 {:.2} s, max {:.2} s) ==",
            flood.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            pct(1.0)
        );
        for (outcome, count) in &outcomes {
            println!("  {count:>4} x {outcome}");
        }
        println!("meanwhile ({CHEAP_CLIENTS} clients per method):");
        println!("{}", block_number.line("eth_blockNumber"));
        println!("{}", send_raw.line("eth_sendRawTransaction"));
        Ok(())
    })
}
