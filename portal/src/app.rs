//! The portal: what every request shares (the core, the sessions, the rate limits, the
//! settings) and the routes. The core decides (invites, the code, the unlock, backup
//! codes); the handlers (`handlers/`) turn HTTP into core calls and the views (`views/`)
//! turn the answers into pages, nothing else.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::{get, post};
use mfa_config::Cidr;
use mfa_core::Core;

use crate::client::Ctx;
use crate::handlers::{self, account, assets, enrol, phone, push};
use crate::limits::{Limit, Limits, address_key};
use crate::metrics::Metrics;
use crate::session::{Session, Sessions, SignedIn};

/// The actor and PAM-style service name the portal's audit events carry.
pub const ACTOR: &str = "mfa-portal";

/// Every refusal of the sign-in form is answered no earlier than this after the request
/// arrived: a wrong password (where PAM would wait out its fail delay), a wrong code, an
/// unknown user and a rate limit take the same time, so the answer's timing does not tell
/// a right password from a wrong one. It stands in for PAM's own fail delay.
pub const SIGN_IN_FLOOR: Duration = Duration::from_secs(2);

pub struct Portal {
    pub core: Arc<Core>,
    /// The browser reaches the portal over HTTPS: its own TLS, or `public_url` is
    /// `https://` (TLS ends at a reverse proxy). The cookie is then `__Host-` and `Secure`,
    /// and HSTS is sent.
    pub secure: bool,
    pub trusted_proxies: Vec<Cidr>,
    pub pam_service: String,
    pub pam_confdir: Option<PathBuf>,
    pub idle: i64,
    /// How long a form's body may take to arrive (`[portal] header_timeout`).
    pub body_timeout: Duration,
    pub metrics: Metrics,
    pub sessions: Sessions,
    pub limits: Limits,
    /// The VAPID public key (base64url) the phones subscribe with, where push approval is
    /// on (`[push] enabled`): the registration page's `applicationServerKey`.
    pub vapid_public: Option<String>,
    /// The organisation's name and logo on every page (`[portal] organisation`, `logo`).
    pub brand: crate::page::Brand,
}

impl Portal {
    /// `None` when the system's random source fails. `vapid_public`: the VAPID public key
    /// where push approval is on.
    pub fn new(
        core: Arc<Core>,
        tls: bool,
        pam_confdir: Option<PathBuf>,
        vapid_public: Option<String>,
    ) -> Option<Self> {
        let cfg = core.config();
        let p = &cfg.portal;
        let https = p
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
        Some(Self {
            secure: tls || https,
            trusted_proxies: p.trusted_proxies.clone(),
            pam_service: p.pam_service.clone(),
            idle: p.session_idle.secs_i64(),
            body_timeout: p.header_timeout.0,
            metrics: Metrics::default(),
            pam_confdir,
            sessions: Sessions::new(p.session_idle.secs_i64(), p.session_lifetime.secs_i64())?,
            limits: Limits::default(),
            vapid_public,
            brand: crate::page::Brand {
                organisation: p.organisation.clone(),
                logo: None,
            },
            core,
        })
    }

    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-mfa_session"
        } else {
            "mfa_session"
        }
    }

    /// The `Set-Cookie` header of session `id`.
    pub fn cookie(&self, id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let secure = if self.secure { "; Secure" } else { "" };
        let v = format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            self.cookie_name(),
            self.idle
        );
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(header::SET_COOKIE, v);
        }
        h
    }

    /// The live session of the request, touched; expired ones are dropped on the way.
    pub fn with_session<R>(
        &self,
        sid: Option<&str>,
        f: impl FnOnce(&mut Session) -> R,
    ) -> Option<R> {
        self.sessions.with(sid, f)
    }

    /// The signed-in user of the request's session, if any.
    pub fn signed_in(&self, c: &Ctx) -> Option<SignedIn> {
        self.with_session(c.sid.as_deref(), |s| s.user.clone())
            .flatten()
    }

    pub fn drop_session(&self, sid: &str) {
        self.sessions.remove(sid);
    }

    /// Counts a hit of `key`; false once over the limit.
    pub fn limit(&self, limit: Limit, key: &str) -> bool {
        self.limits.hit(limit, key)
    }

    /// [`Portal::limit`] for the client's address (an IPv6 /64).
    pub fn limit_address(&self, limit: Limit, c: &Ctx) -> bool {
        self.limit(limit, &address_key(c.client))
    }

    /// Runs a core call off the async threads (the store, PAM and the slow hashes block);
    /// `None` when the task did not finish.
    pub async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Core) -> R + Send + 'static,
    ) -> Option<R> {
        let me = self.clone();
        blocking(move || f(&me.core)).await
    }
}

/// Runs a blocking call off the async threads.
pub async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// The portal's routes; with `console` (the administrator's console without `[admin]
/// listen` of its own), its routes under `/admin` too.
pub fn router(p: Arc<Portal>, console: Option<Arc<crate::admin::Console>>) -> Router {
    let metrics = p.metrics.clone();
    let user_pages = Router::new()
        .route("/", get(handlers::home))
        .route("/style.css", get(handlers::style))
        .route("/enrol/{token}", get(enrol::page).post(enrol::save))
        .route("/account", get(account::page).post(account::post))
        .route("/account/phone", get(phone::page).post(phone::register))
        .route("/push", get(push::pending_page))
        .route("/push/pending", post(push::pending_list))
        .route("/push/{id}", get(push::page).post(push::decide))
        .route("/manifest.webmanifest", get(assets::manifest))
        .route("/sw.js", get(assets::service_worker))
        .route("/js/{file}", get(assets::script))
        .route("/icon.svg", get(assets::icon_svg))
        .route("/icon-192.png", get(assets::icon_192))
        .route("/icon-512.png", get(assets::icon_512))
        .route("/logo", get(assets::logo))
        .fallback(handlers::not_found)
        .with_state(p);
    let all = match console {
        Some(con) => user_pages.merge(crate::admin::routes(con)),
        None => user_pages,
    };
    all.layer(axum::middleware::from_fn_with_state(
        metrics,
        crate::metrics::track,
    ))
}
