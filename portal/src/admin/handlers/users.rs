//! The users: `GET /admin/users` (the search, a page at a time from the store's index of
//! the names), `GET /admin/user?name=` (one user), `POST /admin/user` (its actions, each
//! through the core's `Operator`).

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use mfa_core::invite::invite_link;
use mfa_core::login::now;
use mfa_core::names::name_prefix;
use mfa_core::report::{Report, RowQuery};
use mfa_core::{CoreError, DeviceId, TotpSecret};

use crate::admin::BASE;
use crate::admin::handlers::{Admin, Posted, current_config};
use crate::admin::views::frame::{self, q};
use crate::admin::views::users::{self as view, ListFacts, UserFacts};

/// Users a page of the search holds.
pub const PAGE: usize = 50;
/// Logins a user's page lists.
const RECENT_LOGINS: usize = 10;

/// `GET /admin/users?q=PREFIX&after=NAME`.
pub async fn list(a: Admin, Query(params): Query<HashMap<String, String>>) -> Response {
    let c = &a.c;
    let t = c.t();
    let raw = params.get("q").cloned().unwrap_or_default();
    let after = params.get("after").filter(|s| !s.is_empty()).cloned();
    let here = format!(
        "{BASE}/users?q={}{}",
        q(&raw),
        after
            .as_deref()
            .map(|a| format!("&after={}", q(a)))
            .unwrap_or_default()
    );
    if raw.len() > 256 || after.as_ref().is_some_and(|a| a.len() > 256) {
        return a.page(
            StatusCode::BAD_REQUEST,
            t.users_title,
            &here,
            &frame::note("err", t.search_bad),
        );
    }
    let (r, after2) = (raw.clone(), after.clone());
    let found = a
        .run(move |core, _op| {
            let (cfg, _) = current_config(core);
            let prefix = name_prefix(&cfg, &r)?;
            let t = now();
            let report = Report::without_invites(core, &cfg, t);
            let page = report.page(&RowQuery {
                prefix,
                after: after2,
                kind: None,
                limit: PAGE,
            })?;
            Ok::<_, CoreError>((page, t))
        })
        .await;
    let (page, t_now) = match found {
        Some(Ok(v)) => v,
        Some(Err(CoreError::BadUserName { .. })) => {
            return a.page(
                StatusCode::BAD_REQUEST,
                t.users_title,
                &here,
                &frame::note("err", t.search_bad),
            );
        }
        _ => return a.failure(),
    };
    let csrf = a.csrf();
    let body = view::list(
        t,
        &ListFacts {
            query: &raw,
            rows: &page.rows,
            next: page.next.as_deref(),
            paged: after.is_some(),
            zone: &c.zone,
            csrf: &csrf,
            now: t_now,
        },
    );
    a.page(StatusCode::OK, t.users_title, &here, &body)
}

/// `GET /admin/user?name=NAME`.
pub async fn page(a: Admin, Query(params): Query<HashMap<String, String>>) -> Response {
    let raw = params.get("name").cloned().unwrap_or_default();
    user_page(&a, &raw, None, StatusCode::OK).await
}

/// One user's page, with `note` on top (an action's answer: a key, a code, a link shown
/// once), read now.
async fn user_page(a: &Admin, raw: &str, note: Option<String>, status: StatusCode) -> Response {
    let t = a.c.t();
    let raw = raw.to_string();
    let here = format!("{BASE}/user?name={}", q(&raw));
    let read = a
        .run(move |core, _op| {
            let (cfg, _) = current_config(core);
            let name = core.user_name(&raw)?;
            let t = now();
            let rec = core.store().user(&name)?;
            let row = rec.map(|r| Report::without_invites(core, &cfg, t).row(r));
            let invites = core.store().invites_of(&name)?;
            let logins = core.store().recent_logins(&name, RECENT_LOGINS, t)?;
            let devices = if cfg.push.enabled {
                Some(core.push(crate::admin::ANONYMOUS_ACTOR).devices(&name)?)
            } else {
                None
            };
            Ok::<_, CoreError>((name, row, invites, logins, devices, cfg, t))
        })
        .await;
    let (name, row, invites, logins, devices, cfg, t_now) = match read {
        Some(Ok(v)) => v,
        Some(Err(e @ CoreError::BadUserName { .. })) => {
            return a.page(
                StatusCode::BAD_REQUEST,
                t.user_title,
                &here,
                &frame::note("err", &e.to_string()),
            );
        }
        _ => return a.failure(),
    };
    let csrf = a.csrf();
    let facts = UserFacts {
        name: &name,
        row: row.as_ref(),
        invites: &invites,
        logins: &logins,
        devices: devices.as_deref(),
        remember: cfg.policy.remember.secs_i64(),
        now: t_now,
        zone: &a.c.zone,
        csrf: &csrf,
        role: a.role,
        own: name == a.who.user,
        can_invite: cfg.portal.public_url.is_some(),
    };
    let body = format!(
        "{}<p class=\"muted\"><a href=\"{BASE}/users?q={}\">{}</a> \u{b7} <a href=\"{BASE}/log?user={}\">{}</a></p>{}",
        note.unwrap_or_default(),
        q(name.as_str()),
        crate::page::esc(t.back_to_users),
        q(name.as_str()),
        crate::page::esc(t.user_log),
        view::user(t, &facts)
    );
    a.page(status, &format!("{} {}", t.user_title, name), &here, &body)
}

