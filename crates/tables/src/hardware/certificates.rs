//! `certificates`: the certificates of the system's CA bundles, or of the files a query
//! names by `path`.
//!
//! As osquery on Linux, without a `path =` constraint the table reads the two bundle
//! files distributions build from their CA stores: `/etc/ssl/certs/ca-certificates.crt`
//! (Debian, Ubuntu, Alpine, Arch, SUSE) and `/etc/pki/tls/certs/ca-bundle.crt` (Fedora,
//! RHEL); a missing one is silently skipped. With `path = X` it reads the files named
//! instead (opened through the safe opener, at most `--read_max` bytes): every
//! `CERTIFICATE`, `X509 CERTIFICATE` and `TRUSTED CERTIFICATE` PEM block, or, beyond
//! osquery, a file holding one DER certificate. Where osquery drops a whole file when one
//! block is damaged, a block that does not decode or parse is skipped here and logged.
//!
//! The columns are computed as osquery computes them through OpenSSL (see
//! [`super::x509`]): `subject`/`issuer` in `X509_NAME_oneline` form, `subject2`/`issuer2`
//! in `X509_NAME_print_ex` one-line form, validity bounds as Unix times.

use super::x509::{self, CertFacts};
use oxquery_table::{QueryContext, Rows, TableResult, Value, table};
use std::ffi::OsString;
use std::path::Path;

table! {
    name: "certificates",
    description: "Certificates of the system CA bundles (/etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt) or of the PEM/DER files named by path.",
    columns: {
        common_name: Text [] "The subject's first common name (CN)",
        subject: Text [] "Subject in OpenSSL's one-line form, /C=US/O=Example/CN=Name (deprecated, use subject2)",
        subject2: Text [] "Subject in OpenSSL's RFC 2253-like form, C = US, O = Example, CN = Name",
        issuer: Text [] "Issuer in OpenSSL's one-line form, /C=US/O=Example/CN=Name (deprecated, use issuer2)",
        issuer2: Text [] "Issuer in OpenSSL's RFC 2253-like form, C = US, O = Example, CN = Name",
        ca: Integer [] "1 if the certificate is a CA (OpenSSL's X509_check_ca: basic constraints CA:TRUE, or a v1 self-signed root), else 0",
        self_signed: Integer [] "1 if the certificate is issued by its own key (names, key ids and algorithm agree and key usage allows signing), else 0",
        not_valid_before: Text [] "Start of validity, Unix time (UTC)",
        not_valid_after: Text [] "End of validity, Unix time (UTC)",
        signing_algorithm: Text [] "Signature algorithm, OpenSSL's long name (e.g. sha256WithRSAEncryption)",
        key_algorithm: Text [] "Public key algorithm, OpenSSL's long name (e.g. rsaEncryption, id-ecPublicKey)",
        key_strength: Text [] "RSA/DSA: key size in bits as OpenSSL reports it; EC: the curve's name",
        key_usage: Text [] "Key usage extension, comma-separated (e.g. CRL Sign, Key Cert Sign); empty without it",
        subject_key_id: Text [COLLATE_NOCASE] "Subject key identifier, lowercase hex",
        authority_key_id: Text [COLLATE_NOCASE] "Authority key identifier (its key id), lowercase hex",
        sha1: Text [COLLATE_NOCASE] "SHA-1 of the certificate's DER encoding, lowercase hex",
        path: Text [ADDITIONAL | OPTIMIZED] "File the certificate was read from; = constraints name the files to read instead of the system bundles",
        serial: Text [COLLATE_NOCASE] "Serial number in uppercase hex (OpenSSL's BN_bn2hex)",
        sid: Text [OTHER_PLATFORM] "Windows only: SID of the store's account",
        store_location: Text [OTHER_PLATFORM] "Windows only: location of the store",
        store: Text [OTHER_PLATFORM] "Windows only: certificate store name",
        username: Text [OTHER_PLATFORM] "Windows only: account owning the store",
        store_id: Text [OTHER_PLATFORM] "Windows only: store identifier",
    },
    examples: [
        "select common_name, not_valid_after from certificates where ca = 1",
        "select sha1, subject2 from certificates where path = '/etc/ssl/certs/ca-certificates.crt'",
    ],
}

