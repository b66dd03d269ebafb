//! What the `certificates` and `secureboot_certificates` tables report about an X.509
//! certificate, computed as osquery computes it through OpenSSL, from a pure-Rust parse
//! (x509-parser).
//!
//! The text forms follow OpenSSL's, since osquery's columns are OpenSSL's output:
//! - `subject`/`issuer` are `X509_NAME_oneline` (`/C=US/O=Example/CN=Name`, bytes outside
//!   printable ASCII as `\xHH`);
//! - `subject2`/`issuer2` are `X509_NAME_print_ex(.., XN_FLAG_ONELINE)`
//!   (`C = US, O = Example, CN = Name`, RFC 2253 quoting, non-ASCII UTF-8 bytes as `\HH`);
//! - algorithm names are OpenSSL's long names (`sha256WithRSAEncryption`,
//!   `id-ecPublicKey`); an OID OpenSSL would not name gives an empty text here too;
//! - `ca` is `X509_check_ca` > 0 and `self_signed` is `X509_check_issued(cert, cert)`:
//!   names equal after OpenSSL's canonical form, the authority key id consistent, the
//!   signature algorithm matching the key, and key usage allowing certificate signing.
//!
//! Also here: the `CERTIFICATE` blocks of PEM text (bundles), bounded and tolerant: a
//! block that does not decode is skipped and counted, never a panic.

use base64::Engine as _;
use sha1::{Digest, Sha1};
use x509_parser::asn1_rs::{Any, Class, Oid, Tag};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

/// The facts osquery reports about one certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertFacts {
    /// The first CN of the subject, its bytes as stored (BMP/Universal strings as UTF-8).
    pub common_name: Vec<u8>,
    /// `X509_NAME_oneline` of the subject.
    pub subject: Vec<u8>,
    /// `X509_NAME_print_ex(XN_FLAG_ONELINE)` of the subject.
    pub subject2: String,
    pub issuer: Vec<u8>,
    pub issuer2: String,
    pub ca: bool,
    pub self_signed: bool,
    /// Seconds since the epoch (UTC).
    pub not_valid_before: i64,
    pub not_valid_after: i64,
    pub signing_algorithm: String,
    pub key_algorithm: String,
    /// RSA/DSA: bits as OpenSSL's `EVP_PKEY_size` * 8; EC: the curve's name.
    pub key_strength: String,
    pub key_usage: String,
    /// Lowercase hex; empty when the extension is absent.
    pub subject_key_id: String,
    pub authority_key_id: String,
    /// SHA-1 of the DER encoding, lowercase hex.
    pub sha1: String,
    /// `BN_bn2hex` of the serial number: uppercase hex, whole bytes.
    pub serial: String,
}

/// Parses one DER certificate (trailing bytes, such as the trust data of an OpenSSL
/// `TRUSTED CERTIFICATE`, are ignored).
pub fn facts(der: &[u8]) -> Result<CertFacts, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let tbs = &cert.tbs_certificate;
    let ext = Extensions::of(&cert);
    let self_signed_alg = likely_self_issued(&cert, &ext);
    let v1_root = tbs.version.0 == 0 && self_signed_alg;
    let ca = check_ca(&ext, v1_root);
    let self_signed = self_signed_alg && !ku_rejects(ext.key_usage, KU_KEY_CERT_SIGN);
    let spki = &tbs.subject_pki;
    let key_oid = spki.algorithm.algorithm.to_id_string();
    Ok(CertFacts {
        common_name: common_name(&tbs.subject),
        subject: name_oneline(&tbs.subject),
        subject2: name_print_oneline(&tbs.subject),
        issuer: name_oneline(&tbs.issuer),
        issuer2: name_print_oneline(&tbs.issuer),
        ca,
        self_signed,
        not_valid_before: tbs.validity.not_before.timestamp(),
        not_valid_after: tbs.validity.not_after.timestamp(),
        signing_algorithm: long_name(&cert.signature_algorithm.algorithm.to_id_string())
            .unwrap_or_default()
            .to_owned(),
        key_algorithm: long_name(&key_oid).unwrap_or_default().to_owned(),
        key_strength: key_strength(&key_oid, spki).unwrap_or_default(),
        key_usage: ext.key_usage.map(key_usage_text).unwrap_or_default(),
        subject_key_id: ext.subject_key_id.map(hex::encode).unwrap_or_default(),
        authority_key_id: ext
            .authority_key_id
            .and_then(|a| a.key_identifier.as_ref().map(|k| hex::encode(k.0)))
            .unwrap_or_default(),
        sha1: hex::encode(Sha1::digest(cert.as_raw())),
        serial: bn2hex(tbs.raw_serial()),
    })
}

