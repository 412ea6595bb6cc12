//! A real sshd on a loopback port with the PAM stack pam_unix + pam_mfa, and the real ssh
//! client driven by expect. sshd names its PAM service after its program name, so it is
//! started through a uniquely named symlink with its own /etc/pam.d file. Runs as root (it
//! starts sshd and adds a Unix user); fails with a message saying so otherwise.

use mfa_e2e::pam;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mfa_e2e::pam::{
    PamService, SyslogCapture, UnixUser, expect_script, field, module_path, require_root,
    self_enrol,
};
use mfa_e2e::{Site, fresh_key, require_tool, totp, unique, wrong_code};

const SSHD: &str = "/usr/sbin/sshd";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn keygen(path: &Path) {
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "ssh-keygen: {o:?}");
}

/// The repository's pam.d example with the module and config paths of this test, plus the
/// account and session lines a whole service file needs.
fn stack_from_example(name: &str, config: &Path) -> String {
    let example = std::fs::read_to_string(examples().join("pam.d").join(name)).unwrap();
    let module = format!("{} config={}", module_path().display(), config.display());
    assert!(
        example.contains("pam_mfa.so config=/etc/mfa/mfa.toml"),
        "{example}"
    );
    format!(
        "{}\n\
         account  required  pam_unix.so\n\
         session  required  pam_permit.so\n\
         password required  pam_deny.so\n",
        example.replace("pam_mfa.so config=/etc/mfa/mfa.toml", &module)
    )
}

/// Every test here starts sshd and drives ssh: root, the tools, and sshd itself.
fn require_ssh() {
    require_root("ssh_login tests");
    for t in ["ssh", "ssh-keygen", "expect"] {
        require_tool(t);
    }
    assert!(
        Path::new(SSHD).exists(),
        "{SSHD} is missing: install openssh-server"
    );
}

/// Writes [`SSH_EXP`] (with the module's prompt) to `dir` for [`ssh`].
fn ssh_script(dir: &Path) -> PathBuf {
    let script = dir.join("ssh.exp");
    std::fs::write(&script, expect_script(SSH_EXP)).unwrap();
    script
}

/// sshd in the foreground, killed when dropped.
struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Sshd {
    /// sshd with `include` (one of examples/sshd_config.d) and the test's own settings.
    fn start(
        dir: &Path,
        service: &str,
        include: &str,
        extra: &str,
        syslog: &SyslogCapture,
    ) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let key = dir.join("host_ed25519");
        keygen(&key);
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "# The settings the documentation gives, as shipped in the repository:\n\
                 Include {include}\n\
                 Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {key}\n\
                 PidFile {pid}\n\
                 PermitRootLogin no\n\
                 StrictModes no\n\
                 UseDNS no\n\
                 PrintMotd no\n\
                 PrintLastLog no\n\
                 LogLevel VERBOSE\n\
                 {extra}",
                include = examples().join("sshd_config.d").join(include).display(),
                key = key.display(),
                pid = dir.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        // The service name is the program name: a symlink named after the service.
        let exe = dir.join(service);
        std::os::unix::fs::symlink(SSHD, &exe).unwrap();
        // Privilege separation directory, where the real /run is used.
        let _ = std::fs::create_dir_all("/run/sshd");
        let log = dir.join("sshd.log");
        let exe_s = exe.display().to_string();
        let config_s = config.display().to_string();
        let child = syslog
            .command(&exe_s, &["-D", "-e", "-f", &config_s])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Sshd { child, port, log };
        s.wait_ready();
        s
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited ({status}):\n{}", self.log_text());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on {}:\n{}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// expect: answers the password and (if given) the code, and reports whether the code was
/// asked and whether the remote command ran.
const SSH_EXP: &str = r#"
set timeout 30
set pw $env(MFA_E2E_PW)
set code $env(MFA_E2E_CODE)
set asked 0
set pwasked 0
spawn {*}$argv
expect {
    -re {[Pp]assword: ?$} { set pwasked 1; send "$pw\r"; exp_continue }
    -ex "@CODE_PROMPT@" {
        set asked 1
        if {$code eq ""} { puts "\nRESULT pw=$pwasked asked=1 outcome=no-code-to-give"; exit 3 }
        send "$code\r"
        exp_continue
    }
    "MFA-E2E-42" { puts "\nRESULT pw=$pwasked asked=$asked outcome=logged-in"; exit 0 }
    "Permission denied" { puts "\nRESULT pw=$pwasked asked=$asked outcome=denied"; exit 1 }
    timeout { puts "\nRESULT pw=$pwasked asked=$asked outcome=timeout"; exit 4 }
    eof { puts "\nRESULT pw=$pwasked asked=$asked outcome=eof"; exit 2 }
}
"#;

struct Login {
    password_asked: bool,
    asked: bool,
    outcome: String,
    out: String,
}

/// `ssh -b from user@127.0.0.1` under expect; `opts` come first (for ssh, the first value
/// of an option wins).
fn ssh(
    script: &Path,
    opts: &[&str],
    port: u16,
    from: &str,
    user: &str,
    pw: &str,
    code: &str,
) -> Login {
    let o = Command::new("expect")
        .arg("-f")
        .arg(script)
        .arg("--")
        .args(["ssh", "-F", "/dev/null"])
        .args(opts)
        .args(["-p", &port.to_string(), "-b", from])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=yes",
            "-o",
            "PreferredAuthentications=keyboard-interactive",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg(format!("{user}@127.0.0.1"))
        .arg("echo MFA-E2E-$((6*7))")
        .env("MFA_E2E_PW", pw)
        .env("MFA_E2E_CODE", code)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    let result = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("expect printed no result:\n{out}"))
        .to_string();
    Login {
        password_asked: result.contains("pw=1"),
        asked: result.contains(" asked=1"),
        outcome: result
            .split("outcome=")
            .nth(1)
            .unwrap_or("")
            .trim()
            .to_string(),
        out,
    }
}

