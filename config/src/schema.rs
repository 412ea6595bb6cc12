//! The typed schema of `mfa.toml`. Key names are a contract (SPEC.md): add, never rename.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use mfa_model::{Algorithm, TotpParams};

use crate::values::{Cidr, GoLive, RememberFor, SecretString, Span};

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
    pub users: UsersConfig,
    /// PAM remote mode: the module asks mfa-radiusd instead of opening a store.
    pub remote: Option<RemoteConfig>,
    /// The self-service web page (`mfa-portal`) and the links `mfactl invite` prints.
    pub portal: PortalConfig,
    /// Approving a sign-in on a registered phone (issue 20).
    pub push: crate::push::PushConfig,
    /// The administrator's console in mfa-portal (issue 22): who may use it, and where.
    pub admin: AdminConfig,
    /// Active Directory or LDAP: names, groups, the RADIUS password check (docs/DIRECTORY.md).
    pub directory: Option<crate::directory::DirectoryConfig>,
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
            users: UsersConfig::default(),
            remote: None,
            portal: PortalConfig::default(),
            push: crate::push::PushConfig::default(),
            admin: AdminConfig::default(),
            directory: None,
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
    /// The 32-byte key that encrypts the TOTP seeds in the store (made by `mfactl init`).
    /// Relative paths are taken from the config file's directory, like `path`. Absent: next
    /// to the store, the store's file name with the extension `.key`
    /// (`/var/lib/mfa/mfa.db` -> `/var/lib/mfa/mfa.key`); see [`StoreConfig::key_path`].
    pub key_file: Option<PathBuf>,
}

impl StoreConfig {
    /// The key file in use: `key_file`, or the default next to the store.
    pub fn key_path(&self) -> PathBuf {
        match &self.key_file {
            Some(p) => p.clone(),
            None => {
                let derived = self.path.with_extension("key");
                if derived == self.path {
                    let mut p = self.path.clone().into_os_string();
                    p.push(".key");
                    PathBuf::from(p)
                } else {
                    derived
                }
            }
        }
    }
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
            key_file: None,
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
    /// Go-live: a date, `"never"` (not scheduled), or absent: enforced from now.
    pub enforce_from: GoLive,
    /// Days a not-yet-enrolled user may still log in, counted per user from when the user first
    /// met the requirement (at or after go-live).
    pub grace_days: u32,
    pub self_enroll: SelfEnroll,
    pub exempt_users: Vec<String>,
    pub exempt_groups: Vec<String>,
    /// Remembered networks: how long an address a user unlocked on the portal (with a code)
    /// lets that user's code-less logins from it in. `"0s"` (the default) turns it off.
    pub remember: Span,
    /// Which logins an unlock lets in without a code: by default only RADIUS clients in
    /// code-only mode, the gateways that cannot ask for one. Never a login it does not name.
    pub remember_for: Vec<RememberFor>,
    /// Rules per service, group and network (`[[policy.rules]]`), tried in order before
    /// anything else of the policy; the first that matches decides its action. None: the
    /// policy is what it was before rules existed.
    pub rules: Vec<PolicyRule>,
}

impl PolicyConfig {
    /// Whether a decision needs the user's groups: `exempt_groups` or a rule matching on
    /// groups. Where not, no group is looked up (NSS or a directory may be slow).
    pub fn uses_groups(&self) -> bool {
        !self.exempt_groups.is_empty() || self.rules.iter().any(|r| !r.groups.is_empty())
    }
}

/// What a matching rule does with a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// A code, even where a trusted network, a local login, an exemption or (unless the
    /// rule says `remembered = true`) a portal unlock would let the login in without one.
    Code,
    /// No code: let in as a trusted network would.
    #[serde(rename = "none")]
    NoCode,
    /// Refused, whatever else holds.
    Deny,
    /// As `code`, but only an approved push settles it: a typed code is refused.
    Push,
}

impl RuleAction {
    /// The word written in `mfa.toml`.
    pub fn word(self) -> &'static str {
        match self {
            RuleAction::Code => "code",
            RuleAction::NoCode => "none",
            RuleAction::Deny => "deny",
            RuleAction::Push => "push",
        }
    }
}