/// The extensions the facts depend on. A key usage is kept as OpenSSL's `ex_kusage`
/// (first byte of the bit string, then the second byte shifted by 8).
struct Extensions<'c, 'a> {
    key_usage: Option<u32>,
    basic_ca: Option<bool>,
    ns_cert_type: Option<u8>,
    subject_key_id: Option<&'a [u8]>,
    authority_key_id: Option<&'c x509_parser::extensions::AuthorityKeyIdentifier<'a>>,
}

impl<'c, 'a> Extensions<'c, 'a> {
    fn of(cert: &'c X509Certificate<'a>) -> Self {
        let mut ext = Extensions {
            key_usage: None,
            basic_ca: None,
            ns_cert_type: None,
            subject_key_id: None,
            authority_key_id: None,
        };
        for e in cert.tbs_certificate.extensions() {
            match e.parsed_extension() {
                ParsedExtension::KeyUsage(ku) => {
                    // x509-parser numbers bits from digitalSignature = 1; OpenSSL's mask
                    // has the bit string's first byte as is (digitalSignature = 0x80).
                    let low = (ku.flags & 0xff) as u8;
                    let high = ((ku.flags >> 8) & 0xff) as u8;
                    ext.key_usage =
                        Some(u32::from(low.reverse_bits()) | u32::from(high.reverse_bits()) << 8);
                }
                ParsedExtension::BasicConstraints(bc) => ext.basic_ca = Some(bc.ca),
                ParsedExtension::NSCertType(t) => {
                    let mut bits = 0u8;
                    if t.ssl_ca() {
                        bits |= 1;
                    }
                    if t.smime_ca() {
                        bits |= 2;
                    }
                    if t.object_signing_ca() {
                        bits |= 4;
                    }
                    ext.ns_cert_type = Some(bits);
                }
                ParsedExtension::SubjectKeyIdentifier(k) => ext.subject_key_id = Some(k.0),
                ParsedExtension::AuthorityKeyIdentifier(a) => ext.authority_key_id = Some(a),
                _ => {}
            }
        }
        ext
    }
}

const KU_KEY_CERT_SIGN: u32 = 0x0004;

/// OpenSSL's key usage bits in ascending order, with the names osquery prints.
const KEY_USAGE_NAMES: [(u32, &str); 9] = [
    (0x0001, "Encipher Only"),
    (0x0002, "CRL Sign"),
    (0x0004, "Key Cert Sign"),
    (0x0008, "Key Agreement"),
    (0x0010, "Data Encipherment"),
    (0x0020, "Key Encipherment"),
    (0x0040, "Non Repudiation"),
    (0x0080, "Digital Signature"),
    (0x8000, "Decipher Only"),
];

