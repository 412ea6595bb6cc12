//! `mfactl report` (the roll-out view) and `mfactl log` (the audit trail), each as a table
//! for people and CSV or JSON for tools.

use std::path::Path;
use std::process::ExitCode;

use mfa_config::{GoLive, format_utc};
use mfa_core::login::now;
use mfa_core::policy::days_until;
pub(crate) use mfa_core::report::csv_cell;
use mfa_core::report::{InviteCell, Report, Row, Totals};
use mfa_core::store::AuditQuery;
use mfa_core::{OpenMode, OtcKind};
use serde_json::{Value, json};

use crate::admin::open;
use crate::{Fail, Format, Result};

fn ts(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(format_utc(t)))
}

fn short(t: Option<i64>) -> String {
    t.map_or("-".into(), |t| {
        let s = format_utc(t);
        format!("{} {}", &s[..10], &s[11..16])
    })
}

/// The CSV and JSON faces of the core's [`InviteCell`], and the table's.
trait InviteFaces {
    fn json(self) -> Value;
    fn csv(self) -> [String; 2];
    fn table(self) -> String;
}

impl InviteFaces for Option<InviteCell> {
    fn json(self) -> Value {
        match self {
            Some(InviteCell::Open { expires }) => {
                json!({"state": "open", "expires": format_utc(expires)})
            }
            Some(InviteCell::Expired { expired }) => {
                json!({"state": "expired", "expires": format_utc(expired)})
            }
            None => Value::Null,
        }
    }

    /// The CSV cells: state, expiry.
    fn csv(self) -> [String; 2] {
        match self {
            Some(InviteCell::Open { expires }) => ["open".into(), format_utc(expires)],
            Some(InviteCell::Expired { expired }) => ["expired".into(), format_utc(expired)],
            None => [String::new(), String::new()],
        }
    }

    fn table(self) -> String {
        match self {
            Some(InviteCell::Open { expires }) => format!("open until {}", short(Some(expires))),
            Some(InviteCell::Expired { expired }) => format!("expired {}", short(Some(expired))),
            None => "-".into(),
        }
    }
}

