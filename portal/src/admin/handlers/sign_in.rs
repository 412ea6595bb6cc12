//! The console's sign-in: the password through PAM (the portal's `[portal] pam_service`),
//! then the code through the core, always (`Login::verify_code_always`, as "My account"
//! signs in), then the role: a user in none of the `[admin] groups` gets 403 and no
//! session. Rate-limited per address and per user; every refusal is answered no sooner
//! than [`SIGN_IN_FLOOR`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use mfa_core::login::now;
use mfa_core::policy::push_refusal_code;
use mfa_core::{
    ClientAddr, CoreError, KeyGeneration, PushRefusal, PushState, ReasonCode, Refusal, Request,
    Voucher,
};
use zeroize::Zeroizing;

use crate::admin::client::{Ctx, TZ_COOKIE};
use crate::admin::handlers::{
    Posted, START, audit_refusal, failure, not_administrator, see_other, see_other_with, signed_in,
};
use crate::admin::views::frame;
use crate::admin::{ANONYMOUS_ACTOR, BASE, Console, FRONT_END, SIGN_IN_SERVICE};
use crate::app::{SIGN_IN_FLOOR, blocking};
use crate::form::{Form, read_form};
use crate::limits::Limit;
use crate::page::esc;
use crate::session::{PushWait, SignedIn};
use crate::zone::Zone;

/// `GET /admin`: the console for a signed-in administrator, else the sign-in form.
pub async fn home(State(con): State<Arc<Console>>, c: Ctx) -> Response {
    match signed_in(&con, c).await {
        Ok(_) => see_other(START),
        Err(r) => r,
    }
}

/// `POST /admin`: sign in, or sign out.
pub async fn post(State(con): State<Arc<Console>>, c: Ctx, body: Body) -> Response {
    let started = tokio::time::Instant::now();
    let t = c.t();
    if !con.p.limit_address(Limit::Post, &c.base) {
        con.p.metrics.limited("address");
        audit_refusal(&con, &c, None, None, ReasonCode::RateLimited).await;
        return frame::message(
            &con,
            &c,
            StatusCode::TOO_MANY_REQUESTS,
            t.refused_title,
            t.too_many,
            None,
        );
    }
    let form = match read_form(&con.p, &c.base, body, BASE).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    match form.field("action").as_str() {
        "signin" => {
            let r = sign_in(&con, &c, &form).await;
            // Every answer but the console itself waits for the same moment.
            if r.status() != StatusCode::SEE_OTHER {
                tokio::time::sleep_until(started + SIGN_IN_FLOOR).await;
            }
            r
        }
        "signout" => {
            if let Some(sid) = c.sid()
                && con.sessions.csrf_ok(sid, form.field("csrf").as_bytes())
            {
                con.sessions.remove(sid);
                return form_page(&con, &c, None, Some(t.signed_out));
            }
            let who = c
                .sid()
                .and_then(|sid| con.sessions.with(Some(sid), |s| s.user.clone()))
                .flatten()
                .map(|w| w.user);
            audit_refusal(&con, &c, None, who.as_ref(), ReasonCode::CsrfRefused).await;
            frame::message(
                &con,
                &c,
                StatusCode::FORBIDDEN,
                t.refused_title,
                t.csrf,
                None,
            )
        }
        _ => {
            audit_refusal(&con, &c, None, None, ReasonCode::BadForm).await;
            frame::message(
                &con,
                &c,
                StatusCode::BAD_REQUEST,
                t.refused_title,
                t.bad_form,
                None,
            )
        }
    }
}

/// `POST /admin/prefs`: the administrator's time zone, kept in a cookie of the browser.
pub async fn prefs(Posted { form, a }: Posted) -> Response {
    let (con, c) = (&a.con, &a.c);
    let name = form.field("tz");
    let Some(zone) = Zone::named(&name) else {
        return a.page(
            StatusCode::BAD_REQUEST,
            c.t().refused_title,
            START,
            &frame::note("err", &format!("{} {:?}", c.t().tz_unknown, name.as_str())),
        );
    };
    let mut h = axum::http::HeaderMap::new();
    con.set_cookie(&mut h, TZ_COOKIE, &zone.name, 365 * 86_400);
    see_other_with(START, h)
}

