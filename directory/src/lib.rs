//! `[directory]` over LDAP: the core's [`Directory`] for Active Directory (and Samba AD) and
//! OpenLDAP, for mfa-radiusd, mfa-portal and mfactl (opened by `mfa-store-open`). The PAM
//! module never links this crate: no LDAP client, TLS stack or async runtime inside sshd.
//!
//! - Servers are tried in the configured order; the service account's connection is kept
//!   and opened again (from the first server) when it fails.
//! - TLS is always verified: `ldaps://`, or StartTLS on `ldap://`, against `ca_file` or the
//!   system's roots, the URL's host (or IP address) in the certificate.
//! - Groups: AD's in-chain rule (`1.2.840.113556.1.4.1941`) from the user and from the
//!   primary group (`primaryGroupID` turned into the group's SID), OpenLDAP's `memberOf`
//!   followed group by group ([`groups`]). Referrals are skipped.
//! - Answers are cached ([`cache`]); no answer is never cached and never read as "none".
#![forbid(unsafe_code)]

mod cache;
mod conn;
pub mod groups;
mod sid;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use mfa_config::{DirectoryConfig, DirectoryKind};
use mfa_core::directory::{Account, BindOutcome, Directory, DirectoryError, Found};
use zeroize::Zeroizing;

use crate::cache::{Cache, Cached};
use crate::conn::{Entry, Servers};

/// The attributes read from a user entry.
const USER_ATTRS: &[&str] = &[
    "sAMAccountName",
    "uid",
    "userPrincipalName",
    "objectSid",
    "primaryGroupID",
    "gidNumber",
    "memberOf",
];

/// A directory over LDAP, as `[directory]` describes it.
pub struct LdapDirectory {
    cfg: DirectoryConfig,
    servers: Servers,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for LdapDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapDirectory")
            .field("servers", &self.cfg.servers)
            .finish_non_exhaustive()
    }
}

impl LdapDirectory {
    /// Reads the service account's password and the CA file; connects to nothing yet (a
    /// directory down at start must not stop the daemon: its lookups fail until it is back).
    pub fn open(cfg: &DirectoryConfig) -> Result<Self, DirectoryError> {
        let password = cfg.load_bind_password().map_err(DirectoryError::new)?;
        let servers = Servers::new(cfg, password)?;
        Ok(Self {
            cfg: cfg.clone(),
            servers,
            cache: Mutex::new(Cache::new(cfg.cache_size, cfg.cache_ttl.0)),
        })
    }

    /// [`LdapDirectory::open`], as the core takes it.
    pub fn open_shared(cfg: &DirectoryConfig) -> Result<Arc<dyn Directory>, DirectoryError> {
        Ok(Arc::new(Self::open(cfg)?))
    }

    fn user_filter(&self, attr: &str, value: &str) -> String {
        format!(
            "(&{}({attr}={}))",
            self.cfg.user_filter(),
            ldap3::ldap_escape(value)
        )
    }

    /// The one user entry `filter` selects: none, one, or an error for two (an ambiguous
    /// name must not pick one of them).
    fn one_user(&self, filter: &str) -> Result<(Option<Entry>, String), DirectoryError> {
        let (mut entries, server) = self.servers.search(&self.cfg.base_dn, filter, USER_ATTRS)?;
        if entries.len() > 1 {
            return Err(DirectoryError::new(format!(
                "{} entries match {filter}: a name must select one account",
                entries.len()
            )));
        }
        Ok((entries.pop(), server))
    }

    fn fetch(&self, name: &str) -> Result<Found, DirectoryError> {
        let start = Instant::now();
        let attr = self.cfg.kind.name_attribute();
        let (entry, server) = self.one_user(&self.user_filter(attr, name))?;
        let account = match entry {
            None => None,
            Some(e) => {
                let groups = match self.cfg.kind {
                    DirectoryKind::Ad => groups::ad(&self.servers, &self.cfg, &e)?,
                    DirectoryKind::Openldap => groups::openldap(&self.servers, &self.cfg, &e)?,
                };
                Some(Account {
                    name: e.first(attr).unwrap_or(name).to_string(),
                    upn: e.first("userPrincipalName").map(str::to_string),
                    dn: e.dn,
                    groups,
                })
            }
        };
        Ok(Found {
            account,
            server,
            took: start.elapsed(),
        })
    }

