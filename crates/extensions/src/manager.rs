//! The extension manager: osquery's `ExtensionManager` service on `--extensions_socket`.
//!
//! - [`Manager::start`] binds the socket ([`crate::server`]) and serves each connection
//!   on its own thread with its own engine over the program's registry (so an SQL query
//!   sees every table, extensions' included, as the program's engines do).
//! - [`Roster`] is the set of registered extensions, shared by the connections, the
//!   health thread and the program: it registers an extension's tables in the registry
//!   (owned by its uuid), routes its other plugins ([`PluginCaller`]) and lists it for
//!   `osquery_extensions`/`osquery_registry` ([`oxquery_table::Extensions`]).
//! - The health thread pings every extension each `--extensions_interval`; a missing
//!   socket or a failed ping twice in a row removes it and its tables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use oxquery_engine::Engine;
use oxquery_flags::{Flags, flag};
use oxquery_table::{ExtensionRecord, Host, Owner, Registry, RegistryItem, Table, Value};

use crate::generated::{
    ExtensionManagerSyncHandler, ExtensionPluginRequest, ExtensionRegistry, ExtensionResponse,
    ExtensionRouteUUID, ExtensionStatus, ExtensionSyncHandler, InternalExtensionInfo,
    InternalExtensionList, InternalOptionInfo, InternalOptionList,
};
use crate::link::{Health, Link};
use crate::server::{self, BindError, Limits, Server};
use crate::table::ExtensionTable;
use crate::{CallError, LocalPlugins, PluginCaller, PluginRequest, PluginResponse};

/// The oldest SDK osquery accepts (its `kSDKVersionChanges`).
const MIN_SDK: &str = "1.7.7";

/// The registries an extension may offer plugins in (osquery's on Linux).
const REGISTRIES: &[&str] = &[
    "config",
    "config_parser",
    "database",
    "distributed",
    "enroll",
    "event_publisher",
    "event_subscriber",
    "killswitch",
    "logger",
    "numeric_monitoring",
    "sql",
    "table",
];

/// Plugins oxquery has itself, by registry: an extension may not take their names.
const BUILT_IN_PLUGINS: &[(&str, &str)] = &[
    ("config", "filesystem"),
    ("config", "tls"),
    ("distributed", "tls"),
    ("enroll", "tls"),
    ("logger", "aws_firehose"),
    ("logger", "aws_kinesis"),
    ("logger", "filesystem"),
    ("logger", "kafka_producer"),
    ("logger", "stdout"),
    ("logger", "syslog"),
    ("logger", "tls"),
    ("numeric_monitoring", "filesystem"),
    ("sql", "sql"),
];

/// How long a stopping manager waits for extensions to take its shutdown request.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// Ping failures in a row after which an extension is removed.
const MISSES_ALLOWED: u32 = 2;

/// What the manager acts on, from the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--extensions_socket`.
    pub socket: PathBuf,
    /// `--thrift_timeout`, `--thrift_string_size_limit`, `--thrift_verbose`.
    pub limits: Limits,
    /// `--extensions_interval`: between health checks.
    pub interval: Duration,
    /// `--extensions_default_index`.
    pub default_index: bool,
    /// `--nullvalue`: a NULL in a `query` answer.
    pub nullvalue: String,
}

impl Settings {
    pub fn from_flags(flags: &Flags) -> Settings {
        let interval = flags
            .get(flag::extensions_interval)
            .trim()
            .parse::<u64>()
            .unwrap_or(3)
            .max(1);
        Settings {
            socket: flags.get(flag::extensions_socket).to_owned(),
            limits: Limits {
                timeout: Duration::from_secs(u64::from(flags.get(flag::thrift_timeout)).max(1)),
                string_limit: usize::try_from(flags.get(flag::thrift_string_size_limit).max(0))
                    .unwrap_or(0),
                verbose: flags.get(flag::thrift_verbose),
            },
            interval: Duration::from_secs(interval),
            default_index: flags.get(flag::extensions_default_index),
            nullvalue: flags.get(flag::nullvalue).to_owned(),
        }
    }
}

/// One registered extension.
struct Registered {
    info: InternalExtensionInfo,
    /// Its routes by registry and plugin name, as it registered them.
    routes: ExtensionRegistry,
    link: Arc<Link>,
    misses: AtomicU32,
}

/// The registered extensions; see the module documentation.
pub struct Roster {
    socket: PathBuf,
    version: String,
    tables: Registry,
    limits: Limits,
    default_index: bool,
    /// Active plugins by registry (`--config_plugin`, `--logger_plugin`, ...), for
    /// `osquery_registry.active`.
    active: BTreeMap<&'static str, Vec<String>>,
    extensions: RwLock<BTreeMap<i64, Arc<Registered>>>,
}

