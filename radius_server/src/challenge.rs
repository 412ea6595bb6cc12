//! Pending Access-Challenges. A State is 16 random octets, answered at most once, within
//! `challenge_timeout`, by the same client for the same user; the client IP seen in the first
//! round is carried over because gateways often omit it in the second.

use std::collections::HashMap;
use std::time::Instant;

use mfa_common::ClientAddr;
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

#[derive(Debug)]
pub struct Challenges {
    map: HashMap<[u8; STATE_LEN], Pending>,
    capacity: usize,
}

impl Challenges {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn sweep(&mut self, now: Instant) {
        self.map.retain(|_, p| p.expires > now);
    }

    /// Issues a new State, or `None` when the table is full of live challenges or the system
    /// RNG fails (the caller rejects: fail closed).
    pub fn issue(&mut self, p: Pending, now: Instant) -> Option<[u8; STATE_LEN]> {
        if self.map.len() >= self.capacity {
            self.sweep(now);
            if self.map.len() >= self.capacity {
                return None;
            }
        }
        let mut state = [0u8; STATE_LEN];
        getrandom::fill(&mut state).ok()?;
        if self.map.contains_key(&state) {
            return None;
        }
        self.map.insert(state, p);
        Some(state)
    }

    /// Spends a State. It is removed whatever the outcome, so it can never be tried twice.
    pub fn redeem(&mut self, state: &[u8], client: &str, user: &str, now: Instant) -> Redeem {
        let Ok(key) = <[u8; STATE_LEN]>::try_from(state) else {
            return Redeem::Unknown;
        };
        let Some(p) = self.map.remove(&key) else {
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
