//! One user however the name is spelled (`[users]`): `Alice`, `CONTOSO\alice` and
//! `alice@contoso.com` are the enrolled `alice` through the real libpam (pamtester), the
//! daemon (radclient, code-only mode) and `mfactl auth`; names in other domains are refused
//! and create no record; a store that already holds two names of one user is refused until
//! `mfactl users merge` (or remove) leaves one. Spellings a directory that ignores width and
//! accents (Active Directory) takes for alice's, `ａｌｉｃｅ`, `Ⓐlice`, `𝐚𝐥𝐢𝐜𝐞` and `àlice`,
//! are refused and make no record through pamtester (local and remote mode), radclient and
//! mfactl, under the packaged `enforce_from = "never"` that would otherwise let a new name in
//! as "not required yet"; with `[users] unicode = "allow"` the look-alikes of a stored name
//! are refused and stored look-alikes refuse the store. Codes from oathtool. Runs as root
//! (pamtester writes /etc/pam.d).

use mfa_core::OpenMode;
use mfa_e2e::pam::{PamResult, PamService, SyslogCapture, pamtester, pamtester_code, require_root};
use mfa_e2e::radius::{
    Rig, SECRET, UNTRUSTED_CSI, attrs, capture, config_text, free_udp_port, spawn_daemon,
};
use mfa_e2e::{Site, avoid_step_boundary, code_of, fresh_key, require_tool, text, totp, unique};

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

/// The roll-out as packaged: not scheduled, so a name that has never been seen is let in as
/// "not required yet". A second record of alice's is then a login with her password and no
/// code.
const NEVER: &str = "enforce_from = \"never\"\ngrace_days = 14\n";
const ALLOW: &str = "\n[users]\nunicode = \"allow\"\n";

/// A lowercase ASCII name with letters only (so that every spelling below exists).
fn letters(prefix: &str) -> String {
    unique(prefix)
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from(b'a' + d as u8),
            None => c,
        })
        .collect()
}

