//! A phone's Web Push subscription (the W3C Push API's `PushSubscription.toJSON()`): where
//! the portal posts a push and the keys it encrypts it to (RFC 8291). Checked once, at
//! registration, then kept sealed in the store ([`crate::secret::SealedFor`]).
//!
//! The endpoint is a capability (whoever holds it can push to the phone) and a place the
//! portal will send requests to, so it must name one of the push services `[push]
//! services` allows: otherwise a signed-in user could make the portal post to any host.

use std::fmt;

use data_encoding::BASE64URL_NOPAD;
use mfa_config::PushConfig;
use serde::Deserialize;
use zeroize::Zeroizing;

/// The longest subscription JSON taken, and the longest endpoint.
pub const MAX_SUBSCRIPTION_JSON: usize = 4096;
pub const MAX_ENDPOINT: usize = 2048;

/// A checked subscription. `Debug` shows the push service's host, never the endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    endpoint: Zeroizing<String>,
    p256dh: [u8; 65],
    auth: Zeroizing<[u8; 16]>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = parse_endpoint(&self.endpoint).map_or("?", |e| e.host);
        write!(f, "Subscription({host}, ..)")
    }
}

#[derive(Deserialize)]
struct Json {
    endpoint: String,
    keys: Keys,
}

#[derive(Deserialize)]
struct Keys {
    p256dh: String,
    auth: String,
}

/// The parts of an endpoint URL that the allow-list looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoint<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
}

/// `scheme://host[:port]/path`, printable ASCII, no user info; the host's brackets taken
/// off an IPv6 literal.
pub(crate) fn parse_endpoint(url: &str) -> Result<Endpoint<'_>, String> {
    if url.len() > MAX_ENDPOINT || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the endpoint is not a URL of printable characters up to {MAX_ENDPOINT} long"
        ));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("the endpoint is not an http(s) URL")?;
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return Err("the endpoint is not an http(s) URL".into());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return Err("the endpoint carries user information".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or("the endpoint's host is malformed")?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err("the endpoint's host is malformed".into()),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the endpoint names no host".into());
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("the endpoint's port is not a number from 1 to 65535")?,
        ),
    };
    Ok(Endpoint { scheme, host, port })
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>, String> {
    BASE64URL_NOPAD
        .decode(s.trim_end_matches('=').as_bytes())
        .map_err(|_| format!("keys.{field} is not base64url"))
}

impl Subscription {
    /// The subscription a browser sent, checked: JSON with `endpoint` (on a push service
    /// `cfg.services` allows) and `keys.p256dh` (a P-256 point, uncompressed) and `keys.auth`
    /// (16 bytes), both base64url; other members (`expirationTime`) are ignored. The error
    /// says what is wrong, for the refusal.
    pub fn parse(json: &str, cfg: &PushConfig) -> Result<Self, String> {
        let s = Self::read(json)?;
        let e = parse_endpoint(&s.endpoint)?;
        if !cfg.allows_endpoint(e.scheme, e.host, e.port) {
            return Err(format!(
                "the endpoint's push service {} is not one of [push] services",
                e.host
            ));
        }
        Ok(s)
    }

    /// Whether the endpoint is on a push service `cfg.services` allows now (a stored
    /// subscription is checked again before every delivery: the list may have shrunk since
    /// it was registered).
    pub(crate) fn allowed(&self, cfg: &PushConfig) -> bool {
        parse_endpoint(&self.endpoint).is_ok_and(|e| cfg.allows_endpoint(e.scheme, e.host, e.port))
    }

    /// The JSON without the allow-list (a stored subscription, checked when it was made).
    fn read(json: &str) -> Result<Self, String> {
        if json.len() > MAX_SUBSCRIPTION_JSON {
            return Err(format!("longer than {MAX_SUBSCRIPTION_JSON} bytes"));
        }
        let j: Json = serde_json::from_str(json).map_err(|_| {
            "not a Web Push subscription (JSON with endpoint and keys.p256dh, keys.auth)"
                .to_string()
        })?;
        let endpoint = Zeroizing::new(j.endpoint);
        let keys = j.keys;
        parse_endpoint(&endpoint)?;
        let p256dh: [u8; 65] = b64("p256dh", &keys.p256dh)?
            .try_into()
            .map_err(|_| "keys.p256dh is not 65 bytes (an uncompressed P-256 point)")?;
        if p256dh[0] != 0x04 || p256::PublicKey::from_sec1_bytes(&p256dh).is_err() {
            return Err("keys.p256dh is not a P-256 point".into());
        }
        let auth = Zeroizing::new(b64("auth", &keys.auth)?);
        let auth: [u8; 16] = auth
            .as_slice()
            .try_into()
            .map_err(|_| "keys.auth is not 16 bytes".to_string())?;
        Ok(Self {
            endpoint,
            p256dh,
            auth: Zeroizing::new(auth),
        })
    }

