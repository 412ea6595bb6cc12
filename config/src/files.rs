//! Whether a file the product trusts (the configuration, a RADIUS `secret_file`, the key file,
//! the store) can be changed by someone it should not trust.
//!
//! The rule, after OpenSSH's `StrictModes` (`safe_path` in misc.c: the file, then every
//! directory of its canonical path up to `/`, each owned by root or the user and writable by
//! neither group nor others) and sudo's check of sudoers (a regular file, owned by root, not
//! writable by others):
//!
//! - the file is a regular file (a directory where a directory is expected), reached through
//!   symlinks only to a target that passes the same check;
//! - it is owned by root, or by the user this program runs as (for a program run as root that
//!   is root alone; a demo or a test run by an ordinary user may use its own files);
//! - it is writable by neither its group nor others;
//! - so is every directory on the path as given and on the resolved path, up to `/`: whoever
//!   can write a directory can swap the file (or a symlink on the way) for their own. A
//!   directory that is world-writable but sticky and owned by root (`/tmp`) passes as an
//!   ancestor: the sticky bit lets nobody else rename or remove the entries in it. It does
//!   not pass as the store's own directory, where SQLite creates its `-wal` and `-shm` files;
//! - a file that holds secrets (a `secret_file`, the key file) is not readable by others.
//!
//! The checks are on metadata only and race nothing that matters: once every directory on
//! the path is writable by root and the caller alone, nobody else can change what the path
//! names. [`open_trusted`] checks the opened file itself (`fstat`), so what is read is what
//! was checked.

use std::fmt;
use std::fs::{File, Metadata};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a file is for; names it in messages and sets the rules that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `mfa.toml`.
    Config,
    /// A RADIUS client's `secret_file`.
    SecretFile,
    /// A RADIUS client's `secrets_dir`, one secret file per host.
    SecretsDir,
    /// `[store] key_file`, the key that seals the stored seeds.
    KeyFile,
    /// The SQLite database and its `-wal` and `-shm` files.
    Store,
    /// The directory holding the database.
    StoreDir,
    /// A PAM host's break-glass codes, or its queue of logins let in while no server answered
    /// (`[remote] breakglass_file`, `offline_queue`).
    PamHostFile,
    /// `[directory] bind_password_file`, the directory service account's password.
    DirectoryPassword,
}

impl Purpose {
    fn what(self) -> &'static str {
        match self {
            Purpose::Config => "the configuration",
            Purpose::SecretFile => "the RADIUS secret file",
            Purpose::SecretsDir => "the RADIUS secrets directory",
            Purpose::KeyFile => "the key file",
            Purpose::Store => "the store",
            Purpose::StoreDir => "the store directory",
            Purpose::PamHostFile => "the PAM host's offline file (break-glass codes or queue)",
            Purpose::DirectoryPassword => "the directory's bind password file",
        }
    }

    fn is_dir(self) -> bool {
        matches!(self, Purpose::StoreDir | Purpose::SecretsDir)
    }

    /// Holds secrets: must not be readable by others.
    fn holds_secrets(self) -> bool {
        matches!(
            self,
            Purpose::SecretFile
                | Purpose::KeyFile
                | Purpose::PamHostFile
                | Purpose::DirectoryPassword
        )
    }
}

/// Why a file is not to be trusted, or cannot be checked. Its `Display` names the path and,
/// where there is one, the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileProblem {
    /// The file does not exist (callers decide whether that is a problem).
    Missing { path: PathBuf, purpose: Purpose },
    /// The path cannot be looked at by this user: a directory on the way is not searchable,
    /// or the file is not readable.
    Denied { path: PathBuf, purpose: Purpose },
    /// Any other failure to look at the path.
    Unreadable {
        path: PathBuf,
        purpose: Purpose,
        error: String,
    },
    /// Not a regular file (a directory, a device, a FIFO), or not a directory where one is
    /// expected.
    WrongType {
        path: PathBuf,
        purpose: Purpose,
        expected_dir: bool,
    },
    /// Owned by a user other than root (and the caller).
    Owner {
        path: PathBuf,
        purpose: Purpose,
        uid: u32,
        dir: bool,
    },
    /// Writable by its group or by others.
    Writable {
        path: PathBuf,
        purpose: Purpose,
        mode: u32,
        dir: bool,
    },
    /// Holds secrets and is readable by others.
    Readable {
        path: PathBuf,
        purpose: Purpose,
        mode: u32,
        /// Why it holds secrets, when that is not its purpose (a config with an inline
        /// `secret`).
        because: Option<&'static str>,
    },
}

