//! TOTP shared secrets: generated, parsed as people type them, shown only at enrolment.

use std::fmt;
use std::sync::LazyLock;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use data_encoding::{BASE32_NOPAD, Encoding};
// The layout of a stored seed is the model's, so engines check rows without the core.
use mfa_model::{
    DeviceId, MAX_BLOB_BYTES, NONCE_BYTES, SEALED_HEADER, SealedBlob, SealedSecret, TAG_BYTES,
    UserName, check_sealed_blob, check_seed_len,
};
pub use mfa_model::{
    FORM_CLEAR, FORM_XCHACHA20POLY1305, KEY_ID_BYTES, KeyId, MAX_SECRET_BYTES, MIN_SECRET_BYTES,
    SecretError, check_sealed, sealed_key_id,
};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// 160 bits, as RFC 4226 recommends and every authenticator app accepts.
pub const NEW_SECRET_BYTES: usize = 20;

/// Base32 without the trailing-bit check: 26-character keys (128 bits + 2 spare bits) as some
/// generators write them must decode.
static BASE32_LENIENT: LazyLock<Option<Encoding>> = LazyLock::new(|| {
    let mut spec = BASE32_NOPAD.specification();
    spec.check_trailing_bits = false;
    spec.encoding().ok()
});

/// A TOTP key. Wiped from memory on drop; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    pub fn generate() -> Result<Self, SecretError> {
        let mut buf = Zeroizing::new(vec![0u8; NEW_SECRET_BYTES]);
        getrandom::fill(&mut buf).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(Self(buf))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        check_seed_len(bytes.len())?;
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// Parses base32 the way people type and paste it: any case, spaces, dashes and missing
    /// or present `=` padding.
    pub fn from_base32(text: &str) -> Result<Self, SecretError> {
        let mut clean = Zeroizing::new(String::with_capacity(text.len()));
        for (i, c) in text.chars().enumerate() {
            match c {
                ' ' | '\t' | '-' | '\n' | '\r' => {}
                'a'..='z' | 'A'..='Z' | '2'..='7' => clean.push(c.to_ascii_uppercase()),
                '=' => {}
                _ => return Err(SecretError::BadCharacter { position: i + 1 }),
            }
        }
        if clean.is_empty() {
            return Err(SecretError::Empty);
        }
        let enc = BASE32_LENIENT
            .as_ref()
            .ok_or_else(|| SecretError::Random("base32 table".into()))?;
        let bytes = Zeroizing::new(
            enc.decode(clean.as_bytes())
                .map_err(|_| SecretError::BadLength)?,
        );
        Self::from_bytes(&bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Unpadded upper-case base32, as the `otpauth://` URI carries it.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE32_NOPAD.encode(&self.0))
    }

    /// Base32 in groups of four, for typing by hand: `ABCD EFGH ...`.
    pub fn to_grouped(&self) -> Zeroizing<String> {
        let b32 = self.to_base32();
        let mut out = Zeroizing::new(String::with_capacity(b32.len() * 5 / 4 + 1));
        for (i, c) in b32.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push(' ');
            }
            out.push(c);
        }
        out
    }
}

/// Turns keys into the form the store keeps and back. The only place a seed crosses the
/// store boundary, so encryption at rest is a [`Sealer`], not a change in every engine and
/// front end. Every stored form starts with a form byte, so a clear row written before the
/// store had a key is told apart from a sealed one without guessing:
///
/// - `0x00 || seed` ([`FORM_CLEAR`]): [`Unsealed`], only in a store that never had a key
///   (schema version 3 rows get the byte on upgrade); sealed on first open with a key.
/// - `0x01 || key id (8) || nonce (24) || XChaCha20-Poly1305(seed) || tag (16)`
///   ([`FORM_XCHACHA20POLY1305`]): [`Encrypted`]; the associated data is the form byte, the
///   key id and the canonical user name, so a row copied to another user does not open.
///
/// Other values the store must not reveal (a push subscription: its endpoint lets anyone
/// push to the phone) are sealed the same way as [`SealedBlob`]s ([`Sealer::seal_blob`]),
/// with associated data of their own ([`SealedFor`]), so a blob never opens as a seed nor as
/// another blob, and a copy of the database alone reveals none of them. A blob has no clear
/// form: a sealer without a key refuses to seal one.
pub trait Sealer: Send + Sync {
    fn seal(&self, user: &UserName, secret: &TotpSecret) -> Result<SealedSecret, SecretError>;
    fn unseal(&self, user: &UserName, sealed: &SealedSecret) -> Result<TotpSecret, SecretError>;
    /// The id of the store key this sealer seals under (`None`: clear form).
    fn key_id(&self) -> Option<KeyId> {
        None
    }
    /// Seals `value` for `what`: only [`Sealer::unseal_blob`] with the same `what` opens it.
    fn seal_blob(&self, what: &SealedFor<'_>, value: &[u8]) -> Result<SealedBlob, SecretError> {
        let _ = (what, value);
        Err(SecretError::BadForm(
            "no store key to seal the value under".into(),
        ))
    }
    /// Opens a blob sealed for `what`.
    fn unseal_blob(
        &self,
        what: &SealedFor<'_>,
        sealed: &SealedBlob,
    ) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let _ = (what, sealed);
        Err(SecretError::BadForm(
            "no store key to open the value with".into(),
        ))
    }
}

