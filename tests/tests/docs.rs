//! The documents an administrator reads against the code they describe: every reason code a
//! login decision or a gateway's session report can log (model/src/audit.rs, ReasonCode) and
//! every kind of dropped packet the daemon counts is explained in
//! docs/OPERATIONS.md's troubleshooting chapter, and the OpenVPN recipe in docs/RADIUS.md
//! has what keeps the tunnel up (issue 21). The codes are read from the sources that define
//! them, so a new one without an explanation fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn read(rel: &str) -> String {
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::read_to_string(top.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `text` with every run of white space one space (phrases wrap across lines).
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The string literals on the right of `=> "..."` inside the function `name` of `source`.
fn codes_of(source: &str, function: &str) -> Vec<String> {
    let start = source
        .find(&format!("fn {function}("))
        .unwrap_or_else(|| panic!("no fn {function}"));
    let body = &source[start..];
    let end = body.find("\n    }\n").unwrap_or(body.len());
    body[..end]
        .split("=> \"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

#[test]
fn every_reason_and_drop_kind_is_explained_in_the_troubleshooting_chapter() {
    let doc = read("docs/OPERATIONS.md");
    let chapter = doc
        .split("## Troubleshooting")
        .nth(1)
        .expect("docs/OPERATIONS.md has a Troubleshooting chapter");
    // The login decisions' codes and the gateway sessions' (accounting, issue 21): the first
    // part of the audit trail's ReasonCode table, up to the administrator's actions.
    let model = read("model/src/audit.rs");
    let logins = model
        .split("// Login decisions.")
        .nth(1)
        .expect("ReasonCode has its login decisions first")
        .split("// Administrator's actions.")
        .next()
        .unwrap();
    let reasons: Vec<String> = logins
        .split("= \"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect();
    assert!(reasons.len() > 20, "{reasons:?}");
    let drops = codes_of(&read("radius_server/src/stats.rs"), "name");
    assert!(drops.len() >= 8, "{drops:?}");
    let missing: Vec<&String> = reasons
        .iter()
        .chain(&drops)
        .filter(|c| !chapter.contains(&format!("`{c}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not explained in docs/OPERATIONS.md, Troubleshooting: {missing:?}"
    );
}

#[test]
fn the_openvpn_recipe_keeps_the_tunnel_up() {
    let doc = read("docs/RADIUS.md");
    let recipe = doc
        .split("### OpenVPN")
        .nth(1)
        .unwrap()
        .split("\n### ")
        .next()
        .unwrap();
    for want in [
        "plugin /usr/lib/openvpn/radiusplugin.so /etc/openvpn/radiusplugin.cnf",
        "auth-gen-token",
        "reneg-sec 0",
        "radiusplugin.cnf",
        "sharedsecret=",
        "authport=1812",
        "FOUR digits",
        "replayed_code",
        // Issue 21: Debian's plugin sends no Message-Authenticator, and its accounting
        // goes to 1813.
        "require_message_authenticator = false",
        "acctport=1813",
    ] {
        assert!(recipe.contains(want), "{want:?} not in the OpenVPN recipe");
    }
    let ocserv = doc
        .split("### ocserv")
        .nth(1)
        .expect("docs/RADIUS.md has an ocserv recipe")
        .split("\n### ")
        .next()
        .unwrap();
    for want in [
        "auth = \"radius[config=",
        "acct = \"radius[config=",
        "acctserver",
        "require_message_authenticator = false",
        "C string",
    ] {
        assert!(ocserv.contains(want), "{want:?} not in the ocserv recipe");
    }
    let nps = flat(
        doc.split("### Microsoft RD Gateway through NPS")
            .nth(1)
            .unwrap(),
    );
    for want in [
        "Remote RADIUS Server Groups",
        "Load Balancing",
        "domains = [\"CONTOSO\"",
        "remember_for",
        "Unlock remote desktop from this network",
    ] {
        assert!(nps.contains(want), "{want:?} not in the RD Gateway recipe");
    }
    let ops = read("docs/OPERATIONS.md");
    for want in [
        "## Ports and firewall",
        "## A reverse proxy in front of the portal",
        "trusted_proxies",
        "proxy_pass http://127.0.0.1:8080",
    ] {
        assert!(ops.contains(want), "{want:?} not in docs/OPERATIONS.md");
    }
}
