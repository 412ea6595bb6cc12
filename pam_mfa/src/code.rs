//! libpam's return codes as one enum, both ways: what the module returns, and what a libpam
//! call (or the application's conversation function) answered. The numbers are Linux-PAM's
//! (`<security/_pam_types.h>`); a number it does not define is kept as it came
//! ([`PamCode::Other`]) rather than turned into a code it is not.

use std::ffi::c_int;
use std::fmt;

/// A libpam return code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PamCode {
    Success,
    OpenErr,
    SymbolErr,
    ServiceErr,
    SystemErr,
    BufErr,
    PermDenied,
    AuthErr,
    CredInsufficient,
    /// Remote mode: no server answered.
    AuthInfoUnavail,
    UserUnknown,
    /// The user is locked out.
    MaxTries,
    NewAuthtokReqd,
    AcctExpired,
    SessionErr,
    CredUnavail,
    CredExpired,
    CredErr,
    NoModuleData,
    ConvErr,
    AuthtokErr,
    AuthtokRecoveryErr,
    AuthtokLockBusy,
    AuthtokDisableAging,
    TryAgain,
    /// Only with `ignore=` and in its case, or from a phase the module does nothing in.
    Ignore,
    Abort,
    AuthtokExpired,
    ModuleUnknown,
    BadItem,
    ConvAgain,
    Incomplete,
    /// A number Linux-PAM does not define.
    Other(c_int),
}

/// Every defined code, its number and its name in the C headers.
const CODES: [(PamCode, c_int, &str); 32] = [
    (PamCode::Success, 0, "PAM_SUCCESS"),
    (PamCode::OpenErr, 1, "PAM_OPEN_ERR"),
    (PamCode::SymbolErr, 2, "PAM_SYMBOL_ERR"),
    (PamCode::ServiceErr, 3, "PAM_SERVICE_ERR"),
    (PamCode::SystemErr, 4, "PAM_SYSTEM_ERR"),
    (PamCode::BufErr, 5, "PAM_BUF_ERR"),
    (PamCode::PermDenied, 6, "PAM_PERM_DENIED"),
    (PamCode::AuthErr, 7, "PAM_AUTH_ERR"),
    (PamCode::CredInsufficient, 8, "PAM_CRED_INSUFFICIENT"),
    (PamCode::AuthInfoUnavail, 9, "PAM_AUTHINFO_UNAVAIL"),
    (PamCode::UserUnknown, 10, "PAM_USER_UNKNOWN"),
    (PamCode::MaxTries, 11, "PAM_MAXTRIES"),
    (PamCode::NewAuthtokReqd, 12, "PAM_NEW_AUTHTOK_REQD"),
    (PamCode::AcctExpired, 13, "PAM_ACCT_EXPIRED"),
    (PamCode::SessionErr, 14, "PAM_SESSION_ERR"),
    (PamCode::CredUnavail, 15, "PAM_CRED_UNAVAIL"),
    (PamCode::CredExpired, 16, "PAM_CRED_EXPIRED"),
    (PamCode::CredErr, 17, "PAM_CRED_ERR"),
    (PamCode::NoModuleData, 18, "PAM_NO_MODULE_DATA"),
    (PamCode::ConvErr, 19, "PAM_CONV_ERR"),
    (PamCode::AuthtokErr, 20, "PAM_AUTHTOK_ERR"),
    (PamCode::AuthtokRecoveryErr, 21, "PAM_AUTHTOK_RECOVERY_ERR"),
    (PamCode::AuthtokLockBusy, 22, "PAM_AUTHTOK_LOCK_BUSY"),
    (
        PamCode::AuthtokDisableAging,
        23,
        "PAM_AUTHTOK_DISABLE_AGING",
    ),
    (PamCode::TryAgain, 24, "PAM_TRY_AGAIN"),
    (PamCode::Ignore, 25, "PAM_IGNORE"),
    (PamCode::Abort, 26, "PAM_ABORT"),
    (PamCode::AuthtokExpired, 27, "PAM_AUTHTOK_EXPIRED"),
    (PamCode::ModuleUnknown, 28, "PAM_MODULE_UNKNOWN"),
    (PamCode::BadItem, 29, "PAM_BAD_ITEM"),
    (PamCode::ConvAgain, 30, "PAM_CONV_AGAIN"),
    (PamCode::Incomplete, 31, "PAM_INCOMPLETE"),
];

impl PamCode {
    /// The code libpam means by `raw`.
    pub fn from_raw(raw: c_int) -> Self {
        CODES
            .iter()
            .find(|(_, n, _)| *n == raw)
            .map_or(PamCode::Other(raw), |(c, _, _)| *c)
    }

    /// The number libpam knows this code by.
    pub fn raw(self) -> c_int {
        match self {
            PamCode::Other(n) => n,
            code => CODES
                .iter()
                .find(|(c, _, _)| *c == code)
                .map_or(c_int::MIN, |(_, n, _)| *n),
        }
    }

    /// The name in the C headers (`PAM_AUTH_ERR`); `None` for [`PamCode::Other`].
    pub fn name(self) -> Option<&'static str> {
        CODES
            .iter()
            .find(|(c, _, _)| *c == self)
            .map(|(_, _, name)| *name)
    }
}

/// `PAM_CONV_ERR (19)`: the name admins grep for, and the number.
impl fmt::Display for PamCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.raw()),
            None => write!(f, "PAM error {}", self.raw()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pam::constants::PamResultCode;

    /// Every number maps to a code and back to itself, and every code to a number and back;
    /// the defined ones are pam-bindings' (which follows `_pam_types.h`), name for name.
    #[test]
    fn the_mapping_round_trips() {
        for raw in -100..100 {
            let code = PamCode::from_raw(raw);
            assert_eq!(code.raw(), raw);
            assert_eq!(PamCode::from_raw(code.raw()), code);
        }
        for (code, raw, name) in CODES {
            assert_eq!(PamCode::from_raw(raw), code);
            assert_eq!(code.raw(), raw);
            assert_eq!(code.name(), Some(name));
            let bindings = PamResultCode::try_from(raw).unwrap();
            assert_eq!(format!("{bindings:?}"), name);
            assert_eq!(bindings as c_int, raw);
        }
        assert!(matches!(PamCode::from_raw(32), PamCode::Other(32)));
        assert!(PamResultCode::try_from(32).is_err(), "a code CODES lacks");
        assert_eq!(PamCode::MaxTries.to_string(), "PAM_MAXTRIES (11)");
        assert_eq!(PamCode::Other(-3).to_string(), "PAM error -3");
    }
}
