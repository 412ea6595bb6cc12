//! One authentication as the module runs it, written against two small traits so it is
//! tested without libpam: [`Pam`] (what libpam gives) and [`Backend`] (where decisions come
//! from: the local store, or mfa-radiusd in remote mode, [`crate::remote`]). It only
//! translates: every rule lives in the shared core.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use mfa_config::TotpConfig;
use mfa_core::enrolment::{APPS, Sheet};
use mfa_core::push::PushStarted;
use mfa_core::verify::normalize_code;
use mfa_core::{
    ClientAddr, Core, CoreError, Decision, OpenMode, Outcome, PushState, Reason, Refusal, Request,
    TotpSecret, UserName, Voucher, login::Service,
};
use mfa_radius_proto::pam_host::RequestError;
use mfa_store_sqlite::SqliteStore;
use zeroize::Zeroizing;

use crate::args::{Args, FirstPass, IgnoreWhen};
pub use crate::code::PamCode;
use crate::remote::{NoAnswer, Unusable};

pub use mfa_core::login::{CODE_OR_PUSH_PROMPT, CODE_PROMPT};
pub const ENROL_PROMPT: &str = "Code shown by the app, to finish (Enter to skip): ";
/// What the user sees when the module cannot work; the reason goes to syslog only.
pub const UNAVAILABLE: &str =
    "Multi-factor authentication is not available right now; contact your administrator.";
/// Confirmation attempts at self-enrolment: enough for a typo or a code that just rolled over.
const ENROL_ATTEMPTS: usize = 3;
/// How long past a push's expiry the module still waits for the backend's decision (a
/// server's clock a little behind, a slow answer) before it denies on its own.
const PUSH_SLACK: Duration = Duration::from_secs(5);
/// The actor the audit trail names for a push this module sends.
const ACTOR: &str = "pam_mfa";

/// A libpam call, or the application's conversation, that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PamError {
    /// libpam, or the application's conversation function, answered `code` to `call`.
    Call { call: &'static str, code: PamCode },
    /// The application set no conversation function.
    NoConversation,
}

impl std::fmt::Display for PamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PamError::Call { call, code } => write!(f, "{call}: {code}"),
            PamError::NoConversation => f.write_str("the application set no conversation function"),
        }
    }
}

impl std::error::Error for PamError {}

/// Everything the flow needs from libpam.
pub trait Pam {
    /// PAM_USER (libpam may prompt for it).
    fn user(&mut self) -> Result<String, PamError>;
    /// PAM_RHOST; `None` when unset, which means a local login.
    fn rhost(&self) -> Result<Option<String>, PamError>;
    fn service(&self) -> Result<Option<String>, PamError>;
    /// PAM_AUTHTOK as left by an earlier module in the stack.
    fn authtok(&self) -> Result<Option<Zeroizing<String>>, PamError>;
    /// An echo-off prompt; `None` when the application gave no answer.
    fn prompt_hidden(&mut self, prompt: &str) -> Result<Option<Zeroizing<String>>, PamError>;
    fn info(&mut self, text: &str) -> Result<(), PamError>;
    fn error(&mut self, text: &str) -> Result<(), PamError>;
}

/// Where the module's own diagnostics go (syslog, auth facility). Never a code or a secret.
pub trait Log {
    fn error(&self, msg: &str);
    fn debug(&self, msg: &str);
}

/// Why a backend gave no decision. [`BackendError::unavailable`] ones (nobody to ask) end
/// the login with PAM_AUTHINFO_UNAVAIL; every other one denies with PAM_AUTH_ERR.
#[derive(Debug)]
pub enum BackendError {
    /// The local store, its configuration or the core failed.
    Core(CoreError),
    /// The system gave no random numbers for a RADIUS request.
    Random(getrandom::Error),
    /// The RADIUS request could not be encoded.
    Request(RequestError),
    /// A verified reply this host cannot act on; it fails closed.
    Unusable { server: SocketAddr, why: Unusable },
    /// No server answered, each for its reason.
    NoServer(Vec<(SocketAddr, NoAnswer)>),
    /// The server that sent the challenge did not answer the code (another one would not
    /// know its State).
    ChallengerSilent { server: SocketAddr, why: NoAnswer },
}

