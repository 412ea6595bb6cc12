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
    /// `home`, `style`, `enrol`, `account`, `phone` (registering one), `push` (the
    /// approval page and its list), `app` (the web app's manifest, worker, scripts and
    /// icons) or `other`.
    pub page: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
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
    /// Sign-in requests by what became of them: `sent` (a push service took it),
    /// `undeliverable` (none did: the login is denied), `approved`, `denied` (a deny or a
    /// wrong number), `fraud` ("This wasn't me"), `expired` (sent here, undecided in time).
    pub pushes: Family<OutcomeLabels, Counter>,
    /// Posts to the push services, one per phone: `sent`, `gone` (404/410: the phone is
    /// removed), `failed` (refused or not reachable).
    pub push_deliveries: Family<ResultLabels, Counter>,
    /// Phones registered and removed in My account: `registered`, `removed`, `refused`.
    pub push_devices: Family<OutcomeLabels, Counter>,
    /// From a request's creation to the phone's decision taken here.
    pub push_decision_seconds: Histogram,
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
            pushes: Family::default(),
            push_deliveries: Family::default(),
            push_devices: Family::default(),
            // A request lives 10 s to 10 min (`[push] timeout`); decisions come in seconds.
            push_decision_seconds: Histogram::new([
                1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0,
            ]),
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
        r.register(
            "mfa_portal_pushes",
            "Sign-in requests by outcome: sent, undeliverable, approved, denied, fraud, expired",
            self.pushes.clone(),
        );
        r.register(
            "mfa_portal_push_deliveries",
            "Posts to the push services, one per phone, by result: sent, gone, failed",
            self.push_deliveries.clone(),
        );
        r.register(
            "mfa_portal_push_devices",
            "Phones registered or removed in My account, and registrations refused",
            self.push_devices.clone(),
        );
        r.register(
            "mfa_portal_push_decision_seconds",
            "Time from a sign-in request to the phone's decision",
            self.push_decision_seconds.clone(),
        );
        r
    }

    pub fn push(&self, outcome: &'static str) {
        self.pushes.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn delivery(&self, result: &'static str) {
        self.push_deliveries
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub fn device(&self, outcome: &'static str) {
        self.push_devices
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
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
        "/account/phone" => "phone",
        "/push" => "push",
        p if p.starts_with("/push/") => "push",
        p if p.starts_with("/enrol/") => "enrol",
        "/manifest.webmanifest" | "/sw.js" => "app",
        p if p.starts_with("/js/") || p.starts_with("/icon") => "app",
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
