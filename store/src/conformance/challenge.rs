//! Pending RADIUS challenges (`crate::challenge`): kept by the hash of their State, taken
//! once however many callers try at the same moment, and capped across everyone who writes.

use super::{Check, Open};
use crate::{ChallengeLimits, ChallengeRow, Store};

pub(crate) const CHECKS: &[(&str, Check)] = &[
    ("a_challenge_is_kept_whole_and_taken_once", taken_once),
    ("two_takers_of_one_state_one_wins", two_takers_one_wins),
    ("challenge_caps_hold_and_expired_ones_go", caps_and_expiry),
];

const ROOMY: ChallengeLimits = ChallengeLimits {
    total: 1000,
    per_client: 750,
    per_host: 250,
    per_user: 4,
};

fn row(n: u32, user: &str, client: &str, host: &str, created: i64) -> ChallengeRow {
    let mut state_hash = [0u8; 32];
    state_hash[..4].copy_from_slice(&n.to_be_bytes());
    state_hash[31] = 0xa5;
    ChallengeRow {
        state_hash,
        user: user.into(),
        client: client.into(),
        host: host.into(),
        service: format!("{client}/web1/sshd"),
        client_ip: "198.51.100.7".into(),
        created,
        expires: created + 60_000,
        push_id: None,
        push_number: None,
        push_expires: None,
    }
}

fn hash(n: u32) -> [u8; 32] {
    row(n, "", "", "", 0).state_hash
}

fn taken_once(open: Open<'_>) {
    let s = open();
    let mut r = row(1, "alice", "vpn", "", 1_000);
    r.push_id = Some([7; 16]);
    r.push_number = Some(42);
    r.push_expires = Some(61);
    assert!(s.put_challenge(&r, &ROOMY).unwrap());
    let plain = row(2, "bob", "hosts", "10.0.5.7", 1_000);
    assert!(s.put_challenge(&plain, &ROOMY).unwrap());
    assert_eq!(s.live_challenges(1_000).unwrap(), 2);
    // The same hash twice is an error, and changes nothing.
    assert!(s.put_challenge(&r, &ROOMY).is_err());
    assert_eq!(s.take_challenge(&r.state_hash).unwrap(), Some(r.clone()));
    assert_eq!(s.take_challenge(&r.state_hash).unwrap(), None, "used once");
    assert_eq!(s.take_challenge(&hash(99)).unwrap(), None);
    assert_eq!(s.take_challenge(&plain.state_hash).unwrap(), Some(plain));
    assert_eq!(s.live_challenges(1_000).unwrap(), 0);
}

/// Two threads (two connections: two nodes, as far as the store can tell) present each
/// State at the same moment: exactly one gets the row.
fn two_takers_one_wins(open: Open<'_>) {
    let s = open();
    for n in 0..40 {
        assert!(
            s.put_challenge(&row(n, &format!("u{n}"), "vpn", "", 1_000), &ROOMY)
                .unwrap()
        );
    }
    let s: &dyn Store = s.as_ref();
    let wins: Vec<Vec<u32>> = std::thread::scope(|sc| {
        let takers: Vec<_> = (0..2)
            .map(|_| {
                sc.spawn(move || {
                    (0..40)
                        .filter(|&n| s.take_challenge(&hash(n)).unwrap().is_some())
                        .collect::<Vec<u32>>()
                })
            })
            .collect();
        takers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all = wins.concat();
    all.sort_unstable();
    assert_eq!(all, (0..40).collect::<Vec<u32>>(), "each once: {wins:?}");
}

fn caps_and_expiry(open: Open<'_>) {
    let s = open();
    let small = ChallengeLimits {
        total: 8,
        per_client: 6,
        per_host: 2,
        per_user: 4,
    };
    // One user from one client: the fifth replaces the oldest.
    for n in 0..5 {
        assert!(
            s.put_challenge(&row(n, "alice", "vpn", "", 1_000 + i64::from(n)), &small)
                .unwrap()
        );
    }
    assert_eq!(s.live_challenges(1_000).unwrap(), 4);
    assert_eq!(
        s.take_challenge(&hash(0)).unwrap(),
        None,
        "the oldest gave way"
    );
    assert!(s.take_challenge(&hash(4)).unwrap().is_some());
    // The same user through another client is another share.
    assert!(
        s.put_challenge(&row(10, "alice", "other", "", 1_010), &small)
            .unwrap()
    );
    // The client's share: 6 (three of alice's are left, three more users fill it).
    for n in 11..14 {
        assert!(
            s.put_challenge(&row(n, &format!("u{n}"), "vpn", "", 1_020), &small)
                .unwrap()
        );
    }
    assert!(
        !s.put_challenge(&row(14, "u14", "vpn", "", 1_020), &small)
            .unwrap(),
        "past the client's share"
    );
    assert_eq!(s.take_challenge(&hash(14)).unwrap(), None, "nothing stored");
    // Everyone together: 3 + 1 + 3 = 7 live, one more place.
    assert!(
        s.put_challenge(&row(15, "carol", "third", "", 1_030), &small)
            .unwrap()
    );
    assert!(
        !s.put_challenge(&row(16, "dave", "fourth", "", 1_030), &small)
            .unwrap(),
        "past the total"
    );
    assert_eq!(s.live_challenges(1_030).unwrap(), 8);
    // Expired ones give their places back: the next put prunes them.
    assert_eq!(s.live_challenges(70_000).unwrap(), 0);
    assert!(
        s.put_challenge(&row(30, "bob", "vpn", "", 70_000), &small)
            .unwrap()
    );
    assert_eq!(s.live_challenges(70_000).unwrap(), 1);
    assert_eq!(s.prune_challenges(70_000).unwrap(), 0, "already pruned");
    assert_eq!(s.prune_challenges(200_000).unwrap(), 1);
    assert_eq!(s.take_challenge(&hash(30)).unwrap(), None);

    // A host of an entry that covers several: its share, and the next host keeps its own.
    let s = open();
    let hosts = |n: u32, host: &str| row(n, &format!("h{n}"), "hosts", host, 1_000);
    assert!(s.put_challenge(&hosts(40, "10.0.5.7"), &small).unwrap());
    assert!(s.put_challenge(&hosts(41, "10.0.5.7"), &small).unwrap());
    assert!(
        !s.put_challenge(&hosts(42, "10.0.5.7"), &small).unwrap(),
        "past the host's share"
    );
    assert!(s.put_challenge(&hosts(43, "10.0.5.8"), &small).unwrap());
    assert_eq!(s.live_challenges(1_000).unwrap(), 3);
}
