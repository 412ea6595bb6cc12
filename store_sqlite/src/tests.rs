//! The engine's own tests: the conformance suites, files and modes, upgrades from every
//! older schema, group commit and the WAL's length.

use std::fs::{self};
use std::path::Path;
use std::time::Duration;

use crate::conn::LEAVE_WAL_BYTES;
use crate::conn::SqliteStore;
use crate::names::NAMES_WITH_KEY;
use crate::schema::{PRUNE_UNENROLLED, SCHEMA_VERSION};
use mfa_model::{Action, AuditEvent, ReasonCode, SealedSecret, UserName, UserRecord};
use mfa_store::{Abort, AuditQuery, GroupCommit, OpenMode, Store, StoreError};
use rusqlite::{Connection, params};

use mfa_core::secret::{Sealer, TotpSecret, Unsealed};
use mfa_model::{Algorithm, OtcKind, TotpParams};
use std::os::unix::fs::MetadataExt;

fn params() -> TotpParams {
    TotpParams {
        algorithm: Algorithm::SHA1,
        digits: 6,
        period: 30,
    }
}

fn n(s: &str) -> UserName {
    UserName::parse(s).unwrap()
}

#[test]
fn sqlite_passes_the_store_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let count = std::sync::atomic::AtomicUsize::new(0);
    let open = || -> Box<dyn Store> {
        let i = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.path().join(format!("c{i}.db"));
        Box::new(SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(5)).unwrap())
    };
    mfa_store::conformance::all(&open);
    mfa_core::conformance::all(&open);
}

#[test]
fn creates_private_files_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/mfa.db");
    assert!(matches!(
        SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)),
        Err(StoreError::Missing { .. })
    ));
    let s = SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
        0o700
    );

    let mut rec = UserRecord::new(&n("alice"), params(), 100);
    rec.secret = Some(
        Unsealed
            .seal(&n("alice"), &TotpSecret::generate().unwrap())
            .unwrap(),
    );
    let (_, code) = mfa_core::verify::new_one_time_code(OtcKind::Backup, 100, None, 1).unwrap();
    rec.codes.push(code);
    let want = rec.clone();
    s.transact(&[&n("alice")], &mut |recs| {
        recs[0] = Some(rec.clone());
        Ok(vec![AuditEvent::admin(
            100,
            "alice",
            "test",
            Action::Enroll,
            ReasonCode::Confirmed,
            None,
        )])
    })
    .unwrap();
    assert_eq!(s.user(&n("alice")).unwrap(), Some(want));
    assert_eq!(s.audit(&AuditQuery::default()).unwrap().len(), 1);
    assert_eq!(s.integrity_check().unwrap(), "ok");
}

#[test]
fn refused_transaction_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(
        &dir.path().join("m.db"),
        OpenMode::Create,
        Duration::from_secs(1),
    )
    .unwrap();
    let r = s.transact(&[&n("a"), &n("b")], &mut |recs| {
        recs[0] = Some(UserRecord::new(&n("a"), params(), 1));
        Err(Abort::Refused(mfa_model::Refusal::NoSuchUser(n("b"))))
    });
    assert!(matches!(r, Err(StoreError::Aborted(Abort::Refused(_)))));
    assert!(s.users().unwrap().is_empty());
}

#[test]
fn deferred_commits_are_shared_at_once_and_the_writer_restarts_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let s = SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap();
    for i in 0..200 {
        let name = n(&format!("u{i}"));
        s.transact_deferred(&[&name], &mut |recs| {
            recs[0] = Some(UserRecord::new(&name, params(), 1));
            Ok(vec![AuditEvent::admin(
                1,
                &name,
                "t",
                Action::Enroll,
                ReasonCode::Unconfirmed,
                None,
            )])
        })
        .unwrap();
    }
    s.sync().unwrap();
    // Another process (here: another store on the same file) sees them.
    let other = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    assert_eq!(other.users().unwrap().len(), 200);
    // No automatic checkpoint on the deferred connection: the log grew.
    let grown = s.checkpoint(false).unwrap();
    assert!(grown >= 200, "{grown} frames");
    // Caught up on the writer, the next transaction starts the log over.
    s.checkpoint(true).unwrap();
    s.transact_deferred(&[&n("u0")], &mut |recs| {
        recs[0].as_mut().unwrap().failures = 1;
        Ok(vec![])
    })
    .unwrap();
    s.sync().unwrap();
    let after = s.checkpoint(false).unwrap();
    assert!(after < 10, "{after} frames after the restart");
    assert_eq!(other.user(&n("u0")).unwrap().unwrap().failures, 1);
    assert_eq!(other.integrity_check().unwrap(), "ok");
}

