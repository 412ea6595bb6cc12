//! What the product keeps per user.

use std::fmt;
use std::ops::RangeInclusive;

use zeroize::Zeroizing;

use crate::name::UserName;
use crate::totp::TotpParams;

/// A TOTP seed in the form the store keeps. Only the core's sealer turns it into a usable
/// key, so an engine never handles a seed and encryption at rest changes one place. The
/// bytes are wiped on drop and never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(Zeroizing<Vec<u8>>);

impl SealedSecret {
    /// The column value as the store read it; its form is checked by whoever opens it.
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The column value to write.
    pub fn stored(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedSecret(<redacted>)")
    }
}

/// Backup codes (on paper) or a temporary-access code (issued by the administrator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtcKind {
    Backup,
    Temporary,
}

impl OtcKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OtcKind::Backup => "backup",
            OtcKind::Temporary => "temporary",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "backup" => Some(OtcKind::Backup),
            "temporary" => Some(OtcKind::Temporary),
            _ => None,
        }
    }
}

/// How a one-time code's hash was made. Old hashes keep verifying; new codes get the newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtcHash {
    /// One SHA-256 over a domain tag, the salt and the code (codes issued before the slow
    /// hash; 10^8 codes under one SHA-256 fall to a laptop in seconds, so no new code gets it).
    Sha256V1,
    /// Argon2id with the core's fixed parameters (see `mfa_core::verify`).
    Argon2idV2,
}

impl OtcHash {
    /// The stored column value.
    pub fn number(self) -> i64 {
        match self {
            OtcHash::Sha256V1 => 1,
            OtcHash::Argon2idV2 => 2,
        }
    }

    pub fn from_number(n: i64) -> Option<Self> {
        match n {
            1 => Some(OtcHash::Sha256V1),
            2 => Some(OtcHash::Argon2idV2),
            _ => None,
        }
    }
}

/// A one-time code, stored only as a salted hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeCode {
    pub kind: OtcKind,
    pub scheme: OtcHash,
    pub salt: [u8; 16],
    pub hash: [u8; 32],
    pub created: i64,
    pub expires: Option<i64>,
    pub uses_left: u32,
}

impl OneTimeCode {
    pub fn usable(&self, now: i64) -> bool {
        self.uses_left > 0 && self.expires.is_none_or(|e| now < e)
    }
}

/// Wrong codes for one user from one client address: that address is locked out before the
/// user is, so an outsider guessing from one place cannot lock the user out everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFailures {
    /// The client IP as text (`192.0.2.7`, `2001:db8::5`).
    pub source: String,
    pub failures: u32,
    pub first_failure: i64,
    pub locked_until: Option<i64>,
}

/// A remembered network: the user signed in on the portal with a code and unlocked the client
/// address the portal saw, so a code-less login of that user from that address is let in
/// until `expires` (`[policy] remember`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlock {
    /// The client IP as text (`192.0.2.7`, `2001:db8::5`), never a host name.
    pub ip: String,
    pub created: i64,
    pub expires: i64,
}

/// How long an enrolment link may be valid, in seconds (`[portal] invite_valid`, `mfactl
/// invite --valid`): a minute at least, 90 days at most (a link enrols whoever opens it).
/// `Invites::issue` refuses anything else.
pub const INVITE_VALID_SECS: RangeInclusive<i64> = 60..=90 * 86_400;
/// [`INVITE_VALID_SECS`] as the messages say it.
pub const INVITE_VALID_TEXT: &str = "between 1m and 90d";

/// How many backup codes one set may hold (`mfactl backup-codes --count`);
/// `Admin::issue_backup_codes` refuses anything else.
pub const BACKUP_CODES: RangeInclusive<u32> = 1..=50;
/// How many a set holds unless asked otherwise: what the portal shows and mfactl prints.
pub const BACKUP_CODES_DEFAULT: u32 = 10;

/// A one-time enrolment link (`mfactl invite`): only the SHA-256 of its random token is kept.
/// A confirmed enrolment uses it up; it is never shown again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// SHA-256 of the token in the link.
    pub hash: [u8; 32],
    /// The canonical name of the user it enrols (who may have no record yet).
    pub user: String,
    pub created: i64,
    pub expires: i64,
    /// When a confirmed enrolment used it up.
    pub used: Option<i64>,
}

impl Invite {
    /// Neither used nor expired.
    pub fn usable(&self, now: i64) -> bool {
        self.used.is_none() && now < self.expires
    }
}

/// Everything the product knows about one user. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: UserName,
    /// `None`: not enrolled (never, or unlinked).
    pub secret: Option<SealedSecret>,
    pub params: TotpParams,
    pub mfa_created: Option<i64>,
    pub mfa_changed: Option<i64>,
    pub first_seen: i64,
    pub grace_started: Option<i64>,
    pub last_step: Option<i64>,
    /// Wrong codes in the current lockout window.
    pub failures: u32,
    pub first_failure: Option<i64>,
    pub locked_until: Option<i64>,
    pub login_count: u64,
    pub last_login: Option<i64>,
    pub last_ip: Option<String>,
    pub last_outcome: Option<String>,
    pub codes: Vec<OneTimeCode>,
    /// Per-address failure counters, a few at most (see `SourceFailures`).
    pub sources: Vec<SourceFailures>,
    /// Remembered networks: client addresses the user unlocked on the portal with a code.
    pub unlocks: Vec<Unlock>,
}

