//! Prometheus metrics (`[radius] metrics_listen`, off by default), from the Prometheus
//! project's `prometheus-client` crate, served by a GET-only HTTP/1.1 responder on a loopback
//! address.
//!
//! The drop and answer counters are the ones `stats.rs` keeps for SIGUSR1 and the log: they
//! are read at scrape time by [`StatsCollector`], never counted a second time, from the same
//! `Arc<Stats>` the daemon counts in, with a count of the store's pending challenges for its
//! gauge;
//! the metrics know nothing else of the daemon. What only the metrics need (labels by client
//! and by reason, histograms) lives in [`Metrics`].
//!
//! The listener is `mfa-metrics-http`'s (shared with mfa-portal).

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::stats::{DropReason, Stats};

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountingLabels {
    /// start, stop, interim, accounting_on, accounting_off or other (Acct-Status-Type).
    pub status: String,
}

/// The store writer's figures; cloned into each configuration generation's writer.
#[derive(Clone, Debug)]
pub struct WriterMetrics {
    /// One batch's transaction (`authenticate_many[_deferred]`).
    pub commit_seconds: Histogram,
    /// The logins in one transaction.
    pub batch_size: Histogram,
    /// One sync making committed batches durable (group commit engines only).
    pub sync_seconds: Histogram,
    /// Decisions that consumed nothing, answered at their commit before the sync that
    /// makes them durable (group commit engines only; ARCHITECTURE.md, *Durability*).
    pub answered_before_sync: Counter,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        Self {
            commit_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            sync_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            answered_before_sync: Counter::default(),
        }
    }
}

/// The labelled counters and the histograms. Cheap to clone (every metric is a handle).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Requests admitted from a configured client (by its `name`), before any check.
    pub requests: Family<ClientLabels, Counter>,
    pub decisions: Family<DecisionLabels, Counter>,
    /// Accounting-Requests answered, by Acct-Status-Type.
    pub accounting: Family<AccountingLabels, Counter>,
    /// From admission to the reply being ready (PAM's failure delay included).
    pub latency_seconds: Histogram,
    pub writer: WriterMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            decisions: Family::default(),
            accounting: Family::default(),
            latency_seconds: Histogram::new(exponential_buckets(0.000_5, 2.0, 14)),
            writer: WriterMetrics::default(),
        }
    }
}

/// How many challenges are pending on every node, read from the store at a scrape; `None`
/// where it cannot say (the gauge is left out).
pub type PendingFn = Arc<dyn Fn() -> Option<usize> + Send + Sync>;

/// The counters of `stats.rs` and the pending challenges, read at each scrape.
struct StatsCollector {
    stats: Arc<Stats>,
    pending: PendingFn,
}

impl std::fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatsCollector")
    }
}

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = &self.stats;
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
        for d in DropReason::ALL {
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

        // In the store, for every node on it: one count.
        if let Some(pending) = (self.pending)() {
            let pending = ConstGauge::new(i64::try_from(pending).unwrap_or(i64::MAX));
            let e = encoder.encode_descriptor(
                "mfa_radius_pending_challenges",
                "Access-Challenge rounds waiting for their second round, on every node of the store",
                None,
                pending.metric_type(),
            )?;
            pending.encode(e)?;
        }
        Ok(())
    }
}

/// The registry of one daemon: its [`Metrics`], and the counters it keeps and the pending
/// challenges, read at each scrape.
pub fn registry(metrics: &Metrics, stats: Arc<Stats>, pending: PendingFn) -> Registry {
    let m = metrics.clone();
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
        "mfa_radius_accounting",
        "Accounting-Requests answered, by Acct-Status-Type (start, stop, interim, accounting_on, accounting_off, other)",
        m.accounting,
    );
    r.register(
        "mfa_radius_request_duration_seconds",
        "Time from admission to the reply (PAM's failure delay included)",
        m.latency_seconds,
    );
    r.register(
        "mfa_store_commit_duration_seconds",
        "One store writer transaction (a batch of logins)",
        m.writer.commit_seconds,
    );
    r.register(
        "mfa_store_batch_size",
        "Logins committed in one store writer transaction",
        m.writer.batch_size,
    );
    r.register(
        "mfa_store_sync_duration_seconds",
        "One sync making committed batches durable (group commit)",
        m.writer.sync_seconds,
    );
    r.register(
        "mfa_store_answered_before_sync",
        "Decisions that consumed nothing, answered at their commit before their sync",
        m.writer.answered_before_sync,
    );
    r.register_collector(Box::new(StatsCollector { stats, pending }));
    r
}

pub use mfa_metrics_http::{bind, serve};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scrape reads the daemon's own counters and table at that moment, with nothing of
    /// the daemon but them.
    #[test]
    fn a_scrape_reads_the_counters_and_the_challenge_table() {
        let stats = Arc::new(Stats::default());
        let pending = Arc::new(AtomicUsize::new(0));
        let metrics = Metrics::default();
        let p = pending.clone();
        let r = registry(
            &metrics,
            stats.clone(),
            Arc::new(move || Some(p.load(Ordering::Relaxed))),
        );
        let scrape = || {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
            text
        };
        let text = scrape();
        assert!(text.contains("mfa_radius_received_total 0\n"), "{text}");
        assert!(text.contains("mfa_radius_pending_challenges 0\n"), "{text}");

        Stats::bump(&stats.received);
        Stats::bump(&stats.received);
        stats.count_drop(DropReason::BadAuthenticator);
        pending.store(1, Ordering::Relaxed);
        metrics
            .decisions
            .get_or_create(&DecisionLabels {
                outcome: "accept".into(),
                reason: "valid_code".into(),
            })
            .inc();
        let text = scrape();
        for line in [
            "mfa_radius_received_total 2\n",
            "mfa_radius_dropped_total{cause=\"bad_authenticator\"} 1\n",
            "mfa_radius_dropped_total{cause=\"malformed\"} 0\n",
            "mfa_radius_pending_challenges 1\n",
            "mfa_radius_decisions_total{outcome=\"accept\",reason=\"valid_code\"} 1\n",
        ] {
            assert!(text.contains(line), "{line:?} not in {text}");
        }
    }
}
