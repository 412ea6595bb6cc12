//! `[directory]` (issue 23, item 1) against a real Samba AD DC and a real slapd on loopback:
//! nested and primary-group membership (`mfactl directory test`, and a `[[policy.rules]]`
//! groups rule decided by `mfactl auth`), the UPN and `DOMAIN\user` as one user, the first
//! factor by an LDAP bind through radclient in append mode, failover, a wrong CA, and a
//! stopped directory denying. Each test starts its own servers (tests/src/directory.rs) and
//! skips with a message where Samba or slapd is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mfa_e2e::directory::*;
use mfa_e2e::{Site, code_of, text};

/// A site whose `[users]` lists the domain's names, with its `[directory]` from `directory`
/// (given the site's own directory, where the password file goes) and `rest` appended; its
/// store made.
fn site_with(directory: impl FnOnce(&std::path::Path) -> String, rest: &str) -> Site {
    let site = Site::new("");
    let table = directory(site.path());
    std::fs::write(
        &site.config,
        format!(
            "{}[users]\ndomains = [\"TEST\", \"test.lan\"]\n{table}{rest}",
            mfa_e2e::BASE_CONFIG
        ),
    )
    .unwrap();
    let o = site.mfactl(&["init"]);
    assert!(o.status.success(), "{}", text(&o));
    site
}

fn ad_site(dc: &SambaDc, rest: &str) -> Site {
    site_with(|d| ad_directory_toml(d, &[dc.url()], &dc.ca_file()), rest)
}

/// A RADIUS site in `mode` with `first_factor = "ldap"`, the directory table `directory` writes
/// and `rest` after it, initialised; the daemon's address (not started).
fn ldap_radius_site(
    mode: &str,
    directory: impl FnOnce(&std::path::Path) -> String,
    rest: &str,
) -> (Site, String) {
    use mfa_e2e::radius::*;
    let port = mfa_e2e::free_udp_port();
    let radius = config_text(mode, &format!("\"127.0.0.1:{port}\""), "", SECRET)
        .replace("first_factor = \"pam\"", "first_factor = \"ldap\"");
    let site = Site::with_config(&radius);
    let table = directory(site.path());
    std::fs::write(&site.config, format!("{radius}\n{table}{rest}")).unwrap();
    let o = site.mfactl(&["init"]);
    assert!(o.status.success(), "{}", text(&o));
    (site, format!("127.0.0.1:{port}"))
}

/// `[users] domains` of the AD tests, written before the directory's table.
const AD_DOMAINS: &str = "[users]\ndomains = [\"TEST\", \"test.lan\"]\n";

fn directory_test(site: &Site, user: &str) -> (i32, String) {
    let o = site.mfactl(&["directory", "test", user]);
    (code_of(&o), text(&o))
}

#[test]
fn ad_nested_and_primary_groups_and_one_name_for_upn_and_domain_user() {
    if !have_samba() {
        return;
    }
    let dc = SambaDc::start();
    let site = ad_site(&dc, "");

    for spelling in ["alice", "TEST\\alice", "alice@test.lan", "Alice@TEST.LAN"] {
        let (code, out) = directory_test(&site, spelling);
        assert_eq!(code, 0, "{spelling}: {out}");
        assert!(out.contains("canonical name: alice\n"), "{out}");
        assert!(out.contains("found: yes"), "{out}");
        assert!(out.contains("group: g_inner  via g_inner\n"), "{out}");
        assert!(
            out.contains("group: g_outer  via g_inner > g_mid > g_outer\n"),
            "the nesting path: {out}"
        );
        assert!(
            out.contains(&format!("server: ldaps://{}:636", dc.ip)),
            "{out}"
        );
    }
    // bob's primary group is no `member` link: found by its SID, and what it is nested in.
    let (code, out) = directory_test(&site, "bob");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("group: g_prim  via g_prim (primary group)"),
        "{out}"
    );
    assert!(
        out.contains("group: g_primouter  via g_prim > g_primouter (primary group)"),
        "{out}"
    );
    assert!(!out.contains("g_outer"), "{out}");
    // Unknown: found no, exit 1.
    let (code, out) = directory_test(&site, "nobody-here");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("found: no"), "{out}");
    // JSON for a program.
    let o = site.mfactl(&["directory", "test", "TEST\\bob", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["canonical"], "bob");
    let groups = v["entry"]["groups"].as_array().unwrap();
    assert!(groups.iter().any(|g| g["name"] == "g_primouter"
        && g["primary"] == true
        && g["path"] == serde_json::json!(["g_prim", "g_primouter"])));
}

