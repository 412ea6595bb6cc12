//! Feeds arbitrary datagrams through everything the daemon does to an untrusted packet before
//! it knows the sender: parse, Message-Authenticator check, password unhiding, reply encoding,
//! what either end of a PAM host's conversation reads (`pam_host`), and accounting: the
//! Request Authenticator check, the report read from it, the Accounting-Response; and every
//! Vendor-Specific attribute through the strict VSA decoder (`vsa::decode`): one that
//! decodes is exactly its sub-attributes laid end to end, and each re-encodes to a value that
//! decodes to the same vendor and sub-attribute.
//! Only the protocol crate is linked: the daemon's runtime, store and PAM are not under test.
//! Run: `cd fuzz && cargo +nightly fuzz run radius_packet`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_radius_proto::{
    AccountingMa, AttrType, Builder, Code, Packet, accounting, pam_host, unhide_password, vsa,
};

fuzz_target!(|data: &[u8]| {
    let secret = b"fuzz-secret";
    let Ok(p) = Packet::parse(data) else {
        return;
    };
    let _ = p.verify_request_message_authenticator(secret);
    let _ = p.verify_reply(secret, &p.authenticator);
    if let Some(pw) = p.attr(AttrType::USER_PASSWORD) {
        let _ = unhide_password(pw, secret, &p.authenticator);
    }
    let _ = p.attrs(AttrType::PROXY_STATE).count();
    for value in p.attrs(AttrType::VENDOR_SPECIFIC) {
        let Ok(v) = vsa::decode(value) else {
            continue;
        };
        assert!(!v.subs.is_empty());
        let mut again = v.vendor.to_be_bytes().to_vec();
        for s in &v.subs {
            again.push(s.typ);
            again.push(s.value.len() as u8 + 2);
            again.extend_from_slice(s.value);
            let one = vsa::encode(v.vendor, s.typ, s.value).expect("a decoded sub-attribute fits");
            let back = vsa::decode(&one).expect("an encoded VSA decodes");
            assert_eq!(back.vendor, v.vendor);
            assert_eq!(back.subs, vec![*s]);
        }
        assert_eq!(again, value, "a decoded VSA is its sub-attributes end to end");
        let _ = vsa::ReplyAttr::of_vendor(v.vendor, v.subs[0].typ);
    }
    let _ = pam_host::read_request(&p);
    let _ = pam_host::read_reply(&p);
    let _ = pam_host::report::is_report(&p);
    let _ = pam_host::report::read_report(&p);
    let _ = pam_host::report::read_report_ack(&p, &[0; 16]);
    let _ = p.verify_accounting_request(secret);
    let _ = p.verify_accounting_response(secret, &p.authenticator);
    let _ = accounting::read_report(&p);
    for form in [AccountingMa::ZeroVector, AccountingMa::Authenticator] {
        if let Ok(out) = Builder::reply(Code::ACCOUNTING_RESPONSE, &p).encode_accounting_response(
            secret,
            &p.authenticator,
            form,
        ) {
            // The form is told apart, but over a request authenticator of zeros the two
            // forms are one.
            let back = Packet::parse(&out).ok();
            assert!(back.is_some_and(|r| {
                match r.verify_accounting_response(secret, &p.authenticator) {
                    Ok(got) => got == form || p.authenticator == [0u8; 16],
                    Err(_) => false,
                }
            }));
        }
    }
    if let Ok(out) = Builder::reply(Code::ACCESS_REJECT, &p).encode_reply(secret, &p.authenticator)
    {
        // Whatever we encode must parse back and verify.
        let back = Packet::parse(&out).ok();
        assert!(back.is_some_and(|r| r.verify_reply(secret, &p.authenticator).is_ok()));
    }
});
