//! `mfactl directory test USER`: what `[directory]` says about a user and why: found or
//! not, the canonical name, every group with the chain of groups that makes it count, the
//! server that answered and the time it took. Asks the server, not the cache.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use mfa_core::OpenMode;
use serde_json::json;

use crate::admin::open;
use crate::{Fail, Format, Result};

pub fn test(cfg: &Path, user: &str, format: Format) -> Result<ExitCode> {
    let core = open(cfg, OpenMode::Existing)?;
    let Some(dir) = core.directory() else {
        return Err(Fail::Error(
            "no [directory] in the configuration: groups come from the system (NSS)".into(),
        ));
    };
    let start = Instant::now();
    let name = crate::user_name(&core, user)?;
    let found = dir
        .lookup_fresh(name.as_str())
        .map_err(|e| Fail::Error(e.to_string()))?;
    let took = start.elapsed();
    let ms = took.as_secs_f64() * 1000.0;
    match format {
        Format::Json => {
            let account = found.account.as_ref().map(|a| {
                json!({
                    "account": a.name,
                    "dn": a.dn,
                    "upn": a.upn,
                    "groups": a.groups.iter().map(|g| json!({
                        "name": g.name,
                        "path": g.path,
                        "primary": g.primary,
                    })).collect::<Vec<_>>(),
                })
            });
            outln!(
                "{:#}",
                json!({
                    "user": user,
                    "canonical": name.as_str(),
                    "found": found.account.is_some(),
                    "entry": account,
                    "server": found.server,
                    "milliseconds": ms,
                })
            );
        }
        Format::Table | Format::Csv => {
            outln!("user: {user}");
            outln!("canonical name: {name}");
            match &found.account {
                None => outln!("found: no (the directory has no such user: no record, no groups)"),
                Some(a) => {
                    outln!("found: yes");
                    outln!("account: {}", a.name);
                    outln!("dn: {}", a.dn);
                    if let Some(upn) = &a.upn {
                        outln!("upn: {upn}");
                    }
                    if a.groups.is_empty() {
                        outln!("groups: none");
                    }
                    for g in &a.groups {
                        let via = if g.primary { " (primary group)" } else { "" };
                        outln!("group: {}  via {}{via}", g.name, g.path.join(" > "));
                    }
                }
            }
            outln!("server: {}", found.server);
            outln!("time: {ms:.1} ms");
        }
    }
    Ok(if found.account.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
