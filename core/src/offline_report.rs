//! What a PAM host in remote mode let in while no server answered (issue 24), as the host
//! reports it once a server answers again: a login its own policy let in without a code
//! (`[remote] offline = "trusted"`) or one of its break-glass codes. The server records one
//! audit event per event, so `mfactl log`, the report and the console show what happened
//! on the host while the servers were away.
//!
//! A report decides nothing and changes no record. The host keeps an event until a server
//! acknowledged it, and sends it again otherwise (at least once), so the event carries an
//! id the host drew when it let the login in: a report whose id is in the audit trail
//! already is acknowledged again and writes nothing ([`Recorded::Duplicate`]).

use std::fmt::Write as _;

use mfa_model::{AuditDecision, AuditEvent, Outcome, ReasonCode, UserName};
use mfa_store::AuditQuery;

use crate::error::CoreError;
use crate::login::{Login, Service};
use crate::net::ClientAddr;

/// How far ahead of this server's clock a host's time may be (clocks drift). A report
/// further ahead is refused; the host keeps it and sends it again later.
pub const MAX_AHEAD_SECS: i64 = 300;

/// The reason a host's queue gives a break-glass code.
pub const BREAK_GLASS: &str = "break_glass";

/// Why the host let the login in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineKind {
    /// Its own policy, for a reason that needs no record ([`crate::login::decide_offline`]).
    Policy(ReasonCode),
    /// One of its break-glass codes.
    BreakGlass,
}

impl OfflineKind {
    /// The reason as a host's report says it: a policy reason's code, or [`BREAK_GLASS`].
    /// `None` for anything else: a host never lets a login in offline for another reason.
    pub fn parse(s: &str) -> Option<Self> {
        if s == BREAK_GLASS {
            return Some(OfflineKind::BreakGlass);
        }
        let r = ReasonCode::parse(s)?;
        matches!(
            r,
            ReasonCode::TrustedNetwork
                | ReasonCode::LocalLogin
                | ReasonCode::ExemptUser
                | ReasonCode::ExemptGroup
                | ReasonCode::RuleNoCode
        )
        .then_some(OfflineKind::Policy(r))
    }

    /// The text the host and the audit detail use.
    pub fn as_str(self) -> &'static str {
        match self {
            OfflineKind::Policy(r) => r.as_str(),
            OfflineKind::BreakGlass => BREAK_GLASS,
        }
    }

    /// The audit trail's reason code.
    pub fn reason(self) -> ReasonCode {
        match self {
            OfflineKind::Policy(_) => ReasonCode::OfflineAllowed,
            OfflineKind::BreakGlass => ReasonCode::BreakglassUsed,
        }
    }
}

/// One event a host reports. The front end fills it from the host's request.
#[derive(Debug, Clone)]
pub struct OfflineReport {
    pub user: UserName,
    /// The host and its PAM service, as every login of the host is named.
    pub service: Service,
    /// The login's client address, as the host saw it.
    pub client: ClientAddr,
    /// Unix seconds on the host's clock: when it let the login in.
    pub happened: i64,
    pub kind: OfflineKind,
    /// Drawn by the host when it let the login in; the same in every report of the event.
    pub event_id: [u8; 16],
    /// Unix seconds on this server: when the report arrived.
    pub now: i64,
}

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Written to the audit trail.
    New,
    /// Its event is in the audit trail already (a report sent again): nothing written.
    Duplicate,
}

fn hex(id: &[u8; 16]) -> String {
    let mut s = String::with_capacity(32);
    for b in id {
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl OfflineReport {
    /// The `event=` word of the detail, by which a report sent again is known.
    fn event_word(&self) -> String {
        format!("event={}", hex(&self.event_id))
    }

    /// The audit event: decision `allow`, reason `offline_allowed` or `breakglass_used`, at
    /// the host's time, the host's reason and the time of the report in the detail.
    pub fn event(&self) -> AuditEvent {
        AuditEvent {
            time: self.happened,
            user: self.user.to_string(),
            service: self.service.to_string(),
            client_ip: self.client.ip().map(|i| i.to_string()),
            decision: AuditDecision::Login(Outcome::Allow).into(),
            reason: self.kind.reason().into(),
            detail: Some(format!(
                "offline: no server answered the host; allowed_by={} reported={} {}",
                self.kind.as_str(),
                self.now,
                self.event_word()
            )),
        }
    }
}

/// Why a report was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfflineRefusal {
    /// The host's time is further than [`MAX_AHEAD_SECS`] ahead of this server's.
    FromTheFuture { happened: i64, now: i64 },
}

impl std::fmt::Display for OfflineRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OfflineRefusal::FromTheFuture { happened, now } => write!(
                f,
                "the event's time {happened} is {}s ahead of this server's clock (more than {MAX_AHEAD_SECS}s): is the host's clock right?",
                happened - now
            ),
        }
    }
}

