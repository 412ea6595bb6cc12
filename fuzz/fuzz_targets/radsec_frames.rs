//! A RadSec byte stream cut into reads of arbitrary sizes: the framer (`Framer`, as the
//! daemon's radsec.rs drives it) never panics, never holds more than two packets' worth,
//! and yields the same packets, or the same error, as `frame` over the whole stream at once;
//! each packet is as long as its Length field says and within 20..=4096, and together they
//! are the stream up to where it stopped.
//! Run: `cd fuzz && cargo +nightly fuzz run radsec_frames`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_radius_proto::{Frame, Framer, MAX_PACKET, MIN_PACKET, frame};

fuzz_target!(|data: &[u8]| {
    // The first octets choose the read sizes, the rest is the stream.
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };

    let mut whole = Vec::new();
    let mut at = 0;
    let whole_error = loop {
        match frame(stream.get(at..).unwrap_or_default()) {
            Ok(Frame::Packet(len)) => {
                assert!((MIN_PACKET..=MAX_PACKET).contains(&len));
                whole.push(&stream[at..at + len]);
                at += len;
            }
            Ok(Frame::Needs(more)) => {
                assert!(more > 0);
                break None;
            }
            Err(e) => break Some(e),
        }
    };

    let mut framer = Framer::default();
    let mut pieces: Vec<Vec<u8>> = Vec::new();
    let mut error = None;
    let mut rest = stream;
    let mut size = usize::from(seed) * 17 + 1;
    'reads: while !rest.is_empty() {
        size = (size * 31 + 7) % MAX_PACKET + 1;
        let (read, after) = rest.split_at(size.min(rest.len()));
        rest = after;
        framer.push(read);
        assert!(framer.buffered() < 2 * MAX_PACKET);
        loop {
            match framer.next_packet() {
                Ok(Some(p)) => pieces.push(p),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'reads;
                }
            }
        }
        assert!(framer.buffered() < MAX_PACKET);
    }

    assert_eq!(error, whole_error);
    assert_eq!(pieces.len(), whole.len());
    for (p, w) in pieces.iter().zip(&whole) {
        assert_eq!(p.as_slice(), *w);
        assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
    }
    assert!(stream.starts_with(&pieces.concat()));
});