/// `POST /admin/user`: `action` on `user`, through the core's `Operator` (which checks the
/// role again and refuses the administrator's own account).
pub async fn post(Posted { form, a }: Posted) -> Response {
    let (con, c) = (&a.con, &a.c);
    let t = c.t();
    let raw = form.field("user").to_string();
    let action = form.field("action").to_string();
    let name = match a
        .run({
            let raw = raw.clone();
            move |core, _| core.user_name(&raw)
        })
        .await
    {
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            return a.page(
                StatusCode::BAD_REQUEST,
                t.user_title,
                BASE,
                &frame::note("err", &e.to_string()),
            );
        }
        None => return a.failure(),
    };
    if action == "unlink" {
        // Nothing changes yet: the administrator confirms first.
        let csrf = a.csrf();
        return a.page(
            StatusCode::OK,
            &format!("{} {}", t.user_title, name),
            &format!("{BASE}/user?name={}", q(name.as_str())),
            &view::confirm_unlink(t, &name, &csrf),
        );
    }
    let valid = match form.field("valid").as_str() {
        "1h" => 3600,
        "24h" => 86_400,
        _ => 8 * 3600,
    };
    let device = form.field("device").to_string();
    let n = name.clone();
    let result = a
        .run(move |core, op| -> Result<Done, CoreError> {
            let t = now();
            Ok(match action.as_str() {
                "unlink-confirm" => {
                    op.unlink(&n, t)?;
                    Done::Unlinked
                }
                "link" => {
                    let secret = TotpSecret::generate()?;
                    op.link(&n, &secret, t)?;
                    Done::Linked(secret)
                }
                "temp-access" => {
                    let code = op.temp_access(&n, valid, 1, t)?;
                    Done::TempAccess(code, t.saturating_add(valid))
                }
                "invite" => {
                    // No link without the address users open: nothing is issued.
                    let (cfg, _) = current_config(core);
                    let secs = cfg.portal.invite_valid.secs_i64();
                    if cfg.portal.base_url().is_none() {
                        return Ok(Done::NoPublicUrl);
                    }
                    let token = op.invite(&n, secs, t)?;
                    match invite_link(&cfg, &token) {
                        Some(link) => Done::Invited(link, t.saturating_add(secs)),
                        None => Done::NoPublicUrl,
                    }
                }
                "unlock" => Done::Unlocked(op.unlock(&n, t)?),
                "revoke-networks" => Done::Revoked(op.revoke_networks(&n, t)?),
                "remove-device" => match DeviceId::parse_hex(&device) {
                    Some(id) => Done::DeviceRemoved(op.remove_push_device(&n, &id, t)?),
                    None => Done::Unknown,
                },
                _ => Done::Unknown,
            })
        })
        .await;
    con.recount();
    let done = match result {
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            if let Some(r) = a.ended(&e) {
                return r;
            }
            return match a.refusal_text(&e) {
                Some((status, text)) => {
                    user_page(&a, name.as_str(), Some(frame::note("err", &text)), status).await
                }
                None => a.failure(),
            };
        }
        None => return a.failure(),
    };
    let note = match done {
        Done::Unlinked => frame::note("ok", &t.unlinked.replace("{user}", name.as_str())),
        Done::Linked(secret) => {
            let cfg = con.p.core.config();
            match view::new_key(t, &cfg.totp.issuer, &cfg.totp.params(), &name, &secret) {
                Ok(block) => block.to_string(),
                Err(_) => return a.failure(),
            }
        }
        Done::TempAccess(code, until) => view::temp_code(t, &name, &code, &a.c.zone.show(until)),
        Done::Invited(link, until) => view::invite_link(t, &name, &link, &a.c.zone.show(until)),
        Done::NoPublicUrl => frame::note("err", t.no_public_url),
        Done::Unlocked(true) => frame::note("ok", t.unlocked),
        Done::Unlocked(false) => frame::note("ok", t.was_not_locked),
        Done::Revoked(n) => frame::note("ok", &t.revoked.replace("{n}", &n.to_string())),
        Done::DeviceRemoved(true) => frame::note("ok", t.device_removed),
        Done::DeviceRemoved(false) => frame::note("err", t.device_not_found),
        Done::Unknown => {
            return a.page(
                StatusCode::BAD_REQUEST,
                t.refused_title,
                BASE,
                &frame::note("err", t.bad_form),
            );
        }
    };
    user_page(&a, name.as_str(), Some(note), StatusCode::OK).await
}

/// What an action did, for its page.
enum Done {
    Unlinked,
    Linked(TotpSecret),
    TempAccess(zeroize::Zeroizing<String>, i64),
    Invited(String, i64),
    NoPublicUrl,
    Unlocked(bool),
    Revoked(usize),
    DeviceRemoved(bool),
    Unknown,
}
