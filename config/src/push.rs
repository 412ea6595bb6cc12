//! `[push]`: approving a sign-in on a registered phone (Web Push to the portal's installed
//! web app, number matching), and what one RADIUS client makes of it (`push`,
//! `number_matching` in `[[radius.clients]]`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, de};

use crate::schema::{Config, RadiusClient};
use crate::values::Span;

/// `[push] vapid_key_file` when not set.
pub const DEFAULT_VAPID_KEY_FILE: &str = "/etc/mfa/vapid.key";

/// The push services a subscription's endpoint may name when `[push] services` is not set:
/// the services of the browsers that deliver to an installed web app (Chrome and Edge on
/// Android through FCM, Safari on iOS and macOS through Apple, Firefox through Mozilla,
/// Edge on Windows through WNS). The portal posts to the endpoint a phone registered, so a
/// host outside this list would make it send requests wherever a signed-in user says.
pub const DEFAULT_PUSH_SERVICES: &[&str] = &[
    "fcm.googleapis.com",
    "push.apple.com",
    "push.services.mozilla.com",
    "notify.windows.com",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Push approval is offered at all (off by default).
    pub enabled: bool,
    /// How long a sign-in request waits for its approval before it expires.
    pub timeout: Span,
    /// The phone must type the two-digit number the sign-in shows (where the front end can
    /// show one; RD Gateway in code-only mode cannot).
    pub number_matching: bool,
    /// How long "This wasn't me" blocks further pushes to that user.
    pub fraud_block: Span,
    /// At most this many sign-in requests per user in this time (`"5/10m"`).
    pub rate: PushRate,
    /// The VAPID key (P-256, PEM) the portal signs its pushes with (RFC 8292), made by
    /// `mfactl init`. Every portal node must hold the same file: a phone's subscription is
    /// bound to its public key.
    pub vapid_key_file: PathBuf,
    /// The contact push services see in the VAPID `sub` claim (`mailto:` or `https:`);
    /// absent: `[portal] public_url`.
    pub subscriber: Option<String>,
    /// The push services a phone's subscription may name: a host name (its endpoint is
    /// `https://` on that host or a subdomain of it), or an origin `scheme://host:port`
    /// matched exactly (a test push service on loopback).
    pub services: Vec<String>,
    /// The portal's fallback look at the outbox: how long its sender waits for a new
    /// request's wake-up (PostgreSQL's `NOTIFY`, SQLite's wake-up socket) before it reads
    /// the outbox anyway. Only a lost wake-up waits this long.
    pub outbox_poll: Span,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            timeout: Span::secs(60),
            number_matching: true,
            fraud_block: Span::secs(3600),
            rate: PushRate {
                count: 5,
                per: Span::secs(600),
            },
            vapid_key_file: PathBuf::from(DEFAULT_VAPID_KEY_FILE),
            subscriber: None,
            services: DEFAULT_PUSH_SERVICES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            outbox_poll: Span::secs(1),
        }
    }
}

impl PushConfig {
    /// The VAPID `sub` claim: `subscriber`, else the portal's `public_url`.
    pub fn subscriber_or<'a>(&'a self, cfg: &'a Config) -> Option<&'a str> {
        self.subscriber.as_deref().or(cfg.portal.base_url())
    }

    /// Whether a subscription's endpoint (already parsed into its parts) names one of
    /// `services`: an https endpoint on a listed host or a subdomain of one, or exactly a
    /// listed origin.
    pub fn allows_endpoint(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        self.services.iter().any(|s| match s.split_once("://") {
            Some((sch, rest)) => {
                let (h, p) = match rest.rsplit_once(':') {
                    Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                        (h, p.parse::<u16>().ok())
                    }
                    _ => (rest, None),
                };
                let h = h.trim_start_matches('[').trim_end_matches(']');
                sch.eq_ignore_ascii_case(scheme) && h.eq_ignore_ascii_case(&host) && p == port
            }
            None => {
                let s = s.to_ascii_lowercase();
                scheme.eq_ignore_ascii_case("https")
                    && (host == s || host.ends_with(&format!(".{s}")))
            }
        })
    }
}

