//! Taking over what osquery stored, once, when `--database_path` is the RocksDB
//! directory osquery left on a host that switched to oxquery: the enrollment node key
//! (`configurations/nodeKey`, `nodeKeyTime`), the instance identity
//! (`configurations/instance_uuid_v1`) and each scheduled query's differential state
//! (`queries/<name>`, `<name>epoch`, `<name>counter`, `query.<name>`, with
//! `configurations/timestamp.<name>`). A fleet server then sees the same host (no new
//! enrollment, the same `instance` identifier), and the first run of a query after the
//! switch logs only what changed since osquery's last run.
//!
//! osquery's directory is only read (`oxquery_store::osquery_rocksdb`); our store stays
//! beside it (`config::database_file`). The attempt is made once: a marker key in our
//! store records it, whatever the outcome, so an identity oxquery made after a failed
//! attempt is never swapped later. Nothing already in our store is overwritten. The diff
//! state of every query is taken, scheduled or not: the usual expiry removes the ones no
//! longer scheduled a week after their last run.

use super::startup::INSTANCE_KEY;
use crate::results::stored;
use oxquery_remote::enroll::{NODE_KEY, NODE_KEY_TIME};
use oxquery_store::osquery_rocksdb::{self, ReadError};
use oxquery_store::{Domain, Store};
use std::collections::BTreeMap;
use std::path::Path;

/// `configurations/<IMPORT_MARKER>`: when and from where the import was attempted, and
/// what came of it.
pub(crate) const IMPORT_MARKER: &str = "oxquery.osquery_import";

/// Keys of osquery's `queries` domain that are not a query's last results.
const NOT_RESULTS: [&str; 3] = ["query.", "cache.", "config_views."];

/// A status line for the caller to log once its status log runs.
pub(crate) type Note = (log::Level, String);

/// Imports from osquery's RocksDB at `dir` into `store`, unless done before or `dir` is
/// not a RocksDB database. Returns the lines to log; never fails the start-up.
pub(crate) fn import_once(store: &mut Store, dir: &Path, now: i64) -> Vec<Note> {
    if !osquery_rocksdb::is_rocksdb_dir(dir) {
        return Vec::new();
    }
    match store.get(Domain::Configurations, IMPORT_MARKER) {
        Ok(None) => {}
        Ok(Some(_)) => return Vec::new(),
        Err(e) => {
            return vec![(
                log::Level::Warn,
                format!("Cannot check whether osquery's database was imported: {e}"),
            )];
        }
    }
    let nothing = "its node key, instance identity and differential results are not taken over";
    let domains =
        match osquery_rocksdb::read_domains(dir, &[Domain::Configurations, Domain::Queries]) {
            Ok(domains) => domains,
            // Not recorded: a build with the reader may still import later, without
            // overwriting anything made meanwhile.
            Err(ReadError::NotBuilt) => {
                return vec![(
                    log::Level::Warn,
                    format!(
                        "--database_path {} is osquery's RocksDB database, but {}: {nothing}",
                        dir.display(),
                        ReadError::NotBuilt
                    ),
                )];
            }
            Err(e) => {
                let marker = format!("{now} {} failed: {e}", dir.display());
                let mut notes = vec![(
                    log::Level::Warn,
                    format!(
                        "Cannot read osquery's database {} ({e}); starting afresh: {nothing}",
                        dir.display()
                    ),
                )];
                if let Err(e) = store.put(Domain::Configurations, IMPORT_MARKER, marker.as_bytes())
                {
                    notes.push((log::Level::Warn, format!("Cannot record the import: {e}")));
                }
                return notes;
            }
        };
    let text = |pairs: Vec<(Vec<u8>, Vec<u8>)>| -> BTreeMap<String, Vec<u8>> {
        // osquery's keys are text; one that is not cannot be a key of ours.
        pairs
            .into_iter()
            .filter_map(|(k, v)| Some((String::from_utf8(k).ok()?, v)))
            .collect()
    };
    let mut configurations = BTreeMap::new();
    let mut queries = BTreeMap::new();
    for (domain, pairs) in domains {
        match domain {
            Domain::Configurations => configurations = text(pairs),
            _ => queries = text(pairs),
        }
    }
    let plan = plan(&configurations, &queries, now);
    let marker = format!("{now} {} imported", dir.display());
    let written = store.transaction(|tx| {
        let mut written = Vec::new();
        for (domain, key, value) in &plan.puts {
            if tx.get(*domain, key)?.is_none() {
                tx.put(*domain, key, value)?;
                written.push((*domain, key.as_str()));
            }
        }
        tx.put(Domain::Configurations, IMPORT_MARKER, marker.as_bytes())?;
        Ok(written)
    });
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            return vec![(
                log::Level::Warn,
                format!(
                    "Cannot store what was read from osquery's database {}: {e}",
                    dir.display()
                ),
            )];
        }
    };
    let took = |key: &str| written.contains(&(Domain::Configurations, key));
    let mut parts = Vec::new();
    if took(NODE_KEY) {
        parts.push("the node key".to_owned());
    }
    if took(INSTANCE_KEY) {
        let uuid = configurations
            .get(INSTANCE_KEY)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        parts.push(format!("the instance identity {uuid}"));
    }
    let names: Vec<&str> = plan
        .queries
        .iter()
        .filter(|n| written.contains(&(Domain::Queries, n.as_str())))
        .map(String::as_str)
        .collect();
    if !names.is_empty() {
        parts.push(format!(
            "the differential results of {} queries ({})",
            names.len(),
            names.join(", ")
        ));
    }
    let mut notes = vec![(
        log::Level::Info,
        if parts.is_empty() {
            format!(
                "Read osquery's database {}: nothing to take over (or already in this store)",
                dir.display()
            )
        } else {
            format!(
                "Imported from osquery's database {} (left unchanged): {}",
                dir.display(),
                parts.join("; ")
            )
        },
    )];
    for name in &plan.unreadable {
        notes.push((
            log::Level::Warn,
            format!("osquery's stored results of {name} are unreadable; not imported"),
        ));
    }
    notes
}

