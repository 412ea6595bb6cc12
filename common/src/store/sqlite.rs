//! The embedded store: one SQLite database in WAL mode shared by the PAM module, the daemon
//! and `mfactl`. Writes take the database lock up front (`BEGIN IMMEDIATE`), so a
//! read-then-write never races another process's write.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use mfa_config::files::{self, FileProblem, Purpose};
use mfa_model::{AuditEvent, Invite, SealedSecret, UserName, UserRecord};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};

use super::rows::{self, CodeRow, InviteRow, SourceRow, UnlockRow, UserRow};
use super::{
    Abort, AuditQuery, GroupCommit, NameTx, NamesFn, ResealFn, SchemaError, Store, StoreError,
    StoreFacts, TxFn, UserFn,
};
use crate::secret::{self, KEY_ID_BYTES, KeyId};

macro_rules! user_columns {
    () => {
        "name, secret, algorithm, digits, period, mfa_created, mfa_changed, first_seen, grace_started, last_step, failures, first_failure, locked_until, login_count, last_login, last_ip, last_outcome"
    };
}

/// Version 5: wrong codes counted per user and client address as well as per user.
macro_rules! source_failures_table {
    () => {
        "CREATE TABLE source_failures (
    user          TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    source        TEXT NOT NULL,
    failures      INTEGER NOT NULL,
    first_failure INTEGER NOT NULL,
    locked_until  INTEGER
) STRICT;
CREATE INDEX source_failures_user ON source_failures(user);
"
    };
}

/// The version 2 `users` table under `name` (the schema, and the copy the upgrade fills).
macro_rules! users_table {
    ($name:literal) => {
        concat!(
            "CREATE TABLE ",
            $name,
            " (
    name          TEXT PRIMARY KEY NOT NULL,
    secret        BLOB,
    algorithm     TEXT NOT NULL,
    digits        INTEGER NOT NULL,
    period        INTEGER NOT NULL,
    mfa_created   INTEGER,
    mfa_changed   INTEGER,
    first_seen    INTEGER NOT NULL,
    grace_started INTEGER,
    last_step     INTEGER,
    failures      INTEGER NOT NULL DEFAULT 0,
    first_failure INTEGER,
    locked_until  INTEGER,
    login_count   INTEGER NOT NULL DEFAULT 0,
    last_login    INTEGER,
    last_ip       TEXT,
    last_outcome  TEXT
) STRICT, WITHOUT ROWID;"
        )
    };
}

/// Small facts about the store as a whole, one row each: `name_rules` holds the `[users]`
/// rules (`NameRules::fingerprint`) the stored names were last checked against.
macro_rules! meta_table {
    () => {
        "CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
"
    };
}

/// The self-service portal's tables (version 7, [`MIGRATE_ADD_PORTAL`]):
/// - `unlocks`: remembered networks, a user's client addresses unlocked on the portal with a
///   code (`[policy] remember`); part of the user's record, removed with it.
/// - `invites`: one-time enrolment links; only the SHA-256 of the token is kept. Not tied to
///   a `users` row: an invite may name a user the store has not seen yet.
macro_rules! portal_tables {
    () => {
        "CREATE TABLE unlocks (
    user    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    ip      TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
) STRICT;
CREATE INDEX unlocks_user ON unlocks(user);
CREATE TABLE invites (
    hash    BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),
    user    TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    used    INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX invites_user ON invites(user);
"
    };
}

/// Version 8: the names that never enrolled, by when they were first seen, so the pruning of
/// the ones that only ever appeared (`Store::prune_unenrolled`, about one operation in 512)
/// reads those rows alone. It scanned every user, holding the write lock: 40 ms at 300,000
/// users and 150 ms at a million, about twice a second in the daemon's writer at half of its
/// peak, which was the whole tail of the soak (docs/BENCHMARKS.md). `login_count` is not in
/// the condition: it changes at every login, and on PostgreSQL an indexed column would make
/// every login's update a non-HOT one.
macro_rules! unenrolled_index {
    ($create:literal) => {
        concat!(
            $create,
            " users_unenrolled ON users(first_seen) WHERE secret IS NULL AND mfa_created IS NULL;\n"
        )
    };
}

/// Version 9: `users.name_key`, each name's look-alike key (`mfa_model::lookalike_key`),
/// indexed, so that a new name is checked against the names that look like it with one
/// indexed read (`Store::names_with_key`) instead of a scan of every user. Added with
/// `ALTER TABLE` on a new store too, so that a new store and an upgraded one are the same
/// table. Written when a row is inserted; the rows of an upgraded store get theirs from
/// the name check at the first open (`mfa_common::names`).
macro_rules! name_key_column {
    () => {
        "ALTER TABLE users ADD COLUMN name_key TEXT;\n"
    };
}

/// The index of [`name_key_column!`]; `$create` as in [`unenrolled_index!`].
macro_rules! name_key_index {
    ($create:literal) => {
        concat!($create, " users_name_key ON users(name_key);\n")
    };
}

const SCHEMA_VERSION: i64 = 9;

/// WAL size (4 KiB pages) past which the daemon's writer lets the log start over.
const RESTART_FRAMES: u64 = 4096;

/// Version 2: `users` is WITHOUT ROWID (a login looks its user up in one B-tree instead of
/// an index and then the table), and the audit trail has no (user, time) index, whose
/// random page per decision was a third of a busy RADIUS server's writes; `mfactl log
/// --user` scans instead. Version 3: the audit trail's `reason` holds only stable codes;
/// free text moved to `detail`. Version 4: every stored seed starts with its form byte
/// (`secret::FORM_*`), `store_key` holds the id of the key the seeds are sealed under (no row:
/// never had a key, seeds in the clear form), and one-time codes name their hash `scheme`.
/// Version 5: `source_failures`, wrong codes per user and client address.
/// Version 6: `meta` (see [`MIGRATE_ADD_META`]).
/// Version 7: `unlocks` and `invites`, the portal's (see [`MIGRATE_ADD_PORTAL`]).
/// Version 8: `users_unenrolled` (see [`MIGRATE_ADD_UNENROLLED_INDEX`]).
/// Version 9: `users.name_key` (see [`migrate_add_name_key`]).
const SCHEMA: &str = concat!(
    users_table!("users"),
    "
CREATE TABLE one_time_codes (
    user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('backup', 'temporary')),
    salt      BLOB NOT NULL,
    hash      BLOB NOT NULL,
    created   INTEGER NOT NULL,
    expires   INTEGER,
    uses_left INTEGER NOT NULL,
    scheme    INTEGER NOT NULL DEFAULT 1
) STRICT;
CREATE INDEX one_time_codes_user ON one_time_codes(user);
CREATE TABLE store_key (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    key_id BLOB NOT NULL
) STRICT;
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    time      INTEGER NOT NULL,
    user      TEXT NOT NULL,
    service   TEXT NOT NULL,
    client_ip TEXT,
    decision  TEXT NOT NULL,
    reason    TEXT NOT NULL,
    detail    TEXT
) STRICT;
CREATE INDEX audit_time ON audit(time);
",
    source_failures_table!(),
    meta_table!(),
    portal_tables!(),
    unenrolled_index!("CREATE INDEX"),
    name_key_column!(),
    name_key_index!("CREATE INDEX")
);

