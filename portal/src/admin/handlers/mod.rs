//! The console's handlers, one file per page: the sign-in (`sign_in`), the users and one
//! user (`users`), the roll-out (`rollout`), trusted networks and exemptions (`networks`),
//! the audit trail (`log`). What they share is here: who is signed in (checked again at
//! every request), the forms' CSRF, the refusals.

pub mod log;
pub mod networks;
pub mod rollout;
pub mod sign_in;
pub mod users;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mfa_config::Config;
use mfa_core::login::now;
use mfa_core::roles::{Operator, Role};
use mfa_core::{Core, CoreError, ReasonCode, Refusal, UserName};

use crate::admin::client::Ctx;
use crate::admin::views::frame::{self, Who};
use crate::admin::{ANONYMOUS_ACTOR, Console, FRONT_END};
use crate::form::{Form, read_form};
use crate::limits::Limit;
use crate::session::SignedIn;

/// A request of a signed-in administrator, whose sign-in and role were checked for it.
/// As an extractor it is what every page past the sign-in takes: the refusal (the sign-in
/// form, 403) is answered before the handler runs, so no page can forget the check.
pub struct Admin {
    pub con: Arc<Console>,
    pub c: Ctx,
    pub sid: String,
    pub who: SignedIn,
    pub role: Role,
}

/// The signed-in administrator of the request: the session's, whose key still holds (an
/// unlink or a lock of the administrator ends it) and who is still in an `[admin]` group
/// (looked up now). Otherwise the answer: the sign-in form, or 403 for a user who is no
/// longer an administrator (the session is ended).
pub async fn signed_in(con: &Arc<Console>, c: Ctx) -> Result<Admin, Response> {
    let sid = c.sid().map(str::to_string);
    let who = sid
        .as_deref()
        .and_then(|s| con.sessions.with(Some(s), |x| x.user.clone()))
        .flatten();
    let (Some(sid), Some(who)) = (sid, who) else {
        return Err(sign_in::form(con, &c, None));
    };
    let w = who.clone();
    let checked = con
        .p
        .run(move |core| -> Result<Result<Role, CoreError>, CoreError> {
            let rec = core.store().user(&w.user)?;
            if w.key.holds(&w.user, rec.as_ref(), now()).is_err() {
                return Err(CoreError::Refused(Refusal::SignInEnded(w.user.clone())));
            }
            Ok(core.operator(FRONT_END, &w.user).role(now()))
        })
        .await;
    match checked {
        Some(Ok(Ok(role))) => Ok(Admin {
            con: Arc::clone(con),
            c,
            sid,
            who,
            role,
        }),
        Some(Ok(Err(CoreError::Refused(Refusal::NotAdministrator(_))))) => {
            con.sessions.remove(&sid);
            Err(not_administrator(con, &c))
        }
        Some(Err(CoreError::Refused(Refusal::SignInEnded(_)))) => {
            con.sessions.remove(&sid);
            audit_refusal(con, &c, Some(&who.user), None, ReasonCode::SessionEnded).await;
            Err(sign_in::form(con, &c, Some(c.t().session_ended)))
        }
        _ => Err(failure(con, &c, None)),
    }
}

impl FromRequestParts<Arc<Console>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, con: &Arc<Console>) -> Result<Self, Response> {
        let c = Ctx::from_request_parts(parts, con).await?;
        signed_in(con, c).await
    }
}

/// A form posted to a page of the console, past [`post_form`]'s checks; the refusal is
/// answered before the handler runs.
pub struct Posted {
    pub form: Form,
    pub a: Admin,
}

impl FromRequest<Arc<Console>> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, con: &Arc<Console>) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let c = Ctx::from_request_parts(&mut parts, con).await?;
        // The route's own path (routes are exact): where a refusal's page leads back to.
        let path = parts.uri.path().to_string();
        let (form, a) = post_form(con, c, body, &path).await?;
        Ok(Posted { form, a })
    }
}

/// 403: signed in, but in none of the `[admin] groups`.
pub fn not_administrator(con: &Console, c: &Ctx) -> Response {
    let t = c.t();
    frame::message(
        con,
        c,
        StatusCode::FORBIDDEN,
        t.refused_title,
        t.not_admin,
        None,
    )
}

/// Something failed (the store, the random source): nothing was done.
pub fn failure(con: &Console, c: &Ctx, who: Option<&Who<'_>>) -> Response {
    let t = c.t();
    frame::message(
        con,
        c,
        StatusCode::INTERNAL_SERVER_ERROR,
        t.refused_title,
        t.failure,
        who,
    )
}

/// Audits a refused request of the console (never a token, code or password), as done by
/// the administrator where one is signed in.
pub async fn audit_refusal(
    con: &Arc<Console>,
    c: &Ctx,
    user: Option<&UserName>,
    operator: Option<&UserName>,
    reason: ReasonCode,
) {
    let actor = operator.map_or_else(
        || ANONYMOUS_ACTOR.to_string(),
        |o| format!("{FRONT_END}:admin:{o}"),
    );
    let (user, ip) = (user.map(UserName::to_string), c.ip_text());
    let _ = con
        .p
        .run(move |core| {
            core.invites(&actor)
                .audit_refusal(user.as_deref(), reason, ip.as_deref(), now())
        })
        .await;
}

