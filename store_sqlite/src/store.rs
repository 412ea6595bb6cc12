//! The `Store` trait over the pieces of this crate.

use mfa_model::{
    AuditEvent, DeviceId, Invite, KeyId, PushDevice, PushId, PushRequest, StoredDecision,
    StoredReason, UserName, UserRecord,
};
use mfa_store::push::META_PORTAL_ALIVE;
use mfa_store::rows::{self};
use mfa_store::{
    AuditQuery, ChallengeLimits, ChallengeRow, GroupCommit, LockOrder, NamesFn, PushFn,
    ResealBlobFn, ResealFn, Store, StoreError, StoreFacts, TxFn, USER_PAGE_MAX, UserFn, UserPage,
};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::conn::SqliteStore;
use crate::error::db;
use crate::names::{META_NAME_RULES, SqliteNameTx, each_name, names_with_key, read_meta};
use crate::push::{self as push_rows, DEVICE_COLUMNS, device_row, write_device};
use crate::rows::{
    INVITE_COLUMNS, Merge, SELECT_USERS, code_row, load, read_invite, read_row, save, source_row,
    unlock_row,
};
use crate::schema::PRUNE_UNENROLLED;
use crate::tx::{insert_audit, read_store_key, take_invite, transact_on};

impl Store for SqliteStore {
    fn user(&self, name: &UserName) -> Result<Option<UserRecord>, StoreError> {
        self.with_conn(|c| load(c, name))
    }

    fn each_user(&self, f: &mut UserFn<'_>) -> Result<(), StoreError> {
        self.with_conn(|c| {
            // One read transaction; the users and their child rows are four scans in name
            // order, merged (three lookups per user cost a million users 10 s more).
            let tx = c.transaction().map_err(db)?;
            {
                let mut users_st = tx.prepare(SELECT_USERS).map_err(db)?;
                let mut codes_st = tx.prepare("SELECT user, kind, salt, hash, created, expires, uses_left, scheme FROM one_time_codes ORDER BY user, rowid").map_err(db)?;
                let mut sources_st = tx.prepare("SELECT user, source, failures, first_failure, locked_until FROM source_failures ORDER BY user, rowid").map_err(db)?;
                let mut unlocks_st =
                    tx.prepare("SELECT user, ip, created, expires FROM unlocks ORDER BY user, rowid").map_err(db)?;
                // Column 0 is the user; the row's own columns follow.
                let mut codes = Merge::new(codes_st.query([]).map_err(db)?, |r| code_row(r, 1))?;
                let mut sources = Merge::new(sources_st.query([]).map_err(db)?, |r| source_row(r, 1))?;
                let mut unlocks = Merge::new(unlocks_st.query([]).map_err(db)?, |r| unlock_row(r, 1))?;
                let mut rows = users_st.query([]).map_err(db)?;
                while let Some(r) = rows.next().map_err(db)? {
                    let row = read_row(r).map_err(db)?;
                    let c = codes.take(&row.name)?;
                    let s = sources.take(&row.name)?;
                    let u = unlocks.take(&row.name)?;
                    f(rows::decode(row, c, s, u)?)?;
                }
            }
            tx.commit().map_err(db)?;
            Ok(())
        })
    }

    fn user_page(&self, q: &UserPage) -> Result<Vec<UserRecord>, StoreError> {
        let limit = i64::try_from(q.limit.min(USER_PAGE_MAX)).unwrap_or(0);
        // One lower bound, the later of the two, so the primary key's range starts there:
        // the thousandth page reads no more rows than the first.
        let (sql, from) = match q.after.as_deref() {
            Some(a) if a >= q.prefix.as_str() => (
                "SELECT name FROM users WHERE name > ?1 ORDER BY name LIMIT ?2",
                a,
            ),
            _ => (
                "SELECT name FROM users WHERE name >= ?1 ORDER BY name LIMIT ?2",
                q.prefix.as_str(),
            ),
        };
        self.with_conn(|c| {
            let tx = c.transaction().map_err(db)?;
            let names: Vec<String> = {
                let mut st = tx.prepare_cached(sql).map_err(db)?;
                let rows = st
                    .query_map(params![from, limit], |r| r.get(0))
                    .map_err(db)?;
                rows.collect::<Result<_, _>>().map_err(db)?
            };
            // In byte order the names with the prefix come together: the first without it
            // ends them.
            let mut out = Vec::new();
            for n in names.iter().take_while(|n| n.starts_with(&q.prefix)) {
                if let Some(rec) = load(&tx, n)? {
                    out.push(rec);
                }
            }
            tx.commit().map_err(db)?;
            Ok(out)
        })
    }

