//! The three modes: what the password attribute of an Access-Request holds, and what is
//! asked of the core, in which order. code-only (`code_only.rs`): the code alone; append
//! (`append.rs`): password and code in one; challenge (`challenge.rs`): the password, then
//! the code in a second round that carries the State. Push approval in each (`push.rs`). [`answer`] picks the mode, after the
//! checks every mode shares; the modes speak to the rest of the daemon (store reader, PAM,
//! writer, challenge table) only through [`ModeBackend`], so their order of steps is tested
//! against a fake one (`tests.rs`).

mod append;
mod challenge;
mod code_only;
mod push;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::time::Duration;

use mfa_config::{ClientPush, Config, FirstFactor, RadiusMode};
use mfa_core::login::Service;
use mfa_core::policy::{Decision, Reason};
use mfa_core::push::PushStarted;
use mfa_core::{
    Admission, Attempt, ClientAddr, CoreError, PushId, PushRefusal, PushState, Request, UserName,
    Voucher,
};
use mfa_pam_client::PamCheck;
use mfa_radius_proto::{AttrType, Packet, unhide_password};
use zeroize::Zeroizing;

use crate::answer::Answer;
use crate::attrs::{asking, push_claims};
use crate::challenge::{Asker, PendingChallenge, Redeem, WireState};
use crate::lanes::LaneError;
use crate::runtime::Nas;
use crate::writer::WriterError;

/// What a mode asks of the rest of the daemon. The daemon's own is `server::Live`: the
/// store reader lane, the PAM lane and the writer of the request's configuration
/// generation, and the challenge table.
pub(crate) trait ModeBackend {
    /// The configuration the request is processed under.
    fn config(&self) -> &Config;

    /// The canonical name of the user `raw` names (`Core::user_name`); `None` where it
    /// names none (the `[users]` rules, or a look-alike of a stored name under `[users]
    /// unicode = "allow"`). A store that cannot be read is a failure like any.
    async fn user_name(&self, raw: &str) -> Result<Option<UserName>, RequestError>;

    /// Whether `user` may get a record, as `by` vouches for it (`Login::admit_name`).
    fn admit(&self, user: &UserName, by: Voucher) -> Result<Admission, CoreError>;

    /// Stores a new pending challenge, for every node on the store (`challenge::issue`);
    /// `None` where the caps are reached.
    async fn issue_challenge(&self, p: PendingChallenge)
    -> Result<Option<WireState>, RequestError>;

    /// Spends a State, whichever node issued it (`challenge::redeem`).
    async fn redeem_challenge(
        &self,
        state: &[u8],
        asker: &Asker,
        service: &str,
        user: &str,
    ) -> Result<Redeem, RequestError>;

    /// The policy before the password check, and the groups it used (kept for the final
    /// decision, so a slow directory is asked once per request). Read-only.
    async fn look(&self, req: &Request) -> Result<(Decision, Vec<String>), RequestError>;

    /// The user's groups, for `exempt_groups` and the rules on groups. Read-only.
    async fn groups(&self, user: &UserName) -> Result<Vec<String>, RequestError>;

    /// The password, as the client's `first_factor` says: through the PAM service of
    /// `[radius] pam_service`, or by a bind to `[directory]` as the user (`"ldap"`). Every
    /// refusal comes with the delay to wait before answering.
    async fn check_password(
        &self,
        user: &UserName,
        password: Zeroizing<Vec<u8>>,
        addr: ClientAddr,
        how: FirstFactor,
    ) -> Result<PamCheck, RequestError>;

    /// The final decision for a login (and the code verified, where one is needed and
    /// given), batched with others into one store commit.
    async fn attempt(&self, attempt: Attempt) -> Result<Decision, RequestError>;

    /// A refused password, audited (`Login::deny_first_factor`).
    async fn deny_first_factor(&self, req: Request) -> Result<Decision, RequestError>;

    /// A request refused before the policy could run, audited (`Login::deny_request`).
    async fn deny_request(&self, req: Request, reason: Reason) -> Result<(), RequestError>;

    /// Push approval as the core has it for what asks (`Push::settings_for`).
    fn push_settings(&self, service: &Service) -> ClientPush;

    /// Whether `user` has registered a phone. Read-only.
    async fn has_phone(&self, user: &UserName) -> Result<bool, RequestError>;

