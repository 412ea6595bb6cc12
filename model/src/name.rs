//! User names: checked once, where a name enters the core, and carried as [`UserName`] after.

use std::fmt;

/// Longer names are refused: no directory issues them, and they only bloat logs and rows.
pub const MAX_NAME_BYTES: usize = 256;

/// A user name that passed the check. The only way a name reaches the policy, the store or
/// the audit trail, so no front end can let an unchecked spelling through.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

/// Why a name is not a user name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadUserName {
    Empty,
    TooLong {
        bytes: usize,
    },
    /// A leading `-` reads as an option to every command that is handed the name.
    LeadingDash,
    /// `position` counts characters from 1.
    BadCharacter {
        position: usize,
        character: char,
    },
    /// `DOMAIN\user` or `user@domain` with a domain that `[users] domains` does not list.
    UnlistedDomain {
        domain: String,
    },
    /// `DOMAIN\` or `@domain`: a listed domain and no user.
    EmptyUserPart,
}

impl fmt::Display for BadUserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadUserName::Empty => f.write_str("the name is empty"),
            BadUserName::TooLong { bytes } => {
                write!(f, "{bytes} bytes is longer than {MAX_NAME_BYTES}")
            }
            BadUserName::LeadingDash => f.write_str("it starts with '-'"),
            BadUserName::BadCharacter {
                position,
                character,
            } => write!(f, "character {position} ({character:?}) is not allowed"),
            BadUserName::UnlistedDomain { domain } => write!(
                f,
                "the domain {domain:?} is not one of [users] domains (a name may carry only a listed domain)"
            ),
            BadUserName::EmptyUserPart => f.write_str("there is no user before '@' or after '\\'"),
        }
    }
}

impl std::error::Error for BadUserName {}

/// How a name from outside becomes the one canonical name of its user (`[users]` in the
/// configuration; the model imports nothing from it, so the rules come as parameters).
#[derive(Debug, Clone, Copy)]
pub struct NameRules<'a> {
    /// Unicode lowercase (`str::to_lowercase`: the default full mapping, no locale), as
    /// SSSD's `case_sensitive = false` and Active Directory's case-blind account names.
    pub fold_case: bool,
    /// Domains whose `DOMAIN\user` and `user@domain` mean `user`; matched case-insensitively.
    pub domains: &'a [String],
}

impl NameRules<'_> {
    /// What the rules are, as a short stable text: the store records the rules its names
    /// were last checked against, and checks them again only when this changes. The
    /// leading tag names this version of the canonicalisation itself.
    pub fn fingerprint(&self) -> String {
        let mut d: Vec<String> = self.domains.iter().map(|d| d.to_lowercase()).collect();
        d.sort();
        d.dedup();
        format!(
            "names-1 case={} domains={}",
            if self.fold_case { "fold" } else { "exact" },
            d.join(",")
        )
    }

    fn listed(&self, domain: &str) -> bool {
        let domain = domain.to_lowercase();
        self.domains.iter().any(|d| d.to_lowercase() == domain)
    }
}

impl UserName {
    /// The canonical name of the user a front end (PAM_USER, RADIUS User-Name, an `mfactl`
    /// argument, an import line) names, or why there is none. `DOMAIN\user` and
    /// `user@domain` for a listed domain mean `user`; any other domain, a second separator, a
    /// control character or more than [`MAX_NAME_BYTES`] is refused; then case is folded
    /// where the rules say so, and the result must pass [`UserName::check`].
    ///
    /// Names are not Unicode-normalised: a decomposed `é` is another name than a precomposed
    /// one, as it is to the directories the first factor asks.
    pub fn canonical(raw: &str, rules: &NameRules<'_>) -> Result<Self, BadUserName> {
        if raw.is_empty() {
            return Err(BadUserName::Empty);
        }
        if raw.len() > MAX_NAME_BYTES {
            return Err(BadUserName::TooLong { bytes: raw.len() });
        }
        if let Some((i, character)) = raw.chars().enumerate().find(|(_, c)| c.is_control()) {
            return Err(BadUserName::BadCharacter {
                position: i + 1,
                character,
            });
        }
        // `DOMAIN\user` (the first backslash) or `user@domain` (the last `@`): `start` is
        // where the user part begins in `raw`, for positions in errors.
        let (user, start) = if let Some((domain, user)) = raw.split_once('\\') {
            if !rules.listed(domain) {
                return Err(BadUserName::UnlistedDomain {
                    domain: domain.into(),
                });
            }
            (user, domain.len() + 1)
        } else if let Some((user, domain)) = raw.rsplit_once('@') {
            if !rules.listed(domain) {
                return Err(BadUserName::UnlistedDomain {
                    domain: domain.into(),
                });
            }
            (user, 0)
        } else {
            (raw, 0)
        };
        if user.is_empty() {
            return Err(BadUserName::EmptyUserPart);
        }
        if let Some(j) = user.find(['\\', '@']) {
            let at = start + j;
            return Err(BadUserName::BadCharacter {
                position: raw[..at].chars().count() + 1,
                character: raw[at..].chars().next().unwrap_or('@'),
            });
        }
        let name = if rules.fold_case {
            user.to_lowercase()
        } else {
            user.to_string()
        };
        Self::check(&name)?;
        Ok(Self(name))
    }

