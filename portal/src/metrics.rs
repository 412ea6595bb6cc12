//! Prometheus metrics of the portal (`[portal] metrics_listen`, off by default), served by the
//! same loopback GET-only responder as mfa-radiusd's (`mfa-metrics-http`).
//!
//! Labels are fixed words only (a page's name, a status code, an outcome): never a token,
//! a user name or an address.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PageLabels {
    /// `home`, `style`, `enrol`, `account` or `other`.
    pub page: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// Which limit: `address` (per source address) or `invite` (per invite link) or
    /// `user` (per signed-in user).
    pub limit: &'static str,
}

/// Every counter and the histogram; cheap to clone (each metric is a handle).
#[derive(Clone, Debug)]
pub struct Metrics {
    pub requests: Family<PageLabels, Counter>,
    /// Keys stored: through an invite link (`invite`) or replaced in My account (`replace`).
    pub enrolments: Family<OutcomeLabels, Counter>,
    /// `ok`, `wrong_password`, `wrong_code`, `refused` (a name or a failure).
    pub sign_ins: Family<OutcomeLabels, Counter>,
    pub unlocks: Counter,
    pub rate_limited: Family<LimitLabels, Counter>,
    pub latency_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            enrolments: Family::default(),
            sign_ins: Family::default(),
            unlocks: Counter::default(),
            rate_limited: Family::default(),
            // 0.5 ms to ~8 s: a PAM password check with its failure delay is the slow end.
            latency_seconds: Histogram::new(exponential_buckets(0.000_5, 2.0, 15)),
        }
    }
}

impl Metrics {
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register(
            "mfa_portal_requests",
            "HTTP requests answered, by page, method and status",
            self.requests.clone(),
        );
        r.register(
            "mfa_portal_enrolments",
            "Keys stored: through an invite link (invite) or replaced in My account (replace)",
            self.enrolments.clone(),
        );
        r.register(
            "mfa_portal_sign_ins",
            "My account sign-ins by outcome",
            self.sign_ins.clone(),
        );
        r.register(
            "mfa_portal_unlocks",
            "Networks unlocked from My account",
            self.unlocks.clone(),
        );
        r.register(
            "mfa_portal_rate_limited",
            "Requests refused by a rate limit, by limit",
            self.rate_limited.clone(),
        );
        r.register(
            "mfa_portal_request_duration_seconds",
            "Time to answer one request (PAM's failure delay included)",
            self.latency_seconds.clone(),
        );
        r
    }

    pub fn sign_in(&self, outcome: &'static str) {
        self.sign_ins
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn enrolled(&self, outcome: &'static str) {
        self.enrolments
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn limited(&self, limit: &'static str) {
        self.rate_limited
            .get_or_create(&LimitLabels { limit })
            .inc();
    }
}

/// The page a path belongs to, as a fixed word (an invite token never becomes a label).
pub fn page_of(path: &str) -> &'static str {
    match path {
        "/" => "home",
        "/style.css" => "style",
        "/account" => "account",
        p if p.starts_with("/enrol/") => "enrol",
        _ => "other",
    }
}

/// The middleware that counts every request by page and status and times it.
pub async fn track(State(m): State<Metrics>, req: Request, next: Next) -> Response {
    let page = page_of(req.uri().path());
    let method = match *req.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::HEAD => "HEAD",
        _ => "other",
    };
    let start = Instant::now();
    let resp = next.run(req).await;
    m.latency_seconds.observe(start.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&PageLabels {
            page,
            method,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}
