//! The audit model: one event per decision or admin action. Never a code or secret.

use std::fmt;

/// What a decision lets happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Allow,
    NeedCode,
    Deny,
}

impl Outcome {
    /// The word in the audit trail, the logs and `mfactl auth`.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::NeedCode => "challenge",
            Outcome::Deny => "deny",
        }
    }
}

/// Defines a code enum and its one table of stable texts, read both ways.
macro_rules! codes {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $t:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name { $($(#[$vm])* $v,)* }

        impl $name {
            /// Every code, in table order.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];

            /// The stable text: scripts and the store read it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $t,)* }
            }

            /// The code whose text is `s`.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($t => Some($name::$v),)* _ => None }
            }
        }
    };
}

codes! {
    /// What an audit event records besides a login's decision: an administrator's action,
    /// or a gateway's report of a user's session (`Session`).
    Action {
        Enroll = "enroll",
        ReEnroll = "re-enroll",
        Unlink = "unlink",
        Unlock = "unlock",
        TempAccess = "temp-access",
        BackupCodes = "backup-codes",
        Import = "import",
        Invite = "invite",
        /// A remembered network (the portal's unlock) made or revoked.
        Remember = "remember",
        Rename = "rename",
        Merge = "merge",
        Remove = "remove",
        Seal = "seal",
        Rekey = "rekey",
        /// A gateway reported a user's session (RADIUS accounting): `session_start`,
        /// `session_stop`, `session_interim`.
        Session = "session",
        /// A sign-in request (push): written, decided on the phone, delivered or not.
        Push = "push",
        /// A phone registered for approvals, or removed.
        PushDevice = "push-device",
        /// The configuration file edited (`[policy]`: go-live, trusted networks,
        /// exemptions) from the administrator's console.
        Config = "config",
    }
}

