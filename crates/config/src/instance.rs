//! This process's identity for `osquery_info`, from the host (the engine reads nothing
//! from the host itself; both programs build it here).

use oxquery_flags::{Flags, flag};
use oxquery_table::{InstanceInfo, TableSettings};

/// The settings tables act on, from the flags (at start-up, and after a reload's
/// `options` changed them: osquery reads `--read_max` and the hash cache's flags at each use).
pub fn table_settings(flags: &Flags) -> TableSettings {
    TableSettings {
        read_max: flags.get(flag::read_max),
        hash_cache_max: flags.get(flag::hash_cache_max),
        disable_hash_cache: flags.get(flag::disable_hash_cache),
        table_delay_ms: flags.get(flag::table_delay),
        docker_socket: Some(flags.get(flag::docker_socket).to_path_buf()),
        lxd_socket: Some(flags.get(flag::lxd_socket).to_path_buf()),
        yara_delay_ms: flags.get(flag::yara_delay).into(),
        yara_sigurl_authenticate: flags.get(flag::yara_sigurl_authenticate),
        augeas_lenses: Some(flags.get(flag::augeas_lenses).to_path_buf()),
        ignore_table_exceptions: flags.get(flag::ignore_table_exceptions),
    }
}

/// The running process: the host identifier `system_info.uuid` reports and a fresh
/// random instance id.
pub fn instance_info() -> InstanceInfo {
    let mut info = oxquery_engine::instance::current(oxquery_sys::host::host_uuid());
    info.instance_id = oxquery_sys::host::random_uuid().unwrap_or_default();
    info
}
