//! The portal's pages. The core decides (invites, the code, the unlock, backup codes); this
//! file turns HTTP into core calls and the answers into pages, nothing else.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use data_encoding::HEXLOWER;
use mfa_config::{Cidr, format_utc};
use mfa_core::enrolment::{OwnKey, Sheet, qr_svg};
use mfa_core::invite::{InviteEnrol, InviteState, token_hash};
use mfa_core::login::now;
use mfa_core::net::parse_ip_literal;
use mfa_core::policy::UnlockScope;
use mfa_core::{BACKUP_CODES_DEFAULT, ClientAddr, Core, Request, TotpSecret, UserName};
use zeroize::Zeroizing;

use crate::limits::{Limit, Limits, address_key};
use crate::metrics::Metrics;
use crate::page::{self, FormError, esc, frame, html, message, parse_form};
use crate::session::{Pending, Session, Sessions, SignedIn};
use crate::text::{Lang, T};

/// The actor and PAM-style service name the portal's audit events carry.
pub const ACTOR: &str = "mfa-portal";
/// Logins "My account" lists.
const RECENT_LOGINS: usize = 10;
/// Largest form body read; more is refused with a page.
const MAX_BODY: usize = 4096;
/// Largest field of each name (bytes): a user name as the sign-in form allows it, a code
/// with room for spaces, the CSRF token, an action; a password; anything else is short.
fn max_field(name: &str) -> usize {
    match name {
        "user" => 256,
        "code" => 16,
        "csrf" | "action" => 64,
        "password" => 1024,
        _ => 64,
    }
}

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
    sessions: Sessions,
    limits: Limits,
}

/// Per-request facts: the language, the client address the portal believes, the session.
struct Ctx {
    lang: Lang,
    client: Option<IpAddr>,
    sid: Option<String>,
}

impl Portal {
    /// `None` when the system's random source fails.
    pub fn new(core: Arc<Core>, tls: bool, pam_confdir: Option<PathBuf>) -> Option<Self> {
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
            core,
        })
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-mfa_session"
        } else {
            "mfa_session"
        }
    }

    /// The client address: the peer, or where the peer is a trusted proxy, the last
    /// X-Forwarded-For entry that is not one (the one the proxies saw connect).
    fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> Option<IpAddr> {
        let mut ip = peer.ip().to_canonical();
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|c| c.contains(ip));
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

    fn ctx(&self, peer: SocketAddr, headers: &HeaderMap, q: &HashMap<String, String>) -> Ctx {
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let sid = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| {
                let (k, v) = c.trim().split_once('=')?;
                (k == self.cookie_name()).then(|| v.to_string())
            });
        Ctx {
            lang: Lang::choose(q.get("lang").map(String::as_str), accept),
            client: self.client(peer, headers),
            sid,
        }
    }

    fn ip_text(c: &Ctx) -> Option<String> {
        c.client.map(|i| i.to_string())
    }

    /// The live session of the request, touched; expired ones are dropped on the way.
    fn with_session<R>(&self, sid: Option<&str>, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        self.sessions.with(sid, f)
    }

    /// The signed-in user of the request's session, if any.
    fn signed_in(&self, c: &Ctx) -> Option<SignedIn> {
        self.with_session(c.sid.as_deref(), |s| s.user.clone())
            .flatten()
    }

    fn drop_session(&self, sid: &str) {
        self.sessions.remove(sid);
    }

    fn cookie(&self, id: &str) -> HeaderMap {
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

    fn limit(&self, limit: Limit, key: &str) -> bool {
        self.limits.hit(limit, key)
    }

    fn limit_address(&self, limit: Limit, c: &Ctx) -> bool {
        self.limit(limit, &address_key(c.client))
    }

    /// Whether the sign-in still holds: the key it was made with is the user's, and the
    /// user is not locked (the core's rule, read now; the actions re-check it in their own
    /// transaction). `None`: the store could not be read.
    async fn still_signed_in(self: &Arc<Self>, who: &SignedIn) -> Option<bool> {
        let (me, w) = (self.clone(), who.clone());
        let rec = blocking(move || me.core.store().user(&w.user))
            .await?
            .ok()?;
        Some(who.key.holds(&who.user, rec.as_ref(), now()).is_ok())
    }

    /// The end of a session whose sign-in no longer holds (the key was replaced or removed,
    /// or the user locked, since): forgotten, audited, and the sign-in form.
    async fn sign_in_ended(
        self: &Arc<Self>,
        c: &Ctx,
        sid: Option<&str>,
        who: &SignedIn,
    ) -> Response {
        if let Some(sid) = sid {
            self.drop_session(sid);
        }
        self.audit_refusal(c, Some(who.user.to_string()), "session_ended")
            .await;
        sign_in_form(self, c, Some(c.lang.t().session_ended))
    }

    /// Audits a refused request through the core (never a token, code or password).
    async fn audit_refusal(self: &Arc<Self>, c: &Ctx, user: Option<String>, reason: &'static str) {
        let me = self.clone();
        let ip = Self::ip_text(c);
        let _ = blocking(move || {
            me.core
                .invites(ACTOR)
                .audit_refusal(user.as_deref(), reason, ip.as_deref(), now())
        })
        .await;
    }

    fn msg(&self, c: &Ctx, status: StatusCode, title: &str, text: &str, path: &str) -> Response {
        message(c.lang, status, title, text, path, self.secure)
    }

    fn failure(&self, c: &Ctx, path: &str) -> Response {
        let t = c.lang.t();
        self.msg(
            c,
            StatusCode::INTERNAL_SERVER_ERROR,
            t.refused_title,
            t.failure,
            path,
        )
    }
}

