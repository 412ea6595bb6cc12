//! The Debian package, installed for real: built from the checkout by scripts/build-deb.sh
//! (from the dev-profile binaries cargo already built), `dpkg -i`, then the installed files,
//! the man pages, the systemd units of both daemons (verify and their exposure scores), the
//! PAM module through pamtester with the installed config (the roll-out not scheduled:
//! `enforce_from = "never"`), `mfactl go-live`, pam-auth-update, the conffiles (mfa.toml and
//! the PAM services mfa-radius and mfa-portal) kept on reinstall, the store kept by `dpkg -r`
//! and by `dpkg -P` under debconf's default answer (mfa/purge_store false, as slapd does),
//! removed by `dpkg -P` once that is answered true. lintian has no error and no
//! warning that is not overridden with its reason. Root only; whatever happens, the package
//! is purged and the files it made are gone at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mfa_e2e::pam::{PamResult, pamtester, pamtester_code, require_root};
use mfa_e2e::{bin_dir, fresh_key, oathtool, require_tool, text, unique, unix_now, wrong_code};

const UNITS: [&str; 2] = [
    "/lib/systemd/system/mfa-radiusd.service",
    "/lib/systemd/system/mfa-portal.service",
];
const CONFIG: &str = "/etc/mfa/mfa.toml";
const STATE: &str = "/var/lib/mfa";
const COMMON_AUTH: &str = "/etc/pam.d/common-auth";
const PAM_SERVICES: [&str; 2] = ["/etc/pam.d/mfa-radius", "/etc/pam.d/mfa-portal"];

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn ok(cmd: &str, args: &[&str]) -> String {
    let o = run(cmd, args);
    assert!(o.status.success(), "{cmd} {args:?} failed:\n{}", text(&o));
    text(&o)
}

fn installed() -> Option<String> {
    let o = run("dpkg-query", &["-W", "-f=${Status}", "mfa"]);
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Undoes everything on drop, a failed assertion included: the package purged, the test's
/// PAM service gone, common-auth as it was, no /etc/mfa or /var/lib/mfa left behind.
struct Cleanup {
    service: PathBuf,
    common_auth: Option<Vec<u8>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.service);
        if installed().is_some() {
            let _ = run("dpkg", &["--purge", "mfa"]);
        }
        if let Some(b) = &self.common_auth {
            let _ = std::fs::write(COMMON_AUTH, b);
        }
        let _ = std::fs::remove_dir_all("/etc/mfa");
        let _ = std::fs::remove_dir_all(STATE);
    }
}

fn mode(p: &str) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

fn dpkg_install(deb: &Path) {
    let o = run("dpkg", &["-i", deb.to_str().unwrap()]);
    if !o.status.success() {
        // Missing dependencies: let apt bring them, as `apt install ./mfa_*.deb` would.
        ok("apt-get", &["install", "-f", "-y", "-qq"]);
    }
    assert!(
        installed()
            .unwrap_or_default()
            .contains("install ok installed"),
        "dpkg -i:\n{}",
        text(&o)
    );
}