impl std::fmt::Debug for Roster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roster")
            .field("socket", &self.socket)
            .field("extensions", &self.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

fn text(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

fn status(code: i32, message: &str, uuid: i64) -> ExtensionStatus {
    ExtensionStatus::new(code, message.to_owned(), uuid)
}

/// Whether dotted version `have` is at least `need` (missing or non-numeric parts are 0).
fn version_at_least(need: &str, have: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.split('.')
            .map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    };
    let (need, have) = (parts(need), parts(have));
    for i in 0..need.len().max(have.len()) {
        let (n, h) = (
            need.get(i).copied().unwrap_or(0),
            have.get(i).copied().unwrap_or(0),
        );
        if h != n {
            return h > n;
        }
    }
    true
}

/// A random non-zero 16-bit uuid (osquery's `rand() + 1` truncated to 16 bits).
fn random_uuid() -> i64 {
    let mut bytes = [0u8; 2];
    // SAFETY: writes at most 2 bytes into the 2-byte buffer.
    let got = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), 2, 0) };
    let value = if got == 2 {
        u16::from_ne_bytes(bytes)
    } else {
        // No getrandom: the clock's low bits are unpredictable enough for a route id.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos() as u16)
    };
    i64::from(value.max(1))
}

impl Roster {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<i64, Arc<Registered>>> {
        self.extensions.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<i64, Arc<Registered>>> {
        self.extensions.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The manager's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The socket extension `uuid` serves.
    pub fn extension_socket(&self, uuid: i64) -> PathBuf {
        server::with_suffix(&self.socket, &uuid.to_string())
    }

    /// Names of the registered extensions (`--extensions_require` waits for them).
    pub fn names(&self) -> Vec<String> {
        self.read().values().map(|e| text(&e.info.name)).collect()
    }

    /// `registerExtension`: see osquery's rules in the crate documentation.
    pub fn register(
        &self,
        info: InternalExtensionInfo,
        routes: ExtensionRegistry,
    ) -> ExtensionStatus {
        let name = text(&info.name);
        let mut extensions = self.write();
        if extensions.values().any(|e| text(&e.info.name) == name) {
            log::warn!("Refusing to register duplicate extension {name}");
            return status(1, "Duplicate extension registered", 0);
        }
        let sdk = text(&info.sdk_version);
        if !version_at_least(MIN_SDK, &sdk) {
            log::warn!(
                "Could not add extension {name}: incompatible extension SDK {sdk}, minimum required is {MIN_SDK}"
            );
            return status(1, "Incompatible extension SDK version", 0);
        }
        let refuse = |why: String| {
            log::warn!("Could not add extension {name}: {why}");
            status(1, &format!("Failed adding registry: {why}"), 0)
        };
        for (registry, items) in &routes {
            for item in items.keys() {
                let taken = if registry == "table" {
                    self.tables.contains(item)
                } else {
                    BUILT_IN_PLUGINS.contains(&(registry.as_str(), item.as_str()))
                        || extensions
                            .values()
                            .any(|e| e.routes.get(registry).is_some_and(|r| r.contains_key(item)))
                };
                if taken {
                    return refuse(format!("Duplicate registry item: {item}"));
                }
            }
        }
        if let Some(unknown) = routes.keys().find(|r| !REGISTRIES.contains(&r.as_str())) {
            return refuse(format!("Unknown registry: {unknown}"));
        }
        let uuid = loop {
            let uuid = random_uuid();
            if !extensions.contains_key(&uuid) {
                break uuid;
            }
        };
        let link = Arc::new(Link::new(self.extension_socket(uuid), self.limits.timeout));
        let owner = Owner::Extension(uuid);
        for (table, rows) in routes.get("table").into_iter().flatten() {
            let Some(made) = ExtensionTable::from_routes(
                table,
                rows,
                self.default_index,
                &name,
                Arc::clone(&link),
            ) else {
                log::warn!("Extension {name}: table {table} declares no column; not attached");
                continue;
            };
            if let Err(taken) = self.tables.add(Arc::new(made) as Arc<dyn Table>, owner) {
                self.tables.remove_owned_by(owner);
                return refuse(format!("Duplicate registry item: {}", taken.0));
            }
        }
        log::info!(
            "Registering extension ({name}, {uuid}, version={}, sdk={sdk})",
            text(&info.version)
        );
        extensions.insert(
            uuid,
            Arc::new(Registered {
                info,
                routes,
                link,
                misses: AtomicU32::new(0),
            }),
        );
        ExtensionStatus::new(0, "OK".to_owned(), uuid)
    }

    /// Removes extension `uuid` and its tables; whether it was registered.
    pub fn remove(&self, uuid: i64) -> bool {
        let removed = self.write().remove(&uuid);
        let tables = self.tables.remove_owned_by(Owner::Extension(uuid));
        if let Some(extension) = &removed {
            log::info!(
                "Removed extension {} ({uuid}) and its tables {tables:?}",
                text(&extension.info.name)
            );
        }
        removed.is_some()
    }

    /// One health check of every extension (see the module documentation).
    fn check_health(&self) {
        let extensions: Vec<(i64, Arc<Registered>)> = self
            .read()
            .iter()
            .map(|(u, e)| (*u, Arc::clone(e)))
            .collect();
        for (uuid, extension) in extensions {
            let health = if extension.link.path().exists() {
                extension.link.ping()
            } else {
                Health::Failed
            };
            let misses = match health {
                Health::Alive | Health::Busy => {
                    extension.misses.store(0, Ordering::Relaxed);
                    0
                }
                Health::Failed => extension.misses.fetch_add(1, Ordering::Relaxed) + 1,
            };
            if misses >= MISSES_ALLOWED {
                log::info!("Extension UUID {uuid} ping failed");
                self.remove(uuid);
            }
        }
    }

    /// The active plugins of `registry` (`--config_plugin`, `--logger_plugin`,
    /// `--distributed_plugin`), as osquery's registry names them: a comma list.
    fn active_plugin(&self, registry: &str) -> String {
        self.active
            .get(registry)
            .map(|names| names.join(","))
            .unwrap_or_default()
    }

    fn route(&self, registry: &str, item: &str) -> Option<Arc<Link>> {
        self.read()
            .values()
            .find(|e| e.routes.get(registry).is_some_and(|r| r.contains_key(item)))
            .map(|e| Arc::clone(&e.link))
    }
}

impl oxquery_table::Extensions for Roster {
    fn list(&self) -> Vec<ExtensionRecord> {
        let mut list = vec![ExtensionRecord {
            uuid: 0,
            name: "core".to_owned(),
            version: self.version.clone(),
            sdk_version: self.version.clone(),
            path: self.socket.display().to_string(),
            kind: "core",
        }];
        for (uuid, e) in self.read().iter() {
            list.push(ExtensionRecord {
                uuid: *uuid,
                name: text(&e.info.name),
                version: text(&e.info.version),
                sdk_version: text(&e.info.sdk_version),
                path: self.extension_socket(*uuid).display().to_string(),
                kind: "extension",
            });
        }
        list
    }

