//! The user store: the trait every engine implements and its errors. The engines are crates
//! of their own (`mfa-store-sqlite`, `mfa-store-postgres`); `mfa-store-open` picks one from
//! the configuration.
//!
//! The trait is deliberately small: read a user, list users, and run a function over a set of
//! users' records inside one write transaction. All logic (code checks, replay, lockout,
//! enrolment) lives in that function, so a second engine (PostgreSQL) needs only row locks
//! and the same closure. Rows are checked and turned into records in [`rows`], once for all
//! engines; an engine only moves column values.

#![forbid(unsafe_code)]

pub mod challenge;
pub mod push;
pub mod rows;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;
use std::path::PathBuf;

use mfa_model::{
    AuditEvent, DeviceId, Invite, KeyId, PushDevice, PushId, PushRequest, Refusal, SealedBlob,
    SealedSecret, SecretError, UserName, UserRecord,
};

pub use challenge::{ChallengeLimits, ChallengeRow};
pub use push::{PushFn, PushTx};

/// How an engine treats a store that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the database (and its directory, 0700) if missing: `mfactl`, the daemon.
    Create,
    /// Fail if missing: the PAM module, which must fail closed rather than start afresh.
    Existing,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The database does not exist (and the caller asked not to create it).
    Missing { path: PathBuf },
    /// A file of the store cannot be looked at by this user, or anyone but root (or the
    /// caller) could change it (see `mfa_config::files`).
    File(mfa_config::files::FileProblem),
    /// Another process held the database for longer than the busy timeout.
    Busy { source: BoxError },
    /// The database file is damaged or is not a database.
    Corrupt { source: BoxError },
    /// A file of the store could not be created, opened or synced.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The store's key was changed by another process since this one opened it (`mfactl
    /// rekey`), or a seed under another key was about to be written; nothing was changed.
    KeyChanged { context: String },
    /// Any other failure of the engine; `context` says what was being done.
    Engine { context: String, source: BoxError },
    /// A stored row does not make sense; names the user and the column.
    BadRow {
        user: String,
        column: &'static str,
        problem: String,
    },
    /// The database has a schema this program cannot use.
    Schema(SchemaError),
    /// The transaction's function stopped it; nothing was written.
    Aborted(Abort),
    /// [`Store::import_all`] into a store that already holds rows; nothing was written.
    NotEmpty {
        store: String,
        users: i64,
        audit: i64,
    },
    /// The engine cannot do what was asked (e.g. [`Store::import_all`]).
    Unsupported(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaError {
    /// Written by a newer version of the program.
    Newer {
        found: i64,
        known: i64,
    },
    Unknown {
        found: i64,
    },
    /// The upgrade would leave rows without their user; nothing was changed.
    Orphans {
        from: i64,
        rows: i64,
    },
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaError::Newer { found, known } => write!(
                f,
                "the database has schema version {found}, newer than this program knows ({known}); upgrade the program"
            ),
            SchemaError::Unknown { found } => write!(f, "unknown schema version {found}"),
            SchemaError::Orphans { from, rows } => write!(
                f,
                "upgrading the schema from version {from} would leave {rows} row(s) without their user; nothing was changed"
            ),
        }
    }
}

