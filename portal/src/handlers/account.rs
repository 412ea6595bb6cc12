//! "My account": `GET /account` is the sign-in form or the signed-in user's page; `POST`
//! carries the sign-in and, for a signed-in session, each action of the page.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use mfa_core::login::now;
use mfa_core::{BACKUP_CODES_DEFAULT, Core, CoreError, DeviceId, Refusal};
use mfa_model::OtcKind;

use crate::app::{ACTOR, Portal, SIGN_IN_FLOOR};
use crate::client::Ctx;
use crate::form::{Form, check_csrf, read_form};
use crate::handlers::{replace, sign_in};
use crate::limits::Limit;
use crate::refusal::Refused;
use crate::session::SignedIn;
use crate::views::{self, note};
use crate::zone::Zone;

/// The page's path, where every one of its forms posts.
pub const PATH: &str = "/account";
/// Logins the page lists.
const RECENT_LOGINS: usize = 10;

pub async fn page(State(p): State<Arc<Portal>>, c: Ctx) -> Response {
    match (p.signed_in(&c), c.sid.clone()) {
        (Some(who), Some(sid)) => {
            Account {
                p: &p,
                c: &c,
                sid,
                who,
            }
            .page(None)
            .await
        }
        _ => views::sign_in::form(&p, &c, None),
    }
}

pub async fn post(State(p): State<Arc<Portal>>, c: Ctx, body: Body) -> Response {
    let started = tokio::time::Instant::now();
    if !p.limit_address(Limit::Post, &c) {
        return p.refuse(&c, Refused::AddressLimit, None, PATH).await;
    }
    let form = match read_form(&p, &c, body, PATH).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let action = form.field("action");
    if action.as_str() == "signin" {
        let r = sign_in::sign_in(&p, &c, &form).await;
        // Every answer but a signed-in page waits for the same moment (SIGN_IN_FLOOR).
        if r.status() != StatusCode::OK {
            tokio::time::sleep_until(started + SIGN_IN_FLOOR).await;
        }
        return r;
    }
    if let Err(r) = check_csrf(&p, &c, &form, PATH, false).await {
        return r;
    }
    let (Some(who), Some(sid)) = (p.signed_in(&c), c.sid.clone()) else {
        return p.refuse(&c, Refused::SessionMissing, None, PATH).await;
    };
    let a = Account {
        p: &p,
        c: &c,
        sid,
        who,
    };
    // Every action first checks that the sign-in still holds; the ones that change the
    // record check it again in their own transaction.
    match a.holds().await {
        Some(true) => {}
        Some(false) => return a.ended().await,
        None => return p.failure(&c, PATH),
    }
    match action.as_str() {
        "signout" => {
            p.drop_session(&a.sid);
            views::sign_in::form(&p, &c, None)
        }
        "unlock" => unlock(&a).await,
        "backup-codes" => backup_codes_ask(&a).await,
        "backup-codes-confirm" => backup_codes(&a).await,
        "replace-start" => replace::start(&a),
        "replace-cancel" => replace::cancel(&a).await,
        "replace-confirm" => replace::confirm(&a, &form).await,
        "device-remove" => remove_device(&a, &form).await,
        _ => {
            p.refuse(&c, Refused::BadForm, Some(&a.who.user), PATH)
                .await
        }
    }
}

/// A request of a signed-in session.
pub struct Account<'a> {
    pub p: &'a Arc<Portal>,
    pub c: &'a Ctx,
    pub sid: String,
    pub who: SignedIn,
}

