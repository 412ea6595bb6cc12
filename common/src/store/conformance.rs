//! The behaviour every store engine must show, as one suite: [`all`] runs every check
//! against a factory that opens a fresh, empty store of the engine under test. SQLite runs
//! it in this crate's tests; another engine's tests enable the `conformance` feature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use mfa_config::Config;
use mfa_model::{AuditEvent, OtcKind, Refusal, TotpParams, UserName, UserRecord};

use super::{Abort, AuditQuery, Store, StoreError, StoreFacts};
use crate::core::Core;
use crate::net::ClientAddr;
use crate::policy::Reason;
use crate::secret::{Encrypted, SecretError, StoreKey, sealed_key_id};
use crate::secret::{Sealer, TotpSecret, Unsealed};
use crate::totp::code_at_step;
use crate::verify::new_one_time_code;

/// A factory for fresh, empty stores of one engine.
pub type Open<'a> = &'a dyn Fn() -> Box<dyn Store>;

type Check = fn(Open<'_>);

/// Runs every check; a failure names the check.
pub fn all(open: Open<'_>) {
    let checks: [(&str, Check); 20] = [
        ("round_trip", round_trip),
        ("absent_users_are_none", absent_users_are_none),
        ("refusal_changes_nothing", refusal_changes_nothing),
        ("records_in_the_order_named", records_in_the_order_named),
        ("renaming_is_refused", renaming_is_refused),
        ("audit_query_and_prune", audit_query_and_prune),
        ("codes_replaced_as_a_set", codes_replaced_as_a_set),
        ("one_code_two_racing_logins", one_code_two_racing_logins),
        ("group_commit_if_offered", group_commit_if_offered),
        ("only_names_that_only_appeared_are_pruned", prune_unenrolled),
        (
            "sealed_secrets_bound_to_the_name",
            sealed_secrets_bound_to_the_name,
        ),
        ("name_upkeep", name_upkeep),
        ("names_that_look_alike", lookalike_names),
        ("import_all_fills_only_an_empty_store", import_all),
        ("a_new_user_created_twice_at_once", created_twice_at_once),
        ("unlocks_replaced_as_a_set", unlocks_replaced_as_a_set),
        ("every_user_with_its_own_rows", every_user_with_its_own_rows),
        ("invites_kept_hashed_and_used_once", invites_used_once),
        (
            "an_invite_used_with_its_key_or_not_at_all",
            invite_with_its_key,
        ),
        (
            "two_saves_of_one_invite_at_once_enrol_once",
            invite_saved_twice_at_once,
        ),
    ];
    for (name, check) in checks {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(open)));
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("store conformance check {name} failed: {msg}");
        }
    }
}

fn name(s: &str) -> UserName {
    UserName::parse(s).unwrap()
}

fn params() -> TotpParams {
    Config::default().totp.params()
}

fn enrolled(user: &UserName, now: i64) -> (UserRecord, TotpSecret) {
    let secret = TotpSecret::generate().unwrap();
    let mut r = UserRecord::new(user, params(), now);
    r.secret = Some(Unsealed.seal(user, &secret).unwrap());
    r.mfa_created = Some(now);
    r.last_ip = Some("192.0.2.1".into());
    let (_, code) = new_one_time_code(OtcKind::Backup, now, None, 1).unwrap();
    r.codes.push(code);
    r.sources.push(mfa_model::SourceFailures {
        source: "198.51.100.7".into(),
        failures: 2,
        first_failure: now,
        locked_until: Some(now + 900),
    });
    r.unlocks.push(mfa_model::Unlock {
        ip: "2001:db8::7".into(),
        created: now,
        expires: now + 3600,
    });
    (r, secret)
}

