//! The strict Vendor-Specific decoder over seeded random and mutated values, the property
//! the `radius_packet` fuzz target checks, in the normal suite: it never panics; what it
//! accepts is exactly its sub-attributes laid end to end after the Vendor-Id; each
//! sub-attribute re-encodes to a value that decodes to itself; what it refuses is refused
//! with the offset of the fault inside the value.

use super::roundtrip::Rng;
use crate::vsa::{self, SubAttr, VsaError};

fn well_formed(rng: &mut Rng) -> Vec<u8> {
    let vendor = (rng.next() as u32) & 0x00ff_ffff;
    let mut v = vendor.to_be_bytes().to_vec();
    for _ in 0..=(rng.next() % 4) {
        let len = (rng.next() % 40) as usize;
        v.push(rng.next() as u8);
        v.push(len as u8 + 2);
        v.extend((0..len).map(|_| rng.next() as u8));
    }
    v
}

fn check(value: &[u8]) {
    match vsa::decode(value) {
        Ok(d) => {
            assert!(!d.subs.is_empty());
            let mut again = d.vendor.to_be_bytes().to_vec();
            for s in &d.subs {
                again.extend([s.typ, s.value.len() as u8 + 2]);
                again.extend_from_slice(s.value);
                let one = vsa::encode(d.vendor, s.typ, s.value).unwrap();
                let back = vsa::decode(&one).unwrap();
                assert_eq!((back.vendor, back.subs), (d.vendor, vec![*s]));
            }
            assert_eq!(again, value);
        }
        Err(
            VsaError::SubLengthTooShort { offset, .. }
            | VsaError::SubLengthOverrun { offset, .. }
            | VsaError::TrailingOctet { offset },
        ) => assert!((4..value.len()).contains(&offset), "{value:?}"),
        Err(VsaError::TruncatedVendorId { len }) => assert!(len < 4 && len == value.len()),
        Err(VsaError::BadVendorId { .. }) => assert_ne!(value[0], 0),
        Err(VsaError::Empty { .. }) => assert_eq!(value.len(), 4),
    }
}

#[test]
fn vendor_specifics_decode_strictly_and_round_trip() {
    let mut rng = Rng(0x005e_ed0f_7a5a);
    let mut accepted = 0;
    for _ in 0..50_000 {
        let good = well_formed(&mut rng);
        let d = vsa::decode(&good).unwrap();
        assert!(d.subs.iter().all(|s: &SubAttr<'_>| s.value.len() < 40));
        check(&good);
        let mut bad = good.clone();
        match rng.next() % 4 {
            0 => {
                let i = (rng.next() as usize) % bad.len();
                bad[i] = rng.next() as u8;
            }
            1 => bad.truncate((rng.next() as usize) % bad.len()),
            2 => bad.push(rng.next() as u8),
            _ => bad = (0..rng.next() % 12).map(|_| rng.next() as u8).collect(),
        }
        if vsa::decode(&bad).is_ok() {
            accepted += 1;
        }
        check(&bad);
    }
    // Mutations that keep the layout are accepted, most are not: both paths ran.
    assert!(accepted > 1000 && accepted < 49_000, "{accepted}");
}
