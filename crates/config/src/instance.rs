//! This process's identity for `osquery_info`, from the host (the engine reads nothing
//! from the host itself; both programs build it here).

use oxquery_table::InstanceInfo;

/// The running process: the host identifier `system_info.uuid` reports and a fresh
/// random instance id.
pub fn instance_info() -> InstanceInfo {
    let mut info = oxquery_engine::instance::current(oxquery_sys::host::host_uuid());
    info.instance_id = oxquery_sys::host::random_uuid().unwrap_or_default();
    info
}
