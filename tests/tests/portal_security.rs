//! The portal's defences of issue 18, against the built binary over loopback: a session
//! ends with the key it signed in with (an unlink and a new enrolment, a lock, its absolute
//! lifetime) and "Replace key" can end the old key's codes and unlocks; every refusal of the
//! sign-in form takes the same time (real PAM: pam_unix and a Unix user), with rate limits
//! per user and per IPv6 /64; floods of anonymous pages and of unfinished requests leave a
//! legitimate visitor served; `public_url = "https://..."` behind a proxy gives a `Secure`
//! `__Host-` cookie and HSTS.

use mfa_e2e::portal;
use std::io::Write;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use mfa_e2e::pam::{PamService, UnixUser, require_root};
use mfa_e2e::portal::{
    Client, Portal, SiteSpec, audit_reasons, closed_by, connect_from, has_key, http_site,
    portal_site, raw_get, sqlite,
};
use mfa_e2e::{fresh_key, printed_codes, text, unique};

/// The portal's answer to a refused sign-in comes no earlier than this after the request.
const FLOOR: Duration = Duration::from_secs(2);

/// The salts of the user's one-time codes: a new set of backup codes changes them.
fn code_salts(site: &mfa_e2e::Site, user: &str) -> String {
    sqlite(
        &site.db(),
        &format!("SELECT group_concat(hex(salt)) FROM one_time_codes WHERE user = '{user}'"),
    )
}

fn count_codes(site: &mfa_e2e::Site, user: &str) -> usize {
    sqlite(
        &site.db(),
        &format!("SELECT count(*) FROM one_time_codes WHERE user = '{user}'"),
    )
    .trim()
    .parse()
    .unwrap()
}

/// A session's answer once its sign-in no longer holds: the sign-in form, saying so.
fn assert_ended(r: &portal::Reply, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.body);
    assert!(
        r.body.contains("id=\"signin\"") && r.body.contains("You were signed out"),
        "{what}: {}",
        r.body
    );
    assert!(
        !r.body.contains("id=\"backup-codes\""),
        "{what}: {}",
        r.body
    );
}

/// `mfactl auth USER --code CODE` from an untrusted address: whether it let the user in.
fn auth_ok(site: &mfa_e2e::Site, user: &str, key: &str) -> bool {
    let o = site.mfactl(&[
        "auth",
        user,
        "--ip",
        "198.51.100.200",
        "--code",
        &mfa_e2e::totp(key, 1),
    ]);
    o.status.success()
}

#[test]
fn a_session_from_before_an_unlink_and_a_new_enrolment_can_do_nothing() {
    let (site, portal) = http_site("", "remember = \"8h\"");
    let (user, old) = (unique("stale"), fresh_key());
    site.enroll(&user, &old);
    // Four sessions, each signed in with the old key (a backup code each: a TOTP code
    // signs in once).
    let o = site.mfactl(&["backup-codes", &user, "--count", "4"]);
    assert!(o.status.success(), "{}", text(&o));
    let codes = printed_codes(&String::from_utf8(o.stdout).unwrap());
    let mut sessions: Vec<Client> = codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let mut c = Client::new(&portal.url).from(&format!("198.51.100.{}", 60 + i));
            let r = c.sign_in(&user, code);
            assert_eq!(r.status, 200, "sign-in {i}: {}", r.body);
            c
        })
        .collect();
    // The last one has a new key waiting for its confirmation.
    let start = {
        let c = &mut sessions[3];
        let csrf = c.get("/account").csrf();
        c.post("/account", &[("action", "replace-start"), ("csrf", &csrf)])
    };
    let waiting = start.key();
    let csrfs: Vec<String> = sessions
        .iter_mut()
        .map(|c| c.get("/account").csrf())
        .collect();

    // The administrator removes the key and enrols a new one.
    let o = site.mfactl(&["unlink", &user]);
    assert!(o.status.success(), "{}", text(&o));
    let new = fresh_key();
    site.enroll(&user, &new);
    let salts = code_salts(&site, &user);

    // The account page is not shown any more.
    assert_ended(&sessions[0].get("/account"), "the account page");
    // No backup codes.
    let r = sessions[1].post(
        "/account",
        &[("action", "backup-codes"), ("csrf", &csrfs[1])],
    );
    assert_ended(&r, "backup codes");
    assert!(!r.body.contains("backup-codes\" class"), "{}", r.body);
    assert_eq!(code_salts(&site, &user), salts, "a new set of backup codes");
    // No unlock.
    let r = sessions[2].post("/account", &[("action", "unlock"), ("csrf", &csrfs[2])]);
    assert_ended(&r, "unlock");
    assert!(!text(&site.mfactl(&["unlocks"])).contains("198.51.100.62"));
    // The key shown before does not replace the new one, even with its right code.
    let r = sessions[3].post(
        "/account",
        &[
            ("action", "replace-confirm"),
            ("code", &mfa_e2e::totp(&waiting, 0)),
            ("csrf", &csrfs[3]),
        ],
    );
    assert_ended(&r, "replace key");
    // A sign-in with the new key works as before; the key shown before opens nothing.
    let mut fresh = Client::new(&portal.url).from("198.51.100.70");
    assert_eq!(fresh.sign_in(&user, &mfa_e2e::totp(&new, 0)).status, 200);
    assert!(auth_ok(&site, &user, &new), "the new key was replaced");
    assert!(!auth_ok(&site, &user, &waiting));
    // Each session is gone for good: its cookie is refused from now on.
    let r = sessions[1].post(
        "/account",
        &[("action", "backup-codes"), ("csrf", &csrfs[1])],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(code_salts(&site, &user), salts);
    let log = audit_reasons(&site);
    assert_eq!(log.matches("session_ended").count(), 4, "{log}");
    assert!(!log.contains("self_replaced"), "{log}");
}

