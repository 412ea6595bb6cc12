//! PAM remote mode (issue 10, item 5) through the real libpam (pamtester) and a real
//! mfa-radiusd, and per-client RADIUS settings (item 6) through radclient: the host's
//! mfa.toml holds `[remote]` alone (no store, no secrets), and the user has no Unix account
//! on it. Runs as root (CI does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mfa_e2e::pam;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use mfa_core::OpenMode;
use mfa_e2e::pam::{
    PamResult, PamService, SyslogCapture, UNAVAILABLE, UnixUser, pamtester, pamtester_code,
    require_root,
};
use mfa_e2e::radius::*;
use mfa_e2e::{avoid_step_boundary, write_private};
use mfa_radius_proto::pam_host::report::{OfflineEvent, ReportRequest};
use mfa_radius_proto::pam_host::{HostReply, HostRequest, read_reply};
use mfa_radius_proto::{Builder, Code, Packet};

/// Every server gets this long; the tests' "all down" bounds are sums of it.
const TIMEOUT_S: u64 = 1;

/// The RADIUS server side: a site with a daemon whose one client, 127.0.0.1, is a PAM host
/// (`kind = "pam-hosts"`; [radius] itself keeps the defaults).
struct Server {
    daemon: Daemon,
    site: Site,
    port: u16,
}

impl Server {
    fn start() -> Server {
        let port = free_udp_port();
        let site = Site::with_config(&format!(
            r#"[store]
path = "mfa.db"

[policy]
trusted_networks = ["10.0.0.0/8"]

[audit]
syslog = false

[radius]
listen = ["127.0.0.1:{port}"]

[[radius.clients]]
name = "pam-hosts"
address = "127.0.0.1/32"
secret = "{SECRET}"
kind = "pam-hosts"
"#
        ));
        let daemon = spawn_daemon(&site.config, None);
        daemon.wait_log("listening on", 1);
        Server { daemon, site, port }
    }

    /// The names of every record in the server's store.
    fn records(&self) -> Vec<String> {
        let core =
            mfa_store_open::core_from_config_file(&self.site.config, OpenMode::Existing, "e2e")
                .unwrap();
        let users = core.store().users().unwrap();
        users.into_iter().map(|u| u.name.to_string()).collect()
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn user(&self) -> (String, String) {
        // No Unix account of that name on the host (nor on the server).
        let (u, k) = (unique("prm"), fresh_key());
        self.site.enroll(&u, &k);
        (u, k)
    }
}

/// A host: its mfa.toml with `[remote]` alone, and a PAM service with pam_mfa.
struct Host {
    _dir: tempfile::TempDir,
    svc: PamService,
}

impl Host {
    fn new(servers: &[String], secret: &str) -> Host {
        Self::from_source(servers, secret, None)
    }

    /// A host that sends from `source` (`[remote] source`), as each host of a fleet with
    /// one secret per host does from its own address.
    fn from_source(servers: &[String], secret: &str, source: Option<&str>) -> Host {
        Self::with(servers, secret, source, "")
    }

    /// A host whose mfa.toml has `extra` after its `[remote]` keys (more of them, then
    /// other tables).
    fn with(servers: &[String], secret: &str, source: Option<&str>, extra: &str) -> Host {
        require_root("pam_remote tests");
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("remote.secret");
        std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
        // A secret file others can read is refused, as every secret_file is.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let list: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
        // The host's state (its view of the servers, its offline queue) stays in the test's
        // directory, never in the machine's /var/lib/mfa.
        let extra = if extra.contains("offline_queue") {
            extra.to_string()
        } else {
            format!("offline_queue = \"offline-queue\"\n{extra}")
        };
        let config = dir.path().join("mfa.toml");
        std::fs::write(
            &config,
            format!(
                "[remote]\nservers = [{}]\nsecret_file = \"remote.secret\"\ntimeout = \"{TIMEOUT_S}s\"\nretries = 1\n{}{extra}",
                list.join(", "),
                source
                    .map(|s| format!("source = \"{s}\"\n"))
                    .unwrap_or_default()
            ),
        )
        .unwrap();
        let svc = PamService::mfa_only(&config, "");
        Host { _dir: dir, svc }
    }

    fn login(&self, user: &str, rhost: &str, input: &str, log: &SyslogCapture) -> pam::Run {
        pamtester(&self.svc.name, user, Some(rhost), input, Some(log))
    }

