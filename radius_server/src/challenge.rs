//! Pending Access-Challenges. A State is 16 random octets, answered at most once, within
//! `challenge_timeout`, by the same client for the same user; the client IP seen in the first
//! round is carried over because gateways often omit it in the second.
//!
//! The table is bounded in total, per user and per client, so neither one account (a user
//! starting login after login) nor one gateway can fill it and turn every other login into
//! an internal error: a user's oldest pending challenge gives way to their newest, and a
//! client past its share is refused while the others keep theirs.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use mfa_core::ClientAddr;
use subtle::ConstantTimeEq;

pub const STATE_LEN: usize = 16;

#[derive(Debug, Clone)]
pub struct Pending {
    pub client: String,
    pub user: String,
    pub client_addr: ClientAddr,
    pub expires: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeem {
    Ok(ClientAddr),
    /// Unknown, already used, or expired.
    Unknown,
    /// Presented by another client or for another user (the State is spent anyway).
    Mismatch,
}

/// Live challenges one user may have on one client: a retry or two, a second device.
pub const PER_USER: usize = 4;

#[derive(Debug)]
pub struct Challenges {
    map: HashMap<[u8; STATE_LEN], Pending>,
    /// Each (client, user)'s States, oldest first.
    by_user: HashMap<(String, String), VecDeque<[u8; STATE_LEN]>>,
    by_client: HashMap<String, usize>,
    capacity: usize,
    per_client: usize,
}

impl Challenges {
    /// `capacity` in total; one client may hold three quarters of it, so the others always
    /// keep a share.
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            by_user: HashMap::new(),
            by_client: HashMap::new(),
            capacity,
            per_client: (capacity - capacity / 4).max(1),
        }
    }

    /// Removes `state` from the table and from both indexes.
    fn forget(&mut self, state: &[u8; STATE_LEN]) -> Option<Pending> {
        let p = self.map.remove(state)?;
        let key = (p.client.clone(), p.user.clone());
        if let Some(q) = self.by_user.get_mut(&key) {
            q.retain(|s| s != state);
            if q.is_empty() {
                self.by_user.remove(&key);
            }
        }
        if let Some(n) = self.by_client.get_mut(&p.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_client.remove(&p.client);
            }
        }
        Some(p)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn sweep(&mut self, now: Instant) {
        let expired: Vec<[u8; STATE_LEN]> = self
            .map
            .iter()
            .filter(|(_, p)| p.expires <= now)
            .map(|(s, _)| *s)
            .collect();
        for s in expired {
            self.forget(&s);
        }
    }

    /// Issues a new State, or `None` when the table (or this client's share of it) is full
    /// of live challenges or the system RNG fails (the caller rejects: fail closed). A user
    /// with `PER_USER` live challenges loses the oldest.
    pub fn issue(&mut self, p: Pending, now: Instant) -> Option<[u8; STATE_LEN]> {
        let key = (p.client.clone(), p.user.clone());
        if self.by_user.get(&key).is_some_and(|q| q.len() >= PER_USER)
            && let Some(oldest) = self.by_user.get(&key).and_then(|q| q.front().copied())
        {
            self.forget(&oldest);
        }
        let client_full =
            |c: &Self| c.by_client.get(&p.client).copied().unwrap_or(0) >= c.per_client;
        if self.map.len() >= self.capacity || client_full(self) {
            self.sweep(now);
            if self.map.len() >= self.capacity || client_full(self) {
                return None;
            }
        }
        let mut state = [0u8; STATE_LEN];
        getrandom::fill(&mut state).ok()?;
        if self.map.contains_key(&state) {
            return None;
        }
        *self.by_client.entry(p.client.clone()).or_insert(0) += 1;
        self.by_user.entry(key).or_default().push_back(state);
        self.map.insert(state, p);
        Some(state)
    }

    /// Spends a State. It is removed whatever the outcome, so it can never be tried twice.
    pub fn redeem(&mut self, state: &[u8], client: &str, user: &str, now: Instant) -> Redeem {
        let Ok(key) = <[u8; STATE_LEN]>::try_from(state) else {
            return Redeem::Unknown;
        };
        let Some(p) = self.forget(&key) else {
            return Redeem::Unknown;
        };
        if p.expires <= now {
            return Redeem::Unknown;
        }
        let same_client = p.client.as_bytes().ct_eq(client.as_bytes());
        let same_user = p.user.as_bytes().ct_eq(user.as_bytes());
        if bool::from(same_client & same_user) {
            Redeem::Ok(p.client_addr)
        } else {
            Redeem::Mismatch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pending(now: Instant) -> Pending {
        Pending {
            client: "gw".into(),
            user: "alice".into(),
            client_addr: ClientAddr::Remote(Some([198, 51, 100, 7].into())),
            expires: now + Duration::from_secs(60),
        }
    }

    #[test]
    fn single_use_bound_and_expiring() {
        let mut c = Challenges::new(10);
        let t = Instant::now();
        let s = c.issue(pending(t), t).unwrap();
        assert_eq!(
            c.redeem(&s, "gw", "alice", t),
            Redeem::Ok(ClientAddr::Remote(Some([198, 51, 100, 7].into())))
        );
        assert_eq!(c.redeem(&s, "gw", "alice", t), Redeem::Unknown);

        let s = c.issue(pending(t), t).unwrap();
        assert_eq!(c.redeem(&s, "gw", "bob", t), Redeem::Mismatch);
        assert_eq!(c.redeem(&s, "gw", "alice", t), Redeem::Unknown);
        let s = c.issue(pending(t), t).unwrap();
        assert_eq!(c.redeem(&s, "other-gw", "alice", t), Redeem::Mismatch);

        let s = c.issue(pending(t), t).unwrap();
        assert_eq!(
            c.redeem(&s, "gw", "alice", t + Duration::from_secs(61)),
            Redeem::Unknown
        );
        assert_eq!(c.redeem(&s[..15], "gw", "alice", t), Redeem::Unknown);
        assert!(c.is_empty());
    }

    fn pending_for(client: &str, user: &str, now: Instant) -> Pending {
        Pending {
            client: client.into(),
            user: user.into(),
            ..pending(now)
        }
    }

    #[test]
    fn one_user_cannot_fill_the_table() {
        let mut c = Challenges::new(16);
        let t = Instant::now();
        let mine: Vec<_> = (0..100).map(|_| c.issue(pending(t), t).unwrap()).collect();
        assert_eq!(
            c.len(),
            PER_USER,
            "only the newest of one user's challenges live"
        );
        // The newest still redeem, the oldest are gone.
        assert_eq!(c.redeem(&mine[0], "gw", "alice", t), Redeem::Unknown);
        assert!(matches!(
            c.redeem(&mine[99], "gw", "alice", t),
            Redeem::Ok(_)
        ));
        // Everybody else still gets one (up to the client's share, 12 of 16).
        for i in 0..8 {
            assert!(c.issue(pending_for("gw", &format!("u{i}"), t), t).is_some());
        }
    }

    #[test]
    fn one_client_cannot_take_the_others_share() {
        let mut c = Challenges::new(8);
        let t = Instant::now();
        for i in 0..6 {
            assert!(
                c.issue(pending_for("noisy", &format!("u{i}"), t), t)
                    .is_some()
            );
        }
        assert!(
            c.issue(pending_for("noisy", "u6", t), t).is_none(),
            "past three quarters of the table"
        );
        assert!(c.issue(pending_for("quiet", "bob", t), t).is_some());
        assert!(c.issue(pending_for("quiet", "carol", t), t).is_some());
        assert_eq!(c.len(), 8);
        // Spent and expired ones give their places back, in both indexes.
        c.sweep(t + Duration::from_secs(61));
        assert!(c.is_empty());
        assert!(c.by_user.is_empty() && c.by_client.is_empty());
    }

    #[test]
    fn full_table_refuses_until_expiry() {
        let mut c = Challenges::new(2);
        let t = Instant::now();
        assert!(c.issue(pending(t), t).is_some());
        assert!(c.issue(pending(t), t).is_some());
        assert!(c.issue(pending(t), t).is_none());
        assert!(c.issue(pending(t), t + Duration::from_secs(61)).is_some());
    }
}
