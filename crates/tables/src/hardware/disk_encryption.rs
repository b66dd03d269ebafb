//! `disk_encryption`: which block devices are dm-crypt mappings, or sit on one.
//!
//! osquery asked libcryptsetup about each `block_devices` row (root only). We read the
//! same facts without it: a device-mapper device whose `dm/uuid` starts with `CRYPT-` is
//! a dm-crypt mapping (`CRYPT-LUKS2-<uuid>-<name>`, `CRYPT-PLAIN-<name>`); its `type`
//! is that kind followed by the cipher and mode from the LUKS header on the device under
//! it (`slaves/`): `LUKS2-aes-xts-plain64`, as osquery joins `crypt_get_type`,
//! `crypt_get_cipher` and `crypt_get_cipher_mode`. Reading the header needs root; without
//! it `type` is the kind alone. A device whose parent is encrypted (a partition of an
//! encrypted disk, an LVM volume on an encrypted physical volume) is encrypted too, with
//! its parent's type. Every other device is `not encrypted`. Reads are read-only and
//! bounded (the first 68 KiB of the device). A `name =` constraint reads only those
//! devices.

use super::block_devices::{parent_name, select_devices};
use oxquery_sys::block::{BlockDevice, BlockDevices, LUKS_MAGIC, c_text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "disk_encryption",
    description: "Disk encryption status of each block device: dm-crypt mappings (LUKS1, LUKS2, plain) and the devices on them, with the LUKS cipher and mode.",
    columns: {
        name: Text [INDEX] "Device node (/dev/dm-0)",
        uuid: Text [COLLATE_NOCASE] "UUID of what the device holds (as block_devices.uuid)",
        encrypted: Integer [] "1 if the device is a dm-crypt mapping or sits on one, else 0",
        r#type: Text [] "Encryption kind, cipher and mode (LUKS2-aes-xts-plain64); empty when not encrypted",
        encryption_status: Text [] "encrypted or not encrypted",
        uid: Text [OTHER_PLATFORM] "macOS only: FileVault user; NULL here",
        user_uuid: Text [OTHER_PLATFORM | COLLATE_NOCASE] "macOS only: FileVault user UUID; NULL here",
        filevault_status: Text [OTHER_PLATFORM] "macOS only: FileVault status; NULL here",
    },
    examples: ["select name, type from disk_encryption where encrypted = 1"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    scan(ctx, rows, &BlockDevices::default())
}

/// Cipher and mode from a LUKS header (`aes`, `xts-plain64`); `None` when the bytes are
/// no LUKS header or it is cut short.
pub(crate) fn luks_cipher(header: &[u8]) -> Option<(u16, String, String)> {
    if header.get(..6)? != LUKS_MAGIC {
        return None;
    }
    let version = u16::from_be_bytes(header.get(6..8)?.try_into().ok()?);
    match version {
        // LUKS1: cipher name and mode as NUL-padded text at 8 and 40.
        1 => Some((1, c_text(header.get(8..40)?)?, c_text(header.get(40..72)?)?)),
        // LUKS2: the JSON area follows the 4 KiB binary header (its size at 8); the
        // data segment's `encryption` is `cipher-mode`.
        2 => {
            let hdr_size = u64::from_be_bytes(header.get(8..16)?.try_into().ok()?);
            let end = usize::try_from(hdr_size).ok()?.min(header.len());
            let json = header.get(4096..end)?;
            let json = &json[..json.iter().position(|&b| b == 0).unwrap_or(json.len())];
            let meta: serde_json::Value = serde_json::from_slice(json).ok()?;
            let segments = meta.get("segments")?.as_object()?;
            let (_, segment) = segments
                .iter()
                .filter(|(_, s)| s.get("type").and_then(|t| t.as_str()) == Some("crypt"))
                .min_by_key(|(k, _)| k.parse::<u64>().unwrap_or(u64::MAX))?;
            let encryption = segment.get("encryption")?.as_str()?;
            let (cipher, mode) = encryption.split_once('-').unwrap_or((encryption, ""));
            Some((2, cipher.to_owned(), mode.to_owned()))
        }
        _ => None,
    }
}

/// The `type` of a dm-crypt mapping, or `None` for a device that is not one.
fn crypt_type(dev: &BlockDevice, devices: &BlockDevices) -> Option<String> {
    let uuid = dev.dm_uuid()?;
    let rest = uuid.strip_prefix("CRYPT-")?;
    let kind = rest.split('-').next().unwrap_or("").to_owned();
    let mut items = vec![kind.clone()];
    if kind.starts_with("LUKS") {
        let header = dev
            .slaves()
            .into_iter()
            .next()
            .and_then(|s| devices.device(&s))
            .and_then(|s| match s.read_start() {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    log::debug!("disk_encryption: cannot read {}: {e}", s.node.display());
                    None
                }
            });
        if let Some((_, cipher, mode)) = header.as_deref().and_then(luks_cipher) {
            items.push(cipher);
            items.push(mode);
        }
    }
    Some(
        items
            .into_iter()
            .filter(|i| !i.is_empty())
            .collect::<Vec<_>>()
            .join("-"),
    )
}

