//! Unlink and re-enrolment end every credential of the old key. Through the real `mfactl`
//! and `mfa-portal`: backup codes and temporary-access codes minted before an unlink no
//! longer log in after it (a temporary-access code issued after it does: the way in for a
//! user without a key), and an invite link issued before the user enrolled some other way
//! (`mfactl enroll`, `mfactl import`) stops working then and shows no key after a later
//! unlink, while a link issued after the unlink enrols.

use mfa_e2e::free_tcp_port;
use std::process::Child;
use std::time::{Duration, Instant};

use mfa_e2e::{Site, code_of, fresh_key, printed_codes, text};

fn auth(site: &Site, user: &str, code: &str) -> (i32, String) {
    let o = site.mfactl(&["auth", user, "--ip", "192.0.2.40", "--code", code]);
    (code_of(&o), text(&o))
}

#[test]
fn codes_minted_before_an_unlink_do_not_log_in_after_it() {
    let site = Site::new("");
    site.enroll("bea", &fresh_key());
    let o = site.mfactl(&["backup-codes", "bea", "--count", "3"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let backup = printed_codes(&text(&o));
    assert_eq!(backup.len(), 3);
    let o = site.mfactl(&["temp-access", "bea", "--valid", "1h", "--uses", "2"]);
    let early = printed_codes(&text(&o)).pop().expect("a code is printed");

    assert_eq!(code_of(&site.mfactl(&["unlink", "bea"])), 0);
    // No key: the policy asks for no code, and none of the old codes logs in.
    for c in [&backup[0], &backup[1], &early] {
        let (rc, out) = auth(&site, "bea", c);
        assert_eq!(rc, 1, "a code of the old key logged in: {out}");
        assert!(out.starts_with("deny not_enrolled"), "{out}");
    }
    let v: serde_json::Value =
        serde_json::from_slice(&site.mfactl(&["report", "--format", "json"]).stdout).unwrap();
    assert_eq!(v["users"][0]["backup_codes_left"], 0, "{v}");
    assert_eq!(v["users"][0]["status"], "overdue", "{v}");

    // A temporary-access code issued after the unlink is the way in; an old backup code
    // still matches nothing while it is pending.
    let o = site.mfactl(&["temp-access", "bea", "--valid", "1h"]);
    let fresh = printed_codes(&text(&o)).pop().expect("a code is printed");
    let (rc, out) = auth(&site, "bea", &backup[2]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.starts_with("deny wrong_code"), "{out}");
    let (rc, out) = auth(&site, "bea", &fresh);
    assert_eq!(rc, 0, "{out}");
    assert!(out.starts_with("allow temporary_access"), "{out}");
}

/// A running mfa-portal; killed and reaped on drop.
struct Portal(Child);

impl Drop for Portal {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` on the portal: the status and the body.
fn get(base: &str, path: &str) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .new_agent();
    let mut resp = agent.get(format!("{base}{path}")).call().unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap())
}

/// `mfactl invite USER`: the path of the link it prints first.
fn invite(site: &Site, base: &str, user: &str) -> String {
    let o = site.mfactl(&["invite", user]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let url = out.split_whitespace().next().unwrap();
    url.strip_prefix(base)
        .unwrap_or_else(|| panic!("{url} is not under {base}"))
        .to_string()
}

/// The enrolment page shows a key (and a QR code) only for a link that enrols.
fn shows_key(body: &str) -> bool {
    body.contains("id=\"key\"") || body.contains("id=\"qr\"")
}

#[test]
fn an_invite_issued_before_another_enrolment_shows_no_key_after_an_unlink() {
    let port = free_tcp_port();
    let base = format!("http://127.0.0.1:{port}");
    let site = Site::new(&format!(
        "[audit]\nsyslog = false\n[portal]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{base}\"\n"
    ));
    assert_eq!(code_of(&site.mfactl(&["init"])), 0);
    let mut cmd = std::process::Command::new(mfa_e2e::bin("mfa-portal"));
    cmd.arg("--config").arg(&site.config);
    let (child, log) = mfa_e2e::spawn_logged(cmd);
    let _portal = Portal(child);
    let start = Instant::now();
    while !log.lock().unwrap().contains("listening on") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "mfa-portal did not start: {}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // kim: invited, then enrolled by the administrator; lea: invited, then imported.
    let kim = invite(&site, &base, "kim");
    let lea = invite(&site, &base, "lea");
    let (status, body) = get(&base, &kim);
    assert_eq!(status, 200, "{body}");
    assert!(shows_key(&body), "a usable link shows the key");
    site.enroll("kim", &fresh_key());
    let csv = site.path().join("users.csv");
    std::fs::write(&csv, format!("lea,{}\n", fresh_key())).unwrap();
    let o = site.mfactl(&["import", csv.to_str().unwrap()]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    for link in [&kim, &lea] {
        let (status, body) = get(&base, link);
        assert_ne!(status, 200, "{link}: {body}");
        assert!(!shows_key(&body), "{link}: {body}");
    }

    // Unlinked: the old links still show no key; the report counts them expired, not open.
    for u in ["kim", "lea"] {
        assert_eq!(code_of(&site.mfactl(&["unlink", u])), 0);
    }
    for link in [&kim, &lea] {
        let (status, body) = get(&base, link);
        assert_eq!(
            status, 410,
            "{link}: a link from before shows a key again: {body}"
        );
        assert!(!shows_key(&body), "{link}: {body}");
    }
    let v: serde_json::Value =
        serde_json::from_slice(&site.mfactl(&["report", "--format", "json"]).stdout).unwrap();
    assert_eq!(v["totals"]["invites_open"], 0, "{v}");

    // A link issued after the unlink enrols.
    let again = invite(&site, &base, "kim");
    let (status, body) = get(&base, &again);
    assert_eq!(status, 200, "{body}");
    assert!(shows_key(&body));
}
