//! Push approval, the portal's side (issue 20), against real peers:
//! - `web-push-testing` (npm) as an independent push service: it checks each push's VAPID
//!   token against the key the subscription was made with and decrypts the payload
//!   (RFC 8291/8292), so what `/get-notifications` returns shows our encryption and
//!   signature right; a subscription made for another VAPID key refuses the push (the login
//!   is denied at once, never allowed); an expired subscription answers 410 and the phone is
//!   removed;
//! - Debian's chromium through playwright-core plays the phone (tests/browser/push.mjs):
//!   registers, gets the push through its service worker (CDP), approves with the number,
//!   denies, types a wrong number, approves from the app's list in Dutch, reports fraud (the
//!   next push is refused as blocked), removes the phone;
//! - over HTTP: the registration's refusals, the decision's refusals (signature, device,
//!   decided once), the pages' scripts and policies, the app's files, English and Dutch, and
//!   a portal that will not start without its VAPID key.
//!
//! Sign-in requests are started through the core as a front end starts them (the
//! `push-request` helper, tests/src/bin/push-request.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use data_encoding::BASE64URL_NOPAD;
use mfa_core::push::testing::PhoneKey;
use mfa_core::push::{PushDecision, VapidKey, decision_message};
use mfa_core::{DeviceId, OpenMode, PushId};
use mfa_e2e::portal::{Client, Portal, Reply, SiteSpec, audit_reasons, node, portal_site};
use mfa_e2e::push::{PushService, push_request, push_site, push_toml, start_request, vapid_public};
use mfa_e2e::{Site, avoid_step_boundary, free_tcp_port, fresh_key, text, totp, unique};

fn json(r: &Reply) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("not JSON ({}): {}", r.status, r.body))
}