#[test]
fn a_process_alone_leaves_a_short_wal_and_checkpoints_a_longer_one() {
    // Process after process opening the store alone, as the PAM module does on a host
    // without the daemon: one small write each.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let wal = dir.path().join("m.db-wal");
    let (mut left, mut removed) = (0, 0);
    for i in 0..60 {
        let s = SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap();
        let name = n(&format!("u{i}"));
        s.transact(&[&name], &mut |recs| {
            recs[0] = Some(UserRecord::new(&name, params(), i));
            Ok(vec![AuditEvent::admin(
                i,
                &name,
                "t",
                Action::Enroll,
                ReasonCode::Confirmed,
                None,
            )])
        })
        .unwrap();
        drop(s);
        match fs::metadata(&wal) {
            Ok(m) => {
                left += 1;
                assert!(
                    m.len() <= LEAVE_WAL_BYTES,
                    "a WAL of {} bytes was left",
                    m.len()
                );
            }
            Err(_) => removed += 1,
        }
    }
    // Most closes leave the WAL (no checkpoint, no fsyncs), and it still starts over.
    assert!(left >= 40 && removed >= 2, "left {left}, removed {removed}");
    let s = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    assert_eq!(s.users().unwrap().len(), 60);
    assert_eq!(s.integrity_check().unwrap(), "ok");
}

