//! The `mfa.toml` configuration shared by the PAM module, the RADIUS daemon and `mfactl`.
//!
//! Every error names the file, the line and the key, because the person reading it is an
//! administrator with an editor open, not a developer with a debugger.
#![forbid(unsafe_code)]

mod edit;
mod error;
pub mod files;
mod lenient;
mod locate;
mod schema;
mod values;

use std::path::{Path, PathBuf};

pub use edit::{GoLiveEdit, TrustedEdit, edit_enforce_from, edit_trusted_networks};
pub use error::{ConfigError, Problem};
pub use locate::{Seg, line_of_path};
pub use schema::*;
pub use values::{
    Cidr, GoLive, Instant, RememberFor, SecretString, Span, civil_from_days, days_from_civil,
    format_utc,
};

use locate::path_string;

/// Largest config file we read; anything bigger is a mistake (or an attack on a setuid path).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

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
    for f in [&mut cfg.portal.tls_cert, &mut cfg.portal.tls_key]
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

fn k(s: &str) -> Seg {
    Seg::Key(s.into())
}

/// Checks what the types alone cannot. Returns every problem, not just the first.
fn validate(cfg: &Config, text: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut bad = |path: Vec<Seg>, message: String| {
        out.push(Problem {
            file: cfg.source.clone(),
            line: line_of_path(text, &path),
            key: Some(path_string(&path)),
            message,
        });
    };

    if let Some(url) = &cfg.store.url
        && let Err(e) = check_store_url(url)
    {
        bad(vec![k("store"), k("url")], e);
    }
    let st = &cfg.store;
    if st.url.is_none() {
        for (key, set) in [
            ("password_file", st.password_file.is_some()),
            ("ca_file", st.ca_file.is_some()),
        ] {
            if set {
                bad(
                    vec![k("store"), k(key)],
                    "only used with store.url (PostgreSQL); remove it or set url".into(),
                );
            }
        }
    } else if st.sslmode == SslMode::VerifyFull && st.ca_file.is_none() {
        bad(
            vec![k("store"), k("sslmode")],
            "verify-full (the default) needs ca_file, the CA that issued the database server's certificate; or set sslmode = \"disable\" for a server on this host".into(),
        );
    } else if st.sslmode == SslMode::Disable && st.ca_file.is_some() {
        bad(
            vec![k("store"), k("ca_file")],
            "sslmode = \"disable\" uses no TLS, so no CA; remove ca_file or choose require or verify-full".into(),
        );
    }
    if cfg.store.path.as_os_str().is_empty() {
        bad(vec![k("store"), k("path")], "must not be empty".into());
    }
    if cfg.store.url.is_some() && cfg.store.key_file.is_none() {
        bad(
            vec![k("store"), k("key_file")],
            "required with store.url (PostgreSQL): the seeds are sealed under one key, so every node names the same key file (copy it from the node that made it, 0600 root); there is no default beside the store".into(),
        );
    }
    if let Some(key) = &cfg.store.key_file {
        if key.as_os_str().is_empty() || key.to_string_lossy().ends_with('/') {
            bad(
                vec![k("store"), k("key_file")],
                "must name a file (the key that encrypts the seeds)".into(),
            );
        } else if *key == cfg.store.path {
            bad(
                vec![k("store"), k("key_file")],
                "must not be the store itself".into(),
            );
        }
    }

    let t = &cfg.totp;
    if t.issuer.trim().is_empty() || t.issuer.contains(':') || t.issuer.len() > 64 {
        bad(
            vec![k("totp"), k("issuer")],
            "must be 1 to 64 characters without ':' (apps show it as \"Issuer: user\")".into(),
        );
    }
    if !mfa_model::DIGITS.contains(&t.digits) {
        bad(
            vec![k("totp"), k("digits")],
            format!("{} is not 6, 7 or 8", t.digits),
        );
    }
    if !mfa_model::PERIODS.contains(&t.period) {
        bad(
            vec![k("totp"), k("period")],
            format!(
                "{} is outside 10..300 seconds (authenticator apps use 30)",
                t.period
            ),
        );
    }
    if t.skew > 10 {
        bad(
            vec![k("totp"), k("skew")],
            format!("{} steps either side is too many (at most 10)", t.skew),
        );
    }

    let mut seen = std::collections::HashSet::new();
    for (i, d) in cfg.users.domains.iter().enumerate() {
        let at = vec![k("users"), k("domains"), Seg::Index(i)];
        if d.is_empty()
            || d.len() > 255
            || !d.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c))
        {
            bad(
                at,
                format!(
                    "{d:?} is not a domain name (letters, digits, '-', '_' and '.', as in CONTOSO or contoso.com)"
                ),
            );
        } else if !seen.insert(d.to_lowercase()) {
            bad(
                at,
                format!("{d:?} is listed twice (domains match case-insensitively)"),
            );
        }
    }

    let p = &cfg.policy;
    // Compared with the canonical name of the user logging in, so each entry must have one:
    // `CONTOSO\\svc` (CONTOSO listed) means `svc`; `OTHER\\svc` names nobody.
    let rules = cfg.users.rules();
    for (i, u) in p.exempt_users.iter().enumerate() {
        if let Err(e) = mfa_model::UserName::canonical(u, &rules) {
            bad(
                vec![k("policy"), k("exempt_users"), Seg::Index(i)],
                format!("{u:?} is not a valid user name: {e}"),
            );
        }
    }
    for (i, g) in p.exempt_groups.iter().enumerate() {
        if !valid_name(g) {
            bad(
                vec![k("policy"), k("exempt_groups"), Seg::Index(i)],
                format!("{g:?} is not a valid group name"),
            );
        }
    }
    // A trusted range lets its clients in without a code. One (or several together) holding
    // half an address family or more is no trusted network but MFA turned off for nearly
    // everyone, which has its own, visible settings. Refused here, so every loader (mfactl
    // trusted add, config check, both daemons, the PAM module) refuses it. IPv4-mapped
    // IPv6 ranges are measured as the IPv4 they map.
    let mut too_wide = false;
    for (i, n) in p.trusted_networks.iter().enumerate() {
        if let Some(why) = wide_trust(
            &format!("{n} holds"),
            values::coverage(std::slice::from_ref(n)),
        ) {
            too_wide = true;
            bad(vec![k("policy"), k("trusted_networks"), Seg::Index(i)], why);
        }
    }
    if !too_wide
        && let Some(why) = wide_trust(
            "together, these ranges hold",
            values::coverage(&p.trusted_networks),
        )
    {
        bad(vec![k("policy"), k("trusted_networks")], why);
    }
    for (i, e) in p.remember_for.iter().enumerate() {
        if p.remember_for[..i].contains(e) {
            bad(
                vec![k("policy"), k("remember_for"), Seg::Index(i)],
                format!("\"{e}\" is listed twice"),
            );
        }
    }
    if p.grace_days > 3650 {
        bad(
            vec![k("policy"), k("grace_days")],
            "more than 3650 days".into(),
        );
    }

    let l = &cfg.lockout;
    if l.max_failures == 0 {
        bad(
            vec![k("lockout"), k("max_failures")],
            "must be at least 1".into(),
        );
    }
    if l.window.as_secs() == 0 {
        bad(
            vec![k("lockout"), k("window")],
            "must be longer than 0s".into(),
        );
    }
    if l.lock_for.as_secs() == 0 {
        bad(
            vec![k("lockout"), k("lock_for")],
            "must be longer than 0s".into(),
        );
    }
    if l.max_failures_per_source >= l.max_failures && l.max_failures_per_source != 0 {
        bad(
            vec![k("lockout"), k("max_failures_per_source")],
            format!(
                "{} would lock the user (max_failures = {}) before the address; use a smaller number, or 0 to turn it off",
                l.max_failures_per_source, l.max_failures
            ),
        );
    }

    let r = &cfg.radius;
    if r.first_factor == FirstFactor::None && r.mode != RadiusMode::CodeOnly {
        bad(
            vec![k("radius"), k("first_factor")],
            "\"none\" is only allowed with mode = \"code-only\": otherwise a grace period would let any user name in with no secret at all (PAM hosts in remote mode set first_factor = \"none\" on their own [[radius.clients]] entry, with mode = \"challenge\")".into(),
        );
    }
    if r.pam_service.is_empty()
        || !r
            .pam_service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bad(
            vec![k("radius"), k("pam_service")],
            format!("{:?} is not a valid PAM service name", r.pam_service),
        );
    }
    if r.challenge_timeout.as_secs() == 0 || r.challenge_timeout.as_secs() > 600 {
        bad(
            vec![k("radius"), k("challenge_timeout")],
            "must be between 1s and 10m".into(),
        );
    }
    if let Some(d) = &r.append_delimiter
        && (d.is_empty() || d.chars().any(|c| c.is_ascii_digit()))
    {
        bad(
            vec![k("radius"), k("append_delimiter")],
            "must be non-empty and contain no digits".into(),
        );
    }
    if !(16..=1 << 20).contains(&r.max_pending_challenges) {
        bad(
            vec![k("radius"), k("max_pending_challenges")],
            "must be between 16 and 1048576".into(),
        );
    }
    if r.pam_workers == 0 || r.pam_workers > 1024 {
        bad(
            vec![k("radius"), k("pam_workers")],
            "must be between 1 and 1024".into(),
        );
    }
    if let Some(m) = r.metrics_listen
        && !m.ip().is_loopback()
    {
        bad(
            vec![k("radius"), k("metrics_listen")],
            format!(
                "{m} is not a loopback address: the metrics name the RADIUS clients and count every decision, so they are served on 127.0.0.1 or [::1] only (scrape through a local agent or proxy)"
            ),
        );
    }
    let mut names = std::collections::HashSet::new();
    for (i, c) in r.clients.iter().enumerate() {
        let at = |key: &str| vec![k("radius"), k("clients"), Seg::Index(i), k(key)];
        if c.name.trim().is_empty() || c.name.len() > 64 {
            bad(at("name"), "must be 1 to 64 characters".into());
        } else if !names.insert(c.name.as_str()) {
            bad(
                at("name"),
                format!("client name {:?} is used twice", c.name),
            );
        }
        match (&c.secret, &c.secret_file) {
            (Some(_), Some(_)) => bad(
                at("secret"),
                "give either secret or secret_file, not both".into(),
            ),
            // Per-host secrets, checked below.
            (None, None) if c.secrets_dir.is_some() => {}
            // RFC 6614 §2.3: over TLS the shared secret is "radsec" unless both sides agree
            // on another.
            (None, None) if c.is_radsec() => {}
            (None, None) => bad(
                at("secret"),
                "a shared secret is required (secret, secret_file or secrets_dir)".into(),
            ),
            (Some(s), None) if s.0.is_empty() => bad(at("secret"), "must not be empty".into()),
            _ => {}
        }
        if let Some(d) = &c.secrets_dir {
            if c.secret.is_some() || c.secret_file.is_some() {
                bad(
                    at("secrets_dir"),
                    "give secrets_dir (one secret per host) or secret/secret_file (one for every host in address), not both: a shared secret beside it would be good from every address again".into(),
                );
            }
            if c.is_radsec() {
                bad(
                    at("secrets_dir"),
                    "a RadSec client is identified by its certificate; secrets_dir is for UDP clients".into(),
                );
            }
            if d.as_os_str().is_empty() {
                bad(at("secrets_dir"), "must not be empty".into());
            }
        }
        if let Some(n) = &c.certificate_name
            && rustls_pki_types::ServerName::try_from(n.as_str()).is_err()
        {
            bad(
                at("certificate_name"),
                format!("{n:?} is not a DNS name or an IP address"),
            );
        }
        if let Some(f) = &c.certificate_sha256
            && parse_sha256(f).is_none()
        {
            bad(
                at("certificate_sha256"),
                "must be 64 hex digits (colons allowed), the SHA-256 fingerprint of the client's certificate".into(),
            );
        }
        if c.is_radsec() && r.radsec.is_none() {
            let key = if c.certificate_name.is_some() {
                "certificate_name"
            } else {
                "certificate_sha256"
            };
            bad(
                at(key),
                "a RadSec client, but there is no [radius.radsec] listener: it could never connect"
                    .into(),
            );
        }
        // first_factor = "none" outside code-only mode only where this client says so itself,
        // in challenge mode: a PAM host in remote mode, whose own password module ran first.
        // (A client that sets neither inherits [radius]'s pair, checked above.)
        let eff = r.settings_for(c);
        if eff.first_factor == FirstFactor::None && (c.mode.is_some() || c.first_factor.is_some()) {
            match (eff.mode, c.first_factor) {
                (RadiusMode::CodeOnly, _) | (RadiusMode::Challenge, Some(FirstFactor::None)) => {}
                (RadiusMode::Challenge, _) => bad(
                    at("mode"),
                    "mode = \"challenge\" with first_factor \"none\" inherited from [radius]: set first_factor on this client (\"pam\", or \"none\" for a PAM host in remote mode)".into(),
                ),
                (RadiusMode::Append, _) => bad(
                    at(if c.first_factor.is_some() { "first_factor" } else { "mode" }),
                    "first_factor = \"none\" is not allowed with mode = \"append\": the password part would be checked by nobody".into(),
                ),
            }
        }
    }
    if let Some(t) = &r.radsec {
        let at = |key: &str| vec![k("radius"), k("radsec"), k(key)];
        for (key, v) in [
            ("certificate", &t.certificate),
            ("key", &t.key),
            ("ca_file", &t.ca_file),
        ] {
            if v.is_none() {
                bad(at(key), format!("required: {}", radsec_file_help(key)));
            }
        }
        if t.listen.is_empty() {
            bad(
                at("listen"),
                "must list at least one address (e.g. \"0.0.0.0:2083\")".into(),
            );
        }
        if t.idle_timeout.as_secs() == 0 || t.idle_timeout.as_secs() > 86_400 {
            bad(at("idle_timeout"), "must be between 1s and 1d".into());
        }
        if t.max_connections == 0 || t.max_connections > 65_536 {
            bad(at("max_connections"), "must be between 1 and 65536".into());
        }
        if t.handshake_timeout.as_secs() == 0 || t.handshake_timeout.as_secs() > 60 {
            bad(at("handshake_timeout"), "must be between 1s and 60s".into());
        }
        if t.max_handshakes == 0 || t.max_handshakes > 65_536 {
            bad(at("max_handshakes"), "must be between 1 and 65536".into());
        }
        if t.max_handshakes_per_address == 0 || t.max_handshakes_per_address > t.max_handshakes {
            bad(
                at("max_handshakes_per_address"),
                format!(
                    "must be between 1 and max_handshakes ({})",
                    t.max_handshakes
                ),
            );
        }
        if !r.clients.iter().any(RadiusClient::is_radsec) {
            bad(
                vec![k("radius"), k("radsec")],
                "no [[radius.clients]] entry has certificate_name or certificate_sha256: every RadSec connection would be refused".into(),
            );
        }
    }

    if cfg.policy.remember.as_secs() > 31 * 86_400 {
        bad(
            vec![k("policy"), k("remember")],
            format!(
                "{} is too long (at most 31d): an unlocked address skips the code all that time",
                cfg.policy.remember
            ),
        );
    }
    let p = &cfg.portal;
    let at = |key: &str| vec![k("portal"), k(key)];
    if let Some(u) = &p.public_url {
        let rest = u
            .strip_prefix("https://")
            .or_else(|| u.strip_prefix("http://"));
        match rest {
            Some(r)
                if !r.is_empty()
                    && !r.starts_with('/')
                    && !r.contains(['?', '#', ' ', '"', '<', '>', '\\'])
                    && r.chars().all(|c| c.is_ascii_graphic()) => {}
            _ => bad(
                at("public_url"),
                format!(
                    "{u:?} is not an http:// or https:// address without query or fragment, like \"https://mfa.example.com\""
                ),
            ),
        }
    }
    match (&p.tls_cert, &p.tls_key) {
        (Some(_), None) => bad(at("tls_key"), "required with tls_cert".into()),
        (None, Some(_)) => bad(at("tls_cert"), "required with tls_key".into()),
        _ => {}
    }
    if p.invite_valid.as_secs() < 60 || p.invite_valid.as_secs() > 90 * 86_400 {
        bad(at("invite_valid"), "must be between 1m and 90d".into());
    }
    if p.session_idle.as_secs() < 1 || p.session_idle.as_secs() > 3600 {
        bad(at("session_idle"), "must be between 1s and 1h".into());
    }
    if p.session_lifetime.as_secs() < 1 || p.session_lifetime.as_secs() > 86_400 {
        bad(at("session_lifetime"), "must be between 1s and 1d".into());
    }
    if p.header_timeout.as_secs() < 1 || p.header_timeout.as_secs() > 300 {
        bad(at("header_timeout"), "must be between 1s and 5m".into());
    }
    for (key, n) in [
        ("max_connections", p.max_connections),
        ("connections_per_address", p.connections_per_address),
    ] {
        if n == 0 || n > 65_536 {
            bad(at(key), "must be between 1 and 65536".into());
        }
    }
    if let Some(m) = p.metrics_listen
        && !m.ip().is_loopback()
    {
        bad(
            at("metrics_listen"),
            format!(
                "{m} is not a loopback address: the portal's metrics count sign-ins and enrolments, so they are served on 127.0.0.1 or [::1] only (scrape through a local agent or proxy)"
            ),
        );
    }
    if p.pam_service.is_empty()
        || !p
            .pam_service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bad(
            at("pam_service"),
            "must be a PAM service name (letters, digits, - _ .)".into(),
        );
    }

    if let Some(rc) = &cfg.remote {
        let at = |key: &str| vec![k("remote"), k(key)];
        if rc.servers.is_empty() {
            bad(at("servers"), "list at least one mfa-radiusd server".into());
        }
        if rc.servers.len() > 8 {
            bad(
                at("servers"),
                format!(
                    "{} servers is too many (at most 8): a login waits for each one that is down",
                    rc.servers.len()
                ),
            );
        }
        for (i, a) in rc.servers.iter().enumerate() {
            if rc.servers[..i].contains(a) {
                bad(
                    vec![k("remote"), k("servers"), Seg::Index(i)],
                    format!("{a} is listed twice"),
                );
            }
        }
        if rc.secret_file.as_os_str().is_empty() {
            bad(at("secret_file"), "must not be empty".into());
        }
        if let Some(src) = rc.source {
            for (i, a) in rc.servers.iter().enumerate() {
                if a.is_ipv6() != src.is_ipv6() {
                    bad(
                        vec![k("remote"), k("servers"), Seg::Index(i)],
                        format!(
                            "{a} cannot be reached from source {src}: give servers of the source's address family"
                        ),
                    );
                }
            }
        }
        if rc.timeout.as_secs() == 0 || rc.timeout.as_secs() > 30 {
            bad(at("timeout"), "must be between 1s and 30s".into());
        }
        if rc.retries > 5 {
            bad(
                at("retries"),
                format!("{} resends per server is too many (at most 5)", rc.retries),
            );
        }
    }
    out
}