#[test]
fn the_package_installs_works_as_documented_and_goes_away() {
    require_root("the package test (dpkg -i)");
    for t in [
        "dpkg-deb",
        "lintian",
        "systemd-analyze",
        "man",
        "pamtester",
        "pam-auth-update",
    ] {
        require_tool(t);
    }
    // Purging would delete a real installation's store: refuse to run over one.
    assert!(
        installed().is_none_or(|s| s.contains("not-installed")),
        "the mfa package is installed on this machine; the test would purge it"
    );
    for p in ["/etc/mfa", STATE] {
        assert!(
            !Path::new(p).exists(),
            "{p} exists; the test would remove it"
        );
    }
    let service = unique("mfa-pkg");
    let mut cleanup = Cleanup {
        service: PathBuf::from("/etc/pam.d").join(&service),
        common_auth: std::fs::read(COMMON_AUTH).ok(),
    };

    // Build the package from the checkout with the one build script.
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    assert!(
        bin_dir().ends_with("target/debug"),
        "{}",
        bin_dir().display()
    );
    let out = tempfile::tempdir().unwrap();
    let o = Command::new("bash")
        .arg(top.join("scripts/build-deb.sh"))
        .args(["--debug", "--no-build", "--out"])
        .arg(out.path())
        .env_remove("DEBEMAIL")
        .env_remove("DEBFULLNAME")
        .output()
        .unwrap();
    let built = text(&o);
    assert!(o.status.success(), "build-deb.sh:\n{built}");
    // Without DEBEMAIL the Maintainer is a placeholder, and the build says so.
    assert!(
        built.contains("warning: Maintainer is the placeholder") && built.contains("DEBEMAIL"),
        "{built}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let deb = PathBuf::from(stdout.lines().last().unwrap().trim());
    assert!(deb.is_file(), "{built}");

    // lintian: no error, no warning left without an override (the overrides say why).
    let lint = run("lintian", &["--pedantic", deb.to_str().unwrap()]);
    let report = text(&lint);
    let bad: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .collect();
    assert!(bad.is_empty(), "lintian:\n{report}");

    dpkg_install(&deb);

    // Files where Debian puts them, with their modes.
    let multiarch = ok("dpkg-architecture", &["-qDEB_HOST_MULTIARCH"]);
    let module = format!("/usr/lib/{}/security/pam_mfa.so", multiarch.trim());
    assert_eq!(mode(&module), (0o644, 0, 0));
    assert_eq!(mode("/usr/sbin/mfactl"), (0o755, 0, 0));
    assert_eq!(mode("/usr/sbin/mfa-radiusd"), (0o755, 0, 0));
    assert_eq!(mode("/usr/sbin/mfa-portal"), (0o755, 0, 0));
    for unit in UNITS {
        assert_eq!(mode(unit), (0o644, 0, 0));
    }
    assert_eq!(mode(CONFIG), (0o640, 0, 0));
    assert_eq!(mode(STATE), (0o700, 0, 0));
    // postinst made the empty store and its key on this machine.
    assert_eq!(mode("/var/lib/mfa/mfa.db").0, 0o600);
    assert_eq!(mode("/var/lib/mfa/mfa.key").0, 0o600);
    let conffiles = ok("dpkg-query", &["-W", "-f=${Conffiles}", "mfa"]);
    assert!(conffiles.contains(CONFIG), "{conffiles}");
    // The PAM services of the daemon's first factor and the portal's sign-in are shipped,
    // as conffiles, saying what to change; without them PAM would use /etc/pam.d/other.
    for service in PAM_SERVICES {
        assert_eq!(mode(service), (0o644, 0, 0), "{service}");
        assert!(conffiles.contains(service), "{service} in {conffiles}");
        let text = std::fs::read_to_string(service).unwrap();
        assert!(text.contains("What to change"), "{service}: {text}");
        assert!(text.contains("pam_sss.so"), "{service}: {text}");
        assert!(
            !text
                .lines()
                .any(|l| !l.starts_with('#') && l.contains("pam_mfa")),
            "{service}: {text}"
        );
        assert!(
            text.contains("\nauth     required  pam_unix.so\n"),
            "{service}: {text}"
        );
    }
    // The example under /usr/share/doc is a production one: no demo store, no secret.
    let example = std::fs::read_to_string("/usr/share/doc/mfa/examples/mfa.toml").unwrap();
    assert!(!example.contains("demo"), "{example}");
    assert!(
        !example.lines().any(|l| l.starts_with("secret =")),
        "{example}"
    );
    // The purge question is registered, answered "keep" by default.
    let questions = ok("debconf-show", &["mfa"]);
    assert!(questions.contains("mfa/purge_store: false"), "{questions}");
    let deps = ok("dpkg-query", &["-W", "-f=${Depends}", "mfa"]);
    assert!(deps.contains("libpam0g"), "{deps}");

    // --version from the workspace version; the shipped config checks clean.
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(ok("mfactl", &["--version"]).trim(), format!("mfactl {v}"));
    for daemon in ["mfa-radiusd", "mfa-portal"] {
        assert_eq!(ok(daemon, &["--version"]).trim(), format!("{daemon} {v}"));
    }
    let check = ok("mfactl", &["config", "check"]);
    assert!(check.contains("RADIUS clients: none"), "{check}");
    // As shipped the roll-out is not scheduled (enforce_from = "never"), and says so.
    assert!(
        check.contains("  go-live: not set (roll-out not scheduled"),
        "{check}"
    );
    let conf = std::fs::read_to_string(CONFIG).unwrap();
    assert!(conf.contains("\nenforce_from = \"never\"\n"), "{conf}");
    assert!(!conf.contains("2999"), "no placeholder date: {conf}");

    // Man pages.
    let pages = ok(
        "man",
        &[
            "-w",
            "mfactl",
            "pam_mfa",
            "mfa.toml",
            "mfa-radiusd",
            "mfa-portal",
            "mfactl-go-live",
        ],
    );
    for want in [
        "man8/mfactl.8.gz",
        "man8/pam_mfa.8.gz",
        "man5/mfa.toml.5.gz",
        "man8/mfa-radiusd.8.gz",
        "man8/mfa-portal.8.gz",
        "man8/mfactl-go-live.8.gz",
    ] {
        assert!(pages.contains(want), "{want} in:\n{pages}");
    }

    // Each unit: verify passes (its binary and man pages found), the exposure is at most 2.0.
    for unit in UNITS {
        let verify = ok("systemd-analyze", &["verify", unit]);
        assert!(
            verify.trim().is_empty(),
            "systemd-analyze verify {unit}:\n{verify}"
        );
        let sec = ok("systemd-analyze", &["security", "--offline=true", unit]);
        let name = Path::new(unit).file_name().unwrap().to_str().unwrap();
        let score: f64 = sec
            .lines()
            .find_map(|l| {
                l.split(&format!("Overall exposure level for {name}:"))
                    .nth(1)
            })
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no score for {name}:\n{sec}"))
            .parse()
            .unwrap();
        assert!(score <= 2.0, "{name}: exposure {score}:\n{sec}");
        eprintln!("{name}: exposure {score}");
    }

    // The installed bash completion loads and completes.
    let comp = ok(
        "bash",
        &[
            "-c",
            "source /usr/share/bash-completion/completions/mfactl && COMP_WORDS=(mfactl tr) && COMP_CWORD=1 && _mfactl mfactl tr mfactl && echo \"${COMPREPLY[@]}\"",
        ],
    );
    assert_eq!(comp.trim(), "trusted");

    // PAM through the installed module (found by name in the security directory) and the
    // installed config (the module's default path).
    std::fs::write(
        &cleanup.service,
        "auth required pam_mfa.so\naccount required pam_permit.so\n",
    )
    .unwrap();
    // As shipped (roll-out not scheduled): a user who is not enrolled is let in and told
    // MFA is not required yet and how to enrol, with no day count.
    let r = pamtester(&service, "pkg-newbie", Some("198.51.100.7"), "", None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(
        r.all().contains("MFA is not required for this account yet"),
        "{r:?}"
    );
    assert!(r.all().contains("enrol"), "{r:?}");
    assert!(!r.all().contains("day(s)"), "{r:?}");
    assert!(!r.prompted(), "{r:?}");
    let report = ok("mfactl", &["report"]);
    assert!(
        report.contains("Go-live:         not set (roll-out not scheduled"),
        "{report}"
    );
    // An enrolled user gives a code, even before go-live.
    let key = fresh_key();
    ok(
        "mfactl",
        &["enroll", "pkg-alice", "--secret", &key, "--no-confirm"],
    );
    let r = pamtester_code(
        &service,
        "pkg-alice",
        Some("198.51.100.7"),
        &wrong_code(&key),
        None,
    );
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    let r = pamtester_code(
        &service,
        "pkg-alice",
        Some("198.51.100.7"),
        &oathtool(&key, unix_now()),
        None,
    );
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    // The administrator trusts a network (an edit of the conffile): no code from there.
    ok("mfactl", &["trusted", "add", "192.0.2.0/24"]);
    let r = pamtester(&service, "pkg-alice", Some("192.0.2.5"), "", None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(!r.prompted(), "{r:?}");
    // The administrator schedules the roll-out in the conffile (comments kept): the
    // newcomer is now told the days left; clearing it goes back to not scheduled.
    let date = &mfa_config::format_utc(unix_now() + 30 * 86_400)[..10];
    ok("mfactl", &["go-live", "set", date]);
    let conf = std::fs::read_to_string(CONFIG).unwrap();
    assert!(
        conf.contains(&format!("\nenforce_from = {date}\n")),
        "{conf}"
    );
    assert!(conf.contains("# Go-live. Before it"), "{conf}");
    let r = pamtester(&service, "pkg-newbie", Some("198.51.100.7"), "", None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(
        r.all().contains("MFA becomes required for this account in"),
        "{r:?}"
    );
    ok("mfactl", &["go-live", "clear"]);
    let shown = ok("mfactl", &["go-live"]);
    assert!(shown.starts_with("go-live: not set"), "{shown}");
    let r = pamtester(&service, "pkg-newbie", Some("198.51.100.7"), "", None);
    assert!(
        r.all().contains("MFA is not required for this account yet"),
        "{r:?}"
    );

    // Reinstalling keeps the administrator's config and the store.
    dpkg_install(&deb);
    let cfg = std::fs::read_to_string(CONFIG).unwrap();
    assert!(cfg.contains("192.0.2.0/24"), "{cfg}");
    let report = ok("mfactl", &["report", "--format", "csv"]);
    assert!(report.contains("pkg-alice"), "{report}");

    // pam-auth-update: the profile is off until enabled; enabled, it adds the module to
    // common-auth; `dpkg -r` takes it out again before the module goes.
    let before = std::fs::read_to_string(COMMON_AUTH).unwrap();
    assert!(!before.contains("pam_mfa.so"), "{before}");
    ok("pam-auth-update", &["--enable", "mfa"]);
    let enabled = std::fs::read_to_string(COMMON_AUTH).unwrap();
    assert!(
        enabled.contains("required\t\t\tpam_mfa.so") || enabled.contains("pam_mfa.so config="),
        "{enabled}"
    );

    // dpkg -r: the programs go, the configuration and the store stay.
    ok("dpkg", &["-r", "mfa"]);
    assert!(installed().unwrap().contains("config-files"));
    let after = std::fs::read_to_string(COMMON_AUTH).unwrap();
    assert!(!after.contains("pam_mfa.so"), "{after}");
    assert!(!Path::new(&module).exists());
    assert!(!Path::new("/usr/sbin/mfactl").exists());
    assert!(!Path::new("/usr/sbin/mfa-portal").exists());
    for unit in UNITS {
        assert!(!Path::new(unit).exists(), "{unit}");
    }
    assert!(Path::new(CONFIG).exists());
    assert!(Path::new("/var/lib/mfa/mfa.db").exists());
    assert!(Path::new("/var/lib/mfa/mfa.key").exists());

    // dpkg -P with debconf's default answer: the configuration goes, the store and its key
    // (every enrolment) stay, and purge says so. (Until issue 21 purge removed them
    // without asking; this test asserted that.)
    let purged = ok("dpkg", &["-P", "mfa"]);
    assert!(installed().is_none_or(|s| s.contains("not-installed")));
    assert!(!Path::new("/etc/mfa").exists());
    for service in PAM_SERVICES {
        assert!(!Path::new(service).exists(), "{service}");
    }
    assert!(Path::new("/var/lib/mfa/mfa.db").exists());
    assert!(Path::new("/var/lib/mfa/mfa.key").exists());
    assert!(purged.contains("mfa: kept /var/lib/mfa"), "{purged}");
    // A reinstallation finds every enrolment again.
    dpkg_install(&deb);
    let report = ok("mfactl", &["report", "--format", "csv"]);
    assert!(report.contains("pkg-alice"), "{report}");
    // Answered "remove" (as dpkg-reconfigure -plow mfa or a preseed would): purge takes the
    // state too.
    let o = Command::new("debconf-set-selections")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"mfa mfa/purge_store boolean true\n")?;
            c.wait()
        })
        .unwrap();
    assert!(o.success());
    ok("dpkg", &["-P", "mfa"]);
    assert!(installed().is_none_or(|s| s.contains("not-installed")));
    assert!(!Path::new("/etc/mfa").exists());
    assert!(!Path::new(STATE).exists());
    // debconf forgot the package's question with it.
    let left = run("debconf-show", &["mfa"]);
    assert!(!text(&left).contains("purge_store"), "{}", text(&left));
    cleanup.common_auth = None;
}