/// Runs a blocking core call off the async threads.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    tokio::task::spawn_blocking(f).await.ok()
}

pub fn router(p: Arc<Portal>) -> Router {
    let metrics = p.metrics.clone();
    Router::new()
        .route("/", get(home))
        .route("/style.css", get(style))
        .route("/enrol/{token}", get(enrol_page).post(enrol_save))
        .route("/account", get(account_page).post(account_post))
        .fallback(not_found)
        .with_state(p)
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::track,
        ))
}

type Q = Query<HashMap<String, String>>;
type Peer = ConnectInfo<SocketAddr>;

async fn style() -> Response {
    let mut r = page::STYLE.into_response();
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

async fn home(
    State(p): State<Arc<Portal>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    let c = p.ctx(peer, &headers, &q);
    let t = c.lang.t();
    let body = format!(
        "<p>{}</p><p><a href=\"/account?lang={}\">{}</a></p>",
        esc(t.home_intro),
        c.lang.code(),
        esc(t.my_account)
    );
    html(
        StatusCode::OK,
        frame(c.lang, t.portal, "/", &body),
        p.secure,
        HeaderMap::new(),
    )
}

async fn not_found(
    State(p): State<Arc<Portal>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    let c = p.ctx(peer, &headers, &q);
    let t = c.lang.t();
    p.msg(&c, StatusCode::NOT_FOUND, t.unknown_title, t.not_found, "/")
}

/// The page of a link that does not enrol (used, expired, unknown, enrolled already).
fn state_page(p: &Portal, c: &Ctx, state: &InviteState, path: &str) -> Response {
    let t = c.lang.t();
    let (status, title, text) = match state {
        InviteState::Used { .. } => (StatusCode::GONE, t.used_title, t.used),
        InviteState::Expired { .. } => (StatusCode::GONE, t.expired_title, t.expired),
        InviteState::AlreadyEnrolled { .. } => (StatusCode::CONFLICT, t.enrolled_title, t.enrolled),
        InviteState::Unknown | InviteState::Usable { .. } => {
            (StatusCode::NOT_FOUND, t.unknown_title, t.unknown)
        }
    };
    p.msg(c, status, title, text, path)
}

/// The enrolment page: the steps, the QR code and key, and (until linked) the code form
/// whose code field is the page's first input.
fn enrol_html(
    t: &T,
    p: &Portal,
    user: &UserName,
    secret: &TotpSecret,
    csrf: &str,
    note: Option<(&str, &str)>,
    linked: bool,
) -> Result<String, String> {
    let mut body = Zeroizing::new(String::new());
    if let Some((class, text)) = note {
        body.push_str(&format!(
            "<p class=\"{class}\" id=\"message\" role=\"status\">{}</p>",
            esc(text)
        ));
    }
    body.push_str(&format!(
        "<p>{}: <strong id=\"user\">{}</strong></p><ol><li>{}</li><li>{}</li><li>{}{}</li>",
        esc(t.account_for),
        esc(user.as_str()),
        esc(t.step_install),
        esc(t.step_add),
        esc(t.step_scan),
        key_block(t, p, user, secret)?.as_str(),
    ));
    if !linked {
        body.push_str(&format!("<li>{}</li>", esc(t.step_code)));
    }
    body.push_str("</ol>");
    if !linked {
        // Last, as the manuals have it; its code field is still the page's first input (the
        // steps above hold none).
        body.push_str(&format!(
            "<form method=\"post\" id=\"enrol\"><label for=\"code\">{}</label><input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9 ]{{6,10}}\" maxlength=\"10\" required autofocus><input type=\"hidden\" name=\"csrf\" value=\"{}\"> <button type=\"submit\">{}</button></form>",
            esc(t.code),
            esc(csrf),
            esc(t.save)
        ));
    }
    Ok(body.to_string())
}

/// A new key as every page shows it: the QR code (inline SVG), the account name, the key in
/// groups of four in upper case, its kind.
fn key_block(
    t: &T,
    p: &Portal,
    user: &UserName,
    secret: &TotpSecret,
) -> Result<Zeroizing<String>, String> {
    let cfg = p.core.config();
    let params = cfg.totp.params();
    let sheet = Sheet::new(&cfg.totp.issuer, user, secret, &params);
    let svg = qr_svg(&sheet.uri)?;
    // The SVG document without its XML prolog, inline in the page.
    let svg_inline = svg
        .find("<svg")
        .and_then(|i| svg.get(i..))
        .ok_or("QR code without <svg>")?;
    let key_upper = Zeroizing::new(sheet.key.to_ascii_uppercase());
    Ok(Zeroizing::new(format!(
        "<div class=\"qr\" id=\"qr\">{}</div><p>{}: <strong id=\"account\">{}</strong><br>{}: <span class=\"key\" id=\"key\">{}</span><br><small>{}</small></p>",
        svg_inline,
        esc(t.account_name),
        esc(&sheet.account),
        esc(t.key),
        esc(&key_upper),
        esc(&sheet.kind),
    )))
}

/// "Replace key": the new key (QR code and key) and the form that confirms it with a code
/// from the app that holds it, or cancels.
fn replace_view(
    p: &Portal,
    c: &Ctx,
    user: &UserName,
    secret: &TotpSecret,
    csrf: &str,
    note: Option<(&str, &str)>,
    status: StatusCode,
) -> Response {
    let t = c.lang.t();
    let Ok(key) = key_block(t, p, user, secret) else {
        return p.failure(c, "/account");
    };
    let lang = c.lang.code();
    let note = note
        .map(|(class, text)| {
            format!(
                "<p class=\"{class}\" id=\"message\" role=\"status\">{}</p>",
                esc(text)
            )
        })
        .unwrap_or_default();
    let body = Zeroizing::new(format!(
        "{note}<p>{} <strong id=\"user\">{}</strong></p><p>{}</p><ol><li>{}</li><li>{}{}</li><li>{}</li></ol><form method=\"post\" action=\"/account?lang={lang}\" id=\"replace\"><input type=\"hidden\" name=\"action\" value=\"replace-confirm\"><label for=\"code\">{}</label><input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9 ]{{6,10}}\" maxlength=\"10\" required autofocus><label class=\"check\"><input type=\"checkbox\" id=\"end-old\" name=\"end_old\" value=\"1\"> {}</label><input type=\"hidden\" name=\"csrf\" value=\"{}\"> <button type=\"submit\" id=\"replace-confirm\">{}</button></form><form method=\"post\" action=\"/account?lang={lang}\"><input type=\"hidden\" name=\"action\" value=\"replace-cancel\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" id=\"replace-cancel\">{}</button></form>",
        esc(t.signed_in_as),
        esc(user.as_str()),
        esc(t.replace_intro),
        esc(t.replace_step_add),
        esc(t.step_scan),
        key.as_str(),
        esc(t.replace_step_code),
        esc(t.replace_code),
        esc(t.replace_end_old),
        esc(csrf),
        esc(t.replace_confirm),
        esc(csrf),
        esc(t.replace_cancel),
    ));
    html(
        status,
        frame(c.lang, t.replace_title, "/account", &body),
        p.secure,
        HeaderMap::new(),
    )
}

async fn enrol_page(
    State(p): State<Arc<Portal>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(q): Q,
) -> Response {
    let c = p.ctx(peer, &headers, &q);
    let t = c.lang.t();
    let path = "/enrol/".to_string() + &token;
    if !p.limit_address(Limit::Page, &c) {
        p.metrics.limited("address");
        p.audit_refusal(&c, None, "rate_limited").await;
        return p.msg(
            &c,
            StatusCode::TOO_MANY_REQUESTS,
            t.refused_title,
            t.too_many,
            &path,
        );
    }
    let (me, tok) = (p.clone(), token.clone());
    let Some(Ok(state)) = blocking(move || me.core.invites(ACTOR).state(&tok, now())).await else {
        return p.failure(&c, &path);
    };
    let InviteState::Usable { user, .. } = state else {
        let (me, st, ip) = (p.clone(), state.clone(), Portal::ip_text(&c));
        let _ = blocking(move || me.core.invites(ACTOR).refused(&st, ip.as_deref(), now())).await;
        return state_page(&p, &c, &state, &path);
    };
    let hash = token_hash(&token);
    // The key already shown to this session for this invite, or a new one (in a new
    // session: the one place a visitor without a sign-in gets a table entry).
    let existing = p
        .with_session(c.sid.as_deref(), |s| {
            if s.pending.as_ref().is_none_or(|pd| pd.invite != hash) {
                s.pending = TotpSecret::generate().ok().map(|secret| Pending {
                    invite: hash,
                    user: user.clone(),
                    secret,
                });
            }
            s.pending
                .as_ref()
                .map(|pd| Zeroizing::new(pd.secret.bytes().to_vec()))
        })
        .flatten();
    let (sid, bytes, cookie) = match (existing, c.sid.clone()) {
        (Some(bytes), Some(sid)) => (sid, bytes, HeaderMap::new()),
        _ => {
            let Ok(secret) = TotpSecret::generate() else {
                return p.failure(&c, &path);
            };
            let bytes = Zeroizing::new(secret.bytes().to_vec());
            let pending = Pending {
                invite: hash,
                user: user.clone(),
                secret,
            };
            let Some(sid) = p.sessions.create(|s| s.pending = Some(pending)) else {
                return p.failure(&c, &path);
            };
            let cookie = p.cookie(&sid);
            (sid, bytes, cookie)
        }
    };
    let csrf = p.sessions.csrf(&sid);
    let Ok(secret) = TotpSecret::from_bytes(&bytes) else {
        return p.failure(&c, &path);
    };
    match enrol_html(t, &p, &user, &secret, &csrf, None, false) {
        Ok(body) => html(
            StatusCode::OK,
            frame(c.lang, t.enrol_title, &path, &body),
            p.secure,
            cookie,
        ),
        Err(_) => p.failure(&c, &path),
    }
}

/// Reads a bounded form body; `Err` is the page to answer (and the refusal is audited).
async fn read_form(
    p: &Arc<Portal>,
    c: &Ctx,
    body: Body,
    path: &str,
) -> Result<HashMap<String, Zeroizing<String>>, Response> {
    let t = c.lang.t();
    let read = tokio::time::timeout(p.body_timeout, axum::body::to_bytes(body, MAX_BODY));
    let bytes: Bytes = match read.await {
        Ok(Ok(b)) => b,
        // A body trickling in holds a connection: it gets as long as a request's head.
        Err(_) => {
            p.audit_refusal(c, None, "slow_form").await;
            return Err(p.msg(
                c,
                StatusCode::REQUEST_TIMEOUT,
                t.refused_title,
                t.too_slow,
                path,
            ));
        }
        Ok(Err(_)) => {
            p.audit_refusal(c, None, "oversized_form").await;
            return Err(p.msg(
                c,
                StatusCode::PAYLOAD_TOO_LARGE,
                t.refused_title,
                t.too_big,
                path,
            ));
        }
    };
    match parse_form(&bytes, max_field) {
        Ok(f) => Ok(f.into_iter().collect()),
        Err(FormError::TooLong) => {
            p.audit_refusal(c, None, "oversized_field").await;
            Err(p.msg(
                c,
                StatusCode::PAYLOAD_TOO_LARGE,
                t.refused_title,
                t.too_big,
                path,
            ))
        }
        Err(FormError::Malformed) => {
            p.audit_refusal(c, None, "bad_form").await;
            Err(p.msg(
                c,
                StatusCode::BAD_REQUEST,
                t.refused_title,
                t.bad_form,
                path,
            ))
        }
    }
}

/// The form's CSRF token is the one of the request's session (constant time); otherwise
/// the page to answer, audited. With `anonymous` (the sign-in form) the cookie's id is
/// enough; every other form needs a live session.
async fn check_csrf(
    p: &Arc<Portal>,
    c: &Ctx,
    form: &HashMap<String, Zeroizing<String>>,
    path: &str,
    anonymous: bool,
) -> Result<(), Response> {
    let t = c.lang.t();
    let sid = c
        .sid
        .as_deref()
        .filter(|sid| anonymous || p.with_session(Some(sid), |_| ()).is_some());
    let Some(sid) = sid else {
        p.audit_refusal(c, None, "session_missing").await;
        return Err(p.msg(c, StatusCode::BAD_REQUEST, t.refused_title, t.session, path));
    };
    let given = form.get("csrf").map(|v| v.as_bytes()).unwrap_or(b"");
    if !p.sessions.csrf_ok(sid, given) {
        p.audit_refusal(c, None, "csrf_refused").await;
        return Err(p.msg(c, StatusCode::FORBIDDEN, t.refused_title, t.csrf, path));
    }
    Ok(())
}

async fn enrol_save(
    State(p): State<Arc<Portal>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(q): Q,
    body: Body,
) -> Response {
    let c = p.ctx(peer, &headers, &q);
    let t = c.lang.t();
    let path = "/enrol/".to_string() + &token;
    let hash = token_hash(&token);
    let by_address = p.limit_address(Limit::Post, &c);
    let by_invite = by_address && p.limit(Limit::Invite, &HEXLOWER.encode(&hash));
    if !by_invite {
        p.metrics
            .limited(if by_address { "invite" } else { "address" });
        p.audit_refusal(&c, None, "rate_limited").await;
        return p.msg(
            &c,
            StatusCode::TOO_MANY_REQUESTS,
            t.refused_title,
            t.too_many,
            &path,
        );
    }
    let form = match read_form(&p, &c, body, &path).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = check_csrf(&p, &c, &form, &path, false).await {
        return r;
    }
    // The key shown to this session for this very invite.
    let pending = p.with_session(c.sid.as_deref(), |s| {
        s.pending
            .as_ref()
            .filter(|pd| pd.invite == hash)
            .map(|pd| (pd.user.clone(), Zeroizing::new(pd.secret.bytes().to_vec())))
    });
    let csrf = c.sid.as_deref().map(|sid| p.sessions.csrf(sid));
    let (Some(Some((user, bytes))), Some(csrf)) = (pending, csrf) else {
        // No key was shown here for this link (or it timed out): say what the link is.
        let (me, tok) = (p.clone(), token.clone());
        let state = blocking(move || me.core.invites(ACTOR).state(&tok, now())).await;
        if let Some(Ok(
            st @ (InviteState::Used { .. } | InviteState::Expired { .. } | InviteState::Unknown),
        )) = state
        {
            let (me, s2, ip) = (p.clone(), st.clone(), Portal::ip_text(&c));
            let _ =
                blocking(move || me.core.invites(ACTOR).refused(&s2, ip.as_deref(), now())).await;
            return state_page(&p, &c, &st, &path);
        }
        p.audit_refusal(&c, None, "session_missing").await;
        return p.msg(
            &c,
            StatusCode::BAD_REQUEST,
            t.refused_title,
            t.session,
            &path,
        );
    };
    let Ok(secret) = TotpSecret::from_bytes(&bytes) else {
        return p.failure(&c, &path);
    };
    let code = form.get("code").cloned().unwrap_or_default();
    let (me, tok, ip) = (p.clone(), token.clone(), Portal::ip_text(&c));
    let secret2 = TotpSecret::from_bytes(&bytes);
    let result = blocking(move || {
        let secret2 = secret2.map_err(|_| mfa_core::CoreError::Bug("secret"))?;
        me.core
            .invites(ACTOR)
            .enrol(&tok, &secret2, &code, ip.as_deref(), now())
    })
    .await;
    match result {
        Some(Ok(InviteEnrol::Linked { user })) => {
            p.metrics.enrolled("invite");
            // The last page that shows the key: then it is gone from memory too.
            let _ = p.with_session(c.sid.as_deref(), |s| s.pending = None);
            match enrol_html(t, &p, &user, &secret, &csrf, Some(("ok", t.linked)), true) {
                Ok(body) => html(
                    StatusCode::OK,
                    frame(c.lang, t.enrol_title, &path, &body),
                    p.secure,
                    HeaderMap::new(),
                ),
                Err(_) => p.failure(&c, &path),
            }
        }
        Some(Ok(InviteEnrol::WrongCode)) => {
            match enrol_html(
                t,
                &p,
                &user,
                &secret,
                &csrf,
                Some(("err", t.wrong_code)),
                false,
            ) {
                Ok(body) => html(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    frame(c.lang, t.enrol_title, &path, &body),
                    p.secure,
                    HeaderMap::new(),
                ),
                Err(_) => p.failure(&c, &path),
            }
        }
        Some(Ok(InviteEnrol::Refused(state))) => {
            let _ = p.with_session(c.sid.as_deref(), |s| s.pending = None);
            state_page(&p, &c, &state, &path)
        }
        _ => p.failure(&c, &path),
    }
}

/// "My account": the sign-in form, or the account of the signed-in user.
async fn account_page(
    State(p): State<Arc<Portal>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    let c = p.ctx(peer, &headers, &q);
    match (p.signed_in(&c), c.sid.as_deref()) {
        (Some(who), Some(sid)) => account_view(&p, &c, sid, &who, None).await,
        _ => sign_in_form(&p, &c, None),
    }
}

/// The sign-in form. It makes no session: its CSRF token is the MAC of the visitor's id
/// (the cookie's, or a new one set here), so any number of anonymous visits leave the
/// session table as it was.
fn sign_in_form(p: &Arc<Portal>, c: &Ctx, error: Option<&str>) -> Response {
    let t = c.lang.t();
    let Some(sid) = p.sessions.visitor_id(c.sid.as_deref()) else {
        return p.failure(c, "/account");
    };
    let csrf = p.sessions.csrf(&sid);
    let err = error
        .map(|e| format!("<p class=\"err\" id=\"message\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "{err}<p>{}</p><form method=\"post\" action=\"/account?lang={}\" id=\"signin\"><input type=\"hidden\" name=\"action\" value=\"signin\"><label for=\"user\">{}</label><input id=\"user\" name=\"user\" autocomplete=\"username\" maxlength=\"256\" required autofocus><label for=\"password\">{}</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" maxlength=\"1024\" required><label for=\"code\">{}</label><input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"16\" required><input type=\"hidden\" name=\"csrf\" value=\"{}\"><br><button type=\"submit\">{}</button></form>",
        esc(t.sign_in_intro),
        c.lang.code(),
        esc(t.user),
        esc(t.password),
        esc(t.code),
        esc(&csrf),
        esc(t.sign_in)
    );
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    html(
        status,
        frame(c.lang, t.my_account, "/account", &body),
        p.secure,
        p.cookie(&sid),
    )
}

/// The account page of a signed-in session `sid`, with `note` on top. The sign-in is
/// checked again against the record read for the page: a page is never shown to a session
/// whose key changed.
async fn account_view(
    p: &Arc<Portal>,
    c: &Ctx,
    sid: &str,
    who: &SignedIn,
    note: Option<String>,
) -> Response {
    let t = c.lang.t();
    let user = &who.user;
    let csrf = p.sessions.csrf(sid);
    let (me, u) = (p.clone(), user.clone());
    let data = blocking(move || {
        let rec = me.core.store().user(&u)?;
        let logins = me.core.store().recent_logins(&u, RECENT_LOGINS, now())?;
        Ok::<_, mfa_core::store::StoreError>((rec, logins))
    })
    .await;
    let Some(Ok((rec, logins))) = data else {
        return p.failure(c, "/account");
    };
    if who.key.holds(user, rec.as_ref(), now()).is_err() {
        return p.sign_in_ended(c, Some(sid), who).await;
    }
    let when = |v: Option<i64>| v.map_or(t.never.to_string(), format_utc);
    let mut rows = String::new();
    for e in &logins {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td></tr>",
            esc(&format_utc(e.time)),
            esc(&e.service),
            esc(e.client_ip.as_deref().unwrap_or("-")),
            esc(&e.decision),
            esc(&e.reason)
        ));
    }
    let table = if logins.is_empty() {
        format!("<p>{}</p>", esc(t.no_logins))
    } else {
        format!(
            "<table id=\"logins\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{rows}</table>",
            esc(t.time),
            esc(t.service),
            esc(t.address),
            esc(t.outcome)
        )
    };
    let lang = c.lang.code();
    let form = |action: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"/account?lang={lang}\"><input type=\"hidden\" name=\"action\" value=\"{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" id=\"{action}\">{}</button></form>",
            esc(&csrf),
            esc(label)
        )
    };
    let note = note.unwrap_or_default();
    let body = format!(
        "{note}<p>{} <strong id=\"user\">{}</strong></p><p>{}: <span id=\"mfa-created\">{}</span><br>{}: <span id=\"mfa-changed\">{}</span></p><h2>{}</h2>{table}<h2>{}</h2><p>{}</p>{}<h2>{}</h2><p>{}</p>{}<h2>{}</h2><p>{}</p>{}{}",
        esc(t.signed_in_as),
        esc(user.as_str()),
        esc(t.mfa_created),
        esc(&when(rec.as_ref().and_then(|r| r.mfa_created))),
        esc(t.mfa_changed),
        esc(&when(rec.as_ref().and_then(|r| r.mfa_changed))),
        esc(t.last_logins),
        esc(t.unlock_title),
        esc(&format!(
            "{} {}",
            t.unlock_intro,
            crate::text::unlock_scope(c.lang, &UnlockScope::of(p.core.config()))
        )),
        form("unlock", t.unlock_button),
        esc(t.backup_title),
        esc(t.backup_intro),
        form("backup-codes", t.backup_button),
        esc(t.replace_title),
        esc(t.replace_account_intro),
        form("replace-start", t.replace_button),
        form("signout", t.sign_out),
    );
    html(
        StatusCode::OK,
        frame(c.lang, t.my_account, "/account", &body),
        p.secure,
        HeaderMap::new(),
    )
}

