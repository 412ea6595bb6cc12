//! A PAM host's report of a login it let in while no server answered (issue 24: `[remote]
//! offline = "trusted"`, break-glass codes), sent once a server answers again, and the
//! server's acknowledgement. Written once for both ends, as the rest of [`super`].
//!
//! The report is an Access-Request on the same port and under the same shared secret and
//! Message-Authenticator as the host's logins: User-Name (the user let in),
//! Calling-Station-Id (the login's client, when it was an IP literal), NAS-Identifier (the
//! host), Called-Station-Id (the PAM service), Message-Authenticator, no User-Password, and
//! one Vendor-Specific of [`VENDOR_ID`]:
//!
//! | vendor type | name | in | value |
//! | --- | --- | --- | --- |
//! | 9 ([`OFFLINE_REPORT`]) | Offline-Report | the report (Access-Request) | 16 octets: the event's id, drawn by the host when it let the login in; 4 octets: when, Unix seconds on the host (RFC 8044 time); then the reason it let the login in: the policy's reason code (`trusted_network`, ...) or `break_glass`, 1 to [`MAX_REASON`] octets of `a-z` and `_` |
//! | 10 ([`OFFLINE_REPORT_ACK`]) | Offline-Report-Ack | the server's Access-Accept to a report | 16 octets: the id of the event it recorded (or had recorded already) |
//!
//! The host forgets an event only on a verified Access-Accept that carries its id; anything
//! else (no answer, an Access-Reject, a server of an older release, which takes the report
//! for a login without a password and refuses it) keeps the event for the next login that
//! reaches a server.

use std::net::IpAddr;

use super::{MAX_REASON, RequestError, VENDOR_ID, add_vsa, label, vendor_attrs};
use crate::{AttrType, Builder, Code, EncodeError, Packet};

/// Vendor type: a host's report of a login it let in offline (Access-Request).
pub const OFFLINE_REPORT: u8 = 9;
/// Vendor type: the event the server recorded (Access-Accept to a report).
pub const OFFLINE_REPORT_ACK: u8 = 10;

/// One event as the report carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineEvent {
    pub id: [u8; 16],
    /// Unix seconds on the host.
    pub time: u32,
    /// `a-z` and `_`, 1 to [`MAX_REASON`] octets.
    pub reason: String,
}

/// A host's report.
#[derive(Debug, Clone)]
pub struct ReportRequest<'a> {
    pub identifier: u8,
    /// Random, fresh for each request: the reply is verified against it.
    pub authenticator: [u8; 16],
    pub user: &'a str,
    pub rhost: Option<IpAddr>,
    pub host: &'a str,
    pub service: &'a str,
    pub event: &'a OfflineEvent,
}

fn reason_ok(r: &[u8]) -> bool {
    !r.is_empty() && r.len() <= MAX_REASON && r.iter().all(|b| b.is_ascii_lowercase() || *b == b'_')
}

impl ReportRequest<'_> {
    /// The Access-Request, with Message-Authenticator under `secret`.
    pub fn encode(&self, secret: &[u8]) -> Result<Vec<u8>, RequestError> {
        if !reason_ok(self.event.reason.as_bytes()) {
            return Err(RequestError::Encode(EncodeError::AttributeTooLong {
                typ: AttrType::VENDOR_SPECIFIC,
                len: self.event.reason.len(),
            }));
        }
        let mut b = Builder::request(Code::ACCESS_REQUEST, self.identifier, true);
        b.add(AttrType::USER_NAME, self.user.as_bytes())?;
        if let Some(ip) = self.rhost {
            b.add(AttrType::CALLING_STATION_ID, ip.to_string().as_bytes())?;
        }
        b.add(AttrType::NAS_IDENTIFIER, label(self.host).as_bytes())?;
        b.add(AttrType::CALLED_STATION_ID, label(self.service).as_bytes())?;
        let mut v = Vec::with_capacity(20 + self.event.reason.len());
        v.extend_from_slice(&self.event.id);
        v.extend_from_slice(&self.event.time.to_be_bytes());
        v.extend_from_slice(self.event.reason.as_bytes());
        add_vsa(&mut b, OFFLINE_REPORT, &v)?;
        Ok(b.encode_request(secret, &self.authenticator)?)
    }
}

