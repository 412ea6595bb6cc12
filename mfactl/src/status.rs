//! `mfactl status`: which database server the store uses, whether it takes writes, and its
//! standbys (docs/FAILOVER.md). Read when asked, as the daemon's metrics are. On a PAM host
//! in remote mode: its servers as it last saw them (`pam_host.rs`).

use std::path::Path;
use std::process::ExitCode;

use mfa_core::OpenMode;
use serde_json::json;

use crate::admin::open_with;
use crate::{Fail, Format, Result};

pub fn status(cfg: &Path, format: Format) -> Result<ExitCode> {
    let c = crate::admin::load_config(cfg)?;
    // A PAM host in remote mode has no store: what it knows is how its servers answered.
    if let Some(r) = &c.remote {
        return crate::pam_host::status(&c, r, format);
    }
    let core = open_with(c, OpenMode::Existing)?;
    let c = core.config();
    let store = match &c.store.url {
        Some(url) => format!("PostgreSQL {}", mfa_core::store::redact_url(url)),
        None => format!("SQLite {}", c.store.path.display()),
    };
    let health = core.store().health().transpose()?;
    match format {
        Format::Json => {
            let server = health.as_ref().map(|h| {
                json!({
                    "server": h.server,
                    "primary": h.primary,
                    "standbys_readable": h.standbys_readable,
                    "standbys": h.standbys.iter().map(|s| json!({
                        "name": s.name,
                        "sync_state": s.sync_state,
                        "replay_lag_seconds": s.replay_lag_seconds,
                        "lag_bytes": s.lag_bytes,
                    })).collect::<Vec<_>>(),
                })
            });
            outln!("{:#}", json!({ "store": store, "database": server }));
        }
        Format::Table => {
            outln!("store: {store}");
            match &health {
                None => outln!("server: none (the store is a file on this host)"),
                Some(h) => {
                    let role = if h.primary {
                        "primary"
                    } else {
                        "standby: read-only, every login is refused"
                    };
                    outln!("server: {} ({role})", h.server);
                    if h.primary && h.standbys.is_empty() {
                        outln!("standbys: none (nothing would survive the loss of this server)");
                    }
                    for s in &h.standbys {
                        if !h.standbys_readable {
                            outln!(
                                "standby {}: state not readable (grant the role pg_monitor)",
                                s.name
                            );
                            continue;
                        }
                        let lag = s
                            .replay_lag_seconds
                            .map_or("unknown".to_string(), |l| format!("{l:.3} s"));
                        let bytes = s
                            .lag_bytes
                            .map_or("unknown".to_string(), |b| format!("{b:.0}"));
                        outln!(
                            "standby {}: {}, replay lag {lag}, {bytes} bytes behind",
                            s.name,
                            s.sync_state
                        );
                    }
                }
            }
        }
        Format::Csv => {
            return Err(Fail::Error(
                "status: --format table or json (csv is for lists)".into(),
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
