//! Encoding packets. Replies always carry Message-Authenticator as their first attribute
//! (BlastRADIUS: some gateways drop replies without it, and putting it first stops a forged
//! prefix from being spliced in front of it).

#[cfg(doc)]
use super::PacketBuf;
use super::crypto::{message_authenticator_parts, response_authenticator_parts};
use super::{AccountingMa, AttrType, Code, MAX_ATTR_VALUE, MAX_PACKET, Packet};

/// Why a packet could not be encoded. These are programming or configuration errors (a
/// Reply-Message too long for one packet), never caused by the peer alone.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// A value longer than the 253 octets one attribute holds.
    AttributeTooLong { typ: AttrType, len: usize },
    /// The whole packet would exceed 4096 octets.
    PacketTooLong { len: usize },
    /// A Message-Authenticator value that is not 16 octets ([`PacketBuf::encode`] only).
    BadMessageAuthenticatorLength { len: usize },
    /// A second Message-Authenticator ([`PacketBuf::encode`] only).
    DuplicateMessageAuthenticator,
    /// A Vendor-Id with a non-zero high octet (RFC 2865 §5.26: a 3-octet SMI code).
    BadVendorId { vendor: u32 },
    /// HMAC-MD5 refused the key (it takes any length, so this does not happen; kept so that
    /// encoding fails closed rather than sending an unsigned reply).
    Hmac,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::AttributeTooLong { typ, len } => {
                write!(f, "attribute {typ} value of {len} octets exceeds 253")
            }
            EncodeError::PacketTooLong { len } => {
                write!(f, "packet of {len} octets exceeds 4096")
            }
            EncodeError::BadMessageAuthenticatorLength { len } => {
                write!(f, "Message-Authenticator of {len} octets, not 16")
            }
            EncodeError::DuplicateMessageAuthenticator => {
                write!(f, "more than one Message-Authenticator")
            }
            EncodeError::BadVendorId { vendor } => {
                write!(f, "Vendor-Id {vendor:#010x} has a non-zero high octet")
            }
            EncodeError::Hmac => write!(f, "HMAC-MD5 could not be keyed"),
        }
    }
}

/// No variant wraps another error: `source()` is `None`.
impl std::error::Error for EncodeError {}

/// Builds one packet: a reply to a request, or a request (for the test and load clients).
#[derive(Debug, Clone)]
pub struct Builder {
    code: Code,
    identifier: u8,
    with_message_authenticator: bool,
    attrs: Vec<u8>,
}

impl Builder {
    /// A reply to `request`, with its identifier and Proxy-State attributes copied in order
    /// (RFC 2865 §5.33). Message-Authenticator comes first.
    pub fn reply(code: Code, request: &Packet<'_>) -> Self {
        let mut b = Builder {
            code,
            identifier: request.identifier,
            with_message_authenticator: true,
            attrs: Vec::with_capacity(128),
        };
        for ps in request.attrs(AttrType::PROXY_STATE) {
            // Proxy-State came from a parsed attribute, so it fits.
            let _ = b.add(AttrType::PROXY_STATE, ps);
        }
        b
    }

    /// A request; `with_message_authenticator` false builds the legacy form the daemon drops.
    pub fn request(code: Code, identifier: u8, with_message_authenticator: bool) -> Self {
        Builder {
            code,
            identifier,
            with_message_authenticator,
            attrs: Vec::with_capacity(128),
        }
    }

    pub fn add(&mut self, typ: AttrType, value: &[u8]) -> Result<&mut Self, EncodeError> {
        if value.len() > MAX_ATTR_VALUE {
            return Err(EncodeError::AttributeTooLong {
                typ,
                len: value.len(),
            });
        }
        self.attrs.push(typ.0);
        self.attrs.push(value.len() as u8 + 2);
        self.attrs.extend_from_slice(value);
        Ok(self)
    }

    /// Adds a long text as consecutive attributes of at most 253 octets (RFC 2865 §5.18:
    /// multiple Reply-Messages are shown concatenated).
    pub fn add_split(&mut self, typ: AttrType, value: &[u8]) -> Result<&mut Self, EncodeError> {
        for chunk in value.chunks(MAX_ATTR_VALUE) {
            self.add(typ, chunk)?;
        }
        Ok(self)
    }

