//! Push approval in the three modes (issue 20). The core decides everything (whether push is
//! on for the client, whether one may be sent, what the phone's answer means); this file only
//! turns it into RADIUS:
//!
//! - **challenge** (and PAM hosts): the push is sent in a round of its own and shown in an
//!   Access-Challenge whose State waits for it ([`start_in_challenge`]); each next round asks
//!   the core whether the phone decided ([`poll`]) and answers at once: the decision, or
//!   another challenge while it has not. No request is held open.
//! - **append** (`password,push`) and **code-only** (no code; every request with
//!   `push = "only"`): the request is held ([`hold`]) until the phone decides or the request
//!   expires, waiting asynchronously (a timer, and a read of the request's state now and then
//!   on a store reader), at most [`crate::server::MAX_HELD_PUSHES`] at once; a gateway's
//!   retransmission of a held request is answered by the duplicate cache, so it never sends a
//!   second push.
//!
//! Fail closed: a push the core refuses is a reject (or, where a code may still be typed, a
//! new challenge that says why); a request not decided in its time, a store that fails, an
//! answer that cannot be had are rejects.

use std::time::{Duration, Instant};

use mfa_core::policy::{Decision, Outcome, Reason, push_refusal_message};
use mfa_core::push::PushStarted;
use mfa_core::{PushRefusal, PushState, Request};
use mfa_radius_proto::pam_host::{ChallengePush, MAX_PUSH_TIMEOUT};
use zeroize::Zeroizing;

use super::{InternalError, ModeBackend, RequestError, conclude};
use crate::answer::Answer;
use crate::challenge::{Asker, PendingChallenge, PushWait, now_ms};

/// How long past a request's expiry a held request still waits for its state to read so
/// (another node's clock a little ahead) before it is settled anyway.
const SLACK: Duration = Duration::from_secs(5);

/// Whether a gateway's user typed the word that asks for a push ([`mfa_core::login::PUSH_WORD`],
/// any case, blanks around it ignored).
pub(super) fn is_push_word(typed: &[u8]) -> bool {
    typed
        .trim_ascii()
        .eq_ignore_ascii_case(mfa_core::login::PUSH_WORD.as_bytes())
}

/// The password of `password,push` (Duo's convention, any case), or `None` where the whole
/// does not end so (or there is no password before it).
pub(super) fn strip_push_suffix(whole: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let word = mfa_core::login::PUSH_WORD.as_bytes();
    let at = whole.len().checked_sub(word.len() + 1)?;
    let (password, tail) = whole.split_at(at);
    let ok = tail.first() == Some(&b',') && tail[1..].eq_ignore_ascii_case(word);
    (ok && !password.is_empty()).then(|| Zeroizing::new(password.to_vec()))
}

/// A push the core refused, where no code can be typed instead: audited as the login's
/// decision, and rejected with the core's reason for the user (Reply-Message; for a PAM host
/// also its Reject-Reason).
async fn refused<B: ModeBackend>(
    b: &B,
    req: Request,
    r: PushRefusal,
) -> Result<Answer, RequestError> {
    let reason = Reason::PushRefused(r);
    b.deny_request(req, reason.clone()).await?;
    Ok(Answer::from_decision(&Decision::deny(reason)))
}

/// Seconds from now (this node's clock) until `expires`, as a PAM host is told them.
fn seconds_left(expires: i64) -> u32 {
    let left = expires.saturating_sub(mfa_core::login::now());
    u32::try_from(left.clamp(1, i64::from(MAX_PUSH_TIMEOUT))).unwrap_or(1)
}

/// Issues a challenge State for `req` from `asker` (waiting for `push`, if any).
pub(super) async fn issue<B: ModeBackend>(
    b: &B,
    asker: &Asker,
    req: &Request,
    push: Option<PushWait>,
) -> Result<Answer, RequestError> {
    let timeout = b.config().radius.challenge_timeout.0;
    let pending = PendingChallenge {
        asker: asker.clone(),
        service: req.service.to_string(),
        user: req.user.to_string(),
        client_addr: req.client,
        expires: now_ms().saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)),
        push,
    };
    match b.issue_challenge(pending).await? {
        Some(state) => Ok(Answer::challenge(state)),
        None => Err(RequestError::Internal(InternalError::NoChallengeState)),
    }
}

/// The Access-Challenge that shows a push waiting: the number and "then press OK" for a
/// gateway (`again` once the user pressed OK before the phone decided), the push's
/// attributes for a PAM host.
async fn waiting<B: ModeBackend>(
    b: &B,
    asker: &Asker,
    req: &Request,
    wait: PushWait,
    again: bool,
) -> Result<Answer, RequestError> {
    let mut a = issue(b, asker, req, Some(wait)).await?;
    a.reason = Reason::PushWaiting;
    a.message = Some(mfa_core::login::push_challenge_message(wait.number, again));
    a.push = Some(ChallengePush::Waiting {
        number: wait.number,
        timeout_secs: seconds_left(wait.expires),
    });
    Ok(a)
}

