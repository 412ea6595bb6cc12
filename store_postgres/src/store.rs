//! The `Store` trait over the pieces of this crate.

use mfa_model::{
    AuditEvent, DeviceId, Invite, KeyId, PushDevice, PushId, PushRequest, StoredDecision,
    StoredReason, UserName, UserRecord,
};
use mfa_store::push::META_PORTAL_ALIVE;
use mfa_store::rows::{self, InviteRow};
use mfa_store::{
    AuditQuery, ChallengeLimits, ChallengeRow, LockOrder, NamesFn, PushFn, ResealBlobFn, ResealFn,
    Store, StoreError, StoreFacts, TxFn, USER_PAGE_MAX, UserFn, UserPage,
};

use crate::error::{Context, PgError};
use crate::names::{META_NAME_RULES, PgNameTx, each_name, names_with_key, read_names_checked};
use crate::pool::{Conn, PgStore};
use crate::push::{self as push_rows, DEVICE_COLUMNS, device_row, write_device};
use crate::rows::{
    INVITE_COLUMNS, USER_COLUMNS, decode_all, read_children, read_invite, read_user, write,
};
use crate::tx::{Body, check_store_key, insert_audit, read_store_key, take_invite};

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

    fn user_page(&self, q: &UserPage) -> Result<Vec<UserRecord>, StoreError> {
        let limit = i64::try_from(q.limit.min(USER_PAGE_MAX)).unwrap_or(0);
        // Byte order whatever the database's collation (`users_name_bytes`, an index in
        // that order), one lower bound, the later of the two.
        let (op, from) = match q.after.as_deref() {
            Some(a) if a >= q.prefix.as_str() => (">", a),
            _ => (">=", q.prefix.as_str()),
        };
        self.run(|c| {
            let Conn { client, st } = c;
            let mut tx = client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .ctx("starting a read")?;
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users WHERE name COLLATE \"C\" {op} $1 ORDER BY name COLLATE \"C\" LIMIT $2"
            );
            let found = tx
                .query(&sql, &[&from, &limit])
                .ctx("searching users")?
                .iter()
                .map(read_user)
                .collect::<Result<Vec<_>, _>>()?;
            // In byte order the names with the prefix come together: the first without it
            // ends them.
            let found: Vec<_> = found
                .into_iter()
                .take_while(|u| u.name.starts_with(&q.prefix))
                .collect();
            let names: Vec<&str> = found.iter().map(|u| u.name.as_str()).collect();
            let children =
                read_children(&mut tx, &st.codes, &st.sources, &st.unlocks, &[&names])?;
            drop(names);
            let recs = decode_all(found, children)?;
            tx.commit().ctx("ending a read")?;
            Ok(recs)
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
        self.transact_retrying(names, None, Body::Records(f))
            .map(|_| ())
    }

    fn transact_light(
        &self,
        names: &[&UserName],
        f: &mut TxFn<'_>,
        _expect_light: bool,
        light: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        LockOrder::new(names).run(
            |sorted, g| {
                self.transact_retrying(sorted, None, Body::Light(g, light))
                    .map(|_| ())
            },
            f,
        )
    }

    fn transact_with_invite(
        &self,
        hash: &[u8; 32],
        now: i64,
        names: &[&UserName],
        f: &mut TxFn<'_>,
    ) -> Result<bool, StoreError> {
        let mut usable = false;
        LockOrder::new(names).run(
            |sorted, g| {
                usable = self.transact_retrying(sorted, Some((hash, now)), Body::Records(g))?;
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
                        decision: StoredDecision::from_stored(r.try_get(4).ctx(ctx)?),
                        reason: StoredReason::from_stored(r.try_get(5).ctx(ctx)?),
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
                return Err(PgError::Store(StoreError::NotEmpty {
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
            crate::tx::commit_replicated(self, tx, "committing the import")?;
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
        blobs: &mut ResealBlobFn<'_>,
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
                return Err(PgError::Store(StoreError::KeyChanged {
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
                .collect::<Result<_, PgError>>()?;
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
            // The push subscriptions, sealed under the same key. No push transaction runs
            // meanwhile: each holds a row lock of `users`, which waits for the EXCLUSIVE
            // lock above.
            let devices = tx
                .query(&format!("{DEVICE_COLUMNS} ORDER BY id"), &[])
                .ctx("reading the push subscriptions")?
                .iter()
                .map(device_row)
                .collect::<Result<Vec<_>, _>>()?;
            for row in devices {
                let w = rows::reseal_blob(row, new, blobs)?;
                write_device(&mut tx, &w)?;
            }
            tx.execute(
                "INSERT INTO store_key (id, key_id) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET key_id = excluded.key_id",
                &[&new.as_slice()],
            )
            .ctx("recording the store key id")?;
            insert_audit(&mut tx, &st.insert_audit, events)?;
            crate::tx::commit_replicated(self, tx, "committing the re-encryption")?;
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
            crate::tx::commit_replicated(self, tx, "committing the invites")?;
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
                    .map_err(PgError::Store),
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
                .map(|r| rows::decode_invite(read_invite(r)?).map_err(PgError::Store))
                .collect()
        })
    }

    fn invites_of(&self, user: &UserName) -> Result<Vec<Invite>, StoreError> {
        self.run(|c| {
            c.client
                .query(
                    &format!("{INVITE_COLUMNS} WHERE \"user\" = $1 ORDER BY created DESC"),
                    &[&user.as_str()],
                )
                .ctx("reading invites")?
                .iter()
                .map(|r| rows::decode_invite(read_invite(r)?).map_err(PgError::Store))
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
            crate::tx::commit_replicated(self, tx, "committing the invite's use")?;
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
                crate::tx::commit_replicated(self, tx, "committing the name upkeep")?;
            }
            Ok(())
        })
    }

    fn transact_push(&self, user: &UserName, f: &mut PushFn<'_>) -> Result<(), StoreError> {
        self.transact_retrying(&[user], None, Body::Push(f))
            .map(|_| ())
    }

    fn transact_push_light(
        &self,
        user: &UserName,
        f: &mut PushFn<'_>,
        _expect_light: bool,
        light: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        self.transact_retrying(&[user], None, Body::PushLight(f, light))
            .map(|_| ())
    }

    fn push_request(&self, id: &PushId) -> Result<Option<PushRequest>, StoreError> {
        self.run(|c| push_rows::request(&mut c.client, id))
    }

    fn push_requests(&self, user: &UserName, since: i64) -> Result<Vec<PushRequest>, StoreError> {
        self.run(|c| push_rows::requests(&mut c.client, user.as_str(), since))
    }

    fn put_challenge(
        &self,
        row: &ChallengeRow,
        limits: &ChallengeLimits,
    ) -> Result<bool, StoreError> {
        self.run(|c| crate::challenge::put(self, &mut c.client, row, limits))
    }

    fn take_challenge(&self, state_hash: &[u8; 32]) -> Result<Option<ChallengeRow>, StoreError> {
        self.run(|c| crate::challenge::take(self, &mut c.client, state_hash))
    }

    fn prune_challenges(&self, now: i64) -> Result<usize, StoreError> {
        self.run(|c| crate::challenge::prune(&mut c.client, now))
    }

    fn live_challenges(&self, now: i64) -> Result<usize, StoreError> {
        self.run(|c| crate::challenge::live(&mut c.client, now))
    }

    fn claim_push_outbox(
        &self,
        now: i64,
        limit: usize,
        until: i64,
    ) -> Result<Vec<PushRequest>, StoreError> {
        self.run(|c| push_rows::claim_outbox(&mut c.client, now, limit, until))
    }

    fn push_devices(&self, user: &UserName) -> Result<Vec<PushDevice>, StoreError> {
        self.run(|c| {
            push_rows::devices_where(
                &mut c.client,
                "WHERE \"user\" = $1 ORDER BY created, id",
                &[(&user.as_str(), postgres::types::Type::TEXT)],
            )
        })
    }

    fn push_device(&self, id: &DeviceId) -> Result<Option<PushDevice>, StoreError> {
        self.run(|c| {
            Ok(push_rows::devices_where(
                &mut c.client,
                "WHERE id = $1",
                &[(&id.0.as_slice(), postgres::types::Type::BYTEA)],
            )?
            .pop())
        })
    }

    fn push_block(&self, user: &UserName) -> Result<Option<i64>, StoreError> {
        self.run(|c| push_rows::block(&mut c.client, user.as_str()))
    }

    fn set_push_heartbeat(&self, now: i64) -> Result<(), StoreError> {
        self.run(|c| {
            c.client
                .execute(
                    "INSERT INTO meta (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&META_PORTAL_ALIVE, &now.to_string()],
                )
                .ctx("writing the portal's heartbeat")?;
            Ok(())
        })
    }

    fn push_heartbeat(&self) -> Result<Option<i64>, StoreError> {
        let v: Option<String> = self.run(|c| {
            let Conn { client, st } = c;
            let ctx = "reading the portal's heartbeat";
            match client
                .query(&st.names_checked, &[&META_PORTAL_ALIVE])
                .ctx(ctx)?
                .first()
            {
                Some(r) => Ok(Some(r.try_get(0).ctx(ctx)?)),
                None => Ok(None),
            }
        })?;
        v.map(|t| {
            t.parse().map_err(|_| StoreError::BadRow {
                user: String::new(),
                column: "meta.portal_alive",
                problem: format!("{t:?} is not a time"),
            })
        })
        .transpose()
    }

    fn wait_for_push(&self, timeout: std::time::Duration) -> Result<(), StoreError> {
        self.wait(timeout)
    }

    fn prune_push(&self, before: i64) -> Result<usize, StoreError> {
        self.run(|c| {
            let n = c
                .client
                .execute(
                    "DELETE FROM push_requests WHERE created < $1 AND state <> 'pending'",
                    &[&before],
                )
                .ctx("pruning push requests")?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn health(&self) -> Option<Result<mfa_store::StoreHealth, StoreError>> {
        Some(self.read_health())
    }
}
