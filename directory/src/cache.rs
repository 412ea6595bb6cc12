//! The bounded cache of answers: at most `cache_size` entries, each for `cache_ttl`; the
//! oldest goes first when full. Only answers are cached (found, not found); an unanswered
//! lookup is never put here.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use mfa_core::directory::Account;

#[derive(Debug, Clone)]
pub(crate) enum Cached {
    /// A user by account name, with its groups; `None`: no such user.
    User(Option<Account>),
    /// The account name a user principal name belongs to.
    Principal(Option<String>),
}

pub(crate) struct Cache {
    size: usize,
    ttl: Duration,
    map: HashMap<String, (Instant, Cached)>,
    /// Keys in the order they were put, with the time they were put (a key put again has a
    /// newer entry; the older one is skipped when it comes up).
    order: VecDeque<(String, Instant)>,
}

impl Cache {
    pub(crate) fn new(size: usize, ttl: Duration) -> Self {
        Self {
            size,
            ttl,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<Cached> {
        let (at, v) = self.map.get(key)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    pub(crate) fn put(&mut self, key: String, value: Cached) {
        if self.ttl.is_zero() || self.size == 0 {
            return;
        }
        let now = Instant::now();
        self.map.insert(key.clone(), (now, value));
        self.order.push_back((key, now));
        while self.map.len() > self.size || self.order.len() > 2 * self.size + 16 {
            let Some((k, at)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&k).is_some_and(|(t, _)| *t == at) {
                self.map.remove(&k);
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_expiring() {
        let mut c = Cache::new(2, Duration::from_secs(60));
        for k in ["a", "b", "a", "c"] {
            c.put(k.into(), Cached::Principal(Some(k.into())));
        }
        // "b" is the oldest once "a" was put again.
        assert!(c.get("b").is_none());
        assert!(c.get("a").is_some() && c.get("c").is_some());
        let mut c = Cache::new(2, Duration::ZERO);
        c.put("a".into(), Cached::User(None));
        assert!(c.get("a").is_none());
    }
}
