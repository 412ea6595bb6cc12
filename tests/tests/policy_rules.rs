//! `[[policy.rules]]` (issue 23, item 2) through the real peers: the examples of
//! docs/RULES.md, each decided by the core's one policy function whatever asks.
//!
//! - pamtester with the real libpam and the built module, through PAM services standing for
//!   sshd, sudo and the console's login (unique names in /etc/pam.d, which the rules name);
//! - radclient against mfa-radiusd with two RADIUS clients (a VPN and an RD Gateway), and a
//!   PAM host in remote mode whose PAM service reaches the daemon;
//! - `mfactl auth --service ...` naming the rule that matched, and the audit line's detail.
//!
//! Groups are real: groupadd and usermod, read through NSS as `exempt_groups` is.

use mfa_e2e::pam::{
    PamResult, PamService, SyslogCapture, UnixGroup, UnixUser, pamtester, require_root,
};
use mfa_e2e::radius::{Relay, SECRET, attrs, free_udp_port, radclient, spawn_daemon, write_pam};
use mfa_e2e::{Site, code_of, fresh_key, require_tool, text, totp, unique, wrong_code};

/// The office, as in docs/RULES.md.
const OFFICE_IP: &str = "10.20.30.40";

/// The rules of docs/RULES.md's example for PAM: `sudo`, `contractors` and `console`
/// name the services and the group given.
fn pam_rules(sudo: &str, contractors: &str, login: &str) -> String {
    format!(
        r#"
[[policy.rules]]
name = "sudo-code"
services = ["{sudo}"]
action = "code"

[[policy.rules]]
name = "contractors"
groups = ["{contractors}"]
action = "code"

[[policy.rules]]
name = "console"
services = ["{login}"]
local = true
action = "none"
"#
    )
}

fn config_with(site: &Site, text: &str) {
    std::fs::write(&site.config, format!("{}{text}", mfa_e2e::BASE_CONFIG)).unwrap();
}

/// `mfactl auth USER --service SERVICE [--ip IP]` with no code: its output and exit code.
fn auth(site: &Site, user: &str, service: &str, ip: Option<&str>) -> (i32, String) {
    let mut args = vec!["auth", user, "--service", service];
    if let Some(ip) = ip {
        args.extend(["--ip", ip]);
    }
    let o = site.mfactl(&args);
    (code_of(&o), text(&o))
}

