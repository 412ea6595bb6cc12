//! The roll-out: `GET /admin/rollout` (the go-live, the counts and pictures, a page of the
//! report), `GET /admin/rollout.csv` (the report, streamed from the store as it is read),
//! `POST /admin/rollout` (the go-live, invites for everyone not enrolled: the admin role).

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use mfa_config::{GoLiveEdit, format_utc};
use mfa_core::invite::invite_link;
use mfa_core::login::now;
use mfa_core::names::name_prefix;
use mfa_core::report::{Report, Row, RowKind, RowQuery, csv_cell};
use mfa_core::store::StoreError;
use mfa_core::{Core, CoreError};
use tokio::sync::mpsc;

use crate::admin::handlers::{Admin, Posted, current_config};
use crate::admin::views::frame::{self, q};
use crate::admin::views::rollout::{self as view, Facts, kind_param, parse_kind};
use crate::admin::{BASE, Counted, TOTALS_FOR_SECS};

/// Rows a page of the report holds.
const PAGE: usize = 50;

/// The filter of a request: the name prefix as typed, the kind, the page's start.
struct Filter {
    query: String,
    kind: Option<RowKind>,
    after: Option<String>,
}

impl Filter {
    fn of(params: &HashMap<String, String>) -> Option<Filter> {
        let query = params.get("q").cloned().unwrap_or_default();
        let kind = match params.get("kind").map(String::as_str) {
            None | Some("") => None,
            Some(k) => Some(parse_kind(k)?),
        };
        let after = params.get("after").filter(|s| !s.is_empty()).cloned();
        if query.len() > 256 || after.as_ref().is_some_and(|a| a.len() > 256) {
            return None;
        }
        Some(Filter { query, kind, after })
    }

    fn here(&self) -> String {
        format!(
            "{BASE}/rollout?q={}&kind={}{}",
            q(&self.query),
            self.kind.map(kind_param).unwrap_or(""),
            self.after
                .as_deref()
                .map(|a| format!("&after={}", q(a)))
                .unwrap_or_default()
        )
    }
}

/// Counts the roll-out (every record, streamed), as `mfactl report` does.
fn count(report: &Report<'_>, t: i64) -> Result<Counted, CoreError> {
    Ok(Counted {
        at: t,
        totals: report.totals()?,
        open_invites: report.open_invites(),
        expired_invites: report.expired_invites(),
        never_seen: report.invited_only().len(),
        first_invite: report.first_invite(),
    })
}

/// `GET /admin/rollout?q=&kind=&after=&recount=1`.
pub async fn page(a: Admin, Query(params): Query<HashMap<String, String>>) -> Response {
    let c = &a.c;
    let Some(filter) = Filter::of(&params) else {
        let t = c.t();
        return a.page(
            StatusCode::BAD_REQUEST,
            t.rollout_title,
            &format!("{BASE}/rollout"),
            &frame::note("err", t.search_bad),
        );
    };
    let recount = params.contains_key("recount");
    show(&a, &filter, recount, String::new(), StatusCode::OK).await
}

async fn show(
    a: &Admin,
    filter: &Filter,
    recount: bool,
    note: String,
    status: StatusCode,
) -> Response {
    let t = a.c.t();
    let cached = a
        .con
        .counted
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .filter(|c| !recount && now() - c.at < TOTALS_FOR_SECS);
    let (query, kind, after) = (filter.query.clone(), filter.kind, filter.after.clone());
    let read = a
        .run(move |core, _op| {
            let (cfg, problem) = current_config(core);
            let t = now();
            let report = Report::new(core, &cfg, t)?;
            let counted = match cached {
                Some(c) => c,
                None => count(&report, t)?,
            };
            let prefix = name_prefix(&cfg, &query)?;
            let page = report.page(&RowQuery {
                prefix,
                after,
                kind,
                limit: PAGE,
            })?;
            Ok::<_, CoreError>((cfg, problem, counted, page, t))
        })
        .await;
    let (cfg, problem, counted, page, t_now) = match read {
        Some(Ok(v)) => v,
        Some(Err(CoreError::BadUserName { .. })) => {
            return a.page(
                StatusCode::BAD_REQUEST,
                t.rollout_title,
                &filter.here(),
                &frame::note("err", t.search_bad),
            );
        }
        _ => return a.failure(),
    };
    if let Ok(mut c) = a.con.counted.lock() {
        *c = Some(counted.clone());
    }
    let csrf = a.csrf();
    let mut top = note;
    if let Some(p) = problem {
        top.push_str(&frame::note(
            "warn",
            &format!("{} {p}", t.config_unreadable),
        ));
    }
    let body = view::page(
        t,
        &Facts {
            cfg: &cfg,
            counted: &counted,
            rows: &page.rows,
            next: page.next.as_deref(),
            query: &filter.query,
            kind: filter.kind,
            paged: filter.after.is_some(),
            zone: &a.c.zone,
            csrf: &csrf,
            role: a.role,
            now: t_now,
        },
        &top,
    );
    a.page(status, t.rollout_title, &filter.here(), &body)
}

