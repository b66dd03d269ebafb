//! Identity of this osquery process (`osquery_info`).

use oxquery_table::InstanceInfo;
use std::time::{SystemTime, UNIX_EPOCH};

/// The osquery version whose interface we implement. Fleet managers and packs gate
/// features on `osquery_info.version`, so it names the osquery release we match.
pub const VERSION: &str = "5.23.0";

/// oxquery's own version, for `--version` and bug reports.
pub const OXQUERY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Facts about the running process. `uuid` is the host identifier (the programs pass
/// the one `system_info.uuid` reports; the engine reads nothing from the host itself).
/// The instance id is left empty for the program to fill in.
pub fn current(uuid: Option<String>) -> InstanceInfo {
    InstanceInfo {
        pid: i64::from(std::process::id()),
        uuid: uuid.unwrap_or_default(),
        instance_id: String::new(),
        version: VERSION.to_owned(),
        extensions: "inactive".to_owned(),
        build_platform: "linux".to_owned(),
        build_distro: build_distro(),
        start_time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
        watcher: -1,
        // osquery's PlatformType bits for Linux: POSIX (0x01) | LINUX (0x04).
        platform_mask: 0x05,
        flags: Vec::new(),
        plugins: Vec::new(),
    }
}

fn build_distro() -> String {
    option_env!("OXQUERY_BUILD_DISTRO").unwrap_or("").to_owned()
}