/// `[push] rate`: `COUNT/SPAN`, e.g. `"5/10m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushRate {
    pub count: u32,
    pub per: Span,
}

impl FromStr for PushRate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not a rate: write how many requests per user in how long, like \"5/10m\""
            )
        };
        let (n, span) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        let per: Span = span.parse().map_err(|e| format!("{s:?}: {e}"))?;
        Ok(PushRate { count, per })
    }
}

impl fmt::Display for PushRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.per)
    }
}

impl<'de> Deserialize<'de> for PushRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// `push` of a `[[radius.clients]]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushMode {
    /// No push for this client: the code only.
    Off,
    /// Push offered beside the code.
    On,
    /// Every request of this client is settled by a push; a code is not looked at (a
    /// gateway that can carry none, such as RD Gateway in code-only mode).
    Only,
}

impl PushMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PushMode::Off => "off",
            PushMode::On => "on",
            PushMode::Only => "only",
        }
    }
}

/// What one RADIUS client gets of push: its own `push` and `number_matching` where it sets
/// them, else `on` (where `[push] enabled`) and `[push] number_matching`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPush {
    pub mode: PushMode,
    pub number_matching: bool,
}

impl Config {
    /// Push for a login that names no RADIUS client (PAM on this host): `[push]` alone.
    pub fn push_default(&self) -> ClientPush {
        ClientPush {
            mode: if self.push.enabled {
                PushMode::On
            } else {
                PushMode::Off
            },
            number_matching: self.push.number_matching,
        }
    }

    /// Push for the logins of client `c`. Always off while `[push] enabled` is false
    /// (validation refuses a client that says otherwise).
    pub fn push_for_client(&self, c: &RadiusClient) -> ClientPush {
        let d = self.push_default();
        if !self.push.enabled {
            return d;
        }
        ClientPush {
            mode: c.push.unwrap_or(d.mode),
            number_matching: c.number_matching.unwrap_or(d.number_matching),
        }
    }

    /// Push for the logins of the client named `name`; `[push]` alone where no client has
    /// that name.
    pub fn push_for_client_named(&self, name: &str) -> ClientPush {
        self.radius
            .clients
            .iter()
            .find(|c| c.name == name)
            .map_or_else(|| self.push_default(), |c| self.push_for_client(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        let r: PushRate = "5/10m".parse().unwrap();
        assert_eq!((r.count, r.per.as_secs()), (5, 600));
        assert_eq!(r.to_string(), "5/10m");
        for bad in ["5", "x/10m", "5/", "/10m", "5/10"] {
            assert!(bad.parse::<PushRate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_only_on_listed_services() {
        let mut p = PushConfig::default();
        assert!(p.allows_endpoint("https", "fcm.googleapis.com", None));
        assert!(p.allows_endpoint("https", "web.push.apple.com", None));
        assert!(p.allows_endpoint("https", "WNS2-BL2P.notify.windows.com", None));
        assert!(!p.allows_endpoint("http", "fcm.googleapis.com", None));
        assert!(!p.allows_endpoint("https", "evilfcm.googleapis.com.example", None));
        assert!(!p.allows_endpoint("https", "notfcm.googleapis.com.evil", None));
        assert!(!p.allows_endpoint("https", "xpush.apple.com", None));
        assert!(!p.allows_endpoint("https", "10.0.0.1", None));
        p.services = vec!["http://localhost:8123".into()];
        assert!(p.allows_endpoint("http", "localhost", Some(8123)));
        assert!(!p.allows_endpoint("http", "localhost", Some(8124)));
        assert!(!p.allows_endpoint("https", "localhost", Some(8123)));
        assert!(!p.allows_endpoint("http", "localhost", None));
    }
}
