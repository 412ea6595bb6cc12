//! The Debian package in a clean Debian 12 system: a minbase chroot made by debootstrap
//! (from the Debian mirror, cached as a tarball under target/ after the first run), the .deb
//! installed there with dpkg alone (its dependencies are all in minbase), then:
//!
//! - `pam-auth-update --enable mfa` gives working sshd and sudo stacks: a real sshd of the
//!   chroot (Debian's /etc/pam.d/sshd, @include common-auth) lets alice in over ssh with her
//!   password and the current code and refuses a wrong code; `sudo -S` as alice (Debian's
//!   /etc/pam.d/sudo) likewise;
//! - both units start under the chroot's own systemd, booted as PID 1 of a PID and mount
//!   namespace (real `Type=notify` readiness, the units' sandbox): mfa-radiusd answers
//!   radclient with an Access-Accept for password (through the shipped /etc/pam.d/mfa-radius
//!   inside the sandbox) and code, reloads, and mfa-portal serves its page. Where systemd
//!   cannot boot (no cgroup file system to use), the units' ExecStart lines are run in the
//!   chroot instead, and the test says which it proved.
//!
//! Nothing is mounted in the test machine's own mount namespace: every mount is made inside
//! a private namespace that ends with its process, so removing the chroot never reaches
//! /dev or /proc. The chroot shares the machine's network (loopback ports are picked free).
//! Root only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mfa_e2e::pam::{CODE_PROMPT, require_root};
use mfa_e2e::{
    bin_dir, free_tcp_port, free_udp_port, fresh_key, require_tool, text, totp, wrong_code,
};

const SUITE: &str = "bookworm";
/// What the chroot holds besides minbase: the services the test logs in through, systemd to
/// boot, and procps (pgrep for the ExecStart fallback).
const INCLUDE: &str = "openssh-server,sudo,systemd,dbus,procps";
const PASSWORD: &str = "Chroot-pw-7351";

fn mirror() -> String {
    std::env::var("MFA_DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".into())
}

/// The chroot's tarball, made once by debootstrap and kept under target/ (per suite, package
/// list and mirror); its path.
fn base_tarball() -> PathBuf {
    let target = bin_dir().parent().unwrap().to_path_buf();
    let cache = target.join("e2e-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let key = {
        use sha2::{Digest, Sha256};
        let h = Sha256::digest(format!("{SUITE} minbase {INCLUDE} {}", mirror()).as_bytes());
        h.iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let tar = cache.join(format!("debian-{SUITE}-{key}.tar.gz"));
    if tar.exists() {
        return tar;
    }
    require_tool("debootstrap");
    let started = Instant::now();
    let dir = tempfile::tempdir_in(&cache).unwrap();
    let root = dir.path().join("root");
    let log = dir.path().join("debootstrap.log");
    let o = Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={INCLUDE}"), SUITE])
        .arg(&root)
        .arg(mirror())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    if !o.status.success() {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        panic!(
            "debootstrap could not make a {SUITE} chroot from {} (set MFA_DEBIAN_MIRROR to \
             another mirror): {}\n{}",
            mirror(),
            String::from_utf8_lossy(&o.stderr),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let part = cache.join(format!(".debian-{SUITE}-{key}.tar.gz.part"));
    let o = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["--numeric-owner", "-czf"])
        .arg(&part)
        .arg(".")
        .output()
        .unwrap();
    assert!(o.status.success(), "tar: {}", text(&o));
    std::fs::rename(&part, &tar).unwrap();
    eprintln!(
        "made the {SUITE} chroot tarball {} in {:?}",
        tar.display(),
        started.elapsed()
    );
    tar
}

/// A fresh chroot from the tarball, and, once booted, its systemd.
struct Chroot {
    dir: tempfile::TempDir,
    systemd: Option<Child>,
    cgroups_before: BTreeSet<PathBuf>,
    /// Held from boot to the removal of the cgroups: a booted chroot's systemd works at the
    /// top of the machine's cgroup tree, so two at once (two checkouts' suites on one
    /// machine) would share its cgroups and each remove the other's.
    boot_lock: Option<nix::fcntl::Flock<std::fs::File>>,
}

/// The machine-wide lock a booted chroot holds.
fn boot_lock() -> nix::fcntl::Flock<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/var/tmp/mfa-e2e-chroot-systemd.lock")
        .unwrap();
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap()
}

/// Every cgroup directory of the machine (systemd in the chroot makes its own; they are
/// removed again when it ends).
fn cgroup_dirs() -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.insert(e.path());
                todo.push(e.path());
            }
        }
    }
    out
}

