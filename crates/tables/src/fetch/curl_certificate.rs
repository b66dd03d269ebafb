//! `curl_certificate`: the certificate a TLS server presents, read by a handshake with
//! the host the query names, its fields in the text forms osquery prints through OpenSSL.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_parser::asn1_rs::Oid;
use x509_parser::extensions::{GeneralName, ParsedExtension, X509Extension};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use super::http;
use crate::hardware::x509;

table! {
    name: "curl_certificate",
    description: "The certificate the TLS server at each hostname the query names presents (hostname is required, as host or host:port, port 443 by default), its fields as osquery prints them through OpenSSL. The certificate is read, not verified: an expired or self-signed one is reported as it is. Only the named host is contacted; the handshake is bounded by the timeout column (4 s by default) and stops with the query. A host that cannot be reached or does not complete a handshake gives no row and a warning saying why.",
    columns: {
        hostname: Text [REQUIRED | OPTIMIZED] "Hostname (host or host:port) to get the certificate from",
        common_name: Text [] "The subject's common name",
        organization: Text [] "The subject's organization",
        organization_unit: Text [] "The subject's organization unit",
        serial_number: Text [COLLATE_NOCASE] "Serial number, uppercase hex",
        issuer_common_name: Text [] "The issuer's common name",
        issuer_organization: Text [] "The issuer's organization",
        issuer_organization_unit: Text [] "The issuer's organization unit",
        valid_from: Text [] "Start of the validity period (OpenSSL's form: Jan  2 03:04:05 2026 GMT)",
        valid_to: Text [] "End of the validity period",
        sha256_fingerprint: Text [COLLATE_NOCASE] "SHA-256 of the DER certificate, lowercase hex",
        sha1_fingerprint: Text [COLLATE_NOCASE] "SHA-1 of the DER certificate, lowercase hex",
        version: Integer [] "X.509 version (3 for v3)",
        signature_algorithm: Text [] "Signature algorithm, OpenSSL's short name (RSA-SHA256, ecdsa-with-SHA256)",
        signature: Text [] "The signature, lowercase hex bytes separated by colons",
        subject_key_identifier: Text [COLLATE_NOCASE] "Subject key identifier extension",
        authority_key_identifier: Text [COLLATE_NOCASE] "Authority key identifier extension",
        key_usage: Text [] "Key usage extension",
        extended_key_usage: Text [] "Extended key usage extension",
        policies: Text [] "Certificate policies extension",
        subject_alternative_names: Text [] "Subject alternative names extension",
        issuer_alternative_names: Text [] "Issuer alternative names extension",
        info_access: Text [] "Authority information access extension",
        subject_info_access: Text [] "Subject information access extension",
        policy_mappings: Text [] "Policy mappings extension",
        has_expired: Integer [] "1 if the certificate has expired, 0 otherwise",
        basic_constraint: Text [] "Basic constraints extension",
        name_constraints: Text [] "Name constraints extension",
        policy_constraints: Text [] "Policy constraints extension",
        dump_certificate: Integer [ADDITIONAL | HIDDEN] "Set to 1 to fill pem with the certificate",
        timeout: Integer [ADDITIONAL | HIDDEN] "Seconds to wait for the connection and each read of the handshake (default 4)",
        pem: Text [] "The certificate in PEM form, when dump_certificate = 1",
    },
    // No example names a reachable host: the examples run in tests, which reach no network.
    examples: [
        "select common_name, issuer_common_name, valid_to, sha256_fingerprint from curl_certificate where hostname = '127.0.0.1:9'",
        "select subject_alternative_names, pem from curl_certificate where hostname = '127.0.0.1:9' and dump_certificate = 1 and timeout = 2",
    ],
}