codes! {
    /// Why: the stable, machine-readable reason of an audit event. Scripts match on it, so
    /// it is never free text (that goes in `detail`). The login reasons are the policy's
    /// (`Reason::code` in the core), the rest the administrator's actions, invites and the
    /// portal's refusals.
    ReasonCode {
        // Login decisions.
        TrustedNetwork = "trusted_network",
        RememberedNetwork = "remembered_network",
        LocalLogin = "local_login",
        ExemptUser = "exempt_user",
        ExemptGroup = "exempt_group",
        /// A `[[policy.rules]]` entry whose action is deny matched (the detail names it).
        RuleDenied = "rule_denied",
        /// A `[[policy.rules]]` entry whose action is none matched (the detail names it).
        RuleNoCode = "rule_no_code",
        /// A `[[policy.rules]]` entry whose action is push matched and a code was typed:
        /// only an approved push lets this login in.
        PushRequired = "push_required",
        BeforeGoLive = "before_go_live",
        GracePeriod = "grace_period",
        CodeRequired = "code_required",
        ValidCode = "valid_code",
        BackupCode = "backup_code",
        TemporaryAccess = "temporary_access",
        SelfEnrolled = "self_enrolled",
        MissingCode = "missing_code",
        WrongCode = "wrong_code",
        ReplayedCode = "replayed_code",
        Locked = "locked",
        SourceLocked = "source_locked",
        NotEnrolled = "not_enrolled",
        WrongPassword = "wrong_password",
        InvalidUserName = "invalid_user_name",
        UnsupportedMethod = "unsupported_authentication_method",
        MalformedPassword = "malformed_user_password",
        MalformedStaticChallenge = "malformed_static_challenge",
        UnknownState = "unknown_or_expired_state",
        StateMismatch = "state_mismatch",
        InternalError = "internal_error",
        ServerAccepted = "server_accepted",
        ServerRejected = "server_rejected",
        // PAM hosts in remote mode while no server answered, as the host reports them when
        // a server answers again (issue 24).
        /// The host's own policy let the login in without a code (`[remote] offline =
        /// "trusted"`); the detail says which rule of the host's and when.
        OfflineAllowed = "offline_allowed",
        /// One of the host's break-glass codes let the login in.
        BreakglassUsed = "breakglass_used",
        // Gateway sessions (RADIUS accounting): who was connected when.
        SessionStart = "session_start",
        SessionStop = "session_stop",
        SessionInterim = "session_interim",
        // Push approval: a login's decision on a request, and what happened to the request.
        /// A sign-in request was written for the portal to deliver.
        PushSent = "push_sent",
        PushApproved = "push_approved",
        PushDenied = "push_denied",
        PushExpired = "push_expired",
        /// "This wasn't me": denied, and pushes to the user blocked for `[push] fraud_block`.
        PushFraud = "push_fraud",
        PushBlocked = "push_blocked",
        PushUndeliverable = "push_undeliverable",
        /// The approval was used by a login already.
        PushUsed = "push_used",
        /// Not decided yet (a login asked too early; nothing is written).
        PushWaiting = "push_waiting",
        PushOff = "push_off",
        PushNotAsked = "push_not_asked",
        PushNoDevice = "push_no_device",
        PushAlreadyPending = "push_already_pending",
        PushRateLimited = "push_rate_limited",
        PushNoPortal = "push_no_portal",
        /// An administrator lifted the block of "This wasn't me".
        PushUnblocked = "push_unblocked",
        DeviceRegistered = "device_registered",
        DeviceRemoved = "device_removed",
        /// The push service said the subscription is gone (404, 410): the device is removed.
        DeviceGone = "device_gone",
        // Administrator's actions.
        Confirmed = "confirmed",
        Unconfirmed = "unconfirmed",
        SelfReplaced = "self_replaced",
        /// The code that was to confirm a replacement key did not match it.
        ReplaceWrongCode = "replace_wrong_code",
        KeyRemoved = "key_removed",
        LockCleared = "lock_cleared",
        NotLocked = "not_locked",
        Issued = "issued",
        Revoked = "revoked",
        NewSet = "new_set",
        Imported = "imported",
        NetworkUnlocked = "network_unlocked",
        NetworkRevoked = "network_revoked",
        CanonicalName = "canonical_name",
        Merged = "merged",
        RecordRemoved = "record_removed",
        SealedStore = "sealed_store",
        Rekeyed = "rekeyed",
        /// What an administrator's free-text reason became in schema version 3 (the
        /// upgrade from version 2 could not say more).
        Admin = "admin",
        // Invites.
        Used = "used",
        AlreadyEnrolled = "already_enrolled",
        InviteExpired = "invite_expired",
        InviteUnknown = "invite_unknown",
        InviteUsed = "invite_used",
        Refused = "refused",
        // The portal's refusals of a request.
        RateLimited = "rate_limited",
        SlowForm = "slow_form",
        OversizedForm = "oversized_form",
        OversizedField = "oversized_field",
        BadForm = "bad_form",
        SessionMissing = "session_missing",
        CsrfRefused = "csrf_refused",
        SessionEnded = "session_ended",
        ReplaceNotStarted = "replace_not_started",
        // The administrator's console: its refusals, and its edits of the configuration.
        /// Signed in, but in none of the `[admin] groups`.
        NotAdministrator = "not_administrator",
        /// The administrator's role does not allow the action.
        RoleRefused = "role_refused",
        /// An administrator's action on their own account.
        OwnAccount = "own_account",
        GoLiveSet = "go_live_set",
        GoLiveCleared = "go_live_cleared",
        TrustedAdded = "trusted_added",
        TrustedRemoved = "trusted_removed",
        ExemptionAdded = "exemption_added",
        ExemptionRemoved = "exemption_removed",
    }
}

/// What an audit event records: a login's decision, or an administrator's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditDecision {
    Login(Outcome),
    Admin(Action),
}

impl AuditDecision {
    /// The word in the audit trail, the logs and `mfactl log`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditDecision::Login(o) => o.word(),
            AuditDecision::Admin(a) => a.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Outcome::Allow, Outcome::NeedCode, Outcome::Deny]
            .into_iter()
            .find(|o| o.word() == s)
            .map(AuditDecision::Login)
            .or_else(|| Action::parse(s).map(AuditDecision::Admin))
    }
}

