//! Secrets at rest, through the built `mfactl` (and `pam_mfa.so` under pamtester): a copy of
//! the database reveals no seed and no one-time code, `mfactl rekey` keeps every user able to
//! log in and retires the old key, a missing or wrong key file denies naming it and changes
//! nothing, and a store written before encryption is encrypted on its first open with a key.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use data_encoding::{BASE32_NOPAD, BASE64, BASE64_NOPAD, BASE64URL_NOPAD, HEXLOWER, HEXUPPER};
use mfa_e2e::pam::{
    PamResult, PamService, SyslogCapture, UNAVAILABLE, pamtester_code, require_root,
};
use mfa_e2e::{Site, code_of, fresh_key, printed_codes, require_tool, text, totp, unique};

/// An untrusted client address: a code is needed.
const OUTSIDE: &str = "192.0.2.77";

fn dump(site: &Site) -> String {
    require_tool("sqlite3");
    let o = Command::new("sqlite3")
        .arg(site.db())
        .arg(".dump")
        .output()
        .unwrap();
    assert!(o.status.success(), "sqlite3 .dump: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

fn sqlite(site: &Site, sql: &str) {
    let o = Command::new("sqlite3")
        .arg(site.db())
        .arg(sql)
        .output()
        .unwrap();
    assert!(o.status.success(), "sqlite3 {sql}: {}", text(&o));
}

/// Every way a seed could show in a text dump: its bytes as hex (either case), base32 (either
/// case), base64 (standard, unpadded, URL-safe).
fn encodings(key_b32: &str) -> Vec<String> {
    let bytes = mfa_core::TotpSecret::from_base32(key_b32).unwrap();
    let b = bytes.bytes();
    let b32 = BASE32_NOPAD.encode(b);
    vec![
        HEXLOWER.encode(b),
        HEXUPPER.encode(b),
        b32.clone(),
        b32.to_lowercase(),
        BASE64.encode(b),
        BASE64_NOPAD.encode(b),
        BASE64URL_NOPAD.encode(b),
    ]
}

fn assert_no_seed(dump: &str, key: &str) {
    for e in encodings(key) {
        assert!(!dump.contains(&e), "the dump holds a seed as {e}:\n{dump}");
    }
}

fn auth(site: &Site, user: &str, code: &str) -> std::process::Output {
    site.mfactl(&["auth", user, "--ip", OUTSIDE, "--code", code])
}

fn enrolled(site: &Site, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            let (user, key) = (unique("sec"), fresh_key());
            site.enroll(&user, &key);
            (user, key)
        })
        .collect()
}