impl BackendError {
    /// Nobody to ask (remote mode: no server answered): PAM_AUTHINFO_UNAVAIL.
    pub fn unavailable(&self) -> bool {
        matches!(
            self,
            BackendError::NoServer(_) | BackendError::ChallengerSilent { .. }
        )
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Core(e) => write!(f, "{e}"),
            BackendError::Random(e) => write!(f, "no random numbers from the system: {e}"),
            BackendError::Request(e) => write!(f, "cannot build the RADIUS request: {e}"),
            BackendError::Unusable { server, why } => {
                write!(f, "RADIUS server {server}: {why}")
            }
            BackendError::NoServer(why) => {
                f.write_str("no RADIUS server answered (")?;
                for (i, (server, e)) in why.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{server}: {e}")?;
                }
                f.write_str(")")
            }
            BackendError::ChallengerSilent { server, why } => write!(
                f,
                "RADIUS server {server} sent the challenge but did not answer the code: {why}"
            ),
        }
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BackendError::Core(e) => Some(e),
            // getrandom's error is an `std` error only with that crate's `std` feature.
            BackendError::Random(_) => None,
            BackendError::Request(e) => Some(e),
            BackendError::Unusable { why, .. } => Some(why),
            BackendError::NoServer(why) => why.last().map(|(_, e)| e as _),
            BackendError::ChallengerSilent { why, .. } => Some(why),
        }
    }
}

impl From<CoreError> for BackendError {
    fn from(e: CoreError) -> Self {
        BackendError::Core(e)
    }
}

/// A push the backend sent: what to show, and how long to wait for the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushSent {
    /// The number to show (number matching); `None` to just approve.
    pub number: Option<u8>,
    /// Until the request expires.
    pub timeout: Duration,
}

/// What became of the push the user chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushStart {
    Sent(PushSent),
    /// None could be sent (the core's reason, as the user reads it): the code is asked for
    /// instead.
    Refused {
        message: String,
    },
    /// The server decided the login instead (remote mode: a lock since, or a refusal where
    /// the client takes no code).
    Decided(Decision),
}

/// Where the module's decisions come from. The flow asks; the backend decides. One backend
/// serves one login, so it may keep what a conversation needs between the two rounds (remote
/// mode: the server that challenged, and its RADIUS State; a push sent).
pub trait Backend {
    /// The canonical name of the user PAM_USER names (`[users]`), or why it is refused.
    fn user_name(&self, raw: &str) -> Result<UserName, CoreError>;
    /// The request, with what vouches for its name ([`mfa_core::Login::admit_name`]): here,
    /// the system's NSS; in remote mode the server decides, from what this host's NSS says.
    fn admit(&mut self, req: Request) -> Result<Request, BackendError>;
    /// The decision before any code (recorded where it is final). `log` takes the backend's
    /// own diagnostics (a server that did not answer).
    fn begin(&mut self, req: &Request, log: &dyn Log) -> Result<Decision, BackendError>;
    /// The final decision for a typed code.
    fn verify_code(
        &mut self,
        req: &Request,
        code: &str,
        log: &dyn Log,
    ) -> Result<Decision, BackendError>;
    /// Whether an earlier module's token could be a code, by the core's rule for the codes
    /// this backend checks: a token that could not be is never sent, so a password is never
    /// counted as a wrong code.
    fn looks_like_code(&self, token: &str) -> bool;
    /// The TOTP settings a new key is made and shown with; `None` where this backend takes
    /// no new keys (remote mode).
    fn totp(&self) -> Option<&TotpConfig>;
    /// Stores a key the user enrolled at this login, once `code` matches it.
    fn self_enroll(
        &mut self,
        req: &Request,
        secret: &TotpSecret,
        code: &str,
    ) -> Result<Decision, CoreError>;
    /// Whether the code prompt offers a push (after `begin` asked for a code): where the core
    /// says push is on for this login's service and the user has a phone.
    fn push_offered(&mut self, req: &Request) -> Result<bool, BackendError>;
    /// Sends the push the prompt offered (the user pressed Enter).
    fn start_push(&mut self, req: &Request, log: &dyn Log) -> Result<PushStart, BackendError>;
    /// A push sent without asking (remote mode: a server whose client has `push = "only"`
    /// answers round one with it), once.
    fn take_push_sent(&mut self) -> Option<PushSent>;
    /// What the phone decided about the push sent, settled on the one login path: `None`
    /// while it has not decided.
    fn poll_push(&mut self, req: &Request, log: &dyn Log)
    -> Result<Option<Decision>, BackendError>;
    /// How long to wait between two [`Backend::poll_push`].
    fn push_poll_every(&self) -> Duration;
}

