//! SQLite's errors as the store's: what a caller can act on (wait, restore, read).

use std::path::Path;

use mfa_store::StoreError;

pub(crate) fn io_error(e: std::io::Error, what: &Path) -> StoreError {
    StoreError::Io {
        path: what.to_path_buf(),
        source: e,
    }
}

/// SQLite's result codes sorted into what a caller can act on: wait (busy), restore
/// (corrupt), or read the message.
pub(crate) fn sqlite_error(context: &str, e: rusqlite::Error) -> StoreError {
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

/// `?` for a rusqlite result in a function that returns [`StoreError`] (the orphan rule
/// keeps a `From` impl out of this crate).
pub(crate) fn db(e: rusqlite::Error) -> StoreError {
    sqlite_error("sqlite", e)
}