impl FileProblem {
    /// The path the problem is about (the file, or the directory on its way).
    pub fn path(&self) -> &Path {
        match self {
            FileProblem::Missing { path, .. }
            | FileProblem::Denied { path, .. }
            | FileProblem::Unreadable { path, .. }
            | FileProblem::WrongType { path, .. }
            | FileProblem::Owner { path, .. }
            | FileProblem::Writable { path, .. }
            | FileProblem::Readable { path, .. } => path,
        }
    }

    pub fn is_missing(&self) -> bool {
        matches!(self, FileProblem::Missing { .. })
    }

    /// The command or step that fixes it, if there is one.
    pub fn fix(&self) -> Option<String> {
        let p = self.path().display();
        match self {
            FileProblem::Missing { .. } | FileProblem::Unreadable { .. } => None,
            FileProblem::Denied { .. } => Some(
                "run as root, or give this user access to it (the store is root's by design; \
                 see docs/PAM.md)"
                    .into(),
            ),
            FileProblem::WrongType { expected_dir, .. } => Some(if *expected_dir {
                format!("make {p} a directory")
            } else {
                format!("make {p} a regular file")
            }),
            FileProblem::Owner { .. } => Some(format!("chown root {p}")),
            FileProblem::Writable { .. } => Some(format!("chmod go-w {p}")),
            FileProblem::Readable { because, .. } => Some(match because {
                Some(_) => format!("chmod o-rwx {p}, or move the secret to a secret_file"),
                None => format!("chmod o-rwx {p}"),
            }),
        }
    }
}

impl FileProblem {
    /// The message without the leading path (for a caller that names the path already),
    /// with the fix.
    pub fn detail(&self) -> String {
        let mut out = match self {
            FileProblem::Missing { purpose, .. } => format!("{} does not exist", purpose.what()),
            FileProblem::Denied { path, purpose } => format!(
                "permission denied on {} ({} cannot be read as uid {})",
                path.display(),
                purpose.what(),
                nix::unistd::geteuid()
            ),
            FileProblem::Unreadable { purpose, error, .. } => {
                format!("cannot look at {}: {error}", purpose.what())
            }
            FileProblem::WrongType {
                purpose,
                expected_dir,
                ..
            } => format!(
                "{} is not a {}",
                purpose.what(),
                if *expected_dir {
                    "directory"
                } else {
                    "regular file"
                }
            ),
            FileProblem::Owner {
                purpose, uid, dir, ..
            } => format!(
                "{}{} is owned by uid {uid}, not root{}; refusing to trust it",
                if *dir {
                    "a directory on the way to "
                } else {
                    ""
                },
                purpose.what(),
                if nix::unistd::geteuid().is_root() {
                    String::new()
                } else {
                    format!(" or uid {}", nix::unistd::geteuid())
                }
            ),
            FileProblem::Writable {
                purpose, mode, dir, ..
            } => format!(
                "{}{} is writable by {} (mode {:04o}); refusing to trust it",
                if *dir {
                    "a directory on the way to "
                } else {
                    ""
                },
                purpose.what(),
                match (mode & 0o020 != 0, mode & 0o002 != 0) {
                    (true, true) => "its group and others",
                    (true, false) => "its group",
                    _ => "others",
                },
                mode & 0o7777
            ),
            FileProblem::Readable {
                purpose,
                mode,
                because,
                ..
            } => format!(
                "{} is readable by others (mode {:04o}){}",
                purpose.what(),
                mode & 0o7777,
                because.map(|b| format!(" {b}")).unwrap_or_default(),
            ),
        };
        if let Some(fix) = self.fix() {
            out.push_str("; fix: ");
            out.push_str(&fix);
        }
        out
    }
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Names the path itself: "permission denied on PATH".
            FileProblem::Denied { .. } => f.write_str(&self.detail()),
            _ => write!(f, "{}: {}", self.path().display(), self.detail()),
        }
    }
}

