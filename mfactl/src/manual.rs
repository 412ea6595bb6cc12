//! The man pages: mfactl(8) and one page per command (mfactl-init(8), ...), from the clap
//! definitions (so they list exactly the commands and options this binary has), with the
//! sections clap has no place for: EXIT STATUS and EXAMPLES.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::{Cli, Fail, Result};

/// Examples per command, by its full name: the command line, then what it does.
const EXAMPLES: &[(&str, &[(&str, &str)])] = &[
    (
        "mfactl",
        &[
            (
                "mfactl config check",
                "Check /etc/mfa/mfa.toml and list every problem.",
            ),
            ("mfactl init", "Create the empty store and its key file."),
            (
                "mfactl enroll alice",
                "Enrol alice at the terminal: QR code, then a code to confirm.",
            ),
            ("mfactl report", "Where the roll-out stands, user by user."),
        ],
    ),
    (
        "mfactl init",
        &[(
            "mfactl init",
            "Create /var/lib/mfa/mfa.db and /var/lib/mfa/mfa.key (0600).",
        )],
    ),
    (
        "mfactl rekey",
        &[(
            "mfactl rekey && systemctl reload mfa-radiusd",
            "Encrypt every seed under a new key; the daemon reads the new key file.",
        )],
    ),
    (
        "mfactl enroll",
        &[
            (
                "mfactl enroll alice",
                "Show alice's QR code and key, then ask for a code from her app to confirm.",
            ),
            (
                "mfactl enroll alice --qr light",
                "The same, for a terminal with a light background and no colours.",
            ),
            (
                "mfactl enroll bob --secret JBSWY3DPEHPK3PXP --no-confirm",
                "Enrol bob with a key he already has (scripted provisioning).",
            ),
            (
                "mfactl enroll carol --replace --qr-png /root/carol.png",
                "Give carol a new key (new phone); also write the QR code as a PNG (0600).",
            ),
        ],
    ),
    (
        "mfactl unlink",
        &[(
            "mfactl unlink alice",
            "alice lost her phone: remove the key, then enrol or invite her again.",
        )],
    ),
    (
        "mfactl unlock",
        &[(
            "mfactl unlock alice",
            "End alice's lockout after too many wrong codes.",
        )],
    ),
    (
        "mfactl auth",
        &[
            (
                "mfactl auth alice --ip 198.51.100.7",
                "What a login of alice from that address gets; asks for the code where one is needed.",
            ),
            (
                "mfactl auth alice --ip 10.1.2.3 --service radius:rd-gateway",
                "The decision as the RADIUS client rd-gateway would get it.",
            ),
        ],
    ),
    (
        "mfactl report",
        &[
            (
                "mfactl report",
                "Enrolled, in grace, overdue, locked: one line per user and the totals.",
            ),
            (
                "mfactl report --format csv > rollout.csv",
                "The same as CSV, for a spreadsheet.",
            ),
        ],
    ),
    (
        "mfactl status",
        &[
            (
                "mfactl status",
                "The database server in use, whether it is the primary, and its standbys' synchronous state and lag.",
            ),
            (
                "mfactl status --format json",
                "The same for a monitoring script.",
            ),
        ],
    ),
    (
        "mfactl trusted",
        &[(
            "mfactl trusted add 10.0.0.0/8",
            "Logins from the office network need no code.",
        )],
    ),
    (
        "mfactl trusted list",
        &[("mfactl trusted list", "One network per line.")],
    ),
    (
        "mfactl trusted add",
        &[
            (
                "mfactl trusted add 192.168.10.0/24",
                "Add a network to [policy] trusted_networks (comments in the file are kept).",
            ),
            (
                "systemctl reload mfa-radiusd",
                "Then let a running daemon read it (the PAM module reads it at the next login).",
            ),
        ],
    ),
    (
        "mfactl trusted remove",
        &[(
            "mfactl trusted remove 192.168.10.0/24",
            "Take a network out again.",
        )],
    ),
    (
        "mfactl trusted test",
        &[(
            "mfactl trusted test 192.168.10.7 && echo trusted",
            "Exit status 0 when the address is trusted.",
        )],
    ),
    (
        "mfactl go-live",
        &[(
            "mfactl go-live set 2027-03-01",
            "Schedule the roll-out: from then on users who are not enrolled need to.",
        )],
    ),
    (
        "mfactl go-live show",
        &[("mfactl go-live", "The go-live and what it means now.")],
    ),
    (
        "mfactl go-live set",
        &[
            ("mfactl go-live set 2027-03-01", "Midnight UTC on that day."),
            (
                "mfactl go-live set 2027-03-01T08:00:00Z",
                "A date and a time (UTC).",
            ),
        ],
    ),
    (
        "mfactl go-live clear",
        &[(
            "mfactl go-live clear",
            "Not scheduled again (enforce_from = \"never\").",
        )],
    ),
    (
        "mfactl config",
        &[(
            "mfactl config check",
            "Every problem of the configuration, with file, line and key.",
        )],
    ),
    (
        "mfactl config check",
        &[
            ("mfactl config check", "Check /etc/mfa/mfa.toml."),
            (
                "mfactl --config /tmp/new.toml config check",
                "Check a file before it is put in place.",
            ),
        ],
    ),
    (
        "mfactl import",
        &[
            (
                "mfactl import users.csv",
                "Enrol every user,base32-secret line of users.csv, all or nothing.",
            ),
            (
                "mfactl import --user alice /home/alice/.google_authenticator",
                "Take over alice's google-authenticator key.",
            ),
        ],
    ),
    (
        "mfactl temp-access",
        &[
            (
                "mfactl temp-access alice",
                "A code that lets alice in once within 8 hours (phone left at home).",
            ),
            (
                "mfactl temp-access alice --valid 2d --uses 5",
                "Five logins within two days.",
            ),
            (
                "mfactl temp-access alice --revoke",
                "End alice's temporary codes.",
            ),
        ],
    ),
    (
        "mfactl backup-codes",
        &[(
            "mfactl backup-codes alice",
            "Ten new one-time codes for alice to keep on paper; the old set stops working.",
        )],
    ),
    (
        "mfactl log",
        &[
            (
                "mfactl log alice --since 7d",
                "alice's logins and the administrators' actions on her of the last week.",
            ),
            ("mfactl log --format json", "The whole audit trail as JSON."),
        ],
    ),
    (
        "mfactl prune",
        &[(
            "mfactl prune",
            "Delete audit events older than [audit] retention.",
        )],
    ),
    (
        "mfactl users",
        &[(
            "mfactl users merge Alice alice",
            "Two stored records of one user: keep alice's.",
        )],
    ),
    (
        "mfactl users list",
        &[
            (
                "mfactl users list al",
                "The first 50 users whose names start with al.",
            ),
            (
                "mfactl users list al --after alfred",
                "The next page, as the line More: says.",
            ),
        ],
    ),
    (
        "mfactl users merge",
        &[(
            "mfactl users merge Alice alice",
            "Merge the record \"Alice\" into \"alice\" (alice's key is kept).",
        )],
    ),
    (
        "mfactl users remove",
        &[(
            "mfactl users remove 'OTHER\\bob'",
            "Remove a record no login can reach.",
        )],
    ),
    (
        "mfactl migrate",
        &[(
            "mfactl migrate --to postgres://mfa@db1/mfa --password-file /etc/mfa/db.password",
            "Copy the SQLite store into an empty PostgreSQL database; then set [store] url.",
        )],
    ),
    (
        "mfactl completion",
        &[
            (
                "source <(mfactl completion bash)",
                "Completion in the current bash.",
            ),
            ("mfactl completion zsh > ~/.zfunc/_mfactl", "For zsh."),
        ],
    ),
    (
        "mfactl invite",
        &[
            (
                "mfactl invite alice",
                "A one-time enrolment link for alice, to send her.",
            ),
            (
                "mfactl invite --unenrolled --format csv > links.csv",
                "A link for every stored user who is not enrolled, for a mail merge.",
            ),
            (
                "mfactl invite carol --replace",
                "carol has a new phone: remove her key and give her a link.",
            ),
        ],
    ),
    (
        "mfactl unlocks",
        &[
            (
                "mfactl unlocks",
                "The addresses users unlocked on the portal, with their end.",
            ),
            ("mfactl unlocks alice", "alice's only."),
        ],
    ),
    (
        "mfactl unlocks revoke",
        &[
            (
                "mfactl unlocks revoke alice",
                "End every address alice unlocked.",
            ),
            ("mfactl unlocks revoke alice 198.51.100.7", "Only that one."),
        ],
    ),
    (
        "mfactl push",
        &[
            (
                "mfactl push list alice",
                "The phones alice approves sign-ins with, and any block.",
            ),
            (
                "mfactl push remove alice 5d41402abc4b2a76b9719d911017c592",
                "Remove a lost phone.",
            ),
        ],
    ),
    (
        "mfactl push list",
        &[
            ("mfactl push list alice", "alice's phones, as a table."),
            (
                "mfactl push list alice --format json",
                "The same, for a script.",
            ),
        ],
    ),
    (
        "mfactl push remove",
        &[(
            "mfactl push remove alice 5d41402abc4b2a76b9719d911017c592",
            "Remove that phone (its id from `mfactl push list`).",
        )],
    ),
    (
        "mfactl push unblock",
        &[(
            "mfactl push unblock alice",
            "Lift the block \"This wasn't me\" put on alice's pushes.",
        )],
    ),
    (
        "mfactl exempt",
        &[(
            "mfactl exempt add --group svc-backup",
            "The backup service's accounts never need a code.",
        )],
    ),
    (
        "mfactl breakglass",
        &[(
            "mfactl breakglass issue web1 --out /root/breakglass-web1",
            "Ten break-glass codes for the PAM host web1; copy the file to web1.",
        )],
    ),
    (
        "mfactl directory",
        &[(
            "mfactl directory test 'TEST\\alice'",
            "What the directory says about alice: her groups, each with its nesting path.",
        )],
    ),
    (
        "mfactl directory test",
        &[
            (
                "mfactl directory test alice@test.lan",
                "Found or not, the canonical name, groups and their paths, the server, the time.",
            ),
            (
                "mfactl directory test alice --format json",
                "The same for a program.",
            ),
        ],
    ),
    (
        "mfactl breakglass issue",
        &[(
            "mfactl breakglass issue web1 --count 5",
            "Five codes, printed once; their hashes in ./breakglass-web1 (0600).",
        )],
    ),
    (
        "mfactl exempt list",
        &[("mfactl exempt list", "One exempt user or group per line.")],
    ),
    (
        "mfactl exempt add",
        &[
            (
                "mfactl exempt add scanner",
                "Add a user to [policy] exempt_users (comments in the file are kept).",
            ),
            (
                "mfactl exempt add --group svc-backup",
                "Add a group to [policy] exempt_groups.",
            ),
        ],
    ),
    (
        "mfactl exempt remove",
        &[(
            "mfactl exempt remove scanner",
            "scanner needs a code again (after the reload the output names).",
        )],
    ),
];

