//! The one authentication flow behind every front end (PAM, RADIUS, `mfactl auth`):
//! decide, ask for a code where needed, verify it in one store transaction, audit.
//! Front ends translate between their protocol and these calls; they never decide.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use mfa_config::{Config, ConfigError};
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, Syslog};
use crate::groups::groups_of;
use crate::net::ClientAddr;
use crate::policy::{Decision, Facts, Outcome, Reason, decide, grace_deadline};
use crate::secret::TotpSecret;
use crate::store::{OpenMode, SqliteStore, Store, StoreError, UserRecord};
use crate::totp::{CodeMatch, TotpParams, check};
use crate::verify::{apply_code, note_outcome};

/// Everything that can go wrong inside; every front end denies on any of these.
#[derive(Debug)]
pub enum CoreError {
    Config(ConfigError),
    Store(StoreError),
    Invalid(String),
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Config(e) => write!(f, "{e}"),
            CoreError::Store(e) => write!(f, "{e}"),
            CoreError::Invalid(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for CoreError {}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        CoreError::Store(e)
    }
}

impl From<ConfigError> for CoreError {
    fn from(e: ConfigError) -> Self {
        CoreError::Config(e)
    }
}

/// One authentication attempt as a front end sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub user: String,
    pub client: ClientAddr,
    /// PAM service (`sshd`, `sudo`), RADIUS client name, or `mfactl`.
    pub service: String,
    /// Unix seconds. Front ends pass the clock; tests of the core pin it.
    pub now: i64,
}

impl Request {
    /// The audit event of decision `d` about this request.
    pub fn event(&self, d: &Decision) -> AuditEvent {
        AuditEvent::for_decision(
            self.now,
            &self.user,
            &self.service,
            self.client.ip().map(|i| i.to_string()),
            d,
        )
    }

    pub fn new(user: &str, client: ClientAddr, service: &str) -> Self {
        Self {
            user: user.into(),
            client,
            service: service.into(),
            now: now(),
        }
    }
}

/// The system clock in Unix seconds (0 if the clock is before 1970, which fails every code).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

pub struct Authenticator {
    config: Arc<Config>,
    store: Box<dyn Store>,
    syslog: Option<Syslog>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Opens the store named by the configuration. `OpenMode::Existing` fails when the
    /// database is missing (the PAM module must not silently start an empty store).
    pub fn open(config: Arc<Config>, mode: OpenMode, process: &str) -> Result<Self, CoreError> {
        let store = SqliteStore::open(&config.store.path, mode, config.store.busy_timeout.0)?;
        Ok(Self::with_store(config, Box::new(store), process))
    }

    /// Loads the configuration file and opens its store.
    pub fn from_config_file(path: &Path, mode: OpenMode, process: &str) -> Result<Self, CoreError> {
        let cfg = mfa_config::load(path)?;
        Self::open(Arc::new(cfg), mode, process)
    }

