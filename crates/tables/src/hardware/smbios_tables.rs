//! `smbios_tables`: every structure of the firmware's SMBIOS table, one row each.

use super::smbios;
use oxquery_sys::digest::{Hasher, Wanted};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "smbios_tables",
    description: "Structures of the firmware's SMBIOS (DMI) table from /sys/firmware/dmi/tables, one row each in table order, up to and including End-of-Table. No rows where the firmware exports no SMBIOS (many virtual machines, non-x86 boards) or when not run as root (the kernel lets only root read the table).",
    columns: {
        number: Integer [] "Position of the structure in the table, from 0",
        r#type: Integer [] "SMBIOS structure type (0 BIOS, 4 processor, 17 memory device, ...)",
        description: Text [] "Name of the structure type, Unknown for types SMBIOS does not define",
        handle: Integer [] "Handle of the structure, as a number",
        header_size: Integer [] "Length of the formatted area in bytes (header included)",
        size: Integer [] "Length of the whole structure in bytes: formatted area, strings and the terminating NULs",
        md5: Text [] "MD5 of the whole structure's bytes",
    },
    examples: ["select type, description, handle, size from smbios_tables"],
}

/// Names of the structure types (DSP0134 and osquery's list).
const TYPE_NAMES: &[(u8, &str)] = &[
    (0, "BIOS Information"),
    (1, "System Information"),
    (2, "Base Board or Module Information"),
    (3, "System Enclosure or Chassis"),
    (4, "Processor Information"),
    (5, "Memory Controller Information"),
    (6, "Memory Module Information"),
    (7, "Cache Information"),
    (8, "Port Connector Information"),
    (9, "System Slots"),
    (10, "On Board Devices Information"),
    (11, "OEM Strings"),
    (12, "System Configuration Options"),
    (13, "BIOS Language Information"),
    (14, "Group Associations"),
    (15, "System Event Log"),
    (16, "Physical Memory Array"),
    (17, "Memory Device"),
    (18, "32-bit Memory Error Information"),
    (19, "Memory Array Mapped Address"),
    (20, "Memory Device Mapped Address"),
    (21, "Built-in Pointing Device"),
    (22, "Portable Battery"),
    (23, "System Reset"),
    (24, "Hardware Security"),
    (25, "System Power Controls"),
    (26, "Voltage Probe"),
    (27, "Cooling Device"),
    (28, "Temperature Probe"),
    (29, "Electrical Current Probe"),
    (30, "Out-of-Band Remote Access"),
    (31, "Boot Integrity Services"),
    (32, "System Boot Information"),
    (33, "64-bit Memory Error Information"),
    (34, "Management Device"),
    (35, "Management Device Component"),
    (36, "Management Device Threshold Data"),
    (37, "Memory Channel"),
    (38, "IPMI Device Information"),
    (39, "System Power Supply"),
    (40, "Additional Information"),
    (41, "Onboard Devices Extended Info"),
    (126, "Inactive"),
    (127, "End-of-Table"),
    (130, "Memory SPD Data"),
    (131, "OEM Processor Type"),
    (132, "OEM Processor Bus Speed"),
];

pub(super) fn generate_at(dir: &Path, _ctx: &QueryContext, rows: &mut Rows) {
    smbios::for_each_structure(&SPEC, dir, |s| {
        let mut row = rows.row();
        row.set(Col::number, s.index);
        row.set(Col::r#type, i64::from(s.kind));
        row.set(
            Col::description,
            smbios::name(TYPE_NAMES, s.kind).unwrap_or("Unknown"),
        );
        row.set(Col::handle, i64::from(s.handle));
        row.set(Col::header_size, s.formatted.len());
        row.set(Col::size, s.raw.len());
        row.set_with(Col::md5, || {
            let mut h = Hasher::new(Wanted {
                md5: true,
                ..Wanted::default()
            });
            h.update(s.raw);
            h.finish().md5
        });
    });
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    smbios::generate_from_firmware(generate_at, ctx, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::capture_log;
    use crate::hardware::smbios::testing::*;
    use crate::testing::text;
    use oxquery_table::Value;

    #[test]
    fn agrees_with_dmidecode_and_md5sum() {
        for version3 in [true, false] {
            let machine = sample_machine();
            let f = fixture(&machine, version3);
            let rows = rows_from(&SPEC, &f.sysfs(), generate_at);
            assert_eq!(rows.len(), machine.len());
            let sizes: i64 = rows
                .iter()
                .map(|r| r[Col::size as usize].as_i64().unwrap())
                .sum();
            assert_eq!(sizes as usize, f.table.len());
            // The digest of each structure's bytes, as md5sum computes it.
            for (row, bytes) in rows.iter().zip(&machine) {
                let file = f.sysfs().join("one");
                std::fs::write(&file, bytes).unwrap();
                let sum = crate::testing::tool_stdout("md5sum", &[file.to_str().unwrap()]);
                assert_eq!(
                    text(&row[Col::md5 as usize]),
                    sum.split(' ').next().unwrap()
                );
            }
            let Some(records) = dmidecode(&f) else { return };
            assert_eq!(records.len(), rows.len());
            for (row, rec) in rows.iter().zip(&records) {
                assert_eq!(
                    row[Col::handle as usize],
                    Value::from(i64::from(rec.handle))
                );
                assert_eq!(row[Col::r#type as usize], Value::from(i64::from(rec.kind)));
                assert_eq!(
                    row[Col::header_size as usize],
                    Value::from(rec.length as i64)
                );
            }
            assert_eq!(text(&rows[6][Col::description as usize]), "Memory Device");
            assert_eq!(rows[6][Col::number as usize], Value::from(6));
        }
    }

    #[test]
    fn no_tables_means_no_rows_and_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let (rows, logged) = capture_log(|| rows_from(&SPEC, dir.path(), generate_at));
        assert!(rows.is_empty());
        assert!(
            logged
                .iter()
                .any(|(l, m)| *l == log::Level::Info && m.contains("no SMBIOS tables")),
            "{logged:?}"
        );
    }

    #[test]
    fn damaged_tables_give_the_intact_structures() {
        let machine = sample_machine();
        let f = fixture(&machine, true);
        // Cut in the middle of the fourth structure: the first three remain.
        let cut = machine[..3].concat().len() + 5;
        std::fs::write(f.sysfs().join("DMI"), &f.table[..cut]).unwrap();
        assert_eq!(rows_from(&SPEC, &f.sysfs(), generate_at).len(), 3);
        // A corrupted entry point: no rows.
        std::fs::write(f.sysfs().join("smbios_entry_point"), b"_SM3_garbage").unwrap();
        assert!(rows_from(&SPEC, &f.sysfs(), generate_at).is_empty());
    }
}
