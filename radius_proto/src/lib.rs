//! The RADIUS protocol (RFC 2865, Message-Authenticator from RFC 3579 §3.2, accounting from
//! RFC 2866, Status-Server from RFC 5997, packets on a stream for RadSec from RFC 6613/6614)
//! as pure functions over byte slices: no sockets, no clocks, no policy.
//!
//! Written in the project rather than taken from the crates.io `radius` crate: its 0.4.0 request
//! check returns true for every Access-Request whatever the shared secret, and it has no
//! Message-Authenticator support, which BlastRADIUS (CVE-2024-3596) makes mandatory.
//!
//! Hostile bytes never panic: [`Packet::parse`] reads through a bounds-checked cursor and
//! returns a typed [`DecodeError`]; [`Framer`] cuts a stream by the Length field and refuses
//! an impossible one with a typed [`FrameError`]. Secrets and authenticators are compared in
//! constant time.
//!
//! A crate of its own, with no runtime, store or policy behind it, so that it can be fuzzed
//! alone (`fuzz/`) and shared by every RADIUS speaker in the project: the daemon
//! `mfa-radiusd`, the load generator in `bench/radius`, and the PAM module's remote mode,
//! whose conversation with the daemon is written once, for both ends, in [`pam_host`].
#![forbid(unsafe_code)]

pub mod accounting;
mod buf;
mod build;
mod crypto;
mod frame;
mod packet;
pub mod pam_host;
mod reader;
pub mod vsa;

pub use buf::{AttrBuf, PacketBuf};
pub use build::{Builder, EncodeError};
pub use crypto::{
    PasswordError, hide_password, message_authenticator, response_authenticator, unhide_password,
};
pub use frame::{Frame, FrameError, Framer, frame};
pub use packet::{Attr, Packet};
pub use reader::Reader;

use std::fmt;

/// RFC 2865 §3: a packet is 20 to 4096 octets (on a stream too, RFC 6613).
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

/// An attribute type octet (RFC 2865 §5, RFC 2868, RFC 3579, RFC 3162). A newtype rather than
/// a bare `u8` so an attribute type cannot be passed where a length or a code is meant; any
/// value is representable, since unknown attributes are carried through opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrType(pub u8);

impl AttrType {
    pub const USER_NAME: AttrType = AttrType(1);
    pub const USER_PASSWORD: AttrType = AttrType(2);
    pub const CHAP_PASSWORD: AttrType = AttrType(3);
    pub const NAS_IP_ADDRESS: AttrType = AttrType(4);
    pub const NAS_PORT: AttrType = AttrType(5);
    pub const SERVICE_TYPE: AttrType = AttrType(6);
    pub const FRAMED_IP_ADDRESS: AttrType = AttrType(8);
    pub const FILTER_ID: AttrType = AttrType(11);
    pub const REPLY_MESSAGE: AttrType = AttrType(18);
    pub const STATE: AttrType = AttrType(24);
    pub const CLASS: AttrType = AttrType(25);
    pub const VENDOR_SPECIFIC: AttrType = AttrType(26);
    pub const SESSION_TIMEOUT: AttrType = AttrType(27);
    pub const CALLED_STATION_ID: AttrType = AttrType(30);
    pub const CALLING_STATION_ID: AttrType = AttrType(31);
    pub const NAS_IDENTIFIER: AttrType = AttrType(32);
    pub const PROXY_STATE: AttrType = AttrType(33);
    pub const ACCT_STATUS_TYPE: AttrType = AttrType(40);
    pub const ACCT_DELAY_TIME: AttrType = AttrType(41);
    pub const ACCT_INPUT_OCTETS: AttrType = AttrType(42);
    pub const ACCT_OUTPUT_OCTETS: AttrType = AttrType(43);
    pub const ACCT_SESSION_ID: AttrType = AttrType(44);
    pub const ACCT_SESSION_TIME: AttrType = AttrType(46);
    pub const ACCT_TERMINATE_CAUSE: AttrType = AttrType(49);
    pub const ACCT_INPUT_GIGAWORDS: AttrType = AttrType(52);
    pub const ACCT_OUTPUT_GIGAWORDS: AttrType = AttrType(53);
    pub const NAS_PORT_TYPE: AttrType = AttrType(61);
    pub const TUNNEL_CLIENT_ENDPOINT: AttrType = AttrType(66);
    pub const EAP_MESSAGE: AttrType = AttrType(79);
    pub const MESSAGE_AUTHENTICATOR: AttrType = AttrType(80);
    pub const NAS_IPV6_ADDRESS: AttrType = AttrType(95);

