//! The built `libpam_mfa.so` loaded by the real libpam through pamtester, with service files
//! written to /etc/pam.d (unique names, removed afterwards) and codes from oathtool.
//! Runs as root (CI does); without root these tests fail with a message saying so.

use mfa_e2e::pam::{
    PamResult, PamService, SyslogCapture, UNAVAILABLE, UnixUser, module_path, pamtester,
    pamtester_code, require_root,
};
use mfa_e2e::{Site, fresh_key, totp, unique, wrong_code};

/// What most tests here start from: root, a site with `extra` config, and a service file
/// with the module alone.
fn mfa_site(extra: &str) -> (Site, PamService) {
    require_root("pam_module tests");
    let site = Site::new(extra);
    let svc = PamService::mfa_only(&site.config, "");
    (site, svc)
}

fn enrolled(site: &Site) -> (String, String) {
    let user = unique("pm");
    let key = fresh_key();
    site.enroll(&user, &key);
    (user, key)
}

#[test]
fn right_code_accepted_once_replay_and_wrong_refused_nothing_logged() {
    let (site, svc) = mfa_site("");
    let (user, key) = enrolled(&site);
    let log = SyslogCapture::new();
    let code = totp(&key, 0);

    let r = pamtester_code(&svc.name, &user, Some("192.0.2.10"), &code, Some(&log));
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(r.prompted(), "{r:?}");

    let r = pamtester_code(&svc.name, &user, Some("192.0.2.10"), &code, Some(&log));
    assert_eq!(r.result, PamResult::AuthErr, "replay: {r:?}");
    assert!(r.all().contains("already used"), "{r:?}");

    let bad = wrong_code(&key);
    let r = pamtester_code(&svc.name, &user, Some("192.0.2.10"), &bad, Some(&log));
    assert_eq!(r.result, PamResult::AuthErr, "wrong code: {r:?}");
    assert!(r.all().contains("Wrong verification code"), "{r:?}");

    // The decisions reach syslog (auth facility, priority 38 = auth.info), the codes do not.
    let sys = log.text();
    for reason in ["valid_code", "replayed_code", "wrong_code"] {
        assert!(sys.contains(reason), "{reason} not in syslog:\n{sys}");
    }
    assert!(sys.contains("<38>") && sys.contains("pam_mfa"), "{sys}");
    assert!(
        !sys.contains(&code) && !sys.contains(&bad),
        "a code in syslog:\n{sys}"
    );
    assert!(!sys.contains(&key), "the key in syslog");
}

