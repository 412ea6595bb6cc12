//! Accounting (RFC 2866) end to end, issue 21: the real radclient sends Accounting-Requests
//! to the daemon's accounting port, as the OpenVPN RADIUS plugin and ocserv do, and gets
//! Accounting-Responses; session start and stop are in the audit trail (`mfactl log`) with
//! what the gateway reported. Before, nothing listened on the accounting port and an
//! Accounting-Request on the authentication port was dropped (`unsupported_code`), so the
//! OpenVPN plugin failed the login after the code was used.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mfa_e2e::radius::*;
use mfa_e2e::{code_of, free_udp_port};

/// The accounting port a rig's daemon answers on by default: `listen`'s port plus one.
fn acct_addr(rig: &Rig) -> String {
    format!("127.0.0.1:{}", rig.port + 1)
}

fn acct(rig: &Rig, attrs: &str) -> Reply {
    radclient(&acct_addr(rig), SECRET, "acct", attrs, 2)
}

/// `mfactl log USER --format json`, parsed.
fn trail(rig: &Rig, user: &str) -> Vec<serde_json::Value> {
    let out = rig.site.mfactl(&["log", user, "--format", "json"]);
    assert_eq!(code_of(&out), 0, "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn session_start_and_stop_are_answered_and_in_the_audit_trail() {
    let rig = Rig::start("append");
    rig.daemon
        .wait_log(&format!("accounting on {}", acct_addr(&rig)), 1);
    let (user, _) = rig.user();
    let start = format!(
        "User-Name = \"{user}\"\nAcct-Status-Type = Start\nAcct-Session-Id = \"5F3A01\"\nCalling-Station-Id = \"{UNTRUSTED_CSI}\"\nFramed-IP-Address = 10.8.0.6\nMessage-Authenticator = 0x00\n"
    );
    let r = acct(&rig, &start);
    assert!(r.is("Accounting-Response"), "{}", r.output);
    let stop = format!(
        "User-Name = \"{user}\"\nAcct-Status-Type = Stop\nAcct-Session-Id = \"5F3A01\"\nCalling-Station-Id = \"{UNTRUSTED_CSI}\"\nFramed-IP-Address = 10.8.0.6\nAcct-Session-Time = 3725\nAcct-Input-Octets = 4096\nAcct-Output-Octets = 2048\nAcct-Terminate-Cause = User-Request\nMessage-Authenticator = 0x00\n"
    );
    assert!(acct(&rig, &stop).is("Accounting-Response"));
    let interim = start.replace("Start", "Interim-Update");
    assert!(acct(&rig, &interim).is("Accounting-Response"));

    let events = trail(&rig, &user);
    let sessions: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["decision"] == "session")
        .collect();
    let reasons: Vec<&str> = sessions
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["session_start", "session_stop", "session_interim"],
        "{events:?}"
    );
    assert!(sessions.iter().all(|e| e["service"] == "test-gw"));
    assert!(sessions.iter().all(|e| e["client_ip"] == "198.51.100.7"));
    assert_eq!(
        sessions[0]["detail"], "session=5F3A01 tunnel_ip=10.8.0.6",
        "{events:?}"
    );
    assert_eq!(
        sessions[1]["detail"],
        "session=5F3A01 tunnel_ip=10.8.0.6 duration=3725s in=4096 out=2048 cause=User-Request"
    );
    rig.daemon.wait_log(
        &format!(
            "user=\"{user}\" client=\"test-gw\" client_ip=198.51.100.7 accounting=stop session=\"5F3A01\""
        ),
        1,
    );
    // Sessions are no logins: the portal's "last logins" and the rollout do not count them,
    // and no record was made for a user who has one already (nor changed).
    rig.daemon.signal("USR1");
    rig.daemon.wait_log("accounting=3", 1);
}

#[test]
fn what_names_no_user_is_answered_and_only_logged() {
    let rig = Rig::start("code-only");
    // A gateway starting (Accounting-On) names no user.
    let r = acct(
        &rig,
        "Acct-Status-Type = Accounting-On\nNAS-Identifier = \"gw1\"\nMessage-Authenticator = 0x00\n",
    );
    assert!(r.is("Accounting-Response"), "{}", r.output);
    rig.daemon.wait_log(
        "client=\"test-gw\" client_ip=unknown accounting=accounting_on",
        1,
    );
    // A name the [users] rules refuse: answered (the gateway would resend it for ever),
    // said in the log, recorded nowhere.
    let r = acct(
        &rig,
        "User-Name = \"bob@elsewhere.example\"\nAcct-Status-Type = Start\nMessage-Authenticator = 0x00\n",
    );
    assert!(r.is("Accounting-Response"), "{}", r.output);
    rig.daemon.wait_log(
        "accounting=start recorded=no (not a user name the [users] rules accept)",
        1,
    );
    // Without Acct-Status-Type it is malformed: no answer, and the log says why.
    let r = acct(
        &rig,
        "User-Name = \"alice\"\nMessage-Authenticator = 0x00\n",
    );
    assert_eq!(r.code, None, "{}", r.output);
    rig.daemon.wait_log(
        "Accounting-Request without Acct-Status-Type (client \"test-gw\")",
        1,
    );
    // Status-Server on the accounting port is answered with an Accounting-Response
    // (RFC 5997 §3).
    let r = radclient(
        &acct_addr(&rig),
        SECRET,
        "status",
        "Message-Authenticator = 0x00\n",
        3,
    );
    assert!(r.is("Accounting-Response"), "{}", r.output);
}

