//! The one login path behind every front end (PAM, RADIUS, `mfactl auth`): decide, ask for
//! a code where needed, and settle the final decision in one store transaction, then audit.
//! Every final decision, with or without a code, one login or a RADIUS batch, is made by
//! [`attempt_in_tx`] on the locked record, so no rule (the lock, the grace period) can be
//! checked in one path and missed in another.

use std::collections::HashMap;
use std::fmt;

use mfa_config::Config;
use mfa_model::{AuditDecision, AuditEvent, Refusal, TotpParams, UserName, UserRecord};
use zeroize::Zeroizing;

use crate::core::Core;
use crate::error::CoreError;
use crate::groups::{groups_of, user_known};
use crate::keygen::KeyGeneration;
use crate::net::ClientAddr;
use crate::policy::{Decision, Facts, Outcome, Reason, decide, grace_deadline};
use crate::secret::Sealer;
use crate::store::{Abort, StoreError, TxFn};
use crate::verify::{apply_code, note_outcome};

/// The prompt every front end shows for a code (PAM conversation, `mfactl auth`).
pub const CODE_PROMPT: &str = "Verification code: ";
/// The Reply-Message of a RADIUS Access-Challenge, which gateways show as the prompt.
pub const CODE_CHALLENGE: &str = "Enter the verification code from your authenticator app.";
/// The prompt where a push may be sent instead of a typed code (PAM): an empty answer sends
/// it. Shown only where [`crate::push::Push::settings_for`] has push on and the user has a
/// phone.
pub const CODE_OR_PUSH_PROMPT: &str =
    "Verification code (or press Enter to approve on your phone): ";
/// The Reply-Message of an Access-Challenge that offers a push: the user types
/// [`PUSH_WORD`] instead of the code.
pub const CODE_OR_PUSH_CHALLENGE: &str = "Enter the verification code from your authenticator app, or type push to approve the sign-in on your phone.";
/// What a user types at a gateway's challenge to be sent a push instead of typing a code
/// (any case); in append mode, after the password and a comma (`password,push`, Duo's
/// convention).
pub const PUSH_WORD: &str = "push";

/// What a login shows once its push is sent: the number to type on the phone under number
/// matching, else to approve there.
pub fn push_sent_message(number: Option<u8>) -> String {
    match number {
        Some(n) => format!("Enter {n} on your phone to approve the sign-in."),
        None => "Approve the sign-in on your phone.".into(),
    }
}

/// The Reply-Message of the Access-Challenge that shows a push's number at a gateway, whose
/// next round (the user presses OK) succeeds once the phone approved; `again` while the
/// phone has not decided yet.
pub fn push_challenge_message(number: Option<u8>, again: bool) -> String {
    let first = if again { "Not approved yet. " } else { "" };
    match number {
        Some(n) => format!("{first}Enter {n} on your phone, then press OK here."),
        None => format!("{first}Approve the sign-in on your phone, then press OK here."),
    }
}

/// Who asks for a decision. The audit trail shows its name (`Display`); the policy reads
/// its kind, because an unlock made on the portal lets in only the logins it is made for
/// (`[policy] remember_for`). Each front end fills it once, where the request is made.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Service {
    /// A PAM service (`sshd`, `sudo`), through the module on this host.
    Pam(String),
    /// A PAM login on a PAM host in remote mode, as mfa-radiusd sees it: the RADIUS client
    /// the host is, its source address where that client entry covers several hosts (the
    /// host's own name is only what it says), the host's name (NAS-Identifier) and the PAM
    /// service (Called-Station-Id; `None` where the host sent none). Named
    /// `client/host/service` in the audit trail, `client@address/host/service` for a host of
    /// a multi-host entry.
    RemotePam {
        client: String,
        address: Option<std::net::IpAddr>,
        host: String,
        service: Option<String>,
    },
    /// A RADIUS client by its configured name, and whether it is in code-only mode: a
    /// gateway that checked the password itself and cannot ask for a code.
    Radius { client: String, code_only: bool },
    /// Anything else that asks (`mfactl auth`, the portal's sign-in, tests): named only,
    /// so no unlock applies to it.
    Other(String),
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Service::Pam(s) | Service::Other(s) => f.write_str(s),
            Service::Radius { client, .. } => f.write_str(client),
            Service::RemotePam {
                client,
                address,
                host,
                service,
            } => {
                f.write_str(client)?;
                if let Some(ip) = address {
                    write!(f, "@{ip}")?;
                }
                write!(f, "/{host}/{}", service.as_deref().unwrap_or("-"))
            }
        }
    }
}

/// A name alone is a service of no kind an unlock applies to.
impl From<&str> for Service {
    fn from(name: &str) -> Self {
        Service::Other(name.to_string())
    }
}

/// One authentication attempt as a front end sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub user: UserName,
    pub client: ClientAddr,
    /// What asks: a PAM service, a RADIUS client, `mfactl`.
    pub service: Service,
    /// Unix seconds. Front ends pass the clock; tests of the core pin it.
    pub now: i64,
    /// The name may get a record (the roll-out starts tracking it, its grace period starts).
    /// A name nothing vouches for gets its decisions but no record, so a stranger trying
    /// names fills nothing. Set only through [`Request::admit`] with what
    /// [`Login::admit_name`] answered, so no front end decides it; `false` until then.
    pub(crate) admitted: bool,
}

/// What vouches for a name, so that it may get a record. Each front end names the one it
/// has and asks [`Login::admit_name`]; the rule is here, once, whatever asks.
///
/// Naming a user to enrol or invite (`mfactl enroll`, `import`, `invite`) is vouching in
/// itself: those write a record without asking, and the enrolment through an invite on the
/// portal is the administrator's naming carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voucher {
    /// A first factor for the name passed: mfa-radiusd's PAM check (append and challenge
    /// mode), a gateway's own password check before it sends only the code (code-only mode),
    /// the portal's sign-in password.
    FirstFactor,
    /// The system this runs on knows the name ([`system_knows`]: NSS, so files, SSSD,
    /// LDAP): the PAM module on this host, which checks no first factor itself.
    ThisSystem,
    /// A PAM host in remote mode says whether its system knows the name ([`system_knows`]
    /// on the host), in its request, which its RADIUS secret authenticates. `None` where it
    /// said nothing (a host of an older release) or nothing readable: that vouches for
    /// nothing, so a stranger's name gets no record in remote mode either. Where the server
    /// has `[directory]`, the directory's answer vouches as well.
    PamHost { knows: Option<bool> },
    /// An administrator named it (`mfactl auth`, `temp-access`, `backup-codes`): admitted
    /// where the system knows it or the store holds it, or where the administrator insists
    /// (`--force`).
    Administrator { force: bool },
}

/// [`Login::admit_name`]'s answer about one name. Only the core makes one; a front end hands
/// it to its request with [`Request::admit`], or insists on it with [`Admission::required`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    user: UserName,
    admitted: bool,
}

impl Admission {
    /// Whether the name may get a record.
    pub fn admitted(&self) -> bool {
        self.admitted
    }