fn key_usage_text(mask: u32) -> String {
    KEY_USAGE_NAMES
        .iter()
        .filter(|(bit, _)| mask & bit != 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A key usage extension that is present and lacks `usage`.
fn ku_rejects(key_usage: Option<u32>, usage: u32) -> bool {
    key_usage.is_some_and(|ku| ku & usage == 0)
}

/// `X509_check_ca(cert) > 0`.
fn check_ca(ext: &Extensions, v1_root: bool) -> bool {
    if ku_rejects(ext.key_usage, KU_KEY_CERT_SIGN) {
        return false;
    }
    match ext.basic_ca {
        Some(ca) => ca,
        // A version 1 self-signed root, a key usage allowing certificate signing, or a
        // Netscape CA type.
        None => v1_root || ext.key_usage.is_some() || ext.ns_cert_type.is_some_and(|t| t != 0),
    }
}

/// OpenSSL's "likely issued by itself": the issuer name equals the subject (canonical
/// comparison), the authority key id does not contradict the certificate's own key id,
/// serial and issuer, and the signature algorithm is one for the certificate's key.
fn likely_self_issued(cert: &X509Certificate, ext: &Extensions) -> bool {
    let tbs = &cert.tbs_certificate;
    if !names_equal(&tbs.subject, &tbs.issuer) {
        return false;
    }
    if let Some(akid) = ext.authority_key_id {
        if let (Some(kid), Some(skid)) = (&akid.key_identifier, ext.subject_key_id)
            && kid.0 != skid
        {
            return false;
        }
        if let Some(serial) = akid.authority_cert_serial
            && strip_integer(serial) != strip_integer(tbs.raw_serial())
        {
            return false;
        }
        if let Some(names) = &akid.authority_cert_issuer
            && let Some(dir) = names.iter().find_map(|g| match g {
                GeneralName::DirectoryName(n) => Some(n),
                _ => None,
            })
            && !names_equal(dir, &tbs.issuer)
        {
            return false;
        }
    }
    let key = tbs.subject_pki.algorithm.algorithm.to_id_string();
    match signature_key_type(&tbs.signature.algorithm.to_id_string()) {
        Some(kind) => kind == key || (kind == OID_RSASSA_PSS && key == OID_RSA),
        None => false,
    }
}

/// An INTEGER's content without redundant leading zero bytes (for comparisons).
fn strip_integer(bytes: &[u8]) -> &[u8] {
    let mut b = bytes;
    while b.len() > 1 && b[0] == 0 {
        b = &b[1..];
    }
    b
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_DSA: &str = "1.2.840.10040.4.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_ED448: &str = "1.3.101.113";

/// The key type a signature algorithm needs (`OBJ_find_sigid_algs`' pkey).
fn signature_key_type(sig: &str) -> Option<&'static str> {
    Some(match sig {
        "1.2.840.113549.1.1.2"
        | "1.2.840.113549.1.1.3"
        | "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.113549.1.1.11"
        | "1.2.840.113549.1.1.12"
        | "1.2.840.113549.1.1.13"
        | "1.2.840.113549.1.1.14"
        | "1.2.840.113549.1.1.15"
        | "1.2.840.113549.1.1.16"
        | "1.3.14.3.2.29"
        | "2.16.840.1.101.3.4.3.13"
        | "2.16.840.1.101.3.4.3.14"
        | "2.16.840.1.101.3.4.3.15"
        | "2.16.840.1.101.3.4.3.16" => OID_RSA,
        OID_RSASSA_PSS => OID_RSASSA_PSS,
        "1.2.840.10045.4.1"
        | "1.2.840.10045.4.3.1"
        | "1.2.840.10045.4.3.2"
        | "1.2.840.10045.4.3.3"
        | "1.2.840.10045.4.3.4"
        | "2.16.840.1.101.3.4.3.9"
        | "2.16.840.1.101.3.4.3.10"
        | "2.16.840.1.101.3.4.3.11"
        | "2.16.840.1.101.3.4.3.12" => OID_EC,
        "1.2.840.10040.4.3"
        | "2.16.840.1.101.3.4.3.1"
        | "2.16.840.1.101.3.4.3.2"
        | "2.16.840.1.101.3.4.3.3"
        | "2.16.840.1.101.3.4.3.4" => OID_DSA,
        OID_ED25519 => OID_ED25519,
        OID_ED448 => OID_ED448,
        _ => return None,
    })
}

/// OpenSSL's long name (`OBJ_nid2ln`) of the algorithm and curve OIDs certificates use.
fn long_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        OID_RSA => "rsaEncryption",
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.3" => "md4WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        OID_RSASSA_PSS => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.113549.1.1.15" => "sha512-224WithRSAEncryption",
        "1.2.840.113549.1.1.16" => "sha512-256WithRSAEncryption",
        "1.3.14.3.2.29" => "sha1WithRSA",
        "2.16.840.1.101.3.4.3.13" => "RSA-SHA3-224",
        "2.16.840.1.101.3.4.3.14" => "RSA-SHA3-256",
        "2.16.840.1.101.3.4.3.15" => "RSA-SHA3-384",
        "2.16.840.1.101.3.4.3.16" => "RSA-SHA3-512",
        OID_EC => "id-ecPublicKey",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "2.16.840.1.101.3.4.3.9" => "ecdsa_with_SHA3-224",
        "2.16.840.1.101.3.4.3.10" => "ecdsa_with_SHA3-256",
        "2.16.840.1.101.3.4.3.11" => "ecdsa_with_SHA3-384",
        "2.16.840.1.101.3.4.3.12" => "ecdsa_with_SHA3-512",
        OID_DSA => "dsaEncryption",
        "1.2.840.10040.4.3" => "dsaWithSHA1",
        "2.16.840.1.101.3.4.3.1" => "dsa_with_SHA224",
        "2.16.840.1.101.3.4.3.2" => "dsa_with_SHA256",
        "2.16.840.1.101.3.4.3.3" => "dsa_with_SHA384",
        "2.16.840.1.101.3.4.3.4" => "dsa_with_SHA512",
        OID_ED25519 => "ED25519",
        OID_ED448 => "ED448",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.2.840.10046.2.1" => "X9.42 DH",
        "1.2.840.113549.1.3.1" => "dhKeyAgreement",
        // Named curves: OpenSSL's long name is the short name for these.
        "1.2.840.10045.3.1.1" => "prime192v1",
        "1.2.840.10045.3.1.7" => "prime256v1",
        "1.3.132.0.33" => "secp224r1",
        "1.3.132.0.34" => "secp384r1",
        "1.3.132.0.35" => "secp521r1",
        "1.3.132.0.10" => "secp256k1",
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1",
        "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1",
        "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1",
        _ => return None,
    })
}