/// Why a report (or its acknowledgement) cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportError {
    /// A Vendor-Specific of [`VENDOR_ID`] whose sub-attributes do not add up.
    MalformedVendorAttribute,
    /// Offline-Report (or its acknowledgement) sent twice.
    Repeated,
    /// A value of the wrong length or form.
    BadValue,
    /// A report with a User-Password or a State: a login, not a report.
    NotAReport,
    /// A reply that is not an Access-Accept with the acknowledgement of this event.
    NotAcknowledged,
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReportError::MalformedVendorAttribute => {
                "a malformed Vendor-Specific attribute of the project's vendor"
            }
            ReportError::Repeated => "Offline-Report sent twice",
            ReportError::BadValue => {
                "Offline-Report is not 16 octets of id, 4 of time and a reason of a-z and _"
            }
            ReportError::NotAReport => {
                "Offline-Report beside a User-Password or State (a login is no report)"
            }
            ReportError::NotAcknowledged => {
                "the reply does not acknowledge the event (is the server of an older release?)"
            }
        })
    }
}

impl std::error::Error for ReportError {}

/// Whether `p` carries an Offline-Report at all (well formed or not): the daemon then
/// treats it as a report, never as a login.
pub fn is_report(p: &Packet<'_>) -> bool {
    p.attrs(AttrType::VENDOR_SPECIFIC).any(|v| {
        v.len() > 4
            && v.get(..4) == Some(&VENDOR_ID.to_be_bytes()[..])
            && v.get(4) == Some(&OFFLINE_REPORT)
    })
}

/// The event a host's report carries: `Ok(None)` where it carries no Offline-Report.
pub fn read_report(p: &Packet<'_>) -> Result<Option<OfflineEvent>, ReportError> {
    let subs = vendor_attrs(p).map_err(|_| ReportError::MalformedVendorAttribute)?;
    let mut all = subs.iter().filter(|(t, _)| *t == OFFLINE_REPORT);
    let Some((_, v)) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(ReportError::Repeated);
    }
    if p.attr(AttrType::USER_PASSWORD).is_some() || p.attr(AttrType::STATE).is_some() {
        return Err(ReportError::NotAReport);
    }
    let (id, rest) = v.split_first_chunk::<16>().ok_or(ReportError::BadValue)?;
    let (time, reason) = rest.split_first_chunk::<4>().ok_or(ReportError::BadValue)?;
    if !reason_ok(reason) {
        return Err(ReportError::BadValue);
    }
    Ok(Some(OfflineEvent {
        id: *id,
        time: u32::from_be_bytes(*time),
        reason: String::from_utf8_lossy(reason).into_owned(),
    }))
}

/// Adds the acknowledgement of event `id` to the server's Access-Accept.
pub fn add_report_ack(b: &mut Builder, id: &[u8; 16]) -> Result<(), EncodeError> {
    add_vsa(b, OFFLINE_REPORT_ACK, id)
}

