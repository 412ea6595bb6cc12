//! Push approval at a PAM login (issue 20), through the real libpam (pamtester) and the built
//! `libpam_mfa.so`, local and remote mode. The phone is the core's API called from the test
//! (a P-256 key registered with `Push::register_device`, signing each decision), and the
//! portal's sender loop runs beside it (heartbeat, outbox, delivered), so every request is
//! pending-and-sent as in production. Runs as root (CI does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use mfa_e2e::pam::{CODE_PROMPT, PamResult, PamService, require_root};
use mfa_e2e::phone::{
    FakePortal, LivePamtester, OnPhone, Phone, audit_reasons, core_of, push_toml, shown_number,
};
use mfa_e2e::radius::{SECRET, Site as RSite, free_udp_port, spawn_daemon};
use mfa_e2e::{Site, fresh_key, totp, unique};
use pam_mfa::flow::CODE_OR_PUSH_PROMPT;

const RHOST: &str = "192.0.2.10";

/// A site with push on (`extra` in `[push]`), a service with the module alone, an enrolled
/// user with a registered phone, and the portal's sender running.
struct Fx {
    svc: PamService,
    site: Site,
    portal: FakePortal,
    user: String,
    key: String,
    phone: Phone,
}

fn fx(extra: &str) -> Fx {
    require_root("push_pam tests");
    let site = Site::new(&push_toml(extra));
    let svc = PamService::mfa_only(&site.config, "");
    let (user, key) = (unique("pp"), fresh_key());
    site.enroll(&user, &key);
    let phone = Phone::register(&site.config, &user, &key);
    let portal = FakePortal::start(&site.config);
    Fx {
        svc,
        site,
        portal,
        user,
        key,
        phone,
    }
}

impl Fx {
    /// A login that presses Enter at the prompt (then answers `then` to any further one).
    fn enter(&self, then: &str) -> LivePamtester {
        LivePamtester::start(
            &self.svc.name,
            &self.user,
            Some(RHOST),
            &format!("\n{then}"),
            None,
        )
    }

    fn reasons(&self) -> Vec<String> {
        audit_reasons(&self.site.config, &self.user)
    }
}

/// Enter, the number shown, the phone approves with it: PAM_SUCCESS. The request was
/// delivered once, and the login is audited `push_approved`.
#[test]
fn enter_then_approve_with_the_number_shown_gives_pam_success() {
    let f = fx("");
    let mut login = f.enter("");
    let line = login.wait_line("on your phone");
    let number = shown_number(&line).expect("a number is shown");
    assert!((10..=99).contains(&number), "{line}");
    let sent = f.portal.wait_for(&f.user, 1);
    // The payload names the request and what asks, never the number.
    assert!(sent.payload.contains(&sent.id.hex()), "{}", sent.payload);
    assert!(
        sent.payload.contains("\"number_matching\":true"),
        "{}",
        sent.payload
    );
    let d = f.phone.decide(&sent.id, OnPhone::Approve(Some(number)));
    assert_eq!(d.state, mfa_core::PushState::Approved);
    let r = login.finish();
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(r.all().contains(CODE_OR_PUSH_PROMPT), "{r:?}");
    assert_eq!(f.portal.pushes_to(&f.user).len(), 1);
    let reasons = f.reasons();
    assert!(reasons.contains(&"push_approved".into()), "{reasons:?}");
}

