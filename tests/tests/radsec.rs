//! RadSec (RFC 6614) end to end: the real radclient as the gateway sends UDP to the real
//! radsecproxy, which forwards over TLS with its client certificate to mfa-radiusd. The test
//! CAs and certificates are made with the openssl command line; everything is on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mfa_e2e::free_tcp_port;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mfa_e2e::code_of;
use mfa_e2e::radius::*;

/// radclient to radsecproxy (UDP); radsecproxy to the daemon uses "radsec" (RFC 6614 §2.3).
const PROXY_SECRET: &str = "pr0xy-udp-secret";
const GW_NAME: &str = "gw1.example.net";

fn openssl(dir: &Path, args: &[&str]) -> String {
    require_tool("openssl");
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed CA: `{name}.pem`, `{name}.key` in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

/// Serial numbers: each leaf its own, so a CRL revokes one certificate and no other.
static SERIAL: AtomicU32 = AtomicU32::new(1);

/// A leaf certificate signed by `ca`, valid for `san` (e.g. "DNS:gw1.example.net").
fn make_leaf(dir: &Path, ca: &str, name: &str, san: &str) {
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={san}\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            &format!(
                "{}",
                u64::from(std::process::id()) * 1000
                    + u64::from(SERIAL.fetch_add(1, Ordering::Relaxed))
            ),
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

/// The SHA-256 fingerprint as openssl prints it (AA:BB:...).
fn fingerprint(dir: &Path, name: &str) -> String {
    let out = openssl(
        dir,
        &[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            &format!("{name}.pem"),
        ],
    );
    out.trim().rsplit('=').next().unwrap().to_string()
}

/// The PKI of a test: the daemon's CA and certificate, gateway certificates from it, and a
/// gateway certificate with the same name from another CA.
fn make_pki(dir: &Path) {
    make_ca(dir, "ca");
    make_ca(dir, "other-ca");
    make_leaf(dir, "ca", "server", "IP:127.0.0.1,DNS:localhost");
    make_leaf(dir, "ca", "gw1", &format!("DNS:{GW_NAME}"));
    make_leaf(dir, "ca", "gw2", "DNS:gw2.example.net");
    make_leaf(dir, "ca", "stranger", "DNS:stranger.example.net");
    make_leaf(dir, "other-ca", "rogue", &format!("DNS:{GW_NAME}"));
}

/// The daemon's configuration: code-only mode, UDP on `udp`, RadSec on
/// `tls_port`, and `radsec_client` as the RadSec client entry, from 127.0.0.1.
fn site_config(dir: &Path, udp: u16, tls_port: u16, radsec_client: &str) -> String {
    site_config_at(dir, udp, tls_port, "127.0.0.1/32", radsec_client, "")
}

/// [`site_config`] with the entry's `address`, and `more_clients` (whole entries) before
/// `[radius.radsec]`, which comes last so that a test may append keys to it. An entry for
/// gw2's certificate from 127.0.0.2 is always there, so that 127.0.0.2 is some RadSec
/// client's address (others are closed before their handshake).
fn site_config_at(
    dir: &Path,
    udp: u16,
    tls_port: u16,
    address: &str,
    radsec_client: &str,
    more_clients: &str,
) -> String {
    radsec_config(
        dir,
        udp,
        tls_port,
        &format!(
            r#"
[[radius.clients]]
name = "radsecproxy"
address = "{address}"
{radsec_client}

[[radius.clients]]
name = "gw2-elsewhere"
address = "127.0.0.2/32"
certificate_name = "gw2.example.net"
{more_clients}"#
        ),
    )
}

/// The UDP site of [`config_text`], the client entries `clients`, and `[radius.radsec]` last
/// (so that a test may append keys to it) with the PKI of [`make_pki`].
fn radsec_config(dir: &Path, udp: u16, tls_port: u16, clients: &str) -> String {
    let d = dir.display();
    let mut text = config_text("code-only", &format!("\"127.0.0.1:{udp}\""), "", SECRET);
    text.push_str(clients);
    text.push_str(&format!(
        r#"
[radius.radsec]
listen = ["127.0.0.1:{tls_port}"]
certificate = "{d}/server.pem"
key = "{d}/server.key"
ca_file = "{d}/ca.pem"
"#
    ));
    text
}

/// A radsecproxy in the foreground: radclient's UDP in, TLS with `cert` out to the daemon.
/// Killed and reaped on drop.
struct Proxy {
    child: Child,
    log: Arc<Mutex<String>>,
    port: u16,
}

impl Proxy {
    fn start(dir: &Path, cert: &str, tls_port: u16, source: &str) -> Proxy {
        require_tool("radsecproxy");
        let port = free_udp_port();
        let d = dir.display();
        let conf: PathBuf = dir.join(format!("radsecproxy-{cert}-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                r#"ListenUDP 127.0.0.1:{port}
SourceTLS {source}
LogLevel 4
tls default {{
    CACertificateFile {d}/ca.pem
    CertificateFile {d}/{cert}.pem
    CertificateKeyFile {d}/{cert}.key
}}
client radclient {{
    host 127.0.0.1
    type udp
    secret {PROXY_SECRET}
}}
server mfa-radiusd {{
    host 127.0.0.1
    port {tls_port}
    type tls
    tls default
}}
realm * {{
    server mfa-radiusd
    accountingServer mfa-radiusd
}}
"#
            ),
        )
        .unwrap();
        let mut child = Command::new("radsecproxy")
            .arg("-f")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        for out in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let l = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    let mut g = l.lock().unwrap();
                    g.push_str(&line);
                    g.push('\n');
                }
            });
        }
        let p = Proxy { child, log, port };
        // Its UDP socket is bound before its start-up line is logged.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !p.log.lock().unwrap().contains("starting") {
            assert!(
                Instant::now() < deadline,
                "radsecproxy did not start:\n{}",
                p.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        p
    }

    fn send(&self, attrs: &str, timeout: u32) -> Reply {
        radclient(
            &format!("127.0.0.1:{}", self.port),
            PROXY_SECRET,
            "auth",
            attrs,
            timeout,
        )
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn acct(&self, attrs: &str, timeout: u32) -> Reply {
        radclient(
            &format!("127.0.0.1:{}", self.port),
            PROXY_SECRET,
            "acct",
            attrs,
            timeout,
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    daemon: Daemon,
    site: Site,
    udp_port: u16,
    tls_port: u16,
}

fn setup(radsec_client: &str) -> Setup {
    require_tool("radclient");
    let (udp_port, tls_port) = (free_udp_port(), free_tcp_port());
    let site = Site::with_config("");
    // The PKI lives beside the config, in the site's directory (removed with it).
    make_pki(site.path());
    std::fs::write(
        &site.config,
        site_config(site.path(), udp_port, tls_port, radsec_client),
    )
    .unwrap();
    let daemon = spawn_daemon(&site.config, None);
    daemon.wait_log("RadSec (TLS) on", 1);
    Setup {
        daemon,
        site,
        udp_port,
        tls_port,
    }
}

/// Issue 21: accounting travels on the RadSec connection with access (RFC 6614): radclient's
/// Accounting-Request through radsecproxy is answered, and the session is in the audit trail
/// under the RadSec client's name. radsecproxy 1.9 refuses an Accounting-Request that
/// carries a Message-Authenticator (it checks it in another form than radclient computes)
/// and forwards one without: its entry needs `require_message_authenticator = false` for
/// accounting, which over TLS with its certificate checked gives nothing away.
#[test]
fn radsec_carries_accounting_too() {
    let s = setup(&format!(
        "certificate_name = \"{GW_NAME}\"\nrequire_message_authenticator = false"
    ));
    let (user, key) = (unique("rs"), fresh_key());
    s.site.enroll(&user, &key);
    let proxy = Proxy::start(s.site.path(), "gw1", s.tls_port, "127.0.0.1");
    let r = proxy.acct(
        &format!(
            "User-Name = \"{user}\"\nAcct-Status-Type = Start\nAcct-Session-Id = \"rs-1\"\nCalling-Station-Id = \"{UNTRUSTED_CSI}\"\n"
        ),
        5,
    );
    assert!(
        r.is("Accounting-Response"),
        "{}\ndaemon:\n{}\nradsecproxy:\n{}",
        r.output,
        s.daemon.log(),
        proxy.log()
    );
    s.daemon.wait_log(
        &format!("user=\"{user}\" client=\"radsecproxy\" client_ip=198.51.100.7 accounting=start session=\"rs-1\""),
        1,
    );
    let trail = text(&s.site.mfactl(&["log", &user, "--format", "csv"]));
    assert!(
        trail.contains(",radsecproxy,198.51.100.7,session,session_start"),
        "{trail}"
    );
}

#[test]
fn radsec_accepts_a_right_code_once_and_only_from_the_clients_address_and_certificate() {
    let s = setup(&format!("certificate_name = \"{GW_NAME}\""));
    let (user, key) = (unique("rs"), fresh_key());
    s.site.enroll(&user, &key);
    let proxy = Proxy::start(s.site.path(), "gw1", s.tls_port, "127.0.0.1");

    let code = totp(&key, 0);
    let a = attrs(&user, Some(&code), Some(UNTRUSTED_CSI), true);
    let r = proxy.send(&a, 5);
    assert!(
        r.is("Access-Accept"),
        "{}\ndaemon:\n{}\nradsecproxy:\n{}",
        r.output,
        s.daemon.log(),
        proxy.log()
    );
    // The same code again: a replay, refused by the core as over UDP.
    let r = proxy.send(&attrs(&user, Some(&code), Some(UNTRUSTED_CSI), true), 5);
    assert!(r.is("Access-Reject"), "{}", r.output);
    // The daemon logs in blocks: wait for the lines, then look at the whole log.
    s.daemon.wait_log("decision=reject reason=replayed_code", 1);
    let log = s.daemon.log();
    assert!(
        log.contains("RadSec connection 1 from 127.0.0.1:")
            && log.contains("client \"radsecproxy\""),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "user=\"{user}\" client=\"radsecproxy\" client_ip=198.51.100.7 decision=accept"
        )),
        "{log}"
    );
    assert!(!log.contains(&code), "the log holds the code:\n{log}");
    drop(proxy);

    // The RadSec entry is never matched over UDP: straight to the daemon's UDP port from the
    // same address with its secret "radsec", a request gets no answer.
    let (user3, key3) = (unique("rs"), fresh_key());
    s.site.enroll(&user3, &key3);
    let r = radclient(
        &format!("127.0.0.1:{}", s.udp_port),
        "radsec",
        "auth",
        &attrs(&user3, Some(&totp(&key3, 0)), Some(UNTRUSTED_CSI), true),
        2,
    );
    assert!(r.code.is_none(), "{}", r.output);

    // The right certificate from an address the client entry does not hold.
    let proxy = Proxy::start(s.site.path(), "gw1", s.tls_port, "127.0.0.2");
    let (user2, key2) = (unique("rs"), fresh_key());
    s.site.enroll(&user2, &key2);
    let r = proxy.send(
        &attrs(&user2, Some(&totp(&key2, 0)), Some(UNTRUSTED_CSI), true),
        3,
    );
    assert!(!r.is("Access-Accept"), "{}", r.output);
    s.daemon
        .wait_log("127.0.0.2 is not in that client's address", 1);
    drop(proxy);

    // SIGHUP: the client entry now pins gw2's certificate by fingerprint; the next
    // connection with gw2 gets in, one with gw1 no longer does.
    let pin = format!(
        "certificate_sha256 = \"{}\"",
        fingerprint(s.site.path(), "gw2")
    );
    std::fs::write(
        &s.site.config,
        site_config(s.site.path(), s.udp_port, s.tls_port, &pin),
    )
    .unwrap();
    s.daemon.signal("HUP");
    s.daemon.wait_log("configuration reloaded", 1);
    let proxy = Proxy::start(s.site.path(), "gw2", s.tls_port, "127.0.0.1");
    let r = proxy.send(
        &attrs(&user2, Some(&totp(&key2, 0)), Some(UNTRUSTED_CSI), true),
        5,
    );
    assert!(
        r.is("Access-Accept"),
        "{}\ndaemon:\n{}",
        r.output,
        s.daemon.log()
    );
}

