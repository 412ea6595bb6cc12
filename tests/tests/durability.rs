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

/// The fsync-family calls `pamtester` (and the PAM module in it) made for one login from
/// `rhost`, answering `input`: strace's lines, and whether the login succeeded.
fn syncs_of_pam_login(svc: &str, user: &str, rhost: &str, input: &str) -> (Vec<String>, bool) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    require_tool("strace");
    require_tool("pamtester");
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let mut child = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=fsync,fdatasync,sync_file_range,syncfs,sync",
        ])
        .arg("-o")
        .arg(&trace)
        .args(["pamtester", "-I", &format!("rhost={rhost}"), svc, user])
        .arg("authenticate")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let out = child.wait_with_output().unwrap();
    let lines = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter(|l| l.contains("sync"))
        .map(str::to_string)
        .collect();
    let ok = String::from_utf8_lossy(&out.stdout).contains("successfully authenticated");
    (lines, ok)
}

#[test]
fn a_trusted_pam_login_waits_for_no_fsync_and_a_code_still_does() {
    use mfa_e2e::pam::{PamService, require_root};
    use mfa_e2e::{Site, fresh_key, unique};
    require_root("the PAM module's durability test");
    let site = Site::new("");
    let svc = PamService::mfa_only(&site.config, "");
    let (user, key) = (unique("pd"), fresh_key());
    site.enroll(&user, &key);

    // 127.0.0.1/32 is trusted in the test site. The first login after mfactl closed the
    // store starts a new WAL file, whose header and directory entry SQLite syncs even
    // under synchronous=NORMAL (one login in about 40: ARCHITECTURE.md, *Durability*).
    let (_, ok) = syncs_of_pam_login(&svc.name, &user, "127.0.0.1", "");
    assert!(ok, "the first trusted login failed");
    // The next: let in without a code, and without waiting for the disk (the old module
    // made two fsyncs here).
    let (syncs, ok) = syncs_of_pam_login(&svc.name, &user, "127.0.0.1", "");
    assert!(ok, "the trusted login failed");
    assert!(syncs.is_empty(), "a trusted login synced: {syncs:?}");
    // Its audit row is in the store all the same.
    let log = text(&site.mfactl(&["log", &user, "--format", "csv"]));
    assert_eq!(log.matches("trusted_network").count(), 2, "{log}");

    // A code is used up: durable before PAM_SUCCESS, so the fsync is there (and strace
    // sees it: the check above is not blind).
    avoid_step_boundary(5);
    let code = totp(&key, 0);
    let (syncs, ok) = syncs_of_pam_login(&svc.name, &user, "192.0.2.10", &format!("{code}\n"));
    assert!(ok, "the code was refused");
    assert!(!syncs.is_empty(), "an accepted code was not synced");
}
