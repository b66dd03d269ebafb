//! Settings tables act on, built from flags by the program and handed to every scan.

/// osquery's default `--read_max`: 50 MiB.
pub const DEFAULT_READ_MAX: u64 = 50 * 1024 * 1024;

/// What generators may read from the command line (through [`crate::QueryContext::settings`]).
/// Plain data: the program builds it from its flags at start-up and again on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSettings {
    /// The most bytes a table reads from one file (`--read_max`).
    pub read_max: u64,
}

impl TableSettings {
    /// osquery's defaults.
    pub const DEFAULT: TableSettings = TableSettings {
        read_max: DEFAULT_READ_MAX,
    };
}

impl Default for TableSettings {
    fn default() -> Self {
        TableSettings::DEFAULT
    }
}
