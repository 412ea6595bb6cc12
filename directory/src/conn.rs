//! The servers: TLS settings, the service account's kept connection with failover in the
//! configured order, searches (referrals skipped), and binds as a user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::{LdapConn, LdapConnSettings, Scope, SearchEntry};
use mfa_config::{DirectoryConfig, DirectoryServer};
use mfa_core::directory::{BindOutcome, DirectoryError};
use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use zeroize::Zeroizing;

/// LDAP's invalidCredentials: a wrong password, an unknown DN, and on AD a disabled,
/// expired, locked or must-change account (told apart only in the text, never shown).
const INVALID_CREDENTIALS: u32 = 49;

/// One entry of a search, its attributes by lowercase name.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub dn: String,
    attrs: HashMap<String, Vec<String>>,
    bin: HashMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    fn of(e: SearchEntry) -> Self {
        fn low<T>(m: HashMap<String, Vec<T>>) -> HashMap<String, Vec<T>> {
            m.into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect()
        }
        Self {
            dn: e.dn,
            attrs: low(e.attrs),
            bin: low(e.bin_attrs),
        }
    }

    pub(crate) fn first(&self, attr: &str) -> Option<&str> {
        self.all(attr).into_iter().next()
    }

    pub(crate) fn all(&self, attr: &str) -> Vec<&str> {
        self.attrs
            .get(&attr.to_ascii_lowercase())
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// A binary attribute (ldap3 files it as text where it happens to be UTF-8).
    pub(crate) fn bytes(&self, attr: &str) -> Option<Vec<u8>> {
        let a = attr.to_ascii_lowercase();
        if let Some(v) = self.bin.get(&a).and_then(|v| v.first()) {
            return Some(v.clone());
        }
        self.attrs
            .get(&a)
            .and_then(|v| v.first())
            .map(|s| s.as_bytes().to_vec())
    }
}

pub(crate) struct Servers {
    urls: Vec<(String, bool)>,
    timeout: Duration,
    bind_dn: String,
    password: Zeroizing<String>,
    tls: Arc<ClientConfig>,
    /// The service account's connection and the server it is to.
    conn: Mutex<Option<(LdapConn, usize)>>,
}

impl Servers {
    pub(crate) fn new(
        cfg: &DirectoryConfig,
        password: Zeroizing<String>,
    ) -> Result<Self, DirectoryError> {
        let mut urls = Vec::new();
        for s in &cfg.servers {
            let srv = DirectoryServer::parse(s)
                .map_err(|m| DirectoryError::new(format!("[directory] servers: {m}")))?;
            // StartTLS on every ldap:// server; validation refuses turning it off.
            let starttls = !srv.ldaps && cfg.starttls != Some(false);
            if !srv.ldaps && !starttls {
                return Err(DirectoryError::new(
                    "[directory] starttls = false would send passwords in clear",
                ));
            }
            urls.push((srv.url(), starttls));
        }
        Ok(Self {
            urls,
            timeout: cfg.timeout.0,
            bind_dn: cfg.bind_dn.clone(),
            password,
            tls: Arc::new(tls_config(cfg)?),
            conn: Mutex::new(None),
        })
    }

    fn settings(&self, starttls: bool) -> LdapConnSettings {
        LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_config(self.tls.clone())
            .set_starttls(starttls)
    }

    fn open(&self, i: usize) -> Result<LdapConn, String> {
        let (url, starttls) = self.urls.get(i).ok_or("no such server")?;
        LdapConn::with_settings(self.settings(*starttls), url).map_err(|e| e.to_string())
    }

    /// A connection to server `i`, bound as the service account.
    fn connect(&self, i: usize) -> Result<LdapConn, String> {
        let mut c = self.open(i)?;
        c.with_timeout(self.timeout)
            .simple_bind(&self.bind_dn, &self.password)
            .and_then(|r| r.success())
            .map_err(|e| format!("the service account's bind: {e}"))?;
        Ok(c)
    }

