//! Accounting (RFC 2866): the Request Authenticator and Message-Authenticator of an
//! Accounting-Request both ways, against our own encoder and the real radclient, the
//! Accounting-Response radclient accepts, and what a report reads.

use super::*;
use crate::accounting::{AccountingError, AcctStatus, read_report, terminate_cause_name};

const SECRET: &[u8] = b"acct-secret";

fn start(with_ma: bool) -> Builder {
    let mut b = Builder::request(Code::ACCOUNTING_REQUEST, 7, with_ma);
    b.add(AttrType::USER_NAME, b"alice").unwrap();
    b.add(AttrType::ACCT_STATUS_TYPE, &1u32.to_be_bytes())
        .unwrap();
    b.add(AttrType::ACCT_SESSION_ID, b"5f3a-01").unwrap();
    b.add(AttrType::FRAMED_IP_ADDRESS, &[10, 8, 0, 6]).unwrap();
    b
}

#[test]
fn accounting_requests_round_trip_and_prove_the_secret() {
    for with_ma in [true, false] {
        let raw = start(with_ma).encode_accounting_request(SECRET).unwrap();
        // Nothing random: the same packet and secret give the same octets.
        assert_eq!(
            raw,
            start(with_ma).encode_accounting_request(SECRET).unwrap()
        );
        let p = Packet::parse(&raw).unwrap();
        assert_eq!(p.code, Code::ACCOUNTING_REQUEST);
        assert_eq!(
            PacketBuf::decode(&raw).unwrap().encode().unwrap(),
            raw,
            "decode, encode is the identity"
        );
        let want = if with_ma {
            Ok(())
        } else {
            Err(VerifyError::MissingMessageAuthenticator)
        };
        assert_eq!(p.verify_accounting_request(SECRET), want);
        assert_eq!(
            p.verify_accounting_request(b"another secret"),
            Err(VerifyError::BadRequestAuthenticator)
        );
        // Any altered octet breaks the Request Authenticator.
        for at in [1, 3, 4, 19, 20, raw.len() - 1] {
            let mut bad = raw.clone();
            bad[at] ^= 0x40;
            if let Ok(q) = Packet::parse(&bad) {
                assert_eq!(
                    q.verify_accounting_request(SECRET),
                    Err(VerifyError::BadRequestAuthenticator),
                    "octet {at}"
                );
            }
        }
        // An Access-Request's rule does not pass an Accounting-Request, nor the reverse.
        if with_ma {
            assert_eq!(
                p.verify_request_message_authenticator(SECRET),
                Err(VerifyError::BadMessageAuthenticator)
            );
        }
        let access = Builder::request(Code::ACCESS_REQUEST, 7, true)
            .encode_request(SECRET, &[9; 16])
            .unwrap();
        assert_eq!(
            Packet::parse(&access)
                .unwrap()
                .verify_accounting_request(SECRET),
            Err(VerifyError::BadRequestAuthenticator)
        );

        for form in [AccountingMa::ZeroVector, AccountingMa::Authenticator] {
            let reply = Builder::reply(Code::ACCOUNTING_RESPONSE, &p)
                .encode_accounting_response(SECRET, &p.authenticator, form)
                .unwrap();
            let r = Packet::parse(&reply).unwrap();
            assert_eq!(r.code, Code::ACCOUNTING_RESPONSE);
            assert_eq!(r.identifier, 7);
            assert_eq!(
                r.attributes().first().map(|a| a.typ),
                Some(AttrType::MESSAGE_AUTHENTICATOR)
            );
            assert_eq!(
                r.verify_accounting_response(SECRET, &p.authenticator),
                Ok(form)
            );
            assert_eq!(
                r.verify_accounting_response(b"another secret", &p.authenticator),
                Err(VerifyError::BadResponseAuthenticator)
            );
            assert_eq!(
                r.verify_accounting_response(SECRET, &[0; 16]),
                Err(VerifyError::BadResponseAuthenticator)
            );
        }
        // The Authenticator form is what encode_reply signs for any reply.
        let access_way = Builder::reply(Code::ACCOUNTING_RESPONSE, &p)
            .encode_reply(SECRET, &p.authenticator)
            .unwrap();
        assert_eq!(
            Packet::parse(&access_way)
                .unwrap()
                .verify_accounting_response(SECRET, &p.authenticator),
            Ok(AccountingMa::Authenticator)
        );
        let bare = Builder::reply(Code::ACCOUNTING_RESPONSE, &p)
            .without_message_authenticator()
            .encode_accounting_response(SECRET, &p.authenticator, AccountingMa::ZeroVector)
            .unwrap();
        let b = Packet::parse(&bare).unwrap();
        assert!(!b.has_message_authenticator());
        assert_eq!(
            b.verify_accounting_response(SECRET, &p.authenticator),
            Err(VerifyError::MissingMessageAuthenticator)
        );
    }
}

