//! Reading the request attributes the daemon acts on: the client IP for the trusted-network
//! rule, what asks and what vouches for the name (a PAM host's claims through
//! `mfa_radius_proto::pam_host`), and what a PAM host's Access-Reject adds. Pure functions.

use std::net::{IpAddr, Ipv4Addr};

use mfa_config::{ClientIpAttribute, ClientKind, ClientSettings, RadiusMode};
use mfa_core::ClientAddr;
use mfa_core::PushRefusal;
use mfa_core::login::{Service, Voucher};
use mfa_core::net::parse_client_ip_attribute;
use mfa_core::policy::Reason;
use mfa_radius_proto::{AttrType, Builder, Code, EncodeError, Packet, pam_host};

use crate::challenge::Asker;

/// The end user's address from the configured attribute. Absent, repeated, empty, a host name
/// or anything unparsable is `Remote(None)`: never trusted. The NAS's own address is never
/// used.
pub fn client_addr(which: ClientIpAttribute, p: &Packet<'_>) -> ClientAddr {
    let typ = match which {
        ClientIpAttribute::CallingStationId => AttrType::CALLING_STATION_ID,
        ClientIpAttribute::TunnelClientEndpoint => AttrType::TUNNEL_CLIENT_ENDPOINT,
        ClientIpAttribute::FramedIpAddress => AttrType::FRAMED_IP_ADDRESS,
    };
    if p.count(typ) != 1 {
        return ClientAddr::Remote(None);
    }
    let Some(v) = p.attr(typ) else {
        return ClientAddr::Remote(None);
    };
    ClientAddr::Remote(match which {
        ClientIpAttribute::FramedIpAddress => framed_ip(v),
        ClientIpAttribute::CallingStationId => text_ip(v),
        // RFC 2868 §3.3: an optional leading tag octet (0x01..=0x1f).
        ClientIpAttribute::TunnelClientEndpoint => match v.split_first() {
            Some((&t, rest)) if t <= 0x1f => text_ip(rest),
            _ => text_ip(v),
        },
    })
}

fn text_ip(v: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(v).ok()?;
    // Some NASes NUL-terminate strings.
    parse_client_ip_attribute(s.trim_end_matches('\0'))
}

fn framed_ip(v: &[u8]) -> Option<IpAddr> {
    let b: [u8; 4] = v.try_into().ok()?;
    let ip = Ipv4Addr::from(b);
    // 255.255.255.255 and .254 mean "let the user/NAS choose" (RFC 2865 §5.8), not an address.
    if b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] >= 254 {
        return None;
    }
    Some(IpAddr::V4(ip))
}

/// What asks, for the policy and the audit trail, and what vouches for the name
/// ([`mfa_core::Login::admit_name`] decides). A client of `kind = "pam-hosts"` is a PAM login:
/// its host and PAM service from the NAS-Identifier and Called-Station-Id pam_mfa sends
/// (`client/host/service` in the audit trail, `-` where one is missing), so the trail says
/// which host and which PAM service asked and `[policy] remember_for` can name the service;
/// where the client entry covers several hosts, the host's source address follows the
/// client's name (`client@10.0.5.7/host/...`): the NAS-Identifier is only what the host says
/// it is. Its name is vouched for by what the host says its own NSS answered (Name-Known),
/// as the PAM module vouches for a name locally; no first factor is checked here. Every
/// other client is itself, by its configured name and whether it is in code-only mode, and
/// its requests reach a final decision only past a first factor (here, or at the gateway in
/// code-only mode). Each part from the packet is printable ASCII without `/`, at most 64
/// characters: the values come from an authenticated client, but are still only text.
pub fn asking(asker: &Asker, s: &ClientSettings, p: &Packet<'_>) -> (Service, Voucher) {
    if s.kind != ClientKind::PamHosts {
        let service = Service::Radius {
            client: asker.client.clone(),
            code_only: s.mode == RadiusMode::CodeOnly,
        };
        return (service, Voucher::FirstFactor);
    }
    let claims = pam_host::read_request(p);
    let service = Service::RemotePam {
        client: asker.client.clone(),
        address: asker.host,
        host: claims.host.unwrap_or_else(|| "-".into()),
        service: claims.service,
    };
    (
        service,
        Voucher::PamHost {
            knows: claims.name_known,
        },
    )
}

