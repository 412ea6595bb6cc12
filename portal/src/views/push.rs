//! The pages of push approval: registering a phone (from My account), the approval page of
//! one request, the installed app's list of waiting requests, and My account's list of
//! phones. The first three carry their own script (`/js/register.js`, `/js/approve.js`);
//! the words a script shows are in the page's `data-` attributes, so every text stays in
//! `text.rs`, in English and Dutch.

use axum::http::StatusCode;
use axum::response::Response;
use mfa_config::format_utc;
use mfa_core::PushState;
use mfa_core::push::{DeviceInfo, PushView};

use crate::app::Portal;
use crate::client::Ctx;
use crate::page::esc;
use crate::text::T;
use crate::zone::Zone;

/// The page's path of the registration.
pub const PHONE_PATH: &str = "/account/phone";
/// The installed app's start page: the list of requests waiting for this phone.
pub const PENDING_PATH: &str = "/push";

/// A request's state in words.
pub fn state_text(t: &T, s: PushState) -> &'static str {
    match s {
        PushState::Pending => t.state_pending,
        PushState::Approved => t.state_approved,
        PushState::Denied => t.state_denied,
        PushState::Expired => t.state_expired,
        PushState::Fraud => t.state_fraud,
        PushState::Undeliverable => t.state_undeliverable,
    }
}

/// `data-NAME="TEXT"` for each pair, escaped.
fn data(attrs: &[(&str, &str)]) -> String {
    attrs
        .iter()
        .map(|(k, v)| format!(" data-{k}=\"{}\"", esc(v)))
        .collect()
}

/// "Use this phone to approve sign-ins": the device's name and the button; the script
/// does the rest (subscription, key, post).
pub fn register(p: &Portal, c: &Ctx, user: &str, csrf: &str, vapid: &str) -> Response {
    let t = c.lang.t();
    let lang = c.lang.code();
    let body = format!(
        "<p>{} <strong id=\"user\">{}</strong></p><p>{}</p><p>{}</p><noscript><p class=\"err\">{}</p></noscript><p id=\"message\" role=\"status\" hidden></p><div id=\"register-box\"{}><form id=\"register\" method=\"post\" action=\"{PHONE_PATH}?lang={lang}\"><label for=\"name\">{}</label><input id=\"name\" name=\"name\" maxlength=\"64\" required value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><br><button type=\"submit\" id=\"register-button\" disabled>{}</button></form></div><p id=\"registered\" hidden><a href=\"{PENDING_PATH}?lang={lang}\">{}</a></p><p><a id=\"back\" href=\"/account?lang={lang}\">{}</a></p>",
        esc(t.signed_in_as),
        esc(user),
        esc(t.phone_intro),
        esc(t.phone_ios),
        esc(t.phone_noscript),
        data(&[
            ("vapid", vapid),
            ("user", user),
            ("lang", lang),
            ("working", t.phone_working),
            ("permission", t.phone_permission),
            ("unsupported", t.phone_unsupported),
            ("failed", t.phone_failed),
        ]),
        esc(t.phone_name_label),
        esc(t.phone_name_default),
        esc(csrf),
        esc(t.phone_title),
        esc(t.pending_title),
        esc(t.back_to_account),
    );
    p.script_page(
        c,
        StatusCode::OK,
        t.phone_title,
        PHONE_PATH,
        &body,
        "/js/register.js",
    )
}

