//! Pending RADIUS challenges (`mfa_store::challenge`). A challenge is stored under one
//! transaction-scoped advisory lock ([`CHALLENGE_LOCK`]) that every node takes before it
//! counts: READ COMMITTED alone would let two nodes count the same rows and both insert past
//! a cap. Taken with one `DELETE ... RETURNING`: a second node deleting the same row waits
//! for the first one's commit and then finds nothing.

use mfa_store::{ChallengeLimits, ChallengeRow, StoreError};
use postgres::{Client, GenericClient, Row};

use crate::error::{Context, PgError};
use crate::pool::PgStore;
use crate::tx::commit_replicated;

/// The advisory lock key that serialises storing challenges, outside the user-name key space
/// like `schema::SCHEMA_LOCK`.
const CHALLENGE_LOCK: i64 = 0x6d66_615f_6368_616c; // "mfa_chal"

const COLUMNS: &str = r#"state_hash, "user", client, host, service, client_ip, created, expires, push_id, push_number, push_expires"#;

fn bad(column: &'static str, problem: &str) -> PgError {
    PgError::Store(StoreError::BadRow {
        user: String::new(),
        column,
        problem: problem.into(),
    })
}

fn decode(r: &Row) -> Result<ChallengeRow, PgError> {
    let ctx = "reading a pending challenge";
    let hash: Vec<u8> = r.try_get(0).ctx(ctx)?;
    let push_id: Option<Vec<u8>> = r.try_get(8).ctx(ctx)?;
    let number: Option<i64> = r.try_get(9).ctx(ctx)?;
    Ok(ChallengeRow {
        state_hash: hash
            .try_into()
            .map_err(|_| bad("challenges.state_hash", "not 32 octets"))?,
        user: r.try_get(1).ctx(ctx)?,
        client: r.try_get(2).ctx(ctx)?,
        host: r.try_get(3).ctx(ctx)?,
        service: r.try_get(4).ctx(ctx)?,
        client_ip: r.try_get(5).ctx(ctx)?,
        created: r.try_get(6).ctx(ctx)?,
        expires: r.try_get(7).ctx(ctx)?,
        push_id: push_id
            .map(<[u8; 16]>::try_from)
            .transpose()
            .map_err(|_| bad("challenges.push_id", "not 16 octets"))?,
        push_number: number
            .map(u8::try_from)
            .transpose()
            .map_err(|_| bad("challenges.push_number", "out of range"))?,
        push_expires: r.try_get(10).ctx(ctx)?,
    })
}

fn count(
    q: &mut impl GenericClient,
    sql: &str,
    p: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<usize, PgError> {
    let n: i64 = q
        .query_one(sql, p)
        .ctx("counting pending challenges")?
        .try_get(0)
        .ctx("counting pending challenges")?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

pub(crate) fn put(
    store: &PgStore,
    client: &mut Client,
    row: &ChallengeRow,
    limits: &ChallengeLimits,
) -> Result<bool, PgError> {
    let mut tx = client.transaction().ctx("starting to store a challenge")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHALLENGE_LOCK])
        .ctx("locking the pending challenges")?;
    let now = row.created;
    tx.execute("DELETE FROM challenges WHERE expires <= $1", &[&now])
        .ctx("pruning expired challenges")?;
    let mine: Vec<i64> = tx
        .query(
            r#"SELECT id FROM challenges WHERE client = $1 AND host = $2 AND "user" = $3 ORDER BY id"#,
            &[&row.client, &row.host, &row.user],
        )
        .ctx("reading the user's pending challenges")?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()
        .ctx("reading the user's pending challenges")?;
    if let Some(excess) = (mine.len() + 1).checked_sub(limits.per_user.max(1))
        && excess > 0
    {
        let oldest: Vec<i64> = mine.into_iter().take(excess).collect();
        tx.execute("DELETE FROM challenges WHERE id = ANY($1)", &[&oldest])
            .ctx("dropping the user's oldest challenge")?;
    }
    let full = count(&mut tx, "SELECT count(*) FROM challenges", &[])? >= limits.total
        || count(
            &mut tx,
            "SELECT count(*) FROM challenges WHERE client = $1",
            &[&row.client],
        )? >= limits.per_client
        || (!row.host.is_empty()
            && count(
                &mut tx,
                "SELECT count(*) FROM challenges WHERE client = $1 AND host = $2",
                &[&row.client, &row.host],
            )? >= limits.per_host);
    if !full {
        tx.execute(
            &format!(
                "INSERT INTO challenges ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            &[
                &&row.state_hash[..],
                &row.user,
                &row.client,
                &row.host,
                &row.service,
                &row.client_ip,
                &row.created,
                &row.expires,
                &row.push_id.as_ref().map(|p| &p[..]),
                &row.push_number.map(i64::from),
                &row.push_expires,
            ],
        )
        .ctx("storing a challenge")?;
    }
    commit_replicated(store, tx, "committing a challenge")?;
    Ok(!full)
}

/// Takes the challenge out in a transaction of its own, committed as every decision is
/// ([`commit_replicated`]): a take the synchronous standby never confirmed could be undone
/// by a failover and the State answered again, so it is refused instead.
pub(crate) fn take(
    store: &PgStore,
    client: &mut Client,
    hash: &[u8; 32],
) -> Result<Option<ChallengeRow>, PgError> {
    let mut tx = client
        .transaction()
        .ctx("starting to take a pending challenge")?;
    let rows = tx
        .query(
            &format!("DELETE FROM challenges WHERE state_hash = $1 RETURNING {COLUMNS}"),
            &[&&hash[..]],
        )
        .ctx("taking a pending challenge")?;
    let row = rows.first().map(decode).transpose()?;
    commit_replicated(store, tx, "committing the take of a challenge")?;
    Ok(row)
}

pub(crate) fn prune(q: &mut impl GenericClient, now: i64) -> Result<usize, PgError> {
    let n = q
        .execute("DELETE FROM challenges WHERE expires <= $1", &[&now])
        .ctx("pruning expired challenges")?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

pub(crate) fn live(q: &mut impl GenericClient, now: i64) -> Result<usize, PgError> {
    count(
        q,
        "SELECT count(*) FROM challenges WHERE expires > $1",
        &[&now],
    )
}
