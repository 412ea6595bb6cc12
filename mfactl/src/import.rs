//! `mfactl import`: bulk provisioning from a CSV of `user,base32-secret` lines or from
//! google-authenticator per-user files, so a site migrates without re-enrolling anyone.
//! Everything is parsed and checked before the store is touched; then one transaction.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use mfa_config::Config;
use mfa_core::admin::ImportEntry;
use mfa_core::login::now;
use mfa_core::{OpenMode, TotpParams, TotpSecret, UserName};
use mfa_model::Algorithm;
use zeroize::Zeroizing;

use crate::admin::{ACTOR, load_config, open_with};
use crate::{Fail, Result};

const MAX_FILE: u64 = 64 << 20;

pub fn import(
    cfg: &Path,
    files: &[std::path::PathBuf],
    user: Option<&str>,
    replace: bool,
) -> Result<ExitCode> {
    let config = load_config(cfg)?;
    if user.is_some() && files.len() != 1 {
        return Err(Fail::Error(
            "--user names the owner of a single google-authenticator file".into(),
        ));
    }
    let mut entries = Vec::new();
    for f in files {
        entries.extend(parse_file(f, user, &config).map_err(Fail::Error)?);
    }
    check_duplicates(&entries).map_err(Fail::Error)?;
    if entries.is_empty() {
        return Err(Fail::Error("nothing to import: no user lines found".into()));
    }
    let a = open_with(config, OpenMode::Create)?;
    a.admin(ACTOR).import(&entries, replace, now())?;
    outln!("Imported {} user(s).", entries.len());
    Ok(ExitCode::SUCCESS)
}

fn check_duplicates(entries: &[ImportEntry]) -> std::result::Result<(), String> {
    let mut seen: HashMap<&UserName, &str> = HashMap::new();
    for e in entries {
        if let Some(first) = seen.insert(&e.user, &e.origin) {
            return Err(format!(
                "{}: user {:?} appears again (first at {first}); nothing was imported",
                e.origin, e.user
            ));
        }
    }
    Ok(())
}

fn read(path: &Path) -> std::result::Result<(Zeroizing<String>, std::fs::Metadata), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_FILE {
        return Err(format!("{}: larger than 64 MiB", path.display()));
    }
    let bytes =
        Zeroizing::new(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let text =
        std::str::from_utf8(&bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
    Ok((Zeroizing::new(text.to_string()), meta))
}

fn looks_like_google_authenticator(path: &Path, text: &str) -> bool {
    if path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("google_authenticator"))
    {
        return true;
    }
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or("");
    !first.contains(',') && lines.next().is_some_and(|l| l.starts_with('"'))
}

fn parse_file(
    path: &Path,
    user: Option<&str>,
    cfg: &Config,
) -> std::result::Result<Vec<ImportEntry>, String> {
    let (text, meta) = read(path)?;
    if looks_like_google_authenticator(path, &text) {
        let owner = match user {
            Some(u) => u.to_string(),
            None => nix::unistd::User::from_uid(meta.uid().into())
                .ok()
                .flatten()
                .map(|u| u.name)
                .ok_or_else(|| {
                    format!(
                        "{}: cannot tell whose file this is; name the user with --user",
                        path.display()
                    )
                })?,
        };
        return parse_google_authenticator(path, &text, &owner, cfg).map(|e| vec![e]);
    }
    parse_csv(path, &text, cfg)
}

/// `user,secret` lines; an optional `user,secret` header; `#` comments and blank lines skipped.
pub fn parse_csv(
    path: &Path,
    text: &str,
    cfg: &Config,
) -> std::result::Result<Vec<ImportEntry>, String> {
    let params = cfg.totp.params();
    let mut out = Vec::new();
    let mut first = true;
    // Line by line, so errors name the line as an editor numbers it (comments included);
    // the csv crate still parses each line, so quoted fields work.
    for (i, raw) in text.lines().enumerate() {
        let at = format!("{}:{}", path.display(), i + 1);
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(trimmed.as_bytes());
        let rec = match rdr.records().next() {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(format!("{at}: {e}")),
            None => continue,
        };
        if rec.len() != 2 {
            return Err(format!(
                "{at}: expected 2 fields (user,secret), found {}",
                rec.len()
            ));
        }
        let (user, secret) = (&rec[0], &rec[1]);
        let header =
            first && user.eq_ignore_ascii_case("user") && secret.eq_ignore_ascii_case("secret");
        first = false;
        if header {
            continue;
        }
        let name = mfa_core::user_name(cfg, user).map_err(|e| format!("{at}: {e}"))?;
        let secret =
            TotpSecret::from_base32(secret).map_err(|e| format!("{at}: secret of {user}: {e}"))?;
        out.push(ImportEntry {
            user: name,
            secret,
            params,
            scratch_codes: Vec::new(),
            origin: at,
        });
    }
    Ok(out)
}

