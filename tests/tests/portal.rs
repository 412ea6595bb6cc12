//! mfa-portal in a real browser (Debian's chromium through playwright-core, tests/browser/):
//! enrolment from an invite link, its refusals and its Dutch page; the QR code on the page
//! against `mfactl enroll`'s URI (zbar); "Unlock remote desktop from this network" end to
//! end: a PAM sign-in, then radclient's code-less code-only request from that address,
//! refused elsewhere and after revocation, and a pamtester login from it still asked for the
//! code (an unlock is for code-only gateways by default); "Replace key" in My account.
//! Over plain HTTP(S) (ureq) against the built binary: the TLS listener, the rate limits,
//! oversized fields, the session idle timeout, an account POST without its cookie, and the
//! metrics.

use mfa_e2e::pam;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mfa_e2e::pam::{PamService, UnixUser, pamtester, require_root};
use mfa_e2e::portal::{
    Client, Portal, audit_reasons, has_key, http_site, invite, invite_unused, node, sqlite,
};
use mfa_e2e::radius::{attrs, free_udp_port, radclient, spawn_daemon};
use mfa_e2e::{Site, free_tcp_port, fresh_key, require_tool, text, unique};

const SECRET: &str = "portal-test-secret";

/// `mfactl invite USER`: the first URL of its output.
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
    // The unlock is for the gateways that cannot ask for a code (`[policy] remember_for`,
    // by default "code-only"): a PAM login from that address is asked for the code as from
    // any other (tests/tests/radius_unlock.rs shows remember_for extending it).
    let mfa = PamService::mfa_only(&site.config, "");
    let run = pamtester(&mfa.name, &unix.name, Some("198.51.100.7"), "\n", None);
    assert!(run.prompted(), "not prompted: {}", run.all());
    assert_ne!(run.result, pam::PamResult::Success, "{}", run.all());
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

// ---------------------------------------------------------------------------------------
// Over HTTP(S), without a browser (helpers in portal_support).

#[test]
fn the_tls_listener_serves_https_with_secure_cookies_and_refuses_plain_http() {
    require_tool("openssl");
    let port = free_tcp_port();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    // A throw-away CA, and the portal's certificate for 127.0.0.1 signed by it.
    let ca = dir.path().join("ca.pem");
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl")
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca_args = [
        "-days",
        "2",
        "-subj",
        "/CN=mfa test CA",
        "-keyout",
        "ca.key",
    ];
    openssl(&[&["req", "-x509"][..], &ec, &ca_args, &["-out", "ca.pem"]].concat());
    let leaf_args = [
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ];
    openssl(&[&["req"][..], &ec, &leaf_args].concat());
    std::fs::write(
        dir.path().join("leaf.ext"),
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "2",
        "-extfile", "leaf.ext", "-out", "cert.pem",
    ]);
    let site = Site::new(&format!(
        "\n[portal]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    assert!(site.mfactl(&["init"]).status.success());
    let portal = Portal::start(&site.config, port);
    assert!(
        portal
            .log()
            .contains(&format!("listening on https://127.0.0.1:{port}")),
        "{}",
        portal.log()
    );
    let base = format!("https://127.0.0.1:{port}");
    let mut https = Client::tls(&base, &std::fs::read(&ca).unwrap());
    let r = https.get("/account");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"signin\""));
    let cookie = r.header("set-cookie").join("\n");
    assert!(
        cookie.starts_with("__Host-mfa_session=")
            && cookie.contains("; Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "session cookie: {cookie}"
    );
    assert_eq!(
        r.header("strict-transport-security"),
        ["max-age=31536000"],
        "HSTS over TLS"
    );
    // Without that certificate as the trust root the handshake fails.
    let mut untrusted = Client::new(&base);
    assert!(
        untrusted.try_get("/account").is_err(),
        "an unknown CA was accepted"
    );
    // Plain HTTP to the TLS port gets no page.
    let mut plain = Client::new(&format!("http://127.0.0.1:{port}"));
    match plain.try_get("/account") {
        Err(_) => {}
        Ok(r) => panic!("plain HTTP answered {}: {}", r.status, r.body),
    }
    drop(portal);
}

