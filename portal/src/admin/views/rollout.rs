//! The roll-out: the go-live, the counts and their pictures (SVG, no script), a page of the
//! report with its filter and its CSV, and the admin role's forms (go-live, invites for
//! everyone not enrolled).

use mfa_config::{Config, GoLive};
use mfa_core::policy::days_until;
use mfa_core::report::{Row, RowKind};
use mfa_core::roles::Role;

use crate::admin::text::{self, Tx};
use crate::admin::views::frame::{button_form, hidden, q};
use crate::admin::views::users::when;
use crate::admin::{BASE, Counted};
use crate::page::esc;
use crate::zone::Zone;

/// The filter's name of a kind of row, in the query string.
pub fn kind_param(k: RowKind) -> &'static str {
    match k {
        RowKind::Enrolled => "enrolled",
        RowKind::Grace => "grace",
        RowKind::Overdue => "overdue",
        RowKind::Locked => "locked",
        RowKind::Exempt => "exempt",
        RowKind::NeverSeen => "never-seen",
        RowKind::Other => "other",
    }
}

pub const KINDS: [RowKind; 7] = [
    RowKind::Enrolled,
    RowKind::Grace,
    RowKind::Overdue,
    RowKind::Locked,
    RowKind::Exempt,
    RowKind::NeverSeen,
    RowKind::Other,
];

/// The kind a query string names.
pub fn parse_kind(s: &str) -> Option<RowKind> {
    KINDS.into_iter().find(|k| kind_param(*k) == s)
}

/// The go-live as a sentence.
pub fn go_live(t: &Tx, cfg: &Config, zone: &Zone, now: i64) -> String {
    let grace = t
        .grace_days
        .replace("{n}", &cfg.policy.grace_days.to_string());
    match cfg.policy.enforce_from {
        GoLive::Never => t.golive_never.to_string(),
        GoLive::Now => format!("{}; {grace}", t.golive_now),
        GoLive::At(g) if g.0 > now => format!(
            "{} ({}); {grace}",
            zone.show(g.0),
            t.in_days.replace("{n}", &days_until(g.0, now).to_string())
        ),
        GoLive::At(g) => format!("{} ({}); {grace}", zone.show(g.0), t.enforced),
    }
}

/// What the page shows, as the handler read it.
pub struct Facts<'a> {
    pub cfg: &'a Config,
    pub counted: &'a Counted,
    pub rows: &'a [Row],
    pub next: Option<&'a str>,
    pub query: &'a str,
    pub kind: Option<RowKind>,
    pub paged: bool,
    pub zone: &'a Zone,
    pub csrf: &'a str,
    pub role: Role,
    pub now: i64,
}

/// The colours of the categories (enrolled, in grace, overdue, never seen, the rest).
const COLOURS: [&str; 5] = ["#1e7b34", "#d49a00", "#b3261e", "#7a7a7a", "#c9d3e0"];

/// One bar of the categories' shares, with a legend; widths in per mille of the whole.
fn share_bar(t: &Tx, parts: &[(&str, usize); 5]) -> String {
    let total: usize = parts.iter().map(|p| p.1).sum();
    let mut svg = format!(
        "<svg class=\"chart\" id=\"share-chart\" role=\"img\" aria-label=\"{}\" width=\"720\" height=\"64\" viewBox=\"0 0 720 64\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(t.share_chart)
    );
    let mut x = 0.0f64;
    for (i, (label, n)) in parts.iter().enumerate() {
        if total == 0 || *n == 0 {
            continue;
        }
        let w = 720.0 * (*n as f64) / (total as f64);
        svg.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"0\" width=\"{w:.1}\" height=\"36\" fill=\"{}\"><title>{}: {n}</title></rect>",
            COLOURS[i],
            esc(label)
        ));
        x += w;
    }
    if total == 0 {
        svg.push_str("<rect x=\"0\" y=\"0\" width=\"720\" height=\"36\" fill=\"#eeeeee\"/>");
    }
    // The legend under the bar.
    let mut lx = 0;
    for (i, (label, n)) in parts.iter().enumerate() {
        svg.push_str(&format!(
            "<rect x=\"{lx}\" y=\"46\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"57\" font-size=\"12\" fill=\"#1b1b1b\">{} {n}</text>",
            COLOURS[i],
            lx + 16,
            esc(label)
        ));
        lx += 144;
    }
    svg.push_str("</svg>");
    svg
}