    fn plugins(&self) -> Vec<RegistryItem> {
        let mut items = Vec::new();
        for (uuid, e) in self.read().iter() {
            for (registry, routes) in &e.routes {
                let Some(registry) = REGISTRIES.iter().find(|r| **r == registry) else {
                    continue;
                };
                if *registry == "table" {
                    continue;
                }
                for name in routes.keys() {
                    let active = self
                        .active
                        .get(registry)
                        .is_none_or(|names| names.iter().any(|n| n == name));
                    items.push(RegistryItem {
                        registry,
                        name: name.clone(),
                        owner_uuid: *uuid,
                        internal: false,
                        active,
                    });
                }
            }
        }
        items
    }
}

impl PluginCaller for Roster {
    fn provides(&self, registry: &str, item: &str) -> bool {
        self.route(registry, item).is_some()
    }

    fn call(
        &self,
        registry: &str,
        item: &str,
        request: &PluginRequest,
    ) -> Result<PluginResponse, CallError> {
        let link = self
            .route(registry, item)
            .ok_or_else(|| CallError::NoRoute {
                registry: registry.to_owned(),
                item: item.to_owned(),
            })?;
        link.call(registry, item, request)
    }
}

/// The program's engines' description, once they exist ([`Manager::serve_queries`]).
type HostSlot = Arc<RwLock<Option<Host>>>;
/// The program's own plugins, once it installs them ([`Manager::serve_plugins`]).
type LocalSlot = Arc<RwLock<Option<Arc<dyn LocalPlugins>>>>;

/// What a connection answers with: the roster, and an engine made on first use.
struct Connection {
    roster: Arc<Roster>,
    host: HostSlot,
    local: LocalSlot,
    /// The flags at start, for `options` before the engines exist.
    early_flags: Arc<Vec<oxquery_table::FlagValue>>,
    nullvalue: String,
    engine: std::cell::RefCell<Option<Engine>>,
}

impl Connection {
    /// The program's engines' description; an error while the program is still starting.
    fn host(&self) -> Result<Host, String> {
        self.host
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| "The SQL engine is not ready yet (the program is starting)".to_owned())
    }

