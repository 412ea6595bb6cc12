//! mfa-radiusd: the RADIUS front end. It translates packets to core requests and decisions
//! back to packets; all policy lives in `mfa_common`.
#![forbid(unsafe_code)]

pub mod codec;