/// Version 4 to 5: the per-address counters start empty.
const MIGRATE_V4_V5: &str = source_failures_table!();

/// The upgrade step that adds `meta` (the user-name check; version 5 to 6). Named for what it
/// does, not for its number, so that it can be renumbered beside other steps at a merge.
const MIGRATE_ADD_META: &str = meta_table!();

/// The upgrade step that adds the portal's `unlocks` and `invites` (version 6 to 7). Named for
/// what it does, like [`MIGRATE_ADD_META`], so that it can be renumbered at a merge.
const MIGRATE_ADD_PORTAL: &str = portal_tables!();

/// The upgrade step that indexes the names that never enrolled (version 7 to 8). `IF NOT
/// EXISTS`: a store taken back to an older version by hand keeps the index it has.
const MIGRATE_ADD_UNENROLLED_INDEX: &str = unenrolled_index!("CREATE INDEX IF NOT EXISTS");

/// The upgrade step that adds the look-alike key of each name (version 8 to 9): empty, filled
/// by the name check. Like [`MIGRATE_ADD_UNENROLLED_INDEX`], a store taken back to an older
/// version by hand keeps the column and index it has.
fn migrate_add_name_key(tx: &Connection) -> Result<(), StoreError> {
    let has: bool = tx.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('users') WHERE name = 'name_key'",
        [],
        |r| r.get(0),
    )?;
    if !has {
        tx.execute_batch(name_key_column!())?;
    }
    tx.execute_batch(name_key_index!("CREATE INDEX IF NOT EXISTS"))?;
    Ok(())
}

/// Deletes the records of names that never enrolled, never logged in and hold no one-time
/// code, first seen before `?1`; through `users_unenrolled`.
const PRUNE_UNENROLLED: &str =
    "DELETE FROM users WHERE secret IS NULL AND mfa_created IS NULL AND login_count = 0
   AND first_seen < ?1
   AND NOT EXISTS (SELECT 1 FROM one_time_codes o WHERE o.user = users.name)";

/// The `meta` key of the name rules the stored names were last checked against.
const META_NAME_RULES: &str = "name_rules";

/// Version 1 to 2, in one transaction, with foreign keys off so that replacing `users`
/// leaves `one_time_codes` alone (SQLite's procedure for changing a table's format).
const MIGRATE_V1_V2: &str = concat!(
    users_table!("users_v2"),
    "\nINSERT INTO users_v2 SELECT ",
    user_columns!(),
    " FROM users;
DROP TABLE users;
ALTER TABLE users_v2 RENAME TO users;
DROP INDEX IF EXISTS audit_user_time;
"
);

/// Version 2 to 3: the free text that admin actions kept in `reason` moves to `detail`, and
/// `reason` gets the stable code the action now writes.
const MIGRATE_V2_V3: &str = "
ALTER TABLE audit ADD COLUMN detail TEXT;
UPDATE audit SET detail = reason, reason = CASE
    WHEN decision = 'unlink' THEN 'key_removed'
    WHEN decision = 'unlock' AND reason = 'lock cleared' THEN 'lock_cleared'
    WHEN decision = 'unlock' THEN 'not_locked'
    WHEN decision = 'temp-access' AND reason LIKE 'revoked%' THEN 'revoked'
    WHEN decision = 'temp-access' THEN 'issued'
    WHEN decision = 'backup-codes' THEN 'new_set'
    WHEN decision = 'import' THEN 'imported'
    ELSE 'admin' END
 WHERE decision IN ('unlink', 'unlock', 'temp-access', 'backup-codes', 'import')
    OR (decision IN ('enroll', 're-enroll') AND reason <> 'self_enrolled');
";

/// Version 3 to 4: clear seeds get the clear form byte (0x00), so no later reader has to
/// guess whether a row is encrypted; the first open with a key file seals them (see
/// `Core::open`). Codes hashed before this version are SHA-256 (scheme 1).
const MIGRATE_V3_V4: &str = "
ALTER TABLE one_time_codes ADD COLUMN scheme INTEGER NOT NULL DEFAULT 1;
CREATE TABLE store_key (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    key_id BLOB NOT NULL
) STRICT;
UPDATE users SET secret = unhex('00' || hex(secret)) WHERE secret IS NOT NULL;
";

/// How `SqliteStore::open` treats a missing database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the database (and its directory, 0700) if missing: `mfactl`, the daemon.
    Create,
    /// Fail if missing: the PAM module, which must fail closed rather than start afresh.
    Existing,
}

pub struct SqliteStore {
    path: PathBuf,
    busy_timeout: Duration,
    /// Idle connections; one per concurrent caller, opened on demand.
    pool: Mutex<Vec<Connection>>,
    /// The one connection that commits without fsync (`synchronous=NORMAL`), kept apart so
    /// no other caller ever gets it from the pool.
    deferred: Mutex<Option<Connection>>,
    /// The directory entry of the WAL file has been made durable (first `sync`).
    dir_synced: std::sync::atomic::AtomicBool,
    /// Set once the deferred-commit connection exists: checkpoints are driven by its caller
    /// (the daemon's housekeeping thread), so no connection of this process checkpoints on
    /// its own. SQLite's automatic checkpoint runs in the committing thread: a pruning or an
    /// admin call committed on the daemon's writer thread would hold its batch behind a copy
    /// of the WAL and two fsyncs.
    driven_checkpoints: std::sync::atomic::AtomicBool,
}

