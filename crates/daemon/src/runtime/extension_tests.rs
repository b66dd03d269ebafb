//! Config and logger plugins of extensions, driven through an in-memory
//! [`PluginCaller`] that records every request and answers as an osquery SDK plugin
//! would.

use super::*;
use crate::item::{LogLine, Payload, ResultItem, Stream};
use crate::logger::extension::{ExtensionSink, send_status, status_entry, status_request};
use crate::logger::{LoggerSettings, StatusRecord};
use crate::outbox::{Outbox, OutboxConfig, record};
use crate::results::{Run, ScheduledQuery, compute};
use crate::sink::Sink;
use oxquery_extensions::{CallError, PluginResponse};
use oxquery_store::Store;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

/// One recorded call: registry, item, request.
type Call = (String, String, PluginRequest);

/// An extension's plugins as the manager would route to them.
#[derive(Default)]
struct TestPlugins {
    /// Plugins registered, as `registry/item`.
    provided: Mutex<Vec<String>>,
    /// While set, every call fails as a call to a vanished extension does.
    down: AtomicBool,
    /// `genConfig`'s rows.
    config: Mutex<PluginResponse>,
    /// `genPack` answers by pack name.
    packs: Mutex<BTreeMap<String, String>>,
    /// The logger's answer to `features`.
    features: i32,
    /// Result calls (`string`/`snapshot`) the logger takes before failing; `None`: all.
    budget: Mutex<Option<usize>>,
    calls: Mutex<Vec<Call>>,
    /// The result lines the logger took, in order.
    taken: Mutex<Vec<String>>,
}

impl TestPlugins {
    fn providing(items: &[&str]) -> TestPlugins {
        let plugins = TestPlugins::default();
        plugins.provide(items);
        plugins
    }

    fn provide(&self, items: &[&str]) {
        let mut provided = self.provided.lock().unwrap();
        provided.extend(items.iter().map(|i| (*i).to_owned()));
    }

