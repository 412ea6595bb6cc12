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
