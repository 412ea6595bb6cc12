//! Pending Access-Challenges. A State is 128 random bits, answered at most once, within
//! `challenge_timeout`, by the same client (and host) for the same user and service; the
//! client IP seen in the first round is carried over because gateways often omit it in the
//! second.
//!
//! On the wire the State is those bits as 32 lowercase hex digits, not the 16 raw octets:
//! RFC 2865 makes it opaque octets, but gateways keep it as text. ocserv (through radcli)
//! stores it as a C string, so a State with a zero octet among 16 random ones (one in 16)
//! came back cut short and a user who typed the right code got `unknown_or_expired_state`.
//! Hex has no zero octet, no space and no quote, so it survives every gateway that treats it
//! as a string; only the exact text the daemon sent redeems.
//!
//! The table is bounded in total, per client entry, per host and per user, so neither one
//! account (a user starting login after login) nor one gateway can fill it and turn every
//! other login into an internal error: a user's oldest pending challenge gives way to their
//! newest, and a client past its share is refused while the others keep theirs.
//!
//! The shares are counted by what the daemon knows, never by what a request says: the
//! configured client entry, the source address where one entry covers several hosts, and
//! the canonical user. A PAM host's NAS-Identifier (part of the service the audit shows) is
//! bound to the State but counts for nothing here, so a host that names itself anew in
//! every request still has one share.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use mfa_core::{ClientAddr, PushId};
use subtle::ConstantTimeEq;

/// The random bits of a State, in octets.
const RANDOM_LEN: usize = 16;
/// A State on the wire: [`RANDOM_LEN`] octets as lowercase hex digits.
pub const STATE_LEN: usize = 2 * RANDOM_LEN;

/// A State as the daemon sends it: the random bits as lowercase hex, printable text.
pub type WireState = [u8; STATE_LEN];

const HEX: &[u8; 16] = b"0123456789abcdef";

fn to_wire(bits: &[u8; RANDOM_LEN]) -> WireState {
    let mut out = [0u8; STATE_LEN];
    for (pair, b) in out.chunks_exact_mut(2).zip(bits) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
    out
}

/// The random bits of a State exactly as [`to_wire`] wrote them: 32 lowercase hex digits,
/// nothing else (no upper case, no raw octets), so only the text the daemon sent redeems.
fn from_wire(state: &[u8]) -> Option<[u8; RANDOM_LEN]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if state.len() != STATE_LEN {
        return None;
    }
    let mut bits = [0u8; RANDOM_LEN];
    for (b, pair) in bits.iter_mut().zip(state.chunks_exact(2)) {
        *b = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(bits)
}

/// Who asked for a challenge, as the daemon established it: the configured client entry,
/// and the host's source address where that entry covers several hosts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Asker {
    pub client: String,
    pub host: Option<IpAddr>,
}

/// What the first round of a challenge left for the second: who asked, for whom, and the
/// client address it saw.
#[derive(Debug, Clone)]
pub struct PendingChallenge {
    pub asker: Asker,
    /// The request's service (for a PAM host, `client/host/pam-service` from what the host
    /// sent): the second round must say the same.
    pub service: String,
    pub user: String,
    pub client_addr: ClientAddr,
    pub expires: Instant,
    /// The push this challenge waits for (issue 20): the next round asks about it.
    pub push: Option<PushWait>,
}

/// A push a challenge waits for: its request, and what the challenge showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushWait {
    pub id: PushId,
    pub number: Option<u8>,
    /// When the request expires, Unix seconds.
    pub expires: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeem {
    Ok(ClientAddr),
    /// A challenge that waits for a push: the round asks about it.
    Push(ClientAddr, PushWait),
    /// Unknown, already used, or expired.
    Unknown,
    /// Presented by another client, host or service, or for another user (the State is
    /// spent anyway).
    Mismatch,
}

/// Live challenges one user may have from one host of one client: a retry or two, a second
/// device.
pub const PER_USER: usize = 4;

