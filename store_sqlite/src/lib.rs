//! The embedded store: one SQLite database in WAL mode shared by the PAM module, the daemon
//! and `mfactl`. Writes take the database lock up front (`BEGIN IMMEDIATE`), so a
//! read-then-write never races another process's write.
//!
//! One file per concern: `schema` (tables and upgrades), `conn` (files, connections, the
//! pool), `rows` (records to rows and back), `tx` (write transactions and the store key),
//! `names` (name upkeep), `push` (push approval's rows), `challenge` (pending RADIUS challenges), `store` (the `Store` trait), `group_commit` (deferred commits and
//! checkpoints), `light` (commits of decisions that consume nothing), `wake` (the push
//! wake-up socket), `error`.
#![forbid(unsafe_code)]

mod error;
#[macro_use]
mod schema;
mod challenge;
mod conn;
mod group_commit;
mod light;
mod names;
mod push;
mod rows;
mod store;
mod tx;
mod wake;

#[cfg(test)]
mod tests;

pub use conn::SqliteStore;
pub use wake::socket_path as push_wake_socket;