#[test]
fn a_lock_ends_the_session_and_a_replacement_does_not_clear_it() {
    let (site, portal) = http_site("", "");
    let (user, key) = (unique("lock"), fresh_key());
    site.enroll(&user, &key);
    let mut c = Client::new(&portal.url).from("198.51.100.80");
    let r = c.sign_in(&user, &mfa_e2e::totp(&key, 0));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c.post(
        "/account",
        &[("action", "replace-start"), ("csrf", &r.csrf())],
    );
    let (waiting, csrf) = (r.key(), r.csrf());
    // Locked meanwhile (wrong codes elsewhere, as the lockout counters lock a user).
    let until = mfa_e2e::unix_now() + 3600;
    sqlite(
        &site.db(),
        &format!("UPDATE users SET locked_until = {until}, failures = 5 WHERE name = '{user}'"),
    );
    let r = c.post(
        "/account",
        &[
            ("action", "replace-confirm"),
            ("code", &mfa_e2e::totp(&waiting, 0)),
            ("csrf", &csrf),
        ],
    );
    assert_ended(&r, "replace key while locked");
    assert_eq!(
        sqlite(
            &site.db(),
            &format!("SELECT locked_until FROM users WHERE name = '{user}'")
        )
        .trim(),
        until.to_string(),
        "the lock was cleared"
    );
    sqlite(
        &site.db(),
        &format!("UPDATE users SET locked_until = NULL, failures = 0 WHERE name = '{user}'"),
    );
    assert!(auth_ok(&site, &user, &key), "the key was replaced");
}

