//! The queue of logins a PAM host in remote mode let in while no server answered
//! (`[remote] offline = "trusted"`, or a break-glass code; issue 24): one line per login in a
//! root-only 0600 file, appended before the login is let in (a login that cannot be queued
//! is not let in), each with an id drawn at that moment.
//!
//! Once a server answers again, each queued login is reported to it over RADIUS
//! ([`mfa_radius_proto::pam_host::report`]), and the server writes it to its audit trail
//! (`offline_allowed`, `breakglass_used`). A line leaves the queue only after a server
//! acknowledged its id; it then moves to `<queue>.reported` on the host, so the host's own
//! record is kept, and is written to syslog. A report sent again (the host crashed before it
//! could drop the line, or the acknowledgement was lost) makes no second row: the server
//! knows the id.
//!
//! The files are opened without following a symbolic link and refused unless they are
//! regular files of root's that nobody else may read or write, as the module's other files.
//! Every change of the queue is made under an exclusive lock on `<queue>.lock`; a report
//! replaces the queue by a temporary file and rename, so a crash leaves the old queue or the
//! new one, never half of one.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
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
    /// Drawn when the login was let in: the server knows a report sent again by it.
    pub id: [u8; 16],
}

impl Entry<'_> {
    /// An entry with a fresh random id.
    pub fn id() -> Result<[u8; 16], getrandom::Error> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)?;
        Ok(id)
    }
}

fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Quoted with `{:?}`, so no name can start a line of its own.
        write!(
            f,
            "time={} host={:?} user={:?} service={:?} client={} reason={} id={}",
            self.time,
            self.host,
            self.user,
            self.service,
            self.client,
            self.reason,
            hex(&self.id)
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
    let lock = open(&sibling(path, ".lock"))?;
    lock.lock().map_err(io)?;
    let mut f = open(path)?;
    f.write_all(format!("{entry}\n").as_bytes()).map_err(io)?;
    f.sync_data().map_err(io)
}

/// The path the reported lines move to.
pub fn reported_path(queue: &Path) -> PathBuf {
    sibling(queue, ".reported")
}

/// A queued login read back from its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub time: i64,
    pub host: String,
    pub user: String,
    pub service: String,
    pub client: ClientAddr,
    pub reason: String,
    /// The line's id; for a line of an older release, which had none, the first 16 octets
    /// of the line's SHA-256, so every report of it carries the same.
    pub id: [u8; 16],
}

/// Why a queued login was not reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReported {
    /// The server did not answer, or answered as one that does not know reports (a server
    /// of an older release): the round ends, the rest waits for the next login.
    Stop(String),
    /// This one could not be sent, or the server refused it (its log says why): kept, and
    /// the next one is tried.
    Refused(String),
}

impl fmt::Display for NotReported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReported::Stop(s) | NotReported::Refused(s) => f.write_str(s),
        }
    }
}

/// The most queued logins one login reports: each costs a round trip before the prompt.
pub const REPORT_AT_MOST: usize = 32;

/// Reads one queue line (`key=value` words, the text values quoted as Rust quotes them).
pub fn parse_line(line: &str) -> Result<Queued, String> {
    let words = words(line)?;
    let get = |k: &str| {
        words
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| format!("no {k}="))
    };
    let time = get("time")?
        .parse::<i64>()
        .map_err(|_| "time= is not a number".to_string())?;
    let client = match get("client")? {
        "local" => ClientAddr::Local,
        "unknown" => ClientAddr::Remote(None),
        ip => ClientAddr::Remote(Some(
            ip.parse()
                .map_err(|_| format!("client={ip:?} is not an address"))?,
        )),
    };
    let id = match get("id") {
        Ok(h) => unhex(h).ok_or_else(|| "id= is not 32 hex digits".to_string())?,
        Err(_) => {
            use sha2::Digest;
            let d = sha2::Sha256::digest(line.trim().as_bytes());
            let mut id = [0u8; 16];
            id.copy_from_slice(&d[..16]);
            id
        }
    };
    Ok(Queued {
        time,
        host: get("host")?.to_string(),
        user: get("user")?.to_string(),
        service: get("service")?.to_string(),
        client,
        reason: get("reason")?.to_string(),
        id,
    })
}

fn unhex(h: &str) -> Option<[u8; 16]> {
    if h.len() != 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(id)
}

