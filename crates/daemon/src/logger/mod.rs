//! Loggers: result items formatted as osquery's JSON lines, the sinks that receive them
//! (`filesystem`, `stdout`, `syslog`, several at once), and the status log.
//!
//! * [`format`](mod@format): `ResultItem` → `LogLine`s (event, batch, snapshot formats).
//! * [`filesystem`], [`stdout`], [`syslog`]: [`Sink`] implementations; `kafka`
//!   (the `kafka` feature) the `kafka_producer` plugin, built by [`kafka_sink`].
//! * [`status`]: the `log` crate logger the daemon installs, writing to a list of
//!   status outputs; [`StatusOptions`] picks them from the plugins (glog files from
//!   `filesystem`, stdout, syslog, and the stderr copy).
//! * [`host`]: `--host_identifier` resolution.
//!
//! The daemon builds a [`LoggerSettings`] from its flags once, then calls
//! [`build_sinks`], [`LoggerSettings::format_options`] and
//! [`LoggerSettings::status_options`]. Nothing here reads global flag state.

pub mod aws;
pub mod extension;
pub mod filesystem;
pub mod format;
pub mod host;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod status;
pub mod stdout;
pub mod syslog;
pub mod tls;

pub use filesystem::{FilesystemOptions, FilesystemSink, GlogFiles};
pub use format::{FormatOptions, calendar_time, escape_nonprintable, format_item};
pub use host::HostIdentifier;
pub use status::{
    GlogStream, StatusControl, StatusFilter, StatusLogger, StatusOutput, StatusRecord,
};
pub use stdout::StdoutSink;
pub use syslog::{SyslogSink, SyslogStatus};

use crate::item::Stream;
use crate::sink::Sink;
use oxquery_flags::{Flags, flag};
use std::io::{self, Write};
use std::path::PathBuf;

/// Errors building loggers.
#[derive(Debug, thiserror::Error)]
pub enum LoggerError {
    #[error("unknown logger plugin: {0}")]
    UnknownPlugin(String),
    #[error(
        "logger plugin kafka_producer is not in this build: osqueryd was built without Kafka support (the kafka cargo feature)"
    )]
    NoKafka,
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    Kafka(#[from] kafka::KafkaSetupError),
    #[error("invalid --logger_mode {0:?}: expected octal permission bits such as 0640")]
    BadMode(String),
    #[error("cannot open the filesystem logger in {path}: {source}")]
    Filesystem { path: PathBuf, source: io::Error },
}

/// Every logger setting, as plain values (built from flags by the daemon).
#[derive(Debug, Clone)]
pub struct LoggerSettings {
    /// `--logger_plugin`, a comma list.
    pub plugins: String,
    pub path: PathBuf,
    pub mode: u32,
    pub event_type: bool,
    pub snapshot_event_type: bool,
    pub numerics: bool,
    pub decorations_top_level: bool,
    pub nullvalue: String,
    pub rotate: bool,
    pub rotate_size: u64,
    pub rotate_max_files: u64,
    pub min_status: i32,
    pub min_stderr: i32,
    pub stderr: bool,
    pub verbose: bool,
    pub syslog_facility: i32,
    pub syslog_prepend_cee: bool,
    pub host_identifier: String,
    pub specified_identifier: String,
}

impl LoggerSettings {
    /// Reads the logger flags.
    pub fn from_flags(flags: &Flags) -> Result<LoggerSettings, LoggerError> {
        Ok(LoggerSettings {
            plugins: flags.get(flag::logger_plugin).to_owned(),
            path: PathBuf::from(flags.get(flag::logger_path)),
            mode: parse_mode(flags.get(flag::logger_mode))?,
            event_type: flags.get(flag::logger_event_type),
            snapshot_event_type: flags.get(flag::logger_snapshot_event_type),
            numerics: flags.get(flag::logger_numerics),
            decorations_top_level: flags.get(flag::decorations_top_level),
            nullvalue: flags.get(flag::nullvalue).to_owned(),
            rotate: flags.get(flag::logger_rotate),
            rotate_size: flags.get(flag::logger_rotate_size),
            rotate_max_files: flags.get(flag::logger_rotate_max_files),
            min_status: flags.get(flag::logger_min_status),
            min_stderr: flags.get(flag::logger_min_stderr),
            stderr: flags.get(flag::logger_stderr),
            verbose: flags.get(flag::verbose),
            syslog_facility: flags.get(flag::logger_syslog_facility),
            syslog_prepend_cee: flags.get(flag::logger_syslog_prepend_cee),
            host_identifier: flags.get(flag::host_identifier).to_owned(),
            specified_identifier: flags.get(flag::specified_identifier).to_owned(),
        })
    }

