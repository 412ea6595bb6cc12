//! The one sender of push approval (docs/PUSH.md): the portal delivers the sign-in requests
//! the front ends wrote into the store. Two threads of their own, off the async runtime:
//!
//! - the delivery loop waits for new requests ([`Push::wait_for_requests`]: PostgreSQL's
//!   LISTEN, SQLite's wake-up socket; at the latest after `[push] outbox_poll`), reads the
//!   outbox, encrypts each payload for each of the
//!   user's phones (RFC 8291, web-push-native), signs a VAPID token (RFC 8292, its
//!   jwt-simple), posts it (ureq) and reports what every push service said
//!   ([`Push::delivered`]): a refusal or an unreachable service makes the request
//!   undeliverable, so the waiting login is denied at once, never allowed;
//! - the heartbeat ([`Push::heartbeat`]) tells the front ends a portal is running, for as
//!   long as the delivery loop is: were it to stop, the heartbeat stops with it and every
//!   new push is refused at once ("no portal") instead of left waiting.
//!
//! Nothing secret is logged: an endpoint is a capability (whoever has it can push to the
//! phone), so the log and the audit trail name the push service's host, never the URL.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mfa_core::login::now;
use mfa_core::push::{Delivery, HEARTBEAT_EVERY, Outgoing, Push, Subscription, Target, VapidKey};
use mfa_core::{Core, PushId, PushState};
use ureq::http::{self, HeaderValue, Uri};
use web_push_native::jwt_simple::algorithms::{ECDSAP256KeyPairLike, ES256KeyPair};
use web_push_native::jwt_simple::claims::Claims;
use web_push_native::{Auth, WebPushBuilder};

use crate::app::ACTOR;
use crate::metrics::Metrics;

/// Requests read from the outbox at once; the loop reads again as soon as they are done.
const BATCH: usize = 32;
/// Requests delivered side by side: one slow push service holds up no other request.
const WORKERS: usize = 8;
/// How long one post to a push service may take, connection included. Well within a
/// request's lifetime (10 s at the least), so a hung service is reported while the login
/// still waits.
const POST_TIMEOUT: Duration = Duration::from_secs(8);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
/// How long the VAPID token is valid (RFC 8292 allows up to 24 h; push services refuse
/// longer). Independent of the push's TTL.
const VAPID_VALID_SECS: u64 = 12 * 3600;
/// How much of a push service's answer goes into the reason of a failure.
const MAX_ANSWER_WORDS: usize = 120;
/// Sent requests watched for their expiry (the `expired` counter); the oldest are
/// forgotten beyond this.
const MAX_WATCHED: usize = 10_000;

/// What posts the pushes: the VAPID key pair and contact, and the HTTP client.
pub struct Sender {
    key: ES256KeyPair,
    /// `k=` of the `Authorization` header: the public key the subscriptions were made with.
    public: String,
    /// The VAPID `sub`: `mailto:` or `https:`.
    subscriber: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sender({}, {})", self.public, self.subscriber)
    }
}

