//! Rate limits: fixed-window counters in memory, per client address (an IPv6 client per
//! /64, which one subscriber usually holds whole), per invite and per user.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use mfa_core::login::now;

/// Counters kept at most; past it the ones whose window is over go, then the oldest.
const MAX_KEYS: usize = 100_000;

/// What is counted, and how much of it a window allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Enrolment pages shown, per address.
    Page,
    /// Form posts, per address.
    Post,
    /// Sign-ins, per address.
    SignIn,
    /// Sign-ins that did not succeed, per user (canonical name) from any address: one
    /// user's password cannot be guessed from many addresses. A window from its first
    /// failure, so an attacker can keep that user's portal sign-in closed only while the
    /// attack lasts (logins elsewhere are not touched).
    SignInUser,
    /// Saves of one invite.
    Invite,
    /// "Replace key" confirmations per signed-in user.
    Replace,
    /// Push approval's pages and posts (approval pages, decisions, the app's list), per
    /// address: a phone's own, kept apart from the forms' limit.
    Push,
}

impl Limit {
    /// (most hits, window in seconds).
    fn rule(self) -> (u32, i64) {
        match self {
            Limit::Page => (120, 300),
            Limit::Post => (30, 300),
            Limit::SignIn => (10, 300),
            Limit::SignInUser => (10, 900),
            Limit::Invite => (10, 900),
            Limit::Replace => (10, 900),
            Limit::Push => (120, 300),
        }
    }
}

/// The key a client address is counted under: an IPv4 address, an IPv6 /64; `None` (an
/// address the portal cannot believe) is one key of its own.
pub fn address_key(ip: Option<IpAddr>) -> String {
    match ip.map(|i| i.to_canonical()) {
        Some(IpAddr::V4(a)) => a.to_string(),
        Some(IpAddr::V6(a)) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".into(),
    }
}

/// Fixed-window counters: (window start, count) per limit and key.
#[derive(Default)]
pub struct Limits {
    map: Mutex<HashMap<(Limit, String), (i64, u32)>>,
}

impl Limits {
    /// Counts one hit of `key`; false once more than the limit's most fell in its window
    /// (and when the table cannot be used: fail closed).
    pub fn hit(&self, limit: Limit, key: &str) -> bool {
        self.hit_at(limit, key, now())
    }

    fn hit_at(&self, limit: Limit, key: &str, now: i64) -> bool {
        let (max, window) = limit.rule();
        let Ok(mut map) = self.map.lock() else {
            return false;
        };
        if map.len() >= MAX_KEYS {
            make_room(&mut map, now);
        }
        let e = map.entry((limit, key.to_string())).or_insert((now, 0));
        if now - e.0 >= window {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
        e.1 <= max
    }

    /// Takes back one hit of `key` (an attempt that turned out to be no failure).
    pub fn refund(&self, limit: Limit, key: &str) {
        if let Ok(mut map) = self.map.lock()
            && let Some(e) = map.get_mut(&(limit, key.to_string()))
        {
            e.1 = e.1.saturating_sub(1);
        }
    }
}

fn make_room(map: &mut HashMap<(Limit, String), (i64, u32)>, now: i64) {
    map.retain(|(l, _), (start, _)| now - *start < l.rule().1);
    if map.len() >= MAX_KEYS {
        let mut starts: Vec<i64> = map.values().map(|(s, _)| *s).collect();
        starts.sort_unstable();
        let cut = starts.get(starts.len() / 2).copied().unwrap_or(now);
        map.retain(|_, (start, _)| *start > cut);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_per_64_and_ipv4_per_address() {
        let k = |s: &str| address_key(Some(s.parse().unwrap()));
        assert_eq!(k("2001:db8:1:2:aaaa::1"), k("2001:db8:1:2:ffff:1:2:3"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("::ffff:192.0.2.1"), "192.0.2.1");
        assert_ne!(k("192.0.2.1"), k("192.0.2.2"));
        assert_eq!(address_key(None), "unknown");
    }

    #[test]
    fn a_limit_counts_per_key_and_a_refund_gives_a_hit_back() {
        let l = Limits::default();
        for _ in 0..10 {
            assert!(l.hit(Limit::SignInUser, "alice"));
        }
        assert!(!l.hit(Limit::SignInUser, "alice"));
        assert!(l.hit(Limit::SignInUser, "bob"), "per user");
        assert!(l.hit(Limit::SignIn, "alice"), "per limit");
        l.refund(Limit::SignInUser, "bob");
        let m = Limits::default();
        for _ in 0..20 {
            assert!(m.hit(Limit::SignInUser, "carol"));
            m.refund(Limit::SignInUser, "carol");
        }
    }

    #[test]
    fn a_user_is_limited_for_the_window_from_the_first_failure_only() {
        let l = Limits::default();
        let t = 1_000_000;
        for i in 0..10 {
            assert!(l.hit_at(Limit::SignInUser, "dave", t + i * 60));
        }
        assert!(!l.hit_at(Limit::SignInUser, "dave", t + 899));
        // 15 minutes after the first failure the user signs in again, even while refused
        // attempts went on.
        assert!(l.hit_at(Limit::SignInUser, "dave", t + 900));
    }
}