    fn with_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> Result<T, String> {
        let mut slot = self.engine.borrow_mut();
        if slot.is_none() {
            // Its own per-engine state, the program's tables and settings.
            let host = Host {
                state: Default::default(),
                run: Default::default(),
                request: Default::default(),
                ..self.host()?
            };
            *slot = Some(Engine::open(host).map_err(|e| e.to_string())?);
        }
        Ok(f(slot.as_ref().expect("opened above")))
    }

    fn text_of(&self, value: &Value) -> String {
        match value {
            Value::Null => self.nullvalue.clone(),
            Value::Integer(i) => i.to_string(),
            Value::Real(r) => oxquery_format::double_text(*r),
            Value::Text(t) => t.clone(),
            Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }
}

fn failed(message: String) -> ExtensionResponse {
    ExtensionResponse::new(status(1, &message, 0), Vec::new())
}

impl Connection {
    /// `call("table", name, ...)` on one of the program's tables, as osquery's table
    /// plugins answer it: `columns` gives the column routes, `generate` the rows for the
    /// context JSON (constraints and used columns) as strings, a NULL cell left out.
    fn table_call(&self, name: &str, request: &PluginRequest) -> ExtensionResponse {
        let host = match self.host() {
            Ok(host) => host,
            Err(message) => return failed(message),
        };
        let Some(table) = host.tables.get(name) else {
            return failed(format!("Cannot call registry item: {name}"));
        };
        let spec = table.spec();
        match request.get("action").map(String::as_str) {
            Some("columns") => {
                let routes: PluginResponse = spec
                    .columns
                    .iter()
                    .map(|c| {
                        BTreeMap::from([
                            ("id".to_owned(), "column".to_owned()),
                            ("name".to_owned(), c.name.to_string()),
                            ("type".to_owned(), c.ty.sql_name().to_owned()),
                            ("op".to_owned(), c.options.osquery_bits().to_string()),
                        ])
                    })
                    .collect();
                ExtensionResponse::new(status(0, "OK", 0), routes)
            }
            Some("generate") => {
                let ctx = crate::table::context_from_json(
                    spec,
                    request.get("context").map_or("", String::as_str),
                    &host,
                );
                match oxquery_table::Rows::collect_table(&ctx, &*table) {
                    Ok(found) => {
                        let rows = (0..found.len())
                            .filter_map(|i| found.get(i))
                            .map(|cells| {
                                spec.columns
                                    .iter()
                                    .zip(cells)
                                    .filter(|(_, v)| !v.is_null())
                                    .map(|(c, v)| (c.name.to_string(), self.text_of(v)))
                                    .collect()
                            })
                            .collect::<PluginResponse>();
                        ExtensionResponse::new(status(0, "OK", 0), rows)
                    }
                    Err(e) => failed(e.to_string()),
                }
            }
            _ => failed("Unknown table plugin action".to_owned()),
        }
    }
}

impl Connection {
    /// `call(registry, item, request)` as osquery's manager answers it
    /// (`ExtensionInterface::call`, `RegistryFactory::call`): an unknown registry and an
    /// item nobody holds are refused with its messages; an empty item is the registry's
    /// active plugin (`--config_plugin`, `--logger_plugin`, ...); a comma list calls each
    /// plugin in turn and succeeds whatever they answer (a logger list).
    fn answer_call(
        &self,
        registry: &str,
        item: &str,
        request: &PluginRequest,
    ) -> ExtensionResponse {
        if !REGISTRIES.contains(&registry) {
            return failed(format!("Unknown registry requested: {registry}"));
        }
        let active;
        let item = if item.is_empty() {
            active = self.roster.active_plugin(registry);
            active.as_str()
        } else {
            item
        };
        if !item.contains(',') {
            return self.call_plugin(registry, item, request);
        }
        let mut rows = PluginResponse::new();
        for one in item.split(',') {
            let answer = self.call_plugin(registry, one, request);
            if answer.status.as_ref().and_then(|s| s.code) == Some(0) {
                rows.extend(answer.response.unwrap_or_default());
            }
        }
        ExtensionResponse::new(status(0, "OK", 0), rows)
    }

    /// One plugin: the program's own first, then an extension's (osquery's registry
    /// looks at its local items before the routes extensions broadcast).
    fn call_plugin(
        &self,
        registry: &str,
        item: &str,
        request: &PluginRequest,
    ) -> ExtensionResponse {
        if registry == "table" && !self.roster.provides(registry, item) {
            return self.table_call(item, request);
        }
        let local = self
            .local
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|local| local.holds(registry, item));
        let answer = match local {
            Some(local) => local.call(registry, item, request),
            None if self.roster.provides(registry, item) => {
                self.roster.call(registry, item, request)
            }
            None => return failed(format!("Cannot call registry item: {item}")),
        };
        match answer {
            Ok(rows) => ExtensionResponse::new(status(0, "OK", 0), rows),
            Err(CallError::Failed { code, message }) => {
                ExtensionResponse::new(status(code, &message, 0), Vec::new())
            }
            Err(e) => failed(e.to_string()),
        }
    }
}

impl ExtensionSyncHandler for Connection {
    fn handle_ping(&self) -> thrift::Result<ExtensionStatus> {
        Ok(status(0, "pong", 0))
    }