/// The `key=value` words of a line; a quoted value as `{:?}` wrote it.
fn words(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = line.trim().chars().peekable();
    loop {
        while it.peek() == Some(&' ') {
            it.next();
        }
        if it.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        for c in it.by_ref() {
            if c == '=' {
                break;
            }
            if c == ' ' {
                return Err(format!("{key:?} has no value"));
            }
            key.push(c);
        }
        let mut value = String::new();
        if it.peek() == Some(&'"') {
            it.next();
            loop {
                match it.next() {
                    None => return Err(format!("the quoted {key}= does not end")),
                    Some('"') => break,
                    Some('\\') => value.push(match it.next() {
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('0') => '\0',
                        Some(c @ ('\\' | '"' | '\'')) => c,
                        Some('u') => {
                            let hex: String = it
                                .by_ref()
                                .skip_while(|c| *c == '{')
                                .take_while(|c| *c != '}')
                                .collect();
                            u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| format!("a bad \\u escape in {key}="))?
                        }
                        _ => return Err(format!("a bad escape in {key}=")),
                    }),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = it.peek() {
                if c == ' ' {
                    break;
                }
                value.push(c);
                it.next();
            }
        }
        out.push((key, value));
    }
}

/// A server answered: the queued logins are reported to it, at most [`REPORT_AT_MOST`],
/// through `send` (which returns once the server acknowledged the id, or says why not). The
/// acknowledged ones move to `<queue>.reported` and to syslog; the rest stay, for the next
/// login; the first the server does not answer (or answers as a server that does not know
/// reports) ends the round. A queue
/// another login is reporting just now is left to it. Failures are logged; they never
/// change the login that found the server back (its decision is the server's).
pub fn report(
    path: &Path,
    log: &dyn Log,
    send: &mut dyn FnMut(&Queued) -> Result<(), NotReported>,
) {
    if !path.exists() {
        return;
    }
    if let Err(e) = report_queue(path, log, send) {
        log.error(&format!(
            "cannot report the logins let in while no RADIUS server answered: {e}"
        ));
    }
}

fn report_queue(
    path: &Path,
    log: &dyn Log,
    send: &mut dyn FnMut(&Queued) -> Result<(), NotReported>,
) -> Result<(), QueueError> {
    let io = |e| QueueError::Io(path.to_path_buf(), e);
    let lock = open(&sibling(path, ".lock"))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(()),
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    let mut f = open(path)?;
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(io)?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Ok(());
    }
    let mut done: Vec<&str> = Vec::new();
    let mut kept: Vec<&str> = Vec::new();
    let mut stopped = false;
    for (n, l) in lines.iter().enumerate() {
        if stopped || done.len() >= REPORT_AT_MOST {
            kept.push(l);
            continue;
        }
        match parse_line(l) {
            Err(why) => {
                log.error(&format!(
                    "{}: line {} cannot be read ({why}); kept, not reported",
                    path.display(),
                    n + 1
                ));
                kept.push(l);
            }
            Ok(q) => match send(&q) {
                Ok(()) => done.push(l),
                Err(why) => {
                    log.error(&format!(
                        "OFFLINE ALLOW NOT REPORTED yet ({why}); kept in {} for the next login: {l}",
                        path.display()
                    ));
                    kept.push(l);
                    stopped = matches!(why, NotReported::Stop(_));
                }
            },
        }
    }
    if done.is_empty() {
        return Ok(());
    }
    let reported = reported_path(path);
    let mut r = open(&reported)?;
    let mut moved = done.join("\n");
    moved.push('\n');
    r.write_all(moved.as_bytes())
        .and_then(|()| r.sync_data())
        .map_err(|e| QueueError::Io(reported.clone(), e))?;
    let mut rest = kept.join("\n");
    if !rest.is_empty() {
        rest.push('\n');
    }
    replace(path, &rest)?;
    for l in &done {
        log.error(&format!(
            "OFFLINE ALLOW REPORTED to the RADIUS server (in its audit trail now): {l}"
        ));
    }
    Ok(())
}

/// Records what one login's first round saw of the servers in the host's view of them
/// ([`mfa_core::reachability`], read by `mfactl status`), under the same rules as the queue:
/// root's, 0600, no link, under an exclusive lock on `<path>.lock`, replaced by rename.
pub fn record_reachability(
    path: &Path,
    now: i64,
    configured: &[std::net::SocketAddr],
    asked: &[(std::net::SocketAddr, Result<(), String>)],
) -> Result<(), QueueError> {
    let io = |e| QueueError::Io(path.to_path_buf(), e);
    let lock = open(&sibling(path, ".lock"))?;
    lock.lock().map_err(io)?;
    let mut f = open(path)?;
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(io)?;
    let mut r = mfa_core::reachability::Reachability::parse(&text);
    r.record(now, configured, asked);
    replace(path, &r.render())
}