/// `POST /admin/rollout`: `go-live-set` (with `date`), `go-live-clear`, `bulk-invites`.
pub async fn post(Posted { form, a }: Posted) -> Response {
    let (con, c) = (&a.con, &a.c);
    let t = c.t();
    let filter = Filter {
        query: String::new(),
        kind: None,
        after: None,
    };
    let action = form.field("action").to_string();
    let date = form.field("date").trim().to_string();
    match action.as_str() {
        "go-live-set" | "go-live-clear" => {
            let edit = if action == "go-live-clear" {
                GoLiveEdit::Never
            } else {
                GoLiveEdit::Date(date)
            };
            let r = a.run(move |_, op| op.set_go_live(&edit, now())).await;
            con.recount();
            match r {
                Some(Ok(())) => {
                    let note = frame::note(
                        "ok",
                        &format!(
                            "{} {}",
                            t.golive_written,
                            t.reload_hint.replace(
                                "{file}",
                                &con.p.core.config().source.display().to_string()
                            )
                        ),
                    );
                    show(&a, &filter, true, note, StatusCode::OK).await
                }
                Some(Err(e)) => refused(&a, &filter, &e).await,
                None => a.failure(),
            }
        }
        "bulk-invites" => bulk_invites(&a, &filter).await,
        _ => a.page(
            StatusCode::BAD_REQUEST,
            t.refused_title,
            &format!("{BASE}/rollout"),
            &frame::note("err", t.bad_form),
        ),
    }
}

async fn refused(a: &Admin, filter: &Filter, e: &CoreError) -> Response {
    if let Some(r) = a.ended(e) {
        return r;
    }
    match a.refusal_text(e) {
        Some((status, text)) => show(a, filter, false, frame::note("err", &text), status).await,
        None => a.failure(),
    }
}