/// The local store named by the module's configuration, and the push this login sent.
pub struct Local {
    core: Core,
    push: Option<PushStarted>,
}

impl Local {
    pub fn new(core: Core) -> Self {
        Self { core, push: None }
    }
}

impl Backend for Local {
    fn user_name(&self, raw: &str) -> Result<UserName, CoreError> {
        self.core.user_name(raw)
    }

    /// No first factor is checked here, so the name gets a record only where the system
    /// knows it (NSS); a stranger's name fills nothing.
    fn admit(&mut self, req: Request) -> Result<Request, BackendError> {
        let admission = self
            .core
            .login()
            .admit_name(&req.user, Voucher::ThisSystem)?;
        Ok(req.admit(&admission))
    }

    fn begin(&mut self, req: &Request, _log: &dyn Log) -> Result<Decision, BackendError> {
        Ok(self.core.login().begin(req)?)
    }

    fn verify_code(
        &mut self,
        req: &Request,
        code: &str,
        _log: &dyn Log,
    ) -> Result<Decision, BackendError> {
        Ok(self.core.login().verify_code(req, code)?)
    }

    fn looks_like_code(&self, token: &str) -> bool {
        mfa_core::verify::looks_like_code(token, &self.core.config().totp.params())
    }

    fn totp(&self) -> Option<&TotpConfig> {
        Some(&self.core.config().totp)
    }

    fn self_enroll(
        &mut self,
        req: &Request,
        secret: &TotpSecret,
        code: &str,
    ) -> Result<Decision, CoreError> {
        self.core.enrolment().self_enroll(req, secret, code)
    }

    fn push_offered(&mut self, req: &Request) -> Result<bool, BackendError> {
        let push = self.core.push(ACTOR);
        if push.settings_for(&req.service).mode == mfa_config::PushMode::Off {
            return Ok(false);
        }
        Ok(!push.devices(&req.user)?.is_empty())
    }

    fn start_push(&mut self, req: &Request, _log: &dyn Log) -> Result<PushStart, BackendError> {
        let req = at_now(req);
        match self.core.push(ACTOR).start(&req, true) {
            Ok(started) => {
                let left = u64::try_from(started.expires.saturating_sub(req.now)).unwrap_or(0);
                let sent = PushSent {
                    number: started.number,
                    timeout: Duration::from_secs(left),
                };
                self.push = Some(started);
                Ok(PushStart::Sent(sent))
            }
            Err(CoreError::Refused(Refusal::Push(r))) => Ok(PushStart::Refused {
                message: mfa_core::policy::push_refusal_message(r),
            }),
            Err(e) => Err(e.into()),
        }
    }

    fn take_push_sent(&mut self) -> Option<PushSent> {
        None
    }

    fn poll_push(
        &mut self,
        req: &Request,
        _log: &dyn Log,
    ) -> Result<Option<Decision>, BackendError> {
        let Some(p) = &self.push else {
            return Err(CoreError::Bug("no push to wait for").into());
        };
        let req = at_now(req);
        // A read while the phone has not decided; the decision itself is the login path's.
        if self.core.push(ACTOR).status(&p.id, req.now)? == Some(PushState::Pending) {
            return Ok(None);
        }
        let d = self.core.login().verify_push(&req, &p.id)?;
        if d.outcome == Outcome::NeedCode {
            return Ok(None);
        }
        self.push = None;
        Ok(Some(d))
    }

    fn push_poll_every(&self) -> Duration {
        Duration::from_millis(250)
    }
}

/// The `[[policy.rules]]` entry a decision followed, for the `debug` trace (empty where
/// none matched, or where the server decided in remote mode).
fn rule_of(d: &Decision) -> String {
    d.rule
        .as_ref()
        .map(|r| format!(" rule={r}"))
        .unwrap_or_default()
}

/// The request as of now: a decision after a wait (the code typed, the phone's answer) is
/// made, and audited, at the time it is made.
fn at_now(req: &Request) -> Request {
    let mut r = req.clone();
    r.now = mfa_core::login::now();
    r
}

