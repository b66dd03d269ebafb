//! `carve(path)`: osquery's aggregate that schedules one carve of every path it saw
//! (`SELECT carve(path) FROM file WHERE path LIKE '/etc/%.conf'`). It answers one row:
//! `Carve Started`, or `Carve Failed:` when the function is off (the default; it needs
//! `--carver_disable_function=false` and `--disable_carver=false`), when no carver is
//! there (the shell) or when the carve could not be stored. Both texts are what osquery
//! returns: it cuts its message (`Carve Started: <guid>`) to 13 bytes.
//!
//! Paths are taken as written (no pattern expansion), each once. Inside a distributed
//! query the carve records that query's id as its `request_id`; elsewhere it is empty.

use std::collections::BTreeSet;
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::functions::{Aggregate, Context};
use rusqlite::types::ValueRef;

use super::{Out, c_text, deterministic};
use crate::Shared;

/// osquery's result text, cut to 13 bytes as osquery cuts it.
const STARTED: &str = "Carve Started";
const FAILED: &str = "Carve Failed:";

struct Carve {
    shared: Arc<Shared>,
}

impl Aggregate<BTreeSet<String>, Out> for Carve {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<BTreeSet<String>> {
        Ok(BTreeSet::new())
    }

    fn step(&self, ctx: &mut Context<'_>, paths: &mut BTreeSet<String>) -> rusqlite::Result<()> {
        let value = ctx.get_raw(0);
        if matches!(value, ValueRef::Null) {
            return Ok(());
        }
        match String::from_utf8(c_text(value).into_owned()) {
            Ok(path) if !path.is_empty() => {
                paths.insert(path);
            }
            Ok(_) => {}
            Err(e) => log::warn!(
                "carve(): skipping a path that is not UTF-8: {}",
                String::from_utf8_lossy(e.as_bytes())
            ),
        }
        Ok(())
    }

    fn finalize(
        &self,
        _: &mut Context<'_>,
        paths: Option<BTreeSet<String>>,
    ) -> rusqlite::Result<Out> {
        let host = self.shared.host();
        let Some(carves) = host.carves.as_ref().filter(|c| c.function_enabled()) else {
            log::warn!(
                "Carve Failed: the carve() function is disabled (it needs osqueryd with \
                 --disable_carver=false and --carver_disable_function=false)"
            );
            return Ok(Out::text(FAILED));
        };
        let paths: Vec<String> = paths.unwrap_or_default().into_iter().collect();
        if paths.is_empty() {
            log::warn!("Carve Failed: carve() saw no path");
            return Ok(Out::text(FAILED));
        }
        let request_id = host.request.id().unwrap_or_default();
        match carves.schedule(&paths, &request_id) {
            Ok(carve) => {
                log::info!(
                    "Carve Started: {} ({} paths)",
                    carve.carve_guid,
                    paths.len()
                );
                Ok(Out::text(STARTED))
            }
            Err(e) => {
                log::warn!("Carve Failed: {e}");
                Ok(Out::text(FAILED))
            }
        }
    }
}

/// Registers `carve` on `conn`, reading the carver from `shared`'s host at each call.
pub(crate) fn register(conn: &Connection, shared: Arc<Shared>) -> rusqlite::Result<()> {
    // Not deterministic: it has a side effect.
    let flags = deterministic() - rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_aggregate_function("carve", 1, flags, Carve { shared })
}
