//! Sessions a gateway reports (RADIUS accounting, RFC 2866): who was connected, from where,
//! when and for how long, as audit events beside the logins, because administrators ask
//! "who was on the VPN at 14:00?" and the logins alone do not say when a tunnel ended.
//!
//! A report decides nothing and changes no record: it is recorded as the gateway said it,
//! under the user's canonical name (the front end asks [`crate::user_name`] first), with
//! what the gateway sent rendered as plain text. It never creates a record, so a gateway
//! reporting names the store does not hold fills nothing but the audit trail.

use std::fmt::Write as _;
use std::net::IpAddr;

use mfa_model::{Action, AuditDecision, AuditEvent, ReasonCode, UserName};

use crate::error::CoreError;
use crate::login::{Login, Service};
use crate::net::ClientAddr;

/// What the gateway reports about a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// The session began (Acct-Status-Type Start).
    Start,
    /// The session ended (Stop).
    Stop,
    /// The session is still up (Interim-Update).
    Interim,
}

impl SessionEvent {
    /// The audit trail's reason code.
    pub fn reason(self) -> ReasonCode {
        match self {
            SessionEvent::Start => ReasonCode::SessionStart,
            SessionEvent::Stop => ReasonCode::SessionStop,
            SessionEvent::Interim => ReasonCode::SessionInterim,
        }
    }
}

/// Longest gateway-chosen text (a session id) kept as it is; a longer or unprintable one is
/// shown as hex, at most this many octets of it.
const MAX_TEXT: usize = 64;

/// One report about one user's session. The front end fills it from the gateway's packet;
/// the audit event is the core's ([`SessionReport::event`]).
#[derive(Debug, Clone)]
pub struct SessionReport {
    pub user: UserName,
    /// The user's own address as the gateway saw it (`client_ip_attribute`).
    pub client: ClientAddr,
    /// The gateway, by its configured name.
    pub service: Service,
    pub event: SessionEvent,
    /// Unix seconds: when the report arrived.
    pub now: i64,
    /// The gateway's session identifier (Acct-Session-Id), octets as sent.
    pub session_id: Option<Vec<u8>>,
    /// The address the gateway gave the user inside the tunnel.
    pub tunnel_ip: Option<IpAddr>,
    /// Seconds the session lasted so far (Stop, Interim).
    pub duration_secs: Option<u32>,
    pub input_octets: Option<u64>,
    pub output_octets: Option<u64>,
    /// Why it ended (Stop), by its dictionary name or number.
    pub cause: Option<String>,
}

