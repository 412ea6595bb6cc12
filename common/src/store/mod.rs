//! The user store: records, the storage trait, and the SQLite implementation.
//!
//! The trait is deliberately small: read a user, list users, and run a pure function over a
//! set of users' records inside one write transaction. All logic (code checks, replay,
//! lockout, enrolment) lives in that pure function, so a PostgreSQL store for several servers
//! only needs `SELECT ... FOR UPDATE` and the same closure.

mod sqlite;

pub use sqlite::OpenMode;

use std::fmt;

use crate::audit::AuditEvent;
use crate::secret::TotpSecret;
use crate::totp::TotpParams;

pub use sqlite::SqliteStore;

/// Backup codes (on paper) or a temporary-access code (issued by the administrator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtcKind {
    Backup,
    Temporary,
}

impl OtcKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OtcKind::Backup => "backup",
            OtcKind::Temporary => "temporary",
        }
    }
}

/// A one-time code, stored only as a salted hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeCode {
    pub kind: OtcKind,
    pub salt: [u8; 16],
    pub hash: [u8; 32],
    pub created: i64,
    pub expires: Option<i64>,
    pub uses_left: u32,
}

impl OneTimeCode {
    pub fn usable(&self, now: i64) -> bool {
        self.uses_left > 0 && self.expires.is_none_or(|e| now < e)
    }
}

/// Everything the product knows about one user. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    /// `None`: not enrolled (never, or unlinked).
    pub secret: Option<TotpSecret>,
    pub params: TotpParams,
    pub mfa_created: Option<i64>,
    pub mfa_changed: Option<i64>,
    pub first_seen: i64,
    pub grace_started: Option<i64>,
    pub last_step: Option<i64>,
    /// Wrong codes in the current lockout window.
    pub failures: u32,
    pub first_failure: Option<i64>,
    pub locked_until: Option<i64>,
    pub login_count: u64,
    pub last_login: Option<i64>,
    pub last_ip: Option<String>,
    pub last_outcome: Option<String>,
    pub codes: Vec<OneTimeCode>,
}

impl UserRecord {
    pub fn new(name: &str, params: TotpParams, now: i64) -> Self {
        Self {
            name: name.to_string(),
            secret: None,
            params,
            mfa_created: None,
            mfa_changed: None,
            first_seen: now,
            grace_started: None,
            last_step: None,
            failures: 0,
            first_failure: None,
            locked_until: None,
            login_count: 0,
            last_login: None,
            last_ip: None,
            last_outcome: None,
            codes: Vec::new(),
        }
    }

    pub fn enrolled(&self) -> bool {
        self.secret.is_some()
    }

    pub fn locked(&self, now: i64) -> Option<i64> {
        self.locked_until.filter(|&u| now < u)
    }

    pub fn usable_codes(&self, kind: OtcKind, now: i64) -> usize {
        self.codes
            .iter()
            .filter(|c| c.kind == kind && c.usable(now))
            .count()
    }
}

#[derive(Debug)]
pub enum StoreError {
    /// The database file does not exist (and the caller asked not to create it).
    Missing(String),
    /// The database could not be opened or used.
    Db(String),
    /// A stored row does not make sense; names the user and the column.
    BadRow {
        user: String,
        column: &'static str,
        problem: String,
    },
    /// The database was written by a newer version.
    Schema(String),
    /// The transaction's function refused the change; nothing was written.
    Refused(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Missing(p) => write!(
                f,
                "the store {p} does not exist (enrol a user with mfactl first)"
            ),
            StoreError::Db(e) => write!(f, "store error: {e}"),
            StoreError::BadRow {
                user,
                column,
                problem,
            } => {
                write!(
                    f,
                    "stored record of user {user:?} is damaged: column {column}: {problem}"
                )
            }
            StoreError::Schema(e) => write!(f, "store schema: {e}"),
            StoreError::Refused(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}

/// What a transaction function sees: the named users' records (`None` where absent), in the
/// order named. It may create (`None` -> `Some`) or change records; deleting is not offered,
/// because history stays. It returns the audit events to write in the same transaction, or a
/// refusal that rolls everything back.
pub type TxFn<'a> = dyn FnMut(&mut [Option<UserRecord>]) -> Result<Vec<AuditEvent>, String> + 'a;

/// Audit query.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub user: Option<String>,
    pub since: Option<i64>,
    pub limit: Option<usize>,
}

pub trait Store: Send + Sync {
    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    fn users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Runs `f` over the records of `names` in one write transaction: either everything `f`
    /// changed and every event it returned is stored, or nothing is.
    fn transact(&self, names: &[&str], f: &mut TxFn<'_>) -> Result<(), StoreError>;
    /// `transact`, committed without waiting for the disk: visible to every reader at once,
    /// durable only once a later [`Store::sync`] returns. For group commit where the fsync
    /// runs on another thread while the next batch is computed; the caller must acknowledge
    /// nothing before that `sync`.
    fn transact_deferred(&self, names: &[&str], f: &mut TxFn<'_>) -> Result<(), StoreError>;
    /// Makes every transaction committed so far durable.
    fn sync(&self) -> Result<(), StoreError>;
    /// Housekeeping for a process that writes without pause (SQLite: copying the WAL back
    /// into the database, which `transact_deferred` leaves to this). `on_writer = false`
    /// runs beside the writer without blocking it; `true` runs on the deferred-commit
    /// connection between its transactions and lets the log start over. Returns how much
    /// log is left (SQLite: WAL frames).
    fn checkpoint(&self, on_writer: bool) -> Result<u64, StoreError>;
    /// Audit events that belong to no stored user change (e.g. a trusted-network login).
    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;
    /// Deletes audit events before `before`; returns how many.
    fn prune_audit(&self, before: i64) -> Result<usize, StoreError>;
}
