//! "Use this phone to approve sign-ins" (My account, signed in with password and code):
//! `GET /account/phone` is the registration page, `POST` the registration its script sends
//! (the Web Push subscription, the device's name, its approval key, the CSRF token). The
//! core registers the phone in the transaction that checks the session's sign-in still
//! holds (`Push::register_device` with the session's `KeyGeneration`). The answer is JSON
//! for the script, or a refusal page it reads the message of.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use data_encoding::BASE64URL_NOPAD;
use mfa_core::login::now;
use mfa_core::{DeviceRefusal, Refusal};

use crate::app::{ACTOR, Portal};
use crate::client::Ctx;
use crate::form::{MAX_REGISTRATION_BODY, check_csrf, read_form_limited};
use crate::handlers::account::Account;
use crate::handlers::json;
use crate::limits::Limit;
use crate::refusal::Refused;
use crate::views;
use crate::views::push::PHONE_PATH;

/// A refusal as the script reads it.
fn refused(p: &Portal, status: StatusCode, message: &str) -> Response {
    json(
        status,
        serde_json::json!({ "ok": false, "message": message }),
        p.secure,
    )
}

/// The signed-in session of the request, whose sign-in still holds; otherwise the answer
/// (the sign-in form, the page of an ended session, the failure page).
async fn signed_in<'a>(p: &'a Arc<Portal>, c: &'a Ctx) -> Result<Account<'a>, Response> {
    let (Some(who), Some(sid)) = (p.signed_in(c), c.sid.clone()) else {
        return Err(views::sign_in::form(p, c, None));
    };
    let a = Account { p, c, sid, who };
    match a.holds().await {
        Some(true) => Ok(a),
        Some(false) => Err(a.ended().await),
        None => Err(p.failure(c, PHONE_PATH)),
    }
}

pub async fn page(State(p): State<Arc<Portal>>, c: Ctx) -> Response {
    let t = c.lang.t();
    let Some(vapid) = p.vapid_public.clone() else {
        return p.msg(
            &c,
            StatusCode::NOT_FOUND,
            t.phone_title,
            t.phone_off,
            PHONE_PATH,
        );
    };
    match signed_in(&p, &c).await {
        Ok(a) => views::push::register(&p, &c, a.who.user.as_str(), &a.csrf(), &vapid),
        Err(r) => r,
    }
}

pub async fn register(State(p): State<Arc<Portal>>, c: Ctx, body: Body) -> Response {
    let t = c.lang.t();
    if p.vapid_public.is_none() {
        return refused(&p, StatusCode::NOT_FOUND, t.phone_off);
    }
    if !p.limit_address(Limit::Post, &c) {
        return p.refuse(&c, Refused::AddressLimit, None, PHONE_PATH).await;
    }
    let form = match read_form_limited(&p, &c, body, PHONE_PATH, MAX_REGISTRATION_BODY).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = check_csrf(&p, &c, &form, PHONE_PATH, false).await {
        return r;
    }
    let a = match signed_in(&p, &c).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (name, subscription) = (form.field("name"), form.field("subscription"));
    let key = form.field("public_key");
    let Ok(public_key) = BASE64URL_NOPAD.decode(key.trim_end_matches('=').as_bytes()) else {
        p.metrics.device("refused");
        return refused(&p, StatusCode::BAD_REQUEST, t.phone_bad_browser);
    };
    let r = a
        .call(move |core, who| {
            core.push(ACTOR).register_device(
                &who.user,
                &who.key,
                &name,
                &subscription,
                &public_key,
                now(),
            )
        })
        .await;
    match r {
        Ok(Ok(info)) => {
            p.metrics.device("registered");
            json(
                StatusCode::OK,
                serde_json::json!({
                    "ok": true,
                    "device": info.id.hex(),
                    "name": info.name,
                    "message": t.phone_registered,
                }),
                p.secure,
            )
        }
        Ok(Err(Refusal::PushDevice(why))) => {
            p.metrics.device("refused");
            // The core's words name what is wrong (never the endpoint); the page says it in
            // the user's language.
            eprintln!(
                "mfa-portal: a phone of user {:?} was not registered: {why}",
                a.who.user.as_str()
            );
            let (status, text) = match why {
                DeviceRefusal::Off => (StatusCode::NOT_FOUND, t.phone_off),
                DeviceRefusal::Name(_) => (StatusCode::BAD_REQUEST, t.phone_bad_name),
                DeviceRefusal::PublicKey(_) | DeviceRefusal::Subscription(_) => {
                    (StatusCode::BAD_REQUEST, t.phone_bad_browser)
                }
                DeviceRefusal::TooMany => (StatusCode::CONFLICT, t.phone_too_many),
            };
            refused(&p, status, text)
        }
        Ok(Err(_)) => p.failure(&c, PHONE_PATH),
        Err(r) => r,
    }
}
