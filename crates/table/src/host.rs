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

impl RegistryItem {
    /// One of the program's own plugins (no extension owns it; offered to extensions).
    pub fn built_in(registry: &'static str, name: &str, active: bool) -> RegistryItem {
        RegistryItem {
            registry,
            name: name.to_owned(),
            owner_uuid: 0,
            internal: false,
            active,
        }
    }
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
    /// The program's own plugins besides its tables and `sql` (config, logger,
    /// distributed, ...), each marked active when the flags put it in use
    /// (`osquery_registry`).
    pub plugins: Vec<RegistryItem>,
}

/// One scheduled query and its statistics, as `osquery_schedule` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleEntry {
    pub name: String,
    pub query: String,
    /// Seconds between runs (before splay).
    pub interval: i64,
    pub executions: i64,
    /// Unix time of the last run, 0 before the first.
    pub last_executed: i64,
    pub denylisted: bool,
    /// Bytes of result output logged in total.
    pub output_size: i64,
    /// Total wall time in seconds (osquery's legacy column) and milliseconds.
    pub wall_time: i64,
    pub wall_time_ms: i64,
    pub last_wall_time_ms: i64,
    /// Milliseconds of CPU time, total and last run.
    pub user_time: i64,
    pub last_user_time: i64,
    pub system_time: i64,
    pub last_system_time: i64,
    /// Bytes of memory the runs used, average and last.
    pub average_memory: i64,
    pub last_memory: i64,
    /// Why the query is deny-listed (which limit and the figures, or how the worker
    /// died); `None` when it is not.
    pub denylist_reason: Option<String>,
    /// Rows the last run returned (up to its stop, when it was stopped).
    pub last_rows: i64,
    /// The most the last run allocated, in bytes (per-query accounting).
    pub last_peak_memory: i64,
    /// Why the last run was stopped (`timeout`, `memory`, `cancelled`); empty when it
    /// ran to its end.
    pub last_stop_reason: String,
    /// Runs stopped by a limit or a cancel, in total.
    pub stopped_runs: i64,
    /// The limits in force: seconds (0 = none) and MiB (0 = none).
    pub timeout: i64,
    pub memory_limit: i64,
}

/// One configured pack, as `osquery_packs` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackEntry {
    pub name: String,
    pub platform: String,
    pub version: String,
    pub shard: i64,
    pub discovery_cache_hits: i64,
    pub discovery_executions: i64,
    pub active: bool,
}

/// Facts that change while the process runs (config state, the daemon's schedule).
/// The daemon writes them; tables read a consistent snapshot under the lock.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    pub config_hash: String,
    pub config_valid: bool,
    pub schedule: Vec<ScheduleEntry>,
    pub packs: Vec<PackEntry>,
    /// The flags as a reload's `options` left them (`osquery_flags`); empty until the
    /// first reload, when the start-up values in [`InstanceInfo::flags`] hold.
    pub flags: Vec<FlagValue>,
    /// The config's `prometheus_targets` (`prometheus_metrics`); `None` when the config
    /// has none.
    pub prometheus_targets: Option<PrometheusTargets>,
    /// The config's `yara.signature_urls`: the URLs (scheme and host as written, the path
    /// a regular expression) the yara tables' `sigurl` may fetch rules from.
    pub yara_signature_urls: Vec<String>,
    /// The config's `yara.signatures`: each signature group's rule files, as written (the
    /// yara tables' `sig_group`).
    pub yara_signature_groups: std::collections::BTreeMap<String, Vec<String>>,
}

/// The config's `prometheus_targets`: the URLs `prometheus_metrics` scrapes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrometheusTargets {
    /// `urls`: empty when the section has none.
    pub urls: Vec<String>,
    /// `timeout`: seconds for each scrape (osquery's default 1).
    pub timeout_secs: u64,
}

