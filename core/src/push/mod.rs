//! Push approval (issue 20): a sign-in approved on a registered phone, with number matching.
//!
//! The pieces and who calls them:
//! - a front end (PAM, mfa-radiusd) writes a sign-in request with [`Push::start`] and shows
//!   the number it gets; it waits ([`Push::status`]) and settles the login on the one path
//!   with [`crate::login::Login::verify_push`], where an approval stands in for the code;
//! - the portal, the one sender, reads the outbox ([`Push::outbox`]), delivers by Web Push
//!   and reports back ([`Push::delivered`]); it writes its heartbeat ([`Push::heartbeat`])
//!   so that a push is refused at once where nothing would deliver it, and waits for work
//!   with [`Push::wait_for_requests`]; it registers and removes phones
//!   ([`Push::register_device`], [`Push::remove_own_device`]) for a signed-in user, shows a
//!   request ([`Push::view`]) and takes the phone's signed decision ([`Push::decide`]);
//! - `mfactl push list|remove|unblock` ([`Push::devices`], [`Push::remove_device`],
//!   [`Push::unblock`]).
//!
//! Every write is one transaction of the user's ([`crate::store::Store::transact_push`]),
//! so the rules hold across processes and nodes: at most one pending request per user and
//! service, `[push] rate` per user, a request decided once, only while pending and
//! unexpired, only by a registered device of its user, whose signature verifies; "This
//! wasn't me" blocks pushes to the user for `[push] fraud_block`.

pub mod message;
pub mod subscription;
#[cfg(any(test, feature = "conformance"))]
pub mod testing;
pub mod vapid;

use std::time::Duration;

use mfa_config::ClientPush;
use mfa_model::{
    Action, AuditEvent, DecisionRefusal, DeviceId, DeviceRefusal, MAX_DELIVERY_ERROR_BYTES,
    MAX_PUSH_DEVICES, MAX_PUSH_SERVICE_BYTES, PUSH_NUMBERS, PUSH_PUBLIC_KEY_BYTES, PushDevice,
    PushId, PushRefusal, PushRequest, PushState, ReasonCode, Refusal, UserName,
};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use subtle::ConstantTimeEq;

use crate::core::Core;
use crate::error::CoreError;
use crate::keygen::KeyGeneration;
use crate::login::{Request, Service};
use crate::policy::{Facts, Outcome, Reason, decide};
use crate::secret::SealedFor;
use crate::store::{Abort, StoreError};

pub use message::{PushDecision, decision_message, verify};
pub use subscription::Subscription;
pub use vapid::VapidKey;

/// How often the portal writes its heartbeat ([`Push::heartbeat`]).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// A heartbeat this old (three intervals), or this far ahead of this node's clock, means no
/// portal is running: [`Push::start`] refuses with [`PushRefusal::NoPortal`].
pub const HEARTBEAT_STALE_SECS: i64 = 15;

/// How long a request taken from the outbox ([`Push::outbox`]) stays the taking portal's:
/// several times one post to a push service (the portal gives each 8 s), and half a
/// request's default lifetime, so that a portal that died with it leaves another portal
/// time to push it before it expires.
pub const CLAIM_SECONDS: i64 = 30;

/// How long a request is kept after it was made (for [`Push::status`] and the audit
/// trail's company); older ones are deleted as the user's next request is written, and by
/// the audit pruning.
pub const KEEP_REQUESTS_SECS: i64 = 86_400;

/// What [`Push::start`] gives the front end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushStarted {
    pub id: PushId,
    /// The number to show ("Enter 42 on your phone"); `None` without number matching.
    pub number: Option<u8>,
    /// When the request expires: wait no longer.
    pub expires: i64,
}

/// What [`Push::decide`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    /// The request's new state: approved, denied or fraud.
    pub state: PushState,
    /// An approval with the wrong number (or none where one was asked): denied.
    pub wrong_number: bool,
}

/// A registered device as lists show it (no subscription, no key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub id: DeviceId,
    pub name: String,
    pub created: i64,
    pub last_used: Option<i64>,
}

impl From<&PushDevice> for DeviceInfo {
    fn from(d: &PushDevice) -> Self {
        Self {
            id: d.id,
            name: d.name.clone(),
            created: d.created,
            last_used: d.last_used,
        }
    }
}