#[test]
fn radsec_refuses_a_certificate_from_another_ca_and_one_no_client_names() {
    let s = setup(&format!("certificate_name = \"{GW_NAME}\""));
    let (user, key) = (unique("rs"), fresh_key());
    s.site.enroll(&user, &key);

    // Same name, another CA: refused at the handshake.
    let proxy = Proxy::start(s.site.path(), "rogue", s.tls_port, "127.0.0.1");
    let r = proxy.send(
        &attrs(&user, Some(&totp(&key, 0)), Some(UNTRUSTED_CSI), true),
        3,
    );
    assert!(!r.is("Access-Accept"), "{}", r.output);
    s.daemon
        .wait_log("refused a RadSec connection from 127.0.0.1:", 1);
    s.daemon
        .wait_log("TLS handshake refused: invalid peer certificate", 1);
    assert!(
        s.daemon.log().contains("UnknownIssuer"),
        "{}",
        s.daemon.log()
    );
    drop(proxy);

    // The right CA, but no client entry names this certificate.
    let proxy = Proxy::start(s.site.path(), "stranger", s.tls_port, "127.0.0.1");
    let r = proxy.send(
        &attrs(&user, Some(&totp(&key, 0)), Some(UNTRUSTED_CSI), true),
        3,
    );
    assert!(!r.is("Access-Accept"), "{}", r.output);
    s.daemon.wait_log("matches no RadSec client", 1);
    drop(proxy);

    // Neither attempt reached the core: the user's code is still unspent.
    assert!(!s.daemon.log().contains("decision="), "{}", s.daemon.log());
}

