//! Issue 5 through `mfactl`: temporary access, backup codes, go-live and grace, the report's
//! totals, and that no code ever reaches the audit trail, the store file or the output.

use mfa_e2e::{Site, avoid_step_boundary, code_of, fresh_key, printed_codes, text, totp, unix_now};

fn auth(site: &Site, user: &str, code: &str) -> (i32, String) {
    let o = site.mfactl(&["auth", user, "--ip", "192.0.2.40", "--code", code]);
    (code_of(&o), text(&o))
}

/// Every file the site's store is made of, with its bytes: the database, which must be
/// there, and whatever SQLite keeps beside it (`mfa.db-wal`, `-shm`, `-journal`), found by
/// listing the directory rather than by a list of names that may be missing.
fn store_files(site: &Site) -> Vec<(String, Vec<u8>)> {
    let db = site.db();
    assert!(db.is_file(), "no store at {}", db.display());
    let stem = db.file_name().unwrap().to_str().unwrap().to_string();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(site.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(&stem))
        .map(|n| {
            let bytes = std::fs::read(site.path().join(&n)).unwrap();
            (n, bytes)
        })
        .collect();
    files.sort();
    files
}

fn holds(bytes: &[u8], s: &str) -> bool {
    bytes.windows(s.len()).any(|w| w == s.as_bytes())
}