/// osquery's key strength: RSA and DSA `EVP_PKEY_size` * 8 (RSA: the modulus in whole
/// bytes; DSA: the largest signature's DER length), EC the curve's name.
fn key_strength(key_oid: &str, spki: &x509_parser::x509::SubjectPublicKeyInfo) -> Option<String> {
    match key_oid {
        OID_RSA => {
            let (_, key) =
                x509_parser::public_key::RSAPublicKey::from_der(&spki.subject_public_key.data)
                    .ok()?;
            let bytes = strip_unsigned(key.modulus).len();
            (bytes > 0).then(|| (bytes * 8).to_string())
        }
        OID_DSA => {
            // Parameters: SEQUENCE { p, q, g }; the size is that of a signature
            // SEQUENCE { r, s } with r and s as large as q.
            let params = spki.algorithm.parameters.as_ref()?;
            let mut rest = params.data;
            let (_, _p, after) = der_tlv(rest)?;
            rest = after;
            let (_, q, _) = der_tlv(rest)?;
            let q = strip_unsigned(q);
            if q.is_empty() {
                return None;
            }
            let int_len = q.len() + usize::from(q[0] & 0x80 != 0);
            let int_tlv = 1 + der_len_len(int_len) + int_len;
            let seq = 1 + der_len_len(2 * int_tlv) + 2 * int_tlv;
            Some((seq * 8).to_string())
        }
        OID_EC => {
            let params = spki.algorithm.parameters.as_ref()?;
            if params.tag() != Tag::Oid {
                return None;
            }
            let oid = params.as_oid().ok()?;
            long_name(&oid.to_id_string()).map(str::to_owned)
        }
        _ => None,
    }
}

fn strip_unsigned(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Bytes a DER length of `len` takes.
fn der_len_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + (usize::BITS as usize / 8 - len.leading_zeros() as usize / 8)
    }
}

/// One DER TLV with a one-byte tag: (tag, content, rest); `None` when truncated.
fn der_tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, b| a << 8 | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// `BN_bn2hex` of a DER INTEGER's content: uppercase, whole bytes without leading zero
/// bytes, `0` for zero, a `-` before a negative number's magnitude.
pub(crate) fn bn2hex(content: &[u8]) -> String {
    if content.first().is_some_and(|b| b & 0x80 != 0) {
        // Two's complement: the magnitude is the complement plus one.
        let mut magnitude: Vec<u8> = content.iter().map(|b| !b).collect();
        for byte in magnitude.iter_mut().rev() {
            let (sum, carry) = byte.overflowing_add(1);
            *byte = sum;
            if !carry {
                break;
            }
        }
        return format!("-{}", unsigned_hex(&magnitude));
    }
    unsigned_hex(content)
}

fn unsigned_hex(content: &[u8]) -> String {
    let digits = strip_unsigned(content);
    if digits.is_empty() {
        return "0".to_owned();
    }
    hex::encode_upper(digits)
}

