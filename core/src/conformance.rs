//! What the core does over a store engine, checked on each engine: two logins racing with
//! one code, two saves of one invite link, the name check with merge and remove, and seeds
//! sealed under the store key. The engine-level checks are `mfa_store::conformance`; each
//! engine crate runs both suites in its tests (the `conformance` feature of both crates).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use mfa_config::Config;
use mfa_model::{Refusal, UserName, UserRecord};
use mfa_store::conformance::{Open, ev, name, params, put, run};

use crate::core::Core;
use crate::net::ClientAddr;
use crate::policy::Reason;
use crate::secret::{Encrypted, SecretError, StoreKey, sealed_key_id};
use crate::secret::{Sealer, TotpSecret, Unsealed};
use crate::store::{Abort, AuditQuery, Store, StoreError};
use crate::totp::code_at_step;

type Check = fn(Open<'_>);

mod push;

/// Runs every check of the core over the engine `open` makes; a failure names the check.
pub fn all(open: Open<'_>) {
    let checks: [(&str, Check); 5] = [
        ("one_code_two_racing_logins", one_code_two_racing_logins),
        (
            "sealed_secrets_bound_to_the_name",
            sealed_secrets_bound_to_the_name,
        ),
        ("name_upkeep", name_upkeep),
        ("names_that_look_alike", lookalike_names),
        (
            "two_saves_of_one_invite_at_once_enrol_once",
            invite_saved_twice_at_once,
        ),
    ];
    run(open, &checks);
    run(open, push::CHECKS);
}

/// The engine suite's enrolled record, with a real seed (in the clear form) that this suite's
/// logins compute codes from.
fn enrolled(user: &UserName, now: i64) -> (UserRecord, TotpSecret) {
    let secret = TotpSecret::generate().unwrap();
    let mut r = mfa_store::conformance::enrolled(user, now);
    r.secret = Some(Unsealed.seal(user, &secret).unwrap());
    (r, secret)
}

/// Encrypts the store's clear seeds under a new key, as the first open with a key file does.
fn seal_store(s: &dyn Store) -> Encrypted {
    let sealer = Encrypted::new(StoreKey::generate().unwrap());
    let id = sealer.key_id().unwrap();
    s.reseal(
        None,
        id,
        &mut |u, old| {
            let t = Unsealed.unseal(u, old).map_err(Abort::Secret)?;
            sealer.seal(u, &t).map_err(Abort::Secret)
        },
        &mut |_, _, _| Err(Abort::Bug("no push subscription before the first sealing")),
        &[],
    )
    .unwrap();
    sealer
}

/// Two logins with one code at the same moment, through the core on this engine: exactly
/// one is accepted, the other is a replay.
fn one_code_two_racing_logins(open: Open<'_>) {
    let mut cfg = Config::default();
    cfg.audit.syslog = false;
    let now = 1_800_000_000;
    let user = name("gina");
    let (rec, secret) = enrolled(&user, now);
    let store = open();
    put(store.as_ref(), &rec, vec![]);
    let sealer = seal_store(store.as_ref());
    let core = Core::with_sealer(Arc::new(cfg), store, Box::new(sealer), "conformance");
    let code = code_at_step(&secret, &rec.params, now / 30);
    let req = crate::login::Request {
        user: user.clone(),
        client: ClientAddr::Remote("192.0.2.7".parse().ok()),
        service: "race".into(),
        now,
        admitted: true,
    };
    let reasons: Vec<Reason> = std::thread::scope(|sc| {
        let runs: Vec<_> = (0..2)
            .map(|_| sc.spawn(|| core.login().verify_code(&req, &code).unwrap().reason))
            .collect();
        runs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let valid = reasons.iter().filter(|r| **r == Reason::ValidCode).count();
    let replay = reasons
        .iter()
        .filter(|r| **r == Reason::ReplayedCode)
        .count();
    assert_eq!((valid, replay), (1, 1), "{reasons:?}");
    assert_eq!(
        core.store().user(&user).unwrap().unwrap().last_step,
        Some(now / 30)
    );
}

/// Seeds sealed under the store key round-trip; the store records the key; a seed copied
/// to another user's row does not open (the name is the associated data); a seed in the
/// clear or under another key is not written into a sealed store.
fn sealed_secrets_bound_to_the_name(open: Open<'_>) {
    let s = open();
    assert_eq!(s.store_key_id().unwrap(), None);
    let (alice, alice_key) = enrolled(&name("ivy"), 10);
    let (bob, bob_key) = enrolled(&name("jack"), 10);
    put(s.as_ref(), &alice, vec![]);
    put(s.as_ref(), &bob, vec![]);
    let sealer = seal_store(s.as_ref());
    let id = sealer.key_id().unwrap();
    assert_eq!(s.store_key_id().unwrap(), Some(id));
    let a = s.user(&alice.name).unwrap().unwrap();
    let b = s.user(&bob.name).unwrap().unwrap();
    let a_sealed = a.secret.clone().unwrap();
    let b_sealed = b.secret.clone().unwrap();
    assert_eq!(sealed_key_id(&a_sealed), Some(id));
    assert!(
        !a_sealed
            .stored()
            .windows(alice_key.bytes().len())
            .any(|w| w == alice_key.bytes()),
        "the seed is in the row in the clear"
    );
    assert_eq!(sealer.unseal(&a.name, &a_sealed).unwrap(), alice_key);
    assert_eq!(sealer.unseal(&b.name, &b_sealed).unwrap(), bob_key);

    // Bob's row under Alice's name: stored (the key id is right) but never opened.
    let mut swapped = a.clone();
    swapped.secret = Some(b_sealed.clone());
    put(s.as_ref(), &swapped, vec![]);
    let got = s.user(&alice.name).unwrap().unwrap();
    assert!(matches!(
        sealer.unseal(&got.name, got.secret.as_ref().unwrap()),
        Err(SecretError::Unseal { .. })
    ));

    // A second first sealing, a clear seed, a seed under another key: refused, unchanged.
    let other = Encrypted::new(StoreKey::generate().unwrap());
    assert!(matches!(
        s.reseal(
            None,
            other.key_id().unwrap(),
            &mut |_, o| Ok(o.clone()),
            &mut |_, _, b| Ok(b.clone()),
            &[]
        ),
        Err(StoreError::KeyChanged { .. })
    ));
    for bad in [
        Unsealed.seal(&bob.name, &bob_key).unwrap(),
        other.seal(&bob.name, &bob_key).unwrap(),
    ] {
        let r = s.transact(&[&bob.name], &mut |recs| {
            recs[0].as_mut().unwrap().secret = Some(bad.clone());
            Ok(vec![])
        });
        assert!(matches!(r, Err(StoreError::KeyChanged { .. })), "{r:?}");
    }
    assert_eq!(s.user(&bob.name).unwrap().unwrap().secret, Some(b_sealed));

    // Rekey: every seed under the new key, in one transaction, the id recorded.
    let rekey = || {
        s.reseal(
            Some(id),
            other.key_id().unwrap(),
            &mut |u, o| {
                let t = sealer.unseal(u, o).map_err(Abort::Secret)?;
                other.seal(u, &t).map_err(Abort::Secret)
            },
            &mut |user, device, b| {
                let what = crate::secret::SealedFor::PushSubscription { user, device };
                let v = sealer.unseal_blob(&what, b).map_err(Abort::Secret)?;
                other.seal_blob(&what, &v).map_err(Abort::Secret)
            },
            &[ev(11, "*", "rekeyed")],
        )
    };
    let n = rekey();
    // Alice's swapped row does not open, so the whole rekey is refused and nothing changed.
    assert!(
        matches!(n, Err(StoreError::Aborted(Abort::Secret(_)))),
        "{n:?}"
    );
    assert_eq!(s.store_key_id().unwrap(), Some(id));
    put(s.as_ref(), &a, vec![]);
    let n = rekey().unwrap();
    assert_eq!(n, 2);
    assert_eq!(s.store_key_id().unwrap(), other.key_id());
    let a = s.user(&alice.name).unwrap().unwrap();
    assert_eq!(
        other.unseal(&a.name, a.secret.as_ref().unwrap()).unwrap(),
        alice_key
    );
    assert!(matches!(
        sealer.unseal(&a.name, a.secret.as_ref().unwrap()),
        Err(SecretError::OtherKey { .. })
    ));
    assert_eq!(s.audit(&AuditQuery::default()).unwrap().len(), 1);
}

/// Two stored names of one user, a non-canonical one and an unreachable one, through the
/// core's name check, merge and remove on this engine.
fn name_upkeep(open: Open<'_>) {
    use crate::CoreError;
    use crate::names::NameCheck;
    let store = open();
    let (upper, key) = enrolled(&name("Alice"), 10);
    put(store.as_ref(), &upper, vec![]);
    let mut lower = UserRecord::new(&name("alice"), params(), 5);
    lower.grace_started = Some(6);
    lower.login_count = 2;
    put(store.as_ref(), &lower, vec![ev(5, "alice", "history")]);
    put(
        store.as_ref(),
        &UserRecord::new(&name("CONTOSO\\bob"), params(), 1),
        vec![],
    );
    put(
        store.as_ref(),
        &UserRecord::new(&name("OTHER\\carol"), params(), 1),
        vec![],
    );
    assert_eq!(
        store.user_names().unwrap(),
        ["Alice", "CONTOSO\\bob", "OTHER\\carol", "alice"]
    );
    assert_eq!(store.names_checked().unwrap(), None);
    let mut cfg = Config::default();
    cfg.audit.syslog = false;
    cfg.users.domains = vec!["CONTOSO".into()];
    let key_text = cfg.users.rules().fingerprint();
    let core = Core::with_sealer(Arc::new(cfg), store, Box::new(Unsealed), "conformance");

    // Refused, naming both, and nothing written (bob is not renamed yet).
    let e = core.check_names(NameCheck::IfRulesChanged).unwrap_err();
    assert!(matches!(e, CoreError::NameConflicts(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("\"Alice\" and \"alice\" all mean \"alice\"")
            && msg.contains("mfactl users merge"),
        "{msg}"
    );
    assert!(core.store.user(&name("CONTOSO\\bob")).unwrap().is_some());
    assert_eq!(core.store.names_checked().unwrap(), None);

    // Merging alice into Alice keeps Alice's key and codes, under the canonical name, with
    // the earlier first sighting and grace start.
    let admin = core.admin("test");
    assert!(matches!(
        admin.merge_users("nobody", "Alice", 20),
        Err(CoreError::Refused(Refusal::NoSuchUser(_)))
    ));
    assert!(matches!(
        admin.merge_users("Alice", "Alice", 20),
        Err(CoreError::Names(crate::names::NameError::MergeIntoItself(n))) if n == "Alice"
    ));
    assert_eq!(admin.merge_users("alice", "Alice", 20).unwrap(), "alice");
    let kept = core.store.user(&name("alice")).unwrap().unwrap();
    assert!(core.store.user(&name("Alice")).unwrap().is_none());
    let opened = Unsealed
        .unseal(&kept.name, kept.secret.as_ref().unwrap())
        .unwrap();
    assert_eq!(opened.bytes(), key.bytes());
    assert_eq!(kept.codes, upper.codes);
    assert_eq!(
        (kept.first_seen, kept.grace_started, kept.login_count),
        (5, Some(6), 2)
    );

    // Now the check passes: bob is renamed (one record, nothing ambiguous), carol is left
    // alone (no front end can reach OTHER\carol), and the rules are recorded.
    core.check_names(NameCheck::IfRulesChanged).unwrap();
    assert!(core.store.user(&name("bob")).unwrap().is_some());
    assert!(core.store.user(&name("CONTOSO\\bob")).unwrap().is_none());
    assert!(core.store.user(&name("OTHER\\carol")).unwrap().is_some());
    assert_eq!(core.store.names_checked().unwrap(), Some(key_text));

    admin
        .remove_user("OTHER\\carol", crate::login::now() + 60)
        .unwrap();
    assert!(matches!(
        admin.remove_user("OTHER\\carol", 30),
        Err(CoreError::Refused(Refusal::NoSuchUser(_)))
    ));
    assert_eq!(core.store.user_names().unwrap(), ["alice", "bob"]);
    // History stays: alice's old event, and one event per change.
    let log: Vec<(String, String)> = core
        .store
        .audit(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .map(|e| (e.user, e.decision.to_string()))
        .collect();
    let want = [
        ("alice", "enroll"),
        ("alice", "merge"),
        ("bob", "rename"),
        ("OTHER\\carol", "remove"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(u, d)| (u.to_string(), d.to_string()))
        .collect();
    assert_eq!(log, want);
}

/// Two saves of one invite link at once, each with a valid code for its own key (two
/// browser tabs): exactly one enrols, the stored key is the winner's, the invite is used
/// once, and the other is told the link was used.
fn invite_saved_twice_at_once(open: Open<'_>) {
    use crate::invite::{InviteEnrol, InviteState};
    let mut cfg = Config::default();
    cfg.audit.syslog = false;
    let now = 1_800_000_000;
    let store = open();
    let sealer = seal_store(store.as_ref());
    let core = Core::with_sealer(Arc::new(cfg), store, Box::new(sealer), "conformance");
    let jill = name("jill");
    for _ in 0..5 {
        let token = core.invites("test").issue(&jill, 3600, now).unwrap();
        let keys = [
            TotpSecret::generate().unwrap(),
            TotpSecret::generate().unwrap(),
        ];
        let barrier = std::sync::Barrier::new(2);
        let results: Vec<InviteEnrol> = std::thread::scope(|sc| {
            let runs: Vec<_> = keys
                .iter()
                .map(|k| {
                    let (core, token, barrier) = (&core, &token, &barrier);
                    sc.spawn(move || {
                        let code = code_at_step(k, &params(), now / 30);
                        barrier.wait();
                        core.invites("test")
                            .enrol(token, k, &code, Some("192.0.2.8"), now)
                            .unwrap()
                    })
                })
                .collect();
            runs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let linked: Vec<usize> = (0..2)
            .filter(|&i| matches!(results[i], InviteEnrol::Linked { .. }))
            .collect();
        assert_eq!(linked.len(), 1, "{results:?}");
        let loser = &results[1 - linked[0]];
        assert!(
            matches!(
                loser,
                InviteEnrol::Refused(InviteState::Used { .. })
                    | InviteEnrol::Refused(InviteState::AlreadyEnrolled { .. })
            ),
            "{loser:?}"
        );
        // The stored key is the winner's: its next code logs in.
        let later = now + 30;
        let login = |k: &TotpSecret| {
            let req = crate::login::Request {
                user: jill.clone(),
                client: ClientAddr::Remote("192.0.2.8".parse().ok()),
                service: "race".into(),
                now: later,
                admitted: true,
            };
            let code = code_at_step(k, &params(), later / 30);
            core.login().verify_code(&req, &code).unwrap().reason
        };
        assert_eq!(
            login(&keys[1 - linked[0]]),
            Reason::WrongCode,
            "the loser's key"
        );
        assert_eq!(
            login(&keys[linked[0]]),
            Reason::ValidCode,
            "the winner's key"
        );
        assert!(matches!(
            core.invites("test").state(&token, now).unwrap(),
            InviteState::Used { .. }
        ));
        // Unlinked again for the next round (the name's history stays).
        core.admin("test").unlink(&jill, now).unwrap();
    }
    let used = core
        .store()
        .audit(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.reason == "used")
        .count();
    assert_eq!(used, 5);
}

/// Look-alike names (`[users] unicode = "allow"`): every new row carries its look-alike
/// key, the index finds the names that look alike, a new name that looks like a stored one
/// is refused naming it, stored look-alikes refuse the store until one is left, and the name
/// check fills in missing keys and computes stale ones again. Under the default rules a
/// stored name beyond ASCII is only a record no login reaches.
fn lookalike_names(open: Open<'_>) {
    use crate::CoreError;
    use crate::names::{self, NameCheck};
    use mfa_model::{BadUserName, lookalike_key};
    let key = lookalike_key("alice");
    let store = open();
    put(store.as_ref(), &enrolled(&name("alice"), 1).0, vec![]);
    put(
        store.as_ref(),
        &UserRecord::new(&name("bob"), params(), 1),
        vec![],
    );
    assert_eq!(store.names_with_key(&key).unwrap(), ["alice"]);
    assert!(store.names_with_key("nobody").unwrap().is_empty());
    let mut cfg = Config::default();
    cfg.audit.syslog = false;
    cfg.users.unicode = mfa_config::UnicodeNames::Allow;
    let core = Core::with_sealer(Arc::new(cfg), store, Box::new(Unsealed), "conformance");
    core.check_names(NameCheck::IfRulesChanged).unwrap();
    for raw in ["àlice", "аlice", "ÀLICE", "álice"] {
        match core.user_name(raw) {
            Err(CoreError::BadUserName {
                why: BadUserName::LooksLike { existing },
                ..
            }) => assert_eq!(existing, "alice", "{raw}"),
            other => panic!("{raw}: {other:?}"),
        }
    }
    assert_eq!(core.user_name("Alice").unwrap(), "alice");
    assert_eq!(core.user_name("jörg").unwrap(), "jörg");
    assert!(matches!(
        core.user_name("ａｌｉｃｅ"),
        Err(CoreError::BadUserName {
            why: BadUserName::NotNfkc { .. },
            ..
        })
    ));

    // A look-alike stored behind the check's back refuses the store until one is left.
    put(
        core.store.as_ref(),
        &UserRecord::new(&name("àlice"), params(), 2),
        vec![],
    );
    assert_eq!(core.store.names_with_key(&key).unwrap(), ["alice", "àlice"]);
    let e = core.check_names(NameCheck::Always).unwrap_err();
    assert!(
        matches!(&e, CoreError::NameConflicts(c) if c.lookalikes == [vec!["alice".to_string(), "àlice".to_string()]]),
        "{e}"
    );
    assert!(
        e.to_string().contains("\"alice\" and \"àlice\" look alike"),
        "{e}"
    );
    assert_eq!(names::report(&core).unwrap().lookalikes.len(), 1);
    core.admin("test").remove_user("àlice", 3).unwrap();
    core.check_names(NameCheck::Always).unwrap();

    // Keys missing (a store just upgraded) are filled in, and keys computed by other
    // Unicode tables than this program's (the fingerprint's `keys=`) computed again.
    core.store
        .maintain_names(&mut |tx| {
            tx.forget_name_keys()?;
            assert_eq!(tx.names_without_key(1)?, ["alice"]);
            assert_eq!(tx.names_without_key(10)?, ["alice", "bob"]);
            assert_eq!(tx.names_with_key("any")?, ["alice", "bob"]);
            tx.set_name_key("bob", "stale")?;
            assert_eq!(tx.names_with_key("stale")?, ["alice", "bob"]);
            tx.set_names_checked("names-2 case=fold domains= unicode=allow keys=0.0.0")?;
            Ok(Some(vec![]))
        })
        .unwrap();
    // A row without a key is answered to every look-up, for the caller to check.
    assert_eq!(
        core.store.names_with_key(&key).unwrap(),
        ["alice"],
        "bob has a (stale) key, alice none"
    );
    assert_eq!(core.store.names_with_key("other").unwrap(), ["alice"]);
    core.check_names(NameCheck::IfRulesChanged).unwrap();
    assert_eq!(core.store.names_with_key(&key).unwrap(), ["alice"]);
    assert_eq!(
        core.store.names_with_key(&lookalike_key("bob")).unwrap(),
        ["bob"]
    );
    assert!(core.store.names_with_key("stale").unwrap().is_empty());
    assert_eq!(
        core.store.names_checked().unwrap(),
        Some(core.config().users.rules().fingerprint())
    );

    // A row whose key went missing behind the product's back is still found.
    core.store
        .maintain_names(&mut |tx| {
            tx.forget_name_keys()?;
            Ok(Some(vec![]))
        })
        .unwrap();
    assert!(matches!(
        core.user_name("álice"),
        Err(CoreError::BadUserName {
            why: BadUserName::LooksLike { .. },
            ..
        })
    ));
    assert_eq!(core.user_name("bob").unwrap(), "bob");

    // Under the default rules the same pair is one user and a record no login reaches.
    let store = open();
    put(store.as_ref(), &enrolled(&name("alice"), 1).0, vec![]);
    put(
        store.as_ref(),
        &UserRecord::new(&name("àlice"), params(), 2),
        vec![],
    );
    let mut cfg = Config::default();
    cfg.audit.syslog = false;
    let core = Core::with_sealer(Arc::new(cfg), store, Box::new(Unsealed), "conformance");
    core.check_names(NameCheck::Always).unwrap();
    assert!(matches!(
        core.user_name("àlice"),
        Err(CoreError::BadUserName {
            why: BadUserName::NotAscii { .. },
            ..
        })
    ));
    assert_eq!(core.user_name("alice").unwrap(), "alice");
    let plan = names::report(&core).unwrap();
    assert!(plan.lookalikes.is_empty() && plan.conflicts.is_empty());
    assert_eq!(plan.unreachable.len(), 1);
    assert_eq!(plan.unreachable[0].0, "àlice");
}
