//! Helpers for the tests that load the built `libpam_mfa.so` into the real libpam: service
//! files in /etc/pam.d (unique names, removed on drop), pamtester runs, a private syslog
//! socket per test, and throw-away Unix users.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::{bin_dir, require_tool, unique};
/// The module's own prompts and message: the tests look for these, never for a copy (not
/// every test file that includes this module uses every one).
#[allow(unused_imports)]
pub use pam_mfa::flow::{CODE_PROMPT, ENROL_PROMPT, UNAVAILABLE};

/// Tests that write /etc/pam.d, run sshd or add users need root; they fail (not pass) without.
pub fn require_root(what: &str) {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1);
    assert_eq!(
        uid,
        0,
        "{what} must run as root (it writes /etc/pam.d service files{}); \
         CI runs the suite as root: sudo -E cargo test",
        if what.contains("ssh") {
            ", starts sshd and adds a Unix user"
        } else {
            ""
        }
    );
}

/// The module as built by this workspace (debug profile, next to the test binaries).
/// `cargo build` puts it in target/debug; plain `cargo test` builds it (for pam_mfa's doc
/// tests) but leaves it in target/debug/deps. The newer of the two is the current one.
pub fn module_path() -> PathBuf {
    let dir = bin_dir();
    [
        dir.join("libpam_mfa.so"),
        dir.join("deps").join("libpam_mfa.so"),
    ]
    .into_iter()
    .filter_map(|p| {
        let t = std::fs::metadata(&p).and_then(|m| m.modified()).ok()?;
        Some((t, p))
    })
    .max()
    .map(|(_, p)| p)
    .unwrap_or_else(|| {
        panic!(
            "libpam_mfa.so is not built in {}: run `cargo build --workspace` (or plain \
                 `cargo test`) first",
            dir.display()
        )
    })
}

/// A service file in /etc/pam.d, removed when dropped.
pub struct PamService {
    pub name: String,
    path: PathBuf,
}

impl PamService {
    pub fn new(name: &str, text: &str) -> Self {
        let path = Path::new("/etc/pam.d").join(name);
        assert!(!path.exists(), "{} exists already", path.display());
        std::fs::write(&path, text).unwrap();
        PamService {
            name: name.to_string(),
            path,
        }
    }

    /// `auth required pam_mfa.so config=... <args>` alone, as in a stack where sshd already
    /// checked a public key.
    pub fn mfa_only(config: &Path, args: &str) -> Self {
        let text = format!(
            "# written by the pam_mfa end-to-end tests; removed when they finish\n\
             auth     required {} config={} {args}\n\
             account  required pam_permit.so\n\
             session  required pam_permit.so\n",
            module_path().display(),
            config.display()
        );
        Self::new(&unique("mfa-e2e-"), &text)
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Catches what processes send to syslog: a datagram socket of our own, mounted over
/// /dev/log (or, where there is none, over /run so that /var/run/syslog reaches it) in a
/// private mount namespace around the command. The host's syslog is not touched.
pub struct SyslogCapture {
    dir: tempfile::TempDir,
    sock: UnixDatagram,
}

impl SyslogCapture {
    // Not `Default`: it needs `unshare` and a mount namespace, and fails the test without.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        require_tool("unshare");
        let ok = Command::new("unshare")
            .args(["--mount", "true"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "`unshare --mount` is not permitted here: these tests catch syslog in a private \
             mount namespace and need root with CAP_SYS_ADMIN (not an unprivileged container)"
        );
        let dir = tempfile::tempdir().unwrap();
        let sock = UnixDatagram::bind(dir.path().join("syslog")).unwrap();
        sock.set_nonblocking(true).unwrap();
        // sshd needs its privilege-separation directory under /run.
        std::fs::create_dir(dir.path().join("sshd")).unwrap();
        SyslogCapture { dir, sock }
    }

    /// The argv that runs `argv` in its own mount namespace with syslog going here.
    pub fn wrap(&self, argv: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "d=$1; shift; \
             if [ -e /dev/log ]; then mount --bind \"$d/syslog\" /dev/log; \
             else mount --bind \"$d\" /run; fi || exit 97; exec \"$@\"",
            "sh",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        out.push(self.dir.path().display().to_string());
        out.extend(argv.iter().map(|s| s.to_string()));
        out
    }

    /// `cmd args...` run in its own mount namespace with syslog going to this capture.
    pub fn command(&self, cmd: &str, args: &[&str]) -> Command {
        let mut argv = vec![cmd];
        argv.extend_from_slice(args);
        let full = self.wrap(&argv);
        let mut c = Command::new(&full[0]);
        c.args(&full[1..]);
        c
    }

    /// Lets processes of any user log here (a command run as an ordinary user): the socket
    /// is reached through /dev/log, so only its own mode matters.
    pub fn open_to_all(&self) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            self.dir.path().join("syslog"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
    }

    /// Every message received so far.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = self.sock.recv(&mut buf) {
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
            out.push('\n');
        }
        out
    }
}

