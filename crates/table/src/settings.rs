//! Settings tables act on, built from flags by the program and handed to every scan.

/// osquery's default `--read_max`: 50 MiB.
pub const DEFAULT_READ_MAX: u64 = 50 * 1024 * 1024;

/// osquery's default `--hash_cache_max`.
pub const DEFAULT_HASH_CACHE_MAX: u32 = 500;

/// osquery's default `--docker_socket`.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// osquery's default `--lxd_socket`.
pub const DEFAULT_LXD_SOCKET: &str = "/var/lib/lxd/unix.socket";

/// osquery's default `--yara_delay`, in milliseconds.
pub const DEFAULT_YARA_DELAY_MS: u64 = 50;

/// osquery's default `--augeas_lenses` on Linux.
pub const DEFAULT_AUGEAS_LENSES: &str = "/opt/osquery/share/osquery/lenses";

/// What generators may read from the command line (through [`crate::QueryContext::settings`]).
/// Plain data: the program builds it from its flags at start-up and again on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSettings {
    /// The most bytes a table reads from one file (`--read_max`, the hash cache's flags).
    pub read_max: u64,
    /// The most files whose digests the `hash` table keeps (`--hash_cache_max`).
    pub hash_cache_max: u32,
    /// Digest every file at every scan (`--disable_hash_cache`).
    pub disable_hash_cache: bool,
    /// Milliseconds to wait before a further scan of a table the same query already
    /// scanned (`--table_delay`; the engine applies it).
    pub table_delay_ms: u64,
    /// The Docker daemon's unix socket (`--docker_socket`); `None` means osquery's
    /// default, [`DEFAULT_DOCKER_SOCKET`].
    pub docker_socket: Option<std::path::PathBuf>,
    /// The LXD daemon's unix socket (`--lxd_socket`); `None` means osquery's default,
    /// [`DEFAULT_LXD_SOCKET`].
    pub lxd_socket: Option<std::path::PathBuf>,
    /// Milliseconds the yara tables pause after scanning each file or process
    /// (`--yara_delay`), to spread a large scan's memory and CPU over time.
    pub yara_delay_ms: u64,
    /// Whether a yara `sigurl` fetch is a POST carrying the node key
    /// (`--yara_sigurl_authenticate`) rather than a plain GET.
    pub yara_sigurl_authenticate: bool,
    /// Where the augeas table finds its lenses (`--augeas_lenses`); `None` means
    /// osquery's default, [`DEFAULT_AUGEAS_LENSES`].
    pub augeas_lenses: Option<std::path::PathBuf>,
    /// Whether a generator's panic fails only its query (`--ignore_table_exceptions`,
    /// true as osquery sets it at start) or ends the process, as an uncaught exception
    /// ends osquery's.
    pub ignore_table_exceptions: bool,
}

impl TableSettings {
    /// osquery's defaults.
    pub const DEFAULT: TableSettings = TableSettings {
        read_max: DEFAULT_READ_MAX,
        hash_cache_max: DEFAULT_HASH_CACHE_MAX,
        disable_hash_cache: false,
        table_delay_ms: 0,
        docker_socket: None,
        lxd_socket: None,
        yara_delay_ms: DEFAULT_YARA_DELAY_MS,
        yara_sigurl_authenticate: false,
        augeas_lenses: None,
        ignore_table_exceptions: true,
    };

    /// The Docker daemon's socket the docker_* tables talk to.
    pub fn docker_socket(&self) -> &std::path::Path {
        self.docker_socket
            .as_deref()
            .unwrap_or(std::path::Path::new(DEFAULT_DOCKER_SOCKET))
    }

    /// The LXD daemon's socket the lxd_* tables talk to.
    pub fn lxd_socket(&self) -> &std::path::Path {
        self.lxd_socket
            .as_deref()
            .unwrap_or(std::path::Path::new(DEFAULT_LXD_SOCKET))
    }
}

impl TableSettings {
    /// The directory of Augeas lenses the augeas table loads.
    pub fn augeas_lenses(&self) -> &std::path::Path {
        self.augeas_lenses
            .as_deref()
            .unwrap_or(std::path::Path::new(DEFAULT_AUGEAS_LENSES))
    }
}

impl Default for TableSettings {
    fn default() -> Self {
        TableSettings::DEFAULT
    }
}
