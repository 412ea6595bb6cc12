//! The typed parse of `mfa.toml`, reporting every type and format error in one run.
//!
//! serde stops at the first value it cannot read, so a file with three mistakes took three
//! runs of `mfactl config check`. Here each error found is recorded with its line and key,
//! the value is taken out of a copy of the document (the key, the array element, or, where
//! a required key went with it, the table that holds it), and the parse runs again, until
//! it succeeds or nothing more can be taken out. Every message is serde's own, located in
//! the file as written.
//!
//! The configuration this yields has defaults where the bad values were: it is for finding
//! more problems (the cross-field checks of the tables that had none), never for use.

use std::path::Path;

use toml_edit::{DocumentMut, Item, TableLike, Value};

use crate::error::Problem;
use crate::locate::{Seg, line_of, line_of_path, path_string, segs_at};
use crate::schema::Config;

/// Bound on the errors one run collects (and so on the parses it makes).
const MAX_ERRORS: usize = 100;

/// What [`deserialize`] found.
pub(crate) struct Lenient {
    /// The configuration with every bad value taken out, or `None` when the file could not
    /// be read that far (a TOML syntax error, an error serde could not place).
    pub config: Option<Config>,
    /// One problem per bad value, in the order found.
    pub problems: Vec<Problem>,
    /// The paths taken out, as written in the file.
    pub removed: Vec<Vec<Seg>>,
}

/// The typed parse of `text`, every error of it collected (see the module comment).
pub(crate) fn deserialize(text: &str, path: &Path) -> Lenient {
    let mut out = Lenient {
        config: None,
        problems: Vec::new(),
        removed: Vec::new(),
    };
    let first = match toml::from_str::<Config>(text) {
        Ok(cfg) => {
            out.config = Some(cfg);
            return out;
        }
        Err(e) => e,
    };
    // A file toml_edit cannot read is a syntax error: one problem, where it is.
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        out.problems.push(Problem {
            file: path.into(),
            line: first.span().map(|s| line_of(text, s.start)),
            key: None,
            message: first.message().trim().to_string(),
        });
        return out;
    };
    let mut err = first;
    let mut current = text.to_string();
    loop {
        // An error serde cannot place: reported as it is (with its line while the text is
        // still the file's), and the search ends.
        let unplaced = |out: &mut Lenient, err: &toml::de::Error| {
            let line = err
                .span()
                .filter(|_| out.removed.is_empty())
                .map(|s| line_of(text, s.start));
            out.problems.push(Problem {
                file: path.into(),
                line,
                key: None,
                message: err.message().trim().to_string(),
            });
        };
        let Some(span) = err.span() else {
            unplaced(&mut out, &err);
            return out;
        };
        let Some((segs, _)) = segs_at(&current, span.start, err.message()) else {
            unplaced(&mut out, &err);
            return out;
        };
        let original = to_original(&segs, &out.removed);
        // A required key taken out earlier leaves its table unreadable ("missing field"):
        // that is the same mistake, already reported; the table goes too.
        let follows_removal = out
            .removed
            .iter()
            .any(|r| r.len() > original.len() && r.starts_with(&original));
        if !follows_removal {
            out.problems.push(problem_at(text, path, &err, &original));
        }
        if segs.is_empty() || !remove(&mut doc, &segs) || out.problems.len() >= MAX_ERRORS {
            return out;
        }
        out.removed.push(original);
        current = doc.to_string();
        match toml::from_str::<Config>(&current) {
            Ok(cfg) => {
                out.config = Some(cfg);
                return out;
            }
            Err(e) => err = e,
        }
    }
}

/// The problem of `err`, placed at `original` in the file as written.
fn problem_at(text: &str, path: &Path, err: &toml::de::Error, original: &[Seg]) -> Problem {
    Problem {
        file: path.into(),
        line: line_of_path(text, original),
        key: (!original.is_empty()).then(|| path_string(original)),
        message: err.message().trim().to_string(),
    }
}

/// A path in the document with `removed` taken out, as it is written in the original: each
/// array index counts the elements removed before it.
fn to_original(segs: &[Seg], removed: &[Vec<Seg>]) -> Vec<Seg> {
    let mut out: Vec<Seg> = Vec::with_capacity(segs.len());
    for seg in segs {
        match seg {
            Seg::Key(k) => out.push(Seg::Key(k.clone())),
            Seg::Index(m) => {
                let mut gone: Vec<usize> = removed
                    .iter()
                    .filter(|r| r.len() == out.len() + 1 && r.starts_with(&out))
                    .filter_map(|r| match r.last() {
                        Some(Seg::Index(i)) => Some(*i),
                        _ => None,
                    })
                    .collect();
                gone.sort_unstable();
                let mut i = *m;
                for g in gone {
                    if g <= i {
                        i += 1;
                    }
                }
                out.push(Seg::Index(i));
            }
        }
    }
    out
}

/// Takes the item at `segs` out of `doc`; says whether there was one.
fn remove(doc: &mut DocumentMut, segs: &[Seg]) -> bool {
    remove_item(doc.as_item_mut(), segs)
}

