//! Push approval through mfa-radiusd (issue 20), with radclient as the gateway: the two-round
//! challenge flow, append mode's `password,push`, code-only mode's held request with the
//! gateway's retransmissions (one push, the decision sent to every copy), and push fatigue.
//! The phone is the core's API called from the test, and the portal's sender loop runs
//! beside the daemon, as in push_pam.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mfa_e2e::phone::{FakePortal, OnPhone, Phone, audit_reasons, push_toml, shown_number};
use mfa_e2e::radius::*;

/// The datagrams a relay passed: the gateway's requests and the daemon's replies.
type Seen = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// A daemon in `mode` with push on (`[push]` + `push_extra`), its client `test-gw` with
/// `client_extra` keys, the PAM service of the tests for the password, and the portal's
/// sender running.
struct PushRig {
    rig: Rig,
    portal: FakePortal,
}

fn push_rig(mode: &str, client_extra: &str, push_extra: &str) -> PushRig {
    require_tool("radclient");
    let port = free_udp_port();
    let text = config_text(mode, &format!("\"127.0.0.1:{port}\""), "", SECRET).replace(
        "name = \"test-gw\"\n",
        &format!("name = \"test-gw\"\n{client_extra}\n"),
    );
    let site = Site::with_config(&format!("{text}{}", push_toml(push_extra)));
    let pam = write_pam(site.path());
    let daemon = spawn_daemon(&site.config, Some(&pam));
    daemon.wait_log("listening on", 1);
    let portal = FakePortal::start(&site.config);
    PushRig {
        rig: Rig { daemon, site, port },
        portal,
    }
}

impl PushRig {
    /// An enrolled user with a registered phone.
    fn user(&self) -> (String, String, Phone) {
        let (u, k) = self.rig.user();
        let phone = Phone::register(&self.rig.site.config, &u, &k);
        (u, k, phone)
    }

    fn reasons(&self, user: &str) -> Vec<String> {
        audit_reasons(&self.rig.site.config, user)
    }
}

fn round(rig: &Rig, user: &str, password: &str, state: Option<&str>) -> Reply {
    let mut a = attrs(user, Some(password), Some(UNTRUSTED_CSI), true);
    if let Some(s) = state {
        a.push_str(&format!("State = {s}\n"));
    }
    rig.send(&a)
}

/// Challenge mode, the two-round flow: the challenge offers the push; "push" sends it and a
/// second Access-Challenge shows the number and "then press OK"; OK before the phone decided
/// gets another challenge (no request is held open); OK after the approval, Access-Accept.
/// With a wrong number, the round after is an Access-Reject.
#[test]
fn challenge_push_then_the_number_then_ok() {
    let pr = push_rig("challenge", "", "");
    let rig = &pr.rig;
    let (user, _key, phone) = pr.user();

    let r = round(rig, &user, PASSWORD, None);
    assert!(r.is("Access-Challenge"), "{}", r.output);
    assert!(
        r.messages.iter().any(|m| m.contains("type push")),
        "{:?}",
        r.messages
    );
    let r = round(rig, &user, "push", r.state.as_deref());
    assert!(r.is("Access-Challenge"), "{}", r.output);
    let shown = r.messages.join(" ");
    assert!(shown.contains("then press OK"), "{shown}");
    let number = shown_number(&shown).expect("the number is shown");
    let sent = pr.portal.wait_for(&user, 1);

    // OK too early: asked again, at once.
    let started = Instant::now();
    let r = round(rig, &user, "", r.state.as_deref());
    assert!(r.is("Access-Challenge"), "{}", r.output);
    assert!(started.elapsed() < Duration::from_secs(3), "not held");
    assert!(r.messages.join(" ").contains("Not approved yet"), "{r:?}");

    phone.decide(&sent.id, OnPhone::Approve(Some(number)));
    let r = round(rig, &user, "", r.state.as_deref());
    assert!(r.is("Access-Accept"), "{}", r.output);
    rig.daemon.wait_log("reason=push_approved", 1);

    // A wrong number denies.
    let r = round(rig, &user, PASSWORD, None);
    let r = round(rig, &user, "PUSH", r.state.as_deref());
    let number = shown_number(&r.messages.join(" ")).unwrap();
    let sent = pr.portal.wait_for(&user, 2);
    phone.decide(
        &sent.id,
        OnPhone::Approve(Some(if number == 10 { 11 } else { 10 })),
    );
    let r = round(rig, &user, "", r.state.as_deref());
    assert!(r.is("Access-Reject"), "{}", r.output);
    assert!(
        r.messages
            .iter()
            .any(|m| m.contains("denied on your phone")),
        "{r:?}"
    );
    assert_eq!(pr.portal.pushes_to(&user).len(), 2);
    rig.assert_log_clean(&[]);
}