/// The spellings of `user` (lowercase ASCII letters, starting with `a`) that Active Directory
/// takes for it, ignoring width and accents, or that look like it: fullwidth, circled,
/// mathematical bold, accented; and where each first differs from ASCII (position 1).
fn beyond_ascii(user: &str) -> [(&'static str, String); 4] {
    assert!(user.starts_with('a') && user.bytes().all(|b| b.is_ascii_lowercase()));
    let shift = |c: char, base: u32| char::from_u32(base + (c as u32 - 'a' as u32)).unwrap();
    let mut circled = user.chars();
    let first = circled.next().map(|c| shift(c, 0x24B6)).unwrap();
    [
        (
            "fullwidth",
            user.chars()
                .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
                .collect(),
        ),
        ("circled", format!("{first}{}", circled.as_str())),
        (
            "mathematical",
            user.chars().map(|c| shift(c, 0x1D41A)).collect(),
        ),
        ("accented", format!("à{}", &user[1..])),
    ]
}

#[test]
fn the_spellings_are_what_the_issue_names() {
    let s = beyond_ascii("alice");
    let got: Vec<&str> = s.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(got, ["ａｌｉｃｅ", "Ⓐlice", "𝐚𝐥𝐢𝐜𝐞", "àlice"]);
}

#[test]
fn pam_spellings_beyond_ascii_are_refused_without_a_prompt_or_a_record() {
    require_root("user_names pam test");
    let site = Site::new(NEVER);
    let (user, key) = (letters("a"), fresh_key());
    site.enroll(&user, &key);
    let svc = PamService::mfa_only(&site.config, "");
    let log = SyslogCapture::new();
    for (what, raw) in beyond_ascii(&user) {
        let r = pamtester(&svc.name, &raw, Some(CLIENT), "\n", Some(&log));
        assert_eq!(r.result, PamResult::AuthErr, "{what} {raw}: {r:?}");
        assert!(!r.prompted(), "{what} {raw} was asked for a code: {r:?}");
    }
    // The syslog line says which character, where, and how to let such names in.
    let sys = log.text();
    for needle in ["character 1", "not ASCII", "[users] unicode = \"allow\""] {
        assert!(sys.contains(needle), "{needle}:\n{sys}");
    }
    assert_eq!(records(&site.config), [user.as_str()]);
    // alice herself is as she was.
    avoid_step_boundary(5);
    let r = pamtester_code(&svc.name, &user, Some(CLIENT), &totp(&key, 0), None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
}

#[test]
fn radius_spellings_beyond_ascii_are_rejected_without_a_record() {
    let port = free_udp_port();
    let cfg = config_text("code-only", &format!("\"127.0.0.1:{port}\""), "", SECRET)
        .replace("[policy]\n", &format!("[policy]\n{NEVER}"));
    let site = Site::with_config(&cfg);
    let daemon = spawn_daemon(&site.config, None);
    daemon.wait_log("listening on", 1);
    let rig = Rig { daemon, site, port };
    let user = letters("a");
    let key = fresh_key();
    rig.site.enroll(&user, &key);
    for (what, raw) in beyond_ascii(&user) {
        // radclient sends a string attribute's UTF-8 bytes as they are (no escaping is
        // needed inside the double quotes): the daemon sees the spelling itself.
        let a = attrs(&raw, None, Some(UNTRUSTED_CSI), true);
        let sent = capture("auth", &a);
        assert!(
            sent.windows(raw.len()).any(|w| w == raw.as_bytes()),
            "{what}: radclient did not send the UTF-8 bytes of {raw}"
        );
        let r = rig.send(&a);
        assert!(r.is("Access-Reject"), "{what} {raw}: {}", r.output);
    }
    assert_eq!(records(&rig.site.config), [user.as_str()]);
    avoid_step_boundary(5);
    let r = rig.send(&attrs(
        &user,
        Some(&totp(&key, 0)),
        Some(UNTRUSTED_CSI),
        true,
    ));
    assert!(r.is("Access-Accept"), "{}", r.output);
}

#[test]
fn mfactl_spellings_beyond_ascii_are_refused_without_a_record() {
    let site = Site::new(&format!(
        "{NEVER}\n[portal]\npublic_url = \"https://mfa.example.com\"\n"
    ));
    let (user, key) = (letters("a"), fresh_key());
    site.enroll(&user, &key);
    let csv = site.path().join("users.csv");
    let mut lines = format!("{user}x,{}\n", fresh_key());
    for (what, raw) in beyond_ascii(&user) {
        let bad = |o: &std::process::Output, cmd: &str| {
            assert_eq!(code_of(o), 2, "{cmd} {what} {raw}: {}", text(o));
            let t = text(o);
            assert!(
                t.contains("character 1") && t.contains("not ASCII"),
                "{cmd} {what} {raw}: {t}"
            );
        };
        bad(&site.mfactl(&["auth", &raw, "--ip", CLIENT]), "auth");
        let k = fresh_key();
        bad(
            &site.mfactl(&["enroll", &raw, "--secret", &k, "--no-confirm"]),
            "enroll",
        );
        bad(&site.mfactl(&["invite", &raw]), "invite");
        bad(&site.mfactl(&["backup-codes", &raw]), "backup-codes");
        lines.push_str(&format!("{raw},{k}\n"));
    }
    // An import is all or nothing: the first bad line (line 2) is named, nothing is stored.
    std::fs::write(&csv, lines).unwrap();
    let o = site.mfactl(&["import", csv.to_str().unwrap()]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("users.csv:2") && text(&o).contains("not ASCII"),
        "{}",
        text(&o)
    );
    assert_eq!(records(&site.config), [user.as_str()]);
    let o = site.mfactl(&["report", "--format", "csv"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(
        !text(&o).contains('à') && !text(&o).contains('ａ'),
        "{}",
        text(&o)
    );
}

/// PAM in remote mode: the host refuses a spelling beyond ASCII itself under its own
/// `[users]`; a host that lets Unicode in passes `àlice` on, and the daemon, whose rules
/// refuse it, rejects it. No record either way.
#[test]
fn pam_remote_spellings_beyond_ascii_are_refused_on_the_host_and_by_the_daemon() {
    require_root("user_names pam remote test");
    let port = free_udp_port();
    let server = Site::with_config(&format!(
        "[store]\npath = \"mfa.db\"\n\n[policy]\n{NEVER}\n[audit]\nsyslog = false\n\n\
         [radius]\nlisten = [\"127.0.0.1:{port}\"]\n\n[[radius.clients]]\nname = \"pam-hosts\"\n\
         address = \"127.0.0.1/32\"\nsecret = \"{SECRET}\"\nmode = \"challenge\"\n\
         first_factor = \"none\"\n"
    ));
    let (user, key) = (letters("a"), fresh_key());
    server.enroll(&user, &key);
    let daemon = spawn_daemon(&server.config, None);
    daemon.wait_log("listening on", 1);
    let host = |users: &str| {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("remote.secret");
        mfa_e2e::write_private(&secret_file, &format!("{SECRET}\n"));
        let config = dir.path().join("mfa.toml");
        std::fs::write(
            &config,
            format!(
                "[remote]\nservers = [\"127.0.0.1:{port}\"]\nsecret_file = \"remote.secret\"\n\
                 timeout = \"2s\"\nretries = 1\noffline_queue = \"offline-queue\"\n{users}"
            ),
        )
        .unwrap();
        let svc = PamService::mfa_only(&config, "");
        (dir, svc)
    };
    let (_d1, strict) = host("");
    let (_d2, open) = host(ALLOW);
    let log = SyslogCapture::new();
    for (what, raw) in beyond_ascii(&user) {
        for (h, svc) in [("default host", &strict), ("unicode host", &open)] {
            let r = pamtester(&svc.name, &raw, Some(CLIENT), "\n", Some(&log));
            assert_eq!(r.result, PamResult::AuthErr, "{h} {what} {raw}: {r:?}");
            assert!(!r.prompted(), "{h} {what} {raw}: {r:?}");
        }
    }
    let sys = log.text();
    assert!(sys.contains("not ASCII") && sys.contains("NFKC"), "{sys}");
    // Only the accented spelling got past the open host, and the daemon, whose rules
    // refuse it, rejected it as a bad name.
    daemon.wait_log("reason=invalid_user_name", 1);
    let accented = format!("user=\"à{}\"", &user[1..]);
    assert!(
        daemon
            .log()
            .lines()
            .any(|l| l.contains(&accented) && l.contains("decision=reject")),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.log().matches("reason=invalid_user_name").count(), 1);
    drop(daemon);
    assert_eq!(records(&server.config), [user]);
}

/// `[users] unicode = "allow"`: a real name beyond ASCII is a user; the fullwidth, circled
/// and mathematical spellings are refused (not NFKC), and the accented and the Cyrillic one
/// look like alice, who has a record, so they are refused too, naming her, through every
/// front end. A look-alike stored behind the product's back refuses the store until one of
/// the two is removed.
#[test]
fn with_unicode_allowed_look_alikes_of_a_user_are_refused_everywhere() {
    require_root("user_names pam test");
    let port = free_udp_port();
    let cfg = config_text("code-only", &format!("\"127.0.0.1:{port}\""), "", SECRET)
        .replace("[policy]\n", &format!("[policy]\n{NEVER}"))
        + ALLOW;
    let site = Site::with_config(&cfg);
    let (user, key) = (letters("a"), fresh_key());
    site.enroll(&user, &key);
    let jorg = format!("jörg{}", letters("j"));
    site.enroll(&jorg, &fresh_key());
    let daemon = spawn_daemon(&site.config, None);
    daemon.wait_log("listening on", 1);
    let rig = Rig { daemon, site, port };
    let svc = PamService::mfa_only(&rig.site.config, "");
    let cyrillic = format!("а{}", &user[1..]);
    let mut spellings: Vec<(&str, String)> = beyond_ascii(&user).into_iter().collect();
    spellings.push(("cyrillic", cyrillic));
    for (what, raw) in &spellings {
        let why = if matches!(*what, "accented" | "cyrillic") {
            format!("looks like the user \"{user}\"")
        } else {
            "NFKC".to_string()
        };
        let o = rig.site.mfactl(&["auth", raw, "--ip", CLIENT]);
        assert_eq!(code_of(&o), 2, "{what} {raw}: {}", text(&o));
        assert!(text(&o).contains(&why), "{what} {raw}: {}", text(&o));
        let o = rig
            .site
            .mfactl(&["enroll", raw, "--secret", &fresh_key(), "--no-confirm"]);
        assert_eq!(code_of(&o), 2, "{what} {raw}: {}", text(&o));
        let r = rig.send(&attrs(raw, None, Some(UNTRUSTED_CSI), true));
        assert!(r.is("Access-Reject"), "{what} {raw}: {}", r.output);
        let r = pamtester(&svc.name, raw, Some(CLIENT), "\n", None);
        assert_eq!(r.result, PamResult::AuthErr, "{what} {raw}: {r:?}");
        assert!(!r.prompted(), "{what} {raw}: {r:?}");
    }
    // jörg is a user like any: asked for his code.
    let r = rig.send(&attrs(&jorg, None, Some(UNTRUSTED_CSI), true));
    assert!(r.is("Access-Reject"), "{}", r.output);
    let o = rig.site.mfactl(&["auth", &jorg, "--ip", CLIENT]);
    assert!(text(&o).contains("missing_code"), "{}", text(&o));
    let mut want = vec![user.clone(), jorg.clone()];
    want.sort();
    assert_eq!(records(&rig.site.config), want);

    // An import that holds a look-alike of a stored user, or two of one another, is refused
    // whole.
    let csv = rig.site.path().join("more.csv");
    std::fs::write(
        &csv,
        format!(
            "bob,{}\nàlice,{}\nalice,{}\n",
            fresh_key(),
            fresh_key(),
            fresh_key()
        ),
    )
    .unwrap();
    let o = rig.site.mfactl(&["import", csv.to_str().unwrap()]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("more.csv:3") && text(&o).contains("looks like \"àlice\""),
        "{}",
        text(&o)
    );
    assert_eq!(records(&rig.site.config), want);

    // A look-alike row written behind the product's back: the store is refused until one of
    // the two is removed.
    let Rig {
        mut daemon, site, ..
    } = rig;
    daemon.stop();
    let accented = format!("à{}", &user[1..]);
    require_tool("sqlite3");
    let st = std::process::Command::new("sqlite3")
        .arg(site.db())
        .arg(format!(
            "INSERT INTO users (name, algorithm, digits, period, first_seen) VALUES ('{accented}', 'SHA1', 6, 30, 1);"
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let o = site.mfactl(&["config", "check"]);
    assert_ne!(code_of(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains(&format!("\"{user}\" and \"{accented}\" look alike")),
        "{}",
        text(&o)
    );
    let o = site.mfactl(&["auth", &user, "--ip", CLIENT, "--code", &totp(&key, 0)]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("look alike"), "{}", text(&o));
    let r = pamtester(&svc.name, &user, Some(CLIENT), "\n", None);
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(!r.prompted(), "{r:?}");
    let o = site.mfactl(&["users", "remove", &accented]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("agree with"), "{}", text(&o));
    avoid_step_boundary(5);
    let o = site.mfactl(&["auth", &user, "--ip", CLIENT, "--code", &totp(&key, 0)]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
}

/// A record beyond ASCII from before the rule (the old rule let `jörg` in) is left alone
/// under the default: no login reaches it, `mfactl config check` says so and how to let such
/// names in, and with `unicode = "allow"` it is a user again.
#[test]
fn a_stored_name_beyond_ascii_is_unreachable_until_unicode_is_allowed() {
    let site = Site::new(NEVER);
    assert_eq!(code_of(&site.mfactl(&["init"])), 0);
    require_tool("sqlite3");
    let st = std::process::Command::new("sqlite3")
        .arg(site.db())
        .arg("INSERT INTO users (name, algorithm, digits, period, first_seen) VALUES ('jörg', 'SHA1', 6, 30, 1);")
        .status()
        .unwrap();
    assert!(st.success());
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains("warning: no login can reach the record \"jörg\"")
            && text(&o).contains("not ASCII")
            && text(&o).contains("unicode = \"allow\""),
        "{}",
        text(&o)
    );
    let o = site.mfactl(&["auth", "jörg", "--ip", CLIENT]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    let cfg = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(&site.config, format!("{cfg}{ALLOW}")).unwrap();
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(!text(&o).contains("warning"), "{}", text(&o));
    let o = site.mfactl(&["auth", "jörg", "--ip", CLIENT]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("before_go_live"), "{}", text(&o));
    assert_eq!(records(&site.config), ["jörg"]);
}