    fn assemble(&self, authenticator: &[u8; 16]) -> Result<(Vec<u8>, Option<usize>), EncodeError> {
        let ma_len = if self.with_message_authenticator {
            18
        } else {
            0
        };
        let len = 20 + ma_len + self.attrs.len();
        let mut out = header(self.code, self.identifier, len, authenticator)?;
        let mut ma_at = None;
        if self.with_message_authenticator {
            out.push(AttrType::MESSAGE_AUTHENTICATOR.0);
            out.push(18);
            ma_at = Some(out.len());
            out.extend_from_slice(&[0u8; 16]);
        }
        out.extend_from_slice(&self.attrs);
        Ok((out, ma_at))
    }

    fn sign_ma(out: &mut [u8], at: Option<usize>, secret: &[u8]) -> Result<(), EncodeError> {
        if let Some(at) = at {
            let mac = message_authenticator_parts(&[out], secret).ok_or(EncodeError::Hmac)?;
            if let Some(slot) = out.get_mut(at..at + 16) {
                slot.copy_from_slice(&mac);
            }
        }
        Ok(())
    }

    /// Encodes a reply: Message-Authenticator over the packet carrying the Request
    /// Authenticator (RFC 3579 §3.2), then the Response Authenticator over the result.
    pub fn encode_reply(
        &self,
        secret: &[u8],
        request_authenticator: &[u8; 16],
    ) -> Result<Vec<u8>, EncodeError> {
        let (mut out, at) = self.assemble(request_authenticator)?;
        Self::sign_ma(&mut out, at, secret)?;
        let resp = response_authenticator_parts(&[&out], secret);
        if let Some(slot) = out.get_mut(4..20) {
            slot.copy_from_slice(&resp);
        }
        Ok(out)
    }

    /// Encodes an Accounting-Response to the Accounting-Request whose authenticator is
    /// `request_authenticator`, its Message-Authenticator (where the builder has one) in
    /// `form`, the form the request came in ([`AccountingMa`]); then the Response
    /// Authenticator over the result and the Request Authenticator (RFC 2866 §3).
    pub fn encode_accounting_response(
        &self,
        secret: &[u8],
        request_authenticator: &[u8; 16],
        form: AccountingMa,
    ) -> Result<Vec<u8>, EncodeError> {
        let signed_over = match form {
            AccountingMa::ZeroVector => [0u8; 16],
            AccountingMa::Authenticator => *request_authenticator,
        };
        let (mut out, at) = self.assemble(&signed_over)?;
        Self::sign_ma(&mut out, at, secret)?;
        if let Some(slot) = out.get_mut(4..20) {
            slot.copy_from_slice(request_authenticator);
        }
        let resp = response_authenticator_parts(&[&out], secret);
        if let Some(slot) = out.get_mut(4..20) {
            slot.copy_from_slice(&resp);
        }
        Ok(out)
    }

    /// The same packet without Message-Authenticator: the answer to an Accounting-Request
    /// that carried none (nothing says which form its sender would check).
    pub fn without_message_authenticator(&mut self) -> &mut Self {
        self.with_message_authenticator = false;
        self
    }

    /// Encodes a request with the given Request Authenticator (random for Access-Request).
    pub fn encode_request(
        &self,
        secret: &[u8],
        authenticator: &[u8; 16],
    ) -> Result<Vec<u8>, EncodeError> {
        let (mut out, at) = self.assemble(authenticator)?;
        Self::sign_ma(&mut out, at, secret)?;
        Ok(out)
    }

    /// Encodes an Accounting-Request (RFC 2866 §3): the Message-Authenticator (where the
    /// builder has one) over the packet with 16 zero octets as its authenticator, then the
    /// Request Authenticator, MD5 over that packet and the secret. Nothing random: the
    /// packet's octets and the secret fix it.
    pub fn encode_accounting_request(&self, secret: &[u8]) -> Result<Vec<u8>, EncodeError> {
        let (mut out, at) = self.assemble(&[0u8; 16])?;
        Self::sign_ma(&mut out, at, secret)?;
        let ra = response_authenticator_parts(&[&out], secret);
        if let Some(slot) = out.get_mut(4..20) {
            slot.copy_from_slice(&ra);
        }
        Ok(out)
    }
}

/// The 20-octet header of a packet of `len` octets, in a buffer with room for the rest;
/// refuses a length over RFC 2865's 4096.
pub(crate) fn header(
    code: Code,
    identifier: u8,
    len: usize,
    authenticator: &[u8; 16],
) -> Result<Vec<u8>, EncodeError> {
    let wire = u16::try_from(len)
        .ok()
        .filter(|_| len <= MAX_PACKET)
        .ok_or(EncodeError::PacketTooLong { len })?;
    let mut out = Vec::with_capacity(len);
    out.push(code.0);
    out.push(identifier);
    out.extend_from_slice(&wire.to_be_bytes());
    out.extend_from_slice(authenticator);
    Ok(out)
}
