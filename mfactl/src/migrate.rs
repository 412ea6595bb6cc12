//! `mfactl migrate --to URL`: the configured store, copied into an empty PostgreSQL store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mfa_config::SslMode;
use mfa_core::store::{self, StoreError};
use mfa_core::{CoreError, OpenMode};

use crate::admin::{ACTOR, load_config, open_with};
use crate::{Fail, Result};

pub fn migrate(
    cfg: &Path,
    to: &str,
    password_file: Option<PathBuf>,
    sslmode: Option<&str>,
    ca_file: Option<PathBuf>,
) -> Result<ExitCode> {
    let c = load_config(cfg)?;
    let shown = store::redact_url(to);
    mfa_config::check_store_url(to).map_err(|e| Fail::Error(format!("--to {shown}: {e}")))?;
    let mut target = c.store.clone();
    target.url = Some(to.to_string());
    if let Some(m) = sslmode {
        target.sslmode = match m {
            "disable" => SslMode::Disable,
            "require" => SslMode::Require,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Fail::Error(format!(
                    "--sslmode {other:?}: use disable, require or verify-full"
                )));
            }
        };
    }
    if password_file.is_some() {
        target.password_file = password_file;
    }
    if ca_file.is_some() {
        target.ca_file = ca_file;
    }
    if target.sslmode == SslMode::VerifyFull && target.ca_file.is_none() {
        return Err(Fail::Error(
            "TLS mode verify-full (the default) needs the server's CA: give --ca-file (or [store] ca_file), or --sslmode disable for a server on this host".into(),
        ));
    }
    let source_name = match &c.store.url {
        Some(u) => store::redact_url(u),
        None => c.store.path.display().to_string(),
    };
    let source = open_with(c, OpenMode::Existing)?;
    let dest = mfa_store_open::open(&target, OpenMode::Create)?;
    let copied = match source.admin(ACTOR).copy_to(dest.as_ref()) {
        Ok(n) => n,
        Err(CoreError::Store(e @ StoreError::NotEmpty { .. })) => {
            return Err(Fail::Refused(e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    outln!(
        "Copied {} user(s) with {} one-time code(s) and {} address counter(s), and {} audit event(s), from {source_name} to {shown}.",
        copied.users,
        copied.codes,
        copied.sources,
        copied.audit
    );
    outln!(
        "Set [store] url = {to:?} (with sslmode, and password_file where needed) and key_file = {:?} in {} on every node to use it, with a copy of that key file on each (the copy is sealed under it); the old store is left as it was.",
        target.key_path().display().to_string(),
        cfg.display()
    );
    Ok(ExitCode::SUCCESS)
}
