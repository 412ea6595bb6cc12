//! Pending RADIUS challenges (`mfa_store::challenge`): stored under the write lock
//! (`BEGIN IMMEDIATE`), so the counts behind the caps and the insert are one step for every
//! process on the file; taken with one `DELETE ... RETURNING`.

use mfa_store::{ChallengeLimits, ChallengeRow, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::conn::SqliteStore;
use crate::error::db;

impl SqliteStore {
    /// The connection a challenge is stored and taken on. In the daemon (once its writer
    /// made the deferred-commit connection), that one: the commit waits for no fsync of its
    /// own, so a challenge login costs the writer two small commits rather than two syncs,
    /// and the writer's next sync covers it. What can be lost to a power cut is only what
    /// no answer depends on: an Access-Accept leaves after the sync of its decision, which
    /// covers the State's take before it; a challenge lost before its sync fails closed (the
    /// user starts again). Elsewhere, a pooled connection (`synchronous=FULL`).
    pub(crate) fn with_challenge_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self
            .driven_checkpoints
            .load(std::sync::atomic::Ordering::Acquire)
        {
            self.with_deferred_conn(f)
        } else {
            self.with_conn(f)
        }
    }
}

const COLUMNS: &str = "state_hash, user, client, host, service, client_ip, created, expires, push_id, push_number, push_expires";

fn bad(column: &'static str, problem: &str) -> StoreError {
    StoreError::BadRow {
        user: String::new(),
        column,
        problem: problem.into(),
    }
}

/// A row as read, with the columns whose form is checked in [`decode`]: the hash, the push
/// id and the number.
type Read = (ChallengeRow, Vec<u8>, Option<Vec<u8>>, Option<i64>);

fn read(r: &Row<'_>) -> Result<Read, rusqlite::Error> {
    let hash: Vec<u8> = r.get(0)?;
    let push_id: Option<Vec<u8>> = r.get(8)?;
    let number: Option<i64> = r.get(9)?;
    Ok((
        ChallengeRow {
            state_hash: [0; 32],
            user: r.get(1)?,
            client: r.get(2)?,
            host: r.get(3)?,
            service: r.get(4)?,
            client_ip: r.get(5)?,
            created: r.get(6)?,
            expires: r.get(7)?,
            push_id: None,
            push_number: None,
            push_expires: r.get(10)?,
        },
        hash,
        push_id,
        number,
    ))
}

fn decode((mut row, hash, push_id, number): Read) -> Result<ChallengeRow, StoreError> {
    row.state_hash = hash
        .try_into()
        .map_err(|_| bad("challenges.state_hash", "not 32 octets"))?;
    row.push_id = push_id
        .map(|p| p.try_into())
        .transpose()
        .map_err(|_| bad("challenges.push_id", "not 16 octets"))?;
    row.push_number = number
        .map(u8::try_from)
        .transpose()
        .map_err(|_| bad("challenges.push_number", "out of range"))?;
    Ok(row)
}

fn count(c: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<usize, StoreError> {
    let n: i64 = c.query_row(sql, p, |r| r.get(0)).map_err(db)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

pub(crate) fn put(
    c: &mut Connection,
    row: &ChallengeRow,
    limits: &ChallengeLimits,
) -> Result<bool, StoreError> {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let now = row.created;
    tx.execute("DELETE FROM challenges WHERE expires <= ?1", [now])
        .map_err(db)?;
    let mine: Vec<i64> = tx
        .prepare_cached(
            "SELECT id FROM challenges WHERE client = ?1 AND host = ?2 AND user = ?3 ORDER BY id",
        )
        .map_err(db)?
        .query_map(params![row.client, row.host, row.user], |r| r.get(0))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    if let Some(excess) = (mine.len() + 1).checked_sub(limits.per_user.max(1)) {
        for id in mine.iter().take(excess) {
            tx.execute("DELETE FROM challenges WHERE id = ?1", [id])
                .map_err(db)?;
        }
    }
    let full = count(&tx, "SELECT count(*) FROM challenges", [])? >= limits.total
        || count(
            &tx,
            "SELECT count(*) FROM challenges WHERE client = ?1",
            [&row.client],
        )? >= limits.per_client
        || (!row.host.is_empty()
            && count(
                &tx,
                "SELECT count(*) FROM challenges WHERE client = ?1 AND host = ?2",
                [&row.client, &row.host],
            )? >= limits.per_host);
    if full {
        // The oldest of the user's that gave way stays given way: it was beyond the cap.
        tx.commit().map_err(db)?;
        return Ok(false);
    }
    tx.prepare_cached(&format!(
        "INSERT INTO challenges ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))
    .map_err(db)?
    .execute(params![
        &row.state_hash[..],
        row.user,
        row.client,
        row.host,
        row.service,
        row.client_ip,
        row.created,
        row.expires,
        row.push_id.as_ref().map(|p| &p[..]),
        row.push_number.map(i64::from),
        row.push_expires,
    ])
    .map_err(db)?;
    tx.commit().map_err(db)?;
    Ok(true)
}

pub(crate) fn take(c: &Connection, hash: &[u8; 32]) -> Result<Option<ChallengeRow>, StoreError> {
    c.prepare_cached(&format!(
        "DELETE FROM challenges WHERE state_hash = ?1 RETURNING {COLUMNS}"
    ))
    .map_err(db)?
    .query_row([&hash[..]], read)
    .optional()
    .map_err(db)?
    .map(decode)
    .transpose()
}

pub(crate) fn prune(c: &Connection, now: i64) -> Result<usize, StoreError> {
    c.execute("DELETE FROM challenges WHERE expires <= ?1", [now])
        .map_err(db)
}

pub(crate) fn live(c: &Connection, now: i64) -> Result<usize, StoreError> {
    count(
        c,
        "SELECT count(*) FROM challenges WHERE expires > ?1",
        [now],
    )
}
