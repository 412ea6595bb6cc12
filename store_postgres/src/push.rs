//! Push approval's rows: requests, devices and blocks, inside a user's write transaction
//! ([`PgPushTx`], after the user's advisory lock) and read outside any; a new request
//! announced on `mfa_push` (`pg_notify`, delivered at the commit); the portal's wait on it
//! through one listening connection ([`PgStore::wait`]).

use std::time::Duration;

use mfa_model::{DeviceId, PushDevice, PushId, PushRequest, UserName};
use mfa_store::push::PUSH_CHANNEL;
use mfa_store::rows::{self, PushDeviceRow, PushRequestRow};
use mfa_store::{Abort, PushTx, StoreError};
use postgres::types::{ToSql, Type};
use postgres::{GenericClient, Row, Transaction};

use crate::error::{Context, PgError};
use crate::pool::{PgStore, Statements};
use crate::tx::read_store_key;

// Every statement here goes as one `query_typed`/`execute_typed`: its parameters' types
// named, it is parsed, bound and run in one round trip, where `query(&str)` first asks the
// server to prepare it (two). A push transaction makes half a dozen of them (issue 25).

/// A parameter as `query_typed` takes it.
type Typed<'a> = (&'a (dyn ToSql + Sync), Type);

/// The columns of a request in [`request_row`]'s order: read by `SELECT` and by the
/// outbox's `RETURNING`.
macro_rules! request_fields {
    () => {
        r#"id, "user", service, client_ip, created, expires, number, state, decided, device, sent, delivery_error, used"#
    };
}

pub(crate) const REQUEST_COLUMNS: &str =
    concat!("SELECT ", request_fields!(), " FROM push_requests");

pub(crate) const DEVICE_COLUMNS: &str =
    r#"SELECT id, "user", name, subscription, public_key, created, last_used FROM push_devices"#;

fn request_row(r: &Row) -> Result<PushRequestRow, PgError> {
    let c = "reading a push_requests row";
    Ok(PushRequestRow {
        id: r.try_get(0).ctx(c)?,
        user: r.try_get(1).ctx(c)?,
        service: r.try_get(2).ctx(c)?,
        client_ip: r.try_get(3).ctx(c)?,
        created: r.try_get(4).ctx(c)?,
        expires: r.try_get(5).ctx(c)?,
        number: r.try_get(6).ctx(c)?,
        state: r.try_get(7).ctx(c)?,
        decided: r.try_get(8).ctx(c)?,
        device: r.try_get(9).ctx(c)?,
        sent: r.try_get(10).ctx(c)?,
        delivery_error: r.try_get(11).ctx(c)?,
        used: r.try_get(12).ctx(c)?,
    })
}

pub(crate) fn device_row(r: &Row) -> Result<PushDeviceRow, PgError> {
    let c = "reading a push_devices row";
    Ok(PushDeviceRow {
        id: r.try_get(0).ctx(c)?,
        user: r.try_get(1).ctx(c)?,
        name: r.try_get(2).ctx(c)?,
        subscription: r.try_get(3).ctx(c)?,
        public_key: r.try_get(4).ctx(c)?,
        created: r.try_get(5).ctx(c)?,
        last_used: r.try_get(6).ctx(c)?,
    })
}

