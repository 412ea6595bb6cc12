//! code-only: the gateway checked the password itself; User-Password is the code (or
//! absent).

use mfa_core::Request;
use zeroize::Zeroizing;

use super::{ModeBackend, RequestError, conclude, typed_code};
use crate::answer::Answer;

pub(super) async fn answer<B: ModeBackend>(
    b: &B,
    req: Request,
    code: Option<Zeroizing<Vec<u8>>>,
) -> Result<Answer, RequestError> {
    conclude(b, req, Some(typed_code(code)), None).await
}
