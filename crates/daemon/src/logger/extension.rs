//! Logger plugins an extension provides (`--logger_plugin=filesystem,<extension's>`),
//! called through the extension manager as osquery calls them:
//!
//! * at start, `{"init": "osqueryd"}`, then `{"action": "features"}`, whose answer's
//!   status code is a bit mask: [`FEATURE_STATUS`] asks for the status log,
//!   [`FEATURE_EVENT`] for event rows (osquery's `LOGGER_FEATURE_LOGSTATUS` /
//!   `LOGGER_FEATURE_LOGEVENT`);
//! * each result line as `{"string": <line>, "category": "event"}`, each snapshot line as
//!   `{"snapshot": <line>}`, one call per line;
//! * status lines, every few seconds, as `{"status": "true", "log": <JSON array of
//!   {"s","f","i","m","h","c","u"}>}`, beginning with those logged during start-up
//!   before the plugin was set up (osquery's log sink buffers them until then);
//! * with the events feature, each event row as it is added, `{"event": <row JSON>}`
//!   (osquery's `EventFactory::forwardEvent`: the row with `time` and `eid`, one call
//!   per row). Rows wait in a bounded queue and go out from a thread of their own, so
//!   a slow plugin never holds up an event publisher.
//!
//! Results ride on the outbox like every sink's: a line counts as delivered only once
//! its call succeeded, so while the extension is gone its results wait in the store and
//! go out in order when it is back. Within one process a batch cut short by a failed
//! call resumes after the last line the plugin took; after a crash the interrupted
//! batch is sent whole again (at-least-once, like the TLS logger).

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use oxquery_extensions::{CallError, PluginCaller, PluginRequest};

use crate::item::Stream;
use crate::logger::format::calendar_time;
use crate::logger::tls::{StatusQueue, spawn_status_sender};
use crate::logger::{HostIdentifier, StatusControl, StatusOutput, StatusRecord};
use crate::sink::Sink;

/// The registry logger plugins live in.
pub const REGISTRY: &str = "logger";
/// Feature bit: the plugin wants the status log.
pub const FEATURE_STATUS: i32 = 1;
/// Feature bit: the plugin wants event rows as they happen.
pub const FEATURE_EVENT: i32 = 2;
/// How often queued status lines go to the plugin (osquery's daemon relays every 3 s).
pub const STATUS_PERIOD: Duration = Duration::from_secs(3);
/// Most status lines in one call.
const STATUS_BATCH: usize = 1024;
/// How often queued event rows go to the plugin.
pub const EVENT_PERIOD: Duration = Duration::from_secs(1);
/// Most event rows waiting for a plugin (the oldest go first).
const EVENT_QUEUE_MAX: usize = 10_000;

/// `{"init": <process name>}`, the first call osquery makes to an active logger plugin.
pub fn init_request(process: &str) -> PluginRequest {
    PluginRequest::from([("init".to_owned(), process.to_owned())])
}

/// `{"action": "features"}`.
pub fn features_request() -> PluginRequest {
    PluginRequest::from([("action".to_owned(), "features".to_owned())])
}

/// The request carrying one line of `stream`.
pub fn line_request(stream: Stream, line: &[u8]) -> PluginRequest {
    // Thrift strings are text to every SDK: bytes that are not UTF-8 are replaced.
    let text = String::from_utf8_lossy(line).into_owned();
    match stream {
        Stream::Results => PluginRequest::from([
            ("string".to_owned(), text),
            ("category".to_owned(), "event".to_owned()),
        ]),
        Stream::Snapshots => PluginRequest::from([("snapshot".to_owned(), text)]),
    }
}

/// The features bit mask a `features` call answered. The plugin answers with its status
/// code, which the caller sees as a failed call with that code; a call that failed
/// otherwise counts as osquery counts it, as status 1 (so the status log is offered,
/// and a plugin that cannot take it just refuses those calls).
pub fn features_of(answer: &Result<oxquery_extensions::PluginResponse, CallError>) -> i32 {
    match answer {
        Ok(_) => 0,
        Err(CallError::Failed { code, .. }) => *code,
        Err(_) => 1,
    }
}