async fn account_post(
    State(p): State<Arc<Portal>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Q,
    body: Body,
) -> Response {
    let started = tokio::time::Instant::now();
    let c = p.ctx(peer, &headers, &q);
    let t = c.lang.t();
    let path = "/account";
    if !p.limit_address(Limit::Post, &c) {
        p.metrics.limited("address");
        p.audit_refusal(&c, None, "rate_limited").await;
        return p.msg(
            &c,
            StatusCode::TOO_MANY_REQUESTS,
            t.refused_title,
            t.too_many,
            path,
        );
    }
    let form = match read_form(&p, &c, body, path).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let action = form
        .get("action")
        .map(|a| a.as_str().to_string())
        .unwrap_or_default();
    if action == "signin" {
        let r = sign_in(&p, &c, &form).await;
        // Every answer but a signed-in page waits for the same moment (SIGN_IN_FLOOR).
        if r.status() != StatusCode::OK {
            tokio::time::sleep_until(started + SIGN_IN_FLOOR).await;
        }
        return r;
    }
    if let Err(r) = check_csrf(&p, &c, &form, path, false).await {
        return r;
    }
    let (Some(who), Some(sid)) = (p.signed_in(&c), c.sid.clone()) else {
        p.audit_refusal(&c, None, "session_missing").await;
        return p.msg(
            &c,
            StatusCode::BAD_REQUEST,
            t.refused_title,
            t.session,
            path,
        );
    };
    // Every action first checks that the sign-in still holds; the ones that change the
    // record check it again in their own transaction.
    match p.still_signed_in(&who).await {
        Some(true) => {}
        Some(false) => return p.sign_in_ended(&c, Some(&sid), &who).await,
        None => return p.failure(&c, path),
    }
    let user = who.user.clone();
    let csrf = p.sessions.csrf(&sid);
    let ended = |e: &mfa_core::CoreError| {
        matches!(
            e,
            mfa_core::CoreError::Refused(mfa_core::Refusal::SignInEnded(_))
        )
    };
    match action.as_str() {
        "signout" => {
            p.drop_session(&sid);
            sign_in_form(&p, &c, None)
        }
        "unlock" => {
            let Some(ip) = c.client else {
                let n = format!(
                    "<p class=\"err\" id=\"message\">{}</p>",
                    esc(t.unlock_no_address)
                );
                return account_view(&p, &c, &sid, &who, Some(n)).await;
            };
            let (me, w) = (p.clone(), who.clone());
            let r = blocking(move || {
                me.core
                    .admin(ACTOR)
                    .remember_network(&w.user, &w.key, ip, now())
            })
            .await;
            let n = match r {
                Some(Ok(until)) => {
                    p.metrics.unlocks.inc();
                    format!(
                        "<p class=\"ok\" id=\"message\">{} {} ({}).</p>",
                        esc(t.unlocked),
                        esc(&format_utc(until)),
                        esc(&ip.to_string())
                    )
                }
                Some(Err(mfa_core::CoreError::Refused(mfa_core::Refusal::RememberOff))) => {
                    format!("<p class=\"err\" id=\"message\">{}</p>", esc(t.unlock_off))
                }
                Some(Err(e)) if ended(&e) => {
                    return p.sign_in_ended(&c, Some(&sid), &who).await;
                }
                _ => return p.failure(&c, path),
            };
            account_view(&p, &c, &sid, &who, Some(n)).await
        }
        "replace-start" => {
            // The key already shown to this session (a reload, the page opened again), or a
            // new one: never stored before it is confirmed.
            let shown = p
                .with_session(Some(&sid), |s| {
                    if s.replacing.is_none() {
                        s.replacing = TotpSecret::generate().ok();
                    }
                    s.replacing.clone()
                })
                .flatten();
            let Some(secret) = shown else {
                return p.failure(&c, path);
            };
            replace_view(&p, &c, &user, &secret, &csrf, None, StatusCode::OK)
        }
        "replace-cancel" => {
            let _ = p.with_session(Some(&sid), |s| s.replacing = None);
            let n = format!(
                "<p class=\"ok\" id=\"message\">{}</p>",
                esc(t.replace_cancelled)
            );
            account_view(&p, &c, &sid, &who, Some(n)).await
        }
        "replace-confirm" => {
            let Some(Some(secret)) = p.with_session(Some(&sid), |s| s.replacing.clone()) else {
                // Confirmed already, cancelled, or never started: nothing to show again.
                p.audit_refusal(&c, Some(user.to_string()), "replace_not_started")
                    .await;
                let n = format!(
                    "<p class=\"err\" id=\"message\">{}</p>",
                    esc(t.replace_none)
                );
                return account_view(&p, &c, &sid, &who, Some(n)).await;
            };
            if !p.limit(Limit::Replace, user.as_str()) {
                p.metrics.limited("user");
                p.audit_refusal(&c, Some(user.to_string()), "rate_limited")
                    .await;
                return p.msg(
                    &c,
                    StatusCode::TOO_MANY_REQUESTS,
                    t.refused_title,
                    t.too_many,
                    path,
                );
            }
            let code = form.get("code").cloned().unwrap_or_default();
            let end_old = form.get("end_old").is_some_and(|v| v.as_str() == "1");
            let (me, w, k, ip) = (p.clone(), who.clone(), secret.clone(), Portal::ip_text(&c));
            let r = blocking(move || {
                let own = OwnKey {
                    user: &w.user,
                    signed_in: &w.key,
                    secret: &k,
                    code: &code,
                    end_old,
                    client_ip: ip.as_deref(),
                };
                me.core.enrolment().replace_own_key(&own, ACTOR, now())
            })
            .await;
            match r {
                Some(Ok(key)) => {
                    p.metrics.enrolled("replace");
                    // Confirmed: the new key is gone from memory, and no page shows it again.
                    // The session goes on with the key it just proved (the generation the
                    // core wrote), as if signed in with it.
                    let who = SignedIn { user, key };
                    let w = who.clone();
                    let _ = p.with_session(Some(&sid), |s| {
                        s.replacing = None;
                        s.user = Some(w);
                    });
                    drop(secret);
                    let text = if end_old {
                        t.replaced_end_old
                    } else {
                        t.replaced
                    };
                    let n = format!("<p class=\"ok\" id=\"message\">{}</p>", esc(text));
                    account_view(&p, &c, &sid, &who, Some(n)).await
                }
                Some(Err(mfa_core::CoreError::Refused(
                    mfa_core::Refusal::WrongConfirmationCode,
                ))) => replace_view(
                    &p,
                    &c,
                    &user,
                    &secret,
                    &csrf,
                    Some(("err", t.replace_wrong_code)),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                Some(Err(mfa_core::CoreError::Refused(mfa_core::Refusal::NotEnrolled(_)))) => {
                    let _ = p.with_session(Some(&sid), |s| s.replacing = None);
                    let n = format!(
                        "<p class=\"err\" id=\"message\">{}</p>",
                        esc(t.replace_not_enrolled)
                    );
                    account_view(&p, &c, &sid, &who, Some(n)).await
                }
                Some(Err(e)) if ended(&e) => p.sign_in_ended(&c, Some(&sid), &who).await,
                _ => p.failure(&c, path),
            }
        }
        "backup-codes" => {
            let (me, w) = (p.clone(), who.clone());
            let r = blocking(move || {
                me.core.admin(ACTOR).issue_backup_codes(
                    &w.user,
                    BACKUP_CODES_DEFAULT,
                    Some(&w.key),
                    now(),
                )
            })
            .await;
            let codes = match r {
                Some(Ok(codes)) => codes,
                Some(Err(e)) if ended(&e) => {
                    return p.sign_in_ended(&c, Some(&sid), &who).await;
                }
                _ => return p.failure(&c, path),
            };
            let mut list = String::from("<ul id=\"backup-codes\" class=\"key\">");
            for code in &codes {
                list.push_str(&format!("<li>{}</li>", esc(code)));
            }
            list.push_str("</ul>");
            let n = format!(
                "<div class=\"ok\" id=\"message\"><p>{}</p>{list}</div>",
                esc(t.backup_shown)
            );
            account_view(&p, &c, &sid, &who, Some(n)).await
        }
        _ => {
            p.audit_refusal(&c, Some(user.to_string()), "bad_form")
                .await;
            p.msg(
                &c,
                StatusCode::BAD_REQUEST,
                t.refused_title,
                t.bad_form,
                path,
            )
        }
    }
}

/// Password through PAM (off the async threads), then the code through the core, always.
/// Rate-limited per address and per user; the caller holds every refusal until
/// [`SIGN_IN_FLOOR`].
async fn sign_in(p: &Arc<Portal>, c: &Ctx, form: &HashMap<String, Zeroizing<String>>) -> Response {
    let t = c.lang.t();
    if let Err(r) = check_csrf(p, c, form, "/account", true).await {
        return r;
    }
    let raw = form
        .get("user")
        .map(|u| u.as_str().trim().to_string())
        .unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let code = form.get("code").cloned().unwrap_or_default();
    if !p.limit_address(Limit::SignIn, c) {
        p.metrics.limited("address");
        p.audit_refusal(c, None, "rate_limited").await;
        return p.msg(
            c,
            StatusCode::TOO_MANY_REQUESTS,
            t.refused_title,
            t.too_many,
            "/account",
        );
    }
    // Off the async threads: under `[users] unicode = "allow"` the name is checked against
    // the stored ones (look-alikes).
    let (me, r) = (p.clone(), raw.clone());
    let user = match blocking(move || me.core.user_name(&r)).await {
        Some(Ok(u)) => u,
        Some(Err(mfa_core::CoreError::BadUserName { .. })) => {
            p.metrics.sign_in("refused");
            p.audit_refusal(c, None, "invalid_user_name").await;
            return sign_in_form(p, c, Some(t.wrong_sign_in));
        }
        _ => {
            p.metrics.sign_in("refused");
            return p.failure(c, "/account");
        }
    };
    // Counted before the password is checked, given back after a sign-in: only failures
    // stay counted.
    if !p.limit(Limit::SignInUser, user.as_str()) {
        p.metrics.limited("user");
        p.audit_refusal(c, Some(user.to_string()), "rate_limited")
            .await;
        return p.msg(
            c,
            StatusCode::TOO_MANY_REQUESTS,
            t.refused_title,
            t.too_many_user,
            "/account",
        );
    }
    let client = ClientAddr::Remote(c.client);
    let req = Request::new(&user, client, ACTOR).vouched(false);
    let (service, confdir, uname) = (
        p.pam_service.clone(),
        p.pam_confdir.clone(),
        user.to_string(),
    );
    let rhost = Portal::ip_text(c);
    let pw = Zeroizing::new(password.as_bytes().to_vec());
    let check = blocking(move || {
        mfa_pam_client::check(&mfa_pam_client::PamRequest {
            service: &service,
            user: &uname,
            password: &pw,
            rhost: rhost.as_deref(),
            confdir: confdir.as_deref(),
        })
    })
    .await;
    let Some(check) = check else {
        p.metrics.sign_in("refused");
        return p.failure(c, "/account");
    };
    if !check.ok {
        // PAM's fail delay is not waited out here: the caller's floor stands in for it, for
        // every refusal alike.
        p.metrics.sign_in("wrong_password");
        let (me, r) = (p.clone(), req.clone());
        let _ = blocking(move || me.core.login().deny_first_factor(&r)).await;
        return sign_in_form(p, c, Some(t.wrong_sign_in));
    }
    let (me, r) = (p.clone(), req.vouched(true));
    let d = blocking(move || me.core.login().verify_code_always(&r, &code)).await;
    match d {
        Some(Ok((d, Some(key)))) if d.is_allowed() => {
            p.metrics.sign_in("ok");
            p.limits.refund(Limit::SignInUser, user.as_str());
            // A new session for the signed-in user (the sign-in form's id is not reused),
            // bound to the key the code was checked against.
            if let Some(sid) = &c.sid {
                p.drop_session(sid);
            }
            let who = SignedIn { user, key };
            let w = who.clone();
            let Some(sid) = p.sessions.create(|s| s.user = Some(w)) else {
                return p.failure(c, "/account");
            };
            let mut r = account_view(p, c, &sid, &who, None).await;
            for (k, v) in p.cookie(&sid).iter() {
                r.headers_mut().append(k.clone(), v.clone());
            }
            r
        }
        Some(Ok(_)) => {
            p.metrics.sign_in("wrong_code");
            sign_in_form(p, c, Some(t.wrong_sign_in))
        }
        _ => {
            p.metrics.sign_in("refused");
            p.failure(c, "/account")
        }
    }
}