/// One `[[policy.rules]]` entry. Every match key it sets must match (a list matches where
/// any of its entries does); keys it leaves out match anything. A rule that sets none must
/// say `match_all = true`, so a rule for everyone is never an accident.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// Shown in `mfactl auth` and the audit trail's detail beside the rule's index.
    #[serde(default)]
    pub name: Option<String>,
    /// PAM services (`sshd`, `sudo`, `login`), on this host or a PAM host in remote mode;
    /// also the name a tool asks as (`mfa-portal`, `mfactl auth --service NAME`).
    #[serde(default)]
    pub services: Vec<String>,
    /// `[[radius.clients]]` entry names (a gateway, or every login of a PAM hosts entry).
    #[serde(default)]
    pub radius_clients: Vec<String>,
    /// The user's groups (what `exempt_groups` reads: NSS).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Client networks (CIDRs, as `trusted_networks`); a login without a client IP address
    /// matches none.
    #[serde(default)]
    pub networks: Vec<Cidr>,
    /// `true`: only logins with no remote host at all (console, `sudo` on the machine).
    #[serde(default)]
    pub local: bool,
    /// `true`: every login (no other match key may be set).
    #[serde(default)]
    pub match_all: bool,
    pub action: RuleAction,
    /// With `action = "code"`: an unlock made on the portal (`remember_for`) still lets the
    /// login in without a code. Off by default: a rule that asks for a code means it.
    #[serde(default)]
    pub remembered: bool,
    /// What an Access-Accept through this rule carries to the gateway (docs/RULES.md,
    /// "Reply attributes"); never on a reject or a challenge.
    #[serde(default)]
    pub reply: Option<crate::reply::ReplyAttributes>,
}

impl PolicyRule {
    /// Whether the rule sets any match key (else it must say `match_all`).
    pub fn has_match(&self) -> bool {
        !(self.services.is_empty()
            && self.radius_clients.is_empty()
            && self.groups.is_empty()
            && self.networks.is_empty()
            && !self.local)
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            trusted_networks: Vec::new(),
            local_logins: LocalLogins::Require,
            enforce_from: GoLive::Now,
            grace_days: 0,
            self_enroll: SelfEnroll::Trusted,
            exempt_users: Vec::new(),
            exempt_groups: Vec::new(),
            remember: Span::secs(0),
            remember_for: vec![RememberFor::CodeOnly],
            rules: Vec::new(),
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
    /// A bind to `[directory]` as the user (append and challenge modes).
    Ldap,
}

/// What a RADIUS client is, which decides what its requests mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// A gateway (VPN, remote desktop, NAS) speaking for its users in its `mode`.
    #[default]
    Gateway,
    /// Linux hosts running pam_mfa in remote mode (`[remote]`): challenge mode with no first
    /// factor here (the host's own stack checked it), each login named by the host and PAM
    /// service it sends, and each name vouched for by the host's own NSS
    /// (`mfa_radius_proto::pam_host`).
    PamHosts,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Gateway => "gateway",
            ClientKind::PamHosts => "pam-hosts",
        }
    }
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
    /// Where Accounting-Requests (RFC 2866) are answered, from the same clients. Absent:
    /// each `listen` address with the port after its own (1812 gives 1813, as RADIUS pairs
    /// them); `[]`: accounting is not answered. See [`RadiusConfig::accounting_addresses`].
    pub accounting_listen: Option<Vec<SocketAddr>>,
    pub mode: RadiusMode,
    pub first_factor: FirstFactor,
    pub pam_service: String,
    pub client_ip_attribute: ClientIpAttribute,
    pub require_message_authenticator: bool,
    pub challenge_timeout: Span,
    /// Access-Challenges waiting for their code, all clients together. One client entry may
    /// hold three quarters of them, and one user four per host, however the host names
    /// itself: a flood from one client cannot turn another's challenges into rejects.
    pub max_pending_challenges: usize,
    /// Append mode: the string between password and code. Absent: the code is the last
    /// `totp.digits` characters.
    pub append_delimiter: Option<String>,
    /// Most PAM first-factor checks running at once; more wait their turn.
    pub pam_workers: usize,
    /// Also log decisions to syslog (auth facility).
    pub syslog: bool,
    /// Prometheus metrics (`GET /metrics`) on this loopback address; absent: off.
    pub metrics_listen: Option<SocketAddr>,
    /// RadSec (RFC 6614): RADIUS over TLS, on when the `[radius.radsec]` table is present.
    pub radsec: Option<RadsecConfig>,
    pub clients: Vec<RadiusClient>,
}

