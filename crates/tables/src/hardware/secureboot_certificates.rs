//! `secureboot_certificates`: the X.509 certificates of the UEFI Secure Boot key
//! databases, from their EFI variables.
//!
//! osquery reads `db` (allowed signers) and `dbx` (revoked); this table also reads `KEK`
//! and `PK` (the key exchange and platform keys), which hold certificates the same way;
//! `revoked` is 1 for the certificates of `dbx`, 0 for the others, and `path` names the
//! variable's file. Each variable is a series of `EFI_SIGNATURE_LIST`s (UEFI
//! specification, "Signature Database"): a 28-byte header (type GUID, list size, header
//! size, entry size), an optional header, then entries of an owner GUID and the
//! signature. Only lists of type `EFI_CERT_X509_GUID` hold certificates; hash lists
//! (`EFI_CERT_SHA256_GUID`, most of `dbx`) are passed over. A list whose sizes do not fit
//! the variable ends the parse of that variable; an entry that is not a certificate is
//! skipped; both are logged.
//!
//! The certificate columns are computed as in `certificates` (`subject`/`issuer` in
//! OpenSSL's one-line form). Without EFI (no `/sys/firmware/efi`): no rows and a verbose
//! log.

use super::efivars::{self, EfiVars, GLOBAL_GUID, IMAGE_SECURITY_GUID};
use super::x509::{self, CertFacts};
use oxquery_table::{QueryContext, Rows, TableResult, Value, table};
use std::path::Path;

table! {
    name: "secureboot_certificates",
    description: "X.509 certificates of the UEFI Secure Boot databases (db, dbx, KEK, PK EFI variables); no rows on a machine not booted through EFI.",
    columns: {
        common_name: Text [] "The subject's first common name (CN)",
        subject: Text [] "Subject in OpenSSL's one-line form, /C=US/O=Example/CN=Name",
        issuer: Text [] "Issuer in OpenSSL's one-line form, /C=US/O=Example/CN=Name",
        not_valid_before: Text [] "Start of validity, Unix time (UTC)",
        not_valid_after: Text [] "End of validity, Unix time (UTC)",
        sha1: Text [COLLATE_NOCASE] "SHA-1 of the certificate's DER encoding, lowercase hex",
        serial: Text [COLLATE_NOCASE] "Serial number in uppercase hex (OpenSSL's BN_bn2hex)",
        revoked: Integer [] "1 if the certificate is in dbx (the forbidden signatures database), else 0",
        path: Text [] "EFI variable file the certificate was read from",
        is_ca: Integer [] "1 if the certificate is a CA (OpenSSL's X509_check_ca), else 0",
        self_signed: Integer [] "1 if the certificate is issued by its own key, else 0",
        key_usage: Text [] "Key usage extension, comma-separated; empty without it",
        authority_key_id: Text [COLLATE_NOCASE] "Authority key identifier (its key id), lowercase hex",
        subject_key_id: Text [COLLATE_NOCASE] "Subject key identifier, lowercase hex",
        signing_algorithm: Text [] "Signature algorithm, OpenSSL's long name",
        key_algorithm: Text [] "Public key algorithm, OpenSSL's long name",
        key_strength: Text [] "RSA/DSA: key size in bits as OpenSSL reports it; EC: the curve's name",
    },
    examples: ["select common_name, revoked, not_valid_after from secureboot_certificates"],
}

/// The databases read: variable name, vendor GUID, whether its certificates are revoked.
const DATABASES: [(&str, &str, bool); 4] = [
    ("PK", GLOBAL_GUID, false),
    ("KEK", GLOBAL_GUID, false),
    ("db", IMAGE_SECURITY_GUID, false),
    ("dbx", IMAGE_SECURITY_GUID, true),
];

/// `EFI_CERT_X509_GUID` {a5c059a1-94e4-4aa7-87b5-ab155c2bf072} as stored (the first
/// three fields little-endian).
const CERT_X509_GUID: [u8; 16] = [
    0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72,
];

