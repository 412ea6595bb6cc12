//! Comment-preserving edits of `policy.trusted_networks` (`mfactl trusted add|remove`) and
//! `policy.enforce_from` (`mfactl go-live set|clear`).
//!
//! The edited text is validated as a whole before anything is written, and written
//! atomically (temporary file in the same directory, fsync, rename, fsync of the directory)
//! with the original owner and mode, so a crash leaves either the old file or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use toml_edit::{Array, DocumentMut, Item, Table, Value};

use crate::values::Cidr;
use crate::{ConfigError, Problem, parse, read_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedEdit {
    Add(Cidr),
    Remove(Cidr),
}

fn problem(path: &Path, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::single(Problem {
        file: path.into(),
        line: None,
        key: Some(format!("policy.{key}")),
        message: message.into(),
    })
}

/// Applies one edit to the file at `path`. Nothing is written unless the current file is a
/// valid configuration, the edit applies, and the result is a valid configuration too.
pub fn edit_trusted_networks(path: &Path, edit: TrustedEdit) -> Result<(), ConfigError> {
    edit_file(path, |text| apply(text, path, edit))
}

/// An edit of the exemptions, `[policy] exempt_users` or `exempt_groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExemptEdit {
    AddUser(String),
    RemoveUser(String),
    AddGroup(String),
    RemoveGroup(String),
}

impl ExemptEdit {
    /// The key under `[policy]` it edits, and the entry.
    pub fn target(&self) -> (&'static str, &str) {
        match self {
            ExemptEdit::AddUser(u) | ExemptEdit::RemoveUser(u) => ("exempt_users", u),
            ExemptEdit::AddGroup(g) | ExemptEdit::RemoveGroup(g) => ("exempt_groups", g),
        }
    }

    fn adds(&self) -> bool {
        matches!(self, ExemptEdit::AddUser(_) | ExemptEdit::AddGroup(_))
    }
}

/// Applies one edit of the exemptions to the file at `path`, checked and written like
/// [`edit_trusted_networks`] (an entry that is no valid user or group name is refused by
/// the validation of the result).
pub fn edit_exemptions(path: &Path, edit: &ExemptEdit) -> Result<(), ConfigError> {
    edit_file(path, |text| apply_exemptions(text, path, edit))
}

/// The exemption edit on text alone (no I/O).
pub fn apply_exemptions(text: &str, path: &Path, edit: &ExemptEdit) -> Result<String, ConfigError> {
    let (key, entry) = edit.target();
    let entry = entry.trim();
    if entry.is_empty() {
        return Err(problem(path, key, "an empty name"));
    }
    edit_list(text, path, key, entry, edit.adds(), |v| v == entry)
}

/// Reads the file at `path` (through symlinks), refuses it if it is not a valid
/// configuration, applies `change` to its text, and writes the result atomically only if
/// that is a valid configuration too.
fn edit_file(
    path: &Path,
    change: impl FnOnce(&str) -> Result<String, ConfigError>,
) -> Result<(), ConfigError> {
    let real = fs::canonicalize(path)
        .map_err(|e| ConfigError::file(path, format!("cannot resolve the path: {e}")))?;
    let text = read_text(&real)?;
    // Refuse to edit a file that is already broken: the administrator must see and fix that.
    parse(&text, path)?;
    let new_text = change(&text)?;
    parse(&new_text, path)?;
    write_atomically(&real, new_text.as_bytes())
        .map_err(|e| ConfigError::file(path, format!("cannot write the configuration: {e}")))
}

/// The edit on text alone (no I/O).
pub fn apply(text: &str, path: &Path, edit: TrustedEdit) -> Result<String, ConfigError> {
    let c = edit_cidr(edit);
    edit_list(
        text,
        path,
        "trusted_networks",
        &c.to_string(),
        matches!(edit, TrustedEdit::Add(_)),
        |v| v.parse::<Cidr>().is_ok_and(|x| x == c),
    )
}

/// Adds `entry` to, or removes the entry `same` matches from, the array `[policy] key`,
/// keeping the comments and the list's layout. Adding what is listed, or removing what is
/// not, is refused.
fn edit_list(
    text: &str,
    path: &Path,
    key: &str,
    entry: &str,
    add: bool,
    same: impl Fn(&str) -> bool,
) -> Result<String, ConfigError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| ConfigError::file(path, format!("cannot parse: {e}")))?;
    let policy = doc
        .entry("policy")
        .or_insert_with(|| Item::Table(Table::new()));
    let Some(policy) = policy.as_table_like_mut() else {
        return Err(problem(path, key, "[policy] is not a table"));
    };
    if policy.get(key).is_none() {
        policy.insert(key, Item::Value(Value::Array(Array::new())));
    }
    let Some(arr) = policy.get_mut(key).and_then(|i| i.as_array_mut()) else {
        return Err(problem(path, key, "is not an array"));
    };
    let position = arr.iter().position(|v| v.as_str().is_some_and(&same));
    match (add, position) {
        (true, Some(_)) => {
            return Err(problem(path, key, format!("{entry} is already listed")));
        }
        (true, None) => {
            // Follow the layout of the list: one per line stays one per line.
            let decor = arr
                .get(arr.len().wrapping_sub(1))
                .map(|v| v.decor().clone());
            arr.push(entry);
            if let (Some(decor), Some(last)) = (decor, arr.get_mut(arr.len() - 1)) {
                *last.decor_mut() = decor;
            }
        }
        (false, None) => return Err(problem(path, key, format!("{entry} is not listed"))),
        (false, Some(i)) => {
            let first_decor =
                (i == 0 && arr.len() > 1).then(|| arr.get(0).map(|v| v.decor().clone()));
            arr.remove(i);
            if let Some(Some(d)) = first_decor
                && let Some(v) = arr.get_mut(0)
            {
                *v.decor_mut() = d;
            }
        }
    }
    Ok(doc.to_string())
}

