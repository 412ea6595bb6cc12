//! Maps byte offsets and key paths of a TOML text to lines, for error messages.

use std::ops::Range;

use toml_edit::{Document, Item, Table, TableLike, Value};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

pub fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A position while walking a parsed document along a key path.
enum Node<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value(&'a Value),
}

impl Node<'_> {
    fn span(&self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Table(t) => t.span(),
            Node::Value(v) => v.span(),
        }
    }
}

fn step<'a>(node: Node<'a>, seg: &Seg) -> Option<(Node<'a>, Option<Range<usize>>)> {
    match (node, seg) {
        (Node::Item(i), Seg::Key(k)) => {
            let (key, v) = i.as_table_like()?.get_key_value(k)?;
            Some((Node::Item(v), key.span()))
        }
        (Node::Table(t), Seg::Key(k)) => {
            let (key, v) = t.get_key_value(k)?;
            Some((Node::Item(v), key.span()))
        }
        (Node::Value(v), Seg::Key(k)) => {
            let (key, v) = v.as_inline_table()?.get_key_value(k)?;
            Some((Node::Item(v), key.span()))
        }
        (Node::Item(i), Seg::Index(n)) => {
            if let Some(aot) = i.as_array_of_tables() {
                let t = aot.get(*n)?;
                Some((Node::Table(t), t.span()))
            } else {
                let v = i.as_array()?.get(*n)?;
                Some((Node::Value(v), v.span()))
            }
        }
        (Node::Value(v), Seg::Index(n)) => {
            let v = v.as_array()?.get(*n)?;
            Some((Node::Value(v), v.span()))
        }
        (Node::Table(_), Seg::Index(_)) => None,
    }
}

/// The line where the value (or, failing that, the key) at `path` is written. Walks as far as
/// the path exists, so a missing key still points at its table.
pub fn line_of_path(text: &str, path: &[Seg]) -> Option<usize> {
    let doc = Document::parse(text).ok()?;
    let mut node = Node::Item(doc.as_item());
    let mut best = None;
    for seg in path {
        match step(node, seg) {
            Some((next, span)) => {
                best = span.or(best);
                node = next;
            }
            None => return best.map(|s| line_of(text, s.start)),
        }
    }
    node.span().or(best).map(|s| line_of(text, s.start))
}

/// The key path whose key or value covers `offset`, and its line: what a parse error is
/// about.
///
/// Errors inside an array are reported by toml at the array; `message` (which quotes the bad
/// value) picks the element, so the line is the element's.
pub fn segs_at(text: &str, offset: usize, message: &str) -> Option<(Vec<Seg>, usize)> {
    let doc = Document::parse(text).ok()?;
    let mut path = Vec::new();
    if !find(doc.as_item(), offset, &mut path) {
        return None;
    }
    let mut line = line_of(text, offset);
    if let Some(Node::Item(item)) = walk(&doc, &path)
        && let Some(arr) = item.as_array()
    {
        let hit = arr.iter().enumerate().find(|(_, v)| {
            v.as_str()
                .is_some_and(|s| message.contains(&format!("{s:?}")))
        });
        if let Some((i, v)) = hit {
            path.push(Seg::Index(i));
            line = v.span().map_or(line, |s| line_of(text, s.start));
        }
    }
    Some((path, line))
}

fn walk<'a>(doc: &'a Document<&str>, path: &[Seg]) -> Option<Node<'a>> {
    let mut node = Node::Item(doc.as_item());
    for seg in path {
        node = step(node, seg)?.0;
    }
    Some(node)
}

fn find(item: &Item, offset: usize, path: &mut Vec<Seg>) -> bool {
    if let Some(aot) = item.as_array_of_tables() {
        for (i, t) in aot.iter().enumerate() {
            path.push(Seg::Index(i));
            // A key of the table, or the table itself (its header: "missing field").
            if find_in_table(t, offset, path) || t.span().is_some_and(|s| s.contains(&offset)) {
                return true;
            }
            path.pop();
        }
        return false;
    }
    if let Some(t) = item.as_table() {
        return find_in_table(t, offset, path) || t.span().is_some_and(|s| s.contains(&offset));
    }
    if let Some(arr) = item.as_array() {
        if let Some(i) = arr
            .iter()
            .position(|v| v.span().is_some_and(|s| s.contains(&offset)))
        {
            path.push(Seg::Index(i));
        }
        return true;
    }
    match item.as_table_like() {
        Some(t) => find_in_table(t, offset, path),
        None => true,
    }
}

fn find_in_table(t: &dyn TableLike, offset: usize, path: &mut Vec<Seg>) -> bool {
    for (k, v) in t.iter() {
        path.push(Seg::Key(k.to_string()));
        if v.is_table() || v.is_array_of_tables() {
            // Standard tables and arrays of tables are not contiguous: search inside.
            if find(v, offset, path) {
                return true;
            }
        } else if let Some((key, _)) = t.get_key_value(k)
            && let (Some(a), Some(b)) = (key.span(), v.span())
            && (a.start..b.end.max(a.start + 1)).contains(&offset)
        {
            find(v, offset, path);
            return true;
        }
        path.pop();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "# c\n[lockout]\nmax_failures = 5\nwindow = \"5x\"\n\n[[radius.clients]]\nname = \"a\"\naddress = \"10.0.0.0/8\"\n\n[[radius.clients]]\nname = \"b\"\naddress = \"bad\"\n[policy]\ntrusted_networks = [\"10.0.0.0/8\",\n  \"bad\"]\n";

    #[test]
    fn finds_lines_of_paths() {
        let k = |s: &str| Seg::Key(s.into());
        assert_eq!(line_of_path(T, &[k("lockout"), k("window")]), Some(4));
        assert_eq!(
            line_of_path(T, &[k("radius"), k("clients"), Seg::Index(1), k("address")]),
            Some(12)
        );
        assert_eq!(
            line_of_path(T, &[k("policy"), k("trusted_networks"), Seg::Index(1)]),
            Some(15)
        );
    }

    fn key_at(text: &str, offset: usize, message: &str) -> Option<(String, usize)> {
        segs_at(text, offset, message).map(|(path, line)| (path_string(&path), line))
    }

    #[test]
    fn finds_key_at_offset() {
        let off = T.find("\"5x\"").unwrap();
        assert_eq!(key_at(T, off, "").unwrap(), ("lockout.window".into(), 4));
        let off = T.find("\"bad\"").unwrap();
        assert_eq!(
            key_at(T, off, "").unwrap(),
            ("radius.clients[1].address".into(), 12)
        );
        let off = T.find("trusted_networks").unwrap();
        assert_eq!(
            key_at(T, off, "invalid network \"bad\"").unwrap(),
            ("policy.trusted_networks[1]".into(), 15)
        );
    }
}