const LIST_HEADER: usize = 28;
const OWNER_GUID: usize = 16;

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_under(ctx, Path::new(efivars::EFI_DIR), rows)
}

fn generate_under(ctx: &QueryContext, efi: &Path, rows: &mut Rows) -> TableResult {
    let Some(vars) = EfiVars::open(SPEC.name.as_ref(), efi, ctx) else {
        return Ok(());
    };
    for (name, guid, revoked) in DATABASES {
        ctx.check()?;
        let path = vars.path(name, guid);
        let data = match vars.read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                log::info!(
                    "Table secureboot_certificates: cannot read {}: {e}",
                    path.display()
                );
                continue;
            }
        };
        let (certs, damage) = signature_list_certificates(&data);
        if let Some(why) = damage {
            log::info!("Table secureboot_certificates: {}: {why}", path.display());
        }
        for der in certs {
            match x509::facts(der) {
                Ok(facts) => add_row(rows, &facts, revoked, &path),
                Err(e) => log::info!(
                    "Table secureboot_certificates: skipping an entry of {} that is not a certificate: {e}",
                    path.display()
                ),
            }
        }
    }
    Ok(())
}

/// The certificate entries (without their owner GUID) of a series of
/// `EFI_SIGNATURE_LIST`s, and why the parse stopped early, if it did.
fn signature_list_certificates(data: &[u8]) -> (Vec<&[u8]>, Option<String>) {
    let le32 = |at: usize| -> usize {
        u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize
    };
    let mut certs = Vec::new();
    let mut at = 0;
    while at < data.len() {
        if data.len() - at < LIST_HEADER {
            return (certs, Some(format!("truncated list header at offset {at}")));
        }
        let list_size = le32(at + 16);
        let header_size = le32(at + 20);
        let entry_size = le32(at + 24);
        let fits = list_size >= LIST_HEADER
            && list_size <= data.len() - at
            && header_size <= list_size - LIST_HEADER;
        if !fits {
            return (
                certs,
                Some(format!(
                    "list at offset {at} does not fit (size {list_size}, header {header_size})"
                )),
            );
        }
        if data[at..at + 16] == CERT_X509_GUID && entry_size > OWNER_GUID {
            let entries = &data[at + LIST_HEADER + header_size..at + list_size];
            for entry in entries.chunks_exact(entry_size) {
                certs.push(&entry[OWNER_GUID..]);
            }
        }
        at += list_size;
    }
    (certs, None)
}