    fn handle_call(
        &self,
        registry: String,
        item: String,
        request: ExtensionPluginRequest,
    ) -> thrift::Result<ExtensionResponse> {
        Ok(self.answer_call(&registry, &item, &request))
    }

    fn handle_shutdown(&self) -> thrift::Result<()> {
        // osquery's manager ignores it (only an extension's own `shutdown` stops it).
        Ok(())
    }
}

impl ExtensionManagerSyncHandler for Connection {
    fn handle_extensions(&self) -> thrift::Result<InternalExtensionList> {
        Ok(self
            .roster
            .read()
            .iter()
            .map(|(uuid, e)| (*uuid, e.info.clone()))
            .collect())
    }

    fn handle_options(&self) -> thrift::Result<InternalOptionList> {
        let host = self.host().ok();
        let live = host.as_ref().map(Host::live);
        let flags = match (&host, &live) {
            (_, Some(live)) if !live.flags.is_empty() => &live.flags,
            (Some(host), _) => &host.instance.flags,
            (None, _) => &*self.early_flags,
        };
        Ok(flags
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    InternalOptionInfo::new(f.value.clone(), f.default_value.clone(), f.ty.clone()),
                )
            })
            .collect())
    }

    fn handle_register_extension(
        &self,
        info: InternalExtensionInfo,
        registry: ExtensionRegistry,
    ) -> thrift::Result<ExtensionStatus> {
        Ok(self.roster.register(info, registry))
    }

    fn handle_deregister_extension(
        &self,
        uuid: ExtensionRouteUUID,
    ) -> thrift::Result<ExtensionStatus> {
        Ok(if self.roster.remove(uuid) {
            status(0, "OK", 0)
        } else {
            status(1, "No extension UUID found", 0)
        })
    }

    fn handle_query(&self, sql: String) -> thrift::Result<ExtensionResponse> {
        let answer = self.with_engine(|engine| {
            let mut rows = PluginResponse::new();
            let outcome = engine.run_batch::<()>(&sql, |result| {
                for row in &result.rows {
                    rows.push(
                        result
                            .columns
                            .iter()
                            .zip(row)
                            .map(|(c, v)| (c.clone(), self.text_of(v)))
                            .collect(),
                    );
                }
                Ok(())
            });
            match outcome {
                Ok(Ok(())) => ExtensionResponse::new(status(0, "OK", 0), rows),
                Ok(Err(failure)) => failed(failure.message),
                Err(()) => failed("query stopped".to_owned()),
            }
        });
        Ok(answer.unwrap_or_else(failed))
    }

    fn handle_get_query_columns(&self, sql: String) -> thrift::Result<ExtensionResponse> {
        let answer = self.with_engine(|engine| match engine.column_types(&sql) {
            Ok(columns) => ExtensionResponse::new(
                status(0, "OK", 0),
                columns
                    .into_iter()
                    .map(|(name, ty)| BTreeMap::from([(name, ty)]))
                    .collect::<Vec<_>>(),
            ),
            Err(failure) => failed(failure.message),
        });
        Ok(answer.unwrap_or_else(failed))
    }
}

/// A running extension manager.
pub struct Manager {
    roster: Arc<Roster>,
    host: HostSlot,
    local: LocalSlot,
    server: Server,
    stop: Arc<(Mutex<bool>, Condvar)>,
    health: Option<JoinHandle<()>>,
}

