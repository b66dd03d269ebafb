//! Tables of the `hardware` domain: buses and devices (PCI, USB, block, RAID), firmware
//! (SMBIOS, ACPI, EFI), CPU registers and drive health.
//!
//! Where the hardware or firmware is absent (a VM without SMART, MSR, EFI), a table gives
//! no rows and says why at verbose level.

use oxquery_table::TableDef;

pub mod memory_array_mapped_addresses;
pub mod memory_arrays;
pub mod memory_device_mapped_addresses;
pub mod memory_devices;
pub mod memory_error_info;
pub mod oem_strings;
pub(crate) mod smbios;
pub mod smbios_tables;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    #[allow(unused_mut)]
    let mut tables: Vec<&'static TableDef> = Vec::new();
    // SMBIOS (firmware) tables.
    tables.extend([
        &memory_array_mapped_addresses::TABLE,
        &memory_arrays::TABLE,
        &memory_device_mapped_addresses::TABLE,
        &memory_devices::TABLE,
        &memory_error_info::TABLE,
        &oem_strings::TABLE,
        &smbios_tables::TABLE,
    ]);
    tables
}
