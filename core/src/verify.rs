//! What a presented code does to a user's record: the replay check, one-time codes and the
//! lockout counters. Pure functions, run by the store inside one write transaction, so two
//! logins racing with one code cannot both win.

use mfa_config::Config;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use mfa_model::{OneTimeCode, OtcHash, OtcKind, TotpParams, UserRecord};

use crate::error::CoreError;

use crate::net::ClientAddr;
use crate::policy::{Decision, Reason, user_message};
use crate::secret::TotpSecret;
use crate::totp::{CodeMatch, check};

/// Digits of backup and temporary-access codes: longer than a TOTP code, so they are told
/// apart, and 10^8 guesses is far beyond the lockout.
pub const OTC_DIGITS: usize = 8;

/// Whether `code` could be a code at all: the user's TOTP length or a one-time code's. A
/// token from an earlier PAM module is only tried as a code when it could be one, so a
/// password is never counted as a wrong code towards the lockout.
pub fn looks_like_code(code: &str, params: &TotpParams) -> bool {
    let t = normalize_code(code);
    (t.len() == usize::from(params.digits) || t.len() == OTC_DIGITS)
        && t.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `code` could be a code of any key at all: a TOTP code of any length a key may
/// have ([`mfa_model::DIGITS`]) or a one-time code's. For a front end that does not hold the
/// configuration the code is checked against (a PAM host in remote mode, whose server's
/// `[totp]` and stored keys decide): its own `[totp]` says nothing about the server's codes.
pub fn looks_like_any_code(code: &str) -> bool {
    let t = normalize_code(code);
    let digits = u8::try_from(t.len()).is_ok_and(|n| mfa_model::DIGITS.contains(&n));
    (digits || t.len() == OTC_DIGITS) && t.bytes().all(|b| b.is_ascii_digit())
}

/// A RADIUS append-mode User-Password split into the password and the code: at the last
/// occurrence of `delimiter`, or as the trailing `digits` ASCII digits (never a one-time
/// code's length, which would make the split ambiguous). `None` when no code is there.
pub fn split_appended(
    whole: &[u8],
    digits: u8,
    delimiter: Option<&str>,
) -> Option<(Zeroizing<Vec<u8>>, Zeroizing<String>)> {
    let (pw, code) = match delimiter {
        Some(d) => {
            let d = d.as_bytes();
            if d.is_empty() || whole.len() < d.len() {
                return None;
            }
            let at = (0..=whole.len() - d.len())
                .rev()
                .find(|&i| whole.get(i..i + d.len()) == Some(d))?;
            (whole.get(..at)?, whole.get(at + d.len()..)?)
        }
        None => {
            let at = whole.len().checked_sub(usize::from(digits))?;
            let (pw, code) = whole.split_at_checked(at)?;
            if !code.iter().all(u8::is_ascii_digit) {
                return None;
            }
            (pw, code)
        }
    };
    if code.is_empty() {
        return None;
    }
    Some((
        Zeroizing::new(pw.to_vec()),
        Zeroizing::new(String::from_utf8_lossy(code).into_owned()),
    ))
}

/// What starts a User-Password sent by an OpenVPN client with `static-challenge`:
/// `SCRV1:` base64(password) `:` base64(response), the response being the code
/// (OpenVPN's management-notes, "Challenge/Response Protocol").
pub const STATIC_CHALLENGE_PREFIX: &[u8] = b"SCRV1:";

/// An OpenVPN static-challenge answer ([`read_static_challenge`]): the password and the
/// response apart, both wiped when dropped.
pub struct StaticChallenge {
    pub password: Zeroizing<Vec<u8>>,
    pub response: Zeroizing<String>,
}

/// Why a User-Password that starts with [`STATIC_CHALLENGE_PREFIX`] is not a static-challenge
/// answer. Never a reason to read it as a plain password instead: a client that sent `SCRV1:`
/// meant the form, and a guess at what else it meant could be wrong in the user's disfavour
/// or an attacker's favour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticChallengeError {
    /// No `:` between the two fields.
    NoSeparator,
    /// A field is not standard, canonically padded base64 (`field`: "password" or
    /// "response").
    Base64 { field: &'static str },
    /// A field decodes to bytes that are not UTF-8 text, or hold a NUL (OpenVPN's client
    /// sends C strings, so neither comes from it).
    NotText { field: &'static str },
}

impl std::fmt::Display for StaticChallengeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StaticChallengeError::NoSeparator => {
                f.write_str("SCRV1 password without the ':' between password and response")
            }
            StaticChallengeError::Base64 { field } => {
                write!(f, "SCRV1 {field} field is not standard base64")
            }
            StaticChallengeError::NotText { field } => {
                write!(f, "SCRV1 {field} field is not UTF-8 text without NUL")
            }
        }
    }
}