/// What a [`SealedBlob`] is, bound into its associated data: a blob copied into another
/// row (another device, another user) or taken for another kind of value does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedFor<'a> {
    /// The Web Push subscription of `user`'s device `device`.
    PushSubscription {
        user: &'a UserName,
        device: &'a DeviceId,
    },
}

impl SealedFor<'_> {
    fn user(&self) -> &UserName {
        match self {
            SealedFor::PushSubscription { user, .. } => user,
        }
    }

    /// The associated data after the form byte and the key id. It starts with a 0 byte, which
    /// no user name does, so it never equals a seed's (form, key id, user name); then the
    /// kind's tag and its fields, each ended by a 0 byte or of fixed length.
    fn context(&self) -> Vec<u8> {
        let mut c = vec![0];
        match self {
            SealedFor::PushSubscription { user, device } => {
                c.extend_from_slice(b"push-subscription\0");
                c.extend_from_slice(user.as_str().as_bytes());
                c.push(0);
                c.extend_from_slice(&device.0);
            }
        }
        c
    }
}

/// Bytes of a store key file: a 256-bit XChaCha20-Poly1305 key, nothing else.
pub const STORE_KEY_BYTES: usize = 32;

/// The key that encrypts the seeds. Wiped on drop; `Debug` never shows it.
pub struct StoreKey {
    key: Zeroizing<[u8; STORE_KEY_BYTES]>,
    id: KeyId,
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey(id {})", hex(&self.id))
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl StoreKey {
    /// 32 bytes from the system's random source.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = Zeroizing::new([0u8; STORE_KEY_BYTES]);
        getrandom::fill(key.as_mut_slice()).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(Self::from_array(key))
    }

    /// A key file's content: exactly [`STORE_KEY_BYTES`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut key = Zeroizing::new([0u8; STORE_KEY_BYTES]);
        if bytes.len() != STORE_KEY_BYTES {
            return None;
        }
        key.copy_from_slice(bytes);
        Some(Self::from_array(key))
    }

    fn from_array(key: Zeroizing<[u8; STORE_KEY_BYTES]>) -> Self {
        let mut h = Sha256::new();
        h.update(b"mfa-store-key-id-v1");
        h.update(key.as_slice());
        let digest = h.finalize();
        let mut id = [0u8; KEY_ID_BYTES];
        id.copy_from_slice(&digest[..KEY_ID_BYTES]);
        Self { key, id }
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key's bytes, for writing the key file.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.key.as_slice()
    }
}

/// The clear form ([`FORM_CLEAR`]): what a store without a key held. The core opens its
/// rows once, to seal them under a key; it never writes this form into a store that has one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unsealed;

impl Sealer for Unsealed {
    fn seal(&self, _user: &UserName, secret: &TotpSecret) -> Result<SealedSecret, SecretError> {
        let mut out = Vec::with_capacity(1 + secret.bytes().len());
        out.push(FORM_CLEAR);
        out.extend_from_slice(secret.bytes());
        Ok(SealedSecret::from_stored(out))
    }

    fn unseal(&self, _user: &UserName, sealed: &SealedSecret) -> Result<TotpSecret, SecretError> {
        match sealed.stored().split_first() {
            Some((&FORM_CLEAR, seed)) => TotpSecret::from_bytes(seed),
            _ => Err(SecretError::BadForm("not the clear form".into())),
        }
    }
}

/// Seeds encrypted with XChaCha20-Poly1305 (RustCrypto) under the store key, a fresh random
/// 192-bit nonce per seal (random nonces are safe at this size), the user name bound in as
/// associated data.
#[derive(Debug)]
pub struct Encrypted {
    key: StoreKey,
}

impl Encrypted {
    pub fn new(key: StoreKey) -> Self {
        Self { key }
    }

