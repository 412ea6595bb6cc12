//! Database failover (issue 24, docs/FAILOVER.md): a PostgreSQL primary with a synchronous
//! standby (`pg_basebackup -R`, `synchronous_standby_names`, `synchronous_commit = on`), two
//! mfa-radiusd nodes on the multi-host URL with `target_session_attrs=read-write`, driven by
//! radclient. Under load the primary is killed with -9 and the standby promoted by hand
//! (`pg_ctl promote`). Nothing is accepted while no primary answers, both daemons accept
//! again without a restart, and nothing acknowledged before the kill is lost: used codes,
//! used backup codes and used invites stay used, the lockout stays, the audit rows stay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mfa_config::{SslMode, StoreConfig};
use mfa_core::OpenMode;
use mfa_e2e::radius::*;
use mfa_e2e::{PgCluster, Site, fresh_key, printed_codes, text, totp, unique, wrong_code};

const STANDBY: &str = "mfa_standby";

struct Node {
    daemon: Daemon,
    port: u16,
    metrics: u16,
}

impl Node {
    fn start(store_toml: &str, extra: &str) -> (Node, Site) {
        require_tool("radclient");
        let port = free_udp_port();
        let metrics = mfa_e2e::free_tcp_port();
        let text = config_text(
            "code-only",
            &format!("\"127.0.0.1:{port}\""),
            &format!("metrics_listen = \"127.0.0.1:{metrics}\""),
            SECRET,
        );
        let text = text.replace(
            "[store]\npath = \"mfa.db\"\nkey_file = \"mfa.key\"\n",
            store_toml,
        );
        let site = Site::with_config(&format!("{text}{extra}"));
        let daemon = spawn_daemon(&site.config, None);
        daemon.wait_log("listening on", 1);
        (
            Node {
                daemon,
                port,
                metrics,
            },
            site,
        )
    }

    fn send(&self, user: &str, code: &str, csi: &str) -> Reply {
        radclient(
            &format!("127.0.0.1:{}", self.port),
            SECRET,
            "auth",
            &attrs(user, Some(code), Some(csi), true),
            5,
        )
    }

