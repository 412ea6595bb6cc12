//! The audit trail as the console shows it: newest first, in words, the actor named.

use mfa_core::AuditEvent;

use crate::admin::BASE;
use crate::admin::text::{self, Tx};
use crate::page::esc;
use crate::zone::Zone;

/// The windows the page offers, as `since=` takes them.
pub const WINDOWS: [(&str, i64); 4] = [
    ("1h", 3600),
    ("24h", 86_400),
    ("7d", 7 * 86_400),
    ("30d", 30 * 86_400),
];

/// The page's body: the filter, then the events (newest first, at most `shown`).
pub fn page(
    t: &Tx,
    events: &[AuditEvent],
    more: usize,
    user: &str,
    since: &str,
    zone: &Zone,
) -> String {
    let mut options = String::new();
    for (w, _) in WINDOWS {
        let sel = if w == since { " selected" } else { "" };
        options.push_str(&format!(
            "<option value=\"{w}\"{sel}>{}</option>",
            esc(text::window(t, w))
        ));
    }
    let mut out = format!(
        "<form method=\"get\" action=\"{BASE}/log\" id=\"log-filter\"><label for=\"user\">{}</label> <input id=\"user\" name=\"user\" value=\"{}\" maxlength=\"256\"> <label for=\"since\">{}</label> <select id=\"since\" name=\"since\">{options}</select> <button type=\"submit\">{}</button></form>",
        esc(t.col_user),
        esc(user),
        esc(t.log_since),
        esc(t.filter_button),
    );
    if events.is_empty() {
        out.push_str(&format!("<p id=\"no-events\">{}</p>", esc(t.no_events)));
        return out;
    }
    if more > 0 {
        out.push_str(&format!(
            "<p class=\"muted\">{}</p>",
            esc(&t.log_more.replace("{n}", &more.to_string()))
        ));
    }
    out.push_str(&format!(
        "<table id=\"log\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        esc(t.col_time),
        esc(t.col_user),
        esc(t.col_by),
        esc(t.col_address),
        esc(t.col_what),
        esc(t.col_detail),
    ));
    for e in events {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"actor\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&zone.show(e.time)),
            esc(&e.user),
            esc(&e.service),
            esc(e.client_ip.as_deref().unwrap_or("-")),
            esc(&crate::words::event_words(t.lang, e)),
            esc(e.detail.as_deref().unwrap_or("")),
        ));
    }
    out.push_str("</table>");
    out
}
