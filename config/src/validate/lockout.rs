//! `[lockout]`: wrong codes, per user and per address.

use super::{Problems, k};
use crate::Config;

/// `[lockout]`.
pub(super) fn lockout(cfg: &Config, v: &mut Problems<'_>) {
    let l = &cfg.lockout;
    if l.max_failures == 0 {
        v.bad(
            vec![k("lockout"), k("max_failures")],
            "must be at least 1".into(),
        );
    }
    if l.window.as_secs() == 0 {
        v.bad(
            vec![k("lockout"), k("window")],
            "must be longer than 0s".into(),
        );
    }
    if l.lock_for.as_secs() == 0 {
        v.bad(
            vec![k("lockout"), k("lock_for")],
            "must be longer than 0s".into(),
        );
    }
    if l.max_failures_per_source >= l.max_failures && l.max_failures_per_source != 0 {
        v.bad(
            vec![k("lockout"), k("max_failures_per_source")],
            format!(
                "{} would lock the user (max_failures = {}) before the address; use a smaller number, or 0 to turn it off",
                l.max_failures_per_source, l.max_failures
            ),
        );
    }
}
