//! `pam_mfa.so`: the TOTP second factor for SSH, sudo and console logins.
//!
//! `auth required pam_mfa.so [config=/etc/mfa/mfa.toml] [debug] [try_first_pass|use_first_pass]
//! [ignore=unenrolled|no_code]`
//!
//! The module only translates between libpam and the shared core (`mfa_core`), which makes
//! every decision, so PAM, RADIUS and `mfactl auth` cannot disagree. All libpam calls are in
//! [`ffi`]; the flow in [`flow`] runs against a trait and is unit-tested without libpam.
//! Every error denies (PAM_AUTH_ERR) and is logged to syslog, auth facility.
//!
//! With `[remote]` in its configuration the module opens no store and holds no TOTP secret:
//! it asks mfa-radiusd ([`remote`]); when no server answers it denies with
//! PAM_AUTHINFO_UNAVAIL, unless `[remote] offline = "trusted"` and the host's own policy lets
//! the login in without a code ([`offline`]).
#![deny(unsafe_code)]

pub mod args;
pub mod code;
mod ffi;
pub mod flow;
pub mod offline;
pub mod remote;