/// A WAL up to this long (about nine PAM logins) is left for the next process when the
/// store closes; a longer one is checkpointed into the database and removed.
///
/// The last connection to close checkpoints the WAL and removes it (SQLite's default): for
/// the PAM module on a host without the daemon, every login then created the WAL (a header
/// fsync and a directory fsync), and at its end copied it back (two more fsyncs) and
/// unlinked it: 4 of its 5 fsyncs and most of its cost over pam_permit (docs/BENCHMARKS.md,
/// PAM). Leaving a short WAL costs the next process a read of it (the WAL index is rebuilt
/// from it), so past this length the closing process checkpoints as before and the log
/// starts over. Never leaving it (an earlier version) let the WAL grow without end, and
/// every login read all of it.
const LEAVE_WAL_BYTES: u64 = 32 * (4096 + 24) + 32;

impl Drop for SqliteStore {
    fn drop(&mut self) {
        let short = fs::metadata(self.wal_path()).is_ok_and(|m| m.len() <= LEAVE_WAL_BYTES);
        if !short {
            return;
        }
        let flag = rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE;
        if let Ok(pool) = self.pool.get_mut() {
            for c in pool.iter() {
                let _ = c.set_db_config(flag, true);
            }
        }
        if let Ok(Some(c)) = self.deferred.get_mut().map(|d| d.as_ref()) {
            let _ = c.set_db_config(flag, true);
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    pub fn open(path: &Path, mode: OpenMode, busy_timeout: Duration) -> Result<Self, StoreError> {
        // Not `path.exists()`: a directory this user cannot search makes that false, and a
        // screen locker running as the user would log "does not exist" for a store that is
        // only root's.
        match fs::metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if mode == OpenMode::Existing {
                    return Err(StoreError::Missing {
                        path: path.to_path_buf(),
                    });
                }
                create_file(path)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(StoreError::File(FileProblem::Denied {
                    path: path.to_path_buf(),
                    purpose: Purpose::Store,
                }));
            }
            Err(e) => return Err(io_error(e, path)),
        }
        // Nobody but root (or the caller) may be able to change the decisions' ground truth.
        files::check_store(path).map_err(StoreError::File)?;
        let store = Self {
            path: path.to_path_buf(),
            busy_timeout,
            pool: Mutex::new(Vec::new()),
            deferred: Mutex::new(None),
            driven_checkpoints: std::sync::atomic::AtomicBool::new(false),
            dir_synced: std::sync::atomic::AtomicBool::new(false),
        };
        let conn = store.connect()?;
        migrate(&conn)?;
        store.put_back(conn);
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sqlite_error(&format!("opening {}", self.path.display()), e))?;
        conn.busy_timeout(self.busy_timeout)?;
        // WAL: readers never block the writer. synchronous=FULL: a committed decision
        // survives power loss, not just a killed process.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Engine {
                context: self.path.display().to_string(),
                source: format!("cannot switch to WAL mode (it stays {mode:?})").into(),
            });
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        if self
            .driven_checkpoints
            .load(std::sync::atomic::Ordering::Acquire)
        {
            conn.execute_batch("PRAGMA wal_autocheckpoint=0")?;
        }
        // Whether the last connection to close checkpoints the WAL: see `LEAVE_WAL_BYTES`.
        // Where the daemon holds the store open, no PAM connection is the last one, and the
        // daemon's writer keeps the WAL bounded.
        // The bundled SQLite has STAT4, which re-compiles a statement whenever a parameter
        // compared with an indexed column changes (every user name): that was half the CPU
        // of a login. Our queries have one sensible plan; keep it.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        Ok(conn)
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&mut conn);
        self.put_back(conn);
        out
    }

    /// Runs `f` on the deferred-commit connection (see `Store::transact_deferred`).
    fn with_deferred_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.deferred.lock().map_err(|_| {
            StoreError::Aborted(Abort::Bug("the deferred-commit connection is poisoned"))
        })?;
        let conn = match &mut *slot {
            Some(c) => c,
            None => {
                let c = self.connect()?;
                // WAL with NORMAL: a commit writes the WAL but does not fsync it; `sync`
                // does, before anything is acknowledged. Checkpoints still sync.
                // No automatic checkpoint either: copying the WAL into the database (and its
                // fsyncs) would stall every batch behind it. The caller drives `checkpoint`.
                // An 8 MiB page cache (the default is 2): this connection touches every
                // user's page in turn, and re-reading them cost a tenth of its time.
                c.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=-8192")?;
                // From now on every connection leaves checkpoints to the caller; the idle
                // ones opened before are closed, so none is handed out again.
                self.driven_checkpoints
                    .store(true, std::sync::atomic::Ordering::Release);
                if let Ok(mut p) = self.pool.lock() {
                    p.clear();
                }
                slot.insert(c)
            }
        };
        f(conn)
    }

    fn put_back(&self, conn: Connection) {
        if let Ok(mut p) = self.pool.lock()
            && p.len() < 16
        {
            p.push(conn);
        }
    }

    /// Integrity check of the whole file (`mfactl` and the crash test use it).
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.with_conn(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))
    }
}

fn io_error(e: std::io::Error, what: &Path) -> StoreError {
    StoreError::Io {
        path: what.to_path_buf(),
        source: e,
    }
}

/// SQLite's result codes sorted into what a caller can act on: wait (busy), restore
/// (corrupt), or read the message.
fn sqlite_error(context: &str, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => StoreError::Busy { source: e.into() },
        Some(C::DatabaseCorrupt | C::NotADatabase) => StoreError::Corrupt { source: e.into() },
        _ => StoreError::Engine {
            context: context.into(),
            source: e.into(),
        },
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        sqlite_error("sqlite", e)
    }
}

/// The database file is created 0600 and its directory 0700 before SQLite touches them;
/// SQLite gives the -wal and -shm files the database file's mode.
fn create_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_error(e, dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error(e, dir))?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(io_error(e, path))
            }
        })
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match version {
        SCHEMA_VERSION => Ok(()),
        0..=8 => {
            // Foreign keys can only be switched off outside a transaction (see
            // MIGRATE_V1_V2); every connection turns them on again in `connect`.
            if version == 1 {
                conn.execute_batch("PRAGMA foreign_keys=OFF")?;
            }
            let done = upgrade(conn);
            conn.execute_batch("PRAGMA foreign_keys=ON")?;
            done
        }
        v if v > SCHEMA_VERSION => Err(StoreError::Schema(SchemaError::Newer {
            found: v,
            known: SCHEMA_VERSION,
        })),
        v => Err(StoreError::Schema(SchemaError::Unknown { found: v })),
    }
}