fn scrape(port: u16) -> String {
    ureq::get(format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == series).then(|| v.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// A user enrolled and signed in on the portal (password through pam_permit, a code from
/// oathtool).
fn signed_in(site: &Site, portal: &Portal, user: &str) -> (Client, String) {
    let key = fresh_key();
    site.enroll(user, &key);
    avoid_step_boundary(3);
    let mut c = Client::new(&portal.url);
    let r = c.sign_in(user, &totp(&key, 0));
    assert_eq!(r.status, 200, "{}", r.body);
    (c, key)
}

/// The registration page's CSRF token, read from the page as its script reads it.
fn phone_page(c: &mut Client) -> Reply {
    let r = c.get("/account/phone");
    assert_eq!(r.status, 200, "{}", r.body);
    r
}

/// Registers a phone the way the page's script does: the subscription, the name, the
/// approval key (raw point, base64url), the CSRF token.
fn register(c: &mut Client, name: &str, subscription: &str, phone: &PhoneKey) -> Reply {
    let csrf = phone_page(c).csrf();
    c.post(
        "/account/phone",
        &[
            ("csrf", &csrf),
            ("name", name),
            ("subscription", subscription),
            ("public_key", &BASE64URL_NOPAD.encode(&phone.public())),
        ],
    )
}

/// A decision posted as the approval page posts it, signed by `phone` over `signed` (the
/// decision the message names; `sent` is what the form says).
fn post_decision(
    c: &mut Client,
    id: &str,
    device: &str,
    sent: PushDecision,
    signed: PushDecision,
    phone: &PhoneKey,
) -> Reply {
    let (rid, did) = (
        PushId::parse_hex(id).unwrap(),
        DeviceId::parse_hex(device).unwrap(),
    );
    let sig = phone.sign(&decision_message(&rid, &did, signed));
    let (word, number) = match sent {
        PushDecision::Approve { number } => {
            ("approve", number.map_or("-".into(), |n| n.to_string()))
        }
        PushDecision::Deny => ("deny", "-".into()),
        PushDecision::Fraud => ("fraud", "-".into()),
    };
    c.post(
        &format!("/push/{id}"),
        &[
            ("device", device),
            ("decision", word),
            ("number", &number),
            ("signature", &BASE64URL_NOPAD.encode(&sig)),
        ],
    )
}

/// Waits until request `id` reads `state` (the helper's `status`).
fn wait_state(site: &Site, id: &str, state: &str) {
    let start = Instant::now();
    loop {
        let (_, v) = push_request(site, &["status", id]);
        if v["state"] == state {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "request {id} never became {state}: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The audit trail of `user`: each event's reason and detail, one a line.
fn audit_details(site: &Site, user: &str) -> String {
    let q = mfa_core::store::AuditQuery {
        user: Some(user.to_string()),
        since: None,
        limit: None,
    };
    core_of(site)
        .store()
        .audit(&q)
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}\n",
                e.reason.as_str(),
                e.detail.as_deref().unwrap_or("")
            )
        })
        .collect()
}

/// GET `url`: status, headers, body as bytes (the icons are no text).
fn fetch(url: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut r = agent.get(url).call().unwrap();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let status = r.status().as_u16();
    (status, headers, r.body_mut().read_to_vec().unwrap())
}

fn core_of(site: &Site) -> mfa_core::Core {
    let cfg = mfa_config::load(&site.config).unwrap();
    mfa_store_open::open_core(
        Arc::new(cfg),
        OpenMode::Existing,
        "test",
        mfa_core::NameCheck::IfRulesChanged,
    )
    .unwrap()
}

#[test]
fn a_push_reaches_an_independent_push_service_signed_encrypted_and_approves_once() {
    let service = PushService::start();
    let mport = free_tcp_port();
    let (site, portal) = push_site(&service, mport);
    assert!(
        portal.log().contains("delivering push approvals"),
        "{}",
        portal.log()
    );
    let user = unique("pw");
    let (mut c, _) = signed_in(&site, &portal, &user);
    // The registration page hands the site's VAPID key to the script.
    let vapid = vapid_public(&site);
    let page = phone_page(&mut c);
    assert!(
        page.body.contains(&format!("data-vapid=\"{vapid}\"")),
        "{}",
        page.body
    );
    let sub = service.subscribe(&vapid);
    let phone = PhoneKey::generate();
    let r = register(&mut c, "Test phone", &sub.json, &phone);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = json(&r);
    assert_eq!(v["ok"], true, "{v}");
    let device = v["device"].as_str().unwrap().to_string();
    assert!(
        r.header("content-type")
            .iter()
            .any(|t| t.starts_with("application/json")),
        "{:?}",
        r.headers
    );

    // A sign-in request: the portal delivers it; the push service took the VAPID token and
    // decrypted exactly the core's payload, which names the request and never its number.
    let (id, number) = start_request(&site, &user, "sshd", "192.0.2.7");
    let number = number.expect("number matching") as u8;
    let got = service.wait_for(&sub.client_hash, 1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{got:?}");
    let p: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(p["v"], 1);
    assert_eq!(p["id"], id.as_str());
    assert_eq!(p["service"], "sshd");
    assert_eq!(p["client_ip"], "192.0.2.7");
    assert_eq!(p["number_matching"], true);
    assert!(p.get("number").is_none(), "{p}");
    let mut keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "client_ip",
            "created",
            "expires",
            "id",
            "number_matching",
            "service",
            "v"
        ]
    );
    // Marked sent in the store (out of the outbox), still pending. Read from the row: the
    // portal records the delivery just after the push service took it, and a read of the
    // outbox through the core would take the request (`Store::claim_push_outbox`).
    let db = site.dir.path().join("mfa.db");
    let sql = format!("SELECT sent IS NOT NULL FROM push_requests WHERE id = x'{id}'");
    let start = Instant::now();
    while mfa_e2e::portal::sqlite(&db, &sql).trim() != "1" {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "request {id} never marked sent"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_state(&site, &id, "pending");

    // The approval page shows the request, with the number field and its own script.
    let page = c.get(&format!("/push/{id}"));
    assert_eq!(page.status, 200, "{}", page.body);
    for s in [
        "sshd",
        "192.0.2.7",
        "id=\"number\"",
        "<script type=\"module\" src=\"/js/approve.js\"></script>",
    ] {
        assert!(page.body.contains(s), "{s}: {}", page.body);
    }
    assert!(
        !page.body.contains(&format!(">{number}<")),
        "the page never shows the number"
    );

    // Decisions the core refuses, changing nothing: another key's signature, a signature
    // over another decision, an unknown device, a malformed form.
    let other = PhoneKey::generate();
    let approve = PushDecision::Approve {
        number: Some(number),
    };
    let r = post_decision(&mut c, &id, &device, approve, approve, &other);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        json(&r)["message"]
            .as_str()
            .unwrap()
            .contains("could not be verified")
    );
    let r = post_decision(&mut c, &id, &device, approve, PushDecision::Deny, &phone);
    assert_eq!(r.status, 403, "{}", r.body);
    let stranger = DeviceId([7; 16]).hex();
    let r = post_decision(&mut c, &id, &stranger, approve, approve, &phone);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        json(&r)["message"]
            .as_str()
            .unwrap()
            .contains("not registered")
    );
    let r = c.post(
        &format!("/push/{id}"),
        &[("device", &device), ("decision", "maybe")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = c.post(
        &format!("/push/{id}"),
        &[
            ("device", &device),
            ("decision", "approve"),
            ("number", "4x"),
            ("signature", "AA"),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    wait_state(&site, &id, "pending");
    let unknown = PushId([9; 16]).hex();
    let r = post_decision(&mut c, &unknown, &device, approve, approve, &phone);
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(c.get(&format!("/push/{unknown}")).status, 404);
    assert_eq!(c.get("/push/not-an-id").status, 404);

    // The right number, signed: approved, once; the login it stands for is let in once.
    let r = post_decision(&mut c, &id, &device, approve, approve, &phone);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = json(&r);
    assert_eq!(v["state"], "approved", "{v}");
    assert!(
        v["message"].as_str().unwrap().starts_with("Approved"),
        "{v}"
    );
    let r = post_decision(&mut c, &id, &device, approve, approve, &phone);
    assert_eq!(r.status, 409, "decided once: {}", r.body);
    assert_eq!(json(&r)["state"], "approved");
    let (_, v) = push_request(&site, &["verify", &user, "sshd", "192.0.2.7", &id]);
    assert_eq!(v["allowed"], true, "{v}");
    assert_eq!(v["reason"], "push_approved", "{v}");
    let (_, v) = push_request(&site, &["verify", &user, "sshd", "192.0.2.7", &id]);
    assert_eq!(v["reason"], "push_used", "{v}");
    let page = c.get(&format!("/push/{id}"));
    assert!(
        page.body.contains("approved") && !page.body.contains("id=\"approve\""),
        "{}",
        page.body
    );

    // Deny, from the same phone: denied, the login refused.
    let (id2, _) = start_request(&site, &user, "sshd", "192.0.2.7");
    service.wait_for(&sub.client_hash, 2, Duration::from_secs(10));
    let r = post_decision(
        &mut c,
        &id2,
        &device,
        PushDecision::Deny,
        PushDecision::Deny,
        &phone,
    );
    assert_eq!(json(&r)["state"], "denied", "{}", r.body);
    let (_, v) = push_request(&site, &["verify", &user, "sshd", "192.0.2.7", &id2]);
    assert_eq!(v["reason"], "push_denied", "{v}");

    // The metrics: two sent, one approved, one denied, two decision times; the post per
    // phone counted.
    let m = scrape(mport);
    assert_eq!(
        sample(&m, "mfa_portal_pushes_total{outcome=\"sent\"}"),
        2.0,
        "{m}"
    );
    assert_eq!(
        sample(&m, "mfa_portal_pushes_total{outcome=\"approved\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        sample(&m, "mfa_portal_pushes_total{outcome=\"denied\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        sample(&m, "mfa_portal_push_deliveries_total{result=\"sent\"}"),
        2.0,
        "{m}"
    );
    assert_eq!(
        sample(&m, "mfa_portal_push_devices_total{outcome=\"registered\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        sample(&m, "mfa_portal_push_decision_seconds_count"),
        2.0,
        "{m}"
    );
    assert!(m.contains("mfa_portal_requests_total{page=\"push\""), "{m}");

    let log = audit_reasons(&site);
    for reason in [
        "device_registered",
        "push_sent",
        "push_approved",
        "push_denied",
    ] {
        assert!(log.contains(reason), "{reason}: {log}");
    }
    // Neither the endpoint (a capability) nor the subscription's secret in any log.
    let plog = portal.log();
    assert!(!plog.contains(&sub.client_hash), "{plog}");
    assert!(!log.contains(&sub.client_hash), "{log}");
}

#[test]
fn a_push_service_that_refuses_denies_the_login_at_once_and_a_gone_phone_is_removed() {
    let service = PushService::start();
    let mport = free_tcp_port();
    let (site, portal) = push_site(&service, mport);
    let vapid = vapid_public(&site);

    // A subscription made for another VAPID key: the service refuses our token (400), the
    // request is undeliverable at once and the login denied with the reason logged.
    let user = unique("pr");
    let (mut c, _) = signed_in(&site, &portal, &user);
    let foreign = VapidKey::generate().unwrap().public_key_base64url();
    let wrong = service.subscribe(&foreign);
    let r = register(&mut c, "Wrong key", &wrong.json, &PhoneKey::generate());
    assert_eq!(json(&r)["ok"], true, "{}", r.body);
    let (id, _) = start_request(&site, &user, "sshd", "192.0.2.8");
    wait_state(&site, &id, "undeliverable");
    assert!(service.notifications(&wrong.client_hash).is_empty());
    let (_, v) = push_request(&site, &["verify", &user, "sshd", "192.0.2.8", &id]);
    assert_eq!(v["allowed"], false, "{v}");
    assert_eq!(v["reason"], "push_undeliverable", "{v}");
    let log = audit_details(&site, &user);
    assert!(
        log.contains("push_undeliverable") && log.contains("HTTP 400"),
        "{log}"
    );
    assert!(
        !log.contains(&wrong.client_hash),
        "no endpoint in the audit trail: {log}"
    );
    let plog = portal.log();
    assert!(plog.contains("answered HTTP 400"), "{plog}");
    assert!(!plog.contains(&wrong.client_hash), "{plog}");

    // Two phones: one whose subscription expired (410) and one that works. The push goes
    // through; the gone phone is removed (audited device_gone), the other kept.
    let user2 = unique("pg");
    let (mut c2, _) = signed_in(&site, &portal, &user2);
    let gone = service.subscribe(&vapid);
    let kept = service.subscribe(&vapid);
    assert_eq!(
        json(&register(
            &mut c2,
            "Old phone",
            &gone.json,
            &PhoneKey::generate()
        ))["ok"],
        true
    );
    assert_eq!(
        json(&register(
            &mut c2,
            "New phone",
            &kept.json,
            &PhoneKey::generate()
        ))["ok"],
        true
    );
    service.expire(&gone.client_hash);
    let (id2, _) = start_request(&site, &user2, "vpn", "192.0.2.9");
    service.wait_for(&kept.client_hash, 1, Duration::from_secs(10));
    let core = core_of(&site);
    let u2 = core.user_name(&user2).unwrap();
    let start = Instant::now();
    while core.push("test").devices(&u2).unwrap().len() != 1 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the gone phone stays"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = core.push("test").devices(&u2).unwrap();
    assert_eq!(left[0].name, "New phone");
    wait_state(&site, &id2, "pending");
    let o = site.mfactl(&["push", "list", &user2]);
    assert!(
        text(&o).contains("New phone") && !text(&o).contains("Old phone"),
        "{}",
        text(&o)
    );
    assert!(audit_reasons(&site).contains("device_gone"));

    // The only phone gone: removed, and the request undeliverable (denied at once).
    let user3 = unique("pn");
    let (mut c3, _) = signed_in(&site, &portal, &user3);
    let only = service.subscribe(&vapid);
    assert_eq!(
        json(&register(
            &mut c3,
            "Only phone",
            &only.json,
            &PhoneKey::generate()
        ))["ok"],
        true
    );
    service.expire(&only.client_hash);
    let (id3, _) = start_request(&site, &user3, "sshd", "192.0.2.10");
    wait_state(&site, &id3, "undeliverable");
    let o = site.mfactl(&["push", "list", &user3]);
    assert!(text(&o).contains("no phone registered"), "{}", text(&o));
    // My account says so too.
    let r = c3.get("/account");
    assert!(r.body.contains("id=\"phones-none\""), "{}", r.body);

    let m = scrape(mport);
    assert_eq!(
        sample(&m, "mfa_portal_pushes_total{outcome=\"undeliverable\"}"),
        2.0,
        "{m}"
    );
    assert_eq!(
        sample(&m, "mfa_portal_pushes_total{outcome=\"sent\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        sample(&m, "mfa_portal_push_deliveries_total{result=\"failed\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        sample(&m, "mfa_portal_push_deliveries_total{result=\"gone\"}"),
        2.0,
        "{m}"
    );
}

#[test]
fn a_request_left_undecided_expires_and_is_counted() {
    let service = PushService::start();
    let mport = free_tcp_port();
    let push = push_toml(&service, "10s");
    let metrics = format!("metrics_listen = \"127.0.0.1:{mport}\"");
    let (site, portal) = portal_site(&SiteSpec {
        portal: &metrics,
        extra: &push,
        ..SiteSpec::default()
    });
    let user = unique("pe");
    let (mut c, _) = signed_in(&site, &portal, &user);
    let sub = service.subscribe(&vapid_public(&site));
    let phone = PhoneKey::generate();
    let device = json(&register(&mut c, "Phone", &sub.json, &phone))["device"]
        .as_str()
        .unwrap()
        .to_string();
    let (id, number) = start_request(&site, &user, "sshd", "192.0.2.11");
    service.wait_for(&sub.client_hash, 1, Duration::from_secs(10));
    wait_state(&site, &id, "expired");
    // Too late: refused as closed, nothing changed; the login denied as expired.
    let approve = PushDecision::Approve {
        number: number.map(|n| n as u8),
    };
    let r = post_decision(&mut c, &id, &device, approve, approve, &phone);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(json(&r)["state"], "expired");
    let (_, v) = push_request(&site, &["verify", &user, "sshd", "192.0.2.11", &id]);
    assert_eq!(v["reason"], "push_expired", "{v}");
    let start = Instant::now();
    while sample(
        &scrape(mport),
        "mfa_portal_pushes_total{outcome=\"expired\"}",
    ) != 1.0
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            scrape(mport)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn registration_takes_a_signed_in_session_its_csrf_token_and_an_allowed_push_service() {
    let service = PushService::start();
    let (site, portal) = push_site(&service, free_tcp_port());
    let user = unique("pf");
    let (mut c, _) = signed_in(&site, &portal, &user);
    let vapid = vapid_public(&site);
    let sub = service.subscribe(&vapid);
    let key = BASE64URL_NOPAD.encode(&PhoneKey::generate().public());
    let core = core_of(&site);
    let u = core.user_name(&user).unwrap();
    let count = || core.push("test").devices(&u).unwrap().len();

    // Without the CSRF token: refused with a page, audited, nothing registered.
    let r = c.post(
        "/account/phone",
        &[
            ("name", "x"),
            ("subscription", &sub.json),
            ("public_key", &key),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("id=\"message\""), "{}", r.body);
    // Without a session: the sign-in form.
    let mut anon = Client::new(&portal.url);
    assert!(anon.get("/account/phone").body.contains("id=\"signin\""));
    let csrf = phone_page(&mut c).csrf();
    let r = anon.post(
        "/account/phone",
        &[
            ("csrf", &csrf),
            ("name", "x"),
            ("subscription", &sub.json),
            ("public_key", &key),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // A push service not on [push] services, a bad name, a bad key: JSON refusals that
    // say what is wrong, in the page's language.
    let evil = mfa_core::push::testing::subscription_json("https://evil.example/push/1");
    for (fields, status, words) in [
        (
            vec![
                ("name", "x"),
                ("subscription", evil.as_str()),
                ("public_key", key.as_str()),
            ],
            400,
            "push service is not one this system allows",
        ),
        (
            vec![
                ("name", " padded "),
                ("subscription", sub.json.as_str()),
                ("public_key", key.as_str()),
            ],
            400,
            "1 to 64 characters",
        ),
        (
            vec![
                ("name", "x"),
                ("subscription", sub.json.as_str()),
                ("public_key", "AAAA"),
            ],
            400,
            "subscription or key is not valid",
        ),
        (
            vec![
                ("name", "x"),
                ("subscription", sub.json.as_str()),
                ("public_key", "!!"),
            ],
            400,
            "subscription or key is not valid",
        ),
    ] {
        let mut f = fields.clone();
        f.push(("csrf", &csrf));
        let r = c.post("/account/phone", &f);
        assert_eq!(r.status, status, "{}", r.body);
        let m = json(&r)["message"].as_str().unwrap().to_string();
        assert!(m.contains(words), "{m}");
    }
    let r = c.post(
        "/account/phone?lang=nl",
        &[
            ("csrf", &csrf),
            ("name", "x"),
            ("subscription", &evil),
            ("public_key", &key),
        ],
    );
    assert!(
        json(&r)["message"]
            .as_str()
            .unwrap()
            .contains("Er is niets gewijzigd"),
        "{}",
        r.body
    );
    assert_eq!(count(), 0);

    // Registered; the name is shown as text in My account; removed with its button.
    let name = "<b>Alice's</b> phone";
    let r = register(&mut c, name, &sub.json, &PhoneKey::generate());
    assert_eq!(json(&r)["ok"], true, "{}", r.body);
    let device = json(&r)["device"].as_str().unwrap().to_string();
    assert_eq!(count(), 1);
    let acct = c.get("/account");
    assert!(
        acct.body.contains("&lt;b&gt;Alice&#39;s&lt;/b&gt; phone"),
        "{}",
        acct.body
    );
    assert!(!acct.body.contains("<b>Alice"), "{}", acct.body);
    assert!(
        acct.body.contains(&format!("id=\"remove-{device}\"")),
        "{}",
        acct.body
    );
    // The same phone again replaces itself.
    assert_eq!(
        json(&register(
            &mut c,
            "Renamed",
            &sub.json,
            &PhoneKey::generate()
        ))["ok"],
        true
    );
    assert_eq!(count(), 1);
    let device = core.push("test").devices(&u).unwrap()[0].id.hex();
    // Removing needs the CSRF token and names a device of this user.
    let r = c.post(
        "/account",
        &[("action", "device-remove"), ("device", &device)],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let csrf = c.get("/account").csrf();
    let r = c.post(
        "/account",
        &[
            ("action", "device-remove"),
            ("device", "zz"),
            ("csrf", &csrf),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(count(), 1);
    let r = c.post(
        "/account",
        &[
            ("action", "device-remove"),
            ("device", &device),
            ("csrf", &csrf),
        ],
    );
    assert!(r.body.contains("The phone was removed"), "{}", r.body);
    assert_eq!(count(), 0);
    let r = c.post(
        "/account",
        &[
            ("action", "device-remove"),
            ("device", &device),
            ("csrf", &csrf),
        ],
    );
    assert!(r.body.contains("removed already"), "{}", r.body);
    let log = audit_reasons(&site);
    assert!(
        log.contains("device_registered") && log.contains("device_removed"),
        "{log}"
    );
    assert!(log.contains("csrf_refused"), "{log}");

    // A new key (an administrator's unlink and re-enrolment) ends the session: the
    // registration is refused with the sign-in form, and nothing is registered.
    let csrf = phone_page(&mut c).csrf();
    assert!(site.mfactl(&["unlink", &user]).status.success());
    site.enroll(&user, &fresh_key());
    let r = c.post(
        "/account/phone",
        &[
            ("csrf", &csrf),
            ("name", "x"),
            ("subscription", &sub.json),
            ("public_key", &key),
        ],
    );
    assert!(r.body.contains("id=\"signin\""), "{}", r.body);
    assert_eq!(count(), 0);
}

/// Every page but the two push pages is script-free under a policy that allows none; the
/// push pages load their own script from the site and nothing inline; the app's files come
/// with their types.
#[test]
fn scripts_only_where_push_needs_them_and_the_app_files_with_their_types() {
    let service = PushService::start();
    let (site, portal) = push_site(&service, free_tcp_port());
    let user = unique("ps");
    let (mut c, _) = signed_in(&site, &portal, &user);
    let csp = |r: &Reply| r.header("content-security-policy").join(";");
    let link = mfa_e2e::portal::invite(&site, &unique("pi"));
    let invite_path = link.trim_start_matches(&portal.url).to_string();
    let mut anon = Client::new(&portal.url);
    for (signed, path) in [
        (false, "/"),
        (false, "/account"),
        (false, invite_path.as_str()),
        (false, "/no-such-page"),
        (true, "/account"),
    ] {
        let r = if signed { c.get(path) } else { anon.get(path) };
        assert!(!r.body.contains("<script"), "{path}: {}", r.body);
        let p = csp(&r);
        assert!(
            p.starts_with("default-src 'none'") && !p.contains("script-src"),
            "{path}: {p}"
        );
        assert!(r.body.contains("<link rel=\"manifest\""), "{path}");
    }
    let sub = service.subscribe(&vapid_public(&site));
    assert_eq!(
        json(&register(&mut c, "P", &sub.json, &PhoneKey::generate()))["ok"],
        true
    );
    let (id, _) = start_request(&site, &user, "sshd", "192.0.2.12");
    let approval = format!("/push/{id}");
    for (path, script) in [
        ("/account/phone", "/js/register.js"),
        (approval.as_str(), "/js/approve.js"),
        ("/push", "/js/approve.js"),
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let p = csp(&r);
        assert!(
            p.contains("script-src 'self'") && !p.contains("unsafe"),
            "{path}: {p}"
        );
        assert_eq!(r.body.matches("<script").count(), 1, "{path}: {}", r.body);
        assert!(
            r.body.contains(&format!(
                "<script type=\"module\" src=\"{script}\"></script>"
            )),
            "{path}: {}",
            r.body
        );
        assert_eq!(r.header("cache-control"), ["no-store"], "{path}");
    }
    for (path, ctype) in [
        ("/manifest.webmanifest", "application/manifest+json"),
        ("/sw.js", "text/javascript; charset=utf-8"),
        ("/js/device.js", "text/javascript; charset=utf-8"),
        ("/js/register.js", "text/javascript; charset=utf-8"),
        ("/js/approve.js", "text/javascript; charset=utf-8"),
        ("/icon.svg", "image/svg+xml"),
        ("/icon-192.png", "image/png"),
        ("/icon-512.png", "image/png"),
    ] {
        let (status, headers, body) = fetch(&format!("{}{path}", portal.url));
        let h = |name: &str| {
            headers
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(status, 200, "{path}");
        assert_eq!(h("content-type"), [ctype], "{path}");
        assert_eq!(h("x-content-type-options"), ["nosniff"], "{path}");
        assert!(
            h("content-security-policy")[0].starts_with("default-src 'none'"),
            "{path}"
        );
        if ctype == "image/png" {
            assert!(body.starts_with(b"\x89PNG"), "{path}");
        }
    }
    assert_eq!(anon.get("/js/other.js").status, 404);
    let m: serde_json::Value =
        serde_json::from_str(&anon.get("/manifest.webmanifest").body).unwrap();
    assert_eq!(m["display"], "standalone");
    assert_eq!(m["start_url"], "/push?lang=en");
    assert_eq!(m["scope"], "/");
    assert!(
        m["icons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["sizes"] == "512x512")
    );
    let nl: serde_json::Value =
        serde_json::from_str(&anon.get("/manifest.webmanifest?lang=nl").body).unwrap();
    assert_eq!(nl["name"], "MFA-aanmeldgoedkeuring");
    let sw = anon.get("/sw.js").body;
    assert!(
        sw.contains("\"nl\":{")
            && sw.contains("Aanmelding goedkeuren?")
            && !sw.contains("__TEXT__"),
        "{sw}"
    );

    // English and Dutch: the push pages.
    let en = c.get(&format!("/push/{id}?lang=en")).body;
    let nl = c.get(&format!("/push/{id}?lang=nl")).body;
    for (page, words) in [
        (
            &en,
            [
                "Sign-in request",
                "Approve",
                "Deny",
                "This wasn&#39;t me",
                "Number shown on the sign-in screen",
            ],
        ),
        (
            &nl,
            [
                "Aanmeldverzoek",
                "Goedkeuren",
                "Weigeren",
                "Dit was ik niet",
                "Getal op het aanmeldscherm",
            ],
        ),
    ] {
        for w in words {
            assert!(page.contains(w), "{w}: {page}");
        }
    }
    let phone_nl = c.get("/account/phone?lang=nl").body;
    assert!(
        phone_nl.contains("Deze telefoon gebruiken om aanmeldingen goed te keuren"),
        "{phone_nl}"
    );
    let acct_nl = c.get("/account?lang=nl").body;
    assert!(
        acct_nl.contains("Telefoons die aanmeldingen goedkeuren"),
        "{acct_nl}"
    );
}

#[test]
fn without_push_the_pages_are_off_and_without_its_key_the_portal_does_not_start() {
    // Push off: no phones section, the push pages say it is off, no delivery.
    let (site, portal) = portal_site(&SiteSpec::default());
    let user = unique("po");
    let (mut c, _) = signed_in(&site, &portal, &user);
    assert!(!c.get("/account").body.contains("phone-register"));
    for path in [
        "/account/phone",
        "/push",
        "/push/00112233445566778899aabbccddeeff",
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert!(r.body.contains("turned off"), "{path}: {}", r.body);
    }
    assert!(
        !portal.log().contains("delivering push"),
        "{}",
        portal.log()
    );
    drop(portal);

    // Push on, the VAPID key file missing: the portal refuses to start, naming it.
    let port = free_tcp_port();
    let other = Site::with_config(&format!(
        "[store]\npath = \"mfa.db\"\nkey_file = \"mfa.key\"\n[audit]\nsyslog = false\n[portal]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n[push]\nenabled = true\nvapid_key_file = \"vapid.key\"\n"
    ));
    assert!(other.mfactl(&["init"]).status.success());
    std::fs::remove_file(other.path().join("vapid.key")).unwrap();
    let o = std::process::Command::new(mfa_e2e::bin("mfa-portal"))
        .arg("--config")
        .arg(&other.config)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("vapid_key_file") && text(&o).contains("mfactl init"),
        "{}",
        text(&o)
    );
}

/// On PostgreSQL the portal hears of a request another process wrote (NOTIFY mfa_push) and
/// delivers it; the decision taken through the portal is what that process's login reads.
#[test]
fn on_postgresql_a_request_written_elsewhere_is_delivered_and_approved_through_the_portal() {
    let pg = mfa_e2e::PgCluster::start();
    let db = pg.create_db();
    let service = PushService::start();
    let store = pg.store_toml(&db);
    let push = push_toml(&service, "60s");
    let (site, portal) = portal_site(&SiteSpec {
        store: Some(&store),
        extra: &push,
        ..SiteSpec::default()
    });
    let user = unique("pq");
    let (mut c, _) = signed_in(&site, &portal, &user);
    let sub = service.subscribe(&vapid_public(&site));
    let phone = PhoneKey::generate();
    let r = register(&mut c, "Phone", &sub.json, &phone);
    let device = json(&r)["device"].as_str().unwrap().to_string();
    // Written by another process on the database (as a daemon on another node would).
    let (id, number) = start_request(&site, &user, "vpn", "192.0.2.20");
    let got = service.wait_for(&sub.client_hash, 1, Duration::from_secs(10));
    let p: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(p["id"], id.as_str());
    let approve = PushDecision::Approve {
        number: number.map(|n| n as u8),
    };
    let r = post_decision(&mut c, &id, &device, approve, approve, &phone);
    assert_eq!(json(&r)["state"], "approved", "{}", r.body);
    let (_, v) = push_request(&site, &["verify", &user, "vpn", "192.0.2.20", &id]);
    assert_eq!(v["reason"], "push_approved", "{v}");
}

/// The whole flow with chromium playing the phone (tests/browser/push.mjs). With
/// MFA_PORTAL_SCREENSHOTS=DIR it writes the phone-sized screenshots of docs/ there.
#[test]
fn a_real_browser_registers_a_phone_and_approves_denies_and_reports_fraud() {
    let service = PushService::start();
    let (site, portal) = push_site(&service, free_tcp_port());
    let user = unique("pb");
    let key = fresh_key();
    site.enroll(&user, &key);
    avoid_step_boundary(5);
    let shots = std::env::var_os("MFA_PORTAL_SCREENSHOTS");
    let r = node(
        "push.mjs",
        &serde_json::json!({
            "url": portal.url,
            "api": format!("http://127.0.0.1:{}", service.port),
            "vapid": vapid_public(&site),
            "user": user,
            "key": key,
            "helper": mfa_e2e::bin("push-request"),
            "config": site.config,
            "shots": shots.as_ref().map(|s| s.to_string_lossy().into_owned()),
        }),
    );
    // What the browser did is in the store and the audit trail.
    let log = String::from_utf8(site.mfactl(&["log", &user]).stdout).unwrap();
    for reason in [
        "device_registered",
        "push_sent",
        "push_approved",
        "push_denied",
        "push_fraud",
        "push_blocked",
        "device_removed",
    ] {
        assert!(log.contains(reason), "{reason}: {log}");
    }
    let o = site.mfactl(&["push", "list", &user]);
    assert!(text(&o).contains("blocked until"), "{}", text(&o));
    assert!(text(&o).contains("no phone registered"), "{}", text(&o));
    let hash = r["clientHash"].as_str().unwrap();
    assert!(!portal.log().contains(hash), "{}", portal.log());
    assert_eq!(
        service.notifications(hash).len(),
        5,
        "five pushes delivered"
    );
}

/// Issue 25: on SQLite the portal learns of a request written by another process (the
/// `push-request` helper, as the PAM module or mfa-radiusd writes one) at its commit, through
/// the wake-up socket beside the store, not at its next look at the outbox. That look is set
/// a minute away here (`[push] outbox_poll = "60s"`), so each push arriving within the
/// test's usual wait shows the wake-up did it: before, the portal only polled.
#[test]
fn on_sqlite_a_request_from_another_process_is_delivered_without_waiting_for_the_poll() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let service = PushService::start();
    let mport = free_tcp_port();
    let push = format!("{}outbox_poll = \"60s\"\n", push_toml(&service, "60s"));
    let metrics = format!("metrics_listen = \"127.0.0.1:{mport}\"");
    let (site, portal) = portal_site(&SiteSpec {
        portal: &metrics,
        extra: &push,
        ..SiteSpec::default()
    });
    // The portal's socket, beside the store, only its owner's.
    let sock = site.dir.path().join("mfa.db-push");
    let start = Instant::now();
    while !sock.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no wake-up socket: {}",
            portal.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let user = unique("wk");
    let (mut c, _) = signed_in(&site, &portal, &user);
    let sub = service.subscribe(&vapid_public(&site));
    let r = register(&mut c, "Test phone", &sub.json, &PhoneKey::generate());
    assert_eq!(r.status, 200, "{}", r.body);
    // One request after the other, each pushed well before the poll would have looked.
    for (n, svc) in ["sshd", "sudo", "login"].into_iter().enumerate() {
        let (id, _) = start_request(&site, &user, svc, "192.0.2.7");
        let got = service.wait_for(&sub.client_hash, n + 1, Duration::from_secs(20));
        assert_eq!(got.len(), n + 1, "request {id} ({svc}) not pushed: {got:?}");
        let p: serde_json::Value = serde_json::from_str(&got[n]).unwrap();
        assert_eq!(p["id"], id.as_str());
    }
}
