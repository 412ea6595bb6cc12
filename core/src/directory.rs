//! What the core asks of a directory (Active Directory, OpenLDAP: `[directory]`), as a
//! trait, so that the core links no LDAP client, TLS stack or async runtime (the PAM module
//! links the core). `mfa-directory` implements it over LDAP; `mfa-store-open` gives it to
//! the core of the daemon, the portal and mfactl ([`crate::Core::with_directory`]). Without
//! one, groups and names come from the system (NSS: [`crate::groups`]).
//!
//! Every answer is one of three: found, not found, or [`DirectoryError`] (no server
//! answered, or answered with an error). The third is never read as the second: a login whose
//! decision needs the directory is refused while it does not answer (fail closed).

use std::fmt;
use std::time::Duration;

use zeroize::Zeroizing;

/// One group a user is in, and how: `path` runs from a group that holds the user directly
/// (or the primary group) to this one, this one last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPath {
    /// The group's name as the policy names it (`sAMAccountName` on AD, `cn` on OpenLDAP).
    pub name: String,
    /// The chain of groups that makes the user a member, ending with `name`.
    pub path: Vec<String>,
    /// Through the user's primary group (AD's `primaryGroupID`).
    pub primary: bool,
}

/// A user as the directory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account name (`sAMAccountName`, `uid`) as the directory spells it.
    pub name: String,
    /// The entry's DN.
    pub dn: String,
    /// The user's principal name, where the directory has one.
    pub upn: Option<String>,
    /// Every group, nested and primary ones included, each once.
    pub groups: Vec<GroupPath>,
}

impl Account {
    /// The groups' names, for the policy.
    pub fn group_names(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.name.clone()).collect()
    }
}

/// What a lookup found, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// `None`: the directory answered that there is no such user.
    pub account: Option<Account>,
    /// The server that answered (its URL), or `"cache"`.
    pub server: String,
    /// How long the lookup took.
    pub took: Duration,
}

/// The answer to a password check. Every refusal is one answer, so a front end cannot tell
/// (or show) a wrong password from an unknown or disabled account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindOutcome {
    Accepted,
    Refused,
}

/// No server answered, or one answered with an error: the question has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryError {
    pub message: String,
}

impl DirectoryError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the directory did not answer: {}", self.message)
    }
}

impl std::error::Error for DirectoryError {}

/// A directory of users and groups.
pub trait Directory: Send + Sync {
    /// The account the canonical name `name` names (the `[users]` rule already applied:
    /// `TEST\alice` and `alice@test.lan` both came here as `alice`), with its groups.
    /// Answers may come from a cache (`cache_ttl`); an unanswered lookup is never cached.
    fn lookup(&self, name: &str) -> Result<Found, DirectoryError>;

    /// [`Directory::lookup`] from the server, not the cache (`mfactl directory test`); the
    /// answer replaces the cached one.
    fn lookup_fresh(&self, name: &str) -> Result<Found, DirectoryError> {
        self.lookup(name)
    }

    /// The account an alternate name names: a user principal name that is not
    /// `<account>@<listed domain>` (`a.anders@test.lan` for `alice`). `None`: no account has
    /// it.
    fn by_principal_name(&self, upn: &str) -> Result<Option<String>, DirectoryError>;

    /// Checks `password` by a bind as the user `name` (canonical). An empty password is
    /// refused before any bind (Active Directory takes it as an anonymous bind, a success).
    fn check_password(
        &self,
        name: &str,
        password: &Zeroizing<String>,
    ) -> Result<BindOutcome, DirectoryError>;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::login::{Request, Voucher};
    use crate::net::ClientAddr;
    use crate::policy::{Outcome, Reason};
    use mfa_model::UserName;

    /// alice in `staff` through `team`; bob unknown; no answer at all while `down`.
    struct Fake {
        down: AtomicBool,
    }