/// `[radius] max_pending_challenges` when not set.
pub const DEFAULT_MAX_PENDING_CHALLENGES: usize = 65_536;

impl Default for RadiusConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 1812))],
            accounting_listen: None,
            mode: RadiusMode::Challenge,
            first_factor: FirstFactor::Pam,
            pam_service: "mfa-radius".into(),
            client_ip_attribute: ClientIpAttribute::CallingStationId,
            require_message_authenticator: true,
            challenge_timeout: Span::secs(60),
            max_pending_challenges: DEFAULT_MAX_PENDING_CHALLENGES,
            append_delimiter: None,
            pam_workers: 16,
            syslog: false,
            metrics_listen: None,
            radsec: None,
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
    /// One secret per host instead of one for the whole `address`: a directory holding a
    /// file per host, named by its IP address (`10.0.5.7`, `2001:db8::7`) and holding its
    /// secret (first line). A host's secret is good from its own address only, so root on
    /// one host cannot speak for the others; an address in `address` without a file is not
    /// a client. Instead of `secret`/`secret_file`; relative paths are taken from the
    /// config file's directory.
    pub secrets_dir: Option<PathBuf>,
    /// RadSec: the client's certificate must be valid for this DNS name or IP address
    /// (subjectAltName, as a TLS server name is checked). Such a client is a RadSec client
    /// only; it is never matched over UDP.
    pub certificate_name: Option<String>,
    /// RadSec: the SHA-256 fingerprint of the client's certificate (64 hex digits, colons
    /// allowed, as `openssl x509 -noout -fingerprint -sha256` prints it).
    pub certificate_sha256: Option<String>,
    /// What the client is; absent: a gateway, or PAM hosts where the entry itself says
    /// `first_factor = "none"` in challenge mode (the form from before this key, accepted
    /// with a warning naming it, see [`RadiusConfig::legacy_pam_hosts`]).
    pub kind: Option<ClientKind>,
    /// Per-client overrides of the `[radius]` keys of the same name; absent: `[radius]`'s.
    pub mode: Option<RadiusMode>,
    pub first_factor: Option<FirstFactor>,
    pub client_ip_attribute: Option<ClientIpAttribute>,
    pub require_message_authenticator: Option<bool>,
    /// Push approval for this client's logins (`off`, `on`, `only`); absent: `on` where
    /// `[push] enabled`. See [`Config::push_for_client`].
    pub push: Option<crate::push::PushMode>,
    /// Number matching for this client's pushes; absent: `[push] number_matching`.
    pub number_matching: Option<bool>,
    /// The gateway product (`crate::preset`): its `mode` and `client_ip_attribute` where
    /// this entry sets none, and its timeout facts for `config check`.
    pub preset: Option<crate::preset::Preset>,
    /// How long the gateway waits for one answer, as set on the gateway; absent: the
    /// preset's vendor default. Only `config check` reads it.
    pub gateway_timeout: Option<Span>,
}

/// What one RADIUS client gets: its kind, its own `mode`, `first_factor`,
/// `client_ip_attribute` and `require_message_authenticator` where it sets them, `[radius]`'s
/// otherwise; PAM hosts are always in challenge mode with no first factor here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    pub kind: ClientKind,
    pub mode: RadiusMode,
    pub first_factor: FirstFactor,
    pub client_ip_attribute: ClientIpAttribute,
    pub require_message_authenticator: bool,
}

/// Where the daemon answers accounting, and whether the administrator said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingAddresses {
    pub addresses: Vec<SocketAddr>,
    /// `accounting_listen` was set: an address that cannot be bound stops the start, as a
    /// `listen` one does. Derived from `listen`, it is a warning, so that a host where
    /// something else holds the next port keeps its authentication.
    pub explicit: bool,
}

