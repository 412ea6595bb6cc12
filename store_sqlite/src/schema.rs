//! The schema, its version, and the upgrades from every older version, as a table of steps
//! run in order in one write transaction.

use mfa_store::{SchemaError, StoreError};
use rusqlite::{Connection, TransactionBehavior};

use crate::error::db;

macro_rules! user_columns {
    () => {
        "name, secret, algorithm, digits, period, mfa_created, mfa_changed, first_seen, grace_started, last_step, failures, first_failure, locked_until, login_count, last_login, last_ip, last_outcome"
    };
}

/// Version 5: wrong codes counted per user and client address as well as per user.
macro_rules! source_failures_table {
    () => {
        "CREATE TABLE source_failures (
    user          TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    source        TEXT NOT NULL,
    failures      INTEGER NOT NULL,
    first_failure INTEGER NOT NULL,
    locked_until  INTEGER
) STRICT;
CREATE INDEX source_failures_user ON source_failures(user);
"
    };
}

/// The version 2 `users` table under `name` (the schema, and the copy the upgrade fills).
macro_rules! users_table {
    ($name:literal) => {
        concat!(
            "CREATE TABLE ",
            $name,
            " (
    name          TEXT PRIMARY KEY NOT NULL,
    secret        BLOB,
    algorithm     TEXT NOT NULL,
    digits        INTEGER NOT NULL,
    period        INTEGER NOT NULL,
    mfa_created   INTEGER,
    mfa_changed   INTEGER,
    first_seen    INTEGER NOT NULL,
    grace_started INTEGER,
    last_step     INTEGER,
    failures      INTEGER NOT NULL DEFAULT 0,
    first_failure INTEGER,
    locked_until  INTEGER,
    login_count   INTEGER NOT NULL DEFAULT 0,
    last_login    INTEGER,
    last_ip       TEXT,
    last_outcome  TEXT
) STRICT, WITHOUT ROWID;"
        )
    };
}

/// Small facts about the store as a whole, one row each: `name_rules` holds the `[users]`
/// rules (`NameRules::fingerprint`) the stored names were last checked against.
macro_rules! meta_table {
    () => {
        "CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
"
    };
}

/// The self-service portal's tables (version 7, [`MIGRATE_ADD_PORTAL`]):
/// - `unlocks`: remembered networks, a user's client addresses unlocked on the portal with a
///   code (`[policy] remember`); part of the user's record, removed with it.
/// - `invites`: one-time enrolment links; only the SHA-256 of the token is kept. Not tied to
///   a `users` row: an invite may name a user the store has not seen yet.
macro_rules! portal_tables {
    () => {
        "CREATE TABLE unlocks (
    user    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    ip      TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
) STRICT;
CREATE INDEX unlocks_user ON unlocks(user);
CREATE TABLE invites (
    hash    BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),
    user    TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    used    INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX invites_user ON invites(user);
"
    };
}

/// Version 8: the names that never enrolled, by when they were first seen, so the pruning of
/// the ones that only ever appeared (`Store::prune_unenrolled`, about one operation in 512)
/// reads those rows alone. It scanned every user, holding the write lock: 40 ms at 300,000
/// users and 150 ms at a million, about twice a second in the daemon's writer at half of its
/// peak, which was the whole tail of the soak (docs/BENCHMARKS.md). `login_count` is not in
/// the condition: it changes at every login, and on PostgreSQL an indexed column would make
/// every login's update a non-HOT one.
macro_rules! unenrolled_index {
    ($create:literal) => {
        concat!(
            $create,
            " users_unenrolled ON users(first_seen) WHERE secret IS NULL AND mfa_created IS NULL;\n"
        )
    };
}

/// Version 9: `users.name_key`, each name's look-alike key (`mfa_model::lookalike_key`),
/// indexed, so that a new name is checked against the names that look like it with one
/// indexed read (`Store::names_with_key`) instead of a scan of every user. Added with
/// `ALTER TABLE` on a new store too, so that a new store and an upgraded one are the same
/// table. Written when a row is inserted; the rows of an upgraded store get theirs from
/// the name check at the first open (`mfa_core::names`).
macro_rules! name_key_column {
    () => {
        "ALTER TABLE users ADD COLUMN name_key TEXT;\n"
    };
}

