//! Throws 100,000+ random and mutated datagrams at a running mfa-radiusd, then checks that it
//! is alive and still answers a valid request correctly. Message-Authenticator is not required
//! here so that mutated packets get past admission and reach the attribute handling, the
//! modes and the store, not only the parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use mfa_e2e::Rng;
use mfa_e2e::radius::*;

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut p = base.to_vec();
    match rng.below(8) {
        // Flip a few bytes anywhere.
        0 | 1 => {
            for _ in 0..=rng.below(4) {
                let i = rng.below(p.len());
                p[i] = rng.next_u64() as u8;
            }
        }
        // Attribute area only: keeps the header plausible.
        2 | 3 => {
            for _ in 0..=rng.below(3) {
                let i = 20 + rng.below(p.len() - 20);
                p[i] = rng.next_u64() as u8;
            }
        }
        // Length field lies.
        4 => {
            let l = rng.below(5000) as u16;
            p[2..4].copy_from_slice(&l.to_be_bytes());
        }
        // Truncate.
        5 => p.truncate(rng.below(p.len())),
        // Append junk attributes and fix the Length field.
        6 => {
            for _ in 0..=rng.below(6) {
                let t = rng.next_u64() as u8;
                let l = rng.below(40);
                p.push(t);
                p.push((l + 2) as u8);
                p.extend((0..l).map(|_| rng.next_u64() as u8));
            }
            let l = (p.len().min(4096)) as u16;
            p[2..4].copy_from_slice(&l.to_be_bytes());
        }
        // Change the code.
        _ => p[0] = rng.next_u64() as u8,
    }
    p
}

#[test]
fn survives_100k_hostile_datagrams() {
    let rig = Rig::start_with("code-only", "require_message_authenticator = false");
    // The flood's wrong codes lock its own user (as they should); the check after it uses
    // another one.
    let (victim, _) = rig.user();
    let (user, key) = rig.user();
    let bases = [
        capture(
            "auth",
            &attrs(&victim, Some("123456"), Some(UNTRUSTED_CSI), true),
        ),
        capture(
            "auth",
            &attrs(&victim, Some("654321"), Some(TRUSTED_CSI), false),
        ),
        capture(
            "auth",
            "User-Name = \"x\"\nState = 0x00112233445566778899aabbccddeeff\nUser-Password = \"1\"\nProxy-State = 0x01\nAttr-26 = 0x000001370103ff\n",
        ),
        capture("status", "Message-Authenticator = 0x00\n"),
    ];
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_nonblocking(true).unwrap();
    let target = rig.addr();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ u64::from(std::process::id()));
    let mut sent = 0u32;
    let mut sink = [0u8; 4096];
    let started = Instant::now();
    while sent < 100_000 {
        let pkt = if rng.below(3) == 0 {
            let n = rng.below(400);
            let mut p: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            // Half the random ones look like an Access-Request header with a fitting length.
            if n >= 20 && rng.below(2) == 0 {
                p[0] = 1;
                p[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            }
            p
        } else {
            let b = &bases[rng.below(bases.len())];
            let mut p = mutate(&mut rng, b);
            // Mostly a new identifier, so mutants are evaluated rather than answered from
            // the duplicate cache.
            if p.len() > 1 && rng.below(4) != 0 {
                p[1] = rng.next_u64() as u8;
            }
            if p.len() >= 20 && rng.below(2) == 0 {
                let i = 4 + rng.below(16);
                p[i] = rng.next_u64() as u8;
            }
            p
        };
        if sock.send_to(&pkt, &target).is_ok() {
            sent += 1;
        }
        // Pace a little so most reach the daemon rather than the kernel's drop counter.
        if sent.is_multiple_of(500) {
            std::thread::sleep(Duration::from_millis(3));
            while sock.recv_from(&mut sink).is_ok() {}
        }
    }
    let flood = started.elapsed();

    // Still alive, and still right: a valid request is answered correctly. The daemon may
    // still be working through the flood's queue, so retransmit as a gateway would (the
    // duplicate cache answers the retries).
    let code = totp(&key, 0);
    let t = Instant::now();
    let r = radclient_retries(
        &target,
        SECRET,
        "auth",
        &attrs(&user, Some(&code), Some(UNTRUSTED_CSI), true),
        3,
        8,
    );
    assert!(r.is("Access-Accept"), "after the flood: {}", r.output);
    eprintln!("valid request answered {:?} after the flood", t.elapsed());
    let r = radclient(
        &target,
        "wrong-secret",
        "auth",
        &attrs(&user, Some(&totp(&key, 1)), Some(UNTRUSTED_CSI), true),
        1,
    );
    assert!(r.code.is_none(), "{}", r.output);
    rig.daemon.signal("USR1");
    rig.daemon.wait_log("stats received=", 1);
    let log = rig.daemon.log();
    let stats = log
        .lines()
        .rfind(|l| l.contains("stats received="))
        .unwrap();
    eprintln!("sent {sent} datagrams in {flood:?}; daemon: {stats}");
    let received: u64 = stats
        .split_whitespace()
        .find_map(|w| w.strip_prefix("received="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        received > 10_000,
        "the flood mostly missed the daemon: {stats}"
    );
    assert!(!log.contains("panicked"), "{log}");
}