impl Manager {
    /// Serves `settings.socket` for the program whose table registry is `tables` (the one
    /// extensions' tables join) and whose flags are `flags` (what `options` answers until
    /// the program's engines exist). Registration and plugin calls work at once, so an
    /// extension's config or logger plugin can serve the program's start-up; `query`,
    /// `getQueryColumns` and table calls wait for [`Manager::serve_queries`].
    pub fn start(
        settings: Settings,
        tables: Registry,
        flags: Vec<oxquery_table::FlagValue>,
    ) -> Result<Manager, BindError> {
        let listener = server::bind(&settings.socket)?;
        let flag_value = |name: &str| {
            flags
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.value.clone())
                .unwrap_or_default()
        };
        let list = |value: String| -> Vec<String> {
            value
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let active = BTreeMap::from([
            ("config", list(flag_value("config_plugin"))),
            ("logger", list(flag_value("logger_plugin"))),
            ("distributed", list(flag_value("distributed_plugin"))),
        ]);
        let roster = Arc::new(Roster {
            socket: settings.socket.clone(),
            version: oxquery_engine::instance::VERSION.to_owned(),
            tables,
            limits: settings.limits.clone(),
            default_index: settings.default_index,
            active,
            extensions: RwLock::default(),
        });
        let host: HostSlot = Arc::default();
        let local: LocalSlot = Arc::default();
        let early_flags = Arc::new(flags);
        let server = {
            let host = Arc::clone(&host);
            let local = Arc::clone(&local);
            let roster = Arc::clone(&roster);
            let nullvalue = settings.nullvalue.clone();
            Server::start(
                settings.socket.clone(),
                listener,
                settings.limits.clone(),
                move || Connection {
                    roster: Arc::clone(&roster),
                    host: Arc::clone(&host),
                    local: Arc::clone(&local),
                    early_flags: Arc::clone(&early_flags),
                    nullvalue: nullvalue.clone(),
                    engine: Default::default(),
                },
            )
        };
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let health = {
            let roster = Arc::clone(&roster);
            let stop = Arc::clone(&stop);
            let interval = settings.interval;
            std::thread::Builder::new()
                .name("extensions-health".into())
                .spawn(move || {
                    let (stopped, wake) = &*stop;
                    loop {
                        // The flag is looked at before waiting: a stop that came before
                        // this thread first waited must not wait out a whole interval.
                        let guard = stopped.lock().unwrap_or_else(|p| p.into_inner());
                        let (guard, _) = wake
                            .wait_timeout_while(guard, interval, |stopped| !*stopped)
                            .unwrap_or_else(|p| p.into_inner());
                        if *guard {
                            return;
                        }
                        drop(guard);
                        roster.check_health();
                    }
                })
                .expect("spawning the extension health thread")
        };
        log::info!(
            "Extension manager service starting: {}",
            settings.socket.display()
        );
        Ok(Manager {
            roster,
            host,
            local,
            server,
            stop,
            health: Some(health),
        })
    }

    /// What both programs do at start: unless `--disable_extensions`, serve
    /// `--extensions_socket` for the program whose registry is `tables`. A socket that
    /// cannot be served leaves extensions disabled: the error is the warning to log (the
    /// daemon logs it once its status log runs), as in osquery.
    pub fn start_from_flags(
        flags: &Flags,
        tables: &Registry,
        flag_rows: Vec<oxquery_table::FlagValue>,
    ) -> Result<Option<Manager>, String> {
        if flags.get(flag::disable_extensions) {
            return Ok(None);
        }
        let settings = Settings::from_flags(flags);
        let socket = settings.socket.clone();
        Manager::start(settings, tables.clone(), flag_rows)
            .map(Some)
            .map_err(|e| {
                format!(
                    "Extensions disabled: cannot start extension manager ({}) ({e})",
                    socket.display()
                )
            })
    }

    /// Answers `query`, `getQueryColumns` and table calls from now on, with engines like
    /// `engine` (its program's identity, live state, settings and handles), and has
    /// `engine` report the manager.
    pub fn serve_queries(&self, engine: &Engine) {
        engine.set_extensions(Some(self.extensions()));
        let mut host = (*engine.host()).clone();
        host.extensions = Some(self.extensions());
        *self.host.write().unwrap_or_else(|p| p.into_inner()) = Some(host);
    }

    /// Answers `call`s to the program's own plugins other than tables (its config and
    /// logger plugins) from now on, through `plugins`: the daemon and the shell install
    /// theirs once they are set up. Until then such a call is refused as one to a plugin
    /// nobody holds.
    pub fn serve_plugins(&self, plugins: Arc<dyn LocalPlugins>) {
        *self.local.write().unwrap_or_else(|p| p.into_inner()) = Some(plugins);
    }

    /// The registered extensions (for `osquery_extensions`, `osquery_registry`, and the
    /// daemon's plugins backed by an extension).
    pub fn roster(&self) -> Arc<Roster> {
        Arc::clone(&self.roster)
    }

    /// What engines report as the manager (`Host::extensions`).
    pub fn extensions(&self) -> Arc<dyn oxquery_table::Extensions> {
        Arc::clone(&self.roster) as Arc<dyn oxquery_table::Extensions>
    }

    /// Routes plugin calls to the extensions.
    pub fn caller(&self) -> Arc<dyn PluginCaller> {
        Arc::clone(&self.roster) as Arc<dyn PluginCaller>
    }

