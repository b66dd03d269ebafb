//! Tables of the `system` domain.

pub mod cpu_time;
pub mod cpuid;
pub mod kernel_info;
pub mod load_average;
pub mod memory_info;
pub mod os_version;
pub mod processes;
pub mod system_info;
pub mod uptime;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    vec![
        &uptime::TABLE,
        &cpu_time::TABLE,
        &cpuid::TABLE,
        &kernel_info::TABLE,
        &load_average::TABLE,
        &memory_info::TABLE,
        &os_version::TABLE,
        &system_info::TABLE,
        &processes::TABLE,
    ]
}