    fn cipher(&self) -> Result<XChaCha20Poly1305, SecretError> {
        XChaCha20Poly1305::new_from_slice(self.key.bytes())
            .map_err(|_| SecretError::BadForm("store key of the wrong length".into()))
    }

    fn ad(&self, user: &UserName) -> Zeroizing<Vec<u8>> {
        let mut ad = Zeroizing::new(Vec::with_capacity(SEALED_HEADER + user.as_str().len()));
        ad.push(FORM_XCHACHA20POLY1305);
        ad.extend_from_slice(&self.key.id);
        ad.extend_from_slice(user.as_str().as_bytes());
        ad
    }

    fn blob_ad(&self, what: &SealedFor<'_>) -> Vec<u8> {
        let mut ad = vec![FORM_XCHACHA20POLY1305];
        ad.extend_from_slice(&self.key.id);
        ad.extend_from_slice(&what.context());
        ad
    }

    /// `form || key id || nonce || AEAD(plain, ad)`.
    fn encrypt(&self, plain: &[u8], ad: &[u8], what: &str) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| SecretError::Random(e.to_string()))?;
        // Room for the tag up front, so the buffer holding the clear value never
        // reallocates and leaves a copy behind.
        let mut buf = Zeroizing::new(Vec::with_capacity(plain.len() + TAG_BYTES));
        buf.extend_from_slice(plain);
        self.cipher()?
            .encrypt_in_place(&XNonce::from(nonce), ad, &mut *buf)
            .map_err(|_| SecretError::BadForm(format!("the {what} could not be encrypted")))?;
        let mut out = Vec::with_capacity(SEALED_HEADER + NONCE_BYTES + buf.len());
        out.push(FORM_XCHACHA20POLY1305);
        out.extend_from_slice(&self.key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }
}

impl Sealer for Encrypted {
    fn seal(&self, user: &UserName, secret: &TotpSecret) -> Result<SealedSecret, SecretError> {
        let out = self.encrypt(secret.bytes(), &self.ad(user), "seed")?;
        Ok(SealedSecret::from_stored(out))
    }

