//! Who is asking the console: the portal's facts of a request (the client address behind
//! trusted proxies, the language), the console's own session cookie, and the
//! administrator's time zone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::admin::Console;
use crate::admin::text::{self, Tx};
use crate::client::{client_address, session_cookie};
use crate::text::Lang;
use crate::zone::Zone;

/// The cookie that keeps the language the administrator chose (`?lang=`).
pub const LANG_COOKIE: &str = "mfa_admin_lang";
/// The cookie that keeps the administrator's time zone.
pub const TZ_COOKIE: &str = "mfa_admin_tz";

/// Per-request facts of the console.
pub struct Ctx {
    /// The portal's: language, client address, and the console's session cookie as `sid`.
    pub base: crate::client::Ctx,
    /// `?lang=` was given: the answer keeps it in [`LANG_COOKIE`].
    pub lang_chosen: bool,
    pub zone: Zone,
}

impl Ctx {
    pub fn lang(&self) -> Lang {
        self.base.lang
    }

    /// The console's texts in the request's language.
    pub fn t(&self) -> &'static Tx {
        text::of(self.base.lang)
    }

    pub fn sid(&self) -> Option<&str> {
        self.base.sid.as_deref()
    }

    pub fn ip_text(&self) -> Option<String> {
        self.base.ip_text()
    }
}

impl FromRequestParts<Arc<Console>> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, con: &Arc<Console>) -> Result<Self, Response> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, con)
            .await
            .map_err(IntoResponse::into_response)?;
        let Query(q) = Query::<HashMap<String, String>>::from_request_parts(parts, con)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = &parts.headers;
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let query_lang = q.get("lang").map(String::as_str);
        let kept = session_cookie(headers, LANG_COOKIE);
        let lang = Lang::choose(query_lang.or(kept.as_deref()), accept);
        Ok(Ctx {
            base: crate::client::Ctx {
                lang,
                client: client_address(peer, headers, &con.p.trusted_proxies),
                sid: session_cookie(headers, con.cookie_name()),
            },
            lang_chosen: query_lang.is_some(),
            zone: zone_of(headers),
        })
    }
}

/// The time zone the cookie names, where the system's time zone database has it; else the
/// server's own.
fn zone_of(headers: &HeaderMap) -> Zone {
    session_cookie(headers, TZ_COOKIE)
        .and_then(|n| Zone::named(&n))
        .unwrap_or_else(|| Zone::server().clone())
}