impl std::error::Error for StaticChallengeError {}

/// Reads an append-mode User-Password as OpenVPN's static-challenge answer when it starts
/// with exactly `SCRV1:` (case matters): `Ok(None)` for any other, which is password + code
/// as [`split_appended`] reads it. A password of the user's own that starts with `SCRV1:`
/// therefore cannot be sent as a plain append-mode password (it is refused, or read as the
/// form it happens to match); through OpenVPN's static-challenge it travels base64-encoded
/// and works like any.
pub fn read_static_challenge(
    whole: &[u8],
) -> Result<Option<StaticChallenge>, StaticChallengeError> {
    let Some(rest) = whole.strip_prefix(STATIC_CHALLENGE_PREFIX) else {
        return Ok(None);
    };
    let at = rest
        .iter()
        .position(|&b| b == b':')
        .ok_or(StaticChallengeError::NoSeparator)?;
    let (password, response) = (&rest[..at], &rest[at + 1..]);
    let password = decode_field(password, "password")?;
    let mut response = decode_field(response, "response")?;
    // The buffer moves into the String, no copy; `decode_field` checked it is UTF-8.
    let response = String::from_utf8(std::mem::take(&mut *response)).map_err(|e| {
        drop(Zeroizing::new(e.into_bytes()));
        StaticChallengeError::NotText { field: "response" }
    })?;
    Ok(Some(StaticChallenge {
        password,
        response: Zeroizing::new(response),
    }))
}

/// One base64 field of a static-challenge answer, decoded into a buffer wiped on drop:
/// standard alphabet, canonical padding and trailing bits, padding only at the end (the
/// decoder would take concatenated padded blocks), UTF-8 without NUL.
fn decode_field(
    field: &[u8],
    name: &'static str,
) -> Result<Zeroizing<Vec<u8>>, StaticChallengeError> {
    let b64 = data_encoding::BASE64;
    let bad = StaticChallengeError::Base64 { field: name };
    let pad_from = field.len().saturating_sub(2);
    if field
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'=' && i < pad_from)
    {
        return Err(bad);
    }
    let len = b64.decode_len(field.len()).map_err(|_| bad)?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    let n = b64.decode_mut(field, &mut out).map_err(|_| bad)?;
    out.truncate(n);
    if out.contains(&0) || std::str::from_utf8(&out).is_err() {
        return Err(StaticChallengeError::NotText { field: name });
    }
    Ok(out)
}

/// Codes as people type them: spaces and dashes between groups are ignored.
pub fn normalize_code(code: &str) -> Zeroizing<String> {
    Zeroizing::new(
        code.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '\t'))
            .collect(),
    )
}

/// Argon2id cost of a one-time code's hash: 8 digits are only 10^8 possibilities, so what
/// matters is what one guess costs someone holding a copy of the store. One SHA-256 made that
/// seconds on a laptop. 4 MiB and two passes (`m_cost` in KiB, one lane): measured at 8.4 ms
/// per hash with a release build on the 2-core build machine (11.4 ms in the tests' debug
/// build, where the argon2 crate is still optimised; `otc_hash_cost` prints it with
/// `--nocapture`), so all 10^8 codes under one salt cost about 10 CPU-days, per code, each
/// code having its own salt, and 4 MiB per guess blunts GPUs. Changing these makes a new
/// scheme ([`OtcHash`]); stored hashes keep the scheme they were made with.
pub const OTC_ARGON2_M_KIB: u32 = 4 * 1024;
pub const OTC_ARGON2_T: u32 = 2;

/// At most this many usable one-time codes are tried for one typed code (a backup set is 10
/// by default, at most 50, plus temporary-access codes): a wrong 8-digit code costs one
/// Argon2id hash per usable code (about 85 ms for a default set of 10, inside the login's
/// transaction), and the lockout stops a guesser after `max_failures` of them. The newest
/// are tried first; older ones beyond the bound do not verify until newer ones are used up.
pub const MAX_OTC_TRIED: usize = 64;

