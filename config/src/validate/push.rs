//! `[push]`, and the `push` and `number_matching` of each `[[radius.clients]]` entry.

use super::{Problems, k};
use crate::{Config, PushMode, Seg};

/// `[push]`.
pub(super) fn push(cfg: &Config, v: &mut Problems<'_>) {
    let p = &cfg.push;
    let at = |key: &str| vec![k("push"), k(key)];
    let t = p.timeout.as_secs();
    if !(10..=600).contains(&t) {
        v.bad(
            at("timeout"),
            "must be between 10s and 10m: the phone needs time to show the request, and a gateway waits no longer than its own timeout".into(),
        );
    }
    let b = p.fraud_block.as_secs();
    if !(60..=30 * 86_400).contains(&b) {
        v.bad(at("fraud_block"), "must be between 1m and 30d".into());
    }
    if !(1..=100).contains(&p.rate.count) {
        v.bad(
            at("rate"),
            format!(
                "{}: between 1 and 100 requests per user, like \"5/10m\"",
                p.rate
            ),
        );
    }
    if !(60..=86_400).contains(&p.rate.per.as_secs()) {
        v.bad(
            at("rate"),
            format!(
                "{}: the time must be between 1m and 1d, like \"5/10m\"",
                p.rate
            ),
        );
    }
    if !(1..=60).contains(&p.outbox_poll.as_secs()) {
        v.bad(
            at("outbox_poll"),
            "must be between 1s and 1m: it is how late a request whose wake-up was lost is pushed"
                .into(),
        );
    }
    if p.vapid_key_file.as_os_str().is_empty() {
        v.bad(at("vapid_key_file"), "must not be empty".into());
    }
    match &p.subscriber {
        Some(s) if !valid_subscriber(s) => v.bad(
            at("subscriber"),
            format!(
                "{s:?} is not a mailto: or https: address (push services use it to contact the sender), like \"mailto:it@example.com\""
            ),
        ),
        None if p.enabled && cfg.portal.base_url().is_none() => v.bad(
            at("subscriber"),
            "required while [portal] public_url is not set: a mailto: or https: address push services can contact (the VAPID sub), like \"mailto:it@example.com\"".into(),
        ),
        _ => {}
    }
    if p.enabled && p.services.is_empty() {
        v.bad(
            at("services"),
            "no push service is allowed, so no phone could be registered".into(),
        );
    }
    for (i, s) in p.services.iter().enumerate() {
        if let Some(why) = bad_service(s) {
            v.bad(vec![k("push"), k("services"), Seg::Index(i)], why);
        } else if p.services[..i].contains(s) {
            v.bad(
                vec![k("push"), k("services"), Seg::Index(i)],
                format!("{s:?} is listed twice"),
            );
        }
    }
    for (i, c) in cfg.radius.clients.iter().enumerate() {
        let at = |key: &str| vec![k("radius"), k("clients"), Seg::Index(i), k(key)];
        match c.push {
            Some(m @ (PushMode::On | PushMode::Only)) if !p.enabled => v.bad(
                at("push"),
                format!(
                    "\"{}\" while [push] enabled is false: turn push on in [push] first",
                    m.as_str()
                ),
            ),
            Some(PushMode::Off) if c.number_matching.is_some() => v.bad(
                at("number_matching"),
                "has no effect: push is \"off\" for this client".into(),
            ),
            _ => {}
        }
    }
}

fn valid_subscriber(s: &str) -> bool {
    let rest = s
        .strip_prefix("mailto:")
        .or_else(|| s.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_graphic()))
}

