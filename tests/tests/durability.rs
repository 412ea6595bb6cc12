//! What is on disk when mfa-radiusd dies (issue 25, ARCHITECTURE.md *Durability*): a
//! decision that consumed something (an accepted code) is durable before its reply, one that
//! consumed nothing (a trusted network) may be answered before its fdatasync. Killed with
//! SIGKILL right after a burst of both, then started again on the same store: every code
//! accepted before the kill is refused as replayed, and the trusted allows' audit rows are
//! all there (a killed process loses nothing its commits gave the kernel; only a power loss
//! may take the last `MAX_UNSYNCED` of them). Real radclient, oathtool, mfactl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mfa_e2e::avoid_step_boundary;
use mfa_e2e::radius::*;

/// `writer::MAX_UNSYNCED`: the most trusted allows a power loss may take.
const MAX_UNSYNCED: usize = 1024;

fn audit_rows(rig: &Rig, reason: &str) -> usize {
    let log = text(&rig.site.mfactl(&["log", "--format", "csv"]));
    log.lines().filter(|l| l.contains(reason)).count()
}

#[test]
fn a_killed_daemon_keeps_every_accepted_code_used_and_its_trusted_allows() {
    const USERS: usize = 12;
    const TRUSTED: usize = 240;
    let mut rig = Rig::start("code-only");
    let users: Vec<(String, String)> = (0..USERS).map(|_| rig.user()).collect();
    // The codes are sent twice, before and after the kill: keep both in one step.
    avoid_step_boundary(20);
    let codes: Vec<String> = users.iter().map(|(_, k)| totp(k, 0)).collect();

    // One burst: the accepted codes among the trusted allows, 40 in flight.
    let mut burst = String::new();
    for i in 0..TRUSTED {
        let (user, _) = &users[i % USERS];
        burst.push_str(&attrs(user, None, Some(TRUSTED_CSI), true));
        burst.push('\n');
        if i % (TRUSTED / USERS) == 0 {
            let k = i / (TRUSTED / USERS);
            burst.push_str(&attrs(
                &users[k].0,
                Some(&codes[k]),
                Some(UNTRUSTED_CSI),
                true,
            ));
            burst.push('\n');
        }
    }
    let out = radclient_batch(&rig.addr(), SECRET, &burst, 40);
    assert_eq!(
        out.matches("Received Access-Accept").count(),
        TRUSTED + USERS,
        "{out}"
    );
    // Every reply is in; the daemon dies at once, with no chance to sync or checkpoint.
    rig.daemon.signal("KILL");
    assert!(rig.daemon.stop().is_some(), "the daemon did not die");

    // The audit trail as the store has it after the crash.
    assert_eq!(audit_rows(&rig, "valid_code"), USERS);
    let trusted = audit_rows(&rig, "trusted_network");
    assert!(
        TRUSTED - trusted <= MAX_UNSYNCED,
        "{} trusted allows lost",
        TRUSTED - trusted
    );
    // A killed process loses none: each commit was in the kernel before its reply.
    assert_eq!(trusted, TRUSTED, "trusted allows' audit rows after kill -9");

    // Started again on the same store: no code accepted before the kill works again.
    let pam = rig.site.path().join("pam.d");
    rig.daemon = spawn_daemon(&rig.site.config, Some(&pam));
    rig.daemon.wait_log("listening on", 1);
    for ((user, _), code) in users.iter().zip(&codes) {
        let r = rig.send(&attrs(user, Some(code), Some(UNTRUSTED_CSI), true));
        assert!(r.is("Access-Reject"), "{user}: {}", r.output);
    }
    assert_eq!(audit_rows(&rig, "replayed_code"), USERS);
    let secrets: Vec<&str> = codes.iter().map(String::as_str).collect();
    rig.assert_log_clean(&secrets);
}
