//! The users: the search and its page of results, and one user's page with its actions.
//! No view calls the core; every text is escaped.

use mfa_core::enrolment::{Sheet, qr_svg};
use mfa_core::push::DeviceInfo;
use mfa_core::report::Row;
use mfa_core::roles::Role;
use mfa_core::{AuditEvent, TotpSecret, UserName, UserRecord};
use mfa_model::Invite;
use zeroize::Zeroizing;

use crate::admin::BASE;
use crate::admin::text::{self, Tx};
use crate::admin::views::frame::{button_form, hidden, q};
use crate::page::esc;
use crate::zone::Zone;

/// The search form and a page of its results.
pub struct ListFacts<'a> {
    pub query: &'a str,
    pub rows: &'a [Row],
    /// The last name of this page where another follows.
    pub next: Option<&'a str>,
    /// This page began after a name (it is not the first).
    pub paged: bool,
    pub zone: &'a Zone,
    pub csrf: &'a str,
    pub now: i64,
}

/// A time, or "never".
pub fn when(t: &Tx, zone: &Zone, v: Option<i64>) -> String {
    v.map_or_else(|| t.never.to_string(), |v| zone.show(v))
}

/// The list page's body.
pub fn list(t: &Tx, f: &ListFacts<'_>) -> String {
    let mut out = format!(
        "<form method=\"get\" action=\"{BASE}/users\" id=\"search\"><label for=\"q\">{}</label> <input id=\"q\" name=\"q\" value=\"{}\" maxlength=\"256\" autofocus> <button type=\"submit\" id=\"find\">{}</button></form><p class=\"muted\">{}</p>",
        esc(t.search_label),
        esc(f.query),
        esc(t.search_button),
        esc(t.search_hint),
    );
    if f.rows.is_empty() {
        out.push_str(&format!("<p id=\"no-users\">{}</p>", esc(t.no_users_found)));
    } else {
        out.push_str(&format!(
            "<table id=\"users\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            esc(t.col_name),
            esc(t.col_status),
            esc(t.col_mfa_created),
            esc(t.col_mfa_changed),
            esc(t.col_last_login),
            esc(t.col_logins),
        ));
        for r in f.rows {
            let u = &r.user;
            out.push_str(&format!(
                "<tr><td><a href=\"{BASE}/user?name={}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                q(u.name.as_str()),
                esc(u.name.as_str()),
                esc(&text::status(t, r, f.now)),
                esc(&when(t, f.zone, u.mfa_created)),
                esc(&when(t, f.zone, u.mfa_changed)),
                esc(&when(t, f.zone, u.last_login)),
                u.login_count
            ));
        }
        out.push_str("</table>");
    }
    let mut pager = String::new();
    if f.paged {
        pager.push_str(&format!(
            "<a href=\"{BASE}/users?q={}\" id=\"first\">{}</a>",
            q(f.query),
            esc(t.first_page)
        ));
    }
    if let Some(n) = f.next {
        pager.push_str(&format!(
            "<a href=\"{BASE}/users?q={}&amp;after={}\" id=\"next\">{}</a>",
            q(f.query),
            q(n),
            esc(t.next_page)
        ));
    }
    if !pager.is_empty() {
        out.push_str(&format!("<p class=\"pager\">{pager}</p>"));
    }
    out.push_str(&format!(
        "<h2>{}</h2><form method=\"post\" action=\"{BASE}/prefs\" id=\"tz\"><label for=\"tzname\">{}</label> <input id=\"tzname\" name=\"tz\" value=\"{}\" maxlength=\"64\">{}<button type=\"submit\">{}</button></form>",
        esc(t.tz_title),
        esc(t.tz_label),
        esc(&f.zone.name),
        hidden("csrf", f.csrf),
        esc(t.tz_button),
    ));
    out
}

/// What one user's page shows, as the handler read it.
pub struct UserFacts<'a> {
    pub name: &'a UserName,
    pub row: Option<&'a Row>,
    pub invites: &'a [Invite],
    pub logins: &'a [AuditEvent],
    /// The user's phones (push approval), where push is on.
    pub devices: Option<&'a [DeviceInfo]>,
    pub remember: i64,
    pub now: i64,
    pub zone: &'a Zone,
    pub csrf: &'a str,
    pub role: Role,
    /// The page is the administrator's own: no action is offered.
    pub own: bool,
    /// Whether invites can be made (`[portal] public_url` is set).
    pub can_invite: bool,
}