/// What to write, from osquery's `configurations` and `queries` domains.
#[derive(Debug, Default)]
struct Plan {
    puts: Vec<(Domain, String, Vec<u8>)>,
    /// The names whose last results are imported.
    queries: Vec<String>,
    /// Names whose stored results are not a JSON array of rows.
    unreadable: Vec<String>,
}

fn plan(
    configurations: &BTreeMap<String, Vec<u8>>,
    queries: &BTreeMap<String, Vec<u8>>,
    now: i64,
) -> Plan {
    let mut plan = Plan::default();
    for key in [NODE_KEY, NODE_KEY_TIME, INSTANCE_KEY] {
        if let Some(value) = configurations.get(key).filter(|v| !v.is_empty()) {
            plan.puts
                .push((Domain::Configurations, key.to_owned(), value.clone()));
        }
    }
    for (name, value) in queries {
        // `<name>epoch` and `<name>counter` come with `<name>`; a name osquery stored
        // always has an epoch (osquery writes the two together).
        let is_suffix_of_another = ["epoch", "counter"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|base| queries.contains_key(base))
        });
        if name.is_empty()
            || is_suffix_of_another
            || NOT_RESULTS.iter().any(|p| name.starts_with(p))
        {
            continue;
        }
        let Some(rows) = stored::from_osquery(value) else {
            plan.unreadable.push(name.clone());
            continue;
        };
        plan.puts
            .push((Domain::Queries, name.clone(), rows.into_text().into_bytes()));
        for key in [
            format!("{name}epoch"),
            format!("{name}counter"),
            format!("query.{name}"),
        ] {
            if let Some(v) = queries.get(&key) {
                plan.puts.push((Domain::Queries, key, v.clone()));
            }
        }
        // The expiry of unscheduled queries counts from the last run; one without a
        // recorded run counts from the import.
        let stamp = format!("timestamp.{name}");
        let last_run = configurations
            .get(&stamp)
            .cloned()
            .unwrap_or_else(|| now.to_string().into_bytes());
        plan.puts.push((Domain::Configurations, stamp, last_run));
        plan.queries.push(name.clone());
    }
    plan
}

#[cfg(test)]
mod tests;