#[test]
fn config_check_and_the_daemon_name_bad_radsec_files() {
    let tls_port = free_tcp_port();
    let site = Site::with_config("");
    make_pki(site.path());
    let good = site_config(
        site.path(),
        free_udp_port(),
        tls_port,
        &format!("certificate_name = \"{GW_NAME}\""),
    );
    std::fs::write(&site.config, &good).unwrap();
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));

    // A missing CA file and an unreadable key: both named with their key and line.
    let bad = good
        .replace("/ca.pem\"", "/no-such-ca.pem\"")
        .replace("/server.key\"", "/no-such.key\"");
    std::fs::write(&site.config, &bad).unwrap();
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("radius.radsec.ca_file: cannot read"), "{out}");
    assert!(out.contains("no-such-ca.pem"), "{out}");
    assert!(out.contains("radius.radsec.key: cannot read"), "{out}");
    let mut d = spawn_daemon(&site.config, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!d.alive(), "the daemon started with a missing CA file");
    d.wait_log("radius.radsec.ca_file", 1);

    // A key that belongs to another certificate: the daemon does not start.
    std::fs::write(&site.config, good.replace("/server.key\"", "/gw1.key\"")).unwrap();
    let mut d = spawn_daemon(&site.config, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !d.alive(),
        "the daemon started with the wrong key:\n{}",
        d.log()
    );
    d.wait_log("radius.radsec.certificate / radius.radsec.key", 1);
}

