//! Trusted networks and exemptions: `GET /admin/networks` (every role sees them),
//! `POST /admin/networks` (the admin role: add, remove), through the core's `Operator`,
//! which edits the file as `mfactl trusted` and `mfactl exempt` do (comments kept, the
//! result checked, the whole internet refused) and audits the edit.

use axum::http::StatusCode;
use axum::response::Response;
use mfa_config::{Cidr, ExemptEdit, TrustedEdit};
use mfa_core::login::now;

use crate::admin::BASE;
use crate::admin::handlers::{Admin, Posted, current_config};
use crate::admin::views::frame;
use crate::admin::views::networks as view;

pub async fn page(a: Admin) -> Response {
    show(&a, String::new(), StatusCode::OK).await
}

async fn show(a: &Admin, note: String, status: StatusCode) -> Response {
    let t = a.c.t();
    let Some((cfg, problem)) = a.run(|core, _| current_config(core)).await else {
        return a.failure();
    };
    let mut top = note;
    if let Some(p) = problem {
        top.push_str(&frame::note(
            "warn",
            &format!("{} {p}", t.config_unreadable),
        ));
    }
    let csrf = a.csrf();
    let body = view::page(t, &cfg, &csrf, a.role, &top);
    a.page(
        status,
        t.networks_page_title,
        &format!("{BASE}/networks"),
        &body,
    )
}

/// An edit the form asks for.
enum Edit {
    Trusted(TrustedEdit),
    Exempt(ExemptEdit),
}

pub async fn post(Posted { form, a }: Posted) -> Response {
    let (con, c) = (&a.con, &a.c);
    let t = c.t();
    let entry = form.field("entry").trim().to_string();
    let cidr = || entry.parse::<Cidr>();
    let edit = match form.field("action").as_str() {
        "trusted-add" | "trusted-remove" => match cidr() {
            Ok(n) if form.is("action", "trusted-add") => Edit::Trusted(TrustedEdit::Add(n)),
            Ok(n) => Edit::Trusted(TrustedEdit::Remove(n)),
            Err(e) => {
                return show(&a, frame::note("err", &e), StatusCode::BAD_REQUEST).await;
            }
        },
        "exempt-user-add" => Edit::Exempt(ExemptEdit::AddUser(entry.clone())),
        "exempt-user-remove" => Edit::Exempt(ExemptEdit::RemoveUser(entry.clone())),
        "exempt-group-add" => Edit::Exempt(ExemptEdit::AddGroup(entry.clone())),
        "exempt-group-remove" => Edit::Exempt(ExemptEdit::RemoveGroup(entry.clone())),
        _ => {
            return show(&a, frame::note("err", t.bad_form), StatusCode::BAD_REQUEST).await;
        }
    };
    let r = a
        .run(move |_, op| match edit {
            Edit::Trusted(e) => op.edit_trusted(e, now()),
            Edit::Exempt(e) => op.edit_exemptions(&e, now()),
        })
        .await;
    con.recount();
    match r {
        Some(Ok(())) => {
            let note = frame::note(
                "ok",
                &format!(
                    "{} {}",
                    t.config_written,
                    t.reload_hint
                        .replace("{file}", &con.p.core.config().source.display().to_string())
                ),
            );
            show(&a, note, StatusCode::OK).await
        }
        Some(Err(e)) => {
            if let Some(r) = a.ended(&e) {
                return r;
            }
            match a.refusal_text(&e) {
                Some((status, text)) => show(&a, frame::note("err", &text), status).await,
                None => a.failure(),
            }
        }
        None => a.failure(),
    }
}