/// Whether a reply the host has verified acknowledges event `id`: an Access-Accept with
/// exactly one Offline-Report-Ack, of that id.
pub fn read_report_ack(p: &Packet<'_>, id: &[u8; 16]) -> Result<(), ReportError> {
    if p.code != Code::ACCESS_ACCEPT {
        return Err(ReportError::NotAcknowledged);
    }
    let subs = vendor_attrs(p).map_err(|_| ReportError::MalformedVendorAttribute)?;
    let mut acks = subs.iter().filter(|(t, _)| *t == OFFLINE_REPORT_ACK);
    match (acks.next(), acks.next()) {
        (Some((_, v)), None) if *v == &id[..] => Ok(()),
        (Some(_), Some(_)) => Err(ReportError::Repeated),
        _ => Err(ReportError::NotAcknowledged),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pam_host::{HostRequest, read_request};

    const SECRET: &[u8] = b"0123456789abcdef";

    fn event() -> OfflineEvent {
        OfflineEvent {
            id: [7; 16],
            time: 1_800_000_000,
            reason: "trusted_network".into(),
        }
    }

    #[test]
    fn a_report_round_trips_and_is_acknowledged_by_id() {
        let ev = event();
        let raw = ReportRequest {
            identifier: 3,
            authenticator: [1; 16],
            user: "alice",
            rhost: Some("10.1.2.3".parse().unwrap()),
            host: "web1",
            service: "sshd",
            event: &ev,
        }
        .encode(SECRET)
        .unwrap();
        let p = Packet::parse(&raw).unwrap();
        assert!(p.verify_request_message_authenticator(SECRET).is_ok());
        assert!(is_report(&p));
        assert_eq!(read_report(&p).unwrap(), Some(ev.clone()));
        assert_eq!(p.attr(AttrType::USER_NAME), Some(&b"alice"[..]));
        let claims = read_request(&p);
        assert_eq!(claims.host.as_deref(), Some("web1"));
        assert_eq!(claims.service.as_deref(), Some("sshd"));

        let mut b = Builder::reply(Code::ACCESS_ACCEPT, &p);
        add_report_ack(&mut b, &ev.id).unwrap();
        let reply = b.encode_reply(SECRET, &p.authenticator).unwrap();
        let r = Packet::parse(&reply).unwrap();
        assert_eq!(read_report_ack(&r, &ev.id), Ok(()));
        assert_eq!(
            read_report_ack(&r, &[8; 16]),
            Err(ReportError::NotAcknowledged)
        );
        // A bare Accept (a server of an older release letting a name in) is no ack.
        let bare = Builder::reply(Code::ACCESS_ACCEPT, &p)
            .encode_reply(SECRET, &p.authenticator)
            .unwrap();
        assert_eq!(
            read_report_ack(&Packet::parse(&bare).unwrap(), &ev.id),
            Err(ReportError::NotAcknowledged)
        );
        let mut rej = Builder::reply(Code::ACCESS_REJECT, &p);
        add_report_ack(&mut rej, &ev.id).unwrap();
        let rej = rej.encode_reply(SECRET, &p.authenticator).unwrap();
        assert_eq!(
            read_report_ack(&Packet::parse(&rej).unwrap(), &ev.id),
            Err(ReportError::NotAcknowledged)
        );
    }

    #[test]
    fn a_login_is_no_report_and_bad_values_are_refused() {
        let login = HostRequest {
            identifier: 1,
            authenticator: [2; 16],
            user: "alice",
            password: b"",
            rhost: None,
            host: "web1",
            service: "sshd",
            state: None,
            name_known: true,
            push_capable: true,
            push_request: false,
        }
        .encode(SECRET)
        .unwrap();
        let p = Packet::parse(&login).unwrap();
        assert!(!is_report(&p));
        assert_eq!(read_report(&p), Ok(None));

        let vsa = |value: &[u8]| {
            let mut b = Builder::request(Code::ACCESS_REQUEST, 1, true);
            b.add(AttrType::USER_NAME, b"alice").unwrap();
            add_vsa(&mut b, OFFLINE_REPORT, value).unwrap();
            b.encode_request(SECRET, &[3; 16]).unwrap()
        };
        for bad in [
            &[0u8; 19][..],
            &[0u8; 20][..],
            &[[0u8; 20].as_slice(), b"Trusted"].concat(),
            &[[0u8; 20].as_slice(), &[b'a'; 65]].concat(),
        ] {
            let raw = vsa(bad);
            let p = Packet::parse(&raw).unwrap();
            assert!(is_report(&p));
            assert_eq!(read_report(&p), Err(ReportError::BadValue));
        }
        let bad = ReportRequest {
            identifier: 1,
            authenticator: [1; 16],
            user: "alice",
            rhost: None,
            host: "h",
            service: "s",
            event: &OfflineEvent {
                reason: "no spaces".into(),
                ..event()
            },
        };
        assert!(bad.encode(SECRET).is_err());
    }
}
