//! How the client verifies a server's certificate: webpki's verification (chain to the
//! configured roots, validity, key usage, signatures), plus the one case osquery's
//! OpenSSL accepts and webpki refuses: a certificate with no subjectAltName extension
//! at all that names the host in its subject CN. Fleets still run on such certificates
//! (osquery's own test certificates are like that), so they are accepted, with a
//! warning, exactly when the chain verifies and the CN names the host as OpenSSL's
//! `X509_check_host` would (case-insensitive, or a whole-label leftmost wildcard).
//! A certificate whose subjectAltName does not name the host stays refused, as does a
//! CN for an IP address: OpenSSL's `X509_check_ip_asc`, which osquery uses for
//! addresses, never reads the CN.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use x509_parser::oid_registry::{OID_X509_EXT_NAME_CONSTRAINTS, OID_X509_EXT_SUBJECT_ALT_NAME};

/// webpki's verifier with the legacy CN fallback.
#[derive(Debug)]
pub(crate) struct ServerVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
    /// The CN-only warning is logged once per client, not once per connection.
    warned: AtomicBool,
}

impl ServerVerifier {
    pub(crate) fn new(
        roots: RootCertStore,
        provider: &Arc<CryptoProvider>,
    ) -> Result<ServerVerifier, String> {
        let roots = Arc::new(roots);
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(provider))
                .build()
                .map_err(|e| format!("server certificate verifier: {e}"))?;
        Ok(ServerVerifier {
            webpki,
            roots,
            algorithms: provider.signature_verification_algorithms,
            warned: AtomicBool::new(false),
        })
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refusal = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(
                e @ rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ),
            ) => e,
            other => return other,
        };
        // webpki checks the name after the chain, but that order is not a documented
        // promise: the chain is verified again here before the name is looked at.
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        let ServerName::DnsName(host) = server_name else {
            return Err(refusal);
        };
        if !legacy_cn_names_host(end_entity, intermediates, &self.roots, host.as_ref()) {
            return Err(refusal);
        }
        if !self.warned.swap(true, Ordering::Relaxed) {
            log::warn!(
                "The TLS server's certificate for {} has no subjectAltName and names the host \
                 only in its subject CN; it is accepted as osquery accepts it, but it should be \
                 reissued with a subjectAltName",
                host.as_ref()
            );
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Whether `leaf` (whose chain is already verified) names `host` the legacy way: no
/// subjectAltName extension at all, and a subject CN that matches `host`.
///
/// A CA with name constraints refuses the fallback: webpki applies constraints to
/// subjectAltName entries, so a CN-only leaf would slip past them.
fn legacy_cn_names_host(
    leaf: &[u8],
    intermediates: &[CertificateDer<'_>],
    roots: &RootCertStore,
    host: &str,
) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return false;
    };
    if cert
        .extensions()
        .iter()
        .any(|e| e.oid == OID_X509_EXT_SUBJECT_ALT_NAME)
    {
        return false;
    }
    let mut issuers = vec![cert.tbs_certificate.issuer.as_raw()];
    for der in intermediates {
        let Ok((_, ca)) = x509_parser::parse_x509_certificate(der) else {
            return false;
        };
        if ca
            .extensions()
            .iter()
            .any(|e| e.oid == OID_X509_EXT_NAME_CONSTRAINTS)
        {
            return false;
        }
        issuers.push(ca.tbs_certificate.issuer.as_raw());
    }
    // A trust anchor's subject is kept without its SEQUENCE header.
    let constrained_root_issued = roots.roots.iter().any(|anchor| {
        anchor.name_constraints.is_some()
            && issuers
                .iter()
                .any(|issuer| der_contents(issuer) == Some(anchor.subject.as_ref()))
    });
    if constrained_root_issued {
        return false;
    }
    cert.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .any(|cn| cn_matches(cn, host))
}

/// The contents of a DER element (its bytes after the tag and length).
fn der_contents(tlv: &[u8]) -> Option<&[u8]> {
    let first = *tlv.get(1)?;
    let header = if first < 0x80 {
        2
    } else {
        2 + usize::from(first & 0x7f)
    };
    tlv.get(header..)
}

/// OpenSSL's host check against one CN: equal ignoring ASCII case, or a wildcard that
/// is the whole leftmost label (`*.example.com`), followed by at least two labels,
/// matching exactly one non-empty label of letters, digits and hyphens. OpenSSL also
/// allows partial-label wildcards (`f*.example.com`); those are refused here.
fn cn_matches(cn: &str, host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if cn.eq_ignore_ascii_case(host) {
        return !cn.contains('*');
    }
    let Some(pattern_rest) = cn.strip_prefix("*.") else {
        return false;
    };
    let labels_valid = pattern_rest.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_valid || !pattern_rest.contains('.') {
        return false;
    }
    let Some((first, host_rest)) = host.split_once('.') else {
        return false;
    };
    !first.is_empty()
        && first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && host_rest.eq_ignore_ascii_case(pattern_rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cn_matching_follows_openssl_without_partial_wildcards() {
        assert!(cn_matches("localhost", "localhost"));
        assert!(cn_matches("Fleet.Example.COM", "fleet.example.com"));
        assert!(cn_matches("fleet.example.com", "fleet.example.com."));
        assert!(!cn_matches("fleet.example.com", "fleet.example.org"));
        assert!(!cn_matches("fleet.example.com", "example.com"));
        assert!(!cn_matches("example.com", "fleet.example.com"));
        assert!(!cn_matches("", "localhost"));
        // A whole-label wildcard covers exactly one label, with two labels after it.
        assert!(cn_matches("*.example.com", "fleet.example.com"));
        assert!(cn_matches("*.EXAMPLE.com", "Fleet.example.com"));
        assert!(!cn_matches("*.example.com", "example.com"));
        assert!(!cn_matches("*.example.com", "a.fleet.example.com"));
        assert!(!cn_matches("*.example.com", ".example.com"));
        assert!(!cn_matches("*.com", "example.com"));
        assert!(!cn_matches("*", "localhost"));
        // Partial, inner and double wildcards are refused.
        assert!(!cn_matches("f*.example.com", "fleet.example.com"));
        assert!(!cn_matches("fleet.*.com", "fleet.example.com"));
        assert!(!cn_matches("*.*.com", "fleet.example.com"));
        assert!(!cn_matches("*.example.com", "*.example.com"));
    }

    #[test]
    fn der_contents_skips_short_and_long_headers() {
        assert_eq!(der_contents(&[0x30, 2, 5, 6]), Some(&[5u8, 6][..]));
        let mut long = vec![0x30, 0x81, 200];
        long.extend(std::iter::repeat_n(7u8, 200));
        assert_eq!(der_contents(&long).map(<[u8]>::len), Some(200));
        assert_eq!(der_contents(&[0x30]), None);
    }
}