impl Sender {
    /// The sender for `vapid` signing as `subscriber`.
    pub fn new(vapid: &VapidKey, subscriber: &str) -> Result<Self, String> {
        let key = ES256KeyPair::from_bytes(vapid.secret_bytes().as_slice())
            .map_err(|e| format!("the VAPID key cannot sign: {e}"))?;
        let agent = ureq::Agent::config_builder()
            // Every answer is read here: a refusal is a reason, not an error.
            .http_status_as_error(false)
            // A push service answers; it does not send the portal elsewhere (a redirect
            // would lead around `[push] services`).
            .max_redirects(0)
            .timeout_global(Some(POST_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("mfa-portal/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Self {
            key,
            public: vapid.public_key_base64url(),
            subscriber: subscriber.to_string(),
            agent,
        })
    }

    /// The `Authorization` header of a push to `endpoint` (RFC 8292): `vapid t=<JWT>,
    /// k=<public key>`, the token's `aud` the endpoint's origin (with its port where it
    /// names one), `exp` 12 hours on, `sub` the contact. web-push-native's own header leaves
    /// the port out of `aud` and ties `exp` to the push's TTL; this one is built with the
    /// same jwt-simple ES256 signer.
    pub fn vapid_header(&self, endpoint: &Uri) -> Result<String, String> {
        let aud = origin(endpoint).ok_or("the endpoint names no origin")?;
        let mut claims = Claims::create(web_push_native::jwt_simple::prelude::Duration::from_secs(
            VAPID_VALID_SECS,
        ))
        .with_audience(aud)
        .with_subject(&self.subscriber);
        // As the common Web Push libraries send it: aud, exp and sub only (a push service
        // whose clock is behind would refuse an `nbf` of now).
        claims.issued_at = None;
        claims.invalid_before = None;
        let token = self
            .key
            .sign(claims)
            .map_err(|e| format!("cannot sign the VAPID token: {e}"))?;
        Ok(format!("vapid t={token}, k={}", self.public))
    }

    /// The HTTP request of one push of `payload` to `sub`, valid for `ttl` (RFC 8030 `TTL`),
    /// `Urgency: high` (a login waits for it).
    pub fn request(
        &self,
        sub: &Subscription,
        payload: &[u8],
        ttl: u64,
    ) -> Result<http::Request<Vec<u8>>, String> {
        let uri: Uri = sub
            .endpoint()
            .parse()
            .map_err(|_| "the endpoint is not a URL".to_string())?;
        let ua_public = web_push_native::p256::PublicKey::from_sec1_bytes(sub.p256dh())
            .map_err(|_| "the subscription's key is not a P-256 point".to_string())?;
        let auth = Auth::from(*sub.auth());
        let vapid = self.vapid_header(&uri)?;
        let mut req = WebPushBuilder::new(uri, ua_public, auth)
            .with_valid_duration(Duration::from_secs(ttl.max(1)))
            .build(payload.to_vec())
            .map_err(|e| format!("cannot encrypt the push: {e}"))?;
        let h = req.headers_mut();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&vapid).map_err(|_| "a VAPID header that is no header")?,
        );
        h.insert("urgency", HeaderValue::from_static("high"));
        // ureq writes the length of the body it sends.
        h.remove(http::header::CONTENT_LENGTH);
        Ok(req)
    }

    /// Posts `payload` to one phone: what its push service said.
    pub fn send(&self, target: &Target, payload: &[u8], ttl: u64) -> Delivery {
        let sub = &target.subscription;
        let host = service_host(sub.endpoint());
        let req = match self.request(sub, payload, ttl) {
            Ok(r) => r,
            Err(e) => return Delivery::Failed(format!("{host}: {e}")),
        };
        match self.agent.run(req) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let words = resp
                    .body_mut()
                    .with_config()
                    .limit(4096)
                    .read_to_string()
                    .unwrap_or_default();
                classify(status, &words, sub.endpoint(), &host)
            }
            Err(e) => Delivery::Failed(format!(
                "{host}: not reachable ({})",
                scrub(&e.to_string(), sub.endpoint())
            )),
        }
    }
}

/// The origin of `uri` (RFC 6454): scheme, host, and the port where it is not the scheme's
/// default.
fn origin(uri: &Uri) -> Option<String> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    Some(match uri.port_u16() {
        Some(p) if p != default => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The push service's host, the only part of an endpoint a log may show.
fn service_host(endpoint: &str) -> String {
    endpoint
        .parse::<Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_string))
        .unwrap_or_else(|| "the push service".into())
}

/// `text` without the endpoint (or its path) in it, printable ASCII on one line, bounded.
fn scrub(text: &str, endpoint: &str) -> String {
    let mut t = text.replace(endpoint, "<endpoint>");
    if let Ok(u) = endpoint.parse::<Uri>() {
        let path = u.path();
        if path.len() > 1 {
            t = t.replace(path, "/<subscription>");
        }
    }
    let mut out: String = t
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if out.len() > MAX_ANSWER_WORDS {
        out.truncate(MAX_ANSWER_WORDS);
        out.push_str("...");
    }
    out
}

/// What a push service's answer means (RFC 8030 §5, §7.3): 2xx accepted; 404 and 410 the
/// subscription is gone (the device is removed); anything else a refusal, with the status
/// and the service's words (never the endpoint) as its reason.
pub fn classify(status: u16, words: &str, endpoint: &str, host: &str) -> Delivery {
    match status {
        200..=299 => Delivery::Sent,
        404 | 410 => Delivery::Gone,
        _ => {
            let words = scrub(words, endpoint);
            Delivery::Failed(if words.is_empty() {
                format!("{host} answered HTTP {status}")
            } else {
                format!("{host} answered HTTP {status}: {words}")
            })
        }
    }
}