/// Code-only (RD Gateway): a request without a code sends one push without number matching
/// and is held until the phone decides. The gateway's retransmissions while it is held send
/// no second push (the duplicate cache knows the request in flight); once decided, every
/// retransmission gets the very reply the first copy got.
#[test]
fn code_only_holds_one_push_per_request_and_answers_every_retransmission() {
    let pr = push_rig("code-only", "", "");
    let rig = &pr.rig;
    let (user, _key, phone) = pr.user();

    // radclient (retransmitting every 2 s, as a gateway does) through a relay that keeps
    // the exact datagrams.
    let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
    relay
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let relay_addr = relay.local_addr().unwrap().to_string();
    let daemon: SocketAddr = rig.addr().parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let forwarder = {
        let (sock, stop, seen) = (relay.try_clone().unwrap(), stop.clone(), seen.clone());
        std::thread::spawn(move || {
            let mut client = None;
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Acquire) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let d = buf[..n].to_vec();
                if from == daemon {
                    seen.lock().unwrap().1.push(d.clone());
                    if let Some(c) = client {
                        sock.send_to(&d, c).unwrap();
                    }
                } else {
                    client = Some(from);
                    seen.lock().unwrap().0.push(d.clone());
                    sock.send_to(&d, daemon).unwrap();
                }
            }
        })
    };
    let a = attrs(&user, None, Some(UNTRUSTED_CSI), true);
    let gateway =
        std::thread::spawn(move || radclient_retries(&relay_addr, SECRET, "auth", &a, 2, 15));

    let sent = pr.portal.wait_for(&user, 1);
    assert!(
        sent.payload.contains("\"number_matching\":false"),
        "RD Gateway shows no number: {}",
        sent.payload
    );
    // At least two retransmissions while it is held.
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().0.len() < 3 {
        assert!(Instant::now() < deadline, "radclient did not retransmit");
        std::thread::sleep(Duration::from_millis(100));
    }
    {
        let s = seen.lock().unwrap();
        assert!(s.1.is_empty(), "answered before the phone decided");
        assert!(s.0.windows(2).all(|w| w[0] == w[1]), "the very same packet");
    }
    assert_eq!(pr.portal.pushes_to(&user).len(), 1, "one push");
    phone.decide(&sent.id, OnPhone::Approve(None));
    let r = gateway.join().unwrap();
    assert!(r.is("Access-Accept"), "{}", r.output);
    stop.store(true, Ordering::Release);
    forwarder.join().unwrap();

    // Every copy sent now gets the reply the first one got, from the duplicate cache.
    let (request, reply) = {
        let s = seen.lock().unwrap();
        (s.0[0].clone(), s.1[0].clone())
    };
    relay
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    for _ in 0..3 {
        relay.send_to(&request, daemon).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = relay.recv_from(&mut buf).unwrap();
        assert_eq!(buf[..n], reply[..], "the cached decision");
    }
    assert_eq!(pr.portal.pushes_to(&user).len(), 1, "still one push");
    let reasons = pr.reasons(&user);
    assert_eq!(
        reasons.iter().filter(|r| *r == "push_sent").count(),
        1,
        "{reasons:?}"
    );
    assert_eq!(
        reasons.iter().filter(|r| *r == "push_approved").count(),
        2,
        "the phone's and the login's: {reasons:?}"
    );
    // The daemon's own count: the copies that came while it was held were dropped as in
    // progress, the later ones answered from the cache.
    rig.daemon.signal("USR1");
    rig.daemon.wait_log("stats received", 1);
    let log = rig.daemon.log();
    let stat = |name: &str| -> u64 {
        let line = log.lines().find(|l| l.contains("stats received")).unwrap();
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(stat("resent") >= 3, "{log}");
    assert!(stat("dropped_duplicate") >= stat("resent") + 2, "{log}");

    // Denied: rejected with the reason.
    let a = attrs(&user, None, Some(UNTRUSTED_CSI), true);
    let addr = rig.addr();
    let gateway = std::thread::spawn(move || radclient_retries(&addr, SECRET, "auth", &a, 30, 1));
    let sent = pr.portal.wait_for(&user, 2);
    phone.decide(&sent.id, OnPhone::Deny);
    let r = gateway.join().unwrap();
    assert!(r.is("Access-Reject"), "{}", r.output);
    assert!(
        r.messages
            .iter()
            .any(|m| m.contains("denied on your phone")),
        "{r:?}"
    );
    // A code in the request is checked as ever, without a push.
    let r = rig.send(&attrs(&user, Some("000000"), Some(UNTRUSTED_CSI), true));
    assert!(r.is("Access-Reject"), "{}", r.output);
    assert_eq!(pr.portal.pushes_to(&user).len(), 2);
}

