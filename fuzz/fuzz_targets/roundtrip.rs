//! decode, encode, decode: every datagram that decodes must re-encode to exactly its octets
//! (up to the Length field) and decode again to an equal packet, the same property as the
//! seeded test in `radius_proto/src/tests/roundtrip.rs`, driven here by coverage.
//! Run: `cd fuzz && cargo +nightly fuzz run roundtrip`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_radius_proto::{Packet, PacketBuf};

fuzz_target!(|data: &[u8]| {
    let Ok(first) = Packet::parse(data) else {
        return;
    };
    let owned = first.to_buf();
    let encoded = match owned.encode() {
        Ok(e) => e,
        Err(e) => panic!("a decoded packet failed to encode: {e}"),
    };
    assert_eq!(encoded, first.raw(), "encode(decode(b)) differs from b");
    let second = match Packet::parse(&encoded) {
        Ok(p) => p,
        Err(e) => panic!("an encoded packet failed to decode: {e}"),
    };
    assert_eq!(second, first);
    assert_eq!(second.to_buf(), owned);
    assert_eq!(PacketBuf::decode(&encoded).as_ref(), Ok(&owned));
});
