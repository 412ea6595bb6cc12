//! What a PAM host in remote mode (pam_mfa with `[remote]`) and mfa-radiusd say to each
//! other, written once for both ends: the host builds its Access-Request with
//! [`HostRequest::encode`] and reads the answer with [`read_reply`]; the daemon reads the
//! request with [`read_request`] and adds what only a PAM host needs to its Access-Reject with
//! [`add_reject_reason`].
//!
//! Standard attributes carry what RFC 2865 has an attribute for: User-Name, User-Password
//! (empty in round one, the code in round two), Calling-Station-Id (PAM_RHOST, only when it
//! is an IP literal), NAS-Identifier (the host's name), Called-Station-Id (the PAM service:
//! a standard string attribute every RADIUS server logs, which a PAM host has no other use
//! for), State, Reply-Message (text for the user, never parsed) and Message-Authenticator
//! (always).
//!
//! What RADIUS has no attribute for travels in Vendor-Specific attributes (type 26, RFC 2865
//! §5.26) of [`VENDOR_ID`], in the layout that section recommends (a vendor type octet, a
//! vendor length octet counting both, the value), one sub-attribute per Vendor-Specific:
//!
//! | vendor type | name | in | value |
//! | --- | --- | --- | --- |
//! | 1 ([`NAME_KNOWN`]) | Name-Known | every Access-Request | integer (4 octets): 1 where the host's NSS knows User-Name, 0 where it does not |
//! | 2 ([`REJECT_REASON`]) | Reject-Reason | Access-Reject | text: why, as the decision's stable reason code (`locked`, `wrong_code`, ...), 1 to 64 octets of `a-z` and `_` |
//! | 3 ([`LOCKED_UNTIL`]) | Locked-Until | Access-Reject for a lock | time (4 octets, RFC 8044 §3.5): when the lock ends, Unix seconds |
//! | 4 ([`PUSH_CAPABLE`]) | Push-Capable | every Access-Request of a host that can wait for a push | integer: 1 |
//! | 5 ([`PUSH_REQUEST`]) | Push-Request | the Access-Request answering a challenge that offered a push, when the user chose it | integer: 1 |
//! | 6 ([`PUSH_OFFERED`]) | Push-Offered | Access-Challenge (to a host that sent Push-Capable) | integer: 1: the user may have a push sent instead of typing the code |
//! | 7 ([`PUSH_NUMBER`]) | Push-Number | Access-Challenge of a push waiting, with number matching | integer: the number to show, 10 to 99 |
//! | 8 ([`PUSH_TIMEOUT`]) | Push-Timeout | Access-Challenge of a push waiting | integer: seconds until the request expires, 1 to 3600 |
//! | 9, 10 | Offline-Report, Offline-Report-Ack | a host's report of a login it let in while no server answered, and its acknowledgement | see [`report`] |
//!
//! Push approval (issue 20): a host says in every request that it can wait for a push
//! (Push-Capable), so a server never sends the push attributes to a host of an older release,
//! which would refuse them. A challenge that offers a push carries Push-Offered; the host
//! answers it with Push-Request (and an empty User-Password) when the user chose the push, and
//! gets an Access-Challenge whose Push-Timeout (with Push-Number under number matching) says a
//! push is waiting. The host then asks again with that challenge's State and an empty
//! User-Password, once a second, until the answer is an Access-Accept or Access-Reject; each
//! Access-Challenge while the phone has not decided carries a fresh State and the same push
//! attributes.
//!
//! Reply-Message is for the user, so the reason travels beside it rather than in it. A reader
//! is strict about this vendor's attributes only: the host refuses a reply whose
//! Vendor-Specific of [`VENDOR_ID`] it does not fully understand (a malformed one, an unknown
//! or repeated vendor type, one that does not belong in that reply), and the caller fails
//! closed. Other vendors' attributes are not this protocol's and are left alone.

use std::fmt;
use std::net::IpAddr;