impl Login<'_> {
    /// Records a host's report of an offline allow or a break-glass use, once per event
    /// id. `Ok(Err(..))`: refused, nothing written. An error means it is not recorded, and
    /// must not be acknowledged, so the host sends it again.
    ///
    /// The id is looked for among the user's events since the event's time; a daemon runs
    /// this on its one writer, so two reports of one event on one server never race. Two
    /// servers given the same report at the same instant (a host that gave up on the first
    /// while it was writing) could each write it: both rows then carry the same `event=`.
    pub fn record_offline(
        &self,
        report: &OfflineReport,
    ) -> Result<Result<Recorded, OfflineRefusal>, CoreError> {
        if report.happened > report.now.saturating_add(MAX_AHEAD_SECS) {
            return Ok(Err(OfflineRefusal::FromTheFuture {
                happened: report.happened,
                now: report.now,
            }));
        }
        let word = report.event_word();
        let before = self.core.store.audit(&AuditQuery {
            user: Some(report.user.to_string()),
            since: Some(report.happened),
            limit: None,
        })?;
        let seen = before.iter().any(|e| {
            (e.reason == ReasonCode::OfflineAllowed || e.reason == ReasonCode::BreakglassUsed)
                && e.detail
                    .as_deref()
                    .is_some_and(|d| d.split(' ').any(|w| w == word))
        });
        if seen {
            return Ok(Ok(Recorded::Duplicate));
        }
        self.append(report.event())?;
        Ok(Ok(Recorded::New))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_reasons_a_host_may_let_in_for_are_read() {
        assert_eq!(
            OfflineKind::parse("break_glass"),
            Some(OfflineKind::BreakGlass)
        );
        assert_eq!(
            OfflineKind::parse("trusted_network"),
            Some(OfflineKind::Policy(ReasonCode::TrustedNetwork))
        );
        for bad in [
            "valid_code",
            "before_go_live",
            "",
            "nonsense",
            "Trusted_Network",
        ] {
            assert_eq!(OfflineKind::parse(bad), None, "{bad}");
        }
        assert_eq!(
            OfflineKind::parse("exempt_user").unwrap().reason(),
            ReasonCode::OfflineAllowed
        );
        assert_eq!(OfflineKind::BreakGlass.reason(), ReasonCode::BreakglassUsed);
    }

    fn report(kind: OfflineKind, id: u8, happened: i64) -> OfflineReport {
        OfflineReport {
            user: UserName::parse("ivy").unwrap(),
            service: Service::RemotePam {
                client: "hosts".into(),
                address: None,
                host: "web1".into(),
                service: Some("sshd".into()),
            },
            client: ClientAddr::Remote(Some([10, 1, 2, 3].into())),
            happened,
            kind,
            event_id: [id; 16],
            now: 1_800_000_100,
        }
    }

    /// One row per event, at the host's time; the same event reported again writes
    /// nothing; a time far ahead of the server's clock is refused.
    #[test]
    fn each_event_is_recorded_once() {
        let (_dir, core) = crate::test_core(|_| {});
        let l = core.login();
        let trusted = report(
            OfflineKind::Policy(ReasonCode::TrustedNetwork),
            1,
            1_800_000_000,
        );
        assert_eq!(l.record_offline(&trusted).unwrap(), Ok(Recorded::New));
        let mut again = trusted.clone();
        again.now += 3600;
        assert_eq!(l.record_offline(&again).unwrap(), Ok(Recorded::Duplicate));
        let glass = report(OfflineKind::BreakGlass, 2, 1_800_000_050);
        assert_eq!(l.record_offline(&glass).unwrap(), Ok(Recorded::New));
        assert_eq!(l.record_offline(&glass).unwrap(), Ok(Recorded::Duplicate));
        let ahead = report(
            OfflineKind::BreakGlass,
            3,
            1_800_000_100 + MAX_AHEAD_SECS + 1,
        );
        assert!(matches!(
            l.record_offline(&ahead).unwrap(),
            Err(OfflineRefusal::FromTheFuture { .. })
        ));
        let log = core
            .store()
            .audit(&AuditQuery {
                user: Some("ivy".into()),
                since: None,
                limit: None,
            })
            .unwrap();
        let got: Vec<(i64, &str, &str)> = log
            .iter()
            .map(|e| (e.time, e.decision.as_str(), e.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (1_800_000_000, "allow", "offline_allowed"),
                (1_800_000_050, "allow", "breakglass_used"),
            ]
        );
        assert_eq!(log[0].service, "hosts/web1/sshd");
        assert_eq!(log[0].client_ip.as_deref(), Some("10.1.2.3"));
        let d = log[0].detail.as_deref().unwrap();
        assert!(d.contains("allowed_by=trusted_network"), "{d}");
        assert!(d.contains("reported=1800000100"), "{d}");
        assert!(d.contains(&format!("event={}", "01".repeat(16))), "{d}");
        let ivy = UserName::parse("ivy").unwrap();
        assert!(core.store().user(&ivy).unwrap().is_none());
    }
}