#[test]
fn a_copy_of_the_database_holds_no_seed_and_no_one_time_code() {
    let site = Site::new("");
    let users = enrolled(&site, 3);
    let mut codes = Vec::new();
    for (user, _) in &users {
        let o = site.mfactl(&["backup-codes", user]);
        assert_eq!(code_of(&o), 0, "{}", text(&o));
        let set = printed_codes(&String::from_utf8_lossy(&o.stdout));
        assert_eq!(set.len(), 10);
        codes.extend(set);
    }
    let o = site.mfactl(&["temp-access", &users[0].0]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    codes.extend(printed_codes(&String::from_utf8_lossy(&o.stdout)));
    assert_eq!(codes.len(), 31);

    let d = dump(&site);
    assert!(d.contains("CREATE TABLE users"), "{d}");
    for (_, key) in &users {
        assert_no_seed(&d, key);
    }
    for c in &codes {
        let spaced = format!("{} {}", &c[..4], &c[4..]);
        assert!(
            !d.contains(c.as_str()) && !d.contains(&spaced),
            "code {c} in the dump"
        );
        assert!(
            !d.contains(&HEXLOWER.encode(c.as_bytes())),
            "code {c} as hex"
        );
    }
    // The key file: made by the first command, private, not in the dump.
    let key = std::fs::read(site.key_file()).unwrap();
    assert_eq!(key.len(), 32);
    let meta = std::fs::metadata(site.key_file()).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert!(!d.to_lowercase().contains(&HEXLOWER.encode(&key)));

    // And everything still works from the encrypted store.
    let (user, key) = &users[1];
    let o = auth(&site, user, &totp(key, 0));
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let o = auth(&site, &users[2].0, &codes[20]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("backup_code"), "{}", text(&o));
}

#[test]
fn rekey_keeps_every_user_and_retires_the_old_key() {
    let site = Site::new("");
    let users = enrolled(&site, 4);
    let old = std::fs::read(site.key_file()).unwrap();
    let o = site.mfactl(&["rekey"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("Re-encrypted 4 key(s)"), "{}", text(&o));
    let new = std::fs::read(site.key_file()).unwrap();
    assert_eq!(new.len(), 32);
    assert_ne!(new, old);
    assert_eq!(
        std::fs::metadata(site.key_file()).unwrap().mode() & 0o777,
        0o600
    );
    let leftovers: Vec<_> = std::fs::read_dir(site.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".key."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    for (user, key) in &users {
        let o = auth(&site, user, &totp(key, 0));
        assert_eq!(code_of(&o), 0, "{user} after rekey: {}", text(&o));
        assert!(text(&o).contains("valid_code"), "{}", text(&o));
    }
    let o = site.mfactl(&["log", "--format", "csv"]);
    assert!(text(&o).contains("rekey"), "audited: {}", text(&o));
    let d = dump(&site);
    for (_, key) in &users {
        assert_no_seed(&d, key);
    }

    // The old key no longer opens the store: refused, naming the file, nothing changed.
    std::fs::write(site.key_file(), &old).unwrap();
    let before = dump(&site);
    let (user, key) = &users[0];
    let o = auth(&site, user, &totp(key, 1));
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    let path = site.key_file().display().to_string();
    assert!(
        text(&o).contains(&path) && text(&o).contains("another key"),
        "{}",
        text(&o)
    );
    assert_eq!(dump(&site), before);
    // A rekey under the wrong key is refused too, and the new key still works after it.
    let o = site.mfactl(&["rekey"]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    assert_eq!(dump(&site), before);
    std::fs::write(site.key_file(), &new).unwrap();
    let o = auth(&site, user, &totp(key, 1));
    assert_eq!(code_of(&o), 0, "{}", text(&o));

    // A rekey stopped between its commit and the rename: the old key still in key_file, the
    // store's key in key_file.new. Readers use the pending key and leave the files alone;
    // the next command that may create (init) finishes the rename.
    let pending = site.path().join("mfa.key.new");
    std::fs::rename(site.key_file(), &pending).unwrap();
    write_key(&site, &old);
    let (user, key) = &users[1];
    let o = auth(&site, user, &totp(key, 1));
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(pending.exists());
    let o = site.mfactl(&["init"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(!pending.exists());
    assert_eq!(std::fs::read(site.key_file()).unwrap(), new);
}

#[test]
fn a_missing_or_wrong_key_file_denies_naming_it_and_changes_nothing() {
    let site = Site::new("");
    let (user, key) = enrolled(&site, 1).remove(0);
    let good = std::fs::read(site.key_file()).unwrap();
    let path = site.key_file().display().to_string();
    let before = dump(&site);

    std::fs::remove_file(site.key_file()).unwrap();
    for args in [
        vec!["auth", &user, "--ip", OUTSIDE, "--code", "123456"],
        vec!["report"],
        vec!["backup-codes", &user],
    ] {
        let o = site.mfactl(&args);
        assert_eq!(code_of(&o), 2, "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains(&path) && text(&o).contains("does not exist"),
            "{args:?}: {}",
            text(&o)
        );
    }
    // Commands that may create a store do not replace the key of an encrypted one.
    for args in [vec!["init"], vec!["enroll", "newcomer", "--no-confirm"]] {
        let o = site.mfactl(&args);
        assert_eq!(code_of(&o), 2, "{args:?}: {}", text(&o));
        assert!(text(&o).contains("restore it"), "{}", text(&o));
        assert!(!site.key_file().exists(), "{args:?} made a new key");
    }
    let o = site.mfactl(&["config", "check"]);
    assert!(text(&o).contains("MISSING"), "{}", text(&o));
    assert_eq!(dump(&site), before);

    // Another 32-byte key: refused at open, naming the file.
    let mut other = good.clone();
    other[0] ^= 1;
    write_key(&site, &other);
    let o = auth(&site, &user, &totp(&key, 0));
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains(&path) && text(&o).contains("another key"),
        "{}",
        text(&o)
    );
    // Not a key at all, or readable by others: refused, naming the file and the fix.
    write_key(&site, b"short");
    let o = auth(&site, &user, &totp(&key, 0));
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains(&path) && text(&o).contains("5 bytes"),
        "{}",
        text(&o)
    );
    write_key(&site, &good);
    std::fs::set_permissions(site.key_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = auth(&site, &user, &totp(&key, 0));
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("chmod 600"), "{}", text(&o));
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("store.key_file"), "{}", text(&o));
    assert_eq!(dump(&site), before);

    // The right key back: in again.
    write_key(&site, &good);
    let o = auth(&site, &user, &totp(&key, 0));
    assert_eq!(code_of(&o), 0, "{}", text(&o));
}

fn write_key(site: &Site, bytes: &[u8]) {
    let _ = std::fs::remove_file(site.key_file());
    std::fs::write(site.key_file(), bytes).unwrap();
    std::fs::set_permissions(site.key_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn the_pam_module_denies_without_its_key_file_and_logs_the_path() {
    require_root("the PAM key file test");
    let site = Site::new("");
    let (user, key) = enrolled(&site, 1).remove(0);
    let svc = PamService::mfa_only(&site.config, "");
    let good = std::fs::read(site.key_file()).unwrap();
    let path = site.key_file().display().to_string();
    let before = dump(&site);
    for (what, bytes) in [("missing", None), ("wrong", Some([7u8; 32]))] {
        match bytes {
            None => std::fs::remove_file(site.key_file()).unwrap(),
            Some(b) => write_key(&site, &b),
        }
        let log = SyslogCapture::new();
        let r = pamtester_code(&svc.name, &user, Some(OUTSIDE), &totp(&key, 0), Some(&log));
        assert_eq!(r.result, PamResult::AuthErr, "{what}: {r:?}");
        assert!(r.all().contains(UNAVAILABLE), "{what}: {r:?}");
        let sys = log.text();
        assert!(
            sys.contains(&path),
            "{what}: syslog should name {path}:\n{sys}"
        );
        assert_eq!(dump(&site), before, "{what}");
    }
    write_key(&site, &good);
    let r = pamtester_code(&svc.name, &user, Some(OUTSIDE), &totp(&key, 0), None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
}

#[test]
fn a_clear_store_is_encrypted_on_its_first_open_with_a_key() {
    use sha2::{Digest, Sha256};
    let site = Site::new("");
    let o = site.mfactl(&["init"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("Created the key file"), "{}", text(&o));
    // Back to a store as schema 3 wrote it, before encryption at rest: the seed's bare
    // bytes, a SHA-256 backup code, no key file.
    let key = fresh_key();
    let seed = mfa_core::TotpSecret::from_base32(&key).unwrap();
    let salt = [5u8; 16];
    let backup = "24681357";
    let mut h = Sha256::new();
    h.update(b"mfa-otc-v1");
    h.update(salt);
    h.update(backup.as_bytes());
    let hash = h.finalize();
    let now = mfa_e2e::unix_now();
    sqlite(
        &site,
        &format!(
            "DROP TABLE store_key; ALTER TABLE one_time_codes DROP COLUMN scheme;
             DROP TABLE source_failures; DROP TABLE meta; DROP TABLE unlocks; DROP TABLE invites;
             INSERT INTO users (name, secret, algorithm, digits, period, first_seen, mfa_created, mfa_changed)
               VALUES ('olduser', X'{}', 'SHA1', 6, 30, {now}, {now}, {now});
             INSERT INTO one_time_codes (user, kind, salt, hash, created, uses_left)
               VALUES ('olduser', 'backup', X'{}', X'{}', {now}, 1);
             PRAGMA user_version = 3;",
            HEXLOWER.encode(seed.bytes()),
            HEXLOWER.encode(&salt),
            HEXLOWER.encode(&hash)
        ),
    );
    std::fs::remove_file(site.key_file()).unwrap();
    assert!(
        dump(&site)
            .to_lowercase()
            .contains(&HEXLOWER.encode(seed.bytes())),
        "the set-up is a clear store"
    );
    // No key file and nothing encrypted yet: the fix is named.
    let o = auth(&site, "olduser", &totp(&key, 0));
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("mfactl init"), "{}", text(&o));

    let o = site.mfactl(&["init"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("exists already"), "{}", text(&o));
    assert!(text(&o).contains("Created the key file"), "{}", text(&o));
    let d = dump(&site);
    assert_no_seed(&d, &key);
    let o = site.mfactl(&["log", "--format", "csv"]);
    assert!(text(&o).contains("sealed_store"), "{}", text(&o));

    let o = auth(&site, "olduser", &totp(&key, 0));
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let o = auth(&site, "olduser", "2468 1357");
    assert_eq!(code_of(&o), 0, "the old SHA-256 backup code: {}", text(&o));
    assert!(text(&o).contains("backup_code"), "{}", text(&o));
}