/// One logger plugin of an extension, as the daemon sees it after start-up.
#[derive(Clone)]
pub struct ExtensionLogger {
    pub name: &'static str,
    pub features: i32,
    pub caller: Arc<dyn PluginCaller>,
}

impl ExtensionLogger {
    /// Activates `name`: the `init` call, then `features` (osquery ignores what `init`
    /// answers, and so do we).
    pub fn activate(name: &str, caller: Arc<dyn PluginCaller>) -> ExtensionLogger {
        // The outbox and the status sender want a `&'static str` name; a logger plugin
        // is set up once per process, so this is a few bytes, once.
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        if let Err(e) = caller.call(REGISTRY, name, &init_request("osqueryd")) {
            log::debug!("Logger plugin {name} answered init with: {e}");
        }
        let features = features_of(&caller.call(REGISTRY, name, &features_request()));
        ExtensionLogger {
            name,
            features,
            caller,
        }
    }

    pub fn wants_status(&self) -> bool {
        self.features & FEATURE_STATUS != 0
    }

    pub fn wants_events(&self) -> bool {
        self.features & FEATURE_EVENT != 0
    }

    /// When the plugin asked for events: the queue the event rows go into, sent to the
    /// plugin every [`EVENT_PERIOD`] until `stop`, one call per row.
    pub fn start_events(&self, stop: &Arc<AtomicBool>) -> Option<Arc<StatusQueue>> {
        if !self.wants_events() {
            return None;
        }
        let queue = StatusQueue::new(EVENT_QUEUE_MAX);
        let (caller, name) = (Arc::clone(&self.caller), self.name);
        let sender = spawn_status_sender(
            name,
            EVENT_PERIOD,
            1,
            Arc::clone(&queue),
            Arc::clone(stop),
            move |rows| send_events(caller.as_ref(), name, rows),
        );
        match sender {
            Ok(_) => Some(queue),
            Err(e) => {
                log::error!("Cannot start the event sender of logger plugin {name}: {e}");
                None
            }
        }
    }

    /// The sink delivering this plugin's results.
    pub fn sink(&self) -> ExtensionSink {
        ExtensionSink::new(self.name, Arc::clone(&self.caller))
    }

    /// From now on, sends the status log to this plugin every [`STATUS_PERIOD`] (when it
    /// asked for it), until `stop`.
    pub fn start_status(
        &self,
        control: &StatusControl,
        host: HostIdentifier,
        stop: &Arc<AtomicBool>,
    ) {
        if !self.wants_status() {
            return;
        }
        let queue = StatusQueue::new(crate::logger::tls::STATUS_QUEUE_MAX);
        // The lines start-up logged before this plugin was set up come first.
        control.add_output_with_backlog(Box::new(ExtensionStatusOutput {
            queue: Arc::clone(&queue),
            host,
        }));
        let (caller, name) = (Arc::clone(&self.caller), self.name);
        if let Err(e) = spawn_status_sender(
            name,
            STATUS_PERIOD,
            STATUS_BATCH,
            queue,
            Arc::clone(stop),
            move |lines| send_status(caller.as_ref(), name, lines),
        ) {
            log::error!("Cannot start the status sender of logger plugin {name}: {e}");
        }
    }
}

