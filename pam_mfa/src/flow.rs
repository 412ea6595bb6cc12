//! One authentication as the module runs it, written against the small [`Pam`] trait so it
//! is tested without libpam. It only translates: every rule lives in the shared core.

use std::fmt::Write as _;

use mfa_common::enrolment::{otpauth_uri, qr_terminal};
use mfa_common::store::StoreError;
use mfa_common::totp::TotpParams;
use mfa_common::verify::{OTC_DIGITS, normalize_code};
use mfa_common::{
    Authenticator, ClientAddr, CoreError, Decision, OpenMode, Outcome, Reason, Request, TotpSecret,
};
use mfa_config::Config;
use zeroize::Zeroizing;

use crate::args::{Args, FirstPass};

pub const CODE_PROMPT: &str = "Verification code: ";
pub const ENROL_PROMPT: &str = "Code shown by the app, to finish (Enter to skip): ";
/// What the user sees when the module cannot work; the reason goes to syslog only.
pub const UNAVAILABLE: &str =
    "Multi-factor authentication is not available right now; contact your administrator.";
/// Confirmation attempts at self-enrolment: enough for a typo or a code that just rolled over.
const ENROL_ATTEMPTS: usize = 3;

/// What the module returns to libpam.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PamCode {
    Success,
    AuthErr,
    MaxTries,
}

/// A failed libpam call, with libpam's name for the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamError(pub String);

impl std::fmt::Display for PamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

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

/// An internal failure: the module denies and logs this text.
#[derive(Debug)]
struct Internal(String);

impl From<CoreError> for Internal {
    fn from(e: CoreError) -> Self {
        Internal(e.to_string())
    }
}