/// google-authenticator's file: the key on line 1, `" OPTION` lines, then 8-digit scratch
/// codes, which become backup codes.
pub fn parse_google_authenticator(
    path: &Path,
    text: &str,
    user: &str,
    cfg: &Config,
) -> std::result::Result<ImportEntry, String> {
    let at = |n: usize| format!("{}:{n}", path.display());
    let name = mfa_core::user_name(cfg, user).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let (n, key) = lines
        .next()
        .ok_or_else(|| format!("{}: empty file", path.display()))?;
    let secret = TotpSecret::from_base32(key).map_err(|e| format!("{}: {e}", at(n)))?;
    let mut params = TotpParams {
        algorithm: Algorithm::SHA1,
        digits: 6,
        period: 30,
    };
    let mut scratch = Vec::new();
    for (n, l) in lines {
        if l.is_empty() {
            continue;
        }
        if let Some(opt) = l.strip_prefix('"') {
            let mut words = opt.split_whitespace();
            match words.next() {
                Some("HOTP_COUNTER") => {
                    return Err(format!(
                        "{}: counter-based (HOTP) keys are not supported; re-enrol this user",
                        at(n)
                    ));
                }
                Some("STEP_SIZE") => {
                    params.period = words
                        .next()
                        .and_then(|w| w.parse().ok())
                        .filter(|p| mfa_model::PERIODS.contains(p))
                        .ok_or_else(|| {
                            format!(
                                "{}: STEP_SIZE must be {} to {} seconds",
                                at(n),
                                mfa_model::PERIODS.start(),
                                mfa_model::PERIODS.end()
                            )
                        })?;
                }
                _ => {}
            }
        } else if l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()) {
            scratch.push(Zeroizing::new(l.to_string()));
        } else {
            return Err(format!(
                "{}: neither an option line nor an 8-digit scratch code",
                at(n)
            ));
        }
    }
    Ok(ImportEntry {
        user: name,
        secret,
        params,
        scratch_codes: scratch,
        origin: at(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_forms() {
        let cfg = Config::default();
        let p = Path::new("u.csv");
        let ok = "user,secret\n# staff\nalice, JBSWY3DPEHPK3PXP\n\nbob,jbsw y3dp ehpk 3pxp\n";
        let e = parse_csv(p, ok, &cfg).unwrap();
        assert_eq!(
            e.iter().map(|e| e.user.as_str()).collect::<Vec<_>>(),
            ["alice", "bob"]
        );
        assert_eq!(e[1].origin, "u.csv:5");
        let bad = parse_csv(p, "alice,JBSWY3DPEHPK3PXP\nbob,JBSW1Y3DPEHPK3PX\n", &cfg).unwrap_err();
        assert!(
            bad.starts_with("u.csv:2: secret of bob: character 5"),
            "{bad}"
        );
        let bad = parse_csv(p, "alice,JBSWY3DPEHPK3PXP,x\n", &cfg).unwrap_err();
        assert!(bad.contains("u.csv:1: expected 2 fields"), "{bad}");
    }

    #[test]
    fn csv_names_are_canonical_and_one_user_twice_is_refused() {
        let mut cfg = Config::default();
        cfg.users.domains = vec!["CONTOSO".into()];
        let p = Path::new("u.csv");
        let e = parse_csv(
            p,
            "Alice,JBSWY3DPEHPK3PXP\nCONTOSO\\Bob,JBSWY3DPEHPK3PXP\n",
            &cfg,
        )
        .unwrap();
        assert_eq!(
            e.iter().map(|e| e.user.as_str()).collect::<Vec<_>>(),
            ["alice", "bob"]
        );
        let bad = parse_csv(
            p,
            "alice,JBSWY3DPEHPK3PXP\nOTHER\\bob,JBSWY3DPEHPK3PXP\n",
            &cfg,
        )
        .unwrap_err();
        assert!(
            bad.starts_with("u.csv:2: \"OTHER\\\\bob\" is not a valid user name"),
            "{bad}"
        );
        let twice = parse_csv(p, "alice,JBSWY3DPEHPK3PXP\nALICE,JBSWY3DPEHPK3PXP\n", &cfg).unwrap();
        let dup = check_duplicates(&twice).unwrap_err();
        assert!(
            dup.contains("u.csv:2") && dup.contains("\"alice\""),
            "{dup}"
        );
    }

    #[test]
    fn google_authenticator_file() {
        let t = "JBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n12345678\n87654321\n";
        let e = parse_google_authenticator(
            Path::new("/home/alice/.google_authenticator"),
            t,
            "alice",
            &Config::default(),
        )
        .unwrap();
        assert_eq!(e.scratch_codes.len(), 2);
        assert_eq!(e.params.period, 30);
        let h = parse_google_authenticator(
            Path::new("g"),
            "JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 1\n",
            "a",
            &Config::default(),
        )
        .unwrap_err();
        assert!(h.contains("g:2") && h.contains("HOTP"), "{h}");
        assert!(looks_like_google_authenticator(Path::new("x"), t));
        assert!(!looks_like_google_authenticator(
            Path::new("x"),
            "alice,JBSWY3DPEHPK3PXP\n"
        ));
    }
}
