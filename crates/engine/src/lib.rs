//! The SQL engine: an in-memory SQLite connection where every oxquery table is a virtual
//! table with osquery's schema and semantics.
//!
//! [`Engine::new`] registers each [`TableDef`] as an eponymous virtual-table module (so
//! `SELECT * FROM processes` needs no set-up and costs nothing until used), creates views
//! for table aliases, and installs osquery's authorizer. See `vtab` for how SQLite's
//! planner calls become a [`oxquery_table::QueryContext`].
//!
//! Invariant: this is the only crate that opens SQLite for queries. Tables never see
//! SQLite; the shell and the daemon reach it only through [`Engine`].

mod authorizer;
mod batch;
mod collation;
mod format;
mod functions;
pub mod instance;
mod memory;
mod plan;
mod planner;
mod scan_cache;
pub mod sqlite_file;
mod vtab;

pub use batch::{SqlFailure, is_complete, sqlite_version};
pub use format::format_real;
pub use memory::account_sqlite_memory;
pub use oxquery_table::TableFilter;
pub use scan_cache::{CacheStep, ScanCache};

use corosensei::stack::DefaultStack;
use oxquery_table::{
    Cancel, Host, InstanceInfo, LiveState, Registry, StopReason, Table, TableDef, TableSettings,
};
use rusqlite::Connection;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use vtab::{OsqueryTab, TableAux};

/// Why the engine could not start or run a statement.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    DuplicateTable(#[from] oxquery_table::DuplicateTable),
    #[error("{0} is not a regular file")]
    NotAFile(String),
    /// The query was stopped before its end: cancelled, past its deadline, or over its
    /// memory budget (whatever SQLite or the generator reported on the way).
    #[error("interrupted: {0}")]
    Stopped(StopReason),
}

impl EngineError {
    /// Why the query was stopped, when it was.
    pub fn stop_reason(&self) -> Option<StopReason> {
        match self {
            EngineError::Stopped(reason) => Some(*reason),
            _ => None,
        }
    }
}

/// What one query may use; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time from the start of the statement.
    pub timeout: Option<Duration>,
    /// Bytes the query's thread may grow by: SQLite's memory for the statement, the
    /// rows the generators build and the result the caller collects
    /// (see [`oxquery_table::memory`] for what the accounting cannot see).
    pub memory: Option<u64>,
}

/// State the engine's modules and scans share.
pub struct Shared {
    /// Replaced as a whole when settings change; a scan keeps the one it started with.
    host: RwLock<Arc<Host>>,
    /// The running query's token: cancelled from any thread, or by its deadline.
    cancel: Cancel,
    /// Coroutine stacks of finished scans, reused by the next ones (joins nest scans).
    stacks: Mutex<Vec<DefaultStack>>,
    planner_trace: AtomicBool,
    /// Where cacheable tables' rows are kept (see `scan_cache`).
    scan_cache: Mutex<ScanCache>,
    /// Set while a scheduled run executes: its scans may use the cache.
    cache_step: Mutex<Option<CacheStep>>,
    /// Tables the running query has scanned (`--table_delay` waits before the next).
    scanned: Mutex<std::collections::HashSet<String>>,
    /// Rows the tables have handed to SQLite, ever: a progress indicator reads how it
    /// grows (one addition per batch of rows, so it costs nothing when unread).
    rows_read: Arc<AtomicU64>,
}

/// A generator's stack: room for deep parsers; pages are only committed when touched.
const SCAN_STACK_BYTES: usize = 8 << 20;
/// Stacks kept for reuse (one per nesting level of a join is plenty).
const SPARE_STACKS: usize = 8;