/// `mfactl report`, streamed: the core's report ([`mfa_core::report::Report`]) hands the
/// rows over one at a time from the store and each is written as it comes, so a million
/// users cost one record of memory (JSON and CSV in one pass; the table reads the store
/// twice, once for the column widths). The totals follow the rows.
pub fn report(cfg: &Path, format: Format) -> Result<ExitCode> {
    use std::io::Write;
    let a = open(cfg, OpenMode::Existing)?;
    let c = a.config();
    let t = now();
    let report = Report::new(&a, c, t)?;
    let (open_invites, expired_invites) = (report.open_invites(), report.expired_invites());
    let invited_only = report.invited_only();
    let each_row = |f: &mut dyn FnMut(Row) -> Result<()>| -> Result<Totals> { report.each_row(f) };
    let io = |e: std::io::Error| Fail::Error(format!("writing the report: {e}"));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let go_live = c.policy.enforce_from.date();
    let go_live_state = match c.policy.enforce_from {
        GoLive::Now => "now",
        GoLive::At(_) => "date",
        GoLive::Never => "never",
    };
    let days_to_go = go_live.map(|g| days_until(g, t));
    let pct = |n: &Totals| n.enrolled_percent();

    match format {
        Format::Json => {
            write!(
                out,
                "{{\n  \"generated\": {},\n  \"users\": [",
                Value::String(format_utc(t))
            )
            .map_err(io)?;
            let mut first = true;
            let totals = each_row(&mut |r| {
                let u = &r.user;
                let row = json!({
                    "user": u.name.as_str(), "enrolled": u.enrolled(), "status": r.status_text(),
                    "mfa_created": ts(u.mfa_created), "mfa_changed": ts(u.mfa_changed),
                    "last_login": ts(u.last_login), "login_count": u.login_count,
                    "failures": u.failures, "locked_until": ts(u.locked(t)),
                    "backup_codes_left": u.usable_codes(OtcKind::Backup, t),
                    "temporary_access": u.usable_codes(OtcKind::Temporary, t),
                    "last_ip": u.last_ip, "last_outcome": u.last_outcome,
                    "grace_deadline": ts(r.deadline),
                    "invite": r.invite.json(),
                });
                let text =
                    serde_json::to_string_pretty(&row).map_err(|e| Fail::Error(e.to_string()))?;
                let sep = if first { "\n    " } else { ",\n    " };
                first = false;
                write!(out, "{sep}{}", text.replace('\n', "\n    ")).map_err(io)
            })?;
            let doc = json!({
                "users": totals.users, "enrolled": totals.enrolled,
                "not_enrolled": totals.users - totals.enrolled,
                "enrolled_percent": pct(&totals), "in_grace": totals.grace,
                "overdue": totals.overdue, "locked": totals.locked, "exempt": totals.exempt,
                "go_live": ts(go_live), "days_to_go_live": days_to_go,
                "go_live_state": go_live_state,
                "invites_open": open_invites, "invites_expired": expired_invites,
                "invited_not_seen": invited_only.len(),
            });
            let text =
                serde_json::to_string_pretty(&doc).map_err(|e| Fail::Error(e.to_string()))?;
            let close = if first { "]" } else { "\n  ]" };
            writeln!(
                out,
                "{close},\n  \"totals\": {}\n}}",
                text.replace('\n', "\n  ")
            )
            .map_err(io)?;
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            let head = [
                "user",
                "enrolled",
                "status",
                "mfa_created",
                "mfa_changed",
                "last_login",
                "login_count",
                "failures",
                "locked_until",
                "backup_codes_left",
                "temporary_access",
                "last_ip",
                "last_outcome",
                "grace_deadline",
                "invite",
                "invite_expires",
            ];
            let iso = |t: Option<i64>| t.map(format_utc).unwrap_or_default();
            let mut write = |r: &[String]| {
                w.write_record(r.iter().map(|c| csv_cell(c)))
                    .map_err(|e| Fail::Error(e.to_string()))
            };
            write(&head.map(String::from))?;
            each_row(&mut |r| {
                let u = &r.user;
                let [inv, inv_expires] = r.invite.csv();
                write(&[
                    u.name.to_string(),
                    u.enrolled().to_string(),
                    r.status_text(),
                    iso(u.mfa_created),
                    iso(u.mfa_changed),
                    iso(u.last_login),
                    u.login_count.to_string(),
                    u.failures.to_string(),
                    iso(u.locked(t)),
                    u.usable_codes(OtcKind::Backup, t).to_string(),
                    u.usable_codes(OtcKind::Temporary, t).to_string(),
                    u.last_ip.clone().unwrap_or_default(),
                    u.last_outcome.clone().unwrap_or_default(),
                    iso(r.deadline),
                    inv,
                    inv_expires,
                ])
            })?;
            w.flush().map_err(io)?;
        }
        Format::Table => {
            let head = [
                "USER",
                "STATUS",
                "MFA CREATED",
                "MFA CHANGED",
                "LAST LOGIN",
                "LOGINS",
                "FAILS",
                "LOCKED UNTIL",
                "BACKUP",
                "LAST IP",
                "LAST OUTCOME",
                "INVITE",
            ];
            let cells = |r: &Row| -> Vec<String> {
                let u = &r.user;
                [
                    u.name.to_string(),
                    r.status_text(),
                    short(u.mfa_created),
                    short(u.mfa_changed),
                    short(u.last_login),
                    u.login_count.to_string(),
                    u.failures.to_string(),
                    short(u.locked(t)),
                    u.usable_codes(OtcKind::Backup, t).to_string(),
                    u.last_ip.clone().unwrap_or("-".into()),
                    u.last_outcome.clone().unwrap_or("-".into()),
                    r.invite.table(),
                ]
                .iter()
                .map(|c| visible(c))
                .collect()
            };
            // First pass: the column widths; second: the rows.
            let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
            each_row(&mut |r| {
                for (x, c) in w.iter_mut().zip(cells(&r)) {
                    *x = (*x).max(c.chars().count());
                }
                Ok(())
            })?;
            table_line(&mut out, &w, &head.map(String::from)).map_err(io)?;
            let totals = each_row(&mut |r| table_line(&mut out, &w, &cells(&r)).map_err(io))?;
            let (enrolled, total, pct) = (totals.enrolled, totals.users, pct(&totals));
            writeln!(out).map_err(io)?;
            writeln!(out, "Enrolled:        {enrolled} of {total} ({pct}%)").map_err(io)?;
            match (go_live, days_to_go) {
                (Some(g), Some(d)) if g > t => writeln!(
                    out,
                    "Go-live:         {} (in {d} days), grace {} days per user",
                    format_utc(g),
                    c.policy.grace_days
                ),
                (Some(g), _) => writeln!(
                    out,
                    "Go-live:         {} (enforced), grace {} days per user",
                    format_utc(g),
                    c.policy.grace_days
                ),
                _ if go_live_state == "never" => writeln!(
                    out,
                    "Go-live:         not set (roll-out not scheduled: MFA not required yet), grace {} days per user once set",
                    c.policy.grace_days
                ),
                _ => writeln!(
                    out,
                    "Go-live:         not set (enforced now), grace {} days per user",
                    c.policy.grace_days
                ),
            }
            .map_err(io)?;
            writeln!(out, "In grace:        {}", totals.grace).map_err(io)?;
            writeln!(
                out,
                "Overdue:         {} (not enrolled, past the deadline)",
                totals.overdue
            )
            .map_err(io)?;
            writeln!(out, "Locked:          {}", totals.locked).map_err(io)?;
            if totals.exempt > 0 {
                writeln!(out, "Exempt:          {}", totals.exempt).map_err(io)?;
            }
            writeln!(
                out,
                "Invites:         {open_invites} open, {expired_invites} expired unused{}",
                if invited_only.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} for users not seen yet, listed as invited)",
                        invited_only.len()
                    )
                }
            )
            .map_err(io)?;
            out.flush().map_err(io)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table_line(out: &mut impl std::io::Write, w: &[usize], cells: &[String]) -> std::io::Result<()> {
    let s: Vec<String> = cells
        .iter()
        .zip(w)
        .map(|(c, w)| format!("{c:<w$}"))
        .collect();
    writeln!(out, "{}", s.join("  ").trim_end())
}