/// The sign-in form, with `error` on top where the last sign-in was refused.
pub fn form(con: &Console, c: &Ctx, error: Option<&str>) -> Response {
    form_page(con, c, error, None)
}

fn form_page(con: &Console, c: &Ctx, error: Option<&str>, ok: Option<&str>) -> Response {
    let t = c.t();
    // No session before the sign-in: the token is a MAC of the visitor's id (the cookie's,
    // or a new one set here), as the user pages' sign-in form does.
    let Some(sid) = con.sessions.visitor_id(c.sid()) else {
        return failure(con, c, None);
    };
    let csrf = con.sessions.csrf(&sid);
    // The second submit button: the same form, the phone's approval instead of the code
    // (where this portal delivers pushes).
    let push = if con.p.vapid_public.is_some() {
        format!(
            " <button type=\"submit\" name=\"with\" value=\"push\" id=\"signin-push\">{}</button><p class=\"muted\">{}</p>",
            esc(t.push_button),
            esc(t.push_hint)
        )
    } else {
        String::new()
    };
    let note = match (error, ok) {
        (Some(e), _) => frame::note("err", e),
        (None, Some(o)) => frame::note("ok", o),
        _ => String::new(),
    };
    let body = format!(
        "{note}<p>{}</p><form method=\"post\" action=\"{BASE}\" id=\"signin\"><input type=\"hidden\" name=\"action\" value=\"signin\"><p><label for=\"user\">{}</label><br><input id=\"user\" name=\"user\" autocomplete=\"username\" maxlength=\"256\" required autofocus></p><p><label for=\"password\">{}</label><br><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" maxlength=\"1024\" required></p><p><label for=\"code\">{}</label><br><input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"16\"></p><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" id=\"signin-code\">{}</button>{push}</form>",
        esc(t.sign_in_intro),
        esc(t.user),
        esc(t.password),
        esc(t.code),
        esc(&csrf),
        esc(t.sign_in)
    );
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let mut r = frame::page(con, c, status, t.sign_in_title, BASE, None, &body);
    for (k, v) in con.session_cookie(&sid).iter() {
        r.headers_mut().append(k.clone(), v.clone());
    }
    r
}