/// A request as the approval page shows it: never its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushView {
    pub id: PushId,
    pub user: UserName,
    pub service: String,
    pub client_ip: Option<String>,
    pub created: i64,
    pub expires: i64,
    /// Its state as of the time asked ([`PushRequest::state_at`]).
    pub state: PushState,
    /// The page shows the number field.
    pub number_matching: bool,
}

impl PushView {
    fn of(r: &PushRequest, now: i64) -> Self {
        Self {
            id: r.id,
            user: r.user.clone(),
            service: r.service.clone(),
            client_ip: r.client_ip.clone(),
            created: r.created,
            expires: r.expires,
            state: r.state_at(now),
            number_matching: r.number.is_some(),
        }
    }
}

/// A push for the portal to deliver: one request, to each device of its user.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub request: PushId,
    pub user: UserName,
    /// When the request expires: the push's `TTL` is what is left of it.
    pub expires: i64,
    /// The payload to encrypt (RFC 8291): JSON with the request's id and what to show,
    /// never its number nor anything secret:
    /// `{"v":1,"id":"<hex>","service":"sshd","client_ip":"192.0.2.7","created":T,"expires":T,"number_matching":true}`
    /// (`client_ip` is `null` where unknown).
    pub payload: String,
    /// Each device of the user with its opened subscription. Empty where the user has none
    /// left: report it ([`Push::delivered`]) and the request is undeliverable.
    pub targets: Vec<Target>,
}

/// One device to push to.
#[derive(Debug, Clone)]
pub struct Target {
    pub device: DeviceId,
    pub subscription: Subscription,
}

/// What the push service said about one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted (201).
    Sent,
    /// The subscription is gone (404, 410): the device is removed.
    Gone,
    /// Refused otherwise, or not reachable: the push service's status and words, never a
    /// secret.
    Failed(String),
}

/// The push service. Get one from [`Core::push`].
#[derive(Debug, Clone, Copy)]
pub struct Push<'a> {
    pub(crate) core: &'a Core,
    /// Who the audit trail names for the administrator's and the portal's events.
    pub(crate) actor: &'a str,
}

fn refused<T>(r: Refusal) -> Result<T, StoreError> {
    Err(StoreError::Aborted(Abort::Refused(r)))
}

fn random_id() -> Result<[u8; 16], CoreError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)?;
    Ok(b)
}

/// A number for number matching, uniform over [`PUSH_NUMBERS`].
fn random_number() -> Result<u8, CoreError> {
    let span = PUSH_NUMBERS.end() - PUSH_NUMBERS.start() + 1;
    // Rejection sampling keeps it uniform: 180 is the largest multiple of 90 below 256.
    let limit = 256 / u16::from(span) * u16::from(span);
    loop {
        let mut b = [0u8; 1];
        getrandom::fill(&mut b)?;
        if u16::from(b[0]) < limit {
            return Ok(PUSH_NUMBERS.start() + b[0] % span);
        }
    }
}

/// The approval key a phone sent, as the uncompressed point stored: a point (65 bytes) or
/// SPKI DER (WebCrypto's `exportKey("raw")` or `"spki"`), on P-256.
pub fn normalize_public_key(key: &[u8]) -> Result<Vec<u8>, String> {
    use p256::pkcs8::DecodePublicKey;
    let pk = p256::PublicKey::from_sec1_bytes(key)
        .or_else(|_| p256::PublicKey::from_public_key_der(key))
        .map_err(|_| "not a P-256 public key (a raw point or SPKI DER)".to_string())?;
    let point = pk.to_encoded_point(false).as_bytes().to_vec();
    if point.len() != PUSH_PUBLIC_KEY_BYTES {
        return Err("not a P-256 public key".into());
    }
    Ok(point)
}

/// Whether a heartbeat written at `at` shows a portal running at `now`.
pub fn portal_alive(at: Option<i64>, now: i64) -> bool {
    at.is_some_and(|t| (now - HEARTBEAT_STALE_SECS..=now + HEARTBEAT_STALE_SECS).contains(&t))
}

