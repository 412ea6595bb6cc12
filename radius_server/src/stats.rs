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
    /// When each kind of drop was last logged; per configured client entry for a drop that
    /// names one ([`Stats::count_drop_from`]).
    last_warned: Mutex<HashMap<(DropReason, Option<String>), Instant>>,
}

/// Entries of `last_warned` past which it is emptied: the client names it keys on come from
/// the configuration, but reloads can bring new ones without end.
const WARNED_KEYS: usize = 4096;

impl Stats {
    /// Counts a drop; returns true when a warning should be logged (at most one per kind per
    /// minute, so a flood cannot flood the log too).
    pub fn count_drop(&self, why: DropReason) -> bool {
        self.count_drop_from(why, None)
    }

    /// [`Stats::count_drop`] for a drop of a configured client's packet: at most one
    /// warning per kind per minute for each client entry. A warning names the entry to
    /// change (a gateway that sends no Message-Authenticator: issue 21), so a second gateway
    /// with the same problem gets its own line, not only a count; the entries are as many
    /// as the configuration has, so this bounds the log as well.
    pub fn count_drop_from(&self, why: DropReason, client: Option<&str>) -> bool {
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
        let key = (why, client.map(str::to_owned));
        match g.get(&key) {
            Some(t) if now.duration_since(*t) < Duration::from_secs(60) => false,
            _ => {
                if g.len() >= WARNED_KEYS {
                    g.clear();
                }
                g.insert(key, now);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 21: two gateways without Message-Authenticator each get the line naming their
    /// entry within the same minute; one gateway's repeats are counted, not logged.
    #[test]
    fn warnings_are_limited_per_kind_and_per_client_entry() {
        let s = Stats::default();
        let missing = DropReason::MissingMessageAuthenticator;
        assert!(s.count_drop_from(missing, Some("ocserv")));
        assert!(!s.count_drop_from(missing, Some("ocserv")));
        assert!(s.count_drop_from(missing, Some("openvpn")));
        assert!(!s.count_drop_from(missing, Some("openvpn")));
        // Another kind of the same entry has its own minute; drops naming no entry share one.
        assert!(s.count_drop_from(DropReason::BadAuthenticator, Some("ocserv")));
        assert!(s.count_drop(DropReason::UnknownClient));
        assert!(!s.count_drop(DropReason::UnknownClient));
        assert!(!s.count_drop_from(DropReason::Duplicate, Some("ocserv")));
        assert_eq!(s.dropped(missing), 4);
        assert_eq!(s.dropped(DropReason::UnknownClient), 2);
    }
}
