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
        if !url.contains("://") && url.contains('=') {
            return Err(key_value_help(url));
        }
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

/// The refusal of libpq's key=value form (`host=a,b port=5432 dbname=mfa`): one form is
/// checked here (no password in it, no TLS mode beside `sslmode`), and that is the URL.
/// The URL the words would make is shown when they are plain `key=value` pairs, so the
/// fix is a copy; a password in them is never echoed.
fn key_value_help(text: &str) -> String {
    let mut shown = String::from(
        "postgres://USER@HOST1:5432,HOST2:5432/DATABASE?target_session_attrs=read-write",
    );
    let pairs: Option<Vec<(&str, &str)>> = text
        .split_whitespace()
        .map(|w| w.split_once('=').filter(|(_, v)| !v.contains(['\'', '"'])))
        .collect();
    if let Some(pairs) = pairs {
        let get = |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        if let Some(hosts) = get("host") {
            let ports: Vec<&str> = get("port")
                .map(|p| p.split(',').collect())
                .unwrap_or_default();
            let hosts: Vec<String> = hosts
                .split(',')
                .enumerate()
                .map(|(i, h)| {
                    let port = ports.get(i).or(ports.first()).copied().unwrap_or("5432");
                    format!("{h}:{port}")
                })
                .collect();
            shown = format!(
                "postgres://{}@{}/{}",
                get("user").unwrap_or("USER"),
                hosts.join(","),
                get("dbname").unwrap_or("DATABASE")
            );
            if let Some(t) = get("target_session_attrs") {
                shown.push_str(&format!("?target_session_attrs={t}"));
            } else if hosts.len() > 1 {
                shown.push_str("?target_session_attrs=read-write");
            }
        }
    }
    format!(
        "the key=value form (host=a,b port=...) is not accepted here; write it as a URL: {shown:?} (the password goes in store.password_file, TLS in store.sslmode)"
    )
}

#[cfg(test)]
mod tests {
    use super::check_store_url;

    #[test]
    fn the_key_value_form_is_refused_with_the_url_it_would_be() {
        let e = check_store_url(
            "host=db1.example.com,db2.example.com port=5432 user=mfa dbname=mfa target_session_attrs=read-write",
        )
        .unwrap_err();
        assert!(e.contains("key=value form"), "{e}");
        assert!(
            e.contains("postgres://mfa@db1.example.com:5432,db2.example.com:5432/mfa?target_session_attrs=read-write"),
            "{e}"
        );
        // Two ports for two hosts; no target_session_attrs given: read-write is suggested.
        let e = check_store_url("host=a,b port=5433,5434 user=r dbname=d").unwrap_err();
        assert!(
            e.contains("postgres://r@a:5433,b:5434/d?target_session_attrs=read-write"),
            "{e}"
        );
        // A password among the words is never shown.
        let e = check_store_url("host=a password=hunter2 user=r dbname=d").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("postgres://"), "{e}");
    }

    #[test]
    fn the_multi_host_url_is_accepted() {
        check_store_url(
            "postgres://mfa@10.0.0.1:5432,10.0.0.2:5432/mfa?target_session_attrs=read-write",
        )
        .unwrap();
    }
}
