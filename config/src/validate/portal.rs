//! `[portal]`: its address, TLS, sessions, limits, the PAM service of its sign-in and its
//! branding.

use super::{Problems, k};
use crate::Config;

/// `[portal] organisation`: a name for a page header, not a paragraph.
const ORGANISATION_MAX_CHARS: usize = 80;

/// `[portal]`.
pub(super) fn portal(cfg: &Config, v: &mut Problems<'_>) {
    let p = &cfg.portal;
    let at = |key: &str| vec![k("portal"), k(key)];
    if let Some(u) = &p.public_url {
        let rest = u
            .strip_prefix("https://")
            .or_else(|| u.strip_prefix("http://"));
        match rest {
            Some(r)
                if !r.is_empty()
                    && !r.starts_with('/')
                    && !r.contains(['?', '#', ' ', '"', '<', '>', '\\'])
                    && r.chars().all(|c| c.is_ascii_graphic()) => {}
            _ => v.bad(
                at("public_url"),
                format!(
                    "{u:?} is not an http:// or https:// address without query or fragment, like \"https://mfa.example.com\""
                ),
            ),
        }
    }
    match (&p.tls_cert, &p.tls_key) {
        (Some(_), None) => v.bad(at("tls_key"), "required with tls_cert".into()),
        (None, Some(_)) => v.bad(at("tls_cert"), "required with tls_key".into()),
        _ => {}
    }
    if !mfa_model::INVITE_VALID_SECS.contains(&p.invite_valid.secs_i64()) {
        v.bad(
            at("invite_valid"),
            format!("must be {}", mfa_model::INVITE_VALID_TEXT),
        );
    }
    if p.session_idle.as_secs() < 1 || p.session_idle.as_secs() > 3600 {
        v.bad(at("session_idle"), "must be between 1s and 1h".into());
    }
    if p.session_lifetime.as_secs() < 1 || p.session_lifetime.as_secs() > 86_400 {
        v.bad(at("session_lifetime"), "must be between 1s and 1d".into());
    }
    if p.header_timeout.as_secs() < 1 || p.header_timeout.as_secs() > 300 {
        v.bad(at("header_timeout"), "must be between 1s and 5m".into());
    }
    for (key, n) in [
        ("max_connections", p.max_connections),
        ("connections_per_address", p.connections_per_address),
    ] {
        if n == 0 || n > 65_536 {
            v.bad(at(key), "must be between 1 and 65536".into());
        }
    }
    if let Some(m) = p.metrics_listen
        && !m.ip().is_loopback()
    {
        v.bad(
            at("metrics_listen"),
            format!(
                "{m} is not a loopback address: the portal's metrics count sign-ins and enrolments, so they are served on 127.0.0.1 or [::1] only (scrape through a local agent or proxy)"
            ),
        );
    }
    if let Some(name) = &p.organisation {
        let chars = name.chars().count();
        if name.trim() != name || chars == 0 || chars > ORGANISATION_MAX_CHARS {
            v.bad(
                at("organisation"),
                format!(
                    "must be 1 to {ORGANISATION_MAX_CHARS} characters without spaces at either end"
                ),
            );
        } else if name.chars().any(char::is_control) {
            v.bad(
                at("organisation"),
                "must not hold control characters (a new line, a tab)".into(),
            );
        }
    }
    if p.logo.as_ref().is_some_and(|l| l.as_os_str().is_empty()) {
        v.bad(at("logo"), "must name a file (or be left out)".into());
    }
    if p.pam_service.is_empty()
        || !p
            .pam_service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        v.bad(
            at("pam_service"),
            "must be a PAM service name (letters, digits, - _ .)".into(),
        );
    }
}
