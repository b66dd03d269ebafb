//! `memory_devices`: the SMBIOS Memory Device structures (type 17), one row per memory
//! slot or soldered device.
//!
//! Decoding follows osquery's, with two differences that make the columns mean what
//! they say: `size` is in MB also when the firmware gives it in KB (bit 15 of the size
//! word; osquery shows the raw word) and fields the structure is too short to hold (an
//! older SMBIOS version) are NULL instead of the whole row being dropped. Speeds come
//! from the SMBIOS 3.3 extended fields when the word says "see extended".

use super::smbios;
use oxquery_sys::smbios::Structure;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "memory_devices",
    description: "Memory devices (DIMM slots and soldered memory) from the SMBIOS Memory Device structures (type 17), one row each, empty slots included (size 0). No rows without SMBIOS tables (see smbios_tables).",
    columns: {
        handle: Text [] "Handle of the structure, 0x and four hex digits",
        array_handle: Text [] "Handle of the memory array (memory_arrays) the device belongs to",
        form_factor: Text [] "Form factor, such as DIMM or SODIMM",
        total_width: Integer [] "Total width in bits, error-correction bits included; NULL if unknown",
        data_width: Integer [] "Data width in bits; NULL if unknown",
        size: Integer [] "Size in MB; 0 for an empty slot, NULL if unknown",
        set: Integer [] "Number of the set of devices that must be populated together; 0 for none, NULL if unknown",
        device_locator: Text [] "Label of the socket or board position holding the device",
        bank_locator: Text [] "Label of the bank holding the device",
        memory_type: Text [] "Memory type, such as DDR4 or DDR5",
        memory_type_details: Text [] "Type details (Synchronous, Registered (Buffered), ...), space-separated",
        max_speed: Integer [] "Maximum speed in megatransfers per second (MT/s); NULL if unknown",
        configured_clock_speed: Integer [] "Configured speed in MT/s; NULL if unknown",
        manufacturer: Text [] "Manufacturer",
        serial_number: Text [] "Serial number",
        asset_tag: Text [] "Asset tag",
        part_number: Text [] "Manufacturer's part number",
        min_voltage: Integer [] "Minimum operating voltage in millivolts; NULL if unknown",
        max_voltage: Integer [] "Maximum operating voltage in millivolts; NULL if unknown",
        configured_voltage: Integer [] "Configured voltage in millivolts; NULL if unknown",
    },
    examples: ["select device_locator, size, memory_type, max_speed from memory_devices where size > 0"],
}

const MEMORY_DEVICE: u8 = 17;

const FORM_FACTORS: &[(u8, &str)] = &[
    (0x01, "Other"),
    (0x02, "Unknown"),
    (0x03, "SIMM"),
    (0x04, "SIP"),
    (0x05, "Chip"),
    (0x06, "DIP"),
    (0x07, "ZIP"),
    (0x08, "Proprietary Card"),
    (0x09, "DIMM"),
    (0x0A, "TSOP"),
    (0x0B, "Row of chips"),
    (0x0C, "RIMM"),
    (0x0D, "SODIMM"),
    (0x0E, "SRIMM"),
    (0x0F, "FB-DIMM"),
    (0x10, "Die"),
    (0x11, "CAMM"),
];

const MEMORY_TYPES: &[(u8, &str)] = &[
    (0x01, "Other"),
    (0x02, "Unknown"),
    (0x03, "DRAM"),
    (0x04, "EDRAM"),
    (0x05, "VRAM"),
    (0x06, "SRAM"),
    (0x07, "RAM"),
    (0x08, "ROM"),
    (0x09, "FLASH"),
    (0x0A, "EEPROM"),
    (0x0B, "FEPROM"),
    (0x0C, "EPROM"),
    (0x0D, "CDRAM"),
    (0x0E, "3DRAM"),
    (0x0F, "SDRAM"),
    (0x10, "SGRAM"),
    (0x11, "RDRAM"),
    (0x12, "DDR"),
    (0x13, "DDR2"),
    (0x14, "DDR2 FB-DIMM"),
    (0x15, "RESERVED"),
    (0x16, "RESERVED"),
    (0x17, "RESERVED"),
    (0x18, "DDR3"),
    (0x19, "FBD2"),
    (0x1A, "DDR4"),
    (0x1B, "LPDDR"),
    (0x1C, "LPDDR2"),
    (0x1D, "LPDDR3"),
    (0x1E, "LPDDR4"),
    (0x1F, "Logical non-volatile device"),
    (0x20, "HBM"),
    (0x21, "HBM2"),
    (0x22, "DDR5"),
    (0x23, "LPDDR5"),
    (0x24, "HBM3"),
];

