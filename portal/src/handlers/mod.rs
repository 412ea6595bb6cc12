//! The routes' handlers: each turns a request into core calls (off the async threads) and
//! the answers into a view. One file per page: the invite link (`enrol`), "My account"
//! (`account`, its sign-in in `sign_in`, "Replace key" in `replace`), push approval's
//! registration of a phone (`phone`) and approval page (`push`), and the installed web
//! app's files (`assets`).

pub mod account;
pub mod assets;
pub mod enrol;
pub mod phone;
pub mod push;
pub mod replace;
pub mod sign_in;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::Portal;
use crate::client::Ctx;
use crate::page;
use crate::views;

pub async fn style() -> Response {
    let mut r = page::STYLE.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

pub async fn home(State(p): State<Arc<Portal>>, c: Ctx) -> Response {
    views::home(&p, &c)
}

/// A JSON answer to a page's script, with the security headers and `no-store`.
pub fn json(status: StatusCode, value: serde_json::Value, secure: bool) -> Response {
    let mut r = (status, value.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    page::secure_headers(h, secure);
    r
}

pub async fn not_found(State(p): State<Arc<Portal>>, c: Ctx) -> Response {
    let t = c.lang.t();
    p.msg(&c, StatusCode::NOT_FOUND, t.unknown_title, t.not_found, "/")
}