#[test]
fn trusted_rhost_passes_without_prompt_host_names_and_empty_need_the_code() {
    // local_logins = "trusted" makes the difference between no PAM_RHOST (local) and an
    // empty one (remote, unplaceable) visible.
    let (site, svc) = mfa_site("local_logins = \"trusted\"\n");

    let (user, _key) = enrolled(&site);
    for rhost in [Some("127.0.0.1"), Some("10.20.30.40"), None] {
        let r = pamtester(&svc.name, &user, rhost, "", None);
        assert_eq!(r.result, PamResult::Success, "{rhost:?}: {r:?}");
        assert!(!r.prompted(), "{rhost:?} was asked for a code: {r:?}");
    }

    for rhost in [
        "localhost",
        "127.0.0.1.nip.io",
        "10.20.30.40.example.com",
        "",
    ] {
        // Asked, and refused without a code...
        let (user, key) = enrolled(&site);
        let r = pamtester(&svc.name, &user, Some(rhost), "\n", None);
        assert!(r.prompted(), "{rhost:?} not asked for a code: {r:?}");
        assert_eq!(r.result, PamResult::AuthErr, "{rhost:?}: {r:?}");
        // ...and let in with one.
        let code = totp(&key, 0);
        let r = pamtester_code(&svc.name, &user, Some(rhost), &code, None);
        assert_eq!(r.result, PamResult::Success, "{rhost:?}: {r:?}");
    }

    // With the default local_logins = "require", a local login needs the code too.
    let (site, svc) = mfa_site("");
    let (user, key) = enrolled(&site);
    let r = pamtester(&svc.name, &user, None, "\n", None);
    assert!(r.prompted(), "{r:?}");
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    let code = totp(&key, 0);
    let r = pamtester_code(&svc.name, &user, None, &code, None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
}

#[test]
fn missing_or_broken_config_or_store_denies_even_from_a_trusted_host() {
    require_root("pam_module tests");
    let site = Site::new("");
    let (user, _key) = enrolled(&site);
    let trusted = Some("127.0.0.1");
    // Sanity: with the good config the trusted host is let in, so the denials below are the
    // errors' doing.
    let good = PamService::mfa_only(&site.config, "");
    assert_eq!(
        pamtester(&good.name, &user, trusted, "", None).result,
        PamResult::Success
    );

    let broken = site.path().join("broken.toml");
    std::fs::write(
        &broken,
        format!(
            "{}\n[policy]\ntrusted_networks = [\"127.0.0.1/32\"]\n",
            std::fs::read_to_string(&site.config).unwrap()
        ),
    )
    .unwrap();
    let bad_value = site.path().join("bad-value.toml");
    std::fs::write(
        &bad_value,
        "[store]\npath = \"mfa.db\"\n[policy]\ntrusted_networks = [\"127.0.0.1/33\"]\n",
    )
    .unwrap();
    let no_store = site.path().join("no-store.toml");
    std::fs::write(
        &no_store,
        "[store]\npath = \"elsewhere.db\"\n[policy]\ntrusted_networks = [\"127.0.0.1/32\"]\n",
    )
    .unwrap();
    let missing = site.path().join("missing.toml");

    let cases = [
        (missing.clone(), "", "missing.toml"),
        (broken.clone(), "", "broken.toml"),
        (bad_value.clone(), "", "bad-value.toml"),
        (no_store.clone(), "", "elsewhere.db"),
        (site.config.clone(), "nullok", "unknown argument"),
    ];
    for (config, args, logged) in cases {
        let svc = PamService::mfa_only(&config, args);
        let log = SyslogCapture::new();
        let r = pamtester(&svc.name, &user, trusted, "", Some(&log));
        assert_eq!(r.result, PamResult::AuthErr, "{config:?} {args}: {r:?}");
        assert!(!r.prompted(), "{r:?}");
        assert!(r.all().contains(UNAVAILABLE), "{r:?}");
        let sys = log.text();
        assert!(
            sys.contains(logged) && sys.contains("<35>"),
            "syslog (auth.err) should name {logged:?}:\n{sys}"
        );
    }
    assert!(
        !site.path().join("elsewhere.db").exists(),
        "the module created a store"
    );
}

#[test]
fn five_wrong_codes_lock_the_user_with_pam_maxtries() {
    let (site, svc) = mfa_site("");
    let (user, key) = enrolled(&site);
    let right = totp(&key, 0);
    let bad = wrong_code(&key);
    // From five addresses: one address alone only locks itself out (tests/tests/lockout.rs).
    for i in 1..=4 {
        let rhost = format!("192.0.2.{}", 10 + i);
        let r = pamtester_code(&svc.name, &user, Some(&rhost), &bad, None);
        assert_eq!(r.result, PamResult::AuthErr, "attempt {i}: {r:?}");
    }
    let r = pamtester_code(&svc.name, &user, Some("192.0.2.15"), &bad, None);
    assert_eq!(r.result, PamResult::MaxTries, "fifth: {r:?}");
    assert!(r.all().contains("locked until"), "{r:?}");
    // Locked: the right code does not help, and is not even asked for.
    let r = pamtester_code(&svc.name, &user, Some("192.0.2.1"), &right, None);
    assert_eq!(r.result, PamResult::MaxTries, "{r:?}");
    assert!(!r.prompted(), "{r:?}");
    // A trusted host still gets in (rule 1 comes before the lock), and an admin unlocks.
    let r = pamtester(&svc.name, &user, Some("127.0.0.1"), "", None);
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(site.mfactl(&["unlock", &user]).status.success());
    let r = pamtester_code(&svc.name, &user, Some("192.0.2.1"), &right, None);
    assert_eq!(r.result, PamResult::Success, "after unlock: {r:?}");
}

#[test]
fn password_then_code_stack_stops_at_a_wrong_password() {
    require_root("pam_module tests");
    let site = Site::new("");
    let home = tempfile::tempdir().unwrap();
    let unix = UnixUser::new(home.path());
    let key = fresh_key();
    site.enroll(&unix.name, &key);
    let svc = PamService::new(
        &unique("mfa-e2e-pw-"),
        &format!(
            "auth     requisite pam_unix.so\n\
             auth     required  {} config={}\n\
             account  required  pam_unix.so\n",
            module_path().display(),
            site.config.display()
        ),
    );
    let code = totp(&key, 0);

    // Wrong password: the stack stops before pam_mfa, so the code is neither asked nor used.
    let r = pamtester(
        &svc.name,
        &unix.name,
        Some("192.0.2.30"),
        &format!("not-the-password\n{code}\n"),
        None,
    );
    assert_eq!(r.result, PamResult::AuthErr, "{r:?}");
    assert!(!r.prompted(), "{r:?}");

    let r = pamtester(
        &svc.name,
        &unix.name,
        Some("192.0.2.30"),
        &format!("{}\n{code}\n", unix.password),
        None,
    );
    assert_eq!(r.result, PamResult::Success, "{r:?}");
    assert!(r.prompted(), "{r:?}");
}
