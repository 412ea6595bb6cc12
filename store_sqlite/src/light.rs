//! Transactions whose decisions consume nothing (`Store::transact_light`): committed without
//! waiting for the disk. SQLite fixes a connection's `synchronous` level outside a
//! transaction ("Safety level may not be changed inside a transaction"), so the caller's
//! guess chooses it before `BEGIN`; where the guess was wrong, the WAL is synced after the
//! commit and before this returns, which is what `synchronous=FULL` would have done.

use mfa_model::UserName;
use mfa_store::{GroupCommit, LockOrder, StoreError, TxFn};
use rusqlite::Connection;

use crate::conn::SqliteStore;
use crate::error::db;
use crate::tx::transact_on;

impl SqliteStore {
    /// Runs `f` on a pooled connection switched to `synchronous=NORMAL` for it: its commits
    /// write the WAL and wait for no fsync (the light logins here, push approval's light
    /// writes in `push.rs`).
    pub(crate) fn relaxed_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.take_conn()?;
        // A connection that fails to switch either way is dropped, never pooled: the next
        // caller must get `synchronous=FULL`.
        conn.execute_batch("PRAGMA synchronous=NORMAL")
            .map_err(db)?;
        let out = f(&mut conn);
        if conn.execute_batch("PRAGMA synchronous=FULL").is_ok() {
            self.put_back(conn);
        }
        out
    }

    /// Runs `f`, a write transaction, on a [`Self::relaxed_conn`]; after its commit, where
    /// `light()` says it consumed nothing, the commit waits for no fsync; where the caller
    /// guessed wrong (the locked rows decided otherwise), the WAL is synced before this
    /// returns. The light logins here and push approval's light writes (`push.rs`).
    pub(crate) fn relaxed_commit<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
        light: &dyn Fn() -> bool,
    ) -> Result<T, StoreError> {
        let out = self.relaxed_conn(f)?;
        if light() {
            self.relaxed
                .store(true, std::sync::atomic::Ordering::Release);
        } else {
            self.sync()?;
        }
        Ok(out)
    }

    pub(crate) fn transact_light_sorted(
        &self,
        names: &[&UserName],
        f: &mut TxFn<'_>,
        light: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        self.relaxed_commit(|conn| transact_on(conn, names, None, f), light)
            .map(drop)
    }

    pub(crate) fn transact_light_any(
        &self,
        names: &[&UserName],
        f: &mut TxFn<'_>,
        light: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        LockOrder::new(names).run(|sorted, g| self.transact_light_sorted(sorted, g, light), f)
    }
}
