//! The scale-out store: one PostgreSQL database shared by several RADIUS servers and hosts.
//!
//! The client is the `postgres` crate: the synchronous face of `tokio-postgres`, the
//! maintained native client of the Rust ecosystem. The [`Store`] trait is synchronous (the
//! PAM module and `mfactl` have no async runtime, the daemon calls the store from its own
//! writer and reader threads), so the blocking client fits it without a runtime of ours.
//! TLS is rustls (`tokio-postgres-rustls`), with the CA from `[store] ca_file`.
//!
//! Locking: a transaction first takes a transaction-scoped advisory lock per user name
//! (`pg_advisory_xact_lock`, keys sorted), then reads the rows that exist with `SELECT ...
//! FOR UPDATE`. The advisory lock is what makes the not-yet-existing user safe: a row that
//! does not exist cannot be locked, but its name can, so two nodes creating (or enrolling,
//! or spending a one-time code of) the same user are serialised like any other two
//! transactions on it. READ COMMITTED takes a fresh snapshot per statement, so the rows read
//! once the lock is held are the last committed ones. Deadlocks (a 64-bit key collision, or
//! a prune racing a batch), serialization failures and unique violations roll back and re-run
//! the transaction function a bounded number of times ([`TxFn`] allows it).
//!
//! Durability: every transaction commits with PostgreSQL's own durability (its WAL and
//! `synchronous_commit`). There is no [`super::GroupCommit`] here: the daemon's writer
//! already gathers concurrent requests into one transaction per batch, and one commit per
//! batch is what group commit buys on SQLite (docs/BENCHMARKS.md has the figures).
//!
//! Connections: a small pool of idle clients; a broken one is dropped and the next call
//! connects again, so a database that was restarted is used again without restarting the
//! daemon, and while it is down every call fails (every login is refused).
//!
//! The schema is [`SCHEMA`], the one place to mirror a change of the SQLite schema; its
//! version is [`SCHEMA_VERSION`] (PostgreSQL's own numbering: the two engines' layouts
//! were merged at different points), kept in the one-row table `schema_version`; upgrades
//! go in [`MIGRATIONS`].
//!
//! The store key: `store_key` holds the id of the key the seeds are sealed under, as on
//! SQLite. Every transaction that writes a changed seed takes `store_key` in SHARE mode and
//! checks the seed against it; [`Store::reseal`] takes `users` and then `store_key` in
//! EXCLUSIVE mode, so a seed is never written under a key the store no longer names. Every
//! path takes `users` before `store_key`, so the two never deadlock.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mfa_config::{SslMode, StoreConfig};
use mfa_model::{AuditEvent, Invite, UserName, UserRecord};
use postgres::error::SqlState;
use postgres::{Client, NoTls, Row, Statement, Transaction};
use sha2::{Digest, Sha256};

use super::rows::{self, CodeRow, InviteRow, SourceRow, UnlockRow, UserRow};
use super::{
    Abort, AuditQuery, NameTx, NamesFn, OpenMode, ResealFn, SchemaError, Store, StoreError,
    StoreFacts, TxFn, UserFn,
};
use crate::secret::{self, KEY_ID_BYTES, KeyId};

/// The layout this program writes: the same tables and columns as the current SQLite
/// schema (`sqlite.rs`, version 9), in PostgreSQL's types (`BIGINT` for SQLite's INTEGER,
/// `BYTEA` for BLOB). `user` is a reserved word here, hence the quotes. Version 4: the
/// first PostgreSQL layout (SQLite's version 3 and `source_failures`). Version 5: seeds
/// start with their form byte, `store_key`, `one_time_codes.scheme` and `meta` (SQLite's
/// versions 4 and 6). Version 6: the self-service portal's `unlocks` and `invites`
/// (SQLite's version 7). Version 7: `users_unenrolled`, the names that never enrolled by
/// when they were first seen (SQLite's version 8, where the reason is given). Version 8:
/// `users.name_key`, each name's look-alike key, indexed (SQLite's version 9, where the
/// reason is given).
pub const SCHEMA_VERSION: i64 = 8;

/// The look-alike key column and its index (SQLite's `name_key_column!`), in [`SCHEMA`] and
/// [`MIGRATE_V7_V8`].
macro_rules! pg_name_key_column {
    () => {
        "
ALTER TABLE users ADD COLUMN name_key TEXT;
CREATE INDEX users_name_key ON users (name_key);
"
    };
}

/// The partial index over the names that never enrolled (SQLite's `unenrolled_index!`), in
/// [`SCHEMA`] and [`MIGRATE_V6_V7`].
macro_rules! pg_unenrolled_index {
    () => {
        "
CREATE INDEX users_unenrolled ON users (first_seen) WHERE secret IS NULL AND mfa_created IS NULL;
"
    };
}

