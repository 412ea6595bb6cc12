//! decode(encode(decode(bytes))) == decode(bytes), over seeded random packets and random
//! mutations of them: a deterministic property test in the normal suite, so a regression
//! shows up in `cargo test` and not only under cargo-fuzz on nightly.

use crate::*;

/// xorshift64: deterministic pseudo-random numbers without a dependency, for every test of
/// this crate.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Fewer than `n` random octets.
    fn bytes_below(&mut self, n: usize) -> Vec<u8> {
        let len = self.below(n);
        self.bytes(len)
    }

    fn array16(&mut self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..8].copy_from_slice(&self.next().to_le_bytes());
        a[8..].copy_from_slice(&self.next().to_le_bytes());
        a
    }
}

const CODES: [Code; 8] = [
    Code::ACCESS_REQUEST,
    Code::ACCESS_ACCEPT,
    Code::ACCESS_REJECT,
    Code::ACCOUNTING_REQUEST,
    Code::ACCOUNTING_RESPONSE,
    Code::ACCESS_CHALLENGE,
    Code::STATUS_SERVER,
    Code::STATUS_CLIENT,
];

const TYPES: [AttrType; 13] = [
    AttrType::USER_NAME,
    AttrType::USER_PASSWORD,
    AttrType::CHAP_PASSWORD,
    AttrType::NAS_IP_ADDRESS,
    AttrType::REPLY_MESSAGE,
    AttrType::STATE,
    AttrType::VENDOR_SPECIFIC,
    AttrType::CALLING_STATION_ID,
    AttrType::NAS_IDENTIFIER,
    AttrType::PROXY_STATE,
    AttrType::TUNNEL_CLIENT_ENDPOINT,
    AttrType::EAP_MESSAGE,
    AttrType::NAS_IPV6_ADDRESS,
];

/// A random packet that `encode` accepts: any code (named ones more often), random
/// attributes of known and unknown types, lengths 0 to 253 (short ones more often), and no
/// Message-Authenticator or exactly one, first, last or anywhere between.
fn random_packet(rng: &mut Rng) -> PacketBuf {
    let code = if rng.below(4) == 0 {
        Code(rng.next() as u8)
    } else {
        CODES[rng.below(CODES.len())]
    };
    let mut attributes = Vec::new();
    let mut room = MAX_PACKET - MIN_PACKET - 18;
    for _ in 0..rng.below(24) {
        let typ = match rng.below(8) {
            0 => AttrType(rng.next() as u8),
            _ => TYPES[rng.below(TYPES.len())],
        };
        if typ == AttrType::MESSAGE_AUTHENTICATOR {
            continue;
        }
        let len = match rng.below(16) {
            0 => MAX_ATTR_VALUE,
            1..=3 => rng.below(MAX_ATTR_VALUE + 1),
            _ => rng.below(24),
        };
        if len + 2 > room {
            break;
        }
        room -= len + 2;
        attributes.push(AttrBuf {
            typ,
            value: rng.bytes(len),
        });
    }
    let ma = AttrBuf {
        typ: AttrType::MESSAGE_AUTHENTICATOR,
        value: rng.bytes(16),
    };
    match rng.below(4) {
        0 => {}
        1 => attributes.insert(0, ma),
        2 => attributes.push(ma),
        _ => {
            let at = rng.below(attributes.len() + 1);
            attributes.insert(at, ma);
        }
    }
    PacketBuf {
        code,
        identifier: rng.next() as u8,
        authenticator: rng.array16(),
        attributes,
    }
}

/// The property, for any octets: if they decode, re-encoding gives back the packet's octets
/// exactly and those decode to an equal packet; and nothing panics on the way.
fn check(bytes: &[u8]) -> bool {
    let Ok(p) = Packet::parse(bytes) else {
        return false;
    };
    let owned = p.to_buf();
    let again = owned.encode().expect("a decoded packet re-encodes");
    assert_eq!(again, p.raw(), "encode(decode(b)) is b up to Length");
    let p2 = Packet::parse(&again).expect("an encoded packet decodes");
    assert_eq!(p2, p);
    assert_eq!(p2.to_buf(), owned);
    assert_eq!(PacketBuf::decode(bytes).as_ref(), Ok(&owned));
    true
}

