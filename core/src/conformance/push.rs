//! Push approval through the core on this engine: the rules that rest on the user's lock
//! (one pending request per user and service, a decision once, an approval used by one
//! login) hold when two callers race, and a subscription is sealed under the store key and
//! survives a rekey.

use std::sync::Arc;

use mfa_config::Config;
use mfa_model::{DecisionRefusal, PushRefusal, PushState, Refusal, UserName};
use mfa_store::conformance::{Open, name, put};

use crate::core::Core;
use crate::error::CoreError;
use crate::login::{Request, Service};
use crate::net::ClientAddr;
use crate::policy::Reason;
use crate::push::testing::{PhoneKey, subscription_json};
use crate::push::{PushDecision, decision_message};
use crate::secret::Sealer;
use crate::totp::code_at_step;

use super::{Check, enrolled, seal_store};

pub(super) const CHECKS: &[(&str, Check)] = &[
    ("push_two_racing_starts_one_request", racing_starts),
    ("push_two_racing_decisions_one_wins", racing_decisions),
    ("push_one_approval_two_racing_logins", racing_logins),
    ("push_subscription_sealed_and_rekeyed", sealed_and_rekeyed),
];

const NOW: i64 = 1_800_000_000;
const ENDPOINT: &str = "https://fcm.googleapis.com/fcm/send/conformance";

/// A core on a fresh store of the engine, push on, with `user` enrolled, signed in on the
/// portal and one phone registered; the portal alive.
fn setup(open: Open<'_>, user: &str) -> (Core, PhoneKey, mfa_model::DeviceId) {
    let mut cfg = Config::default();
    cfg.audit.syslog = false;
    cfg.push.enabled = true;
    cfg.push.subscriber = Some("mailto:it@example.com".into());
    let store = open();
    let u = name(user);
    let (rec, secret) = enrolled(&u, NOW - 100);
    put(store.as_ref(), &rec, vec![]);
    let sealer = seal_store(store.as_ref());
    let core = Core::with_sealer(Arc::new(cfg), store, Box::new(sealer), "conformance");
    let code = code_at_step(&secret, &rec.params, NOW / 30);
    let (d, key) = core
        .login()
        .verify_code_always(&req(&u, NOW), &code)
        .unwrap();
    assert!(d.is_allowed(), "{d:?}");
    let phone = PhoneKey::generate();
    let dev = core
        .push("conformance")
        .register_device(
            &u,
            &key.unwrap(),
            "phone",
            &subscription_json(ENDPOINT),
            &phone.public(),
            NOW,
        )
        .unwrap();
    core.push("conformance").heartbeat(NOW).unwrap();
    (core, phone, dev.id)
}

fn req(user: &UserName, now: i64) -> Request {
    let mut r = Request::new(
        user,
        ClientAddr::Remote("192.0.2.7".parse().ok()),
        Service::Pam("sshd".into()),
    );
    r.now = now;
    r
}

/// Two front ends (two nodes) start a push for one user and service at once: one request is
/// written, the other start is refused as pending.
fn racing_starts(open: Open<'_>) {
    let (core, _, _) = setup(open, "pia");
    let r = req(&name("pia"), NOW + 1);
    let results: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| sc.spawn(|| core.push("conformance").start(&r, true)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let pending = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(CoreError::Refused(Refusal::Push(
                    PushRefusal::AlreadyPending
                )))
            )
        })
        .count();
    assert_eq!((ok, pending), (1, 3), "{results:?}");
}