impl Shared {
    fn host(&self) -> Arc<Host> {
        Arc::clone(&self.host.read().unwrap_or_else(|p| p.into_inner()))
    }
    fn take_stack(&self) -> DefaultStack {
        let spare = self.stacks.lock().unwrap_or_else(|p| p.into_inner()).pop();
        spare.unwrap_or_else(|| {
            DefaultStack::new(SCAN_STACK_BYTES).expect("mapping a generator stack")
        })
    }
    fn give_stack(&self, stack: DefaultStack) {
        let mut stacks = self.stacks.lock().unwrap_or_else(|p| p.into_inner());
        if stacks.len() < SPARE_STACKS {
            stacks.push(stack);
        }
    }
    fn planner_trace(&self) -> bool {
        self.planner_trace.load(Ordering::Relaxed)
    }
    /// The cache and the run's step when the running query may use the cache.
    fn cache(&self) -> Option<(ScanCache, CacheStep)> {
        let step = (*self.cache_step.lock().unwrap_or_else(|p| p.into_inner()))?;
        let cache = self
            .scan_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Some((cache, step))
    }
    /// Notes that the running query scans `table`; whether it had scanned it already.
    fn scanned_before(&self, table: &str) -> bool {
        !self
            .scanned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(table.to_owned())
    }
}

/// Which tables the connection has modules for now, and the registry generation they
/// reflect.
#[derive(Default)]
struct Attached {
    generation: Option<u64>,
    tables: BTreeMap<String, Arc<dyn Table>>,
}

/// An SQLite connection with the registry's tables attached.
///
/// The registry may change while the engine lives (automatic tables on a config reload,
/// extensions coming and going): before each statement the engine brings its SQLite
/// modules up to date, so `.tables`, `.schema`, `PRAGMA table_xinfo` and
/// `osquery_registry` follow at once.
pub struct Engine {
    conn: Connection,
    shared: Arc<Shared>,
    attached: RefCell<Attached>,
    /// The configuration's views this engine created (TEMP views live in one
    /// connection; the tables' alias views are never here).
    config_views: RefCell<std::collections::BTreeSet<String>>,
    /// The most the last query grew its thread's memory by, in bytes.
    last_peak_memory: Cell<u64>,
}

const MODULE: rusqlite::vtab::Module<'static, OsqueryTab> =
    rusqlite::vtab::Module::eponymous_only_module();
/// The same module with xUpdate, for tables whose spec is writable; other tables keep
/// SQLite's own "may not be modified" error.
const WRITABLE_MODULE: rusqlite::vtab::Module<'static, OsqueryTab> =
    rusqlite::vtab::Module::update_module();

/// How many rows an engine's tables have produced since it opened, readable from any
/// thread while a query runs.
#[derive(Clone, Debug)]
pub struct RowsRead(Arc<AtomicU64>);

