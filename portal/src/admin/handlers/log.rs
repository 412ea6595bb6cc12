//! `GET /admin/log?user=&since=`: the audit trail (what `mfactl log` shows), newest first,
//! every role.

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use mfa_core::CoreError;
use mfa_core::login::now;
use mfa_core::store::AuditQuery;

use crate::admin::BASE;
use crate::admin::handlers::Admin;
use crate::admin::views::frame::{self, q};
use crate::admin::views::log::{self as view, WINDOWS};

/// Events the page shows at most.
const SHOWN: usize = 500;

pub async fn page(a: Admin, Query(params): Query<HashMap<String, String>>) -> Response {
    let c = &a.c;
    let t = c.t();
    let user = params.get("user").cloned().unwrap_or_default();
    let since = params
        .get("since")
        .filter(|s| WINDOWS.iter().any(|(w, _)| w == s))
        .cloned()
        .unwrap_or_else(|| "24h".to_string());
    let secs = WINDOWS
        .iter()
        .find(|(w, _)| *w == since)
        .map_or(86_400, |(_, s)| *s);
    let here = format!("{BASE}/log?user={}&since={since}", q(&user));
    if user.len() > 256 {
        return a.page(
            StatusCode::BAD_REQUEST,
            t.log_title,
            &here,
            &frame::note("err", t.search_bad),
        );
    }
    let u = user.clone();
    let read = a
        .run(move |core, _| {
            let name = if u.trim().is_empty() {
                None
            } else {
                Some(core.user_name(u.trim())?.to_string())
            };
            let events = core.store().audit(&AuditQuery {
                user: name,
                since: Some(now().saturating_sub(secs)),
                limit: None,
            })?;
            Ok::<_, CoreError>(events)
        })
        .await;
    let events = match read {
        Some(Ok(e)) => e,
        Some(Err(e @ CoreError::BadUserName { .. })) => {
            return a.page(
                StatusCode::BAD_REQUEST,
                t.log_title,
                &here,
                &frame::note("err", &e.to_string()),
            );
        }
        _ => return a.failure(),
    };
    let more = events.len().saturating_sub(SHOWN);
    let newest: Vec<_> = events.into_iter().rev().take(SHOWN).collect();
    let body = view::page(t, &newest, more, &user, &since, &c.zone);
    a.page(StatusCode::OK, t.log_title, &here, &body)
}