#[test]
fn once_the_caller_drives_checkpoints_no_connection_checkpoints_on_its_own() {
    // Commits on ordinary connections, e.g. the audit pruning on the daemon's writer
    // thread: SQLite's automatic checkpoint (at 1000 frames) would run in them.
    let commits = |s: &SqliteStore| {
        for i in 0..1200 {
            s.append_audit(&[AuditEvent::admin(
                i,
                &n("u"),
                "t",
                Action::Enroll,
                ReasonCode::Confirmed,
                None,
            )])
            .unwrap();
        }
        s.checkpoint(false).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    // Alone (the PAM module, mfactl): SQLite checkpoints, so the log starts over.
    let alone = SqliteStore::open(
        &dir.path().join("a.db"),
        OpenMode::Create,
        Duration::from_secs(1),
    )
    .unwrap();
    let frames = commits(&alone);
    assert!(
        frames < 1100,
        "{frames} frames: no automatic checkpoint ran"
    );
    // With a deferred-commit connection (the daemon), only the caller's checkpoints run.
    let s = SqliteStore::open(
        &dir.path().join("d.db"),
        OpenMode::Create,
        Duration::from_secs(1),
    )
    .unwrap();
    s.append_audit(&[]).unwrap(); // a pooled connection from before
    s.transact_deferred(&[&n("u")], &mut |recs| {
        recs[0] = Some(UserRecord::new(&n("u"), params(), 1));
        Ok(vec![])
    })
    .unwrap();
    let frames = commits(&s);
    assert!(
        frames >= 1200,
        "{frames} frames: a connection checkpointed on its own"
    );
}

#[test]
fn a_version_1_store_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        // The version 1 schema as shipped before, with one user, a backup code and
        // an audit row.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL, secret BLOB,
               algorithm TEXT NOT NULL, digits INTEGER NOT NULL, period INTEGER NOT NULL,
               mfa_created INTEGER, mfa_changed INTEGER, first_seen INTEGER NOT NULL,
               grace_started INTEGER, last_step INTEGER,
               failures INTEGER NOT NULL DEFAULT 0, first_failure INTEGER,
               locked_until INTEGER, login_count INTEGER NOT NULL DEFAULT 0,
               last_login INTEGER, last_ip TEXT, last_outcome TEXT) STRICT;
             CREATE TABLE one_time_codes (
               user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
               kind TEXT NOT NULL CHECK (kind IN ('backup', 'temporary')),
               salt BLOB NOT NULL, hash BLOB NOT NULL, created INTEGER NOT NULL,
               expires INTEGER, uses_left INTEGER NOT NULL) STRICT;
             CREATE INDEX one_time_codes_user ON one_time_codes(user);
             CREATE TABLE audit (id INTEGER PRIMARY KEY, time INTEGER NOT NULL,
               user TEXT NOT NULL, service TEXT NOT NULL, client_ip TEXT,
               decision TEXT NOT NULL, reason TEXT NOT NULL) STRICT;
             CREATE INDEX audit_time ON audit(time);
             CREATE INDEX audit_user_time ON audit(user, time);
             INSERT INTO users VALUES ('alice', X'00112233445566778899', 'SHA1', 6, 30,
               10, 10, 5, NULL, 1234, 2, 100, NULL, 7, 200, '192.0.2.1', 'allow');
             INSERT INTO one_time_codes VALUES ('alice', 'backup', zeroblob(16),
               zeroblob(32), 10, NULL, 1);
             INSERT INTO audit VALUES (1, 10, 'alice', 'mfactl', NULL, 'enroll', 'admin');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    let alice = s.user(&n("alice")).unwrap().unwrap();
    assert_eq!(
        (
            alice.last_step,
            alice.failures,
            alice.login_count,
            alice.codes.len()
        ),
        (Some(1234), 2, 7, 1)
    );
    let log = s.audit(&AuditQuery::default()).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].reason.as_str(), log[0].detail.as_deref()),
        ("admin", Some("admin"))
    );
    assert_eq!(s.integrity_check().unwrap(), "ok");
    let c = Connection::open(&path).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let sql: String = c
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'users'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sql.contains("WITHOUT ROWID"), "{sql}");
    let gone: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'audit_user_time'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(gone, 0);
    // The codes still belong to the new table: removing the user removes them.
    c.execute_batch("PRAGMA foreign_keys=ON; DELETE FROM users WHERE name = 'alice';")
        .unwrap();
    let left: i64 = c
        .query_row("SELECT count(*) FROM one_time_codes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn a_version_2_audit_trail_gets_codes_and_details() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    drop(SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap());
    // Back to the version 2 audit table, with the free text admin actions wrote then.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE unlocks; DROP TABLE invites; DROP TABLE meta;
             ALTER TABLE audit DROP COLUMN detail;
             DROP TABLE source_failures;
             ALTER TABLE one_time_codes DROP COLUMN scheme;
             DROP TABLE store_key;
             INSERT INTO audit (time, user, service, client_ip, decision, reason) VALUES
               (1, 'a', 'mfactl', NULL, 'unlink', 'key removed'),
               (2, 'a', 'mfactl', NULL, 'unlock', 'lock cleared'),
               (3, 'a', 'mfactl', NULL, 'unlock', 'was not locked'),
               (4, 'a', 'mfactl', NULL, 'temp-access', 'issued, 1 use(s), valid 60s'),
               (5, 'a', 'mfactl', NULL, 'temp-access', 'revoked 2'),
               (6, 'a', 'mfactl', NULL, 'backup-codes', 'new set of 10'),
               (7, 'a', 'mfactl', NULL, 'import', 'users.csv:3'),
               (8, 'a', 'mfactl', NULL, 'enroll', 'mfactl'),
               (9, 'a', 'sshd', '10.0.0.1', 'enroll', 'self_enrolled'),
               (10, 'a', 'sshd', '10.0.0.1', 'allow', 'valid_code');
             PRAGMA user_version = 2;",
        )
        .unwrap();
    let s = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    let got: Vec<(String, Option<String>)> = s
        .audit(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .map(|e| (e.reason.to_string(), e.detail))
        .collect();
    let want = [
        ("key_removed", Some("key removed")),
        ("lock_cleared", Some("lock cleared")),
        ("not_locked", Some("was not locked")),
        ("issued", Some("issued, 1 use(s), valid 60s")),
        ("revoked", Some("revoked 2")),
        ("new_set", Some("new set of 10")),
        ("imported", Some("users.csv:3")),
        ("admin", Some("mfactl")),
        ("self_enrolled", None),
        ("valid_code", None),
    ];
    let want: Vec<(String, Option<String>)> = want
        .iter()
        .map(|(r, d)| (r.to_string(), d.map(str::to_string)))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_version_3_store_is_marked_then_sealed_by_the_first_open_with_a_key() {
    use mfa_core::Core;
    use mfa_model::OtcHash;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    drop(SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap());
    let seed = TotpSecret::from_base32("JBSWY3DPEHPK3PXPJBSWY3DP").unwrap();
    let salt = [9u8; 16];
    let hash = *mfa_core::verify::hash_code(OtcHash::Sha256V1, &salt, "87654321").unwrap();
    {
        // Back to version 3: no store_key, no scheme, seeds as their bare bytes.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "DROP TABLE store_key; ALTER TABLE one_time_codes DROP COLUMN scheme;
             DROP TABLE source_failures; DROP TABLE meta;
             DROP TABLE unlocks; DROP TABLE invites;
             PRAGMA user_version = 3;",
        )
        .unwrap();
        c.execute(
            "INSERT INTO users (name, secret, algorithm, digits, period, first_seen, mfa_created)
             VALUES ('alice', ?1, 'SHA1', 6, 30, 1, 1)",
            [seed.bytes()],
        )
        .unwrap();
        c.execute(
            "INSERT INTO one_time_codes (user, kind, salt, hash, created, uses_left)
             VALUES ('alice', 'backup', ?1, ?2, 1, 1)",
            params![salt.as_slice(), hash.as_slice()],
        )
        .unwrap();
    }
    let raw = |p: &Path| -> Vec<u8> {
        Connection::open(p)
            .unwrap()
            .query_row("SELECT secret FROM users", [], |r| r.get(0))
            .unwrap()
    };
    // The engine alone (no key): upgraded to the self-describing clear form.
    let s = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    assert_eq!(s.store_key_id().unwrap(), None);
    let mut want = vec![mfa_core::secret::FORM_CLEAR];
    want.extend_from_slice(seed.bytes());
    assert_eq!(raw(&path), want);
    let alice = s.user(&n("alice")).unwrap().unwrap();
    assert_eq!(alice.codes[0].scheme, OtcHash::Sha256V1);
    assert_eq!(
        Unsealed
            .unseal(&n("alice"), alice.secret.as_ref().unwrap())
            .unwrap(),
        seed
    );
    drop(s);

    // The first open with a key: sealed, recorded, audited; the user still logs in.
    let mut cfg = mfa_config::Config::default();
    cfg.store.path = path.clone();
    cfg.audit.syslog = false;
    let store = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    let core = Core::open(
        std::sync::Arc::new(cfg),
        Box::new(store),
        OpenMode::Existing,
        "test",
    );
    assert!(
        core.as_ref().is_err_and(
            |e| e.to_string().contains("v3.key") && e.to_string().contains("mfactl init")
        ),
        "no key file: {core:?}"
    );
    let mut cfg = mfa_config::Config::default();
    cfg.store.path = path.clone();
    cfg.audit.syslog = false;
    let store = SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap();
    let core = Core::open(
        std::sync::Arc::new(cfg),
        Box::new(store),
        OpenMode::Create,
        "test",
    )
    .unwrap();
    assert!(dir.path().join("v3.key").exists());
    let sealed = raw(&path);
    assert_eq!(sealed[0], mfa_core::secret::FORM_XCHACHA20POLY1305);
    assert!(
        !sealed
            .windows(seed.bytes().len())
            .any(|w| w == seed.bytes())
    );
    let log = core.store().audit(&AuditQuery::default()).unwrap();
    assert_eq!(log.last().map(|e| e.decision.as_str()), Some("seal"));
    let now = mfa_core::login::now();
    let code = mfa_core::totp::code_at_step(&seed, &params(), now / 30);
    let req = mfa_core::login::Request::new(
        &n("alice"),
        mfa_core::net::ClientAddr::Remote("192.0.2.9".parse().ok()),
        "t",
    );
    let d = core.login().verify_code(&req, &code).unwrap();
    assert_eq!(d.reason.code(), "valid_code");
    let d = core.login().verify_code(&req, "8765 4321").unwrap();
    assert_eq!(d.reason.code(), "backup_code");
}

