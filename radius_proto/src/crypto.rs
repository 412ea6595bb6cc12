//! The MD5-based pieces of RADIUS: User-Password hiding, the Response Authenticator and the
//! HMAC-MD5 Message-Authenticator. MD5 is what the protocol specifies, not a choice.

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use zeroize::{Zeroize, Zeroizing};

use super::MAX_PASSWORD;

type HmacMd5 = Hmac<Md5>;

/// Why a User-Password value cannot be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordError {
    /// RFC 2865 §5.2: the hidden value is 16 to 128 octets, a multiple of 16.
    BadLength(usize),
    /// The clear password is longer than 128 octets.
    TooLong(usize),
}

impl std::fmt::Display for PasswordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordError::BadLength(n) => write!(
                f,
                "User-Password is {n} octets; it must be a multiple of 16 between 16 and 128"
            ),
            PasswordError::TooLong(n) => {
                write!(f, "password of {n} octets is longer than 128")
            }
        }
    }
}

/// No variant wraps another error: `source()` is `None`.
impl std::error::Error for PasswordError {}

fn md5_parts(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// RFC 2865 §3: MD5(Code+ID+Length+RequestAuth+Attributes+Secret), given the first four parts
/// as slices so no copy of the packet is needed.
pub(crate) fn response_authenticator_parts(parts: &[&[u8]], secret: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.update(secret);
    h.finalize().into()
}

/// The Response Authenticator of an encoded reply whose authenticator field still holds the
/// Request Authenticator.
pub fn response_authenticator(packet_with_request_auth: &[u8], secret: &[u8]) -> [u8; 16] {
    response_authenticator_parts(&[packet_with_request_auth], secret)
}

pub(crate) fn message_authenticator_parts(parts: &[&[u8]], secret: &[u8]) -> Option<[u8; 16]> {
    // HMAC accepts keys of any length; an error here is impossible, but fail closed anyway.
    let mut mac = HmacMd5::new_from_slice(secret).ok()?;
    for p in parts {
        mac.update(p);
    }
    Some(mac.finalize().into_bytes().into())
}

/// HMAC-MD5 over a packet whose Message-Authenticator value is already zeroed and whose
/// authenticator field holds the Request Authenticator (RFC 3579 §3.2).
pub fn message_authenticator(packet_zeroed: &[u8], secret: &[u8]) -> Option<[u8; 16]> {
    message_authenticator_parts(&[packet_zeroed], secret)
}

/// RFC 2865 §5.2: pads the password with NULs to a multiple of 16 and XORs each block with
/// MD5(secret + previous cipher block), the first with MD5(secret + Request Authenticator).
pub fn hide_password(
    password: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Result<Vec<u8>, PasswordError> {
    if password.len() > MAX_PASSWORD {
        return Err(PasswordError::TooLong(password.len()));
    }
    let blocks = password.len().div_ceil(16).max(1);
    let mut out = vec![0u8; blocks * 16];
    let mut prev: [u8; 16] = *request_authenticator;
    for (i, chunk) in out.chunks_exact_mut(16).enumerate() {
        let mut b = md5_parts(&[secret, &prev]);
        for (j, o) in chunk.iter_mut().enumerate() {
            let p = password.get(i * 16 + j).copied().unwrap_or(0);
            *o = p ^ b[j];
        }
        b.zeroize();
        prev.copy_from_slice(chunk);
    }
    Ok(out)
}

/// Reverses [`hide_password`]; trailing NUL padding is removed. With a wrong secret this
/// yields garbage, not an error: the Message-Authenticator is what proves the secret.
pub fn unhide_password(
    hidden: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Result<Zeroizing<Vec<u8>>, PasswordError> {
    if hidden.is_empty() || hidden.len() > MAX_PASSWORD || !hidden.len().is_multiple_of(16) {
        return Err(PasswordError::BadLength(hidden.len()));
    }
    let mut out = Zeroizing::new(vec![0u8; hidden.len()]);
    let mut prev: &[u8] = request_authenticator;
    for (c, o) in hidden.chunks_exact(16).zip(out.chunks_exact_mut(16)) {
        let mut b = md5_parts(&[secret, prev]);
        for ((o, c), k) in o.iter_mut().zip(c).zip(b.iter()) {
            *o = c ^ k;
        }
        b.zeroize();
        prev = c;
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}