/// One invite for every stored user who is not enrolled (`mfactl invite --unenrolled
/// --format csv`): a CSV of user, link, expiry to download for a mail merge. The links
/// are shown once: the store keeps only their hashes.
async fn bulk_invites(a: &Admin, filter: &Filter) -> Response {
    let t = a.c.t();
    let made = a
        .run(move |core, op| {
            let (cfg, _) = current_config(core);
            if cfg.portal.base_url().is_none() {
                return Ok(None);
            }
            let secs = cfg.portal.invite_valid.secs_i64();
            let t = now();
            let links = op.invite_unenrolled(secs, t)?;
            Ok::<_, CoreError>(Some((cfg, links, t.saturating_add(secs))))
        })
        .await;
    a.con.recount();
    let (cfg, links, until) = match made {
        Some(Ok(Some(v))) => v,
        Some(Ok(None)) => {
            return show(
                a,
                filter,
                false,
                frame::note("err", t.no_public_url),
                StatusCode::CONFLICT,
            )
            .await;
        }
        Some(Err(e)) => return refused(a, filter, &e).await,
        None => return a.failure(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let until = format_utc(until);
    let mut ok = w.write_record(["user", "link", "expires"]).is_ok();
    for (user, token) in &links {
        let link = invite_link(&cfg, token).unwrap_or_default();
        ok &= w
            .write_record([csv_cell(user.as_str()), link, until.clone()])
            .is_ok();
    }
    let Ok(bytes) = w.into_inner() else {
        return a.failure();
    };
    if !ok {
        return a.failure();
    }
    attachment(Body::from(bytes), "invites.csv", a.con.p.secure)
}

/// A CSV download: the security headers, no caching (the invites' CSV holds links).
fn attachment(body: Body, file: &'static str, secure: bool) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    crate::page::secure_headers(h, secure);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /admin/rollout.csv?q=&kind=`: the report's rows (the handbook's columns: name,
/// MFA created, MFA changed, last login, login count; and the status), filtered as the
/// page is, streamed: the store's records are read one at a time off the async threads and
/// sent as they are written, so a million users never sit in memory. A client that goes
/// away stops the read.
pub async fn csv(a: Admin, Query(params): Query<HashMap<String, String>>) -> Response {
    let (con, c) = (&a.con, &a.c);
    let Some(filter) = Filter::of(&params) else {
        return a.page(
            StatusCode::BAD_REQUEST,
            c.t().rollout_title,
            &format!("{BASE}/rollout"),
            &frame::note("err", c.t().search_bad),
        );
    };
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let core = con.p.core.clone();
    let (query, kind) = (filter.query, filter.kind);
    // The role was checked for this request; the rows are the core's report. A failure
    // ends the download early (the client sees it cut short).
    tokio::task::spawn_blocking(move || {
        let _ = stream_rows(&core, &query, kind, &tx);
    });
    attachment(Body::new(Chunks(rx)), "rollout.csv", con.p.secure)
}

/// Writes the report's CSV into `tx`, a chunk at a time.
fn stream_rows(
    core: &Core,
    query: &str,
    kind: Option<RowKind>,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(), CoreError> {
    let (cfg, _) = current_config(core);
    let prefix = name_prefix(&cfg, query)?;
    let t = now();
    let report = Report::new(core, &cfg, t)?;
    let new_writer = || csv::Writer::from_writer(Vec::with_capacity(64 * 1024));
    let mut w = new_writer();
    let head = [
        "user",
        "mfa_created",
        "mfa_changed",
        "last_login",
        "login_count",
        "status",
    ];
    let bad = || StoreError::Aborted(mfa_core::store::Abort::Bug("writing the CSV"));
    w.write_record(head).map_err(|_| bad())?;
    let iso = |v: Option<i64>| v.map(format_utc).unwrap_or_default();
    // A chunk goes out once it holds 48 KiB (or at the end): the writer is swapped for a
    // new one and the old one's bytes are sent.
    let send = |w: &mut csv::Writer<Vec<u8>>, last: bool| -> Result<(), StoreError> {
        w.flush().map_err(|_| bad())?;
        let empty = w.get_ref().is_empty();
        if (empty || !last) && w.get_ref().len() < 48 * 1024 {
            return Ok(());
        }
        let full = std::mem::replace(w, new_writer());
        let bytes = full.into_inner().map_err(|_| bad())?;
        tx.blocking_send(Bytes::from(bytes)).map_err(|_| {
            StoreError::Aborted(mfa_core::store::Abort::Bug("the download was closed"))
        })
    };
    let mut row = |r: Row| -> Result<(), StoreError> {
        if !r.user.name.as_str().starts_with(&prefix) || kind.is_some_and(|k| r.kind(t) != k) {
            return Ok(());
        }
        let u = &r.user;
        w.write_record([
            csv_cell(u.name.as_str()),
            iso(u.mfa_created),
            iso(u.mfa_changed),
            iso(u.last_login),
            u.login_count.to_string(),
            csv_cell(&r.status_text()),
        ])
        .map_err(|_| bad())?;
        send(&mut w, false)
    };
    report.each_row(&mut row)?;
    send(&mut w, true)?;
    Ok(())
}

/// A response body of the chunks a channel brings.
struct Chunks(mpsc::Receiver<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(http_body::Frame::data(b))))
    }
}
