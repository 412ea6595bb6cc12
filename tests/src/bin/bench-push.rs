//! Benchmark (not a test): push approval through the real store and a running mfa-portal.
//!
//! `bench-push CONFIG setup USERS API` enrols users benchp0..USERS and registers one phone
//! each: a subscription made at the push service's API (web-push-testing: `API/subscribe`)
//! for the site's VAPID key, and an approval key derived from the user's name.
//!
//! `bench-push CONFIG latency COUNT USERS` writes COUNT sign-in requests one at a time, as a
//! front end does (`Push::start`), and waits after each until the portal reported it
//! delivered (the request's `sent` set by `Push::delivered`): the time from the request
//! written to the push taken by the push service, one request in flight. Between two
//! requests it pauses 0 to 300 ms (spread evenly), so they do not all fall at one phase of
//! a poll (SQLite's portal polled every 250 ms until issue 25; it is woken now, and the
//! pause keeps the runs comparable).
//!
//! `bench-push CONFIG burst COUNT USERS` writes COUNT requests at once and waits until every
//! one is delivered: each request's time to delivery, and the time until the last.
//!
//! `bench-push CONFIG approve USERS` approves every pending request of the users, each
//! with its phone's signed decision (`Push::decide`: the signature checked, the decision
//! written in the user's transaction): approvals per second through the store.
//!
//! Prints one line of figures per run. See bench/push/run.sh and docs/BENCHMARKS.md.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mfa_core::login::{Service, now};
use mfa_core::push::{PushDecision, decision_message};
use mfa_core::store::Store;
use mfa_core::{ClientAddr, Core, KeyGeneration, OpenMode, PushId, Request, UserName, Voucher};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};

fn fail(msg: &str) -> ! {
    eprintln!("bench-push: {msg}");
    std::process::exit(2)
}

fn name(core: &Core, i: usize) -> UserName {
    core.user_name(&format!("benchp{i}"))
        .unwrap_or_else(|e| fail(&e.to_string()))
}

/// The phone key of `user`, derived from the name so every run can sign for it.
fn phone_of(user: &UserName) -> SigningKey {
    let mut h = Sha256::digest(format!("bench phone {user}").as_bytes());
    loop {
        if let Ok(k) = SigningKey::from_slice(&h) {
            return k;
        }
        h = Sha256::digest(h);
    }
}

fn request(core: &Core, user: &UserName, service: String) -> Request {
    let req = Request::new(
        user,
        ClientAddr::Remote("192.0.2.1".parse().ok()),
        Service::Pam(service),
    );
    let admission = core
        .login()
        .admit_name(user, Voucher::FirstFactor)
        .unwrap_or_else(|e| fail(&e.to_string()));
    req.admit(&admission)
}

/// A distinct service per request: a user has one pending request per service.
fn service(run: u64, k: usize) -> String {
    format!("bench-{run}-{k}")
}

