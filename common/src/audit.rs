//! The audit model: one event per decision, stored and sent to syslog. Never a code or secret.

use std::sync::Mutex;

use crate::policy::{Decision, Outcome};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub time: i64,
    pub user: String,
    /// PAM service (sshd, sudo), RADIUS client name, or `mfactl`.
    pub service: String,
    pub client_ip: Option<String>,
    /// `allow`, `deny`, `challenge`, or an admin action such as `enroll`.
    pub decision: String,
    /// Stable machine-readable reason, e.g. `valid_code`, `trusted_network`.
    pub reason: String,
}

impl AuditEvent {
    pub fn for_decision(
        time: i64,
        user: &str,
        service: &str,
        client_ip: Option<String>,
        d: &Decision,
    ) -> Self {
        Self {
            time,
            user: user.into(),
            service: service.into(),
            client_ip,
            decision: match d.outcome {
                Outcome::Allow => "allow",
                Outcome::NeedCode => "challenge",
                Outcome::Deny => "deny",
            }
            .into(),
            reason: d.reason.code().into(),
        }
    }

    pub fn admin(time: i64, user: &str, action: &str, detail: &str) -> Self {
        Self {
            time,
            user: user.into(),
            service: "mfactl".into(),
            client_ip: None,
            decision: action.into(),
            reason: detail.into(),
        }
    }

    /// One line for syslog and stderr: key=value, user names quoted.
    pub fn line(&self) -> String {
        format!(
            "user={:?} service={:?} client_ip={} decision={} reason={}",
            self.user,
            self.service,
            self.client_ip.as_deref().unwrap_or("-"),
            self.decision,
            self.reason
        )
    }
}

type Logger = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

/// A syslog connection (auth facility). Where no syslog daemon listens, logging is skipped:
/// the decision is still stored and the caller is not held up.
pub struct Syslog(Mutex<Option<Logger>>);

impl std::fmt::Debug for Syslog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Syslog")
    }
}

impl Syslog {
    pub fn open(process: &str) -> Self {
        let fmt = syslog::Formatter3164 {
            facility: syslog::Facility::LOG_AUTH,
            hostname: None,
            process: process.into(),
            pid: std::process::id(),
        };
        Self(Mutex::new(syslog::unix(fmt).ok()))
    }

    /// Sends through the connection, if there is one; a lost message never holds up a login.
    fn send(&self, f: impl FnOnce(&mut Logger) -> syslog::Result<()>) {
        if let Ok(mut g) = self.0.lock()
            && let Some(l) = g.as_mut()
        {
            let _ = f(l);
        }
    }

    pub fn info(&self, msg: &str) {
        self.send(|l| l.info(msg));
    }

    pub fn warning(&self, msg: &str) {
        self.send(|l| l.warning(msg));
    }

    pub fn err(&self, msg: &str) {
        self.send(|l| l.err(msg));
    }
}
