//! Transactions whose decisions consume nothing (`Store::transact_light`): committed without
//! waiting for the disk. SQLite fixes a connection's `synchronous` level outside a
//! transaction ("Safety level may not be changed inside a transaction"), so the caller's
//! guess chooses it before `BEGIN`; where the guess was wrong, the WAL is synced after the
//! commit and before this returns, which is what `synchronous=FULL` would have done.

use mfa_model::UserName;
use mfa_store::{GroupCommit, LockOrder, StoreError, TxFn};

use crate::conn::SqliteStore;
use crate::error::db;
use crate::tx::transact_on;

impl SqliteStore {
    pub(crate) fn transact_light_sorted(
        &self,
        names: &[&UserName],
        f: &mut TxFn<'_>,
        light: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        // A connection that fails to switch either way is dropped, never pooled: the next
        // caller must get `synchronous=FULL`.
        conn.execute_batch("PRAGMA synchronous=NORMAL")
            .map_err(db)?;
        let out = transact_on(&mut conn, names, None, f);
        if conn.execute_batch("PRAGMA synchronous=FULL").is_ok() {
            self.put_back(conn);
        }
        out?;
        if light() {
            self.relaxed
                .store(true, std::sync::atomic::Ordering::Release);
            Ok(())
        } else {
            // Guessed wrong (the record changed between the read and the lock): durable now.
            self.sync()
        }
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
