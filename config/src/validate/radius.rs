//! `[radius]`, its `[[radius.clients]]` and the RadSec listener `[radius.radsec]`.

use super::{Problems, k};
use crate::schema::parse_sha256;
use crate::{ClientKind, Config, FirstFactor, RadiusClient, RadiusMode, Seg};

/// `[radius]` itself.
pub(super) fn radius(cfg: &Config, v: &mut Problems<'_>) {
    let r = &cfg.radius;
    if r.first_factor == FirstFactor::None && r.mode != RadiusMode::CodeOnly {
        v.bad(
            vec![k("radius"), k("first_factor")],
            "\"none\" is only allowed with mode = \"code-only\": otherwise a grace period would let any user name in with no secret at all (PAM hosts in remote mode are a [[radius.clients]] entry with kind = \"pam-hosts\")".into(),
        );
    }
    if r.pam_service.is_empty()
        || !r
            .pam_service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        v.bad(
            vec![k("radius"), k("pam_service")],
            format!("{:?} is not a valid PAM service name", r.pam_service),
        );
    }
    if r.challenge_timeout.as_secs() == 0 || r.challenge_timeout.as_secs() > 600 {
        v.bad(
            vec![k("radius"), k("challenge_timeout")],
            "must be between 1s and 10m".into(),
        );
    }
    if let Some(d) = &r.append_delimiter
        && (d.is_empty() || d.chars().any(|c| c.is_ascii_digit()))
    {
        v.bad(
            vec![k("radius"), k("append_delimiter")],
            "must be non-empty and contain no digits".into(),
        );
    }
    if !(16..=1 << 20).contains(&r.max_pending_challenges) {
        v.bad(
            vec![k("radius"), k("max_pending_challenges")],
            "must be between 16 and 1048576".into(),
        );
    }
    if r.pam_workers == 0 || r.pam_workers > 1024 {
        v.bad(
            vec![k("radius"), k("pam_workers")],
            "must be between 1 and 1024".into(),
        );
    }
    accounting_listen(r, v);
    if let Some(m) = r.metrics_listen
        && !m.ip().is_loopback()
    {
        v.bad(
            vec![k("radius"), k("metrics_listen")],
            format!(
                "{m} is not a loopback address: the metrics name the RADIUS clients and count every decision, so they are served on 127.0.0.1 or [::1] only (scrape through a local agent or proxy)"
            ),
        );
    }
}

/// `[radius] accounting_listen`, given or derived from `listen`: a port of its own for
/// each address, never one `listen` already has (the two kinds of request would meet on one
/// socket, and one of the two binds would fail).
fn accounting_listen(r: &crate::RadiusConfig, v: &mut Problems<'_>) {
    let at = || vec![k("radius"), k("accounting_listen")];
    if r.accounting_listen.is_none()
        && let Some(last) = r.listen.iter().find(|l| l.port() == u16::MAX)
    {
        v.bad(
            at(),
            format!(
                "not set, so each listen address's port plus one, but {last} has no next port: set accounting_listen (or [] for no accounting)"
            ),
        );
    }
    let acct = r.accounting_addresses();
    let mut seen = std::collections::HashSet::new();
    for a in &acct.addresses {
        if r.listen.contains(a) {
            let why = if acct.explicit {
                format!("{a} is also in listen: accounting needs a port of its own")
            } else {
                format!(
                    "not set, so each listen address's port plus one, which gives {a}, already in listen: set accounting_listen (or [] for no accounting)"
                )
            };
            v.bad(at(), why);
        } else if !seen.insert(a) {
            v.bad(at(), format!("{a} is listed twice"));
        }
    }
}