/// Gateway-chosen octets as one word for a `key=value` detail: printable ASCII without
/// spaces, quotes or backslashes as it is (base64 session ids, as ocserv's, stay readable),
/// anything else as `0x` and hex, bounded either way.
fn word(octets: &[u8]) -> String {
    let plain = octets.len() <= MAX_TEXT
        && !octets.is_empty()
        && octets
            .iter()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\'));
    if plain {
        return String::from_utf8_lossy(octets).into_owned();
    }
    let mut s = String::from("0x");
    for b in octets.iter().take(MAX_TEXT / 2) {
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl SessionReport {
    /// The audit event: decision `session`, reason `session_start` / `session_stop` /
    /// `session_interim`, and the gateway's figures in the detail
    /// (`session=... tunnel_ip=... duration=...s in=... out=... cause=...`).
    pub fn event(&self) -> AuditEvent {
        AuditEvent {
            time: self.now,
            user: self.user.to_string(),
            service: self.service.to_string(),
            client_ip: self.client.ip().map(|i| i.to_string()),
            decision: AuditDecision::Admin(Action::Session).into(),
            reason: self.event.reason().into(),
            detail: self.detail(),
        }
    }

    fn detail(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(id) = &self.session_id {
            parts.push(format!("session={}", word(id)));
        }
        if let Some(ip) = self.tunnel_ip {
            parts.push(format!("tunnel_ip={ip}"));
        }
        if let Some(d) = self.duration_secs {
            parts.push(format!("duration={d}s"));
        }
        if let Some(n) = self.input_octets {
            parts.push(format!("in={n}"));
        }
        if let Some(n) = self.output_octets {
            parts.push(format!("out={n}"));
        }
        if let Some(c) = &self.cause {
            parts.push(format!("cause={}", word(c.as_bytes())));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

impl Login<'_> {
    /// Records a session report in the audit trail (and syslog, with `[audit] syslog`).
    /// An error means it is not recorded: RFC 2866 says a server that cannot record a
    /// report must not acknowledge it, so the gateway sends it again.
    pub fn record_session(&self, report: &SessionReport) -> Result<(), CoreError> {
        self.append(report.event())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mfa_model::StoredReason;
    use mfa_store::AuditQuery;

    fn report(event: SessionEvent) -> SessionReport {
        SessionReport {
            user: UserName::parse("ivy").unwrap(),
            client: ClientAddr::Remote(Some([198, 51, 100, 7].into())),
            service: Service::Radius {
                client: "openvpn".into(),
                code_only: false,
            },
            event,
            now: 1_800_000_000,
            session_id: Some(b"5F3A01".to_vec()),
            tunnel_ip: Some([10, 8, 0, 6].into()),
            duration_secs: None,
            input_octets: None,
            output_octets: None,
            cause: None,
        }
    }

    #[test]
    fn start_and_stop_are_in_the_audit_trail_and_change_no_record() {
        let (_dir, core) = crate::test_core(|_| {});
        let ivy = UserName::parse("ivy").unwrap();
        core.login()
            .record_session(&report(SessionEvent::Start))
            .unwrap();
        let mut stop = report(SessionEvent::Stop);
        stop.now += 3725;
        stop.duration_secs = Some(3725);
        stop.input_octets = Some((1 << 32) + 4096);
        stop.output_octets = Some(2048);
        stop.cause = Some("User-Request".into());
        core.login().record_session(&stop).unwrap();

        let log = core
            .store()
            .audit(&AuditQuery {
                user: Some("ivy".into()),
                since: None,
                limit: None,
            })
            .unwrap();
        let reasons: Vec<&StoredReason> = log.iter().map(|e| &e.reason).collect();
        assert_eq!(reasons, ["session_start", "session_stop"]);
        assert!(log.iter().all(|e| e.decision.as_str() == "session"));
        assert!(log.iter().all(|e| e.service == "openvpn"));
        assert_eq!(log[0].client_ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(
            log[0].detail.as_deref(),
            Some("session=5F3A01 tunnel_ip=10.8.0.6")
        );
        assert_eq!(
            log[1].detail.as_deref(),
            Some(
                "session=5F3A01 tunnel_ip=10.8.0.6 duration=3725s in=4294971392 out=2048 cause=User-Request"
            )
        );
        // No record, and no login among the user's last logins.
        assert!(core.store().user(&ivy).unwrap().is_none());
        assert!(
            core.store()
                .recent_logins(&ivy, 10, 1_800_010_000)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn what_the_gateway_chose_is_one_bounded_word() {
        assert_eq!(word(b"abc-123_X"), "abc-123_X");
        assert_eq!(word(b"a b"), "0x612062");
        assert_eq!(
            word(b"VHmZJ1ZVs+ENj49idL8lqNNNqps="),
            "VHmZJ1ZVs+ENj49idL8lqNNNqps="
        );
        assert_eq!(word(b"x=\"1\""), "0x783d223122");
        assert_eq!(word(b"a\\b"), "0x615c62");
        assert_eq!(word(b"\n\x1b[2J"), "0x0a1b5b324a");
        assert_eq!(word(b""), "0x");
        let long = word(&[b'a'; 200]);
        assert_eq!(long.len(), 2 + MAX_TEXT);
        assert!(long.starts_with("0x6161"));
    }
}
