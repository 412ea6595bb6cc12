//! The shared core of the MFA product: TOTP, the policy decision, the user store and the
//! audit trail. The PAM module, the RADIUS daemon and `mfactl` all open one [`Core`] and
//! decide through its [`login::Login`] service, so they cannot disagree.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod core;
pub mod enrolment;
pub mod error;
pub mod groups;
pub mod invite;
pub mod keyfile;
pub mod login;
pub mod names;
pub mod net;
pub mod notify;
pub mod policy;
pub mod secret;
pub mod store;
pub mod totp;
pub mod verify;

pub use crate::core::Core;
pub use error::CoreError;
pub use login::{Attempt, Request};
pub use mfa_model::{
    AuditEvent, OneTimeCode, OtcKind, Refusal, RolloutStatus, TotpParams, UserName, UserRecord,
    lookalike_key,
};
pub use names::{NameCheck, user_name};
pub use net::ClientAddr;
pub use policy::{Decision, Outcome, Reason};
pub use secret::TotpSecret;
pub use store::{OpenMode, Store};
