//! The queue of logins a PAM host in remote mode let in while no server answered
//! (`[remote] offline = "trusted"`, issue 24): one line per login in a root-only 0600 file,
//! appended before the login is let in (a login that cannot be queued is not let in), and
//! written to syslog, auth facility, once a server answers again; the lines reported move to
//! `<queue>.reported` on the host, so the host's own record is kept.
//!
//! The wire format has no attribute for them yet: the servers learn of them from the host's
//! syslog (forwarded as the site forwards auth logs), not over RADIUS.
//!
//! The files are opened without following a symbolic link and refused unless they are
//! regular files of root's that nobody else may read or write, as the module's other files;
//! two logins at once take turns under an exclusive lock on the queue.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use mfa_core::ClientAddr;

use crate::flow::Log;

/// One login let in offline, as its queue line says it.
pub struct Entry<'a> {
    pub time: i64,
    pub user: &'a str,
    pub service: &'a str,
    pub client: ClientAddr,
    /// The policy's reason ([`mfa_core::Reason::code`]).
    pub reason: &'a str,
    /// This host's NAS-Identifier.
    pub host: &'a str,
}

impl fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Quoted with `{:?}`, so no name can start a line of its own.
        write!(
            f,
            "time={} host={:?} user={:?} service={:?} client={} reason={}",
            self.time, self.host, self.user, self.service, self.client, self.reason
        )
    }
}

/// Why a queue file was not used.
#[derive(Debug)]
pub enum QueueError {
    Io(PathBuf, io::Error),
    /// Not a regular file of root's with mode 0600 (or stricter).
    Unsafe(PathBuf, String),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            QueueError::Unsafe(p, why) => write!(
                f,
                "{}: {why} (it must be a regular file of root's, mode 0600, not a symbolic link)",
                p.display()
            ),
        }
    }
}

/// Opens (creating, 0600) `path` for reading and appending; refuses a symbolic link, another
/// owner than root, or a mode that lets anyone else in. Its directory is made (0700) where
/// missing.
fn open(path: &Path) -> Result<File, QueueError> {
    let io = |e| QueueError::Io(path.to_path_buf(), e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    checked(path, file)
}

/// `file` (opened from `path` without following a link) where it is a regular file of
/// root's that nobody else may read or write.
fn checked(path: &Path, file: File) -> Result<File, QueueError> {
    let io = |e| QueueError::Io(path.to_path_buf(), e);
    let m = file.metadata().map_err(io)?;
    let bad = |why: String| Err(QueueError::Unsafe(path.to_path_buf(), why));
    if !m.file_type().is_file() {
        return bad("not a regular file".into());
    }
    if m.uid() != 0 {
        return bad(format!("owned by uid {}", m.uid()));
    }
    if m.mode() & 0o077 != 0 {
        return bad(format!("mode {:04o}", m.mode() & 0o7777));
    }
    // And no directory on its way that someone else could swap it in, as for the module's
    // other files.
    mfa_config::files::check_trusted_file(path, mfa_config::files::Purpose::PamHostFile)
        .map_err(|p| QueueError::Unsafe(path.to_path_buf(), p.to_string()))?;
    Ok(file)
}

/// Appends `entry` to the queue at `path`, durably, before the login it records is let in.
pub fn queue(path: &Path, entry: &Entry<'_>) -> Result<(), QueueError> {
    let io = |e| QueueError::Io(path.to_path_buf(), e);
    let mut f = open(path)?;
    f.lock().map_err(io)?;
    f.write_all(format!("{entry}\n").as_bytes()).map_err(io)?;
    f.sync_data().map_err(io)
}

/// The path the reported lines move to.
pub fn reported_path(queue: &Path) -> PathBuf {
    sibling(queue, ".reported")
}

/// A server answered: every queued login goes to syslog, then to `<queue>.reported`, and
/// the queue is emptied. Failures are logged; they never change the login that found the
/// server back (its decision is the server's).
pub fn report(path: &Path, log: &dyn Log) {
    if !path.exists() {
        return;
    }
    if let Err(e) = report_queue(path, log) {
        log.error(&format!(
            "cannot report the logins let in while no RADIUS server answered: {e}"
        ));
    }
}

fn report_queue(path: &Path, log: &dyn Log) -> Result<(), QueueError> {
    let io = |e| QueueError::Io(path.to_path_buf(), e);
    let mut f = open(path)?;
    f.lock().map_err(io)?;
    let mut text = String::new();
    f.rewind().map_err(io)?;
    f.read_to_string(&mut text).map_err(io)?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Ok(());
    }
    let done = reported_path(path);
    let mut r = open(&done)?;
    r.write_all(text.as_bytes())
        .and_then(|()| r.sync_data())
        .map_err(|e| QueueError::Io(done.clone(), e))?;
    for l in &lines {
        log.error(&format!(
            "OFFLINE ALLOW REPORTED (a RADIUS server answers again): {l}"
        ));
    }
    f.set_len(0).map_err(io)?;
    f.sync_data().map_err(io)
}

