//! The `mfa.toml` configuration shared by the PAM module, the RADIUS daemon and `mfactl`.
//!
//! Every error names the file, the line and the key, because the person reading it is an
//! administrator with an editor open, not a developer with a debugger.
#![forbid(unsafe_code)]

mod directory;
mod edit;
mod error;
pub mod files;
mod lenient;
mod locate;
mod logo;
mod preset;
mod push;
mod reply;
mod schema;
mod secret_file;
mod validate;
mod values;

use std::path::{Path, PathBuf};

pub use directory::{DirectoryConfig, DirectoryKind, DirectoryServer};
pub use edit::{
    ExemptEdit, GoLiveEdit, TrustedEdit, edit_enforce_from, edit_exemptions, edit_trusted_networks,
};
pub use error::{ConfigError, Problem};
pub use locate::{Seg, line_of_path, path_string};
pub use logo::{LOGO_MAX_BYTES, Logo, read_logo};
pub use preset::{Preset, PresetFacts};
pub use push::{
    ClientPush, DEFAULT_PUSH_SERVICES, DEFAULT_VAPID_KEY_FILE, PushConfig, PushMode, PushRate,
};
pub use reply::{MAX_AVPAIRS, ReplyAttributes, ReplyKey};
pub use schema::*;
pub use secret_file::{HostSecret, RADSEC_DEFAULT_SECRET, SecretFileError, SecretOwner};
pub use values::{
    Cidr, GoLive, Instant, RememberFor, SecretString, Span, civil_from_days, days_from_civil,
    format_utc,
};

pub use validate::{check_store_url, radsec_file_help};
use validate::{k, validate};

/// Largest config file we read; anything bigger is a mistake (or an attack on a setuid path).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Shortest RADIUS shared secret that passes without a warning (RFC 2865 section 3 asks for
/// at least 16 octets); shorter ones only warn, since some gateways limit the length.
pub const MIN_SECRET_CHARS: usize = 16;

/// Reads and validates the configuration at `path`, and refuses it when someone other than
/// root (or the caller) could have changed it or a file it names (see [`files`]): the file
/// itself and its directories, every `secret_file`, and, when it holds an inline RADIUS
/// `secret`, a file readable by others.
pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
    let path = path.as_ref();
    let (text, meta) = read_checked(path)?;
    let cfg = parse(&text, path)?;
    let mut problems = Vec::new();
    if cfg.radius.clients.iter().any(|c| c.secret.is_some())
        && let Err(e) = files::check_not_world_readable(
            path,
            &meta,
            files::Purpose::Config,
            Some("and holds an inline RADIUS secret"),
        )
    {
        problems.push(file_problem(path, &e));
    }
    problems.extend(cfg.secret_file_problems(&text, false));
    if let Some(d) = &cfg.directory
        && !d.bind_password_file.as_os_str().is_empty()
        && let Err(e) =
            files::check_trusted_file(&d.bind_password_file, files::Purpose::DirectoryPassword)
    {
        let at = [k("directory"), k("bind_password_file")];
        problems.push(Problem {
            file: path.to_path_buf(),
            line: line_of_path(&text, &at),
            key: Some(path_string(&at)),
            message: e.to_string(),
        });
    }
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigError { problems })
    }
}

/// A problem with the configuration file itself or a directory on its way.
fn file_problem(config: &Path, e: &files::FileProblem) -> Problem {
    let message = if e.path() == config {
        e.detail()
    } else {
        e.to_string()
    };
    Problem {
        file: config.into(),
        line: None,
        key: None,
        message,
    }
}

pub(crate) fn read_text(path: &Path) -> Result<String, ConfigError> {
    read_checked(path).map(|(text, _)| text)
}

/// The text of a configuration file that passed [`files::open_trusted`], and its metadata.
fn read_checked(path: &Path) -> Result<(String, std::fs::Metadata), ConfigError> {
    use std::io::Read;
    let (file, meta) = files::open_trusted(path, files::Purpose::Config).map_err(|e| match e {
        files::FileProblem::Missing { .. } => ConfigError::file(
            path,
            "cannot read the configuration: no such file or directory",
        ),
        files::FileProblem::Unreadable { error, .. } => {
            ConfigError::file(path, format!("cannot read the configuration: {error}"))
        }
        e => ConfigError::single(file_problem(path, &e)),
    })?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::file(
            path,
            "larger than 1 MiB; refusing to read it",
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ConfigError::file(path, format!("cannot read the configuration: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = line_of_bytes(e.as_bytes(), e.utf8_error().valid_up_to());
        ConfigError::single(Problem {
            file: path.into(),
            line: Some(line),
            key: None,
            message: "not valid UTF-8".into(),
        })
    })?;
    Ok((text, meta))
}

fn line_of_bytes(b: &[u8], off: usize) -> usize {
    b[..off.min(b.len())]
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        + 1
}

/// Parses and validates configuration text; `path` names it in errors and anchors relative
/// store paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    // Every type and format error at once; the cross-field checks below then run on the
    // tables that had none (a default in place of a bad value would only mislead them).
    let typed = lenient::deserialize(text, path);
    let Some(mut cfg) = typed.config else {
        return Err(ConfigError {
            problems: typed.problems,
        });
    };
    let bad_tables: Vec<&str> = typed
        .removed
        .iter()
        .filter_map(|p| match p.first() {
            Some(Seg::Key(k)) => Some(k.as_str()),
            _ => None,
        })
        .collect();
    cfg.source = path.to_path_buf();
    // Relative paths are taken from the config file's directory, so a checkout's example
    // config works from anywhere.
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if cfg.store.path.is_relative() {
        cfg.store.path = base.join(&cfg.store.path);
    }
    if let Some(key) = cfg.store.key_file.as_mut()
        && key.is_relative()
    {
        *key = base.join(&*key);
    }
    if let Some(r) = cfg.remote.as_mut()
        && r.secret_file.is_relative()
        && !r.secret_file.as_os_str().is_empty()
    {
        r.secret_file = base.join(&r.secret_file);
    }
    if let Some(r) = cfg.remote.as_mut()
        && r.offline_queue.is_relative()
        && !r.offline_queue.as_os_str().is_empty()
    {
        r.offline_queue = base.join(&r.offline_queue);
    }
    if let Some(f) = cfg.remote.as_mut().and_then(|r| r.breakglass_file.as_mut())
        && f.is_relative()
        && !f.as_os_str().is_empty()
    {
        *f = base.join(&*f);
    }
    for c in &mut cfg.radius.clients {
        if let Some(d) = c.secrets_dir.as_mut()
            && d.is_relative()
            && !d.as_os_str().is_empty()
        {
            *d = base.join(&*d);
        }
    }
    for f in [&mut cfg.store.password_file, &mut cfg.store.ca_file]
        .into_iter()
        .flatten()
    {
        if f.is_relative() {
            *f = base.join(&*f);
        }
    }
    if let Some(d) = cfg.directory.as_mut() {
        for f in [Some(&mut d.bind_password_file), d.ca_file.as_mut()]
            .into_iter()
            .flatten()
        {
            if f.is_relative() && !f.as_os_str().is_empty() {
                *f = base.join(&*f);
            }
        }
    }
    if cfg.push.vapid_key_file.is_relative() && !cfg.push.vapid_key_file.as_os_str().is_empty() {
        cfg.push.vapid_key_file = base.join(&cfg.push.vapid_key_file);
    }
    for f in [
        &mut cfg.portal.tls_cert,
        &mut cfg.portal.tls_key,
        &mut cfg.portal.logo,
    ]
    .into_iter()
    .flatten()
    {
        if f.is_relative() && !f.as_os_str().is_empty() {
            *f = base.join(&*f);
        }
    }
    let mut problems = typed.problems;
    let in_bad_table = |key: &str| {
        let table = key.split(['.', '[']).next().unwrap_or(key);
        bad_tables.contains(&table)
    };
    problems.extend(
        validate(&cfg, text)
            .into_iter()
            .filter(|p| !p.key.as_deref().is_some_and(in_bad_table)),
    );
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigError { problems })
    }
}

/// Largest trusted range of public addresses that passes without a warning: a /8 of IPv4,
/// a /32 of IPv6 (what a registry gives a whole ISP). No one organisation's network is
/// larger; a typo or a copied example is.
const WIDE_PUBLIC_V4: u8 = 8;
const WIDE_PUBLIC_V6: u8 = 32;

/// Whether an IPv6 range holds only addresses that are not routed on the internet
/// (unique local `fc00::/7`, link-local `fe80::/10`, loopback, documentation `2001:db8::/32`).
fn private_v6(n: &ipnet::Ipv6Net) -> bool {
    ["fc00::/7", "fe80::/10", "::1/128", "2001:db8::/32"]
        .iter()
        .filter_map(|s| s.parse::<ipnet::Ipv6Net>().ok())
        .any(|p| p.contains(n))
}

