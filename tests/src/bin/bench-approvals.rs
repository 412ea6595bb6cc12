//! Benchmark (not a test): push approvals per second through the real store (issue 20).
//!
//! `bench-approvals CONFIG setup FIRST COUNT` enrols users push{FIRST..FIRST+COUNT} with keys
//! derived from their names. `bench-approvals CONFIG run FIRST COUNT` registers a phone for each of
//! them (a portal sign-in with a code, then `Push::register_device`; not timed), then times,
//! user after user, one whole approval as the parts of the product make it, each one store
//! transaction through the core:
//!
//! 1. `start`: the front end writes the sign-in request (`Push::start`, number matching);
//! 2. `deliver`: the portal reads it from the outbox and reports it sent (`Push::outbox`,
//!    `Push::delivered`; no push service is called);
//! 3. `decide`: the phone's approval with the number, signed with its P-256 key
//!    (`Push::decide`: the signature verified, the request decided);
//! 4. `login`: the front end settles the login (`Login::verify_push`: allow, the approval
//!    used up).
//!
//! Prints approvals/s for the whole and the p50 and p99 of each step. The phone's signing is
//! not timed (it happens on the phone). `run FIRST COUNT THREADS` splits the users among
//! THREADS threads of one process, each with its own connection, as a server sees many
//! phones at once (each thread delivers whatever it takes from the outbox, as a portal
//! does); the line then ends in `threads=THREADS`. `run-shared` is `run` beside another
//! process on the same store, which may take this one's requests from the outbox. See bench/push/approvals.sh and docs/BENCHMARKS.md.
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use mfa_core::admin::ImportEntry;
use mfa_core::login::now;
use mfa_core::push::testing::{PhoneKey, subscription_json};
use mfa_core::push::{Delivery, PushDecision, decision_message};
use mfa_core::totp::code_at_step;
use mfa_core::{ClientAddr, Core, DeviceId, OpenMode, PushState, Request, TotpSecret, UserName};
use sha2::{Digest, Sha256};

fn key_of(user: &str) -> Option<TotpSecret> {
    let h = Sha256::digest(user.as_bytes());
    TotpSecret::from_bytes(h.get(..20)?).ok()
}

fn name(core: &Core, i: usize) -> UserName {
    core.user_name(&format!("push{i}"))
        .unwrap_or_else(|e| fail(&e.to_string()))
}

fn fail(msg: &str) -> ! {
    eprintln!("bench-approvals: {msg}");
    std::process::exit(2)
}

#[track_caller]
fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    let at = std::panic::Location::caller();
    r.unwrap_or_else(|e| fail(&format!("{e} (at line {})", at.line())))
}

fn request(user: &UserName) -> Request {
    let mut r = Request::new(
        user,
        ClientAddr::Remote(Some(Ipv4Addr::new(192, 0, 2, 1).into())),
        "bench",
    );
    r.now = now();
    r
}

