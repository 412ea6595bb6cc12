//! The invite link: `GET /enrol/{token}` shows a new key for the invite's user (kept in
//! this session until saved), `POST` saves it once a code from the app matches.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use data_encoding::HEXLOWER;
use mfa_core::TotpSecret;
use mfa_core::invite::{InviteEnrol, InviteState, token_hash};
use mfa_core::login::now;
use zeroize::Zeroizing;

use crate::app::{ACTOR, Portal};
use crate::client::Ctx;
use crate::form::{check_csrf, read_form};
use crate::limits::Limit;
use crate::refusal::Refused;
use crate::session::ShownKey;
use crate::views::enrol::{self, Step};
use crate::views::key::NewKey;
use crate::views::state_page;

fn path_of(token: &str) -> String {
    "/enrol/".to_string() + token
}

pub async fn page(State(p): State<Arc<Portal>>, c: Ctx, Path(token): Path<String>) -> Response {
    let path = path_of(&token);
    if !p.limit_address(Limit::Page, &c) {
        return p.refuse(&c, Refused::AddressLimit, None, &path).await;
    }
    let Some(Ok(state)) = invite_state(&p, &token).await else {
        return p.failure(&c, &path);
    };
    let InviteState::Usable { user, .. } = state else {
        return refused_link(&p, &c, state, &path).await;
    };
    let hash = token_hash(&token);
    // The key already shown to this session for this invite, or a new one (in a new
    // session: the one place a visitor without a sign-in gets a table entry).
    let existing = p
        .with_session(c.sid.as_deref(), |s| {
            if s.pending.as_ref().is_none_or(|pd| pd.invite != hash) {
                s.pending = TotpSecret::generate().ok().map(|secret| ShownKey {
                    invite: hash,
                    user: user.clone(),
                    secret,
                });
            }
            s.pending
                .as_ref()
                .map(|pd| Zeroizing::new(pd.secret.bytes().to_vec()))
        })
        .flatten();
    let (sid, bytes, cookie) = match (existing, c.sid.clone()) {
        (Some(bytes), Some(sid)) => (sid, bytes, HeaderMap::new()),
        _ => {
            let Ok(secret) = TotpSecret::generate() else {
                return p.failure(&c, &path);
            };
            let bytes = Zeroizing::new(secret.bytes().to_vec());
            let pending = ShownKey {
                invite: hash,
                user: user.clone(),
                secret,
            };
            let Some(sid) = p.sessions.create(|s| s.pending = Some(pending)) else {
                return p.failure(&c, &path);
            };
            let cookie = p.cookie(&sid);
            (sid, bytes, cookie)
        }
    };
    let csrf = p.sessions.csrf(&sid);
    let Ok(secret) = TotpSecret::from_bytes(&bytes) else {
        return p.failure(&c, &path);
    };
    let new = NewKey {
        user: &user,
        account: user.as_str(),
        secret: &secret,
        csrf: &csrf,
    };
    enrol::page(&p, &c, &path, &new, Step::Scan, cookie)
}

pub async fn save(
    State(p): State<Arc<Portal>>,
    c: Ctx,
    Path(token): Path<String>,
    body: Body,
) -> Response {
    let path = path_of(&token);
    let hash = token_hash(&token);
    if !p.limit_address(Limit::Post, &c) {
        return p.refuse(&c, Refused::AddressLimit, None, &path).await;
    }
    if !p.limit(Limit::Invite, &HEXLOWER.encode(&hash)) {
        return p.refuse(&c, Refused::InviteLimit, None, &path).await;
    }
    let form = match read_form(&p, &c, body, &path).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = check_csrf(&p, &c, &form, &path, false).await {
        return r;
    }
    // The key shown to this session for this very invite.
    let pending = p.with_session(c.sid.as_deref(), |s| {
        s.pending
            .as_ref()
            .filter(|pd| pd.invite == hash)
            .map(|pd| (pd.user.clone(), Zeroizing::new(pd.secret.bytes().to_vec())))
    });
    let csrf = c.sid.as_deref().map(|sid| p.sessions.csrf(sid));
    let (Some(Some((user, bytes))), Some(csrf)) = (pending, csrf) else {
        // No key was shown here for this link (or it timed out): say what the link is.
        if let Some(Ok(
            st @ (InviteState::Used { .. } | InviteState::Expired { .. } | InviteState::Unknown),
        )) = invite_state(&p, &token).await
        {
            return refused_link(&p, &c, st, &path).await;
        }
        return p.refuse(&c, Refused::SessionMissing, None, &path).await;
    };
    let Ok(secret) = TotpSecret::from_bytes(&bytes) else {
        return p.failure(&c, &path);
    };
    let (code, tok, key, ip) = (
        form.field("code"),
        token.clone(),
        secret.clone(),
        c.ip_text(),
    );
    let result = p
        .run(move |core| {
            core.invites(ACTOR)
                .enrol(&tok, &key, &code, ip.as_deref(), now())
        })
        .await;
    match result {
        Some(Ok(InviteEnrol::Linked { user })) => {
            p.metrics.enrolled("invite");
            // The last page that shows the key: then it is gone from memory too.
            let _ = p.with_session(c.sid.as_deref(), |s| s.pending = None);
            let new = NewKey {
                user: &user,
                account: user.as_str(),
                secret: &secret,
                csrf: &csrf,
            };
            enrol::page(&p, &c, &path, &new, Step::Linked, HeaderMap::new())
        }
        Some(Ok(InviteEnrol::WrongCode)) => {
            let new = NewKey {
                user: &user,
                account: user.as_str(),
                secret: &secret,
                csrf: &csrf,
            };
            enrol::page(&p, &c, &path, &new, Step::WrongCode, HeaderMap::new())
        }
        Some(Ok(InviteEnrol::Refused(state))) => {
            let _ = p.with_session(c.sid.as_deref(), |s| s.pending = None);
            state_page(&p, &c, &state, &path)
        }
        _ => p.failure(&c, &path),
    }
}

/// What the link `token` is now.
async fn invite_state(
    p: &Arc<Portal>,
    token: &str,
) -> Option<Result<InviteState, mfa_core::CoreError>> {
    let tok = token.to_string();
    p.run(move |core| core.invites(ACTOR).state(&tok, now()))
        .await
}

/// A link that does not enrol: audited through the core, and the page that says why.
async fn refused_link(p: &Arc<Portal>, c: &Ctx, state: InviteState, path: &str) -> Response {
    let (st, ip) = (state.clone(), c.ip_text());
    let _ = p
        .run(move |core| core.invites(ACTOR).refused(&st, ip.as_deref(), now()))
        .await;
    state_page(p, c, &state, path)
}
