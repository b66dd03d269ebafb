//! `user_ssh_keys`: private keys found in each user's `~/.ssh` directory.

use crate::common;
use oxquery_sys::safe_read::{Policy, Root};
use oxquery_sys::users::Passwd;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "user_ssh_keys",
    description: "Private keys in each user's ~/.ssh directory (PEM and OpenSSH formats) with whether they are passphrase-protected and, when readable, their type and size; every user unless the query names uids.",
    attributes: [USER_BASED],
    columns: {
        uid: BigInt [ADDITIONAL | OPTIMIZED] "Owner of the key (whose home it is in)",
        path: Text [INDEX] "Path of the key file",
        encrypted: Integer [] "1 if the key is protected by a passphrase",
        key_type: Text [] "rsa, dsa, ec, ed25519, ecdsa-p256, ...; empty when unknown (e.g. encrypted PEM)",
        key_group_name: Text [] "Elliptic-curve name of an EC key (prime256v1, secp384r1, ...), empty otherwise",
        key_length: Integer [] "Key size in bits; -1 when unknown",
        key_security_bits: Integer [] "Estimated security strength in bits; -1 when unknown",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Read the accounts and their keys inside this process's mount namespace (its /etc/passwd); 0 in rows read from the host's",
    },
    examples: ["select * from user_ssh_keys where uid = 0"],
}

const KEYS_DIR: &str = ".ssh";
/// Key files are small; anything bigger is not a key.
const MAX_KEY_FILE: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyInfo {
    encrypted: bool,
    key_type: String,
    group: String,
    length: i64,
    security_bits: i64,
}

impl KeyInfo {
    fn unknown(encrypted: bool) -> Self {
        KeyInfo {
            encrypted,
            key_type: String::new(),
            group: String::new(),
            length: -1,
            security_bits: -1,
        }
    }
}

fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Minimal DER reader: (tag, content, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Bit length of a big-endian unsigned integer.
fn bit_len(int: &[u8]) -> i64 {
    let int = match int.iter().position(|b| *b != 0) {
        Some(i) => &int[i..],
        None => return 0,
    };
    (int.len() as i64 - 1) * 8 + i64::from(8 - int[0].leading_zeros())
}

/// OpenSSL's strength estimate for RSA/DSA/DH moduli.
fn ff_security_bits(bits: i64) -> i64 {
    match bits {
        b if b >= 15360 => 256,
        b if b >= 7680 => 192,
        b if b >= 3072 => 128,
        b if b >= 2048 => 112,
        b if b >= 1024 => 80,
        _ => 0,
    }
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71];

fn curve(oid: &[u8]) -> Option<(&'static str, i64, i64)> {
    Some(match oid {
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => ("prime256v1", 256, 128),
        [0x2b, 0x81, 0x04, 0x00, 0x22] => ("secp384r1", 384, 192),
        [0x2b, 0x81, 0x04, 0x00, 0x23] => ("secp521r1", 521, 256),
        [0x2b, 0x81, 0x04, 0x00, 0x0a] => ("secp256k1", 256, 128),
        _ => return None,
    })
}

/// PKCS#1 RSAPrivateKey: SEQUENCE { version, n, ... }.
fn rsa_info(body: &[u8]) -> Option<KeyInfo> {
    let (_, seq, _) = der(body)?;
    let (_, _version, rest) = der(seq)?;
    let (tag, n, _) = der(rest)?;
    (tag == 0x02).then(|| {
        let length = bit_len(n);
        KeyInfo {
            encrypted: false,
            key_type: "rsa".into(),
            group: String::new(),
            length,
            security_bits: ff_security_bits(length),
        }
    })
}

fn dsa_from_p(p: &[u8]) -> KeyInfo {
    let length = bit_len(p);
    KeyInfo {
        encrypted: false,
        key_type: "dsa".into(),
        group: String::new(),
        length,
        security_bits: ff_security_bits(length),
    }
}

/// Traditional DSAPrivateKey: SEQUENCE { version, p, q, g, y, x }.
fn dsa_info(body: &[u8]) -> Option<KeyInfo> {
    let (_, seq, _) = der(body)?;
    let (_, _version, rest) = der(seq)?;
    let (tag, p, _) = der(rest)?;
    (tag == 0x02).then(|| dsa_from_p(p))
}

fn ec_from_oid(oid: &[u8]) -> KeyInfo {
    match curve(oid) {
        Some((name, bits, sec)) => KeyInfo {
            encrypted: false,
            key_type: "ec".into(),
            group: name.into(),
            length: bits,
            security_bits: sec,
        },
        None => KeyInfo {
            key_type: "ec".into(),
            ..KeyInfo::unknown(false)
        },
    }
}

/// SEC1 ECPrivateKey: SEQUENCE { version, privateKey, [0] curve OID, [1] publicKey }.
fn ec_info(body: &[u8]) -> Option<KeyInfo> {
    let (_, seq, _) = der(body)?;
    let (_, _version, rest) = der(seq)?;
    let (_, _private, mut rest) = der(rest)?;
    while !rest.is_empty() {
        let (tag, content, next) = der(rest)?;
        if tag == 0xa0 {
            let (_, oid, _) = der(content)?;
            return Some(ec_from_oid(oid));
        }
        rest = next;
    }
    Some(ec_from_oid(&[]))
}

/// PKCS#8 PrivateKeyInfo: SEQUENCE { version, AlgorithmIdentifier, OCTET STRING key }.
fn pkcs8_info(body: &[u8]) -> Option<KeyInfo> {
    let (_, seq, _) = der(body)?;
    let (_, _version, rest) = der(seq)?;
    let (_, alg, rest) = der(rest)?;
    let (_, inner, _) = der(rest)?;
    let (_, oid, params) = der(alg)?;
    match oid {
        OID_RSA => rsa_info(inner),
        OID_EC => {
            let (_, curve_oid, _) = der(params)?;
            Some(ec_from_oid(curve_oid))
        }
        OID_DSA => {
            let (_, pqg, _) = der(params)?;
            let (_, p, _) = der(pqg)?;
            Some(dsa_from_p(p))
        }
        // OpenSSL names no type for Edwards keys (empty), and reports 253/456 bits.
        OID_ED25519 => Some(KeyInfo {
            length: 253,
            security_bits: 128,
            ..KeyInfo::unknown(false)
        }),
        OID_ED448 => Some(KeyInfo {
            length: 456,
            security_bits: 224,
            ..KeyInfo::unknown(false)
        }),
        _ => Some(KeyInfo::unknown(false)),
    }
}

fn be32(b: &[u8], pos: usize) -> Option<usize> {
    let s = b.get(pos..pos + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// An SSH string at `pos`: (content, position after it).
fn ssh_string(b: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let len = be32(b, pos)?;
    let start = pos + 4;
    Some((b.get(start..start.checked_add(len)?)?, start + len))
}

/// `openssh-key-v1`: cipher, kdf, kdf options, key count, public key blob.
fn openssh_info(body: &[u8]) -> Option<KeyInfo> {
    let rest = body.strip_prefix(b"openssh-key-v1\0")?;
    let (cipher, pos) = ssh_string(rest, 0)?;
    let (_kdf, pos) = ssh_string(rest, pos)?;
    let (_kdf_opts, pos) = ssh_string(rest, pos)?;
    let pos = pos + 4;
    let (blob, _) = ssh_string(rest, pos)?;
    let (key_type, pos) = ssh_string(blob, 0)?;
    let mut info = KeyInfo::unknown(cipher != b"none");
    let fixed = |name: &str, bits, sec| (name.to_owned(), bits, sec);
    let (name, length, security) = match key_type {
        b"ssh-ed25519" => fixed("ed25519", 256, 128),
        b"ssh-rsa" => {
            let (_e, pos) = ssh_string(blob, pos)?;
            let (n, _) = ssh_string(blob, pos)?;
            let bits = bit_len(n);
            ("rsa".to_owned(), bits, ff_security_bits(bits))
        }
        b"ssh-dss" => {
            let (p, _) = ssh_string(blob, pos)?;
            ("dsa".to_owned(), bit_len(p), 80)
        }
        b"ecdsa-sha2-nistp256" => fixed("ecdsa-p256", 256, 128),
        b"ecdsa-sha2-nistp384" => fixed("ecdsa-p384", 384, 192),
        b"ecdsa-sha2-nistp521" => fixed("ecdsa-p521", 521, 256),
        other => (String::from_utf8_lossy(other).into_owned(), -1, -1),
    };
    info.key_type = name;
    info.length = length;
    info.security_bits = security;
    Some(info)
}

/// Recognises a private key file; `None` for anything else.
fn parse_key(text: &str) -> Option<KeyInfo> {
    let begin = text.find("-----BEGIN ")?;
    let after = &text[begin + 11..];
    let label_end = after.find("-----")?;
    let label = &after[..label_end];
    let body_start = after[label_end..].find('\n')? + label_end + 1;
    let end_marker = format!("-----END {label}-----");
    let body_end = after.find(&end_marker)?;
    if body_end < body_start {
        return None;
    }
    let body = &after[body_start..body_end];
    // Legacy PEM encryption puts headers (Proc-Type, DEK-Info) before a blank line.
    if body
        .lines()
        .any(|l| l.starts_with("Proc-Type:") && l.contains("ENCRYPTED"))
    {
        return Some(KeyInfo::unknown(true));
    }
    let der_bytes = |b: &str| b64_decode(b);
    match label {
        "ENCRYPTED PRIVATE KEY" => Some(KeyInfo::unknown(true)),
        "OPENSSH PRIVATE KEY" => {
            let bytes = der_bytes(body)?;
            // A key we cannot walk still counts as a key, as long as the magic is there.
            openssh_info(&bytes).or_else(|| {
                bytes
                    .starts_with(b"openssh-key-v1\0")
                    .then(|| KeyInfo::unknown(false))
            })
        }
        "RSA PRIVATE KEY" => rsa_info(&der_bytes(body)?),
        "DSA PRIVATE KEY" => dsa_info(&der_bytes(body)?),
        "EC PRIVATE KEY" => ec_info(&der_bytes(body)?),
        "PRIVATE KEY" => pkcs8_info(&der_bytes(body)?),
        _ => None,
    }
}

fn generate_in(ctx: &QueryContext, root: &Root, users: &[Passwd], rows: &mut Rows) {
    for user in users {
        let dir = user.home().join(KEYS_DIR);
        let Ok(names) = root.read_dir_names(&dir) else {
            continue;
        };
        let mut files: Vec<_> = names
            .into_iter()
            .map(|n| dir.join(n))
            .filter(|p| {
                root.symlink_metadata(p)
                    .is_ok_and(|m| m.is_file() && m.len() <= MAX_KEY_FILE)
            })
            .collect();
        files.sort();
        for path in files {
            // Listed as a regular file, but its owner may have swapped it since.
            let policy = common::home_file_policy(ctx, user);
            let policy = Policy {
                limit: policy.limit.min(MAX_KEY_FILE),
                ..policy
            };
            let Some(bytes) = common::read_file_in(ctx, root, &path, &policy) else {
                continue;
            };
            let Some(info) = parse_key(&String::from_utf8_lossy(&bytes)) else {
                continue;
            };
            let mut row = rows.row();
            row.set(Col::uid, i64::from(user.uid));
            row.set(Col::path, path.to_string_lossy().into_owned());
            row.set(Col::encrypted, i64::from(info.encrypted));
            row.set(Col::key_type, info.key_type);
            row.set(Col::key_group_name, info.group);
            row.set(Col::key_length, info.length);
            row.set(Col::key_security_bits, info.security_bits);
            row.set(Col::pid_with_namespace, root.pid());
        }
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for root in common::namespace_roots(ctx, Col::pid_with_namespace) {
        generate_in(ctx, &root, &common::users_in(ctx, &root, Col::uid), rows);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// The host's accounts' files, as the shared home-fixture helpers call it.
    fn generate_for(ctx: &QueryContext, users: &[Passwd], rows: &mut Rows) {
        generate_in(ctx, &Root::host(), users, rows)
    }

    fn keygen(dir: &std::path::Path, name: &str, args: &[&str]) -> bool {
        Command::new("ssh-keygen")
            .args(args)
            .args(["-q", "-C", "t", "-f"])
            .arg(dir.join(name))
            .status()
            .is_ok_and(|s| s.success())
    }

    fn openssl(args: &[&str]) -> bool {
        Command::new("openssl")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    }

    #[test]
    fn hostile_and_non_key_files() {
        assert!(parse_key("ssh-rsa AAAA public").is_none());
        assert!(
            parse_key("-----BEGIN RSA PRIVATE KEY-----\n!!!\n-----END RSA PRIVATE KEY-----\n")
                .is_none()
        );
        assert!(parse_key("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbg==\n").is_none());
        assert!(
            parse_key("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----")
                .is_none()
        );
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(parse_key(legacy), Some(KeyInfo::unknown(true)));
        assert_eq!(der(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }

    /// Keys made by ssh-keygen/openssl (independent tools) in an injected user's home.
    #[test]
    fn generated_keys_of_an_injected_user() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(KEYS_DIR);
        std::fs::create_dir(&ssh).unwrap();
        let (Some(_), Some(_)) = (
            oxquery_test_support::require_tool("ssh-keygen"),
            oxquery_test_support::require_tool("openssl"),
        ) else {
            return;
        };
        assert!(keygen(&ssh, "id_ed25519", &["-t", "ed25519", "-N", ""]));
        assert!(keygen(
            &ssh,
            "id_rsa",
            &["-t", "rsa", "-b", "3072", "-N", ""]
        ));
        assert!(keygen(
            &ssh,
            "id_ecdsa_enc",
            &["-t", "ecdsa", "-b", "384", "-N", "secret"]
        ));
        assert!(keygen(
            &ssh,
            "pem_rsa",
            &["-t", "rsa", "-b", "2048", "-N", "", "-m", "PEM"]
        ));
        assert!(openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            ssh.join("pkcs8_ec").to_str().unwrap(),
        ]));
        std::fs::write(ssh.join("config"), "Host x\n").unwrap();
        let user = crate::common::testing::fixture_account("keys", 8181, home.path());
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_for(&ctx, &[user], &mut rows);
        let got: Vec<(String, i64, String, String, i64, i64)> = rows
            .iter()
            .map(|r| {
                let p = r[Col::path as usize].to_string();
                (
                    p.rsplit('/').next().unwrap().to_owned(),
                    r[Col::encrypted as usize].as_i64().unwrap(),
                    r[Col::key_type as usize].to_string(),
                    r[Col::key_group_name as usize].to_string(),
                    r[Col::key_length as usize].as_i64().unwrap(),
                    r[Col::key_security_bits as usize].as_i64().unwrap(),
                )
            })
            .collect();
        let k = |n: &str, e, t: &str, g: &str, l, s| {
            (n.to_owned(), e, t.to_owned(), g.to_owned(), l, s)
        };
        let expected = [
            k("id_ecdsa_enc", 1, "ecdsa-p384", "", 384, 192),
            k("id_ed25519", 0, "ed25519", "", 256, 128),
            k("id_rsa", 0, "rsa", "", 3072, 128),
            k("pem_rsa", 0, "rsa", "", 2048, 112),
            k("pkcs8_ec", 0, "ec", "prime256v1", 256, 128),
        ];
        assert_eq!(got, expected);
        assert!(
            rows.column(Col::uid)
                .iter()
                .all(|v| **v == Value::from(8181))
        );
    }

    /// Asserts that `rows` are exactly the files of `home`'s `.ssh` holding a PEM or
    /// OpenSSH private key block, found here directly, all of `uid` (no directory: no
    /// rows); returns the directory.
    fn assert_rows_match_home(rows: &Rows, uid: u32, home: &Path) -> PathBuf {
        let dir = home.join(KEYS_DIR);
        let mut expected: Vec<String> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .map(|e| e.unwrap().path())
                .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
                .filter(|p| {
                    let text = String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
                    text.contains("-----BEGIN ") && text.contains(" PRIVATE KEY-----")
                })
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("list {}: {e}", dir.display()),
        };
        expected.sort();
        let got: Vec<String> = rows
            .iter()
            .map(|r| {
                assert_eq!(r[Col::uid as usize], Value::from(uid));
                r[Col::path as usize].to_string()
            })
            .collect();
        assert_eq!(got, expected);
        dir
    }

    /// The check the live test makes, on a home with keys (made by ssh-keygen) and
    /// public keys and a config beside them.
    #[test]
    fn direct_read_of_a_fixture_home_agrees() {
        let Some(_) = oxquery_test_support::require_tool("ssh-keygen") else {
            return;
        };
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(KEYS_DIR);
        std::fs::create_dir(&ssh).unwrap();
        assert!(keygen(&ssh, "id_ed25519", &["-t", "ed25519", "-N", ""]));
        assert!(keygen(&ssh, "id_ecdsa", &["-t", "ecdsa", "-N", "pw"]));
        std::fs::write(ssh.join("config"), "Host x\n").unwrap();
        let (rows, _) = crate::common::testing::generate_for_home(&SPEC, home.path(), generate_for);
        assert_eq!(rows.len(), 2);
        assert_rows_match_home(&rows, crate::common::testing::FIXTURE_UID, home.path());
    }

    /// The rows for our uid (selecting exactly our account) are exactly the private key
    /// files of our `~/.ssh`, found here directly (no directory: no rows).
    #[test]
    fn live_uid_constraint_reads_only_that_home() {
        use crate::common::testing::{live_rows_for_my_uid, note_live};
        let (rows, me) = live_rows_for_my_uid(&SPEC, Col::uid, generate);
        let dir = assert_rows_match_home(&rows, me.uid, &me.home());
        note_live("user_ssh_keys", rows.len(), &[dir]);
    }
}
