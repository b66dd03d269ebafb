//! Facts about the running osquery instance that some tables report
//! (`osquery_info`, `osquery_registry`). The engine fills them in.

/// One entry of osquery's plugin registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryItem {
    pub registry: &'static str,
    pub name: String,
    pub owner_uuid: i64,
    pub internal: bool,
    pub active: bool,
}

/// One command-line flag and its current value, as `osquery_flags` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagValue {
    pub name: String,
    /// gflags' type word: `bool`, `string`, `int32`, `uint64`, ...
    pub ty: String,
    pub description: String,
    pub default_value: String,
    pub value: String,
    pub shell_only: bool,
}

/// Identity and state of this process, as `osquery_info` shows it.
#[derive(Debug, Clone, Default)]
pub struct InstanceInfo {
    pub pid: i64,
    /// The host identifier (SMBIOS/machine UUID), shared with `system_info.uuid`.
    pub uuid: String,
    /// Random per-instance identifier.
    pub instance_id: String,
    pub version: String,
    pub config_hash: String,
    pub config_valid: bool,
    /// `active` when extensions are enabled, else `inactive`.
    pub extensions: String,
    pub build_platform: String,
    pub build_distro: String,
    /// Unix time the process started.
    pub start_time: i64,
    /// Pid of the watchdog process, -1 without one.
    pub watcher: i64,
    pub platform_mask: i64,
    /// Every known flag with its value (`osquery_flags`).
    pub flags: Vec<FlagValue>,
}

/// What the engine knows about itself; handed to every generator.
#[derive(Debug, Clone, Default)]
pub struct Host {
    pub instance: InstanceInfo,
    pub registry: Vec<RegistryItem>,
}
