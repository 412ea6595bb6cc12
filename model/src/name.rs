//! User names: checked once, where a name enters the core, and carried as [`UserName`] after.

use std::fmt;

/// Longer names are refused: no directory issues them, and they only bloat logs and rows.
pub const MAX_NAME_BYTES: usize = 256;

/// A user name that passed the check. The only way a name reaches the policy, the store or
/// the audit trail, so no front end can let an unchecked spelling through.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

/// Why a name is not a user name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadUserName {
    Empty,
    TooLong {
        bytes: usize,
    },
    /// A leading `-` reads as an option to every command that is handed the name.
    LeadingDash,
    /// `position` counts characters from 1.
    BadCharacter {
        position: usize,
        character: char,
    },
}

impl fmt::Display for BadUserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadUserName::Empty => f.write_str("the name is empty"),
            BadUserName::TooLong { bytes } => {
                write!(f, "{bytes} bytes is longer than {MAX_NAME_BYTES}")
            }
            BadUserName::LeadingDash => f.write_str("it starts with '-'"),
            BadUserName::BadCharacter {
                position,
                character,
            } => write!(f, "character {position} ({character:?}) is not allowed"),
        }
    }
}

impl std::error::Error for BadUserName {}

impl UserName {
    /// POSIX-ish portable user and group names, plus `@`, `.` and `\` for directory users.
    pub fn parse(s: &str) -> Result<Self, BadUserName> {
        Self::check(s)?;
        Ok(Self(s.to_string()))
    }

    /// The same rule, for names that are not users (group names in the configuration).
    pub fn check(s: &str) -> Result<(), BadUserName> {
        if s.is_empty() {
            return Err(BadUserName::Empty);
        }
        if s.len() > MAX_NAME_BYTES {
            return Err(BadUserName::TooLong { bytes: s.len() });
        }
        if s.starts_with('-') {
            return Err(BadUserName::LeadingDash);
        }
        match s
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_alphanumeric() || "._-@\\$".contains(*c)))
        {
            Some((i, character)) => Err(BadUserName::BadCharacter {
                position: i + 1,
                character,
            }),
            None => Ok(()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for UserName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for UserName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for UserName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl PartialEq<str> for UserName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for UserName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_rule() {
        for ok in [
            "alice",
            "a.b-c_d",
            "CONTOSO\\alice",
            "alice@contoso.com",
            "mach$",
            "jörg",
        ] {
            assert!(UserName::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(UserName::parse(""), Err(BadUserName::Empty));
        assert_eq!(UserName::parse("-rf"), Err(BadUserName::LeadingDash));
        assert_eq!(
            UserName::parse("a b"),
            Err(BadUserName::BadCharacter {
                position: 2,
                character: ' '
            })
        );
        assert!(UserName::parse("a\nb").is_err());
        assert!(UserName::parse(&"a".repeat(256)).is_ok());
        assert_eq!(
            UserName::parse(&"a".repeat(257)),
            Err(BadUserName::TooLong { bytes: 257 })
        );
    }
}
