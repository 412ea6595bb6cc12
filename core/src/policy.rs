//! The policy decision: who must type a code. One pure function that the PAM module, the
//! RADIUS daemon and `mfactl auth` all call; a rule anywhere else is a bug.

use std::fmt;

use mfa_config::{
    Config, GoLive, LocalLogins, PolicyRule, PushMode, RadiusMode, RememberFor, RuleAction,
    SelfEnroll, format_utc,
};
pub use mfa_model::Outcome;
use mfa_model::{OtcKind, PushRefusal, ReasonCode, RolloutStatus, UserName, UserRecord};

use crate::login::Service;
use crate::net::{ClientAddr, trusted_match};

const DAY: i64 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    TrustedNetwork,
    /// The user unlocked this client address on the portal (`[policy] remember`).
    RememberedNetwork,
    LocalLogin,
    ExemptUser,
    ExemptGroup,
    /// A `[[policy.rules]]` entry with `action = "deny"` matched.
    RuleDenied,
    /// A `[[policy.rules]]` entry with `action = "none"` matched.
    RuleNoCode,
    /// A `[[policy.rules]]` entry with `action = "push"` matched, and a code was typed:
    /// only an approved push settles this login.
    PushRequired,
    /// Not enrolled, before go-live: `days_left` until the user's deadline, or `None` where
    /// the roll-out is not scheduled (`enforce_from = "never"`).
    BeforeGoLive {
        days_left: Option<i64>,
    },
    GracePeriod {
        days_left: i64,
    },
    CodeRequired,
    ValidCode,
    BackupCode,
    TemporaryAccess,
    SelfEnrolled,
    MissingCode,
    WrongCode,
    ReplayedCode,
    Locked {
        until: i64,
    },
    /// Too many wrong codes for this user from this client address.
    SourceLocked {
        until: i64,
    },
    NotEnrolled,
    WrongPassword,
    // Refusals before the policy could run; a front end names them, the core words them.
    InvalidUserName,
    UnsupportedMethod,
    MalformedPassword,
    /// An append-mode User-Password that starts with `SCRV1:` but is not OpenVPN's
    /// static-challenge form (`verify::read_static_challenge`).
    MalformedStaticChallenge,
    UnknownState,
    StateMismatch,
    InternalError,
    // A RADIUS server's answer to PAM remote mode, which says allow or deny but not why (the
    // server audited its reason).
    ServerAccepted,
    ServerRejected,
    // Push approval: what a sign-in request settles at a login (`Login::verify_push`), on the
    // one path, where the policy asks for a code.
    /// Approved on a registered phone, with the right number.
    PushApproved,
    /// Denied on the phone, or approved with the wrong number.
    PushDenied,
    /// Not decided before it expired.
    PushExpired,
    /// "This wasn't me".
    PushFraud,
    /// The push could not be delivered.
    PushUndeliverable,
    /// The approval let a login in already.
    PushUsed,
    /// Not decided yet: the login still waits (`NeedCode`, nothing written).
    PushWaiting,
    /// No push could be sent (`Push::start`), for a front end that has no other way in to
    /// offer (a gateway in code-only mode).
    PushRefused(PushRefusal),
}

impl Reason {
    /// Stable identifier for logs, the audit trail and scripts.
    pub fn code(&self) -> &'static str {
        self.audit_code().as_str()
    }

    /// The audit trail's code of this reason.
    pub fn audit_code(&self) -> ReasonCode {
        match self {
            Reason::TrustedNetwork => ReasonCode::TrustedNetwork,
            Reason::RememberedNetwork => ReasonCode::RememberedNetwork,
            Reason::LocalLogin => ReasonCode::LocalLogin,
            Reason::ExemptUser => ReasonCode::ExemptUser,
            Reason::ExemptGroup => ReasonCode::ExemptGroup,
            Reason::RuleDenied => ReasonCode::RuleDenied,
            Reason::RuleNoCode => ReasonCode::RuleNoCode,
            Reason::PushRequired => ReasonCode::PushRequired,
            Reason::BeforeGoLive { .. } => ReasonCode::BeforeGoLive,
            Reason::GracePeriod { .. } => ReasonCode::GracePeriod,
            Reason::CodeRequired => ReasonCode::CodeRequired,
            Reason::ValidCode => ReasonCode::ValidCode,
            Reason::BackupCode => ReasonCode::BackupCode,
            Reason::TemporaryAccess => ReasonCode::TemporaryAccess,
            Reason::SelfEnrolled => ReasonCode::SelfEnrolled,
            Reason::MissingCode => ReasonCode::MissingCode,
            Reason::WrongCode => ReasonCode::WrongCode,
            Reason::ReplayedCode => ReasonCode::ReplayedCode,
            Reason::Locked { .. } => ReasonCode::Locked,
            Reason::SourceLocked { .. } => ReasonCode::SourceLocked,
            Reason::NotEnrolled => ReasonCode::NotEnrolled,
            Reason::WrongPassword => ReasonCode::WrongPassword,
            Reason::InvalidUserName => ReasonCode::InvalidUserName,
            Reason::UnsupportedMethod => ReasonCode::UnsupportedMethod,
            Reason::MalformedPassword => ReasonCode::MalformedPassword,
            Reason::MalformedStaticChallenge => ReasonCode::MalformedStaticChallenge,
            Reason::UnknownState => ReasonCode::UnknownState,
            Reason::StateMismatch => ReasonCode::StateMismatch,
            Reason::InternalError => ReasonCode::InternalError,
            Reason::ServerAccepted => ReasonCode::ServerAccepted,
            Reason::ServerRejected => ReasonCode::ServerRejected,
            Reason::PushApproved => ReasonCode::PushApproved,
            Reason::PushDenied => ReasonCode::PushDenied,
            Reason::PushExpired => ReasonCode::PushExpired,
            Reason::PushFraud => ReasonCode::PushFraud,
            Reason::PushUndeliverable => ReasonCode::PushUndeliverable,
            Reason::PushUsed => ReasonCode::PushUsed,
            Reason::PushWaiting => ReasonCode::PushWaiting,
            Reason::PushRefused(r) => push_refusal_code(*r),
        }
    }

    /// A refusal a server named by its stable code ([`Reason::code`]), with its lock's end
    /// where it is a lock: how a PAM host in remote mode reads an Access-Reject, so a locked
    /// user gets PAM_MAXTRIES there as here. `None` for anything else: a code that is not a
    /// refusal's (an allowing reason on a reject), a lock without its end, an end without a
    /// lock, or a code this release does not know. The host fails closed on `None`; it never
    /// guesses.
    pub fn refusal_from_code(code: &str, locked_until: Option<i64>) -> Option<Reason> {
        let r = match (code, locked_until) {
            ("locked", Some(until)) => Reason::Locked { until },
            ("source_locked", Some(until)) => Reason::SourceLocked { until },
            ("push_blocked", Some(until)) => Reason::PushRefused(PushRefusal::Blocked { until }),
            ("push_rate_limited", Some(until)) => {
                Reason::PushRefused(PushRefusal::RateLimited { until })
            }
            (_, Some(_)) => return None,
            (code, None) => [
                Reason::CodeRequired,
                Reason::MissingCode,
                Reason::WrongCode,
                Reason::ReplayedCode,
                Reason::NotEnrolled,
                Reason::WrongPassword,
                Reason::InvalidUserName,
                Reason::UnsupportedMethod,
                Reason::MalformedPassword,
                Reason::MalformedStaticChallenge,
                Reason::UnknownState,
                Reason::StateMismatch,
                Reason::InternalError,
                Reason::RuleDenied,
                Reason::PushRequired,
                Reason::PushDenied,
                Reason::PushExpired,
                Reason::PushFraud,
                Reason::PushUndeliverable,
                Reason::PushUsed,
                Reason::PushRefused(PushRefusal::Off),
                Reason::PushRefused(PushRefusal::NotAsked),
                Reason::PushRefused(PushRefusal::NoDevice),
                Reason::PushRefused(PushRefusal::AlreadyPending),
                Reason::PushRefused(PushRefusal::NoPortal),
            ]
            .into_iter()
            .find(|r| r.code() == code)?,
        };
        Some(r)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::TrustedNetwork => f.write_str("client is on a trusted network"),
            Reason::RememberedNetwork => {
                f.write_str("client address unlocked by the user on the portal")
            }
            Reason::LocalLogin => f.write_str("local login, trusted by configuration"),
            Reason::ExemptUser => f.write_str("user is exempt"),
            Reason::ExemptGroup => f.write_str("user is in an exempt group"),
            Reason::RuleDenied => f.write_str("refused by a policy rule"),
            Reason::RuleNoCode => f.write_str("no code needed by a policy rule"),
            Reason::PushRequired => {
                f.write_str("an approval on the phone is required, a typed code is not accepted")
            }
            Reason::BeforeGoLive {
                days_left: Some(days_left),
            } => {
                write!(f, "not enrolled, MFA required in {days_left} day(s)")
            }
            Reason::BeforeGoLive { days_left: None } => {
                f.write_str("not enrolled, MFA not required yet (roll-out not scheduled)")
            }
            Reason::GracePeriod { days_left } => {
                write!(f, "not enrolled, in grace period ({days_left} day(s) left)")
            }
            Reason::CodeRequired => f.write_str("a code is required"),
            Reason::ValidCode => f.write_str("valid code"),
            Reason::BackupCode => f.write_str("valid backup code"),
            Reason::TemporaryAccess => f.write_str("valid temporary access code"),
            Reason::SelfEnrolled => f.write_str("enrolled at login"),
            Reason::MissingCode => f.write_str("no code given"),
            Reason::WrongCode => f.write_str("wrong code"),
            Reason::ReplayedCode => f.write_str("code already used"),
            Reason::Locked { until } => write!(f, "locked until {}", format_utc(*until)),
            Reason::SourceLocked { until } => {
                write!(f, "locked from this address until {}", format_utc(*until))
            }
            Reason::NotEnrolled => f.write_str("not enrolled and past the deadline"),
            Reason::WrongPassword => f.write_str("wrong password"),
            Reason::InvalidUserName => f.write_str("not a valid user name"),
            Reason::UnsupportedMethod => f.write_str("unsupported authentication method"),
            Reason::MalformedPassword => f.write_str("malformed password attribute"),
            Reason::MalformedStaticChallenge => {
                f.write_str("malformed OpenVPN static-challenge password (SCRV1)")
            }
            Reason::UnknownState => f.write_str("unknown or expired challenge"),
            Reason::StateMismatch => f.write_str("challenge answered by another client or user"),
            Reason::InternalError => f.write_str("internal error"),
            Reason::ServerAccepted => f.write_str("accepted by the RADIUS server"),
            Reason::ServerRejected => f.write_str("refused by the RADIUS server"),
            Reason::PushApproved => f.write_str("approved on a registered phone"),
            Reason::PushDenied => f.write_str("denied on the phone"),
            Reason::PushExpired => f.write_str("the sign-in request expired undecided"),
            Reason::PushFraud => f.write_str("reported on the phone as not the user's"),
            Reason::PushUndeliverable => f.write_str("the push could not be delivered"),
            Reason::PushUsed => f.write_str("the approval was used already"),
            Reason::PushWaiting => f.write_str("waiting for the phone"),
            Reason::PushRefused(r) => write!(f, "no push: {r}"),
        }
    }
}

