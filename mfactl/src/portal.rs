//! Portal commands: enrolment links (`invite`) and remembered networks (`unlocks`).

use std::path::Path;
use std::process::ExitCode;

use mfa_config::{Span, format_utc};
use mfa_core::login::now;
use mfa_core::net::parse_ip_literal;
use mfa_core::{INVITE_VALID_SECS, INVITE_VALID_TEXT, OpenMode};

use crate::admin::{ACTOR, load_config, open, open_with};
use crate::report::visible;
use crate::{Fail, Format, Result, UnlocksAction, user_name};

/// `public_url` + `/enrol/` + token.
fn link(base: &str, token: &str) -> String {
    format!("{base}/enrol/{token}")
}

/// The links an `invite` made, printed in the format asked for: the table (the link first
/// on each line, so `| head -1` gives it), CSV for a mail merge, or JSON.
fn print_links(
    base: &str,
    made: &[(mfa_core::UserName, zeroize::Zeroizing<String>)],
    expires: i64,
    format: Format,
) -> Result<()> {
    let until = format_utc(expires);
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            let row = |w: &mut csv::Writer<_>, r: [&str; 3]| {
                w.write_record(r)
                    .map_err(|e| Fail::Error(format!("cannot write CSV: {e}")))
            };
            row(&mut w, ["user", "link", "expires"])?;
            for (n, tok) in made {
                row(&mut w, [n.as_str(), &link(base, tok), &until])?;
            }
            w.flush()
                .map_err(|e| Fail::Error(format!("cannot write CSV: {e}")))?;
        }
        Format::Json => {
            let rows: Vec<serde_json::Value> = made
                .iter()
                .map(|(n, tok)| {
                    serde_json::json!({
                        "user": n.as_str(),
                        "link": link(base, tok),
                        "expires": until,
                    })
                })
                .collect();
            let doc = serde_json::to_string_pretty(&rows)
                .map_err(|e| Fail::Error(format!("cannot write JSON: {e}")))?;
            outln!("{doc}");
        }
        Format::Table => {
            for (n, tok) in made {
                outln!("{}  {}", link(base, tok), visible(n.as_str()));
            }
        }
    }
    Ok(())
}

pub fn invite(
    cfg: &Path,
    user: Option<&str>,
    unenrolled: bool,
    valid: Option<Span>,
    format: Format,
    replace: bool,
) -> Result<ExitCode> {
    let config = load_config(cfg)?;
    let Some(base) = config.portal.base_url().map(str::to_string) else {
        return Err(Fail::Error(format!(
            "{}: [portal] public_url is not set: the link needs the address users open, like \"https://mfa.example.com\"",
            cfg.display()
        )));
    };
    let valid = valid.unwrap_or(config.portal.invite_valid);
    // Checked before the store is opened (or made): a bad argument changes nothing. The
    // core's issue refuses it too.
    if !INVITE_VALID_SECS.contains(&valid.secs_i64()) {
        return Err(Fail::Error(format!(
            "--valid {valid}: must be {INVITE_VALID_TEXT}"
        )));
    }
    let a = open_with(config, OpenMode::Create)?;
    let t = now();
    let expires = t.saturating_add(valid.secs_i64());
    let inv = a.invites(ACTOR);
    match (user, unenrolled) {
        (Some(u), false) => {
            // A name the store has not seen yet is fine: the link enrols it. An enrolled
            // user is refused by the core unless --replace (the link would only say
            // "already linked").
            let name = user_name(&a, u)?;
            let token = if replace {
                let (token, removed) = inv.issue_replacing(&name, valid.secs_i64(), t)?;
                if removed {
                    eprintln!(
                        "warning: the key of {} is removed (as `mfactl unlink`): until the link \
                         is used, {} has no key and logs in as a user who is not enrolled.",
                        visible(name.as_str()),
                        visible(name.as_str())
                    );
                }
                token
            } else {
                inv.issue(&name, valid.secs_i64(), t)?
            };
            let made = [(name, token)];
            print_links(&base, &made, expires, format)?;
            if format == Format::Table {
                outln!(
                    "One-time enrolment link for {}, valid until {} ({valid}). It works once; send it to the user only.",
                    visible(made[0].0.as_str()),
                    format_utc(expires)
                );
            }
        }
        (None, true) => {
            let made = inv.issue_unenrolled(valid.secs_i64(), t)?;
            print_links(&base, &made, expires, format)?;
            if format == Format::Table {
                eprintln!(
                    "{} link(s), valid until {}.",
                    made.len(),
                    format_utc(expires)
                );
            }
        }
        _ => {
            return Err(Fail::Error(
                "name a user, or --unenrolled for every user not enrolled yet".into(),
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn unlocks(cfg: &Path, user: Option<&str>, action: Option<UnlocksAction>) -> Result<ExitCode> {
    let a = open(cfg, OpenMode::Existing)?;
    let t = now();
    match action {
        Some(UnlocksAction::Revoke { user, ip }) => {
            let name = user_name(&a, &user)?;
            let ip = match ip.as_deref() {
                Some(s) => Some(parse_ip_literal(s).ok_or_else(|| {
                    Fail::Error(format!(
                        "{s:?} is not an IP address (host names are never remembered)"
                    ))
                })?),
                None => None,
            };
            let n = a.admin(ACTOR).revoke_networks(&name, ip, t)?;
            if n == 0 {
                outln!(
                    "{} had no remembered address in force{}; nothing to revoke.",
                    visible(name.as_str()),
                    ip.map(|i| format!(" for {i}")).unwrap_or_default()
                );
            } else {
                outln!(
                    "Revoked {n} remembered address(es) of {}.",
                    visible(name.as_str())
                );
            }
        }
        None => {
            let only = user.map(|u| user_name(&a, u)).transpose()?;
            let remember = a.config().policy.remember.secs_i64();
            let mut any = false;
            for rec in a.store().users()? {
                if only.as_ref().is_some_and(|o| *o != rec.name) {
                    continue;
                }
                for u in &rec.unlocks {
                    if !rec.unlock_in_force(u, t, remember) {
                        continue;
                    }
                    any = true;
                    outln!(
                        "{}  {}  until {}",
                        visible(rec.name.as_str()),
                        visible(&u.ip),
                        format_utc(u.expires.min(u.created.saturating_add(remember)))
                    );
                }
            }
            if !any {
                eprintln!("No remembered addresses.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
