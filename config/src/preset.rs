//! `preset` on a `[[radius.clients]]` entry: what a known gateway needs, so an administrator
//! names the product instead of learning its RADIUS habits. A preset sets the client's
//! `mode` and `client_ip_attribute` where the entry does not (the entry's own keys win, then
//! the preset, then `[radius]`), and carries the vendor's facts `mfactl config check` warns
//! with: how long the gateway waits for one answer by default, and which vendor attributes it
//! reads. It never turns off Message-Authenticator: a gateway that sends none still needs
//! `require_message_authenticator = false` written on its entry (docs/RADIUS.md).

use std::fmt;

use serde::Deserialize;

use crate::locate::{Seg, line_of_path, path_string};
use crate::reply::ReplyKey;
use crate::schema::{ClientIpAttribute, ClientKind, Config, FirstFactor, RadiusClient, RadiusMode};
use crate::validate::k;
use crate::values::Span;
use crate::{Problem, PushMode};

/// A gateway product (`preset = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Microsoft RD Gateway through NPS.
    RdGateway,
    /// OpenVPN 2.x with `openvpn-auth-radius` (radiusplugin).
    Openvpn,
    /// ocserv (AnyConnect-compatible) with radcli.
    Ocserv,
    /// Fortinet FortiGate (SSL VPN, IPsec dial-up).
    Fortigate,
    /// Palo Alto Networks GlobalProtect.
    Globalprotect,
    /// Citrix NetScaler ADC / Gateway.
    Netscaler,
    /// Cisco ASA with AnyConnect.
    Asa,
}

/// What a preset stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresetFacts {
    /// The product's name, for messages.
    pub product: &'static str,
    pub mode: RadiusMode,
    pub client_ip_attribute: ClientIpAttribute,
    /// How long the gateway waits for one answer unless its administrator changes it (the
    /// figure docs/RADIUS.md cites); `None` where no vendor figure is known.
    pub timeout: Option<Span>,
    /// Resends after a timeout, where the vendor documents them.
    pub retries: Option<u32>,
    /// Where `timeout` comes from, for messages.
    pub timeout_source: &'static str,
    /// The vendor-specific reply attributes it reads; `None`: any (configurable on the
    /// gateway).
    pub vendor_attributes: Option<&'static [ReplyKey]>,
    /// A caveat `config check` prints with the preset.
    pub note: Option<&'static str>,
}

impl Preset {
    pub const ALL: [Preset; 7] = [
        Preset::RdGateway,
        Preset::Openvpn,
        Preset::Ocserv,
        Preset::Fortigate,
        Preset::Globalprotect,
        Preset::Netscaler,
        Preset::Asa,
    ];