    /// The dictionary name, for log lines; "unknown" for types the daemon does not name.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "User-Name",
            2 => "User-Password",
            3 => "CHAP-Password",
            4 => "NAS-IP-Address",
            5 => "NAS-Port",
            6 => "Service-Type",
            8 => "Framed-IP-Address",
            11 => "Filter-Id",
            18 => "Reply-Message",
            24 => "State",
            25 => "Class",
            26 => "Vendor-Specific",
            27 => "Session-Timeout",
            30 => "Called-Station-Id",
            31 => "Calling-Station-Id",
            32 => "NAS-Identifier",
            33 => "Proxy-State",
            40 => "Acct-Status-Type",
            41 => "Acct-Delay-Time",
            42 => "Acct-Input-Octets",
            43 => "Acct-Output-Octets",
            44 => "Acct-Session-Id",
            46 => "Acct-Session-Time",
            49 => "Acct-Terminate-Cause",
            52 => "Acct-Input-Gigawords",
            53 => "Acct-Output-Gigawords",
            61 => "NAS-Port-Type",
            66 => "Tunnel-Client-Endpoint",
            79 => "EAP-Message",
            80 => "Message-Authenticator",
            95 => "NAS-IPv6-Address",
            _ => "unknown",
        }
    }
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// Why a datagram is not a well-formed RADIUS packet. Offsets are from the start of the
/// datagram, so a log line points at the offending octet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    BadAttributeLength {
        offset: usize,
        typ: AttrType,
        len: u8,
    },
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
                "attribute {typ} at offset {offset} has invalid length {len}"
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

/// Nothing underneath: the cause is the octets themselves, so `source()` is `None`.
impl std::error::Error for DecodeError {}

/// How the Message-Authenticator of an Accounting-Response is computed. RFC 3579 defines it
/// for access only, and implementations differ: FreeRADIUS (and its radclient) computes it
/// with 16 zero octets in place of the authenticator, as for the request; radsecproxy with
/// the request's Request Authenticator, as for an Access-Accept. Each refuses the other's.
/// A client may accept either (both are an HMAC of the whole packet under the shared
/// secret); a server answers a request that carried one in the zero-vector form, the only
/// form the request itself can carry, and a request that carried none without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountingMa {
    /// Over 16 zero octets in place of the authenticator (FreeRADIUS).
    ZeroVector,
    /// Over the packet with the request's Request Authenticator (radsecproxy).
    Authenticator,
}

/// Why a packet that parsed is not to be believed. Kept apart from [`DecodeError`] because
/// only the receiver, holding the shared secret, can tell, and because a server may treat a
/// missing Message-Authenticator (a legacy client, allowed by configuration) differently from
/// a wrong one (another secret, or a forgery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// No Message-Authenticator attribute.
    MissingMessageAuthenticator,
    /// A Message-Authenticator that does not match: another shared secret, or altered octets.
    BadMessageAuthenticator,
    /// A reply whose Response Authenticator does not match the request and the shared secret.
    BadResponseAuthenticator,
    /// An Accounting-Request whose Request Authenticator is not the MD5 of the packet and the
    /// shared secret (RFC 2866 §3): another secret, or altered octets.
    BadRequestAuthenticator,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerifyError::MissingMessageAuthenticator => "no Message-Authenticator",
            VerifyError::BadMessageAuthenticator => "wrong Message-Authenticator",
            VerifyError::BadResponseAuthenticator => "wrong Response Authenticator",
            VerifyError::BadRequestAuthenticator => "wrong Request Authenticator",
        })
    }
}

/// A failed comparison has no underlying error: `source()` is `None`.
impl std::error::Error for VerifyError {}

#[cfg(test)]
mod tests;