#[test]
fn accounting_is_checked_like_access_and_only_on_its_port() {
    let rig = Rig::start("append");
    let (user, _) = rig.user();
    let start = format!("User-Name = \"{user}\"\nAcct-Status-Type = Start\n");
    // The default client requires Message-Authenticator: without it, no answer, and the log
    // names the entry to change for a gateway that cannot send one.
    let r = acct(&rig, &start);
    assert_eq!(r.code, None, "{}", r.output);
    rig.daemon.wait_log(
        "Accounting-Request from client \"test-gw\" without Message-Authenticator (required: BlastRADIUS, CVE-2024-3596); a gateway that cannot send it (ocserv, Debian's OpenVPN RADIUS plugin) needs require_message_authenticator = false in the [[radius.clients]] entry with name = \"test-gw\"",
        1,
    );
    let signed = format!("{start}Message-Authenticator = 0x00\n");
    // Another secret: no answer.
    let r = radclient(&acct_addr(&rig), "not-the-secret", "acct", &signed, 1);
    assert_eq!(r.code, None, "{}", r.output);
    rig.daemon.wait_log(
        "Accounting-Request with a wrong Request Authenticator (client \"test-gw\"",
        1,
    );
    // On the authentication port: dropped, with where to send it.
    let r = radclient(&rig.addr(), SECRET, "acct", &signed, 1);
    assert_eq!(r.code, None, "{}", r.output);
    rig.daemon.wait_log(
        "Accounting-Request (4) on an authentication port: accounting is answered on [radius] accounting_listen",
        1,
    );
    // An Access-Request on the accounting port: dropped too.
    let r = radclient(
        &acct_addr(&rig),
        SECRET,
        "auth",
        &attrs(&user, Some(PASSWORD), Some(UNTRUSTED_CSI), true),
        1,
    );
    assert_eq!(r.code, None, "{}", r.output);
    // (Its warning waits out the minute of the one above, of the same kind; the counter
    // has it.)
    rig.daemon.signal("USR1");
    rig.daemon.wait_log("dropped_unsupported_code=2", 1);
    // Nothing of it reached the audit trail; the signed one does.
    assert!(
        !trail(&rig, &user)
            .iter()
            .any(|e| e["decision"] == "session")
    );
    assert!(acct(&rig, &signed).is("Accounting-Response"));
    assert_eq!(
        trail(&rig, &user)
            .iter()
            .filter(|e| e["decision"] == "session")
            .count(),
        1
    );
}

#[test]
fn accounting_listen_moves_or_turns_off_accounting() {
    let port = free_udp_port();
    let rig = Rig::start_with(
        "append",
        &format!("accounting_listen = [\"127.0.0.1:{port}\"]"),
    );
    rig.daemon
        .wait_log(&format!("accounting on 127.0.0.1:{port}"), 1);
    let (user, _) = rig.user();
    let start =
        format!("User-Name = \"{user}\"\nAcct-Status-Type = Start\nMessage-Authenticator = 0x00\n");
    let r = radclient(&format!("127.0.0.1:{port}"), SECRET, "acct", &start, 3);
    assert!(r.is("Accounting-Response"), "{}", r.output);
    // Not on the default port any more.
    assert_eq!(acct(&rig, &start).code, None);

    let off = Rig::start_with("append", "accounting_listen = []");
    off.daemon.wait_log("; no accounting", 1);
    assert_eq!(acct(&off, &start).code, None);

    // An address that was asked for and cannot be bound stops the start, naming it.
    let site = Site::with_config(&config_text(
        "append",
        &format!("\"127.0.0.1:{}\"", free_udp_port()),
        &format!("accounting_listen = [\"127.0.0.1:{port}\"]"),
        SECRET,
    ));
    let pam = write_pam(site.path());
    let mut busy = spawn_daemon(&site.config, Some(&pam));
    assert!(!busy.stop_when_exited().success());
    assert!(
        busy.log()
            .contains(&format!("cannot listen for accounting on 127.0.0.1:{port}")),
        "{}",
        busy.log()
    );

    // Left to the default, a next port that something else holds is a warning, and
    // authentication is served all the same.
    let (auth, held) = loop {
        let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let next = held.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", next - 1)).is_ok() {
            break (next - 1, held);
        }
    };
    let site = Site::with_config(&config_text(
        "append",
        &format!("\"127.0.0.1:{auth}\""),
        "",
        SECRET,
    ));
    let pam = write_pam(site.path());
    let shared = spawn_daemon(&site.config, Some(&pam));
    shared.wait_log(
        &format!("listening on 127.0.0.1:{auth} (mode append); no accounting"),
        1,
    );
    shared.wait_log(
        &format!(
            "warning: cannot listen for accounting on 127.0.0.1:{} (not set, so the listen port plus one)",
            auth + 1
        ),
        1,
    );
    let r = radclient(
        &format!("127.0.0.1:{auth}"),
        SECRET,
        "status",
        "Message-Authenticator = 0x00\n",
        3,
    );
    assert!(r.is("Access-Accept"), "{}", r.output);
    drop(held);
}
