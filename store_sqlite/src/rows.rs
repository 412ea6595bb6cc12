//! A user's rows read into a record and written back, and the invites' rows; every column
//! is checked by `mfa_store::rows`.

use mfa_model::UserRecord;
use mfa_store::rows::{self, CodeRow, InviteRow, SourceRow, UnlockRow, UserRow};
use mfa_store::{Abort, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::db;
use crate::tx::check_store_key;

/// The columns a login changes (see `save`).
pub(crate) const UPDATE_LOGIN_COLUMNS: &str =
    "UPDATE users SET grace_started=?2, last_step=?3, failures=?4,
   first_failure=?5, locked_until=?6, login_count=?7, last_login=?8, last_ip=?9, last_outcome=?10
 WHERE name = ?1";

pub(crate) const SELECT_USER: &str =
    concat!("SELECT ", user_columns!(), " FROM users WHERE name = ?1");

pub(crate) const SELECT_USERS: &str =
    concat!("SELECT ", user_columns!(), " FROM users ORDER BY name");

/// The name never changes in a row (a rename is a remove and a put), so neither does its
/// `name_key`: written with the row, left alone by the update.
pub(crate) const UPSERT_USER: &str = concat!(
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

pub(crate) fn read_row(row: &Row<'_>) -> Result<UserRow, rusqlite::Error> {
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
pub(crate) struct Merge<'s, T> {
    rows: rusqlite::Rows<'s>,
    read: fn(&Row<'_>) -> Result<T, rusqlite::Error>,
    next: Option<(String, T)>,
}

impl<'s, T> Merge<'s, T> {
    pub(crate) fn new(
        mut rows: rusqlite::Rows<'s>,
        read: fn(&Row<'_>) -> Result<T, rusqlite::Error>,
    ) -> Result<Self, StoreError> {
        let next = Self::advance(&mut rows, read)?;
        Ok(Merge { rows, read, next })
    }

    pub(crate) fn advance(
        rows: &mut rusqlite::Rows<'s>,
        read: fn(&Row<'_>) -> Result<T, rusqlite::Error>,
    ) -> Result<Option<(String, T)>, StoreError> {
        Ok(match rows.next().map_err(db)? {
            Some(r) => Some((r.get(0).map_err(db)?, read(r).map_err(db)?)),
            None => None,
        })
    }

    pub(crate) fn take(&mut self, user: &str) -> Result<Vec<T>, StoreError> {
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

pub(crate) fn read_codes(conn: &Connection, user: &str) -> Result<Vec<CodeRow>, StoreError> {
    let mut st = conn.prepare_cached("SELECT kind, salt, hash, created, expires, uses_left, scheme FROM one_time_codes WHERE user = ?1 ORDER BY rowid").map_err(db)?;
    let rows = st.query_map([user], |r| code_row(r, 0)).map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

/// A `one_time_codes` row whose columns start at `at` (kind, salt, hash, created, expires,
/// uses_left, scheme).
pub(crate) fn code_row(r: &Row<'_>, at: usize) -> Result<CodeRow, rusqlite::Error> {
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
pub(crate) fn source_row(r: &Row<'_>, at: usize) -> Result<SourceRow, rusqlite::Error> {
    Ok(SourceRow {
        source: r.get(at)?,
        failures: r.get(at + 1)?,
        first_failure: r.get(at + 2)?,
        locked_until: r.get(at + 3)?,
    })
}

/// An `unlocks` row from `at` (ip, created, expires).
pub(crate) fn unlock_row(r: &Row<'_>, at: usize) -> Result<UnlockRow, rusqlite::Error> {
    Ok(UnlockRow {
        ip: r.get(at)?,
        created: r.get(at + 1)?,
        expires: r.get(at + 2)?,
    })
}

pub(crate) fn read_sources(conn: &Connection, user: &str) -> Result<Vec<SourceRow>, StoreError> {
    let mut st = conn.prepare_cached("SELECT source, failures, first_failure, locked_until FROM source_failures WHERE user = ?1 ORDER BY rowid").map_err(db)?;
    let rows = st.query_map([user], |r| source_row(r, 0)).map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

pub(crate) fn read_unlocks(conn: &Connection, user: &str) -> Result<Vec<UnlockRow>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT ip, created, expires FROM unlocks WHERE user = ?1 ORDER BY rowid")
        .map_err(db)?;
    let rows = st.query_map([user], |r| unlock_row(r, 0)).map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

pub(crate) const INVITE_COLUMNS: &str = "SELECT hash, user, created, expires, used FROM invites";

pub(crate) fn read_invite(r: &Row<'_>) -> Result<InviteRow, rusqlite::Error> {
    Ok(InviteRow {
        hash: r.get(0)?,
        user: r.get(1)?,
        created: r.get(2)?,
        expires: r.get(3)?,
        used: r.get(4)?,
    })
}

pub(crate) fn load(conn: &Connection, name: &str) -> Result<Option<UserRecord>, StoreError> {
    let mut st = conn.prepare_cached(SELECT_USER).map_err(db)?;
    match st.query_row([name], read_row).optional().map_err(db)? {
        Some(row) => Ok(Some(rows::decode(
            row,
            read_codes(conn, name)?,
            read_sources(conn, name)?,
            read_unlocks(conn, name)?,
        )?)),
        None => Ok(None),
    }
}

pub(crate) fn save(
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
            let n = conn
                .prepare_cached(UPDATE_LOGIN_COLUMNS)
                .map_err(db)?
                .execute(params![
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
                ])
                .map_err(db)?;
            if n != 1 {
                return Err(StoreError::Aborted(Abort::Bug(
                    "a user read in this transaction has no row to update",
                )));
            }
        }
        _ => {
            let r = rows::encode(rec);
            conn.prepare_cached(UPSERT_USER)
                .map_err(db)?
                .execute(params![
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
                ])
                .map_err(db)?;
        }
    }
    if before.map(|b| &b.codes) != Some(&rec.codes) {
        conn.prepare_cached("DELETE FROM one_time_codes WHERE user = ?1")
            .map_err(db)?
            .execute([name])
            .map_err(db)?;
        let mut ins = conn.prepare_cached(
            "INSERT INTO one_time_codes (user, kind, salt, hash, created, expires, uses_left, scheme) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
        ).map_err(db)?;
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
            ])
            .map_err(db)?;
        }
    }
    if before.map(|b| &b.sources) != Some(&rec.sources) {
        conn.prepare_cached("DELETE FROM source_failures WHERE user = ?1")
            .map_err(db)?
            .execute([name])
            .map_err(db)?;
        let mut ins = conn.prepare_cached(
            "INSERT INTO source_failures (user, source, failures, first_failure, locked_until) VALUES (?1,?2,?3,?4,?5)",
        ).map_err(db)?;
        for s in rows::encode_sources(rec) {
            ins.execute(params![
                name,
                s.source,
                s.failures,
                s.first_failure,
                s.locked_until
            ])
            .map_err(db)?;
        }
    }
    if before.map(|b| &b.unlocks) != Some(&rec.unlocks) {
        conn.prepare_cached("DELETE FROM unlocks WHERE user = ?1")
            .map_err(db)?
            .execute([name])
            .map_err(db)?;
        let mut ins = conn
            .prepare_cached("INSERT INTO unlocks (user, ip, created, expires) VALUES (?1,?2,?3,?4)")
            .map_err(db)?;
        for u in rows::encode_unlocks(rec) {
            ins.execute(params![name, u.ip, u.created, u.expires])
                .map_err(db)?;
        }
    }
    Ok(())
}