/// sudo asks a code from the office, sshd does not; the console's login asks none (from a
/// remote host it is no console); a contractor types a code from the office and at the
/// console. Each decision names its rule in syslog and in `mfactl auth`.
#[test]
fn pam_rules_for_sudo_the_console_and_contractors() {
    require_root("pamtester with service files in /etc/pam.d, groupadd and useradd");
    let site = Site::new("[audit]\nsyslog = true\n");
    let sshd = PamService::mfa_only(&site.config, "");
    // `debug`: the module's decision trace in syslog names the rule too.
    let sudo = PamService::mfa_only(&site.config, "debug");
    let login = PamService::mfa_only(&site.config, "");
    let home = tempfile::tempdir().unwrap();
    let (alice, carl) = (UnixUser::new(home.path()), UnixUser::new(home.path()));
    let contractors = UnixGroup::new();
    contractors.add(&carl);
    config_with(
        &site,
        &format!(
            "[audit]\nsyslog = true\n{}",
            pam_rules(&sudo.name, &contractors.name, &login.name)
        ),
    );
    let check = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&check), 0, "{}", text(&check));
    let (ka, kc) = (fresh_key(), fresh_key());
    site.enroll(&alice.name, &ka);
    site.enroll(&carl.name, &kc);
    let log = SyslogCapture::new();

    // sshd from the office: no rule matches, the trusted network lets alice in.
    let r = pamtester(&sshd.name, &alice.name, Some(OFFICE_IP), "", Some(&log));
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(!r.prompted(), "{r:?}");
    // sudo from the office: the code, and only the right one.
    let r = pamtester(&sudo.name, &alice.name, Some(OFFICE_IP), "\n", Some(&log));
    assert!(r.prompted(), "sudo skipped the code from the office: {r:?}");
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    mfa_e2e::avoid_step_boundary(3);
    let code = totp(&ka, 0);
    let r = pamtester(
        &sudo.name,
        &alice.name,
        Some(OFFICE_IP),
        &format!("{code}\n"),
        Some(&log),
    );
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    // The console (no remote host): no code. The same service from a remote host: a code.
    let r = pamtester(&login.name, &alice.name, None, "", Some(&log));
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(!r.prompted(), "{r:?}");
    let r = pamtester(
        &login.name,
        &alice.name,
        Some("192.0.2.9"),
        "\n",
        Some(&log),
    );
    assert!(r.prompted(), "{r:?}");
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    // A contractor: a code from the office (sshd) and at the console.
    for rhost in [Some(OFFICE_IP), None] {
        let svc = if rhost.is_some() { &sshd } else { &login };
        let r = pamtester(&svc.name, &carl.name, rhost, "\n", Some(&log));
        assert!(
            r.prompted(),
            "a contractor skipped the code ({rhost:?}): {r:?}"
        );
        assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    }
    let r = pamtester(
        &sshd.name,
        &carl.name,
        Some(OFFICE_IP),
        &format!("{}\n", wrong_code(&kc)),
        Some(&log),
    );
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    let r = pamtester(
        &sshd.name,
        &carl.name,
        Some(OFFICE_IP),
        &format!("{}\n", totp(&kc, 0)),
        Some(&log),
    );
    assert_eq!(r.result, PamResult::Success, "{r:?}");

    // The audit trail names the rules.
    let sys = log.text();
    for (user, reason, detail) in [
        (
            &alice.name,
            "valid_code",
            "policy.rules[0] \\\"sudo-code\\\"",
        ),
        (
            &alice.name,
            "rule_no_code",
            "policy.rules[2] \\\"console\\\"",
        ),
        (
            &carl.name,
            "valid_code",
            "policy.rules[1] \\\"contractors\\\"",
        ),
    ] {
        assert!(
            sys.lines().any(|l| l.contains(&format!("user=\"{user}\""))
                && l.contains(&format!("reason={reason} detail=\"{detail}\""))),
            "no {reason} by {detail} for {user}:\n{sys}"
        );
    }
    assert!(
        sys.contains(&format!(
            "user={:?} policy: NeedCode code_required rule=policy.rules[0] \"sudo-code\"",
            alice.name
        )) && sys.contains("code checked: Allow valid_code rule=policy.rules[0] \"sudo-code\""),
        "the debug trace names no rule:\n{sys}"
    );
    assert!(
        sys.lines()
            .any(|l| l.contains(&format!("service=\"{}\"", sshd.name))
                && l.contains(&format!("user=\"{}\"", alice.name))
                && l.contains("reason=trusted_network")
                && !l.contains("detail=")),
        "{sys}"
    );

    // mfactl auth says which rule matched, for each example.
    let (rc, out) = auth(&site, &alice.name, &sudo.name, Some(OFFICE_IP));
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("missing_code"), "{out}");
    assert!(
        out.contains("rule: policy.rules[0] \"sudo-code\": action code"),
        "{out}"
    );
    let (rc, out) = auth(&site, &alice.name, &login.name, None);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("rule_no_code"), "{out}");
    assert!(
        out.contains("rule: policy.rules[2] \"console\": action none"),
        "{out}"
    );
    let (rc, out) = auth(
        &site,
        &carl.name,
        &format!("pam:{}", sshd.name),
        Some(OFFICE_IP),
    );
    assert_eq!(rc, 1, "{out}");
    assert!(
        out.contains("rule: policy.rules[1] \"contractors\": action code"),
        "{out}"
    );
    let (rc, out) = auth(
        &site,
        &alice.name,
        &format!("pam:{}", sshd.name),
        Some(OFFICE_IP),
    );
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("trusted_network"), "{out}");
    assert!(out.contains("rule: none matched"), "{out}");

    // Without the rules: sudo from the office and the contractor pass without a code again,
    // the console asks one (local_logins = "require").
    config_with(&site, "[audit]\nsyslog = false\n");
    let r = pamtester(&sudo.name, &alice.name, Some(OFFICE_IP), "", None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    let r = pamtester(&sshd.name, &carl.name, Some(OFFICE_IP), "", None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    let r = pamtester(&login.name, &alice.name, None, "\n", None);
    assert!(r.prompted(), "{r:?}");
}

/// Two RADIUS clients (the VPN on 127.0.0.2, RD Gateway on 127.0.0.1, both in code-only
/// mode) and PAM hosts in remote mode on ::1, no store on the host.
fn radius_config(port: u16, vpn_users: &str, host_sudo: &str) -> String {
    format!(
        r#"[store]
path = "mfa.db"
key_file = "mfa.key"
[policy]
trusted_networks = ["10.0.0.0/8"]
[audit]
syslog = false
[radius]
listen = ["127.0.0.1:{port}", "[::1]:{port}"]
mode = "code-only"
first_factor = "none"
pam_service = "mfa-test"
client_ip_attribute = "Calling-Station-Id"
[[radius.clients]]
name = "rd-gateway"
address = "127.0.0.1/32"
secret = "{SECRET}"
[[radius.clients]]
name = "vpn"
address = "127.0.0.2/32"
secret = "{SECRET}"
[[radius.clients]]
name = "pam-hosts"
address = "::1"
secret = "{SECRET}"
kind = "pam-hosts"

[[policy.rules]]
name = "vpn-members"
radius_clients = ["vpn"]
groups = ["{vpn_users}"]
action = "code"

[[policy.rules]]
name = "vpn-others"
radius_clients = ["vpn"]
action = "deny"

[[policy.rules]]
name = "sudo-code"
services = ["{host_sudo}"]
action = "code"
"#
    )
}

/// A PAM host in remote mode: its own mfa.toml with `[remote]` alone, asking the daemon
/// over ::1; it sends its PAM service with each login.
fn remote_host(port: u16) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("remote.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        dir.path().join("mfa.toml"),
        format!(
            "[remote]\nservers = [\"[::1]:{port}\"]\nsecret_file = \"remote.secret\"\ntimeout = \"2s\"\noffline_queue = \"offline-queue\"\n"
        ),
    )
    .unwrap();
    dir
}