/// An sshd with the repo's password + code example (sshd_config and pam.d stack) for `user`
/// alone, public keys off. The PAM service file lives as long as the returned guard.
fn password_code_sshd(
    site: &Site,
    dir: &Path,
    user: &UnixUser,
    prefix: &str,
    syslog: &SyslogCapture,
) -> (PamService, Sshd) {
    let service = PamService::new(
        &unique(prefix),
        &stack_from_example("sshd-password-code", &site.config),
    );
    let sshd = Sshd::start(
        dir,
        &service.name,
        "mfa-password-code.conf",
        &format!(
            "AllowUsers {}\nPubkeyAuthentication no\nAuthorizedKeysFile none\n",
            user.name
        ),
        syslog,
    );
    (service, sshd)
}

#[test]
fn ssh_password_alone_from_trusted_code_from_elsewhere_and_no_replay() {
    require_ssh();

    // 127.0.0.1 is trusted (BASE_CONFIG); 127.0.0.3 is not.
    let site = Site::new("");
    let dir = tempfile::tempdir().unwrap();
    let user = UnixUser::new(&dir.path().join("home"));
    let key = fresh_key();
    site.enroll(&user.name, &key);
    let syslog = SyslogCapture::new();
    let (service, sshd) = password_code_sshd(&site, dir.path(), &user, "mfa-sshd-", &syslog);
    let script = ssh_script(dir.path());
    let port = sshd.port;

    // Trusted: the password alone.
    let l = ssh(
        &script,
        &[],
        port,
        "127.0.0.1",
        &user.name,
        &user.password,
        "",
    );
    assert_eq!(l.outcome, "logged-in", "{}\n{}", l.out, sshd.log_text());
    assert!(!l.asked, "code asked from a trusted address:\n{}", l.out);

    // Wrong password from outside: pam_unix stops the stack; no code is asked.
    let l = ssh(
        &script,
        &[],
        port,
        "127.0.0.3",
        &user.name,
        "wrong-password",
        "",
    );
    assert_eq!(l.outcome, "denied", "{}", l.out);
    assert!(!l.asked, "{}", l.out);

    // From 127.0.0.3: password and code.
    let code = totp(&key, 0);
    let l = ssh(
        &script,
        &[],
        port,
        "127.0.0.3",
        &user.name,
        &user.password,
        &code,
    );
    assert_eq!(l.outcome, "logged-in", "{}\n{}", l.out, sshd.log_text());
    assert!(l.asked, "{}", l.out);

    // The same code again: a replay, refused.
    let l = ssh(
        &script,
        &[],
        port,
        "127.0.0.3",
        &user.name,
        &user.password,
        &code,
    );
    assert_eq!(l.outcome, "denied", "{}\n{}", l.out, sshd.log_text());
    assert!(l.asked, "{}", l.out);

    // What the module logged: sshd's service name, the client addresses as sshd saw them,
    // the reasons, and neither the code nor the password.
    let sys = syslog.text();
    for want in [
        format!("service={:?}", service.name),
        "client_ip=127.0.0.1 decision=allow reason=trusted_network".into(),
        "client_ip=127.0.0.3 decision=allow reason=valid_code".into(),
        "client_ip=127.0.0.3 decision=deny reason=replayed_code".into(),
    ] {
        assert!(sys.contains(&want), "{want} not in syslog:\n{sys}");
    }
    let sshd_log = sshd.log_text();
    for secret in [&code, &user.password, &key] {
        assert!(!sys.contains(secret.as_str()), "a secret in syslog:\n{sys}");
        assert!(
            !sshd_log.contains(secret.as_str()),
            "a secret in sshd's log:\n{sshd_log}"
        );
    }
}