const TABLE_NAME: &str = "curl_certificate";
/// osquery's read timeout when the query gives none.
const DEFAULT_TIMEOUT: i64 = 4;
/// osquery waits without a limit for `timeout = 0`; here that is this bound instead.
const LONGEST_WAIT: Duration = Duration::from_secs(60);

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let Some(hostnames) = ctx.eq_texts(Col::hostname) else {
        return Ok(());
    };
    let dump = ctx
        .eq_integers(Col::dump_certificate)
        .is_some_and(|values| values.contains(&1));
    let timeout = match ctx
        .eq_integers(Col::timeout)
        .and_then(|v| v.first().copied())
    {
        None => DEFAULT_TIMEOUT,
        Some(t) if t < 0 => {
            log::warn!("{TABLE_NAME}: ignoring out of range timeout: {t}");
            DEFAULT_TIMEOUT
        }
        Some(t) => t,
    };
    let wait = match u64::try_from(timeout) {
        Ok(0) | Err(_) => LONGEST_WAIT,
        Ok(seconds) => Duration::from_secs(seconds).min(LONGEST_WAIT),
    };
    for hostname in hostnames {
        ctx.check()?;
        let der = {
            let hostname = hostname.clone();
            http::cancellable(ctx, move |_| peer_certificate(&hostname, wait))
        };
        let der = match der {
            None => return ctx.check(),
            Some(Err(e)) => {
                log::warn!("{TABLE_NAME}: cannot get the certificate of {hostname}: {e}");
                continue;
            }
            Some(Ok(der)) => der,
        };
        let fields = match CertFields::of(&der, std::time::SystemTime::now()) {
            Ok(fields) => fields,
            Err(e) => {
                log::warn!(
                    "{TABLE_NAME}: {hostname} presented a certificate that does not parse: {e}"
                );
                continue;
            }
        };
        let mut row = rows.row();
        row.set(Col::hostname, hostname.as_str());
        fields.fill(&mut row);
        row.set(Col::timeout, timeout);
        row.set(Col::dump_certificate, i64::from(dump));
        if dump {
            row.set(Col::pem, pem(&der).as_str());
        }
    }
    Ok(())
}

/// `host`, `host:port` (osquery splits at the first colon; `host:` is port 443) or
/// `[v6]:port`.
fn host_and_port(hostname: &str) -> (String, String) {
    if let Some(rest) = hostname.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        let port = after.strip_prefix(':').filter(|p| !p.is_empty());
        return (host.to_owned(), port.unwrap_or("443").to_owned());
    }
    match hostname.split_once(':') {
        Some((host, port)) if !port.is_empty() => (host.to_owned(), port.to_owned()),
        Some((host, _)) => (host.to_owned(), "443".to_owned()),
        None => (hostname.to_owned(), "443".to_owned()),
    }
}

/// The DER of the leaf certificate `hostname` presents in a TLS handshake, each connect
/// and read bounded by `wait`.
fn peer_certificate(hostname: &str, wait: Duration) -> Result<Vec<u8>, String> {
    let (host, port) = host_and_port(hostname);
    let port: u16 = port
        .parse()
        .map_err(|_| format!("the port {port:?} is not a number"))?;
    let addresses: Vec<SocketAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("unable to resolve {host}: {e}"))?
        .collect();
    // osquery takes the first address, preferring IPv4.
    let address = addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or(addresses.first())
        .ok_or_else(|| format!("unable to resolve {host}"))?;
    let mut socket = TcpStream::connect_timeout(address, wait)
        .map_err(|e| format!("failed to establish a TCP connection to {address}: {e}"))?;
    socket
        .set_read_timeout(Some(wait))
        .and_then(|()| socket.set_write_timeout(Some(wait)))
        .map_err(|e| e.to_string())?;
    // ring, as ureq and oxquery-remote use it (deprecated only for lacking post-quantum
    // key exchange, which does not matter to reading a certificate).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ReadOnly(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.clone()).map_err(|e| format!("{host}: {e}"))?;
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| format!("cannot start a TLS session: {e}"))?;
    while tls.is_handshaking() {
        tls.complete_io(&mut socket)
            .map_err(|e| format!("failed to complete the TLS handshake: {e}"))?;
    }
    // Tell the server we are done; a failure here changes nothing.
    tls.send_close_notify();
    let _ = tls.write_tls(&mut socket);
    let _ = socket.flush();
    let _ = socket.read(&mut [0u8; 0]);
    tls.peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.as_ref().to_vec())
        .ok_or_else(|| "the server presented no certificate".to_owned())
}

/// Accepts any certificate (osquery reads the certificate, it does not judge it) but
/// still checks the handshake's signatures, so the certificate is the server's own.
#[derive(Debug)]
struct ReadOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for ReadOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// PEM of a DER certificate, as `PEM_write_bio_X509` writes it.
fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Every column a certificate gives (all but hostname, timeout, dump_certificate, pem).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct CertFields {
    common_name: String,
    organization: String,
    organization_unit: String,
    serial_number: String,
    issuer_common_name: String,
    issuer_organization: String,
    issuer_organization_unit: String,
    valid_from: String,
    valid_to: String,
    sha256_fingerprint: String,
    sha1_fingerprint: String,
    version: i64,
    signature_algorithm: String,
    signature: String,
    subject_key_identifier: String,
    authority_key_identifier: String,
    key_usage: String,
    extended_key_usage: String,
    policies: String,
    subject_alternative_names: String,
    issuer_alternative_names: String,
    info_access: String,
    subject_info_access: String,
    policy_mappings: String,
    has_expired: bool,
    basic_constraint: String,
    name_constraints: String,
    policy_constraints: String,
}

