//! Forms: the body read within its size and time limits, parsed with a limit per field,
//! and the CSRF token checked; every refusal audited and answered (see [`Refused`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use zeroize::Zeroizing;

use crate::app::Portal;
use crate::client::Ctx;
use crate::refusal::Refused;

/// Largest form body read; more is refused with a page.
const MAX_BODY: usize = 4096;
/// Largest body of a phone's registration: its Web Push subscription (JSON, up to 4 KiB as
/// the core takes it, percent-encoded) beside the name and the key.
pub const MAX_REGISTRATION_BODY: usize = 16 * 1024;

/// Largest field of each name (bytes): a user name as the sign-in form allows it, a code
/// with room for spaces, the CSRF token, an action; a password; anything else is short.
fn max_field(name: &str) -> usize {
    match name {
        "user" => 256,
        "code" => 16,
        "csrf" | "action" => 64,
        "password" => 1024,
        // A phone's registration: the browser's subscription JSON (the core's limit), its
        // approval key (base64url of SPKI DER), its name (64 characters of up to 4 bytes).
        "subscription" => 4096,
        "public_key" => 256,
        "name" => 256,
        // A decision's signature: base64url of 64 bytes.
        "signature" => 128,
        _ => 64,
    }
}

/// A parsed form: field values, wiped when dropped (a password, a code).
pub struct Form(HashMap<String, Zeroizing<String>>);

impl Form {
    /// The value of field `name`; empty where the form has none.
    pub fn field(&self, name: &str) -> Zeroizing<String> {
        self.0.get(name).cloned().unwrap_or_default()
    }

    /// Whether field `name` holds `value`.
    pub fn is(&self, name: &str, value: &str) -> bool {
        self.0.get(name).is_some_and(|v| v.as_str() == value)
    }
}

#[cfg(test)]
impl Form {
    /// The form of `body` (the tests of the handlers' parsing).
    pub fn parse_for_test(body: &[u8]) -> Option<Form> {
        parse_form(body, max_field)
            .ok()
            .map(|f| Form(f.into_iter().collect()))
    }
}

/// Reads a bounded form body; `Err` is the page to answer (and the refusal is audited).
pub async fn read_form(p: &Arc<Portal>, c: &Ctx, body: Body, path: &str) -> Result<Form, Response> {
    read_form_limited(p, c, body, path, MAX_BODY).await
}

/// [`read_form`] with a body of up to `max` bytes (a phone's registration).
pub async fn read_form_limited(
    p: &Arc<Portal>,
    c: &Ctx,
    body: Body,
    path: &str,
    max: usize,
) -> Result<Form, Response> {
    let read = tokio::time::timeout(p.body_timeout, axum::body::to_bytes(body, max));
    let why = match read.await {
        Ok(Ok(bytes)) => match parse_form(&bytes, max_field) {
            Ok(f) => return Ok(Form(f.into_iter().collect())),
            Err(FormError::TooLong) => Refused::OversizedField,
            Err(FormError::Malformed) => Refused::BadForm,
        },
        // A body trickling in holds a connection: it gets as long as a request's head.
        Err(_) => Refused::SlowForm,
        Ok(Err(_)) => Refused::OversizedForm,
    };
    Err(p.refuse(c, why, None, path).await)
}

/// The form's CSRF token is the one of the request's session (constant time); otherwise
/// the page to answer, audited. With `anonymous` (the sign-in form) the cookie's id is
/// enough; every other form needs a live session.
pub async fn check_csrf(
    p: &Arc<Portal>,
    c: &Ctx,
    form: &Form,
    path: &str,
    anonymous: bool,
) -> Result<(), Response> {
    let sid = c
        .sid
        .as_deref()
        .filter(|sid| anonymous || p.with_session(Some(sid), |_| ()).is_some());
    let Some(sid) = sid else {
        return Err(p.refuse(c, Refused::SessionMissing, None, path).await);
    };
    let given = form.0.get("csrf").map(|v| v.as_bytes()).unwrap_or(b"");
    if !p.sessions.csrf_ok(sid, given) {
        return Err(p.refuse(c, Refused::BadCsrf, None, path).await);
    }
    Ok(())
}

/// Why a form body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// Bad percent-encoding, not UTF-8, too many fields, a name over 32 bytes.
    Malformed,
    /// A field over its limit.
    TooLong,
}

/// Parses an `application/x-www-form-urlencoded` body. Written here (a few lines) so that
/// the field-count and size limits are checked in one place: `max_field(name)` is the most
/// bytes the field `name` may hold.
pub fn parse_form(
    body: &[u8],
    max_field: impl Fn(&str) -> usize,
) -> Result<Vec<(String, Zeroizing<String>)>, FormError> {
    let mut out = Vec::new();
    if body.is_empty() {
        return Ok(out);
    }
    for pair in body.split(|&b| b == b'&') {
        if out.len() >= 16 {
            return Err(FormError::Malformed);
        }
        let mut it = pair.splitn(2, |&b| b == b'=');
        let k = decode(it.next().unwrap_or(b"")).ok_or(FormError::Malformed)?;
        if k.len() > 32 {
            return Err(FormError::Malformed);
        }
        let v = decode(it.next().unwrap_or(b"")).ok_or(FormError::Malformed)?;
        if v.len() > max_field(&k) {
            return Err(FormError::TooLong);
        }
        out.push((k.to_string(), v));
    }
    Ok(out)
}

fn decode(s: &[u8]) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(Vec::with_capacity(s.len()));
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                let h = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out.to_vec()).ok().map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let f = parse_form(b"code=123+456&csrf=a%2Fb", |_| 64).unwrap();
        assert_eq!(f[0].0, "code");
        assert_eq!(f[0].1.as_str(), "123 456");
        assert_eq!(f[1].1.as_str(), "a/b");
        assert_eq!(parse_form(b"code=%zz", |_| 64), Err(FormError::Malformed));
        assert_eq!(parse_form(b"code=12345", |_| 4), Err(FormError::TooLong));
        let by_name = |k: &str| if k == "user" { 3 } else { 64 };
        assert_eq!(parse_form(b"user=abcd", by_name), Err(FormError::TooLong));
        assert!(parse_form(b"user=abc&code=abcd", by_name).is_ok());
        let form = Form(
            parse_form(b"end_old=1&code=12", |_| 64)
                .unwrap()
                .into_iter()
                .collect(),
        );
        assert_eq!(form.field("code").as_str(), "12");
        assert_eq!(form.field("user").as_str(), "");
        assert!(form.is("end_old", "1") && !form.is("code", "1") && !form.is("x", ""));
    }
}
