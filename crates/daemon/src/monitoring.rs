//! osquery's numeric monitoring (`--enable_numeric_monitoring`): numbers about the
//! daemon itself, here the figures of every scheduled run, written by the `filesystem`
//! plugin as osquery writes them: one `<path>\t<value>\t<timestamp>\t<sync>` line per
//! point, the timestamp in nanoseconds since the epoch, appended to
//! `--numeric_monitoring_filesystem_path`.
//!
//! Points of one path and aggregation are pre-aggregated over
//! `--numeric_monitoring_pre_aggregation_time` seconds (a sum, a minimum or a maximum,
//! stamped with the newest point's time) and written when the window ends; 0 writes each
//! point at once. osquery records its query profiles unbuffered, each figure twice (as a
//! minimum and as a sum, which the line cannot tell apart); here each figure has the one
//! aggregation that fits it (a sum of times and rows, a maximum of memory), so the
//! window applies to them.

use oxquery_flags::{Flags, flag};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// How points of one path combine within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Aggregation {
    Sum,
    Max,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Point {
    path: String,
    value: i64,
    aggregation: Aggregation,
    /// Nanoseconds since the epoch.
    time: u128,
}

/// Points waiting for the end of their window, one per path and aggregation.
#[derive(Debug, Default)]
struct Window {
    points: Vec<Point>,
    index: HashMap<(String, Aggregation), usize>,
}

impl Window {
    fn add(&mut self, point: Point) {
        let key = (point.path.clone(), point.aggregation);
        match self.index.get(&key) {
            Some(&i) => {
                let held = &mut self.points[i];
                held.value = match point.aggregation {
                    Aggregation::Sum => held.value.saturating_add(point.value),
                    Aggregation::Max => held.value.max(point.value),
                };
                held.time = held.time.max(point.time);
            }
            None => {
                self.index.insert(key, self.points.len());
                self.points.push(point);
            }
        }
    }

    fn take(&mut self) -> Vec<Point> {
        self.index.clear();
        std::mem::take(&mut self.points)
    }
}

/// What one scheduled run measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RunFigures {
    pub(crate) wall_ms: u64,
    pub(crate) user_ms: u64,
    pub(crate) system_ms: u64,
    /// Resident memory the run added (bytes).
    pub(crate) memory_increase: u64,
    /// The process's peak resident memory so far (bytes).
    pub(crate) memory_peak: u64,
    pub(crate) rows: u64,
    pub(crate) succeeded: bool,
}

/// The numeric monitoring system with its filesystem plugin.
#[derive(Debug)]
pub(crate) struct Monitor {
    path: PathBuf,
    file: Mutex<File>,
    /// `--numeric_monitoring_pre_aggregation_time` (seconds; 0 = unbuffered).
    window_seconds: u64,
    window: Mutex<Window>,
    /// Unix second the current window ends.
    window_end: Mutex<i64>,
}

impl Monitor {
    /// The monitor the flags ask for, or `None` (disabled, no plugin we have, or the
    /// file cannot be opened: said in the log).
    pub(crate) fn from_flags(flags: &Flags, now: i64) -> Option<Monitor> {
        if !flags.get(flag::enable_numeric_monitoring) {
            return None;
        }
        let plugins: Vec<&str> = flags
            .get(flag::numeric_monitoring_plugins)
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        for unknown in plugins.iter().filter(|p| **p != "filesystem") {
            log::warn!(
                "Numeric monitoring plugin {unknown} does not exist (filesystem is the only one)"
            );
        }
        if !plugins.contains(&"filesystem") {
            return None;
        }
        let path = flags.get(flag::numeric_monitoring_filesystem_path);
        Monitor::open(
            path,
            flags.get(flag::numeric_monitoring_pre_aggregation_time),
            now,
        )
    }

