//! The engine's part of push approval: the rows of requests, devices and blocks inside a
//! user's transaction and the reads outside, the guards an engine adds (one pending row per
//! user and service, rows of the transaction's user only, subscriptions under the store
//! key), the user's lock serialising push transactions, and the rows going with their user
//! or its key. The rules over them are the core's (`mfa_core::conformance`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mfa_model::{
    DeviceId, KeyId, NONCE_BYTES, PushDevice, PushId, PushRequest, PushState, SealedBlob,
    TAG_BYTES, UserName, sealed_blob_key_id,
};

use super::{Check, Open, enrolled, name, put, sealed_under};
use crate::{Abort, AuditQuery, PushTx, Store, StoreError};

const KEY: KeyId = [7; mfa_model::KEY_ID_BYTES];

/// The push checks, for [`super::all`].
pub(crate) const CHECKS: &[(&str, Check)] = &[
    ("push_rows_round_trip", rows_round_trip),
    ("push_outbox_and_reads", outbox_and_reads),
    (
        "push_two_senders_never_take_one_request",
        two_senders_take_apart,
    ),
    ("push_one_pending_row_per_user_and_service", one_pending_row),
    (
        "push_rows_of_the_transactions_user_only",
        rows_of_the_user_only,
    ),
    ("push_transactions_of_one_user_in_turn", one_user_in_turn),
    ("push_an_error_rolls_everything_back", error_rolls_back),
    (
        "push_rows_go_with_their_user_and_key",
        rows_go_with_user_and_key,
    ),
    (
        "push_subscriptions_under_the_store_key",
        subscriptions_under_the_key,
    ),
    ("push_heartbeat_and_wait", heartbeat_and_wait),
];

/// A sealed blob's layout under `id`, `tag` standing in for the ciphertext.
pub fn blob_under(id: KeyId, tag: u8) -> SealedBlob {
    let mut b = vec![mfa_model::FORM_XCHACHA20POLY1305];
    b.extend_from_slice(&id);
    b.extend_from_slice(&[0x5a; NONCE_BYTES]);
    b.extend_from_slice(&[tag; 40]);
    b.extend_from_slice(&[0xa5; TAG_BYTES]);
    SealedBlob::from_stored(b)
}

pub fn device(user: &UserName, id: u8, created: i64) -> PushDevice {
    let mut public_key = vec![4];
    public_key.extend_from_slice(&[id; 64]);
    PushDevice {
        id: DeviceId([id; 16]),
        user: user.clone(),
        name: format!("phone {id}"),
        subscription: blob_under(KEY, id),
        public_key,
        created,
        last_used: None,
    }
}

pub fn request(user: &UserName, id: u8, service: &str, created: i64) -> PushRequest {
    PushRequest {
        id: PushId([id; 16]),
        user: user.clone(),
        service: service.into(),
        client_ip: Some("2001:db8::9".into()),
        created,
        expires: created + 60,
        number: Some(42),
        state: PushState::Pending,
        decided: None,
        device: None,
        sent: None,
        delivery_error: None,
        used: None,
    }
}

/// A store sealed under [`KEY`] holding the enrolled users `names`.
fn sealed_store(open: Open<'_>, names: &[&str]) -> Box<dyn Store> {
    let s = open();
    for n in names {
        put(s.as_ref(), &enrolled(&name(n), 10), vec![]);
    }
    s.reseal(
        None,
        KEY,
        &mut |_, o| Ok(sealed_under(KEY, o)),
        &mut |_, _, _| Err(Abort::Bug("no subscription yet")),
        &[],
    )
    .unwrap();
    s
}

/// Runs `f` in a push transaction of `user` that writes no record and no event.
fn ptx(
    s: &dyn Store,
    user: &UserName,
    mut f: impl FnMut(&mut dyn PushTx) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    s.transact_push(user, &mut |_, tx| {
        f(tx)?;
        Ok(vec![])
    })
}

