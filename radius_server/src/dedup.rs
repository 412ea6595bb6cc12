//! RFC 5080 §2.2.2 duplicate detection: a retransmission (same source address and port,
//! identifier and Request Authenticator) gets the reply already sent, not a second evaluation,
//! so a gateway's retry never turns an accepted code into a replay rejection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A request's identity, packed (43 bytes): the cache holds tens of thousands of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    ip: [u8; 16],
    port: [u8; 2],
    identifier: u8,
    authenticator: [u8; 16],
    /// 0 for UDP; the RadSec connection's number over TLS, where duplicates are detected
    /// per connection (RFC 6613, which RFC 6614 builds on).
    conn: u64,
}

impl Key {
    pub fn new(from: SocketAddr, identifier: u8, authenticator: [u8; 16]) -> Self {
        let ip = match from.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        Self {
            ip,
            port: from.port().to_be_bytes(),
            identifier,
            authenticator,
            conn: 0,
        }
    }

    /// The same request on RadSec connection `conn` (0: UDP).
    pub fn on_connection(mut self, conn: u64) -> Self {
        self.conn = conn;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// First time: process it, then call [`Cache::finish`].
    New,
    /// The original is still being processed (slow PAM): drop the copy.
    InProgress,
    /// Already answered: send this again.
    Answered(Arc<[u8]>),
}

#[derive(Debug)]
enum Entry {
    InProgress,
    Answered(Arc<[u8]>),
}

/// Two generations of entries: new ones go into `current`; when it is `keep` old or holds
/// half the capacity, it becomes `previous` and the old `previous` is dropped whole. So an
/// entry is kept at least `keep` (unless the cache is crowded) and at most twice that, and
/// there is no per-entry time or expiry queue to store.
#[derive(Debug)]
pub struct Cache {
    current: HashMap<Key, Entry>,
    previous: HashMap<Key, Entry>,
    started: Option<Instant>,
    keep: Duration,
    capacity: usize,
}

impl Cache {
    pub fn new(keep: Duration, capacity: usize) -> Self {
        Self {
            current: HashMap::new(),
            previous: HashMap::new(),
            started: None,
            keep,
            capacity: capacity.max(2),
        }
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn rotate(&mut self, now: Instant) {
        let age = self
            .started
            .map_or(Duration::MAX, |s| now.saturating_duration_since(s));
        if age < self.keep && self.current.len() < self.capacity / 2 {
            return;
        }
        // Reuse the old generation's allocation for the new one.
        std::mem::swap(&mut self.current, &mut self.previous);
        self.current.clear();
        if age >= self.keep.saturating_mul(2) {
            self.previous.clear();
        }
        self.started = Some(now);
    }

    pub fn begin(&mut self, key: Key, now: Instant) -> Seen {
        self.rotate(now);
        let found = self.current.get(&key).or_else(|| self.previous.get(&key));
        match found {
            Some(Entry::InProgress) => Seen::InProgress,
            Some(Entry::Answered(r)) => Seen::Answered(r.clone()),
            None => {
                self.current.insert(key, Entry::InProgress);
                Seen::New
            }
        }
    }

    /// Stores the reply for `key`; `None` (the request was dropped) forgets the key so a
    /// retransmission is evaluated afresh.
    pub fn finish(&mut self, key: Key, reply: Option<Arc<[u8]>>) {
        for generation in [&mut self.current, &mut self.previous] {
            match &reply {
                Some(r) => {
                    if let Some(slot) = generation.get_mut(&key) {
                        *slot = Entry::Answered(r.clone());
                        return;
                    }
                }
                None => {
                    generation.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u8, port: u16) -> Key {
        Key::new(SocketAddr::from(([127, 0, 0, 1], port)), id, [id; 16])
    }

    #[test]
    fn retransmission_gets_the_same_reply() {
        let mut c = Cache::new(Duration::from_secs(30), 100);
        let t = Instant::now();
        assert_eq!(c.begin(key(1, 1000), t), Seen::New);
        assert_eq!(c.begin(key(1, 1000), t), Seen::InProgress);
        c.finish(key(1, 1000), Some(Arc::from(&b"reply"[..])));
        assert_eq!(
            c.begin(key(1, 1000), t + Duration::from_secs(29)),
            Seen::Answered(Arc::from(&b"reply"[..]))
        );
        // Another port, identifier or authenticator is a new request.
        assert_eq!(c.begin(key(1, 1001), t), Seen::New);
        let mut k = key(1, 1000);
        k.authenticator[0] ^= 1;
        assert_eq!(c.begin(k, t), Seen::New);
        // Kept across one generation change, gone after two.
        assert!(matches!(
            c.begin(key(1, 1000), t + Duration::from_secs(45)),
            Seen::Answered(_)
        ));
        assert_eq!(
            c.begin(key(1, 1000), t + Duration::from_secs(76)),
            Seen::New
        );
    }

    #[test]
    fn dropped_requests_are_forgotten_and_size_is_bounded() {
        let mut c = Cache::new(Duration::from_secs(30), 10);
        let t = Instant::now();
        assert_eq!(c.begin(key(2, 1), t), Seen::New);
        c.finish(key(2, 1), None);
        assert_eq!(c.begin(key(2, 1), t), Seen::New);
        for i in 0..100u16 {
            c.begin(key(3, 100 + i), t);
            c.finish(key(3, 100 + i), Some(Arc::from(&b"r"[..])));
            assert!(c.len() <= 10);
        }
        // The most recent half of the capacity is always still there.
        for i in 95..100u16 {
            assert!(matches!(c.begin(key(3, 100 + i), t), Seen::Answered(_)));
        }
    }
}