fn add_row(rows: &mut Rows, f: &CertFacts, revoked: bool, path: &Path) {
    let mut row = rows.row();
    row.set(Col::common_name, Value::from_bytes(f.common_name.clone()));
    row.set(Col::subject, Value::from_bytes(f.subject.clone()));
    row.set(Col::issuer, Value::from_bytes(f.issuer.clone()));
    row.set(Col::not_valid_before, f.not_valid_before.to_string());
    row.set(Col::not_valid_after, f.not_valid_after.to_string());
    row.set(Col::sha1, f.sha1.as_str());
    row.set(Col::serial, f.serial.as_str());
    row.set(Col::revoked, i64::from(revoked));
    row.set(Col::path, path);
    row.set(Col::is_ca, i64::from(f.ca));
    row.set(Col::self_signed, i64::from(f.self_signed));
    row.set(Col::key_usage, f.key_usage.as_str());
    row.set(Col::authority_key_id, f.authority_key_id.as_str());
    row.set(Col::subject_key_id, f.subject_key_id.as_str());
    row.set(Col::signing_algorithm, f.signing_algorithm.as_str());
    row.set(Col::key_algorithm, f.key_algorithm.as_str());
    row.set(Col::key_strength, f.key_strength.as_str());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::text;
    use std::process::Command;

    fn rows_under(efi: &Path) -> (Vec<Vec<Value>>, Vec<(log::Level, String)>) {
        efivars::testing::rows_under(&SPEC, generate_under, efi)
    }

    fn run(tool: &Path, args: &[&str]) -> String {
        let out = Command::new(tool).args(args).output().unwrap();
        assert!(out.status.success(), "{} {args:?}: {out:?}", tool.display());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A certificate made by openssl: its PEM file and (sha1, serial, subject) as
    /// `openssl x509` prints them.
    fn make_cert(openssl: &Path, dir: &Path, name: &str, subj: &str) -> (String, [String; 3]) {
        let pem = dir.join(format!("{name}.pem")).to_str().unwrap().to_owned();
        let key = dir.join(format!("{name}.key")).to_str().unwrap().to_owned();
        run(
            openssl,
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &pem,
                "-days", "3", "-subj", subj,
            ],
        );
        let out = run(
            openssl,
            &[
                "x509",
                "-in",
                &pem,
                "-noout",
                "-fingerprint",
                "-sha1",
                "-serial",
                "-subject",
                "-nameopt",
                "compat",
            ],
        );
        let field = |prefix: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("{prefix} in {out}"))
                .to_owned()
        };
        let sha1 = field("sha1 Fingerprint=").replace(':', "").to_lowercase();
        (pem, [sha1, field("serial="), field("subject=")])
    }

    /// An `EFI_SIGNATURE_LIST` of `cert` built by efitools' cert-to-efi-sig-list.
    fn esl_of(tool: &Path, pem: &str) -> Vec<u8> {
        let out = format!("{pem}.esl");
        run(
            tool,
            &["-g", "77fa9abd-0359-4d32-bd60-28f4e78f784b", pem, &out],
        );
        std::fs::read(out).unwrap()
    }

    /// A SHA-256 hash list (what dbx mostly holds): one entry.
    fn sha256_list() -> Vec<u8> {
        let mut list = vec![
            0x26, 0x16, 0xc4, 0xc1, 0x4c, 0x50, 0x92, 0x40, 0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93,
            0x43, 0x28,
        ];
        list.extend_from_slice(&(28u32 + 48).to_le_bytes());
        list.extend_from_slice(&0u32.to_le_bytes());
        list.extend_from_slice(&48u32.to_le_bytes());
        list.extend_from_slice(&[0x11; 48]);
        list
    }

    /// The variable holding `esl`, with attributes NV+BS+RT+time-based authenticated
    /// write (0x27) as the firmware sets them for the key databases.
    fn write_var(efi: &Path, name: &str, guid: &str, esl: &[u8]) -> std::path::PathBuf {
        let mut bytes = vec![0x27, 0, 0, 0];
        bytes.extend_from_slice(esl);
        efivars::testing::write_var_file(efi, name, guid, &bytes)
    }

    /// Signature lists built by efitools from certificates openssl made: every
    /// certificate found, in its database, agreeing with `openssl x509`; hash lists
    /// passed over.
    #[test]
    fn databases_built_by_efitools_match_openssl() {
        let Some(openssl) = oxquery_test_support::require_tool("openssl") else {
            return;
        };
        let Some(to_esl) = oxquery_test_support::require_tool("cert-to-efi-sig-list") else {
            return;
        };
        let work = tempfile::tempdir().unwrap();
        let efi = tempfile::tempdir().unwrap();
        let (pk, pk_facts) = make_cert(&openssl, work.path(), "pk", "/CN=Test PK");
        let (kek, kek_facts) = make_cert(&openssl, work.path(), "kek", "/O=Test/CN=Test KEK");
        let (db1, db1_facts) = make_cert(&openssl, work.path(), "db1", "/CN=Test db one");
        let (db2, db2_facts) = make_cert(&openssl, work.path(), "db2", "/CN=Test db two");
        let (bad, bad_facts) = make_cert(&openssl, work.path(), "dbx", "/CN=Revoked one");
        let pk_path = write_var(efi.path(), "PK", GLOBAL_GUID, &esl_of(&to_esl, &pk));
        write_var(efi.path(), "KEK", GLOBAL_GUID, &esl_of(&to_esl, &kek));
        let mut db = esl_of(&to_esl, &db1);
        db.extend(sha256_list());
        db.extend(esl_of(&to_esl, &db2));
        write_var(efi.path(), "db", IMAGE_SECURITY_GUID, &db);
        let mut dbx = sha256_list();
        dbx.extend(esl_of(&to_esl, &bad));
        let dbx_path = write_var(efi.path(), "dbx", IMAGE_SECURITY_GUID, &dbx);

        let (rows, logged) = rows_under(efi.path());
        let got: Vec<[String; 3]> = rows
            .iter()
            .map(|r| {
                [
                    text(&r[Col::sha1 as usize]),
                    text(&r[Col::serial as usize]),
                    text(&r[Col::subject as usize]),
                ]
            })
            .collect();
        assert_eq!(
            got,
            [pk_facts, kek_facts, db1_facts, db2_facts, bad_facts],
            "{logged:?}"
        );
        let revoked: Vec<&Value> = rows.iter().map(|r| &r[Col::revoked as usize]).collect();
        assert_eq!(
            revoked,
            [
                &Value::Integer(0),
                &Value::Integer(0),
                &Value::Integer(0),
                &Value::Integer(0),
                &Value::Integer(1)
            ]
        );
        assert_eq!(
            text(&rows[0][Col::path as usize]),
            pk_path.to_str().unwrap()
        );
        assert_eq!(
            text(&rows[4][Col::path as usize]),
            dbx_path.to_str().unwrap()
        );
        assert_eq!(text(&rows[0][Col::common_name as usize]), "Test PK");
        assert_eq!(text(&rows[0][Col::key_strength as usize]), "2048");
        assert_eq!(rows[0][Col::self_signed as usize], Value::Integer(1));

        // Every truncation of the db variable: no panic, no more certificates than it has.
        let db_path = efivars::var_path(&efi.path().join("efivars"), "db", IMAGE_SECURITY_GUID);
        let whole = std::fs::read(&db_path).unwrap();
        for len in (0..whole.len()).step_by(7) {
            let (certs, _) = signature_list_certificates(whole.get(4..len).unwrap_or(&[]));
            assert!(certs.len() <= 2);
            for der in certs {
                let _ = x509::facts(der);
            }
        }
    }

    #[test]
    fn hostile_lists_end_the_parse() {
        let mut list = CERT_X509_GUID.to_vec();
        // Sizes that overflow or point past the end.
        for (size, header, entry) in [
            (u32::MAX, 0, 17u32),
            (28, u32::MAX, 17),
            (60, 0, 0),
            (60, 0, 16),
            (27, 0, 17),
        ] {
            list.truncate(16);
            list.extend_from_slice(&size.to_le_bytes());
            list.extend_from_slice(&header.to_le_bytes());
            list.extend_from_slice(&entry.to_le_bytes());
            list.extend_from_slice(&[0x30; 32]);
            let (certs, _) = signature_list_certificates(&list);
            assert!(certs.iter().all(|c| c.len() < 32));
        }
        // An entry size larger than the list: no entries, and the parse moves on.
        list.truncate(16);
        list.extend_from_slice(&60u32.to_le_bytes());
        list.extend_from_slice(&0u32.to_le_bytes());
        list.extend_from_slice(&1000u32.to_le_bytes());
        list.extend_from_slice(&[0; 32]);
        assert_eq!(signature_list_certificates(&list), (vec![], None));
    }

    #[test]
    fn no_efi_no_rows() {
        efivars::testing::assert_no_efi_gives_no_rows(&SPEC, generate_under);
    }
}
