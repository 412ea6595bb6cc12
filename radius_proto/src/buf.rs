//! The owned form of a packet and the exact inverse of [`Packet::parse`]: what a decode reads,
//! [`PacketBuf::encode`] writes back octet for octet, and what `encode` accepts, a decode
//! reads back unchanged. [`Builder`](crate::Builder) is for making new packets (it signs
//! them); this is for holding, comparing and re-emitting packets as they are (the round-trip
//! test and fuzz target, captures, a client that keeps a request to match replies).

use super::{Attr, Packet};
use super::{AttrType, Code, DecodeError, EncodeError, MAX_ATTR_VALUE, MIN_PACKET};

/// One attribute, owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrBuf {
    pub typ: AttrType,
    pub value: Vec<u8>,
}

impl From<&Attr<'_>> for AttrBuf {
    fn from(a: &Attr<'_>) -> Self {
        AttrBuf {
            typ: a.typ,
            value: a.value.to_vec(),
        }
    }
}

/// A packet that owns its fields. Nothing is computed on encode: the authenticator and any
/// Message-Authenticator value are written as they are, so a packet that was signed stays
/// signed, and one that was not stays unsigned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PacketBuf {
    pub code: Code,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    /// In packet order, Message-Authenticator included where it stands.
    pub attributes: Vec<AttrBuf>,
}

impl PacketBuf {
    /// [`Packet::parse`], then an owned copy.
    pub fn decode(datagram: &[u8]) -> Result<Self, DecodeError> {
        Packet::parse(datagram).map(|p| p.to_buf())
    }

    /// The first attribute of a type.
    pub fn attr(&self, typ: AttrType) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// The octets of this packet. Refuses exactly what a decode would refuse (an attribute
    /// over 253 octets, a packet over 4096, a Message-Authenticator that is not 16 octets or
    /// not alone), so `PacketBuf::decode(&p.encode()?) == Ok(p)` always holds.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut len = MIN_PACKET;
        let mut seen_ma = false;
        for a in &self.attributes {
            if a.value.len() > MAX_ATTR_VALUE {
                return Err(EncodeError::AttributeTooLong {
                    typ: a.typ,
                    len: a.value.len(),
                });
            }
            if a.typ == AttrType::MESSAGE_AUTHENTICATOR {
                if a.value.len() != 16 {
                    return Err(EncodeError::BadMessageAuthenticatorLength { len: a.value.len() });
                }
                if seen_ma {
                    return Err(EncodeError::DuplicateMessageAuthenticator);
                }
                seen_ma = true;
            }
            len = len.saturating_add(2 + a.value.len());
        }
        let mut out = crate::build::header(self.code, self.identifier, len, &self.authenticator)?;
        for a in &self.attributes {
            out.push(a.typ.0);
            // value.len() <= 253 was checked above.
            out.push(a.value.len() as u8 + 2);
            out.extend_from_slice(&a.value);
        }
        Ok(out)
    }
}

impl From<&Packet<'_>> for PacketBuf {
    fn from(p: &Packet<'_>) -> Self {
        PacketBuf {
            code: p.code,
            identifier: p.identifier,
            authenticator: p.authenticator,
            attributes: p.attributes().iter().map(AttrBuf::from).collect(),
        }
    }
}
