//! Pending Access-Challenges. A State is 128 random bits, answered at most once, within
//! `challenge_timeout`, by the same client (and host) for the same user and service; the
//! client IP seen in the first round is carried over because gateways often omit it in the
//! second.
//!
//! The pending challenges are kept in the store, not in this process (issue 24): a gateway
//! that alternates between two daemons on one store (PostgreSQL, or one SQLite file) sends
//! the second round to either, and either finishes it. The store keeps the SHA-256 of the
//! State's bits, never the State, beside what the first round established (this file's
//! [`PendingChallenge`]); a State is spent by taking its row out in one statement, so it
//! redeems once across every node. The other way, a State that carries its own data under a
//! key all nodes share, would still need the store for single use and for the caps, would
//! not fit 32 hex digits, and would add a key to distribute: so, the store.
//!
//! On the wire the State is those bits as 32 lowercase hex digits, not the 16 raw octets:
//! RFC 2865 makes it opaque octets, but gateways keep it as text. ocserv (through radcli)
//! stores it as a C string, so a State with a zero octet among 16 random ones (one in 16)
//! came back cut short and a user who typed the right code got `unknown_or_expired_state`.
//! Hex has no zero octet, no space and no quote, so it survives every gateway that treats it
//! as a string; only the exact text the daemon sent redeems.
//!
//! The challenges are bounded in total, per client entry, per host and per user, counted in
//! the store over every node, so neither one
//! account (a user starting login after login) nor one gateway can fill it and turn every
//! other login into an internal error: a user's oldest pending challenge gives way to their
//! newest, and a client past its share is refused while the others keep theirs.
//!
//! The shares are counted by what the daemon knows, never by what a request says: the
//! configured client entry, the source address where one entry covers several hosts, and
//! the canonical user. A PAM host's NAS-Identifier (part of the service the audit shows) is
//! bound to the State but counts for nothing here, so a host that names itself anew in
//! every request still has one share.

use std::net::IpAddr;

use mfa_core::challenge::STATE_BITS;
use mfa_core::store::{ChallengeLimits, ChallengeRow};
use mfa_core::{ClientAddr, Core, CoreError, PushId};
use subtle::ConstantTimeEq;

/// The random bits of a State, in octets.
const RANDOM_LEN: usize = STATE_BITS;
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

/// Now, in Unix milliseconds: what a stored challenge's times are in, on every node (their
/// clocks agree, as TOTP needs anyway).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChallenge {
    pub asker: Asker,
    /// The request's service (for a PAM host, `client/host/pam-service` from what the host
    /// sent): the second round must say the same.
    pub service: String,
    pub user: String,
    pub client_addr: ClientAddr,
    /// Unix milliseconds ([`now_ms`]).
    pub expires: i64,
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
    /// Unknown, already used (on any node), or expired.
    Unknown,
    /// Presented by another client, host or service, or for another user (the State is
    /// spent anyway).
    Mismatch,
}

/// Live challenges one user may have from one host of one client: a retry or two, a second
/// device.
pub const PER_USER: usize = 4;

/// The caps for `capacity` in total (`[radius] max_pending_challenges`): one client entry
/// may hold three quarters of it, so the others always keep a share, and one host of an
/// entry that covers several a quarter, so the entry's other hosts keep theirs.
pub fn limits(capacity: usize) -> ChallengeLimits {
    ChallengeLimits {
        total: capacity,
        per_client: (capacity - capacity / 4).max(1),
        per_host: (capacity / 4).max(PER_USER),
        per_user: PER_USER,
    }
}

/// How a stored challenge names the end user's address.
fn addr_text(a: ClientAddr) -> String {
    match a {
        ClientAddr::Local => "local".into(),
        ClientAddr::Remote(None) => "unknown".into(),
        ClientAddr::Remote(Some(ip)) => ip.to_string(),
    }
}

fn addr_from_text(s: &str) -> Option<ClientAddr> {
    match s {
        "local" => Some(ClientAddr::Local),
        "unknown" => Some(ClientAddr::Remote(None)),
        ip => ip.parse().ok().map(|ip| ClientAddr::Remote(Some(ip))),
    }
}

fn to_row(p: &PendingChallenge, now: i64) -> ChallengeRow {
    ChallengeRow {
        state_hash: [0; 32],
        user: p.user.clone(),
        client: p.asker.client.clone(),
        host: p.asker.host.map(|h| h.to_string()).unwrap_or_default(),
        service: p.service.clone(),
        client_ip: addr_text(p.client_addr),
        created: now,
        expires: p.expires,
        push_id: p.push.map(|w| w.id.0),
        push_number: p.push.and_then(|w| w.number),
        push_expires: p.push.map(|w| w.expires),
    }
}