    fn set_config(&self, sources: &[(&str, &str)]) {
        *self.config.lock().unwrap() = vec![
            sources
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect(),
        ];
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The requests sent to `registry`/`item` that have `key`.
    fn requests_with(&self, key: &str) -> Vec<PluginRequest> {
        self.calls()
            .into_iter()
            .map(|(_, _, r)| r)
            .filter(|r| r.contains_key(key))
            .collect()
    }
}

fn request(pairs: &[(&str, &str)]) -> PluginRequest {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl PluginCaller for TestPlugins {
    fn provides(&self, registry: &str, item: &str) -> bool {
        !self.down.load(Ordering::SeqCst)
            && self
                .provided
                .lock()
                .unwrap()
                .contains(&format!("{registry}/{item}"))
    }

    fn call(
        &self,
        registry: &str,
        item: &str,
        request: &PluginRequest,
    ) -> Result<PluginResponse, CallError> {
        self.calls
            .lock()
            .unwrap()
            .push((registry.to_owned(), item.to_owned(), request.clone()));
        if !self.provides(registry, item) {
            return Err(CallError::NoRoute {
                registry: registry.to_owned(),
                item: item.to_owned(),
            });
        }
        let failed = |code, message: &str| CallError::Failed {
            code,
            message: message.to_owned(),
        };
        match (registry, request.get("action").map(String::as_str)) {
            ("config", Some("genConfig")) => Ok(self.config.lock().unwrap().clone()),
            ("config", Some("genPack")) => {
                let name = &request["name"];
                match self.packs.lock().unwrap().get(name) {
                    Some(text) => Ok(vec![BTreeMap::from([(name.clone(), text.clone())])]),
                    None => Err(failed(1, "no such pack")),
                }
            }
            ("logger", Some("features")) if self.features == 0 => Ok(Vec::new()),
            ("logger", Some("features")) => Err(failed(self.features, "")),
            ("logger", _) if request.contains_key("init") => Err(failed(1, "Use Glog")),
            ("logger", _) if request.contains_key("string") || request.contains_key("snapshot") => {
                let mut budget = self.budget.lock().unwrap();
                match &mut *budget {
                    Some(0) => return Err(failed(1, "the plugin's store is full")),
                    Some(n) => *n -= 1,
                    None => {}
                }
                let line = request.get("string").or(request.get("snapshot"));
                self.taken.lock().unwrap().extend(line.cloned());
                Ok(Vec::new())
            }
            ("logger", _) if item == "refuses" && request.contains_key("status") => {
                Err(failed(1, "Use Glog for status logging"))
            }
            ("logger", _) if request.contains_key("status") => Ok(Vec::new()),
            _ => Err(failed(1, "unsupported")),
        }
    }
}

fn flags(pairs: &[(&str, &str)]) -> Flags {
    let mut flags = Flags::new();
    for (name, value) in pairs {
        flags.set(name, value).unwrap();
    }
    flags
}

fn schedule(queries: &[(&str, &str, u64)]) -> String {
    let body: serde_json::Map<String, serde_json::Value> = queries
        .iter()
        .map(|(name, sql, interval)| {
            (
                (*name).to_owned(),
                serde_json::json!({"query": sql, "interval": interval}),
            )
        })
        .collect();
    serde_json::json!({ "schedule": body }).to_string()
}

fn query_names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = config
        .packs
        .iter()
        .flat_map(|p| p.queries.iter().map(|q| q.full_name.clone()))
        .collect();
    names.sort();
    names
}

fn caller(plugins: &Arc<TestPlugins>) -> Arc<dyn PluginCaller> {
    Arc::clone(plugins) as Arc<dyn PluginCaller>
}

#[test]
fn the_config_is_gen_configs_first_row_with_one_source_per_key() {
    let plugins = Arc::new(TestPlugins::providing(&["config/ext_config"]));
    plugins.set_config(&[
        ("b_source", &schedule(&[("q_b", "select 2", 20)])),
        ("a_source", &schedule(&[("q_a", "select 1", 10)])),
    ]);
    // A second row is not read, as osquery reads only the first.
    plugins.config.lock().unwrap().push(BTreeMap::from([(
        "ignored".to_owned(),
        schedule(&[("q_c", "select 3", 30)]),
    )]));
    let plugin = ExtensionConfig::new(caller(&plugins), "ext_config");
    let config = plugin.load(&Settings::from_flags(&Flags::new())).unwrap();
    assert_eq!(
        plugins.calls(),
        [(
            "config".to_owned(),
            "ext_config".to_owned(),
            request(&[("action", "genConfig")])
        )]
    );
    assert_eq!(query_names(&config), ["q_a", "q_b"]);
    let sources: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(sources, ["a_source", "b_source"]);
}

#[test]
fn string_packs_are_asked_of_the_plugin_with_gen_pack() {
    let plugins = Arc::new(TestPlugins::providing(&["config/ext_config"]));
    let text = r#"{"packs": {"net": "packs/net.conf"}}"#;
    plugins.set_config(&[("main", text)]);
    plugins.packs.lock().unwrap().insert(
        "net".to_owned(),
        schedule(&[("listening", "select 1", 60)]).replace("schedule", "queries"),
    );
    let config = ExtensionConfig::new(caller(&plugins), "ext_config")
        .load(&Settings::from_flags(&Flags::new()))
        .unwrap();
    assert_eq!(
        plugins.calls()[1].2,
        request(&[
            ("action", "genPack"),
            ("name", "net"),
            ("value", "packs/net.conf")
        ])
    );
    assert_eq!(query_names(&config), ["pack_net_listening"]);
}

#[test]
fn a_failed_refresh_keeps_the_config_and_a_changed_one_replaces_it() {
    let plugins = Arc::new(TestPlugins::providing(&["config/ext_config"]));
    plugins.set_config(&[("main", &schedule(&[("first", "select 1", 10)]))]);
    let plugin = ExtensionConfig::new(caller(&plugins), "ext_config");
    let settings = Settings::from_flags(&Flags::new());
    let config = plugin.load(&settings).unwrap();

    // The extension is gone: the refresh fails, and the daemon keeps `config`.
    plugins.down.store(true, Ordering::SeqCst);
    let failed = plugin.reload(&config, &settings).unwrap_err();
    assert!(
        failed.to_string().contains("ext_config config plugin"),
        "{failed}"
    );
    // Back, with the same text: nothing to do.
    plugins.down.store(false, Ordering::SeqCst);
    assert_eq!(
        plugin.reload(&config, &settings).unwrap(),
        Reload::Unchanged
    );
    // An answer without sources changes nothing either (osquery updates nothing).
    *plugins.config.lock().unwrap() = Vec::new();
    assert_eq!(
        plugin.reload(&config, &settings).unwrap(),
        Reload::Unchanged
    );
    // An invalid config is an error, and the one in use stays.
    plugins.set_config(&[("main", "{not json")]);
    assert!(plugin.reload(&config, &settings).is_err());
    // A new schedule replaces the old one.
    plugins.set_config(&[("main", &schedule(&[("second", "select 2", 10)]))]);
    match plugin.reload(&config, &settings).unwrap() {
        Reload::Changed(new) => assert_eq!(query_names(&new), ["second"]),
        Reload::Unchanged => panic!("the config changed"),
    }
    assert_eq!(query_names(&config), ["first"]);
}

#[test]
fn start_up_waits_for_the_config_plugin_and_fails_with_osquerys_message() {
    let stop = AtomicBool::new(false);
    let built_in = flags(&[("config_plugin", "filesystem")]);
    assert!(activate_config(&built_in, None, &stop).unwrap().is_none());

    // Never provided: osquery's message once --extensions_timeout (at least 200 ms) is
    // over; without an extension manager at once.
    let never = flags(&[("config_plugin", "ext_config"), ("extensions_timeout", "0")]);
    let plugins = Arc::new(TestPlugins::default());
    let expected = "Cannot activate ext_config config plugin: Unknown registry plugin: ext_config";
    assert_eq!(
        activate_config(&never, Some(&caller(&plugins)), &stop)
            .err()
            .as_deref(),
        Some(expected)
    );
    assert_eq!(
        activate_config(&never, None, &stop).err().as_deref(),
        Some(expected)
    );

    // Registered while start-up waits: activated.
    let patient = flags(&[
        ("config_plugin", "ext_config"),
        ("extensions_timeout", "60"),
    ]);
    let late = Arc::clone(&plugins);
    let registers = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        late.provide(&["config/ext_config"]);
    });
    let found = activate_config(&patient, Some(&caller(&plugins)), &stop).unwrap();
    registers.join().unwrap();
    assert!(found.is_some());
}