/// Names of the type detail bits, bit 0 first.
const TYPE_DETAILS: [&str; 16] = [
    "Reserved",
    "Other",
    "Unknown",
    "Fast-paged",
    "Static column",
    "Pseudo-static",
    "RAMBUS",
    "Synchronous",
    "CMOS",
    "EDO",
    "Window DRAM",
    "Cache DRAM",
    "Non-volatile",
    "Registered (Buffered)",
    "Unbuffered (Unregistered)",
    "LRDIMM",
];

/// The names of the bits set in `bits`, space-separated.
fn type_details(bits: u16) -> String {
    let names: Vec<&str> = (0..16)
        .filter(|i| bits & (1 << i) != 0)
        .map(|i| TYPE_DETAILS[i])
        .collect();
    names.join(" ")
}

/// The size in MB: the size word (MB, or KB with bit 15), or the extended size
/// (MB) when the word is 0x7FFF.
fn size_mb(s: &Structure) -> Option<i64> {
    match s.word(0x0C)? {
        0xFFFF => None,
        0x7FFF => s.dword(0x1C).map(|mb| i64::from(mb & 0x7FFF_FFFF)),
        kb if kb & 0x8000 != 0 => Some(i64::from(kb & 0x7FFF) / 1024),
        mb => Some(i64::from(mb)),
    }
}

/// A speed word (MT/s), or the extended speed when the word is 0xFFFF; 0 is unknown.
fn speed(s: &Structure, word_at: usize, extended_at: usize) -> Option<i64> {
    let speed = match s.word(word_at)? {
        0xFFFF => s.dword(extended_at)?,
        w => u32::from(w),
    };
    (speed != 0).then_some(i64::from(speed))
}