/// A stored row as what the first round left; `None` where it does not make sense (a row
/// written behind the daemon's back), which redeems nothing.
fn from_row(r: ChallengeRow) -> Option<PendingChallenge> {
    let host = match r.host.as_str() {
        "" => None,
        h => Some(h.parse().ok()?),
    };
    let push = match (r.push_id, r.push_expires) {
        (Some(id), Some(expires)) => Some(PushWait {
            id: PushId(id),
            number: r.push_number,
            expires,
        }),
        (None, None) => None,
        _ => return None,
    };
    Some(PendingChallenge {
        asker: Asker {
            client: r.client,
            host,
        },
        service: r.service,
        user: r.user,
        client_addr: addr_from_text(&r.client_ip)?,
        expires: r.expires,
        push,
    })
}

/// Issues a new State for `p`, stored for every node, or `None` when the store holds as
/// many live challenges as `limits` allow (in total, or this client's or host's share): the
/// caller rejects, fail closed. A user with [`PER_USER`] live challenges from one host loses
/// the oldest.
pub fn issue(
    core: &Core,
    p: &PendingChallenge,
    limits: &ChallengeLimits,
    now: i64,
) -> Result<Option<WireState>, CoreError> {
    Ok(core
        .challenges()
        .issue(to_row(p, now), limits)?
        .map(|bits| to_wire(&bits)))
}

