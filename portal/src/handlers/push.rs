//! The approval page (`GET /push/{id}`, opened from the notification) and the phone's
//! decision (`POST /push/{id}`), and the installed app's list of requests waiting for this
//! phone (`GET /push`, whose script asks `POST /push/pending`).
//!
//! No session: the request id (in the encrypted push) and the device id (kept on the phone)
//! are random capabilities, and a decision counts only with a signature of a registered
//! device's key over the exact message (docs/PUSH.md), checked by the core, which decides
//! each request once and audits it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use data_encoding::BASE64URL_NOPAD;
use mfa_config::format_utc;
use mfa_core::login::now;
use mfa_core::push::{Decided, PushDecision};
use mfa_core::{CoreError, DecisionRefusal, DeviceId, PushId, PushState, Refusal};

use crate::app::{ACTOR, Portal};
use crate::client::Ctx;
use crate::form::{Form, read_form};
use crate::handlers::json;
use crate::limits::Limit;
use crate::refusal::Refused;
use crate::text::T;
use crate::views;
use crate::views::push::{PENDING_PATH, state_text};

fn path_of(id: &str) -> String {
    format!("/push/{id}")
}

/// The answer where push approval is off.
fn off(p: &Portal, c: &Ctx, path: &str) -> Response {
    let t = c.lang.t();
    p.msg(c, StatusCode::NOT_FOUND, t.push_title, t.phone_off, path)
}

fn answer(p: &Portal, status: StatusCode, v: serde_json::Value) -> Response {
    json(status, v, p.secure)
}

/// A refusal as the page's script reads it.
fn refused(p: &Portal, status: StatusCode, message: &str) -> Response {
    answer(
        p,
        status,
        serde_json::json!({ "ok": false, "message": message }),
    )
}

pub async fn page(State(p): State<Arc<Portal>>, c: Ctx, Path(id): Path<String>) -> Response {
    let path = path_of(&id);
    let t = c.lang.t();
    if p.vapid_public.is_none() {
        return off(&p, &c, &path);
    }
    if !p.limit_address(Limit::Push, &c) {
        return p.refuse(&c, Refused::AddressLimit, None, &path).await;
    }
    let unknown = |p: &Portal| {
        p.msg(
            &c,
            StatusCode::NOT_FOUND,
            t.push_title,
            t.push_unknown,
            &path,
        )
    };
    let Some(id) = PushId::parse_hex(&id) else {
        return unknown(&p);
    };
    match p.run(move |core| core.push(ACTOR).view(&id, now())).await {
        Some(Ok(Some(v))) => views::push::approval(&p, &c, &v, &path),
        Some(Ok(None)) => unknown(&p),
        _ => p.failure(&c, &path),
    }
}

/// What the form says the phone decided: the decision (with the number typed, where it
/// approves) and the signature. `None`: not a decision of the approval page.
fn decision_of(form: &Form) -> Option<(DeviceId, PushDecision, Vec<u8>)> {
    let device = DeviceId::parse_hex(form.field("device").as_str())?;
    let typed = form.field("number");
    let number = match typed.as_str() {
        "" | "-" => None,
        n if n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()) => Some(n.parse::<u8>().ok()?),
        _ => return None,
    };
    let decision = match form.field("decision").as_str() {
        "approve" => PushDecision::Approve { number },
        "deny" => PushDecision::Deny,
        "fraud" => PushDecision::Fraud,
        _ => return None,
    };
    let sig = form.field("signature");
    let signature = BASE64URL_NOPAD
        .decode(sig.trim_end_matches('=').as_bytes())
        .ok()?;
    Some((device, decision, signature))
}

/// What the page says after a decision was taken.
fn decided_text(t: &T, d: &Decided) -> &'static str {
    match d.state {
        PushState::Approved => t.push_approved,
        PushState::Fraud => t.push_fraud_done,
        _ if d.wrong_number => t.push_wrong_number,
        _ => t.push_denied,
    }
}

pub async fn decide(
    State(p): State<Arc<Portal>>,
    c: Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let path = path_of(&id);
    let t = c.lang.t();
    if p.vapid_public.is_none() {
        return refused(&p, StatusCode::NOT_FOUND, t.phone_off);
    }
    if !p.limit_address(Limit::Push, &c) {
        return p.refuse(&c, Refused::AddressLimit, None, &path).await;
    }
    let form = match read_form(&p, &c, body, &path).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(id) = PushId::parse_hex(&id) else {
        return refused(&p, StatusCode::NOT_FOUND, t.push_unknown);
    };
    let Some((device, decision, signature)) = decision_of(&form) else {
        return refused(&p, StatusCode::BAD_REQUEST, t.push_bad_form);
    };
    let r = p
        .run(move |core| {
            let push = core.push(ACTOR);
            let created = push.view(&id, now())?.map(|v| v.created);
            push.decide(&id, &device, decision, &signature, now())
                .map(|d| (d, created))
        })
        .await;
    match r {
        Some(Ok((d, created))) => {
            let m = &p.metrics;
            m.push(match d.state {
                PushState::Approved => "approved",
                PushState::Fraud => "fraud",
                _ => "denied",
            });
            if let Some(created) = created {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64())
                    - created as f64;
                m.push_decision_seconds.observe(secs.max(0.0));
            }
            answer(
                &p,
                StatusCode::OK,
                serde_json::json!({
                    "ok": !d.wrong_number,
                    "final": true,
                    "state": d.state.as_str(),
                    "stateText": state_text(t, d.state),
                    "wrongNumber": d.wrong_number,
                    "message": decided_text(t, &d),
                }),
            )
        }
        Some(Err(CoreError::Refused(Refusal::PushDecision(why)))) => {
            let (status, text, state) = match why {
                DecisionRefusal::UnknownRequest => (StatusCode::NOT_FOUND, t.push_unknown, None),
                DecisionRefusal::UnknownDevice => (StatusCode::FORBIDDEN, t.push_bad_device, None),
                DecisionRefusal::BadSignature => {
                    (StatusCode::FORBIDDEN, t.push_bad_signature, None)
                }
                DecisionRefusal::Closed(s) => (StatusCode::CONFLICT, t.push_closed, Some(s)),
            };
            if matches!(
                why,
                DecisionRefusal::UnknownDevice | DecisionRefusal::BadSignature
            ) {
                eprintln!(
                    "mfa-portal: a decision on request {id} from {} was refused: {why}",
                    c.ip_text().as_deref().unwrap_or("an unknown address")
                );
            }
            let mut v =
                serde_json::json!({ "ok": false, "final": state.is_some(), "message": text });
            if let Some(s) = state {
                v["state"] = s.as_str().into();
                v["stateText"] = state_text(t, s).into();
            }
            answer(&p, status, v)
        }
        _ => p.failure(&c, &path),
    }
}