    /// For a command that must not act on a name nothing vouches for (a typo must get no
    /// record, no grace period and no working code): the refusal, naming both checks and
    /// `--force` ([`Refusal::UnknownName`]), where the name is not admitted.
    pub fn required(self) -> Result<Self, CoreError> {
        if self.admitted {
            Ok(self)
        } else {
            Err(Refusal::UnknownName(self.user).into())
        }
    }
}

/// Whether the system this runs on knows `user` (NSS: files, SSSD, LDAP): what
/// [`Voucher::ThisSystem`] asks here, and what a PAM host in remote mode sends for
/// [`Voucher::PamHost`].
pub fn system_knows(user: &UserName) -> bool {
    user_known(user)
}

impl Request {
    pub fn new(user: &UserName, client: ClientAddr, service: impl Into<Service>) -> Self {
        Self {
            user: user.clone(),
            client,
            service: service.into(),
            now: now(),
            admitted: false,
        }
    }

    /// The same request, with what [`Login::admit_name`] answered for its name (an admission
    /// of another name admits nothing).
    pub fn admit(mut self, admission: &Admission) -> Self {
        self.admitted = admission.admitted && admission.user == self.user;
        self
    }

    /// Whether the name may get a record (see [`Request::admit`]).
    pub fn admitted(&self) -> bool {
        self.admitted
    }

    /// The audit event of decision `d` about this request.
    pub fn event(&self, d: &Decision) -> AuditEvent {
        AuditEvent {
            time: self.now,
            user: self.user.to_string(),
            service: self.service.to_string(),
            client_ip: self.client.ip().map(|i| i.to_string()),
            decision: AuditDecision::Login(d.outcome).into(),
            reason: d.reason.audit_code().into(),
            // The rule a decision followed, so the trail says why a trusted office still
            // had to type a code, or who was refused by which rule.
            detail: d.rule.as_ref().map(ToString::to_string),
        }
    }
}

/// The system clock in Unix seconds (0 if the clock is before 1970, which fails every code).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// One login for [`Login::authenticate_many`].
#[derive(Debug, Clone)]
pub struct Attempt {
    pub req: Request,
    /// The code the user typed, if the front end has one.
    pub code: Option<Zeroizing<String>>,
    /// From [`Login::groups_for`].
    pub groups: Vec<String>,
}

/// When a committed decision may be answered (ARCHITECTURE.md, *Durability*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Only once it is durable: it used something up (a code, a one-time code, a push),
    /// counted toward a lock, refused, or started a grace period.
    Durable,
    /// As soon as it is committed: it consumed nothing ([`Decision::consumes_nothing`], or
    /// it wrote nothing at all), and its statistics and audit row become durable within the
    /// store's window after the reply.
    Committed,
}

/// How [`Login::run`] commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// Durable on return, whatever the decisions ([`crate::store::Store::transact`]).
    Durable,
    /// Durable on return unless every decision consumed nothing
    /// ([`crate::store::Store::transact_light`]); `expect` is the guess before it.
    Light { expect: bool },
    /// Through the engine's group commit where it has one: durable after its next sync.
    Deferred,
}

/// [`Login::groups_for`] under `cfg` (the report reads the file as it is now).
pub(crate) fn policy_groups(cfg: &mfa_config::Config, user: &UserName) -> Vec<String> {
    if !cfg.policy.uses_groups() {
        Vec::new()
    } else {
        groups_of(user)
    }
}

/// What may let `req` in on a PAM host in remote mode while no server answers (`[remote]
/// offline = "trusted"`): the policy's decision under the host's own configuration, with no
/// record (the host has no store), where it lets in without a code for a reason that needs
/// no record: a trusted network, a local login under `local_logins = "trusted"`, an exempt
/// user or group, a rule's `"none"`. `None` for everything else (a code, the roll-out, an
/// unlock, a deny): no server, no decision. A code is never checked offline.
pub fn decide_offline(cfg: &Config, req: &Request) -> Option<Decision> {
    let groups = policy_groups(cfg, &req.user);
    let d = decide(
        &Facts {
            user: &req.user,
            client: req.client,
            service: &req.service,
            now: req.now,
            record: None,
            groups: &groups,
            code_always: false,
        },
        cfg,
    );
    let standalone = matches!(
        d.reason,
        Reason::TrustedNetwork
            | Reason::LocalLogin
            | Reason::ExemptUser
            | Reason::ExemptGroup
            | Reason::RuleNoCode
    );
    (d.outcome == Outcome::Allow && standalone).then_some(Decision {
        // Nothing can be enrolled without a server.
        offer_enrolment: false,
        ..d
    })
}

/// The login service. Get one from [`Core::login`].
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    pub(crate) core: &'a Core,
}