/// What every form of the console passes first: the rate limit of posts per address, the
/// form's size and field limits, a live session and its CSRF token (constant time), the
/// administrator's sign-in and role. Every refusal is audited and answered here.
pub async fn post_form(
    con: &Arc<Console>,
    ctx: Ctx,
    body: Body,
    path: &str,
) -> Result<(Form, Admin), Response> {
    let c = &ctx;
    let t = c.t();
    if !con.p.limit_address(Limit::Post, &c.base) {
        con.p.metrics.limited("address");
        audit_refusal(con, c, None, None, ReasonCode::RateLimited).await;
        return Err(frame::message(
            con,
            c,
            StatusCode::TOO_MANY_REQUESTS,
            t.refused_title,
            t.too_many,
            None,
        ));
    }
    let form = read_form(&con.p, &c.base, body, path).await?;
    let session = c
        .sid()
        .and_then(|sid| con.sessions.with(Some(sid), |s| s.user.clone()))
        .flatten();
    let Some(session_user) = session else {
        audit_refusal(con, c, None, None, ReasonCode::SessionMissing).await;
        return Err(frame::message(
            con,
            c,
            StatusCode::BAD_REQUEST,
            t.refused_title,
            t.session_missing,
            None,
        ));
    };
    if !csrf_ok(con, c, &form) {
        audit_refusal(
            con,
            c,
            None,
            Some(&session_user.user),
            ReasonCode::CsrfRefused,
        )
        .await;
        return Err(frame::message(
            con,
            c,
            StatusCode::FORBIDDEN,
            t.refused_title,
            t.csrf,
            None,
        ));
    }
    let a = signed_in(con, ctx).await?;
    Ok((form, a))
}

/// Whether the form carries the CSRF token of the request's session id.
pub fn csrf_ok(con: &Console, c: &Ctx, form: &Form) -> bool {
    c.sid()
        .is_some_and(|sid| con.sessions.csrf_ok(sid, form.field("csrf").as_bytes()))
}

/// The configuration file as it is now: the console's edits (go-live, trusted networks,
/// exemptions) take effect in the file, which the PAM module reads at every login, before
/// the daemons reload; the pages show it. Where it cannot be read, the portal's own
/// (from its start), and why.
pub fn current_config(core: &Core) -> (Config, Option<String>) {
    match mfa_config::load(&core.config().source) {
        Ok(c) => (c, None),
        Err(e) => (core.config().clone(), Some(e.to_string())),
    }
}

impl Admin {
    /// The CSRF token of the session's forms.
    pub fn csrf(&self) -> String {
        self.con.sessions.csrf(&self.sid)
    }

    /// A page of the signed-in administrator.
    pub fn page(&self, status: StatusCode, title: &str, here: &str, body: &str) -> Response {
        let csrf = self.csrf();
        let who = Who {
            name: self.who.user.as_str(),
            role: self.role,
            csrf: &csrf,
        };
        frame::page(&self.con, &self.c, status, title, here, Some(&who), body)
    }

    /// Something failed: nothing was done.
    pub fn failure(&self) -> Response {
        let csrf = self.csrf();
        let who = Who {
            name: self.who.user.as_str(),
            role: self.role,
            csrf: &csrf,
        };
        failure(&self.con, &self.c, Some(&who))
    }

    /// Runs `f` with the administrator's [`Operator`] off the async threads; `None` when
    /// the task did not finish.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Core, &Operator<'_>) -> R + Send + 'static,
    ) -> Option<R> {
        let name = self.who.user.clone();
        self.con
            .p
            .run(move |core| {
                let op = core.operator(FRONT_END, &name);
                f(core, &op)
            })
            .await
    }

    /// The answer to a refusal of the core that the page has no words of its own for:
    /// 403 for the role and the own account (the administrator no longer in a group: the
    /// session ends), the core's message otherwise; `None` for a failure.
    pub fn refusal_text(&self, e: &CoreError) -> Option<(StatusCode, String)> {
        let t = self.c.t();
        Some(match e {
            CoreError::Refused(Refusal::NotPermitted { .. }) => {
                (StatusCode::FORBIDDEN, t.not_permitted.to_string())
            }
            CoreError::Refused(Refusal::OwnAccount(_)) => {
                (StatusCode::FORBIDDEN, t.own_account.to_string())
            }
            CoreError::Refused(Refusal::NotEnrolled(_)) => {
                (StatusCode::CONFLICT, t.not_enrolled.to_string())
            }
            CoreError::Refused(Refusal::AlreadyEnrolled { .. }) => {
                (StatusCode::CONFLICT, t.already_enrolled.to_string())
            }
            CoreError::Refused(Refusal::UnknownName(_) | Refusal::NoSuchUser(_)) => {
                (StatusCode::NOT_FOUND, t.unknown_name.to_string())
            }
            CoreError::Refused(r) => (StatusCode::CONFLICT, r.to_string()),
            CoreError::BadUserName { .. } => (StatusCode::BAD_REQUEST, e.to_string()),
            CoreError::Config(c) => (
                StatusCode::BAD_REQUEST,
                format!("{} {c}", t.config_unchanged),
            ),
            _ => return None,
        })
    }

    /// The answer where a refusal ends the request itself: the administrator is no longer
    /// one (403, the session ends).
    pub fn ended(&self, e: &CoreError) -> Option<Response> {
        match e {
            CoreError::Refused(Refusal::NotAdministrator(_)) => {
                self.con.sessions.remove(&self.sid);
                Some(not_administrator(&self.con, &self.c))
            }
            _ => None,
        }
    }
}

/// Headers of a redirect to `to` (303: the answer to a form is a page to get).
pub fn see_other(to: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = axum::http::HeaderValue::from_str(to) {
        r.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    crate::page::secure_headers(r.headers_mut(), false);
    r
}

/// `see_other` with headers (a new session's cookie).
pub fn see_other_with(to: &str, headers: HeaderMap) -> Response {
    let mut r = see_other(to);
    for (k, v) in headers.iter() {
        r.headers_mut().append(k.clone(), v.clone());
    }
    r
}

/// The first page after the sign-in.
pub const START: &str = "/admin/users";
