//! Push approval (issue 20) in the end-to-end tests: the two parties the front ends wait
//! for, played through the core's own API as production calls it.
//!
//! - [`FakePortal`]: the one sender. It writes the portal's heartbeat and reads the outbox
//!   as mfa-portal does (`Push::heartbeat`, `Push::outbox`, `Push::delivered`), so a request
//!   is pending-and-sent as in production; it records what it delivered (how many pushes
//!   each sign-in sent). It delivers to no push service: the phone below learns of the
//!   request from it.
//! - [`Phone`]: a device registered through `Push::register_device` after a sign-in with a
//!   code (as My account does), holding a P-256 key that signs each decision
//!   (`Push::decide`), as the installed web app does with WebCrypto.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mfa_core::push::testing::{PhoneKey, subscription_json};
use mfa_core::push::{Delivery, PushDecision, decision_message};
use mfa_core::{ClientAddr, Core, DeviceId, OpenMode, PushId, Request, UserName};

use crate::pam::{PamResult, Run, SyslogCapture, pam_result};
use crate::require_tool;

/// `[push]` for a test site: on, a subscriber, and `extra` keys (a shorter `timeout`).
pub fn push_toml(extra: &str) -> String {
    format!(
        "\n[push]\nenabled = true\nsubscriber = \"mailto:it@example.com\"\nrate = \"100/10m\"\n{extra}\n"
    )
}

/// The core of the site `config` names (SQLite or PostgreSQL), as a portal node opens it.
pub fn core_of(config: &Path) -> Core {
    mfa_store_open::core_from_config_file(config, OpenMode::Existing, "e2e-phone").unwrap()
}

fn now() -> i64 {
    mfa_core::login::now()
}

/// One request the fake portal delivered.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub id: PushId,
    pub user: String,
    /// The payload the phone would decrypt (never the number).
    pub payload: String,
}