/// The hash of a one-time code under `scheme`; `None` only if Argon2 refuses its fixed
/// parameters (a bug), which the callers treat as no match / a failed issue.
pub fn hash_code(scheme: OtcHash, salt: &[u8; 16], code: &str) -> Option<Zeroizing<[u8; 32]>> {
    let mut out = Zeroizing::new([0u8; 32]);
    match scheme {
        OtcHash::Sha256V1 => {
            let mut h = Sha256::new();
            h.update(b"mfa-otc-v1");
            h.update(salt);
            h.update(code.as_bytes());
            out.copy_from_slice(&h.finalize());
        }
        OtcHash::Argon2idV2 => {
            let params = argon2::Params::new(OTC_ARGON2_M_KIB, OTC_ARGON2_T, 1, Some(32)).ok()?;
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(code.as_bytes(), salt, out.as_mut_slice())
                .ok()?;
        }
    }
    Some(out)
}

/// What is stored for a one-time code: a fresh salt and the slow hash, never the code.
pub fn store_one_time_code(
    kind: OtcKind,
    code: &str,
    now: i64,
    expires: Option<i64>,
    uses: u32,
) -> Result<OneTimeCode, CoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)?;
    let scheme = OtcHash::Argon2idV2;
    let hash = *hash_code(scheme, &salt, &normalize_code(code)).ok_or(CoreError::Bug(
        "Argon2id refused the one-time code parameters",
    ))?;
    Ok(OneTimeCode {
        kind,
        scheme,
        salt,
        hash,
        created: now,
        expires,
        uses_left: uses,
    })
}

/// A new one-time code: the printable code (shown once) and what is stored.
pub fn new_one_time_code(
    kind: OtcKind,
    now: i64,
    expires: Option<i64>,
    uses: u32,
) -> Result<(Zeroizing<String>, OneTimeCode), CoreError> {
    let mut code = Zeroizing::new(String::with_capacity(OTC_DIGITS));
    while code.len() < OTC_DIGITS {
        let mut b = [0u8; 1];
        getrandom::fill(&mut b)?;
        // Rejection sampling keeps the digits uniform.
        if b[0] < 250 {
            code.push(char::from(b'0' + b[0] % 10));
        }
    }
    let stored = store_one_time_code(kind, &code, now, expires, uses)?;
    Ok((code, stored))
}

/// Checks `code` for the user and updates the record: the replay marker on success, the
/// failure counter and lock on failure. `secret` is the user's opened key (`None`: not
/// enrolled, so only a one-time code can match); `source` the client address the code came
/// from, where known. Only the login path calls this, after the policy said a code is
/// needed; that is where a locked user or address was already refused.
pub fn apply_code(
    rec: &mut UserRecord,
    secret: Option<&TotpSecret>,
    code: &str,
    source: Option<&str>,
    now: i64,
    cfg: &Config,
) -> Decision {
    let code = normalize_code(code);
    if code.is_empty() {
        return Decision::deny(Reason::MissingCode);
    }
    let totp = match secret {
        Some(secret) => check(
            secret,
            &rec.params,
            cfg.totp.skew,
            &code,
            now,
            rec.last_step,
        ),
        None => CodeMatch::NoMatch,
    };
    let decision = match totp {
        CodeMatch::Fresh(step) => {
            rec.last_step = Some(step);
            Decision::allow(Reason::ValidCode)
        }
        CodeMatch::Replayed => Decision::deny(Reason::ReplayedCode),
        CodeMatch::NoMatch => match use_one_time_code(rec, &code, now) {
            Some(OtcKind::Backup) => Decision::allow(Reason::BackupCode),
            Some(OtcKind::Temporary) => Decision::allow(Reason::TemporaryAccess),
            None => Decision::deny(Reason::WrongCode),
        },
    };
    match decision.reason {
        Reason::ValidCode | Reason::BackupCode | Reason::TemporaryAccess => {
            rec.failures = 0;
            rec.first_failure = None;
            rec.locked_until = None;
            if let Some(src) = source {
                rec.sources.retain(|s| s.source != src);
            }
            decision
        }
        // A replayed code was right once: it is no guess, and counting it would lock out a
        // user whose client submitted twice (or two logins racing with one code).
        Reason::ReplayedCode => decision,
        _ => {
            let user_lock = count_failure(rec, now, cfg);
            let source_lock = source.and_then(|s| count_source_failure(rec, s, now, cfg));
            user_lock.or(source_lock).unwrap_or(decision)
        }
    }
}