const OID_CN: &str = "2.5.4.3";
const OID_O: &str = "2.5.4.10";
const OID_OU: &str = "2.5.4.11";

impl CertFields {
    fn of(der: &[u8], now: std::time::SystemTime) -> Result<CertFields, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        let tbs = &cert.tbs_certificate;
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let ext = |oid: &str| extension_text(&cert, oid);
        let signature_oid = cert.signature_algorithm.algorithm.to_id_string();
        Ok(CertFields {
            common_name: name_text(&tbs.subject, OID_CN),
            organization: name_text(&tbs.subject, OID_O),
            organization_unit: name_text(&tbs.subject, OID_OU),
            serial_number: x509::bn2hex(tbs.raw_serial()),
            issuer_common_name: name_text(&tbs.issuer, OID_CN),
            issuer_organization: name_text(&tbs.issuer, OID_O),
            issuer_organization_unit: name_text(&tbs.issuer, OID_OU),
            valid_from: asn1_time_print(tbs.validity.not_before.timestamp()),
            valid_to: asn1_time_print(tbs.validity.not_after.timestamp()),
            sha256_fingerprint: hex::encode(Sha256::digest(der_of(&cert))),
            sha1_fingerprint: hex::encode(Sha1::digest(der_of(&cert))),
            version: i64::from(tbs.version.0) + 1,
            signature_algorithm: signature_short_name(&signature_oid)
                .unwrap_or("UNDEF")
                .to_owned(),
            signature: if signature_short_name(&signature_oid).is_some() {
                colon_hex(&cert.signature_value.data, false)
            } else {
                String::new()
            },
            subject_key_identifier: ext("2.5.29.14"),
            authority_key_identifier: ext("2.5.29.35"),
            key_usage: ext("2.5.29.15"),
            extended_key_usage: ext("2.5.29.37"),
            policies: ext("2.5.29.32"),
            subject_alternative_names: ext("2.5.29.17"),
            issuer_alternative_names: ext("2.5.29.18"),
            info_access: ext("1.3.6.1.5.5.7.1.1"),
            subject_info_access: ext("1.3.6.1.5.5.7.1.11"),
            policy_mappings: ext("2.5.29.33"),
            has_expired: tbs.validity.not_after.timestamp() <= now,
            basic_constraint: ext("2.5.29.19"),
            name_constraints: ext("2.5.29.30"),
            policy_constraints: ext("2.5.29.36"),
        })
    }

    fn fill(&self, row: &mut oxquery_table::RowMut<'_>) {
        let texts = [
            (Col::common_name, &self.common_name),
            (Col::organization, &self.organization),
            (Col::organization_unit, &self.organization_unit),
            (Col::serial_number, &self.serial_number),
            (Col::issuer_common_name, &self.issuer_common_name),
            (Col::issuer_organization, &self.issuer_organization),
            (
                Col::issuer_organization_unit,
                &self.issuer_organization_unit,
            ),
            (Col::valid_from, &self.valid_from),
            (Col::valid_to, &self.valid_to),
            (Col::sha256_fingerprint, &self.sha256_fingerprint),
            (Col::sha1_fingerprint, &self.sha1_fingerprint),
            (Col::signature_algorithm, &self.signature_algorithm),
            (Col::signature, &self.signature),
            (Col::subject_key_identifier, &self.subject_key_identifier),
            (
                Col::authority_key_identifier,
                &self.authority_key_identifier,
            ),
            (Col::key_usage, &self.key_usage),
            (Col::extended_key_usage, &self.extended_key_usage),
            (Col::policies, &self.policies),
            (
                Col::subject_alternative_names,
                &self.subject_alternative_names,
            ),
            (
                Col::issuer_alternative_names,
                &self.issuer_alternative_names,
            ),
            (Col::info_access, &self.info_access),
            (Col::subject_info_access, &self.subject_info_access),
            (Col::policy_mappings, &self.policy_mappings),
            (Col::basic_constraint, &self.basic_constraint),
            (Col::name_constraints, &self.name_constraints),
            (Col::policy_constraints, &self.policy_constraints),
        ];
        for (col, value) in texts {
            row.set(col, value.as_str());
        }
        row.set(Col::version, self.version);
        row.set(Col::has_expired, i64::from(self.has_expired));
    }
}

/// The whole certificate's DER (the parse keeps the bytes it read).
fn der_of<'a>(cert: &'a X509Certificate<'_>) -> &'a [u8] {
    cert.as_raw()
}

