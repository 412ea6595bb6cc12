//! A PAM host's report of a login it let in while no server answered (issue 24;
//! [`mfa_radius_proto::pam_host::report`]): an Access-Request carrying Offline-Report, past
//! admission like every request (the client by address, Message-Authenticator under its
//! secret). It is recorded in the audit trail through the core
//! ([`mfa_core::Login::record_offline`], on the one writer), then acknowledged with an
//! Access-Accept naming the event; a report of an event recorded already is acknowledged
//! again and writes nothing.
//!
//! What is not recorded changes nothing and is logged: a report from a client that is not
//! `kind = "pam-hosts"`, one without Message-Authenticator (a client with
//! `require_message_authenticator = false` passes admission without one, and nothing else
//! in an Access-Request proves the secret), one that cannot be read, a name the `[users]`
//! rules refuse, a time far ahead of this server's clock: answered with a bare Access-Reject
//! where the host proved its secret (it keeps the event and says so in its syslog), not at
//! all otherwise. A store failure is not answered, so the host sends the report again later.

use std::net::SocketAddr;
use std::sync::Arc;

use mfa_config::ClientKind;
use mfa_core::login::now;
use mfa_core::offline_report::{OfflineKind, OfflineReport, Recorded};
use mfa_radius_proto::pam_host::report::{add_report_ack, read_report};
use mfa_radius_proto::{AttrType, Builder, Code, Packet};

use crate::answer::bare_reject;
use crate::attrs::{asking, client_addr};
use crate::mode::{ModeBackend, RequestError};
use crate::runtime::{Nas, Runtime};
use crate::server::{Live, Shared, log_name};
use crate::stats::DropReason;

impl Shared {
    /// Everything after admission for an Access-Request that carries Offline-Report.
    /// `None`: no answer.
    pub(crate) async fn offline_report(
        self: &Arc<Self>,
        rt: Arc<Runtime>,
        nas: &Nas,
        pkt: &Packet<'_>,
        from: SocketAddr,
    ) -> Option<Vec<u8>> {
        let user_raw = pkt.attr(AttrType::USER_NAME).unwrap_or_default();
        let refuse = |why: &str| {
            self.warn(&format!(
                "offline report for user {} from client {:?} ({from}) refused, nothing recorded: {why}",
                log_name(user_raw),
                nas.name
            ));
            bare_reject(pkt, &nas.secret)
        };
        if pkt.attr(AttrType::MESSAGE_AUTHENTICATOR).is_none() {
            self.dropped(
                DropReason::Malformed,
                from,
                &format!(
                    "an offline report from client {:?} without Message-Authenticator: unauthenticated, nothing recorded",
                    nas.name
                ),
            );
            return None;
        }
        if nas.settings.kind != ClientKind::PamHosts {
            return refuse("the client is not kind = \"pam-hosts\"");
        }
        let event = match read_report(pkt) {
            Ok(Some(e)) => e,
            Ok(None) => return refuse("no Offline-Report"),
            Err(e) => return refuse(&e.to_string()),
        };
        let Some(kind) = OfflineKind::parse(&event.reason) else {
            return refuse(&format!(
                "{:?} is no reason a host lets a login in offline for",
                event.reason
            ));
        };
        let live = Live {
            shared: self,
            rt: &rt,
        };
        let user = match std::str::from_utf8(user_raw) {
            Ok(raw) if !raw.is_empty() => match live.user_name(raw).await {
                Ok(Some(u)) => u,
                Ok(None) => return refuse("not a user name the [users] rules accept"),
                Err(RequestError::Overloaded) => {
                    self.dropped(DropReason::Overloaded, from, &"store reader queue full");
                    return None;
                }
                Err(RequestError::Internal(e)) => {
                    self.warn(&format!(
                        "offline report for user {} from client {:?} not recorded, not answered (the host sends it again): {e}",
                        log_name(user_raw),
                        nas.name
                    ));
                    return None;
                }
            },
            _ => return refuse("no User-Name"),
        };
        let (service, _) = asking(&nas.asker(from.ip()), &nas.settings, pkt);
        let report = OfflineReport {
            user,
            service,
            client: client_addr(nas.settings.client_ip_attribute, pkt),
            happened: i64::from(event.time),
            kind,
            event_id: event.id,
            now: now(),
        };
        let line = format!(
            "user={} client={:?} service={:?} offline={} happened={}",
            log_name(user_raw),
            nas.name,
            report.service.to_string(),
            kind.reason(),
            report.happened
        );
        let recorded = match rt.writer.call(move |l| l.record_offline(&report)).await {
            Ok(Ok(r)) => r,
            Ok(Err(refusal)) => return refuse(&refusal.to_string()),
            Err(e) => {
                let what = "offline report";
                self.not_recorded(&e, from, what, user_raw, &nas.name, "the host");
                return None;
            }
        };
        self.log(
            &rt,
            &format!(
                "{line} recorded={}",
                match recorded {
                    Recorded::New => "yes",
                    Recorded::Duplicate => "already",
                }
            ),
        );
        let mut b = Builder::reply(Code::ACCESS_ACCEPT, pkt);
        if let Err(e) = add_report_ack(&mut b, &event.id) {
            self.warn(&format!("cannot encode the offline report's answer: {e}"));
            return None;
        }
        match b.encode_reply(&nas.secret, &pkt.authenticator) {
            Ok(r) => Some(r),
            Err(e) => {
                self.warn(&format!("cannot encode the offline report's answer: {e}"));
                None
            }
        }
    }
}
