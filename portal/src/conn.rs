//! Admission of connections: at most so many open at once, and so many from one client
//! address (an IPv6 /64), so that one address holding connections open (unfinished
//! requests, idle keep-alives) cannot use up the portal's file descriptors and shut
//! everyone else out. The peer address is the one counted: a trusted proxy, which carries
//! many users' connections, is counted only in the total.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use mfa_config::Cidr;
use mfa_core::login::now;

use crate::limits::address_key;

pub struct Admission {
    total_max: usize,
    per_address: usize,
    trusted_proxies: Vec<Cidr>,
    open: Mutex<Open>,
    /// When a refusal was last logged (at most one line a minute under a flood).
    logged: AtomicI64,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<String, usize>,
}

/// One admitted connection; dropping it (the connection's end) frees its place.
pub struct Slot {
    admission: Arc<Admission>,
    key: Option<String>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Total,
    Address,
}

impl Admission {
    pub fn new(total_max: usize, per_address: usize, trusted_proxies: Vec<Cidr>) -> Arc<Self> {
        Arc::new(Self {
            total_max,
            per_address,
            trusted_proxies,
            open: Mutex::new(Open::default()),
            logged: AtomicI64::new(0),
        })
    }

    /// A place for a connection from `peer`, or why there is none.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refused> {
        let peer = peer.to_canonical();
        let key = (!self.trusted_proxies.iter().any(|c| c.contains(&peer)))
            .then(|| address_key(Some(peer)));
        let mut open = self.open.lock().map_err(|_| Refused::Total)?;
        if open.total >= self.total_max {
            return Err(Refused::Total);
        }
        if let Some(k) = &key {
            let n = open.by_address.entry(k.clone()).or_insert(0);
            if *n >= self.per_address {
                return Err(Refused::Address);
            }
            *n += 1;
        }
        open.total += 1;
        Ok(Slot {
            admission: self.clone(),
            key,
        })
    }

    /// Whether a refusal should be logged now (the first, then at most once a minute).
    pub fn log_refusal(&self) -> bool {
        let t = now();
        let last = self.logged.load(Ordering::Relaxed);
        t - last >= 60
            && self
                .logged
                .compare_exchange(last, t, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.admission.open.lock() {
            open.total = open.total.saturating_sub(1);
            if let Some(k) = &self.key
                && let Some(n) = open.by_address.get_mut(k)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.by_address.remove(k);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn per_address_and_total_limits_free_their_place_on_drop() {
        let proxy: Cidr = "192.0.2.10/32".parse().unwrap();
        let a = Admission::new(4, 2, vec![proxy]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let one = a.admit(ip("198.51.100.1")).unwrap();
        let _two = a.admit(ip("198.51.100.1")).unwrap();
        assert_eq!(a.admit(ip("198.51.100.1")).err(), Some(Refused::Address));
        // One /64 is one address.
        let _v6 = a.admit(ip("2001:db8::1")).unwrap();
        let _v6b = a.admit(ip("2001:db8::2")).unwrap();
        assert_eq!(a.admit(ip("2001:db8::3")).err(), Some(Refused::Total));
        drop(one);
        assert_eq!(
            a.admit(ip("2001:db8::3")).err(),
            Some(Refused::Address),
            "a place is free, but not for that /64"
        );
        // A trusted proxy counts in the total only.
        let b = Admission::new(3, 1, vec!["192.0.2.10/32".parse().unwrap()]);
        let _p: Vec<_> = (0..3).map(|_| b.admit(ip("192.0.2.10")).unwrap()).collect();
        assert_eq!(b.admit(ip("192.0.2.10")).err(), Some(Refused::Total));
        assert!(a.log_refusal() && !a.log_refusal());
    }
}