pub(super) fn generate_at(dir: &Path, _ctx: &QueryContext, rows: &mut Rows) {
    smbios::for_each_structure_of(&SPEC, dir, MEMORY_DEVICE, |s| {
        let text = |at| s.text(at).unwrap_or_default();
        let width = |at| s.word(at).filter(|w| *w != 0xFFFF).map(i64::from);
        let millivolts = |at| s.word(at).filter(|v| *v != 0).map(i64::from);
        let mut row = rows.row();
        row.set(Col::handle, smbios::handle(s.handle));
        row.set(Col::array_handle, s.word(0x04).map(smbios::handle));
        row.set(
            Col::form_factor,
            s.byte(0x0E).and_then(|c| smbios::name(FORM_FACTORS, c)),
        );
        row.set(Col::total_width, width(0x08));
        row.set(Col::data_width, width(0x0A));
        row.set(Col::size, size_mb(s));
        row.set(Col::set, s.byte(0x0F).filter(|b| *b != 0xFF).map(i64::from));
        row.set(Col::device_locator, text(0x10));
        row.set(Col::bank_locator, text(0x11));
        row.set(
            Col::memory_type,
            s.byte(0x12).and_then(|c| smbios::name(MEMORY_TYPES, c)),
        );
        row.set(Col::memory_type_details, s.word(0x13).map(type_details));
        row.set(Col::max_speed, speed(s, 0x15, 0x54));
        row.set(Col::configured_clock_speed, speed(s, 0x20, 0x58));
        row.set(Col::manufacturer, text(0x17));
        row.set(Col::serial_number, text(0x18));
        row.set(Col::asset_tag, text(0x19));
        row.set(Col::part_number, text(0x1A));
        row.set(Col::min_voltage, millivolts(0x22));
        row.set(Col::max_voltage, millivolts(0x24));
        row.set(Col::configured_voltage, millivolts(0x26));
    });
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    smbios::generate_from_firmware(generate_at, ctx, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::smbios::testing::*;
    use oxquery_table::Value;

    /// dmidecode's text for a numeric field ("2666 MT/s", "1.2 V", "72 bits") as our
    /// integer, `None` for Unknown / absent.
    fn number(field: Option<&str>, unit: &str) -> Option<i64> {
        let v = field?.strip_suffix(unit)?.trim();
        if unit == " V" {
            return Some((v.parse::<f64>().unwrap() * 1000.0).round() as i64);
        }
        Some(v.parse().unwrap())
    }

    #[test]
    fn agrees_with_dmidecode() {
        for version3 in [true, false] {
            let f = fixture(&sample_machine(), version3);
            let rows = rows_from(&SPEC, &f.sysfs(), generate_at);
            assert_eq!(rows.len(), 3);
            let c = |r: &Vec<Value>, col: Col| cell_text(r, col as usize);
            let n = |r: &Vec<Value>, col: Col| r[col as usize].as_i64();
            // What the fixture holds, stated directly.
            assert_eq!(n(&rows[0], Col::size), Some(16384));
            assert_eq!(n(&rows[1], Col::size), Some(65536));
            assert_eq!(n(&rows[2], Col::size), Some(2));
            assert_eq!(n(&rows[1], Col::max_speed), Some(8000));
            assert_eq!(
                c(&rows[0], Col::memory_type_details).as_deref(),
                Some("Synchronous Registered (Buffered)")
            );
            assert_eq!(c(&rows[2], Col::manufacturer).as_deref(), Some(""));
            assert_eq!(
                n(&rows[2], Col::configured_clock_speed),
                None,
                "2.3 layout has no such field"
            );
            let Some(theirs) = dmidecode_of(&f, MEMORY_DEVICE) else {
                return;
            };
            assert_eq!(theirs.len(), rows.len());
            for (row, rec) in rows.iter().zip(theirs) {
                let get = |k: &str| rec.get(k);
                assert_eq!(
                    hex_value(&c(row, Col::handle).unwrap()),
                    u64::from(rec.handle)
                );
                assert_eq!(
                    hex_value(&c(row, Col::array_handle).unwrap()),
                    hex_value(get("Array Handle").unwrap())
                );
                let size = match get("Size").unwrap() {
                    "No Module Installed" => Some(0),
                    "Unknown" => None,
                    s => Some(dmidecode_size_mb(s)),
                };
                assert_eq!(n(row, Col::size), size, "{rec:?}");
                assert_eq!(
                    n(row, Col::total_width),
                    number(get("Total Width"), " bits")
                );
                assert_eq!(n(row, Col::data_width), number(get("Data Width"), " bits"));
                assert_eq!(
                    c(row, Col::form_factor).map(|s| s.to_lowercase()),
                    get("Form Factor").map(str::to_lowercase)
                );
                let set = match get("Set").unwrap() {
                    "None" => Some(0),
                    "Unknown" => None,
                    s => Some(s.parse().unwrap()),
                };
                assert_eq!(n(row, Col::set), set);
                for (col, key) in [
                    (Col::device_locator, "Locator"),
                    (Col::bank_locator, "Bank Locator"),
                    (Col::manufacturer, "Manufacturer"),
                    (Col::serial_number, "Serial Number"),
                    (Col::asset_tag, "Asset Tag"),
                    (Col::part_number, "Part Number"),
                ] {
                    // dmidecode says "Not Specified" for string 0; osquery and we say ''.
                    let theirs = get(key).map(|v| {
                        if v == "Not Specified" {
                            ""
                        } else {
                            v.trim_end()
                        }
                    });
                    assert_eq!(c(row, col).as_deref(), Some(theirs.unwrap_or("")), "{key}");
                }
                assert_eq!(c(row, Col::memory_type).as_deref(), get("Type"));
                assert_eq!(
                    c(row, Col::memory_type_details).map(|s| s.to_lowercase()),
                    get("Type Detail").map(|s| s.replace("None", "").to_lowercase())
                );
                assert_eq!(n(row, Col::max_speed), number(get("Speed"), " MT/s"));
                assert_eq!(
                    n(row, Col::configured_clock_speed),
                    number(get("Configured Memory Speed"), " MT/s")
                );
                assert_eq!(
                    n(row, Col::min_voltage),
                    number(get("Minimum Voltage"), " V")
                );
                assert_eq!(
                    n(row, Col::max_voltage),
                    number(get("Maximum Voltage"), " V")
                );
                assert_eq!(
                    n(row, Col::configured_voltage),
                    number(get("Configured Voltage"), " V")
                );
            }
        }
    }
}