    /// The plugins named in `--logger_plugin`, validated, without duplicates.
    pub fn plugin_names(&self) -> Result<Vec<&'static str>, LoggerError> {
        parse_plugins(&self.plugins)
    }

    /// The names in `--logger_plugin` that are not built in (an extension may provide
    /// them), in order, once each.
    pub fn external_plugins(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for name in self.plugins.split(',').map(str::trim) {
            if !name.is_empty() && !KNOWN_PLUGINS.contains(&name) && !out.iter().any(|n| n == name)
            {
                out.push(name.to_owned());
            }
        }
        out
    }

    /// These settings with `names` left out of `--logger_plugin` (the plugins an
    /// extension provides: the built-in set-up starts the rest).
    pub fn without_plugins(&self, names: &[String]) -> LoggerSettings {
        let plugins = self
            .plugins
            .split(',')
            .filter(|p| !names.iter().any(|n| n == p.trim()))
            .collect::<Vec<_>>()
            .join(",");
        LoggerSettings {
            plugins,
            ..self.clone()
        }
    }

    /// How result items are formatted. `instance_id` is the daemon's persistent instance
    /// UUID (used by `--host_identifier=instance`).
    pub fn format_options(&self, instance_id: &str) -> FormatOptions {
        FormatOptions {
            host_identifier: HostIdentifier::resolve(
                &self.host_identifier,
                &self.specified_identifier,
                instance_id,
            ),
            event_type: self.event_type,
            snapshot_event_type: self.snapshot_event_type,
            numerics: self.numerics,
            decorations_top_level: self.decorations_top_level,
            nullvalue: self.nullvalue.clone(),
        }
    }

    /// What the status logger writes where. Unknown plugins are ignored here (they are
    /// reported by [`build_sinks`]).
    pub fn status_options(&self) -> StatusOptions {
        let plugins = parse_plugins_lenient(&self.plugins);
        let stdout = plugins.contains(&"stdout");
        StatusOptions {
            glog_dir: plugins.contains(&"filesystem").then(|| self.path.clone()),
            mode: self.mode,
            stdout,
            syslog: plugins.contains(&"syslog"),
            // osquery's stdout logger turns glog's stderr copy off: statuses would
            // otherwise appear twice on a terminal.
            stderr: self.stderr && !stdout,
            min_status: self.min_status,
            min_stderr: self.min_stderr,
            verbose: self.verbose,
        }
    }

    fn filesystem_options(&self) -> FilesystemOptions {
        FilesystemOptions {
            dir: self.path.clone(),
            mode: self.mode,
            rotate: self.rotate,
            rotate_size: self.rotate_size,
            rotate_max_files: self.rotate_max_files,
        }
    }
}

/// What the status logger writes where (from `--logger_plugin`, `--logger_path`,
/// `--logger_mode`, `--logger_min_status`, `--logger_min_stderr`, `--logger_stderr`,
/// `--verbose`).
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// Directory for glog files (the `filesystem` plugin is active).
    pub glog_dir: Option<PathBuf>,
    pub mode: u32,
    /// The `stdout` plugin is active.
    pub stdout: bool,
    /// The `syslog` plugin is active (it must have been opened by [`SyslogSink`]).
    pub syslog: bool,
    pub stderr: bool,
    pub min_status: i32,
    pub min_stderr: i32,
    pub verbose: bool,
}

impl StatusOptions {
    /// The outputs these options name, in order: glog files, stdout, syslog, stderr.
    /// `stdout` and `stderr` are the streams to write to (tests pass buffers).
    pub fn outputs(
        &self,
        stdout: impl Write + Send + 'static,
        stderr: impl Write + Send + 'static,
    ) -> Vec<Box<dyn StatusOutput>> {
        let mut outputs: Vec<Box<dyn StatusOutput>> = Vec::new();
        if let Some(dir) = &self.glog_dir {
            outputs.push(Box::new(GlogFiles::new(dir, "osqueryd", self.mode)));
        }
        if self.stdout {
            outputs.push(Box::new(StdoutSink::new(stdout)));
        }
        if self.syslog {
            outputs.push(Box::new(SyslogStatus));
        }
        if self.stderr {
            let min = if self.verbose {
                i32::MIN
            } else {
                self.min_stderr
            };
            outputs.push(Box::new(GlogStream::new(stderr, min)));
        }
        outputs
    }