    /// The word written in `mfa.toml`.
    pub fn word(self) -> &'static str {
        match self {
            Preset::RdGateway => "rd-gateway",
            Preset::Openvpn => "openvpn",
            Preset::Ocserv => "ocserv",
            Preset::Fortigate => "fortigate",
            Preset::Globalprotect => "globalprotect",
            Preset::Netscaler => "netscaler",
            Preset::Asa => "asa",
        }
    }

    pub fn facts(self) -> PresetFacts {
        use ClientIpAttribute::{CallingStationId, TunnelClientEndpoint};
        use RadiusMode::{Append, Challenge, CodeOnly};
        let base = PresetFacts {
            product: "",
            mode: Challenge,
            client_ip_attribute: CallingStationId,
            timeout: None,
            retries: None,
            timeout_source: "",
            vendor_attributes: Some(&[]),
            note: None,
        };
        match self {
            Preset::RdGateway => PresetFacts {
                product: "RD Gateway through NPS",
                mode: CodeOnly,
                client_ip_attribute: TunnelClientEndpoint,
                timeout: Some(Span::secs(60)),
                timeout_source: "the NPS remote RADIUS server group's timeout Microsoft's set-up gives",
                note: Some(
                    "RD Gateway sends no password and shows no challenge: the code-only request is settled by a push or a trusted network",
                ),
                ..base
            },
            Preset::Openvpn => PresetFacts {
                product: "OpenVPN with openvpn-auth-radius",
                mode: Append,
                timeout: Some(Span::secs(1)),
                retries: Some(1),
                timeout_source: "wait=1 of the plugin's example radiusplugin.cnf",
                note: Some(
                    "Debian 12's plugin sends no Message-Authenticator: its requests are dropped unless this entry says require_message_authenticator = false",
                ),
                ..base
            },
            Preset::Ocserv => PresetFacts {
                product: "ocserv with radcli",
                timeout: Some(Span::secs(10)),
                retries: Some(3),
                timeout_source: "radcli's radius_timeout",
                note: Some(
                    "Debian 12's radcli sends no Message-Authenticator: its requests are dropped unless this entry says require_message_authenticator = false",
                ),
                ..base
            },
            Preset::Fortigate => PresetFacts {
                product: "FortiGate",
                timeout: Some(Span::secs(5)),
                timeout_source: "FortiOS's remoteauthtimeout default",
                vendor_attributes: Some(&[ReplyKey::FortinetGroup]),
                note: Some(
                    "FortiGate IPsec (XAuth, EAP) drops an Access-Challenge unless the RADIUS server speaks MS-CHAP, which mfa-radiusd does not: for IPsec dial-up use mode = \"append\"; SSL VPN shows the challenge",
                ),
                ..base
            },
            Preset::Globalprotect => PresetFacts {
                product: "GlobalProtect",
                timeout: Some(Span::secs(3)),
                retries: Some(3),
                timeout_source: "PAN-OS's RADIUS server profile default",
                vendor_attributes: Some(&[ReplyKey::PaloaltoUserGroup]),
                ..base
            },
            Preset::Netscaler => PresetFacts {
                product: "NetScaler",
                timeout: Some(Span::secs(4)),
                timeout_source: "NetScaler's default RADIUS timeout",
                vendor_attributes: None,
                ..base
            },
            Preset::Asa => PresetFacts {
                product: "Cisco ASA",
                timeout: Some(Span::secs(10)),
                retries: None,
                timeout_source: "the ASA's aaa-server timeout default",
                vendor_attributes: Some(&[ReplyKey::CiscoAvpair]),
                ..base
            },
        }
    }

    /// Whether a gateway of this product reads vendor attribute `key`.
    pub fn reads(self, key: ReplyKey) -> bool {
        match self.facts().vendor_attributes {
            None => true,
            Some(keys) => !key.is_vendor() || keys.contains(&key),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// The word of a mode, as written in `mfa.toml`.
fn mode_word(m: RadiusMode) -> &'static str {
    match m {
        RadiusMode::Append => "append",
        RadiusMode::Challenge => "challenge",
        RadiusMode::CodeOnly => "code-only",
    }
}

fn ip_word(a: ClientIpAttribute) -> &'static str {
    match a {
        ClientIpAttribute::CallingStationId => "Calling-Station-Id",
        ClientIpAttribute::TunnelClientEndpoint => "Tunnel-Client-Endpoint",
        ClientIpAttribute::FramedIpAddress => "Framed-IP-Address",
    }
}

/// PAM's delay after a wrong password (pam_unix, pam_faildelay: about 2 s), with the store's
/// commit: what a request with a first factor may take before it is answered.
pub const FIRST_FACTOR_WAIT: Span = Span::secs(3);

impl Config {
    /// How long one answer to client `c` may take, and why: a push held until the phone
    /// answers (append and code-only mode, push on for the client) takes up to `[push]
    /// timeout`; a first factor, [`FIRST_FACTOR_WAIT`]; `None` otherwise.
    pub fn answer_wait(&self, c: &RadiusClient) -> Option<(Span, String)> {
        let s = self.radius.settings_for(c);
        let push = self.push_for_client(c).mode != PushMode::Off;
        match s.mode {
            RadiusMode::Append | RadiusMode::CodeOnly if push => Some((
                self.push.timeout,
                format!(
                    "a push in {} mode is held until the phone answers, up to [push] timeout ({})",
                    mode_word(s.mode),
                    self.push.timeout
                ),
            )),
            RadiusMode::Append | RadiusMode::Challenge if s.first_factor != FirstFactor::None => {
                Some((
                    FIRST_FACTOR_WAIT,
                    format!(
                        "the first factor (PAM's delay after a wrong password) takes up to {FIRST_FACTOR_WAIT}"
                    ),
                ))
            }
            _ => None,
        }
    }