impl Login<'_> {
    /// [`Core::user_name`], for a daemon that runs it on its store readers.
    pub fn user_name(&self, raw: &str) -> Result<UserName, CoreError> {
        self.core.user_name(raw)
    }

    /// What the policy says before any code is seen. Reads only; nothing is recorded.
    pub fn decide(&self, req: &Request) -> Result<Decision, CoreError> {
        self.decide_with_groups(req, &self.groups_for(&req.user)?)
    }

    /// `decide` with the groups from [`Login::groups_for`] already looked up, for a front
    /// end that needs them again for the final decision (one NSS lookup, not two).
    pub fn decide_with_groups(
        &self,
        req: &Request,
        groups: &[String],
    ) -> Result<Decision, CoreError> {
        let record = self.core.store.user(&req.user)?;
        Ok(decide(
            &Facts {
                user: &req.user,
                client: req.client,
                service: &req.service,
                now: req.now,
                record: record.as_ref(),
                groups,
                code_always: false,
            },
            &self.core.config,
        ))
    }

    /// The groups the policy needs for `user`: looked up only where the policy uses them
    /// (`exempt_groups`, a rule matching on groups), in `[directory]` where there is one
    /// ([`Core::groups_of`]), else NSS (files, SSSD, LDAP). Call it outside any batch, since
    /// a directory can be slow. The one place groups are resolved for a decision. A
    /// directory that does not answer is an error ([`CoreError::Directory`]): the login is
    /// refused, never decided as if the user had no groups.
    pub fn groups_for(&self, user: &UserName) -> Result<Vec<String>, CoreError> {
        if !self.core.config.policy.uses_groups() {
            return Ok(Vec::new());
        }
        self.core.groups_of(user)
    }

    /// Whether `user` may get a record, as `by` vouches for it (see [`Voucher`]): the one
    /// rule every front end asks, so the same name gets a record or none whether the PAM
    /// module decides locally, a PAM host asks mfa-radiusd, or a gateway, the portal or an
    /// administrator asks. Reads the store for [`Voucher::Administrator`] only.
    pub fn admit_name(&self, user: &UserName, by: Voucher) -> Result<Admission, CoreError> {
        let admitted = match by {
            Voucher::FirstFactor => true,
            Voucher::ThisSystem => self.core.user_known(user)?,
            // The host's NSS may not see what the server's directory holds (a host not
            // joined to the domain): where the server has `[directory]`, its answer vouches
            // too, so the host's view and the directory's are one rule. The directory is
            // asked only when the host did not vouch, and its silence refuses.
            Voucher::PamHost { knows } => {
                knows == Some(true)
                    || (self.core.directory.is_some() && self.core.user_known(user)?)
            }
            Voucher::Administrator { force } => {
                force || self.core.user_known(user)? || self.core.store.user(user)?.is_some()
            }
        };
        Ok(Admission {
            user: user.clone(),
            admitted,
        })
    }

    /// The usual first call: the decision before any code, recorded when it is final
    /// (allow or deny without a code). `NeedCode` writes nothing.
    pub fn begin(&self, req: &Request) -> Result<Decision, CoreError> {
        let groups = self.groups_for(&req.user)?;
        // A read first: asking for a code takes no write lock. A final decision is made
        // again on the locked record, by the one path.
        let d = self.decide_with_groups(req, &groups)?;
        if d.outcome == Outcome::NeedCode {
            return Ok(d);
        }
        // The read's decision is the guess: a trusted address is let in without waiting
        // for the disk (the PAM module in local mode; issue 25).
        let attempt = Attempt {
            req: req.clone(),
            code: None,
            groups,
        };
        let expect = d.consumes_nothing();
        let mut out = self.run(
            std::slice::from_ref(&attempt),
            Commit::Light { expect },
            Ask::Policy,
        )?;
        out.pop()
            .map(|(d, _, _)| d)
            .ok_or(CoreError::Bug("a batch of one gave no decision"))
    }

    /// The code the user typed, on the same path as every other final decision.
    pub fn verify_code(&self, req: &Request, code: &str) -> Result<Decision, CoreError> {
        self.authenticate(&Attempt {
            req: req.clone(),
            code: Some(Zeroizing::new(code.to_string())),
            groups: self.groups_for(&req.user)?,
        })
    }

    /// One login through [`Login::authenticate_many`].
    pub fn authenticate(&self, attempt: &Attempt) -> Result<Decision, CoreError> {
        let mut d = self.authenticate_many(std::slice::from_ref(attempt))?;
        d.pop()
            .ok_or(CoreError::Bug("a batch of one gave no decision"))
    }

    /// Decides and, where a code is needed and one is given, verifies it, for many logins in
    /// one store transaction: one commit (one fsync) for the whole batch, which is what lets
    /// a busy RADIUS server keep up. Each attempt sees the effects of those before it (a
    /// code used twice in one batch is a replay the second time), exactly as if they ran one
    /// by one; nothing is acknowledged before the commit. An attempt that needs a code and
    /// has none gets `NeedCode` and writes nothing. A batch whose decisions all consume
    /// nothing ([`Decision::consumes_nothing`]) may become durable shortly after this
    /// returns, where the engine allows ([`crate::store::Store::transact_light`]).
    pub fn authenticate_many(&self, attempts: &[Attempt]) -> Result<Vec<Decision>, CoreError> {
        self.batch(attempts, Commit::Light { expect: false })
    }

    /// `authenticate_many` through the engine's group commit, where it has one: the
    /// decisions are final and visible to every other process at once, but durable only
    /// after the next [`crate::store::GroupCommit::sync`]; the caller must acknowledge none
    /// of them before that returns. An engine without group commit commits durably here.
    pub fn authenticate_many_deferred(
        &self,
        attempts: &[Attempt],
    ) -> Result<Vec<Decision>, CoreError> {
        self.batch(attempts, Commit::Deferred)
    }

    /// [`Login::authenticate_many_deferred`], each decision with when it may be answered:
    /// [`Ack::Committed`] at once, [`Ack::Durable`] only after the next
    /// [`crate::store::GroupCommit::sync`] (the daemon's writer; ARCHITECTURE.md,
    /// *Durability*).
    pub fn authenticate_many_acked(
        &self,
        attempts: &[Attempt],
    ) -> Result<Vec<(Decision, Ack)>, CoreError> {
        let decided = self.run(attempts, Commit::Deferred, Ask::Policy)?;
        Ok(decided.into_iter().map(|(d, _, a)| (d, a)).collect())
    }

    fn batch(&self, attempts: &[Attempt], commit: Commit) -> Result<Vec<Decision>, CoreError> {
        let decided = self.run(attempts, commit, Ask::Policy)?;
        Ok(decided.into_iter().map(|(d, _, _)| d).collect())
    }

    /// The attempts in one store transaction, each through [`attempt_in_tx`]; with
    /// [`Ask::CodeAlways`], an allowing decision comes with the key generation it was made
    /// with. Each decision comes with when it may be answered ([`Ack`]).
    fn run(
        &self,
        attempts: &[Attempt],
        commit: Commit,
        ask: Ask,
    ) -> Result<Vec<(Decision, Option<KeyGeneration>, Ack)>, CoreError> {
        let core = self.core;
        let ctx = TxEnv::of(core);
        let mut names: Vec<&UserName> = Vec::new();
        let mut seen: HashMap<&UserName, usize> = HashMap::new();
        let index: Vec<usize> = attempts
            .iter()
            .map(|a| {
                *seen.entry(&a.req.user).or_insert_with(|| {
                    names.push(&a.req.user);
                    names.len() - 1
                })
            })
            .collect();
        let keep_all = core.sink.wants_events();
        let mut decisions = Vec::with_capacity(attempts.len());
        let mut logged = Vec::new();
        // Whether every decision of the last run consumed nothing (`transact_light`).
        let light = std::cell::Cell::new(false);
        let mut tx = |recs: &mut [Option<UserRecord>]| {
            // Re-run from the start after a conflict: nothing of an earlier run is kept.
            decisions.clear();
            light.set(false);
            let mut events = Vec::with_capacity(attempts.len());
            for (a, &i) in attempts.iter().zip(&index) {
                let slot = recs
                    .get_mut(i)
                    .ok_or(Abort::Bug("batch index out of range"))?;
                let grace_before = slot.as_ref().and_then(|r| r.grace_started);
                let (d, ev) = attempt_in_tx(slot, a, &ctx, ask)?;
                let key = match ask {
                    Ask::CodeAlways if d.is_allowed() => slot.as_ref().and_then(KeyGeneration::of),
                    _ => None,
                };
                // A trusted allow that started a grace period is durable before its reply:
                // lost, the period would start again later.
                let grace_kept = slot.as_ref().and_then(|r| r.grace_started) == grace_before;
                let ack = if ev.is_none() || (d.consumes_nothing() && grace_kept) {
                    Ack::Committed
                } else {
                    Ack::Durable
                };
                decisions.push((d, key, ack));
                events.extend(ev);
            }
            light.set(decisions.iter().all(|(_, _, a)| *a == Ack::Committed));
            // Kept for the sink: all of them where it wants them, else only the first.
            if keep_all {
                logged.clone_from(&events);
            } else {
                logged.clear();
                logged.extend(events.first().cloned());
            }
            Ok(events)
        };
        let f: &mut TxFn<'_> = &mut tx;
        match (commit, core.store.group_commit()) {
            (Commit::Deferred, Some(gc)) => gc.transact_deferred(&names, f)?,
            (Commit::Light { expect }, _) => {
                core.store
                    .transact_light(&names, f, expect, &|| light.get())?;
            }
            _ => core.store.transact(&names, f)?,
        }
        core.sink.committed(core.store.as_ref(), &logged);
        Ok(decisions)
    }

    /// A sign-in that must prove the key whatever the policy would let in without one (the
    /// portal's "My account": see [`Facts::code_always`]). Decided like every other final
    /// decision, by [`attempt_in_tx`] on the locked record: only an enrolled user gets to
    /// the code, a locked user or address stays refused, and the code goes through the same
    /// checks as at a login (window, replay, one-time codes, lockout counters), in one
    /// transaction with its audit event. A refusal before the code leaves the record as it
    /// was: a sign-in is no login of the roll-out (no record, no grace start). With an
    /// allowing decision comes the generation of the key the code was checked against, read
    /// in that transaction: what the portal's session stands for (see [`KeyGeneration`]).
    pub fn verify_code_always(
        &self,
        req: &Request,
        code: &str,
    ) -> Result<(Decision, Option<KeyGeneration>), CoreError> {
        let attempt = Attempt {
            req: req.clone(),
            code: Some(Zeroizing::new(code.to_string())),
            // No exemption applies, so no group is looked up.
            groups: Vec::new(),
        };
        let mut d = self.run(
            std::slice::from_ref(&attempt),
            Commit::Durable,
            Ask::CodeAlways,
        )?;
        d.pop()
            .map(|(d, key, _)| (d, key))
            .ok_or(CoreError::Bug("a batch of one gave no decision"))
    }

    /// The final decision of a login whose second factor is the sign-in request `id`
    /// ([`crate::push::Push::start`] made it for this very request: user, service, client
    /// address). Settled like every other final decision, on the one path: in one store
    /// transaction on the locked record, [`attempt_in_tx`] asks the policy first, so a lock,
    /// an unlink or anything else since the push was sent counts; only where the policy
    /// asks for a code does the request stand in for it ([`push_attempt_in_tx`]): approved
    /// (and not used by a login yet) allows (`push_approved`) and is used up in the same
    /// transaction, so one approval lets in one login; denied, expired, "This wasn't me" and
    /// undeliverable deny (`push_denied`, `push_expired`, `push_fraud`,
    /// `push_undeliverable`); a request of another user, service or address is a mismatch
    /// (`state_mismatch`), an unknown one `unknown_or_expired_state`. A request still
    /// pending gives `NeedCode` with [`Reason::PushWaiting`] and writes nothing: ask again
    /// later (or after [`crate::push::Push::status`] says it is decided). Audited as every
    /// login is.
    pub fn verify_push(
        &self,
        req: &Request,
        id: &mfa_model::PushId,
    ) -> Result<Decision, CoreError> {
        Ok(self.settle_push(req, id, Ask::Policy)?.0)
    }

    /// [`Login::verify_push`] for a sign-in that must prove the key whatever the policy
    /// would let in without one (the console's sign-in with push; see
    /// [`Facts::code_always`]): the approval stands in for the code of
    /// [`Login::verify_code_always`], on the same path, and an allowed sign-in gets the
    /// [`KeyGeneration`] its session is bound to. The request must have been made by
    /// [`crate::push::Push::start_always`].
    pub fn verify_push_always(
        &self,
        req: &Request,
        id: &mfa_model::PushId,
    ) -> Result<(Decision, Option<KeyGeneration>), CoreError> {
        self.settle_push(req, id, Ask::CodeAlways)
    }

    fn settle_push(
        &self,
        req: &Request,
        id: &mfa_model::PushId,
        ask: Ask,
    ) -> Result<(Decision, Option<KeyGeneration>), CoreError> {
        let core = self.core;
        let ctx = TxEnv::of(core);
        let attempt = Attempt {
            req: req.clone(),
            code: None,
            groups: self.groups_for(&req.user)?,
        };
        let mut out = None;
        let mut logged = Vec::new();
        core.store.transact_push(&req.user, &mut |slot, tx| {
            logged.clear();
            let push = tx.request(id)?;
            let (d, ev, write) = push_attempt_in_tx(slot, &attempt, push.as_ref(), &ctx, ask)
                .map_err(StoreError::Aborted)?;
            if let Some(p) = write {
                tx.update_request(&p)?;
            }
            logged.extend(ev);
            let key = match ask {
                Ask::CodeAlways if d.is_allowed() => slot.as_ref().and_then(KeyGeneration::of),
                _ => None,
            };
            out = Some((d, key));
            Ok(logged.clone())
        })?;
        core.sink.committed(core.store.as_ref(), &logged);
        out.ok_or(CoreError::Bug("a push login gave no decision"))
    }

    /// Records a refused first factor (RADIUS password through PAM). No record is created
    /// or changed: a password sprayer must not fill the store.
    pub fn deny_first_factor(&self, req: &Request) -> Result<Decision, CoreError> {
        let d = Decision::deny(Reason::WrongPassword);
        self.append(req.event(&d))?;
        Ok(d)
    }

    /// Records a request the front end refused before the policy could run (a RADIUS
    /// challenge State unknown or expired, an unsupported authentication method, a
    /// malformed password attribute), so the audit trail shows it next to the decisions.
    pub fn deny_request(&self, req: &Request, reason: Reason) -> Result<Decision, CoreError> {
        let d = Decision::deny(reason);
        self.append(req.event(&d))?;
        Ok(d)
    }

    pub(crate) fn append(&self, ev: AuditEvent) -> Result<(), CoreError> {
        let events = std::slice::from_ref(&ev);
        self.core.store.append_audit(events)?;
        self.core.sink.committed(self.core.store.as_ref(), events);
        Ok(())
    }
}

