//! The enrolment page of an invite link: the steps, the QR code and key, and (until linked)
//! the code form, whose code field is the page's first input.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use zeroize::Zeroizing;

use crate::app::Portal;
use crate::client::Ctx;
use crate::page::esc;
use crate::text::fill;
use crate::views::key::{self, NewKey};
use crate::views::status_note;

/// Where the enrolment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The key shown: scan it and type a code.
    Scan,
    /// A code that does not match the key: the same key again.
    WrongCode,
    /// Linked: the key is the user's; this is the last page that shows it.
    Linked,
}

/// The enrolment page at `path` (the link's own), with `headers` (a new session's cookie).
/// Linked, it says what happens at the next sign-in and offers the same key to another
/// device, the last time it is shown.
pub fn page(
    p: &Portal,
    c: &Ctx,
    path: &str,
    new: &NewKey<'_>,
    step: Step,
    headers: HeaderMap,
) -> Response {
    let t = c.lang.t();
    let (status, note) = match step {
        Step::Scan => (StatusCode::OK, None),
        Step::WrongCode => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("err", t.wrong_code)),
        ),
        Step::Linked => (StatusCode::OK, Some(("ok", t.linked))),
    };
    let Ok(key) = key::block(t, p, new.account, new.secret) else {
        return p.failure(c, path);
    };
    let mut body = Zeroizing::new(String::new());
    if let Some((class, text)) = note {
        body.push_str(&status_note(class, text));
    }
    body.push_str(&format!(
        "<p>{}: <strong id=\"user\">{}</strong></p>",
        esc(t.account_for),
        esc(new.user.as_str()),
    ));
    if step == Step::Linked {
        body.push_str(&linked(p, c, &key));
        return p.page(c, status, t.enrol_title, path, &body, headers);
    }
    body.push_str(&format!(
        "<ol class=\"steps\"><li>{}</li><li>{}</li><li>{}{}</li><li>{}</li></ol>",
        esc(t.step_install),
        esc(t.step_add),
        esc(t.step_scan),
        key.as_str(),
        esc(t.step_code),
    ));
    // Last, as the manuals have it; its code field is still the page's first input (the
    // steps above hold none).
    body.push_str(&format!(
        "<form method=\"post\" id=\"enrol\"><label for=\"code\">{}</label><input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9 ]{{6,10}}\" maxlength=\"10\" required autofocus><input type=\"hidden\" name=\"csrf\" value=\"{}\"> <button type=\"submit\">{}</button></form>",
        esc(t.code),
        esc(new.csrf),
        esc(t.save)
    ));
    p.page(c, status, t.enrol_title, path, &body, headers)
}

/// After Save: what the next sign-in asks (from outside the trusted networks where there are
/// any), what to do with a new or lost phone, and the same key for another device.
fn linked(p: &Portal, c: &Ctx, key: &str) -> String {
    let t = c.lang.t();
    let cfg = p.core.config();
    let next = if cfg.policy.trusted_networks.is_empty() {
        t.next_always
    } else {
        t.next_outside
    };
    let period = cfg.totp.params().period.to_string();
    let lang = c.lang.code();
    format!(
        "<section id=\"next\" aria-labelledby=\"next-title\"><h2 id=\"next-title\">{}</h2><p>{}</p><p>{}</p></section><section id=\"another\" aria-labelledby=\"another-title\"><h2 id=\"another-title\">{}</h2><p>{}</p>{key}</section><p><a class=\"button\" id=\"done\" href=\"/account?lang={lang}\">{}</a></p>",
        esc(t.next_title),
        esc(&fill(next, &[("period", &period)])),
        esc(t.next_lost),
        esc(t.another_title),
        esc(t.another_intro),
        esc(t.done),
    )
}
