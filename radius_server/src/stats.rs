//! Counters for what was dropped and answered. Dropped packets get no reply (RFC 2865: an
//! unauthenticated peer learns nothing), so these counters and the rate-limited warnings are
//! how an administrator finds a wrong shared secret.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why a packet (or a RadSec connection) got no reply: the `cause` label of
/// `mfa_radius_dropped` and the `dropped_*` figures of the SIGUSR1 summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    Malformed,
    UnknownClient,
    BadAuthenticator,
    MissingMessageAuthenticator,
    UnsupportedCode,
    Duplicate,
    Overloaded,
    /// RadSec: a TLS handshake refused (a certificate that does not chain to ca_file) or
    /// not finished in time.
    TlsHandshake,
}

impl DropReason {
    pub const ALL: [DropReason; 8] = [
        DropReason::Malformed,
        DropReason::UnknownClient,
        DropReason::BadAuthenticator,
        DropReason::MissingMessageAuthenticator,
        DropReason::UnsupportedCode,
        DropReason::Duplicate,
        DropReason::Overloaded,
        DropReason::TlsHandshake,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnknownClient => "unknown_client",
            DropReason::BadAuthenticator => "bad_authenticator",
            DropReason::MissingMessageAuthenticator => "missing_message_authenticator",
            DropReason::UnsupportedCode => "unsupported_code",
            DropReason::Duplicate => "duplicate",
            DropReason::Overloaded => "overloaded",
            DropReason::TlsHandshake => "tls_handshake",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub received: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub challenged: AtomicU64,
    pub status_server: AtomicU64,
    /// Accounting-Requests recorded (where they name a user) and answered.
    pub accounting: AtomicU64,
    pub resent: AtomicU64,
    dropped: [AtomicU64; 8],
    last_warned: Mutex<HashMap<DropReason, Instant>>,
}

impl Stats {
    /// Counts a drop; returns true when a warning should be logged (at most one per kind per
    /// minute, so a flood cannot flood the log too).
    pub fn count_drop(&self, why: DropReason) -> bool {
        if let Some(c) = self.dropped.get(why.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if why == DropReason::Duplicate {
            return false;
        }
        let now = Instant::now();
        let Ok(mut g) = self.last_warned.lock() else {
            return false;
        };
        match g.get(&why) {
            Some(t) if now.duration_since(*t) < Duration::from_secs(60) => false,
            _ => {
                g.insert(why, now);
                true
            }
        }
    }

    pub fn dropped(&self, why: DropReason) -> u64 {
        self.dropped
            .get(why.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn summary(&self) -> String {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut s = format!(
            "stats received={} accept={} reject={} challenge={} status_server={} accounting={} resent={}",
            l(&self.received),
            l(&self.accepted),
            l(&self.rejected),
            l(&self.challenged),
            l(&self.status_server),
            l(&self.accounting),
            l(&self.resent),
        );
        for d in DropReason::ALL {
            s.push_str(&format!(" dropped_{}={}", d.name(), self.dropped(d)));
        }
        s
    }
}