/// The index of [`name_key_column!`]; `$create` as in [`unenrolled_index!`].
macro_rules! name_key_index {
    ($create:literal) => {
        concat!($create, " users_name_key ON users(name_key);\n")
    };
}

/// Version 10: push approval (issue 20), see [`MIGRATE_ADD_PUSH`]:
/// - `push_devices`: the phones a user registered for approvals, the Web Push subscription
///   sealed under the store key (like a seed), the approval key's public half;
/// - `push_requests`: sign-in requests, the portal's outbox (`sent IS NULL`) among them; at
///   most one `pending` row per user and service (a unique index, beside the core's rule);
/// - `push_blocks`: until when "This wasn't me" blocks pushes to a user.
///
/// All three go with their user (`ON DELETE CASCADE`); the foreign keys are checked at the
/// commit (`DEFERRABLE INITIALLY DEFERRED`), since a transaction writes the push rows before
/// the record it saves last.
macro_rules! push_tables {
    ($table:literal, $index:literal, $unique:literal) => {
        concat!($table, " push_devices (
    id           BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    user         TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    name         TEXT NOT NULL,
    subscription BLOB NOT NULL,
    public_key   BLOB NOT NULL,
    created      INTEGER NOT NULL,
    last_used    INTEGER
) STRICT, WITHOUT ROWID;
", $index, " push_devices_user ON push_devices(user);
", $table, " push_requests (
    id             BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    user           TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    service        TEXT NOT NULL,
    client_ip      TEXT,
    created        INTEGER NOT NULL,
    expires        INTEGER NOT NULL,
    number         INTEGER,
    state          TEXT NOT NULL,
    decided        INTEGER,
    device         BLOB,
    sent           INTEGER,
    delivery_error TEXT,
    used           INTEGER
) STRICT, WITHOUT ROWID;
", $index, " push_requests_user ON push_requests(user, created);
", $index, " push_requests_created ON push_requests(created);
", $unique, " push_requests_pending ON push_requests(user, service) WHERE state = 'pending';
", $index, " push_requests_outbox ON push_requests(created) WHERE state = 'pending' AND sent IS NULL;
", $table, " push_blocks (
    user  TEXT PRIMARY KEY NOT NULL REFERENCES users(name) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    until INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
")
    };
}

/// Version 11: `push_requests.claimed`, until when a portal has taken a request from the
/// outbox to deliver it (`Store::claim_push_outbox`), so that two portals on one store never
/// both push one sign-in. Added with `ALTER TABLE` on a new store too, like
/// [`name_key_column!`], so that a new store and an upgraded one are the same table.
macro_rules! push_claim_column {
    () => {
        "ALTER TABLE push_requests ADD COLUMN claimed INTEGER;\n"
    };
}

/// Version 12: `challenges`, the pending RADIUS Access-Challenges, so that any daemon on the
/// store can finish a challenge another started (`mfa_store::challenge`): keyed by the
/// SHA-256 of the State, never the State; `id` orders one user's challenges (the oldest gives
/// way); the indexes serve the expiry and the per-client, per-host and per-user counts.
macro_rules! challenges_table {
    ($table:literal, $index:literal) => {
        concat!(
            $table,
            " challenges (
    id           INTEGER PRIMARY KEY,
    state_hash   BLOB NOT NULL UNIQUE CHECK (length(state_hash) = 32),
    user         TEXT NOT NULL,
    client       TEXT NOT NULL,
    host         TEXT NOT NULL,
    service      TEXT NOT NULL,
    client_ip    TEXT NOT NULL,
    created      INTEGER NOT NULL,
    expires      INTEGER NOT NULL,
    push_id      BLOB CHECK (push_id IS NULL OR length(push_id) = 16),
    push_number  INTEGER,
    push_expires INTEGER
) STRICT;
",
            $index,
            " challenges_expires ON challenges(expires);
",
            $index,
            " challenges_asker ON challenges(client, host, user);
"
        )
    };
}