impl RowsRead {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A handle that stops the engine's running query from another thread.
#[derive(Clone)]
pub struct CancelHandle {
    cancel: Cancel,
    interrupt: Arc<rusqlite::InterruptHandle>,
}

impl CancelHandle {
    /// Stops the running query (its generators at their next check, SQLite at once).
    pub fn cancel(&self) {
        self.cancel.cancel();
        self.interrupt.interrupt();
    }
}

impl Engine {
    /// Opens the in-memory database with the built-in `tables` (those `filter` allows).
    /// `instance` describes this process for `osquery_info`.
    pub fn new(
        tables: &[&'static TableDef],
        filter: &TableFilter,
        instance: InstanceInfo,
    ) -> Result<Engine, EngineError> {
        Self::with_live(tables, filter, instance, Arc::default())
    }

    /// Like [`Engine::new`], sharing `live` with other engines.
    pub fn with_live(
        tables: &[&'static TableDef],
        filter: &TableFilter,
        instance: InstanceInfo,
        live: Arc<RwLock<LiveState>>,
    ) -> Result<Engine, EngineError> {
        let registry = builtin_registry(tables)?;
        Engine::open(Host {
            instance,
            live,
            tables: registry,
            filter: filter.clone(),
            settings: TableSettings::default(),
            state: Default::default(),
            events: None,
            run: Default::default(),
            carves: None,
            request: Default::default(),
            extensions: None,
            signatures: None,
        })
    }

    /// Opens the in-memory database for `host`: its registry's tables (those its filter
    /// allows), its identity and settings. Engines given clones of one registry and one
    /// `live` state (the daemon's workers) serve the same tables and report the same
    /// schedule.
    pub fn open(host: Host) -> Result<Engine, EngineError> {
        // Too late when something opened SQLite first; the programs call it at start.
        memory::account_sqlite_memory();
        let mut conn = Connection::open_in_memory()?;
        collation::register(&conn)?;
        functions::register(&conn)?;
        conn.authorizer(Some(authorizer::authorize))?;
        let cancel = Cancel::new();
        let watched = cancel.clone();
        // SQLite's own loops (a recursive CTE, a big sort) see the token here.
        conn.progress_handler(1000, Some(move || watched.status().is_some()))?;
        let engine = Engine {
            conn,
            shared: Arc::new(Shared {
                host: RwLock::new(Arc::new(host)),
                cancel,
                stacks: Mutex::new(Vec::new()),
                planner_trace: AtomicBool::new(false),
                scan_cache: Mutex::default(),
                cache_step: Mutex::new(None),
                scanned: Mutex::default(),
                rows_read: Arc::default(),
            }),
            attached: RefCell::new(Attached::default()),
            config_views: RefCell::default(),
            last_peak_memory: Cell::new(0),
        };
        // `carve()` needs the host's carves, which live in the shared state.
        functions::carve::register(&engine.conn, Arc::clone(&engine.shared))?;
        engine.sync()?;
        Ok(engine)
    }

    /// Whether a statement on the connection is part-way through (being stepped).
    fn statement_running(&self) -> bool {
        // SAFETY: walks this connection's statement list on its own thread; the pointers
        // are only passed back to SQLite, never dereferenced here.
        unsafe {
            let db = self.conn.handle();
            let mut stmt = rusqlite::ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
            while !stmt.is_null() {
                if rusqlite::ffi::sqlite3_stmt_busy(stmt) != 0 {
                    return true;
                }
                stmt = rusqlite::ffi::sqlite3_next_stmt(db, stmt);
            }
        }
        false
    }

    /// Brings the connection's modules and alias views in line with the registry.
    /// While a statement is being stepped nothing changes (it keeps the tables it
    /// started with); the next call catches up.
    fn sync(&self) -> Result<(), EngineError> {
        let host = self.shared.host();
        let mut attached = self.attached.borrow_mut();
        let generation = host.tables.generation();
        if attached.generation == Some(generation) || self.statement_running() {
            return Ok(());
        }
        let (generation, tables) = host.tables.snapshot();
        let wanted: BTreeMap<String, Arc<dyn Table>> = tables
            .into_iter()
            .filter(|(t, _)| host.filter.allows(&t.spec().name))
            .map(|(t, _)| (t.spec().name.to_string(), t))
            .collect();
        // Statements cached against replaced modules must not run again.
        self.conn.flush_prepared_statement_cache();
        for (name, table) in &attached.tables {
            let keep = wanted.get(name).is_some_and(|t| Arc::ptr_eq(t, table));
            if !keep {
                for alias in table.spec().aliases.iter() {
                    self.conn
                        .execute_batch(&format!("DROP VIEW IF EXISTS temp.{alias}"))?;
                }
                if !wanted.contains_key(name) {
                    self.drop_module(name)?;
                }
            }
        }
        for (name, table) in &wanted {
            let unchanged = attached
                .tables
                .get(name)
                .is_some_and(|t| Arc::ptr_eq(t, table));
            if unchanged {
                continue;
            }
            let module = if table.spec().writable {
                &WRITABLE_MODULE
            } else {
                &MODULE
            };
            self.conn.create_module(
                name.as_str(),
                module,
                Some(TableAux {
                    table: Arc::clone(table),
                    shared: Arc::clone(&self.shared),
                }),
            )?;
            for alias in table.spec().aliases.iter() {
                self.conn.execute_batch(&format!(
                    "CREATE TEMP VIEW IF NOT EXISTS {alias} AS SELECT * FROM {name}"
                ))?;
            }
        }
        attached.tables = wanted;
        attached.generation = Some(generation);
        Ok(())
    }

    /// Removes a module (and the eponymous table SQLite made for it).
    fn drop_module(&self, name: &str) -> Result<(), EngineError> {
        let c_name = std::ffi::CString::new(name)
            .map_err(|e| rusqlite::Error::ModuleError(e.to_string()))?;
        // SAFETY: the handle is this engine's open connection, used on this thread only;
        // a NULL module removes the name (SQLite's documented way to drop one), and no
        // statement of ours runs now (sync runs only between statements).
        let rc = unsafe {
            rusqlite::ffi::sqlite3_create_module_v2(
                self.conn.handle(),
                c_name.as_ptr(),
                std::ptr::null(),
                std::ptr::null_mut(),
                None,
            )
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            return Err(EngineError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rc),
                Some(format!("could not remove table {name}")),
            )));
        }
        Ok(())
    }

