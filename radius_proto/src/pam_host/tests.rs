#![allow(clippy::unwrap_used)]

use super::*;
use crate::unhide_password;

const SECRET: &[u8] = b"pam-host-secret";

fn request<'a>(name_known: bool, state: Option<&'a [u8]>, password: &'a [u8]) -> HostRequest<'a> {
    HostRequest {
        identifier: 7,
        authenticator: [9; 16],
        user: "alice",
        password,
        rhost: Some("192.0.2.7".parse().unwrap()),
        host: "web1",
        service: "ss/hd x",
        state,
        name_known,
        push_capable: false,
        push_request: false,
    }
}

/// A vendor attribute of `vendor` holding the given sub-attributes as they are (lengths
/// included), for the malformed cases.
fn vsa(vendor: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vendor.to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn reply(code: Code, build: impl FnOnce(&mut Builder)) -> Vec<u8> {
    let req = request(true, None, b"").encode(SECRET).unwrap();
    let req = Packet::parse(&req).unwrap();
    let mut b = Builder::reply(code, &req);
    build(&mut b);
    b.encode_reply(SECRET, &req.authenticator).unwrap()
}

fn read(raw: &[u8]) -> Result<HostReply, ReplyError> {
    read_reply(&Packet::parse(raw).unwrap())
}

#[test]
fn a_host_request_carries_every_attribute_and_reads_back() {
    for known in [true, false] {
        let raw = request(known, Some(b"st"), b"123456")
            .encode(SECRET)
            .unwrap();
        let p = Packet::parse(&raw).unwrap();
        assert_eq!(p.code, Code::ACCESS_REQUEST);
        assert_eq!(p.identifier, 7);
        p.verify_request_message_authenticator(SECRET).unwrap();
        assert_eq!(p.attr(AttrType::USER_NAME), Some(&b"alice"[..]));
        let pw = unhide_password(
            p.attr(AttrType::USER_PASSWORD).unwrap(),
            SECRET,
            &p.authenticator,
        )
        .unwrap();
        assert_eq!(&pw[..], b"123456");
        assert_eq!(
            p.attr(AttrType::CALLING_STATION_ID),
            Some(&b"192.0.2.7"[..])
        );
        assert_eq!(p.attr(AttrType::STATE), Some(&b"st"[..]));
        // The host makes its text printable; the daemon also refuses `/`.
        assert_eq!(p.attr(AttrType::CALLED_STATION_ID), Some(&b"ss/hd_x"[..]));
        assert_eq!(
            read_request(&p),
            HostClaims {
                host: Some("web1".into()),
                service: Some("ss_hd_x".into()),
                name_known: Some(known),
                push_capable: false,
                push_request: false,
            }
        );
    }
    // No PAM_RHOST, no State: neither attribute.
    let mut r = request(true, None, b"");
    r.rhost = None;
    let raw = r.encode(SECRET).unwrap();
    let p = Packet::parse(&raw).unwrap();
    assert_eq!(p.count(AttrType::CALLING_STATION_ID), 0);
    assert_eq!(p.count(AttrType::STATE), 0);
    // A password longer than User-Password holds is an error, not a truncation.
    assert!(matches!(
        request(true, None, &[b'1'; 129]).encode(SECRET),
        Err(RequestError::Password(_))
    ));
}

/// A request without Name-Known (a host of an older release), or with one that cannot be
/// read, vouches for nothing.
#[test]
fn name_known_is_read_strictly() {
    let with = |vsas: &[Vec<u8>]| {
        let mut b = Builder::request(Code::ACCESS_REQUEST, 1, true);
        b.add(AttrType::USER_NAME, b"bob").unwrap();
        b.add(AttrType::NAS_IDENTIFIER, b"").unwrap();
        for v in vsas {
            b.add(AttrType::VENDOR_SPECIFIC, v).unwrap();
        }
        let raw = b.encode_request(SECRET, &[1; 16]).unwrap();
        read_request(&Packet::parse(&raw).unwrap())
    };
    let yes = vsa(VENDOR_ID, &[NAME_KNOWN, 6, 0, 0, 0, 1]);
    let no = vsa(VENDOR_ID, &[NAME_KNOWN, 6, 0, 0, 0, 0]);
    assert_eq!(with(std::slice::from_ref(&yes)).name_known, Some(true));
    assert_eq!(with(std::slice::from_ref(&no)).name_known, Some(false));
    let bare = with(&[]);
    assert_eq!(bare.name_known, None);
    assert_eq!(bare.host, None, "empty is absent");
    assert_eq!(bare.service, None);
    for bad in [
        vec![yes.clone(), yes.clone()],
        vec![yes.clone(), no.clone()],
        vec![vsa(VENDOR_ID, &[NAME_KNOWN, 6, 0, 0, 0, 2])],
        vec![vsa(VENDOR_ID, &[NAME_KNOWN, 3, 1])],
        vec![vsa(VENDOR_ID, &[NAME_KNOWN, 7, 0, 0, 0, 1])],
        vec![vsa(VENDOR_ID, &[NAME_KNOWN, 6, 0, 0, 0, 1, 9])],
        vec![vsa(VENDOR_ID, &[])],
        // Another vendor's attribute of the same number says nothing.
        vec![vsa(VENDOR_ID + 1, &[NAME_KNOWN, 6, 0, 0, 0, 1])],
    ] {
        assert_eq!(with(&bad).name_known, None, "{bad:?}");
    }
    // Other vendors' attributes beside it are left alone.
    assert_eq!(with(&[vsa(311, &[1, 3, 0]), yes]).name_known, Some(true));
}

#[test]
fn a_reject_carries_its_reason_and_a_lock_its_end() {
    let raw = reply(Code::ACCESS_REJECT, |b| {
        b.add(AttrType::REPLY_MESSAGE, b"Locked\x1b[2J until\nnoon")
            .unwrap();
        add_reject_reason(b, "locked", Some(1_800_000_000)).unwrap();
    });
    assert_eq!(
        read(&raw).unwrap(),
        HostReply::Reject {
            message: Some("Locked[2J until\nnoon".into()),
            reason: Some(RejectReason {
                code: "locked".into(),
                locked_until: Some(1_800_000_000),
            }),
        }
    );
    let raw = reply(Code::ACCESS_REJECT, |b| {
        add_reject_reason(b, "wrong_code", None).unwrap();
    });
    assert_eq!(
        read(&raw).unwrap(),
        HostReply::Reject {
            message: None,
            reason: Some(RejectReason {
                code: "wrong_code".into(),
                locked_until: None,
            }),
        }
    );
    // A server of an older release says no reason.
    let raw = reply(Code::ACCESS_REJECT, |_| {});
    assert_eq!(
        read(&raw).unwrap(),
        HostReply::Reject {
            message: None,
            reason: None
        }
    );
    // Times outside 32 bits are clamped, not wrapped.
    for (t, want) in [(-5, 0), (i64::MAX, i64::from(u32::MAX))] {
        let raw = reply(Code::ACCESS_REJECT, |b| {
            add_reject_reason(b, "source_locked", Some(t)).unwrap();
        });
        let Ok(HostReply::Reject {
            reason: Some(r), ..
        }) = read(&raw)
        else {
            panic!("{t}");
        };
        assert_eq!(r.locked_until, Some(want));
    }
}

#[test]
fn accept_and_challenge() {
    let raw = reply(Code::ACCESS_ACCEPT, |b| {
        b.add(AttrType::REPLY_MESSAGE, b"Welcome").unwrap();
    });
    assert_eq!(
        read(&raw).unwrap(),
        HostReply::Accept {
            message: Some("Welcome".into())
        }
    );
    let raw = reply(Code::ACCESS_CHALLENGE, |b| {
        b.add(AttrType::STATE, b"s1").unwrap();
        b.add_split(AttrType::REPLY_MESSAGE, &[b'x'; 2000]).unwrap();
    });
    let Ok(HostReply::Challenge {
        message,
        state,
        push: None,
    }) = read(&raw)
    else {
        panic!()
    };
    assert_eq!(state, b"s1");
    assert_eq!(message.unwrap().len(), MAX_MESSAGE);
    let raw = reply(Code::ACCESS_CHALLENGE, |_| {});
    assert_eq!(read(&raw), Err(ReplyError::ChallengeWithoutState));
    let raw = reply(Code::ACCOUNTING_RESPONSE, |_| {});
    assert_eq!(
        read(&raw),
        Err(ReplyError::UnexpectedCode(Code::ACCOUNTING_RESPONSE))
    );
}

/// Whatever of this vendor the host does not fully understand refuses the reply (the host
/// fails closed); other vendors' attributes do not.
#[test]
fn a_reply_the_host_does_not_understand_is_refused() {
    let with = |code: Code, vsas: &[Vec<u8>]| {
        let raw = reply(code, |b| {
            b.add(AttrType::STATE, b"s").unwrap();
            for v in vsas {
                b.add(AttrType::VENDOR_SPECIFIC, v).unwrap();
            }
        });
        read(&raw)
    };
    let reason = |r: &[u8]| {
        let mut body = vec![REJECT_REASON, u8::try_from(r.len() + 2).unwrap()];
        body.extend_from_slice(r);
        vsa(VENDOR_ID, &body)
    };
    let until = vsa(VENDOR_ID, &[LOCKED_UNTIL, 6, 0, 0, 0, 9]);
    let reject = Code::ACCESS_REJECT;
    for (code, vsas, want) in [
        (
            Code::ACCESS_ACCEPT,
            vec![reason(b"locked")],
            ReplyError::Misplaced {
                typ: REJECT_REASON,
                code: Code::ACCESS_ACCEPT,
            },
        ),
        (
            Code::ACCESS_CHALLENGE,
            vec![until.clone()],
            ReplyError::Misplaced {
                typ: LOCKED_UNTIL,
                code: Code::ACCESS_CHALLENGE,
            },
        ),
        (
            reject,
            vec![until.clone()],
            ReplyError::Misplaced {
                typ: LOCKED_UNTIL,
                code: reject,
            },
        ),
        (
            reject,
            vec![vsa(VENDOR_ID, &[NAME_KNOWN, 6, 0, 0, 0, 1])],
            ReplyError::Misplaced {
                typ: NAME_KNOWN,
                code: reject,
            },
        ),
        (
            reject,
            vec![vsa(VENDOR_ID, &[99, 3, 0])],
            ReplyError::UnknownVendorType(99),
        ),
        (
            reject,
            vec![reason(b"locked"), reason(b"locked")],
            ReplyError::RepeatedVendorType(REJECT_REASON),
        ),
        (
            reject,
            vec![reason(b"")],
            ReplyError::BadValue(REJECT_REASON),
        ),
        (
            reject,
            vec![reason(b"Locked")],
            ReplyError::BadValue(REJECT_REASON),
        ),
        (
            reject,
            vec![reason(&[b'a'; MAX_REASON + 1])],
            ReplyError::BadValue(REJECT_REASON),
        ),
        (
            reject,
            vec![reason(b"locked"), vsa(VENDOR_ID, &[LOCKED_UNTIL, 4, 0, 9])],
            ReplyError::BadValue(LOCKED_UNTIL),
        ),
        (
            reject,
            vec![vsa(VENDOR_ID, &[REJECT_REASON, 9, b'x'])],
            ReplyError::MalformedVendorAttribute,
        ),
        (
            reject,
            vec![vsa(VENDOR_ID, &[REJECT_REASON, 1])],
            ReplyError::MalformedVendorAttribute,
        ),
        (
            reject,
            vec![vsa(VENDOR_ID, &[])],
            ReplyError::MalformedVendorAttribute,
        ),
    ] {
        assert_eq!(with(code, &vsas), Err(want.clone()), "{vsas:?}");
        assert!(!want.to_string().is_empty());
    }
    // Two sub-attributes in one Vendor-Specific are read like two attributes.
    let both = vsa(
        VENDOR_ID,
        &[
            REJECT_REASON,
            8,
            b'l',
            b'o',
            b'c',
            b'k',
            b'e',
            b'd',
            LOCKED_UNTIL,
            6,
            0,
            0,
            0,
            9,
        ],
    );
    assert_eq!(
        with(reject, &[both]),
        Ok(HostReply::Reject {
            message: None,
            reason: Some(RejectReason {
                code: "locked".into(),
                locked_until: Some(9)
            })
        })
    );
    // Another vendor's attributes, and one too short to name a vendor, are not ours.
    assert!(matches!(
        with(reject, &[vsa(311, &[99, 3, 0]), vec![0, 0, 1]]),
        Ok(HostReply::Reject { reason: None, .. })
    ));
}

/// Issue 20: a host says it can wait for a push and asks for one; the server's challenge
/// offers a push, or says one is waiting (the number, the seconds left). Each is read back
/// exactly, and a request attribute is read strictly: only exactly one `1` counts.
#[test]
fn push_attributes_travel_both_ways() {
    let mut r = request(true, Some(b"st"), b"");
    r.push_capable = true;
    r.push_request = true;
    let raw = r.encode(SECRET).unwrap();
    let claims = read_request(&Packet::parse(&raw).unwrap());
    assert!(claims.push_capable && claims.push_request, "{claims:?}");
    assert_eq!(claims.name_known, Some(true));
    let mut r = request(true, None, b"");
    r.push_capable = true;
    let raw = r.encode(SECRET).unwrap();
    let claims = read_request(&Packet::parse(&raw).unwrap());
    assert!(claims.push_capable && !claims.push_request, "{claims:?}");

    // Read strictly: another value, a repeat or a short one is no claim.
    for body in [
        vec![PUSH_CAPABLE, 6, 0, 0, 0, 2],
        vec![PUSH_CAPABLE, 5, 0, 0, 1],
        vec![PUSH_CAPABLE, 6, 0, 0, 0, 1, PUSH_CAPABLE, 6, 0, 0, 0, 1],
    ] {
        let mut b = Builder::request(Code::ACCESS_REQUEST, 1, true);
        b.add(AttrType::USER_NAME, b"alice").unwrap();
        b.add(AttrType::VENDOR_SPECIFIC, &vsa(VENDOR_ID, &body))
            .unwrap();
        let raw = b.encode_request(SECRET, &[1; 16]).unwrap();
        assert!(
            !read_request(&Packet::parse(&raw).unwrap()).push_capable,
            "{body:?}"
        );
    }

    let raw = reply(Code::ACCESS_CHALLENGE, |b| {
        b.add(AttrType::STATE, b"s1").unwrap();
        add_push_offered(b).unwrap();
    });
    assert_eq!(
        read(&raw).unwrap(),
        HostReply::Challenge {
            message: None,
            state: b"s1".to_vec(),
            push: Some(ChallengePush::Offered),
        }
    );
    for (number, timeout, want) in [
        (Some(42), 60, 60),
        (None, 5, 5),
        (Some(10), 0, 1),
        (Some(99), 100_000, MAX_PUSH_TIMEOUT),
    ] {
        let raw = reply(Code::ACCESS_CHALLENGE, |b| {
            b.add(AttrType::STATE, b"s2").unwrap();
            b.add(AttrType::REPLY_MESSAGE, b"Enter 42").unwrap();
            add_push_waiting(b, number, timeout).unwrap();
        });
        assert_eq!(
            read(&raw).unwrap(),
            HostReply::Challenge {
                message: Some("Enter 42".into()),
                state: b"s2".to_vec(),
                push: Some(ChallengePush::Waiting {
                    number,
                    timeout_secs: want
                }),
            }
        );
    }
}

/// A push attribute the host cannot act on refuses the reply: outside a challenge, a
/// request's attribute in a reply, a number without a push waiting, offered and waiting at
/// once, a number out of 10..=99, a timeout of 0 or past the longest, a bad length.
#[test]
fn push_attributes_the_host_does_not_understand_are_refused() {
    let with = |code: Code, vsas: &[&[u8]]| {
        let raw = reply(code, |b| {
            b.add(AttrType::STATE, b"s").unwrap();
            for v in vsas {
                b.add(AttrType::VENDOR_SPECIFIC, &vsa(VENDOR_ID, v))
                    .unwrap();
            }
        });
        read(&raw)
    };
    let chal = Code::ACCESS_CHALLENGE;
    let offered: &[u8] = &[PUSH_OFFERED, 6, 0, 0, 0, 1];
    let number: &[u8] = &[PUSH_NUMBER, 6, 0, 0, 0, 42];
    let timeout: &[u8] = &[PUSH_TIMEOUT, 6, 0, 0, 0, 60];
    let misplaced = |typ, code| ReplyError::Misplaced { typ, code };
    for (code, vsas, want) in [
        (
            Code::ACCESS_ACCEPT,
            vec![offered],
            misplaced(PUSH_OFFERED, Code::ACCESS_ACCEPT),
        ),
        (
            Code::ACCESS_REJECT,
            vec![timeout],
            misplaced(PUSH_TIMEOUT, Code::ACCESS_REJECT),
        ),
        (
            Code::ACCESS_ACCEPT,
            vec![number],
            misplaced(PUSH_NUMBER, Code::ACCESS_ACCEPT),
        ),
        (
            chal,
            vec![&[PUSH_CAPABLE, 6, 0, 0, 0, 1]],
            misplaced(PUSH_CAPABLE, chal),
        ),
        (
            chal,
            vec![&[PUSH_REQUEST, 6, 0, 0, 0, 1]],
            misplaced(PUSH_REQUEST, chal),
        ),
        (chal, vec![number], misplaced(PUSH_NUMBER, chal)),
        (chal, vec![offered, timeout], misplaced(PUSH_OFFERED, chal)),
        (
            chal,
            vec![offered, offered],
            ReplyError::RepeatedVendorType(PUSH_OFFERED),
        ),
        (
            chal,
            vec![&[PUSH_OFFERED, 6, 0, 0, 0, 2]],
            ReplyError::BadValue(PUSH_OFFERED),
        ),
        (
            chal,
            vec![&[PUSH_NUMBER, 6, 0, 0, 0, 9], timeout],
            ReplyError::BadValue(PUSH_NUMBER),
        ),
        (
            chal,
            vec![&[PUSH_NUMBER, 6, 0, 0, 1, 42], timeout],
            ReplyError::BadValue(PUSH_NUMBER),
        ),
        (
            chal,
            vec![number, &[PUSH_TIMEOUT, 6, 0, 0, 0, 0]],
            ReplyError::BadValue(PUSH_TIMEOUT),
        ),
        (
            chal,
            vec![&[PUSH_TIMEOUT, 6, 0, 0, 0x0e, 0x11]],
            ReplyError::BadValue(PUSH_TIMEOUT),
        ),
        (
            chal,
            vec![&[PUSH_TIMEOUT, 5, 0, 0, 60]],
            ReplyError::BadValue(PUSH_TIMEOUT),
        ),
    ] {
        assert_eq!(with(code, &vsas), Err(want.clone()), "{vsas:?}");
    }
}

#[test]
fn labels_are_printable_and_bounded() {
    assert_eq!(label("sshd"), "sshd");
    assert_eq!(label(""), "-");
    assert_eq!(label("a b\u{7}"), "a_b_");
    assert_eq!(label("wéb"), "w_b");
    assert_eq!(label(&"x".repeat(300)).len(), MAX_LABEL);
}

/// Random octets in place of a reply's and a request's attributes never panic either
/// reader (the fuzz target `radius_packet` does the same without bounds).
#[test]
fn hostile_vendor_attributes_never_panic() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let mut body = VENDOR_ID.to_be_bytes().to_vec();
        let n = usize::try_from(next() % 24).unwrap();
        body.extend((0..n).map(|_| (next() % 8) as u8));
        for code in [
            Code::ACCESS_REJECT,
            Code::ACCESS_ACCEPT,
            Code::ACCESS_REQUEST,
        ] {
            let mut b = Builder::request(code, 1, true);
            b.add(AttrType::VENDOR_SPECIFIC, &body).unwrap();
            let raw = b.encode_request(SECRET, &[0; 16]).unwrap();
            let p = Packet::parse(&raw).unwrap();
            let _ = read_reply(&p);
            let _ = read_request(&p);
        }
    }
}