    /// What `config check` says of client `c`'s preset: what it set, what the entry set
    /// itself, the gateway's wait and the product's caveat. `None` without a preset.
    pub fn preset_summary(&self, c: &RadiusClient) -> Option<String> {
        let p = c.preset?;
        let f = p.facts();
        let s = self.radius.settings_for(c);
        let from = |own: bool| {
            if own {
                "this entry's own"
            } else {
                "from the preset"
            }
        };
        let mut out = format!(
            "client {:?}: preset \"{p}\" ({}): mode {} ({}), client_ip_attribute {} ({})",
            c.name,
            f.product,
            mode_word(s.mode),
            from(c.mode.is_some()),
            ip_word(s.client_ip_attribute),
            from(c.client_ip_attribute.is_some()),
        );
        match (c.gateway_timeout, f.timeout) {
            (Some(t), _) => out.push_str(&format!("; the gateway waits {t} (gateway_timeout)")),
            (None, Some(t)) => {
                out.push_str(&format!("; the gateway waits {t} ({}", f.timeout_source));
                if let Some(r) = f.retries {
                    out.push_str(&format!(", {r} retries"));
                }
                out.push(')');
            }
            (None, None) => out.push_str("; the gateway's wait is not known (set gateway_timeout)"),
        }
        match f.vendor_attributes {
            None => out.push_str("; reads any vendor attribute it is configured for"),
            Some([]) => {}
            Some(keys) => {
                let names: Vec<&str> = keys.iter().map(|k| k.attribute()).collect();
                out.push_str(&format!("; reads {}", names.join(", ")));
            }
        }
        if let Some(n) = f.note {
            out.push_str(&format!("; note: {n}"));
        }
        Some(out)
    }