/// Addresses whose counters a record keeps at most; the oldest unlocked ones go first.
const MAX_SOURCES: usize = 16;

/// Counts a wrong code from `source`; returns the lock decision when this failure locks
/// that address out for this user. An address can so add at most
/// `max_failures_per_source` failures to the user's count per lock period: one place alone
/// cannot lock the user out everywhere (several can, which the user count is for).
fn count_source_failure(
    rec: &mut UserRecord,
    source: &str,
    now: i64,
    cfg: &Config,
) -> Option<Decision> {
    let l = &cfg.lockout;
    if l.max_failures_per_source == 0 {
        return None;
    }
    let window = l.window.secs_i64();
    // Forget what no longer counts: counters past the window, locks past their time.
    rec.sources
        .retain(|s| s.locked_until.is_some_and(|u| now < u) || now - s.first_failure < window);
    let at = match rec.sources.iter().position(|s| s.source == source) {
        Some(i) => i,
        None => {
            if rec.sources.len() >= MAX_SOURCES
                && let Some(oldest) = rec
                    .sources
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.locked_until.is_none())
                    .min_by_key(|(_, s)| s.first_failure)
                    .map(|(i, _)| i)
            {
                rec.sources.remove(oldest);
            }
            rec.sources.push(mfa_model::SourceFailures {
                source: source.to_string(),
                failures: 0,
                first_failure: now,
                locked_until: None,
            });
            rec.sources.len() - 1
        }
    };
    let s = rec.sources.get_mut(at)?;
    s.failures = s.failures.saturating_add(1);
    if s.failures < l.max_failures_per_source {
        return None;
    }
    let until = now.saturating_add(l.lock_for.secs_i64());
    s.locked_until = Some(until);
    s.failures = 0;
    s.first_failure = now;
    let mut d = Decision::deny(Reason::SourceLocked { until });
    d.message = Some(format!(
        "Wrong verification code. {}",
        user_message(&d.reason)
    ));
    Some(d)
}

/// Compares against the usable one-time codes (at most [`MAX_OTC_TRIED`], newest first, each
/// hashed with its own salt and compared in constant time), and spends the one that matched.
/// Only a code of the one-time shape is hashed at all. Backup codes count only for a user
/// with a key: they are a second factor of that key, not a way in without one (a set minted
/// before an unlink must not log in after it); a temporary-access code is the way in for a
/// user without a key, which is what it is for.
fn use_one_time_code(rec: &mut UserRecord, code: &str, now: i64) -> Option<OtcKind> {
    if code.len() != OTC_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let backup_counts = rec.enrolled();
    let mut hit: Option<usize> = None;
    let usable = rec
        .codes
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, c)| c.usable(now) && (backup_counts || c.kind != OtcKind::Backup))
        .take(MAX_OTC_TRIED);
    for (i, c) in usable {
        let Some(h) = hash_code(c.scheme, &c.salt, code) else {
            continue;
        };
        let same: bool = h.as_slice().ct_eq(c.hash.as_slice()).into();
        if same {
            hit = Some(i);
        }
    }
    let i = hit?;
    let c = rec.codes.get_mut(i)?;
    c.uses_left -= 1;
    let kind = c.kind;
    rec.codes.retain(|c| c.uses_left > 0);
    Some(kind)
}

/// Counts a wrong code; returns the lock decision when this failure locks the user.
fn count_failure(rec: &mut UserRecord, now: i64, cfg: &Config) -> Option<Decision> {
    let l = &cfg.lockout;
    let window = l.window.secs_i64();
    match rec.first_failure {
        Some(first) if now - first < window => rec.failures = rec.failures.saturating_add(1),
        _ => {
            rec.failures = 1;
            rec.first_failure = Some(now);
        }
    }
    if rec.failures >= l.max_failures {
        let until = now.saturating_add(l.lock_for.secs_i64());
        rec.locked_until = Some(until);
        rec.failures = 0;
        rec.first_failure = None;
        let mut d = Decision::deny(Reason::Locked { until });
        d.message = Some(format!(
            "Wrong verification code. {}",
            user_message(&d.reason)
        ));
        return Some(d);
    }
    None
}

