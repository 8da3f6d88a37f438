//! JSON-RPC throughput: the node's real server (in-process, loopback), N
//! concurrent clients, each on its own HTTP/1.1 keep-alive connection, one
//! request in flight per connection.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use eyre::{Result, WrapErr as _, eyre};
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, body::Bytes, header};
use hyper_util::rt::TokioIo;
use infera_chainspec::ChainSpec;
use infera_rpc::{RpcConfig, RpcContext};
use infera_storage::Database;
use infera_txpool::{TxAdmission, TxPool};
use parking_lot::Mutex;
use tokio::{net::TcpStream, sync::Notify};

/// What one load run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub method: &'static str,
    pub connections: usize,
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// One response body, for the report.
    pub sample: String,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// Starts the node's HTTP JSON-RPC server on 127.0.0.1:0 over `db`.
pub async fn start(
    db: Database,
    chain: Arc<ChainSpec>,
    pool: Arc<Mutex<TxPool>>,
) -> Result<(SocketAddr, infera_rpc::RpcServers)> {
    let (events, _) = tokio::sync::broadcast::channel(infera_node::CHAIN_EVENT_CAPACITY);
    let ctx = RpcContext::new(
        TxAdmission::new(db, chain, pool, events, Arc::new(Notify::new())),
        infera_precompiles::ModelCache::shared(),
        RpcConfig::default(),
    );
    let servers = infera_rpc::start_servers(ctx, Some("127.0.0.1:0".parse()?), None).await?;
    let addr = servers.http_addr.ok_or_else(|| eyre!("no HTTP address"))?;
    Ok((addr, servers))
}

/// `connections` tasks send `body` as fast as they can for `warmup` (not
/// counted) and then `duration`. A response counts as an error unless it is
/// HTTP 200 with a JSON-RPC `result` and `check` accepts the result.
pub async fn load(
    addr: SocketAddr,
    method: &'static str,
    body: String,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    check: fn(&serde_json::Value) -> bool,
) -> Result<LoadResult> {
    let body = Bytes::from(body);
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            client(addr, body, start, end, check).await
        }));
    }
    let mut latencies: Vec<u32> = Vec::new();
    let mut errors = 0;
    let mut sample = String::new();
    for task in tasks {
        let stats = task.await.wrap_err("client task panicked")??;
        latencies.extend(stats.latencies_us);
        errors += stats.errors;
        if sample.is_empty() {
            sample = stats.sample;
        }
    }
    // Counted requests were sent in [start, end); the last ones end a little later.
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| -> Duration {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        Duration::from_micros(u64::from(latencies[i]))
    };
    Ok(LoadResult {
        method,
        connections,
        requests: latencies.len() as u64,
        errors,
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        max: pct(1.0),
        sample,
    })
}

struct ClientStats {
    latencies_us: Vec<u32>,
    errors: u64,
    sample: String,
}

async fn client(
    addr: SocketAddr,
    body: Bytes,
    start: Instant,
    end: Instant,
    check: fn(&serde_json::Value) -> bool,
) -> Result<ClientStats> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let uri = format!("http://{addr}/");
    let mut stats = ClientStats {
        latencies_us: Vec::with_capacity(64 * 1024),
        errors: 0,
        sample: String::new(),
    };
    let mut checked = false;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let request = Request::post(&uri)
            .header(header::HOST, addr.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()))?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let latency = sent.elapsed();
        // Full parse of the first response of each connection; after that a
        // cheap shape check (the body is the same every time).
        let ok = status.is_success()
            && if checked {
                memchr(&bytes, b"\"result\"") && !memchr(&bytes, b"\"error\"")
            } else {
                checked = true;
                let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                stats.sample = String::from_utf8_lossy(&bytes).into_owned();
                value.get("error").is_none() && value.get("result").is_some_and(check)
            };
        if !ok {
            stats.errors += 1;
            if stats.sample.is_empty() || stats.errors == 1 {
                stats.sample = format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes));
            }
        }
        if sent >= start {
            stats
                .latencies_us
                .push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
        }
    }
    Ok(stats)
}

fn memchr(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
