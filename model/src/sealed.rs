//! The layout of a sealed seed, as the store keeps it: what an engine checks when it reads a
//! row, without the key or the cipher (those stay in the core's sealer). Here, not in the
//! core, so a store engine can check rows and key ids without depending on the core.
//!
//! Every stored form starts with a form byte, so a clear row written before the store had a
//! key is told apart from a sealed one without guessing:
//!
//! - `0x00 || seed` ([`FORM_CLEAR`]): only in a store that never had a key.
//! - `0x01 || key id (8) || nonce (24) || XChaCha20-Poly1305(seed) || tag (16)`
//!   ([`FORM_XCHACHA20POLY1305`]).

use std::fmt;

use crate::push::SealedBlob;
use crate::record::SealedSecret;

/// RFC 4226 asks for at least 128 bits, 160 recommended; google-authenticator files carry
/// 80-bit keys, which must still import so that nobody has to re-enrol.
pub const MIN_SECRET_BYTES: usize = 10;
pub const MAX_SECRET_BYTES: usize = 64;

pub const FORM_CLEAR: u8 = 0x00;
pub const FORM_XCHACHA20POLY1305: u8 = 0x01;
pub const KEY_ID_BYTES: usize = 8;
pub const NONCE_BYTES: usize = 24;
pub const TAG_BYTES: usize = 16;
/// The form byte and the key id.
pub const SEALED_HEADER: usize = 1 + KEY_ID_BYTES;

/// Names a store key without revealing it: the first 8 bytes of SHA-256 over a domain tag
/// and the key. The store keeps the id of the key its seeds are sealed under, so a wrong key
/// file is refused when the store is opened, naming the file, not at some user's login.
pub type KeyId = [u8; KEY_ID_BYTES];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    Empty,
    BadCharacter {
        position: usize,
    },
    BadLength,
    TooShort {
        bits: usize,
    },
    TooLong,
    Random(String),
    /// A stored seed in no form this program writes.
    BadForm(String),
    /// The AEAD refused the stored seed: changed, swapped from another user's row, or a
    /// different key with the same id (practically impossible).
    Unseal {
        user: String,
    },
    /// The seed is sealed under another store key than this process holds.
    OtherKey {
        user: String,
    },
    /// A clear seed in a store whose seeds are encrypted: never written by this program.
    ClearInSealedStore {
        user: String,
    },
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::Empty => write!(f, "the key is empty"),
            SecretError::BadCharacter { position } => write!(
                f,
                "character {position} of the key is not base32 (only A-Z and 2-7 are used)"
            ),
            SecretError::BadLength => write!(f, "the key has a length no base32 text can have"),
            SecretError::TooShort { bits } => write!(
                f,
                "the key has only {bits} bits; at least {} are required",
                MIN_SECRET_BYTES * 8
            ),
            SecretError::TooLong => write!(f, "the key is longer than {MAX_SECRET_BYTES} bytes"),
            SecretError::Random(e) => write!(f, "no random numbers from the system: {e}"),
            SecretError::BadForm(e) => write!(f, "the stored key is damaged: {e}"),
            SecretError::Unseal { user } => write!(
                f,
                "the stored key of user {user:?} does not decrypt under the store's key file: the row was changed or copied from another user; re-enrol the user"
            ),
            SecretError::OtherKey { user } => write!(
                f,
                "the stored key of user {user:?} is encrypted under another key than this process holds (rotated with `mfactl rekey` since it started? restart it)"
            ),
            SecretError::ClearInSealedStore { user } => write!(
                f,
                "the stored key of user {user:?} is unencrypted in an encrypted store (written by hand?); refusing it, re-enrol the user"
            ),
        }
    }
}

impl std::error::Error for SecretError {}

/// Whether a seed of `len` bytes has a length this program accepts.
pub fn check_seed_len(len: usize) -> Result<(), SecretError> {
    if len < MIN_SECRET_BYTES {
        return Err(SecretError::TooShort { bits: len * 8 });
    }
    if len > MAX_SECRET_BYTES {
        return Err(SecretError::TooLong);
    }
    Ok(())
}

/// The key id a stored seed is sealed under (`None`: the clear form or damaged).
pub fn sealed_key_id(sealed: &SealedSecret) -> Option<KeyId> {
    match sealed.stored().split_first() {
        Some((&FORM_XCHACHA20POLY1305, rest)) => rest.get(..KEY_ID_BYTES)?.try_into().ok(),
        _ => None,
    }
}