    fn cached(&self, key: &str) -> Option<Cached> {
        self.cache.lock().ok()?.get(key)
    }

    fn remember(&self, key: String, value: Cached) {
        if let Ok(mut c) = self.cache.lock() {
            c.put(key, value);
        }
    }

    /// Empties the cache (the benchmark's cold runs).
    pub fn clear_cache(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }
}

impl Directory for LdapDirectory {
    fn lookup(&self, name: &str) -> Result<Found, DirectoryError> {
        let key = format!("u:{}", name.to_lowercase());
        let start = Instant::now();
        if let Some(Cached::User(account)) = self.cached(&key) {
            return Ok(Found {
                account,
                server: "cache".into(),
                took: start.elapsed(),
            });
        }
        let found = self.fetch(name)?;
        self.remember(key, Cached::User(found.account.clone()));
        Ok(found)
    }

    fn lookup_fresh(&self, name: &str) -> Result<Found, DirectoryError> {
        let found = self.fetch(name)?;
        self.remember(
            format!("u:{}", name.to_lowercase()),
            Cached::User(found.account.clone()),
        );
        Ok(found)
    }

    fn by_principal_name(&self, upn: &str) -> Result<Option<String>, DirectoryError> {
        if self.cfg.kind != DirectoryKind::Ad {
            return Ok(None);
        }
        let key = format!("p:{}", upn.to_lowercase());
        if let Some(Cached::Principal(n)) = self.cached(&key) {
            return Ok(n);
        }
        let (entry, _) = self.one_user(&self.user_filter("userPrincipalName", upn))?;
        let name = entry.and_then(|e| e.first("sAMAccountName").map(str::to_string));
        self.remember(key, Cached::Principal(name.clone()));
        Ok(name)
    }

    fn check_password(
        &self,
        name: &str,
        password: &Zeroizing<String>,
    ) -> Result<BindOutcome, DirectoryError> {
        // Active Directory takes a simple bind with a DN and no password as an anonymous
        // bind, and answers success: never send one.
        if password.is_empty() {
            return Ok(BindOutcome::Refused);
        }
        let dn = match self.lookup(name)?.account {
            Some(a) => a.dn,
            // A bind all the same, to a DN no account has, so an unknown name costs the
            // time a wrong password does.
            None => format!("CN=mfa-no-such-user,{}", self.cfg.base_dn),
        };
        self.servers.bind_as(&dn, password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfa_config::Span;

    /// A directory whose only server is a closed port on this host: every lookup fails.
    fn unreachable(dir: &std::path::Path) -> LdapDirectory {
        let pw = dir.join("pw");
        std::fs::write(&pw, "service-password\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let cfg = DirectoryConfig {
            servers: vec!["ldaps://127.0.0.1:1".into()],
            bind_dn: "CN=svc,DC=test,DC=lan".into(),
            bind_password_file: pw,
            base_dn: "DC=test,DC=lan".into(),
            timeout: Span::secs(1),
            ..DirectoryConfig::default()
        };
        LdapDirectory::open(&cfg).unwrap()
    }

    /// An empty password never reaches a server (AD would take it as an anonymous bind,
    /// a success): refused before anything is asked, so even with no server answering.
    #[test]
    fn an_empty_password_is_refused_before_any_bind() {
        let dir = tempfile::tempdir().unwrap();
        let d = unreachable(dir.path());
        assert_eq!(
            d.check_password("alice", &Zeroizing::new(String::new()))
                .unwrap(),
            BindOutcome::Refused
        );
        // A password is checked, and with no server that is an error, never a refusal or
        // an acceptance.
        assert!(
            d.check_password("alice", &Zeroizing::new("pw".into()))
                .is_err()
        );
        // And no answer is never "no such user" or "no groups".
        let e = d.lookup("alice").unwrap_err();
        assert!(e.message.contains("127.0.0.1:1"), "{e}");
        assert!(d.lookup("alice").is_err(), "a failure is never cached");
    }
}
