//! `memory_error_info`: the SMBIOS 32-bit Memory Error Information structures (type 18).

use super::smbios;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "memory_error_info",
    description: "The last memory error the firmware recorded for a memory array or device, from the SMBIOS 32-bit Memory Error Information structures (type 18). No rows without SMBIOS tables (see smbios_tables).",
    columns: {
        handle: Text [] "Handle of the structure, 0x and four hex digits",
        error_type: Text [] "Type of the error, such as OK or Single-bit error",
        error_granularity: Text [] "Granularity to which the error can be resolved (Device level, Memory partition level)",
        error_operation: Text [] "Memory access that caused the error (Read, Write, Partial write)",
        vendor_syndrome: Text [] "Vendor-specific ECC syndrome or CRC of the failed access, 0x and eight hex digits; NULL if unknown",
        memory_array_error_address: Text [] "32-bit physical address of the error on the bus of the array, 0x and eight hex digits; NULL if unknown",
        device_error_address: Text [] "32-bit address of the error relative to the start of the failing memory, in bytes, 0x and eight hex digits; NULL if unknown",
        error_resolution: Text [] "Range in bytes within which the error address is exact, 0x and eight hex digits; NULL if unknown",
    },
    examples: ["select handle, error_type from memory_error_info where error_type != 'OK'"],
}

const MEMORY_ERROR: u8 = 18;

const ERROR_TYPES: &[(u8, &str)] = &[
    (0x01, "Other"),
    (0x02, "Unknown"),
    (0x03, "OK"),
    (0x04, "Bad read"),
    (0x05, "Parity error"),
    (0x06, "Single-bit error"),
    (0x07, "Double-bit error"),
    (0x08, "Multi-bit error"),
    (0x09, "Nibble error"),
    (0x0A, "Checksum error"),
    (0x0B, "CRC error"),
    (0x0C, "Corrected single-bit error"),
    (0x0D, "Corrected error"),
    (0x0E, "Uncorrectable error"),
];

const GRANULARITIES: &[(u8, &str)] = &[
    (0x01, "Other"),
    (0x02, "Unknown"),
    (0x03, "Device level"),
    (0x04, "Memory partition level"),
];

const OPERATIONS: &[(u8, &str)] = &[
    (0x01, "Other"),
    (0x02, "Unknown"),
    (0x03, "Read"),
    (0x04, "Write"),
    (0x05, "Partial write"),
];

/// The value SMBIOS uses for an unknown address or resolution.
const UNKNOWN: u32 = 0x8000_0000;

pub(super) fn generate_at(dir: &Path, _ctx: &QueryContext, rows: &mut Rows) {
    smbios::for_each_structure_of(&SPEC, dir, MEMORY_ERROR, |s| {
        let known = |at, unknown| {
            s.dword(at)
                .filter(|v| *v != unknown)
                .map(|v| smbios::hex(u64::from(v), 8))
        };
        let mut row = rows.row();
        row.set(Col::handle, smbios::handle(s.handle));
        row.set(
            Col::error_type,
            s.byte(0x04).and_then(|c| smbios::name(ERROR_TYPES, c)),
        );
        row.set(
            Col::error_granularity,
            s.byte(0x05).and_then(|c| smbios::name(GRANULARITIES, c)),
        );
        row.set(
            Col::error_operation,
            s.byte(0x06).and_then(|c| smbios::name(OPERATIONS, c)),
        );
        row.set(Col::vendor_syndrome, known(0x07, 0));
        row.set(Col::memory_array_error_address, known(0x0B, UNKNOWN));
        row.set(Col::device_error_address, known(0x0F, UNKNOWN));
        row.set(Col::error_resolution, known(0x13, UNKNOWN));
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
        assert_eq!(rows.len(), 1);
        let c = |col: Col| cell_text(&rows[0], col as usize);
        assert_eq!(c(Col::vendor_syndrome).as_deref(), Some("0xdeadbeef"));
        assert_eq!(c(Col::memory_array_error_address), None);
        let Some(theirs) = dmidecode_of(&f, MEMORY_ERROR) else {
            return;
        };
        assert_eq!(theirs.len(), 1);
        let rec = &theirs[0];
        assert_eq!(hex_value(&c(Col::handle).unwrap()), u64::from(rec.handle));
        for (col, key) in [
            (Col::error_type, "Type"),
            (Col::error_granularity, "Granularity"),
            (Col::error_operation, "Operation"),
        ] {
            assert_eq!(
                c(col).map(|s| s.to_lowercase()),
                rec.get(key).map(str::to_lowercase),
                "{key}"
            );
        }
        for (col, key) in [
            (Col::vendor_syndrome, "Vendor Syndrome"),
            (Col::memory_array_error_address, "Memory Array Address"),
            (Col::device_error_address, "Device Address"),
            (Col::error_resolution, "Resolution"),
        ] {
            let theirs = rec.get(key).unwrap();
            assert_eq!(
                c(col).map(|h| hex_value(&h)),
                (theirs != "Unknown").then(|| hex_value(theirs)),
                "{key}"
            );
        }
    }
}
