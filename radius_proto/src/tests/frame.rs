//! RADIUS over a stream: packets cut off by their Length field (`frame.rs`), whatever the
//! reads look like.

use super::roundtrip::Rng;
use crate::*;

/// A packet of `len` octets with identifier `id`: only the header matters to the framer.
fn packet(id: u8, len: usize) -> Vec<u8> {
    let mut p = vec![id; len];
    p[0] = 1;
    p[2..4].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    p
}

#[test]
fn frame_says_how_much_is_missing() {
    let p = packet(7, 100);
    assert_eq!(frame(&[]), Ok(Frame::Needs(4)));
    assert_eq!(frame(&p[..3]), Ok(Frame::Needs(1)));
    assert_eq!(frame(&p[..4]), Ok(Frame::Needs(96)));
    assert_eq!(frame(&p[..99]), Ok(Frame::Needs(1)));
    assert_eq!(frame(&p), Ok(Frame::Packet(100)));
    // The next packet's first octets do not change where this one ends.
    let two = [p.clone(), packet(8, 20)].concat();
    assert_eq!(frame(&two), Ok(Frame::Packet(100)));
    assert_eq!(frame(&packet(1, MIN_PACKET)), Ok(Frame::Packet(20)));
    assert_eq!(frame(&packet(1, MAX_PACKET)), Ok(Frame::Packet(4096)));
}

#[test]
fn partial_reads_make_one_packet() {
    let p = packet(7, 100);
    let mut f = Framer::default();
    // One byte at a time, the header split across reads.
    for (i, b) in p.iter().enumerate() {
        assert_eq!(f.next_packet(), Ok(None), "complete after {i} bytes?");
        f.push(std::slice::from_ref(b));
    }
    assert_eq!(f.next_packet(), Ok(Some(p)));
    assert_eq!(f.next_packet(), Ok(None));
    assert_eq!(f.buffered(), 0);
}

#[test]
fn two_packets_in_one_read_and_a_third_begun() {
    let (a, b, c) = (packet(1, 20), packet(2, 4096), packet(3, 300));
    let mut read = [a.clone(), b.clone()].concat();
    read.extend_from_slice(&c[..5]);
    let mut f = Framer::default();
    f.push(&read);
    assert_eq!(f.next_packet(), Ok(Some(a)));
    assert_eq!(f.next_packet(), Ok(Some(b)));
    assert_eq!(f.next_packet(), Ok(None));
    assert_eq!(f.buffered(), 5);
    f.push(&c[5..]);
    assert_eq!(f.next_packet(), Ok(Some(c)));
}

#[test]
fn impossible_lengths_are_refused_before_the_body() {
    for len in [0usize, 19, 4097, 65_535] {
        let mut f = Framer::default();
        let mut head = vec![1u8, 9];
        head.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        assert_eq!(frame(&head), Err(FrameError::BadLength { declared: len }));
        f.push(&head);
        assert_eq!(
            f.next_packet(),
            Err(FrameError::BadLength { declared: len }),
            "length {len}"
        );
        // The stream is lost: the framer stays on the error.
        f.push(&packet(2, 20));
        assert!(f.next_packet().is_err());
    }
    // After a good packet too.
    let mut f = Framer::default();
    let mut read = packet(1, 20);
    read.extend_from_slice(&[1, 2, 0xff, 0xff]);
    f.push(&read);
    assert!(f.next_packet().unwrap().is_some());
    assert_eq!(
        f.next_packet(),
        Err(FrameError::BadLength { declared: 0xffff })
    );
    // The daemon logs this text (tests/tests/radsec.rs looks for it).
    assert_eq!(
        FrameError::BadLength { declared: 0xffff }.to_string(),
        "RADIUS Length 65535 outside 20..=4096"
    );
}

#[test]
fn buffer_stays_bounded_under_reads_of_the_largest_size() {
    // A stream of packets of every size, delivered in reads of MAX_PACKET bytes as the
    // daemon's connection loop does: nothing above 2 * MAX_PACKET is ever held.
    let stream: Vec<u8> = (20..=MAX_PACKET)
        .step_by(97)
        .enumerate()
        .flat_map(|(i, len)| packet(u8::try_from(i % 256).unwrap(), len))
        .collect();
    let mut f = Framer::default();
    let mut out = Vec::new();
    for chunk in stream.chunks(MAX_PACKET) {
        f.push(chunk);
        assert!(f.buffered() < 2 * MAX_PACKET);
        while let Some(p) = f.next_packet().unwrap() {
            out.extend_from_slice(&p);
        }
        assert!(f.buffered() < MAX_PACKET);
    }
    assert_eq!(out, stream);
}

/// However a stream is cut into reads, the same packets come out, each as long as its
/// Length field says, and their concatenation is the stream up to the first bad Length.
#[test]
fn reads_of_any_size_give_the_same_packets() {
    let mut rng = Rng(0x5eed_f4a3_e000_0001);
    for round in 0..300u32 {
        let mut stream = Vec::new();
        for _ in 0..(rng.next() % 12) {
            let len = MIN_PACKET + (rng.next() as usize) % (MAX_PACKET - MIN_PACKET + 1);
            let mut p = packet(rng.next() as u8, len);
            // Every tenth stream ends in garbage, whose Length may or may not be good.
            if round.is_multiple_of(10) && rng.next().is_multiple_of(3) {
                p[2] = rng.next() as u8;
                p[3] = rng.next() as u8;
            }
            stream.extend_from_slice(&p);
        }
        // All at once, with `frame` alone.
        let mut whole = Vec::new();
        let mut at = 0;
        let whole_error = loop {
            match frame(&stream[at..]) {
                Ok(Frame::Packet(len)) => {
                    whole.push(stream[at..at + len].to_vec());
                    at += len;
                }
                Ok(Frame::Needs(_)) => break None,
                Err(e) => break Some(e),
            }
        };
        // In reads of random sizes, through the framer.
        let mut f = Framer::default();
        let mut pieces = Vec::new();
        let mut error = None;
        let mut rest = &stream[..];
        'reads: while !rest.is_empty() {
            let n = 1 + (rng.next() as usize) % MAX_PACKET.min(rest.len());
            let (read, after) = rest.split_at(n);
            rest = after;
            f.push(read);
            loop {
                match f.next_packet() {
                    Ok(Some(p)) => pieces.push(p),
                    Ok(None) => break,
                    Err(e) => {
                        error = Some(e);
                        break 'reads;
                    }
                }
            }
        }
        assert_eq!(pieces, whole, "round {round}");
        assert_eq!(error, whole_error, "round {round}");
        for p in &pieces {
            assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
        }
    }
}
