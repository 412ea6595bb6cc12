//! A user's groups with the path that makes each one count, for each kind of server.
//!
//! - Active Directory: one search with the in-chain matching rule from the user finds every
//!   nested group, but not the primary group (`primaryGroupID`, which `member` never lists):
//!   its SID is the domain's (the user's own SID without its last part) and the RID, and a
//!   second in-chain search from it finds what it is nested in.
//! - OpenLDAP: the memberof overlay keeps each entry's direct groups in `memberOf`, and has
//!   no in-chain rule: each group's own `memberOf` is read in turn, breadth first. The
//!   primary group is RFC 2307's: the user's `gidNumber` names a `posixGroup` by its own
//!   `gidNumber`, and no `member` or `memberUid` need list the user in it.
//!
//! The path is found from the groups' `memberOf` (a group's direct parents), breadth first,
//! so it is a shortest one.

use std::collections::{BTreeMap, HashSet, VecDeque};

use mfa_config::DirectoryConfig;
use mfa_core::directory::{DirectoryError, GroupPath};

use crate::conn::{Entry, Servers};
use crate::sid;

/// AD's LDAP_MATCHING_RULE_IN_CHAIN.
pub const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// Most groups followed for one user on OpenLDAP, where each is a read of its own.
const MAX_GROUPS: usize = 2000;

/// A group found, by its DN in lowercase.
struct Node {
    name: String,
    parents: Vec<String>,
}

type Known = BTreeMap<String, Node>;

fn add(known: &mut Known, e: &Entry, name_attr: &str) {
    let name = e
        .first(name_attr)
        .or_else(|| e.first("cn"))
        .unwrap_or(&e.dn)
        .to_string();
    let parents = e.all("memberOf").iter().map(|p| p.to_lowercase()).collect();
    known.insert(e.dn.to_lowercase(), Node { name, parents });
}

/// Active Directory (and Samba AD).
pub(crate) fn ad(
    servers: &Servers,
    cfg: &DirectoryConfig,
    user: &Entry,
) -> Result<Vec<GroupPath>, DirectoryError> {
    let name_attr = cfg.kind.group_name_attribute();
    let attrs = [name_attr, "cn", "memberOf"];
    let mut known = Known::new();
    let in_chain = |dn: &str, known: &mut Known| -> Result<(), DirectoryError> {
        let filter = format!(
            "(&(objectClass=group)(member:{IN_CHAIN}:={}))",
            ldap3::ldap_escape(dn)
        );
        for e in servers.search(&cfg.base_dn, &filter, &attrs)?.0 {
            add(known, &e, name_attr);
        }
        Ok(())
    };
    in_chain(&user.dn, &mut known)?;
    let mut starts = direct_starts(user);
    let rid = user
        .first("primaryGroupID")
        .and_then(|r| r.trim().parse::<u32>().ok());
    let user_sid = user.bytes("objectSid").and_then(|b| sid::to_text(&b));
    if let (Some(rid), Some(user_sid)) = (rid, user_sid)
        && let Some(group_sid) = sid::primary_group(&user_sid, rid)
    {
        let filter = format!("(&(objectClass=group)(objectSid={group_sid}))");
        if let Some(pg) = servers.search(&cfg.base_dn, &filter, &attrs)?.0.first() {
            add(&mut known, pg, name_attr);
            starts.push((pg.dn.to_lowercase(), true));
            in_chain(&pg.dn, &mut known)?;
        }
    }
    Ok(paths(&known, starts))
}

