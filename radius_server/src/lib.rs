//! mfa-radiusd: the RADIUS front end. It translates packets into core requests and decisions
//! back into packets; all policy lives in `mfa_core`.
#![forbid(unsafe_code)]

pub mod accounting;
pub mod admission;
pub mod answer;
pub mod attrs;
pub mod challenge;
pub mod dedup;
pub mod lanes;
pub mod logbuf;
pub mod metrics;
pub mod mode;
pub mod offline_report;
/// systemd readiness, shared with mfa-portal.
pub use mfa_notify as notify;
pub mod radsec;
pub mod run;
pub mod runtime;
pub mod server;
pub mod stats;
pub mod store_health;
pub mod writer;