/// Opens the backend a configuration file names.
pub type OpenBackend = dyn Fn(&Path) -> Result<Box<dyn Backend>, CoreError>;

/// The backend the configuration names: mfa-radiusd where it has `[remote]`, the local
/// SQLite store otherwise. The store is never opened with `OpenMode::Create`: a missing store
/// must deny, not start an empty one in which nobody is enrolled and everybody is in grace.
///
/// `[store] url` (PostgreSQL) is refused here: the module links the SQLite engine alone, so
/// no PostgreSQL client, TLS stack or async runtime is loaded into every sshd and sudo, and
/// neither the store key nor the database password has to be on every host. Hosts that
/// share a store ask mfa-radiusd through `[remote]`.
pub fn open_local(config: &Path) -> Result<Box<dyn Backend>, CoreError> {
    let cfg = mfa_config::load(config)?;
    if let Some(remote) = crate::remote::Remote::from_config(&cfg)? {
        return Ok(Box::new(remote));
    }
    if cfg.store.url.is_some() {
        return Err(CoreError::Config(mfa_config::ConfigError::at_key(
            config,
            &["store", "url"],
            STORE_URL_REFUSED,
        )));
    }
    let store = SqliteStore::open(
        &cfg.store.path,
        OpenMode::Existing,
        cfg.store.busy_timeout.0,
    )?;
    Ok(Box::new(Local::new(Core::open(
        std::sync::Arc::new(cfg),
        Box::new(store),
        OpenMode::Existing,
        ACTOR,
    )?)))
}

/// Why the module refuses `[store] url`, and what to do instead.
pub const STORE_URL_REFUSED: &str = "the PAM module opens only a local SQLite store; \
     a host that shares a PostgreSQL store asks mfa-radiusd instead: replace [store] with \
     [remote] (servers, secret_file), see docs/PAM.md, \"Remote mode\"";

/// An internal failure: the module denies and logs this text.
#[derive(Debug)]
struct Internal(String);

impl From<CoreError> for Internal {
    fn from(e: CoreError) -> Self {
        Internal(e.to_string())
    }
}

/// A backend's answer, or how the login ends without one.
enum Answered {
    Decided(Decision),
    Unavailable,
}

/// `pam_sm_authenticate`: `silent` is the PAM_SILENT flag (no text for the user).
pub fn authenticate(pam: &mut dyn Pam, log: &dyn Log, raw_args: &[&str], silent: bool) -> PamCode {
    authenticate_with(pam, log, raw_args, silent, &open_local)
}

/// `authenticate` with the backend `open` gives for the configuration file.
pub fn authenticate_with(
    pam: &mut dyn Pam,
    log: &dyn Log,
    raw_args: &[&str],
    silent: bool,
    open: &OpenBackend,
) -> PamCode {
    let args = match Args::parse(raw_args.iter().copied()) {
        Ok(a) => a,
        Err(e) => {
            log.error(&format!(
                "refusing to authenticate: bad module argument: {e}"
            ));
            if !silent {
                let _ = pam.error(UNAVAILABLE);
            }
            return PamCode::AuthErr;
        }
    };
    let mut flow = Flow {
        pam,
        log,
        args,
        silent,
        open,
    };
    match flow.run() {
        Ok(code) => code,
        Err(Internal(why)) => {
            flow.log
                .error(&format!("denied on an internal error: {why}"));
            flow.say_error(UNAVAILABLE);
            PamCode::AuthErr
        }
    }
}

struct Flow<'a> {
    pam: &'a mut dyn Pam,
    log: &'a dyn Log,
    args: Args,
    silent: bool,
    open: &'a OpenBackend,
}

