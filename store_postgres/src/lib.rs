//! The scale-out store: one PostgreSQL database shared by several RADIUS servers and hosts.
//!
//! The client is the `postgres` crate: the synchronous face of `tokio-postgres`, the
//! maintained native client of the Rust ecosystem. The `Store` trait is synchronous (the
//! PAM module and `mfactl` have no async runtime, the daemon calls the store from its own
//! writer and reader threads), so the blocking client fits it without a runtime of ours.
//! TLS is rustls (`tokio-postgres-rustls`), with the CA from `[store] ca_file`.
//!
//! Locking: a transaction first takes a transaction-scoped advisory lock per user name
//! (`pg_advisory_xact_lock`, keys sorted), then reads the rows that exist with `SELECT ...
//! FOR UPDATE`. The advisory lock is what makes the not-yet-existing user safe: a row that
//! does not exist cannot be locked, but its name can, so two nodes creating (or enrolling,
//! or spending a one-time code of) the same user are serialised like any other two
//! transactions on it. READ COMMITTED takes a fresh snapshot per statement, so the rows read
//! once the lock is held are the last committed ones. Deadlocks (a 64-bit key collision, or
//! a prune racing a batch), serialization failures and unique violations roll back and re-run
//! the transaction function a bounded number of times (`TxFn` allows it).
//!
//! Durability: every transaction commits with PostgreSQL's own durability (its WAL and
//! `synchronous_commit`). There is no `GroupCommit` here: the daemon's writer
//! already gathers concurrent requests into one transaction per batch, and one commit per
//! batch is what group commit buys on SQLite (docs/BENCHMARKS.md has the figures).
//!
//! Connections: a small pool of idle clients; a broken one is dropped and the next call
//! connects again, so a database that was restarted is used again without restarting the
//! daemon, and while it is down every call fails (every login is refused).
//!
//! The schema is [`SCHEMA`], the one place to mirror a change of the SQLite schema; its
//! version is [`SCHEMA_VERSION`] (PostgreSQL's own numbering: the two engines' layouts
//! were merged at different points), kept in the one-row table `schema_version`; upgrades
//! go in `schema::MIGRATIONS`.
//!
//! The store key: `store_key` holds the id of the key the seeds are sealed under, as on
//! SQLite. Every transaction that writes a changed seed takes `store_key` in SHARE mode and
//! checks the seed against it; `Store::reseal` takes `users` and then `store_key` in
//! EXCLUSIVE mode, so a seed is never written under a key the store no longer names. Every
//! path takes `users` before `store_key`, so the two never deadlock.
//!
//! Push approval: requests, devices and blocks in their own tables, written in the user's
//! transaction (after its advisory lock, so the core's push rules hold across nodes); a new
//! request is announced with `NOTIFY mfa_push` at its commit, which the portal LISTENs for on
//! a connection of its own (`push`).
//!
//! One file per concern: `schema`, `pool` (connections), `tls`, `rows`, `tx` (transactions,
//! locks, retries), `names`, `push` (push approval's rows and the listener), `challenge` (pending RADIUS challenges), `store` (the
//! `Store` trait), `error`.
#![forbid(unsafe_code)]

mod challenge;
mod error;
#[macro_use]
mod schema;
mod names;
mod pool;
mod push;
mod rows;
mod store;
mod tls;
mod tx;

pub use pool::PgStore;
pub use schema::{SCHEMA, SCHEMA_VERSION};
