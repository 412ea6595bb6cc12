//! One user however the name is spelled (`[users]`): `Alice`, `CONTOSO\alice` and
//! `alice@contoso.com` are the enrolled `alice` through the real libpam (pamtester), the
//! daemon (radclient, code-only mode) and `mfactl auth`; names in other domains are refused
//! and create no record; a store that already holds two names of one user is refused until
//! `mfactl users merge` (or remove) leaves one. Codes from oathtool. Runs as root (pamtester
//! writes /etc/pam.d).

mod pam_support;
mod radius_support;

use mfa_core::OpenMode;
use mfa_e2e::{Site, avoid_step_boundary, code_of, fresh_key, require_tool, text, totp, unique};
use pam_support::{PamResult, PamService, pamtester, pamtester_code, require_root};
use radius_support::{Rig, SECRET, UNTRUSTED_CSI, attrs, config_text, free_udp_port, spawn_daemon};

const USERS: &str = "\n[users]\ndomains = [\"CONTOSO\", \"contoso.com\"]\n";
const CLIENT: &str = "192.0.2.10";

/// A site with a 14-day grace period (so a second record of alice would be let in without a
/// code) and the two domains listed.
fn site() -> Site {
    Site::new(&format!("grace_days = 14\n{USERS}"))
}

/// The spellings that mean `user`, each with the code of its own step (-1, 0, +1: each later
/// than the one before, so none is a replay).
fn spellings(user: &str) -> [String; 3] {
    [
        user.to_uppercase(),
        format!("CONTOSO\\{user}"),
        format!("{user}@Contoso.COM"),
    ]
}

fn foreign(user: &str) -> [String; 2] {
    [format!("OTHER\\{user}"), format!("{user}@evil.example")]
}

/// The names of every record in the store.
fn records(config: &std::path::Path) -> Vec<String> {
    let core = mfa_store_open::core_from_config_file(config, OpenMode::Existing, "e2e").unwrap();
    let users = core.store().users().unwrap();
    users.into_iter().map(|u| u.name.to_string()).collect()
}

#[test]
fn pam_every_spelling_is_the_one_enrolled_user() {
    require_root("user_names pam test");
    let site = site();
    let (user, key) = (unique("nm"), fresh_key());
    site.enroll(&user, &key);
    let svc = PamService::mfa_only(&site.config, "");
    avoid_step_boundary(10);
    for (i, raw) in spellings(&user).iter().enumerate() {
        // Asked for the code, not let in on a fresh record's grace period...
        let r = pamtester(&svc.name, raw, Some(CLIENT), "\n", None);
        assert!(r.prompted(), "{raw}: {r:?}");
        assert_eq!(r.result, PamResult::AuthErr, "{raw}: {r:?}");
        // ...and alice's code lets in.
        let code = totp(&key, i as i64 - 1);
        let r = pamtester_code(&svc.name, raw, Some(CLIENT), &code, None);
        assert_eq!(r.result, PamResult::Success, "{raw}: {r:?}");
    }
    for raw in foreign(&user) {
        let r = pamtester(&svc.name, &raw, Some(CLIENT), "\n", None);
        assert_eq!(r.result, PamResult::AuthErr, "{raw}: {r:?}");
        assert!(!r.prompted(), "{raw} was asked for a code: {r:?}");
    }
    assert_eq!(records(&site.config), [user]);
}

