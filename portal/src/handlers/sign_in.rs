//! The sign-in to "My account": the password through PAM, then the code through the core,
//! always (a trusted or remembered network does not stand in for it).

use std::sync::Arc;

use axum::response::Response;
use mfa_core::{ClientAddr, CoreError, Request, Voucher};
use zeroize::Zeroizing;

use crate::app::{ACTOR, Portal, blocking};
use crate::client::Ctx;
use crate::form::{Form, check_csrf};
use crate::handlers::account::{Account, PATH};
use crate::limits::Limit;
use crate::refusal::Refused;
use crate::session::SignedIn;
use crate::views;

/// Password through PAM (off the async threads), then the code through the core, always.
/// Rate-limited per address and per user; the caller holds every refusal until
/// [`crate::app::SIGN_IN_FLOOR`].
pub async fn sign_in(p: &Arc<Portal>, c: &Ctx, form: &Form) -> Response {
    let t = c.lang.t();
    if let Err(r) = check_csrf(p, c, form, PATH, true).await {
        return r;
    }
    let raw = form.field("user").trim().to_string();
    let (password, code) = (form.field("password"), form.field("code"));
    if !p.limit_address(Limit::SignIn, c) {
        return p.refuse(c, Refused::AddressLimit, None, PATH).await;
    }
    // Off the async threads: under `[users] unicode = "allow"` the name is checked against
    // the stored ones (look-alikes).
    let user = match p.run(move |core| core.user_name(&raw)).await {
        Some(Ok(u)) => u,
        Some(Err(CoreError::BadUserName { .. })) => {
            p.metrics.sign_in("refused");
            p.audit(c, None, Refused::InvalidUserName).await;
            return views::sign_in::form(p, c, Some(t.wrong_sign_in));
        }
        _ => {
            p.metrics.sign_in("refused");
            return p.failure(c, PATH);
        }
    };
    // Counted before the password is checked, given back after a sign-in: only failures
    // stay counted.
    if !p.limit(Limit::SignInUser, user.as_str()) {
        return p
            .refuse(c, Refused::SignInUserLimit, Some(&user), PATH)
            .await;
    }
    let req = Request::new(&user, ClientAddr::Remote(c.client), ACTOR);
    let (service, confdir, uname) = (
        p.pam_service.clone(),
        p.pam_confdir.clone(),
        user.to_string(),
    );
    let rhost = c.ip_text();
    let pw = Zeroizing::new(password.as_bytes().to_vec());
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
        p.metrics.sign_in("refused");
        return p.failure(c, PATH);
    };
    if !check.ok {
        // PAM's fail delay is not waited out here: the caller's floor stands in for it, for
        // every refusal alike.
        p.metrics.sign_in("wrong_password");
        let r = req.clone();
        let _ = p.run(move |core| core.login().deny_first_factor(&r)).await;
        return views::sign_in::form(p, c, Some(t.wrong_sign_in));
    }
    // Past the password: a first factor vouches for the name (the core's rule).
    let r = req;
    match p
        .run(move |core| {
            let login = core.login();
            let admission = login.admit_name(&r.user, Voucher::FirstFactor)?;
            login.verify_code_always(&r.admit(&admission), &code)
        })
        .await
    {
        Some(Ok((d, Some(key)))) if d.is_allowed() => {
            p.metrics.sign_in("ok");
            p.limits.refund(Limit::SignInUser, user.as_str());
            // A new session for the signed-in user (the sign-in form's id is not reused),
            // bound to the key the code was checked against.
            if let Some(sid) = &c.sid {
                p.drop_session(sid);
            }
            let who = SignedIn { user, key };
            let w = who.clone();
            let Some(sid) = p.sessions.create(|s| s.user = Some(w)) else {
                return p.failure(c, PATH);
            };
            let cookie = p.cookie(&sid);
            let mut r = Account { p, c, sid, who }.page(None).await;
            for (k, v) in cookie.iter() {
                r.headers_mut().append(k.clone(), v.clone());
            }
            r
        }
        Some(Ok(_)) => {
            p.metrics.sign_in("wrong_code");
            views::sign_in::form(p, c, Some(t.wrong_sign_in))
        }
        _ => {
            p.metrics.sign_in("refused");
            p.failure(c, PATH)
        }
    }
}
