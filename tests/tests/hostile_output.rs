//! `mfactl report` and `mfactl log` with hostile strings in the store (names, addresses,
//! services and reasons as logins and gateways wrote them, seeded here through sqlite3): the
//! tables show every control and bidi character escaped, the CSV neutralises formulas, JSON
//! escapes controls and keeps the data.

use std::process::Command;

use mfa_e2e::{Site, fresh_key, require_tool, text};

fn sqlite(site: &Site, sql: &str) {
    require_tool("sqlite3");
    let o = Command::new("sqlite3")
        .arg(site.db())
        .arg(sql)
        .output()
        .unwrap();
    assert!(o.status.success(), "sqlite3: {}", text(&o));
}

fn out(site: &Site, args: &[&str]) -> String {
    let o = site.mfactl(args);
    assert!(o.status.success(), "mfactl {args:?}: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// No raw control character but the line ends, no bidi override, and no line that a
/// hostile value started.
fn assert_inert(what: &str, s: &str) {
    for c in s.chars() {
        assert!(
            c == '\n' || !(c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{what}: raw {c:?} in:\n{s}"
        );
    }
    assert!(
        !s.lines().any(|l| l.starts_with("FAKE")),
        "{what}: a forged line:\n{s}"
    );
}

#[test]
fn report_and_log_escape_hostile_strings_and_neutralise_formulas() {
    let site = Site::new("");
    site.enroll("plain", &fresh_key());
    // `@evil` is no user name the front ends accept any more ([users]: an unlisted domain),
    // but a store from an older version may hold it: the report must still show it inert.
    sqlite(
        &site,
        "INSERT INTO users (name, algorithm, digits, period, first_seen) \
         VALUES ('@evil', 'SHA1', 6, 30, strftime('%s','now'));
         INSERT INTO audit (time, user, service, decision, reason) \
         VALUES (strftime('%s','now'), '@evil', 'mfactl', 'enroll', 'unconfirmed');
         UPDATE users SET last_ip = '10.0.0.1' || char(27) || '[2J' || char(10) || 'FAKE ROW', \
         last_outcome = '=HYPERLINK(\"http://x\")' || char(8238) || 'txt' WHERE name = 'plain';
         INSERT INTO audit (time, user, service, client_ip, decision, reason) VALUES \
         (strftime('%s','now'), 'bad' || char(10) || 'FAKE allow', \
          '+svc' || char(27) || ']0;pwned' || char(7), char(8238) || '4.3.2.1', 'allow', '-2+3');",
    );

    let table = out(&site, &["report"]);
    assert_inert("report", &table);
    assert!(table.contains(r"10.0.0.1\u{1b}[2J\nFAKE ROW"), "{table}");
    assert!(
        table.contains(r#"=HYPERLINK("http://x")\u{202e}txt"#),
        "{table}"
    );

    let csv = out(&site, &["report", "--format", "csv"]);
    assert!(csv.contains("'@evil,"), "{csv}");
    assert!(csv.contains(r#""'=HYPERLINK(""http://x"")"#), "{csv}");
    assert!(!csv.contains(",=") && !csv.contains(",\"="), "{csv}");

    let log = out(&site, &["log"]);
    assert_inert("log", &log);
    assert!(log.contains(r"bad\nFAKE allow"), "{log}");
    assert!(log.contains(r"+svc\u{1b}]0;pwned\u{7}"), "{log}");
    assert!(log.contains(r"\u{202e}4.3.2.1"), "{log}");

    let csv = out(&site, &["log", "--format", "csv"]);
    assert!(csv.contains("'+svc"), "{csv}");
    assert!(csv.contains(",'-2+3"), "{csv}");
    assert!(csv.contains("'@evil"), "{csv}");
    // A newline stays inside its quoted cell: every record starts with a timestamp.
    let mut r = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    for rec in r.records() {
        let rec = rec.unwrap();
        assert!(rec[0].starts_with("20"), "{rec:?}");
    }

    // JSON: controls escaped by the serializer, the data itself kept as it is.
    let json = out(&site, &["log", "--format", "json"]);
    assert!(
        !json.contains('\u{1b}') && !json.contains('\u{7}'),
        "{json}"
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|e| e["user"] == "bad\nFAKE allow"),
        "{json}"
    );
}
