//! The RADIUS shared secrets the configuration names: a client's `secret`, `secret_file` or
//! per-host `secrets_dir`, and `[remote] secret_file`. Every file is read only after it
//! passes [`files::open_trusted`]; every failure is a [`SecretFileError`] naming whose
//! secret and which file.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::files::{self, FileProblem};
use crate::{RadiusClient, RemoteConfig};

/// The RADIUS shared secret over TLS when the client entry sets none (RFC 6614 §2.3).
pub const RADSEC_DEFAULT_SECRET: &str = "radsec";

/// Most files a `secrets_dir` may hold: more is a mistake, not a fleet.
const MAX_HOST_SECRETS: usize = 65_536;

/// Largest `secret_file` read; a shared secret is a line, not a document.
const MAX_SECRET_FILE_BYTES: usize = 4096;

/// One host of a `secrets_dir`: its address and its secret.
pub type HostSecret = (IpAddr, Zeroizing<Vec<u8>>);

/// Whose secret could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOwner {
    /// A `[[radius.clients]]` entry, by name.
    Client(String),
    /// One host of a client's `secrets_dir`.
    Host { client: String, ip: IpAddr },
    /// `[remote]`.
    Remote,
}

impl fmt::Display for SecretOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretOwner::Client(name) => write!(f, "client {name:?}"),
            SecretOwner::Host { client, ip } => write!(f, "client {client:?}, host {ip}"),
            SecretOwner::Remote => f.write_str("remote"),
        }
    }
}