/// The installed app's start page.
pub async fn pending_page(State(p): State<Arc<Portal>>, c: Ctx) -> Response {
    if p.vapid_public.is_none() {
        return off(&p, &c, PENDING_PATH);
    }
    views::push::pending(&p, &c)
}

/// The requests waiting for the device the form names (its id is the phone's
/// capability): id, service, address, time; never the number.
pub async fn pending_list(State(p): State<Arc<Portal>>, c: Ctx, body: Body) -> Response {
    let t = c.lang.t();
    let path = "/push/pending";
    if p.vapid_public.is_none() {
        return refused(&p, StatusCode::NOT_FOUND, t.phone_off);
    }
    if !p.limit_address(Limit::Push, &c) {
        return p.refuse(&c, Refused::AddressLimit, None, path).await;
    }
    let form = match read_form(&p, &c, body, path).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(device) = DeviceId::parse_hex(form.field("device").as_str()) else {
        return refused(&p, StatusCode::BAD_REQUEST, t.push_bad_form);
    };
    match p
        .run(move |core| core.push(ACTOR).pending_for_device(&device, now()))
        .await
    {
        Some(Ok(list)) => {
            let requests: Vec<serde_json::Value> = list
                .iter()
                .map(|v| {
                    serde_json::json!({
                        "id": v.id.hex(),
                        "service": v.service,
                        "client_ip": v.client_ip,
                        "time": format_utc(v.created),
                        "expires": v.expires,
                    })
                })
                .collect();
            answer(
                &p,
                StatusCode::OK,
                serde_json::json!({ "ok": true, "requests": requests }),
            )
        }
        _ => p.failure(&c, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::Lang;

    fn parse(body: &str) -> Option<(DeviceId, PushDecision, Vec<u8>)> {
        decision_of(&Form::parse_for_test(body.as_bytes())?)
    }

    /// The form the approval page posts, and nothing else, is a decision.
    #[test]
    fn decisions_as_the_page_posts_them() {
        let dev = "0f0e0d0c0b0a09080706050403020100";
        let sig = "AAEC";
        let d = |rest: &str| parse(&format!("device={dev}&signature={sig}&{rest}"));
        let (id, decision, s) = d("decision=approve&number=42").unwrap();
        assert_eq!(id.hex(), dev);
        assert_eq!(decision, PushDecision::Approve { number: Some(42) });
        assert_eq!(s, [0, 1, 2]);
        assert_eq!(
            d("decision=approve&number=-").unwrap().1,
            PushDecision::Approve { number: None }
        );
        assert_eq!(
            d("decision=approve").unwrap().1,
            PushDecision::Approve { number: None }
        );
        assert_eq!(d("decision=deny&number=-").unwrap().1, PushDecision::Deny);
        assert_eq!(d("decision=fraud").unwrap().1, PushDecision::Fraud);
        for bad in [
            "decision=approve&number=300",
            "decision=approve&number=4x",
            "decision=approve&number=1234",
            "decision=approve&number=%2B4",
            "decision=maybe",
            "decision=",
        ] {
            assert!(d(bad).is_none(), "{bad}");
        }
        assert!(parse("device=zz&decision=deny&signature=AA").is_none());
        assert!(parse(&format!("device={dev}&decision=deny&signature=!!")).is_none());
        assert!(parse(&format!("device={dev}&decision=deny")).is_some_and(|d| d.2.is_empty()));
    }

    #[test]
    fn what_the_page_says_after_a_decision() {
        let t = Lang::En.t();
        let said = |state, wrong_number| {
            decided_text(
                t,
                &Decided {
                    state,
                    wrong_number,
                },
            )
        };
        assert_eq!(said(PushState::Approved, false), t.push_approved);
        assert_eq!(said(PushState::Denied, false), t.push_denied);
        assert_eq!(said(PushState::Denied, true), t.push_wrong_number);
        assert_eq!(said(PushState::Fraud, false), t.push_fraud_done);
    }
}