/// What a transaction function needs besides the records.
pub(crate) struct TxEnv<'a> {
    pub cfg: &'a Config,
    pub params: TotpParams,
    pub sealer: &'a dyn Sealer,
}

impl<'a> TxEnv<'a> {
    pub fn of(core: &'a Core) -> Self {
        Self {
            cfg: &core.config,
            params: core.config.totp.params(),
            sealer: core.sealer.as_ref(),
        }
    }
}

/// What a final decision asks of a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    /// What the policy says: a code where it asks for one.
    Policy,
    /// The code, whatever else would let the request in (see [`Facts::code_always`]).
    CodeAlways,
}

/// One attempt on the locked record: the policy, then the code where one is needed and
/// given. Returns the decision and, when it is final, its audit event.
pub(crate) fn attempt_in_tx(
    slot: &mut Option<UserRecord>,
    a: &Attempt,
    ctx: &TxEnv<'_>,
    ask: Ask,
) -> Result<(Decision, Option<AuditEvent>), Abort> {
    let req = &a.req;
    let facts = Facts {
        user: &req.user,
        client: req.client,
        service: &req.service,
        now: req.now,
        record: slot.as_ref(),
        groups: &a.groups,
        code_always: ask == Ask::CodeAlways,
    };
    let d = decide(&facts, ctx.cfg);
    // A `push` rule: a typed code does not settle this login, only an approved push does
    // (`push_attempt_in_tx`, which comes here without a code). Nothing is checked, so
    // nothing counts toward a lock. The portal's sign-in, which has no push to offer,
    // asks the code as every rule that asks for one does.
    if d.push_required() && a.code.is_some() && ask == Ask::Policy {
        let mut refused = Decision::deny(Reason::PushRequired);
        refused.rule = d.rule;
        clamp_unlocks(slot, req.now, ctx.cfg);
        return Ok((refused.clone(), Some(req.event(&refused))));
    }
    if d.outcome != Outcome::NeedCode {
        // A sign-in refused before its code is no login of the roll-out: it tracks no one.
        if ask == Ask::Policy {
            settle(slot, a, &d, ctx);
        }
        clamp_unlocks(slot, req.now, ctx.cfg);
        return Ok((d.clone(), Some(req.event(&d))));
    }
    let Some(code) = &a.code else {
        return Ok((d, None));
    };
    // NeedCode comes only with a record (enrolled, or holding one-time codes).
    let Some(rec) = slot.as_mut() else {
        return Err(Abort::Bug("a code was asked for a user with no record"));
    };
    let secret = match &rec.secret {
        Some(s) => Some(ctx.sealer.unseal(&rec.name, s).map_err(Abort::Secret)?),
        None => None,
    };
    let source = req.client.ip().map(|ip| ip.to_string());
    let rule = d.rule;
    let mut d = apply_code(
        rec,
        secret.as_ref(),
        code,
        source.as_deref(),
        req.now,
        ctx.cfg,
    );
    d.rule = rule;
    note_outcome(rec, &d, &req.client, req.now);
    clamp_unlocks(slot, req.now, ctx.cfg);
    Ok((d.clone(), Some(req.event(&d))))
}