fn rows_round_trip(open: Open<'_>) {
    let s = sealed_store(open, &["ann"]);
    let ann = name("ann");
    let d = device(&ann, 1, 100);
    let mut r = request(&ann, 1, "sshd", 100);
    ptx(s.as_ref(), &ann, |tx| {
        tx.put_device(&d)?;
        tx.insert_request(&r)?;
        tx.set_block(Some(500))?;
        assert_eq!(tx.devices()?, vec![d.clone()]);
        assert_eq!(tx.request(&r.id)?, Some(r.clone()));
        assert_eq!(tx.block()?, Some(500));
        Ok(())
    })
    .unwrap();
    assert_eq!(s.push_devices(&ann).unwrap(), vec![d.clone()]);
    assert_eq!(s.push_device(&d.id).unwrap(), Some(d.clone()));
    assert_eq!(s.push_device(&DeviceId([9; 16])).unwrap(), None);
    assert_eq!(s.push_request(&r.id).unwrap(), Some(r.clone()));
    assert_eq!(s.push_request(&PushId([9; 16])).unwrap(), None);
    assert_eq!(s.push_block(&ann).unwrap(), Some(500));
    // Every field written back as it was.
    r.state = PushState::Approved;
    r.decided = Some(110);
    r.device = Some(d.id);
    r.sent = Some(101);
    r.delivery_error = Some("é".repeat(300));
    r.used = Some(120);
    r.client_ip = None;
    r.number = None;
    let mut d2 = d.clone();
    d2.last_used = Some(110);
    ptx(s.as_ref(), &ann, |tx| {
        tx.update_request(&r)?;
        tx.put_device(&d2)?;
        tx.set_block(None)?;
        Ok(())
    })
    .unwrap();
    let mut back = s.push_request(&r.id).unwrap().unwrap();
    let err = back.delivery_error.take().unwrap();
    assert!(err.len() <= mfa_model::MAX_DELIVERY_ERROR_BYTES && err.starts_with("éé"));
    r.delivery_error = None;
    assert_eq!(back, r);
    assert_eq!(s.push_devices(&ann).unwrap(), vec![d2]);
    assert_eq!(s.push_block(&ann).unwrap(), None);
    // An update of a request not stored is an error.
    let ghost = request(&ann, 8, "sshd", 100);
    assert!(ptx(s.as_ref(), &ann, |tx| tx.update_request(&ghost)).is_err());
}

fn outbox_and_reads(open: Open<'_>) {
    let s = sealed_store(open, &["bo", "cy"]);
    let (bo, cy) = (name("bo"), name("cy"));
    let mut sent = request(&bo, 1, "a", 100);
    sent.sent = Some(101);
    let mut denied = request(&bo, 2, "b", 90);
    denied.state = PushState::Denied;
    denied.decided = Some(95);
    let old = request(&bo, 3, "c", 10); // pending, expired at 70
    let late = request(&bo, 4, "d", 120);
    let early = request(&cy, 5, "a", 105);
    ptx(s.as_ref(), &bo, |tx| {
        for r in [&sent, &denied, &old, &late] {
            tx.insert_request(r)?;
        }
        Ok(())
    })
    .unwrap();
    ptx(s.as_ref(), &cy, |tx| tx.insert_request(&early)).unwrap();
    let ids = |v: Vec<PushRequest>| v.iter().map(|r| r.id.0[0]).collect::<Vec<_>>();
    // Pending, unsent, unexpired, not taken, oldest first, at most `limit`; taken until
    // the time given, then free again for another sender.
    assert_eq!(ids(s.claim_push_outbox(110, 1, 140).unwrap()), [5]);
    assert_eq!(
        ids(s.claim_push_outbox(110, 10, 140).unwrap()),
        [4],
        "5 taken"
    );
    assert!(
        s.claim_push_outbox(139, 10, 170).unwrap().is_empty(),
        "both taken"
    );
    assert_eq!(
        s.push_request(&early.id).unwrap().unwrap(),
        early,
        "taking changes nothing the request says"
    );
    assert_eq!(ids(s.claim_push_outbox(140, 10, 170).unwrap()), [5, 4]);
    assert_eq!(
        ids(s.claim_push_outbox(171, 10, 200).unwrap()),
        [4],
        "expired at 165"
    );
    // A request sent meanwhile leaves the outbox though its claim has run out.
    let mut sent_late = late.clone();
    sent_late.sent = Some(180);
    ptx(s.as_ref(), &bo, |tx| tx.update_request(&sent_late)).unwrap();
    assert!(s.claim_push_outbox(200, 10, 230).unwrap().is_empty());
    ptx(s.as_ref(), &bo, |tx| tx.update_request(&late)).unwrap();
    // A user's since a time, and every pending one of theirs whenever made.
    assert_eq!(ids(s.push_requests(&bo, 95).unwrap()), [3, 1, 4]);
    assert_eq!(ids(s.push_requests(&bo, 0).unwrap()), [3, 2, 1, 4]);
    assert_eq!(ids(s.push_requests(&cy, 200).unwrap()), [5]);
    // Forgetting: the user's old ones that are not pending; pruning: everyone's.
    ptx(s.as_ref(), &bo, |tx| {
        assert_eq!(
            tx.forget_requests(100)?,
            1,
            "the denied one; the old pending stays"
        );
        assert_eq!(ids(tx.requests(0)?), [3, 1, 4]);
        Ok(())
    })
    .unwrap();
    assert_eq!(s.prune_push(1000).unwrap(), 0, "all pending");
    let mut done = early.clone();
    done.state = PushState::Expired;
    done.decided = Some(170);
    ptx(s.as_ref(), &cy, |tx| tx.update_request(&done)).unwrap();
    assert_eq!(s.prune_push(105).unwrap(), 0, "not before its creation");
    assert_eq!(s.prune_push(106).unwrap(), 1);
    assert_eq!(s.push_request(&early.id).unwrap(), None);
}

