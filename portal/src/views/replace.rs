//! "Replace key": the new key (QR code and key) and the form that confirms it with a code
//! from the app that holds it, or cancels.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use zeroize::Zeroizing;

use crate::app::Portal;
use crate::client::Ctx;
use crate::page::esc;
use crate::text::fill;
use crate::views::key::{self, NewKey};
use crate::views::status_note;

/// The page; after `wrong_code`, it says so (the same key again).
pub fn page(p: &Portal, c: &Ctx, new: &NewKey<'_>, wrong_code: bool) -> Response {
    let t = c.lang.t();
    let Ok(key) = key::block(t, p, new.account, new.secret) else {
        return p.failure(c, "/account");
    };
    let (status, note) = if wrong_code {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            status_note("err", t.replace_wrong_code),
        )
    } else {
        (StatusCode::OK, String::new())
    };
    let lang = c.lang.code();
    let csrf = esc(new.csrf);
    let body = Zeroizing::new(format!(
        "{note}<p>{} <strong id=\"user\">{}</strong></p><p>{}</p><ol><li>{}</li><li>{}{}</li><li>{}</li></ol><p id=\"names\">{}</p><form method=\"post\" action=\"/account?lang={lang}\" id=\"replace\"><input type=\"hidden\" name=\"action\" value=\"replace-confirm\"><label for=\"code\">{}</label><input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9 ]{{6,10}}\" maxlength=\"10\" required autofocus><label class=\"check\"><input type=\"checkbox\" id=\"end-old\" name=\"end_old\" value=\"1\"> {}</label><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"> <button type=\"submit\" id=\"replace-confirm\">{}</button></form><form method=\"post\" action=\"/account?lang={lang}\"><input type=\"hidden\" name=\"action\" value=\"replace-cancel\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\" id=\"replace-cancel\">{}</button></form>",
        esc(t.signed_in_as),
        esc(new.user.as_str()),
        esc(t.replace_intro),
        esc(t.replace_step_add),
        esc(t.step_scan),
        key.as_str(),
        esc(t.replace_step_code),
        esc(&fill(
            t.replace_names,
            &[
                ("new", new.account),
                ("issuer", &p.core.config().totp.issuer),
                ("user", new.user.as_str()),
            ]
        )),
        esc(t.replace_code),
        esc(t.replace_end_old),
        esc(t.replace_confirm),
        esc(t.replace_cancel),
    ));
    p.page(
        c,
        status,
        t.replace_title,
        "/account",
        &body,
        HeaderMap::new(),
    )
}