/// The exit status of a command, by its full name; the rest share [`EXIT_STATUS`].
const EXIT_SPECIAL: &[(&str, &str)] = &[
    (
        "mfactl auth",
        "0 the login is allowed; 1 it is denied (wrong code, locked, not enrolled after the \
         go-live...); 2 a usage, configuration, store or input error.",
    ),
    (
        "mfactl directory test",
        "0 the directory knows the user; 1 it does not; 2 a usage or configuration error, \
         or no server answered.",
    ),
    (
        "mfactl trusted test",
        "0 the address is trusted; 1 it is not (or is no IP address); 2 a usage or \
         configuration error.",
    ),
];

const EXIT_STATUS: &str = "0 done; 1 refused (the store or the policy says no: an enrolled \
    user without --replace, an unknown name without --force, a wrong confirmation code...); \
    2 a usage, configuration, store or input error. Every message goes to standard error and \
    names what is wrong. 141 where standard output was closed before mfactl was done \
    (as for a tool killed by SIGPIPE, e.g. piped into head): what it wrote to the store \
    stands.";

/// The arguments of the pages: `mfactl` with every visible command.
fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Writes mfactl(8) and a page per command into `dir`.
pub fn generate_man(dir: &Path) -> Result<ExitCode> {
    pages(command(), "mfactl", dir).map_err(|e| {
        Fail::Error(format!(
            "cannot write the man pages into {}: {e}",
            dir.display()
        ))
    })?;
    Ok(ExitCode::SUCCESS)
}

