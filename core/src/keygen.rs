//! Which key a sign-in was made with. The portal's session stands for the key the user
//! proved with a code, and for nothing else: once that key is replaced or removed, or the
//! user is locked, every action of that session is refused in the store transaction that
//! would carry it out (so no change can slip in between a check and the write).

use mfa_model::{Refusal, UserName, UserRecord};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A digest of the user's stored (sealed) seed and of when the key last changed. It needs
/// no column of its own: every write of a key (an enrolment, `--replace`, "Replace key")
/// seals under a fresh random nonce and sets `mfa_changed`, so the digest changes each
/// time, even for the same seed enrolled again; an unlinked user has none.
/// `mfactl rekey` reseals every seed and so ends every portal session (wanted: a new store
/// key is a reason to sign in again, and nothing else notices it).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyGeneration([u8; 32]);

impl std::fmt::Debug for KeyGeneration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyGeneration(..)")
    }
}

impl KeyGeneration {
    /// The generation of the key `rec` holds now; `None` when it holds none. The one place
    /// it is derived.
    pub fn of(rec: &UserRecord) -> Option<Self> {
        let sealed = rec.secret.as_ref()?;
        let mut h = Sha256::new();
        h.update(b"mfa key generation v1\0");
        h.update(rec.name.as_str().as_bytes());
        h.update([0]);
        h.update(rec.mfa_changed.unwrap_or(0).to_be_bytes());
        h.update(sealed.stored());
        Some(Self(h.finalize().into()))
    }

    /// Whether a sign-in made with this key still holds for `rec` (`None`: no record) at
    /// `now`: the same key, and the user not locked. Otherwise the refusal that ends it.
    pub fn holds(
        &self,
        user: &UserName,
        rec: Option<&UserRecord>,
        now: i64,
    ) -> Result<(), Refusal> {
        let same = rec
            .and_then(Self::of)
            .is_some_and(|k| bool::from(k.0.ct_eq(&self.0)));
        if same && rec.is_some_and(|r| r.locked(now).is_none()) {
            Ok(())
        } else {
            Err(Refusal::SignInEnded(user.clone()))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mfa_model::{Algorithm, SealedSecret, TotpParams};

    #[test]
    fn a_new_key_an_unlink_or_a_lock_ends_a_sign_in() {
        let lea = UserName::parse("lea").unwrap();
        let mut rec = UserRecord::new(
            &lea,
            TotpParams {
                algorithm: Algorithm::SHA1,
                digits: 6,
                period: 30,
            },
            100,
        );
        assert!(KeyGeneration::of(&rec).is_none(), "no key, no generation");
        rec.secret = Some(SealedSecret::from_stored(vec![1, 2, 3]));
        let k = KeyGeneration::of(&rec).unwrap();
        assert_eq!(k.holds(&lea, Some(&rec), 100), Ok(()));
        // Other stored bytes (a new nonce): another generation.
        let mut replaced = rec.clone();
        replaced.secret = Some(SealedSecret::from_stored(vec![1, 2, 4]));
        assert!(k.holds(&lea, Some(&replaced), 100).is_err());
        // The same bytes written again later: another generation.
        let mut again = rec.clone();
        again.mfa_changed = Some(150);
        assert!(k.holds(&lea, Some(&again), 160).is_err());
        // The same bytes under another name are another user's key.
        let mut other = rec.clone();
        other.name = UserName::parse("max").unwrap();
        assert_ne!(KeyGeneration::of(&other), Some(k.clone()));
        let mut unlinked = rec.clone();
        unlinked.secret = None;
        assert_eq!(
            k.holds(&lea, Some(&unlinked), 100),
            Err(Refusal::SignInEnded(lea.clone()))
        );
        assert!(k.holds(&lea, None, 100).is_err());
        let mut locked = rec.clone();
        locked.locked_until = Some(200);
        assert!(k.holds(&lea, Some(&locked), 150).is_err());
        assert_eq!(
            k.holds(&lea, Some(&locked), 200),
            Ok(()),
            "the lock is over"
        );
    }
}