/// Beside the core's rule, the engine stores one pending row per user and service: a
/// second is an error and its transaction writes nothing; another service, another user,
/// or a pending row decided since, let a new one in.
fn one_pending_row(open: Open<'_>) {
    let s = sealed_store(open, &["di", "ed"]);
    let (di, ed) = (name("di"), name("ed"));
    ptx(s.as_ref(), &di, |tx| {
        tx.insert_request(&request(&di, 1, "sshd", 100))
    })
    .unwrap();
    let r = s.transact_push(&di, &mut |slot, tx| {
        slot.as_mut().unwrap().login_count = 99;
        tx.insert_request(&request(&di, 2, "sshd", 101))?;
        Ok(vec![super::ev(101, "di", "push_sent")])
    });
    assert!(r.is_err());
    assert_eq!(s.push_request(&PushId([2; 16])).unwrap(), None);
    assert_eq!(s.user(&di).unwrap().unwrap().login_count, 0);
    assert!(s.audit(&AuditQuery::default()).unwrap().is_empty());
    ptx(s.as_ref(), &di, |tx| {
        tx.insert_request(&request(&di, 3, "vpn", 101))
    })
    .unwrap();
    ptx(s.as_ref(), &ed, |tx| {
        tx.insert_request(&request(&ed, 4, "sshd", 101))
    })
    .unwrap();
    ptx(s.as_ref(), &di, |tx| {
        let mut r = tx.request(&PushId([1; 16]))?.unwrap();
        r.state = PushState::Expired;
        r.decided = Some(170);
        tx.update_request(&r)?;
        tx.insert_request(&request(&di, 5, "sshd", 170))
    })
    .unwrap();
    // An id stored already.
    assert!(
        ptx(s.as_ref(), &ed, |tx| tx
            .insert_request(&request(&ed, 4, "x", 101)))
        .is_err()
    );
}

/// A user's transaction writes that user's rows only: another user's request or device is
/// refused as a bug, and another user's device id is not taken over nor removed.
fn rows_of_the_user_only(open: Open<'_>) {
    let s = sealed_store(open, &["fi", "gil"]);
    let (fi, gil) = (name("fi"), name("gil"));
    ptx(s.as_ref(), &gil, |tx| tx.put_device(&device(&gil, 1, 10))).unwrap();
    for r in [
        ptx(s.as_ref(), &fi, |tx| {
            tx.insert_request(&request(&gil, 1, "a", 10))
        }),
        ptx(s.as_ref(), &fi, |tx| tx.put_device(&device(&gil, 2, 10))),
        // Gil's device id under Fi's name.
        ptx(s.as_ref(), &fi, |tx| tx.put_device(&device(&fi, 1, 10))),
    ] {
        assert!(
            matches!(r, Err(StoreError::Aborted(Abort::Bug(_)))),
            "{r:?}"
        );
    }
    ptx(s.as_ref(), &fi, |tx| {
        assert!(!tx.remove_device(&DeviceId([1; 16]))?);
        assert!(tx.devices()?.is_empty());
        Ok(())
    })
    .unwrap();
    assert_eq!(s.push_devices(&gil).unwrap(), vec![device(&gil, 1, 10)]);
}

