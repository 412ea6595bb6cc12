//! TLS to the database server (rustls): `verify-full` checks the chain and the name, and
//! `require` encrypts without checking either (libpq's meaning).

use std::path::Path;
use std::sync::Arc;

use mfa_config::SslMode;
use mfa_store::StoreError;

/// rustls for `require` (the certificate checked against `ca_file` when given, without the
/// host name, else not at all: libpq's meaning) and `verify-full` (chain and host name).
pub(crate) fn tls_connector(
    mode: SslMode,
    ca_file: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_err = |what: String| StoreError::Engine {
        context: "[store] TLS".into(),
        source: what.into(),
    };
    let roots = match ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    tls_err(format!(
                        "[store] ca_file {}: not a PEM certificate file: {e}",
                        path.display()
                    ))
                })?;
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| tls_err(format!("[store] ca_file {}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(tls_err(format!(
                    "[store] ca_file {} holds no certificate",
                    path.display()
                )));
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?;
    let config = match (mode, roots) {
        (SslMode::VerifyFull, Some(roots)) => {
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        (SslMode::VerifyFull, None) => {
            return Err(tls_err(
                "sslmode = \"verify-full\" needs [store] ca_file".into(),
            ));
        }
        (_, roots) => {
            let chain = match roots {
                Some(r) => Some(
                    rustls::client::WebPkiServerVerifier::builder_with_provider(
                        r,
                        provider.clone(),
                    )
                    .build()
                    .map_err(|e| tls_err(e.to_string()))?,
                ),
                None => None,
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(RequireVerifier { chain, provider }))
                .with_no_client_auth()
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// `sslmode = "require"`: the chain is checked when a CA was given, the host name never
/// (libpq's `require` and `verify-ca`); the handshake signatures always are.
#[derive(Debug)]
pub(crate) struct RequireVerifier {
    pub(crate) chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    pub(crate) provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for RequireVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as C;
        match &self.chain {
            None => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            Some(v) => match v.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(rustls::Error::InvalidCertificate(
                    C::NotValidForName | C::NotValidForNameContext { .. },
                )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
                other => other,
            },
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