    /// The form sealed into the store: canonical JSON.
    pub(crate) fn to_stored(&self) -> Zeroizing<Vec<u8>> {
        let v = serde_json::json!({
            "endpoint": self.endpoint.as_str(),
            "keys": {
                "p256dh": BASE64URL_NOPAD.encode(&self.p256dh),
                "auth": BASE64URL_NOPAD.encode(self.auth.as_slice()),
            }
        });
        Zeroizing::new(v.to_string().into_bytes())
    }

    /// A stored subscription, opened.
    pub(crate) fn from_stored(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
        Self::read(text)
    }

    /// Where to POST the push (RFC 8030).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The browser's ECDH key (`p256dh`): an uncompressed P-256 point.
    pub fn p256dh(&self) -> &[u8; 65] {
        &self.p256dh
    }

    /// The browser's authentication secret (`auth`).
    pub fn auth(&self) -> &[u8; 16] {
        &self.auth
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::testing::subscription_json;

    #[test]
    fn a_browsers_subscription_on_an_allowed_service() {
        let cfg = PushConfig::default();
        let json = subscription_json("https://fcm.googleapis.com/fcm/send/abc:def");
        let s = Subscription::parse(&json, &cfg).unwrap();
        assert_eq!(s.endpoint(), "https://fcm.googleapis.com/fcm/send/abc:def");
        assert_eq!(format!("{s:?}"), "Subscription(fcm.googleapis.com, ..)");
        let back = Subscription::from_stored(&s.to_stored()).unwrap();
        assert_eq!(back, s);
        // Padded base64 is taken too.
        let padded = json.replace("\"}}", "==\"}}");
        assert!(Subscription::parse(&padded, &cfg).is_ok());
    }

    #[test]
    fn endpoints_elsewhere_and_malformed_keys_are_refused() {
        let cfg = PushConfig::default();
        for endpoint in [
            "https://10.0.0.1/push",
            "https://intranet.example.com/admin",
            "http://fcm.googleapis.com/fcm/send/x",
            "https://user@fcm.googleapis.com/x",
            "https://fcm.googleapis.com:0/x",
            "ftp://fcm.googleapis.com/x",
            "https:///x",
            "https://fcm.googleapis.com.evil.example/x",
        ] {
            let e = Subscription::parse(&subscription_json(endpoint), &cfg);
            assert!(e.is_err(), "{endpoint}");
        }
        let good = subscription_json("https://fcm.googleapis.com/x");
        let v: serde_json::Value = serde_json::from_str(&good).unwrap();
        let with = |p256dh: &str, auth: &str| {
            serde_json::json!({"endpoint": v["endpoint"], "keys": {"p256dh": p256dh, "auth": auth}})
                .to_string()
        };
        let p = v["keys"]["p256dh"].as_str().unwrap();
        let a = v["keys"]["auth"].as_str().unwrap();
        for (json, why) in [
            (with(&p[..40], a), "65 bytes"),
            (with(&BASE64URL_NOPAD.encode(&[4; 65]), a), "P-256 point"),
            (with(p, &a[..8]), "16 bytes"),
            (with(p, "!!!"), "base64url"),
            ("{}".to_string(), "not a Web Push subscription"),
            ("x".repeat(5000), "longer than"),
        ] {
            let e = Subscription::parse(&json, &cfg).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        // A test push service on loopback, where the configuration names its origin.
        let local = PushConfig {
            services: vec!["http://localhost:8123".into()],
            ..PushConfig::default()
        };
        let json = subscription_json("http://localhost:8123/notify/abc");
        assert!(Subscription::parse(&json, &local).is_ok());
        assert!(Subscription::parse(&json, &cfg).is_err());
    }

    #[test]
    fn endpoint_parts() {
        let e = parse_endpoint("https://[::1]:8443/x").unwrap();
        assert_eq!((e.scheme, e.host, e.port), ("https", "::1", Some(8443)));
        let e = parse_endpoint("https://web.push.apple.com/QGx").unwrap();
        assert_eq!((e.host, e.port), ("web.push.apple.com", None));
        assert!(parse_endpoint("https://a b/").is_err());
        assert!(parse_endpoint("https://[::1/").is_err());
    }
}
