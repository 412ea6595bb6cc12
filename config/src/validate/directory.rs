//! `[directory]`: the servers, TLS, the service account, the search base.

use super::{Problems, k};
use crate::directory::DirectoryServer;
use crate::{Config, FirstFactor, Seg};

/// `[directory]`, where set; and `first_factor = "ldap"` only with one.
pub(super) fn directory(cfg: &Config, v: &mut Problems<'_>) {
    if cfg.directory.is_none() {
        if cfg.radius.first_factor == FirstFactor::Ldap {
            v.bad(
                vec![k("radius"), k("first_factor")],
                "\"ldap\" checks the password against [directory], which is not set".into(),
            );
        }
        for (i, c) in cfg.radius.clients.iter().enumerate() {
            if c.first_factor == Some(FirstFactor::Ldap) {
                v.bad(
                    vec![k("radius"), k("clients"), Seg::Index(i), k("first_factor")],
                    "\"ldap\" checks the password against [directory], which is not set".into(),
                );
            }
        }
    }
    let Some(d) = &cfg.directory else { return };
    let at = |key: &str| vec![k("directory"), k(key)];
    if d.servers.is_empty() {
        v.bad(
            at("servers"),
            "list at least one server (ldaps://host or ldap://host)".into(),
        );
    }
    if d.servers.len() > 8 {
        v.bad(
            at("servers"),
            format!(
                "{} servers is too many (at most 8): a lookup waits for each one that is down",
                d.servers.len()
            ),
        );
    }
    for (i, s) in d.servers.iter().enumerate() {
        let here = vec![k("directory"), k("servers"), Seg::Index(i)];
        match DirectoryServer::parse(s) {
            Err(m) => v.bad(here, m),
            Ok(srv) => {
                if !srv.ldaps && d.starttls == Some(false) {
                    v.bad(
                        at("starttls"),
                        format!(
                            "{s} without StartTLS would send the service account's and users' \
                             passwords in clear: use ldaps:// or leave starttls on"
                        ),
                    );
                }
                if d.servers[..i].contains(s) {
                    v.bad(here, format!("{s} is listed twice"));
                }
            }
        }
    }
    if d.timeout.as_secs() == 0 || d.timeout.as_secs() > 30 {
        v.bad(at("timeout"), "must be between 1s and 30s".into());
    }
    if d.bind_dn.trim().is_empty() {
        v.bad(
            at("bind_dn"),
            "name the service account the lookups bind as".into(),
        );
    }
    if d.bind_password_file.as_os_str().is_empty() {
        v.bad(
            at("bind_password_file"),
            "name the file holding the service account's password".into(),
        );
    }
    if d.base_dn.trim().is_empty() || !d.base_dn.contains('=') {
        v.bad(
            at("base_dn"),
            format!("{:?} is not a DN (like \"DC=example,DC=com\")", d.base_dn),
        );
    }
    if let Some(f) = &d.user_filter
        && !balanced_filter(f)
    {
        v.bad(
            at("user_filter"),
            format!("{f:?} is not an LDAP filter: it must be in parentheses, balanced"),
        );
    }
    if d.cache_size == 0 || d.cache_size > 10_000_000 {
        v.bad(at("cache_size"), "must be between 1 and 10000000".into());
    }
    if d.cache_ttl.as_secs() > 86_400 {
        v.bad(
            at("cache_ttl"),
            "at most 1d: a group removed in the directory must stop counting".into(),
        );
    }
}

/// A filter in parentheses whose parentheses balance (escaped ones are `\28`, `\29`).
fn balanced_filter(f: &str) -> bool {
    let f = f.trim();
    if !f.starts_with('(') || !f.ends_with(')') {
        return false;
    }
    let mut depth = 0i32;
    for (i, c) in f.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 || (depth == 0 && i + 1 != f.len()) {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}
