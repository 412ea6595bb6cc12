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

#[cfg(test)]
mod tests {
    #[test]
    fn root_is_in_root() {
        assert!(super::groups_of("root").iter().any(|g| g == "root"));
        assert!(super::groups_of("no-such-user-xyz").is_empty());
    }
}
