//! How one user's codes are made: stored per user, since an imported key may differ from
//! today's configuration. The allowed ranges are defined here once, for the configuration,
//! import and every stored row alike.

use std::fmt;
use std::ops::RangeInclusive;

/// Code lengths every authenticator app and RFC 4226 allow.
pub const DIGITS: RangeInclusive<u8> = 6..=8;
/// Time steps in seconds that make sense for a person typing a code.
pub const PERIODS: RangeInclusive<u64> = 10..=300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    SHA1,
    SHA256,
    SHA512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::SHA1 => "SHA1",
            Algorithm::SHA256 => "SHA256",
            Algorithm::SHA512 => "SHA512",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "SHA1" => Some(Algorithm::SHA1),
            "SHA256" => Some(Algorithm::SHA256),
            "SHA512" => Some(Algorithm::SHA512),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
}

/// A parameter outside the ranges above.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadTotpParams {
    Digits(i64),
    Period(i64),
}

impl fmt::Display for BadTotpParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadTotpParams::Digits(d) => write!(f, "{d} is not 6, 7 or 8"),
            BadTotpParams::Period(p) => write!(
                f,
                "{p} is not a period of {} to {} seconds",
                PERIODS.start(),
                PERIODS.end()
            ),
        }
    }
}

impl std::error::Error for BadTotpParams {}

impl TotpParams {
    /// Checked parameters; the only constructor for values that come from outside.
    pub fn new(algorithm: Algorithm, digits: i64, period: i64) -> Result<Self, BadTotpParams> {
        let digits = u8::try_from(digits)
            .ok()
            .filter(|d| DIGITS.contains(d))
            .ok_or(BadTotpParams::Digits(digits))?;
        let period = u64::try_from(period)
            .ok()
            .filter(|p| PERIODS.contains(p))
            .ok_or(BadTotpParams::Period(period))?;
        Ok(Self {
            algorithm,
            digits,
            period,
        })
    }

    /// The time step that contains `unix` (negative times, before 1970, have none).
    pub fn step_at(&self, unix: i64) -> Option<i64> {
        let p = i64::try_from(self.period).ok().filter(|p| *p > 0)?;
        (unix >= 0).then(|| unix / p)
    }
}
