//! The portal's sessions: in memory only, keyed by a random id in a cookie. A session holds
//! what must never reach the page's form or a cookie: the key shown for an invite and not
//! yet confirmed, the signed-in user, the new key of "Replace key".

use std::collections::HashMap;
use std::sync::Mutex;

use data_encoding::BASE64URL_NOPAD;
use mfa_common::login::now;
use mfa_common::{TotpSecret, UserName};

/// Sessions kept at most (memory bound); new visitors beyond it get "try later".
const MAX_SESSIONS: usize = 10_000;

/// A key shown on an enrolment page and not yet confirmed: kept here, in memory only, for
/// the session and the invite it was shown for; never in the page's form or a cookie.
pub struct Pending {
    pub invite: [u8; 32],
    pub user: UserName,
    pub secret: TotpSecret,
}

pub struct Session {
    pub csrf: String,
    pub last_seen: i64,
    pub user: Option<UserName>,
    pub pending: Option<Pending>,
    /// "Replace key" in My account: the new key shown to the signed-in user and not yet
    /// confirmed. Only here (wiped on drop, with the session); the old key holds until the
    /// new one is confirmed.
    pub replacing: Option<TotpSecret>,
}

/// The table of live sessions; a session idle for `idle` seconds is gone.
pub struct Sessions {
    idle: i64,
    map: Mutex<HashMap<String, Session>>,
}

pub fn random_id() -> Option<String> {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).ok()?;
    Some(BASE64URL_NOPAD.encode(&b))
}

impl Sessions {
    pub fn new(idle: i64) -> Self {
        Self {
            idle,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The live session of the request, touched; expired ones are dropped on the way.
    pub fn with<R>(&self, sid: Option<&str>, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        let t = now();
        let mut s = self.map.lock().ok()?;
        let idle = self.idle;
        s.retain(|_, v| t - v.last_seen < idle);
        let sess = s.get_mut(sid?)?;
        sess.last_seen = t;
        Some(f(sess))
    }

    /// A new session; returns its id and CSRF token.
    pub fn create(&self) -> Option<(String, String)> {
        let t = now();
        let mut s = self.map.lock().ok()?;
        let idle = self.idle;
        s.retain(|_, v| t - v.last_seen < idle);
        if s.len() >= MAX_SESSIONS {
            return None;
        }
        let (id, csrf) = (random_id()?, random_id()?);
        s.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                last_seen: t,
                user: None,
                pending: None,
                replacing: None,
            },
        );
        Some((id, csrf))
    }

    pub fn remove(&self, sid: &str) {
        if let Ok(mut s) = self.map.lock() {
            s.remove(sid);
        }
    }
}
