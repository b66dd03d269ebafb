//! The tables a program serves: its built-ins and, with `--enable_foreign`, the other
//! platforms' tables (declared from osquery's data, no rows). Every engine the shell and
//! the daemon open (the shell's, the daemon's scheduler and workers, `--config_check`'s)
//! is made here, so all of them serve the same set.

use oxquery_engine::{Engine, EngineError, TableFilter};
use oxquery_flags::{Flags, flag};
use oxquery_table::{Carves, EventReader, InstanceInfo, LiveState, Owner, Table, TableDef};
use std::sync::{Arc, RwLock};

/// Builds the other platforms' tables (`oxquery_tables::foreign::tables`). The programs
/// do not depend on the tables crate: the `osquery` binary hands them this.
pub type ForeignTables = fn() -> Vec<Arc<dyn Table>>;

/// What a program's engines serve.
#[derive(Clone)]
pub struct ProgramTables<'a> {
    builtin: &'a [&'static TableDef],
    foreign: Vec<Arc<dyn Table>>,
    /// Where evented tables read their events; `None` with events disabled.
    events: Option<Arc<dyn EventReader>>,
    /// Where the `carves` table and `carve()` keep carves; `None` outside the daemon.
    carves: Option<Arc<dyn Carves>>,
}

impl<'a> ProgramTables<'a> {
    /// The built-in tables alone (as with `--enable_foreign` off).
    pub fn builtin(builtin: &'a [&'static TableDef]) -> Self {
        ProgramTables {
            builtin,
            foreign: Vec::new(),
            events: None,
            carves: None,
        }
    }

    /// The built-in tables and, when `flags` set `--enable_foreign`, the tables
    /// `foreign` builds (only then).
    pub fn from_flags(
        builtin: &'a [&'static TableDef],
        foreign: ForeignTables,
        flags: &Flags,
    ) -> Self {
        ProgramTables {
            builtin,
            foreign: if flags.get(flag::enable_foreign) {
                foreign()
            } else {
                Vec::new()
            },
            events: None,
            carves: None,
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

    /// The built-in tables.
    pub fn builtin_tables(&self) -> &'a [&'static TableDef] {
        self.builtin
    }

    /// An engine serving these tables (those `filter` allows), sharing `live`. A foreign
    /// table named like a built-in one is left out: the Linux table stays.
    pub fn engine(
        &self,
        filter: &TableFilter,
        instance: InstanceInfo,
        live: Arc<RwLock<LiveState>>,
    ) -> Result<Engine, EngineError> {
        let engine = Engine::with_live(self.builtin, filter, instance, live)?;
        engine.set_event_reader(self.events.clone());
        engine.set_carves(self.carves.clone());
        let registry = engine.registry();
        for table in &self.foreign {
            if let Err(taken) = registry.add(Arc::clone(table), Owner::BuiltIn) {
                log::debug!(
                    "Not registering the foreign table {}: a Linux table has the name",
                    taken.0
                );
            }
        }
        Ok(engine)
    }
}