/// What `mfactl go-live` writes into `[policy] enforce_from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoLiveEdit {
    /// A date or date-time as TOML writes it (`2027-03-01`, `2027-03-01T08:00:00Z`).
    Date(String),
    /// `"never"`: the roll-out is not scheduled.
    Never,
}

/// Sets `[policy] enforce_from` in the file at `path`, keeping its comments; checked and
/// written like [`edit_trusted_networks`].
pub fn edit_enforce_from(path: &Path, edit: &GoLiveEdit) -> Result<(), ConfigError> {
    edit_file(path, |text| apply_enforce_from(text, path, edit))
}

/// The go-live edit on text alone (no I/O).
pub fn apply_enforce_from(
    text: &str,
    path: &Path,
    edit: &GoLiveEdit,
) -> Result<String, ConfigError> {
    let key_problem = |message: String| {
        ConfigError::single(Problem {
            file: path.into(),
            line: None,
            key: Some("policy.enforce_from".into()),
            message,
        })
    };
    let mut value = match edit {
        GoLiveEdit::Never => Value::from("never"),
        GoLiveEdit::Date(d) => match d.trim().parse::<Value>() {
            Ok(v @ Value::Datetime(_)) => v,
            _ => {
                return Err(key_problem(format!(
                    "{d:?} is not a date such as 2027-03-01 or 2027-03-01T08:00:00Z"
                )));
            }
        },
    };
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| ConfigError::file(path, format!("cannot parse: {e}")))?;
    let policy = doc
        .entry("policy")
        .or_insert_with(|| Item::Table(Table::new()));
    let Some(policy) = policy.as_table_like_mut() else {
        return Err(key_problem("[policy] is not a table".into()));
    };
    // In place, so the comments above the key and after the old value stay.
    match policy.get_mut("enforce_from") {
        Some(item) => {
            if let Some(old) = item.as_value() {
                *value.decor_mut() = old.decor().clone();
            }
            *item = Item::Value(value);
        }
        None => {
            policy.insert("enforce_from", Item::Value(value));
        }
    }
    Ok(doc.to_string())
}

