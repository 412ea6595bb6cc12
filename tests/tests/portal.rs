//! mfa-portal in a real browser (Debian's chromium through playwright-core, tests/browser/):
//! enrolment from an invite link, its refusals and its Dutch page; the QR code on the page
//! against `mfactl enroll`'s URI (zbar); and "Unlock remote desktop from this network"
//! end to end: a PAM sign-in, then radclient's code-less code-only request and a pamtester
//! login from that address, refused elsewhere and after revocation.

mod pam_support;
mod radius_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mfa_e2e::{Site, fresh_key, require_tool, text, unique};
use pam_support::{PamService, UnixUser, pamtester, require_root};
use radius_support::{attrs, free_udp_port, radclient, spawn_daemon};

const SECRET: &str = "portal-test-secret";

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running mfa-portal; killed and reaped on drop.
struct Portal {
    child: Child,
    log: Arc<Mutex<String>>,
    url: String,
}

impl Portal {
    fn start(config: &Path, port: u16) -> Portal {
        let mut cmd = Command::new(mfa_e2e::bin("mfa-portal"));
        cmd.arg("--config").arg(config);
        let (child, log) = mfa_e2e::spawn_logged(cmd);
        let start = Instant::now();
        while !log.lock().unwrap().contains("listening on") {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mfa-portal did not start: {}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Portal {
            child,
            log,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Runs a script of tests/browser with `args` (JSON); its one JSON line.
fn node(script: &str, args: &serde_json::Value) -> serde_json::Value {
    require_tool("node");
    require_tool("oathtool");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is not installed: run scripts/test.sh as root once"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: scripts/test.sh runs `npm ci` in tests/browser"
    );
    let o = Command::new("node")
        .arg(browser_dir().join(script))
        .arg(args.to_string())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("{script} printed no result: {}", text(&o)));
    assert!(
        o.status.success() && v["ok"] == true,
        "{script} failed: {}",
        text(&o)
    );
    v
}

/// `mfactl invite USER`: the first URL of its output.
fn invite(site: &Site, user: &str) -> String {
    let o = site.mfactl(&["invite", user]);
    assert!(o.status.success(), "invite: {}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let url = out
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no URL in {out:?}"))
        .to_string();
    assert!(
        out.starts_with(&url),
        "the link is the first thing printed: {out:?}"
    );
    url
}

fn sqlite(db: &Path, sql: &str) -> String {
    require_tool("sqlite3");
    let o = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(o.status.success(), "sqlite3: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

fn zbar_svg(svg: &Path) -> String {
    require_tool("rsvg-convert");
    require_tool("zbarimg");
    let png = svg.with_extension("png");
    let o = Command::new("rsvg-convert")
        .arg(svg)
        .arg("-o")
        .arg(&png)
        .output()
        .unwrap();
    assert!(o.status.success(), "rsvg-convert: {}", text(&o));
    let o = Command::new("zbarimg")
        .args(["-q", "--raw"])
        .arg(&png)
        .output()
        .unwrap();
    assert!(o.status.success(), "zbarimg: {}", text(&o));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn enrolment_from_an_invite_in_a_real_browser() {
    let port = free_tcp_port();
    let site = Site::new(&format!(
        "\n[portal]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n"
    ));
    assert!(site.mfactl(&["init"]).status.success());
    let portal = Portal::start(&site.config, port);
    // Names the store has never seen; the third invite expires at once.
    let (alice, bob, carol) = (unique("pa"), unique("pb"), unique("pc"));
    let (link, link2, expired) = (
        invite(&site, &alice),
        invite(&site, &bob),
        invite(&site, &carol),
    );
    assert!(link.starts_with(&format!("{}/enrol/", portal.url)));
    sqlite(
        &site.db(),
        &format!("UPDATE invites SET created = 0, expires = 1 WHERE user = '{carol}'"),
    );
    // The database holds the hash only, never the token.
    let token = link.rsplit('/').next().unwrap();
    let dump = sqlite(&site.db(), ".dump invites");
    assert!(!dump.contains(token), "token stored in the clear");

    let shots = std::env::var_os("MFA_PORTAL_SCREENSHOTS");
    let r = node(
        "enrol.mjs",
        &serde_json::json!({
            "link": link, "link2": link2, "expired": expired,
            "out": site.path(),
            "shots": shots.as_ref().map(|s| s.to_string_lossy().into_owned()),
        }),
    );
    let key = r["key"].as_str().unwrap().to_string();

    // Linked with that key, once: the store has it, the audit trail says so without the token.
    let o = site.mfactl(&[
        "auth",
        &alice,
        "--ip",
        "198.51.100.1",
        "--code",
        &mfa_e2e::totp(&key, 1),
    ]);
    assert!(o.status.success(), "the linked key logs in: {}", text(&o));
    let log = String::from_utf8(site.mfactl(&["log", "--format", "csv"]).stdout).unwrap();
    for reason in [
        "issued",
        "wrong_code",
        "confirmed",
        "used",
        "invite_used",
        "invite_expired",
        "csrf_refused",
    ] {
        assert!(log.contains(reason), "audit trail lacks {reason}: {log}");
    }
    assert!(!log.contains(token), "token in the audit trail");
    // bob's invite survived the refused posts; no key was stored for him.
    assert!(
        sqlite(
            &site.db(),
            &format!("SELECT used IS NULL FROM invites WHERE user = '{bob}'")
        )
        .trim()
            == "1"
    );
    assert_eq!(
        sqlite(
            &site.db(),
            &format!("SELECT count(*) FROM users WHERE name = '{bob}' AND secret IS NOT NULL")
        )
        .trim(),
        "0"
    );

    // The QR code on the page is the URI `mfactl enroll` prints for that user and key.
    let uri = zbar_svg(&site.path().join("qr.svg"));
    let other = Site::new("");
    let o = other.mfactl(&["enroll", &alice, "--secret", &key, "--no-confirm"]);
    assert!(o.status.success(), "{}", text(&o));
    let printed = String::from_utf8(o.stdout).unwrap();
    let mfactl_uri = printed
        .split_whitespace()
        .find(|w| w.starts_with("otpauth://"))
        .unwrap();
    assert_eq!(uri, mfactl_uri);

    // Nothing secret in the portal's log.
    let plog = portal.log();
    for s in [token, key.as_str()] {
        assert!(!plog.contains(s), "the portal log holds a secret: {plog}");
    }
}

#[test]
fn unlock_lets_that_users_code_less_requests_in_from_that_address_only() {
    require_root("a Unix user with a password, and a PAM service in /etc/pam.d");
    require_tool("radclient");
    let (port, rport) = (free_tcp_port(), free_udp_port());
    let home = tempfile::tempdir().unwrap();
    let unix = UnixUser::new(home.path());
    let pw_service = PamService::new(
        &unique("mfa-portal-e2e-"),
        "auth required pam_unix.so\naccount required pam_unix.so\n",
    );
    // No trusted networks: only the unlock can let a code-less request in.
    let site = Site::with_config(&format!(
        r#"[store]
path = "mfa.db"
key_file = "mfa.key"
[totp]
issuer = "Test"
[policy]
remember = "8h"
[audit]
syslog = false
[portal]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
trusted_proxies = ["127.0.0.1"]
pam_service = "{}"
[radius]
listen = ["127.0.0.1:{rport}"]
mode = "code-only"
first_factor = "none"
client_ip_attribute = "Calling-Station-Id"
[[radius.clients]]
name = "rd-gateway"
address = "127.0.0.1/32"
secret = "{SECRET}"
"#,
        pw_service.name
    ));
    let key = fresh_key();
    site.enroll(&unix.name, &key);
    let portal = Portal::start(&site.config, port);
    let daemon = spawn_daemon(&site.config, None);
    daemon.wait_log("listening on", 1);
    let radius = format!("127.0.0.1:{rport}");
    let codeless = |csi: &str| {
        radclient(
            &radius,
            SECRET,
            "auth",
            &attrs(&unix.name, None, Some(csi), true),
            5,
        )
    };
    assert!(
        codeless("198.51.100.7").is("Access-Reject"),
        "no unlock yet"
    );

    // The browser signs in (PAM password, code) behind a trusted proxy that says the user
    // is at 198.51.100.7, and unlocks that address.
    let r = node(
        "account.mjs",
        &serde_json::json!({
            "url": portal.url, "user": unix.name, "password": unix.password,
            "key": key, "forwarded": "198.51.100.7",
        }),
    );
    assert!(
        r["message"].as_str().unwrap().contains("198.51.100.7"),
        "{r}"
    );

    // RD Gateway's code-less code-only request from that address: in, with its own reason.
    let a = codeless("198.51.100.7:3391");
    assert!(a.is("Access-Accept"), "{}", a.output);
    daemon.wait_log("reason=remembered_network", 1);
    // From another address: refused as before.
    assert!(codeless("198.51.100.8").is("Access-Reject"));
    // A PAM login from that address skips the prompt; from another it is asked.
    let mfa = PamService::mfa_only(&site.config, "");
    let run = pamtester(&mfa.name, &unix.name, Some("198.51.100.7"), "", None);
    assert!(!run.prompted(), "prompted: {}", run.all());
    assert_eq!(run.result, pam_support::PamResult::Success, "{}", run.all());
    let other = pamtester(
        &mfa.name,
        &unix.name,
        Some("198.51.100.8"),
        "000000\n",
        None,
    );
    assert!(
        other.prompted(),
        "no prompt from another address: {}",
        other.all()
    );
    // A host name is never looked up as the unlocked address.
    let named = pamtester(&mfa.name, &unix.name, Some("localhost"), "000000\n", None);
    assert!(named.prompted(), "{}", named.all());

    // mfactl lists it, revokes it; then that address is refused too.
    let list = text(&site.mfactl(&["unlocks"]));
    assert!(
        list.contains(&unix.name) && list.contains("198.51.100.7"),
        "{list}"
    );
    let o = site.mfactl(&["unlocks", "revoke", &unix.name, "198.51.100.7"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        codeless("198.51.100.7").is("Access-Reject"),
        "after revocation"
    );
    let log = String::from_utf8(site.mfactl(&["log", "--format", "csv"]).stdout).unwrap();
    for reason in [
        "network_unlocked",
        "remembered_network",
        "network_revoked",
        "wrong_password",
    ] {
        assert!(log.contains(reason), "audit trail lacks {reason}: {log}");
    }
    assert!(!portal.log().contains(&unix.password));
}