/// Only group vpn-users may use the VPN client, and with a code even from the office;
/// RD Gateway is decided as before; a PAM host's sudo asks a code from the office (its
/// service reaches the daemon), its sshd does not. The daemon's log and `mfactl auth
/// --service radius:vpn` name the rule.
#[test]
fn radius_rules_per_client_and_group_and_the_pam_hosts_service() {
    require_root("groupadd and useradd, and service files in /etc/pam.d");
    require_tool("radclient");
    let port = free_udp_port();
    let host = remote_host(port);
    let host_config = host.path().join("mfa.toml");
    let host_sshd = PamService::mfa_only(&host_config, "");
    let host_sudo = PamService::mfa_only(&host_config, "");
    let home = tempfile::tempdir().unwrap();
    let (member, other) = (UnixUser::new(home.path()), UnixUser::new(home.path()));
    let vpn_users = UnixGroup::new();
    vpn_users.add(&member);
    let site = Site::with_config(&radius_config(port, &vpn_users.name, &host_sudo.name));
    let pam = write_pam(site.path());
    let daemon = spawn_daemon(&site.config, Some(&pam));
    daemon.wait_log("listening on", 1);
    let (km, ko) = (fresh_key(), fresh_key());
    site.enroll(&member.name, &km);
    site.enroll(&other.name, &ko);
    let addr = format!("127.0.0.1:{port}");
    let vpn = |user: &str, code: &str| {
        Relay::bind("127.0.0.2:0", &addr)
            .exchange(&attrs(user, Some(code), Some(OFFICE_IP), true))
            .0
    };
    let gateway = |user: &str, code: Option<&str>| {
        radclient(
            &addr,
            SECRET,
            "auth",
            &attrs(user, code, Some(OFFICE_IP), true),
            5,
        )
    };

    // The VPN from the office: a member needs the right code, which lets in.
    let r = vpn(&member.name, &wrong_code(&km));
    assert!(r.is("Access-Reject"), "{}", r.output);
    mfa_e2e::avoid_step_boundary(3);
    let r = vpn(&member.name, &totp(&km, 0));
    assert!(r.is("Access-Accept"), "{}", r.output);
    // Anyone else is refused, the right code or not.
    let r = vpn(&other.name, &totp(&ko, 0));
    assert!(r.is("Access-Reject"), "{}", r.output);
    daemon.wait_log("reason=rule_denied", 1);
    let log = daemon.log();
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("user=\"{}\"", other.name))
                && l.contains("reason=rule_denied rule=\"policy.rules[1] \\\"vpn-others\\\"\"")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("user=\"{}\"", member.name))
                && l.contains("reason=valid_code rule=\"policy.rules[0] \\\"vpn-members\\\"\"")),
        "{log}"
    );
    // RD Gateway from the office: no rule, the trusted network as before, for both.
    for user in [&member.name, &other.name] {
        let r = gateway(user, None);
        assert!(r.is("Access-Accept"), "{}", r.output);
    }

    // A PAM host's sshd from the office: in without a code; its sudo: the code.
    let r = pamtester(&host_sshd.name, &other.name, Some(OFFICE_IP), "", None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(!r.prompted(), "{r:?}");
    let r = pamtester(&host_sudo.name, &other.name, Some(OFFICE_IP), "\n", None);
    assert!(r.prompted(), "the host's sudo skipped the code: {r:?}");
    assert_ne!(r.result, PamResult::Success, "{r:?}");
    mfa_e2e::avoid_step_boundary(3);
    let r = pamtester(
        &host_sudo.name,
        &other.name,
        Some(OFFICE_IP),
        &format!("{}\n", totp(&ko, 1)),
        None,
    );
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    // The store's audit trail names the rule for the host's login, by its service.
    let o = site.mfactl(&["log", &other.name, "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let events: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let want = format!("/{}", host_sudo.name);
    assert!(
        events.iter().any(|e| e["service"]
            .as_str()
            .is_some_and(|s| s.starts_with("pam-hosts/") && s.ends_with(&want))
            && e["reason"] == "valid_code"
            && e["detail"] == "policy.rules[2] \"sudo-code\""),
        "{events:#?}"
    );

    // mfactl auth, asking as the VPN client.
    let o = site.mfactl(&[
        "auth",
        &other.name,
        "--service",
        "radius:vpn",
        "--ip",
        OFFICE_IP,
    ]);
    let out = text(&o);
    assert_eq!(code_of(&o), 1, "{out}");
    assert!(out.contains("rule_denied"), "{out}");
    assert!(
        out.contains("rule: policy.rules[1] \"vpn-others\": action deny"),
        "{out}"
    );
    let o = site.mfactl(&[
        "auth",
        &member.name,
        "--service",
        "radius:vpn",
        "--ip",
        OFFICE_IP,
    ]);
    let out = text(&o);
    assert_eq!(code_of(&o), 1, "{out}");
    assert!(
        out.contains("rule: policy.rules[0] \"vpn-members\": action code"),
        "{out}"
    );
}

/// The 1-based line of the `nth` (0-based) line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str, nth: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with(prefix))
        .nth(nth)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("no {prefix:?} in\n{text}"))
}

