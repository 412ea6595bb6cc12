//! The portal's sessions: in memory only, keyed by a random id in a cookie. A session holds
//! what must never reach the page's form or a cookie: the key shown for an invite and not
//! yet confirmed, the signed-in user and the key they signed in with, the new key of
//! "Replace key".
//!
//! A visitor gets a table entry only once there is something to keep (a key shown for an
//! invite, a sign-in): the sign-in form needs none, its CSRF token being a MAC of the
//! cookie's id. So anonymous requests cannot fill the table, and when it is full anyway the
//! oldest anonymous session makes room first.

use std::collections::HashMap;
use std::sync::Mutex;

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use mfa_core::login::now;
use mfa_core::{KeyGeneration, PushId, TotpSecret, UserName};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Sessions kept at most (memory bound).
const MAX_SESSIONS: usize = 10_000;
/// Random bytes of a session id (192 bits), as base64url without padding.
const ID_BYTES: usize = 24;
const ID_CHARS: usize = 32;

/// A key shown on an enrolment page and not yet confirmed: kept here, in memory only, for
/// the session and the invite it was shown for; never in the page's form or a cookie.
pub struct ShownKey {
    pub invite: [u8; 32],
    pub user: UserName,
    pub secret: TotpSecret,
}

/// The console's sign-in with push, between the password and the phone's approval: who,
/// from where (the request is checked against both when it is settled), and the request.
/// No one is signed in yet.
#[derive(Clone)]
pub struct PushWait {
    pub user: UserName,
    pub client: Option<std::net::IpAddr>,
    pub id: PushId,
    /// The number the phone asks for (number matching), shown on the waiting page.
    pub number: Option<u8>,
}

/// Who signed in, and with which key: every action re-checks that key in the core, so a
/// session ends with the key it was opened with (a replacement elsewhere, an unlink, a lock).
#[derive(Clone)]
pub struct SignedIn {
    pub user: UserName,
    pub key: KeyGeneration,
}

pub struct Session {
    /// When the session began (for a signed-in one: the sign-in), for the absolute lifetime.
    created: i64,
    last_seen: i64,
    /// The table's use counter when last used: the least recently used goes first.
    touched: u64,
    pub user: Option<SignedIn>,
    pub pending: Option<ShownKey>,
    /// "Replace key" in My account: the new key shown to the signed-in user and not yet
    /// confirmed. Only here (wiped on drop, with the session); the old key holds until the
    /// new one is confirmed.
    pub replacing: Option<TotpSecret>,
    /// When that key was first shown: its entry's name in the app carries the day, the same
    /// on every page that names it.
    pub replacing_since: i64,
    /// The console's sign-in waiting for a phone's approval.
    pub push_wait: Option<PushWait>,
}

struct Table {
    map: HashMap<String, Session>,
    /// When expired sessions were last swept out.
    swept: i64,
    uses: u64,
}

/// The table of live sessions; a session idle for `idle` seconds, or older than `lifetime`,
/// is gone.
pub struct Sessions {
    idle: i64,
    lifetime: i64,
    capacity: usize,
    /// The key of the CSRF tokens' MAC; new with each start of the portal.
    csrf_key: Zeroizing<[u8; 32]>,
    table: Mutex<Table>,
}

fn random_id() -> Option<String> {
    let mut b = [0u8; ID_BYTES];
    getrandom::fill(&mut b).ok()?;
    Some(BASE64URL_NOPAD.encode(&b))
}