    /// The connection, for running statements, with the registry's tables attached
    /// as of now. rusqlite stays private to the engine.
    pub(crate) fn connection(&self) -> &Connection {
        if let Err(e) = self.sync() {
            log::warn!("attaching the registered tables: {e}");
        }
        &self.conn
    }

    /// The registry this engine follows (register a table there to add it).
    pub fn registry(&self) -> Registry {
        self.shared.host().tables.clone()
    }

    /// Adds (or replaces) a table in this engine's registry.
    pub fn attach(&self, table: Arc<dyn Table>) -> Result<(), EngineError> {
        self.registry()
            .replace(table, oxquery_table::Owner::default());
        self.sync()
    }

    /// Makes `tables` the configuration's automatic tables (replacing the previous set).
    pub fn set_config_tables(&self, tables: Vec<Arc<dyn Table>>) -> Result<(), EngineError> {
        for refused in self
            .registry()
            .set_owned(oxquery_table::Owner::Config, tables)
        {
            log::warn!("Cannot attach automatic table: {refused}");
        }
        self.sync()
    }

    /// Makes `views` (name → `SELECT`) the configuration's views: creates or replaces
    /// each, and drops those an earlier call made that `views` no longer has. A view
    /// that cannot be created is logged and skipped.
    pub fn set_config_views(&self, views: &BTreeMap<String, String>) {
        let conn = self.connection();
        let mut created = self.config_views.borrow_mut();
        for name in created.iter().filter(|n| !views.contains_key(*n)) {
            let statement = format!("DROP VIEW IF EXISTS temp.\"{}\"", name.replace('"', "\"\""));
            if let Err(e) = conn.execute_batch(&statement) {
                log::warn!("Cannot drop view {name}: {e}");
            }
        }
        created.clear();
        for (name, sql) in views {
            let quoted = name.replace('"', "\"\"");
            let statement = format!(
                "DROP VIEW IF EXISTS temp.\"{quoted}\"; CREATE TEMP VIEW \"{quoted}\" AS {sql}"
            );
            match conn.execute_batch(&statement) {
                Ok(()) => {
                    created.insert(name.clone());
                }
                Err(e) => log::warn!("Cannot create view {name}: {e}"),
            }
        }
    }

    /// The attached tables, sorted by name.
    pub fn tables(&self) -> Vec<Arc<dyn Table>> {
        if let Err(e) = self.sync() {
            log::warn!("attaching the registered tables: {e}");
        }
        self.attached.borrow().tables.values().cloned().collect()
    }

    pub fn table(&self, name: &str) -> Option<Arc<dyn Table>> {
        if let Err(e) = self.sync() {
            log::warn!("attaching the registered tables: {e}");
        }
        self.attached.borrow().tables.get(name).cloned()
    }

    /// The host facts and settings scans see now.
    pub fn host(&self) -> Arc<Host> {
        self.shared.host()
    }

    /// Replaces the settings tables act on (a config reload); running scans keep theirs.
    pub fn set_settings(&self, settings: TableSettings) {
        let mut host = self.shared.host.write().unwrap_or_else(|p| p.into_inner());
        let mut next = Host::clone(&host);
        next.settings = settings;
        *host = Arc::new(next);
    }

    /// Where this engine's evented tables read their events (the program's event hub).
    pub fn set_event_reader(&self, reader: Option<Arc<dyn oxquery_table::EventReader>>) {
        let mut host = self.shared.host.write().unwrap_or_else(|p| p.into_inner());
        let mut next = Host::clone(&host);
        next.events = reader;
        *host = Arc::new(next);
    }

    /// Where this engine's `carves` table and `carve()` function keep carves (the
    /// daemon's carver; `None` in the shell).
    pub fn set_carves(&self, carves: Option<Arc<dyn oxquery_table::Carves>>) {
        let mut host = self.shared.host.write().unwrap_or_else(|p| p.into_inner());
        let mut next = Host::clone(&host);
        next.carves = carves;
        *host = Arc::new(next);
    }