/// One user's page: the facts, then the actions.
pub fn user(t: &Tx, f: &UserFacts<'_>) -> String {
    let rec: Option<&UserRecord> = f.row.map(|r| &r.user);
    let zone = f.zone;
    let mut out = String::new();
    let linked = rec.is_some_and(UserRecord::enrolled);
    let locked = rec.and_then(|r| r.locked(f.now));
    // The facts.
    out.push_str("<dl class=\"facts\" id=\"facts\">");
    let mut fact = |id: &str, label: &str, value: &str| {
        out.push_str(&format!(
            "<dt>{}</dt><dd id=\"{id}\">{}</dd>",
            esc(label),
            esc(value)
        ));
    };
    fact(
        "mfa",
        t.fact_mfa,
        if linked {
            t.mfa_linked
        } else {
            t.mfa_not_linked
        },
    );
    fact(
        "status",
        t.col_status,
        &f.row
            .map_or_else(|| t.no_record.to_string(), |r| text::status(t, r, f.now)),
    );
    fact(
        "mfa-created",
        t.col_mfa_created,
        &when(t, zone, rec.and_then(|r| r.mfa_created)),
    );
    fact(
        "mfa-changed",
        t.col_mfa_changed,
        &when(t, zone, rec.and_then(|r| r.mfa_changed)),
    );
    fact(
        "login-count",
        t.col_logins,
        &rec.map_or(0, |r| r.login_count).to_string(),
    );
    fact(
        "last-login",
        t.col_last_login,
        &when(t, zone, rec.and_then(|r| r.last_login)),
    );
    let lock_text = match (locked, rec) {
        (Some(until), _) => format!("{} {}", t.locked_until, zone.show(until)),
        (None, Some(r)) if r.failures > 0 => {
            format!("{} ({} {})", t.not_locked, r.failures, t.wrong_codes)
        }
        _ => t.not_locked.to_string(),
    };
    fact("lock", t.fact_lock, &lock_text);
    let open = f
        .invites
        .iter()
        .filter(|i| i.used.is_none() && i.expires > f.now)
        .map(|i| i.expires)
        .max();
    fact(
        "invite",
        t.fact_invite,
        &open.map_or_else(
            || t.no_invite.to_string(),
            |e| format!("{} {}", t.invite_open_until, zone.show(e)),
        ),
    );
    out.push_str("</dl>");

    // Remembered networks in force.
    let networks: Vec<&mfa_model::Unlock> = rec
        .map(|r| {
            r.unlocks
                .iter()
                .filter(|u| r.unlock_in_force(u, f.now, f.remember))
                .collect()
        })
        .unwrap_or_default();
    out.push_str(&format!("<h2>{}</h2>", esc(t.networks_title)));
    if networks.is_empty() {
        out.push_str(&format!("<p id=\"networks\">{}</p>", esc(t.no_networks)));
    } else {
        out.push_str(&format!(
            "<table id=\"networks\"><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
            esc(t.col_address),
            esc(t.col_since),
            esc(t.col_until)
        ));
        for u in &networks {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&u.ip),
                esc(&zone.show(u.created)),
                esc(&zone.show(u.expires))
            ));
        }
        out.push_str("</table>");
    }

    // Phones for push approval.
    if let Some(devices) = f.devices {
        out.push_str(&format!("<h2>{}</h2>", esc(t.devices_title)));
        if devices.is_empty() {
            out.push_str(&format!("<p id=\"devices\">{}</p>", esc(t.no_devices)));
        } else {
            out.push_str(&format!(
                "<table id=\"devices\"><tr><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
                esc(t.col_device),
                esc(t.col_registered),
                esc(t.col_last_used)
            ));
            for d in devices {
                // No button on the administrator's own page: the core refuses it anyway.
                let id = d.id.to_string();
                let remove = if f.own {
                    String::new()
                } else {
                    button_form(
                        &format!("{BASE}/user"),
                        f.csrf,
                        "remove-device",
                        &[("user", f.name.as_str()), ("device", &id)],
                        &format!("remove-device-{id}"),
                        t.remove_device_button,
                    )
                };
                out.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{remove}</td></tr>",
                    esc(&d.name),
                    esc(&zone.show(d.created)),
                    esc(&when(t, zone, d.last_used))
                ));
            }
            out.push_str("</table>");
        }
    }

    // The last logins, in words.
    out.push_str(&format!("<h2>{}</h2>", esc(t.last_logins)));
    if f.logins.is_empty() {
        out.push_str(&format!("<p id=\"logins\">{}</p>", esc(t.no_logins)));
    } else {
        out.push_str(&format!(
            "<table id=\"logins\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            esc(t.col_time),
            esc(t.col_service),
            esc(t.col_address),
            esc(t.col_outcome)
        ));
        for e in f.logins {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&zone.show(e.time)),
                esc(&e.service),
                esc(e.client_ip.as_deref().unwrap_or("-")),
                esc(&crate::words::event_words(t.lang, e))
            ));
        }
        out.push_str("</table>");
    }

    // The actions.
    out.push_str(&format!("<h2>{}</h2>", esc(t.actions_title)));
    if f.own {
        out.push_str(&format!(
            "<p class=\"warn\" id=\"own\">{}</p>",
            esc(t.own_account)
        ));
        return out;
    }
    let path = format!("{BASE}/user");
    let name = f.name.as_str();
    let user = [("user", name)];
    let mut actions = String::new();
    if linked {
        actions.push_str(&button_form(
            &path,
            f.csrf,
            "unlink",
            &user,
            "unlink",
            t.unlink_button,
        ));
    } else {
        actions.push_str(&button_form(
            &path,
            f.csrf,
            "link",
            &user,
            "link",
            t.link_button,
        ));
        if f.can_invite {
            actions.push_str(&button_form(
                &path,
                f.csrf,
                "invite",
                &user,
                "invite",
                t.invite_button,
            ));
        }
    }
    if locked.is_some() || rec.is_some_and(|r| r.failures > 0 || !r.sources.is_empty()) {
        actions.push_str(&button_form(
            &path,
            f.csrf,
            "unlock",
            &user,
            "unlock",
            t.unlock_button,
        ));
    }
    if !networks.is_empty() {
        actions.push_str(&button_form(
            &path,
            f.csrf,
            "revoke-networks",
            &user,
            "revoke-networks",
            t.revoke_networks_button,
        ));
    }
    out.push_str(&format!("<div class=\"actions\">{actions}</div>"));
    // Temporary access, with its validity.
    out.push_str(&format!(
        "<form method=\"post\" action=\"{}\" id=\"temp-access-form\">{}{}{}<label for=\"valid\">{}</label> <select id=\"valid\" name=\"valid\"><option value=\"1h\">{}</option><option value=\"8h\" selected>{}</option><option value=\"24h\">{}</option></select> <button type=\"submit\" id=\"temp-access\">{}</button></form>",
        esc(&path),
        hidden("action", "temp-access"),
        hidden("csrf", f.csrf),
        hidden("user", name),
        esc(t.valid_for),
        esc(t.one_hour),
        esc(t.eight_hours),
        esc(t.one_day),
        esc(t.temp_access_button),
    ));
    if !f.can_invite && !linked {
        out.push_str(&format!("<p class=\"muted\">{}</p>", esc(t.no_public_url)));
    }
    let _ = f.role;
    out
}