    fn transact_sorted(&self, names: &[&UserName], f: &mut TxFn<'_>) -> Result<(), StoreError> {
        self.with_conn(|c| transact_on(c, names, None, f).map(|_| ()))
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
                usable = self.with_conn(|c| transact_on(c, sorted, Some((hash, now)), g))?;
                Ok(())
            },
            f,
        )?;
        Ok(usable)
    }

    fn group_commit(&self) -> Option<&dyn GroupCommit> {
        Some(self)
    }

    fn transact_light(
        &self,
        names: &[&UserName],
        f: &mut TxFn<'_>,
        expect_light: bool,
        light: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        if expect_light {
            self.transact_light_any(names, f, light)
        } else {
            self.transact(names, f)
        }
    }

    fn import_all(
        &self,
        users: &[UserRecord],
        audit: &[AuditEvent],
        facts: &StoreFacts,
    ) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let (u, a): (i64, i64) = tx
                .query_row(
                    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM audit)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(db)?;
            if u != 0 || a != 0 {
                return Err(StoreError::NotEmpty {
                    store: self.path.display().to_string(),
                    users: u,
                    audit: a,
                });
            }
            // The source's key first: `save` checks every seed against it.
            match &facts.key_id {
                Some(id) => tx
                    .execute(
                        "INSERT INTO store_key (id, key_id) VALUES (1, ?1)
                     ON CONFLICT(id) DO UPDATE SET key_id = excluded.key_id",
                        [id.as_slice()],
                    )
                    .map_err(db)?,
                None => tx.execute("DELETE FROM store_key", []).map_err(db)?,
            };
            tx.execute("DELETE FROM meta WHERE key = ?1", [META_NAME_RULES])
                .map_err(db)?;
            if let Some(rules) = &facts.names_checked {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                    [META_NAME_RULES, rules],
                )
                .map_err(db)?;
            }
            for rec in users {
                save(&tx, rec, None)?;
            }
            insert_audit(&tx, audit)?;
            tx.commit().map_err(db)?;
            Ok(())
        })
    }

    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            insert_audit(&tx, events)?;
            tx.commit().map_err(db)?;
            Ok(())
        })
    }

    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        self.with_conn(|c| {
            let limit = q.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
            let mut st = c
                .prepare(
                    "SELECT time, user, service, client_ip, decision, reason, detail FROM audit
                 WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR time >= ?2)
                 ORDER BY time, id LIMIT ?3",
                )
                .map_err(db)?;
            let rows = st
                .query_map(params![q.user, q.since, limit], |r| {
                    Ok(AuditEvent {
                        time: r.get(0)?,
                        user: r.get(1)?,
                        service: r.get(2)?,
                        client_ip: r.get(3)?,
                        decision: StoredDecision::from_stored(&r.get::<_, String>(4)?),
                        reason: StoredReason::from_stored(&r.get::<_, String>(5)?),
                        detail: r.get(6)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db)
        })
    }

    fn prune_audit(&self, before: i64) -> Result<usize, StoreError> {
        self.with_conn(|c| {
            c.execute("DELETE FROM audit WHERE time < ?1", [before])
                .map_err(db)
        })
    }

    fn prune_unenrolled(&self, before: i64) -> Result<usize, StoreError> {
        self.with_conn(|c| c.execute(PRUNE_UNENROLLED, [before]).map_err(db))
    }

    fn store_key_id(&self) -> Result<Option<KeyId>, StoreError> {
        self.with_conn(|c| read_store_key(c))
    }

    fn reseal(
        &self,
        expect: Option<KeyId>,
        new: KeyId,
        f: &mut ResealFn<'_>,
        blobs: &mut ResealBlobFn<'_>,
        events: &[AuditEvent],
    ) -> Result<usize, StoreError> {
        self.with_conn(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            if read_store_key(&tx)? != expect {
                return Err(StoreError::KeyChanged {
                    context: "re-encrypting the stored keys".into(),
                });
            }
            let rows: Vec<(String, Vec<u8>)> = {
                let mut st = tx
                    .prepare(
                        "SELECT name, secret FROM users WHERE secret IS NOT NULL ORDER BY name",
                    )
                    .map_err(db)?;
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(db)?
                    .collect::<Result<_, _>>()
                    .map_err(db)?
            };
            let count = rows.len();
            {
                let mut up = tx
                    .prepare("UPDATE users SET secret = ?2 WHERE name = ?1")
                    .map_err(db)?;
                for (name, bytes) in rows {
                    let sealed = rows::reseal_one(&name, bytes, new, f)?;
                    up.execute(params![name, sealed.stored()]).map_err(db)?;
                }
            }
            // The push subscriptions, sealed under the same key.
            let devices = {
                let mut st = tx
                    .prepare(&format!("{DEVICE_COLUMNS} ORDER BY id"))
                    .map_err(db)?;
                st.query_map([], device_row)
                    .map_err(db)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db)?
            };
            for row in devices {
                let w = rows::reseal_blob(row, new, blobs)?;
                write_device(&tx, &w)?;
            }
            tx.execute(
                "INSERT INTO store_key (id, key_id) VALUES (1, ?1)
                 ON CONFLICT(id) DO UPDATE SET key_id = excluded.key_id",
                [new.as_slice()],
            )
            .map_err(db)?;
            insert_audit(&tx, events)?;
            tx.commit().map_err(db)?;
            Ok(count)
        })
    }

    fn put_invites(&self, invites: &[Invite], events: &[AuditEvent]) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO invites (hash, user, created, expires, used) VALUES (?1,?2,?3,?4,?5)",
                ).map_err(db)?;
                for i in invites {
                    let r = rows::encode_invite(i);
                    ins.execute(params![r.hash, r.user, r.created, r.expires, r.used]).map_err(db)?;
                }
            }
            insert_audit(&tx, events)?;
            tx.commit().map_err(db)?;
            Ok(())
        })
    }

    fn invite(&self, hash: &[u8; 32]) -> Result<Option<Invite>, StoreError> {
        self.with_conn(|c| {
            let row = c
                .prepare_cached(&format!("{INVITE_COLUMNS} WHERE hash = ?1"))
                .map_err(db)?
                .query_row([&hash[..]], read_invite)
                .optional()
                .map_err(db)?;
            row.map(rows::decode_invite).transpose()
        })
    }

    fn invites(&self) -> Result<Vec<Invite>, StoreError> {
        self.with_conn(|c| {
            let mut st = c
                .prepare_cached(&format!("{INVITE_COLUMNS} ORDER BY created DESC, user"))
                .map_err(db)?;
            let rows = st
                .query_map([], read_invite)
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            rows.into_iter().map(rows::decode_invite).collect()
        })
    }

    fn invites_of(&self, user: &UserName) -> Result<Vec<Invite>, StoreError> {
        self.with_conn(|c| {
            let mut st = c
                .prepare_cached(&format!(
                    "{INVITE_COLUMNS} WHERE user = ?1 ORDER BY created DESC"
                ))
                .map_err(db)?;
            let rows = st
                .query_map([user.as_str()], read_invite)
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            rows.into_iter().map(rows::decode_invite).collect()
        })
    }

    fn use_invite(
        &self,
        hash: &[u8; 32],
        now: i64,
        events: &[AuditEvent],
    ) -> Result<bool, StoreError> {
        self.with_conn(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            if !take_invite(&tx, hash, now)? {
                return Ok(false);
            }
            insert_audit(&tx, events)?;
            tx.commit().map_err(db)?;
            Ok(true)
        })
    }

    fn names_checked(&self) -> Result<Option<String>, StoreError> {
        self.with_conn(|c| read_meta(c, META_NAME_RULES))
    }

    fn each_user_name(&self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction().map_err(db)?;
            each_name(&tx, f)?;
            tx.commit().map_err(db)?;
            Ok(())
        })
    }

    fn names_with_key(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.with_conn(|c| names_with_key(c, key))
    }

    fn maintain_names(&self, f: &mut NamesFn<'_>) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let events = f(&mut SqliteNameTx(&tx))?;
            if let Some(events) = events {
                insert_audit(&tx, &events)?;
                tx.commit().map_err(db)?;
            }
            Ok(())
        })
    }

    fn transact_push(&self, user: &UserName, f: &mut PushFn<'_>) -> Result<(), StoreError> {
        self.push_tx(user, f, None)
    }

    fn transact_push_light(
        &self,
        user: &UserName,
        f: &mut PushFn<'_>,
        expect_light: bool,
        light: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        self.push_tx(user, f, expect_light.then_some(light))
    }

    fn push_request(&self, id: &PushId) -> Result<Option<PushRequest>, StoreError> {
        self.with_conn(|c| push_rows::request(c, id))
    }

    fn push_requests(&self, user: &UserName, since: i64) -> Result<Vec<PushRequest>, StoreError> {
        self.with_conn(|c| push_rows::requests(c, user.as_str(), since))
    }

    fn put_challenge(
        &self,
        row: &ChallengeRow,
        limits: &ChallengeLimits,
    ) -> Result<bool, StoreError> {
        self.with_challenge_conn(|c| crate::challenge::put(c, row, limits))
    }

    fn take_challenge(&self, state_hash: &[u8; 32]) -> Result<Option<ChallengeRow>, StoreError> {
        self.with_challenge_conn(|c| crate::challenge::take(c, state_hash))
    }

    fn prune_challenges(&self, now: i64) -> Result<usize, StoreError> {
        self.with_conn(|c| crate::challenge::prune(c, now))
    }

    fn live_challenges(&self, now: i64) -> Result<usize, StoreError> {
        self.with_conn(|c| crate::challenge::live(c, now))
    }

    fn claim_push_outbox(
        &self,
        now: i64,
        limit: usize,
        until: i64,
    ) -> Result<Vec<PushRequest>, StoreError> {
        self.relaxed_conn(|c| push_rows::claim_outbox(c, now, limit, until))
    }

    fn push_devices(&self, user: &UserName) -> Result<Vec<PushDevice>, StoreError> {
        self.with_conn(|c| push_rows::devices(c, user.as_str()))
    }

    fn push_device(&self, id: &DeviceId) -> Result<Option<PushDevice>, StoreError> {
        self.with_conn(|c| push_rows::device(c, id))
    }

    fn push_block(&self, user: &UserName) -> Result<Option<i64>, StoreError> {
        self.with_conn(|c| push_rows::block(c, user.as_str()))
    }

    fn set_push_heartbeat(&self, now: i64) -> Result<(), StoreError> {
        self.with_conn(|c| {
            c.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )
            .map_err(db)?
            .execute(params![META_PORTAL_ALIVE, now.to_string()])
            .map_err(db)?;
            Ok(())
        })
    }

    fn push_heartbeat(&self) -> Result<Option<i64>, StoreError> {
        let v = self.with_conn(|c| read_meta(c, META_PORTAL_ALIVE))?;
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
        self.wake.wait(timeout)
    }

    fn prune_push(&self, before: i64) -> Result<usize, StoreError> {
        self.with_conn(|c| {
            c.execute(
                "DELETE FROM push_requests WHERE created < ?1 AND state <> 'pending'",
                [before],
            )
            .map_err(db)
        })
    }
}
