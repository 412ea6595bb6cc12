//! A store that forwards every call to another, except where a test makes it misbehave: the
//! one delegating fake the tests of the core and the daemon share, so a new method of the
//! [`Store`] trait is forwarded in one place, not in every test that wraps an engine.

use mfa_model::{
    AuditEvent, DeviceId, Invite, KeyId, PushDevice, PushId, PushRequest, UserName, UserRecord,
};

use crate::{
    AuditQuery, ChallengeLimits, ChallengeRow, GroupCommit, NamesFn, PushFn, ResealBlobFn,
    ResealFn, Store, StoreError, StoreFacts, TxFn, UserFn, UserPage,
};

/// Called around every [`GroupCommit::sync`] of a [`Delegate::with_sync_hook`]: with
/// `false` before it, with `true` after it succeeded.
pub type SyncHook = Box<dyn Fn(bool) + Send + Sync>;

/// Called after every committed push transaction of a [`Delegate::with_push_commit_hook`]:
/// `true` where it was durable when it returned ([`Store::transact_push`], or
/// [`Store::transact_push_light`] whose `light()` said no), `false` where it may wait for
/// the disk.
pub type PushCommitHook = Box<dyn Fn(bool) + Send + Sync>;

/// `inner`, with the faults a test asks for.
pub struct Delegate {
    inner: Box<dyn Store>,
    group_commit: bool,
    use_invite_fails: bool,
    sync_hook: Option<SyncHook>,
    push_commit_hook: Option<PushCommitHook>,
}

impl Delegate {
    /// Forwards everything to `inner`.
    pub fn new(inner: Box<dyn Store>) -> Self {
        Self {
            inner,
            group_commit: true,
            use_invite_fails: false,
            sync_hook: None,
            push_commit_hook: None,
        }
    }

    /// Runs `hook` after each committed push transaction (to see which wait for the disk).
    pub fn with_push_commit_hook(mut self, hook: PushCommitHook) -> Self {
        self.push_commit_hook = Some(hook);
        self
    }

    /// Runs `hook` around each group-commit sync (to hold the disk back, or count).
    pub fn with_sync_hook(mut self, hook: SyncHook) -> Self {
        self.sync_hook = Some(hook);
        self
    }

    /// Offers no group commit: an engine that has none.
    pub fn without_group_commit(mut self) -> Self {
        self.group_commit = false;
        self
    }

    /// A separate "use the invite" write fails, as a crash right after another commit would
    /// leave it ([`Store::use_invite`]; the invite used inside an enrolment's own transaction,
    /// [`Store::transact_with_invite`], still works).
    pub fn failing_use_invite(mut self) -> Self {
        self.use_invite_fails = true;
        self
    }
}