/// Why a transaction function stopped its transaction.
#[derive(Debug)]
#[non_exhaustive]
pub enum Abort {
    /// A business refusal (already enrolled, no such user).
    Refused(Refusal),
    /// A stored seed could not be opened.
    Secret(SecretError),
    /// An invariant of the program itself broke: a bug, never the user's doing.
    Bug(&'static str),
}

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Abort::Refused(r) => write!(f, "{r}"),
            Abort::Secret(e) => write!(f, "a stored key cannot be used: {e}"),
            Abort::Bug(e) => write!(f, "internal error: {e}"),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Missing { path } => write!(
                f,
                "the store {} does not exist; create it with `mfactl init` (or enrol a user with mfactl)",
                path.display()
            ),
            StoreError::File(p) => write!(f, "{p}"),
            StoreError::Busy { source } => write!(
                f,
                "store busy: another process held it past the busy timeout ({source})"
            ),
            StoreError::Corrupt { source } => write!(f, "store damaged: {source}"),
            StoreError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            StoreError::Engine { context, source } => {
                write!(f, "store error: {context}: {source}")
            }
            StoreError::BadRow {
                user,
                column,
                problem,
            } => write!(
                f,
                "stored record of user {user:?} is damaged: column {column}: {problem}"
            ),
            StoreError::Schema(e) => write!(f, "store schema: {e}"),
            StoreError::KeyChanged { context } => write!(
                f,
                "{context}: the store's key file was changed (mfactl rekey) since this process opened it; nothing was changed, try again"
            ),
            StoreError::Aborted(a) => write!(f, "{a}"),
            StoreError::NotEmpty {
                store,
                users,
                audit,
            } => write!(
                f,
                "the store {store} is not empty ({users} user(s), {audit} audit event(s)): a copy goes only into an empty store; nothing was changed"
            ),
            StoreError::Unsupported(what) => write!(f, "this store engine cannot {what}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Busy { source }
            | StoreError::Corrupt { source }
            | StoreError::Engine { source, .. } => Some(source.as_ref()),
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What [`Store::reseal`] does to one stored seed: open it and seal it again.
pub type ResealFn<'a> = dyn FnMut(&UserName, &SealedSecret) -> Result<SealedSecret, Abort> + 'a;

/// What [`Store::reseal`] does to one stored push subscription (of the user's device): open
/// it and seal it again.
pub type ResealBlobFn<'a> =
    dyn FnMut(&UserName, &DeviceId, &SealedBlob) -> Result<SealedBlob, Abort> + 'a;

/// What a transaction function sees: the named users' records (`None` where absent), in the
/// order named. It may create (`None` -> `Some`) or change records; deleting is not offered,
/// because history stays. It returns the audit events to write in the same transaction, or
/// an [`Abort`] that rolls everything back.
///
/// An engine may run the function more than once for one transaction (after a serialization
/// conflict with another server): it must compute everything from the records it is given
/// and keep no effect of an earlier run.
pub type TxFn<'a> = dyn FnMut(&mut [Option<UserRecord>]) -> Result<Vec<AuditEvent>, Abort> + 'a;

/// What a replicated engine says of the database server its connections go to: the host in
/// use, whether it is a primary, and its standbys as it sees them (`mfactl status`,
/// mfa-radiusd's metrics; docs/FAILOVER.md). Read on demand, never on the login path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreHealth {
    /// `host:port` of the server answering (the first of a multi-host URL that took the
    /// connection).
    pub server: String,
    /// Not in recovery (PostgreSQL's `pg_is_in_recovery()` is false): it takes writes.
    pub primary: bool,
    /// The standbys streaming from it (a primary's `pg_stat_replication`).
    pub standbys: Vec<StandbyHealth>,
    /// Whether the role may read the standbys' state (a superuser or `pg_monitor`); when
    /// not, `standbys` lists names only.
    pub standbys_readable: bool,
}

/// One standby as its primary sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StandbyHealth {
    /// Its `application_name` (the name in `synchronous_standby_names`).
    pub name: String,
    /// `sync`, `quorum`, `potential` or `async`; empty when unreadable.
    pub sync_state: String,
    /// Time from a commit on the primary to its replay on the standby, when known.
    pub replay_lag_seconds: Option<f64>,
    /// WAL bytes the standby has not replayed yet, when known.
    pub lag_bytes: Option<f64>,
}

/// One page of a search by name ([`Store::user_page`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPage {
    /// The names start with this (as stored; empty: every name).
    pub prefix: String,
    /// The page begins after this name (the last of the page before); `None`: the first.
    pub after: Option<String>,
    /// At most this many records, and never more than [`USER_PAGE_MAX`].
    pub limit: usize,
}

/// The most records one [`Store::user_page`] returns.
pub const USER_PAGE_MAX: usize = 1000;

/// Audit query.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub user: Option<String>,
    pub since: Option<i64>,
    pub limit: Option<usize>,
}