impl RadiusConfig {
    /// Where Accounting-Requests are answered: `accounting_listen` where set, else each
    /// `listen` address with the port after its own (none after port 65535: validation
    /// refuses that).
    pub fn accounting_addresses(&self) -> AccountingAddresses {
        match &self.accounting_listen {
            Some(a) => AccountingAddresses {
                addresses: a.clone(),
                explicit: true,
            },
            None => AccountingAddresses {
                addresses: self
                    .listen
                    .iter()
                    .filter_map(|l| {
                        let port = l.port().checked_add(1)?;
                        Some(SocketAddr::new(l.ip(), port))
                    })
                    .collect(),
                explicit: false,
            },
        }
    }

    /// The effective settings of client `c`.
    pub fn settings_for(&self, c: &RadiusClient) -> ClientSettings {
        let kind = self.kind_of(c);
        let pam_hosts = kind == ClientKind::PamHosts;
        ClientSettings {
            kind,
            mode: if pam_hosts {
                RadiusMode::Challenge
            } else {
                c.mode
                    .or(c.preset.map(|p| p.facts().mode))
                    .unwrap_or(self.mode)
            },
            first_factor: if pam_hosts {
                FirstFactor::None
            } else {
                c.first_factor.unwrap_or(self.first_factor)
            },
            client_ip_attribute: c
                .client_ip_attribute
                .or(c.preset.map(|p| p.facts().client_ip_attribute))
                .unwrap_or(self.client_ip_attribute),
            require_message_authenticator: c
                .require_message_authenticator
                .unwrap_or(self.require_message_authenticator),
        }
    }

    /// What client `c` is: its `kind`, else PAM hosts where it has the form from before that
    /// key ([`RadiusConfig::legacy_pam_hosts`]), else a gateway.
    pub fn kind_of(&self, c: &RadiusClient) -> ClientKind {
        match c.kind {
            Some(k) => k,
            None if self.legacy_pam_hosts(c) => ClientKind::PamHosts,
            None => ClientKind::Gateway,
        }
    }

    /// Whether `c` says it is PAM hosts the way entries did before `kind`: no `kind`, its
    /// own `first_factor = "none"`, and challenge mode (its own or `[radius]`'s); never an
    /// entry that names a gateway `preset`.
    pub fn legacy_pam_hosts(&self, c: &RadiusClient) -> bool {
        c.kind.is_none()
            && c.preset.is_none()
            && c.first_factor == Some(FirstFactor::None)
            && c.mode.unwrap_or(self.mode) == RadiusMode::Challenge
    }
}

/// `[portal]`: the self-service web page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// Where `mfa-portal` listens; loopback by default (a reverse proxy in front, or TLS).
    pub listen: SocketAddr,
    /// The address users open, as the links of `mfactl invite` start:
    /// `https://mfa.example.com` (a path prefix is allowed).
    pub public_url: Option<String>,
    /// TLS certificate chain (PEM, leaf first) and private key (PEM); both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Reverse proxies whose `X-Forwarded-For` is believed; from anyone else it is ignored.
    pub trusted_proxies: Vec<Cidr>,
    /// How long an invite link stays valid unless `mfactl invite --valid` says otherwise.
    pub invite_valid: Span,
    /// The PAM service that checks the password at "My account" sign-in.
    pub pam_service: String,
    /// Sessions (and a shown, not yet confirmed key) end after this long without a request.
    pub session_idle: Span,
    /// Sessions end this long after they began (a sign-in), however busy.
    pub session_lifetime: Span,
    /// A client sends a request's head (and a form's body) within this long: from the
    /// connection's start and after each answer, so it also closes idle connections.
    pub header_timeout: Span,
    /// Connections open at once; more are closed at once.
    pub max_connections: usize,
    /// Connections open at once from one client address (an IPv6 /64); trusted proxies are
    /// exempt.
    pub connections_per_address: usize,
    /// Prometheus metrics (`GET /metrics`) on this loopback address; off when absent.
    pub metrics_listen: Option<SocketAddr>,
    /// The organisation's name, at the top of every page beside its logo: users should see
    /// whose page asks for their password and code.
    pub organisation: Option<String>,
    /// The organisation's logo (PNG, JPEG, GIF, WebP or SVG, at most [`crate::LOGO_MAX_BYTES`]),
    /// served by the portal itself at `/logo`; checked by [`crate::read_logo`].
    pub logo: Option<PathBuf>,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            tls_cert: None,
            tls_key: None,
            trusted_proxies: Vec::new(),
            invite_valid: Span::secs(14 * 86_400),
            pam_service: "mfa-portal".into(),
            session_idle: Span::secs(600),
            session_lifetime: Span::secs(8 * 3600),
            header_timeout: Span::secs(10),
            max_connections: 1024,
            connections_per_address: 64,
            metrics_listen: None,
            organisation: None,
            logo: None,
        }
    }
}