    pub fn filter(&self) -> StatusFilter {
        StatusFilter {
            min_status: self.min_status,
            verbose: self.verbose,
        }
    }
}

impl StatusLogger {
    /// The status logger of these options, writing to the process's stdout and stderr.
    pub fn new(opts: StatusOptions) -> StatusLogger {
        // The stderr copy follows a reload's --logger_min_stderr; the rest is as listed.
        let others = StatusOptions {
            stderr: false,
            ..opts.clone()
        };
        let logger =
            StatusLogger::with_outputs(opts.filter(), others.outputs(io::stdout(), io::stderr()));
        if opts.stderr {
            let min = if opts.verbose {
                i32::MIN
            } else {
                opts.min_stderr
            };
            logger.with_stderr_copy(io::stderr(), min)
        } else {
            logger
        }
    }
}

/// `--logger_mode` text as permission bits: octal digits, optional leading `0`/`0o`.
pub fn parse_mode(text: &str) -> Result<u32, LoggerError> {
    let t = text.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 && !digits.is_empty() => Ok(m),
        _ => Err(LoggerError::BadMode(text.to_owned())),
    }
}

/// `tls` is built by the daemon's remote set-up (it needs the node key), `aws_kinesis`
/// and `aws_firehose` by its AWS set-up, `kafka_producer` by [`kafka_sink`], not here.
const KNOWN_PLUGINS: [&str; 8] = [
    "filesystem",
    "stdout",
    "syslog",
    "tls",
    "kafka_producer",
    "aws_kinesis",
    "aws_firehose",
    "none",
];

/// The logger plugins this build has, as `osquery_registry` lists them (`none` is not
/// one: it names no plugin).
pub(crate) fn plugins() -> impl Iterator<Item = &'static str> {
    KNOWN_PLUGINS
        .into_iter()
        .filter(|name| *name != "none" && (*name != "kafka_producer" || cfg!(feature = "kafka")))
}

fn parse_plugins(list: &str) -> Result<Vec<&'static str>, LoggerError> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "kafka_producer" && !cfg!(feature = "kafka") {
            return Err(LoggerError::NoKafka);
        }
        let known = KNOWN_PLUGINS
            .iter()
            .find(|k| **k == name)
            .ok_or_else(|| LoggerError::UnknownPlugin(name.to_owned()))?;
        if !out.contains(known) {
            out.push(*known);
        }
    }
    Ok(out)
}

fn parse_plugins_lenient(list: &str) -> Vec<&'static str> {
    list.split(',')
        .filter_map(|n| KNOWN_PLUGINS.iter().find(|k| **k == n.trim()).copied())
        .collect()
}

/// Builds the sinks named by `--logger_plugin`, in order (`none` contributes nothing).
/// The `filesystem` sink creates its results file now; `syslog` opens the connection.
pub fn build_sinks(settings: &LoggerSettings) -> Result<Vec<Box<dyn Sink>>, LoggerError> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    for name in settings.plugin_names()? {
        match name {
            "filesystem" => {
                let sink =
                    FilesystemSink::open(settings.filesystem_options()).map_err(|source| {
                        LoggerError::Filesystem {
                            path: settings.path.clone(),
                            source,
                        }
                    })?;
                sinks.push(Box::new(sink));
            }
            "stdout" => sinks.push(Box::new(StdoutSink::stdout())),
            "syslog" => sinks.push(Box::new(SyslogSink::open(
                "osqueryd",
                settings.syslog_facility,
                settings.syslog_prepend_cee,
            ))),
            _ => {}
        }
    }
    Ok(sinks)
}

