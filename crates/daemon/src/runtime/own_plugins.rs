//! The daemon's own config and logger plugins as the extension manager's `call` reaches
//! them (osquery's manager calls its registry's local items): installed into the manager
//! with `Manager::serve_plugins` once the loggers run, so the extensions crate knows
//! nothing of the daemon.
//!
//! * `config`/`filesystem`: `genConfig`, `genPack`, `option`, answered from the files
//!   as they are now ([`oxquery_config::filesystem_config_call`]).
//! * `logger`/`filesystem`, `stdout`, `syslog`, `tls`, `kafka_producer`, `aws_kinesis`,
//!   `aws_firehose` (those running): `{"string": line}` and
//!   `{"snapshot": line}` go to that plugin alone, as osquery's `logString` to one plugin
//!   does. The line is queued ([`DirectLines`], bounded) and the logger thread writes it
//!   to the sink between two drains of the outbox, so it never lands inside a batch; the
//!   call succeeds once it is queued (as osquery's buffered loggers answer). `init`
//!   succeeds and does nothing: the plugin is running already.
//!
//! Other requests get osquery's "Unsupported call to logger plugin"; the daemon's other
//! plugins (the tls config plugin, distributed) are not offered (a call to them is
//! refused as one to an item nobody holds).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use oxquery_extensions::{CallError, LocalPlugins, PluginRequest, PluginResponse};

use crate::item::Stream;
use crate::outbox::Outbox;

/// Lines an extension handed a logger plugin, waiting for the logger thread.
const DIRECT_LINES_MAX: usize = 10_000;
/// The daemon's built-in logger plugins that take a line from an extension (not the
/// extensions' own loggers, which the manager routes to the extension itself).
const DIRECT_LOGGERS: [&str; 7] = [
    "filesystem",
    "stdout",
    "syslog",
    "tls",
    "kafka_producer",
    "aws_kinesis",
    "aws_firehose",
];

/// One line for one sink.
struct DirectLine {
    sink: &'static str,
    stream: Stream,
    line: Vec<u8>,
}

/// Lines extensions handed the daemon's logger plugins, until the logger thread writes
/// them ([`DirectLines::deliver`]). Bounded: past [`DIRECT_LINES_MAX`] a call is refused.
pub(crate) struct DirectLines {
    queue: Mutex<VecDeque<DirectLine>>,
    /// The logger thread's wake-up (`Daemon::flush`).
    wake: Arc<(Mutex<bool>, Condvar)>,
}

impl DirectLines {
    pub(crate) fn new(wake: Arc<(Mutex<bool>, Condvar)>) -> DirectLines {
        DirectLines {
            queue: Mutex::default(),
            wake,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<DirectLine>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, sink: &'static str, stream: Stream, line: &str) -> Result<(), CallError> {
        {
            let mut queue = self.lock();
            if queue.len() >= DIRECT_LINES_MAX {
                return Err(CallError::Failed {
                    code: 1,
                    message: format!(
                        "The {sink} logger plugin has {DIRECT_LINES_MAX} lines waiting; try again later"
                    ),
                });
            }
            queue.push_back(DirectLine {
                sink,
                stream,
                line: line.as_bytes().to_vec(),
            });
        }
        let (flag, cv) = &*self.wake;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_one();
        Ok(())
    }

    /// Writes the queued lines to their sinks, in order (the logger thread, after a
    /// drain). Lines for a sink failing now stay queued for the next time; a write that
    /// fails loses its lines, with a warning.
    pub(crate) fn deliver(&self, outbox: &mut Outbox) {
        let queued: Vec<DirectLine> = self.lock().drain(..).collect();
        let mut kept = Vec::new();
        for DirectLine { sink, stream, line } in queued {
            match outbox.write_direct(sink, stream, std::slice::from_ref(&line)) {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    log::warn!("Logger {sink} failed to write a line from an extension: {e}")
                }
                None => kept.push(DirectLine { sink, stream, line }),
            }
        }
        if !kept.is_empty() {
            let mut queue = self.lock();
            for line in kept.into_iter().rev() {
                queue.push_front(line);
            }
        }
    }
}

/// The daemon's plugins the extension manager's `call` reaches; see the module
/// documentation.
pub(crate) struct OwnPlugins {
    /// `--config_path`.
    pub(crate) config_path: PathBuf,
    /// The flags, for the config plugin's `option` action.
    pub(crate) flags: Vec<oxquery_table::FlagValue>,
    /// The built-in logger plugins running (the sinks' names).
    pub(crate) loggers: Vec<&'static str>,
    pub(crate) lines: Arc<DirectLines>,
}

fn failure(message: impl Into<String>) -> CallError {
    CallError::Failed {
        code: 1,
        message: message.into(),
    }
}

impl OwnPlugins {
    fn logger(&self, item: &str) -> Option<&'static str> {
        self.loggers
            .iter()
            .copied()
            .find(|name| *name == item && DIRECT_LOGGERS.contains(name))
    }
}

impl LocalPlugins for OwnPlugins {
    fn holds(&self, registry: &str, item: &str) -> bool {
        match registry {
            "config" => item == "filesystem",
            "logger" => self.logger(item).is_some(),
            _ => false,
        }
    }

    fn call(
        &self,
        registry: &str,
        item: &str,
        request: &PluginRequest,
    ) -> Result<PluginResponse, CallError> {
        if registry == "config" {
            return oxquery_config::filesystem_config_call(&self.config_path, &self.flags, request)
                .map_err(failure);
        }
        let Some(sink) = self.logger(item) else {
            return Err(failure(format!("Cannot call registry item: {item}")));
        };
        // osquery's LoggerPlugin::call looks at the keys in this order.
        if let Some(line) = request.get("string") {
            self.lines.push(sink, Stream::Results, line)?;
        } else if let Some(line) = request.get("snapshot") {
            self.lines.push(sink, Stream::Snapshots, line)?;
        } else if !request.contains_key("init") {
            return Err(failure("Unsupported call to logger plugin"));
        }
        Ok(PluginResponse::new())
    }
}
