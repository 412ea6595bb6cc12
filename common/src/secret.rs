//! TOTP shared secrets: generated, parsed as people type them, shown only at enrolment.

use std::fmt;
use std::sync::LazyLock;

use data_encoding::{BASE32_NOPAD, Encoding};
use mfa_model::{SealedSecret, UserName};
use zeroize::Zeroizing;

/// RFC 4226 asks for at least 128 bits, 160 recommended; google-authenticator files carry
/// 80-bit keys, which must still import so that nobody has to re-enrol.
pub const MIN_SECRET_BYTES: usize = 10;
pub const MAX_SECRET_BYTES: usize = 64;
/// 160 bits, as RFC 4226 recommends and every authenticator app accepts.
pub const NEW_SECRET_BYTES: usize = 20;

/// Base32 without the trailing-bit check: 26-character keys (128 bits + 2 spare bits) as some
/// generators write them must decode.
static BASE32_LENIENT: LazyLock<Option<Encoding>> = LazyLock::new(|| {
    let mut spec = BASE32_NOPAD.specification();
    spec.check_trailing_bits = false;
    spec.encoding().ok()
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    Empty,
    BadCharacter { position: usize },
    BadLength,
    TooShort { bits: usize },
    TooLong,
    Random(String),
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
        }
    }
}

impl std::error::Error for SecretError {}

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
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort {
                bits: bytes.len() * 8,
            });
        }
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(SecretError::TooLong);
        }
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
/// store boundary, so encryption at rest (an AEAD under a key file, the user name as
/// associated data) is one new implementation, not a change in every engine and front end.
pub trait Sealer: Send + Sync {
    fn seal(&self, user: &UserName, secret: &TotpSecret) -> Result<SealedSecret, SecretError>;
    fn unseal(&self, user: &UserName, sealed: &SealedSecret) -> Result<TotpSecret, SecretError>;
}

/// Today's stored form: the key's bytes as they are. A copy of the database gives the seeds
/// away; the encrypted sealer replaces this one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unsealed;

impl Sealer for Unsealed {
    fn seal(&self, _user: &UserName, secret: &TotpSecret) -> Result<SealedSecret, SecretError> {
        Ok(SealedSecret::from_stored(secret.bytes().to_vec()))
    }

    fn unseal(&self, _user: &UserName, sealed: &SealedSecret) -> Result<TotpSecret, SecretError> {
        TotpSecret::from_bytes(sealed.stored())
    }
}

/// Whether a stored seed has a form some sealer can open, checked when the row is read.
pub fn check_sealed(sealed: &SealedSecret) -> Result<(), SecretError> {
    TotpSecret::from_bytes(sealed.stored()).map(drop)
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
}