/// Enrolments per day since the invites went out or the first enrolment (the last 90 days
/// at most), as bars.
fn per_day(t: &Tx, c: &Counted, zone: &Zone, now: i64) -> String {
    const DAY: i64 = 86_400;
    let by_day = &c.totals.enrolled_by_day;
    // From the first invite or the first enrolment, whichever came first.
    let first = c
        .first_invite
        .map(|f| f.div_euclid(DAY) * DAY)
        .into_iter()
        .chain(by_day.keys().next().copied())
        .min();
    let Some(first) = first else {
        return format!("<p id=\"per-day\">{}</p>", esc(t.no_enrolments));
    };
    let today = now.div_euclid(DAY) * DAY;
    let start = first.max(today - 89 * DAY);
    let days: Vec<(i64, usize)> = (0..)
        .map(|i| start + i * DAY)
        .take_while(|d| *d <= today)
        .map(|d| (d, by_day.get(&d).copied().unwrap_or(0)))
        .collect();
    let most = days.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let n = days.len().max(1) as f64;
    let w = 720.0 / n;
    let mut svg = format!(
        "<svg class=\"chart\" id=\"per-day\" role=\"img\" aria-label=\"{}\" width=\"720\" height=\"150\" viewBox=\"0 0 720 150\" xmlns=\"http://www.w3.org/2000/svg\"><line x1=\"0\" y1=\"120\" x2=\"720\" y2=\"120\" stroke=\"#999999\"/>",
        esc(t.per_day_chart)
    );
    for (i, (d, count)) in days.iter().enumerate() {
        let h = 110.0 * (*count as f64) / (most as f64);
        svg.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#1e7b34\"><title>{}: {count}</title></rect>",
            i as f64 * w + w * 0.1,
            120.0 - h,
            (w * 0.8).max(1.0),
            esc(&zone.day(*d))
        ));
    }
    let (first_day, last_day) = (
        days.first().map(|d| zone.day(d.0)).unwrap_or_default(),
        days.last().map(|d| zone.day(d.0)).unwrap_or_default(),
    );
    svg.push_str(&format!(
        "<text x=\"0\" y=\"138\" font-size=\"12\" fill=\"#1b1b1b\">{}</text><text x=\"720\" y=\"138\" font-size=\"12\" text-anchor=\"end\" fill=\"#1b1b1b\">{}</text><text x=\"0\" y=\"12\" font-size=\"12\" fill=\"#1b1b1b\">{most}</text></svg>",
        esc(&first_day),
        esc(&last_day)
    ));
    svg
}