/// `mfactl config check` names each mistake in the rules with its file, line and key, and
/// warns about a group the system does not know.
#[test]
fn config_check_names_rule_mistakes_by_line_and_key() {
    let site = Site::new("");
    let file = site.config.display().to_string();
    let check = |body: &str| {
        let text_ = format!("{}{body}", mfa_e2e::BASE_CONFIG);
        std::fs::write(&site.config, &text_).unwrap();
        let o = site.mfactl(&["config", "check"]);
        (code_of(&o), text(&o), text_)
    };
    // The typed parse: an unknown action, a bad network.
    let (rc, out, t) = check(
        "\n[[policy.rules]]\nservices = [\"sudo\"]\naction = \"sometimes\"\n\n[[policy.rules]]\nnetworks = [\"10.0.0.1/8\"]\naction = \"code\"\n",
    );
    assert_ne!(rc, 0, "{out}");
    let at = line_of(&t, "action", 0);
    assert!(
        out.contains(&format!(
            "{file}:{at}: policy.rules[0].action: unknown variant `sometimes`"
        )),
        "{out}"
    );
    let at = line_of(&t, "networks", 0);
    assert!(
        out.contains(&format!("{file}:{at}: policy.rules[1].networks[0]: ")),
        "{out}"
    );
    // Validation: a rule matching everything without saying so; "none" for the internet.
    let group = unique("nogroup");
    let (rc, out, t) = check(&format!(
        "\n[[policy.rules]]\naction = \"code\"\n\n[[policy.rules]]\ngroups = [\"{group}\"]\naction = \"code\"\n\n[[policy.rules]]\nnetworks = [\"0.0.0.0/0\"]\naction = \"none\"\n"
    ));
    assert_ne!(rc, 0, "{out}");
    let at = line_of(&t, "[[policy.rules]]", 0);
    assert!(
        out.contains(&format!("{file}:{at}: policy.rules[0]: "))
            && out.contains("match_all = true"),
        "{out}"
    );
    let at = line_of(&t, "networks", 0);
    assert!(
        out.contains(&format!("{file}:{at}: policy.rules[2].networks[0]: ")),
        "{out}"
    );
    // A group the system does not know: a warning, not an error.
    let (rc, out, t) = check(&format!(
        "\n[[policy.rules]]\ngroups = [\"{group}\"]\naction = \"code\"\n"
    ));
    assert_eq!(rc, 0, "a warning is no error: {out}");
    let at = line_of(&t, "groups", 0);
    assert!(
        out.contains(&format!("{file}:{at}: policy.rules[0].groups[0]: ")) && out.contains(&group),
        "{out}"
    );
}

