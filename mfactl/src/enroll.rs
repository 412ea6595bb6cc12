//! `mfactl enroll`: the one place an administrator sees a user's key.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;

use mfa_common::auth::now;
use mfa_common::enrolment::{otpauth_uri, qr_png, qr_svg, qr_terminal};
use mfa_common::totp::TotpParams;
use mfa_common::{CoreError, OpenMode, TotpSecret};

use crate::admin::{open, read_line};
use crate::{Fail, Result};

/// Confirmation attempts before giving up.
const TRIES: usize = 3;

/// Writes a file holding a key: mode 0600 from the start, never world-readable for a moment.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Fail::Error(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(bytes)
        .map_err(|e| Fail::Error(format!("cannot write {}: {e}", path.display())))
}

pub fn enroll(
    cfg: &Path,
    user: &str,
    secret: Option<&str>,
    no_confirm: bool,
    png: Option<&Path>,
    svg: Option<&Path>,
    replace: bool,
) -> Result<ExitCode> {
    if !mfa_config::valid_name(user) {
        return Err(Fail::Error(format!("{user:?} is not a valid user name")));
    }
    let a = open(cfg, OpenMode::Create)?;
    // Refuse early, before a key is shown that would never work.
    if let Some(rec) = a.store().user(user)?
        && rec.enrolled()
        && !replace
    {
        return Err(Fail::Refused(format!(
            "user {user:?} is already enrolled; unlink first, or use --replace"
        )));
    }
    let secret = match secret {
        Some(s) => TotpSecret::from_base32(s).map_err(|e| Fail::Error(format!("--secret: {e}")))?,
        None => TotpSecret::generate().map_err(|e| Fail::Error(e.to_string()))?,
    };
    let c = a.config();
    let params = TotpParams::from_config(&c.totp);
    let uri = otpauth_uri(&c.totp.issuer, user, &secret, &params);
    let qr = qr_terminal(&uri).map_err(Fail::Error)?;

    println!("Enrolling {user} ({}).\n", c.totp.issuer);
    println!("{}", qr.as_str());
    println!(
        "Scan the QR code with Microsoft Authenticator (\"Other account\"), Google Authenticator or Authy;"
    );
    println!("scan it with a second device now to link both. Or add the account by hand:");
    println!("  Account:  {}: {user}", c.totp.issuer);
    println!("  Key:      {}", secret.to_grouped().as_str());
    println!(
        "  Type:     time-based, {}, {} digits, every {} seconds",
        params.algorithm.as_str(),
        params.digits,
        params.period
    );
    println!("  URI:      {}", uri.as_str());
    if let Some(p) = png {
        write_private(p, &qr_png(&uri).map_err(Fail::Error)?)?;
        println!("QR code written to {} (mode 0600)", p.display());
    }
    if let Some(p) = svg {
        write_private(p, qr_svg(&uri).map_err(Fail::Error)?.as_bytes())?;
        println!("QR code written to {} (mode 0600)", p.display());
    }

    if no_confirm {
        a.enroll(user, &secret, None, replace, "mfactl", now())?;
        println!("\n{user} is enrolled.");
        return Ok(ExitCode::SUCCESS);
    }
    for attempt in 1..=TRIES {
        let Some(code) = read_line("\nEnter the code the app shows now, to confirm: ")? else {
            return Err(Fail::Refused(
                "no confirmation code given; the user is NOT enrolled (use --no-confirm for scripted provisioning)".into(),
            ));
        };
        match a.enroll(user, &secret, Some(&code), replace, "mfactl", now()) {
            Ok(()) => {
                println!("\nConfirmed: {user} is enrolled.");
                return Ok(ExitCode::SUCCESS);
            }
            Err(CoreError::Invalid(m)) if attempt < TRIES => eprintln!("{m}"),
            Err(e) => return Err(e.into()),
        }
    }
    Err(Fail::Refused(format!(
        "no matching code after {TRIES} tries; {user} is NOT enrolled"
    )))
}