impl UserRecord {
    pub fn new(name: &UserName, params: TotpParams, now: i64) -> Self {
        Self {
            name: name.clone(),
            secret: None,
            params,
            mfa_created: None,
            mfa_changed: None,
            first_seen: now,
            grace_started: None,
            last_step: None,
            failures: 0,
            first_failure: None,
            locked_until: None,
            login_count: 0,
            last_login: None,
            last_ip: None,
            last_outcome: None,
            codes: Vec::new(),
            sources: Vec::new(),
            unlocks: Vec::new(),
        }
    }

    pub fn enrolled(&self) -> bool {
        self.secret.is_some()
    }

    pub fn locked(&self, now: i64) -> Option<i64> {
        self.locked_until.filter(|&u| now < u)
    }

    /// Until when `source` is locked out for this user, if it is.
    pub fn source_locked(&self, source: &str, now: i64) -> Option<i64> {
        self.sources
            .iter()
            .find(|s| s.source == source)
            .and_then(|s| s.locked_until)
            .filter(|&u| now < u)
    }

    /// The unlock of client address `ip` (an IP literal as text) that still holds at `now`,
    /// if any: made after the key last changed (a new or removed key ends every unlock) and
    /// younger than both its own expiry and `remember` seconds (so shortening
    /// `[policy] remember` shortens the unlocks already made; 0 ends them all). One stamped
    /// after `now` (made on a node whose clock runs ahead) does not hold: from its stamp it
    /// would last longer than `remember` from now. The next write of the record makes it an
    /// unlock of now ([`UserRecord::clamp_future_unlocks`]).
    pub fn unlocked(&self, ip: &str, now: i64, remember: i64) -> Option<&Unlock> {
        self.unlocks
            .iter()
            .find(|u| u.ip == ip && self.unlock_in_force(u, now, remember))
    }

    /// Whether one of this record's unlocks lets a login in at `now` (the rule of
    /// [`UserRecord::unlocked`]): what `mfactl unlocks` lists and `unlocks revoke` counts, so
    /// the two never disagree about a row that is stored but no longer holds.
    pub fn unlock_in_force(&self, u: &Unlock, now: i64, remember: i64) -> bool {
        remember > 0
            && self.enrolled()
            && u.created <= now
            && now < u.expires
            && now < u.created.saturating_add(remember)
            && self.mfa_changed.is_none_or(|c| u.created >= c)
    }

    /// Makes every unlock stamped after `now` (another node's clock ahead of this one's) an
    /// unlock made `now`, lasting at most `remember` from now: clock skew between nodes never
    /// stretches an unlock past `remember`. Run wherever a record is written with its
    /// unlocks (an unlock made or extended, a login), so a skewed stamp does not wait in the
    /// store for its time to come. Says whether anything changed.
    pub fn clamp_future_unlocks(&mut self, now: i64, remember: i64) -> bool {
        let until = now.saturating_add(remember.max(0));
        let mut changed = false;
        for u in self.unlocks.iter_mut().filter(|u| u.created > now) {
            u.created = now;
            u.expires = u.expires.min(until);
            changed = true;
        }
        changed
    }

    pub fn usable_codes(&self, kind: OtcKind, now: i64) -> usize {
        self.codes
            .iter()
            .filter(|c| c.kind == kind && c.usable(now))
            .count()
    }
}

/// Where a user stands in the roll-out (the report's status column), as the policy sees an
/// untrusted remote login of theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutStatus {
    Exempt,
    Locked {
        enrolled: bool,
    },
    BeforeGoLive,
    Grace {
        days_left: i64,
    },
    Enrolled,
    /// Not enrolled, past the deadline, with a usable temporary-access code.
    TemporaryAccess,
    Overdue,
}

impl RolloutStatus {
    /// Counts toward the report's "in grace" total.
    pub fn in_grace(self) -> bool {
        matches!(
            self,
            RolloutStatus::Grace { .. } | RolloutStatus::BeforeGoLive
        )
    }
}

impl fmt::Display for RolloutStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RolloutStatus::Exempt => f.write_str("exempt"),
            RolloutStatus::Locked { enrolled: true } => f.write_str("locked"),
            RolloutStatus::Locked { enrolled: false } => f.write_str("locked, not enrolled"),
            RolloutStatus::BeforeGoLive => f.write_str("before go-live"),
            RolloutStatus::Grace { days_left } => write!(f, "grace ({days_left} days left)"),
            RolloutStatus::Enrolled => f.write_str("enrolled"),
            RolloutStatus::TemporaryAccess => f.write_str("temporary access"),
            RolloutStatus::Overdue => f.write_str("overdue"),
        }
    }
}
