//! The modes against a fake [`ModeBackend`] that records what it is asked, in order, and
//! answers as scripted: which steps each mode takes, in which order, with what, and which
//! it never takes.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mfa_config::{
    ClientIpAttribute, ClientPush, ClientSettings, Config, FirstFactor, PushMode, RadiusMode,
};
use mfa_core::policy::{Decision, Reason};
use mfa_core::push::PushStarted;
use mfa_core::{Attempt, ClientAddr, PushId, PushRefusal, PushState, Request, UserName};
use mfa_pam_client::PamCheck;
use mfa_radius_proto::pam_host::{ChallengePush, PUSH_CAPABLE, PUSH_REQUEST, VENDOR_ID};
use mfa_radius_proto::{AttrType, Builder, Code, Packet, hide_password};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::{InternalError, ModeBackend, RequestError, answer};
use crate::challenge::{self, Asker, PendingChallenge, Redeem, WireState};
use crate::runtime::Nas;

const SECRET: &[u8] = b"a shared secret of some length";
const PUSH_ID: PushId = PushId([5; 16]);
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
    HasPhone,
    /// `Push::start`, and whether the front end can show a number.
    StartPush {
        show_number: bool,
    },
    PushStatus,
    VerifyPush,
}

struct Fake {
    config: Config,
    /// The core's admission rule (`Login::admit_name`), over a throw-away store: only the
    /// core makes an `Admission`.
    core: mfa_core::Core,
    _dir: tempfile::TempDir,
    /// The caps on pending challenges, kept in `core`'s store as the daemon keeps them.
    challenge_limits: mfa_core::store::ChallengeLimits,
    calls: Mutex<Vec<Call>>,
    /// What `look` decides.
    look: Decision,
    /// Whether PAM takes the password, or that the PAM lane is full.
    password: Result<bool, ()>,
    /// Push as the core has it for the client.
    push: ClientPush,
    /// Whether the user has a phone.
    phone: bool,
    /// What `Push::start` answers.
    started: Result<PushStarted, PushRefusal>,
    /// What `Push::status` answers, in turn (the last one again and again).
    status: Mutex<Vec<Option<PushState>>>,
    /// What `Login::verify_push` decides.
    verified: Decision,
    /// The places of held requests.
    held: Arc<Semaphore>,
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
            challenge_limits: challenge::limits(64),
            calls: Mutex::new(Vec::new()),
            look,
            password: Ok(true),
            push: ClientPush {
                mode: PushMode::Off,
                number_matching: true,
            },
            phone: true,
            started: Ok(PushStarted {
                id: PUSH_ID,
                number: Some(42),
                expires: mfa_core::login::now() + 60,
            }),
            status: Mutex::new(vec![Some(PushState::Approved)]),
            verified: Decision::allow(Reason::PushApproved),
            held: Arc::new(Semaphore::new(4)),
        }
    }

    fn with_push(look: Decision, mode: PushMode) -> Self {
        let mut f = Self::new(look);
        f.push.mode = mode;
        f
    }

    /// Challenges pending in the store.
    fn pending(&self) -> usize {
        self.core.challenges().live(challenge::now_ms()).unwrap()
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

    async fn issue_challenge(
        &self,
        p: PendingChallenge,
    ) -> Result<Option<WireState>, RequestError> {
        Ok(challenge::issue(
            &self.core,
            &p,
            &self.challenge_limits,
            challenge::now_ms(),
        )?)
    }

    async fn redeem_challenge(
        &self,
        state: &[u8],
        asker: &Asker,
        service: &str,
        user: &str,
    ) -> Result<Redeem, RequestError> {
        Ok(challenge::redeem(
            &self.core,
            state,
            asker,
            service,
            user,
            challenge::now_ms(),
        )?)
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
        _how: FirstFactor,
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

    fn push_settings(&self, _service: &mfa_core::login::Service) -> ClientPush {
        self.push
    }

    async fn has_phone(&self, _user: &UserName) -> Result<bool, RequestError> {
        self.record(Call::HasPhone);
        Ok(self.phone)
    }

    async fn start_push(
        &self,
        _req: Request,
        can_show_number: bool,
    ) -> Result<Result<PushStarted, PushRefusal>, RequestError> {
        self.record(Call::StartPush {
            show_number: can_show_number,
        });
        Ok(self.started.clone().map(|mut s| {
            if !can_show_number {
                s.number = None;
            }
            s
        }))
    }

    async fn push_status(&self, id: PushId) -> Result<Option<PushState>, RequestError> {
        assert_eq!(id, PUSH_ID);
        self.record(Call::PushStatus);
        let mut s = self.status.lock().unwrap();
        Ok(if s.len() > 1 { s.remove(0) } else { s[0] })
    }

    async fn verify_push(&self, _req: Request, id: PushId) -> Result<Decision, RequestError> {
        assert_eq!(id, PUSH_ID);
        self.record(Call::VerifyPush);
        Ok(self.verified.clone())
    }

    fn hold_slot(&self) -> Option<super::HoldSlot> {
        self.held.clone().try_acquire_owned().ok()
    }

    fn push_poll_every(&self) -> Duration {
        Duration::from_millis(1)
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

/// OpenVPN's static-challenge (`SCRV1:` base64(password) `:` base64(code)): the password
/// and the code come apart as the form says, whatever `append_delimiter` or the digits
/// would make of them; a malformed one is refused before PAM or the policy is asked.
#[tokio::test]
async fn append_reads_openvpn_static_challenge() {
    let gw = nas(RadiusMode::Append, FirstFactor::Pam);
    // "hunter2" and "123456".
    let scrv1 = b"SCRV1:aHVudGVyMg==:MTIzNDU2";
    let fake = Fake::new(Decision::need_code());
    let a = ask(&fake, &gw, &request(&["alice"], Some(scrv1), &[]))
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

    // With a delimiter configured, the form still decides; a password ending in digits
    // keeps them.
    let mut fake = Fake::new(Decision::need_code());
    fake.config.radius.append_delimiter = Some(",".into());
    // "pw,999999" and "654321".
    ask(
        &fake,
        &gw,
        &request(&["alice"], Some(b"SCRV1:cHcsOTk5OTk5:NjU0MzIx"), &[]),
    )
    .await
    .unwrap();
    assert_eq!(fake.calls()[1], Call::Password("pw,999999".into()));
    assert_eq!(fake.calls()[2], attempt(Some("654321"), &["staff"]));

    // No code needed: the decoded password alone, the response not spent.
    let fake = Fake::new(Decision::allow(Reason::TrustedNetwork));
    ask(&fake, &gw, &request(&["alice"], Some(scrv1), &[]))
        .await
        .unwrap();
    assert_eq!(fake.calls()[1], Call::Password("hunter2".into()));
    assert_eq!(fake.calls()[2], attempt(None, &["staff"]));

    // An empty response where a code is needed: `missing_code` from the core.
    let fake = Fake::new(Decision::need_code());
    ask(
        &fake,
        &gw,
        &request(&["alice"], Some(b"SCRV1:aHVudGVyMg==:"), &[]),
    )
    .await
    .unwrap();
    assert_eq!(fake.calls()[2], attempt(Some(""), &["staff"]));

    // The push word as the response, where push is on: the password, then the push.
    let fake = Fake::with_push(Decision::need_code(), PushMode::On);
    ask(
        &fake,
        &gw,
        &request(&["alice"], Some(b"SCRV1:aHVudGVyMg==:cHVzaA=="), &[]),
    )
    .await
    .unwrap();
    assert_eq!(fake.calls()[1], Call::Password("hunter2".into()));
    assert_eq!(fake.calls()[2], Call::StartPush { show_number: false });

    // Malformed after `SCRV1:`: refused with its own reason; no PAM, no policy, no code
    // spent, and never the whole tried as a password.
    for bad in [
        &b"SCRV1:hunter2123456"[..],
        b"SCRV1:aHVudGVyMg:MTIzNDU2",
        b"SCRV1:aHVudGVyMg==:MTIzNDU2:",
        b"SCRV1:/w==:MTIzNDU2",
    ] {
        let fake = Fake::new(Decision::need_code());
        let a = ask(&fake, &gw, &request(&["alice"], Some(bad), &[]))
            .await
            .unwrap();
        assert_eq!(a.code, Code::ACCESS_REJECT);
        assert_eq!(a.reason, Reason::MalformedStaticChallenge);
        assert_eq!(
            fake.calls(),
            [Call::DenyRequest(Reason::MalformedStaticChallenge)],
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
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
    assert_eq!(fake.pending(), 1);
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
    assert!((fake.pending() == 0), "the State is spent");

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
    assert!((fake.pending() == 0));
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
    assert!((fake.pending() == 0));
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
        challenge_limits: mfa_core::store::ChallengeLimits {
            total: 0,
            ..challenge::limits(64)
        },
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

// ------------------------------------------------------------------ push approval (issue 20)

/// A PAM host's Push-Capable (and Push-Request) as Vendor-Specific attributes.
fn host_vsa(typ: u8) -> Vec<u8> {
    let mut v = VENDOR_ID.to_be_bytes().to_vec();
    v.extend_from_slice(&[typ, 6, 0, 0, 0, 1]);
    v
}

#[tokio::test]
async fn code_only_holds_a_request_without_a_code_for_a_push_without_a_number() {
    let gw = nas(RadiusMode::CodeOnly, FirstFactor::None);
    let fake = Fake::with_push(Decision::need_code(), PushMode::On);
    *fake.status.lock().unwrap() = vec![
        Some(PushState::Pending),
        Some(PushState::Pending),
        Some(PushState::Approved),
    ];
    let a = ask(&fake, &gw, &request(&["alice"], None, &[]))
        .await
        .unwrap();
    assert_eq!(
        (a.code, a.reason.clone()),
        (Code::ACCESS_ACCEPT, Reason::PushApproved)
    );
    assert_eq!(
        fake.calls(),
        [
            Call::Look {
                service: "gw".into()
            },
            Call::StartPush { show_number: false },
            Call::PushStatus,
            Call::PushStatus,
            Call::PushStatus,
            Call::VerifyPush,
        ]
    );
    // The place is given back.
    assert_eq!(fake.held.available_permits(), 4);

    // A code typed: checked as ever, no push.
    let fake = Fake::with_push(Decision::need_code(), PushMode::On);
    ask(&fake, &gw, &request(&["alice"], Some(b"123456"), &[]))
        .await
        .unwrap();
    assert_eq!(fake.calls(), [attempt(Some("123456"), &[])]);

    // `only`: every request is a push, a code in it is not looked at; a trusted network is
    // settled without one (and the code is not passed on).
    let fake = Fake::with_push(Decision::need_code(), PushMode::Only);
    ask(&fake, &gw, &request(&["alice"], Some(b"123456"), &[]))
        .await
        .unwrap();
    assert_eq!(fake.calls()[1], Call::StartPush { show_number: false });
    let fake = Fake::with_push(Decision::allow(Reason::TrustedNetwork), PushMode::Only);
    ask(&fake, &gw, &request(&["alice"], Some(b"123456"), &[]))
        .await
        .unwrap();
    assert_eq!(fake.calls()[1], attempt(Some(""), &["staff"]));

    // Push off: an empty code is a missing one, as before.
    let fake = Fake::with_push(Decision::need_code(), PushMode::Off);
    ask(&fake, &gw, &request(&["alice"], None, &[]))
        .await
        .unwrap();
    assert_eq!(fake.calls(), [attempt(Some(""), &[])]);
}

#[tokio::test]
async fn a_held_push_denied_or_refused_rejects_and_the_refusal_says_why() {
    let gw = nas(RadiusMode::CodeOnly, FirstFactor::None);
    let mut fake = Fake::with_push(Decision::need_code(), PushMode::On);
    fake.verified = Decision::deny(Reason::PushDenied);
    *fake.status.lock().unwrap() = vec![Some(PushState::Denied)];
    let a = ask(&fake, &gw, &request(&["alice"], None, &[]))
        .await
        .unwrap();
    assert_eq!(
        (a.code, a.reason),
        (Code::ACCESS_REJECT, Reason::PushDenied)
    );

    for r in [
        PushRefusal::AlreadyPending,
        PushRefusal::NoPortal,
        PushRefusal::Blocked {
            until: 1_900_000_000,
        },
    ] {
        let mut fake = Fake::with_push(Decision::need_code(), PushMode::On);
        fake.started = Err(r);
        let a = ask(&fake, &gw, &request(&["alice"], None, &[]))
            .await
            .unwrap();
        assert_eq!(a.code, Code::ACCESS_REJECT);
        assert_eq!(a.reason, Reason::PushRefused(r));
        assert_eq!(
            a.message.as_deref(),
            Some(mfa_core::policy::push_refusal_message(r).as_str())
        );
        // Audited as the login's decision; never waited for.
        assert_eq!(
            fake.calls().last(),
            Some(&Call::DenyRequest(Reason::PushRefused(r)))
        );
        assert!(!fake.calls().contains(&Call::PushStatus));
    }

    // No place left among the held requests: dropped before anything is written.
    let fake = Fake::with_push(Decision::need_code(), PushMode::On);
    let _all = fake.held.clone().try_acquire_many_owned(4).unwrap();
    let e = ask(&fake, &gw, &request(&["alice"], None, &[])).await;
    assert!(matches!(e, Err(RequestError::Overloaded)));
    assert!(
        !fake
            .calls()
            .contains(&Call::StartPush { show_number: false })
    );
}

#[tokio::test]
async fn append_password_comma_push_checks_the_password_then_holds() {
    let gw = nas(RadiusMode::Append, FirstFactor::Pam);
    let fake = Fake::with_push(Decision::need_code(), PushMode::On);
    let a = ask(&fake, &gw, &request(&["alice"], Some(b"hunter2,Push"), &[]))
        .await
        .unwrap();
    assert_eq!(a.code, Code::ACCESS_ACCEPT);
    let calls = fake.calls();
    assert_eq!(calls[1], Call::Password("hunter2".into()));
    assert_eq!(calls[2], Call::StartPush { show_number: false });
    assert_eq!(calls.last(), Some(&Call::VerifyPush));

    // A wrong password sends no push.
    let mut fake = Fake::with_push(Decision::need_code(), PushMode::On);
    fake.password = Ok(false);
    let a = ask(&fake, &gw, &request(&["alice"], Some(b"wrong,push"), &[]))
        .await
        .unwrap();
    assert_eq!(a.reason, Reason::WrongPassword);
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| matches!(c, Call::StartPush { .. }))
    );

    // Password + code still works beside it; push off takes `,push` as part of the password.
    let fake = Fake::with_push(Decision::need_code(), PushMode::On);
    ask(
        &fake,
        &gw,
        &request(&["alice"], Some(b"hunter2123456"), &[]),
    )
    .await
    .unwrap();
    assert_eq!(fake.calls()[2], attempt(Some("123456"), &["staff"]));
    let fake = Fake::with_push(Decision::need_code(), PushMode::Off);
    ask(&fake, &gw, &request(&["alice"], Some(b"hunter2,push"), &[]))
        .await
        .unwrap();
    assert_eq!(fake.calls()[1], Call::Password("hunter2,push".into()));
    assert_eq!(fake.calls()[2], attempt(Some(""), &["staff"]));

    // `only`: the whole is the password.
    let fake = Fake::with_push(Decision::need_code(), PushMode::Only);
    ask(
        &fake,
        &gw,
        &request(&["alice"], Some(b"hunter2123456"), &[]),
    )
    .await
    .unwrap();
    assert_eq!(fake.calls()[1], Call::Password("hunter2123456".into()));
    assert_eq!(fake.calls()[2], Call::StartPush { show_number: false });
}

/// A `push` rule matched: the push goes at once, as with `push = "only"`, in append mode
/// (the whole is the password) and in challenge mode (round one sends it); with push off
/// for the client the code is asked for as ever (and the core refuses it).
#[tokio::test]
async fn a_push_rule_sends_the_push_unasked() {
    let mut push_rule = Decision::need_code();
    push_rule.rule = Some(mfa_core::policy::RuleMatch {
        index: 0,
        name: Some("vpn-push".into()),
        action: mfa_config::RuleAction::Push,
        reply: None,
    });
    let gw = nas(RadiusMode::Append, FirstFactor::Pam);
    let fake = Fake::with_push(push_rule.clone(), PushMode::On);
    ask(&fake, &gw, &request(&["alice"], Some(b"hunter2"), &[]))
        .await
        .unwrap();
    assert_eq!(fake.calls()[1], Call::Password("hunter2".into()));
    assert_eq!(fake.calls()[2], Call::StartPush { show_number: false });
    let off = Fake::with_push(push_rule.clone(), PushMode::Off);
    ask(&off, &gw, &request(&["alice"], Some(b"hunter2123456"), &[]))
        .await
        .unwrap();
    assert!(
        !off.calls()
            .iter()
            .any(|c| matches!(c, Call::StartPush { .. })),
        "{:?}",
        off.calls()
    );

    let gw = nas(RadiusMode::Challenge, FirstFactor::Pam);
    let fake = Fake::with_push(push_rule, PushMode::On);
    let first = ask(&fake, &gw, &request(&["alice"], Some(b"hunter2"), &[]))
        .await
        .unwrap();
    assert_eq!(first.code, Code::ACCESS_CHALLENGE);
    assert_eq!(first.reason, Reason::PushWaiting, "{first:?}");
    assert!(
        fake.calls()
            .iter()
            .any(|c| matches!(c, Call::StartPush { .. })),
        "{:?}",
        fake.calls()
    );
}

/// The two-round flow: the challenge offers the push, "push" sends it and shows the number
/// in a second challenge; OK before the phone decided gets another challenge, OK after it
/// the decision. No request is held.
#[tokio::test]
async fn challenge_push_word_then_the_number_then_ok() {
    let gw = nas(RadiusMode::Challenge, FirstFactor::Pam);
    let fake = Fake::with_push(Decision::need_code(), PushMode::On);
    *fake.status.lock().unwrap() = vec![Some(PushState::Pending), Some(PushState::Approved)];
    let first = ask(&fake, &gw, &request(&["alice"], Some(b"hunter2"), &[]))
        .await
        .unwrap();
    assert_eq!(first.code, Code::ACCESS_CHALLENGE);
    assert_eq!(
        first.message.as_deref(),
        Some(mfa_core::login::CODE_OR_PUSH_CHALLENGE)
    );
    let state = first.state.unwrap();
    let raw = request(&["alice"], Some(b"push"), &[(AttrType::STATE, &state)]);
    let second = ask(&fake, &gw, &raw).await.unwrap();
    assert_eq!(second.code, Code::ACCESS_CHALLENGE);
    assert_eq!(second.reason, Reason::PushWaiting);
    // A push's States are the same printable text as a code's (issue 21: ocserv keeps the
    // State as a C string), each a fresh one.
    let states = [state, second.state.unwrap()];
    for s in &states {
        assert!(
            s.len() == 32 && s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
            "{s:?}"
        );
    }
    assert_ne!(states[0], states[1]);
    let m = second.message.unwrap();
    assert!(m.contains("Enter 42 on your phone, then press OK"), "{m}");
    assert_eq!(fake.calls()[3], Call::StartPush { show_number: true });

    // OK too early: another challenge for the same push.
    let raw = request(
        &["alice"],
        Some(b""),
        &[(AttrType::STATE, &second.state.unwrap())],
    );
    let third = ask(&fake, &gw, &raw).await.unwrap();
    assert_eq!(third.code, Code::ACCESS_CHALLENGE);
    assert!(third.message.unwrap().starts_with("Not approved yet"));
    // OK after the approval.
    let raw = request(
        &["alice"],
        None,
        &[(AttrType::STATE, &third.state.unwrap())],
    );
    let fourth = ask(&fake, &gw, &raw).await.unwrap();
    assert_eq!(fourth.code, Code::ACCESS_ACCEPT);
    assert_eq!(fourth.client, Some(USER_IP));
    assert_eq!(
        fake.calls()[4..],
        [Call::PushStatus, Call::PushStatus, Call::VerifyPush]
    );
    assert!((fake.pending() == 0));

    // No phone: the challenge offers no push.
    let mut fake = Fake::with_push(Decision::need_code(), PushMode::On);
    fake.phone = false;
    let first = ask(&fake, &gw, &request(&["alice"], Some(b"hunter2"), &[]))
        .await
        .unwrap();
    assert_eq!(
        first.message.as_deref(),
        Some(mfa_core::login::CODE_CHALLENGE)
    );
}

#[tokio::test]
async fn challenge_push_refused_asks_for_the_code_with_the_reason_and_a_code_still_works() {
    let gw = nas(RadiusMode::Challenge, FirstFactor::Pam);
    let mut fake = Fake::with_push(Decision::need_code(), PushMode::On);
    fake.started = Err(PushRefusal::AlreadyPending);
    let first = ask(&fake, &gw, &request(&["alice"], Some(b"hunter2"), &[]))
        .await
        .unwrap();
    let raw = request(
        &["alice"],
        Some(b"PUSH"),
        &[(AttrType::STATE, &first.state.unwrap())],
    );
    let second = ask(&fake, &gw, &raw).await.unwrap();
    assert_eq!(second.code, Code::ACCESS_CHALLENGE);
    assert_eq!(
        second.reason,
        Reason::PushRefused(PushRefusal::AlreadyPending)
    );
    assert!(second.message.unwrap().contains("already waiting"));
    let raw = request(
        &["alice"],
        Some(b"123456"),
        &[(AttrType::STATE, &second.state.unwrap())],
    );
    let third = ask(&fake, &gw, &raw).await.unwrap();
    assert_eq!(third.code, Code::ACCESS_ACCEPT);
    assert_eq!(fake.calls().last(), Some(&attempt(Some("123456"), &[])));

    // A code typed at the challenge that shows the number is checked as ever.
    let fake = Fake::with_push(Decision::need_code(), PushMode::On);
    let first = ask(&fake, &gw, &request(&["alice"], Some(b"hunter2"), &[]))
        .await
        .unwrap();
    let raw = request(
        &["alice"],
        Some(b"push"),
        &[(AttrType::STATE, &first.state.unwrap())],
    );
    let second = ask(&fake, &gw, &raw).await.unwrap();
    let raw = request(
        &["alice"],
        Some(b"654321"),
        &[(AttrType::STATE, &second.state.unwrap())],
    );
    ask(&fake, &gw, &raw).await.unwrap();
    assert_eq!(fake.calls().last(), Some(&attempt(Some("654321"), &[])));

    // `only`: the first round sends the push; refused, a reject with the reason.
    let mut fake = Fake::with_push(Decision::need_code(), PushMode::Only);
    fake.started = Err(PushRefusal::NoDevice);
    let first = ask(&fake, &gw, &request(&["alice"], Some(b"hunter2"), &[]))
        .await
        .unwrap();
    assert_eq!(first.code, Code::ACCESS_REJECT);
    assert_eq!(first.reason, Reason::PushRefused(PushRefusal::NoDevice));
}

/// A PAM host: offered only where it says it can wait for a push; it asks with
/// Push-Request (its user's typed answer is a code, never the word), and the push
/// challenge carries the number and time for it.
#[tokio::test]
async fn a_pam_host_gets_the_push_attributes_only_where_it_can_read_them() {
    let host = nas(RadiusMode::Challenge, FirstFactor::None);
    let capable = host_vsa(PUSH_CAPABLE);
    let asked = host_vsa(PUSH_REQUEST);
    let fake = Fake::with_push(Decision::need_code(), PushMode::On);
    let first = ask(
        &fake,
        &host,
        &request(
            &["alice"],
            Some(b""),
            &[(AttrType::VENDOR_SPECIFIC, &capable)],
        ),
    )
    .await
    .unwrap();
    assert_eq!(first.push, Some(ChallengePush::Offered));
    // "push" typed at the host's prompt is a code.
    let raw = request(
        &["alice"],
        Some(b"push"),
        &[
            (AttrType::STATE, &first.state.unwrap()),
            (AttrType::VENDOR_SPECIFIC, &capable),
        ],
    );
    ask(&fake, &host, &raw).await.unwrap();
    assert!(
        matches!(fake.calls().last(), Some(Call::Attempt { code: Some(c), .. }) if c == "push"),
        "{:?}",
        fake.calls()
    );

    let first = ask(
        &fake,
        &host,
        &request(
            &["alice"],
            Some(b""),
            &[(AttrType::VENDOR_SPECIFIC, &capable)],
        ),
    )
    .await
    .unwrap();
    let raw = request(
        &["alice"],
        Some(b""),
        &[
            (AttrType::STATE, &first.state.unwrap()),
            (AttrType::VENDOR_SPECIFIC, &capable),
            (AttrType::VENDOR_SPECIFIC, &asked),
        ],
    );
    let second = ask(&fake, &host, &raw).await.unwrap();
    assert!(
        matches!(
            second.push,
            Some(ChallengePush::Waiting {
                number: Some(42),
                timeout_secs: 55..=60
            })
        ),
        "{:?}",
        second.push
    );
    // Encoded for the host, read back by its reader.
    let req = request(&["alice"], Some(b""), &[]);
    let req = Packet::parse(&req).unwrap();
    let bytes = second.encode(&req, SECRET, &host.settings).unwrap();
    let read = mfa_radius_proto::pam_host::read_reply(&Packet::parse(&bytes).unwrap()).unwrap();
    assert!(matches!(
        read,
        mfa_radius_proto::pam_host::HostReply::Challenge {
            push: Some(ChallengePush::Waiting {
                number: Some(42),
                ..
            }),
            ..
        }
    ));

    // A host that does not say it can wait for a push (an older release): never offered,
    // not even with `only`.
    let fake = Fake::with_push(Decision::need_code(), PushMode::Only);
    let first = ask(&fake, &host, &request(&["alice"], Some(b""), &[]))
        .await
        .unwrap();
    assert_eq!((first.code, first.push), (Code::ACCESS_CHALLENGE, None));
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| matches!(c, Call::StartPush { .. }))
    );
}

/// A PAM host that can wait for a push, on a client with `push = "only"`: round one is the
/// push itself (number and time for the host), polled with an empty answer.
#[tokio::test]
async fn a_pam_host_with_push_only_gets_the_push_in_round_one() {
    let host = nas(RadiusMode::Challenge, FirstFactor::None);
    let capable = host_vsa(PUSH_CAPABLE);
    let fake = Fake::with_push(Decision::need_code(), PushMode::Only);
    *fake.status.lock().unwrap() = vec![Some(PushState::Pending), Some(PushState::Denied)];
    let mut denied = Fake::with_push(Decision::need_code(), PushMode::Only);
    denied.verified = Decision::deny(Reason::PushDenied);
    for (fake, want) in [
        (fake, Code::ACCESS_CHALLENGE),
        (denied, Code::ACCESS_REJECT),
    ] {
        let first = ask(
            &fake,
            &host,
            &request(
                &["alice"],
                Some(b""),
                &[(AttrType::VENDOR_SPECIFIC, &capable)],
            ),
        )
        .await
        .unwrap();
        assert!(
            matches!(
                first.push,
                Some(ChallengePush::Waiting {
                    number: Some(42),
                    ..
                })
            ),
            "{first:?}"
        );
        assert_eq!(first.reason, Reason::PushWaiting);
        let raw = request(
            &["alice"],
            Some(b""),
            &[
                (AttrType::STATE, &first.state.unwrap()),
                (AttrType::VENDOR_SPECIFIC, &capable),
            ],
        );
        let next = ask(&fake, &host, &raw).await.unwrap();
        assert_eq!(next.code, want, "{next:?}");
    }
}
