//! The servers: TLS settings, the service account's kept connection with failover in the
//! configured order, searches (referrals skipped), and binds as a user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
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
        let mut e = self.read_raw(dn, attrs)?;
        if let Some(e) = &mut e {
            self.complete_ranges(e)?;
        }
        Ok(e)
    }

    /// One entry as the server gave it, ranges not read on.
    fn read_raw(&self, dn: &str, attrs: &[&str]) -> Result<Option<Entry>, DirectoryError> {
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

    /// A search in pages of [`PAGE_SIZE`] (RFC 2696): Active Directory answers at most
    /// MaxPageSize (1,000) entries to a search without the control and then fails it with
    /// sizeLimitExceeded, so a user in more groups than that would be refused. Values of a
    /// multi-valued attribute past MaxValRange (1,500) come as `attr;range=0-1499`; they
    /// are read on to the end ([`Servers::complete_ranges`]).
    fn search_in(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<(Vec<Entry>, String), DirectoryError> {
        let timeout = self.timeout;
        let (r, server) = self.with_conn(&mut |c| {
            let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
                Box::new(EntriesOnly::new()),
                Box::new(PagedResults::new(PAGE_SIZE)),
            ];
            let mut stream = c.with_timeout(timeout).streaming_search_with(
                adapters,
                base,
                scope,
                filter,
                attrs.to_vec(),
            )?;
            let mut out = Vec::new();
            while let Some(e) = stream.next()? {
                if out.len() >= MAX_ENTRIES {
                    let _ = stream.result();
                    return Err(ldap3::LdapError::AdapterInit(format!(
                        "more than {MAX_ENTRIES} entries for {filter}"
                    )));
                }
                out.push(e);
            }
            stream.result().success()?;
            Ok(out)
        })?;
        let mut found = entries(r)?;
        for e in &mut found {
            self.complete_ranges(e)?;
        }
        Ok((found, server))
    }

    /// Reads on every attribute the server gave only a range of (`member;range=0-1499`),
    /// one base read per range (`member;range=1500-*`), until the server says `*` (the
    /// last); the values end up under the attribute's plain name.
    fn complete_ranges(&self, e: &mut Entry) -> Result<(), DirectoryError> {
        let ranged: Vec<String> = e
            .attrs
            .keys()
            .filter(|k| Range::parse(k).is_some())
            .cloned()
            .collect();
        for key in ranged {
            let Some(mut range) = Range::parse(&key) else {
                continue;
            };
            let mut values = e.attrs.remove(&key).unwrap_or_default();
            let mut reads = 0;
            while let Some(next) = range.next_request() {
                reads += 1;
                if reads > MAX_RANGE_READS {
                    return Err(DirectoryError::new(format!(
                        "{} of {} has more than {MAX_RANGE_READS} ranges",
                        range.attr, e.dn
                    )));
                }
                let more = self.read_raw(&e.dn, &[next.as_str()])?.ok_or_else(|| {
                    DirectoryError::new(format!("{} went away while reading {next}", e.dn))
                })?;
                let Some((k, v)) = more
                    .attrs
                    .into_iter()
                    .find(|(k, _)| Range::parse(k).is_some_and(|r| r.attr == range.attr))
                else {
                    // No further values under a range name: the server had no more.
                    break;
                };
                let Some(r) = Range::parse(&k) else { break };
                if r.start <= range.start {
                    return Err(DirectoryError::new(format!(
                        "{} of {}: the server went back to range {}",
                        range.attr, e.dn, r.start
                    )));
                }
                values.extend(v);
                range = r;
            }
            e.attrs
                .entry(range.attr.clone())
                .or_default()
                .extend(values);
        }
        Ok(())
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

/// Entries per page of a search; AD's MaxPageSize is 1,000.
const PAGE_SIZE: i32 = 500;

/// Most entries one search may return (a user's groups, a name's accounts): past this the
/// lookup fails rather than grow without bound.
const MAX_ENTRIES: usize = 20_000;

/// Most range reads for one attribute (1,500 values each on AD: 150,000 values).
const MAX_RANGE_READS: usize = 100;

/// An attribute description with a range option (`member;range=0-1499`, lowercase as
/// [`Entry`] keeps names), as AD returns a multi-valued attribute past MaxValRange.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Range {
    attr: String,
    start: u64,
    /// `None`: `*`, the last range.
    end: Option<u64>,
}

impl Range {
    fn parse(key: &str) -> Option<Self> {
        let (attr, opt) = key.split_once(";range=")?;
        let (start, end) = opt.split_once('-')?;
        let start = start.parse().ok()?;
        let end = match end {
            "*" => None,
            n => Some(n.parse().ok()?),
        };
        if attr.is_empty() || end.is_some_and(|e| e < start) {
            return None;
        }
        Some(Self {
            attr: attr.to_string(),
            start,
            end,
        })
    }

    /// The attribute description that asks for the values after this range.
    fn next_request(&self) -> Option<String> {
        self.end.map(|e| format!("{};range={}-*", self.attr, e + 1))
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

#[cfg(test)]
mod tests {
    use super::Range;

    #[test]
    fn range_options_are_read_strictly() {
        let r = Range::parse("member;range=0-1499").unwrap();
        assert_eq!((r.attr.as_str(), r.start, r.end), ("member", 0, Some(1499)));
        assert_eq!(r.next_request().as_deref(), Some("member;range=1500-*"));
        let last = Range::parse("memberof;range=1500-*").unwrap();
        assert_eq!((last.start, last.end), (1500, None));
        assert_eq!(last.next_request(), None);
        for bad in [
            "member",
            "member;range=",
            "member;range=5",
            "member;range=9-3",
            "member;range=a-*",
            ";range=0-*",
            "member;range=-1-5",
        ] {
            assert_eq!(Range::parse(bad), None, "{bad}");
        }
    }
}
