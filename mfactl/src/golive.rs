//! `mfactl go-live [show | set DATE | clear]`: the roll-out's go-live (`[policy]
//! enforce_from`), shown and edited in the configuration file in place, comments kept.

use std::path::Path;
use std::process::ExitCode;

use mfa_config::{Config, GoLive, GoLiveEdit, edit_enforce_from, format_utc};
use mfa_core::login::now;
use mfa_core::policy::days_until;

use crate::admin::load_config;
use crate::{Fail, GoLiveAction, Result};

/// One line on where the roll-out stands, for `go-live show` and `config check`.
pub fn describe(c: &Config, t: i64) -> String {
    match c.policy.enforce_from {
        GoLive::Never => "not set (roll-out not scheduled: users who are not enrolled are let in; enrolled users need their code)".into(),
        GoLive::Now => "enforced now (enforce_from is absent)".into(),
        GoLive::At(g) if g.0 > t => format!(
            "{} (in {} days), grace {} days per user",
            format_utc(g.0),
            days_until(g.0, t),
            c.policy.grace_days
        ),
        GoLive::At(g) => format!(
            "{} (enforced), grace {} days per user",
            format_utc(g.0),
            c.policy.grace_days
        ),
    }
}

pub fn go_live(cfg: &Path, action: Option<GoLiveAction>) -> Result<ExitCode> {
    let edit = match action {
        None | Some(GoLiveAction::Show) => {
            println!("go-live: {}", describe(&load_config(cfg)?, now()));
            return Ok(ExitCode::SUCCESS);
        }
        Some(GoLiveAction::Set { date }) if date == "never" => GoLiveEdit::Never,
        Some(GoLiveAction::Set { date }) => GoLiveEdit::Date(date),
        Some(GoLiveAction::Clear) => GoLiveEdit::Never,
    };
    edit_enforce_from(cfg, &edit).map_err(|e| Fail::Error(e.to_string()))?;
    println!(
        "go-live: {} (written to {})",
        describe(&load_config(cfg)?, now()),
        cfg.display()
    );
    Ok(ExitCode::SUCCESS)
}
