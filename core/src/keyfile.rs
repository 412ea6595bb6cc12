//! The store key file (`[store] key_file`): the 32 bytes that encrypt the seeds, read with
//! the same care as the store itself (never through a symlink, a regular file, no access
//! for group or others), created new (0600, `O_EXCL`), replaced atomically by `mfactl rekey`.
//!
//! Rotation and crashes: `mfactl rekey` writes the new key to `<key_file>.new` (new file,
//! fsync, directory fsync), re-encrypts every seed and records the new key's id in ONE store
//! transaction, then renames `<key_file>.new` over `<key_file>` (and syncs the directory).
//! The store records which key its seeds are under, so every crash point is unambiguous:
//! before the commit the store still names the old key (`key_file`) and a left-over `.new`
//! is garbage the next rekey removes; after the commit but before the rename the store names
//! the key in `.new`, which the opener then uses (and `mfactl`, opening to write, finishes
//! the rename). Nothing is ever decided by trying keys until one works.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::secret::{KeyId, STORE_KEY_BYTES, StoreKey, hex};

#[derive(Debug)]
#[non_exhaustive]
pub enum KeyError {
    /// No key file. `sealed`: the store's seeds are encrypted (under the key `id`).
    Missing {
        path: PathBuf,
        sealed: Option<KeyId>,
    },
    /// The file exists but cannot be read.
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not one this product trusts or wrote (a symlink, its mode, its size).
    Bad { path: PathBuf, problem: String },
    /// A well-formed key, but not the one the store's seeds are sealed under.
    Wrong { path: PathBuf, want: KeyId },
    /// No VAPID key file (`[push] vapid_key_file`), which the portal signs its pushes with.
    NoVapidKey { path: PathBuf },
    /// Creating, syncing or renaming a key file failed.
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Missing {
                path,
                sealed: Some(id),
            } => write!(
                f,
                "the key file {} does not exist, and the store's seeds are encrypted under it (key id {}): restore it from your backup; a new key cannot open them",
                path.display(),
                hex(id)
            ),
            KeyError::Missing { path, sealed: None } => write!(
                f,
                "the key file {} does not exist; create it with `mfactl init` (it encrypts the seeds at rest)",
                path.display()
            ),
            KeyError::Unreadable { path, source } => {
                write!(f, "cannot read the key file {}: {source}", path.display())
            }
            KeyError::Bad { path, problem } => {
                write!(f, "the key file {} {problem}", path.display())
            }
            KeyError::Wrong { path, want } => write!(
                f,
                "the key file {} holds another key than the one the store's seeds are encrypted under (key id {}): restore the right key file",
                path.display(),
                hex(want)
            ),
            KeyError::NoVapidKey { path } => write!(
                f,
                "the VAPID key file {} does not exist; make it with `mfactl init` ([push] vapid_key_file); every portal node needs the same file",
                path.display()
            ),
            KeyError::Write { path, source } => {
                write!(f, "cannot write the key file {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Unreadable { source, .. } | KeyError::Write { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Where `mfactl rekey` writes the next key before the store switches to it.
pub fn pending_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".new");
    PathBuf::from(p)
}

/// Reads a key file; `Ok(None)` when it does not exist.
pub fn read(path: &Path) -> Result<Option<StoreKey>, KeyError> {
    let Some(buf) = read_private(path, STORE_KEY_BYTES)? else {
        return Ok(None);
    };
    StoreKey::from_bytes(&buf)
        .map(Some)
        .ok_or_else(|| KeyError::Bad {
            path: path.to_path_buf(),
            problem: format!(
                "holds {}{} bytes, not a {STORE_KEY_BYTES}-byte key (`mfactl init` makes it)",
                buf.len().min(STORE_KEY_BYTES),
                if buf.len() > STORE_KEY_BYTES {
                    " or more"
                } else {
                    ""
                }
            ),
        })
}

/// The bytes of a private file (a key): never through a symlink, a regular file, no access
/// for group or others, owned by root or the user running this; at most `max` bytes are
/// read and one more (so a caller tells a longer file apart). `Ok(None)` when it does not
/// exist. The store key and the VAPID key are read through here.
pub fn read_private(path: &Path, max: usize) -> Result<Option<Zeroizing<Vec<u8>>>, KeyError> {
    let bad = |problem: String| KeyError::Bad {
        path: path.to_path_buf(),
        problem,
    };
    // O_NOFOLLOW: a symlink planted in the key's place is refused, not followed.
    // O_NONBLOCK: a FIFO there must not hang the login; it is refused below.
    let mut f = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(bad("is a symbolic link; give the real file".into()));
        }
        Err(e) => {
            return Err(KeyError::Unreadable {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    let meta = f.metadata().map_err(|e| KeyError::Unreadable {
        path: path.to_path_buf(),
        source: e,
    })?;
    if !meta.is_file() {
        return Err(bad("is not a regular file".into()));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "has mode {mode:04o}: group and others must have no access (chmod 600 {})",
            path.display()
        )));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(bad(format!(
            "belongs to uid {}, neither root nor the user running this (chown root {})",
            meta.uid(),
            path.display()
        )));
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(max + 1));
    (&mut f)
        .take(max as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| KeyError::Unreadable {
            path: path.to_path_buf(),
            source: e,
        })?;
    Ok(Some(buf))
}

/// Writes `key` to a new file at `path`: 0600 from the start, `O_EXCL` (so never through a
/// symlink nor over an existing file), synced, its directory synced. `Ok(false)` when the
/// file exists already (kept as it is).
pub fn write_new(path: &Path, key: &StoreKey) -> Result<bool, KeyError> {
    write_private_new(path, key.bytes())
}

/// Writes `bytes` to a new private file at `path`, as [`write_new`] writes a key.
pub fn write_private_new(path: &Path, bytes: &[u8]) -> Result<bool, KeyError> {
    let werr = |e: std::io::Error| KeyError::Write {
        path: path.to_path_buf(),
        source: e,
    };
    let mut f = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(werr(e)),
    };
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = written {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(werr(e));
    }
    sync_dir(path)?;
    Ok(true)
}

/// Makes `pending` the key file: rename over `path`, then sync the directory.
pub fn promote(pending: &Path, path: &Path) -> Result<(), KeyError> {
    std::fs::rename(pending, path).map_err(|e| KeyError::Write {
        path: path.to_path_buf(),
        source: e,
    })?;
    sync_dir(path)
}

/// Removes a left-over pending key (from a rekey that stopped before its commit).
pub fn remove_stale(pending: &Path) -> Result<(), KeyError> {
    match std::fs::remove_file(pending) {
        Ok(()) => sync_dir(pending),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(KeyError::Write {
            path: pending.to_path_buf(),
            source: e,
        }),
    }
}

fn sync_dir(path: &Path) -> Result<(), KeyError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KeyError::Write {
            path: dir.to_path_buf(),
            source: e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn written_new_read_back_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        assert!(read(&p).unwrap().is_none());
        let k = StoreKey::generate().unwrap();
        assert!(write_new(&p, &k).unwrap());
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(read(&p).unwrap().unwrap().id(), k.id());
        // An existing file is kept.
        assert!(!write_new(&p, &StoreKey::generate().unwrap()).unwrap());
        assert_eq!(read(&p).unwrap().unwrap().id(), k.id());

        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("0640") && e.contains(p.to_str().unwrap()), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(
            read(&link)
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        assert!(write_new(&link, &k).is_ok_and(|made| !made));

        let short = dir.path().join("short");
        std::fs::write(&short, b"abc").unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read(&short).unwrap_err().to_string().contains("3 bytes"));
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(read(&sub).is_err());
    }
}
