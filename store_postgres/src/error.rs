//! PostgreSQL's errors inside a transaction: which ones re-run it (conflicts), which ones
//! mean the connection is gone, and the store's error they become.

use mfa_store::StoreError;
use postgres::error::SqlState;

/// A failure inside one call: PostgreSQL's error (to classify, retry, or drop the
/// connection) or one of ours.
pub(crate) enum PgError {
    Pg(&'static str, postgres::Error),
    Store(StoreError),
}

impl From<StoreError> for PgError {
    fn from(e: StoreError) -> Self {
        PgError::Store(e)
    }
}

/// `?` for a PostgreSQL result, saying what was being done.
pub(crate) trait Context<T> {
    fn ctx(self, what: &'static str) -> Result<T, PgError>;
}

impl<T> Context<T> for Result<T, postgres::Error> {
    fn ctx(self, what: &'static str) -> Result<T, PgError> {
        self.map_err(|e| PgError::Pg(what, e))
    }
}

/// PostgreSQL's own words for an error: the server's message and SQLSTATE, or the client's
/// error with its cause (the bare `Display` says only "db error").
pub(crate) fn describe(e: &postgres::Error) -> String {
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

pub(crate) fn retryable(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

/// A connection that saw anything but a server-side error of its statement is not reused.
pub(crate) fn broken(e: &postgres::Error) -> bool {
    e.is_closed() || e.as_db_error().is_none()
}
