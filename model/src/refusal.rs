//! Business refusals: the request was understood and the answer is no. Distinct from
//! failures (a store that cannot be read, a bug), which front ends report differently.

use std::fmt;

use crate::name::UserName;
use crate::push::{DecisionRefusal, DeviceRefusal, PushRefusal};

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    NoSuchUser(UserName),
    NotEnrolled(UserName),
    /// Backup codes are for enrolled users; the message says what to do first.
    BackupCodesNeedEnrolment(UserName),
    /// `origin` names the import line the user came from.
    AlreadyEnrolled {
        user: UserName,
        origin: Option<String>,
    },
    /// The confirmation code does not match the new key.
    WrongConfirmationCode,
    /// Remembered networks are off (`[policy] remember` is 0).
    RememberOff,
    /// A sign-in (the portal's session) no longer stands for the user's key: it was
    /// replaced or removed since, or the user is locked.
    SignInEnded(UserName),
    /// A name nothing vouches for: the system does not know it (NSS) and the store holds no
    /// record of it, so an administrator's command would act on a typo.
    UnknownName(UserName),
    /// An enrolment link valid for a time outside [`crate::INVITE_VALID_SECS`] (seconds).
    InviteValidity(i64),
    /// A set of backup codes of a size outside [`crate::BACKUP_CODES`].
    BackupCodeCount(u32),
    /// A sign-in request (push) could not be sent.
    Push(PushRefusal),
    /// A phone's decision on a sign-in request was refused.
    PushDecision(DecisionRefusal),
    /// A phone's registration was refused.
    PushDevice(DeviceRefusal),
    /// The administrator's console: the signed-in user is in none of the `[admin] groups`
    /// (any more: the role is looked up again at every action).
    NotAdministrator(UserName),
    /// The administrator's role (`helpdesk`, `admin`) does not allow `what`.
    NotPermitted {
        operator: UserName,
        role: &'static str,
        what: &'static str,
    },
    /// An administrator acting on their own account from the console: one person must not
    /// reset their own MFA.
    OwnAccount(UserName),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoSuchUser(u) => write!(f, "no such user {u:?} in the store"),
            Refusal::NotEnrolled(u) => write!(f, "user {u:?} is not enrolled"),
            Refusal::BackupCodesNeedEnrolment(u) => write!(
                f,
                "user {u:?} is not enrolled; enrol first, then issue backup codes"
            ),
            Refusal::AlreadyEnrolled { user, origin: None } => write!(
                f,
                "user {user:?} is already enrolled; unlink first, or use --replace"
            ),
            Refusal::AlreadyEnrolled {
                user,
                origin: Some(o),
            } => write!(
                f,
                "{o}: user {user:?} is already enrolled (use --replace to overwrite); nothing was imported"
            ),
            Refusal::WrongConfirmationCode => f.write_str(
                "the code does not match the new key; check the app's clock and try again",
            ),
            Refusal::RememberOff => {
                f.write_str("remembered networks are off ([policy] remember is 0)")
            }
            Refusal::SignInEnded(u) => write!(
                f,
                "the sign-in of user {u:?} has ended: the key changed or was removed since, or the user is locked; sign in again"
            ),
            Refusal::UnknownName(u) => write!(
                f,
                "no user {u:?}: the system does not know the name (NSS: `getent passwd {u}` \
                 finds nothing) and the store holds no record of it; nothing was changed. \
                 Check the spelling, or add --force to act on the name anyway"
            ),
            Refusal::InviteValidity(secs) => write!(
                f,
                "an enrolment link must be valid {}, not {secs}s",
                crate::INVITE_VALID_TEXT
            ),
            Refusal::BackupCodeCount(n) => write!(
                f,
                "a set of backup codes holds {} to {}, not {n}",
                crate::BACKUP_CODES.start(),
                crate::BACKUP_CODES.end()
            ),
            Refusal::Push(r) => write!(f, "no push sent: {r}"),
            Refusal::PushDecision(r) => write!(f, "decision refused: {r}"),
            Refusal::PushDevice(r) => write!(f, "{r}"),
            Refusal::NotAdministrator(u) => write!(
                f,
                "user {u:?} is in none of the [admin] groups; nothing was changed"
            ),
            Refusal::NotPermitted {
                operator,
                role,
                what,
            } => write!(
                f,
                "the {role} role of {operator:?} does not allow {what}; nothing was changed"
            ),
            Refusal::OwnAccount(u) => write!(
                f,
                "{u:?} cannot act on their own account from the console; another administrator (or mfactl) must; nothing was changed"
            ),
        }
    }
}

impl std::error::Error for Refusal {}
