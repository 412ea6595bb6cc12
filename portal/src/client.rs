//! Who is asking: the client address the portal believes (behind trusted proxies, from
//! X-Forwarded-For), the language and the session cookie, taken from each request once
//! ([`Ctx`], an extractor every handler takes).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use mfa_config::Cidr;
use mfa_core::net::parse_ip_literal;

use crate::app::Portal;
use crate::text::Lang;

/// Per-request facts: the language, the client address the portal believes, the session.
pub struct Ctx {
    pub lang: Lang,
    pub client: Option<IpAddr>,
    pub sid: Option<String>,
}

impl Ctx {
    /// The client address as the audit trail and PAM's rhost take it.
    pub fn ip_text(&self) -> Option<String> {
        self.client.map(|i| i.to_string())
    }
}

impl FromRequestParts<Arc<Portal>> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, p: &Arc<Portal>) -> Result<Self, Response> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, p)
            .await
            .map_err(IntoResponse::into_response)?;
        let Query(q) = Query::<HashMap<String, String>>::from_request_parts(parts, p)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = &parts.headers;
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Ok(Ctx {
            lang: Lang::choose(q.get("lang").map(String::as_str), accept),
            client: client_address(peer, headers, &p.trusted_proxies),
            sid: session_cookie(headers, p.cookie_name()),
        })
    }
}

/// The value of the session cookie `name`, if the request carries one.
pub(crate) fn session_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// The client address: the peer, or where the peer is a trusted proxy, the last
/// X-Forwarded-For entry that is not one (the one the proxies saw connect).
pub fn client_address(
    peer: SocketAddr,
    headers: &HeaderMap,
    trusted_proxies: &[Cidr],
) -> Option<IpAddr> {
    let mut ip = peer.ip().to_canonical();
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|c| c.contains(ip));
    if !trusted(&ip) {
        return Some(ip);
    }
    let chain: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in chain.iter().rev() {
        match parse_ip_literal(hop.trim()) {
            Some(h) => {
                ip = h.to_canonical();
                if !trusted(&ip) {
                    return Some(ip);
                }
            }
            // A hop that is no address: nothing to the left of it can be believed.
            None => return None,
        }
    }
    Some(ip)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxies: Vec<Cidr> = vec!["192.0.2.0/24".parse().unwrap()];
        let peer = |s: &str| SocketAddr::new(s.parse().unwrap(), 443);
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let xff = with_xff(&["198.51.100.9, 192.0.2.7"]);
        // Not a proxy: its own address, whatever it says.
        assert_eq!(
            client_address(peer("203.0.113.1"), &xff, &proxies),
            ip("203.0.113.1")
        );
        // A proxy: the last hop that is not one.
        assert_eq!(
            client_address(peer("192.0.2.1"), &xff, &proxies),
            ip("198.51.100.9")
        );
        // Several headers are one list; IPv4-mapped peers count as IPv4.
        let two = with_xff(&["198.51.100.1", "198.51.100.2"]);
        assert_eq!(
            client_address(peer("::ffff:192.0.2.1"), &two, &proxies),
            ip("198.51.100.2")
        );
        // A hop that is no address: nothing before it is believed.
        let junk = with_xff(&["198.51.100.1, unknown"]);
        assert_eq!(client_address(peer("192.0.2.1"), &junk, &proxies), None);
        // Only proxies: the first of them.
        let all = with_xff(&["192.0.2.8"]);
        assert_eq!(
            client_address(peer("192.0.2.1"), &all, &proxies),
            ip("192.0.2.8")
        );
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; mfa_session=xyz"),
        );
        assert_eq!(session_cookie(&h, "mfa_session").as_deref(), Some("xyz"));
        assert_eq!(session_cookie(&h, "__Host-mfa_session"), None);
    }
}
