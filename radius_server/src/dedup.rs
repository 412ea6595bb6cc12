//! RFC 5080 §2.2.2 duplicate detection: a retransmission (same source address and port,
//! identifier and Request Authenticator) gets the reply already sent, not a second evaluation,
//! so a gateway's retry never turns an accepted code into a replay rejection.
//!
//! A request still being processed has an in-flight entry of its own, outside the two
//! generations: a request held for a push (up to `[push] timeout`, longer than an answered
//! reply is kept) stays known however long it is held and however many replies pass
//! meanwhile, so no retransmission of it is evaluated again (which would send a second
//! push), and its reply is cached when it is answered. In-flight entries are as many as
//! the requests in flight (`admission.rs` bounds them); each is removed when its request
//! is answered or dropped.

use std::collections::{HashMap, HashSet};
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

/// Two generations of answered entries: new ones go into `current`; when it is `keep` old or
/// holds half the capacity, it becomes `previous` and the old `previous` is dropped whole. So
/// a reply is kept at least `keep` (unless the cache is crowded) and at most twice that, and
/// there is no per-entry time or expiry queue to store. Requests in flight are apart, in
/// `in_flight`, never rotated out.
#[derive(Debug)]
pub struct Cache {
    in_flight: HashSet<Key>,
    current: HashMap<Key, Arc<[u8]>>,
    previous: HashMap<Key, Arc<[u8]>>,
    started: Option<Instant>,
    keep: Duration,
    capacity: usize,
}

impl Cache {
    pub fn new(keep: Duration, capacity: usize) -> Self {
        Self {
            in_flight: HashSet::new(),
            current: HashMap::new(),
            previous: HashMap::new(),
            started: None,
            keep,
            capacity: capacity.max(2),
        }
    }

    pub fn len(&self) -> usize {
        self.in_flight.len() + self.current.len() + self.previous.len()
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
        if self.in_flight.contains(&key) {
            return Seen::InProgress;
        }
        let found = self.current.get(&key).or_else(|| self.previous.get(&key));
        match found {
            Some(r) => Seen::Answered(r.clone()),
            None => {
                self.in_flight.insert(key);
                Seen::New
            }
        }
    }

    /// Stores the reply for `key`, in flight until now; `None` (the request was dropped)
    /// forgets the key so a retransmission is evaluated afresh.
    pub fn finish(&mut self, key: Key, reply: Option<Arc<[u8]>>) {
        if !self.in_flight.remove(&key) {
            return;
        }
        if let Some(r) = reply {
            self.current.insert(key, r);
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

    /// Issue 20: a request held for a push outlives any generation (60 s and more, with
    /// thousands of replies passing meanwhile); its retransmissions are never evaluated again,
    /// and the reply it gets in the end is cached for them.
    #[test]
    fn a_request_held_long_stays_in_flight_then_its_reply_is_cached() {
        let mut c = Cache::new(Duration::from_secs(30), 10);
        let t = Instant::now();
        assert_eq!(c.begin(key(9, 9), t), Seen::New);
        for i in 0..100u16 {
            let s = t + Duration::from_secs(u64::from(i));
            assert_eq!(c.begin(key(3, 100 + i), s), Seen::New);
            c.finish(key(3, 100 + i), Some(Arc::from(&b"r"[..])));
            assert_eq!(c.begin(key(9, 9), s), Seen::InProgress, "after {i} s");
        }
        c.finish(key(9, 9), Some(Arc::from(&b"decided"[..])));
        assert_eq!(
            c.begin(key(9, 9), t + Duration::from_secs(101)),
            Seen::Answered(Arc::from(&b"decided"[..]))
        );
        // Finishing twice (or a key never begun) changes nothing.
        c.finish(key(9, 9), None);
        c.finish(key(8, 8), Some(Arc::from(&b"x"[..])));
        assert!(matches!(
            c.begin(key(9, 9), t + Duration::from_secs(101)),
            Seen::Answered(_)
        ));
        assert_eq!(c.begin(key(8, 8), t + Duration::from_secs(101)), Seen::New);
    }

    #[test]
    fn dropped_requests_are_forgotten_and_size_is_bounded() {
        let mut c = Cache::new(Duration::from_secs(30), 10);
        let t = Instant::now();
        assert_eq!(c.begin(key(2, 1), t), Seen::New);
        c.finish(key(2, 1), None);
        assert_eq!(c.begin(key(2, 1), t), Seen::New);
        // Every request begun is finished (admission's guard sees to it); one in flight is
        // kept until then, outside the answered ones' bound.
        c.finish(key(2, 1), None);
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