/// The portal's sender loop, on a thread, until dropped.
pub struct FakePortal {
    stop: Arc<AtomicBool>,
    delivered: Arc<Mutex<Vec<Delivered>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakePortal {
    /// Starts writing the heartbeat and delivering the outbox of the store `config` names.
    pub fn start(config: &Path) -> Self {
        let core = core_of(config);
        // Alive before the first login asks.
        core.push("mfa-portal").heartbeat(now()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let (s, d) = (stop.clone(), delivered.clone());
        let thread = std::thread::spawn(move || {
            let push = core.push("mfa-portal");
            let mut beat = Instant::now();
            while !s.load(Ordering::Acquire) {
                if beat.elapsed() >= Duration::from_secs(1) {
                    push.heartbeat(now()).unwrap();
                    beat = Instant::now();
                }
                for o in push.outbox(now(), 50).unwrap() {
                    let report: Vec<(DeviceId, Delivery)> = o
                        .targets
                        .iter()
                        .map(|t| (t.device, Delivery::Sent))
                        .collect();
                    push.delivered(&o.request, &report, now()).unwrap();
                    d.lock().unwrap().push(Delivered {
                        id: o.request,
                        user: o.user.to_string(),
                        payload: o.payload,
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        FakePortal {
            stop,
            delivered,
            thread: Some(thread),
        }
    }

    /// Everything delivered so far.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.delivered.lock().unwrap().clone()
    }

    /// The pushes delivered for `user` so far.
    pub fn pushes_to(&self, user: &str) -> Vec<Delivered> {
        self.delivered()
            .into_iter()
            .filter(|d| d.user == user)
            .collect()
    }

    /// Waits (up to 20 s) until `n` pushes for `user` were delivered; the newest one.
    pub fn wait_for(&self, user: &str, n: usize) -> Delivered {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.pushes_to(user);
            if got.len() >= n {
                return got[n - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no push number {n} for {user} was delivered: {:?}",
                self.delivered()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FakePortal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the user does on the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnPhone {
    /// Approve, typing this number (`None`: no number asked).
    Approve(Option<u8>),
    Deny,
    /// "This wasn't me".
    Fraud,
}

/// A registered phone of one user.
#[derive(Clone)]
pub struct Phone {
    pub config: PathBuf,
    pub user: String,
    pub device: DeviceId,
    key: PhoneKey,
}

impl Phone {
    /// Registers a phone for `user`, enrolled with `key` (base32), after a sign-in with the
    /// code of the previous 30 s step from oathtool (so the current step's code is still
    /// fresh for a login of the test).
    pub fn register(config: &Path, user: &str, key: &str) -> Phone {
        let endpoint = format!(
            "https://fcm.googleapis.com/fcm/send/{}",
            crate::unique("e2e")
        );
        Self::register_with(config, user, key, &subscription_json(&endpoint))
    }

    /// [`Phone::register`] with the browser's subscription `subscription` (JSON: one a
    /// test push service made, which the real portal then delivers to).
    pub fn register_with(config: &Path, user: &str, key: &str, subscription: &str) -> Phone {
        let core = core_of(config);
        let name = UserName::parse(user).unwrap();
        let mut req = Request::new(
            &name,
            ClientAddr::Remote("192.0.2.250".parse().ok()),
            "mfa-portal",
        );
        req.now = now();
        let code = crate::totp(key, -1);
        let (d, generation) = core.login().verify_code_always(&req, &code).unwrap();
        assert!(d.is_allowed(), "the portal sign-in: {d:?}");
        let phone = PhoneKey::generate();
        let dev = core
            .push("mfa-portal")
            .register_device(
                &name,
                &generation.unwrap(),
                "test phone",
                subscription,
                &phone.public(),
                now(),
            )
            .unwrap();
        Phone {
            config: config.to_path_buf(),
            user: user.into(),
            device: dev.id,
            key: phone,
        }
    }

    /// Decides request `id` on this phone, signed with its key; the core's answer.
    pub fn decide(&self, id: &PushId, what: OnPhone) -> mfa_core::push::Decided {
        let d = match what {
            OnPhone::Approve(number) => PushDecision::Approve { number },
            OnPhone::Deny => PushDecision::Deny,
            OnPhone::Fraud => PushDecision::Fraud,
        };
        let sig = self.key.sign(&decision_message(id, &self.device, d));
        core_of(&self.config)
            .push("mfa-portal")
            .decide(id, &self.device, d, &sig, now())
            .unwrap()
    }
}

/// The number a login shows ("Enter 42 on your phone..."), where a line of `text` says it.
pub fn shown_number(text: &str) -> Option<u8> {
    text.lines().find_map(|l| {
        let at = l.find("Enter ")?;
        let rest = &l[at + "Enter ".len()..];
        let (n, tail) = rest.split_once(' ')?;
        tail.starts_with("on your phone").then(|| n.parse().ok())?
    })
}

/// The codes of the audit trail of `config`'s store for `user`, oldest first.
pub fn audit_reasons(config: &Path, user: &str) -> Vec<String> {
    core_of(config)
        .store()
        .audit(&Default::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.user == user)
        .map(|e| e.reason.to_string())
        .collect()
}

/// A pamtester run whose output is read as it comes (the number shown while the module
/// waits): pamtester under `stdbuf -oL`, since misc_conv writes PAM_TEXT_INFO to stdout
/// through stdio, which a pipe would otherwise hold back until the end.
pub struct LivePamtester {
    child: Child,
    lines: Receiver<String>,
    seen: String,
}

impl LivePamtester {
    /// `pamtester SERVICE USER authenticate` with `input` for its prompts.
    pub fn start(
        service: &str,
        user: &str,
        rhost: Option<&str>,
        input: &str,
        syslog: Option<&SyslogCapture>,
    ) -> Self {
        require_tool("pamtester");
        require_tool("stdbuf");
        let mut args: Vec<String> = vec!["-oL".into(), "pamtester".into()];
        if let Some(r) = rhost {
            args.push("-I".into());
            args.push(format!("rhost={r}"));
        }
        args.extend([service.into(), user.into(), "authenticate".into()]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = match syslog {
            Some(s) => s.command("stdbuf", &argv),
            None => {
                let mut c = Command::new("stdbuf");
                c.args(&argv);
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        let (tx, rx) = channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        LivePamtester {
            child,
            lines: rx,
            seen: String::new(),
        }
    }

    /// Waits (up to 20 s) for a line with `needle`; returns it.
    pub fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push_str(&l);
                    self.seen.push('\n');
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => panic!("pamtester never said {needle:?}; it said:\n{}", self.seen),
            }
        }
    }

    /// Waits for pamtester to end; what it returned, and all it said.
    pub fn finish(mut self) -> Run {
        let status = self.child.wait().unwrap();
        // The readers end with the pipes.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(l) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push_str(&l);
            self.seen.push('\n');
        }
        let o = std::process::Output {
            status,
            stdout: self.seen.clone().into_bytes(),
            stderr: Vec::new(),
        };
        let result: PamResult = pam_result(&o);
        Run {
            result,
            stdout: self.seen,
            stderr: String::new(),
        }
    }
}