fn percentiles(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let p = |q: f64| {
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    format!(
        "p50_ms={:.1} p90_ms={:.1} p99_ms={:.1} max_ms={:.1}",
        p(0.5),
        p(0.9),
        p(0.99),
        p(1.0)
    )
}

/// Whether request `id` was delivered (or settled otherwise; `false` while it waits).
fn delivered(store: &dyn Store, id: &PushId) -> Option<bool> {
    match store.push_request(id) {
        Ok(Some(r)) if r.sent.is_some() => Some(true),
        Ok(Some(r)) if r.state != mfa_core::PushState::Pending => Some(false),
        Ok(_) => None,
        Err(e) => fail(&e.to_string()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (config, mode, rest) = match args.as_slice() {
        [_, c, m, rest @ ..] => (c, m.as_str(), rest),
        _ => fail("usage: bench-push CONFIG setup|latency|burst|approve ..."),
    };
    let number = |i: usize| -> usize {
        rest.get(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fail("a count is missing or not a number"))
    };
    let cfg =
        mfa_config::load(std::path::Path::new(config)).unwrap_or_else(|e| fail(&e.to_string()));
    let store = mfa_store_open::open(&cfg.store, OpenMode::Existing)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let core = mfa_store_open::core_from_config_file(config.as_ref(), OpenMode::Existing, "bench")
        .unwrap_or_else(|e| fail(&e.to_string()));
    let push = core.push("bench-push");
    let run = now() as u64;
    match mode {
        "setup" => {
            let users = number(0);
            let api = rest
                .get(1)
                .unwrap_or_else(|| fail("the push service's API URL"));
            let vapid = mfa_core::push::VapidKey::read(&cfg.push.vapid_key_file)
                .unwrap_or_else(|e| fail(&e.to_string()));
            let agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .new_agent();
            for i in 0..users {
                let user = name(&core, i);
                let secret =
                    mfa_core::TotpSecret::generate().unwrap_or_else(|e| fail(&e.to_string()));
                core.admin("bench-push")
                    .import(
                        &[mfa_core::admin::ImportEntry {
                            user: user.clone(),
                            secret,
                            params: cfg.totp.params(),
                            scratch_codes: Vec::new(),
                            origin: "bench".into(),
                        }],
                        true,
                        now(),
                    )
                    .unwrap_or_else(|e| fail(&e.to_string()));
                let rec = core
                    .store()
                    .user(&user)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| fail("the user was not stored"));
                let key = KeyGeneration::of(&rec).unwrap_or_else(|| fail("no key"));
                let body = serde_json::json!({
                    "applicationServerKey": vapid.public_key_base64url(),
                    "userVisibleOnly": "true",
                });
                let mut r = agent
                    .post(format!("{api}/subscribe"))
                    .header("Content-Type", "application/json")
                    .send(body.to_string().as_bytes())
                    .unwrap_or_else(|e| fail(&format!("subscribe: {e}")));
                let v: serde_json::Value =
                    serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default())
                        .unwrap_or_default();
                let sub = serde_json::json!({"endpoint": v["data"]["endpoint"], "keys": v["data"]["keys"]});
                let public = phone_of(&user)
                    .verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec();
                push.register_device(&user, &key, "bench", &sub.to_string(), &public, now())
                    .unwrap_or_else(|e| fail(&e.to_string()));
            }
            println!("users={users} phones={users}");
        }
        "latency" | "burst" => {
            let (count, users) = (number(0), number(1));
            let mut waits = Vec::with_capacity(count);
            let mut undelivered = 0usize;
            let all = Instant::now();
            if mode == "latency" {
                for k in 0..count {
                    // Requests arrive at no fixed phase of any poll: a pause spread over
                    // 0..300 ms, the same in every run (and as before issue 25).
                    std::thread::sleep(Duration::from_millis((k as u64 * 37) % 300));
                    let user = name(&core, k % users);
                    let t0 = Instant::now();
                    let s = push
                        .start(&request(&core, &user, service(run, k)), true)
                        .unwrap_or_else(|e| fail(&e.to_string()));
                    loop {
                        if let Some(ok) = delivered(store.as_ref(), &s.id) {
                            undelivered += usize::from(!ok);
                            break;
                        }
                        if t0.elapsed() > Duration::from_secs(30) {
                            fail("a request was not delivered in 30 s");
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    waits.push(t0.elapsed().as_secs_f64() * 1e3);
                }
            } else {
                let mut open: HashMap<PushId, Instant> = HashMap::new();
                for k in 0..count {
                    let user = name(&core, k % users);
                    let s = push
                        .start(&request(&core, &user, service(run, k)), true)
                        .unwrap_or_else(|e| fail(&e.to_string()));
                    open.insert(s.id, Instant::now());
                }
                while !open.is_empty() {
                    if all.elapsed() > Duration::from_secs(120) {
                        fail("requests were not delivered in 120 s");
                    }
                    open.retain(|id, t0| match delivered(store.as_ref(), id) {
                        Some(ok) => {
                            undelivered += usize::from(!ok);
                            waits.push(t0.elapsed().as_secs_f64() * 1e3);
                            false
                        }
                        None => true,
                    });
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let secs = all.elapsed().as_secs_f64();
            println!(
                "mode={mode} requests={count} seconds={secs:.2} per_second={:.0} undelivered={undelivered} {}",
                count as f64 / secs,
                percentiles(waits)
            );
        }
        "approve" => {
            let users = number(0);
            let mut todo = Vec::new();
            let t = now();
            for i in 0..users {
                let user = name(&core, i);
                let phone = phone_of(&user);
                let device = push
                    .devices(&user)
                    .unwrap_or_else(|e| fail(&e.to_string()))
                    .first()
                    .map(|d| d.id)
                    .unwrap_or_else(|| fail("a user without a phone"));
                for r in store
                    .push_requests(&user, t - 86_400)
                    .unwrap_or_else(|e| fail(&e.to_string()))
                {
                    if r.open_at(t) {
                        let d = PushDecision::Approve { number: r.number };
                        let sig: Signature = phone.sign(&decision_message(&r.id, &device, d));
                        todo.push((r.id, device, d, sig.to_bytes().to_vec()));
                    }
                }
            }
            let start = Instant::now();
            let mut approved = 0usize;
            for (id, device, d, sig) in &todo {
                let out = push
                    .decide(id, device, *d, sig, now())
                    .unwrap_or_else(|e| fail(&e.to_string()));
                approved += usize::from(out.state == mfa_core::PushState::Approved);
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "approvals={} approved={approved} seconds={secs:.3} per_second={:.0}",
                todo.len(),
                todo.len() as f64 / secs
            );
        }
        _ => fail("mode is setup, latency, burst or approve"),
    }
}
