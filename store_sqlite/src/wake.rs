//! SQLite's answer to PostgreSQL's `NOTIFY mfa_push`: the portal (the one sender of push
//! approval) learns of a new sign-in request within microseconds of its commit, though it is
//! written by another process (the PAM module inside sshd, mfa-radiusd, a tool).
//!
//! Why a Unix datagram socket beside the database (`<store>-push`, as SQLite's own `-wal`
//! and `-shm`), rather than the alternatives:
//! - a poll of the outbox (what the portal did: every 250 ms) costs a write transaction on
//!   the store every poll whether or not anything is waiting, and still makes a user wait
//!   up to the poll for the push (p99 257 ms, docs/BENCHMARKS.md);
//! - `PRAGMA data_version` every few milliseconds is cheap, but on a server whose
//!   mfa-radiusd commits thousands of logins a second it changes at nearly every look, so
//!   it degenerates into that poll at a few hundred reads a second, and still waits a tick;
//! - inotify on the `-wal` file fires at every write of every process too, and loses its
//!   watch whenever SQLite deletes and re-creates the file.
//!
//! The socket costs the writer one non-blocking `sendto` after the commit of a new request,
//! and the portal nothing while it sleeps in `recv`. Its rules:
//! - **Only a hint.** A datagram carries no data; the outbox stays the truth, and the portal
//!   reads it after every wake-up, spurious or not. Whoever can write to the socket can
//!   only make the portal read the outbox once more.
//! - **Who may write.** The socket is made `0600` by the portal, in the store's directory
//!   (0700 under the packaged units), so only root and the store's owner, who may write the
//!   database anyway, can wake it.
//! - **Fail safe.** A lost wake-up (no portal bound yet, a full queue, a writer in another
//!   mount namespace, a path longer than a socket address holds) costs what the old poll
//!   cost: the portal reads the outbox at the latest after `[push] outbox_poll`. Where the
//!   portal cannot bind the socket (another live portal holds it, the file is not a
//!   socket), it polls every [`PUSH_POLL`] as before and tries to bind again a minute later.
//! - **A socket left behind** by a portal that died is found stale (a probe is refused)
//!   and replaced; one another portal still listens on is left to it.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mfa_store::StoreError;
use mfa_store::push::PUSH_POLL;

/// How long after a failed bind the portal tries again.
const RETRY_BIND: Duration = Duration::from_secs(60);

/// The wake-up socket of the database at `db`: `<db>-push`.
pub fn socket_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-push");
    PathBuf::from(p)
}

enum Listener {
    /// Not asked to wait yet: nothing bound (the PAM module, the daemon, tools).
    Untried,
    Bound(UnixDatagram),
    /// Could not bind at this time: poll, and try again after [`RETRY_BIND`].
    Unavailable(Instant),
}

/// The store's end of the wake-up socket: the writers' announcement and the portal's wait.
pub(crate) struct Wake {
    path: PathBuf,
    listener: Mutex<Listener>,
}

impl Wake {
    pub(crate) fn new(db: &Path) -> Self {
        Self {
            path: socket_path(db),
            listener: Mutex::new(Listener::Untried),
        }
    }

    /// Tells a listening portal that a request was committed. Never blocks, never fails the
    /// caller: the request is stored, and the portal's poll finds it where this is lost.
    pub(crate) fn announce(&self) {
        if let Ok(s) = UnixDatagram::unbound()
            && s.set_nonblocking(true).is_ok()
        {
            let _ = s.send_to(&[], &self.path);
        }
    }