/// `X509_NAME_get_text_by_NID`: the first attribute with `oid`, its bytes up to the
/// first NUL and at most 255 of them.
fn name_text(name: &X509Name, oid: &str) -> String {
    let Some(attr) = name
        .iter_attributes()
        .find(|a| a.attr_type().to_id_string() == oid)
    else {
        return String::new();
    };
    let data = attr.attr_value().data;
    let end = data
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(data.len())
        .min(255);
    String::from_utf8_lossy(&data[..end]).into_owned()
}

/// `ASN1_TIME_print`: `Jan  2 03:04:05 2026 GMT`.
fn asn1_time_print(unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{} {day:2} {:02}:{:02}:{:02} {year} GMT",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `OBJ_nid2sn` of the signature algorithms certificates use.
fn signature_short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.2.840.113549.1.1.4" => "RSA-MD5",
        "1.2.840.113549.1.1.5" => "RSA-SHA1",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.113549.1.1.11" => "RSA-SHA256",
        "1.2.840.113549.1.1.12" => "RSA-SHA384",
        "1.2.840.113549.1.1.13" => "RSA-SHA512",
        "1.2.840.113549.1.1.14" => "RSA-SHA224",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10040.4.3" => "DSA-SHA1",
        "2.16.840.1.101.3.4.3.2" => "dsa_with_SHA256",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        _ => return None,
    })
}

/// Bytes as hex separated by colons (upper- or lowercase).
fn colon_hex(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// OpenSSL's long names (`OBJ_obj2txt`) of the OIDs extensions list; others dotted.
fn oid_text(oid: &Oid) -> String {
    let id = oid.to_id_string();
    let name = match id.as_str() {
        "1.3.6.1.5.5.7.3.1" => "TLS Web Server Authentication",
        "1.3.6.1.5.5.7.3.2" => "TLS Web Client Authentication",
        "1.3.6.1.5.5.7.3.3" => "Code Signing",
        "1.3.6.1.5.5.7.3.4" => "E-mail Protection",
        "1.3.6.1.5.5.7.3.8" => "Time Stamping",
        "1.3.6.1.5.5.7.3.9" => "OCSP Signing",
        "2.5.29.37.0" => "Any Extended Key Usage",
        "1.3.6.1.5.5.7.48.1" => "OCSP",
        "1.3.6.1.5.5.7.48.2" => "CA Issuers",
        "1.3.6.1.5.5.7.48.3" => "AD Time Stamping",
        "1.3.6.1.5.5.7.48.5" => "CA Repository",
        "2.5.29.32.0" => "X509v3 Any Policy",
        _ => return id,
    };
    name.to_owned()
}

/// `GENERAL_NAME` as `i2v_GENERAL_NAME` prints it (the alternative names, access
/// locations).
fn general_name(name: &GeneralName) -> String {
    match name {
        GeneralName::DNSName(s) => format!("DNS:{s}"),
        GeneralName::RFC822Name(s) => format!("email:{s}"),
        GeneralName::URI(s) => format!("URI:{s}"),
        GeneralName::IPAddress(bytes) => format!("IP Address:{}", ip_text(bytes)),
        GeneralName::DirectoryName(n) => {
            format!(
                "DirName:{}",
                String::from_utf8_lossy(&x509::name_oneline(n))
            )
        }
        GeneralName::RegisteredID(oid) => format!("Registered ID:{}", oid_text(oid)),
        GeneralName::OtherName(..) => "othername:<unsupported>".to_owned(),
        GeneralName::X400Address(_) => "X400Name:<unsupported>".to_owned(),
        GeneralName::EDIPartyName(_) => "EdiPartyName:<unsupported>".to_owned(),
        GeneralName::Invalid(..) => "<invalid>".to_owned(),
    }
}

/// An IPv4 or IPv6 address as OpenSSL 3.0 prints it (IPv6: eight uppercase groups).
fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => bytes
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join("."),
        16 => bytes
            .chunks(2)
            .map(|pair| format!("{:X}", u16::from_be_bytes([pair[0], pair[1]])))
            .collect::<Vec<_>>()
            .join(":"),
        _ => "<invalid>".to_owned(),
    }
}

/// A name-constraint subtree as `GENERAL_NAME_print` prints it (IP ranges as
/// address/mask).
fn subtree_name(name: &GeneralName) -> String {
    match name {
        GeneralName::IPAddress(bytes) if bytes.len() == 8 || bytes.len() == 32 => {
            let (address, mask) = bytes.split_at(bytes.len() / 2);
            format!("IP:{}/{}", ip_text(address), ip_text(mask))
        }
        GeneralName::DirectoryName(n) => {
            format!(
                "DirName:{}",
                String::from_utf8_lossy(&x509::name_oneline(n))
            )
        }
        other => general_name(other),
    }
}

