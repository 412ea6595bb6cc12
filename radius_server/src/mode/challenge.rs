//! challenge: the password in a first round, answered with an Access-Challenge carrying a
//! fresh State where a code is needed; the code in a second round that brings the State
//! back. The States wait in the store, so any node finishes them (`crate::challenge`).
//!
//! Push approval (issue 20), where the core has it on for the client: the first challenge
//! offers it to a user with a phone (the Reply-Message; a PAM host's Push-Offered). The user
//! types the word (a PAM host sends Push-Request) in the second round, which sends the push
//! and answers with a challenge showing its number; the next round succeeds once the phone
//! approved (`push.rs`). With `push = "only"` the first round sends the push itself.

use std::time::Duration;

use mfa_config::{FirstFactor, PushMode};
use mfa_core::Request;
use mfa_core::policy::{Outcome, Reason};
use mfa_radius_proto::pam_host::ChallengePush;
use zeroize::Zeroizing;

use super::push::{is_push_word, issue, poll, start_in_challenge};
use super::{ModeBackend, RequestError, conclude, refuse, typed_code, wrong_password};
use crate::answer::Answer;
use crate::attrs::PushClaims;
use crate::challenge::{Asker, Redeem};
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
    claims: PushClaims,
) -> Result<Answer, RequestError> {
    if nas.settings.first_factor != FirstFactor::None {
        let Some(password) = password else {
            return wrong_password(b, req, Duration::ZERO).await;
        };
        let pam = b
            .check_password(&req.user, password, req.client, nas.settings.first_factor)
            .await?;
        if !pam.ok {
            return wrong_password(b, req, pam.fail_delay).await;
        }
    }
    let (d, groups) = b.look(&req).await?;
    if d.outcome != Outcome::NeedCode {
        return conclude(b, req, None, Some(groups)).await;
    }
    // A client that cannot be shown a push (a PAM host of an older release) is asked for the
    // code, whatever its `push`.
    // A `push` rule sends the push at once, as `push = "only"` does.
    let mode = if claims.capable {
        d.push_mode(b.push_settings(&req.service).mode)
    } else {
        PushMode::Off
    };
    match mode {
        PushMode::Only => start_in_challenge(b, asker, req, true).await,
        PushMode::On if b.has_phone(&req.user).await? => {
            let mut a = issue(b, asker, &req, None).await?;
            a.message = Some(mfa_core::login::CODE_OR_PUSH_CHALLENGE.into());
            a.push = Some(ChallengePush::Offered);
            Ok(a)
        }
        PushMode::On | PushMode::Off => issue(b, asker, &req, None).await,
    }
}

/// The second round: State + code (or the push word). The State is spent whatever happens.
/// A State that waits for a push asks whether the phone decided, unless a code is typed
/// instead.
pub(super) async fn second_round<B: ModeBackend>(
    b: &B,
    asker: &Asker,
    mut req: Request,
    state: &[u8],
    code: Option<Zeroizing<Vec<u8>>>,
    claims: PushClaims,
) -> Result<Answer, RequestError> {
    let redeemed = b
        .redeem_challenge(state, asker, &req.service.to_string(), &req.user)
        .await?;
    let mode = if claims.capable {
        b.push_settings(&req.service).mode
    } else {
        PushMode::Off
    };
    let typed: &[u8] = code.as_deref().map_or(&[], Vec::as_slice);
    let wait = match redeemed {
        Redeem::Ok(addr) => {
            req.client = addr;
            None
        }
        Redeem::Push(addr, wait) => {
            req.client = addr;
            Some(wait)
        }
        Redeem::Unknown => {
            let mut a = refuse(b, req, Reason::UnknownState).await?;
            a.message = Some("The login timed out or was already used; start again.".into());
            return Ok(a);
        }
        Redeem::Mismatch => return refuse(b, req, Reason::StateMismatch).await,
    };
    let first_round = req.client;
    let typed_a_code = !typed.trim_ascii().is_empty() && !is_push_word(typed);
    let mut ans = match wait {
        // OK pressed (or the word again; with `only`, whatever was typed): has the phone
        // decided?
        Some(w) if mode == PushMode::Only || !typed_a_code => poll(b, asker, req, w).await?,
        // A code typed instead of waiting for the phone: checked as ever.
        Some(_) => conclude(b, req, Some(typed_code(code)), None).await?,
        None => {
            let asked = match mode {
                PushMode::Off => false,
                PushMode::On => claims.requested || (!claims.pam_host && is_push_word(typed)),
                PushMode::Only => true,
            };
            if asked {
                start_in_challenge(b, asker, req, mode == PushMode::Only).await?
            } else {
                conclude(b, req, Some(typed_code(code)), None).await?
            }
        }
    };
    ans.client = Some(first_round);
    Ok(ans)
}
