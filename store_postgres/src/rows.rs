//! A user's rows read into a record and written back, and the invites' rows; every column
//! is checked by `mfa_store::rows`.

use mfa_model::UserRecord;
use mfa_store::rows::{self, CodeRow, InviteRow, SourceRow, UnlockRow, UserRow};
use postgres::{Row, Statement, Transaction};

use crate::error::{Context, PgError};
use crate::pool::Statements;

pub(crate) const USER_COLUMNS: &str = "name, secret, algorithm, digits, period, mfa_created, mfa_changed, first_seen, grace_started, last_step, failures, first_failure, locked_until, login_count, last_login, last_ip, last_outcome";

pub(crate) fn read_user(r: &Row) -> Result<UserRow, PgError> {
    let c = "reading a users row";
    Ok(UserRow {
        name: r.try_get(0).ctx(c)?,
        secret: r.try_get(1).ctx(c)?,
        algorithm: r.try_get(2).ctx(c)?,
        digits: r.try_get(3).ctx(c)?,
        period: r.try_get(4).ctx(c)?,
        mfa_created: r.try_get(5).ctx(c)?,
        mfa_changed: r.try_get(6).ctx(c)?,
        first_seen: r.try_get(7).ctx(c)?,
        grace_started: r.try_get(8).ctx(c)?,
        last_step: r.try_get(9).ctx(c)?,
        failures: r.try_get(10).ctx(c)?,
        first_failure: r.try_get(11).ctx(c)?,
        locked_until: r.try_get(12).ctx(c)?,
        login_count: r.try_get(13).ctx(c)?,
        last_login: r.try_get(14).ctx(c)?,
        last_ip: r.try_get(15).ctx(c)?,
        last_outcome: r.try_get(16).ctx(c)?,
    })
}

/// The codes, counters and unlocks of `names`, grouped by user (each in stored order).
pub(crate) type Children = (
    std::collections::HashMap<String, Vec<CodeRow>>,
    std::collections::HashMap<String, Vec<SourceRow>>,
    std::collections::HashMap<String, Vec<UnlockRow>>,
);