/// Each `[[radius.clients]]` entry: a unique name, one kind of secret, its certificate
/// identity, and a first factor its mode can carry.
pub(super) fn clients(cfg: &Config, v: &mut Problems<'_>) {
    let r = &cfg.radius;
    let mut names = std::collections::HashSet::new();
    for (i, c) in r.clients.iter().enumerate() {
        let at = |key: &str| vec![k("radius"), k("clients"), Seg::Index(i), k(key)];
        if c.name.trim().is_empty() || c.name.len() > 64 {
            v.bad(at("name"), "must be 1 to 64 characters".into());
        } else if !names.insert(c.name.as_str()) {
            v.bad(
                at("name"),
                format!("client name {:?} is used twice", c.name),
            );
        }
        match (&c.secret, &c.secret_file) {
            (Some(_), Some(_)) => v.bad(
                at("secret"),
                "give either secret or secret_file, not both".into(),
            ),
            // Per-host secrets, checked below.
            (None, None) if c.secrets_dir.is_some() => {}
            // RFC 6614 §2.3: over TLS the shared secret is "radsec" unless both sides agree
            // on another.
            (None, None) if c.is_radsec() => {}
            (None, None) => v.bad(
                at("secret"),
                "a shared secret is required (secret, secret_file or secrets_dir)".into(),
            ),
            (Some(s), None) if s.0.is_empty() => v.bad(at("secret"), "must not be empty".into()),
            _ => {}
        }
        if let Some(d) = &c.secrets_dir {
            if c.secret.is_some() || c.secret_file.is_some() {
                v.bad(
                    at("secrets_dir"),
                    "give secrets_dir (one secret per host) or secret/secret_file (one for every host in address), not both: a shared secret beside it would be good from every address again".into(),
                );
            }
            if c.is_radsec() {
                v.bad(
                    at("secrets_dir"),
                    "a RadSec client is identified by its certificate; secrets_dir is for UDP clients".into(),
                );
            }
            if d.as_os_str().is_empty() {
                v.bad(at("secrets_dir"), "must not be empty".into());
            }
        }
        if let Some(n) = &c.certificate_name
            && !dns_name_or_ip(n)
        {
            v.bad(
                at("certificate_name"),
                format!("{n:?} is not a DNS name or an IP address"),
            );
        }
        if let Some(f) = &c.certificate_sha256
            && parse_sha256(f).is_none()
        {
            v.bad(
                at("certificate_sha256"),
                "must be 64 hex digits (colons allowed), the SHA-256 fingerprint of the client's certificate".into(),
            );
        }
        if c.is_radsec() && r.radsec.is_none() {
            let key = if c.certificate_name.is_some() {
                "certificate_name"
            } else {
                "certificate_sha256"
            };
            v.bad(
                at(key),
                "a RadSec client, but there is no [radius.radsec] listener: it could never connect"
                    .into(),
            );
        }
        // PAM hosts: challenge mode with no first factor here, by their kind; a mode or a
        // first factor that says otherwise is a contradiction, not an override.
        if r.kind_of(c) == ClientKind::PamHosts {
            if c.mode.is_some_and(|m| m != RadiusMode::Challenge) {
                v.bad(
                    at("mode"),
                    "kind = \"pam-hosts\" is always in challenge mode (pam_mfa asks for the code itself): remove mode".into(),
                );
            }
            if matches!(c.first_factor, Some(FirstFactor::Pam | FirstFactor::Ldap)) {
                v.bad(
                    at("first_factor"),
                    "kind = \"pam-hosts\" checks no password here (the host's own stack checked it before pam_mfa): remove first_factor".into(),
                );
            }
        } else {
            // first_factor = "none" outside code-only mode only for PAM hosts. (A client that
            // sets neither inherits [radius]'s pair, checked above.)
            let eff = r.settings_for(c);
            // Where the mode comes from: the entry's own key, else its preset's.
            let mode_key = if c.mode.is_none() && c.preset.is_some() {
                "preset"
            } else {
                "mode"
            };
            if eff.first_factor == FirstFactor::None
                && (c.mode.is_some()
                    || c.first_factor.is_some()
                    || c.kind.is_some()
                    || c.preset.is_some())
            {
                match (eff.mode, c.first_factor) {
                    (RadiusMode::CodeOnly, _) => {}
                    (RadiusMode::Challenge, Some(FirstFactor::None)) => v.bad(
                        at("first_factor"),
                        "first_factor = \"none\" in challenge mode would let a code alone in where a password is expected: only PAM hosts in remote mode check no password here (kind = \"pam-hosts\")".into(),
                    ),
                    (RadiusMode::Challenge, _) => v.bad(
                        at(mode_key),
                        "mode = \"challenge\" with first_factor \"none\" inherited from [radius]: set first_factor = \"pam\" on this client, or kind = \"pam-hosts\" for PAM hosts in remote mode".into(),
                    ),
                    (RadiusMode::Append, _) => v.bad(
                        at(if c.first_factor.is_some() { "first_factor" } else { mode_key }),
                        "first_factor = \"none\" is not allowed with mode = \"append\": the password part would be checked by nobody".into(),
                    ),
                }
            }
        }
    }
}

