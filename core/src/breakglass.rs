//! Break-glass codes of one PAM host in remote mode (issue 24): one-time codes valid only
//! while no server answers, made by `mfactl breakglass issue HOST` and kept, hashed, on that
//! host alone (`[remote] breakglass_file`). They are one-time codes like backup codes: the
//! same 8 digits, the same salted Argon2id hash ([`crate::verify::new_one_time_code`]), so
//! a copy of the file costs a guesser what a copy of the store does.
//!
//! The file is text, one line per unused code, `v2 SALT HASH` in hex; `#` starts a comment.
//! A line this release cannot read makes the whole file unreadable (fail closed).

use mfa_model::{OtcHash, OtcKind};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::CoreError;
use crate::verify::{MAX_OTC_TRIED, hash_code, new_one_time_code, normalize_code};

/// Codes `mfactl breakglass issue` prints unless told otherwise.
pub const BREAKGLASS_CODES_DEFAULT: u32 = 10;
/// At most this many per host: each is one Argon2id hash per wrong code typed offline.
pub const BREAKGLASS_CODES_MAX: u32 = 50;

/// `count` new codes for `host`: the codes (printed once) and the file's text.
pub fn issue(
    host: &str,
    count: u32,
    now: i64,
) -> Result<(Vec<Zeroizing<String>>, String), CoreError> {
    let mut codes = Vec::new();
    let mut text = format!(
        "# mfa break-glass codes for host {host:?}, issued {}: valid only while no server \
         answers, each once. Keep this file root's, mode 0600.\n",
        mfa_config::format_utc(now)
    );
    for _ in 0..count {
        let (code, stored) = new_one_time_code(OtcKind::Backup, now, None, 1)?;
        text.push_str(&format!(
            "v2 {} {}\n",
            hex(&stored.salt),
            hex(stored.hash.as_slice())
        ));
        codes.push(code);
    }
    Ok((codes, text))
}

/// The file's text without the line of `code`, where one matches; `None` where none does.
/// An unreadable line is an error naming it. Every line is hashed and compared in constant
/// time, so the time taken does not say which line matched.
pub fn take(text: &str, code: &str) -> Result<Option<String>, String> {
    let code = normalize_code(code);
    let mut matched: Option<usize> = None;
    let mut tried = 0;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (salt, hash) = parse_line(t).ok_or_else(|| format!("line {}: not a code", i + 1))?;
        tried += 1;
        if tried > MAX_OTC_TRIED {
            return Err(format!("more than {MAX_OTC_TRIED} codes"));
        }
        let Some(h) = hash_code(OtcHash::Argon2idV2, &salt, &code) else {
            return Err("Argon2id refused its parameters".into());
        };
        let same: bool = h.as_slice().ct_eq(&hash).into();
        if same && matched.is_none() {
            matched = Some(i);
        }
    }
    Ok(matched.map(|m| {
        let mut out = String::new();
        for (i, l) in lines.iter().enumerate() {
            if i != m {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }))
}

/// How many unused codes the file holds, where the module can read every line of it (as
/// [`take`] reads them: it refuses the whole file otherwise); else which line is not a code.
/// For `mfactl config check` on the host.
pub fn check(text: &str) -> Result<usize, String> {
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if parse_line(t).is_none() {
            return Err(format!(
                "line {}: not a code of this release (`v2 SALT HASH`)",
                i + 1
            ));
        }
        n += 1;
    }
    if n > MAX_OTC_TRIED {
        return Err(format!(
            "{n} codes, more than the {MAX_OTC_TRIED} the module reads"
        ));
    }
    Ok(n)
}

/// How many unused codes the file holds.
pub fn count(text: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.starts_with('#'))
        .count()
}

fn parse_line(t: &str) -> Option<([u8; 16], [u8; 32])> {
    let mut parts = t.split_ascii_whitespace();
    if parts.next()? != "v2" {
        return None;
    }
    let salt: [u8; 16] = unhex(parts.next()?)?.try_into().ok()?;
    let hash: [u8; 32] = unhex(parts.next()?)?.try_into().ok()?;
    parts.next().is_none().then_some((salt, hash))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `check` counts what `take` would read, and names the first line it would refuse.
    #[test]
    fn check_counts_and_names_a_bad_line() {
        let (_, text) = issue("web1", 3, 1_800_000_000).unwrap();
        assert_eq!(check(&text), Ok(3));
        assert_eq!(check("# none\n\n"), Ok(0));
        let bad = format!("{text}v2 00 11\n");
        assert!(check(&bad).unwrap_err().starts_with("line 5:"), "{bad}");
    }

    /// Each code works once; a wrong one and a used one match nothing; a bad line refuses
    /// the file.
    #[test]
    fn each_code_works_once() {
        let (codes, text) = issue("web1", 3, 1_800_000_000).unwrap();
        assert_eq!((codes.len(), count(&text)), (3, 3));
        assert!(!text.contains(codes[0].as_str()));
        let left = take(&text, &codes[1]).unwrap().unwrap();
        assert_eq!(count(&left), 2);
        assert_eq!(take(&left, &codes[1]).unwrap(), None);
        assert_eq!(take(&left, "00000000").unwrap(), None);
        let spaced = format!("{} {}", &codes[0][..4], &codes[0][4..]);
        assert_eq!(count(&take(&left, &spaced).unwrap().unwrap()), 1);
        assert!(take(&format!("{left}v2 zz\n"), &codes[0]).is_err());
    }
}
