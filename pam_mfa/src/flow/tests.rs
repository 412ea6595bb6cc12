//! The flow against a scripted conversation and a real store in a temporary directory.
//! The same cases run through the real libpam in tests/tests/pam_*.rs.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use mfa_core::totp::code_at_step;
use mfa_core::{Core, OpenMode, OtcKind, TotpSecret, UserName};

use super::*;
use mfa_store_sqlite::SqliteStore;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Prompt(String),
    Info(String),
    Error(String),
}

/// What the application would do at each prompt.
enum Answer {
    Text(String),
    /// The application's conversation failed (no terminal, Ctrl-D).
    Fail,
    /// The application answers with the current code of the key it saw in the last message.
    CodeFromShownKey,
}

#[derive(Default)]
struct FakePam {
    user: String,
    rhost: Option<String>,
    authtok: Option<String>,
    answers: VecDeque<Answer>,
    /// The application shows no text (info/error fail), like a non-interactive client.
    no_text: bool,
    said: Vec<Said>,
    /// Where each info message also goes: the user reading the screen (push tests).
    screen: Option<std::sync::mpsc::Sender<String>>,
}

impl FakePam {
    fn new(user: &str, rhost: Option<&str>) -> Self {
        Self {
            user: user.into(),
            rhost: rhost.map(str::to_owned),
            ..Default::default()
        }
    }

    fn answer(mut self, a: &str) -> Self {
        self.answers.push_back(Answer::Text(a.into()));
        self
    }

    fn prompts(&self) -> Vec<&str> {
        self.said
            .iter()
            .filter_map(|s| match s {
                Said::Prompt(p) => Some(p.as_str()),
                _ => None,
            })
            .collect()
    }

