//! `[totp]`: what the authenticator apps are told (issuer, digits, period) and the window.

use super::{Problems, k};
use crate::Config;

/// `[totp]`.
pub(super) fn totp(cfg: &Config, v: &mut Problems<'_>) {
    let t = &cfg.totp;
    if t.issuer.trim().is_empty() || t.issuer.contains(':') || t.issuer.len() > 64 {
        v.bad(
            vec![k("totp"), k("issuer")],
            "must be 1 to 64 characters without ':' (apps show it as \"Issuer: user\")".into(),
        );
    }
    if !mfa_model::DIGITS.contains(&t.digits) {
        v.bad(
            vec![k("totp"), k("digits")],
            format!("{} is not 6, 7 or 8", t.digits),
        );
    }
    if !mfa_model::PERIODS.contains(&t.period) {
        v.bad(
            vec![k("totp"), k("period")],
            format!(
                "{} is outside 10..300 seconds (authenticator apps use 30)",
                t.period
            ),
        );
    }
    if t.skew > 10 {
        v.bad(
            vec![k("totp"), k("skew")],
            format!("{} steps either side is too many (at most 10)", t.skew),
        );
    }
}
