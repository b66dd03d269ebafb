//! The daemon's side of osquery's TLS remote API: one client and one node key shared by
//! the `tls` config, logger and distributed plugins, set up once when any of them is
//! active. The store opens before the config when the config comes over TLS, since the
//! node key that fetches it lives there.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use oxquery_engine::Engine;
use oxquery_flags::{Flags, flag};
use oxquery_remote::config::{ConfigSettings, SOURCE_NAME, fetch_config};
use oxquery_remote::{EnrollSettings, NodeKeys, TlsClient, TlsSettings};
use oxquery_store::Store;
use serde_json::{Map, Value};

use crate::config::{ConfigError, Source};
use crate::distributed::{Distributed, DistributedSettings};
use crate::item::Decorations;
use crate::logger::tls::{
    TlsLoggerSettings, TlsSink, attach_status_queue, post_status, spawn_status_sender,
};
use crate::logger::{HostIdentifier, StatusControl};

/// Whether `--config_plugin` is `tls`.
pub(super) fn config_over_tls(flags: &Flags) -> bool {
    flags.get(flag::config_plugin) == "tls"
}

fn logger_over_tls(flags: &Flags) -> bool {
    flags
        .get(flag::logger_plugin)
        .split(',')
        .any(|p| p.trim() == "tls")
}

pub(super) fn distributed_over_tls(flags: &Flags) -> bool {
    !flags.get(flag::disable_distributed) && flags.get(flag::distributed_plugin) == "tls"
}

/// Whether the carver uploads (to the TLS server, with the node key).
fn carver_uploads(flags: &Flags) -> bool {
    !flags.get(flag::disable_carver) && !flags.get(flag::carver_start_endpoint).is_empty()
}

/// Whether any plugin needs the TLS server.
pub(super) fn wanted(flags: &Flags) -> bool {
    config_over_tls(flags)
        || logger_over_tls(flags)
        || distributed_over_tls(flags)
        || carver_uploads(flags)
}

/// The first row of each table osquery sends as `host_details`, values as strings.
pub(super) fn host_details(engine: &Engine) -> Value {
    let mut details = Map::new();
    for table in ["os_version", "osquery_info", "system_info", "platform_info"] {
        let row = match engine.query(&format!("select * from {table} limit 1")) {
            Ok(result) => result
                .rows
                .first()
                .map(|row| {
                    result
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| (c.clone(), Value::from(v.as_text().unwrap_or_default())))
                        .collect::<Map<_, _>>()
                })
                .unwrap_or_default(),
            Err(e) => {
                log::warn!("Cannot read {table} for enrollment: {e}");
                Map::new()
            }
        };
        details.insert(table.to_owned(), Value::Object(row));
    }
    Value::Object(details)
}

/// The node key and client every TLS plugin uses; `None` when none is active.
pub(super) fn setup(
    flags: &Flags,
    store: &Arc<Mutex<Store>>,
    host_identifier: &str,
    details: Value,
) -> Result<Option<Arc<NodeKeys>>, String> {
    if !wanted(flags) {
        return Ok(None);
    }
    let client = TlsClient::new(TlsSettings::from_flags(
        flags,
        oxquery_engine::instance::VERSION,
    ))?;
    let keys = NodeKeys::new(
        client,
        EnrollSettings::from_flags(flags, host_identifier),
        Arc::clone(store),
        Box::new(move || details.clone()),
    );
    Ok(Some(Arc::new(keys)))
}

/// The config's sources from the TLS server (one, named `tls`).
pub(super) fn config_sources(
    keys: &NodeKeys,
    flags: &Flags,
    stop: &AtomicBool,
) -> Result<Vec<Source>, ConfigError> {
    let settings = ConfigSettings {
        endpoint: flags.get(flag::config_tls_endpoint).to_owned(),
        max_attempts: flags.get(flag::config_tls_max_attempts),
    };
    fetch_config(keys, &settings, stop)
        .map(|text| vec![Source::new(SOURCE_NAME, text)])
        .map_err(|message| ConfigError::Read {
            path: keys.client().url(&settings.endpoint),
            message,
        })
}

/// The `tls` logger sink, when `--logger_plugin` names it.
pub(super) fn logger_sink(
    keys: Option<&Arc<NodeKeys>>,
    flags: &Flags,
    stop: &Arc<AtomicBool>,
) -> Option<TlsSink> {
    if !logger_over_tls(flags) {
        return None;
    }
    let keys = keys?;
    Some(TlsSink::new(
        Arc::clone(keys),
        tls_logger_settings(flags),
        Arc::clone(stop),
    ))
}

fn tls_logger_settings(flags: &Flags) -> TlsLoggerSettings {
    TlsLoggerSettings {
        endpoint: flags.get(flag::logger_tls_endpoint).to_owned(),
        max_lines: usize::try_from(flags.get(flag::logger_tls_max_lines)).unwrap_or(usize::MAX),
        max_linesize: usize::try_from(flags.get(flag::logger_tls_max_linesize))
            .unwrap_or(usize::MAX),
        compress: flags.get(flag::logger_tls_compress),
        backoff_max: std::time::Duration::from_secs(flags.get(flag::logger_tls_backoff_max).max(1)),
    }
}

/// Sends the status log to the TLS logger too (unless `--tls_disable_status_log`), every
/// `--logger_tls_period` seconds.
pub(super) fn start_status(
    keys: Option<&Arc<NodeKeys>>,
    flags: &Flags,
    control: Option<&StatusControl>,
    host: HostIdentifier,
    decorations: Arc<Mutex<Decorations>>,
    stop: &Arc<AtomicBool>,
) {
    let (Some(keys), Some(control)) = (keys, control) else {
        return;
    };
    if !logger_over_tls(flags) || flags.get(flag::tls_disable_status_log) {
        return;
    }
    let queue = attach_status_queue(control, host, decorations);
    let period = std::time::Duration::from_secs(flags.get(flag::logger_tls_period).max(1));
    let settings = tls_logger_settings(flags);
    let (keys, sender_stop) = (Arc::clone(keys), Arc::clone(stop));
    if let Err(e) = spawn_status_sender(
        "tls",
        period,
        settings.max_lines,
        queue,
        Arc::clone(stop),
        move |lines| post_status(&keys, &settings, lines, &sender_stop),
    ) {
        log::error!("Cannot start the TLS status logger: {e}");
    }
}

/// Starts the distributed plugin's thread over its own `engine`, when active.
pub(super) fn start_distributed(
    keys: Option<&Arc<NodeKeys>>,
    flags: &Flags,
    store: &Arc<Mutex<Store>>,
    engine: Engine,
    stop: &Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    if !distributed_over_tls(flags) {
        return None;
    }
    let plugin = Distributed::new(
        Arc::clone(keys?),
        DistributedSettings::from_flags(flags),
        Arc::clone(store),
    );
    let stop = Arc::clone(stop);
    std::thread::Builder::new()
        .name("distributed".into())
        .spawn(move || plugin.run(&engine, &stop))
        .map_err(|e| log::error!("Cannot start the distributed plugin: {e}"))
        .ok()
}
