//! The tables a program serves: its built-ins and, with `--enable_foreign`, the other
//! platforms' tables (declared from osquery's data, no rows). Every engine the shell and
//! the daemon open (the shell's, the daemon's scheduler and workers, `--config_check`'s)
//! is made here over one shared [`Registry`], so all of them serve the same set, and a
//! table registered while the program runs (an extension's) reaches every engine.

use oxquery_engine::{Engine, EngineError, TableFilter};
use oxquery_flags::{Flags, flag};
use oxquery_table::{
    Carves, EventReader, Extensions, Host, InstanceInfo, LiveState, Owner, Registry,
    SignatureFetch, Table, TableDef,
};
use std::sync::{Arc, RwLock};

/// Builds the other platforms' tables (`oxquery_tables::foreign::tables`). The programs
/// do not depend on the tables crate: the `osquery` binary hands them this.
pub type ForeignTables = fn() -> Vec<Arc<dyn Table>>;

/// What a program's engines serve.
#[derive(Clone)]
pub struct ProgramTables<'a> {
    builtin: &'a [&'static TableDef],
    /// Every table of the program, shared by all its engines (clones of this value
    /// share it too).
    registry: Registry,
    /// Where evented tables read their events; `None` with events disabled.
    events: Option<Arc<dyn EventReader>>,
    /// Where the `carves` table and `carve()` keep carves; `None` outside the daemon.
    carves: Option<Arc<dyn Carves>>,
    /// The extension manager; `None` when none runs.
    extensions: Option<Arc<dyn Extensions>>,
    /// The TLS client the yara tables' `sigurl` fetches with; `None` outside the daemon.
    signatures: Option<Arc<dyn SignatureFetch>>,
}

impl<'a> ProgramTables<'a> {
    /// The built-in tables alone (as with `--enable_foreign` off).
    pub fn builtin(builtin: &'a [&'static TableDef]) -> Self {
        Self::with_foreign(builtin, Vec::new())
    }

    /// The built-in tables and, when `flags` set `--enable_foreign`, the tables
    /// `foreign` builds (only then).
    pub fn from_flags(
        builtin: &'a [&'static TableDef],
        foreign: ForeignTables,
        flags: &Flags,
    ) -> Self {
        let foreign = if flags.get(flag::enable_foreign) {
            foreign()
        } else {
            Vec::new()
        };
        Self::with_foreign(builtin, foreign)
    }

    /// The registry of `builtin` and `foreign` tables. A foreign table named like a
    /// built-in one is left out: the Linux table stays.
    fn with_foreign(builtin: &'a [&'static TableDef], foreign: Vec<Arc<dyn Table>>) -> Self {
        let registry = Registry::new();
        for table in builtin {
            if let Err(taken) = registry.add(Arc::new(*table), Owner::BuiltIn) {
                // The tables crate's tests keep built-in names unique.
                log::error!("Two built-in tables are named {}", taken.0);
            }
        }
        for table in foreign {
            if let Err(taken) = registry.add(table, Owner::BuiltIn) {
                log::debug!(
                    "Not registering the foreign table {}: a Linux table has the name",
                    taken.0
                );
            }
        }
        ProgramTables {
            builtin,
            registry,
            events: None,
            carves: None,
            extensions: None,
            signatures: None,
        }
    }

    /// Engines made from now on read evented tables from `events` (the program's hub).
    pub fn set_events(&mut self, events: Option<Arc<dyn EventReader>>) {
        self.events = events;
    }

    /// Engines made from now on keep carves in `carves` (the daemon's carver).
    pub fn set_carves(&mut self, carves: Option<Arc<dyn Carves>>) {
        self.carves = carves;
    }

    /// Engines made from now on report the extension manager `extensions`.
    pub fn set_extensions(&mut self, extensions: Option<Arc<dyn Extensions>>) {
        self.extensions = extensions;
    }

    /// Engines made from now on fetch yara `sigurl` rules through `signatures`.
    pub fn set_signatures(&mut self, signatures: Option<Arc<dyn SignatureFetch>>) {
        self.signatures = signatures;
    }

    /// Every table the program's engines serve (shared with them).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The built-in tables.
    pub fn builtin_tables(&self) -> &'a [&'static TableDef] {
        self.builtin
    }

    /// An engine serving these tables (those `filter` allows), sharing `live`.
    pub fn engine(
        &self,
        filter: &TableFilter,
        instance: InstanceInfo,
        live: Arc<RwLock<LiveState>>,
    ) -> Result<Engine, EngineError> {
        Engine::open(Host {
            instance,
            live,
            tables: self.registry.clone(),
            filter: filter.clone(),
            events: self.events.clone(),
            carves: self.carves.clone(),
            extensions: self.extensions.clone(),
            signatures: self.signatures.clone(),
            ..Host::default()
        })
    }
}
