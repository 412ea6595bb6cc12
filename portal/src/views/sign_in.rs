//! The sign-in form of "My account".

use axum::http::StatusCode;
use axum::response::Response;

use crate::app::Portal;
use crate::client::Ctx;
use crate::page::esc;
use crate::views::note;

/// The sign-in form, with `error` on top where the last sign-in was refused. It makes no
/// session: its CSRF token is the MAC of the visitor's id (the cookie's, or a new one set
/// here), so any number of anonymous visits leave the session table as it was.
pub fn form(p: &Portal, c: &Ctx, error: Option<&str>) -> Response {
    let t = c.lang.t();
    let Some(sid) = p.sessions.visitor_id(c.sid.as_deref()) else {
        return p.failure(c, "/account");
    };
    let csrf = p.sessions.csrf(&sid);
    let err = error.map(|e| note("err", e)).unwrap_or_default();
    let body = format!(
        "{err}<p>{}</p><form method=\"post\" action=\"/account?lang={}\" id=\"signin\"><input type=\"hidden\" name=\"action\" value=\"signin\"><label for=\"user\">{}</label><input id=\"user\" name=\"user\" autocomplete=\"username\" maxlength=\"256\" required autofocus><label for=\"password\">{}</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" maxlength=\"1024\" required><label for=\"code\">{}</label><input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"16\" required><input type=\"hidden\" name=\"csrf\" value=\"{}\"><br><button type=\"submit\">{}</button></form>",
        esc(t.sign_in_intro),
        c.lang.code(),
        esc(t.user),
        esc(t.password),
        esc(t.code),
        esc(&csrf),
        esc(t.sign_in)
    );
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    p.page(c, status, t.my_account, "/account", &body, p.cookie(&sid))
}
