//! `memory_arrays`: the SMBIOS Physical Memory Array structures (type 16).

use super::smbios;
use oxquery_sys::smbios::Structure;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "memory_arrays",
    description: "Physical memory arrays (groups of memory devices forming an address space, such as the system memory on the board) from the SMBIOS Physical Memory Array structures (type 16). No rows without SMBIOS tables (see smbios_tables).",
    columns: {
        handle: Text [] "Handle of the structure, 0x and four hex digits",
        location: Text [] "Where the array is, such as System board or motherboard",
        r#use: Text [] "What the array is for, such as System memory",
        memory_error_correction: Text [] "Error correction or detection the array supports, such as Multi-bit ECC",
        max_capacity: Integer [] "Maximum capacity of the array in GB (whole GB, rounded down)",
        memory_error_info_handle: Text [] "Handle of the error information structure (memory_error_info) for the array; NULL when none is given or no error was detected",
        number_memory_devices: Integer [] "Number of memory device slots of the array",
    },
    examples: ["select handle, max_capacity, number_memory_devices from memory_arrays"],
}

const MEMORY_ARRAY: u8 = 16;

const LOCATIONS: &[(u8, &str)] = &[
    (0x01, "Other"),
    (0x02, "Unknown"),
    (0x03, "System board or motherboard"),
    (0x04, "ISA add-on card"),
    (0x05, "EISA add-on card"),
    (0x06, "PCI add-on card"),
    (0x07, "MCA add-on card"),
    (0x08, "PCMCIA add-on card"),
    (0x09, "Proprietary add-on card"),
    (0x0A, "NuBus"),
    (0xA0, "PC-98/C20 add-on card"),
    (0xA1, "PC-98/C24 add-on card"),
    (0xA2, "PC-98/E add-on card"),
    (0xA3, "PC-98/Local bus add-on card"),
    (0xA4, "CXL add-on card"),
];

const USES: &[(u8, &str)] = &[
    (0x01, "Other"),
    (0x02, "Unknown"),
    (0x03, "System memory"),
    (0x04, "Video memory"),
    (0x05, "Flash memory"),
    (0x06, "Non-volatile RAM"),
    (0x07, "Cache memory"),
];

const ERROR_CORRECTIONS: &[(u8, &str)] = &[
    (0x01, "Other"),
    (0x02, "Unknown"),
    (0x03, "none"),
    (0x04, "Parity"),
    (0x05, "Single-bit ECC"),
    (0x06, "Multi-bit ECC"),
    (0x07, "CRC"),
];

/// The maximum capacity in GB: the KB double word, or the extended (bytes) quad word
/// when the double word is 0x80000000.
fn max_capacity_gb(s: &Structure) -> Option<i64> {
    match s.dword(0x07)? {
        0x8000_0000 => s.qword(0x0F).map(|bytes| (bytes >> 30) as i64),
        kb => Some(i64::from(kb >> 20)),
    }
}

pub(super) fn generate_at(dir: &Path, _ctx: &QueryContext, rows: &mut Rows) {
    smbios::for_each_structure_of(&SPEC, dir, MEMORY_ARRAY, |s| {
        let mut row = rows.row();
        row.set(Col::handle, smbios::handle(s.handle));
        row.set(
            Col::location,
            s.byte(0x04).and_then(|c| smbios::name(LOCATIONS, c)),
        );
        row.set(Col::r#use, s.byte(0x05).and_then(|c| smbios::name(USES, c)));
        row.set(
            Col::memory_error_correction,
            s.byte(0x06)
                .and_then(|c| smbios::name(ERROR_CORRECTIONS, c)),
        );
        row.set(Col::max_capacity, max_capacity_gb(s));
        // 0xFFFE: not provided; 0xFFFF: no error detected.
        row.set(
            Col::memory_error_info_handle,
            s.word(0x0B).filter(|h| *h < 0xFFFE).map(smbios::handle),
        );
        row.set(Col::number_memory_devices, s.word(0x0D).map(i64::from));
    });
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    smbios::generate_from_firmware(generate_at, ctx, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::smbios::testing::*;

    #[test]
    fn agrees_with_dmidecode() {
        let f = fixture(&sample_machine(), true);
        let rows = rows_from(&SPEC, &f.sysfs(), generate_at);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][Col::max_capacity as usize].as_i64(), Some(512));
        assert_eq!(rows[1][Col::max_capacity as usize].as_i64(), Some(8192));
        let Some(theirs) = dmidecode_of(&f, MEMORY_ARRAY) else {
            return;
        };
        assert_eq!(theirs.len(), rows.len());
        let lower = |v: Option<String>| v.map(|s| s.to_lowercase());
        for (row, rec) in rows.iter().zip(theirs) {
            let c = |col: Col| cell_text(row, col as usize);
            assert_eq!(hex_value(&c(Col::handle).unwrap()), u64::from(rec.handle));
            assert_eq!(
                lower(c(Col::location)),
                lower(rec.get("Location").map(str::to_owned))
            );
            assert_eq!(
                lower(c(Col::r#use)),
                lower(rec.get("Use").map(str::to_owned))
            );
            assert_eq!(
                lower(c(Col::memory_error_correction)),
                lower(rec.get("Error Correction Type").map(str::to_owned))
            );
            assert_eq!(
                row[Col::max_capacity as usize].as_i64().unwrap(),
                dmidecode_size_mb(rec.get("Maximum Capacity").unwrap()) >> 10
            );
            let handle = rec.get("Error Information Handle").unwrap();
            assert_eq!(
                c(Col::memory_error_info_handle).map(|h| hex_value(&h)),
                handle.starts_with("0x").then(|| hex_value(handle))
            );
            assert_eq!(
                c(Col::number_memory_devices),
                rec.get("Number Of Devices").map(str::to_owned)
            );
        }
    }
}