#[test]
fn a_version_5_store_gets_the_meta_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    let s = SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap();
    s.transact(&[&n("Alice")], &mut |recs| {
        recs[0] = Some(UserRecord::new(&n("Alice"), params(), 1));
        Ok(vec![])
    })
    .unwrap();
    drop(s);
    // Back to version 5: no meta table (versions 4 and 5 came in between).
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE unlocks; DROP TABLE invites; DROP TABLE meta; PRAGMA user_version = 5;",
        )
        .unwrap();
    let s = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    assert_eq!(s.names_checked().unwrap(), None);
    assert_eq!(s.user_names().unwrap(), ["Alice"]);
    s.maintain_names(&mut |tx| {
        tx.set_names_checked("rules")?;
        Ok(Some(vec![]))
    })
    .unwrap();
    assert_eq!(s.names_checked().unwrap().as_deref(), Some("rules"));
    // `None` from the function writes nothing.
    s.maintain_names(&mut |tx| {
        tx.set_names_checked("other")?;
        tx.remove("Alice")?;
        Ok(None)
    })
    .unwrap();
    assert_eq!(s.names_checked().unwrap().as_deref(), Some("rules"));
    assert_eq!(s.user_names().unwrap(), ["Alice"]);
    let v: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    assert_eq!(s.integrity_check().unwrap(), "ok");
}