/// A `push` rule: the push goes at once, with no code prompt (a typed code would be refused
/// as `push_required`); the phone approves with the number shown. A user with no phone
/// under the rule is told why and refused; the same code lets in through a service no rule
/// names.
#[test]
fn a_push_rule_sends_the_push_unasked_and_refuses_without_a_phone() {
    use mfa_e2e::phone::{FakePortal, LivePamtester, OnPhone, Phone, audit_reasons, push_toml};
    require_root("push through pamtester (service files in /etc/pam.d)");
    let site = Site::new(&push_toml(""));
    let pushed = PamService::mfa_only(&site.config, "");
    let plain = PamService::mfa_only(&site.config, "");
    let (user, key) = (unique("pr"), fresh_key());
    site.enroll(&user, &key);
    let phone = Phone::register(&site.config, &user, &key);
    let (nophone, key2) = (unique("pn"), fresh_key());
    site.enroll(&nophone, &key2);
    let portal = FakePortal::start(&site.config);
    let mut text_ = std::fs::read_to_string(&site.config).unwrap();
    text_.push_str(&format!(
        "\n[[policy.rules]]\nname = \"ssh-push\"\nservices = [\"{}\"]\naction = \"push\"\n",
        pushed.name
    ));
    std::fs::write(&site.config, text_).unwrap();
    let rhost = "192.0.2.10";

    // No prompt: the push is sent, its number shown; the phone approves.
    let mut login = LivePamtester::start(&pushed.name, &user, Some(rhost), "", None);
    let line = login.wait_line("on your phone");
    let number = mfa_e2e::phone::shown_number(&line);
    let sent = portal.wait_for(&user, 1);
    phone.decide(&sent.id, OnPhone::Approve(number));
    let r = login.finish();
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(
        !r.all().contains(mfa_core::login::CODE_PROMPT.trim()),
        "a code was asked for under a push rule: {r:?}"
    );
    let reasons = audit_reasons(&site.config, &user);
    assert!(
        reasons.contains(&"push_approved".to_string()),
        "{reasons:?}"
    );

    // No phone registered: told so, refused through the core (push_required), even with
    // a right code at hand.
    mfa_e2e::avoid_step_boundary(3);
    let r = pamtester(
        &pushed.name,
        &nophone,
        Some(rhost),
        &format!("{}\n", totp(&key2, 0)),
        None,
    );
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(r.all().contains("No phone is registered"), "{r:?}");
    assert!(r.all().contains("must be approved on your phone"), "{r:?}");
    let reasons = audit_reasons(&site.config, &nophone);
    assert!(
        reasons.contains(&"push_required".to_string()),
        "{reasons:?}"
    );
    // The same code, unused, lets in through the service no rule names.
    let r = pamtester(
        &plain.name,
        &nophone,
        Some(rhost),
        &format!("{}\n", totp(&key2, 0)),
        None,
    );
    assert_eq!(r.result, PamResult::Success, "{r:?}");
}

/// The portal's sign-in asks as the service `mfa-portal`, through the same rules: a deny
/// rule for it from one network refuses the sign-in with the right code there, and only
/// there.
#[test]
fn the_portal_sign_in_is_matched_as_the_service_mfa_portal() {
    use mfa_e2e::portal::{Client, http_site};
    let (site, portal) = http_site(
        "",
        "[[policy.rules]]\nname = \"no-portal-from-guests\"\nservices = [\"mfa-portal\"]\nnetworks = [\"198.51.100.0/24\"]\naction = \"deny\"\n",
    );
    let (user, key) = (unique("portal"), fresh_key());
    site.enroll(&user, &key);
    mfa_e2e::avoid_step_boundary(3);
    let mut guest = Client::new(&portal.url).from("198.51.100.5");
    let r = guest.sign_in(&user, &totp(&key, 0));
    assert!(
        !r.body
            .contains(&format!("<strong id=\"user\">{user}</strong>")),
        "signed in from the denied network: {}",
        r.body
    );
    let mut staff = Client::new(&portal.url).from("192.0.2.5");
    let r = staff.sign_in(&user, &totp(&key, 0));
    assert!(
        r.body
            .contains(&format!("<strong id=\"user\">{user}</strong>")),
        "{}",
        r.body
    );
    let o = site.mfactl(&["log", &user, "--format", "json"]);
    let events: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        events.iter().any(|e| e["service"] == "mfa-portal"
            && e["reason"] == "rule_denied"
            && e["client_ip"] == "198.51.100.5"
            && e["detail"] == "policy.rules[0] \"no-portal-from-guests\""),
        "{events:#?}"
    );
}