/// `openssl s_client` with gw1's certificate as a raw RadSec peer: the test writes bytes of
/// its choosing into the TLS connection. Killed on drop.
struct RawTls(Child);

impl RawTls {
    fn connect(dir: &Path, tls_port: u16, bytes: &[u8]) -> RawTls {
        Self::connect_as(dir, tls_port, "gw1", bytes)
    }

    /// With the certificate `cert` (`{cert}.pem`, `{cert}.key` in `dir`).
    fn connect_as(dir: &Path, tls_port: u16, cert: &str, bytes: &[u8]) -> RawTls {
        let d = dir.display();
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-quiet",
                "-connect",
                &format!("127.0.0.1:{tls_port}"),
            ])
            .args([
                "-cert",
                &format!("{d}/{cert}.pem"),
                "-key",
                &format!("{d}/{cert}.key"),
            ])
            .args(["-CAfile", &format!("{d}/ca.pem"), "-verify_return_error"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.as_mut().unwrap().write_all(bytes).unwrap();
        RawTls(child)
    }

    /// Whether s_client has ended (the daemon closed the connection) within `wait`.
    fn ended_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RawTls {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn radsec_sheds_hostile_peers() {
    require_tool("openssl");
    let tls_port = free_tcp_port();
    let site = Site::with_config("");
    make_pki(site.path());
    // Three handshakes at once from one address (max_connections counts verified ones).
    let limits = "idle_timeout = \"2s\"\nmax_connections = 3\nmax_handshakes_per_address = 3\n";
    let text = site_config(
        site.path(),
        free_udp_port(),
        tls_port,
        &format!("certificate_name = \"{GW_NAME}\""),
    ) + limits;
    std::fs::write(&site.config, text).unwrap();
    let daemon = spawn_daemon(&site.config, None);
    daemon.wait_log("RadSec (TLS) on", 1);

    // A Length no RADIUS packet has: the connection is closed at once, nothing buffered.
    let bad = RawTls::connect(site.path(), tls_port, &[1, 7, 0xff, 0xff]);
    daemon.wait_log(
        "RADIUS Length 65535 outside 20..=4096; closing the connection",
        2,
    );
    drop(bad);

    // An authenticated peer that sends no complete request is closed after idle_timeout,
    // though it trickles a partial header.
    let quiet = RawTls::connect(site.path(), tls_port, &[1, 7, 0]);
    daemon.wait_log("closed: no request for 2s", 1);
    drop(quiet);

    // Past max_handshakes_per_address, new connections from that address are closed at
    // once; unauthenticated ones that never start TLS are cut off after the handshake limit.
    let held: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", tls_port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = std::net::TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    use std::io::Read;
    let mut buf = [0u8; 16];
    assert_eq!(
        extra.read(&mut buf).unwrap(),
        0,
        "the extra connection stayed open"
    );
    daemon.wait_log("too many RadSec connections", 1);
    daemon.wait_log("TLS handshake not finished within 2s", 1);
    for mut h in held {
        h.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(matches!(h.read(&mut buf), Ok(0) | Err(_)));
    }
}

/// A bare TCP connection from `source` (a loopback address) to the daemon's RadSec port:
/// not one TLS byte.
fn bare_from(source: &str, tls_port: u16) -> std::net::TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
    s.bind(&src.into()).unwrap();
    let dst: std::net::SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    s.connect(&dst.into()).unwrap();
    s.into()
}

/// Issue 18, finding 6: bare TCP connections (no certificate, no TLS byte) used to take all
/// of max_connections' 256 places and shut every gateway out. Now handshakes have their own
/// budget, per source address and in total (the oldest giving way), apart from verified
/// connections. Every limit at its default.
#[test]
fn radsec_half_open_connections_do_not_keep_a_verified_gateway_out() {
    require_tool("radclient");
    let tls_port = free_tcp_port();
    let site = Site::with_config("");
    make_pki(site.path());
    // gw1's entry holds all of 127.0.0.0/8, so no flood address is turned away before its
    // handshake for being nobody's address.
    let text = site_config_at(
        site.path(),
        free_udp_port(),
        tls_port,
        "127.0.0.0/8",
        &format!("certificate_name = \"{GW_NAME}\""),
        "",
    );
    std::fs::write(&site.config, text).unwrap();
    let daemon = spawn_daemon(&site.config, None);
    daemon.wait_log("RadSec (TLS) on", 1);
    let (user, key) = (unique("rs"), fresh_key());
    site.enroll(&user, &key);

    // 300 bare connections from 127.0.0.1, then 8 from each of 32 other addresses (more
    // handshakes than max_handshakes), all held open.
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(bare_from("127.0.0.1", tls_port));
    }
    for i in 1..=32 {
        for _ in 0..8 {
            held.push(bare_from(&format!("127.0.1.{i}"), tls_port));
        }
    }
    daemon.wait_log(
        "too many RadSec connections from 127.0.0.1 still in their TLS handshake",
        1,
    );

    // A gateway with its certificate, from another address, still gets in, and its user
    // gets the Accept.
    let proxy = Proxy::start(site.path(), "gw1", tls_port, "127.0.0.2");
    let r = proxy.send(
        &attrs(&user, Some(&totp(&key, 0)), Some(UNTRUSTED_CSI), true),
        5,
    );
    assert!(
        r.is("Access-Accept"),
        "{}\ndaemon:\n{}\nradsecproxy:\n{}",
        r.output,
        daemon.log(),
        proxy.log()
    );
    daemon.wait_log("RadSec connection 1 from 127.0.0.2:", 1);
    drop(held);
}

