//! RADIUS over a stream (RFC 6613; RadSec, RFC 6614, is the same over TLS): packets follow
//! one another with no framing but their own Length field, so a reader cuts the stream by
//! it. Here only bytes go in and packets come out; the daemon's `radsec.rs` reads the
//! socket and feeds them.
//!
//! A Length outside 20..=4096 cannot be skipped: nothing in the stream says where the next
//! packet starts, so the error is final and the connection must end.

use std::fmt;

use super::{MAX_PACKET, MIN_PACKET};

/// What the bytes at the start of a stream hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole packet: its first this many octets (its Length field).
    Packet(usize),
    /// Not yet a whole packet: at least this many more octets are needed (until the four
    /// header octets with the Length field are in, those; then the rest of the packet).
    Needs(usize),
}

/// Why a stream cannot be cut into packets. The stream cannot be resynchronised after one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A Length field no RADIUS packet can have (RFC 2865 §3: 20 to 4096 octets).
    BadLength { declared: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadLength { declared } => write!(
                f,
                "RADIUS Length {declared} outside {MIN_PACKET}..={MAX_PACKET}"
            ),
        }
    }
}

/// The cause is the octets themselves: `source()` is `None`.
impl std::error::Error for FrameError {}

/// Where the first packet of `stream` ends. A bad Length is an error as soon as its four
/// header octets are in, before waiting for a body that could never be right.
pub fn frame(stream: &[u8]) -> Result<Frame, FrameError> {
    let Some(&[hi, lo]) = stream.get(2..4) else {
        return Ok(Frame::Needs(4usize.saturating_sub(stream.len())));
    };
    let declared = usize::from(u16::from_be_bytes([hi, lo]));
    if !(MIN_PACKET..=MAX_PACKET).contains(&declared) {
        return Err(FrameError::BadLength { declared });
    }
    match declared.checked_sub(stream.len()) {
        Some(more) if more > 0 => Ok(Frame::Needs(more)),
        _ => Ok(Frame::Packet(declared)),
    }
}

/// A stream's bytes cut into packets with [`frame`], holding what is not yet a whole one.
/// Fed with reads of at most [`MAX_PACKET`] octets and drained after each, it never holds
/// more than twice that.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Appends bytes read off the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete packet, `Ok(None)` until one is complete. After an error the
    /// framer is stuck on it: the stream is lost.
    pub fn next_packet(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        match frame(&self.buf)? {
            Frame::Needs(_) => Ok(None),
            Frame::Packet(len) => {
                let rest = self.buf.split_off(len);
                Ok(Some(std::mem::replace(&mut self.buf, rest)))
            }
        }
    }

    /// Bytes held that are not yet a whole packet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}
