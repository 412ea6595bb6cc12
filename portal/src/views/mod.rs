//! Pages: each view turns what a handler got from the core into a response (through
//! [`crate::page::frame`], every text escaped). No view calls the core.

pub mod account;
pub mod enrol;
pub mod key;
pub mod push;
pub mod replace;
pub mod sign_in;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mfa_core::invite::InviteState;

use crate::app::Portal;
use crate::client::Ctx;
use crate::page::{esc, frame, frame_with, html, html_script, message};

/// A note on top of a page: `class` "ok" or "err"; found by its id (`#message`).
pub fn note(class: &str, text: &str) -> String {
    format!("<p class=\"{class}\" id=\"message\">{}</p>", esc(text))
}

/// A note announced as a status (the pages that show a key).
pub fn status_note(class: &str, text: &str) -> String {
    format!(
        "<p class=\"{class}\" id=\"message\" role=\"status\">{}</p>",
        esc(text)
    )
}

impl Portal {
    /// A page: `body` under `title`, with the security headers and `headers`.
    pub fn page(
        &self,
        c: &Ctx,
        status: StatusCode,
        title: &str,
        path: &str,
        body: &str,
        headers: HeaderMap,
    ) -> Response {
        html(
            status,
            frame(&self.brand, c.lang, title, path, body),
            self.secure,
            headers,
        )
    }

    /// A page with its own script `script` (the two pages of push approval).
    pub fn script_page(
        &self,
        c: &Ctx,
        status: StatusCode,
        title: &str,
        path: &str,
        body: &str,
        script: &str,
    ) -> Response {
        html_script(
            status,
            frame_with(&self.brand, c.lang, title, path, body, Some(script)),
            self.secure,
            HeaderMap::new(),
        )
    }

    /// A page that says one thing (a used link, a refused form).
    pub fn msg(
        &self,
        c: &Ctx,
        status: StatusCode,
        title: &str,
        text: &str,
        path: &str,
    ) -> Response {
        message(&self.brand, c.lang, status, title, text, path, self.secure)
    }

    /// Something failed (the store, the random source): nothing was done.
    pub fn failure(&self, c: &Ctx, path: &str) -> Response {
        let t = c.lang.t();
        self.msg(
            c,
            StatusCode::INTERNAL_SERVER_ERROR,
            t.refused_title,
            t.failure,
            path,
        )
    }
}

/// The page of a link that does not enrol (used, expired, unknown, enrolled already).
pub fn state_page(p: &Portal, c: &Ctx, state: &InviteState, path: &str) -> Response {
    let t = c.lang.t();
    let (status, title, text) = match state {
        InviteState::Used { .. } => (StatusCode::GONE, t.used_title, t.used),
        InviteState::Expired { .. } => (StatusCode::GONE, t.expired_title, t.expired),
        InviteState::AlreadyEnrolled { .. } => (StatusCode::CONFLICT, t.enrolled_title, t.enrolled),
        InviteState::Unknown | InviteState::Usable { .. } => {
            (StatusCode::NOT_FOUND, t.unknown_title, t.unknown)
        }
    };
    p.msg(c, status, title, text, path)
}

/// The home page: what the portal is for, and the way to "My account".
pub fn home(p: &Portal, c: &Ctx) -> Response {
    let t = c.lang.t();
    let body = format!(
        "<p>{}</p><p><a href=\"/account?lang={}\">{}</a></p>",
        esc(t.home_intro),
        c.lang.code(),
        esc(t.my_account)
    );
    p.page(c, StatusCode::OK, t.portal, "/", &body, HeaderMap::new())
}
