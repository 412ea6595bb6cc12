//! `mfactl push`: the phones users registered for push approval, and the block "This
//! wasn't me" puts on a user.

use std::path::Path;
use std::process::ExitCode;

use mfa_config::format_utc;
use mfa_core::OpenMode;
use mfa_core::login::now;
use mfa_model::DeviceId;

use crate::admin::{ACTOR, open};
use crate::report::visible;
use crate::{Fail, Format, PushAction, Result, user_name};

pub fn push(cfg: &Path, action: PushAction) -> Result<ExitCode> {
    match action {
        PushAction::List { user, format } => list(cfg, &user, format),
        PushAction::Remove { user, device } => remove(cfg, &user, &device),
        PushAction::Unblock { user } => unblock(cfg, &user),
    }
}

fn list(cfg: &Path, user: &str, format: Format) -> Result<ExitCode> {
    let a = open(cfg, OpenMode::Existing)?;
    let name = user_name(&a, user)?;
    let t = now();
    let push = a.push(ACTOR);
    let devices = push.devices(&name)?;
    let blocked = push.blocked_until(&name, t)?;
    match format {
        Format::Json => {
            let list: Vec<serde_json::Value> = devices
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "id": d.id.hex(),
                        "name": d.name,
                        "created": format_utc(d.created),
                        "last_used": d.last_used.map(format_utc),
                    })
                })
                .collect();
            let v = serde_json::json!({
                "user": name.as_str(),
                "blocked_until": blocked.map(format_utc),
                "devices": list,
            });
            let text = serde_json::to_string_pretty(&v).map_err(|e| Fail::Error(e.to_string()))?;
            outln!("{text}");
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            let io = |e: csv::Error| Fail::Error(format!("cannot write CSV: {e}"));
            w.write_record(["user", "device", "name", "registered", "last_used"])
                .map_err(io)?;
            for d in &devices {
                let last = d.last_used.map(format_utc).unwrap_or_default();
                w.write_record([
                    name.as_str(),
                    &d.id.hex(),
                    &d.name,
                    &format_utc(d.created),
                    &last,
                ])
                .map_err(io)?;
            }
            w.flush()
                .map_err(|e| Fail::Error(format!("cannot write CSV: {e}")))?;
        }
        Format::Table => {
            if devices.is_empty() {
                eprintln!(
                    "{} has no phone registered for push approval.",
                    visible(name.as_str())
                );
            } else {
                outln!(
                    "DEVICE                            REGISTERED            LAST USED             NAME"
                );
                for d in &devices {
                    outln!(
                        "{}  {}  {:<20}  {}",
                        d.id,
                        format_utc(d.created),
                        d.last_used.map_or("-".into(), format_utc),
                        visible(&d.name)
                    );
                }
            }
            if let Some(until) = blocked {
                outln!(
                    "Pushes to {} are blocked until {} (a request was reported as not theirs); `mfactl push unblock` lifts it.",
                    visible(name.as_str()),
                    format_utc(until)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn remove(cfg: &Path, user: &str, device: &str) -> Result<ExitCode> {
    // A malformed id is a usage error, before the store is opened.
    let id = DeviceId::parse_hex(device).ok_or_else(|| {
        Fail::Error(format!(
            "{:?} is not a device id: 32 hex digits, as `mfactl push list` shows them; nothing was changed",
            visible(device)
        ))
    })?;
    let a = open(cfg, OpenMode::Existing)?;
    let name = user_name(&a, user)?;
    if !a.push(ACTOR).remove_device(&name, &id, now())? {
        return Err(Fail::Refused(format!(
            "{} has no device {id}; nothing was changed (`mfactl push list {}` shows the devices)",
            visible(name.as_str()),
            visible(name.as_str())
        )));
    }
    outln!(
        "Removed device {id} of {}: it no longer receives or approves sign-in requests.",
        visible(name.as_str())
    );
    Ok(ExitCode::SUCCESS)
}

fn unblock(cfg: &Path, user: &str) -> Result<ExitCode> {
    let a = open(cfg, OpenMode::Existing)?;
    let name = user_name(&a, user)?;
    if a.push(ACTOR).unblock(&name, now())? {
        outln!(
            "Pushes to {} are no longer blocked.",
            visible(name.as_str())
        );
    } else {
        outln!("Pushes to {} were not blocked.", visible(name.as_str()));
    }
    Ok(ExitCode::SUCCESS)
}
