//! The modes against a fake [`ModeBackend`] that records what it is asked, in order, and
//! answers as scripted: which steps each mode takes, in which order, with what, and which
//! it never takes.
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::time::Duration;

use mfa_config::{ClientIpAttribute, ClientSettings, Config, FirstFactor, RadiusMode};
use mfa_core::policy::{Decision, Reason};
use mfa_core::{Attempt, ClientAddr, Request, UserName};
use mfa_pam_client::PamCheck;
use mfa_radius_proto::{AttrType, Builder, Code, Packet, hide_password};
use zeroize::Zeroizing;

use super::{InternalError, ModeBackend, RequestError, answer};
use crate::challenge::Challenges;
use crate::runtime::Nas;

const SECRET: &[u8] = b"a shared secret of some length";
const AUTHENTICATOR: [u8; 16] = [7; 16];

/// What the fake was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Look {
        service: String,
    },
    Groups,
    Password(String),
    /// The final decision: the code (None: none expected), the groups, whether vouched, and
    /// the client address it was made for.
    Attempt {
        code: Option<String>,
        groups: Vec<String>,
        vouched: bool,
        client: ClientAddr,
    },
    DenyFirstFactor,
    DenyRequest(Reason),
}

struct Fake {
    config: Config,
    /// The core's admission rule (`Login::admit_name`), over a throw-away store: only the
    /// core makes an `Admission`.
    core: mfa_core::Core,
    _dir: tempfile::TempDir,
    challenges: Mutex<Challenges>,
    calls: Mutex<Vec<Call>>,
    /// What `look` decides.
    look: Decision,
    /// Whether PAM takes the password, or that the PAM lane is full.
    password: Result<bool, ()>,
}

impl Fake {
    fn new(look: Decision) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.store.path = dir.path().join("mfa.db");
        cfg.audit.syslog = false;
        let core = mfa_store_open::open_core(
            std::sync::Arc::new(cfg),
            mfa_core::OpenMode::Create,
            "test",
            mfa_core::NameCheck::Skip,
        )
        .unwrap();
        Self {
            core,
            _dir: dir,
            config: Config::default(),
            challenges: Mutex::new(Challenges::new(64)),
            calls: Mutex::new(Vec::new()),
            look,
            password: Ok(true),
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, c: Call) {
        self.calls.lock().unwrap().push(c);
    }
}

impl ModeBackend for Fake {
    fn config(&self) -> &Config {
        &self.config
    }

    fn admit(
        &self,
        user: &UserName,
        by: mfa_core::Voucher,
    ) -> Result<mfa_core::Admission, mfa_core::CoreError> {
        self.core.login().admit_name(user, by)
    }

    async fn user_name(&self, raw: &str) -> Result<Option<UserName>, RequestError> {
        Ok(mfa_core::user_name(&self.config, raw).ok())
    }

    fn challenges(&self) -> std::sync::MutexGuard<'_, Challenges> {
        self.challenges.lock().unwrap()
    }

    async fn look(&self, req: &Request) -> Result<(Decision, Vec<String>), RequestError> {
        self.record(Call::Look {
            service: req.service.to_string(),
        });
        Ok((self.look.clone(), vec!["staff".into()]))
    }

    async fn groups(&self, _user: &UserName) -> Result<Vec<String>, RequestError> {
        self.record(Call::Groups);
        Ok(vec!["looked-up".into()])
    }

    async fn check_password(
        &self,
        _user: &UserName,
        password: Zeroizing<Vec<u8>>,
        _addr: ClientAddr,
    ) -> Result<PamCheck, RequestError> {
        self.record(Call::Password(
            String::from_utf8(password.to_vec()).unwrap(),
        ));
        let ok = self.password.map_err(|()| RequestError::Overloaded)?;
        Ok(PamCheck {
            ok,
            status: if ok { 0 } else { 7 },
            fail_delay: if ok {
                Duration::ZERO
            } else {
                Duration::from_millis(1500)
            },
            error: None,
        })
    }

    async fn attempt(&self, a: Attempt) -> Result<Decision, RequestError> {
        self.record(Call::Attempt {
            code: a.code.as_ref().map(|c| c.to_string()),
            groups: a.groups.clone(),
            vouched: a.req.admitted(),
            client: a.req.client,
        });
        Ok(Decision::allow(Reason::ValidCode))
    }

    async fn deny_first_factor(&self, _req: Request) -> Result<Decision, RequestError> {
        self.record(Call::DenyFirstFactor);
        Ok(Decision::deny(Reason::WrongPassword))
    }

    async fn deny_request(&self, _req: Request, reason: Reason) -> Result<(), RequestError> {
        self.record(Call::DenyRequest(reason));
        Ok(())
    }
}

