//! Group commit: deferred commits made durable by one fdatasync, and the WAL kept short by
//! checkpoints beside the writer.

use std::fs::File;
use std::path::{Path, PathBuf};

use mfa_model::UserName;
use mfa_store::{GroupCommit, LockOrder, StoreError, TxFn};
use rusqlite::Connection;

use crate::conn::SqliteStore;
use crate::error::{db, io_error};
use crate::tx::transact_on;

/// WAL size (4 KiB pages) past which the daemon's writer lets the log start over.
pub(crate) const RESTART_FRAMES: u64 = 4096;

impl GroupCommit for SqliteStore {
    fn transact_deferred(&self, names: &[&UserName], f: &mut TxFn<'_>) -> Result<(), StoreError> {
        LockOrder::new(names).run(
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

impl SqliteStore {
    /// SQLite's write-ahead log beside the database.
    pub(crate) fn wal_path(&self) -> PathBuf {
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
            let log: i64 = c
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
                .map_err(db)?;
            Ok(u64::try_from(log).unwrap_or(0))
        };
        if on_writer {
            self.with_deferred_conn(run)
        } else {
            self.with_conn(run)
        }
    }
}
