//! Shared pieces of the RADIUS end-to-end tests: a throw-away site (config, store, PAM
//! service) with a running `mfa-radiusd`, the real `radclient` as the gateway, `oathtool` for
//! codes and the real `mfactl` for enrolment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The workspace-wide test helpers, shared with the other end-to-end tests (not every test
/// file that includes this module uses every one).
#[allow(unused_imports)]
pub use crate::{
    Site, bin, free_udp_port, fresh_key, require_tool, text, totp, unique, wrong_code,
};

pub const SECRET: &str = "t3st-shared-secret";
/// What the PAM service in the test confdir accepts as every user's password.
pub const PASSWORD: &str = "Corr3ct-horse";
/// Untrusted and trusted end-user addresses as a VPN gateway reports them.
pub const UNTRUSTED_CSI: &str = "198.51.100.7:1194";
pub const TRUSTED_CSI: &str = "10.20.30.40:1194";

/// A running daemon; SIGTERM and reaped on drop, so no test leaves one behind.
pub struct Daemon {
    child: Child,
    pub log: Arc<Mutex<String>>,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle` (or fails with the log).
    pub fn wait_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.log().matches(needle).count() >= count {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("daemon log never showed {needle:?}:\n{}", self.log());
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if self.alive() {
            self.signal("TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Daemon {
    /// Waits (up to 15 s) for a daemon that should exit by itself, e.g. on a bad store.
    pub fn stop_when_exited(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                // Let the log reader catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return st;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the daemon did not exit:\n{}", self.log());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A site: temp dir with config, SQLite store, PAM confdir and a daemon on a free port.
pub struct Rig {
    /// Declared first so that the daemon is stopped before the site's directory goes.
    pub daemon: Daemon,
    pub site: Site,
    pub port: u16,
}

/// The PAM service the daemon uses in tests: pam_exec hands the password the daemon's
/// conversation answered to a script (and counts the calls; users named `slow*` take 4 s,
/// like an unreachable LDAP server); pam_faildelay asks for a failure delay like pam_unix.
pub fn write_pam(dir: &Path) -> PathBuf {
    let pam = dir.join("pam.d");
    std::fs::create_dir(&pam).unwrap();
    let script = dir.join("check-password.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$PAM_USER\" >> '{}'\ncase \"$PAM_USER\" in slow*) sleep 4;; esac\npw=$(head -c 200 | tr -d '\\000')\n[ \"$pw\" = '{PASSWORD}' ]\n",
            dir.join("pam-calls").display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&script)
        .status()
        .unwrap();
    std::fs::write(
        pam.join("mfa-test"),
        format!(
            "auth optional pam_faildelay.so delay=400000\nauth required pam_exec.so expose_authtok quiet {}\naccount required pam_permit.so\n",
            script.display()
        ),
    )
    .unwrap();
    pam
}

/// Config text for a mode; `extra_radius` lands in the `[radius]` table.
pub fn config_text(mode: &str, listen: &str, extra_radius: &str, secret: &str) -> String {
    let first_factor = if mode == "code-only" { "none" } else { "pam" };
    format!(
        r#"[store]
path = "mfa.db"
key_file = "mfa.key"

[policy]
trusted_networks = ["10.0.0.0/8", "2001:db8:10::/48"]

[audit]
syslog = false

[radius]
listen = [{listen}]
mode = "{mode}"
first_factor = "{first_factor}"
pam_service = "mfa-test"
client_ip_attribute = "Calling-Station-Id"
{extra_radius}

[[radius.clients]]
name = "test-gw"
address = "127.0.0.1/32"
secret = "{secret}"

[[radius.clients]]
name = "test-gw6"
address = "::1"
secret = "{secret}"
"#
    )
}

impl Rig {
    pub fn start(mode: &str) -> Rig {
        Self::start_with(mode, "")
    }

    pub fn start_with(mode: &str, extra_radius: &str) -> Rig {
        Self::start_on(mode, extra_radius, None)
    }

    /// [`Rig::start_with`] on the store `store_toml` names (a whole `[store]` table: another
    /// site's SQLite file, a PostgreSQL database), for several daemons on one store.
    pub fn start_on(mode: &str, extra_radius: &str, store_toml: Option<&str>) -> Rig {
        require_tool("radclient");
        let port = free_udp_port();
        let mut text = config_text(
            mode,
            &format!("\"127.0.0.1:{port}\", \"[::1]:{port}\""),
            extra_radius,
            SECRET,
        );
        if let Some(store) = store_toml {
            text = text.replace(
                "[store]\npath = \"mfa.db\"\nkey_file = \"mfa.key\"\n",
                store,
            );
        }
        let site = Site::with_config(&text);
        let pam = write_pam(site.path());
        let daemon = spawn_daemon(&site.config, Some(&pam));
        daemon.wait_log("listening on", 1);
        Rig { daemon, site, port }
    }

    /// A fresh enrolled user and its key.
    pub fn user(&self) -> (String, String) {
        let (u, k) = (unique("u"), fresh_key());
        self.site.enroll(&u, &k);
        (u, k)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn send(&self, attrs: &str) -> Reply {
        radclient(&self.addr(), SECRET, "auth", attrs, 5)
    }

    /// How often the PAM stack ran, per user.
    pub fn pam_calls(&self, user: &str) -> usize {
        std::fs::read_to_string(self.site.path().join("pam-calls"))
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == user)
            .count()
    }

    /// The log must never hold a password or a code.
    pub fn assert_log_clean(&self, secrets: &[&str]) {
        let log = self.daemon.log();
        for s in secrets.iter().chain([&PASSWORD, &SECRET]) {
            assert!(
                !log.contains(s),
                "the daemon log contains a secret {s:?}:\n{log}"
            );
        }
    }
}

pub fn spawn_daemon(config: &Path, pam_confdir: Option<&Path>) -> Daemon {
    let mut cmd = Command::new(bin("mfa-radiusd"));
    cmd.arg("--config").arg(config);
    if let Some(p) = pam_confdir {
        cmd.arg("--pam-confdir").arg(p);
    }
    let (child, log) = crate::spawn_logged(cmd);
    Daemon { child, log }
}

/// What radclient received.
#[derive(Debug)]
pub struct Reply {
    /// "Access-Accept", "Access-Reject", "Access-Challenge", or None for no reply.
    pub code: Option<String>,
    pub state: Option<String>,
    pub messages: Vec<String>,
    pub output: String,
}

impl Reply {
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// Runs `radclient -x -r 1 -t T ADDR CMD SECRET` with `attrs` on stdin: one try, no retry.
pub fn radclient(addr: &str, secret: &str, cmd: &str, attrs: &str, timeout: u32) -> Reply {
    radclient_retries(addr, secret, cmd, attrs, timeout, 1)
}

/// As a gateway does: up to `tries` sends of the very same packet, `timeout` s apart.
pub fn radclient_retries(
    addr: &str,
    secret: &str,
    cmd: &str,
    attrs: &str,
    timeout: u32,
    tries: u32,
) -> Reply {
    let out = run_radclient(
        &[
            "-x",
            "-r",
            &tries.to_string(),
            "-t",
            &timeout.to_string(),
            addr,
            cmd,
            secret,
        ],
        attrs,
    );
    let output = text(&out);
    let mut code = None;
    let mut state = None;
    let mut messages = Vec::new();
    let mut in_reply = false;
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("Received ") {
            code = rest.split_whitespace().next().map(str::to_string);
            in_reply = true;
            continue;
        }
        if !in_reply || !line.starts_with('\t') {
            continue;
        }
        let line = line.trim();
        if let Some(v) = line.strip_prefix("State = ") {
            state = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("Reply-Message = ") {
            messages.push(v.trim_matches('"').to_string());
        }
    }
    Reply {
        code,
        state,
        messages,
        output,
    }
}

/// Many requests (attribute blocks separated by blank lines) through one radclient,
/// `parallel` at a time; radclient's output.
#[allow(dead_code)]
pub fn radclient_batch(addr: &str, secret: &str, requests: &str, parallel: u32) -> String {
    let parallel = parallel.to_string();
    text(&run_radclient(
        &["-p", &parallel, "-r", "1", "-t", "10", addr, "auth", secret],
        requests,
    ))
}

/// radclient with `args`, `input` on its standard input; its output.
fn run_radclient(args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new("radclient")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient (freeradius-utils) must be installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Attribute lines for radclient; Message-Authenticator included unless `with_ma` is false.
pub fn attrs(user: &str, password: Option<&str>, csi: Option<&str>, with_ma: bool) -> String {
    let mut s = format!("User-Name = \"{user}\"\n");
    if let Some(p) = password {
        s.push_str(&format!("User-Password = \"{p}\"\n"));
    }
    if let Some(c) = csi {
        s.push_str(&format!("Calling-Station-Id = \"{c}\"\n"));
    }
    if with_ma {
        s.push_str("Message-Authenticator = 0x00\n");
    }
    s
}

/// Starts radclient (`cmd` with `attrs`, one try, `timeout` s) against `sock` and catches the
/// datagram it sends: radclient's thread (its view once it is done), the request, and the
/// address it came from.
fn catch_request(
    sock: &UdpSocket,
    cmd: &str,
    attrs: &str,
    timeout: u32,
) -> (JoinHandle<Reply>, Vec<u8>, SocketAddr) {
    let addr = sock.local_addr().unwrap().to_string();
    let (cmd, attrs) = (cmd.to_string(), attrs.to_string());
    let rc = std::thread::spawn(move || radclient(&addr, SECRET, &cmd, &attrs, timeout));
    let mut buf = [0u8; 4096];
    let (n, client) = sock.recv_from(&mut buf).unwrap();
    (rc, buf[..n].to_vec(), client)
}

/// One datagram as radclient sends it, caught on a local socket that never answers.
pub fn capture(cmd: &str, attrs: &str) -> Vec<u8> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (rc, request, _) = catch_request(&sock, cmd, attrs, 1);
    rc.join().unwrap();
    request
}

/// Sits between radclient and the daemon, keeping the exact request bytes and reply, so a
/// test can retransmit the very same datagram (same source port, identifier and
/// authenticator) as a gateway would.
pub struct Relay {
    pub sock: UdpSocket,
    pub daemon: String,
}

impl Relay {
    pub fn new(daemon: &str) -> Self {
        Self::bind("127.0.0.1:0", daemon)
    }

    pub fn bind(local: &str, daemon: &str) -> Self {
        let sock = UdpSocket::bind(local).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Relay {
            sock,
            daemon: daemon.into(),
        }
    }

    /// Runs radclient against the relay; returns radclient's view, the request and the reply.
    pub fn exchange(&self, attrs: &str) -> (Reply, Vec<u8>, Vec<u8>) {
        let (rc, request, client) = catch_request(&self.sock, "auth", attrs, 5);
        self.sock.send_to(&request, &self.daemon).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = self.sock.recv_from(&mut buf).unwrap();
        let reply = buf[..n].to_vec();
        self.sock.send_to(&reply, client).unwrap();
        (rc.join().unwrap(), request, reply)
    }

    /// Like `exchange`, but the daemon may stay silent (then radclient times out too).
    pub fn try_exchange(&self, attrs: &str) -> (Reply, Vec<u8>, Option<Vec<u8>>) {
        let (rc, request, client) = catch_request(&self.sock, "auth", attrs, 3);
        self.sock.send_to(&request, &self.daemon).unwrap();
        let mut buf = [0u8; 4096];
        self.sock
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let reply = self
            .sock
            .recv_from(&mut buf)
            .ok()
            .map(|(n, _)| buf[..n].to_vec());
        if let Some(r) = &reply {
            self.sock.send_to(r, client).unwrap();
        }
        (rc.join().unwrap(), request, reply)
    }

    /// Sends `request` again from the same socket; the reply, if any within 3 s.
    pub fn resend(&self, request: &[u8]) -> Option<Vec<u8>> {
        self.sock.send_to(request, &self.daemon).unwrap();
        self.sock
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let mut buf = [0u8; 4096];
        self.sock
            .recv_from(&mut buf)
            .ok()
            .map(|(n, _)| buf[..n].to_vec())
    }
}

impl Rig {
    /// Challenge mode's first round: the password, from the untrusted address.
    pub fn first_round(&self, user: &str) -> Reply {
        self.send(&attrs(user, Some(PASSWORD), Some(UNTRUSTED_CSI), true))
    }

    /// Challenge mode's second round: the State and the code, without the client address
    /// (as many gateways send it).
    pub fn answer(&self, user: &str, state: &str, code: &str) -> Reply {
        self.send(&format!(
            "User-Name = \"{user}\"\nUser-Password = \"{code}\"\nState = {state}\nMessage-Authenticator = 0x00\n"
        ))
    }
}

/// Issue 24: two daemons in challenge mode on one store (one SQLite file, or one PostgreSQL
/// database). A challenge started on either is finished on the other with the first round's
/// client address, and its State, sent again to either, is refused without spending the
/// code; both ways round.
pub fn challenges_finish_on_either_node(a: &Rig, b: &Rig) {
    for (round, (first, second)) in [(a, b), (b, a)].into_iter().enumerate() {
        let (user, key) = first.user();
        let r = first.first_round(&user);
        assert!(r.is("Access-Challenge"), "{}", r.output);
        let state = r.state.unwrap();
        let r = second.answer(&user, &state, &totp(&key, 0));
        assert!(
            r.is("Access-Accept"),
            "round {round}: a State of the other node: {}",
            r.output
        );
        second.daemon.wait_log(
            &format!(
                "user=\"{user}\" client=\"test-gw\" client_ip=198.51.100.7 decision=accept reason=valid_code"
            ),
            1,
        );
        // Replayed to either node, with a code that would otherwise do: refused.
        for node in [a, b] {
            let r = node.answer(&user, &state, &totp(&key, 1));
            assert!(r.is("Access-Reject"), "round {round}: replay: {}", r.output);
        }
        for node in [a, b] {
            node.daemon
                .wait_log("reason=unknown_or_expired_state", round + 1);
        }
        // The refused answers spent nothing: the next code still gets in, through a
        // challenge started on the second node and finished on the first.
        let r = second.first_round(&user);
        let r = first.answer(&user, &r.state.unwrap(), &totp(&key, 1));
        assert!(r.is("Access-Accept"), "round {round}: {}", r.output);
    }
}

/// Issue 24: the caps on pending challenges hold for two daemons on one store together
/// (both with `max_pending_challenges = 16`: one client entry 12, one user 4). One user's
/// challenges started on alternate nodes leave the four newest of all live, whichever node
/// issued them; one client's challenges stop at its share of the store, counted over both
/// nodes, while another client entry still gets its own.
pub fn challenge_caps_hold_across_nodes(a: &Rig, b: &Rig) {
    let node = |i: usize| if i.is_multiple_of(2) { a } else { b };
    let (user, key) = a.user();
    let states: Vec<String> = (0..10)
        .map(|i| {
            let r = node(i).first_round(&user);
            assert!(r.is("Access-Challenge"), "{i}: {}", r.output);
            r.state.unwrap()
        })
        .collect();
    // The six oldest gave way, even to the node that issued them.
    for (i, state) in states.iter().enumerate().take(6) {
        let r = node(i).answer(&user, state, &totp(&key, 0));
        assert!(
            r.is("Access-Reject"),
            "State {i} of 10, answered to the node that issued it: {}",
            r.output
        );
    }
    let r = node(8).answer(&user, &states[9], &totp(&key, 0));
    assert!(r.is("Access-Accept"), "the newest: {}", r.output);

    // Three of this user's are still live (States 6 to 8): nine more of this client's fit.
    let users: Vec<(String, String)> = (0..11).map(|_| a.user()).collect();
    let replies: Vec<Reply> = users
        .iter()
        .enumerate()
        .map(|(i, (u, _))| node(i).first_round(u))
        .collect();
    let challenged = replies.iter().filter(|r| r.is("Access-Challenge")).count();
    let rejected = replies.iter().filter(|r| r.is("Access-Reject")).count();
    assert_eq!(
        (challenged, rejected),
        (9, 2),
        "the client's share (12) over both nodes: {replies:#?}"
    );
    for n in [a, b] {
        n.daemon.wait_log(
            "cannot issue a challenge State (as many pending as allowed)",
            1,
        );
    }
    // Another client entry (test-gw6, from ::1) keeps its share.
    let r = radclient(
        &format!("[::1]:{}", a.port),
        SECRET,
        "auth",
        &attrs(&users[10].0, Some(PASSWORD), Some(UNTRUSTED_CSI), true),
        5,
    );
    assert!(r.is("Access-Challenge"), "another client: {}", r.output);
}