/// The audit code of a push that could not be sent.
pub fn push_refusal_code(r: PushRefusal) -> ReasonCode {
    match r {
        PushRefusal::Off => ReasonCode::PushOff,
        PushRefusal::NotEnrolled => ReasonCode::NotEnrolled,
        PushRefusal::NotAsked => ReasonCode::PushNotAsked,
        PushRefusal::NoDevice => ReasonCode::PushNoDevice,
        PushRefusal::Blocked { .. } => ReasonCode::PushBlocked,
        PushRefusal::AlreadyPending => ReasonCode::PushAlreadyPending,
        PushRefusal::RateLimited { .. } => ReasonCode::PushRateLimited,
        PushRefusal::NoPortal => ReasonCode::PushNoPortal,
    }
}

/// What the user is told when no push could be sent: what to do instead.
pub fn push_refusal_message(r: PushRefusal) -> String {
    match r {
        PushRefusal::Off => {
            "Approval on your phone is not available here; enter your verification code.".into()
        }
        PushRefusal::NotEnrolled => "Approval on your phone needs an enrolled authenticator app; contact your administrator.".into(),
        PushRefusal::NotAsked => "No approval is needed for this sign-in.".into(),
        PushRefusal::NoDevice => "No phone is registered for approvals: register one on the self-service portal (My account), or enter your verification code.".into(),
        PushRefusal::Blocked { until } => format!(
            "Approvals on your phone are blocked until {} because a sign-in request was reported as not yours; enter your verification code, or contact your administrator.",
            format_utc(until)
        ),
        PushRefusal::AlreadyPending => "A sign-in request is already waiting on your phone: approve or deny it first.".into(),
        PushRefusal::RateLimited { until } => format!(
            "Too many sign-in requests: try again after {}, or enter your verification code.",
            format_utc(until)
        ),
        PushRefusal::NoPortal => "Approval on your phone is unavailable right now; enter your verification code.".into(),
    }
}

/// What the policy says, why, and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: Reason,
    /// Text for the user (PAM conversation, RADIUS Reply-Message). Never a code or secret.
    pub message: Option<String>,
    /// The user may enrol an authenticator now, at this login (self-enrolment).
    pub offer_enrolment: bool,
    /// The `[[policy.rules]]` entry this decision followed, if one matched: named in the
    /// audit event's detail and by `mfactl auth`.
    pub rule: Option<RuleMatch>,
}

/// The `[[policy.rules]]` entry a decision followed: its index in the file (as `mfactl
/// config check` names it, `policy.rules[0]`), its `name` and its action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    pub index: usize,
    pub name: Option<String>,
    pub action: RuleAction,
    /// The rule's `reply`: what a gateway's Access-Accept through it carries. Read through
    /// [`Decision::reply`], which gives it on an allow only. Boxed: most rules have none,
    /// and every decision carries this.
    pub reply: Option<Box<mfa_config::ReplyAttributes>>,
}

impl fmt::Display for RuleMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy.rules[{}]", self.index)?;
        if let Some(n) = &self.name {
            write!(f, " {n:?}")?;
        }
        Ok(())
    }
}

impl Decision {
    pub fn allow(reason: Reason) -> Self {
        Self {
            outcome: Outcome::Allow,
            reason,
            message: None,
            offer_enrolment: false,
            rule: None,
        }
    }

    pub fn deny(reason: Reason) -> Self {
        let message = Some(user_message(&reason));
        Self {
            outcome: Outcome::Deny,
            reason,
            message,
            offer_enrolment: false,
            rule: None,
        }
    }

    pub fn need_code() -> Self {
        Self {
            outcome: Outcome::NeedCode,
            reason: Reason::CodeRequired,
            message: None,
            offer_enrolment: false,
            rule: None,
        }
    }

    /// Only an approved push may settle this decision's code (a `push` rule matched).
    pub fn push_required(&self) -> bool {
        self.outcome == Outcome::NeedCode
            && self
                .rule
                .as_ref()
                .is_some_and(|r| r.action == RuleAction::Push)
    }

    /// The push mode a front end applies to this decision: where a `push` rule matched,
    /// the push is sent at once, as with `push = "only"` (a typed code would be refused with
    /// `push_required` anyway, so asking for one first only costs the user a round); a
    /// service whose push is off keeps it off (`mfactl config check` names that rule).
    pub fn push_mode(&self, configured: PushMode) -> PushMode {
        if self.push_required() && configured != PushMode::Off {
            PushMode::Only
        } else {
            configured
        }
    }

    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    /// An allow that uses up nothing an attacker could replay and counts toward no lock:
    /// the address or the user is trusted by configuration (or by an unlock the user made
    /// on the portal), so the same request would be let in again anyway. Its writes are
    /// only the login statistics and the audit row, which may become durable after the
    /// reply (ARCHITECTURE.md, *Durability*). Every other final decision (a code, a
    /// one-time code, a push, a wrong code's counters, a refusal, the grace period's start)
    /// is durable before its reply.
    pub fn consumes_nothing(&self) -> bool {
        self.outcome == Outcome::Allow
            && matches!(
                self.reason,
                Reason::TrustedNetwork
                    | Reason::RememberedNetwork
                    | Reason::LocalLogin
                    | Reason::ExemptUser
                    | Reason::ExemptGroup
                    | Reason::RuleNoCode
            )
    }

    /// The reply attributes for the gateway: the matched rule's `reply`, on an allow only.
    /// A reject or a challenge carries none, whatever the rule says, so a front end that
    /// encodes what this returns cannot put a group on a refusal.
    pub fn reply(&self) -> Option<&mfa_config::ReplyAttributes> {
        if self.outcome != Outcome::Allow {
            return None;
        }
        self.rule.as_ref()?.reply.as_deref()
    }

    /// Locked out, the user or this address: PAM answers PAM_MAXTRIES.
    pub fn is_locked(&self) -> bool {
        matches!(
            self.reason,
            Reason::Locked { .. } | Reason::SourceLocked { .. }
        )
    }
}