/// A stored code this version of the program does not know: one written by another version
/// (an older one's, or a newer one's beside it on a shared store), kept as it was read so the
/// audit trail shows it. Only a store's reading makes one; the program writes known codes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnknownCode(String);

impl UnknownCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// [`AuditEvent::decision`]: known, or as another version wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoredDecision {
    Known(AuditDecision),
    Unknown(UnknownCode),
}

/// [`AuditEvent::reason`]: known, or as another version wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoredReason {
    Known(ReasonCode),
    Unknown(UnknownCode),
}

macro_rules! stored {
    ($name:ident, $known:ident) => {
        impl $name {
            /// The text as stored.
            pub fn as_str(&self) -> &str {
                match self {
                    $name::Known(k) => k.as_str(),
                    $name::Unknown(u) => u.as_str(),
                }
            }

            /// A stored text: the code it names, or kept as it is.
            pub fn from_stored(s: &str) -> Self {
                match $known::parse(s) {
                    Some(k) => $name::Known(k),
                    None => $name::Unknown(UnknownCode(s.to_string())),
                }
            }
        }

        impl From<$known> for $name {
            fn from(k: $known) -> Self {
                $name::Known(k)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<$known> for $name {
            fn eq(&self, other: &$known) -> bool {
                matches!(self, $name::Known(k) if k == other)
            }
        }
    };
}

stored!(StoredDecision, AuditDecision);
stored!(StoredReason, ReasonCode);

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub time: i64,
    pub user: String,
    /// PAM service (sshd, sudo), RADIUS client name, or the admin tool (`mfactl`).
    pub service: String,
    pub client_ip: Option<String>,
    /// `allow`, `deny`, `challenge`, or an admin action such as `enroll`.
    pub decision: StoredDecision,
    /// A stable machine-readable code, e.g. `valid_code`, `trusted_network`, `key_removed`:
    /// scripts match on it, so it is never free text.
    pub reason: StoredReason,
    /// Free text for people (`users.csv:12`, `1 use(s), valid 3600s`); never a secret.
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An administrator's action on `user`, done through `actor` (`mfactl`, the portal).
    pub fn admin(
        time: i64,
        user: &str,
        actor: &str,
        action: Action,
        reason: ReasonCode,
        detail: Option<String>,
    ) -> Self {
        Self {
            time,
            user: user.into(),
            service: actor.into(),
            client_ip: None,
            decision: AuditDecision::Admin(action).into(),
            reason: reason.into(),
            detail,
        }
    }

    /// One line for syslog and stderr: key=value, user names and details quoted.
    pub fn line(&self) -> String {
        let mut s = format!(
            "user={:?} service={:?} client_ip={} decision={} reason={}",
            self.user,
            self.service,
            self.client_ip.as_deref().unwrap_or("-"),
            self.decision,
            self.reason
        );
        if let Some(d) = &self.detail {
            s.push_str(&format!(" detail={d:?}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_itself_and_no_two_share_a_text() {
        let mut seen = std::collections::HashSet::new();
        for r in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(r.as_str()), Some(*r));
            assert!(seen.insert(r.as_str()), "{}", r.as_str());
        }
        for a in Action::ALL {
            let d = AuditDecision::Admin(*a);
            assert_eq!(AuditDecision::parse(d.as_str()), Some(d));
            assert!(seen.insert(a.as_str()), "{}", a.as_str());
        }
        for o in [Outcome::Allow, Outcome::NeedCode, Outcome::Deny] {
            let d = AuditDecision::Login(o);
            assert_eq!(AuditDecision::parse(d.as_str()), Some(d));
        }
        // Another version's code is kept as read, never taken for a known one.
        let other = StoredReason::from_stored("a_reason_of_tomorrow");
        assert!(matches!(other, StoredReason::Unknown(_)));
        assert_eq!(other, "a_reason_of_tomorrow");
        assert_eq!(
            StoredReason::from_stored("valid_code"),
            ReasonCode::ValidCode
        );
    }
}