#[test]
fn extensions_timeout_reads_as_osquery_reads_it() {
    let timeout = |text| extensions_timeout(&flags(&[("extensions_timeout", text)]));
    assert_eq!(timeout("3"), Duration::from_secs(3));
    assert_eq!(timeout("10s"), Duration::from_secs(10));
    assert_eq!(timeout("0"), MIN_WAIT);
    assert_eq!(timeout("soon"), MIN_WAIT);
}

#[test]
fn logger_plugins_are_initialised_and_asked_for_their_features() {
    let stop = AtomicBool::new(false);
    let plugins = Arc::new(TestPlugins {
        features: 1,
        ..TestPlugins::providing(&["logger/ext_log"])
    });
    let f = flags(&[
        ("logger_plugin", "filesystem,ext_log"),
        ("extensions_timeout", "0"),
    ]);
    let mut settings = LoggerSettings::from_flags(&f).unwrap();
    let loggers = activate_loggers(&f, &mut settings, Some(&caller(&plugins)), &stop).unwrap();
    assert_eq!(
        plugins.calls(),
        [
            (
                "logger".into(),
                "ext_log".into(),
                request(&[("init", "osqueryd")])
            ),
            (
                "logger".into(),
                "ext_log".into(),
                request(&[("action", "features")])
            ),
        ]
    );
    assert_eq!(loggers.len(), 1);
    assert!(loggers[0].wants_status());
    // The built-in set-up starts what is left.
    assert_eq!(settings.plugin_names().unwrap(), ["filesystem"]);

    // A logger plugin no extension provides stops start-up (with the words
    // `--config_check` uses for it).
    let missing = flags(&[
        ("logger_plugin", "filesystem,nowhere"),
        ("extensions_timeout", "0"),
    ]);
    let mut settings = LoggerSettings::from_flags(&missing).unwrap();
    assert_eq!(
        activate_loggers(&missing, &mut settings, Some(&caller(&plugins)), &stop)
            .err()
            .map(|e| e.to_string())
            .as_deref(),
        Some("unknown logger plugin: nowhere")
    );
}

#[test]
fn a_plugin_without_features_gets_no_status_log() {
    let plugins = Arc::new(TestPlugins::providing(&["logger/ext_log"]));
    let logger = ExtensionLogger::activate("ext_log", caller(&plugins));
    assert!(!logger.wants_status());
}