/// The confirmation asked before an unlink.
pub fn confirm_unlink(t: &Tx, name: &UserName, csrf: &str) -> String {
    let path = format!("{BASE}/user");
    format!(
        "<p class=\"warn\" id=\"confirm\">{}</p><p>{}<a href=\"{BASE}/user?name={}\" id=\"cancel\">{}</a></p>",
        esc(&t.unlink_confirm.replace("{user}", name.as_str())),
        button_form(
            &path,
            csrf,
            "unlink-confirm",
            &[("user", name.as_str())],
            "unlink-confirm",
            t.unlink_confirm_button
        ),
        q(name.as_str()),
        esc(t.cancel)
    )
}

/// The new key of a link, shown once: the QR code (inline SVG), the account, the key in
/// groups of four, its kind, as every page of the portal shows a new key.
pub fn new_key(
    t: &Tx,
    issuer: &str,
    params: &mfa_core::TotpParams,
    user: &UserName,
    secret: &TotpSecret,
) -> Result<Zeroizing<String>, String> {
    let sheet = Sheet::new(issuer, user, secret, params);
    let svg = qr_svg(&sheet.uri)?;
    let svg_inline = svg
        .find("<svg")
        .and_then(|i| svg.get(i..))
        .ok_or("QR code without <svg>")?;
    let key_upper = Zeroizing::new(sheet.key.to_ascii_uppercase());
    Ok(Zeroizing::new(format!(
        "<div class=\"ok\" id=\"message\" role=\"status\"><p>{}</p><div class=\"qr\" id=\"qr\">{}</div><p>{}: <strong id=\"account\">{}</strong><br>{}: <span class=\"key\" id=\"key\">{}</span><br><small>{}</small></p></div>",
        esc(&t.linked_shown.replace("{user}", user.as_str())),
        svg_inline,
        esc(t.account_name),
        esc(&sheet.account),
        esc(t.key),
        esc(&key_upper),
        esc(&sheet.kind),
    )))
}

/// A temporary access code, shown once.
pub fn temp_code(t: &Tx, user: &UserName, code: &str, until: &str) -> String {
    let shown = match (code.get(..4), code.get(4..)) {
        (Some(a), Some(b)) => format!("{a} {b}"),
        _ => code.to_string(),
    };
    format!(
        "<div class=\"ok\" id=\"message\" role=\"status\"><p>{}</p><p class=\"key\" id=\"temp-code\">{}</p><p>{} {}</p></div>",
        esc(&t.temp_shown.replace("{user}", user.as_str())),
        esc(&shown),
        esc(t.valid_until),
        esc(until)
    )
}

/// An invite's link, shown once.
pub fn invite_link(t: &Tx, user: &UserName, link: &str, until: &str) -> String {
    format!(
        "<div class=\"ok\" id=\"message\" role=\"status\"><p>{}</p><p><input id=\"invite-link\" readonly size=\"70\" value=\"{}\"></p><p>{} {}</p></div>",
        esc(&t.invite_shown.replace("{user}", user.as_str())),
        esc(link),
        esc(t.valid_until),
        esc(until)
    )
}