    /// Runs `op` on the service account's connection, opening one (servers in order) where
    /// there is none or it failed. The URL of the server that answered comes with the result.
    fn with_conn<T>(
        &self,
        op: &mut dyn FnMut(&mut LdapConn) -> ldap3::result::Result<T>,
    ) -> Result<(T, String), DirectoryError> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| DirectoryError::new("a lookup panicked"))?;
        if let Some((c, i)) = guard.as_mut() {
            let i = *i;
            if let Ok(v) = op(c) {
                return Ok((v, self.url(i)));
            }
        }
        *guard = None;
        let mut errors = Vec::new();
        for i in 0..self.urls.len() {
            match self.connect(i) {
                Ok(mut c) => match op(&mut c) {
                    Ok(v) => {
                        *guard = Some((c, i));
                        return Ok((v, self.url(i)));
                    }
                    Err(e) => errors.push(format!("{}: {e}", self.url(i))),
                },
                Err(e) => errors.push(format!("{}: {e}", self.url(i))),
            }
        }
        Err(DirectoryError::new(errors.join("; ")))
    }

    fn url(&self, i: usize) -> String {
        self.urls.get(i).map(|u| u.0.clone()).unwrap_or_default()
    }

    /// A subtree search under `base`.
    pub(crate) fn search(
        &self,
        base: &str,
        filter: &str,
        attrs: &[&str],
    ) -> Result<(Vec<Entry>, String), DirectoryError> {
        self.search_in(base, Scope::Subtree, filter, attrs)
    }

    /// One entry by its DN (`None` where it does not exist).
    pub(crate) fn read(&self, dn: &str, attrs: &[&str]) -> Result<Option<Entry>, DirectoryError> {
        let timeout = self.timeout;
        let (r, _) = self.with_conn(&mut |c| {
            let res = c.with_timeout(timeout).search(
                dn,
                Scope::Base,
                "(objectClass=*)",
                attrs.to_vec(),
            )?;
            // noSuchObject: a dangling memberOf, not a failure.
            if res.1.rc == 32 {
                return Ok(Vec::new());
            }
            Ok(res.success()?.0)
        })?;
        Ok(entries(r)?.into_iter().next())
    }

    fn search_in(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<(Vec<Entry>, String), DirectoryError> {
        let timeout = self.timeout;
        let (r, server) = self.with_conn(&mut |c| {
            Ok(c.with_timeout(timeout)
                .search(base, scope, filter, attrs.to_vec())?
                .success()?
                .0)
        })?;
        Ok((entries(r)?, server))
    }

    /// A bind as `dn` with `password` on a connection of its own, servers in order: a
    /// server that does not answer passes to the next; the first answer counts.
    pub(crate) fn bind_as(
        &self,
        dn: &str,
        password: &Zeroizing<String>,
    ) -> Result<BindOutcome, DirectoryError> {
        let mut errors = Vec::new();
        for i in 0..self.urls.len() {
            let mut c = match self.open(i) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!("{}: {e}", self.url(i)));
                    continue;
                }
            };
            match c.with_timeout(self.timeout).simple_bind(dn, password) {
                Ok(r) => {
                    let _ = c.unbind();
                    return Ok(match r.rc {
                        0 => BindOutcome::Accepted,
                        INVALID_CREDENTIALS => BindOutcome::Refused,
                        // Any other answer (unwilling to perform, a constraint) is no
                        // success either.
                        _ => BindOutcome::Refused,
                    });
                }
                Err(e) => errors.push(format!("{}: {e}", self.url(i))),
            }
        }
        Err(DirectoryError::new(errors.join("; ")))
    }
}

/// The entries of a search, referrals and intermediate messages left out. ldap3 panics
/// on an entry it cannot take apart; that is a server's malformed answer, so it is caught
/// and turned into an error here rather than taking the process down.
fn entries(r: Vec<ldap3::ResultEntry>) -> Result<Vec<Entry>, DirectoryError> {
    let mut out = Vec::new();
    for e in r {
        if e.is_ref() || e.is_intermediate() {
            continue;
        }
        let se = std::panic::catch_unwind(move || SearchEntry::construct(e))
            .map_err(|_| DirectoryError::new("a malformed search entry"))?;
        out.push(Entry::of(se));
    }
    Ok(out)
}

/// rustls with ring, the roots from `ca_file` or the system; the server's certificate and
/// name always checked.
fn tls_config(cfg: &DirectoryConfig) -> Result<ClientConfig, DirectoryError> {
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            let shown = |e: String| {
                DirectoryError::new(format!("[directory] ca_file {}: {e}", path.display()))
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| shown(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| shown(e.to_string()))?;
            if certs.is_empty() {
                return Err(shown("holds no certificate".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| shown(e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                // A system root rustls cannot use is left out, as every TLS client does.
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(DirectoryError::new(
                    "no system CA roots: set [directory] ca_file",
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DirectoryError::new(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
