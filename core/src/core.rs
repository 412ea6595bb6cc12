//! What every service of the core shares: the configuration, the store, the sealer that
//! opens stored seeds and the audit sink. Front ends open one [`Core`] and ask it for the
//! service they need: [`Core::login`], [`Core::enrolment`], [`Core::admin`].

use std::fmt;
use std::sync::Arc;

use mfa_config::Config;

use crate::admin::Admin;
use crate::audit::{AuditSink, StandardSink, Syslog};
use crate::directory::Directory;
use crate::enrolment::Enrolment;
use crate::error::CoreError;
use crate::keyfile::{self, KeyError};
use crate::login::Login;
use crate::names::{self, NameCheck};
use crate::secret::{Encrypted, Sealer, StoreKey, Unsealed};
use crate::store::{Abort, AuditQuery, GroupCommit, OpenMode, Store, StoreError};
use mfa_model::{AuditEvent, UserName, UserRecord};

pub struct Core {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Box<dyn Store>,
    pub(crate) sealer: Box<dyn Sealer>,
    /// The key came from `<key_file>.new`: a rekey committed but did not rename it.
    pub(crate) key_pending: bool,
    pub(crate) sink: Box<dyn AuditSink>,
    /// `[directory]`, where the front end gave one ([`Core::with_directory`]): groups and
    /// names come from it instead of the system's NSS.
    pub(crate) directory: Option<Arc<dyn Directory>>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

impl Core {
    /// The core over `store`, an engine the caller opened (`mfa-store-open` picks the one
    /// the configuration names; the PAM module opens SQLite itself), with the key that opens
    /// its seeds (see [`Core::open_checking`]). The stored names are checked against
    /// `[users]` when the rules changed since the last check ([`NameCheck::IfRulesChanged`]):
    /// a store holding two names of one user is refused.
    pub fn open(
        config: Arc<Config>,
        store: Box<dyn Store>,
        mode: OpenMode,
        process: &str,
    ) -> Result<Self, CoreError> {
        Self::open_checking(config, store, mode, process, NameCheck::IfRulesChanged)
    }

    /// [`Core::open`] with the name check `when` says (see [`crate::names`]). The key is the
    /// key file (`[store] key_file`) whose id the store records. A store that never had a
    /// key (new, or written before encryption at rest) gets one now: the key file is read,
    /// or with `OpenMode::Create` made when missing, and every clear seed is encrypted under
    /// it in one transaction. A missing, unreadable or wrong key file is an error naming it.
    /// `process` names the syslog sender.
    pub fn open_checking(
        config: Arc<Config>,
        store: Box<dyn Store>,
        mode: OpenMode,
        process: &str,
        when: NameCheck,
    ) -> Result<Self, CoreError> {
        let (sealer, pending) = open_key(&config, store.as_ref(), mode, process)?;
        let syslog = config.audit.syslog.then(|| Syslog::open(process));
        let sink = StandardSink::new(syslog, config.audit.retention.secs_i64());
        let core = Self {
            config,
            store,
            sealer: Box::new(sealer),
            key_pending: pending,
            sink: Box::new(sink),
            directory: None,
        };
        names::check(&core, when)?;
        Ok(core)
    }

    /// The canonical name of the user `raw` names (PAM_USER, a RADIUS User-Name, an
    /// argument), under `[users]`; the one way a front end turns a name into a user. Under
    /// `[users] unicode = "allow"` a name that looks like another user's stored name is
    /// refused too (one indexed read of the store; see [`Core::user_name_reads_store`]).
    ///
    /// With a directory, a user principal name (`a.anders@test.lan`) is first looked up
    /// there: where an account has it, the name is that account's (`alice`), so the UPN,
    /// `TEST\alice` and `alice` are one user. A directory that does not answer fails the
    /// call ([`CoreError::Directory`]).
    pub fn user_name(&self, raw: &str) -> Result<UserName, CoreError> {
        let name = match &self.directory {
            Some(d) if raw.contains('@') => match d.by_principal_name(raw.trim())? {
                Some(account) => names::user_name(&self.config, &account)?,
                None => names::user_name(&self.config, raw)?,
            },
            _ => names::user_name(&self.config, raw)?,
        };
        names::refuse_lookalike(self, raw, &name)?;
        Ok(name)
    }

