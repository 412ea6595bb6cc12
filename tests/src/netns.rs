//! Network namespaces for the tests that run real VPN servers and clients (ocserv and
//! openconnect, OpenVPN and its RADIUS plugin): each needs TUN devices, addresses and routes
//! of its own, which must not touch the host's. A test makes a namespace per side with
//! loopback up, joins two with a veth pair, and starts its processes inside with `ip netns
//! exec`; mfa-radiusd runs beside the VPN server and is reached on that namespace's
//! loopback only. On drop every process in a namespace (all started by the test) is
//! stopped, by its id, and the namespace deleted with its links.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Why this machine cannot give a test its namespaces and TUN devices, or `None` where it
/// can. A test that needs them says the reason and skips: only where the machine truly
/// cannot (not root, no TUN device, no `ip netns`), never for a missing peer program.
pub fn unavailable() -> Option<String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        return Some("not root: network namespaces and TUN devices need it".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        let _ = Command::new("modprobe").arg("tun").status();
        if !Path::new("/dev/net/tun").exists() {
            return Some("no /dev/net/tun (modprobe tun did not make one)".into());
        }
    }
    let probe = format!("mfa-probe-{}", std::process::id());
    match Command::new("ip").args(["netns", "add", &probe]).output() {
        Ok(o) if o.status.success() => {
            let tun = Command::new("ip")
                .args([
                    "netns", "exec", &probe, "ip", "tuntap", "add", "mode", "tun",
                ])
                .args(["dev", "probe0"])
                .output();
            let _ = Command::new("ip").args(["netns", "del", &probe]).status();
            match tun {
                Ok(t) if t.status.success() => None,
                Ok(t) => Some(format!(
                    "cannot make a TUN device in a namespace: {}",
                    String::from_utf8_lossy(&t.stderr).trim()
                )),
                Err(e) => Some(format!("cannot run ip tuntap: {e}")),
            }
        }
        Ok(o) => Some(format!(
            "ip netns add failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run ip (iproute2): {e}")),
    }
}

/// One network namespace of the test's own.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A new namespace with loopback up. Call [`unavailable`] first.
    pub fn new(tag: &str) -> Netns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("mfa-{tag}-{}-{n}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.sh("ip link set lo up");
        ns
    }

    /// `program` to be run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs a shell command inside; it must succeed. Its standard output.
    pub fn sh(&self, script: &str) -> String {
        let mut c = self.command("sh");
        c.args(["-c", script]);
        run(&mut c)
    }

    /// Starts `cmd` (made with [`Netns::command`]) in the background, its standard output
    /// and error in `log`, its standard input closed unless `input` is given.
    pub fn spawn(&self, mut cmd: Command, log: &Path, input: Option<&str>) -> Proc {
        let out = File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        cmd.stdout(out).stderr(err);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            use std::io::Write;
            stdin.write_all(text.as_bytes()).unwrap();
        }
        Proc {
            child,
            log: log.to_path_buf(),
        }
    }

    /// The processes running inside (the test's, and what they started).
    fn pids(&self) -> Vec<u32> {
        Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for sig in ["TERM", "KILL"] {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for p in &pids {
                let _ = Command::new("kill")
                    .arg(format!("-{sig}"))
                    .arg(p.to_string())
                    .status();
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && !self.pids().is_empty() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Joins `a` and `b` with a veth pair, `a_ip` and `b_ip` (with their prefix, `/30`) on
/// either end. Both ends live in the test's namespaces, so nothing reaches the host's.
pub fn link(a: &Netns, a_ip: &str, b: &Netns, b_ip: &str) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let base = format!("mv{}x{n}", std::process::id() % 100_000);
    let (ea, eb) = (format!("{base}a"), format!("{base}b"));
    run(Command::new("ip").args([
        "link", "add", &ea, "netns", &a.name, "type", "veth", "peer", "name", &eb, "netns", &b.name,
    ]));
    a.sh(&format!(
        "ip addr add {a_ip} dev {ea} && ip link set {ea} up"
    ));
    b.sh(&format!(
        "ip addr add {b_ip} dev {eb} && ip link set {eb} up"
    ));
}

/// Runs `cmd`; it must succeed. Its standard output.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A process started in a namespace; stopped (SIGTERM, then SIGKILL) and reaped on drop.
pub struct Proc {
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to `secs`) until the log holds `needle` `count` times, or fails with the
    /// log.
    pub fn wait_log(&self, needle: &str, count: usize, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.log().matches(needle).count() >= count {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} never showed {needle:?} {count} time(s):\n{}",
            self.log.display(),
            self.log()
        );
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, up to 10 s, then SIGKILL; reaped either way.
    pub fn stop(&mut self) {
        if self.alive() {
            self.signal("TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && self.alive() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}
