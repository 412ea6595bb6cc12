//! HTML: escaping, the page frame and the security headers every response carries.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use mfa_config::{Logo, read_logo};

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

/// The pages' one style sheet (`/style.css`): system fonts, contrast of at least 4.5:1 for
/// text (7:1 for body text), a visible focus ring on everything that takes focus, and
/// targets large enough for a thumb. No web font, no image, nothing from elsewhere.
pub const STYLE: &str = include_str!("../assets/style.css");

/// Who the pages speak for: `[portal] organisation`, and the logo `/logo` serves
/// (`[portal] logo`, read and checked at start).
#[derive(Debug, Clone, Default)]
pub struct Brand {
    pub organisation: Option<String>,
    pub logo: Option<Logo>,
}

impl Brand {
    /// From `[portal]`: the logo read now, or the reason it cannot be (the portal then does
    /// not start).
    pub fn load(p: &mfa_config::PortalConfig) -> Result<Brand, String> {
        let logo = match &p.logo {
            Some(path) => Some(read_logo(path).map_err(|e| format!("[portal] logo: {e}"))?),
            None => None,
        };
        Ok(Brand {
            organisation: p.organisation.clone(),
            logo,
        })
    }
}

/// The page frame: title, the other language's link (same page), the body.
pub fn frame(brand: &Brand, lang: Lang, title: &str, path_for_lang: &str, body: &str) -> String {
    frame_with(brand, lang, title, path_for_lang, body, None)
}

/// [`frame`] with the page's own script (a module from this site; see [`SCRIPT_CSP`]).
/// Every page names the web app's manifest and icons, so the portal can be installed from
/// any of them. The header names the organisation (and its logo) before the product, so
/// users see whose page asks for their password; the other language's link is marked as
/// being in that language, for screen readers.
pub fn frame_with(
    brand: &Brand,
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
    let site = brand.organisation.as_deref().unwrap_or(t.portal);
    // The logo is decorative beside the name written out next to it.
    let logo = if brand.logo.is_some() {
        "<img class=\"logo\" src=\"/logo\" alt=\"\">"
    } else {
        ""
    };
    let org = brand.organisation.as_deref().map_or(String::new(), |o| {
        format!("<span class=\"org\">{}</span>", esc(o))
    });
    format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"referrer\" content=\"no-referrer\"><meta name=\"theme-color\" content=\"#1e5aa8\"><title>{} \u{2013} {}</title><link rel=\"stylesheet\" href=\"/style.css\"><link rel=\"manifest\" href=\"/manifest.webmanifest?lang={code}\"><link rel=\"icon\" href=\"/icon.svg\" type=\"image/svg+xml\"><link rel=\"apple-touch-icon\" href=\"/icon-192.png\">{script}</head><body><a class=\"skip\" href=\"#main\">{}</a><header class=\"top\"><a class=\"brand\" href=\"/?lang={code}\">{logo}{org}<span class=\"product\">{}</span></a><a id=\"lang\" href=\"{}?lang={other}\" hreflang=\"{other}\" lang=\"{other}\">{}</a></header><main id=\"main\"><h1>{}</h1>{body}</main></body></html>\n",
        esc(title),
        esc(site),
        esc(t.skip),
        esc(t.portal),
        esc(path_for_lang),
        esc(t.lang_other),
        esc(title),
        code = lang.code(),
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
    brand: &Brand,
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
        frame(brand, lang, title, path, &body),
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
