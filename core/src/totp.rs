//! TOTP codes (RFC 6238 over RFC 4226), through totp-rs; the step search is ours because
//! replay protection needs every matching step in the window, not the first.

pub use mfa_model::{Algorithm, TotpParams};
use subtle::ConstantTimeEq;
use totp_rs::Builder;
use zeroize::Zeroizing;

use crate::secret::TotpSecret;

fn algorithm(a: Algorithm) -> totp_rs::Algorithm {
    match a {
        Algorithm::SHA1 => totp_rs::Algorithm::SHA1,
        Algorithm::SHA256 => totp_rs::Algorithm::SHA256,
        Algorithm::SHA512 => totp_rs::Algorithm::SHA512,
    }
}

/// The code for time step `step`.
pub fn code_at_step(secret: &TotpSecret, params: &TotpParams, step: i64) -> Zeroizing<String> {
    // build_noncompliant: 80-bit imported keys are valid for us (see secret.rs).
    let totp = Builder::new()
        .with_algorithm(algorithm(params.algorithm))
        .with_digits(params.digits)
        .with_step_duration(params.period)
        .with_skew(0)
        .with_secret(secret.bytes().to_vec())
        .build_noncompliant();
    let time = u64::try_from(step)
        .unwrap_or(0)
        .saturating_mul(params.period);
    Zeroizing::new(totp.generate(time).to_string())
}

/// What a presented code matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMatch {
    /// The newest matching step, which is after `last_step`.
    Fresh(i64),
    /// It matched, but only steps at or before the last accepted one (RFC 6238 §5.2).
    Replayed,
    NoMatch,
}

/// Checks `code` against the steps `now ± skew`. Every step is computed and compared in
/// constant time, whatever matches, so timing says nothing about which step or digit was
/// right.
pub fn check(
    secret: &TotpSecret,
    params: &TotpParams,
    skew: u8,
    code: &str,
    now: i64,
    last_step: Option<i64>,
) -> CodeMatch {
    let Some(current) = params.step_at(now) else {
        return CodeMatch::NoMatch;
    };
    if code.len() != usize::from(params.digits) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return CodeMatch::NoMatch;
    }
    let mut fresh: Option<i64> = None;
    let mut any = false;
    let skew = i64::from(skew);
    for step in (current - skew).max(0)..=current + skew {
        let expected = code_at_step(secret, params, step);
        let hit: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        any |= hit;
        if hit && last_step.is_none_or(|l| step > l) {
            fresh = Some(step);
        }
    }
    match (fresh, any) {
        (Some(s), _) => CodeMatch::Fresh(s),
        (None, true) => CodeMatch::Replayed,
        (None, false) => CodeMatch::NoMatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: Algorithm) -> TotpParams {
        TotpParams {
            algorithm: a,
            digits: 8,
            period: 30,
        }
    }

    /// RFC 6238 Appendix B.
    #[test]
    fn rfc6238_vectors() {
        let s1 = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let s256 = TotpSecret::from_bytes(b"12345678901234567890123456789012").unwrap();
        let s512 = TotpSecret::from_bytes(
            b"1234567890123456789012345678901234567890123456789012345678901234",
        )
        .unwrap();
        let table: [(i64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (t, c1, c256, c512) in table {
            let step = t / 30;
            assert_eq!(
                code_at_step(&s1, &p(Algorithm::SHA1), step).as_str(),
                c1,
                "SHA1 {t}"
            );
            assert_eq!(
                code_at_step(&s256, &p(Algorithm::SHA256), step).as_str(),
                c256,
                "SHA256 {t}"
            );
            assert_eq!(
                code_at_step(&s512, &p(Algorithm::SHA512), step).as_str(),
                c512,
                "SHA512 {t}"
            );
        }
    }

    #[test]
    fn window_and_replay() {
        let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let params = TotpParams {
            algorithm: Algorithm::SHA1,
            digits: 6,
            period: 30,
        };
        let now = 1_700_000_015;
        let step = now / 30;
        for d in -1..=1 {
            let c = code_at_step(&s, &params, step + d);
            assert_eq!(
                check(&s, &params, 1, &c, now, None),
                CodeMatch::Fresh(step + d)
            );
            assert_eq!(
                check(&s, &params, 1, &c, now, Some(step + d)),
                CodeMatch::Replayed
            );
            assert_eq!(
                check(&s, &params, 1, &c, now, Some(step + 5)),
                CodeMatch::Replayed
            );
        }
        for d in [-3, -2, 2, 3] {
            let c = code_at_step(&s, &params, step + d);
            assert_eq!(
                check(&s, &params, 1, &c, now, None),
                CodeMatch::NoMatch,
                "{d}"
            );
        }
        assert_eq!(
            check(&s, &params, 1, "12345", now, None),
            CodeMatch::NoMatch
        );
        assert_eq!(
            check(&s, &params, 1, "+12345", now, None),
            CodeMatch::NoMatch
        );
        assert_eq!(check(&s, &params, 1, "", now, None), CodeMatch::NoMatch);
    }
}