/// OpenSSL's key usage bits in its printing order, numbered as x509-parser numbers them.
const KEY_USAGES: [(u16, &str); 9] = [
    (1 << 0, "Digital Signature"),
    (1 << 1, "Non Repudiation"),
    (1 << 2, "Key Encipherment"),
    (1 << 3, "Data Encipherment"),
    (1 << 4, "Key Agreement"),
    (1 << 5, "Certificate Sign"),
    (1 << 6, "CRL Sign"),
    (1 << 7, "Encipher Only"),
    (1 << 8, "Decipher Only"),
];

/// The first extension with `oid`, printed as `X509V3_EXT_print` prints it with no
/// indent, its line breaks as `;` (osquery's form); empty when absent.
fn extension_text(cert: &X509Certificate, oid: &str) -> String {
    let Some(ext) = cert
        .tbs_certificate
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == oid)
    else {
        return String::new();
    };
    let lines = extension_lines(ext).unwrap_or_else(|| vec![raw_print(ext.value)]);
    lines.join(";")
}

/// `ASN1_STRING_print` of an extension's raw value: unprintable bytes as dots.
fn raw_print(value: &[u8]) -> String {
    value
        .iter()
        .map(|&b| {
            if (b' '..=b'~').contains(&b) || b == b'\n' || b == b'\r' {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

/// The printed lines of an extension, `None` when it does not parse.
fn extension_lines(ext: &X509Extension) -> Option<Vec<String>> {
    let one_line = |parts: Vec<String>| Some(vec![parts.join(", ")]);
    match ext.parsed_extension() {
        ParsedExtension::SubjectKeyIdentifier(id) => Some(vec![colon_hex(id.0, true)]),
        ParsedExtension::AuthorityKeyIdentifier(aki) => {
            // OpenSSL 3 labels the key id only when an issuer or serial follows.
            let labelled =
                aki.authority_cert_issuer.is_some() || aki.authority_cert_serial.is_some();
            let mut lines = Vec::new();
            if let Some(id) = &aki.key_identifier {
                let hex = colon_hex(id.0, true);
                lines.push(if labelled {
                    format!("keyid:{hex}")
                } else {
                    hex
                });
            }
            for name in aki.authority_cert_issuer.iter().flatten() {
                lines.push(general_name(name));
            }
            if let Some(serial) = aki.authority_cert_serial {
                lines.push(format!("serial:{}", colon_hex(serial, true)));
            }
            Some(lines)
        }
        ParsedExtension::KeyUsage(ku) => one_line(
            KEY_USAGES
                .iter()
                .filter(|(bit, _)| ku.flags & bit != 0)
                .map(|(_, name)| (*name).to_owned())
                .collect(),
        ),
        ParsedExtension::ExtendedKeyUsage(_) => {
            // The parsed form loses the order; OpenSSL prints the OIDs as listed.
            one_line(oid_sequence(ext.value)?.iter().map(oid_text).collect())
        }
        ParsedExtension::SubjectAlternativeName(san) => {
            one_line(san.general_names.iter().map(general_name).collect())
        }
        ParsedExtension::IssuerAlternativeName(ian) => {
            one_line(ian.general_names.iter().map(general_name).collect())
        }
        ParsedExtension::BasicConstraints(bc) => {
            let mut parts = vec![format!("CA:{}", if bc.ca { "TRUE" } else { "FALSE" })];
            if let Some(len) = bc.path_len_constraint {
                parts.push(format!("pathlen:{len}"));
            }
            one_line(parts)
        }
        ParsedExtension::AuthorityInfoAccess(aia) => Some(
            aia.accessdescs
                .iter()
                .map(|d| {
                    format!(
                        "{} - {}",
                        oid_text(&d.access_method),
                        general_name(&d.access_location)
                    )
                })
                .collect(),
        ),
        ParsedExtension::SubjectInfoAccess(sia) => Some(
            sia.accessdescs
                .iter()
                .map(|d| {
                    format!(
                        "{} - {}",
                        oid_text(&d.access_method),
                        general_name(&d.access_location)
                    )
                })
                .collect(),
        ),
        ParsedExtension::CertificatePolicies(policies) => {
            let mut lines = Vec::new();
            for policy in policies {
                lines.push(format!("Policy: {}", oid_text(&policy.policy_id)));
                for q in policy.policy_qualifiers.iter().flatten() {
                    if q.policy_qualifier_id.to_id_string() == "1.3.6.1.5.5.7.2.1" {
                        let uri = x509_parser::der_parser::ber::parse_ber(q.qualifier)
                            .ok()
                            .and_then(|(_, o)| o.as_str().ok().map(str::to_owned))
                            .unwrap_or_default();
                        lines.push(format!("  CPS: {uri}"));
                    } else {
                        lines.push(format!(
                            "  Unknown Qualifier: {}",
                            oid_text(&q.policy_qualifier_id)
                        ));
                    }
                }
            }
            Some(lines)
        }
        ParsedExtension::NameConstraints(nc) => {
            let mut lines = Vec::new();
            for (label, subtrees) in [
                ("Permitted:", &nc.permitted_subtrees),
                ("Excluded:", &nc.excluded_subtrees),
            ] {
                if let Some(subtrees) = subtrees {
                    lines.push(label.to_owned());
                    for s in subtrees {
                        lines.push(format!("  {}", subtree_name(&s.base)));
                    }
                }
            }
            Some(lines)
        }
        ParsedExtension::PolicyConstraints(pc) => {
            let mut parts = Vec::new();
            if let Some(n) = pc.require_explicit_policy {
                parts.push(format!("Require Explicit Policy:{n}"));
            }
            if let Some(n) = pc.inhibit_policy_mapping {
                parts.push(format!("Inhibit Policy Mapping:{n}"));
            }
            one_line(parts)
        }
        ParsedExtension::PolicyMappings(pm) => one_line(
            pm.mappings
                .iter()
                .map(|m| {
                    format!(
                        "{}:{}",
                        oid_text(&m.issuer_domain_policy),
                        oid_text(&m.subject_domain_policy)
                    )
                })
                .collect(),
        ),
        _ => None,
    }
}

/// The OIDs of a DER `SEQUENCE OF OBJECT IDENTIFIER`, in order.
fn oid_sequence(value: &[u8]) -> Option<Vec<Oid<'_>>> {
    let (_, seq) = x509_parser::der_parser::der::parse_der_sequence(value).ok()?;
    let items = seq.as_sequence().ok()?;
    items.iter().map(|o| o.as_oid().ok().cloned()).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cloud::instance::testing::collect;
    use crate::common::testing::{capture_log, within_10s};
    use crate::testing::text;
    use oxquery_table::{Host, Op, Value};
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    use std::collections::BTreeMap;
    use std::net::TcpListener;
    use std::path::Path;
    use std::process::Command;

    type Logged = Vec<(log::Level, String)>;

    /// A TLS server on loopback presenting `cert_pem` for one connection; its address.
    pub(crate) fn tls_server(cert_pem: &str, key_pem: &str) -> String {
        let certs = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut tls = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            while tls.is_handshaking() {
                if tls.complete_io(&mut socket).is_err() {
                    return;
                }
            }
            let _ = tls.complete_io(&mut socket);
        });
        address
    }

    fn scan(constraints: Vec<(Col, Op, Value)>) -> (Vec<Vec<Value>>, Logged) {
        within_10s(move || {
            capture_log(|| {
                let host = Host::default();
                let mut ctx = QueryContext::everything(&SPEC, &host);
                for (col, op, value) in constraints {
                    ctx = ctx.with_constraint(col, op, value);
                }
                let (result, rows) = collect(&ctx, generate);
                result.unwrap();
                rows
            })
        })
    }

    fn host(address: &str) -> (Col, Op, Value) {
        (Col::hostname, Op::Eq, Value::from(address))
    }

    fn openssl(args: &[&str], cert: &Path) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-in"])
            .arg(cert)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The extensions of `openssl x509 -text`, each as osquery prints it: the value
    /// lines without the text's indent, joined by `;`.
    fn openssl_extensions(text: &str) -> BTreeMap<String, String> {
        let mut found = BTreeMap::new();
        let mut current: Option<(String, Vec<String>)> = None;
        let mut inside = false;
        for line in text.lines() {
            if line.trim_start() == "X509v3 extensions:" {
                inside = true;
                continue;
            }
            if !inside {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if indent <= 4 {
                break;
            }
            if indent == 12 {
                if let Some((name, lines)) = current.take() {
                    found.insert(name, lines.join(";"));
                }
                let name = line.trim().split(':').next().unwrap().to_owned();
                current = Some((name, Vec::new()));
            } else if let Some((_, lines)) = current.as_mut() {
                lines.push(line[16..].trim_end().to_owned());
            }
        }
        if let Some((name, lines)) = current.take() {
            found.insert(name, lines.join(";"));
        }
        found
    }

    /// The signature bytes of `openssl x509 -text`, as `aa:bb:...`.
    fn openssl_signature(text: &str) -> String {
        let after = text.rsplit("Signature Value:").next().unwrap();
        after
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("")
            .trim_end_matches(':')
            .to_owned()
    }

    fn value_after<'t>(text: &'t str, prefix: &str) -> &'t str {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix} in {text}"))
            .trim()
    }

    fn col(row: &[Value], c: Col) -> String {
        text(&row[c as usize])
    }

    /// The row for `cert_pem` (served over TLS) checked against openssl's reading.
    fn check_against_openssl(cert_pem: &str, key_pem: &str, dir: &Path) -> Vec<Value> {
        let cert_path = dir.join("cert.pem");
        std::fs::write(&cert_path, cert_pem).unwrap();
        let address = tls_server(cert_pem, key_pem);
        let (rows, logged) = scan(vec![
            host(&address),
            (Col::dump_certificate, Op::Eq, Value::Integer(1)),
        ]);
        assert_eq!(rows.len(), 1, "{logged:?}");
        let row = rows.into_iter().next().unwrap();

        let full = openssl(&["-text"], &cert_path);
        let extensions = openssl_extensions(&full);
        // The comparison below is of real text, not of two empty columns.
        assert!(extensions.len() >= 4, "{extensions:?}");
        for (name, column) in [
            ("X509v3 Subject Key Identifier", Col::subject_key_identifier),
            (
                "X509v3 Authority Key Identifier",
                Col::authority_key_identifier,
            ),
            ("X509v3 Key Usage", Col::key_usage),
            ("X509v3 Extended Key Usage", Col::extended_key_usage),
            (
                "X509v3 Subject Alternative Name",
                Col::subject_alternative_names,
            ),
            (
                "X509v3 Issuer Alternative Name",
                Col::issuer_alternative_names,
            ),
            ("X509v3 Basic Constraints", Col::basic_constraint),
            ("Authority Information Access", Col::info_access),
            ("X509v3 Certificate Policies", Col::policies),
            ("X509v3 Name Constraints", Col::name_constraints),
        ] {
            let expected = extensions.get(name).map(String::as_str).unwrap_or("");
            assert_eq!(col(&row, column), expected, "{name}");
        }
        let fingerprint = |digest: &str| {
            value_after(
                &openssl(&["-fingerprint", digest], &cert_path),
                &format!("{} Fingerprint=", &digest[1..]),
            )
            .replace(':', "")
            .to_lowercase()
        };
        assert_eq!(col(&row, Col::sha256_fingerprint), fingerprint("-sha256"));
        assert_eq!(col(&row, Col::sha1_fingerprint), fingerprint("-sha1"));
        let serial = openssl(&["-serial"], &cert_path);
        assert_eq!(
            col(&row, Col::serial_number),
            value_after(&serial, "serial=")
        );
        let dates = openssl(&["-startdate", "-enddate"], &cert_path);
        assert_eq!(
            col(&row, Col::valid_from),
            value_after(&dates, "notBefore=")
        );
        assert_eq!(col(&row, Col::valid_to), value_after(&dates, "notAfter="));
        assert_eq!(col(&row, Col::signature), openssl_signature(&full));
        let version = value_after(&full, "        Version:");
        assert_eq!(
            row[Col::version as usize],
            Value::Integer(version[..1].parse().unwrap())
        );
        assert_eq!(col(&row, Col::pem), cert_pem);
        assert_eq!(col(&row, Col::hostname), address);
        row
    }

    #[test]
    fn an_openssl_certificate_reads_as_openssl_prints_it() {
        let Some(_) = oxquery_test_support::require_tool("openssl") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args([
                "-subj",
                "/C=US/O=Example Org/OU=Ops/CN=example.test",
                "-addext",
                "subjectAltName=DNS:example.test,IP:127.0.0.1,IP:::1,email:a@b.c,URI:http://x.y/z",
                "-addext",
                "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
                "-addext",
                "extendedKeyUsage=clientAuth,serverAuth,codeSigning",
                "-addext",
                "basicConstraints=critical,CA:TRUE,pathlen:2",
                "-addext",
                "authorityInfoAccess=OCSP;URI:http://ocsp.x.y,caIssuers;URI:http://ca.x.y/ca.crt",
                "-addext",
                "certificatePolicies=2.23.140.1.2.1,1.2.3.4",
                "-addext",
                "issuerAltName=DNS:issuer.test",
                "-addext",
                "nameConstraints=permitted;DNS:.test,excluded;IP:10.0.0.0/255.0.0.0",
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let cert_pem = std::fs::read_to_string(&cert).unwrap();
        let key_pem = std::fs::read_to_string(&key).unwrap();
        let row = check_against_openssl(&cert_pem, &key_pem, dir.path());
        // What the subject and issuer were made with.
        assert_eq!(col(&row, Col::common_name), "example.test");
        assert_eq!(col(&row, Col::organization), "Example Org");
        assert_eq!(col(&row, Col::organization_unit), "Ops");
        assert_eq!(col(&row, Col::issuer_common_name), "example.test");
        assert_eq!(col(&row, Col::issuer_organization), "Example Org");
        assert_eq!(col(&row, Col::issuer_organization_unit), "Ops");
        assert_eq!(col(&row, Col::signature_algorithm), "RSA-SHA256");
        assert_eq!(row[Col::has_expired as usize], Value::Integer(0));
        // The forms osquery documents, spelled out once.
        assert_eq!(
            col(&row, Col::extended_key_usage),
            "TLS Web Client Authentication, TLS Web Server Authentication, Code Signing"
        );
        assert_eq!(col(&row, Col::basic_constraint), "CA:TRUE, pathlen:2");
    }

    #[test]
    fn an_rcgen_certificate_reads_as_openssl_prints_it() {
        let Some(_) = oxquery_test_support::require_tool("openssl") else {
            return;
        };
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "loopback server");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "oxquery tests");
        params.not_before = rcgen::date_time_ymd(2001, 2, 3);
        params.not_after = rcgen::date_time_ymd(2002, 3, 4);
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x9a, 0x01]));
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let row = check_against_openssl(&cert.pem(), &key.serialize_pem(), dir.path());
        assert_eq!(col(&row, Col::common_name), "loopback server");
        assert_eq!(col(&row, Col::organization), "oxquery tests");
        assert_eq!(col(&row, Col::organization_unit), "");
        assert_eq!(col(&row, Col::signature_algorithm), "ecdsa-with-SHA256");
        assert_eq!(col(&row, Col::valid_from), "Feb  3 00:00:00 2001 GMT");
        assert_eq!(col(&row, Col::serial_number), "9A01");
        assert_eq!(row[Col::has_expired as usize], Value::Integer(1));
    }

    #[test]
    fn hosts_that_do_not_speak_tls_give_no_row_and_a_warning() {
        // Accepts and never answers: bounded by the timeout column.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_address = silent.local_addr().unwrap().to_string();
        // Answers with something that is not TLS, then closes.
        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let plain_address = plain.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = plain.accept() {
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
            }
        });
        for address in [silent_address, plain_address, "127.0.0.1:9".to_owned()] {
            let (rows, logged) = scan(vec![
                host(&address),
                (Col::timeout, Op::Eq, Value::Integer(1)),
            ]);
            assert!(rows.is_empty(), "{address}");
            assert!(
                logged.iter().any(|(l, m)| *l == log::Level::Warn
                    && m.contains("cannot get the certificate")
                    && m.contains(&address)),
                "{address}: {logged:?}"
            );
        }
        drop(silent);
    }

    #[test]
    fn hostnames_split_as_osquery_splits_them() {
        assert_eq!(
            host_and_port("example.com"),
            ("example.com".into(), "443".into())
        );
        assert_eq!(
            host_and_port("example.com:"),
            ("example.com".into(), "443".into())
        );
        assert_eq!(
            host_and_port("example.com:8443"),
            ("example.com".into(), "8443".into())
        );
        assert_eq!(host_and_port("[::1]:8443"), ("::1".into(), "8443".into()));
        assert_eq!(host_and_port("[::1]"), ("::1".into(), "443".into()));
    }

    #[test]
    fn times_print_as_asn1_time_print() {
        assert_eq!(asn1_time_print(0), "Jan  1 00:00:00 1970 GMT");
        assert_eq!(asn1_time_print(1_709_251_199), "Feb 29 23:59:59 2024 GMT");
        assert_eq!(asn1_time_print(253_402_300_799), "Dec 31 23:59:59 9999 GMT");
    }

    #[test]
    fn a_stopped_query_leaves_a_silent_host() {
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = silent.local_addr().unwrap().to_string();
        let cancel = oxquery_table::Cancel::new();
        // The query's deadline passes while the handshake waits.
        cancel.set_timeout(Duration::from_millis(200));
        let result = within_10s(move || {
            let host = Host::default();
            let ctx = QueryContext::everything(&SPEC, &host)
                .with_interrupt(oxquery_table::Interrupt::new(cancel, None))
                .with_constraint(Col::hostname, Op::Eq, Value::from(address))
                // Far beyond the test's 10 s guard: only the stop can end the wait.
                .with_constraint(Col::timeout, Op::Eq, Value::Integer(60));
            let (result, rows) = collect(&ctx, generate);
            (result.is_err(), rows.len())
        });
        assert_eq!(result, (true, 0));
        drop(silent);
    }
}