fn requests_where(
    q: &mut impl GenericClient,
    clause: &str,
    p: &[Typed<'_>],
) -> Result<Vec<PushRequest>, PgError> {
    let rows = q
        .query_typed(&format!("{REQUEST_COLUMNS} {clause}"), p)
        .ctx("reading push requests")?;
    rows.iter()
        .map(|r| rows::decode_push_request(request_row(r)?).map_err(PgError::Store))
        .collect()
}

pub(crate) fn request(
    q: &mut impl GenericClient,
    id: &PushId,
) -> Result<Option<PushRequest>, PgError> {
    Ok(requests_where(q, "WHERE id = $1", &[(&id.0.as_slice(), Type::BYTEA)])?.pop())
}

pub(crate) fn requests(
    q: &mut impl GenericClient,
    user: &str,
    since: i64,
) -> Result<Vec<PushRequest>, PgError> {
    requests_where(
        q,
        r#"WHERE "user" = $1 AND (created >= $2 OR state = 'pending') ORDER BY created, id"#,
        &[(&user, Type::TEXT), (&since, Type::INT8)],
    )
}

/// [`mfa_store::Store::claim_push_outbox`]: one `UPDATE ... RETURNING` over rows the inner
/// `SELECT` locked with `SKIP LOCKED`, so two portals at the same moment take different
/// requests and neither waits for the other.
pub(crate) fn claim_outbox(
    q: &mut impl GenericClient,
    now: i64,
    limit: usize,
    until: i64,
) -> Result<Vec<PushRequest>, PgError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = q
        .query_typed(
            concat!(
                r#"UPDATE push_requests SET claimed = $3 WHERE id IN (
                   SELECT id FROM push_requests
                    WHERE state = 'pending' AND sent IS NULL AND expires > $1
                      AND (claimed IS NULL OR claimed <= $1)
                    ORDER BY created, id LIMIT $2
                    FOR UPDATE SKIP LOCKED)
               RETURNING "#,
                request_fields!()
            ),
            &[
                (&now, Type::INT8),
                (&limit, Type::INT8),
                (&until, Type::INT8),
            ],
        )
        .ctx("taking push requests from the outbox")?;
    let mut out = rows
        .iter()
        .map(|r| rows::decode_push_request(request_row(r)?).map_err(PgError::Store))
        .collect::<Result<Vec<_>, _>>()?;
    // RETURNING comes in no promised order.
    out.sort_by_key(|r| (r.created, r.id.0));
    Ok(out)
}