/// The approval page of request `v`: what asks, from where, when; the number field where
/// the sign-in shows a number; Approve, Deny, "This wasn't me" while it is pending.
pub fn approval(p: &Portal, c: &Ctx, v: &PushView, path: &str) -> Response {
    let t = c.lang.t();
    let time = |s: i64| {
        let u = format_utc(s);
        format!("<time datetime=\"{u}\">{u}</time>")
    };
    let mut body = format!(
        "<p>{}</p><dl class=\"request\" id=\"request\"><dt>{}</dt><dd id=\"req-user\">{}</dd><dt>{}</dt><dd id=\"req-service\">{}</dd><dt>{}</dt><dd id=\"req-address\">{}</dd><dt>{}</dt><dd id=\"req-time\">{}</dd><dt>{}</dt><dd id=\"req-expires\">{}</dd><dt>{}</dt><dd id=\"state\">{}</dd></dl><p id=\"message\" role=\"status\" hidden></p>",
        esc(t.push_intro),
        esc(t.account_for),
        esc(v.user.as_str()),
        esc(t.service),
        esc(&v.service),
        esc(t.address),
        esc(v.client_ip.as_deref().unwrap_or("-")),
        esc(t.time),
        time(v.created),
        esc(t.push_expires),
        time(v.expires),
        esc(t.push_state),
        esc(state_text(t, v.state)),
    );
    if v.state == PushState::Pending {
        let number = if v.number_matching {
            format!(
                "<label for=\"number\">{}</label><input id=\"number\" name=\"number\" inputmode=\"numeric\" pattern=\"[0-9]{{2}}\" maxlength=\"2\" autocomplete=\"off\" required autofocus>",
                esc(t.push_number)
            )
        } else {
            String::new()
        };
        body.push_str(&format!(
            "<noscript><p class=\"err\">{}</p></noscript><div class=\"decide\" id=\"decide\"{}>{number}<button type=\"button\" id=\"approve\" data-decision=\"approve\" disabled>{}</button><button type=\"button\" id=\"deny\" data-decision=\"deny\" disabled>{}</button><button type=\"button\" id=\"fraud\" data-decision=\"fraud\" disabled>{}</button><p><small>{}</small></p></div>",
            esc(t.push_noscript),
            data(&[
                ("request", &v.id.hex()),
                ("user", v.user.as_str()),
                ("type-number", t.push_type_number),
                ("not-registered", t.push_not_registered),
                ("working", t.push_working),
                ("failed", t.push_failed),
            ]),
            esc(t.push_approve),
            esc(t.push_deny),
            esc(t.push_fraud),
            esc(t.push_fraud_hint),
        ));
    }
    p.script_page(
        c,
        StatusCode::OK,
        t.push_title,
        path,
        &body,
        "/js/approve.js",
    )
}

/// The installed app's start page: the script asks for the requests waiting for each
/// account this phone is registered for, and lists them.
pub fn pending(p: &Portal, c: &Ctx) -> Response {
    let t = c.lang.t();
    let lang = c.lang.code();
    let body = format!(
        "<p>{}</p><p id=\"message\" class=\"ok\" role=\"status\">{}</p><noscript><p class=\"err\">{}</p></noscript><div id=\"pending\"{}></div><ul id=\"requests\"></ul><p><a href=\"/account?lang={lang}\">{}</a></p>",
        esc(t.pending_intro),
        esc(t.pending_loading),
        esc(t.push_noscript),
        data(&[
            ("not-registered", t.push_not_registered),
            ("none", t.pending_none),
            ("some", t.pending_some),
            ("failed", t.push_failed),
        ]),
        esc(t.my_account),
    );
    p.script_page(
        c,
        StatusCode::OK,
        t.pending_title,
        PENDING_PATH,
        &body,
        "/js/approve.js",
    )
}

/// My account's section on phones: the list with a Remove button each, and the way to
/// register this one.
pub fn devices_section(t: &T, lang: &str, devices: &[DeviceInfo], csrf: &str) -> String {
    let list = if devices.is_empty() {
        format!("<p id=\"phones-none\">{}</p>", esc(t.phones_none))
    } else {
        let mut rows = String::new();
        for d in devices {
            let id = d.id.hex();
            rows.push_str(&format!(
                "<tr><td class=\"phone-name\">{}</td><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/account?lang={lang}\"><input type=\"hidden\" name=\"action\" value=\"device-remove\"><input type=\"hidden\" name=\"device\" value=\"{id}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" class=\"phone-remove\" id=\"remove-{id}\">{}</button></form></td></tr>",
                esc(&d.name),
                esc(&Zone::server().show_seconds(d.created)),
                esc(&d.last_used.map_or(t.never.to_string(), |v| Zone::server().show_seconds(v))),
                esc(csrf),
                esc(t.phone_remove),
            ));
        }
        format!(
            "<table id=\"phones\"><tr><th>{}</th><th>{}</th><th>{}</th><th></th></tr>{rows}</table>",
            esc(t.phone_col),
            esc(t.phone_added),
            esc(t.phone_last_used),
        )
    };
    format!(
        "<h2>{}</h2><p>{}</p>{list}<p><a id=\"phone-register\" href=\"{PHONE_PATH}?lang={lang}\">{}</a></p>",
        esc(t.phones_title),
        esc(t.phones_intro),
        esc(t.phone_title),
    )
}
