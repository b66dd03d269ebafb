//! Tables of the `hardware` domain: buses and devices (PCI, USB, block, RAID), firmware
//! (SMBIOS, ACPI, EFI), CPU registers and drive health.
//!
//! Where the hardware or firmware is absent (a VM without SMART, MSR, EFI), a table gives
//! no rows and says why at verbose level.

use oxquery_table::TableDef;

pub mod acpi_tables;
pub mod certificates;
/// EFI variables, shared by `secureboot` and `secureboot_certificates`.
mod efivars;
pub mod intel_me_info;
pub mod msr;
pub mod secureboot;
pub mod secureboot_certificates;
pub mod smart_drive_info;
/// X.509 facts shared by `certificates` and `secureboot_certificates`.
mod x509;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    #[allow(unused_mut)]
    let mut tables: Vec<&'static TableDef> = Vec::new();
    tables.extend([
        &acpi_tables::TABLE,
        &certificates::TABLE,
        &intel_me_info::TABLE,
        &msr::TABLE,
        &secureboot::TABLE,
        &secureboot_certificates::TABLE,
        &smart_drive_info::TABLE,
    ]);
    tables
}