    /// The extension manager this engine's `osquery_extensions` and `osquery_registry`
    /// report (`None` when none runs).
    pub fn set_extensions(&self, extensions: Option<Arc<dyn oxquery_table::Extensions>>) {
        let mut host = self.shared.host.write().unwrap_or_else(|p| p.into_inner());
        let mut next = Host::clone(&host);
        next.extensions = extensions;
        *host = Arc::new(next);
    }

    /// The mark of the distributed query this engine runs (a carve's `request_id`).
    pub fn distributed_request(&self) -> oxquery_table::DistributedRequest {
        self.shared.host().request.clone()
    }

    /// The record of the scheduled query this engine runs (evented tables' marks).
    pub fn query_run(&self) -> oxquery_table::QueryRun {
        self.shared.host().run.clone()
    }

    /// `--planner`: print the constraints and columns each generator is given.
    pub fn set_planner_trace(&self, on: bool) {
        self.shared.planner_trace.store(on, Ordering::Relaxed);
    }

    /// The state the daemon updates while running (config hash, schedule statistics).
    pub fn live(&self) -> Arc<RwLock<LiveState>> {
        Arc::clone(&self.shared.host().live)
    }

    /// Makes `cache` the store of this engine's cacheable scans (engines given clones of
    /// one cache share it).
    pub fn set_scan_cache(&self, cache: ScanCache) {
        *self
            .shared
            .scan_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = cache;
    }

    /// Marks the queries that follow as one scheduled run at `step` (their scans of
    /// cacheable tables use the cache), or, with `None`, as ordinary queries.
    pub fn set_cache_step(&self, step: Option<CacheStep>) {
        *self
            .shared
            .cache_step
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = step;
    }

    /// A handle another thread uses to stop this engine's running query.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle {
            cancel: self.shared.cancel.clone(),
            interrupt: Arc::new(self.conn.get_interrupt_handle()),
        }
    }

    /// A handle another thread reads to see how many rows this engine's tables have
    /// produced so far (a progress indicator for a long query).
    pub fn rows_read(&self) -> RowsRead {
        RowsRead(Arc::clone(&self.shared.rows_read))
    }

    /// Starts a query's cancellation window: clears an earlier cancel and sets the
    /// deadline (none: run to the end unless cancelled).
    pub fn begin_query(&self, deadline: Option<Instant>) {
        self.shared
            .scanned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.shared.cancel.reset();
        self.shared.cancel.set_deadline(deadline);
    }

    /// Runs `body` as one query under `limits`: the deadline and the memory window are
    /// set around it, and an error while a limit (or a cancel) stopped it becomes
    /// [`EngineError::Stopped`] with the reason, whatever SQLite said on the way
    /// (SQLITE_INTERRUPT, or SQLITE_NOMEM for a refused allocation). A query that ended
    /// but went over its memory budget on the way fails as well: a budget is a limit,
    /// not a hint.
    fn limited<T>(
        &self,
        limits: Limits,
        body: impl FnOnce() -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        self.begin_query(limits.timeout.map(|t| Instant::now() + t));
        let window = oxquery_table::memory::Window::open(limits.memory);
        let result = body();
        let stopped = self.shared.cancel.status();
        self.last_peak_memory.set(window.close());
        self.shared.cancel.set_deadline(None);
        match (result, stopped) {
            (Err(_), Some(reason)) | (Ok(_), Some(reason @ StopReason::Memory)) => {
                Err(EngineError::Stopped(reason))
            }
            (result, _) => result,
        }
    }

    /// The most the last query grew its thread's memory by, in bytes (its peak).
    pub fn last_peak_memory(&self) -> u64 {
        self.last_peak_memory.get()
    }

    /// Runs one statement and returns its column names and rows as typed values.
    pub fn query(&self, sql: &str) -> Result<QueryResult, EngineError> {
        self.query_limited(sql, Limits::default())
    }

    /// Like [`Engine::query`], stopped with SQLITE_INTERRUPT once `deadline` passes.
    pub fn query_until(
        &self,
        sql: &str,
        deadline: Option<Instant>,
    ) -> Result<QueryResult, EngineError> {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        self.query_limited(
            sql,
            Limits {
                timeout,
                memory: None,
            },
        )
    }

    /// Like [`Engine::query`], under `limits` (see [`Engine::last_peak_memory`] for
    /// what it used).
    pub fn query_limited(&self, sql: &str, limits: Limits) -> Result<QueryResult, EngineError> {
        self.limited(limits, || self.run(sql))
    }

    /// Runs one statement and hands each row to `row` as SQLite produces it (stop early
    /// with `Break`); returns the column names.
    pub fn for_each_row(
        &self,
        sql: &str,
        row: impl FnMut(&[oxquery_table::Value]) -> std::ops::ControlFlow<()>,
    ) -> Result<Vec<String>, EngineError> {
        self.for_each_row_limited(sql, Limits::default(), row)
    }

    /// Like [`Engine::for_each_row`], under `limits`; what `row` keeps counts against
    /// the memory budget.
    pub fn for_each_row_limited(
        &self,
        sql: &str,
        limits: Limits,
        mut row: impl FnMut(&[oxquery_table::Value]) -> std::ops::ControlFlow<()>,
    ) -> Result<Vec<String>, EngineError> {
        self.limited(limits, || {
            let mut stmt = self.connection().prepare(sql)?;
            let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
            step_rows(&mut stmt, &mut row)?;
            Ok(columns)
        })
    }

    fn run(&self, sql: &str) -> Result<QueryResult, EngineError> {
        let mut stmt = self.connection().prepare(sql)?;
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let rows = collect_rows(&mut stmt)?;
        Ok(QueryResult { columns, rows })
    }
}