pub(crate) const SCHEMA_VERSION: i64 = 12;

/// Version 2: `users` is WITHOUT ROWID (a login looks its user up in one B-tree instead of
/// an index and then the table), and the audit trail has no (user, time) index, whose
/// random page per decision was a third of a busy RADIUS server's writes; `mfactl log
/// --user` scans instead. Version 3: the audit trail's `reason` holds only stable codes;
/// free text moved to `detail`. Version 4: every stored seed starts with its form byte
/// (`secret::FORM_*`), `store_key` holds the id of the key the seeds are sealed under (no row:
/// never had a key, seeds in the clear form), and one-time codes name their hash `scheme`.
/// Version 5: `source_failures`, wrong codes per user and client address.
/// Version 6: `meta` (see [`MIGRATE_ADD_META`]).
/// Version 7: `unlocks` and `invites`, the portal's (see [`MIGRATE_ADD_PORTAL`]).
/// Version 8: `users_unenrolled` (see [`MIGRATE_ADD_UNENROLLED_INDEX`]).
/// Version 9: `users.name_key` (see [`migrate_add_name_key`]).
/// Version 10: push approval (see [`push_tables!`]).
/// Version 11: the outbox's claim (see [`push_claim_column!`]).
/// Version 12: pending challenges (see [`challenges_table!`]).
pub(crate) const SCHEMA: &str = concat!(
    users_table!("users"),
    "
CREATE TABLE one_time_codes (
    user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('backup', 'temporary')),
    salt      BLOB NOT NULL,
    hash      BLOB NOT NULL,
    created   INTEGER NOT NULL,
    expires   INTEGER,
    uses_left INTEGER NOT NULL,
    scheme    INTEGER NOT NULL DEFAULT 1
) STRICT;
CREATE INDEX one_time_codes_user ON one_time_codes(user);
CREATE TABLE store_key (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    key_id BLOB NOT NULL
) STRICT;
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    time      INTEGER NOT NULL,
    user      TEXT NOT NULL,
    service   TEXT NOT NULL,
    client_ip TEXT,
    decision  TEXT NOT NULL,
    reason    TEXT NOT NULL,
    detail    TEXT
) STRICT;
CREATE INDEX audit_time ON audit(time);
",
    source_failures_table!(),
    meta_table!(),
    portal_tables!(),
    unenrolled_index!("CREATE INDEX"),
    name_key_column!(),
    name_key_index!("CREATE INDEX"),
    push_tables!("CREATE TABLE", "CREATE INDEX", "CREATE UNIQUE INDEX"),
    push_claim_column!(),
    challenges_table!("CREATE TABLE", "CREATE INDEX")
);

/// Version 4 to 5: the per-address counters start empty.
pub(crate) const MIGRATE_V4_V5: &str = source_failures_table!();

/// The upgrade step that adds `meta` (the user-name check; version 5 to 6). Named for what it
/// does, not for its number, so that it can be renumbered beside other steps at a merge.
pub(crate) const MIGRATE_ADD_META: &str = meta_table!();

/// The upgrade step that adds the portal's `unlocks` and `invites` (version 6 to 7). Named for
/// what it does, like [`MIGRATE_ADD_META`], so that it can be renumbered at a merge.
pub(crate) const MIGRATE_ADD_PORTAL: &str = portal_tables!();

/// The upgrade step that indexes the names that never enrolled (version 7 to 8). `IF NOT
/// EXISTS`: a store taken back to an older version by hand keeps the index it has.
pub(crate) const MIGRATE_ADD_UNENROLLED_INDEX: &str =
    unenrolled_index!("CREATE INDEX IF NOT EXISTS");