/// `each_user` reads users and their child rows side by side: every record comes back with
/// its own codes, counters and unlocks, also beside users that have none, across pages.
fn every_user_with_its_own_rows(open: Open<'_>) {
    let s = open();
    let mut want = Vec::new();
    for i in 0..2500 {
        // Every third user has child rows; names sort as the numbers do.
        let n = name(&format!("u{i:05}"));
        let r = if i % 3 == 0 {
            enrolled(&n, 100 + i).0
        } else {
            UserRecord::new(&n, params(), 100 + i)
        };
        want.push(r);
    }
    // One transaction per 500 users keeps the test quick on PostgreSQL.
    for chunk in want.chunks(500) {
        let names: Vec<&UserName> = chunk.iter().map(|r| &r.name).collect();
        s.transact(&names, &mut |recs| {
            for (slot, r) in recs.iter_mut().zip(chunk) {
                *slot = Some(r.clone());
            }
            Ok(vec![])
        })
        .unwrap();
    }
    let got = s.users().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.name, w.name);
        assert_eq!(g.codes.len(), w.codes.len(), "{}", w.name);
        assert_eq!(g.sources, w.sources, "{}", w.name);
        assert_eq!(g.unlocks, w.unlocks, "{}", w.name);
    }
    // An error from the callback stops the read and comes back.
    let mut seen = 0;
    let e = s.each_user(&mut |_| {
        seen += 1;
        Err(StoreError::Aborted(Abort::Bug("enough")))
    });
    assert!(e.is_err());
    assert_eq!(seen, 1);
}

fn unlocks_replaced_as_a_set(open: Open<'_>) {
    let s = open();
    let (mut r, _) = enrolled(&name("alice"), 100);
    r.unlocks.push(mfa_model::Unlock {
        ip: "192.0.2.9".into(),
        created: 101,
        expires: 200,
    });
    put(s.as_ref(), &r, vec![]);
    assert_eq!(s.user(&r.name).unwrap().unwrap().unlocks, r.unlocks);
    r.unlocks.remove(0);
    put(s.as_ref(), &r, vec![]);
    let back = s.user(&r.name).unwrap().unwrap();
    assert_eq!(back.unlocks.len(), 1);
    assert_eq!(back.unlocks[0].ip, "192.0.2.9");
    assert_eq!(s.users().unwrap()[0].unlocks, back.unlocks);
    r.unlocks.clear();
    put(s.as_ref(), &r, vec![]);
    assert!(s.user(&r.name).unwrap().unwrap().unlocks.is_empty());
}