/// Replaces the file at `path` by one holding `text` (0600): a temporary file, synced,
/// renamed over it, the directory synced.
fn replace(path: &Path, text: &str) -> Result<(), QueueError> {
    let io = |e| QueueError::Io(path.to_path_buf(), e);
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
    t.write_all(text.as_bytes())
        .and_then(|()| t.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
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
    replace(path, &rest).map_err(BreakGlassError::File)?;
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
            id: [0xab; 16],
        }
    }

    /// Queued lines are reported once, each only after its acknowledgement, moved to
    /// `.reported`, and the queue is left empty.
    #[test]
    fn queued_logins_are_reported_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("sub/queue");
        queue(&q, &entry()).unwrap();
        let m = std::fs::metadata(&q).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        let log = Lines::default();
        let mut sent = Vec::new();
        report(&q, &log, &mut |e| {
            sent.push(e.clone());
            Ok(())
        });
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].user, "alice");
        assert_eq!(sent[0].id, [0xab; 16]);
        assert_eq!(
            sent[0].client,
            ClientAddr::Remote(Some("10.1.2.3".parse().unwrap()))
        );
        let said = log.0.borrow().clone();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("user=\"alice\"") && said[0].contains("10.1.2.3"));
        assert_eq!(std::fs::read_to_string(&q).unwrap(), "");
        assert_eq!(std::fs::metadata(&q).unwrap().mode() & 0o777, 0o600);
        assert!(
            std::fs::read_to_string(reported_path(&q))
                .unwrap()
                .contains("reason=trusted_network")
        );
        report(&q, &log, &mut |_| panic!("nothing is left to report"));
        assert_eq!(log.0.borrow().len(), 1);
    }

    /// A report the server did not acknowledge keeps its line, and the ones after it, for
    /// the next login; the ones before it are gone from the queue.
    #[test]
    fn unacknowledged_reports_stay_queued() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("queue");
        for (i, user) in ["a", "b", "c"].iter().enumerate() {
            let mut e = entry();
            e.user = user;
            e.id = [u8::try_from(i).unwrap(); 16];
            queue(&q, &e).unwrap();
        }
        let log = Lines::default();
        let mut tries = Vec::new();
        report(&q, &log, &mut |e| {
            tries.push(e.user.clone());
            if e.user == "b" {
                Err(NotReported::Stop("silent".into()))
            } else {
                Ok(())
            }
        });
        assert_eq!(tries, ["a", "b"]);
        let left = std::fs::read_to_string(&q).unwrap();
        assert!(!left.contains("user=\"a\""), "{left}");
        assert!(
            left.contains("user=\"b\"") && left.contains("user=\"c\""),
            "{left}"
        );
        let mut again = Vec::new();
        report(&q, &log, &mut |e| {
            again.push((e.user.clone(), e.id));
            Ok(())
        });
        assert_eq!(again, [("b".into(), [1; 16]), ("c".into(), [2; 16])]);
        assert_eq!(std::fs::read_to_string(&q).unwrap(), "");
    }

    /// A report the server refused keeps its line, and the next one is still tried.
    #[test]
    fn a_refused_report_does_not_hold_up_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("queue");
        for user in ["a", "b"] {
            let mut e = entry();
            e.user = user;
            queue(&q, &e).unwrap();
        }
        let log = Lines::default();
        let mut tries = Vec::new();
        report(&q, &log, &mut |e| {
            tries.push(e.user.clone());
            if e.user == "a" {
                Err(NotReported::Refused("no ack".into()))
            } else {
                Ok(())
            }
        });
        assert_eq!(tries, ["a", "b"]);
        let left = std::fs::read_to_string(&q).unwrap();
        assert!(
            left.contains("user=\"a\"") && !left.contains("user=\"b\""),
            "{left}"
        );
    }

    /// A line reads back as it was written, quotes and all; a line of the release before,
    /// without an id, gets one from its text, the same at every reading.
    #[test]
    fn lines_read_back() {
        let mut e = entry();
        e.service = "ssh \"d\"\\x\u{7}";
        e.client = ClientAddr::Local;
        let q = parse_line(&e.to_string()).unwrap();
        assert_eq!(q.service, e.service);
        assert_eq!(q.client, ClientAddr::Local);
        assert_eq!(q.time, 1);
        assert_eq!(q.reason, "trusted_network");
        let old =
            "time=5 host=\"web1\" user=\"bob\" service=\"sudo\" client=unknown reason=break_glass";
        let a = parse_line(old).unwrap();
        assert_eq!(a.client, ClientAddr::Remote(None));
        assert_eq!(a.id, parse_line(old).unwrap().id);
        assert_ne!(
            a.id,
            parse_line(&old.replace("time=5", "time=6")).unwrap().id
        );
        for bad in ["", "time=x host=\"a\"", "time=1 host=\"a", "time=1 id=zz"] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }

    /// The servers' reachability is kept across logins, root's 0600, and a link is refused.
    #[test]
    fn reachability_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("state/remote-servers");
        let a: std::net::SocketAddr = "127.0.0.1:1812".parse().unwrap();
        let b: std::net::SocketAddr = "127.0.0.2:1812".parse().unwrap();
        record_reachability(&f, 10, &[a, b], &[(a, Err("refused".into())), (b, Ok(()))]).unwrap();
        record_reachability(
            &f,
            20,
            &[a, b],
            &[(a, Err("silent".into())), (b, Err("x".into()))],
        )
        .unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        let r = mfa_core::reachability::Reachability::parse(&std::fs::read_to_string(&f).unwrap());
        assert_eq!(r.in_use(), None);
        assert_eq!(r.servers[1].answered, Some(10));
        assert_eq!(r.servers[1].failed, Some(20));
        assert_eq!(r.servers[0].error.as_deref(), Some("silent"));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(record_reachability(&link, 30, &[a], &[(a, Ok(()))]).is_err());
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