/// Issue 18, finding 6: a handshake has `handshake_timeout`, whatever the peer sends or does
/// not send; a verified connection is not held to it.
#[test]
fn radsec_closes_a_handshake_not_finished_within_handshake_timeout() {
    require_tool("openssl");
    let tls_port = free_tcp_port();
    let site = Site::with_config("");
    make_pki(site.path());
    let text = site_config(
        site.path(),
        free_udp_port(),
        tls_port,
        &format!("certificate_name = \"{GW_NAME}\""),
    ) + "handshake_timeout = \"1s\"\n";
    std::fs::write(&site.config, text).unwrap();
    let daemon = spawn_daemon(&site.config, None);
    daemon.wait_log("RadSec (TLS) on", 1);

    let mut verified = RawTls::connect(site.path(), tls_port, &[]);
    daemon.wait_log("RadSec connection 1 from 127.0.0.1:", 1);
    use std::io::{Read, Write};
    let mut bare = std::net::TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    // A TLS record header and the start of a ClientHello, and then nothing.
    let mut partial = std::net::TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0x80, 0x01])
        .unwrap();
    for (what, s) in [("bare", &mut bare), ("partial", &mut partial)] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("the {what} connection was not closed: {other:?}"),
        }
    }
    daemon.wait_log("TLS handshake not finished within 1s", 1);
    assert!(
        !verified.ended_within(Duration::from_millis(500)),
        "the verified connection was closed:\n{}",
        daemon.log()
    );
    assert!(!daemon.log().contains("closed: "), "{}", daemon.log());
}

