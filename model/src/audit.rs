//! The audit model: one event per decision or admin action. Never a code or secret.

/// What a decision lets happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    NeedCode,
    Deny,
}

impl Outcome {
    /// The word in the audit trail, the logs and `mfactl auth`.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::NeedCode => "challenge",
            Outcome::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub time: i64,
    pub user: String,
    /// PAM service (sshd, sudo), RADIUS client name, or the admin tool (`mfactl`).
    pub service: String,
    pub client_ip: Option<String>,
    /// `allow`, `deny`, `challenge`, or an admin action such as `enroll`.
    pub decision: String,
    /// A stable machine-readable code, e.g. `valid_code`, `trusted_network`, `key_removed`:
    /// scripts match on it, so it is never free text.
    pub reason: String,
    /// Free text for people (`users.csv:12`, `1 use(s), valid 3600s`); never a secret.
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An administrator's action on `user`, done through `actor` (`mfactl`, the portal).
    pub fn admin(
        time: i64,
        user: &str,
        actor: &str,
        action: &str,
        reason: &str,
        detail: Option<String>,
    ) -> Self {
        Self {
            time,
            user: user.into(),
            service: actor.into(),
            client_ip: None,
            decision: action.into(),
            reason: reason.into(),
            detail,
        }
    }

    /// One line for syslog and stderr: key=value, user names and details quoted.
    pub fn line(&self) -> String {
        let mut s = format!(
            "user={:?} service={:?} client_ip={} decision={} reason={}",
            self.user,
            self.service,
            self.client_ip.as_deref().unwrap_or("-"),
            self.decision,
            self.reason
        );
        if let Some(d) = &self.detail {
            s.push_str(&format!(" detail={d:?}"));
        }
        s
    }
}
