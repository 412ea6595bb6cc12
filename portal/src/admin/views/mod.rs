//! The console's pages as HTML, calling no core: the frame, and one file per page.

pub mod frame;
pub mod log;
pub mod networks;
pub mod rollout;
pub mod users;
