//! The store's connections: the file checked and created private, WAL mode, a pool of idle
//! connections, and the one deferred-commit connection the daemon's writer uses.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use mfa_config::files::{self, FileProblem, Purpose};
use mfa_store::{Abort, OpenMode, StoreError};
use rusqlite::{Connection, OpenFlags};

use crate::error::{db, io_error, sqlite_error};
use crate::schema::migrate;

pub struct SqliteStore {
    pub(crate) path: PathBuf,
    pub(crate) busy_timeout: Duration,
    /// Idle connections; one per concurrent caller, opened on demand.
    pub(crate) pool: Mutex<Vec<Connection>>,
    /// The one connection that commits without fsync (`synchronous=NORMAL`), kept apart so
    /// no other caller ever gets it from the pool.
    pub(crate) deferred: Mutex<Option<Connection>>,
    /// The directory entry of the WAL file has been made durable (first `sync`).
    pub(crate) dir_synced: std::sync::atomic::AtomicBool,
    /// Set once the deferred-commit connection exists: checkpoints are driven by its caller
    /// (the daemon's housekeeping thread), so no connection of this process checkpoints on
    /// its own. SQLite's automatic checkpoint runs in the committing thread: a pruning or an
    /// admin call committed on the daemon's writer thread would hold its batch behind a copy
    /// of the WAL and two fsyncs.
    pub(crate) driven_checkpoints: std::sync::atomic::AtomicBool,
    /// This process committed a decision that consumed nothing without syncing it
    /// (`Store::transact_light`): closing, it leaves a longer WAL (`LIGHT_LEAVE_WAL_BYTES`)
    /// rather than pay a checkpoint's fsyncs before the login it made returns.
    pub(crate) relaxed: std::sync::atomic::AtomicBool,
    /// The push wake-up socket beside the database (`wake.rs`).
    pub(crate) wake: crate::wake::Wake,
}

/// A WAL up to this long (about nine PAM logins) is left for the next process when the
/// store closes; a longer one is checkpointed into the database and removed.
///
/// The last connection to close checkpoints the WAL and removes it (SQLite's default): for
/// the PAM module on a host without the daemon, every login then created the WAL (a header
/// fsync and a directory fsync), and at its end copied it back (two more fsyncs) and
/// unlinked it: 4 of its 5 fsyncs and most of its cost over pam_permit (docs/BENCHMARKS.md,
/// PAM). Leaving a short WAL costs the next process a read of it (the WAL index is rebuilt
/// from it), so past this length the closing process checkpoints as before and the log
/// starts over. Never leaving it (an earlier version) let the WAL grow without end, and
/// every login read all of it.
pub(crate) const LEAVE_WAL_BYTES: u64 = 32 * (4096 + 24) + 32;

/// The WAL a process that only let in logins consuming nothing leaves (about 36 such
/// logins): the checkpoint's two fsyncs fall to the next login that consumes something,
/// which syncs anyway, or to one trusted login in about 36 where there is none (issue 25).
pub(crate) const LIGHT_LEAVE_WAL_BYTES: u64 = 4 * LEAVE_WAL_BYTES;

impl Drop for SqliteStore {
    fn drop(&mut self) {
        let leave = if *self.relaxed.get_mut() {
            LIGHT_LEAVE_WAL_BYTES
        } else {
            LEAVE_WAL_BYTES
        };
        let short = fs::metadata(self.wal_path()).is_ok_and(|m| m.len() <= leave);
        if !short {
            return;
        }
        let flag = rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE;
        if let Ok(pool) = self.pool.get_mut() {
            for c in pool.iter() {
                let _ = c.set_db_config(flag, true);
            }
        }
        if let Ok(Some(c)) = self.deferred.get_mut().map(|d| d.as_ref()) {
            let _ = c.set_db_config(flag, true);
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// The database file is created 0600 and its directory 0700 before SQLite touches them;
/// SQLite gives the -wal and -shm files the database file's mode.
pub(crate) fn create_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_error(e, dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error(e, dir))?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(io_error(e, path))
            }
        })
}