/// Sends status `lines` to plugin `name`. `Err` (the extension is away) has the sender
/// offer them again next period. A plugin that answered and refused them (the Python
/// SDK's plugins answer "Use Glog for status logging") is done with them: osquery drops
/// them, and so do we, rather than offer them forever. Not logged: that would feed the
/// same queue.
pub fn send_status(caller: &dyn PluginCaller, name: &str, lines: &[String]) -> Result<(), String> {
    match caller.call(REGISTRY, name, &status_request(lines)) {
        Ok(_) | Err(CallError::Failed { .. }) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Sends event `rows` to plugin `name`, one `{"event": row}` call each; as for status
/// lines, `Err` (the extension is away) has the sender offer them again, and a row the
/// plugin refused is done with.
pub fn send_events(caller: &dyn PluginCaller, name: &str, rows: &[String]) -> Result<(), String> {
    for row in rows {
        match caller.call(REGISTRY, name, &event_request(row)) {
            Ok(_) | Err(CallError::Failed { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// `{"event": <row JSON>}`.
pub fn event_request(row: &str) -> PluginRequest {
    PluginRequest::from([("event".to_owned(), row.to_owned())])
}

/// `{"status": "true", "log": "[<line>,...]"}` from lines made by [`status_entry`].
pub fn status_request(lines: &[String]) -> PluginRequest {
    PluginRequest::from([
        ("status".to_owned(), "true".to_owned()),
        ("log".to_owned(), format!("[{}]", lines.join(","))),
    ])
}

/// One status record as osquery serialises it for a logger plugin, keys in its order:
/// `{"s": severity, "f": file, "i": line, "m": message, "h": host, "c": calendar time,
/// "u": unix time}`.
pub fn status_entry(record: &StatusRecord, host: &str) -> String {
    let unix = record
        .time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let text = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "{{\"s\":{},\"f\":{},\"i\":{},\"m\":{},\"h\":{},\"c\":{},\"u\":{}}}",
        record.severity,
        text(&record.file),
        record.line,
        text(&record.message),
        text(host),
        text(&calendar_time(unix)),
        unix
    )
}

/// The status log's output into a plugin's queue.
struct ExtensionStatusOutput {
    queue: Arc<StatusQueue>,
    host: HostIdentifier,
}

impl StatusOutput for ExtensionStatusOutput {
    fn write(&mut self, record: &StatusRecord) -> io::Result<()> {
        self.queue
            .push_back(status_entry(record, &self.host.current()));
        Ok(())
    }
}

/// The results sink of one extension logger plugin.
pub struct ExtensionSink {
    caller: Arc<dyn PluginCaller>,
    name: &'static str,
    /// The batch being delivered (its checkpoint) and how many of its lines the plugin
    /// took, so a resumed batch goes on after them.
    progress: Option<(String, usize)>,
    /// Batches begun by this process, for unique checkpoints.
    batches: u64,
}

impl ExtensionSink {
    pub fn new(name: &'static str, caller: Arc<dyn PluginCaller>) -> ExtensionSink {
        ExtensionSink {
            caller,
            name,
            progress: None,
            batches: 0,
        }
    }

    /// Sends `lines` from `skip` on, one call each, counting what was taken.
    fn send(&mut self, stream: Stream, lines: &[Vec<u8>], skip: usize) -> io::Result<()> {
        for line in lines.iter().skip(skip) {
            self.caller
                .call(REGISTRY, self.name, &line_request(stream, line))
                .map_err(|e| io::Error::other(format!("logger plugin {}: {e}", self.name)))?;
            if let Some((_, sent)) = &mut self.progress {
                *sent += 1;
            }
        }
        Ok(())
    }
}

impl Sink for ExtensionSink {
    fn name(&self) -> &'static str {
        self.name
    }

    /// A token naming this batch in this process: a resume with it skips what the plugin
    /// already took; after a restart no token matches and the batch is sent whole.
    fn checkpoint(&mut self, _stream: Stream) -> io::Result<Option<String>> {
        self.batches += 1;
        let token = format!("{}.{}", std::process::id(), self.batches);
        self.progress = Some((token.clone(), 0));
        Ok(Some(token))
    }

    fn write(&mut self, stream: Stream, lines: &[Vec<u8>]) -> io::Result<()> {
        match &mut self.progress {
            Some((_, sent)) => *sent = 0,
            None => self.progress = Some((String::new(), 0)),
        }
        self.send(stream, lines, 0)
    }

    fn resume(&mut self, stream: Stream, checkpoint: &str, lines: &[Vec<u8>]) -> io::Result<()> {
        let skip = match &self.progress {
            Some((token, sent)) if token == checkpoint => *sent,
            _ => {
                self.progress = Some((checkpoint.to_owned(), 0));
                0
            }
        };
        self.send(stream, lines, skip.min(lines.len()))
    }
}
