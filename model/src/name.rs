//! User names: checked once, where a name enters the core, and carried as [`UserName`] after.
//!
//! One person is one record, however the name is spelled. Directories compare account names
//! more loosely than bytes (Active Directory ignores case, width and accents), so a spelling
//! the directory takes for alice's must not be a second record here with a grace period of
//! its own. By default a name is ASCII, which leaves no such spelling but case (folded) and
//! a domain (split off). `[users] unicode = "allow"` admits the names of a directory that
//! really has non-ASCII accounts: each must already be in NFKC (no fullwidth, circled or
//! styled letters), and must not look like another user's name ([`lookalike_key`]).

use std::fmt;

use unicode_normalization::{UnicodeNormalization, is_nfkc};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

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
    /// A character beyond ASCII while `[users] unicode` is not `"allow"`; `position` counts
    /// characters of the name as given from 1.
    NotAscii {
        position: usize,
        character: char,
    },
    /// Under `[users] unicode = "allow"`: the name is not in NFKC where this character is (a
    /// fullwidth, circled or mathematical letter, or a decomposed accent): a second spelling
    /// of a name the directory takes as the same.
    NotNfkc {
        position: usize,
        character: char,
    },
    /// Under `[users] unicode = "allow"`: the name looks like `existing`, another user's
    /// stored name ([`lookalike_key`]), and is not both ASCII with it.
    LooksLike {
        existing: String,
    },
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
            BadUserName::NotAscii {
                position,
                character,
            } => write!(
                f,
                "character {position} ({character:?}, U+{:04X}) is not ASCII: user names are \
                 ASCII letters, digits, '.', '_', '-' and '$' unless [users] unicode = \"allow\" \
                 (for a directory whose account names really are not ASCII)",
                u32::from(*character)
            ),
            BadUserName::NotNfkc {
                position,
                character,
            } => write!(
                f,
                "character {position} ({character:?}, U+{:04X}) makes it another spelling of a \
                 name (fullwidth, circled, styled or a separate accent: not Unicode NFKC); type \
                 the name as the directory spells it",
                u32::from(*character)
            ),
            BadUserName::LooksLike { existing } => write!(
                f,
                "it looks like the user {existing:?}, who has a record (the same letters once \
                 case, accents, width and look-alike letters of other scripts are set aside): \
                 one person is one record; `mfactl users remove` or `mfactl users merge` if \
                 they are one person"
            ),
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
    /// Names beyond ASCII are let in (`[users] unicode = "allow"`), in NFKC and not looking
    /// like another user's; otherwise (the default) a name is ASCII.
    pub unicode: bool,
}

