//! The rules of push approval, each against a real (SQLite) store through the core's
//! services, as the front ends and the portal call them.

use std::sync::Arc;

use mfa_config::{Config, PushMode};
use mfa_model::{
    DecisionRefusal, DeviceRefusal, PushId, PushRefusal, PushState, Refusal, UserName,
};

use super::testing::{PhoneKey, subscription_json};
use super::*;
use crate::OpenMode;
use crate::TotpSecret;
use crate::login::{Request, Service};
use crate::net::ClientAddr;
use crate::policy::{Outcome, Reason};
use crate::totp::code_at_step;

const NOW: i64 = 1_800_000_000;
const ENDPOINT: &str = "https://fcm.googleapis.com/fcm/send/test-endpoint-123";

struct Fx {
    _dir: tempfile::TempDir,
    core: Core,
    secret: TotpSecret,
}

fn n(s: &str) -> UserName {
    UserName::parse(s).unwrap()
}

fn fx_with(edit: impl FnOnce(&mut Config)) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.store.path = dir.path().join("mfa.db");
    cfg.audit.syslog = false;
    cfg.policy.trusted_networks = vec!["10.0.0.0/8".parse().unwrap()];
    cfg.push.enabled = true;
    cfg.push.subscriber = Some("mailto:it@example.com".into());
    edit(&mut cfg);
    let core = crate::open_sqlite(Arc::new(cfg), OpenMode::Create).unwrap();
    let secret = TotpSecret::generate().unwrap();
    core.push("test").heartbeat(NOW).unwrap();
    Fx {
        _dir: dir,
        core,
        secret,
    }
}

fn fx() -> Fx {
    fx_with(|_| {})
}

fn req(user: &str, ip: &str, now: i64) -> Request {
    let mut r = Request::new(
        &n(user),
        ClientAddr::Remote(ip.parse().ok()),
        Service::Pam("sshd".into()),
    );
    r.now = now;
    r
}

impl Fx {
    fn push(&self) -> Push<'_> {
        self.core.push("test")
    }

    /// [`Push::start`] with a portal alive at the request's time.
    fn start(&self, r: &Request, show: bool) -> Result<PushStarted, CoreError> {
        self.push().heartbeat(r.now).unwrap();
        self.push().start(r, show)
    }

    /// Enrols `user` and signs in on the portal with a code: the key generation the
    /// registration needs.
    fn signed_in(&self, user: &str) -> KeyGeneration {
        self.core
            .enrolment()
            .enroll(&n(user), &self.secret, None, false, "test", NOW - 100)
            .unwrap();
        let code = code_at_step(&self.secret, &self.core.config().totp.params(), NOW / 30);
        let (d, key) = self
            .core
            .login()
            .verify_code_always(&req(user, "192.0.2.50", NOW), &code)
            .unwrap();
        assert!(d.is_allowed(), "{d:?}");
        key.unwrap()
    }

    fn register(&self, user: &str, key: &KeyGeneration, phone: &PhoneKey) -> DeviceInfo {
        self.push()
            .register_device(
                &n(user),
                key,
                "phone",
                &subscription_json(ENDPOINT),
                &phone.public(),
                NOW,
            )
            .unwrap()
    }

    /// An enrolled user with one registered phone.
    fn user_with_phone(&self, user: &str) -> (PhoneKey, DeviceInfo) {
        let key = self.signed_in(user);
        let phone = PhoneKey::generate();
        let dev = self.register(user, &key, &phone);
        (phone, dev)
    }

    fn decide(
        &self,
        phone: &PhoneKey,
        id: &PushId,
        dev: &DeviceId,
        d: PushDecision,
        now: i64,
    ) -> Result<Decided, CoreError> {
        let sig = phone.sign(&decision_message(id, dev, d));
        self.push().decide(id, dev, d, &sig, now)
    }

    fn reasons(&self) -> Vec<String> {
        self.core
            .store()
            .audit(&Default::default())
            .unwrap()
            .iter()
            .map(|e| e.reason.to_string())
            .collect()
    }
}

fn push_refusal(r: Result<PushStarted, CoreError>) -> PushRefusal {
    match r {
        Err(CoreError::Refused(Refusal::Push(p))) => p,
        other => panic!("not a push refusal: {other:?}"),
    }
}

fn decision_refusal(r: Result<Decided, CoreError>) -> DecisionRefusal {
    match r {
        Err(CoreError::Refused(Refusal::PushDecision(p))) => p,
        other => panic!("not a decision refusal: {other:?}"),
    }
}

