//! The administrator's console (issue 22): find a user, see their MFA state, unlink, link,
//! temporary access, invites, unlock, remembered networks; the roll-out at a glance with
//! the go-live; trusted networks and exemptions; the audit trail.
//!
//! Every action goes through the core's [`mfa_core::roles::Operator`], which looks the
//! administrator's role up again (`[admin] groups`, through NSS), refuses an action on the
//! administrator's own account, and calls the services `mfactl` calls, audited as
//! `mfa-portal:admin:<name>`. The console decides nothing of its own: it turns forms into
//! those calls and their answers into pages.
//!
//! Its sessions are its own (their own table, CSRF key and cookie, `mfa_admin`), so a
//! user's "My account" session is never an administrator's; the sign-in is the portal's
//! (the password through PAM, the code through `Login::verify_code_always`), and the same
//! form, CSRF, security-header and rate-limit rules apply. With `[admin] listen` the console
//! has a listener of its own and is not served on `[portal] listen`.

pub mod client;
pub mod handlers;
pub mod text;
pub mod views;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mfa_core::report::Totals;

use crate::app::Portal;
use crate::session::Sessions;

/// Where the console's pages live, on either listener.
pub const BASE: &str = "/admin";

/// The front end the console's audit events name: `mfa-portal:admin:<name>`.
pub const FRONT_END: &str = "mfa-portal";

/// What the audit trail names as the actor of a refusal before anyone signed in.
pub const ANONYMOUS_ACTOR: &str = "mfa-portal:admin";

/// The service the console's sign-ins are audited under (their logins).
pub const SIGN_IN_SERVICE: &str = "mfa-portal:admin";

/// How long the roll-out's totals are shown before they are counted again (a million
/// records take seconds to read); any action of the console counts them again.
pub const TOTALS_FOR_SECS: i64 = 60;

/// The roll-out's totals as last counted.
#[derive(Clone)]
pub struct Counted {
    pub at: i64,
    pub totals: Totals,
    pub open_invites: usize,
    pub expired_invites: usize,
    pub never_seen: usize,
    pub first_invite: Option<i64>,
}

/// The console: the portal it lives in (the core, the limits, the settings), its own
/// sessions, the last count of the roll-out.
pub struct Console {
    pub p: Arc<Portal>,
    pub sessions: Sessions,
    pub counted: Mutex<Option<Counted>>,
}

impl Console {
    /// `None` when the system's random source fails.
    pub fn new(p: Arc<Portal>) -> Option<Self> {
        let cfg = p.core.config();
        let sessions = Sessions::new(
            cfg.portal.session_idle.secs_i64(),
            cfg.portal.session_lifetime.secs_i64(),
        )?;
        Some(Self {
            p,
            sessions,
            counted: Mutex::new(None),
        })
    }

    /// The console's session cookie: apart from the user pages' (`mfa_session`).
    pub fn cookie_name(&self) -> &'static str {
        if self.p.secure {
            "__Host-mfa_admin"
        } else {
            "mfa_admin"
        }
    }

    /// A cookie of the console (`Path=/`, `HttpOnly`, `SameSite=Strict`, `Secure` over
    /// HTTPS) lasting `max_age` seconds.
    pub fn set_cookie(&self, h: &mut HeaderMap, name: &str, value: &str, max_age: i64) {
        let secure = if self.p.secure { "; Secure" } else { "" };
        let v =
            format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.append(header::SET_COOKIE, v);
        }
    }

    /// The `Set-Cookie` of session `id`.
    pub fn session_cookie(&self, id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        self.set_cookie(&mut h, self.cookie_name(), id, self.p.idle);
        h
    }

    /// Forgets the roll-out's count: an action changed what it counts.
    pub fn recount(&self) {
        if let Ok(mut c) = self.counted.lock() {
            *c = None;
        }
    }
}

/// The console's routes, under [`BASE`], on the portal's listener.
pub fn routes(con: Arc<Console>) -> Router {
    table().with_state(con)
}

fn table() -> Router<Arc<Console>> {
    use handlers::{log, networks, rollout, sign_in, users};
    Router::new()
        .route(BASE, get(sign_in::home).post(sign_in::post))
        .route(&format!("{BASE}/push"), get(sign_in::push_wait))
        .route(&format!("{BASE}/style.css"), get(style))
        .route(&format!("{BASE}/users"), get(users::list))
        .route(&format!("{BASE}/user"), get(users::page).post(users::post))
        .route(
            &format!("{BASE}/rollout"),
            get(rollout::page).post(rollout::post),
        )
        .route(&format!("{BASE}/rollout.csv"), get(rollout::csv))
        .route(
            &format!("{BASE}/networks"),
            get(networks::page).post(networks::post),
        )
        .route(&format!("{BASE}/log"), get(log::page))
        .route(
            &format!("{BASE}/prefs"),
            axum::routing::post(sign_in::prefs),
        )
}

/// The console alone, on `[admin] listen`: its routes, `/` leading to them, and nothing
/// else of the portal (every other path is not found).
pub fn standalone(con: Arc<Console>) -> Router {
    let metrics = con.p.metrics.clone();
    table()
        .route("/", get(to_console))
        .fallback(not_found)
        .with_state(con)
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::track,
        ))
}

async fn to_console() -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(BASE));
    crate::page::secure_headers(r.headers_mut(), false);
    r
}

async fn not_found(State(con): State<Arc<Console>>) -> Response {
    let mut r = (StatusCode::NOT_FOUND, "not found\n").into_response();
    crate::page::secure_headers(r.headers_mut(), con.p.secure);
    r
}

async fn style() -> Response {
    let mut r = views::frame::STYLE.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}