fn nas(mode: RadiusMode, first_factor: FirstFactor) -> Nas {
    Nas {
        name: "gw".into(),
        net: "192.0.2.0/24".parse().unwrap(),
        secret: Zeroizing::new(SECRET.to_vec()),
        cert: None,
        settings: ClientSettings {
            kind: if mode == RadiusMode::Challenge && first_factor == FirstFactor::None {
                mfa_config::ClientKind::PamHosts
            } else {
                mfa_config::ClientKind::Gateway
            },
            mode,
            first_factor,
            client_ip_attribute: ClientIpAttribute::CallingStationId,
            require_message_authenticator: true,
        },
        several_hosts: false,
    }
}

/// An Access-Request; `password` is hidden with the shared secret, `extra` added as is.
fn request(user: &[&str], password: Option<&[u8]>, extra: &[(AttrType, &[u8])]) -> Vec<u8> {
    let mut b = Builder::request(Code::ACCESS_REQUEST, 9, true);
    for u in user {
        b.add(AttrType::USER_NAME, u.as_bytes()).unwrap();
    }
    if let Some(p) = password {
        let hidden = hide_password(p, SECRET, &AUTHENTICATOR).unwrap();
        b.add(AttrType::USER_PASSWORD, &hidden).unwrap();
    }
    for (typ, value) in extra {
        b.add(*typ, value).unwrap();
    }
    b.encode_request(SECRET, &AUTHENTICATOR).unwrap()
}

const USER_IP: ClientAddr = ClientAddr::Remote(Some(std::net::IpAddr::V4(
    std::net::Ipv4Addr::new(198, 51, 100, 7),
)));
const GATEWAY: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

async fn ask(fake: &Fake, nas: &Nas, raw: &[u8]) -> Result<crate::answer::Answer, RequestError> {
    answer(fake, nas, &Packet::parse(raw).unwrap(), USER_IP, GATEWAY).await
}

fn attempt(code: Option<&str>, groups: &[&str]) -> Call {
    Call::Attempt {
        code: code.map(str::to_string),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        vouched: true,
        client: USER_IP,
    }
}

#[tokio::test]
async fn code_only_sends_the_password_attribute_as_the_code() {
    let gw = nas(RadiusMode::CodeOnly, FirstFactor::None);
    let fake = Fake::new(Decision::need_code());
    let a = ask(&fake, &gw, &request(&["alice"], Some(b"123456"), &[]))
        .await
        .unwrap();
    assert_eq!(a.code, Code::ACCESS_ACCEPT);
    assert_eq!(a.reason, Reason::ValidCode);
    // No password check, no read-only look: the final decision straight away, vouched
    // (the gateway checked the password), without groups when no group is exempt.
    assert_eq!(fake.calls(), [attempt(Some("123456"), &[])]);

    // Nothing typed is an empty code, for the core's `missing_code`; with exempt groups
    // configured, the groups are looked up first.
    let mut fake = Fake::new(Decision::need_code());
    fake.config.policy.exempt_groups = vec!["break-glass".into()];
    ask(&fake, &gw, &request(&["alice"], None, &[]))
        .await
        .unwrap();
    assert_eq!(
        fake.calls(),
        [Call::Groups, attempt(Some(""), &["looked-up"])]
    );
}

#[tokio::test]
async fn append_checks_the_password_alone_then_spends_the_code() {
    let gw = nas(RadiusMode::Append, FirstFactor::Pam);
    let fake = Fake::new(Decision::need_code());
    let a = ask(
        &fake,
        &gw,
        &request(&["alice"], Some(b"hunter2123456"), &[]),
    )
    .await
    .unwrap();
    assert_eq!(a.code, Code::ACCESS_ACCEPT);
    assert_eq!(
        fake.calls(),
        [
            Call::Look {
                service: "gw".into()
            },
            Call::Password("hunter2".into()),
            attempt(Some("123456"), &["staff"]),
        ]
    );

    // No code needed (a trusted network): the whole attribute is the password.
    let fake = Fake::new(Decision::allow(Reason::TrustedNetwork));
    ask(
        &fake,
        &gw,
        &request(&["alice"], Some(b"hunter2123456"), &[]),
    )
    .await
    .unwrap();
    assert_eq!(fake.calls()[1], Call::Password("hunter2123456".into()));
    assert_eq!(fake.calls()[2], attempt(None, &["staff"]));

    // A code expected but none at the end: the whole is the password, the code empty.
    let fake = Fake::new(Decision::need_code());
    ask(&fake, &gw, &request(&["alice"], Some(b"hunter"), &[]))
        .await
        .unwrap();
    assert_eq!(fake.calls()[1], Call::Password("hunter".into()));
    assert_eq!(fake.calls()[2], attempt(Some(""), &["staff"]));
}