/// The whole way: a push with a number, approved on the phone with that number, lets the
/// login in once, on the one path (audited `push_sent`, `push_approved`, then the login's
/// `push_approved`); the same approval does not let in a second login.
#[test]
fn an_approval_with_the_right_number_lets_one_login_in() {
    let f = fx();
    let (phone, dev) = f.user_with_phone("ann");
    let r = req("ann", "192.0.2.7", NOW + 1);
    assert_eq!(f.core.login().begin(&r).unwrap().outcome, Outcome::NeedCode);
    let started = f.start(&r, true).unwrap();
    let number = started.number.unwrap();
    assert!(mfa_model::PUSH_NUMBERS.contains(&number));
    assert_eq!(started.expires, NOW + 1 + 60);
    assert_eq!(
        f.push().status(&started.id, NOW + 2).unwrap(),
        Some(PushState::Pending)
    );
    // Asked too early: waiting, nothing written.
    let d = f.core.login().verify_push(&r, &started.id).unwrap();
    assert_eq!(
        (d.outcome, d.reason.clone()),
        (Outcome::NeedCode, Reason::PushWaiting)
    );
    let got = f
        .decide(
            &phone,
            &started.id,
            &dev.id,
            PushDecision::Approve {
                number: Some(number),
            },
            NOW + 5,
        )
        .unwrap();
    assert_eq!(
        got,
        Decided {
            state: PushState::Approved,
            wrong_number: false
        }
    );
    assert_eq!(
        f.push().status(&started.id, NOW + 6).unwrap(),
        Some(PushState::Approved)
    );
    let mut r = r;
    r.now = NOW + 7;
    let d = f.core.login().verify_push(&r, &started.id).unwrap();
    assert_eq!(
        (d.outcome, d.reason.clone()),
        (Outcome::Allow, Reason::PushApproved)
    );
    let d = f.core.login().verify_push(&r, &started.id).unwrap();
    assert_eq!(
        (d.outcome, d.reason),
        (Outcome::Deny, Reason::PushUsed),
        "once"
    );
    let rec = f.core.store().user(&n("ann")).unwrap().unwrap();
    assert_eq!(
        rec.login_count, 2,
        "the portal's sign-in and the push login"
    );
    let reasons = f.reasons();
    let tail: Vec<&str> = reasons
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        ["push_sent", "push_approved", "push_approved", "push_used"]
    );
    let dev_now = &f.push().devices(&n("ann")).unwrap()[0];
    assert_eq!(dev_now.last_used, Some(NOW + 5));
}

/// A wrong number denies the request (audited `push_denied`, "wrong number"); so does an
/// approval without the number where one was asked. The login is denied.
#[test]
fn a_wrong_number_denies() {
    let f = fx();
    let (phone, dev) = f.user_with_phone("bob");
    for typed in [|n: u8| Some(if n == 99 { 10 } else { n + 1 }), |_| None] {
        let r = req("bob", "192.0.2.7", NOW + 1);
        let s = f.start(&r, true).unwrap();
        let got = f
            .decide(
                &phone,
                &s.id,
                &dev.id,
                PushDecision::Approve {
                    number: typed(s.number.unwrap()),
                },
                NOW + 3,
            )
            .unwrap();
        assert_eq!(
            got,
            Decided {
                state: PushState::Denied,
                wrong_number: true
            }
        );
        let d = f.core.login().verify_push(&r, &s.id).unwrap();
        assert_eq!(d.reason, Reason::PushDenied);
        assert!(!d.is_allowed());
    }
    let log = f.core.store().audit(&Default::default()).unwrap();
    assert!(log.iter().any(|e| {
        e.reason == "push_denied"
            && e.detail
                .as_deref()
                .is_some_and(|d| d.contains("wrong number"))
    }));
}

/// Without number matching (a front end that cannot show one, or the client's setting)
/// the request has no number and an approval carries none.
#[test]
fn without_number_matching_there_is_no_number() {
    let f = fx();
    let (phone, dev) = f.user_with_phone("cy");
    let r = req("cy", "192.0.2.7", NOW + 1);
    let s = f.start(&r, false).unwrap();
    assert_eq!(s.number, None);
    let view = f.push().view(&s.id, NOW + 2).unwrap().unwrap();
    assert!(!view.number_matching);
    let got = f
        .decide(
            &phone,
            &s.id,
            &dev.id,
            PushDecision::Approve { number: None },
            NOW + 2,
        )
        .unwrap();
    assert_eq!(got.state, PushState::Approved);
    assert_eq!(
        f.core.login().verify_push(&r, &s.id).unwrap().reason,
        Reason::PushApproved
    );
    // [push] number_matching = false: none even where the front end could show one.
    let f = fx_with(|c| c.push.number_matching = false);
    f.user_with_phone("cy");
    assert_eq!(
        f.start(&req("cy", "192.0.2.7", NOW + 1), true)
            .unwrap()
            .number,
        None
    );
}

/// One pending request per user and service: a second is refused, not queued; another
/// service may have its own; once the first is decided (or expired), a new one may go.
#[test]
fn a_second_pending_request_is_refused() {
    let f = fx();
    let (phone, dev) = f.user_with_phone("dee");
    let r = req("dee", "192.0.2.7", NOW + 1);
    let first = f.start(&r, true).unwrap();
    assert_eq!(push_refusal(f.start(&r, true)), PushRefusal::AlreadyPending);
    let mut vpn = r.clone();
    vpn.service = Service::Pam("vpn".into());
    f.start(&vpn, true).unwrap();
    f.decide(&phone, &first.id, &dev.id, PushDecision::Deny, NOW + 2)
        .unwrap();
    f.start(&req("dee", "192.0.2.7", NOW + 3), true).unwrap();
    // Expired: a new one goes, and the old one is marked expired.
    let later = req("dee", "192.0.2.7", NOW + 200);
    let s = f.start(&later, true).unwrap();
    assert_ne!(s.id, first.id);
    let stored = f.core.store.push_requests(&n("dee"), 0).unwrap();
    assert_eq!(
        stored
            .iter()
            .filter(|r| r.state == PushState::Pending)
            .count(),
        1,
        "{stored:?}"
    );
}

/// `[push] rate`: the n+1st request in the window is refused (audited
/// `push_rate_limited`), naming when the next may go.
#[test]
fn the_per_user_rate() {
    let f = fx_with(|c| c.push.rate = "3/10m".parse().unwrap());
    let (phone, dev) = f.user_with_phone("eve");
    for i in 0..3 {
        let s = f
            .start(&req("eve", "192.0.2.7", NOW + i * 10), true)
            .unwrap();
        f.decide(&phone, &s.id, &dev.id, PushDecision::Deny, NOW + i * 10 + 1)
            .unwrap();
    }
    let p = push_refusal(f.start(&req("eve", "192.0.2.7", NOW + 30), true));
    assert_eq!(p, PushRefusal::RateLimited { until: NOW + 600 });
    assert_eq!(
        f.reasons().last().map(String::as_str),
        Some("push_rate_limited")
    );
    // The oldest leaves the window: one more may go.
    assert_eq!(
        push_refusal(f.start(&req("eve", "192.0.2.7", NOW + 599), true)),
        PushRefusal::RateLimited { until: NOW + 600 }
    );
    f.start(&req("eve", "192.0.2.7", NOW + 600), true).unwrap();
    // Another user is not held back by eve's.
    f.user_with_phone("fay");
    f.start(&req("fay", "192.0.2.7", NOW + 30), true).unwrap();
}