/// Creates or upgrades the schema in one write transaction. Another process may be doing
/// the same at the same moment: take the write lock, then look at the version again.
fn upgrade(conn: &Connection) -> Result<(), StoreError> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match v {
        0 => tx.execute_batch(SCHEMA)?,
        1 => {
            tx.execute_batch(MIGRATE_V1_V2)?;
            let orphans: i64 =
                tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })?;
            if orphans != 0 {
                return Err(StoreError::Schema(SchemaError::Orphans {
                    from: 1,
                    rows: orphans,
                }));
            }
            tx.execute_batch(MIGRATE_V2_V3)?;
            tx.execute_batch(MIGRATE_V3_V4)?;
            tx.execute_batch(MIGRATE_V4_V5)?;
            tx.execute_batch(MIGRATE_ADD_META)?;
            tx.execute_batch(MIGRATE_ADD_PORTAL)?;
            tx.execute_batch(MIGRATE_ADD_UNENROLLED_INDEX)?;
            migrate_add_name_key(&tx)?;
        }
        2 => {
            tx.execute_batch(MIGRATE_V2_V3)?;
            tx.execute_batch(MIGRATE_V3_V4)?;
            tx.execute_batch(MIGRATE_V4_V5)?;
            tx.execute_batch(MIGRATE_ADD_META)?;
            tx.execute_batch(MIGRATE_ADD_PORTAL)?;
            tx.execute_batch(MIGRATE_ADD_UNENROLLED_INDEX)?;
            migrate_add_name_key(&tx)?;
        }
        3 => {
            tx.execute_batch(MIGRATE_V3_V4)?;
            tx.execute_batch(MIGRATE_V4_V5)?;
            tx.execute_batch(MIGRATE_ADD_META)?;
            tx.execute_batch(MIGRATE_ADD_PORTAL)?;
            tx.execute_batch(MIGRATE_ADD_UNENROLLED_INDEX)?;
            migrate_add_name_key(&tx)?;
        }
        4 => {
            tx.execute_batch(MIGRATE_V4_V5)?;
            tx.execute_batch(MIGRATE_ADD_META)?;
            tx.execute_batch(MIGRATE_ADD_PORTAL)?;
            tx.execute_batch(MIGRATE_ADD_UNENROLLED_INDEX)?;
            migrate_add_name_key(&tx)?;
        }
        5 => {
            tx.execute_batch(MIGRATE_ADD_META)?;
            tx.execute_batch(MIGRATE_ADD_PORTAL)?;
            tx.execute_batch(MIGRATE_ADD_UNENROLLED_INDEX)?;
            migrate_add_name_key(&tx)?;
        }
        6 => {
            tx.execute_batch(MIGRATE_ADD_PORTAL)?;
            tx.execute_batch(MIGRATE_ADD_UNENROLLED_INDEX)?;
            migrate_add_name_key(&tx)?;
        }
        7 => {
            tx.execute_batch(MIGRATE_ADD_UNENROLLED_INDEX)?;
            migrate_add_name_key(&tx)?;
        }
        8 => migrate_add_name_key(&tx)?,
        // Done meanwhile by another process.
        SCHEMA_VERSION => return Ok(()),
        other => return Err(StoreError::Schema(SchemaError::Unknown { found: other })),
    }
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    tx.commit()?;
    Ok(())
}

/// The columns a login changes (see `save`).
const UPDATE_LOGIN_COLUMNS: &str = "UPDATE users SET grace_started=?2, last_step=?3, failures=?4,
   first_failure=?5, locked_until=?6, login_count=?7, last_login=?8, last_ip=?9, last_outcome=?10
 WHERE name = ?1";
const SELECT_USER: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE name = ?1");
const SELECT_USERS: &str = concat!("SELECT ", user_columns!(), " FROM users ORDER BY name");
/// The name never changes in a row (a rename is a remove and a put), so neither does its
/// `name_key`: written with the row, left alone by the update.
const UPSERT_USER: &str = concat!(
    "INSERT INTO users (",
    user_columns!(),
    ", name_key) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)
     ON CONFLICT(name) DO UPDATE SET secret=excluded.secret, algorithm=excluded.algorithm, digits=excluded.digits,
       period=excluded.period, mfa_created=excluded.mfa_created, mfa_changed=excluded.mfa_changed,
       first_seen=excluded.first_seen, grace_started=excluded.grace_started, last_step=excluded.last_step,
       failures=excluded.failures, first_failure=excluded.first_failure, locked_until=excluded.locked_until,
       login_count=excluded.login_count, last_login=excluded.last_login, last_ip=excluded.last_ip,
       last_outcome=excluded.last_outcome"
);

fn read_row(row: &Row<'_>) -> Result<UserRow, rusqlite::Error> {
    Ok(UserRow {
        name: row.get(0)?,
        secret: row.get(1)?,
        algorithm: row.get(2)?,
        digits: row.get(3)?,
        period: row.get(4)?,
        mfa_created: row.get(5)?,
        mfa_changed: row.get(6)?,
        first_seen: row.get(7)?,
        grace_started: row.get(8)?,
        last_step: row.get(9)?,
        failures: row.get(10)?,
        first_failure: row.get(11)?,
        locked_until: row.get(12)?,
        login_count: row.get(13)?,
        last_login: row.get(14)?,
        last_ip: row.get(15)?,
        last_outcome: row.get(16)?,
    })
}

/// One child table read in `user` order beside the users: [`Merge::take`] hands out the
/// rows of one user, the users asked in the same (byte-wise, SQLite's BINARY) order.
struct Merge<'s, T> {
    rows: rusqlite::Rows<'s>,
    read: fn(&Row<'_>) -> Result<T, rusqlite::Error>,
    next: Option<(String, T)>,
}