use crate::{AttrType, Builder, Code, EncodeError, Packet, PasswordError, hide_password};

pub mod report;

/// The Vendor-Id of the project's Vendor-Specific attributes. 32473 is the Private
/// Enterprise Number IANA set aside for documentation (RFC 5612): a placeholder until the
/// project registers its own (free, at IANA). Both ends read it from here, so a host and a
/// server of one release always agree; changing it is a wire change, so both ends of a
/// fleet must then be upgraded together.
pub const VENDOR_ID: u32 = 32_473;
/// Vendor type: whether the host's NSS knows the user (request).
pub const NAME_KNOWN: u8 = 1;
/// Vendor type: why the server rejected (Access-Reject).
pub const REJECT_REASON: u8 = 2;
/// Vendor type: when the lock that rejected ends (Access-Reject).
pub const LOCKED_UNTIL: u8 = 3;
/// Vendor type: the host can wait for a push (request).
pub const PUSH_CAPABLE: u8 = 4;
/// Vendor type: the user chose the push the challenge offered (request).
pub const PUSH_REQUEST: u8 = 5;
/// Vendor type: the challenge offers a push (Access-Challenge).
pub const PUSH_OFFERED: u8 = 6;
/// Vendor type: the number to show for number matching (Access-Challenge of a waiting push).
pub const PUSH_NUMBER: u8 = 7;
/// Vendor type: seconds until the waiting push expires (Access-Challenge of a waiting push).
pub const PUSH_TIMEOUT: u8 = 8;
/// The longest Push-Timeout a host believes: a push waits at most `[push] timeout` (10 min).
pub const MAX_PUSH_TIMEOUT: u32 = 3600;
/// Longest reason code on the wire.
pub const MAX_REASON: usize = 64;
/// Longest NAS-Identifier or Called-Station-Id a host sends, and the daemon reads.
pub const MAX_LABEL: usize = 64;
/// Longest Reply-Message text, in characters, a host shows.
pub const MAX_MESSAGE: usize = 1024;

/// One Access-Request of a PAM host: round one (`state` `None`, `password` empty) or the code
/// with the State of the server's challenge.
#[derive(Debug, Clone)]
pub struct HostRequest<'a> {
    pub identifier: u8,
    /// Random, fresh for each request: the replies are verified against it.
    pub authenticator: [u8; 16],
    pub user: &'a str,
    pub password: &'a [u8],
    /// PAM_RHOST where it is an IP literal; `None` is sent as no Calling-Station-Id, which the
    /// server never trusts.
    pub rhost: Option<IpAddr>,
    /// The host's name (NAS-Identifier), made printable by [`label`].
    pub host: &'a str,
    /// The PAM service (Called-Station-Id), made printable by [`label`].
    pub service: &'a str,
    pub state: Option<&'a [u8]>,
    /// Whether the host's NSS knows `user`: what lets the server give the name a record.
    pub name_known: bool,
    /// The host can wait for a push (Push-Capable): a host of this release always can.
    pub push_capable: bool,
    /// The user chose the push the server's challenge offered (Push-Request).
    pub push_request: bool,
}

/// Why a host's request could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The code does not fit User-Password.
    Password(PasswordError),
    /// An attribute or the packet is too long.
    Encode(EncodeError),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Password(e) => write!(f, "cannot hide the User-Password: {e}"),
            RequestError::Encode(e) => write!(f, "cannot encode the Access-Request: {e}"),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestError::Password(e) => Some(e),
            RequestError::Encode(e) => Some(e),
        }
    }
}

impl From<EncodeError> for RequestError {
    fn from(e: EncodeError) -> Self {
        RequestError::Encode(e)
    }
}