/// Deny on the phone, and an approval with another number than the one shown: each
/// PAM_AUTH_ERR, with the reason for the user. A code typed at the same prompt still works.
#[test]
fn deny_and_a_wrong_number_give_pam_auth_err_and_a_typed_code_still_works() {
    let f = fx("");
    let mut login = f.enter("");
    login.wait_line("on your phone");
    let sent = f.portal.wait_for(&f.user, 1);
    f.phone.decide(&sent.id, OnPhone::Deny);
    let r = login.finish();
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(r.all().contains("denied on your phone"), "{r:?}");

    let mut login = f.enter("");
    let number = shown_number(&login.wait_line("on your phone")).unwrap();
    let sent = f.portal.wait_for(&f.user, 2);
    let wrong = if number == 99 { 10 } else { number + 1 };
    let d = f.phone.decide(&sent.id, OnPhone::Approve(Some(wrong)));
    assert!(d.wrong_number, "{d:?}");
    let r = login.finish();
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");

    // The prompt that offers the push takes the code as ever.
    let code = totp(&f.key, 0);
    let login = LivePamtester::start(
        &f.svc.name,
        &f.user,
        Some(RHOST),
        &format!("{code}\n"),
        None,
    );
    let r = login.finish();
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(r.all().contains(CODE_OR_PUSH_PROMPT), "{r:?}");
    assert_eq!(
        f.portal.pushes_to(&f.user).len(),
        2,
        "a typed code sends none"
    );
    let reasons = f.reasons();
    assert_eq!(reasons.last().map(String::as_str), Some("valid_code"));
    assert!(
        reasons.iter().filter(|r| *r == "push_denied").count() >= 3,
        "two phone decisions and their logins: {reasons:?}"
    );
}

/// Nobody decides: the login ends when the request expires ([push] timeout = 10s), with
/// PAM_AUTH_ERR and `push_expired`, and not much later.
#[test]
fn an_undecided_push_expires_with_pam_auth_err() {
    let f = fx("timeout = \"10s\"");
    let started = Instant::now();
    let mut login = f.enter("");
    login.wait_line("on your phone");
    f.portal.wait_for(&f.user, 1);
    let r = login.finish();
    let took = started.elapsed();
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(r.all().contains("expired"), "{r:?}");
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(25),
        "{took:?}"
    );
    assert!(f.reasons().contains(&"push_expired".into()));
}

/// Push fatigue: a second push for the same service while one is pending is refused (the
/// user is told, and asked for the code instead); after "This wasn't me", the next push is
/// blocked, and the code still works.
#[test]
fn a_second_push_while_one_is_pending_is_refused_and_this_wasnt_me_blocks_the_next() {
    let f = fx("");
    let mut first = f.enter("");
    let number = shown_number(&first.wait_line("on your phone")).unwrap();
    let sent = f.portal.wait_for(&f.user, 1);

    // Enter, refused, then an empty code.
    let second = f.enter("\n");
    let r = second.finish();
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(r.all().contains("already waiting on your phone"), "{r:?}");
    assert!(r.all().contains(CODE_PROMPT), "asked for the code: {r:?}");
    assert_eq!(f.portal.pushes_to(&f.user).len(), 1, "no second push");

    // The first one is still good.
    f.phone.decide(&sent.id, OnPhone::Approve(Some(number)));
    assert_eq!(first.finish().result, PamResult::Success);

    // "This wasn't me".
    let mut login = f.enter("");
    login.wait_line("on your phone");
    let sent = f.portal.wait_for(&f.user, 2);
    f.phone.decide(&sent.id, OnPhone::Fraud);
    let r = login.finish();
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(r.all().contains("reported as not yours"), "{r:?}");

    // Blocked: said so, no push sent, the code asked for and good.
    let code = totp(&f.key, 0);
    let login = f.enter(&format!("{code}\n"));
    let r = login.finish();
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(r.all().contains("blocked until"), "{r:?}");
    assert_eq!(f.portal.pushes_to(&f.user).len(), 2);
    let reasons = f.reasons();
    for want in ["push_fraud", "push_blocked", "valid_code"] {
        assert!(reasons.contains(&want.into()), "{want}: {reasons:?}");
    }
}

