//! Issue 5 through RADIUS, with radclient as the gateway: the grace period's days-left message
//! in the Access-Accept's Reply-Message and the refusal after it, and temporary-access and
//! backup codes typed where the code goes, once each, never in the daemon's log.

use mfa_e2e::printed_codes;
use mfa_e2e::radius::*;

/// Rewrites the `[policy]` table's extra keys and reloads the daemon (SIGHUP).
fn set_policy(rig: &Rig, extra: &str, reloads: usize) {
    let text = std::fs::read_to_string(&rig.site.config).unwrap();
    let head = "trusted_networks = [\"10.0.0.0/8\", \"2001:db8:10::/48\"]\n";
    let (before, rest) = text.split_once(head).expect("policy table");
    let after = rest
        .split_once("\n[audit]")
        .map(|(_, a)| a)
        .expect("audit table");
    std::fs::write(
        &rig.site.config,
        format!("{before}{head}{extra}\n\n[audit]{after}"),
    )
    .unwrap();
    rig.daemon.signal("HUP");
    rig.daemon.wait_log("configuration reloaded", reloads);
}

fn mfactl(rig: &Rig, args: &[&str]) -> String {
    let o = rig.site.mfactl(args);
    assert!(o.status.success(), "mfactl {args:?}: {}", text(&o));
    text(&o)
}

#[test]
fn grace_message_in_the_accept_and_refusal_after() {
    let rig = Rig::start("code-only");
    set_policy(&rig, "grace_days = 14", 1);
    let user = unique("g");
    // Not enrolled, inside the grace period: let in, told the days left.
    let r = rig.send(&attrs(&user, None, Some(UNTRUSTED_CSI), true));
    assert!(r.is("Access-Accept"), "{}", r.output);
    assert!(
        r.messages
            .iter()
            .any(|m| m.contains("MFA becomes required for this account in 14 day(s)")),
        "{:?}",
        r.messages
    );

    // The grace period over (no days left to give): refused, told to contact the administrator.
    set_policy(&rig, "grace_days = 0", 2);
    let r = rig.send(&attrs(&user, None, Some(UNTRUSTED_CSI), true));
    assert!(r.is("Access-Reject"), "{}", r.output);
    assert!(
        r.messages
            .iter()
            .any(|m| m.contains("Contact your administrator")),
        "{:?}",
        r.messages
    );
    rig.daemon.wait_log("reason=not_enrolled", 1);
    // From the office network the same user is still let in.
    assert!(
        rig.send(&attrs(&user, None, Some(TRUSTED_CSI), true))
            .is("Access-Accept")
    );
}

#[test]
fn temporary_access_and_backup_codes_once_each_and_never_logged() {
    let rig = Rig::start("code-only");
    // A user who lost the phone: unlinked, then given temporary access.
    let (user, _key) = rig.user();
    mfactl(&rig, &["unlink", &user]);
    let temp = printed_codes(&mfactl(&rig, &["temp-access", &user, "--valid", "1h"]))
        .pop()
        .unwrap();
    let r = rig.send(&attrs(&user, Some(&temp), Some(UNTRUSTED_CSI), true));
    assert!(r.is("Access-Accept"), "{}", r.output);
    rig.daemon.wait_log("reason=temporary_access", 1);
    let r = rig.send(&attrs(&user, Some(&temp), Some(UNTRUSTED_CSI), true));
    assert!(
        r.is("Access-Reject"),
        "temporary code worked twice: {}",
        r.output
    );

    // Backup codes of an enrolled user.
    let (user2, _key2) = rig.user();
    let backup = printed_codes(&mfactl(&rig, &["backup-codes", &user2, "--count", "3"]));
    assert_eq!(backup.len(), 3);
    let r = rig.send(&attrs(&user2, Some(&backup[0]), Some(UNTRUSTED_CSI), true));
    assert!(r.is("Access-Accept"), "{}", r.output);
    rig.daemon.wait_log("reason=backup_code", 1);
    assert!(
        rig.send(&attrs(&user2, Some(&backup[0]), Some(UNTRUSTED_CSI), true))
            .is("Access-Reject")
    );
    assert!(
        rig.send(&attrs(&user2, Some(&backup[1]), Some(UNTRUSTED_CSI), true))
            .is("Access-Accept")
    );

    let log = rig.daemon.log();
    let audit = mfactl(&rig, &["log", "--format", "csv"]);
    for c in std::iter::once(&temp).chain(&backup) {
        assert!(!log.contains(c.as_str()), "a code in the daemon's log");
        assert!(!audit.contains(c.as_str()), "a code in the audit trail");
    }
}
