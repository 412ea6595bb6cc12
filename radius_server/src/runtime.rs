//! Configuration generations. A [`Runtime`] is everything one configuration puts in force
//! (the clients and their secrets, RadSec's TLS, the store and its writer, the PAM lane),
//! loaded whole at start and again at SIGHUP ([`Shared::reload`]), where it replaces the
//! one in force only if all of it loads. A request holds the generation it started under
//! to its end, so it sees one configuration, never a mix.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use ipnet::IpNet;
use mfa_config::{ClientSettings, Config, ConfigError};
use mfa_core::audit::Syslog;
use mfa_core::{Core, CoreError, NameCheck, OpenMode};
use zeroize::Zeroizing;

use crate::challenge::Asker;
use crate::lanes::Lane;
use crate::metrics::WriterMetrics;
use crate::mode::mode_name;
use crate::radsec::{CertId, Tls};
use crate::server::{STORE_QUEUE, Shared};
use crate::writer::Writer;

/// Requests waiting for a PAM worker, per worker.
const PAM_QUEUE_PER_WORKER: usize = 16;

/// A RADIUS client (NAS) from the configuration, with its secret loaded.
pub(crate) struct Nas {
    pub(crate) name: String,
    pub(crate) net: IpNet,
    pub(crate) secret: Zeroizing<Vec<u8>>,
    /// RadSec clients: the certificate that identifies it. Such a client is matched over TLS
    /// only, never by address alone over UDP.
    pub(crate) cert: Option<CertId>,
    /// Its mode, first factor, client IP attribute and Message-Authenticator rule: its own
    /// where its `[[radius.clients]]` entry sets them, `[radius]`'s otherwise.
    pub(crate) settings: ClientSettings,
    /// Its entry covers more than one host (a CIDR, or one secret per host from
    /// `secrets_dir`): the hosts are told apart by their source address, never by the name
    /// a host gives itself.
    pub(crate) several_hosts: bool,
}

