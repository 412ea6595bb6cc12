//! `mfactl breakglass issue HOST`: a PAM host's break-glass codes (issue 24). The codes are
//! printed once; only their hashes are written, to a file for that host alone, which
//! replaces any set at that path by rename (the old set stops working there).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::{Fail, Result, write_stdout};

pub fn issue(host: &str, count: u32, out: Option<PathBuf>) -> Result<ExitCode> {
    if host.is_empty()
        || host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(Fail::Error(format!(
            "HOST {host:?}: give the host's name (letters, digits, '-', '.', '_')"
        )));
    }
    let path = out.unwrap_or_else(|| PathBuf::from(format!("breakglass-{host}")));
    let (codes, text) = mfa_core::breakglass::issue(host, count, mfa_core::login::now())?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let fail = |e: std::io::Error| Fail::Error(format!("{}: {e}", path.display()));
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        // create_new (O_EXCL) never follows a link left at the temporary path.
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)?;
    // Printed only once the hashes are written: a code nobody can use is never shown.
    write_stdout(
        format_args!(
            "Break-glass codes for {host} (each works once, on {host} only, only while no MFA server answers; they are not shown again):"
        ),
        true,
    );
    for c in &codes {
        write_stdout(format_args!("{}", c.as_str()), true);
    }
    eprintln!(
        "mfactl: wrote their hashes to {}: copy it to {host} as its [remote] breakglass_file (root's, mode 0600)",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