    /// Writes a sign-in request for the portal to push (`Push::start`), on the writer; the
    /// core's refusal is an answer, not a failure.
    async fn start_push(
        &self,
        req: Request,
        can_show_number: bool,
    ) -> Result<Result<PushStarted, PushRefusal>, RequestError>;

    /// A sign-in request's state now (`Push::status`). Read-only.
    async fn push_status(&self, id: PushId) -> Result<Option<PushState>, RequestError>;

    /// The final decision of a login whose second factor is the push `id`
    /// (`Login::verify_push`), on the writer.
    async fn verify_push(&self, req: Request, id: PushId) -> Result<Decision, RequestError>;

    /// A place among the requests held for a push; `None` where as many are held as the
    /// daemon allows. Given back when dropped.
    fn hold_slot(&self) -> Option<HoldSlot>;

    /// How long a held request waits between two looks at its push's state.
    fn push_poll_every(&self) -> Duration;
}

/// A held request's place ([`ModeBackend::hold_slot`]).
pub(crate) type HoldSlot = tokio::sync::OwnedSemaphorePermit;

/// Why a request got no answer from the policy.
#[derive(Debug)]
pub(crate) enum RequestError {
    /// A lane or the writer's queue is full: drop, and let the gateway retransmit.
    Overloaded,
    /// Something in the daemon failed: reject (fail closed) and log the cause.
    Internal(InternalError),
}

/// What failed in the daemon while a request was processed. Its `Display` is the cause the
/// log line gives after "rejecting: ".
#[derive(Debug)]
pub(crate) enum InternalError {
    /// The store writer stopped, or the store failed the batch (rolled back whole).
    Writer(WriterError),
    /// A store reader or PAM worker panicked or was cancelled.
    Lane(LaneError),
    /// The core failed a read (the policy's look, the user's groups).
    Core(CoreError),
    /// `first_factor = "none"` outside code-only mode: configuration validation refuses it,
    /// and a code alone never gets in where a password was expected.
    NoFirstFactor,
    /// No challenge State could be issued: the store holds as many pending challenges as
    /// allowed (in total, or this client's or host's share).
    NoChallengeState,
    /// A held request's push could not be settled: the writer stayed too busy.
    PushUnsettled,
}

impl std::fmt::Display for InternalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InternalError::Writer(e) => write!(f, "{e}"),
            InternalError::Lane(e) => write!(f, "{e}"),
            InternalError::Core(e) => write!(f, "{e}"),
            InternalError::NoFirstFactor => {
                f.write_str("first_factor = \"none\" outside code-only mode")
            }
            InternalError::NoChallengeState => {
                f.write_str("cannot issue a challenge State (as many pending as allowed)")
            }
            InternalError::PushUnsettled => {
                f.write_str("the store writer stayed too busy to settle a held push")
            }
        }
    }
}

impl std::error::Error for InternalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InternalError::Writer(e) => Some(e),
            InternalError::Lane(e) => Some(e),
            InternalError::Core(e) => Some(e),
            InternalError::NoFirstFactor
            | InternalError::NoChallengeState
            | InternalError::PushUnsettled => None,
        }
    }
}

impl From<WriterError> for RequestError {
    fn from(e: WriterError) -> Self {
        match e {
            WriterError::Overloaded => RequestError::Overloaded,
            e => RequestError::Internal(InternalError::Writer(e)),
        }
    }
}

impl From<LaneError> for RequestError {
    fn from(e: LaneError) -> Self {
        match e {
            LaneError::Overloaded(_) => RequestError::Overloaded,
            LaneError::Failed(_) => RequestError::Internal(InternalError::Lane(e)),
        }
    }
}

impl From<CoreError> for RequestError {
    fn from(e: CoreError) -> Self {
        RequestError::Internal(InternalError::Core(e))
    }
}

/// The mode's name, as the configuration spells it, for the log.
pub fn mode_name(m: RadiusMode) -> &'static str {
    match m {
        RadiusMode::Append => "append",
        RadiusMode::Challenge => "challenge",
        RadiusMode::CodeOnly => "code-only",
    }
}