/// The short names OpenSSL gives name attributes (`OBJ_nid2sn`); others print as OIDs.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.13" => "description",
        "2.5.4.15" => "businessCategory",
        "2.5.4.16" => "postalAddress",
        "2.5.4.17" => "postalCode",
        "2.5.4.18" => "postOfficeBox",
        "2.5.4.20" => "telephoneNumber",
        "2.5.4.41" => "name",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.45" => "x500UniqueIdentifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "2.5.4.72" => "role",
        "2.5.4.97" => "organizationIdentifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "1.2.840.113549.1.9.2" => "unstructuredName",
        "1.2.840.113549.1.9.8" => "unstructuredAddress",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.3.6.1.4.1.311.60.2.1.1" => "jurisdictionL",
        "1.3.6.1.4.1.311.60.2.1.2" => "jurisdictionST",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        _ => return None,
    })
}

fn attribute_name(oid: &Oid) -> String {
    let id = oid.to_id_string();
    short_name(&id).map(str::to_owned).unwrap_or(id)
}

/// The first CN's value.
fn common_name(name: &X509Name) -> Vec<u8> {
    name.iter_common_name()
        .next()
        .map(|cn| match cn.attr_value().tag() {
            Tag::BmpString | Tag::UniversalString => {
                code_units(cn.attr_value()).map_or_else(Vec::new, |units| {
                    units
                        .iter()
                        .filter_map(|c| char::from_u32(*c))
                        .collect::<String>()
                        .into_bytes()
                })
            }
            _ => cn.attr_value().data.to_vec(),
        })
        .unwrap_or_default()
}

/// `X509_NAME_oneline` (OpenSSL 3): `/SN=value` for each RDN (`+SN=value` for the
/// further members of a multi-valued one), bytes outside
/// ' '..='~' as `\xHH`, a `/` inside a value as `\/`.
pub(crate) fn name_oneline(name: &X509Name) -> Vec<u8> {
    let mut out = Vec::new();
    let attributes = name
        .iter_rdn()
        .flat_map(|rdn| rdn.iter().enumerate().map(|(i, attr)| (i > 0, attr)));
    for (same_rdn, attr) in attributes {
        // Members of one multi-valued RDN are joined with '+'.
        out.push(if same_rdn { b'+' } else { b'/' });
        out.extend_from_slice(attribute_name(attr.attr_type()).as_bytes());
        out.push(b'=');
        for &b in attr.attr_value().data {
            if b == b'/' {
                // OpenSSL 3 escapes the separator inside values.
                out.extend_from_slice(b"\\/");
            } else if (b' '..=b'~').contains(&b) {
                out.push(b);
            } else {
                out.extend_from_slice(format!("\\x{b:02X}").as_bytes());
            }
        }
    }
    out
}

/// The string's characters as code units: one per byte, two-byte (BMP) or four-byte
/// (Universal) big-endian; `None` when the length does not divide.
fn code_units(value: &Any) -> Option<Vec<u32>> {
    let data = value.data;
    match value.tag() {
        Tag::BmpString if data.len().is_multiple_of(2) => Some(
            data.chunks_exact(2)
                .map(|c| u32::from(c[0]) << 8 | u32::from(c[1]))
                .collect(),
        ),
        Tag::UniversalString if data.len().is_multiple_of(4) => Some(
            data.chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        Tag::BmpString | Tag::UniversalString => None,
        _ => Some(data.iter().map(|b| u32::from(*b)).collect()),
    }
}

/// `X509_NAME_print_ex(.., 0, XN_FLAG_ONELINE)`.
fn name_print_oneline(name: &X509Name) -> String {
    let mut out = String::new();
    for (i, rdn) in name.iter_rdn().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push_str(" + ");
            }
            out.push_str(&attribute_name(attr.attr_type()));
            out.push_str(" = ");
            out.push_str(&print_value(attr.attr_value()));
        }
    }
    out
}

