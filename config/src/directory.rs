//! `[directory]`: Active Directory or another LDAP server as the source of user names,
//! groups and (RADIUS `first_factor = "ldap"`) the password check (docs/DIRECTORY.md).
//! Only the daemon, the portal and mfactl ask it (through `mfa-directory`); the PAM module
//! keeps NSS.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::files::{self, FileProblem, Purpose};
use crate::values::Span;

/// Largest `bind_password_file` read; a password is a line.
const MAX_PASSWORD_FILE_BYTES: u64 = 4096;

/// What kind of server the directory is: the presets of the user filter, the attributes that
/// name a user and a group, and how nested groups are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryKind {
    /// Active Directory (and Samba AD): `sAMAccountName`, `userPrincipalName`, nested groups
    /// through the in-chain matching rule, the primary group through `primaryGroupID`.
    #[default]
    Ad,
    /// OpenLDAP with the memberof overlay: `uid`, groups from `memberOf`, nesting expanded
    /// by following each group's own `memberOf`.
    Openldap,
}

impl DirectoryKind {
    /// The filter that selects user objects when `user_filter` is not set.
    pub fn default_user_filter(self) -> &'static str {
        match self {
            DirectoryKind::Ad => "(&(objectCategory=person)(objectClass=user))",
            DirectoryKind::Openldap => "(objectClass=inetOrgPerson)",
        }
    }

    /// The attribute holding the account name (the canonical user name).
    pub fn name_attribute(self) -> &'static str {
        match self {
            DirectoryKind::Ad => "sAMAccountName",
            DirectoryKind::Openldap => "uid",
        }
    }

    /// The attribute naming a group in the policy (`exempt_groups`, rules).
    pub fn group_name_attribute(self) -> &'static str {
        match self {
            DirectoryKind::Ad => "sAMAccountName",
            DirectoryKind::Openldap => "cn",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DirectoryKind::Ad => "ad",
            DirectoryKind::Openldap => "openldap",
        }
    }
}

/// `[directory]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    /// `ldaps://host[:port]` or `ldap://host[:port]`, tried in this order.
    pub servers: Vec<String>,
    /// StartTLS on `ldap://` servers. Absent: on. `false` is refused: a bind would send the
    /// password in clear.
    pub starttls: Option<bool>,
    /// The CA certificates (PEM) the servers' certificates must chain to. Absent: the
    /// system's roots. The certificate is always checked, and the server's name (or IP
    /// address) in the URL must be in it.
    pub ca_file: Option<PathBuf>,
    /// How long one server may take to connect or to answer one operation before the next
    /// is tried.
    pub timeout: Span,
    /// The service account the lookups bind as.
    pub bind_dn: String,
    /// Its password, the first line of a root-owned file no one else may read.
    pub bind_password_file: PathBuf,
    /// Where users and groups are searched.
    pub base_dn: String,
    pub kind: DirectoryKind,
    /// The filter that selects user objects; absent: the kind's preset.
    pub user_filter: Option<String>,
    /// How long an answer (found, not found, groups) is reused.
    pub cache_ttl: Span,
    /// Most users whose answers are kept.
    pub cache_size: usize,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            starttls: None,
            ca_file: None,
            timeout: Span::secs(5),
            bind_dn: String::new(),
            bind_password_file: PathBuf::new(),
            base_dn: String::new(),
            kind: DirectoryKind::Ad,
            user_filter: None,
            cache_ttl: Span::secs(300),
            cache_size: 10_000,
        }
    }
}

/// One of `servers`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryServer {
    /// `ldaps://` (TLS from the first byte) rather than `ldap://`.
    pub ldaps: bool,
    /// The host as written (a name, an IPv4 address, or an IPv6 address in brackets).
    pub host: String,
    pub port: u16,
}