#[test]
fn a_version_6_store_gets_the_portal_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mfa.db");
    let s = SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap();
    let (mut r, _) = (UserRecord::new(&n("alice"), params(), 1), ());
    r.secret = Some(SealedSecret::from_stored(vec![0; 21]));
    s.transact(&[&n("alice")], &mut |recs| {
        recs[0] = Some(r.clone());
        Ok(vec![])
    })
    .unwrap();
    drop(s);
    Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE unlocks; DROP TABLE invites; PRAGMA user_version = 6;")
        .unwrap();
    let s = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    let back = s.user(&n("alice")).unwrap().unwrap();
    assert!(back.unlocks.is_empty());
    assert!(s.invites().unwrap().is_empty());
    let v: i64 = s
        .connect()
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
}

#[test]
fn a_version_7_store_gets_the_unenrolled_index_and_pruning_reads_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mfa.db");
    let s = SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap();
    // An enrolled user, one that only appeared long ago, one that appeared lately.
    let mut enrolled = UserRecord::new(&n("alice"), params(), 1);
    enrolled.secret = Some(SealedSecret::from_stored(vec![0; 21]));
    enrolled.mfa_created = Some(1);
    s.transact(&[&n("alice"), &n("bob"), &n("carol")], &mut |recs| {
        recs[0] = Some(enrolled.clone());
        recs[1] = Some(UserRecord::new(&n("bob"), params(), 1));
        recs[2] = Some(UserRecord::new(&n("carol"), params(), 1000));
        Ok(vec![])
    })
    .unwrap();
    drop(s);
    Connection::open(&path)
        .unwrap()
        .execute_batch("DROP INDEX users_unenrolled; PRAGMA user_version = 7;")
        .unwrap();
    let s = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    let c = s.connect().unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let mut st = c
        .prepare(&format!("EXPLAIN QUERY PLAN {PRUNE_UNENROLLED}"))
        .unwrap();
    let plan: Vec<String> = st
        .query_map([500], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        plan.iter()
            .any(|p| p.contains("USING INDEX users_unenrolled")),
        "{plan:?}"
    );
    assert!(!plan.iter().any(|p| p == "SCAN users"), "{plan:?}");
    assert_eq!(s.prune_unenrolled(500).unwrap(), 1);
    assert_eq!(s.user_names().unwrap(), ["alice", "carol"]);
}