/// The delivery threads, started where `[push] enabled`.
pub fn start(core: Arc<Core>, sender: Sender, metrics: Metrics) -> Result<(), String> {
    let loop_core = core.clone();
    let delivery = std::thread::Builder::new()
        .name("push-delivery".into())
        .spawn(move || deliver_forever(&loop_core, &sender, &metrics))
        .map_err(|e| format!("cannot start the push delivery: {e}"))?;
    std::thread::Builder::new()
        .name("push-heartbeat".into())
        .spawn(move || heartbeat(&core, &delivery))
        .map_err(|e| format!("cannot start the push heartbeat: {e}"))?;
    Ok(())
}

/// Writes the heartbeat every [`HEARTBEAT_EVERY`] for as long as the delivery loop runs.
fn heartbeat(core: &Core, delivery: &JoinHandle<()>) {
    let push = core.push(ACTOR);
    let mut failing = false;
    loop {
        if delivery.is_finished() {
            eprintln!(
                "mfa-portal: push delivery stopped; no more heartbeats: pushes are refused (no portal) until mfa-portal is restarted"
            );
            return;
        }
        match push.heartbeat(now()) {
            Ok(()) if failing => {
                eprintln!("mfa-portal: push heartbeat written again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                eprintln!(
                    "mfa-portal: cannot write the push heartbeat ({e}); pushes are refused until it is written"
                );
                failing = true;
            }
            Err(_) => {}
        }
        std::thread::sleep(HEARTBEAT_EVERY);
    }
}

/// The loop of the one sender; returns never.
fn deliver_forever(core: &Core, sender: &Sender, metrics: &Metrics) {
    let push = core.push(ACTOR);
    let mut watched = Watched::default();
    let mut failing = false;
    loop {
        // Whatever woke it (an announcement, the poll, the timeout), the outbox is read.
        if let Err(e) = push.wait_for_requests(core.config().push.outbox_poll.0) {
            if !failing {
                eprintln!("mfa-portal: cannot wait for push requests ({e}); retrying");
            }
            failing = true;
            std::thread::sleep(Duration::from_secs(1));
        }
        loop {
            let batch = match push.outbox(now(), BATCH) {
                Ok(b) => b,
                Err(e) => {
                    if !failing {
                        eprintln!("mfa-portal: cannot read the push outbox ({e}); retrying");
                    }
                    failing = true;
                    break;
                }
            };
            if failing {
                eprintln!("mfa-portal: push outbox read again");
                failing = false;
            }
            let full = batch.len() == BATCH;
            for (id, expires) in deliver_batch(core, sender, metrics, batch) {
                watched.add(id, expires);
            }
            if !full {
                break;
            }
        }
        watched.sweep(&push, metrics);
    }
}

/// Delivers `batch` with up to [`WORKERS`] requests at once; the requests sent, with their
/// expiry.
fn deliver_batch(
    core: &Core,
    sender: &Sender,
    metrics: &Metrics,
    batch: Vec<Outgoing>,
) -> Vec<(PushId, i64)> {
    let workers = batch.len().min(WORKERS);
    let queue = Mutex::new(VecDeque::from(batch));
    let sent = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let push = core.push(ACTOR);
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(out) = next else { return };
                    if let Some(done) = deliver_one(&push, sender, metrics, &out)
                        && let Ok(mut v) = sent.lock()
                    {
                        v.push(done);
                    }
                }
            });
        }
    });
    sent.into_inner().unwrap_or_default()
}