impl SqliteStore {
    pub fn open(path: &Path, mode: OpenMode, busy_timeout: Duration) -> Result<Self, StoreError> {
        // Not `path.exists()`: a directory this user cannot search makes that false, and a
        // screen locker running as the user would log "does not exist" for a store that is
        // only root's.
        match fs::metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if mode == OpenMode::Existing {
                    return Err(StoreError::Missing {
                        path: path.to_path_buf(),
                    });
                }
                create_file(path)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(StoreError::File(FileProblem::Denied {
                    path: path.to_path_buf(),
                    purpose: Purpose::Store,
                }));
            }
            Err(e) => return Err(io_error(e, path)),
        }
        // Nobody but root (or the caller) may be able to change the decisions' ground truth.
        files::check_store(path).map_err(StoreError::File)?;
        let store = Self {
            path: path.to_path_buf(),
            busy_timeout,
            pool: Mutex::new(Vec::new()),
            deferred: Mutex::new(None),
            driven_checkpoints: std::sync::atomic::AtomicBool::new(false),
            dir_synced: std::sync::atomic::AtomicBool::new(false),
            relaxed: std::sync::atomic::AtomicBool::new(false),
            wake: crate::wake::Wake::new(path),
        };
        let conn = store.connect()?;
        migrate(&conn)?;
        store.put_back(conn);
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn connect(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sqlite_error(&format!("opening {}", self.path.display()), e))?;
        conn.busy_timeout(self.busy_timeout).map_err(db)?;
        // WAL: readers never block the writer. synchronous=FULL: a committed decision
        // survives power loss, not just a killed process.
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Engine {
                context: self.path.display().to_string(),
                source: format!("cannot switch to WAL mode (it stays {mode:?})").into(),
            });
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(db)?;
        if self
            .driven_checkpoints
            .load(std::sync::atomic::Ordering::Acquire)
        {
            conn.execute_batch("PRAGMA wal_autocheckpoint=0")
                .map_err(db)?;
        }
        // Whether the last connection to close checkpoints the WAL: see `LEAVE_WAL_BYTES`.
        // Where the daemon holds the store open, no PAM connection is the last one, and the
        // daemon's writer keeps the WAL bounded.
        // The bundled SQLite has STAT4, which re-compiles a statement whenever a parameter
        // compared with an indexed column changes (every user name): that was half the CPU
        // of a login. Our queries have one sensible plan; keep it.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(db)?;
        Ok(conn)
    }

    /// An idle connection of the pool, or a new one.
    pub(crate) fn take_conn(&self) -> Result<Connection, StoreError> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        match pooled {
            Some(c) => Ok(c),
            None => self.connect(),
        }
    }

    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.take_conn()?;
        let out = f(&mut conn);
        self.put_back(conn);
        out
    }

    /// Runs `f` on the deferred-commit connection (see `Store::transact_deferred`).
    pub(crate) fn with_deferred_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.deferred.lock().map_err(|_| {
            StoreError::Aborted(Abort::Bug("the deferred-commit connection is poisoned"))
        })?;
        let conn = match &mut *slot {
            Some(c) => c,
            None => {
                let c = self.connect()?;
                // WAL with NORMAL: a commit writes the WAL but does not fsync it; `sync`
                // does, before anything is acknowledged. Checkpoints still sync.
                // No automatic checkpoint either: copying the WAL into the database (and its
                // fsyncs) would stall every batch behind it. The caller drives `checkpoint`.
                // An 8 MiB page cache (the default is 2): this connection touches every
                // user's page in turn, and re-reading them cost a tenth of its time.
                c.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=-8192").map_err(db)?;
                // From now on every connection leaves checkpoints to the caller; the idle
                // ones opened before are closed, so none is handed out again.
                self.driven_checkpoints
                    .store(true, std::sync::atomic::Ordering::Release);
                if let Ok(mut p) = self.pool.lock() {
                    p.clear();
                }
                slot.insert(c)
            }
        };
        f(conn)
    }

    pub(crate) fn put_back(&self, conn: Connection) {
        if let Ok(mut p) = self.pool.lock()
            && p.len() < 16
        {
            p.push(conn);
        }
    }

    /// Integrity check of the whole file (`mfactl` and the crash test use it).
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.with_conn(|c| {
            c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(db)
        })
    }
}