fn edit_cidr(e: TrustedEdit) -> Cidr {
    match e {
        TrustedEdit::Add(c) | TrustedEdit::Remove(c) => c,
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let meta = fs::metadata(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp_path = None;
    for i in 0..100u32 {
        let candidate = dir.join(format!(".{name}.tmp{}.{i}", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&candidate)
        {
            Ok(f) => {
                tmp_path = Some((candidate, f));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    let Some((tmp, mut f)) = tmp_path else {
        return Err(std::io::Error::other("no free temporary file name"));
    };
    let result = (|| {
        f.write_all(bytes)?;
        // Owner first (only root may give a file away), then mode.
        if std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid())).is_err()
            && nix_is_root()
        {
            return Err(std::io::Error::other("cannot keep the file's owner"));
        }
        f.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn nix_is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "# Site config\n[policy]\n# office and VPN\ntrusted_networks = [\n  \"10.0.0.0/8\",  # HQ\n  \"192.168.10.0/24\",\n]\nlocal_logins = \"require\"\n";

    fn add(t: &str, c: &str) -> Result<String, ConfigError> {
        apply(t, Path::new("x.toml"), TrustedEdit::Add(c.parse().unwrap()))
    }

    #[test]
    fn add_keeps_comments_and_layout() {
        let out = add(T, "2001:db8::/32").unwrap();
        assert!(out.contains("# Site config"));
        assert!(out.contains("# office and VPN"));
        assert!(out.contains("# HQ"));
        assert!(out.contains("\n  \"2001:db8::/32\""), "{out}");
        assert!(crate::parse(&out, Path::new("x.toml")).is_ok());
    }

    #[test]
    fn add_duplicate_and_remove_missing_fail() {
        assert!(add(T, "10.0.0.0/8").is_err());
        assert!(
            apply(
                T,
                Path::new("x"),
                TrustedEdit::Remove("172.16.0.0/12".parse().unwrap())
            )
            .is_err()
        );
    }

    #[test]
    fn remove_keeps_the_rest() {
        let out = apply(
            T,
            Path::new("x"),
            TrustedEdit::Remove("10.0.0.0/8".parse().unwrap()),
        )
        .unwrap();
        assert!(!out.contains("10.0.0.0/8"));
        assert!(out.contains("192.168.10.0/24"));
        assert!(out.contains("# office and VPN"));
    }

    #[test]
    fn add_to_file_without_policy() {
        let out = add("# empty\n", "10.0.0.0/8").unwrap();
        let c = crate::parse(&out, Path::new("x")).unwrap();
        assert_eq!(c.policy.trusted_networks.len(), 1);
        assert!(out.contains("# empty\n"));
    }

    #[test]
    fn go_live_edits_keep_comments_and_round_trip() {
        let t = "# site\n[policy]\n# Go-live: not scheduled yet.\nenforce_from = \"never\"   # see CONFIG.md\ngrace_days = 14\n";
        let x = Path::new("x.toml");
        let out = apply_enforce_from(t, x, &GoLiveEdit::Date("2027-03-01".into())).unwrap();
        assert!(
            out.contains(
                "# Go-live: not scheduled yet.\nenforce_from = 2027-03-01   # see CONFIG.md\n"
            ),
            "{out}"
        );
        let c = crate::parse(&out, x).unwrap();
        assert_eq!(c.policy.enforce_from.date(), Some(1_803_859_200));
        assert_eq!(c.policy.grace_days, 14);
        let back = apply_enforce_from(&out, x, &GoLiveEdit::Never).unwrap();
        assert_eq!(back, t);
        // A date-time, and a file without the key or without [policy].
        let out = apply_enforce_from(
            "[policy]\n",
            x,
            &GoLiveEdit::Date("2027-03-01T08:00:00Z".into()),
        )
        .unwrap();
        assert_eq!(
            crate::parse(&out, x).unwrap().policy.enforce_from.date(),
            Some(1_803_888_000)
        );
        let out = apply_enforce_from("# empty\n", x, &GoLiveEdit::Never).unwrap();
        assert_eq!(
            crate::parse(&out, x).unwrap().policy.enforce_from,
            crate::GoLive::Never
        );
        // Not a date: refused, naming the key.
        for bad in [
            "soon",
            "2027-13-01",
            "\"2027-03-01\"",
            "2027-03-01\n[x]",
            "08:00:00",
        ] {
            let e = apply_enforce_from(t, x, &GoLiveEdit::Date(bad.into()))
                .and_then(|o| crate::parse(&o, x).map(|_| o))
                .unwrap_err();
            assert_eq!(
                e.problems[0].key.as_deref(),
                Some("policy.enforce_from"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn exemption_edits_keep_comments_and_refuse_what_the_rules_refuse() {
        let t = "# site\n[policy]\nexempt_users = [\"backup\"]  # the backup job\n";
        let x = Path::new("x.toml");
        let out = apply_exemptions(t, x, &ExemptEdit::AddUser("svc-scan".into())).unwrap();
        assert!(out.contains("# the backup job"), "{out}");
        let c = crate::parse(&out, x).unwrap();
        assert_eq!(c.policy.exempt_users, ["backup", "svc-scan"]);
        let out = apply_exemptions(&out, x, &ExemptEdit::AddGroup("svc".into())).unwrap();
        assert_eq!(crate::parse(&out, x).unwrap().policy.exempt_groups, ["svc"]);
        let out = apply_exemptions(&out, x, &ExemptEdit::RemoveUser("backup".into())).unwrap();
        assert_eq!(
            crate::parse(&out, x).unwrap().policy.exempt_users,
            ["svc-scan"]
        );
        // Twice, absent, empty: refused, naming the key.
        for (edit, key) in [
            (
                ExemptEdit::AddUser("svc-scan".into()),
                "policy.exempt_users",
            ),
            (
                ExemptEdit::RemoveGroup("nope".into()),
                "policy.exempt_groups",
            ),
            (ExemptEdit::AddUser(" ".into()), "policy.exempt_users"),
        ] {
            let e = apply_exemptions(&out, x, &edit).unwrap_err();
            assert_eq!(e.problems[0].key.as_deref(), Some(key), "{edit:?}: {e}");
        }
        // A name the rules refuse: the edited text is no valid configuration.
        let bad = apply_exemptions(t, x, &ExemptEdit::AddUser("a b".into())).unwrap();
        assert!(crate::parse(&bad, x).is_err());
    }

    #[test]
    fn file_edit_is_atomic_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mfa.toml");
        fs::write(&p, T).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        edit_trusted_networks(&p, TrustedEdit::Add("172.16.0.0/12".parse().unwrap())).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o640);
        assert!(fs::read_to_string(&p).unwrap().contains("172.16.0.0/12"));
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left behind"
        );
    }
}