/// `pam_sm_authenticate`: `silent` is the PAM_SILENT flag (no text for the user).
pub fn authenticate(pam: &mut dyn Pam, log: &dyn Log, raw_args: &[&str], silent: bool) -> PamCode {
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
        let service = self
            .pam
            .service()
            .map_err(|e| Internal(format!("user {user:?}: cannot read PAM_SERVICE: {e}")))?
            .unwrap_or_else(|| "pam".into());
        let client = ClientAddr::from_rhost(rhost.as_deref());
        let config = self.args.config.clone();
        self.debug(|| {
            format!(
                "user={user:?} service={service:?} rhost={rhost:?} client={client} config={}",
                config.display()
            )
        });
        // Never OpenMode::Create: a missing store must deny, not start an empty one in which
        // nobody is enrolled and everybody is in grace.
        let auth = Authenticator::from_config_file(&config, OpenMode::Existing, "pam_mfa")
            .map_err(|e| Internal(format!("user {user:?}: {e}")))?;
        let req = Request::new(&user, client, &service);
        let d = auth.begin(&req)?;
        self.debug(|| format!("user={user:?} policy: {:?} {}", d.outcome, d.reason.code()));
        match d.outcome {
            Outcome::Allow => self.allowed(&auth, &req, &d),
            Outcome::Deny => Ok(self.denied(&d)),
            Outcome::NeedCode => self.ask_code(&auth, &req),
        }
    }

    fn allowed(
        &mut self,
        auth: &Authenticator,
        req: &Request,
        d: &Decision,
    ) -> Result<PamCode, Internal> {
        if let Some(m) = &d.message {
            self.say_info(m);
        }
        if d.offer_enrolment {
            if self.silent {
                self.debug(|| "self-enrolment skipped: PAM_SILENT".into());
            } else if !mfa_config::valid_name(&req.user) {
                self.debug(|| {
                    format!(
                        "self-enrolment skipped: {:?} is not a name the store accepts",
                        req.user
                    )
                });
            } else {
                self.self_enrol(auth, req)?;
            }
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
        self.debug(|| format!("code checked: {:?} {}", d.outcome, d.reason.code()));
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

    fn ask_code(&mut self, auth: &Authenticator, req: &Request) -> Result<PamCode, Internal> {
        let mode = self.args.first_pass;
        if mode != FirstPass::Prompt {
            let tok = match self.pam.authtok() {
                Ok(t) => t,
                Err(e) => {
                    self.debug(|| format!("no PAM_AUTHTOK: {e}"));
                    None
                }
            };
            match tok.filter(|t| looks_like_code(t, auth.config())) {
                Some(code) => {
                    let d = auth.verify_code(req, &code)?;
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
                    let d = auth.verify_code(req, "")?;
                    return Ok(self.finish(&d));
                }
                None => {}
            }
        }
        let answer = match self.pam.prompt_hidden(CODE_PROMPT) {
            Ok(a) => a,
            Err(e) => {
                self.debug(|| format!("the code prompt failed: {e}"));
                None
            }
        };
        // No answer is recorded as a missing code, so the audit trail shows the attempt.
        let code = answer.unwrap_or_default();
        let d = auth.verify_code(req, &code)?;
        Ok(self.finish(&d))
    }

    /// Shows a new key and stores it once the user proves the app has it. Whatever happens
    /// here, the login keeps the decision it already had; only an internal error denies.
    fn self_enrol(&mut self, auth: &Authenticator, req: &Request) -> Result<(), Internal> {
        let cfg = auth.config();
        let secret = TotpSecret::generate().map_err(|e| Internal(e.to_string()))?;
        let shown = enrolment_text(cfg, &req.user, &secret);
        // A client that cannot show text cannot enrol; the login goes on as decided.
        if let Err(e) = self.pam.info(&shown.intro) {
            self.debug(|| format!("self-enrolment skipped: the application shows no text: {e}"));
            return Ok(());
        }
        for part in [&shown.qr, &shown.key] {
            if let Some(text) = part
                && let Err(e) = self.pam.info(text)
            {
                self.debug(|| format!("self-enrolment stopped: {e}"));
                return Ok(());
            }
        }
        for _ in 0..ENROL_ATTEMPTS {
            let answer = match self.pam.prompt_hidden(ENROL_PROMPT) {
                Ok(Some(a)) => a,
                Ok(None) | Err(_) => break,
            };
            if normalize_code(&answer).is_empty() {
                self.say_info("Enrolment skipped; you will be offered it again at a later login.");
                return Ok(());
            }
            match auth.self_enroll(req, &secret, &answer) {
                Ok(d) if d.is_allowed() => {
                    self.log_enrolled(req);
                    self.say_info(
                        "Your authenticator app is enrolled. From now on, logins that need a \
                         code will ask for the one it shows.",
                    );
                    return Ok(());
                }
                Ok(_) => self.say_error(
                    "That code does not match the new key. Check that the phone's clock is \
                     set automatically, and type the code the app shows now.",
                ),
                Err(CoreError::Store(StoreError::Refused(why))) => {
                    self.debug(|| format!("self-enrolment refused by the store: {why}"));
                    self.say_error("Enrolment was not saved: this account is already enrolled.");
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.say_info("Enrolment not finished; you will be offered it again at a later login.");
        Ok(())
    }

    fn log_enrolled(&self, req: &Request) {
        self.debug(|| format!("user={:?} enrolled at login", req.user));
    }
}

/// A token from an earlier module is only tried as a code when it could be one: a password
/// must never be counted as a wrong code towards the lockout.
fn looks_like_code(tok: &str, cfg: &Config) -> bool {
    let t = normalize_code(tok);
    (t.len() == usize::from(cfg.totp.digits) || t.len() == OTC_DIGITS)
        && t.bytes().all(|b| b.is_ascii_digit())
}

/// The conversation messages of a self-enrolment; every one that holds the key is wiped.
struct EnrolmentText {
    intro: String,
    qr: Option<Zeroizing<String>>,
    key: Option<Zeroizing<String>>,
}

fn enrolment_text(cfg: &Config, user: &str, secret: &TotpSecret) -> EnrolmentText {
    let params = TotpParams::from_config(&cfg.totp);
    let uri = otpauth_uri(&cfg.totp.issuer, user, secret, &params);
    let qr = qr_terminal(&uri).ok();
    let grouped = secret.to_grouped();
    // Sized up front so that writing never reallocates and leaves an unwiped copy behind.
    let mut key = Zeroizing::new(String::with_capacity(
        128 + cfg.totp.issuer.len() + user.len() + grouped.len(),
    ));
    let _ = write!(
        key,
        "Account: {}:{}\nKey: {}\n(time-based, {}, {} digits, every {} seconds)",
        cfg.totp.issuer,
        user,
        grouped.as_str(),
        params.algorithm.as_str(),
        params.digits,
        params.period
    );
    EnrolmentText {
        intro: format!(
            "Set up multi-factor authentication for {user}: scan this QR code with your \
             authenticator app (Microsoft Authenticator, Google Authenticator, Authy), or add the \
             account by hand with the key below. To use a second device as well, scan the same \
             code with it now: the key is not shown again."
        ),
        qr,
        key: Some(key),
    }
}

#[cfg(test)]
mod tests;