impl Nas {
    /// Who a request from `from` is, for the challenge table's shares and bindings.
    pub(crate) fn asker(&self, from: IpAddr) -> Asker {
        Asker {
            client: self.name.clone(),
            host: self.several_hosts.then(|| canonical_ip(from)),
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One generation of configuration; SIGHUP builds a new one and swaps it in whole, so a
/// request sees either the old or the new configuration, never a mix.
pub struct Runtime {
    pub(crate) config: Arc<Config>,
    pub(crate) core: Arc<Core>,
    pub(crate) clients: Vec<Arc<Nas>>,
    /// The RadSec TLS configuration, when `[radius.radsec]` is set.
    pub(crate) radsec: Option<Arc<Tls>>,
    /// The PAM lane (first factor), sized by `pam_workers`.
    pub(crate) pam: Arc<Lane>,
    pub(crate) writer: Writer,
    pub(crate) syslog: Option<Syslog>,
    /// What the configuration allows but should not (`Config::warnings`), logged when it is
    /// put in force.
    warnings: Vec<String>,
}

/// Why a configuration could not be put in force.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    Config(ConfigError),
    /// A client's shared secret could not be read; the text names the client and file.
    Secret(mfa_config::SecretFileError),
    NoClients {
        path: PathBuf,
    },
    Store(CoreError),
    Thread(std::io::Error),
    /// `[radius.radsec]`: a file or the TLS configuration built from it; the text names the
    /// file and key.
    Radsec(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Config(e) => write!(f, "{e}"),
            LoadError::Secret(e) => write!(f, "{e}"),
            LoadError::NoClients { path } => write!(
                f,
                "{}: radius.clients: no RADIUS client is configured; every request would be dropped",
                path.display()
            ),
            LoadError::Store(e) => write!(f, "cannot open the store: {e}"),
            LoadError::Thread(e) => write!(f, "cannot start the store writer thread: {e}"),
            LoadError::Radsec(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Config(e) => Some(e),
            LoadError::Store(e) => Some(e),
            LoadError::Thread(e) => Some(e),
            LoadError::Secret(_) | LoadError::NoClients { .. } | LoadError::Radsec(_) => None,
        }
    }
}

impl Runtime {
    /// Loads and checks everything a configuration needs (file, store, every secret); any
    /// problem is an error and nothing is half-applied.
    pub fn load(path: &Path, metrics: &WriterMetrics) -> Result<Self, LoadError> {
        let config = mfa_config::load(path).map_err(LoadError::Config)?;
        // The TLS side of the configuration (RadSec files, certificate names), which the
        // configuration crate leaves to the programs that speak TLS.
        let tls_problems = mfa_tls_files::problems(&config);
        if !tls_problems.is_empty() {
            return Err(LoadError::Config(mfa_config::ConfigError {
                problems: tls_problems,
            }));
        }
        let clients = clients_of(&config)?;
        let radsec = Tls::load(&config).map_err(LoadError::Radsec)?.map(Arc::new);
        if clients.is_empty() {
            return Err(LoadError::NoClients {
                path: path.to_path_buf(),
            });
        }
        let warnings = config.warnings().iter().map(ToString::to_string).collect();
        let config = Arc::new(config);
        // Every start (and reload) checks the stored names against `[users]`: a store with
        // two names of one user is refused with the names and the fix.
        let core = mfa_store_open::open_core(
            config.clone(),
            OpenMode::Create,
            "mfa-radiusd",
            NameCheck::Always,
        )
        .map_err(LoadError::Store)?;
        let r = &config.radius;
        let pam = Arc::new(Lane::new(
            "PAM",
            r.pam_workers,
            r.pam_workers.saturating_mul(PAM_QUEUE_PER_WORKER),
        ));
        let syslog = r.syslog.then(|| Syslog::open("mfa-radiusd"));
        let core = Arc::new(core);
        let writer =
            Writer::start(core.clone(), STORE_QUEUE, metrics.clone()).map_err(LoadError::Thread)?;
        let mut rt = Self {
            config,
            core,
            clients,
            radsec,
            pam,
            writer,
            syslog,
            warnings,
        };
        let open = message_authenticator_warnings(&rt.config);
        rt.warnings.extend(open);
        Ok(rt)
    }

    /// See [`Config::warnings`], and every client that may send requests without
    /// Message-Authenticator.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// What an administrator must hear about this configuration when it comes into force:
/// every client that may send requests without Message-Authenticator.
fn message_authenticator_warnings(config: &Config) -> Vec<String> {
    // Per entry: one with `secrets_dir` is a client per host here.
    config
        .radius
        .clients
        .iter()
        .map(|e| (e, config.radius.settings_for(e)))
        .filter(|(_, settings)| !settings.require_message_authenticator)
        .map(|(c, _)| {
            let own = c.require_message_authenticator.is_some();
            format!(
                "client {:?} ({}): requests without Message-Authenticator are accepted ({}); this client is open to BlastRADIUS (CVE-2024-3596)",
                c.name,
                c.address.0,
                if own {
                    "require_message_authenticator = false on the client"
                } else {
                    "inherited from [radius] require_message_authenticator = false"
                }
            )
        })
        .collect()
}

/// The configured clients with their secrets loaded: one per `[[radius.clients]]` entry, or
/// one per host for an entry with `secrets_dir`. The error names the client and file.
fn clients_of(config: &Config) -> Result<Vec<Arc<Nas>>, LoadError> {
    let mut clients = Vec::new();
    for c in &config.radius.clients {
        let several_hosts = c.address.0.prefix_len() < c.address.0.max_prefix_len();
        let settings = config.radius.settings_for(c);
        if c.secrets_dir.is_some() {
            // One client per host, each good from its own address only.
            for (ip, secret) in c.load_host_secrets().map_err(LoadError::Secret)? {
                clients.push(Arc::new(Nas {
                    name: c.name.clone(),
                    net: IpNet::from(ip),
                    secret,
                    cert: None,
                    settings,
                    several_hosts,
                }));
            }
            continue;
        }
        let secret = c.load_secret().map_err(LoadError::Secret)?;
        clients.push(Arc::new(Nas {
            name: c.name.clone(),
            net: c.address.0,
            secret,
            cert: CertId::of(c),
            settings,
            several_hosts,
        }));
    }
    Ok(clients)
}

impl Shared {
    /// SIGHUP: the new configuration replaces the old only if all of it loads.
    pub async fn reload(self: &Arc<Self>) {
        let path = self.options.config_path.clone();
        let writer_metrics = self.metrics.writer.clone();
        let loaded =
            tokio::task::spawn_blocking(move || Runtime::load(&path, &writer_metrics)).await;
        match loaded {
            Ok(Ok(new)) => {
                for note in restart_notes(&self.runtime().config, &new.config) {
                    self.warn(note);
                }
                let summary = format!(
                    "configuration reloaded from {}: mode {}, {} client(s)",
                    self.options.config_path.display(),
                    mode_name(new.config.radius.mode),
                    new.config.radius.clients.len()
                );
                *self.runtime.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(new);
                self.log(&self.runtime(), &summary);
                for w in self.runtime().warnings() {
                    self.warn(w);
                }
            }
            Ok(Err(e)) => self.warn(&format!(
                "reload failed; the previous configuration stays in force: {e}"
            )),
            Err(e) => self.warn(&format!(
                "reload failed; the previous configuration stays in force: {e}"
            )),
        }
    }
}

/// What a reload cannot change until the next restart (the sockets are bound once), for the
/// log.
fn restart_notes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut notes = Vec::new();
    if old.radius.listen != new.radius.listen {
        notes.push("radius.listen changed: the new addresses take effect at the next restart");
    }
    // Derived from `listen` where not set: the note above covers that.
    if old.radius.accounting_listen != new.radius.accounting_listen {
        notes.push(
            "radius.accounting_listen changed: the new addresses take effect at the next restart",
        );
    }
    let radsec_listen = |c: &Config| c.radius.radsec.as_ref().map(|t| t.listen.clone());
    if radsec_listen(old) != radsec_listen(new) {
        notes.push(
            "radius.radsec.listen changed: the new addresses take effect at the next restart",
        );
    }
    notes
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn parse(text: &str) -> Config {
        mfa_config::parse(text, Path::new("/etc/mfa/mfa.toml")).unwrap()
    }

    #[test]
    fn one_client_per_entry_or_per_host_of_a_secrets_dir() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts.d");
        std::fs::create_dir(&hosts).unwrap();
        for (ip, secret) in [("10.0.6.7", "secret of host seven"), ("10.0.6.8", "eight")] {
            let f = hosts.join(ip);
            std::fs::write(&f, format!("{secret}\n")).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let config = parse(&format!(
            "[radius]\nmode = \"append\"\n\
             [[radius.clients]]\nname = \"vpn\"\naddress = \"192.0.2.1\"\nsecret = \"vpn secret 0123456789\"\n\
             [[radius.clients]]\nname = \"fleet\"\naddress = \"10.0.5.0/24\"\nsecret = \"fleet secret 0123456789\"\nmode = \"code-only\"\nfirst_factor = \"none\"\n\
             [[radius.clients]]\nname = \"hosts\"\naddress = \"10.0.6.0/24\"\nsecrets_dir = \"{}\"\nmode = \"challenge\"\nfirst_factor = \"none\"\n",
            hosts.display()
        ));
        let clients = clients_of(&config).unwrap();
        let seen: Vec<(&str, String, bool, &[u8])> = clients
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.net.to_string(),
                    c.several_hosts,
                    c.secret.as_slice(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "vpn",
                    "192.0.2.1/32".into(),
                    false,
                    &b"vpn secret 0123456789"[..]
                ),
                (
                    "fleet",
                    "10.0.5.0/24".into(),
                    true,
                    b"fleet secret 0123456789"
                ),
                ("hosts", "10.0.6.7/32".into(), true, b"secret of host seven"),
                ("hosts", "10.0.6.8/32".into(), true, b"eight"),
            ]
        );
        assert_eq!(clients[0].settings.mode, mfa_config::RadiusMode::Append);
        assert_eq!(clients[1].settings.mode, mfa_config::RadiusMode::CodeOnly);
        assert!(clients.iter().all(|c| c.cert.is_none()));
        // A host of a multi-host entry is told apart by its address; a single host is not.
        let ip: IpAddr = "10.0.6.7".parse().unwrap();
        assert_eq!(clients[2].asker(ip).host, Some(ip));
        assert_eq!(clients[0].asker(ip).host, None);
        let mapped: IpAddr = "::ffff:10.0.6.7".parse().unwrap();
        assert_eq!(clients[2].asker(mapped).host, Some(ip));
    }