/// "This wasn't me": the request is fraud, the login is denied (`push_fraud`), the next
/// push is blocked for `[push] fraud_block` (audited `push_blocked`), an administrator can
/// lift the block, and it ends by itself.
#[test]
fn this_wasnt_me_blocks_further_pushes() {
    let f = fx_with(|c| c.push.fraud_block = mfa_config::Span::secs(3600));
    let (phone, dev) = f.user_with_phone("gus");
    let r = req("gus", "198.51.100.9", NOW + 1);
    let s = f.start(&r, true).unwrap();
    let got = f
        .decide(&phone, &s.id, &dev.id, PushDecision::Fraud, NOW + 4)
        .unwrap();
    assert_eq!(got.state, PushState::Fraud);
    assert_eq!(
        f.core.login().verify_push(&r, &s.id).unwrap().reason,
        Reason::PushFraud
    );
    let until = NOW + 4 + 3600;
    assert_eq!(
        f.push().blocked_until(&n("gus"), NOW + 5).unwrap(),
        Some(until)
    );
    let p = push_refusal(f.start(&req("gus", "198.51.100.9", NOW + 10), true));
    assert_eq!(p, PushRefusal::Blocked { until });
    let log = f.core.store().audit(&Default::default()).unwrap();
    let fraud = log
        .iter()
        .find(|e| e.reason == "push_fraud" && e.decision == "push")
        .unwrap();
    assert_eq!(fraud.client_ip.as_deref(), Some("198.51.100.9"));
    assert!(fraud.detail.as_deref().unwrap().contains("blocked until"));
    assert_eq!(log.last().unwrap().reason, "push_blocked");
    // Ends by itself.
    f.start(&req("gus", "198.51.100.9", until), true).unwrap();
    // And can be lifted.
    let s = f.start(&req("gus", "198.51.100.9", until), false);
    assert_eq!(push_refusal(s), PushRefusal::AlreadyPending);
    let (f2, gus) = (fx(), "gus");
    let (phone, dev) = f2.user_with_phone(gus);
    let s = f2.start(&req(gus, "192.0.2.7", NOW + 1), true).unwrap();
    f2.decide(&phone, &s.id, &dev.id, PushDecision::Fraud, NOW + 2)
        .unwrap();
    assert!(f2.push().unblock(&n(gus), NOW + 3).unwrap());
    assert!(
        !f2.push().unblock(&n(gus), NOW + 3).unwrap(),
        "nothing left to lift"
    );
    f2.start(&req(gus, "192.0.2.7", NOW + 4), true).unwrap();
    assert!(f2.reasons().contains(&"push_unblocked".to_string()));
}

/// A request not decided in time expires: it can no longer be decided, the login is
/// denied (`push_expired`) and the request is marked so.
#[test]
fn expiry() {
    let f = fx_with(|c| c.push.timeout = mfa_config::Span::secs(30));
    let (phone, dev) = f.user_with_phone("hal");
    let r = req("hal", "192.0.2.7", NOW + 1);
    let s = f.start(&r, true).unwrap();
    assert_eq!(s.expires, NOW + 31);
    assert_eq!(
        f.push().status(&s.id, NOW + 30).unwrap(),
        Some(PushState::Pending)
    );
    assert_eq!(
        f.push().status(&s.id, NOW + 31).unwrap(),
        Some(PushState::Expired)
    );
    let late = f.decide(
        &phone,
        &s.id,
        &dev.id,
        PushDecision::Approve { number: s.number },
        NOW + 31,
    );
    assert_eq!(
        decision_refusal(late),
        DecisionRefusal::Closed(PushState::Expired)
    );
    let mut at = r.clone();
    at.now = NOW + 40;
    let d = f.core.login().verify_push(&at, &s.id).unwrap();
    assert_eq!(d.reason, Reason::PushExpired);
    let stored = f.core.store.push_request(&s.id).unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.decided),
        (PushState::Expired, Some(NOW + 40))
    );
    assert!(
        f.push().outbox(NOW + 31, 10).unwrap().is_empty(),
        "no delivery after expiry"
    );
}