    /// The Prometheus text of the node's metrics endpoint.
    fn scrape(&self) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.metrics)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// Waits (a generous bound) until the metrics, refreshed every few seconds, say that the
    /// store uses `server` as its primary.
    fn wait_for_primary(&self, server: &str) -> String {
        let want = format!("mfa_store_server{{server=\"{server}\"}} 1\n");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let body = self.scrape();
            if body.contains(&want) && body.contains("mfa_store_primary 1\n") {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "the metrics never showed {server} as the primary:\n{body}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `mfactl status` of `site`.
fn status(site: &Site) -> String {
    let out = site.mfactl(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One login of the load.
struct Sent {
    node: usize,
    user: usize,
    code: String,
    reply: Option<String>,
    /// Sent after the kill -9 had been delivered.
    sent_after_kill: bool,
    /// Answered before the promotion was started.
    answered_before_promotion: bool,
    answered: Instant,
}

#[test]
fn killing_the_primary_and_promoting_the_sync_standby_loses_nothing_acknowledged() {
    let primary = PgCluster::start_replicated();
    let db = primary.create_db();
    let standby = primary.standby(STANDBY);
    primary.require_sync_standby(STANDBY);

    let url = format!(
        "postgres://mfa@127.0.0.1:{},127.0.0.1:{}/{db}?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let store_toml = format!(
        "[store]\nurl = \"{url}\"\nsslmode = \"disable\"\nkey_file = \"{}\"\n",
        primary.key_file().display()
    );
    // Per-address lockout off: the lockout below counts the user's failures.
    let extra = "\n[lockout]\nmax_failures = 3\nmax_failures_per_source = 0\n\n[portal]\npublic_url = \"https://mfa.example.com\"\n";
    let (n1, site) = Node::start(&store_toml, extra);
    let (n2, _site2) = Node::start(&store_toml, extra);
    let nodes = [&n1, &n2];

    // The load's users, enrolled in one go, and the users of the checks.
    let users: Vec<(String, String)> = (0..400).map(|_| (unique("fo"), fresh_key())).collect();
    let (locked, locked_key) = (unique("fo-lock"), fresh_key());
    let (backup, backup_key) = (unique("fo-bk"), fresh_key());
    let fresh: Vec<(String, String)> = (0..2).map(|_| (unique("fo-new"), fresh_key())).collect();
    let csv = site.path().join("users.csv");
    let lines: Vec<String> = users
        .iter()
        .chain(&fresh)
        .chain([&(locked.clone(), locked_key.clone())])
        .chain([&(backup.clone(), backup_key.clone())])
        .map(|(u, k)| format!("{u},{k}"))
        .collect();
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    let out = site.mfactl(&["import", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    // Before the kill: a backup code used (one of two), a user locked out, an invite used.
    let out = site.mfactl(&["backup-codes", &backup, "--count", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let backup_codes = printed_codes(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(backup_codes.len(), 2, "{}", text(&out));
    let r = n1.send(&backup, &backup_codes[0], UNTRUSTED_CSI);
    assert!(r.is("Access-Accept"), "backup code: {}", r.output);
    let bad = wrong_code(&locked_key);
    for i in 0..3 {
        let r = nodes[i % 2].send(&locked, &bad, UNTRUSTED_CSI);
        assert!(r.is("Access-Reject"), "{}", r.output);
    }
    let r = n1.send(&locked, &totp(&locked_key, 0), UNTRUSTED_CSI);
    assert!(
        r.is("Access-Reject") && r.messages.iter().any(|m| m.contains("locked until")),
        "{}",
        r.output
    );
    let invited = unique("fo-inv");
    let out = site.mfactl(&["invite", &invited, "--valid", "2d"]);
    assert!(out.status.success(), "{}", text(&out));
    let store_cfg = StoreConfig {
        url: Some(url.clone()),
        sslmode: SslMode::Disable,
        key_file: Some(primary.key_file()),
        ..StoreConfig::default()
    };
    let invite_hash = {
        let store = mfa_store_open::open(&store_cfg, OpenMode::Existing).unwrap();
        let inv = store
            .invites()
            .unwrap()
            .into_iter()
            .find(|i| i.user == invited)
            .expect("the invite just made");
        assert!(
            store
                .use_invite(&inv.hash, mfa_e2e::unix_now(), &[])
                .unwrap(),
            "the new invite is usable"
        );
        inv.hash
    };

    // Before the kill: mfactl status and both nodes' metrics name host 1 as the primary,
    // with its synchronous standby.
    let (p1, p2) = (
        format!("127.0.0.1:{}", primary.port),
        format!("127.0.0.1:{}", standby.port),
    );
    let st = status(&site);
    assert!(
        st.contains(&format!("server: {p1} (primary)"))
            && st.contains(&format!("standby {STANDBY}: sync,")),
        "{st}"
    );
    for node in nodes {
        let body = node.wait_for_primary(&p1);
        assert!(
            body.contains(&format!(
                "mfa_store_standby{{standby=\"{STANDBY}\",sync_state=\"sync\"}} 1\n"
            )),
            "{body}"
        );
    }

    // The load: two threads, one login per user with its current code, alternating
    // between the nodes, while the main thread kills the primary and promotes the standby.
    let next = AtomicUsize::new(0);
    let killed = AtomicBool::new(false);
    let promoting = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let results: Mutex<Vec<Sent>> = Mutex::new(Vec::new());
    let mut kill_at = Instant::now();
    let mut promoted_in = Duration::ZERO;
    let mut promote_at = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !done.load(Ordering::Acquire) {
                    let i = next.fetch_add(1, Ordering::AcqRel);
                    let Some((u, k)) = users.get(i) else { break };
                    let sent_after_kill = killed.load(Ordering::Acquire);
                    let code = totp(k, 0);
                    let r = nodes[i % 2].send(u, &code, &format!("198.51.100.{}:1194", i % 200));
                    let answered_before_promotion = !promoting.load(Ordering::Acquire);
                    results.lock().unwrap().push(Sent {
                        node: i % 2,
                        user: i,
                        code,
                        reply: r.code,
                        sent_after_kill,
                        answered_before_promotion,
                        answered: Instant::now(),
                    });
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1000));
        kill_at = Instant::now();
        primary.kill9();
        killed.store(true, Ordering::Release);
        std::thread::sleep(Duration::from_millis(1500));
        promoting.store(true, Ordering::Release);
        promote_at = Instant::now();
        standby.promote();
        promoted_in = promote_at.elapsed();
        // Both nodes accept again without a restart (a generous bounded wait).
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let recovered = |node: usize| {
                results.lock().unwrap().iter().any(|r| {
                    r.node == node
                        && r.sent_after_kill
                        && r.reply.as_deref() == Some("Access-Accept")
                })
            };
            if recovered(0) && recovered(1) {
                break;
            }
            if Instant::now() > deadline || next.load(Ordering::Acquire) >= users.len() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        done.store(true, Ordering::Release);
    });
    let results = results.into_inner().unwrap();
    let first_accept = results
        .iter()
        .filter(|r| r.sent_after_kill && r.reply.as_deref() == Some("Access-Accept"))
        .map(|r| r.answered)
        .min();
    let since = |t: Instant| first_accept.map(|a| a.saturating_duration_since(t));
    let gap: Vec<&Sent> = results
        .iter()
        .filter(|r| r.sent_after_kill && r.answered_before_promotion)
        .collect();
    let count = |want: &str| {
        results
            .iter()
            .filter(|r| r.reply.as_deref() == Some(want))
            .count()
    };
    eprintln!(
        "failover: {} requests ({} accepted, {} rejected, {} unanswered); {} sent while no primary was reachable; pg_ctl promote took {promoted_in:?}; kill -9 to the first accept after the promotion: {:?} (from the start of the promotion: {:?})",
        results.len(),
        count("Access-Accept"),
        count("Access-Reject"),
        results.iter().filter(|r| r.reply.is_none()).count(),
        gap.len(),
        since(kill_at),
        since(promote_at),
    );

    // 0 accepted while no primary is reachable; the daemons said no.
    assert!(
        !gap.is_empty(),
        "no request was sent while no primary was reachable"
    );
    for r in &gap {
        assert_ne!(
            r.reply.as_deref(),
            Some("Access-Accept"),
            "accepted while no primary was reachable: user {} on node {}",
            users[r.user].0,
            r.node + 1
        );
    }
    assert!(
        gap.iter()
            .any(|r| r.reply.as_deref() == Some("Access-Reject")),
        "while no primary was reachable, the daemons reject"
    );

    // The store's errors in the gap name the servers tried: both hosts of the URL.
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", primary.port, standby.port);
    assert!(
        n1.daemon.log().contains(&hosts),
        "no store error naming {hosts}:\n{}",
        n1.daemon.log()
    );

    // Every daemon accepts a new code after the promotion, without a restart.
    for (node, (u, k)) in nodes.iter().zip(&fresh) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = node.send(u, &totp(k, 0), "203.0.113.9:1194");
            if r.is("Access-Accept") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node on port {} never accepted after the promotion: {}\n{}",
                node.port,
                r.output,
                node.daemon.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // After the promotion: host 2 is the primary, in mfactl status and both nodes' metrics.
    let st = status(&site);
    assert!(st.contains(&format!("server: {p2} (primary)")), "{st}");
    assert!(st.contains("standbys: none"), "{st}");
    for node in nodes {
        node.wait_for_primary(&p2);
    }

    // Every code accepted (before the kill, and after the promotion) is refused now, on
    // either node.
    let accepted: Vec<&Sent> = results
        .iter()
        .filter(|r| r.reply.as_deref() == Some("Access-Accept"))
        .collect();
    assert!(
        accepted.iter().any(|r| !r.sent_after_kill),
        "no code was accepted before the kill"
    );
    for r in &accepted {
        let other = nodes[(r.node + 1) % 2];
        let again = other.send(&users[r.user].0, &r.code, "203.0.113.5:1194");
        assert!(
            again.is("Access-Reject"),
            "code of {} used again after the failover: {}",
            users[r.user].0,
            again.output
        );
    }
    // The backup code used before the kill stays used; the other still works.
    let r = n2.send(&backup, &backup_codes[0], UNTRUSTED_CSI);
    assert!(r.is("Access-Reject"), "used backup code: {}", r.output);
    let r = n1.send(&backup, &backup_codes[1], UNTRUSTED_CSI);
    assert!(r.is("Access-Accept"), "unused backup code: {}", r.output);
    // The lockout survived.
    for node in nodes {
        let r = node.send(&locked, &totp(&locked_key, 0), UNTRUSTED_CSI);
        assert!(
            r.is("Access-Reject") && r.messages.iter().any(|m| m.contains("locked until")),
            "lockout after the failover: {}",
            r.output
        );
    }
    // The invite used before the kill stays used.
    let store = mfa_store_open::open(&store_cfg, OpenMode::Existing).unwrap();
    assert!(
        !store
            .use_invite(&invite_hash, mfa_e2e::unix_now(), &[])
            .unwrap(),
        "the invite used before the kill was usable again"
    );

    // No audit row of an acknowledged decision is lost: every accepted login has its row
    // on the promoted server.
    let rows = standby.psql(
        &db,
        "SELECT \"user\" || ' ' || decision FROM audit ORDER BY id",
    );
    let rows: std::collections::HashSet<&str> = rows.lines().collect();
    for r in &accepted {
        let want = format!("{} allow", users[r.user].0);
        assert!(
            rows.contains(want.as_str()),
            "audit row of an accepted login lost: {want}"
        );
    }
    for want in [format!("{backup} allow"), format!("{locked} deny")] {
        assert!(rows.contains(want.as_str()), "audit row lost: {want}");
    }
    // The promoted standby is the primary now.
    assert_eq!(standby.psql("postgres", "SELECT pg_is_in_recovery()"), "f");
}

/// libpq's key=value form is refused, at once and changing nothing, with the URL it would
/// be (docs/FAILOVER.md).
#[test]
fn the_key_value_connection_string_is_refused_with_the_url_form() {
    let site = Site::with_config(
        "[store]\nurl = \"host=db1,db2 port=5432 user=mfa dbname=mfa\"\nsslmode = \"disable\"\nkey_file = \"mfa.key\"\n[audit]\nsyslog = false\n",
    );
    let out = site.mfactl(&["auth", "alice", "--ip", "198.51.100.1", "--code", "123456"]);
    assert_eq!(mfa_e2e::code_of(&out), 2, "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("store.url")
            && t.contains("key=value form")
            && t.contains("postgres://mfa@db1:5432,db2:5432/mfa?target_session_attrs=read-write"),
        "{t}"
    );
    assert!(
        !site.path().join("mfa.key").exists(),
        "a refused config made a key"
    );
}

/// A primary with a synchronous standby, one daemon on it and one enrolled user, and then the
/// standby stopped: from here every COMMIT that waits for the standby waits until cancelled.
/// Fields drop in order: the daemon before the clusters.
struct StandbyGone {
    node: Node,
    site: Site,
    user: String,
    key: String,
    addr: String,
    _standby: PgCluster,
    primary: PgCluster,
}

impl StandbyGone {
    fn start() -> Self {
        let primary = PgCluster::start_replicated();
        let db = primary.create_db();
        let standby = primary.standby(STANDBY);
        primary.require_sync_standby(STANDBY);
        let store_toml = format!(
            "[store]\nurl = \"postgres://mfa@127.0.0.1:{}/{db}\"\nsslmode = \"disable\"\nkey_file = \"{}\"\n",
            primary.port,
            primary.key_file().display()
        );
        let (node, site) = Node::start(&store_toml, "");
        let (user, key) = (unique("fo"), fresh_key());
        site.enroll(&user, &key);
        standby.stop();
        let addr = format!("127.0.0.1:{}", node.port);
        Self {
            node,
            site,
            user,
            key,
            addr,
            _standby: standby,
            primary,
        }
    }

    /// A login with the user's code from an untrusted address, whose COMMIT waits for the
    /// stopped standby until the operator cancels it (`pg_cancel_backend`); the daemon's
    /// answer.
    fn code_login_with_its_commit_cancelled(&self) -> Reply {
        std::thread::scope(|s| {
            let login = s.spawn(|| {
                radclient(
                    &self.addr,
                    SECRET,
                    "auth",
                    &attrs(
                        &self.user,
                        Some(&totp(&self.key, 0)),
                        Some(UNTRUSTED_CSI),
                        true,
                    ),
                    30,
                )
            });
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let cancelled = self.primary.psql(
                    "postgres",
                    "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
                );
                if cancelled != "0" {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no COMMIT of the code waited for the standby"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            login.join().unwrap()
        })
    }
}

/// With the synchronous standby away, PostgreSQL's COMMIT waits for it (logins get no
/// answer: fail closed). An operator who cancels the stuck backends (`pg_cancel_backend`)
/// makes each waiting COMMIT return as done, with only a warning, though the standby never
/// got it: a login accepted on such a commit could be accepted again after a failover, so
/// the store refuses it.
#[test]
fn a_commit_the_sync_standby_never_confirmed_is_refused() {
    let gone = StandbyGone::start();
    let (primary, node) = (&gone.primary, &gone.node);
    let r = gone.code_login_with_its_commit_cancelled();
    assert!(
        !r.is("Access-Accept"),
        "accepted on a commit the standby never confirmed: {}\n{}",
        r.output,
        node.daemon.log()
    );
    assert!(
        primary
            .log()
            .contains("canceling wait for synchronous replication"),
        "{}",
        primary.log()
    );
    // The error names the server it came from.
    let log = node.daemon.log();
    assert!(
        log.contains("synchronous standby did not confirm")
            && log.contains(&format!("(server 127.0.0.1:{})", primary.port)),
        "{log}"
    );
}

/// Issue 25 (ARCHITECTURE.md, *Durability*): a login let in without a code consumes nothing,
/// so its commit does not wait for the synchronous standby (`SET LOCAL synchronous_commit =
/// off`); a code's commit still does, and is refused when the wait is cancelled. With the
/// standby stopped, the trusted login is answered and the code is not.
#[test]
fn a_trusted_allow_does_not_wait_for_the_standby_and_a_code_still_does() {
    let gone = StandbyGone::start();
    let (node, site, u, addr) = (&gone.node, &gone.site, &gone.user, &gone.addr);
    // No standby to confirm: the trusted allow is answered all the same (the old daemon's
    // commit waited for the standby, and the gateway heard nothing).
    let r = radclient(
        addr,
        SECRET,
        "auth",
        &attrs(u, None, Some(TRUSTED_CSI), true),
        10,
    );
    assert!(r.is("Access-Accept"), "{}\n{}", r.output, node.daemon.log());
    let r = gone.code_login_with_its_commit_cancelled();
    assert!(
        !r.is("Access-Accept"),
        "a code accepted on a commit the standby never confirmed: {}",
        r.output
    );
    // The trusted allow's audit row is on the primary.
    let log = text(&site.mfactl(&["log", u, "--format", "csv"]));
    assert_eq!(log.matches("trusted_network").count(), 1, "{log}");
}

/// `mfactl status` on the SQLite store: no server to fail over, and it says so.
#[test]
fn mfactl_status_on_sqlite_names_no_server() {
    let site = Site::new("");
    assert_eq!(mfa_e2e::code_of(&site.mfactl(&["init"])), 0);
    let st = status(&site);
    assert!(
        st.contains("store: SQLite") && st.contains("server: none"),
        "{st}"
    );
    let out = site.mfactl(&["status", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["database"], serde_json::Value::Null, "{v}");
}