    /// The old character rule, for names read back from the store (which may predate
    /// [`UserName::canonical`]) and for tests: POSIX-ish portable user and group names, plus
    /// `@`, `.` and `\` for directory users.
    pub fn parse(s: &str) -> Result<Self, BadUserName> {
        Self::check(s)?;
        Ok(Self(s.to_string()))
    }

    /// The same rule, for names that are not users (group names in the configuration).
    pub fn check(s: &str) -> Result<(), BadUserName> {
        if s.is_empty() {
            return Err(BadUserName::Empty);
        }
        if s.len() > MAX_NAME_BYTES {
            return Err(BadUserName::TooLong { bytes: s.len() });
        }
        if s.starts_with('-') {
            return Err(BadUserName::LeadingDash);
        }
        match s
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_alphanumeric() || "._-@\\$".contains(*c)))
        {
            Some((i, character)) => Err(BadUserName::BadCharacter {
                position: i + 1,
                character,
            }),
            None => Ok(()),
        }
    }

    /// Whether this name is its own canonical form under `rules` (a stored name a front end
    /// can reach).
    pub fn is_canonical(&self, rules: &NameRules<'_>) -> bool {
        Self::canonical(&self.0, rules).is_ok_and(|c| c == *self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for UserName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for UserName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for UserName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl PartialEq<str> for UserName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for UserName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_rule() {
        for ok in [
            "alice",
            "a.b-c_d",
            "CONTOSO\\alice",
            "alice@contoso.com",
            "mach$",
            "jörg",
        ] {
            assert!(UserName::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(UserName::parse(""), Err(BadUserName::Empty));
        assert_eq!(UserName::parse("-rf"), Err(BadUserName::LeadingDash));
        assert_eq!(
            UserName::parse("a b"),
            Err(BadUserName::BadCharacter {
                position: 2,
                character: ' '
            })
        );
        assert!(UserName::parse("a\nb").is_err());
        assert!(UserName::parse(&"a".repeat(256)).is_ok());
        assert_eq!(
            UserName::parse(&"a".repeat(257)),
            Err(BadUserName::TooLong { bytes: 257 })
        );
    }

    fn rules(fold_case: bool, domains: &[String]) -> NameRules<'_> {
        NameRules { fold_case, domains }
    }

    #[test]
    fn the_canonicalisation_table() {
        let domains = ["CONTOSO".to_string(), "contoso.com".to_string()];
        let fold = rules(true, &domains);
        let exact = rules(false, &domains);
        let none = rules(true, &[]);
        let ok = |raw: &str, r: &NameRules<'_>| UserName::canonical(raw, r).map(|n| n.0);
        for (raw, fold_want, exact_want) in [
            ("alice", "alice", "alice"),
            ("Alice", "alice", "Alice"),
            ("ALICE", "alice", "ALICE"),
            ("CONTOSO\\alice", "alice", "alice"),
            ("contoso\\Alice", "alice", "Alice"),
            ("Contoso.Com\\alice", "alice", "alice"),
            ("alice@contoso.com", "alice", "alice"),
            ("Alice@CONTOSO.COM", "alice", "Alice"),
            ("alice@CONTOSO", "alice", "alice"),
            ("JÖRG", "jörg", "JÖRG"),
            ("mach$", "mach$", "mach$"),
            ("a.b-c_d", "a.b-c_d", "a.b-c_d"),
        ] {
            assert_eq!(ok(raw, &fold).as_deref(), Ok(fold_want), "fold {raw}");
            assert_eq!(ok(raw, &exact).as_deref(), Ok(exact_want), "exact {raw}");
        }
        let unlisted = |d: &str| {
            Err(BadUserName::UnlistedDomain {
                domain: d.to_string(),
            })
        };
        assert_eq!(ok("OTHER\\alice", &fold), unlisted("OTHER"));
        assert_eq!(ok("alice@evil.example", &fold), unlisted("evil.example"));
        assert_eq!(
            ok("alice@contoso.com.evil", &fold),
            unlisted("contoso.com.evil")
        );
        assert_eq!(ok("CONTOSO\\alice", &none), unlisted("CONTOSO"));
        assert_eq!(ok("alice@contoso.com", &none), unlisted("contoso.com"));
        assert_eq!(ok("\\alice", &fold), unlisted(""));
        assert_eq!(ok("alice@", &fold), unlisted(""));
        // Listed domain, nothing else.
        assert_eq!(ok("CONTOSO\\", &fold), Err(BadUserName::EmptyUserPart));
        assert_eq!(ok("@contoso.com", &fold), Err(BadUserName::EmptyUserPart));
        // A second separator.
        assert_eq!(
            ok("CONTOSO\\alice@contoso.com", &fold),
            Err(BadUserName::BadCharacter {
                position: 14,
                character: '@'
            })
        );
        assert_eq!(
            ok("CONTOSO\\CONTOSO\\alice", &fold),
            Err(BadUserName::BadCharacter {
                position: 16,
                character: '\\'
            })
        );
        assert_eq!(
            ok("a@b@contoso.com", &fold),
            Err(BadUserName::BadCharacter {
                position: 2,
                character: '@'
            })
        );
        // Control characters anywhere, the domain included.
        for (raw, position, character) in [
            ("ali\nce", 4, '\n'),
            ("alice\0", 6, '\0'),
            ("CON\tTOSO\\alice", 4, '\t'),
            ("alice\u{7f}", 6, '\u{7f}'),
            ("alice\u{85}@contoso.com", 6, '\u{85}'),
        ] {
            assert_eq!(
                ok(raw, &fold),
                Err(BadUserName::BadCharacter {
                    position,
                    character
                }),
                "{raw:?}"
            );
        }
        // Length counts the name as given, domain and all.
        assert!(ok(&"a".repeat(256), &fold).is_ok());
        assert_eq!(
            ok(&"a".repeat(257), &fold),
            Err(BadUserName::TooLong { bytes: 257 })
        );
        let long = format!("CONTOSO\\{}", "a".repeat(250));
        assert_eq!(ok(&long, &fold), Err(BadUserName::TooLong { bytes: 258 }));
        // The old rule still applies to what is left.
        assert_eq!(ok("", &fold), Err(BadUserName::Empty));
        assert_eq!(ok("CONTOSO\\-rf", &fold), Err(BadUserName::LeadingDash));
        assert!(matches!(
            ok("a b", &fold),
            Err(BadUserName::BadCharacter { position: 2, .. })
        ));
        // Every error says what is wrong.
        let e = UserName::canonical("OTHER\\alice", &fold)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"OTHER\"") && e.contains("[users] domains"),
            "{e}"
        );
    }

    #[test]
    fn canonical_names_are_canonical_and_fingerprints_name_the_rules() {
        let domains = ["contoso.com".to_string(), "CONTOSO".to_string()];
        let fold = rules(true, &domains);
        assert!(UserName::parse("alice").unwrap().is_canonical(&fold));
        assert!(!UserName::parse("Alice").unwrap().is_canonical(&fold));
        assert!(
            !UserName::parse("CONTOSO\\alice")
                .unwrap()
                .is_canonical(&fold)
        );
        assert!(
            UserName::parse("Alice")
                .unwrap()
                .is_canonical(&rules(false, &domains))
        );
        assert_eq!(
            fold.fingerprint(),
            "names-1 case=fold domains=contoso,contoso.com"
        );
        let same = [
            "CONTOSO".to_string(),
            "Contoso.com".to_string(),
            "contoso".to_string(),
        ];
        assert_eq!(fold.fingerprint(), rules(true, &same).fingerprint());
        assert_ne!(fold.fingerprint(), rules(false, &domains).fingerprint());
        assert_eq!(rules(true, &[]).fingerprint(), "names-1 case=fold domains=");
    }
}
