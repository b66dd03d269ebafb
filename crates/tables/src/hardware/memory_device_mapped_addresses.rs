//! `memory_device_mapped_addresses`: the SMBIOS Memory Device Mapped Address structures
//! (type 20).
//!
//! Addresses are in kilobytes, also when they come from the SMBIOS 2.7 extended (byte)
//! fields, as in `memory_array_mapped_addresses` (osquery shows those bytes as they are).

use super::smbios;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "memory_device_mapped_addresses",
    description: "Ranges of physical addresses mapped to each memory device, from the SMBIOS Memory Device Mapped Address structures (type 20). No rows without SMBIOS tables (see smbios_tables).",
    columns: {
        handle: Text [] "Handle of the structure, 0x and four hex digits",
        memory_device_handle: Text [] "Handle of the memory device (memory_devices) the range is mapped to",
        memory_array_mapped_address_handle: Text [] "Handle of the array range (memory_array_mapped_addresses) this device range belongs to",
        starting_address: Text [] "Physical address of the first kilobyte of the range, in kilobytes, 0x and at least eight hex digits",
        ending_address: Text [] "Physical address of the last kilobyte of the range, in kilobytes, 0x and at least eight hex digits",
        partition_row_position: Integer [] "Position of the device in a row of the partition; 255 if unknown",
        interleave_position: Integer [] "Position of the device in an interleave: 0 non-interleaved, 1 first, 2 second, ...",
        interleave_data_depth: Integer [] "Rows of the device accessed consecutively in one interleaved transfer; 0 non-interleaved",
    },
    examples: ["select memory_device_handle, starting_address, ending_address from memory_device_mapped_addresses"],
}

const MEMORY_DEVICE_MAPPED_ADDRESS: u8 = 20;

pub(super) fn generate_at(dir: &Path, _ctx: &QueryContext, rows: &mut Rows) {
    smbios::for_each_structure_of(&SPEC, dir, MEMORY_DEVICE_MAPPED_ADDRESS, |s| {
        let range = smbios::range_kb(s, 0x04, 0x13);
        let byte = |at| s.byte(at).map(i64::from);
        let mut row = rows.row();
        row.set(Col::handle, smbios::handle(s.handle));
        row.set(Col::memory_device_handle, s.word(0x0C).map(smbios::handle));
        row.set(
            Col::memory_array_mapped_address_handle,
            s.word(0x0E).map(smbios::handle),
        );
        row.set(Col::starting_address, range.map(|r| smbios::hex(r.0, 8)));
        row.set(Col::ending_address, range.map(|r| smbios::hex(r.1, 8)));
        row.set(Col::partition_row_position, byte(0x10));
        row.set(Col::interleave_position, byte(0x11));
        row.set(Col::interleave_data_depth, byte(0x12));
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
        let f = fixture(&sample_machine(), false);
        let rows = rows_from(&SPEC, &f.sysfs(), generate_at);
        assert_eq!(rows.len(), 2);
        let c = |r: usize, col: Col| cell_text(&rows[r], col as usize).unwrap();
        assert_eq!(c(1, Col::ending_address), "0x43ffffff");
        let Some(theirs) = dmidecode_of(&f, MEMORY_DEVICE_MAPPED_ADDRESS) else {
            return;
        };
        assert_eq!(theirs.len(), rows.len());
        for (i, rec) in theirs.iter().enumerate() {
            let get = |k: &str| rec.get(k).unwrap_or_else(|| panic!("{k} in {rec:?}"));
            assert_eq!(hex_value(&c(i, Col::handle)), u64::from(rec.handle));
            assert_eq!(
                hex_value(&c(i, Col::memory_device_handle)),
                hex_value(get("Physical Device Handle"))
            );
            assert_eq!(
                hex_value(&c(i, Col::memory_array_mapped_address_handle)),
                hex_value(get("Memory Array Mapped Address Handle"))
            );
            assert_eq!(
                hex_value(&c(i, Col::starting_address)) << 10,
                hex_value(get("Starting Address"))
            );
            assert_eq!(
                (hex_value(&c(i, Col::ending_address)) << 10) | 0x3FF,
                hex_value(get("Ending Address"))
            );
            let row_position = get("Partition Row Position");
            assert_eq!(
                c(i, Col::partition_row_position),
                if row_position == "Unknown" {
                    "255"
                } else {
                    row_position
                }
            );
            assert_eq!(c(i, Col::interleave_position), get("Interleave Position"));
            assert_eq!(
                c(i, Col::interleave_data_depth),
                get("Interleaved Data Depth")
            );
        }
    }
}
