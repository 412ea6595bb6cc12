//! "Replace key" in My account: a new key shown (kept in the session, never stored before
//! it is confirmed), confirmed with a code from the app that holds it, or cancelled.

use axum::response::Response;
use mfa_config::format_utc;
use mfa_core::enrolment::OwnKey;
use mfa_core::login::now;
use mfa_core::{Refusal, TotpSecret, UserName};

use crate::app::ACTOR;
use crate::form::Form;
use crate::handlers::account::{Account, PATH};
use crate::limits::Limit;
use crate::refusal::Refused;
use crate::session::SignedIn;
use crate::text::fill;
use crate::views::key::NewKey;
use crate::views::replace;

/// The key already shown to this session (a reload, the page opened again), or a new one.
pub fn start(a: &Account<'_>) -> Response {
    let shown =
        a.p.with_session(Some(&a.sid), |s| {
            if s.replacing.is_none() {
                s.replacing = TotpSecret::generate().ok();
                s.replacing_since = now();
            }
            s.replacing.clone().map(|k| (k, s.replacing_since))
        })
        .flatten();
    let Some((secret, since)) = shown else {
        return a.p.failure(a.c, PATH);
    };
    show(a, &secret, since, false)
}

/// The new key's entry in the app: the user's name and the day it was made
/// (`alice (2026-12-06)`), so that it is not taken for the old key's entry, which carries
/// the name alone (or an older day).
pub fn account_label(user: &UserName, since: i64) -> String {
    let day = format_utc(since);
    format!("{user} ({})", day.get(..10).unwrap_or(&day))
}

pub async fn cancel(a: &Account<'_>) -> Response {
    forget(a);
    a.ok(a.c.lang.t().replace_cancelled).await
}

/// The new key, confirmed by a code from it: stored by the core, in the transaction that
/// checks the sign-in still holds. The session goes on with the new key.
pub async fn confirm(a: &Account<'_>, form: &Form) -> Response {
    let t = a.c.lang.t();
    let Some(Some((secret, since))) = a.p.with_session(Some(&a.sid), |s| {
        s.replacing.clone().map(|k| (k, s.replacing_since))
    }) else {
        // Confirmed already, cancelled, or never started: nothing to show again.
        a.p.audit(a.c, Some(&a.who.user), Refused::ReplaceNotStarted)
            .await;
        return a.err(t.replace_none).await;
    };
    if !a.p.limit(Limit::Replace, a.who.user.as_str()) {
        return a
            .p
            .refuse(a.c, Refused::ReplaceLimit, Some(&a.who.user), PATH)
            .await;
    }
    let (code, end_old) = (form.field("code"), form.is("end_old", "1"));
    let (k, ip) = (secret.clone(), a.c.ip_text());
    let r = a
        .call(move |core, who| {
            let own = OwnKey {
                user: &who.user,
                signed_in: &who.key,
                secret: &k,
                code: &code,
                end_old,
                client_ip: ip.as_deref(),
            };
            core.enrolment().replace_own_key(&own, ACTOR, now())
        })
        .await;
    match r {
        Ok(Ok(key)) => {
            a.p.metrics.enrolled("replace");
            // Confirmed: the new key is gone from memory, and no page shows it again. The
            // session goes on with the key it just proved (the generation the core wrote),
            // as if signed in with it.
            let who = SignedIn {
                user: a.who.user.clone(),
                key,
            };
            let w = who.clone();
            let _ = a.p.with_session(Some(&a.sid), |s| {
                s.replacing = None;
                s.user = Some(w);
            });
            drop(secret);
            let text = fill(
                if end_old {
                    t.replaced_end_old
                } else {
                    t.replaced
                },
                &[
                    ("new", &account_label(&a.who.user, since)),
                    ("issuer", &a.p.core.config().totp.issuer),
                    ("user", a.who.user.as_str()),
                ],
            );
            let now_signed_in = Account {
                p: a.p,
                c: a.c,
                sid: a.sid.clone(),
                who,
            };
            now_signed_in.ok(&text).await
        }
        Ok(Err(Refusal::WrongConfirmationCode)) => show(a, &secret, since, true),
        Ok(Err(Refusal::NotEnrolled(_))) => {
            forget(a);
            a.err(t.replace_not_enrolled).await
        }
        Ok(Err(_)) => a.p.failure(a.c, PATH),
        Err(r) => r,
    }
}

/// The page of the new key `secret`, first shown at `since`.
fn show(a: &Account<'_>, secret: &TotpSecret, since: i64, wrong_code: bool) -> Response {
    let csrf = a.csrf();
    let account = account_label(&a.who.user, since);
    let new = NewKey {
        user: &a.who.user,
        account: &account,
        secret,
        csrf: &csrf,
    };
    replace::page(a.p, a.c, &new, wrong_code)
}

/// The new key, forgotten (wiped with the session's copy).
fn forget(a: &Account<'_>) {
    let _ = a.p.with_session(Some(&a.sid), |s| s.replacing = None);
}
