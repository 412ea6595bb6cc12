//! End to end through the built `mfactl` binary, with codes from `oathtool`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mfa_e2e::{
    Site, avoid_step_boundary, bin, code_of, fresh_key, oathtool, text, totp, unix_now, wrong_code,
};

fn auth(site: &Site, user: &str, ip: &str, code: &str) -> (i32, String) {
    let o = site.mfactl(&["auth", user, "--ip", ip, "--code", code]);
    (code_of(&o), text(&o))
}

#[test]
fn oathtool_codes_window_and_replay() {
    let site = Site::new("");
    avoid_step_boundary(4);
    let t = unix_now();
    // One fresh user and key per case, so no case waits for the next step.
    for (offset, accepted) in [
        (0, true),
        (-30, true),
        (30, true),
        (-90, false),
        (90, false),
    ] {
        let key = fresh_key();
        let user = format!("u{}", offset + 100);
        site.enroll(&user, &key);
        let code = oathtool(&key, t + offset);
        let (rc, out) = auth(&site, &user, "192.0.2.10", &code);
        assert_eq!(rc == 0, accepted, "offset {offset}s: {out}");
        if accepted {
            assert!(out.starts_with("allow valid_code"), "{out}");
            let (rc, out) = auth(&site, &user, "192.0.2.10", &code);
            assert_eq!(rc, 1, "replay of offset {offset}s accepted: {out}");
            assert!(out.starts_with("deny replayed_code"), "{out}");
        } else {
            assert!(out.starts_with("deny wrong_code"), "{out}");
        }
    }
    // After a later step is accepted, an earlier (never used) step is a replay too.
    let key = fresh_key();
    site.enroll("later", &key);
    assert_eq!(
        auth(&site, "later", "192.0.2.10", &oathtool(&key, t + 30)).0,
        0
    );
    let (rc, out) = auth(&site, "later", "192.0.2.10", &oathtool(&key, t));
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("replayed_code"), "{out}");
    // Wrong codes are refused and never echoed.
    let bad = wrong_code(&key);
    let (rc, out) = auth(&site, "later", "192.0.2.10", &bad);
    assert_eq!(rc, 1);
    assert!(!out.contains(&bad), "a code was printed: {out}");
}

