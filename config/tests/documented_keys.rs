//! Every key of the schema is documented, with its meaning, in docs/CONFIG.md and in the man
//! page mfa.toml(5) (packaging/deb/man/mfa.toml.5). The keys are read from the schema
//! itself: serde names every field of a table in its "unknown field" error, and a key whose
//! value may be a table of its own is probed the same way, so a key added to the schema and
//! to neither document fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

/// Where a table sits: a plain table (`[radius.radsec]`), an array of tables
/// (`[[radius.clients]]`), or a table inside each entry of one (`[policy.rules.reply]`,
/// written `reply = { ... }` on the entry).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Root,
    Table,
    Array,
    TableInArray,
}

/// The TOML of `body` inside the table `path`.
fn inside(path: &str, kind: Kind, body: &str) -> String {
    match kind {
        Kind::Root => format!("{body}\n"),
        Kind::Table => format!("[{path}]\n{body}\n"),
        Kind::Array => format!("[[{path}]]\n{body}\n"),
        Kind::TableInArray => {
            let parent = path.rsplit_once('.').map_or(path, |(p, _)| p);
            format!("[[{parent}]]\n[{path}]\n{body}\n")
        }
    }
}

/// The field names serde lists when a table gets the unknown key `zzz_probe`; `None` when
/// the value is no table with named fields.
fn fields(text: &str) -> Option<Vec<String>> {
    let e = mfa_config::parse(text, Path::new("probe.toml")).err()?;
    let m = &e.problems.first()?.message;
    if !m.starts_with("unknown field `zzz_probe`") {
        return None;
    }
    let (_, expected) = m.split_once("expected")?;
    Some(
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

/// Every key of the schema: (table path, kind, key).
fn schema_keys() -> Vec<(String, Kind, String)> {
    let mut out = Vec::new();
    let mut todo = vec![(String::new(), Kind::Root)];
    while let Some((path, kind)) = todo.pop() {
        let keys = fields(&inside(&path, kind, "zzz_probe = 1"))
            .unwrap_or_else(|| panic!("[{path}]: no field list"));
        assert!(!keys.is_empty(), "[{path}]");
        for k in keys {
            let sub = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            let as_table = inside(&path, kind, &format!("{k} = {{ zzz_probe = 1 }}"));
            let as_array = inside(&path, kind, &format!("{k} = [{{ zzz_probe = 1 }}]"));
            if fields(&as_table).is_some() {
                assert!(
                    kind != Kind::TableInArray,
                    "a table inside [{path}] of an array: {k}"
                );
                todo.push((
                    sub,
                    if kind == Kind::Array {
                        Kind::TableInArray
                    } else {
                        Kind::Table
                    },
                ));
            } else if fields(&as_array).is_some() {
                assert!(
                    kind != Kind::Array && kind != Kind::TableInArray,
                    "an array inside [[{path}]]: {k}"
                );
                todo.push((sub, Kind::Array));
            } else {
                assert!(kind != Kind::Root, "a key outside every table: {k}");
                out.push((path.clone(), kind, k));
            }
        }
    }
    out.sort_by(|a, b| (&a.0, &a.2).cmp(&(&b.0, &b.2)));
    out
}

fn read(rel: &str) -> String {
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::read_to_string(top.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The text of the sections of `doc` (split before each line starting with `split`) whose
/// heading names the table.
fn sections<'a>(doc: &'a str, split: &str, heading: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(at) = rest.find(split) {
        let body = &rest[at + split.len()..];
        let end = body.find(split).unwrap_or(body.len());
        let section = &body[..end];
        if section.lines().next().unwrap_or("").contains(heading) {
            out.push(section);
        }
        rest = &body[end..];
    }
    out
}

#[test]
fn the_schema_has_the_tables_the_documents_describe() {
    let keys = schema_keys();
    let tables: std::collections::BTreeSet<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    let want = [
        "admin",
        "admin.groups",
        "audit",
        "directory",
        "lockout",
        "policy",
        "policy.rules",
        "policy.rules.reply",
        "portal",
        "push",
        "radius",
        "radius.clients",
        "radius.radsec",
        "remote",
        "store",
        "totp",
        "users",
    ];
    assert_eq!(tables.into_iter().collect::<Vec<_>>(), want);
    assert!(keys.len() > 80, "{}", keys.len());
}

#[test]
fn every_key_is_in_config_md() {
    let doc = read("docs/CONFIG.md");
    let mut missing = Vec::new();
    for (table, kind, key) in schema_keys() {
        let heading = match kind {
            Kind::Array => format!("[[{table}]]"),
            _ => format!("`[{table}]`"),
        };
        let found = sections(&doc, "\n## ", &heading)
            .iter()
            .any(|s| s.contains(&format!("`{key}`")));
        if !found {
            missing.push(format!("{table}.{key}"));
        }
    }
    assert!(
        missing.is_empty(),
        "keys docs/CONFIG.md does not describe in their table's section: {missing:?}"
    );
}

/// In mfa.toml(5) each table is a subsection (`.SS [table]`) and each key an entry
/// (`.TP`, `.B key`, then at least one line of text saying what it means).
#[test]
fn every_key_is_in_the_man_page_with_its_meaning() {
    let page = read("packaging/deb/man/mfa.toml.5");
    let mut missing = Vec::new();
    for (table, kind, key) in schema_keys() {
        let heading = match kind {
            Kind::Array => format!("[[{table}]]"),
            _ => format!("[{table}]"),
        };
        let found = sections(&page, "\n.SS ", &heading).iter().any(|s| {
            let lines: Vec<&str> = s.lines().collect();
            lines.windows(3).any(|w| {
                w[0] == ".TP"
                    && (w[1] == format!(".B {key}") || w[1].starts_with(&format!(".B {key} ")))
                    && !w[2].starts_with(".TP")
                    && !w[2].trim().is_empty()
            })
        });
        if !found {
            missing.push(format!("{table}.{key}"));
        }
    }
    assert!(
        missing.is_empty(),
        "keys mfa.toml(5) does not describe in their table's subsection: {missing:?}"
    );
}