#[test]
fn results_and_snapshots_go_as_osquery_sends_them() {
    let plugins = Arc::new(TestPlugins::providing(&["logger/ext_log"]));
    let mut sink = ExtensionSink::new("ext_log", caller(&plugins));
    let result = br#"{"name":"q","action":"added"}"#.to_vec();
    let snapshot = br#"{"snapshot":[],"action":"snapshot"}"#.to_vec();
    sink.checkpoint(Stream::Results).unwrap();
    sink.write(Stream::Results, std::slice::from_ref(&result))
        .unwrap();
    sink.checkpoint(Stream::Snapshots).unwrap();
    sink.write(Stream::Snapshots, std::slice::from_ref(&snapshot))
        .unwrap();
    assert_eq!(
        plugins.calls(),
        [
            (
                "logger".into(),
                "ext_log".into(),
                request(&[
                    ("string", r#"{"name":"q","action":"added"}"#),
                    ("category", "event")
                ])
            ),
            (
                "logger".into(),
                "ext_log".into(),
                request(&[("snapshot", r#"{"snapshot":[],"action":"snapshot"}"#)])
            ),
        ]
    );
}

#[test]
fn status_lines_are_serialised_as_osquery_serialises_them() {
    let record = StatusRecord {
        severity: 1,
        file: "startup.rs".to_owned(),
        line: 42,
        message: "a \"quoted\" warning".to_owned(),
        time: std::time::UNIX_EPOCH + Duration::from_secs(1_786_052_772),
        tid: 7,
    };
    let entry = status_entry(&record, "host-1");
    assert_eq!(
        entry,
        r#"{"s":1,"f":"startup.rs","i":42,"m":"a \"quoted\" warning","h":"host-1","c":"Thu Aug  6 21:46:12 2026 UTC","u":1786052772}"#
    );
    let req = status_request(&[entry.clone(), entry.clone()]);
    assert_eq!(req["status"], "true");
    let log: serde_json::Value = serde_json::from_str(&req["log"]).unwrap();
    assert_eq!(log.as_array().unwrap().len(), 2);
    assert_eq!(log[0]["m"], "a \"quoted\" warning");
    assert_eq!(req.len(), 2);
}

#[test]
fn status_lines_a_plugin_refuses_are_dropped_and_those_it_missed_kept() {
    let plugins = Arc::new(TestPlugins::providing(&["logger/ext_log"]));
    let lines = vec![r#"{"s":0}"#.to_owned()];
    // The test logger takes status lines.
    assert_eq!(send_status(plugins.as_ref(), "ext_log", &lines), Ok(()));
    assert_eq!(
        plugins.calls()[0].2,
        request(&[("status", "true"), ("log", r#"[{"s":0}]"#)])
    );
    // A plugin that answers with a failure (as the Python SDK's do) is done with them.
    plugins.provide(&["logger/refuses"]);
    assert_eq!(send_status(plugins.as_ref(), "refuses", &lines), Ok(()));
    // An extension that is away keeps them for the next period.
    plugins.down.store(true, Ordering::SeqCst);
    assert!(send_status(plugins.as_ref(), "ext_log", &lines).is_err());
}

/// Each added row as a line `<name> <i>`.
fn format(item: &ResultItem) -> Vec<LogLine> {
    match &item.payload {
        Payload::Diff { added, .. } => added
            .iter()
            .map(|r| LogLine {
                stream: Stream::Results,
                text: format!("{} {}", item.name, r["i"]).into_bytes(),
            })
            .collect(),
        Payload::Snapshot(_) => Vec::new(),
    }
}

fn run_query(store: &mut Store, name: &str, rows: std::ops::Range<i64>) {
    let q = ScheduledQuery::new(name, "SELECT i");
    let rows = rows
        .map(|i| {
            [("i".to_owned(), oxquery_table::Value::Integer(i))]
                .into_iter()
                .collect()
        })
        .collect();
    let outcome = compute(store, &q, rows, Run::default()).unwrap();
    record(store, &outcome, format).unwrap();
}

fn delivered(plugins: &TestPlugins) -> Vec<String> {
    plugins.taken.lock().unwrap().clone()
}

#[test]
fn results_wait_in_the_outbox_while_the_plugin_fails_and_arrive_in_order_once() {
    let plugins = Arc::new(TestPlugins::providing(&["logger/ext_log"]));
    let mut store = Store::in_memory().unwrap();
    let config = OutboxConfig {
        batch_lines: 4,
        retry_min: Duration::ZERO,
        retry_max: Duration::ZERO,
        ..OutboxConfig::default()
    };
    let sink = ExtensionSink::new("ext_log", caller(&plugins));
    let mut outbox = Outbox::new(vec![Box::new(sink) as Box<dyn Sink>], config);
    run_query(&mut store, "q", 0..6);

    // The extension is gone: nothing counts as delivered, everything stays stored.
    plugins.down.store(true, Ordering::SeqCst);
    let report = outbox.drain(&mut store).unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(outbox.pending(&store, Stream::Results).unwrap(), 6);

    // Back, but it takes two lines and fails in the middle of the first batch.
    plugins.down.store(false, Ordering::SeqCst);
    *plugins.budget.lock().unwrap() = Some(2);
    outbox.drain(&mut store).unwrap();
    assert_eq!(outbox.pending(&store, Stream::Results).unwrap(), 6);
    run_query(&mut store, "r", 0..2);

    // Healthy again: the rest of the batch (not its first two lines again), then the
    // newer lines, in order.
    *plugins.budget.lock().unwrap() = None;
    let report = outbox.drain(&mut store).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(outbox.pending(&store, Stream::Results).unwrap(), 0);
    let mut expected: Vec<String> = (0..6).map(|i| format!("q {i}")).collect();
    expected.extend((0..2).map(|i| format!("r {i}")));
    assert_eq!(delivered(&plugins), expected);
}

#[test]
fn a_batch_interrupted_by_a_restart_is_sent_whole_again() {
    let plugins = Arc::new(TestPlugins::providing(&["logger/ext_log"]));
    let mut first = ExtensionSink::new("ext_log", caller(&plugins));
    let lines: Vec<Vec<u8>> = (0..3).map(|i| format!("line {i}").into_bytes()).collect();
    let checkpoint = first.checkpoint(Stream::Results).unwrap().unwrap();
    *plugins.budget.lock().unwrap() = Some(1);
    assert!(first.write(Stream::Results, &lines).is_err());
    // A new process knows nothing of what the plugin took: at-least-once.
    *plugins.budget.lock().unwrap() = None;
    let mut second = ExtensionSink::new("ext_log", caller(&plugins));
    second.resume(Stream::Results, &checkpoint, &lines).unwrap();
    assert_eq!(
        delivered(&plugins),
        ["line 0", "line 0", "line 1", "line 2"]
    );
}

/// The whole daemon, in this process: its config comes from the extension's config
/// plugin and its results go to the extension's logger plugin.
#[test]
fn the_daemon_runs_the_plugins_schedule_and_logs_to_the_plugins_logger() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = Arc::new(TestPlugins {
        features: 1,
        ..TestPlugins::providing(&["config/ext_config", "logger/ext_log"])
    });
    plugins.set_config(&[(
        "ext_source",
        &schedule(&[("the_answer", "select 42 as answer", 1)]),
    )]);
    let path = |name: &str| dir.path().join(name).display().to_string();
    let args: Vec<std::ffi::OsString> = [
        "--flagfile=/dev/null".to_owned(),
        "--disable_watchdog".to_owned(),
        "--disable_events".to_owned(),
        "--config_plugin=ext_config".to_owned(),
        "--logger_plugin=ext_log".to_owned(),
        format!("--database_path={}", path("db")),
        format!("--logger_path={}", path("logs")),
        format!("--pidfile={}", path("pid")),
        "--schedule_splay_percent=0".to_owned(),
        // The scheduler (and the daemon with it) ends after this many seconds.
        "--schedule_timeout=3".to_owned(),
    ]
    .into_iter()
    .map(Into::into)
    .collect();
    let code =
        super::super::startup::run_with_plugins(&args, &[], Vec::new, Some(caller(&plugins)));
    assert_eq!(code, 0);

    let calls = plugins.calls();
    assert_eq!(
        calls[0],
        (
            "config".into(),
            "ext_config".into(),
            request(&[("action", "genConfig")])
        )
    );
    let results = plugins.requests_with("string");
    assert!(!results.is_empty(), "{calls:?}");
    for r in &results {
        assert_eq!(r["category"], "event");
    }
    let line: serde_json::Value = serde_json::from_str(&results[0]["string"]).unwrap();
    assert_eq!(line["name"], "the_answer");
    assert_eq!(line["action"], "added");
    assert_eq!(line["columns"], serde_json::json!({"answer": "42"}));
    // Only the first run changed the result.
    assert_eq!(results.len(), 1, "{results:?}");
    // No filesystem logger was asked for: no results file.
    assert!(!dir.path().join("logs/osqueryd.results.log").exists());
}