/// A login whose second factor is a sign-in request `push` (read in the same transaction):
/// [`attempt_in_tx`] first, without a code, so the policy decides as for any login (a
/// trusted network allows, a lock denies, each settled there); where it asks for a code,
/// the request's state decides instead of one. Returns the decision, its audit event (none
/// while the request is pending) and the request as it must be written back (used up by an
/// allowing decision, or marked expired).
pub(crate) fn push_attempt_in_tx(
    slot: &mut Option<UserRecord>,
    a: &Attempt,
    push: Option<&mfa_model::PushRequest>,
    ctx: &TxEnv<'_>,
    ask: Ask,
) -> Result<(Decision, Option<AuditEvent>, Option<mfa_model::PushRequest>), Abort> {
    use mfa_model::PushState;
    let (d, ev) = attempt_in_tx(slot, a, ctx, ask)?;
    if d.outcome != Outcome::NeedCode {
        return Ok((d, ev, None));
    }
    let req = &a.req;
    let now = req.now;
    let mut write = None;
    let rule = d.rule;
    let mut d = match push {
        None => Decision::deny(Reason::UnknownState),
        Some(p)
            if p.user != req.user
                || p.service != req.service.to_string()
                || p.client_ip != req.client.ip().map(|ip| ip.to_string()) =>
        {
            Decision::deny(Reason::StateMismatch)
        }
        // Push stands in for the code of an enrolled user only (NeedCode for a user without
        // a key is a temporary-access code's).
        Some(_) if !slot.as_ref().is_some_and(UserRecord::enrolled) => {
            Decision::deny(Reason::NotEnrolled)
        }
        Some(p) => match p.state_at(now) {
            PushState::Pending => {
                let mut w = Decision::need_code();
                w.reason = Reason::PushWaiting;
                w.message = Some(crate::policy::user_message(&Reason::PushWaiting));
                w.rule = rule.clone();
                return Ok((w, None, None));
            }
            PushState::Approved if p.used.is_some() => Decision::deny(Reason::PushUsed),
            PushState::Approved => {
                let mut used = p.clone();
                used.used = Some(now);
                write = Some(used);
                Decision::allow(Reason::PushApproved)
            }
            PushState::Denied => Decision::deny(Reason::PushDenied),
            PushState::Fraud => Decision::deny(Reason::PushFraud),
            PushState::Undeliverable => Decision::deny(Reason::PushUndeliverable),
            PushState::Expired => {
                if p.state == PushState::Pending {
                    let mut e = p.clone();
                    e.state = PushState::Expired;
                    e.decided = Some(now);
                    write = Some(e);
                }
                Decision::deny(Reason::PushExpired)
            }
        },
    };
    d.rule = rule;
    if let Some(rec) = slot.as_mut() {
        if d.is_allowed() {
            // A second factor proved, as a valid code does: the counters start over.
            rec.failures = 0;
            rec.first_failure = None;
            if let Some(ip) = req.client.ip() {
                let ip = ip.to_string();
                rec.sources.retain(|s| s.source != ip);
            }
        }
        note_outcome(rec, &d, &req.client, now);
    }
    clamp_unlocks(slot, now, ctx.cfg);
    Ok((d.clone(), Some(req.event(&d)), write))
}

/// A final decision writes the record: an unlock stamped in the future (another node's
/// clock ahead) becomes one of now, lasting at most `remember` from now.
fn clamp_unlocks(slot: &mut Option<UserRecord>, now: i64, cfg: &Config) {
    if let Some(rec) = slot.as_mut() {
        rec.clamp_future_unlocks(now, cfg.policy.remember.secs_i64());
    }
}