impl Store for Delegate {
    fn user(&self, name: &UserName) -> Result<Option<UserRecord>, StoreError> {
        self.inner.user(name)
    }
    fn each_user(&self, f: &mut UserFn<'_>) -> Result<(), StoreError> {
        self.inner.each_user(f)
    }
    fn user_page(&self, q: &UserPage) -> Result<Vec<UserRecord>, StoreError> {
        self.inner.user_page(q)
    }
    fn transact_sorted(&self, names: &[&UserName], f: &mut TxFn<'_>) -> Result<(), StoreError> {
        self.inner.transact_sorted(names, f)
    }
    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        self.inner.append_audit(events)
    }
    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.audit(q)
    }
    fn prune_audit(&self, before: i64) -> Result<usize, StoreError> {
        self.inner.prune_audit(before)
    }
    fn prune_unenrolled(&self, before: i64) -> Result<usize, StoreError> {
        self.inner.prune_unenrolled(before)
    }
    fn group_commit(&self) -> Option<&dyn GroupCommit> {
        if !self.group_commit {
            return None;
        }
        match self.sync_hook {
            Some(_) => self.inner.group_commit().map(|_| self as &dyn GroupCommit),
            None => self.inner.group_commit(),
        }
    }
    fn store_key_id(&self) -> Result<Option<KeyId>, StoreError> {
        self.inner.store_key_id()
    }
    fn reseal(
        &self,
        expect: Option<KeyId>,
        new: KeyId,
        f: &mut ResealFn<'_>,
        blobs: &mut ResealBlobFn<'_>,
        events: &[AuditEvent],
    ) -> Result<usize, StoreError> {
        self.inner.reseal(expect, new, f, blobs, events)
    }
    fn names_checked(&self) -> Result<Option<String>, StoreError> {
        self.inner.names_checked()
    }
    fn each_user_name(&self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
        self.inner.each_user_name(f)
    }
    fn names_with_key(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.inner.names_with_key(key)
    }
    fn maintain_names(&self, f: &mut NamesFn<'_>) -> Result<(), StoreError> {
        self.inner.maintain_names(f)
    }
    fn import_all(
        &self,
        users: &[UserRecord],
        audit: &[AuditEvent],
        facts: &StoreFacts,
    ) -> Result<(), StoreError> {
        self.inner.import_all(users, audit, facts)
    }
    fn put_invites(&self, invites: &[Invite], events: &[AuditEvent]) -> Result<(), StoreError> {
        self.inner.put_invites(invites, events)
    }
    fn invite(&self, hash: &[u8; 32]) -> Result<Option<Invite>, StoreError> {
        self.inner.invite(hash)
    }
    fn invites_of(&self, user: &UserName) -> Result<Vec<Invite>, StoreError> {
        self.inner.invites_of(user)
    }
    fn invites(&self) -> Result<Vec<Invite>, StoreError> {
        self.inner.invites()
    }
    fn use_invite(
        &self,
        hash: &[u8; 32],
        now: i64,
        events: &[AuditEvent],
    ) -> Result<bool, StoreError> {
        if self.use_invite_fails {
            return Err(StoreError::Unsupported("write after the crash"));
        }
        self.inner.use_invite(hash, now, events)
    }
    fn transact_with_invite(
        &self,
        hash: &[u8; 32],
        now: i64,
        names: &[&UserName],
        f: &mut TxFn<'_>,
    ) -> Result<bool, StoreError> {
        self.inner.transact_with_invite(hash, now, names, f)
    }
    fn transact(&self, names: &[&UserName], f: &mut TxFn<'_>) -> Result<(), StoreError> {
        self.inner.transact(names, f)
    }
    fn transact_light(
        &self,
        names: &[&UserName],
        f: &mut TxFn<'_>,
        expect_light: bool,
        light: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        self.inner.transact_light(names, f, expect_light, light)
    }
    fn transact_push(&self, user: &UserName, f: &mut PushFn<'_>) -> Result<(), StoreError> {
        self.inner.transact_push(user, f)?;
        if let Some(h) = &self.push_commit_hook {
            h(true);
        }
        Ok(())
    }
    fn transact_push_light(
        &self,
        user: &UserName,
        f: &mut PushFn<'_>,
        expect_light: bool,
        light: &dyn Fn() -> bool,
    ) -> Result<(), StoreError> {
        self.inner
            .transact_push_light(user, f, expect_light, light)?;
        if let Some(h) = &self.push_commit_hook {
            h(!light());
        }
        Ok(())
    }
    fn push_request(&self, id: &PushId) -> Result<Option<PushRequest>, StoreError> {
        self.inner.push_request(id)
    }
    fn push_requests(&self, user: &UserName, since: i64) -> Result<Vec<PushRequest>, StoreError> {
        self.inner.push_requests(user, since)
    }
    fn put_challenge(
        &self,
        row: &ChallengeRow,
        limits: &ChallengeLimits,
    ) -> Result<bool, StoreError> {
        self.inner.put_challenge(row, limits)
    }
    fn take_challenge(&self, state_hash: &[u8; 32]) -> Result<Option<ChallengeRow>, StoreError> {
        self.inner.take_challenge(state_hash)
    }
    fn prune_challenges(&self, now: i64) -> Result<usize, StoreError> {
        self.inner.prune_challenges(now)
    }
    fn live_challenges(&self, now: i64) -> Result<usize, StoreError> {
        self.inner.live_challenges(now)
    }
    fn claim_push_outbox(
        &self,
        now: i64,
        limit: usize,
        until: i64,
    ) -> Result<Vec<PushRequest>, StoreError> {
        self.inner.claim_push_outbox(now, limit, until)
    }
    fn push_devices(&self, user: &UserName) -> Result<Vec<PushDevice>, StoreError> {
        self.inner.push_devices(user)
    }
    fn push_device(&self, id: &DeviceId) -> Result<Option<PushDevice>, StoreError> {
        self.inner.push_device(id)
    }
    fn push_block(&self, user: &UserName) -> Result<Option<i64>, StoreError> {
        self.inner.push_block(user)
    }
    fn set_push_heartbeat(&self, now: i64) -> Result<(), StoreError> {
        self.inner.set_push_heartbeat(now)
    }
    fn push_heartbeat(&self) -> Result<Option<i64>, StoreError> {
        self.inner.push_heartbeat()
    }
    fn wait_for_push(&self, timeout: std::time::Duration) -> Result<(), StoreError> {
        self.inner.wait_for_push(timeout)
    }
    fn prune_push(&self, before: i64) -> Result<usize, StoreError> {
        self.inner.prune_push(before)
    }
}

/// The inner engine's group commit, with the sync hook in front of its sync.
impl GroupCommit for Delegate {
    fn transact_deferred(&self, names: &[&UserName], f: &mut TxFn<'_>) -> Result<(), StoreError> {
        self.inner_group_commit()?.transact_deferred(names, f)
    }
    fn sync(&self) -> Result<(), StoreError> {
        if let Some(hook) = &self.sync_hook {
            hook(false);
        }
        self.inner_group_commit()?.sync()?;
        if let Some(hook) = &self.sync_hook {
            hook(true);
        }
        Ok(())
    }
    fn housekeeping(&self) -> Result<bool, StoreError> {
        self.inner_group_commit()?.housekeeping()
    }
    fn writer_housekeeping(&self) -> Result<(), StoreError> {
        self.inner_group_commit()?.writer_housekeeping()
    }
}

impl Delegate {
    fn inner_group_commit(&self) -> Result<&dyn GroupCommit, StoreError> {
        self.inner
            .group_commit()
            .ok_or(StoreError::Unsupported("group commit"))
    }
}