    /// `config check`'s warnings about presets and reply attributes: a gateway that gives up
    /// before the answer can come, a vendor attribute sent to a gateway of another vendor,
    /// `reply` on a rule no gateway login can match.
    pub(crate) fn reply_warnings(&self, text: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut at = |path: Vec<Seg>, message: String| {
            out.push(Problem {
                file: self.source.clone(),
                line: line_of_path(text, &path),
                key: Some(path_string(&path)),
                message,
            });
        };
        let key = |i: usize, rest: &[Seg]| {
            let mut p = vec![k("radius"), k("clients"), Seg::Index(i)];
            p.extend_from_slice(rest);
            p
        };
        for (i, c) in self.radius.clients.iter().enumerate() {
            let (waits, where_from, path) = match (c.gateway_timeout, c.preset) {
                (Some(t), _) => (
                    t,
                    "gateway_timeout".to_string(),
                    key(i, &[k("gateway_timeout")]),
                ),
                (None, Some(p)) => match p.facts().timeout {
                    Some(t) => (
                        t,
                        format!("{}, preset \"{p}\"", p.facts().timeout_source),
                        key(i, &[k("preset")]),
                    ),
                    None => continue,
                },
                (None, None) => continue,
            };
            let Some((needs, why)) = self.answer_wait(c) else {
                continue;
            };
            if waits < needs {
                at(
                    path,
                    format!(
                        "client {:?}: the gateway waits {waits} for an answer ({where_from}), but {why}: \
                         raise the timeout on the gateway to at least {needs} and write it here as \
                         gateway_timeout = \"{needs}\"",
                        c.name
                    ),
                );
            }
        }
        for (i, r) in self.policy.rules.iter().enumerate() {
            let Some(reply) = &r.reply else {
                continue;
            };
            let path = |rest: &[Seg]| {
                let mut p = vec![k("policy"), k("rules"), Seg::Index(i), k("reply")];
                p.extend_from_slice(rest);
                p
            };
            if !r.services.is_empty() || r.local {
                at(
                    path(&[]),
                    "the rule matches PAM services or local logins only, and reply attributes \
                     go to RADIUS gateways only: none is ever sent"
                        .into(),
                );
                continue;
            }
            for name in &r.radius_clients {
                let Some(c) = self.radius.clients.iter().find(|c| c.name == *name) else {
                    continue;
                };
                if self.radius.kind_of(c) == ClientKind::PamHosts {
                    at(
                        path(&[]),
                        format!("client \"{name}\" is PAM hosts, which get no reply attributes"),
                    );
                    continue;
                }
                let Some(p) = c.preset else {
                    continue;
                };
                let mut warned = Vec::new();
                for (key, _) in reply.entries() {
                    if !p.reads(key) && !warned.contains(&key) {
                        warned.push(key);
                        at(
                            path(&[k(key.key())]),
                            format!(
                                "client \"{name}\" is preset \"{p}\" ({}), which does not read \
                                 {}: it is sent and ignored",
                                p.facts().product,
                                key.attribute()
                            ),
                        );
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_spelt_as_documented() {
        for p in Preset::ALL {
            let parsed: Preset =
                serde::Deserialize::deserialize(toml::Value::String(p.word().into())).unwrap();
            assert_eq!(parsed, p);
            assert!(!p.facts().product.is_empty());
            if p.facts().timeout.is_some() {
                assert!(!p.facts().timeout_source.is_empty());
            }
        }
        assert_eq!(Preset::Netscaler.facts().timeout, Some(Span::secs(4)));
        assert_eq!(Preset::Globalprotect.facts().timeout, Some(Span::secs(3)));
        assert_eq!(Preset::Globalprotect.facts().retries, Some(3));
        assert_eq!(Preset::RdGateway.facts().timeout, Some(Span::secs(60)));
        assert_eq!(Preset::RdGateway.facts().mode, RadiusMode::CodeOnly);
        assert_eq!(Preset::Openvpn.facts().timeout, Some(Span::secs(1)));
        assert!(Preset::Fortigate.reads(ReplyKey::FortinetGroup));
        assert!(!Preset::Asa.reads(ReplyKey::FortinetGroup));
        assert!(Preset::Asa.reads(ReplyKey::Class));
        assert!(Preset::Netscaler.reads(ReplyKey::PaloaltoUserGroup));
    }

    /// Errors and warnings as `config check` prints them, each with its file, line and key.
    fn check(text: &str) -> (Vec<String>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfa.toml");
        std::fs::write(&path, text).unwrap();
        match crate::parse(text, &path) {
            Ok(c) => (
                Vec::new(),
                c.warnings().iter().map(ToString::to_string).collect(),
            ),
            Err(e) => (
                e.problems.iter().map(ToString::to_string).collect(),
                Vec::new(),
            ),
        }
    }

    const SECRET: &str = "secret = \"0123456789abcdef0123\"\n";

    #[test]
    fn a_preset_sets_mode_and_client_ip_unless_the_entry_does() {
        let text = format!(
            "[radius]\nmode = \"append\"\n[[radius.clients]]\nname = \"rdg\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"rd-gateway\"\n[[radius.clients]]\nname = \"forti\"\naddress = \"192.0.2.2\"\n{SECRET}preset = \"fortigate\"\nmode = \"append\"\nclient_ip_attribute = \"Framed-IP-Address\"\n[[radius.clients]]\nname = \"plain\"\naddress = \"192.0.2.3\"\n{SECRET}"
        );
        let c = crate::parse(&text, std::path::Path::new("/etc/mfa/mfa.toml")).unwrap();
        let s: Vec<_> = c
            .radius
            .clients
            .iter()
            .map(|e| c.radius.settings_for(e))
            .collect();
        assert_eq!(s[0].mode, RadiusMode::CodeOnly);
        assert_eq!(
            s[0].client_ip_attribute,
            ClientIpAttribute::TunnelClientEndpoint
        );
        assert_eq!(s[0].kind, ClientKind::Gateway);
        assert!(
            s[0].require_message_authenticator,
            "a preset never turns it off"
        );
        assert_eq!(s[1].mode, RadiusMode::Append);
        assert_eq!(s[1].client_ip_attribute, ClientIpAttribute::FramedIpAddress);
        assert_eq!(s[2].mode, RadiusMode::Append, "[radius]'s, no preset");
        let rdg = c.preset_summary(&c.radius.clients[0]).unwrap();
        assert!(
            rdg.contains("preset \"rd-gateway\"")
                && rdg.contains("mode code-only (from the preset)")
                && rdg.contains("Tunnel-Client-Endpoint (from the preset)")
                && rdg.contains("waits 1m"),
            "{rdg}"
        );
        let forti = c.preset_summary(&c.radius.clients[1]).unwrap();
        assert!(
            forti.contains("mode append (this entry's own)")
                && forti.contains("Fortinet-Group-Name")
                && forti.contains("MS-CHAP"),
            "{forti}"
        );
        assert_eq!(c.preset_summary(&c.radius.clients[2]), None);
    }

    #[test]
    fn bad_presets_and_timeouts_are_refused_on_their_line() {
        let (e, _) = check(&format!(
            "[[radius.clients]]\nname = \"a\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"sonicwall\"\n"
        ));
        assert!(
            e.iter()
                .any(|p| p.contains("mfa.toml:5: radius.clients[0].preset")
                    && p.contains("sonicwall")),
            "{e:#?}"
        );
        let (e, _) = check(&format!(
            "[[radius.clients]]\nname = \"a\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"asa\"\nkind = \"pam-hosts\"\ngateway_timeout = \"0s\"\n"
        ));
        assert!(
            e.iter()
                .any(|p| p.contains("mfa.toml:5: radius.clients[0].preset")
                    && p.contains("pam-hosts")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|p| p.contains("mfa.toml:7: radius.clients[0].gateway_timeout")),
            "{e:#?}"
        );
    }

    /// A preset's challenge or append mode with `[radius] first_factor = "none"` inherited
    /// would check no password where one is expected: refused on the preset's line, as the
    /// same mode written on the entry is.
    #[test]
    fn a_presets_mode_never_goes_without_a_first_factor() {
        for preset in ["asa", "openvpn"] {
            let (e, _) = check(&format!(
                "[radius]\nmode = \"code-only\"\nfirst_factor = \"none\"\n[[radius.clients]]\nname = \"gw\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"{preset}\"\n"
            ));
            assert!(
                e.iter()
                    .any(|p| p.contains("mfa.toml:8: radius.clients[0].preset")
                        && p.contains("first_factor")),
                "{preset}: {e:#?}"
            );
        }
        // Code-only (RD Gateway) without a first factor is what it is for.
        let (e, _) = check(&format!(
            "[radius]\nmode = \"code-only\"\nfirst_factor = \"none\"\n[[radius.clients]]\nname = \"gw\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"rd-gateway\"\n"
        ));
        assert!(e.is_empty(), "{e:#?}");
    }

    #[test]
    fn a_gateway_that_gives_up_before_a_held_push_is_warned_about() {
        let push = "[push]\nenabled = true\nsubscriber = \"mailto:it@example.com\"\n";
        // NetScaler's 4 s against a push held in append mode: warned, on the preset's line.
        let (e, w) = check(&format!(
            "{push}[[radius.clients]]\nname = \"ns\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"netscaler\"\nmode = \"append\"\n"
        ));
        assert!(e.is_empty(), "{e:#?}");
        assert!(
            w.len() == 1
                && w[0].contains("mfa.toml:8: radius.clients[0].preset")
                && w[0].contains("waits 4s")
                && w[0].contains("[push] timeout (1m)")
                && w[0].contains("gateway_timeout = \"1m\""),
            "{w:#?}"
        );
        // Raised on the gateway and said so: no warning.
        let (_, w) = check(&format!(
            "{push}[[radius.clients]]\nname = \"ns\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"netscaler\"\nmode = \"append\"\ngateway_timeout = \"90s\"\n"
        ));
        assert!(w.is_empty(), "{w:#?}");
        // Said, but still too short: warned on gateway_timeout's line.
        let (_, w) = check(&format!(
            "{push}[[radius.clients]]\nname = \"ns\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"netscaler\"\nmode = \"append\"\ngateway_timeout = \"30s\"\n"
        ));
        assert!(
            w.len() == 1 && w[0].contains("mfa.toml:10: radius.clients[0].gateway_timeout"),
            "{w:#?}"
        );
        // OpenVPN's plugin as its example ships (wait=1) gives up before a wrong password's
        // PAM delay is over; the documented wait=10 does not.
        let (_, w) = check(&format!(
            "[[radius.clients]]\nname = \"ovpn\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"openvpn\"\n"
        ));
        assert!(
            w.len() == 1 && w[0].contains("waits 1s") && w[0].contains("first factor"),
            "{w:#?}"
        );
        let (_, w) = check(&format!(
            "[[radius.clients]]\nname = \"ovpn\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"openvpn\"\ngateway_timeout = \"10s\"\n"
        ));
        assert!(w.is_empty(), "{w:#?}");
        // Challenge mode answers each round at once: 4 s is enough, without push too.
        let (_, w) = check(&format!(
            "{push}[[radius.clients]]\nname = \"ns\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"netscaler\"\n"
        ));
        assert!(w.is_empty(), "{w:#?}");
        let (_, w) = check(&format!(
            "[[radius.clients]]\nname = \"ns\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"netscaler\"\nmode = \"append\"\n"
        ));
        assert!(w.is_empty(), "{w:#?}");
        // RD Gateway through NPS at 60 s holds a push of [push] timeout 60 s; 90 s does not.
        let (_, w) = check(&format!(
            "{push}[[radius.clients]]\nname = \"rdg\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"rd-gateway\"\n"
        ));
        assert!(w.is_empty(), "{w:#?}");
        let (_, w) = check(&format!(
            "{push}timeout = \"90s\"\n[[radius.clients]]\nname = \"rdg\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"rd-gateway\"\n"
        ));
        assert!(w.len() == 1 && w[0].contains("waits 1m"), "{w:#?}");
    }

    #[test]
    fn reply_values_are_checked_with_line_and_key() {
        let (e, _) = check(
            "[[policy.rules]]\nradius_clients = [\"vpn\"]\naction = \"code\"\nreply = { class = \"\", fortinet_group = \"two\\nlines\", cisco_avpair = [\"shell:priv-lvl=15\", \"nonsense\"] }\n\n[[policy.rules]]\nname = \"refused\"\nradius_clients = [\"vpn\"]\naction = \"deny\"\n[policy.rules.reply]\nfilter_id = \"acl\"\n\n[[policy.rules]]\nradius_clients = [\"vpn\"]\naction = \"code\"\nreply = {}\n",
        );
        let has = |line: usize, key: &str, word: &str| {
            e.iter()
                .any(|p| p.contains(&format!("mfa.toml:{line}: {key}: ")) && p.contains(word))
        };
        assert!(has(4, "policy.rules[0].reply.class", "empty"), "{e:#?}");
        assert!(
            has(4, "policy.rules[0].reply.fortinet_group", "printable"),
            "{e:#?}"
        );
        assert!(
            has(4, "policy.rules[0].reply.cisco_avpair[1]", "AV pair"),
            "{e:#?}"
        );
        assert!(!e.iter().any(|p| p.contains("cisco_avpair[0]")), "{e:#?}");
        assert!(has(10, "policy.rules[1].reply", "deny"), "{e:#?}");
        assert!(has(16, "policy.rules[2].reply", "no attribute"), "{e:#?}");
        let long = "g".repeat(248);
        let (e, _) = check(&format!(
            "[[policy.rules]]\nradius_clients = [\"vpn\"]\naction = \"code\"\nreply = {{ paloalto_user_group = \"{long}\", colour = \"red\" }}\n"
        ));
        assert!(
            e.iter()
                .any(|p| p.contains("policy.rules[0].reply") && p.contains("colour")),
            "{e:#?}"
        );
        let (e, _) = check(&format!(
            "[[policy.rules]]\nradius_clients = [\"vpn\"]\naction = \"code\"\nreply = {{ paloalto_user_group = \"{long}\" }}\n"
        ));
        assert!(
            e.iter().any(
                |p| p.contains("mfa.toml:4: policy.rules[0].reply.paloalto_user_group")
                    && p.contains("at most 247")
            ),
            "{e:#?}"
        );
    }

    #[test]
    fn reply_attributes_nobody_reads_are_warned_about() {
        let (e, w) = check(&format!(
            "[[radius.clients]]\nname = \"asa\"\naddress = \"192.0.2.1\"\n{SECRET}preset = \"asa\"\n\n[[policy.rules]]\nradius_clients = [\"asa\"]\naction = \"code\"\nreply = {{ class = \"OU=admins;\", fortinet_group = \"admins\" }}\n\n[[policy.rules]]\nservices = [\"sshd\"]\naction = \"code\"\nreply = {{ class = \"x\" }}\n"
        ));
        assert!(e.is_empty(), "{e:#?}");
        assert!(
            w.iter().any(
                |p| p.contains("mfa.toml:10: policy.rules[0].reply.fortinet_group")
                    && p.contains("does not read Fortinet-Group-Name")
            ),
            "{w:#?}"
        );
        assert!(
            !w.iter().any(|p| p.contains("reply.class")),
            "the ASA reads Class: {w:#?}"
        );
        assert!(
            w.iter()
                .any(|p| p.contains("mfa.toml:15: policy.rules[1].reply")
                    && p.contains("none is ever sent")),
            "{w:#?}"
        );
    }
}