/// What became of a break-glass code typed while no server answered.
#[derive(Debug, PartialEq, Eq)]
pub enum BreakGlass {
    /// It matched, and is gone from the file: `left` unused codes remain.
    Used { left: usize },
    /// It matched no unused code.
    NoMatch,
}

/// Why the break-glass file could not be used.
#[derive(Debug)]
pub enum BreakGlassError {
    File(QueueError),
    /// A line this release cannot read (the whole file is refused).
    Unreadable(PathBuf, String),
}

impl fmt::Display for BreakGlassError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakGlassError::File(e) => write!(f, "{e}"),
            BreakGlassError::Unreadable(p, why) => write!(f, "{}: {why}", p.display()),
        }
    }
}

impl From<QueueError> for BreakGlassError {
    fn from(e: QueueError) -> Self {
        BreakGlassError::File(e)
    }
}

/// Checks `code` against the break-glass file at `path` and, where it matches, removes its
/// line: the rest is written to a temporary file that replaces the old one by rename, under
/// an exclusive lock on `<path>.lock`, so two logins cannot spend one code. The file must be
/// a regular file of root's, mode 0600 or stricter, not a symbolic link.
pub fn take_breakglass(path: &Path, code: &str) -> Result<BreakGlass, BreakGlassError> {
    let io = |e| BreakGlassError::File(QueueError::Io(path.to_path_buf(), e));
    let lock = open(&sibling(path, ".lock"))?;
    lock.lock().map_err(io)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let mut file = checked(path, file)?;
    let mut text = zeroize::Zeroizing::new(String::new());
    file.read_to_string(&mut text).map_err(io)?;
    let rest = mfa_core::breakglass::take(&text, code)
        .map_err(|why| BreakGlassError::Unreadable(path.to_path_buf(), why))?;
    let Some(rest) = rest else {
        return Ok(BreakGlass::NoMatch);
    };
    let tmp = sibling(path, ".tmp");
    // A temporary file left by a crash is ours to replace; a link there is not followed.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut t = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(io)?;
    t.write_all(rest.as_bytes())
        .and_then(|()| t.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(BreakGlass::Used {
        left: mfa_core::breakglass::count(&rest),
    })
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Lines(RefCell<Vec<String>>);

    impl Log for Lines {
        fn error(&self, msg: &str) {
            self.0.borrow_mut().push(msg.into());
        }
        fn debug(&self, _msg: &str) {}
    }

    fn entry() -> Entry<'static> {
        Entry {
            time: 1,
            user: "alice",
            service: "sshd",
            client: ClientAddr::from_rhost(Some("10.1.2.3")),
            reason: "trusted_network",
            host: "web1",
        }
    }

    /// Queued lines are reported once, moved to `.reported`, and the queue is left empty.
    #[test]
    fn queued_logins_are_reported_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("sub/queue");
        queue(&q, &entry()).unwrap();
        let m = std::fs::metadata(&q).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        let log = Lines::default();
        report(&q, &log);
        let said = log.0.borrow().clone();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("user=\"alice\"") && said[0].contains("10.1.2.3"));
        assert_eq!(std::fs::read_to_string(&q).unwrap(), "");
        assert!(
            std::fs::read_to_string(reported_path(&q))
                .unwrap()
                .contains("reason=trusted_network")
        );
        report(&q, &log);
        assert_eq!(log.0.borrow().len(), 1);
    }

    /// A symbolic link or a file others may read is refused, and nothing is written.
    #[test]
    fn unsafe_queue_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(queue(&link, &entry()).is_err());
        let open_file = dir.path().join("open");
        std::fs::write(&open_file, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            queue(&open_file, &entry()),
            Err(QueueError::Unsafe(..))
        ));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "");
        assert_eq!(std::fs::read_to_string(&open_file).unwrap(), "");
    }

    /// A break-glass code works once; the file stays 0600; a link or a loose mode is refused.
    #[test]
    fn a_breakglass_code_works_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bg");
        let (codes, text) = mfa_core::breakglass::issue("web1", 2, 1_800_000_000).unwrap();
        std::fs::write(&f, &text).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            take_breakglass(&f, &codes[0]).unwrap(),
            BreakGlass::Used { left: 1 }
        );
        assert_eq!(take_breakglass(&f, &codes[0]).unwrap(), BreakGlass::NoMatch);
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(take_breakglass(&link, &codes[1]).is_err());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(take_breakglass(&f, &codes[1]).is_err());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            take_breakglass(&f, &codes[1]).unwrap(),
            BreakGlass::Used { left: 0 }
        );
    }
}