#[test]
fn rate_limits_per_address_and_per_invite_answer_429_audited_and_keep_the_invite() {
    let (site, portal) = http_site("", "");
    let user = unique("rl");
    let link = invite(&site, &user);
    let path = link.trim_start_matches(&portal.url).to_string();
    // Per invite: ten tries of one link, each from its own address, then the link is
    // refused for a while, even from a new address and with the right code.
    let mut c = Client::new(&portal.url).from("198.51.100.1");
    let page = c.get(&path);
    let (csrf, key) = (page.csrf(), page.key());
    for i in 0..10 {
        c.forwarded = Some(format!("198.51.100.{}", 10 + i));
        let r = c.post(
            &path,
            &[("code", &mfa_e2e::wrong_code(&key)), ("csrf", &csrf)],
        );
        assert_eq!(r.status, 422, "try {i}: {}", r.body);
    }
    c.forwarded = Some("198.51.100.99".into());
    let r = c.post(&path, &[("code", &mfa_e2e::totp(&key, 0)), ("csrf", &csrf)]);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("Too many attempts"), "{}", r.body);
    assert!(invite_unused(&site, &user), "the invite was used");
    assert!(!has_key(&site, &user), "a key was stored");

    // Per address: 30 posts from one address in five minutes, then 429 there only.
    let mut a = Client::new(&portal.url).from("203.0.113.5");
    for i in 0..30 {
        let r = a.post("/account", &[("action", "unlock")]);
        assert_ne!(r.status, 429, "post {i} refused too early");
    }
    let r = a.post("/account", &[("action", "unlock")]);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("Too many attempts"));
    let mut b = Client::new(&portal.url).from("203.0.113.6");
    assert_ne!(b.post("/account", &[("action", "unlock")]).status, 429);
    // An enrolment post from the limited address is refused before anything is read.
    a.cookie = c.cookie.clone();
    let r = a.post(&path, &[("code", &mfa_e2e::totp(&key, 0)), ("csrf", &csrf)]);
    assert_eq!(r.status, 429);
    assert!(invite_unused(&site, &user) && !has_key(&site, &user));

    let log = audit_reasons(&site);
    let limited: Vec<&str> = log.lines().filter(|l| l.contains("rate_limited")).collect();
    assert_eq!(limited.len(), 3, "{log}");
    assert!(limited.iter().any(|l| l.contains("198.51.100.99")), "{log}");
    assert!(limited.iter().any(|l| l.contains("203.0.113.5")), "{log}");
}

#[test]
fn oversized_fields_and_forms_get_a_clear_page_change_nothing_and_are_audited() {
    let (site, portal) = http_site("", "");
    let user = unique("big");
    let link = invite(&site, &user);
    let path = link.trim_start_matches(&portal.url).to_string();
    let mut c = Client::new(&portal.url);
    let page = c.get(&path);
    let (csrf, key) = (page.csrf(), page.key());
    // A code above its limit (16 bytes), even one that starts with the right code.
    let long_code = format!("{}{}", mfa_e2e::totp(&key, 0), "0".repeat(11));
    let r = c.post(&path, &[("code", &long_code), ("csrf", &csrf)]);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("too large") && r.body.contains("Nothing was changed"));
    // A form body above 4 KiB.
    let filler = "x".repeat(5000);
    let r = c.post_raw(&path, &format!("code=123456&csrf={csrf}&pad={filler}"));
    assert_eq!(r.status, 413, "{}", r.body);
    // A user name above its limit at sign-in: refused before PAM or the store see it.
    let mut s = Client::new(&portal.url);
    let csrf_s = s.get("/account").csrf();
    let r = s.post(
        "/account",
        &[
            ("action", "signin"),
            ("user", &"u".repeat(300)),
            ("password", "any"),
            ("code", "123456"),
            ("csrf", &csrf_s),
        ],
    );
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("too large"));
    // Nothing changed: the invite holds, no key, the page shows the same key, and the
    // right code still links it.
    assert!(invite_unused(&site, &user) && !has_key(&site, &user));
    assert_eq!(c.get(&path).key(), key);
    let log = audit_reasons(&site);
    assert_eq!(log.matches("oversized_field").count(), 2, "{log}");
    assert_eq!(log.matches("oversized_form").count(), 1, "{log}");
    let r = c.post(&path, &[("code", &mfa_e2e::totp(&key, 0)), ("csrf", &csrf)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(has_key(&site, &user));
    assert!(!portal.log().contains(&key));
}

#[test]
fn an_idle_session_is_refused_with_the_sign_in_page() {
    let (site, portal) = http_site("session_idle = \"2s\"", "");
    // The portal counts whole seconds: 0.5 s later the session is at most 1 s idle, 2.6 s
    // later at least 2 s.
    let (user, key) = (unique("idle"), fresh_key());
    site.enroll(&user, &key);
    let mut c = Client::new(&portal.url);
    let r = c.sign_in(&user, &mfa_e2e::totp(&key, 0));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains(&format!("<strong id=\"user\">{user}</strong>"))
    );
    assert!(
        r.header("set-cookie").join("").contains("Max-Age=2"),
        "the cookie lasts as long as the session"
    );
    let csrf = r.csrf();
    // Used within the timeout, the session holds (each request counts as use).
    std::thread::sleep(Duration::from_millis(500));
    assert!(c.get("/account").body.contains("id=\"backup-codes\""));
    // Idle longer than the timeout: the sign-in page, and its form posts nothing.
    std::thread::sleep(Duration::from_millis(2600));
    let old_cookie = c.cookie.clone();
    let r = c.get("/account");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("id=\"signin\"") && !r.body.contains("id=\"backup-codes\""));
    c.cookie = old_cookie;
    let r = c.post("/account", &[("action", "backup-codes"), ("csrf", &csrf)]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("Your session has expired"), "{}", r.body);
    let codes = sqlite(
        &site.db(),
        &format!("SELECT count(*) FROM one_time_codes WHERE user = '{user}'"),
    );
    assert_eq!(
        codes.trim(),
        "0",
        "backup codes made from an expired session"
    );
    assert!(audit_reasons(&site).contains("session_missing"));

    // `mfactl config check` names a timeout out of range.
    let bad = Site::new("\n[portal]\nsession_idle = \"0s\"\n");
    let o = bad.mfactl(&["config", "check"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("portal.session_idle"), "{}", text(&o));
}

