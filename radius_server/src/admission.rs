//! Admission: what every packet passes before anything is decided about it, whatever its
//! transport. The client (by source address over UDP; by certificate and address at the
//! RadSec handshake, `radsec.rs`), the packet code and the socket it came to (access on the
//! `listen` addresses, accounting on the `accounting_listen` ones, both over RadSec), the
//! authenticators (Message-Authenticator; an Accounting-Request's Request Authenticator),
//! the in-flight limit and the duplicate cache (`dedup.rs`). Whatever fails is dropped and
//! counted (`stats.rs`), never answered: an unauthenticated peer learns nothing.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use mfa_radius_proto::{AttrType, Code, Packet, VerifyError};
use tokio::net::UdpSocket;

use crate::answer::status_server_reply;
use crate::dedup::{self, Seen};
use crate::metrics::ClientLabels;
use crate::runtime::{Nas, Runtime, canonical_ip};
use crate::server::{ReplyTo, Shared, relock};
use crate::stats::{DropReason, Stats};

/// Requests being processed at once (waiting for a lane, or sleeping a PAM failure delay);
/// past this, new ones are dropped and the gateway retransmits.
const MAX_INFLIGHT: usize = 16_384;

/// The most specific UDP client network containing `ip` (RadSec clients are identified by
/// their certificate, on their connection, never by address alone).
pub(crate) fn udp_client(clients: &[Arc<Nas>], ip: IpAddr) -> Option<&Arc<Nas>> {
    let ip = canonical_ip(ip);
    clients
        .iter()
        .filter(|c| c.cert.is_none() && c.net.contains(&ip))
        .max_by_key(|c| c.net.prefix_len())
}

/// What kind of socket a packet came in on: which requests it takes, and how a
/// Status-Server is answered there (RFC 5997 §3: Access-Accept on an authentication port,
/// Accounting-Response on an accounting one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// A `[radius] listen` address: Access-Request and Status-Server.
    Access,
    /// A `[radius] accounting_listen` address: Accounting-Request and Status-Server.
    Accounting,
    /// A RadSec connection, which carries both (RFC 6614 §2.3).
    RadSec,
}

/// What a packet that passed [`screen`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admitted {
    AccessRequest,
    /// RFC 2866: recorded, then answered with an Accounting-Response.
    AccountingRequest,
    /// RFC 5997: answered at once, with no side effect.
    StatusServer,
}

/// Why a packet from a configured client is dropped unanswered: its counter and the
/// warning's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotAdmitted<'a> {
    /// Not an Access-Request, an Accounting-Request nor a Status-Server.
    UnsupportedCode(Code),
    /// An Accounting-Request on an authentication port: the gateway's accounting port is
    /// wrong (or accounting is off here).
    AccountingOnAccessPort,
    /// An Access-Request on an accounting port: the gateway's ports are swapped.
    AccessOnAccountingPort,
    /// None where one is required: every Status-Server and EAP request (RFC 3579), and every
    /// request from a client with `require_message_authenticator` (BlastRADIUS). `setting`:
    /// that setting is what refuses it, so the log says where to change it.
    MissingMessageAuthenticator {
        code: Code,
        client: &'a str,
        setting: bool,
    },
    /// A wrong one: another shared secret, or altered octets.
    BadMessageAuthenticator { client: &'a str },
    /// An Accounting-Request whose Request Authenticator is wrong: the same causes.
    BadRequestAuthenticator { client: &'a str },
}

impl NotAdmitted<'_> {
    /// The client entry whose packet this is, where the warning names it.
    pub(crate) fn client(&self) -> Option<&str> {
        match self {
            NotAdmitted::MissingMessageAuthenticator { client, .. }
            | NotAdmitted::BadMessageAuthenticator { client }
            | NotAdmitted::BadRequestAuthenticator { client } => Some(client),
            NotAdmitted::UnsupportedCode(_)
            | NotAdmitted::AccountingOnAccessPort
            | NotAdmitted::AccessOnAccountingPort => None,
        }
    }

    pub(crate) fn reason(&self) -> DropReason {
        match self {
            NotAdmitted::UnsupportedCode(_)
            | NotAdmitted::AccountingOnAccessPort
            | NotAdmitted::AccessOnAccountingPort => DropReason::UnsupportedCode,
            NotAdmitted::MissingMessageAuthenticator { .. } => {
                DropReason::MissingMessageAuthenticator
            }
            NotAdmitted::BadMessageAuthenticator { .. }
            | NotAdmitted::BadRequestAuthenticator { .. } => DropReason::BadAuthenticator,
        }
    }
}