/// The CA bundles osquery reads on Linux when no path is given.
const DEFAULT_BUNDLES: [&str; 2] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let paths: Vec<OsString> = match ctx.eq_paths(Col::path) {
        Some(named) => named,
        None => DEFAULT_BUNDLES.iter().map(OsString::from).collect(),
    };
    let policy = crate::common::user_file_policy(ctx);
    for path in &paths {
        ctx.check()?;
        let path = Path::new(path);
        let Some(bytes) = crate::common::read_file(ctx, path, &policy) else {
            continue;
        };
        for facts in certificates_in(&bytes, path) {
            add_row(rows, &facts, path);
        }
    }
    Ok(())
}

/// The facts of each certificate in a file's bytes: its PEM certificate blocks, else the
/// file as one DER certificate. What cannot be read is logged and skipped.
fn certificates_in(bytes: &[u8], path: &Path) -> Vec<CertFacts> {
    let (mut ders, bad) = x509::pem_certificates(bytes);
    if bad > 0 {
        log::info!(
            "Table certificates: {bad} PEM certificate blocks of {} do not decode",
            path.display()
        );
    }
    if ders.is_empty() && bad == 0 && bytes.first() == Some(&0x30) {
        ders.push(bytes.to_vec());
    }
    ders.iter()
        .filter_map(|der| {
            x509::facts(der)
                .map_err(|e| {
                    log::info!(
                        "Table certificates: skipping a certificate of {} that does not parse: {e}",
                        path.display()
                    )
                })
                .ok()
        })
        .collect()
}

