//! What every service of the core shares: the configuration, the store, the sealer that
//! opens stored seeds and the audit sink. Front ends open one [`Core`] and ask it for the
//! service they need: [`Core::login`], [`Core::enrolment`], [`Core::admin`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use mfa_config::Config;

use crate::admin::Admin;
use crate::audit::{AuditSink, StandardSink, Syslog};
use crate::enrolment::Enrolment;
use crate::error::CoreError;
use crate::login::Login;
use crate::names::{self, NameCheck};
use crate::secret::{Sealer, Unsealed};
use crate::store::{self, AuditQuery, GroupCommit, OpenMode, Store, StoreError};
use mfa_model::{AuditEvent, UserName, UserRecord};

pub struct Core {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Box<dyn Store>,
    pub(crate) sealer: Box<dyn Sealer>,
    pub(crate) sink: Box<dyn AuditSink>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

impl Core {
    /// Opens the store the configuration names. `OpenMode::Existing` fails when it is
    /// missing (the PAM module must not silently start an empty store). `process` names
    /// the syslog sender. The stored names are checked against `[users]` when the rules
    /// changed since the last check ([`NameCheck::IfRulesChanged`]): a store holding two
    /// names of one user is refused.
    pub fn open(config: Arc<Config>, mode: OpenMode, process: &str) -> Result<Self, CoreError> {
        Self::open_checking(config, mode, process, NameCheck::IfRulesChanged)
    }

    /// [`Core::open`] with the name check `when` says (see [`crate::names`]).
    pub fn open_checking(
        config: Arc<Config>,
        mode: OpenMode,
        process: &str,
        when: NameCheck,
    ) -> Result<Self, CoreError> {
        let store = store::open(&config.store, mode)?;
        let core = Self::with_store(config, store, process);
        names::check(&core, when)?;
        Ok(core)
    }

    /// Loads the configuration file and opens its store.
    pub fn from_config_file(path: &Path, mode: OpenMode, process: &str) -> Result<Self, CoreError> {
        let cfg = mfa_config::load(path)?;
        Self::open(Arc::new(cfg), mode, process)
    }

    /// The canonical name of the user `raw` names (PAM_USER, a RADIUS User-Name, an
    /// argument), under `[users]`; the one way a front end turns a name into a user.
    pub fn user_name(&self, raw: &str) -> Result<UserName, CoreError> {
        names::user_name(&self.config, raw)
    }

    /// Checks the stored names again (see [`crate::names`]).
    pub fn check_names(&self, when: NameCheck) -> Result<(), CoreError> {
        names::check(self, when)
    }

    /// A core over `store` as it is: no name check (tests, and [`Core::open_checking`]).
    pub fn with_store(config: Arc<Config>, store: Box<dyn Store>, process: &str) -> Self {
        let syslog = config.audit.syslog.then(|| Syslog::open(process));
        let sink = StandardSink::new(syslog, config.audit.retention.secs_i64());
        Self {
            config,
            store,
            sealer: Box::new(Unsealed),
            sink: Box::new(sink),
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

    pub fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        self.0.audit(q)
    }
}

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