/// What a final decision without a code does to the user's record: login statistics, the
/// start of the grace period the first time it applies, and a new record where the
/// roll-out tracks the user.
fn settle(slot: &mut Option<UserRecord>, a: &Attempt, d: &Decision, ctx: &TxEnv<'_>) {
    let (cfg, req) = (ctx.cfg, &a.req);
    // A denied name we have never seen gets no row, nor does a name nothing vouches for:
    // password sprayers must not fill the report. Everyone else is tracked for the roll-out
    // view.
    let create = req.admitted && (d.outcome == Outcome::Allow || d.reason == Reason::NotEnrolled);
    if slot.is_none() && create {
        *slot = Some(UserRecord::new(&req.user, ctx.params, req.now));
    }
    if let Some(rec) = slot.as_mut() {
        // The grace starts at the first login at or after go-live (never, while the roll-out
        // is not scheduled: there is no deadline).
        if !rec.enrolled()
            && rec.grace_started.is_none()
            && !cfg.policy.enforce_from.is_before(req.now)
            && let Some(deadline) = grace_deadline(Some(rec), cfg, req.now)
        {
            rec.grace_started = Some(deadline - i64::from(cfg.policy.grace_days) * 86_400);
        }
        note_outcome(rec, d, &req.client, req.now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TotpSecret;

    use crate::totp::code_at_step;
    use std::net::IpAddr;

    fn setup(grace: u32) -> (tempfile::TempDir, Core) {
        crate::test_core(|cfg| {
            cfg.policy.trusted_networks = vec!["10.0.0.0/8".parse().unwrap()];
            cfg.policy.grace_days = grace;
        })
    }

    fn n(s: &str) -> UserName {
        UserName::parse(s).unwrap()
    }

    fn req(user: &str, ip: &str, now: i64) -> Request {
        Request {
            user: n(user),
            client: ClientAddr::Remote(ip.parse::<IpAddr>().ok()),
            service: "test".into(),
            now,
            admitted: false,
        }
    }

    /// Offline (a PAM host whose servers are all down) only what needs no record lets in:
    /// a trusted network, an exemption, a rule's "none"; never the roll-out (a user before
    /// go-live), a code or a deny rule.
    #[test]
    fn offline_only_what_needs_no_record_lets_in() {
        let cfg = mfa_config::parse(
            "[policy]\ntrusted_networks = [\"10.0.0.0/8\"]\nexempt_users = [\"svc\"]\nenforce_from = \"never\"\n\
             [[policy.rules]]\nnetworks = [\"10.9.0.0/16\"]\naction = \"deny\"\n\
             [[policy.rules]]\nnetworks = [\"192.0.2.0/28\"]\naction = \"none\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let at = |user: &str, ip: &str| decide_offline(&cfg, &req(user, ip, 1_800_000_000));
        assert_eq!(
            at("alice", "10.1.2.3").map(|d| d.reason),
            Some(Reason::TrustedNetwork)
        );
        assert_eq!(
            at("svc", "198.51.100.7").map(|d| d.reason),
            Some(Reason::ExemptUser)
        );
        assert_eq!(
            at("alice", "192.0.2.3").map(|d| d.reason),
            Some(Reason::RuleNoCode)
        );
        // Before go-live the server would let alice in; offline nothing vouches for that.
        assert_eq!(at("alice", "198.51.100.7"), None);
        assert_eq!(at("alice", "not-an-ip"), None);
        assert_eq!(at("svc", "10.9.1.1"), None);
    }

    fn params(a: &Core) -> TotpParams {
        a.config().totp.params()
    }

    #[test]
    fn full_flow_enrolled_user() {
        let (_d, a) = setup(0);
        let now = 1_800_000_000;
        let s = TotpSecret::generate().unwrap();
        let e = a.enrolment();
        e.enroll(&n("alice"), &s, None, false, "test", now).unwrap();
        assert!(
            e.enroll(&n("alice"), &s, None, false, "test", now).is_err(),
            "no silent re-enrolment"
        );

        let r = req("alice", "192.0.2.1", now);
        let l = a.login();
        assert_eq!(l.begin(&r).unwrap().outcome, Outcome::NeedCode);
        let code = code_at_step(&s, &params(&a), now / 30);
        assert_eq!(l.verify_code(&r, &code).unwrap().reason, Reason::ValidCode);
        assert_eq!(
            l.verify_code(&r, &code).unwrap().reason,
            Reason::ReplayedCode
        );
        assert_eq!(
            l.begin(&req("alice", "10.9.9.9", now)).unwrap().reason,
            Reason::TrustedNetwork
        );

        let rec = a.store().user(&n("alice")).unwrap().unwrap();
        assert_eq!(rec.login_count, 2);
        assert_eq!(rec.failures, 0);
        assert_eq!(rec.last_ip.as_deref(), Some("10.9.9.9"));
        let log = a.store().audit(&Default::default()).unwrap();
        let reasons: Vec<_> = log.iter().map(|e| e.reason.as_str()).collect();
        // The enrolment's reason is a stable code now; who did it is the event's service.
        assert_eq!(
            reasons,
            [
                "unconfirmed",
                "valid_code",
                "replayed_code",
                "trusted_network"
            ]
        );
        assert_eq!(log[0].service, "test");
    }

    #[test]
    fn enrolment_confirmation_code_cannot_be_replayed() {
        let (_d, a) = setup(0);
        let now = 1_800_000_000;
        let s = TotpSecret::generate().unwrap();
        let code = code_at_step(&s, &params(&a), now / 30);
        let e = a.enrolment();
        assert!(
            e.enroll(&n("bob"), &s, Some("000000"), false, "t", now)
                .is_err()
                || code.as_str() == "000000"
        );
        e.enroll(&n("bob"), &s, Some(&code), false, "t", now)
            .unwrap();
        assert_eq!(
            a.login()
                .verify_code(&req("bob", "192.0.2.1", now), &code)
                .unwrap()
                .reason,
            Reason::ReplayedCode
        );
    }

    /// A request whose name passed a first factor (as the daemon's do).
    fn past_first_factor(req: Request) -> Request {
        let admission = Admission {
            user: req.user.clone(),
            admitted: true,
        };
        req.admit(&admission)
    }

    /// A login of a name that passed a first factor (as the daemon's are).
    fn vouched(req: Request) -> Attempt {
        Attempt {
            req: past_first_factor(req),
            code: None,
            groups: vec![],
        }
    }

    /// Issue 25: only a decision that consumes nothing may be answered before it is
    /// durable; a code (right or wrong), a refusal and a grace period's start may not.
    #[test]
    fn only_decisions_that_consume_nothing_are_answered_at_the_commit() {
        let (_d, a) = setup(14);
        let now = 1_800_000_000;
        let s = TotpSecret::generate().unwrap();
        a.enrolment()
            .enroll(&n("alice"), &s, None, false, "test", now)
            .unwrap();
        let code = code_at_step(&s, &params(&a), now / 30);
        let with_code = |c: &str| Attempt {
            code: Some(Zeroizing::new(c.to_string())),
            ..vouched(req("alice", "192.0.2.1", now))
        };
        let wrong = if code.as_str() == "000000" {
            "111111"
        } else {
            "000000"
        };
        let attempts = [
            vouched(req("alice", "10.1.2.3", now)),
            with_code(&code),
            with_code(&code),
            with_code(wrong),
            vouched(req("alice", "192.0.2.1", now)),
            // Not enrolled, past go-live, trusted: let in, but its grace starts here.
            vouched(req("dave", "10.1.2.3", now)),
            // Its grace started: the next trusted allow consumes nothing.
            vouched(req("dave", "10.1.2.3", now + 60)),
        ];
        let got: Vec<(String, Ack)> = a
            .login()
            .authenticate_many_acked(&attempts)
            .unwrap()
            .into_iter()
            .map(|(d, ack)| (d.reason.code().to_string(), ack))
            .collect();
        let want = [
            ("trusted_network", Ack::Committed),
            ("valid_code", Ack::Durable),
            ("replayed_code", Ack::Durable),
            ("wrong_code", Ack::Durable),
            // Asked for a code and had none: nothing written, nothing to wait for.
            ("code_required", Ack::Committed),
            ("trusted_network", Ack::Durable),
            ("trusted_network", Ack::Committed),
        ];
        let want: Vec<(String, Ack)> = want.iter().map(|(r, a)| (r.to_string(), *a)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn grace_start_is_stored_once() {
        let (_d, a) = setup(14);
        let now = 1_800_000_000;
        let l = a.login();
        let d = l
            .authenticate(&vouched(req("carol", "192.0.2.1", now)))
            .unwrap();
        assert_eq!(d.reason, Reason::GracePeriod { days_left: 14 });
        let d = l
            .authenticate(&vouched(req("carol", "192.0.2.1", now + 86_400 * 10)))
            .unwrap();
        assert_eq!(d.reason, Reason::GracePeriod { days_left: 4 });
        assert_eq!(
            a.store().user(&n("carol")).unwrap().unwrap().grace_started,
            Some(now)
        );
        let d = l
            .authenticate(&vouched(req("carol", "192.0.2.1", now + 86_400 * 14)))
            .unwrap();
        assert_eq!(d.reason, Reason::NotEnrolled);
    }

    /// While the roll-out is not scheduled a login is let in and tracked, but starts no
    /// grace: once the administrator sets a date, every user's grace counts from it.
    #[test]
    fn no_grace_starts_while_the_roll_out_is_not_scheduled() {
        let (_dir, a) = crate::test_core(|cfg| {
            cfg.policy.grace_days = 14;
            cfg.policy.enforce_from = mfa_config::GoLive::Never;
        });
        let now = 1_800_000_000;
        let d = a
            .login()
            .authenticate(&vouched(req("dave", "192.0.2.1", now)))
            .unwrap();
        assert_eq!(d.reason, Reason::BeforeGoLive { days_left: None });
        assert!(d.is_allowed());
        let rec = a.store().user(&n("dave")).unwrap().unwrap();
        assert_eq!(rec.grace_started, None);
        assert_eq!(rec.login_count, 1);
    }

    /// A name nothing vouches for gets its decision but no record: trying names fills
    /// nothing. A vouched one (a first factor passed, NSS knows it) does. One rule for every
    /// voucher: a PAM host in remote mode that says its system does not know the name, or
    /// says nothing, vouches no more than the PAM module here would.
    #[test]
    fn only_vouched_names_get_a_record() {
        let (_d, a) = setup(14);
        let l = a.login();
        let d = l.begin(&req("mallory", "192.0.2.1", 1)).unwrap();
        assert_eq!(d.reason, Reason::GracePeriod { days_left: 14 });
        assert!(a.store().user(&n("mallory")).unwrap().is_none());
        assert!(a.store().audit(&Default::default()).unwrap().len() == 1);
        let admit = |user: &str, by: Voucher| {
            let r = req(user, "192.0.2.1", 1);
            let adm = l.admit_name(&r.user, by).unwrap();
            r.admit(&adm)
        };
        for by in [
            Voucher::ThisSystem,
            Voucher::PamHost { knows: None },
            Voucher::PamHost { knows: Some(false) },
            Voucher::Administrator { force: false },
        ] {
            let r = admit("no-such-user-xyz", by);
            assert!(!r.admitted(), "{by:?}");
            l.begin(&r).unwrap();
            assert!(
                a.store().user(&n("no-such-user-xyz")).unwrap().is_none(),
                "{by:?}"
            );
        }
        for (user, by) in [
            ("alice", Voucher::FirstFactor),
            ("root", Voucher::ThisSystem),
            ("bob", Voucher::PamHost { knows: Some(true) }),
            ("carl", Voucher::Administrator { force: true }),
        ] {
            let r = admit(user, by);
            assert!(r.admitted(), "{by:?}");
            l.begin(&r).unwrap();
            assert!(a.store().user(&n(user)).unwrap().is_some(), "{by:?}");
        }
        assert!(system_knows(&n("root")) && !system_knows(&n("no-such-user-xyz")));
        // An admission is about one name: given to another's request it admits nothing.
        let adm = l.admit_name(&n("dora"), Voucher::FirstFactor).unwrap();
        assert!(!req("erin", "192.0.2.1", 1).admit(&adm).admitted());
    }

    /// The same attempts as one batch and one by one, each on a fresh store: the same
    /// decisions, the same records and the same audit trail.
    #[test]
    fn a_batch_is_the_same_as_one_by_one() {
        let now = 1_800_000_000;
        let s = TotpSecret::generate().unwrap();
        let code = code_at_step(&s, &Config::default().totp.params(), now / 30);
        let wrong = if code.as_str() == "000000" {
            "111111"
        } else {
            "000000"
        };
        // As the daemon sends them: past a first factor.
        let at = |user: &str, ip: &str, code: Option<&str>| Attempt {
            req: past_first_factor(req(user, ip, now)),
            code: code.map(|c| Zeroizing::new(c.to_string())),
            groups: vec![],
        };
        let attempts = [
            at("dora", "192.0.2.1", None),
            at("dora", "192.0.2.1", Some(wrong)),
            at("dora", "192.0.2.1", Some(&code)),
            at("dora", "192.0.2.1", Some(&code)),
            at("dora", "10.1.1.1", None),
            at("nobody", "192.0.2.1", Some("1")),
        ];
        let run = |batch: bool| {
            let (dir, a) = setup(0);
            a.enrolment()
                .enroll(&n("dora"), &s, None, false, "test", now)
                .unwrap();
            let ds = if batch {
                a.login().authenticate_many(&attempts).unwrap()
            } else {
                attempts
                    .iter()
                    .map(|x| a.login().authenticate(x).unwrap())
                    .collect()
            };
            // Each run has its own store key and random nonces: compare the opened seeds.
            let mut users = a.store().users().unwrap();
            for u in &mut users {
                if let Some(sealed) = &u.secret {
                    let open = a.sealer.unseal(&u.name, sealed).unwrap();
                    u.secret = Some(crate::secret::Unsealed.seal(&u.name, &open).unwrap());
                }
            }
            let log = a.store().audit(&Default::default()).unwrap();
            drop(dir);
            (ds, users, log)
        };
        let (ds, users, log) = run(true);
        let reasons: Vec<_> = ds.iter().map(|d| d.reason.code()).collect();
        assert_eq!(
            reasons,
            [
                "code_required",
                "wrong_code",
                "valid_code",
                "replayed_code",
                "trusted_network",
                "not_enrolled"
            ]
        );
        let dora = users.iter().find(|u| u.name == "dora").unwrap();
        assert_eq!(dora.login_count, 2);
        assert_eq!(dora.last_step, Some(now / 30));
        assert!(
            users.iter().any(|u| u.name == "nobody"),
            "not enrolled past the deadline is tracked"
        );
        assert_eq!(log.len(), 1 + 5, "enrol + five final decisions");
        assert_eq!((ds, users, log), run(false), "one by one gives the same");
    }

    /// Unlink ends every credential of the old key: backup codes minted before it no
    /// longer log in (nor does the policy ask for a code for them), temporary-access codes
    /// issued before it are gone; a temporary-access code issued after it is the way in.
    #[test]
    fn backup_codes_minted_before_an_unlink_do_not_log_in_after_it() {
        let (_d, a) = setup(0);
        let now = 1_800_000_000;
        let s = TotpSecret::generate().unwrap();
        a.enrolment()
            .enroll(&n("fay"), &s, None, false, "test", now)
            .unwrap();
        let admin = a.admin("test");
        let backup = admin.issue_backup_codes(&n("fay"), 3, None, now).unwrap();
        let early_temp = admin.issue_temp_access(&n("fay"), 3600, 1, now).unwrap();
        admin.unlink(&n("fay"), now + 10).unwrap();
        let rec = a.store().user(&n("fay")).unwrap().unwrap();
        assert!(rec.codes.is_empty(), "{:?}", rec.codes);
        let l = a.login();
        let r = req("fay", "192.0.2.1", now + 20);
        assert_eq!(l.begin(&r).unwrap().reason, Reason::NotEnrolled);
        for code in [&backup[0], &early_temp] {
            assert_eq!(
                l.verify_code(&r, code).unwrap().reason,
                Reason::NotEnrolled,
                "a code minted before the unlink"
            );
        }
        // Even with a temporary code pending (so the policy asks for a code), a backup code
        // of the old key does not match: only the temporary one does.
        let mut rec = a.store().user(&n("fay")).unwrap().unwrap();
        let (_, old_backup) =
            crate::verify::new_one_time_code(mfa_model::OtcKind::Backup, now, None, 1).unwrap();
        let (kept, stored) =
            crate::verify::new_one_time_code(mfa_model::OtcKind::Backup, now, None, 1).unwrap();
        rec.codes.extend([old_backup, stored]);
        a.store
            .transact(&[&n("fay")], &mut |recs| {
                recs[0] = Some(rec.clone());
                Ok(vec![])
            })
            .unwrap();
        let temp = admin
            .issue_temp_access(&n("fay"), 3600, 1, now + 30)
            .unwrap();
        let r = req("fay", "192.0.2.1", now + 40);
        assert_eq!(l.begin(&r).unwrap().outcome, Outcome::NeedCode);
        assert_eq!(l.verify_code(&r, &kept).unwrap().reason, Reason::WrongCode);
        assert_eq!(
            l.verify_code(&r, &temp).unwrap().reason,
            Reason::TemporaryAccess
        );
    }

    /// `mfactl auth`, `temp-access` and `backup-codes` act only on a name the system knows
    /// or the store holds, unless the administrator insists.
    #[test]
    fn an_administrator_vouches_only_for_known_or_stored_names() {
        let (_d, a) = setup(14);
        let l = a.login();
        let vouch = |user: &UserName, force: bool| {
            l.admit_name(user, Voucher::Administrator { force })
                .and_then(Admission::required)
        };
        let ghost = n("ghost-no-such-user-xyz");
        assert!(matches!(
            vouch(&ghost, false),
            Err(CoreError::Refused(mfa_model::Refusal::UnknownName(_)))
        ));
        let msg = vouch(&ghost, false).unwrap_err().to_string();
        assert!(
            msg.contains("NSS") && msg.contains("store") && msg.contains("--force"),
            "{msg}"
        );
        assert!(a.store().user(&ghost).unwrap().is_none(), "nothing written");
        vouch(&ghost, true).unwrap();
        vouch(&n("root"), false).unwrap();
        a.admin("test").issue_temp_access(&ghost, 60, 1, 1).unwrap();
        vouch(&ghost, false).unwrap();
    }

    /// Refused before the policy (a wrong password, a request the front end could not
    /// use): audited, and no record for a name never seen.
    #[test]
    fn unknown_denied_users_get_no_row() {
        let (_d, a) = setup(0);
        let l = a.login();
        let d = l
            .deny_first_factor(&req("mallory", "192.0.2.1", 1))
            .unwrap();
        assert_eq!(d.outcome, Outcome::Deny);
        let d = l
            .deny_request(&req("mallory", "192.0.2.1", 2), Reason::UnknownState)
            .unwrap();
        assert_eq!(d.reason, Reason::UnknownState);
        assert!(a.store().user(&n("mallory")).unwrap().is_none());
        let log = a.store().audit(&Default::default()).unwrap();
        let reasons: Vec<_> = log.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["wrong_password", "unknown_or_expired_state"]);
    }

    /// The portal's sign-in goes through the one path with the code always asked for: a
    /// trusted network, an exemption or a grace period lets no one in without it; an
    /// unenrolled name gets no record; a lock holds even against the right code; an
    /// allowing decision comes with the generation of the key it proved.
    #[test]
    fn a_sign_in_that_always_asks_for_the_code_takes_the_one_path() {
        let (_dir, a) = crate::test_core(|cfg| {
            cfg.policy.trusted_networks = vec!["10.0.0.0/8".parse().unwrap()];
            cfg.policy.exempt_users = vec!["gus".into()];
            cfg.policy.grace_days = 14;
        });
        let now = 1_800_000_000;
        let s = TotpSecret::generate().unwrap();
        a.enrolment()
            .enroll(&n("gus"), &s, None, false, "test", now)
            .unwrap();
        let l = a.login();
        let right = code_at_step(&s, &params(&a), now / 30);
        let wrong = if right.as_str() == "000000" {
            "111111"
        } else {
            "000000"
        };
        // Exempt and on a trusted network: a login is let in without a code, a sign-in not.
        let trusted = past_first_factor(req("gus", "10.1.1.1", now));
        assert_eq!(l.begin(&trusted).unwrap().reason, Reason::TrustedNetwork);
        let (d, key) = l.verify_code_always(&trusted, wrong).unwrap();
        assert_eq!((d.reason, key), (Reason::WrongCode, None));
        let (d, key) = l.verify_code_always(&trusted, &right).unwrap();
        assert_eq!(d.reason, Reason::ValidCode);
        let rec = a.store().user(&n("gus")).unwrap().unwrap();
        assert_eq!(key, KeyGeneration::of(&rec), "the key the code proved");
        // In the grace period, vouched for: refused, and no record made, no grace started.
        let (d, key) = l
            .verify_code_always(&past_first_factor(req("hal", "192.0.2.1", now)), &right)
            .unwrap();
        assert_eq!((d.reason, key), (Reason::NotEnrolled, None));
        assert!(a.store().user(&n("hal")).unwrap().is_none());
        // Locked by wrong codes: refused even with the right code, which is not spent.
        let r = req("gus", "192.0.2.1", now + 60);
        for _ in 0..5 {
            l.verify_code_always(&r, wrong).unwrap();
        }
        let next = code_at_step(&s, &params(&a), (now + 60) / 30);
        let (d, key) = l.verify_code_always(&r, &next).unwrap();
        assert!(d.is_locked() && key.is_none(), "{d:?}");
        let rec = a.store().user(&n("gus")).unwrap().unwrap();
        assert_eq!(
            rec.last_step,
            Some(now / 30),
            "the right code was not spent"
        );
        let log = a.store().audit(&Default::default()).unwrap();
        assert_eq!(log.last().unwrap().reason, d.reason.code(), "audited");
    }

    /// A locked user is refused by the policy on the one path, with or without a code, and
    /// even with the right one.
    #[test]
    fn the_lock_is_checked_on_the_one_path() {
        let (_d, a) = setup(0);
        let now = 1_800_000_000;
        let s = TotpSecret::generate().unwrap();
        a.enrolment()
            .enroll(&n("ed"), &s, None, false, "test", now)
            .unwrap();
        let l = a.login();
        let r = req("ed", "192.0.2.1", now);
        let right = code_at_step(&s, &params(&a), now / 30);
        let wrong = if right.as_str() == "000000" {
            "111111"
        } else {
            "000000"
        };
        for _ in 0..5 {
            l.verify_code(&r, wrong).unwrap();
        }
        assert!(l.begin(&r).unwrap().is_locked());
        assert!(l.verify_code(&r, &right).unwrap().is_locked());
        let rec = a.store().user(&n("ed")).unwrap().unwrap();
        assert_eq!(rec.last_step, None, "the right code was not spent");
    }
}