/// Why a shared secret could not be had. The text (`Display`) names the owner, the key and
/// the file, for an administrator with an editor open.
#[derive(Debug)]
#[non_exhaustive]
pub enum SecretFileError {
    /// A client entry with no secret of any kind (validation refuses one).
    NoSecret(SecretOwner),
    /// Per-host secrets asked of a client without `secrets_dir`.
    NoSecretsDir(SecretOwner),
    /// The file (`key` "secret_file") or directory ("secrets_dir") is not one to trust: missing,
    /// someone else's, writable or readable by others.
    Untrusted {
        owner: SecretOwner,
        key: &'static str,
        problem: FileProblem,
    },
    /// Reading the file or directory failed.
    Unreadable {
        owner: SecretOwner,
        key: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// A `secret_file` over [`MAX_SECRET_FILE_BYTES`].
    TooLarge { owner: SecretOwner, path: PathBuf },
    /// A `secret_file` whose first line is empty.
    Empty { owner: SecretOwner, path: PathBuf },
    /// A file in `secrets_dir` whose name is no IP address.
    NotAnAddress {
        owner: SecretOwner,
        dir: PathBuf,
        name: String,
    },
    /// A host of `secrets_dir` outside the client entry's `address`.
    OutsideAddress {
        owner: SecretOwner,
        dir: PathBuf,
        ip: IpAddr,
        address: ipnet::IpNet,
    },
    /// Two files of `secrets_dir` for one host (`10.0.5.8` and `::ffff:10.0.5.8`).
    TwoFiles {
        owner: SecretOwner,
        dir: PathBuf,
        ip: IpAddr,
    },
    /// More files in `secrets_dir` than [`MAX_HOST_SECRETS`].
    TooMany { owner: SecretOwner, dir: PathBuf },
    /// A `secrets_dir` with no host's file in it.
    NoHosts { owner: SecretOwner, dir: PathBuf },
}

impl fmt::Display for SecretFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretFileError::NoSecret(owner) => write!(f, "{owner} has no shared secret"),
            SecretFileError::NoSecretsDir(owner) => write!(f, "{owner} has no secrets_dir"),
            SecretFileError::Untrusted {
                owner,
                key,
                problem,
            } => write!(f, "{owner}: {key} {problem}"),
            SecretFileError::Unreadable {
                owner,
                key,
                path,
                error,
            } => write!(f, "{owner}: cannot read {key} {}: {error}", path.display()),
            SecretFileError::TooLarge { owner, path } => write!(
                f,
                "{owner}: secret_file {} is larger than {MAX_SECRET_FILE_BYTES} bytes",
                path.display()
            ),
            SecretFileError::Empty { owner, path } => {
                write!(f, "{owner}: secret_file {} is empty", path.display())
            }
            SecretFileError::NotAnAddress { owner, dir, name } => write!(
                f,
                "{owner}: secrets_dir {}: {name:?} is not named by an IP address (one file per host, named like 10.0.5.7 or 2001:db8::7)",
                dir.display()
            ),
            SecretFileError::OutsideAddress {
                owner,
                dir,
                ip,
                address,
            } => write!(
                f,
                "{owner}: secrets_dir {}: {ip} is not in this client's address {address}",
                dir.display()
            ),
            SecretFileError::TwoFiles { owner, dir, ip } => write!(
                f,
                "{owner}: secrets_dir {}: two files name host {ip}",
                dir.display()
            ),
            SecretFileError::TooMany { owner, dir } => write!(
                f,
                "{owner}: secrets_dir {} holds more than {MAX_HOST_SECRETS} files",
                dir.display()
            ),
            SecretFileError::NoHosts { owner, dir } => write!(
                f,
                "{owner}: secrets_dir {} holds no host's secret (one file per host, named by its IP address)",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for SecretFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SecretFileError::Untrusted { problem, .. } => Some(problem),
            SecretFileError::Unreadable { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl RadiusClient {
    /// The client's shared secret, read from `secret_file` where configured (first line,
    /// trailing newline removed); "radsec" for a RadSec client that sets none. The file must
    /// pass [`files::open_trusted`].
    pub fn load_secret(&self) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
        if let Some(s) = &self.secret {
            return Ok(Zeroizing::new(s.0.as_bytes().to_vec()));
        }
        if self.secret_file.is_none() && self.is_radsec() {
            return Ok(Zeroizing::new(RADSEC_DEFAULT_SECRET.as_bytes().to_vec()));
        }
        let owner = SecretOwner::Client(self.name.clone());
        let Some(path) = &self.secret_file else {
            return Err(SecretFileError::NoSecret(owner));
        };
        read_secret_file(owner, path)
    }

    /// The per-host secrets of a client with `secrets_dir`: each file in it named by an IP
    /// address inside `address` (IPv4-mapped IPv6 names count as IPv4), read as a
    /// `secret_file` is. Hidden files (editors' swap files) are skipped; any other name, an
    /// address outside `address`, one host named twice, an unsafe file or directory, or a
    /// directory with no host in it is an error naming the client and file.
    pub fn load_host_secrets(&self) -> Result<Vec<HostSecret>, SecretFileError> {
        let owner = SecretOwner::Client(self.name.clone());
        let Some(dir) = &self.secrets_dir else {
            return Err(SecretFileError::NoSecretsDir(owner));
        };
        let at = |owner: &SecretOwner| (owner.clone(), dir.to_path_buf());
        files::check_trusted_file(dir, files::Purpose::SecretsDir).map_err(|problem| {
            SecretFileError::Untrusted {
                owner: owner.clone(),
                key: "secrets_dir",
                problem,
            }
        })?;
        let unreadable = |error| SecretFileError::Unreadable {
            owner: owner.clone(),
            key: "secrets_dir",
            path: dir.to_path_buf(),
            error,
        };
        let entries = std::fs::read_dir(dir).map_err(unreadable)?;
        let mut out: Vec<HostSecret> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(unreadable)?;
            let name = entry.file_name();
            let shown = name.to_string_lossy();
            if shown.starts_with('.') {
                continue;
            }
            let ip = name
                .to_str()
                .and_then(|n| n.parse::<IpAddr>().ok())
                .map(|ip| match ip {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                    v4 => v4,
                })
                .ok_or_else(|| {
                    let (owner, dir) = at(&owner);
                    SecretFileError::NotAnAddress {
                        owner,
                        dir,
                        name: shown.to_string(),
                    }
                })?;
            if !self.address.0.contains(&ip) {
                let (owner, dir) = at(&owner);
                return Err(SecretFileError::OutsideAddress {
                    owner,
                    dir,
                    ip,
                    address: self.address.0,
                });
            }
            if out.iter().any(|(seen, _)| *seen == ip) {
                let (owner, dir) = at(&owner);
                return Err(SecretFileError::TwoFiles { owner, dir, ip });
            }
            if out.len() >= MAX_HOST_SECRETS {
                let (owner, dir) = at(&owner);
                return Err(SecretFileError::TooMany { owner, dir });
            }
            let host = SecretOwner::Host {
                client: self.name.clone(),
                ip,
            };
            let secret = read_secret_file(host, &entry.path())?;
            out.push((ip, secret));
        }
        if out.is_empty() {
            let (owner, dir) = at(&owner);
            return Err(SecretFileError::NoHosts { owner, dir });
        }
        out.sort_by_key(|(ip, _)| *ip);
        Ok(out)
    }
}

impl RemoteConfig {
    /// The shared secret with the servers, from `secret_file`.
    pub fn load_secret(&self) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
        read_secret_file(SecretOwner::Remote, &self.secret_file)
    }
}

/// The first line of a secret file, trailing newline removed. The file must pass
/// [`files::open_trusted`] (no one else may write it, nor others read it), and is read from
/// the handle that was checked.
fn read_secret_file(
    owner: SecretOwner,
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
    use std::io::Read;
    let (mut file, _) = match files::open_trusted(path, files::Purpose::SecretFile) {
        Ok(f) => f,
        Err(problem) => {
            return Err(SecretFileError::Untrusted {
                owner,
                key: "secret_file",
                problem,
            });
        }
    };
    // Sized once so that reading never reallocates and leaves an unwiped copy behind.
    let mut raw = Zeroizing::new(Vec::with_capacity(MAX_SECRET_FILE_BYTES + 1));
    let mut chunk = Zeroizing::new([0u8; 512]);
    loop {
        let n = match file.read(&mut chunk[..]) {
            Ok(n) => n,
            Err(error) => {
                return Err(SecretFileError::Unreadable {
                    owner,
                    key: "secret_file",
                    path: path.to_path_buf(),
                    error,
                });
            }
        };
        if n == 0 {
            break;
        }
        if raw.len() + n > MAX_SECRET_FILE_BYTES {
            let path = path.to_path_buf();
            return Err(SecretFileError::TooLarge { owner, path });
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    let line = raw.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        let path = path.to_path_buf();
        return Err(SecretFileError::Empty { owner, path });
    }
    Ok(Zeroizing::new(line.to_vec()))
}