/// Why trusted ranges covering `coverage` (see `values::coverage`) are refused, if they
/// hold half an address family or more; `what` says who holds it.
fn wide_trust(what: &str, coverage: [(values::Family, u64); 2]) -> Option<String> {
    let parts: Vec<String> = coverage
        .iter()
        .filter(|(_, share)| *share >= values::HALF)
        .map(|(family, share)| {
            if *share >= 2 * values::HALF {
                format!("every {} address", family.name())
            } else {
                format!("half or more of all {} addresses", family.name())
            }
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "{what} {}: a trusted network lets its clients in without a code, so this would turn \
         MFA off for nearly everyone. List only your own networks (offices, VPN pools); to \
         turn MFA off or put it off, use the settings made for that: enforce_from = \"never\", \
         exempt_users, exempt_groups",
        parts.join(" and ")
    ))
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

/// What each RadSec file is, for the messages.
fn radsec_file_help(key: &str) -> &'static str {
    match key {
        "certificate" => "the daemon's certificate chain (PEM)",
        "key" => "the daemon's private key (PEM)",
        "ca_file" => "the CA certificate(s) (PEM) that client certificates must chain to",
        _ => "certificate revocation lists (PEM)",
    }
}

/// The files of `[radius.radsec]`, read and decoded from PEM (the daemon builds its TLS
/// configuration from these; `config check` reads them the same way).
#[derive(Debug)]
pub struct RadsecFiles {
    pub certificate: Vec<rustls_pki_types::CertificateDer<'static>>,
    pub key: rustls_pki_types::PrivateKeyDer<'static>,
    pub ca: Vec<rustls_pki_types::CertificateDer<'static>>,
    pub crls: Vec<rustls_pki_types::CertificateRevocationListDer<'static>>,
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

/// A group name as the configuration may name it: the model's character rule, Unicode
/// letters included whatever `[users] unicode` says. A group name is not typed by the user
/// logging in: it is compared byte for byte with the groups NSS gives for the (canonical)
/// user, so a look-alike of it adds no record and lets no one in, and a directory's own
/// non-ASCII group names (German AD's `Domänen-Benutzer`) must be writable.
fn valid_name(s: &str) -> bool {
    mfa_model::UserName::check(s).is_ok()
}

/// The RADIUS shared secret over TLS when the client entry sets none (RFC 6614 §2.3).
pub const RADSEC_DEFAULT_SECRET: &str = "radsec";

impl RadiusClient {
    /// The client's shared secret, read from `secret_file` where configured (first line,
    /// trailing newline removed); "radsec" for a RadSec client that sets none. The file must
    /// pass [`files::open_trusted`].
    pub fn load_secret(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        if let Some(s) = &self.secret {
            return Ok(zeroize::Zeroizing::new(s.0.as_bytes().to_vec()));
        }
        if self.secret_file.is_none() && self.is_radsec() {
            return Ok(zeroize::Zeroizing::new(
                RADSEC_DEFAULT_SECRET.as_bytes().to_vec(),
            ));
        }
        let Some(path) = &self.secret_file else {
            return Err(format!("client {:?} has no shared secret", self.name));
        };
        read_secret_file(&format!("client {:?}", self.name), path)
    }
}

/// Most files a `secrets_dir` may hold: more is a mistake, not a fleet.
const MAX_HOST_SECRETS: usize = 65_536;

/// One host of a `secrets_dir`: its address and its secret.
pub type HostSecret = (std::net::IpAddr, zeroize::Zeroizing<Vec<u8>>);

impl RadiusClient {
    /// The per-host secrets of a client with `secrets_dir`: each file in it named by an IP
    /// address inside `address` (IPv4-mapped IPv6 names count as IPv4), read as a
    /// `secret_file` is. Hidden files (editors' swap files) are skipped; any other name, an
    /// address outside `address`, one host named twice, an unsafe file or directory, or a
    /// directory with no host in it is an error naming the client and file.
    pub fn load_host_secrets(&self) -> Result<Vec<HostSecret>, String> {
        let what = format!("client {:?}", self.name);
        let Some(dir) = &self.secrets_dir else {
            return Err(format!("{what} has no secrets_dir"));
        };
        files::check_trusted_file(dir, files::Purpose::SecretsDir)
            .map_err(|e| format!("{what}: secrets_dir {e}"))?;
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("{what}: cannot read secrets_dir {}: {e}", dir.display()))?;
        let mut out: Vec<HostSecret> = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| format!("{what}: cannot read secrets_dir {}: {e}", dir.display()))?;
            let name = entry.file_name();
            let shown = name.to_string_lossy();
            if shown.starts_with('.') {
                continue;
            }
            let ip = name
                .to_str()
                .and_then(|n| n.parse::<std::net::IpAddr>().ok())
                .map(|ip| match ip {
                    std::net::IpAddr::V6(v6) => {
                        v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4)
                    }
                    v4 => v4,
                })
                .ok_or_else(|| {
                    format!(
                        "{what}: secrets_dir {}: {shown:?} is not named by an IP address (one file per host, named like 10.0.5.7 or 2001:db8::7)",
                        dir.display()
                    )
                })?;
            if !self.address.0.contains(&ip) {
                return Err(format!(
                    "{what}: secrets_dir {}: {ip} is not in this client's address {}",
                    dir.display(),
                    self.address.0
                ));
            }
            if out.iter().any(|(seen, _)| *seen == ip) {
                return Err(format!(
                    "{what}: secrets_dir {}: two files name host {ip}",
                    dir.display()
                ));
            }
            if out.len() >= MAX_HOST_SECRETS {
                return Err(format!(
                    "{what}: secrets_dir {} holds more than {MAX_HOST_SECRETS} files",
                    dir.display()
                ));
            }
            let secret = read_secret_file(&format!("{what}, host {ip}"), &entry.path())?;
            out.push((ip, secret));
        }
        if out.is_empty() {
            return Err(format!(
                "{what}: secrets_dir {} holds no host's secret (one file per host, named by its IP address)",
                dir.display()
            ));
        }
        out.sort_by_key(|(ip, _)| *ip);
        Ok(out)
    }
}