impl fmt::Display for NotAdmitted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotAdmitted::UnsupportedCode(code) => write!(f, "{code}"),
            NotAdmitted::AccountingOnAccessPort => f.write_str(
                "Accounting-Request (4) on an authentication port: accounting is answered on [radius] accounting_listen (by default each listen address's port plus one, 1813 beside 1812; [] turns it off): point the gateway's accounting port there",
            ),
            NotAdmitted::AccessOnAccountingPort => f.write_str(
                "Access-Request (1) on an accounting port ([radius] accounting_listen): point the gateway's authentication port at [radius] listen",
            ),
            NotAdmitted::MissingMessageAuthenticator {
                code,
                client,
                setting,
            } => {
                write!(
                    f,
                    "{} from client {client:?} without Message-Authenticator (required: BlastRADIUS, CVE-2024-3596)",
                    code.name()
                )?;
                if *setting {
                    write!(
                        f,
                        "; a gateway that cannot send it (ocserv, Debian's OpenVPN RADIUS plugin) needs require_message_authenticator = false in the [[radius.clients]] entry with name = {client:?}, and its RADIUS kept on a protected network (docs/RADIUS.md)"
                    )?;
                }
                Ok(())
            }
            NotAdmitted::BadMessageAuthenticator { client } => write!(
                f,
                "wrong Message-Authenticator (client {client:?}: is the shared secret the same on both sides?)"
            ),
            NotAdmitted::BadRequestAuthenticator { client } => write!(
                f,
                "Accounting-Request with a wrong Request Authenticator (client {client:?}: is the shared secret the same on both sides?)"
            ),
        }
    }
}

/// The checks of one packet from client `nas`, arrived on a socket of kind `port`, that
/// need nothing but the packet and the client: its code and its authenticators. The
/// Message-Authenticator rule is the same for accounting as for access: required from a
/// client with `require_message_authenticator`, optional from one without.
pub(crate) fn screen<'a>(
    pkt: &Packet<'_>,
    nas: &'a Nas,
    port: Port,
) -> Result<Admitted, NotAdmitted<'a>> {
    let admitted = match (pkt.code, port) {
        (Code::STATUS_SERVER, _) => Admitted::StatusServer,
        (Code::ACCESS_REQUEST, Port::Access | Port::RadSec) => Admitted::AccessRequest,
        (Code::ACCOUNTING_REQUEST, Port::Accounting | Port::RadSec) => Admitted::AccountingRequest,
        (Code::ACCOUNTING_REQUEST, Port::Access) => {
            return Err(NotAdmitted::AccountingOnAccessPort);
        }
        (Code::ACCESS_REQUEST, Port::Accounting) => {
            return Err(NotAdmitted::AccessOnAccountingPort);
        }
        (other, _) => return Err(NotAdmitted::UnsupportedCode(other)),
    };
    let verified = if admitted == Admitted::AccountingRequest {
        pkt.verify_accounting_request(&nas.secret)
    } else {
        pkt.verify_request_message_authenticator(&nas.secret)
    };
    match verified {
        Ok(()) => {}
        Err(VerifyError::MissingMessageAuthenticator) => {
            let always =
                admitted == Admitted::StatusServer || pkt.attr(AttrType::EAP_MESSAGE).is_some();
            if always || nas.settings.require_message_authenticator {
                return Err(NotAdmitted::MissingMessageAuthenticator {
                    code: pkt.code,
                    client: &nas.name,
                    setting: !always,
                });
            }
        }
        Err(VerifyError::BadRequestAuthenticator) => {
            return Err(NotAdmitted::BadRequestAuthenticator { client: &nas.name });
        }
        // Wrong, or any failure added later: fail closed.
        Err(_) => {
            return Err(NotAdmitted::BadMessageAuthenticator { client: &nas.name });
        }
    }
    Ok(admitted)
}

