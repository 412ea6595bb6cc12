//! The schema, its version, and the upgrades, as a table of steps run in order under the
//! schema lock.

use mfa_store::{OpenMode, SchemaError, StoreError};
use postgres::Client;

use crate::error::{Context, PgError};
use crate::pool::PgStore;

/// The layout this program writes: the same tables and columns as the current SQLite
/// schema (`store_sqlite`, version 9), in PostgreSQL's types (`BIGINT` for SQLite's INTEGER,
/// `BYTEA` for BLOB). `user` is a reserved word here, hence the quotes. Version 4: the
/// first PostgreSQL layout (SQLite's version 3 and `source_failures`). Version 5: seeds
/// start with their form byte, `store_key`, `one_time_codes.scheme` and `meta` (SQLite's
/// versions 4 and 6). Version 6: the self-service portal's `unlocks` and `invites`
/// (SQLite's version 7). Version 7: `users_unenrolled`, the names that never enrolled by
/// when they were first seen (SQLite's version 8, where the reason is given). Version 8:
/// `users.name_key`, each name's look-alike key, indexed (SQLite's version 9, where the
/// reason is given). Version 9: push approval's `push_devices`, `push_requests` and
/// `push_blocks` (SQLite's version 10, where they are described). Version 10:
/// `push_requests.claimed`, until when a portal has taken a request to deliver it (SQLite's
/// version 11, where the reason is given).
/// Version 11: `challenges`, the pending RADIUS Access-Challenges (SQLite's version 12, where
/// they are described). Version 12: `users_name_bytes`, the names in byte order (`COLLATE
/// "C"`) whatever the database's collation, for the administrator's search by name
/// (`Store::user_page`); SQLite's primary key is in that order already.
pub const SCHEMA_VERSION: i64 = 12;

