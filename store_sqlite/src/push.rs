//! Push approval's rows: requests, devices and blocks, read and written inside a user's
//! write transaction ([`SqlitePushTx`]) and read outside any (the `Store` reads).

use std::cell::Cell;

use mfa_model::{DeviceId, PushDevice, PushId, PushRequest, UserName};
use mfa_store::rows::{self, PushDeviceRow, PushRequestRow};
use mfa_store::{Abort, PushFn, PushTx, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::conn::SqliteStore;
use crate::error::db;
use crate::tx::{Body, read_store_key, transact_body};

/// The columns of a request in [`request_row`]'s order: read by `SELECT` and by the
/// outbox's `RETURNING`.
macro_rules! request_fields {
    () => {
        "id, user, service, client_ip, created, expires, number, state, decided, device, sent, delivery_error, used"
    };
}

pub(crate) const REQUEST_COLUMNS: &str =
    concat!("SELECT ", request_fields!(), " FROM push_requests");

pub(crate) const DEVICE_COLUMNS: &str =
    "SELECT id, user, name, subscription, public_key, created, last_used FROM push_devices";

pub(crate) fn request_row(r: &Row<'_>) -> Result<PushRequestRow, rusqlite::Error> {
    Ok(PushRequestRow {
        id: r.get(0)?,
        user: r.get(1)?,
        service: r.get(2)?,
        client_ip: r.get(3)?,
        created: r.get(4)?,
        expires: r.get(5)?,
        number: r.get(6)?,
        state: r.get(7)?,
        decided: r.get(8)?,
        device: r.get(9)?,
        sent: r.get(10)?,
        delivery_error: r.get(11)?,
        used: r.get(12)?,
    })
}

/// A request's values in the order of `?1` to `?13` of its `INSERT` and `UPDATE`.
fn request_params(w: &PushRequestRow) -> [&dyn rusqlite::ToSql; 13] {
    [
        &w.id,
        &w.user,
        &w.service,
        &w.client_ip,
        &w.created,
        &w.expires,
        &w.number,
        &w.state,
        &w.decided,
        &w.device,
        &w.sent,
        &w.delivery_error,
        &w.used,
    ]
}

pub(crate) fn device_row(r: &Row<'_>) -> Result<PushDeviceRow, rusqlite::Error> {
    Ok(PushDeviceRow {
        id: r.get(0)?,
        user: r.get(1)?,
        name: r.get(2)?,
        subscription: r.get(3)?,
        public_key: r.get(4)?,
        created: r.get(5)?,
        last_used: r.get(6)?,
    })
}

fn requests_where(
    c: &Connection,
    clause: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<PushRequest>, StoreError> {
    let mut st = c
        .prepare_cached(&format!("{REQUEST_COLUMNS} {clause}"))
        .map_err(db)?;
    let rows = st
        .query_map(p, request_row)
        .map_err(db)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db)?;
    rows.into_iter().map(rows::decode_push_request).collect()
}

pub(crate) fn request(c: &Connection, id: &PushId) -> Result<Option<PushRequest>, StoreError> {
    let row = c
        .prepare_cached(&format!("{REQUEST_COLUMNS} WHERE id = ?1"))
        .map_err(db)?
        .query_row([&id.0[..]], request_row)
        .optional()
        .map_err(db)?;
    row.map(rows::decode_push_request).transpose()
}

pub(crate) fn requests(
    c: &Connection,
    user: &str,
    since: i64,
) -> Result<Vec<PushRequest>, StoreError> {
    requests_where(
        c,
        "WHERE user = ?1 AND (created >= ?2 OR state = 'pending') ORDER BY created, id",
        params![user, since],
    )
}

/// [`mfa_store::Store::claim_push_outbox`]: one `UPDATE ... RETURNING`, so the choice and the
/// mark are one write (SQLite runs one writer at a time: two portals never both take a row).
/// The caller commits it without an fsync: a claim consumes nothing, and one lost in a power
/// loss only lets a portal push the request once more.
pub(crate) fn claim_outbox(
    c: &Connection,
    now: i64,
    limit: usize,
    until: i64,
) -> Result<Vec<PushRequest>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut st = c
        .prepare_cached(concat!(
            "UPDATE push_requests SET claimed = ?3 WHERE id IN (
                 SELECT id FROM push_requests
                  WHERE state = 'pending' AND sent IS NULL AND expires > ?1
                    AND (claimed IS NULL OR claimed <= ?1)
                  ORDER BY created, id LIMIT ?2)
             RETURNING ",
            request_fields!()
        ))
        .map_err(db)?;
    let rows = st
        .query_map(params![now, limit, until], request_row)
        .map_err(db)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db)?;
    let mut out = rows
        .into_iter()
        .map(rows::decode_push_request)
        .collect::<Result<Vec<_>, _>>()?;
    // RETURNING comes in no promised order.
    out.sort_by_key(|r| (r.created, r.id.0));
    Ok(out)
}