/// Whether a stored seed has a form some sealer can open (the form byte and the lengths),
/// checked when the row is read.
pub fn check_sealed(sealed: &SealedSecret) -> Result<(), SecretError> {
    let b = sealed.stored();
    match b.split_first() {
        Some((&FORM_CLEAR, seed)) => check_seed_len(seed.len()),
        Some((&FORM_XCHACHA20POLY1305, rest)) => {
            let ct = rest
                .len()
                .checked_sub(KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES)
                .ok_or_else(|| SecretError::BadForm("shorter than an encrypted key".into()))?;
            if (MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&ct) {
                Ok(())
            } else {
                Err(SecretError::BadForm(format!(
                    "an encrypted key of {ct} bytes (must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES})"
                )))
            }
        }
        Some((form, _)) => Err(SecretError::BadForm(format!(
            "unknown form byte 0x{form:02x} (0x00 clear, 0x01 encrypted)"
        ))),
        None => Err(SecretError::BadForm("empty".into())),
    }
}

/// The largest value a [`SealedBlob`] seals (a push subscription is a few hundred bytes).
pub const MAX_BLOB_BYTES: usize = 4096;

/// The key id a sealed blob is sealed under (`None`: damaged).
pub fn sealed_blob_key_id(sealed: &SealedBlob) -> Option<KeyId> {
    match sealed.stored().split_first() {
        Some((&FORM_XCHACHA20POLY1305, rest)) => rest.get(..KEY_ID_BYTES)?.try_into().ok(),
        _ => None,
    }
}

/// Whether a stored blob has the sealed layout (the form byte and the lengths): a blob has
/// no clear form.
pub fn check_sealed_blob(sealed: &SealedBlob) -> Result<(), SecretError> {
    let b = sealed.stored();
    match b.split_first() {
        Some((&FORM_XCHACHA20POLY1305, rest)) => {
            let ct = rest
                .len()
                .checked_sub(KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES)
                .ok_or_else(|| SecretError::BadForm("shorter than a sealed value".into()))?;
            if (1..=MAX_BLOB_BYTES).contains(&ct) {
                Ok(())
            } else {
                Err(SecretError::BadForm(format!(
                    "a sealed value of {ct} bytes (must be 1 to {MAX_BLOB_BYTES})"
                )))
            }
        }
        Some((form, _)) => Err(SecretError::BadForm(format!(
            "form byte 0x{form:02x} (a sealed value is always 0x01, encrypted)"
        ))),
        None => Err(SecretError::BadForm("empty".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_lengths() {
        let s = |b: Vec<u8>| SealedSecret::from_stored(b);
        assert!(check_sealed(&s([vec![FORM_CLEAR], vec![1; 20]].concat())).is_ok());
        assert_eq!(
            check_sealed(&s([vec![FORM_CLEAR], vec![1; 5]].concat())),
            Err(SecretError::TooShort { bits: 40 })
        );
        let mut enc = vec![FORM_XCHACHA20POLY1305];
        enc.extend_from_slice(&[9; KEY_ID_BYTES]);
        enc.extend_from_slice(&[0; NONCE_BYTES + 20 + TAG_BYTES]);
        assert!(check_sealed(&s(enc.clone())).is_ok());
        assert_eq!(sealed_key_id(&s(enc.clone())), Some([9; KEY_ID_BYTES]));
        enc.truncate(SEALED_HEADER + NONCE_BYTES + TAG_BYTES + 3);
        assert!(matches!(
            check_sealed(&s(enc)),
            Err(SecretError::BadForm(_))
        ));
        assert!(matches!(
            check_sealed(&s(vec![7, 1, 2])),
            Err(SecretError::BadForm(_))
        ));
        assert!(matches!(
            check_sealed(&s(Vec::new())),
            Err(SecretError::BadForm(_))
        ));
        assert_eq!(sealed_key_id(&s(vec![FORM_CLEAR, 1, 2])), None);
    }

    #[test]
    fn sealed_blobs_have_no_clear_form() {
        let b = |v: Vec<u8>| SealedBlob::from_stored(v);
        let mut enc = vec![FORM_XCHACHA20POLY1305];
        enc.extend_from_slice(&[9; KEY_ID_BYTES]);
        enc.extend_from_slice(&[0; NONCE_BYTES + 300 + TAG_BYTES]);
        assert!(check_sealed_blob(&b(enc.clone())).is_ok());
        assert_eq!(sealed_blob_key_id(&b(enc.clone())), Some([9; KEY_ID_BYTES]));
        enc.truncate(SEALED_HEADER + NONCE_BYTES + TAG_BYTES);
        assert!(check_sealed_blob(&b(enc)).is_err(), "nothing sealed");
        assert!(check_sealed_blob(&b([vec![FORM_CLEAR], vec![1; 40]].concat())).is_err());
        assert!(check_sealed_blob(&b(Vec::new())).is_err());
    }
}