    /// Whether [`Core::user_name`] reads the store (`[users] unicode = "allow"`) or asks a
    /// directory, so that a daemon runs it where store reads go rather than on its event
    /// loop.
    pub fn user_name_reads_store(&self) -> bool {
        self.config.users.unicode == mfa_config::UnicodeNames::Allow || self.directory.is_some()
    }

    /// The same core, asking `directory` for groups and names instead of NSS (the daemon,
    /// the portal and mfactl, through `mfa-store-open`, where `[directory]` is set).
    pub fn with_directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The directory in use, if any (`mfactl directory test`).
    pub fn directory(&self) -> Option<&dyn Directory> {
        self.directory.as_deref()
    }

    /// The groups of `user`: the directory's where there is one (nested and primary groups;
    /// an unknown user has none; no answer is an error), else the system's (NSS).
    pub fn groups_of(&self, user: &UserName) -> Result<Vec<String>, CoreError> {
        match &self.directory {
            Some(d) => Ok(d
                .lookup(user.as_str())?
                .account
                .map(|a| a.group_names())
                .unwrap_or_default()),
            None => Ok(crate::groups::groups_of(user)),
        }
    }

    /// Whether the directory (or, without one, the system's NSS) knows `user`. No answer
    /// from the directory is an error, never "unknown" or "known".
    pub fn user_known(&self, user: &UserName) -> Result<bool, CoreError> {
        match &self.directory {
            Some(d) => Ok(d.lookup(user.as_str())?.account.is_some()),
            None => Ok(crate::groups::user_known(user)),
        }
    }

    /// Checks the stored names again (see [`crate::names`]).
    pub fn check_names(&self, when: NameCheck) -> Result<(), CoreError> {
        names::check(self, when)
    }

    /// The core with a sealer given outright, for the store conformance suite: the store
    /// must already record `sealer`'s key id (see [`Store::reseal`]).
    #[cfg(any(test, feature = "conformance"))]
    #[doc(hidden)]
    pub fn with_sealer(
        config: Arc<Config>,
        store: Box<dyn Store>,
        sealer: Box<dyn Sealer>,
        process: &str,
    ) -> Self {
        let syslog = config.audit.syslog.then(|| Syslog::open(process));
        let sink = StandardSink::new(syslog, config.audit.retention.secs_i64());
        Self {
            config,
            store,
            sealer,
            key_pending: false,
            sink: Box::new(sink),
            directory: None,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reads (the report, the audit trail, tests). Every write goes through a service, so
    /// there is no way around the login path's rules from a front end.
    pub fn store(&self) -> Reads<'_> {
        Reads(self.store.as_ref())
    }

    /// The engine's group commit, for the one writer that drives it (mfa-radiusd): making
    /// deferred commits durable and the housekeeping beside them. The deferred commits
    /// themselves go through [`Login::authenticate_many_deferred`].
    pub fn durability(&self) -> Option<Durability<'_>> {
        self.store.group_commit().map(Durability)
    }

    pub fn login(&self) -> Login<'_> {
        Login { core: self }
    }

    pub fn enrolment(&self) -> Enrolment<'_> {
        Enrolment { core: self }
    }

    /// The administrator's operations, each audited as done through `actor` (`mfactl`, the
    /// portal).
    pub fn admin<'a>(&'a self, actor: &'a str) -> Admin<'a> {
        Admin { core: self, actor }
    }

    /// Push approval (issue 20): sign-in requests, the phones that approve them, their
    /// delivery by the portal; administrator's and portal's events are audited as done
    /// through `actor` (`mfactl`, `mfa-portal`, or the front end's process name).
    pub fn push<'a>(&'a self, actor: &'a str) -> crate::push::Push<'a> {
        crate::push::Push { core: self, actor }
    }

    /// Pending RADIUS challenges, in the store so that any node finishes them (issue 24).
    pub fn challenges(&self) -> crate::challenge::Challenges<'_> {
        crate::challenge::Challenges { core: self }
    }

    /// Enrolment links, issued and used through `actor` (`mfactl`, `mfa-portal`).
    pub fn invites<'a>(&'a self, actor: &'a str) -> crate::invite::Invites<'a> {
        crate::invite::Invites { core: self, actor }
    }
}

/// The store's reads, all a front end may call directly.
#[derive(Clone, Copy)]
pub struct Reads<'a>(&'a dyn Store);

impl fmt::Debug for Reads<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reads")
    }
}