/// Why `s` is no `[push] services` entry: a host name, or an origin `scheme://host:port`.
fn bad_service(s: &str) -> Option<String> {
    let host_ok = |h: &str| {
        !h.is_empty()
            && h.len() <= 253
            && h.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    };
    match s.split_once("://") {
        None if host_ok(s) => None,
        None => Some(format!(
            "{s:?} is not a host name (like \"fcm.googleapis.com\") nor an origin (like \"http://localhost:8123\")"
        )),
        Some((scheme, rest)) => {
            let port_ok = rest.rsplit_once(':').is_some_and(|(h, p)| {
                let h = h.trim_start_matches('[').trim_end_matches(']');
                p.parse::<u16>().is_ok_and(|p| p > 0)
                    && (host_ok(h) || h.parse::<std::net::IpAddr>().is_ok())
            });
            if !matches!(scheme, "http" | "https") || !port_ok {
                Some(format!(
                    "{s:?}: an origin is http:// or https://, a host and a port, like \"http://localhost:8123\""
                ))
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{ConfigError, PushMode, parse};

    fn parse_str(t: &str) -> Result<crate::Config, ConfigError> {
        parse(t, Path::new("/etc/mfa/mfa.toml"))
    }

    fn keys(e: &ConfigError) -> Vec<String> {
        e.problems.iter().map(|p| p.key.clone().unwrap()).collect()
    }

    #[test]
    fn push_defaults_and_a_full_section() {
        let c = parse_str("").unwrap();
        assert!(!c.push.enabled);
        assert_eq!(c.push.timeout.as_secs(), 60);
        assert!(c.push.number_matching);
        assert_eq!(c.push.fraud_block.as_secs(), 3600);
        assert_eq!((c.push.rate.count, c.push.rate.per.as_secs()), (5, 600));
        assert_eq!(c.push.vapid_key_file, Path::new("/etc/mfa/vapid.key"));
        assert_eq!(c.push.outbox_poll.as_secs(), 1);
        assert_eq!(c.push_default().mode, PushMode::Off);
        let c = parse_str(
            r#"
[push]
enabled = true
timeout = "90s"
number_matching = false
fraud_block = "2h"
rate = "3/5m"
vapid_key_file = "keys/vapid.pem"
subscriber = "mailto:it@example.com"
services = ["fcm.googleapis.com", "http://localhost:8123"]
outbox_poll = "30s"
[[radius.clients]]
name = "rdgw"
address = "192.0.2.10"
secret = "a-long-enough-secret-here"
mode = "code-only"
push = "only"
[[radius.clients]]
name = "vpn"
address = "192.0.2.11"
secret = "a-long-enough-secret-here"
number_matching = true
[[radius.clients]]
name = "old"
address = "192.0.2.12"
secret = "a-long-enough-secret-here"
push = "off"
"#,
        )
        .unwrap();
        assert_eq!(c.push.vapid_key_file, Path::new("/etc/mfa/keys/vapid.pem"));
        assert_eq!(c.push.subscriber_or(&c), Some("mailto:it@example.com"));
        assert_eq!(c.push.outbox_poll.as_secs(), 30);
        let get = |n: &str| c.push_for_client_named(n);
        assert_eq!(get("rdgw").mode, PushMode::Only);
        assert!(!get("rdgw").number_matching);
        assert_eq!(get("vpn").mode, PushMode::On);
        assert!(get("vpn").number_matching);
        assert_eq!(get("old").mode, PushMode::Off);
        assert_eq!(get("no-such-client"), c.push_default());
    }

    #[test]
    fn bad_push_keys_are_named() {
        let e = parse_str(
            r#"
[push]
enabled = true
timeout = "5s"
fraud_block = "0s"
rate = "0/10s"
outbox_poll = "2m"
subscriber = "it@example.com"
services = ["https://fcm.googleapis.com", "bad host", "fcm.googleapis.com", "fcm.googleapis.com"]
"#,
        )
        .unwrap_err();
        assert_eq!(
            keys(&e),
            [
                "push.timeout",
                "push.fraud_block",
                "push.rate",
                "push.rate",
                "push.outbox_poll",
                "push.subscriber",
                "push.services[0]",
                "push.services[1]",
                "push.services[3]"
            ],
            "{e}"
        );
        assert!(e.problems.iter().all(|p| p.line.is_some()), "{e}");
        let e = parse_str("[push]\nrate = \"five a minute\"\n").unwrap_err();
        assert!(e.to_string().contains("like \"5/10m\""), "{e}");
        // Enabled with nobody to name as the sender.
        let e = parse_str("[push]\nenabled = true\n").unwrap_err();
        assert_eq!(keys(&e), ["push.subscriber"], "{e}");
        parse_str("[push]\nenabled = true\n[portal]\npublic_url = \"https://mfa.example.com\"\n")
            .unwrap();
        let e = parse_str("[push]\nenabled = true\nsubscriber = \"mailto:a@b\"\nservices = []\n")
            .unwrap_err();
        assert_eq!(keys(&e), ["push.services"], "{e}");
    }

    #[test]
    fn a_client_cannot_turn_on_what_push_has_off() {
        let client = |extra: &str| {
            format!(
                "[[radius.clients]]\nname = \"vpn\"\naddress = \"192.0.2.11\"\nsecret = \"a-long-enough-secret-here\"\n{extra}"
            )
        };
        for mode in ["on", "only"] {
            let e = parse_str(&client(&format!("push = \"{mode}\"\n"))).unwrap_err();
            assert_eq!(keys(&e), ["radius.clients[0].push"], "{e}");
            assert!(e.to_string().contains("[push] enabled is false"), "{e}");
        }
        let e = parse_str(&client("push = \"off\"\nnumber_matching = true\n")).unwrap_err();
        assert_eq!(keys(&e), ["radius.clients[0].number_matching"], "{e}");
        let e = parse_str(&client("push = \"sometimes\"\n")).unwrap_err();
        assert!(e.to_string().contains("sometimes"), "{e}");
        // Off while [push] is off: push is off for every client, whatever it says.
        let c = parse_str(&client("push = \"off\"\n")).unwrap();
        assert_eq!(c.push_for_client_named("vpn").mode, PushMode::Off);
        let c = parse_str(&client("number_matching = false\n")).unwrap();
        assert_eq!(c.push_for_client_named("vpn").mode, PushMode::Off);
    }

    /// The example's push section, uncommented, is a valid configuration.
    #[test]
    fn the_examples_push_section_is_valid_when_uncommented() {
        let t = include_str!("../../../examples/mfa.toml");
        let start = t.find("# [push]\n").unwrap();
        let tail: String = t[start..]
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|l| {
                        !l.is_empty() && !l.starts_with("Per RADIUS") && !l.starts_with("(without")
                    })
                    .unwrap_or("")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c = parse_str(&format!("{}\n{tail}\n", &t[..start])).unwrap();
        assert!(c.push.enabled);
        assert_eq!(c.push_for_client_named("rdgw").mode, PushMode::Only);
    }
}