fn pages(cmd: clap::Command, full: &str, dir: &Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        let name = format!("{full} {}", sub.get_name());
        pages(sub, &name, dir)?;
    }
    let has_commands = cmd.get_subcommands().any(|s| !s.is_hide_set());
    let man = clap_mangen::Man::new(cmd)
        .section("8")
        .manual("System Administration")
        .source(format!("mfactl {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    if has_commands {
        man.render_subcommands_section(&mut out)?;
    }
    write_exit_status(&mut out, full)?;
    write_examples(&mut out, full)?;
    write_see_also(&mut out, full)?;
    let file = dir.join(format!("{}.8", full.replace(' ', "-")));
    std::fs::write(file, out)
}

/// Text for roff: backslashes doubled, and a line starting with `.` or `'` kept from being
/// read as a request.
fn roff_text(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

fn write_exit_status(out: &mut Vec<u8>, full: &str) -> std::io::Result<()> {
    let text = EXIT_SPECIAL
        .iter()
        .find(|(n, _)| *n == full)
        .map_or(EXIT_STATUS, |(_, t)| t);
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    writeln!(out, "{}", roff_text(text))
}

fn write_examples(out: &mut Vec<u8>, full: &str) -> std::io::Result<()> {
    let Some((_, list)) = EXAMPLES.iter().find(|(n, _)| *n == full) else {
        return Ok(());
    };
    writeln!(out, ".SH EXAMPLES")?;
    for (cmdline, what) in *list {
        writeln!(out, ".TP")?;
        writeln!(out, ".B {}", roff_text(cmdline))?;
        writeln!(out, "{}", roff_text(what))?;
    }
    Ok(())
}

fn write_see_also(out: &mut Vec<u8>, full: &str) -> std::io::Result<()> {
    writeln!(out, ".SH \"SEE ALSO\"")?;
    let parent = full.rsplit_once(' ').map(|(p, _)| p.replace(' ', "-"));
    let mut refs: Vec<String> = parent.into_iter().map(|p| format!("{p}(8)")).collect();
    refs.extend(
        [
            "mfa.toml(5)",
            "pam_mfa(8)",
            "mfa-radiusd(8)",
            "mfa-portal(8)",
        ]
        .map(String::from),
    );
    let list: Vec<String> = refs
        .iter()
        .filter_map(|r| r.split_once('('))
        .map(|(name, sec)| format!(".BR {} ({}", roff_text(name), sec))
        .collect();
    let n = list.len();
    for (i, line) in list.into_iter().enumerate() {
        if i + 1 < n {
            writeln!(out, "{line},")?;
        } else {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn each(cmd: &clap::Command, full: &str, f: &mut dyn FnMut(&clap::Command, &str)) {
        f(cmd, full);
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            each(sub, &format!("{full} {}", sub.get_name()), f);
        }
    }

    /// Every visible command has examples, and every argument a description (`<USER>` on
    /// a page says what it takes).
    #[test]
    fn every_command_has_examples_and_every_argument_a_description() {
        let cmd = command();
        let mut missing = Vec::new();
        each(&cmd, "mfactl", &mut |c, full| {
            if !EXAMPLES.iter().any(|(n, _)| *n == full) {
                missing.push(format!("{full}: no EXAMPLES"));
            }
            for a in c.get_arguments().filter(|a| !a.is_hide_set()) {
                let id = a.get_id().as_str();
                if id != "help" && id != "version" && a.get_help().is_none() {
                    missing.push(format!("{full}: {id} has no description"));
                }
            }
        });
        assert!(missing.is_empty(), "{missing:#?}");
        // And no example names a command that does not exist.
        for (name, _) in EXAMPLES {
            let mut c = &cmd;
            for word in name.split(' ').skip(1) {
                c = c
                    .find_subcommand(word)
                    .unwrap_or_else(|| panic!("{name}: no such command"));
            }
        }
    }
}
