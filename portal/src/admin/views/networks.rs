//! Trusted networks and exemptions, as the configuration file has them now; the admin
//! role's forms to add and remove (the same checked edits as `mfactl trusted` and
//! `mfactl exempt`).

use mfa_config::Config;
use mfa_core::roles::Role;

use crate::admin::BASE;
use crate::admin::text::Tx;
use crate::admin::views::frame::{button_form, hidden};
use crate::page::esc;

/// One list of the page: its id, the actions that remove from and add to it, an example.
#[derive(Clone, Copy)]
struct List<'a> {
    id: &'a str,
    remove: &'a str,
    add: &'a str,
    placeholder: &'a str,
}

/// One list with its entries, a remove button per entry and an add form (the admin role).
fn list(t: &Tx, l: &List<'_>, entries: &[String], csrf: &str, role: Role) -> String {
    let List {
        id,
        remove,
        add,
        placeholder,
    } = *l;
    let path = format!("{BASE}/networks");
    let mut out = String::new();
    if entries.is_empty() {
        out.push_str(&format!("<p id=\"{id}\">{}</p>", esc(t.none_listed)));
    } else {
        out.push_str(&format!("<table id=\"{id}\">"));
        for (i, e) in entries.iter().enumerate() {
            let button = if role == Role::Admin {
                button_form(
                    &path,
                    csrf,
                    remove,
                    &[("entry", e)],
                    &format!("{remove}-{i}"),
                    t.remove,
                )
            } else {
                String::new()
            };
            out.push_str(&format!("<tr><td>{}</td><td>{button}</td></tr>", esc(e)));
        }
        out.push_str("</table>");
    }
    if role == Role::Admin {
        out.push_str(&format!(
            "<form method=\"post\" action=\"{path}\" id=\"{add}-form\">{}{}<input name=\"entry\" id=\"{add}-entry\" maxlength=\"64\" placeholder=\"{}\" required> <button type=\"submit\" id=\"{add}\">{}</button></form>",
            hidden("action", add),
            hidden("csrf", csrf),
            esc(placeholder),
            esc(t.add),
        ));
    }
    out
}

/// The page's body, with `note` on top.
pub fn page(t: &Tx, cfg: &Config, csrf: &str, role: Role, note: &str) -> String {
    let p = &cfg.policy;
    let trusted: Vec<String> = p.trusted_networks.iter().map(ToString::to_string).collect();
    let mut out = note.to_string();
    if role != Role::Admin {
        out.push_str(&format!("<p class=\"muted\">{}</p>", esc(t.admin_only)));
    }
    out.push_str(&format!(
        "<h2>{}</h2><p>{}</p>{}",
        esc(t.trusted_title),
        esc(t.trusted_intro),
        list(
            t,
            &List {
                id: "trusted",
                remove: "trusted-remove",
                add: "trusted-add",
                placeholder: "10.0.0.0/8",
            },
            &trusted,
            csrf,
            role
        )
    ));
    out.push_str(&format!(
        "<h2>{}</h2><p>{}</p>{}",
        esc(t.exempt_users_title),
        esc(t.exempt_intro),
        list(
            t,
            &List {
                id: "exempt-users",
                remove: "exempt-user-remove",
                add: "exempt-user-add",
                placeholder: "svc-backup",
            },
            &p.exempt_users,
            csrf,
            role
        )
    ));
    out.push_str(&format!(
        "<h2>{}</h2>{}",
        esc(t.exempt_groups_title),
        list(
            t,
            &List {
                id: "exempt-groups",
                remove: "exempt-group-remove",
                add: "exempt-group-add",
                placeholder: "mfa-exempt",
            },
            &p.exempt_groups,
            csrf,
            role
        )
    ));
    out
}
