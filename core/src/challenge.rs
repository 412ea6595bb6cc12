//! Pending RADIUS Access-Challenges in the store (issue 24), so that any daemon on one store
//! finishes a challenge another started. The daemon owns what a challenge binds and its
//! State's text on the wire; here a State's random bits are drawn, and only their SHA-256
//! reaches the store (`mfa_store::challenge` says why), with the caps counted there.

use mfa_store::{ChallengeLimits, ChallengeRow};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{Core, CoreError};

/// The random bits of a State, in octets.
pub const STATE_BITS: usize = 16;

/// See [`Core::challenges`].
#[derive(Clone, Copy)]
pub struct Challenges<'a> {
    pub(crate) core: &'a Core,
}

impl std::fmt::Debug for Challenges<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Challenges")
    }
}

/// What the store keeps of a State.
pub fn state_hash(bits: &[u8; STATE_BITS]) -> [u8; 32] {
    Sha256::digest(bits).into()
}

impl Challenges<'_> {
    /// Draws a new State's random bits and stores `row` under their hash
    /// (`Store::put_challenge`: within `limits`, counted over every node). `None` where a
    /// cap is reached: nothing was stored. `row.state_hash` is set here.
    pub fn issue(
        &self,
        mut row: ChallengeRow,
        limits: &ChallengeLimits,
    ) -> Result<Option<Zeroizing<[u8; STATE_BITS]>>, CoreError> {
        let mut bits = Zeroizing::new([0u8; STATE_BITS]);
        getrandom::fill(bits.as_mut_slice())?;
        row.state_hash = state_hash(&bits);
        Ok(self.core.store.put_challenge(&row, limits)?.then_some(bits))
    }

    /// Takes the challenge of the State `bits` out of the store, whatever it holds (expired
    /// or not: the caller judges); `None` where none is stored, or it was taken already, by
    /// this node or another.
    pub fn take(&self, bits: &[u8; STATE_BITS]) -> Result<Option<ChallengeRow>, CoreError> {
        Ok(self.core.store.take_challenge(&state_hash(bits))?)
    }

    /// Deletes the challenges expired at `now_ms` (Unix milliseconds); returns how many.
    pub fn prune(&self, now_ms: i64) -> Result<usize, CoreError> {
        Ok(self.core.store.prune_challenges(now_ms)?)
    }

    /// How many challenges are live at `now_ms` on every node together.
    pub fn live(&self, now_ms: i64) -> Result<usize, CoreError> {
        Ok(self.core.store.live_challenges(now_ms)?)
    }
}
