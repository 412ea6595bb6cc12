//! Write transactions: the users' rows locked (`BEGIN IMMEDIATE`), the function run, its
//! events appended, the store key checked against every seed written.

use std::cell::Cell;

use mfa_model::{AuditEvent, KEY_ID_BYTES, KeyId, SealedSecret, UserName, UserRecord};
use mfa_store::{Abort, PushFn, StoreError, TxFn, rows};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::db;
use crate::push::{SqlitePushTx, remove_devices};
use crate::rows::{load, save};

pub(crate) fn read_store_key(conn: &Connection) -> Result<Option<KeyId>, StoreError> {
    let id: Option<Vec<u8>> = conn
        .prepare_cached("SELECT key_id FROM store_key WHERE id = 1")
        .map_err(db)?
        .query_row([], |r| r.get(0))
        .optional()
        .map_err(db)?;
    match id {
        None => Ok(None),
        Some(v) => v.try_into().map(Some).map_err(|_| StoreError::BadRow {
            user: String::new(),
            column: "store_key.key_id",
            problem: format!("not {KEY_ID_BYTES} bytes"),
        }),
    }
}

/// A seed being written must be sealed under the store's key (or, in a store that never had
/// a key, be in the clear form): a process that opened the store before a `mfactl rekey`
/// must not write a seed under the old key into the rekeyed store.
pub(crate) fn check_store_key(
    conn: &Connection,
    user: &UserName,
    sealed: &SealedSecret,
) -> Result<(), StoreError> {
    let store = read_store_key(conn)?;
    let row = mfa_model::sealed_key_id(sealed);
    if row == store {
        return Ok(());
    }
    Err(StoreError::KeyChanged {
        context: format!("writing the key of user {:?}", user.as_str()),
    })
}

/// One write transaction: use up `invite` (its hash, at a time) where one is given, load
/// `names`, let `f` change them, save what changed, append the events it returned; all or
/// nothing. `false` (nothing written, `f` not run) where the invite is no longer usable.
/// Marks the invite whose token hashes to `hash` used at `now`, inside the caller's write
/// transaction, if it is still usable then (not used, not expired); `false` if it is not.
pub(crate) fn take_invite(tx: &Connection, hash: &[u8; 32], now: i64) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "UPDATE invites SET used = ?2 WHERE hash = ?1 AND used IS NULL AND expires > ?2",
        )
        .map_err(db)?
        .execute(params![&hash[..], now])
        .map_err(db)?;
    Ok(n != 0)
}

pub(crate) fn transact_on(
    c: &mut Connection,
    names: &[&UserName],
    invite: Option<(&[u8; 32], i64)>,
    f: &mut TxFn<'_>,
) -> Result<bool, StoreError> {
    transact_body(c, names, invite, Body::Records(f))
}

/// What a write transaction runs over the loaded records: a [`TxFn`], or a [`PushFn`] over
/// the one user's record and push rows, with the flag its [`SqlitePushTx`] sets where it
/// inserted a request (for the wake-up after the commit, `wake.rs`).
pub(crate) enum Body<'a, 'b> {
    Records(&'a mut TxFn<'b>),
    Push(&'a mut PushFn<'b>, &'a Cell<bool>),
}

/// [`transact_on`] for either kind of [`Body`].
pub(crate) fn transact_body(
    c: &mut Connection,
    names: &[&UserName],
    invite: Option<(&[u8; 32], i64)>,
    body: Body<'_, '_>,
) -> Result<bool, StoreError> {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    if let Some((hash, now)) = invite
        && !take_invite(&tx, hash, now)?
    {
        return Ok(false);
    }
    let before: Vec<Option<UserRecord>> = names
        .iter()
        .map(|n| load(&tx, n))
        .collect::<Result<_, _>>()?;
    let mut records = before.clone();
    let events = match body {
        Body::Records(f) => f(&mut records).map_err(StoreError::Aborted)?,
        Body::Push(f, inserted) => match (names, records.as_mut_slice()) {
            ([user], [slot]) => {
                inserted.set(false);
                f(
                    slot,
                    &mut SqlitePushTx {
                        tx: &tx,
                        user,
                        inserted,
                    },
                )?
            }
            _ => {
                return Err(StoreError::Aborted(Abort::Bug(
                    "a push transaction of one user",
                )));
            }
        },
    };
    for (i, rec) in records.iter().enumerate() {
        if let Some(rec) = rec {
            if names.get(i) != Some(&&rec.name) {
                return Err(StoreError::Aborted(Abort::Bug(
                    "a transaction renamed a user",
                )));
            }
            let old = before.get(i).and_then(Option::as_ref);
            save(&tx, rec, old)?;
            if let Some(at) = rows::voids_invites(old, rec) {
                tx.prepare_cached(VOID_INVITES)
                    .map_err(db)?
                    .execute(params![rec.name.as_str(), at])
                    .map_err(db)?;
                remove_devices(&tx, rec.name.as_str())?;
            }
        }
    }
    insert_audit(&tx, &events)?;
    tx.commit().map_err(db)?;
    Ok(true)
}

/// Ends the user's (`?1`) unused invites at `?2` ([`rows::voids_invites`]).
const VOID_INVITES: &str = "UPDATE invites SET expires = MAX(created, ?2) WHERE user = ?1 AND used IS NULL AND expires > ?2";

pub(crate) fn insert_audit(conn: &Connection, events: &[AuditEvent]) -> Result<(), StoreError> {
    let mut st = conn.prepare_cached(
        "INSERT INTO audit (time, user, service, client_ip, decision, reason, detail) VALUES (?1,?2,?3,?4,?5,?6,?7)",
    ).map_err(db)?;
    for e in events {
        st.execute(params![
            e.time,
            e.user,
            e.service,
            e.client_ip,
            e.decision.as_str(),
            e.reason.as_str(),
            e.detail
        ])
        .map_err(db)?;
    }
    Ok(())
}