#[test]
fn radius_every_spelling_is_the_one_enrolled_user() {
    let port = free_udp_port();
    let cfg = config_text("code-only", &format!("\"127.0.0.1:{port}\""), "", SECRET)
        .replace("[policy]\n", "[policy]\ngrace_days = 14\n")
        + USERS;
    let site = Site::with_config(&cfg);
    let daemon = spawn_daemon(&site.config, None);
    daemon.wait_log("listening on", 1);
    let rig = Rig { daemon, site, port };
    let (user, key) = rig.user();
    avoid_step_boundary(10);
    for (i, raw) in spellings(&user).iter().enumerate() {
        let r = rig.send(&attrs(raw, None, Some(UNTRUSTED_CSI), true));
        assert!(r.is("Access-Reject"), "{raw} without a code: {}", r.output);
        let code = totp(&key, i as i64 - 1);
        let r = rig.send(&attrs(raw, Some(&code), Some(UNTRUSTED_CSI), true));
        assert!(r.is("Access-Accept"), "{raw}: {}", r.output);
    }
    for raw in foreign(&user) {
        let r = rig.send(&attrs(
            &raw,
            Some(&totp(&key, 1)),
            Some(UNTRUSTED_CSI),
            true,
        ));
        assert!(r.is("Access-Reject"), "{raw}: {}", r.output);
    }
    assert_eq!(records(&rig.site.config), [user]);
}

#[test]
fn mfactl_auth_every_spelling_is_the_one_enrolled_user() {
    let site = site();
    let (user, key) = (unique("nm"), fresh_key());
    site.enroll(&user, &key);
    avoid_step_boundary(10);
    for (i, raw) in spellings(&user).iter().enumerate() {
        let o = site.mfactl(&["auth", raw, "--ip", CLIENT]);
        assert_eq!(code_of(&o), 1, "{raw}: {}", text(&o));
        assert!(text(&o).contains("missing_code"), "{raw}: {}", text(&o));
        let code = totp(&key, i as i64 - 1);
        let o = site.mfactl(&["auth", raw, "--ip", CLIENT, "--code", &code]);
        assert_eq!(code_of(&o), 0, "{raw}: {}", text(&o));
        assert!(text(&o).contains("valid_code"), "{raw}: {}", text(&o));
    }
    for raw in foreign(&user) {
        let o = site.mfactl(&["auth", &raw, "--ip", CLIENT, "--code", &totp(&key, 1)]);
        assert_eq!(code_of(&o), 2, "{raw}: {}", text(&o));
        assert!(
            text(&o).contains("is not a valid user name") && text(&o).contains("[users] domains"),
            "{raw}: {}",
            text(&o)
        );
        // Nor does enrolment or any other command take it.
        let o = site.mfactl(&["enroll", &raw, "--secret", &key, "--no-confirm"]);
        assert_eq!(code_of(&o), 2, "{raw}: {}", text(&o));
    }
    assert_eq!(records(&site.config), [user]);
}

