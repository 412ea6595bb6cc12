//! Files someone other than root could have changed are refused by every front end: the PAM
//! module through the real libpam (pamtester), `mfa-radiusd` at start, and `mfactl config
//! check`; each says which path and how to fix it. Also the files mfactl writes (QR images)
//! and what `ignore=` and the account/session phases do through the real libpam.
//! Runs as root (CI does), so "owned by someone else" and "writable by others" mean what
//! they mean in production.

use mfa_e2e::pam;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mfa_e2e::pam::{
    PamResult, PamService, SyslogCapture, module_path, pamtester, pamtester_code, require_root,
};
use mfa_e2e::radius::{free_udp_port, spawn_daemon};
use mfa_e2e::{Site, chmod, code_of, fresh_key, text, totp, unique, write_private};

/// A site every front end accepts: the store in its own directory (`state/`), a RADIUS
/// client whose secret is in a `secret_file`, code-only mode so the daemon needs no PAM.
struct Rig {
    site: Site,
    secret: PathBuf,
    db: PathBuf,
    state: PathBuf,
}

fn rig() -> Rig {
    require_root("unsafe_files tests");
    let port = free_udp_port();
    let site = Site::with_config(&format!(
        "[store]\npath = \"state/mfa.db\"\n[policy]\ntrusted_networks = [\"127.0.0.1/32\"]\n\
         [audit]\nsyslog = false\n[radius]\nlisten = [\"127.0.0.1:{port}\"]\nmode = \"code-only\"\n\
         first_factor = \"none\"\n[[radius.clients]]\nname = \"gw\"\naddress = \"127.0.0.1/32\"\n\
         secret_file = \"@SECRET@\"\n"
    ));
    let secret = site.path().join("gw.secret");
    write_private(&secret, "a-long-enough-shared-secret\n");
    let cfg = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &site.config,
        cfg.replace("@SECRET@", &secret.display().to_string()),
    )
    .unwrap();
    let o = site.mfactl(&["init"]);
    assert!(o.status.success(), "{}", text(&o));
    let state = site.path().join("state");
    Rig {
        db: state.join("mfa.db"),
        state,
        secret,
        site,
    }
}

/// How each front end takes `config`: PAM's answer and syslog, the daemon's exit and
/// stderr, and `mfactl config check`'s exit and output.
struct Verdicts {
    pam: PamResult,
    syslog: String,
    daemon_exited: bool,
    daemon_log: String,
    check_ok: bool,
    check_out: String,
}