/// Push transactions of one user run one after the other, across connections (and nodes):
/// of two that each look for a pending request and, finding none, write one, exactly one
/// writes it; the other sees it.
fn one_user_in_turn(open: Open<'_>) {
    let s = sealed_store(open, &["hu"]);
    let hu = name("hu");
    let wrote = AtomicUsize::new(0);
    let saw = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for i in 0..2u8 {
            let (s, hu, wrote, saw) = (s.as_ref(), &hu, &wrote, &saw);
            sc.spawn(move || {
                s.transact_push(hu, &mut |_, tx| {
                    if tx
                        .requests(0)?
                        .iter()
                        .any(|r| r.state == PushState::Pending)
                    {
                        saw.fetch_add(1, Ordering::SeqCst);
                        return Ok(vec![]);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    tx.insert_request(&request(hu, 10 + i, "sshd", 100))?;
                    wrote.fetch_add(1, Ordering::SeqCst);
                    Ok(vec![])
                })
                .unwrap();
            });
        }
    });
    assert_eq!(wrote.load(Ordering::SeqCst), 1);
    assert_eq!(saw.load(Ordering::SeqCst), 1);
}

/// Two portals reading one outbox at once (two threads, two connections) take every
/// request, and none twice: a sign-in is pushed once however many portals run.
fn two_senders_take_apart(open: Open<'_>) {
    let s = sealed_store(open, &["jo"]);
    let jo = name("jo");
    ptx(s.as_ref(), &jo, |tx| {
        for i in 0..30u8 {
            tx.insert_request(&request(&jo, i + 1, &format!("svc{i}"), 100))?;
        }
        Ok(())
    })
    .unwrap();
    let taken: Vec<Vec<u8>> = std::thread::scope(|sc| {
        let senders: Vec<_> = (0..2)
            .map(|_| {
                let s = s.as_ref();
                sc.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let got = s.claim_push_outbox(110, 3, 150).unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got.iter().map(|r| r.id.0[0]));
                    }
                })
            })
            .collect();
        senders.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<u8> = taken.concat();
    all.sort_unstable();
    assert_eq!(all, (1..=30).collect::<Vec<u8>>(), "each once: {taken:?}");
}

/// An error from the push function rolls back the record, the push rows and the events.
fn error_rolls_back(open: Open<'_>) {
    let s = sealed_store(open, &["ida"]);
    let ida = name("ida");
    let r = s.transact_push(&ida, &mut |slot, tx| {
        slot.as_mut().unwrap().failures = 3;
        tx.put_device(&device(&ida, 1, 10))?;
        tx.insert_request(&request(&ida, 1, "a", 10))?;
        tx.set_block(Some(99))?;
        Err(StoreError::Aborted(Abort::Bug("stop")))
    });
    assert!(r.is_err());
    assert!(s.push_devices(&ida).unwrap().is_empty());
    assert_eq!(s.push_request(&PushId([1; 16])).unwrap(), None);
    assert_eq!(s.push_block(&ida).unwrap(), None);
    assert_eq!(s.user(&ida).unwrap().unwrap().failures, 0);
    // A new user's record made in the same transaction as its first push rows.
    let jon = name("jon");
    s.transact_push(&jon, &mut |slot, tx| {
        let mut r = enrolled(&jon, 10);
        r.secret = Some(sealed_under(KEY, r.secret.as_ref().unwrap()));
        *slot = Some(r);
        tx.put_device(&device(&jon, 2, 10))?;
        Ok(vec![super::ev(10, "jon", "device_registered")])
    })
    .unwrap();
    assert_eq!(s.push_devices(&jon).unwrap().len(), 1);
}

/// The rows go with their user (removed by name upkeep), and the devices with the key
/// they stood for: a record written with its key changed removes the user's devices in
/// that transaction, other users' stay.
fn rows_go_with_user_and_key(open: Open<'_>) {
    let s = sealed_store(open, &["kai", "lu"]);
    let (kai, lu) = (name("kai"), name("lu"));
    for (u, id) in [(&kai, 1), (&lu, 2)] {
        ptx(s.as_ref(), u, |tx| {
            tx.put_device(&device(u, id, 10))?;
            tx.insert_request(&request(u, id, "a", 10))?;
            tx.set_block(Some(99))
        })
        .unwrap();
    }
    // A login's write (no key change): the devices stay.
    s.transact(&[&kai], &mut |recs| {
        recs[0].as_mut().unwrap().login_count += 1;
        Ok(vec![])
    })
    .unwrap();
    assert_eq!(s.push_devices(&kai).unwrap().len(), 1);
    // The key changed (an unlink).
    s.transact(&[&kai], &mut |recs| {
        let r = recs[0].as_mut().unwrap();
        r.secret = None;
        r.mfa_changed = Some(50);
        Ok(vec![])
    })
    .unwrap();
    assert!(s.push_devices(&kai).unwrap().is_empty());
    assert_eq!(s.push_devices(&lu).unwrap().len(), 1);
    // Removed by the name upkeep: every push row of the user goes.
    s.maintain_names(&mut |tx| {
        assert!(tx.remove("lu")?);
        Ok(Some(vec![]))
    })
    .unwrap();
    assert!(s.push_devices(&lu).unwrap().is_empty());
    assert_eq!(s.push_request(&PushId([2; 16])).unwrap(), None);
    assert_eq!(s.push_block(&lu).unwrap(), None);
    assert_eq!(s.push_request(&PushId([1; 16])).unwrap().unwrap().user, kai);
}

