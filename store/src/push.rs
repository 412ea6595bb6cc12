//! What an engine offers push approval: the push rows of one user inside that user's write
//! transaction ([`PushTx`], [`crate::Store::transact_push`]), and the reads the portal and the
//! waiting front ends make outside any.
//!
//! The rules (one pending request per user and service, the per-user rate, a request
//! decided once and only while pending and unexpired, the block after "This wasn't me", a
//! login using an approval once) are the core's, applied inside that transaction: the user's
//! lock (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's advisory lock on the name) serialises every
//! push transaction of one user across processes and nodes, so each rule holds without a
//! rule in any engine. The engines add one guard of their own: a unique index allows one
//! `pending` row per user and service.

use mfa_model::{AuditEvent, DeviceId, PushDevice, PushId, PushRequest, UserRecord};

use crate::StoreError;

/// The `meta` key the portal's heartbeat is kept under (Unix seconds, decimal).
pub const META_PORTAL_ALIVE: &str = "portal_alive";

/// The PostgreSQL notification channel a new request is announced on (its id in hex as the
/// payload), at the commit of the transaction that wrote it.
pub const PUSH_CHANNEL: &str = "mfa_push";

/// How often an engine without notifications lets the portal look at the outbox again
/// ([`crate::Store::wait_for_push`] on SQLite).
pub const PUSH_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// The push rows of the one user whose write transaction this is ([`crate::Store::transact_push`]).
/// Writes name that user only: a request or device of another user is refused as a bug.
pub trait PushTx {
    /// The request `id`, of any user (the caller checks whose it is).
    fn request(&mut self, id: &PushId) -> Result<Option<PushRequest>, StoreError>;
    /// The user's requests created at or after `since`, and those still stored as pending
    /// whenever made, oldest first.
    fn requests(&mut self, since: i64) -> Result<Vec<PushRequest>, StoreError>;
    /// Stores a new request; an id stored already, or a second pending request of the user
    /// for the same service, is an error. PostgreSQL announces it on [`PUSH_CHANNEL`] at the
    /// commit.
    fn insert_request(&mut self, r: &PushRequest) -> Result<(), StoreError>;
    /// Stores `r` over the stored request of its id (which must exist).
    fn update_request(&mut self, r: &PushRequest) -> Result<(), StoreError>;
    /// Deletes the user's requests created before `before` that are not pending; returns
    /// how many.
    fn forget_requests(&mut self, before: i64) -> Result<usize, StoreError>;
    /// The user's devices, oldest first.
    fn devices(&mut self) -> Result<Vec<PushDevice>, StoreError>;
    /// Stores `d`, new or over the stored device of its id. Its subscription must be sealed
    /// under the store's key ([`StoreError::KeyChanged`] otherwise, as for a seed).
    fn put_device(&mut self, d: &PushDevice) -> Result<(), StoreError>;
    /// Records that the device `id` of the user was last used at `at` (a decision), changing
    /// nothing else of it (its sealed subscription is not written, so no store key is
    /// checked); says whether there was one.
    fn touch_device(&mut self, id: &DeviceId, at: i64) -> Result<bool, StoreError>;
    /// Removes the device `id` of the user; says whether there was one.
    fn remove_device(&mut self, id: &DeviceId) -> Result<bool, StoreError>;
    /// Until when pushes to the user are blocked ("This wasn't me"), as stored.
    fn block(&mut self) -> Result<Option<i64>, StoreError>;
    /// Blocks pushes to the user until `until`, or lifts the block (`None`).
    fn set_block(&mut self, until: Option<i64>) -> Result<(), StoreError>;
}

/// See [`crate::Store::transact_push`]: the user's record (`None` where absent; it may be
/// created or changed, as in [`crate::TxFn`]) and the user's push rows. Run again after a
/// conflict, like a [`crate::TxFn`]: everything from what it reads.
pub type PushFn<'a> =
    dyn FnMut(&mut Option<UserRecord>, &mut dyn PushTx) -> Result<Vec<AuditEvent>, StoreError> + 'a;