/// Whether a cookie's value has the form of an id this portal makes (never trust more).
fn well_formed(id: &str) -> bool {
    id.len() == ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Sessions {
    /// `None` when the system's random source fails (the portal does not start).
    pub fn new(idle: i64, lifetime: i64) -> Option<Self> {
        Self::with_capacity(idle, lifetime, MAX_SESSIONS)
    }

    fn with_capacity(idle: i64, lifetime: i64, capacity: usize) -> Option<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *key).ok()?;
        Some(Self {
            idle,
            lifetime,
            capacity,
            csrf_key: key,
            table: Mutex::new(Table {
                map: HashMap::new(),
                swept: 0,
                uses: 0,
            }),
        })
    }

    fn live(&self, s: &Session, now: i64) -> bool {
        now - s.last_seen < self.idle && now - s.created < self.lifetime
    }

    /// Drops the expired sessions, at most once a second (or now, with `force`).
    fn sweep(&self, t: &mut Table, now: i64, force: bool) {
        if force || t.swept != now {
            t.map.retain(|_, s| self.live(s, now));
            t.swept = now;
        }
    }

    /// The CSRF token of the forms shown to the holder of cookie `sid`: a MAC of the id, so
    /// it needs no table entry, and only the portal can make it.
    pub fn csrf(&self, sid: &str) -> String {
        match <Hmac<Sha256> as KeyInit>::new_from_slice(&*self.csrf_key) {
            Ok(mut mac) => {
                mac.update(b"mfa-portal csrf\0");
                mac.update(sid.as_bytes());
                BASE64URL_NOPAD.encode(&mac.finalize().into_bytes())
            }
            // Cannot happen (HMAC takes any key length); a token nobody can match.
            Err(_) => String::new(),
        }
    }

    /// Whether `given` is the CSRF token of `sid` (constant time); never for an empty one.
    pub fn csrf_ok(&self, sid: &str, given: &[u8]) -> bool {
        let expected = self.csrf(sid);
        !given.is_empty() && !expected.is_empty() && bool::from(given.ct_eq(expected.as_bytes()))
    }

    /// The id of a visitor who needs no table entry (the sign-in form): the cookie's, where
    /// it has the form of one (so two open tabs keep working), else a new one.
    pub fn visitor_id(&self, cookie: Option<&str>) -> Option<String> {
        match cookie {
            Some(c) if well_formed(c) => Some(c.to_string()),
            _ => random_id(),
        }
    }

    /// The live session of the request, touched; an expired one is dropped on the way.
    pub fn with<R>(&self, sid: Option<&str>, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        let t = now();
        let mut table = self.table.lock().ok()?;
        self.sweep(&mut table, t, false);
        let sid = sid?;
        let sess = table.map.get(sid)?;
        if !self.live(sess, t) {
            table.map.remove(sid);
            return None;
        }
        table.uses += 1;
        let uses = table.uses;
        let sess = table.map.get_mut(sid)?;
        sess.last_seen = t;
        sess.touched = uses;
        Some(f(sess))
    }

    /// A new session (a new id: a visitor's own id never becomes one); returns its id. When
    /// the table is full the oldest anonymous session (no one signed in) makes room, or
    /// failing one the oldest of all.
    pub fn create(&self, init: impl FnOnce(&mut Session)) -> Option<String> {
        let t = now();
        let mut table = self.table.lock().ok()?;
        self.sweep(&mut table, t, false);
        if table.map.len() >= self.capacity {
            self.sweep(&mut table, t, true);
        }
        while table.map.len() >= self.capacity {
            let oldest = |anonymous: bool| {
                table
                    .map
                    .iter()
                    .filter(|(_, s)| !anonymous || s.user.is_none())
                    .min_by_key(|(_, s)| s.touched)
                    .map(|(k, _)| k.clone())
            };
            let victim = oldest(true).or_else(|| oldest(false))?;
            table.map.remove(&victim);
        }
        let id = random_id()?;
        table.uses += 1;
        let mut s = Session {
            created: t,
            last_seen: t,
            touched: table.uses,
            user: None,
            pending: None,
            replacing: None,
            replacing_since: 0,
            push_wait: None,
        };
        init(&mut s);
        table.map.insert(id.clone(), s);
        Some(id)
    }

    pub fn remove(&self, sid: &str) {
        if let Ok(mut t) = self.table.lock() {
            t.map.remove(sid);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().map(|t| t.map.len()).unwrap_or(0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn signed_in(name: &str) -> SignedIn {
        let user = UserName::parse(name).unwrap();
        let mut rec = mfa_core::UserRecord::new(
            &user,
            mfa_core::TotpParams {
                algorithm: mfa_model::Algorithm::SHA1,
                digits: 6,
                period: 30,
            },
            0,
        );
        rec.secret = Some(mfa_model::SealedSecret::from_stored(vec![1; 21]));
        SignedIn {
            key: KeyGeneration::of(&rec).unwrap(),
            user,
        }
    }

    #[test]
    fn a_full_table_drops_the_oldest_anonymous_session_first() {
        let s = Sessions::with_capacity(600, 3600, 3).unwrap();
        let alice = s.create(|x| x.user = Some(signed_in("alice"))).unwrap();
        let anon1 = s.create(|_| {}).unwrap();
        let anon2 = s.create(|_| {}).unwrap();
        // Full: the next one pushes out the oldest anonymous session, never alice's.
        let bob = s.create(|x| x.user = Some(signed_in("bob"))).unwrap();
        assert_eq!(s.len(), 3);
        assert!(s.with(Some(&anon1), |_| ()).is_none());
        assert!(s.with(Some(&anon2), |_| ()).is_some());
        let carol = s.create(|x| x.user = Some(signed_in("carol"))).unwrap();
        assert!(s.with(Some(&anon2), |_| ()).is_none());
        // Nobody anonymous left: the least recently used of all goes.
        assert!(s.with(Some(&alice), |_| ()).is_some());
        s.create(|_| {}).unwrap();
        assert!(s.with(Some(&bob), |_| ()).is_none());
        assert!(s.with(Some(&alice), |_| ()).is_some());
        assert!(s.with(Some(&carol), |_| ()).is_some());
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn sessions_end_after_their_lifetime_however_busy() {
        let s = Sessions::with_capacity(600, 0, 3).unwrap();
        let id = s.create(|_| {}).unwrap();
        assert!(
            s.with(Some(&id), |_| ()).is_none(),
            "lifetime 0: over at once"
        );
        let s = Sessions::with_capacity(0, 3600, 3).unwrap();
        let id = s.create(|_| {}).unwrap();
        assert!(s.with(Some(&id), |_| ()).is_none(), "idle 0: over at once");
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_id_and_the_portal() {
        let s = Sessions::new(600, 3600).unwrap();
        let id = s.visitor_id(None).unwrap();
        assert!(well_formed(&id));
        assert_eq!(s.visitor_id(Some(&id)).unwrap(), id, "a tab's id is kept");
        assert_ne!(s.visitor_id(Some("short")).unwrap(), "short");
        let token = s.csrf(&id);
        assert!(s.csrf_ok(&id, token.as_bytes()));
        assert!(!s.csrf_ok(&id, b""));
        let other = s.visitor_id(None).unwrap();
        assert!(!s.csrf_ok(&other, token.as_bytes()));
        // Another start of the portal (another key) takes no token of this one.
        let s2 = Sessions::new(600, 3600).unwrap();
        assert!(!s2.csrf_ok(&id, token.as_bytes()));
    }
}