/// One attribute value under `ASN1_STRFLGS_RFC2253 | ASN1_STRFLGS_ESC_QUOTE`: string
/// types converted to UTF-8 with bytes above 0x7f and control bytes as `\HH` (characters
/// beyond one byte of a BMP or Universal string as `\UXXXX`/`\WXXXXXXXX`), the whole
/// value quoted when it holds an RFC 2253 special; other types as `#` and their DER in hex.
fn print_value(value: &Any) -> String {
    let tag = value.tag();
    let string_type = value.class() == Class::Universal
        && matches!(
            tag,
            Tag::Utf8String
                | Tag::NumericString
                | Tag::PrintableString
                | Tag::T61String
                | Tag::Ia5String
                | Tag::UtcTime
                | Tag::GeneralizedTime
                | Tag::UniversalString
                | Tag::BmpString
        )
        || (value.class() == Class::Universal && tag.0 == 26);
    if !string_type {
        return format!("#{}", hex::encode_upper(reencode(value)));
    }
    let Some(units) = code_units(value) else {
        return String::new();
    };
    // A UTF-8 string is printed byte by byte (already UTF-8); the others are converted.
    let convert = tag != Tag::Utf8String;
    let mut quotes = false;
    let mut body = String::new();
    let last = units.len().saturating_sub(1);
    for (i, &c) in units.iter().enumerate() {
        let first_or_last = (i == 0, i == last);
        if c > 0xffff && !convert {
            body.push_str(&format!("\\W{c:08X}"));
            continue;
        }
        if convert && c > 0x7f {
            let Some(ch) = char::from_u32(c) else {
                // Lone surrogates: OpenSSL's UTF8_putc writes them as three bytes.
                let bytes = [
                    0xe0 | (c >> 12) as u8,
                    0x80 | ((c >> 6) & 0x3f) as u8,
                    0x80 | (c & 0x3f) as u8,
                ];
                for b in bytes {
                    body.push_str(&format!("\\{b:02X}"));
                }
                continue;
            };
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                body.push_str(&format!("\\{b:02X}"));
            }
            continue;
        }
        escape_byte(c as u8, first_or_last, &mut quotes, &mut body);
    }
    if quotes { format!("\"{body}\"") } else { body }
}

/// `do_esc_char` for one byte under the ONELINE flags.
fn escape_byte(b: u8, (first, last): (bool, bool), quotes: &mut bool, out: &mut String) {
    // The quote and the backslash are escaped with a backslash even when quoting.
    if matches!(b, b'"' | b'\\') {
        out.push('\\');
        out.push(b as char);
        return;
    }
    let special = matches!(b, b',' | b'+' | b'<' | b'>' | b';')
        || (first && matches!(b, b' ' | b'#'))
        || (last && b == b' ');
    if special {
        *quotes = true;
        out.push(b as char);
    } else if !(0x20..0x7f).contains(&b) {
        out.push_str(&format!("\\{b:02X}"));
    } else {
        out.push(b as char);
    }
}

/// The DER of a value (tag, length, content), for values that are not strings.
fn reencode(value: &Any) -> Vec<u8> {
    let class = match value.class() {
        Class::Universal => 0x00,
        Class::Application => 0x40,
        Class::ContextSpecific => 0x80,
        Class::Private => 0xc0,
    };
    let constructed = if value.header.is_constructed() {
        0x20
    } else {
        0
    };
    let mut out = Vec::new();
    let tag = value.tag().0;
    if tag < 31 {
        out.push(class | constructed | tag as u8);
    } else {
        out.push(class | constructed | 0x1f);
        let mut groups = Vec::new();
        let mut t = tag;
        loop {
            groups.push((t & 0x7f) as u8);
            t >>= 7;
            if t == 0 {
                break;
            }
        }
        for (i, g) in groups.iter().enumerate().rev() {
            out.push(if i > 0 { g | 0x80 } else { *g });
        }
    }
    let len = value.data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let start = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - start) as u8);
        out.extend_from_slice(&bytes[start..]);
    }
    out.extend_from_slice(value.data);
    out
}

/// `X509_NAME_cmp == 0`: same RDN structure and attribute types, string values equal
/// after OpenSSL's canonical form (UTF-8, outer spaces dropped, inner runs of spaces
/// collapsed, ASCII lowercased), other values equal as bytes.
fn names_equal(a: &X509Name, b: &X509Name) -> bool {
    if a.as_raw() == b.as_raw() {
        return true;
    }
    canonical(a) == canonical(b)
}

type CanonicalName = Vec<Vec<(String, Vec<u8>)>>;

fn canonical(name: &X509Name) -> CanonicalName {
    name.iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    (
                        attr.attr_type().to_id_string(),
                        canonical_value(attr.attr_value()),
                    )
                })
                .collect()
        })
        .collect()
}

