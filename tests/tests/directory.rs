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
