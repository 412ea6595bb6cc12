//! Against the real libpam and real modules (pam_permit, pam_deny, pam_exec, pam_faildelay,
//! and pam_unix with a throw-away user when running as root), with service files in a
//! temporary confdir.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should stop the test

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mfa_pam_client::{PamRequest, check};

fn service(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

fn run(dir: &Path, svc: &str, user: &str, pw: &[u8]) -> mfa_pam_client::PamCheck {
    check(&PamRequest {
        service: svc,
        user,
        password: pw,
        rhost: Some("192.0.2.1"),
        confdir: Some(dir),
    })
}

#[test]
fn permit_and_deny() {
    let d = tempfile::tempdir().unwrap();
    service(
        d.path(),
        "yes",
        "auth required pam_permit.so\naccount required pam_permit.so\n",
    );
    service(
        d.path(),
        "no",
        "auth required pam_deny.so\naccount required pam_permit.so\n",
    );
    service(
        d.path(),
        "noacct",
        "auth required pam_permit.so\naccount required pam_deny.so\n",
    );
    let r = run(d.path(), "yes", "alice", b"x");
    assert!(r.ok, "{r:?}");
    assert_eq!(r.fail_delay, Duration::ZERO);
    let r = run(d.path(), "no", "alice", b"x");
    assert!(!r.ok);
    assert_eq!(r.status, 7, "PAM_AUTH_ERR: {r:?}");
    assert!(r.reason().contains("PAM_AUTH_ERR"));
    let r = run(d.path(), "noacct", "alice", b"x");
    assert!(!r.ok, "account management must be checked too");
    // A service with no file (and no "other") is a failure, not a pass.
    assert!(!run(d.path(), "missing", "alice", b"x").ok);
}

/// pam_exec with expose_authtok receives what the conversation answered on its stdin, so this
/// proves the password reaches the stack intact.
#[test]
fn conversation_delivers_the_password() {
    let d = tempfile::tempdir().unwrap();
    let script = d.path().join("check.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\npw=$(head -c 200 | tr -d '\\000')\n[ \"$pw\" = 'correct horse b@ttery' ]\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&script)
        .status()
        .unwrap();
    service(
        d.path(),
        "exec",
        &format!(
            "auth required pam_exec.so expose_authtok quiet {}\naccount required pam_permit.so\n",
            script.display()
        ),
    );
    assert!(run(d.path(), "exec", "alice", b"correct horse b@ttery").ok);
    let r = run(d.path(), "exec", "alice", b"correct horse battery");
    assert!(!r.ok, "{r:?}");
    let long = vec![b'z'; 128];
    assert!(!run(d.path(), "exec", "alice", &long).ok);
}

#[test]
fn fail_delay_is_reported_not_slept() {
    let d = tempfile::tempdir().unwrap();
    service(
        d.path(),
        "slow",
        "auth optional pam_faildelay.so delay=10000000\nauth required pam_deny.so\naccount required pam_permit.so\n",
    );
    let t = Instant::now();
    let r = run(d.path(), "slow", "alice", b"x");
    let took = t.elapsed();
    assert!(!r.ok);
    assert!(
        r.fail_delay >= Duration::from_secs(5) && r.fail_delay <= Duration::from_secs(15),
        "{r:?}"
    );
    // Functional, not a benchmark: had libpam slept, this would be >= 5 s.
    assert!(took < Duration::from_secs(5), "slept {took:?}");
}

#[test]
fn nul_bytes_are_refused_before_pam() {
    let d = tempfile::tempdir().unwrap();
    service(
        d.path(),
        "yes",
        "auth required pam_permit.so\naccount required pam_permit.so\n",
    );
    let r = run(d.path(), "yes", "alice", b"a\0b");
    assert!(!r.ok);
    assert!(r.error.unwrap().contains("NUL"));
    assert!(!run(d.path(), "yes", "al\0ice", b"x").ok);
}

#[test]
fn concurrent_checks_are_independent() {
    let d = tempfile::tempdir().unwrap();
    service(
        d.path(),
        "yes",
        "auth required pam_permit.so\naccount required pam_permit.so\n",
    );
    service(
        d.path(),
        "no",
        "auth required pam_deny.so\naccount required pam_permit.so\n",
    );
    std::thread::scope(|s| {
        for t in 0..8 {
            let dir = d.path();
            s.spawn(move || {
                for i in 0..50 {
                    let svc = if (t + i) % 2 == 0 { "yes" } else { "no" };
                    assert_eq!(run(dir, svc, "u", b"p").ok, svc == "yes");
                }
            });
        }
    });
}

struct TempUser(String);
impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).status();
    }
}

/// Whether this test may skip itself for want of root: never in CI (`CI` set, as every CI
/// service sets it), where the suite runs as root and a skip would be a pass that checked
/// nothing; elsewhere it skips, saying so on stderr.
fn skip_unless_root(what: &str) -> bool {
    // Root check through id(1): this test file stays free of unsafe.
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} must run as root (it adds a Unix user and checks its password through \
         pam_unix); CI runs the suite as root: sudo -E cargo test"
    );
    eprintln!(
        "SKIPPED {what}: not root, so no Unix user can be added for pam_unix (it runs, and \
         must pass, as root; with CI set a non-root run fails instead)"
    );
    true
}

/// pam_unix against /etc/shadow: needs root to create the user. Fails without root in CI;
/// elsewhere skipped without root, loudly.
#[test]
fn pam_unix_with_a_real_user() {
    if skip_unless_root("pam_unix_with_a_real_user") {
        return;
    }
    let name = format!("mfapc{}", std::process::id());
    let st = Command::new("useradd")
        .args(["-M", "-N", "-s", "/usr/sbin/nologin", &name])
        .status()
        .unwrap();
    assert!(st.success());
    let _user = TempUser(name.clone());
    let mut child = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{name}:S3cret-pass\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());

    let d = tempfile::tempdir().unwrap();
    service(
        d.path(),
        "unix",
        "auth required pam_unix.so\naccount required pam_unix.so\n",
    );
    let r = run(d.path(), "unix", &name, b"S3cret-pass");
    assert!(r.ok, "{r:?}");
    let t = Instant::now();
    let r = run(d.path(), "unix", &name, b"S3cret-pasS");
    assert!(!r.ok);
    assert_eq!(r.status, 7, "{r:?}");
    // pam_unix asks for ~2 s; it must be reported, not slept.
    assert!(r.fail_delay >= Duration::from_millis(1000), "{r:?}");
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
    assert!(!run(d.path(), "unix", "no-such-user-mfa", b"x").ok);
}