/// Challenge mode: sends the push (the user typed the word, a PAM host sent Push-Request,
/// or the client has `push = "only"`) and shows it in a challenge. Refused, a client that
/// takes codes (`only` false) gets a new challenge for the code that says why; one that does
/// not, a reject.
pub(super) async fn start_in_challenge<B: ModeBackend>(
    b: &B,
    asker: &Asker,
    req: Request,
    only: bool,
) -> Result<Answer, RequestError> {
    match b.start_push(req.clone(), true).await? {
        Ok(PushStarted {
            id,
            number,
            expires,
        }) => {
            let wait = PushWait {
                id,
                number,
                expires,
            };
            waiting(b, asker, &req, wait, false).await
        }
        // The policy settles this login without a second factor now: so be it.
        Err(PushRefusal::NotAsked) => conclude(b, req, None, None).await,
        Err(r) if only => refused(b, req, r).await,
        Err(r) => {
            let mut a = issue(b, asker, &req, None).await?;
            a.reason = Reason::PushRefused(r);
            a.message = Some(push_refusal_message(r));
            Ok(a)
        }
    }
}

/// Challenge mode, the round after a push was shown: whether the phone decided. Not yet
/// (or the store readers are too busy to say): a new challenge waiting for the same push.
/// Decided or expired: the login's decision on the one path (`Login::verify_push`).
pub(super) async fn poll<B: ModeBackend>(
    b: &B,
    asker: &Asker,
    mut req: Request,
    wait: PushWait,
) -> Result<Answer, RequestError> {
    match b.push_status(wait.id).await {
        Ok(Some(PushState::Pending)) | Err(RequestError::Overloaded) => {
            return waiting(b, asker, &req, wait, true).await;
        }
        Ok(_) => {}
        Err(e) => return Err(e),
    }
    req.now = mfa_core::login::now();
    let d = b.verify_push(req.clone(), wait.id).await?;
    if d.outcome == Outcome::NeedCode {
        return waiting(b, asker, &req, wait, true).await;
    }
    Ok(Answer::from_decision(&d))
}

/// Append and code-only mode: sends the push (no number: the gateway cannot show one) and
/// holds the request until the phone decides or the request expires, then answers with the
/// login's decision. A place among the held requests is taken first: none left, the request
/// is dropped before anything is written (the gateway retransmits).
pub(super) async fn hold<B: ModeBackend>(b: &B, req: Request) -> Result<Answer, RequestError> {
    let Some(_slot) = b.hold_slot() else {
        return Err(RequestError::Overloaded);
    };
    let started = match b.start_push(req.clone(), false).await? {
        Ok(s) => s,
        Err(PushRefusal::NotAsked) => return conclude(b, req, None, None).await,
        Err(r) => return refused(b, req, r).await,
    };
    let left = u64::try_from(started.expires.saturating_sub(req.now)).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(left) + SLACK;
    loop {
        tokio::time::sleep(b.push_poll_every()).await;
        match b.push_status(started.id).await {
            // Busy readers: look again at the next tick, the request is still held.
            Ok(Some(PushState::Pending)) | Err(RequestError::Overloaded) => {}
            Ok(_) => break,
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    // The decision must be had: a request dropped now would be evaluated again when the
    // gateway retransmits, and would send a second push. A full writer queue is waited out
    // (bounded); anything else rejects.
    let mut tries = 0;
    loop {
        let mut r = req.clone();
        r.now = mfa_core::login::now();
        match b.verify_push(r, started.id).await {
            Ok(d) => return Ok(Answer::from_decision(&d)),
            Err(RequestError::Overloaded) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(RequestError::Overloaded) => {
                return Err(RequestError::Internal(InternalError::PushUnsettled));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_and_the_suffix() {
        for yes in [&b"push"[..], b"PUSH", b" Push ", b"push\t"] {
            assert!(is_push_word(yes), "{yes:?}");
        }
        for no in [&b"pus"[..], b"pushh", b"", b"123456", b"push 1"] {
            assert!(!is_push_word(no), "{no:?}");
        }
        assert_eq!(
            strip_push_suffix(b"s3cret,push")
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"s3cret"[..])
        );
        assert_eq!(
            strip_push_suffix(b"a,b,PUSH").as_deref().map(Vec::as_slice),
            Some(&b"a,b"[..])
        );
        for no in [
            &b",push"[..],
            b"push",
            b"s3cret push",
            b"s3cret,pus",
            b"s3cret;push",
        ] {
            assert!(strip_push_suffix(no).is_none(), "{no:?}");
        }
    }
}