/// The rules of the test: members of g_outer (alice, through g_inner and g_mid) are refused;
/// members of g_primouter (bob, through his primary group) need no code.
const RULES: &str = r#"
[[policy.rules]]
name = "outer-denied"
groups = ["g_outer"]
action = "deny"

[[policy.rules]]
name = "primary-none"
groups = ["g_primouter"]
action = "none"
"#;

fn auth(site: &Site, user: &str) -> (i32, String) {
    let o = site.mfactl(&["auth", user, "--service", "sshd", "--ip", "192.0.2.7"]);
    (code_of(&o), text(&o))
}

/// A `[[policy.rules]]` groups rule matches a nested group and a primary group's parent,
/// decided by `mfactl auth` (the user admitted because the directory knows the name); a
/// stopped directory refuses, never lets in.
#[test]
fn ad_groups_decide_rules_and_a_stopped_directory_denies() {
    if !have_samba() {
        return;
    }
    let mut dc = SambaDc::start();
    let site = ad_site(&dc, RULES);
    let (code, out) = auth(&site, "TEST\\alice");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("rule: policy.rules[0] \"outer-denied\": action deny"),
        "{out}"
    );
    let (code, out) = auth(&site, "bob@test.lan");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("rule: policy.rules[1] \"primary-none\": action none"),
        "{out}"
    );
    // A name the directory does not know is no one an administrator may act on unasked.
    let (code, out) = auth(&site, "nobody-here");
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("rule: policy.rules"), "{out}");

    let allowed = |site: &Site| {
        let o = site.mfactl(&["log", "--format", "csv"]);
        text(&o)
            .lines()
            .filter(|l| l.contains(",bob,") && l.contains(",allow,"))
            .count()
    };
    assert_eq!(allowed(&site), 1);

    dc.stop();
    // bob's rule would let him in without a code: with no directory the groups are not
    // known, so nothing is decided (exit 2, the directory named), and nothing is allowed.
    for user in ["bob", "TEST\\bob", "alice"] {
        let (code, out) = auth(&site, user);
        assert_eq!(code, 2, "{user}: {out}");
        assert!(
            out.contains("the directory did not answer"),
            "{user}: {out}"
        );
        assert!(!out.contains("Allow"), "{user}: {out}");
    }
    // And the audit trail holds no further allowed login for bob.
    assert_eq!(allowed(&site), 1);
}

/// Servers in order: the first answers while it runs; stopped, the second does. A CA that
/// did not sign the servers' certificates is refused (the TLS check cannot be skipped).
#[test]
fn ad_failover_and_a_wrong_ca() {
    if !have_samba() {
        return;
    }
    let mut dc1 = SambaDc::start();
    let dc2 = SambaDc::start();
    let site = site_with(
        |d| ad_directory_toml(d, &[dc1.url(), dc2.url()], &dc1.ca_file()),
        "",
    );
    let (code, out) = directory_test(&site, "alice");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("server: ldaps://{}:636", dc1.ip)),
        "{out}"
    );
    dc1.stop();
    let (code, out) = directory_test(&site, "alice");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("server: ldaps://{}:636", dc2.ip)),
        "{out}"
    );
    assert!(out.contains("g_inner > g_mid > g_outer"), "{out}");

    let other = tempfile::tempdir().unwrap();
    let wrong = new_ca(other.path());
    let site = site_with(|d| ad_directory_toml(d, &[dc2.url()], &wrong.pem()), "");
    let (code, out) = directory_test(&site, "alice");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("the directory did not answer"), "{out}");
    assert!(out.to_lowercase().contains("certificate"), "{out}");
}

/// A reply with what differs between two requests zeroed: the Identifier, the Response
/// Authenticator and the Message-Authenticator's value.
fn normalised(reply: &[u8]) -> Vec<u8> {
    let mut r = reply.to_vec();
    r[1] = 0;
    r[4..20].fill(0);
    let mut i = 20;
    while i + 2 <= r.len() {
        let (typ, len) = (r[i], usize::from(r[i + 1]));
        if typ == 80 && len == 18 {
            r[i + 2..i + 18].fill(0);
        }
        i += len.max(2);
    }
    r
}