/// Login statistics for the report.
pub fn note_outcome(rec: &mut UserRecord, d: &Decision, client: &ClientAddr, now: i64) {
    if d.is_allowed() {
        rec.login_count = rec.login_count.saturating_add(1);
        rec.last_login = Some(now);
    }
    rec.last_ip = client.ip().map(|ip| ip.to_string());
    rec.last_outcome = Some(format!("{}:{}", d.outcome.word(), d.reason.code()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login::{Ask, Attempt, Request, TxEnv, attempt_in_tx};
    use crate::secret::{Sealer, TotpSecret, Unsealed};
    use crate::totp::code_at_step;
    use mfa_model::UserName;

    const NOW: i64 = 1_800_000_015;

    fn setup() -> (Config, UserRecord) {
        let c = Config::default();
        let name = UserName::parse("alice").unwrap();
        let mut r = UserRecord::new(&name, c.totp.params(), NOW);
        let s = TotpSecret::generate().unwrap();
        r.secret = Some(Unsealed.seal(&name, &s).unwrap());
        (c, r)
    }

    fn code(r: &UserRecord, t: i64) -> Zeroizing<String> {
        let s = Unsealed
            .unseal(&r.name, r.secret.as_ref().unwrap())
            .unwrap();
        code_at_step(&s, &r.params, t / 30)
    }

    /// A code typed at `now`, through the one login path (the policy, then the code).
    fn login(r: &mut UserRecord, code: &str, now: i64, c: &Config) -> Decision {
        login_from(r, "192.0.2.1", code, now, c)
    }

    #[test]
    fn accepted_once_then_replay_refused() {
        let (c, mut r) = setup();
        let now_code = code(&r, NOW);
        assert_eq!(login(&mut r, &now_code, NOW, &c).reason, Reason::ValidCode);
        assert_eq!(
            login(&mut r, &now_code, NOW, &c).reason,
            Reason::ReplayedCode
        );
        // An earlier step than the accepted one is a replay too.
        let prev = code(&r, NOW - 30);
        assert_eq!(login(&mut r, &prev, NOW, &c).reason, Reason::ReplayedCode);
        // The next step is fresh.
        let next = code(&r, NOW + 30);
        assert_eq!(login(&mut r, &next, NOW, &c).reason, Reason::ValidCode);
    }

    #[test]
    fn spaces_are_ignored() {
        let (c, mut r) = setup();
        let cd = code(&r, NOW);
        let spaced = format!("{} {}", &cd[..3], &cd[3..]);
        assert_eq!(login(&mut r, &spaced, NOW, &c).reason, Reason::ValidCode);
    }

    #[test]
    fn lockout_after_max_failures_and_reset_by_window() {
        // The user's own counter, alone: no per-address lock in between.
        let (mut c, mut r) = setup();
        c.lockout.max_failures_per_source = 0;
        for i in 0..4 {
            assert_eq!(
                login(&mut r, "000000", NOW + i, &c).reason,
                Reason::WrongCode
            );
        }
        let locked = login(&mut r, "000000", NOW + 4, &c);
        assert_eq!(
            locked.reason,
            Reason::Locked {
                until: NOW + 4 + 900
            }
        );
        // Even the right code is refused while locked.
        let good = code(&r, NOW + 10);
        assert!(login(&mut r, &good, NOW + 10, &c).is_locked());
        // After the lock the right code works.
        let later = NOW + 4 + 900;
        let good = code(&r, later);
        assert_eq!(login(&mut r, &good, later, &c).reason, Reason::ValidCode);
        // Failures spread wider than the window never lock.
        for i in 0..10 {
            let t = later + 10 + i * 301;
            assert_eq!(login(&mut r, "000000", t, &c).reason, Reason::WrongCode);
        }
    }

    /// A code typed at `now` from `ip`, through the one login path.
    fn login_from(r: &mut UserRecord, ip: &str, code: &str, now: i64, c: &Config) -> Decision {
        let ctx = TxEnv {
            cfg: c,
            params: r.params,
            sealer: &Unsealed,
        };
        let a = Attempt {
            req: Request {
                user: r.name.clone(),
                client: ClientAddr::Remote(ip.parse().ok()),
                service: "test".into(),
                now,
                admitted: true,
            },
            code: Some(Zeroizing::new(code.to_string())),
            groups: Vec::new(),
        };
        let mut slot = Some(r.clone());
        let (d, _) = attempt_in_tx(&mut slot, &a, &ctx, Ask::Policy).unwrap();
        *r = slot.unwrap();
        d
    }

    #[test]
    fn one_address_is_locked_out_before_the_user() {
        let (c, mut r) = setup();
        let (a, b) = ("198.51.100.7", "198.51.100.8");
        // Five wrong codes from one address: the third locks that address, the rest are
        // refused without being counted against the user.
        let got: Vec<Reason> = (0..5)
            .map(|i| login_from(&mut r, a, "000000", NOW + i, &c).reason)
            .collect();
        assert_eq!(&got[..2], [Reason::WrongCode, Reason::WrongCode]);
        assert!(matches!(got[2], Reason::SourceLocked { .. }), "{got:?}");
        assert!(matches!(got[3], Reason::SourceLocked { .. }), "{got:?}");
        assert_eq!(r.failures, 3);
        assert!(r.locked(NOW + 5).is_none(), "the user is not locked");
        // The right code from another address works, and clears that address only.
        let good = code(&r, NOW + 5);
        assert_eq!(
            login_from(&mut r, b, &good, NOW + 5, &c).reason,
            Reason::ValidCode
        );
        assert!(r.source_locked(a, NOW + 6).is_some());
        // After lock_for, the first address may try again.
        let later = NOW + 2 + 900;
        let good = code(&r, later);
        assert_eq!(
            login_from(&mut r, a, &good, later, &c).reason,
            Reason::ValidCode
        );
        assert!(r.sources.is_empty());
    }

    #[test]
    fn many_addresses_still_lock_the_user() {
        let (c, mut r) = setup();
        for i in 0..4 {
            let ip = format!("198.51.100.{i}");
            assert_eq!(
                login_from(&mut r, &ip, "000000", NOW + i, &c).reason,
                Reason::WrongCode
            );
        }
        assert!(matches!(
            login_from(&mut r, "198.51.100.9", "000000", NOW + 5, &c).reason,
            Reason::Locked { .. }
        ));
    }

    #[test]
    fn one_time_codes_work_once_and_expire() {
        let (c, mut r) = setup();
        let (backup, stored) = new_one_time_code(OtcKind::Backup, NOW, None, 1).unwrap();
        r.codes.push(stored);
        let (temp, stored) = new_one_time_code(OtcKind::Temporary, NOW, Some(NOW + 60), 2).unwrap();
        r.codes.push(stored);
        assert_eq!(backup.len(), 8);
        assert_eq!(login(&mut r, &backup, NOW, &c).reason, Reason::BackupCode);
        assert_eq!(login(&mut r, &backup, NOW, &c).reason, Reason::WrongCode);
        let dashed = format!("{}-{}", &temp[..4], &temp[4..]);
        assert_eq!(
            login(&mut r, &dashed, NOW, &c).reason,
            Reason::TemporaryAccess
        );
        assert_eq!(
            login(&mut r, &temp, NOW + 60, &c).reason,
            Reason::WrongCode,
            "expired"
        );
        assert_eq!(
            login(&mut r, &temp, NOW + 59, &c).reason,
            Reason::TemporaryAccess
        );
        assert!(r.codes.is_empty());
    }

    #[test]
    fn codes_hashed_before_argon2_keep_verifying() {
        let (c, mut r) = setup();
        // A code as stored before schema 4: one SHA-256.
        let salt = [7u8; 16];
        let hash = *hash_code(OtcHash::Sha256V1, &salt, "12345678").unwrap();
        r.codes.push(OneTimeCode {
            kind: OtcKind::Backup,
            scheme: OtcHash::Sha256V1,
            salt,
            hash,
            created: NOW,
            expires: None,
            uses_left: 1,
        });
        let (fresh, stored) = new_one_time_code(OtcKind::Backup, NOW, None, 1).unwrap();
        assert_eq!(stored.scheme, OtcHash::Argon2idV2);
        assert_ne!(
            stored.hash,
            *hash_code(OtcHash::Sha256V1, &stored.salt, &fresh).unwrap(),
            "new codes are not SHA-256"
        );
        r.codes.push(stored);
        assert_eq!(
            login(&mut r, "1234 5678", NOW, &c).reason,
            Reason::BackupCode
        );
        assert_eq!(login(&mut r, &fresh, NOW, &c).reason, Reason::BackupCode);
        assert!(r.codes.is_empty());
    }

    #[test]
    fn only_the_newest_usable_codes_are_tried() {
        let (c, mut r) = setup();
        let (oldest, stored) = new_one_time_code(OtcKind::Temporary, NOW, None, 1).unwrap();
        r.codes.push(stored);
        let salt = [1u8; 16];
        for _ in 0..MAX_OTC_TRIED {
            // Cheap stand-ins for a full set (never match an 8-digit code's Argon2 hash).
            r.codes.push(OneTimeCode {
                kind: OtcKind::Backup,
                scheme: OtcHash::Sha256V1,
                salt,
                hash: [0; 32],
                created: NOW,
                expires: None,
                uses_left: 1,
            });
        }
        assert_eq!(login(&mut r, &oldest, NOW, &c).reason, Reason::WrongCode);
    }

    /// Not a timed assertion: prints what one Argon2id hash of a one-time code costs here
    /// (`cargo test --release -p mfa-core otc_hash_cost -- --nocapture`).
    #[test]
    fn otc_hash_cost() {
        let salt = [3u8; 16];
        let n = 10;
        let t = std::time::Instant::now();
        for i in 0..n {
            assert!(hash_code(OtcHash::Argon2idV2, &salt, &format!("{i:08}")).is_some());
        }
        let per = t.elapsed() / n;
        println!("Argon2id m={OTC_ARGON2_M_KIB} KiB t={OTC_ARGON2_T}: {per:?} per hash");
    }

    fn split(w: &str, d: Option<&str>) -> Option<(String, String)> {
        split_appended(w.as_bytes(), 6, d)
            .map(|(p, c)| (String::from_utf8(p.to_vec()).unwrap(), c.to_string()))
    }

    #[test]
    fn append_split() {
        let s = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        assert_eq!(split("hunter2123456", None), s("hunter2", "123456"));
        assert_eq!(split("123456", None), s("", "123456"));
        assert_eq!(split("12345", None), None);
        assert_eq!(split("hunter21234x6", None), None);
        assert_eq!(split("pa,ss,123456", Some(",")), s("pa,ss", "123456"));
        assert_eq!(split("pass::12345678", Some("::")), s("pass", "12345678"));
        assert_eq!(split("pass,", Some(",")), None);
        assert_eq!(split("pass123456", Some(",")), None);
        assert_eq!(split("", Some(",")), None);
    }

    fn scrv1(w: &[u8]) -> Result<Option<(String, String)>, StaticChallengeError> {
        read_static_challenge(w).map(|o| {
            o.map(|s| {
                (
                    String::from_utf8(s.password.to_vec()).unwrap(),
                    s.response.to_string(),
                )
            })
        })
    }

    #[test]
    fn static_challenge_is_read_strictly() {
        let ok = |p: &str, r: &str| Ok(Some((p.to_string(), r.to_string())));
        // The example of OpenVPN's management-notes: "bar" and 8675309.
        assert_eq!(scrv1(b"SCRV1:YmFy:ODY3NTMwOQ=="), ok("bar", "8675309"));
        // Either field may be empty.
        assert_eq!(scrv1(b"SCRV1::MTIzNDU2"), ok("", "123456"));
        assert_eq!(scrv1(b"SCRV1:YmFy:"), ok("bar", ""));
        assert_eq!(scrv1(b"SCRV1::"), ok("", ""));
        // A password with ':' and non-ASCII text in it, and one that itself starts with
        // `SCRV1:`: base64 carries them.
        assert_eq!(
            scrv1(b"SCRV1:YTpiOmPDqQ==:MTIzNDU2"),
            ok("a:b:c\u{e9}", "123456")
        );
        assert_eq!(
            scrv1(b"SCRV1:U0NSVjE6eDp5:MTIzNDU2"),
            ok("SCRV1:x:y", "123456")
        );

        // Anything else is plain password + code, never this form.
        for plain in [
            &b"hunter2123456"[..],
            b"scrv1:YmFy:MTIzNDU2",
            b"SCRV1YmFy:MTIzNDU2",
            b" SCRV1:YmFy:MTIzNDU2",
            b"xSCRV1:YmFy:MTIzNDU2",
            b"SCRV",
            b"",
        ] {
            assert!(
                matches!(read_static_challenge(plain), Ok(None)),
                "{plain:?}"
            );
        }

        // Malformed after the prefix: refused, whatever else it could be read as.
        use StaticChallengeError::*;
        let pw = Base64 { field: "password" };
        let resp = Base64 { field: "response" };
        for (bad, why) in [
            (&b"SCRV1:"[..], NoSeparator),
            (b"SCRV1:YmFy", NoSeparator),
            (b"SCRV1:hunter2123456", NoSeparator),
            (b"SCRV1:YmFy:MTIz:NDU2", resp),
            (b"SCRV1:YmF:MTIzNDU2", pw),
            (b"SCRV1:YmFy=:MTIzNDU2", pw),
            (b"SCRV1:YmE:MTIzNDU2", pw),
            (b"SCRV1:YmFy:MTIzNDU2=", resp),
            (b"SCRV1:YmFy:MTIzNDU", resp),
            // Non-canonical trailing bits ("YR==" is "a" with a stray bit).
            (b"SCRV1:YR==:MTIzNDU2", pw),
            // Concatenated padded blocks, whitespace, URL-safe alphabet, no padding.
            (b"SCRV1:YQ==YQ==:MTIzNDU2", pw),
            (b"SCRV1:YmFy:MTIz NDU2", resp),
            (b"SCRV1:YmFy\n:MTIzNDU2", pw),
            (b"SCRV1:-_-_:MTIzNDU2", pw),
            (b"SCRV1:YQ:MTIzNDU2", pw),
            // Decodes, but not text: 0xff, a lone continuation byte, a NUL.
            (b"SCRV1:/w==:MTIzNDU2", NotText { field: "password" }),
            (b"SCRV1:YmFy:gA==", NotText { field: "response" }),
            (b"SCRV1:YQBi:MTIzNDU2", NotText { field: "password" }),
            (b"SCRV1:YmFy:MTIzADQ1Ng==", NotText { field: "response" }),
        ] {
            assert_eq!(
                read_static_challenge(bad).err(),
                Some(why),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            NoSeparator.to_string(),
            "SCRV1 password without the ':' between password and response"
        );
    }

    /// A seeded stand-in for a fuzz run: random and mutated inputs never panic, and what is
    /// read is the one canonical form of what was sent (`SCRV1:` + base64 + `:` + base64), so
    /// no two inputs read the same and nothing loose gets through.
    #[test]
    fn static_challenge_reads_only_its_canonical_form() {
        let b64 = data_encoding::BASE64;
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"SCRV1:=+/AZaz09YmFyMTIz\x00\xff\xc3\xa9 ";
        for i in 0..50_000 {
            let mut input = STATIC_CHALLENGE_PREFIX.to_vec();
            if i % 2 == 0 {
                // Well-formed, then perhaps one byte changed.
                let pw: String = (0..next() % 12)
                    .map(|_| char::from_u32(0x20 + (next() % 0x300) as u32).unwrap_or('x'))
                    .collect();
                let code = format!("{:06}", next() % 1_000_000);
                input.extend_from_slice(b64.encode(pw.as_bytes()).as_bytes());
                input.push(b':');
                input.extend_from_slice(b64.encode(code.as_bytes()).as_bytes());
                if i % 4 == 0 {
                    let at = (next() as usize) % input.len();
                    input[at] = alphabet[(next() as usize) % alphabet.len()];
                } else {
                    let read = read_static_challenge(&input).unwrap().unwrap();
                    assert_eq!(&read.password[..], pw.as_bytes());
                    assert_eq!(&read.response[..], code);
                }
            } else {
                for _ in 0..next() % 24 {
                    input.push(alphabet[(next() as usize) % alphabet.len()]);
                }
            }
            if let Ok(Some(read)) = read_static_challenge(&input) {
                let mut again = STATIC_CHALLENGE_PREFIX.to_vec();
                again.extend_from_slice(b64.encode(&read.password).as_bytes());
                again.push(b':');
                again.extend_from_slice(b64.encode(read.response.as_bytes()).as_bytes());
                assert_eq!(again, input, "{}", String::from_utf8_lossy(&input));
                assert!(std::str::from_utf8(&read.password).is_ok());
                assert!(!read.password.contains(&0) && !read.response.contains('\0'));
            }
        }
    }

    #[test]
    fn what_a_code_looks_like() {
        let p = Config::default().totp.params();
        assert!(looks_like_code("123456", &p));
        assert!(looks_like_code("123 456", &p));
        assert!(looks_like_code("1234-5678", &p), "a one-time code");
        assert!(!looks_like_code("1234567", &p));
        assert!(!looks_like_code("hunter2", &p));
        assert!(!looks_like_code("", &p));
        // Where the length is not known here: any a key may have.
        for c in ["123456", "123 4567", "1234-5678"] {
            assert!(looks_like_any_code(c), "{c}");
        }
        for c in ["12345", "123456789", "hunter2", "12345a", ""] {
            assert!(!looks_like_any_code(c), "{c}");
        }
    }
}
