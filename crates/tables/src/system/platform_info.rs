//! `platform_info`: the system firmware (BIOS/UEFI) from the SMBIOS tables the kernel
//! exports at `/sys/firmware/dmi/tables/DMI`.

use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "platform_info",
    description: "The system firmware as its SMBIOS BIOS Information record describes it. No row when the kernel exports no SMBIOS tables.",
    columns: {
        vendor: Text [] "Firmware vendor",
        version: Text [COLLATE_VERSION] "Firmware version string",
        date: Text [] "Firmware release date as the firmware writes it",
        revision: Text [] "Firmware major.minor release",
        extra: Text [] "Further version details; empty on Linux",
        firmware_type: Text [] "uefi when the kernel booted through EFI, else bios",
        address: Text [] "Segment where the firmware is loaded, in hexadecimal (0x....)",
        size: Text [] "Size of the firmware ROM in bytes",
        volume_size: Integer [] "Size of the firmware volume; 0 on Linux",
    },
    examples: ["select vendor, version, date from platform_info"],
}

const DMI_TABLES: &str = "/sys/firmware/dmi/tables/DMI";
const EFI_DIR: &str = "/sys/firmware/efi";

/// One SMBIOS structure: its formatted bytes (header included) and its strings.
struct Structure<'a> {
    kind: u8,
    formatted: &'a [u8],
    strings: Vec<&'a [u8]>,
}

impl Structure<'_> {
    /// The string a byte at `offset` refers to (1-based; 0 is "none").
    fn string(&self, offset: usize) -> Option<String> {
        let index = usize::from(*self.formatted.get(offset)?);
        let s = self.strings.get(index.checked_sub(1)?)?;
        Some(String::from_utf8_lossy(s).trim().to_owned())
    }
}

/// Splits an SMBIOS table into structures; stops at the end-of-table record or at the
/// first structure that does not fit (truncated input).
fn structures(data: &[u8]) -> Vec<Structure<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= data.len() {
        let kind = data[pos];
        let len = usize::from(data[pos + 1]);
        if len < 4 || pos + len > data.len() {
            break;
        }
        let formatted = &data[pos..pos + len];
        // Strings follow, each NUL-terminated, the set ended by an extra NUL.
        let mut strings = Vec::new();
        let mut p = pos + len;
        let end;
        loop {
            let Some(nul) = data[p.min(data.len())..].iter().position(|b| *b == 0) else {
                return out;
            };
            if nul == 0 {
                // An empty string: the end of the set (two NULs when there are none).
                end = if strings.is_empty() { p + 2 } else { p + 1 };
                break;
            }
            strings.push(&data[p..p + nul]);
            p += nul + 1;
        }
        out.push(Structure {
            kind,
            formatted,
            strings,
        });
        if kind == 127 {
            break;
        }
        pos = end;
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Firmware {
    vendor: Option<String>,
    version: Option<String>,
    date: Option<String>,
    revision: Option<String>,
    address: String,
    size: String,
}

/// The BIOS Information (type 0) records of an SMBIOS table.
fn firmware_records(data: &[u8]) -> Vec<Firmware> {
    structures(data)
        .into_iter()
        .filter(|s| s.kind == 0 && s.formatted.len() >= 0x12)
        .map(|s| {
            let f = s.formatted;
            let segment = u16::from_le_bytes([f[0x06], f[0x07]]);
            // The ROM size byte counts 64 KiB blocks, minus one.
            let size = (u64::from(f[0x09]) + 1) * 64 * 1024;
            let revision = (f.len() >= 0x16).then(|| format!("{}.{}", f[0x14], f[0x15]));
            Firmware {
                vendor: s.string(0x04),
                version: s.string(0x05),
                date: s.string(0x08),
                revision,
                address: format!("0x{segment:04x}"),
                size: size.to_string(),
            }
        })
        .collect()
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let data = match std::fs::read(DMI_TABLES) {
        Ok(d) => d,
        Err(e) => {
            log::info!("platform_info: cannot read {DMI_TABLES} ({e}): no SMBIOS tables exported");
            return Ok(());
        }
    };
    let firmware_type = if Path::new(EFI_DIR).is_dir() {
        "uefi"
    } else {
        "bios"
    };
    for fw in firmware_records(&data) {
        let mut row = rows.row();
        row.set(Col::vendor, fw.vendor);
        row.set(Col::version, fw.version);
        row.set(Col::date, fw.date);
        row.set(Col::revision, fw.revision);
        row.set(Col::extra, "");
        row.set(Col::firmware_type, firmware_type);
        row.set(Col::address, fw.address);
        row.set(Col::size, fw.size);
        row.set(Col::volume_size, 0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::Host;

    /// A BIOS record as firmware writes it, then a type-1 record and the end marker.
    fn fixture() -> Vec<u8> {
        let mut t = vec![
            0u8, 0x18, 0x00, 0x00, // type 0, length 0x18, handle 0
            1, 2, // vendor string 1, version string 2
            0x00, 0xe8, // segment 0xe800
            3,    // date string 3
            0x0f, // ROM size: 16 blocks of 64 KiB
        ];
        t.extend_from_slice(&[0; 8]); // characteristics
        t.extend_from_slice(&[0, 0]); // extension bytes
        t.extend_from_slice(&[4, 2]); // release 4.2
        t.extend_from_slice(&[0xff, 0xff]); // controller release
        t.extend_from_slice(b"Acme Corp\0v1.23 \0 03/04/2021\0\0");
        t.extend_from_slice(&[1, 4, 1, 0, 0, 0]); // type 1 with no strings
        t.extend_from_slice(&[127, 4, 2, 0, 0, 0]);
        t
    }

    #[test]
    fn decodes_the_bios_record() {
        let got = firmware_records(&fixture());
        assert_eq!(
            got,
            vec![Firmware {
                vendor: Some("Acme Corp".into()),
                version: Some("v1.23".into()),
                date: Some("03/04/2021".into()),
                revision: Some("4.2".into()),
                address: "0xe800".into(),
                size: (16 * 65536).to_string(),
            }]
        );
    }

    #[test]
    fn truncated_or_garbage_tables_never_panic() {
        let t = fixture();
        for cut in 0..t.len() {
            let _ = firmware_records(&t[..cut]);
        }
        let garbage: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 256) as u8).collect();
        let _ = firmware_records(&garbage);
        assert!(firmware_records(&[0, 0x30, 0, 0]).is_empty());
    }

    #[test]
    fn live_row_exists_exactly_when_smbios_does() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        if !Path::new(DMI_TABLES).exists() {
            assert!(rows.is_empty());
            return;
        }
        // The kernel's own decoding of the same record, when readable.
        if let Ok(vendor) = std::fs::read_to_string("/sys/class/dmi/id/bios_vendor") {
            let row = rows.get(0).expect("a BIOS record");
            assert_eq!(
                row[Col::vendor as usize],
                oxquery_table::Value::Text(vendor.trim().into())
            );
        }
    }
}
