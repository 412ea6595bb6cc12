//! `[admin]`: the administrator's console, its groups and its own listener.

use super::{Problems, k};
use crate::{Config, Seg};

/// `[admin]`.
pub(super) fn admin(cfg: &Config, v: &mut Problems<'_>) {
    let a = &cfg.admin;
    for (role, list) in [("helpdesk", &a.groups.helpdesk), ("admin", &a.groups.admin)] {
        for (i, g) in list.iter().enumerate() {
            let at = vec![k("admin"), k("groups"), k(role), Seg::Index(i)];
            if mfa_model::UserName::check(g).is_err() {
                v.bad(at, format!("{g:?} is not a valid group name"));
            } else if list[..i].contains(g) {
                v.bad(at, format!("{g:?} is listed twice"));
            }
        }
    }
    if let Some(l) = a.listen {
        if !a.enabled() {
            v.bad(
                vec![k("admin"), k("listen")],
                "set, but no group is named in [admin] groups: nobody could sign in to the console; name the groups (helpdesk = [...], admin = [...]) or remove listen".into(),
            );
        } else if l == cfg.portal.listen {
            v.bad(
                vec![k("admin"), k("listen")],
                format!(
                    "{l} is [portal] listen too: the console's own address must be another (or leave listen out to serve the console under /admin of the portal)"
                ),
            );
        }
    }
}
