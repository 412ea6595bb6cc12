//! The RADIUS protocol (RFC 2865, Message-Authenticator from RFC 3579 §3.2, Status-Server from
//! RFC 5997) as pure functions over byte slices: no sockets, no clocks, no policy.
//!
//! Written in the project rather than taken from the crates.io `radius` crate: its 0.4.0 request
//! check returns true for every Access-Request whatever the shared secret, and it has no
//! Message-Authenticator support, which BlastRADIUS (CVE-2024-3596) makes mandatory.
//!
//! Hostile bytes never panic: [`Packet::parse`] reads through a bounds-checked cursor and
//! returns a typed [`DecodeError`]. Secrets and authenticators are compared in constant time.
//!
//! A crate of its own, with no runtime, store or policy behind it, so that it can be fuzzed
//! alone (`fuzz/`) and shared by every RADIUS speaker in the project: the daemon
//! `mfa-radiusd`, the load generator in `bench/radius`, and the PAM module's remote mode.
#![forbid(unsafe_code)]

mod build;
mod crypto;
mod packet;
mod reader;

pub use build::{Builder, EncodeError};
pub use crypto::{
    PasswordError, hide_password, message_authenticator, response_authenticator, unhide_password,
};
pub use packet::{Attr, Packet};
pub use reader::Reader;

use std::fmt;

/// RFC 2865 §3: a packet is 20 to 4096 octets.
pub const MIN_PACKET: usize = 20;
pub const MAX_PACKET: usize = 4096;
/// An attribute value is at most 253 octets (the length octet counts type and length too).
pub const MAX_ATTR_VALUE: usize = 253;
/// RFC 2865 §5.2: User-Password is at most 128 octets.
pub const MAX_PASSWORD: usize = 128;

/// The packet type octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(pub u8);

impl Code {
    pub const ACCESS_REQUEST: Code = Code(1);
    pub const ACCESS_ACCEPT: Code = Code(2);
    pub const ACCESS_REJECT: Code = Code(3);
    pub const ACCOUNTING_REQUEST: Code = Code(4);
    pub const ACCOUNTING_RESPONSE: Code = Code(5);
    pub const ACCESS_CHALLENGE: Code = Code(11);
    pub const STATUS_SERVER: Code = Code(12);
    pub const STATUS_CLIENT: Code = Code(13);

    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "Access-Request",
            2 => "Access-Accept",
            3 => "Access-Reject",
            4 => "Accounting-Request",
            5 => "Accounting-Response",
            11 => "Access-Challenge",
            12 => "Status-Server",
            13 => "Status-Client",
            _ => "unknown",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// Attribute types used by the daemon (RFC 2865 §5, RFC 2868, RFC 3579).
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const USER_PASSWORD: u8 = 2;
    pub const CHAP_PASSWORD: u8 = 3;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const NAS_PORT: u8 = 5;
    pub const SERVICE_TYPE: u8 = 6;
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    pub const REPLY_MESSAGE: u8 = 18;
    pub const STATE: u8 = 24;
    pub const CLASS: u8 = 25;
    pub const VENDOR_SPECIFIC: u8 = 26;
    pub const SESSION_TIMEOUT: u8 = 27;
    pub const CALLED_STATION_ID: u8 = 30;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const PROXY_STATE: u8 = 33;
    pub const NAS_PORT_TYPE: u8 = 61;
    pub const TUNNEL_CLIENT_ENDPOINT: u8 = 66;
    pub const EAP_MESSAGE: u8 = 79;
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    pub const NAS_IPV6_ADDRESS: u8 = 95;
}

/// Why a datagram is not a well-formed RADIUS packet. Offsets are from the start of the
/// datagram, so a log line points at the offending octet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than 20 octets: not even a header.
    TooShort { len: usize },
    /// The Length field is below 20 or above 4096.
    BadLength { declared: usize },
    /// The Length field claims more octets than arrived (RFC 2865 §3: discard).
    LengthExceedsDatagram { declared: usize, received: usize },
    /// A read past the end of the packet.
    Truncated {
        offset: usize,
        wanted: usize,
        available: usize,
    },
    /// An attribute whose length octet is below 2 or runs past the packet.
    BadAttributeLength { offset: usize, typ: u8, len: u8 },
    /// Message-Authenticator not exactly 16 octets.
    BadMessageAuthenticatorLength { offset: usize, len: usize },
    /// More than one Message-Authenticator.
    DuplicateMessageAuthenticator { offset: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooShort { len } => {
                write!(f, "{len} octets is shorter than a RADIUS header (20)")
            }
            DecodeError::BadLength { declared } => {
                write!(f, "Length field {declared} is outside 20..=4096")
            }
            DecodeError::LengthExceedsDatagram { declared, received } => write!(
                f,
                "Length field {declared} is larger than the datagram ({received} octets)"
            ),
            DecodeError::Truncated {
                offset,
                wanted,
                available,
            } => write!(
                f,
                "truncated at offset {offset}: wanted {wanted} octets, {available} left"
            ),
            DecodeError::BadAttributeLength { offset, typ, len } => write!(
                f,
                "attribute type {typ} at offset {offset} has invalid length {len}"
            ),
            DecodeError::BadMessageAuthenticatorLength { offset, len } => write!(
                f,
                "Message-Authenticator at offset {offset} is {len} octets, not 16"
            ),
            DecodeError::DuplicateMessageAuthenticator { offset } => {
                write!(f, "second Message-Authenticator at offset {offset}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests;
