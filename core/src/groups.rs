//! Group membership from the system's group database (NSS: files, SSSD, LDAP alike).

use std::ffi::CString;

use nix::unistd::{Group, User, getgrouplist};

/// Names of the groups `user` belongs to, primary group included. A user the system does
/// not know has none, so is never exempt by group.
pub fn groups_of(user: &str) -> Vec<String> {
    let Ok(Some(u)) = User::from_name(user) else {
        return Vec::new();
    };
    let Ok(cname) = CString::new(user) else {
        return Vec::new();
    };
    let Ok(gids) = getgrouplist(&cname, u.gid) else {
        return Vec::new();
    };
    gids.into_iter()
        .filter_map(|gid| Group::from_gid(gid).ok().flatten().map(|g| g.name))
        .collect()
}

/// Whether the system knows `user` (NSS). An error counts as unknown: the caller then creates
/// no record for the name, which is the safe side.
pub fn user_known(user: &str) -> bool {
    matches!(User::from_name(user), Ok(Some(_)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_users() {
        assert!(super::user_known("root"));
        assert!(!super::user_known("no-such-user-xyz"));
    }

    #[test]
    fn root_is_in_root() {
        assert!(super::groups_of("root").iter().any(|g| g == "root"));
        assert!(super::groups_of("no-such-user-xyz").is_empty());
    }
}