/// Spends a State, on whichever node issued it. It is taken out of the store whatever the
/// outcome, so it can never be tried twice, here or elsewhere. Anything but the text
/// [`issue`] gave is unknown.
pub fn redeem(
    core: &Core,
    state: &[u8],
    asker: &Asker,
    service: &str,
    user: &str,
    now: i64,
) -> Result<Redeem, CoreError> {
    let Some(bits) = from_wire(state) else {
        return Ok(Redeem::Unknown);
    };
    let Some(p) = core.challenges().take(&bits)?.and_then(from_row) else {
        return Ok(Redeem::Unknown);
    };
    if p.expires <= now {
        return Ok(Redeem::Unknown);
    }
    let same_client = p.asker.client.as_bytes().ct_eq(asker.client.as_bytes());
    let same_host = subtle::Choice::from(u8::from(p.asker.host == asker.host));
    let same_service = p.service.as_bytes().ct_eq(service.as_bytes());
    let same_user = p.user.as_bytes().ct_eq(user.as_bytes());
    Ok(
        if bool::from(same_client & same_host & same_service & same_user) {
            match p.push {
                Some(w) => Redeem::Push(p.client_addr, w),
                None => Redeem::Ok(p.client_addr),
            }
        } else {
            Redeem::Mismatch
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The daemon's challenges over a real store (SQLite in a temporary directory), with
    /// the caps of `capacity`.
    struct Table {
        core: Core,
        _dir: tempfile::TempDir,
        limits: ChallengeLimits,
    }

    impl Table {
        fn new(capacity: usize) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let mut cfg = mfa_config::Config::default();
            cfg.store.path = dir.path().join("mfa.db");
            cfg.audit.syslog = false;
            let core = mfa_store_open::open_core(
                std::sync::Arc::new(cfg),
                mfa_core::OpenMode::Create,
                "test",
                mfa_core::NameCheck::Skip,
            )
            .unwrap();
            Self {
                core,
                _dir: dir,
                limits: limits(capacity),
            }
        }

        fn issue(&self, p: PendingChallenge, now: i64) -> Option<WireState> {
            issue(&self.core, &p, &self.limits, now).unwrap()
        }

        fn redeem(&self, s: &[u8], a: &Asker, service: &str, user: &str, now: i64) -> Redeem {
            redeem(&self.core, s, a, service, user, now).unwrap()
        }

        fn len(&self, now: i64) -> usize {
            self.core.challenges().live(now).unwrap()
        }
    }

    fn gw() -> Asker {
        Asker {
            client: "gw".into(),
            host: None,
        }
    }

    fn pending(now: i64) -> PendingChallenge {
        PendingChallenge {
            asker: gw(),
            service: "gw".into(),
            user: "alice".into(),
            client_addr: ClientAddr::Remote(Some([198, 51, 100, 7].into())),
            expires: now + 60_000,
            push: None,
        }
    }

    #[test]
    fn single_use_bound_and_expiring() {
        let c = Table::new(16);
        let t = now_ms();
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
            c.redeem(&s, &gw(), "gw", "alice", t + 61_000),
            Redeem::Unknown
        );
        assert_eq!(c.redeem(&s[..15], &gw(), "gw", "alice", t), Redeem::Unknown);
        assert_eq!(c.len(t), 0);
    }

    /// What the first round established comes back whole from the store: the host, the
    /// client address in each form, the push waited for.
    #[test]
    fn what_the_first_round_established_comes_back_whole() {
        let c = Table::new(16);
        let t = now_ms();
        let host = Asker {
            client: "hosts".into(),
            host: Some("2001:db8::7".parse().unwrap()),
        };
        let wait = PushWait {
            id: PushId([9; 16]),
            number: Some(42),
            expires: 1_700_000_000,
        };
        for (addr, push) in [
            (ClientAddr::Local, Some(wait)),
            (ClientAddr::Remote(None), None),
            (
                ClientAddr::Remote(Some("2001:db8::1".parse().unwrap())),
                None,
            ),
        ] {
            let p = PendingChallenge {
                asker: host.clone(),
                service: "hosts/web1/sshd".into(),
                client_addr: addr,
                push,
                ..pending(t)
            };
            let s = c.issue(p, t).unwrap();
            let want = match push {
                Some(w) => Redeem::Push(addr, w),
                None => Redeem::Ok(addr),
            };
            assert_eq!(c.redeem(&s, &host, "hosts/web1/sshd", "alice", t), want);
        }
    }

    fn pending_for(client: &str, user: &str, now: i64) -> PendingChallenge {
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
        let c = Table::new(16);
        let t = now_ms();
        let mine: Vec<_> = (0..100).map(|_| c.issue(pending(t), t).unwrap()).collect();
        assert_eq!(
            c.len(t),
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
        let c = Table::new(16);
        let t = now_ms();
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
        assert_eq!(c.len(t), PER_USER);
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
        assert_eq!(c.len(t), 12 + 1, "the client's 12, and the VPN's one");
        assert!(c.issue(pending_for("vpn", "bob", t), t).is_some());
    }

    #[test]
    fn one_host_of_many_cannot_take_the_others_share() {
        let c = Table::new(64);
        let t = now_ms();
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
        assert_eq!(c.len(t), 16);
        assert!(c.issue(from(8, "alice".into()), t).is_some());
        assert_eq!(c.core.challenges().prune(t + 61_000).unwrap(), 17);
        assert_eq!(c.len(t), 0);
    }

    #[test]
    fn one_client_cannot_take_the_others_share() {
        let c = Table::new(8);
        let t = now_ms();
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
        assert_eq!(c.len(t), 8);
        // Expired ones give their places back.
        let later = t + 61_000;
        assert!(c.issue(pending_for("noisy", "u6", later), later).is_some());
        assert_eq!(c.len(later), 1);
    }

    /// Issue 21: what ocserv does to a State (radcli keeps it as a C string, so it ends at
    /// the first zero octet) leaves every State the daemon issues whole, and it redeems. With
    /// 16 raw random octets, about one State in 16 held a zero octet and came back cut short.
    #[test]
    fn a_state_survives_a_gateway_that_keeps_it_as_a_c_string() {
        let as_c_string =
            |s: &[u8]| -> Vec<u8> { s.iter().copied().take_while(|&b| b != 0).collect() };
        let c = Table::new(1 << 16);
        let t = now_ms();
        let mut seen = std::collections::HashSet::new();
        for i in 0..400 {
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
        assert_eq!(c.len(t), 0);
        // The wire form alone, over many more States than a store round trip each allows.
        for _ in 0..4000 {
            let mut bits = [0u8; RANDOM_LEN];
            getrandom::fill(&mut bits).unwrap();
            let s = to_wire(&bits);
            assert_eq!(as_c_string(&s), s);
            assert_eq!(from_wire(&s), Some(bits));
        }
    }

    /// Only the exact text issued redeems: not its upper-case form, not the raw octets it
    /// stands for, not one digit more or less; each try spends nothing but itself.
    #[test]
    fn only_the_text_issued_redeems() {
        let c = Table::new(16);
        let t = now_ms();
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
        let c = Table {
            limits: ChallengeLimits {
                total: 2,
                ..limits(16)
            },
            ..Table::new(16)
        };
        let t = now_ms();
        assert!(c.issue(pending(t), t).is_some());
        assert!(c.issue(pending(t), t).is_some());
        assert!(c.issue(pending(t), t).is_none());
        assert!(c.issue(pending(t + 61_000), t + 61_000).is_some());
    }

    /// The store keeps the State's hash, never the State: what is on the wire is nowhere in
    /// the database file.
    #[test]
    fn the_store_keeps_no_state() {
        let c = Table::new(16);
        let t = now_ms();
        let s = c.issue(pending(t), t).unwrap();
        let bits = from_wire(&s).unwrap();
        let db = std::fs::read(c.core.config().store.path.clone()).unwrap_or_default();
        let wal =
            std::fs::read(c.core.config().store.path.with_extension("db-wal")).unwrap_or_default();
        for file in [&db, &wal] {
            assert!(!file.windows(STATE_LEN).any(|w| w == s));
            assert!(!file.windows(RANDOM_LEN).any(|w| w == bits));
        }
        let hash = mfa_core::challenge::state_hash(&bits);
        assert!(
            db.windows(32).any(|w| w == hash) || wal.windows(32).any(|w| w == hash),
            "the hash is what is stored"
        );
    }
}