/// What the user is told when denied.
pub fn user_message(reason: &Reason) -> String {
    match reason {
        Reason::WrongCode => "Wrong verification code.".into(),
        Reason::ReplayedCode => "That code was already used; wait for the next code and try again.".into(),
        Reason::MissingCode => "A verification code is required.".into(),
        Reason::Locked { until } => format!(
            "Too many wrong codes: this account is locked until {}. Your administrator can unlock it sooner.",
            format_utc(*until)
        ),
        Reason::SourceLocked { until } => format!(
            "Too many wrong codes from this address: try again after {}, or from another network.",
            format_utc(*until)
        ),
        Reason::NotEnrolled => "Multi-factor authentication is required for this account, but no authenticator app is enrolled. Contact your administrator.".into(),
        Reason::WrongPassword => "Wrong password or code.".into(),
        Reason::PushDenied => "The sign-in was denied on your phone.".into(),
        Reason::PushExpired => {
            "The sign-in request expired before it was approved; try again.".into()
        }
        Reason::PushFraud => "The sign-in was reported as not yours: approvals on your phone are blocked for a while. Contact your administrator if this was a mistake.".into(),
        Reason::PushUndeliverable => {
            "Your phone could not be reached; enter your verification code instead.".into()
        }
        Reason::PushUsed => {
            "That approval was used already; start a new sign-in.".into()
        }
        Reason::PushWaiting => "Waiting for approval on your phone.".into(),
        Reason::PushRefused(r) => push_refusal_message(*r),
        Reason::RuleDenied => "You may not sign in here. Contact your administrator if you need to.".into(),
        Reason::PushRequired => "This sign-in must be approved on your phone; a typed code is not accepted here.".into(),
        other => other.to_string(),
    }
}

/// The facts one decision rests on. `groups` need only be filled where the policy uses them
/// (`PolicyConfig::uses_groups`: `exempt_groups`, or a rule matching on groups).
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub user: &'a UserName,
    pub client: ClientAddr,
    /// What asks: an unlock applies only to the services `[policy] remember_for` names.
    pub service: &'a Service,
    pub now: i64,
    pub record: Option<&'a UserRecord>,
    pub groups: &'a [String],
    /// The request must prove the key whatever else would let it in (the portal's sign-in
    /// to "My account": a trusted or remembered network, an exemption or a grace period
    /// must not stand in for the code that manages the account, or an unlock could renew
    /// itself). Only an enrolled user may then go on to the code; the locks hold as ever.
    pub code_always: bool,
}

/// When a not-yet-enrolled user's grace ends: `grace_days` after the later of go-live and
/// the user's first appearance (or the stored start, once there is one). `None` while the
/// roll-out is not scheduled (`enforce_from = "never"`): there is no deadline.
pub fn grace_deadline(record: Option<&UserRecord>, cfg: &Config, now: i64) -> Option<i64> {
    let go_live = match cfg.policy.enforce_from {
        GoLive::Now => i64::MIN,
        GoLive::At(t) => t.0,
        GoLive::Never => return None,
    };
    let start = match record.and_then(|r| r.grace_started) {
        Some(s) => s,
        None => record.map_or(now, |r| r.first_seen).max(go_live),
    };
    Some(start.saturating_add(i64::from(cfg.policy.grace_days) * DAY))
}

/// Whole days from `now` until `t`, a started day counting as one; 0 once `t` has come.
/// The one count of days to a date (go-live, a grace deadline) that users and
/// administrators are told.
pub fn days_until(t: i64, now: i64) -> i64 {
    t.saturating_sub(now)
        .saturating_add(DAY - 1)
        .div_euclid(DAY)
        .max(0)
}

/// The first `[[policy.rules]]` entry that matches the request, if any.
pub fn matching_rule(f: &Facts<'_>, cfg: &Config) -> Option<RuleMatch> {
    cfg.policy
        .rules
        .iter()
        .enumerate()
        .find(|(_, r)| rule_matches(r, f))
        .map(|(index, r)| RuleMatch {
            index,
            name: r.name.clone(),
            action: r.action,
            reply: r.reply.clone().map(Box::new),
        })
}

/// Whether every match key `r` sets matches (a list: any of its entries). A key left out
/// matches anything; `match_all` alone matches every login.
fn rule_matches(r: &PolicyRule, f: &Facts<'_>) -> bool {
    if r.match_all {
        return true;
    }
    if !r.has_match() {
        // Validation refuses it; a rule that says nothing matches nothing.
        return false;
    }
    let service = match f.service {
        Service::Pam(s) | Service::Other(s) => Some(s.as_str()),
        Service::RemotePam { service, .. } => service.as_deref(),
        Service::Radius { .. } => None,
    };
    let client = match f.service {
        Service::Radius { client, .. } | Service::RemotePam { client, .. } => Some(client.as_str()),
        Service::Pam(_) | Service::Other(_) => None,
    };
    let named = |list: &[String], name: Option<&str>| {
        list.is_empty() || name.is_some_and(|n| list.iter().any(|e| e == n))
    };
    named(&r.services, service)
        && named(&r.radius_clients, client)
        && (r.groups.is_empty() || f.groups.iter().any(|g| r.groups.contains(g)))
        && (r.networks.is_empty()
            || f.client
                .ip()
                .is_some_and(|ip| r.networks.iter().any(|n| n.contains(&ip))))
        && (!r.local || f.client == ClientAddr::Local)
}

/// The decision before any code is seen: the first matching `[[policy.rules]]` entry's
/// action, then trusted networks, exemptions, locks, unlocks, enrolment and the roll-out.
/// A rule asking for a code (or a push) takes away what would let the login in without one
/// (a trusted network, a local login, an exemption, an unlock unless it says `remembered`),
/// and nothing else: a lock still refuses, and a user who is not enrolled goes through the
/// roll-out (go-live, grace) as from an untrusted network.
pub fn decide(f: &Facts<'_>, cfg: &Config) -> Decision {
    let rule = matching_rule(f, cfg);
    let mut d = decide_by(f, cfg, rule.as_ref());
    d.rule = rule;
    d
}

