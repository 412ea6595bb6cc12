//! The `mfa.toml` configuration shared by the PAM module, the RADIUS daemon and `mfactl`.
//!
//! Every error names the file, the line and the key, because the person reading it is an
//! administrator with an editor open, not a developer with a debugger.
#![forbid(unsafe_code)]

mod edit;
mod error;
mod locate;
mod schema;
mod values;

use std::path::{Path, PathBuf};

pub use edit::{TrustedEdit, edit_trusted_networks};
pub use error::{ConfigError, Problem};
pub use locate::{Seg, line_of_path};
pub use schema::*;
pub use values::{Cidr, Instant, SecretString, Span, civil_from_days, days_from_civil, format_utc};

use locate::{key_at, line_of, path_string};

/// Largest config file we read; anything bigger is a mistake (or an attack on a setuid path).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads and validates the configuration at `path`.
pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
    let path = path.as_ref();
    let text = read_text(path)?;
    parse(&text, path)
}

pub(crate) fn read_text(path: &Path) -> Result<String, ConfigError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ConfigError::file(path, format!("cannot read the configuration: {e}")))?;
    if !meta.is_file() {
        return Err(ConfigError::file(path, "not a regular file"));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::file(
            path,
            "larger than 1 MiB; refusing to read it",
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::file(path, format!("cannot read the configuration: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let line = line_of_bytes(e.as_bytes(), e.utf8_error().valid_up_to());
        ConfigError::single(Problem {
            file: path.into(),
            line: Some(line),
            key: None,
            message: "not valid UTF-8".into(),
        })
    })
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
    let mut cfg: Config = toml::from_str(text).map_err(|e| {
        let (line, key) = match e.span() {
            Some(span) => match key_at(text, span.start, e.message()) {
                Some((key, line)) => (Some(line), Some(key)),
                None => (Some(line_of(text, span.start)), None),
            },
            None => (None, None),
        };
        ConfigError::single(Problem {
            file: path.into(),
            line,
            key,
            message: e.message().trim().to_string(),
        })
    })?;
    cfg.source = path.to_path_buf();
    if cfg.store.path.is_relative() {
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        cfg.store.path = base.join(&cfg.store.path);
    }
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    for f in [&mut cfg.store.password_file, &mut cfg.store.ca_file]
        .into_iter()
        .flatten()
    {
        if f.is_relative() {
            *f = base.join(&*f);
        }
    }
    let problems = validate(&cfg, text);
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

    let p = &cfg.policy;
    for (i, u) in p.exempt_users.iter().enumerate() {
        if !valid_name(u) {
            bad(
                vec![k("policy"), k("exempt_users"), Seg::Index(i)],
                format!("{u:?} is not a valid user name"),
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
            "\"none\" is only allowed with mode = \"code-only\": otherwise a grace period would let any user name in with no secret at all".into(),
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
    if r.pam_workers == 0 || r.pam_workers > 1024 {
        bad(
            vec![k("radius"), k("pam_workers")],
            "must be between 1 and 1024".into(),
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
            (None, None) => bad(
                at("secret"),
                "a shared secret is required (secret or secret_file)".into(),
            ),
            (Some(s), None) if s.0.is_empty() => bad(at("secret"), "must not be empty".into()),
            _ => {}
        }
    }
    out
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

/// A user or group name as the configuration may name it: the model's one rule.
fn valid_name(s: &str) -> bool {
    mfa_model::UserName::check(s).is_ok()
}

impl RadiusClient {
    /// The client's shared secret, read from `secret_file` where configured (first line,
    /// trailing newline removed).
    pub fn load_secret(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        if let Some(s) = &self.secret {
            return Ok(zeroize::Zeroizing::new(s.0.as_bytes().to_vec()));
        }
        let Some(path) = &self.secret_file else {
            return Err(format!("client {:?} has no shared secret", self.name));
        };
        let raw = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
            format!(
                "client {:?}: cannot read secret_file {}: {e}",
                self.name,
                path.display()
            )
        })?);
        let line = raw.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Err(format!(
                "client {:?}: secret_file {} is empty",
                self.name,
                path.display()
            ));
        }
        Ok(zeroize::Zeroizing::new(line.to_vec()))
    }
}

impl Config {
    /// The configured path in messages and for `--config` defaults.
    pub fn default_path() -> PathBuf {
        PathBuf::from(DEFAULT_PATH)
    }

    /// Problems that only show when files named by the config are read (`config check`).
    pub fn check_referenced_files(&self) -> Vec<Problem> {
        let text = std::fs::read_to_string(&self.source).unwrap_or_default();
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
                        line: line_of_path(&text, &path),
                        key: Some(path_string(&path)),
                        message: format!("cannot read {}: {e}", f.display()),
                    });
                }
            }
        }
        for (i, c) in self.radius.clients.iter().enumerate() {
            if c.secret_file.is_some()
                && let Err(e) = c.load_secret()
            {
                let path = [k("radius"), k("clients"), Seg::Index(i), k("secret_file")];
                out.push(Problem {
                    file: self.source.clone(),
                    line: line_of_path(&text, &path),
                    key: Some(path_string(&path)),
                    message: e,
                });
            }
        }
        out
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
            "[store]\nurl = \"postgres://mfa@127.0.0.1:5432/mfa\"\nsslmode = \"disable\"\n",
        )
        .unwrap();
        assert_eq!(ok.store.sslmode, SslMode::Disable);
        let tls = parse_str(
            "[store]\nurl = \"postgres://mfa@db1/mfa\"\npassword_file = \"db.pw\"\nca_file = \"/etc/mfa/ca.pem\"\n",
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
    fn enforce_from_forms() {
        let c = parse_str("[policy]\nenforce_from = 2026-12-01T08:00:00Z\n").unwrap();
        assert_eq!(c.policy.enforce_from.unwrap().0, 1_796_112_000);
        let c = parse_str("[policy]\nenforce_from = 2026-12-01\n").unwrap();
        assert_eq!(c.policy.enforce_from.unwrap().0, 1_796_083_200);
        let c = parse_str("[policy]\nenforce_from = 2026-12-01T09:00:00+01:00\n").unwrap();
        assert_eq!(c.policy.enforce_from.unwrap().0, 1_796_112_000);
    }
}