/// The self-service portal's tables (SQLite's `portal_tables!`), in [`SCHEMA`] and
/// [`MIGRATE_V5_V6`]:
/// - `unlocks`: remembered networks, part of the user's record, removed with it; `id` keeps
///   their order (SQLite's rowid).
/// - `invites`: one-time enrolment links, only the SHA-256 of the token kept. No foreign
///   key: an invite may name a user the store has not seen yet.
macro_rules! pg_portal_tables {
    () => {
        r#"
CREATE TABLE unlocks (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "user"  TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    ip      TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX unlocks_user ON unlocks("user");
CREATE TABLE invites (
    hash    BYTEA PRIMARY KEY NOT NULL CHECK (octet_length(hash) = 32),
    "user"  TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    used    BIGINT
);
CREATE INDEX invites_user ON invites("user");
"#
    };
}

/// The schema of version [`SCHEMA_VERSION`], created in one transaction on an empty database.
/// Mirror every change of the SQLite schema here, with a step in [`MIGRATIONS`].
pub const SCHEMA: &str = concat!(
    r#"
CREATE TABLE schema_version (
    version BIGINT NOT NULL
);
CREATE TABLE users (
    name          TEXT PRIMARY KEY NOT NULL,
    secret        BYTEA,
    algorithm     TEXT NOT NULL,
    digits        BIGINT NOT NULL,
    period        BIGINT NOT NULL,
    mfa_created   BIGINT,
    mfa_changed   BIGINT,
    first_seen    BIGINT NOT NULL,
    grace_started BIGINT,
    last_step     BIGINT,
    failures      BIGINT NOT NULL DEFAULT 0,
    first_failure BIGINT,
    locked_until  BIGINT,
    login_count   BIGINT NOT NULL DEFAULT 0,
    last_login    BIGINT,
    last_ip       TEXT,
    last_outcome  TEXT
);
CREATE TABLE one_time_codes (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "user"    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('backup', 'temporary')),
    salt      BYTEA NOT NULL,
    hash      BYTEA NOT NULL,
    created   BIGINT NOT NULL,
    expires   BIGINT,
    uses_left BIGINT NOT NULL,
    scheme    BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX one_time_codes_user ON one_time_codes("user");
CREATE TABLE store_key (
    id     BIGINT PRIMARY KEY CHECK (id = 1),
    key_id BYTEA NOT NULL
);
CREATE TABLE audit (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time      BIGINT NOT NULL,
    "user"    TEXT NOT NULL,
    service   TEXT NOT NULL,
    client_ip TEXT,
    decision  TEXT NOT NULL,
    reason    TEXT NOT NULL,
    detail    TEXT
);
CREATE INDEX audit_time ON audit(time);
CREATE TABLE source_failures (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "user"        TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    source        TEXT NOT NULL,
    failures      BIGINT NOT NULL,
    first_failure BIGINT NOT NULL,
    locked_until  BIGINT
);
CREATE INDEX source_failures_user ON source_failures("user");
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
"#,
    pg_portal_tables!(),
    pg_unenrolled_index!(),
    pg_name_key_column!()
);

/// Version 4 to 5 (SQLite's 3 to 4 and 5 to 6): clear seeds get the clear form byte (0x00),
/// so no reader has to guess whether a row is encrypted, and the first open with a key file
/// seals them (`Core::open`); codes hashed before are SHA-256 (scheme 1); the store has no
/// key yet; `meta` starts empty, so the names are checked at the next start.
const MIGRATE_V4_V5: &str = r#"
ALTER TABLE one_time_codes ADD COLUMN scheme BIGINT NOT NULL DEFAULT 1;
CREATE TABLE store_key (
    id     BIGINT PRIMARY KEY CHECK (id = 1),
    key_id BYTEA NOT NULL
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
UPDATE users SET secret = decode('00', 'hex') || secret WHERE secret IS NOT NULL;
"#;

/// Version 5 to 6 (SQLite's 6 to 7): the portal's `unlocks` and `invites`, both empty.
const MIGRATE_V5_V6: &str = pg_portal_tables!();

/// Upgrades, each from the version named to the next, run in order in one transaction
/// under the schema lock.
const MIGRATIONS: &[(i64, &str)] = &[
    (4, MIGRATE_V4_V5),
    (5, MIGRATE_V5_V6),
    (6, MIGRATE_V6_V7),
    (7, MIGRATE_V7_V8),
];

/// Version 6 to 7 (SQLite's 7 to 8): the index of the names that never enrolled.
const MIGRATE_V6_V7: &str = pg_unenrolled_index!();

/// Version 7 to 8 (SQLite's 8 to 9): the look-alike keys, empty until the name check fills
/// them.
const MIGRATE_V7_V8: &str = pg_name_key_column!();

/// The `meta` key of the name rules the stored names were last checked against.
const META_NAME_RULES: &str = "name_rules";

/// The advisory lock key that serialises schema creation and upgrades (two nodes starting
/// at once on an empty database). Any constant outside the user-name key space works; user
/// keys come from SHA-256, so a collision is as likely as with any other name.
const SCHEMA_LOCK: i64 = 0x6d66_615f_7363_6865; // "mfa_sche"

/// Above this many users in one transaction (`mfactl import`), the users table is locked
/// instead of each name (see [`transact_on`]).
const MANY_USERS: usize = 1000;

/// How often a transaction is run again after a conflict before giving up with `Busy`.
const MAX_TRIES: u32 = 8;

/// Idle connections kept.
const POOL: usize = 16;

const USER_COLUMNS: &str = "name, secret, algorithm, digits, period, mfa_created, mfa_changed, first_seen, grace_started, last_step, failures, first_failure, locked_until, login_count, last_login, last_ip, last_outcome";

pub struct PgStore {
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// `user@host:port/db` for messages: never a password.
    target: String,
    pool: Mutex<Vec<Conn>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A connection and its prepared statements.
struct Conn {
    client: Client,
    st: Statements,
}

struct Statements {
    user: Statement,
    lock: Statement,
    lock_users: Statement,
    codes: Statement,
    sources: Statement,
    unlocks: Statement,
    upsert: Statement,
    delete_codes: Statement,
    insert_codes: Statement,
    delete_sources: Statement,
    insert_sources: Statement,
    delete_unlocks: Statement,
    insert_unlocks: Statement,
    insert_audit: Statement,
    store_key: Statement,
    names_checked: Statement,
}

/// A failure inside one call: PostgreSQL's error (to classify, retry, or drop the
/// connection) or one of ours.
enum Fail {
    Pg(&'static str, postgres::Error),
    Store(StoreError),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

trait Ctx<T> {
    fn ctx(self, what: &'static str) -> Result<T, Fail>;
}

impl<T> Ctx<T> for Result<T, postgres::Error> {
    fn ctx(self, what: &'static str) -> Result<T, Fail> {
        self.map_err(|e| Fail::Pg(what, e))
    }
}

/// PostgreSQL's own words for an error: the server's message and SQLSTATE, or the client's
/// error with its cause (the bare `Display` says only "db error").
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

fn retryable(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

/// A connection that saw anything but a server-side error of its statement is not reused.
fn broken(e: &postgres::Error) -> bool {
    e.is_closed() || e.as_db_error().is_none()
}

/// The 64-bit advisory lock key of a user name.
fn lock_key(name: &str) -> i64 {
    let h = Sha256::digest(name.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    i64::from_be_bytes(b)
}

impl PgStore {
    /// Connects to the database `cfg.url` names, creates the schema (`OpenMode::Create`,
    /// on an empty database) or checks it, and keeps the connection for the first call.
    pub fn open(cfg: &StoreConfig, mode: OpenMode) -> Result<Self, StoreError> {
        let url = cfg.url.as_deref().unwrap_or_default();
        let redacted = super::redact_url(url);
        let bad_url = |why: String| StoreError::Engine {
            context: format!("[store] url = {redacted:?}"),
            source: why.into(),
        };
        mfa_config::check_store_url(url).map_err(bad_url)?;
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| bad_url(describe(&e)))?;
        if config.get_hosts().is_empty() {
            return Err(bad_url("names no host".into()));
        }
        if config.get_user().is_none() {
            return Err(bad_url(
                "names no role (postgres://ROLE@host:port/database)".into(),
            ));
        }
        let target = target_of(&config);
        if let Some(pf) = &cfg.password_file {
            config.password(read_password(pf)?.as_slice());
        }
        let timeout = cfg.busy_timeout.0.max(Duration::from_secs(1));
        config
            .connect_timeout(timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("mfa")
            // A row lock held past the busy timeout fails the call (Busy) instead of
            // stalling every login behind it; a stuck statement is cancelled.
            .options(&format!(
                "-c lock_timeout={}ms -c statement_timeout={}ms -c idle_in_transaction_session_timeout={}ms",
                timeout.as_millis(),
                timeout.as_millis().saturating_mul(6),
                timeout.as_millis().saturating_mul(6),
            ));
        let tls = match cfg.sslmode {
            SslMode::Disable => {
                config.ssl_mode(postgres::config::SslMode::Disable);
                None
            }
            mode @ (SslMode::Require | SslMode::VerifyFull) => {
                config.ssl_mode(postgres::config::SslMode::Require);
                Some(tls_connector(mode, cfg.ca_file.as_deref())?)
            }
        };
        let store = Self {
            config,
            tls,
            target,
            pool: Mutex::new(Vec::new()),
        };
        let mut client = store.connect_client()?;
        store.migrate(&mut client, mode)?;
        let conn = store.prepare(client)?;
        store.put_back(conn);
        Ok(store)
    }

    /// `user@host:port/db`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn connect_client(&self) -> Result<Client, StoreError> {
        let r = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        };
        r.map_err(|e| {
            let hint = match e.code() {
                Some(c) if *c == SqlState::INVALID_PASSWORD => {
                    " (check [store] password_file and the role's password)"
                }
                Some(c) if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                    " (the server's pg_hba.conf does not let this role in from here)"
                }
                Some(c) if *c == SqlState::UNDEFINED_DATABASE => {
                    " (create it with createdb, owned by the role in the URL)"
                }
                _ => "",
            };
            StoreError::Engine {
                context: format!("connecting to the PostgreSQL store at {}", self.target),
                source: format!("{}{hint}", describe(&e)).into(),
            }
        })
    }

    fn prepare(&self, mut client: Client) -> Result<Conn, StoreError> {
        let st = prepare_statements(&mut client).map_err(|f| self.classify(f))?;
        Ok(Conn { client, st })
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        let client = self.connect_client()?;
        self.prepare(client)
    }

    fn classify(&self, f: Fail) -> StoreError {
        match f {
            Fail::Store(e) => e,
            Fail::Pg(what, e) => {
                let text = describe(&e);
                match e.code() {
                    Some(c)
                        if *c == SqlState::LOCK_NOT_AVAILABLE
                            || *c == SqlState::QUERY_CANCELED
                            || retryable(&e) =>
                    {
                        StoreError::Busy {
                            source: format!("{what} on {}: {text}", self.target).into(),
                        }
                    }
                    _ => StoreError::Engine {
                        context: format!("{what} on the PostgreSQL store {}", self.target),
                        source: text.into(),
                    },
                }
            }
        }
    }

    /// Runs `f` on a pooled connection (or a new one); a connection that failed below the
    /// SQL level is dropped, so the next call connects afresh.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, Fail>) -> Result<T, Fail> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut conn = match pooled {
            Some(c) if !c.client.is_closed() => c,
            _ => self.connect()?,
        };
        let out = f(&mut conn);
        let keep = match &out {
            Err(Fail::Pg(_, e)) => !broken(e),
            _ => true,
        };
        if keep && !conn.client.is_closed() {
            self.put_back(conn);
        }
        out
    }

    /// [`transact_on`], tried again after a serialization conflict (a bounded number of
    /// times); `false` where the invite it was to use up is not usable.
    fn transact_retrying(
        &self,
        names: &[&UserName],
        invite: Option<(&[u8; 32], i64)>,
        f: &mut TxFn<'_>,
    ) -> Result<bool, StoreError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.with_conn(|c| transact_on(c, names, invite, f)) {
                Ok(done) => return Ok(done),
                Err(Fail::Pg(what, e)) if retryable(&e) => {
                    if tries >= MAX_TRIES {
                        return Err(StoreError::Busy {
                            source: format!(
                                "{what} on {}: gave up after {tries} conflicting tries: {}",
                                self.target,
                                describe(&e)
                            )
                            .into(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(u64::from(tries) * 5));
                }
                Err(e) => return Err(self.classify(e)),
            }
        }
    }

    fn run<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, Fail>) -> Result<T, StoreError> {
        self.with_conn(f).map_err(|e| self.classify(e))
    }

    fn put_back(&self, conn: Conn) {
        if let Ok(mut p) = self.pool.lock()
            && p.len() < POOL
        {
            p.push(conn);
        }
    }

    /// Creates or upgrades the schema in one transaction, under an advisory lock so two
    /// nodes starting at once do it once; refuses a newer or unknown version.
    fn migrate(&self, client: &mut Client, mode: OpenMode) -> Result<(), StoreError> {
        let r: Result<(), Fail> = (|| {
            let mut tx = client.transaction().ctx("starting the schema check")?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
                .ctx("locking the schema")?;
            let has_version: bool = tx
                .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
                .ctx("reading the schema version")?
                .try_get(0)
                .ctx("reading the schema version")?;
            let version: i64 = if has_version {
                let rows = tx
                    .query("SELECT version FROM schema_version", &[])
                    .ctx("reading the schema version")?;
                match rows.as_slice() {
                    [one] => one.try_get(0).ctx("reading the schema version")?,
                    _ => {
                        return Err(Fail::Store(StoreError::Schema(SchemaError::Unknown {
                            found: -1,
                        })));
                    }
                }
            } else {
                let users: bool = tx
                    .query_one("SELECT to_regclass('users') IS NOT NULL", &[])
                    .ctx("reading the schema")?
                    .try_get(0)
                    .ctx("reading the schema")?;
                if users {
                    return Err(Fail::Store(StoreError::Engine {
                        context: format!("the PostgreSQL database {}", self.target),
                        source: "has a `users` table but no schema_version: it is not an mfa store (or a damaged one); nothing was changed".into(),
                    }));
                }
                0
            };
            match version {
                SCHEMA_VERSION => return Ok(()),
                0 if mode == OpenMode::Existing => {
                    return Err(Fail::Store(StoreError::Engine {
                        context: format!("the PostgreSQL store {}", self.target),
                        source: "holds no mfa schema yet; create it with `mfactl init` (or enrol a user with mfactl)".into(),
                    }));
                }
                0 => {
                    tx.batch_execute(SCHEMA).ctx("creating the schema")?;
                    tx.execute(
                        "INSERT INTO schema_version (version) VALUES ($1)",
                        &[&SCHEMA_VERSION],
                    )
                    .ctx("creating the schema")?;
                }
                v if v > SCHEMA_VERSION => {
                    return Err(Fail::Store(StoreError::Schema(SchemaError::Newer {
                        found: v,
                        known: SCHEMA_VERSION,
                    })));
                }
                v => {
                    let mut at = v;
                    for (from, sql) in MIGRATIONS {
                        if *from == at {
                            tx.batch_execute(sql).ctx("upgrading the schema")?;
                            at += 1;
                        }
                    }
                    if at != SCHEMA_VERSION {
                        return Err(Fail::Store(StoreError::Schema(SchemaError::Unknown {
                            found: v,
                        })));
                    }
                    tx.execute("UPDATE schema_version SET version = $1", &[&SCHEMA_VERSION])
                        .ctx("upgrading the schema")?;
                }
            }
            tx.commit().ctx("committing the schema")?;
            Ok(())
        })();
        r.map_err(|f| self.classify(f))
    }
}

/// `user@host:port/db` of a parsed URL.
fn target_of(c: &postgres::Config) -> String {
    let host = match c.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => String::new(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        c.get_user().unwrap_or(""),
        c.get_dbname().or(c.get_user()).unwrap_or("")
    )
}

fn read_password(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
    let raw = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(e.kind(), format!("cannot read [store] password_file: {e}")),
    })?);
    let line = raw.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(StoreError::Engine {
            context: format!("[store] password_file {}", path.display()),
            source: "is empty (the password is its first line)".into(),
        });
    }
    Ok(zeroize::Zeroizing::new(line.to_vec()))
}

