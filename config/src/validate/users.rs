//! `[users]`: the domains a name may carry.

use super::{Problems, k};
use crate::{Config, Seg};

/// `[users] domains`.
pub(super) fn users(cfg: &Config, v: &mut Problems<'_>) {
    let mut seen = std::collections::HashSet::new();
    for (i, d) in cfg.users.domains.iter().enumerate() {
        let at = vec![k("users"), k("domains"), Seg::Index(i)];
        if d.is_empty()
            || d.len() > 255
            || !d.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c))
        {
            v.bad(
                at,
                format!(
                    "{d:?} is not a domain name (letters, digits, '-', '_' and '.', as in CONTOSO or contoso.com)"
                ),
            );
        } else if !seen.insert(d.to_lowercase()) {
            v.bad(
                at,
                format!("{d:?} is listed twice (domains match case-insensitively)"),
            );
        }
    }
}
