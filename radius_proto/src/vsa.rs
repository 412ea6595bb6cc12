//! Vendor-Specific attributes (RFC 2865 §5.26, type 26) and the small dictionary of reply
//! attributes the daemon can send a gateway (`reply` on a `[[policy.rules]]` entry).
//!
//! A Vendor-Specific value is a 4-octet Vendor-Id (the vendor's IANA Private Enterprise
//! Number, high octet 0) followed by the vendor's own data. Every vendor named here uses the
//! layout §5.26 recommends: sub-attributes of a vendor type octet, a vendor length octet
//! counting both and the value. [`decode`] holds a Vendor-Specific to that layout strictly
//! (every sub-attribute at least 2 octets long, none running past the attribute, nothing left
//! over, at least one), so a malformed one is a typed [`VsaError`], never a partial read;
//! [`encode`] writes one sub-attribute per Vendor-Specific, as FreeRADIUS does, and refuses
//! what would not fit.
//!
//! The dictionary ([`DICTIONARY`]) names the attributes with the numbers FreeRADIUS's
//! dictionaries give them (`share/dictionary/radius/dictionary.{rfc2865,fortinet,cisco,
//! paloalto,microsoft}`), so radclient and pyrad print the same names.

use std::fmt;

use crate::{AttrType, Builder, EncodeError, MAX_ATTR_VALUE};

/// Octets before the first sub-attribute: the Vendor-Id.
pub const VENDOR_ID_LEN: usize = 4;
/// The longest value one sub-attribute can carry inside one Vendor-Specific: 253 octets of
/// attribute value, less the Vendor-Id, the vendor type and the vendor length.
pub const MAX_VSA_VALUE: usize = MAX_ATTR_VALUE - VENDOR_ID_LEN - 2;

/// Fortinet, Inc.
pub const VENDOR_FORTINET: u32 = 12_356;
/// Cisco Systems.
pub const VENDOR_CISCO: u32 = 9;
/// Palo Alto Networks.
pub const VENDOR_PALOALTO: u32 = 25_461;
/// Microsoft (the MS-* attributes of RFC 2548).
pub const VENDOR_MICROSOFT: u32 = 311;

/// One sub-attribute of a Vendor-Specific, borrowing the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubAttr<'a> {
    pub typ: u8,
    pub value: &'a [u8],
}

/// A decoded Vendor-Specific value: whose it is and its sub-attributes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vsa<'a> {
    pub vendor: u32,
    pub subs: Vec<SubAttr<'a>>,
}

/// Why a Vendor-Specific value is not in the RFC 2865 §5.26 layout. Offsets are from the
/// start of the attribute's value (the Vendor-Id's first octet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VsaError {
    /// Fewer than 4 octets: not even a whole Vendor-Id.
    TruncatedVendorId { len: usize },
    /// A Vendor-Id whose high octet is not 0 (§5.26: it is a 3-octet SMI code).
    BadVendorId { vendor: u32 },
    /// A Vendor-Id and nothing after it.
    Empty { vendor: u32 },
    /// A sub-attribute whose vendor length is below 2 (a zero length would never advance).
    SubLengthTooShort { offset: usize, typ: u8, len: u8 },
    /// A sub-attribute whose vendor length runs past the end of the attribute.
    SubLengthOverrun {
        offset: usize,
        typ: u8,
        len: u8,
        available: usize,
    },
    /// One octet left over after the last sub-attribute: too short to be another.
    TrailingOctet { offset: usize },
}

impl fmt::Display for VsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VsaError::TruncatedVendorId { len } => write!(
                f,
                "Vendor-Specific of {len} octets is shorter than a Vendor-Id (4)"
            ),
            VsaError::BadVendorId { vendor } => {
                write!(f, "Vendor-Id {vendor:#010x} has a non-zero high octet")
            }
            VsaError::Empty { vendor } => {
                write!(
                    f,
                    "Vendor-Specific of vendor {vendor} carries no sub-attribute"
                )
            }
            VsaError::SubLengthTooShort { offset, typ, len } => write!(
                f,
                "vendor sub-attribute {typ} at offset {offset} has length {len}, below 2"
            ),
            VsaError::SubLengthOverrun {
                offset,
                typ,
                len,
                available,
            } => write!(
                f,
                "vendor sub-attribute {typ} at offset {offset} has length {len}, {available} octets left"
            ),
            VsaError::TrailingOctet { offset } => {
                write!(
                    f,
                    "a stray octet at offset {offset} after the last sub-attribute"
                )
            }
        }
    }
}

/// The cause is the octets themselves: `source()` is `None`.
impl std::error::Error for VsaError {}

