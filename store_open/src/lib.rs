//! Opens the store engine the configuration names, and the core over it (with `[directory]`
//! where set, `mfa-directory`): `[store] url` is
//! PostgreSQL, anything else the SQLite file at `[store] path`. The daemon, the portal and
//! `mfactl` open their core here. The PAM module does not: it links the SQLite engine alone
//! (no PostgreSQL client, TLS stack or async runtime inside every sshd and sudo), and a host
//! that shares a store asks mfa-radiusd through `[remote]`.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use mfa_config::{Config, StoreConfig};
use mfa_core::{Core, CoreError, NameCheck};
use mfa_store::{OpenMode, Store, StoreError};
use mfa_store_postgres::PgStore;
pub use mfa_store_postgres::SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION;
use mfa_store_sqlite::SqliteStore;

/// The engine `cfg` names. `OpenMode::Existing` fails when the store is missing.
pub fn open(cfg: &StoreConfig, mode: OpenMode) -> Result<Box<dyn Store>, StoreError> {
    if cfg.url.is_some() {
        return Ok(Box::new(PgStore::open(cfg, mode)?));
    }
    Ok(Box::new(SqliteStore::open(
        &cfg.path,
        mode,
        cfg.busy_timeout.0,
    )?))
}

/// The core over the engine `config` names, its stored names checked as `when` says (see
/// `mfa_core::names`). `process` names the syslog sender.
pub fn open_core(
    config: Arc<Config>,
    mode: OpenMode,
    process: &str,
    when: NameCheck,
) -> Result<Core, CoreError> {
    let store = open(&config.store, mode)?;
    let directory = config
        .directory
        .as_ref()
        .map(mfa_directory::LdapDirectory::open_shared)
        .transpose()?;
    let core = Core::open_checking(config, store, mode, process, when)?;
    Ok(match directory {
        Some(d) => core.with_directory(d),
        None => core,
    })
}

/// Loads the configuration file and opens the core over its store, checking the stored
/// names when the rules changed since the last check.
pub fn core_from_config_file(
    path: &Path,
    mode: OpenMode,
    process: &str,
) -> Result<Core, CoreError> {
    let cfg = mfa_config::load(path)?;
    open_core(Arc::new(cfg), mode, process, NameCheck::IfRulesChanged)
}