/// `first_factor = "ldap"` in append mode through radclient: the password by a bind as the
/// user, `TEST\alice` and the UPN reaching alice's one record; a wrong password, an unknown
/// name, a disabled account and an empty password all get the same reply, each after the
/// same floor; a stopped directory rejects.
#[test]
fn ad_first_factor_by_bind_in_append_mode_through_radclient() {
    use mfa_e2e::radius::*;
    if !have_samba() {
        return;
    }
    mfa_e2e::require_tool("radclient");
    let mut dc = SambaDc::start();
    let (site, addr) = ldap_radius_site(
        "append",
        |d| {
            format!(
                "{AD_DOMAINS}{}",
                ad_directory_toml(d, &[dc.url()], &dc.ca_file())
            )
        },
        "",
    );
    let key = mfa_e2e::fresh_key();
    site.enroll("alice", &key);
    let _daemon = {
        let d = spawn_daemon(&site.config, None);
        d.wait_log("listening on", 1);
        d
    };
    mfa_e2e::avoid_step_boundary(8);
    let code = mfa_e2e::totp(&key, 0);
    let ok = radclient(
        &addr,
        SECRET,
        "auth",
        &attrs(
            "TEST\\alice",
            Some(&format!("{ALICE_PASSWORD}{code}")),
            Some(UNTRUSTED_CSI),
            true,
        ),
        10,
    );
    assert!(ok.is("Access-Accept"), "{}", ok.output);

    // Refusals: each the same reply, none sooner than the floor.
    let relay = Relay::new(&addr);
    let code = mfa_e2e::totp(&key, 1);
    let mut replies = Vec::new();
    for (name, password) in [
        ("alice", "Wr0ng-password!"),
        ("alice@test.lan", "Wr0ng-password!"),
        ("nobody-here", ALICE_PASSWORD),
        ("carol", CAROL_PASSWORD),
        ("alice", ""),
    ] {
        let start = std::time::Instant::now();
        let (r, _, reply) = relay.exchange(&attrs(
            name,
            Some(&format!("{password}{code}")),
            Some(UNTRUSTED_CSI),
            true,
        ));
        let took = start.elapsed();
        assert!(r.is("Access-Reject"), "{name}: {}", r.output);
        assert!(
            took >= std::time::Duration::from_millis(1900),
            "{name}: answered after {took:?}, before the floor"
        );
        replies.push((name, normalised(&reply)));
    }
    for (name, got) in &replies[1..] {
        assert_eq!(got, &replies[0].1, "the reply for {name} differs");
    }
    // One record, alice's, however she was named.
    let o = site.mfactl(&["report", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["totals"]["users"].as_u64(), Some(1), "{}", text(&o));

    dc.stop();
    let code = mfa_e2e::totp(&key, 1);
    let r = radclient(
        &addr,
        SECRET,
        "auth",
        &attrs(
            "alice",
            Some(&format!("{ALICE_PASSWORD}{code}")),
            Some(UNTRUSTED_CSI),
            true,
        ),
        10,
    );
    assert!(
        !r.is("Access-Accept"),
        "a stopped directory let in: {}",
        r.output
    );
    assert!(r.is("Access-Reject"), "{}", r.output);
}

/// OpenLDAP has no in-chain rule: the groups of groups are followed through `memberOf`; the
/// primary group is RFC 2307's `gidNumber`; `TEST\alice` and the UPN are alice.
#[test]
fn slapd_nested_groups_through_member_of() {
    if !have_slapd() {
        return;
    }
    let ldap = Slapd::start();
    let site = site_with(|d| ldap.directory_toml(d), "");
    let (code, out) = directory_test(&site, "alice");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("group: inner  via inner\n"), "{out}");
    assert!(out.contains("group: mid  via inner > mid\n"), "{out}");
    assert!(
        out.contains("group: outer  via inner > mid > outer\n"),
        "{out}"
    );
    assert!(out.contains(&format!("server: {}", ldap.url())), "{out}");
    let (code, out) = directory_test(&site, "bob");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("group: other  via other\n") && !out.contains("outer"),
        "{out}"
    );
    // bob's primary group (RFC 2307: his gidNumber names a posixGroup that lists nobody),
    // and the group it is a member of.
    assert!(
        out.contains("group: staff  via staff (primary group)"),
        "{out}"
    );
    assert!(
        out.contains("group: allstaff  via staff > allstaff (primary group)"),
        "{out}"
    );
    let (code, out) = directory_test(&site, "nobody-here");
    assert_eq!(code, 1, "{out}");
    // `DOMAIN\user` and the user principal name are one user here too (`[users] domains`
    // makes them `alice`; the directory finds her by `uid`).
    for spelling in ["TEST\\alice", "alice@test.lan", "ALICE"] {
        let (code, out) = directory_test(&site, spelling);
        assert_eq!(code, 0, "{spelling}: {out}");
        assert!(out.contains("canonical name: alice\n"), "{spelling}: {out}");
        assert!(
            out.contains("group: inner  via inner\n"),
            "{spelling}: {out}"
        );
    }
}

