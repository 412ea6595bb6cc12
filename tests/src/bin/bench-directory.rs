//! Benchmark (not a test): group lookups per second through the core
//! (`Login::groups_for`, as every login whose policy uses groups makes one) against a real
//! Samba AD DC on loopback (provisioned here: tests/src/directory.rs), each lookup the
//! user's nested groups (in-chain) and, for bob, his primary group and its parents.
//!
//! `bench-directory COUNT` prints, for COUNT lookups alternating alice and bob:
//! - cold: `cache_ttl = "0s"`, every lookup asks the server (3 or 4 searches on the kept
//!   connection);
//! - warm: the default cache, every lookup after the first of each user a cache hit.
//!
//! See bench/directory/run.sh.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mfa_core::{NameCheck, OpenMode, UserName};
use mfa_e2e::directory::{SambaDc, ad_directory_toml, have_samba};

fn run(dc: &SambaDc, count: usize, cache_ttl: &str) -> (f64, Vec<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let table = ad_directory_toml(dir.path(), &[dc.url()], &dc.ca_file());
    let text = format!(
        "[store]\npath = \"mfa.db\"\nkey_file = \"mfa.key\"\n[audit]\nsyslog = false\n[policy]\nexempt_groups = [\"g_outer\"]\n[users]\ndomains = [\"TEST\", \"test.lan\"]\n{table}cache_ttl = \"{cache_ttl}\"\n"
    );
    let path = dir.path().join("mfa.toml");
    mfa_e2e::write_private(&path, &text);
    let cfg = mfa_config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let core =
        mfa_store_open::open_core(Arc::new(cfg), OpenMode::Create, "bench", NameCheck::Always)
            .unwrap_or_else(|e| panic!("{e}"));
    let users = [
        UserName::parse("alice").unwrap(),
        UserName::parse("bob").unwrap(),
    ];
    // One of each first: the connection opened, the warm cache filled.
    for u in &users {
        assert!(!core.login().groups_for(u).unwrap().is_empty());
    }
    let mut each = Vec::with_capacity(count);
    let start = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        let groups = core
            .login()
            .groups_for(&users[i % 2])
            .unwrap_or_else(|e| panic!("{e}"));
        each.push(t.elapsed());
        assert!(groups.len() >= 2);
    }
    let per_second = count as f64 / start.elapsed().as_secs_f64();
    each.sort();
    (per_second, each)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(1000);
    if !have_samba() {
        std::process::exit(2);
    }
    let dc = SambaDc::start();
    for (label, ttl) in [
        ("cold (cache_ttl = 0s)", "0s"),
        ("warm (cache_ttl = 5m)", "5m"),
    ] {
        let (rate, lat) = run(&dc, count, ttl);
        println!(
            "{label}: {count} lookups, {rate:.0} lookups/s, p50 {:.2} ms, p99 {:.2} ms",
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
    }
}
