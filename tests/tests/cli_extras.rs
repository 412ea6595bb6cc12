//! What every binary offers for packaging: `--version` from the workspace version, mfactl's
//! shell completion (bash loads it without errors and completes `mfactl tr` to `trusted`)
//! and the man pages generated from its clap definitions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use mfa_e2e::{bin, text};

#[test]
fn every_binary_prints_the_workspace_version() {
    let v = env!("CARGO_PKG_VERSION");
    for (b, flag) in [
        ("mfactl", "--version"),
        ("mfa-radiusd", "--version"),
        ("mfa-radiusd", "-V"),
        ("mfa-portal", "--version"),
        ("mfa-portal", "-V"),
    ] {
        let o = Command::new(bin(b)).arg(flag).output().unwrap();
        assert!(o.status.success(), "{b} {flag}: {}", text(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            format!("{b} {v}")
        );
    }
}

#[test]
fn bash_completion_loads_cleanly_and_completes_subcommands() {
    let script = format!(
        "set -e; source <('{}' completion bash); COMP_WORDS=(mfactl tr); COMP_CWORD=1; _mfactl mfactl tr mfactl; echo \"${{COMPREPLY[@]}}\"; COMP_WORDS=(mfactl trusted a); COMP_CWORD=2; _mfactl mfactl a trusted; echo \"${{COMPREPLY[@]}}\"",
        bin("mfactl").display()
    );
    let o = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(o.stderr.is_empty(), "bash printed errors: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["trusted", "add"], "{out}");
    // zsh and fish scripts are produced too; an unknown shell is a usage error.
    for sh in ["zsh", "fish"] {
        let o = Command::new(bin("mfactl"))
            .args(["completion", sh])
            .output()
            .unwrap();
        assert!(
            o.status.success() && o.stdout.len() > 100,
            "{sh}: {}",
            text(&o)
        );
    }
    let o = Command::new(bin("mfactl"))
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn man_pages_come_from_the_clap_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(bin("mfactl"))
        .arg("generate-man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let main = std::fs::read_to_string(dir.path().join("mfactl.8")).unwrap();
    assert!(main.contains(".TH mfactl 8"), "{main}");
    // One page per command, each with its description (whatis needs the NAME line).
    for sub in [
        "mfactl-init.8",
        "mfactl-trusted-add.8",
        "mfactl-completion.8",
    ] {
        let page = std::fs::read_to_string(dir.path().join(sub)).unwrap();
        assert!(page.contains(".SH NAME"), "{sub}");
        let name = page.split(".SH NAME").nth(1).unwrap();
        assert!(
            name.contains(" \\- "),
            "{sub} NAME has a description: {page}"
        );
    }
    // The hidden command stays out of the pages and the help.
    assert!(!dir.path().join("mfactl-generate-man.8").exists());
    let help = Command::new(bin("mfactl")).arg("--help").output().unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("generate-man"));
}

/// A roff page as `man` shows it (man-db, groff), 100 columns, no formatting characters.
fn rendered(page: &std::path::Path) -> String {
    mfa_e2e::require_tool("man");
    let o = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "")
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}: {}", page.display(), text(&o));
    let warnings = String::from_utf8_lossy(&o.stderr);
    assert!(warnings.trim().is_empty(), "{}: {warnings}", page.display());
    // man strips bold and underline when the output is not a terminal; col -b would too.
    String::from_utf8(o.stdout).unwrap()
}

/// Issue 21: the hand-written pages of the daemons show their synopsis with a space between
/// each option and its value (`[--config PATH]`, not `[--configPATH]`).
#[test]
fn the_daemons_man_pages_render_their_synopsis() {
    let man = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/deb/man");
    for (page, name) in [
        ("mfa-radiusd.8", "mfa-radiusd"),
        ("mfa-portal.8", "mfa-portal"),
    ] {
        let out = rendered(&man.join(page));
        let synopsis: String = out
            .split("SYNOPSIS")
            .nth(1)
            .unwrap()
            .split("DESCRIPTION")
            .next()
            .unwrap()
            .to_string();
        assert!(
            synopsis.contains(&format!("{name} [--config PATH] [--pam-confdir DIR]")),
            "{page}: {synopsis}"
        );
    }
}

/// Issue 21: every generated mfactl page has EXIT STATUS and EXAMPLES, and every argument it
/// shows in angle brackets (`<USER>`) is described under OPTIONS.
#[test]
fn every_mfactl_page_has_examples_exit_status_and_described_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(bin("mfactl"))
        .arg("generate-man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut pages: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    assert!(pages.len() > 25, "{pages:?}");
    for page in pages {
        let out = rendered(&page);
        let name = page.file_name().unwrap().to_string_lossy().to_string();
        for section in ["\nEXIT STATUS\n", "\nEXAMPLES\n", "\nSEE ALSO\n"] {
            assert!(out.contains(section), "{name} has no {section:?}:\n{out}");
        }
        let examples = out.split("\nEXAMPLES\n").nth(1).unwrap();
        assert!(
            examples
                .lines()
                .next()
                .is_some_and(|l| l.trim_start().starts_with("mfactl")
                    || l.trim_start().starts_with("source")
                    || l.trim_start().starts_with("systemctl")),
            "{name}: {examples}"
        );
        // Each positional in the synopsis (<USER>, [USER], <FILE>...) has a described entry.
        let synopsis = out
            .split("\nSYNOPSIS\n")
            .nth(1)
            .unwrap()
            .split("\nDESCRIPTION\n")
            .next()
            .unwrap();
        let options = out.split("\nOPTIONS\n").nth(1).unwrap_or("");
        for word in synopsis.split_whitespace() {
            let arg = word.trim_matches(|c| "<>[].".contains(c));
            if arg.is_empty()
                || !arg.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                || word.starts_with("[-")
            {
                continue;
            }
            let entry = options
                .lines()
                .position(|l| {
                    l.trim_start().starts_with(&format!("<{arg}>"))
                        || l.trim_start().starts_with(&format!("[{arg}]"))
                })
                .unwrap_or_else(|| panic!("{name}: {arg} is not under OPTIONS:\n{out}"));
            let line = options.lines().nth(entry).unwrap();
            let after = line
                .trim_start()
                .split_once(['>', ']'])
                .map_or("", |(_, r)| r.trim());
            let next = options.lines().nth(entry + 1).unwrap_or("").trim();
            assert!(
                !after.is_empty() || !next.is_empty(),
                "{name}: {arg} has no description:\n{out}"
            );
        }
    }
}