#[tokio::test]
async fn a_wrong_password_is_audited_and_leaves_the_code_unspent() {
    for mode in [RadiusMode::Append, RadiusMode::Challenge] {
        let gw = nas(mode, FirstFactor::Pam);
        let mut fake = Fake::new(Decision::need_code());
        fake.password = Ok(false);
        let a = ask(&fake, &gw, &request(&["alice"], Some(b"wrong123456"), &[]))
            .await
            .unwrap();
        assert_eq!(a.code, Code::ACCESS_REJECT, "{mode:?}");
        assert_eq!(a.reason, Reason::WrongPassword);
        // PAM's failure delay is slept before the Reject.
        assert_eq!(a.delay, Duration::from_millis(1500));
        let calls = fake.calls();
        assert!(
            !calls.iter().any(|c| matches!(c, Call::Attempt { .. })),
            "{mode:?}: {calls:?}"
        );
        assert_eq!(calls.last(), Some(&Call::DenyFirstFactor));

        // No User-Password at all: refused before PAM or the policy is asked.
        let fake = Fake::new(Decision::need_code());
        let a = ask(&fake, &gw, &request(&["alice"], None, &[]))
            .await
            .unwrap();
        assert_eq!(a.reason, Reason::WrongPassword);
        assert_eq!(a.delay, Duration::ZERO);
        assert_eq!(fake.calls(), [Call::DenyFirstFactor], "{mode:?}");
    }
}

#[tokio::test]
async fn append_without_a_first_factor_is_an_internal_error() {
    let gw = nas(RadiusMode::Append, FirstFactor::None);
    let fake = Fake::new(Decision::need_code());
    let e = ask(&fake, &gw, &request(&["alice"], Some(b"123456"), &[])).await;
    assert!(matches!(
        e,
        Err(RequestError::Internal(InternalError::NoFirstFactor))
    ));
    assert!(fake.calls().is_empty(), "a code alone never gets in");
}

#[tokio::test]
async fn challenge_takes_the_code_in_a_second_round_bound_to_the_first() {
    let gw = nas(RadiusMode::Challenge, FirstFactor::Pam);
    let fake = Fake::new(Decision::need_code());
    let first = ask(&fake, &gw, &request(&["alice"], Some(b"hunter2"), &[]))
        .await
        .unwrap();
    assert_eq!(first.code, Code::ACCESS_CHALLENGE);
    assert_eq!(first.reason, Reason::CodeRequired);
    let state = first.state.unwrap();
    assert_eq!(fake.challenges().len(), 1);
    assert_eq!(
        fake.calls(),
        [
            Call::Password("hunter2".into()),
            Call::Look {
                service: "gw".into()
            }
        ]
    );

    // The second round, from a gateway that leaves the client address out: the first
    // round's is used and logged.
    let raw = request(&["alice"], Some(b"654321"), &[(AttrType::STATE, &state)]);
    let second = answer(
        &fake,
        &gw,
        &Packet::parse(&raw).unwrap(),
        ClientAddr::Remote(None),
        GATEWAY,
    )
    .await
    .unwrap();
    assert_eq!(second.code, Code::ACCESS_ACCEPT);
    assert_eq!(second.client, Some(USER_IP));
    assert_eq!(fake.calls()[2], attempt(Some("654321"), &[]));
    assert!(fake.challenges().is_empty(), "the State is spent");

    // Again with the spent State: refused, audited, told to start again.
    let again = ask(&fake, &gw, &raw).await.unwrap();
    assert_eq!(again.code, Code::ACCESS_REJECT);
    assert_eq!(again.reason, Reason::UnknownState);
    assert!(again.message.unwrap().contains("start again"));
    assert_eq!(fake.calls()[3], Call::DenyRequest(Reason::UnknownState));

    // A State of alice's presented for bob is spent and refused.
    let first = ask(&fake, &gw, &request(&["alice"], Some(b"hunter2"), &[]))
        .await
        .unwrap();
    let state = first.state.unwrap();
    let raw = request(&["bob"], Some(b"654321"), &[(AttrType::STATE, &state)]);
    let a = ask(&fake, &gw, &raw).await.unwrap();
    assert_eq!(a.reason, Reason::StateMismatch);
    assert_eq!(
        fake.calls().last(),
        Some(&Call::DenyRequest(Reason::StateMismatch))
    );
    assert!(fake.challenges().is_empty());
}