impl PortalConfig {
    /// `public_url` without a trailing slash, or `None` where it is not set.
    pub fn base_url(&self) -> Option<&str> {
        self.public_url.as_deref().map(|u| u.trim_end_matches('/'))
    }
}

/// `[admin]`: the administrator's console in mfa-portal. Off while no group is named.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The system groups (NSS) whose members may sign in to the console, per role.
    pub groups: AdminGroups,
    /// The console on an address of its own (and then not on `[portal] listen`): keeps it
    /// off the user-facing listener. Absent: the console is served under `/admin` of the
    /// portal's own listener.
    pub listen: Option<SocketAddr>,
}

impl AdminConfig {
    /// Whether the console is served at all: some group is named.
    pub fn enabled(&self) -> bool {
        !self.groups.helpdesk.is_empty() || !self.groups.admin.is_empty()
    }
}

/// `[admin] groups`: the role each group's members get; a member of both gets `admin`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminGroups {
    /// Look up users, unlink, link, temporary access, invites, unlock, remembered networks.
    pub helpdesk: Vec<String>,
    /// All of the help desk's, and the go-live, trusted networks and exemptions.
    pub admin: Vec<String>,
}

/// `[remote]` in a host's mfa.toml: PAM remote mode. The module opens no store and holds no
/// TOTP secret; it asks these mfa-radiusd servers, in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// `IP:port` (`[IPv6]:port`), or an IP alone for port 1812. No host names: a DNS lookup
    /// at login could hang past every timeout.
    #[serde(deserialize_with = "remote_servers")]
    pub servers: Vec<SocketAddr>,
    /// The shared secret of this host's `[[radius.clients]]` entry on the servers (first
    /// line). Relative paths are taken from the config file's directory.
    pub secret_file: PathBuf,
    /// The local address requests are sent from; absent: the one the kernel picks. Set it on
    /// a host with several addresses where the servers keep one secret per host
    /// (`secrets_dir`): a host's secret is accepted from the address its file is named by.
    pub source: Option<std::net::IpAddr>,
    /// How long one server gets to answer (all its sends together) before the next is tried.
    #[serde(default = "remote_timeout")]
    pub timeout: Span,
    /// Resends to one server within its `timeout` (the same packet, so the server's
    /// duplicate cache answers a resend rather than evaluating it again).
    #[serde(default = "remote_retries")]
    pub retries: u32,
    /// What the host does while no server answers (issue 24): `"deny"` (PAM_AUTHINFO_UNAVAIL)
    /// unless the operator opts in to `"trusted"`, where the host's own `[policy]` trusted
    /// networks and exemptions still let in without a code, and nothing else does.
    #[serde(default)]
    pub offline: RemoteOffline,
    /// Where each login let in while no server answered is queued (root's, 0600) until a
    /// server answers again. Relative paths are taken from the config file's directory.
    #[serde(default = "remote_offline_queue")]
    pub offline_queue: PathBuf,
    /// This host's break-glass codes (`mfactl breakglass issue HOST`), hashed: each lets in
    /// once, only while no server answers. Absent: none. Relative paths are taken from the
    /// config file's directory.
    pub breakglass_file: Option<PathBuf>,
}

/// `[remote] offline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RemoteOffline {
    /// No server, no decision: PAM_AUTHINFO_UNAVAIL.
    #[default]
    Deny,
    /// No server: the host's own trusted networks and exempt users and groups, decided by the
    /// core's policy; never a code.
    Trusted,
}

fn remote_offline_queue() -> PathBuf {
    PathBuf::from("/var/lib/mfa/offline-queue")
}

pub const DEFAULT_RADIUS_PORT: u16 = 1812;

fn remote_timeout() -> Span {
    Span::secs(3)
}

fn remote_retries() -> u32 {
    1
}

