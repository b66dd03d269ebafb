//! Tables of the `hardware` domain: buses and devices (PCI, USB, block, RAID), firmware
//! (SMBIOS, ACPI, EFI), CPU registers and drive health.
//!
//! Where the hardware or firmware is absent (a VM without SMART, MSR, EFI), a table gives
//! no rows and says why at verbose level.

pub mod block_devices;
pub mod disk_encryption;
pub mod md_devices;
pub mod md_drives;
pub mod md_personalities;
pub mod pci_devices;
pub mod usb_devices;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    #[allow(unused_mut)]
    let mut tables: Vec<&'static TableDef> = Vec::new();
    tables.extend([
        &block_devices::TABLE,
        &disk_encryption::TABLE,
        &md_devices::TABLE,
        &md_drives::TABLE,
        &md_personalities::TABLE,
        &pci_devices::TABLE,
        &usb_devices::TABLE,
    ]);
    tables
}