impl DirectoryServer {
    /// Splits `url`; the message says what is wrong with it.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (ldaps, rest) = if let Some(r) = url.strip_prefix("ldaps://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("ldap://") {
            (false, r)
        } else {
            return Err(format!(
                "{url:?} is not an LDAP URL: write ldaps://host or ldap://host (with StartTLS)"
            ));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '@', ' ']) {
            return Err(format!(
                "{url:?}: give only a host and an optional port (no user, path or query)"
            ));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let Some((h, after)) = v6.split_once(']') else {
                return Err(format!("{url:?}: an IPv6 address needs its closing ]"));
            };
            (format!("[{h}]"), after.strip_prefix(':'))
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (rest.to_string(), None),
            }
        };
        let port = match port {
            None => {
                if ldaps {
                    636
                } else {
                    389
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("{url:?}: {p:?} is not a port")),
            },
        };
        if host.is_empty() || host == "[]" {
            return Err(format!("{url:?}: no host"));
        }
        Ok(Self { ldaps, host, port })
    }

    /// The URL as ldap3 takes it.
    pub fn url(&self) -> String {
        let scheme = if self.ldaps { "ldaps" } else { "ldap" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

impl DirectoryConfig {
    /// The user filter in force: `user_filter` or the kind's preset.
    pub fn user_filter(&self) -> &str {
        self.user_filter
            .as_deref()
            .unwrap_or(self.kind.default_user_filter())
    }

    /// The service account's password: the first line of `bind_password_file`, read only
    /// after the file passes the checks of every secret file ([`files::open_trusted`]: a
    /// regular file owned by root or the caller, not writable or readable by others, in
    /// directories only they can write).
    pub fn load_bind_password(&self) -> Result<Zeroizing<String>, String> {
        read_password_file(&self.bind_password_file)
    }
}

fn read_password_file(path: &Path) -> Result<Zeroizing<String>, String> {
    use std::io::Read;
    let shown = |m: String| format!("[directory] bind_password_file {}: {m}", path.display());
    let (file, meta) = files::open_trusted(path, Purpose::DirectoryPassword)
        .map_err(|p: FileProblem| format!("[directory] bind_password_file: {p}"))?;
    if meta.len() > MAX_PASSWORD_FILE_BYTES {
        return Err(shown(format!(
            "is larger than {MAX_PASSWORD_FILE_BYTES} bytes; the password is its first line"
        )));
    }
    let mut raw = Zeroizing::new(Vec::new());
    file.take(MAX_PASSWORD_FILE_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| shown(format!("cannot be read: {e}")))?;
    let line = raw.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(shown("is empty (the password is its first line)".into()));
    }
    let text = std::str::from_utf8(line).map_err(|_| shown("is not UTF-8".into()))?;
    Ok(Zeroizing::new(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let s = DirectoryServer::parse("ldaps://dc1.test.lan").unwrap();
        assert_eq!(
            (s.ldaps, s.host.as_str(), s.port),
            (true, "dc1.test.lan", 636)
        );
        let s = DirectoryServer::parse("ldap://127.0.0.2:3899/").unwrap();
        assert_eq!(s.url(), "ldap://127.0.0.2:3899");
        let s = DirectoryServer::parse("ldap://[::1]").unwrap();
        assert_eq!(s.url(), "ldap://[::1]:389");
        for bad in [
            "http://x",
            "ldap://",
            "ldaps://x:0",
            "ldaps://x:99999",
            "ldap://u@x",
            "ldap://x/dc=a",
            "ldap://[::1",
        ] {
            assert!(DirectoryServer::parse(bad).is_err(), "{bad}");
        }
    }

    fn parse(t: &str) -> Result<crate::Config, crate::ConfigError> {
        crate::parse(t, Path::new("/etc/mfa/mfa.toml"))
    }

    const GOOD: &str = "[directory]\nservers = [\"ldaps://dc1.test.lan\", \"ldap://dc2.test.lan\"]\nbind_dn = \"CN=svc,CN=Users,DC=test,DC=lan\"\nbind_password_file = \"dir.pw\"\nbase_dn = \"DC=test,DC=lan\"\n";

    #[test]
    fn a_directory_with_its_presets() {
        let c = parse(GOOD).unwrap();
        let d = c.directory.as_ref().unwrap();
        assert_eq!(d.kind, DirectoryKind::Ad);
        assert_eq!(
            d.user_filter(),
            "(&(objectCategory=person)(objectClass=user))"
        );
        assert_eq!(d.timeout.as_secs(), 5);
        assert_eq!(d.starttls, None);
        // Relative to the configuration's directory.
        assert_eq!(d.bind_password_file, Path::new("/etc/mfa/dir.pw"));
        let c = parse(&format!("{GOOD}kind = \"openldap\"\n")).unwrap();
        assert_eq!(
            c.directory.unwrap().user_filter(),
            "(objectClass=inetOrgPerson)"
        );
    }

    #[test]
    fn bad_directory_keys_are_named_with_their_line() {
        let t = "[directory]\nservers = [\"http://dc1\", \"ldap://dc2\"]\nstarttls = false\ntimeout = \"0s\"\nbind_dn = \"\"\nbase_dn = \"test.lan\"\nuser_filter = \"(objectClass=user\"\ncache_size = 0\n";
        let e = parse(t).unwrap_err();
        let keys: Vec<(Option<usize>, String)> = e
            .problems
            .iter()
            .map(|p| (p.line, p.key.clone().unwrap_or_default()))
            .collect();
        for (line, key) in [
            (2, "directory.servers[0]"),
            (3, "directory.starttls"),
            (4, "directory.timeout"),
            (5, "directory.bind_dn"),
            (6, "directory.base_dn"),
            (7, "directory.user_filter"),
            (8, "directory.cache_size"),
        ] {
            assert!(
                keys.contains(&(Some(line), key.to_string())),
                "{key} in {keys:?}"
            );
        }
        assert!(
            keys.iter()
                .any(|(_, k)| k == "directory.bind_password_file"),
            "{keys:?}"
        );
        assert!(e.to_string().contains("in clear"), "{e}");
        let e = parse(&format!("{GOOD}verify = false\n")).unwrap_err();
        assert!(e.to_string().contains("verify"), "no silent way off: {e}");
    }

    #[test]
    fn ldap_first_factor_needs_a_directory() {
        let e = parse("[radius]\nmode = \"append\"\nfirst_factor = \"ldap\"\n").unwrap_err();
        assert_eq!(e.problems[0].key.as_deref(), Some("radius.first_factor"));
        let c = parse(&format!(
            "{GOOD}[radius]\nmode = \"append\"\nfirst_factor = \"ldap\"\n"
        ));
        assert!(c.is_ok(), "{c:?}");
        // PAM hosts check no password on the server, by LDAP no more than by PAM.
        let e = parse(&format!(
            "{GOOD}[[radius.clients]]\nname = \"hosts\"\naddress = \"10.0.6.0/24\"\nsecret = \"0123456789abcdef0123\"\nkind = \"pam-hosts\"\nfirst_factor = \"ldap\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("radius.clients[0].first_factor"),
            "{e}"
        );
    }

    #[test]
    fn the_password_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("dir.pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let cfg_path = dir.path().join("mfa.toml");
        std::fs::write(&cfg_path, GOOD).unwrap();
        std::fs::set_permissions(&cfg_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = crate::load(&cfg_path).unwrap_err();
        assert_eq!(
            e.problems[0].key.as_deref(),
            Some("directory.bind_password_file"),
            "{e}"
        );
        assert_eq!(e.problems[0].line, Some(4));
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = crate::load(&cfg_path).unwrap();
        let d = c.directory.unwrap();
        assert_eq!(d.load_bind_password().unwrap().as_str(), "s3cret");
        std::fs::write(&pw, "\n").unwrap();
        assert!(d.load_bind_password().unwrap_err().contains("empty"));
    }
}