#[test]
fn a_version_8_store_gets_the_name_keys_filled_in_by_the_name_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mfa.db");
    let s = SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap();
    s.transact(&[&n("alice"), &n("bob")], &mut |recs| {
        recs[0] = Some(UserRecord::new(&n("alice"), params(), 1));
        recs[1] = Some(UserRecord::new(&n("bob"), params(), 1));
        Ok(vec![])
    })
    .unwrap();
    drop(s);
    // Version 8: no name_key, and names checked under the old rules.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP INDEX users_name_key; ALTER TABLE users DROP COLUMN name_key;
             INSERT INTO meta (key, value) VALUES ('name_rules', 'names-1 case=fold domains=');
             PRAGMA user_version = 8;",
        )
        .unwrap();
    let s = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    let c = s.connect().unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let key = mfa_model::lookalike_key("alice");
    // The rows are there, without keys yet: a look-up returns them all, for the caller
    // to check. It goes through the index, not over every user.
    assert_eq!(s.names_with_key(&key).unwrap(), ["alice", "bob"]);
    let mut st = c
        .prepare(&format!("EXPLAIN QUERY PLAN {NAMES_WITH_KEY}"))
        .unwrap();
    let plan: Vec<String> = st
        .query_map([&key], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        plan.iter().any(|p| p.contains("users_name_key")),
        "{plan:?}"
    );
    assert!(
        !plan.iter().any(|p| p.starts_with("SCAN users")),
        "{plan:?}"
    );
    drop(st);
    drop(c);
    // The rules changed (names-2), so the first open's name check fills them in.
    let mut cfg = mfa_config::Config::default();
    cfg.audit.syslog = false;
    let core = mfa_core::Core::with_sealer(
        std::sync::Arc::new(cfg),
        Box::new(s),
        Box::new(Unsealed),
        "test",
    );
    core.check_names(mfa_core::names::NameCheck::IfRulesChanged)
        .unwrap();
    let again = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    assert_eq!(again.names_with_key(&key).unwrap(), ["alice"]);
    assert_eq!(
        again
            .names_with_key(&mfa_model::lookalike_key("bob"))
            .unwrap(),
        ["bob"]
    );
}

#[test]
fn damaged_rows_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let s = SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap();
    s.transact(&[&n("bob")], &mut |recs| {
        recs[0] = Some(UserRecord::new(&n("bob"), params(), 1));
        Ok(vec![])
    })
    .unwrap();
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE users SET algorithm = 'MD5'", [])
        .unwrap();
    let e = s.user(&n("bob")).unwrap_err().to_string();
    assert!(
        e.contains("\"bob\"") && e.contains("algorithm") && e.contains("MD5"),
        "{e}"
    );
}

/// A version 9 store (before push approval) gets push approval's tables, empty, and its
/// users keep working; one taken back to version 9 by hand with the tables still there
/// (`IF NOT EXISTS`) opens too.
#[test]
fn a_version_9_store_gets_the_push_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mfa.db");
    let s = SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap();
    s.transact(&[&n("alice")], &mut |recs| {
        recs[0] = Some(UserRecord::new(&n("alice"), params(), 1));
        Ok(vec![])
    })
    .unwrap();
    drop(s);
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE push_devices; DROP TABLE push_requests; DROP TABLE push_blocks;
             PRAGMA user_version = 9;",
        )
        .unwrap();
    let s = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    let c = s.connect().unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 12);
    for table in ["push_devices", "push_requests", "push_blocks"] {
        let n: i64 = c
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    let idx: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'push_requests_pending'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(idx, 1);
    drop(c);
    assert!(s.push_devices(&n("alice")).unwrap().is_empty());
    assert_eq!(s.user_names().unwrap(), ["alice"]);
    drop(s);
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 9;")
        .unwrap();
    let s = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    assert!(s.claim_push_outbox(0, 10, 30).unwrap().is_empty());
}