/// A CRL from `ca` revoking `cert` (made with `openssl ca`), written to `{ca}.crl`.
fn revoke(dir: &Path, ca: &str, cert: &str) {
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = CA_default\n[CA_default]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\n",
    )
    .unwrap();
    let ca_args = [
        "ca",
        "-config",
        "ca.cnf",
        "-keyfile",
        &format!("{ca}.key"),
        "-cert",
        &format!("{ca}.pem"),
    ];
    openssl(
        dir,
        &[&ca_args[..], &["-revoke", &format!("{cert}.pem")]].concat(),
    );
    openssl(
        dir,
        &[&ca_args[..], &["-gencrl", "-out", &format!("{ca}.crl")]].concat(),
    );
}

/// Issue 18, finding 6: a SIGHUP that removes a client, revokes its certificate or changes
/// its entry closes its open connections; the others stay open.
#[test]
fn radsec_reload_closes_the_connections_of_removed_revoked_and_changed_clients() {
    require_tool("openssl");
    let (udp, tls_port) = (free_udp_port(), free_tcp_port());
    let site = Site::with_config("");
    make_pki(site.path());
    let dir = site.path();
    let gw1 = format!(
        "\n[[radius.clients]]\nname = \"gw1\"\naddress = \"127.0.0.1/32\"\ncertificate_name = \"{GW_NAME}\"\n"
    );
    let gw2 = "\n[[radius.clients]]\nname = \"gw2\"\naddress = \"127.0.0.1/32\"\ncertificate_name = \"gw2.example.net\"\n";
    let stranger = "\n[[radius.clients]]\nname = \"stranger\"\naddress = \"127.0.0.1/32\"\ncertificate_name = \"stranger.example.net\"\n";
    let write = |clients: &str, radsec_more: &str| {
        std::fs::write(
            &site.config,
            radsec_config(dir, udp, tls_port, clients) + radsec_more,
        )
        .unwrap();
    };
    write(&format!("{gw1}{gw2}{stranger}"), "");
    let daemon = spawn_daemon(&site.config, None);
    daemon.wait_log("RadSec (TLS) on", 1);
    // Each connection verified before the next and before the reload: the connection's
    // line ("RadSec connection N from ...: client \"gw1\""), not the start-up warning
    // about the client's short secret, which names it too.
    let mut c1 = RawTls::connect_as(dir, tls_port, "gw1", &[]);
    daemon.wait_log("client \"gw1\"\n", 1);
    let mut c2 = RawTls::connect_as(dir, tls_port, "gw2", &[]);
    daemon.wait_log("client \"gw2\"\n", 1);
    let mut c3 = RawTls::connect_as(dir, tls_port, "stranger", &[]);
    daemon.wait_log("client \"stranger\"\n", 1);
    let closed = |name: &str| {
        format!("(client \"{name}\") closed: the reloaded configuration no longer admits it: ")
    };

    // gw1's entry removed.
    write(&format!("{gw2}{stranger}"), "");
    daemon.signal("HUP");
    daemon.wait_log("configuration reloaded", 1);
    daemon.wait_log(&format!("{}its certificate (SHA-256 ", closed("gw1")), 1);
    assert!(c1.ended_within(Duration::from_secs(10)), "{}", daemon.log());
    assert!(!c2.ended_within(Duration::from_millis(300)));
    assert!(!c3.ended_within(Duration::from_millis(300)));

    // gw2's certificate revoked by a CRL.
    revoke(dir, "ca", "gw2");
    write(
        &format!("{gw2}{stranger}"),
        &format!("crl_file = \"{}/ca.crl\"\n", dir.display()),
    );
    daemon.signal("HUP");
    daemon.wait_log("configuration reloaded", 2);
    daemon.wait_log(
        &format!("{}its certificate no longer passes: ", closed("gw2")),
        1,
    );
    assert!(daemon.log().contains("Revoked"), "{}", daemon.log());
    assert!(c2.ended_within(Duration::from_secs(10)), "{}", daemon.log());
    assert!(!c3.ended_within(Duration::from_millis(300)));

    // The stranger's entry changed (its secret): its connection answers to the old one, so
    // it is closed too, and the client reconnects under the new one.
    write(
        &format!("{gw2}{stranger}secret = \"an0ther-radsec-secret\"\n"),
        &format!("crl_file = \"{}/ca.crl\"\n", dir.display()),
    );
    daemon.signal("HUP");
    daemon.wait_log("configuration reloaded", 3);
    daemon.wait_log(
        &format!("{}client \"stranger\"'s entry changed", closed("stranger")),
        1,
    );
    assert!(c3.ended_within(Duration::from_secs(10)), "{}", daemon.log());
}