fn invites_used_once(open: Open<'_>) {
    let s = open();
    let inv = |h: u8, user: &str, created: i64| mfa_model::Invite {
        hash: [h; 32],
        user: user.into(),
        created,
        expires: created + 1000,
        used: None,
    };
    let (a, b) = (inv(1, "alice", 100), inv(2, "carol", 200));
    s.put_invites(&[a.clone(), b.clone()], &[ev(100, "alice", "issued")])
        .unwrap();
    assert_eq!(s.invite(&[1; 32]).unwrap(), Some(a.clone()));
    assert_eq!(s.invite(&[3; 32]).unwrap(), None);
    assert_eq!(s.invites().unwrap(), [b.clone(), a.clone()], "newest first");
    // A hash stored twice refuses the whole set.
    assert!(
        s.put_invites(&[inv(4, "dave", 300), inv(1, "alice", 300)], &[])
            .is_err()
    );
    assert_eq!(s.invite(&[4; 32]).unwrap(), None, "all or nothing");
    // Used once, with its event; never again; never after expiry.
    assert!(
        s.use_invite(&[1; 32], 150, &[ev(150, "alice", "used")])
            .unwrap()
    );
    assert!(
        !s.use_invite(&[1; 32], 151, &[ev(151, "alice", "again")])
            .unwrap()
    );
    assert_eq!(s.invite(&[1; 32]).unwrap().unwrap().used, Some(150));
    assert!(!s.use_invite(&[2; 32], 1200, &[]).unwrap(), "expired");
    assert!(!s.use_invite(&[3; 32], 150, &[]).unwrap(), "unknown");
    let reasons: Vec<_> = s
        .audit(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert_eq!(reasons, ["issued", "used"]);
}

/// `transact_with_invite`: the invite's use and the transaction's changes commit together
/// or not at all.
fn invite_with_its_key(open: Open<'_>) {
    let s = open();
    let ivan = name("ivan");
    let inv = mfa_model::Invite {
        hash: [7; 32],
        user: "ivan".into(),
        created: 100,
        expires: 1100,
        used: None,
    };
    s.put_invites(&[inv], &[]).unwrap();
    let (rec, _) = enrolled(&ivan, 150);
    // An abort (a wrong code, a key there already) rolls the invite's use back too.
    let r = s.transact_with_invite(&[7; 32], 150, &[&ivan], &mut |recs| {
        recs[0] = Some(rec.clone());
        Err(Abort::Refused(Refusal::WrongConfirmationCode))
    });
    assert!(matches!(r, Err(StoreError::Aborted(_))), "{r:?}");
    assert_eq!(
        s.invite(&[7; 32]).unwrap().unwrap().used,
        None,
        "rolled back"
    );
    assert!(s.user(&ivan).unwrap().is_none());
    // An expired or unknown invite: the function never runs, nothing is written.
    let mut ran = false;
    for (hash, at) in [([7u8; 32], 1100), ([8u8; 32], 150)] {
        let usable = s
            .transact_with_invite(&hash, at, &[&ivan], &mut |recs| {
                ran = true;
                recs[0] = Some(rec.clone());
                Ok(vec![ev(at, "ivan", "stored")])
            })
            .unwrap();
        assert!(!usable);
    }
    assert!(!ran, "ran for an unusable invite");
    assert!(s.user(&ivan).unwrap().is_none());
    // A usable one: the record, its event and the invite's use, together.
    let usable = s
        .transact_with_invite(&[7; 32], 200, &[&ivan], &mut |recs| {
            recs[0] = Some(rec.clone());
            Ok(vec![ev(200, "ivan", "used")])
        })
        .unwrap();
    assert!(usable);
    assert_eq!(s.invite(&[7; 32]).unwrap().unwrap().used, Some(200));
    assert_eq!(s.user(&ivan).unwrap().unwrap().secret, rec.secret);
    // Used up: never again, and the function does not run.
    let again = s
        .transact_with_invite(&[7; 32], 201, &[&ivan], &mut |_| {
            panic!("ran for a used invite")
        })
        .unwrap();
    assert!(!again);
    let reasons: Vec<_> = s
        .audit(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert_eq!(reasons, ["used"]);
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
                vouched: true,
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

fn put(s: &dyn Store, rec: &UserRecord, events: Vec<AuditEvent>) {
    let mut events = Some(events);
    s.transact(&[&rec.name], &mut |recs| {
        recs[0] = Some(rec.clone());
        Ok(events.take().unwrap_or_default())
    })
    .unwrap();
}

fn ev(time: i64, user: &str, reason: &str) -> AuditEvent {
    AuditEvent::admin(time, user, "test", "enroll", reason, Some("detail".into()))
}

fn round_trip(open: Open<'_>) {
    let s = open();
    let (bob, _) = enrolled(&name("bob"), 100);
    let (alice, _) = enrolled(&name("alice"), 100);
    put(s.as_ref(), &bob, vec![ev(100, "bob", "confirmed")]);
    put(s.as_ref(), &alice, vec![]);
    assert_eq!(s.user(&name("bob")).unwrap(), Some(bob.clone()));
    let all: Vec<_> = s.users().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(
        all,
        [name("alice"), name("bob")],
        "users() is sorted by name"
    );
    assert_eq!(
        s.audit(&AuditQuery::default()).unwrap(),
        [ev(100, "bob", "confirmed")],
        "the event, its detail included"
    );
}

fn absent_users_are_none(open: Open<'_>) {
    let s = open();
    assert_eq!(s.user(&name("nobody")).unwrap(), None);
    let mut seen = None;
    s.transact(&[&name("nobody")], &mut |recs| {
        seen = Some(recs[0].is_none());
        Ok(vec![])
    })
    .unwrap();
    assert_eq!(seen, Some(true));
    assert_eq!(
        s.user(&name("nobody")).unwrap(),
        None,
        "nothing was created"
    );
}

fn refusal_changes_nothing(open: Open<'_>) {
    let s = open();
    let (carol, _) = enrolled(&name("carol"), 1);
    put(s.as_ref(), &carol, vec![]);
    let e = s
        .transact(&[&name("carol"), &name("dave")], &mut |recs| {
            recs[0].as_mut().unwrap().failures = 3;
            recs[1] = Some(UserRecord::new(&name("dave"), params(), 1));
            Err(Abort::Refused(Refusal::NoSuchUser(name("dave"))))
        })
        .unwrap_err();
    assert!(matches!(e, StoreError::Aborted(Abort::Refused(_))), "{e:?}");
    assert_eq!(s.user(&name("carol")).unwrap(), Some(carol));
    assert_eq!(s.user(&name("dave")).unwrap(), None);
    assert!(s.audit(&AuditQuery::default()).unwrap().is_empty());
}

fn records_in_the_order_named(open: Open<'_>) {
    let s = open();
    for (u, f) in [("u1", 1), ("u2", 2), ("u3", 3)] {
        let mut r = UserRecord::new(&name(u), params(), 1);
        r.failures = f;
        put(s.as_ref(), &r, vec![]);
    }
    let (u3, u1, u2) = (name("u3"), name("u1"), name("u2"));
    s.transact(&[&u3, &u1, &u2], &mut |recs| {
        let f: Vec<u32> = recs.iter().map(|r| r.as_ref().unwrap().failures).collect();
        assert_eq!(f, [3, 1, 2], "records come in the caller's order");
        recs[0].as_mut().unwrap().failures = 30;
        Ok(vec![])
    })
    .unwrap();
    assert_eq!(s.user(&u3).unwrap().unwrap().failures, 30);
    assert_eq!(s.user(&u1).unwrap().unwrap().failures, 1);
}

fn renaming_is_refused(open: Open<'_>) {
    let s = open();
    let e = s
        .transact(&[&name("erin")], &mut |recs| {
            recs[0] = Some(UserRecord::new(&name("mallory"), params(), 1));
            Ok(vec![])
        })
        .unwrap_err();
    assert!(matches!(e, StoreError::Aborted(Abort::Bug(_))), "{e:?}");
    assert_eq!(s.user(&name("mallory")).unwrap(), None);
}

fn audit_query_and_prune(open: Open<'_>) {
    let s = open();
    s.append_audit(&[ev(10, "a", "r1"), ev(20, "b", "r2"), ev(30, "a", "r3")])
        .unwrap();
    let q = |user: Option<&str>, since, limit| {
        s.audit(&AuditQuery {
            user: user.map(str::to_string),
            since,
            limit,
        })
        .unwrap()
        .into_iter()
        .map(|e| e.reason)
        .collect::<Vec<_>>()
    };
    assert_eq!(q(None, None, None), ["r1", "r2", "r3"]);
    assert_eq!(q(Some("a"), None, None), ["r1", "r3"]);
    assert_eq!(q(None, Some(20), None), ["r2", "r3"]);
    assert_eq!(q(None, None, Some(1)), ["r1"]);
    assert_eq!(s.prune_audit(20).unwrap(), 1);
    assert_eq!(q(None, None, None), ["r2", "r3"]);
}

fn codes_replaced_as_a_set(open: Open<'_>) {
    let s = open();
    let (mut f, _) = enrolled(&name("frank"), 1);
    put(s.as_ref(), &f, vec![]);
    f.codes.clear();
    for _ in 0..3 {
        f.codes.push(
            new_one_time_code(OtcKind::Temporary, 1, Some(99), 2)
                .unwrap()
                .1,
        );
    }
    put(s.as_ref(), &f, vec![]);
    assert_eq!(s.user(&f.name).unwrap().unwrap().codes, f.codes);
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
        vouched: true,
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

fn group_commit_if_offered(open: Open<'_>) {
    let s = open();
    let Some(gc) = s.group_commit() else {
        return;
    };
    let h = name("hank");
    gc.transact_deferred(&[&h], &mut |recs| {
        recs[0] = Some(UserRecord::new(&h, params(), 5));
        Ok(vec![ev(5, "hank", "deferred")])
    })
    .unwrap();
    assert!(s.user(&h).unwrap().is_some(), "visible before the sync");
    gc.sync().unwrap();
    gc.housekeeping().unwrap();
    gc.writer_housekeeping().unwrap();
    assert_eq!(s.audit(&AuditQuery::default()).unwrap().len(), 1);
}

/// Pruning takes the records of names that only ever appeared, and nothing else.
fn prune_unenrolled(open: Open<'_>) {
    let s = open();
    let old = 100;
    let appeared = UserRecord::new(&name("appeared"), params(), old);
    let recent = UserRecord::new(&name("recent"), params(), 500);
    let mut let_in = UserRecord::new(&name("let-in"), params(), old);
    let_in.login_count = 1;
    let (enrolled_user, _) = enrolled(&name("enrolled"), old);
    let mut unlinked = UserRecord::new(&name("unlinked"), params(), old);
    unlinked.mfa_created = Some(old);
    let mut holds_code = UserRecord::new(&name("holds-code"), params(), old);
    holds_code.codes.push(
        new_one_time_code(OtcKind::Temporary, old, Some(900), 1)
            .unwrap()
            .1,
    );
    for r in [
        &appeared,
        &recent,
        &let_in,
        &enrolled_user,
        &unlinked,
        &holds_code,
    ] {
        put(s.as_ref(), r, vec![]);
    }
    assert_eq!(s.prune_unenrolled(400).unwrap(), 1);
    let left: Vec<String> = s
        .users()
        .unwrap()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    assert_eq!(
        left,
        ["enrolled", "holds-code", "let-in", "recent", "unlinked"]
    );
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
        &[],
    )
    .unwrap();
    sealer
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
    let n = s.reseal(
        Some(id),
        other.key_id().unwrap(),
        &mut |u, o| {
            let t = sealer.unseal(u, o).map_err(Abort::Secret)?;
            other.seal(u, &t).map_err(Abort::Secret)
        },
        &[ev(11, "*", "rekeyed")],
    );
    // Alice's swapped row does not open, so the whole rekey is refused and nothing changed.
    assert!(
        matches!(n, Err(StoreError::Aborted(Abort::Secret(_)))),
        "{n:?}"
    );
    assert_eq!(s.store_key_id().unwrap(), Some(id));
    put(s.as_ref(), &a, vec![]);
    let n = s
        .reseal(
            Some(id),
            other.key_id().unwrap(),
            &mut |u, o| {
                let t = sealer.unseal(u, o).map_err(Abort::Secret)?;
                other.seal(u, &t).map_err(Abort::Secret)
            },
            &[ev(11, "*", "rekeyed")],
        )
        .unwrap();
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
    assert!(admin.merge_users("Alice", "Alice", 20).is_err());
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
        .map(|e| (e.user, e.decision))
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

/// `mfactl migrate`: a copy arrives row for row in an empty store, with the source's key
/// id (so the same key file opens it) and name-check mark; a seed under another key than
/// the one named refuses the copy; a store that holds anything is refused with nothing
/// changed.
fn import_all(open: Open<'_>) {
    let s = open();
    let sealer = Encrypted::new(StoreKey::generate().unwrap());
    let sealed = |user: &str, now| {
        let (mut r, key) = enrolled(&name(user), now);
        r.secret = Some(sealer.seal(&r.name, &key).unwrap());
        (r, key)
    };
    let (mut ivy, ivy_key) = sealed("ivy", 10);
    // Both hash schemes of one-time codes survive the copy.
    ivy.codes.push(
        new_one_time_code(OtcKind::Temporary, 10, Some(99), 2)
            .unwrap()
            .1,
    );
    ivy.codes[0].scheme = mfa_model::OtcHash::Sha256V1;
    let (jo, _) = sealed("jo", 11);
    let log = [ev(10, "ivy", "r1"), ev(11, "jo", "r2"), ev(11, "ivy", "r3")];
    let facts = StoreFacts {
        key_id: sealer.key_id(),
        names_checked: Some("rules of the source".into()),
    };
    match s.import_all(&[ivy.clone(), jo.clone()], &log, &facts) {
        Err(StoreError::Unsupported(_)) => return,
        r => r.unwrap(),
    }
    assert_eq!(s.users().unwrap(), [ivy.clone(), jo]);
    assert_eq!(s.audit(&AuditQuery::default()).unwrap(), log);
    assert_eq!(s.store_key_id().unwrap(), sealer.key_id(), "the key id");
    assert_eq!(s.names_checked().unwrap(), facts.names_checked);
    let got = s.user(&ivy.name).unwrap().unwrap();
    assert_eq!(
        sealer
            .unseal(&got.name, got.secret.as_ref().unwrap())
            .unwrap(),
        ivy_key
    );
    let (kim, _) = sealed("kim", 12);
    let e = s
        .import_all(std::slice::from_ref(&kim), &[], &facts)
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotEmpty {
                users: 2,
                audit: 3,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(s.users().unwrap().len(), 2);
    // An audit trail alone makes a store non-empty too.
    let t = open();
    t.append_audit(&[ev(1, "x", "r")]).unwrap();
    let e = t.import_all(&[ivy], &[], &facts).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotEmpty {
                users: 0,
                audit: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(t.users().unwrap().is_empty());
    // Seeds under another key than the one the copy names (or a clear copy of sealed
    // seeds): refused, nothing written.
    let other = Encrypted::new(StoreKey::generate().unwrap());
    for facts in [
        StoreFacts {
            key_id: other.key_id(),
            names_checked: None,
        },
        StoreFacts::default(),
    ] {
        let u = open();
        let e = u
            .import_all(std::slice::from_ref(&kim), &[], &facts)
            .unwrap_err();
        assert!(matches!(e, StoreError::KeyChanged { .. }), "{e:?}");
        assert!(u.users().unwrap().is_empty());
        assert_eq!(u.store_key_id().unwrap(), None);
    }
}

/// Transactions on users who do not exist yet, at the same moment from several threads
/// (several servers): each sees the one before it, so none creates a record blindly over
/// another's.
fn created_twice_at_once(open: Open<'_>) {
    let s = open();
    let names: Vec<UserName> = (0..30).map(|i| name(&format!("newcomer{i}"))).collect();
    let start = std::sync::Barrier::new(4);
    std::thread::scope(|sc| {
        for t in 0..4 {
            let (s, names, start) = (&s, &names, &start);
            sc.spawn(move || {
                // Each thread's connection first (an engine may open one per caller), so
                // the threads meet at every name below.
                let warm = name(&format!("warm{t}"));
                s.transact(&[&warm], &mut |_| Ok(vec![])).unwrap();
                start.wait();
                for u in names {
                    s.transact(&[u], &mut |recs| {
                        match &mut recs[0] {
                            Some(r) => r.failures += 1,
                            None => {
                                let mut r = UserRecord::new(u, params(), 1);
                                r.failures = 1;
                                recs[0] = Some(r);
                            }
                        }
                        Ok(vec![ev(1, u, "counted")])
                    })
                    .unwrap();
                }
            });
        }
    });
    for u in &names {
        assert_eq!(s.user(u).unwrap().unwrap().failures, 4, "{u}");
    }
    assert_eq!(
        s.audit(&AuditQuery::default()).unwrap().len(),
        4 * names.len()
    );
}