/// `[radius.radsec]`: its files, its limits, and a client that can use it.
pub(super) fn radsec(cfg: &Config, v: &mut Problems<'_>) {
    let r = &cfg.radius;
    if let Some(t) = &r.radsec {
        let at = |key: &str| vec![k("radius"), k("radsec"), k(key)];
        for (key, file) in [
            ("certificate", &t.certificate),
            ("key", &t.key),
            ("ca_file", &t.ca_file),
        ] {
            if file.is_none() {
                v.bad(at(key), format!("required: {}", radsec_file_help(key)));
            }
        }
        if t.listen.is_empty() {
            v.bad(
                at("listen"),
                "must list at least one address (e.g. \"0.0.0.0:2083\")".into(),
            );
        }
        if t.idle_timeout.as_secs() == 0 || t.idle_timeout.as_secs() > 86_400 {
            v.bad(at("idle_timeout"), "must be between 1s and 1d".into());
        }
        if t.max_connections == 0 || t.max_connections > 65_536 {
            v.bad(at("max_connections"), "must be between 1 and 65536".into());
        }
        if t.handshake_timeout.as_secs() == 0 || t.handshake_timeout.as_secs() > 60 {
            v.bad(at("handshake_timeout"), "must be between 1s and 60s".into());
        }
        if t.max_handshakes == 0 || t.max_handshakes > 65_536 {
            v.bad(at("max_handshakes"), "must be between 1 and 65536".into());
        }
        if t.max_handshakes_per_address == 0 || t.max_handshakes_per_address > t.max_handshakes {
            v.bad(
                at("max_handshakes_per_address"),
                format!(
                    "must be between 1 and max_handshakes ({})",
                    t.max_handshakes
                ),
            );
        }
        if !r.clients.iter().any(RadiusClient::is_radsec) {
            v.bad(
                vec![k("radius"), k("radsec")],
                "no [[radius.clients]] entry has certificate_name or certificate_sha256: every RadSec connection would be refused".into(),
            );
        }
    }
}

/// What each RadSec file is, for the messages.
pub fn radsec_file_help(key: &str) -> &'static str {
    match key {
        "certificate" => "the daemon's certificate chain (PEM)",
        "key" => "the daemon's private key (PEM)",
        "ca_file" => "the CA certificate(s) (PEM) that client certificates must chain to",
        _ => "certificate revocation lists (PEM)",
    }
}

/// Whether `s` can name a RadSec client's certificate: an IP address, or a DNS name (labels
/// of letters, digits, `-` and `_`, 1 to 63 characters, not starting or ending with `-`; 253
/// characters at most, a trailing dot allowed), as rustls reads a server name. Written here
/// rather than asked of `rustls-pki-types`, so that the configuration crate, which the PAM
/// module links, carries no TLS types; mfa-radiusd checks the name again with rustls's own
/// rule when it loads the configuration (`mfa-tls-files`).
pub(crate) fn dns_name_or_ip(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::dns_name_or_ip;

    #[test]
    fn certificate_names() {
        for ok in [
            "gw.example.net",
            "gw.example.net.",
            "vpn-1",
            "_radsec._tcp.example.org",
            "192.0.2.7",
            "2001:db8::7",
        ] {
            assert!(dns_name_or_ip(ok), "{ok}");
        }
        let long = format!("{}.net", "a".repeat(64));
        for bad in [
            "",
            ".",
            "not a name!",
            "-gw.example",
            "gw-.example",
            "a..b",
            &long,
        ] {
            assert!(!dns_name_or_ip(bad), "{bad:?}");
        }
    }
}