    /// The filesystem plugin appending to `path`.
    pub(crate) fn open(path: &Path, window_seconds: u64, now: i64) -> Option<Monitor> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path);
        match file {
            Ok(file) => Some(Monitor {
                path: path.to_owned(),
                file: Mutex::new(file),
                window_seconds,
                window: Mutex::default(),
                window_end: Mutex::new(now.saturating_add(window_seconds as i64)),
            }),
            Err(e) => {
                log::error!(
                    "Could not open file {} for numeric monitoring logs: {e}",
                    path.display()
                );
                None
            }
        }
    }

    /// Records one point now.
    pub(crate) fn record(&self, path: String, value: i64, aggregation: Aggregation) {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let point = Point {
            path,
            value,
            aggregation,
            time,
        };
        if self.window_seconds == 0 {
            self.write(&[point]);
        } else {
            self.window
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .add(point);
        }
    }

    /// The points of one scheduled run of `query` (its full name) in `pack`, under
    /// osquery's names: `scheduler.pack.<pack>.<figure>` and
    /// `scheduler.global.query.<pack>.<query>.<figure>`, and
    /// `scheduler.query.<pack>.<query>.status.<success|failure>` counting runs.
    pub(crate) fn record_run(&self, pack: &str, query: &str, run: &RunFigures) {
        let name = short_name(pack, query);
        let kb = |bytes: u64| (bytes / 1024) as i64;
        let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let figures = [
            ("time.wall.millis", ms(run.wall_ms), Aggregation::Sum),
            ("time.user.millis", ms(run.user_ms), Aggregation::Sum),
            ("time.system.millis", ms(run.system_ms), Aggregation::Sum),
            (
                "time.total.millis",
                ms(run.user_ms.saturating_add(run.system_ms)),
                Aggregation::Sum,
            ),
            ("rss.increase.kb", kb(run.memory_increase), Aggregation::Max),
            ("rss.max.kb", kb(run.memory_peak), Aggregation::Max),
            ("rows", ms(run.rows), Aggregation::Sum),
        ];
        for base in [
            format!("scheduler.pack.{pack}"),
            format!("scheduler.global.query.{pack}.{name}"),
        ] {
            for (figure, value, aggregation) in figures {
                self.record(format!("{base}.{figure}"), value, aggregation);
            }
        }
        let status = if run.succeeded { "success" } else { "failure" };
        self.record(
            format!("scheduler.query.{pack}.{name}.status.{status}"),
            1,
            Aggregation::Sum,
        );
    }

    /// Writes the window's points if it has ended by unix second `now`.
    pub(crate) fn flush_if_due(&self, now: i64) {
        if self.window_seconds == 0 {
            return;
        }
        {
            let mut end = self.window_end.lock().unwrap_or_else(|p| p.into_inner());
            if now < *end {
                return;
            }
            *end = now.saturating_add(self.window_seconds as i64);
        }
        self.flush();
    }

    /// Writes every buffered point (the end of a window, or the daemon stopping).
    pub(crate) fn flush(&self) {
        let points = self.window.lock().unwrap_or_else(|p| p.into_inner()).take();
        if !points.is_empty() {
            self.write(&points);
        }
    }

    fn write(&self, points: &[Point]) {
        let mut text = String::new();
        for p in points {
            text.push_str(&format!("{}\t{}\t{}\tfalse\n", p.path, p.value, p.time));
        }
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(text.as_bytes()) {
            log::error!(
                "Data loss. Numeric monitoring points not written to {}: {e}",
                self.path.display()
            );
        }
    }
}