/// A subscription is written only sealed under the store's key, as a seed is; a rekey
/// re-seals every subscription with the seeds, all or nothing.
fn subscriptions_under_the_key(open: Open<'_>) {
    let s = sealed_store(open, &["mo"]);
    let mo = name("mo");
    let other: KeyId = [8; mfa_model::KEY_ID_BYTES];
    let mut d = device(&mo, 1, 10);
    d.subscription = blob_under(other, 1);
    let r = ptx(s.as_ref(), &mo, |tx| tx.put_device(&d));
    assert!(matches!(r, Err(StoreError::KeyChanged { .. })), "{r:?}");
    ptx(s.as_ref(), &mo, |tx| {
        tx.put_device(&device(&mo, 1, 10))?;
        tx.put_device(&device(&mo, 2, 10))
    })
    .unwrap();
    // A rekey that cannot re-seal one subscription changes nothing.
    let refused = s.reseal(
        Some(KEY),
        other,
        &mut |_, o| Ok(sealed_under(other, &super::unsealed(o))),
        &mut |_, dev, _| {
            if dev.0[0] == 2 {
                Err(Abort::Bug("cannot open"))
            } else {
                Ok(blob_under(other, dev.0[0]))
            }
        },
        &[],
    );
    assert!(refused.is_err());
    assert_eq!(s.store_key_id().unwrap(), Some(KEY));
    let seen = std::sync::Mutex::new(Vec::new());
    s.reseal(
        Some(KEY),
        other,
        &mut |_, o| Ok(sealed_under(other, &super::unsealed(o))),
        &mut |u, dev, b| {
            seen.lock().unwrap().push((u.to_string(), *dev, b.clone()));
            Ok(blob_under(other, dev.0[0]))
        },
        &[],
    )
    .unwrap();
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|(u, _, b)| u == "mo" && sealed_blob_key_id(b) == Some(KEY))
    );
    for d in s.push_devices(&mo).unwrap() {
        assert_eq!(sealed_blob_key_id(&d.subscription), Some(other));
    }
    // Re-sealed under another key than the one recorded: a bug, refused.
    let r = s.reseal(
        Some(other),
        KEY,
        &mut |_, o| Ok(sealed_under(KEY, &super::unsealed(o))),
        &mut |_, dev, _| Ok(blob_under(other, dev.0[0])),
        &[],
    );
    assert!(
        matches!(r, Err(StoreError::Aborted(Abort::Bug(_)))),
        "{r:?}"
    );
}

fn heartbeat_and_wait(open: Open<'_>) {
    let s = sealed_store(open, &["ned"]);
    assert_eq!(s.push_heartbeat().unwrap(), None);
    s.set_push_heartbeat(1_800_000_000).unwrap();
    s.set_push_heartbeat(1_800_000_005).unwrap();
    assert_eq!(s.push_heartbeat().unwrap(), Some(1_800_000_005));
    // A wait returns by itself (no request announced).
    let t = std::time::Instant::now();
    s.wait_for_push(Duration::from_millis(50)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    // A request written while the portal waits ends the wait well before its timeout
    // (PostgreSQL: announced at the commit; SQLite: the next poll).
    let ned = name("ned");
    let t = std::time::Instant::now();
    std::thread::scope(|sc| {
        sc.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            ptx(s.as_ref(), &ned, |tx| {
                tx.insert_request(&request(&ned, 1, "sshd", 100))
            })
            .unwrap();
        });
        while t.elapsed() < Duration::from_millis(300) {
            s.wait_for_push(Duration::from_secs(20)).unwrap();
        }
    });
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the wait outlasted the announcement: {:?}",
        t.elapsed()
    );
}