#[test]
fn an_account_post_without_its_cookie_gets_a_page_and_changes_nothing() {
    let (site, portal) = http_site("", "remember = \"8h\"");
    let (user, key) = (unique("nock"), fresh_key());
    site.enroll(&user, &key);
    let mut c = Client::new(&portal.url).from("198.51.100.20");
    let r = c.sign_in(&user, &mfa_e2e::totp(&key, 0));
    assert_eq!(r.status, 200, "{}", r.body);
    let csrf = r.csrf();
    // The same form, the cookie left off (a browser that blocks it, a forged post).
    c.cookie = None;
    for action in ["unlock", "backup-codes", "replace-start"] {
        let r = c.post("/account", &[("action", action), ("csrf", &csrf)]);
        assert_eq!(r.status, 400, "{action}: {}", r.body);
        assert!(
            r.body.contains("did not send its cookie") && r.body.contains("Nothing was changed"),
            "{}",
            r.body
        );
        assert!(!r.body.contains("id=\"key\""));
    }
    assert!(!text(&site.mfactl(&["unlocks"])).contains("198.51.100.20"));
    let codes = sqlite(
        &site.db(),
        &format!("SELECT count(*) FROM one_time_codes WHERE user = '{user}'"),
    );
    assert_eq!(codes.trim(), "0");
    let log = audit_reasons(&site);
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("session_missing") && l.contains("198.51.100.20"))
            .count(),
        3,
        "{log}"
    );
    drop(portal);
}

/// The value of one sample line of a Prometheus text scrape (`name{labels} value`).
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == series).then(|| v.parse().ok()).flatten()
    })
}