/// `code` is in neither the audit log nor any of the store's files. Neither check can pass
/// for want of something to look at: the log must show `written` (the audit reason of the
/// test's decisions), and the store's files must hold `written` and `user` in plain text,
/// so the files read are the ones the decisions went to (in WAL mode most of the data sits
/// in `mfa.db-wal`, not in `mfa.db`).
fn assert_never_stored_or_logged(site: &Site, user: &str, written: &str, code: &str) {
    let o = site.mfactl(&["log", "--format", "csv"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let log = text(&o);
    assert!(
        log.contains(written),
        "{written} not in the audit log:\n{log}"
    );
    assert!(!log.contains(code), "code in the audit log:\n{log}");
    let files = store_files(site);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for marker in [user, written] {
        assert!(
            files.iter().any(|(_, b)| holds(b, marker)),
            "{marker:?} is in none of the store's files {names:?}: the check would look in the wrong place"
        );
    }
    for (f, bytes) in &files {
        assert!(!holds(bytes, code), "code stored in plain text in {f}");
    }
}

#[test]
fn temporary_access_works_once_and_not_after_expiry() {
    let site = Site::new("");
    // A user who lost the phone: unlinked, past any grace (none configured).
    site.enroll("lost", &fresh_key());
    assert_eq!(code_of(&site.mfactl(&["unlink", "lost"])), 0);
    assert_eq!(auth(&site, "lost", "").0, 1);

    let o = site.mfactl(&["temp-access", "lost", "--valid", "1h"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let code = printed_codes(&text(&o)).pop().expect("a code is printed");
    let (rc, out) = auth(&site, "lost", &code);
    assert_eq!(rc, 0, "{out}");
    assert!(out.starts_with("allow temporary_access"), "{out}");
    assert!(!out.contains(&code), "{out}");
    let (rc, out) = auth(&site, "lost", &code);
    assert_eq!(rc, 1, "second use accepted: {out}");

    // Expiry: a code valid for 1 second no longer works 2 seconds later.
    let o = site.mfactl(&["temp-access", "lost", "--valid", "1s", "--uses", "3"]);
    let short = printed_codes(&text(&o)).pop().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (rc, out) = auth(&site, "lost", &short);
    assert_eq!(rc, 1, "expired code accepted: {out}");

    // Revocation.
    let o = site.mfactl(&["temp-access", "lost", "--valid", "1h"]);
    let revoked = printed_codes(&text(&o)).pop().unwrap();
    assert_eq!(
        code_of(&site.mfactl(&["temp-access", "lost", "--revoke"])),
        0
    );
    assert_eq!(auth(&site, "lost", &revoked).0, 1);

    for c in [&code, &short, &revoked] {
        assert_never_stored_or_logged(&site, "lost", "temporary_access", c);
    }
    let log = text(&site.mfactl(&["log", "lost"]));
    assert!(log.contains("temporary_access"), "{log}");
}

#[test]
fn backup_codes_work_once_and_regeneration_voids_the_old_set() {
    let site = Site::new("");
    let key = fresh_key();
    site.enroll("paper", &key);
    let o = site.mfactl(&["backup-codes", "paper", "--count", "5"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let first = printed_codes(&text(&o));
    assert_eq!(first.len(), 5);
    let (rc, out) = auth(&site, "paper", &first[0]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.starts_with("allow backup_code"), "{out}");
    assert_eq!(
        auth(&site, "paper", &first[0]).0,
        1,
        "backup code used twice"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&site.mfactl(&["report", "--format", "json"]).stdout).unwrap();
    assert_eq!(v["users"][0]["backup_codes_left"], 4);

    let second = printed_codes(&text(&site.mfactl(&[
        "backup-codes",
        "paper",
        "--count",
        "5",
    ])));
    assert_eq!(auth(&site, "paper", &first[1]).0, 1, "old set still works");
    assert_eq!(auth(&site, "paper", &second[1]).0, 0);
    // A TOTP code still works alongside.
    avoid_step_boundary(3);
    assert_eq!(auth(&site, "paper", &totp(&key, 0)).0, 0);
    for c in first.iter().chain(&second) {
        assert_never_stored_or_logged(&site, "paper", "backup_code", c);
    }
    // Backup codes are for enrolled users only.
    assert_eq!(code_of(&site.mfactl(&["backup-codes", "nobody"])), 1);
}

#[test]
fn go_live_grace_and_the_report_totals() {
    // Go-live 3 days from now, 14 days' grace: a newcomer is let in and told the days left.
    let go_live = unix_now() + 3 * 86_400;
    let when = mfa_config::format_utc(go_live);
    let site = Site::new(&format!("enforce_from = {when}\ngrace_days = 14\n"));
    for u in ["ann", "ben", "cat"] {
        site.enroll(u, &fresh_key());
    }
    // Names the system does not know: the administrator insists (--force), as a first login
    // of a directory user would give them a record.
    for u in ["dan", "eve"] {
        let o = site.mfactl(&["auth", u, "--ip", "192.0.2.9", "--force"]);
        assert_eq!(code_of(&o), 0, "{}", text(&o));
        assert!(
            text(&o).contains("MFA becomes required for this account in 17 day(s)"),
            "{}",
            text(&o)
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&site.mfactl(&["report", "--format", "json"]).stdout).unwrap();
    let t = &v["totals"];
    assert_eq!(
        (
            t["users"].as_u64(),
            t["enrolled"].as_u64(),
            t["enrolled_percent"].as_f64()
        ),
        (Some(5), Some(3), Some(60.0))
    );
    assert_eq!(t["in_grace"], 2);
    assert_eq!(t["overdue"], 0);
    assert_eq!(t["days_to_go_live"], 3);
    assert_eq!(t["go_live"], when.as_str());

    let table = text(&site.mfactl(&["report"]));
    assert!(table.contains("Enrolled:        3 of 5 (60%)"), "{table}");
    assert!(
        table.contains(&format!("Go-live:         {when} (in 3 days)")),
        "{table}"
    );
    assert!(table.contains("In grace:        2"), "{table}");

    let csv = String::from_utf8(site.mfactl(&["report", "--format", "csv"]).stdout).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let enrolled = rows.iter().filter(|r| r[1] == "true").count();
    assert_eq!((enrolled, rows.len()), (3, 5), "{csv}");
    assert_eq!(
        rows.iter().filter(|r| r[2] == "before go-live").count(),
        2,
        "{csv}"
    );

    // The same site past the deadline: go-live 20 days ago and no grace left to give.
    let past = mfa_config::format_utc(unix_now() - 20 * 86_400);
    let text_cfg = std::fs::read_to_string(&site.config)
        .unwrap()
        .replace(&when, &past)
        .replace("grace_days = 14", "grace_days = 0");
    std::fs::write(&site.config, text_cfg).unwrap();
    for u in ["dan", "eve", "fay"] {
        let o = site.mfactl(&["auth", u, "--ip", "192.0.2.9", "--force"]);
        assert_eq!(code_of(&o), 1, "{}", text(&o));
        assert!(text(&o).starts_with("deny not_enrolled"), "{}", text(&o));
        assert!(
            text(&o).contains("Contact your administrator"),
            "{}",
            text(&o)
        );
    }
    // Enrolled users and trusted networks are unaffected.
    assert_eq!(
        code_of(&site.mfactl(&["auth", "dan", "--ip", "10.1.1.1"])),
        0
    );
    let v: serde_json::Value =
        serde_json::from_slice(&site.mfactl(&["report", "--format", "json"]).stdout).unwrap();
    assert_eq!(v["totals"]["overdue"], 3, "{v}");
    assert_eq!(v["totals"]["users"], 6, "{v}");
}

#[test]
fn go_live_never_and_the_go_live_command() {
    // Not scheduled: a newcomer is let in and told MFA is not required yet, with no day
    // count; an enrolled user still needs the code.
    let site = Site::new("enforce_from = \"never\"   # not scheduled\ngrace_days = 14\n");
    let key = fresh_key();
    site.enroll("ann", &key);
    let newcomer = |site: &Site| {
        let o = site.mfactl(&["auth", "dan", "--ip", "192.0.2.9", "--force"]);
        assert_eq!(code_of(&o), 0, "{}", text(&o));
        text(&o)
    };
    let out = newcomer(&site);
    assert!(out.starts_with("allow before_go_live"), "{out}");
    assert!(
        out.contains("MFA is not required for this account yet"),
        "{out}"
    );
    assert!(!out.contains("day"), "{out}");
    let (code, out) = auth(&site, "ann", &mfa_e2e::wrong_code(&key));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("wrong_code"), "{out}");
    avoid_step_boundary(3);
    let (code, out) = auth(&site, "ann", &totp(&key, 0));
    assert_eq!(code, 0, "{out}");
    // The report: not set, no deadline.
    let table = text(&site.mfactl(&["report"]));
    assert!(
        table.contains("Go-live:         not set (roll-out not scheduled"),
        "{table}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&site.mfactl(&["report", "--format", "json"]).stdout).unwrap();
    assert_eq!(v["totals"]["go_live_state"], "never");
    assert!(v["totals"]["go_live"].is_null() && v["totals"]["days_to_go_live"].is_null());
    let dan = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == "dan")
        .unwrap();
    assert_eq!(dan["status"], "before go-live");
    assert!(dan["grace_deadline"].is_null(), "{dan}");
    let shown = text(&site.mfactl(&["go-live"]));
    assert!(
        shown.starts_with("go-live: not set (roll-out not scheduled"),
        "{shown}"
    );
    assert!(
        text(&site.mfactl(&["config", "check"])).contains("  go-live: not set"),
        "config check shows it"
    );

    // Set a date: written in place, comments kept; the newcomer now gets a day count.
    let date = &mfa_config::format_utc(unix_now() + 10 * 86_400)[..10];
    let o = site.mfactl(&["go-live", "set", date]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let cfg = std::fs::read_to_string(&site.config).unwrap();
    assert!(
        cfg.contains(&format!("enforce_from = {date}   # not scheduled\n")),
        "{cfg}"
    );
    assert!(cfg.contains("# office networks"), "{cfg}");
    let out = newcomer(&site);
    assert!(
        out.contains("MFA becomes required for this account in"),
        "{out}"
    );
    // Bad input: refused, naming the key, nothing written.
    for bad in ["soon", "2027-02-30", "12:00:00"] {
        let o = site.mfactl(&["go-live", "set", bad]);
        assert_eq!(code_of(&o), 2, "{bad}: {}", text(&o));
        assert!(
            text(&o).contains("policy.enforce_from"),
            "{bad}: {}",
            text(&o)
        );
        assert_eq!(std::fs::read_to_string(&site.config).unwrap(), cfg, "{bad}");
    }
    // Clear it: back to not scheduled.
    let o = site.mfactl(&["go-live", "clear"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(
        std::fs::read_to_string(&site.config)
            .unwrap()
            .contains("enforce_from = \"never\"   # not scheduled\n")
    );
    assert!(newcomer(&site).contains("MFA is not required for this account yet"));

    // A misspelt value in the file: the error names the file, the line and the key.
    let bad = Site::new("enforce_from = \"nevr\"\n");
    let o = bad.mfactl(&["config", "check"]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    let line = mfa_e2e::BASE_CONFIG.lines().count() + 1;
    assert!(
        text(&o).contains(&format!(
            "mfa.toml:{line}: policy.enforce_from: expected a date"
        )),
        "{}",
        text(&o)
    );
}

/// Issue 21: a go-live set in the past says so, and how many stored users who are not
/// enrolled it locks out now (and how many when their grace ends); one in the future does
/// not warn.
#[test]
fn go_live_in_the_past_warns_with_the_count_of_users_locked_out() {
    let site = Site::new("enforce_from = \"never\"\ngrace_days = 14\n");
    site.enroll("ann", &fresh_key());
    // Two users the store has seen long ago (their grace would have ended), one just now.
    for u in ["old1", "old2", "newbie"] {
        let o = site.mfactl(&["auth", u, "--ip", "192.0.2.9", "--force"]);
        assert_eq!(code_of(&o), 0, "{}", text(&o));
    }
    mfa_e2e::require_tool("sqlite3");
    let o = std::process::Command::new("sqlite3")
        .arg(site.db())
        .arg("UPDATE users SET first_seen = 1500000000 WHERE name IN ('old1', 'old2')")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));

    let o = site.mfactl(&["go-live", "set", "2020-01-01"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: the go-live 2020-01-01") && err.contains("has passed"),
        "{}",
        text(&o)
    );
    assert!(
        err.contains("3 stored user(s) are not enrolled: 2 of them are locked out from now on"),
        "{}",
        text(&o)
    );
    assert!(err.contains("1 more when their grace period ends"), "{err}");
    // Which is what a login now finds.
    let o = site.mfactl(&["auth", "old1", "--ip", "192.0.2.9"]);
    assert_eq!(code_of(&o), 1, "{}", text(&o));

    let date = &mfa_config::format_utc(unix_now() + 10 * 86_400)[..10];
    let o = site.mfactl(&["go-live", "set", date]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(!text(&o).contains("warning"), "{}", text(&o));
}
