//! `mfactl go-live [show | set DATE | clear]`: the roll-out's go-live (`[policy]
//! enforce_from`), shown and edited in the configuration file in place, comments kept.

use std::path::Path;
use std::process::ExitCode;

use mfa_config::{Config, GoLive, GoLiveEdit, edit_enforce_from, format_utc};
use mfa_core::login::now;
use mfa_core::policy::{days_until, rollout_status};
use mfa_core::{OpenMode, RolloutStatus};

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
            outln!("go-live: {}", describe(&load_config(cfg)?, now()));
            return Ok(ExitCode::SUCCESS);
        }
        Some(GoLiveAction::Set { date }) if date == "never" => GoLiveEdit::Never,
        Some(GoLiveAction::Set { date }) => GoLiveEdit::Date(date),
        Some(GoLiveAction::Clear) => GoLiveEdit::Never,
    };
    edit_enforce_from(cfg, &edit).map_err(|e| Fail::Error(e.to_string()))?;
    let c = load_config(cfg)?;
    let t = now();
    outln!(
        "go-live: {} (written to {})",
        describe(&c, t),
        cfg.display()
    );
    if let GoLive::At(g) = c.policy.enforce_from
        && g.0 <= t
    {
        eprintln!("{}", passed_warning(c, g.0, t));
    }
    eprintln!("{}", crate::admin::RELOAD_HINT);
    Ok(ExitCode::SUCCESS)
}

/// What a go-live in the past does at once: MFA is enforced, and who is refused because of
/// it, counted from the store through the same rule the report uses.
fn passed_warning(c: Config, go_live: i64, t: i64) -> String {
    let when = format_utc(go_live);
    let grace = c.policy.grace_days;
    let newcomers = if grace == 0 {
        "a user the store has not seen yet is refused at the first login from outside the trusted networks".to_string()
    } else {
        format!("a user the store has not seen yet gets {grace} day(s) from the first login")
    };
    let counted = (|| -> Result<String> {
        let a = crate::admin::open_with(c, OpenMode::Existing)?;
        let (mut users, mut refused, mut grace_left) = (0usize, 0usize, 0usize);
        for u in a.store().users()? {
            let groups = a.login().groups_for(&u.name)?;
            let (status, _) = rollout_status(&u, a.config(), &groups, t);
            if u.enrolled() || status == RolloutStatus::Exempt {
                continue;
            }
            users += 1;
            match status {
                RolloutStatus::Grace { .. } => grace_left += 1,
                RolloutStatus::TemporaryAccess => {}
                _ => refused += 1,
            }
        }
        Ok(format!(
            "{users} stored user(s) are not enrolled: {refused} of them are locked out from now \
             on outside the trusted networks, {grace_left} more when their grace period ends"
        ))
    })()
    .unwrap_or_else(|e| {
        let m = match e {
            Fail::Refused(m) | Fail::Error(m) => m,
        };
        format!("the users who are not enrolled could not be counted ({m})")
    });
    format!(
        "warning: the go-live {when} has passed: MFA is enforced from now on. {counted}; \
         {newcomers}. `mfactl report` lists them; `mfactl go-live clear` undoes this."
    )
}
