//! The shared core of the MFA product: TOTP, the policy decision, the user store and the
//! audit model. The PAM module, the RADIUS daemon and `mfactl` all decide through
//! [`auth::Authenticator`], so they cannot disagree.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod enrolment;
pub mod groups;
pub mod net;
pub mod policy;
pub mod secret;
pub mod store;
pub mod totp;
pub mod verify;

pub use auth::{Authenticator, CoreError, Request};
pub use net::ClientAddr;
pub use policy::{Decision, Outcome, Reason};
pub use secret::TotpSecret;
pub use store::{OpenMode, Store};
