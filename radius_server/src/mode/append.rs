//! append: User-Password is password + code. One PAM attempt, always before anything is
//! recorded or said about the user: a wrong password gets the same answer (and PAM's
//! delay) whoever the name belongs to, and leaves the code unspent. The read-only policy
//! look only says where the password ends: a user who must type a code (or is locked) sent
//! password + code, anyone else only a password.
//!
//! Push approval (issue 20), where the client has it: a user who must type a code may send
//! `password,push` (Duo's convention) instead; with `push = "only"` the whole is always the
//! password. The password is checked first, then the request is held for the push (no
//! number: the gateway can show none).
//!
//! OpenVPN's `static-challenge` sends `SCRV1:base64(password):base64(response)`: read in the
//! core (`verify::read_static_challenge`), the response is the code (or the push word),
//! and the form holds no code to split off. Malformed after `SCRV1:`, it is refused
//! (`malformed_static_challenge`) before PAM or the policy is asked, never tried as a
//! plain password.

use std::time::Duration;

use mfa_config::PushMode;
use mfa_core::Request;
use mfa_core::login::PUSH_WORD;
use mfa_core::policy::Outcome;
use mfa_core::policy::Reason;
use mfa_core::verify::{read_static_challenge, split_appended};
use zeroize::Zeroizing;

use super::push::{hold, strip_push_suffix};
use super::{ModeBackend, RequestError, conclude, refuse, require_pam, wrong_password};
use crate::answer::Answer;
use crate::runtime::Nas;

pub(super) async fn answer<B: ModeBackend>(
    b: &B,
    nas: &Nas,
    req: Request,
    whole: Option<Zeroizing<Vec<u8>>>,
) -> Result<Answer, RequestError> {
    require_pam(nas)?;
    let Some(whole) = whole else {
        return wrong_password(b, req, Duration::ZERO).await;
    };
    let (whole, response) = match read_static_challenge(&whole) {
        // From here on `whole` is the password alone: the form carries the code apart.
        Ok(Some(sc)) => (sc.password, Some(sc.response)),
        Ok(None) => (whole, None),
        Err(_) => return refuse(b, req, Reason::MalformedStaticChallenge).await,
    };
    let (d, groups) = b.look(&req).await?;
    let expects_code = d.outcome == Outcome::NeedCode || d.is_locked();
    // A `push` rule sends the push at once, as `push = "only"` does: the whole is the
    // password.
    let mode = d.push_mode(b.push_settings(&req.service).mode);
    let pushed = match mode {
        _ if d.outcome != Outcome::NeedCode => None,
        PushMode::Off => None,
        PushMode::On => match &response {
            Some(r) => {
                (r.eq_ignore_ascii_case(PUSH_WORD) && !whole.is_empty()).then(|| whole.clone())
            }
            None => strip_push_suffix(&whole),
        },
        PushMode::Only => Some(whole.clone()),
    };
    if let Some(password) = pushed {
        let pam = b
            .check_password(&req.user, password, req.client, nas.settings.first_factor)
            .await?;
        if !pam.ok {
            return wrong_password(b, req, pam.fail_delay).await;
        }
        return hold(b, req).await;
    }
    let t = b.config();
    let (password, code) = if expects_code && mode == PushMode::Only {
        // Locked: the whole is the password; the core refuses past it.
        (whole, Some(Zeroizing::default()))
    } else if let (true, Some(code)) = (expects_code, response) {
        (whole, Some(code))
    } else if expects_code {
        match split_appended(&whole, t.totp.digits, t.radius.append_delimiter.as_deref()) {
            Some((password, code)) => (password, Some(code)),
            // No code at the end: the whole is the password; past it, the core answers
            // `missing_code`.
            None => (whole, Some(Zeroizing::default())),
        }
    } else {
        (whole, None)
    };
    let pam = b
        .check_password(&req.user, password, req.client, nas.settings.first_factor)
        .await?;
    if !pam.ok {
        return wrong_password(b, req, pam.fail_delay).await;
    }
    conclude(b, req, code, Some(groups)).await
}