/// No portal running (no heartbeat): the push is refused at once, never waited for.
#[test]
fn without_a_portal_the_push_is_refused_at_once() {
    require_root("push_pam tests");
    let site = Site::new(&push_toml(""));
    let svc = PamService::mfa_only(&site.config, "");
    let (user, key) = (unique("pp"), fresh_key());
    site.enroll(&user, &key);
    let _phone = Phone::register(&site.config, &user, &key);
    // A heartbeat long gone.
    core_of(&site.config)
        .push("mfa-portal")
        .heartbeat(mfa_core::login::now() - 3600)
        .unwrap();
    let started = Instant::now();
    let r = LivePamtester::start(&svc.name, &user, Some(RHOST), "\n\n", None).finish();
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(r.all().contains("unavailable right now"), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(8));
}

/// Remote mode: a PAM host whose mfa.toml holds `[remote]` alone asks mfa-radiusd, which
/// offers the push (Push-Offered), sends it on the host's Push-Request and shows the number
/// (Push-Number); the host polls until the phone decides. Approve: PAM_SUCCESS; deny:
/// PAM_AUTH_ERR; the audit names the PAM host's login.
#[test]
fn a_pam_host_in_remote_mode_gets_its_push_through_the_daemon() {
    require_root("push_pam tests");
    let port = free_udp_port();
    let server = RSite::with_config(&format!(
        r#"[store]
path = "mfa.db"

[audit]
syslog = false

[radius]
listen = ["127.0.0.1:{port}"]

[[radius.clients]]
name = "pam-hosts"
address = "127.0.0.1/32"
secret = "{SECRET}"
kind = "pam-hosts"
{}"#,
        push_toml("")
    ));
    let daemon = spawn_daemon(&server.config, None);
    daemon.wait_log("listening on", 1);
    let (user, key) = (unique("pr"), fresh_key());
    server.enroll(&user, &key);
    let phone = Phone::register(&server.config, &user, &key);
    let portal = FakePortal::start(&server.config);

    let host = tempfile::tempdir().unwrap();
    let secret_file = host.path().join("remote.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    mfa_e2e::chmod(&secret_file, 0o600);
    let config = host.path().join("mfa.toml");
    std::fs::write(
        &config,
        format!(
            "[remote]\nservers = [\"127.0.0.1:{port}\"]\nsecret_file = \"remote.secret\"\ntimeout = \"2s\"\nretries = 1\noffline_queue = \"offline-queue\"\n"
        ),
    )
    .unwrap();
    let svc = PamService::mfa_only(&config, "");

    let mut login = LivePamtester::start(&svc.name, &user, Some(RHOST), "\n", None);
    let number = shown_number(&login.wait_line("on your phone")).unwrap();
    let sent = portal.wait_for(&user, 1);
    phone.decide(&sent.id, OnPhone::Approve(Some(number)));
    let r = login.finish();
    assert_eq!(r.result, PamResult::Success, "{r:?}\n{}", daemon.log());
    assert!(r.all().contains(CODE_OR_PUSH_PROMPT), "{r:?}");
    daemon.wait_log("reason=push_approved", 1);

    let mut login = LivePamtester::start(&svc.name, &user, Some(RHOST), "\n", None);
    login.wait_line("on your phone");
    let sent = portal.wait_for(&user, 2);
    phone.decide(&sent.id, OnPhone::Deny);
    let r = login.finish();
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(r.all().contains("denied on your phone"), "{r:?}");

    // The push is the server's: its audit names the host's login.
    let events = core_of(&server.config)
        .store()
        .audit(&Default::default())
        .unwrap();
    let approved = events
        .iter()
        .find(|e| e.user == user && e.reason == "push_approved")
        .unwrap();
    assert!(
        approved.service.starts_with("pam-hosts/") && approved.service.ends_with(&svc.name),
        "{approved:?}"
    );
    // And a code typed at the same prompt still works in remote mode.
    let code = totp(&key, 0);
    let r =
        LivePamtester::start(&svc.name, &user, Some(RHOST), &format!("{code}\n"), None).finish();
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert_eq!(portal.pushes_to(&user).len(), 2);
}