    /// Stops serving (the socket goes), stops the health checks, asks every extension to
    /// shut down and removes them and their tables, and removes their sockets.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.server.stop();
        {
            let (stopped, wake) = &*self.stop;
            *stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
            wake.notify_all();
        }
        if let Some(health) = self.health.take() {
            let _ = health.join();
        }
        let extensions: Vec<(i64, Arc<Registered>)> = std::mem::take(&mut *self.roster.write())
            .into_iter()
            .collect();
        // Each asked on a thread of its own: one that never answers must not hold up the
        // program's stop for --thrift_timeout.
        let (done, finished) = std::sync::mpsc::channel();
        for (uuid, extension) in extensions {
            self.roster.tables.remove_owned_by(Owner::Extension(uuid));
            let done = done.clone();
            let asked = std::thread::Builder::new()
                .name("extensions-shutdown".into())
                .spawn(move || {
                    if let Err(e) = extension.link.shutdown() {
                        log::debug!("Extension {uuid} did not take the shutdown request: {e}");
                    }
                    let _ = done.send(());
                });
            if let Err(e) = asked {
                log::debug!("Cannot ask extension {uuid} to shut down: {e}");
            }
        }
        drop(done);
        let deadline = std::time::Instant::now() + SHUTDOWN_WAIT;
        while finished
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .is_ok()
        {}
        server::remove_extension_sockets(&self.roster.socket);
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if self.health.is_some() {
            self.shut();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Client;
    use crate::generated::{TExtensionManagerSyncClient, TExtensionSyncClient};

    /// The program's own plugins in a test: `config/filesystem` answers genConfig with
    /// one source, `logger/filesystem` and `logger/stdout` take lines (kept here), and
    /// anything else they refuse as osquery's plugins refuse an unknown request.
    #[derive(Default)]
    struct Own {
        lines: Mutex<Vec<(String, String)>>,
    }

    impl LocalPlugins for Own {
        fn holds(&self, registry: &str, item: &str) -> bool {
            matches!(
                (registry, item),
                ("config", "filesystem") | ("logger", "filesystem") | ("logger", "stdout")
            )
        }
        fn call(
            &self,
            registry: &str,
            item: &str,
            request: &PluginRequest,
        ) -> Result<PluginResponse, CallError> {
            match (registry, request.get("action"), request.get("string")) {
                ("config", Some(action), _) if action == "genConfig" => {
                    Ok(vec![BTreeMap::from([(
                        "/etc/x.conf".to_owned(),
                        "{}".to_owned(),
                    )])])
                }
                ("logger", _, Some(line)) => {
                    self.lines
                        .lock()
                        .unwrap()
                        .push((item.to_owned(), line.clone()));
                    Ok(Vec::new())
                }
                _ => Err(CallError::Failed {
                    code: 1,
                    message: "Unsupported call to logger plugin".to_owned(),
                }),
            }
        }
    }

    fn flag(name: &str, value: &str) -> oxquery_table::FlagValue {
        oxquery_table::FlagValue {
            name: name.to_owned(),
            ty: "string".to_owned(),
            description: String::new(),
            default_value: String::new(),
            value: value.to_owned(),
            shell_only: false,
        }
    }

    fn manager(socket: &Path, flags: Vec<oxquery_table::FlagValue>) -> Manager {
        let settings = Settings {
            socket: socket.to_owned(),
            limits: Limits {
                timeout: Duration::from_secs(5),
                string_limit: 0,
                verbose: false,
            },
            interval: Duration::from_secs(3600),
            default_index: false,
            nullvalue: String::new(),
        };
        Manager::start(settings, Registry::new(), flags).expect("serving the test socket")
    }

    fn call(
        socket: &Path,
        registry: &str,
        item: &str,
        request: &[(&str, &str)],
    ) -> ExtensionResponse {
        let mut client = Client::connect(socket, Duration::from_secs(5)).unwrap();
        let request = request
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        client
            .calls()
            .call(registry.to_owned(), item.to_owned(), request)
            .unwrap()
    }

    fn code_and_message(answer: &ExtensionResponse) -> (i32, String) {
        let status = answer.status.clone().unwrap();
        (status.code.unwrap(), status.message.unwrap())
    }

    #[test]
    fn calls_reach_the_programs_own_plugins_with_osquerys_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("em");
        let manager = manager(
            &socket,
            vec![
                flag("config_plugin", "filesystem"),
                flag("logger_plugin", "filesystem,stdout"),
            ],
        );
        // Before the program installs its plugins, nobody holds them.
        let early = call(&socket, "config", "filesystem", &[("action", "genConfig")]);
        assert_eq!(
            code_and_message(&early),
            (1, "Cannot call registry item: filesystem".to_owned())
        );

        let own = Arc::new(Own::default());
        manager.serve_plugins(Arc::clone(&own) as Arc<dyn LocalPlugins>);
        let config = call(&socket, "config", "filesystem", &[("action", "genConfig")]);
        assert_eq!(code_and_message(&config), (0, "OK".to_owned()));
        assert_eq!(
            config.response.unwrap(),
            vec![BTreeMap::from([(
                "/etc/x.conf".to_owned(),
                "{}".to_owned()
            )])]
        );
        // The plugin's own refusal comes back with its code and message.
        let refused = call(&socket, "logger", "filesystem", &[("health", "{}")]);
        assert_eq!(
            code_and_message(&refused),
            (1, "Unsupported call to logger plugin".to_owned())
        );

        // osquery's words for a registry it does not have and an item nobody holds.
        let unknown = call(&socket, "no_such_registry", "x", &[]);
        assert_eq!(
            code_and_message(&unknown),
            (1, "Unknown registry requested: no_such_registry".to_owned())
        );
        let nobody = call(
            &socket,
            "config",
            "no_such_plugin",
            &[("action", "genConfig")],
        );
        assert_eq!(
            code_and_message(&nobody),
            (1, "Cannot call registry item: no_such_plugin".to_owned())
        );
        // An empty item is the active plugin: here the logger list, each plugin called
        // in turn; a comma list succeeds whatever its members answer.
        let active = call(&socket, "logger", "", &[("string", "line one")]);
        assert_eq!(code_and_message(&active), (0, "OK".to_owned()));
        let listed = call(
            &socket,
            "logger",
            "stdout,no_such_logger",
            &[("string", "line two")],
        );
        assert_eq!(code_and_message(&listed), (0, "OK".to_owned()));
        assert_eq!(
            *own.lines.lock().unwrap(),
            [
                ("filesystem".to_owned(), "line one".to_owned()),
                ("stdout".to_owned(), "line one".to_owned()),
                ("stdout".to_owned(), "line two".to_owned()),
            ]
        );
        manager.stop();
    }