fn verdicts(config: &Path) -> Verdicts {
    let svc = PamService::mfa_only(config, "");
    let log = SyslogCapture::new();
    // From a trusted address, where a good configuration lets the user in without a code.
    let r = pamtester(&svc.name, &unique("uf"), Some("127.0.0.1"), "", Some(&log));

    let mut d = spawn_daemon(config, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.alive() && Instant::now() < deadline {
        if d.log().contains("listening on") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let daemon_exited = !d.alive();
    let daemon_log = d.log();
    d.stop();

    let o = std::process::Command::new(mfa_e2e::bin("mfactl"))
        .arg("--config")
        .arg(config)
        .args(["config", "check"])
        .output()
        .unwrap();
    Verdicts {
        pam: r.result,
        syslog: log.text(),
        daemon_exited,
        daemon_log,
        check_ok: o.status.success(),
        check_out: text(&o),
    }
}

/// Every front end refuses `config`, naming `path` and `fix`.
fn assert_refused(config: &Path, path: &Path, fix: &str) {
    let v = verdicts(config);
    let p = path.display().to_string();
    assert_eq!(
        v.pam,
        PamResult::AuthErr,
        "PAM let the user in: {}",
        v.syslog
    );
    assert!(
        v.syslog.contains(&p) && v.syslog.contains(fix),
        "syslog should name {p} and {fix:?}:\n{}",
        v.syslog
    );
    assert!(v.daemon_exited, "mfa-radiusd started:\n{}", v.daemon_log);
    assert!(
        v.daemon_log.contains(&p) && v.daemon_log.contains(fix),
        "mfa-radiusd should name {p} and {fix:?}:\n{}",
        v.daemon_log
    );
    assert!(!v.check_ok, "config check passed:\n{}", v.check_out);
    assert!(
        v.check_out.contains(&p) && v.check_out.contains(fix),
        "config check should name {p} and {fix:?}:\n{}",
        v.check_out
    );
}

#[test]
fn a_safe_site_is_accepted_by_every_front_end() {
    let r = rig();
    let v = verdicts(&r.site.config);
    assert_eq!(v.pam, PamResult::Success, "{}", v.syslog);
    assert!(!v.daemon_exited, "{}", v.daemon_log);
    assert!(v.daemon_log.contains("listening on"), "{}", v.daemon_log);
    assert!(v.check_ok, "{}", v.check_out);
    assert!(!v.check_out.contains("warning"), "{}", v.check_out);
}

#[test]
fn world_writable_config_is_refused() {
    let r = rig();
    chmod(&r.site.config, 0o666);
    let fix = format!("chmod go-w {}", r.site.config.display());
    assert_refused(&r.site.config, &r.site.config, &fix);
}

#[test]
fn config_owned_by_another_user_is_refused() {
    let r = rig();
    std::os::unix::fs::chown(&r.site.config, Some(65534), None).unwrap();
    let fix = format!("chown root {}", r.site.config.display());
    assert_refused(&r.site.config, &r.site.config, &fix);
}

#[test]
fn world_writable_store_file_and_store_directory_are_refused() {
    let r = rig();
    chmod(&r.db, 0o666);
    assert_refused(
        &r.site.config,
        &r.db,
        &format!("chmod go-w {}", r.db.display()),
    );
    chmod(&r.db, 0o600);
    chmod(&r.state, 0o777);
    assert_refused(
        &r.site.config,
        &r.state,
        &format!("chmod go-w {}", r.state.display()),
    );
    // Not even the sticky bit makes the store's own directory safe: others could create
    // the -wal file SQLite would then use.
    chmod(&r.state, 0o1777);
    assert_refused(
        &r.site.config,
        &r.state,
        &format!("chmod go-w {}", r.state.display()),
    );
}

#[test]
fn world_writable_secret_file_is_refused() {
    let r = rig();
    chmod(&r.secret, 0o606);
    assert_refused(
        &r.site.config,
        &r.secret,
        &format!("chmod go-w {}", r.secret.display()),
    );
    // Readable by others only: a leaked secret, refused as well.
    chmod(&r.secret, 0o604);
    assert_refused(
        &r.site.config,
        &r.secret,
        &format!("chmod o-rwx {}", r.secret.display()),
    );
}

#[test]
fn config_symlink_is_followed_only_to_a_safe_file() {
    let r = rig();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("real.toml");
    std::fs::copy(&r.site.config, &target).unwrap();
    let link = r.site.path().join("link.toml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // Through a symlink to a safe file: accepted (the store path is relative to the link's
    // resolved file, so point it at the real store).
    let cfg = std::fs::read_to_string(&target).unwrap().replace(
        "path = \"state/mfa.db\"",
        &format!("path = \"{}\"", r.db.display()),
    );
    std::fs::write(&target, cfg).unwrap();
    chmod(&target, 0o600);
    let v = verdicts(&link);
    assert_eq!(v.pam, PamResult::Success, "{}", v.syslog);
    assert!(v.check_ok, "{}", v.check_out);

    // To a world-writable file: refused, naming the target.
    chmod(&target, 0o666);
    assert_refused(&link, &target, &format!("chmod go-w {}", target.display()));
    // To a safe file in a world-writable directory: refused, naming the directory.
    chmod(&target, 0o600);
    chmod(elsewhere.path(), 0o777);
    assert_refused(
        &link,
        elsewhere.path(),
        &format!("chmod go-w {}", elsewhere.path().display()),
    );
    chmod(elsewhere.path(), 0o700);
}

#[test]
fn inline_secret_in_a_world_readable_config_is_refused_short_secret_warns() {
    require_root("unsafe_files tests");
    let port = free_udp_port();
    let site = Site::with_config(&format!(
        "[store]\npath = \"mfa.db\"\n[policy]\ntrusted_networks = [\"127.0.0.1/32\"]\n\
         [audit]\nsyslog = false\n[radius]\nlisten = [\"127.0.0.1:{port}\"]\nmode = \"code-only\"\n\
         first_factor = \"none\"\n[[radius.clients]]\nname = \"gw\"\naddress = \"127.0.0.1/32\"\n\
         secret = \"short-secret\"\n"
    ));
    assert!(site.mfactl(&["init"]).status.success());
    // 0600: accepted, with a warning about the 12-character secret.
    let v = verdicts(&site.config);
    assert_eq!(v.pam, PamResult::Success, "{}", v.syslog);
    assert!(v.check_ok, "{}", v.check_out);
    assert!(
        v.check_out.contains("warning: ") && v.check_out.contains("12 characters"),
        "{}",
        v.check_out
    );
    assert!(!v.daemon_exited, "{}", v.daemon_log);
    assert!(
        v.daemon_log.contains("warning: ") && v.daemon_log.contains("12 characters"),
        "the daemon should warn at start:\n{}",
        v.daemon_log
    );
    assert!(!v.daemon_log.contains("short-secret"), "{}", v.daemon_log);
    // 0644: others can read the secret.
    chmod(&site.config, 0o644);
    assert_refused(
        &site.config,
        &site.config,
        &format!("chmod o-rwx {}", site.config.display()),
    );
}

#[test]
fn enroll_qr_png_never_overwrites_nor_follows_a_symlink() {
    require_root("unsafe_files tests");
    let site = Site::new("");
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let existing = site.path().join("old.png");
    std::fs::write(&existing, "old").unwrap();
    let link = site.path().join("link.png");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let dangling = site.path().join("dangling.svg");
    std::os::unix::fs::symlink(victim_dir.path().join("new"), &dangling).unwrap();

    for (flag, p) in [
        ("--qr-png", &existing),
        ("--qr-png", &link),
        ("--qr-svg", &dangling),
    ] {
        let user = unique("qr");
        let o = site.mfactl(&["enroll", &user, "--no-confirm", flag, p.to_str().unwrap()]);
        assert!(!o.status.success(), "{flag} {}: {}", p.display(), text(&o));
        assert!(text(&o).contains("exists already"), "{}", text(&o));
        let listed = site.mfactl(&["report", "--format", "csv"]);
        assert!(
            !text(&listed).contains(&user),
            "{user} was enrolled after the refusal"
        );
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "old");
    assert!(!victim_dir.path().join("new").exists());

    // A new file: created 0600.
    let fresh = site.path().join("new.png");
    let o = site.mfactl(&[
        "enroll",
        &unique("qr"),
        "--no-confirm",
        "--qr-png",
        fresh.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// A stack where PAM_IGNORE is observable: after pam_mfa (which ends the stack on success
/// and on failure), pam_echo shows a line (it answers PAM_IGNORE itself) and pam_deny fails.
fn ignore_stack(config: &Path, args: &str) -> PamService {
    PamService::new(
        &unique("mfa-e2e-ign-"),
        &format!(
            "auth [success=done ignore=ignore default=die] {} config={} {args}\n\
             auth optional pam_echo.so MFA-SAID-IGNORE\n\
             auth required pam_deny.so\n\
             account required pam_permit.so\n",
            module_path().display(),
            config.display()
        ),
    )
}

#[test]
fn pam_ignore_only_where_configured() {
    require_root("unsafe_files tests");
    let site = Site::new("grace_days = 14\nself_enroll = \"never\"\n");
    assert!(site.mfactl(&["init"]).status.success());
    let key = fresh_key();
    let enrolled = unique("ig");
    site.enroll(&enrolled, &key);
    let plain = ignore_stack(&site.config, "");
    let unenrolled = ignore_stack(&site.config, "ignore=unenrolled");
    let no_code = ignore_stack(&site.config, "ignore=no_code");
    let ignored = |r: &pam::Run| r.all().contains("MFA-SAID-IGNORE");

    // Not enrolled, in grace, untrusted: success without the argument, PAM_IGNORE with it.
    let r = pamtester(&plain.name, &unique("ig"), Some("192.0.2.1"), "", None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(!ignored(&r), "{r:?}");
    for svc in [&unenrolled, &no_code] {
        let r = pamtester(&svc.name, &unique("ig"), Some("192.0.2.1"), "", None);
        assert!(ignored(&r), "{r:?}");
        assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    }
    // Enrolled, trusted network: PAM_IGNORE only with no_code.
    for (svc, want_ignore) in [(&plain, false), (&unenrolled, false), (&no_code, true)] {
        let r = pamtester(&svc.name, &enrolled, Some("127.0.0.1"), "", None);
        assert_eq!(ignored(&r), want_ignore, "{}: {r:?}", svc.name);
    }
    // A right code is a success, a wrong one a failure: never ignored.
    let r = pamtester_code(
        &no_code.name,
        &enrolled,
        Some("192.0.2.1"),
        &totp(&key, 0),
        None,
    );
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(!ignored(&r), "{r:?}");
    let r = pamtester_code(&no_code.name, &enrolled, Some("192.0.2.1"), "000000", None);
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(!ignored(&r), "{r:?}");
}

#[test]
fn account_and_session_phases_log_that_the_module_does_nothing_there() {
    require_root("unsafe_files tests");
    let site = Site::new("");
    let svc = PamService::new(
        &unique("mfa-e2e-acct-"),
        &format!(
            "auth     required pam_permit.so\n\
             account  required {m} config={c}\n\
             account  required pam_permit.so\n\
             session  required {m} config={c}\n\
             session  required pam_permit.so\n",
            m = module_path().display(),
            c = site.config.display()
        ),
    );
    let log = SyslogCapture::new();
    let o = log
        .command(
            "pamtester",
            &[
                &svc.name,
                "root",
                "acct_mgmt",
                "open_session",
                "close_session",
            ],
        )
        .output()
        .unwrap();
    // PAM_IGNORE, as before: the other modules of each phase decide.
    assert!(o.status.success(), "{}", text(&o));
    let sys = log.text();
    for phase in ["account", "pam_sm_open_session", "pam_sm_close_session"] {
        assert!(
            sys.contains(phase) && sys.contains("does nothing"),
            "{phase} not logged:\n{sys}"
        );
    }
    assert_eq!(sys.matches("does nothing").count(), 3, "{sys}");
    assert!(sys.contains(&format!("{:?}", svc.name)), "{sys}");

    // Alone in the account phase, PAM_IGNORE does not pass it.
    let alone = PamService::new(
        &unique("mfa-e2e-acct-"),
        &format!(
            "auth     required pam_permit.so\naccount  required {} config={}\n",
            module_path().display(),
            site.config.display()
        ),
    );
    let o = std::process::Command::new("pamtester")
        .args([&alone.name, "root", "acct_mgmt"])
        .output()
        .unwrap();
    assert_ne!(code_of(&o), 0, "{}", text(&o));
}

#[test]
fn a_caller_that_cannot_reach_the_store_logs_permission_denied_not_missing() {
    // A screen locker checking the password as the user: the config is readable (root's,
    // 0644), the store directory (root's, 0700) is not searchable.
    let r = rig();
    chmod(r.site.path(), 0o755);
    chmod(&r.site.config, 0o644);
    let svc = PamService::mfa_only(&r.site.config, "");
    let log = SyslogCapture::new();
    log.open_to_all();
    let o = log
        .command(
            "setpriv",
            &[
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "pamtester",
                &svc.name,
                "nobody",
                "authenticate",
            ],
        )
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(pam::pam_result(&o), PamResult::AuthErr, "{}", text(&o));
    let sys = log.text();
    assert!(
        sys.contains(&format!("permission denied on {}", r.db.display())),
        "{sys}"
    );
    assert!(!sys.contains("does not exist"), "{sys}");
    chmod(r.site.path(), 0o700);
}