impl NameRules<'_> {
    /// What the rules are, as a short stable text: the store records the rules its names
    /// were last checked against, and checks them again only when this changes. The
    /// leading tag names this version of the canonicalisation itself; `keys=` the Unicode
    /// version of the tables behind [`lookalike_key`], whose stored keys are computed
    /// again when it changes.
    pub fn fingerprint(&self) -> String {
        let mut d: Vec<String> = self.domains.iter().map(|d| d.to_lowercase()).collect();
        d.sort();
        d.dedup();
        format!(
            "names-2 case={} domains={} unicode={} keys={}",
            if self.fold_case { "fold" } else { "exact" },
            d.join(","),
            if self.unicode { "allow" } else { "refuse" },
            lookalike_key_version()
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
    /// What is left of the name must be ASCII, unless the rules allow Unicode; then it must
    /// be in NFKC as given, since a fullwidth `ａｌｉｃｅ`, a circled `Ⓐlice` or a decomposed
    /// `é` would be a second spelling of one name. Nothing is normalised here: a name is
    /// taken as it is or refused. Whether it looks like another user's stored name is the
    /// store's business (`mfa_core::names`, through [`lookalike_key`]).
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
        // Characters of `raw` before the user part, for positions in errors.
        let before = raw[..start].chars().count();
        if !rules.unicode {
            if let Some((i, character)) = user.chars().enumerate().find(|(_, c)| !c.is_ascii()) {
                return Err(BadUserName::NotAscii {
                    position: before + i + 1,
                    character,
                });
            }
        } else if let Some((i, character)) = not_nfkc_at(user) {
            return Err(BadUserName::NotNfkc {
                position: before + i + 1,
                character,
            });
        }
        let name = if rules.fold_case {
            user.to_lowercase()
        } else {
            user.to_string()
        };
        // Lowercasing NFKC text may leave text that is not (a rare letter's lowercase is a
        // letter and a combining mark); such a name is refused too.
        if rules.unicode
            && let Some((i, character)) = not_nfkc_at(&name)
        {
            return Err(BadUserName::NotNfkc {
                position: before + i + 1,
                character,
            });
        }
        Self::check(&name)?;
        Ok(Self(name))
    }

    /// The old character rule, for names read back from the store (which may predate
    /// [`UserName::canonical`], and so may hold any Unicode letter: such a record must still
    /// be read, reported and removed) and for tests: POSIX-ish portable user and group
    /// names, plus `@`, `.` and `\` for directory users.
    pub fn parse(s: &str) -> Result<Self, BadUserName> {
        Self::check(s)?;
        Ok(Self(s.to_string()))
    }

    /// The same rule, for names that are not users (group names in the configuration,
    /// which the user does not type: they are compared with what NSS answers, so a
    /// directory's own `Domänen-Benutzer` must be writable).
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

/// The first character (index from 0) at which `s` stops being in NFKC, if it is not: the
/// character NFKC would change or combine with what comes before it.
fn not_nfkc_at(s: &str) -> Option<(usize, char)> {
    if is_nfkc(s) {
        return None;
    }
    // The shortest prefix that is not NFKC ends with the culprit; names are short (at most
    // MAX_NAME_BYTES), so the quadratic walk costs nothing.
    s.char_indices()
        .enumerate()
        .find(|(_, (at, c))| !is_nfkc(&s[..at + c.len_utf8()]))
        .map(|(i, (_, c))| (i, c))
}

/// The key under which two user names look alike, after Unicode TR39 ("confusable
/// detection"): NFKD, nonspacing marks (accents) dropped, lowercased, then the TR39
/// skeleton, which maps each letter to the prototype it is confused with (Cyrillic `а` to
/// Latin `a`). `àlice`, `аlice` (Cyrillic), `ＡＬＩＣＥ` and `Alice` all have the key of
/// `alice`; NFKC and case folding alone would leave the first two apart, though Active
/// Directory takes `àlice` for `alice` (it ignores accents) and a person cannot tell `аlice`
/// from it.
///
/// Two names that are both ASCII are never a collision, whatever their keys: the skeleton
/// also maps `m` to `rn` and `1` to `l`, and no directory takes `admin` for `adrnin`; the
/// default ASCII rule keeps them two users and so does `unicode = "allow"`.
pub fn lookalike_key(name: &str) -> String {
    let bare: String = name
        .nfkd()
        .filter(|c| c.general_category() != GeneralCategory::NonspacingMark)
        .collect();
    unicode_security::skeleton(&bare.to_lowercase()).collect()
}

/// Whether `a` and `b`, two different stored or typed names, are one person's under the
/// look-alike rule ([`lookalike_key`]).
pub fn look_alike(a: &str, b: &str) -> bool {
    a != b && !(a.is_ascii() && b.is_ascii()) && lookalike_key(a) == lookalike_key(b)
}

/// The version of the tables [`lookalike_key`] uses, as `NameRules::fingerprint` records it.
pub fn lookalike_key_version() -> String {
    let (a, b, c) = unicode_security::UNICODE_VERSION;
    format!("{a}.{b}.{c}")
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
        NameRules {
            fold_case,
            domains,
            unicode: false,
        }
    }

    fn unicode(fold_case: bool, domains: &[String]) -> NameRules<'_> {
        NameRules {
            unicode: true,
            ..rules(fold_case, domains)
        }
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
            ("mach$", "mach$", "mach$"),
            ("a.b-c_d", "a.b-c_d", "a.b-c_d"),
        ] {
            assert_eq!(ok(raw, &fold).as_deref(), Ok(fold_want), "fold {raw}");
            assert_eq!(ok(raw, &exact).as_deref(), Ok(exact_want), "exact {raw}");
        }
        // A name beyond ASCII only where the rules let Unicode in (it was let in always).
        assert_eq!(
            ok("JÖRG", &fold),
            Err(BadUserName::NotAscii {
                position: 2,
                character: 'Ö'
            })
        );
        assert_eq!(ok("JÖRG", &unicode(true, &domains)).as_deref(), Ok("jörg"));
        assert_eq!(ok("JÖRG", &unicode(false, &domains)).as_deref(), Ok("JÖRG"));
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
        let keys = lookalike_key_version();
        assert_eq!(
            fold.fingerprint(),
            format!("names-2 case=fold domains=contoso,contoso.com unicode=refuse keys={keys}")
        );
        let same = [
            "CONTOSO".to_string(),
            "Contoso.com".to_string(),
            "contoso".to_string(),
        ];
        assert_eq!(fold.fingerprint(), rules(true, &same).fingerprint());
        assert_ne!(fold.fingerprint(), rules(false, &domains).fingerprint());
        assert_ne!(fold.fingerprint(), unicode(true, &domains).fingerprint());
        assert_eq!(
            rules(true, &[]).fingerprint(),
            format!("names-2 case=fold domains= unicode=refuse keys={keys}")
        );
        assert_eq!(
            unicode(true, &[]).fingerprint(),
            format!("names-2 case=fold domains= unicode=allow keys={keys}")
        );
    }

    /// The spellings a directory takes for `alice` (Active Directory ignores case, width and
    /// accents) or a person cannot tell from it: each would be a second record of alice's,
    /// with a grace period of its own.
    const SPELLINGS: [(&str, char); 5] = [
        ("ａｌｉｃｅ", 'ａ'), // fullwidth
        ("Ⓐlice", 'Ⓐ'),       // circled
        ("𝐚𝐥𝐢𝐜𝐞", '𝐚'),       // mathematical bold
        ("àlice", 'à'),       // accented
        ("аlice", 'а'),       // Cyrillic a
    ];

    #[test]
    fn by_default_no_spelling_of_alice_beyond_ascii_is_a_name() {
        let domains = ["CONTOSO".to_string()];
        for r in [rules(true, &domains), rules(false, &domains)] {
            for (raw, first) in SPELLINGS {
                assert_eq!(
                    UserName::canonical(raw, &r),
                    Err(BadUserName::NotAscii {
                        position: 1,
                        character: first
                    }),
                    "{raw}"
                );
                // The position counts the name as given, the domain included.
                let full = format!("CONTOSO\\{raw}");
                assert_eq!(
                    UserName::canonical(&full, &r),
                    Err(BadUserName::NotAscii {
                        position: 9,
                        character: first
                    }),
                    "{full}"
                );
                assert!(UserName::canonical(&format!("{raw}@CONTOSO"), &r).is_err());
            }
        }
        // Not the first character: the one named is the one that is wrong.
        assert_eq!(
            UserName::canonical("alicе", &rules(true, &[])),
            Err(BadUserName::NotAscii {
                position: 5,
                character: 'е'
            })
        );
        // The message says what is wrong, where, and how to let such names in.
        let e = UserName::canonical("àlice", &rules(true, &[]))
            .unwrap_err()
            .to_string();
        for needle in [
            "character 1",
            "'à'",
            "U+00E0",
            "not ASCII",
            "[users] unicode = \"allow\"",
        ] {
            assert!(e.contains(needle), "{needle}: {e}");
        }
        // ASCII is what it was.
        for ok in ["alice", "a.b-c_d", "mach$", "x1"] {
            assert!(UserName::canonical(ok, &rules(true, &[])).is_ok(), "{ok}");
        }
        assert_eq!(
            UserName::canonical("-rf", &rules(true, &[])),
            Err(BadUserName::LeadingDash)
        );
    }

    #[test]
    fn with_unicode_allowed_compatibility_forms_are_refused_and_the_rest_look_like_alice() {
        let fold = unicode(true, &[]);
        // Not in NFKC as typed: the fullwidth, circled and mathematical spellings.
        for (raw, first) in &SPELLINGS[..3] {
            assert_eq!(
                UserName::canonical(raw, &fold),
                Err(BadUserName::NotNfkc {
                    position: 1,
                    character: *first
                }),
                "{raw}"
            );
            assert!(
                UserName::canonical(raw, &unicode(false, &[])).is_err(),
                "{raw}"
            );
        }
        // A separate combining accent is another spelling of the precomposed one.
        assert_eq!(
            UserName::canonical("a\u{300}lice", &fold),
            Err(BadUserName::NotNfkc {
                position: 2,
                character: '\u{300}'
            })
        );
        let e = UserName::canonical("ａｌｉｃｅ", &fold)
            .unwrap_err()
            .to_string();
        assert!(e.contains("U+FF41") && e.contains("NFKC"), "{e}");
        // The accented and the Cyrillic spelling are names, and look like alice: a store
        // that holds alice refuses them (mfa_core::names), and alice beside them.
        let alice = lookalike_key("alice");
        for (raw, _) in &SPELLINGS[3..] {
            let n = UserName::canonical(raw, &fold).unwrap();
            assert_eq!(n.as_str(), *raw);
            assert_eq!(lookalike_key(&n), alice, "{raw}");
            assert!(look_alike(&n, "alice") && look_alike("alice", &n), "{raw}");
        }
        // So do the spellings NFKC refuses, and every case of them.
        for raw in [
            "ａｌｉｃｅ",
            "Ⓐlice",
            "𝐚𝐥𝐢𝐜𝐞",
            "ÀLICE",
            "АLICE",
            "a\u{300}lice",
            "Alice",
        ] {
            assert_eq!(lookalike_key(raw), alice, "{raw}");
        }
        // Two ASCII names are two users whatever the skeleton makes of them (it maps m to
        // rn), and a name is not its own look-alike.
        assert_eq!(lookalike_key("admin"), lookalike_key("adrnin"));
        assert!(!look_alike("admin", "adrnin"));
        assert!(!look_alike("àlice", "àlice"));
        assert!(look_alike("àlice", "álice"));
        // Other names stay apart.
        for other in ["bob", "alicia", "jörg", "alice2"] {
            assert!(!look_alike("àlice", other), "{other}");
        }
        // A real name beyond ASCII is one.
        assert_eq!(
            UserName::canonical("JÖRG", &fold).map(|n| n.0).as_deref(),
            Ok("jörg")
        );
        assert_eq!(
            UserName::canonical("Łukasz", &fold).map(|n| n.0).as_deref(),
            Ok("łukasz")
        );
    }
}
