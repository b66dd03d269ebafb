//! Tables of the `system` domain.

pub mod apparmor_profiles;
pub mod cgroups;
pub mod cpu_info;
pub mod cpu_time;
pub mod cpuid;
pub mod crontab;
pub mod kernel_info;
pub mod kernel_integrity;
pub mod kernel_keys;
pub mod kernel_modules;
pub mod load_average;
pub mod memory_info;
pub mod memory_map;
pub mod mounts;
pub mod os_version;
pub mod platform_info;
pub mod pressure_stall;
pub mod process_envs;
pub mod process_io;
pub mod process_memory_map;
pub mod process_namespaces;
pub mod process_open_files;
pub mod process_open_pipes;
pub mod processes;
pub mod selinux_settings;
pub mod shared_memory;
pub mod startup_items;
pub mod system_controls;
pub mod system_info;
pub mod systemd_units;
#[cfg(test)]
mod test_children;
pub mod ulimit_info;
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
        &apparmor_profiles::TABLE,
        &cpu_info::TABLE,
        &crontab::TABLE,
        &kernel_integrity::TABLE,
        &kernel_keys::TABLE,
        &kernel_modules::TABLE,
        &mounts::TABLE,
        &platform_info::TABLE,
        &selinux_settings::TABLE,
        &system_controls::TABLE,
        &process_envs::TABLE,
        &process_io::TABLE,
        &cgroups::TABLE,
        &pressure_stall::TABLE,
        &process_memory_map::TABLE,
        &process_namespaces::TABLE,
        &process_open_files::TABLE,
        &process_open_pipes::TABLE,
        &memory_map::TABLE,
        &shared_memory::TABLE,
        &ulimit_info::TABLE,
        &startup_items::TABLE,
        &systemd_units::TABLE,
    ]
}
