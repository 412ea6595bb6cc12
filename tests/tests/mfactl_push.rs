//! Push approval through the built `mfactl` (issue 20): `mfactl init` makes the VAPID key
//! file (0600, a P-256 key openssl reads) where `[push] enabled`; `mfactl push list`,
//! `remove` and `unblock` on phones registered through the core, as the portal registers
//! them (a sign-in with a real TOTP code, then the device's key and subscription).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::Arc;

use mfa_core::login::{Request, Service};
use mfa_core::push::testing::{PhoneKey, subscription_json};
use mfa_core::push::{PushDecision, decision_message};
use mfa_core::{ClientAddr, Core, OpenMode};
use mfa_e2e::{Site, avoid_step_boundary, code_of, fresh_key, require_tool, text, totp, unix_now};

const PUSH: &str = r#"
[push]
enabled = true
subscriber = "mailto:it@example.com"
vapid_key_file = "vapid.key"
"#;

fn core(site: &Site) -> Core {
    let cfg = mfa_config::load(&site.config).unwrap();
    mfa_store_open::open_core(
        Arc::new(cfg),
        OpenMode::Existing,
        "test",
        mfa_core::NameCheck::IfRulesChanged,
    )
    .unwrap()
}

/// `user` enrolled with mfactl, signed in on the portal with its current code, and one
/// phone registered; its key and device id.
fn with_phone(site: &Site, core: &Core, user: &str, name: &str) -> (PhoneKey, String) {
    let key = fresh_key();
    site.enroll(user, &key);
    avoid_step_boundary(4);
    let u = core.user_name(user).unwrap();
    let req = Request::new(&u, ClientAddr::Remote("192.0.2.50".parse().ok()), "portal");
    let (d, keygen) = core
        .login()
        .verify_code_always(&req, &totp(&key, 0))
        .unwrap();
    assert!(d.is_allowed(), "{d:?}");
    let phone = PhoneKey::generate();
    let dev = core
        .push("mfa-portal")
        .register_device(
            &u,
            &keygen.unwrap(),
            name,
            &subscription_json("https://fcm.googleapis.com/fcm/send/e2e"),
            &phone.public(),
            unix_now(),
        )
        .unwrap();
    (phone, dev.id.hex())
}

#[test]
fn init_makes_the_vapid_key_file_where_push_is_on() {
    require_tool("openssl");
    // Push off: no VAPID key.
    let off = Site::new("");
    let o = off.mfactl(&["init"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!off.path().join("vapid.key").exists());
    assert!(!text(&o).contains("VAPID"), "{}", text(&o));

    let site = Site::new(PUSH);
    let o = site.mfactl(&["init"]);
    assert!(o.status.success(), "{}", text(&o));
    let key = site.path().join("vapid.key");
    assert!(
        text(&o).contains("Created the VAPID key file"),
        "{}",
        text(&o)
    );
    let meta = std::fs::symlink_metadata(&key).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.mode() & 0o777, 0o600);
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    // openssl reads it as a P-256 key.
    let out = Command::new("openssl")
        .args(["pkey", "-noout", "-text", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("prime256v1") || shown.contains("P-256"),
        "{shown}"
    );
    // The core reads the same key; its public half is what openssl derives.
    let vapid = mfa_core::push::VapidKey::read(&key).unwrap();
    let der = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(der.status.success());
    assert!(
        der.stdout.ends_with(&vapid.public_key()),
        "SPKI ends with the point"
    );
    // Again: kept, not replaced.
    let o = site.mfactl(&["init"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("exists already; kept"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), pem);
    // A key file others can read is refused, naming it; nothing replaces it.
    mfa_e2e::chmod(&key, 0o644);
    let o = site.mfactl(&["init"]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("vapid.key") && text(&o).contains("0644"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), pem);
}

#[test]
fn push_list_remove_and_unblock() {
    let site = Site::new(PUSH);
    assert!(site.mfactl(&["init"]).status.success());
    let core = core(&site);
    let (phone, dev) = with_phone(&site, &core, "alice", "Alice's phone");
    let (_, other) = with_phone(&site, &core, "bob", "Bob's phone");

    let o = site.mfactl(&["push", "list", "alice"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains(&dev) && out.contains("Alice's phone"), "{out}");
    assert!(!out.contains(&other), "{out}");
    assert!(
        !out.contains("fcm.googleapis.com"),
        "no endpoint is shown: {out}"
    );
    let o = site.mfactl(&["push", "list", "alice", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["user"], "alice");
    assert_eq!(v["devices"][0]["id"], dev.as_str());
    assert_eq!(v["devices"][0]["name"], "Alice's phone");
    assert!(v["blocked_until"].is_null());

    // "This wasn't me" on Alice's phone: listed as blocked; unblock lifts it (audited).
    let push = core.push("test");
    push.heartbeat(unix_now()).unwrap();
    let u = core.user_name("alice").unwrap();
    let mut req = Request::new(
        &u,
        ClientAddr::Remote("198.51.100.4".parse().ok()),
        Service::Pam("sshd".into()),
    );
    req = req.admit(
        &core
            .login()
            .admit_name(&u, mfa_core::Voucher::FirstFactor)
            .unwrap(),
    );
    let s = push.start(&req, true).unwrap();
    let id = mfa_core::DeviceId::parse_hex(&dev).unwrap();
    let sig = phone.sign(&decision_message(&s.id, &id, PushDecision::Fraud));
    push.decide(&s.id, &id, PushDecision::Fraud, &sig, unix_now())
        .unwrap();
    let o = site.mfactl(&["push", "list", "alice"]);
    assert!(text(&o).contains("blocked until"), "{}", text(&o));
    let o = site.mfactl(&["push", "unblock", "alice"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("no longer blocked"), "{}", text(&o));
    let o = site.mfactl(&["push", "list", "alice", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["blocked_until"].is_null(), "{v}");

    // Remove: a malformed id is a usage error (2), another user's device or one removed
    // already is refused (1), each changing nothing; the right one goes (0), audited.
    let o = site.mfactl(&["push", "remove", "alice", "not-an-id"]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    let o = site.mfactl(&["push", "remove", "alice", &other]);
    assert_eq!(code_of(&o), 1, "{}", text(&o));
    assert_eq!(
        core.push("test")
            .devices(&core.user_name("bob").unwrap())
            .unwrap()
            .len(),
        1
    );
    let o = site.mfactl(&["push", "remove", "Alice", &dev.to_uppercase()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = site.mfactl(&["push", "remove", "alice", &dev]);
    assert_eq!(code_of(&o), 1, "{}", text(&o));
    let o = site.mfactl(&["push", "list", "alice"]);
    assert!(o.status.success());
    assert!(text(&o).contains("no phone registered"), "{}", text(&o));
    let o = site.mfactl(&["log", "alice"]);
    let log = text(&o);
    for reason in [
        "device_registered",
        "push_sent",
        "push_fraud",
        "push_unblocked",
        "device_removed",
    ] {
        assert!(log.contains(reason), "{reason}: {log}");
    }
    // The removed phone's decisions are refused from now on.
    let s2 = {
        push.heartbeat(unix_now()).unwrap();
        push.start(&req, true)
    };
    assert!(s2.is_err(), "no device left: {s2:?}");
}