#[test]
fn sixteen_concurrent_processes_one_code_exactly_one_wins() {
    let site = Site::new("");
    let key = fresh_key();
    site.enroll("racer", &key);
    avoid_step_boundary(5);
    let code = totp(&key, 0);
    let children: Vec<_> = (0..16)
        .map(|_| {
            Command::new(bin("mfactl"))
                .arg("--config")
                .arg(&site.config)
                .args(["auth", "racer", "--ip", "192.0.2.20", "--code", &code])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners = outs.iter().filter(|o| o.status.success()).count();
    let replays = outs
        .iter()
        .filter(|o| text(o).starts_with("deny replayed_code"))
        .count();
    assert_eq!(
        winners,
        1,
        "{:#?}",
        outs.iter().map(text).collect::<Vec<_>>()
    );
    assert_eq!(
        replays,
        15,
        "{:#?}",
        outs.iter().map(text).collect::<Vec<_>>()
    );
}

#[test]
fn trusted_networks_ipv4_ipv6_and_host_names() {
    let site = Site::new("");
    let key = fresh_key();
    site.enroll("tina", &key);
    for ip in ["10.20.30.40", "2001:db8:10::7", "::ffff:10.1.1.1"] {
        let o = site.mfactl(&["auth", "tina", "--ip", ip]);
        assert_eq!(code_of(&o), 0, "{ip}: {}", text(&o));
        assert!(
            text(&o).starts_with("allow trusted_network"),
            "{}",
            text(&o)
        );
    }
    // Names that look like trusted addresses are never resolved nor trusted: `--ip` takes
    // an address, so a name is a usage error (exit 2) that decides and records nothing.
    for name in [
        "10.20.30.40.example.com",
        "localhost",
        "10.1.1.1.nip.io",
        "",
    ] {
        let o = site.mfactl(&["auth", "tina", "--ip", name]);
        assert_eq!(code_of(&o), 2, "{name:?} was taken: {}", text(&o));
        assert!(!text(&o).contains("allow"), "{}", text(&o));
        assert!(text(&o).contains("--ip"), "{}", text(&o));
    }
    let o = site.mfactl(&["trusted", "test", "10.1.1.1.nip.io"]);
    assert_eq!(code_of(&o), 1);
    assert_eq!(
        code_of(&site.mfactl(&["trusted", "test", "2001:db8:10::1"])),
        0
    );
    assert_eq!(
        code_of(&site.mfactl(&["trusted", "test", "2001:db8:11::1"])),
        1
    );
}

#[test]
fn trusted_add_keeps_comments_and_refuses_bad_input_unchanged() {
    let site = Site::new("");
    let o = site.mfactl(&["trusted", "add", "192.168.50.0/24"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let after = std::fs::read_to_string(&site.config).unwrap();
    assert!(
        after.contains("# test site") && after.contains("# office networks"),
        "{after}"
    );
    assert!(after.contains("\"192.168.50.0/24\""), "{after}");
    assert_eq!(
        code_of(&site.mfactl(&["trusted", "test", "192.168.50.9"])),
        0
    );

    let before = std::fs::read(&site.config).unwrap();
    for bad in [
        "10.0.0.1/8",
        "300.1.1.1/24",
        "example.com",
        "10.0.0.0/8\"]\nexempt_users = [\"root",
        "10.9.0.0/16\n[store]\npath = \"/tmp/evil.db\"",
        "",
        "10.0.0.0/8",
    ] {
        let o = site.mfactl(&["trusted", "add", bad]);
        assert_eq!(code_of(&o), 2, "{bad:?} accepted: {}", text(&o));
        assert_eq!(
            std::fs::read(&site.config).unwrap(),
            before,
            "{bad:?} changed the file"
        );
    }
    let o = site.mfactl(&["trusted", "remove", "172.16.0.0/12"]);
    assert_eq!(code_of(&o), 2);
    assert_eq!(std::fs::read(&site.config).unwrap(), before);
    let o = site.mfactl(&["trusted", "remove", "192.168.50.0/24"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(
        std::fs::read_to_string(&site.config)
            .unwrap()
            .contains("# office networks")
    );
}

#[test]
fn init_creates_a_private_empty_store_once() {
    use std::os::unix::fs::MetadataExt;
    let site = Site::with_config("[store]\npath = \"state/mfa.db\"\n");
    // Before init, commands that need an existing store say so instead of creating one.
    let o = site.mfactl(&["report"]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("does not exist"), "{}", text(&o));
    let o = site.mfactl(&["init"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let db = site.path().join("state/mfa.db");
    assert_eq!(std::fs::metadata(&db).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(db.parent().unwrap()).unwrap().mode() & 0o777,
        0o700
    );
    let o = site.mfactl(&["init"]);
    assert!(text(&o).contains("exists already"), "{}", text(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&site.mfactl(&["report", "--format", "json"]).stdout).unwrap();
    assert_eq!(v["totals"]["users"], 0);
}

#[test]
fn config_check_names_key_and_line() {
    let site = Site::with_config(
        "[store]\npath = \"x.db\"\n\n[lockout]\nmax_failures = 5\nwindow = \"5 fortnights\"\n",
    );
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("mfa.toml:6: lockout.window"), "{out}");

    let site = Site::with_config(
        "[radius]\nmode = \"append\"\nfirst_factor = \"none\"\n\n[policy]\ntrusted_networks = [\"10.0.0.1/8\"]\n",
    );
    let out = text(&site.mfactl(&["config", "check"]));
    assert!(
        out.contains("mfa.toml:6: policy.trusted_networks[0]"),
        "{out}"
    );
    assert!(out.contains("did you mean 10.0.0.0/8"), "{out}");

    let site = Site::with_config("[radius]\nmode = \"append\"\nfirst_factor = \"none\"\n");
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&o), 2);
    assert!(
        text(&o).contains("mfa.toml:3: radius.first_factor"),
        "{}",
        text(&o)
    );

    let site = Site::new("");
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
}

#[test]
fn report_csv_and_json_list_enrolled_and_not_yet_enrolled() {
    let site = Site::new("grace_days = 14\n");
    for u in ["ann", "ben", "cat"] {
        site.enroll(u, &fresh_key());
    }
    // Two users appear at login without being enrolled (in grace); the system does not know
    // the names, so the administrator insists.
    for u in ["dan", "eve"] {
        assert_eq!(
            code_of(&site.mfactl(&["auth", u, "--ip", "192.0.2.30", "--force"])),
            0
        );
    }
    let o = site.mfactl(&["report", "--format", "json"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["totals"]["users"], 5);
    assert_eq!(v["totals"]["enrolled"], 3);
    assert_eq!(v["totals"]["enrolled_percent"], 60.0);
    assert_eq!(v["totals"]["in_grace"], 2);
    let users = v["users"].as_array().unwrap();
    let enrolled: Vec<_> = users
        .iter()
        .filter(|u| u["enrolled"] == true)
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    assert_eq!(enrolled, ["ann", "ben", "cat"]);
    let dan = users.iter().find(|u| u["user"] == "dan").unwrap();
    assert_eq!(dan["login_count"], 1);
    assert_eq!(dan["last_ip"], "192.0.2.30");
    assert!(
        dan["status"]
            .as_str()
            .unwrap()
            .starts_with("grace (14 days left)")
    );
    for key in [
        "mfa_created",
        "mfa_changed",
        "last_login",
        "login_count",
        "failures",
        "locked_until",
    ] {
        assert!(dan.get(key).is_some(), "missing {key}");
    }

    let o = site.mfactl(&["report", "--format", "csv"]);
    let csv = String::from_utf8(o.stdout).unwrap();
    let mut lines = csv.lines();
    let head: Vec<_> = lines.next().unwrap().split(',').collect();
    assert_eq!(&head[..3], ["user", "enrolled", "status"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.len() == head.len()), "{csv}");
    assert_eq!(rows.iter().filter(|r| r[1] == "true").count(), 3);
    assert_eq!(rows.iter().filter(|r| r[1] == "false").count(), 2);

    let table = text(&site.mfactl(&["report"]));
    assert!(table.contains("Enrolled:        3 of 5 (60%)"), "{table}");
}

#[test]
fn import_is_all_or_nothing_and_names_the_bad_line() {
    let site = Site::new("");
    let k1 = fresh_key();
    let good = site.path().join("good.csv");
    std::fs::write(
        &good,
        format!(
            "user,secret\n# migrated from the old system\nimp1,{k1}\nimp2,{}\n",
            fresh_key()
        ),
    )
    .unwrap();
    let bad = site.path().join("bad.csv");
    std::fs::write(&bad, format!("imp3,{}\nimp4,NOT-BASE32!\n", fresh_key())).unwrap();
    let o = site.mfactl(&["import", bad.to_str().unwrap()]);
    assert_eq!(code_of(&o), 2);
    assert!(
        text(&o).contains("bad.csv:2: secret of imp4"),
        "{}",
        text(&o)
    );
    let o = site.mfactl(&["import", good.to_str().unwrap()]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    // imp3 from the refused file must not exist.
    let v: serde_json::Value =
        serde_json::from_slice(&site.mfactl(&["report", "--format", "json"]).stdout).unwrap();
    let names: Vec<_> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["imp1", "imp2"]);
    // The imported key works with oathtool codes.
    avoid_step_boundary(3);
    assert_eq!(auth(&site, "imp1", "192.0.2.1", &totp(&k1, 0)).0, 0);

    // google-authenticator file: key, options, scratch codes that become backup codes.
    let ga = site.path().join(".google_authenticator");
    let gk = fresh_key();
    std::fs::write(&ga, format!("{gk}\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n31415926\n27182818\n")).unwrap();
    let o = site.mfactl(&["import", "--user", "gauser", ga.to_str().unwrap()]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert_eq!(auth(&site, "gauser", "192.0.2.1", &totp(&gk, 0)).0, 0);
    assert_eq!(
        auth(&site, "gauser", "192.0.2.1", "31415926").0,
        0,
        "scratch code works"
    );
    assert_eq!(
        auth(&site, "gauser", "192.0.2.1", "31415926").0,
        1,
        "only once"
    );
}

#[test]
fn enroll_confirmation_unlink_unlock() {
    let site = Site::new("");
    let key = fresh_key();
    avoid_step_boundary(3);
    // Confirmation read from standard input: a wrong code, then the right one.
    let mut child = Command::new(bin("mfactl"))
        .arg("--config")
        .arg(&site.config)
        .args(["enroll", "conf", "--secret", &key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = totp(&key, 0);
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}\n{code}", wrong_code(&key)).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains("otpauth://totp/Test:conf?secret="),
        "{}",
        text(&o)
    );
    // The confirmation code was used: it cannot log in again.
    assert_eq!(auth(&site, "conf", "192.0.2.1", &code).0, 1);

    // No confirmation on stdin: not enrolled.
    let o = Command::new(bin("mfactl"))
        .arg("--config")
        .arg(&site.config)
        .args(["enroll", "noconf"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code_of(&o), 1, "{}", text(&o));
    let o = site.mfactl(&[
        "auth",
        "noconf",
        "--ip",
        "192.0.2.1",
        "--code",
        "123456",
        "--force",
    ]);
    assert!(text(&o).contains("not_enrolled"), "{}", text(&o));

    // Lockout after five wrong codes (from five addresses: one address alone only locks
    // itself out), cleared by unlock.
    let bad = wrong_code(&key);
    for i in 0..5 {
        auth(&site, "conf", &format!("192.0.2.{}", 60 + i), &bad);
    }
    let (rc, out) = auth(&site, "conf", "192.0.2.1", &totp(&key, 1));
    assert_eq!(rc, 1);
    assert!(out.starts_with("deny locked"), "{out}");
    assert_eq!(code_of(&site.mfactl(&["unlock", "conf"])), 0);
    assert_eq!(auth(&site, "conf", "192.0.2.1", &totp(&key, 1)).0, 0);

    // Unlink removes the key; the next login is not enrolled (no grace configured).
    assert_eq!(code_of(&site.mfactl(&["unlink", "conf"])), 0);
    let o = site.mfactl(&["auth", "conf", "--ip", "192.0.2.1"]);
    assert!(text(&o).contains("not_enrolled"), "{}", text(&o));

    // PNG and SVG QR files are written private.
    let png = site.path().join("q.png");
    let svg = site.path().join("q.svg");
    let o = site.mfactl(&[
        "enroll",
        "qr",
        "--no-confirm",
        "--qr-png",
        png.to_str().unwrap(),
        "--qr-svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&png).unwrap().mode() & 0o777, 0o600);
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
}

#[test]
fn kill_9_mid_writes_loses_nothing_acknowledged() {
    let site = Site::new("");
    let mut acked = Vec::new();
    for round in 0..4 {
        let mut child = Command::new(bin("store-writer"))
            .arg(&site.config)
            .arg(format!("r{round}u"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.strip_prefix("ack ").map(String::from))
                .collect::<Vec<_>>()
        });
        // Let it write for a while (a different moment each round), then SIGKILL.
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(300 + 170 * round));
        let pid = child.id() as libc::pid_t;
        let rc = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(rc.success());
        child.wait().unwrap();
        let got = reader.join().unwrap();
        assert!(
            !got.is_empty(),
            "writer acknowledged nothing in {:?}",
            start.elapsed()
        );
        acked.extend(got);
    }
    let store = mfa_store_sqlite::SqliteStore::open(
        &site.db(),
        mfa_core::OpenMode::Existing,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    use mfa_core::Store;
    let users: std::collections::HashSet<String> = store
        .users()
        .unwrap()
        .into_iter()
        .filter(|u| u.enrolled())
        .map(|u| u.name.to_string())
        .collect();
    let missing: Vec<_> = acked.iter().filter(|u| !users.contains(*u)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged enrolments lost: {missing:?}",
        missing.len()
    );
    assert!(
        acked.len() >= 10,
        "only {} writes acknowledged",
        acked.len()
    );
}

#[test]
fn report_shows_each_users_open_or_expired_invite_and_counts_them() {
    mfa_e2e::require_tool("sqlite3");
    let site = Site::new("\n[portal]\npublic_url = \"https://mfa.example.com\"\n");
    assert_eq!(code_of(&site.mfactl(&["init"])), 0);
    let sql = |q: &str| {
        let o = Command::new("sqlite3")
            .arg(site.db())
            .arg(q)
            .output()
            .unwrap();
        assert!(o.status.success(), "sqlite3: {}", text(&o));
    };
    let invite = |user: &str| {
        let o = site.mfactl(&["invite", user, "--valid", "2d"]);
        assert_eq!(code_of(&o), 0, "{}", text(&o));
    };
    // alice: enrolled, no invite. bob: invited, never seen (no record). carol: a record,
    // her invite expired unused. dave: an expired invite and an open one.
    site.enroll("alice", &fresh_key());
    invite("bob");
    site.enroll("carol", &fresh_key());
    assert_eq!(code_of(&site.mfactl(&["unlink", "carol"])), 0);
    invite("carol");
    sql("UPDATE invites SET created = 100, expires = 200 WHERE user = 'carol'");
    site.enroll("dave", &fresh_key());
    assert_eq!(code_of(&site.mfactl(&["unlink", "dave"])), 0);
    invite("dave");
    sql("UPDATE invites SET created = 100, expires = 300 WHERE user = 'dave'");
    invite("dave");

    let o = site.mfactl(&["report", "--format", "json"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let user = |n: &str| {
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["user"] == n)
            .unwrap_or_else(|| panic!("{n} not in the report: {v}"))
            .clone()
    };
    assert_eq!(user("alice")["invite"], serde_json::Value::Null);
    let bob = user("bob");
    assert_eq!(bob["status"], "invited");
    assert_eq!(bob["invite"]["state"], "open");
    let expires = bob["invite"]["expires"].as_str().unwrap().to_string();
    let in_two_days = mfa_config::format_utc(unix_now() + 2 * 86_400);
    assert_eq!(&expires[..13], &in_two_days[..13], "{expires}");
    assert_eq!(user("carol")["invite"]["state"], "expired");
    assert_eq!(
        user("carol")["invite"]["expires"],
        mfa_config::format_utc(200)
    );
    assert_eq!(user("dave")["invite"]["state"], "open");
    let totals = &v["totals"];
    assert_eq!(totals["users"], 3, "bob has no record: {totals}");
    assert_eq!(totals["invites_open"], 2, "{totals}");
    assert_eq!(totals["invites_expired"], 2, "{totals}");
    assert_eq!(totals["invited_not_seen"], 1, "{totals}");

    let table = text(&site.mfactl(&["report"]));
    let line = |n: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{n} ")))
            .unwrap_or_else(|| panic!("no row for {n}: {table}"))
            .to_string()
    };
    assert!(table.lines().next().unwrap().ends_with("INVITE"), "{table}");
    assert!(line("alice").ends_with(" -"), "{table}");
    assert!(
        line("bob").contains("invited")
            && line("bob").contains(&format!("open until {}", &expires[..10])),
        "{table}"
    );
    assert!(
        line("carol").ends_with("expired 1970-01-01 00:03"),
        "{table}"
    );
    assert!(line("dave").contains("open until"), "{table}");
    assert!(
        table.contains("Invites:         2 open, 2 expired unused (1 for users not seen yet"),
        "{table}"
    );
    let csv = text(&site.mfactl(&["report", "--format", "csv"]));
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",invite,invite_expires"),
        "{csv}"
    );
    assert!(csv.contains(",expired,1970-01-01T00:03:20Z"), "{csv}");
}

/// Issue 21: editing the trusted networks says who sees the change when: the PAM module at
/// the next login, the running daemons only after a reload or restart.
#[test]
fn trusted_add_and_remove_say_that_running_daemons_need_a_reload() {
    let site = Site::new("");
    for args in [
        ["trusted", "add", "192.168.60.0/24"],
        ["trusted", "remove", "192.168.60.0/24"],
    ] {
        let o = site.mfactl(&args);
        assert_eq!(code_of(&o), 0, "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("systemctl reload mfa-radiusd")
                && err.contains("systemctl restart mfa-portal")
                && err.contains("next login"),
            "{args:?}: {}",
            text(&o)
        );
    }
}

fn portal_site() -> Site {
    let site = Site::new("\n[portal]\npublic_url = \"https://mfa.example.com\"\n");
    assert_eq!(code_of(&site.mfactl(&["init"])), 0);
    site
}

/// Issue 21: `invite --format json` (and csv) is honoured, for one user and for
/// `--unenrolled`, instead of the table.
#[test]
fn invite_honours_the_output_format() {
    let site = portal_site();
    // Two stored users who are not enrolled (records from a login), one who is.
    for u in ["amy", "ben"] {
        site.enroll(u, &fresh_key());
        assert_eq!(code_of(&site.mfactl(&["unlink", u])), 0);
    }
    site.enroll("cat", &fresh_key());

    let o = site.mfactl(&["invite", "--unenrolled", "--format", "json"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&o)));
    let rows = v.as_array().unwrap();
    let users: Vec<&str> = rows.iter().map(|r| r["user"].as_str().unwrap()).collect();
    assert_eq!(users, ["amy", "ben"], "{v}");
    for r in rows {
        assert!(
            r["link"]
                .as_str()
                .unwrap()
                .starts_with("https://mfa.example.com/enrol/"),
            "{r}"
        );
        assert!(r["expires"].as_str().unwrap().ends_with('Z'), "{r}");
    }

    let o = site.mfactl(&["invite", "dan", "--format", "json"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["user"], "dan", "{v}");
    let o = site.mfactl(&["invite", "eve", "--format", "csv"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("user,link,expires"), "{out}");
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("eve,https://mfa.example.com/enrol/"),
        "{out}"
    );
    // The table is unchanged: the link first.
    let o = site.mfactl(&["invite", "fay"]);
    assert!(
        String::from_utf8(o.stdout)
            .unwrap()
            .starts_with("https://mfa.example.com/enrol/")
    );
}

/// Issue 21: an invite for a user who is enrolled already is refused (the link would only say
/// "already linked"), and nothing is issued; `--replace` removes the key, says so, and the
/// link is then one that enrols.
#[test]
fn invite_refuses_an_enrolled_user_unless_replace() {
    let site = portal_site();
    let key = fresh_key();
    site.enroll("carol", &key);
    let o = site.mfactl(&["invite", "carol"]);
    assert_eq!(code_of(&o), 1, "{}", text(&o));
    assert!(
        text(&o).contains("\"carol\" is already enrolled") && text(&o).contains("--replace"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("/enrol/"), "{}", text(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&site.mfactl(&["report", "--format", "json"]).stdout).unwrap();
    assert_eq!(v["totals"]["invites_open"], 0, "nothing issued: {v}");
    // The key still works.
    avoid_step_boundary(3);
    let (code, out) = auth(&site, "carol", "192.0.2.1", &totp(&key, 0));
    assert_eq!(code, 0, "{out}");

    let o = site.mfactl(&["invite", "carol", "--replace"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("key of carol is removed"),
        "{}",
        text(&o)
    );
    assert!(text(&o).starts_with("https://mfa.example.com/enrol/"));
    let v: serde_json::Value =
        serde_json::from_slice(&site.mfactl(&["report", "--format", "json"]).stdout).unwrap();
    assert_eq!(v["totals"]["invites_open"], 1, "{v}");
    assert_eq!(v["totals"]["enrolled"], 0, "{v}");
}

/// Issue 21: `unlocks` and `unlocks revoke` agree: an unlock the store still holds but that no
/// longer lets anyone in (here: `[policy] remember` is 0, and one made before the user's key
/// changed) is neither listed nor counted as revoked.
#[test]
fn unlocks_list_and_revoke_agree() {
    mfa_e2e::require_tool("sqlite3");
    let site = Site::new("remember = \"8h\"\n");
    site.enroll("uma", &fresh_key());
    // An unlock holds only when made after the key was (a second later at the least).
    std::thread::sleep(Duration::from_millis(1100));
    let now = unix_now();
    let sql = |q: &str| {
        let o = Command::new("sqlite3")
            .arg(site.db())
            .arg(q)
            .output()
            .unwrap();
        assert!(o.status.success(), "sqlite3: {}", text(&o));
    };
    let insert = |ip: &str, created: i64| {
        sql(&format!(
            "INSERT INTO unlocks (user, ip, created, expires) VALUES ('uma', '{ip}', {created}, {})",
            created + 8 * 3600
        ))
    };
    insert("198.51.100.1", now);
    let listed = |site: &Site| text(&site.mfactl(&["unlocks"]));
    assert!(listed(&site).contains("198.51.100.1"), "{}", listed(&site));

    // remember = 0s: nothing holds, nothing is listed, and revoke says it revoked nothing.
    let off = Site::with_config(
        &std::fs::read_to_string(&site.config)
            .unwrap()
            .replace("remember = \"8h\"", "remember = \"0s\""),
    );
    for f in ["mfa.db", "mfa.key"] {
        std::fs::copy(site.path().join(f), off.path().join(f)).unwrap();
    }
    assert!(
        listed(&off).contains("No remembered addresses."),
        "{}",
        listed(&off)
    );
    let o = off.mfactl(&["unlocks", "revoke", "uma"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains("uma had no remembered address in force; nothing to revoke"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("Revoked 1"), "{}", text(&o));

    // An unlock from before the key was replaced: not listed, not counted; the one after is.
    let key = fresh_key();
    std::thread::sleep(Duration::from_millis(1100));
    let o = site.mfactl(&[
        "enroll",
        "uma",
        "--secret",
        &key,
        "--no-confirm",
        "--replace",
    ]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    std::thread::sleep(Duration::from_millis(1100));
    insert("198.51.100.2", unix_now());
    let list = listed(&site);
    assert!(!list.contains("198.51.100.1"), "{list}");
    assert!(list.contains("198.51.100.2"), "{list}");
    let o = site.mfactl(&["unlocks", "revoke", "uma"]);
    assert!(
        text(&o).contains("Revoked 1 remembered address(es) of uma"),
        "{}",
        text(&o)
    );
    assert!(listed(&site).contains("No remembered addresses."));
}

/// Issue 21: `config check` reports every type and format error in one run, each with file,
/// line and key (it took three runs for these three).
#[test]
fn config_check_reports_every_type_and_format_error_in_one_run() {
    let site = Site::with_config(
        "[store]\npath = \"x.db\"\n\n[lockout]\nwindow = \"5 minutes\"\n\n[policy]\ntrusted_networks = [\"192.168.1.1/24\"]\n\n[radius]\nmode = \"codeonly\"\n",
    );
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    let out = text(&o);
    for want in [
        "mfa.toml:5: lockout.window: invalid duration \"5 minutes\"",
        "mfa.toml:8: policy.trusted_networks[0]: invalid network \"192.168.1.1/24\": host bits are set",
        "mfa.toml:11: radius.mode: unknown variant `codeonly`",
        "3 problem(s) in",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
}

/// `mfactl users list`: the store's search by name (the console's), a page at a time in
/// byte order, the next page named; the prefix made canonical as a login's name is.
#[test]
fn users_list_pages_through_the_names_with_a_prefix() {
    let site = Site::new("[users]\ncase = \"fold\"\n");
    for n in ["alfa", "alma", "alpha", "bravo", "al"] {
        let o = site.mfactl(&["temp-access", n, "--force"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let names = |o: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with("More:"))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    };
    let o = site.mfactl(&["users", "list", "AL", "--limit", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(names(&o), ["al", "alfa"], "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("More: mfactl users list 'al' --after 'alfa'"),
        "{out}"
    );
    assert!(out.contains("temporary access"), "the status column: {out}");
    let o = site.mfactl(&["users", "list", "al", "--after", "alfa", "--limit", "2"]);
    assert_eq!(names(&o), ["alma", "alpha"], "{}", text(&o));
    let o = site.mfactl(&["users", "list", "al", "--after", "alpha"]);
    assert!(names(&o).is_empty(), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("More:"));
    let o = site.mfactl(&["users", "list"]);
    assert_eq!(names(&o), ["al", "alfa", "alma", "alpha", "bravo"]);
    let o = site.mfactl(&["users", "list", "a b"]);
    assert_eq!(code_of(&o), 2, "not the start of a name: {}", text(&o));
}

/// `mfactl exempt`: the exemptions edited like the trusted networks (comments kept, the
/// result checked, nothing written on a refusal).
#[test]
fn exempt_add_and_remove_keep_comments_and_refuse_bad_names() {
    let site = Site::new("exempt_users = [\"backup\"]  # the backup job\n");
    let o = site.mfactl(&["exempt", "add", "scanner"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("systemctl reload mfa-radiusd"),
        "{}",
        text(&o)
    );
    let o = site.mfactl(&["exempt", "add", "--group", "svc-backup"]);
    assert!(o.status.success(), "{}", text(&o));
    let list = text(&site.mfactl(&["exempt", "list"]));
    assert_eq!(
        list.trim(),
        "user  backup\nuser  scanner\ngroup svc-backup",
        "{list}"
    );
    let file = std::fs::read_to_string(&site.config).unwrap();
    assert!(file.contains("# the backup job"), "{file}");
    for bad in [
        vec!["exempt", "add", "a b"],
        vec!["exempt", "add", "scanner"],
        vec!["exempt", "remove", "nobody"],
        vec!["exempt", "remove", "--group", "backup"],
    ] {
        let o = site.mfactl(&bad);
        assert_eq!(code_of(&o), 2, "{bad:?}: {}", text(&o));
        assert_eq!(
            std::fs::read_to_string(&site.config).unwrap(),
            file,
            "{bad:?}"
        );
    }
    let o = site.mfactl(&["exempt", "remove", "backup"]);
    assert!(o.status.success(), "{}", text(&o));
    let list = text(&site.mfactl(&["exempt", "list"]));
    assert_eq!(list.trim(), "user  scanner\ngroup svc-backup", "{list}");
}

/// Output into a pipe whose reader has gone (`mfactl ... | head -1`): mfactl ends as a tool
/// killed by SIGPIPE does, status 141, without the panic `println!` gives.
#[test]
fn a_closed_pipe_ends_mfactl_quietly() {
    let site = Site::new("");
    for args in [
        vec!["enroll", "root", "--no-confirm"],
        vec!["trusted", "list"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(bin("mfactl"))
            .arg("--config")
            .arg(&site.config)
            .args(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(o.status.code(), Some(141), "{args:?}: {err}");
    }
}
