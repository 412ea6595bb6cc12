//! Where audit events go after their transaction committed: syslog, and now and then a
//! prune of the stored trail. The events themselves are the model's [`AuditEvent`].

use std::sync::Mutex;

pub use mfa_model::AuditEvent;

use crate::store::Store;

/// What happens to one operation's committed events besides the store. A trait so that a
/// front end (or a test) can send them elsewhere without touching the login path.
pub trait AuditSink: Send + Sync {
    /// Called once per operation (a RADIUS batch is one), with every event it committed.
    fn committed(&self, store: &dyn Store, events: &[AuditEvent]);
    /// Whether `committed` wants every event; when not, callers may pass only the first
    /// (its time), which spares a busy batch a copy of each.
    fn wants_events(&self) -> bool;
    /// A problem worth an administrator's attention that is not an event.
    fn warning(&self, msg: &str);
}

/// syslog where configured, plus pruning: about one operation in 512 (not one event: a
/// batch is one operation) deletes events older than `retention`, the records of names
/// that only ever appeared (never enrolled, never let in) first seen before then, and
/// decided sign-in requests older than a day, so no front end or cron job is needed to keep
/// the trail, the report and the push requests bounded.
#[derive(Debug)]
pub struct StandardSink {
    syslog: Option<Syslog>,
    retention_secs: i64,
}

impl StandardSink {
    pub fn new(syslog: Option<Syslog>, retention_secs: i64) -> Self {
        Self {
            syslog,
            retention_secs,
        }
    }
}

impl AuditSink for StandardSink {
    fn committed(&self, store: &dyn Store, events: &[AuditEvent]) {
        if let Some(s) = &self.syslog {
            for ev in events {
                s.info(&ev.line());
            }
        }
        let mut b = [0u8; 2];
        if let Some(ev) = events.first()
            && getrandom::fill(&mut b).is_ok()
            && u16::from_le_bytes(b) % 512 == 0
        {
            let before = ev.time.saturating_sub(self.retention_secs);
            if let Err(e) = store.prune_audit(before) {
                self.warning(&format!("audit pruning failed: {e}"));
            }
            if let Err(e) = store.prune_unenrolled(before) {
                self.warning(&format!("pruning records that never enrolled failed: {e}"));
            }
            // Decided sign-in requests are kept a day (the audit trail keeps their events).
            let requests = ev.time.saturating_sub(crate::push::KEEP_REQUESTS_SECS);
            if let Err(e) = store.prune_push(requests) {
                self.warning(&format!("pruning sign-in requests failed: {e}"));
            }
        }
    }

    fn wants_events(&self) -> bool {
        self.syslog.is_some()
    }

    fn warning(&self, msg: &str) {
        if let Some(s) = &self.syslog {
            s.warning(msg);
        }
    }
}

type Logger = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

/// A syslog connection (auth facility). Where no syslog daemon listens, logging is skipped:
/// the decision is still stored and the caller is not held up.
pub struct Syslog(Mutex<Option<Logger>>);

impl std::fmt::Debug for Syslog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Syslog")
    }
}

impl Syslog {
    pub fn open(process: &str) -> Self {
        let fmt = syslog::Formatter3164 {
            facility: syslog::Facility::LOG_AUTH,
            hostname: None,
            process: process.into(),
            pid: std::process::id(),
        };
        Self(Mutex::new(syslog::unix(fmt).ok()))
    }

    /// Sends through the connection, if there is one; a lost message never holds up a login.
    fn send(&self, f: impl FnOnce(&mut Logger) -> syslog::Result<()>) {
        if let Ok(mut g) = self.0.lock()
            && let Some(l) = g.as_mut()
        {
            let _ = f(l);
        }
    }

    pub fn info(&self, msg: &str) {
        self.send(|l| l.info(msg));
    }

    pub fn warning(&self, msg: &str) {
        self.send(|l| l.warning(msg));
    }

    pub fn err(&self, msg: &str) {
        self.send(|l| l.err(msg));
    }
}
