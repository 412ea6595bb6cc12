//! The core's errors. Every front end denies on any of them; the variants tell a front end
//! what to say (a refusal is the user's or admin's business, the rest are failures).

use std::fmt;

use mfa_config::ConfigError;
use mfa_model::{BadUserName, Refusal};

use crate::keyfile::KeyError;
use crate::secret::SecretError;
use crate::store::{Abort, StoreError};

#[derive(Debug)]
#[non_exhaustive]
pub enum CoreError {
    Config(ConfigError),
    Store(StoreError),
    /// The answer is no: no such user, already enrolled, a wrong confirmation code.
    Refused(Refusal),
    BadUserName {
        name: String,
        why: BadUserName,
    },
    /// Stored names that are one user under `[users]`: the store is refused until an admin
    /// merges or removes them.
    NameConflicts(crate::names::NameConflicts),
    /// A name operation that cannot be done as asked (a merge, an import, an invite whose
    /// name is no longer canonical).
    Names(crate::names::NameError),
    /// A key that cannot be used (a bad import, a stored seed that does not open).
    Secret(SecretError),
    /// The store key file is missing, unreadable, untrusted or the wrong one.
    Key(KeyError),
    /// The system gave no random numbers.
    Random(getrandom::Error),
    /// `[directory]` did not answer (or answered with an error): whatever needed it is
    /// refused, never decided as if the user had no groups.
    Directory(crate::directory::DirectoryError),
    /// An invariant of the program broke: a bug.
    Bug(&'static str),
}

impl CoreError {
    pub fn bad_name(name: &str, why: BadUserName) -> Self {
        CoreError::BadUserName {
            name: name.into(),
            why,
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Config(e) => write!(f, "{e}"),
            CoreError::Store(e) => write!(f, "{e}"),
            CoreError::Refused(r) => write!(f, "{r}"),
            CoreError::BadUserName { name, why } => {
                write!(f, "{name:?} is not a valid user name: {why}")
            }
            CoreError::NameConflicts(c) => write!(f, "{c}"),
            CoreError::Names(e) => write!(f, "{e}"),
            CoreError::Secret(e) => write!(f, "{e}"),
            CoreError::Key(e) => write!(f, "{e}"),
            CoreError::Random(e) => write!(f, "no random numbers from the system: {e}"),
            CoreError::Directory(e) => write!(f, "{e}"),
            CoreError::Bug(e) => write!(f, "internal error: {e}"),
        }
    }
}

impl std::error::Error for CoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CoreError::Config(e) => Some(e),
            CoreError::Store(e) => Some(e),
            CoreError::Refused(e) => Some(e),
            CoreError::BadUserName { why, .. } => Some(why),
            CoreError::Secret(e) => Some(e),
            CoreError::Key(e) => Some(e),
            CoreError::Names(e) => Some(e),
            CoreError::Directory(e) => Some(e),
            CoreError::Random(_) | CoreError::Bug(_) | CoreError::NameConflicts(_) => None,
        }
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Aborted(Abort::Refused(r)) => CoreError::Refused(r),
            StoreError::Aborted(Abort::Secret(e)) => CoreError::Secret(e),
            StoreError::Aborted(Abort::Bug(b)) => CoreError::Bug(b),
            e => CoreError::Store(e),
        }
    }
}

impl From<crate::names::NameError> for CoreError {
    fn from(e: crate::names::NameError) -> Self {
        CoreError::Names(e)
    }
}

impl From<KeyError> for CoreError {
    fn from(e: KeyError) -> Self {
        CoreError::Key(e)
    }
}

impl From<ConfigError> for CoreError {
    fn from(e: ConfigError) -> Self {
        CoreError::Config(e)
    }
}

impl From<Refusal> for CoreError {
    fn from(r: Refusal) -> Self {
        CoreError::Refused(r)
    }
}

impl From<getrandom::Error> for CoreError {
    fn from(e: getrandom::Error) -> Self {
        CoreError::Random(e)
    }
}

impl From<SecretError> for CoreError {
    fn from(e: SecretError) -> Self {
        CoreError::Secret(e)
    }
}

impl From<crate::directory::DirectoryError> for CoreError {
    fn from(e: crate::directory::DirectoryError) -> Self {
        CoreError::Directory(e)
    }
}