/// Issue 24: a version 11 store (challenges in each daemon's memory) gets the table of
/// pending challenges, empty, usable at once; one taken back by hand with the table still
/// there opens too.
#[test]
fn a_version_11_store_gets_the_challenges_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mfa.db");
    let s = SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap();
    drop(s);
    Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE challenges; PRAGMA user_version = 11;")
        .unwrap();
    let s = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    let c = s.connect().unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 12);
    for index in ["challenges_expires", "challenges_asker"] {
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = ?1",
                [index],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "{index}");
    }
    drop(c);
    assert_eq!(s.live_challenges(0).unwrap(), 0);
    let row = mfa_store::ChallengeRow {
        state_hash: [3; 32],
        user: "alice".into(),
        client: "vpn".into(),
        host: String::new(),
        service: "vpn".into(),
        client_ip: "unknown".into(),
        created: 1,
        expires: 2,
        push_id: None,
        push_number: None,
        push_expires: None,
    };
    let limits = mfa_store::ChallengeLimits {
        total: 16,
        per_client: 12,
        per_host: 4,
        per_user: 4,
    };
    assert!(s.put_challenge(&row, &limits).unwrap());
    drop(s);
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 11;")
        .unwrap();
    let s = SqliteStore::open(&path, OpenMode::Existing, Duration::from_secs(1)).unwrap();
    assert_eq!(s.take_challenge(&[3; 32]).unwrap(), Some(row));
}

/// The bundled SQLite is built without what the product does not use (`.cargo/config.toml`,
/// `LIBSQLITE3_FLAGS`): full-text search and R-trees registered their modules on every new
/// connection, which every PAM login opens (docs/BENCHMARKS.md, issue 25), and no SQL may
/// load a shared library. A build that lost the flags (a `cargo` run from elsewhere, a
/// `LIBSQLITE3_FLAGS` of its own) fails here rather than quietly bringing them back.
#[test]
fn bundled_sqlite_has_no_extension_loading_and_no_unused_modules() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(
        &dir.path().join("mfa.db"),
        OpenMode::Create,
        Duration::from_secs(1),
    )
    .unwrap();
    let options: Vec<String> = s
        .with_conn(|c| {
            let mut st = c.prepare("PRAGMA compile_options").unwrap();
            let rows = st.query_map([], |r| r.get(0)).unwrap();
            Ok(rows.map(Result::unwrap).collect())
        })
        .unwrap();
    for wanted in ["OMIT_LOAD_EXTENSION", "DEFAULT_MEMSTATUS=0"] {
        assert!(
            options.iter().any(|o| o == wanted),
            "{wanted} not in {options:?}"
        );
    }
    for unwanted in [
        "ENABLE_FTS3",
        "ENABLE_FTS5",
        "ENABLE_RTREE",
        "ENABLE_DBSTAT_VTAB",
        "SOUNDEX",
    ] {
        assert!(
            !options.iter().any(|o| o == unwanted),
            "{unwanted} in {options:?}"
        );
    }
    // What the store does use stays: STAT4 (see `connect`).
    assert!(options.iter().any(|o| o == "ENABLE_STAT4"), "{options:?}");
    s.with_conn(|c| {
        let fts = c.execute_batch("CREATE VIRTUAL TABLE t USING fts5(x)");
        assert!(fts.is_err(), "fts5 is still built in");
        let load: Result<String, _> =
            c.query_row("SELECT load_extension('libm.so.6')", [], |r| r.get(0));
        assert!(load.is_err(), "load_extension() is still there");
        Ok(())
    })
    .unwrap();
}