/// Pushes one request to every phone of its user and reports it; `Some` where it was sent.
fn deliver_one(
    push: &Push<'_>,
    sender: &Sender,
    metrics: &Metrics,
    out: &Outgoing,
) -> Option<(PushId, i64)> {
    let ttl = u64::try_from(out.expires.saturating_sub(now())).unwrap_or(0);
    let mut report = Vec::with_capacity(out.targets.len());
    for t in &out.targets {
        let d = sender.send(t, out.payload.as_bytes(), ttl);
        metrics.delivery(match &d {
            Delivery::Sent => "sent",
            Delivery::Gone => "gone",
            Delivery::Failed(_) => "failed",
        });
        if let Delivery::Failed(why) = &d {
            eprintln!(
                "mfa-portal: push of request {} to device {} of user {:?} refused: {why}",
                out.request,
                t.device,
                out.user.as_str()
            );
        }
        report.push((t.device, d));
    }
    match push.delivered(&out.request, &report, now()) {
        Ok(Some(PushState::Undeliverable)) => {
            metrics.push("undeliverable");
            eprintln!(
                "mfa-portal: request {} of user {:?} is undeliverable: the login is denied",
                out.request,
                out.user.as_str()
            );
            None
        }
        Ok(_) if report.iter().any(|(_, d)| *d == Delivery::Sent) => {
            metrics.push("sent");
            Some((out.request, out.expires))
        }
        Ok(_) => None,
        Err(e) => {
            // Not recorded: the outbox offers it again (until it expires, which denies).
            eprintln!(
                "mfa-portal: cannot record the delivery of request {} ({e})",
                out.request
            );
            None
        }
    }
}

/// The requests this portal sent, until they are decided or expire: an expiry is seen by
/// no one else (the `expired` counter).
#[derive(Default)]
struct Watched {
    by_id: HashMap<PushId, i64>,
    order: VecDeque<PushId>,
    swept: Option<Instant>,
}