impl HostRequest<'_> {
    /// The Access-Request, with Message-Authenticator and the password hidden under `secret`.
    pub fn encode(&self, secret: &[u8]) -> Result<Vec<u8>, RequestError> {
        let hidden = hide_password(self.password, secret, &self.authenticator)
            .map_err(RequestError::Password)?;
        let mut b = Builder::request(Code::ACCESS_REQUEST, self.identifier, true);
        b.add(AttrType::USER_NAME, self.user.as_bytes())?;
        b.add(AttrType::USER_PASSWORD, &hidden)?;
        if let Some(ip) = self.rhost {
            b.add(AttrType::CALLING_STATION_ID, ip.to_string().as_bytes())?;
        }
        b.add(AttrType::NAS_IDENTIFIER, label(self.host).as_bytes())?;
        b.add(AttrType::CALLED_STATION_ID, label(self.service).as_bytes())?;
        if let Some(s) = self.state {
            b.add(AttrType::STATE, s)?;
        }
        add_vsa(
            &mut b,
            NAME_KNOWN,
            &u32::from(self.name_known).to_be_bytes(),
        )?;
        if self.push_capable {
            add_vsa(&mut b, PUSH_CAPABLE, &1u32.to_be_bytes())?;
        }
        if self.push_request {
            add_vsa(&mut b, PUSH_REQUEST, &1u32.to_be_bytes())?;
        }
        Ok(b.encode_request(secret, &self.authenticator)?)
    }
}

/// A value a host sends from local text: printable ASCII (anything else becomes `_`), at
/// most [`MAX_LABEL`] characters, `-` when empty.
pub fn label(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(MAX_LABEL)
        .collect();
    if v.is_empty() { "-".into() } else { v }
}

/// What the daemon reads of a PAM host's request beyond User-Name, User-Password, State and
/// the client address. The values come from a client that proved its secret, but are still
/// only what the host says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostClaims {
    /// NAS-Identifier: printable ASCII without `/`, at most [`MAX_LABEL`] characters; `None`
    /// where absent or empty.
    pub host: Option<String>,
    /// Called-Station-Id, likewise.
    pub service: Option<String>,
    /// Name-Known: `None` where the host sent none (a host of an older release) or one that
    /// cannot be read (not 4 octets, not 0 or 1, sent twice, or in a malformed
    /// Vendor-Specific), which vouches for nothing.
    pub name_known: Option<bool>,
    /// Push-Capable, exactly once with the value 1 (anything else: not capable, so the
    /// server sends this host no push attribute it might not know).
    pub push_capable: bool,
    /// Push-Request, exactly once with the value 1.
    pub push_request: bool,
}

/// Reads a PAM host's request (see [`HostClaims`]).
pub fn read_request(p: &Packet<'_>) -> HostClaims {
    let part = |typ: AttrType| -> Option<String> {
        let v: String = String::from_utf8_lossy(p.attr(typ)?)
            .trim_end_matches('\0')
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '/' {
                    c
                } else {
                    '_'
                }
            })
            .take(MAX_LABEL)
            .collect();
        (!v.is_empty()).then_some(v)
    };
    let subs = vendor_attrs(p).unwrap_or_default();
    // The one value of vendor type `typ`: `None` where absent or repeated.
    let one = |typ: u8| {
        let mut all = subs.iter().filter(|(t, _)| *t == typ);
        match (all.next(), all.next()) {
            (Some((_, v)), None) => Some(*v),
            _ => None,
        }
    };
    let name_known = match one(NAME_KNOWN) {
        Some([0, 0, 0, 1]) => Some(true),
        Some([0, 0, 0, 0]) => Some(false),
        _ => None,
    };
    let yes = |typ: u8| matches!(one(typ), Some([0, 0, 0, 1]));
    HostClaims {
        host: part(AttrType::NAS_IDENTIFIER),
        service: part(AttrType::CALLED_STATION_ID),
        name_known,
        push_capable: yes(PUSH_CAPABLE),
        push_request: yes(PUSH_REQUEST),
    }
}