/// Password through PAM (off the async threads), then the code through the core, then the
/// role. A new session on success (the form's id is not reused).
async fn sign_in(con: &Arc<Console>, c: &Ctx, form: &Form) -> Response {
    let t = c.t();
    let visitor = c
        .sid()
        .filter(|sid| con.sessions.csrf_ok(sid, form.field("csrf").as_bytes()));
    if visitor.is_none() {
        audit_refusal(con, c, None, None, ReasonCode::CsrfRefused).await;
        return frame::message(con, c, StatusCode::FORBIDDEN, t.refused_title, t.csrf, None);
    }
    if !con.p.limit_address(Limit::SignIn, &c.base) {
        con.p.metrics.limited("address");
        audit_refusal(con, c, None, None, ReasonCode::RateLimited).await;
        return frame::message(
            con,
            c,
            StatusCode::TOO_MANY_REQUESTS,
            t.refused_title,
            t.too_many,
            None,
        );
    }
    let raw = form.field("user").trim().to_string();
    let user = match con.p.run(move |core| core.user_name(&raw)).await {
        Some(Ok(u)) => u,
        Some(Err(CoreError::BadUserName { .. })) => {
            audit_refusal(con, c, None, None, ReasonCode::InvalidUserName).await;
            return form_page(con, c, Some(t.wrong_sign_in), None);
        }
        _ => return failure(con, c, None),
    };
    // Counted before the password is checked, given back after a sign-in.
    if !con.p.limit(Limit::SignInUser, user.as_str()) {
        con.p.metrics.limited("user");
        audit_refusal(con, c, Some(&user), None, ReasonCode::RateLimited).await;
        return frame::message(
            con,
            c,
            StatusCode::TOO_MANY_REQUESTS,
            t.refused_title,
            t.too_many,
            None,
        );
    }
    let req = Request::new(&user, ClientAddr::Remote(c.base.client), SIGN_IN_SERVICE);
    let (service, confdir, uname) = (
        con.p.pam_service.clone(),
        con.p.pam_confdir.clone(),
        user.to_string(),
    );
    let rhost = c.ip_text();
    let pw = Zeroizing::new(form.field("password").as_bytes().to_vec());
    let check = blocking(move || {
        mfa_pam_client::check(&mfa_pam_client::PamRequest {
            service: &service,
            user: &uname,
            password: &pw,
            rhost: rhost.as_deref(),
            confdir: confdir.as_deref(),
        })
    })
    .await;
    let Some(check) = check else {
        return failure(con, c, None);
    };
    let with_push = form.field("with").as_str() == "push" && con.p.vapid_public.is_some();
    if !check.ok {
        let r = req.clone();
        let _ = con
            .p
            .run(move |core| core.login().deny_first_factor(&r))
            .await;
        // The push path's refusals all say the same, so this one tells no more.
        let why = if with_push {
            t.push_refused
        } else {
            t.wrong_sign_in
        };
        return form_page(con, c, Some(why), None);
    }
    if with_push {
        return start_push(con, c, req).await;
    }
    let code = form.field("code");
    let r = req;
    let verified = con
        .p
        .run(move |core| {
            let login = core.login();
            let admission = login.admit_name(&r.user, Voucher::FirstFactor)?;
            let user = r.user.clone();
            let (d, key) = login.verify_code_always(&r.admit(&admission), &code)?;
            if !d.is_allowed() {
                return Ok(None);
            }
            // Past both factors: the role, from the system's groups now (a refusal is
            // audited as the user's).
            let role = core.operator(FRONT_END, &user).role(now());
            Ok::<_, CoreError>(key.map(|k| (k, role)))
        })
        .await;
    match verified {
        Some(Ok(Some((key, Ok(_role))))) => {
            con.p.limits.refund(Limit::SignInUser, user.as_str());
            if let Some(sid) = c.sid() {
                con.sessions.remove(sid);
            }
            let who = SignedIn { user, key };
            let Some(sid) = con.sessions.create(|s| s.user = Some(who)) else {
                return failure(con, c, None);
            };
            see_other_with(START, con.session_cookie(&sid))
        }
        Some(Ok(Some((_, Err(CoreError::Refused(Refusal::NotAdministrator(_))))))) => {
            con.p.limits.refund(Limit::SignInUser, user.as_str());
            not_administrator(con, c)
        }
        Some(Ok(None)) => form_page(con, c, Some(t.wrong_sign_in), None),
        _ => failure(con, c, None),
    }
}

/// Past the password, the phone instead of the code: a sign-in request that must be
/// approved whatever the policy would let in without one (`Push::start_always`), kept in a
/// new session that no one is signed in to yet; the browser goes to the waiting page.
/// Every refusal (not enrolled, no phone, push blocked or rate-limited, no portal
/// delivering) gives the push path's one refusal text, after the floor.
async fn start_push(con: &Arc<Console>, c: &Ctx, req: Request) -> Response {
    let t = c.t();
    let r = req.clone();
    let started = con
        .p
        .run(move |core| {
            let admission = core.login().admit_name(&r.user, Voucher::FirstFactor)?;
            core.push(ANONYMOUS_ACTOR)
                .start_always(&r.admit(&admission), true)
        })
        .await;
    match started {
        Some(Ok(s)) => {
            if let Some(sid) = c.sid() {
                con.sessions.remove(sid);
            }
            let wait = PushWait {
                user: req.user.clone(),
                client: c.base.client,
                id: s.id,
                number: s.number,
            };
            let Some(sid) = con.sessions.create(|x| x.push_wait = Some(wait)) else {
                return failure(con, c, None);
            };
            see_other_with(&push_path(c), con.session_cookie(&sid))
        }
        Some(Err(e @ (CoreError::Refused(_) | CoreError::BadUserName { .. }))) => {
            // The core audits the refusals it counts (blocked, rate); the others here, so
            // every sign-in past the password is in the trail.
            if let CoreError::Refused(Refusal::Push(p)) = e
                && !matches!(
                    p,
                    PushRefusal::Blocked { .. } | PushRefusal::RateLimited { .. }
                )
            {
                audit_refusal(con, c, Some(&req.user), None, push_refusal_code(p)).await;
            }
            form_page(con, c, Some(t.push_refused), None)
        }
        _ => failure(con, c, None),
    }
}

