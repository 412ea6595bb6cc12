//! challenge: the password in a first round, answered with an Access-Challenge carrying a
//! fresh State where a code is needed; the code in a second round that brings the State
//! back. The States wait in the challenge table (`crate::challenge`).

use std::time::{Duration, Instant};

use mfa_config::FirstFactor;
use mfa_core::Request;
use mfa_core::policy::{Outcome, Reason};
use zeroize::Zeroizing;

use super::{
    InternalError, ModeBackend, RequestError, conclude, refuse, typed_code, wrong_password,
};
use crate::answer::Answer;
use crate::challenge::{Asker, PendingChallenge, Redeem};
use crate::runtime::Nas;

/// The first round: the password, checked before anything is recorded or said about the
/// user (a wrong password gets the same answer whoever the name belongs to); then Accept
/// (no code needed), Reject, or an Access-Challenge carrying a fresh State.
///
/// A client with `first_factor = "none"` (allowed only per client, in this mode: a PAM host
/// in remote mode, whose own password module ran first) sends an empty User-Password, and
/// goes straight to the policy.
pub(super) async fn first_round<B: ModeBackend>(
    b: &B,
    nas: &Nas,
    asker: &Asker,
    req: Request,
    password: Option<Zeroizing<Vec<u8>>>,
) -> Result<Answer, RequestError> {
    if nas.settings.first_factor == FirstFactor::Pam {
        let Some(password) = password else {
            return wrong_password(b, req, Duration::ZERO).await;
        };
        let pam = b.check_password(&req.user, password, req.client).await?;
        if !pam.ok {
            return wrong_password(b, req, pam.fail_delay).await;
        }
    }
    let (d, groups) = b.look(&req).await?;
    if d.outcome != Outcome::NeedCode {
        return conclude(b, req, None, Some(groups)).await;
    }
    let now = Instant::now();
    let pending = PendingChallenge {
        asker: asker.clone(),
        service: req.service.to_string(),
        user: req.user.to_string(),
        client_addr: req.client,
        expires: now + b.config().radius.challenge_timeout.0,
    };
    let state = b.challenges().issue(pending, now);
    let Some(state) = state else {
        return Err(RequestError::Internal(InternalError::NoChallengeState));
    };
    Ok(Answer::challenge(state))
}

/// The second round: State + code. The State is spent whatever happens.
pub(super) async fn second_round<B: ModeBackend>(
    b: &B,
    asker: &Asker,
    mut req: Request,
    state: &[u8],
    code: Option<Zeroizing<Vec<u8>>>,
) -> Result<Answer, RequestError> {
    let redeemed = b.challenges().redeem(
        state,
        asker,
        &req.service.to_string(),
        &req.user,
        Instant::now(),
    );
    match redeemed {
        Redeem::Ok(addr) => req.client = addr,
        Redeem::Unknown => {
            let mut a = refuse(b, req, Reason::UnknownState).await?;
            a.message = Some("The login timed out or was already used; start again.".into());
            return Ok(a);
        }
        Redeem::Mismatch => return refuse(b, req, Reason::StateMismatch).await,
    }
    let first_round = req.client;
    let mut ans = conclude(b, req, Some(typed_code(code)), None).await?;
    ans.client = Some(first_round);
    Ok(ans)
}