    pub fn with_store(config: Arc<Config>, store: Box<dyn Store>, process: &str) -> Self {
        let syslog = config.audit.syslog.then(|| Syslog::open(process));
        Self {
            config,
            store,
            syslog,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    fn params(&self) -> TotpParams {
        TotpParams::from_config(&self.config.totp)
    }

    /// Sends one operation's events to syslog, then now and then (about one operation in
    /// 512, not one event: a batch is one operation) prunes the audit trail to
    /// `audit.retention`, so no front end or cron job is needed to keep it bounded.
    fn log(&self, events: &[AuditEvent]) {
        if let Some(s) = &self.syslog {
            for ev in events {
                s.info(&ev.line());
            }
        }
        let mut b = [0u8; 2];
        if let Some(ev) = events.first()
            && getrandom::fill(&mut b).is_ok()
            && u16::from_le_bytes(b) % 512 == 0
            && let Err(e) = self.prune_audit(ev.time)
            && let Some(s) = &self.syslog
        {
            s.warning(&format!("audit pruning failed: {e}"));
        }
    }

    /// What the policy says before any code is seen. Reads only; nothing is recorded.
    pub fn decide(&self, req: &Request) -> Result<Decision, CoreError> {
        self.decide_with_groups(req, &self.groups_for(&req.user))
    }

    /// `decide` with the groups from [`Authenticator::groups_for`] already looked up, for a
    /// front end that needs them again for the final decision (one NSS lookup, not two).
    pub fn decide_with_groups(
        &self,
        req: &Request,
        groups: &[String],
    ) -> Result<Decision, CoreError> {
        let record = self.store.user(&req.user)?;
        Ok(decide(
            &Facts {
                user: &req.user,
                client: req.client,
                now: req.now,
                record: record.as_ref(),
                groups,
            },
            &self.config,
        ))
    }

    /// Records a final decision (allow or deny): audit, login statistics, and the start of a
    /// user's grace period the first time it applies.
    pub fn record(&self, req: &Request, d: &Decision) -> Result<(), CoreError> {
        let (cfg, params) = (&*self.config, self.params());
        let mut ev = None;
        self.store.transact(&[&req.user], &mut |recs| {
            let e = settle(&mut recs[0], req, d, cfg, params);
            ev = Some(e.clone());
            Ok(vec![e])
        })?;
        if let Some(ev) = ev {
            self.log(std::slice::from_ref(&ev));
        }
        Ok(())
    }

    /// The groups the policy needs for `user`: looked up (NSS: files, SSSD, LDAP) only when
    /// `exempt_groups` is set. Call it outside any batch, since a directory can be slow.
    pub fn groups_for(&self, user: &str) -> Vec<String> {
        if self.config.policy.exempt_groups.is_empty() {
            Vec::new()
        } else {
            groups_of(user)
        }
    }

    /// Decides and, where a code is needed and one is given, verifies it, for many logins in
    /// one store transaction: one commit (one fsync) for the whole batch, which is what lets
    /// a busy RADIUS server keep up. Each attempt sees the effects of those before it
    /// (a code used twice in one batch is a replay the second time), exactly as if they ran
    /// one by one; nothing is acknowledged before the commit. An attempt that needs a code
    /// and has none gets `NeedCode` and writes nothing.
    pub fn authenticate_many(&self, attempts: &[Attempt]) -> Result<Vec<Decision>, CoreError> {
        self.batch(attempts, false)
    }

    /// `authenticate_many` committed without waiting for the disk: the decisions are final
    /// and visible to every other process at once, but durable only after the next
    /// [`Authenticator::sync`]. The caller must acknowledge none of them before that
    /// returns. This lets one thread compute the next batch while another waits for the
    /// fsync of the last ones.
    pub fn authenticate_many_deferred(
        &self,
        attempts: &[Attempt],
    ) -> Result<Vec<Decision>, CoreError> {
        self.batch(attempts, true)
    }

    /// Makes every decision committed so far durable.
    pub fn sync(&self) -> Result<(), CoreError> {
        Ok(self.store.sync()?)
    }

    /// See [`Store::checkpoint`]: the deferred writer's housekeeping.
    pub fn checkpoint(&self, on_writer: bool) -> Result<u64, CoreError> {
        Ok(self.store.checkpoint(on_writer)?)
    }

    fn batch(&self, attempts: &[Attempt], deferred: bool) -> Result<Vec<Decision>, CoreError> {
        let (cfg, params) = (&*self.config, self.params());
        let mut names: Vec<&str> = Vec::new();
        let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let index: Vec<usize> = attempts
            .iter()
            .map(|a| {
                *seen.entry(a.req.user.as_str()).or_insert_with(|| {
                    names.push(&a.req.user);
                    names.len() - 1
                })
            })
            .collect();
        let mut decisions = Vec::with_capacity(attempts.len());
        let mut logged = Vec::new();
        let mut tx = |recs: &mut [Option<UserRecord>]| {
            decisions.clear();
            let mut events = Vec::with_capacity(attempts.len());
            for (a, &i) in attempts.iter().zip(&index) {
                let slot = recs.get_mut(i).ok_or("batch index out of range")?;
                let (d, ev) = attempt_in_tx(slot, a, cfg, params);
                decisions.push(d);
                events.extend(ev);
            }
            // Kept for `log`: all of them for syslog, else only the first (its time).
            if self.syslog.is_some() {
                logged.clone_from(&events);
            } else {
                logged.clear();
                logged.extend(events.first().cloned());
            }
            Ok(events)
        };
        if deferred {
            self.store.transact_deferred(&names, &mut tx)?;
        } else {
            self.store.transact(&names, &mut tx)?;
        }
        self.log(&logged);
        Ok(decisions)
    }

    /// One login through [`Authenticator::authenticate_many`].
    pub fn authenticate(&self, attempt: &Attempt) -> Result<Decision, CoreError> {
        let mut d = self.authenticate_many(std::slice::from_ref(attempt))?;
        d.pop()
            .ok_or_else(|| CoreError::Invalid("no decision".into()))
    }

    /// `decide`, and `record` when the decision is final. The usual first call.
    pub fn begin(&self, req: &Request) -> Result<Decision, CoreError> {
        let d = self.decide(req)?;
        if d.outcome != Outcome::NeedCode {
            self.record(req, &d)?;
        }
        Ok(d)
    }

    /// Verifies a code (TOTP, backup or temporary access) in one write transaction with the
    /// replay check and the lockout counters, and records the result.
    pub fn verify_code(&self, req: &Request, code: &str) -> Result<Decision, CoreError> {
        let cfg = &self.config;
        let mut decision = Decision::deny(Reason::NotEnrolled);
        self.store.transact(&[&req.user], &mut |recs| {
            decision = code_in_tx(&mut recs[0], req, code, cfg);
            Ok(vec![req.event(&decision)])
        })?;
        self.log(&[req.event(&decision)]);
        Ok(decision)
    }

    /// Records a refused first factor (RADIUS password through PAM).
    pub fn deny_first_factor(&self, req: &Request) -> Result<Decision, CoreError> {
        let d = Decision::deny(Reason::WrongPassword);
        let ev = req.event(&d);
        self.store.append_audit(std::slice::from_ref(&ev))?;
        self.log(std::slice::from_ref(&ev));
        Ok(d)
    }

    /// Records a request the front end refused before the policy could run (a RADIUS
    /// challenge State unknown or expired, an unsupported authentication method, a
    /// malformed password attribute), so the audit trail shows it next to the decisions.
    /// `reason` is the front end's stable identifier; never a code or secret.
    pub fn deny_request(&self, req: &Request, reason: &str) -> Result<(), CoreError> {
        let ev = AuditEvent {
            time: req.now,
            user: req.user.clone(),
            service: req.service.clone(),
            client_ip: req.client.ip().map(|i| i.to_string()),
            decision: "deny".into(),
            reason: reason.into(),
        };
        self.store.append_audit(std::slice::from_ref(&ev))?;
        self.log(std::slice::from_ref(&ev));
        Ok(())
    }

    /// Stores a new secret for `user`. With `confirm_code`, the code must match the secret
    /// (the user proved the app has it), and its step becomes the last accepted one so the
    /// confirmation code cannot be replayed. Refuses to replace an existing secret unless
    /// `replace`.
    pub fn enroll(
        &self,
        user: &str,
        secret: &TotpSecret,
        confirm_code: Option<&str>,
        replace: bool,
        actor: &str,
        now: i64,
    ) -> Result<(), CoreError> {
        let ev = AuditEvent::admin(now, user, "enroll", actor);
        self.enroll_with_event(user, secret, confirm_code, replace, now, &ev)
    }

    /// `enroll`, writing `event` as its audit entry; its decision becomes the action taken
    /// (`enroll` or `re-enroll`).
    fn enroll_with_event(
        &self,
        user: &str,
        secret: &TotpSecret,
        confirm_code: Option<&str>,
        replace: bool,
        now: i64,
        event: &AuditEvent,
    ) -> Result<(), CoreError> {
        if !mfa_config::valid_name(user) {
            return Err(CoreError::Invalid(format!(
                "{user:?} is not a valid user name"
            )));
        }
        let params = self.params();
        let last_step =
            match confirm_code {
                Some(code) => match check(
                    secret,
                    &params,
                    self.config.totp.skew,
                    &crate::verify::normalize_code(code),
                    now,
                    None,
                ) {
                    CodeMatch::Fresh(step) => Some(step),
                    _ => return Err(CoreError::Invalid(
                        "the code does not match the new key; check the app's clock and try again"
                            .into(),
                    )),
                },
                None => None,
            };
        self.store.transact(&[user], &mut |recs| {
            let rec = recs[0].get_or_insert_with(|| UserRecord::new(user, params, now));
            if rec.enrolled() && !replace {
                return Err(format!(
                    "user {user:?} is already enrolled; unlink first, or use --replace"
                ));
            }
            let action = if rec.enrolled() {
                "re-enroll"
            } else {
                "enroll"
            };
            rec.secret = Some(secret.clone());
            rec.params = params;
            rec.mfa_created = rec.mfa_created.or(Some(now));
            rec.mfa_changed = Some(now);
            rec.last_step = last_step;
            rec.failures = 0;
            rec.first_failure = None;
            rec.locked_until = None;
            let mut ev = event.clone();
            ev.decision = action.into();
            Ok(vec![ev])
        })?;
        Ok(())
    }

    /// Self-enrolment at login: stores the secret once the user typed a matching code. The
    /// login itself was already recorded by `begin`; the enrolment writes its own audit event
    /// (`enroll` by the PAM service), so nothing is counted twice.
    pub fn self_enroll(
        &self,
        req: &Request,
        secret: &TotpSecret,
        code: &str,
    ) -> Result<Decision, CoreError> {
        let d = Decision::allow(Reason::SelfEnrolled);
        let mut ev = req.event(&d);
        // Never a replacement (`replace` is false below), so the stored action is `enroll`.
        ev.decision = "enroll".into();
        match self.enroll_with_event(&req.user, secret, Some(code), false, req.now, &ev) {
            Ok(()) => {
                self.log(std::slice::from_ref(&ev));
                Ok(d)
            }
            Err(CoreError::Invalid(_)) => Ok(Decision::deny(Reason::WrongCode)),
            Err(e) => Err(e),
        }
    }
}

/// One login for [`Authenticator::authenticate_many`].
#[derive(Debug, Clone)]
pub struct Attempt {
    pub req: Request,
    /// The code the user typed, if the front end has one.
    pub code: Option<Zeroizing<String>>,
    /// From [`Authenticator::groups_for`].
    pub groups: Vec<String>,
}

/// What a final decision does to the user's record: login statistics, the start of the grace
/// period the first time it applies, and a new record where the roll-out tracks the user.
fn settle(
    slot: &mut Option<UserRecord>,
    req: &Request,
    d: &Decision,
    cfg: &Config,
    params: TotpParams,
) -> AuditEvent {
    // A denied name we have never seen gets no row: password sprayers must not fill the
    // report. Everyone else is tracked for the roll-out view.
    let create = d.outcome == Outcome::Allow || d.reason == Reason::NotEnrolled;
    if slot.is_none() && create {
        *slot = Some(UserRecord::new(&req.user, params, req.now));
    }
    if let Some(rec) = slot.as_mut() {
        if !rec.enrolled() && rec.grace_started.is_none() {
            let go_live = cfg.policy.enforce_from.map_or(i64::MIN, |i| i.0);
            if req.now >= go_live {
                let deadline = grace_deadline(Some(rec), cfg, req.now);
                rec.grace_started = Some(deadline - i64::from(cfg.policy.grace_days) * 86_400);
            }
        }
        note_outcome(rec, d, &req.client, req.now);
    }
    req.event(d)
}

/// One attempt on the locked record: the policy, then the code where one is needed.
fn attempt_in_tx(
    slot: &mut Option<UserRecord>,
    a: &Attempt,
    cfg: &Config,
    params: TotpParams,
) -> (Decision, Option<AuditEvent>) {
    let req = &a.req;
    let facts = Facts {
        user: &req.user,
        client: req.client,
        now: req.now,
        record: slot.as_ref(),
        groups: &a.groups,
    };
    let d = decide(&facts, cfg);
    if d.outcome != Outcome::NeedCode {
        let ev = settle(slot, req, &d, cfg, params);
        return (d, Some(ev));
    }
    let Some(code) = &a.code else {
        return (d, None);
    };
    let d = code_in_tx(slot, req, code, cfg);
    let ev = req.event(&d);
    (d, Some(ev))
}

/// A presented code on the locked record: checked, counted, and the login statistics
/// updated. A user with no record has nothing a code could match.
fn code_in_tx(slot: &mut Option<UserRecord>, req: &Request, code: &str, cfg: &Config) -> Decision {
    match slot.as_mut() {
        Some(rec) => {
            let d = apply_code(rec, code, req.now, cfg);
            note_outcome(rec, &d, &req.client, req.now);
            d
        }
        None => Decision::deny(Reason::NotEnrolled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::totp::code_at_step;
    use std::net::IpAddr;

    fn setup(grace: u32) -> (tempfile::TempDir, Authenticator) {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.store.path = dir.path().join("mfa.db");
        cfg.policy.trusted_networks = vec!["10.0.0.0/8".parse().unwrap()];
        cfg.policy.grace_days = grace;
        cfg.audit.syslog = false;
        let a = Authenticator::open(Arc::new(cfg), OpenMode::Create, "test").unwrap();
        (dir, a)
    }

    fn req(user: &str, ip: &str, now: i64) -> Request {
        Request {
            user: user.into(),
            client: ClientAddr::Remote(ip.parse::<IpAddr>().ok()),
            service: "test".into(),
            now,
        }
    }

    #[test]
    fn full_flow_enrolled_user() {
        let (_d, a) = setup(0);
        let now = 1_800_000_000;
        let s = TotpSecret::generate().unwrap();
        a.enroll("alice", &s, None, false, "test", now).unwrap();
        assert!(
            a.enroll("alice", &s, None, false, "test", now).is_err(),
            "no silent re-enrolment"
        );

        let r = req("alice", "192.0.2.1", now);
        assert_eq!(a.begin(&r).unwrap().outcome, Outcome::NeedCode);
        let code = code_at_step(&s, &a.params(), now / 30);
        assert_eq!(a.verify_code(&r, &code).unwrap().reason, Reason::ValidCode);
        assert_eq!(
            a.verify_code(&r, &code).unwrap().reason,
            Reason::ReplayedCode
        );
        assert_eq!(
            a.begin(&req("alice", "10.9.9.9", now)).unwrap().reason,
            Reason::TrustedNetwork
        );

        let rec = a.store().user("alice").unwrap().unwrap();
        assert_eq!(rec.login_count, 2);
        assert_eq!(rec.failures, 0);
        assert_eq!(rec.last_ip.as_deref(), Some("10.9.9.9"));
        let log = a.store().audit(&Default::default()).unwrap();
        let reasons: Vec<_> = log.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(
            reasons,
            ["test", "valid_code", "replayed_code", "trusted_network"]
        );
    }

    #[test]
    fn enrolment_confirmation_code_cannot_be_replayed() {
        let (_d, a) = setup(0);
        let now = 1_800_000_000;
        let s = TotpSecret::generate().unwrap();
        let code = code_at_step(&s, &a.params(), now / 30);
        assert!(
            a.enroll("bob", &s, Some("000000"), false, "t", now)
                .is_err()
                || code.as_str() == "000000"
        );
        a.enroll("bob", &s, Some(&code), false, "t", now).unwrap();
        assert_eq!(
            a.verify_code(&req("bob", "192.0.2.1", now), &code)
                .unwrap()
                .reason,
            Reason::ReplayedCode
        );
    }

    #[test]
    fn grace_start_is_stored_once() {
        let (_d, a) = setup(14);
        let now = 1_800_000_000;
        let d = a.begin(&req("carol", "192.0.2.1", now)).unwrap();
        assert_eq!(d.reason, Reason::GracePeriod { days_left: 14 });
        let d = a
            .begin(&req("carol", "192.0.2.1", now + 86_400 * 10))
            .unwrap();
        assert_eq!(d.reason, Reason::GracePeriod { days_left: 4 });
        assert_eq!(
            a.store().user("carol").unwrap().unwrap().grace_started,
            Some(now)
        );
        let d = a
            .begin(&req("carol", "192.0.2.1", now + 86_400 * 14))
            .unwrap();
        assert_eq!(d.reason, Reason::NotEnrolled);
    }

    #[test]
    fn a_batch_is_the_same_as_one_by_one() {
        let (_d, a) = setup(0);
        let now = 1_800_000_000;
        let s = TotpSecret::generate().unwrap();
        a.enroll("dora", &s, None, false, "test", now).unwrap();
        let code = code_at_step(&s, &a.params(), now / 30);
        let at = |ip: &str, code: Option<&str>| Attempt {
            req: req("dora", ip, now),
            code: code.map(|c| Zeroizing::new(c.to_string())),
            groups: vec![],
        };
        let ds = a
            .authenticate_many(&[
                at("192.0.2.1", None),
                at("192.0.2.1", Some("000000")),
                at("192.0.2.1", Some(&code)),
                at("192.0.2.1", Some(&code)),
                at("10.1.1.1", None),
                Attempt {
                    req: req("nobody", "192.0.2.1", now),
                    code: Some(Zeroizing::new("1".into())),
                    groups: vec![],
                },
            ])
            .unwrap();
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
        let rec = a.store().user("dora").unwrap().unwrap();
        assert_eq!(rec.login_count, 2);
        assert_eq!(rec.last_step, Some(now / 30));
        assert!(
            a.store().user("nobody").unwrap().is_some(),
            "not enrolled past the deadline is tracked"
        );
        assert_eq!(
            a.store().audit(&Default::default()).unwrap().len(),
            1 + 5,
            "enrol + five final decisions"
        );
    }

    #[test]
    fn unknown_denied_users_get_no_row() {
        let (_d, a) = setup(0);
        let d = a
            .verify_code(&req("mallory", "192.0.2.1", 1), "123456")
            .unwrap();
        assert_eq!(d.outcome, Outcome::Deny);
        assert!(a.store().user("mallory").unwrap().is_none());
        assert_eq!(a.store().audit(&Default::default()).unwrap().len(), 1);
    }
}