/// Reads one Vendor-Specific value strictly (see the module comment).
pub fn decode(value: &[u8]) -> Result<Vsa<'_>, VsaError> {
    let Some((id, mut rest)) = value.split_first_chunk::<VENDOR_ID_LEN>() else {
        return Err(VsaError::TruncatedVendorId { len: value.len() });
    };
    let vendor = u32::from_be_bytes(*id);
    if id[0] != 0 {
        return Err(VsaError::BadVendorId { vendor });
    }
    if rest.is_empty() {
        return Err(VsaError::Empty { vendor });
    }
    let mut subs = Vec::new();
    let mut offset = VENDOR_ID_LEN;
    while !rest.is_empty() {
        let [typ, len, ..] = *rest else {
            return Err(VsaError::TrailingOctet { offset });
        };
        if len < 2 {
            return Err(VsaError::SubLengthTooShort { offset, typ, len });
        }
        let n = usize::from(len);
        let Some(value) = rest.get(2..n) else {
            return Err(VsaError::SubLengthOverrun {
                offset,
                typ,
                len,
                available: rest.len(),
            });
        };
        subs.push(SubAttr { typ, value });
        rest = rest.get(n..).unwrap_or_default();
        offset += n;
    }
    Ok(Vsa { vendor, subs })
}

/// The value of a Vendor-Specific holding one sub-attribute. Refuses a Vendor-Id with a
/// non-zero high octet and a value over [`MAX_VSA_VALUE`] (as `AttributeTooLong`).
pub fn encode(vendor: u32, typ: u8, value: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let too_long = EncodeError::AttributeTooLong {
        typ: AttrType::VENDOR_SPECIFIC,
        len: value.len() + VENDOR_ID_LEN + 2,
    };
    if value.len() > MAX_VSA_VALUE {
        return Err(too_long);
    }
    if vendor > 0x00ff_ffff {
        return Err(EncodeError::BadVendorId { vendor });
    }
    let mut v = Vec::with_capacity(value.len() + VENDOR_ID_LEN + 2);
    v.extend_from_slice(&vendor.to_be_bytes());
    v.push(typ);
    // value.len() <= 247 was checked above.
    v.push(value.len() as u8 + 2);
    v.extend_from_slice(value);
    Ok(v)
}

impl Builder {
    /// Adds a Vendor-Specific attribute with one sub-attribute ([`encode`]).
    pub fn add_vsa(
        &mut self,
        vendor: u32,
        typ: u8,
        value: &[u8],
    ) -> Result<&mut Self, EncodeError> {
        let v = encode(vendor, typ, value)?;
        self.add(AttrType::VENDOR_SPECIFIC, &v)
    }
}

/// Where an attribute of the dictionary goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    /// A standard attribute of its own type.
    Standard(AttrType),
    /// A sub-attribute of a Vendor-Specific.
    Vendor { vendor: u32, typ: u8 },
}

/// An attribute the daemon may put in an Access-Accept for a gateway, each a text value
/// (RFC 8044 `string` or `text`; Class is `octets`, written here as text an administrator
/// can type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyAttr {
    /// Class (25, RFC 2865 §5.25): echoed by the gateway in its accounting; the ASA reads a
    /// group policy from it (`OU=name;`).
    Class,
    /// Filter-Id (11, RFC 2865 §5.11): a filter or ACL name the gateway applies.
    FilterId,
    /// Reply-Message (18, RFC 2865 §5.18): text the user may be shown.
    ReplyMessage,
    /// Fortinet-Group-Name (Fortinet 12356, type 1): the FortiGate user group.
    FortinetGroupName,
    /// Cisco-AVPair (Cisco 9, type 1): `protocol:attribute=value`, may be repeated.
    CiscoAvPair,
    /// PaloAlto-User-Group (Palo Alto 25461, type 5): the group an authentication profile's
    /// allow list and policy match on.
    PaloAltoUserGroup,
}

/// One entry of the dictionary: the name FreeRADIUS and pyrad print, and where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DictEntry {
    pub attr: ReplyAttr,
    pub name: &'static str,
    pub wire: Wire,
}

