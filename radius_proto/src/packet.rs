//! Parsing a datagram into a borrowed view of header and attributes.

use subtle::ConstantTimeEq;

use super::buf::PacketBuf;
use super::crypto::{message_authenticator_parts, response_authenticator_parts};
use super::reader::Reader;
use super::{AccountingMa, AttrType, Code, DecodeError, MAX_PACKET, MIN_PACKET, VerifyError};

/// One attribute as it arrived; the value is opaque to the codec (VSAs included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    pub typ: AttrType,
    pub value: &'a [u8],
}

/// A parsed packet borrowing the datagram. Only structure is checked here; whether the sender
/// knows the shared secret is [`Packet::verify_request_message_authenticator`]'s job.
/// Equality compares every field, so two packets parsed from the same octets are equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    raw: &'a [u8],
    pub code: Code,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    attrs: Vec<Attr<'a>>,
    /// Offset in `raw` of the Message-Authenticator value, when present.
    message_authenticator: Option<usize>,
}

impl<'a> Packet<'a> {
    /// Parses one datagram. Octets beyond the Length field are padding and ignored (RFC 2865
    /// §3); a datagram shorter than its Length field is an error.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, DecodeError> {
        if datagram.len() < MIN_PACKET {
            return Err(DecodeError::TooShort {
                len: datagram.len(),
            });
        }
        let mut r = Reader::new(datagram);
        let code = Code(r.u8()?);
        let identifier = r.u8()?;
        let declared = usize::from(r.u16_be()?);
        if !(MIN_PACKET..=MAX_PACKET).contains(&declared) {
            return Err(DecodeError::BadLength { declared });
        }
        if declared > datagram.len() {
            return Err(DecodeError::LengthExceedsDatagram {
                declared,
                received: datagram.len(),
            });
        }
        let authenticator = r.array::<16>()?;
        let raw = datagram.get(..declared).ok_or(DecodeError::Truncated {
            offset: 0,
            wanted: declared,
            available: datagram.len(),
        })?;
        let mut r = Reader::new(raw);
        r.take(MIN_PACKET)?;
        let mut attrs = Vec::with_capacity(8);
        let mut message_authenticator = None;
        while !r.is_empty() {
            let offset = r.pos();
            let typ = AttrType(r.u8()?);
            let len = r.u8()?;
            if len < 2 || usize::from(len) - 2 > r.remaining() {
                return Err(DecodeError::BadAttributeLength { offset, typ, len });
            }
            let value = r.take(usize::from(len) - 2)?;
            if typ == AttrType::MESSAGE_AUTHENTICATOR {
                if value.len() != 16 {
                    return Err(DecodeError::BadMessageAuthenticatorLength {
                        offset,
                        len: value.len(),
                    });
                }
                if message_authenticator.is_some() {
                    return Err(DecodeError::DuplicateMessageAuthenticator { offset });
                }
                message_authenticator = Some(offset + 2);
            }
            attrs.push(Attr { typ, value });
        }
        Ok(Packet {
            raw,
            code,
            identifier,
            authenticator,
            attrs,
            message_authenticator,
        })
    }

    /// An owned copy; [`PacketBuf::encode`] gives back exactly [`Packet::raw`].
    pub fn to_buf(&self) -> PacketBuf {
        PacketBuf::from(self)
    }

    /// The packet's octets up to its Length field.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    pub fn attributes(&self) -> &[Attr<'a>] {
        &self.attrs
    }

    /// The first attribute of a type.
    pub fn attr(&self, typ: AttrType) -> Option<&'a [u8]> {
        self.attrs.iter().find(|a| a.typ == typ).map(|a| a.value)
    }

    /// Every attribute of a type, in packet order (Proxy-State must be echoed in order).
    pub fn attrs(&self, typ: AttrType) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.attrs
            .iter()
            .filter(move |a| a.typ == typ)
            .map(|a| a.value)
    }

    /// How many attributes of a type; the daemon refuses requests with two User-Names etc.
    pub fn count(&self, typ: AttrType) -> usize {
        self.attrs.iter().filter(|a| a.typ == typ).count()
    }

    pub fn has_message_authenticator(&self) -> bool {
        self.message_authenticator.is_some()
    }

    /// Checks a request's Message-Authenticator (RFC 3579 §3.2: HMAC-MD5 keyed with the shared
    /// secret over the packet with the field zeroed). The two failures are told apart because a
    /// server treats them differently: a missing one may be allowed for legacy clients by
    /// configuration, a wrong one never is.
    pub fn verify_request_message_authenticator(&self, secret: &[u8]) -> Result<(), VerifyError> {
        self.verify_ma(secret, &self.authenticator)
    }

    /// Checks a reply against the request it answers: the Response Authenticator, then the
    /// Message-Authenticator (computed over the Request Authenticator). A reply without
    /// Message-Authenticator is refused: a client that accepted one would be open to
    /// BlastRADIUS (CVE-2024-3596), where a forged reply is built from a legacy one by an MD5
    /// chosen-prefix collision on the Response Authenticator alone. The Response Authenticator
    /// is checked first, so `MissingMessageAuthenticator` means it was right (a load generator
    /// can count a legacy server's replies apart from wrong ones; a client must still refuse).
    pub fn verify_reply(
        &self,
        secret: &[u8],
        request_authenticator: &[u8; 16],
    ) -> Result<(), VerifyError> {
        let (Some(head), Some(body)) = (self.raw.get(..4), self.raw.get(20..)) else {
            return Err(VerifyError::BadResponseAuthenticator);
        };
        let expected = response_authenticator_parts(&[head, request_authenticator, body], secret);
        if !bool::from(expected.ct_eq(&self.authenticator)) {
            return Err(VerifyError::BadResponseAuthenticator);
        }
        self.verify_ma(secret, request_authenticator)
    }

    /// Checks an Accounting-Response against the Accounting-Request it answers: the Response
    /// Authenticator as for any reply, then the Message-Authenticator where there is one, in
    /// either form ([`AccountingMa`]), which is returned. Unlike [`Packet::verify_reply`], a
    /// response without Message-Authenticator is no forgery risk (an Accounting-Response
    /// grants nothing): `MissingMessageAuthenticator` means the Response Authenticator was
    /// right, and a client may accept it.
    pub fn verify_accounting_response(
        &self,
        secret: &[u8],
        request_authenticator: &[u8; 16],
    ) -> Result<AccountingMa, VerifyError> {
        let (Some(head), Some(body)) = (self.raw.get(..4), self.raw.get(20..)) else {
            return Err(VerifyError::BadResponseAuthenticator);
        };
        let expected = response_authenticator_parts(&[head, request_authenticator, body], secret);
        if !bool::from(expected.ct_eq(&self.authenticator)) {
            return Err(VerifyError::BadResponseAuthenticator);
        }
        self.accounting_ma(secret, request_authenticator)
    }

    /// Checks an Accounting-Request (RFC 2866 §3): its Request Authenticator is
    /// MD5(Code+Identifier+Length+16 zero octets+Attributes+Secret), so unlike an
    /// Access-Request's it proves the secret over the whole packet; then the
    /// Message-Authenticator, where present, computed as the Request Authenticator was, over
    /// the packet with 16 zero octets in its place ([`AccountingMa::ZeroVector`], as
    /// FreeRADIUS and radclient compute it; the other form would have to be computed over a
    /// Request Authenticator that depends on it). `MissingMessageAuthenticator` therefore
    /// means the Request Authenticator was right: a server may allow it for a legacy client,
    /// as for access.
    pub fn verify_accounting_request(&self, secret: &[u8]) -> Result<(), VerifyError> {
        let (Some(head), Some(body)) = (self.raw.get(..4), self.raw.get(20..)) else {
            return Err(VerifyError::BadRequestAuthenticator);
        };
        let expected = response_authenticator_parts(&[head, &[0u8; 16], body], secret);
        if !bool::from(expected.ct_eq(&self.authenticator)) {
            return Err(VerifyError::BadRequestAuthenticator);
        }
        self.verify_ma(secret, &[0u8; 16])
    }

    /// An Accounting-Response's Message-Authenticator in the form it was computed: over 16
    /// zero octets first, then over the request's authenticator. Both are an HMAC keyed with
    /// the secret over the whole packet, so either proves it.
    fn accounting_ma(
        &self,
        secret: &[u8],
        request_authenticator: &[u8; 16],
    ) -> Result<AccountingMa, VerifyError> {
        match self.verify_ma(secret, &[0u8; 16]) {
            Ok(()) => Ok(AccountingMa::ZeroVector),
            Err(VerifyError::BadMessageAuthenticator) => self
                .verify_ma(secret, request_authenticator)
                .map(|()| AccountingMa::Authenticator),
            Err(e) => Err(e),
        }
    }

    fn verify_ma(&self, secret: &[u8], authenticator: &[u8; 16]) -> Result<(), VerifyError> {
        let Some(off) = self.message_authenticator else {
            return Err(VerifyError::MissingMessageAuthenticator);
        };
        // `parse` recorded `off` inside `raw` with 16 octets after it, and HMAC takes a key of
        // any length, so the `None`s below cannot happen; they fail closed all the same.
        let (Some(head), Some(mid), Some(got), Some(tail)) = (
            self.raw.get(..4),
            self.raw.get(20..off),
            self.raw.get(off..off + 16),
            self.raw.get(off + 16..),
        ) else {
            return Err(VerifyError::BadMessageAuthenticator);
        };
        let Some(expected) =
            message_authenticator_parts(&[head, authenticator, mid, &[0u8; 16], tail], secret)
        else {
            return Err(VerifyError::BadMessageAuthenticator);
        };
        if bool::from(expected.ct_eq(got)) {
            Ok(())
        } else {
            Err(VerifyError::BadMessageAuthenticator)
        }
    }
}