/// OpenLDAP with the memberof overlay.
pub(crate) fn openldap(
    servers: &Servers,
    cfg: &DirectoryConfig,
    user: &Entry,
) -> Result<Vec<GroupPath>, DirectoryError> {
    let name_attr = cfg.kind.group_name_attribute();
    let attrs = [name_attr, "memberOf"];
    let mut known = Known::new();
    let mut starts = direct_starts(user);
    let mut todo: VecDeque<String> = user.all("memberOf").iter().map(|d| d.to_string()).collect();
    // The primary group (RFC 2307 `gidNumber`), where the user has one and a group has it.
    if let Some(gid) = user
        .first("gidNumber")
        .and_then(|g| g.trim().parse::<u32>().ok())
    {
        let filter = format!("(&(objectClass=posixGroup)(gidNumber={gid}))");
        if let Some(pg) = servers.search(&cfg.base_dn, &filter, &attrs)?.0.first() {
            starts.push((pg.dn.to_lowercase(), true));
            todo.push_back(pg.dn.clone());
        }
    }
    let mut asked = HashSet::new();
    while let Some(dn) = todo.pop_front() {
        if !asked.insert(dn.to_lowercase()) {
            continue;
        }
        if asked.len() > MAX_GROUPS {
            return Err(DirectoryError::new(format!(
                "more than {MAX_GROUPS} groups for {}",
                user.dn
            )));
        }
        if let Some(e) = servers.read(&dn, &attrs)? {
            todo.extend(e.all("memberOf").iter().map(|p| p.to_string()));
            add(&mut known, &e, name_attr);
        }
    }
    Ok(paths(&known, starts))
}

/// Where the paths start: the user's direct groups (`memberOf`, lowercase DNs, sorted so the
/// paths do not depend on the server's order), none of them the primary group.
fn direct_starts(user: &Entry) -> Vec<(String, bool)> {
    let mut starts: Vec<(String, bool)> = user
        .all("memberOf")
        .iter()
        .map(|d| (d.to_lowercase(), false))
        .collect();
    starts.sort();
    starts
}

/// Every known group once, with a shortest path from a start (a direct group, or the
/// primary group); a group the server said the user is in but no path reaches (through a
/// group in another domain) is listed with itself as its path.
fn paths(known: &Known, starts: Vec<(String, bool)>) -> Vec<GroupPath> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut queue = VecDeque::new();
    for (dn, primary) in starts {
        if let Some(n) = known.get(&dn)
            && seen.insert(dn.clone())
        {
            queue.push_back((dn, vec![n.name.clone()], primary));
        }
    }
    while let Some((dn, path, primary)) = queue.pop_front() {
        let Some(node) = known.get(&dn) else { continue };
        for p in &node.parents {
            if let Some(pn) = known.get(p)
                && seen.insert(p.clone())
            {
                let mut longer = path.clone();
                longer.push(pn.name.clone());
                queue.push_back((p.clone(), longer, primary));
            }
        }
        out.push(GroupPath {
            name: node.name.clone(),
            path,
            primary,
        });
    }
    for (dn, n) in known {
        if !seen.contains(dn) {
            out.push(GroupPath {
                name: n.name.clone(),
                path: vec![n.name.clone()],
                primary: false,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, parents: &[&str]) -> Node {
        Node {
            name: name.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn shortest_paths_from_direct_and_primary_groups() {
        let mut k = Known::new();
        k.insert("cn=inner".into(), node("inner", &["cn=mid"]));
        k.insert("cn=mid".into(), node("mid", &["cn=outer", "cn=inner"]));
        k.insert("cn=outer".into(), node("outer", &[]));
        k.insert("cn=prim".into(), node("prim", &["cn=pouter"]));
        k.insert("cn=pouter".into(), node("pouter", &[]));
        k.insert("cn=far".into(), node("far", &[]));
        let p = paths(
            &k,
            vec![("cn=inner".into(), false), ("cn=prim".into(), true)],
        );
        let by = |n: &str| p.iter().find(|g| g.name == n).unwrap().clone();
        assert_eq!(by("outer").path, ["inner", "mid", "outer"]);
        assert!(!by("outer").primary);
        assert_eq!(by("pouter").path, ["prim", "pouter"]);
        assert!(by("pouter").primary);
        assert_eq!(by("far").path, ["far"]);
        assert_eq!(p.len(), 6, "each group once, cycles included: {p:?}");
    }
}
