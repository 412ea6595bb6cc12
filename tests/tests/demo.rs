//! The README's first command, `bash scripts/demo.sh`, runs to its end unattended: no
//! standard input, no terminal, within a time limit. It enrols the demo user, shows the
//! policy's answers, starts mfa-radiusd and has radclient send a wrong code (Access-Reject)
//! and the current one from oathtool (Access-Accept), then stops the daemon.
//!
//! The script runs from a copy of the checkout's `scripts/demo.sh` and `examples/mfa.toml`
//! in a temporary directory (its store goes to that copy's `demo/`, not the checkout's), on a
//! free port, with the binaries `cargo build --workspace` made (`MFA_DEMO_BIN`), so the test
//! does not build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mfa_e2e::{avoid_step_boundary, bin_dir, free_udp_port, require_tool};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn the_demo_runs_to_its_end_unattended() {
    require_tool("radclient");
    require_tool("oathtool");
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for sub in ["scripts", "examples"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    std::fs::copy(
        top.join("scripts/demo.sh"),
        dir.path().join("scripts/demo.sh"),
    )
    .unwrap();
    // A port of our own, so two runs of the suite on one machine do not meet.
    let port = free_udp_port();
    let example = std::fs::read_to_string(top.join("examples/mfa.toml")).unwrap();
    assert!(example.contains("\"127.0.0.1:18120\""), "{example}");
    std::fs::write(
        dir.path().join("examples/mfa.toml"),
        example.replace("127.0.0.1:18120", &format!("127.0.0.1:{port}")),
    )
    .unwrap();

    // The current code must still be current when radclient sends it.
    avoid_step_boundary(10);
    let start = Instant::now();
    let mut child = Command::new("bash")
        .arg(dir.path().join("scripts/demo.sh"))
        .env("MFA_DEMO_BIN", bin_dir())
        .env_remove("MFA_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = reader.join().unwrap();
    let err = err_reader.join().unwrap();
    let all = format!("{out}\n--- stderr ---\n{err}");
    let status = status.unwrap_or_else(|| panic!("the demo did not end within {LIMIT:?}:\n{all}"));
    assert!(status.success(), "the demo failed ({status}):\n{all}");

    for want in [
        "examples/mfa.toml: OK",
        "demo is enrolled.",
        "deny missing_code",
        "allow trusted_network",
        &format!("listening on 127.0.0.1:{port} (mode code-only)"),
        "Received Access-Reject",
        "Reply-Message = \"Wrong verification code.\"",
        "Received Access-Accept",
        "decision=accept reason=valid_code",
        "Not on a terminal: the demo stops mfa-radiusd and ends.",
        "mfa-radiusd: stopping;",
    ] {
        assert!(all.contains(want), "{want:?} not in:\n{all}");
    }
    // It asked for nothing (no prompt on a missing terminal), and left no daemon behind:
    // the port is free again.
    assert!(!all.contains("Verification code:"), "{all}");
    std::net::UdpSocket::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("port {port} still taken after the demo: {e}"));
    // Its state stayed in the copy.
    assert!(dir.path().join("demo/mfa.db").exists());
}