fn decide_by(f: &Facts<'_>, cfg: &Config, rule: Option<&RuleMatch>) -> Decision {
    let p = &cfg.policy;
    let action = rule.map(|r| r.action);
    if action == Some(RuleAction::Deny) {
        return Decision::deny(Reason::RuleDenied);
    }
    // A rule asking for a code (or a push): nothing but the code (or the push) lets in.
    let strict = matches!(action, Some(RuleAction::Code | RuleAction::Push));
    let unlock_kept = rule.is_some_and(|r| {
        r.action == RuleAction::Code && p.rules.get(r.index).is_some_and(|e| e.remembered)
    });
    let enrolled = f.record.is_some_and(UserRecord::enrolled);
    let trusted = match f.client {
        ClientAddr::Remote(Some(ip)) => trusted_match(&ip, &p.trusted_networks).is_some(),
        ClientAddr::Remote(None) => false,
        ClientAddr::Local => false,
    };
    let may_enrol_here = match p.self_enroll {
        SelfEnroll::Never => false,
        SelfEnroll::Trusted => trusted,
        SelfEnroll::Anywhere => true,
    };

    // Whether anything but the code may let this request in (see `Facts::code_always`).
    let waivable = !f.code_always;
    if !waivable && !enrolled {
        return Decision::deny(Reason::NotEnrolled);
    }
    // A user lock holds on trusted networks too only where configured.
    if cfg.lockout.lock_trusted
        && let Some(until) = f.record.and_then(|r| r.locked(f.now))
    {
        return Decision::deny(Reason::Locked { until });
    }
    // 0. A rule's "none": in as from a trusted network (the lock above as there).
    if action == Some(RuleAction::NoCode) && waivable {
        let mut d = Decision::allow(Reason::RuleNoCode);
        d.offer_enrolment = !enrolled && may_enrol_here;
        return d;
    }
    // The waivers below are for requests no rule asks a code (or a push) of.
    let waivable_unlock = waivable && (!strict || unlock_kept);
    let waivable = waivable && !strict;
    // 1. Trusted network (and, where configured, local logins).
    if trusted && waivable {
        let mut d = Decision::allow(Reason::TrustedNetwork);
        d.offer_enrolment = !enrolled && may_enrol_here;
        return d;
    }
    if waivable && f.client == ClientAddr::Local && p.local_logins == LocalLogins::Trusted {
        return Decision::allow(Reason::LocalLogin);
    }
    // 2. Exempt users and groups. An entry means the user its canonical name names
    // (`Backup` and `CONTOSO\backup` are `backup` where the rules say so); an entry without
    // one names nobody (configuration validation refuses it).
    let rules = cfg.users.rules();
    if waivable
        && p.exempt_users
            .iter()
            .any(|u| UserName::canonical(u, &rules).is_ok_and(|u| u == *f.user))
    {
        return Decision::allow(Reason::ExemptUser);
    }
    if waivable && f.groups.iter().any(|g| p.exempt_groups.contains(g)) {
        return Decision::allow(Reason::ExemptGroup);
    }
    // 5 before 3: a locked user is refused before a code is even asked for.
    if let Some(until) = f.record.and_then(|r| r.locked(f.now)) {
        return Decision::deny(Reason::Locked { until });
    }
    // Then this address, locked out for this user before the user is.
    if let (Some(ip), Some(r)) = (f.client.ip(), f.record)
        && let Some(until) = r.source_locked(&ip.to_string(), f.now)
    {
        return Decision::deny(Reason::SourceLocked { until });
    }
    // A remembered network: this enrolled user unlocked this very address (an IP literal,
    // never a host name) on the portal with a code, within `remember`, and this login is
    // of a kind the unlock is for (`remember_for`: by default only the gateways that cannot
    // ask for a code). After the locks, so a locked user or address stays refused.
    if let (Some(ip), Some(r)) = (f.client.ip(), f.record)
        && waivable_unlock
        && unlock_applies(f.service, cfg)
        && r.unlocked(&ip.to_string(), f.now, p.remember.secs_i64())
            .is_some()
    {
        return Decision::allow(Reason::RememberedNetwork);
    }
    // 3. Enrolled: a code.
    if enrolled {
        return Decision::need_code();
    }
    // 4. Not enrolled: go-live and grace. No deadline: the roll-out is not scheduled.
    let deadline = grace_deadline(f.record, cfg, f.now);
    let reason = match deadline {
        None => Some(Reason::BeforeGoLive { days_left: None }),
        Some(deadline) => {
            // At least one: a deadline a stored grace start put before go-live (the date
            // moved later since) is still told as a day to go.
            let days_left = days_until(deadline, f.now).max(1);
            if p.enforce_from.is_before(f.now) {
                Some(Reason::BeforeGoLive {
                    days_left: Some(days_left),
                })
            } else if f.now < deadline {
                Some(Reason::GracePeriod { days_left })
            } else {
                None
            }
        }
    };
    if let Some(reason) = reason {
        let how = if may_enrol_here {
            "you can enrol an authenticator app now"
        } else if p.self_enroll == SelfEnroll::Never {
            "ask your administrator to enrol your authenticator app"
        } else {
            "log in from the office network to enrol your authenticator app, or ask your administrator"
        };
        let message = match (deadline, &reason) {
            (Some(deadline), Reason::BeforeGoLive { days_left: Some(n) })
            | (Some(deadline), Reason::GracePeriod { days_left: n }) => format!(
                "MFA becomes required for this account in {n} day(s) ({}); {how}.",
                format_utc(deadline)
            ),
            // Not scheduled: no date and no day count to tell.
            _ => format!("MFA is not required for this account yet; {how}."),
        };
        return Decision {
            outcome: Outcome::Allow,
            reason,
            message: Some(message),
            offer_enrolment: may_enrol_here,
            rule: None,
        };
    }
    // Past the deadline: a temporary-access code (the administrator's way in for a user
    // without a key) is the only way in. Backup codes are a second factor of a key: with
    // no key enrolled they let nobody in (codes minted before an unlink stay dead).
    if f.record
        .is_some_and(|r| r.usable_codes(OtcKind::Temporary, f.now) > 0)
    {
        return Decision::need_code();
    }
    Decision::deny(Reason::NotEnrolled)
}

/// Whether an unlock made on the portal lets a login of `service` in without a code:
/// `[policy] remember_for` names the kinds of login it is for (by default only RADIUS
/// clients in code-only mode, which cannot ask for a code). Nothing it does not name.
pub fn unlock_applies(service: &Service, cfg: &Config) -> bool {
    cfg.policy.remember_for.iter().any(|e| match (e, service) {
        (RememberFor::CodeOnly, Service::Radius { code_only, .. }) => *code_only,
        (
            RememberFor::Radius(name),
            Service::Radius { client, .. } | Service::RemotePam { client, .. },
        ) => name == client,
        (RememberFor::Pam(name), Service::Pam(s))
        | (
            RememberFor::Pam(name),
            Service::RemotePam {
                service: Some(s), ..
            },
        ) => name == s,
        _ => false,
    })
}

/// What an unlock lets in, from `[policy] remember_for` and this configuration's RADIUS
/// clients: for the portal to tell the user before the unlock, in their words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnlockScope {
    /// `code-only` is listed: the gateways that cannot ask for a code, with the names of
    /// the code-only RADIUS clients this configuration lists (none where it lists none).
    pub code_only: Option<Vec<String>>,
    /// RADIUS clients named one by one (`radius:NAME`).
    pub radius: Vec<String>,
    /// PAM services (`pam:SERVICE`).
    pub pam: Vec<String>,
}

impl UnlockScope {
    pub fn of(cfg: &Config) -> Self {
        let mut scope = UnlockScope::default();
        for e in &cfg.policy.remember_for {
            match e {
                RememberFor::CodeOnly => {
                    let r = &cfg.radius;
                    scope.code_only = Some(
                        r.clients
                            .iter()
                            .filter(|c| r.settings_for(c).mode == RadiusMode::CodeOnly)
                            .map(|c| c.name.clone())
                            .collect(),
                    );
                }
                RememberFor::Radius(n) => scope.radius.push(n.clone()),
                RememberFor::Pam(s) => scope.pam.push(s.clone()),
            }
        }
        scope
    }

    /// No login is let in by an unlock (`remember_for = []`).
    pub fn is_empty(&self) -> bool {
        self.code_only.is_none() && self.radius.is_empty() && self.pam.is_empty()
    }
}

