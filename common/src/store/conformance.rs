//! The behaviour every store engine must show, as one suite: [`all`] runs every check
//! against a factory that opens a fresh, empty store of the engine under test. SQLite runs
//! it in this crate's tests; another engine's tests enable the `conformance` feature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use mfa_config::Config;
use mfa_model::{AuditEvent, OtcKind, Refusal, TotpParams, UserName, UserRecord};

use super::{Abort, AuditQuery, Store, StoreError};
use crate::core::Core;
use crate::net::ClientAddr;
use crate::policy::Reason;
use crate::secret::{Sealer, TotpSecret, Unsealed};
use crate::totp::code_at_step;
use crate::verify::new_one_time_code;

/// A factory for fresh, empty stores of one engine.
pub type Open<'a> = &'a dyn Fn() -> Box<dyn Store>;

type Check = fn(Open<'_>);

/// Runs every check; a failure names the check.
pub fn all(open: Open<'_>) {
    let checks: [(&str, Check); 12] = [
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
        ("import_all_fills_only_an_empty_store", import_all),
        ("a_new_user_created_twice_at_once", created_twice_at_once),
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
    (r, secret)
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
    let core = Core::with_store(Arc::new(cfg), store, "conformance");
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

/// `mfactl migrate`: a copy arrives row for row in an empty store, and a store that holds
/// anything is refused with nothing changed.
fn import_all(open: Open<'_>) {
    let s = open();
    let (ivy, _) = enrolled(&name("ivy"), 10);
    let (jo, _) = enrolled(&name("jo"), 11);
    let log = [ev(10, "ivy", "r1"), ev(11, "jo", "r2"), ev(11, "ivy", "r3")];
    match s.import_all(&[ivy.clone(), jo.clone()], &log) {
        Err(StoreError::Unsupported(_)) => return,
        r => r.unwrap(),
    }
    assert_eq!(s.users().unwrap(), [ivy.clone(), jo]);
    assert_eq!(s.audit(&AuditQuery::default()).unwrap(), log);
    let (kim, _) = enrolled(&name("kim"), 12);
    let e = s.import_all(&[kim], &[]).unwrap_err();
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
    let e = t.import_all(&[ivy], &[]).unwrap_err();
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