pub(crate) fn devices_where(
    q: &mut impl GenericClient,
    clause: &str,
    p: &[Typed<'_>],
) -> Result<Vec<PushDevice>, PgError> {
    let rows = q
        .query_typed(&format!("{DEVICE_COLUMNS} {clause}"), p)
        .ctx("reading push devices")?;
    rows.iter()
        .map(|r| rows::decode_push_device(device_row(r)?).map_err(PgError::Store))
        .collect()
}

pub(crate) fn block(q: &mut impl GenericClient, user: &str) -> Result<Option<i64>, PgError> {
    let c = "reading push_blocks";
    match q
        .query_typed(
            r#"SELECT until FROM push_blocks WHERE "user" = $1"#,
            &[(&user, Type::TEXT)],
        )
        .ctx(c)?
        .first()
    {
        Some(r) => Ok(Some(r.try_get(0).ctx(c)?)),
        None => Ok(None),
    }
}

/// Stores a device row over any of its id (of the same user).
pub(crate) fn write_device(q: &mut impl GenericClient, r: &PushDeviceRow) -> Result<(), PgError> {
    let n = q
        .execute(
            r#"INSERT INTO push_devices (id, "user", name, subscription, public_key, created, last_used)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (id) DO UPDATE SET name = excluded.name, subscription = excluded.subscription,
                 public_key = excluded.public_key, created = excluded.created, last_used = excluded.last_used
               WHERE push_devices."user" = excluded."user""#,
            &[
                &r.id,
                &r.user,
                &r.name,
                &r.subscription,
                &r.public_key,
                &r.created,
                &r.last_used,
            ],
        )
        .ctx("writing a push device")?;
    if n == 1 {
        Ok(())
    } else {
        Err(PgError::Store(StoreError::Aborted(Abort::Bug(
            "a device id of another user was written",
        ))))
    }
}

/// [`PushTx`] inside one open write transaction of `user`, its advisory lock held.
pub(crate) struct PgPushTx<'a, 't> {
    pub(crate) tx: &'a mut Transaction<'t>,
    pub(crate) st: &'a Statements,
    pub(crate) store: &'a PgStore,
    pub(crate) user: &'a UserName,
}

impl PgPushTx<'_, '_> {
    fn mine(&self, user: &UserName) -> Result<(), StoreError> {
        if user == self.user {
            Ok(())
        } else {
            Err(StoreError::Aborted(Abort::Bug(
                "a push row of another user written in a user's transaction",
            )))
        }
    }

    fn c<T>(&self, r: Result<T, PgError>) -> Result<T, StoreError> {
        r.map_err(|e| self.store.classify(e))
    }

    fn write_request(&mut self, r: &PushRequest, insert: bool) -> Result<(), PgError> {
        let w = rows::encode_push_request(r)?;
        let hex = r.id.hex();
        let p: [Typed<'_>; 15] = [
            (&w.id, Type::BYTEA),
            (&w.user, Type::TEXT),
            (&w.service, Type::TEXT),
            (&w.client_ip, Type::TEXT),
            (&w.created, Type::INT8),
            (&w.expires, Type::INT8),
            (&w.number, Type::INT8),
            (&w.state, Type::TEXT),
            (&w.decided, Type::INT8),
            (&w.device, Type::BYTEA),
            (&w.sent, Type::INT8),
            (&w.delivery_error, Type::TEXT),
            (&w.used, Type::INT8),
            (&PUSH_CHANNEL, Type::TEXT),
            (&hex, Type::TEXT),
        ];
        if insert {
            // The row and its announcement in one statement; the notification is delivered
            // to the listening portals when this transaction commits.
            self.tx
                .query_typed(
                    r#"WITH written AS (
                         INSERT INTO push_requests (id, "user", service, client_ip, created, expires, number, state, decided, device, sent, delivery_error, used)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                         RETURNING id)
                       SELECT pg_notify($14, $15) FROM written"#,
                    &p,
                )
                .ctx("writing a push request")?;
        } else {
            let n = self
                .tx
                .execute_typed(
                    r#"UPDATE push_requests SET service = $3, client_ip = $4, created = $5, expires = $6,
                         number = $7, state = $8, decided = $9, device = $10, sent = $11,
                         delivery_error = $12, used = $13
                       WHERE id = $1 AND "user" = $2"#,
                    &p[..13],
                )
                .ctx("updating a push request")?;
            if n != 1 {
                return Err(PgError::Store(StoreError::Aborted(Abort::Bug(
                    "a push request updated that is not stored",
                ))));
            }
        }
        Ok(())
    }

    fn put_device_pg(&mut self, d: &PushDevice) -> Result<(), PgError> {
        let w = rows::encode_push_device(d)?;
        // As for a seed (`check_store_key`): the SHARE lock on `store_key`, held to the
        // commit, waits for a rekey in progress and keeps the next one waiting.
        self.tx
            .batch_execute("LOCK TABLE store_key IN SHARE MODE")
            .ctx("locking store_key")?;
        let key = read_store_key(self.tx, &self.st.store_key)?;
        rows::check_blob_key(d, key)?;
        write_device(self.tx, &w)
    }
}

impl PushTx for PgPushTx<'_, '_> {
    fn request(&mut self, id: &PushId) -> Result<Option<PushRequest>, StoreError> {
        let r = request(self.tx, id);
        self.c(r)
    }

    fn requests(&mut self, since: i64) -> Result<Vec<PushRequest>, StoreError> {
        let r = requests(self.tx, self.user.as_str(), since);
        self.c(r)
    }

    fn insert_request(&mut self, r: &PushRequest) -> Result<(), StoreError> {
        self.mine(&r.user)?;
        let w = self.write_request(r, true);
        self.c(w)
    }

    fn update_request(&mut self, r: &PushRequest) -> Result<(), StoreError> {
        self.mine(&r.user)?;
        let w = self.write_request(r, false);
        self.c(w)
    }

