//! The shared core of the MFA product: TOTP, the policy decision, the user store and the
//! audit trail. The PAM module, the RADIUS daemon and `mfactl` all open one [`Core`] and
//! decide through its [`login::Login`] service, so they cannot disagree.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod breakglass;
pub mod challenge;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod core;
pub mod directory;
pub mod enrolment;
pub mod error;
pub mod groups;
pub mod invite;
pub mod keyfile;
pub mod keygen;
pub mod login;
pub mod names;
pub mod net;
pub mod offline_report;
pub mod policy;
pub mod push;
pub mod reachability;
pub mod report;
pub mod roles;
pub mod secret;
pub mod session;
pub mod totp;
pub mod verify;

pub use crate::core::Core;
pub use error::CoreError;
pub use keygen::KeyGeneration;
pub use login::{Ack, Admission, Attempt, Request, Voucher};
pub use mfa_model::{
    Action, AuditDecision, AuditEvent, BACKUP_CODES, BACKUP_CODES_DEFAULT, DecisionRefusal,
    DeviceId, DeviceRefusal, INVITE_VALID_SECS, INVITE_VALID_TEXT, OneTimeCode, OtcKind, PushId,
    PushRefusal, PushState, ReasonCode, Refusal, RolloutStatus, TotpParams, UserName, UserRecord,
    lookalike_key,
};
/// The store trait and its errors, as the core's services speak them.
pub use mfa_store as store;
pub use mfa_store::{OpenMode, Store};
pub use names::{NameCheck, user_name};
pub use net::ClientAddr;
pub use policy::{Decision, Outcome, Reason};
pub use secret::TotpSecret;

/// The core over a SQLite store at `[store] path`, for the core's own tests.
#[cfg(test)]
pub(crate) fn open_sqlite(
    cfg: std::sync::Arc<mfa_config::Config>,
    mode: OpenMode,
) -> Result<Core, CoreError> {
    let store =
        mfa_store_sqlite::SqliteStore::open(&cfg.store.path, mode, cfg.store.busy_timeout.0)?;
    Core::open(cfg, Box::new(store), mode, "test")
}

/// The core's own tests: a new SQLite store in a temporary directory (kept while the
/// returned guard lives), under the default configuration as `adjust` changes it, without
/// syslog.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn test_core(adjust: impl FnOnce(&mut mfa_config::Config)) -> (tempfile::TempDir, Core) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = mfa_config::Config::default();
    cfg.store.path = dir.path().join("mfa.db");
    cfg.audit.syslog = false;
    adjust(&mut cfg);
    let core = open_sqlite(std::sync::Arc::new(cfg), OpenMode::Create).unwrap();
    (dir, core)
}
