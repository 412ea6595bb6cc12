//! The PostgreSQL store (issue 10): the store conformance suite, the same test bodies as
//! SQLite's, against a real PostgreSQL; two mfa-radiusd processes on one database driven by
//! radclient; the database stopped under load and started again; `mfactl migrate`; bad
//! URLs, passwords and schemas. Each test brings its own throw-away cluster
//! ([`mfa_e2e::PgCluster`]), stopped when the test ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mfa_config::{SslMode, StoreConfig};
use mfa_core::OpenMode;
use mfa_e2e::radius::*;
use mfa_e2e::{PG_PASSWORD, PgCluster, Site, code_of, fresh_key, text, totp, unique, wrong_code};

fn store_config(url: &str) -> StoreConfig {
    StoreConfig {
        url: Some(url.into()),
        sslmode: SslMode::Disable,
        ..StoreConfig::default()
    }
}

#[test]
fn postgres_passes_the_store_conformance_suite() {
    let pg = PgCluster::start();
    let open = || {
        let db = pg.create_db();
        mfa_store_open::open(&store_config(&pg.url(&db)), OpenMode::Create).unwrap()
    };
    mfa_store::conformance::all(&open);
    mfa_core::conformance::all(&open);
}

/// A radius config for `port` on the PostgreSQL database `db`.
fn node_config(pg: &PgCluster, db: &str, port: u16, extra: &str) -> String {
    let text = config_text("code-only", &format!("\"127.0.0.1:{port}\""), "", SECRET);
    // Every node names the same key file (docs/CONFIG.md, PostgreSQL).
    let text = text.replace(
        "[store]\npath = \"mfa.db\"\nkey_file = \"mfa.key\"\n",
        &pg.store_toml(db),
    );
    format!("{text}{extra}")
}

struct Node {
    daemon: Daemon,
    site: Site,
    port: u16,
}