    fn forget_requests(&mut self, before: i64) -> Result<usize, StoreError> {
        let n = self
            .tx
            .execute_typed(
                r#"DELETE FROM push_requests WHERE "user" = $1 AND created < $2 AND state <> 'pending'"#,
                &[(&self.user.as_str(), Type::TEXT), (&before, Type::INT8)],
            )
            .ctx("forgetting push requests");
        let n = self.c(n)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn devices(&mut self) -> Result<Vec<PushDevice>, StoreError> {
        let user = self.user.as_str();
        let r = devices_where(
            self.tx,
            r#"WHERE "user" = $1 ORDER BY created, id"#,
            &[(&user, Type::TEXT)],
        );
        self.c(r)
    }

    fn put_device(&mut self, d: &PushDevice) -> Result<(), StoreError> {
        self.mine(&d.user)?;
        let r = self.put_device_pg(d);
        self.c(r)
    }

    fn touch_device(&mut self, id: &DeviceId, at: i64) -> Result<bool, StoreError> {
        let n = self
            .tx
            .execute_typed(
                r#"UPDATE push_devices SET last_used = $3 WHERE id = $1 AND "user" = $2"#,
                &[
                    (&id.0.as_slice(), Type::BYTEA),
                    (&self.user.as_str(), Type::TEXT),
                    (&at, Type::INT8),
                ],
            )
            .ctx("recording a push device's use");
        Ok(self.c(n)? == 1)
    }

    fn remove_device(&mut self, id: &DeviceId) -> Result<bool, StoreError> {
        let n = self
            .tx
            .execute_typed(
                r#"DELETE FROM push_devices WHERE id = $1 AND "user" = $2"#,
                &[
                    (&id.0.as_slice(), Type::BYTEA),
                    (&self.user.as_str(), Type::TEXT),
                ],
            )
            .ctx("removing a push device");
        Ok(self.c(n)? == 1)
    }

    fn block(&mut self) -> Result<Option<i64>, StoreError> {
        let r = block(self.tx, self.user.as_str());
        self.c(r)
    }

    fn set_block(&mut self, until: Option<i64>) -> Result<(), StoreError> {
        let user = self.user.as_str();
        let r = match until {
            Some(t) => self.tx.execute(
                r#"INSERT INTO push_blocks ("user", until) VALUES ($1, $2)
                   ON CONFLICT ("user") DO UPDATE SET until = excluded.until"#,
                &[&user, &t],
            ),
            None => self
                .tx
                .execute(r#"DELETE FROM push_blocks WHERE "user" = $1"#, &[&user]),
        }
        .ctx("writing push_blocks");
        self.c(r).map(|_| ())
    }
}

impl PgStore {
    /// Waits for a request announced on [`PUSH_CHANNEL`], up to `timeout`, on the one
    /// listening connection (made at the first wait, made again after it broke). A
    /// notification that arrived between two waits is kept by the connection and ends the
    /// next wait at once.
    pub(crate) fn wait(&self, timeout: Duration) -> Result<(), StoreError> {
        let mut slot = self.listener.lock().map_err(|_| {
            StoreError::Aborted(Abort::Bug("the push listener connection is poisoned"))
        })?;
        if slot.is_none() {
            let mut c = self.connect_client()?;
            c.batch_execute(&format!("LISTEN {PUSH_CHANNEL}"))
                .ctx("listening for push requests")
                .map_err(|e| self.classify(e))?;
            *slot = Some(c);
        }
        let Some(client) = slot.as_mut() else {
            return Err(StoreError::Aborted(Abort::Bug("no listener connection")));
        };
        let waited = {
            use postgres::fallible_iterator::FallibleIterator;
            let mut n = client.notifications();
            let first = n.timeout_iter(timeout).next();
            if first.is_ok() {
                // Take what else arrived too: one outbox read serves them all.
                while let Ok(Some(_)) = n.iter().next() {}
            }
            first.map(|_| ())
        };
        waited.map_err(|e| {
            *slot = None;
            self.classify(PgError::Pg("waiting for push requests", e))
        })
    }
}