pub(crate) fn devices(c: &Connection, user: &str) -> Result<Vec<PushDevice>, StoreError> {
    let mut st = c
        .prepare_cached(&format!(
            "{DEVICE_COLUMNS} WHERE user = ?1 ORDER BY created, id"
        ))
        .map_err(db)?;
    let rows = st
        .query_map([user], device_row)
        .map_err(db)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db)?;
    rows.into_iter().map(rows::decode_push_device).collect()
}

pub(crate) fn device(c: &Connection, id: &DeviceId) -> Result<Option<PushDevice>, StoreError> {
    let row = c
        .prepare_cached(&format!("{DEVICE_COLUMNS} WHERE id = ?1"))
        .map_err(db)?
        .query_row([&id.0[..]], device_row)
        .optional()
        .map_err(db)?;
    row.map(rows::decode_push_device).transpose()
}

pub(crate) fn block(c: &Connection, user: &str) -> Result<Option<i64>, StoreError> {
    c.prepare_cached("SELECT until FROM push_blocks WHERE user = ?1")
        .map_err(db)?
        .query_row([user], |r| r.get(0))
        .optional()
        .map_err(db)
}

/// Removes every push device of `user` (a key change: [`rows::voids_invites`]).
pub(crate) fn remove_devices(c: &Connection, user: &str) -> Result<(), StoreError> {
    c.prepare_cached("DELETE FROM push_devices WHERE user = ?1")
        .map_err(db)?
        .execute([user])
        .map_err(db)?;
    Ok(())
}

/// Stores a device row over any of its id.
pub(crate) fn write_device(c: &Connection, r: &PushDeviceRow) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO push_devices (id, user, name, subscription, public_key, created, last_used)
         VALUES (?1,?2,?3,?4,?5,?6,?7)
         ON CONFLICT(id) DO UPDATE SET name=excluded.name, subscription=excluded.subscription,
           public_key=excluded.public_key, created=excluded.created, last_used=excluded.last_used
         WHERE push_devices.user = excluded.user",
    )
    .map_err(db)?
    .execute(params![
        r.id,
        r.user,
        r.name,
        r.subscription,
        r.public_key,
        r.created,
        r.last_used
    ])
    .map_err(db)
    .and_then(|n| {
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::Aborted(Abort::Bug(
                "a device id of another user was written",
            )))
        }
    })
}

/// [`PushTx`] inside one open write transaction of `user`.
pub(crate) struct SqlitePushTx<'c> {
    pub(crate) tx: &'c Connection,
    pub(crate) user: &'c UserName,
    /// Set once a request is inserted: the commit announces it (`wake.rs`).
    pub(crate) inserted: &'c Cell<bool>,
}

impl SqlitePushTx<'_> {
    fn mine(&self, user: &UserName) -> Result<(), StoreError> {
        if user == self.user {
            Ok(())
        } else {
            Err(StoreError::Aborted(Abort::Bug(
                "a push row of another user written in a user's transaction",
            )))
        }
    }
}