/// A Message-Authenticator that is right but signed over the Request Authenticator (the
/// Access-Request way) is refused in an Accounting-Request: the accounting rule is the zero
/// vector (the Request Authenticator depends on the attribute, so nothing can sign over it).
#[test]
fn the_message_authenticator_of_an_accounting_request_is_over_the_zero_vector() {
    let raw = start(true).encode_accounting_request(SECRET).unwrap();
    let p = Packet::parse(&raw).unwrap();
    assert_eq!(p.verify_accounting_request(SECRET), Ok(()));
    let ma_at = 22; // Message-Authenticator is the first attribute
    let mut other = raw.clone();
    other[ma_at..ma_at + 16].fill(0);
    let wrong_way = message_authenticator(&other, SECRET).unwrap();
    other[ma_at..ma_at + 16].copy_from_slice(&wrong_way);
    let q = Packet::parse(&other).unwrap();
    assert!(matches!(
        q.verify_accounting_request(SECRET),
        Err(VerifyError::BadRequestAuthenticator | VerifyError::BadMessageAuthenticator)
    ));
    // With the Request Authenticator made for that packet, still refused: the attribute is
    // then over an authenticator that is not the packet's.
    let mut zeroed = other.clone();
    zeroed[4..20].fill(0);
    other[4..20].copy_from_slice(&response_authenticator(&zeroed, SECRET));
    assert_eq!(
        Packet::parse(&other)
            .unwrap()
            .verify_accounting_request(SECRET),
        Err(VerifyError::BadMessageAuthenticator)
    );
}