/// The upgrade step that adds push approval's tables (version 9 to 10), all empty. Named
/// for what it does, like [`MIGRATE_ADD_META`], so that it can be renumbered at a merge;
/// `IF NOT EXISTS`, like [`MIGRATE_ADD_UNENROLLED_INDEX`]: a store taken back to an older
/// version by hand keeps the tables it has.
pub(crate) const MIGRATE_ADD_PUSH: &str = push_tables!(
    "CREATE TABLE IF NOT EXISTS",
    "CREATE INDEX IF NOT EXISTS",
    "CREATE UNIQUE INDEX IF NOT EXISTS"
);

/// Deletes the records of names that never enrolled, never logged in and hold no one-time
/// code, first seen before `?1`; through `users_unenrolled`.
pub(crate) const PRUNE_UNENROLLED: &str =
    "DELETE FROM users WHERE secret IS NULL AND mfa_created IS NULL AND login_count = 0
   AND first_seen < ?1
   AND NOT EXISTS (SELECT 1 FROM one_time_codes o WHERE o.user = users.name)";

/// Version 1 to 2, in one transaction, with foreign keys off so that replacing `users`
/// leaves `one_time_codes` alone (SQLite's procedure for changing a table's format).
pub(crate) const MIGRATE_V1_V2: &str = concat!(
    users_table!("users_v2"),
    "\nINSERT INTO users_v2 SELECT ",
    user_columns!(),
    " FROM users;
DROP TABLE users;
ALTER TABLE users_v2 RENAME TO users;
DROP INDEX IF EXISTS audit_user_time;
"
);

/// Version 2 to 3: the free text that admin actions kept in `reason` moves to `detail`, and
/// `reason` gets the stable code the action now writes.
pub(crate) const MIGRATE_V2_V3: &str = "
ALTER TABLE audit ADD COLUMN detail TEXT;
UPDATE audit SET detail = reason, reason = CASE
    WHEN decision = 'unlink' THEN 'key_removed'
    WHEN decision = 'unlock' AND reason = 'lock cleared' THEN 'lock_cleared'
    WHEN decision = 'unlock' THEN 'not_locked'
    WHEN decision = 'temp-access' AND reason LIKE 'revoked%' THEN 'revoked'
    WHEN decision = 'temp-access' THEN 'issued'
    WHEN decision = 'backup-codes' THEN 'new_set'
    WHEN decision = 'import' THEN 'imported'
    ELSE 'admin' END
 WHERE decision IN ('unlink', 'unlock', 'temp-access', 'backup-codes', 'import')
    OR (decision IN ('enroll', 're-enroll') AND reason <> 'self_enrolled');
";

/// Version 3 to 4: clear seeds get the clear form byte (0x00), so no later reader has to
/// guess whether a row is encrypted; the first open with a key file seals them (see
/// `Core::open`). Codes hashed before this version are SHA-256 (scheme 1).
pub(crate) const MIGRATE_V3_V4: &str = "
ALTER TABLE one_time_codes ADD COLUMN scheme INTEGER NOT NULL DEFAULT 1;
CREATE TABLE store_key (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    key_id BLOB NOT NULL
) STRICT;
UPDATE users SET secret = unhex('00' || hex(secret)) WHERE secret IS NOT NULL;
";

pub(crate) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db)?;
    match version {
        SCHEMA_VERSION => Ok(()),
        0..SCHEMA_VERSION => {
            // Foreign keys can only be switched off outside a transaction (see
            // MIGRATE_V1_V2); every connection turns them on again in `connect`.
            if version == 1 {
                conn.execute_batch("PRAGMA foreign_keys=OFF").map_err(db)?;
            }
            let done = upgrade(conn);
            conn.execute_batch("PRAGMA foreign_keys=ON").map_err(db)?;
            done
        }
        v if v > SCHEMA_VERSION => Err(StoreError::Schema(SchemaError::Newer {
            found: v,
            known: SCHEMA_VERSION,
        })),
        v => Err(StoreError::Schema(SchemaError::Unknown { found: v })),
    }
}

