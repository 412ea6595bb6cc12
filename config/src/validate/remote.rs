//! `[remote]`: a PAM host that asks mfa-radiusd instead of reading a store.

use super::{Problems, k};
use crate::{Config, Seg};

/// `[remote]`, where set.
pub(super) fn remote(cfg: &Config, v: &mut Problems<'_>) {
    if let Some(rc) = &cfg.remote {
        let at = |key: &str| vec![k("remote"), k(key)];
        if rc.servers.is_empty() {
            v.bad(at("servers"), "list at least one mfa-radiusd server".into());
        }
        if rc.servers.len() > 8 {
            v.bad(
                at("servers"),
                format!(
                    "{} servers is too many (at most 8): a login waits for each one that is down",
                    rc.servers.len()
                ),
            );
        }
        for (i, a) in rc.servers.iter().enumerate() {
            if rc.servers[..i].contains(a) {
                v.bad(
                    vec![k("remote"), k("servers"), Seg::Index(i)],
                    format!("{a} is listed twice"),
                );
            }
        }
        if rc.secret_file.as_os_str().is_empty() {
            v.bad(at("secret_file"), "must not be empty".into());
        }
        if let Some(src) = rc.source {
            for (i, a) in rc.servers.iter().enumerate() {
                if a.is_ipv6() != src.is_ipv6() {
                    v.bad(
                        vec![k("remote"), k("servers"), Seg::Index(i)],
                        format!(
                            "{a} cannot be reached from source {src}: give servers of the source's address family"
                        ),
                    );
                }
            }
        }
        if rc.timeout.as_secs() == 0 || rc.timeout.as_secs() > 30 {
            v.bad(at("timeout"), "must be between 1s and 30s".into());
        }
        if rc.offline_queue.as_os_str().is_empty() {
            v.bad(at("offline_queue"), "must not be empty".into());
        }
        if rc
            .breakglass_file
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            v.bad(at("breakglass_file"), "must not be empty".into());
        }
        if rc.retries > 5 {
            v.bad(
                at("retries"),
                format!("{} resends per server is too many (at most 5)", rc.retries),
            );
        }
    }
}