/// Where a user stands in the roll-out, through the same decision the logins use (seen as
/// an untrusted remote login, the case MFA is for), and the grace deadline of a user who is
/// not enrolled.
pub fn rollout_status(
    rec: &UserRecord,
    cfg: &Config,
    groups: &[String],
    now: i64,
) -> (RolloutStatus, Option<i64>) {
    let facts = Facts {
        user: &rec.name,
        client: ClientAddr::Remote(None),
        service: &Service::Other("report".into()),
        now,
        record: Some(rec),
        groups,
        code_always: false,
    };
    // A rule refusing the user (a group kept off a service) says nothing of the roll-out:
    // the report shows where the user stands with the key, not "overdue".
    let rule = matching_rule(&facts, cfg).filter(|r| r.action != RuleAction::Deny);
    let d = decide_by(&facts, cfg, rule.as_ref());
    let deadline = if rec.enrolled() {
        None
    } else {
        grace_deadline(Some(rec), cfg, now)
    };
    let s = match (&d.reason, d.outcome) {
        (Reason::ExemptUser | Reason::ExemptGroup, _) => RolloutStatus::Exempt,
        (Reason::Locked { .. }, _) => RolloutStatus::Locked {
            enrolled: rec.enrolled(),
        },
        (Reason::BeforeGoLive { .. }, _) => RolloutStatus::BeforeGoLive,
        (Reason::GracePeriod { days_left }, _) => RolloutStatus::Grace {
            days_left: *days_left,
        },
        (_, Outcome::NeedCode) if rec.enrolled() => RolloutStatus::Enrolled,
        (_, Outcome::NeedCode) => RolloutStatus::TemporaryAccess,
        _ => RolloutStatus::Overdue,
    };
    (s, deadline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfa_config::Instant;
    use mfa_model::SealedSecret;

    const NOW: i64 = 1_800_000_000;

    fn cfg() -> Config {
        let mut c = Config::default();
        c.policy.trusted_networks = vec![
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        c.policy.exempt_users = vec!["backup".into()];
        c.policy.exempt_groups = vec!["svc".into()];
        c.policy.grace_days = 14;
        c
    }

    fn rec(enrolled: bool) -> UserRecord {
        let mut r = UserRecord::new(
            &UserName::parse("alice").unwrap(),
            cfg().totp.params(),
            NOW - 100 * DAY,
        );
        if enrolled {
            r.secret = Some(SealedSecret::from_stored(vec![7; 20]));
        }
        r
    }

    /// A RADIUS client in code-only mode (RD Gateway): what an unlock is for by default.
    fn gateway() -> Service {
        Service::Radius {
            client: "rd-gateway".into(),
            code_only: true,
        }
    }

    fn d(user: &str, client: ClientAddr, now: i64, r: Option<&UserRecord>, c: &Config) -> Decision {
        ds(&gateway(), user, client, now, r, c)
    }

    fn ds(
        service: &Service,
        user: &str,
        client: ClientAddr,
        now: i64,
        r: Option<&UserRecord>,
        c: &Config,
    ) -> Decision {
        decide(
            &Facts {
                user: &UserName::parse(user).unwrap(),
                client,
                service,
                now,
                record: r,
                groups: &[],
                code_always: false,
            },
            c,
        )
    }

    fn remote(s: &str) -> ClientAddr {
        ClientAddr::Remote(Some(s.parse().unwrap()))
    }

    /// Days to a date, as users and administrators are told: a started day is one, a date
    /// that has come is 0.
    #[test]
    fn days_until_counts_started_days() {
        assert_eq!(days_until(NOW + 1, NOW), 1);
        assert_eq!(days_until(NOW + DAY, NOW), 1);
        assert_eq!(days_until(NOW + DAY + 1, NOW), 2);
        assert_eq!(days_until(NOW, NOW), 0);
        assert_eq!(days_until(NOW - 5 * DAY, NOW), 0);
        assert_eq!(days_until(i64::MAX, i64::MIN), i64::MAX / DAY);
    }

    #[test]
    fn trusted_and_untrusted() {
        let c = cfg();
        let r = rec(true);
        assert_eq!(
            d("alice", remote("10.1.2.3"), NOW, Some(&r), &c).reason,
            Reason::TrustedNetwork
        );
        assert_eq!(
            d("alice", remote("2001:db8::5"), NOW, Some(&r), &c).reason,
            Reason::TrustedNetwork
        );
        assert_eq!(
            d("alice", remote("11.1.2.3"), NOW, Some(&r), &c).outcome,
            Outcome::NeedCode
        );
        assert_eq!(
            d("alice", ClientAddr::Remote(None), NOW, Some(&r), &c).outcome,
            Outcome::NeedCode
        );
        assert_eq!(
            d("alice", ClientAddr::Local, NOW, Some(&r), &c).outcome,
            Outcome::NeedCode
        );
        let mut c2 = cfg();
        c2.policy.local_logins = LocalLogins::Trusted;
        assert_eq!(
            d("alice", ClientAddr::Local, NOW, Some(&r), &c2).reason,
            Reason::LocalLogin
        );
        assert_eq!(
            d("alice", ClientAddr::Remote(None), NOW, Some(&r), &c2).outcome,
            Outcome::NeedCode
        );
    }

    #[test]
    fn exempt_users_and_groups() {
        let c = cfg();
        assert_eq!(
            d("backup", remote("11.1.1.1"), NOW, None, &c).reason,
            Reason::ExemptUser
        );
        let groups = vec!["users".to_string(), "svc".to_string()];
        // Entries compare by their canonical names.
        let mut c2 = cfg();
        c2.users.domains = vec!["CONTOSO".into()];
        c2.policy.exempt_users = vec!["CONTOSO\\Backup".into(), "OTHER\\svc".into()];
        assert_eq!(
            d("backup", remote("11.1.1.1"), NOW, None, &c2).reason,
            Reason::ExemptUser
        );
        assert_ne!(
            d("svc", remote("11.1.1.1"), NOW, None, &c2).reason,
            Reason::ExemptUser
        );
        c2.users.case = mfa_config::NameCase::Exact;
        assert_ne!(
            d("backup", remote("11.1.1.1"), NOW, None, &c2).reason,
            Reason::ExemptUser
        );
        let f = Facts {
            user: &UserName::parse("svc1").unwrap(),
            client: remote("11.1.1.1"),
            service: &gateway(),
            now: NOW,
            record: None,
            groups: &groups,
            code_always: false,
        };
        assert_eq!(decide(&f, &c).reason, Reason::ExemptGroup);
    }

    #[test]
    fn locked_users_are_refused_before_a_code() {
        let c = cfg();
        let mut r = rec(true);
        r.locked_until = Some(NOW + 60);
        let dd = d("alice", remote("11.1.1.1"), NOW, Some(&r), &c);
        assert!(dd.is_locked());
        assert_eq!(
            d("alice", remote("11.1.1.1"), NOW + 60, Some(&r), &c).outcome,
            Outcome::NeedCode
        );
    }

    #[test]
    fn go_live_and_grace_with_pinned_clock() {
        let mut c = cfg();
        let go_live = NOW + 10 * DAY;
        c.policy.enforce_from = GoLive::At(Instant(go_live));
        let r = rec(false); // first seen long before go-live

        // Before go-live: allowed, told the deadline (go-live + 14 days = 24 days).
        let before = d("alice", remote("11.1.1.1"), NOW, Some(&r), &c);
        assert_eq!(
            before.reason,
            Reason::BeforeGoLive {
                days_left: Some(24)
            }
        );
        assert!(before.message.as_deref().unwrap().contains("in 24 day(s)"));

        // Inside grace: 3 days after go-live, 11 days left.
        let inside = d("alice", remote("11.1.1.1"), go_live + 3 * DAY, Some(&r), &c);
        assert_eq!(inside.reason, Reason::GracePeriod { days_left: 11 });
        assert!(inside.is_allowed());

        // One second before the deadline: still allowed, 1 day left.
        let deadline = go_live + 14 * DAY;
        assert_eq!(
            d("alice", remote("11.1.1.1"), deadline - 1, Some(&r), &c).reason,
            Reason::GracePeriod { days_left: 1 }
        );
        // At the deadline and after: refused, told to contact the administrator.
        for t in [deadline, deadline + 30 * DAY] {
            let late = d("alice", remote("11.1.1.1"), t, Some(&r), &c);
            assert_eq!(late.reason, Reason::NotEnrolled);
            assert!(
                late.message
                    .as_deref()
                    .unwrap()
                    .contains("Contact your administrator")
            );
        }
    }

    #[test]
    fn go_live_never_lets_unenrolled_users_in_for_ever_and_asks_enrolled_ones_for_a_code() {
        let mut c = cfg();
        c.policy.enforce_from = GoLive::Never;
        c.policy.grace_days = 0;
        let r = rec(false);
        for (t, record) in [(NOW, Some(&r)), (NOW + 10_000 * DAY, Some(&r)), (NOW, None)] {
            let dd = d("alice", remote("11.1.1.1"), t, record, &c);
            assert_eq!(dd.reason, Reason::BeforeGoLive { days_left: None });
            assert_eq!(dd.reason.code(), "before_go_live");
            assert!(dd.is_allowed());
            let m = dd.message.as_deref().unwrap();
            assert!(
                m.contains("MFA is not required for this account yet"),
                "{m}"
            );
            assert!(m.contains("enrol"), "{m}");
            assert!(!m.contains("day"), "no day count: {m}");
        }
        // How to enrol follows self_enroll, as before go-live.
        let m = d("alice", remote("11.1.1.1"), NOW, Some(&r), &c)
            .message
            .unwrap();
        assert!(m.contains("log in from the office network"), "{m}");
        let dd = d("alice", remote("10.1.1.1"), NOW, Some(&r), &c);
        assert_eq!(dd.reason, Reason::TrustedNetwork);
        assert!(dd.offer_enrolment);
        // An enrolled user still needs the code.
        assert_eq!(
            d("alice", remote("11.1.1.1"), NOW, Some(&rec(true)), &c).outcome,
            Outcome::NeedCode
        );
        // No deadline, in the roll-out view too.
        assert_eq!(grace_deadline(Some(&r), &c, NOW), None);
        assert_eq!(
            rollout_status(&r, &c, &[], NOW),
            (RolloutStatus::BeforeGoLive, None)
        );
        // The same user with the key absent (enforced now) and no grace: refused.
        let mut now = c.clone();
        now.policy.enforce_from = GoLive::Now;
        assert_eq!(
            d("alice", remote("11.1.1.1"), NOW, Some(&r), &now).reason,
            Reason::NotEnrolled
        );
    }

    #[test]
    fn grace_counts_from_first_appearance_after_go_live() {
        let mut c = cfg();
        c.policy.enforce_from = GoLive::At(Instant(NOW - 100 * DAY));
        // A user never seen before starts the grace now.
        assert_eq!(
            d("new", remote("11.1.1.1"), NOW, None, &c).reason,
            Reason::GracePeriod { days_left: 14 }
        );
        // A stored start wins over first appearance.
        let mut r = rec(false);
        r.grace_started = Some(NOW - 13 * DAY);
        assert_eq!(
            d("alice", remote("11.1.1.1"), NOW, Some(&r), &c).reason,
            Reason::GracePeriod { days_left: 1 }
        );
        // No go-live and no grace: enforced now.
        let mut strict = cfg();
        strict.policy.grace_days = 0;
        assert_eq!(
            d("new", remote("11.1.1.1"), NOW, None, &strict).reason,
            Reason::NotEnrolled
        );
    }

    #[test]
    fn after_deadline_temporary_access_asks_for_a_code() {
        let mut c = cfg();
        c.policy.grace_days = 0;
        let mut r = rec(false);
        r.codes.push(mfa_model::OneTimeCode {
            kind: OtcKind::Temporary,
            scheme: mfa_model::OtcHash::Argon2idV2,
            salt: [0; 16],
            hash: [0; 32],
            created: NOW,
            expires: Some(NOW + 3600),
            uses_left: 1,
        });
        assert_eq!(
            d("alice", remote("11.1.1.1"), NOW, Some(&r), &c).outcome,
            Outcome::NeedCode
        );
        assert_eq!(
            d("alice", remote("11.1.1.1"), NOW + 3600, Some(&r), &c).reason,
            Reason::NotEnrolled
        );
    }

    #[test]
    fn remembered_networks_let_that_user_in_from_that_address_only() {
        let mut c = cfg();
        c.policy.remember = mfa_config::Span::secs(8 * 3600);
        let mut r = rec(true);
        r.mfa_changed = Some(NOW - DAY);
        r.unlocks.push(mfa_model::Unlock {
            ip: "192.0.2.7".into(),
            created: NOW - 60,
            expires: NOW - 60 + 8 * 3600,
        });
        let at = |ip: &str, now: i64, r: &UserRecord, c: &Config| {
            d("alice", remote(ip), now, Some(r), c)
        };
        assert_eq!(
            at("192.0.2.7", NOW, &r, &c).reason,
            Reason::RememberedNetwork
        );
        assert!(at("192.0.2.7", NOW, &r, &c).is_allowed());
        // Another address, a local login, an unknown address: a code as before.
        assert_eq!(at("192.0.2.8", NOW, &r, &c).outcome, Outcome::NeedCode);
        assert_eq!(
            d("alice", ClientAddr::Local, NOW, Some(&r), &c).outcome,
            Outcome::NeedCode
        );
        assert_eq!(
            d("alice", ClientAddr::Remote(None), NOW, Some(&r), &c).outcome,
            Outcome::NeedCode
        );
        // Another user's record holds no unlock of alice's.
        assert_eq!(
            at("192.0.2.7", NOW, &rec(true), &c).outcome,
            Outcome::NeedCode
        );
        // Expired, turned off, shortened.
        assert_eq!(
            at("192.0.2.7", NOW + 8 * 3600, &r, &c).outcome,
            Outcome::NeedCode
        );
        let mut off = c.clone();
        off.policy.remember = mfa_config::Span::secs(0);
        assert_eq!(at("192.0.2.7", NOW, &r, &off).outcome, Outcome::NeedCode);
        let mut short = c.clone();
        short.policy.remember = mfa_config::Span::secs(30);
        assert_eq!(at("192.0.2.7", NOW, &r, &short).outcome, Outcome::NeedCode);
        // A key changed (or removed) since the unlock ends it.
        let mut changed = r.clone();
        changed.mfa_changed = Some(NOW - 30);
        assert_eq!(
            at("192.0.2.7", NOW, &changed, &c).outcome,
            Outcome::NeedCode
        );
        let mut unlinked = r.clone();
        unlinked.secret = None;
        assert_ne!(
            at("192.0.2.7", NOW, &unlinked, &c).reason,
            Reason::RememberedNetwork
        );
        // A locked user stays locked.
        let mut locked = r.clone();
        locked.locked_until = Some(NOW + 60);
        assert!(at("192.0.2.7", NOW, &locked, &c).is_locked());
    }

    fn otc(kind: OtcKind) -> mfa_model::OneTimeCode {
        mfa_model::OneTimeCode {
            kind,
            scheme: mfa_model::OtcHash::Argon2idV2,
            salt: [0; 16],
            hash: [0; 32],
            created: NOW - 60,
            expires: (kind == OtcKind::Temporary).then_some(NOW + 3600),
            uses_left: 1,
        }
    }

    /// Backup codes are a second factor of a key: a user without one (never enrolled, or
    /// unlinked, with a set minted before) past the deadline is refused, not asked for a
    /// code. A temporary-access code is the way in for exactly that user.
    #[test]
    fn backup_codes_are_no_way_in_without_a_key() {
        let mut c = cfg();
        c.policy.grace_days = 0;
        let mut r = rec(false);
        r.codes = vec![otc(OtcKind::Backup), otc(OtcKind::Backup)];
        let dd = d("alice", remote("11.1.1.1"), NOW, Some(&r), &c);
        assert_eq!(dd.reason, Reason::NotEnrolled);
        assert_eq!(
            rollout_status(&r, &c, &[], NOW).0,
            RolloutStatus::Overdue,
            "no temporary access either"
        );
        r.codes.push(otc(OtcKind::Temporary));
        assert_eq!(
            d("alice", remote("11.1.1.1"), NOW, Some(&r), &c).outcome,
            Outcome::NeedCode
        );
        // Enrolled: a code, whatever codes there are.
        let mut e = rec(true);
        e.codes = vec![otc(OtcKind::Backup)];
        assert_eq!(
            d("alice", remote("11.1.1.1"), NOW, Some(&e), &c).outcome,
            Outcome::NeedCode
        );
    }

    /// An unlock made on the portal lets in only the logins `remember_for` names: by default
    /// RADIUS clients in code-only mode, never a PAM login (SSH, sudo) or a RADIUS client
    /// that can ask for a code (append, challenge) from the same address.
    #[test]
    fn an_unlock_lets_in_only_the_services_it_is_made_for() {
        let mut c = cfg();
        c.policy.remember = mfa_config::Span::secs(8 * 3600);
        let mut r = rec(true);
        r.unlocks.push(mfa_model::Unlock {
            ip: "192.0.2.7".into(),
            created: NOW - 60,
            expires: NOW - 60 + 8 * 3600,
        });
        let sshd = Service::Pam("sshd".into());
        let sudo = Service::Pam("sudo".into());
        let vpn = Service::Radius {
            client: "vpn".into(),
            code_only: false,
        };
        let web1_sshd = Service::RemotePam {
            address: None,
            client: "hosts".into(),
            host: "web1".into(),
            service: Some("sshd".into()),
        };
        let web1_none = Service::RemotePam {
            address: None,
            client: "hosts".into(),
            host: "web1".into(),
            service: None,
        };
        let mfactl = Service::Other("mfactl".into());
        let at = |s: &Service, c: &Config| ds(s, "alice", remote("192.0.2.7"), NOW, Some(&r), c);
        assert_eq!(at(&gateway(), &c).reason, Reason::RememberedNetwork);
        for s in [&sshd, &sudo, &vpn, &web1_sshd, &web1_none, &mfactl] {
            assert_eq!(at(s, &c).outcome, Outcome::NeedCode, "{s}");
        }
        // remember_for names more.
        let mut more = c.clone();
        more.policy.remember_for = vec![
            RememberFor::CodeOnly,
            RememberFor::Pam("sshd".into()),
            RememberFor::Radius("vpn".into()),
        ];
        for s in [&gateway(), &sshd, &vpn, &web1_sshd] {
            assert_eq!(at(s, &more).reason, Reason::RememberedNetwork, "{s}");
        }
        for s in [&sudo, &web1_none, &mfactl] {
            assert_eq!(at(s, &more).outcome, Outcome::NeedCode, "{s}");
        }
        // A PAM host's client named whole: every PAM login it sends.
        let mut host = c.clone();
        host.policy.remember_for = vec![RememberFor::Radius("hosts".into())];
        assert_eq!(at(&web1_none, &host).reason, Reason::RememberedNetwork);
        assert_eq!(at(&gateway(), &host).outcome, Outcome::NeedCode);
        // Nothing named: no unlock lets anyone in.
        let mut none = c.clone();
        none.policy.remember_for = Vec::new();
        assert_eq!(at(&gateway(), &none).outcome, Outcome::NeedCode);
        // What the portal shows follows the same list.
        assert!(UnlockScope::of(&none).is_empty());
        let scope = UnlockScope::of(&more);
        assert_eq!(scope.code_only, Some(vec![]));
        assert_eq!(
            (scope.radius, scope.pam),
            (vec!["vpn".to_string()], vec!["sshd".to_string()])
        );
    }

    /// An unlock stamped in the future (a node whose clock runs ahead made it) is not
    /// honoured: from its stamp it would last past `remember` from now. A write of the
    /// record makes it an unlock of now, for at most `remember`.
    #[test]
    fn an_unlock_from_the_future_lasts_no_longer_than_remember_from_now() {
        let mut c = cfg();
        c.policy.remember = mfa_config::Span::secs(8 * 3600);
        let mut r = rec(true);
        let skew = 10 * DAY;
        r.unlocks.push(mfa_model::Unlock {
            ip: "192.0.2.7".into(),
            created: NOW + skew,
            expires: NOW + skew + 8 * 3600,
        });
        let at = |now: i64, r: &UserRecord| d("alice", remote("192.0.2.7"), now, Some(r), &c);
        for t in [NOW, NOW + 8 * 3600, NOW + skew - 1] {
            assert_eq!(at(t, &r).outcome, Outcome::NeedCode, "at {t}");
        }
        let mut clamped = r.clone();
        assert!(clamped.clamp_future_unlocks(NOW, 8 * 3600));
        assert_eq!(at(NOW, &clamped).reason, Reason::RememberedNetwork);
        assert_eq!(
            at(NOW + 8 * 3600 - 1, &clamped).reason,
            Reason::RememberedNetwork
        );
        for t in [NOW + 8 * 3600, NOW + skew, NOW + skew + 60] {
            assert_eq!(at(t, &clamped).outcome, Outcome::NeedCode, "at {t}");
        }
        assert!(!clamped.clamp_future_unlocks(NOW + 60, 8 * 3600), "once");
    }

    #[test]
    fn self_enrolment_offers() {
        let c = cfg();
        let r = rec(false);
        assert!(d("alice", remote("10.1.1.1"), NOW, Some(&r), &c).offer_enrolment);
        assert!(!d("alice", remote("11.1.1.1"), NOW, None, &c).offer_enrolment);
        assert!(!d("alice", remote("10.1.1.1"), NOW, Some(&rec(true)), &c).offer_enrolment);
        let mut any = cfg();
        any.policy.self_enroll = SelfEnroll::Anywhere;
        assert!(d("alice", remote("11.1.1.1"), NOW, None, &any).offer_enrolment);
        let mut never = cfg();
        never.policy.self_enroll = SelfEnroll::Never;
        assert!(!d("alice", remote("10.1.1.1"), NOW, None, &never).offer_enrolment);
    }

    /// What a PAM host reads from an Access-Reject: every refusal the daemon can send comes
    /// back as itself; anything else (an allowing reason, a lock without its end, an end
    /// without a lock, an unknown code) is not understood.
    #[test]
    fn refusals_round_trip_through_their_codes() {
        for r in [
            Reason::CodeRequired,
            Reason::MissingCode,
            Reason::WrongCode,
            Reason::ReplayedCode,
            Reason::NotEnrolled,
            Reason::WrongPassword,
            Reason::InvalidUserName,
            Reason::UnsupportedMethod,
            Reason::MalformedPassword,
            Reason::MalformedStaticChallenge,
            Reason::UnknownState,
            Reason::StateMismatch,
            Reason::InternalError,
            Reason::RuleDenied,
            Reason::PushRequired,
        ] {
            assert_eq!(Reason::refusal_from_code(r.code(), None), Some(r.clone()));
            assert_eq!(Reason::refusal_from_code(r.code(), Some(5)), None, "{r:?}");
        }
        for r in [
            Reason::Locked { until: NOW },
            Reason::SourceLocked { until: NOW },
        ] {
            assert_eq!(
                Reason::refusal_from_code(r.code(), Some(NOW)),
                Some(r.clone())
            );
            assert_eq!(Reason::refusal_from_code(r.code(), None), None);
        }
        for code in [
            "trusted_network",
            "valid_code",
            "grace_period",
            "server_rejected",
            "rule_no_code",
            "no_such_reason",
            "",
        ] {
            assert_eq!(Reason::refusal_from_code(code, None), None, "{code}");
        }
    }

    /// Every push reason has its own stable code, its user message says what to do, and the
    /// refusals a daemon may send a PAM host read back as themselves (the timed ones with
    /// their end, like a lock).
    #[test]
    fn push_reasons_have_codes_messages_and_round_trip() {
        let timed = [
            Reason::PushRefused(PushRefusal::Blocked { until: NOW }),
            Reason::PushRefused(PushRefusal::RateLimited { until: NOW }),
        ];
        let plain = [
            Reason::PushDenied,
            Reason::PushExpired,
            Reason::PushFraud,
            Reason::PushUndeliverable,
            Reason::PushUsed,
            Reason::PushRefused(PushRefusal::Off),
            Reason::PushRefused(PushRefusal::NotAsked),
            Reason::PushRefused(PushRefusal::NoDevice),
            Reason::PushRefused(PushRefusal::AlreadyPending),
            Reason::PushRefused(PushRefusal::NoPortal),
        ];
        for r in &plain {
            assert_eq!(Reason::refusal_from_code(r.code(), None), Some(r.clone()));
            assert_eq!(Reason::refusal_from_code(r.code(), Some(5)), None, "{r:?}");
        }
        for r in &timed {
            assert_eq!(
                Reason::refusal_from_code(r.code(), Some(NOW)),
                Some(r.clone())
            );
            assert_eq!(Reason::refusal_from_code(r.code(), None), None);
            assert!(user_message(r).contains(&format_utc(NOW)), "{r:?}");
        }
        let codes: Vec<&str> = [
            Reason::PushApproved,
            Reason::PushDenied,
            Reason::PushExpired,
            Reason::PushFraud,
            Reason::PushUndeliverable,
        ]
        .iter()
        .map(Reason::code)
        .collect();
        assert_eq!(
            codes,
            [
                "push_approved",
                "push_denied",
                "push_expired",
                "push_fraud",
                "push_undeliverable"
            ]
        );
        assert_eq!(
            Reason::PushRefused(PushRefusal::Blocked { until: 1 }).code(),
            "push_blocked"
        );
        // What the user reads names no code, and tells what to do.
        assert!(user_message(&Reason::PushRefused(PushRefusal::NoDevice)).contains("portal"));
        assert!(user_message(&Reason::PushFraud).contains("administrator"));
        assert_eq!(
            Decision::deny(Reason::PushExpired).message.as_deref(),
            Some("The sign-in request expired before it was approved; try again.")
        );
    }

    fn rule(action: RuleAction, f: impl FnOnce(&mut PolicyRule)) -> PolicyRule {
        let mut r = PolicyRule {
            name: None,
            services: Vec::new(),
            radius_clients: Vec::new(),
            groups: Vec::new(),
            networks: Vec::new(),
            local: false,
            match_all: false,
            action,
            remembered: false,
            reply: None,
        };
        f(&mut r);
        r
    }

    fn dg(
        s: &Service,
        groups: &[String],
        client: ClientAddr,
        r: &UserRecord,
        c: &Config,
    ) -> Decision {
        decide(
            &Facts {
                user: &UserName::parse("alice").unwrap(),
                client,
                service: s,
                now: NOW,
                record: Some(r),
                groups,
                code_always: false,
            },
            c,
        )
    }

    /// The four examples of docs/RULES.md, decided: sudo needs a code from the office, the
    /// console needs none, contractors always need one, only vpn-users use the VPN client.
    /// The first matching rule decides and is named; without rules nothing changes.
    #[test]
    fn rules_first_match_wins_and_is_named() {
        let mut c = cfg();
        c.policy.local_logins = LocalLogins::Require;
        c.policy.rules = vec![
            rule(RuleAction::Code, |r| {
                r.name = Some("sudo-code".into());
                r.services = vec!["sudo".into()];
            }),
            rule(RuleAction::NoCode, |r| {
                r.services = vec!["login".into()];
                r.local = true;
            }),
            rule(RuleAction::Code, |r| r.groups = vec!["contractors".into()]),
            rule(RuleAction::NoCode, |r| {
                r.radius_clients = vec!["vpn".into()];
                r.groups = vec!["vpn-users".into()];
                r.networks = vec!["198.51.100.0/24".parse().unwrap()];
            }),
            rule(RuleAction::Deny, |r| r.radius_clients = vec!["vpn".into()]),
        ];
        let r = rec(true);
        let sudo = Service::Pam("sudo".into());
        let sshd = Service::Pam("sshd".into());
        let login = Service::Pam("login".into());
        let vpn = Service::Radius {
            client: "vpn".into(),
            code_only: false,
        };
        let office = remote("10.1.2.3");
        let none: Vec<String> = Vec::new();
        // sudo from the office: a code, naming the rule.
        let d = dg(&sudo, &none, office, &r, &c);
        assert_eq!(d.outcome, Outcome::NeedCode);
        let m = d.rule.clone().unwrap();
        assert_eq!((m.index, m.action), (0, RuleAction::Code));
        assert_eq!(m.to_string(), "policy.rules[0] \"sudo-code\"");
        // sshd from the office: no rule, the trusted network as before.
        let d = dg(&sshd, &none, office, &r, &c);
        assert_eq!((d.reason, d.rule), (Reason::TrustedNetwork, None));
        // The console: none; `login` from a remote host is no console.
        let d = dg(&login, &none, ClientAddr::Local, &r, &c);
        assert_eq!(d.reason, Reason::RuleNoCode);
        assert_eq!(d.rule.unwrap().to_string(), "policy.rules[1]");
        assert_eq!(
            dg(&login, &none, remote("11.1.1.1"), &r, &c).outcome,
            Outcome::NeedCode
        );
        // Contractors from the office, also when exempt by group: a code.
        let contractors = vec!["contractors".to_string(), "svc".to_string()];
        let d = dg(&sshd, &contractors, office, &r, &c);
        assert_eq!((d.outcome, d.rule.unwrap().index), (Outcome::NeedCode, 2));
        // The VPN: vpn-users from their pool in without a code, anyone else refused.
        let vpn_users = vec!["vpn-users".to_string()];
        let pool = remote("198.51.100.9");
        assert_eq!(
            dg(&vpn, &vpn_users, pool, &r, &c).reason,
            Reason::RuleNoCode
        );
        let d = dg(&vpn, &none, pool, &r, &c);
        assert_eq!(
            (d.outcome, d.reason.clone()),
            (Outcome::Deny, Reason::RuleDenied)
        );
        assert_eq!(d.rule.unwrap().index, 4);
        assert_eq!(
            dg(&vpn, &vpn_users, remote("11.1.1.1"), &r, &c).reason,
            Reason::RuleDenied
        );
        // A PAM host in remote mode: its service and its client both match.
        let web1_sudo = Service::RemotePam {
            address: None,
            client: "hosts".into(),
            host: "web1".into(),
            service: Some("sudo".into()),
        };
        assert_eq!(dg(&web1_sudo, &none, office, &r, &c).rule.unwrap().index, 0);
        // Without rules: as before.
        let plain = cfg();
        assert_eq!(
            dg(&sudo, &none, office, &r, &plain).reason,
            Reason::TrustedNetwork
        );
        assert_eq!(
            dg(&sshd, &contractors, remote("11.1.1.1"), &r, &plain).reason,
            Reason::ExemptGroup
        );
    }

    /// A rule's reply attributes ride on its allow only: a code still asked, a lock, or a
    /// login another rule decided carry none.
    #[test]
    fn reply_attributes_ride_on_an_allow_only() {
        let reply = mfa_config::ReplyAttributes {
            fortinet_group: Some("admins".into()),
            ..Default::default()
        };
        let mut c = cfg();
        c.policy.rules = vec![
            rule(RuleAction::NoCode, |r| {
                r.radius_clients = vec!["forti".into()];
                r.groups = vec!["vpn-admins".into()];
                r.networks = vec!["198.51.100.0/24".parse().unwrap()];
                r.reply = Some(reply.clone());
            }),
            rule(RuleAction::Code, |r| {
                r.radius_clients = vec!["forti".into()];
                r.groups = vec!["vpn-admins".into()];
                r.reply = Some(reply.clone());
            }),
        ];
        let forti = Service::Radius {
            client: "forti".into(),
            code_only: false,
        };
        let admins = vec!["vpn-admins".to_string()];
        let none: Vec<String> = Vec::new();
        let pool = remote("198.51.100.9");
        let d = dg(&forti, &admins, pool, &rec(true), &c);
        assert_eq!(d.outcome, Outcome::Allow);
        assert_eq!(d.reply(), Some(&reply));
        // The second rule asks a code: its decision is no allow yet.
        let d = dg(&forti, &admins, remote("11.1.1.1"), &rec(true), &c);
        assert_eq!(d.outcome, Outcome::NeedCode);
        assert!(d.rule.as_ref().unwrap().reply.is_some());
        assert_eq!(d.reply(), None);
        // A locked member from the pool: refused, nothing attached.
        let mut locked = rec(true);
        locked.locked_until = Some(NOW + 60);
        c.lockout.lock_trusted = true;
        let d = dg(&forti, &admins, pool, &locked, &c);
        assert_eq!(d.outcome, Outcome::Deny);
        assert_eq!(d.reply(), None);
        // A non-member matches neither rule.
        let d = dg(&forti, &none, pool, &rec(true), &c);
        assert_eq!((d.rule.is_none(), d.reply()), (true, None));
    }

    /// A rule asking for a code takes away the waivers, not the roll-out nor the locks; a
    /// deny refuses first; "none" waives as a trusted network, never the portal's code.
    #[test]
    fn rule_actions_and_what_they_leave_alone() {
        let mut c = cfg();
        c.policy.rules = vec![rule(RuleAction::Code, |r| r.match_all = true)];
        let sshd = Service::Pam("sshd".into());
        let none: Vec<String> = Vec::new();
        // Not enrolled, in the grace period, from the office: the roll-out still holds.
        let mut c2 = c.clone();
        c2.policy.enforce_from = GoLive::At(Instant(NOW - DAY));
        let d = dg(&sshd, &none, remote("10.1.1.1"), &rec(false), &c2);
        assert!(matches!(d.reason, Reason::GracePeriod { .. }), "{d:?}");
        // A locked user stays locked.
        let mut locked = rec(true);
        locked.locked_until = Some(NOW + 60);
        assert!(dg(&sshd, &none, remote("10.1.1.1"), &locked, &c).is_locked());
        // Deny before everything, the portal's sign-in included.
        let mut deny = cfg();
        deny.policy.rules = vec![rule(RuleAction::Deny, |r| {
            r.services = vec!["mfa-portal".into()]
        })];
        let portal = Service::Other("mfa-portal".into());
        let f = |code_always| {
            decide(
                &Facts {
                    user: &UserName::parse("alice").unwrap(),
                    client: remote("10.1.1.1"),
                    service: &portal,
                    now: NOW,
                    record: Some(&rec(true)),
                    groups: &[],
                    code_always,
                },
                &deny,
            )
        };
        assert_eq!(f(true).reason, Reason::RuleDenied);
        assert_eq!(f(false).reason, Reason::RuleDenied);
        // The roll-out report is not the login: a refusing rule does not make a user
        // "overdue", a rule asking a code makes an exempt group's member enrolled.
        let mut gone = cfg();
        gone.policy.rules = vec![rule(RuleAction::Deny, |r| r.groups = vec!["left".into()])];
        let left = vec!["left".to_string()];
        assert_eq!(
            rollout_status(&rec(true), &gone, &left, NOW).0,
            RolloutStatus::Enrolled
        );
        let svc = vec!["svc".to_string()];
        assert_eq!(
            rollout_status(&rec(true), &cfg(), &svc, NOW).0,
            RolloutStatus::Exempt
        );
        let mut strict = cfg();
        strict.policy.rules = vec![rule(RuleAction::Code, |r| r.groups = vec!["svc".into()])];
        assert_eq!(
            rollout_status(&rec(true), &strict, &svc, NOW).0,
            RolloutStatus::Enrolled
        );
        // "none" does not waive the portal's code.
        let mut open = cfg();
        open.policy.rules = vec![rule(RuleAction::NoCode, |r| {
            r.services = vec!["mfa-portal".into()]
        })];
        let d = decide(
            &Facts {
                user: &UserName::parse("alice").unwrap(),
                client: remote("11.1.1.1"),
                service: &portal,
                now: NOW,
                record: Some(&rec(true)),
                groups: &[],
                code_always: true,
            },
            &open,
        );
        assert_eq!(d.outcome, Outcome::NeedCode);
        // Push: a code is still what the policy asks, marked as only a push's.
        let mut push = cfg();
        push.policy.rules = vec![rule(RuleAction::Push, |r| r.services = vec!["sshd".into()])];
        let d = dg(&sshd, &none, remote("10.1.1.1"), &rec(true), &push);
        assert!(d.push_required(), "{d:?}");
        assert!(!dg(&sshd, &none, remote("10.1.1.1"), &rec(true), &c).push_required());
        // Front ends send it at once, as `push = "only"`; a service with push off keeps it
        // off; no rule, the configured mode.
        assert_eq!(d.push_mode(PushMode::On), PushMode::Only);
        assert_eq!(d.push_mode(PushMode::Off), PushMode::Off);
        let plain = dg(&sshd, &none, remote("10.1.1.1"), &rec(true), &c);
        assert_eq!(plain.push_mode(PushMode::On), PushMode::On);
    }

    /// An unlock made on the portal applies through the rules: a rule asking for a code
    /// overrides it unless it says `remembered = true`; no rule, as before.
    #[test]
    fn rules_and_remembered_networks() {
        let mut c = cfg();
        c.policy.remember = mfa_config::Span::secs(8 * 3600);
        let mut r = rec(true);
        r.unlocks.push(mfa_model::Unlock {
            ip: "192.0.2.7".into(),
            created: NOW - 60,
            expires: NOW - 60 + 8 * 3600,
        });
        let none: Vec<String> = Vec::new();
        let at = |c: &Config| dg(&gateway(), &none, remote("192.0.2.7"), &r, c);
        assert_eq!(at(&c).reason, Reason::RememberedNetwork);
        let mut strict = c.clone();
        strict.policy.rules = vec![rule(RuleAction::Code, |r| {
            r.radius_clients = vec!["rd-gateway".into()];
        })];
        assert_eq!(at(&strict).outcome, Outcome::NeedCode);
        let mut kept = strict.clone();
        kept.policy.rules[0].remembered = true;
        let d = at(&kept);
        assert_eq!(
            (d.reason, d.rule.map(|m| m.index)),
            (Reason::RememberedNetwork, Some(0))
        );
        // A rule that matches nothing here leaves the unlock alone.
        let mut other = c.clone();
        other.policy.rules = vec![rule(RuleAction::Code, |r| r.services = vec!["sudo".into()])];
        assert_eq!(at(&other).reason, Reason::RememberedNetwork);
    }
}