/// The answer to an Access-Request from client `nas` (at `from`) that passed admission;
/// `addr` is the end user's address from the configured attribute.
pub(crate) async fn answer<B: ModeBackend>(
    b: &B,
    nas: &Nas,
    pkt: &Packet<'_>,
    addr: ClientAddr,
    from: IpAddr,
) -> Result<Answer, RequestError> {
    let r = &nas.settings;
    let asker = nas.asker(from);
    let raw = match (
        pkt.count(AttrType::USER_NAME),
        pkt.attr(AttrType::USER_NAME),
    ) {
        (1, Some(u)) => match std::str::from_utf8(u) {
            Ok(u) => u,
            Err(_) => return Ok(Answer::reject(Reason::InvalidUserName)),
        },
        _ => return Ok(Answer::reject(Reason::InvalidUserName)),
    };
    let Some(user) = b.user_name(raw).await? else {
        return Ok(Answer::reject(Reason::InvalidUserName));
    };
    // The client by name and mode; a PAM host (remote mode) as the PAM login it sends.
    // Whether the name may get a record is the core's rule (`attrs::asking` says what
    // vouches for it): no final decision is reached without it.
    let (service, voucher) = asking(&asker, r, pkt);
    let admission = b.admit(&user, voucher)?;
    let req = Request::new(&user, addr, service).admit(&admission);
    if pkt.attr(AttrType::CHAP_PASSWORD).is_some() || pkt.attr(AttrType::EAP_MESSAGE).is_some() {
        // CHAP and EAP cannot be checked through PAM nor carry a TOTP code.
        return refuse(b, req, Reason::UnsupportedMethod).await;
    }
    let password = match pkt.attr(AttrType::USER_PASSWORD) {
        None => None,
        Some(h) => match unhide_password(h, &nas.secret, &pkt.authenticator) {
            Ok(p) => Some(p),
            Err(_) => return refuse(b, req, Reason::MalformedPassword).await,
        },
    };
    let claims = push_claims(r, pkt);
    match r.mode {
        RadiusMode::CodeOnly => code_only::answer(b, req, password).await,
        RadiusMode::Append => append::answer(b, nas, req, password).await,
        RadiusMode::Challenge => match pkt.attr(AttrType::STATE) {
            Some(state) => challenge::second_round(b, &asker, req, state, password, claims).await,
            None => challenge::first_round(b, nas, &asker, req, password, claims).await,
        },
    }
}

/// The final decision for a login. `code`: what the user typed where a code is expected
/// (`Some("")` when nothing was typed, so the core answers `missing_code`).
///
/// `groups`: looked up with an earlier decision for this request, or `None` to look them
/// up here.
async fn finish<B: ModeBackend>(
    b: &B,
    req: Request,
    code: Option<Zeroizing<String>>,
    groups: Option<Vec<String>>,
) -> Result<Decision, RequestError> {
    let groups = match groups {
        Some(g) => g,
        None if !b.config().policy.uses_groups() => Vec::new(),
        // NSS may be slow (LDAP): look the groups up before taking a place in a batch.
        None => b.groups(&req.user).await?,
    };
    b.attempt(Attempt { req, code, groups }).await
}

/// The final decision as an answer. The core decides again inside the write transaction,
/// so a change since the first look (a lock, an enrolment) is honoured.
async fn conclude<B: ModeBackend>(
    b: &B,
    req: Request,
    code: Option<Zeroizing<String>>,
    groups: Option<Vec<String>>,
) -> Result<Answer, RequestError> {
    let d = finish(b, req, code, groups).await?;
    Ok(Answer::from_decision(&d))
}

/// A refused password: audited in the core, answered after PAM's delay.
async fn wrong_password<B: ModeBackend>(
    b: &B,
    req: Request,
    delay: Duration,
) -> Result<Answer, RequestError> {
    let d = b.deny_first_factor(req).await?;
    let mut ans = Answer::from_decision(&d);
    ans.delay = delay;
    Ok(ans)
}

/// A request refused before the policy could run: audited in the core like any decision,
/// then rejected.
async fn refuse<B: ModeBackend>(
    b: &B,
    req: Request,
    reason: Reason,
) -> Result<Answer, RequestError> {
    b.deny_request(req, reason.clone()).await?;
    Ok(Answer::reject(reason))
}

/// The code as typed: User-Password's octets as text (empty when absent).
fn typed_code(code: Option<Zeroizing<Vec<u8>>>) -> Zeroizing<String> {
    Zeroizing::new(code.map_or_else(String::new, |c| String::from_utf8_lossy(&c).into_owned()))
}

fn require_pam(nas: &Nas) -> Result<(), RequestError> {
    if matches!(
        nas.settings.first_factor,
        FirstFactor::Pam | FirstFactor::Ldap
    ) {
        Ok(())
    } else {
        // Config validation refuses this; never let a code alone in where a password was
        // expected.
        Err(RequestError::Internal(InternalError::NoFirstFactor))
    }
}