#[test]
fn radclient_accounting_verifies_and_our_accounting_response_is_accepted() {
    let attrs = "User-Name = \"alice\"\nAcct-Status-Type = Stop\nAcct-Session-Id = \"05F3A1\"\nFramed-IP-Address = 10.8.0.6\nAcct-Session-Time = 3725\nAcct-Input-Octets = 4096\nAcct-Input-Gigawords = 1\nAcct-Output-Octets = 2048\nAcct-Terminate-Cause = User-Request\nProxy-State = 0x0102\nMessage-Authenticator = 0x00\n";
    let (captured, out) = radclient_exchange_cmd("acct", attrs, "testing123", |p| {
        Builder::reply(Code::ACCOUNTING_RESPONSE, p)
            .encode_accounting_response(b"testing123", &p.authenticator, AccountingMa::ZeroVector)
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Received Accounting-Response"),
        "radclient: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = Packet::parse(&captured).unwrap();
    assert_eq!(p.code, Code::ACCOUNTING_REQUEST);
    assert!(p.has_message_authenticator());
    assert_eq!(p.verify_accounting_request(b"testing123"), Ok(()));
    assert_eq!(
        p.verify_accounting_request(b"testing124"),
        Err(VerifyError::BadRequestAuthenticator)
    );
    let r = read_report(&p).unwrap();
    assert_eq!(r.status, AcctStatus::Stop);
    assert_eq!(r.user_name, Some(&b"alice"[..]));
    assert_eq!(r.session_id, Some(&b"05F3A1"[..]));
    assert_eq!(r.framed_ip, Some([10, 8, 0, 6].into()));
    assert_eq!(r.session_time, Some(3725));
    assert_eq!(r.input_octets, Some((1 << 32) + 4096));
    assert_eq!(r.output_octets, Some(2048));
    assert_eq!(
        r.terminate_cause.and_then(terminate_cause_name),
        Some("User-Request")
    );

    // Without Message-Authenticator (what Debian's OpenVPN plugin and ocserv send), the
    // Request Authenticator still proves the secret, and radclient takes an answer without
    // one.
    let (captured, out) = radclient_exchange_cmd(
        "acct",
        "User-Name = \"bob\"\nAcct-Status-Type = Start\n",
        "testing123",
        |p| {
            Builder::reply(Code::ACCOUNTING_RESPONSE, p)
                .without_message_authenticator()
                .encode_accounting_response(
                    b"testing123",
                    &p.authenticator,
                    AccountingMa::ZeroVector,
                )
                .unwrap()
        },
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Received Accounting-Response"),
        "{stdout}"
    );
    let p = Packet::parse(&captured).unwrap();
    assert_eq!(
        p.verify_accounting_request(b"testing123"),
        Err(VerifyError::MissingMessageAuthenticator)
    );
    assert_eq!(read_report(&p).unwrap().status, AcctStatus::Start);

    // The other form of a response's Message-Authenticator (radsecproxy's, over the Request
    // Authenticator) is refused by radclient: why the daemon answers in the zero-vector form.
    let (_, out) = radclient_exchange_cmd(
        "acct",
        "User-Name = \"bob\"\nAcct-Status-Type = Start\nMessage-Authenticator = 0x00\n",
        "testing123",
        |p| {
            Builder::reply(Code::ACCOUNTING_RESPONSE, p)
                .encode_accounting_response(
                    b"testing123",
                    &p.authenticator,
                    AccountingMa::Authenticator,
                )
                .unwrap()
        },
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("Received Accounting-Response"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn reports_read_what_they_carry_and_refuse_what_is_malformed() {
    let raw = start(false).encode_accounting_request(SECRET).unwrap();
    let r = read_report(&Packet::parse(&raw).unwrap()).unwrap();
    assert_eq!(r.status, AcctStatus::Start);
    assert_eq!(r.session_id, Some(&b"5f3a-01"[..]));
    assert_eq!(
        (r.session_time, r.input_octets, r.terminate_cause),
        (None, None, None)
    );

    let report = |attrs: &[(AttrType, &[u8])], code: Code| {
        let mut b = Builder::request(code, 1, true);
        for (t, v) in attrs {
            b.add(*t, v).unwrap();
        }
        let raw = b.encode_accounting_request(SECRET).unwrap();
        read_report(&Packet::parse(&raw).unwrap()).map(|r| r.status)
    };
    let one = 1u32.to_be_bytes();
    let on = 7u32.to_be_bytes();
    let failed = 15u32.to_be_bytes();
    let acct = Code::ACCOUNTING_REQUEST;
    assert_eq!(report(&[], acct), Err(AccountingError::MissingStatusType));
    assert_eq!(
        report(&[(AttrType::ACCT_STATUS_TYPE, &on)], acct),
        Ok(AcctStatus::AccountingOn)
    );
    assert_eq!(
        report(&[(AttrType::ACCT_STATUS_TYPE, &failed)], acct),
        Ok(AcctStatus::Other(15))
    );
    assert_eq!(
        report(
            &[
                (AttrType::ACCT_STATUS_TYPE, &one),
                (AttrType::ACCT_STATUS_TYPE, &one)
            ],
            acct
        ),
        Err(AccountingError::Repeated(AttrType::ACCT_STATUS_TYPE))
    );
    assert_eq!(
        report(
            &[
                (AttrType::ACCT_STATUS_TYPE, &one),
                (AttrType::USER_NAME, b"a"),
                (AttrType::USER_NAME, b"b")
            ],
            acct
        ),
        Err(AccountingError::Repeated(AttrType::USER_NAME))
    );
    assert_eq!(
        report(&[(AttrType::ACCT_STATUS_TYPE, &[0, 1])], acct),
        Err(AccountingError::BadLength {
            typ: AttrType::ACCT_STATUS_TYPE,
            len: 2
        })
    );
    let e = report(
        &[
            (AttrType::ACCT_STATUS_TYPE, &one),
            (AttrType::FRAMED_IP_ADDRESS, &[10, 0, 0]),
        ],
        acct,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "Framed-IP-Address (8) of 3 octets, not 4");
    assert_eq!(
        report(&[(AttrType::ACCT_STATUS_TYPE, &one)], Code::ACCESS_REQUEST),
        Err(AccountingError::NotAccounting(Code::ACCESS_REQUEST))
    );
    assert_eq!(AcctStatus::InterimUpdate.to_string(), "Interim-Update (3)");
    assert_eq!(AcctStatus::from_value(2).value(), 2);
    assert_eq!(terminate_cause_name(99), None);
    assert_eq!(AttrType::ACCT_SESSION_ID.name(), "Acct-Session-Id");
}
