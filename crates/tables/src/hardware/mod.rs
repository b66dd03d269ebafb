//! Tables of the `hardware` domain: buses and devices (PCI, USB, block, RAID), firmware
//! (SMBIOS, ACPI, EFI), CPU registers, drive health and the system's certificates.
//!
//! Where the hardware or firmware is absent (a VM without SMART, MSR, EFI), a table gives
//! no rows and says why at verbose level.

pub mod acpi_tables;
pub mod block_devices;
/// The sysfs bus walk and id naming shared by `pci_devices` and `usb_devices`.
mod bus_devices;
pub mod certificates;
pub mod disk_encryption;
/// EFI variables, shared by `secureboot` and `secureboot_certificates`.
mod efivars;
pub mod intel_me_info;
/// `/proc/mdstat` reading shared by the md (software RAID) tables.
mod md;
pub mod md_devices;
pub mod md_drives;
pub mod md_personalities;
pub mod memory_array_mapped_addresses;
pub mod memory_arrays;
pub mod memory_device_mapped_addresses;
pub mod memory_devices;
pub mod memory_error_info;
pub mod msr;
pub mod oem_strings;
pub mod pci_devices;
pub mod secureboot;
pub mod secureboot_certificates;
pub mod smart_drive_info;
pub(crate) mod smbios;
pub mod smbios_tables;
pub mod usb_devices;
/// X.509 facts shared by `certificates` and `secureboot_certificates`.
pub(crate) mod x509;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    let mut tables: Vec<&'static TableDef> = Vec::new();
    // Buses and devices.
    tables.extend([
        &block_devices::TABLE,
        &disk_encryption::TABLE,
        &md_devices::TABLE,
        &md_drives::TABLE,
        &md_personalities::TABLE,
        &pci_devices::TABLE,
        &smart_drive_info::TABLE,
        &usb_devices::TABLE,
    ]);
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
    // Other firmware, CPU registers and trust stores.
    tables.extend([
        &acpi_tables::TABLE,
        &certificates::TABLE,
        &intel_me_info::TABLE,
        &msr::TABLE,
        &secureboot::TABLE,
        &secureboot_certificates::TABLE,
    ]);
    tables
}
