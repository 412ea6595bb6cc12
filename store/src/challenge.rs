//! Pending RADIUS Access-Challenges, kept in the store so that any node on it can finish a
//! challenge another node started (issue 24): a gateway that alternates between two servers
//! sends the second round to the one that did not send the State.
//!
//! A row is keyed by the SHA-256 of the State, never the State itself: the State is a bearer
//! token for the second round, and a copy of the database (a backup, a replica) must not
//! hand out live ones. The State's 128 random bits make a plain hash enough.
//!
//! Single use across nodes: [`crate::Store::take_challenge`] deletes the row and returns it
//! in one statement (`DELETE ... RETURNING`), so of two nodes presented one State at the same
//! moment exactly one gets the row. The caps on pending challenges are counted in the store
//! inside the write transaction that inserts ([`crate::Store::put_challenge`]), so they hold
//! for all nodes together.

/// One pending challenge as stored. Times are Unix milliseconds: `challenge_timeout` may be
/// one second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    /// SHA-256 of the State's random bits.
    pub state_hash: [u8; 32],
    /// The canonical user name.
    pub user: String,
    /// The configured client entry that asked.
    pub client: String,
    /// The source address of the host, where the entry covers several hosts; empty
    /// otherwise.
    pub host: String,
    /// The request's service, which the second round must say again.
    pub service: String,
    /// The end user's address as the first round saw it (`local`, `unknown` or an address).
    pub client_ip: String,
    pub created: i64,
    pub expires: i64,
    /// The push this challenge waits for, if any: its id, number and expiry (Unix seconds).
    pub push_id: Option<[u8; 16]>,
    pub push_number: Option<u8>,
    pub push_expires: Option<i64>,
}

/// How many live challenges the store may hold, as the node that inserts counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeLimits {
    /// All clients together.
    pub total: usize,
    /// One client entry.
    pub per_client: usize,
    /// One host of an entry that covers several (rows whose `host` is not empty).
    pub per_host: usize,
    /// One user from one host of one client: past it, that user's oldest gives way.
    pub per_user: usize,
}

pub(crate) fn no_challenges() -> crate::StoreError {
    crate::StoreError::Engine {
        context: "pending challenges".into(),
        source: "this store engine does not keep pending challenges".into(),
    }
}
