//! Write transactions: advisory locks on the names, the rows locked, the function run and
//! re-run after a conflict, the store key checked against every seed written.

use std::time::Duration;

use mfa_model::{AuditEvent, KEY_ID_BYTES, KeyId, UserName, UserRecord};
use mfa_store::{Abort, PushFn, StoreError, TxFn, rows};
use postgres::{Statement, Transaction};
use sha2::{Digest, Sha256};

use crate::error::{Context, PgError, describe, retryable};
use crate::pool::{Conn, PgStore, Statements};
use crate::push::PgPushTx;
use crate::rows::{decode_all, read_children, read_user, write};

/// Above this many users in one transaction (`mfactl import`), the users table is locked
/// instead of each name (see [`transact_on`]).
pub(crate) const MANY_USERS: usize = 1000;

/// How often a transaction is run again after a conflict before giving up with `Busy`.
pub(crate) const MAX_TRIES: u32 = 8;

/// The 64-bit advisory lock key of a user name.
pub(crate) fn lock_key(name: &str) -> i64 {
    let h = Sha256::digest(name.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    i64::from_be_bytes(b)
}

pub(crate) fn insert_audit(
    q: &mut impl postgres::GenericClient,
    st: &Statement,
    events: &[AuditEvent],
) -> Result<(), PgError> {
    if events.is_empty() {
        return Ok(());
    }
    macro_rules! col {
        ($f:ident) => {
            events.iter().map(|e| e.$f.clone()).collect::<Vec<_>>()
        };
    }
    q.execute(
        st,
        &[
            &col!(time),
            &col!(user),
            &col!(service),
            &col!(client_ip),
            &events
                .iter()
                .map(|e| e.decision.as_str())
                .collect::<Vec<_>>(),
            &events.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(),
            &col!(detail),
        ],
    )
    .ctx("writing the audit trail")?;
    Ok(())
}

/// One try of a write transaction: lock the names, use up `invite` (its hash, at a time)
/// where one is given, read their rows, let `f` change them, write what changed and the
/// events, commit. `false` (rolled back, `f` not run) where the invite is no longer usable.
/// Marks the invite whose token hashes to `hash` used at `now`, inside the caller's
/// transaction, if it is still usable then; `false` if it is not. The row lock of the
/// UPDATE serialises two uses of one invite: the second re-checks `used IS NULL` on the
/// committed row and changes nothing.
pub(crate) fn take_invite(
    q: &mut impl postgres::GenericClient,
    hash: &[u8; 32],
    now: i64,
) -> Result<bool, PgError> {
    let n = q
        .execute(
            "UPDATE invites SET used = $2 WHERE hash = $1 AND used IS NULL AND expires > $2",
            &[&hash.as_slice(), &now],
        )
        .ctx("using an invite")?;
    Ok(n != 0)
}

/// What a write transaction runs over the locked records: a [`TxFn`], or a [`PushFn`] over
/// the one user's record and push rows.
pub(crate) enum Body<'a, 'b> {
    Records(&'a mut TxFn<'b>),
    /// A [`TxFn`] whose transaction, where the function says after it ran that its
    /// decisions consumed nothing (`Store::transact_light`), commits with
    /// `synchronous_commit = off`: no wait for the WAL flush nor for the synchronous
    /// standby (ARCHITECTURE.md, *Durability*; docs/FAILOVER.md).
    Light(&'a mut TxFn<'b>, &'a dyn Fn() -> bool),
    Push(&'a mut PushFn<'b>),
    /// A [`PushFn`] relaxed as [`Body::Light`] where the function says so
    /// (`Store::transact_push_light`).
    PushLight(&'a mut PushFn<'b>, &'a dyn Fn() -> bool),
}

pub(crate) fn transact_on(
    store: &PgStore,
    conn: &mut Conn,
    names: &[&UserName],
    invite: Option<(&[u8; 32], i64)>,
    body: &mut Body<'_, '_>,
) -> Result<bool, PgError> {
    let Conn { client, st } = conn;
    let mut tx = client.transaction().ctx("starting a transaction")?;
    if names.len() > MANY_USERS {
        // An import of 100,000 users would need as many advisory locks, more than the
        // shared lock table holds (max_locks_per_transaction x max_connections: 6,400 by
        // default; "out of shared memory"). One table lock serialises it with every other
        // writer instead: they wait for it at their SELECT ... FOR UPDATE, holding only
        // their own advisory locks, which this transaction never asks for.
        tx.batch_execute("LOCK TABLE users IN EXCLUSIVE MODE")
            .ctx("locking the users table")?;
    } else {
        let mut keys: Vec<i64> = names.iter().map(|n| lock_key(n.as_str())).collect();
        keys.sort_unstable();
        keys.dedup();
        tx.execute(&st.lock, &[&keys]).ctx("locking users")?;
    }
    // After the users' locks, as every writer takes them.
    if let Some((hash, now)) = invite
        && !take_invite(&mut tx, hash, now)?
    {
        return Ok(false);
    }
    let strs: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    let found = tx
        .query(&st.lock_users, &[&strs])
        .ctx("reading users")?
        .iter()
        .map(read_user)
        .collect::<Result<Vec<_>, _>>()?;
    let children = if found.is_empty() {
        Default::default()
    } else {
        let have: Vec<&str> = found.iter().map(|u| u.name.as_str()).collect();
        read_children(&mut tx, &st.codes, &st.sources, &st.unlocks, &[&have])?
    };
    let mut by_name: std::collections::HashMap<String, UserRecord> = decode_all(found, children)?
        .into_iter()
        .map(|r| (r.name.to_string(), r))
        .collect();
    let before: Vec<Option<UserRecord>> =
        names.iter().map(|n| by_name.remove(n.as_str())).collect();
    let mut records = before.clone();
    let events = match body {
        Body::Records(f) | Body::Light(f, _) => {
            f(&mut records).map_err(|a| PgError::Store(StoreError::Aborted(a)))?
        }
        Body::Push(f) | Body::PushLight(f, _) => match (names, records.as_mut_slice()) {
            ([user], [slot]) => {
                let mut ptx = PgPushTx {
                    tx: &mut tx,
                    st,
                    store,
                    user,
                };
                f(slot, &mut ptx).map_err(PgError::Store)?
            }
            _ => {
                return Err(PgError::Store(StoreError::Aborted(Abort::Bug(
                    "a push transaction of one user",
                ))));
            }
        },
    };
    let (mut changed, mut codes, mut sources) = (Vec::new(), Vec::new(), Vec::new());
    let mut unlocks = Vec::new();
    for (i, rec) in records.iter().enumerate() {
        let Some(rec) = rec else { continue };
        if names.get(i) != Some(&&rec.name) {
            return Err(PgError::Store(StoreError::Aborted(Abort::Bug(
                "a transaction renamed a user",
            ))));
        }
        let old = before.get(i).and_then(Option::as_ref);
        if old == Some(rec) {
            continue;
        }
        changed.push(rec);
        if old.map(|b| &b.codes) != Some(&rec.codes) {
            codes.push(rec);
        }
        if old.map(|b| &b.sources) != Some(&rec.sources) {
            sources.push(rec);
        }
        if old.map(|b| &b.unlocks) != Some(&rec.unlocks) {
            unlocks.push(rec);
        }
    }
    let new_seeds: Vec<&UserRecord> = records
        .iter()
        .zip(&before)
        .filter_map(|(rec, old)| {
            let rec = rec.as_ref()?;
            let changed = rec.secret.is_some()
                && old.as_ref().and_then(|b| b.secret.as_ref()) != rec.secret.as_ref();
            changed.then_some(rec)
        })
        .collect();
    check_store_key(&mut tx, st, &new_seeds)?;
    write(&mut tx, st, &changed, &codes, &sources, &unlocks)?;
    for (rec, old) in records.iter().zip(&before) {
        if let Some(rec) = rec
            && let Some(at) = rows::voids_invites(old.as_ref(), rec)
        {
            tx.execute(
                "UPDATE invites SET expires = GREATEST(created, $2) WHERE \"user\" = $1 AND used IS NULL AND expires > $2",
                &[&rec.name.as_str(), &at],
            )
            .ctx("voiding invites")?;
            tx.execute(
                "DELETE FROM push_devices WHERE \"user\" = $1",
                &[&rec.name.as_str()],
            )
            .ctx("removing the push devices of a changed key")?;
        }
    }
    insert_audit(&mut tx, &st.insert_audit, &events)?;
    if let Body::Light(_, light) | Body::PushLight(_, light) = body
        && light()
    {
        // For this transaction only: every other commit still waits for the standby.
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .ctx("relaxing a commit that consumes nothing")?;
    }
    commit_replicated(store, tx, "committing")?;
    Ok(true)
}

/// COMMIT, failed where PostgreSQL stopped waiting for the synchronous standby: the server
/// then reports success with only a warning, though the standby may not have the
/// transaction, and a failover would lose it (a used code usable again). The caller refuses
/// the login instead (fail closed: the change stays committed on the primary). A warning of
/// another connection in between also fails this commit: a refusal too many, never one too
/// few.
pub(crate) fn commit_replicated(
    store: &PgStore,
    tx: postgres::Transaction<'_>,
    what: &'static str,
) -> Result<(), PgError> {
    use std::sync::atomic::Ordering;
    let before = store.unconfirmed.load(Ordering::SeqCst);
    tx.commit().ctx(what)?;
    if store.unconfirmed.load(Ordering::SeqCst) != before {
        return Err(PgError::Store(StoreError::Engine {
            context: format!("{what} on the PostgreSQL store {}", store.where_()),
            source: "the synchronous standby did not confirm the commit in time (PostgreSQL stopped waiting for it): it may be lost in a failover, so it is not relied on".into(),
        }));
    }
    Ok(())
}

pub(crate) fn read_store_key(
    q: &mut impl postgres::GenericClient,
    st: &Statement,
) -> Result<Option<KeyId>, PgError> {
    let c = "reading store_key";
    let rows = q.query(st, &[]).ctx(c)?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let id: Vec<u8> = row.try_get(0).ctx(c)?;
    id.try_into().map(Some).map_err(|_| {
        PgError::Store(StoreError::BadRow {
            user: String::new(),
            column: "store_key.key_id",
            problem: format!("not {KEY_ID_BYTES} bytes"),
        })
    })
}

/// The seeds of `recs` being written must be sealed under the store's key (or, in a store
/// that never had a key, be in the clear form): a process that opened the store before a
/// `mfactl rekey` must not write a seed under the old key into the rekeyed store. The
/// SHARE lock on `store_key` (held to the commit) waits for a rekey in progress, and keeps
/// the next one waiting until this transaction is done. SQLite's `check_store_key`.
pub(crate) fn check_store_key(
    tx: &mut Transaction<'_>,
    st: &Statements,
    recs: &[&UserRecord],
) -> Result<(), PgError> {
    if recs.is_empty() {
        return Ok(());
    }
    tx.batch_execute("LOCK TABLE store_key IN SHARE MODE")
        .ctx("locking store_key")?;
    let store = read_store_key(tx, &st.store_key)?;
    for rec in recs {
        if let Some(sealed) = &rec.secret
            && mfa_model::sealed_key_id(sealed) != store
        {
            return Err(PgError::Store(StoreError::KeyChanged {
                context: format!("writing the key of user {:?}", rec.name.as_str()),
            }));
        }
    }
    Ok(())
}

impl PgStore {
    /// [`transact_on`], tried again after a serialization conflict (a bounded number of
    /// times); `false` where the invite it was to use up is not usable.
    pub(crate) fn transact_retrying(
        &self,
        names: &[&UserName],
        invite: Option<(&[u8; 32], i64)>,
        mut body: Body<'_, '_>,
    ) -> Result<bool, StoreError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.with_conn(|c| transact_on(self, c, names, invite, &mut body)) {
                Ok(done) => return Ok(done),
                Err(PgError::Pg(what, e)) if retryable(&e) => {
                    if tries >= MAX_TRIES {
                        return Err(StoreError::Busy {
                            source: format!(
                                "{what} on {}: gave up after {tries} conflicting tries: {}",
                                self.target,
                                describe(&e)
                            )
                            .into(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(u64::from(tries) * 5));
                }
                Err(e) => return Err(self.classify(e)),
            }
        }
    }
}