impl Reads<'_> {
    pub fn user(&self, name: &UserName) -> Result<Option<UserRecord>, StoreError> {
        self.0.user(name)
    }

    pub fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.0.users()
    }

    /// See [`Store::each_user`](crate::store::Store::each_user).
    pub fn each_user(&self, f: &mut crate::store::UserFn<'_>) -> Result<(), StoreError> {
        self.0.each_user(f)
    }

    pub fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        self.0.audit(q)
    }

    pub fn invites(&self) -> Result<Vec<mfa_model::Invite>, StoreError> {
        self.0.invites()
    }

    /// See [`Store::health`](crate::store::Store::health).
    pub fn health(&self) -> Option<Result<crate::store::StoreHealth, StoreError>> {
        self.0.health()
    }

    /// The invites of `user`, newest first.
    pub fn invites_of(&self, user: &UserName) -> Result<Vec<mfa_model::Invite>, StoreError> {
        self.0.invites_of(user)
    }

    /// One page of the search by name: see [`Store::user_page`](crate::store::Store::user_page).
    pub fn user_page(&self, q: &crate::store::UserPage) -> Result<Vec<UserRecord>, StoreError> {
        self.0.user_page(q)
    }

    /// The last `n` decisions about `user` (allowed or denied: logins, and the refusals the
    /// portal audits under the user's name) within [`RECENT_LOGINS_WITHIN`] of `now`, newest
    /// first: what a user is shown of their own account's use.
    pub fn recent_logins(
        &self,
        user: &UserName,
        n: usize,
        now: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let events = self.0.audit(&AuditQuery {
            user: Some(user.to_string()),
            since: Some(now.saturating_sub(RECENT_LOGINS_WITHIN)),
            limit: None,
        })?;
        Ok(events
            .into_iter()
            .filter(|e| matches!(e.decision.as_str(), "allow" | "deny"))
            .rev()
            .take(n)
            .collect())
    }
}

/// How far back [`Reads::recent_logins`] looks (90 days, in seconds).
pub const RECENT_LOGINS_WITHIN: i64 = 90 * 86_400;

/// See [`Core::durability`].
#[derive(Clone, Copy)]
pub struct Durability<'a>(&'a dyn GroupCommit);

impl fmt::Debug for Durability<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Durability")
    }
}

impl Durability<'_> {
    /// Makes every deferred commit so far durable.
    pub fn sync(&self) -> Result<(), CoreError> {
        Ok(self.0.sync()?)
    }

    /// See [`GroupCommit::housekeeping`].
    pub fn housekeeping(&self) -> Result<bool, CoreError> {
        Ok(self.0.housekeeping()?)
    }

    /// See [`GroupCommit::writer_housekeeping`].
    pub fn writer_housekeeping(&self) -> Result<(), CoreError> {
        Ok(self.0.writer_housekeeping()?)
    }
}

/// The user name audit events about the whole store carry (sealing, rekey).
pub const STORE_WIDE: &str = "*";

