//! `[policy]`: exemptions, trusted networks, the unlocks of the portal, the grace period.

use super::{Problems, k};
use crate::{Config, Seg, values};

/// `[policy]`, but `remember` (see [`remember`]).
pub(super) fn policy(cfg: &Config, v: &mut Problems<'_>) {
    let p = &cfg.policy;
    // Compared with the canonical name of the user logging in, so each entry must have one:
    // `CONTOSO\\svc` (CONTOSO listed) means `svc`; `OTHER\\svc` names nobody.
    let rules = cfg.users.rules();
    for (i, u) in p.exempt_users.iter().enumerate() {
        if let Err(e) = mfa_model::UserName::canonical(u, &rules) {
            v.bad(
                vec![k("policy"), k("exempt_users"), Seg::Index(i)],
                format!("{u:?} is not a valid user name: {e}"),
            );
        }
    }
    for (i, g) in p.exempt_groups.iter().enumerate() {
        if !valid_name(g) {
            v.bad(
                vec![k("policy"), k("exempt_groups"), Seg::Index(i)],
                format!("{g:?} is not a valid group name"),
            );
        }
    }
    // A trusted range lets its clients in without a code. One (or several together) holding
    // half an address family or more is no trusted network but MFA turned off for nearly
    // everyone, which has its own, visible settings. Refused here, so every loader (mfactl
    // trusted add, config check, both daemons, the PAM module) refuses it. IPv4-mapped
    // IPv6 ranges are measured as the IPv4 they map.
    let mut too_wide = false;
    for (i, n) in p.trusted_networks.iter().enumerate() {
        if let Some(why) = wide_trust(
            &format!("{n} holds"),
            values::coverage(std::slice::from_ref(n)),
        ) {
            too_wide = true;
            v.bad(vec![k("policy"), k("trusted_networks"), Seg::Index(i)], why);
        }
    }
    if !too_wide
        && let Some(why) = wide_trust(
            "together, these ranges hold",
            values::coverage(&p.trusted_networks),
        )
    {
        v.bad(vec![k("policy"), k("trusted_networks")], why);
    }
    for (i, e) in p.remember_for.iter().enumerate() {
        if p.remember_for[..i].contains(e) {
            v.bad(
                vec![k("policy"), k("remember_for"), Seg::Index(i)],
                format!("\"{e}\" is listed twice"),
            );
        }
    }
    if p.grace_days > 3650 {
        v.bad(
            vec![k("policy"), k("grace_days")],
            "more than 3650 days".into(),
        );
    }
}

/// `[policy] remember`: how long a portal unlock lasts. Checked after `[radius]`, where it
/// always was, so the problems come in the order they always did.
pub(super) fn remember(cfg: &Config, v: &mut Problems<'_>) {
    if cfg.policy.remember.as_secs() > 31 * 86_400 {
        v.bad(
            vec![k("policy"), k("remember")],
            format!(
                "{} is too long (at most 31d): an unlocked address skips the code all that time",
                cfg.policy.remember
            ),
        );
    }
}

/// Why trusted ranges covering `coverage` (see `values::coverage`) are refused, if they
/// hold half an address family or more; `what` says who holds it.
fn wide_trust(what: &str, coverage: [(values::Family, u64); 2]) -> Option<String> {
    let parts: Vec<String> = coverage
        .iter()
        .filter(|(_, share)| *share >= values::HALF)
        .map(|(family, share)| {
            if *share >= 2 * values::HALF {
                format!("every {} address", family.name())
            } else {
                format!("half or more of all {} addresses", family.name())
            }
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "{what} {}: a trusted network lets its clients in without a code, so this would turn \
         MFA off for nearly everyone. List only your own networks (offices, VPN pools); to \
         turn MFA off or put it off, use the settings made for that: enforce_from = \"never\", \
         exempt_users, exempt_groups",
        parts.join(" and ")
    ))
}

/// A group name as the configuration may name it: the model's character rule, Unicode
/// letters included whatever `[users] unicode` says. A group name is not typed by the user
/// logging in: it is compared byte for byte with the groups NSS gives for the (canonical)
/// user, so a look-alike of it adds no record and lets no one in, and a directory's own
/// non-ASCII group names (German AD's `Domänen-Benutzer`) must be writable.
fn valid_name(s: &str) -> bool {
    mfa_model::UserName::check(s).is_ok()
}