/// Largest `secret_file` read; a shared secret is a line, not a document.
const MAX_SECRET_FILE_BYTES: usize = 4096;

/// The first line of a secret file, trailing newline removed; `what` names its owner. The
/// file must pass [`files::open_trusted`] (no one else may write it, nor others read it), and
/// is read from the handle that was checked.
fn read_secret_file(what: &str, path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    use std::io::Read;
    let (mut file, _) = files::open_trusted(path, files::Purpose::SecretFile)
        .map_err(|e| format!("{what}: secret_file {e}"))?;
    // Sized once so that reading never reallocates and leaves an unwiped copy behind.
    let mut raw = zeroize::Zeroizing::new(Vec::with_capacity(MAX_SECRET_FILE_BYTES + 1));
    let mut chunk = zeroize::Zeroizing::new([0u8; 512]);
    loop {
        let n = file
            .read(&mut chunk[..])
            .map_err(|e| format!("{what}: cannot read secret_file {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        if raw.len() + n > MAX_SECRET_FILE_BYTES {
            return Err(format!(
                "{what}: secret_file {} is larger than {MAX_SECRET_FILE_BYTES} bytes",
                path.display()
            ));
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    let line = raw.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(format!("{what}: secret_file {} is empty", path.display()));
    }
    Ok(zeroize::Zeroizing::new(line.to_vec()))
}

impl RemoteConfig {
    /// The shared secret with the servers, from `secret_file`.
    pub fn load_secret(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        read_secret_file("remote", &self.secret_file)
    }
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
    /// every `secret_file` (missing, unsafe, unreadable, empty) and the store's files
    /// (directory, database, `-wal` and `-shm`) where they exist.
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
                    message: e,
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
                    message: e,
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
        if self.radius.radsec.is_some()
            && let Err(p) = self.radsec_files()
        {
            out.extend(p);
        }
        if let Some(r) = &self.remote
            && let Err(e) = r.load_secret()
        {
            let path = [k("remote"), k("secret_file")];
            out.push(Problem {
                file: self.source.clone(),
                line: line_of_path(&text, &path),
                key: Some(path_string(&path)),
                message: e,
            });
        }
        out
    }

    /// What is allowed but unwise (`config check` shows them as warnings, `mfa-radiusd` logs
    /// them at start and reload): a RADIUS shared secret shorter than [`MIN_SECRET_CHARS`], a
    /// trusted range of public addresses larger than a /8 (IPv6: a /32), a `remember_for`
    /// entry naming no RADIUS client here.
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
        if self.radius.radsec.is_some()
            && let Err(p) = self.radsec_files()
        {
            out.extend(p);
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
        out
    }

    /// Reads the files `[radius.radsec]` names. `Ok(None)`: RadSec is off. Every problem
    /// names the file and the key that names it.
    pub fn radsec_files(&self) -> Result<Option<RadsecFiles>, Vec<Problem>> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

        let Some(t) = &self.radius.radsec else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&self.source).unwrap_or_default();
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            let path = [k("radius"), k("radsec"), k(key)];
            problems.push(Problem {
                file: self.source.clone(),
                line: line_of_path(&text, &path),
                key: Some(path_string(&path)),
                message,
            });
        };
        // Zeroized after use: the key file's bytes are a secret.
        let read =
            |key: &str, p: &Option<PathBuf>| -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
                let Some(p) = p else {
                    return Err(format!("required: {}", radsec_file_help(key)));
                };
                let meta = std::fs::metadata(p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                if !meta.is_file() || meta.len() > MAX_CONFIG_BYTES {
                    return Err(format!(
                        "{} is not a regular file of at most 1 MiB",
                        p.display()
                    ));
                }
                std::fs::read(p)
                    .map(zeroize::Zeroizing::new)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))
            };
        let certs =
            |key: &str, p: &Option<PathBuf>| -> Result<Vec<CertificateDer<'static>>, String> {
                let raw = read(key, p)?;
                let shown = p.as_deref().unwrap_or(Path::new("")).display();
                let certs = CertificateDer::pem_slice_iter(&raw)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("{shown}: not valid PEM: {e}"))?;
                if certs.is_empty() {
                    return Err(format!(
                        "{shown} holds no certificate (\"-----BEGIN CERTIFICATE-----\")"
                    ));
                }
                Ok(certs)
            };
        let certificate = certs("certificate", &t.certificate)
            .map_err(|e| problem("certificate", e))
            .ok();
        let ca = certs("ca_file", &t.ca_file)
            .map_err(|e| problem("ca_file", e))
            .ok();
        let key = read("key", &t.key)
            .and_then(|raw| {
                let shown = t.key.as_deref().unwrap_or(Path::new("")).display();
                PrivateKeyDer::from_pem_slice(&raw).map_err(|e| {
                    format!("{shown} holds no usable private key (PEM: PKCS#8, PKCS#1 or SEC1; not encrypted): {e}")
                })
            })
            .map_err(|e| problem("key", e))
            .ok();
        let crls = match &t.crl_file {
            None => Some(Vec::new()),
            Some(p) => read("crl_file", &t.crl_file)
                .and_then(|raw| {
                    let crls = CertificateRevocationListDer::pem_slice_iter(&raw)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| format!("{}: not valid PEM: {e}", p.display()))?;
                    if crls.is_empty() {
                        return Err(format!(
                            "{} holds no CRL (\"-----BEGIN X509 CRL-----\")",
                            p.display()
                        ));
                    }
                    Ok(crls)
                })
                .map_err(|e| problem("crl_file", e))
                .ok(),
        };
        match (certificate, key, ca, crls) {
            (Some(certificate), Some(key), Some(ca), Some(crls)) if problems.is_empty() => {
                Ok(Some(RadsecFiles {
                    certificate,
                    key,
                    ca,
                    crls,
                }))
            }
            _ => Err(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(t: &str) -> Result<Config, ConfigError> {
        parse(t, Path::new("/etc/mfa/mfa.toml"))
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
        assert!(
            c.load_host_secrets()
                .unwrap_err()
                .contains("holds no host's secret")
        );
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
        assert!(e.contains("readable by others"), "{e}");
        std::fs::set_permissions(
            hosts.join("10.0.5.7"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        // A name that is no address.
        put("web1", "x\n");
        let e = c.load_host_secrets().unwrap_err();
        assert!(e.contains("\"web1\" is not named by an IP address"), "{e}");
        std::fs::remove_file(hosts.join("web1")).unwrap();
        // A directory others may write.
        std::fs::set_permissions(&hosts, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = c.load_host_secrets().unwrap_err();
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
    fn radsec_files_are_checked_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("s.pem"), "not pem at all\n").unwrap();
        std::fs::write(d.join("s.key"), "").unwrap();
        let cfg = d.join("mfa.toml");
        let t = format!(
            "{RADSEC_CLIENT}[radius.radsec]\ncertificate = \"{0}/s.pem\"\nkey = \"{0}/s.key\"\nca_file = \"{0}/missing.pem\"\n",
            d.display()
        );
        std::fs::write(&cfg, &t).unwrap();
        let c = load(&cfg).unwrap();
        let problems = c.check_referenced_files();
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{shown:?}");
        assert!(
            shown[0].contains(":6: radius.radsec.certificate: ")
                && shown[0].contains("holds no certificate"),
            "{shown:?}"
        );
        assert!(
            shown[1].contains(":8: radius.radsec.ca_file: cannot read ")
                && shown[1].contains("missing.pem"),
            "{shown:?}"
        );
        assert!(
            shown[2].contains(":7: radius.radsec.key: ")
                && shown[2].contains("no usable private key"),
            "{shown:?}"
        );
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
                mode: RadiusMode::Challenge,
                first_factor: FirstFactor::None,
                client_ip_attribute: ClientIpAttribute::FramedIpAddress,
                require_message_authenticator: false,
            }
        );
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
        // Explicit, in challenge mode (the default): a PAM host.
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
}