pub(crate) fn read_children(
    q: &mut impl postgres::GenericClient,
    codes_sql: &Statement,
    sources_sql: &Statement,
    unlocks_sql: &Statement,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Children, PgError> {
    let mut codes: std::collections::HashMap<String, Vec<CodeRow>> = Default::default();
    let c = "reading one_time_codes";
    for r in q.query(codes_sql, params).ctx(c)? {
        let user: String = r.try_get(0).ctx(c)?;
        codes.entry(user).or_default().push(CodeRow {
            kind: r.try_get(1).ctx(c)?,
            salt: r.try_get(2).ctx(c)?,
            hash: r.try_get(3).ctx(c)?,
            created: r.try_get(4).ctx(c)?,
            expires: r.try_get(5).ctx(c)?,
            uses_left: r.try_get(6).ctx(c)?,
            scheme: r.try_get(7).ctx(c)?,
        });
    }
    let mut sources: std::collections::HashMap<String, Vec<SourceRow>> = Default::default();
    let c = "reading source_failures";
    for r in q.query(sources_sql, params).ctx(c)? {
        let user: String = r.try_get(0).ctx(c)?;
        sources.entry(user).or_default().push(SourceRow {
            source: r.try_get(1).ctx(c)?,
            failures: r.try_get(2).ctx(c)?,
            first_failure: r.try_get(3).ctx(c)?,
            locked_until: r.try_get(4).ctx(c)?,
        });
    }
    let mut unlocks: std::collections::HashMap<String, Vec<UnlockRow>> = Default::default();
    let c = "reading unlocks";
    for r in q.query(unlocks_sql, params).ctx(c)? {
        let user: String = r.try_get(0).ctx(c)?;
        unlocks.entry(user).or_default().push(UnlockRow {
            ip: r.try_get(1).ctx(c)?,
            created: r.try_get(2).ctx(c)?,
            expires: r.try_get(3).ctx(c)?,
        });
    }
    Ok((codes, sources, unlocks))
}

/// Rows to records, in the order of `users` rows.
pub(crate) fn decode_all(
    users: Vec<UserRow>,
    (mut codes, mut sources, mut unlocks): Children,
) -> Result<Vec<UserRecord>, PgError> {
    users
        .into_iter()
        .map(|u| {
            let c = codes.remove(&u.name).unwrap_or_default();
            let s = sources.remove(&u.name).unwrap_or_default();
            let l = unlocks.remove(&u.name).unwrap_or_default();
            rows::decode(u, c, s, l).map_err(PgError::Store)
        })
        .collect()
}

/// Writes `recs` (all of them: the caller leaves out what did not change), replacing the
/// codes of `new_codes` users, the counters of `new_sources` users and the unlocks of
/// `new_unlocks` users.
pub(crate) fn write(
    tx: &mut Transaction<'_>,
    st: &Statements,
    recs: &[&UserRecord],
    new_codes: &[&UserRecord],
    new_sources: &[&UserRecord],
    new_unlocks: &[&UserRecord],
) -> Result<(), PgError> {
    if !recs.is_empty() {
        let rows: Vec<UserRow> = recs.iter().map(|r| rows::encode(r)).collect();
        macro_rules! col {
            ($f:ident) => {
                rows.iter().map(|r| r.$f.clone()).collect::<Vec<_>>()
            };
        }
        let (name, secret, algorithm, digits, period) = (
            col!(name),
            col!(secret),
            col!(algorithm),
            col!(digits),
            col!(period),
        );
        let (mfa_created, mfa_changed, first_seen, grace_started, last_step) = (
            col!(mfa_created),
            col!(mfa_changed),
            col!(first_seen),
            col!(grace_started),
            col!(last_step),
        );
        let (failures, first_failure, locked_until, login_count, last_login) = (
            col!(failures),
            col!(first_failure),
            col!(locked_until),
            col!(login_count),
            col!(last_login),
        );
        let (last_ip, last_outcome) = (col!(last_ip), col!(last_outcome));
        // Written with a new row; the update leaves it (a row's name never changes).
        let name_key: Vec<String> = rows
            .iter()
            .map(|r| mfa_model::lookalike_key(&r.name))
            .collect();
        tx.execute(
            &st.upsert,
            &[
                &name,
                &secret,
                &algorithm,
                &digits,
                &period,
                &mfa_created,
                &mfa_changed,
                &first_seen,
                &grace_started,
                &last_step,
                &failures,
                &first_failure,
                &locked_until,
                &login_count,
                &last_login,
                &last_ip,
                &last_outcome,
                &name_key,
            ],
        )
        .ctx("writing users")?;
    }
    if !new_codes.is_empty() {
        let users: Vec<String> = new_codes.iter().map(|r| r.name.to_string()).collect();
        tx.execute(&st.delete_codes, &[&users])
            .ctx("replacing one_time_codes")?;
        let (mut u, mut kind, mut salt, mut hash, mut created, mut expires, mut uses) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        let mut scheme = vec![];
        for r in new_codes {
            for c in rows::encode_codes(r) {
                u.push(r.name.to_string());
                kind.push(c.kind);
                salt.push(c.salt);
                hash.push(c.hash);
                created.push(c.created);
                expires.push(c.expires);
                uses.push(c.uses_left);
                scheme.push(c.scheme);
            }
        }
        if !u.is_empty() {
            tx.execute(
                &st.insert_codes,
                &[&u, &kind, &salt, &hash, &created, &expires, &uses, &scheme],
            )
            .ctx("replacing one_time_codes")?;
        }
    }
    if !new_sources.is_empty() {
        let users: Vec<String> = new_sources.iter().map(|r| r.name.to_string()).collect();
        tx.execute(&st.delete_sources, &[&users])
            .ctx("replacing source_failures")?;
        let (mut u, mut source, mut failures, mut first, mut locked) =
            (vec![], vec![], vec![], vec![], vec![]);
        for r in new_sources {
            for s in rows::encode_sources(r) {
                u.push(r.name.to_string());
                source.push(s.source);
                failures.push(s.failures);
                first.push(s.first_failure);
                locked.push(s.locked_until);
            }
        }
        if !u.is_empty() {
            tx.execute(
                &st.insert_sources,
                &[&u, &source, &failures, &first, &locked],
            )
            .ctx("replacing source_failures")?;
        }
    }
    if !new_unlocks.is_empty() {
        let users: Vec<String> = new_unlocks.iter().map(|r| r.name.to_string()).collect();
        tx.execute(&st.delete_unlocks, &[&users])
            .ctx("replacing unlocks")?;
        let (mut u, mut ip, mut created, mut expires) = (vec![], vec![], vec![], vec![]);
        for r in new_unlocks {
            for l in rows::encode_unlocks(r) {
                u.push(r.name.to_string());
                ip.push(l.ip);
                created.push(l.created);
                expires.push(l.expires);
            }
        }
        if !u.is_empty() {
            tx.execute(&st.insert_unlocks, &[&u, &ip, &created, &expires])
                .ctx("replacing unlocks")?;
        }
    }
    Ok(())
}

pub(crate) const INVITE_COLUMNS: &str =
    "SELECT hash, \"user\", created, expires, used FROM invites";

pub(crate) fn read_invite(r: &Row) -> Result<InviteRow, PgError> {
    let c = "reading an invites row";
    Ok(InviteRow {
        hash: r.try_get(0).ctx(c)?,
        user: r.try_get(1).ctx(c)?,
        created: r.try_get(2).ctx(c)?,
        expires: r.try_get(3).ctx(c)?,
        used: r.try_get(4).ctx(c)?,
    })
}