impl Chroot {
    fn new() -> Self {
        let tar = base_tarball();
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        let o = Command::new("tar")
            .arg("-C")
            .arg(dir.path().join("root"))
            .args(["--numeric-owner", "-xzf"])
            .arg(&tar)
            .output()
            .unwrap();
        assert!(o.status.success(), "tar: {}", text(&o));
        Chroot {
            dir,
            systemd: None,
            cgroups_before: BTreeSet::new(),
            boot_lock: None,
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root().join(p.trim_start_matches('/'))
    }

    /// The pid of the chroot's systemd (PID 1 of its namespace), while booted.
    fn init_pid(&self) -> Option<u32> {
        let unshare = self.systemd.as_ref()?.id();
        let children =
            std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    /// `sh -c cmd` inside the chroot, with `input` on its standard input: in the booted
    /// system's namespaces, or else in a private mount namespace with /proc and /dev.
    fn run_with(&self, cmd: &str, input: &str) -> Output {
        let mut c = match self.init_pid() {
            Some(pid) => {
                let mut c = Command::new("nsenter");
                c.args(["-t", &pid.to_string(), "-m", "-p", "-u", "-i", "-r", "-w"])
                    .args(["sh", "-c", cmd]);
                c
            }
            None => {
                let r = self.root().display().to_string();
                let mut c = Command::new("unshare");
                c.args([
                    "-m",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    &format!(
                        "mount -t proc proc '{r}/proc' && mount --rbind /dev '{r}/dev' && \
                         exec chroot '{r}' sh -c \"$0\"",
                    ),
                    cmd,
                ]);
                c
            }
        };
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        child.wait_with_output().unwrap()
    }

    fn run(&self, cmd: &str) -> Output {
        self.run_with(cmd, "")
    }

    /// `cmd` started in the chroot (not booted), in a private mount namespace with /proc and
    /// /dev, as a child the caller kills: `exec` makes the command the child itself.
    fn spawn(&self, cmd: &str, log: &Path) -> KillOnDrop {
        let r = self.root().display().to_string();
        let child = Command::new("unshare")
            .args([
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                &format!(
                    "mount -t proc proc '{r}/proc' && mount --rbind /dev '{r}/dev' && \
                     exec chroot '{r}' sh -c \"exec $0\"",
                ),
                cmd,
            ])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
            .spawn()
            .unwrap();
        KillOnDrop(child)
    }

    fn ok(&self, cmd: &str) -> String {
        let o = self.run(cmd);
        assert!(o.status.success(), "in the chroot: {cmd}\n{}", text(&o));
        text(&o)
    }

    /// Boots the chroot's systemd as PID 1 of new PID, mount, UTS and IPC namespaces;
    /// `Err` with what it said when it does not come up.
    fn boot(&mut self) -> Result<(), String> {
        let r = self.root().display().to_string();
        self.boot_lock = Some(boot_lock());
        self.cgroups_before = cgroup_dirs();
        let log = self.dir.path().join("boot.log");
        // The root a mount point of its own (a bind mount of the chroot), or systemd cannot
        // build the units' mount namespaces (ProtectSystem=, PrivateTmp=...: 226/NAMESPACE).
        let script = format!(
            "mount --bind '{r}' '{r}' && \
             mount -t proc proc '{r}/proc' && mount --rbind /sys '{r}/sys' && \
             mount --rbind /dev '{r}/dev' && mount -t tmpfs -o mode=0755 tmpfs '{r}/run' && \
             mount -t tmpfs tmpfs '{r}/tmp' && \
             exec chroot '{r}' /usr/bin/env -i container=other /lib/systemd/systemd \
             --system --unit=multi-user.target --log-target=console"
        );
        let child = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--kill-child",
                "--mount",
                "--propagation",
                "private",
                "--uts",
                "--ipc",
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(self.dir.path().join("boot.err")).unwrap())
            .spawn()
            .unwrap();
        self.systemd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(Ok(Some(st))) = self.systemd.as_mut().map(Child::try_wait) {
                self.systemd = None;
                return Err(format!(
                    "systemd ended ({st}): {}",
                    std::fs::read_to_string(self.dir.path().join("boot.err")).unwrap_or_default()
                ));
            }
            if self.init_pid().is_some() {
                let o = self.run("systemctl is-system-running");
                let state = String::from_utf8_lossy(&o.stdout).trim().to_string();
                if state == "running" || state == "degraded" {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                let o = self.run("systemctl --failed --no-pager; systemctl is-system-running");
                self.halt();
                return Err(format!(
                    "systemd did not finish booting in 60 s: {}",
                    text(&o)
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Ends the booted system (SIGKILL to its PID 1 ends the namespace) and removes the
    /// cgroups it made.
    fn halt(&mut self) {
        if let Some(mut c) = self.systemd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if self.cgroups_before.is_empty() {
            self.boot_lock = None;
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut made: Vec<PathBuf> = cgroup_dirs()
                .difference(&self.cgroups_before)
                .cloned()
                .collect();
            // Deepest first.
            made.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            let mut left = 0;
            for d in &made {
                if std::fs::remove_dir(d).is_err() {
                    left += 1;
                }
            }
            if left == 0 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.cgroups_before.clear();
        self.boot_lock = None;
    }
}

/// A process of the test's, killed when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Retries `f` for up to 15 s until it says yes; its last answer.
fn eventually(mut f: impl FnMut() -> (bool, String)) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (done, what) = f();
        if done || Instant::now() > deadline {
            return what;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        self.halt();
    }
}

/// expect: ssh as alice, answering the password and the code; RESULT says how it ended.
const SSH_EXP: &str = r#"
set timeout 30
set pw $env(MFA_E2E_PW)
set code $env(MFA_E2E_CODE)
set asked 0
spawn {*}$argv
expect {
    -re {[Pp]assword: ?$} { send "$pw\r"; exp_continue }
    -ex "@CODE_PROMPT@" { set asked 1; send "$code\r"; exp_continue }
    "MFA-E2E-42" { puts "\nRESULT asked=$asked outcome=logged-in"; exit 0 }
    "Permission denied" { puts "\nRESULT asked=$asked outcome=denied"; exit 1 }
    timeout { puts "\nRESULT asked=$asked outcome=timeout"; exit 4 }
    eof { puts "\nRESULT asked=$asked outcome=eof"; exit 2 }
}
"#;

fn ssh_login(dir: &Path, port: u16, code: &str) -> String {
    let script = dir.join("ssh.exp");
    std::fs::write(&script, SSH_EXP.replace("@CODE_PROMPT@", CODE_PROMPT)).unwrap();
    let o = Command::new("expect")
        .arg(&script)
        .args([
            "ssh",
            "-p",
            &port.to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
            "alice@127.0.0.1",
            "echo MFA-E2E-$((40 + 2))",
        ])
        .env("MFA_E2E_PW", PASSWORD)
        .env("MFA_E2E_CODE", code)
        .output()
        .unwrap();
    text(&o)
}

/// One Access-Request for bob to the daemon in the chroot (append mode: password then code).
fn radclient(port: u16, secret: &str, password: &str) -> String {
    let o = Command::new("sh")
        .args([
            "-c",
            &format!(
                "printf 'User-Name = \"bob\"\\nUser-Password = \"%s\"\\nCalling-Station-Id = \"198.51.100.7\"\\nMessage-Authenticator = 0x00\\n' \"$0\" | radclient -x -r 1 -t 10 127.0.0.1:{port} auth {secret}"
            ),
            password,
        ])
        .output()
        .unwrap();
    text(&o)
}

fn http_get(port: u16) -> String {
    use std::io::Read;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn the_package_in_a_clean_debian_12_pam_stacks_and_units() {
    require_root("the chroot package test (debootstrap, chroot, namespaces)");
    for t in [
        "unshare",
        "nsenter",
        "tar",
        "dpkg-deb",
        "expect",
        "ssh",
        "radclient",
        "oathtool",
    ] {
        require_tool(t);
    }
    let started = Instant::now();
    let mut chroot = Chroot::new();
    eprintln!("chroot ready in {:?}", started.elapsed());

    // The package, built from the dev-profile binaries, installed with dpkg alone.
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = Command::new("bash")
        .arg(top.join("scripts/build-deb.sh"))
        .args(["--debug", "--no-build", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "build-deb.sh: {}", text(&o));
    let deb = PathBuf::from(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .last()
            .unwrap()
            .trim(),
    );
    std::fs::copy(&deb, chroot.path("/root/mfa.deb")).unwrap();
    chroot.ok("dpkg -i /root/mfa.deb");
    chroot.ok(
        "test -x /usr/sbin/mfactl && test -f /etc/pam.d/mfa-radius && test -f /var/lib/mfa/mfa.key",
    );

    // alice: a Unix account with a password, enrolled; in the sudo group.
    chroot.ok("useradd -m -s /bin/sh -G sudo alice");
    let o = chroot.run_with("chpasswd", &format!("alice:{PASSWORD}\n"));
    assert!(o.status.success(), "{}", text(&o));
    let key = fresh_key();
    chroot.ok(&format!("mfactl enroll alice --secret {key} --no-confirm"));
    // bob: the same, for the RADIUS logins (a code of his own, apart from alice's steps).
    chroot.ok("useradd -m -s /bin/sh bob");
    let o = chroot.run_with("chpasswd", &format!("bob:{PASSWORD}\n"));
    assert!(o.status.success(), "{}", text(&o));
    let bob_key = fresh_key();
    chroot.ok(&format!(
        "mfactl enroll bob --secret {bob_key} --no-confirm"
    ));
    // pam-auth-update puts the module into common-auth, which sshd and sudo include.
    chroot.ok("pam-auth-update --enable mfa");
    let common = std::fs::read_to_string(chroot.path("/etc/pam.d/common-auth")).unwrap();
    assert!(
        common.contains("pam_mfa.so config=/etc/mfa/mfa.toml"),
        "{common}"
    );

    // sshd as the admin sets it up (README): keyboard-interactive through PAM.
    let ssh_port = free_tcp_port();
    std::fs::write(
        chroot.path("/etc/ssh/sshd_config.d/mfa.conf"),
        format!(
            "UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
             AuthenticationMethods keyboard-interactive\nPort {ssh_port}\nListenAddress 127.0.0.1\n"
        ),
    )
    .unwrap();
    // No getty on the machine's console from the chroot's systemd.
    chroot.ok(
        "systemctl mask console-getty.service getty@.service serial-getty@.service \
         systemd-logind.service >/dev/null 2>&1",
    );

    // The daemon and the portal: one RADIUS client (this machine) in append mode with the
    // password through PAM (the shipped /etc/pam.d/mfa-radius), the portal on loopback.
    let radius_port = free_udp_port();
    let portal_port = free_tcp_port();
    let secret = "chroot-radius-secret-0123456789";
    let conf_path = chroot.path("/etc/mfa/mfa.toml");
    let conf = std::fs::read_to_string(&conf_path).unwrap();
    let conf = conf
        .replace(
            "[radius]\n",
            &format!(
                "[radius]\nlisten = [\"127.0.0.1:{radius_port}\"]\nmode = \"append\"\nfirst_factor = \"pam\"\n"
            ),
        )
        .replace(
            "[portal]\n",
            &format!(
                "[portal]\nlisten = \"127.0.0.1:{portal_port}\"\npublic_url = \"http://127.0.0.1:{portal_port}\"\n"
            ),
        );
    std::fs::write(
        &conf_path,
        format!(
            "{conf}\n[[radius.clients]]\nname = \"here\"\naddress = \"127.0.0.1/32\"\nsecret_file = \"/etc/mfa/here.secret\"\n"
        ),
    )
    .unwrap();
    chroot.ok(&format!(
        "umask 077 && printf '%s\\n' '{secret}' > /etc/mfa/here.secret && mfactl config check"
    ));

    // MFA_E2E_NO_SYSTEMD=1 takes the path of a machine where systemd cannot boot.
    let booted = if std::env::var_os("MFA_E2E_NO_SYSTEMD").is_some() {
        Err("MFA_E2E_NO_SYSTEMD is set".to_string())
    } else {
        chroot.boot()
    };
    match &booted {
        Ok(()) => eprintln!("systemd booted in the chroot ({:?})", started.elapsed()),
        Err(e) => eprintln!("systemd could not boot in the chroot: {e}"),
    }

    // The sshd stack over a real ssh connection.
    let _sshd = if booted.is_ok() {
        chroot.ok("systemctl restart ssh.service");
        None
    } else {
        std::fs::create_dir_all(chroot.path("/run/sshd")).unwrap();
        Some(chroot.spawn("/usr/sbin/sshd -D -e", &out.path().join("sshd.log")))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", ssh_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "sshd in the chroot does not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    mfa_e2e::avoid_step_boundary(8);
    let login = ssh_login(out.path(), ssh_port, &totp(&key, 0));
    assert!(
        login.contains("RESULT asked=1 outcome=logged-in"),
        "ssh with password and code:\n{login}"
    );
    let login = ssh_login(out.path(), ssh_port, &wrong_code(&key));
    assert!(
        login.contains("RESULT asked=1 outcome=denied") || login.contains("outcome=eof"),
        "ssh with a wrong code:\n{login}"
    );
    assert!(!login.contains("logged-in"), "{login}");

    // The sudo stack: sudo -S reads each prompt's answer from standard input.
    mfa_e2e::avoid_step_boundary(5);
    let o = chroot.run_with(
        "runuser -u alice -- sudo -S -k -p 'Password: ' id -u",
        &format!("{PASSWORD}\n{}\n", totp(&key, 1)),
    );
    // The code of the next step is still in the window (skew 1), and not yet used.
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0",
        "sudo with password and code: {}",
        text(&o)
    );
    let o = chroot.run_with(
        "runuser -u alice -- sudo -S -k -p 'Password: ' id -u",
        &format!("{PASSWORD}\n{}\n", wrong_code(&key)),
    );
    assert!(!o.status.success(), "sudo with a wrong code: {}", text(&o));

    // The units.
    mfa_e2e::avoid_step_boundary(8);
    let code = totp(&bob_key, 0);
    let proved = if booted.is_ok() {
        let o = chroot.run("systemctl start mfa-radiusd.service mfa-portal.service");
        assert!(
            o.status.success(),
            "systemctl start: {}\n{}",
            text(&o),
            text(&chroot.run(
                "systemctl status --no-pager mfa-radiusd mfa-portal; \
                 journalctl --no-pager -n 60 -u mfa-radiusd -u mfa-portal"
            ))
        );
        for unit in ["mfa-radiusd", "mfa-portal"] {
            let state = chroot.ok(&format!("systemctl is-active {unit}.service"));
            assert_eq!(state.trim(), "active", "{unit}");
        }
        let reply = radclient(radius_port, secret, &format!("{PASSWORD}{code}"));
        assert!(reply.contains("Received Access-Accept"), "{reply}");
        chroot.ok("systemctl reload mfa-radiusd.service");
        let status = chroot.ok("systemctl status --no-pager mfa-radiusd.service");
        assert!(status.contains("active (running)"), "{status}");
        let page = http_get(portal_port);
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        chroot.ok("systemctl stop mfa-radiusd.service mfa-portal.service");
        let log = chroot.ok("journalctl --no-pager -u mfa-radiusd -u mfa-portal");
        assert!(log.contains("listening on"), "{log}");
        "both units started, were ready (Type=notify), answered, reloaded and stopped under systemd"
    } else {
        // Each unit's ExecStart line, run in the chroot as it stands in the unit (without
        // the unit's sandbox and readiness: what is left to prove without systemd).
        let exec = |unit: &str| {
            let file = std::fs::read_to_string(
                chroot.path(&format!("/lib/systemd/system/{unit}.service")),
            )
            .unwrap();
            let line = file
                .lines()
                .find_map(|l| l.strip_prefix("ExecStart="))
                .unwrap()
                .to_string();
            chroot.spawn(&line, &out.path().join(format!("{unit}.log")))
        };
        let _radiusd = exec("mfa-radiusd");
        let reply = eventually(|| {
            let r = radclient(radius_port, secret, &format!("{PASSWORD}{code}"));
            (r.contains("Received Access-"), r)
        });
        assert!(reply.contains("Received Access-Accept"), "{reply}");
        let _portal = exec("mfa-portal");
        let page = eventually(|| {
            let p = TcpStream::connect(("127.0.0.1", portal_port))
                .map(|_| http_get(portal_port))
                .unwrap_or_default();
            (p.starts_with("HTTP/1.1 200"), p)
        });
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        "systemd could not boot here: the units' ExecStart lines were run instead (no sandbox, no readiness)"
    };
    eprintln!("{proved}; the whole test took {:?}", started.elapsed());
    chroot.halt();
}
