//! The Prometheus recorder and the HTTP endpoint that serves its text
//! format (`infera node --metrics ADDR`).
//!
//! The recorder is process-wide (the `metrics` facade has one global
//! recorder) and installed once; each [`serve`] binds its own listener, so
//! port 0 works and the endpoint stops with the node that started it. The
//! exposition text is the exporter's own (`PrometheusHandle::render`).

use std::{convert::Infallible, net::SocketAddr, sync::Mutex, time::Duration};

use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Bytes, header, service::service_fn};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::{net::TcpListener, task::JoinHandle};

use crate::{Kind, SERIES, STORAGE_COMMIT_PAGES, describe};

/// Histogram buckets of every duration, in seconds: from an RPC read
/// (sub-millisecond) to a heavy block import.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Histogram buckets of the pages one block commit writes.
pub const PAGES_BUCKETS: &[f64] = &[
    4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0,
];

/// How often histograms' and summaries' internal state is compacted.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why metrics could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    /// Another recorder was installed in this process first.
    #[error("cannot install the Prometheus recorder: {0}")]
    Recorder(String),
    /// The listen address could not be bound.
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The process's Prometheus recorder, installed on first use.
pub fn install() -> Result<PrometheusHandle, ExporterError> {
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut slot = HANDLE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(STORAGE_COMMIT_PAGES.into()), PAGES_BUCKETS)
        })
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| ExporterError::Recorder(e.to_string()))?;
    describe();
    // Unlabelled counters read 0 from the start rather than missing until
    // their first event (a GPU fallback may never happen).
    for series in SERIES
        .iter()
        .filter(|s| s.kind == Kind::Counter && s.labels.is_empty())
    {
        metrics::counter!(series.name).increment(0);
    }
    let upkeep = handle.clone();
    // A thread rather than a task: the recorder outlives any one runtime.
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        })
        .map_err(|e| ExporterError::Recorder(format!("cannot start the upkeep thread: {e}")))?;
    *slot = Some(handle.clone());
    Ok(handle)
}

/// A running `/metrics` endpoint; dropping it stops the listener.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Installs the recorder (once per process) and serves it on `addr`:
/// `GET /metrics` answers the Prometheus text format, anything else 404.
pub async fn serve(addr: SocketAddr) -> Result<MetricsServer, ExporterError> {
    let handle = install()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ExporterError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ExporterError::Bind { addr, source })?;
    let task = tokio::spawn(accept_loop(listener, handle));
    Ok(MetricsServer { addr: bound, task })
}

async fn accept_loop(listener: TcpListener, handle: PrometheusHandle) {
    loop {
        let socket = match listener.accept().await {
            Ok((socket, _)) => socket,
            Err(err) => {
                tracing::debug!(target: "infera::metrics", %err, "accepting a metrics connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let handle = handle.clone();
                async move { Ok::<_, Infallible>(answer(&handle, &request)) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(socket), service)
                .await;
            if let Err(err) = served {
                tracing::debug!(target: "infera::metrics", %err, "metrics connection failed");
            }
        });
    }
}

fn answer<B>(handle: &PrometheusHandle, request: &Request<B>) -> Response<Full<Bytes>> {
    let mut response = if request.uri().path() == "/metrics" {
        let mut response = Response::new(Full::new(Bytes::from(handle.render())));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    } else {
        Response::new(Full::new(Bytes::from_static(
            b"metrics are served on /metrics\n",
        )))
    };
    if request.uri().path() != "/metrics" {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    response
}