    /// Waits for an announcement, up to `timeout` (bound), or sleeps up to [`PUSH_POLL`]
    /// (not bound). The first wait binds the socket and returns at once, so that the caller
    /// reads the outbox once after the socket exists: a request committed before it is
    /// found there.
    pub(crate) fn wait(&self, timeout: Duration) -> Result<(), StoreError> {
        let mut l = self.listener.lock().map_err(|_| {
            StoreError::Aborted(mfa_store::Abort::Bug("the push wake-up socket is poisoned"))
        })?;
        let retry = match &*l {
            Listener::Untried => true,
            Listener::Unavailable(since) => since.elapsed() >= RETRY_BIND,
            Listener::Bound(_) => false,
        };
        if retry {
            *l = match bind(&self.path) {
                Ok(s) => Listener::Bound(s),
                Err(_) => Listener::Unavailable(Instant::now()),
            };
            if matches!(*l, Listener::Bound(_)) {
                return Ok(());
            }
        }
        let Listener::Bound(s) = &*l else {
            drop(l);
            std::thread::sleep(timeout.min(PUSH_POLL));
            return Ok(());
        };
        let mut buf = [0u8; 16];
        let woken = if timeout.is_zero() {
            Ok(true)
        } else {
            s.set_read_timeout(Some(timeout))
                .and_then(|()| s.recv(&mut buf))
                .map(|_| true)
                .or_else(|e| match e.kind() {
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted => {
                        Ok(false)
                    }
                    _ => Err(e),
                })
        };
        match woken {
            // One outbox read serves every announcement queued meanwhile.
            Ok(true) => {
                if s.set_nonblocking(true).is_ok() {
                    while s.recv(&mut buf).is_ok() {}
                }
                if s.set_nonblocking(false).is_err() {
                    *l = Listener::Unavailable(Instant::now());
                }
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(_) => {
                // A socket that broke: poll from now on, and bind again later.
                *l = Listener::Unavailable(Instant::now());
                Ok(())
            }
        }
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        if let Ok(Listener::Bound(_)) = self.listener.get_mut().map(|l| &*l) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Binds the socket at `path`, 0600; replaces a socket left there by a portal that died
/// (a probe of it is refused), never a live one nor a file that is no socket.
fn bind(path: &Path) -> std::io::Result<UnixDatagram> {
    let s = match UnixDatagram::bind(path) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::AddrInUse => {
            let meta = fs::symlink_metadata(path)?;
            if !meta.file_type().is_socket() {
                return Err(e);
            }
            let probe = UnixDatagram::unbound()?;
            probe.set_nonblocking(true)?;
            match probe.send_to(&[], path) {
                Err(p) if p.kind() == ErrorKind::ConnectionRefused => {
                    fs::remove_file(path)?;
                    UnixDatagram::bind(path)?
                }
                _ => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    if let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(0o600)) {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::os::unix::net::UnixDatagram;
    use std::time::{Duration, Instant};

    use mfa_model::{UserName, UserRecord};
    use mfa_store::conformance::push::request;
    use mfa_store::conformance::{params, put};
    use mfa_store::{OpenMode, Store};

    use super::socket_path;
    use crate::conn::SqliteStore;

    fn open(path: &std::path::Path) -> SqliteStore {
        SqliteStore::open(path, OpenMode::Create, Duration::from_secs(5)).unwrap()
    }

    /// Waits on `portal` in a thread; returns how long it waited.
    fn waiting(portal: std::sync::Arc<SqliteStore>) -> std::thread::JoinHandle<Duration> {
        std::thread::spawn(move || {
            let t = Instant::now();
            portal.wait_for_push(Duration::from_secs(60)).unwrap();
            t.elapsed()
        })
    }

    /// Issue 25: a request committed through another connection (another process: the PAM
    /// module, mfa-radiusd) ends the portal's wait at once, though its fallback poll is a
    /// minute away; light or not. The socket is the portal's, 0600, and goes with it.
    #[test]
    fn a_committed_request_wakes_the_portal_waiting_on_another_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfa.db");
        let portal = std::sync::Arc::new(open(&path));
        let writer = open(&path);
        let alice = UserName::parse("alice").unwrap();
        put(&writer, &UserRecord::new(&alice, params(), 1), vec![]);
        // The first wait binds the socket and returns, for one read of the outbox.
        portal.wait_for_push(Duration::from_secs(60)).unwrap();
        let sock = socket_path(&path);
        let meta = std::fs::symlink_metadata(&sock).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        for (i, light) in [(1u8, false), (2, true)] {
            let w = waiting(portal.clone());
            std::thread::sleep(Duration::from_millis(100));
            let r = request(&alice, i, &format!("sshd{i}"), 1);
            let f = &mut |_: &mut Option<UserRecord>, tx: &mut dyn mfa_store::PushTx| {
                tx.insert_request(&r)?;
                Ok(vec![])
            };
            if light {
                writer
                    .transact_push_light(&alice, f, true, &|| true)
                    .unwrap();
            } else {
                writer.transact_push(&alice, f).unwrap();
            }
            let waited = w.join().unwrap();
            assert!(
                waited < Duration::from_secs(30),
                "request {i}: the wait ran to its fallback ({waited:?})"
            );
        }
        // The light transaction left its connection at synchronous=FULL for the next caller.
        let level: i64 = writer
            .with_conn(|c| {
                c.query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .map_err(crate::error::db)
            })
            .unwrap();
        assert_eq!(level, 2);
        drop(portal);
        assert!(!sock.exists(), "the socket is removed with the store");
    }

    /// A socket another portal listens on is left to it (that portal is woken); one left
    /// by a portal that died is replaced; a file that is no socket is never removed.
    #[test]
    fn a_live_socket_is_left_alone_a_stale_one_replaced_and_no_file_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfa.db");
        let sock = socket_path(&path);
        let other = UnixDatagram::bind(&sock).unwrap();
        other.set_nonblocking(true).unwrap();
        let s = open(&path);
        s.wait_for_push(Duration::from_millis(1)).unwrap();
        let mut buf = [0u8; 4];
        while other.recv(&mut buf).is_ok() {}
        s.wake.announce();
        assert!(
            other.recv(&mut buf).is_ok(),
            "the live portal is still woken"
        );
        drop(s);
        assert!(sock.exists(), "another portal's socket stays");
        drop(other);
        let s = std::sync::Arc::new(open(&path));
        s.wait_for_push(Duration::from_secs(60)).unwrap();
        let w = waiting(s.clone());
        std::thread::sleep(Duration::from_millis(100));
        open(&path).wake.announce();
        assert!(w.join().unwrap() < Duration::from_secs(30));
        drop(s);
        std::fs::write(&sock, b"not a socket").unwrap();
        let s = open(&path);
        s.wait_for_push(Duration::from_millis(1)).unwrap();
        drop(s);
        assert_eq!(std::fs::read(&sock).unwrap(), b"not a socket");
    }
}
