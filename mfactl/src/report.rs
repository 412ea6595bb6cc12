//! `mfactl report` (the roll-out view) and `mfactl log` (the audit trail), each as a table
//! for people and CSV or JSON for tools.

use std::path::Path;
use std::process::ExitCode;

use mfa_common::login::now;
use mfa_common::policy::rollout_status;
use mfa_common::store::AuditQuery;
use mfa_common::{OpenMode, OtcKind, RolloutStatus};
use mfa_config::{GoLive, format_utc};
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

pub fn report(cfg: &Path, format: Format) -> Result<ExitCode> {
    let a = open(cfg, OpenMode::Existing)?;
    let c = a.config();
    let t = now();
    let users = a.store().users()?;
    let mut rows = Vec::with_capacity(users.len());
    let (mut enrolled, mut grace, mut overdue, mut locked, mut exempt) = (0, 0, 0, 0, 0);
    for u in &users {
        let (status, deadline) = rollout_status(u, c, &a.login().groups_for(&u.name), t);
        enrolled += usize::from(u.enrolled());
        grace += usize::from(status.in_grace());
        overdue += usize::from(status == RolloutStatus::Overdue);
        locked += usize::from(u.locked(t).is_some());
        exempt += usize::from(status == RolloutStatus::Exempt);
        rows.push((u, status.to_string(), deadline));
    }
    let total = users.len();
    let pct = if total == 0 {
        0.0
    } else {
        (enrolled as f64 * 1000.0 / total as f64).round() / 10.0
    };
    let go_live = c.policy.enforce_from.date();
    let go_live_state = match c.policy.enforce_from {
        GoLive::Now => "now",
        GoLive::At(_) => "date",
        GoLive::Never => "never",
    };
    let days_to_go = go_live.map(|g| ((g - t) as f64 / 86_400.0).ceil().max(0.0) as i64);

    match format {
        Format::Json => {
            let users: Vec<Value> = rows
                .iter()
                .map(|(u, st, deadline)| {
                    json!({
                        "user": u.name.as_str(), "enrolled": u.enrolled(), "status": st,
                        "mfa_created": ts(u.mfa_created), "mfa_changed": ts(u.mfa_changed),
                        "last_login": ts(u.last_login), "login_count": u.login_count,
                        "failures": u.failures, "locked_until": ts(u.locked(t)),
                        "backup_codes_left": u.usable_codes(OtcKind::Backup, t),
                        "temporary_access": u.usable_codes(OtcKind::Temporary, t),
                        "last_ip": u.last_ip, "last_outcome": u.last_outcome,
                        "grace_deadline": ts(*deadline),
                    })
                })
                .collect();
            let doc = json!({
                "generated": format_utc(t),
                "totals": {
                    "users": total, "enrolled": enrolled, "not_enrolled": total - enrolled,
                    "enrolled_percent": pct, "in_grace": grace, "overdue": overdue,
                    "locked": locked, "exempt": exempt,
                    "go_live": ts(go_live), "days_to_go_live": days_to_go,
                    "go_live_state": go_live_state,
                },
                "users": users,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).map_err(|e| Fail::Error(e.to_string()))?
            );
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
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
            ];
            let iso = |t: Option<i64>| t.map(format_utc).unwrap_or_default();
            let mut write = |r: &[String]| {
                w.write_record(r.iter().map(|c| csv_cell(c)))
                    .map_err(|e| Fail::Error(e.to_string()))
            };
            write(&head.map(String::from))?;
            for (u, st, deadline) in &rows {
                write(&[
                    u.name.to_string(),
                    u.enrolled().to_string(),
                    st.clone(),
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
                    iso(*deadline),
                ])?;
            }
            w.flush().map_err(|e| Fail::Error(e.to_string()))?;
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
            ];
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|(u, st, _)| {
                    vec![
                        u.name.to_string(),
                        st.clone(),
                        short(u.mfa_created),
                        short(u.mfa_changed),
                        short(u.last_login),
                        u.login_count.to_string(),
                        u.failures.to_string(),
                        short(u.locked(t)),
                        u.usable_codes(OtcKind::Backup, t).to_string(),
                        u.last_ip.clone().unwrap_or("-".into()),
                        u.last_outcome.clone().unwrap_or("-".into()),
                    ]
                })
                .collect();
            print_table(&head, &body);
            println!();
            println!("Enrolled:        {enrolled} of {total} ({pct}%)");
            match (go_live, days_to_go) {
                (Some(g), Some(d)) if g > t => println!(
                    "Go-live:         {} (in {d} days), grace {} days per user",
                    format_utc(g),
                    c.policy.grace_days
                ),
                (Some(g), _) => println!(
                    "Go-live:         {} (enforced), grace {} days per user",
                    format_utc(g),
                    c.policy.grace_days
                ),
                _ if go_live_state == "never" => println!(
                    "Go-live:         not set (roll-out not scheduled: MFA not required yet), grace {} days per user once set",
                    c.policy.grace_days
                ),
                _ => println!(
                    "Go-live:         not set (enforced now), grace {} days per user",
                    c.policy.grace_days
                ),
            }
            println!("In grace:        {grace}");
            println!("Overdue:         {overdue} (not enrolled, past the deadline)");
            println!("Locked:          {locked}");
            if exempt > 0 {
                println!("Exempt:          {exempt}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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

/// A CSV cell a spreadsheet will not run: one that starts with `=`, `+`, `-`, `@`, a tab or
/// a carriage return gets a leading `'` (OWASP, "CSV Injection"). The csv writer quotes
/// what needs quoting.
pub(crate) fn csv_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn print_table(head: &[&str], body: &[Vec<String>]) {
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
        println!("{}", s.join("  ").trim_end());
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
                .map(|e| json!({"time": format_utc(e.time), "user": e.user, "service": e.service, "client_ip": e.client_ip, "decision": e.decision, "reason": e.reason}))
                .collect();
            println!(
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
                    &e.decision,
                    &e.reason,
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
                        e.decision.clone(),
                        e.reason.clone(),
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

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"] {
            assert_eq!(csv_cell(bad), format!("'{bad}"));
        }
        for ok in ["alice", "2026-01-01T00:00:00Z", "", "10.0.0.1", "a=b"] {
            assert_eq!(csv_cell(ok), ok);
        }
    }
}