#[test]
fn a_metrics_scrape_counts_pages_enrolments_sign_ins_unlocks_and_limits() {
    let mport = free_tcp_port();
    let (site, portal) = http_site(
        &format!("metrics_listen = \"127.0.0.1:{mport}\""),
        "remember = \"8h\"",
    );
    assert!(portal.log().contains("metrics on"), "{}", portal.log());
    let (alice, akey) = (unique("ma"), fresh_key());
    site.enroll(&alice, &akey);
    let mut c = Client::new(&portal.url).from("198.51.100.30");
    assert_eq!(c.get("/").status, 200);
    assert_eq!(c.get("/style.css").status, 200);
    assert_eq!(c.get("/nothing-here").status, 404);
    // An enrolment through an invite.
    let bob = unique("mb");
    let link = invite(&site, &bob);
    let path = link.trim_start_matches(&portal.url).to_string();
    let page = c.get(&path);
    let r = c.post(
        &path,
        &[
            ("code", &mfa_e2e::totp(&page.key(), 0)),
            ("csrf", &page.csrf()),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // A wrong code, then a sign-in, an unlock.
    let r = c.sign_in(&alice, &mfa_e2e::wrong_code(&akey));
    assert_eq!(r.status, 401);
    let r = c.sign_in(&alice, &mfa_e2e::totp(&akey, 0));
    assert_eq!(r.status, 200, "{}", r.body);
    // The Unlock section says what an unlock lets in ([policy] remember_for, by default the
    // gateways in code-only mode) before the button is pressed.
    assert!(
        r.body.contains("gateways that cannot ask for a code")
            && r.body
                .contains("Every other login still asks for your code"),
        "{}",
        r.body
    );
    let r = c.post("/account", &[("action", "unlock"), ("csrf", &r.csrf())]);
    assert!(r.body.contains("Unlocked."), "{}", r.body);
    // Eleven tries of one invite: the last refused by the invite's limit.
    let carol = unique("mc");
    let link = invite(&site, &carol);
    let path = link.trim_start_matches(&portal.url).to_string();
    let page = c.get(&path);
    let (csrf, key) = (page.csrf(), page.key());
    for _ in 0..11 {
        c.post(
            &path,
            &[("code", &mfa_e2e::wrong_code(&key)), ("csrf", &csrf)],
        );
    }

    let scrape = ureq::get(format!("http://127.0.0.1:{mport}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let want = [
        (
            "mfa_portal_requests_total{page=\"home\",method=\"GET\",status=\"200\"}",
            1.0,
        ),
        (
            "mfa_portal_requests_total{page=\"style\",method=\"GET\",status=\"200\"}",
            1.0,
        ),
        (
            "mfa_portal_requests_total{page=\"other\",method=\"GET\",status=\"404\"}",
            1.0,
        ),
        // Two invite pages shown, one enrolment saved, ten wrong codes, one refused.
        (
            "mfa_portal_requests_total{page=\"enrol\",method=\"GET\",status=\"200\"}",
            2.0,
        ),
        (
            "mfa_portal_requests_total{page=\"enrol\",method=\"POST\",status=\"200\"}",
            1.0,
        ),
        (
            "mfa_portal_requests_total{page=\"enrol\",method=\"POST\",status=\"422\"}",
            10.0,
        ),
        (
            "mfa_portal_requests_total{page=\"enrol\",method=\"POST\",status=\"429\"}",
            1.0,
        ),
        // Two sign-in forms, the refused sign-in, the sign-in, the unlock.
        (
            "mfa_portal_requests_total{page=\"account\",method=\"GET\",status=\"200\"}",
            2.0,
        ),
        (
            "mfa_portal_requests_total{page=\"account\",method=\"POST\",status=\"401\"}",
            1.0,
        ),
        (
            "mfa_portal_requests_total{page=\"account\",method=\"POST\",status=\"200\"}",
            2.0,
        ),
        ("mfa_portal_enrolments_total{outcome=\"invite\"}", 1.0),
        ("mfa_portal_sign_ins_total{outcome=\"wrong_code\"}", 1.0),
        ("mfa_portal_sign_ins_total{outcome=\"ok\"}", 1.0),
        ("mfa_portal_unlocks_total", 1.0),
        ("mfa_portal_rate_limited_total{limit=\"invite\"}", 1.0),
        ("mfa_portal_request_duration_seconds_count", 22.0),
    ];
    for (series, value) in want {
        assert_eq!(
            sample(&scrape, series),
            Some(value),
            "{series} in:\n{scrape}"
        );
    }
    // No token, user name or address in any label.
    let token = link.rsplit('/').next().unwrap();
    for s in [token, alice.as_str(), bob.as_str(), "198.51.100.30"] {
        assert!(!scrape.contains(s), "{s} in the metrics");
    }
    drop(portal);
}

#[test]
fn replacing_the_key_in_my_account_in_a_real_browser() {
    let (site, portal) = http_site("", "");
    let (user, old) = (unique("rk"), fresh_key());
    site.enroll(&user, &old);
    let r = node(
        "replace.mjs",
        &serde_json::json!({
            "url": portal.url, "user": user, "password": "any", "key": old,
            "mfactl": mfa_e2e::bin("mfactl"), "config": site.config,
        }),
    );
    let new = r["key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let auth = |key: &str| {
        let o = site.mfactl(&[
            "auth",
            &user,
            "--ip",
            "198.51.100.41",
            "--code",
            &mfa_e2e::totp(key, 1),
        ]);
        (o.status.success(), text(&o))
    };
    // The old key's next code is a wrong code now (not a replay: that step was never
    // used by the new key); the new key's logs in.
    let (ok, out) = auth(&old);
    assert!(!ok && out.contains("wrong_code"), "old key: {out}");
    let (ok, out) = auth(&new);
    assert!(ok, "new key: {out}");
    let log = audit_reasons(&site);
    for reason in ["self_replaced", "replace_wrong_code", "replace_not_started"] {
        assert!(log.contains(reason), "audit trail lacks {reason}: {log}");
    }
    assert_eq!(log.matches("self_replaced").count(), 1, "{log}");
    // The key left unconfirmed at sign-out was never stored.
    let left = r["left"].as_str().unwrap();
    let (ok, out) = auth(left);
    assert!(!ok, "the abandoned key: {out}");
    let plog = portal.log();
    for s in [new.as_str(), left, old.as_str()] {
        assert!(!plog.contains(s), "a key in the portal log: {plog}");
    }
}

/// My account's sign-in takes the name through the same rule as every front end: a spelling
/// beyond ASCII of an enrolled user's name (fullwidth, circled, mathematical, accented) is a
/// bad user name, refused before the password or the code is looked at, audited as such,
/// and no record is made for it.
#[test]
fn a_sign_in_with_a_spelling_beyond_ascii_is_refused_as_a_bad_name() {
    let (site, portal) = http_site("", "");
    let key = fresh_key();
    site.enroll("alice", &key);
    let mut c = Client::new(&portal.url).from("198.51.100.21");
    for raw in ["ａｌｉｃｅ", "Ⓐlice", "𝐚𝐥𝐢𝐜𝐞", "àlice"] {
        let r = c.sign_in(raw, &mfa_e2e::totp(&key, 0));
        assert_eq!(r.status, 401, "{raw}: {}", r.body);
    }
    let log = audit_reasons(&site);
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("invalid_user_name") && l.contains("198.51.100.21"))
            .count(),
        4,
        "{log}"
    );
    assert!(!log.contains("not_enrolled"), "{log}");
    assert_eq!(sqlite(&site.db(), "SELECT name FROM users").trim(), "alice");
    drop(portal);
}

/// My account's "Last logins" (issue 21): each outcome as a sentence in the page's language
/// ("Allowed: valid code", "Toegestaan: geldige code"), never the stored codes
/// (`allow (valid_code)`), and the times in the server's time zone (here `TZ`
/// Europe/Amsterdam: CET or CEST), not ISO UTC. The words are the console's one table.
#[test]
fn my_accounts_last_logins_are_sentences_in_the_pages_language_and_local_times() {
    require_tool("oathtool");
    let (site, portal) = mfa_e2e::portal::portal_site(&mfa_e2e::portal::SiteSpec {
        tz: Some("Europe/Amsterdam"),
        ..mfa_e2e::portal::SiteSpec::default()
    });
    let user = unique("words");
    let key = fresh_key();
    site.enroll(&user, &key);
    mfa_e2e::avoid_step_boundary(5);
    // A login with the previous step's code (allowed), one with a wrong code (denied).
    let prev = mfa_e2e::totp(&key, -1);
    let wrong = if prev == "000000" { "111111" } else { "000000" };
    for (code, want) in [(prev.as_str(), 0), (wrong, 1)] {
        let o = site.mfactl(&["auth", &user, "--ip", "198.51.100.9", "--code", code]);
        assert_eq!(o.status.code(), Some(want), "{}", text(&o));
    }
    let mut c = Client::new(&portal.url);
    let r = c.sign_in(&user, &mfa_e2e::totp(&key, 0));
    assert!(r.body.contains("id=\"logins\""), "{}", r.body);
    for (lang, allowed, denied, zone) in [
        ("en", "Allowed: valid code", "Denied: wrong code", "Time"),
        (
            "nl",
            "Toegestaan: geldige code",
            "Geweigerd: verkeerde code",
            "Tijd",
        ),
    ] {
        let page = c.get(&format!("/account?lang={lang}"));
        assert_eq!(page.status, 200, "{}", page.body);
        let table = page
            .body
            .split("<table id=\"logins\">")
            .nth(1)
            .and_then(|t| t.split("</table>").next())
            .unwrap_or_else(|| panic!("no logins table: {}", page.body));
        assert!(table.contains(zone), "{lang}: {table}");
        assert!(table.contains(allowed), "{lang}: {table}");
        assert!(table.contains(denied), "{lang}: {table}");
        for raw in ["allow (", "deny (", "valid_code", "wrong_code"] {
            assert!(!page.body.contains(raw), "{lang}: {raw} in {}", page.body);
        }
        // Local times with the zone's abbreviation, not ISO UTC.
        assert!(
            table.contains(" CET<") || table.contains(" CEST<"),
            "{lang}: {table}"
        );
        assert!(
            !table.contains("Z<") && !table.contains("UTC"),
            "{lang}: {table}"
        );
    }
}