    /// `mfactl --config <the host's mfa.toml> args...`, as an administrator on the host.
    fn mfactl(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(bin("mfactl"))
            .arg("--config")
            .arg(self._dir.path().join("mfa.toml"))
            .args(args)
            .output()
            .unwrap()
    }
}

/// A UDP socket that receives and never answers, like a server that is down behind a
/// firewall that drops.
fn silent() -> (UdpSocket, String) {
    let s = UdpSocket::bind("127.0.0.2:0").unwrap();
    let a = s.local_addr().unwrap().to_string();
    (s, a)
}

/// How a forger answers every request.
#[derive(Clone, Copy)]
enum Forgery {
    /// An Access-Accept signed with another secret.
    WrongSecret,
    /// An Access-Accept with the right Response Authenticator but no Message-Authenticator
    /// (what BlastRADIUS builds on).
    NoMessageAuthenticator,
}

/// A server on 127.0.0.2 that answers every request with a forged Access-Accept.
fn forger(how: Forgery) -> String {
    let s = UdpSocket::bind("127.0.0.2:0").unwrap();
    let a = s.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let Ok(p) = Packet::parse(&buf[..n]) else {
                continue;
            };
            let reply = match how {
                Forgery::WrongSecret => Builder::reply(Code::ACCESS_ACCEPT, &p)
                    .encode_reply(b"not-the-secret", &p.authenticator),
                Forgery::NoMessageAuthenticator => {
                    Builder::request(Code::ACCESS_ACCEPT, p.identifier, false)
                        .encode_reply(SECRET.as_bytes(), &p.authenticator)
                }
            }
            .unwrap();
            let _ = s.send_to(&reply, from);
        }
    });
    a
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn trusted_rhost_no_prompt_untrusted_code_once_and_the_audit_names_host_and_service() {
    let server = Server::start();
    let host = Host::new(&[server.addr()], SECRET);
    let (user, key) = server.user();
    let log = SyslogCapture::new();

    // Trusted network: the server accepts in round one; no prompt.
    let r = host.login(&user, "10.1.2.3", "", &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(!r.prompted(), "{r:?}");

    // Untrusted: the prompt, the right code, accepted once; its replay refused.
    avoid_step_boundary(3);
    let code = totp(&key, 0);
    let r = host.login(&user, "192.0.2.10", &format!("{code}\n"), &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(r.prompted(), "{r:?}");
    let r = host.login(&user, "192.0.2.10", &format!("{code}\n"), &log);
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(r.prompted(), "{r:?}");
    assert!(
        r.all().contains("already used"),
        "the server's message: {r:?}"
    );
    // A wrong code: refused.
    let r = host.login(
        &user,
        "192.0.2.10",
        &format!("{}\n", wrong_code(&key)),
        &log,
    );
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");

    // The server audited which host and which PAM service asked.
    let out = server.site.mfactl(&["log", &user, "--format", "csv"]);
    let trail = text(&out);
    let service = format!("pam-hosts/{}/{}", host_name(), host.svc.name);
    for want in [
        format!("{service},10.1.2.3,allow,trusted_network"),
        format!("{service},192.0.2.10,allow,valid_code"),
        format!("{service},192.0.2.10,deny,replayed_code"),
    ] {
        assert!(
            trail.contains(&want),
            "{want:?} not in the audit trail:\n{trail}"
        );
    }
    // No code and no secret in syslog or the daemon's log.
    let sys = log.text();
    for secret in [code.as_str(), SECRET, key.as_str()] {
        assert!(!sys.contains(secret), "syslog holds a secret:\n{sys}");
        assert!(
            !server.daemon.log().contains(secret),
            "{}",
            server.daemon.log()
        );
    }
}

#[test]
fn a_server_that_never_answers_is_skipped_after_its_timeout() {
    let server = Server::start();
    let (_quiet, quiet) = silent();
    let host = Host::new(&[quiet.clone(), server.addr()], SECRET);
    let (user, key) = server.user();
    let log = SyslogCapture::new();

    avoid_step_boundary(5);
    let start = Instant::now();
    let r = host.login(&user, "192.0.2.11", &format!("{}\n", totp(&key, 0)), &log);
    let took = start.elapsed();
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(r.prompted(), "{r:?}");
    assert!(
        took >= Duration::from_secs(TIMEOUT_S),
        "the silent server got its timeout first: {took:?}"
    );
    let sys = log.text();
    assert!(
        sys.contains(&format!("RADIUS server {quiet}: no answer within 1s")),
        "{sys}"
    );
    assert!(
        sys.contains(&format!("answered by RADIUS server {}", server.addr())),
        "{sys}"
    );
}

#[test]
fn no_server_answers_authinfo_unavail_within_the_sum_of_the_timeouts() {
    let (_a, a) = silent();
    let (_b, b) = silent();
    let host = Host::new(&[a.clone(), b.clone()], SECRET);
    let log = SyslogCapture::new();
    // Trusted or not, nobody decides: fail closed.
    for rhost in ["10.1.2.3", "192.0.2.12"] {
        let start = Instant::now();
        let r = host.login("anyone", rhost, "123456\n", &log);
        let took = start.elapsed();
        assert_eq!(r.result, PamResult::AuthInfoUnavail, "{r:?}");
        assert!(!r.prompted(), "{r:?}");
        assert!(r.all().contains(UNAVAILABLE), "{r:?}");
        let sum = Duration::from_secs(2 * TIMEOUT_S);
        assert!(took >= sum, "gave up before trying both: {took:?}");
        assert!(
            took < sum + Duration::from_secs(2),
            "took {took:?}, more than the sum of the timeouts ({sum:?}) + 2 s"
        );
    }
    let sys = log.text();
    assert!(
        sys.contains("denied (PAM_AUTHINFO_UNAVAIL): no RADIUS server answered"),
        "{sys}"
    );
    assert!(sys.contains(&a) && sys.contains(&b), "{sys}");
}

/// A server that is down: a loopback port nothing listens on.
fn down() -> String {
    format!("127.0.0.1:{}", free_udp_port())
}

/// The host's own trusted networks and exemptions, for `[remote] offline = "trusted"`.
fn offline_policy(queue: &std::path::Path) -> String {
    format!(
        "offline = \"trusted\"\noffline_queue = {:?}\n[policy]\ntrusted_networks = [\"10.0.0.0/8\"]\nexempt_users = [\"svc-offline\"]\n",
        queue.display().to_string()
    )
}

/// Issue 24 item 4: the default stays PAM_AUTHINFO_UNAVAIL even where the host's own
/// `[policy]` would trust the address.
#[test]
fn offline_default_is_authinfo_unavail_even_from_a_trusted_address() {
    let q = tempfile::tempdir().unwrap();
    let queue = q.path().join("queue");
    let policy = offline_policy(&queue).replace("offline = \"trusted\"\n", "");
    let host = Host::with(&[down()], SECRET, None, &policy);
    let log = SyslogCapture::new();
    for (user, rhost) in [("anyone", "10.1.2.3"), ("svc-offline", "192.0.2.12")] {
        let r = host.login(user, rhost, "", &log);
        assert_eq!(r.result, PamResult::AuthInfoUnavail, "{r:?}");
    }
    assert!(!queue.exists());
    assert!(!log.text().contains("OFFLINE ALLOW"), "{}", log.text());
}

/// `[remote] offline = "trusted"` with every server down: a trusted address and an exempt
/// user get in without a code, each logged and queued (0600); an untrusted address gets
/// PAM_AUTHINFO_UNAVAIL, is never asked for a code and a typed one is never taken. Once a
/// server answers again the queued logins are reported to syslog and the queue empties.
#[test]
fn offline_trusted_lets_trusted_in_never_takes_a_code_and_reports_when_back() {
    use std::os::unix::fs::MetadataExt;
    let q = tempfile::tempdir().unwrap();
    let queue = q.path().join("queue");
    let host = Host::with(&[down(), down()], SECRET, None, &offline_policy(&queue));
    let log = SyslogCapture::new();

    let r = host.login("anyone", "10.1.2.3", "", &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(!r.prompted(), "{r:?}");
    let r = host.login("svc-offline", "192.0.2.12", "", &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    // Untrusted: no code is asked for, and one typed is not taken.
    for input in ["123456\n", ""] {
        let r = host.login("anyone", "192.0.2.12", input, &log);
        assert_eq!(r.result, PamResult::AuthInfoUnavail, "{r:?}");
        assert!(!r.prompted(), "{r:?}");
        assert!(r.all().contains(UNAVAILABLE), "{r:?}");
    }
    let sys = log.text();
    assert_eq!(sys.matches("OFFLINE ALLOW").count(), 2, "{sys}");
    assert!(sys.contains("reason=trusted_network"), "{sys}");
    assert!(sys.contains("reason=exempt_user"), "{sys}");
    assert!(sys.contains("never takes a code"), "{sys}");
    let queued = std::fs::read_to_string(&queue).unwrap();
    assert_eq!(queued.lines().count(), 2, "{queued}");
    assert!(
        queued.contains("user=\"anyone\"") && queued.contains("client=10.1.2.3"),
        "{queued}"
    );
    let m = std::fs::metadata(&queue).unwrap();
    assert_eq!((m.mode() & 0o777, m.uid()), (0o600, 0));

    // A server answers again: the next login reports what was queued, once, and the
    // server's audit trail has one row for each (issue 24: reported to the server).
    let server = Server::start();
    let back = Host::with(&[server.addr()], SECRET, None, &offline_policy(&queue));
    let log = SyslogCapture::new();
    let r = back.login("anyone", "10.1.2.3", "", &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    let sys = log.text();
    assert_eq!(sys.matches("OFFLINE ALLOW REPORTED").count(), 2, "{sys}");
    assert_eq!(std::fs::read_to_string(&queue).unwrap(), "");
    let reported = std::fs::read_to_string(q.path().join("queue.reported")).unwrap();
    assert_eq!(reported, queued);
    let r = back.login("anyone", "10.1.2.3", "", &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    // (text() gives what was logged since it was last read.)
    assert!(!log.text().contains("OFFLINE ALLOW"));
    let rows = |user: &str, reason: &str| offline_rows(&server, user, reason);
    let anyone = rows("anyone", "offline_allowed");
    assert_eq!(anyone.len(), 1, "{anyone:?}");
    assert!(
        anyone[0].contains("allowed_by=trusted_network"),
        "{anyone:?}"
    );
    assert!(anyone[0].contains("10.1.2.3"), "{anyone:?}");
    assert!(
        anyone[0].contains(&format!("pam-hosts/{}/", host_name())),
        "{anyone:?}"
    );
    let svc = rows("svc-offline", "offline_allowed");
    assert_eq!(svc.len(), 1, "{svc:?}");
    assert!(svc[0].contains("allowed_by=exempt_user"), "{svc:?}");
    assert!(server.records().is_empty(), "{:?}", server.records());

    // Reported again (the host crashed before it dropped the lines, or the acknowledgement
    // was lost): acknowledged again, no second row.
    std::fs::write(&queue, &queued).unwrap();
    let r = back.login("anyone", "10.1.2.3", "", &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert_eq!(log.text().matches("OFFLINE ALLOW REPORTED").count(), 2);
    assert_eq!(std::fs::read_to_string(&queue).unwrap(), "");
    assert_eq!(rows("anyone", "offline_allowed").len(), 1);
    assert_eq!(rows("svc-offline", "offline_allowed").len(), 1);

    // The same report replayed on the wire: acknowledged, no second row. One under
    // another secret is dropped; one for a reason no host lets a login in for is refused.
    let line = queued.lines().find(|l| l.contains("\"anyone\"")).unwrap();
    let id = queue_id(line);
    let time = line
        .split(' ')
        .find_map(|w| w.strip_prefix("time="))
        .unwrap()
        .parse()
        .unwrap();
    let ev = |reason: &str| OfflineEvent {
        id,
        time,
        reason: reason.into(),
    };
    let ack = send_report(&server, SECRET, "anyone", &ev("trusted_network"));
    assert_eq!(ack.map(|p| p[0]), Some(2), "an Access-Accept");
    assert!(send_report(&server, "another secret", "anyone", &ev("trusted_network")).is_none());
    let refused = send_report(&server, SECRET, "anyone", &ev("valid_code"));
    assert_eq!(refused.map(|p| p[0]), Some(3), "an Access-Reject");
    let fresh = OfflineEvent {
        id: [0x5a; 16],
        ..ev("valid_code")
    };
    assert_eq!(
        send_report(&server, SECRET, "anyone", &fresh).map(|p| p[0]),
        Some(3)
    );
    assert_eq!(rows("anyone", "offline_allowed").len(), 1);
    let all = text(&server.site.mfactl(&["log", "anyone", "--format", "csv"]));
    assert!(!all.contains("valid_code"), "{all}");
    let dlog = server.daemon.log();
    assert!(
        dlog.contains("offline report for user \"anyone\""),
        "{dlog}"
    );
    assert!(dlog.contains("recorded=already"), "{dlog}");
    // The refused and the unauthenticated ones are logged.
    assert!(
        dlog.contains("refused, nothing recorded: \"valid_code\" is no reason"),
        "{dlog}"
    );
    assert!(dlog.contains("dropped a packet from 127.0.0.1:"), "{dlog}");
}

/// The events of `mfactl log USER --format json` on the server with `reason`, each as its
/// service, client address, decision, time and detail in one line.
fn offline_rows(server: &Server, user: &str, reason: &str) -> Vec<String> {
    let out = server.site.mfactl(&["log", user, "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    all.into_iter()
        .filter(|e| e["reason"] == reason)
        .map(|e| {
            format!(
                "{} {} {} {} {}",
                e["service"], e["client_ip"], e["decision"], e["time"], e["detail"]
            )
        })
        .collect()
}

/// The `id=` of a queue line.
fn queue_id(line: &str) -> [u8; 16] {
    let h = line
        .split(' ')
        .find_map(|w| w.strip_prefix("id="))
        .expect("an id");
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
    }
    id
}

/// An offline report sent by hand from 127.0.0.1 under `secret`; the reply, where one
/// came within two seconds.
fn send_report(server: &Server, secret: &str, user: &str, ev: &OfflineEvent) -> Option<Vec<u8>> {
    let packet = ReportRequest {
        identifier: 9,
        authenticator: rand_bytes(),
        user,
        rhost: Some("10.1.2.3".parse().unwrap()),
        host: &host_name(),
        service: "hand",
        event: ev,
    }
    .encode(secret.as_bytes())
    .unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send(&packet).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).ok()?;
    let reply = buf[..n].to_vec();
    let p = Packet::parse(&reply).unwrap();
    let req = Packet::parse(&packet).unwrap();
    p.verify_reply(secret.as_bytes(), &req.authenticator)
        .unwrap();
    Some(reply)
}

/// A Request Authenticator no other request of the run has.
fn rand_bytes() -> [u8; 16] {
    use sha2::Digest;
    let d = sha2::Sha256::digest(unique("auth").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b
}

/// A queue file that is a symbolic link, or that others may read, is refused: the login is
/// not let in (it could not be recorded), and the link's target is untouched.
#[test]
fn offline_trusted_refuses_to_let_in_what_it_cannot_queue() {
    let q = tempfile::tempdir().unwrap();
    let target = q.path().join("elsewhere");
    std::fs::write(&target, "").unwrap();
    let queue = q.path().join("queue");
    std::os::unix::fs::symlink(&target, &queue).unwrap();
    let host = Host::with(&[down()], SECRET, None, &offline_policy(&queue));
    let log = SyslogCapture::new();
    let r = host.login("anyone", "10.1.2.3", "", &log);
    assert_eq!(r.result, PamResult::AuthInfoUnavail, "{r:?}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "");
    assert!(log.text().contains("cannot be queued"), "{}", log.text());
}

/// Break-glass codes (issue 24 item 4): `mfactl breakglass issue` prints codes once and
/// writes only their hashes (0600); with a server up a code goes to the server (which
/// refuses it) and the file is not consulted; with every server down a code lets in once,
/// logged and queued, and its second use fails.
#[test]
fn a_breakglass_code_works_once_and_only_while_no_server_answers() {
    use std::os::unix::fs::MetadataExt;
    let q = tempfile::tempdir().unwrap();
    let bg = q.path().join("breakglass");
    let queue = q.path().join("queue");
    let o = std::process::Command::new(bin("mfactl"))
        .args(["breakglass", "issue", &host_name(), "--count", "3", "--out"])
        .arg(&bg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let out = String::from_utf8(o.stdout).unwrap();
    let codes: Vec<&str> = out
        .lines()
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(codes.len(), 3, "{out}");
    let issued = std::fs::read_to_string(&bg).unwrap();
    for c in &codes {
        assert!(!issued.contains(c), "a code in the file:\n{issued}");
    }
    let m = std::fs::metadata(&bg).unwrap();
    assert_eq!((m.mode() & 0o777, m.uid()), (0o600, 0));
    let extra = format!(
        "offline_queue = {:?}\nbreakglass_file = {:?}\n",
        queue.display().to_string(),
        bg.display().to_string()
    );

    // A server answers: the code is the server's to judge (it is no code of the user's).
    let server = Server::start();
    let (user, _key) = server.user();
    let up = Host::with(&[server.addr()], SECRET, None, &extra);
    let log = SyslogCapture::new();
    let r = up.login(&user, "192.0.2.10", &format!("{}\n", codes[0]), &log);
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(r.prompted(), "{r:?}");
    assert_eq!(std::fs::read_to_string(&bg).unwrap(), issued);

    // Every server down: the code lets in, once.
    let host = Host::with(&[down()], SECRET, None, &extra);
    let r = host.login(&user, "192.0.2.10", &format!("{}\n", codes[0]), &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(r.prompted(), "{r:?}");
    let left = std::fs::read_to_string(&bg).unwrap();
    assert_eq!(left.lines().filter(|l| l.starts_with("v2 ")).count(), 2);
    let m = std::fs::metadata(&bg).unwrap();
    assert_eq!((m.mode() & 0o777, m.uid()), (0o600, 0));
    let sys = log.text();
    assert!(sys.contains("BREAK-GLASS CODE USED"), "{sys}");
    assert!(sys.contains("2 unused code(s) left"), "{sys}");
    for c in &codes {
        assert!(!sys.contains(c), "a code in syslog:\n{sys}");
    }
    // Its second use, and a wrong code, fail; another code still works.
    let r = host.login(&user, "192.0.2.10", &format!("{}\n", codes[0]), &log);
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    let r = host.login(&user, "192.0.2.10", "00000000\n", &log);
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    let r = host.login(&user, "192.0.2.10", &format!("{}\n", codes[1]), &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    let queued = std::fs::read_to_string(&queue).unwrap();
    assert_eq!(queued.matches("reason=break_glass").count(), 2, "{queued}");

    // A break-glass file that is not there offers nothing to type: as without one.
    let missing = extra.replace("breakglass\"", "not-there\"");
    assert!(missing.contains("not-there"), "{missing}");
    let host = Host::with(&[down()], SECRET, None, &missing);
    let r = host.login(&user, "192.0.2.10", &format!("{}\n", codes[2]), &log);
    assert_eq!(r.result, PamResult::AuthInfoUnavail, "{r:?}");
    assert!(!r.prompted(), "{r:?}");

    // A server answers again: the next login (from the server's trusted network) reports
    // both uses, and the server's audit trail has one `breakglass_used` row for each.
    assert!(offline_rows(&server, &user, "breakglass_used").is_empty());
    let r = up.login(&user, "10.1.2.3", "", &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert_eq!(log.text().matches("OFFLINE ALLOW REPORTED").count(), 2);
    assert_eq!(std::fs::read_to_string(&queue).unwrap(), "");
    let rows = offline_rows(&server, &user, "breakglass_used");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.contains("allowed_by=break_glass") && r.contains("192.0.2.10")),
        "{rows:?}"
    );
    // Sent again: still two.
    std::fs::write(&queue, &queued).unwrap();
    let r = up.login(&user, "10.1.2.3", "", &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert_eq!(std::fs::read_to_string(&queue).unwrap(), "");
    assert_eq!(offline_rows(&server, &user, "breakglass_used").len(), 2);
}

#[test]
fn forged_replies_are_no_answer() {
    let server = Server::start();
    let (user, _key) = server.user();
    for how in [Forgery::WrongSecret, Forgery::NoMessageAuthenticator] {
        let log = SyslogCapture::new();
        let why = match how {
            Forgery::WrongSecret => "ignored a reply: wrong Response Authenticator",
            Forgery::NoMessageAuthenticator => "ignored a reply: no Message-Authenticator",
        };
        // Alone: its Access-Accept lets nobody in.
        let fake = forger(how);
        let host = Host::new(std::slice::from_ref(&fake), SECRET);
        let r = host.login(&user, "192.0.2.13", "123456\n", &log);
        assert_eq!(r.result, PamResult::AuthInfoUnavail, "{r:?}");
        let sys = log.text();
        assert!(
            sys.contains(&format!("RADIUS server {fake}: {why}")),
            "{sys}"
        );
        assert!(sys.contains("no valid reply within 1s"), "{sys}");

        // First in the list: skipped; the real server decides (trusted: accepted).
        let host = Host::new(&[fake.clone(), server.addr()], SECRET);
        let r = host.login(&user, "10.9.9.9", "", &log);
        assert_eq!(r.result, PamResult::Success, "{r:?}");
    }

    // A host with the wrong secret: the real server drops its requests (bad
    // Message-Authenticator), so nothing answers.
    let log = SyslogCapture::new();
    let host = Host::new(&[server.addr()], "wrong-secret");
    let r = host.login(&user, "10.1.2.3", "", &log);
    assert_eq!(r.result, PamResult::AuthInfoUnavail, "{r:?}");
    server
        .daemon
        .wait_log("wrong Message-Authenticator (client \"pam-hosts\"", 1);
}

/// One daemon, three clients on three loopback addresses, each in its own mode; [radius]
/// itself says append, which none of them uses.
#[test]
fn per_client_modes_and_the_message_authenticator_warning() {
    let port = free_udp_port();
    let site = Site::with_config(&format!(
        r#"[store]
path = "mfa.db"

[policy]
trusted_networks = ["10.0.0.0/8"]

[audit]
syslog = false

[radius]
listen = ["127.0.0.1:{port}"]
mode = "append"
pam_service = "mfa-test"

[[radius.clients]]
name = "rd-gateway"
address = "127.0.0.1"
secret = "{SECRET}"
mode = "code-only"

[[radius.clients]]
name = "vpn"
address = "127.0.0.3"
secret = "{SECRET}"
mode = "challenge"

[[radius.clients]]
name = "legacy"
address = "127.0.0.4"
secret = "{SECRET}"
mode = "code-only"
require_message_authenticator = false
"#
    ));
    let pam = write_pam(site.path());
    let daemon = spawn_daemon(&site.config, Some(&pam));
    daemon.wait_log("listening on", 1);
    let log = daemon.log();
    assert!(
        log.contains("warning: client \"legacy\" (127.0.0.4/32): requests without Message-Authenticator are accepted (require_message_authenticator = false on the client)"),
        "{log}"
    );
    assert!(!log.contains("client \"vpn\" ("), "{log}");
    assert!(!log.contains("client \"rd-gateway\" ("), "{log}");

    // One user per client, so that no client's accepted code makes another's a replay.
    let user_of = || {
        let (u, k) = (unique("pc"), fresh_key());
        site.enroll(&u, &k);
        (u, k)
    };
    let daemon_addr = format!("127.0.0.1:{port}");
    avoid_step_boundary(8);

    let (user, key) = user_of();
    // The RD Gateway (code-only): User-Password is the code.
    let code = totp(&key, 0);
    let r = radclient(
        &daemon_addr,
        SECRET,
        "auth",
        &attrs(&user, Some(&code), Some(UNTRUSTED_CSI), true),
        5,
    );
    assert!(r.is("Access-Accept"), "{}", r.output);
    // Its requests still need Message-Authenticator: dropped without.
    let r = radclient(
        &daemon_addr,
        SECRET,
        "auth",
        &attrs(&user, Some(&totp(&key, 1)), Some(UNTRUSTED_CSI), false),
        1,
    );
    assert_eq!(r.code, None, "{}", r.output);

    // The VPN (challenge): the password, a challenge, then the code with the State.
    let (user, key) = user_of();
    let vpn = Relay::bind("127.0.0.3:0", &daemon_addr);
    let (r, _, _) = vpn.exchange(&attrs(&user, Some(PASSWORD), Some(UNTRUSTED_CSI), true));
    assert!(r.is("Access-Challenge"), "{}", r.output);
    let state = r.state.clone().expect("a State");
    let code = totp(&key, 1);
    let round2 = format!(
        "{}State = {state}\n",
        attrs(&user, Some(&code), Some(UNTRUSTED_CSI), true)
    );
    let (r, _, _) = vpn.exchange(&round2);
    assert!(r.is("Access-Accept"), "{}", r.output);
    // A code in round one is a wrong password there, not a code.
    let (r, _, _) = vpn.exchange(&attrs(
        &user,
        Some(&totp(&key, -1)),
        Some(UNTRUSTED_CSI),
        true,
    ));
    assert!(r.is("Access-Reject"), "{}", r.output);

    // The legacy client: code-only, accepted without Message-Authenticator.
    let (user, key) = user_of();
    let legacy = Relay::bind("127.0.0.4:0", &daemon_addr);
    let (r, _, _) = legacy.exchange(&attrs(
        &user,
        Some(&totp(&key, -1)),
        Some(UNTRUSTED_CSI),
        false,
    ));
    assert!(r.is("Access-Accept"), "{}", r.output);

    for want in [
        "client=\"rd-gateway\" client_ip=198.51.100.7 decision=accept reason=valid_code",
        "client=\"vpn\" client_ip=198.51.100.7 decision=challenge reason=code_required",
        "client=\"vpn\" client_ip=198.51.100.7 decision=accept reason=valid_code",
        "client=\"vpn\" client_ip=198.51.100.7 decision=reject reason=wrong_password",
        "client=\"legacy\" client_ip=198.51.100.7 decision=accept reason=valid_code",
    ] {
        // The log is written in blocks; wait for each line.
        daemon.wait_log(want, 1);
    }
}

/// Round one (or, with `state`, round two) as a PAM host sends it, from `local` (a loopback
/// address), through the project's one writer of it (`pam_host::HostRequest`): the verified
/// reply's code and State, or `None` when nothing (valid) answers within 5 s.
#[allow(clippy::too_many_arguments)]
fn pam_host_request(
    local: &str,
    server: &str,
    secret: &str,
    user: &str,
    nas_identifier: &str,
    password: &[u8],
    state: Option<&[u8]>,
) -> Option<(Code, Option<Vec<u8>>)> {
    pam_host_ask(
        local,
        server,
        secret,
        user,
        nas_identifier,
        password,
        state,
        false,
    )
    .map(|(code, reply)| {
        let state = match reply {
            Some(HostReply::Challenge { state, .. }) => Some(state),
            _ => None,
        };
        (code, state)
    })
}

/// [`pam_host_request`] saying whether the host's NSS knows `user` (`name_known`), and the
/// reply as the host reads it (`None` where it does not understand it).
#[allow(clippy::too_many_arguments)]
fn pam_host_ask(
    local: &str,
    server: &str,
    secret: &str,
    user: &str,
    nas_identifier: &str,
    password: &[u8],
    state: Option<&[u8]>,
    name_known: bool,
) -> Option<(Code, Option<HostReply>)> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // Unique per request, which is all a test's Request Authenticator needs to be.
    let mut authenticator = [0u8; 16];
    authenticator[..8].copy_from_slice(&n.to_be_bytes());
    authenticator[8..].copy_from_slice(&(nanos as u64).to_be_bytes());
    let packet = HostRequest {
        identifier: (n % 256) as u8,
        authenticator,
        user,
        password,
        rhost: Some("192.0.2.44".parse().unwrap()),
        host: nas_identifier,
        service: "sshd",
        state,
        name_known,
        push_capable: false,
        push_request: false,
    }
    .encode(secret.as_bytes())
    .unwrap();
    let sock = UdpSocket::bind(format!("{local}:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(&packet, server).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    let reply = Packet::parse(&buf[..n]).ok()?;
    reply.verify_reply(secret.as_bytes(), &authenticator).ok()?;
    Some((reply.code, read_reply(&reply).ok()))
}

/// Issue 19: who may get a record is the core's one rule in remote mode too. The host says
/// whether its NSS knows the name (Name-Known), and the server gives a stranger's name no
/// record and a known name one, as the module does locally. The daemon used to vouch for
/// every name a PAM host sent, so a stranger trying names filled the server's store.
#[test]
fn a_stranger_gets_no_record_in_remote_mode_and_a_known_name_does() {
    let server = Server::start();
    let host = Host::new(&[server.addr()], SECRET);
    let log = SyslogCapture::new();
    // Not enrolled, past the deadline (grace_days = 0): refused either way.
    let stranger = unique("nobody");
    let r = host.login(&stranger, "192.0.2.30", "", &log);
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(r.all().contains("Contact your administrator"), "{r:?}");
    let home = tempfile::tempdir().unwrap();
    let unix = UnixUser::new(home.path());
    let r = host.login(&unix.name, "192.0.2.30", "", &log);
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert_eq!(
        server.records(),
        std::slice::from_ref(&unix.name),
        "{}",
        server.daemon.log()
    );
    // Both decisions were audited all the same.
    let trail = text(&server.site.mfactl(&["log", "--format", "csv"]));
    for user in [&stranger, &unix.name] {
        assert!(
            trail.contains(&format!("{user},pam-hosts/")),
            "{user} not in the trail:
{trail}"
        );
    }

    // The server goes by what the host says, not by its own NSS: the host vouches.
    let daemon = server.addr();
    let said_known = unique("known-there");
    let r = pam_host_ask(
        "127.0.0.1",
        &daemon,
        SECRET,
        &said_known,
        "web2",
        b"",
        None,
        true,
    );
    assert_eq!(r.map(|r| r.0), Some(Code::ACCESS_REJECT));
    let r = pam_host_ask(
        "127.0.0.1",
        &daemon,
        SECRET,
        "root",
        "web2",
        b"",
        None,
        false,
    );
    assert_eq!(r.map(|r| r.0), Some(Code::ACCESS_REJECT));
    let mut want = vec![unix.name.clone(), said_known];
    want.sort();
    let mut got = server.records();
    got.sort();
    assert_eq!(got, want);
}

/// Issue 19: the server says why it rejects (a Vendor-Specific beside the Reply-Message), so
/// a locked user gets PAM_MAXTRIES in remote mode as locally, on the wrong code that locks
/// and at every login after; a wrong code stays PAM_AUTH_ERR. A Reject after a code used to
/// be taken as a wrong code whatever the server's reason.
#[test]
fn a_locked_user_gets_pam_maxtries_in_remote_mode() {
    let server = Server::start();
    let host = Host::new(&[server.addr()], SECRET);
    let (user, key) = server.user();
    let log = SyslogCapture::new();
    let right = totp(&key, 0);
    let bad = wrong_code(&key);
    // From five addresses: one address alone only locks itself out.
    for i in 1..=4 {
        let rhost = format!("192.0.2.{}", 50 + i);
        let r = pamtester_code(&host.svc.name, &user, Some(&rhost), &bad, Some(&log));
        assert_eq!(r.result, PamResult::AuthErr, "attempt {i}: {r:?}");
        assert!(r.all().contains("Wrong verification code"), "{r:?}");
    }
    let r = pamtester_code(&host.svc.name, &user, Some("192.0.2.55"), &bad, Some(&log));
    assert_eq!(r.result, PamResult::MaxTries, "fifth: {r:?}");
    assert!(r.all().contains("locked until"), "{r:?}");
    // Locked: refused in round one, the right code not even asked for.
    let r = pamtester_code(&host.svc.name, &user, Some("192.0.2.1"), &right, Some(&log));
    assert_eq!(r.result, PamResult::MaxTries, "{r:?}");
    assert!(!r.prompted(), "{r:?}");
    // One address alone locks itself out: PAM_MAXTRIES from it, as locally.
    let (user, key) = server.user();
    let bad = wrong_code(&key);
    let mut results = Vec::new();
    for _ in 0..3 {
        results.push(
            pamtester_code(&host.svc.name, &user, Some("192.0.2.60"), &bad, Some(&log)).result,
        );
    }
    assert_eq!(
        results,
        [PamResult::AuthErr, PamResult::AuthErr, PamResult::MaxTries]
    );
    server
        .daemon
        .wait_log("decision=reject reason=source_locked", 1);
}

/// Issue 18, finding 7: the pending-challenge table's shares are counted by the configured
/// client and the canonical user. A PAM host that names itself anew in every request (its
/// NAS-Identifier) used to get a share per name, fill the whole table for one user, and turn
/// a VPN's challenge into an Access-Reject.
#[test]
fn a_pam_host_naming_itself_anew_cannot_fill_the_challenge_table() {
    let port = free_udp_port();
    let site = Site::with_config(&format!(
        r#"[store]
path = "mfa.db"

[policy]
trusted_networks = ["10.0.0.0/8"]

[audit]
syslog = false

[radius]
listen = ["127.0.0.1:{port}"]
pam_service = "mfa-test"
max_pending_challenges = 16

[[radius.clients]]
name = "pam-hosts"
address = "127.0.0.1"
secret = "{SECRET}"
kind = "pam-hosts"

[[radius.clients]]
name = "vpn"
address = "127.0.0.3"
secret = "{SECRET}"
mode = "challenge"
"#
    ));
    let pam = write_pam(site.path());
    let daemon = spawn_daemon(&site.config, Some(&pam));
    daemon.wait_log("listening on", 1);
    let server = format!("127.0.0.1:{port}");
    let (user, key) = (unique("chl"), fresh_key());
    site.enroll(&user, &key);

    // 40 logins of one user, each from a host that calls itself something new: every one
    // is challenged (the user's oldest challenges give way), none fills the table.
    let mut states = Vec::new();
    for i in 0..40 {
        let r = pam_host_request(
            "127.0.0.1",
            &server,
            SECRET,
            &user,
            &format!("host-{i}"),
            b"",
            None,
        );
        let Some((Code::ACCESS_CHALLENGE, Some(state))) = r else {
            panic!("request {i}: {r:?}\n{}", daemon.log());
        };
        states.push(state);
    }

    // The VPN, another configured client, still gets its challenge.
    let vpn = Relay::bind("127.0.0.3:0", &server);
    let (r, _, _) = vpn.exchange(&attrs(&user, Some(PASSWORD), Some(UNTRUSTED_CSI), true));
    assert!(r.is("Access-Challenge"), "{}\n{}", r.output, daemon.log());

    // The newest challenge is answered by the host that asked for it; one answered under
    // another host's name is refused.
    avoid_step_boundary(3);
    let r = pam_host_request(
        "127.0.0.1",
        &server,
        SECRET,
        &user,
        "host-0",
        totp(&key, 0).as_bytes(),
        Some(&states[38]),
    );
    assert_eq!(r.map(|r| r.0), Some(Code::ACCESS_REJECT));
    let r = pam_host_request(
        "127.0.0.1",
        &server,
        SECRET,
        &user,
        "host-39",
        totp(&key, 0).as_bytes(),
        Some(&states[39]),
    );
    assert_eq!(
        r.map(|r| r.0),
        Some(Code::ACCESS_ACCEPT),
        "{}",
        daemon.log()
    );
    daemon.wait_log("decision=reject reason=state_mismatch", 1);
}

/// Issue 18, finding 10: one secret per PAM host (`secrets_dir`, a file per host named by its
/// address). Each host logs in with its own secret from its own address; a host's secret
/// from another host's address, and any secret from an address without a file, get no
/// answer; the audit names the host by its address. A separate entry per host works too.
#[test]
fn per_host_secrets_are_good_from_their_own_address_only() {
    let port = free_udp_port();
    let secret_a = "host-a-s3cret-0123456789";
    let secret_b = "host-b-s3cret-9876543210";
    let secret_web9 = "web9-own-s3cret-abcdefgh";
    let site = Site::with_config("");
    let hosts = site.path().join("hosts.d");
    std::fs::create_dir(&hosts).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hosts, std::fs::Permissions::from_mode(0o700)).unwrap();
    write_private(&hosts.join("127.0.0.1"), &format!("{secret_a}\n"));
    write_private(&hosts.join("127.0.0.2"), &format!("{secret_b}\n"));
    std::fs::write(
        &site.config,
        format!(
            r#"[store]
path = "mfa.db"

[policy]
trusted_networks = ["10.0.0.0/8"]

[audit]
syslog = false

[radius]
listen = ["127.0.0.1:{port}"]

[[radius.clients]]
name = "pam-hosts"
address = "127.0.0.0/24"
secrets_dir = "hosts.d"
kind = "pam-hosts"

# The form from before `kind`: still PAM hosts, with a warning naming the key.
[[radius.clients]]
name = "web9"
address = "127.0.0.9"
secret = "{secret_web9}"
mode = "challenge"
first_factor = "none"
"#
        ),
    )
    .unwrap();
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(mfa_e2e::code_of(&o), 0, "{}", text(&o));
    let legacy = "radius.clients[1].first_factor: client \"web9\": first_factor = \"none\" in challenge mode is read as kind = \"pam-hosts\"";
    assert!(text(&o).contains(legacy), "{}", text(&o));
    let daemon = spawn_daemon(&site.config, None);
    daemon.wait_log("listening on", 1);
    daemon.wait_log(legacy, 1);
    let server = format!("127.0.0.1:{port}");
    let (user, key) = (unique("phs"), fresh_key());
    site.enroll(&user, &key);
    let log = SyslogCapture::new();

    // Each host with its own secret, from its own address.
    let a = Host::from_source(std::slice::from_ref(&server), secret_a, Some("127.0.0.1"));
    let r = a.login(&user, "10.1.2.3", "", &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}\n{}", daemon.log());
    let b = Host::from_source(std::slice::from_ref(&server), secret_b, Some("127.0.0.2"));
    let r = b.login(&user, "10.1.2.4", "", &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}\n{}", daemon.log());
    avoid_step_boundary(3);
    let r = b.login(&user, "192.0.2.20", &format!("{}\n", totp(&key, 0)), &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}\n{}", daemon.log());
    assert!(r.prompted(), "{r:?}");
    // A separate entry for one host: its own name, its own secret.
    let web9 = Host::from_source(
        std::slice::from_ref(&server),
        secret_web9,
        Some("127.0.0.9"),
    );
    let r = web9.login(&user, "10.1.2.9", "", &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}\n{}", daemon.log());

    // Host A's secret from host B's address: dropped, so no server answers.
    let forged = Host::from_source(std::slice::from_ref(&server), secret_a, Some("127.0.0.2"));
    let r = forged.login(&user, "10.1.2.5", "", &log);
    assert_eq!(r.result, PamResult::AuthInfoUnavail, "{r:?}");
    daemon.wait_log("wrong Message-Authenticator (client \"pam-hosts\"", 1);
    // An address in the entry's range with no file of its own is no client at all.
    let stray = Host::from_source(std::slice::from_ref(&server), secret_a, Some("127.0.0.3"));
    let r = stray.login(&user, "10.1.2.6", "", &log);
    assert_eq!(r.result, PamResult::AuthInfoUnavail, "{r:?}");
    daemon.wait_log("127.0.0.3", 1);
    daemon.wait_log("not a configured RADIUS client", 1);

    // The trail names each host of the fleet by its address (the host name is only what
    // the host says), and the separate entry by its name.
    let out = site.mfactl(&["log", &user, "--format", "csv"]);
    let trail = text(&out);
    for want in [
        format!(
            "pam-hosts@127.0.0.1/{}/{},10.1.2.3,allow,trusted_network",
            host_name(),
            a.svc.name
        ),
        format!(
            "pam-hosts@127.0.0.2/{}/{},10.1.2.4,allow,trusted_network",
            host_name(),
            b.svc.name
        ),
        format!(
            "pam-hosts@127.0.0.2/{}/{},192.0.2.20,allow,valid_code",
            host_name(),
            b.svc.name
        ),
        format!(
            "web9/{}/{},10.1.2.9,allow,trusted_network",
            host_name(),
            web9.svc.name
        ),
    ] {
        assert!(
            trail.contains(&want),
            "{want:?} not in the audit trail:\n{trail}"
        );
    }
    for secret in [secret_a, secret_b, secret_web9] {
        assert!(!daemon.log().contains(secret), "{}", daemon.log());
    }

    // A file not named by an address is refused by name, by config check and at reload.
    write_private(&hosts.join("notes.txt"), "not a secret\n");
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(mfa_e2e::code_of(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("\"notes.txt\" is not named by an IP address"),
        "{}",
        text(&o)
    );
    daemon.signal("HUP");
    daemon.wait_log(
        "reload failed; the previous configuration stays in force",
        1,
    );
    daemon.wait_log("\"notes.txt\" is not named by an IP address", 1);
}

/// Issue 24: the host's view of its servers. Each login's first round records, per server,
/// when it last answered and when it last failed (and why) in `remote-servers` beside the
/// offline queue (root's, 0600); `mfactl status` on the host shows them and which server
/// answered the last login; with every server down it says none did.
#[test]
fn the_hosts_status_shows_how_its_servers_answered() {
    use std::os::unix::fs::MetadataExt;
    let q = tempfile::tempdir().unwrap();
    let queue = q.path().join("queue");
    let mut server = Server::start();
    let dead = down();
    let extra = format!("offline_queue = {:?}\n", queue.display().to_string());
    let host = Host::with(&[dead.clone(), server.addr()], SECRET, None, &extra);
    let state = q.path().join("remote-servers");

    let before = host.mfactl(&["status"]);
    assert!(before.status.success(), "{before:?}");
    assert!(
        text(&before).contains("none recorded yet"),
        "{}",
        text(&before)
    );

    let log = SyslogCapture::new();
    let r = host.login("anyone", "10.1.2.3", "", &log);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    let m = std::fs::metadata(&state).unwrap();
    assert_eq!((m.mode() & 0o777, m.uid()), (0o600, 0));
    let out = host.mfactl(&["status"]);
    assert!(out.status.success(), "{out:?}");
    let t = text(&out);
    assert!(
        t.contains(&format!("answered by {} (in use)", server.addr())),
        "{t}"
    );
    let line = |addr: &str| {
        t.lines()
            .find(|l| l.starts_with(&format!("server {addr}")))
            .unwrap_or_else(|| panic!("no line for {addr} in {t}"))
            .to_string()
    };
    let dead_line = line(&dead);
    assert!(dead_line.contains("last answer never"), "{dead_line}");
    assert!(!dead_line.contains("last failure never"), "{dead_line}");
    assert!(dead_line.contains("refused"), "{dead_line}");
    assert!(t.contains("offline queue: 0 login(s)"), "{t}");
    let up_line = line(&server.addr());
    assert!(up_line.contains("(in use)"), "{up_line}");
    assert!(up_line.contains("last failure never"), "{up_line}");
    assert!(!up_line.contains("last answer never"), "{up_line}");

    // Every server down: no server in use, the one that answered before has both times.
    server.daemon.stop();
    let r = host.login("anyone", "10.1.2.3", "", &log);
    assert_eq!(r.result, PamResult::AuthInfoUnavail, "{r:?}");
    let out = host.mfactl(&["status", "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["in_use"], serde_json::Value::Null, "{j}");
    assert_eq!(j["mode"], "remote", "{j}");
    let servers = j["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{j}");
    assert_eq!(servers[1]["server"], server.addr(), "{j}");
    assert_eq!(servers[1]["in_use"], false, "{j}");
    assert!(servers[1]["last_answer"].is_string(), "{j}");
    assert!(servers[1]["last_failure"].is_string(), "{j}");
    assert!(servers[0]["last_answer"].is_null(), "{j}");
    let t = text(&host.mfactl(&["status"]));
    assert!(t.contains("NO SERVER ANSWERED"), "{t}");
    assert_eq!(j["offline_waiting"], 0, "{j}");

    // A state file others may read is refused by status, naming it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = host.mfactl(&["status"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        text(&out).contains(&state.display().to_string()),
        "{}",
        text(&out)
    );
}

/// Issue 24: `mfactl config check` on a PAM host inspects its offline files as the module
/// would take them: the break-glass file's owner, mode, directory and format (codes left),
/// the queue's; each problem names the path and what is wrong, and fails the check.
#[test]
fn config_check_inspects_the_offline_files() {
    use std::os::unix::fs::PermissionsExt;
    let q = tempfile::tempdir().unwrap();
    let bg = q.path().join("breakglass");
    let queue = q.path().join("spool/queue");
    let o = std::process::Command::new(bin("mfactl"))
        .args(["breakglass", "issue", "web1", "--count", "4", "--out"])
        .arg(&bg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let extra = format!(
        "offline_queue = {:?}\nbreakglass_file = {:?}\n",
        queue.display().to_string(),
        bg.display().to_string()
    );
    let host = Host::with(&[down()], SECRET, None, &extra);
    let check = || {
        let o = host.mfactl(&["config", "check"]);
        (o.status.success(), text(&o))
    };
    let (ok, t) = check();
    assert!(ok, "{t}");
    assert!(t.contains(&format!("4 unused in {}", bg.display())), "{t}");
    assert!(t.contains("not made yet"), "{t}");

    let bad = |t: &str, path: &std::path::Path, what: &str| {
        assert!(
            t.contains(&path.display().to_string()) && t.contains(what),
            "want {what} for {}: {t}",
            path.display()
        );
    };
    // A loose mode.
    std::fs::set_permissions(&bg, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (ok, t) = check();
    assert!(!ok, "{t}");
    bad(&t, &bg, "mode 0640");
    std::fs::set_permissions(&bg, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Another owner.
    std::os::unix::fs::chown(&bg, Some(65534), None).unwrap();
    let (ok, t) = check();
    assert!(!ok, "{t}");
    bad(&t, &bg, "owned by uid 65534");
    std::os::unix::fs::chown(&bg, Some(0), None).unwrap();
    // A line the module cannot read refuses the whole file.
    let issued = std::fs::read_to_string(&bg).unwrap();
    std::fs::write(&bg, format!("{issued}v2 nothex\n")).unwrap();
    let (ok, t) = check();
    assert!(!ok, "{t}");
    bad(&t, &bg, "not a code");
    // No code left.
    std::fs::write(&bg, "# empty\n").unwrap();
    let (ok, t) = check();
    assert!(!ok, "{t}");
    bad(&t, &bg, "no unused code left");
    std::fs::write(&bg, &issued).unwrap();
    // A symbolic link.
    let real = q.path().join("real");
    std::fs::rename(&bg, &real).unwrap();
    std::os::unix::fs::symlink(&real, &bg).unwrap();
    let (ok, t) = check();
    assert!(!ok, "{t}");
    bad(&t, &bg, "symbolic link");
    std::fs::remove_file(&bg).unwrap();
    std::fs::rename(&real, &bg).unwrap();
    // The queue's directory writable by others (not made yet: its directory is checked).
    let spool = q.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (ok, t) = check();
    assert!(!ok, "{t}");
    bad(&t, &spool, "remote.offline_queue");
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o700)).unwrap();
    // A queue with a loose mode.
    std::fs::write(&queue, "").unwrap();
    std::fs::set_permissions(&queue, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, t) = check();
    assert!(!ok, "{t}");
    bad(&t, &queue, "mode 0644");
    std::fs::set_permissions(&queue, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, t) = check();
    assert!(ok, "{t}");
    assert!(t.contains("0 login(s) waiting"), "{t}");
}