/// Whether the system's group database (NSS: files, SSSD, LDAP) knows `group`: what the
/// core's group lookup reads, asked here only to warn about a rule naming a group that
/// matches nobody. A failing lookup counts as unknown, which only warns.
fn group_known(group: &str) -> bool {
    matches!(nix::unistd::Group::from_name(group), Ok(Some(_)))
}

impl Config {
    /// The configured path in messages and for `--config` defaults.
    pub fn default_path() -> PathBuf {
        PathBuf::from(DEFAULT_PATH)
    }

    fn client_key(text: &str, i: usize, key: &str) -> (Option<usize>, String) {
        let path = [k("radius"), k("clients"), Seg::Index(i), k(key)];
        (line_of_path(text, &path), path_string(&path))
    }

    /// Every `secret_file` that exists and fails [`files::check_trusted_file`]; with
    /// `missing`, also those that do not exist.
    fn secret_file_problems(&self, text: &str, missing: bool) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.store.url.is_some() {
            for (key, file) in [
                ("password_file", &self.store.password_file),
                ("ca_file", &self.store.ca_file),
            ] {
                if let Some(f) = file
                    && let Err(e) = std::fs::File::open(f)
                {
                    let path = [k("store"), k(key)];
                    out.push(Problem {
                        file: self.source.clone(),
                        line: line_of_path(text, &path),
                        key: Some(path_string(&path)),
                        message: format!("cannot read {}: {e}", f.display()),
                    });
                }
            }
        }
        for (i, c) in self.radius.clients.iter().enumerate() {
            let (key, path, purpose) = match (&c.secret_file, &c.secrets_dir) {
                (Some(f), _) => ("secret_file", f, files::Purpose::SecretFile),
                (None, Some(d)) => ("secrets_dir", d, files::Purpose::SecretsDir),
                (None, None) => continue,
            };
            match files::check_trusted_file(path, purpose) {
                Ok(()) => {}
                Err(e) if e.is_missing() && !missing => {}
                Err(e) => {
                    let (line, key) = Self::client_key(text, i, key);
                    out.push(Problem {
                        file: self.source.clone(),
                        line,
                        key: Some(key),
                        message: e.to_string(),
                    });
                }
            }
        }
        out
    }

    /// Problems that only show when files named by the config are read (`config check`):
    /// every `secret_file` (missing, unsafe, unreadable, empty), the store's files
    /// (directory, database, `-wal` and `-shm`) where they exist, and the portal's logo.
    pub fn check_referenced_files(&self) -> Vec<Problem> {
        let text = std::fs::read_to_string(&self.source).unwrap_or_default();
        let mut out = self.secret_file_problems(&text, true);
        let flagged = out.len();
        for (i, c) in self.radius.clients.iter().enumerate() {
            if c.secret_file.is_some()
                && flagged == 0
                && let Err(e) = c.load_secret()
            {
                let (line, key) = Self::client_key(&text, i, "secret_file");
                out.push(Problem {
                    file: self.source.clone(),
                    line,
                    key: Some(key),
                    message: e.to_string(),
                });
            }
            if c.secrets_dir.is_some()
                && flagged == 0
                && let Err(e) = c.load_host_secrets()
            {
                let (line, key) = Self::client_key(&text, i, "secrets_dir");
                out.push(Problem {
                    file: self.source.clone(),
                    line,
                    key: Some(key),
                    message: e.to_string(),
                });
            }
        }
        if self.store.url.is_none() {
            match files::check_store(&self.store.path) {
                Ok(()) => {}
                Err(e) if e.is_missing() => {}
                Err(e) => {
                    let path = [k("store"), k("path")];
                    out.push(Problem {
                        file: self.source.clone(),
                        line: line_of_path(&text, &path),
                        key: Some(path_string(&path)),
                        message: e.to_string(),
                    });
                }
            }
        }
        if let Some(logo) = &self.portal.logo
            && let Err(e) = read_logo(logo)
        {
            let path = [k("portal"), k("logo")];
            out.push(Problem {
                file: self.source.clone(),
                line: line_of_path(&text, &path),
                key: Some(path_string(&path)),
                message: e,
            });
        }
        if let Some(r) = &self.remote
            && let Err(e) = r.load_secret()
        {
            let path = [k("remote"), k("secret_file")];
            out.push(Problem {
                file: self.source.clone(),
                line: line_of_path(&text, &path),
                key: Some(path_string(&path)),
                message: e.to_string(),
            });
        }
        out
    }

    /// What is allowed but unwise (`config check` shows them as warnings, `mfa-radiusd` logs
    /// them at start and reload): a RADIUS shared secret shorter than [`MIN_SECRET_CHARS`], a
    /// trusted range of public addresses larger than a /8 (IPv6: a /32), a `remember_for`
    /// entry naming no RADIUS client here, a client that says it is PAM hosts the way entries
    /// did before `kind` (`first_factor = "none"` in challenge mode).
    /// Secrets that cannot be read are not warnings but errors, reported elsewhere.
    pub fn warnings(&self) -> Vec<Problem> {
        let text = std::fs::read_to_string(&self.source).unwrap_or_default();
        let mut out = Vec::new();
        for (i, c) in self.radius.clients.iter().enumerate() {
            let secrets: Vec<(String, zeroize::Zeroizing<Vec<u8>>)> = if c.secrets_dir.is_some() {
                c.load_host_secrets()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(ip, s)| (format!("client {:?}, host {ip}", c.name), s))
                    .collect()
            } else {
                c.load_secret()
                    .map(|s| vec![(format!("client {:?}", c.name), s)])
                    .unwrap_or_default()
            };
            for (who, secret) in secrets {
                let chars = String::from_utf8_lossy(&secret).chars().count();
                if chars >= MIN_SECRET_CHARS {
                    continue;
                }
                let (line, key) = Self::client_key(
                    &text,
                    i,
                    if c.secret.is_some() {
                        "secret"
                    } else if c.secrets_dir.is_some() {
                        "secrets_dir"
                    } else {
                        "secret_file"
                    },
                );
                out.push(Problem {
                    file: self.source.clone(),
                    line,
                    key: Some(key),
                    message: format!(
                        "{who}: the shared secret is {chars} characters; use at least \
                         {MIN_SECRET_CHARS} random ones (RFC 2865 section 3) unless the gateway \
                         cannot take that many"
                    ),
                });
            }
        }
        let mut at = |path: Vec<Seg>, message: String| {
            out.push(Problem {
                file: self.source.clone(),
                line: line_of_path(&text, &path),
                key: Some(path_string(&path)),
                message,
            });
        };
        for (i, n) in self.policy.trusted_networks.iter().enumerate() {
            let wide = match (n.ipv4_part(), n.ipv6_part()) {
                (Some(v4), _) if v4.prefix_len() < WIDE_PUBLIC_V4 => {
                    Some(format!("/{WIDE_PUBLIC_V4} of IPv4"))
                }
                (_, Some(v6)) if v6.prefix_len() < WIDE_PUBLIC_V6 && !private_v6(&v6) => {
                    Some(format!("/{WIDE_PUBLIC_V6} of IPv6"))
                }
                _ => None,
            };
            if let Some(limit) = wide {
                at(
                    vec![k("policy"), k("trusted_networks"), Seg::Index(i)],
                    format!(
                        "{n} is a public range larger than a {limit}: every client in it skips \
                         the code; make sure all of it is your own network"
                    ),
                );
            }
        }
        for (i, c) in self.radius.clients.iter().enumerate() {
            if self.radius.legacy_pam_hosts(c) {
                at(
                    vec![k("radius"), k("clients"), Seg::Index(i), k("first_factor")],
                    format!(
                        "client {:?}: first_factor = \"none\" in challenge mode is read as \
                         kind = \"pam-hosts\" (PAM hosts in remote mode); say so with \
                         kind = \"pam-hosts\" in place of mode and first_factor",
                        c.name
                    ),
                );
            }
        }
        for (i, e) in self.policy.remember_for.iter().enumerate() {
            if let RememberFor::Radius(name) = e
                && !self.radius.clients.iter().any(|c| c.name == *name)
            {
                at(
                    vec![k("policy"), k("remember_for"), Seg::Index(i)],
                    format!(
                        "\"{e}\" names no [[radius.clients]] entry here, so no unlock applies \
                         through it (a typo, or the clients are in the daemon's configuration)"
                    ),
                );
            }
        }
        let mut match_all_at: Option<usize> = None;
        for (i, r) in self.policy.rules.iter().enumerate() {
            let key = |rest: &[Seg]| {
                let mut p = vec![k("policy"), k("rules"), Seg::Index(i)];
                p.extend_from_slice(rest);
                p
            };
            if let Some(first) = match_all_at {
                at(
                    key(&[]),
                    format!(
                        "policy.rules[{first}] matches every login (match_all), so this rule \
                         is never reached"
                    ),
                );
            }
            if r.match_all && match_all_at.is_none() {
                match_all_at = Some(i);
            }
            for (j, name) in r.radius_clients.iter().enumerate() {
                if r.action == RuleAction::Push
                    && self.push.enabled
                    && self.radius.clients.iter().any(|c| c.name == *name)
                    && self.push_for_client_named(name).mode == PushMode::Off
                {
                    at(
                        key(&[k("radius_clients"), Seg::Index(j)]),
                        format!(
                            "client \"{name}\" has push = \"off\", so under this rule's \
                             action = \"push\" nobody gets in through it"
                        ),
                    );
                }
                if !self.radius.clients.iter().any(|c| c.name == *name) {
                    at(
                        key(&[k("radius_clients"), Seg::Index(j)]),
                        format!(
                            "\"{name}\" names no [[radius.clients]] entry here, so this rule \
                             matches nothing through it (a typo, or the clients are in the \
                             daemon's configuration)"
                        ),
                    );
                }
            }
            // With [directory] the groups are the directory's, which a warning here cannot
            // ask (the configuration reads no network).
            for (j, g) in r.groups.iter().enumerate() {
                if self.directory.is_none() && !group_known(g) {
                    at(
                        key(&[k("groups"), Seg::Index(j)]),
                        format!(
                            "the group \"{g}\" is unknown to this system's group database \
                             (NSS), so this rule matches nobody through it"
                        ),
                    );
                }
            }
        }
        out.extend(self.reply_warnings(&text));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(t: &str) -> Result<Config, ConfigError> {
        parse(t, Path::new("/etc/mfa/mfa.toml"))
    }

    /// Every section's problems, in the order `validate` has always reported them (store,
    /// totp, users, policy, lockout, radius, its clients, radsec, policy.remember, portal,
    /// remote), each once.
    #[test]
    fn problems_come_in_the_order_of_the_sections() {
        let e = parse_str(
            r#"
[store]
url = "mysql://db/mfa"
key_file = "/etc/mfa/store.key"
sslmode = "disable"
[totp]
skew = 11
[users]
domains = ["bad domain"]
[policy]
grace_days = 4000
remember = "40d"
[lockout]
max_failures = 0
[radius]
pam_workers = 0
[[radius.clients]]
name = ""
address = "10.0.0.1/32"
secret = "x"
[radius.radsec]
listen = []
[portal]
session_idle = "2h"
[remote]
servers = []
secret_file = "/etc/mfa/remote.secret"
"#,
        )
        .unwrap_err();
        let keys: Vec<&str> = e
            .problems
            .iter()
            .map(|p| p.key.as_deref().unwrap_or("-"))
            .collect();
        assert_eq!(
            keys,
            [
                "store.url",
                "totp.skew",
                "users.domains[0]",
                "policy.grace_days",
                "lockout.max_failures",
                "lockout.max_failures_per_source",
                "radius.pam_workers",
                "radius.clients[0].name",
                "radius.radsec.certificate",
                "radius.radsec.key",
                "radius.radsec.ca_file",
                "radius.radsec.listen",
                "radius.radsec",
                "policy.remember",
                "portal.session_idle",
                "remote.servers",
            ]
        );
    }

    #[test]
    fn defaults_are_secure() {
        let c = parse_str("").unwrap();
        assert_eq!(c.totp.digits, 6);
        assert_eq!(c.totp.period, 30);
        assert_eq!(c.totp.skew, 1);
        assert_eq!(c.policy.local_logins, LocalLogins::Require);
        assert_eq!(c.policy.grace_days, 0);
        assert!(c.radius.require_message_authenticator);
        assert_eq!(c.lockout.max_failures, 5);
    }

    #[test]
    fn postgres_store_keys_are_checked() {
        let ok = parse_str(
            "[store]\nurl = \"postgres://mfa@127.0.0.1:5432/mfa\"\nsslmode = \"disable\"\nkey_file = \"mfa.key\"\n",
        )
        .unwrap();
        assert_eq!(ok.store.key_path(), Path::new("/etc/mfa/mfa.key"));
        assert_eq!(ok.store.sslmode, SslMode::Disable);
        let tls = parse_str(
            "[store]\nurl = \"postgres://mfa@db1/mfa\"\npassword_file = \"db.pw\"\nca_file = \"/etc/mfa/ca.pem\"\nkey_file = \"/etc/mfa/mfa.key\"\n",
        )
        .unwrap();
        assert_eq!(tls.store.sslmode, SslMode::VerifyFull);
        assert_eq!(
            tls.store.password_file.as_deref(),
            Some(Path::new("/etc/mfa/db.pw"))
        );
        for (text, key, says) in [
            (
                "[store]\nurl = \"postgres://mfa:hunter2@db1/mfa\"\nsslmode = \"disable\"\n",
                "store.url",
                "password_file",
            ),
            (
                "[store]\nurl = \"mysql://db1/mfa\"\nsslmode = \"disable\"\n",
                "store.url",
                "postgres://",
            ),
            (
                "[store]\nurl = \"postgres://mfa@db1/mfa\"\n",
                "store.sslmode",
                "ca_file",
            ),
            (
                "[store]\nurl = \"postgres://mfa@db1/mfa\"\nsslmode = \"disable\"\n",
                "store.key_file",
                "every node names the same key file",
            ),
            (
                "[store]\npassword_file = \"/etc/mfa/db.pw\"\n",
                "store.password_file",
                "only used with store.url",
            ),
        ] {
            let e = parse_str(text).unwrap_err();
            let p = &e.problems[0];
            assert_eq!(p.key.as_deref(), Some(key), "{e}");
            assert!(p.message.contains(says), "{e}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn spec_example_parses() {
        let t = include_str!("../../examples/mfa.toml");
        let c = parse(t, Path::new("examples/mfa.toml")).unwrap();
        assert!(!c.policy.trusted_networks.is_empty());
    }

    #[test]
    fn type_errors_name_line_and_key() {
        let e = parse_str("[lockout]\nmax_failures = 5\nwindow = \"5 parsecs\"\n").unwrap_err();
        let p = &e.problems[0];
        assert_eq!(p.line, Some(3));
        assert_eq!(p.key.as_deref(), Some("lockout.window"));
        assert!(p.message.contains("5 parsecs"), "{p}");
        assert!(
            e.to_string()
                .starts_with("/etc/mfa/mfa.toml:3: lockout.window: "),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = parse_str("[policy]\ntrusted_network = [\"10.0.0.0/8\"]\n").unwrap_err();
        assert_eq!(e.problems[0].line, Some(2));
        assert!(e.problems[0].message.contains("unknown field"), "{e}");
    }

    #[test]
    fn bad_cidr_in_list_names_index() {
        let e = parse_str("[policy]\ntrusted_networks = [\n \"10.0.0.0/8\",\n \"10.1.2.3/8\"]\n")
            .unwrap_err();
        let p = &e.problems[0];
        assert_eq!(p.line, Some(4), "{p}");
        assert_eq!(p.key.as_deref(), Some("policy.trusted_networks[1]"));
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let t = "[totp]\ndigits = 9\n[radius]\nmode = \"append\"\nfirst_factor = \"none\"\n[[radius.clients]]\nname = \"gw\"\naddress = \"192.0.2.1\"\n";
        let e = parse_str(t).unwrap_err();
        let keys: Vec<_> = e.problems.iter().map(|p| p.key.clone().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "totp.digits",
                "radius.first_factor",
                "radius.clients[0].secret"
            ]
        );
        assert_eq!(e.problems[0].line, Some(2));
        assert_eq!(e.problems[1].line, Some(5));
    }

    const RADSEC_CLIENT: &str = "[[radius.clients]]\nname = \"gw\"\naddress = \"192.0.2.1\"\ncertificate_name = \"gw.example.net\"\n";

    #[test]
    fn radsec_clients_default_to_the_radsec_secret_and_never_to_udp() {
        let t = format!(
            "{RADSEC_CLIENT}[radius.radsec]\ncertificate = \"s.pem\"\nkey = \"s.key\"\nca_file = \"ca.pem\"\n"
        );
        let c = parse_str(&t).unwrap();
        let r = c.radius.radsec.as_ref().unwrap();
        assert_eq!(r.listen, [std::net::SocketAddr::from(([0, 0, 0, 0], 2083))]);
        assert_eq!(r.max_connections, 256);
        let gw = &c.radius.clients[0];
        assert!(gw.is_radsec());
        assert_eq!(&gw.load_secret().unwrap()[..], b"radsec");
        // Without a certificate identity a client still needs its own secret.
        let e =
            parse_str("[[radius.clients]]\nname = \"gw\"\naddress = \"192.0.2.1\"\n").unwrap_err();
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("radius.clients[0].secret")
        );
    }

    #[test]
    fn radsec_problems_name_their_keys() {
        let t = "[radius.radsec]\nlisten = []\nidle_timeout = \"0s\"\nmax_connections = 0\n[[radius.clients]]\nname = \"gw\"\naddress = \"192.0.2.1\"\nsecret = \"x\"\n";
        let e = parse_str(t).unwrap_err();
        let keys: Vec<_> = e.problems.iter().map(|p| p.key.clone().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "radius.radsec.certificate",
                "radius.radsec.key",
                "radius.radsec.ca_file",
                "radius.radsec.listen",
                "radius.radsec.idle_timeout",
                "radius.radsec.max_connections",
                "radius.radsec",
            ]
        );
        assert!(
            e.problems[2]
                .message
                .contains("client certificates must chain to")
        );
        assert_eq!(e.problems[3].line, Some(2));

        let t = "[[radius.clients]]\nname = \"gw\"\naddress = \"192.0.2.1\"\ncertificate_name = \"not a name!\"\ncertificate_sha256 = \"AB:CD\"\n";
        let e = parse_str(t).unwrap_err();
        let keys: Vec<_> = e.problems.iter().map(|p| p.key.clone().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "radius.clients[0].certificate_name",
                "radius.clients[0].certificate_sha256",
                // A RadSec client with no listener.
                "radius.clients[0].certificate_name",
            ]
        );
        assert_eq!(e.problems[1].line, Some(5));
    }

    #[test]
    fn radsec_handshake_limits_are_checked() {
        let base = "[[radius.clients]]\nname = \"gw\"\naddress = \"192.0.2.1\"\ncertificate_name = \"gw.example.net\"\n[radius.radsec]\ncertificate = \"s.pem\"\nkey = \"s.key\"\nca_file = \"ca.pem\"\n";
        let c = parse_str(base).unwrap();
        let r = c.radius.radsec.as_ref().unwrap();
        assert_eq!(r.handshake_timeout.as_secs(), 5);
        assert_eq!(
            (
                r.max_connections,
                r.max_handshakes,
                r.max_handshakes_per_address
            ),
            (256, 128, 8)
        );
        let t = format!(
            "{base}handshake_timeout = \"0s\"\nmax_handshakes = 0\nmax_handshakes_per_address = 1\n"
        );
        let keys: Vec<_> = parse_str(&t)
            .unwrap_err()
            .problems
            .iter()
            .map(|p| p.key.clone().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "radius.radsec.handshake_timeout",
                "radius.radsec.max_handshakes",
                "radius.radsec.max_handshakes_per_address",
            ]
        );
        let t = format!("{base}max_handshakes = 4\nmax_handshakes_per_address = 5\n");
        let e = parse_str(&t).unwrap_err();
        assert!(
            e.problems[0]
                .message
                .contains("between 1 and max_handshakes (4)"),
            "{e}"
        );
    }

    #[test]
    fn secrets_dir_is_one_way_to_give_secrets_and_udp_only() {
        let ok = parse_str(
            "[[radius.clients]]\nname = \"hosts\"\naddress = \"10.0.5.0/24\"\nsecrets_dir = \"hosts.d\"\nmode = \"challenge\"\nfirst_factor = \"none\"\n",
        )
        .unwrap();
        assert_eq!(
            ok.radius.clients[0].secrets_dir.as_deref(),
            Some(Path::new("/etc/mfa/hosts.d"))
        );
        let e = parse_str(
            "[[radius.clients]]\nname = \"hosts\"\naddress = \"10.0.5.0/24\"\nsecrets_dir = \"/etc/mfa/hosts.d\"\nsecret = \"fleet-wide-secret!\"\n[[radius.clients]]\nname = \"gw\"\naddress = \"192.0.2.1\"\ncertificate_name = \"gw.example.net\"\nsecrets_dir = \"/etc/mfa/gw.d\"\n[radius.radsec]\ncertificate = \"s.pem\"\nkey = \"s.key\"\nca_file = \"ca.pem\"\n",
        )
        .unwrap_err();
        let keys: Vec<_> = e.problems.iter().map(|p| p.key.clone().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "radius.clients[0].secrets_dir",
                "radius.clients[1].secrets_dir"
            ],
            "{e}"
        );
        assert!(e.problems[0].message.contains("not both"), "{e}");
        assert!(e.problems[1].message.contains("certificate"), "{e}");
        let e = parse_str("[radius]\nmax_pending_challenges = 4\n").unwrap_err();
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("radius.max_pending_challenges")
        );
    }

    /// A secret that cannot be read is a typed error whose text is the one these errors
    /// always had (they were strings): the owner, the key, the file.
    #[test]
    fn secret_file_errors_name_the_owner_the_key_and_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gw.secret");
        let t = format!(
            "[[radius.clients]]\nname = \"gw\"\naddress = \"192.0.2.1\"\nsecret_file = \"{}\"\n[remote]\nservers = [\"10.0.0.5\"]\nsecret_file = \"{}\"\n",
            file.display(),
            file.display()
        );
        let c = parse_str(&t).unwrap();
        let (gw, remote) = (&c.radius.clients[0], c.remote.as_ref().unwrap());
        let e = gw.load_secret().unwrap_err();
        assert!(
            matches!(&e, SecretFileError::Untrusted { owner: SecretOwner::Client(n), key: "secret_file", .. } if n == "gw"),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with("client \"gw\": secret_file "),
            "{e}"
        );
        std::fs::write(&file, "\nsecond line\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            gw.load_secret().unwrap_err().to_string(),
            format!("client \"gw\": secret_file {} is empty", file.display())
        );
        assert_eq!(
            remote.load_secret().unwrap_err().to_string(),
            format!("remote: secret_file {} is empty", file.display())
        );
        std::fs::write(&file, vec![b'x'; 5000]).unwrap();
        let e = remote.load_secret().unwrap_err();
        assert!(matches!(e, SecretFileError::TooLarge { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "remote: secret_file {} is larger than 4096 bytes",
                file.display()
            )
        );
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(&remote.load_secret().unwrap()[..], b"s3cret");
        let mut none = gw.clone();
        none.secret_file = None;
        assert_eq!(
            none.load_secret().unwrap_err().to_string(),
            "client \"gw\" has no shared secret"
        );
        assert_eq!(
            none.load_host_secrets().unwrap_err().to_string(),
            "client \"gw\" has no secrets_dir"
        );
    }

    #[test]
    fn host_secrets_are_files_named_by_addresses_inside_the_entry() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts.d");
        std::fs::create_dir(&hosts).unwrap();
        std::fs::set_permissions(&hosts, std::fs::Permissions::from_mode(0o700)).unwrap();
        let put = |name: &str, text: &str| {
            let p = hosts.join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        let client = |address: &str| {
            let t = format!(
                "[[radius.clients]]\nname = \"hosts\"\naddress = \"{address}\"\nsecrets_dir = \"{}\"\nmode = \"challenge\"\nfirst_factor = \"none\"\n",
                hosts.display()
            );
            parse_str(&t).unwrap().radius.clients.remove(0)
        };
        let c = client("10.0.5.0/24");
        let e = c.load_host_secrets().unwrap_err();
        assert!(matches!(e, SecretFileError::NoHosts { .. }), "{e:?}");
        assert!(e.to_string().contains("holds no host's secret"));
        put("10.0.5.7", "seven\n");
        put("::ffff:10.0.5.8", "eight\r\nsecond line\n");
        // An editor's swap file is not a host.
        put(".10.0.5.7.swp", "junk");
        let got = c.load_host_secrets().unwrap();
        let got: Vec<(String, &[u8])> = got
            .iter()
            .map(|(ip, s)| (ip.to_string(), s.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("10.0.5.7".to_string(), &b"seven"[..]),
                ("10.0.5.8".to_string(), &b"eight"[..])
            ]
        );
        // Outside the entry's address.
        let e = client("10.0.5.0/29").load_host_secrets().unwrap_err();
        assert!(
            matches!(e, SecretFileError::OutsideAddress { ip, .. } if ip.to_string() == "10.0.5.8"),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(
            e.contains("10.0.5.8 is not in this client's address 10.0.5.0/29"),
            "{e}"
        );
        // Readable by others, as a secret_file must not be.
        std::fs::set_permissions(
            hosts.join("10.0.5.7"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let e = c.load_host_secrets().unwrap_err();
        assert!(
            matches!(
                &e,
                SecretFileError::Untrusted {
                    owner: SecretOwner::Host { .. },
                    key: "secret_file",
                    ..
                }
            ),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("readable by others"), "{e}");
        std::fs::set_permissions(
            hosts.join("10.0.5.7"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        // A name that is no address.
        put("web1", "x\n");
        let e = c.load_host_secrets().unwrap_err().to_string();
        assert!(e.contains("\"web1\" is not named by an IP address"), "{e}");
        std::fs::remove_file(hosts.join("web1")).unwrap();
        // A directory others may write.
        std::fs::set_permissions(&hosts, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = c.load_host_secrets().unwrap_err().to_string();
        assert!(e.contains("writable by"), "{e}");
    }

    #[test]
    fn remote_source_must_reach_every_server() {
        let c = parse_str(
            "[remote]\nservers = [\"10.0.0.5\"]\nsecret_file = \"r.secret\"\nsource = \"10.0.5.7\"\n",
        )
        .unwrap();
        assert_eq!(c.remote.unwrap().source, Some("10.0.5.7".parse().unwrap()));
        let e = parse_str(
            "[remote]\nservers = [\"10.0.0.5\", \"[2001:db8::5]:1812\"]\nsecret_file = \"r.secret\"\nsource = \"10.0.5.7\"\n",
        )
        .unwrap_err();
        assert_eq!(e.problems[0].key.as_deref(), Some("remote.servers[1]"));
        assert!(e.problems[0].message.contains("source 10.0.5.7"), "{e}");
    }

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let plain = "00".repeat(31) + "fF";
        let colons = plain
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        let mut want = [0u8; 32];
        want[31] = 0xff;
        assert_eq!(parse_sha256(&plain), Some(want));
        assert_eq!(parse_sha256(&colons), Some(want));
        assert_eq!(parse_sha256(&plain[2..]), None);
        assert_eq!(parse_sha256(&("g".to_string() + &plain[1..])), None);
        // A multi-byte character must not panic.
        assert_eq!(parse_sha256(&("é".to_string() + &plain[2..])), None);
    }

    #[test]
    fn relative_store_path_is_anchored_at_config() {
        let c = parse(
            "[store]\npath = \"state/mfa.db\"\n",
            Path::new("/opt/x/mfa.toml"),
        )
        .unwrap();
        assert_eq!(c.store.path, Path::new("/opt/x/state/mfa.db"));
    }

    #[test]
    fn users_table() {
        let c = parse_str("").unwrap();
        assert_eq!(c.users.case, NameCase::Fold);
        assert!(c.users.domains.is_empty());
        let c = parse_str("[users]\ncase = \"exact\"\ndomains = [\"CONTOSO\", \"contoso.com\"]\n")
            .unwrap();
        assert_eq!(c.users.case, NameCase::Exact);
        assert!(!c.users.rules().fold_case);
        assert_eq!(c.users.domains, ["CONTOSO", "contoso.com"]);
        let e = parse_str("[users]\ncase = \"upper\"\n").unwrap_err();
        assert_eq!(e.problems[0].key.as_deref(), Some("users.case"), "{e}");
        let e = parse_str("[users]\ndomains = [\"CONTOSO\", \"a b\", \"contoso\", \"\"]\n")
            .unwrap_err();
        let keys: Vec<_> = e.problems.iter().map(|p| p.key.clone().unwrap()).collect();
        assert_eq!(
            keys,
            ["users.domains[1]", "users.domains[2]", "users.domains[3]"],
            "{e}"
        );
        assert!(e.problems[1].message.contains("twice"), "{e}");
    }

    #[test]
    fn users_unicode_is_refused_unless_allowed() {
        let c = parse_str("").unwrap();
        assert_eq!(c.users.unicode, UnicodeNames::Refuse);
        assert!(!c.users.rules().unicode);
        let c = parse_str("[users]\nunicode = \"allow\"\n").unwrap();
        assert_eq!(c.users.unicode, UnicodeNames::Allow);
        assert!(c.users.rules().unicode);
        assert_eq!(
            parse_str("[users]\nunicode = \"refuse\"\n")
                .unwrap()
                .users
                .unicode,
            UnicodeNames::Refuse
        );
        // A bool or another word is an error naming the file, the line and the key.
        for bad in ["true", "\"yes\"", "\"nfkc\""] {
            let e = parse_str(&format!(
                "[policy]\ngrace_days = 1\n[users]\nunicode = {bad}\n"
            ))
            .unwrap_err();
            let p = &e.problems[0];
            assert_eq!(p.key.as_deref(), Some("users.unicode"), "{bad}: {e}");
            assert_eq!(p.line, Some(4), "{bad}: {e}");
            assert!(e.to_string().contains("mfa.toml"), "{bad}: {e}");
        }
        // exempt_users follow the rule; group names are the directory's and stay free.
        let t = "[policy]\nexempt_users = [\"svc\", \"jörg\"]\nexempt_groups = [\"Domänen-Benutzer\"]\n";
        let e = parse_str(t).unwrap_err();
        assert_eq!(e.problems.len(), 1, "{e}");
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("policy.exempt_users[1]"),
            "{e}"
        );
        assert!(e.problems[0].message.contains("not ASCII"), "{e}");
        let c = parse_str(&format!("{t}[users]\nunicode = \"allow\"\n")).unwrap();
        assert_eq!(c.policy.exempt_groups, ["Domänen-Benutzer"]);
        let e =
            parse_str("[policy]\nexempt_users = [\"ａｌｉｃｅ\"]\n[users]\nunicode = \"allow\"\n")
                .unwrap_err();
        assert!(e.problems[0].message.contains("NFKC"), "{e}");
    }

    #[test]
    fn exempt_users_need_a_canonical_name() {
        let t = "[users]\ndomains = [\"CONTOSO\"]\n[policy]\nexempt_users = [\"CONTOSO\\\\svc\", \"Backup\", \"OTHER\\\\svc\", \"svc@evil.example\"]\n";
        let e = parse_str(t).unwrap_err();
        let keys: Vec<_> = e.problems.iter().map(|p| p.key.clone().unwrap()).collect();
        assert_eq!(
            keys,
            ["policy.exempt_users[2]", "policy.exempt_users[3]"],
            "{e}"
        );
        assert!(e.problems[0].message.contains("\"OTHER\""), "{e}");
    }

    /// Issue 21: accounting is answered by default on the port after each `listen` one,
    /// on the addresses given, or not at all with `[]`; a port `listen` has is refused.
    #[test]
    fn accounting_listen_defaults_to_the_next_port_and_never_shares_one() {
        let addrs = |t: &str| parse_str(t).unwrap().radius.accounting_addresses();
        let d = addrs("");
        assert_eq!(d.addresses, ["0.0.0.0:1813".parse().unwrap()]);
        assert!(!d.explicit);
        let two = addrs("[radius]\nlisten = [\"127.0.0.1:11812\", \"[::1]:1645\"]\n");
        let want: Vec<std::net::SocketAddr> = vec![
            "127.0.0.1:11813".parse().unwrap(),
            "[::1]:1646".parse().unwrap(),
        ];
        assert_eq!(two.addresses, want);
        let given = addrs("[radius]\naccounting_listen = [\"192.0.2.1:1813\"]\n");
        assert_eq!(given.addresses, ["192.0.2.1:1813".parse().unwrap()]);
        assert!(given.explicit);
        let off = addrs("[radius]\naccounting_listen = []\n");
        assert!(off.addresses.is_empty() && off.explicit);

        for (text, why) in [
            (
                "[radius]\nlisten = [\"0.0.0.0:1812\"]\naccounting_listen = [\"0.0.0.0:1812\"]\n",
                "0.0.0.0:1812 is also in listen: accounting needs a port of its own",
            ),
            (
                "[radius]\nlisten = [\"0.0.0.0:1812\", \"0.0.0.0:1813\"]\n",
                "not set, so each listen address's port plus one, which gives 0.0.0.0:1813, already in listen: set accounting_listen (or [] for no accounting)",
            ),
            (
                "[radius]\nlisten = [\"0.0.0.0:65535\"]\n",
                "not set, so each listen address's port plus one, but 0.0.0.0:65535 has no next port: set accounting_listen (or [] for no accounting)",
            ),
            (
                "[radius]\naccounting_listen = [\"0.0.0.0:1813\", \"0.0.0.0:1813\"]\n",
                "0.0.0.0:1813 is listed twice",
            ),
        ] {
            let e = parse_str(text).unwrap_err();
            assert_eq!(e.problems.len(), 1, "{e}");
            assert_eq!(
                e.problems[0].key.as_deref(),
                Some("radius.accounting_listen"),
                "{e}"
            );
            assert_eq!(e.problems[0].message, why);
        }
        // Listening on 1813 is fine with accounting elsewhere.
        parse_str("[radius]\nlisten = [\"0.0.0.0:1812\", \"0.0.0.0:1813\"]\naccounting_listen = [\"0.0.0.0:1814\"]\n").unwrap();
    }

    #[test]
    fn portal_session_idle_and_metrics_listen() {
        let c = parse_str("[portal]\nsession_idle = \"2s\"\nmetrics_listen = \"127.0.0.1:9813\"\n")
            .unwrap();
        assert_eq!(c.portal.session_idle.as_secs(), 2);
        assert_eq!(
            c.portal.metrics_listen,
            Some("127.0.0.1:9813".parse().unwrap())
        );
        let d = parse_str("").unwrap();
        assert_eq!(d.portal.session_idle.as_secs(), 600);
        assert_eq!(d.portal.session_lifetime.as_secs(), 8 * 3600);
        assert_eq!(d.portal.header_timeout.as_secs(), 10);
        assert_eq!(
            (d.portal.max_connections, d.portal.connections_per_address),
            (1024, 64)
        );
        assert!(d.portal.metrics_listen.is_none());
        let c = parse_str(
            "[portal]\nsession_lifetime = \"3s\"\nheader_timeout = \"2s\"\nmax_connections = 10\nconnections_per_address = 2\n",
        )
        .unwrap();
        assert_eq!(c.portal.session_lifetime.as_secs(), 3);
        assert_eq!(c.portal.header_timeout.as_secs(), 2);
        assert_eq!(
            (c.portal.max_connections, c.portal.connections_per_address),
            (10, 2)
        );
        for (text, key) in [
            ("[portal]\nsession_idle = \"0s\"\n", "portal.session_idle"),
            ("[portal]\nsession_idle = \"2h\"\n", "portal.session_idle"),
            (
                "[portal]\nsession_lifetime = \"2d\"\n",
                "portal.session_lifetime",
            ),
            (
                "[portal]\nheader_timeout = \"0s\"\n",
                "portal.header_timeout",
            ),
            (
                "[portal]\nheader_timeout = \"1h\"\n",
                "portal.header_timeout",
            ),
            ("[portal]\nmax_connections = 0\n", "portal.max_connections"),
            (
                "[portal]\nconnections_per_address = 70000\n",
                "portal.connections_per_address",
            ),
            (
                "[portal]\nmetrics_listen = \"192.0.2.1:9813\"\n",
                "portal.metrics_listen",
            ),
        ] {
            let e = parse_str(text).unwrap_err();
            assert_eq!(e.problems[0].key.as_deref(), Some(key), "{e}");
        }
    }

    #[test]
    fn metrics_listen_is_loopback_only() {
        let c = parse_str("[radius]\nmetrics_listen = \"127.0.0.1:9812\"\n").unwrap();
        assert_eq!(
            c.radius.metrics_listen,
            Some("127.0.0.1:9812".parse().unwrap())
        );
        assert!(parse_str("").unwrap().radius.metrics_listen.is_none());
        parse_str("[radius]\nmetrics_listen = \"[::1]:9812\"\n").unwrap();
        let e = parse_str("[radius]\nmetrics_listen = \"0.0.0.0:9812\"\n").unwrap_err();
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("radius.metrics_listen"),
            "{e}"
        );
        assert!(e.problems[0].message.contains("loopback"), "{e}");
    }

    #[test]
    fn enforce_from_forms() {
        let c = parse_str("[policy]\nenforce_from = 2026-12-01T08:00:00Z\n").unwrap();
        assert_eq!(c.policy.enforce_from, GoLive::At(Instant(1_796_112_000)));
        let c = parse_str("[policy]\nenforce_from = 2026-12-01\n").unwrap();
        assert_eq!(c.policy.enforce_from, GoLive::At(Instant(1_796_083_200)));
        let c = parse_str("[policy]\nenforce_from = 2026-12-01T09:00:00+01:00\n").unwrap();
        assert_eq!(c.policy.enforce_from.date(), Some(1_796_112_000));
        assert!(c.policy.enforce_from.is_before(1_796_111_999));
        assert!(!c.policy.enforce_from.is_before(1_796_112_000));
        // Absent: enforced from now.
        let c = parse_str("[policy]\n").unwrap();
        assert_eq!(c.policy.enforce_from, GoLive::Now);
        assert!(!c.policy.enforce_from.is_before(i64::MIN));
    }

    #[test]
    fn enforce_from_never_means_not_scheduled() {
        let c = parse_str("[policy]\nenforce_from = \"never\"\n").unwrap();
        assert_eq!(c.policy.enforce_from, GoLive::Never);
        assert_eq!(c.policy.enforce_from.date(), None);
        assert!(c.policy.enforce_from.is_before(i64::MAX));
    }

    #[test]
    fn enforce_from_errors_name_the_key_and_the_line() {
        for (value, want) in [
            ("\"soon\"", "\"never\""),
            ("\"Never\"", "found \"Never\""),
            ("\"2027-03-01\"", "without quotes"),
            ("5", "a date such as 2027-03-01"),
            ("true", "a date such as 2027-03-01"),
            ("10:00:00", "a date is required"),
        ] {
            let t = format!("# site\n[policy]\ngrace_days = 3\nenforce_from = {value}\n");
            let e = parse_str(&t).unwrap_err();
            let p = &e.problems[0];
            assert_eq!(
                p.key.as_deref(),
                Some("policy.enforce_from"),
                "{value}: {e}"
            );
            assert_eq!(p.line, Some(4), "{value}: {e}");
            assert!(p.message.contains(want), "{value}: {e}");
        }
    }

    fn trusted(list: &[&str]) -> Result<Config, ConfigError> {
        let quoted: Vec<String> = list.iter().map(|n| format!("\"{n}\"")).collect();
        parse_str(&format!(
            "# site\n[policy]\ntrusted_networks = [\n  {}\n]\n",
            quoted.join(",\n  ")
        ))
    }

    /// A trusted range (or several together) holding half an address family or more is MFA
    /// turned off for nearly everyone: refused, naming the entry and its line, whatever way
    /// it is written (IPv4-mapped IPv6 counts as the IPv4 it maps).
    #[test]
    fn trusting_half_the_internet_or_more_is_refused() {
        for (net, says) in [
            ("0.0.0.0/0", "every IPv4 address"),
            ("::/0", "every IPv6 address"),
            ("0.0.0.0/1", "half or more of all IPv4 addresses"),
            ("128.0.0.0/1", "half or more of all IPv4 addresses"),
            ("8000::/1", "half or more of all IPv6 addresses"),
            ("::ffff:0:0/96", "every IPv4 address"),
            ("::ffff:0:0/97", "half or more of all IPv4 addresses"),
            ("::/80", "every IPv4 address"),
        ] {
            let e = trusted(&["10.0.0.0/8", net]).unwrap_err();
            let p = &e.problems[0];
            assert_eq!(
                p.key.as_deref(),
                Some("policy.trusted_networks[1]"),
                "{net}: {e}"
            );
            assert_eq!(p.line, Some(5), "{net}: {e}");
            assert!(p.message.contains(says), "{net}: {e}");
            assert!(p.message.contains("enforce_from"), "{net}: {e}");
        }
        // Halves that together cover a family: the list is refused as a whole.
        for list in [
            &["0.0.0.0/1", "128.0.0.0/1"][..],
            &["0.0.0.0/2", "64.0.0.0/2", "192.0.0.0/3", "224.0.0.0/3"],
            &["0.0.0.0/2", "::ffff:64.0.0.0/98"],
        ] {
            let e = trusted(list).unwrap_err();
            assert!(
                e.problems
                    .iter()
                    .any(|p| p.key.as_deref() == Some("policy.trusted_networks")
                        || p.key.as_deref() == Some("policy.trusted_networks[0]")),
                "{list:?}: {e}"
            );
        }
        let e = trusted(&["0.0.0.0/2", "64.0.0.0/2"]).unwrap_err();
        assert_eq!(e.problems.len(), 1, "{e}");
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("policy.trusted_networks")
        );
        assert!(e.problems[0].message.starts_with("together"), "{e}");
        // A quarter is a (suspicious) configuration, not MFA turned off; overlaps count once.
        assert!(trusted(&["0.0.0.0/2"]).is_ok());
        assert!(trusted(&["0.0.0.0/2", "0.0.0.0/3", "32.0.0.0/3"]).is_ok());
        assert!(trusted(&["10.0.0.0/8", "2001:db8:10::/48", "::ffff:10.0.0.0/104"]).is_ok());
    }

    #[test]
    fn wide_public_trusted_ranges_warn() {
        let c = trusted(&[
            "10.0.0.0/8",
            "12.0.0.0/6",
            "fd00::/8",
            "2000::/16",
            "192.0.2.0/24",
        ])
        .unwrap();
        let w: Vec<String> = c.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("policy.trusted_networks[1]") && w[0].contains("12.0.0.0/6"),
            "{w:?}"
        );
        assert!(
            w[1].contains("policy.trusted_networks[3]") && w[1].contains("2000::/16"),
            "{w:?}"
        );
        assert!(w[0].contains("larger than a /8"), "{w:?}");
    }

    #[test]
    fn remember_for_names_kinds_of_login() {
        let c = parse_str("").unwrap();
        assert_eq!(c.policy.remember_for, [RememberFor::CodeOnly]);
        let c = parse_str(&format!(
            "[policy]\nremember_for = [\"code-only\", \"radius:gw\", \"pam:sshd\"]\n{CLIENT}"
        ))
        .unwrap();
        assert_eq!(
            c.policy.remember_for,
            [
                RememberFor::CodeOnly,
                RememberFor::Radius("gw".into()),
                RememberFor::Pam("sshd".into())
            ]
        );
        assert!(
            c.warnings().is_empty()
                || c.warnings()
                    .iter()
                    .all(|w| !w.to_string().contains("remember_for"))
        );
        assert_eq!(
            parse_str("[policy]\nremember_for = []\n")
                .unwrap()
                .policy
                .remember_for,
            []
        );
        for (entry, says) in [
            ("ssh", "not a kind of login"),
            ("code_only", "not a kind of login"),
            ("radius:", "1 to 64 characters"),
            ("radius: gw", "without surrounding blanks"),
            ("pam:", "PAM service name"),
            ("pam:ss hd", "PAM service name"),
            ("PAM:sshd", "not a kind of login"),
        ] {
            let e = parse_str(&format!(
                "# site\n[policy]\nremember_for = [\n  \"code-only\",\n  \"{entry}\"]\n"
            ))
            .unwrap_err();
            let p = &e.problems[0];
            assert_eq!(
                p.key.as_deref(),
                Some("policy.remember_for[1]"),
                "{entry}: {e}"
            );
            assert_eq!(p.line, Some(5), "{entry}: {e}");
            assert!(p.message.contains(says), "{entry}: {e}");
        }
        let e = parse_str("[policy]\nremember_for = [\"pam:sshd\", \"pam:sshd\"]\n").unwrap_err();
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("policy.remember_for[1]"),
            "{e}"
        );
        assert!(e.to_string().contains("listed twice"), "{e}");
        // A client name that is not configured here: a warning, and no unlock through it.
        let c = parse_str("[policy]\nremember_for = [\"radius:rdgw\"]\n").unwrap();
        let w: Vec<String> = c.warnings().iter().map(ToString::to_string).collect();
        assert!(
            w.iter()
                .any(|w| w.contains("policy.remember_for[0]") && w.contains("names no")),
            "{w:?}"
        );
    }

    const CLIENT: &str =
        "[[radius.clients]]\nname = \"gw\"\naddress = \"192.0.2.1\"\nsecret = \"s\"\n";

    #[test]
    fn per_client_settings_override_radius() {
        let t = format!(
            "[radius]\nmode = \"code-only\"\nfirst_factor = \"none\"\n{CLIENT}\
             [[radius.clients]]\nname = \"host\"\naddress = \"192.0.2.2\"\nsecret = \"s\"\n\
             mode = \"challenge\"\nfirst_factor = \"none\"\nclient_ip_attribute = \"Framed-IP-Address\"\n\
             require_message_authenticator = false\n"
        );
        let c = parse_str(&t).unwrap();
        let r = &c.radius;
        let gw = r.settings_for(&r.clients[0]);
        assert_eq!(gw.mode, RadiusMode::CodeOnly);
        assert!(gw.require_message_authenticator);
        let host = r.settings_for(&r.clients[1]);
        assert_eq!(
            host,
            ClientSettings {
                kind: ClientKind::PamHosts,
                mode: RadiusMode::Challenge,
                first_factor: FirstFactor::None,
                client_ip_attribute: ClientIpAttribute::FramedIpAddress,
                require_message_authenticator: false,
            }
        );
        assert_eq!(gw.kind, ClientKind::Gateway);
    }

    /// PAM hosts are a kind of client, said with `kind = "pam-hosts"`: always challenge mode
    /// with no first factor here, whatever `[radius]` says, and no mode or first factor of
    /// their own that says otherwise. The form from before the key (`first_factor = "none"`
    /// on a client in challenge mode) still means PAM hosts, with a warning naming the key;
    /// an explicit gateway in that form is refused.
    #[test]
    fn pam_hosts_are_a_kind_of_client() {
        let hosts = "[[radius.clients]]\nname = \"hosts\"\naddress = \"10.0.5.0/24\"\nsecret = \"0123456789abcdef\"\n";
        let c = parse_str(&format!(
            "[radius]\nmode = \"append\"\n{hosts}kind = \"pam-hosts\"\n"
        ))
        .unwrap();
        let s = c.radius.settings_for(&c.radius.clients[0]);
        assert_eq!(
            (s.kind, s.mode, s.first_factor),
            (
                ClientKind::PamHosts,
                RadiusMode::Challenge,
                FirstFactor::None
            )
        );
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        // Redundant, but not contradicting: accepted.
        let t =
            format!("{hosts}kind = \"pam-hosts\"\nmode = \"challenge\"\nfirst_factor = \"none\"\n");
        assert!(parse_str(&t).is_ok());
        for (extra, key) in [
            ("mode = \"code-only\"\n", "radius.clients[0].mode"),
            ("mode = \"append\"\n", "radius.clients[0].mode"),
            ("first_factor = \"pam\"\n", "radius.clients[0].first_factor"),
        ] {
            let e = parse_str(&format!("{hosts}kind = \"pam-hosts\"\n{extra}")).unwrap_err();
            assert_eq!(e.problems[0].key.as_deref(), Some(key), "{e}");
            assert!(e.to_string().contains("pam-hosts"), "{e}");
        }
        let e = parse_str(&format!("{hosts}kind = \"pam-host\"\n")).unwrap_err();
        assert!(e.to_string().contains("kind"), "{e}");
        // The form from before the key: PAM hosts, and a warning on its line naming the key.
        let c = parse_str(&format!(
            "{hosts}mode = \"challenge\"\nfirst_factor = \"none\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.radius.settings_for(&c.radius.clients[0]).kind,
            ClientKind::PamHosts
        );
        let w: Vec<String> = c.warnings().iter().map(ToString::to_string).collect();
        assert!(
            w.iter()
                .any(|w| w.contains("radius.clients[0].first_factor")
                    && w.contains("kind = \"pam-hosts\"")),
            "{w:?}"
        );
        // An explicit gateway that checks no password in challenge mode: refused.
        let e = parse_str(&format!(
            "{hosts}kind = \"gateway\"\nfirst_factor = \"none\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("radius.clients[0].first_factor"),
            "{e}"
        );
        assert!(e.to_string().contains("kind = \"pam-hosts\""), "{e}");
        // A gateway in code-only mode may still check no password itself.
        let t =
            format!("{hosts}kind = \"gateway\"\nmode = \"code-only\"\nfirst_factor = \"none\"\n");
        assert!(parse_str(&t).is_ok());
    }

    #[test]
    fn first_factor_none_per_client_only_in_challenge_mode_and_only_explicitly() {
        // Inherited "none" in challenge mode: refused, on the client's mode.
        let t = format!(
            "[radius]\nmode = \"code-only\"\nfirst_factor = \"none\"\n{CLIENT}mode = \"challenge\"\n"
        );
        let e = parse_str(&t).unwrap_err();
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("radius.clients[0].mode"),
            "{e}"
        );
        assert!(e.to_string().contains("inherited"), "{e}");
        // Append mode: never.
        let t = format!("{CLIENT}mode = \"append\"\nfirst_factor = \"none\"\n");
        let e = parse_str(&t).unwrap_err();
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("radius.clients[0].first_factor"),
            "{e}"
        );
        // Explicit, in challenge mode (the default): a PAM host (the form from before
        // `kind = "pam-hosts"`, accepted with a warning).
        let t = format!("{CLIENT}first_factor = \"none\"\n");
        assert!(parse_str(&t).is_ok());
        // Per-client mode code-only with the global first_factor "pam": allowed as today.
        let t = format!("{CLIENT}mode = \"code-only\"\n");
        assert!(parse_str(&t).is_ok());
    }

    #[test]
    fn remote_alone_parses_with_defaults() {
        let c = parse(
            "[remote]\nservers = [\"10.0.0.5:1812\", \"[2001:db8::5]:1812\", \"10.0.0.6\"]\nsecret_file = \"remote.secret\"\n",
            Path::new("/etc/mfa/mfa.toml"),
        )
        .unwrap();
        let r = c.remote.unwrap();
        assert_eq!(
            r.servers,
            [
                "10.0.0.5:1812".parse::<std::net::SocketAddr>().unwrap(),
                "[2001:db8::5]:1812".parse().unwrap(),
                "10.0.0.6:1812".parse().unwrap(),
            ]
        );
        assert_eq!(r.secret_file, Path::new("/etc/mfa/remote.secret"));
        assert_eq!(r.timeout.as_secs(), 3);
        assert_eq!(r.retries, 1);
        assert_eq!(r.offline, RemoteOffline::Deny);
        assert_eq!(r.offline_queue, Path::new("/var/lib/mfa/offline-queue"));
    }

    /// `[remote] offline`: "deny" or "trusted", nothing else; a relative queue is the config
    /// file's directory's; an empty one is refused.
    #[test]
    fn remote_offline_is_deny_or_trusted() {
        let base = "[remote]\nservers = [\"10.0.0.5\"]\nsecret_file = \"/s\"\n";
        let c = parse(
            &format!("{base}offline = \"trusted\"\noffline_queue = \"q/offline\"\n"),
            Path::new("/etc/mfa/mfa.toml"),
        )
        .unwrap();
        let r = c.remote.unwrap();
        assert_eq!(r.offline, RemoteOffline::Trusted);
        assert_eq!(r.offline_queue, Path::new("/etc/mfa/q/offline"));
        assert_eq!(r.breakglass_file, None);
        let c = parse(
            &format!("{base}breakglass_file = \"bg\"\n"),
            Path::new("/etc/mfa/mfa.toml"),
        )
        .unwrap();
        assert_eq!(
            c.remote.unwrap().breakglass_file.as_deref(),
            Some(Path::new("/etc/mfa/bg"))
        );
        let e = parse_str(&format!("{base}breakglass_file = \"\"\n")).unwrap_err();
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("remote.breakglass_file"),
            "{e}"
        );
        let e = parse_str(&format!("{base}offline = \"allow\"\n")).unwrap_err();
        assert!(e.to_string().contains("offline"), "{e}");
        let e = parse_str(&format!("{base}offline_queue = \"\"\n")).unwrap_err();
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("remote.offline_queue"),
            "{e}"
        );
    }

    #[test]
    fn bad_remote_sections_are_refused_with_the_key() {
        let e =
            parse_str("[remote]\nservers = [\"radius1.example.net:1812\"]\nsecret_file = \"/s\"\n")
                .unwrap_err();
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("remote.servers[0]"),
            "{e}"
        );
        assert!(e.to_string().contains("host names are not resolved"), "{e}");
        let e = parse_str(
            "[remote]\nservers = []\nsecret_file = \"/s\"\ntimeout = \"0s\"\nretries = 9\n",
        )
        .unwrap_err();
        let keys: Vec<_> = e.problems.iter().map(|p| p.key.clone().unwrap()).collect();
        assert_eq!(keys, ["remote.servers", "remote.timeout", "remote.retries"]);
        let e = parse_str("[remote]\nservers = [\"10.0.0.5\"]\n").unwrap_err();
        assert!(e.to_string().contains("secret_file"), "{e}");
        let e = parse_str(
            "[remote]\nservers = [\"10.0.0.5\", \"10.0.0.5:1812\"]\nsecret_file = \"/s\"\n",
        )
        .unwrap_err();
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("remote.servers[1]"),
            "{e}"
        );
    }

    /// `[admin]`: the console is off until a group is named; group names follow the name
    /// rule; its own listener needs a group and another address than the portal's.
    #[test]
    fn the_admin_section_names_groups_and_its_own_listener() {
        let c = parse_str("").unwrap();
        assert!(!c.admin.enabled());
        let c = parse_str(
            "[admin]\nlisten = \"127.0.0.1:8444\"\n[admin.groups]\nhelpdesk = [\"mfa-helpdesk\"]\nadmin = [\"mfa-admins\"]\n",
        )
        .unwrap();
        assert!(c.admin.enabled());
        assert_eq!(c.admin.groups.admin, ["mfa-admins"]);
        assert_eq!(c.admin.listen, Some("127.0.0.1:8444".parse().unwrap()));
        for (text, key, says) in [
            (
                "[admin]\ngroups = { admin = [\"a b\"] }\n",
                "admin.groups.admin[0]",
                "not a valid group name",
            ),
            (
                "[admin]\ngroups = { helpdesk = [\"hd\", \"hd\"] }\n",
                "admin.groups.helpdesk[1]",
                "listed twice",
            ),
            (
                "[admin]\nlisten = \"127.0.0.1:8444\"\n",
                "admin.listen",
                "no group is named",
            ),
            (
                "[portal]\nlisten = \"127.0.0.1:8080\"\n[admin]\nlisten = \"127.0.0.1:8080\"\ngroups = { admin = [\"adm\"] }\n",
                "admin.listen",
                "[portal] listen too",
            ),
        ] {
            let e = parse_str(text).unwrap_err();
            assert_eq!(e.problems.len(), 1, "{text}: {e}");
            assert_eq!(e.problems[0].key.as_deref(), Some(key), "{text}: {e}");
            assert!(e.problems[0].message.contains(says), "{text}: {e}");
        }
    }

    /// `[[policy.rules]]`: read in order; each mistake named with its line and key, all in
    /// one run (an unknown action and a bad network by the typed parse, the rest by
    /// validation).
    #[test]
    fn policy_rules_are_read_and_checked() {
        let c = parse_str(
            r#"
[[policy.rules]]
name = "sudo"
services = ["sudo"]
action = "code"

[[policy.rules]]
groups = ["contractors"]
networks = ["198.51.100.0/24"]
action = "none"

[[policy.rules]]
match_all = true
action = "deny"
"#,
        )
        .unwrap();
        let r = &c.policy.rules;
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r[0].action, r[0].name.as_deref()),
            (RuleAction::Code, Some("sudo"))
        );
        assert_eq!(r[1].action, RuleAction::NoCode);
        assert!(r[2].match_all && !r[2].has_match());
        assert!(c.policy.uses_groups());
        assert!(!parse_str("").unwrap().policy.uses_groups());

        let e = parse_str(
            r#"
[[policy.rules]]
services = ["sudo"]
action = "maybe"

[[policy.rules]]
networks = ["10.0.0.1/8"]
action = "code"
"#,
        )
        .unwrap_err();
        let all: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
        assert_eq!(all.len(), 2, "{all:#?}");
        assert!(
            all[0].starts_with(
                "/etc/mfa/mfa.toml:4: policy.rules[0].action: unknown variant `maybe`"
            ),
            "{all:#?}"
        );
        assert!(
            all[1].starts_with("/etc/mfa/mfa.toml:7: policy.rules[1].networks[0]: "),
            "{all:#?}"
        );
        // The checks across keys, once the types are right.
        let e = parse_str(
            r#"
[[policy.rules]]
services = ["sudo"]
action = "code"

[[policy.rules]]
networks = ["10.0.0.0/8"]
action = "code"

[[policy.rules]]
action = "code"

[[policy.rules]]
match_all = true
services = ["sshd"]
action = "none"

[[policy.rules]]
networks = ["0.0.0.0/0"]
action = "none"

[[policy.rules]]
name = "a"
local = true
action = "deny"
remembered = true

[[policy.rules]]
name = "a"
services = ["bad service"]
groups = ["bad group"]
action = "push"
"#,
        )
        .unwrap_err();
        let all: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
        let has = |line: usize, key: &str, word: &str| {
            all.iter().any(|p| {
                p.starts_with(&format!("/etc/mfa/mfa.toml:{line}: {key}: ")) && p.contains(word)
            })
        };
        assert_eq!(all.len(), 8, "{all:#?}");
        assert!(has(10, "policy.rules[2]", "match_all = true"), "{all:#?}");
        assert!(has(14, "policy.rules[3].match_all", "ignored"), "{all:#?}");
        assert!(
            has(19, "policy.rules[4].networks[0]", "every IPv4 address"),
            "{all:#?}"
        );
        assert!(
            has(26, "policy.rules[5].remembered", "\"code\" only"),
            "{all:#?}"
        );
        assert!(has(29, "policy.rules[6].name", "used twice"), "{all:#?}");
        assert!(
            has(30, "policy.rules[6].services[0]", "PAM service"),
            "{all:#?}"
        );
        assert!(
            has(31, "policy.rules[6].groups[0]", "group name"),
            "{all:#?}"
        );
        assert!(
            has(32, "policy.rules[6].action", "[push] enabled"),
            "{all:#?}"
        );
        // Asking a code from everywhere is no trusted network: fine.
        parse_str("[[policy.rules]]\nnetworks = [\"0.0.0.0/0\", \"::/0\"]\naction = \"code\"\n")
            .unwrap();
    }

    /// What a rule may mean but likely does not: a group the system does not know, a client
    /// not configured here, a rule after one that matches every login.
    #[test]
    fn policy_rules_warn_about_what_matches_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfa.toml");
        let text = "[[policy.rules]]\ngroups = [\"root\", \"no-such-group-xyz\"]\naction = \"code\"\n\n[[policy.rules]]\nmatch_all = true\naction = \"code\"\n\n[[policy.rules]]\nradius_clients = [\"vpn\"]\naction = \"deny\"\n";
        std::fs::write(&path, text).unwrap();
        let c = parse(text, &path).unwrap();
        let w: Vec<String> = c.warnings().iter().map(ToString::to_string).collect();
        let at = |line: usize, key: &str, word: &str| {
            w.iter()
                .any(|p| p.contains(&format!("mfa.toml:{line}: {key}: ")) && p.contains(word))
        };
        assert_eq!(w.len(), 3, "{w:#?}");
        assert!(
            at(2, "policy.rules[0].groups[1]", "no-such-group-xyz"),
            "{w:#?}"
        );
        assert!(at(9, "policy.rules[2]", "never reached"), "{w:#?}");
        assert!(
            at(
                10,
                "policy.rules[2].radius_clients[0]",
                "names no [[radius.clients]]"
            ),
            "{w:#?}"
        );
        // A push rule through a client whose push is off lets nobody in.
        let text = "[push]\nenabled = true\nsubscriber = \"mailto:it@example.com\"\n[[radius.clients]]\nname = \"gw\"\naddress = \"127.0.0.1\"\nsecret = \"0123456789abcdef0123\"\npush = \"off\"\n[[policy.rules]]\nradius_clients = [\"gw\"]\naction = \"push\"\n";
        std::fs::write(&path, text).unwrap();
        let c = parse(text, &path).unwrap();
        let w: Vec<String> = c.warnings().iter().map(ToString::to_string).collect();
        assert!(
            w.len() == 1
                && w[0].contains("policy.rules[0].radius_clients[0]")
                && w[0].contains("push = \"off\""),
            "{w:#?}"
        );
    }
}
