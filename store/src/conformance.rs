//! The behaviour every store engine must show, as one suite: [`all`] runs every check
//! against a factory that opens a fresh, empty store of the engine under test. Each engine
//! crate runs it in its tests (the `conformance` feature). The checks speak the [`Store`]
//! trait alone, with seeds and one-time codes in their stored layout (an engine never opens
//! them); what the core does over an engine (racing logins, invites, name upkeep) is checked
//! by `mfa_core::conformance`, which every engine runs too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mfa_model::{
    AuditEvent, FORM_CLEAR, FORM_XCHACHA20POLY1305, KeyId, NONCE_BYTES, OneTimeCode, OtcHash,
    OtcKind, Refusal, SealedSecret, TAG_BYTES, TotpParams, UserName, UserRecord, sealed_key_id,
};

use crate::{Abort, AuditQuery, Store, StoreError, StoreFacts};

pub mod challenge;
pub mod push;

/// A factory for fresh, empty stores of one engine.
pub type Open<'a> = &'a dyn Fn() -> Box<dyn Store>;

type Check = fn(Open<'_>);

/// Runs every check; a failure names the check.
pub fn all(open: Open<'_>) {
    let checks: [(&str, Check); 19] = [
        ("round_trip", round_trip),
        ("absent_users_are_none", absent_users_are_none),
        ("refusal_changes_nothing", refusal_changes_nothing),
        ("records_in_the_order_named", records_in_the_order_named),
        ("renaming_is_refused", renaming_is_refused),
        ("audit_query_and_prune", audit_query_and_prune),
        ("codes_replaced_as_a_set", codes_replaced_as_a_set),
        ("group_commit_if_offered", group_commit_if_offered),
        ("light_transactions_are_transactions", light_transactions),
        ("only_names_that_only_appeared_are_pruned", prune_unenrolled),
        ("import_all_fills_only_an_empty_store", import_all),
        ("a_new_user_created_twice_at_once", created_twice_at_once),
        ("unlocks_replaced_as_a_set", unlocks_replaced_as_a_set),
        ("every_user_with_its_own_rows", every_user_with_its_own_rows),
        ("invites_kept_hashed_and_used_once", invites_used_once),
        (
            "an_invite_used_with_its_key_or_not_at_all",
            invite_with_its_key,
        ),
        ("the_store_key_recorded_and_enforced", store_key_enforced),
        (
            "a_key_change_voids_unused_invites",
            key_change_voids_invites,
        ),
        ("users_paged_by_name_in_byte_order", users_paged_by_name),
    ];
    run(open, &checks);
    run(open, push::CHECKS);
    run(open, challenge::CHECKS);
}

/// Runs `checks` one by one; a failure names the check. Shared with the core's suite.
pub fn run(open: Open<'_>, checks: &[(&str, Check)]) {
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

pub fn name(s: &str) -> UserName {
    UserName::parse(s).unwrap()
}

pub fn params() -> TotpParams {
    mfa_config::Config::default().totp.params()
}

/// A seed in the clear form (`FORM_CLEAR`), its bytes derived from `tag`.
pub fn clear_seed(tag: u8) -> SealedSecret {
    let mut b = vec![FORM_CLEAR];
    b.extend((0..20u8).map(|i| i.wrapping_mul(31).wrapping_add(tag)));
    SealedSecret::from_stored(b)
}

/// `seed` as if sealed under the key `id`: the layout an engine checks (form byte, key id,
/// nonce, ciphertext, tag), with the seed's bytes standing in for the ciphertext.
pub fn sealed_under(id: KeyId, seed: &SealedSecret) -> SealedSecret {
    let clear = &seed.stored()[1..];
    let mut b = vec![FORM_XCHACHA20POLY1305];
    b.extend_from_slice(&id);
    b.extend_from_slice(&[0x5a; NONCE_BYTES]);
    b.extend_from_slice(clear);
    b.extend_from_slice(&[0xa5; TAG_BYTES]);
    SealedSecret::from_stored(b)
}

/// The seed back from [`sealed_under`].
fn unsealed(s: &SealedSecret) -> SealedSecret {
    let b = s.stored();
    let mut c = vec![FORM_CLEAR];
    c.extend_from_slice(&b[1 + id_len() + NONCE_BYTES..b.len() - TAG_BYTES]);
    SealedSecret::from_stored(c)
}

fn id_len() -> usize {
    mfa_model::KEY_ID_BYTES
}

/// A one-time code as the store keeps it (a salted hash); `n` makes it distinct.
pub fn stored_code(kind: OtcKind, created: i64, expires: Option<i64>, n: u8) -> OneTimeCode {
    OneTimeCode {
        kind,
        scheme: OtcHash::Argon2idV2,
        salt: [n; 16],
        hash: [n.wrapping_add(1); 32],
        created,
        expires,
        uses_left: 2,
    }
}

/// An enrolled record with one row of each child table.
pub fn enrolled(user: &UserName, now: i64) -> UserRecord {
    let mut r = UserRecord::new(user, params(), now);
    r.secret = Some(clear_seed(user.len() as u8));
    r.mfa_created = Some(now);
    r.last_ip = Some("192.0.2.1".into());
    r.codes.push(stored_code(OtcKind::Backup, now, None, 1));
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
    r
}

pub fn put(s: &dyn Store, rec: &UserRecord, events: Vec<AuditEvent>) {
    let mut events = Some(events);
    s.transact(&[&rec.name], &mut |recs| {
        recs[0] = Some(rec.clone());
        Ok(events.take().unwrap_or_default())
    })
    .unwrap();
}

/// An administrator's event with the reason `reason` as stored: a known code, or another
/// version's (`r1`), which every engine keeps as it is.
pub fn ev(time: i64, user: &str, reason: &str) -> AuditEvent {
    let mut e = AuditEvent::admin(
        time,
        user,
        "test",
        mfa_model::Action::Enroll,
        mfa_model::ReasonCode::Confirmed,
        Some("detail".into()),
    );
    e.reason = mfa_model::StoredReason::from_stored(reason);
    e
}

fn round_trip(open: Open<'_>) {
    let s = open();
    let bob = enrolled(&name("bob"), 100);
    let alice = enrolled(&name("alice"), 100);
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
    let carol = enrolled(&name("carol"), 1);
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
    let mut f = enrolled(&name("frank"), 1);
    put(s.as_ref(), &f, vec![]);
    f.codes.clear();
    for n in 2..5 {
        f.codes
            .push(stored_code(OtcKind::Temporary, 1, Some(99), n));
    }
    put(s.as_ref(), &f, vec![]);
    assert_eq!(s.user(&f.name).unwrap().unwrap().codes, f.codes);
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

/// [`Store::transact_light`], whatever the guess and the answer: all or nothing like any
/// transaction, in the order named, and the next plain transaction after it as durable as
/// ever (the relaxation lasts one transaction: an engine that switches a connection back
/// and forth must not hand a relaxed one on).
fn light_transactions(open: Open<'_>) {
    let s = open();
    let (a, b) = (name("lara"), name("lena"));
    let mut t = 10;
    for expect in [true, false] {
        for light in [true, false] {
            t += 1;
            s.transact_light(
                &[&b, &a],
                &mut |recs| {
                    recs[0] = Some(UserRecord::new(&b, params(), t));
                    recs[1] = Some(UserRecord::new(&a, params(), t));
                    Ok(vec![ev(t, "lara", "light")])
                },
                expect,
                &|| light,
            )
            .unwrap();
            assert_eq!(s.user(&a).unwrap().map(|r| r.first_seen), Some(t));
            assert_eq!(s.user(&b).unwrap().map(|r| r.first_seen), Some(t));
            // An abort writes nothing, light or not.
            let e = s.transact_light(
                &[&a],
                &mut |recs| {
                    recs[0] = None;
                    Err(Abort::Bug("stop"))
                },
                expect,
                &|| light,
            );
            assert!(matches!(e, Err(StoreError::Aborted(_))), "{e:?}");
            assert_eq!(s.user(&a).unwrap().map(|r| r.first_seen), Some(t));
            put(
                s.as_ref(),
                &UserRecord::new(&name("plain"), params(), t),
                vec![],
            );
        }
    }
    assert_eq!(s.audit(&AuditQuery::default()).unwrap().len(), 4);
}

/// Pruning takes the records of names that only ever appeared, and nothing else.
fn prune_unenrolled(open: Open<'_>) {
    let s = open();
    let old = 100;
    let appeared = UserRecord::new(&name("appeared"), params(), old);
    let recent = UserRecord::new(&name("recent"), params(), 500);
    let mut let_in = UserRecord::new(&name("let-in"), params(), old);
    let_in.login_count = 1;
    let enrolled_user = enrolled(&name("enrolled"), old);
    let mut unlinked = UserRecord::new(&name("unlinked"), params(), old);
    unlinked.mfa_created = Some(old);
    let mut holds_code = UserRecord::new(&name("holds-code"), params(), old);
    holds_code
        .codes
        .push(stored_code(OtcKind::Temporary, old, Some(900), 1));
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

/// `mfactl migrate`: a copy arrives row for row in an empty store, with the source's key
/// id (so the same key file opens it) and name-check mark; a seed under another key than
/// the one named refuses the copy; a store that holds anything is refused with nothing
/// changed.
fn import_all(open: Open<'_>) {
    let s = open();
    let key: KeyId = [3; mfa_model::KEY_ID_BYTES];
    let sealed = |user: &str, now| {
        let mut r = enrolled(&name(user), now);
        let clear = r.secret.take().unwrap();
        r.secret = Some(sealed_under(key, &clear));
        (r, clear)
    };
    let (mut ivy, ivy_key) = sealed("ivy", 10);
    // Both hash schemes of one-time codes survive the copy.
    ivy.codes
        .push(stored_code(OtcKind::Temporary, 10, Some(99), 2));
    ivy.codes[0].scheme = mfa_model::OtcHash::Sha256V1;
    let (jo, _) = sealed("jo", 11);
    let log = [ev(10, "ivy", "r1"), ev(11, "jo", "r2"), ev(11, "ivy", "r3")];
    let facts = StoreFacts {
        key_id: Some(key),
        names_checked: Some("rules of the source".into()),
    };
    match s.import_all(&[ivy.clone(), jo.clone()], &log, &facts) {
        Err(StoreError::Unsupported(_)) => return,
        r => r.unwrap(),
    }
    assert_eq!(s.users().unwrap(), [ivy.clone(), jo]);
    assert_eq!(s.audit(&AuditQuery::default()).unwrap(), log);
    assert_eq!(s.store_key_id().unwrap(), Some(key), "the key id");
    assert_eq!(s.names_checked().unwrap(), facts.names_checked);
    let got = s.user(&ivy.name).unwrap().unwrap();
    assert_eq!(sealed_key_id(got.secret.as_ref().unwrap()), Some(key));
    assert_eq!(unsealed(got.secret.as_ref().unwrap()), ivy_key);
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
    for facts in [
        StoreFacts {
            key_id: Some([4; mfa_model::KEY_ID_BYTES]),
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

fn unlocks_replaced_as_a_set(open: Open<'_>) {
    let s = open();
    let mut r = enrolled(&name("alice"), 100);
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

/// `each_user` reads users and their child rows side by side: every record comes back with
/// its own codes, counters and unlocks, also beside users that have none, across pages.
fn every_user_with_its_own_rows(open: Open<'_>) {
    let s = open();
    let mut want = Vec::new();
    for i in 0..2500 {
        // Every third user has child rows; names sort as the numbers do.
        let n = name(&format!("u{i:05}"));
        let r = if i % 3 == 0 {
            enrolled(&n, 100 + i)
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

/// The administrator's search: the names with a prefix, in byte order (an upper-case and a
/// non-ASCII name where bytes put them, whatever a database's collation would), page by page
/// after the last name seen, each record whole (its child rows too), never more than asked.
fn users_paged_by_name(open: Open<'_>) {
    let s = open();
    let names = [
        "Zed", "al", "al.x", "alice", "alicia", "alx", "b", "bob", "ålice", "al-z",
    ];
    for (i, n) in names.iter().enumerate() {
        let n = name(n);
        let r = if i % 2 == 0 {
            enrolled(&n, 100)
        } else {
            UserRecord::new(&n, params(), 100)
        };
        put(s.as_ref(), &r, vec![]);
    }
    let page = |prefix: &str, after: Option<&str>, limit: usize| -> Vec<String> {
        s.user_page(&crate::UserPage {
            prefix: prefix.into(),
            after: after.map(str::to_string),
            limit,
        })
        .unwrap()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect()
    };
    assert_eq!(
        page("", None, 100),
        [
            "Zed", "al", "al-z", "al.x", "alice", "alicia", "alx", "b", "bob", "ålice"
        ]
    );
    assert_eq!(page("al", None, 3), ["al", "al-z", "al.x"]);
    assert_eq!(page("al", Some("al.x"), 3), ["alice", "alicia", "alx"]);
    assert_eq!(page("al", Some("alx"), 3), Vec::<String>::new());
    assert_eq!(page("ali", None, 10), ["alice", "alicia"]);
    assert_eq!(page("b", Some("b"), 10), ["bob"]);
    // An `after` before the prefix starts the page at the prefix.
    assert_eq!(page("bo", Some("a"), 10), ["bob"]);
    assert_eq!(page("å", None, 10), ["ålice"]);
    assert_eq!(page("z", None, 10), Vec::<String>::new());
    assert_eq!(page("", Some("bob"), 10), ["ålice"]);
    assert!(page("", None, 0).is_empty());
    // Whole records: the enrolled ones have their codes.
    let recs = s
        .user_page(&crate::UserPage {
            prefix: "alici".into(),
            after: None,
            limit: 1,
        })
        .unwrap();
    let want = s.user(&name("alicia")).unwrap().unwrap();
    assert_eq!(recs, [want]);
    assert!(!recs[0].codes.is_empty());
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
    let later = inv(5, "alice", 150);
    s.put_invites(std::slice::from_ref(&later), &[]).unwrap();
    assert_eq!(
        s.invites_of(&name("alice")).unwrap(),
        [later.clone(), a.clone()],
        "a user's own, newest first"
    );
    assert_eq!(s.invites_of(&name("bob")).unwrap(), []);
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
    let rec = enrolled(&ivan, 150);
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

/// The store records the key its seeds are sealed under and holds every write to it: the
/// first sealing (and only the first) records the key; a clear seed or a seed under another
/// key is not written into a sealed store; a rekey changes every seed and the key in one
/// transaction, or nothing when one seed cannot be resealed.
fn store_key_enforced(open: Open<'_>) {
    let s = open();
    assert_eq!(s.store_key_id().unwrap(), None);
    let (ivy, jack) = (enrolled(&name("ivy"), 10), enrolled(&name("jack"), 10));
    put(s.as_ref(), &ivy, vec![]);
    put(s.as_ref(), &jack, vec![]);
    let (one, two) = ([1; mfa_model::KEY_ID_BYTES], [2; mfa_model::KEY_ID_BYTES]);
    let n = s
        .reseal(
            None,
            one,
            &mut |_, o| Ok(sealed_under(one, o)),
            &mut |_, _, _| Err(Abort::Bug("no push subscription here")),
            &[],
        )
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(s.store_key_id().unwrap(), Some(one));
    let sealed_jack = s.user(&jack.name).unwrap().unwrap().secret.unwrap();
    assert_eq!(sealed_key_id(&sealed_jack), Some(one));
    assert_eq!(unsealed(&sealed_jack), jack.secret.clone().unwrap());

    // A second first sealing, a clear seed, a seed under another key: refused, unchanged.
    assert!(matches!(
        s.reseal(
            None,
            two,
            &mut |_, o| Ok(o.clone()),
            &mut |_, _, _| Err(Abort::Bug("no push subscription here")),
            &[]
        ),
        Err(StoreError::KeyChanged { .. })
    ));
    for bad in [clear_seed(9), sealed_under(two, &clear_seed(9))] {
        let r = s.transact(&[&jack.name], &mut |recs| {
            recs[0].as_mut().unwrap().secret = Some(bad.clone());
            Ok(vec![])
        });
        assert!(matches!(r, Err(StoreError::KeyChanged { .. })), "{r:?}");
    }
    assert_eq!(
        s.user(&jack.name).unwrap().unwrap().secret,
        Some(sealed_jack)
    );

    // A rekey that cannot reseal one seed changes nothing; then one that can, all of them.
    let refused = s.reseal(
        Some(one),
        two,
        &mut |u, o| {
            if u.as_str() == "ivy" {
                Err(Abort::Bug("cannot open"))
            } else {
                Ok(sealed_under(two, &unsealed(o)))
            }
        },
        &mut |_, _, _| Err(Abort::Bug("no push subscription here")),
        &[ev(11, "*", "rekeyed")],
    );
    assert!(
        matches!(refused, Err(StoreError::Aborted(_))),
        "{refused:?}"
    );
    assert_eq!(s.store_key_id().unwrap(), Some(one));
    assert!(s.audit(&AuditQuery::default()).unwrap().is_empty());
    assert!(matches!(
        s.reseal(
            Some(two),
            two,
            &mut |_, o| Ok(o.clone()),
            &mut |_, _, _| Err(Abort::Bug("no push subscription here")),
            &[]
        ),
        Err(StoreError::KeyChanged { .. })
    ));
    let n = s
        .reseal(
            Some(one),
            two,
            &mut |_, o| Ok(sealed_under(two, &unsealed(o))),
            &mut |_, _, _| Err(Abort::Bug("no push subscription here")),
            &[ev(11, "*", "rekeyed")],
        )
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(s.store_key_id().unwrap(), Some(two));
    for r in s.users().unwrap() {
        assert_eq!(sealed_key_id(r.secret.as_ref().unwrap()), Some(two));
    }
    assert_eq!(s.audit(&AuditQuery::default()).unwrap().len(), 1);
}

/// A record written with its key changed (`mfa_changed` moved: an enrolment by any path, a
/// replacement, an unlink) ends that user's unused invites in the same transaction; used
/// ones, other users' and a write that changed no key leave them as they were.
fn key_change_voids_invites(open: Open<'_>) {
    let s = open();
    let inv = |h: u8, user: &str, created: i64, used: Option<i64>| mfa_model::Invite {
        hash: [h; 32],
        user: user.into(),
        created,
        expires: created + 1000,
        used,
    };
    let kim = name("kim");
    s.put_invites(
        &[
            inv(1, "kim", 100, None),
            inv(2, "kim", 110, None),
            inv(3, "kim", 120, Some(130)),
            inv(4, "lea", 100, None),
            inv(5, "kim", 10, None),
        ],
        &[],
    )
    .unwrap();
    let expires = |h: u8| s.invite(&[h; 32]).unwrap().unwrap().expires;
    // A record without a key change (a login seen, a temporary code): nothing voided.
    let mut r = UserRecord::new(&kim, params(), 200);
    put(s.as_ref(), &r, vec![]);
    r.login_count = 1;
    put(s.as_ref(), &r, vec![]);
    assert_eq!([expires(1), expires(2), expires(5)], [1100, 1110, 1010]);
    // Enrolled (some other way than these invites) at 500.
    let mut e = enrolled(&kim, 500);
    e.mfa_changed = Some(500);
    put(s.as_ref(), &e, vec![]);
    assert_eq!(
        [expires(1), expires(2)],
        [500, 500],
        "kim's unused invites end"
    );
    assert_eq!(expires(3), 1120, "a used invite stays as it was");
    assert_eq!(expires(4), 1100, "another user's stays");
    assert_eq!(expires(5), 500, "already ended before: stays ended");
    for h in [1, 2] {
        assert_eq!(
            s.invite(&[h; 32]).unwrap().unwrap().used,
            None,
            "void, not used"
        );
    }
    // A new invite, then an unlink at 700: that one ends too.
    s.put_invites(&[inv(6, "kim", 600, None)], &[]).unwrap();
    e.secret = None;
    e.mfa_changed = Some(700);
    put(s.as_ref(), &e, vec![]);
    assert_eq!(expires(6), 700);
    // Through transact_with_invite too: the invite used stays used, the others end.
    s.put_invites(&[inv(7, "kim", 800, None), inv(8, "kim", 800, None)], &[])
        .unwrap();
    let mut again = enrolled(&kim, 900);
    again.mfa_changed = Some(900);
    assert!(
        s.transact_with_invite(&[7; 32], 900, &[&kim], &mut |recs| {
            recs[0] = Some(again.clone());
            Ok(vec![])
        })
        .unwrap()
    );
    assert_eq!(s.invite(&[7; 32]).unwrap().unwrap().used, Some(900));
    assert_eq!(expires(8), 900);
    // Issued in the very second of the change, or stamped after it by a node whose clock
    // runs ahead: ended at its own creation, never before it (a row the store can read).
    s.put_invites(
        &[inv(9, "kim", 1000, None), inv(10, "kim", 1005, None)],
        &[],
    )
    .unwrap();
    again.mfa_changed = Some(1000);
    put(s.as_ref(), &again, vec![]);
    assert_eq!([expires(9), expires(10)], [1000, 1005]);
    assert!(!s.invite(&[9; 32]).unwrap().unwrap().usable(1000));
    assert_eq!(s.invites().unwrap().len(), 10, "every row still reads");
}