impl PushTx for SqlitePushTx<'_> {
    fn request(&mut self, id: &PushId) -> Result<Option<PushRequest>, StoreError> {
        request(self.tx, id)
    }

    fn requests(&mut self, since: i64) -> Result<Vec<PushRequest>, StoreError> {
        requests(self.tx, self.user.as_str(), since)
    }

    fn insert_request(&mut self, r: &PushRequest) -> Result<(), StoreError> {
        self.mine(&r.user)?;
        let w = rows::encode_push_request(r)?;
        self.tx
            .prepare_cached(
                "INSERT INTO push_requests (id, user, service, client_ip, created, expires, number, state, decided, device, sent, delivery_error, used)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
            )
            .map_err(db)?
            .execute(request_params(&w))
            .map_err(db)?;
        self.inserted.set(true);
        Ok(())
    }

    fn update_request(&mut self, r: &PushRequest) -> Result<(), StoreError> {
        self.mine(&r.user)?;
        let w = rows::encode_push_request(r)?;
        let n = self
            .tx
            .prepare_cached(
                "UPDATE push_requests SET service=?3, client_ip=?4, created=?5, expires=?6, number=?7,
                   state=?8, decided=?9, device=?10, sent=?11, delivery_error=?12, used=?13
                 WHERE id = ?1 AND user = ?2",
            )
            .map_err(db)?
            .execute(request_params(&w))
            .map_err(db)?;
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::Aborted(Abort::Bug(
                "a push request updated that is not stored",
            )))
        }
    }

    fn forget_requests(&mut self, before: i64) -> Result<usize, StoreError> {
        self.tx
            .prepare_cached(
                "DELETE FROM push_requests WHERE user = ?1 AND created < ?2 AND state <> 'pending'",
            )
            .map_err(db)?
            .execute(params![self.user.as_str(), before])
            .map_err(db)
    }

    fn devices(&mut self) -> Result<Vec<PushDevice>, StoreError> {
        devices(self.tx, self.user.as_str())
    }

    fn put_device(&mut self, d: &PushDevice) -> Result<(), StoreError> {
        self.mine(&d.user)?;
        let w = rows::encode_push_device(d)?;
        rows::check_blob_key(d, read_store_key(self.tx)?)?;
        write_device(self.tx, &w)
    }

    fn touch_device(&mut self, id: &DeviceId, at: i64) -> Result<bool, StoreError> {
        let n = self
            .tx
            .prepare_cached("UPDATE push_devices SET last_used = ?3 WHERE id = ?1 AND user = ?2")
            .map_err(db)?
            .execute(params![&id.0[..], self.user.as_str(), at])
            .map_err(db)?;
        Ok(n == 1)
    }

    fn remove_device(&mut self, id: &DeviceId) -> Result<bool, StoreError> {
        let n = self
            .tx
            .prepare_cached("DELETE FROM push_devices WHERE id = ?1 AND user = ?2")
            .map_err(db)?
            .execute(params![&id.0[..], self.user.as_str()])
            .map_err(db)?;
        Ok(n == 1)
    }

    fn block(&mut self) -> Result<Option<i64>, StoreError> {
        block(self.tx, self.user.as_str())
    }

    fn set_block(&mut self, until: Option<i64>) -> Result<(), StoreError> {
        match until {
            Some(t) => self
                .tx
                .prepare_cached(
                    "INSERT INTO push_blocks (user, until) VALUES (?1, ?2)
                     ON CONFLICT(user) DO UPDATE SET until = excluded.until",
                )
                .map_err(db)?
                .execute(params![self.user.as_str(), t]),
            None => self
                .tx
                .prepare_cached("DELETE FROM push_blocks WHERE user = ?1")
                .map_err(db)?
                .execute([self.user.as_str()]),
        }
        .map_err(db)?;
        Ok(())
    }
}

impl SqliteStore {
    /// [`mfa_store::Store::transact_push`], and with `light` its `transact_push_light`
    /// (the caller expected a light one): the commit of a transaction `light()` calls light
    /// waits for no fsync (`synchronous=NORMAL` for it alone, as `light.rs` does for a
    /// login); one that turned out otherwise is synced before this returns. A committed new
    /// request is announced on the wake-up socket (`wake.rs`).
    pub(crate) fn push_tx(
        &self,
        user: &UserName,
        f: &mut PushFn<'_>,
        light: Option<&dyn Fn() -> bool>,
    ) -> Result<(), StoreError> {
        let inserted = Cell::new(false);
        match light {
            None => {
                self.with_conn(|c| transact_body(c, &[user], None, Body::Push(f, &inserted)))?;
            }
            Some(light) => {
                self.relaxed_commit(
                    |c| transact_body(c, &[user], None, Body::Push(f, &inserted)),
                    light,
                )?;
            }
        };
        if inserted.get() {
            self.wake.announce();
        }
        Ok(())
    }
}
