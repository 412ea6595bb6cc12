//! A phone's approval key made in a test (what WebCrypto makes on the phone), and the
//! subscription JSON a browser hands over: for the core's tests, the engines' conformance
//! runs and the end-to-end tests. Never used by a front end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};

/// A device's key pair, as a phone holds it.
#[derive(Clone)]
pub struct PhoneKey(SigningKey);

impl std::fmt::Debug for PhoneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhoneKey(..)")
    }
}

impl PhoneKey {
    pub fn generate() -> Self {
        loop {
            let mut b = [0u8; 32];
            getrandom::fill(&mut b).unwrap();
            if let Ok(k) = SigningKey::from_slice(&b) {
                return Self(k);
            }
        }
    }

    /// The public key as the phone sends it at registration: the uncompressed point.
    pub fn public(&self) -> Vec<u8> {
        self.0
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// The public key as SPKI DER (WebCrypto's `exportKey("spki")`).
    pub fn public_spki(&self) -> Vec<u8> {
        use p256::pkcs8::EncodePublicKey;
        self.0
            .verifying_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    /// `message` signed as WebCrypto signs it: ECDSA P-256, SHA-256, `r || s`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig: Signature = self.0.sign(message);
        sig.to_bytes().to_vec()
    }
}

/// A browser's `PushSubscription.toJSON()` for `endpoint`, with a fresh `p256dh` key and
/// `auth` secret.
pub fn subscription_json(endpoint: &str) -> String {
    let ua = PhoneKey::generate();
    let mut auth = [0u8; 16];
    getrandom::fill(&mut auth).unwrap();
    let b64 = data_encoding::BASE64URL_NOPAD;
    format!(
        r#"{{"endpoint":"{endpoint}","expirationTime":null,"keys":{{"p256dh":"{}","auth":"{}"}}}}"#,
        b64.encode(&ua.public()),
        b64.encode(&auth)
    )
}