    fn unseal(&self, user: &UserName, sealed: &SealedSecret) -> Result<TotpSecret, SecretError> {
        let b = sealed.stored();
        match b.first() {
            Some(&FORM_XCHACHA20POLY1305) => {}
            Some(&FORM_CLEAR) => {
                return Err(SecretError::ClearInSealedStore {
                    user: user.to_string(),
                });
            }
            _ => return Err(SecretError::BadForm("unknown form".into())),
        }
        check_sealed(sealed)?;
        let id = b.get(1..SEALED_HEADER);
        if id != Some(self.key.id.as_slice()) {
            return Err(SecretError::OtherKey {
                user: user.to_string(),
            });
        }
        let nonce: [u8; NONCE_BYTES] = b
            .get(SEALED_HEADER..SEALED_HEADER + NONCE_BYTES)
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| SecretError::BadForm("too short".into()))?;
        let ct = b
            .get(SEALED_HEADER + NONCE_BYTES..)
            .ok_or_else(|| SecretError::BadForm("too short".into()))?;
        let mut buf = Zeroizing::new(ct.to_vec());
        self.cipher()?
            .decrypt_in_place(&XNonce::from(nonce), &self.ad(user), &mut *buf)
            .map_err(|_| SecretError::Unseal {
                user: user.to_string(),
            })?;
        TotpSecret::from_bytes(&buf)
    }

    fn key_id(&self) -> Option<KeyId> {
        Some(self.key.id)
    }

    fn seal_blob(&self, what: &SealedFor<'_>, value: &[u8]) -> Result<SealedBlob, SecretError> {
        if value.is_empty() || value.len() > MAX_BLOB_BYTES {
            return Err(SecretError::BadForm(format!(
                "a value of {} bytes cannot be sealed (1 to {MAX_BLOB_BYTES})",
                value.len()
            )));
        }
        let out = self.encrypt(value, &self.blob_ad(what), "value")?;
        Ok(SealedBlob::from_stored(out))
    }

    fn unseal_blob(
        &self,
        what: &SealedFor<'_>,
        sealed: &SealedBlob,
    ) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        check_sealed_blob(sealed)?;
        let b = sealed.stored();
        if b.get(1..SEALED_HEADER) != Some(self.key.id.as_slice()) {
            return Err(SecretError::OtherKey {
                user: what.user().to_string(),
            });
        }
        let nonce: [u8; NONCE_BYTES] = b
            .get(SEALED_HEADER..SEALED_HEADER + NONCE_BYTES)
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| SecretError::BadForm("too short".into()))?;
        let ct = b
            .get(SEALED_HEADER + NONCE_BYTES..)
            .ok_or_else(|| SecretError::BadForm("too short".into()))?;
        let mut buf = Zeroizing::new(ct.to_vec());
        self.cipher()?
            .decrypt_in_place(&XNonce::from(nonce), &self.blob_ad(what), &mut *buf)
            .map_err(|_| SecretError::Unseal {
                user: what.user().to_string(),
            })?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_forms_parse_alike() {
        let a = TotpSecret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        for t in [
            "jbsw y3dp ehpk 3pxp",
            "JBSW-Y3DP-EHPK-3PXP",
            "JBSWY3DPEHPK3PXP======",
            " jbswy3dpehpk3pxp\n",
        ] {
            assert_eq!(TotpSecret::from_base32(t).unwrap(), a, "{t}");
        }
        assert_eq!(a.to_grouped().as_str(), "JBSW Y3DP EHPK 3PXP");
    }

    #[test]
    fn bad_keys_are_named() {
        assert_eq!(
            TotpSecret::from_base32("JBSW1Y3DP"),
            Err(SecretError::BadCharacter { position: 5 })
        );
        assert_eq!(TotpSecret::from_base32(""), Err(SecretError::Empty));
        assert_eq!(
            TotpSecret::from_base32("JBSWY3DP"),
            Err(SecretError::TooShort { bits: 40 })
        );
        assert_eq!(
            TotpSecret::from_base32("JBSWY3DPE"),
            Err(SecretError::BadLength)
        );
    }

    #[test]
    fn generated_keys_are_160_bits_and_differ() {
        let a = TotpSecret::generate().unwrap();
        let b = TotpSecret::generate().unwrap();
        assert_eq!(a.bytes().len(), 20);
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "TotpSecret(<redacted>)");
        assert_eq!(TotpSecret::from_base32(&a.to_base32()).unwrap(), a);
    }

    /// A sealed blob opens only for what it was sealed for: another device, another user, a
    /// seed's place, another key all refuse it; a sealer without a key seals none; the clear
    /// value is nowhere in the stored bytes.
    #[test]
    fn blobs_open_only_for_what_they_were_sealed_for() {
        let sealer = Encrypted::new(StoreKey::generate().unwrap());
        let ann = UserName::parse("ann").unwrap();
        let bob = UserName::parse("bob").unwrap();
        let (d1, d2) = (DeviceId([1; 16]), DeviceId([2; 16]));
        let what = SealedFor::PushSubscription {
            user: &ann,
            device: &d1,
        };
        let value = b"{\"endpoint\":\"https://fcm.googleapis.com/fcm/send/secret-endpoint\"}";
        let sealed = sealer.seal_blob(&what, value).unwrap();
        assert!(check_sealed_blob(&sealed).is_ok());
        assert!(!sealed.stored().windows(15).any(|w| w == b"secret-endpoint"));
        assert_eq!(
            sealer.unseal_blob(&what, &sealed).unwrap().as_slice(),
            value
        );
        for other in [
            SealedFor::PushSubscription {
                user: &ann,
                device: &d2,
            },
            SealedFor::PushSubscription {
                user: &bob,
                device: &d1,
            },
        ] {
            assert!(matches!(
                sealer.unseal_blob(&other, &sealed),
                Err(SecretError::Unseal { .. })
            ));
        }
        // Taken for a seed (the same layout): its associated data differs.
        let as_seed = SealedSecret::from_stored(sealed.stored().to_vec());
        assert!(sealer.unseal(&ann, &as_seed).is_err());
        // A seed taken for a blob.
        let seed = sealer.seal(&ann, &TotpSecret::generate().unwrap()).unwrap();
        let as_blob = SealedBlob::from_stored(seed.stored().to_vec());
        assert!(sealer.unseal_blob(&what, &as_blob).is_err());
        let other_key = Encrypted::new(StoreKey::generate().unwrap());
        assert!(matches!(
            other_key.unseal_blob(&what, &sealed),
            Err(SecretError::OtherKey { .. })
        ));
        assert!(Unsealed.seal_blob(&what, value).is_err());
        assert!(Unsealed.unseal_blob(&what, &sealed).is_err());
        assert!(sealer.seal_blob(&what, b"").is_err());
        assert!(sealer.seal_blob(&what, &[0; MAX_BLOB_BYTES + 1]).is_err());
        // Two seals of one value differ (a fresh nonce each).
        assert_ne!(sealer.seal_blob(&what, value).unwrap(), sealed);
    }
}