pub trait Store: Send + Sync {
    fn user(&self, name: &UserName) -> Result<Option<UserRecord>, StoreError>;
    /// Every record, sorted by name, one at a time from one consistent read, so `mfactl
    /// report` over a million users holds one record, not a million. An error from `f`
    /// stops the read and is returned.
    fn each_user(&self, f: &mut UserFn<'_>) -> Result<(), StoreError>;
    /// [`Store::each_user`], collected.
    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let mut all = Vec::new();
        self.each_user(&mut |u| {
            all.push(u);
            Ok(())
        })?;
        Ok(all)
    }
    /// The records whose names start with `q.prefix`, after `q.after`, in byte order of the
    /// names (SQLite's, and PostgreSQL's `COLLATE "C"` whatever the database's collation),
    /// at most `q.limit` (and [`USER_PAGE_MAX`]): one page of the administrator's search,
    /// read through the index of the names, so a page costs the same among a million users
    /// as among ten. The next page starts after the last name of this one.
    fn user_page(&self, q: &UserPage) -> Result<Vec<UserRecord>, StoreError>;
    /// Runs `f` over the records of `names` (distinct, sorted: see [`Store::transact`]) in
    /// one write transaction, with those users' rows locked in that order.
    fn transact_sorted(&self, names: &[&UserName], f: &mut TxFn<'_>) -> Result<(), StoreError>;
    /// Audit events that belong to no stored user change (e.g. a refused password).
    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;
    /// Deletes audit events before `before`; returns how many.
    fn prune_audit(&self, before: i64) -> Result<usize, StoreError>;
    /// Deletes the records of users who never enrolled, never got in, hold no one-time code
    /// and first appeared before `before`: names that only ever showed up. Returns how many.
    fn prune_unenrolled(&self, before: i64) -> Result<usize, StoreError>;
    /// Group commit, where the engine offers it (SQLite); `None` means every transaction is
    /// durable when [`Store::transact`] returns, and the caller needs nothing more.
    fn group_commit(&self) -> Option<&dyn GroupCommit> {
        None
    }
    /// The id of the key the stored seeds are sealed under; `None` for a store that never
    /// had one (its seeds, if any, are in the clear form).
    fn store_key_id(&self) -> Result<Option<KeyId>, StoreError>;
    /// In one write transaction: checks that the store's key id is still `expect`, replaces
    /// every stored seed by what `f` makes of it and every stored push subscription by what
    /// `blobs` makes of it (each must be sealed under `new`), records `new` as the store's
    /// key id and appends `events`. All or nothing; returns how many seeds. The first
    /// sealing of a clear store (`expect` = `None`) and `mfactl rekey`.
    fn reseal(
        &self,
        expect: Option<KeyId>,
        new: KeyId,
        f: &mut ResealFn<'_>,
        blobs: &mut ResealBlobFn<'_>,
        events: &[AuditEvent],
    ) -> Result<usize, StoreError>;

    /// The user-name rules the stored names were last checked against, as
    /// [`NameTx::set_names_checked`] wrote them; `None` if never. One small read: the PAM
    /// module asks it at every login.
    fn names_checked(&self) -> Result<Option<String>, StoreError>;
    /// Every stored user name, as stored, sorted (a read, no write lock), one at a time:
    /// the daemon and `mfactl` check a million names at start without holding them.
    fn each_user_name(&self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError>;
    /// [`Store::each_user_name`], collected.
    fn user_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        self.each_user_name(&mut |n| names.push(n.to_string()))?;
        Ok(names)
    }
    /// The stored names whose look-alike key (`mfa_model::lookalike_key`, kept beside each
    /// name and indexed) is `key`, and those whose key is not known (a row written behind
    /// the product's back, or a store just upgraded before its name check fills them in),
    /// sorted: one indexed read, so that a name can be checked against the names that look
    /// like it at every login, and a row without a key is never missed. The caller checks
    /// the keys of what it gets.
    fn names_with_key(&self, key: &str) -> Result<Vec<String>, StoreError>;
    /// Name upkeep (the core's name check, merging and removing users): `f` runs in one
    /// write transaction and may read, store and remove records by their stored names.
    /// `Some(events)` commits with those audit events; `None` writes nothing.
    fn maintain_names(&self, f: &mut NamesFn<'_>) -> Result<(), StoreError>;
    /// Fills an empty store with `users` (their codes and address counters included),
    /// `audit` (in that order) and the store-wide `facts`, row for row, in one transaction:
    /// `mfactl migrate`. The copy records the source's key id, so it opens with the same key
    /// file, and every seed is checked against it as any written seed is (a seed under
    /// another key refuses the whole copy with [`StoreError::KeyChanged`]). A store that
    /// holds any user or audit row is refused with [`StoreError::NotEmpty`] and nothing is
    /// written. The source is read with [`Store::users`], [`Store::audit`],
    /// [`Store::store_key_id`] and [`Store::names_checked`]. An engine that cannot refuses
    /// ([`StoreError::Unsupported`]).
    fn import_all(
        &self,
        users: &[UserRecord],
        audit: &[AuditEvent],
        facts: &StoreFacts,
    ) -> Result<(), StoreError> {
        let _ = (users, audit, facts);
        Err(StoreError::Unsupported("take a copy of another store"))
    }

    /// Stores new invites (`mfactl invite`) and their audit events in one write
    /// transaction, all or nothing. An engine without invites refuses (the default), so the
    /// portal fails closed on it.
    fn put_invites(&self, invites: &[Invite], events: &[AuditEvent]) -> Result<(), StoreError> {
        let _ = (invites, events);
        Err(no_invites())
    }
    /// The invite whose token hashes to `hash`, used or not.
    fn invite(&self, hash: &[u8; 32]) -> Result<Option<Invite>, StoreError> {
        let _ = hash;
        Err(no_invites())
    }
    /// Every stored invite, newest first.
    fn invites(&self) -> Result<Vec<Invite>, StoreError> {
        Err(no_invites())
    }
    /// The invites of `user`, newest first: one indexed read (the console's page of a user
    /// among a million invites).
    fn invites_of(&self, user: &UserName) -> Result<Vec<Invite>, StoreError> {
        Ok(self
            .invites()?
            .into_iter()
            .filter(|i| i.user == user.as_str())
            .collect())
    }
    /// Uses the invite up at `now`, in one write transaction with `events`, if it is still
    /// usable then (not used, not expired); says whether it was. A used or expired invite
    /// stays as it is and nothing is written.
    fn use_invite(
        &self,
        hash: &[u8; 32],
        now: i64,
        events: &[AuditEvent],
    ) -> Result<bool, StoreError> {
        let _ = (hash, now, events);
        Err(no_invites())
    }

    /// [`Store::transact`] that also uses up an invite in the same write transaction: the
    /// invite whose token hashes to `hash` is marked used at `now` if it is still usable then
    /// (not used, not expired), and `f` runs; otherwise `f` does not run, nothing is written
    /// and the answer is `false`. An abort of `f` or any failure leaves the invite as it
    /// was, so a used invite without the key it was used for, or a stored key beside a
    /// still-usable invite, never exists, not even after a crash; two uses of one invite
    /// are serialised and the second sees it used. An engine without invites refuses.
    fn transact_with_invite(
        &self,
        hash: &[u8; 32],
        now: i64,
        names: &[&UserName],
        f: &mut TxFn<'_>,
    ) -> Result<bool, StoreError> {
        let _ = (hash, now, names, f);
        Err(no_invites())
    }

    /// [`Store::transact`] of one user with that user's push rows at hand ([`PushTx`]): `f`
    /// gets the record and the rows in one write transaction, the user's lock held, so the
    /// core's push rules hold across processes and nodes (see [`push`]). A changed record is
    /// saved (and voids invites and push devices as in `transact`), the events appended;
    /// an error from `f` rolls everything back. An engine without push refuses (the
    /// default), so every push fails closed on it.
    fn transact_push(&self, user: &UserName, f: &mut PushFn<'_>) -> Result<(), StoreError> {
        let _ = (user, f);
        Err(no_push())
    }
    /// [`Store::transact_push`] for push writes that may consume nothing an attacker could
    /// replay (a new request, a delivery report, an approval: ARCHITECTURE.md, *Durability*),
    /// with the meaning of [`Store::transact_light`]'s `expect_light` and `light`: where
    /// `light()` says so after `f` ran, the commit need not wait for the disk (or the
    /// synchronous standby); otherwise it is durable when this returns. The default is
    /// [`Store::transact_push`]: always durable.
    fn transact_push_light(
        &self,
        user: &UserName,
        f: &mut PushFn<'_>,
        expect_light: bool,
        light: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        let _ = (expect_light, light);
        self.transact_push(user, f)
    }
    /// The request `id`, whatever its state.
    fn push_request(&self, id: &PushId) -> Result<Option<PushRequest>, StoreError> {
        let _ = id;
        Err(no_push())
    }
    /// The requests of `user` created at or after `since`, and those still stored as
    /// pending, oldest first.
    fn push_requests(&self, user: &UserName, since: i64) -> Result<Vec<PushRequest>, StoreError> {
        let _ = (user, since);
        Err(no_push())
    }
    /// Takes from the outbox up to `limit` requests that are pending, not sent yet, not
    /// expired at `now` and not taken by another sender until after `now`; marks them taken
    /// until `until` and returns them, oldest first. In one statement, so that two portals
    /// reading one store at the same moment never take the same request (the user would get
    /// two notifications of one sign-in); a portal that dies with requests taken leaves them
    /// to the others once `until` has passed.
    fn claim_push_outbox(
        &self,
        now: i64,
        limit: usize,
        until: i64,
    ) -> Result<Vec<PushRequest>, StoreError> {
        let _ = (now, limit, until);
        Err(no_push())
    }
    /// The devices of `user`, oldest first.
    fn push_devices(&self, user: &UserName) -> Result<Vec<PushDevice>, StoreError> {
        let _ = user;
        Err(no_push())
    }
    /// The device `id`, whoever's it is.
    fn push_device(&self, id: &DeviceId) -> Result<Option<PushDevice>, StoreError> {
        let _ = id;
        Err(no_push())
    }
    /// Until when pushes to `user` are blocked, as stored (it may be past).
    fn push_block(&self, user: &UserName) -> Result<Option<i64>, StoreError> {
        let _ = user;
        Err(no_push())
    }
    /// Records that a portal is alive at `now` (`meta`, [`push::META_PORTAL_ALIVE`]).
    fn set_push_heartbeat(&self, now: i64) -> Result<(), StoreError> {
        let _ = now;
        Err(no_push())
    }
    /// The last heartbeat any portal wrote.
    fn push_heartbeat(&self) -> Result<Option<i64>, StoreError> {
        Err(no_push())
    }
    /// Returns once a new request may be in the outbox, or after about `timeout`: when one
    /// is announced (PostgreSQL: [`push::PUSH_CHANNEL`]; SQLite: a datagram on the wake-up
    /// socket beside the database), and on an engine that cannot be woken after a short poll
    /// interval ([`push::PUSH_POLL`]). A wake-up may be spurious; the caller reads the
    /// outbox whatever it says, and `timeout` is its fallback poll for a lost one.
    fn wait_for_push(&self, timeout: std::time::Duration) -> Result<(), StoreError> {
        std::thread::sleep(timeout.min(push::PUSH_POLL));
        Ok(())
    }
    /// Deletes every request created before `before` that is not pending; returns how many.
    fn prune_push(&self, before: i64) -> Result<usize, StoreError> {
        let _ = before;
        Err(no_push())
    }

    /// The database server in use and its replication ([`StoreHealth`]); `None` for an
    /// engine with no server (SQLite).
    fn health(&self) -> Option<Result<StoreHealth, StoreError>> {
        None
    }

    /// Stores a pending challenge (see [`challenge`]) in one write transaction that first
    /// deletes every expired one (at `row.created`), then, where the same user already has
    /// `limits.per_user` live ones from the same client and host, the oldest of them, and
    /// then counts the live ones: past `limits.total`, the client's `per_client` or the
    /// host's `per_host`, nothing is stored and the answer is `false`. The count and the
    /// insert are serialised across processes and nodes, so the caps hold for all of them.
    /// A `state_hash` stored already is an error.
    fn put_challenge(
        &self,
        row: &ChallengeRow,
        limits: &ChallengeLimits,
    ) -> Result<bool, StoreError> {
        let _ = (row, limits);
        Err(challenge::no_challenges())
    }
    /// Deletes the challenge whose State hashes to `state_hash` and returns it, expired or
    /// not (the caller judges), in one statement: of any number of callers on any nodes,
    /// one gets the row and the others `None`.
    fn take_challenge(&self, state_hash: &[u8; 32]) -> Result<Option<ChallengeRow>, StoreError> {
        let _ = state_hash;
        Err(challenge::no_challenges())
    }
    /// Deletes the challenges expired at `now` (Unix milliseconds); returns how many.
    fn prune_challenges(&self, now: i64) -> Result<usize, StoreError> {
        let _ = now;
        Err(challenge::no_challenges())
    }
    /// How many challenges are live at `now` (Unix milliseconds), all clients together.
    fn live_challenges(&self, now: i64) -> Result<usize, StoreError> {
        let _ = now;
        Err(challenge::no_challenges())
    }

    /// Runs `f` over the records of `names`, in the order named, in one write transaction:
    /// either everything `f` changed and every event it returned is stored, or nothing is.
    /// A record whose key changed (`mfa_changed` moved) voids that user's unused invites and
    /// removes the user's push devices in the same transaction ([`rows::voids_invites`]).
    /// Rows are locked in sorted order whatever the order named, so two servers never
    /// deadlock. A name may appear more than once: each place gets its own copy, and the
    /// last place's is the one kept.
    fn transact(&self, names: &[&UserName], f: &mut TxFn<'_>) -> Result<(), StoreError> {
        let order = LockOrder::new(names);
        order.run(|sorted, g| self.transact_sorted(sorted, g), f)
    }

    /// [`Store::transact`] for decisions that may consume nothing an attacker could replay
    /// (a trusted-network allow, an exempt user: ARCHITECTURE.md, *Durability*). After `f`
    /// ran, `light()` says whether the transaction's writes are only statistics and audit
    /// rows; then the engine may commit without waiting for the disk (or the synchronous
    /// standby), and the writes become durable within the engine's documented window.
    /// Otherwise it is durable when this returns, exactly as [`Store::transact`].
    /// `expect_light` is the caller's guess before the transaction (a read decided the
    /// request without a code): an engine that must fix a transaction's durability before it
    /// begins (SQLite) relaxes only then, and syncs after its commit where the guess was
    /// wrong. The default is [`Store::transact`]: always durable.
    fn transact_light(
        &self,
        names: &[&UserName],
        f: &mut TxFn<'_>,
        expect_light: bool,
        light: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        let _ = (expect_light, light);
        self.transact(names, f)
    }
}

/// The store-wide facts [`Store::import_all`] copies besides the rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreFacts {
    /// [`Store::store_key_id`]: the key every seed of the copy is sealed under.
    pub key_id: Option<KeyId>,
    /// [`Store::names_checked`]: the rules the copied names were last checked against.
    pub names_checked: Option<String>,
}

fn no_push() -> StoreError {
    StoreError::Engine {
        context: "push approval".into(),
        source: "this store engine does not keep sign-in requests".into(),
    }
}

fn no_invites() -> StoreError {
    StoreError::Engine {
        context: "enrolment invites".into(),
        source: "this store engine does not keep invites".into(),
    }
}

/// What [`Store::maintain_names`] gives its function: the open write transaction, by stored
/// name (which may not be canonical: that is what it is for).
pub trait NameTx {
    /// Every stored user name, as stored, sorted, one at a time.
    fn each_name(&mut self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError>;
    fn names_checked(&mut self) -> Result<Option<String>, StoreError>;
    fn load(&mut self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Removes a record and its one-time codes; the audit trail stays. Says whether there
    /// was one.
    fn remove(&mut self, name: &str) -> Result<bool, StoreError>;
    /// Stores `rec` under its name, replacing any record of that name.
    fn put(&mut self, rec: &UserRecord) -> Result<(), StoreError>;
    /// Records the rules the names now satisfy (see [`Store::names_checked`]).
    fn set_names_checked(&mut self, rules: &str) -> Result<(), StoreError>;
    /// [`Store::names_with_key`] in this transaction.
    fn names_with_key(&mut self, key: &str) -> Result<Vec<String>, StoreError>;
    /// Up to `limit` stored names without a look-alike key, sorted: the rows of a store
    /// upgraded to the version that keeps the key, or after [`NameTx::forget_name_keys`].
    fn names_without_key(&mut self, limit: usize) -> Result<Vec<String>, StoreError>;
    fn set_name_key(&mut self, name: &str, key: &str) -> Result<(), StoreError>;
    /// Empties every stored look-alike key, to be computed again (the tables behind
    /// `mfa_model::lookalike_key` changed).
    fn forget_name_keys(&mut self) -> Result<(), StoreError>;
}

/// See [`Store::each_user`].
pub type UserFn<'a> = dyn FnMut(UserRecord) -> Result<(), StoreError> + 'a;

/// See [`Store::maintain_names`].
pub type NamesFn<'a> =
    dyn FnMut(&mut dyn NameTx) -> Result<Option<Vec<AuditEvent>>, StoreError> + 'a;

/// The capability behind a busy RADIUS server's group commit: commit without waiting for
/// the disk, make many commits durable with one sync, and keep the log bounded beside the
/// writer. Only the daemon's single writer uses it.
pub trait GroupCommit: Send + Sync {
    /// [`Store::transact`], committed without waiting for the disk: visible to every
    /// reader at once, durable only once a later [`GroupCommit::sync`] returns. The
    /// caller must acknowledge nothing before that.
    fn transact_deferred(&self, names: &[&UserName], f: &mut TxFn<'_>) -> Result<(), StoreError>;
    /// Makes every transaction committed so far durable.
    fn sync(&self) -> Result<(), StoreError>;
    /// Housekeeping beside the writer, never blocking it (SQLite: copy the WAL back into
    /// the database). Returns true when the writer should call
    /// [`GroupCommit::writer_housekeeping`] between two transactions.
    fn housekeeping(&self) -> Result<bool, StoreError>;
    /// Housekeeping on the writer's own connection between two of its transactions (SQLite:
    /// finish the copy so the log starts over).
    fn writer_housekeeping(&self) -> Result<(), StoreError>;
}

/// Distinct names in sorted order, and where each of the caller's names sits in it.
pub struct LockOrder<'n> {
    sorted: Vec<&'n UserName>,
    index: Vec<usize>,
}

impl<'n> LockOrder<'n> {
    pub fn new(names: &[&'n UserName]) -> Self {
        let mut sorted: Vec<&UserName> = names.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let index = names
            .iter()
            .map(|n| sorted.binary_search(n).unwrap_or(0))
            .collect();
        Self { sorted, index }
    }

    /// Calls `engine` with the sorted names and a function that presents the records to
    /// `f` in the caller's order, then writes the changes back to the sorted slots.
    pub fn run(
        &self,
        engine: impl FnOnce(&[&UserName], &mut TxFn<'_>) -> Result<(), StoreError>,
        f: &mut TxFn<'_>,
    ) -> Result<(), StoreError> {
        let identity = self.index.iter().enumerate().all(|(i, &j)| i == j)
            && self.index.len() == self.sorted.len();
        if identity {
            return engine(&self.sorted, f);
        }
        engine(&self.sorted, &mut |recs| {
            let mut view: Vec<Option<UserRecord>> = self
                .index
                .iter()
                .map(|&j| recs.get(j).cloned().flatten())
                .collect();
            let events = f(&mut view)?;
            // A name named twice: the last place's record is the one kept.
            for (slot, &j) in view.into_iter().zip(&self.index) {
                if let Some(r) = recs.get_mut(j) {
                    *r = slot;
                }
            }
            Ok(events)
        })
    }
}

/// A URL for a message, without a password in it.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