#[test]
fn two_stored_names_of_one_user_are_refused_until_merged() {
    require_root("user_names pam test");
    // `Alice` enrolled while names were compared exactly, then `alice` after switching to
    // the default (fold) would be impossible: so make both under "exact", then switch.
    let exact = "[users]\ncase = \"exact\"\n";
    let site = Site::new(&format!("grace_days = 14\n{exact}"));
    let (upper_key, lower_key) = (fresh_key(), fresh_key());
    site.enroll("Alice", &upper_key);
    site.enroll("alice", &lower_key);
    let cfg = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(&site.config, cfg.replace(exact, "")).unwrap();

    let o = site.mfactl(&["config", "check"]);
    assert_ne!(code_of(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains("\"Alice\" and \"alice\" are one user (\"alice\")"),
        "{}",
        text(&o)
    );
    avoid_step_boundary(10);
    let o = site.mfactl(&[
        "auth",
        "alice",
        "--ip",
        CLIENT,
        "--code",
        &totp(&lower_key, -1),
    ]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    for needle in [
        "\"Alice\" and \"alice\" all mean \"alice\"",
        "mfactl users merge",
    ] {
        assert!(text(&o).contains(needle), "{needle}: {}", text(&o));
    }
    // The PAM module refuses the store too, without asking for a code.
    let svc = PamService::mfa_only(&site.config, "");
    let r = pamtester(&svc.name, "alice", Some(CLIENT), "\n", None);
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(!r.prompted(), "{r:?}");

    // Merge: alice's key is kept, Alice's record goes.
    let o = site.mfactl(&["users", "merge", "Alice", "alice"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("agree with"), "{}", text(&o));
    assert_eq!(records(&site.config), ["alice"]);
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let o = site.mfactl(&[
        "auth",
        "Alice",
        "--ip",
        CLIENT,
        "--code",
        &totp(&upper_key, 0),
    ]);
    assert_eq!(code_of(&o), 1, "Alice's old key: {}", text(&o));
    let o = site.mfactl(&[
        "auth",
        "Alice",
        "--ip",
        CLIENT,
        "--code",
        &totp(&lower_key, 0),
    ]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let r = pamtester_code(&svc.name, "alice", Some(CLIENT), &totp(&lower_key, 1), None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");

    // Remove works as the other way out.
    let site = Site::new(&format!("grace_days = 14\n{exact}"));
    site.enroll("Bob", &upper_key);
    site.enroll("bob", &lower_key);
    let cfg = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(&site.config, cfg.replace(exact, "")).unwrap();
    assert_eq!(code_of(&site.mfactl(&["auth", "bob", "--ip", CLIENT])), 2);
    let o = site.mfactl(&["users", "remove", "Bob"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let o = site.mfactl(&[
        "auth",
        "bob",
        "--ip",
        CLIENT,
        "--code",
        &totp(&lower_key, 0),
    ]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    // The history of both names stays.
    let o = site.mfactl(&["log", "--format", "csv"]);
    assert!(
        text(&o).contains(",Bob,") && text(&o).contains("remove"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_single_non_canonical_record_is_renamed_once_the_rules_reach_it() {
    // `CONTOSO\carol` stored before CONTOSO was listed (the old rule let it in), alone: once
    // the domain is listed it is carol's one record, renamed with its key.
    let site = Site::new("");
    let key = fresh_key();
    // A store as a version before [users] and before encryption at rest wrote it (schema 3):
    // the row under that name with the seed's bare bytes, and no key file yet.
    assert_eq!(code_of(&site.mfactl(&["init"])), 0);
    std::fs::remove_file(site.path().join("mfa.key")).unwrap();
    let seed = mfa_core::TotpSecret::from_base32(&key).unwrap();
    let hex: String = seed.bytes().iter().map(|b| format!("{b:02x}")).collect();
    require_tool("sqlite3");
    let now = mfa_e2e::unix_now();
    let st = std::process::Command::new("sqlite3")
        .arg(site.db())
        .arg(format!(
            "DROP TABLE store_key; ALTER TABLE one_time_codes DROP COLUMN scheme;
             DROP TABLE source_failures; DROP TABLE meta; DROP TABLE unlocks; DROP TABLE invites;
             INSERT INTO users (name, secret, algorithm, digits, period, first_seen, mfa_created, mfa_changed)
               VALUES ('CONTOSO\\carol', X'{hex}', 'SHA1', 6, 30, {now}, {now}, {now});
             PRAGMA user_version = 3;"
        ))
        .status()
        .unwrap();
    assert!(st.success());
    // The first open with a key seals it under the name it is stored as.
    assert_eq!(code_of(&site.mfactl(&["init"])), 0);
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains("warning: no login can reach the record \"CONTOSO\\\\carol\""),
        "{}",
        text(&o)
    );
    let cfg = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(&site.config, format!("{cfg}{USERS}")).unwrap();
    let o = site.mfactl(&["config", "check"]);
    assert!(text(&o).contains("is stored as \"carol\""), "{}", text(&o));
    avoid_step_boundary(5);
    let o = site.mfactl(&[
        "auth",
        "CONTOSO\\carol",
        "--ip",
        CLIENT,
        "--code",
        &totp(&key, 0),
    ]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert_eq!(records(&site.config), ["carol"]);
    let o = site.mfactl(&["log", "carol", "--format", "csv"]);
    assert!(text(&o).contains("rename"), "{}", text(&o));
}