/// The encryption type of a device or of the nearest encrypted ancestor (at most 8
/// levels: partitions of volumes of mappings), `None` when none is encrypted.
fn encryption_of(dev: &BlockDevice, devices: &BlockDevices) -> Option<String> {
    let mut current = dev.clone();
    for _ in 0..8 {
        if let Some(kind) = crypt_type(&current, devices) {
            return Some(kind);
        }
        current = devices.device(&parent_name(&current)?)?;
    }
    None
}

/// The rows for `devices` (the entry point tests point at a fixture tree).
fn scan(ctx: &QueryContext, rows: &mut Rows, devices: &BlockDevices) -> TableResult {
    for dev in select_devices(ctx.eq_texts(Col::name), devices) {
        ctx.check()?;
        let kind = encryption_of(&dev, devices);
        let mut row = rows.row();
        row.set(Col::name, devices.node_of(&dev.name));
        row.set_with(Col::uuid, || dev.signature().and_then(|sig| sig.uuid));
        row.set(Col::encrypted, i64::from(kind.is_some()));
        row.set(
            Col::encryption_status,
            if kind.is_some() {
                "encrypted"
            } else {
                "not encrypted"
            },
        );
        row.set(Col::r#type, kind.unwrap_or_default());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::block_devices::tests::Fixture;
    use crate::testing::{text, tool_stdout};
    use oxquery_sys::block;
    use oxquery_table::{Host, Op, Value};
    use oxquery_test_support::require_tool;
    use std::path::Path;

    /// Formats `image` (a 20 MiB file) with cryptsetup; false when the test skips.
    fn luks_format(image: &Path, args: &[&str]) -> bool {
        let Some(cryptsetup) = require_tool("cryptsetup") else {
            return false;
        };
        std::fs::write(image, b"").unwrap();
        std::fs::File::options()
            .write(true)
            .open(image)
            .unwrap()
            .set_len(20 << 20)
            .unwrap();
        let mut child = std::process::Command::new(cryptsetup)
            .args([
                "luksFormat",
                "--batch-mode",
                "--key-file=-",
                "--pbkdf-force-iterations",
                "1000",
            ])
            .args(args)
            .arg(image)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"passphrase")
            .unwrap();
        assert!(child.wait().unwrap().success());
        true
    }

    /// `cryptsetup luksDump`'s cipher and mode: LUKS1 prints them apart, LUKS2 as the
    /// data segment's `cipher:` line.
    fn dumped_cipher(image: &Path) -> (String, String) {
        let dump = tool_stdout("cryptsetup", &["luksDump", image.to_str().unwrap()]);
        let field = |key: &str| {
            dump.lines()
                .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_owned()))
        };
        match (field("Cipher name:"), field("Cipher mode:")) {
            (Some(name), Some(mode)) => (name, mode),
            _ => {
                let both = field("cipher:").unwrap();
                let (c, m) = both.split_once('-').unwrap();
                (c.to_owned(), m.to_owned())
            }
        }
    }

    #[test]
    fn luks_headers_agree_with_cryptsetup_and_mappings_are_found() {
        let f = Fixture::new();
        let luks2 = f.node("loop8");
        let luks1 = f.node("loop9");
        if !luks_format(
            &luks2,
            &["--type", "luks2", "--pbkdf", "pbkdf2", "--label", "oxq"],
        ) {
            return;
        }
        assert!(luks_format(
            &luks1,
            &[
                "--type",
                "luks1",
                "--cipher",
                "aes-cbc-essiv:sha256",
                "--key-size",
                "256"
            ]
        ));
        for (image, version) in [(&luks2, 2), (&luks1, 1)] {
            let start = block::read_start(image).unwrap();
            let (v, cipher, mode) = luks_cipher(&start).unwrap();
            assert_eq!(v, version);
            assert_eq!((cipher, mode), dumped_cipher(image), "{}", image.display());
            // Cut headers: no answer, no panic.
            for cut in [0, 5, 7, 40, 71, 4096, 4200, start.len() / 2] {
                let _ = luks_cipher(&start[..cut.min(start.len())]);
            }
        }
        let cut_json = &block::read_start(&luks2).unwrap()[..4150];
        assert_eq!(luks_cipher(cut_json), None, "JSON cut short");

        // dm-0: LUKS2 mapping on loop8; dm-1: LUKS1 mapping on loop9; dm-2: an LVM
        // volume on dm-0; dm-3: a plain mapping; vdz: not encrypted.
        let virt = f.dir.path().join("sys/devices/virtual/block");
        for name in ["loop8", "loop9"] {
            f.add_device(&virt.join(name), &[("size", "40960\n")]);
        }
        f.add_device(
            &virt.join("dm-0"),
            &[
                (
                    "dm/uuid",
                    "CRYPT-LUKS2-88ae14a55f32482485d20519b8ece422-cr\n",
                ),
                ("slaves/loop8", ""),
            ],
        );
        f.add_device(
            &virt.join("dm-1"),
            &[
                (
                    "dm/uuid",
                    "CRYPT-LUKS1-95c9ef8edfb642c7bd52d9eb0b325ab8-old\n",
                ),
                ("slaves/loop9", ""),
            ],
        );
        f.add_device(
            &virt.join("dm-2"),
            &[("dm/uuid", "LVM-abcdef\n"), ("slaves/dm-0", "")],
        );
        f.add_device(
            &virt.join("dm-3"),
            &[("dm/uuid", "CRYPT-PLAIN-swap\n"), ("slaves/vdz1", "")],
        );
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        scan(&ctx, &mut rows, &f.devices).unwrap();
        let got: Vec<(String, Value, String, String)> = rows
            .iter()
            .map(|r| {
                let name = text(&r[Col::name as usize]);
                let name = name.rsplit('/').next().unwrap().to_owned();
                (
                    name,
                    r[Col::encrypted as usize].clone(),
                    text(&r[Col::r#type as usize]),
                    text(&r[Col::encryption_status as usize]),
                )
            })
            .collect();
        let enc = |n: &str, t: &str| {
            (
                n.to_owned(),
                Value::Integer(1),
                t.to_owned(),
                "encrypted".to_owned(),
            )
        };
        let plain = |n: &str| {
            (
                n.to_owned(),
                Value::Integer(0),
                String::new(),
                "not encrypted".to_owned(),
            )
        };
        assert_eq!(
            got,
            vec![
                enc("dm-0", "LUKS2-aes-xts-plain64"),
                enc("dm-1", "LUKS1-aes-cbc-essiv:sha256"),
                enc("dm-2", "LUKS2-aes-xts-plain64"),
                enc("dm-3", "PLAIN"),
                plain("loop8"),
                plain("loop9"),
                plain("vdz"),
                plain("vdz1"),
            ]
        );
        // The LUKS image's own UUID, as blkid reads it.
        let loop8 = rows
            .iter()
            .find(|r| text(&r[0]).ends_with("loop8"))
            .unwrap();
        let dump = tool_stdout("cryptsetup", &["luksUUID", luks2.to_str().unwrap()]);
        assert_eq!(text(&loop8[Col::uuid as usize]), dump.trim());

        // `name =` reads only that device.
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::name,
            Op::Eq,
            f.devices.node_of("dm-2"),
        );
        let mut rows = Rows::for_context(&ctx);
        scan(&ctx, &mut rows, &f.devices).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            text(&rows.iter().next().unwrap()[Col::r#type as usize]),
            "LUKS2-aes-xts-plain64"
        );
    }

    /// On the host: one row per block device, dm-crypt mappings (dm/uuid CRYPT-) and
    /// only they or their children encrypted.
    #[test]
    fn live_devices() {
        let rows = crate::testing::scan_everything(&SPEC, generate);
        let devices = BlockDevices::default();
        assert_eq!(rows.len(), devices.names().len());
        for r in rows.iter() {
            let name = text(&r[Col::name as usize]);
            let dev = devices.device_for_node(&name).unwrap();
            let is_crypt = dev.dm_uuid().is_some_and(|u| u.starts_with("CRYPT-"));
            if is_crypt {
                assert_eq!(r[Col::encrypted as usize], Value::Integer(1), "{name}");
            }
        }
    }
}