impl Node {
    fn start(pg: &PgCluster, db: &str, extra: &str) -> Node {
        require_tool("radclient");
        let port = free_udp_port();
        let site = Site::with_config(&node_config(pg, db, port, extra));
        let daemon = spawn_daemon(&site.config, None);
        daemon.wait_log("listening on", 1);
        Node { daemon, site, port }
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
}

#[test]
fn two_daemons_on_one_database_never_both_accept_a_code() {
    let pg = PgCluster::start();
    let db = pg.create_db();
    // Per-address lockout off: this test counts the user's failures across both nodes.
    let lockout = "\n[lockout]\nmax_failures = 5\nmax_failures_per_source = 0\n";
    let n1 = Node::start(&pg, &db, lockout);
    let n2 = Node::start(&pg, &db, lockout);

    // Enrolled with mfactl while both run: each node sees the user at once.
    let (u1, k1) = (unique("pg"), fresh_key());
    n1.site.enroll(&u1, &k1);
    let (u2, k2) = (unique("pg"), fresh_key());
    n2.site.enroll(&u2, &k2);
    let r = n2.send(&u1, &totp(&k1, 0), UNTRUSTED_CSI);
    assert!(
        r.is("Access-Accept"),
        "node 2, user enrolled via node 1's config: {}",
        r.output
    );
    let r = n1.send(&u2, &totp(&k2, 0), UNTRUSTED_CSI);
    assert!(r.is("Access-Accept"), "{}", r.output);

    // A code accepted by node 1 is refused by node 2.
    let (u, k) = (unique("pg"), fresh_key());
    n1.site.enroll(&u, &k);
    let code = totp(&k, 0);
    let r = n1.send(&u, &code, UNTRUSTED_CSI);
    assert!(r.is("Access-Accept"), "{}", r.output);
    let r = n2.send(&u, &code, UNTRUSTED_CSI);
    assert!(r.is("Access-Reject"), "replay on node 2: {}", r.output);
    n2.daemon.wait_log("reason=replayed_code", 1);

    // 16 concurrent requests carrying one fresh code, spread over both nodes: one Accept.
    let (u, k) = (unique("pg"), fresh_key());
    n1.site.enroll(&u, &k);
    let code = totp(&k, 0);
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..16)
            .map(|i| {
                let (node, u, code) = (if i % 2 == 0 { &n1 } else { &n2 }, &u, &code);
                s.spawn(move || node.send(u, code, &format!("198.51.100.{}:1194", 10 + i)))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepts = replies.iter().filter(|r| r.is("Access-Accept")).count();
    let rejects = replies.iter().filter(|r| r.is("Access-Reject")).count();
    assert_eq!((accepts, rejects), (1, 15), "{replies:#?}");

    // Wrong codes sent to both nodes add up to one lockout: 3 on node 1, 2 on node 2.
    let (u, k) = (unique("pg"), fresh_key());
    n1.site.enroll(&u, &k);
    let bad = wrong_code(&k);
    for i in 0..5 {
        let node = if i < 3 { &n1 } else { &n2 };
        let r = node.send(&u, &bad, UNTRUSTED_CSI);
        assert!(r.is("Access-Reject"), "{}", r.output);
    }
    for node in [&n1, &n2] {
        let r = node.send(&u, &totp(&k, 0), UNTRUSTED_CSI);
        assert!(r.is("Access-Reject"), "{}", r.output);
        assert!(
            r.messages.iter().any(|m| m.contains("locked until")),
            "{:?}",
            r.messages
        );
    }
    let report = n2.site.mfactl(&["report", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let row = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user"] == u.as_str())
        .unwrap();
    assert!(!row["locked_until"].is_null(), "{row}");
}

/// Issue 24: two mfa-radiusd nodes in challenge mode on one PostgreSQL database, as a
/// gateway that alternates between its servers uses them: a challenge started on node A and
/// answered to node B gets Access-Accept (both ways round), its State replayed to either node
/// gets Access-Reject, and the caps on pending challenges (per user, per client entry) count
/// both nodes together.
#[test]
fn two_daemons_on_one_database_finish_each_others_challenges() {
    let pg = PgCluster::start();
    let db = pg.create_db();
    let store = pg.store_toml(&db);
    let a = Rig::start_on("challenge", "max_pending_challenges = 16", Some(&store));
    let b = Rig::start_on("challenge", "max_pending_challenges = 16", Some(&store));
    challenges_finish_on_either_node(&a, &b);
    challenge_caps_hold_across_nodes(&a, &b);
}

/// Issue 24 with push approval: the challenge rounds that offer, show and poll a push are
/// pending challenges like any, so a gateway alternating between two nodes gets through:
/// the offer from node A, `push` answered on node B (which sends the push and shows its
/// number), OK too early on A (asked again), OK after the approval on B (Access-Accept); the
/// last State replayed to either node is refused.
#[test]
fn push_challenge_rounds_on_alternate_nodes() {
    use mfa_e2e::phone::{FakePortal, OnPhone, Phone, push_toml, shown_number};
    let pg = PgCluster::start();
    let db = pg.create_db();
    let store = format!("{}{}", pg.store_toml(&db), push_toml(""));
    let a = Rig::start_on("challenge", "", Some(&store));
    let b = Rig::start_on("challenge", "", Some(&store));
    let portal = FakePortal::start(&a.site.config);
    let (user, key) = a.user();
    let phone = Phone::register(&b.site.config, &user, &key);
    let round = |rig: &Rig, password: &str, state: Option<&str>| {
        let mut at = attrs(&user, Some(password), Some(UNTRUSTED_CSI), true);
        if let Some(s) = state {
            at.push_str(&format!("State = {s}\n"));
        }
        rig.send(&at)
    };

    let r = round(&a, PASSWORD, None);
    assert!(r.is("Access-Challenge"), "{}", r.output);
    assert!(
        r.messages.iter().any(|m| m.contains("type push")),
        "{:?}",
        r.messages
    );
    let r = round(&b, "push", r.state.as_deref());
    assert!(r.is("Access-Challenge"), "node B, A's offer: {}", r.output);
    let number = shown_number(&r.messages.join(" ")).expect("the number is shown");
    let sent = portal.wait_for(&user, 1);
    let r = round(&a, "", r.state.as_deref());
    assert!(r.is("Access-Challenge"), "node A, B's push: {}", r.output);
    assert!(r.messages.join(" ").contains("Not approved yet"), "{r:?}");
    phone.decide(&sent.id, OnPhone::Approve(Some(number)));
    let last = r.state.clone();
    let r = round(&b, "", last.as_deref());
    assert!(r.is("Access-Accept"), "node B, A's wait: {}", r.output);
    b.daemon.wait_log("reason=push_approved", 1);
    for node in [&a, &b] {
        let r = round(node, "", last.as_deref());
        assert!(r.is("Access-Reject"), "replayed: {}", r.output);
    }
    assert_eq!(portal.pushes_to(&user).len(), 1);
}

/// Issue 20: two mfa-radiusd nodes on one PostgreSQL database. Node 1 holds an RD Gateway
/// request (code-only, no code) for a push; node 2, asked for the same user and client
/// meanwhile, refuses a second push at once (one pending per user and service holds across
/// nodes); the phone's approval, written through the core as a portal on another node
/// writes it, lets node 1's waiting request in. Then the other way round.
#[test]
fn push_one_node_waits_while_another_approves() {
    use mfa_e2e::phone::{FakePortal, OnPhone, Phone, push_toml};
    let pg = PgCluster::start();
    let db = pg.create_db();
    let push = push_toml("");
    let n1 = Node::start(&pg, &db, &push);
    let n2 = Node::start(&pg, &db, &push);
    let portal = FakePortal::start(&n2.site.config);
    let (u, k) = (unique("pg"), fresh_key());
    n1.site.enroll(&u, &k);
    let phone = Phone::register(&n2.site.config, &u, &k);
    let no_code = |node: &Node| {
        radclient(
            &format!("127.0.0.1:{}", node.port),
            SECRET,
            "auth",
            &attrs(&u, None, Some(UNTRUSTED_CSI), true),
            30,
        )
    };

    for (waits, other) in [(&n1, &n2), (&n2, &n1)] {
        let before = portal.pushes_to(&u).len();
        std::thread::scope(|s| {
            let held = s.spawn(|| no_code(waits));
            let sent = portal.wait_for(&u, before + 1);
            let r = no_code(other);
            assert!(r.is("Access-Reject"), "{}", r.output);
            assert!(
                r.messages.iter().any(|m| m.contains("already waiting")),
                "{r:?}"
            );
            phone.decide(&sent.id, OnPhone::Approve(None));
            let r = held.join().unwrap();
            assert!(r.is("Access-Accept"), "{}", r.output);
        });
        waits.daemon.wait_log("reason=push_approved", 1);
        other.daemon.wait_log("reason=push_already_pending", 1);
    }
    assert_eq!(portal.pushes_to(&u).len(), 2);
}

/// One login of the load: user index, code, reply, sent and answered while the database
/// was down.
type Sent = (usize, String, Option<String>, bool);

#[test]
fn the_database_stopped_under_load_rejects_then_recovers_without_a_restart() {
    let pg = PgCluster::start();
    let db = pg.create_db();
    let node = Node::start(&pg, &db, "");
    let users: Vec<(String, String)> = (0..100).map(|_| (unique("pl"), fresh_key())).collect();
    // Enrolled in one go (100 mfactl runs would take long).
    let csv = node.site.path().join("users.csv");
    let lines: Vec<String> = users.iter().map(|(u, k)| format!("{u},{k}")).collect();
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    let out = node.site.mfactl(&["import", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    // Load: one login per user with its current code, two threads, while the main thread
    // stops and starts the database.
    let next = AtomicUsize::new(0);
    let down = AtomicBool::new(false);
    let results: Mutex<Vec<Sent>> = Mutex::new(Vec::new());
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !done.load(Ordering::Acquire) {
                    let i = next.fetch_add(1, Ordering::AcqRel);
                    let Some((u, k)) = users.get(i) else { break };
                    let was_down = down.load(Ordering::Acquire);
                    let code = totp(k, 0);
                    let r = node.send(u, &code, &format!("198.51.100.{}:1194", i % 200));
                    let still_down = down.load(Ordering::Acquire);
                    results
                        .lock()
                        .unwrap()
                        .push((i, code, r.code, was_down && still_down));
                    std::thread::sleep(Duration::from_millis(30));
                }
            });
        }
        std::thread::sleep(Duration::from_millis(800));
        pg.stop();
        down.store(true, Ordering::Release);
        std::thread::sleep(Duration::from_millis(1500));
        down.store(false, Ordering::Release);
        pg.pg_start();
        let at_restart = results.lock().unwrap().len();
        // Recovery: without restarting the daemon, a login sent after the restart is
        // accepted again.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !results.lock().unwrap()[at_restart..]
            .iter()
            .any(|(_, _, c, _)| c.as_deref() == Some("Access-Accept"))
        {
            assert!(
                Instant::now() < deadline && next.load(Ordering::Acquire) < users.len(),
                "never recovered: {:?}",
                results.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        done.store(true, Ordering::Release);
    });
    let results = results.into_inner().unwrap();
    let count = |want: Option<&str>, down: bool| {
        results
            .iter()
            .filter(|r| r.2.as_deref() == want && (!down || r.3))
            .count()
    };
    eprintln!(
        "{} requests: {} accepted, {} rejected, {} unanswered; while down: {} rejected, {} unanswered",
        results.len(),
        count(Some("Access-Accept"), false),
        count(Some("Access-Reject"), false),
        count(None, false),
        count(Some("Access-Reject"), true),
        count(None, true)
    );
    let while_down: Vec<_> = results.iter().filter(|r| r.3).collect();
    assert!(
        !while_down.is_empty(),
        "no request was sent while the database was down"
    );
    for r in &while_down {
        assert_ne!(
            r.2.as_deref(),
            Some("Access-Accept"),
            "accepted while down: {r:?}"
        );
    }
    assert!(
        while_down
            .iter()
            .any(|r| r.2.as_deref() == Some("Access-Reject")),
        "while down, the daemon rejects: {while_down:?}"
    );
    // No code acknowledged as accepted can be used again.
    let accepted: Vec<_> = results
        .iter()
        .filter(|r| r.2.as_deref() == Some("Access-Accept"))
        .collect();
    assert!(accepted.len() >= 2, "{results:?}");
    for (i, code, _, _) in accepted {
        let r = node.send(&users[*i].0, code, "203.0.113.5:1194");
        assert!(
            r.is("Access-Reject"),
            "code of {} used again: {}",
            users[*i].0,
            r.output
        );
    }
}

/// `mfactl report` and `mfactl log` as JSON, without the report's generation time.
fn snapshot(site: &Site) -> (serde_json::Value, serde_json::Value) {
    let out = site.mfactl(&["report", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let mut report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report.as_object_mut().unwrap().remove("generated");
    let out = site.mfactl(&["log", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    (report, serde_json::from_slice(&out.stdout).unwrap())
}

/// `mfactl import` of more users than PostgreSQL's shared lock table holds (6,400 advisory
/// locks with the default settings) in its one transaction: "out of shared memory" before
/// the store locked the users table for large transactions.
#[test]
fn importing_twenty_thousand_users_into_postgres_is_one_transaction() {
    let pg = PgCluster::start();
    let db = pg.create_db();
    let site = Site::with_config(&format!("{}[audit]\nsyslog = false\n", pg.store_toml(&db)));
    let out = site.mfactl(&["init"]);
    assert!(out.status.success(), "{}", text(&out));
    let key = fresh_key();
    let mut csv = String::from("user,secret\n");
    for i in 0..20_000 {
        csv.push_str(&format!("imp{i:05},{key}\n"));
    }
    let file = site.path().join("users.csv");
    std::fs::write(&file, csv).unwrap();
    let out = site.mfactl(&["import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM users"), "20000");
    // And a login of one of them works on the same store.
    let out = site.mfactl(&[
        "auth",
        "imp12345",
        "--ip",
        "198.51.100.1",
        "--code",
        &totp(&key, 0),
    ]);
    assert_eq!(code_of(&out), 0, "{}", text(&out));
}

#[test]
fn mfactl_migrate_copies_everything_into_an_empty_store_once() {
    let pg = PgCluster::start();
    let db = pg.create_db();
    let site = Site::new("[lockout]\nmax_failures = 5\nmax_failures_per_source = 3\n");
    let (alice, ka) = ("alice".to_string(), fresh_key());
    let (bob, kb) = ("bob".to_string(), fresh_key());
    site.enroll(&alice, &ka);
    site.enroll(&bob, &kb);
    let backup = site.mfactl(&["backup-codes", &alice, "--count", "3"]);
    assert!(backup.status.success(), "{}", text(&backup));
    let codes = mfa_e2e::printed_codes(&text(&backup));
    // carol is a name the system does not know: the administrator insists.
    let temp = site.mfactl(&["temp-access", "carol", "--uses", "2", "--force"]);
    assert!(temp.status.success(), "{}", text(&temp));
    let auth =
        |user: &str, ip: &str, code: &str| site.mfactl(&["auth", user, "--ip", ip, "--code", code]);
    // Kept: the replay check after the copy must send this very code, whatever step it is then.
    let used = totp(&ka, 0);
    assert_eq!(code_of(&auth(&alice, "198.51.100.1", &used)), 0);
    assert_eq!(code_of(&auth(&bob, "198.51.100.2", &wrong_code(&kb))), 1);
    assert_eq!(code_of(&auth(&bob, "198.51.100.2", &wrong_code(&kb))), 1);
    assert_eq!(code_of(&auth(&alice, "198.51.100.3", &codes[0])), 0);
    let before = snapshot(&site);
    assert!(before.1.as_array().unwrap().len() >= 7, "{}", before.1);

    let url = pg.url(&db);
    let out = site.mfactl(&["migrate", "--to", &url, "--sslmode", "disable"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Copied 3 user(s)"), "{}", text(&out));

    // The same site on the PostgreSQL store: the same report and audit trail.
    let config = std::fs::read_to_string(&site.config).unwrap();
    // It records the source's key id: the source's key file opens it, another does not.
    let pg_toml = |key: &std::path::Path| {
        config.replace(
            "[store]\npath = \"mfa.db\"\nkey_file = \"mfa.key\"\n",
            &pg.store_toml_keyed(&db, key),
        )
    };
    let pg_config = pg_toml(&site.key_file());
    assert_ne!(config, pg_config);
    std::fs::write(&site.config, pg_toml(&pg.key_file())).unwrap();
    let out = site.mfactl(&["report"]);
    assert_eq!(code_of(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("encrypted under it") && !pg.key_file().exists(),
        "{}",
        text(&out)
    );
    std::fs::write(&site.config, &pg_config).unwrap();
    let after = snapshot(&site);
    assert_eq!(before, after);
    // Every other command works unchanged against it: the copied codes and counters count.
    assert_eq!(
        code_of(&auth(&alice, "198.51.100.3", &codes[0])),
        1,
        "backup code used twice"
    );
    assert_eq!(code_of(&auth(&alice, "198.51.100.3", &codes[1])), 0);
    assert_eq!(code_of(&auth(&alice, "198.51.100.1", &used)), 1, "replay");
    let out = site.mfactl(&["unlock", &bob]);
    assert!(out.status.success(), "{}", text(&out));

    // A second run is refused and changes nothing.
    std::fs::write(&site.config, &config).unwrap();
    let second = snapshot(&site);
    std::fs::write(&site.config, &pg_config).unwrap();
    let target_before = snapshot(&site);
    std::fs::write(&site.config, &config).unwrap();
    let out = site.mfactl(&["migrate", "--to", &url, "--sslmode", "disable"]);
    assert_eq!(code_of(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("not empty"), "{}", text(&out));
    assert_eq!(snapshot(&site), second, "the source is unchanged");
    std::fs::write(&site.config, &pg_config).unwrap();
    assert_eq!(snapshot(&site), target_before, "the target is unchanged");
}

#[test]
fn bad_urls_passwords_and_schemas_are_named_and_deny() {
    let pg = PgCluster::start();
    let db = pg.create_db();
    // Every store names its key file ([store] key_file is required with url).
    let key = format!("key_file = \"{}\"\n", pg.key_file().display());
    let site = |store: &str| {
        let key = if store.contains("key_file") { "" } else { &key };
        Site::with_config(&format!("{store}{key}[audit]\nsyslog = false\n"))
    };
    let auth = |s: &Site| s.mfactl(&["auth", "alice", "--ip", "198.51.100.1", "--code", "123456"]);

    // Nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let s = site(&format!(
        "[store]\nurl = \"postgres://mfa@127.0.0.1:{port}/{db}\"\nsslmode = \"disable\"\n"
    ));
    let out = auth(&s);
    assert_eq!(code_of(&out), 2, "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(&format!("127.0.0.1:{port}")) && t.contains("refused"),
        "{t}"
    );
    // The daemon started while the database is unreachable exits with the same error
    // (docs/CONFIG.md: the unit's Restart=on-failure brings it back) instead of serving.
    let dead_node = node_config(&pg, &db, free_udp_port(), "").replace(
        &format!("127.0.0.1:{}/", pg.port),
        &format!("127.0.0.1:{port}/"),
    );
    assert!(
        dead_node.contains(&format!("127.0.0.1:{port}/")),
        "{dead_node}"
    );
    let s = Site::with_config(&dead_node);
    let mut d = spawn_daemon(&s.config, None);
    let st = d.stop_when_exited();
    assert!(!st.success(), "the daemon started without its database");
    assert!(
        d.log().contains(&format!("127.0.0.1:{port}")) && d.log().contains("refused"),
        "{}",
        d.log()
    );

    // A database that does not exist.
    let s = site(&format!(
        "[store]\nurl = \"postgres://mfa@127.0.0.1:{}/nosuchdb\"\nsslmode = \"disable\"\n",
        pg.port
    ));
    let t = text(&auth(&s));
    assert!(
        t.contains("nosuchdb") && t.contains("does not exist"),
        "{t}"
    );

    // Wrong password for a role that needs one; the right one works.
    pg.psql(&db, "GRANT ALL ON SCHEMA public TO pwuser");
    let pw_site = |pw: &str| {
        let s = site(&format!(
            "[store]\nurl = \"postgres://pwuser@127.0.0.1:{}/{db}\"\nsslmode = \"disable\"\npassword_file = \"db.password\"\n",
            pg.port
        ));
        std::fs::write(s.path().join("db.password"), format!("{pw}\n")).unwrap();
        s
    };
    let s = pw_site("not-the-password");
    let out = auth(&s);
    assert_eq!(code_of(&out), 2, "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("password authentication failed") && t.contains("pwuser"),
        "{t}"
    );
    assert!(!t.contains("not-the-password"), "{t}");
    let s = pw_site(PG_PASSWORD);
    let out = s.mfactl(&["init"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = auth(&s);
    assert_eq!(code_of(&out), 1, "denied, not an error: {}", text(&out));
    assert!(!text(&out).contains(PG_PASSWORD));

    // TLS required from a server that has none.
    let s = site(&format!(
        "[store]\nurl = \"postgres://mfa@127.0.0.1:{}/{db}\"\nsslmode = \"require\"\n",
        pg.port
    ));
    let out = auth(&s);
    assert_eq!(code_of(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("TLS") || text(&out).contains("SSL"),
        "{}",
        text(&out)
    );

    // A schema from a newer version: refused by mfactl and by the daemon, changing nothing.
    pg.psql(&db, "UPDATE schema_version SET version = 99");
    let s = site(&pg.store_toml(&db));
    let out = auth(&s);
    assert_eq!(code_of(&out), 2, "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("schema version 99") && t.contains("newer"),
        "{t}"
    );
    let port = free_udp_port();
    let s = Site::with_config(&node_config(&pg, &db, port, ""));
    let mut d = spawn_daemon(&s.config, None);
    let st = d.stop_when_exited();
    assert!(!st.success(), "the daemon started on a newer schema");
    assert!(d.log().contains("schema version 99"), "{}", d.log());
    assert_eq!(pg.psql(&db, "SELECT version FROM schema_version"), "99");

    // A database with other tables is not taken for an empty store.
    let other = pg.create_db();
    pg.psql(&other, "CREATE TABLE users (id int)");
    let out = site(&pg.store_toml(&other)).mfactl(&["init"]);
    assert_eq!(code_of(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("not an mfa store"), "{}", text(&out));
    // An empty database is not silently made a store by a login.
    let empty = pg.create_db();
    let out = auth(&site(&pg.store_toml(&empty)));
    assert_eq!(code_of(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("mfactl init"), "{}", text(&out));

    // config check names the keys.
    let s = site("[store]\nurl = \"postgres://mfa:pw@db1/mfa\"\nsslmode = \"disable\"\n");
    let out = s.mfactl(&["config", "check"]);
    assert_eq!(code_of(&out), 2);
    assert!(
        text(&out).contains("store.url") && text(&out).contains("password_file"),
        "{}",
        text(&out)
    );
    let s = site("[store]\nurl = \"postgres://mfa@db1/mfa\"\n");
    let out = s.mfactl(&["config", "check"]);
    assert!(
        text(&out).contains("store.sslmode") && text(&out).contains("ca_file"),
        "{}",
        text(&out)
    ); // A PostgreSQL store names its key file: no default next to a path it does not use.
    let s = Site::with_config(&format!(
        "[store]\nurl = \"{}\"\nsslmode = \"disable\"\n[audit]\nsyslog = false\n",
        pg.url(&db)
    ));
    for args in [&["config", "check"][..], &["report"]] {
        let out = s.mfactl(args);
        assert_eq!(code_of(&out), 2, "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("store.key_file") && text(&out).contains("every node"),
            "{args:?}: {}",
            text(&out)
        );
    }
}

#[test]
fn tls_to_the_database_checks_the_server_certificate() {
    let pg = PgCluster::start();
    let db = pg.create_db();
    let (ca, other_ca) = pg.enable_tls();
    let site = |sslmode: &str, ca: Option<&std::path::Path>| {
        let ca = ca.map_or(String::new(), |c| {
            format!("ca_file = \"{}\"\n", c.display())
        });
        Site::with_config(&format!(
            "[store]\nurl = \"{}\"\nsslmode = \"{sslmode}\"\n{ca}key_file = \"{}\"\n[audit]\nsyslog = false\n",
            pg.url(&db),
            pg.key_file().display()
        ))
    };
    // verify-full with the server's CA: the store opens and the session is encrypted.
    let s = site("verify-full", Some(&ca));
    let out = s.mfactl(&["init"]);
    assert!(out.status.success(), "{}", text(&out));
    s.enroll("tina", &fresh_key());
    // Another CA: refused, naming the certificate problem.
    let out = site("verify-full", Some(&other_ca)).mfactl(&["report"]);
    assert_eq!(code_of(&out), 2, "{}", text(&out));
    assert!(
        text(&out).to_lowercase().contains("certificate"),
        "{}",
        text(&out)
    );
    // require with a CA checks the chain (not the name); without one, encryption only.
    let out = site("require", Some(&other_ca)).mfactl(&["report"]);
    assert_eq!(code_of(&out), 2, "{}", text(&out));
    let out = site("require", Some(&ca)).mfactl(&["report"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = site("require", None).mfactl(&["report"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("tina"), "{}", text(&out));
    // A CA file that is not PEM is named.
    let junk = pg_junk_file();
    let out = site("verify-full", Some(junk.path())).mfactl(&["report"]);
    assert_eq!(code_of(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("ca_file"), "{}", text(&out));
}

fn pg_junk_file() -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), "not a certificate\n").unwrap();
    f
}

/// The version 4 layout the first PostgreSQL engine wrote (before seeds were encrypted,
/// codes had hash schemes and names were checked), as that code created it.
const PG_SCHEMA_V4: &str = r#"
CREATE TABLE schema_version (version BIGINT NOT NULL);
CREATE TABLE users (
    name TEXT PRIMARY KEY NOT NULL, secret BYTEA, algorithm TEXT NOT NULL,
    digits BIGINT NOT NULL, period BIGINT NOT NULL, mfa_created BIGINT, mfa_changed BIGINT,
    first_seen BIGINT NOT NULL, grace_started BIGINT, last_step BIGINT,
    failures BIGINT NOT NULL DEFAULT 0, first_failure BIGINT, locked_until BIGINT,
    login_count BIGINT NOT NULL DEFAULT 0, last_login BIGINT, last_ip TEXT, last_outcome TEXT);
CREATE TABLE one_time_codes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "user" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('backup', 'temporary')),
    salt BYTEA NOT NULL, hash BYTEA NOT NULL, created BIGINT NOT NULL, expires BIGINT,
    uses_left BIGINT NOT NULL);
CREATE INDEX one_time_codes_user ON one_time_codes("user");
CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, time BIGINT NOT NULL,
    "user" TEXT NOT NULL, service TEXT NOT NULL, client_ip TEXT, decision TEXT NOT NULL,
    reason TEXT NOT NULL, detail TEXT);
CREATE INDEX audit_time ON audit(time);
CREATE TABLE source_failures (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "user" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    source TEXT NOT NULL, failures BIGINT NOT NULL, first_failure BIGINT NOT NULL,
    locked_until BIGINT);
CREATE INDEX source_failures_user ON source_failures("user");
INSERT INTO schema_version VALUES (4);
"#;

#[test]
fn a_version_4_store_is_upgraded_in_place_then_sealed_by_the_first_open_with_a_key() {
    let pg = PgCluster::start();
    let db = pg.create_db();
    let key = fresh_key();
    let seed = mfa_core::secret::TotpSecret::from_base32(&key).unwrap();
    let hex: String = seed.bytes().iter().map(|b| format!("{b:02x}")).collect();
    pg.psql(&db, PG_SCHEMA_V4);
    // A clear seed, an old (SHA-256) backup code of 87654321, a counter, an audit row.
    pg.psql(
        &db,
        &format!(
            "INSERT INTO users (name, secret, algorithm, digits, period, first_seen, mfa_created)
               VALUES ('alice', decode('{hex}', 'hex'), 'SHA1', 6, 30, 1, 1);
             INSERT INTO one_time_codes (\"user\", kind, salt, hash, created, uses_left)
               VALUES ('alice', 'backup', decode(repeat('09', 16), 'hex'),
                       sha256('mfa-otc-v1'::bytea || decode(repeat('09', 16), 'hex') || '87654321'::bytea),
                       1, 1);
             INSERT INTO source_failures (\"user\", source, failures, first_failure)
               VALUES ('alice', '198.51.100.9', 1, 1);
             INSERT INTO audit (time, \"user\", service, decision, reason)
               VALUES (1, 'alice', 'mfactl', 'enroll', 'admin');"
        ),
    );
    let site = Site::with_config(&format!("{}[audit]\nsyslog = false\n", pg.store_toml(&db)));
    // The first open (mfactl init): upgraded through versions 5 and 6 (the portal's tables)
    // and 7 (the index of names that never enrolled) and 8 (the look-alike key of each name,
    // filled in by the name check) to 9 (push approval's tables), 10 (the outbox's claim
    // column), 11 (the pending challenges) and 12 (the names in byte order, for the
    // administrator's search), and sealed under a new key file.
    let out = site.mfactl(&["init"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(pg.key_file().exists());
    assert_eq!(pg.psql(&db, "SELECT version FROM schema_version"), "12");
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM challenges"), "0");
    assert_eq!(
        pg.psql(
            &db,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'push_requests' AND column_name = 'claimed'"
        ),
        "1"
    );
    for table in ["push_devices", "push_requests", "push_blocks"] {
        assert_eq!(
            pg.psql(&db, &format!("SELECT count(*) FROM {table}")),
            "0",
            "{table}"
        );
    }
    for index in [
        "users_unenrolled",
        "users_name_key",
        "users_name_bytes",
        "challenges_expires",
        "challenges_asker",
    ] {
        assert_eq!(
            pg.psql(
                &db,
                &format!("SELECT count(*) FROM pg_indexes WHERE indexname = '{index}'")
            ),
            "1",
            "{index}"
        );
    }
    assert_eq!(
        pg.psql(&db, "SELECT name_key FROM users"),
        mfa_core::lookalike_key("alice")
    );
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM unlocks"), "0");
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM invites"), "0");
    assert_eq!(
        pg.psql(&db, "SELECT encode(substr(secret, 1, 1), 'hex') FROM users"),
        "01",
        "sealed"
    );
    assert!(
        !pg.psql(&db, "SELECT encode(secret, 'hex') FROM users")
            .contains(&hex)
    );
    assert_eq!(pg.psql(&db, "SELECT scheme FROM one_time_codes"), "1");
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM store_key"), "1");
    let log = site.mfactl(&["log"]);
    assert!(text(&log).contains("seal"), "{}", text(&log));
    // The user still logs in, with the TOTP code and with the old backup code (once).
    let auth = |code: &str| site.mfactl(&["auth", "alice", "--ip", "198.51.100.9", "--code", code]);
    assert_eq!(code_of(&auth(&totp(&key, 0))), 0);
    assert_eq!(code_of(&auth("87654321")), 0);
    assert_eq!(code_of(&auth("87654321")), 1, "a backup code is used once");
    // A second node with another key file is refused, naming it.
    let other = Site::with_config(&format!(
        "{}[audit]\nsyslog = false\n",
        pg.store_toml_keyed(&db, &std::path::PathBuf::from("other.key"))
    ));
    let out = other.mfactl(&["report"]);
    assert_eq!(code_of(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("other.key"), "{}", text(&out));
}