fn canonical_value(value: &Any) -> Vec<u8> {
    let tag = value.tag();
    let text = match tag {
        Tag::Utf8String => String::from_utf8_lossy(value.data).into_owned(),
        Tag::PrintableString | Tag::Ia5String | Tag::T61String | Tag::VisibleString => {
            value.data.iter().map(|b| char::from(*b)).collect()
        }
        Tag::BmpString | Tag::UniversalString => code_units(value)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| char::from_u32(*c))
            .collect(),
        _ => {
            let mut raw = vec![0xff];
            raw.extend_from_slice(&reencode(value));
            return raw;
        }
    };
    let mut out = Vec::new();
    let mut pending_space = false;
    for ch in text.trim_matches(|c: char| c.is_ascii_whitespace()).chars() {
        if ch.is_ascii_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space {
            out.push(b' ');
            pending_space = false;
        }
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.to_ascii_lowercase().encode_utf8(&mut buf).as_bytes());
    }
    out
}

/// The certificates of PEM text: the DER of each `CERTIFICATE`, `X509 CERTIFICATE` and
/// `TRUSTED CERTIFICATE` block, and how many such blocks did not decode (bad base64, no
/// end line). Other blocks (keys, CRLs) are passed over.
pub fn pem_certificates(text: &[u8]) -> (Vec<Vec<u8>>, usize) {
    const LABELS: [&[u8]; 3] = [b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"];
    let mut found = Vec::new();
    let mut bad = 0;
    let mut rest = text;
    while let Some(at) = memchr::memmem::find(rest, b"-----BEGIN ") {
        let after = &rest[at + 11..];
        let Some(label_end) = memchr::memmem::find(after, b"-----") else {
            break;
        };
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let mut end_marker = b"-----END ".to_vec();
        end_marker.extend_from_slice(label);
        end_marker.extend_from_slice(b"-----");
        let Some(body_end) = memchr::memmem::find(body_start, &end_marker) else {
            if LABELS.contains(&label) {
                bad += 1;
            }
            break;
        };
        if LABELS.contains(&label) {
            let body: Vec<u8> = body_start[..body_end]
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            match base64::engine::general_purpose::STANDARD.decode(&body) {
                Ok(der) => found.push(der),
                Err(_) => bad += 1,
            }
        }
        rest = &body_start[body_end + end_marker.len()..];
    }
    (found, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_print_as_openssl_bn2hex() {
        assert_eq!(bn2hex(&[0x00]), "0");
        assert_eq!(bn2hex(&[0x0a, 0x1b]), "0A1B");
        assert_eq!(bn2hex(&[0x00, 0x80]), "80");
        assert_eq!(bn2hex(&[0xff]), "-01");
        assert_eq!(bn2hex(&[0x80, 0x00]), "-8000");
    }

    #[test]
    fn der_lengths_and_truncated_tlvs() {
        assert_eq!(der_len_len(0x7f), 1);
        assert_eq!(der_len_len(0x80), 2);
        assert_eq!(der_len_len(0x1234), 3);
        assert_eq!(
            der_tlv(&[0x02, 0x01, 0x05, 0xaa]),
            Some((2, &[5u8][..], &[0xaa][..]))
        );
        assert_eq!(der_tlv(&[0x02, 0x05, 0x01]), None);
        assert_eq!(der_tlv(&[0x02, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(der_tlv(&[0x02]), None);
    }

    #[test]
    fn key_usage_names_follow_openssl_bit_order() {
        assert_eq!(
            key_usage_text(0x0086),
            "CRL Sign, Key Cert Sign, Digital Signature"
        );
        assert_eq!(key_usage_text(0x8001), "Encipher Only, Decipher Only");
        assert_eq!(key_usage_text(0), "");
    }

    #[test]
    fn pem_blocks_other_labels_and_damage() {
        let text = b"junk\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n\
            -----BEGIN CERTIFICATE-----\nAQID\nBA==\n-----END CERTIFICATE-----\n\
            -----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n\
            -----BEGIN TRUSTED CERTIFICATE-----\nBQY=\n-----END TRUSTED CERTIFICATE-----\n\
            -----BEGIN CERTIFICATE-----\nAQID";
        let (found, bad) = pem_certificates(text);
        assert_eq!(found, vec![vec![1, 2, 3, 4], vec![5, 6]]);
        assert_eq!(bad, 2);
        // Every prefix: no panic, never more blocks than the whole text has.
        for cut in 0..text.len() {
            let (found, _) = pem_certificates(&text[..cut]);
            assert!(found.len() <= 2);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(facts(b"").is_err());
        assert!(facts(&[0x30, 0x82, 0xff, 0xff, 0x30]).is_err());
        assert!(facts(&[0x30; 64]).is_err());
    }
}
