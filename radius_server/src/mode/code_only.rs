//! code-only: the gateway checked the password itself; User-Password is the code (or
//! absent). Where the client has push (issue 20), a request without a code (every request,
//! with `push = "only"`) that needs a second factor is held for a push without number
//! matching: the gateway (RD Gateway) can show no number.

use mfa_config::PushMode;
use mfa_core::Request;
use mfa_core::policy::Outcome;
use zeroize::Zeroizing;

use super::{ModeBackend, RequestError, conclude, push, typed_code};
use crate::answer::Answer;

pub(super) async fn answer<B: ModeBackend>(
    b: &B,
    req: Request,
    code: Option<Zeroizing<Vec<u8>>>,
) -> Result<Answer, RequestError> {
    let typed = typed_code(code);
    let mode = b.push_settings(&req.service).mode;
    let wants_push = match mode {
        PushMode::Off => false,
        PushMode::On => typed.trim().is_empty(),
        PushMode::Only => true,
    };
    if !wants_push {
        return conclude(b, req, Some(typed), None).await;
    }
    // Only where the policy asks for a second factor: a trusted network, an exemption, a
    // lock are settled as ever, without a push.
    let (d, groups) = b.look(&req).await?;
    if d.outcome == Outcome::NeedCode {
        return push::hold(b, req).await;
    }
    // With `push = "only"` a code in the request is not looked at.
    let code = if mode == PushMode::Only {
        Zeroizing::default()
    } else {
        typed
    };
    conclude(b, req, Some(code), Some(groups)).await
}
