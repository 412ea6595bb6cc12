//! A trusted range that holds half the internet or more is no trusted network but MFA turned
//! off for everyone, which has its own settings: every loader refuses it. Through the real
//! front ends: `mfactl trusted add` (exit 2, the file unchanged), `mfactl config check`,
//! mfa-radiusd and mfa-portal (refuse to start), and the PAM module under pamtester (fails
//! closed). A public range larger than a /8 is only a warning.

use std::process::Command;

use mfa_e2e::pam::{PamResult, PamService, pamtester, require_root};
use mfa_e2e::radius::{SECRET, free_udp_port, spawn_daemon};
use mfa_e2e::{Site, code_of, fresh_key, text};

/// The first line of `needle` in `text` (1-based), for the line a problem must name.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in {text}"))
}

#[test]
fn trusted_add_refuses_half_the_internet_and_leaves_the_file_unchanged() {
    let site = Site::new("");
    let before = std::fs::read(&site.config).unwrap();
    for net in [
        "0.0.0.0/0",
        "::/0",
        "0.0.0.0/1",
        "128.0.0.0/1",
        "::ffff:0:0/96",
    ] {
        let o = site.mfactl(&["trusted", "add", net]);
        let out = text(&o);
        assert_eq!(code_of(&o), 2, "{net}: {out}");
        assert!(!out.contains("Added"), "{net}: {out}");
        assert!(out.contains("policy.trusted_networks[3]"), "{net}: {out}");
        assert!(out.contains("turn MFA off"), "{net}: {out}");
        assert_eq!(
            std::fs::read(&site.config).unwrap(),
            before,
            "{net}: the file changed"
        );
        assert_eq!(
            code_of(&site.mfactl(&["trusted", "test", "198.51.100.7"])),
            1,
            "{net}: the internet is trusted"
        );
    }
    // A quarter is accepted (with a warning in config check); the quarter that makes it half
    // with it is refused, naming the list.
    let o = site.mfactl(&["trusted", "add", "0.0.0.0/2"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    let with_quarter = std::fs::read(&site.config).unwrap();
    let o = site.mfactl(&["trusted", "add", "64.0.0.0/2"]);
    assert_eq!(code_of(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("together"), "{}", text(&o));
    assert_eq!(std::fs::read(&site.config).unwrap(), with_quarter);
    let o = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains("warning:") && text(&o).contains("0.0.0.0/2 is a public range"),
        "{}",
        text(&o)
    );
}

#[test]
fn config_check_reports_a_whole_internet_trusted_range_with_its_line() {
    for (list, needle) in [
        ("\"10.0.0.0/8\", \"0.0.0.0/0\"", "\"0.0.0.0/0\""),
        ("\"::/0\"", "\"::/0\""),
        ("\"0.0.0.0/1\"", "\"0.0.0.0/1\""),
    ] {
        let site = Site::with_config(&format!(
            "[store]\npath = \"mfa.db\"\nkey_file = \"mfa.key\"\n[policy]\n# everyone\ntrusted_networks = [\n  {}\n]\n",
            list.replace(", ", ",\n  ")
        ));
        let cfg = std::fs::read_to_string(&site.config).unwrap();
        let o = site.mfactl(&["config", "check"]);
        let out = text(&o);
        assert_eq!(code_of(&o), 2, "{list}: {out}");
        let line = line_of(&cfg, needle);
        assert!(
            out.contains(&format!("mfa.toml:{line}: policy.trusted_networks[")),
            "{list}: line {line} not named: {out}"
        );
        assert!(!out.contains(": OK"), "{out}");
    }
}

/// A site with RADIUS settings and `trusted` as its trusted networks.
fn radius_site(trusted: &str, port: u16) -> Site {
    Site::with_config(&format!(
        r#"[store]
path = "mfa.db"
key_file = "mfa.key"
[policy]
trusted_networks = [{trusted}]
[audit]
syslog = false
[portal]
listen = "127.0.0.1:{port}"
[radius]
listen = ["127.0.0.1:{port}"]
mode = "code-only"
first_factor = "none"
[[radius.clients]]
name = "rd-gateway"
address = "127.0.0.1/32"
secret = "{SECRET}"
"#
    ))
}

#[test]
fn the_daemons_refuse_to_start_with_the_internet_trusted() {
    let port = free_udp_port();
    let site = radius_site("\"10.0.0.0/8\", \"::/0\"", port);
    assert_eq!(code_of(&site.mfactl(&["init"])), 2, "init refuses it too");
    let mut d = spawn_daemon(&site.config, None);
    let st = d.stop_when_exited();
    assert!(!st.success(), "mfa-radiusd ran: {}", d.log());
    assert!(
        d.log().contains("policy.trusted_networks[1]"),
        "{}",
        d.log()
    );
    assert!(!d.log().contains("listening on"), "{}", d.log());

    let o = Command::new(mfa_e2e::bin("mfa-portal"))
        .arg("--config")
        .arg(&site.config)
        .output()
        .unwrap();
    assert!(!o.status.success(), "mfa-portal ran: {}", text(&o));
    assert!(
        text(&o).contains("policy.trusted_networks[1]"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_pam_login_with_the_internet_trusted_fails_closed() {
    require_root("the PAM module under pamtester (a service file in /etc/pam.d)");
    let site = Site::new("");
    let user = mfa_e2e::unique("wide");
    site.enroll(&user, &fresh_key());
    let svc = PamService::mfa_only(&site.config, "");
    // Sanity: from outside, the code is asked for.
    let r = pamtester(&svc.name, &user, Some("198.51.100.7"), "\n", None);
    assert!(r.prompted(), "{r:?}");
    let good = std::fs::read_to_string(&site.config).unwrap();
    for wide in ["0.0.0.0/0", "0.0.0.0/1", "::ffff:0:0/96"] {
        std::fs::write(
            &site.config,
            good.replace(
                "\"127.0.0.1/32\",",
                &format!("\"127.0.0.1/32\", \"{wide}\","),
            ),
        )
        .unwrap();
        let r = pamtester(&svc.name, &user, Some("198.51.100.7"), "", None);
        assert_eq!(r.result, PamResult::AuthErr, "{wide}: {r:?}");
        assert!(!r.prompted(), "{wide}: {r:?}");
        // Not even from a host that was trusted before.
        let r = pamtester(&svc.name, &user, Some("127.0.0.1"), "", None);
        assert_eq!(r.result, PamResult::AuthErr, "{wide}: {r:?}");
    }
}