/// One request being processed. Dropped on every path, a panic included: the in-flight count
/// goes down, and a request that got no answer is forgotten by the duplicate cache so the
/// gateway's retransmission is evaluated instead of ignored.
struct InFlight {
    shared: Arc<Shared>,
    key: Option<dedup::Key>,
}

impl InFlight {
    fn finish(&mut self, reply: Option<Arc<[u8]>>) {
        if let Some(key) = self.key.take() {
            relock(&self.shared.dedup).finish(key, reply);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.finish(None);
        self.shared.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    /// A UDP datagram on a socket of kind `port`: the client by its source address, then
    /// [`Self::admit`].
    pub fn on_datagram(
        self: &Arc<Self>,
        sock: &Arc<UdpSocket>,
        port: Port,
        from: SocketAddr,
        buf: &[u8],
    ) {
        Stats::bump(&self.stats.received);
        let rt = self.runtime();
        let pkt = match Packet::parse(buf) {
            Ok(p) => p,
            Err(e) => return self.dropped(DropReason::Malformed, from, &e),
        };
        let Some(nas) = udp_client(&rt.clients, from.ip()).cloned() else {
            return self.dropped(
                DropReason::UnknownClient,
                from,
                &"not a configured RADIUS client",
            );
        };
        self.admit(rt, &nas, pkt, from, port, 0, ReplyTo::Udp(sock.clone()));
    }

    /// One packet framed off a RadSec connection whose client `nas` was identified by its
    /// certificate and address when the connection was accepted; `conn` numbers the
    /// connection, so duplicate detection is per connection (RFC 6613, which RFC 6614 builds on).
    pub(crate) fn on_tls_packet(
        self: &Arc<Self>,
        nas: &Arc<Nas>,
        conn: u64,
        from: SocketAddr,
        buf: &[u8],
        reply: ReplyTo,
    ) {
        Stats::bump(&self.stats.received);
        let rt = self.runtime();
        let pkt = match Packet::parse(buf) {
            Ok(p) => p,
            Err(e) => return self.dropped(DropReason::Malformed, from, &e),
        };
        self.admit(rt, nas, pkt, from, Port::RadSec, conn, reply);
    }

    /// The synchronous checks on every request, whatever its transport, cheap enough for the
    /// receive loop: code, authenticators, duplicate. Spawns the rest ([`Shared::process`]
    /// for access, [`Shared::account`] for accounting); the reply goes to `reply_to`.
    #[allow(clippy::too_many_arguments)]
    fn admit(
        self: &Arc<Self>,
        rt: Arc<Runtime>,
        nas: &Arc<Nas>,
        pkt: Packet<'_>,
        from: SocketAddr,
        port: Port,
        conn: u64,
        reply_to: ReplyTo,
    ) {
        let admitted = Instant::now();
        self.metrics
            .requests
            .get_or_create(&ClientLabels {
                client: nas.name.clone(),
            })
            .inc();
        let kind = match screen(&pkt, nas, port) {
            Ok(Admitted::StatusServer) => {
                // No side effects, so no duplicate cache: answering again is harmless, and a
                // health-check flood must not push real replies out of the cache.
                Stats::bump(&self.stats.status_server);
                if let Ok(r) = status_server_reply(&pkt, &nas.secret, port) {
                    reply_to.try_send(Arc::from(r), from);
                }
                return;
            }
            Ok(kind) => kind,
            Err(why) => return self.dropped_from(why.reason(), why.client(), from, &why),
        };
        if self.inflight.load(Ordering::Acquire) >= MAX_INFLIGHT {
            return self.dropped(
                DropReason::Overloaded,
                from,
                &"too many requests in progress",
            );
        }
        let key = dedup::Key::new(from, pkt.identifier, pkt.authenticator).on_connection(conn);
        let seen = relock(&self.dedup).begin(key, Instant::now());
        match seen {
            Seen::New => {}
            Seen::InProgress => {
                return self.dropped(DropReason::Duplicate, from, &"still processing");
            }
            Seen::Answered(reply) => {
                self.stats.count_drop(DropReason::Duplicate);
                Stats::bump(&self.stats.resent);
                reply_to.try_send(reply, from);
                return;
            }
        }
        let datagram = pkt.raw().to_vec();
        let nas = nas.clone();
        let this = self.clone();
        self.inflight.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            let mut guard = InFlight {
                shared: this.clone(),
                key: Some(key),
            };
            let reply = if kind == Admitted::AccountingRequest {
                this.account(rt, &nas, &datagram, from).await
            } else {
                this.process(rt, &nas, &datagram, from).await
            };
            let reply: Option<Arc<[u8]>> = reply.map(Arc::from);
            if reply.is_some() {
                this.metrics
                    .latency_seconds
                    .observe(admitted.elapsed().as_secs_f64());
            }
            guard.finish(reply.clone());
            if let Some(r) = reply {
                reply_to.send(r, from).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mfa_config::{ClientIpAttribute, ClientSettings, FirstFactor, RadiusMode};
    use mfa_radius_proto::Builder;
    use zeroize::Zeroizing;

    fn nas(name: &str, net: &str, require_message_authenticator: bool) -> Nas {
        Nas {
            name: name.into(),
            net: net.parse().unwrap(),
            secret: Zeroizing::new(b"the shared secret".to_vec()),
            cert: None,
            settings: ClientSettings {
                kind: mfa_config::ClientKind::Gateway,
                mode: RadiusMode::Challenge,
                first_factor: FirstFactor::Pam,
                client_ip_attribute: ClientIpAttribute::CallingStationId,
                require_message_authenticator,
            },
            several_hosts: false,
        }
    }

    fn packet(code: Code, with_ma: bool, secret: &[u8], extra: &[(AttrType, &[u8])]) -> Vec<u8> {
        let mut b = Builder::request(code, 1, with_ma);
        b.add(AttrType::USER_NAME, b"alice").unwrap();
        for (t, v) in extra {
            b.add(*t, v).unwrap();
        }
        b.encode_request(secret, &[3; 16]).unwrap()
    }

    fn screened(nas: &Nas, raw: &[u8]) -> Result<Admitted, (DropReason, String)> {
        screened_on(nas, raw, Port::Access)
    }

    fn screened_on(nas: &Nas, raw: &[u8], port: Port) -> Result<Admitted, (DropReason, String)> {
        let pkt = Packet::parse(raw).unwrap();
        screen(&pkt, nas, port).map_err(|e| (e.reason(), e.to_string()))
    }

    fn accounting(with_ma: bool, secret: &[u8]) -> Vec<u8> {
        let mut b = Builder::request(Code::ACCOUNTING_REQUEST, 1, with_ma);
        b.add(AttrType::USER_NAME, b"alice").unwrap();
        b.add(AttrType::ACCT_STATUS_TYPE, &1u32.to_be_bytes())
            .unwrap();
        b.encode_accounting_request(secret).unwrap()
    }

    /// Issue 21: accounting is admitted on an accounting port and over RadSec, by its own
    /// authenticator and the client's Message-Authenticator rule; on an authentication port
    /// it is dropped with a log line that says where to send it.
    #[test]
    fn accounting_is_admitted_on_its_port_by_the_rules_of_access() {
        let strict = nas("vpn", "192.0.2.0/24", true);
        let legacy = nas("openvpn", "192.0.2.0/24", false);
        let secret = b"the shared secret";
        let signed = accounting(true, secret);
        let bare = accounting(false, secret);
        for port in [Port::Accounting, Port::RadSec] {
            assert_eq!(
                screened_on(&strict, &signed, port),
                Ok(Admitted::AccountingRequest)
            );
            assert_eq!(
                screened_on(&legacy, &bare, port),
                Ok(Admitted::AccountingRequest)
            );
        }
        let (why, text) = screened_on(&strict, &bare, Port::Accounting).unwrap_err();
        assert_eq!(why, DropReason::MissingMessageAuthenticator);
        assert!(
            text.contains("require_message_authenticator = false in the [[radius.clients]] entry with name = \"vpn\""),
            "{text}"
        );
        let (why, text) =
            screened_on(&legacy, &accounting(true, b"another"), Port::Accounting).unwrap_err();
        assert_eq!(why, DropReason::BadAuthenticator);
        assert_eq!(
            text,
            "Accounting-Request with a wrong Request Authenticator (client \"openvpn\": is the shared secret the same on both sides?)"
        );
        // A legacy client's request without Message-Authenticator still proves the secret.
        let mut forged = bare.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(
            screened_on(&legacy, &forged, Port::Accounting)
                .unwrap_err()
                .0,
            DropReason::BadAuthenticator
        );

        let (why, text) = screened_on(&strict, &signed, Port::Access).unwrap_err();
        assert_eq!(why, DropReason::UnsupportedCode);
        assert!(text.starts_with("Accounting-Request (4) on an authentication port: accounting is answered on [radius] accounting_listen"), "{text}");
        let access = packet(Code::ACCESS_REQUEST, true, secret, &[]);
        let (why, text) = screened_on(&strict, &access, Port::Accounting).unwrap_err();
        assert_eq!(why, DropReason::UnsupportedCode);
        assert!(
            text.starts_with("Access-Request (1) on an accounting port"),
            "{text}"
        );
        assert_eq!(
            screened_on(&strict, &access, Port::RadSec),
            Ok(Admitted::AccessRequest)
        );
        let status = packet(Code::STATUS_SERVER, true, secret, &[]);
        assert_eq!(
            screened_on(&strict, &status, Port::Accounting),
            Ok(Admitted::StatusServer)
        );
    }

    #[test]
    fn the_code_and_message_authenticator_decide_admission() {
        let strict = nas("vpn", "192.0.2.0/24", true);
        let legacy = nas("old-gw", "192.0.2.0/24", false);
        let secret = b"the shared secret";
        let ok = packet(Code::ACCESS_REQUEST, true, secret, &[]);
        assert_eq!(screened(&strict, &ok), Ok(Admitted::AccessRequest));
        let status = packet(Code::STATUS_SERVER, true, secret, &[]);
        assert_eq!(screened(&strict, &status), Ok(Admitted::StatusServer));

        // Accounting is not served on an authentication port: dropped whatever it carries,
        // with where to send it (issue 21; it used to say only "Accounting-Request (4)").
        let acct = packet(Code::ACCOUNTING_REQUEST, true, secret, &[]);
        let (why, text) = screened(&strict, &acct).unwrap_err();
        assert_eq!(why, DropReason::UnsupportedCode);
        assert!(
            text.starts_with("Accounting-Request (4) on an authentication port"),
            "{text}"
        );
        let coa = packet(Code(43), true, secret, &[]);
        assert_eq!(
            screened(&strict, &coa),
            Err((DropReason::UnsupportedCode, "unknown (43)".to_string()))
        );

        // Without Message-Authenticator: only an Access-Request without EAP from a client
        // that does not require it.
        let bare = packet(Code::ACCESS_REQUEST, false, secret, &[]);
        assert_eq!(screened(&legacy, &bare), Ok(Admitted::AccessRequest));
        let (why, text) = screened(&strict, &bare).unwrap_err();
        assert_eq!(why, DropReason::MissingMessageAuthenticator);
        // Issue 21: and the hint for a gateway that cannot send one, naming its entry.
        assert_eq!(
            text,
            "Access-Request from client \"vpn\" without Message-Authenticator (required: BlastRADIUS, CVE-2024-3596); a gateway that cannot send it (ocserv, Debian's OpenVPN RADIUS plugin) needs require_message_authenticator = false in the [[radius.clients]] entry with name = \"vpn\", and its RADIUS kept on a protected network (docs/RADIUS.md)"
        );
        // Where the setting would not help (Status-Server, EAP), no such hint.
        let bare_status = packet(Code::STATUS_SERVER, false, secret, &[]);
        assert_eq!(
            screened(&strict, &bare_status).unwrap_err().1,
            "Status-Server from client \"vpn\" without Message-Authenticator (required: BlastRADIUS, CVE-2024-3596)"
        );
        let bare_status = packet(Code::STATUS_SERVER, false, secret, &[]);
        assert_eq!(
            screened(&legacy, &bare_status).unwrap_err().0,
            DropReason::MissingMessageAuthenticator
        );
        let bare_eap = packet(
            Code::ACCESS_REQUEST,
            false,
            secret,
            &[(AttrType::EAP_MESSAGE, b"x")],
        );
        assert_eq!(
            screened(&legacy, &bare_eap).unwrap_err().0,
            DropReason::MissingMessageAuthenticator
        );

        // Another secret: dropped, whatever the client requires.
        let forged = packet(Code::ACCESS_REQUEST, true, b"another secret", &[]);
        for n in [&strict, &legacy] {
            let (why, text) = screened(n, &forged).unwrap_err();
            assert_eq!(why, DropReason::BadAuthenticator);
            assert!(
                text.starts_with("wrong Message-Authenticator (client "),
                "{text}"
            );
        }
    }

    #[test]
    fn the_most_specific_udp_client_wins_and_radsec_ones_never_do() {
        let mut radsec = nas("radsec", "192.0.2.7/32", true);
        radsec.cert = crate::radsec::CertId::of(&mfa_config::RadiusClient {
            kind: None,
            name: "radsec".into(),
            address: "192.0.2.7/32".parse().unwrap(),
            secret: None,
            secret_file: None,
            secrets_dir: None,
            certificate_name: Some("gw.example.net".into()),
            certificate_sha256: None,
            mode: None,
            first_factor: None,
            client_ip_attribute: None,
            require_message_authenticator: None,
            push: None,
            number_matching: None,
            preset: None,
            gateway_timeout: None,
        });
        assert!(radsec.cert.is_some());
        let clients: Vec<Arc<Nas>> = [
            nas("net", "192.0.2.0/24", true),
            nas("host", "192.0.2.5/32", true),
            radsec,
            nas("v6", "2001:db8::/64", true),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let name = |ip: &str| udp_client(&clients, ip.parse().unwrap()).map(|n| n.name.clone());
        assert_eq!(name("192.0.2.5").as_deref(), Some("host"));
        assert_eq!(name("192.0.2.6").as_deref(), Some("net"));
        // The RadSec client's own address over UDP is the wider entry's, not the RadSec one.
        assert_eq!(name("192.0.2.7").as_deref(), Some("net"));
        // IPv4-mapped IPv6 (a dual-stack socket) is the IPv4 address.
        assert_eq!(name("::ffff:192.0.2.5").as_deref(), Some("host"));
        assert_eq!(name("2001:db8::9").as_deref(), Some("v6"));
        assert_eq!(name("198.51.100.1"), None);
    }
}