/// What a request says of push approval (issue 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushClaims {
    /// The client can be sent a push's number and be asked again: a gateway always (its
    /// Reply-Message shows it); a PAM host where it says so (Push-Capable), so a host of an
    /// older release is never sent the push attributes it would refuse.
    pub capable: bool,
    /// A PAM host's user chose the push its challenge offered (Push-Request). A gateway's
    /// user types the word instead, which the mode reads from User-Password.
    pub requested: bool,
    /// The client is a PAM host: its user's typed answer is a code, never the word.
    pub pam_host: bool,
}

/// [`PushClaims`] of a request from a client of settings `s`.
pub fn push_claims(s: &ClientSettings, p: &Packet<'_>) -> PushClaims {
    if s.kind != ClientKind::PamHosts {
        return PushClaims {
            capable: true,
            requested: false,
            pam_host: false,
        };
    }
    let claims = pam_host::read_request(p);
    PushClaims {
        capable: claims.push_capable,
        requested: claims.push_capable && claims.push_request,
        pam_host: true,
    }
}

/// What an Access-Reject to a PAM host says beside its Reply-Message: why, so the host
/// ends the login as the PAM module would locally (PAM_MAXTRIES for a lock). Nothing for
/// other clients or other replies.
pub fn add_pam_host_reason(
    b: &mut Builder,
    s: &ClientSettings,
    code: Code,
    reason: &Reason,
) -> Result<(), EncodeError> {
    if s.kind != ClientKind::PamHosts || code != Code::ACCESS_REJECT {
        return Ok(());
    }
    // Every refusal with an end says it (`Reason::refusal_from_code` reads them back).
    let until = match reason {
        Reason::Locked { until }
        | Reason::SourceLocked { until }
        | Reason::PushRefused(
            PushRefusal::Blocked { until } | PushRefusal::RateLimited { until },
        ) => Some(*until),
        _ => None,
    };
    pam_host::add_reject_reason(b, reason.code(), until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfa_radius_proto::{Builder, Code};

    fn pkt_with(typ: u8, vals: &[&[u8]]) -> Vec<u8> {
        let mut b = Builder::request(Code::ACCESS_REQUEST, 1, true);
        for v in vals {
            b.add(AttrType(typ), v).unwrap();
        }
        b.encode_request(b"s", &[0; 16]).unwrap()
    }

    fn addr(which: ClientIpAttribute, typ: u8, vals: &[&[u8]]) -> ClientAddr {
        let raw = pkt_with(typ, vals);
        client_addr(which, &Packet::parse(&raw).unwrap())
    }

    fn ip(s: &str) -> ClientAddr {
        ClientAddr::Remote(Some(s.parse().unwrap()))
    }

    #[test]
    fn client_ip_attributes() {
        use ClientIpAttribute::*;
        let none = ClientAddr::Remote(None);
        assert_eq!(
            addr(CallingStationId, 31, &[b"85.1.2.3:1194"]),
            ip("85.1.2.3")
        );
        assert_eq!(addr(CallingStationId, 31, &[b"85.1.2.3"]), ip("85.1.2.3"));
        assert_eq!(
            addr(CallingStationId, 31, &[b"[2001:db8::5]:443"]),
            ip("2001:db8::5")
        );
        assert_eq!(addr(CallingStationId, 31, &[b"10.1.2.3\0"]), ip("10.1.2.3"));
        assert_eq!(addr(CallingStationId, 31, &[b""]), none);
        assert_eq!(addr(CallingStationId, 31, &[b"vpn.example.com"]), none);
        assert_eq!(addr(CallingStationId, 31, &[b"00-11-22-33-44-55"]), none);
        assert_eq!(addr(CallingStationId, 31, &[b"\xff\xfe"]), none);
        assert_eq!(
            addr(CallingStationId, 31, &[b"10.0.0.1", b"85.1.2.3"]),
            none
        );
        assert_eq!(addr(CallingStationId, 31, &[]), none);
        // Another attribute is not looked at.
        assert_eq!(addr(CallingStationId, 66, &[b"10.0.0.1"]), none);
        assert_eq!(
            addr(TunnelClientEndpoint, 66, &[b"\x01203.0.113.9"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            addr(TunnelClientEndpoint, 66, &[b"203.0.113.9"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            addr(FramedIpAddress, 8, &[&[192, 0, 2, 44]]),
            ip("192.0.2.44")
        );
        assert_eq!(addr(FramedIpAddress, 8, &[&[255, 255, 255, 254]]), none);
        assert_eq!(addr(FramedIpAddress, 8, &[&[10, 0, 0]]), none);
    }

    #[test]
    fn pam_hosts_are_named_with_host_and_service() {
        let host = ClientSettings {
            kind: ClientKind::PamHosts,
            mode: RadiusMode::Challenge,
            first_factor: mfa_config::FirstFactor::None,
            client_ip_attribute: ClientIpAttribute::CallingStationId,
            require_message_authenticator: true,
        };
        let service_of = |a: &Asker, s: &ClientSettings, p: &Packet<'_>| asking(a, s, p).0;
        let mut b = Builder::request(Code::ACCESS_REQUEST, 1, true);
        b.add(AttrType::NAS_IDENTIFIER, b"web1").unwrap();
        b.add(AttrType::CALLED_STATION_ID, b"ss/hd x").unwrap();
        let raw = b.encode_request(b"s", &[0; 16]).unwrap();
        let p = Packet::parse(&raw).unwrap();
        let hosts = Asker {
            client: "hosts".into(),
            host: None,
        };
        let s = service_of(&hosts, &host, &p);
        assert_eq!(s.to_string(), "hosts/web1/ss_hd_x");
        assert_eq!(
            s,
            Service::RemotePam {
                client: "hosts".into(),
                address: None,
                host: "web1".into(),
                service: Some("ss_hd_x".into())
            }
        );
        let bare = pkt_with(1, &[b"alice"]);
        let s = service_of(&hosts, &host, &Packet::parse(&bare).unwrap());
        assert_eq!(s.to_string(), "hosts/-/-");
        assert!(matches!(s, Service::RemotePam { service: None, .. }));
        // An entry for several hosts: the source address says which one, whatever the
        // host calls itself.
        let fleet = Asker {
            client: "hosts".into(),
            host: Some("10.0.5.7".parse().unwrap()),
        };
        assert_eq!(
            service_of(&fleet, &host, &p).to_string(),
            "hosts@10.0.5.7/web1/ss_hd_x"
        );
        let vpn = ClientSettings {
            kind: ClientKind::Gateway,
            first_factor: mfa_config::FirstFactor::Pam,
            ..host
        };
        let named = |client: &str| Asker {
            client: client.into(),
            host: None,
        };
        assert_eq!(
            service_of(&named("vpn"), &vpn, &p),
            Service::Radius {
                client: "vpn".into(),
                code_only: false
            }
        );
        let rdgw = ClientSettings {
            kind: ClientKind::Gateway,
            mode: RadiusMode::CodeOnly,
            ..host
        };
        let s = service_of(&named("rdgw"), &rdgw, &p);
        assert_eq!(s.to_string(), "rdgw");
        assert_eq!(
            s,
            Service::Radius {
                client: "rdgw".into(),
                code_only: true
            }
        );
        // The kind says what a client is, not its mode and first factor: a gateway in
        // challenge mode that checks no password is still no PAM host.
        let odd = ClientSettings {
            kind: ClientKind::Gateway,
            ..host
        };
        assert!(matches!(
            asking(&named("odd"), &odd, &p),
            (Service::Radius { .. }, Voucher::FirstFactor)
        ));
    }

    /// A PAM host's name is vouched for by what it says its NSS answered, never by the
    /// request merely arriving; a gateway's by the first factor every final decision of it
    /// follows.
    #[test]
    fn what_vouches_for_a_name() {
        let host = ClientSettings {
            kind: ClientKind::PamHosts,
            mode: RadiusMode::Challenge,
            first_factor: mfa_config::FirstFactor::None,
            client_ip_attribute: ClientIpAttribute::CallingStationId,
            require_message_authenticator: true,
        };
        let asker = Asker {
            client: "hosts".into(),
            host: None,
        };
        let voucher = |s: &ClientSettings, known: Option<bool>| {
            let raw = match known {
                Some(k) => pam_host::HostRequest {
                    identifier: 1,
                    authenticator: [2; 16],
                    user: "alice",
                    password: b"",
                    rhost: None,
                    host: "web1",
                    service: "sshd",
                    state: None,
                    name_known: k,
                    push_capable: false,
                    push_request: false,
                }
                .encode(b"s")
                .unwrap(),
                None => pkt_with(1, &[b"alice"]),
            };
            asking(&asker, s, &Packet::parse(&raw).unwrap()).1
        };
        assert_eq!(
            voucher(&host, Some(true)),
            Voucher::PamHost { knows: Some(true) }
        );
        assert_eq!(
            voucher(&host, Some(false)),
            Voucher::PamHost { knows: Some(false) }
        );
        assert_eq!(voucher(&host, None), Voucher::PamHost { knows: None });
        let vpn = ClientSettings {
            kind: ClientKind::Gateway,
            first_factor: mfa_config::FirstFactor::Pam,
            ..host
        };
        assert_eq!(voucher(&vpn, Some(false)), Voucher::FirstFactor);
    }

    /// An Access-Reject to a PAM host says why (and when a lock ends); nothing else does.
    #[test]
    fn a_reject_to_a_pam_host_says_why() {
        let host = ClientSettings {
            kind: ClientKind::PamHosts,
            mode: RadiusMode::Challenge,
            first_factor: mfa_config::FirstFactor::None,
            client_ip_attribute: ClientIpAttribute::CallingStationId,
            require_message_authenticator: true,
        };
        let gw = ClientSettings {
            kind: ClientKind::Gateway,
            ..host
        };
        let req = pkt_with(1, &[b"alice"]);
        let req = Packet::parse(&req).unwrap();
        let answer = |s: &ClientSettings, code: Code, reason: Reason| {
            let mut b = Builder::reply(code, &req);
            add_pam_host_reason(&mut b, s, code, &reason).unwrap();
            let raw = b.encode_reply(b"s", &req.authenticator).unwrap();
            pam_host::read_reply(&Packet::parse(&raw).unwrap()).unwrap()
        };
        let reason = |code: &str, until| {
            Some(pam_host::RejectReason {
                code: code.into(),
                locked_until: until,
            })
        };
        for (r, want) in [
            (Reason::Locked { until: 77 }, reason("locked", Some(77))),
            (
                Reason::SourceLocked { until: 78 },
                reason("source_locked", Some(78)),
            ),
            (Reason::WrongCode, reason("wrong_code", None)),
            // Issue 20: a push refused for a while says until when, as the host's reader
            // (`Reason::refusal_from_code`) requires; without it the host would fail closed.
            (
                Reason::PushRefused(PushRefusal::Blocked { until: 79 }),
                reason("push_blocked", Some(79)),
            ),
            (
                Reason::PushRefused(PushRefusal::RateLimited { until: 80 }),
                reason("push_rate_limited", Some(80)),
            ),
            (
                Reason::PushRefused(PushRefusal::AlreadyPending),
                reason("push_already_pending", None),
            ),
        ] {
            let read = match &want {
                Some(w) => Reason::refusal_from_code(&w.code, w.locked_until),
                None => None,
            };
            assert_eq!(read.as_ref(), Some(&r), "the host reads it back");
            assert_eq!(
                answer(&host, Code::ACCESS_REJECT, r),
                pam_host::HostReply::Reject {
                    message: None,
                    reason: want
                }
            );
        }
        assert_eq!(
            answer(&gw, Code::ACCESS_REJECT, Reason::Locked { until: 77 }),
            pam_host::HostReply::Reject {
                message: None,
                reason: None
            }
        );
        assert_eq!(
            answer(&host, Code::ACCESS_ACCEPT, Reason::ValidCode),
            pam_host::HostReply::Accept { message: None }
        );
    }
}