/// The reply attributes, with the numbers of FreeRADIUS's dictionaries. Microsoft's vendor
/// (311) has no entry: what an NPS-fronted gateway (RD Gateway, RRAS) takes from an
/// Access-Accept beyond the standard attributes is MS-CHAP's (MS-CHAP2-Success, the
/// MS-MPPE keys), which only a server speaking MS-CHAPv2 can make, and the NAP attributes
/// (MS-Quarantine-*), which Windows Server 2016 removed.
pub const DICTIONARY: &[DictEntry] = &[
    DictEntry {
        attr: ReplyAttr::Class,
        name: "Class",
        wire: Wire::Standard(AttrType::CLASS),
    },
    DictEntry {
        attr: ReplyAttr::FilterId,
        name: "Filter-Id",
        wire: Wire::Standard(AttrType::FILTER_ID),
    },
    DictEntry {
        attr: ReplyAttr::ReplyMessage,
        name: "Reply-Message",
        wire: Wire::Standard(AttrType::REPLY_MESSAGE),
    },
    DictEntry {
        attr: ReplyAttr::FortinetGroupName,
        name: "Fortinet-Group-Name",
        wire: Wire::Vendor {
            vendor: VENDOR_FORTINET,
            typ: 1,
        },
    },
    DictEntry {
        attr: ReplyAttr::CiscoAvPair,
        name: "Cisco-AVPair",
        wire: Wire::Vendor {
            vendor: VENDOR_CISCO,
            typ: 1,
        },
    },
    DictEntry {
        attr: ReplyAttr::PaloAltoUserGroup,
        name: "PaloAlto-User-Group",
        wire: Wire::Vendor {
            vendor: VENDOR_PALOALTO,
            typ: 5,
        },
    },
];

impl ReplyAttr {
    /// Its dictionary entry.
    pub fn entry(self) -> &'static DictEntry {
        // Every variant has exactly one entry (the dictionary test checks it); the
        // fallback is never reached.
        DICTIONARY
            .iter()
            .find(|e| e.attr == self)
            .unwrap_or(&DICTIONARY[0])
    }

    /// The longest value it can carry in one attribute.
    pub fn max_len(self) -> usize {
        match self.entry().wire {
            Wire::Standard(_) => MAX_ATTR_VALUE,
            Wire::Vendor { .. } => MAX_VSA_VALUE,
        }
    }

    /// The dictionary entry of a vendor's sub-attribute, for log lines and readers.
    pub fn of_vendor(vendor: u32, typ: u8) -> Option<ReplyAttr> {
        DICTIONARY
            .iter()
            .find(|e| e.wire == Wire::Vendor { vendor, typ })
            .map(|e| e.attr)
    }
}