fn push_path(c: &Ctx) -> String {
    format!("{BASE}/push?lang={}", c.lang().code())
}

/// What the waiting page found.
enum Waited {
    Pending,
    SignedIn(KeyGeneration, Result<mfa_core::roles::Role, CoreError>),
    NotApproved,
}

/// `GET /admin/push`: the sign-in waiting for the phone. While the request is pending, a
/// page with the number to enter that reloads itself every 3 seconds (`Refresh`, no
/// script); once it is decided, the sign-in is settled on the login path
/// (`Login::verify_push_always`): approved, a signed-in session as a code gives; anything
/// else, the sign-in form with why.
pub async fn push_wait(State(con): State<Arc<Console>>, c: Ctx) -> Response {
    let t = c.t();
    let wait = c
        .sid()
        .and_then(|sid| con.sessions.with(Some(sid), |s| s.push_wait.clone()))
        .flatten();
    let (Some(sid), Some(w)) = (c.sid().map(str::to_string), wait) else {
        return form(&con, &c, None);
    };
    let (user, client, id) = (w.user.clone(), w.client, w.id);
    let waited = con
        .p
        .run(move |core| {
            let t_now = now();
            if core.push(ANONYMOUS_ACTOR).status(&id, t_now)? == Some(PushState::Pending) {
                return Ok::<_, CoreError>(Waited::Pending);
            }
            let mut req = Request::new(&user, ClientAddr::Remote(client), SIGN_IN_SERVICE);
            req.now = t_now;
            let login = core.login();
            let admission = login.admit_name(&user, Voucher::FirstFactor)?;
            let (d, key) = login.verify_push_always(&req.admit(&admission), &id)?;
            Ok(match key {
                Some(k) if d.is_allowed() => {
                    Waited::SignedIn(k, core.operator(FRONT_END, &user).role(t_now))
                }
                _ if d.outcome == mfa_core::Outcome::NeedCode => Waited::Pending,
                _ => Waited::NotApproved,
            })
        })
        .await;
    match waited {
        Some(Ok(Waited::Pending)) => {
            let number = w
                .number
                .map(|n| {
                    format!(
                        "<p class=\"key\" id=\"push-number\">{}</p>",
                        esc(&t.push_number.replace("{n}", &format!("{n:02}")))
                    )
                })
                .unwrap_or_default();
            let body = format!(
                "<p id=\"push-wait\">{}</p>{number}<p><a href=\"{}\" id=\"push-continue\">{}</a> \u{b7} <a href=\"{BASE}\">{}</a></p>",
                esc(t.push_wait_intro),
                esc(&push_path(&c)),
                esc(t.push_continue),
                esc(t.cancel)
            );
            let mut r = frame::page(
                &con,
                &c,
                StatusCode::OK,
                t.push_wait_title,
                &push_path(&c),
                None,
                &body,
            );
            r.headers_mut()
                .insert(header::REFRESH, HeaderValue::from_static("3"));
            r
        }
        Some(Ok(Waited::SignedIn(key, Ok(_role)))) => {
            con.p.limits.refund(Limit::SignInUser, w.user.as_str());
            con.sessions.remove(&sid);
            let who = SignedIn { user: w.user, key };
            let Some(sid) = con.sessions.create(|s| s.user = Some(who)) else {
                return failure(&con, &c, None);
            };
            see_other_with(START, con.session_cookie(&sid))
        }
        Some(Ok(Waited::SignedIn(_, Err(CoreError::Refused(Refusal::NotAdministrator(_)))))) => {
            con.sessions.remove(&sid);
            not_administrator(&con, &c)
        }
        Some(Ok(Waited::NotApproved) | Err(CoreError::Refused(_))) => {
            con.sessions.remove(&sid);
            form_page(&con, &c, Some(t.push_not_approved), None)
        }
        _ => failure(&con, &c, None),
    }
}
