//! The VAPID key (RFC 8292): the P-256 key pair the portal signs its pushes with, so the
//! push services deliver only what this server sends to the subscriptions made with its
//! public key. Kept in `[push] vapid_key_file` as PEM (PKCS#8, `-----BEGIN PRIVATE KEY-----`;
//! a SEC1 `EC PRIVATE KEY` file made with `openssl ecparam -name prime256v1 -genkey` is
//! read too), with the store key's care: never through a symlink, a regular file, mode 0600,
//! owned by root or the user running this; created new (`O_EXCL`), synced. `mfactl init`
//! makes it where `[push] enabled`. Every portal node needs the same file: a phone's
//! subscription is bound to the public key it was made with.

use std::fmt;
use std::path::Path;

use data_encoding::BASE64URL_NOPAD;
use p256::SecretKey;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use zeroize::Zeroizing;

use crate::keyfile::{self, KeyError};

/// The largest VAPID key file read (a PEM key is about 250 bytes).
const MAX_PEM: usize = 4096;

/// The VAPID key pair. `Debug` shows the public key only.
#[derive(Clone)]
pub struct VapidKey(SecretKey);

impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VapidKey({})", self.public_key_base64url())
    }
}

impl VapidKey {
    /// A new key from the system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        loop {
            let mut b = Zeroizing::new([0u8; 32]);
            getrandom::fill(b.as_mut_slice())?;
            // Zero or at least the group order (2^-32 of all values): draw again.
            if let Ok(k) = SecretKey::from_slice(b.as_slice()) {
                return Ok(Self(k));
            }
        }
    }

    /// The key in the file at `path`; [`KeyError::NoVapidKey`] when there is none.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let bytes = keyfile::read_private(path, MAX_PEM)?.ok_or_else(|| KeyError::NoVapidKey {
            path: path.to_path_buf(),
        })?;
        let bad = |problem: &str| KeyError::Bad {
            path: path.to_path_buf(),
            problem: problem.to_string(),
        };
        if bytes.len() > MAX_PEM {
            return Err(bad("is larger than a PEM key (4 KiB)"));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("is not a PEM file"))?;
        SecretKey::from_pkcs8_pem(text)
            .or_else(|_| SecretKey::from_sec1_pem(text))
            .map(Self)
            .map_err(|_| {
                bad("holds no P-256 private key in PEM (PKCS#8 or SEC1): make one with `mfactl init`")
            })
    }

    /// Writes a new key to `path` (0600, `O_EXCL`, synced) where no file is there yet.
    /// Returns the key in the file and whether it was made now; an existing file is read
    /// and kept, so a bad one is reported, not replaced.
    pub fn create(path: &Path) -> Result<(Self, bool), KeyError> {
        if keyfile::read_private(path, MAX_PEM)?.is_some() {
            return Ok((Self::read(path)?, false));
        }
        let key = Self::generate().map_err(|e| KeyError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(format!("no random numbers from the system: {e}")),
        })?;
        let pem = key.to_pem().map_err(|e| KeyError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        if keyfile::write_private_new(path, pem.as_bytes())? {
            Ok((key, true))
        } else {
            // Made by another process meanwhile: that one is the key.
            Ok((Self::read(path)?, false))
        }
    }

    /// The file's content: PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<Zeroizing<String>, String> {
        self.0
            .to_pkcs8_pem(LineEnding::LF)
            .map(|p| Zeroizing::new(p.to_string()))
            .map_err(|e| format!("cannot encode the VAPID key: {e}"))
    }

    /// The private scalar (32 bytes, big-endian): what `jwt_simple`'s
    /// `ES256KeyPair::from_bytes` (web-push-native's VAPID signer) takes.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.0.to_bytes()[..]);
        out
    }

    /// The key itself, for a caller on the same `p256` version (web-push-native re-exports
    /// it).
    pub fn secret_key(&self) -> &SecretKey {
        &self.0
    }

    /// The public key, an uncompressed point (65 bytes).
    pub fn public_key(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out.copy_from_slice(self.0.public_key().to_encoded_point(false).as_bytes());
        out
    }

    /// The public key in base64url without padding: the page's `applicationServerKey` for
    /// `pushManager.subscribe` and the `k=` of the VAPID `Authorization` header.
    pub fn public_key_base64url(&self) -> String {
        BASE64URL_NOPAD.encode(&self.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn made_0600_read_back_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vapid.key");
        assert!(matches!(
            VapidKey::read(&p),
            Err(KeyError::NoVapidKey { .. })
        ));
        let (k, made) = VapidKey::create(&p).unwrap();
        assert!(made);
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
        let back = VapidKey::read(&p).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        assert_eq!(*back.secret_bytes(), *k.secret_bytes());
        assert_eq!(k.public_key()[0], 4);
        assert_eq!(k.public_key_base64url().len(), 87);
        // Kept, not replaced.
        let (again, made) = VapidKey::create(&p).unwrap();
        assert!(!made);
        assert_eq!(again.public_key(), k.public_key());
        assert!(!format!("{k:?}").contains(&BASE64URL_NOPAD.encode(k.secret_bytes().as_slice())));
    }

    #[test]
    fn unsafe_or_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vapid.key");
        VapidKey::create(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = VapidKey::read(&p).unwrap_err().to_string();
        assert!(e.contains("0644"), "{e}");
        assert!(
            VapidKey::create(&p).is_err(),
            "a bad existing file is reported"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(
            VapidKey::read(&link)
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        let junk = dir.path().join("junk.key");
        keyfile::write_private_new(&junk, b"not a key").unwrap();
        let e = VapidKey::read(&junk).unwrap_err().to_string();
        assert!(e.contains("no P-256 private key"), "{e}");
        // SEC1 PEM, as openssl ecparam writes it.
        let sec1 = dir.path().join("sec1.key");
        let k = VapidKey::generate().unwrap();
        let pem = k.0.to_sec1_pem(LineEnding::LF).unwrap();
        keyfile::write_private_new(&sec1, pem.as_bytes()).unwrap();
        assert_eq!(VapidKey::read(&sec1).unwrap().public_key(), k.public_key());
    }
}