    #[test]
    fn clients_open_to_blastradius_are_named() {
        let config = parse(
            "[radius]\nrequire_message_authenticator = false\n\
             [[radius.clients]]\nname = \"old\"\naddress = \"192.0.2.1\"\nsecret = \"s 0123456789abcdef\"\n\
             [[radius.clients]]\nname = \"new\"\naddress = \"192.0.2.2\"\nsecret = \"s 0123456789abcdef\"\nrequire_message_authenticator = true\n",
        );
        assert_eq!(
            message_authenticator_warnings(&config),
            [
                "client \"old\" (192.0.2.1/32): requests without Message-Authenticator are accepted (inherited from [radius] require_message_authenticator = false); this client is open to BlastRADIUS (CVE-2024-3596)"
            ]
        );
        let config = parse(
            "[[radius.clients]]\nname = \"old\"\naddress = \"192.0.2.1\"\nsecret = \"s 0123456789abcdef\"\nrequire_message_authenticator = false\n",
        );
        let w = message_authenticator_warnings(&config);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("(require_message_authenticator = false on the client)"),
            "{w:?}"
        );
    }

    #[test]
    fn a_reload_says_which_addresses_wait_for_a_restart() {
        let old = Config::default();
        assert!(restart_notes(&old, &old.clone()).is_empty());
        let mut new = old.clone();
        new.radius.listen = vec!["127.0.0.1:11812".parse().unwrap()];
        assert_eq!(
            restart_notes(&old, &new),
            ["radius.listen changed: the new addresses take effect at the next restart"]
        );
        let mut tls = old.clone();
        tls.radius.radsec = Some(mfa_config::RadsecConfig {
            listen: vec!["127.0.0.1:2083".parse().unwrap()],
            ..Default::default()
        });
        assert_eq!(
            restart_notes(&old, &tls),
            ["radius.radsec.listen changed: the new addresses take effect at the next restart"]
        );
        let mut acct = old.clone();
        acct.radius.accounting_listen = Some(Vec::new());
        assert_eq!(
            restart_notes(&old, &acct),
            ["radius.accounting_listen changed: the new addresses take effect at the next restart"]
        );
    }

    #[test]
    fn a_configuration_without_clients_is_not_put_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfa.toml");
        std::fs::write(&path, "[store]\npath = \"mfa.db\"\n").unwrap();
        let e = Runtime::load(&path, &WriterMetrics::default())
            .err()
            .unwrap();
        assert!(matches!(e, LoadError::NoClients { .. }));
        assert_eq!(
            e.to_string(),
            format!(
                "{}: radius.clients: no RADIUS client is configured; every request would be dropped",
                path.display()
            )
        );
        // Nothing was opened for it.
        assert!(!dir.path().join("mfa.db").exists());
    }
}
