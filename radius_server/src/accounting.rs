//! Accounting (RFC 2866): an Accounting-Request that passed admission (on an
//! `accounting_listen` address or a RadSec connection, from a configured client, its
//! Request Authenticator right) is recorded, then answered with an Accounting-Response.
//!
//! Why the daemon answers it at all: gateways that send accounting wait for the answer, and
//! some fail the user's connection without one (the OpenVPN RADIUS plugin does, after the
//! code was used). What it records: session start, stop and interim reports, in the audit
//! trail through the core (`Login::record_session`), so administrators see who was
//! connected when. Accounting-On and -Off (a gateway starting or stopping) name no user and
//! are logged only. Nothing here decides anything about a login.
//!
//! RFC 2866 §6: a server that cannot record a report must not answer it, so the gateway
//! sends it again; a store failure or a full writer queue leaves the request unanswered.

use std::net::SocketAddr;
use std::sync::Arc;

use mfa_config::RadiusMode;
use mfa_core::login::{Service, now};
use mfa_core::session::{SessionEvent, SessionReport};
use mfa_radius_proto::Packet;
use mfa_radius_proto::accounting::{AcctStatus, read_report, terminate_cause_name};

use crate::answer::accounting_response;
use crate::attrs::client_addr;
use crate::metrics::AccountingLabels;
use crate::mode::{ModeBackend, RequestError};
use crate::runtime::{Nas, Runtime};
use crate::server::{Live, Shared, log_name};
use crate::stats::{DropReason, Stats};

/// The `status` label of the accounting metric and the word in the log line.
fn status_word(s: AcctStatus) -> &'static str {
    match s {
        AcctStatus::Start => "start",
        AcctStatus::Stop => "stop",
        AcctStatus::InterimUpdate => "interim",
        AcctStatus::AccountingOn => "accounting_on",
        AcctStatus::AccountingOff => "accounting_off",
        AcctStatus::Other(_) => "other",
    }
}

/// The session event a status reports, for those that are about one user's session.
fn session_event(s: AcctStatus) -> Option<SessionEvent> {
    match s {
        AcctStatus::Start => Some(SessionEvent::Start),
        AcctStatus::Stop => Some(SessionEvent::Stop),
        AcctStatus::InterimUpdate => Some(SessionEvent::Interim),
        _ => None,
    }
}

impl Shared {
    /// Everything after admission for an Accounting-Request from client `nas`. `None`: no
    /// answer (malformed, overloaded, or not recorded; the gateway sends it again).
    pub(crate) async fn account(
        self: &Arc<Self>,
        rt: Arc<Runtime>,
        nas: &Nas,
        datagram: &[u8],
        from: SocketAddr,
    ) -> Option<Vec<u8>> {
        let pkt = Packet::parse(datagram).ok()?;
        let report = match read_report(&pkt) {
            Ok(r) => r,
            Err(e) => {
                self.dropped(
                    DropReason::Malformed,
                    from,
                    &format!("{e} (client {:?})", nas.name),
                );
                return None;
            }
        };
        let addr = client_addr(nas.settings.client_ip_attribute, &pkt);
        let user_raw = report.user_name.unwrap_or_default();
        let word = status_word(report.status);
        let mut note = "";
        if let Some(event) = session_event(report.status) {
            let live = Live {
                shared: self,
                rt: &rt,
            };
            let user = match std::str::from_utf8(user_raw) {
                Ok(raw) if !raw.is_empty() => match live.user_name(raw).await {
                    Ok(u) => u,
                    Err(RequestError::Overloaded) => {
                        self.dropped(DropReason::Overloaded, from, &"store reader queue full");
                        return None;
                    }
                    Err(RequestError::Internal(e)) => {
                        self.warn(&format!(
                            "accounting {word} for user {} from client {:?} not recorded, not answered: {e}",
                            log_name(user_raw),
                            nas.name
                        ));
                        return None;
                    }
                },
                _ => None,
            };
            match user {
                Some(user) => {
                    let session = SessionReport {
                        user,
                        client: addr,
                        service: Service::Radius {
                            client: nas.name.clone(),
                            code_only: nas.settings.mode == RadiusMode::CodeOnly,
                        },
                        event,
                        now: now(),
                        session_id: report.session_id.map(<[u8]>::to_vec),
                        tunnel_ip: report.framed_ip.map(Into::into),
                        duration_secs: report.session_time,
                        input_octets: report.input_octets,
                        output_octets: report.output_octets,
                        cause: report.terminate_cause.map(|c| {
                            terminate_cause_name(c).map_or_else(|| c.to_string(), str::to_string)
                        }),
                    };
                    if let Err(e) = rt.writer.call(move |l| l.record_session(&session)).await {
                        let what = format!("accounting {word}");
                        self.not_recorded(&e, from, &what, user_raw, &nas.name, "the gateway");
                        return None;
                    }
                }
                // A name the [users] rules refuse (or none) never logged in here: answered,
                // so the gateway does not resend it for ever, and said in the log line.
                None => note = " recorded=no (not a user name the [users] rules accept)",
            }
        }
        let reply = match accounting_response(&pkt, &nas.secret) {
            Ok(r) => r,
            Err(e) => {
                self.warn(&format!("cannot encode the Accounting-Response: {e}"));
                return None;
            }
        };
        Stats::bump(&self.stats.accounting);
        self.metrics
            .accounting
            .get_or_create(&AccountingLabels {
                status: word.to_string(),
            })
            .inc();
        let session = report
            .session_id
            .map(|s| format!(" session={}", log_name(s)))
            .unwrap_or_default();
        let user = if report.user_name.is_some() {
            format!("user={} ", log_name(user_raw))
        } else {
            String::new()
        };
        self.log(
            &rt,
            &format!(
                "{user}client={:?} client_ip={addr} accounting={word}{session}{note}",
                nas.name
            ),
        );
        Some(reply)
    }
}