#[test]
fn decode_encode_decode_is_identity() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut decoded, mut refused) = (0usize, 0usize);
    for i in 0..10_000 {
        let m = random_packet(&mut rng);
        let bytes = m.encode().expect("random_packet builds valid packets");
        assert_eq!(PacketBuf::decode(&bytes), Ok(m.clone()), "iteration {i}");
        assert!(check(&bytes));
        // Octets past Length are padding: ignored by decode, absent from encode.
        let mut padded = bytes.clone();
        padded.extend(rng.bytes_below(8));
        assert!(check(&padded));

        // Mutations of it: overwritten octets, a different Length, truncation, extension.
        for _ in 0..2 {
            let mut t = bytes.clone();
            match rng.below(5) {
                0 | 1 => {
                    for _ in 0..=rng.below(4) {
                        let at = rng.below(t.len());
                        t[at] = rng.next() as u8;
                    }
                }
                2 => {
                    // Mostly near the truth, so a shorter Length that still ends on an
                    // attribute boundary decodes as a shorter packet; sometimes anything.
                    let n = match rng.below(4) {
                        0 => rng.next() as u16,
                        _ => rng.below(t.len() + 8) as u16,
                    };
                    t[2..4].copy_from_slice(&n.to_be_bytes());
                }
                3 => t.truncate(rng.below(t.len() + 1)),
                _ => t.extend(rng.bytes_below(300)),
            }
            if check(&t) {
                decoded += 1;
                // A mutant that still parses is what a forger sends: the authenticator checks
                // must not panic on it (their MD5s are the slow part, so one in four).
                if decoded % 4 == 0 {
                    let p = Packet::parse(&t).unwrap();
                    let _ = p.verify_request_message_authenticator(b"secret");
                    let _ = p.verify_reply(b"secret", &[0; 16]);
                }
            } else {
                refused += 1;
            }
        }
        // And bytes with no structure at all.
        let junk = rng.bytes_below(128);
        let _ = check(&junk);
    }
    // Both sides of the parser were exercised.
    assert!(
        decoded > 1000 && refused > 1000,
        "{decoded} decoded, {refused} refused"
    );
}

#[test]
fn signed_packets_survive_the_round_trip() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..500 {
        let secret = rng.bytes_below(32);
        let ra = rng.array16();
        let mut b = Builder::request(Code::ACCESS_REQUEST, rng.next() as u8, true);
        for _ in 0..rng.below(6) {
            let n = rng.below(40);
            b.add(TYPES[rng.below(TYPES.len())], &rng.bytes(n)).unwrap();
        }
        let req = b.encode_request(&secret, &ra).unwrap();
        let again = PacketBuf::decode(&req).unwrap().encode().unwrap();
        assert_eq!(again, req);
        let p = Packet::parse(&again).unwrap();
        assert_eq!(p.verify_request_message_authenticator(&secret), Ok(()));

        let reply = Builder::reply(Code::ACCESS_ACCEPT, &p)
            .encode_reply(&secret, &ra)
            .unwrap();
        let again = PacketBuf::decode(&reply).unwrap().encode().unwrap();
        assert_eq!(again, reply);
        assert_eq!(
            Packet::parse(&again).unwrap().verify_reply(&secret, &ra),
            Ok(())
        );

        // An Accounting-Request and its Accounting-Response (RFC 2866).
        let mut b = Builder::request(Code::ACCOUNTING_REQUEST, rng.next() as u8, true);
        for _ in 0..rng.below(6) {
            let n = rng.below(40);
            b.add(TYPES[rng.below(TYPES.len())], &rng.bytes(n)).unwrap();
        }
        let acct = b.encode_accounting_request(&secret).unwrap();
        let again = PacketBuf::decode(&acct).unwrap().encode().unwrap();
        assert_eq!(again, acct);
        let p = Packet::parse(&again).unwrap();
        assert_eq!(p.verify_accounting_request(&secret), Ok(()));
        let reply = Builder::reply(Code::ACCOUNTING_RESPONSE, &p)
            .encode_accounting_response(&secret, &p.authenticator, AccountingMa::ZeroVector)
            .unwrap();
        let again = PacketBuf::decode(&reply).unwrap().encode().unwrap();
        assert_eq!(again, reply);
        assert_eq!(
            Packet::parse(&again)
                .unwrap()
                .verify_accounting_response(&secret, &p.authenticator),
            Ok(AccountingMa::ZeroVector)
        );
    }
}

#[test]
fn encode_refuses_what_decode_refuses() {
    let ok = PacketBuf {
        code: Code::ACCESS_ACCEPT,
        identifier: 1,
        authenticator: [0; 16],
        attributes: vec![],
    };
    assert_eq!(ok.encode().unwrap().len(), 20);
    let with = |attributes: Vec<AttrBuf>| PacketBuf {
        attributes,
        ..ok.clone()
    };
    let a = |typ, n: usize| AttrBuf {
        typ,
        value: vec![0; n],
    };
    let ma = AttrType::MESSAGE_AUTHENTICATOR;
    assert_eq!(
        with(vec![a(AttrType::STATE, 254)]).encode(),
        Err(EncodeError::AttributeTooLong {
            typ: AttrType::STATE,
            len: 254
        })
    );
    assert_eq!(
        with(vec![a(ma, 15)]).encode(),
        Err(EncodeError::BadMessageAuthenticatorLength { len: 15 })
    );
    assert_eq!(
        with(vec![a(ma, 16), a(ma, 16)]).encode(),
        Err(EncodeError::DuplicateMessageAuthenticator)
    );
    // 16 attributes of 255 octets: 20 + 4080 = 4100 > 4096.
    let big = with(vec![a(AttrType::REPLY_MESSAGE, 253); 16]);
    assert_eq!(big.encode(), Err(EncodeError::PacketTooLong { len: 4100 }));
    let fits = with(vec![a(AttrType::REPLY_MESSAGE, 253); 15]);
    let bytes = fits.encode().unwrap();
    assert_eq!(PacketBuf::decode(&bytes), Ok(fits));
}
