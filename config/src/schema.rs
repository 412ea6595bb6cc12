//! The typed schema of `mfa.toml`. Key names are a contract (SPEC.md): add, never rename.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use mfa_model::{Algorithm, TotpParams};

use crate::values::{Cidr, Instant, SecretString, Span};

pub const DEFAULT_PATH: &str = "/etc/mfa/mfa.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub store: StoreConfig,
    pub totp: TotpConfig,
    pub policy: PolicyConfig,
    pub lockout: LockoutConfig,
    pub radius: RadiusConfig,
    pub audit: AuditConfig,
    /// The file this configuration was read from (not a key).
    #[serde(skip)]
    pub source: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            store: StoreConfig::default(),
            totp: TotpConfig::default(),
            policy: PolicyConfig::default(),
            lockout: LockoutConfig::default(),
            radius: RadiusConfig::default(),
            audit: AuditConfig::default(),
            source: PathBuf::from(DEFAULT_PATH),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// SQLite database, the embedded default. Relative paths are taken from the config file's
    /// directory, so a checkout's example config works from anywhere.
    pub path: PathBuf,
    /// PostgreSQL URL, for several servers sharing one user base (`postgres://user@host:port/db`,
    /// no password in it: see `password_file`). When set, `path` is not used.
    pub url: Option<String>,
    /// PostgreSQL: the role's password, the file's first line.
    pub password_file: Option<PathBuf>,
    /// PostgreSQL: TLS to the database server.
    pub sslmode: SslMode,
    /// PostgreSQL: the CA certificates (PEM) the server's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// How long a writer waits for another process's transaction (PostgreSQL: also the
    /// connect timeout and the row lock timeout).
    pub busy_timeout: Span,
}

/// TLS to a PostgreSQL server, as libpq names the modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS: only for a server on this host or on a network you trust.
    Disable,
    /// TLS, the certificate checked against `ca_file` when one is given (but not the host
    /// name), else not checked at all: protects against eavesdropping, not against an
    /// active attacker.
    Require,
    /// TLS, the certificate chained to `ca_file` and issued for the host in the URL.
    #[default]
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("/var/lib/mfa/mfa.db"),
            url: None,
            password_file: None,
            sslmode: SslMode::default(),
            ca_file: None,
            busy_timeout: Span::secs(5),
        }
    }
}

/// Read as the model's algorithm names; an unknown one gets serde's "unknown variant" error.
fn algorithm<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Algorithm, D::Error> {
    let s = String::deserialize(d)?;
    Algorithm::parse(&s)
        .ok_or_else(|| serde::de::Error::unknown_variant(&s, &["SHA1", "SHA256", "SHA512"]))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TotpConfig {
    pub issuer: String,
    #[serde(deserialize_with = "algorithm")]
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
    pub skew: u8,
}

impl TotpConfig {
    /// The parameters new keys get.
    pub fn params(&self) -> TotpParams {
        TotpParams {
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
        }
    }
}

impl Default for TotpConfig {
    fn default() -> Self {
        Self {
            issuer: "MFA".into(),
            algorithm: Algorithm::SHA1,
            digits: 6,
            period: 30,
            skew: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LocalLogins {
    /// Console and other logins without a remote host must give a code.
    #[default]
    Require,
    /// Logins without a remote host count as trusted.
    Trusted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SelfEnroll {
    Never,
    #[default]
    Trusted,
    Anywhere,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub trusted_networks: Vec<Cidr>,
    pub local_logins: LocalLogins,
    /// Go-live; absent means enforced from now.
    pub enforce_from: Option<Instant>,
    /// Days a not-yet-enrolled user may still log in, counted per user from when the user first
    /// met the requirement (at or after go-live).
    pub grace_days: u32,
    pub self_enroll: SelfEnroll,
    pub exempt_users: Vec<String>,
    pub exempt_groups: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            trusted_networks: Vec::new(),
            local_logins: LocalLogins::Require,
            enforce_from: None,
            grace_days: 0,
            self_enroll: SelfEnroll::Trusted,
            exempt_users: Vec::new(),
            exempt_groups: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    pub max_failures: u32,
    pub window: Span,
    pub lock_for: Span,
    /// Wrong codes for one user from one client address, within `window`, that lock that
    /// address out (for `lock_for`) before the user is: an outsider guessing from one place
    /// cannot lock the user out everywhere. 0 turns it off.
    pub max_failures_per_source: u32,
    /// Whether a locked user is refused on a trusted network too (default: not).
    pub lock_trusted: bool,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Span::secs(300),
            lock_for: Span::secs(900),
            max_failures_per_source: 3,
            lock_trusted: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RadiusMode {
    Append,
    #[default]
    Challenge,
    CodeOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FirstFactor {
    #[default]
    Pam,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum ClientIpAttribute {
    #[default]
    #[serde(rename = "Calling-Station-Id")]
    CallingStationId,
    #[serde(rename = "Tunnel-Client-Endpoint")]
    TunnelClientEndpoint,
    #[serde(rename = "Framed-IP-Address")]
    FramedIpAddress,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusConfig {
    pub listen: Vec<SocketAddr>,
    pub mode: RadiusMode,
    pub first_factor: FirstFactor,
    pub pam_service: String,
    pub client_ip_attribute: ClientIpAttribute,
    pub require_message_authenticator: bool,
    pub challenge_timeout: Span,
    /// Append mode: the string between password and code. Absent: the code is the last
    /// `totp.digits` characters.
    pub append_delimiter: Option<String>,
    /// Most PAM first-factor checks running at once; more wait their turn.
    pub pam_workers: usize,
    /// Also log decisions to syslog (auth facility).
    pub syslog: bool,
    pub clients: Vec<RadiusClient>,
}

impl Default for RadiusConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 1812))],
            mode: RadiusMode::Challenge,
            first_factor: FirstFactor::Pam,
            pam_service: "mfa-radius".into(),
            client_ip_attribute: ClientIpAttribute::CallingStationId,
            require_message_authenticator: true,
            challenge_timeout: Span::secs(60),
            append_delimiter: None,
            pam_workers: 16,
            syslog: false,
            clients: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusClient {
    pub name: String,
    pub address: Cidr,
    pub secret: Option<SecretString>,
    pub secret_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Audit events older than this are pruned (also accepted as `audit_retention`).
    #[serde(alias = "audit_retention")]
    pub retention: Span,
    /// Send every decision to syslog (auth facility) as well as to the store.
    pub syslog: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention: Span::secs(365 * 86_400),
            syslog: true,
        }
    }
}