/// The sealer for `store` (see [`Core::with_store`]), and whether its key is the pending one.
fn open_key(
    config: &Config,
    store: &dyn Store,
    mode: OpenMode,
    process: &str,
) -> Result<(Encrypted, bool), CoreError> {
    let path = config.store.key_path();
    let pending = keyfile::pending_path(&path);
    // Twice at most: another process may seal a new store between our look and our write.
    for _ in 0..2 {
        if let Some(id) = store.store_key_id()? {
            let have_main = match keyfile::read(&path)? {
                Some(k) if k.id() == id => return Ok((Encrypted::new(k), false)),
                other => other.is_some(),
            };
            // A rekey committed and stopped before renaming its new key into place.
            if let Some(k) = keyfile::read(&pending)?.filter(|k| k.id() == id) {
                if mode == OpenMode::Create {
                    keyfile::promote(&pending, &path)?;
                    return Ok((Encrypted::new(k), false));
                }
                return Ok((Encrypted::new(k), true));
            }
            return Err(if have_main {
                KeyError::Wrong { path, want: id }
            } else {
                KeyError::Missing {
                    path,
                    sealed: Some(id),
                }
            }
            .into());
        }
        let key = match keyfile::read(&path)? {
            Some(k) => k,
            None if mode == OpenMode::Create => {
                let k = StoreKey::generate()?;
                if !keyfile::write_new(&path, &k)? {
                    continue;
                }
                k
            }
            None => return Err(KeyError::Missing { path, sealed: None }.into()),
        };
        let sealer = Encrypted::new(key);
        let id = sealer
            .key_id()
            .ok_or(CoreError::Bug("an encrypted sealer without a key"))?;
        // The first open with a key: every clear seed is encrypted, in one transaction.
        let clear = store.users()?.iter().filter(|u| u.enrolled()).count();
        let events = if clear > 0 {
            vec![AuditEvent::admin(
                crate::login::now(),
                STORE_WIDE,
                process,
                mfa_model::Action::Seal,
                mfa_model::ReasonCode::SealedStore,
                Some(format!(
                    "{clear} clear key(s) encrypted under {}",
                    path.display()
                )),
            )]
        } else {
            Vec::new()
        };
        let sealed = store.reseal(
            None,
            id,
            &mut |user, old| {
                let secret = Unsealed.unseal(user, old).map_err(Abort::Secret)?;
                sealer.seal(user, &secret).map_err(Abort::Secret)
            },
            // A store that never had a key holds no subscription (none is sealed without
            // one); one found is refused rather than guessed at.
            &mut |_, _, _| {
                Err(Abort::Bug(
                    "a push subscription in a store that never had a key",
                ))
            },
            &events,
        );
        match sealed {
            Ok(_) => return Ok((sealer, false)),
            Err(StoreError::KeyChanged { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CoreError::Bug(
        "the store's key changed twice while it was opened",
    ))
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::login::Request;
    use crate::net::ClientAddr;

    /// A user's recent logins are the store's decisions about that user, newest first, at
    /// most `n`, within 90 days; the administrator's events about the user are not logins.
    #[test]
    fn recent_logins_are_the_users_last_decisions_newest_first() {
        let (_dir, core) = crate::test_core(|_| {});
        let ivy = UserName::parse("ivy").unwrap();
        let now = 1_800_000_000;
        let login = |user: &UserName, at: i64| {
            let mut r = Request::new(user, ClientAddr::Remote(None), "test");
            r.now = at;
            core.login().deny_first_factor(&r).unwrap();
        };
        login(&ivy, now - RECENT_LOGINS_WITHIN - 1);
        for i in 0..12 {
            login(&ivy, now - 100 + i);
        }
        login(&UserName::parse("jon").unwrap(), now);
        core.invites("test").issue(&ivy, 3600, now).unwrap();
        let got = core.store().recent_logins(&ivy, 10, now).unwrap();
        let times: Vec<i64> = got.iter().map(|e| e.time).collect();
        assert_eq!(
            times,
            (2..12).rev().map(|i| now - 100 + i).collect::<Vec<_>>()
        );
        assert!(got.iter().all(|e| e.user == "ivy" && e.decision == "deny"));
        assert_eq!(
            core.store().recent_logins(&ivy, 100, now).unwrap().len(),
            12
        );
    }

    /// An invite's validity and a backup set's size are refused outside the one range each
    /// front end names (mfactl, the portal, `[portal] invite_valid`), and nothing is written.
    #[test]
    fn the_issue_functions_refuse_what_their_ranges_leave_out() {
        let (_dir, core) = crate::test_core(|_| {});
        let now = 1_800_000_000;
        let kit = UserName::parse("kit").unwrap();
        let inv = core.invites("test");
        for secs in [59, 90 * 86_400 + 1, 0, -1] {
            assert!(matches!(
                inv.issue(&kit, secs, now),
                Err(CoreError::Refused(mfa_model::Refusal::InviteValidity(s))) if s == secs
            ));
            assert!(matches!(
                inv.issue_unenrolled(secs, now),
                Err(CoreError::Refused(mfa_model::Refusal::InviteValidity(_)))
            ));
        }
        assert!(core.store().invites().unwrap().is_empty());
        inv.issue(&kit, 60, now).unwrap();
        inv.issue(&kit, 90 * 86_400, now).unwrap();
        let secret = crate::TotpSecret::generate().unwrap();
        core.enrolment()
            .enroll(&kit, &secret, None, false, "test", now)
            .unwrap();
        let admin = core.admin("test");
        for n in [0, 51] {
            let e = admin.issue_backup_codes(&kit, n, None, now).unwrap_err();
            assert!(
                matches!(e, CoreError::Refused(mfa_model::Refusal::BackupCodeCount(m)) if m == n)
            );
            assert_eq!(
                e.to_string(),
                format!("a set of backup codes holds 1 to 50, not {n}")
            );
        }
        assert!(core.store().user(&kit).unwrap().unwrap().codes.is_empty());
        assert_eq!(
            admin.issue_backup_codes(&kit, 50, None, now).unwrap().len(),
            50
        );
    }
}