impl Push<'_> {
    fn event(&self, now: i64, user: &UserName, action: Action, reason: ReasonCode) -> AuditEvent {
        AuditEvent::admin(now, user, self.actor, action, reason, None)
    }

    /// A request's event: the request's service and address, the actor's name in the detail.
    fn request_event(&self, now: i64, r: &PushRequest, reason: ReasonCode) -> AuditEvent {
        let mut ev = AuditEvent::admin(now, &r.user, &r.service, Action::Push, reason, None);
        ev.client_ip = r.client_ip.clone();
        ev
    }

    fn after_commit(&self, events: &[AuditEvent]) {
        if !events.is_empty() {
            self.core.sink.committed(self.core.store.as_ref(), events);
        }
    }

    /// Push as configured for what asks: a RADIUS client's (or a PAM host's client's) own
    /// `push` and `number_matching`, else `[push]`'s.
    pub fn settings_for(&self, service: &Service) -> ClientPush {
        let cfg = &self.core.config;
        match service {
            Service::Radius { client, .. } | Service::RemotePam { client, .. } => {
                cfg.push_for_client_named(client)
            }
            Service::Pam(_) | Service::Other(_) => cfg.push_default(),
        }
    }

    // ---------------------------------------------------------------- devices

    /// Registers a phone for `user`, who signed in on the portal with password and code
    /// (`signed_in`: the key the sign-in proved, checked in the transaction as every portal
    /// action is: a key replaced or removed since, or a lock, refuses it). `subscription`
    /// is the browser's `PushSubscription` JSON, `public_key` the device's approval key
    /// (a P-256 point or SPKI DER). A phone registered again (the same endpoint) replaces its
    /// earlier registration. Audited (`push-device`, `device_registered`).
    pub fn register_device(
        &self,
        user: &UserName,
        signed_in: &KeyGeneration,
        name: &str,
        subscription: &str,
        public_key: &[u8],
        now: i64,
    ) -> Result<DeviceInfo, CoreError> {
        let cfg = &self.core.config.push;
        let no = |r: DeviceRefusal| CoreError::Refused(Refusal::PushDevice(r));
        if !cfg.enabled {
            return Err(no(DeviceRefusal::Off));
        }
        mfa_model::check_device_name(name).map_err(|e| no(DeviceRefusal::Name(e)))?;
        let public_key =
            normalize_public_key(public_key).map_err(|e| no(DeviceRefusal::PublicKey(e)))?;
        let sub = Subscription::parse(subscription, cfg)
            .map_err(|e| no(DeviceRefusal::Subscription(e)))?;
        let id = DeviceId(random_id()?);
        let sealer = self.core.sealer.as_ref();
        let sealed = sealer
            .seal_blob(
                &SealedFor::PushSubscription { user, device: &id },
                &sub.to_stored(),
            )
            .map_err(CoreError::Secret)?;
        let device = PushDevice {
            id,
            user: user.clone(),
            name: name.to_string(),
            subscription: sealed,
            public_key,
            created: now,
            last_used: None,
        };
        let mut logged = Vec::new();
        self.core.store.transact_push(user, &mut |slot, tx| {
            logged.clear();
            signed_in.holds(user, slot.as_ref(), now).or_else(refused)?;
            let mut replaced = Vec::new();
            let devices = tx.devices()?;
            for d in &devices {
                let what = SealedFor::PushSubscription {
                    user,
                    device: &d.id,
                };
                // One that does not open is not the same phone; it stays for the admin.
                let same = sealer
                    .unseal_blob(&what, &d.subscription)
                    .ok()
                    .and_then(|b| Subscription::from_stored(&b).ok())
                    .is_some_and(|s| s.endpoint() == sub.endpoint());
                if same {
                    replaced.push(d.id);
                }
            }
            if devices.len() - replaced.len() >= MAX_PUSH_DEVICES {
                return refused(Refusal::PushDevice(DeviceRefusal::TooMany));
            }
            for r in &replaced {
                tx.remove_device(r)?;
            }
            tx.put_device(&device)?;
            let mut ev = self.event(now, user, Action::PushDevice, ReasonCode::DeviceRegistered);
            ev.detail = Some(format!(
                "{} {:?}{}",
                id,
                device.name,
                if replaced.is_empty() {
                    String::new()
                } else {
                    format!(", replacing {}", replaced.len())
                }
            ));
            logged.push(ev);
            Ok(logged.clone())
        })?;
        self.after_commit(&logged);
        Ok(DeviceInfo::from(&device))
    }

    /// The devices `user` registered, oldest first.
    pub fn devices(&self, user: &UserName) -> Result<Vec<DeviceInfo>, CoreError> {
        Ok(self
            .core
            .store
            .push_devices(user)?
            .iter()
            .map(DeviceInfo::from)
            .collect())
    }

    /// Removes the device `id` of `user` (the administrator: `mfactl push remove`); says
    /// whether there was one. Audited when it was.
    pub fn remove_device(
        &self,
        user: &UserName,
        id: &DeviceId,
        now: i64,
    ) -> Result<bool, CoreError> {
        self.remove(user, None, id, now)
    }

    /// [`Push::remove_device`] by the user signed in on the portal (`signed_in`, checked in
    /// the transaction).
    pub fn remove_own_device(
        &self,
        user: &UserName,
        signed_in: &KeyGeneration,
        id: &DeviceId,
        now: i64,
    ) -> Result<bool, CoreError> {
        self.remove(user, Some(signed_in), id, now)
    }

    fn remove(
        &self,
        user: &UserName,
        signed_in: Option<&KeyGeneration>,
        id: &DeviceId,
        now: i64,
    ) -> Result<bool, CoreError> {
        let mut logged = Vec::new();
        let mut removed = false;
        self.core.store.transact_push(user, &mut |slot, tx| {
            logged.clear();
            if let Some(k) = signed_in {
                k.holds(user, slot.as_ref(), now).or_else(refused)?;
            }
            let name = tx
                .devices()?
                .into_iter()
                .find(|d| d.id == *id)
                .map(|d| d.name);
            removed = tx.remove_device(id)?;
            if removed {
                let mut ev = self.event(now, user, Action::PushDevice, ReasonCode::DeviceRemoved);
                ev.detail = Some(format!("{id} {:?}", name.unwrap_or_default()));
                logged.push(ev);
            }
            Ok(logged.clone())
        })?;
        self.after_commit(&logged);
        Ok(removed)
    }

    /// Until when pushes to `user` are blocked ("This wasn't me"), where they are at `now`.
    pub fn blocked_until(&self, user: &UserName, now: i64) -> Result<Option<i64>, CoreError> {
        Ok(self.core.store.push_block(user)?.filter(|&u| now < u))
    }

    /// Lifts the block of "This wasn't me" (the administrator, after a mistake); says
    /// whether one was in force. Audited (`push`, `push_unblocked`) when it was.
    pub fn unblock(&self, user: &UserName, now: i64) -> Result<bool, CoreError> {
        let mut logged = Vec::new();
        let mut was = false;
        self.core.store.transact_push(user, &mut |_, tx| {
            logged.clear();
            let until = tx.block()?;
            was = until.is_some_and(|u| now < u);
            if until.is_some() {
                tx.set_block(None)?;
            }
            if was {
                logged.push(self.event(now, user, Action::Push, ReasonCode::PushUnblocked));
            }
            Ok(logged.clone())
        })?;
        self.after_commit(&logged);
        Ok(was)
    }

    // ---------------------------------------------------------------- requests

    /// Writes a sign-in request for `req` (the login waiting for its second factor), for the
    /// portal to push to the user's phones. `can_show_number`: the front end can show a
    /// number (a PAM prompt, a RADIUS challenge; not RD Gateway in code-only mode), so
    /// number matching applies where it is configured. Refused with a typed
    /// [`PushRefusal`] (`CoreError::Refused(Refusal::Push(_))`), each checked in the user's
    /// transaction: push off (here or for this client), no portal alive, a login the policy
    /// settles without a code (or refuses: a lock), not enrolled, blocked ("This wasn't
    /// me"), no device, a request of this user and service pending already, the rate.
    /// A blocked or rate-limited attempt is audited; a written request is (`push_sent`).
    pub fn start(&self, req: &Request, can_show_number: bool) -> Result<PushStarted, CoreError> {
        self.start_for(req, can_show_number, false)
    }

    /// [`Push::start`] for a sign-in that must prove the key whatever else would let it in
    /// (the console's sign-in: a trusted network, an exemption or a grace period never
    /// stands in for the second factor there; see `Facts::code_always`). Settle it with
    /// [`crate::login::Login::verify_push_always`].
    pub fn start_always(
        &self,
        req: &Request,
        can_show_number: bool,
    ) -> Result<PushStarted, CoreError> {
        self.start_for(req, can_show_number, true)
    }

    fn start_for(
        &self,
        req: &Request,
        can_show_number: bool,
        code_always: bool,
    ) -> Result<PushStarted, CoreError> {
        let no = |r: PushRefusal| Err(CoreError::Refused(Refusal::Push(r)));
        let settings = self.settings_for(&req.service);
        if settings.mode == mfa_config::PushMode::Off {
            return no(PushRefusal::Off);
        }
        let now = req.now;
        if !portal_alive(self.core.store.push_heartbeat()?, now) {
            return no(PushRefusal::NoPortal);
        }
        let service = req.service.to_string();
        if service.is_empty() || service.len() > MAX_PUSH_SERVICE_BYTES {
            return Err(CoreError::Bug("a service name no request can keep"));
        }
        let cfg = &self.core.config;
        let number = if settings.number_matching && can_show_number {
            Some(random_number()?)
        } else {
            None
        };
        let request = PushRequest {
            id: PushId(random_id()?),
            user: req.user.clone(),
            service: service.clone(),
            client_ip: req.client.ip().map(|ip| ip.to_string()),
            created: now,
            expires: now.saturating_add(cfg.push.timeout.secs_i64()),
            number,
            state: PushState::Pending,
            decided: None,
            device: None,
            sent: None,
            delivery_error: None,
            used: None,
        };
        let groups = self.core.login().groups_for(&req.user)?;
        let window = cfg.push.rate.per.secs_i64();
        let mut logged = Vec::new();
        let mut refusal = None;
        // A written request consumes nothing (ARCHITECTURE.md, *Durability*): lost in a
        // crash, the user is not asked and the login is denied. Its commit waits for no disk.
        let written = std::cell::Cell::new(false);
        let mut body = |slot: &mut Option<mfa_model::UserRecord>,
                        tx: &mut dyn crate::store::PushTx| {
            logged.clear();
            refusal = None;
            written.set(false);
            let d = decide(
                &Facts {
                    user: &req.user,
                    client: req.client,
                    service: &req.service,
                    now,
                    record: slot.as_ref(),
                    groups: &groups,
                    code_always,
                },
                cfg,
            );
            if d.outcome != Outcome::NeedCode {
                let r = if d.reason == Reason::NotEnrolled {
                    PushRefusal::NotEnrolled
                } else {
                    PushRefusal::NotAsked
                };
                return refused(Refusal::Push(r));
            }
            if !slot.as_ref().is_some_and(|r| r.enrolled()) {
                return refused(Refusal::Push(PushRefusal::NotEnrolled));
            }
            if let Some(until) = tx.block()?.filter(|&u| now < u) {
                refusal = Some(PushRefusal::Blocked { until });
                logged.push(self.request_event(now, &request, ReasonCode::PushBlocked));
                return Ok(logged.clone());
            }
            if tx.devices()?.is_empty() {
                return refused(Refusal::Push(PushRefusal::NoDevice));
            }
            let mut recent = Vec::new();
            for mut r in tx.requests(now.saturating_sub(window))? {
                if r.state == PushState::Pending && !r.open_at(now) {
                    r.state = PushState::Expired;
                    r.decided = Some(now);
                    tx.update_request(&r)?;
                } else if r.state == PushState::Pending && r.service == service {
                    return refused(Refusal::Push(PushRefusal::AlreadyPending));
                }
                if r.created > now.saturating_sub(window) {
                    recent.push(r.created);
                }
            }
            if recent.len() >= cfg.push.rate.count as usize {
                // The oldest request in the window leaves it first.
                let until = recent
                    .iter()
                    .min()
                    .map_or(now, |t| t.saturating_add(window));
                refusal = Some(PushRefusal::RateLimited { until });
                logged.push(self.request_event(now, &request, ReasonCode::PushRateLimited));
                return Ok(logged.clone());
            }
            tx.forget_requests(now.saturating_sub(KEEP_REQUESTS_SECS))?;
            tx.insert_request(&request)?;
            written.set(true);
            let mut ev = self.request_event(now, &request, ReasonCode::PushSent);
            ev.detail = Some(format!(
                "{}{}",
                request.id,
                if number.is_some() {
                    ", number matching"
                } else {
                    ""
                }
            ));
            logged.push(ev);
            Ok(logged.clone())
        };
        self.core
            .store
            .transact_push_light(&req.user, &mut body, true, &|| written.get())?;
        self.after_commit(&logged);
        match refusal {
            Some(r) => no(r),
            None => Ok(PushStarted {
                id: request.id,
                number,
                expires: request.expires,
            }),
        }
    }

    /// The state of request `id` as of `now` (a pending one past its expiry is expired);
    /// `None` for no such request. What a waiting front end polls.
    pub fn status(&self, id: &PushId, now: i64) -> Result<Option<PushState>, CoreError> {
        Ok(self.core.store.push_request(id)?.map(|r| r.state_at(now)))
    }

    /// Request `id` as the approval page shows it (never its number).
    pub fn view(&self, id: &PushId, now: i64) -> Result<Option<PushView>, CoreError> {
        Ok(self
            .core
            .store
            .push_request(id)?
            .map(|r| PushView::of(&r, now)))
    }

    /// The open (pending, unexpired) requests of the user whose device `device` is: the
    /// installed app's list. The device id, like a request id, is a random capability the
    /// phone holds; an unknown one gets an empty list.
    pub fn pending_for_device(
        &self,
        device: &DeviceId,
        now: i64,
    ) -> Result<Vec<PushView>, CoreError> {
        let Some(d) = self.core.store.push_device(device)? else {
            return Ok(Vec::new());
        };
        Ok(self
            .core
            .store
            .push_requests(&d.user, now.saturating_sub(KEEP_REQUESTS_SECS))?
            .iter()
            .filter(|r| r.open_at(now))
            .map(|r| PushView::of(r, now))
            .collect())
    }

    /// A phone's decision on request `id`, signed by the device `device` (`signature`: ECDSA
    /// P-256 / SHA-256 in the P1363 form `r || s`, over [`decision_message`]). Refused, and
    /// nothing changed, unless the request exists, the device is a registered device of the
    /// request's user, the signature verifies under its key, and the request is pending and
    /// unexpired ([`DecisionRefusal`]). An approval with another number than the request's
    /// (or none where one was asked) denies it. "This wasn't me" ([`PushDecision::Fraud`])
    /// denies it, blocks pushes to the user for `[push] fraud_block`, and warns the
    /// administrator (syslog). Decided once: of two decisions at once, the second is refused.
    /// Audited (`push_approved`, `push_denied`, `push_fraud`).
    pub fn decide(
        &self,
        id: &PushId,
        device: &DeviceId,
        decision: PushDecision,
        signature: &[u8],
        now: i64,
    ) -> Result<Decided, CoreError> {
        let no = |r: DecisionRefusal| Err(CoreError::Refused(Refusal::PushDecision(r)));
        let Some(request) = self.core.store.push_request(id)? else {
            return no(DecisionRefusal::UnknownRequest);
        };
        let user = request.user.clone();
        let Some(dev) = self
            .core
            .store
            .push_device(device)?
            .filter(|d| d.user == user)
        else {
            return no(DecisionRefusal::UnknownDevice);
        };
        // Checked before the write lock is taken: a forged decision costs no one a wait.
        if !verify(
            &dev.public_key,
            &decision_message(id, device, decision),
            signature,
        ) {
            return no(DecisionRefusal::BadSignature);
        }
        let block_for = self.core.config.push.fraud_block.secs_i64();
        let mut logged = Vec::new();
        let mut out = None;
        // An approval consumes nothing: the login that uses it up is durable before its reply,
        // and that commit makes every earlier one durable with it (one log on both engines);
        // an approval lost before it fails closed. A denial, a wrong number and "This wasn't
        // me" stay durable: lost, the request would be open again (another guess at the
        // number) or the block gone (ARCHITECTURE.md, *Durability*).
        let expect_light = match decision {
            PushDecision::Approve { number } => number_matches(request.number, number),
            PushDecision::Deny | PushDecision::Fraud => false,
        };
        let approved = std::cell::Cell::new(false);
        let mut body = |_: &mut Option<mfa_model::UserRecord>,
                        tx: &mut dyn crate::store::PushTx| {
            logged.clear();
            approved.set(false);
            let Some(mut r) = tx.request(id)?.filter(|r| r.user == user) else {
                return refused(Refusal::PushDecision(DecisionRefusal::UnknownRequest));
            };
            // Still registered, with the key the signature was checked against.
            let Some(d) = tx
                .devices()?
                .into_iter()
                .find(|d| d.id == *device && d.public_key == dev.public_key)
            else {
                return refused(Refusal::PushDecision(DecisionRefusal::UnknownDevice));
            };
            if !r.open_at(now) {
                return refused(Refusal::PushDecision(DecisionRefusal::Closed(
                    r.state_at(now),
                )));
            }
            let (state, wrong_number) = match decision {
                PushDecision::Approve { number } => {
                    if number_matches(r.number, number) {
                        (PushState::Approved, false)
                    } else {
                        (PushState::Denied, true)
                    }
                }
                PushDecision::Deny => (PushState::Denied, false),
                PushDecision::Fraud => (PushState::Fraud, false),
            };
            r.state = state;
            r.decided = Some(now);
            r.device = Some(*device);
            tx.update_request(&r)?;
            if !tx.touch_device(&d.id, now)? {
                return Err(StoreError::Aborted(Abort::Bug(
                    "a device read in this transaction is gone",
                )));
            }
            let reason = match state {
                PushState::Approved => ReasonCode::PushApproved,
                PushState::Fraud => ReasonCode::PushFraud,
                _ => ReasonCode::PushDenied,
            };
            let mut ev = self.request_event(now, &r, reason);
            let mut detail = format!("{} on {} {:?}", r.id, d.id, d.name);
            if wrong_number {
                detail.push_str(", wrong number");
            }
            if state == PushState::Fraud {
                let until = now.saturating_add(block_for);
                tx.set_block(Some(until))?;
                detail.push_str(&format!(
                    ", pushes blocked until {}",
                    mfa_config::format_utc(until)
                ));
            }
            ev.detail = Some(detail);
            logged.push(ev);
            approved.set(state == PushState::Approved);
            out = Some(Decided {
                state,
                wrong_number,
            });
            Ok(logged.clone())
        };
        self.core
            .store
            .transact_push_light(&user, &mut body, expect_light, &|| approved.get())?;
        self.after_commit(&logged);
        let decided = out.ok_or(CoreError::Bug("a decision committed without its outcome"))?;
        if decided.state == PushState::Fraud {
            self.core.sink.warning(&format!(
                "user {:?} reported a sign-in request as not theirs (service {:?}, client {}): pushes to them are blocked for {}; check the account",
                user.as_str(),
                request.service,
                request.client_ip.as_deref().unwrap_or("-"),
                self.core.config.push.fraud_block
            ));
        }
        Ok(decided)
    }

    // ---------------------------------------------------------------- delivery (the portal)

    /// Records that a portal is running at `now`: write it every [`HEARTBEAT_EVERY`].
    pub fn heartbeat(&self, now: i64) -> Result<(), CoreError> {
        Ok(self.core.store.set_push_heartbeat(now)?)
    }

    /// Returns once a new request may be in the outbox (PostgreSQL: announced by the node
    /// that wrote it; SQLite: announced on the wake-up socket beside the store, which the
    /// first call binds, returning at once; where it cannot, after a short poll), or after
    /// about `timeout` (`[push] outbox_poll`: the fallback for a lost wake-up). Read
    /// [`Push::outbox`] after it, whatever woke it. Only the one sender (the portal) calls
    /// it: on SQLite, it takes the socket.
    pub fn wait_for_requests(&self, timeout: Duration) -> Result<(), CoreError> {
        Ok(self.core.store.wait_for_push(timeout)?)
    }

    /// Up to `limit` requests to deliver (pending, not sent, not expired at `now`), oldest
    /// first, each with its payload and its user's devices' subscriptions, opened. They are
    /// this sender's for [`CLAIM_SECONDS`]: another portal on the store does not push them
    /// too, and takes them over only where this one has neither sent them nor reported a
    /// failure by then (it died, or lost the store). A
    /// subscription that does not open, or whose push service `[push] services` no longer
    /// allows, is left out (and warned about); a request whose user has no device left comes
    /// with no target.
    pub fn outbox(&self, now: i64, limit: usize) -> Result<Vec<Outgoing>, CoreError> {
        let mut out = Vec::new();
        for r in self
            .core
            .store
            .claim_push_outbox(now, limit, now + CLAIM_SECONDS)?
        {
            let mut targets = Vec::new();
            for d in self.core.store.push_devices(&r.user)? {
                let what = SealedFor::PushSubscription {
                    user: &d.user,
                    device: &d.id,
                };
                let opened = self
                    .core
                    .sealer
                    .unseal_blob(&what, &d.subscription)
                    .map_err(|e| e.to_string())
                    .and_then(|b| Subscription::from_stored(&b));
                match opened {
                    Ok(subscription) if subscription.allowed(&self.core.config.push) => {
                        targets.push(Target {
                            device: d.id,
                            subscription,
                        })
                    }
                    Ok(_) => self.core.sink.warning(&format!(
                        "device {} of user {:?} names a push service no longer in [push] services; not pushed to",
                        d.id,
                        d.user.as_str()
                    )),
                    Err(e) => self.core.sink.warning(&format!(
                        "the push subscription of device {} of user {:?} cannot be used ({e}); remove it with `mfactl push remove`",
                        d.id,
                        d.user.as_str()
                    )),
                }
            }
            out.push(Outgoing {
                payload: payload(&r),
                request: r.id,
                user: r.user,
                expires: r.expires,
                targets,
            });
        }
        Ok(out)
    }

    /// What the push services said about request `id` (one [`Delivery`] per target of
    /// [`Push::outbox`]): sent where any accepted it; a device whose subscription is gone is
    /// removed (audited, `device_gone`); where none accepted it (or there was no target) the
    /// request is undeliverable, so the login waiting for it is denied at once (audited,
    /// `push_undeliverable`, with the reasons). A request no longer pending, or sent already,
    /// is left as it is. Returns its state.
    pub fn delivered(
        &self,
        id: &PushId,
        report: &[(DeviceId, Delivery)],
        now: i64,
    ) -> Result<Option<PushState>, CoreError> {
        let Some(request) = self.core.store.push_request(id)? else {
            return Ok(None);
        };
        let user = request.user.clone();
        let mut logged = Vec::new();
        let mut state = None;
        // A delivery report consumes nothing: lost in a crash, a sent request reads unsent
        // (delivered again, or it expires), an undeliverable one pending (it expires, the
        // login denied either way), a gone phone registered (the next push finds it gone).
        let mut body = |_: &mut Option<mfa_model::UserRecord>,
                        tx: &mut dyn crate::store::PushTx| {
            logged.clear();
            let Some(mut r) = tx.request(id)?.filter(|r| r.user == user) else {
                state = None;
                return Ok(Vec::new());
            };
            for (dev, what) in report {
                if *what == Delivery::Gone && tx.remove_device(dev)? {
                    let mut ev = self.event(now, &user, Action::PushDevice, ReasonCode::DeviceGone);
                    ev.detail = Some(format!("{dev}: the push service no longer knows it"));
                    logged.push(ev);
                }
            }
            if r.state == PushState::Pending && r.sent.is_none() {
                if report.iter().any(|(_, d)| *d == Delivery::Sent) {
                    r.sent = Some(now);
                } else {
                    let mut why: Vec<String> = report
                        .iter()
                        .map(|(dev, d)| match d {
                            Delivery::Sent => format!("{dev}: sent"),
                            Delivery::Gone => format!("{dev}: gone"),
                            Delivery::Failed(e) => format!("{dev}: {e}"),
                        })
                        .collect();
                    if why.is_empty() {
                        why.push("no device to push to".into());
                    }
                    let mut text = why.join("; ");
                    if text.len() > MAX_DELIVERY_ERROR_BYTES {
                        let mut at = MAX_DELIVERY_ERROR_BYTES;
                        while !text.is_char_boundary(at) {
                            at -= 1;
                        }
                        text.truncate(at);
                    }
                    r.state = PushState::Undeliverable;
                    r.decided = Some(now);
                    r.delivery_error = Some(text.clone());
                    let mut ev = self.request_event(now, &r, ReasonCode::PushUndeliverable);
                    ev.detail = Some(format!("{}: {text}", r.id));
                    logged.push(ev);
                }
                tx.update_request(&r)?;
            }
            state = Some(r.state_at(now));
            Ok(logged.clone())
        };
        self.core
            .store
            .transact_push_light(&user, &mut body, true, &|| true)?;
        self.after_commit(&logged);
        Ok(state)
    }
}

/// Whether an approval's number is the request's (none where none was asked), in constant
/// time.
fn number_matches(want: Option<u8>, got: Option<u8>) -> bool {
    match (want, got) {
        (Some(want), Some(got)) => bool::from([want].ct_eq(&[got])),
        (None, None) => true,
        _ => false,
    }
}

/// The push payload of a request (see [`Outgoing::payload`]).
fn payload(r: &PushRequest) -> String {
    serde_json::json!({
        "v": 1,
        "id": r.id.hex(),
        "service": r.service,
        "client_ip": r.client_ip,
        "created": r.created,
        "expires": r.expires,
        "number_matching": r.number.is_some(),
    })
    .to_string()
}

#[cfg(test)]
mod tests;