#[derive(Debug)]
pub struct Challenges {
    /// By the State's random bits.
    map: HashMap<[u8; RANDOM_LEN], PendingChallenge>,
    /// Each (asker, user)'s States, oldest first.
    by_user: HashMap<(Asker, String), VecDeque<[u8; RANDOM_LEN]>>,
    /// Live States per client entry.
    by_client: HashMap<String, usize>,
    /// Live States per host, for entries that cover several.
    by_host: HashMap<Asker, usize>,
    capacity: usize,
    per_client: usize,
    per_host: usize,
}

/// One more in `counts[key]`.
fn bump<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    *counts.entry(key).or_insert(0) += 1;
}

/// One less in `counts[key]`, forgetting keys at zero.
fn drop_one<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(key);
        }
    }
}

impl Challenges {
    /// `capacity` in total; one client entry may hold three quarters of it, so the others
    /// always keep a share, and one host of an entry that covers several a quarter, so the
    /// entry's other hosts keep theirs.
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            by_user: HashMap::new(),
            by_client: HashMap::new(),
            by_host: HashMap::new(),
            capacity,
            per_client: (capacity - capacity / 4).max(1),
            per_host: (capacity / 4).max(PER_USER),
        }
    }

    /// Removes `state` from the table and from every index.
    fn forget(&mut self, state: &[u8; RANDOM_LEN]) -> Option<PendingChallenge> {
        let p = self.map.remove(state)?;
        let key = (p.asker.clone(), p.user.clone());
        if let Some(q) = self.by_user.get_mut(&key) {
            q.retain(|s| s != state);
            if q.is_empty() {
                self.by_user.remove(&key);
            }
        }
        drop_one(&mut self.by_client, &p.asker.client);
        if p.asker.host.is_some() {
            drop_one(&mut self.by_host, &p.asker);
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
        let expired: Vec<[u8; RANDOM_LEN]> = self
            .map
            .iter()
            .filter(|(_, p)| p.expires <= now)
            .map(|(s, _)| *s)
            .collect();
        for s in expired {
            self.forget(&s);
        }
    }

    /// Whether `asker` may not hold one more State.
    fn full_for(&self, asker: &Asker) -> bool {
        self.map.len() >= self.capacity
            || self.by_client.get(&asker.client).copied().unwrap_or(0) >= self.per_client
            || (asker.host.is_some()
                && self.by_host.get(asker).copied().unwrap_or(0) >= self.per_host)
    }

    /// Issues a new State, or `None` when the table (or this client's or host's share of it)
    /// is full of live challenges or the system RNG fails (the caller rejects: fail closed).
    /// A user with `PER_USER` live challenges from one host loses the oldest.
    pub fn issue(&mut self, p: PendingChallenge, now: Instant) -> Option<WireState> {
        let key = (p.asker.clone(), p.user.clone());
        if self.by_user.get(&key).is_some_and(|q| q.len() >= PER_USER)
            && let Some(oldest) = self.by_user.get(&key).and_then(|q| q.front().copied())
        {
            self.forget(&oldest);
        }
        if self.full_for(&p.asker) {
            self.sweep(now);
            if self.full_for(&p.asker) {
                return None;
            }
        }
        let mut state = [0u8; RANDOM_LEN];
        getrandom::fill(&mut state).ok()?;
        if self.map.contains_key(&state) {
            return None;
        }
        bump(&mut self.by_client, p.asker.client.clone());
        if p.asker.host.is_some() {
            bump(&mut self.by_host, p.asker.clone());
        }
        self.by_user.entry(key).or_default().push_back(state);
        self.map.insert(state, p);
        Some(to_wire(&state))
    }

    /// Spends a State. It is removed whatever the outcome, so it can never be tried twice.
    /// Anything but the text [`Challenges::issue`] gave is unknown.
    pub fn redeem(
        &mut self,
        state: &[u8],
        asker: &Asker,
        service: &str,
        user: &str,
        now: Instant,
    ) -> Redeem {
        let Some(key) = from_wire(state) else {
            return Redeem::Unknown;
        };
        let Some(p) = self.forget(&key) else {
            return Redeem::Unknown;
        };
        if p.expires <= now {
            return Redeem::Unknown;
        }
        let same_client = p.asker.client.as_bytes().ct_eq(asker.client.as_bytes());
        let same_host = subtle::Choice::from(u8::from(p.asker.host == asker.host));
        let same_service = p.service.as_bytes().ct_eq(service.as_bytes());
        let same_user = p.user.as_bytes().ct_eq(user.as_bytes());
        if bool::from(same_client & same_host & same_service & same_user) {
            match p.push {
                Some(w) => Redeem::Push(p.client_addr, w),
                None => Redeem::Ok(p.client_addr),
            }
        } else {
            Redeem::Mismatch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn gw() -> Asker {
        Asker {
            client: "gw".into(),
            host: None,
        }
    }

    fn pending(now: Instant) -> PendingChallenge {
        PendingChallenge {
            asker: gw(),
            service: "gw".into(),
            user: "alice".into(),
            client_addr: ClientAddr::Remote(Some([198, 51, 100, 7].into())),
            expires: now + Duration::from_secs(60),
            push: None,
        }
    }

    #[test]
    fn single_use_bound_and_expiring() {
        let mut c = Challenges::new(10);
        let t = Instant::now();
        let s = c.issue(pending(t), t).unwrap();
        assert_eq!(
            c.redeem(&s, &gw(), "gw", "alice", t),
            Redeem::Ok(ClientAddr::Remote(Some([198, 51, 100, 7].into())))
        );
        assert_eq!(c.redeem(&s, &gw(), "gw", "alice", t), Redeem::Unknown);

        let s = c.issue(pending(t), t).unwrap();
        assert_eq!(c.redeem(&s, &gw(), "gw", "bob", t), Redeem::Mismatch);
        assert_eq!(c.redeem(&s, &gw(), "gw", "alice", t), Redeem::Unknown);
        let s = c.issue(pending(t), t).unwrap();
        let other = Asker {
            client: "other-gw".into(),
            host: None,
        };
        assert_eq!(c.redeem(&s, &other, "gw", "alice", t), Redeem::Mismatch);
        // Another host of the same entry, or another service (a PAM host's own name).
        let s = c.issue(pending(t), t).unwrap();
        let host = Asker {
            client: "gw".into(),
            host: Some([10, 0, 5, 7].into()),
        };
        assert_eq!(c.redeem(&s, &host, "gw", "alice", t), Redeem::Mismatch);
        let s = c.issue(pending(t), t).unwrap();
        assert_eq!(
            c.redeem(&s, &gw(), "gw/web2/sshd", "alice", t),
            Redeem::Mismatch
        );

        let s = c.issue(pending(t), t).unwrap();
        assert_eq!(
            c.redeem(&s, &gw(), "gw", "alice", t + Duration::from_secs(61)),
            Redeem::Unknown
        );
        assert_eq!(c.redeem(&s[..15], &gw(), "gw", "alice", t), Redeem::Unknown);
        assert!(c.is_empty());
    }

    fn pending_for(client: &str, user: &str, now: Instant) -> PendingChallenge {
        PendingChallenge {
            asker: Asker {
                client: client.into(),
                host: None,
            },
            service: client.into(),
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
        assert_eq!(c.redeem(&mine[0], &gw(), "gw", "alice", t), Redeem::Unknown);
        assert!(matches!(
            c.redeem(&mine[99], &gw(), "gw", "alice", t),
            Redeem::Ok(_)
        ));
        // Everybody else still gets one (up to the client's share, 12 of 16).
        for i in 0..8 {
            assert!(c.issue(pending_for("gw", &format!("u{i}"), t), t).is_some());
        }
    }

    /// Issue 18, finding 7: a PAM host that names itself anew in every request (the
    /// NAS-Identifier in its service) is still one client and one user's four challenges;
    /// another client's challenge still gets its State.
    #[test]
    fn a_host_naming_itself_anew_is_still_one_client_and_one_user() {
        let mut c = Challenges::new(16);
        let t = Instant::now();
        let hosts = Asker {
            client: "pam-hosts".into(),
            host: None,
        };
        for i in 0..100 {
            let p = PendingChallenge {
                asker: hosts.clone(),
                service: format!("pam-hosts/fake-{i}/sshd"),
                ..pending(t)
            };
            assert!(c.issue(p, t).is_some());
        }
        assert_eq!(c.len(), PER_USER);
        assert!(c.issue(pending_for("vpn", "alice", t), t).is_some());
        // Many users from the one client stop at its share, and the VPN keeps its own.
        for i in 0..100 {
            let p = PendingChallenge {
                asker: hosts.clone(),
                service: format!("pam-hosts/fake-{i}/sshd"),
                user: format!("u{i}"),
                ..pending(t)
            };
            let _ = c.issue(p, t);
        }
        assert_eq!(c.by_client.get("pam-hosts").copied(), Some(12));
        assert!(c.issue(pending_for("vpn", "bob", t), t).is_some());
    }

    #[test]
    fn one_host_of_many_cannot_take_the_others_share() {
        let mut c = Challenges::new(64);
        let t = Instant::now();
        let host = |last: u8| Asker {
            client: "pam-hosts".into(),
            host: Some([10, 0, 5, last].into()),
        };
        let from = |last: u8, user: String| PendingChallenge {
            asker: host(last),
            service: "pam-hosts/web/sshd".into(),
            user,
            ..pending(t)
        };
        // A quarter of 64 is 16.
        for i in 0..40 {
            let _ = c.issue(from(7, format!("u{i}")), t);
        }
        assert_eq!(c.len(), 16);
        assert!(c.issue(from(8, "alice".into()), t).is_some());
        c.sweep(t + Duration::from_secs(61));
        assert!(c.is_empty() && c.by_host.is_empty());
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

    /// Issue 21: what ocserv does to a State (radcli keeps it as a C string, so it ends at
    /// the first zero octet) leaves every State the daemon issues whole, and it redeems. With
    /// 16 raw random octets, about one State in 16 held a zero octet and came back cut short.
    #[test]
    fn a_state_survives_a_gateway_that_keeps_it_as_a_c_string() {
        let as_c_string =
            |s: &[u8]| -> Vec<u8> { s.iter().copied().take_while(|&b| b != 0).collect() };
        let mut c = Challenges::new(1 << 16);
        let t = Instant::now();
        let mut seen = std::collections::HashSet::new();
        for i in 0..4000 {
            let p = PendingChallenge {
                user: format!("u{i}"),
                ..pending(t)
            };
            let s = c.issue(p, t).unwrap();
            assert!(
                s.iter()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)),
                "State {s:?} is not lowercase hex"
            );
            assert!(seen.insert(s), "a State issued twice");
            let back = as_c_string(&s);
            assert_eq!(back, s, "a C string cuts the State short");
            assert!(matches!(
                c.redeem(&back, &gw(), "gw", &format!("u{i}"), t),
                Redeem::Ok(_)
            ));
        }
        assert!(c.is_empty());
    }

    /// Only the exact text issued redeems: not its upper-case form, not the raw octets it
    /// stands for, not one digit more or less; each try spends nothing but itself.
    #[test]
    fn only_the_text_issued_redeems() {
        let mut c = Challenges::new(16);
        let t = Instant::now();
        let s = c.issue(pending(t), t).unwrap();
        let upper = s.to_ascii_uppercase();
        let raw = from_wire(&s).unwrap();
        let mut longer = s.to_vec();
        longer.push(b'0');
        let mut other = s;
        other[31] = if other[31] == b'0' { b'1' } else { b'0' };
        for wrong in [&upper[..], &raw[..], &longer[..], &s[..31], &other[..], b""] {
            if wrong == &s[..] {
                continue;
            }
            assert_eq!(
                c.redeem(wrong, &gw(), "gw", "alice", t),
                Redeem::Unknown,
                "{wrong:?}"
            );
        }
        assert!(matches!(
            c.redeem(&s, &gw(), "gw", "alice", t),
            Redeem::Ok(_)
        ));
        assert_eq!(
            to_wire(&[0x00, 0x1f, 0xa0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
            *b"001fa0ff000000000000000000000009"
        );
        assert_eq!(
            from_wire(b"001fa0ff000000000000000000000009").map(|b| b[3]),
            Some(0xff)
        );
        assert_eq!(from_wire(b"001fa0ff00000000000000000000000g"), None);
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
