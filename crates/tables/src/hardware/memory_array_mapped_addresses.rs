//! `memory_array_mapped_addresses`: the SMBIOS Memory Array Mapped Address structures
//! (type 19).
//!
//! Addresses are in kilobytes, as the column descriptions (osquery's) say, also when
//! they come from the SMBIOS 2.7 extended fields, which hold bytes: osquery shows those
//! bytes unconverted; we divide by 1024 so that the unit never depends on the size.

use super::smbios;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "memory_array_mapped_addresses",
    description: "Ranges of physical addresses mapped to each memory array, from the SMBIOS Memory Array Mapped Address structures (type 19). No rows without SMBIOS tables (see smbios_tables).",
    columns: {
        handle: Text [] "Handle of the structure, 0x and four hex digits",
        memory_array_handle: Text [] "Handle of the memory array (memory_arrays) the range is mapped to",
        starting_address: Text [] "Physical address of the first kilobyte of the range, in kilobytes, 0x and at least eight hex digits",
        ending_address: Text [] "Physical address of the last kilobyte of the range, in kilobytes, 0x and at least eight hex digits",
        partition_width: Integer [] "Number of memory devices forming one row of memory in this range",
    },
    examples: ["select memory_array_handle, starting_address, ending_address from memory_array_mapped_addresses"],
}

const MEMORY_ARRAY_MAPPED_ADDRESS: u8 = 19;

pub(super) fn generate_at(dir: &Path, _ctx: &QueryContext, rows: &mut Rows) {
    smbios::for_each_structure_of(&SPEC, dir, MEMORY_ARRAY_MAPPED_ADDRESS, |s| {
        let range = smbios::range_kb(s, 0x04, 0x0F);
        let mut row = rows.row();
        row.set(Col::handle, smbios::handle(s.handle));
        row.set(Col::memory_array_handle, s.word(0x0C).map(smbios::handle));
        row.set(Col::starting_address, range.map(|r| smbios::hex(r.0, 8)));
        row.set(Col::ending_address, range.map(|r| smbios::hex(r.1, 8)));
        row.set(Col::partition_width, s.byte(0x0E).map(i64::from));
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
        let c = |r: usize, col: Col| cell_text(&rows[r], col as usize).unwrap();
        assert_eq!(c(0, Col::ending_address), "0x04ffffff");
        assert_eq!(c(1, Col::starting_address), "0x40000000");
        let Some(theirs) = dmidecode_of(&f, MEMORY_ARRAY_MAPPED_ADDRESS) else {
            return;
        };
        assert_eq!(theirs.len(), rows.len());
        for (i, rec) in theirs.iter().enumerate() {
            assert_eq!(hex_value(&c(i, Col::handle)), u64::from(rec.handle));
            assert_eq!(
                hex_value(&c(i, Col::memory_array_handle)),
                hex_value(rec.get("Physical Array Handle").unwrap())
            );
            // dmidecode prints byte addresses: the first byte and the last byte.
            assert_eq!(
                hex_value(&c(i, Col::starting_address)) << 10,
                hex_value(rec.get("Starting Address").unwrap())
            );
            assert_eq!(
                (hex_value(&c(i, Col::ending_address)) << 10) | 0x3FF,
                hex_value(rec.get("Ending Address").unwrap())
            );
            assert_eq!(
                c(i, Col::partition_width),
                rec.get("Partition Width").unwrap()
            );
        }
    }
}
