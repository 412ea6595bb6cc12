//! What a phone signs when it decides on a sign-in request, and the check of that
//! signature: the one format the portal's page (WebCrypto) and the core agree on.
//!
//! The message is ASCII text, five lines, each ended by a line feed (`\n`, 0x0A), no other
//! white space:
//!
//! ```text
//! mfa-push-decision-v1
//! request=<the request id: 32 lower-case hex digits>
//! device=<the device id: 32 lower-case hex digits>
//! decision=<approve | deny | fraud>
//! number=<the number typed, in decimal without leading zeros; "-" when none>
//! ```
//!
//! For example (approve with number matching):
//! `mfa-push-decision-v1\nrequest=00112233445566778899aabbccddeeff\ndevice=0f0e0d0c0b0a09080706050403020100\ndecision=approve\nnumber=42\n`.
//! A deny or a fraud report carries `number=-`; so does an approval where the request
//! asks no number. The browser signs the UTF-8 (ASCII) bytes of that text with the device's
//! key: `crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"}, key, bytes)`, ECDSA over P-256
//! with SHA-256, whose result is the IEEE P1363 form `r || s` (64 bytes, each half
//! big-endian, zero-padded to 32 bytes), which is what [`verify`] takes. In JavaScript the
//! number is `String(Number(typed))` after the page checked that `typed` is digits only.
//!
//! The request id binds the user, the service, the address and the number asked for (all
//! kept server-side); the device id names the key; the version line lets a later format
//! live beside this one.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};

use mfa_model::{DeviceId, PushId};

/// The first line of every decision message.
pub const MESSAGE_VERSION: &str = "mfa-push-decision-v1";

/// Bytes of a signature in the IEEE P1363 form (`r || s`) WebCrypto produces.
pub const SIGNATURE_BYTES: usize = 64;

/// What the phone answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushDecision {
    /// "Approve", with the number typed (where the page showed the field).
    Approve { number: Option<u8> },
    /// "Deny".
    Deny,
    /// "This wasn't me": denies, blocks further pushes to the user for `[push]
    /// fraud_block`, and warns the administrator.
    Fraud,
}

impl PushDecision {
    /// The word on the `decision=` line.
    pub fn word(self) -> &'static str {
        match self {
            PushDecision::Approve { .. } => "approve",
            PushDecision::Deny => "deny",
            PushDecision::Fraud => "fraud",
        }
    }
}

/// The exact bytes a phone signs for `decision` on request `request` with device `device`.
pub fn decision_message(request: &PushId, device: &DeviceId, decision: PushDecision) -> Vec<u8> {
    let number = match decision {
        PushDecision::Approve { number: Some(n) } => n.to_string(),
        _ => "-".to_string(),
    };
    format!(
        "{MESSAGE_VERSION}\nrequest={}\ndevice={}\ndecision={}\nnumber={number}\n",
        request.hex(),
        device.hex(),
        decision.word()
    )
    .into_bytes()
}

/// Whether `signature` (P1363 `r || s`) is a valid ECDSA P-256 / SHA-256 signature of
/// `message` under `public_key` (an uncompressed SEC1 point). Anything malformed is `false`.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    if signature.len() != SIGNATURE_BYTES {
        return false;
    }
    let Ok(key) = VerifyingKey::from_sec1_bytes(public_key) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify(message, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::testing::PhoneKey;

    const REQ: PushId = PushId([
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ]);
    const DEV: DeviceId = DeviceId([15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);

    /// The documented example, byte for byte: the browser builds the same text.
    #[test]
    fn the_message_is_the_documented_text() {
        let m = decision_message(&REQ, &DEV, PushDecision::Approve { number: Some(42) });
        assert_eq!(
            m,
            b"mfa-push-decision-v1\nrequest=00112233445566778899aabbccddeeff\ndevice=0f0e0d0c0b0a09080706050403020100\ndecision=approve\nnumber=42\n"
        );
        let m = decision_message(&REQ, &DEV, PushDecision::Fraud);
        assert!(m.ends_with(b"\ndecision=fraud\nnumber=-\n"));
        let m = decision_message(&REQ, &DEV, PushDecision::Approve { number: None });
        assert!(m.ends_with(b"\ndecision=approve\nnumber=-\n"));
        let m = decision_message(&REQ, &DEV, PushDecision::Approve { number: Some(7) });
        assert!(m.ends_with(b"\nnumber=7\n"), "no leading zero");
    }

    /// A signature made by a P-256 key (as WebCrypto makes it: r || s) verifies; the same
    /// signature over any other message, under another key, changed in one bit, or in
    /// another length does not.
    #[test]
    fn signatures_verify_only_for_their_message_and_key() {
        let phone = PhoneKey::generate();
        let other = PhoneKey::generate();
        let approve = decision_message(&REQ, &DEV, PushDecision::Approve { number: Some(42) });
        let sig = phone.sign(&approve);
        assert_eq!(sig.len(), SIGNATURE_BYTES);
        assert!(verify(&phone.public(), &approve, &sig));
        for (what, msg) in [
            (
                "another number",
                decision_message(&REQ, &DEV, PushDecision::Approve { number: Some(43) }),
            ),
            ("a deny", decision_message(&REQ, &DEV, PushDecision::Deny)),
            (
                "another request",
                decision_message(
                    &PushId([1; 16]),
                    &DEV,
                    PushDecision::Approve { number: Some(42) },
                ),
            ),
            (
                "another device",
                decision_message(
                    &REQ,
                    &DeviceId([1; 16]),
                    PushDecision::Approve { number: Some(42) },
                ),
            ),
        ] {
            assert!(!verify(&phone.public(), &msg, &sig), "{what}");
        }
        assert!(!verify(&other.public(), &approve, &sig), "another key");
        let mut flipped = sig.clone();
        flipped[10] ^= 1;
        assert!(!verify(&phone.public(), &approve, &flipped));
        assert!(!verify(&phone.public(), &approve, &sig[..63]));
        assert!(!verify(&phone.public(), &approve, &[0; 64]));
        assert!(!verify(&[4; 65], &approve, &sig), "no point on the curve");
        assert!(!verify(&phone.public()[..33], &approve, &sig));
        // DER, as other ECDSA APIs write it, is not the form WebCrypto sends.
        let der = p256::ecdsa::Signature::from_slice(&sig).unwrap().to_der();
        assert!(!verify(&phone.public(), &approve, der.as_bytes()));
    }
}