#[test]
fn a_session_ends_after_its_lifetime_however_busy() {
    let (site, portal) = http_site("session_lifetime = \"3s\"", "");
    let (user, key) = (unique("life"), fresh_key());
    site.enroll(&user, &key);
    let mut c = Client::new(&portal.url);
    let signed_in = Instant::now();
    assert_eq!(c.sign_in(&user, &mfa_e2e::totp(&key, 0)).status, 200);
    // Used every half second, never idle: the account page for about three seconds (the
    // portal counts whole seconds), then the sign-in form.
    let mut last_account = Duration::ZERO;
    while signed_in.elapsed() < Duration::from_millis(5500) {
        let r = c.get("/account");
        if r.body.contains("id=\"backup-codes\"") {
            last_account = signed_in.elapsed();
        } else {
            assert!(r.body.contains("id=\"signin\""), "{}", r.body);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        last_account >= Duration::from_millis(1000),
        "the session ended early: {last_account:?}"
    );
    assert!(
        last_account < Duration::from_millis(4500),
        "the session outlived its lifetime: {last_account:?}"
    );
    let r = c.get("/account");
    assert!(r.body.contains("id=\"signin\""), "{}", r.body);
    // `mfactl config check` names a lifetime out of range.
    let bad = mfa_e2e::Site::new("\n[portal]\nsession_lifetime = \"0s\"\n");
    let o = bad.mfactl(&["config", "check"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("portal.session_lifetime"), "{}", text(&o));
}

#[test]
fn replacing_the_key_can_end_the_old_backup_codes_temporary_codes_and_unlocks() {
    let (site, portal) = http_site("", "remember = \"8h\"");
    // Replaced as before (box not ticked): the codes stay; ticked: they end.
    for end_old in [false, true] {
        let (user, key) = (unique("endold"), fresh_key());
        site.enroll(&user, &key);
        let ip = if end_old {
            "198.51.100.91"
        } else {
            "198.51.100.90"
        };
        let mut c = Client::new(&portal.url).from(ip);
        let r = c.sign_in(&user, &mfa_e2e::totp(&key, 0));
        assert_eq!(r.status, 200, "{}", r.body);
        // Make new backup codes asks first; its second form makes them.
        let r = c.post(
            "/account",
            &[("action", "backup-codes-confirm"), ("csrf", &r.csrf())],
        );
        assert!(r.body.contains("id=\"backup-codes\" class"), "{}", r.body);
        let r = c.post("/account", &[("action", "unlock"), ("csrf", &r.csrf())]);
        assert!(r.body.contains("Unlocked."), "{}", r.body);
        let o = site.mfactl(&["temp-access", &user]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(count_codes(&site, &user), 11);
        let r = c.post(
            "/account",
            &[("action", "replace-start"), ("csrf", &r.csrf())],
        );
        // The choice is on the form, in English and in Dutch, not ticked.
        assert!(
            r.body
                .contains("type=\"checkbox\" id=\"end-old\" name=\"end_old\" value=\"1\">"),
            "{}",
            r.body
        );
        assert!(
            r.body
                .contains("backup codes, temporary access codes and unlocked networks")
        );
        let nl = c.post(
            "/account?lang=nl",
            &[("action", "replace-start"), ("csrf", &r.csrf())],
        );
        assert!(
            nl.body
                .contains("reservecodes, tijdelijke toegangscodes en ontgrendelde netwerken")
        );
        let (new, csrf) = (r.key(), r.csrf());
        let code = mfa_e2e::totp(&new, 0);
        let mut fields = vec![
            ("action", "replace-confirm"),
            ("code", code.as_str()),
            ("csrf", csrf.as_str()),
        ];
        if end_old {
            fields.push(("end_old", "1"));
        }
        let r = c.post("/account", &fields);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("Your new key is saved"), "{}", r.body);
        // The session goes on with the new key.
        assert!(c.get("/account").body.contains("id=\"backup-codes\""));
        let unlocks = text(&site.mfactl(&["unlocks", &user]));
        if end_old {
            assert!(r.body.contains("were ended too"), "{}", r.body);
            assert_eq!(count_codes(&site, &user), 0, "codes left");
            assert!(!unlocks.contains(ip), "{unlocks}");
        } else {
            assert_eq!(count_codes(&site, &user), 11, "codes ended unasked");
        }
        assert!(auth_ok(&site, &user, &new));
    }
    // The audit event of the replacement says what ended with the old key.
    let details = sqlite(
        &site.db(),
        "SELECT ifnull(detail, '-') FROM audit WHERE reason = 'self_replaced' ORDER BY id",
    );
    assert_eq!(
        details.lines().collect::<Vec<_>>(),
        [
            "-",
            "backup codes, temporary codes and remembered networks ended"
        ],
        "{details}"
    );
}

#[test]
fn every_refusal_of_the_sign_in_form_takes_the_same_time_with_real_pam() {
    require_root("a Unix user with a password, and a PAM service in /etc/pam.d");
    let home = tempfile::tempdir().unwrap();
    let unix = UnixUser::new(home.path());
    // pam_unix asks for its fail delay (2 s, less or more by up to a quarter) on a wrong
    // password; the portal used to wait it out, and answered a right password with a wrong
    // code at once.
    let service = PamService::new(
        &unique("mfa-portal-floor-"),
        "auth required pam_unix.so\naccount required pam_unix.so\n",
    );
    let (site, portal) = portal_site(&SiteSpec {
        pam_service: Some(&service.name),
        ..SiteSpec::default()
    });
    let key = fresh_key();
    site.enroll(&unix.name, &key);
    let attempt = |user: &str, password: &str, code: &str| {
        let mut c = Client::new(&portal.url);
        let csrf = c.get("/account").csrf();
        let started = Instant::now();
        let r = c.post(
            "/account",
            &[
                ("action", "signin"),
                ("user", user),
                ("password", password),
                ("code", code),
                ("csrf", &csrf),
            ],
        );
        (r, started.elapsed())
    };
    let wrong = mfa_e2e::wrong_code(&key);
    let cases = [
        (
            "a wrong password",
            unix.name.as_str(),
            "not-the-password",
            mfa_e2e::totp(&key, 0),
        ),
        (
            "a wrong code",
            unix.name.as_str(),
            unix.password.as_str(),
            wrong.clone(),
        ),
        (
            "an unknown user",
            "nobody-such-user",
            "whatever",
            wrong.clone(),
        ),
    ];
    let mut bodies = Vec::new();
    for (what, user, password, code) in &cases {
        let (r, took) = attempt(user, password, code);
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert!(
            r.body.contains("Wrong user name, password or code"),
            "{}",
            r.body
        );
        // A lower bound only: the refusal is never answered before the floor.
        assert!(took >= FLOOR, "{what} was answered after {took:?}");
        bodies.push(
            r.body
                .replace(&r.csrf(), "")
                .split("id=\"message\"")
                .nth(1)
                .map(str::to_string),
        );
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "the refusals differ: {bodies:?}"
    );
    // The right password and code still sign in.
    let (r, _) = attempt(&unix.name, &unix.password, &mfa_e2e::totp(&key, 1));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!portal.log().contains(&unix.password));
}

#[test]
fn sign_ins_are_limited_per_user_from_any_address_and_per_ipv6_64() {
    let (site, portal) = http_site("", "");
    let (user, key) = (unique("spray"), fresh_key());
    site.enroll(&user, &key);
    let (other, other_key) = (unique("spray"), fresh_key());
    site.enroll(&other, &other_key);
    let wrong = mfa_e2e::wrong_code(&key);
    // Ten failures for one user, each from its own address, at once (each waits out the
    // floor).
    std::thread::scope(|s| {
        for i in 0..10 {
            let (url, user, wrong) = (&portal.url, &user, &wrong);
            s.spawn(move || {
                let mut c = Client::new(url).from(&format!("203.0.113.{}", 10 + i));
                let r = c.sign_in(user, wrong);
                assert_eq!(r.status, 401, "failure {i}: {}", r.body);
            });
        }
    });
    // The eleventh, from yet another address and with the right code, is refused.
    let mut c = Client::new(&portal.url).from("203.0.113.99");
    let r = c.sign_in(&user, &mfa_e2e::totp(&key, 0));
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(
        r.body
            .contains("Too many failed sign-ins for this user name"),
        "{}",
        r.body
    );
    // Another user from those addresses is not.
    let mut c = Client::new(&portal.url).from("203.0.113.10");
    assert_eq!(c.sign_in(&other, &mfa_e2e::totp(&other_key, 0)).status, 200);

    // IPv6: one /64 is one client; ten sign-ins from ten of its addresses, then it is
    // refused there, not in the next /64.
    std::thread::scope(|s| {
        for i in 0..10 {
            let url = &portal.url;
            s.spawn(move || {
                let mut c = Client::new(url).from(&format!("2001:db8:5:6::{:x}", i + 1));
                let r = c.sign_in(&unique("v6nobody"), "123456");
                assert_eq!(r.status, 401, "sign-in {i}: {}", r.body);
            });
        }
    });
    let mut c = Client::new(&portal.url).from("2001:db8:5:6:ffff::1");
    let r = c.sign_in(&unique("v6nobody"), "123456");
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(
        r.body.contains("Too many attempts from your address"),
        "{}",
        r.body
    );
    let mut c = Client::new(&portal.url).from("2001:db8:5:7::1");
    assert_eq!(c.sign_in(&unique("v6nobody"), "123456").status, 401);
    let log = audit_reasons(&site);
    assert_eq!(log.matches("rate_limited").count(), 2, "{log}");
}

#[test]
fn ten_thousand_anonymous_pages_leave_room_for_an_invite() {
    let (site, portal) = portal_site(&SiteSpec {
        proxy: false,
        ..SiteSpec::default()
    });
    let user = unique("flood");
    let link = portal::invite(&site, &user);
    let path = link.trim_start_matches(&portal.url).to_string();
    // 10,000 sign-in forms for a visitor without a cookie, from 127.0.0.1, over two
    // kept-alive connections.
    std::thread::scope(|s| {
        for _ in 0..2 {
            let url = format!("{}/account", portal.url);
            s.spawn(move || {
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .new_agent();
                for i in 0..5_000 {
                    let r = agent.get(&url).call().unwrap();
                    assert_eq!(r.status().as_u16(), 200, "page {i}");
                }
            });
        }
    });
    // Another visitor, from 127.0.0.2, opens the invite link: the page with its key.
    let (status, page) = raw_get(
        Ipv4Addr::new(127, 0, 0, 2),
        port_of(&portal),
        &path,
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"key\""), "{page}");
    // And links it, on the session the page made.
    let mut c = Client::new(&portal.url);
    let p = c.get(&path);
    let r = c.post(
        &path,
        &[("code", &mfa_e2e::totp(&p.key(), 0)), ("csrf", &p.csrf())],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(has_key(&site, &user));
}

fn port_of(portal: &Portal) -> u16 {
    portal.url.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn a_thousand_unfinished_requests_from_one_address_leave_the_portal_serving_others() {
    // The test holds 1,100 connections: more than a default open-file limit.
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(
        hard >= 4096,
        "the open-file hard limit {hard} is too low for this test"
    );
    // The portal as a service without LimitNOFILE gets it: a soft limit of 1024.
    let (_site, portal) = portal_site(&SiteSpec {
        proxy: false,
        nofile: Some(1024),
        ..SiteSpec::default()
    });
    if soft < 4096 {
        setrlimit(Resource::RLIMIT_NOFILE, 4096, hard).unwrap();
    }
    let port = port_of(&portal);
    let started = Instant::now();
    // 1,100 requests from 127.0.0.1 whose head never ends.
    let mut flood: Vec<_> = (0..1_100)
        .map(|_| {
            let mut s = connect_from(Ipv4Addr::LOCALHOST, port);
            // The portal may have closed it already (over the per-address limit).
            let _ = s.write_all(b"GET /account HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
            s
        })
        .collect();
    // A body that never arrives, from 127.0.0.4; a kept-alive connection that goes idle
    // after one answer, from 127.0.0.5.
    let mut slow_body = connect_from(Ipv4Addr::new(127, 0, 0, 4), port);
    slow_body
        .write_all(b"POST /account HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\naction=")
        .unwrap();
    let mut idle = connect_from(Ipv4Addr::new(127, 0, 0, 5), port);
    idle.write_all(b"GET /style.css HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    // A visitor from 127.0.0.3 gets the sign-in page meanwhile.
    let (status, page) = raw_get(
        Ipv4Addr::new(127, 0, 0, 3),
        port,
        "/account",
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("the visitor got no answer: {e}"));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"signin\""));
    // The server closes every unfinished one within its header timeout (10 s by default),
    // the form that never ends with 408, the idle one after its answer.
    let deadline = started + Duration::from_secs(10) + Duration::from_secs(5);
    for (i, s) in flood.iter_mut().enumerate() {
        let (closed, _) = closed_by(s, deadline);
        assert!(
            closed,
            "connection {i} was still open after {:?}",
            started.elapsed()
        );
    }
    let (closed, seen) = closed_by(&mut slow_body, deadline);
    assert!(closed, "the slow body's connection stayed open");
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
    let (closed, seen) = closed_by(&mut idle, deadline);
    assert!(closed, "the idle connection stayed open");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    // Still serving.
    let (status, _) = raw_get(
        Ipv4Addr::new(127, 0, 0, 3),
        port,
        "/",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(
        portal.log().contains("refusing connections"),
        "{}",
        portal.log()
    );
}

#[test]
fn https_in_public_url_behind_a_proxy_gives_a_secure_host_cookie_and_hsts() {
    let (_site, portal) = portal_site(&SiteSpec {
        public_url: Some("https://mfa.example.com"),
        ..SiteSpec::default()
    });
    let mut c = Client::new(&portal.url).from("198.51.100.120");
    let r = c.get("/account");
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = r.header("set-cookie").join("\n");
    assert!(
        cookie.starts_with("__Host-mfa_session=")
            && cookie.contains("; Secure")
            && cookie.contains("Path=/;")
            && !cookie.contains("Domain="),
        "session cookie: {cookie}"
    );
    assert_eq!(
        r.header("strict-transport-security"),
        ["max-age=31536000"],
        "HSTS behind a TLS proxy"
    );
    // Plain http:// in public_url (a test set-up, no TLS anywhere): neither.
    let (_s, plain) = http_site("", "");
    let r = Client::new(&plain.url).get("/account");
    let cookie = r.header("set-cookie").join("\n");
    assert!(
        cookie.starts_with("mfa_session=") && !cookie.contains("Secure"),
        "{cookie}"
    );
    assert!(r.header("strict-transport-security").is_empty());
}