/// rustls for `require` (the certificate checked against `ca_file` when given, without the
/// host name, else not at all: libpq's meaning) and `verify-full` (chain and host name).
fn tls_connector(
    mode: SslMode,
    ca_file: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_err = |what: String| StoreError::Engine {
        context: "[store] TLS".into(),
        source: what.into(),
    };
    let roots = match ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    tls_err(format!(
                        "[store] ca_file {}: not a PEM certificate file: {e}",
                        path.display()
                    ))
                })?;
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| tls_err(format!("[store] ca_file {}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(tls_err(format!(
                    "[store] ca_file {} holds no certificate",
                    path.display()
                )));
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?;
    let config = match (mode, roots) {
        (SslMode::VerifyFull, Some(roots)) => {
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        (SslMode::VerifyFull, None) => {
            return Err(tls_err(
                "sslmode = \"verify-full\" needs [store] ca_file".into(),
            ));
        }
        (_, roots) => {
            let chain = match roots {
                Some(r) => Some(
                    rustls::client::WebPkiServerVerifier::builder_with_provider(
                        r,
                        provider.clone(),
                    )
                    .build()
                    .map_err(|e| tls_err(e.to_string()))?,
                ),
                None => None,
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(RequireVerifier { chain, provider }))
                .with_no_client_auth()
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// `sslmode = "require"`: the chain is checked when a CA was given, the host name never
/// (libpq's `require` and `verify-ca`); the handshake signatures always are.
#[derive(Debug)]
struct RequireVerifier {
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for RequireVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as C;
        match &self.chain {
            None => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            Some(v) => match v.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(rustls::Error::InvalidCertificate(
                    C::NotValidForName | C::NotValidForNameContext { .. },
                )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
                other => other,
            },
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn prepare_statements(c: &mut Client) -> Result<Statements, Fail> {
    let p = |c: &mut Client, sql: &str| c.prepare(sql).ctx("preparing a statement");
    Ok(Statements {
        user: p(
            c,
            &format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"),
        )?,
        lock: p(
            c,
            "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k",
        )?,
        lock_users: p(
            c,
            &format!(
                "SELECT {USER_COLUMNS} FROM users WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE"
            ),
        )?,
        codes: p(
            c,
            "SELECT \"user\", kind, salt, hash, created, expires, uses_left, scheme FROM one_time_codes WHERE \"user\" = ANY($1::text[]) ORDER BY \"user\", id",
        )?,
        sources: p(
            c,
            "SELECT \"user\", source, failures, first_failure, locked_until FROM source_failures WHERE \"user\" = ANY($1::text[]) ORDER BY \"user\", id",
        )?,
        unlocks: p(
            c,
            "SELECT \"user\", ip, created, expires FROM unlocks WHERE \"user\" = ANY($1::text[]) ORDER BY \"user\", id",
        )?,
        upsert: p(
            c,
            &format!(
                "INSERT INTO users ({USER_COLUMNS}, name_key) SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::text[], $17::text[], $18::text[])
                 ON CONFLICT (name) DO UPDATE SET secret=excluded.secret, algorithm=excluded.algorithm, digits=excluded.digits,
                   period=excluded.period, mfa_created=excluded.mfa_created, mfa_changed=excluded.mfa_changed,
                   first_seen=excluded.first_seen, grace_started=excluded.grace_started, last_step=excluded.last_step,
                   failures=excluded.failures, first_failure=excluded.first_failure, locked_until=excluded.locked_until,
                   login_count=excluded.login_count, last_login=excluded.last_login, last_ip=excluded.last_ip,
                   last_outcome=excluded.last_outcome"
            ),
        )?,
        delete_codes: p(
            c,
            "DELETE FROM one_time_codes WHERE \"user\" = ANY($1::text[])",
        )?,
        insert_codes: p(
            c,
            "INSERT INTO one_time_codes (\"user\", kind, salt, hash, created, expires, uses_left, scheme) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])",
        )?,
        delete_sources: p(
            c,
            "DELETE FROM source_failures WHERE \"user\" = ANY($1::text[])",
        )?,
        insert_sources: p(
            c,
            "INSERT INTO source_failures (\"user\", source, failures, first_failure, locked_until) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])",
        )?,
        delete_unlocks: p(c, "DELETE FROM unlocks WHERE \"user\" = ANY($1::text[])")?,
        insert_unlocks: p(
            c,
            "INSERT INTO unlocks (\"user\", ip, created, expires) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])",
        )?,
        insert_audit: p(
            c,
            "INSERT INTO audit (time, \"user\", service, client_ip, decision, reason, detail) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])",
        )?,
        store_key: p(c, "SELECT key_id FROM store_key WHERE id = 1")?,
        names_checked: p(c, "SELECT value FROM meta WHERE key = $1")?,
    })
}

fn read_user(r: &Row) -> Result<UserRow, Fail> {
    let c = "reading a users row";
    Ok(UserRow {
        name: r.try_get(0).ctx(c)?,
        secret: r.try_get(1).ctx(c)?,
        algorithm: r.try_get(2).ctx(c)?,
        digits: r.try_get(3).ctx(c)?,
        period: r.try_get(4).ctx(c)?,
        mfa_created: r.try_get(5).ctx(c)?,
        mfa_changed: r.try_get(6).ctx(c)?,
        first_seen: r.try_get(7).ctx(c)?,
        grace_started: r.try_get(8).ctx(c)?,
        last_step: r.try_get(9).ctx(c)?,
        failures: r.try_get(10).ctx(c)?,
        first_failure: r.try_get(11).ctx(c)?,
        locked_until: r.try_get(12).ctx(c)?,
        login_count: r.try_get(13).ctx(c)?,
        last_login: r.try_get(14).ctx(c)?,
        last_ip: r.try_get(15).ctx(c)?,
        last_outcome: r.try_get(16).ctx(c)?,
    })
}

/// The codes, counters and unlocks of `names`, grouped by user (each in stored order).
type Children = (
    std::collections::HashMap<String, Vec<CodeRow>>,
    std::collections::HashMap<String, Vec<SourceRow>>,
    std::collections::HashMap<String, Vec<UnlockRow>>,
);

fn read_children(
    q: &mut impl postgres::GenericClient,
    codes_sql: &Statement,
    sources_sql: &Statement,
    unlocks_sql: &Statement,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Children, Fail> {
    let mut codes: std::collections::HashMap<String, Vec<CodeRow>> = Default::default();
    let c = "reading one_time_codes";
    for r in q.query(codes_sql, params).ctx(c)? {
        let user: String = r.try_get(0).ctx(c)?;
        codes.entry(user).or_default().push(CodeRow {
            kind: r.try_get(1).ctx(c)?,
            salt: r.try_get(2).ctx(c)?,
            hash: r.try_get(3).ctx(c)?,
            created: r.try_get(4).ctx(c)?,
            expires: r.try_get(5).ctx(c)?,
            uses_left: r.try_get(6).ctx(c)?,
            scheme: r.try_get(7).ctx(c)?,
        });
    }
    let mut sources: std::collections::HashMap<String, Vec<SourceRow>> = Default::default();
    let c = "reading source_failures";
    for r in q.query(sources_sql, params).ctx(c)? {
        let user: String = r.try_get(0).ctx(c)?;
        sources.entry(user).or_default().push(SourceRow {
            source: r.try_get(1).ctx(c)?,
            failures: r.try_get(2).ctx(c)?,
            first_failure: r.try_get(3).ctx(c)?,
            locked_until: r.try_get(4).ctx(c)?,
        });
    }
    let mut unlocks: std::collections::HashMap<String, Vec<UnlockRow>> = Default::default();
    let c = "reading unlocks";
    for r in q.query(unlocks_sql, params).ctx(c)? {
        let user: String = r.try_get(0).ctx(c)?;
        unlocks.entry(user).or_default().push(UnlockRow {
            ip: r.try_get(1).ctx(c)?,
            created: r.try_get(2).ctx(c)?,
            expires: r.try_get(3).ctx(c)?,
        });
    }
    Ok((codes, sources, unlocks))
}

/// Rows to records, in the order of `users` rows.
fn decode_all(
    users: Vec<UserRow>,
    (mut codes, mut sources, mut unlocks): Children,
) -> Result<Vec<UserRecord>, Fail> {
    users
        .into_iter()
        .map(|u| {
            let c = codes.remove(&u.name).unwrap_or_default();
            let s = sources.remove(&u.name).unwrap_or_default();
            let l = unlocks.remove(&u.name).unwrap_or_default();
            rows::decode(u, c, s, l).map_err(Fail::Store)
        })
        .collect()
}

/// Writes `recs` (all of them: the caller leaves out what did not change), replacing the
/// codes of `new_codes` users, the counters of `new_sources` users and the unlocks of
/// `new_unlocks` users.
fn write(
    tx: &mut Transaction<'_>,
    st: &Statements,
    recs: &[&UserRecord],
    new_codes: &[&UserRecord],
    new_sources: &[&UserRecord],
    new_unlocks: &[&UserRecord],
) -> Result<(), Fail> {
    if !recs.is_empty() {
        let rows: Vec<UserRow> = recs.iter().map(|r| rows::encode(r)).collect();
        macro_rules! col {
            ($f:ident) => {
                rows.iter().map(|r| r.$f.clone()).collect::<Vec<_>>()
            };
        }
        let (name, secret, algorithm, digits, period) = (
            col!(name),
            col!(secret),
            col!(algorithm),
            col!(digits),
            col!(period),
        );
        let (mfa_created, mfa_changed, first_seen, grace_started, last_step) = (
            col!(mfa_created),
            col!(mfa_changed),
            col!(first_seen),
            col!(grace_started),
            col!(last_step),
        );
        let (failures, first_failure, locked_until, login_count, last_login) = (
            col!(failures),
            col!(first_failure),
            col!(locked_until),
            col!(login_count),
            col!(last_login),
        );
        let (last_ip, last_outcome) = (col!(last_ip), col!(last_outcome));
        // Written with a new row; the update leaves it (a row's name never changes).
        let name_key: Vec<String> = rows
            .iter()
            .map(|r| mfa_model::lookalike_key(&r.name))
            .collect();
        tx.execute(
            &st.upsert,
            &[
                &name,
                &secret,
                &algorithm,
                &digits,
                &period,
                &mfa_created,
                &mfa_changed,
                &first_seen,
                &grace_started,
                &last_step,
                &failures,
                &first_failure,
                &locked_until,
                &login_count,
                &last_login,
                &last_ip,
                &last_outcome,
                &name_key,
            ],
        )
        .ctx("writing users")?;
    }
    if !new_codes.is_empty() {
        let users: Vec<String> = new_codes.iter().map(|r| r.name.to_string()).collect();
        tx.execute(&st.delete_codes, &[&users])
            .ctx("replacing one_time_codes")?;
        let (mut u, mut kind, mut salt, mut hash, mut created, mut expires, mut uses) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        let mut scheme = vec![];
        for r in new_codes {
            for c in rows::encode_codes(r) {
                u.push(r.name.to_string());
                kind.push(c.kind);
                salt.push(c.salt);
                hash.push(c.hash);
                created.push(c.created);
                expires.push(c.expires);
                uses.push(c.uses_left);
                scheme.push(c.scheme);
            }
        }
        if !u.is_empty() {
            tx.execute(
                &st.insert_codes,
                &[&u, &kind, &salt, &hash, &created, &expires, &uses, &scheme],
            )
            .ctx("replacing one_time_codes")?;
        }
    }
    if !new_sources.is_empty() {
        let users: Vec<String> = new_sources.iter().map(|r| r.name.to_string()).collect();
        tx.execute(&st.delete_sources, &[&users])
            .ctx("replacing source_failures")?;
        let (mut u, mut source, mut failures, mut first, mut locked) =
            (vec![], vec![], vec![], vec![], vec![]);
        for r in new_sources {
            for s in rows::encode_sources(r) {
                u.push(r.name.to_string());
                source.push(s.source);
                failures.push(s.failures);
                first.push(s.first_failure);
                locked.push(s.locked_until);
            }
        }
        if !u.is_empty() {
            tx.execute(
                &st.insert_sources,
                &[&u, &source, &failures, &first, &locked],
            )
            .ctx("replacing source_failures")?;
        }
    }
    if !new_unlocks.is_empty() {
        let users: Vec<String> = new_unlocks.iter().map(|r| r.name.to_string()).collect();
        tx.execute(&st.delete_unlocks, &[&users])
            .ctx("replacing unlocks")?;
        let (mut u, mut ip, mut created, mut expires) = (vec![], vec![], vec![], vec![]);
        for r in new_unlocks {
            for l in rows::encode_unlocks(r) {
                u.push(r.name.to_string());
                ip.push(l.ip);
                created.push(l.created);
                expires.push(l.expires);
            }
        }
        if !u.is_empty() {
            tx.execute(&st.insert_unlocks, &[&u, &ip, &created, &expires])
                .ctx("replacing unlocks")?;
        }
    }
    Ok(())
}

fn insert_audit(
    q: &mut impl postgres::GenericClient,
    st: &Statement,
    events: &[AuditEvent],
) -> Result<(), Fail> {
    if events.is_empty() {
        return Ok(());
    }
    macro_rules! col {
        ($f:ident) => {
            events.iter().map(|e| e.$f.clone()).collect::<Vec<_>>()
        };
    }
    q.execute(
        st,
        &[
            &col!(time),
            &col!(user),
            &col!(service),
            &col!(client_ip),
            &col!(decision),
            &col!(reason),
            &col!(detail),
        ],
    )
    .ctx("writing the audit trail")?;
    Ok(())
}

/// One try of a write transaction: lock the names, use up `invite` (its hash, at a time)
/// where one is given, read their rows, let `f` change them, write what changed and the
/// events, commit. `false` (rolled back, `f` not run) where the invite is no longer usable.
/// Marks the invite whose token hashes to `hash` used at `now`, inside the caller's
/// transaction, if it is still usable then; `false` if it is not. The row lock of the
/// UPDATE serialises two uses of one invite: the second re-checks `used IS NULL` on the
/// committed row and changes nothing.
fn take_invite(
    q: &mut impl postgres::GenericClient,
    hash: &[u8; 32],
    now: i64,
) -> Result<bool, Fail> {
    let n = q
        .execute(
            "UPDATE invites SET used = $2 WHERE hash = $1 AND used IS NULL AND expires > $2",
            &[&hash.as_slice(), &now],
        )
        .ctx("using an invite")?;
    Ok(n != 0)
}

fn transact_on(
    conn: &mut Conn,
    names: &[&UserName],
    invite: Option<(&[u8; 32], i64)>,
    f: &mut TxFn<'_>,
) -> Result<bool, Fail> {
    let Conn { client, st } = conn;
    let mut tx = client.transaction().ctx("starting a transaction")?;
    if names.len() > MANY_USERS {
        // An import of 100,000 users would need as many advisory locks, more than the
        // shared lock table holds (max_locks_per_transaction x max_connections: 6,400 by
        // default; "out of shared memory"). One table lock serialises it with every other
        // writer instead: they wait for it at their SELECT ... FOR UPDATE, holding only
        // their own advisory locks, which this transaction never asks for.
        tx.batch_execute("LOCK TABLE users IN EXCLUSIVE MODE")
            .ctx("locking the users table")?;
    } else {
        let mut keys: Vec<i64> = names.iter().map(|n| lock_key(n.as_str())).collect();
        keys.sort_unstable();
        keys.dedup();
        tx.execute(&st.lock, &[&keys]).ctx("locking users")?;
    }
    // After the users' locks, as every writer takes them.
    if let Some((hash, now)) = invite
        && !take_invite(&mut tx, hash, now)?
    {
        return Ok(false);
    }
    let strs: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    let found = tx
        .query(&st.lock_users, &[&strs])
        .ctx("reading users")?
        .iter()
        .map(read_user)
        .collect::<Result<Vec<_>, _>>()?;
    let children = if found.is_empty() {
        Default::default()
    } else {
        let have: Vec<&str> = found.iter().map(|u| u.name.as_str()).collect();
        read_children(&mut tx, &st.codes, &st.sources, &st.unlocks, &[&have])?
    };
    let mut by_name: std::collections::HashMap<String, UserRecord> = decode_all(found, children)?
        .into_iter()
        .map(|r| (r.name.to_string(), r))
        .collect();
    let before: Vec<Option<UserRecord>> =
        names.iter().map(|n| by_name.remove(n.as_str())).collect();
    let mut records = before.clone();
    let events = f(&mut records).map_err(|a| Fail::Store(StoreError::Aborted(a)))?;
    let (mut changed, mut codes, mut sources) = (Vec::new(), Vec::new(), Vec::new());
    let mut unlocks = Vec::new();
    for (i, rec) in records.iter().enumerate() {
        let Some(rec) = rec else { continue };
        if names.get(i) != Some(&&rec.name) {
            return Err(Fail::Store(StoreError::Aborted(Abort::Bug(
                "a transaction renamed a user",
            ))));
        }
        let old = before.get(i).and_then(Option::as_ref);
        if old == Some(rec) {
            continue;
        }
        changed.push(rec);
        if old.map(|b| &b.codes) != Some(&rec.codes) {
            codes.push(rec);
        }
        if old.map(|b| &b.sources) != Some(&rec.sources) {
            sources.push(rec);
        }
        if old.map(|b| &b.unlocks) != Some(&rec.unlocks) {
            unlocks.push(rec);
        }
    }
    let new_seeds: Vec<&UserRecord> = records
        .iter()
        .zip(&before)
        .filter_map(|(rec, old)| {
            let rec = rec.as_ref()?;
            let changed = rec.secret.is_some()
                && old.as_ref().and_then(|b| b.secret.as_ref()) != rec.secret.as_ref();
            changed.then_some(rec)
        })
        .collect();
    check_store_key(&mut tx, st, &new_seeds)?;
    write(&mut tx, st, &changed, &codes, &sources, &unlocks)?;
    insert_audit(&mut tx, &st.insert_audit, &events)?;
    tx.commit().ctx("committing")?;
    Ok(true)
}

fn read_store_key(
    q: &mut impl postgres::GenericClient,
    st: &Statement,
) -> Result<Option<KeyId>, Fail> {
    let c = "reading store_key";
    let rows = q.query(st, &[]).ctx(c)?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let id: Vec<u8> = row.try_get(0).ctx(c)?;
    id.try_into().map(Some).map_err(|_| {
        Fail::Store(StoreError::BadRow {
            user: String::new(),
            column: "store_key.key_id",
            problem: format!("not {KEY_ID_BYTES} bytes"),
        })
    })
}

/// The seeds of `recs` being written must be sealed under the store's key (or, in a store
/// that never had a key, be in the clear form): a process that opened the store before a
/// `mfactl rekey` must not write a seed under the old key into the rekeyed store. The
/// SHARE lock on `store_key` (held to the commit) waits for a rekey in progress, and keeps
/// the next one waiting until this transaction is done. SQLite's `check_store_key`.
fn check_store_key(
    tx: &mut Transaction<'_>,
    st: &Statements,
    recs: &[&UserRecord],
) -> Result<(), Fail> {
    if recs.is_empty() {
        return Ok(());
    }
    tx.batch_execute("LOCK TABLE store_key IN SHARE MODE")
        .ctx("locking store_key")?;
    let store = read_store_key(tx, &st.store_key)?;
    for rec in recs {
        if let Some(sealed) = &rec.secret
            && secret::sealed_key_id(sealed) != store
        {
            return Err(Fail::Store(StoreError::KeyChanged {
                context: format!("writing the key of user {:?}", rec.name.as_str()),
            }));
        }
    }
    Ok(())
}

/// Streams the names (`query_raw`: rows as they arrive, not a million at once).
fn each_name(q: &mut impl postgres::GenericClient, f: &mut dyn FnMut(&str)) -> Result<(), Fail> {
    use postgres::fallible_iterator::FallibleIterator;
    let c = "reading the user names";
    let no_params: [&(dyn postgres::types::ToSql + Sync); 0] = [];
    let mut rows = q
        .query_raw("SELECT name FROM users ORDER BY name", no_params)
        .ctx(c)?;
    while let Some(r) = rows.next().ctx(c)? {
        f(r.try_get(0).ctx(c)?);
    }
    Ok(())
}

fn read_names_checked(
    q: &mut impl postgres::GenericClient,
    st: &Statement,
) -> Result<Option<String>, Fail> {
    let c = "reading meta";
    match q.query(st, &[&META_NAME_RULES]).ctx(c)?.first() {
        Some(r) => Ok(Some(r.try_get(0).ctx(c)?)),
        None => Ok(None),
    }
}

const INVITE_COLUMNS: &str = "SELECT hash, \"user\", created, expires, used FROM invites";

fn read_invite(r: &Row) -> Result<InviteRow, Fail> {
    let c = "reading an invites row";
    Ok(InviteRow {
        hash: r.try_get(0).ctx(c)?,
        user: r.try_get(1).ctx(c)?,
        created: r.try_get(2).ctx(c)?,
        expires: r.try_get(3).ctx(c)?,
        used: r.try_get(4).ctx(c)?,
    })
}

/// [`NameTx`] on one open write transaction (see [`Store::maintain_names`]).
struct PgNameTx<'a, 't> {
    tx: &'a mut Transaction<'t>,
    st: &'a Statements,
    store: &'a PgStore,
}

impl PgNameTx<'_, '_> {
    fn load_one(&mut self, name: &str) -> Result<Option<UserRecord>, Fail> {
        let found = self
            .tx
            .query(&self.st.lock_users, &[&[name].as_slice()])
            .ctx("reading a user")?
            .iter()
            .map(read_user)
            .collect::<Result<Vec<_>, _>>()?;
        if found.is_empty() {
            return Ok(None);
        }
        let one = [name];
        let children = read_children(
            self.tx,
            &self.st.codes,
            &self.st.sources,
            &self.st.unlocks,
            &[&one.as_slice()],
        )?;
        Ok(decode_all(found, children)?.pop())
    }

    fn put_one(&mut self, rec: &UserRecord) -> Result<(), Fail> {
        check_store_key(self.tx, self.st, &[rec])?;
        write(self.tx, self.st, &[rec], &[rec], &[rec], &[rec])
    }
}

/// The names with the key `$1` or none, through `users_name_key`.
fn names_with_key(q: &mut impl postgres::GenericClient, key: &str) -> Result<Vec<String>, Fail> {
    let c = "reading the names that look alike";
    q.query(
        "SELECT name FROM users WHERE name_key = $1 OR name_key IS NULL ORDER BY name",
        &[&key],
    )
    .ctx(c)?
    .iter()
    .map(|r| r.try_get(0).ctx(c))
    .collect()
}

impl NameTx for PgNameTx<'_, '_> {
    fn each_name(&mut self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
        each_name(self.tx, f).map_err(|e| self.store.classify(e))
    }

    fn names_checked(&mut self) -> Result<Option<String>, StoreError> {
        read_names_checked(self.tx, &self.st.names_checked).map_err(|f| self.store.classify(f))
    }

    fn load(&mut self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        self.load_one(name).map_err(|f| self.store.classify(f))
    }

    fn remove(&mut self, name: &str) -> Result<bool, StoreError> {
        // The one-time codes and counters go with the row (ON DELETE CASCADE); the audit
        // trail stays.
        let n = self
            .tx
            .execute("DELETE FROM users WHERE name = $1", &[&name])
            .ctx("removing a user")
            .map_err(|f| self.store.classify(f))?;
        Ok(n == 1)
    }

    fn put(&mut self, rec: &UserRecord) -> Result<(), StoreError> {
        self.put_one(rec).map_err(|f| self.store.classify(f))
    }

    fn set_names_checked(&mut self, rules: &str) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&META_NAME_RULES, &rules],
            )
            .ctx("writing meta")
            .map_err(|f| self.store.classify(f))?;
        Ok(())
    }

    fn names_with_key(&mut self, key: &str) -> Result<Vec<String>, StoreError> {
        names_with_key(self.tx, key).map_err(|f| self.store.classify(f))
    }

    fn names_without_key(&mut self, limit: usize) -> Result<Vec<String>, StoreError> {
        let c = "reading the names without a look-alike key";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .tx
            .query(
                "SELECT name FROM users WHERE name_key IS NULL ORDER BY name LIMIT $1",
                &[&limit],
            )
            .ctx(c)
            .map_err(|f| self.store.classify(f))?;
        rows.iter()
            .map(|r| r.try_get(0).ctx(c))
            .collect::<Result<_, _>>()
            .map_err(|f| self.store.classify(f))
    }

    fn set_name_key(&mut self, name: &str, key: &str) -> Result<(), StoreError> {
        self.tx
            .execute(
                "UPDATE users SET name_key = $2 WHERE name = $1",
                &[&name, &key],
            )
            .ctx("writing a look-alike key")
            .map_err(|f| self.store.classify(f))?;
        Ok(())
    }

    fn forget_name_keys(&mut self) -> Result<(), StoreError> {
        self.tx
            .execute(
                "UPDATE users SET name_key = NULL WHERE name_key IS NOT NULL",
                &[],
            )
            .ctx("emptying the look-alike keys")
            .map_err(|f| self.store.classify(f))?;
        Ok(())
    }
}

impl Store for PgStore {
    fn user(&self, name: &UserName) -> Result<Option<UserRecord>, StoreError> {
        self.run(|c| {
            let Conn { client, st } = c;
            let rows = client
                .query(&st.user, &[&name.as_str()])
                .ctx("reading a user")?;
            let found = rows.iter().map(read_user).collect::<Result<Vec<_>, _>>()?;
            if found.is_empty() {
                return Ok(None);
            }
            let one = [name.as_str()];
            let children = read_children(
                client,
                &st.codes,
                &st.sources,
                &st.unlocks,
                &[&one.as_slice()],
            )?;
            Ok(decode_all(found, children)?.pop())
        })
    }

    fn each_user(&self, f: &mut UserFn<'_>) -> Result<(), StoreError> {
        // Pages of 1000 users by name (keyset: `name > last`, in the database's own
        // collation both ways), each with its children, all in one snapshot: bounded memory
        // for any number of users.
        const PAGE: i64 = 1000;
        self.run(|c| {
            let Conn { client, st } = c;
            let mut tx = client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .ctx("starting a read")?;
            let page_sql = tx
                .prepare(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE name > $1 ORDER BY name LIMIT $2"
                ))
                .ctx("reading users")?;
            let mut last = String::new();
            loop {
                let found = tx
                    .query(&page_sql, &[&last, &PAGE])
                    .ctx("reading users")?
                    .iter()
                    .map(read_user)
                    .collect::<Result<Vec<_>, _>>()?;
                let Some(end) = found.last() else { break };
                last = end.name.clone();
                let names: Vec<&str> = found.iter().map(|u| u.name.as_str()).collect();
                let children =
                    read_children(&mut tx, &st.codes, &st.sources, &st.unlocks, &[&names])?;
                drop(names);
                for rec in decode_all(found, children)? {
                    f(rec)?;
                }
            }
            tx.commit().ctx("ending a read")?;
            Ok(())
        })
    }

    fn transact_sorted(&self, names: &[&UserName], f: &mut TxFn<'_>) -> Result<(), StoreError> {
        self.transact_retrying(names, None, f).map(|_| ())
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
                usable = self.transact_retrying(sorted, Some((hash, now)), g)?;
                Ok(())
            },
            f,
        )?;
        Ok(usable)
    }

    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        self.run(|c| {
            let Conn { client, st } = c;
            insert_audit(client, &st.insert_audit, events)
        })
    }

    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let limit = q.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        self.run(|c| {
            let ctx = "reading the audit trail";
            let rows = c
                .client
                .query(
                    "SELECT time, \"user\", service, client_ip, decision, reason, detail FROM audit
                     WHERE ($1::text IS NULL OR \"user\" = $1) AND ($2::bigint IS NULL OR time >= $2)
                     ORDER BY time, id LIMIT $3",
                    &[&q.user, &q.since, &limit],
                )
                .ctx(ctx)?;
            rows.iter()
                .map(|r| {
                    Ok(AuditEvent {
                        time: r.try_get(0).ctx(ctx)?,
                        user: r.try_get(1).ctx(ctx)?,
                        service: r.try_get(2).ctx(ctx)?,
                        client_ip: r.try_get(3).ctx(ctx)?,
                        decision: r.try_get(4).ctx(ctx)?,
                        reason: r.try_get(5).ctx(ctx)?,
                        detail: r.try_get(6).ctx(ctx)?,
                    })
                })
                .collect()
        })
    }

    fn prune_audit(&self, before: i64) -> Result<usize, StoreError> {
        self.run(|c| {
            let n = c
                .client
                .execute("DELETE FROM audit WHERE time < $1", &[&before])
                .ctx("pruning the audit trail")?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn prune_unenrolled(&self, before: i64) -> Result<usize, StoreError> {
        self.run(|c| {
            let n = c
                .client
                .execute(
                    "DELETE FROM users WHERE secret IS NULL AND mfa_created IS NULL AND login_count = 0
                       AND first_seen < $1
                       AND NOT EXISTS (SELECT 1 FROM one_time_codes o WHERE o.\"user\" = users.name)",
                    &[&before],
                )
                .ctx("pruning users")?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn import_all(
        &self,
        users: &[UserRecord],
        audit: &[AuditEvent],
        facts: &StoreFacts,
    ) -> Result<(), StoreError> {
        self.run(|c| {
            let Conn { client, st } = c;
            let mut tx = client.transaction().ctx("starting the import")?;
            // Nobody writes meanwhile: a node that started on the empty store would
            // otherwise slip its rows (or its key) in between the check and the copy.
            tx.batch_execute(
                "LOCK TABLE users, one_time_codes, source_failures, unlocks, audit, store_key, meta IN EXCLUSIVE MODE",
            )
            .ctx("locking the target")?;
            let row = tx
                .query_one(
                    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM audit)",
                    &[],
                )
                .ctx("counting the target's rows")?;
            let (u, a): (i64, i64) = (
                row.try_get(0).ctx("counting")?,
                row.try_get(1).ctx("counting")?,
            );
            if u != 0 || a != 0 {
                return Err(Fail::Store(StoreError::NotEmpty {
                    store: self.target.clone(),
                    users: u,
                    audit: a,
                }));
            }
            // The source's key first: every seed is checked against it below.
            match &facts.key_id {
                Some(id) => tx.execute(
                    "INSERT INTO store_key (id, key_id) VALUES (1, $1)
                     ON CONFLICT (id) DO UPDATE SET key_id = excluded.key_id",
                    &[&id.as_slice()],
                ),
                None => tx.execute("DELETE FROM store_key", &[]),
            }
            .ctx("copying the store key id")?;
            tx.execute("DELETE FROM meta WHERE key = $1", &[&META_NAME_RULES])
                .ctx("copying meta")?;
            if let Some(rules) = &facts.names_checked {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ($1, $2)",
                    &[&META_NAME_RULES, rules],
                )
                .ctx("copying meta")?;
            }
            for chunk in users.chunks(1000) {
                let refs: Vec<&UserRecord> = chunk.iter().collect();
                let seeds: Vec<&UserRecord> =
                    refs.iter().copied().filter(|r| r.secret.is_some()).collect();
                check_store_key(&mut tx, st, &seeds)?;
                write(&mut tx, st, &refs, &refs, &refs, &refs)?;
            }
            for chunk in audit.chunks(5000) {
                insert_audit(&mut tx, &st.insert_audit, chunk)?;
            }
            tx.commit().ctx("committing the import")?;
            Ok(())
        })
    }

    fn store_key_id(&self) -> Result<Option<KeyId>, StoreError> {
        self.run(|c| {
            let Conn { client, st } = c;
            read_store_key(client, &st.store_key)
        })
    }

    fn reseal(
        &self,
        expect: Option<KeyId>,
        new: KeyId,
        f: &mut ResealFn<'_>,
        events: &[AuditEvent],
    ) -> Result<usize, StoreError> {
        // `users` then `store_key`, the order every writer takes them in: no login writes
        // while the seeds are re-sealed (SQLite's BEGIN IMMEDIATE), and every seed written
        // before is in the read below.
        self.run(|c| {
            let Conn { client, st } = c;
            let mut tx = client.transaction().ctx("starting the re-encryption")?;
            tx.batch_execute(
                "LOCK TABLE users IN EXCLUSIVE MODE; LOCK TABLE store_key IN EXCLUSIVE MODE",
            )
            .ctx("locking the store for the re-encryption")?;
            if read_store_key(&mut tx, &st.store_key)? != expect {
                return Err(Fail::Store(StoreError::KeyChanged {
                    context: "re-encrypting the stored keys".into(),
                }));
            }
            let c = "reading the stored keys";
            let rows: Vec<(String, Vec<u8>)> = tx
                .query(
                    "SELECT name, secret FROM users WHERE secret IS NOT NULL ORDER BY name",
                    &[],
                )
                .ctx(c)?
                .iter()
                .map(|r| Ok((r.try_get(0).ctx(c)?, r.try_get(1).ctx(c)?)))
                .collect::<Result<_, Fail>>()?;
            let count = rows.len();
            let (mut names, mut seeds) = (Vec::with_capacity(count), Vec::with_capacity(count));
            for (name, bytes) in rows {
                let sealed = rows::reseal_one(&name, bytes, new, f)?;
                names.push(name);
                seeds.push(sealed.stored().to_vec());
            }
            for (n, s) in names.chunks(1000).zip(seeds.chunks(1000)) {
                tx.execute(
                    "UPDATE users SET secret = u.secret FROM unnest($1::text[], $2::bytea[]) AS u(name, secret) WHERE users.name = u.name",
                    &[&n, &s],
                )
                .ctx("writing the re-encrypted keys")?;
            }
            tx.execute(
                "INSERT INTO store_key (id, key_id) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET key_id = excluded.key_id",
                &[&new.as_slice()],
            )
            .ctx("recording the store key id")?;
            insert_audit(&mut tx, &st.insert_audit, events)?;
            tx.commit().ctx("committing the re-encryption")?;
            Ok(count)
        })
    }

    fn put_invites(&self, invites: &[Invite], events: &[AuditEvent]) -> Result<(), StoreError> {
        self.run(|c| {
            let Conn { client, st } = c;
            // One transaction: a hash already stored (the primary key) refuses the whole
            // set and its events.
            let mut tx = client.transaction().ctx("starting to store invites")?;
            if !invites.is_empty() {
                let rows: Vec<InviteRow> = invites.iter().map(rows::encode_invite).collect();
                macro_rules! col {
                    ($f:ident) => {
                        rows.iter().map(|r| r.$f.clone()).collect::<Vec<_>>()
                    };
                }
                tx.execute(
                    "INSERT INTO invites (hash, \"user\", created, expires, used) SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])",
                    &[
                        &col!(hash),
                        &col!(user),
                        &col!(created),
                        &col!(expires),
                        &col!(used),
                    ],
                )
                .ctx("storing invites")?;
            }
            insert_audit(&mut tx, &st.insert_audit, events)?;
            tx.commit().ctx("committing the invites")?;
            Ok(())
        })
    }

    fn invite(&self, hash: &[u8; 32]) -> Result<Option<Invite>, StoreError> {
        self.run(|c| {
            let ctx = "reading an invite";
            let row = c
                .client
                .query_opt(
                    &format!("{INVITE_COLUMNS} WHERE hash = $1"),
                    &[&hash.as_slice()],
                )
                .ctx(ctx)?;
            match row {
                Some(r) => rows::decode_invite(read_invite(&r)?)
                    .map(Some)
                    .map_err(Fail::Store),
                None => Ok(None),
            }
        })
    }

    fn invites(&self) -> Result<Vec<Invite>, StoreError> {
        self.run(|c| {
            c.client
                .query(
                    &format!("{INVITE_COLUMNS} ORDER BY created DESC, \"user\""),
                    &[],
                )
                .ctx("reading invites")?
                .iter()
                .map(|r| rows::decode_invite(read_invite(r)?).map_err(Fail::Store))
                .collect()
        })
    }

    fn use_invite(
        &self,
        hash: &[u8; 32],
        now: i64,
        events: &[AuditEvent],
    ) -> Result<bool, StoreError> {
        self.run(|c| {
            let Conn { client, st } = c;
            let mut tx = client.transaction().ctx("starting to use an invite")?;
            if !take_invite(&mut tx, hash, now)? {
                return Ok(false);
            }
            insert_audit(&mut tx, &st.insert_audit, events)?;
            tx.commit().ctx("committing the invite's use")?;
            Ok(true)
        })
    }

    fn names_checked(&self) -> Result<Option<String>, StoreError> {
        self.run(|c| {
            let Conn { client, st } = c;
            read_names_checked(client, &st.names_checked)
        })
    }

    fn each_user_name(&self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
        self.run(|c| each_name(&mut c.client, f))
    }

    fn names_with_key(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.run(|c| names_with_key(&mut c.client, key))
    }

    fn maintain_names(&self, f: &mut NamesFn<'_>) -> Result<(), StoreError> {
        self.run(|c| {
            let Conn { client, st } = c;
            let mut tx = client.transaction().ctx("starting the name upkeep")?;
            // The whole upkeep against every other writer (SQLite's BEGIN IMMEDIATE): a
            // login cannot create or change a record while names are merged or renamed.
            // Plain reads go on.
            tx.batch_execute("LOCK TABLE users IN EXCLUSIVE MODE")
                .ctx("locking users for the name upkeep")?;
            let events = f(&mut PgNameTx {
                tx: &mut tx,
                st,
                store: self,
            })?;
            if let Some(events) = events {
                insert_audit(&mut tx, &st.insert_audit, &events)?;
                tx.commit().ctx("committing the name upkeep")?;
            }
            Ok(())
        })
    }
}
