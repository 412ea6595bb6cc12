//! The portal's refusals of a request, each with its audit reason, and, where the portal
//! answers it with a page of its own kind, that page's status and text and the metric it
//! counts: one table, so every refusal is one line where it happens.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use mfa_core::login::now;
use mfa_core::{ReasonCode, UserName};

use crate::app::{ACTOR, Portal};
use crate::client::Ctx;
use crate::text::T;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many requests of this kind from the client's address (an IPv6 /64).
    AddressLimit,
    /// Too many saves of one invite.
    InviteLimit,
    /// Too many "Replace key" confirmations by the signed-in user.
    ReplaceLimit,
    /// Too many failed sign-ins of the user, from any address.
    SignInUserLimit,
    /// The form's body did not arrive in time.
    SlowForm,
    /// The form's body is larger than any form of the portal.
    OversizedForm,
    /// A field is longer than its limit.
    OversizedField,
    /// A body that is no form of the portal, or an action it does not know.
    BadForm,
    /// No live session where the form needs one.
    SessionMissing,
    /// The form's CSRF token is not the session's.
    BadCsrf,
    /// The session's sign-in no longer holds (its key changed or went, the user is locked).
    /// Answered with the sign-in form.
    SessionEnded,
    /// "Replace key" confirmed with no new key shown. Answered with the account page.
    ReplaceNotStarted,
    /// A user name the rules refuse. Answered with the sign-in form.
    InvalidUserName,
}

impl Refused {
    /// The reason the audit trail records.
    pub fn code(self) -> ReasonCode {
        match self {
            Refused::AddressLimit
            | Refused::InviteLimit
            | Refused::ReplaceLimit
            | Refused::SignInUserLimit => ReasonCode::RateLimited,
            Refused::SlowForm => ReasonCode::SlowForm,
            Refused::OversizedForm => ReasonCode::OversizedForm,
            Refused::OversizedField => ReasonCode::OversizedField,
            Refused::BadForm => ReasonCode::BadForm,
            Refused::SessionMissing => ReasonCode::SessionMissing,
            Refused::BadCsrf => ReasonCode::CsrfRefused,
            Refused::SessionEnded => ReasonCode::SessionEnded,
            Refused::ReplaceNotStarted => ReasonCode::ReplaceNotStarted,
            Refused::InvalidUserName => ReasonCode::InvalidUserName,
        }
    }

    /// For a rate limit, the metric's label of what was limited.
    fn limit(self) -> Option<&'static str> {
        match self {
            Refused::AddressLimit => Some("address"),
            Refused::InviteLimit => Some("invite"),
            Refused::ReplaceLimit | Refused::SignInUserLimit => Some("user"),
            _ => None,
        }
    }

    /// The status and text of the page that says it; `None` for the refusals answered with
    /// a page of another kind (see each).
    fn page(self, t: &T) -> Option<(StatusCode, &'static str)> {
        Some(match self {
            Refused::AddressLimit | Refused::InviteLimit | Refused::ReplaceLimit => {
                (StatusCode::TOO_MANY_REQUESTS, t.too_many)
            }
            Refused::SignInUserLimit => (StatusCode::TOO_MANY_REQUESTS, t.too_many_user),
            Refused::SlowForm => (StatusCode::REQUEST_TIMEOUT, t.too_slow),
            Refused::OversizedForm | Refused::OversizedField => {
                (StatusCode::PAYLOAD_TOO_LARGE, t.too_big)
            }
            Refused::BadForm => (StatusCode::BAD_REQUEST, t.bad_form),
            Refused::SessionMissing => (StatusCode::BAD_REQUEST, t.session),
            Refused::BadCsrf => (StatusCode::FORBIDDEN, t.csrf),
            Refused::SessionEnded | Refused::ReplaceNotStarted | Refused::InvalidUserName => {
                return None;
            }
        })
    }
}

impl Portal {
    /// Refuses the request: counted where it is a rate limit, audited (naming `user` where
    /// the portal knows who), and answered with the page that says why. A refusal answered
    /// with a page of another kind is audited with [`Portal::audit`] instead.
    pub async fn refuse(
        self: &Arc<Self>,
        c: &Ctx,
        why: Refused,
        user: Option<&UserName>,
        path: &str,
    ) -> Response {
        if let Some(limit) = why.limit() {
            self.metrics.limited(limit);
        }
        self.audit(c, user, why).await;
        match why.page(c.lang.t()) {
            Some((status, text)) => self.msg(c, status, c.lang.t().refused_title, text, path),
            None => self.failure(c, path),
        }
    }

    /// Audits a refused request through the core (never a token, code or password).
    pub async fn audit(self: &Arc<Self>, c: &Ctx, user: Option<&UserName>, why: Refused) {
        let (user, ip) = (user.map(UserName::to_string), c.ip_text());
        let _ = self
            .run(move |core| {
                core.invites(ACTOR)
                    .audit_refusal(user.as_deref(), why.code(), ip.as_deref(), now())
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::Lang;

    /// Every refusal the portal answers with a refusal page has one, every rate limit is
    /// counted, and the audit reasons are the stable codes the audit trail has always had.
    #[test]
    fn the_table_covers_every_refusal() {
        let all = [
            Refused::AddressLimit,
            Refused::InviteLimit,
            Refused::ReplaceLimit,
            Refused::SignInUserLimit,
            Refused::SlowForm,
            Refused::OversizedForm,
            Refused::OversizedField,
            Refused::BadForm,
            Refused::SessionMissing,
            Refused::BadCsrf,
            Refused::SessionEnded,
            Refused::ReplaceNotStarted,
            Refused::InvalidUserName,
        ];
        let t = Lang::En.t();
        for why in all {
            let own_page = matches!(
                why,
                Refused::SessionEnded | Refused::ReplaceNotStarted | Refused::InvalidUserName
            );
            assert_eq!(why.page(t).is_none(), own_page, "{why:?}");
            assert_eq!(
                why.limit().is_some(),
                why.code().as_str() == "rate_limited",
                "{why:?}"
            );
        }
    }
}
