//! `mfactl` on a PAM host in remote mode (issue 24): `status` shows the host's view of its
//! servers (`mfa_core::reachability`, written by pam_mfa), and `config check` inspects the
//! offline files (`[remote] breakglass_file`, `offline_queue`, and that view) as the module
//! would take them, naming the path and what is wrong.

use std::path::Path;
use std::process::ExitCode;

use mfa_config::files::{Purpose, check_directories_of, check_trusted_file};
use mfa_config::{Config, RemoteConfig, format_utc};
use mfa_core::reachability::{Reachability, state_path};
use serde_json::json;

use crate::{Fail, Format, Result};

/// What is wrong with a PAM host's offline file at `path` for the module, which opens it
/// without following a link and takes only a regular file of root's, mode 0600 or
/// stricter, under no directory anyone else may write. `Ok(None)`: not there (its
/// directories checked).
pub fn read_host_file(path: &Path) -> std::result::Result<Option<String>, String> {
    let shown = path.display();
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            check_directories_of(path, Purpose::PamHostFile).map_err(|p| p.to_string())?;
            return Ok(None);
        }
        Err(e) => return Err(format!("{shown}: {e}")),
    };
    use std::os::unix::fs::MetadataExt;
    if m.file_type().is_symlink() {
        return Err(format!(
            "{shown}: a symbolic link, which the module refuses: make it the file itself"
        ));
    }
    if !m.file_type().is_file() {
        return Err(format!("{shown}: not a regular file"));
    }
    if m.uid() != 0 {
        return Err(format!(
            "{shown}: owned by uid {}, the module takes only root's: chown root:root {shown}",
            m.uid()
        ));
    }
    if m.mode() & 0o077 != 0 {
        return Err(format!(
            "{shown}: mode {:04o}, the module takes 0600 or stricter: chmod 0600 {shown}",
            m.mode() & 0o7777
        ));
    }
    check_trusted_file(path, Purpose::PamHostFile).map_err(|p| p.to_string())?;
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|e| format!("{shown}: {e}"))
}

/// `config check`'s lines about the offline files of a host with `[remote]`: problems
/// (each naming the path and what is wrong) and notes (what is there).
pub fn check_offline_files(r: &RemoteConfig) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    if let Some(bg) = &r.breakglass_file {
        match read_host_file(bg) {
            Err(e) => problems.push(format!("remote.breakglass_file: {e}")),
            Ok(None) => notes.push(format!(
                "break-glass codes: {} is not there: no way in while no server answers but what offline allows",
                bg.display()
            )),
            Ok(Some(text)) => match mfa_core::breakglass::check(&text) {
                Err(e) => problems.push(format!(
                    "remote.breakglass_file: {}: {e}; the module refuses the whole file (issue a new one: mfactl breakglass issue HOST)",
                    bg.display()
                )),
                Ok(0) => problems.push(format!(
                    "remote.breakglass_file: {}: no unused code left (issue a new set: mfactl breakglass issue HOST)",
                    bg.display()
                )),
                Ok(n) => notes.push(format!(
                    "break-glass codes: {} unused in {}",
                    n,
                    bg.display()
                )),
            },
        }
    }
    let q = &r.offline_queue;
    match read_host_file(q) {
        Err(e) => problems.push(format!("remote.offline_queue: {e}")),
        Ok(None) => notes.push(format!(
            "offline queue: {} (not made yet: at the first login let in offline)",
            q.display()
        )),
        Ok(Some(text)) => {
            let n = text.lines().filter(|l| !l.trim().is_empty()).count();
            notes.push(format!(
                "offline queue: {} ({n} login(s) waiting to be reported to a server)",
                q.display()
            ));
        }
    }
    for side in [".lock", ".reported"] {
        let mut p = q.as_os_str().to_owned();
        p.push(side);
        if let Err(e) = read_host_file(Path::new(&p)) {
            problems.push(format!("remote.offline_queue: {e}"));
        }
    }
    if let Err(e) = read_host_file(&state_path(q)) {
        problems.push(format!(
            "remote.offline_queue (the servers' reachability): {e}"
        ));
    }
    (problems, notes)
}

fn when(t: Option<i64>) -> String {
    t.map_or_else(|| "never".into(), format_utc)
}

/// `mfactl status` on a PAM host in remote mode: the servers as this host last saw them.
pub fn status(c: &Config, r: &RemoteConfig, format: Format) -> Result<ExitCode> {
    let path = state_path(&r.offline_queue);
    let seen = match read_host_file(&path) {
        Ok(text) => Reachability::parse(&text.unwrap_or_default()),
        Err(e) => return Err(Fail::Error(e)),
    };
    let of = |s| seen.servers.iter().find(|v| v.server == s);
    // Logins let in offline and not yet acknowledged by a server; `None` where unreadable
    // (`config check` says why).
    let waiting = read_host_file(&r.offline_queue)
        .ok()
        .map(|t| t.map_or(0, |t| t.lines().filter(|l| !l.trim().is_empty()).count()));
    match format {
        Format::Json => {
            let servers: Vec<_> = r
                .servers
                .iter()
                .map(|s| {
                    let v = of(*s);
                    json!({
                        "server": s.to_string(),
                        "in_use": seen.in_use() == Some(*s),
                        "last_answer": v.and_then(|v| v.answered).map(format_utc),
                        "last_failure": v.and_then(|v| v.failed).map(format_utc),
                        "last_error": v.and_then(|v| v.error.clone()),
                    })
                })
                .collect();
            outln!(
                "{:#}",
                json!({
                    "mode": "remote",
                    "config": c.source.display().to_string(),
                    "state_file": path.display().to_string(),
                    "last_login": seen.last.map(|(t, _)| format_utc(t)),
                    "in_use": seen.in_use().map(|s| s.to_string()),
                    "servers": servers,
                    "offline_queue": r.offline_queue.display().to_string(),
                    "offline_waiting": waiting,
                })
            );
        }
        Format::Table => {
            outln!(
                "mode: remote (PAM host; the servers decide), as this host saw them in {}",
                path.display()
            );
            match seen.last {
                None => outln!("last login: none recorded yet"),
                Some((t, Some(s))) => {
                    outln!("last login: {}, answered by {s} (in use)", format_utc(t))
                }
                Some((t, None)) => outln!(
                    "last login: {}, NO SERVER ANSWERED (offline: see [remote] offline)",
                    format_utc(t)
                ),
            }
            for s in &r.servers {
                let v = of(*s);
                let mark = if seen.in_use() == Some(*s) {
                    " (in use)"
                } else {
                    ""
                };
                outln!(
                    "server {s}{mark}: last answer {}, last failure {}{}",
                    when(v.and_then(|v| v.answered)),
                    when(v.and_then(|v| v.failed)),
                    v.and_then(|v| v.error.as_deref())
                        .filter(|_| v.and_then(|v| v.failed).is_some())
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                );
            }
        }
        Format::Csv => {
            return Err(Fail::Error(
                "status: --format table or json (csv is for lists)".into(),
            ));
        }
    }
    if format == Format::Table {
        match waiting {
            Some(n) => outln!(
                "offline queue: {n} login(s) let in while no server answered, not yet reported ({})",
                r.offline_queue.display()
            ),
            None => outln!(
                "offline queue: {} cannot be read (mfactl config check says why)",
                r.offline_queue.display()
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