/// A request is decided once: a second decision, whatever it says and whichever device,
/// is refused and changes nothing; two at the same moment, one wins.
#[test]
fn decided_once() {
    let f = fx();
    let key = f.signed_in("ida");
    let (p1, p2) = (PhoneKey::generate(), PhoneKey::generate());
    let d1 = f.register("ida", &key, &p1);
    let d2 = f
        .push()
        .register_device(
            &n("ida"),
            &key,
            "tablet",
            &subscription_json("https://web.push.apple.com/x"),
            &p2.public(),
            NOW,
        )
        .unwrap();
    let s = f.start(&req("ida", "192.0.2.7", NOW + 1), true).unwrap();
    f.decide(&p1, &s.id, &d1.id, PushDecision::Deny, NOW + 2)
        .unwrap();
    for (phone, dev, d) in [
        (&p1, &d1, PushDecision::Approve { number: s.number }),
        (&p2, &d2, PushDecision::Approve { number: s.number }),
        (&p2, &d2, PushDecision::Fraud),
    ] {
        let again = f.decide(phone, &s.id, &dev.id, d, NOW + 3);
        assert_eq!(
            decision_refusal(again),
            DecisionRefusal::Closed(PushState::Denied)
        );
    }
    assert_eq!(f.push().blocked_until(&n("ida"), NOW + 4).unwrap(), None);
    // Racing: two phones at once.
    let s = f.start(&req("ida", "192.0.2.7", NOW + 10), true).unwrap();
    let results: [Result<Decided, CoreError>; 2] = std::thread::scope(|sc| {
        let a = sc.spawn(|| {
            f.decide(
                &p1,
                &s.id,
                &d1.id,
                PushDecision::Approve { number: s.number },
                NOW + 11,
            )
        });
        let b = sc.spawn(|| f.decide(&p2, &s.id, &d2.id, PushDecision::Deny, NOW + 11));
        [a.join().unwrap(), b.join().unwrap()]
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
}

/// Only a registered device of the request's own user decides it, and only with a
/// signature that verifies under that device's key: another user's device, an unknown one,
/// a removed one, a forged or replayed signature are refused and change nothing.
#[test]
fn only_the_users_own_device_with_its_signature() {
    let f = fx();
    let (jo_phone, jo_dev) = f.user_with_phone("jo");
    let (kim_phone, kim_dev) = f.user_with_phone("kim");
    let s = f.start(&req("jo", "192.0.2.7", NOW + 1), true).unwrap();
    let approve = PushDecision::Approve { number: s.number };
    // Kim's phone, correctly signed by Kim's key, on Jo's request.
    let r = f.decide(&kim_phone, &s.id, &kim_dev.id, approve, NOW + 2);
    assert_eq!(decision_refusal(r), DecisionRefusal::UnknownDevice);
    // Jo's device id, signed by Kim's key.
    let r = f.decide(&kim_phone, &s.id, &jo_dev.id, approve, NOW + 2);
    assert_eq!(decision_refusal(r), DecisionRefusal::BadSignature);
    // Signed for another decision.
    let deny_sig = jo_phone.sign(&decision_message(&s.id, &jo_dev.id, PushDecision::Deny));
    let r = f
        .push()
        .decide(&s.id, &jo_dev.id, approve, &deny_sig, NOW + 2);
    assert_eq!(decision_refusal(r), DecisionRefusal::BadSignature);
    // Signed for another request (a replay).
    let other = f
        .start(&req("jo", "192.0.2.7", NOW + 1).with_service("vpn"), true)
        .unwrap();
    let sig = jo_phone.sign(&decision_message(&other.id, &jo_dev.id, approve));
    let r = f.push().decide(&s.id, &jo_dev.id, approve, &sig, NOW + 2);
    assert_eq!(decision_refusal(r), DecisionRefusal::BadSignature);
    let r = f.decide(&jo_phone, &PushId([7; 16]), &jo_dev.id, approve, NOW + 2);
    assert_eq!(decision_refusal(r), DecisionRefusal::UnknownRequest);
    let r = f.decide(&jo_phone, &s.id, &DeviceId([7; 16]), approve, NOW + 2);
    assert_eq!(decision_refusal(r), DecisionRefusal::UnknownDevice);
    assert_eq!(
        f.push().status(&s.id, NOW + 2).unwrap(),
        Some(PushState::Pending)
    );
    // Removed: its decisions are refused.
    assert!(
        f.push()
            .remove_device(&n("jo"), &jo_dev.id, NOW + 3)
            .unwrap()
    );
    assert!(
        !f.push()
            .remove_device(&n("jo"), &jo_dev.id, NOW + 3)
            .unwrap()
    );
    let r = f.decide(&jo_phone, &s.id, &jo_dev.id, approve, NOW + 4);
    assert_eq!(decision_refusal(r), DecisionRefusal::UnknownDevice);
    assert!(f.reasons().contains(&"device_removed".to_string()));
    // Kim's device is Kim's alone: removing it as Jo's does nothing.
    assert!(
        !f.push()
            .remove_device(&n("jo"), &kim_dev.id, NOW + 5)
            .unwrap()
    );
    assert_eq!(f.push().devices(&n("kim")).unwrap().len(), 1);
}

/// The login settles a request for the login it was made for only: another user's,
/// another service's or another address's is a mismatch, an unknown one unknown; the
/// policy goes first, so a lock denies even an approved request, and a trusted network
/// lets in without using it.
#[test]
fn the_login_takes_only_its_own_request_and_the_policy_first() {
    let f = fx();
    let (phone, dev) = f.user_with_phone("lou");
    f.user_with_phone("max");
    let r = req("lou", "192.0.2.7", NOW + 1);
    let s = f.start(&r, true).unwrap();
    f.decide(
        &phone,
        &s.id,
        &dev.id,
        PushDecision::Approve { number: s.number },
        NOW + 2,
    )
    .unwrap();
    let l = f.core.login();
    for (other, why) in [
        (req("max", "192.0.2.7", NOW + 3), "another user"),
        (req("lou", "192.0.2.8", NOW + 3), "another address"),
        (
            req("lou", "192.0.2.7", NOW + 3).with_service("vpn"),
            "another service",
        ),
    ] {
        assert_eq!(
            l.verify_push(&other, &s.id).unwrap().reason,
            Reason::StateMismatch,
            "{why}"
        );
    }
    assert_eq!(
        l.verify_push(&r, &PushId([9; 16])).unwrap().reason,
        Reason::UnknownState
    );
    // A lock since: denied, the approval not used.
    let mut locked = f.core.store().user(&n("lou")).unwrap().unwrap();
    locked.locked_until = Some(NOW + 1000);
    f.core
        .store
        .transact(&[&n("lou")], &mut |recs| {
            recs[0] = Some(locked.clone());
            Ok(vec![])
        })
        .unwrap();
    assert!(l.verify_push(&r, &s.id).unwrap().is_locked());
    f.core.admin("test").unlock(&n("lou"), NOW + 4).unwrap();
    // From a trusted network the policy lets in without it (and leaves it unused).
    let trusted = req("lou", "10.1.2.3", NOW + 5);
    assert_eq!(
        l.verify_push(&trusted, &s.id).unwrap().reason,
        Reason::TrustedNetwork
    );
    assert_eq!(
        l.verify_push(&r, &s.id).unwrap().reason,
        Reason::PushApproved
    );
}

/// What refuses a push before anything is written: push off (everywhere, or for this RADIUS
/// client), no portal alive, a login the policy settles without a code, no key, no phone.
#[test]
fn refusals_before_any_request() {
    let f = fx_with(|c| {
        c.radius.clients = vec![
            toml_client("rdgw", Some(PushMode::Off)),
            toml_client("vpn", None),
        ];
    });
    let (_, _) = f.user_with_phone("ned");
    let at = |svc: Service| {
        let mut r = req("ned", "192.0.2.7", NOW + 1);
        r.service = svc;
        f.start(&r, true)
    };
    let rdgw = Service::Radius {
        client: "rdgw".into(),
        code_only: true,
    };
    assert_eq!(push_refusal(at(rdgw)), PushRefusal::Off);
    let vpn = Service::Radius {
        client: "vpn".into(),
        code_only: false,
    };
    at(vpn).unwrap();
    // A trusted network asks no code: nothing to approve.
    assert_eq!(
        push_refusal(f.start(&req("ned", "10.0.0.9", NOW + 1), true)),
        PushRefusal::NotAsked
    );
    // No key, no phone.
    assert_eq!(
        push_refusal(f.start(&req("nobody", "192.0.2.7", NOW + 1), true)),
        PushRefusal::NotEnrolled
    );
    f.signed_in("ola");
    assert_eq!(
        push_refusal(f.start(&req("ola", "192.0.2.7", NOW + 1), true)),
        PushRefusal::NoDevice
    );
    // The portal's heartbeat too old, or from the future: nothing would deliver it.
    for beat in [NOW - 100, NOW + 100] {
        f.push().heartbeat(beat).unwrap();
        assert_eq!(
            push_refusal(f.push().start(&req("ned", "192.0.2.7", NOW + 1), true)),
            PushRefusal::NoPortal,
            "{beat}"
        );
    }
    f.push().heartbeat(NOW - HEARTBEAT_STALE_SECS).unwrap();
    f.push().start(&req("ned", "192.0.2.7", NOW), true).unwrap();
    // [push] enabled = false: off for every login, and no phone can be registered.
    let off = fx_with(|c| c.push.enabled = false);
    let key = off.signed_in("pat");
    assert_eq!(
        push_refusal(off.start(&req("pat", "192.0.2.7", NOW + 1), true)),
        PushRefusal::Off
    );
    let r = off.push().register_device(
        &n("pat"),
        &key,
        "p",
        &subscription_json(ENDPOINT),
        &PhoneKey::generate().public(),
        NOW,
    );
    assert!(matches!(
        r,
        Err(CoreError::Refused(Refusal::PushDevice(DeviceRefusal::Off)))
    ));
}

fn toml_client(name: &str, push: Option<PushMode>) -> mfa_config::RadiusClient {
    let text = format!(
        "[[radius.clients]]\nname = \"{name}\"\naddress = \"192.0.2.1\"\nsecret = \"a-long-enough-secret-here\"\n"
    );
    let mut c = mfa_config::parse(&text, std::path::Path::new("/etc/mfa/mfa.toml"))
        .unwrap()
        .radius
        .clients
        .remove(0);
    c.push = push;
    c
}

/// Registration needs a sign-in that still holds (the key replaced since, or a lock, ends
/// it), a name, a P-256 key (raw or SPKI) and a subscription on an allowed service; at most
/// MAX_PUSH_DEVICES; a phone registered again replaces itself. The subscription is stored
/// sealed: the database file does not hold the endpoint.
#[test]
fn registration_rules_and_the_subscription_sealed_at_rest() {
    let f = fx();
    let key = f.signed_in("quin");
    let phone = PhoneKey::generate();
    let reg = |name: &str, sub: &str, pk: &[u8]| {
        f.push()
            .register_device(&n("quin"), &key, name, sub, pk, NOW)
    };
    let sub = subscription_json(ENDPOINT);
    let dev_refusal = |r: Result<DeviceInfo, CoreError>| match r {
        Err(CoreError::Refused(Refusal::PushDevice(d))) => d,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        dev_refusal(reg("", &sub, &phone.public())),
        DeviceRefusal::Name(_)
    ));
    assert!(matches!(
        dev_refusal(reg("p", &sub, &[4; 65])),
        DeviceRefusal::PublicKey(_)
    ));
    assert!(matches!(
        dev_refusal(reg(
            "p",
            &subscription_json("https://evil.example/x"),
            &phone.public()
        )),
        DeviceRefusal::Subscription(_)
    ));
    assert!(
        f.push().devices(&n("quin")).unwrap().is_empty(),
        "nothing stored"
    );
    // SPKI DER is taken, stored as the point.
    let d = reg("phone", &sub, &phone.public_spki()).unwrap();
    let stored = f.core.store.push_devices(&n("quin")).unwrap();
    assert_eq!(stored[0].public_key, phone.public());
    // The same phone again (same endpoint): replaces, not adds.
    let d2 = reg("phone again", &sub, &phone.public()).unwrap();
    let list = f.push().devices(&n("quin")).unwrap();
    assert_eq!(list.iter().map(|x| x.id).collect::<Vec<_>>(), [d2.id]);
    assert_ne!(d.id, d2.id);
    for i in 1..mfa_model::MAX_PUSH_DEVICES {
        reg(
            &format!("p{i}"),
            &subscription_json(&format!("{ENDPOINT}-{i}")),
            &phone.public(),
        )
        .unwrap();
    }
    assert_eq!(
        dev_refusal(reg(
            "one more",
            &subscription_json(&format!("{ENDPOINT}-x")),
            &phone.public()
        )),
        DeviceRefusal::TooMany
    );
    // The database file holds no endpoint in the clear.
    let db = std::fs::read(&f.core.config().store.path).unwrap();
    let wal =
        std::fs::read(f.core.config().store.path.with_extension("db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(20).any(|w| w == &ENDPOINT.as_bytes()[8..28]),
            "the endpoint is in the database file"
        );
    }
    // A key replaced since the sign-in: the sign-in no longer holds.
    let new = TotpSecret::generate().unwrap();
    f.core
        .enrolment()
        .enroll(&n("quin"), &new, None, true, "test", NOW + 10)
        .unwrap();
    let r = f.push().register_device(
        &n("quin"),
        &key,
        "late",
        &subscription_json(&format!("{ENDPOINT}-late")),
        &phone.public(),
        NOW + 11,
    );
    assert!(
        matches!(r, Err(CoreError::Refused(Refusal::SignInEnded(_)))),
        "{r:?}"
    );
    // ... and the key change removed every phone registered under the old key.
    assert!(f.push().devices(&n("quin")).unwrap().is_empty());
}

/// An administrator's unlink removes the user's phones: a lost phone stops approving.
#[test]
fn unlink_removes_the_phones() {
    let f = fx();
    let (phone, dev) = f.user_with_phone("rae");
    let s = f.start(&req("rae", "192.0.2.7", NOW + 1), true).unwrap();
    f.core.admin("test").unlink(&n("rae"), NOW + 2).unwrap();
    assert!(f.push().devices(&n("rae")).unwrap().is_empty());
    let r = f.decide(
        &phone,
        &s.id,
        &dev.id,
        PushDecision::Approve { number: s.number },
        NOW + 3,
    );
    assert_eq!(decision_refusal(r), DecisionRefusal::UnknownDevice);
    assert_eq!(
        f.core
            .login()
            .verify_push(&req("rae", "192.0.2.7", NOW + 4), &s.id)
            .unwrap()
            .reason,
        Reason::NotEnrolled
    );
}

/// The portal's side: the outbox holds what is pending, unsent and unexpired, with the
/// user's subscriptions opened and a payload without the number; a delivery marks it sent;
/// a gone subscription removes the device; a refusal everywhere makes the request
/// undeliverable and the login is denied at once. A rekey re-seals the subscriptions.
#[test]
fn delivery_through_the_outbox() {
    let f = fx();
    let (_, dev) = f.user_with_phone("sam");
    let r = req("sam", "192.0.2.7", NOW + 1);
    let s = f.start(&r, true).unwrap();
    let out = f.push().outbox(NOW + 1, 10).unwrap();
    assert_eq!(out.len(), 1);
    let o = &out[0];
    assert_eq!((o.request, o.expires), (s.id, s.expires));
    assert_eq!(o.targets.len(), 1);
    assert_eq!(o.targets[0].device, dev.id);
    assert_eq!(o.targets[0].subscription.endpoint(), ENDPOINT);
    let v: serde_json::Value = serde_json::from_str(&o.payload).unwrap();
    assert_eq!(v["id"], s.id.hex());
    assert_eq!(v["service"], "sshd");
    assert_eq!(v["client_ip"], "192.0.2.7");
    assert_eq!(v["number_matching"], true);
    let n_text = s.number.unwrap().to_string();
    assert!(
        v.as_object()
            .unwrap()
            .values()
            .all(|x| x.as_str() != Some(n_text.as_str())
                && x.as_u64() != Some(u64::from(s.number.unwrap()))),
        "{v}"
    );
    assert_eq!(
        f.push()
            .delivered(&s.id, &[(dev.id, Delivery::Sent)], NOW + 2)
            .unwrap(),
        Some(PushState::Pending)
    );
    assert!(
        f.push().outbox(NOW + 2, 10).unwrap().is_empty(),
        "sent once"
    );
    assert_eq!(
        f.core.store.push_request(&s.id).unwrap().unwrap().sent,
        Some(NOW + 2)
    );

    // A rekey: the subscriptions are sealed again under the new key and still open.
    f.core.admin("test").rekey(NOW + 3).unwrap();
    let f2 = reopen(f);
    let s2 = f2
        .start(
            &req("sam", "192.0.2.7", NOW + 10).with_service("vpn"),
            false,
        )
        .unwrap();
    let out = f2.push().outbox(NOW + 10, 10).unwrap();
    assert_eq!(out[0].targets[0].subscription.endpoint(), ENDPOINT);
    // Refused everywhere: undeliverable, the login denied at once, the reason audited.
    let st = f2
        .push()
        .delivered(
            &s2.id,
            &[(dev.id, Delivery::Failed("403 Forbidden".into()))],
            NOW + 11,
        )
        .unwrap();
    assert_eq!(st, Some(PushState::Undeliverable));
    let mut login = req("sam", "192.0.2.7", NOW + 12).with_service("vpn");
    login.now = NOW + 12;
    assert_eq!(
        f2.core.login().verify_push(&login, &s2.id).unwrap().reason,
        Reason::PushUndeliverable
    );
    let log = f2.core.store().audit(&Default::default()).unwrap();
    assert!(log.iter().any(|e| {
        e.reason == "push_undeliverable"
            && e.detail
                .as_deref()
                .is_some_and(|d| d.contains("403 Forbidden"))
    }));
    // Gone: the device is removed; with nothing sent the request is undeliverable.
    let s3 = f2
        .start(
            &req("sam", "192.0.2.7", NOW + 20).with_service("mail"),
            true,
        )
        .unwrap();
    let st = f2
        .push()
        .delivered(&s3.id, &[(dev.id, Delivery::Gone)], NOW + 21)
        .unwrap();
    assert_eq!(st, Some(PushState::Undeliverable));
    assert!(f2.push().devices(&n("sam")).unwrap().is_empty());
    assert!(f2.reasons().contains(&"device_gone".to_string()));
}

/// The fixture's core opened again over the same files (as a restarted process would,
/// with the key file a rekey left).
fn reopen(f: Fx) -> Fx {
    let Fx { _dir, core, secret } = f;
    let cfg = Arc::new(core.config().clone());
    drop(core);
    let core = crate::open_sqlite(cfg, OpenMode::Existing).unwrap();
    Fx { _dir, core, secret }
}

/// The app's list: the open requests of the device's user; an unknown device gets none.
#[test]
fn the_apps_list_of_pending_requests() {
    let f = fx();
    let (phone, dev) = f.user_with_phone("tia");
    let a = f.start(&req("tia", "192.0.2.7", NOW + 1), true).unwrap();
    let b = f
        .start(&req("tia", "192.0.2.7", NOW + 1).with_service("vpn"), true)
        .unwrap();
    f.decide(&phone, &b.id, &dev.id, PushDecision::Deny, NOW + 2)
        .unwrap();
    let list = f.push().pending_for_device(&dev.id, NOW + 3).unwrap();
    assert_eq!(list.iter().map(|v| v.id).collect::<Vec<_>>(), [a.id]);
    assert!(list[0].number_matching);
    assert!(
        f.push()
            .pending_for_device(&dev.id, NOW + 100)
            .unwrap()
            .is_empty()
    );
    assert!(
        f.push()
            .pending_for_device(&DeviceId([3; 16]), NOW + 3)
            .unwrap()
            .is_empty()
    );
}

impl Request {
    fn with_service(mut self, s: &str) -> Self {
        self.service = Service::Pam(s.into());
        self
    }
}

/// A push service taken off `[push] services` after a phone registered on it gets no more
/// pushes: the outbox leaves that device out.
#[test]
fn a_service_no_longer_allowed_gets_no_push() {
    let f = fx();
    f.user_with_phone("uma");
    let Fx { _dir, core, secret } = f;
    let mut cfg = core.config().clone();
    drop(core);
    cfg.push.services = vec!["push.apple.com".into()];
    let core = crate::open_sqlite(Arc::new(cfg), OpenMode::Existing).unwrap();
    let f = Fx { _dir, core, secret };
    let s = f.start(&req("uma", "192.0.2.7", NOW + 1), true).unwrap();
    let out = f.push().outbox(NOW + 1, 10).unwrap();
    assert_eq!(out[0].request, s.id);
    assert!(out[0].targets.is_empty());
}

/// The console's sign-in with push (issue 22): on a trusted network, where `start` is not
/// asked (the policy lets the login in without a second factor), `start_always` still
/// sends the request, and only its approval signs in, with the key generation the session
/// is bound to; a denial refuses; the approval lets one sign-in in.
#[test]
fn a_sign_in_that_always_proves_the_key_takes_an_approval_instead_of_a_code() {
    let f = fx();
    let (phone, dev) = f.user_with_phone("ann");
    let mut r = req("ann", "10.1.2.3", NOW + 10);
    r.service = Service::Other("mfa-portal:admin".into());
    assert_eq!(push_refusal(f.start(&r, true)), PushRefusal::NotAsked);
    f.push().heartbeat(r.now).unwrap();
    let started = f.push().start_always(&r, true).unwrap();
    // Waiting: no decision yet, nothing allowed.
    let (d, key) = f.core.login().verify_push_always(&r, &started.id).unwrap();
    assert_eq!(d.outcome, Outcome::NeedCode);
    assert!(key.is_none());
    f.decide(
        &phone,
        &started.id,
        &dev.id,
        PushDecision::Approve {
            number: started.number,
        },
        NOW + 12,
    )
    .unwrap();
    let (d, key) = f.core.login().verify_push_always(&r, &started.id).unwrap();
    assert!(d.is_allowed(), "{d:?}");
    assert_eq!(d.reason, Reason::PushApproved);
    assert!(key.is_some_and(|k| {
        k.holds(
            &n("ann"),
            f.core.store().user(&n("ann")).unwrap().as_ref(),
            NOW + 12,
        )
        .is_ok()
    }));
    // One approval, one sign-in.
    let (d, key) = f.core.login().verify_push_always(&r, &started.id).unwrap();
    assert!(!d.is_allowed() && key.is_none(), "{d:?}");
    // Denied on the phone: refused.
    let mut r2 = r.clone();
    r2.now = NOW + 20;
    f.push().heartbeat(r2.now).unwrap();
    let s2 = f.push().start_always(&r2, true).unwrap();
    f.decide(&phone, &s2.id, &dev.id, PushDecision::Deny, NOW + 21)
        .unwrap();
    let (d, key) = f.core.login().verify_push_always(&r2, &s2.id).unwrap();
    assert_eq!(d.reason, Reason::PushDenied);
    assert!(key.is_none());
}

/// A `push` rule (`[[policy.rules]]`): the right code typed is refused (`push_required`,
/// nothing counted toward a lock), even from a trusted network; an approved push lets in,
/// the audit trail naming the rule both times. Logins the rule does not match take the code.
#[test]
fn a_push_rule_takes_only_an_approved_push() {
    let f = fx_with(|c| {
        c.policy.rules = vec![mfa_config::PolicyRule {
            name: Some("ssh-push".into()),
            services: vec!["sshd".into()],
            radius_clients: Vec::new(),
            groups: Vec::new(),
            networks: Vec::new(),
            local: false,
            match_all: false,
            action: mfa_config::RuleAction::Push,
            remembered: false,
            reply: None,
        }];
    });
    let (phone, dev) = f.user_with_phone("pia");
    let l = f.core.login();
    let step = (NOW + 1) / 30;
    let code = code_at_step(&f.secret, &f.core.config().totp.params(), step);
    for ip in ["192.0.2.7", "10.1.2.3"] {
        let d = l.verify_code(&req("pia", ip, NOW + 1), &code).unwrap();
        assert_eq!(d.reason, Reason::PushRequired, "{ip}");
        assert_eq!(d.rule.unwrap().to_string(), "policy.rules[0] \"ssh-push\"");
    }
    let rec = f.core.store().user(&n("pia")).unwrap().unwrap();
    assert_eq!(rec.failures, 0, "no code was checked");
    let r = req("pia", "192.0.2.7", NOW + 2);
    let s = f.start(&r, true).unwrap();
    f.decide(
        &phone,
        &s.id,
        &dev.id,
        PushDecision::Approve { number: s.number },
        NOW + 3,
    )
    .unwrap();
    let mut r4 = r.clone();
    r4.now = NOW + 4;
    let d = l.verify_push(&r4, &s.id).unwrap();
    assert_eq!(d.reason, Reason::PushApproved);
    let log = f.core.store().audit(&Default::default()).unwrap();
    let named: Vec<_> = log
        .iter()
        .filter(|e| e.detail.as_deref() == Some("policy.rules[0] \"ssh-push\""))
        .map(|e| e.reason.to_string())
        .collect();
    // First the fixture's sign-in (as the portal's, with the code: the portal's sign-in has
    // no push to offer, so it asks the code under a push rule too).
    assert_eq!(
        named,
        [
            "valid_code",
            "push_required",
            "push_required",
            "push_approved"
        ]
    );
    // Another service: the code as ever.
    let mut sudo = req("pia", "192.0.2.7", NOW + 31);
    sudo.service = Service::Pam("sudo".into());
    let code = code_at_step(&f.secret, &f.core.config().totp.params(), (NOW + 31) / 30);
    assert_eq!(
        l.verify_code(&sudo, &code).unwrap().reason,
        Reason::ValidCode
    );
}

/// Issue 25 (ARCHITECTURE.md, *Durability*, *Push approval*): a written request, a delivery
/// report and an approval with the right number commit without waiting for the disk; a
/// denial, a wrong number, "This wasn't me" and the login that uses an approval up are
/// durable before they return.
#[test]
fn only_a_denial_a_wrong_number_fraud_and_the_login_wait_for_the_disk() {
    use std::sync::Mutex;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.store.path = dir.path().join("mfa.db");
    cfg.audit.syslog = false;
    cfg.push.enabled = true;
    cfg.push.subscriber = Some("mailto:it@example.com".into());
    let sqlite = mfa_store_sqlite::SqliteStore::open(
        &cfg.store.path,
        OpenMode::Create,
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let store = mfa_store::testing::Delegate::new(Box::new(sqlite))
        .with_push_commit_hook(Box::new(move |durable| seen.lock().unwrap().push(durable)));
    let core = Core::open(Arc::new(cfg), Box::new(store), OpenMode::Create, "test").unwrap();
    let f = Fx {
        _dir: dir,
        core,
        secret: TotpSecret::generate().unwrap(),
    };
    let (phone, dev) = f.user_with_phone("amy");
    let take = || std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(take(), [true], "a phone's registration stays durable");
    let r = req("amy", "192.0.2.7", NOW);
    let s = f.start(&r, true).unwrap();
    assert_eq!(take(), [false], "the request");
    let state = f
        .push()
        .delivered(&s.id, &[(dev.id, Delivery::Sent)], NOW)
        .unwrap();
    assert_eq!(state, Some(PushState::Pending));
    assert_eq!(take(), [false], "the delivery report");
    let ok = PushDecision::Approve { number: s.number };
    let d = f.decide(&phone, &s.id, &dev.id, ok, NOW + 1).unwrap();
    assert_eq!(d.state, PushState::Approved);
    assert_eq!(take(), [false], "the approval");
    let login = f.core.login().verify_push(&r, &s.id).unwrap();
    assert!(login.is_allowed(), "{login:?}");
    assert_eq!(take(), [true], "the login using the approval up");

    // The approval's number is filled in as a wrong one for each request below.
    for (i, decision) in [
        PushDecision::Deny,
        PushDecision::Approve { number: None },
        PushDecision::Fraud,
    ]
    .into_iter()
    .enumerate()
    {
        let r = req("amy", "192.0.2.7", NOW + 10 + i as i64);
        let s = f.start(&r, true).unwrap();
        let decision = match decision {
            PushDecision::Approve { .. } => PushDecision::Approve {
                number: s.number.map(|n| if n == 99 { 10 } else { n + 1 }),
            },
            d => d,
        };
        take();
        let d = f.decide(&phone, &s.id, &dev.id, decision, r.now).unwrap();
        assert_ne!(d.state, PushState::Approved);
        assert_eq!(take(), [true], "{decision:?}");
    }
}