/// Steps `stmt` to its end (or until `row` says `Break`), handing `row` each result row
/// as typed values.
pub(crate) fn step_rows(
    stmt: &mut rusqlite::Statement<'_>,
    row: &mut dyn FnMut(&[oxquery_table::Value]) -> std::ops::ControlFlow<()>,
) -> rusqlite::Result<()> {
    let width = stmt.column_count();
    let mut cursor = stmt.query([])?;
    let mut values = Vec::with_capacity(width);
    while let Some(r) = cursor.next()? {
        values.clear();
        push_values(r, width, &mut values)?;
        if row(&values).is_break() {
            break;
        }
    }
    Ok(())
}

/// Every result row of `stmt`. Each row's values are made in the vector kept, not
/// copied out of a reused one: a text cell is allocated once.
pub(crate) fn collect_rows(
    stmt: &mut rusqlite::Statement<'_>,
) -> rusqlite::Result<Vec<Vec<oxquery_table::Value>>> {
    let width = stmt.column_count();
    let mut cursor = stmt.query([])?;
    let mut rows = Vec::new();
    while let Some(r) = cursor.next()? {
        let mut values = Vec::with_capacity(width);
        push_values(r, width, &mut values)?;
        rows.push(values);
    }
    Ok(rows)
}

fn push_values(
    row: &rusqlite::Row<'_>,
    width: usize,
    values: &mut Vec<oxquery_table::Value>,
) -> rusqlite::Result<()> {
    for i in 0..width {
        values.push(value_from_ref(row.get_ref(i)?));
    }
    Ok(())
}

/// A registry of built-in tables.
pub fn builtin_registry(tables: &[&'static TableDef]) -> Result<Registry, EngineError> {
    Ok(Registry::with_tables(
        tables.iter().map(|&d| Arc::new(d) as Arc<dyn Table>),
    )?)
}

/// The result of [`Engine::query`].
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<oxquery_table::Value>>,
}

/// Converts an SQLite value to ours, for results and for constraint values. Text that is
/// not UTF-8 keeps its bytes as a BLOB value (never an error, never replaced): a path
/// constraint must find the file with exactly those bytes, writers copy them as osquery
/// does, and differential results escape them as `\xHH`.
pub(crate) fn value_from_ref(v: rusqlite::types::ValueRef<'_>) -> oxquery_table::Value {
    use oxquery_table::Value;
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => match oxquery_table::str_from_utf8(t) {
            Ok(text) => Value::Text(text.to_owned()),
            Err(_) => Value::Blob(t.to_vec()),
        },
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}