/// A query's name within its pack: `pack<d><pack><d><name>` gives `<name>` (the
/// schedule's queries, pack `main`, keep theirs).
fn short_name<'a>(pack: &str, full: &'a str) -> &'a str {
    full.strip_prefix("pack")
        .and_then(|rest| rest.get(1..))
        .and_then(|rest| rest.strip_prefix(pack))
        .and_then(|rest| rest.get(1..))
        .filter(|name| !name.is_empty())
        .unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<Vec<String>> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn points_are_aggregated_over_the_window_then_written_in_osquery_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("numeric_monitoring.log");
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let m = Monitor::open(&path, 60, 1000).unwrap();
        m.record("a".into(), 5, Aggregation::Sum);
        m.record("b".into(), 7, Aggregation::Max);
        m.record("a".into(), 6, Aggregation::Sum);
        m.record("b".into(), 3, Aggregation::Max);
        m.flush_if_due(1059);
        assert!(lines(&path).is_empty(), "the window is still open");
        m.flush_if_due(1060);
        let got = lines(&path);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0][..2], ["a", "11"]);
        assert_eq!(got[1][..2], ["b", "7"]);
        for l in &got {
            assert_eq!(l.len(), 4);
            assert_eq!(l[3], "false");
            let ns: u128 = l[2].parse().unwrap();
            assert!(ns >= before, "{ns} < {before}");
        }
        // The next window starts empty.
        m.record("a".into(), 1, Aggregation::Sum);
        m.flush();
        assert_eq!(lines(&path)[2][..2], ["a", "1"]);
    }

    #[test]
    fn without_a_window_each_point_is_written_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nm.log");
        let m = Monitor::open(&path, 0, 0).unwrap();
        m.record("x".into(), 2, Aggregation::Sum);
        m.record("x".into(), 3, Aggregation::Sum);
        let got = lines(&path);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0][1].as_str(), got[1][1].as_str()), ("2", "3"));
    }

    #[test]
    fn a_run_is_recorded_under_osquery_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nm.log");
        let m = Monitor::open(&path, 0, 0).unwrap();
        let run = RunFigures {
            wall_ms: 12,
            user_ms: 3,
            system_ms: 4,
            memory_increase: 8192,
            memory_peak: 1 << 20,
            rows: 9,
            succeeded: true,
        };
        m.record_run("hw", "pack_hw_cpu", &run);
        let got: HashMap<String, String> = lines(&path)
            .into_iter()
            .map(|l| (l[0].clone(), l[1].clone()))
            .collect();
        assert_eq!(got["scheduler.pack.hw.time.wall.millis"], "12");
        assert_eq!(got["scheduler.global.query.hw.cpu.time.total.millis"], "7");
        assert_eq!(got["scheduler.global.query.hw.cpu.rss.increase.kb"], "8");
        assert_eq!(got["scheduler.global.query.hw.cpu.rss.max.kb"], "1024");
        assert_eq!(got["scheduler.global.query.hw.cpu.rows"], "9");
        assert_eq!(got["scheduler.query.hw.cpu.status.success"], "1");
        assert_eq!(got.len(), 2 * 7 + 1);
        assert_eq!(short_name("main", "uptime"), "uptime");
        assert_eq!(short_name("p", "pack-p-q"), "q");
    }

    #[test]
    fn the_flags_choose_the_plugin_its_file_and_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nm.log");
        let flags = |args: &[String]| {
            let mut f = Flags::new();
            for a in args {
                let (name, value) = a.split_once('=').unwrap();
                f.set(name, value).unwrap();
            }
            f
        };
        let file = format!("numeric_monitoring_filesystem_path={}", path.display());
        assert!(
            Monitor::from_flags(&flags(std::slice::from_ref(&file)), 0).is_none(),
            "off by default"
        );
        assert!(!path.exists());
        let on = "enable_numeric_monitoring=true".to_owned();
        let unknown = "numeric_monitoring_plugins=statsd".to_owned();
        assert!(Monitor::from_flags(&flags(&[on.clone(), file.clone(), unknown]), 0).is_none());
        let window = "numeric_monitoring_pre_aggregation_time=5".to_owned();
        let m = Monitor::from_flags(&flags(&[on, file, window]), 100).unwrap();
        assert_eq!((m.path.as_path(), m.window_seconds), (path.as_path(), 5));
        assert_eq!(*m.window_end.lock().unwrap(), 105);
        assert!(
            path.exists(),
            "opened (created) at start, as osquery's plugin does"
        );
    }

    #[test]
    fn an_unwritable_path_disables_monitoring() {
        assert!(Monitor::open(Path::new("/nonexistent-dir/x/nm.log"), 0, 0).is_none());
    }
}