impl Account<'_> {
    /// Whether the sign-in still holds: the key it was made with is the user's, and the
    /// user is not locked (the core's rule, read now; the actions re-check it in their own
    /// transaction). `None`: the store could not be read.
    pub async fn holds(&self) -> Option<bool> {
        let who = self.who.clone();
        let rec = self
            .p
            .run(move |core| core.store().user(&who.user))
            .await?
            .ok()?;
        Some(
            self.who
                .key
                .holds(&self.who.user, rec.as_ref(), now())
                .is_ok(),
        )
    }

    /// The end of a session whose sign-in no longer holds (the key was replaced or removed,
    /// or the user locked, since): forgotten, audited, and the sign-in form.
    pub async fn ended(&self) -> Response {
        self.p.drop_session(&self.sid);
        self.p
            .audit(self.c, Some(&self.who.user), Refused::SessionEnded)
            .await;
        views::sign_in::form(self.p, self.c, Some(self.c.lang.t().session_ended))
    }

    /// The CSRF token of the session's forms.
    pub fn csrf(&self) -> String {
        self.p.sessions.csrf(&self.sid)
    }

    /// The account page with `note` on top. The sign-in is checked again against the
    /// record read for the page: a page is never shown to a session whose key changed.
    pub async fn page(&self, note: Option<String>) -> Response {
        let user = self.who.user.clone();
        let push_on = self.p.vapid_public.is_some();
        let data = self
            .p
            .run(move |core| {
                let rec = core.store().user(&user)?;
                let logins = core.store().recent_logins(&user, RECENT_LOGINS, now())?;
                let devices = if push_on {
                    Some(core.push(ACTOR).devices(&user)?)
                } else {
                    None
                };
                Ok::<_, CoreError>((rec, logins, devices))
            })
            .await;
        let Some(Ok((rec, logins, devices))) = data else {
            return self.p.failure(self.c, PATH);
        };
        if self
            .who
            .key
            .holds(&self.who.user, rec.as_ref(), now())
            .is_err()
        {
            return self.ended().await;
        }
        let facts = views::account::Facts {
            user: &self.who.user,
            rec: rec.as_ref(),
            logins: &logins,
            csrf: &self.csrf(),
            devices: devices.as_deref(),
        };
        views::account::page(self.p, self.c, &facts, note)
    }

    /// The account page saying `text` went well.
    pub async fn ok(&self, text: &str) -> Response {
        self.page(Some(note("ok", text))).await
    }

    /// The account page saying why `text` could not be done.
    pub async fn err(&self, text: &str) -> Response {
        self.page(Some(note("err", text))).await
    }

    /// Runs a core call for the signed-in user off the async threads. `Err` is the answer
    /// where it did not go through: the sign-in form where the sign-in ended meanwhile
    /// ([`Refusal::SignInEnded`]), the failure page where something failed. Any other
    /// refusal is the action's to answer.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Core, &SignedIn) -> Result<R, CoreError> + Send + 'static,
    ) -> Result<Result<R, Refusal>, Response> {
        let who = self.who.clone();
        match self.p.run(move |core| f(core, &who)).await {
            Some(Ok(v)) => Ok(Ok(v)),
            Some(Err(CoreError::Refused(Refusal::SignInEnded(_)))) => Err(self.ended().await),
            Some(Err(CoreError::Refused(r))) => Ok(Err(r)),
            _ => Err(self.p.failure(self.c, PATH)),
        }
    }
}

/// "Unlock this network": the client's address, remembered for the user (`[policy]
/// remember`).
async fn unlock(a: &Account<'_>) -> Response {
    let t = a.c.lang.t();
    let Some(ip) = a.c.client else {
        return a.err(t.unlock_no_address).await;
    };
    let r = a
        .call(move |core, who| {
            core.admin(ACTOR)
                .remember_network(&who.user, &who.key, ip, now())
        })
        .await;
    match r {
        Ok(Ok(until)) => {
            a.p.metrics.unlocks.inc();
            a.ok(&format!(
                "{} {} ({ip}).",
                t.unlocked,
                Zone::server().show_seconds(until)
            ))
            .await
        }
        Ok(Err(Refusal::RememberOff)) => a.err(t.unlock_off).await,
        Ok(Err(_)) => a.p.failure(a.c, PATH),
        Err(r) => r,
    }
}

/// "Make new backup codes" asks first: the old set stops working at once, so the page says
/// how many of its codes are still unused and makes nothing until the second form
/// (`backup-codes-confirm`, with the same CSRF token) comes back.
async fn backup_codes_ask(a: &Account<'_>) -> Response {
    let user = a.who.user.clone();
    let rec = a.p.run(move |core| core.store().user(&user)).await;
    let Some(Ok(rec)) = rec else {
        return a.p.failure(a.c, PATH);
    };
    let at = now();
    let unused = rec.as_ref().map_or(0, |r| {
        r.codes
            .iter()
            .filter(|c| c.kind == OtcKind::Backup && c.usable(at))
            .count()
    });
    views::account::backup_confirm(a.p, a.c, unused, &a.csrf())
}

/// A new set of backup codes, shown once; the old set stops working.
async fn backup_codes(a: &Account<'_>) -> Response {
    let r = a
        .call(|core, who| {
            core.admin(ACTOR).issue_backup_codes(
                &who.user,
                BACKUP_CODES_DEFAULT,
                Some(&who.key),
                now(),
            )
        })
        .await;
    match r {
        Ok(Ok(codes)) => {
            a.page(Some(views::account::backup_codes(a.c.lang.t(), &codes)))
                .await
        }
        Ok(Err(_)) => a.p.failure(a.c, PATH),
        Err(r) => r,
    }
}

/// Removes one of the user's phones (it approves no more sign-ins), in the transaction
/// that checks the sign-in still holds.
async fn remove_device(a: &Account<'_>, form: &Form) -> Response {
    let t = a.c.lang.t();
    let Some(id) = DeviceId::parse_hex(form.field("device").as_str()) else {
        return a
            .p
            .refuse(a.c, Refused::BadForm, Some(&a.who.user), PATH)
            .await;
    };
    let r = a
        .call(move |core, who| {
            core.push(ACTOR)
                .remove_own_device(&who.user, &who.key, &id, now())
        })
        .await;
    match r {
        Ok(Ok(true)) => {
            a.p.metrics.device("removed");
            a.ok(t.phone_removed).await
        }
        Ok(Ok(false)) => a.err(t.phone_remove_none).await,
        Ok(Err(_)) => a.p.failure(a.c, PATH),
        Err(r) => r,
    }
}
