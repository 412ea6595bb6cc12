//! What an administrator can fall through in `mfactl`, through the built binary: a client
//! address that is no address is a usage error that changes nothing, and `auth`,
//! `temp-access` and `backup-codes` act only on a name the system knows (NSS) or the store
//! holds, unless `--force` (the vouched-name rule the PAM module and the daemon apply); a
//! user named in `enroll`, `import` or `invite` is vouched for by being named.

use mfa_e2e::{Site, code_of, fresh_key, printed_codes, text, wrong_code};

fn report(site: &Site) -> serde_json::Value {
    let o = site.mfactl(&["report", "--format", "json"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn audit(site: &Site) -> String {
    text(&site.mfactl(&["log", "--format", "csv"]))
}

#[test]
fn a_malformed_ip_is_a_usage_error_that_changes_nothing() {
    let site = Site::new("");
    let key = fresh_key();
    site.enroll("alice", &key);
    let bad = wrong_code(&key);
    let before = (report(&site)["users"].clone(), audit(&site));
    for ip in [
        "999.1.1.1",
        "10.1.1",
        "192.0.2.7:22",
        "localhost",
        "",
        "1.2.3.4 5",
    ] {
        for code in ["1", &bad] {
            let o = site.mfactl(&["auth", "alice", "--ip", ip, "--code", code]);
            let out = text(&o);
            assert_eq!(code_of(&o), 2, "--ip {ip:?}: {out}");
            assert!(
                out.contains("--ip") && out.contains("not an IP address"),
                "{out}"
            );
            assert!(!out.contains("client unknown"), "{out}");
        }
    }
    // No failure counted toward alice's lockout, no event, no record changed.
    assert_eq!((report(&site)["users"].clone(), audit(&site)), before);
    let v = report(&site);
    assert_eq!(v["users"][0]["failures"], 0, "{v}");
    // An address still works, and a wrong code from it counts.
    let o = site.mfactl(&["auth", "alice", "--ip", "192.0.2.7", "--code", &bad]);
    assert_eq!(code_of(&o), 1, "{}", text(&o));
    assert!(text(&o).starts_with("deny wrong_code"), "{}", text(&o));
    let o = site.mfactl(&["auth", "alice", "--ip", "[2001:db8::7]", "--code", &bad]);
    assert_eq!(code_of(&o), 1, "{}", text(&o));
}

#[test]
fn names_nothing_vouches_for_get_nothing_unless_forced() {
    // A roll-out in grace: a record for a name would start its grace and get it a link.
    let port = 1; // only the links' base; no portal runs
    let site = Site::new(&format!(
        "grace_days = 14\n[portal]\npublic_url = \"http://127.0.0.1:{port}\"\n"
    ));
    assert_eq!(code_of(&site.mfactl(&["init"])), 0);
    for args in [
        &["auth", "nosuch-xyz", "--ip", "192.0.2.9"][..],
        &[
            "auth",
            "nosuch-xyz",
            "--ip",
            "192.0.2.9",
            "--code",
            "123456",
        ],
        &["temp-access", "ghost-xyz"],
        &["temp-access", "ghost-xyz", "--revoke"],
        &["backup-codes", "ghost-xyz"],
    ] {
        let o = site.mfactl(args);
        let out = text(&o);
        assert_eq!(code_of(&o), 1, "{args:?}: {out}");
        assert!(
            out.contains("the system does not know the name") && out.contains("store"),
            "{args:?} does not name the check: {out}"
        );
        assert!(
            printed_codes(&out).is_empty(),
            "{args:?} printed a code: {out}"
        );
        assert!(!out.contains("allow"), "{out}");
    }
    let v = report(&site);
    assert_eq!(v["totals"]["users"], 0, "records were made: {v}");
    // So `invite --unenrolled` mails nobody.
    let o = site.mfactl(&["invite", "--unenrolled", "--format", "csv"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap().lines().count(),
        1,
        "only the header"
    );

    // A name the system knows (NSS) needs no --force.
    let o = site.mfactl(&["auth", "root", "--ip", "192.0.2.9"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(text(&o).starts_with("allow grace_period"), "{}", text(&o));
    // --force: the administrator insists.
    let o = site.mfactl(&["auth", "nosuch-xyz", "--ip", "192.0.2.9", "--force"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let o = site.mfactl(&["temp-access", "ghost-xyz", "--force"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert_eq!(printed_codes(&text(&o)).len(), 1);
    // Held by the store now: no --force needed any more.
    let o = site.mfactl(&["temp-access", "ghost-xyz", "--revoke"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    // Backup codes still need a key, forced or not.
    let o = site.mfactl(&["backup-codes", "ghost-xyz", "--force"]);
    assert_eq!(code_of(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("not enrolled"), "{}", text(&o));

    // Naming a user to enrol or invite is vouching for the name.
    site.enroll("newbie-xyz", &fresh_key());
    let o = site.mfactl(&["invite", "invitee-xyz"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let o = site.mfactl(&["backup-codes", "newbie-xyz"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
}
