//! Identity of this osquery process (`osquery_info`).

use oxquery_table::InstanceInfo;
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

/// The osquery version whose interface we implement. Fleet managers and packs gate
/// features on `osquery_info.version`, so it names the osquery release we match.
pub const VERSION: &str = "5.23.0";

/// oxquery's own version, for `--version` and bug reports.
pub const OXQUERY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Facts about the running process. `uuid` is the host identifier shared with
/// `system_info.uuid`.
pub fn current(uuid: Option<String>) -> InstanceInfo {
    InstanceInfo {
        pid: i64::from(std::process::id()),
        uuid: uuid.unwrap_or_default(),
        instance_id: random_uuid().unwrap_or_default(),
        version: VERSION.to_owned(),
        config_hash: String::new(),
        config_valid: false,
        extensions: "inactive".to_owned(),
        build_platform: "linux".to_owned(),
        build_distro: build_distro(),
        start_time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
        watcher: -1,
        // osquery's PlatformType bits for Linux: POSIX (0x01) | LINUX (0x04).
        platform_mask: 0x05,
    }
}

fn build_distro() -> String {
    option_env!("OXQUERY_BUILD_DISTRO").unwrap_or("").to_owned()
}

/// A random (version 4) UUID, lowercase, from the kernel's random source.
pub fn random_uuid() -> Option<String> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .ok()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_uuids_are_well_formed_and_differ() {
        let a = super::random_uuid().unwrap();
        let b = super::random_uuid().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }
}