/// The pending challenges (SQLite's `challenges_table!`), in [`SCHEMA`] and
/// [`MIGRATE_ADD_CHALLENGES`].
macro_rules! pg_challenges_table {
    () => {
        "
CREATE TABLE IF NOT EXISTS challenges (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state_hash   BYTEA NOT NULL UNIQUE CHECK (length(state_hash) = 32),
    \"user\"       TEXT NOT NULL,
    client       TEXT NOT NULL,
    host         TEXT NOT NULL,
    service      TEXT NOT NULL,
    client_ip    TEXT NOT NULL,
    created      BIGINT NOT NULL,
    expires      BIGINT NOT NULL,
    push_id      BYTEA CHECK (push_id IS NULL OR length(push_id) = 16),
    push_number  BIGINT,
    push_expires BIGINT
);
CREATE INDEX IF NOT EXISTS challenges_expires ON challenges(expires);
CREATE INDEX IF NOT EXISTS challenges_asker ON challenges(client, host, \"user\");
"
    };
}

/// The outbox's claim column (SQLite's `push_claim_column!`), in [`SCHEMA`] and
/// [`MIGRATE_ADD_PUSH_CLAIM`].
macro_rules! pg_push_claim_column {
    () => {
        "
ALTER TABLE push_requests ADD COLUMN claimed BIGINT;
"
    };
}

/// The index of the names in byte order, in [`SCHEMA`] and [`MIGRATE_ADD_NAME_BYTES`].
macro_rules! pg_name_bytes_index {
    () => {
        r#"
CREATE INDEX users_name_bytes ON users (name COLLATE "C");
"#
    };
}

/// Push approval's tables (SQLite's `push_tables!`), in [`SCHEMA`] and [`MIGRATE_ADD_PUSH`].
/// The foreign keys are checked at the commit: a transaction writes the push rows before
/// the record it saves last.
macro_rules! pg_push_tables {
    () => {
        r#"
CREATE TABLE push_devices (
    id           BYTEA PRIMARY KEY NOT NULL CHECK (octet_length(id) = 16),
    "user"       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    name         TEXT NOT NULL,
    subscription BYTEA NOT NULL,
    public_key   BYTEA NOT NULL,
    created      BIGINT NOT NULL,
    last_used    BIGINT
);
CREATE INDEX push_devices_user ON push_devices("user");
CREATE TABLE push_requests (
    id             BYTEA PRIMARY KEY NOT NULL CHECK (octet_length(id) = 16),
    "user"         TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    service        TEXT NOT NULL,
    client_ip      TEXT,
    created        BIGINT NOT NULL,
    expires        BIGINT NOT NULL,
    number         BIGINT,
    state          TEXT NOT NULL,
    decided        BIGINT,
    device         BYTEA,
    sent           BIGINT,
    delivery_error TEXT,
    used           BIGINT
);
CREATE INDEX push_requests_user ON push_requests("user", created);
CREATE INDEX push_requests_created ON push_requests(created);
CREATE UNIQUE INDEX push_requests_pending ON push_requests("user", service) WHERE state = 'pending';
CREATE INDEX push_requests_outbox ON push_requests(created) WHERE state = 'pending' AND sent IS NULL;
CREATE TABLE push_blocks (
    "user" TEXT PRIMARY KEY NOT NULL REFERENCES users(name) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    until  BIGINT NOT NULL
);
"#
    };
}

/// The look-alike key column and its index (SQLite's `name_key_column!`), in [`SCHEMA`] and
/// [`MIGRATE_V7_V8`].
macro_rules! pg_name_key_column {
    () => {
        "
ALTER TABLE users ADD COLUMN name_key TEXT;
CREATE INDEX users_name_key ON users (name_key);
"
    };
}

/// The partial index over the names that never enrolled (SQLite's `unenrolled_index!`), in
/// [`SCHEMA`] and [`MIGRATE_V6_V7`].
macro_rules! pg_unenrolled_index {
    () => {
        "
CREATE INDEX users_unenrolled ON users (first_seen) WHERE secret IS NULL AND mfa_created IS NULL;
"
    };
}

/// The self-service portal's tables (SQLite's `portal_tables!`), in [`SCHEMA`] and
/// [`MIGRATE_V5_V6`]:
/// - `unlocks`: remembered networks, part of the user's record, removed with it; `id` keeps
///   their order (SQLite's rowid).
/// - `invites`: one-time enrolment links, only the SHA-256 of the token kept. No foreign
///   key: an invite may name a user the store has not seen yet.
macro_rules! pg_portal_tables {
    () => {
        r#"
CREATE TABLE unlocks (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "user"  TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    ip      TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX unlocks_user ON unlocks("user");
CREATE TABLE invites (
    hash    BYTEA PRIMARY KEY NOT NULL CHECK (octet_length(hash) = 32),
    "user"  TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    used    BIGINT
);
CREATE INDEX invites_user ON invites("user");
"#
    };
}

/// The schema of version [`SCHEMA_VERSION`], created in one transaction on an empty database.
/// Mirror every change of the SQLite schema here, with a step in [`MIGRATIONS`].
pub const SCHEMA: &str = concat!(
    r#"
CREATE TABLE schema_version (
    version BIGINT NOT NULL
);
CREATE TABLE users (
    name          TEXT PRIMARY KEY NOT NULL,
    secret        BYTEA,
    algorithm     TEXT NOT NULL,
    digits        BIGINT NOT NULL,
    period        BIGINT NOT NULL,
    mfa_created   BIGINT,
    mfa_changed   BIGINT,
    first_seen    BIGINT NOT NULL,
    grace_started BIGINT,
    last_step     BIGINT,
    failures      BIGINT NOT NULL DEFAULT 0,
    first_failure BIGINT,
    locked_until  BIGINT,
    login_count   BIGINT NOT NULL DEFAULT 0,
    last_login    BIGINT,
    last_ip       TEXT,
    last_outcome  TEXT
);
CREATE TABLE one_time_codes (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "user"    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('backup', 'temporary')),
    salt      BYTEA NOT NULL,
    hash      BYTEA NOT NULL,
    created   BIGINT NOT NULL,
    expires   BIGINT,
    uses_left BIGINT NOT NULL,
    scheme    BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX one_time_codes_user ON one_time_codes("user");
CREATE TABLE store_key (
    id     BIGINT PRIMARY KEY CHECK (id = 1),
    key_id BYTEA NOT NULL
);
CREATE TABLE audit (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time      BIGINT NOT NULL,
    "user"    TEXT NOT NULL,
    service   TEXT NOT NULL,
    client_ip TEXT,
    decision  TEXT NOT NULL,
    reason    TEXT NOT NULL,
    detail    TEXT
);
CREATE INDEX audit_time ON audit(time);
CREATE TABLE source_failures (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "user"        TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    source        TEXT NOT NULL,
    failures      BIGINT NOT NULL,
    first_failure BIGINT NOT NULL,
    locked_until  BIGINT
);
CREATE INDEX source_failures_user ON source_failures("user");
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
"#,
    pg_portal_tables!(),
    pg_unenrolled_index!(),
    pg_name_key_column!(),
    pg_push_tables!(),
    pg_push_claim_column!(),
    pg_challenges_table!(),
    pg_name_bytes_index!()
);

/// Version 4 to 5 (SQLite's 3 to 4 and 5 to 6): clear seeds get the clear form byte (0x00),
/// so no reader has to guess whether a row is encrypted, and the first open with a key file
/// seals them (`Core::open`); codes hashed before are SHA-256 (scheme 1); the store has no
/// key yet; `meta` starts empty, so the names are checked at the next start.
pub(crate) const MIGRATE_V4_V5: &str = r#"
ALTER TABLE one_time_codes ADD COLUMN scheme BIGINT NOT NULL DEFAULT 1;
CREATE TABLE store_key (
    id     BIGINT PRIMARY KEY CHECK (id = 1),
    key_id BYTEA NOT NULL
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
UPDATE users SET secret = decode('00', 'hex') || secret WHERE secret IS NOT NULL;
"#;

/// Version 5 to 6 (SQLite's 6 to 7): the portal's `unlocks` and `invites`, both empty.
pub(crate) const MIGRATE_V5_V6: &str = pg_portal_tables!();

/// Upgrades, each from the version named to the next, run in order in one transaction
/// under the schema lock.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (4, MIGRATE_V4_V5),
    (5, MIGRATE_V5_V6),
    (6, MIGRATE_V6_V7),
    (7, MIGRATE_V7_V8),
    (8, MIGRATE_ADD_PUSH),
    (9, MIGRATE_ADD_PUSH_CLAIM),
    (10, MIGRATE_ADD_CHALLENGES),
    (11, MIGRATE_ADD_NAME_BYTES),
];

/// Version 10 to 11 (SQLite's 11 to 12): the pending challenges, empty. Named for what it
/// does, so that it can be renumbered at a merge.
pub(crate) const MIGRATE_ADD_CHALLENGES: &str = pg_challenges_table!();

/// Version 9 to 10 (SQLite's 10 to 11): the outbox's claim column, empty. Named for what it
/// does, so that it can be renumbered at a merge.
pub(crate) const MIGRATE_ADD_PUSH_CLAIM: &str = pg_push_claim_column!();

/// Version 11 to 12: the names in byte order, for the search by name. Named for what it
/// does, so that it can be renumbered at a merge.
pub(crate) const MIGRATE_ADD_NAME_BYTES: &str = pg_name_bytes_index!();

/// Version 8 to 9 (SQLite's 9 to 10): push approval's tables, empty. Named for what it
/// does, so that it can be renumbered at a merge.
pub(crate) const MIGRATE_ADD_PUSH: &str = pg_push_tables!();

/// Version 7 to 8 (SQLite's 8 to 9): the look-alike keys, empty until the name check fills
/// them.
pub(crate) const MIGRATE_V7_V8: &str = pg_name_key_column!();

/// Version 6 to 7 (SQLite's 7 to 8): the index of the names that never enrolled.
pub(crate) const MIGRATE_V6_V7: &str = pg_unenrolled_index!();

/// The advisory lock key that serialises schema creation and upgrades (two nodes starting
/// at once on an empty database). Any constant outside the user-name key space works; user
/// keys come from SHA-256, so a collision is as likely as with any other name.
pub(crate) const SCHEMA_LOCK: i64 = 0x6d66_615f_7363_6865; // "mfa_sche"

impl PgStore {
    /// Creates or upgrades the schema in one transaction, under an advisory lock so two
    /// nodes starting at once do it once; refuses a newer or unknown version.
    pub(crate) fn migrate(&self, client: &mut Client, mode: OpenMode) -> Result<(), StoreError> {
        let r: Result<(), PgError> = (|| {
            let mut tx = client.transaction().ctx("starting the schema check")?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
                .ctx("locking the schema")?;
            let has_version: bool = tx
                .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
                .ctx("reading the schema version")?
                .try_get(0)
                .ctx("reading the schema version")?;
            let version: i64 = if has_version {
                let rows = tx
                    .query("SELECT version FROM schema_version", &[])
                    .ctx("reading the schema version")?;
                match rows.as_slice() {
                    [one] => one.try_get(0).ctx("reading the schema version")?,
                    _ => {
                        return Err(PgError::Store(StoreError::Schema(SchemaError::Unknown {
                            found: -1,
                        })));
                    }
                }
            } else {
                let users: bool = tx
                    .query_one("SELECT to_regclass('users') IS NOT NULL", &[])
                    .ctx("reading the schema")?
                    .try_get(0)
                    .ctx("reading the schema")?;
                if users {
                    return Err(PgError::Store(StoreError::Engine {
                        context: format!("the PostgreSQL database {}", self.target),
                        source: "has a `users` table but no schema_version: it is not an mfa store (or a damaged one); nothing was changed".into(),
                    }));
                }
                0
            };
            match version {
                SCHEMA_VERSION => return Ok(()),
                0 if mode == OpenMode::Existing => {
                    return Err(PgError::Store(StoreError::Engine {
                        context: format!("the PostgreSQL store {}", self.target),
                        source: "holds no mfa schema yet; create it with `mfactl init` (or enrol a user with mfactl)".into(),
                    }));
                }
                0 => {
                    tx.batch_execute(SCHEMA).ctx("creating the schema")?;
                    tx.execute(
                        "INSERT INTO schema_version (version) VALUES ($1)",
                        &[&SCHEMA_VERSION],
                    )
                    .ctx("creating the schema")?;
                }
                v if v > SCHEMA_VERSION => {
                    return Err(PgError::Store(StoreError::Schema(SchemaError::Newer {
                        found: v,
                        known: SCHEMA_VERSION,
                    })));
                }
                v => {
                    let mut at = v;
                    for (from, sql) in MIGRATIONS {
                        if *from == at {
                            tx.batch_execute(sql).ctx("upgrading the schema")?;
                            at += 1;
                        }
                    }
                    if at != SCHEMA_VERSION {
                        return Err(PgError::Store(StoreError::Schema(SchemaError::Unknown {
                            found: v,
                        })));
                    }
                    tx.execute("UPDATE schema_version SET version = $1", &[&SCHEMA_VERSION])
                        .ctx("upgrading the schema")?;
                }
            }
            tx.commit().ctx("committing the schema")?;
            Ok(())
        })();
        r.map_err(|f| self.classify(f))
    }
}