    #[test]
    fn a_plugin_an_extension_registered_is_called_on_its_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("em");
        let core = manager(&socket, Vec::new());
        let mut client = Client::connect(&socket, Duration::from_secs(5)).unwrap();
        let routes = ExtensionRegistry::from([(
            "logger".to_owned(),
            BTreeMap::from([("filesystem_copy".to_owned(), Vec::new())]),
        )]);
        let info = InternalExtensionInfo::new(
            "copy".to_owned(),
            "1.0".to_owned(),
            "3.0.7".to_owned(),
            "1.0.0".to_owned(),
        );
        let registered = client.calls().register_extension(info, routes).unwrap();
        assert_eq!(registered.code, Some(0), "{registered:?}");
        // A built-in plugin's name is refused to an extension.
        let clash = client
            .calls()
            .register_extension(
                InternalExtensionInfo::new(
                    "clash".to_owned(),
                    "1.0".to_owned(),
                    "3.0.7".to_owned(),
                    "1.0.0".to_owned(),
                ),
                ExtensionRegistry::from([(
                    "logger".to_owned(),
                    BTreeMap::from([("filesystem".to_owned(), Vec::new())]),
                )]),
            )
            .unwrap();
        assert_eq!(
            clash.message.as_deref(),
            Some("Failed adding registry: Duplicate registry item: filesystem")
        );

        // The "extension" is another manager serving the extension's socket, whose own
        // logger plugin takes the line; it is not called under any other name.
        let uuid = registered.uuid.unwrap();
        let extension = manager(&core.roster().extension_socket(uuid), Vec::new());
        let taker = Arc::new(TakesCopies::default());
        extension.serve_plugins(Arc::clone(&taker) as Arc<dyn LocalPlugins>);
        let answer = call(
            &socket,
            "logger",
            "filesystem_copy",
            &[("string", "a line")],
        );
        assert_eq!(code_and_message(&answer), (0, "OK".to_owned()));
        assert_eq!(*taker.lines.lock().unwrap(), ["a line"]);
        extension.stop();
        core.stop();
    }

    #[derive(Default)]
    struct TakesCopies {
        lines: Mutex<Vec<String>>,
    }

    impl LocalPlugins for TakesCopies {
        fn holds(&self, registry: &str, item: &str) -> bool {
            (registry, item) == ("logger", "filesystem_copy")
        }
        fn call(
            &self,
            _: &str,
            _: &str,
            request: &PluginRequest,
        ) -> Result<PluginResponse, CallError> {
            self.lines
                .lock()
                .unwrap()
                .push(request.get("string").cloned().unwrap_or_default());
            Ok(Vec::new())
        }
    }

    #[test]
    fn sdk_versions_compare_by_number() {
        assert!(version_at_least("1.7.7", "3.0.7"));
        assert!(version_at_least("1.7.7", "1.7.7"));
        assert!(version_at_least("1.7.7", "1.10.0"));
        assert!(!version_at_least("1.7.7", "1.7.6"));
        assert!(!version_at_least("1.7.7", "0.9"));
        assert!(!version_at_least("1.7.7", ""));
    }
}
