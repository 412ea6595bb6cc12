//! The TLS files the configuration names, read and decoded from PEM: the RadSec listener's
//! certificate, key, CA and CRLs (`[radius.radsec]`), and the names a RadSec client's
//! certificate must carry. A crate of its own, beside `mfa-config` rather than in it, so
//! that the TLS types (`rustls-pki-types`) stay out of the PAM module, which links the
//! configuration but never speaks TLS: mfa-radiusd and `mfactl config check` use it.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use mfa_config::{
    Config, MAX_CONFIG_BYTES, Problem, Seg, line_of_path, path_string, radsec_file_help,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};

/// The files of `[radius.radsec]`, read and decoded from PEM (the daemon builds its TLS
/// configuration from these; `config check` reads them the same way).
#[derive(Debug)]
pub struct RadsecFiles {
    pub certificate: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub ca: Vec<CertificateDer<'static>>,
    pub crls: Vec<CertificateRevocationListDer<'static>>,
}

fn k(s: &str) -> Seg {
    Seg::Key(s.into())
}

/// Every problem with the TLS side of the configuration, file, line and key each: the
/// RadSec files that do not read or decode, and a client's `certificate_name` that rustls
/// does not take as a server name (the configuration crate checks the names by its own
/// rule first, without TLS types; this is rustls's). The daemon refuses a configuration with
/// any; `config check` lists them.
pub fn problems(cfg: &Config) -> Vec<Problem> {
    let text = std::fs::read_to_string(&cfg.source).unwrap_or_default();
    let mut out = Vec::new();
    for (i, c) in cfg.radius.clients.iter().enumerate() {
        if let Some(n) = &c.certificate_name
            && ServerName::try_from(n.as_str()).is_err()
        {
            let path = [
                k("radius"),
                k("clients"),
                Seg::Index(i),
                k("certificate_name"),
            ];
            out.push(Problem {
                file: cfg.source.clone(),
                line: line_of_path(&text, &path),
                key: Some(path_string(&path)),
                message: format!("{n:?} is not a DNS name or an IP address"),
            });
        }
    }
    if let Err(p) = radsec_files(cfg) {
        out.extend(p);
    }
    out
}

/// Reads the files `[radius.radsec]` names. `Ok(None)`: RadSec is off. Every problem names
/// the file and the key that names it.
pub fn radsec_files(cfg: &Config) -> Result<Option<RadsecFiles>, Vec<Problem>> {
    let Some(t) = &cfg.radius.radsec else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&cfg.source).unwrap_or_default();
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String| {
        let path = [k("radius"), k("radsec"), k(key)];
        problems.push(Problem {
            file: cfg.source.clone(),
            line: line_of_path(&text, &path),
            key: Some(path_string(&path)),
            message,
        });
    };
    // Zeroized after use: the key file's bytes are a secret.
    let read = |key: &str, p: &Option<PathBuf>| -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        let Some(p) = p else {
            return Err(format!("required: {}", radsec_file_help(key)));
        };
        let meta = std::fs::metadata(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        if !meta.is_file() || meta.len() > MAX_CONFIG_BYTES {
            return Err(format!(
                "{} is not a regular file of at most 1 MiB",
                p.display()
            ));
        }
        std::fs::read(p)
            .map(zeroize::Zeroizing::new)
            .map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let certs = |key: &str, p: &Option<PathBuf>| -> Result<Vec<CertificateDer<'static>>, String> {
        let raw = read(key, p)?;
        let shown = p.as_deref().unwrap_or(Path::new("")).display();
        let certs = CertificateDer::pem_slice_iter(&raw)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{shown}: not valid PEM: {e}"))?;
        if certs.is_empty() {
            return Err(format!(
                "{shown} holds no certificate (\"-----BEGIN CERTIFICATE-----\")"
            ));
        }
        Ok(certs)
    };
    let certificate = certs("certificate", &t.certificate)
        .map_err(|e| problem("certificate", e))
        .ok();
    let ca = certs("ca_file", &t.ca_file)
        .map_err(|e| problem("ca_file", e))
        .ok();
    let key = read("key", &t.key)
        .and_then(|raw| {
            let shown = t.key.as_deref().unwrap_or(Path::new("")).display();
            PrivateKeyDer::from_pem_slice(&raw).map_err(|e| {
                format!("{shown} holds no usable private key (PEM: PKCS#8, PKCS#1 or SEC1; not encrypted): {e}")
            })
        })
        .map_err(|e| problem("key", e))
        .ok();
    let crls = match &t.crl_file {
        None => Some(Vec::new()),
        Some(p) => read("crl_file", &t.crl_file)
            .and_then(|raw| {
                let crls = CertificateRevocationListDer::pem_slice_iter(&raw)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("{}: not valid PEM: {e}", p.display()))?;
                if crls.is_empty() {
                    return Err(format!(
                        "{} holds no CRL (\"-----BEGIN X509 CRL-----\")",
                        p.display()
                    ));
                }
                Ok(crls)
            })
            .map_err(|e| problem("crl_file", e))
            .ok(),
    };
    match (certificate, key, ca, crls) {
        (Some(certificate), Some(key), Some(ca), Some(crls)) if problems.is_empty() => {
            Ok(Some(RadsecFiles {
                certificate,
                key,
                ca,
                crls,
            }))
        }
        _ => Err(problems),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const RADSEC_CLIENT: &str = "[[radius.clients]]\nname = \"gw\"\naddress = \"192.0.2.1\"\ncertificate_name = \"gw.example.net\"\n";

    #[test]
    fn radsec_files_are_checked_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("s.pem"), "not pem at all\n").unwrap();
        std::fs::write(d.join("s.key"), "").unwrap();
        let cfg = d.join("mfa.toml");
        let t = format!(
            "{RADSEC_CLIENT}[radius.radsec]\ncertificate = \"{0}/s.pem\"\nkey = \"{0}/s.key\"\nca_file = \"{0}/missing.pem\"\n",
            d.display()
        );
        std::fs::write(&cfg, &t).unwrap();
        let c = mfa_config::load(&cfg).unwrap();
        let problems = problems(&c);
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{shown:?}");
        assert!(
            shown[0].contains(":6: radius.radsec.certificate: ")
                && shown[0].contains("holds no certificate"),
            "{shown:?}"
        );
        assert!(
            shown[1].contains(":8: radius.radsec.ca_file: cannot read ")
                && shown[1].contains("missing.pem"),
            "{shown:?}"
        );
        assert!(
            shown[2].contains(":7: radius.radsec.key: ")
                && shown[2].contains("no usable private key"),
            "{shown:?}"
        );
    }
}