/// The upgrade step that adds the look-alike key of each name (version 8 to 9): empty, filled
/// by the name check. Like [`MIGRATE_ADD_UNENROLLED_INDEX`], a store taken back to an older
/// version by hand keeps the column and index it has (SQLite has no `ADD COLUMN IF NOT
/// EXISTS`, hence a step in code).
fn migrate_add_name_key(tx: &Connection) -> Result<(), StoreError> {
    let has: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('users') WHERE name = 'name_key'",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    if !has {
        tx.execute_batch(name_key_column!()).map_err(db)?;
    }
    tx.execute_batch(name_key_index!("CREATE INDEX IF NOT EXISTS"))
        .map_err(db)
}

/// The upgrade step that adds [`push_claim_column!`] (version 10 to 11), in code for the
/// reason [`migrate_add_name_key`] gives.
fn migrate_add_push_claim(tx: &Connection) -> Result<(), StoreError> {
    let has: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('push_requests') WHERE name = 'claimed'",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    if !has {
        tx.execute_batch(push_claim_column!()).map_err(db)?;
    }
    Ok(())
}

/// One upgrade step: SQL, or code where SQL alone cannot say it.
enum Step {
    Sql(&'static str),
    Code(fn(&Connection) -> Result<(), StoreError>),
}

/// The upgrades, each from the version named to the next, run in order in one transaction.
/// A new schema version is one more row here (and `SCHEMA` changed to match).
const MIGRATIONS: &[(i64, Step)] = &[
    (1, Step::Sql(MIGRATE_V1_V2)),
    (2, Step::Sql(MIGRATE_V2_V3)),
    (3, Step::Sql(MIGRATE_V3_V4)),
    (4, Step::Sql(MIGRATE_V4_V5)),
    (5, Step::Sql(MIGRATE_ADD_META)),
    (6, Step::Sql(MIGRATE_ADD_PORTAL)),
    (7, Step::Sql(MIGRATE_ADD_UNENROLLED_INDEX)),
    (8, Step::Code(migrate_add_name_key)),
    (9, Step::Sql(MIGRATE_ADD_PUSH)),
    (10, Step::Code(migrate_add_push_claim)),
    (11, Step::Sql(MIGRATE_ADD_CHALLENGES)),
];

/// The upgrade step that adds `challenges` (version 11 to 12), empty: a daemon of the old
/// version kept its challenges in memory, and they end with it. Named for what it does, so
/// that it can be renumbered at a merge; `IF NOT EXISTS` for a store taken back by hand.
pub(crate) const MIGRATE_ADD_CHALLENGES: &str =
    challenges_table!("CREATE TABLE IF NOT EXISTS", "CREATE INDEX IF NOT EXISTS");

/// Creates or upgrades the schema in one write transaction. Another process may be doing
/// the same at the same moment: take the write lock, then look at the version again.
fn upgrade(conn: &Connection) -> Result<(), StoreError> {
    let tx =
        rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(db)?;
    let v: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db)?;
    match v {
        0 => tx.execute_batch(SCHEMA).map_err(db)?,
        // Done meanwhile by another process.
        SCHEMA_VERSION => return Ok(()),
        v => {
            let mut at = v;
            for (from, step) in MIGRATIONS.iter().filter(|(from, _)| *from >= v) {
                if *from != at {
                    break;
                }
                match step {
                    Step::Sql(sql) => tx.execute_batch(sql).map_err(db)?,
                    Step::Code(f) => f(&tx)?,
                }
                // Version 1 to 2 rebuilt `users` with foreign keys off: no row may be left
                // without its user.
                if *from == 1 {
                    let orphans: i64 = tx
                        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                            r.get(0)
                        })
                        .map_err(db)?;
                    if orphans != 0 {
                        return Err(StoreError::Schema(SchemaError::Orphans {
                            from: 1,
                            rows: orphans,
                        }));
                    }
                }
                at += 1;
            }
            if at != SCHEMA_VERSION {
                return Err(StoreError::Schema(SchemaError::Unknown { found: v }));
            }
        }
    }
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
        .map_err(db)?;
    tx.commit().map_err(db)?;
    Ok(())
}
