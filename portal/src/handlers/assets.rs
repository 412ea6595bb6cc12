//! The installed web app's files: the manifest, the service worker, the two push pages'
//! scripts and their shared module, the icons. All from `portal/assets/`, built into the
//! binary: the portal names no external resource. The organisation's logo is the one file
//! read from disk (at start: `[portal] logo`). The PNG icons are `icon.svg` drawn at
//! 192 and 512 pixels (`rsvg-convert -w 192 -h 192 icon.svg -o icon-192.png`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::app::Portal;
use crate::client::Ctx;
use crate::handlers::not_found;
use crate::text::{EN, Lang, NL, T};

const SW: &str = include_str!("../../assets/sw.js");
const DEVICE_JS: &str = include_str!("../../assets/device.js");
const REGISTER_JS: &str = include_str!("../../assets/register.js");
const APPROVE_JS: &str = include_str!("../../assets/approve.js");
const ICON_SVG: &[u8] = include_bytes!("../../assets/icon.svg");
const ICON_192: &[u8] = include_bytes!("../../assets/icon-192.png");
const ICON_512: &[u8] = include_bytes!("../../assets/icon-512.png");

/// A file's answer: its type, how long it may be cached, `nosniff`, and a policy that lets
/// the file itself do nothing (an SVG opened on its own runs no script).
fn file(body: impl IntoResponse, content_type: &'static str, cache: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    r
}

/// Scripts are checked for a new version at every load (`no-cache`), so a new portal's
/// pages never run an old script.
const REVALIDATE: &str = "no-cache";
const A_DAY: &str = "public, max-age=86400";

/// The web app manifest, in the page's language: installed, the app opens on the list of
/// requests waiting for this phone.
pub async fn manifest(c: Ctx) -> Response {
    let t = c.lang.t();
    let lang = c.lang.code();
    let m = serde_json::json!({
        "name": t.app_name,
        "short_name": t.app_short,
        "description": t.app_description,
        "lang": lang,
        "id": "/push",
        "start_url": format!("/push?lang={lang}"),
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#1e5aa8",
        "icons": [
            {"src": "/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/icon-512.png", "sizes": "512x512", "type": "image/png"},
            {"src": "/icon.svg", "sizes": "any", "type": "image/svg+xml"},
        ],
    });
    file(m.to_string(), "application/manifest+json", REVALIDATE)
}

/// The notification's words of one language, for the service worker.
fn sw_words(t: &T) -> serde_json::Value {
    serde_json::json!({
        "title": t.sw_title,
        "body": t.sw_body,
        "number": t.sw_number,
        "unknown": t.sw_unknown,
        "unreadable": t.sw_unreadable,
    })
}

/// The service worker's source: `sw.js` with its words in both languages.
pub fn service_worker_source() -> String {
    let words =
        serde_json::json!({ Lang::En.code(): sw_words(&EN), Lang::Nl.code(): sw_words(&NL) });
    SW.replace("__TEXT__", &words.to_string())
}

/// The service worker, at the site's root so that its scope is the whole app. Its own
/// policy lets it load the notification's icon and nothing else.
pub async fn service_worker() -> Response {
    let mut r = file(
        service_worker_source(),
        "text/javascript; charset=utf-8",
        REVALIDATE,
    );
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; img-src 'self'"),
    );
    r
}

/// `/js/{file}`: the push pages' scripts and their shared module.
pub async fn script(State(p): State<Arc<Portal>>, c: Ctx, Path(name): Path<String>) -> Response {
    let body = match name.as_str() {
        "device.js" => DEVICE_JS,
        "register.js" => REGISTER_JS,
        "approve.js" => APPROVE_JS,
        _ => return not_found(State(p), c).await,
    };
    file(body, "text/javascript; charset=utf-8", REVALIDATE)
}

pub async fn icon_svg() -> Response {
    file(ICON_SVG, "image/svg+xml", A_DAY)
}

pub async fn icon_192() -> Response {
    file(ICON_192, "image/png", A_DAY)
}

pub async fn icon_512() -> Response {
    file(ICON_512, "image/png", A_DAY)
}

/// `[portal] logo`, as read and checked at start (its type from its first bytes); not
/// found where none is configured. Its policy lets an SVG logo run and load nothing.
pub async fn logo(State(p): State<Arc<Portal>>, c: Ctx) -> Response {
    match &p.brand.logo {
        Some(l) => file(l.bytes.clone(), l.content_type, A_DAY),
        None => not_found(State(p), c).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worker gets its words in both languages, as valid JavaScript object text, and
    /// the placeholder is gone.
    #[test]
    fn the_service_worker_carries_both_languages() {
        let src = service_worker_source();
        assert!(!src.contains("__TEXT__"));
        let line = src
            .lines()
            .find(|l| l.starts_with("const TEXT = "))
            .unwrap_or_default();
        let json = line
            .trim_start_matches("const TEXT = ")
            .trim_end_matches(';');
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        assert_eq!(v["en"]["title"], EN.sw_title);
        assert_eq!(v["nl"]["title"], NL.sw_title);
        for t in [&EN, &NL] {
            assert!(t.sw_body.contains("{service}") && t.sw_body.contains("{address}"));
        }
    }

    #[test]
    fn the_icons_are_what_their_names_say() {
        assert!(ICON_192.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(ICON_512.starts_with(b"\x89PNG\r\n\x1a\n"));
        // IHDR: width and height.
        assert_eq!(&ICON_192[16..24], &[0, 0, 0, 192, 0, 0, 0, 192]);
        assert_eq!(&ICON_512[16..24], &[0, 0, 2, 0, 0, 0, 2, 0]);
        let svg = std::str::from_utf8(ICON_SVG).unwrap_or_default();
        assert!(svg.starts_with("<svg") && !svg.contains("<script") && !svg.contains("href"));
    }

    #[test]
    fn the_scripts_load_nothing_from_elsewhere() {
        for js in [SW, DEVICE_JS, REGISTER_JS, APPROVE_JS] {
            for bad in [
                "http://",
                "https://",
                "eval(",
                "innerHTML",
                "document.write",
            ] {
                assert!(!js.contains(bad), "{bad}");
            }
        }
    }
}
