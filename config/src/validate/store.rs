//! `[store]`: the engine (SQLite at `path`, or PostgreSQL at `url` with its TLS and
//! password file) and the key file that seals the seeds.

use super::{Problems, k};
use crate::{Config, SslMode};

/// `[store]`.
pub(super) fn store(cfg: &Config, v: &mut Problems<'_>) {
    if let Some(url) = &cfg.store.url
        && let Err(e) = check_store_url(url)
    {
        v.bad(vec![k("store"), k("url")], e);
    }
    let st = &cfg.store;
    if st.url.is_none() {
        for (key, set) in [
            ("password_file", st.password_file.is_some()),
            ("ca_file", st.ca_file.is_some()),
        ] {
            if set {
                v.bad(
                    vec![k("store"), k(key)],
                    "only used with store.url (PostgreSQL); remove it or set url".into(),
                );
            }
        }
    } else if st.sslmode == SslMode::VerifyFull && st.ca_file.is_none() {
        v.bad(
            vec![k("store"), k("sslmode")],
            "verify-full (the default) needs ca_file, the CA that issued the database server's certificate; or set sslmode = \"disable\" for a server on this host".into(),
        );
    } else if st.sslmode == SslMode::Disable && st.ca_file.is_some() {
        v.bad(
            vec![k("store"), k("ca_file")],
            "sslmode = \"disable\" uses no TLS, so no CA; remove ca_file or choose require or verify-full".into(),
        );
    }
    if cfg.store.path.as_os_str().is_empty() {
        v.bad(vec![k("store"), k("path")], "must not be empty".into());
    }
    if cfg.store.url.is_some() && cfg.store.key_file.is_none() {
        v.bad(
            vec![k("store"), k("key_file")],
            "required with store.url (PostgreSQL): the seeds are sealed under one key, so every node names the same key file (copy it from the node that made it, 0600 root); there is no default beside the store".into(),
        );
    }
    if let Some(key) = &cfg.store.key_file {
        if key.as_os_str().is_empty() || key.to_string_lossy().ends_with('/') {
            v.bad(
                vec![k("store"), k("key_file")],
                "must name a file (the key that encrypts the seeds)".into(),
            );
        } else if *key == cfg.store.path {
            v.bad(
                vec![k("store"), k("key_file")],
                "must not be the store itself".into(),
            );
        }
    }
}

/// What a PostgreSQL URL must look like here: `postgres://user@host[:port]/db`, with no
/// password (that goes in `password_file`, so the config file holds no secret). The engine
/// parses the rest and names any other problem.
pub fn check_store_url(url: &str) -> Result<(), String> {
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return Err("must start with postgres:// (postgres://user@host:port/database)".into());
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && userinfo.contains(':')
    {
        return Err("must not hold a password: put it in store.password_file (first line)".into());
    }
    if rest.split('?').nth(1).is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.starts_with("password=") || kv.starts_with("sslmode="))
    }) {
        return Err("give the password and the TLS mode as store.password_file and store.sslmode, not in the URL".into());
    }
    Ok(())
}