    fn all_text(&self) -> String {
        self.said
            .iter()
            .map(|s| match s {
                Said::Prompt(t) | Said::Info(t) | Said::Error(t) => t.as_str(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn errors(&self) -> String {
        self.said
            .iter()
            .filter_map(|s| match s {
                Said::Error(t) => Some(t.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn shown_key(&self) -> Option<TotpSecret> {
        self.said.iter().rev().find_map(|s| match s {
            Said::Info(t) => t
                .lines()
                .find_map(|l| l.strip_prefix("Key: "))
                .and_then(|k| TotpSecret::from_base32(k).ok()),
            _ => None,
        })
    }
}

impl Pam for FakePam {
    fn user(&mut self) -> Result<String, PamError> {
        Ok(self.user.clone())
    }
    fn rhost(&self) -> Result<Option<String>, PamError> {
        Ok(self.rhost.clone())
    }
    fn service(&self) -> Result<Option<String>, PamError> {
        Ok(Some("unit".into()))
    }
    fn authtok(&self) -> Result<Option<Zeroizing<String>>, PamError> {
        Ok(self.authtok.clone().map(Zeroizing::new))
    }
    fn prompt_hidden(&mut self, prompt: &str) -> Result<Option<Zeroizing<String>>, PamError> {
        self.said.push(Said::Prompt(prompt.into()));
        match self.answers.pop_front() {
            Some(Answer::Text(t)) => Ok(Some(Zeroizing::new(t))),
            Some(Answer::CodeFromShownKey) => {
                let key = self.shown_key().expect("a key was shown");
                let code = code_at_step(
                    &key,
                    &mfa_config::TotpConfig::default().params(),
                    now_step(),
                );
                Ok(Some(code))
            }
            Some(Answer::Fail) | None => Err(PamError::Call {
                call: "conversation",
                code: PamCode::ConvErr,
            }),
        }
    }
    fn info(&mut self, text: &str) -> Result<(), PamError> {
        if self.no_text {
            return Err(PamError::NoConversation);
        }
        self.said.push(Said::Info(text.into()));
        if let Some(tx) = &self.screen {
            let _ = tx.send(text.into());
        }
        Ok(())
    }
    fn error(&mut self, text: &str) -> Result<(), PamError> {
        if self.no_text {
            return Err(PamError::NoConversation);
        }
        self.said.push(Said::Error(text.into()));
        Ok(())
    }
}

#[derive(Default)]
struct TestLog(RefCell<Vec<String>>);

impl Log for TestLog {
    fn error(&self, msg: &str) {
        self.0.borrow_mut().push(format!("ERR {msg}"));
    }
    fn debug(&self, msg: &str) {
        self.0.borrow_mut().push(format!("DBG {msg}"));
    }
}

impl TestLog {
    fn text(&self) -> String {
        self.0.borrow().join("\n")
    }
}

fn name(user: &str) -> UserName {
    UserName::parse(user).unwrap()
}

fn now_step() -> i64 {
    mfa_core::login::now() / 30
}

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    /// A config with 10.0.0.0/8 trusted and the given extra `[policy]` lines.
    fn new(policy: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mfa.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\npath = \"mfa.db\"\n[policy]\ntrusted_networks = [\"10.0.0.0/8\"]\n\
                 {policy}\n[audit]\nsyslog = false\n"
            ),
        )
        .unwrap();
        let e = Env { dir, config };
        // The store exists, as after `mfactl enroll`.
        drop(e.auth(OpenMode::Create));
        e
    }

    fn auth(&self, mode: OpenMode) -> Core {
        let cfg = mfa_config::load(&self.config).unwrap();
        let store = SqliteStore::open(&cfg.store.path, mode, cfg.store.busy_timeout.0).unwrap();
        Core::open(Arc::new(cfg), Box::new(store), mode, "test").unwrap()
    }

    fn enrol(&self, user: &str) -> TotpSecret {
        let s = TotpSecret::generate().unwrap();
        self.auth(OpenMode::Existing)
            .enrolment()
            .enroll(&name(user), &s, None, false, "test", mfa_core::login::now())
            .unwrap();
        s
    }

    /// A one-time code as the administrator issues it.
    fn one_time_code(&self, user: &str, kind: OtcKind) -> String {
        let a = self.auth(OpenMode::Existing);
        let admin = a.admin("test");
        let now = mfa_core::login::now();
        let code = match kind {
            OtcKind::Backup => admin
                .issue_backup_codes(&name(user), 1, None, now)
                .unwrap()
                .remove(0),
            OtcKind::Temporary => admin.issue_temp_access(&name(user), 3600, 1, now).unwrap(),
        };
        code.to_string()
    }

    fn enrolled(&self, user: &str) -> bool {
        let a = self.auth(OpenMode::Existing);
        a.store()
            .user(&name(user))
            .unwrap()
            .is_some_and(|r| r.enrolled())
    }

    fn arg(&self) -> String {
        format!("config={}", self.config.display())
    }

    fn run(&self, pam: &mut FakePam, extra: &[&str]) -> (PamCode, TestLog) {
        let log = TestLog::default();
        let arg = self.arg();
        let mut args = vec![arg.as_str(), "debug"];
        args.extend_from_slice(extra);
        let code = authenticate(pam, &log, &args, false);
        (code, log)
    }
}

fn code_now(s: &TotpSecret) -> String {
    code_at_step(s, &mfa_config::TotpConfig::default().params(), now_step()).to_string()
}

#[test]
fn right_code_once_then_replay_and_wrong_refused() {
    let env = Env::new("");
    let s = env.enrol("alice");
    let code = code_now(&s);

    let mut p = FakePam::new("alice", Some("192.0.2.7")).answer(&code);
    assert_eq!(env.run(&mut p, &[]).0, PamCode::Success);
    assert_eq!(p.prompts(), [CODE_PROMPT]);

    let mut p = FakePam::new("alice", Some("192.0.2.7")).answer(&code);
    assert_eq!(env.run(&mut p, &[]).0, PamCode::AuthErr);
    assert!(p.errors().contains("already used"), "{:?}", p.said);

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut p = FakePam::new("alice", Some("192.0.2.7")).answer(wrong);
    let (rc, log) = env.run(&mut p, &[]);
    assert_eq!(rc, PamCode::AuthErr);
    assert!(p.errors().contains("Wrong verification code"));
    assert!(!log.text().contains(wrong) && !log.text().contains(&code));
}

#[test]
fn trusted_rhost_needs_no_code_but_names_and_empty_do() {
    let env = Env::new("");
    env.enrol("bob");
    let mut p = FakePam::new("bob", Some("10.1.2.3"));
    assert_eq!(env.run(&mut p, &[]).0, PamCode::Success);
    assert!(p.said.is_empty(), "{:?}", p.said);

    for rhost in ["10.1.2.3.nip.io", "", "localhost", "ws1.example.com"] {
        let mut p = FakePam::new("bob", Some(rhost)).answer("");
        assert_eq!(env.run(&mut p, &[]).0, PamCode::AuthErr, "{rhost:?}");
        assert_eq!(p.prompts(), [CODE_PROMPT], "{rhost:?}");
        assert!(p.errors().contains("code is required"), "{:?}", p.said);
    }
}

#[test]
fn local_logins_follow_the_setting() {
    let env = Env::new("");
    env.enrol("carol");
    let mut p = FakePam::new("carol", None).answer("");
    assert_eq!(env.run(&mut p, &[]).0, PamCode::AuthErr);
    assert_eq!(p.prompts(), [CODE_PROMPT]);

    let env = Env::new("local_logins = \"trusted\"");
    env.enrol("carol");
    let mut p = FakePam::new("carol", None);
    assert_eq!(env.run(&mut p, &[]).0, PamCode::Success);
    assert!(p.prompts().is_empty());
}

#[test]
fn every_internal_error_denies_even_from_a_trusted_host() {
    let env = Env::new("");
    env.enrol("dave");
    let trusted = Some("10.0.0.1");

    // Missing config.
    let log = TestLog::default();
    let mut p = FakePam::new("dave", trusted);
    let missing = env.dir.path().join("nope.toml");
    let arg = format!("config={}", missing.display());
    assert_eq!(authenticate(&mut p, &log, &[&arg], false), PamCode::AuthErr);
    assert!(log.text().contains("nope.toml"), "{}", log.text());
    assert!(p.errors().contains("not available"));

    // Broken config.
    let broken = env.dir.path().join("broken.toml");
    std::fs::write(&broken, "[policy]\ntrusted_networks = [\"10.0.0.0/33\"]\n").unwrap();
    let log = TestLog::default();
    let arg = format!("config={}", broken.display());
    let mut p = FakePam::new("dave", trusted);
    assert_eq!(authenticate(&mut p, &log, &[&arg], false), PamCode::AuthErr);
    assert!(log.text().contains("broken.toml"), "{}", log.text());

    // Store missing: denied, and not created behind the administrator's back.
    let nostore = env.dir.path().join("nostore.toml");
    std::fs::write(
        &nostore,
        "[store]\npath = \"other.db\"\n[policy]\ntrusted_networks = [\"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let log = TestLog::default();
    let arg = format!("config={}", nostore.display());
    let mut p = FakePam::new("dave", trusted);
    assert_eq!(authenticate(&mut p, &log, &[&arg], false), PamCode::AuthErr);
    assert!(!env.dir.path().join("other.db").exists());
    assert!(log.text().contains("other.db"), "{}", log.text());

    // Unknown or malformed arguments.
    for bad in [
        &["conifg=/etc/mfa/mfa.toml"][..],
        &["nullok"],
        &["config=relative.toml"],
    ] {
        let log = TestLog::default();
        let mut p = FakePam::new("dave", trusted);
        assert_eq!(authenticate(&mut p, &log, bad, false), PamCode::AuthErr);
        assert!(log.text().contains("argument"), "{}", log.text());
    }

    // Empty user name.
    let mut p = FakePam::new("", trusted);
    assert_eq!(env.run(&mut p, &[]).0, PamCode::AuthErr);
}

#[test]
fn five_wrong_codes_lock_with_maxtries() {
    let env = Env::new("");
    let s = env.enrol("erin");
    let right = code_now(&s);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    // From five addresses: one address alone only locks itself out.
    for i in 1..=4 {
        let rhost = format!("192.0.2.{}", 10 + i);
        let mut p = FakePam::new("erin", Some(&rhost)).answer(wrong);
        assert_eq!(env.run(&mut p, &[]).0, PamCode::AuthErr, "attempt {i}");
    }
    let mut p = FakePam::new("erin", Some("192.0.2.15")).answer(wrong);
    assert_eq!(env.run(&mut p, &[]).0, PamCode::MaxTries);
    assert!(p.errors().contains("locked"), "{:?}", p.said);
    // Locked: not even asked, and the right code does not help.
    let mut p = FakePam::new("erin", Some("192.0.2.1")).answer(&right);
    assert_eq!(env.run(&mut p, &[]).0, PamCode::MaxTries);
    assert!(p.prompts().is_empty());
}

#[test]
fn grace_period_lets_in_with_days_left_and_without_a_key_from_untrusted() {
    let env = Env::new("grace_days = 14\nself_enroll = \"trusted\"");
    let mut p = FakePam::new("frank", Some("192.0.2.9"));
    assert_eq!(env.run(&mut p, &[]).0, PamCode::Success);
    let text = p.all_text();
    assert!(text.contains("in 14 day(s)"), "{text}");
    assert!(!text.contains("Key:"), "{text}");
    assert!(p.prompts().is_empty());

    let env = Env::new("grace_days = 0\nself_enroll = \"trusted\"");
    let mut p = FakePam::new("frank", Some("192.0.2.9"));
    assert_eq!(env.run(&mut p, &[]).0, PamCode::AuthErr);
    assert!(
        p.errors().contains("Contact your administrator"),
        "{:?}",
        p.said
    );
}

#[test]
fn self_enrolment_from_a_trusted_host() {
    let env = Env::new("grace_days = 0\nself_enroll = \"trusted\"");
    let mut p = FakePam::new("gina", Some("10.9.8.7"));
    p.answers.push_back(Answer::CodeFromShownKey);
    let (rc, log) = env.run(&mut p, &[]);
    assert_eq!(rc, PamCode::Success);
    assert_eq!(p.prompts(), [ENROL_PROMPT]);
    let text = p.all_text();
    assert!(text.contains("█"), "a QR code is shown");
    assert!(text.contains("Account: MFA:gina"), "{text}");
    assert!(text.contains("is enrolled"), "{text}");
    assert!(env.enrolled("gina"));
    let key = p.shown_key().unwrap();
    assert!(!log.text().contains(key.to_base32().as_str()));

    // The next login from an untrusted host asks for a code, and the key is never shown again.
    let mut p = FakePam::new("gina", Some("192.0.2.1")).answer("");
    assert_eq!(env.run(&mut p, &[]).0, PamCode::AuthErr);
    assert_eq!(p.prompts(), [CODE_PROMPT]);
    let mut p = FakePam::new("gina", Some("10.9.8.7"));
    assert_eq!(env.run(&mut p, &[]).0, PamCode::Success);
    assert!(p.said.is_empty(), "{:?}", p.said);
}

#[test]
fn self_enrolment_wrong_or_skipped_keeps_the_original_decision() {
    let env = Env::new("grace_days = 0\nself_enroll = \"trusted\"");
    let mut p = FakePam::new("hank", Some("10.0.0.5"))
        .answer("000000")
        .answer("111111")
        .answer("222222");
    assert_eq!(env.run(&mut p, &[]).0, PamCode::Success);
    assert_eq!(p.prompts().len(), 3);
    assert!(!env.enrolled("hank"));

    let mut p = FakePam::new("hank", Some("10.0.0.5")).answer("");
    assert_eq!(env.run(&mut p, &[]).0, PamCode::Success);
    assert!(p.all_text().contains("skipped"));
    assert!(!env.enrolled("hank"));

    // An application that shows no text: no enrolment, no prompt.
    let mut p = FakePam::new("hank", Some("10.0.0.5"));
    p.no_text = true;
    assert_eq!(env.run(&mut p, &[]).0, PamCode::Success);
    assert!(p.prompts().is_empty());

    // Outside grace and untrusted: still refused; no key.
    let mut p = FakePam::new("hank", Some("192.0.2.5"));
    assert_eq!(env.run(&mut p, &[]).0, PamCode::AuthErr);
    assert!(!p.all_text().contains("Key:"));
}

#[test]
fn self_enrol_anywhere_in_grace() {
    let env = Env::new("grace_days = 14\nself_enroll = \"anywhere\"");
    let mut p = FakePam::new("ivy", Some("198.51.100.4"));
    p.answers.push_back(Answer::CodeFromShownKey);
    assert_eq!(env.run(&mut p, &[]).0, PamCode::Success);
    assert!(p.all_text().contains("in 14 day(s)"));
    assert!(env.enrolled("ivy"));
}

#[test]
fn silent_flag_shows_nothing() {
    let env = Env::new("grace_days = 14\nself_enroll = \"anywhere\"");
    let log = TestLog::default();
    let mut p = FakePam::new("jack", Some("198.51.100.4"));
    let arg = env.arg();
    assert_eq!(authenticate(&mut p, &log, &[&arg], true), PamCode::Success);
    assert!(p.said.is_empty(), "{:?}", p.said);
    assert!(!env.enrolled("jack"));
}

#[test]
fn backup_and_temporary_codes_work_once_at_the_code_prompt() {
    let env = Env::new("");
    env.enrol("kim");
    for kind in [OtcKind::Backup, OtcKind::Temporary] {
        let code = env.one_time_code("kim", kind);
        let mut p = FakePam::new("kim", Some("192.0.2.1")).answer(&code);
        let (rc, log) = env.run(&mut p, &[]);
        assert_eq!(rc, PamCode::Success, "{kind:?}");
        assert!(!log.text().contains(&code));
        let mut p = FakePam::new("kim", Some("192.0.2.1")).answer(&code);
        assert_eq!(env.run(&mut p, &[]).0, PamCode::AuthErr, "{kind:?} twice");
    }
}

#[test]
fn first_pass_options() {
    let env = Env::new("");
    let s = env.enrol("lee");

    // try_first_pass with a code-shaped token: no prompt.
    let mut p = FakePam::new("lee", Some("192.0.2.1"));
    p.authtok = Some(code_now(&s));
    assert_eq!(env.run(&mut p, &["try_first_pass"]).0, PamCode::Success);
    assert!(p.prompts().is_empty());

    // try_first_pass with a password: not counted as a code; prompted instead.
    let s = env.enrol("lou");
    let mut p = FakePam::new("lou", Some("192.0.2.1")).answer(&code_now(&s));
    p.authtok = Some("correct horse battery staple".into());
    assert_eq!(env.run(&mut p, &["try_first_pass"]).0, PamCode::Success);
    assert_eq!(p.prompts(), [CODE_PROMPT]);
    let a = env.auth(OpenMode::Existing);
    assert_eq!(a.store().user(&name("lou")).unwrap().unwrap().failures, 0);

    // use_first_pass never prompts.
    let mut p = FakePam::new("lou", Some("192.0.2.1")).answer("whatever");
    p.authtok = Some("hunter2".into());
    assert_eq!(env.run(&mut p, &["use_first_pass"]).0, PamCode::AuthErr);
    assert!(p.prompts().is_empty());
    let mut p = FakePam::new("lou", Some("192.0.2.1"));
    assert_eq!(env.run(&mut p, &["use_first_pass"]).0, PamCode::AuthErr);
    assert!(p.prompts().is_empty());
}

#[test]
fn a_failed_code_prompt_is_a_missing_code() {
    let env = Env::new("");
    env.enrol("max");
    let mut p = FakePam::new("max", Some("192.0.2.1"));
    p.answers.push_back(Answer::Fail);
    assert_eq!(env.run(&mut p, &[]).0, PamCode::AuthErr);
    let log = env
        .auth(OpenMode::Existing)
        .store()
        .audit(&Default::default())
        .unwrap();
    assert!(
        log.iter()
            .any(|e| e.user == "max" && e.reason == "missing_code")
    );
}

#[test]
fn ignore_is_returned_only_in_its_configured_case() {
    let env = Env::new("grace_days = 14\nself_enroll = \"never\"");
    let s = env.enrol("jill");
    // Not enrolled, in grace: PAM_SUCCESS without the argument, PAM_IGNORE with either.
    for (args, want) in [
        (&[][..], PamCode::Success),
        (&["ignore=unenrolled"], PamCode::Ignore),
        (&["ignore=no_code"], PamCode::Ignore),
    ] {
        let mut p = FakePam::new("kurt", Some("192.0.2.9"));
        assert_eq!(env.run(&mut p, args).0, want, "{args:?}");
    }
    // Trusted network: only no_code turns it into PAM_IGNORE.
    for (args, want) in [
        (&[][..], PamCode::Success),
        (&["ignore=unenrolled"], PamCode::Success),
        (&["ignore=no_code"], PamCode::Ignore),
    ] {
        let mut p = FakePam::new("jill", Some("10.1.2.3"));
        assert_eq!(env.run(&mut p, args).0, want, "{args:?}");
    }
    // A typed code is a decision: success or failure, never PAM_IGNORE.
    let mut p = FakePam::new("jill", Some("192.0.2.9")).answer(&code_now(&s));
    assert_eq!(env.run(&mut p, &["ignore=no_code"]).0, PamCode::Success);
    let mut p = FakePam::new("jill", Some("192.0.2.9")).answer("000000");
    assert_eq!(env.run(&mut p, &["ignore=no_code"]).0, PamCode::AuthErr);
    // Past the deadline, not enrolled: refused, not ignored.
    let env = Env::new("grace_days = 0\nself_enroll = \"never\"");
    let mut p = FakePam::new("kurt", Some("192.0.2.9"));
    assert_eq!(env.run(&mut p, &["ignore=unenrolled"]).0, PamCode::AuthErr);
}

#[test]
fn self_enrolment_under_ignore_is_a_success() {
    let env = Env::new("grace_days = 14\nself_enroll = \"anywhere\"");
    let mut p = FakePam::new("lena", Some("198.51.100.4"));
    p.answers.push_back(Answer::CodeFromShownKey);
    assert_eq!(env.run(&mut p, &["ignore=unenrolled"]).0, PamCode::Success);
    assert!(env.enrolled("lena"));
    // Skipped: still just the grace decision, so PAM_IGNORE.
    let mut p = FakePam::new("mona", Some("198.51.100.4")).answer("");
    assert_eq!(env.run(&mut p, &["ignore=unenrolled"]).0, PamCode::Ignore);
}

#[test]
fn account_and_session_calls_log_that_the_module_does_nothing_there() {
    for phase in [
        Phase::Account,
        Phase::OpenSession,
        Phase::CloseSession,
        Phase::Password,
    ] {
        let log = TestLog::default();
        assert_eq!(not_here(&log, phase, Some("sshd")), PamCode::Ignore);
        let text = log.text();
        assert_eq!(log.0.borrow().len(), 1, "{text}");
        assert!(
            text.starts_with("ERR ") && text.contains("does nothing") && text.contains("\"sshd\""),
            "{text}"
        );
    }
    let log = TestLog::default();
    not_here(&log, Phase::Account, Some("a\nb"));
    assert!(
        !log.text().contains('\n'),
        "the service is quoted: {}",
        log.text()
    );
}

#[test]
fn every_spelling_of_a_name_is_one_user_and_other_domains_are_refused() {
    let env = Env::new("grace_days = 14\n[users]\ndomains = [\"CONTOSO\", \"contoso.com\"]");
    let s = env.enrol("alice");
    for (i, raw) in ["Alice", "CONTOSO\\alice", "alice@Contoso.COM"]
        .into_iter()
        .enumerate()
    {
        // Asked for the code (not a grace pass for a fresh record), and the code works:
        // the steps -1, 0, +1 in turn, each later than the one used before.
        let code = code_at_step(
            &s,
            &mfa_config::TotpConfig::default().params(),
            now_step() - 1 + i as i64,
        );
        let mut p = FakePam::new(raw, Some("192.0.2.7")).answer(&code);
        assert_eq!(
            env.run(&mut p, &[]).0,
            PamCode::Success,
            "{raw}: {:?}",
            p.said
        );
        assert_eq!(p.prompts(), [CODE_PROMPT], "{raw}");
    }
    for raw in ["OTHER\\alice", "alice@evil.example", "CONTOSO\\"] {
        let mut p = FakePam::new(raw, Some("192.0.2.7"));
        let (code, log) = env.run(&mut p, &[]);
        assert_eq!(code, PamCode::AuthErr, "{raw}");
        assert!(p.prompts().is_empty(), "{raw}: {:?}", p.said);
        assert!(
            log.text().contains("not a valid user name"),
            "{}",
            log.text()
        );
    }
    let users: Vec<String> = env
        .auth(OpenMode::Existing)
        .store()
        .users()
        .unwrap()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    assert_eq!(users, ["alice"]);
}

// ------------------------------------------------------------------ push approval (issue 20)

use mfa_core::push::testing::{PhoneKey, subscription_json};
use mfa_core::push::{PushDecision, decision_message};
use mfa_core::{DeviceId, PushId};

const PUSH_ON: &str = "[push]\nenabled = true\nsubscriber = \"mailto:it@example.com\"";

/// A user's phone, registered through the core as the portal does (after a sign-in with a
/// code of the previous step, so the current one is still fresh for a login).
#[derive(Clone)]
struct Phone {
    key: PhoneKey,
    device: DeviceId,
}

impl Env {
    fn phone(&self, user: &str, s: &TotpSecret) -> Phone {
        let core = self.auth(OpenMode::Existing);
        let code = code_at_step(
            s,
            &mfa_config::TotpConfig::default().params(),
            now_step() - 1,
        );
        let mut req = Request::new(
            &name(user),
            ClientAddr::Remote("192.0.2.200".parse().ok()),
            "portal",
        );
        req.now = mfa_core::login::now();
        let (d, generation) = core.login().verify_code_always(&req, &code).unwrap();
        assert!(d.is_allowed(), "{d:?}");
        let key = PhoneKey::generate();
        let dev = core
            .push("test")
            .register_device(
                &name(user),
                &generation.unwrap(),
                "phone",
                &subscription_json("https://fcm.googleapis.com/fcm/send/unit"),
                &key.public(),
                mfa_core::login::now(),
            )
            .unwrap();
        Phone {
            key,
            device: dev.id,
        }
    }

    /// The portal's heartbeat, as a running portal writes it.
    fn heartbeat(&self) {
        self.auth(OpenMode::Existing)
            .push("portal")
            .heartbeat(mfa_core::login::now())
            .unwrap();
    }

    fn reasons(&self) -> Vec<String> {
        self.auth(OpenMode::Existing)
            .store()
            .audit(&Default::default())
            .unwrap()
            .iter()
            .map(|e| e.reason.to_string())
            .collect()
    }
}

/// What the phone does with the request it is shown.
#[derive(Clone, Copy)]
enum OnPhone {
    /// Approves with the number the login showed.
    Approve,
    /// Approves with another number.
    WrongNumber,
    Deny,
}

/// The user with the phone: reads the number the login shows, finds the request on the
/// phone (the app's list) and decides, signed with the phone's key.
fn user_with_phone(
    env: &Env,
    phone: Phone,
    act: OnPhone,
) -> (
    std::sync::mpsc::Sender<String>,
    std::thread::JoinHandle<String>,
) {
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let config = env.config.clone();
    let h = std::thread::spawn(move || {
        let shown = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        let number: Option<u8> = shown
            .strip_prefix("Enter ")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok());
        let cfg = mfa_config::load(&config).unwrap();
        let store = SqliteStore::open(
            &cfg.store.path,
            OpenMode::Existing,
            cfg.store.busy_timeout.0,
        )
        .unwrap();
        let core = Core::open(Arc::new(cfg), Box::new(store), OpenMode::Existing, "t").unwrap();
        let push = core.push("mfa-portal");
        let now = mfa_core::login::now();
        let pending = push.pending_for_device(&phone.device, now).unwrap();
        assert_eq!(pending.len(), 1, "{pending:?}");
        let id: PushId = pending[0].id;
        let d = match act {
            OnPhone::Approve => PushDecision::Approve { number },
            OnPhone::WrongNumber => PushDecision::Approve {
                number: number.map(|n| if n == 99 { 10 } else { n + 1 }),
            },
            OnPhone::Deny => PushDecision::Deny,
        };
        let sig = phone.key.sign(&decision_message(&id, &phone.device, d));
        push.decide(&id, &phone.device, d, &sig, now).unwrap();
        shown
    });
    (tx, h)
}

fn push_login(env: &Env, user: &str, phone: Phone, act: OnPhone) -> (PamCode, FakePam, String) {
    env.heartbeat();
    let (tx, phone) = user_with_phone(env, phone, act);
    let mut p = FakePam::new(user, Some("192.0.2.7")).answer("");
    p.screen = Some(tx);
    let (rc, _log) = env.run(&mut p, &[]);
    let shown = phone.join().unwrap();
    (rc, p, shown)
}

#[test]
fn enter_then_approve_with_the_number_shown_lets_in_once() {
    let env = Env::new(PUSH_ON);
    let s = env.enrol("pia");
    let phone = env.phone("pia", &s);
    let (rc, p, shown) = push_login(&env, "pia", phone, OnPhone::Approve);
    assert_eq!(rc, PamCode::Success, "{:?}", p.said);
    assert_eq!(p.prompts(), [CODE_OR_PUSH_PROMPT]);
    assert!(
        shown.starts_with("Enter ") && shown.contains(" on your phone"),
        "{shown}"
    );
    let reasons = env.reasons();
    assert!(reasons.contains(&"push_sent".to_string()), "{reasons:?}");
    assert!(
        reasons.contains(&"push_approved".to_string()),
        "{reasons:?}"
    );
}

#[test]
fn deny_and_a_wrong_number_refuse_and_a_typed_code_still_works() {
    let env = Env::new(PUSH_ON);
    let s = env.enrol("quinn");
    let phone = env.phone("quinn", &s);
    let (rc, p, _) = push_login(&env, "quinn", phone.clone(), OnPhone::Deny);
    assert_eq!(rc, PamCode::AuthErr, "{:?}", p.said);
    assert!(p.errors().contains("denied on your phone"), "{:?}", p.said);

    let (rc, p, _) = push_login(&env, "quinn", phone, OnPhone::WrongNumber);
    assert_eq!(rc, PamCode::AuthErr, "{:?}", p.said);
    assert!(p.errors().contains("denied on your phone"), "{:?}", p.said);

    // The prompt that offers the push takes a code as ever.
    let mut p = FakePam::new("quinn", Some("192.0.2.7")).answer(&code_now(&s));
    assert_eq!(env.run(&mut p, &[]).0, PamCode::Success, "{:?}", p.said);
    assert_eq!(p.prompts(), [CODE_OR_PUSH_PROMPT]);
    let reasons = env.reasons();
    assert_eq!(
        reasons.iter().filter(|r| *r == "push_denied").count(),
        4,
        "two phone decisions and two logins: {reasons:?}"
    );
    assert_eq!(reasons.last().map(String::as_str), Some("valid_code"));
}

/// The push is offered only where the core has it on for the service and the user has a
/// phone; an empty answer elsewhere is a missing code, as before.
#[test]
fn no_offer_without_push_on_or_a_phone() {
    let env = Env::new("");
    env.enrol("rita");
    let mut p = FakePam::new("rita", Some("192.0.2.7")).answer("");
    assert_eq!(env.run(&mut p, &[]).0, PamCode::AuthErr);
    assert_eq!(p.prompts(), [CODE_PROMPT]);
    assert!(p.errors().contains("code is required"), "{:?}", p.said);

    let env = Env::new(PUSH_ON);
    env.enrol("rita");
    env.heartbeat();
    let mut p = FakePam::new("rita", Some("192.0.2.7")).answer("");
    assert_eq!(env.run(&mut p, &[]).0, PamCode::AuthErr);
    assert_eq!(p.prompts(), [CODE_PROMPT], "no phone, no offer");
    assert!(!env.reasons().contains(&"push_sent".to_string()));

    // Under PAM_SILENT the number could not be shown: no offer.
    let s = env.enrol("sven");
    let _phone = env.phone("sven", &s);
    let log = TestLog::default();
    let arg = env.arg();
    let mut p = FakePam::new("sven", Some("192.0.2.7")).answer("");
    assert_eq!(authenticate(&mut p, &log, &[&arg], true), PamCode::AuthErr);
    assert_eq!(p.prompts(), [CODE_PROMPT]);
}

/// A push the core refuses (no portal to deliver it; one already pending) is never waited
/// for: the reason is shown and the code asked for, which still works.
#[test]
fn a_refused_push_says_why_and_asks_for_the_code() {
    let env = Env::new(PUSH_ON);
    let s = env.enrol("tom");
    let _phone = env.phone("tom", &s);
    // No heartbeat: no portal is running.
    let mut p = FakePam::new("tom", Some("192.0.2.7"))
        .answer("")
        .answer(&code_now(&s));
    assert_eq!(env.run(&mut p, &[]).0, PamCode::Success, "{:?}", p.said);
    assert_eq!(p.prompts(), [CODE_OR_PUSH_PROMPT, CODE_PROMPT]);
    assert!(p.errors().contains("unavailable right now"), "{:?}", p.said);

    // One pending already (written as another login would): refused, and an empty code
    // after it denies.
    env.heartbeat();
    let core = env.auth(OpenMode::Existing);
    let mut req = Request::new(
        &name("tom"),
        ClientAddr::Remote("192.0.2.7".parse().ok()),
        Service::Pam("unit".into()),
    );
    req.now = mfa_core::login::now();
    core.push("other-login").start(&req, true).unwrap();
    let mut p = FakePam::new("tom", Some("192.0.2.7")).answer("").answer("");
    assert_eq!(env.run(&mut p, &[]).0, PamCode::AuthErr, "{:?}", p.said);
    assert!(p.errors().contains("already waiting"), "{:?}", p.said);
}