/// `first_factor = "ldap"` in challenge mode: the right password gets the Access-Challenge
/// and the code then lets in; a wrong one is rejected in the first round, with no challenge.
#[test]
fn ad_first_factor_by_bind_in_challenge_mode() {
    use mfa_e2e::radius::*;
    if !have_samba() {
        return;
    }
    mfa_e2e::require_tool("radclient");
    let dc = SambaDc::start();
    let (site, addr) = ldap_radius_site(
        "challenge",
        |d| {
            format!(
                "{AD_DOMAINS}{}",
                ad_directory_toml(d, &[dc.url()], &dc.ca_file())
            )
        },
        "",
    );
    let key = mfa_e2e::fresh_key();
    site.enroll("alice", &key);
    let daemon = spawn_daemon(&site.config, None);
    daemon.wait_log("listening on", 1);
    let send = |a: &str| radclient(&addr, SECRET, "auth", a, 10);

    let r = send(&attrs(
        "alice@test.lan",
        Some("Wr0ng-password!"),
        Some(UNTRUSTED_CSI),
        true,
    ));
    assert!(r.is("Access-Reject") && r.state.is_none(), "{}", r.output);

    let r = send(&attrs(
        "alice@test.lan",
        Some(ALICE_PASSWORD),
        Some(UNTRUSTED_CSI),
        true,
    ));
    assert!(r.is("Access-Challenge"), "{}", r.output);
    mfa_e2e::avoid_step_boundary(5);
    let code = mfa_e2e::totp(&key, 0);
    let r = send(&format!(
        "User-Name = \"alice@test.lan\"\nUser-Password = \"{code}\"\nCalling-Station-Id = \"{UNTRUSTED_CSI}\"\nState = {}\nMessage-Authenticator = 0x00\n",
        r.state.unwrap()
    ));
    assert!(r.is("Access-Accept"), "{}", r.output);
}

/// slapd as the directory of the RADIUS daemon: a groups rule on a nested group (through
/// `memberOf` followed), the first factor by bind in append mode through radclient, and a
/// stopped slapd refusing.
#[test]
fn slapd_rules_and_first_factor_and_a_stopped_server_denies() {
    use mfa_e2e::radius::*;
    if !have_slapd() {
        return;
    }
    mfa_e2e::require_tool("radclient");
    let mut ldap = Slapd::start();
    let rules = "\n[[policy.rules]]\nname = \"outer-code\"\ngroups = [\"outer\"]\naction = \"code\"\n\n[[policy.rules]]\nname = \"other-denied\"\ngroups = [\"other\"]\naction = \"deny\"\n";
    let (site, addr) = ldap_radius_site("append", |d| ldap.directory_toml(d), rules);
    let (code, out) = auth(&site, "bob");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"other-denied\""), "{out}");
    let key = mfa_e2e::fresh_key();
    site.enroll("alice", &key);
    let daemon = spawn_daemon(&site.config, None);
    daemon.wait_log("listening on", 1);
    // From a trusted network, alice still types a code: her group outer (through inner and
    // mid) matches the rule.
    let trusted = "10.1.2.3";
    mfa_e2e::avoid_step_boundary(5);
    let code = mfa_e2e::totp(&key, 0);
    let send = |user: &str, password: &str| {
        radclient(
            &addr,
            SECRET,
            "auth",
            &attrs(user, Some(password), Some(trusted), true),
            10,
        )
    };
    let r = send("alice", SLAPD_PASSWORD);
    assert!(r.is("Access-Reject"), "no code: {}", r.output);
    let r = send("alice", &format!("{SLAPD_PASSWORD}{code}"));
    assert!(r.is("Access-Accept"), "{}", r.output);
    let code = mfa_e2e::totp(&key, 1);
    let r = send("alice", &format!("Wr0ng-password{code}"));
    assert!(r.is("Access-Reject"), "{}", r.output);
    let r = send("bob", SLAPD_PASSWORD);
    assert!(r.is("Access-Reject"), "{}", r.output);

    ldap.stop();
    let r = send("alice", &format!("{SLAPD_PASSWORD}{code}"));
    assert!(
        r.is("Access-Reject"),
        "a stopped slapd let in: {}",
        r.output
    );
    let (code, out) = auth(&site, "alice");
    assert_eq!(code, 2, "{out}");
}