/// Adds why an Access-Reject to a PAM host rejects: `reason`, the decision's stable code,
/// and for a lock the time it ends (Unix seconds; clamped into the 32 bits of RFC 8044's
/// time, which reach 2106).
pub fn add_reject_reason(
    b: &mut Builder,
    reason: &str,
    locked_until: Option<i64>,
) -> Result<(), EncodeError> {
    add_vsa(b, REJECT_REASON, reason.as_bytes())?;
    if let Some(t) = locked_until {
        let t = u32::try_from(t.max(0)).unwrap_or(u32::MAX);
        add_vsa(b, LOCKED_UNTIL, &t.to_be_bytes())?;
    }
    Ok(())
}

/// Marks an Access-Challenge to a push-capable host as offering a push (Push-Offered).
pub fn add_push_offered(b: &mut Builder) -> Result<(), EncodeError> {
    add_vsa(b, PUSH_OFFERED, &1u32.to_be_bytes())
}

/// Marks an Access-Challenge to a push-capable host as a push waiting for the phone: the
/// number to show under number matching, and the seconds until it expires (at least 1, at
/// most [`MAX_PUSH_TIMEOUT`]).
pub fn add_push_waiting(
    b: &mut Builder,
    number: Option<u8>,
    timeout_secs: u32,
) -> Result<(), EncodeError> {
    if let Some(n) = number {
        add_vsa(b, PUSH_NUMBER, &u32::from(n).to_be_bytes())?;
    }
    let t = timeout_secs.clamp(1, MAX_PUSH_TIMEOUT);
    add_vsa(b, PUSH_TIMEOUT, &t.to_be_bytes())
}

fn add_vsa(b: &mut Builder, typ: u8, value: &[u8]) -> Result<(), EncodeError> {
    let too_long = || EncodeError::AttributeTooLong {
        typ: AttrType::VENDOR_SPECIFIC,
        len: value.len() + 6,
    };
    let vlen = u8::try_from(value.len() + 2).map_err(|_| too_long())?;
    let mut v = Vec::with_capacity(value.len() + 6);
    v.extend_from_slice(&VENDOR_ID.to_be_bytes());
    v.push(typ);
    v.push(vlen);
    v.extend_from_slice(value);
    b.add(AttrType::VENDOR_SPECIFIC, &v)?;
    Ok(())
}

/// A server's verified answer to a PAM host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostReply {
    Accept {
        message: Option<String>,
    },
    Reject {
        message: Option<String>,
        /// `None` where the server said no reason (one of an older release).
        reason: Option<RejectReason>,
    },
    Challenge {
        message: Option<String>,
        state: Vec<u8>,
        /// What the challenge says of push approval; `None` for a plain code challenge.
        push: Option<ChallengePush>,
    },
}

/// What an Access-Challenge to a push-capable host says of push approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePush {
    /// The user may have a push sent instead of typing the code (Push-Offered).
    Offered,
    /// A push is waiting for the phone (Push-Timeout, and Push-Number under number
    /// matching): show the number, then ask again with this challenge's State.
    Waiting {
        number: Option<u8>,
        /// Seconds until the request expires, 1 to [`MAX_PUSH_TIMEOUT`].
        timeout_secs: u32,
    },
}

/// Why the server rejected, as it said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectReason {
    /// The decision's stable reason code: `a-z` and `_`, 1 to [`MAX_REASON`] octets.
    pub code: String,
    /// For a lock: when it ends, Unix seconds.
    pub locked_until: Option<i64>,
}