impl<'s, T> Merge<'s, T> {
    fn new(
        mut rows: rusqlite::Rows<'s>,
        read: fn(&Row<'_>) -> Result<T, rusqlite::Error>,
    ) -> Result<Self, StoreError> {
        let next = Self::advance(&mut rows, read)?;
        Ok(Merge { rows, read, next })
    }

    fn advance(
        rows: &mut rusqlite::Rows<'s>,
        read: fn(&Row<'_>) -> Result<T, rusqlite::Error>,
    ) -> Result<Option<(String, T)>, StoreError> {
        Ok(match rows.next()? {
            Some(r) => Some((r.get(0)?, read(r)?)),
            None => None,
        })
    }

    fn take(&mut self, user: &str) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        // Rows of a user that is not there (the foreign keys allow none) are passed over.
        while let Some((u, _)) = &self.next
            && u.as_str() <= user
        {
            let this = u.as_str() == user;
            if let Some((_, row)) = self.next.take()
                && this
            {
                out.push(row);
            }
            self.next = Self::advance(&mut self.rows, self.read)?;
        }
        Ok(out)
    }
}

fn read_codes(conn: &Connection, user: &str) -> Result<Vec<CodeRow>, StoreError> {
    let mut st = conn.prepare_cached("SELECT kind, salt, hash, created, expires, uses_left, scheme FROM one_time_codes WHERE user = ?1 ORDER BY rowid")?;
    let rows = st.query_map([user], |r| code_row(r, 0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A `one_time_codes` row whose columns start at `at` (kind, salt, hash, created, expires,
/// uses_left, scheme).
fn code_row(r: &Row<'_>, at: usize) -> Result<CodeRow, rusqlite::Error> {
    Ok(CodeRow {
        kind: r.get(at)?,
        salt: r.get(at + 1)?,
        hash: r.get(at + 2)?,
        created: r.get(at + 3)?,
        expires: r.get(at + 4)?,
        uses_left: r.get(at + 5)?,
        scheme: r.get(at + 6)?,
    })
}

/// A `source_failures` row from `at` (source, failures, first_failure, locked_until).
fn source_row(r: &Row<'_>, at: usize) -> Result<SourceRow, rusqlite::Error> {
    Ok(SourceRow {
        source: r.get(at)?,
        failures: r.get(at + 1)?,
        first_failure: r.get(at + 2)?,
        locked_until: r.get(at + 3)?,
    })
}

/// An `unlocks` row from `at` (ip, created, expires).
fn unlock_row(r: &Row<'_>, at: usize) -> Result<UnlockRow, rusqlite::Error> {
    Ok(UnlockRow {
        ip: r.get(at)?,
        created: r.get(at + 1)?,
        expires: r.get(at + 2)?,
    })
}

fn read_sources(conn: &Connection, user: &str) -> Result<Vec<SourceRow>, StoreError> {
    let mut st = conn.prepare_cached("SELECT source, failures, first_failure, locked_until FROM source_failures WHERE user = ?1 ORDER BY rowid")?;
    let rows = st.query_map([user], |r| source_row(r, 0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn read_unlocks(conn: &Connection, user: &str) -> Result<Vec<UnlockRow>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT ip, created, expires FROM unlocks WHERE user = ?1 ORDER BY rowid",
    )?;
    let rows = st.query_map([user], |r| unlock_row(r, 0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const INVITE_COLUMNS: &str = "SELECT hash, user, created, expires, used FROM invites";

fn read_invite(r: &Row<'_>) -> Result<InviteRow, rusqlite::Error> {
    Ok(InviteRow {
        hash: r.get(0)?,
        user: r.get(1)?,
        created: r.get(2)?,
        expires: r.get(3)?,
        used: r.get(4)?,
    })
}

fn load(conn: &Connection, name: &str) -> Result<Option<UserRecord>, StoreError> {
    let mut st = conn.prepare_cached(SELECT_USER)?;
    match st.query_row([name], read_row).optional()? {
        Some(row) => Ok(Some(rows::decode(
            row,
            read_codes(conn, name)?,
            read_sources(conn, name)?,
            read_unlocks(conn, name)?,
        )?)),
        None => Ok(None),
    }
}

fn save(
    conn: &Connection,
    rec: &UserRecord,
    before: Option<&UserRecord>,
) -> Result<(), StoreError> {
    if before == Some(rec) {
        return Ok(());
    }
    if let Some(sealed) = &rec.secret
        && before.and_then(|b| b.secret.as_ref()) != Some(sealed)
    {
        check_store_key(conn, &rec.name, sealed)?;
    }
    let name = rec.name.as_str();
    match before {
        // A login changed only its own columns (replay marker, counters, statistics): the
        // narrower statement binds ten values instead of seventeen, copies no key, and skips
        // the upsert's insert attempt. Most of the daemon's writes are these.
        Some(b)
            if b.name == rec.name
                && b.secret == rec.secret
                && b.params == rec.params
                && b.mfa_created == rec.mfa_created
                && b.mfa_changed == rec.mfa_changed
                && b.first_seen == rec.first_seen =>
        {
            let n = conn.prepare_cached(UPDATE_LOGIN_COLUMNS)?.execute(params![
                name,
                rec.grace_started,
                rec.last_step,
                i64::from(rec.failures),
                rec.first_failure,
                rec.locked_until,
                i64::try_from(rec.login_count).unwrap_or(i64::MAX),
                rec.last_login,
                rec.last_ip,
                rec.last_outcome,
            ])?;
            if n != 1 {
                return Err(StoreError::Aborted(Abort::Bug(
                    "a user read in this transaction has no row to update",
                )));
            }
        }
        _ => {
            let r = rows::encode(rec);
            conn.prepare_cached(UPSERT_USER)?.execute(params![
                r.name,
                r.secret,
                r.algorithm,
                r.digits,
                r.period,
                r.mfa_created,
                r.mfa_changed,
                r.first_seen,
                r.grace_started,
                r.last_step,
                r.failures,
                r.first_failure,
                r.locked_until,
                r.login_count,
                r.last_login,
                r.last_ip,
                r.last_outcome,
                mfa_model::lookalike_key(name),
            ])?;
        }
    }
    if before.map(|b| &b.codes) != Some(&rec.codes) {
        conn.prepare_cached("DELETE FROM one_time_codes WHERE user = ?1")?
            .execute([name])?;
        let mut ins = conn.prepare_cached(
            "INSERT INTO one_time_codes (user, kind, salt, hash, created, expires, uses_left, scheme) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
        )?;
        for c in rows::encode_codes(rec) {
            ins.execute(params![
                name,
                c.kind,
                c.salt,
                c.hash,
                c.created,
                c.expires,
                c.uses_left,
                c.scheme
            ])?;
        }
    }
    if before.map(|b| &b.sources) != Some(&rec.sources) {
        conn.prepare_cached("DELETE FROM source_failures WHERE user = ?1")?
            .execute([name])?;
        let mut ins = conn.prepare_cached(
            "INSERT INTO source_failures (user, source, failures, first_failure, locked_until) VALUES (?1,?2,?3,?4,?5)",
        )?;
        for s in rows::encode_sources(rec) {
            ins.execute(params![
                name,
                s.source,
                s.failures,
                s.first_failure,
                s.locked_until
            ])?;
        }
    }
    if before.map(|b| &b.unlocks) != Some(&rec.unlocks) {
        conn.prepare_cached("DELETE FROM unlocks WHERE user = ?1")?
            .execute([name])?;
        let mut ins = conn.prepare_cached(
            "INSERT INTO unlocks (user, ip, created, expires) VALUES (?1,?2,?3,?4)",
        )?;
        for u in rows::encode_unlocks(rec) {
            ins.execute(params![name, u.ip, u.created, u.expires])?;
        }
    }
    Ok(())
}

fn read_store_key(conn: &Connection) -> Result<Option<KeyId>, StoreError> {
    let id: Option<Vec<u8>> = conn
        .prepare_cached("SELECT key_id FROM store_key WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    match id {
        None => Ok(None),
        Some(v) => v.try_into().map(Some).map_err(|_| StoreError::BadRow {
            user: String::new(),
            column: "store_key.key_id",
            problem: format!("not {KEY_ID_BYTES} bytes"),
        }),
    }
}

/// A seed being written must be sealed under the store's key (or, in a store that never had
/// a key, be in the clear form): a process that opened the store before a `mfactl rekey`
/// must not write a seed under the old key into the rekeyed store.
fn check_store_key(
    conn: &Connection,
    user: &UserName,
    sealed: &SealedSecret,
) -> Result<(), StoreError> {
    let store = read_store_key(conn)?;
    let row = secret::sealed_key_id(sealed);
    if row == store {
        return Ok(());
    }
    Err(StoreError::KeyChanged {
        context: format!("writing the key of user {:?}", user.as_str()),
    })
}

/// One write transaction: use up `invite` (its hash, at a time) where one is given, load
/// `names`, let `f` change them, save what changed, append the events it returned; all or
/// nothing. `false` (nothing written, `f` not run) where the invite is no longer usable.
/// Marks the invite whose token hashes to `hash` used at `now`, inside the caller's write
/// transaction, if it is still usable then (not used, not expired); `false` if it is not.
fn take_invite(tx: &Connection, hash: &[u8; 32], now: i64) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "UPDATE invites SET used = ?2 WHERE hash = ?1 AND used IS NULL AND expires > ?2",
        )?
        .execute(params![&hash[..], now])?;
    Ok(n != 0)
}

fn transact_on(
    c: &mut Connection,
    names: &[&UserName],
    invite: Option<(&[u8; 32], i64)>,
    f: &mut TxFn<'_>,
) -> Result<bool, StoreError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if let Some((hash, now)) = invite
        && !take_invite(&tx, hash, now)?
    {
        return Ok(false);
    }
    let before: Vec<Option<UserRecord>> = names
        .iter()
        .map(|n| load(&tx, n))
        .collect::<Result<_, _>>()?;
    let mut records = before.clone();
    let events = f(&mut records).map_err(StoreError::Aborted)?;
    for (i, rec) in records.iter().enumerate() {
        if let Some(rec) = rec {
            if names.get(i) != Some(&&rec.name) {
                return Err(StoreError::Aborted(Abort::Bug(
                    "a transaction renamed a user",
                )));
            }
            save(&tx, rec, before.get(i).and_then(Option::as_ref))?;
        }
    }
    insert_audit(&tx, &events)?;
    tx.commit()?;
    Ok(true)
}

fn insert_audit(conn: &Connection, events: &[AuditEvent]) -> Result<(), StoreError> {
    let mut st = conn.prepare_cached(
        "INSERT INTO audit (time, user, service, client_ip, decision, reason, detail) VALUES (?1,?2,?3,?4,?5,?6,?7)",
    )?;
    for e in events {
        st.execute(params![
            e.time,
            e.user,
            e.service,
            e.client_ip,
            e.decision,
            e.reason,
            e.detail
        ])?;
    }
    Ok(())
}

impl SqliteStore {
    /// SQLite's write-ahead log beside the database.
    fn wal_path(&self) -> PathBuf {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        PathBuf::from(wal)
    }

    /// Copies the WAL back into the database (PASSIVE: never waits for, nor blocks, readers
    /// or the writer). Run on the deferred-commit connection between its transactions, it
    /// catches up completely and the next transaction starts the WAL over. Returns the WAL
    /// frames left.
    pub fn checkpoint(&self, on_writer: bool) -> Result<u64, StoreError> {
        let run = |c: &mut Connection| -> Result<u64, StoreError> {
            let log: i64 = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
            Ok(u64::try_from(log).unwrap_or(0))
        };
        if on_writer {
            self.with_deferred_conn(run)
        } else {
            self.with_conn(run)
        }
    }
}

impl Store for SqliteStore {
    fn user(&self, name: &UserName) -> Result<Option<UserRecord>, StoreError> {
        self.with_conn(|c| load(c, name))
    }

    fn each_user(&self, f: &mut UserFn<'_>) -> Result<(), StoreError> {
        self.with_conn(|c| {
            // One read transaction; the users and their child rows are four scans in name
            // order, merged (three lookups per user cost a million users 10 s more).
            let tx = c.transaction()?;
            {
                let mut users_st = tx.prepare(SELECT_USERS)?;
                let mut codes_st = tx.prepare("SELECT user, kind, salt, hash, created, expires, uses_left, scheme FROM one_time_codes ORDER BY user, rowid")?;
                let mut sources_st = tx.prepare("SELECT user, source, failures, first_failure, locked_until FROM source_failures ORDER BY user, rowid")?;
                let mut unlocks_st =
                    tx.prepare("SELECT user, ip, created, expires FROM unlocks ORDER BY user, rowid")?;
                // Column 0 is the user; the row's own columns follow.
                let mut codes = Merge::new(codes_st.query([])?, |r| code_row(r, 1))?;
                let mut sources = Merge::new(sources_st.query([])?, |r| source_row(r, 1))?;
                let mut unlocks = Merge::new(unlocks_st.query([])?, |r| unlock_row(r, 1))?;
                let mut rows = users_st.query([])?;
                while let Some(r) = rows.next()? {
                    let row = read_row(r)?;
                    let c = codes.take(&row.name)?;
                    let s = sources.take(&row.name)?;
                    let u = unlocks.take(&row.name)?;
                    f(rows::decode(row, c, s, u)?)?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn transact_sorted(&self, names: &[&UserName], f: &mut TxFn<'_>) -> Result<(), StoreError> {
        self.with_conn(|c| transact_on(c, names, None, f).map(|_| ()))
    }

    fn transact_with_invite(
        &self,
        hash: &[u8; 32],
        now: i64,
        names: &[&UserName],
        f: &mut TxFn<'_>,
    ) -> Result<bool, StoreError> {
        let mut usable = false;
        super::LockOrder::new(names).run(
            |sorted, g| {
                usable = self.with_conn(|c| transact_on(c, sorted, Some((hash, now)), g))?;
                Ok(())
            },
            f,
        )?;
        Ok(usable)
    }

    fn group_commit(&self) -> Option<&dyn GroupCommit> {
        Some(self)
    }

    fn import_all(
        &self,
        users: &[UserRecord],
        audit: &[AuditEvent],
        facts: &StoreFacts,
    ) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (u, a): (i64, i64) = tx.query_row(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM audit)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if u != 0 || a != 0 {
                return Err(StoreError::NotEmpty {
                    store: self.path.display().to_string(),
                    users: u,
                    audit: a,
                });
            }
            // The source's key first: `save` checks every seed against it.
            match &facts.key_id {
                Some(id) => tx.execute(
                    "INSERT INTO store_key (id, key_id) VALUES (1, ?1)
                     ON CONFLICT(id) DO UPDATE SET key_id = excluded.key_id",
                    [id.as_slice()],
                )?,
                None => tx.execute("DELETE FROM store_key", [])?,
            };
            tx.execute("DELETE FROM meta WHERE key = ?1", [META_NAME_RULES])?;
            if let Some(rules) = &facts.names_checked {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                    [META_NAME_RULES, rules],
                )?;
            }
            for rec in users {
                save(&tx, rec, None)?;
            }
            insert_audit(&tx, audit)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_audit(&tx, events)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        self.with_conn(|c| {
            let limit = q.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
            let mut st = c.prepare(
                "SELECT time, user, service, client_ip, decision, reason, detail FROM audit
                 WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR time >= ?2)
                 ORDER BY time, id LIMIT ?3",
            )?;
            let rows = st.query_map(params![q.user, q.since, limit], |r| {
                Ok(AuditEvent {
                    time: r.get(0)?,
                    user: r.get(1)?,
                    service: r.get(2)?,
                    client_ip: r.get(3)?,
                    decision: r.get(4)?,
                    reason: r.get(5)?,
                    detail: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn prune_audit(&self, before: i64) -> Result<usize, StoreError> {
        self.with_conn(|c| Ok(c.execute("DELETE FROM audit WHERE time < ?1", [before])?))
    }

    fn prune_unenrolled(&self, before: i64) -> Result<usize, StoreError> {
        self.with_conn(|c| Ok(c.execute(PRUNE_UNENROLLED, [before])?))
    }

    fn store_key_id(&self) -> Result<Option<KeyId>, StoreError> {
        self.with_conn(|c| read_store_key(c))
    }

    fn reseal(
        &self,
        expect: Option<KeyId>,
        new: KeyId,
        f: &mut ResealFn<'_>,
        events: &[AuditEvent],
    ) -> Result<usize, StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if read_store_key(&tx)? != expect {
                return Err(StoreError::KeyChanged {
                    context: "re-encrypting the stored keys".into(),
                });
            }
            let rows: Vec<(String, Vec<u8>)> = {
                let mut st = tx.prepare(
                    "SELECT name, secret FROM users WHERE secret IS NOT NULL ORDER BY name",
                )?;
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?
            };
            let count = rows.len();
            {
                let mut up = tx.prepare("UPDATE users SET secret = ?2 WHERE name = ?1")?;
                for (name, bytes) in rows {
                    let sealed = rows::reseal_one(&name, bytes, new, f)?;
                    up.execute(params![name, sealed.stored()])?;
                }
            }
            tx.execute(
                "INSERT INTO store_key (id, key_id) VALUES (1, ?1)
                 ON CONFLICT(id) DO UPDATE SET key_id = excluded.key_id",
                [new.as_slice()],
            )?;
            insert_audit(&tx, events)?;
            tx.commit()?;
            Ok(count)
        })
    }

    fn put_invites(&self, invites: &[Invite], events: &[AuditEvent]) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO invites (hash, user, created, expires, used) VALUES (?1,?2,?3,?4,?5)",
                )?;
                for i in invites {
                    let r = rows::encode_invite(i);
                    ins.execute(params![r.hash, r.user, r.created, r.expires, r.used])?;
                }
            }
            insert_audit(&tx, events)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn invite(&self, hash: &[u8; 32]) -> Result<Option<Invite>, StoreError> {
        self.with_conn(|c| {
            let row = c
                .prepare_cached(&format!("{INVITE_COLUMNS} WHERE hash = ?1"))?
                .query_row([&hash[..]], read_invite)
                .optional()?;
            row.map(rows::decode_invite).transpose()
        })
    }

    fn invites(&self) -> Result<Vec<Invite>, StoreError> {
        self.with_conn(|c| {
            let mut st =
                c.prepare_cached(&format!("{INVITE_COLUMNS} ORDER BY created DESC, user"))?;
            let rows = st
                .query_map([], read_invite)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(rows::decode_invite).collect()
        })
    }

    fn use_invite(
        &self,
        hash: &[u8; 32],
        now: i64,
        events: &[AuditEvent],
    ) -> Result<bool, StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !take_invite(&tx, hash, now)? {
                return Ok(false);
            }
            insert_audit(&tx, events)?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn names_checked(&self) -> Result<Option<String>, StoreError> {
        self.with_conn(|c| read_meta(c, META_NAME_RULES))
    }

    fn each_user_name(&self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            each_name(&tx, f)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn names_with_key(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.with_conn(|c| names_with_key(c, key))
    }

    fn maintain_names(&self, f: &mut NamesFn<'_>) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let events = f(&mut SqliteNameTx(&tx))?;
            if let Some(events) = events {
                insert_audit(&tx, &events)?;
                tx.commit()?;
            }
            Ok(())
        })
    }
}

fn read_meta(c: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(c.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

fn each_name(c: &Connection, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
    let mut st = c.prepare("SELECT name FROM users ORDER BY name")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let name: String = r.get(0)?;
        f(&name);
    }
    Ok(())
}

/// The names with the key `?1` or none, through `users_name_key` (two look-ups).
const NAMES_WITH_KEY: &str =
    "SELECT name FROM users WHERE name_key = ?1 OR name_key IS NULL ORDER BY name";

fn names_with_key(c: &Connection, key: &str) -> Result<Vec<String>, StoreError> {
    let mut st = c.prepare_cached(NAMES_WITH_KEY)?;
    let rows = st.query_map([key], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// [`NameTx`] on one open write transaction.
struct SqliteNameTx<'c>(&'c rusqlite::Transaction<'c>);

impl NameTx for SqliteNameTx<'_> {
    fn each_name(&mut self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
        each_name(self.0, f)
    }

    fn names_checked(&mut self) -> Result<Option<String>, StoreError> {
        read_meta(self.0, META_NAME_RULES)
    }

    fn load(&mut self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        load(self.0, name)
    }

    fn remove(&mut self, name: &str) -> Result<bool, StoreError> {
        // The one-time codes go with the row (ON DELETE CASCADE); the audit trail stays.
        Ok(self
            .0
            .execute("DELETE FROM users WHERE name = ?1", [name])?
            == 1)
    }

    fn put(&mut self, rec: &UserRecord) -> Result<(), StoreError> {
        save(self.0, rec, None)
    }

    fn set_names_checked(&mut self, rules: &str) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [META_NAME_RULES, rules],
        )?;
        Ok(())
    }

    fn names_with_key(&mut self, key: &str) -> Result<Vec<String>, StoreError> {
        names_with_key(self.0, key)
    }

    fn names_without_key(&mut self, limit: usize) -> Result<Vec<String>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut st = self.0.prepare_cached(
            "SELECT name FROM users WHERE name_key IS NULL ORDER BY name LIMIT ?1",
        )?;
        let rows = st.query_map([limit], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_name_key(&mut self, name: &str, key: &str) -> Result<(), StoreError> {
        self.0
            .prepare_cached("UPDATE users SET name_key = ?2 WHERE name = ?1")?
            .execute([name, key])?;
        Ok(())
    }

    fn forget_name_keys(&mut self) -> Result<(), StoreError> {
        self.0.execute(
            "UPDATE users SET name_key = NULL WHERE name_key IS NOT NULL",
            [],
        )?;
        Ok(())
    }
}

impl GroupCommit for SqliteStore {
    fn transact_deferred(&self, names: &[&UserName], f: &mut TxFn<'_>) -> Result<(), StoreError> {
        super::LockOrder::new(names).run(
            |sorted, g| self.with_deferred_conn(|c| transact_on(c, sorted, None, g).map(|_| ())),
            f,
        )
    }

    fn sync(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        // A commit in WAL mode is durable once its frames in the -wal file are; fdatasync
        // of that file is what `synchronous=FULL` does at every commit. Opened afresh each
        // time: SQLite may delete and re-create the file when every connection has closed.
        // If the WAL was checkpointed and restarted since the commit, its frames are in the
        // database file, which the checkpoint synced.
        let wal = self.wal_path();
        File::open(&wal)
            .and_then(|f| f.sync_data())
            .map_err(|e| io_error(e, &wal))?;
        if !self.dir_synced.load(Ordering::Acquire) {
            let dir = match self.path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            File::open(dir)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_error(e, dir))?;
            self.dir_synced.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn housekeeping(&self) -> Result<bool, StoreError> {
        Ok(self.checkpoint(false)? >= RESTART_FRAMES)
    }

    fn writer_housekeeping(&self) -> Result<(), StoreError> {
        self.checkpoint(true).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{Sealer, TotpSecret, Unsealed};
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
        super::super::conformance::all(&|| {
            let i = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = dir.path().join(format!("c{i}.db"));
            Box::new(SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(5)).unwrap())
        });
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
        let (_, code) = crate::verify::new_one_time_code(OtcKind::Backup, 100, None, 1).unwrap();
        rec.codes.push(code);
        let want = rec.clone();
        s.transact(&[&n("alice")], &mut |recs| {
            recs[0] = Some(rec.clone());
            Ok(vec![AuditEvent::admin(
                100,
                "alice",
                "test",
                "enroll",
                "confirmed",
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
                    "enroll",
                    "unconfirmed",
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
                Ok(vec![AuditEvent::admin(i, &name, "t", "x", "y", None)])
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
                s.append_audit(&[AuditEvent::admin(i, &n("u"), "t", "x", "y", None)])
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
            .map(|e| (e.reason, e.detail))
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
        use crate::core::Core;
        use mfa_model::OtcHash;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        drop(SqliteStore::open(&path, OpenMode::Create, Duration::from_secs(1)).unwrap());
        let seed = TotpSecret::from_base32("JBSWY3DPEHPK3PXPJBSWY3DP").unwrap();
        let salt = [9u8; 16];
        let hash = *crate::verify::hash_code(OtcHash::Sha256V1, &salt, "87654321").unwrap();
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
        let mut want = vec![crate::secret::FORM_CLEAR];
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
        let core = Core::open(std::sync::Arc::new(cfg), OpenMode::Existing, "test");
        assert!(
            core.as_ref().is_err_and(
                |e| e.to_string().contains("v3.key") && e.to_string().contains("mfactl init")
            ),
            "no key file: {core:?}"
        );
        let mut cfg = mfa_config::Config::default();
        cfg.store.path = path.clone();
        cfg.audit.syslog = false;
        let core = Core::open(std::sync::Arc::new(cfg), OpenMode::Create, "test").unwrap();
        assert!(dir.path().join("v3.key").exists());
        let sealed = raw(&path);
        assert_eq!(sealed[0], crate::secret::FORM_XCHACHA20POLY1305);
        assert!(
            !sealed
                .windows(seed.bytes().len())
                .any(|w| w == seed.bytes())
        );
        let log = core.store().audit(&AuditQuery::default()).unwrap();
        assert_eq!(log.last().map(|e| e.decision.as_str()), Some("seal"));
        let now = crate::login::now();
        let code = crate::totp::code_at_step(&seed, &params(), now / 30);
        let req = crate::login::Request::new(
            &n("alice"),
            crate::net::ClientAddr::Remote("192.0.2.9".parse().ok()),
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
        let core = crate::Core::with_sealer(
            std::sync::Arc::new(cfg),
            Box::new(s),
            Box::new(Unsealed),
            "test",
        );
        core.check_names(crate::names::NameCheck::IfRulesChanged)
            .unwrap();
        assert_eq!(core.store.names_with_key(&key).unwrap(), ["alice"]);
        assert_eq!(
            core.store
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
}
