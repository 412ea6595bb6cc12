//! The console's page frame: its header (who is signed in, in which role, the pages, the
//! other language, sign out), its style sheet, the security headers of every page.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mfa_core::roles::Role;

use crate::admin::client::{Ctx, LANG_COOKIE};
use crate::admin::text::Tx;
use crate::admin::{BASE, Console};
use crate::page::{esc, html};
use crate::text::Lang;

/// The console's styles (no script anywhere; `style-src 'self'`).
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:72rem;margin:1.5rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.4}
header{display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;align-items:baseline;border-bottom:1px solid #ccc;margin-bottom:1rem;padding-bottom:.4rem}
header nav a{margin-right:.8rem}header .who{margin-left:auto}header form{display:inline}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:1.6rem}
.ok{background:#e5f6e8;border-left:.3rem solid #1e7b34;padding:.6rem}
.err{background:#fdecea;border-left:.3rem solid #b3261e;padding:.6rem}
.warn{background:#fff4e0;border-left:.3rem solid #a15c00;padding:.6rem}
table{border-collapse:collapse;margin:.4rem 0}td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right}
input,select{font-size:1rem;padding:.25rem;margin:.15rem 0}button{font-size:1rem;padding:.3rem .9rem;margin:.2rem .2rem .2rem 0}
form.inline{display:inline}dl.facts{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dl.facts dt{font-weight:600}
.key{font-family:ui-monospace,monospace;font-size:1.3rem;letter-spacing:.05em}.qr svg{width:16rem;height:16rem}
.muted{color:#555}.pager{margin:.6rem 0}.pager a{margin-right:1rem}
.chart{max-width:100%;height:auto}
";

/// A link of the header, marked where it is the page shown.
fn nav(here: &str, path: &str, label: &str) -> String {
    let current = if here == path {
        " aria-current=\"page\""
    } else {
        ""
    };
    format!("<a href=\"{}\"{current}>{}</a>", esc(path), esc(label))
}

/// Who is signed in, as the header shows them.
pub struct Who<'a> {
    pub name: &'a str,
    pub role: Role,
    /// The CSRF token of the sign-out form.
    pub csrf: &'a str,
}

/// The words of a role.
pub fn role_name(t: &Tx, role: Role) -> &'static str {
    match role {
        Role::Helpdesk => t.role_helpdesk,
        Role::Admin => t.role_admin,
    }
}

/// The page: `body` under `title`; `here` is the page's path (and query, without `lang`),
/// for the link to the other language and the header's marks.
pub fn page(
    con: &Console,
    c: &Ctx,
    status: StatusCode,
    title: &str,
    here: &str,
    who: Option<&Who<'_>>,
    body: &str,
) -> Response {
    let t = c.t();
    let lang = c.lang();
    let other = match lang {
        Lang::En => "nl",
        Lang::Nl => "en",
    };
    let sep = if here.contains('?') { '&' } else { '?' };
    let path = here.split('?').next().unwrap_or(here);
    let head = match who {
        Some(w) => format!(
            "<nav>{}{}{}{}</nav><span class=\"who\" id=\"who\">{} <strong>{}</strong> ({})</span><form method=\"post\" action=\"{BASE}\"><input type=\"hidden\" name=\"action\" value=\"signout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" id=\"signout\">{}</button></form>",
            nav(path, &format!("{BASE}/users"), t.nav_users),
            nav(path, &format!("{BASE}/rollout"), t.nav_rollout),
            nav(path, &format!("{BASE}/networks"), t.nav_networks),
            nav(path, &format!("{BASE}/log"), t.nav_log),
            esc(t.signed_in_as),
            esc(w.name),
            esc(role_name(t, w.role)),
            esc(w.csrf),
            esc(t.sign_out),
        ),
        None => String::new(),
    };
    let doc = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"referrer\" content=\"no-referrer\"><title>{} \u{2013} {}</title><link rel=\"stylesheet\" href=\"{BASE}/style.css\"></head><body><header><strong>{}</strong>{head}<a id=\"lang\" href=\"{}{sep}lang={other}\" hreflang=\"{other}\">{}</a></header><main><h1>{}</h1>{body}</main></body></html>\n",
        lang.code(),
        esc(title),
        esc(t.console),
        esc(t.console),
        esc(here),
        esc(t.lang_other),
        esc(title),
    );
    let mut headers = HeaderMap::new();
    if c.lang_chosen {
        con.set_cookie(&mut headers, LANG_COOKIE, lang.code(), 365 * 86_400);
    }
    html(status, doc, con.p.secure, headers)
}

/// A note on top of a page: `class` "ok", "warn" or "err"; found by its id (`#message`).
pub fn note(class: &str, text: &str) -> String {
    format!(
        "<p class=\"{class}\" id=\"message\" role=\"status\">{}</p>",
        esc(text)
    )
}

/// A page that says one thing (a refusal, a failure).
pub fn message(
    con: &Console,
    c: &Ctx,
    status: StatusCode,
    title: &str,
    text: &str,
    who: Option<&Who<'_>>,
) -> Response {
    page(con, c, status, title, BASE, who, &note("err", text))
}

/// A hidden form field.
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        esc(name),
        esc(value)
    )
}

/// A form of one button that posts `action` (and the CSRF token, and `extra` fields) to
/// `path`.
pub fn button_form(
    path: &str,
    csrf: &str,
    action: &str,
    extra: &[(&str, &str)],
    id: &str,
    label: &str,
) -> String {
    let mut fields = hidden("action", action) + &hidden("csrf", csrf);
    for (k, v) in extra {
        fields.push_str(&hidden(k, v));
    }
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\">{fields}<button type=\"submit\" id=\"{}\">{}</button></form>",
        esc(path),
        esc(id),
        esc(label)
    )
}

/// `s` for a URL's query (every byte but the unreserved ones escaped).
pub fn q(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
