//! `mfactl enroll`: the one place an administrator sees a user's key.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;

use mfa_core::enrolment::{APPS, Sheet, TerminalQr, qr_png, qr_svg, qr_terminal_as};
use mfa_core::login::now;
use mfa_core::{CoreError, OpenMode, Refusal, TotpSecret};

use crate::admin::{ACTOR, open, read_line};
use crate::{Fail, QrStyle, Result, user_name};

/// Confirmation attempts before giving up.
const TRIES: usize = 3;

/// Writes a file holding a key: a new file, mode 0600 from the start, never world-readable
/// for a moment. An existing file (or a symlink, even a dangling one) at `path` is refused and
/// left as it is: O_CREAT|O_EXCL creates or fails and never follows a final symlink, and
/// O_NOFOLLOW says so twice.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Fail::Error(format!(
                    "{} exists already; refusing to overwrite it (or to follow a symlink there): \
                     remove it or choose a new file name",
                    path.display()
                ))
            } else {
                Fail::Error(format!("cannot create {}: {e}", path.display()))
            }
        })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Fail::Error(format!("cannot write {}: {e}", path.display())))
}

/// Where and how `enroll` shows the QR code besides the text.
pub struct Files<'a> {
    pub png: Option<&'a Path>,
    pub svg: Option<&'a Path>,
    pub style: QrStyle,
}

/// `--qr auto`: the code's own colours where a terminal shows them, plain characters for
/// the dark background most terminals have where the output goes elsewhere (a file, a
/// pager), or where the user asked for no colours (NO_COLOR, TERM=dumb).
fn terminal_style(style: QrStyle) -> TerminalQr {
    match style {
        QrStyle::Color => TerminalQr::Colours,
        QrStyle::Dark => TerminalQr::DarkBackground,
        QrStyle::Light => TerminalQr::LightBackground,
        QrStyle::Auto => {
            let colours = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
            if colours {
                TerminalQr::Colours
            } else {
                TerminalQr::DarkBackground
            }
        }
    }
}

pub fn enroll(
    cfg: &Path,
    user: &str,
    secret: Option<&str>,
    no_confirm: bool,
    files: Files<'_>,
    replace: bool,
) -> Result<ExitCode> {
    let Files { png, svg, style } = files;
    let a = open(cfg, OpenMode::Create)?;
    let name = user_name(&a, user)?;
    let enrolment = a.enrolment();
    // Refuse early, before a key is shown that would never work.
    if enrolment.is_enrolled(&name)? && !replace {
        return Err(Fail::Refused(
            Refusal::AlreadyEnrolled {
                user: name,
                origin: None,
            }
            .to_string(),
        ));
    }
    let secret = match secret {
        Some(s) => TotpSecret::from_base32(s).map_err(|e| Fail::Error(format!("--secret: {e}")))?,
        None => TotpSecret::generate().map_err(|e| Fail::Error(e.to_string()))?,
    };
    let c = a.config();
    let sheet = Sheet::new(&c.totp.issuer, &name, &secret, &c.totp.params());
    let uri = &sheet.uri;

    outln!("Enrolling {name} ({}).\n", c.totp.issuer);
    if let Ok(qr) = qr_terminal_as(uri, terminal_style(style)) {
        outln!("{}", qr.as_str());
    }
    outln!("Scan the QR code with {APPS};");
    outln!("scan it with a second device now to link both. Or add the account by hand:");
    outln!("  Account:  {}", sheet.account);
    outln!("  Key:      {}", sheet.key.as_str());
    outln!("  Type:     {}", sheet.kind);
    outln!("  URI:      {}", uri.as_str());
    if let Some(p) = png {
        write_private(p, &qr_png(uri).map_err(Fail::Error)?)?;
        outln!("QR code written to {} (mode 0600)", p.display());
    }
    if let Some(p) = svg {
        write_private(p, qr_svg(uri).map_err(Fail::Error)?.as_bytes())?;
        outln!("QR code written to {} (mode 0600)", p.display());
    }

    if no_confirm {
        enrolment.enroll(&name, &secret, None, replace, ACTOR, now())?;
        outln!("\n{user} is enrolled.");
        return Ok(ExitCode::SUCCESS);
    }
    for attempt in 1..=TRIES {
        let Some(code) = read_line("\nEnter the code the app shows now, to confirm: ")? else {
            return Err(Fail::Refused(
                "no confirmation code given; the user is NOT enrolled (use --no-confirm for scripted provisioning)".into(),
            ));
        };
        match enrolment.enroll(&name, &secret, Some(&code), replace, ACTOR, now()) {
            Ok(()) => {
                outln!("\nConfirmed: {user} is enrolled.");
                return Ok(ExitCode::SUCCESS);
            }
            Err(CoreError::Refused(r @ Refusal::WrongConfirmationCode)) if attempt < TRIES => {
                eprintln!("{r}")
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Fail::Refused(format!(
        "no matching code after {TRIES} tries; {user} is NOT enrolled"
    )))
}