/// p50 and p99 of `v` (microseconds), sorted here.
fn pct(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| {
        v.get(((v.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    (at(0.5), at(0.99))
}

/// What one thread measured (microseconds), and the time it spent signing (untimed).
#[derive(Default)]
struct Timings {
    start: Vec<f64>,
    deliver: Vec<f64>,
    decide: Vec<f64>,
    login: Vec<f64>,
    all: Vec<f64>,
    untimed: Duration,
}

/// One approval after the other for `phones`. `shared`: other threads read the outbox too,
/// so this one delivers whatever it took (a portal does), and its own request may have been
/// delivered by another: each request is still delivered once.
fn approve(core: &Core, phones: &[(UserName, PhoneKey, DeviceId)], shared: bool) -> Timings {
    let push = core.push("bench-approvals");
    let mut t_ = Timings::default();
    let us = |t: Instant| t.elapsed().as_secs_f64() * 1e6;
    let mut beat = Instant::now();
    for (user, phone, device) in phones {
        if beat.elapsed() >= Duration::from_secs(5) {
            ok(push.heartbeat(now()));
            beat = Instant::now();
        }
        let t0 = Instant::now();
        let req = request(user);
        let s = ok(push.start(&req, true));
        t_.start.push(us(t0));

        let t = Instant::now();
        let out = ok(push.outbox(now(), 16));
        if !shared && !out.iter().any(|o| o.request == s.id) {
            fail("the request is not in the outbox");
        }
        for o in &out {
            let report: Vec<_> = o
                .targets
                .iter()
                .map(|t| (t.device, Delivery::Sent))
                .collect();
            ok(push.delivered(&o.request, &report, now()));
        }
        t_.deliver.push(us(t));

        let sign = Instant::now();
        let d = PushDecision::Approve { number: s.number };
        let sig = phone.sign(&decision_message(&s.id, device, d));
        let signing = sign.elapsed();
        t_.untimed += signing;

        let t = Instant::now();
        let decided = ok(push.decide(&s.id, device, d, &sig, now()));
        t_.decide.push(us(t));
        if decided.state != PushState::Approved {
            fail(&format!("not approved: {decided:?}"));
        }

        let t = Instant::now();
        let mut login = req.clone();
        login.now = now();
        let d = ok(core.login().verify_push(&login, &s.id));
        t_.login.push(us(t));
        if !d.is_allowed() {
            fail(&format!("the login was refused: {d:?}"));
        }
        t_.all.push(us(t0) - signing.as_secs_f64() * 1e6);
    }
    t_
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (config, mode, first, count, threads) = match args.as_slice() {
        [_, config, mode, first, count] => (config, mode, first, count, "1"),
        [_, config, mode, first, count, threads] => (config, mode, first, count, threads.as_str()),
        _ => fail("usage: bench-approvals CONFIG setup|run|run-shared FIRST COUNT [THREADS]"),
    };
    let threads: usize = threads
        .parse()
        .ok()
        .filter(|&t| t >= 1)
        .unwrap_or_else(|| fail("THREADS is not a number of at least 1"));
    let first: usize = first
        .parse()
        .unwrap_or_else(|_| fail("FIRST is not a number"));
    let count: usize = count
        .parse()
        .unwrap_or_else(|_| fail("COUNT is not a number"));
    let core = ok(mfa_store_open::core_from_config_file(
        config.as_ref(),
        OpenMode::Create,
        "bench-approvals",
    ));
    let params = core.config().totp.params();
    match mode.as_str() {
        "setup" => {
            let entries: Vec<ImportEntry> = (first..first + count)
                .map(|i| {
                    let user = name(&core, i);
                    ImportEntry {
                        secret: key_of(&user).unwrap_or_else(|| fail("key")),
                        user,
                        params,
                        scratch_codes: Vec::new(),
                        origin: "bench".into(),
                    }
                })
                .collect();
            for chunk in entries.chunks(5000) {
                ok(core.admin("bench-approvals").import(chunk, true, now()));
            }
        }
        // `run-shared`: another process reads the same outbox (the script's two processes
        // on one store), so a request may be taken by the other one, as with threads.
        "run" | "run-shared" => {
            let shared = threads > 1 || mode == "run-shared";
            let push = core.push("bench-approvals");
            // The phones, registered as My account does (not timed).
            let mut phones: Vec<(UserName, PhoneKey, DeviceId)> = Vec::with_capacity(count);
            for i in first..first + count {
                let user = name(&core, i);
                let key = key_of(&user).unwrap_or_else(|| fail("key"));
                let req = request(&user);
                let code = code_at_step(&key, &params, req.now / 30);
                let (d, generation) = ok(core.login().verify_code_always(&req, &code));
                let Some(generation) = generation.filter(|_| d.is_allowed()) else {
                    fail(&format!("the sign-in of {user} was refused: {d:?}"))
                };
                let phone = PhoneKey::generate();
                let dev = ok(push.register_device(
                    &user,
                    &generation,
                    "bench phone",
                    &subscription_json(&format!("https://fcm.googleapis.com/fcm/send/b{i}")),
                    &phone.public(),
                    now(),
                ));
                phones.push((user, phone, dev.id));
            }
            ok(push.heartbeat(now()));
            let started = Instant::now();
            let chunk = phones.len().div_ceil(threads).max(1);
            let parts: Vec<Timings> = std::thread::scope(|s| {
                let core = &core;
                let handles: Vec<_> = phones
                    .chunks(chunk)
                    .map(|part| s.spawn(move || approve(core, part, shared)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| fail("a thread panicked")))
                    .collect()
            });
            let mut all = Timings::default();
            let mut untimed = Duration::ZERO;
            for t in parts {
                all.start.extend(t.start);
                all.deliver.extend(t.deliver);
                all.decide.extend(t.decide);
                all.login.extend(t.login);
                all.all.extend(t.all);
                // Each thread's signing overlapped the others' work: take the longest.
                untimed = untimed.max(t.untimed);
            }
            let secs = (started.elapsed() - untimed).as_secs_f64();
            let (a50, a99) = pct(&mut all.all);
            let (s50, s99) = pct(&mut all.start);
            let (d50, d99) = pct(&mut all.deliver);
            let (c50, c99) = pct(&mut all.decide);
            let (l50, l99) = pct(&mut all.login);
            let threads_note = if threads > 1 {
                format!(" threads={threads}")
            } else {
                String::new()
            };
            println!(
                "approvals={count} seconds={secs:.3} per_second={:.0} all_p50_us={a50:.0} all_p99_us={a99:.0} \
                 start_p50_us={s50:.0} start_p99_us={s99:.0} deliver_p50_us={d50:.0} deliver_p99_us={d99:.0} \
                 decide_p50_us={c50:.0} decide_p99_us={c99:.0} login_p50_us={l50:.0} login_p99_us={l99:.0}{threads_note}",
                count as f64 / secs
            );
        }
        _ => fail("mode is setup, run or run-shared"),
    }
}