impl Flow<'_> {
    fn debug(&self, msg: impl FnOnce() -> String) {
        if self.args.debug {
            self.log.debug(&msg());
        }
    }

    fn say_info(&mut self, text: &str) {
        if !self.silent
            && let Err(e) = self.pam.info(text)
        {
            self.debug(|| format!("the application did not show a message: {e}"));
        }
    }

    fn say_error(&mut self, text: &str) {
        if !self.silent
            && let Err(e) = self.pam.error(text)
        {
            self.debug(|| format!("the application did not show a message: {e}"));
        }
    }

    fn run(&mut self) -> Result<PamCode, Internal> {
        let user = self
            .pam
            .user()
            .map_err(|e| Internal(format!("cannot get the user name: {e}")))?;
        if user.is_empty() {
            return Err(Internal("empty user name".into()));
        }
        let rhost = self
            .pam
            .rhost()
            .map_err(|e| Internal(format!("user {user:?}: cannot read PAM_RHOST: {e}")))?;
        // What asks, for the audit trail and for the policy (an unlock applies to the PAM
        // services `[policy] remember_for` names; none without a PAM_SERVICE).
        let service = match self
            .pam
            .service()
            .map_err(|e| Internal(format!("user {user:?}: cannot read PAM_SERVICE: {e}")))?
        {
            Some(s) => Service::Pam(s),
            None => Service::Other("pam".into()),
        };
        let client = ClientAddr::from_rhost(rhost.as_deref());
        let config = self.args.config.clone();
        // Quoted as text (with `{:?}`), never as the enum.
        let service_name = service.to_string();
        self.debug(|| {
            format!(
                "user={user:?} service={service_name:?} rhost={rhost:?} client={client} config={}",
                config.display()
            )
        });
        let mut auth = (self.open)(&config).map_err(|e| Internal(format!("user {user:?}: {e}")))?;
        let auth = auth.as_mut();
        // The one canonical name (`Alice`, `CONTOSO\alice` and `alice@contoso.com` are all
        // `alice` where `[users]` says so); a name the rules refuse is no user, before
        // anything is looked up or recorded.
        let name = match auth.user_name(&user) {
            Ok(n) => n,
            Err(e @ CoreError::BadUserName { .. }) => {
                self.log
                    .error(&format!("refused (service {service_name:?}): {e}"));
                return Ok(PamCode::AuthErr);
            }
            Err(e) => return Err(e.into()),
        };
        // Whether the name may get a record is the core's rule (see `Backend::admit`).
        let req = auth
            .admit(Request::new(&name, client, service))
            .map_err(|e| Internal(format!("user {user:?}: {e}")))?;
        let d = match self.answered(&user, auth.begin(&req, self.log))? {
            Answered::Decided(d) => d,
            Answered::Unavailable => return Ok(PamCode::AuthInfoUnavail),
        };
        self.debug(|| {
            format!(
                "user={user:?} policy: {:?} {}{}",
                d.outcome,
                d.reason.code(),
                rule_of(&d)
            )
        });
        match d.outcome {
            Outcome::Allow => self.allowed(auth, &req, &d),
            Outcome::Deny => Ok(self.denied(&d)),
            Outcome::NeedCode => match auth.take_push_sent() {
                // Sent without asking (a remote server's `push = "only"` or `push` rule):
                // wait for it.
                Some(sent) => self.wait_push(auth, &req, sent),
                // A `push` rule here: the push goes at once; no code is asked for, since
                // the core would refuse one (`push_required`).
                None if d.push_required() => self.push(auth, &req, true),
                None => self.ask_code(auth, &req),
            },
        }
    }

    /// A backend's failure outside a decision: no server to ask is logged and shown, and
    /// ends the login with PAM_AUTHINFO_UNAVAIL; anything else is an internal error.
    fn failed(&mut self, user: &str, e: BackendError) -> Result<PamCode, Internal> {
        match self.answered(user, Err(e))? {
            Answered::Unavailable => Ok(PamCode::AuthInfoUnavail),
            Answered::Decided(_) => Err(Internal("a failure read as a decision".into())),
        }
    }

    /// Sends the push and waits for the phone: the user pressed Enter at the prompt that
    /// offered it (`unasked` false), or a `push` rule matched (`unasked` true: no prompt came
    /// first). Where none could be sent (no phone registered, no portal running), the core's
    /// reason is shown; then the code is asked for, or, under a `push` rule, the login is
    /// refused through the one login path, so the audit trail says `push_required`.
    fn push(
        &mut self,
        auth: &mut dyn Backend,
        req: &Request,
        unasked: bool,
    ) -> Result<PamCode, Internal> {
        let user = req.user.to_string();
        match auth.start_push(req, self.log) {
            Ok(PushStart::Sent(sent)) => self.wait_push(auth, req, sent),
            Ok(PushStart::Decided(d)) => Ok(self.finish(&d)),
            Ok(PushStart::Refused { message }) => {
                self.debug(|| format!("user={user:?} no push: {message}"));
                self.say_error(&message);
                let code = if unasked {
                    Zeroizing::new(String::new())
                } else {
                    self.prompt_code(CODE_PROMPT)
                };
                self.checked(auth, req, &code)
            }
            Err(e) => self.failed(&user, e),
        }
    }

    /// Shows what to do on the phone, then waits for its decision (polling the backend) up
    /// to the request's expiry. Never lets in without the backend's allowing decision: a
    /// number that cannot be shown, an error or the time running out denies.
    fn wait_push(
        &mut self,
        auth: &mut dyn Backend,
        req: &Request,
        sent: PushSent,
    ) -> Result<PamCode, Internal> {
        let user = req.user.to_string();
        let text = mfa_core::login::push_sent_message(sent.number);
        // The number is what the phone asks for: a login that cannot show it cannot be
        // approved, so it ends here rather than wait for nothing.
        let shown = if self.silent {
            Err("PAM_SILENT".to_string())
        } else {
            self.pam.info(&text).map_err(|e| e.to_string())
        };
        if let Err(why) = shown
            && sent.number.is_some()
        {
            self.log.error(&format!(
                "user {user:?}: denied: the number of the push sent cannot be shown ({why})"
            ));
            return Ok(PamCode::AuthErr);
        }
        self.debug(|| {
            format!(
                "user={user:?} push sent; waiting up to {}s for the phone",
                sent.timeout.as_secs()
            )
        });
        let deadline = Instant::now() + sent.timeout + PUSH_SLACK;
        loop {
            std::thread::sleep(auth.push_poll_every());
            match auth.poll_push(req, self.log) {
                Ok(Some(d)) => return Ok(self.finish(&d)),
                Ok(None) => {}
                Err(e) => return self.failed(&user, e),
            }
            if Instant::now() >= deadline {
                self.log.error(&format!(
                    "user {user:?}: denied: no decision on the push within its time"
                ));
                return Ok(self.denied(&Decision::deny(Reason::PushExpired)));
            }
        }
    }

    /// An echo-off prompt for a code; no answer is an empty one (recorded as a missing
    /// code, so the audit trail shows the attempt).
    fn prompt_code(&mut self, prompt: &str) -> Zeroizing<String> {
        match self.pam.prompt_hidden(prompt) {
            Ok(a) => a.unwrap_or_default(),
            Err(e) => {
                self.debug(|| format!("the code prompt failed: {e}"));
                Zeroizing::default()
            }
        }
    }

    /// A backend's result: a failure is an internal error (PAM_AUTH_ERR); no server to ask
    /// is logged and shown, and ends the login with PAM_AUTHINFO_UNAVAIL.
    fn answered(
        &mut self,
        user: &str,
        r: Result<Decision, BackendError>,
    ) -> Result<Answered, Internal> {
        match r {
            Ok(d) => Ok(Answered::Decided(d)),
            Err(e) if e.unavailable() => {
                self.log.error(&format!(
                    "user {user:?}: denied (PAM_AUTHINFO_UNAVAIL): {e}"
                ));
                self.say_error(UNAVAILABLE);
                Ok(Answered::Unavailable)
            }
            Err(e) => Err(Internal(format!("user {user:?}: {e}"))),
        }
    }

    /// `verify_code` through [`Self::answered`], finished.
    fn checked(
        &mut self,
        auth: &mut dyn Backend,
        req: &Request,
        code: &str,
    ) -> Result<PamCode, Internal> {
        let user = req.user.to_string();
        match self.answered(&user, auth.verify_code(req, code, self.log))? {
            Answered::Decided(d) => Ok(self.finish(&d)),
            Answered::Unavailable => Ok(PamCode::AuthInfoUnavail),
        }
    }

    fn allowed(
        &mut self,
        auth: &mut dyn Backend,
        req: &Request,
        d: &Decision,
    ) -> Result<PamCode, Internal> {
        if let Some(m) = &d.message {
            self.say_info(m);
        }
        let mut enrolled_now = false;
        if d.offer_enrolment {
            if self.silent {
                self.debug(|| "self-enrolment skipped: PAM_SILENT".into());
            } else {
                enrolled_now = self.self_enrol(auth, req)?;
            }
        }
        // A code was proven at self-enrolment: that is a success whatever ignore= says.
        if !enrolled_now && let Some(when) = self.args.ignore.filter(|w| ignored(*w, &d.reason)) {
            self.debug(|| format!("PAM_IGNORE: {} and ignore={when:?}", d.reason.code()));
            return Ok(PamCode::Ignore);
        }
        Ok(PamCode::Success)
    }

    fn denied(&mut self, d: &Decision) -> PamCode {
        if let Some(m) = &d.message {
            self.say_error(m);
        }
        if d.is_locked() {
            PamCode::MaxTries
        } else {
            PamCode::AuthErr
        }
    }

    fn finish(&mut self, d: &Decision) -> PamCode {
        self.debug(|| {
            format!(
                "code checked: {:?} {}{}",
                d.outcome,
                d.reason.code(),
                rule_of(d)
            )
        });
        match d.outcome {
            Outcome::Allow => {
                if let Some(m) = &d.message {
                    self.say_info(m);
                }
                PamCode::Success
            }
            Outcome::Deny | Outcome::NeedCode => self.denied(d),
        }
    }

    fn ask_code(&mut self, auth: &mut dyn Backend, req: &Request) -> Result<PamCode, Internal> {
        let mode = self.args.first_pass;
        if mode != FirstPass::Prompt {
            let tok = match self.pam.authtok() {
                Ok(t) => t,
                Err(e) => {
                    self.debug(|| format!("no PAM_AUTHTOK: {e}"));
                    None
                }
            };
            match tok.filter(|t| auth.looks_like_code(t)) {
                Some(code) => {
                    let user = req.user.to_string();
                    let d = match self.answered(&user, auth.verify_code(req, &code, self.log))? {
                        Answered::Decided(d) => d,
                        Answered::Unavailable => return Ok(PamCode::AuthInfoUnavail),
                    };
                    let again = mode == FirstPass::Try
                        && matches!(d.reason, Reason::WrongCode | Reason::ReplayedCode);
                    if !again {
                        return Ok(self.finish(&d));
                    }
                    self.debug(|| {
                        "the earlier module's token was refused as a code; prompting".into()
                    });
                }
                None if mode == FirstPass::Use => {
                    self.debug(|| "use_first_pass: no code-shaped PAM_AUTHTOK".into());
                    return self.checked(auth, req, "");
                }
                None => {}
            }
        }
        // A push is offered where the core has it on for this service and the user has a
        // phone; not under PAM_SILENT, where the number could not be shown.
        let offer = !self.silent
            && auth
                .push_offered(req)
                .map_err(|e| Internal(format!("user {:?}: {e}", req.user.as_str())))?;
        let prompt = if offer {
            CODE_OR_PUSH_PROMPT
        } else {
            CODE_PROMPT
        };
        let answer = match self.pam.prompt_hidden(prompt) {
            Ok(a) => a,
            Err(e) => {
                self.debug(|| format!("the code prompt failed: {e}"));
                None
            }
        };
        if offer
            && answer
                .as_ref()
                .is_some_and(|a| normalize_code(a).is_empty())
        {
            return self.push(auth, req, false);
        }
        // No answer is recorded as a missing code, so the audit trail shows the attempt.
        let code = answer.unwrap_or_default();
        self.checked(auth, req, &code)
    }

    /// Shows a new key and stores it once the user proves the app has it. Whatever happens
    /// here, the login keeps the decision it already had; only an internal error denies.
    /// True when the key was stored.
    fn self_enrol(&mut self, auth: &mut dyn Backend, req: &Request) -> Result<bool, Internal> {
        let Some(totp) = auth.totp() else {
            self.debug(|| "self-enrolment skipped: this backend takes no new keys".into());
            return Ok(false);
        };
        let secret = TotpSecret::generate().map_err(|e| Internal(e.to_string()))?;
        let shown = enrolment_text(totp, &req.user, &secret);
        // A client that cannot show text cannot enrol; the login goes on as decided.
        if let Err(e) = self.pam.info(&shown.intro) {
            self.debug(|| format!("self-enrolment skipped: the application shows no text: {e}"));
            return Ok(false);
        }
        for part in [&shown.qr, &shown.key] {
            if let Some(text) = part
                && let Err(e) = self.pam.info(text)
            {
                self.debug(|| format!("self-enrolment stopped: {e}"));
                return Ok(false);
            }
        }
        for _ in 0..ENROL_ATTEMPTS {
            let answer = match self.pam.prompt_hidden(ENROL_PROMPT) {
                Ok(Some(a)) => a,
                Ok(None) | Err(_) => break,
            };
            if normalize_code(&answer).is_empty() {
                self.say_info("Enrolment skipped; you will be offered it again at a later login.");
                return Ok(false);
            }
            match auth.self_enroll(req, &secret, &answer) {
                Ok(d) if d.is_allowed() => {
                    self.log_enrolled(req);
                    self.say_info(
                        "Your authenticator app is enrolled. From now on, logins that need a \
                         code will ask for the one it shows.",
                    );
                    return Ok(true);
                }
                Ok(_) => self.say_error(
                    "That code does not match the new key. Check that the phone's clock is \
                     set automatically, and type the code the app shows now.",
                ),
                Err(CoreError::Refused(why @ Refusal::AlreadyEnrolled { .. })) => {
                    self.debug(|| format!("self-enrolment refused by the store: {why}"));
                    self.say_error("Enrolment was not saved: this account is already enrolled.");
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.say_info("Enrolment not finished; you will be offered it again at a later login.");
        Ok(false)
    }

    fn log_enrolled(&self, req: &Request) {
        self.debug(|| format!("user={:?} enrolled at login", req.user));
    }
}

/// Whether `ignore=` turns an allowing decision (made before any code) into PAM_IGNORE.
fn ignored(when: IgnoreWhen, reason: &Reason) -> bool {
    let unenrolled = matches!(
        reason,
        Reason::BeforeGoLive { .. } | Reason::GracePeriod { .. }
    );
    match when {
        IgnoreWhen::Unenrolled => unenrolled,
        IgnoreWhen::NoCode => {
            unenrolled
                || matches!(
                    reason,
                    Reason::TrustedNetwork
                        | Reason::LocalLogin
                        | Reason::ExemptUser
                        | Reason::ExemptGroup
                )
        }
    }
}

/// The phases the module has nothing to do in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Account,
    OpenSession,
    CloseSession,
    Password,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Account => "account (pam_sm_acct_mgmt)",
            Phase::OpenSession => "session (pam_sm_open_session)",
            Phase::CloseSession => "session (pam_sm_close_session)",
            Phase::Password => "password (pam_sm_chauthtok)",
        }
    }
}

