//! "My account" of a signed-in user: when the key was set up and changed, the last logins,
//! and the actions (unlock this network, backup codes, Replace key, sign out).

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mfa_core::policy::UnlockScope;
use mfa_core::push::DeviceInfo;
use mfa_core::{AuditEvent, UserName, UserRecord};
use zeroize::Zeroizing;

use crate::app::Portal;
use crate::client::Ctx;
use crate::page::esc;
use crate::text::{Lang, T, fill, unlock_scope};
use crate::words::event_words;
use crate::zone::Zone;

/// What the page shows, as the handler read it.
pub struct Facts<'a> {
    pub user: &'a UserName,
    pub rec: Option<&'a UserRecord>,
    /// The last logins, newest first.
    pub logins: &'a [AuditEvent],
    /// The CSRF token of the page's forms.
    pub csrf: &'a str,
    /// The user's phones, where push approval is on (`[push] enabled`).
    pub devices: Option<&'a [DeviceInfo]>,
}

/// The account page, with `note` on top.
pub fn page(p: &Portal, c: &Ctx, f: &Facts<'_>, note: Option<String>) -> Response {
    let t = c.lang.t();
    // Times in the server's zone, with its abbreviation (docs/CONFIG.md, "[portal]").
    let zone = Zone::server();
    let when = |v: Option<i64>| v.map_or(t.never.to_string(), |v| zone.show_seconds(v));
    let lang = c.lang.code();
    let form = |action: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"/account?lang={lang}\"><input type=\"hidden\" name=\"action\" value=\"{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" id=\"{action}\">{}</button></form>",
            esc(f.csrf),
            esc(label)
        )
    };
    let note = note.unwrap_or_default();
    let body = format!(
        "{note}<p>{} <strong id=\"user\">{}</strong></p><p>{}: <span id=\"mfa-created\">{}</span><br>{}: <span id=\"mfa-changed\">{}</span></p><h2>{}</h2>{}<h2>{}</h2><p>{}</p>{}<h2>{}</h2><p>{}</p>{}<h2>{}</h2><p>{}</p>{}{}{}",
        esc(t.signed_in_as),
        esc(f.user.as_str()),
        esc(t.mfa_created),
        esc(&when(f.rec.and_then(|r| r.mfa_created))),
        esc(t.mfa_changed),
        esc(&when(f.rec.and_then(|r| r.mfa_changed))),
        esc(t.last_logins),
        logins(c.lang, zone, f.logins),
        esc(t.unlock_title),
        esc(&format!(
            "{} {}",
            t.unlock_intro,
            unlock_scope(c.lang, &UnlockScope::of(p.core.config()))
        )),
        form("unlock", t.unlock_button),
        esc(t.backup_title),
        esc(t.backup_intro),
        form("backup-codes", t.backup_button),
        esc(t.replace_title),
        esc(t.replace_account_intro),
        form("replace-start", t.replace_button),
        f.devices
            .map(|d| crate::views::push::devices_section(t, lang, d, f.csrf))
            .unwrap_or_default(),
        form("signout", t.sign_out),
    );
    p.page(
        c,
        StatusCode::OK,
        t.my_account,
        "/account",
        &body,
        HeaderMap::new(),
    )
}

/// The last logins as a table (time, service, address, outcome in words: "Allowed: valid
/// code"), or a line saying there are none.
fn logins(lang: Lang, zone: &Zone, logins: &[AuditEvent]) -> String {
    let t = lang.t();
    if logins.is_empty() {
        return format!("<p>{}</p>", esc(t.no_logins));
    }
    let mut rows = String::new();
    for e in logins {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&zone.show_seconds(e.time)),
            esc(&e.service),
            esc(e.client_ip.as_deref().unwrap_or("-")),
            esc(&event_words(lang, e))
        ));
    }
    format!(
        "<table id=\"logins\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{rows}</table>",
        esc(t.time),
        esc(t.service),
        esc(t.address),
        esc(t.outcome)
    )
}

/// The note that shows a new set of backup codes (once: they are not kept anywhere).
pub fn backup_codes(t: &T, codes: &[Zeroizing<String>]) -> String {
    let mut list = String::from("<ul id=\"backup-codes\" class=\"key\">");
    for code in codes {
        list.push_str(&format!("<li>{}</li>", esc(code)));
    }
    list.push_str("</ul>");
    format!(
        "<div class=\"ok\" id=\"message\"><p>{}</p>{list}</div>",
        esc(t.backup_shown)
    )
}

/// "Make new backup codes?": what the old set loses (`unused` codes still usable), the
/// button that makes the new set, and the way back that changes nothing.
pub fn backup_confirm(p: &Portal, c: &Ctx, unused: usize, csrf: &str) -> Response {
    let t = c.lang.t();
    let lang = c.lang.code();
    let what = if unused == 0 {
        t.backup_confirm_none.to_string()
    } else {
        fill(t.backup_confirm_some, &[("n", &unused.to_string())])
    };
    let body = format!(
        "<p id=\"backup-confirm-text\">{}</p><form method=\"post\" action=\"/account?lang={lang}\" id=\"backup-confirm\"><input type=\"hidden\" name=\"action\" value=\"backup-codes-confirm\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" class=\"danger\" id=\"backup-codes-confirm\">{}</button></form><p><a class=\"button secondary\" id=\"backup-keep\" href=\"/account?lang={lang}\">{}</a></p>",
        esc(&what),
        esc(csrf),
        esc(t.backup_confirm_button),
        esc(if unused == 0 {
            t.back_to_account
        } else {
            t.backup_keep
        }),
    );
    p.page(
        c,
        StatusCode::OK,
        t.backup_confirm_title,
        "/account",
        &body,
        HeaderMap::new(),
    )
}