impl Builder {
    /// Adds one reply attribute of the dictionary.
    pub fn add_reply_attr(
        &mut self,
        attr: ReplyAttr,
        value: &[u8],
    ) -> Result<&mut Self, EncodeError> {
        match attr.entry().wire {
            Wire::Standard(t) => self.add(t, value),
            Wire::Vendor { vendor, typ } => self.add_vsa(vendor, typ, value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Code, Packet};

    #[test]
    fn dictionary_has_each_attribute_once() {
        for a in [
            ReplyAttr::Class,
            ReplyAttr::FilterId,
            ReplyAttr::ReplyMessage,
            ReplyAttr::FortinetGroupName,
            ReplyAttr::CiscoAvPair,
            ReplyAttr::PaloAltoUserGroup,
        ] {
            assert_eq!(DICTIONARY.iter().filter(|e| e.attr == a).count(), 1);
            assert_eq!(a.entry().attr, a);
        }
        // FreeRADIUS's numbers.
        assert_eq!(
            ReplyAttr::PaloAltoUserGroup.entry().wire,
            Wire::Vendor {
                vendor: 25_461,
                typ: 5
            }
        );
        assert_eq!(
            ReplyAttr::of_vendor(12_356, 1),
            Some(ReplyAttr::FortinetGroupName)
        );
        assert_eq!(ReplyAttr::of_vendor(9, 1), Some(ReplyAttr::CiscoAvPair));
        assert_eq!(ReplyAttr::of_vendor(9, 2), None);
        assert_eq!(ReplyAttr::Class.max_len(), 253);
        assert_eq!(ReplyAttr::CiscoAvPair.max_len(), 247);
    }

    #[test]
    fn encode_decode_round_trip() {
        for (vendor, typ, value) in [
            (VENDOR_FORTINET, 1u8, &b"admins"[..]),
            (VENDOR_CISCO, 1, b"shell:priv-lvl=15"),
            (VENDOR_PALOALTO, 5, b"vpn-staff"),
            (VENDOR_MICROSOFT, 7, b""),
            (0x00ff_ffff, 255, &[0u8; MAX_VSA_VALUE][..]),
        ] {
            let v = encode(vendor, typ, value).unwrap();
            assert_eq!(v.len(), value.len() + 6);
            assert_eq!(&v[..4], &vendor.to_be_bytes());
            let d = decode(&v).unwrap();
            assert_eq!(d.vendor, vendor);
            assert_eq!(d.subs, vec![SubAttr { typ, value }]);
        }
        // Several sub-attributes in one Vendor-Specific (RFC 2865 §5.26 allows it).
        let many = [0, 0, 0, 9, 1, 3, b'a', 2, 2, 1, 4, b'x', b'y'];
        let d = decode(&many).unwrap();
        assert_eq!(d.vendor, 9);
        assert_eq!(
            d.subs,
            vec![
                SubAttr {
                    typ: 1,
                    value: b"a"
                },
                SubAttr { typ: 2, value: b"" },
                SubAttr {
                    typ: 1,
                    value: b"xy"
                },
            ]
        );
    }

    #[test]
    fn encode_refuses_what_does_not_fit() {
        assert!(matches!(
            encode(9, 1, &[b'a'; MAX_VSA_VALUE + 1]),
            Err(EncodeError::AttributeTooLong {
                typ: AttrType::VENDOR_SPECIFIC,
                len: 254
            })
        ));
        assert_eq!(
            encode(0x0100_0000, 1, b"x"),
            Err(EncodeError::BadVendorId {
                vendor: 0x0100_0000
            })
        );
    }

    #[test]
    fn malformed_vendor_specifics_are_typed_errors() {
        // Truncated Vendor-Id.
        for short in [&[][..], &[0], &[0, 0, 0]] {
            assert_eq!(
                decode(short),
                Err(VsaError::TruncatedVendorId { len: short.len() })
            );
        }
        // A Vendor-Id alone.
        assert_eq!(decode(&[0, 0, 0, 9]), Err(VsaError::Empty { vendor: 9 }));
        // High octet set.
        assert_eq!(
            decode(&[1, 0, 0, 9, 1, 2]),
            Err(VsaError::BadVendorId {
                vendor: 0x0100_0009
            })
        );
        // Zero and one vendor lengths: would never advance, or cut the header.
        for len in [0u8, 1] {
            assert_eq!(
                decode(&[0, 0, 0, 9, 1, len, b'a']),
                Err(VsaError::SubLengthTooShort {
                    offset: 4,
                    typ: 1,
                    len
                })
            );
        }
        // Length overrun, first and second sub-attribute.
        assert_eq!(
            decode(&[0, 0, 0, 9, 1, 9, b'a', b'b']),
            Err(VsaError::SubLengthOverrun {
                offset: 4,
                typ: 1,
                len: 9,
                available: 4
            })
        );
        assert_eq!(
            decode(&[0, 0, 0, 9, 1, 3, b'a', 2, 4, b'b']),
            Err(VsaError::SubLengthOverrun {
                offset: 7,
                typ: 2,
                len: 4,
                available: 3
            })
        );
        // One stray octet after a whole sub-attribute.
        assert_eq!(
            decode(&[0, 0, 0, 9, 1, 3, b'a', 7]),
            Err(VsaError::TrailingOctet { offset: 7 })
        );
        // Every error says where.
        assert!(
            VsaError::SubLengthOverrun {
                offset: 7,
                typ: 2,
                len: 4,
                available: 3
            }
            .to_string()
            .contains("offset 7")
        );
    }

    #[test]
    fn reply_attributes_in_a_signed_accept() {
        let req = Builder::request(Code::ACCESS_REQUEST, 7, true)
            .encode_request(b"s3cret", &[5; 16])
            .unwrap();
        let req = Packet::parse(&req).unwrap();
        let mut b = Builder::reply(Code::ACCESS_ACCEPT, &req);
        b.add_reply_attr(ReplyAttr::Class, b"vpn-admins").unwrap();
        b.add_reply_attr(ReplyAttr::FortinetGroupName, b"admins")
            .unwrap();
        b.add_reply_attr(ReplyAttr::CiscoAvPair, b"ip:addr-pool=admins")
            .unwrap();
        let out = b.encode_reply(b"s3cret", &req.authenticator).unwrap();
        let p = Packet::parse(&out).unwrap();
        assert!(p.verify_reply(b"s3cret", &req.authenticator).is_ok());
        assert_eq!(p.attr(AttrType::CLASS), Some(&b"vpn-admins"[..]));
        let vsas: Vec<Vsa<'_>> = p
            .attrs(AttrType::VENDOR_SPECIFIC)
            .map(|v| decode(v).unwrap())
            .collect();
        assert_eq!(vsas.len(), 2);
        assert_eq!(vsas[0].vendor, VENDOR_FORTINET);
        assert_eq!(vsas[0].subs[0].value, b"admins");
        assert_eq!(
            ReplyAttr::of_vendor(vsas[1].vendor, vsas[1].subs[0].typ),
            Some(ReplyAttr::CiscoAvPair)
        );
        assert!(
            b.add_reply_attr(ReplyAttr::PaloAltoUserGroup, &[b'g'; 248])
                .is_err()
        );
    }
}
