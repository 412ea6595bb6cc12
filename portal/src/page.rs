//! HTML: escaping, the page frame and the security headers every response carries.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::text::Lang;

/// Escapes text for HTML content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// No script at all, styles only from /style.css, the web app's manifest and icons from
/// here, forms only to this site, never in a frame, no referrer (a link holds an invite
/// token).
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The two pages push approval needs a script for (registering a phone, deciding on a
/// request): [`CSP`] plus scripts, their fetches and the service worker from this site
/// only; never an inline script.
pub const SCRIPT_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; worker-src 'self'; style-src 'self'; img-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.45}
header{display:flex;justify-content:space-between;align-items:baseline;border-bottom:1px solid #ccc;margin-bottom:1rem}
ol li{margin:.6rem 0}.qr svg{width:16rem;height:16rem}
.decide button{display:block;width:100%;font-size:1.2rem;padding:.7rem;margin:.7rem 0}
#approve{background:#1e7b34;color:#fff;border:0}#fraud{background:#b3261e;color:#fff;border:0}button:disabled{opacity:.5}
#number{font-size:2rem;width:5rem;text-align:center;letter-spacing:.2em}
dl.request dt{font-weight:bold;margin-top:.4rem}dl.request dd{margin:0}
ul#requests a{display:block;padding:.6rem 0;font-size:1.1rem}
.key{font-family:ui-monospace,monospace;font-size:1.3rem;letter-spacing:.05em}
.ok{background:#e5f6e8;border-left:.3rem solid #1e7b34;padding:.6rem}
.err{background:#fdecea;border-left:.3rem solid #b3261e;padding:.6rem}
input{font-size:1.1rem;padding:.3rem;margin:.2rem 0}label{display:block;margin-top:.5rem}label.check input{width:auto;margin-right:.4rem}
button{font-size:1.05rem;padding:.4rem 1rem;margin-top:.6rem}table{border-collapse:collapse}td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left}
";

/// The page frame: title, the other language's link (same page), the body.
pub fn frame(lang: Lang, title: &str, path_for_lang: &str, body: &str) -> String {
    frame_with(lang, title, path_for_lang, body, None)
}

/// [`frame`] with the page's own script (a module from this site; see [`SCRIPT_CSP`]).
/// Every page names the web app's manifest and icons, so the portal can be installed from
/// any of them.
pub fn frame_with(
    lang: Lang,
    title: &str,
    path_for_lang: &str,
    body: &str,
    script: Option<&str>,
) -> String {
    let t = lang.t();
    let script = script.map_or(String::new(), |s| {
        format!("<script type=\"module\" src=\"{}\"></script>", esc(s))
    });
    let other = match lang {
        Lang::En => "nl",
        Lang::Nl => "en",
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"referrer\" content=\"no-referrer\"><meta name=\"theme-color\" content=\"#1e5aa8\"><title>{} \u{2013} {}</title><link rel=\"stylesheet\" href=\"/style.css\"><link rel=\"manifest\" href=\"/manifest.webmanifest?lang={}\"><link rel=\"icon\" href=\"/icon.svg\" type=\"image/svg+xml\"><link rel=\"apple-touch-icon\" href=\"/icon-192.png\">{script}</head><body><header><strong>{}</strong><a id=\"lang\" href=\"{}?lang={other}\" hreflang=\"{other}\">{}</a></header><main><h1>{}</h1>{body}</main></body></html>\n",
        lang.code(),
        esc(title),
        esc(t.portal),
        lang.code(),
        esc(t.portal),
        esc(path_for_lang),
        esc(t.lang_other),
        esc(title),
    )
}

/// A response with the security headers; `no-store` on every page (some show a key or codes,
/// and none is worth caching).
pub fn html(status: StatusCode, body: String, secure: bool, extra: HeaderMap) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h, secure);
    for (k, v) in extra.iter() {
        h.append(k.clone(), v.clone());
    }
    r
}

/// [`html`] for a page with a script of its own: [`SCRIPT_CSP`].
pub fn html_script(status: StatusCode, body: String, secure: bool, extra: HeaderMap) -> Response {
    let mut r = html(status, body, secure, extra);
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SCRIPT_CSP),
    );
    r
}

pub fn secure_headers(h: &mut HeaderMap, secure: bool) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if secure {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}

/// A page that says one thing (used link, refused form...).
pub fn message(
    lang: Lang,
    status: StatusCode,
    title: &str,
    text: &str,
    path: &str,
    secure: bool,
) -> Response {
    let body = format!("<p class=\"err\" id=\"message\">{}</p>", esc(text));
    html(
        status,
        frame(lang, title, path, &body),
        secure,
        HeaderMap::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