/// A call in a phase the module does nothing in: says so in the log, once per call with the
/// service, so a stack that put the module there by mistake (believing it checks something)
/// shows up; and answers PAM_IGNORE, which makes libpam go by the other modules of the
/// phase (and fail the phase when there are none).
pub fn not_here(log: &dyn Log, phase: Phase, service: Option<&str>) -> PamCode {
    log.error(&format!(
        "pam_mfa does nothing in the {} phase (service {:?}); it answers PAM_IGNORE. It \
         belongs in the auth phase only: check that service's file in /etc/pam.d",
        phase.name(),
        service.unwrap_or("?"),
    ));
    PamCode::Ignore
}

/// The conversation messages of a self-enrolment; every one that holds the key is wiped.
struct EnrolmentText {
    intro: String,
    qr: Option<Zeroizing<String>>,
    key: Option<Zeroizing<String>>,
}

fn enrolment_text(totp: &TotpConfig, user: &UserName, secret: &TotpSecret) -> EnrolmentText {
    let sheet = Sheet::new(&totp.issuer, user, secret, &totp.params());
    // Sized up front so that writing never reallocates and leaves an unwiped copy behind.
    let mut key = Zeroizing::new(String::with_capacity(
        32 + sheet.account.len() + sheet.key.len() + sheet.kind.len(),
    ));
    let _ = write!(
        key,
        "Account: {}\nKey: {}\n({})",
        sheet.account,
        sheet.key.as_str(),
        sheet.kind
    );
    let qr = sheet.qr;
    EnrolmentText {
        intro: format!(
            "Set up multi-factor authentication for {user}: scan this QR code with your \
             authenticator app ({APPS}), or add the account by hand with the key below. To use \
             a second device as well, scan the same code with it now: the key is not shown \
             again."
        ),
        qr,
        key: Some(key),
    }
}

#[cfg(test)]
mod tests;
