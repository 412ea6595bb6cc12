//! The roll-out through the real PAM stack (issue 5): go-live and grace messages, self-
//! enrolment at first login driven by expect (the key read back from the conversation,
//! the code from oathtool), temporary access and backup codes at the code prompt, and no
//! code in syslog, in the output or in the audit trail. Dates are written relative to now.
//! Runs as root (CI does).

use mfa_e2e::pam::{
    PamResult, PamService, SyslogCapture, UnixUser, create_store, field, pamtester, pamtester_code,
    require_root, self_enrol, toml_time,
};
use mfa_e2e::{Site, fresh_key, printed_codes, require_tool, text, totp, unique};
use serde_json::Value;

fn report_user(site: &Site, user: &str) -> Value {
    let o = site.mfactl(&["report", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == user)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn not_enrolled_user_is_let_in_with_days_left_during_grace_and_refused_after() {
    require_root("pam_rollout tests");
    // Enforced since yesterday, 14 days of grace from the user's first login.
    let site = Site::new(&format!(
        "enforce_from = {}\ngrace_days = 14\nself_enroll = \"never\"\n",
        toml_time(-1)
    ));
    create_store(&site.config);
    let svc = PamService::mfa_only(&site.config, "");
    // A name the system knows (NSS): only such a name gets a record at a PAM login.
    let unix = UnixUser::new(site.path());
    let user = unix.name.clone();
    let r = pamtester(&svc.name, &user, Some("192.0.2.40"), "", None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(
        r.stdout
            .contains("MFA becomes required for this account in 14 day(s)"),
        "{r:?}"
    );
    assert!(r.stdout.contains("administrator to enrol"), "{r:?}");
    assert!(!r.prompted(), "{r:?}");
    let u = report_user(&site, &user);
    assert_eq!(u["status"], "grace (14 days left)", "{u}");

    // Go-live in 3 days: the 14 days count from then.
    let site = Site::new(&format!(
        "enforce_from = {}\ngrace_days = 14\n",
        toml_time(3)
    ));
    create_store(&site.config);
    let svc = PamService::mfa_only(&site.config, "");
    let stranger = unique("gl");
    let r = pamtester(&svc.name, &stranger, Some("192.0.2.41"), "", None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(r.stdout.contains("in 17 day(s)"), "{r:?}");
    // A name the system does not know gets its answer but no record.
    assert_eq!(report_user(&site, &stranger), Value::Null);

    // Past the deadline: refused, and told whom to ask.
    let site = Site::new(&format!(
        "enforce_from = {}\ngrace_days = 0\n",
        toml_time(-1)
    ));
    create_store(&site.config);
    let svc = PamService::mfa_only(&site.config, "");
    let r = pamtester(&svc.name, &unique("od"), Some("192.0.2.42"), "", None);
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(r.all().contains("Contact your administrator"), "{r:?}");
}

#[test]
fn self_enrolment_at_first_login_from_a_trusted_host() {
    require_root("pam_rollout tests");
    require_tool("expect");
    let site = Site::new("self_enroll = \"trusted\"\ngrace_days = 14\n");
    create_store(&site.config);
    let svc = PamService::mfa_only(&site.config, "");
    // A name the system knows (NSS): only such a name gets a record at a PAM login.
    let unix = UnixUser::new(site.path());
    let user = unix.name.clone();

    // From an untrusted address: the grace message, but no key and no QR code.
    let r = pamtester(&svc.name, &user, Some("192.0.2.50"), "", None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(r.stdout.contains("in 14 day(s)"), "{r:?}");
    assert!(r.stdout.contains("office network to enrol"), "{r:?}");
    assert!(
        !r.all().contains("Key:") && !r.all().contains('█'),
        "secret shown: {r:?}"
    );
    assert_eq!(report_user(&site, &user)["enrolled"], false);

    // From the office: QR code and key through the conversation, confirmed with a code
    // computed by oathtool from the key as shown.
    let log = SyslogCapture::new();
    let argv = log.wrap(&[
        "pamtester",
        "-I",
        "rhost=127.0.0.1",
        &svc.name,
        &user,
        "authenticate",
    ]);
    let o = self_enrol(site.path(), &argv, "", "successfully authenticated");
    let out = text(&o);
    assert!(o.status.success(), "self-enrolment failed:\n{out}");
    assert!(out.contains('█'), "no QR code:\n{out}");
    assert!(out.contains(&format!("Account: Test:{user}")), "{out}");
    assert!(out.contains("is enrolled"), "{out}");
    let key = field(&out, "SHOWN-KEY=").to_string();
    let sent = field(&out, "SENT-CODE=").to_string();
    let sys = log.text();
    assert!(sys.contains("self_enrolled"), "{sys}");
    assert!(
        !sys.contains(&key) && !sys.contains(&sent),
        "key or code in syslog:\n{sys}"
    );

    let u = report_user(&site, &user);
    assert_eq!(u["enrolled"], true, "{u}");
    assert_eq!(u["status"], "enrolled", "{u}");

    // The next login from outside asks for a code; the confirmation code cannot be
    // replayed; the next step's code from the same key works.
    let r = pamtester_code(&svc.name, &user, Some("192.0.2.51"), &sent, None);
    assert!(r.prompted(), "{r:?}");
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(r.all().contains("already used"), "{r:?}");
    let next = totp(&key, 1);
    let r = pamtester_code(&svc.name, &user, Some("192.0.2.51"), &next, None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");

    // From the office again: in without a code, and the key is never shown again.
    let r = pamtester(&svc.name, &user, Some("127.0.0.1"), "", None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(!r.all().contains("Key:") && !r.all().contains('█'), "{r:?}");
}

#[test]
fn skipped_self_enrolment_keeps_the_login_and_stores_nothing() {
    require_root("pam_rollout tests");
    let site = Site::new("self_enroll = \"trusted\"\n");
    create_store(&site.config);
    let svc = PamService::mfa_only(&site.config, "");
    // A name the system knows (NSS): only such a name gets a record at a PAM login.
    let unix = UnixUser::new(site.path());
    let user = unix.name.clone();
    // An empty answer skips; three wrong ones give up. Either way the trusted login goes on.
    for input in ["\n", "000000\n111111\n222222\n"] {
        let r = pamtester(&svc.name, &user, Some("127.0.0.1"), input, None);
        assert_eq!(r.result, PamResult::Success, "{r:?}");
        assert!(r.stdout.contains("Key: "), "{r:?}");
        assert_eq!(report_user(&site, &user)["enrolled"], false);
    }
}

fn mfactl_code(site: &Site, args: &[&str]) -> Vec<String> {
    let o = site.mfactl(args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    let codes = printed_codes(&String::from_utf8_lossy(&o.stdout));
    assert!(
        !codes.is_empty(),
        "no code printed by {args:?}: {}",
        text(&o)
    );
    codes
}

/// Both forms a code can be written in: as printed ("1234 5678") and as typed.
fn forms(code: &str) -> [String; 2] {
    [code.to_string(), format!("{} {}", &code[..4], &code[4..])]
}

#[test]
fn temporary_access_and_backup_codes_work_once_and_are_never_logged() {
    require_root("pam_rollout tests");
    let site = Site::new("");
    let svc = PamService::mfa_only(&site.config, "");
    let user = unique("tb");
    site.enroll(&user, &fresh_key());
    let log = SyslogCapture::new();
    let mut outputs = String::new();
    let mut used = Vec::new();

    let temp = mfactl_code(&site, &["temp-access", &user, "--valid", "1h"]).remove(0);
    let backup = mfactl_code(&site, &["backup-codes", &user, "--count", "3"]);
    assert_eq!(backup.len(), 3);
    for (what, code) in [("temporary", &temp), ("backup", &backup[0])] {
        // Typed with the space as printed.
        let typed = format!("{} {}\n", &code[..4], &code[4..]);
        let r = pamtester(&svc.name, &user, Some("192.0.2.60"), &typed, Some(&log));
        assert_eq!(r.result, PamResult::Success, "{what}: {r:?}");
        outputs.push_str(&r.all());
        let r = pamtester(&svc.name, &user, Some("192.0.2.60"), &typed, Some(&log));
        assert_eq!(r.result, PamResult::AuthErr, "{what} used twice: {r:?}");
        outputs.push_str(&r.all());
        used.push(code.clone());
    }
    // Another backup code of the set still works.
    let r = pamtester_code(&svc.name, &user, Some("192.0.2.60"), &backup[1], Some(&log));
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    outputs.push_str(&r.all());
    used.push(backup[1].clone());

    // A lost phone: unlinked, past any grace, a temporary access code still lets in once.
    let site2 = Site::new("grace_days = 0\n");
    let svc2 = PamService::mfa_only(&site2.config, "");
    let lost = unique("lp");
    site2.enroll(&lost, &fresh_key());
    assert!(site2.mfactl(&["unlink", &lost]).status.success());
    let r = pamtester(&svc2.name, &lost, Some("192.0.2.61"), "", None);
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    let t2 = mfactl_code(&site2, &["temp-access", &lost, "--valid", "1h"]).remove(0);
    let r = pamtester_code(&svc2.name, &lost, Some("192.0.2.61"), &t2, Some(&log));
    assert!(r.prompted(), "{r:?}");
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    outputs.push_str(&r.all());
    used.push(t2);

    // Expired temporary access does not work.
    let t3 = mfactl_code(&site, &["temp-access", &user, "--valid", "2s"]).remove(0);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let r = pamtester_code(&svc.name, &user, Some("192.0.2.60"), &t3, Some(&log));
    assert_eq!(r.result, PamResult::AuthErr, "expired: {r:?}");
    outputs.push_str(&r.all());
    used.push(t3);

    let sys = log.text();
    let audit = format!(
        "{}{}",
        text(&site.mfactl(&["log", "--format", "json"])),
        text(&site2.mfactl(&["log", "--format", "json"]))
    );
    for reason in ["temporary_access", "backup_code"] {
        assert!(audit.contains(reason), "{reason} not audited:\n{audit}");
        assert!(sys.contains(reason), "{reason} not in syslog:\n{sys}");
    }
    for code in &used {
        for form in forms(code) {
            assert!(!sys.contains(&form), "{form} in syslog:\n{sys}");
            assert!(!audit.contains(&form), "{form} in the audit log:\n{audit}");
            assert!(!outputs.contains(&form), "{form} echoed:\n{outputs}");
        }
    }
}
