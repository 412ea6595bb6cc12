//! RADIUS: placeholder.
#![forbid(unsafe_code)]
