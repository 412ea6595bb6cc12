//! RadSec (RFC 6614) end to end: the real radclient as the gateway sends UDP to the real
//! radsecproxy, which forwards over TLS with its client certificate to mfa-radiusd. The test
//! CAs and certificates are made with the openssl command line; everything is on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod radius_support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mfa_e2e::code_of;
use radius_support::*;

/// radclient to radsecproxy (UDP); radsecproxy to the daemon uses "radsec" (RFC 6614 §2.3).
const PROXY_SECRET: &str = "pr0xy-udp-secret";
const GW_NAME: &str = "gw1.example.net";

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
            &format!("{}", std::process::id()),
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
/// `tls_port`, and `radsec_client` as the RadSec client entry.
fn site_config(dir: &Path, udp: u16, tls_port: u16, radsec_client: &str) -> String {
    let d = dir.display();
    let mut text = config_text("code-only", &format!("\"127.0.0.1:{udp}\""), "", SECRET);
    text.push_str(&format!(
        r#"
[[radius.clients]]
name = "radsecproxy"
address = "127.0.0.1/32"
{radsec_client}

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
                &format!("{d}/gw1.pem"),
                "-key",
                &format!("{d}/gw1.key"),
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
    let limits = "idle_timeout = \"2s\"\nmax_connections = 3\n";
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

    // Past max_connections, new connections are closed at once; unauthenticated ones that
    // never start TLS are cut off after the handshake limit.
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