#[test]
fn ssh_public_key_then_code_from_elsewhere_key_alone_from_trusted() {
    require_ssh();
    let site = Site::new("");
    let dir = tempfile::tempdir().unwrap();
    // sshd reads authorized_keys as the user: the directory must be open to it.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let user = UnixUser::new(&dir.path().join("home"));
    let key = fresh_key();
    site.enroll(&user.name, &key);
    let client_key = dir.path().join("client_ed25519");
    keygen(&client_key);
    let authorized = dir.path().join("authorized_keys");
    std::fs::copy(client_key.with_extension("pub"), &authorized).unwrap();
    std::fs::set_permissions(
        &authorized,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let service = PamService::new(
        &unique("mfa-sshd-pk-"),
        &stack_from_example("sshd-publickey-code", &site.config),
    );
    let syslog = SyslogCapture::new();
    let sshd = Sshd::start(
        dir.path(),
        &service.name,
        "mfa-publickey-code.conf",
        &format!(
            "AllowUsers {}\nAuthorizedKeysFile {}\n",
            user.name,
            authorized.display()
        ),
        &syslog,
    );
    let script = ssh_script(dir.path());
    let ck = client_key.display().to_string();
    let with_key = [
        "-i",
        &ck,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "PubkeyAuthentication=yes",
        "-o",
        "PreferredAuthentications=publickey,keyboard-interactive",
    ];
    let no_pw = "no-password-is-asked";

    // Trusted: the key alone.
    let l = ssh(
        &script,
        &with_key,
        sshd.port,
        "127.0.0.1",
        &user.name,
        no_pw,
        "",
    );
    assert_eq!(l.outcome, "logged-in", "{}\n{}", l.out, sshd.log_text());
    assert!(!l.asked && !l.password_asked, "{}", l.out);

    // From 127.0.0.3: the key, then the code (no password).
    let bad = wrong_code(&key);
    let l = ssh(
        &script,
        &with_key,
        sshd.port,
        "127.0.0.3",
        &user.name,
        no_pw,
        &bad,
    );
    assert_eq!(l.outcome, "denied", "wrong code: {}", l.out);
    let code = totp(&key, 0);
    let l = ssh(
        &script,
        &with_key,
        sshd.port,
        "127.0.0.3",
        &user.name,
        no_pw,
        &code,
    );
    assert_eq!(l.outcome, "logged-in", "{}\n{}", l.out, sshd.log_text());
    assert!(l.asked && !l.password_asked, "{}", l.out);

    // Without the key the code alone is not enough.
    let next = totp(&key, 1);
    let l = ssh(
        &script,
        &[],
        sshd.port,
        "127.0.0.3",
        &user.name,
        no_pw,
        &next,
    );
    assert_eq!(l.outcome, "denied", "{}", l.out);
    assert!(!l.asked, "{}", l.out);

    let sys = syslog.text();
    assert!(
        sys.contains("client_ip=127.0.0.3 decision=allow reason=valid_code"),
        "{sys}"
    );
    assert!(!sys.contains(&code) && !sys.contains(&bad), "{sys}");
}

#[test]
fn ssh_self_enrolment_from_the_office_then_code_from_outside() {
    require_ssh();
    let site = Site::new("self_enroll = \"trusted\"\n");
    pam::create_store(&site.config);
    let dir = tempfile::tempdir().unwrap();
    let user = UnixUser::new(&dir.path().join("home"));
    let syslog = SyslogCapture::new();
    let (_service, sshd) = password_code_sshd(&site, dir.path(), &user, "mfa-sshd-se-", &syslog);
    let port = sshd.port.to_string();
    let argv: Vec<String> = [
        "ssh",
        "-F",
        "/dev/null",
        "-p",
        &port,
        "-b",
        "127.0.0.1",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "PreferredAuthentications=keyboard-interactive",
        &format!("{}@127.0.0.1", user.name),
        "echo MFA-E2E-$((6*7))",
    ]
    .map(String::from)
    .into();
    let o = self_enrol(dir.path(), &argv, &user.password, "MFA-E2E-42");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "self-enrolment over ssh:\n{out}\n{}",
        sshd.log_text()
    );
    assert!(out.contains('█'), "no QR code through ssh:\n{out}");
    let key = field(&out, "SHOWN-KEY=").to_string();

    // From outside, the new key's next code logs in.
    let script = ssh_script(dir.path());
    let next = totp(&key, 1);
    let l = ssh(
        &script,
        &[],
        sshd.port,
        "127.0.0.3",
        &user.name,
        &user.password,
        &next,
    );
    assert_eq!(l.outcome, "logged-in", "{}\n{}", l.out, sshd.log_text());
    assert!(l.asked, "{}", l.out);
    let sys = syslog.text();
    assert!(sys.contains("reason=self_enrolled"), "{sys}");
    assert!(!sys.contains(&key), "the key in syslog");
}
