//! Prometheus metrics (`[radius] metrics_listen`, off by default), from the Prometheus
//! project's `prometheus-client` crate, served by a GET-only HTTP/1.1 responder on a loopback
//! address.
//!
//! The drop and answer counters are the ones `stats.rs` keeps for SIGUSR1 and the log: they
//! are read at scrape time by [`StatsCollector`], never counted a second time. What only the
//! metrics need (labels by client and by reason, histograms) lives in [`Metrics`].
//!
//! Why no HTTP framework: the endpoint answers one fixed GET on loopback; hyper or axum would
//! bring a server stack (and its parsing surface) into an authentication daemon for ~60 lines
//! of request-line reading. Anything but `GET /metrics` gets 404/405, a request head larger
//! than 8 KiB or slower than 5 s is dropped, and every connection is closed after one answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::server::Shared;
use crate::stats::Drop;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabels {
    pub client: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// accept, reject or challenge.
    pub outcome: String,
    /// The policy's reason code (`Reason::code`), as in the log line.
    pub reason: String,
}

/// The store writer's figures; cloned into each configuration generation's writer.
#[derive(Clone, Debug)]
pub struct StoreMetrics {
    /// One batch's transaction (`authenticate_many[_deferred]`).
    pub commit_seconds: Histogram,
    /// The logins in one transaction.
    pub batch_size: Histogram,
    /// One sync making committed batches durable (group commit engines only).
    pub sync_seconds: Histogram,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            commit_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            sync_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
        }
    }
}

/// The labelled counters and the histograms. Cheap to clone (every metric is a handle).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Requests admitted from a configured client (by its `name`), before any check.
    pub requests: Family<ClientLabels, Counter>,
    pub decisions: Family<DecisionLabels, Counter>,
    /// From admission to the reply being ready (PAM's failure delay included).
    pub latency_seconds: Histogram,
    pub store: StoreMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            decisions: Family::default(),
            latency_seconds: Histogram::new(exponential_buckets(0.000_5, 2.0, 14)),
            store: StoreMetrics::default(),
        }
    }
}

/// The counters of `stats.rs` and the pending challenges, read at each scrape.
struct StatsCollector(Arc<Shared>);

impl std::fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatsCollector")
    }
}

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = &self.0.stats;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);

        let received = ConstCounter::new(load(&stats.received));
        let e = encoder.encode_descriptor(
            "mfa_radius_received",
            "Packets received (UDP datagrams and RadSec packets), before any check",
            None,
            received.metric_type(),
        )?;
        received.encode(e)?;

        let mut fam = encoder.encode_descriptor(
            "mfa_radius_dropped",
            "Packets dropped without a reply, by cause",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for d in Drop::ALL {
            let c = ConstCounter::new(stats.dropped(d));
            c.encode(fam.encode_family(&[("cause", d.name())])?)?;
        }

        let resent = ConstCounter::new(load(&stats.resent));
        let e = encoder.encode_descriptor(
            "mfa_radius_resent",
            "Cached replies sent again to a retransmission (also counted as dropped duplicates)",
            None,
            resent.metric_type(),
        )?;
        resent.encode(e)?;

        let status = ConstCounter::new(load(&stats.status_server));
        let e = encoder.encode_descriptor(
            "mfa_radius_status_server",
            "Status-Server requests answered",
            None,
            status.metric_type(),
        )?;
        status.encode(e)?;

        let pending = ConstGauge::new(i64::try_from(self.0.pending_challenges()).unwrap_or(0));
        let e = encoder.encode_descriptor(
            "mfa_radius_pending_challenges",
            "Access-Challenge rounds waiting for their second round",
            None,
            pending.metric_type(),
        )?;
        pending.encode(e)?;
        Ok(())
    }
}

/// The registry of one daemon: [`Metrics`] and the [`StatsCollector`].
pub fn registry(shared: Arc<Shared>) -> Registry {
    let m = shared.metrics.clone();
    let mut r = Registry::default();
    r.register(
        "mfa_radius_requests",
        "Requests from configured clients, by client name",
        m.requests,
    );
    r.register(
        "mfa_radius_decisions",
        "Answers by outcome (accept, reject, challenge) and the policy's reason",
        m.decisions,
    );
    r.register(
        "mfa_radius_request_duration_seconds",
        "Time from admission to the reply (PAM's failure delay included)",
        m.latency_seconds,
    );
    r.register(
        "mfa_store_commit_duration_seconds",
        "One store writer transaction (a batch of logins)",
        m.store.commit_seconds,
    );
    r.register(
        "mfa_store_batch_size",
        "Logins committed in one store writer transaction",
        m.store.batch_size,
    );
    r.register(
        "mfa_store_sync_duration_seconds",
        "One sync making committed batches durable (group commit)",
        m.store.sync_seconds,
    );
    r.register_collector(Box::new(StatsCollector(shared)));
    r
}

/// Binds the metrics listener (so `serve` can report a bad address at start-up, before
/// readiness is sent).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

const MAX_HEAD: usize = 8 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes answered at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 16;

/// Serves `GET /metrics` until aborted.
pub async fn serve(listener: TcpListener, registry: Registry) {
    let registry = Arc::new(registry);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(HEAD_TIMEOUT, answer(stream, &registry)).await;
            drop(permit);
        });
    }
}

async fn answer(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
        if head.len() > MAX_HEAD {
            return respond(&mut stream, "431 Request Header Fields Too Large", "").await;
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end().split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" {
        return respond(&mut stream, "404 Not Found", "").await;
    }
    if method != "GET" {
        return respond(&mut stream, "405 Method Not Allowed", "").await;
    }
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, registry).is_err() {
        return respond(&mut stream, "500 Internal Server Error", "").await;
    }
    respond(&mut stream, "200 OK", &body).await
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