/// What libpam returned to pamtester, from the text pamtester prints for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PamResult {
    Success,
    AuthErr,
    MaxTries,
    /// PAM_AUTHINFO_UNAVAIL (remote mode: no server answered).
    AuthInfoUnavail,
    Other,
}

pub struct Run {
    pub result: PamResult,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// misc_conv writes prompts to the terminal side we capture (stdout or stderr).
    pub fn prompted(&self) -> bool {
        self.all().contains(CODE_PROMPT)
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}\n--- stdout\n{}--- stderr\n{}",
            self.result, self.stdout, self.stderr
        )
    }
}

pub fn pam_result(o: &Output) -> PamResult {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if o.status.success() && all.contains("successfully authenticated") {
        PamResult::Success
    } else if all.contains("pamtester: Authentication failure") {
        PamResult::AuthErr
    } else if all.contains("Have exhausted maximum number of retries") {
        PamResult::MaxTries
    } else if all.contains("Authentication service cannot retrieve authentication info") {
        PamResult::AuthInfoUnavail
    } else {
        PamResult::Other
    }
}

/// `pamtester [-I rhost=...] SERVICE USER authenticate`, answering prompts from `input`
/// (one line per prompt), optionally with syslog captured.
pub fn pamtester(
    service: &str,
    user: &str,
    rhost: Option<&str>,
    input: &str,
    syslog: Option<&SyslogCapture>,
) -> Run {
    require_tool("pamtester");
    let mut args: Vec<String> = Vec::new();
    if let Some(r) = rhost {
        args.push("-I".into());
        args.push(format!("rhost={r}"));
    }
    args.extend([service.into(), user.into(), "authenticate".into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = match syslog {
        Some(s) => s.command("pamtester", &argv),
        None => {
            let mut c = Command::new("pamtester");
            c.args(&argv);
            c
        }
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A login refused before any prompt may end before its input is written: a broken pipe
    // is then the expected outcome (the result below says what happened), not a failure.
    if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "pamtester's stdin: {e}"
        );
    }
    let o = child.wait_with_output().unwrap();
    Run {
        result: pam_result(&o),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// [`pamtester`] answering the one prompt with `code`.
pub fn pamtester_code(
    service: &str,
    user: &str,
    rhost: Option<&str>,
    code: &str,
    syslog: Option<&SyslogCapture>,
) -> Run {
    pamtester(service, user, rhost, &format!("{code}\n"), syslog)
}

/// A Unix user with a password, removed when dropped.
pub struct UnixUser {
    pub name: String,
    pub password: String,
}

fn retry_on_lock(mut f: impl FnMut() -> Output, what: &str) -> Output {
    // useradd/userdel refuse while another process holds /etc/passwd's lock.
    for _ in 0..50 {
        let o = f();
        if o.status.success() {
            return o;
        }
        let err = String::from_utf8_lossy(&o.stderr);
        if !err.contains("lock") {
            return o;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: /etc/passwd stayed locked");
}

impl UnixUser {
    pub fn new(home: &Path) -> Self {
        require_tool("useradd");
        require_tool("chpasswd");
        let name = unique("mfae");
        let password = format!("Pw-{}-{}", std::process::id(), crate::fresh_key());
        let o = retry_on_lock(
            || {
                Command::new("useradd")
                    .args(["-M", "-N", "-s", "/bin/sh", "-d"])
                    .arg(home)
                    .arg(&name)
                    .output()
                    .unwrap()
            },
            "useradd",
        );
        assert!(o.status.success(), "useradd {name}: {o:?}");
        let user = UnixUser { name, password };
        let mut c = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(c.stdin.take().unwrap(), "{}:{}", user.name, user.password).unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "chpasswd: {o:?}");
        user
    }
}

impl Drop for UnixUser {
    fn drop(&mut self) {
        let _ = retry_on_lock(
            || Command::new("userdel").arg(&self.name).output().unwrap(),
            "userdel",
        );
    }
}

/// A Unix group (the system's group database, as `exempt_groups`, the rules' `groups` and
/// `[admin] groups` read it), removed when dropped.
pub struct UnixGroup {
    pub name: String,
}

impl UnixGroup {
    pub fn new() -> Self {
        require_tool("groupadd");
        let name = unique("mfag");
        let o = retry_on_lock(
            || Command::new("groupadd").arg(&name).output().unwrap(),
            "groupadd",
        );
        assert!(o.status.success(), "groupadd {name}: {o:?}");
        UnixGroup { name }
    }

    /// A new group whose members are the users named `members`.
    pub fn with_members(members: &[&str]) -> Self {
        require_tool("gpasswd");
        let group = UnixGroup::new();
        for m in members {
            let o = retry_on_lock(
                || {
                    Command::new("gpasswd")
                        .args(["-a", m, &group.name])
                        .output()
                        .unwrap()
                },
                "gpasswd",
            );
            assert!(o.status.success(), "gpasswd -a {m} {}: {o:?}", group.name);
        }
        group
    }

    /// Makes `user` a member (a supplementary group, as `usermod -aG` does).
    pub fn add(&self, user: &UnixUser) {
        let o = retry_on_lock(
            || {
                Command::new("usermod")
                    .args(["-aG", &self.name, &user.name])
                    .output()
                    .unwrap()
            },
            "usermod",
        );
        assert!(o.status.success(), "usermod -aG {}: {o:?}", self.name);
    }
}

impl Default for UnixGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for UnixGroup {
    fn drop(&mut self) {
        let _ = retry_on_lock(
            || Command::new("groupdel").arg(&self.name).output().unwrap(),
            "groupdel",
        );
    }
}

/// `enforce_from` as TOML wants it, `days` from now (negative: in the past).
pub fn toml_time(days_from_now: i64) -> String {
    mfa_config::format_utc(crate::unix_now() + days_from_now * 86_400)
}

/// Creates the site's empty store, as an administrator does before switching the module on
/// for a roll-out in which nobody is enrolled yet (the module itself never creates it).
pub fn create_store(config: &Path) {
    mfa_store_open::core_from_config_file(config, mfa_core::OpenMode::Create, "e2e")
        .expect("create the store");
}

/// `template` with `@CODE_PROMPT@` and `@ENROL_PROMPT@` replaced by the module's prompts, for
/// an expect script that matches them with `-ex "..."` (exact, inside a Tcl string).
pub fn expect_script(template: &str) -> String {
    for p in [CODE_PROMPT, ENROL_PROMPT] {
        assert!(
            !p.contains(['"', '$', '[', ']', '\\']),
            "{p:?} needs quoting in an expect script"
        );
    }
    template
        .replace("@CODE_PROMPT@", CODE_PROMPT)
        .replace("@ENROL_PROMPT@", ENROL_PROMPT)
}

/// expect: runs argv, answers a password prompt (if one comes) with $MFA_E2E_PW, reads the
/// key the module shows at self-enrolment, waits for its confirmation prompt, types the
/// key's current code from oathtool, and waits for $MFA_E2E_DONE; then prints SHOWN-KEY= and
/// SENT-CODE=.
const SELF_ENROL_EXP: &str = r#"
set timeout 30
set pw $env(MFA_E2E_PW)
set done $env(MFA_E2E_DONE)
spawn {*}$argv
expect {
    -re {[Pp]assword: ?$} { send "$pw\r"; exp_continue }
    -re {Key: ([A-Z2-7 ]+)\r?\n} { set key [string map {" " ""} $expect_out(1,string)] }
    timeout { puts "\nEXPECT: no key shown"; exit 3 }
    eof { puts "\nEXPECT: ended before a key was shown"; exit 4 }
}
expect {
    -ex "@ENROL_PROMPT@" {}
    timeout { puts "\nEXPECT: no confirmation prompt"; exit 5 }
    eof { puts "\nEXPECT: no confirmation prompt"; exit 5 }
}
set code [exec oathtool --totp -b $key]
send "$code\r"
expect {
    -ex $done { puts "\nSHOWN-KEY=$key\nSENT-CODE=$code"; exit 0 }
    timeout { puts "\nEXPECT: no result"; exit 6 }
    eof { puts "\nEXPECT: refused"; exit 7 }
}
"#;

/// Self-enrolment through `argv` (pamtester or ssh) driven by expect (the script is written
/// to `dir`): `password` for a password prompt, `done` the text that shows the login went
/// through. What expect printed, with SHOWN-KEY= and SENT-CODE= on success.
pub fn self_enrol(dir: &Path, argv: &[String], password: &str, done: &str) -> Output {
    require_tool("expect");
    require_tool("oathtool");
    let script = dir.join("self-enrol.exp");
    std::fs::write(&script, expect_script(SELF_ENROL_EXP)).unwrap();
    Command::new("expect")
        .arg("-f")
        .arg(&script)
        .arg("--")
        .args(argv)
        .env("MFA_E2E_PW", password)
        .env("MFA_E2E_DONE", done)
        .output()
        .unwrap()
}

/// The value of `NAME=` in expect's output.
pub fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .unwrap_or_else(|| panic!("{name} not in:\n{out}"))
        .trim()
}
