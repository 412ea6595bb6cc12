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
    policy_rules(cfg, v);
    if p.grace_days > 3650 {
        v.bad(
            vec![k("policy"), k("grace_days")],
            "more than 3650 days".into(),
        );
    }
}

/// `[[policy.rules]]`: what the types alone cannot say. An unknown action or a bad network
/// is the typed parse's error already.
fn policy_rules(cfg: &Config, v: &mut Problems<'_>) {
    use crate::RuleAction;
    for (i, r) in cfg.policy.rules.iter().enumerate() {
        let at = |key: &str| vec![k("policy"), k("rules"), Seg::Index(i), k(key)];
        if let Some(name) = &r.name {
            if name.trim().is_empty()
                || name.chars().count() > 64
                || name.chars().any(char::is_control)
            {
                v.bad(
                    at("name"),
                    format!("{name:?} is not a rule name (1 to 64 printable characters)"),
                );
            } else if cfg.policy.rules[..i]
                .iter()
                .any(|o| o.name.as_deref() == Some(name))
            {
                v.bad(at("name"), format!("the rule name {name:?} is used twice"));
            }
        }
        if r.match_all && r.has_match() {
            v.bad(
                at("match_all"),
                "match_all = true matches every login, so the rule's other match keys would \
                 be ignored; drop them or match_all"
                    .into(),
            );
        } else if !r.match_all && !r.has_match() {
            v.bad(
                vec![k("policy"), k("rules"), Seg::Index(i)],
                "the rule matches nothing in particular, so it would match every login: set \
                 services, radius_clients, groups, networks or local, or say match_all = true"
                    .into(),
            );
        }
        for (j, s) in r.services.iter().enumerate() {
            if !valid_service(s) {
                v.bad(
                    vec![
                        k("policy"),
                        k("rules"),
                        Seg::Index(i),
                        k("services"),
                        Seg::Index(j),
                    ],
                    format!("{s:?} is not a PAM service name"),
                );
            }
        }
        for (j, c) in r.radius_clients.iter().enumerate() {
            if c.trim().is_empty() {
                v.bad(
                    vec![
                        k("policy"),
                        k("rules"),
                        Seg::Index(i),
                        k("radius_clients"),
                        Seg::Index(j),
                    ],
                    "an empty client name".into(),
                );
            }
        }
        for (j, g) in r.groups.iter().enumerate() {
            if !valid_name(g) {
                v.bad(
                    vec![
                        k("policy"),
                        k("rules"),
                        Seg::Index(i),
                        k("groups"),
                        Seg::Index(j),
                    ],
                    format!("{g:?} is not a valid group name"),
                );
            }
        }
        // A rule that lets its networks in without a code is a trusted network by another
        // name: the same limit (half an address family) holds. Asking for a code (or
        // refusing) from everywhere is fine.
        if r.action == RuleAction::NoCode {
            let mut too_wide = false;
            for (j, n) in r.networks.iter().enumerate() {
                if let Some(why) = wide_trust(
                    &format!("{n} holds"),
                    values::coverage(std::slice::from_ref(n)),
                ) {
                    too_wide = true;
                    v.bad(
                        vec![
                            k("policy"),
                            k("rules"),
                            Seg::Index(i),
                            k("networks"),
                            Seg::Index(j),
                        ],
                        why,
                    );
                }
            }
            if !too_wide
                && let Some(why) =
                    wide_trust("together, these ranges hold", values::coverage(&r.networks))
            {
                v.bad(at("networks"), why);
            }
        }
        if r.remembered && r.action != RuleAction::Code {
            v.bad(
                at("remembered"),
                format!(
                    "remembered applies to action = \"code\" only (this rule's action is \"{}\")",
                    r.action.word()
                ),
            );
        }
        if r.action == RuleAction::Push && !cfg.push.enabled {
            v.bad(
                at("action"),
                "action = \"push\" needs [push] enabled = true: without push nobody could \
                 log in through this rule"
                    .into(),
            );
        }
    }
}

/// A PAM service name as PAM takes it (a file name in /etc/pam.d), or a tool's name.
fn valid_service(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+@:".contains(c))
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