/// Why a verified reply is not one a PAM host can act on. The host fails closed on each.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyError {
    /// Not Access-Accept, Access-Reject or Access-Challenge.
    UnexpectedCode(Code),
    /// An Access-Challenge without a State to answer it with.
    ChallengeWithoutState,
    /// A Vendor-Specific of [`VENDOR_ID`] whose sub-attributes do not add up.
    MalformedVendorAttribute,
    /// A vendor type this host does not know.
    UnknownVendorType(u8),
    /// A vendor type sent twice.
    RepeatedVendorType(u8),
    /// A vendor type that does not belong in this reply (a reason on an Accept, a lock's end
    /// without a reason, Name-Known in a reply, a push attribute outside a challenge, a
    /// number without a push waiting, a push offered and waiting at once).
    Misplaced { typ: u8, code: Code },
    /// A value of the wrong length or form.
    BadValue(u8),
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::UnexpectedCode(c) => write!(f, "unexpected {c}"),
            ReplyError::ChallengeWithoutState => f.write_str("an Access-Challenge without a State"),
            ReplyError::MalformedVendorAttribute => write!(
                f,
                "a malformed Vendor-Specific attribute of vendor {VENDOR_ID}"
            ),
            ReplyError::UnknownVendorType(t) => write!(
                f,
                "vendor {VENDOR_ID} attribute type {t} is not known to this host (is the server newer?)"
            ),
            ReplyError::RepeatedVendorType(t) => {
                write!(f, "vendor {VENDOR_ID} attribute type {t} sent twice")
            }
            ReplyError::Misplaced { typ, code } => write!(
                f,
                "vendor {VENDOR_ID} attribute type {typ} does not belong in an {}",
                code.name()
            ),
            ReplyError::BadValue(t) => {
                write!(f, "vendor {VENDOR_ID} attribute type {t} has a bad value")
            }
        }
    }
}

impl std::error::Error for ReplyError {}