/// A cell as the terminal may show it: every control character (C0, DEL, C1, so no newline
/// that would forge a row and no escape sequence that would rewrite the screen) and every
/// bidirectional override or isolate (which would reverse what follows) written as a
/// visible `\u{..}`-style escape. Names, addresses and services come from logins and
/// gateways, so they are not trusted to be printable.
pub(crate) fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// Unicode's explicit directional formatting characters (UAX #9) and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

pub(crate) fn print_table(head: &[&str], body: &[Vec<String>]) {
    let body: Vec<Vec<String>> = body
        .iter()
        .map(|r| r.iter().map(|c| visible(c)).collect())
        .collect();
    let body = &body[..];
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in body {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .zip(&w)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        outln!("{}", s.join("  ").trim_end());
    };
    line(head.to_vec());
    for r in body {
        line(r.iter().map(String::as_str).collect());
    }
}

pub fn log(
    cfg: &Path,
    user: Option<&str>,
    since: Option<mfa_config::Span>,
    format: Format,
) -> Result<ExitCode> {
    let a = open(cfg, OpenMode::Existing)?;
    let t = now();
    let q = AuditQuery {
        user: user
            .map(|u| crate::user_name(&a, u).map(|n| n.to_string()))
            .transpose()?,
        since: since.map(|s| t.saturating_sub(s.secs_i64())),
        limit: None,
    };
    let events = a.store().audit(&q)?;
    match format {
        Format::Json => {
            let v: Vec<Value> = events
                .iter()
                .map(|e| json!({"time": format_utc(e.time), "user": e.user, "service": e.service, "client_ip": e.client_ip, "decision": e.decision.as_str(), "reason": e.reason.as_str(), "detail": e.detail}))
                .collect();
            outln!(
                "{}",
                serde_json::to_string_pretty(&v).map_err(|e| Fail::Error(e.to_string()))?
            );
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            let mut write = |r: &[&str]| {
                w.write_record(r.iter().map(|c| csv_cell(c)))
                    .map_err(|e| Fail::Error(e.to_string()))
            };
            write(&["time", "user", "service", "client_ip", "decision", "reason"])?;
            for e in &events {
                write(&[
                    &format_utc(e.time),
                    &e.user,
                    &e.service,
                    e.client_ip.as_deref().unwrap_or(""),
                    e.decision.as_str(),
                    e.reason.as_str(),
                ])?;
            }
            w.flush().map_err(|e| Fail::Error(e.to_string()))?;
        }
        Format::Table => {
            let body: Vec<Vec<String>> = events
                .iter()
                .map(|e| {
                    vec![
                        format_utc(e.time),
                        e.user.clone(),
                        e.service.clone(),
                        e.client_ip.clone().unwrap_or("-".into()),
                        e.decision.to_string(),
                        e.reason.to_string(),
                    ]
                })
                .collect();
            print_table(
                &["TIME", "USER", "SERVICE", "CLIENT IP", "DECISION", "REASON"],
                &body,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_shown_escaped() {
        assert_eq!(visible("alice"), "alice");
        assert_eq!(visible("CONTOSO\\alice"), "CONTOSO\\alice");
        assert_eq!(visible("a\nb"), "a\\nb");
        assert_eq!(visible("x\u{1b}[2J"), "x\\u{1b}[2J");
        assert_eq!(visible("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(visible("\u{7f}"), "\\u{7f}");
        assert_eq!(visible("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(visible("Ünïcødé"), "Ünïcødé");
    }
}