/// Approve and deny of one request at once (two phones, or two portal nodes): one is taken,
/// the other refused as decided.
fn racing_decisions(open: Open<'_>) {
    let (core, phone, dev) = setup(open, "quy");
    let p = core.push("conformance");
    let s = p.start(&req(&name("quy"), NOW + 1), true).unwrap();
    let decisions = [
        PushDecision::Approve { number: s.number },
        PushDecision::Deny,
        PushDecision::Fraud,
    ];
    let results: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = decisions
            .iter()
            .map(|d| {
                let (phone, s, p) = (&phone, &s, &p);
                sc.spawn(move || {
                    let sig = phone.sign(&decision_message(&s.id, &dev, *d));
                    p.decide(&s.id, &dev, *d, &sig, NOW + 2)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    let state = won[0].state;
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(
                    e,
                    CoreError::Refused(Refusal::PushDecision(DecisionRefusal::Closed(s))) if *s == state
                ),
                "{e:?}"
            );
        }
    }
    assert_eq!(p.status(&s.id, NOW + 3).unwrap(), Some(state));
}

/// One approval, two logins at once (a retransmit on another node): one is let in, the
/// other is told the approval was used.
fn racing_logins(open: Open<'_>) {
    let (core, phone, dev) = setup(open, "ray");
    let p = core.push("conformance");
    let r = req(&name("ray"), NOW + 1);
    let s = p.start(&r, true).unwrap();
    let d = PushDecision::Approve { number: s.number };
    let sig = phone.sign(&decision_message(&s.id, &dev, d));
    assert_eq!(
        p.decide(&s.id, &dev, d, &sig, NOW + 2).unwrap().state,
        PushState::Approved
    );
    let mut r = r;
    r.now = NOW + 3;
    let reasons: Vec<Reason> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..3)
            .map(|_| sc.spawn(|| core.login().verify_push(&r, &s.id).unwrap().reason))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let approved = reasons
        .iter()
        .filter(|x| **x == Reason::PushApproved)
        .count();
    let used = reasons.iter().filter(|x| **x == Reason::PushUsed).count();
    assert_eq!((approved, used), (1, 2), "{reasons:?}");
}

/// The subscription is stored sealed (the store's rows hold no endpoint), opens for the
/// outbox, and opens again after a rekey of the store.
fn sealed_and_rekeyed(open: Open<'_>) {
    let (core, _, dev) = setup(open, "sue");
    let sue = name("sue");
    let stored = core.store.push_devices(&sue).unwrap();
    assert_eq!(stored.len(), 1);
    let raw = stored[0].subscription.stored();
    assert!(!raw.windows(12).any(|w| w == &ENDPOINT.as_bytes()[8..20]));
    assert_eq!(
        mfa_model::sealed_blob_key_id(&stored[0].subscription),
        core.sealer.key_id()
    );
    let p = core.push("conformance");
    p.start(&req(&sue, NOW + 1), false).unwrap();
    let out = p.outbox(NOW + 1, 10).unwrap();
    assert_eq!(out[0].targets[0].device, dev);
    assert_eq!(out[0].targets[0].subscription.endpoint(), ENDPOINT);
    // The same rekey the administrator runs (here with a sealer given outright).
    let other = crate::secret::Encrypted::new(crate::secret::StoreKey::generate().unwrap());
    let old = core.sealer.as_ref();
    core.store
        .reseal(
            old.key_id(),
            other.key_id().unwrap(),
            &mut |u, o| {
                let t = old.unseal(u, o).map_err(crate::store::Abort::Secret)?;
                other.seal(u, &t).map_err(crate::store::Abort::Secret)
            },
            &mut |user, device, b| {
                let what = crate::secret::SealedFor::PushSubscription { user, device };
                let v = old
                    .unseal_blob(&what, b)
                    .map_err(crate::store::Abort::Secret)?;
                other
                    .seal_blob(&what, &v)
                    .map_err(crate::store::Abort::Secret)
            },
            &[],
        )
        .unwrap();
    let d = &core.store.push_devices(&sue).unwrap()[0];
    let what = crate::secret::SealedFor::PushSubscription {
        user: &sue,
        device: &dev,
    };
    let opened = other.unseal_blob(&what, &d.subscription).unwrap();
    assert!(String::from_utf8_lossy(&opened).contains(ENDPOINT));
    assert!(old.unseal_blob(&what, &d.subscription).is_err());
}