/// Reads a reply the host has verified (Response Authenticator, Message-Authenticator).
pub fn read_reply(p: &Packet<'_>) -> Result<HostReply, ReplyError> {
    let mut text = Vec::new();
    for m in p.attrs(AttrType::REPLY_MESSAGE) {
        text.extend_from_slice(m);
    }
    let message = (!text.is_empty()).then(|| shown(&text));
    let subs = vendor_attrs(p)?;
    let mut reason: Option<&[u8]> = None;
    let mut until: Option<&[u8]> = None;
    let mut offered: Option<&[u8]> = None;
    let mut number: Option<&[u8]> = None;
    let mut timeout: Option<&[u8]> = None;
    for &(typ, value) in &subs {
        let slot = match typ {
            REJECT_REASON => &mut reason,
            LOCKED_UNTIL => &mut until,
            PUSH_OFFERED => &mut offered,
            PUSH_NUMBER => &mut number,
            PUSH_TIMEOUT => &mut timeout,
            NAME_KNOWN | PUSH_CAPABLE | PUSH_REQUEST => {
                return Err(ReplyError::Misplaced { typ, code: p.code });
            }
            other => return Err(ReplyError::UnknownVendorType(other)),
        };
        if slot.replace(value).is_some() {
            return Err(ReplyError::RepeatedVendorType(typ));
        }
    }
    let misplaced = |typ| Err(ReplyError::Misplaced { typ, code: p.code });
    match p.code {
        Code::ACCESS_REJECT => {}
        _ if reason.is_some() => return misplaced(REJECT_REASON),
        _ if until.is_some() => return misplaced(LOCKED_UNTIL),
        _ => {}
    }
    match p.code {
        Code::ACCESS_CHALLENGE => {}
        _ if offered.is_some() => return misplaced(PUSH_OFFERED),
        _ if number.is_some() => return misplaced(PUSH_NUMBER),
        _ if timeout.is_some() => return misplaced(PUSH_TIMEOUT),
        _ => {}
    }
    let integer = |typ: u8, v: &[u8]| -> Result<u32, ReplyError> {
        let b: [u8; 4] = v.try_into().map_err(|_| ReplyError::BadValue(typ))?;
        Ok(u32::from_be_bytes(b))
    };
    match p.code {
        Code::ACCESS_ACCEPT => Ok(HostReply::Accept { message }),
        Code::ACCESS_CHALLENGE => {
            let state = p
                .attr(AttrType::STATE)
                .ok_or(ReplyError::ChallengeWithoutState)?;
            let push = match (offered, number, timeout) {
                (None, None, None) => None,
                (Some(v), None, None) => {
                    if integer(PUSH_OFFERED, v)? != 1 {
                        return Err(ReplyError::BadValue(PUSH_OFFERED));
                    }
                    Some(ChallengePush::Offered)
                }
                (Some(_), _, Some(_)) => return misplaced(PUSH_OFFERED),
                (_, Some(_), None) => return misplaced(PUSH_NUMBER),
                (None, number, Some(t)) => {
                    let timeout_secs = integer(PUSH_TIMEOUT, t)?;
                    if !(1..=MAX_PUSH_TIMEOUT).contains(&timeout_secs) {
                        return Err(ReplyError::BadValue(PUSH_TIMEOUT));
                    }
                    let number = match number {
                        None => None,
                        Some(v) => {
                            let n = integer(PUSH_NUMBER, v)?;
                            match u8::try_from(n) {
                                Ok(n) if (10..=99).contains(&n) => Some(n),
                                _ => return Err(ReplyError::BadValue(PUSH_NUMBER)),
                            }
                        }
                    };
                    Some(ChallengePush::Waiting {
                        number,
                        timeout_secs,
                    })
                }
            };
            Ok(HostReply::Challenge {
                message,
                state: state.to_vec(),
                push,
            })
        }
        Code::ACCESS_REJECT => {
            let reason = match (reason, until) {
                (None, None) => None,
                (None, Some(_)) => return misplaced(LOCKED_UNTIL),
                (Some(code), until) => {
                    let ok = !code.is_empty()
                        && code.len() <= MAX_REASON
                        && code.iter().all(|b| b.is_ascii_lowercase() || *b == b'_');
                    if !ok {
                        return Err(ReplyError::BadValue(REJECT_REASON));
                    }
                    let locked_until = match until {
                        None => None,
                        Some(v) => {
                            let b: [u8; 4] = v
                                .try_into()
                                .map_err(|_| ReplyError::BadValue(LOCKED_UNTIL))?;
                            Some(i64::from(u32::from_be_bytes(b)))
                        }
                    };
                    Some(RejectReason {
                        code: String::from_utf8_lossy(code).into_owned(),
                        locked_until,
                    })
                }
            };
            Ok(HostReply::Reject { message, reason })
        }
        other => Err(ReplyError::UnexpectedCode(other)),
    }
}

/// The sub-attributes of every Vendor-Specific of [`VENDOR_ID`] in `p`, in order.
fn vendor_attrs<'a>(p: &Packet<'a>) -> Result<Vec<(u8, &'a [u8])>, ReplyError> {
    let mut out = Vec::new();
    for vsa in p.attrs(AttrType::VENDOR_SPECIFIC) {
        let Some((id, mut rest)) = vsa.split_first_chunk::<4>() else {
            // Too short to name a vendor: nobody's, so not this protocol's.
            continue;
        };
        if u32::from_be_bytes(*id) != VENDOR_ID {
            continue;
        }
        if rest.is_empty() {
            return Err(ReplyError::MalformedVendorAttribute);
        }
        while let [typ, len, ..] = *rest {
            let len = usize::from(len);
            let value = rest
                .get(2..len)
                .filter(|_| len >= 2)
                .ok_or(ReplyError::MalformedVendorAttribute)?;
            out.push((typ, value));
            rest = rest.get(len..).unwrap_or_default();
        }
        if !rest.is_empty() {
            return Err(ReplyError::MalformedVendorAttribute);
        }
    }
    Ok(out)
}

/// Text from the server as the conversation shows it: valid UTF-8, no control characters but
/// newlines, at most [`MAX_MESSAGE`] characters.
fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .take(MAX_MESSAGE)
        .collect()
}

#[cfg(test)]
mod tests;