#[tokio::test]
async fn challenge_without_a_code_needed_answers_in_one_round() {
    let gw = nas(RadiusMode::Challenge, FirstFactor::Pam);
    let fake = Fake::new(Decision::allow(Reason::TrustedNetwork));
    let a = ask(&fake, &gw, &request(&["alice"], Some(b"hunter2"), &[]))
        .await
        .unwrap();
    assert_eq!(a.code, Code::ACCESS_ACCEPT);
    assert_eq!(a.state, None);
    assert_eq!(fake.calls()[2], attempt(None, &["staff"]));
    assert!(fake.challenges().is_empty());
}

#[tokio::test]
async fn a_pam_host_without_a_first_factor_goes_straight_to_the_policy() {
    let host = nas(RadiusMode::Challenge, FirstFactor::None);
    let fake = Fake::new(Decision::need_code());
    let raw = request(
        &["alice"],
        Some(b""),
        &[
            (AttrType::NAS_IDENTIFIER, b"web1"),
            (AttrType::CALLED_STATION_ID, b"sshd"),
        ],
    );
    let a = ask(&fake, &host, &raw).await.unwrap();
    assert_eq!(a.code, Code::ACCESS_CHALLENGE);
    // No PAM; the service is the PAM login the host sent.
    assert_eq!(
        fake.calls(),
        [Call::Look {
            service: "gw/web1/sshd".into()
        }]
    );
}

#[tokio::test]
async fn a_full_challenge_table_is_an_internal_error() {
    let gw = nas(RadiusMode::Challenge, FirstFactor::Pam);
    let fake = Fake {
        challenges: Mutex::new(Challenges::new(0)),
        ..Fake::new(Decision::need_code())
    };
    let e = ask(&fake, &gw, &request(&["alice"], Some(b"hunter2"), &[])).await;
    assert!(matches!(
        e,
        Err(RequestError::Internal(InternalError::NoChallengeState))
    ));
}

#[tokio::test]
async fn a_full_pam_lane_drops_the_request() {
    let gw = nas(RadiusMode::Append, FirstFactor::Pam);
    let mut fake = Fake::new(Decision::need_code());
    fake.password = Err(());
    let e = ask(
        &fake,
        &gw,
        &request(&["alice"], Some(b"hunter2123456"), &[]),
    )
    .await;
    assert!(matches!(e, Err(RequestError::Overloaded)));
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Attempt { .. } | Call::DenyFirstFactor))
    );
}

#[tokio::test]
async fn requests_no_mode_can_take_are_refused_before_the_mode() {
    for mode in [
        RadiusMode::CodeOnly,
        RadiusMode::Append,
        RadiusMode::Challenge,
    ] {
        let gw = nas(mode, FirstFactor::Pam);
        // No User-Name, two, or one that is no name: a bare Reject, nothing audited.
        for users in [&[][..], &["alice", "bob"][..], &["bad\u{7f}name"][..]] {
            let fake = Fake::new(Decision::need_code());
            let a = ask(&fake, &gw, &request(users, Some(b"123456"), &[]))
                .await
                .unwrap();
            assert_eq!(a.reason, Reason::InvalidUserName, "{mode:?} {users:?}");
            assert_eq!(a.message, None);
            assert!(fake.calls().is_empty());
        }
        // CHAP and EAP: audited as an unsupported method.
        for typ in [AttrType::CHAP_PASSWORD, AttrType::EAP_MESSAGE] {
            let fake = Fake::new(Decision::need_code());
            let a = ask(&fake, &gw, &request(&["alice"], None, &[(typ, b"x")]))
                .await
                .unwrap();
            assert_eq!(a.code, Code::ACCESS_REJECT);
            assert_eq!(a.message, None);
            assert_eq!(fake.calls(), [Call::DenyRequest(Reason::UnsupportedMethod)]);
        }
        // A User-Password that is no hidden password (not a multiple of 16 octets).
        let fake = Fake::new(Decision::need_code());
        let raw = request(&["alice"], None, &[(AttrType::USER_PASSWORD, b"short")]);
        let a = ask(&fake, &gw, &raw).await.unwrap();
        assert_eq!(a.reason, Reason::MalformedPassword);
        assert_eq!(fake.calls(), [Call::DenyRequest(Reason::MalformedPassword)]);
    }
}
