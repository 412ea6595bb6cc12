//! A lockout an outsider cannot turn into a denial of service (issue 9, item 5): wrong codes
//! from one untrusted address lock that address out for the user before the user is locked,
//! so the right code from another address still works; many addresses still lock the user.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mfa_e2e::radius::*;
use mfa_e2e::{Site, code_of, fresh_key, text, totp, wrong_code};

#[test]
fn five_wrong_codes_from_one_address_do_not_stop_the_right_code_from_another() {
    let rig = Rig::start("code-only");
    let (user, key) = rig.user();
    let bad = wrong_code(&key);
    let mut messages = Vec::new();
    for _ in 0..5 {
        let r = rig.send(&attrs(&user, Some(&bad), Some("198.51.100.7:1194"), true));
        assert!(r.is("Access-Reject"), "{}", r.output);
        messages.extend(r.messages);
    }
    assert!(
        messages.iter().any(|m| m.contains("from this address")),
        "{messages:?}"
    );
    // Even the right code is refused from the locked-out address...
    let r = rig.send(&attrs(
        &user,
        Some(&totp(&key, 0)),
        Some("198.51.100.7:1194"),
        true,
    ));
    assert!(r.is("Access-Reject"), "{}", r.output);
    rig.daemon.wait_log("reason=source_locked", 1);
    // ...but not from another one: the user is not locked.
    let r = rig.send(&attrs(
        &user,
        Some(&totp(&key, 0)),
        Some("203.0.113.9:1194"),
        true,
    ));
    assert!(r.is("Access-Accept"), "{}", r.output);

    // Wrong codes from five addresses lock the user everywhere.
    let (other, okey) = rig.user();
    let bad = wrong_code(&okey);
    for i in 0..5 {
        let csi = format!("198.51.100.{}:1194", 30 + i);
        let r = rig.send(&attrs(&other, Some(&bad), Some(&csi), true));
        assert!(r.is("Access-Reject"), "{}", r.output);
    }
    let r = rig.send(&attrs(
        &other,
        Some(&totp(&okey, 0)),
        Some("203.0.113.9:1194"),
        true,
    ));
    assert!(r.is("Access-Reject"), "{}", r.output);
    assert!(
        r.messages.iter().any(|m| m.contains("locked until")),
        "{:?}",
        r.messages
    );
}

#[test]
fn the_same_through_mfactl_auth_and_a_trusted_network_is_not_locked_by_default() {
    let site = Site::new("");
    let key = fresh_key();
    site.enroll("tom", &key);
    let bad = wrong_code(&key);
    for _ in 0..5 {
        let o = site.mfactl(&["auth", "tom", "--ip", "198.51.100.7", "--code", &bad]);
        assert_eq!(code_of(&o), 1, "{}", text(&o));
    }
    let o = site.mfactl(&[
        "auth",
        "tom",
        "--ip",
        "203.0.113.9",
        "--code",
        &totp(&key, 0),
    ]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));

    // Locked as a user (five addresses), a login from a trusted network still gets in,
    // unless lock_trusted says otherwise.
    let key = fresh_key();
    site.enroll("uma", &key);
    let bad = wrong_code(&key);
    for i in 0..5 {
        let ip = format!("198.51.100.{}", 40 + i);
        let o = site.mfactl(&["auth", "uma", "--ip", &ip, "--code", &bad]);
        assert_eq!(code_of(&o), 1, "{}", text(&o));
    }
    let o = site.mfactl(&["auth", "uma", "--ip", "10.1.2.3"]);
    assert_eq!(code_of(&o), 0, "trusted network: {}", text(&o));
    let text_before = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &site.config,
        text_before + "\n[lockout]\nlock_trusted = true\n",
    )
    .unwrap();
    let o = site.mfactl(&["auth", "uma", "--ip", "10.1.2.3"]);
    assert_eq!(code_of(&o), 1, "lock_trusted: {}", text(&o));
    assert!(text(&o).contains("locked"), "{}", text(&o));
}