    impl Directory for Fake {
        fn lookup(&self, name: &str) -> Result<Found, DirectoryError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(DirectoryError::new("no server answered"));
            }
            let account = (name == "alice").then(|| Account {
                name: "alice".into(),
                dn: "CN=alice".into(),
                upn: Some("a.anders@test.lan".into()),
                groups: vec![GroupPath {
                    name: "staff".into(),
                    path: vec!["team".into(), "staff".into()],
                    primary: false,
                }],
            });
            Ok(Found {
                account,
                server: "fake".into(),
                took: Duration::ZERO,
            })
        }

        fn by_principal_name(&self, upn: &str) -> Result<Option<String>, DirectoryError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(DirectoryError::new("no server answered"));
            }
            Ok((upn == "a.anders@test.lan").then(|| "alice".into()))
        }

        fn check_password(
            &self,
            _name: &str,
            _password: &Zeroizing<String>,
        ) -> Result<BindOutcome, DirectoryError> {
            Ok(BindOutcome::Refused)
        }
    }

    fn core() -> (tempfile::TempDir, crate::Core, Arc<Fake>) {
        let (dir, core) = crate::test_core(|cfg| {
            cfg.policy.exempt_groups = vec!["staff".into()];
            cfg.users.domains = vec!["TEST".into(), "test.lan".into()];
        });
        let fake = Arc::new(Fake {
            down: AtomicBool::new(false),
        });
        (dir, core.with_directory(fake.clone()), fake)
    }

    fn req(user: &str) -> Request {
        let user = UserName::parse(user).unwrap();
        Request::new(&user, ClientAddr::Remote("192.0.2.1".parse().ok()), "sshd")
    }

    #[test]
    fn groups_and_names_come_from_the_directory() {
        let (_d, core, _) = core();
        let alice = UserName::parse("alice").unwrap();
        // A nested group exempts, as an NSS group would.
        let d = core.login().decide(&req("alice")).unwrap();
        assert_eq!((d.outcome, d.reason), (Outcome::Allow, Reason::ExemptGroup));
        // An alternate UPN, `TEST\alice` and the UPN in a listed domain are one user.
        for raw in [
            "a.anders@test.lan",
            "TEST\\alice",
            "alice@test.lan",
            "ALICE",
        ] {
            assert_eq!(core.user_name(raw).unwrap(), alice, "{raw}");
        }
        // The directory vouches for a name an administrator gives, and for no other.
        let by = Voucher::Administrator { force: false };
        assert!(core.login().admit_name(&alice, by).unwrap().admitted());
        let bob = UserName::parse("bob").unwrap();
        assert!(!core.login().admit_name(&bob, by).unwrap().admitted());
        // A PAM host in remote mode whose NSS does not know the name: the server's
        // directory answers for it (issue 23: the host gets the directory's answer).
        for knows in [None, Some(false)] {
            let by = Voucher::PamHost { knows };
            assert!(core.login().admit_name(&alice, by).unwrap().admitted());
            assert!(!core.login().admit_name(&bob, by).unwrap().admitted());
        }
        let host_knows = Voucher::PamHost { knows: Some(true) };
        assert!(
            core.login()
                .admit_name(&bob, host_knows)
                .unwrap()
                .admitted()
        );
    }

    /// No answer is never "no groups": the decision that needs them fails, and so does every
    /// question only the directory can answer.
    #[test]
    fn a_directory_that_does_not_answer_fails_closed() {
        let (_d, core, fake) = core();
        fake.down.store(true, Ordering::SeqCst);
        let e = core.login().decide(&req("alice")).unwrap_err();
        assert!(matches!(e, crate::CoreError::Directory(_)), "{e}");
        assert!(core.login().begin(&req("alice")).is_err());
        assert!(core.login().verify_code(&req("alice"), "123456").is_err());
        let alice = UserName::parse("alice").unwrap();
        let by = Voucher::Administrator { force: false };
        assert!(core.login().admit_name(&alice, by).is_err());
        // A host that does not vouch, with the directory silent: refused, not admitted.
        let host = Voucher::PamHost { knows: Some(false) };
        assert!(core.login().admit_name(&alice, host).is_err());
        assert!(core.user_name("a.anders@test.lan").is_err());
        // Nothing was written for the refused logins.
        assert!(core.store().user(&alice).unwrap().is_none());
        // Without groups in the policy, the directory is not asked at all.
        let (_d2, core2) = crate::test_core(|_| {});
        let core2 = core2.with_directory(fake);
        assert!(core2.login().decide(&req("alice")).is_ok());
    }
}
