//! systemd's readiness protocol as both daemons speak it under `Type=notify` (the units in
//! packaging/deb): each built binary, started with `$NOTIFY_SOCKET` naming a socket of the
//! test's, sends `READY=1` only once its socket is bound (a connection, or a second bind of
//! its UDP port, shows it is), and `STOPPING=1` on SIGTERM before it exits cleanly. The
//! mfa-radiusd reload (`RELOADING=1`, then `READY=1`) on SIGHUP is checked too; the portal
//! has no reload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mfa_e2e::free_tcp_port;
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mfa_e2e::{Site, bin, spawn_logged};

/// The test's end of `$NOTIFY_SOCKET`.
struct Notify {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    sock: UnixDatagram,
}

impl Notify {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        Notify {
            _dir: dir,
            path,
            sock,
        }
    }

    /// The next datagram; fails the test after 15 s without one.
    fn next(&self, log: &Arc<Mutex<String>>) -> String {
        let mut buf = [0u8; 256];
        match self.sock.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) => panic!("no notification ({e}); log:\n{}", log.lock().unwrap()),
        }
    }
}

/// Kills and reaps the daemon whatever happens.
struct Running(Child, Arc<Mutex<String>>);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    /// SIGTERM: `STOPPING=1`, then a clean exit.
    fn stop(mut self, n: &Notify) {
        self.signal("-TERM");
        assert_eq!(n.next(&self.1), "STOPPING=1");
        let status = self.0.wait().unwrap();
        assert!(
            status.success(),
            "{status}; log:\n{}",
            self.1.lock().unwrap()
        );
    }
}

fn start(program: &str, site: &Site, n: &Notify) -> Running {
    let mut cmd = Command::new(bin(program));
    cmd.arg("--config")
        .arg(&site.config)
        .env("NOTIFY_SOCKET", &n.path);
    let (child, log) = spawn_logged(cmd);
    Running(child, log)
}

#[test]
fn the_portal_is_ready_once_it_listens_and_says_when_it_stops() {
    let port = free_tcp_port();
    let site = Site::new(&format!("\n[portal]\nlisten = \"127.0.0.1:{port}\"\n"));
    assert!(site.mfactl(&["init"]).status.success());
    let n = Notify::new();
    let portal = start("mfa-portal", &site, &n);
    assert_eq!(n.next(&portal.1), "READY=1");
    // Ready means bound: a connection is accepted at once.
    TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("READY=1 before the socket was bound: {e}"));
    portal.stop(&n);
}

#[test]
fn mfa_radiusd_is_ready_once_bound_and_around_a_reload() {
    // A free UDP port: bound and released here, then the daemon's.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let site = Site::new(&format!(
        "\n[radius]\nlisten = [\"127.0.0.1:{port}\"]\nmode = \"code-only\"\nfirst_factor = \"none\"\n\
         [[radius.clients]]\nname = \"gw\"\naddress = \"127.0.0.1/32\"\nsecret = \"readiness-test-secret\"\n"
    ));
    assert!(site.mfactl(&["init"]).status.success());
    let n = Notify::new();
    let daemon = start("mfa-radiusd", &site, &n);
    assert_eq!(n.next(&daemon.1), "READY=1");
    let again = UdpSocket::bind(("127.0.0.1", port));
    assert!(
        again.is_err(),
        "READY=1 before the UDP socket was bound (port {port} still free)"
    );
    daemon.signal("-HUP");
    assert_eq!(n.next(&daemon.1), "RELOADING=1");
    assert_eq!(n.next(&daemon.1), "READY=1");
    daemon.stop(&n);
}