fn remove_item(item: &mut Item, segs: &[Seg]) -> bool {
    match (segs.first(), item) {
        (Some(Seg::Index(n)), Item::ArrayOfTables(a)) => {
            if segs.len() == 1 {
                let there = *n < a.len();
                if there {
                    a.remove(*n);
                }
                there
            } else {
                a.get_mut(*n)
                    .is_some_and(|t| remove_in_table(t, &segs[1..]))
            }
        }
        (Some(Seg::Index(_)), Item::Value(v)) => remove_value(v, segs),
        (Some(Seg::Key(_)), it) => it
            .as_table_like_mut()
            .is_some_and(|t| remove_in_table(t, segs)),
        _ => false,
    }
}

fn remove_in_table(t: &mut dyn TableLike, segs: &[Seg]) -> bool {
    let Some((Seg::Key(k), rest)) = segs.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return t.remove(k).is_some();
    }
    t.get_mut(k).is_some_and(|next| remove_item(next, rest))
}

fn remove_value(v: &mut Value, segs: &[Seg]) -> bool {
    match (segs.split_first(), v) {
        (Some((Seg::Index(n), rest)), Value::Array(a)) => {
            if rest.is_empty() {
                let there = *n < a.len();
                if there {
                    a.remove(*n);
                }
                there
            } else {
                a.get_mut(*n).is_some_and(|next| remove_value(next, rest))
            }
        }
        (Some((Seg::Key(_), _)), Value::InlineTable(t)) => remove_in_table(t, segs),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{ConfigError, parse};

    fn problems(text: &str) -> Vec<String> {
        match parse(text, Path::new("/etc/mfa/mfa.toml")) {
            Ok(_) => Vec::new(),
            Err(ConfigError { problems }) => problems.iter().map(ToString::to_string).collect(),
        }
    }

    /// The administrator's file from issue 21: three mistakes, one run.
    #[test]
    fn every_type_and_format_error_in_one_run() {
        let text = "[lockout]\nwindow = \"5 minutes\"\n\n[policy]\ntrusted_networks = [\"10.0.0.0/8\", \"192.168.1.1/24\"]\n\n[radius]\nmode = \"codeonly\"\n";
        let p = problems(text);
        assert_eq!(p.len(), 3, "{p:#?}");
        assert!(
            p[0].starts_with("/etc/mfa/mfa.toml:2: lockout.window: invalid duration \"5 minutes\""),
            "{p:#?}"
        );
        assert!(
            p[1].starts_with(
                "/etc/mfa/mfa.toml:5: policy.trusted_networks[1]: invalid network \"192.168.1.1/24\": host bits are set"
            ),
            "{p:#?}"
        );
        assert!(
            p[2].starts_with("/etc/mfa/mfa.toml:8: radius.mode: unknown variant `codeonly`"),
            "{p:#?}"
        );
    }

    /// Elements of one array, keys of arrays of tables (indices as written, after one before
    /// them was taken out), unknown keys, and a required key whose loss is not a second
    /// problem.
    #[test]
    fn indices_and_tables_are_named_as_written() {
        let text = "[policy]\ntrusted_networks = [\"bad1\", \"10.0.0.0/8\",\n  \"bad2\"]\ncolour = \"blue\"\n\n[[radius.clients]]\nname = \"a\"\naddress = \"nonsense\"\nsecret = \"0123456789abcdef\"\n\n[[radius.clients]]\nname = \"b\"\naddress = \"192.0.2.1\"\nmode = \"sometimes\"\n";
        let p = problems(text);
        let want = [
            ":2: policy.trusted_networks[0]: invalid network \"bad1\"",
            ":3: policy.trusted_networks[2]: invalid network \"bad2\"",
            ":4: policy.colour: unknown field `colour`",
            ":8: radius.clients[0].address: invalid network \"nonsense\"",
            ":14: radius.clients[1].mode: unknown variant `sometimes`",
        ];
        assert_eq!(p.len(), want.len(), "{p:#?}");
        for w in want {
            assert!(p.iter().any(|p| p.contains(w)), "{w} not in {p:#?}");
        }
    }

    /// A type error and a cross-field problem in another table: both in one run; none
    /// made up from the default that stands in for the bad value.
    #[test]
    fn cross_field_checks_run_on_the_tables_without_type_errors() {
        let text =
            "[lockout]\nwindow = 5\n\n[radius]\nmode = \"append\"\nfirst_factor = \"none\"\n";
        let p = problems(text);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].contains(":2: lockout.window"), "{p:#?}");
        assert!(p[1].contains(":6: radius.first_factor"), "{p:#?}");
        // A bad mode: the first_factor check (which depends on it) is not made.
        let p = problems("[radius]\nmode = \"appendd\"\nfirst_factor = \"none\"\n");
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].contains("radius.mode"), "{p:#?}");
    }

    /// A required key missing from the file is a problem of its table, named and placed;
    /// the next table is still read.
    #[test]
    fn a_missing_required_key_names_its_table() {
        let text = "[[radius.clients]]\nname = \"a\"\n\n[[radius.clients]]\nname = \"b\"\naddress = \"x\"\n";
        let p = problems(text);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(
            p[0].starts_with("/etc/mfa/mfa.toml:1: radius.clients[0]: missing field `address`"),
            "{p:#?}"
        );
        assert!(
            p[1].starts_with("/etc/mfa/mfa.toml:6: radius.clients[1].address"),
            "{p:#?}"
        );
    }

    /// A syntax error is one problem at its line (nothing after it can be read).
    #[test]
    fn a_syntax_error_is_one_problem() {
        let p = problems("[lockout]\nwindow = \"5m\nmax_failures = x\n");
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].starts_with("/etc/mfa/mfa.toml:2"), "{p:#?}");
    }
}