fn add_row(rows: &mut Rows, f: &CertFacts, path: &Path) {
    let mut row = rows.row();
    row.set(Col::common_name, Value::from_bytes(f.common_name.clone()));
    row.set(Col::subject, Value::from_bytes(f.subject.clone()));
    row.set(Col::subject2, f.subject2.as_str());
    row.set(Col::issuer, Value::from_bytes(f.issuer.clone()));
    row.set(Col::issuer2, f.issuer2.as_str());
    row.set(Col::ca, i64::from(f.ca));
    row.set(Col::self_signed, i64::from(f.self_signed));
    row.set(Col::not_valid_before, f.not_valid_before.to_string());
    row.set(Col::not_valid_after, f.not_valid_after.to_string());
    row.set(Col::signing_algorithm, f.signing_algorithm.as_str());
    row.set(Col::key_algorithm, f.key_algorithm.as_str());
    row.set(Col::key_strength, f.key_strength.as_str());
    row.set(Col::key_usage, f.key_usage.as_str());
    row.set(Col::subject_key_id, f.subject_key_id.as_str());
    row.set(Col::authority_key_id, f.authority_key_id.as_str());
    row.set(Col::sha1, f.sha1.as_str());
    row.set(Col::path, path);
    row.set(Col::serial, f.serial.as_str());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{rows_of, text, tool_stdout};
    use oxquery_table::{Host, Op};
    use std::process::Command;

    /// The rows for `path = <path>`.
    fn rows_for(path: &Path) -> Vec<Vec<Value>> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::path,
            Op::Eq,
            path.to_str().unwrap(),
        );
        rows_of(&ctx, generate)
    }

    fn cell(row: &[Value], col: Col) -> String {
        match &row[col as usize] {
            Value::Text(t) => t.clone(),
            Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Integer(i) => i.to_string(),
            v => panic!("unexpected {v:?}"),
        }
    }

    /// What `openssl x509` says about one PEM certificate: the independent source.
    #[derive(Debug, Default)]
    struct Openssl {
        subject_oneline: String,
        subject_compat: String,
        issuer_oneline: String,
        not_before: String,
        not_after: String,
        serial: String,
        sha1: String,
        signature: String,
        key_algorithm: String,
        curve: String,
        rsa_bits: String,
        key_usage: String,
        ski: String,
        aki: String,
        ca: bool,
        /// `openssl verify` accepts the certificate as its own issuer.
        self_verifies: bool,
    }

    fn openssl(tool: &Path, pem: &[u8], dir: &Path) -> Openssl {
        let file = dir.join("one.pem");
        std::fs::write(&file, pem).unwrap();
        let run = |args: &[&str]| -> String {
            let out = Command::new(tool)
                .arg("x509")
                .arg("-in")
                .arg(&file)
                .args(args)
                .env("TZ", "UTC")
                .output()
                .unwrap();
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let mut o = Openssl::default();
        // Verified with itself as the only trust anchor: passes exactly when it is issued
        // by its own key (the validity period and purposes left out of the check).
        let file_arg = file.to_str().unwrap();
        o.self_verifies = Command::new(tool)
            .args([
                "verify",
                "-no-CApath",
                "-no-CAstore",
                "-no_check_time",
                "-CAfile",
            ])
            .args([file_arg, file_arg])
            .output()
            .unwrap()
            .status
            .success();
        let fields = run(&[
            "-noout",
            "-subject",
            "-issuer",
            "-serial",
            "-fingerprint",
            "-sha1",
            "-nameopt",
            "oneline",
            "-dates",
            "-text",
            "-certopt",
            "no_sigdump",
            "-purpose",
        ]);
        for line in fields.lines() {
            if let Some(v) = line.strip_prefix("subject=") {
                o.subject_oneline = v.trim_start().to_owned();
            } else if let Some(v) = line.strip_prefix("issuer=") {
                o.issuer_oneline = v.trim_start().to_owned();
            } else if let Some(v) = line.strip_prefix("serial=") {
                o.serial = v.to_owned();
            } else if let Some(v) = line.strip_prefix("sha1 Fingerprint=") {
                o.sha1 = v.replace(':', "").to_lowercase();
            } else if let Some(v) = line.strip_prefix("notBefore=") {
                o.not_before = v.to_owned();
            } else if let Some(v) = line.strip_prefix("notAfter=") {
                o.not_after = v.to_owned();
            }
        }
        o.subject_compat = run(&["-noout", "-subject", "-nameopt", "compat"])
            .trim_end_matches('\n')
            .strip_prefix("subject=")
            .unwrap()
            .to_owned();
        let lines: Vec<&str> = fields.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            let next = lines.get(i + 1).copied().unwrap_or("");
            if let Some(v) = line.strip_prefix("Signature Algorithm: ") {
                if o.signature.is_empty() {
                    o.signature = v.to_owned();
                }
            } else if let Some(v) = line.strip_prefix("Public Key Algorithm: ") {
                o.key_algorithm = v.to_owned();
            } else if let Some(v) = line.strip_prefix("ASN1 OID: ") {
                o.curve = v.to_owned();
            } else if let Some(v) = line.strip_prefix("Public-Key: (") {
                o.rsa_bits = v.trim_end_matches(" bit)").to_owned();
            } else if line.starts_with("X509v3 Key Usage") {
                o.key_usage = next.to_owned();
            } else if line.starts_with("X509v3 Subject Key Identifier") {
                o.ski = next.replace(':', "").to_lowercase();
            } else if line.starts_with("X509v3 Authority Key Identifier") {
                let id = next.strip_prefix("keyid:").unwrap_or(next);
                if id.contains(':') || id.len() == 2 {
                    o.aki = id.replace(':', "").to_lowercase();
                }
            } else if let Some(v) = line.strip_prefix("CRL signing CA : ") {
                // OpenSSL's CRL-signing CA purpose is X509_check_ca(cert) != 0.
                o.ca = v.starts_with("Yes");
            }
        }
        o
    }

    /// Unix times of `openssl -dates` times (`Jan  2 03:04:05 2030 GMT`), by one
    /// `date -f` over all of them.
    fn epochs(dates: &[&str]) -> Vec<String> {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), dates.join("\n") + "\n").unwrap();
        let out = tool_stdout("date", &["-u", "-f", tmp.path().to_str().unwrap(), "+%s"]);
        out.lines().map(str::to_owned).collect()
    }

    /// The key usage names OpenSSL's `-text` prints, in osquery's order and words.
    fn key_usage_from_text(text: &str) -> String {
        let order = [
            ("Encipher Only", "Encipher Only"),
            ("CRL Sign", "CRL Sign"),
            ("Certificate Sign", "Key Cert Sign"),
            ("Key Agreement", "Key Agreement"),
            ("Data Encipherment", "Data Encipherment"),
            ("Key Encipherment", "Key Encipherment"),
            ("Non Repudiation", "Non Repudiation"),
            ("Digital Signature", "Digital Signature"),
            ("Decipher Only", "Decipher Only"),
        ];
        let have: Vec<&str> = text.split(", ").collect();
        order
            .iter()
            .filter(|(o, _)| have.contains(o))
            .map(|(_, ours)| *ours)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Compares every row with `openssl x509` on the same certificate (the PEM blocks
    /// of `file`, in order). Returns how many were compared.
    fn compare_with_openssl(tool: &Path, file: &Path) -> usize {
        let rows = rows_for(file);
        let bytes = std::fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let blocks: Vec<String> = text
            .split("-----END CERTIFICATE-----")
            .filter_map(|b| b.find("-----BEGIN CERTIFICATE-----").map(|at| &b[at..]))
            .map(|b| format!("{b}-----END CERTIFICATE-----\n"))
            .collect();
        assert_eq!(rows.len(), blocks.len(), "{}", file.display());
        let tmp = tempfile::tempdir().unwrap();
        // (ours, openssl's text): converted by `date` at the end, in one run.
        let mut dates = Vec::new();
        for (row, pem) in rows.iter().zip(&blocks) {
            let o = openssl(tool, pem.as_bytes(), tmp.path());
            let name = cell(row, Col::subject2);
            assert_eq!(name, o.subject_oneline, "subject2");
            assert_eq!(
                cell(row, Col::issuer2),
                o.issuer_oneline,
                "issuer2 of {name}"
            );
            // OpenSSL 3's "compat" name format is X509_NAME_oneline.
            assert_eq!(
                cell(row, Col::subject),
                o.subject_compat,
                "subject of {name}"
            );
            assert_eq!(cell(row, Col::sha1), o.sha1, "sha1 of {name}");
            let serial = cell(row, Col::serial);
            assert_eq!(
                if serial == "0" {
                    "00".to_owned()
                } else {
                    serial
                },
                o.serial,
                "serial of {name}"
            );
            dates.push((cell(row, Col::not_valid_before), o.not_before.clone()));
            dates.push((cell(row, Col::not_valid_after), o.not_after.clone()));
            assert_eq!(
                cell(row, Col::signing_algorithm),
                o.signature,
                "sig of {name}"
            );
            assert_eq!(
                cell(row, Col::key_algorithm),
                o.key_algorithm,
                "key of {name}"
            );
            let strength = cell(row, Col::key_strength);
            if o.key_algorithm == "rsaEncryption" {
                // OpenSSL's -text gives exact bits; osquery's whole bytes * 8.
                let bits: u64 = o.rsa_bits.parse().unwrap();
                assert_eq!(strength, bits.div_ceil(8).saturating_mul(8).to_string());
            } else if o.key_algorithm == "id-ecPublicKey" {
                assert_eq!(strength, o.curve, "curve of {name}");
            }
            assert_eq!(
                cell(row, Col::key_usage),
                key_usage_from_text(&o.key_usage),
                "key usage of {name}"
            );
            assert_eq!(cell(row, Col::subject_key_id), o.ski, "ski of {name}");
            assert_eq!(cell(row, Col::authority_key_id), o.aki, "aki of {name}");
            assert_eq!(
                cell(row, Col::ca),
                if o.ca { "1" } else { "0" },
                "ca of {name}"
            );
            assert_eq!(
                cell(row, Col::self_signed),
                if o.self_verifies { "1" } else { "0" },
                "self_signed of {name}"
            );
            // The common name is the subject's (checked above) CN, unescaped; a BMPString
            // one is decoded to UTF-8 (asserted on its own below), so it is left out here.
            let cn = cell(row, Col::common_name);
            let escaped: String = cn
                .bytes()
                .map(|b| match b {
                    b'/' => "\\/".to_owned(),
                    b' '..=b'~' => char::from(b).to_string(),
                    _ => format!("\\x{b:02X}"),
                })
                .collect();
            assert!(
                cell(row, Col::subject).contains(&format!("/CN={escaped}"))
                    || cell(row, Col::subject).contains("/CN=\\x00")
                    || cell(row, Col::subject).contains("+CN=\\x")
                    || cn.is_empty(),
                "{cn} in {name}"
            );
            assert_eq!(cell(row, Col::path), file.to_str().unwrap());
        }
        let texts: Vec<&str> = dates.iter().map(|(_, t)| t.as_str()).collect();
        let ours: Vec<String> = dates.iter().map(|(o, _)| o.clone()).collect();
        assert_eq!(ours, epochs(&texts), "validity dates");
        rows.len()
    }

    /// Every certificate of the host's bundle agrees with `openssl x509` on it.
    #[test]
    fn host_bundle_matches_openssl() {
        let Some(tool) = oxquery_test_support::require_tool("openssl") else {
            return;
        };
        let bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
        if !bundle.exists() {
            // The Debian CI image has ca-certificates; elsewhere the test-made ones below
            // still run.
            assert!(std::env::var_os("CI").is_none(), "no {}", bundle.display());
            return;
        }
        let n = compare_with_openssl(&tool, bundle);
        eprintln!("certificates: {n} host CA certificates match openssl x509");
        assert!(n > 0);
        // The default scan reads the same bundle.
        let all = crate::testing::scan_everything(&SPEC, generate);
        let from_bundle = all
            .iter()
            .filter(|r| text(&r[Col::path as usize]) == bundle.to_str().unwrap())
            .count();
        assert_eq!(from_bundle, n);
        // Every root of a CA store is a self-signed CA.
        for row in all.iter() {
            assert_eq!(row[Col::ca as usize], Value::Integer(1), "{row:?}");
        }
    }

    fn openssl_make(tool: &Path, args: &[&str]) {
        let out = Command::new(tool).args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    /// A self-signed P-256 certificate valid 5 days: its key written to `key`, itself to
    /// `out`, with `extra` arguments of `openssl req` (extensions).
    fn openssl_p256_self_signed(tool: &Path, key: &str, out: &str, subj: &str, extra: &[&str]) {
        let mut args = vec![
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            key,
            "-out",
            out,
            "-days",
            "5",
            "-subj",
            subj,
        ];
        args.extend_from_slice(extra);
        openssl_make(tool, &args);
    }

    /// The certificate in the PEM file `pem` written as DER to `der`.
    fn openssl_to_der(tool: &Path, pem: &str, der: &Path) {
        openssl_make(
            tool,
            &[
                "x509",
                "-in",
                pem,
                "-outform",
                "DER",
                "-out",
                der.to_str().unwrap(),
            ],
        );
    }

    /// Certificates the test makes: an RSA CA, an EC leaf it signs (not a CA, not
    /// self-signed), an EC self-signed non-CA, an Ed25519 CA and a version 1 root, in a PEM bundle; the
    /// leaf also as a DER file.
    #[test]
    fn test_made_certificates_match_openssl() {
        let Some(tool) = oxquery_test_support::require_tool("openssl") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        openssl_make(
            &tool,
            &[
                "req",
                "-utf8",
                "-x509",
                "-newkey",
                "rsa:3072",
                "-nodes",
                "-keyout",
                &p("ca.key"),
                "-out",
                &p("ca.pem"),
                "-days",
                "30",
                "-subj",
                "/C=FR/O=Ox, Query \"Test\"/CN=Test CA \u{e9}t\u{e9}",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl_make(
            &tool,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:secp384r1",
                "-nodes",
                "-keyout",
                &p("leaf.key"),
                "-out",
                &p("leaf.csr"),
                "-subj",
                "/CN=leaf.example/OU=a+b/emailAddress=x@example.org",
            ],
        );
        std::fs::write(
            p("ext.cnf"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyAgreement\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .unwrap();
        openssl_make(
            &tool,
            &[
                "x509",
                "-req",
                "-in",
                &p("leaf.csr"),
                "-CA",
                &p("ca.pem"),
                "-CAkey",
                &p("ca.key"),
                "-set_serial",
                "0x00f1e2d3c4",
                "-days",
                "10",
                "-out",
                &p("leaf.pem"),
                "-extfile",
                &p("ext.cnf"),
            ],
        );
        openssl_p256_self_signed(
            &tool,
            &p("ec.key"),
            &p("ec.pem"),
            "/CN= spaced ",
            &["-addext", "basicConstraints=CA:FALSE"],
        );
        openssl_make(
            &tool,
            &[
                "req",
                "-x509",
                "-newkey",
                "ed25519",
                "-nodes",
                "-keyout",
                &p("ed.key"),
                "-out",
                &p("ed.pem"),
                "-days",
                "5",
                "-subj",
                "/O=Ed/CN=ed",
            ],
        );
        // A version 1 certificate signed by its own (EC) key: no extensions at all.
        openssl_make(
            &tool,
            &[
                "req",
                "-new",
                "-key",
                &p("ec.key"),
                "-subj",
                "/CN=v1 root",
                "-out",
                &p("v1.csr"),
            ],
        );
        openssl_make(
            &tool,
            &[
                "x509",
                "-req",
                "-in",
                &p("v1.csr"),
                "-signkey",
                &p("ec.key"),
                "-days",
                "2",
                "-out",
                &p("v1.pem"),
            ],
        );
        // Names in other string types (BMPString for a character beyond Latin-1,
        // T61String for Latin-1 ones), a multi-valued RDN, and values needing quotes
        // or escapes.
        std::fs::write(
            p("names.cnf"),
            "[req]\ndistinguished_name = dn\nstring_mask = default\n[dn]\n",
        )
        .unwrap();
        openssl_make(
            &tool,
            &[
                "req",
                "-config",
                &p("names.cnf"),
                "-utf8",
                "-multivalue-rdn",
                "-x509",
                "-key",
                &p("ec.key"),
                "-days",
                "2",
                "-out",
                &p("names.pem"),
                "-subj",
                "/CN=\u{3a9} bmp+UID=u1/O=\u{dc}n\u{ef} t61/OU=#x;y\\\\z/L= lead",
            ],
        );
        let mut bundle = Vec::new();
        for f in [
            "ca.pem",
            "leaf.pem",
            "ec.pem",
            "ed.pem",
            "v1.pem",
            "names.pem",
        ] {
            bundle.extend(std::fs::read(p(f)).unwrap());
        }
        let bundle_path = dir.path().join("bundle.pem");
        std::fs::write(&bundle_path, &bundle).unwrap();
        assert_eq!(compare_with_openssl(&tool, &bundle_path), 6);

        let rows = rows_for(&bundle_path);
        let flags: Vec<(String, String)> = rows
            .iter()
            .map(|r| (cell(r, Col::ca), cell(r, Col::self_signed)))
            .collect();
        let f = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        // The Ed25519 one has `openssl req`'s default v3_ca extensions (CA:TRUE); the
        // version 1 self-signed one is a CA by OpenSSL's rule for v1 roots.
        assert_eq!(
            flags,
            [
                f("1", "1"),
                f("0", "0"),
                f("0", "1"),
                f("1", "1"),
                f("1", "1"),
                f("1", "1")
            ]
        );
        assert_eq!(
            cell(&rows[1], Col::authority_key_id),
            cell(&rows[0], Col::subject_key_id)
        );
        assert_eq!(cell(&rows[1], Col::serial), "F1E2D3C4");
        assert_eq!(cell(&rows[5], Col::common_name), "\u{3a9} bmp");
        assert_eq!(cell(&rows[0], Col::key_strength), "3072");
        assert_eq!(cell(&rows[1], Col::key_strength), "secp384r1");
        assert_eq!(cell(&rows[0], Col::common_name), "Test CA \u{e9}t\u{e9}");
        assert_eq!(
            cell(&rows[0], Col::subject),
            "/C=FR/O=Ox, Query \"Test\"/CN=Test CA \\xC3\\xA9t\\xC3\\xA9"
        );

        // Through SQL: `path =` reaches the generator (only that file is read, not the
        // system bundles), and the rows come back in the file's order.
        let engine = crate::testing::engine(&[&TABLE]);
        let r = engine
            .query(&format!(
                "SELECT sha1 FROM certificates WHERE path = '{}'",
                bundle_path.display()
            ))
            .unwrap();
        let via_sql: Vec<String> = r.rows.iter().map(|row| text(&row[0])).collect();
        let direct: Vec<String> = rows.iter().map(|row| cell(row, Col::sha1)).collect();
        assert_eq!(via_sql, direct);

        // The leaf as DER: the same facts.
        let der_path = dir.path().join("leaf.der");
        openssl_to_der(&tool, &p("leaf.pem"), &der_path);
        let der_rows = rows_for(&der_path);
        assert_eq!(der_rows.len(), 1);
        assert_eq!(
            der_rows[0][..Col::path as usize],
            rows[1][..Col::path as usize]
        );
    }

    /// Truncated and corrupted bundles: fewer rows, never a panic or a hang.
    #[test]
    fn damaged_bundles_are_skipped() {
        let Some(tool) = oxquery_test_support::require_tool("openssl") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        openssl_p256_self_signed(&tool, &p("k"), &p("c.pem"), "/CN=x", &[]);
        let pem = std::fs::read(p("c.pem")).unwrap();
        let der_path = dir.path().join("c.der");
        openssl_to_der(&tool, &p("c.pem"), &der_path);
        let der = std::fs::read(&der_path).unwrap();
        for (source, name) in [(&pem, "pem"), (&der, "der")] {
            for len in 0..source.len() {
                let mut cut = source[..len].to_vec();
                cut.extend_from_slice(b"\n");
                let path = dir.path().join(format!("{name}-cut"));
                std::fs::write(&path, &cut).unwrap();
                let rows = crate::common::testing::within_10s({
                    let path = path.clone();
                    move || rows_for(&path).len()
                });
                assert!(rows <= 1);
            }
            // Flipped bytes all through the DER.
            for at in 0..der.len() {
                let mut bad = der.clone();
                bad[at] ^= 0xff;
                let _ = x509::facts(&bad);
            }
        }
        // A FIFO named by path: no rows, no hang.
        let fifo = dir.path().join("fifo");
        crate::common::testing::mkfifo(&fifo);
        let n = crate::common::testing::within_10s(move || rows_for(&fifo).len());
        assert_eq!(n, 0);
    }
}