/// What the engine knows about itself and its settings; handed to every generator.
#[derive(Debug, Clone, Default)]
pub struct Host {
    pub instance: InstanceInfo,
    pub live: std::sync::Arc<std::sync::RwLock<LiveState>>,
    /// Every registered table (shared with the engine, so it follows registrations).
    pub tables: crate::Registry,
    /// Which of them the engine attaches.
    pub filter: crate::TableFilter,
    pub settings: crate::TableSettings,
    /// State tables keep between this engine's scans (caches).
    pub state: crate::TableState,
    /// Where evented tables read their events; `None` when events are disabled.
    pub events: Option<std::sync::Arc<dyn crate::EventReader>>,
    /// The scheduled query this engine is running, if any (evented tables' marks).
    pub run: crate::QueryRun,
    /// The daemon's carves (`carves` table, `carve()`); `None` where nothing uploads
    /// them (the shell).
    pub carves: Option<std::sync::Arc<dyn crate::Carves>>,
    /// The distributed query this engine is running, if any (a carve's `request_id`).
    pub request: crate::DistributedRequest,
    /// The extension manager (`osquery_extensions`, extensions' plugins in
    /// `osquery_registry`); `None` when none runs.
    pub extensions: Option<std::sync::Arc<dyn crate::Extensions>>,
    /// The program's TLS client as the yara tables' `sigurl` uses it; `None` where the
    /// program installed none.
    pub signatures: Option<std::sync::Arc<dyn SignatureFetch>>,
}

/// What a signature server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Fetches YARA rules from a URL over the program's TLS client (`--tls_server_certs`,
/// client certificate, proxy). The tables check the URL against the config first; the
/// program supplies the transport and, for `--yara_sigurl_authenticate`, the node key.
pub trait SignatureFetch: Send + Sync + std::fmt::Debug {
    /// GETs `url`, or with `authenticate` POSTs `{"node_key": ...}` to it; a body over
    /// `max_body` bytes, a time-out or a transport failure is an `Err` saying which.
    fn fetch(&self, url: &str, authenticate: bool, max_body: u64) -> Result<Fetched, String>;
}

impl Host {
    /// The plugins this process has now, by registry as osquery lists them: every
    /// attached table, the SQL plugin, the program's own plugins, the event publishers
    /// and subscribers, then the extensions' plugins after the built-in ones of each
    /// registry.
    pub fn registry_items(&self) -> Vec<RegistryItem> {
        let (_, tables) = self.tables.snapshot();
        let mut items: Vec<RegistryItem> = tables
            .iter()
            .filter(|(t, _)| self.filter.allows(&t.spec().name))
            .map(|(t, owner)| RegistryItem {
                registry: "table",
                name: t.spec().name.to_string(),
                owner_uuid: owner.uuid(),
                internal: t.spec().attributes.contains(crate::Attributes::UTILITY),
                active: true,
            })
            .collect();
        items.push(RegistryItem {
            registry: "sql",
            name: "sql".to_owned(),
            owner_uuid: 0,
            internal: true,
            active: true,
        });
        items.extend(self.instance.plugins.iter().cloned());
        let statuses = self.event_statuses();
        for status in &statuses {
            let registry = if status.kind == "publisher" {
                "event_publisher"
            } else {
                "event_subscriber"
            };
            items.push(RegistryItem::built_in(
                registry,
                &status.name,
                status.active == 1,
            ));
        }
        for name in self.idle_evented_tables(&statuses) {
            items.push(RegistryItem::built_in("event_subscriber", &name, false));
        }
        if let Some(extensions) = &self.extensions {
            items.extend(extensions.plugins());
        }
        // Stable: within a registry, built-in plugins stay ahead of extensions' ones.
        items.sort_by_key(|item| item.registry);
        items
    }

    /// The event hub's publishers and subscribers as it reports them; none without a hub.
    pub fn event_statuses(&self) -> Vec<crate::EventStatus> {
        self.events.as_ref().map(|e| e.status()).unwrap_or_default()
    }

    /// The attached evented tables with no subscriber in `statuses` (events disabled, or
    /// none started for them): `osquery_events` and `osquery_registry` list them as idle
    /// subscribers.
    pub fn idle_evented_tables(&self, statuses: &[crate::EventStatus]) -> Vec<String> {
        let (_, tables) = self.tables.snapshot();
        tables
            .iter()
            .map(|(table, _)| table.spec())
            .filter(|spec| {
                spec.attributes.contains(crate::Attributes::EVENT_BASED)
                    && self.filter.allows(&spec.name)
                    && !statuses.iter().any(|s| s.name == spec.name)
            })
            .map(|spec| spec.name.to_string())
            .collect()
    }

    /// A copy of the live state (a poisoned lock still yields the last written state).
    pub fn live(&self) -> LiveState {
        match self.live.read() {
            Ok(state) => state.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
