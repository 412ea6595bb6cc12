//! Nothing about a user before the first factor (issue 9, item 2): in append and challenge
//! modes a wrong password gets the same reply for every name (a stranger, an enrolled user,
//! a locked one, one past the deadline), and no record is created or changed for it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mfa_e2e::radius::*;
use mfa_e2e::{text, wrong_code};

/// A reply with what differs between two requests zeroed: the Identifier, the Response
/// Authenticator and the Message-Authenticator's value. Everything else must be equal.
fn normalised(reply: &[u8]) -> Vec<u8> {
    let mut r = reply.to_vec();
    r[1] = 0;
    r[4..20].fill(0);
    let mut i = 20;
    while i + 2 <= r.len() {
        let (typ, len) = (r[i], usize::from(r[i + 1]));
        if typ == 80 && len == 18 {
            r[i + 2..i + 18].fill(0);
        }
        i += len.max(2);
    }
    r
}

/// How many users the store holds (the report's total).
fn users(rig: &Rig) -> u64 {
    let o = rig.site.mfactl(&["report", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["totals"]["users"].as_u64().unwrap()
}

/// Locks `user` with five wrong codes, each after the right password, from five addresses
/// (one address alone only locks itself out).
fn lock(rig: &Rig, mode: &str, user: &str, key: &str) {
    let bad = wrong_code(key);
    for i in 0..5 {
        let csi = format!("198.51.100.{}", 20 + i);
        let r = match mode {
            "append" => rig.send(&attrs(
                user,
                Some(&format!("{PASSWORD}{bad}")),
                Some(&csi),
                true,
            )),
            _ => {
                let r = rig.send(&attrs(user, Some(PASSWORD), Some(&csi), true));
                assert!(r.is("Access-Challenge"), "{}", r.output);
                rig.send(&format!(
                    "User-Name = \"{user}\"\nUser-Password = \"{bad}\"\nState = {}\nMessage-Authenticator = 0x00\n",
                    r.state.unwrap()
                ))
            }
        };
        assert!(r.is("Access-Reject"), "{}", r.output);
    }
    let r = rig.site.mfactl(&["report", "--format", "json"]);
    assert!(text(&r).contains("locked"), "{}", text(&r));
}

#[test]
fn a_wrong_password_says_the_same_for_every_name_and_records_nothing() {
    for mode in ["challenge", "append"] {
        let rig = Rig::start(mode);
        let (enrolled, key) = rig.user();
        let (locked, lkey) = rig.user();
        lock(&rig, mode, &locked, &lkey);
        // Not enrolled, past the deadline (grace 0), holding a temporary access code (a name
        // the system does not know: the administrator insists).
        let temporary = mfa_e2e::unique("temporary");
        let o = rig.site.mfactl(&[
            "temp-access",
            &temporary,
            "--valid",
            "1h",
            "--uses",
            "1",
            "--force",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let before = users(&rig);

        let relay = Relay::new(&rig.addr());
        let mut replies = Vec::new();
        let names = [
            enrolled.clone(),
            locked.clone(),
            temporary.clone(),
            "nobody-at-all".to_string(),
            mfa_e2e::unique("stranger"),
        ];
        for name in &names {
            let password = match mode {
                "append" => format!("Wrong-horse{}", wrong_code(&key)),
                _ => "Wrong-horse".to_string(),
            };
            let (r, _, reply) =
                relay.exchange(&attrs(name, Some(&password), Some(UNTRUSTED_CSI), true));
            assert!(r.is("Access-Reject"), "{mode} {name}: {}", r.output);
            replies.push((name, normalised(&reply), r.messages));
        }
        let (first, want, msg) = &replies[0];
        for (name, got, m) in &replies[1..] {
            assert_eq!(
                got, want,
                "{mode}: the reply for {name} differs from the one for {first} ({m:?} vs {msg:?})"
            );
        }

        // A flood of fresh names, 200 at once through one radclient: no rows.
        let mut flood = String::new();
        for i in 0..200 {
            let password = if mode == "append" {
                "Wrong-horse123456"
            } else {
                "Wrong-horse"
            };
            flood.push_str(&attrs(
                &format!("spray{i}-{}", std::process::id()),
                Some(password),
                Some(UNTRUSTED_CSI),
                true,
            ));
            flood.push('\n');
        }
        let out = radclient_batch(&rig.addr(), SECRET, &flood, 50);
        let rejects = out.matches("Received Access-Reject").count();
        assert_eq!(rejects, 200, "{mode}: {out}");
        assert_eq!(users(&rig), before, "{mode}: the flood created records");
        // The refusals are still in the audit trail.
        let log = rig.site.mfactl(&["log", "--format", "csv"]);
        assert!(
            text(&log).matches("wrong_password").count() >= 200,
            "{mode}: {}",
            text(&log)
        );
    }
}

#[test]
fn the_right_password_still_gets_the_users_own_answer() {
    // Past the first factor the user is told what applies to them.
    let rig = Rig::start("challenge");
    let r = rig.send(&attrs(
        "nobody-enrolled",
        Some(PASSWORD),
        Some(UNTRUSTED_CSI),
        true,
    ));
    assert!(r.is("Access-Reject"), "{}", r.output);
    assert!(
        r.messages.iter().any(|m| m.contains("administrator")),
        "{:?}",
        r.messages
    );
    // ...and only now is the name tracked for the roll-out (it passed a first factor).
    let o = rig.site.mfactl(&["report", "--format", "csv"]);
    assert!(text(&o).contains("nobody-enrolled"), "{}", text(&o));
}
