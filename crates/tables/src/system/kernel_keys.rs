//! `kernel_keys`: the kernel keyring entries this process may view, from `/proc/keys`.

use oxquery_sys::fs::FileReader;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "kernel_keys",
    description: "Keys and keyrings held by the kernel's key retention service that the querying process can view, from /proc/keys.",
    columns: {
        serial_number: Text [] "Key serial number, in hexadecimal",
        flags: Text [] "State flags of the key (instantiated, revoked, dead, quota, ...), one letter each",
        usage: BigInt [] "Number of references held on the key",
        timeout: Text [] "Time left before the key expires, perm when it never does",
        permissions: Text [] "Permission mask for possessor, user, group and others, in hexadecimal",
        uid: BigInt [] "User that owns the key",
        gid: BigInt [] "Group that owns the key",
        r#type: Text [] "Key type, such as keyring, user or logon",
        description: Text [] "Key description followed by the type's summary of its payload",
    },
    examples: ["select * from kernel_keys where type = 'keyring'"],
}

const PROC_KEYS: &str = "/proc/keys";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    serial_number: String,
    flags: String,
    usage: Option<i64>,
    timeout: String,
    permissions: String,
    uid: Option<i64>,
    gid: Option<i64>,
    key_type: String,
    description: String,
}

/// Splits off the next space-separated field of `rest`.
fn next_field<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let trimmed = rest.trim_start_matches(' ');
    if trimmed.is_empty() {
        return None;
    }
    let end = trimmed.find(' ').unwrap_or(trimmed.len());
    let (field, tail) = trimmed.split_at(end);
    *rest = tail;
    Some(field)
}

/// Parses `/proc/keys` text. Each line has eight space-separated fields, then the
/// description (which may itself hold spaces) up to the end of the line. Lines without
/// a description are skipped.
fn parse_keys(text: &[u8]) -> Vec<Key> {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .filter_map(|line| {
            let mut rest = line;
            let mut f = [""; 8];
            for slot in &mut f {
                *slot = next_field(&mut rest)?;
            }
            let description = rest.trim_start_matches(' ');
            if description.is_empty() {
                return None;
            }
            Some(Key {
                serial_number: f[0].to_owned(),
                flags: f[1].to_owned(),
                usage: f[2].parse().ok(),
                timeout: f[3].to_owned(),
                permissions: f[4].to_owned(),
                uid: f[5].parse().ok(),
                gid: f[6].parse().ok(),
                key_type: f[7].to_owned(),
                description: description.to_owned(),
            })
        })
        .collect()
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut reader = FileReader::new();
    let text = match reader.read(PROC_KEYS) {
        Ok(text) => text,
        Err(e) => {
            log::info!("kernel_keys: cannot read {PROC_KEYS} ({e}): no key retention service?");
            return Ok(());
        }
    };
    for k in parse_keys(text) {
        let mut row = rows.row();
        row.set(Col::serial_number, k.serial_number);
        row.set(Col::flags, k.flags);
        row.set(Col::usage, k.usage);
        row.set(Col::timeout, k.timeout);
        row.set(Col::permissions, k.permissions);
        row.set(Col::uid, k.uid);
        row.set(Col::gid, k.gid);
        row.set(Col::r#type, k.key_type);
        row.set(Col::description, k.description);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};
    use std::ffi::CString;

    #[test]
    fn parses_key_lines() {
        let text = b"0667dd27 I--Q---     1 perm 1f3f0000     0 65534 keyring   _uid_ses.0: 1\n\
                     3d205d79 I------     1 perm 1f0b0000     0     0 keyring   .builtin_trusted_keys: empty\n\
                     1a2b3c4d I--Q---     2  59s 3f010000  1000  1000 user      my key with spaces: 5\n\
                     deadbeef I--Q--- 1 perm 1f3f0000 0 0 keyring\n\
                     short\n";
        let got = parse_keys(text);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].serial_number, "0667dd27");
        assert_eq!(got[0].flags, "I--Q---");
        assert_eq!(got[0].usage, Some(1));
        assert_eq!(got[0].timeout, "perm");
        assert_eq!(got[0].permissions, "1f3f0000");
        assert_eq!(got[0].uid, Some(0));
        assert_eq!(got[0].gid, Some(65534));
        assert_eq!(got[0].key_type, "keyring");
        assert_eq!(got[0].description, "_uid_ses.0: 1");
        assert_eq!(got[2].timeout, "59s");
        assert_eq!(got[2].description, "my key with spaces: 5");
    }

    #[test]
    fn hostile_input_is_skipped() {
        let garbage: Vec<u8> = (0..100_000u32).map(|i| (i * 13 % 256) as u8).collect();
        let _ = parse_keys(&garbage);
        assert!(parse_keys(&vec![b' '; 1 << 20]).is_empty());
        assert_eq!(
            parse_keys(&[b"a b c d e f g h ".as_slice(), &vec![b'x'; 1 << 20]].concat()).len(),
            1
        );
    }

    /// Adds a `user` key to this process's keyring; its serial number in /proc/keys form.
    fn add_test_key(description: &str) -> Option<String> {
        let kind = CString::new("user").unwrap();
        let desc = CString::new(description).unwrap();
        let payload = b"oxquery";
        // SAFETY: add_key(2) with valid NUL-terminated strings and a payload buffer.
        let serial = unsafe {
            libc::syscall(
                libc::SYS_add_key,
                kind.as_ptr(),
                desc.as_ptr(),
                payload.as_ptr(),
                payload.len(),
                libc::KEY_SPEC_PROCESS_KEYRING,
            )
        };
        (serial > 0).then(|| format!("{serial:08x}"))
    }

    use crate::testing::text;

    #[test]
    fn shows_a_key_this_test_adds_and_agrees_with_proc_keys() {
        let description = format!("oxquery-test-{}", std::process::id());
        let added = add_test_key(&description);
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let direct = std::fs::read_to_string(PROC_KEYS).unwrap_or_default();
        let mut theirs: Vec<String> = direct
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect();
        let mut ours: Vec<String> = rows
            .column(Col::serial_number)
            .into_iter()
            .map(text)
            .collect();
        if let Some(serial) = added {
            let row = rows
                .iter()
                .find(|r| text(&r[Col::serial_number as usize]) == serial)
                .expect("the key the test added is listed");
            assert_eq!(text(&row[Col::r#type as usize]), "user");
            assert_eq!(
                text(&row[Col::description as usize]),
                format!("{description}: 7")
            );
            // SAFETY: getuid(2) cannot fail.
            assert_eq!(
                row[Col::uid as usize],
                Value::Integer(i64::from(unsafe { libc::getuid() }))
            );
        }
        // Keys of other processes may come and go between the two reads; ours stay.
        ours.sort();
        theirs.sort();
        let common = ours.iter().filter(|s| theirs.contains(s)).count();
        assert!(
            common + 2 >= theirs.len().max(ours.len()),
            "{ours:?} vs {theirs:?}"
        );
    }
}