/// The page's body, with `note` on top.
pub fn page(t: &Tx, f: &Facts<'_>, note: &str) -> String {
    let c = f.counted;
    let tot = &c.totals;
    let mut out = note.to_string();
    out.push_str(&format!(
        "<p>{}: <strong id=\"go-live\">{}</strong></p>",
        esc(t.golive_label),
        esc(&go_live(t, f.cfg, f.zone, f.now))
    ));
    let path = format!("{BASE}/rollout");
    if f.role == Role::Admin {
        out.push_str(&format!(
            "<form method=\"post\" action=\"{path}\" id=\"go-live-form\">{}{}<label for=\"date\">{}</label> <input type=\"date\" id=\"date\" name=\"date\" required> <button type=\"submit\" id=\"go-live-set\">{}</button></form>{}",
            hidden("action", "go-live-set"),
            hidden("csrf", f.csrf),
            esc(t.golive_date),
            esc(t.golive_set),
            button_form(&path, f.csrf, "go-live-clear", &[], "go-live-clear", t.golive_clear),
        ));
    }
    let rest = tot
        .users
        .saturating_sub(tot.enrolled + tot.grace + tot.overdue);
    out.push_str(&format!(
        "<h2>{}</h2><p class=\"muted\">{} {} \u{b7} <a href=\"{path}?recount=1\" id=\"recount\">{}</a></p>{}",
        esc(t.where_title),
        esc(t.counted_at),
        esc(&f.zone.show(c.at)),
        esc(t.recount),
        share_bar(
            t,
            &[
                (t.k_enrolled, tot.enrolled),
                (t.k_grace, tot.grace),
                (t.k_overdue, tot.overdue),
                (t.k_never_seen, c.never_seen),
                (t.k_rest, rest),
            ]
        )
    ));
    let row = |id: &str, label: &str, n: String| {
        format!(
            "<tr><th>{}</th><td class=\"n\" id=\"{id}\">{}</td></tr>",
            esc(label),
            esc(&n)
        )
    };
    out.push_str("<table id=\"counts\">");
    out.push_str(&row("count-users", t.k_users, tot.users.to_string()));
    out.push_str(&row(
        "count-enrolled",
        t.k_enrolled,
        tot.enrolled.to_string(),
    ));
    out.push_str(&row(
        "count-percent",
        t.k_percent,
        format!("{}%", tot.enrolled_percent()),
    ));
    out.push_str(&row("count-grace", t.k_grace, tot.grace.to_string()));
    out.push_str(&row("count-overdue", t.k_overdue, tot.overdue.to_string()));
    out.push_str(&row(
        "count-never-seen",
        t.k_never_seen,
        c.never_seen.to_string(),
    ));
    out.push_str(&row("count-locked", t.k_locked, tot.locked.to_string()));
    out.push_str(&row("count-exempt", t.k_exempt, tot.exempt.to_string()));
    out.push_str(&row(
        "count-invites-open",
        t.k_invites_open,
        c.open_invites.to_string(),
    ));
    out.push_str(&row(
        "count-invites-expired",
        t.k_invites_expired,
        c.expired_invites.to_string(),
    ));
    out.push_str("</table>");
    out.push_str(&format!(
        "<h2>{}</h2>{}",
        esc(t.per_day_title),
        per_day(t, c, f.zone, f.now)
    ));

    // The report, filtered, a page at a time.
    let kind = f.kind.map(kind_param).unwrap_or("");
    let mut options = format!("<option value=\"\">{}</option>", esc(t.k_all));
    for k in KINDS {
        let sel = if f.kind == Some(k) { " selected" } else { "" };
        options.push_str(&format!(
            "<option value=\"{}\"{sel}>{}</option>",
            kind_param(k),
            esc(text::kind(t, k))
        ));
    }
    out.push_str(&format!(
        "<h2>{}</h2><form method=\"get\" action=\"{path}\" id=\"filter\"><label for=\"q\">{}</label> <input id=\"q\" name=\"q\" value=\"{}\" maxlength=\"256\"> <label for=\"kind\">{}</label> <select id=\"kind\" name=\"kind\">{options}</select> <button type=\"submit\" id=\"apply\">{}</button></form><p><a href=\"{BASE}/rollout.csv?q={}&amp;kind={kind}\" id=\"csv\" download>{}</a></p>",
        esc(t.report_title),
        esc(t.search_label),
        esc(f.query),
        esc(t.filter_kind),
        esc(t.filter_button),
        q(f.query),
        esc(t.download_csv),
    ));
    if f.rows.is_empty() {
        out.push_str(&format!("<p id=\"no-rows\">{}</p>", esc(t.no_users_found)));
    } else {
        out.push_str(&format!(
            "<table id=\"report\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            esc(t.col_name),
            esc(t.col_mfa_created),
            esc(t.col_mfa_changed),
            esc(t.col_last_login),
            esc(t.col_logins),
            esc(t.col_status),
        ));
        for r in f.rows {
            let u = &r.user;
            out.push_str(&format!(
                "<tr><td><a href=\"{BASE}/user?name={}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                q(u.name.as_str()),
                esc(u.name.as_str()),
                esc(&when(t, f.zone, u.mfa_created)),
                esc(&when(t, f.zone, u.mfa_changed)),
                esc(&when(t, f.zone, u.last_login)),
                u.login_count,
                esc(&text::status(t, r, f.now)),
            ));
        }
        out.push_str("</table>");
    }
    let mut pager = String::new();
    if f.paged {
        pager.push_str(&format!(
            "<a href=\"{path}?q={}&amp;kind={kind}\" id=\"first\">{}</a>",
            q(f.query),
            esc(t.first_page)
        ));
    }
    if let Some(n) = f.next {
        pager.push_str(&format!(
            "<a href=\"{path}?q={}&amp;kind={kind}&amp;after={}\" id=\"next\">{}</a>",
            q(f.query),
            q(n),
            esc(t.next_page)
        ));
    }
    if !pager.is_empty() {
        out.push_str(&format!("<p class=\"pager\">{pager}</p>"));
    }
    if f.role == Role::Admin {
        out.push_str(&format!(
            "<h2>{}</h2><p>{}</p>{}",
            esc(t.bulk_title),
            esc(t.bulk_intro),
            button_form(
                &path,
                f.csrf,
                "bulk-invites",
                &[],
                "bulk-invites",
                t.bulk_button
            )
        ));
    }
    out
}