/// One `[remote] servers` entry.
pub fn parse_remote_server(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t)
        .parse::<std::net::IpAddr>()
    {
        return Ok(SocketAddr::new(ip, DEFAULT_RADIUS_PORT));
    }
    Err(format!(
        "{s:?} is not an IP address with an optional port, like \"10.0.0.5:1812\" or \"[2001:db8::5]:1812\" (host names are not resolved: a DNS lookup at login could hang past the timeout)"
    ))
}

fn remote_servers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| parse_remote_server(s).map_err(serde::de::Error::custom))
        .collect()
}

impl RadiusClient {
    /// A RadSec client: identified by its certificate (and address), over TLS only.
    pub fn is_radsec(&self) -> bool {
        self.certificate_name.is_some() || self.certificate_sha256.is_some()
    }

    /// The certificate fingerprint as 32 bytes, `None` when absent or malformed (validation
    /// reports a malformed one).
    pub fn certificate_sha256_bytes(&self) -> Option<[u8; 32]> {
        parse_sha256(self.certificate_sha256.as_deref()?)
    }
}

/// 64 hex digits, with or without colons between the bytes.
pub(crate) fn parse_sha256(s: &str) -> Option<[u8; 32]> {
    let hex: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |b: u8| (b as char).to_digit(16);
        *o = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// `[radius.radsec]`: the RadSec listener (RFC 6614, RADIUS over TLS with mutual
/// certificate authentication).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RadsecConfig {
    pub listen: Vec<SocketAddr>,
    /// The daemon's certificate chain (PEM), leaf first.
    pub certificate: Option<PathBuf>,
    /// The daemon's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// The CA certificate(s) (PEM) that client certificates must chain to.
    pub ca_file: Option<PathBuf>,
    /// Certificate revocation lists (PEM) checked on client certificates.
    pub crl_file: Option<PathBuf>,
    /// A connection that sends no complete request for this long is closed.
    pub idle_timeout: Span,
    /// A TLS handshake not finished within this long (or `idle_timeout`, if shorter) is
    /// closed: before it ends nobody is authenticated.
    pub handshake_timeout: Span,
    /// Verified connections (handshake done, client identified) open at once; a handshake
    /// that finishes past this is closed. Connections still in their handshake do not count
    /// here, so half-open sockets cannot take a verified gateway's place.
    pub max_connections: usize,
    /// Connections still in their TLS handshake, all addresses together; past this, a new
    /// connection closes the oldest handshake (a gateway's handshake takes milliseconds, a
    /// stalled one holds nothing for long).
    pub max_handshakes: usize,
    /// Connections still in their TLS handshake from one source address (IPv6: one /64);
    /// more from there are closed at once.
    pub max_handshakes_per_address: usize,
}

impl Default for RadsecConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 2083))],
            certificate: None,
            key: None,
            ca_file: None,
            crl_file: None,
            idle_timeout: Span::secs(120),
            handshake_timeout: Span::secs(5),
            max_connections: 256,
            max_handshakes: 128,
            max_handshakes_per_address: 8,
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NameCase {
    /// `Alice` and `alice` are one user (Unicode lowercase), as a directory sees them.
    #[default]
    Fold,
    /// Names are compared as typed.
    Exact,
}

/// `[users] unicode`: whether a user name may go beyond ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UnicodeNames {
    /// A name is ASCII letters, digits, `.`, `_`, `-` and `$`: no second spelling of a name
    /// (fullwidth, circled, accented, another script's look-alike letter) can be a second
    /// record.
    #[default]
    Refuse,
    /// For a directory whose account names really are not ASCII: such a name must be in
    /// NFKC as typed and must not look like another user's (`mfa_model::lookalike_key`).
    Allow,
}

/// `[users]`: how every front end turns the name it was given into the user's one name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsersConfig {
    pub case: NameCase,
    /// `DOMAIN\user` and `user@domain` for these domains mean `user`; a name in any other
    /// domain is refused.
    pub domains: Vec<String>,
    pub unicode: UnicodeNames,
}

impl UsersConfig {
    /// The rules in the model's terms (`mfa_model::UserName::canonical`).
    pub fn rules(&self) -> mfa_model::NameRules<'_> {
        mfa_model::NameRules {
            fold_case: self.case == NameCase::Fold,
            domains: &self.domains,
            unicode: self.unicode == UnicodeNames::Allow,
        }
    }
}
