//! RFC 5080 §2.2.2 duplicate detection: a retransmission (same source address and port,
//! identifier and Request Authenticator) gets the reply already sent, not a second evaluation,
//! so a gateway's retry never turns an accepted code into a replay rejection.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub from: SocketAddr,
    pub identifier: u8,
    pub authenticator: [u8; 16],
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

/// Bounded in both size and age: an entry lives `ttl`, and past `capacity` the oldest go.
#[derive(Debug)]
pub struct Cache {
    map: HashMap<Key, (Instant, Entry)>,
    order: VecDeque<(Instant, Key)>,
    ttl: Duration,
    capacity: usize,
}

impl Cache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(t, key)) = self.order.front() {
            let too_old = now.saturating_duration_since(t) >= self.ttl;
            let crowded = self.map.len() >= self.capacity || self.order.len() > 2 * self.capacity;
            if !too_old && !crowded {
                break;
            }
            self.order.pop_front();
            // Only remove the entry this queue slot was for (a key re-inserted later has a
            // newer time and its own slot).
            if self.map.get(&key).is_some_and(|(at, _)| *at == t) {
                self.map.remove(&key);
            }
        }
    }

    pub fn begin(&mut self, key: Key, now: Instant) -> Seen {
        self.expire(now);
        match self.map.get(&key) {
            Some((_, Entry::InProgress)) => Seen::InProgress,
            Some((_, Entry::Answered(r))) => Seen::Answered(r.clone()),
            None => {
                self.map.insert(key, (now, Entry::InProgress));
                self.order.push_back((now, key));
                Seen::New
            }
        }
    }

    /// Stores the reply for `key`; `None` (the request was dropped) forgets the key so a
    /// retransmission is evaluated afresh.
    pub fn finish(&mut self, key: Key, reply: Option<Arc<[u8]>>) {
        match reply {
            Some(r) => {
                if let Some(slot) = self.map.get_mut(&key) {
                    slot.1 = Entry::Answered(r);
                }
            }
            None => {
                self.map.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u8, port: u16) -> Key {
        Key {
            from: SocketAddr::from(([127, 0, 0, 1], port)),
            identifier: id,
            authenticator: [id; 16],
        }
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
        // Expired.
        assert_eq!(
            c.begin(key(1, 1000), t + Duration::from_secs(31)),
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
    }
}