impl Watched {
    fn add(&mut self, id: PushId, expires: i64) {
        if self.by_id.insert(id, expires).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > MAX_WATCHED {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }

    /// Once a second at most: the watched requests past their expiry, looked up; the ones
    /// that expired undecided are counted.
    fn sweep(&mut self, push: &Push<'_>, metrics: &Metrics) {
        if self
            .swept
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(Instant::now());
        let t = now();
        let due: Vec<PushId> = self
            .by_id
            .iter()
            .filter(|(_, exp)| **exp < t)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            match push.status(&id, t) {
                Ok(Some(PushState::Expired)) => metrics.push("expired"),
                Ok(_) => {}
                // Looked up again at the next sweep.
                Err(_) => continue,
            }
            self.by_id.remove(&id);
            self.order.retain(|o| *o != id);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mfa_config::PushConfig;
    use mfa_core::push::testing::subscription_json;
    use web_push_native::jwt_simple::algorithms::ECDSAP256PublicKeyLike;
    use web_push_native::jwt_simple::claims::NoCustomClaims;
    use web_push_native::jwt_simple::common::VerificationOptions;

    fn local() -> PushConfig {
        PushConfig {
            services: vec!["http://localhost:8123".into()],
            ..PushConfig::default()
        }
    }

    #[test]
    fn answers_are_sent_gone_or_a_reason_without_the_endpoint() {
        let ep = "https://fcm.googleapis.com/fcm/send/secret-token";
        let host = "fcm.googleapis.com";
        assert_eq!(classify(201, "", ep, host), Delivery::Sent);
        assert_eq!(classify(200, "", ep, host), Delivery::Sent);
        assert_eq!(classify(404, "", ep, host), Delivery::Gone);
        assert_eq!(classify(410, "expired", ep, host), Delivery::Gone);
        for status in [400, 401, 403, 413, 429, 500, 503] {
            let Delivery::Failed(why) = classify(
                status,
                &format!("bad {ep}\nand /fcm/send/secret-token"),
                ep,
                host,
            ) else {
                panic!("{status} is a refusal");
            };
            assert!(why.contains(&format!("HTTP {status}")), "{why}");
            assert!(why.starts_with(host), "{why}");
            assert!(!why.contains("secret-token"), "{why}");
            assert!(!why.contains('\n'), "{why}");
        }
        let Delivery::Failed(long) = classify(400, &"x".repeat(5000), ep, host) else {
            panic!()
        };
        assert!(long.len() < 200, "{long}");
        assert_eq!(
            classify(500, "", ep, host),
            Delivery::Failed("fcm.googleapis.com answered HTTP 500".into())
        );
    }

    #[test]
    fn the_vapid_token_names_the_origin_with_its_port_and_verifies_under_the_key() {
        let vapid = VapidKey::generate().unwrap();
        let s = Sender::new(&vapid, "mailto:it@example.com").unwrap();
        for (endpoint, aud) in [
            ("http://localhost:8123/notify/abc", "http://localhost:8123"),
            (
                "https://fcm.googleapis.com/fcm/send/x",
                "https://fcm.googleapis.com",
            ),
            (
                "https://web.push.apple.com:443/Q",
                "https://web.push.apple.com",
            ),
        ] {
            let h = s.vapid_header(&endpoint.parse().unwrap()).unwrap();
            let rest = h.strip_prefix("vapid t=").unwrap();
            let (token, k) = rest.split_once(", k=").unwrap();
            assert_eq!(k, vapid.public_key_base64url());
            let public = web_push_native::jwt_simple::algorithms::ES256PublicKey::from_bytes(
                &vapid.public_key(),
            )
            .unwrap();
            let claims = public
                .verify_token::<NoCustomClaims>(token, Some(VerificationOptions::default()))
                .unwrap();
            let got = claims.audiences.unwrap().into_string().unwrap();
            assert_eq!(got, aud);
            assert_eq!(claims.subject.as_deref(), Some("mailto:it@example.com"));
            assert!(claims.invalid_before.is_none() && claims.issued_at.is_none());
            let exp = claims.expires_at.unwrap().as_secs() as i64;
            let left = exp - now();
            assert!((11 * 3600..=12 * 3600 + 5).contains(&left), "{left}");
            // Another key does not verify it.
            let other = VapidKey::generate().unwrap();
            let wrong = web_push_native::jwt_simple::algorithms::ES256PublicKey::from_bytes(
                &other.public_key(),
            )
            .unwrap();
            assert!(wrong.verify_token::<NoCustomClaims>(token, None).is_err());
        }
    }

    /// The request a push service gets: POST to the endpoint, aes128gcm, TTL, Urgency, the
    /// VAPID header; its body opens with the phone's keys to the payload (RFC 8291).
    #[test]
    fn a_push_request_decrypts_to_the_payload_on_the_phone() {
        use web_push_native::p256::SecretKey;
        // The phone's side: its ECDH key and auth secret, as its subscription carries them.
        let ua = SecretKey::from_slice(&[7u8; 32]).unwrap();
        let auth = [9u8; 16];
        let b64 = data_encoding::BASE64URL_NOPAD;
        use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;
        let json = format!(
            r#"{{"endpoint":"http://localhost:8123/notify/h","keys":{{"p256dh":"{}","auth":"{}"}}}}"#,
            b64.encode(ua.public_key().to_encoded_point(false).as_bytes()),
            b64.encode(&auth)
        );
        let sub = Subscription::parse(&json, &local()).unwrap();
        let vapid = VapidKey::generate().unwrap();
        let s = Sender::new(&vapid, "mailto:it@example.com").unwrap();
        let payload = br#"{"v":1,"id":"00"}"#;
        let req = s.request(&sub, payload, 42).unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri(), "http://localhost:8123/notify/h");
        let h = req.headers();
        assert_eq!(h["ttl"], "42");
        assert_eq!(h["urgency"], "high");
        assert_eq!(h["content-encoding"], "aes128gcm");
        assert_eq!(h["content-type"], "application/octet-stream");
        assert!(h["authorization"].to_str().unwrap().starts_with("vapid t="));
        assert!(!h.contains_key("content-length"));
        assert!(!req.body().windows(payload.len()).any(|w| w == payload));
        let plain = web_push_native::decrypt(req.body().clone(), &ua, &Auth::from(auth)).unwrap();
        assert_eq!(plain, payload);
        // A zero TTL still gives the service a second.
        assert_eq!(s.request(&sub, payload, 0).unwrap().headers()["ttl"], "1");
        // Any subscription JSON the core accepts makes a request.
        let other = Subscription::parse(
            &subscription_json("http://localhost:8123/notify/x"),
            &local(),
        )
        .unwrap();
        assert!(s.request(&other, payload, 60).is_ok());
    }

    #[test]
    fn logs_name_the_host_only() {
        assert_eq!(
            service_host("https://fcm.googleapis.com/fcm/send/abc"),
            "fcm.googleapis.com"
        );
        assert_eq!(service_host("not a url"), "the push service");
        assert_eq!(
            scrub("failed for https://x.example/p/q", "https://x.example/p/q"),
            "failed for <endpoint>"
        );
    }
}
