//! Benchmark (not a test): policy decisions per second through the real store.
//!
//! `bench-store CONFIG setup FIRST COUNT` enrols users bench{FIRST..FIRST+COUNT} with keys
//! derived from their names; `bench-store CONFIG run FIRST COUNT` then makes one decision per
//! user, a third each: a valid code (a store write: replay marker, counters, audit), a wrong
//! code (a write: failure counter, audit), a trusted-network login (a write: audit, stats).
//! Prints decisions/s and latency percentiles. See bench/store/run.sh and docs/BENCHMARKS.md.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use mfa_core::admin::ImportEntry;
use mfa_core::login::now;
use mfa_core::totp::code_at_step;
use mfa_core::{Attempt, ClientAddr, Core, OpenMode, Outcome, Request, TotpSecret, UserName};
use sha2::{Digest, Sha256};

fn key_of(user: &str) -> Option<TotpSecret> {
    let h = Sha256::digest(user.as_bytes());
    TotpSecret::from_bytes(h.get(..20)?).ok()
}

fn name(core: &Core, i: usize) -> UserName {
    core.user_name(&format!("bench{i}"))
        .unwrap_or_else(|e| fail(&e.to_string()))
}

fn fail(msg: &str) -> ! {
    eprintln!("bench-store: {msg}");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (config, mode, first, count, batch) = match args.as_slice() {
        [_, c, m, f, n] => (c, m, f, n, None),
        [_, c, m, f, n, b] => (c, m, f, n, Some(b)),
        _ => fail("usage: bench-store CONFIG setup|run|batch FIRST COUNT [BATCH]"),
    };
    let first: usize = first
        .parse()
        .unwrap_or_else(|_| fail("FIRST is not a number"));
    let count: usize = count
        .parse()
        .unwrap_or_else(|_| fail("COUNT is not a number"));
    let a = mfa_store_open::core_from_config_file(config.as_ref(), OpenMode::Create, "bench-store")
        .unwrap_or_else(|e| fail(&e.to_string()));
    let params = a.config().totp.params();
    let login = a.login();
    match mode.as_str() {
        "setup" => {
            let entries: Vec<ImportEntry> = (first..first + count)
                .map(|i| {
                    let user = name(&a, i);
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
                a.admin("bench-store")
                    .import(chunk, true, now())
                    .unwrap_or_else(|e| fail(&e.to_string()));
            }
        }
        "run" => {
            let mut lat = Vec::with_capacity(count);
            let (mut ok, mut denied, mut trusted) = (0usize, 0usize, 0usize);
            let start = Instant::now();
            for i in first..first + count {
                let user = name(&a, i);
                let t0 = Instant::now();
                let kind = i % 3;
                let ip: IpAddr = if kind == 2 {
                    Ipv4Addr::new(10, 0, 0, 1).into()
                } else {
                    Ipv4Addr::new(192, 0, 2, 1).into()
                };
                let req = Request::new(&user, ClientAddr::Remote(Some(ip)), "bench");
                let d = login.begin(&req).unwrap_or_else(|e| fail(&e.to_string()));
                let d = if d.outcome == Outcome::NeedCode {
                    let code = if kind == 0 {
                        let key = key_of(&user).unwrap_or_else(|| fail("key"));
                        code_at_step(&key, &params, req.now / 30).to_string()
                    } else {
                        "00000".into() // never a valid 6-digit code
                    };
                    login
                        .verify_code(&req, &code)
                        .unwrap_or_else(|e| fail(&e.to_string()))
                } else {
                    d
                };
                lat.push(t0.elapsed().as_secs_f64() * 1e6);
                match (d.is_allowed(), kind) {
                    (true, 2) => trusted += 1,
                    (true, _) => ok += 1,
                    (false, _) => denied += 1,
                }
            }
            let secs = start.elapsed().as_secs_f64();
            lat.sort_by(f64::total_cmp);
            let pct = |p: f64| {
                lat.get(((lat.len() as f64 - 1.0) * p) as usize)
                    .copied()
                    .unwrap_or(0.0)
            };
            println!(
                "decisions={count} seconds={secs:.3} per_second={:.0} p50_us={:.0} p99_us={:.0} accepted={ok} denied={denied} trusted={trusted}",
                count as f64 / secs,
                pct(0.5),
                pct(0.99)
            );
        }
        "batch" => {
            // The daemon's path: decide and verify in one call, many logins per transaction.
            let size: usize = batch.and_then(|b| b.parse().ok()).unwrap_or(64);
            let attempts: Vec<Attempt> = (first..first + count)
                .map(|i| {
                    let user = name(&a, i);
                    let kind = i % 3;
                    let ip: IpAddr = if kind == 2 {
                        Ipv4Addr::new(10, 0, 0, 1).into()
                    } else {
                        Ipv4Addr::new(192, 0, 2, 1).into()
                    };
                    let req = Request::new(&user, ClientAddr::Remote(Some(ip)), "bench");
                    let code = match kind {
                        0 => {
                            let key = key_of(&user).unwrap_or_else(|| fail("key"));
                            Some(code_at_step(&key, &params, req.now / 30))
                        }
                        1 => Some(zeroize::Zeroizing::new("00000".to_string())),
                        _ => None,
                    };
                    Attempt {
                        req,
                        code,
                        groups: Vec::new(),
                    }
                })
                .collect();
            let start = Instant::now();
            let (mut ok, mut denied) = (0usize, 0usize);
            for chunk in attempts.chunks(size) {
                for d in login
                    .authenticate_many(chunk)
                    .unwrap_or_else(|e| fail(&e.to_string()))
                {
                    if d.is_allowed() { ok += 1 } else { denied += 1 }
                }
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "decisions={count} batch={size} seconds={secs:.3} per_second={:.0} allowed={ok} denied={denied}",
                count as f64 / secs
            );
        }
        _ => fail("mode is setup, run or batch"),
    }
}