impl std::error::Error for FileProblem {}

fn io_problem(path: &Path, purpose: Purpose, e: &std::io::Error) -> FileProblem {
    let path = path.to_path_buf();
    match e.kind() {
        ErrorKind::NotFound => FileProblem::Missing { path, purpose },
        ErrorKind::PermissionDenied => FileProblem::Denied { path, purpose },
        _ => FileProblem::Unreadable {
            path,
            purpose,
            error: e.to_string(),
        },
    }
}

/// Root, and the user this program runs as.
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// Checks `path` (following symlinks) and every directory on its way; see the module
/// documentation for the rule. A missing file is [`FileProblem::Missing`].
pub fn check_trusted_file(path: &Path, purpose: Purpose) -> Result<(), FileProblem> {
    let meta = std::fs::metadata(path).map_err(|e| io_problem(path, purpose, &e))?;
    check_metadata(path, &meta, purpose)?;
    check_directories(path, purpose)
}

/// The path a problem with the file itself names: where a symlink leads, since that is the
/// file to fix.
fn shown(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// Opens `path` for reading (following symlinks) and checks the opened file and every
/// directory on its way. Returns the file and its metadata.
pub fn open_trusted(path: &Path, purpose: Purpose) -> Result<(File, Metadata), FileProblem> {
    let file = File::open(path).map_err(|e| io_problem(path, purpose, &e))?;
    let meta = file.metadata().map_err(|e| io_problem(path, purpose, &e))?;
    check_metadata(path, &meta, purpose)?;
    check_directories(path, purpose)?;
    Ok((file, meta))
}

/// The file's own checks on metadata already read (type, owner, mode).
pub fn check_metadata(path: &Path, meta: &Metadata, purpose: Purpose) -> Result<(), FileProblem> {
    let p = || shown(path);
    let right_type = if purpose.is_dir() {
        meta.is_dir()
    } else {
        meta.is_file()
    };
    if !right_type {
        return Err(FileProblem::WrongType {
            path: p(),
            purpose,
            expected_dir: purpose.is_dir(),
        });
    }
    if !trusted_owner(meta.uid()) {
        return Err(FileProblem::Owner {
            path: p(),
            purpose,
            uid: meta.uid(),
            dir: false,
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(FileProblem::Writable {
            path: p(),
            purpose,
            mode: meta.mode(),
            dir: false,
        });
    }
    if purpose.holds_secrets() {
        check_not_world_readable(path, meta, purpose, None)?;
    }
    Ok(())
}

/// A file that holds secrets must not be readable by others. `because` says why it holds
/// secrets when its purpose does not (a config with an inline RADIUS `secret`).
pub fn check_not_world_readable(
    path: &Path,
    meta: &Metadata,
    purpose: Purpose,
    because: Option<&'static str>,
) -> Result<(), FileProblem> {
    if meta.mode() & 0o004 != 0 {
        return Err(FileProblem::Readable {
            path: shown(path),
            purpose,
            mode: meta.mode(),
            because,
        });
    }
    Ok(())
}

/// Every directory on the way to `path`: those of the path as given (made absolute) and those
/// of the resolved path, up to `/`.
fn check_directories(path: &Path, purpose: Purpose) -> Result<(), FileProblem> {
    let absolute = std::path::absolute(path).map_err(|e| io_problem(path, purpose, &e))?;
    let resolved = std::fs::canonicalize(path).map_err(|e| io_problem(path, purpose, &e))?;
    let mut seen = std::collections::HashSet::new();
    for chain in [&absolute, &resolved] {
        for (i, dir) in chain.ancestors().skip(1).enumerate() {
            if dir.as_os_str().is_empty() || !seen.insert(dir.to_path_buf()) {
                continue;
            }
            // The database's own directory holds the files SQLite creates next to it.
            let strict = i == 0 && purpose == Purpose::Store;
            check_directory(dir, purpose, strict)?;
        }
    }
    Ok(())
}

fn check_directory(dir: &Path, purpose: Purpose, strict: bool) -> Result<(), FileProblem> {
    let meta = std::fs::metadata(dir).map_err(|e| io_problem(dir, purpose, &e))?;
    if !trusted_owner(meta.uid()) {
        return Err(FileProblem::Owner {
            path: dir.to_path_buf(),
            purpose,
            uid: meta.uid(),
            dir: true,
        });
    }
    let sticky_root = meta.mode() & 0o1000 != 0 && meta.uid() == 0;
    if meta.mode() & 0o022 != 0 && (strict || !sticky_root) {
        return Err(FileProblem::Writable {
            path: dir.to_path_buf(),
            purpose,
            mode: meta.mode(),
            dir: true,
        });
    }
    Ok(())
}

/// The directories on the way to `path`, a file that need not exist yet (a PAM host's
/// offline queue, made at the first offline login): each that exists must pass what the
/// directories of an existing file pass ([`check_trusted_file`]).
pub fn check_directories_of(path: &Path, purpose: Purpose) -> Result<(), FileProblem> {
    let absolute = std::path::absolute(path).map_err(|e| io_problem(path, purpose, &e))?;
    for dir in absolute.ancestors().skip(1) {
        if dir.as_os_str().is_empty() || !dir.exists() {
            continue;
        }
        check_directory(dir, purpose, false)?;
    }
    Ok(())
}

/// The store's files: its directory, the database, and SQLite's `-wal` and `-shm` files
/// where they exist. A missing database is [`FileProblem::Missing`] (after its directory
/// was checked, where that exists).
pub fn check_store(db: &Path) -> Result<(), FileProblem> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        match check_trusted_file(dir, Purpose::StoreDir) {
            Err(FileProblem::Missing { .. }) => {
                return Err(FileProblem::Missing {
                    path: db.to_path_buf(),
                    purpose: Purpose::Store,
                });
            }
            other => other?,
        }
    }
    check_trusted_file(db, Purpose::Store)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        match check_trusted_file(Path::new(&side), Purpose::Store) {
            Err(FileProblem::Missing { .. }) | Ok(()) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn file(d: &Path, name: &str, mode: u32) -> PathBuf {
        let p = d.join(name);
        std::fs::write(&p, "x").unwrap();
        set_mode(&p, mode).unwrap();
        p
    }

    #[test]
    fn private_file_in_private_dir_passes() {
        let d = dir();
        let p = file(d.path(), "a", 0o600);
        check_trusted_file(&p, Purpose::Config).unwrap();
        let p = file(d.path(), "b", 0o644);
        check_trusted_file(&p, Purpose::Config).unwrap();
    }

    #[test]
    fn writable_file_is_refused_with_the_fix() {
        let d = dir();
        for mode in [0o666, 0o620, 0o602] {
            let p = file(d.path(), &format!("f{mode:o}"), mode);
            let e = check_trusted_file(&p, Purpose::Config).unwrap_err();
            assert!(matches!(e, FileProblem::Writable { dir: false, .. }), "{e}");
            let s = e.to_string();
            assert!(s.contains(&format!("chmod go-w {}", p.display())), "{s}");
        }
    }

    #[test]
    fn writable_directory_is_refused_sticky_tmp_is_not() {
        let d = dir();
        let p = file(d.path(), "a", 0o600);
        set_mode(d.path(), 0o777).unwrap();
        let e = check_trusted_file(&p, Purpose::Config).unwrap_err();
        assert_eq!(e.path(), d.path(), "{e}");
        assert!(e.to_string().contains("a directory on the way"), "{e}");
        // Sticky and root-owned (as /tmp is) passes as an ancestor when we are root; not as
        // the store's own directory.
        set_mode(d.path(), 0o1777).unwrap();
        if nix::unistd::geteuid().is_root() {
            check_trusted_file(&p, Purpose::Config).unwrap();
        }
        assert!(check_trusted_file(&p, Purpose::Store).is_err());
        assert!(check_trusted_file(d.path(), Purpose::StoreDir).is_err());
        set_mode(d.path(), 0o700).unwrap();
    }

    #[test]
    fn symlink_is_followed_to_a_file_that_must_pass() {
        let d = dir();
        let bad = file(d.path(), "bad", 0o666);
        let good = file(d.path(), "good", 0o600);
        let to_bad = d.path().join("to-bad");
        let to_good = d.path().join("to-good");
        std::os::unix::fs::symlink(&bad, &to_bad).unwrap();
        std::os::unix::fs::symlink(&good, &to_good).unwrap();
        check_trusted_file(&to_good, Purpose::Config).unwrap();
        let e = check_trusted_file(&to_bad, Purpose::Config).unwrap_err();
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        // A target in an open directory is refused even when the link's own directory is
        // private.
        let open = dir();
        let there = file(open.path(), "c", 0o600);
        set_mode(open.path(), 0o777).unwrap();
        let to_open = d.path().join("to-open");
        std::os::unix::fs::symlink(&there, &to_open).unwrap();
        let e = check_trusted_file(&to_open, Purpose::Config).unwrap_err();
        assert_eq!(e.path(), open.path(), "{e}");
        set_mode(open.path(), 0o700).unwrap();
    }

    #[test]
    fn not_a_regular_file() {
        let d = dir();
        let e = check_trusted_file(d.path(), Purpose::Config).unwrap_err();
        assert!(matches!(e, FileProblem::WrongType { .. }), "{e}");
        let e = check_trusted_file(Path::new("/dev/null"), Purpose::Config).unwrap_err();
        assert!(matches!(e, FileProblem::WrongType { .. }), "{e}");
        let p = file(d.path(), "f", 0o600);
        let e = check_trusted_file(&p, Purpose::StoreDir).unwrap_err();
        assert!(e.to_string().contains("is not a directory"), "{e}");
    }

    #[test]
    fn secrets_must_not_be_world_readable() {
        let d = dir();
        let p = file(d.path(), "s", 0o644);
        let e = check_trusted_file(&p, Purpose::SecretFile).unwrap_err();
        assert!(e.to_string().contains("chmod o-rwx"), "{e}");
        check_trusted_file(&p, Purpose::Config).unwrap();
        let p = file(d.path(), "t", 0o640);
        check_trusted_file(&p, Purpose::KeyFile).unwrap();
    }

    #[test]
    fn foreign_owner_is_refused_when_root() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let d = dir();
        let p = file(d.path(), "o", 0o600);
        std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
        let e = check_trusted_file(&p, Purpose::Config).unwrap_err();
        assert!(matches!(e, FileProblem::Owner { uid: 65534, .. }), "{e}");
        assert!(e.to_string().contains("chown root"), "{e}");
    }

    #[test]
    fn store_checks_directory_and_side_files() {
        let d = dir();
        let db = d.path().join("mfa.db");
        assert!(check_store(&db).unwrap_err().is_missing());
        file(d.path(), "mfa.db", 0o600);
        check_store(&db).unwrap();
        let wal = file(d.path(), "mfa.db-wal", 0o666);
        let e = check_store(&db).unwrap_err();
        assert_eq!(e.path(), wal, "{e}");
        set_mode(&wal, 0o600).unwrap();
        set_mode(d.path(), 0o777).unwrap();
        let e = check_store(&db).unwrap_err();
        assert_eq!(e.path(), d.path(), "{e}");
        set_mode(d.path(), 0o700).unwrap();
    }
}