/// The `kafka_producer` sink when `--logger_plugin` names it. Built apart from
/// [`build_sinks`] since it needs the config's `kafka_topics` (topic → query names) and
/// the daemon's `stop` flag, which bounds its waits. Without the `kafka` feature, naming
/// the plugin is [`LoggerError::NoKafka`].
pub fn kafka_sink(
    settings: &LoggerSettings,
    flags: &Flags,
    kafka_topics: &std::collections::BTreeMap<String, Vec<String>>,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<Option<Box<dyn Sink>>, LoggerError> {
    if !settings.plugin_names()?.contains(&"kafka_producer") {
        return Ok(None);
    }
    #[cfg(feature = "kafka")]
    {
        let kafka = kafka::KafkaSettings::from_flags(flags, kafka_topics);
        let sink = kafka::KafkaSink::new(&kafka, std::sync::Arc::clone(stop))?;
        Ok(Some(Box::new(sink)))
    }
    #[cfg(not(feature = "kafka"))]
    {
        let _ = (flags, kafka_topics, stop);
        Err(LoggerError::NoKafka)
    }
}

/// Several sinks behind one: a batch goes to each in turn. The checkpoint is a JSON
/// array of the members' checkpoints (`null` for those that cannot resume), so a resume
/// completes the batch exactly in the sinks that can and repeats it in those that cannot.
pub struct FanOut {
    sinks: Vec<Box<dyn Sink>>,
}

impl FanOut {
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> FanOut {
        FanOut { sinks }
    }

    pub fn sinks(&self) -> &[Box<dyn Sink>] {
        &self.sinks
    }
}

impl Sink for FanOut {
    fn name(&self) -> &'static str {
        "fanout"
    }

    fn checkpoint(&mut self, stream: Stream) -> io::Result<Option<String>> {
        let mut parts = Vec::with_capacity(self.sinks.len());
        for sink in &mut self.sinks {
            parts.push(sink.checkpoint(stream)?);
        }
        if parts.iter().all(Option::is_none) {
            return Ok(None);
        }
        Ok(Some(
            serde_json::to_string(&parts).map_err(io::Error::other)?,
        ))
    }

    fn write(&mut self, stream: Stream, lines: &[Vec<u8>]) -> io::Result<()> {
        for sink in &mut self.sinks {
            sink.write(stream, lines)?;
        }
        Ok(())
    }

    fn resume(&mut self, stream: Stream, checkpoint: &str, lines: &[Vec<u8>]) -> io::Result<()> {
        let parts: Vec<Option<String>> = serde_json::from_str(checkpoint)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if parts.len() != self.sinks.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "checkpoint names {} sinks, {} configured",
                    parts.len(),
                    self.sinks.len()
                ),
            ));
        }
        for (sink, part) in self.sinks.iter_mut().zip(parts) {
            match part {
                Some(cp) => sink.resume(stream, &cp, lines)?,
                None => sink.write(stream, lines)?,
            }
        }
        Ok(())
    }

    fn reopen(&mut self) -> io::Result<()> {
        for sink in &mut self.sinks {
            sink.reopen()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_lists() {
        assert_eq!(
            parse_plugins("filesystem, syslog,,filesystem").unwrap(),
            ["filesystem", "syslog"]
        );
        let err = parse_plugins("filesystem,scribe").unwrap_err();
        assert_eq!(err.to_string(), "unknown logger plugin: scribe");
        match parse_plugins("filesystem,kafka_producer") {
            Ok(names) if cfg!(feature = "kafka") => {
                assert_eq!(names, ["filesystem", "kafka_producer"])
            }
            Err(LoggerError::NoKafka) if !cfg!(feature = "kafka") => {}
            other => panic!("{other:?}"),
        }
        assert!(parse_plugins("").unwrap().is_empty());
    }

    #[test]
    fn plugins_an_extension_may_provide_are_told_apart_from_built_in_ones() {
        let mut s = LoggerSettings::from_flags(&Flags::new()).unwrap();
        s.plugins = "filesystem, ext_a,stdout,ext_b,ext_a".to_owned();
        assert_eq!(s.external_plugins(), ["ext_a", "ext_b"]);
        let rest = s.without_plugins(&s.external_plugins());
        assert_eq!(rest.plugin_names().unwrap(), ["filesystem", "stdout"]);
        assert!(rest.external_plugins().is_empty());
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0640").unwrap(), 0o640);
        assert_eq!(parse_mode("600").unwrap(), 0o600);
        assert_eq!(parse_mode("0o755").unwrap(), 0o755);
        assert!(parse_mode("0980").is_err());
        assert!(parse_mode("").is_err());
        assert!(parse_mode("77777").is_err());
    }

    #[test]
    fn settings_from_default_flags() {
        let s = LoggerSettings::from_flags(&Flags::new()).unwrap();
        assert_eq!(s.plugins, "filesystem");
        assert_eq!(s.mode, 0o640);
        assert!(s.event_type && !s.numerics && s.stderr);
        assert_eq!(s.rotate_size, 26_214_400);
        assert_eq!(s.syslog_facility, 19);
        let st = s.status_options();
        assert_eq!(st.glog_dir, Some(PathBuf::from("/var/log/osquery/")));
        assert!(!st.stdout && st.stderr);
    }
}