/// Append mode: `password,push` checks the password through PAM first, then holds the
/// request until the phone decides; a wrong password sends no push.
#[test]
fn append_password_comma_push_is_held_until_approved() {
    let pr = push_rig("append", "", "");
    let rig = &pr.rig;
    let (user, key, phone) = pr.user();

    let r = rig.send(&attrs(
        &user,
        Some("wrong-pw,push"),
        Some(UNTRUSTED_CSI),
        true,
    ));
    assert!(r.is("Access-Reject"), "{}", r.output);
    assert!(pr.portal.pushes_to(&user).is_empty());

    let a = attrs(
        &user,
        Some(&format!("{PASSWORD},push")),
        Some(UNTRUSTED_CSI),
        true,
    );
    let addr = rig.addr();
    let gateway = std::thread::spawn(move || radclient_retries(&addr, SECRET, "auth", &a, 30, 1));
    let sent = pr.portal.wait_for(&user, 1);
    phone.decide(&sent.id, OnPhone::Approve(None));
    let r = gateway.join().unwrap();
    assert!(r.is("Access-Accept"), "{}", r.output);
    assert_eq!(rig.pam_calls(&user), 2);

    // Password and code still work.
    let r = rig.send(&attrs(
        &user,
        Some(&format!("{PASSWORD}{}", totp(&key, 0))),
        Some(UNTRUSTED_CSI),
        true,
    ));
    assert!(r.is("Access-Accept"), "{}", r.output);
    rig.assert_log_clean(&[]);
}

/// Push fatigue through RADIUS (code-only, `push = "only"` as for RD Gateway): a second
/// request while one is pending is refused at once with the reason; "This wasn't me"
/// rejects the waiting one, and the next is refused as blocked.
#[test]
fn fatigue_a_second_push_is_refused_and_this_wasnt_me_blocks() {
    let pr = push_rig("code-only", "push = \"only\"", "");
    let rig = &pr.rig;
    let (user, _key, phone) = pr.user();

    let a = attrs(&user, Some("123456"), Some(UNTRUSTED_CSI), true);
    let addr = rig.addr();
    let first = std::thread::spawn(move || radclient_retries(&addr, SECRET, "auth", &a, 30, 1));
    let sent = pr.portal.wait_for(&user, 1);

    let started = Instant::now();
    let r = rig.send(&attrs(&user, None, Some(UNTRUSTED_CSI), true));
    assert!(r.is("Access-Reject"), "{}", r.output);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refused at once"
    );
    assert!(
        r.messages.iter().any(|m| m.contains("already waiting")),
        "{r:?}"
    );

    phone.decide(&sent.id, OnPhone::Fraud);
    let r = first.join().unwrap();
    assert!(r.is("Access-Reject"), "{}", r.output);
    assert!(r.messages.iter().any(|m| m.contains("not yours")), "{r:?}");

    let r = rig.send(&attrs(&user, None, Some(UNTRUSTED_CSI), true));
    assert!(r.is("Access-Reject"), "{}", r.output);
    assert!(
        r.messages.iter().any(|m| m.contains("blocked until")),
        "{r:?}"
    );
    assert_eq!(pr.portal.pushes_to(&user).len(), 1);
    let reasons = pr.reasons(&user);
    for want in ["push_already_pending", "push_fraud", "push_blocked"] {
        assert!(reasons.contains(&want.into()), "{want}: {reasons:?}");
    }

    // A trusted network is settled without a push, as ever.
    let (other, _k, _p) = pr.user();
    let r = rig.send(&attrs(&other, None, Some(TRUSTED_CSI), true));
    assert!(r.is("Access-Accept"), "{}", r.output);
    assert!(pr.portal.pushes_to(&other).is_empty());
}
