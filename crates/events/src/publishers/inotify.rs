//! The `inotify` publisher: drives an [`oxquery_sys::inotify::FileWatcher`] over the
//! config's `file_paths`, `exclude_paths` and `file_accesses`, and feeds `file_events`
//! and `yara_events` (the files of `yara.file_paths` categories, scanned). Runs with
//! `--enable_file_events` (as osquery) when one of its subscribers is enabled, and follows
//! config reloads. The reader's loss counters (kernel queue overflows, directories left
//! unwatched at the watch limit or for other reasons, unparsable reads) are handed to
//! `osquery_events` as they grow.

use crate::tables::file_events::{self, Decoration};
#[cfg(feature = "yara")]
use crate::tables::yara_events;
use crate::{EventHub, EventsConfig, Publisher, PublisherContext, READ_TIMEOUT, Subscriber};
use oxquery_flags::{Flags, flag};
use oxquery_sys::inotify::{FileWatchStats, FileWatcher, WatchConfig};

/// Hashing buffer size.
const HASH_BUFFER: usize = 64 * 1024;

pub struct InotifyPublisher {
    config: WatchConfig,
    watcher: Option<FileWatcher>,
    file_events: Option<Subscriber>,
    #[cfg(feature = "yara")]
    yara_events: Option<(Subscriber, yara_events::CategoryRules)>,
    read_max: u64,
    /// The reader's counters already handed to `osquery_events`.
    reported: FileWatchStats,
    buf: Vec<u8>,
}

impl InotifyPublisher {
    /// The publisher, or `None` when file events are off or both subscribers are
    /// disabled. It starts even when `file_paths` is empty: a reload may add paths.
    pub fn new(hub: &EventHub, flags: &Flags, config: &EventsConfig) -> Option<InotifyPublisher> {
        if !flags.get(flag::enable_file_events) {
            log::debug!("File events are off (--enable_file_events)");
            return None;
        }
        let read_max = flags.get(flag::read_max);
        let file_events = hub.subscribe(&file_events::SPEC, file_events::PUBLISHER, None);
        #[cfg(feature = "yara")]
        let yara_events = hub
            .subscribe(&yara_events::SPEC, yara_events::PUBLISHER, None)
            .map(|s| (s, yara_events::CategoryRules::compile(config, read_max)));
        #[cfg(feature = "yara")]
        let none = file_events.is_none() && yara_events.is_none();
        #[cfg(not(feature = "yara"))]
        let none = file_events.is_none();
        if none {
            return None;
        }
        if config.file_paths.values().all(|p| p.is_empty()) {
            log::info!("No file_paths in the config: file events wait for a reload");
        }
        Some(InotifyPublisher {
            config: watch_config(config),
            watcher: None,
            file_events,
            #[cfg(feature = "yara")]
            yara_events,
            read_max,
            reported: FileWatchStats::default(),
            buf: vec![0; HASH_BUFFER],
        })
    }

    /// A reloaded config: new watches (those in both keep theirs) and, for
    /// `yara_events`, the rules compiled again.
    fn reload(&mut self, config: &EventsConfig) {
        self.config = watch_config(config);
        if let Some(watcher) = self.watcher.as_mut() {
            watcher.reconfigure(&self.config);
        }
        #[cfg(feature = "yara")]
        if let Some((_, rules)) = self.yara_events.as_mut() {
            *rules = yara_events::CategoryRules::compile(config, self.read_max);
        }
    }

    /// Hands the growth of the reader's loss counters to `osquery_events`.
    fn report_losses(&mut self, ctx: &PublisherContext, now: FileWatchStats) {
        let was = self.reported;
        let grown = |now: u64, was: u64| now.saturating_sub(was);
        ctx.lost(
            "inotify queue overflow",
            grown(now.overflows, was.overflows),
        );
        ctx.lost(
            "directories unwatched: fs.inotify.max_user_watches reached",
            grown(now.watch_limit_misses, was.watch_limit_misses),
        );
        ctx.lost(
            "directories unwatched: watch failed",
            grown(now.watch_failures, was.watch_failures),
        );
        ctx.lost(
            "unparsable inotify read",
            grown(now.malformed_reads, was.malformed_reads),
        );
        self.reported = now;
    }
}

/// The publisher as the hub takes it, or `None` (see [`InotifyPublisher::new`]).
pub fn new(hub: &EventHub, flags: &Flags, config: &EventsConfig) -> Option<Box<dyn Publisher>> {
    InotifyPublisher::new(hub, flags, config).map(|p| Box::new(p) as Box<dyn Publisher>)
}

/// The reader's configuration from the publishers' view of the config.
pub fn watch_config(config: &EventsConfig) -> WatchConfig {
    WatchConfig {
        file_paths: config.file_paths.clone(),
        exclude_paths: config.exclude_paths.clone(),
        file_accesses: config.file_accesses.clone(),
    }
}

impl Publisher for InotifyPublisher {
    fn name(&self) -> &'static str {
        file_events::PUBLISHER
    }

    fn subscribers(&self) -> Vec<String> {
        let names = self.file_events.iter();
        #[cfg(feature = "yara")]
        let names = names.chain(self.yara_events.iter().map(|(s, _)| s));
        names.map(|s| s.name().to_owned()).collect()
    }

    fn run(&mut self, ctx: &PublisherContext) -> Result<(), String> {
        if self.watcher.is_none() {
            let watcher =
                FileWatcher::new(&self.config).map_err(|e| format!("cannot start inotify: {e}"))?;
            log::info!(
                "inotify publisher watching {} directories",
                watcher.stats().watches
            );
            // A new reader counts from zero.
            self.reported = FileWatchStats::default();
            self.watcher = Some(watcher);
        }
        while !ctx.stopping() {
            if let Some(config) = ctx.config_update() {
                self.reload(&config);
            }
            let Some(watcher) = self.watcher.as_mut() else {
                return Ok(());
            };
            let batch = watcher.next_batch(READ_TIMEOUT);
            let stats = watcher.stats();
            self.report_losses(ctx, stats);
            let events = batch.map_err(|e| {
                // A broken descriptor is made anew on the next run.
                self.watcher = None;
                format!("reading inotify: {e}")
            })?;
            if events.is_empty() {
                continue;
            }
            ctx.published(events.len() as u64);
            for event in &events {
                if let Some(file_events) = &self.file_events {
                    let decoration = Decoration {
                        hash: !self
                            .config
                            .file_accesses
                            .iter()
                            .any(|c| **c == *event.category),
                        read_max: self.read_max,
                    };
                    let row = file_events::row(event, decoration, &mut self.buf);
                    file_events.add(row.into_values());
                }
                #[cfg(feature = "yara")]
                if let Some((yara_events, rules)) = &self.yara_events
                    && let Some(row) = rules.row(event)
                {
                    yara_events.add(row.into_values());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HubSettings;
    #[cfg(feature = "yara")]
    use crate::tables::yara_events;
    use oxquery_store::Store;
    use oxquery_table::{Host, QueryContext, Rows, Value};
    use std::collections::BTreeMap;
    use std::fs;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn hub() -> EventHub {
        let store = Arc::new(Mutex::new(Store::in_memory().unwrap()));
        EventHub::new(store, HubSettings::default())
    }

    fn flags(enabled: bool) -> Flags {
        let mut flags = Flags::new();
        flags
            .set("enable_file_events", if enabled { "true" } else { "false" })
            .unwrap();
        flags
    }

    fn config(paths: &[(&str, String)], accesses: &[&str]) -> EventsConfig {
        let mut file_paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (category, like) in paths {
            file_paths
                .entry(category.to_string())
                .or_default()
                .push(like.clone());
        }
        EventsConfig {
            file_paths,
            exclude_paths: BTreeMap::new(),
            file_accesses: accesses.iter().map(|a| a.to_string()).collect(),
            ..EventsConfig::default()
        }
    }

    /// Every stored `file_events` row as (path, category, action, hashed, sha256).
    fn table(hub: &EventHub) -> Vec<(Value, String, String, i64, Value)> {
        let host = Host {
            events: Some(Arc::new(hub.clone())),
            ..Host::default()
        };
        let ctx = QueryContext::everything(&file_events::SPEC, &host);
        let rows = Rows::collect(&ctx, file_events::TABLE.generate).unwrap();
        use file_events::Col;
        rows.iter()
            .map(|r| {
                (
                    r[Col::target_path as usize].clone(),
                    r[Col::category as usize].to_string(),
                    r[Col::action as usize].to_string(),
                    r[Col::hashed as usize].as_i64().unwrap(),
                    r[Col::sha256 as usize].clone(),
                )
            })
            .collect()
    }

    #[test]
    fn off_without_the_flag_or_without_subscribers() {
        let hub = hub();
        let cfg = config(&[("t", "/tmp/%%".into())], &[]);
        assert!(InotifyPublisher::new(&hub, &flags(false), &cfg).is_none());
        let inotify = |flags: Flags| {
            crate::publishers(&hub, &flags, &cfg)
                .iter()
                .filter(|p| p.name() == file_events::PUBLISHER)
                .count()
        };
        assert_eq!(inotify(flags(false)), 0);
        assert!(InotifyPublisher::new(&hub, &flags(true), &cfg).is_some());
        assert_eq!(inotify(flags(true)), 1);
        // No paths yet: started anyway, a reload may bring some.
        assert!(InotifyPublisher::new(&hub, &flags(true), &EventsConfig::default()).is_some());
        let disabled = HubSettings {
            disabled: ["file_events", "yara_events"].map(String::from).into(),
            ..HubSettings::default()
        };
        let store = Arc::new(Mutex::new(Store::in_memory().unwrap()));
        let hub = EventHub::new(store, disabled);
        assert!(InotifyPublisher::new(&hub, &flags(true), &cfg).is_none());
    }

    /// Started with no paths, then a reload names a directory: its changes arrive.
    #[test]
    fn a_reload_brings_new_watches() {
        let tmp = tempfile::tempdir().unwrap();
        let hub = hub();
        let publisher =
            InotifyPublisher::new(&hub, &flags(true), &EventsConfig::default()).unwrap();
        hub.start(vec![Box::new(publisher)]);
        hub.update_config(config(
            &[("late", format!("{}/%", tmp.path().display()))],
            &[],
        ));
        let f = tmp.path().join("after-reload");
        let want = Value::from(f.as_path());
        let seen = oxquery_test_support::wait_until(Duration::from_secs(10), || {
            fs::write(&f, b"").unwrap();
            table(&hub).iter().any(|r| r.0 == want && r.1 == "late")
        });
        hub.stop();
        assert!(seen, "no event after the reload");
    }

    /// The publisher on its thread, a file written under a watched tree: the table shows
    /// its rows with the hash `sha256sum` computes; a file_accesses category gets its
    /// OPENED rows, unhashed.
    #[test]
    fn file_changes_reach_the_table_through_the_hub() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir(root.join("watched")).unwrap();
        fs::create_dir(root.join("read")).unwrap();
        let cfg = config(
            &[
                ("tree", format!("{}/watched/%%", root.display())),
                ("reads", format!("{}/read/%", root.display())),
            ],
            &["reads"],
        );
        let hub = hub();
        let publisher = InotifyPublisher::new(&hub, &flags(true), &cfg).unwrap();
        hub.start(vec![Box::new(publisher)]);
        // Wait for the watches: the publisher adds them on its thread.
        let probe = root.join("watched/probe");
        let ready = oxquery_test_support::wait_until(Duration::from_secs(10), || {
            fs::write(&probe, b"").unwrap();
            table(&hub)
                .iter()
                .any(|r| r.0 == Value::from(probe.as_path()))
        });
        assert!(ready, "the publisher never reported the probe");
        let f = root.join("watched/new/deep.txt");
        fs::create_dir(root.join("watched/new")).unwrap();
        fs::write(&f, b"content to hash\n").unwrap();
        let r = root.join("read/r.txt");
        fs::write(&r, b"x").unwrap();
        let _ = fs::read(&r).unwrap();
        let want = Value::from(f.as_path());
        let read_path = Value::from(r.as_path());
        let out = std::process::Command::new("sha256sum")
            .arg(&f)
            .output()
            .unwrap();
        let sha = String::from_utf8(out.stdout).unwrap();
        let sha = Value::from(sha.split_whitespace().next().unwrap());
        // The file was written before the new directory's watch existed: it comes from
        // the directory's listing as CREATED (or, if the listing saw it before the write,
        // from the kernel's UPDATED after it), hashed.
        let rows = oxquery_test_support::poll(Duration::from_secs(10), || {
            let rows = table(&hub);
            let done = rows.iter().any(|x| x.0 == want && x.3 == 1 && x.4 == sha)
                && rows.iter().any(|x| x.0 == read_path && x.2 == "ACCESSED");
            done.then_some(rows)
        })
        .expect("rows for the written and the read file");
        hub.stop();
        let written: Vec<_> = rows.iter().filter(|x| x.0 == want).collect();
        assert!(written.iter().all(|x| x.1 == "tree"), "{written:?}");
        assert_eq!(written[0].2, "CREATED", "{written:?}");
        let reads: Vec<_> = rows.iter().filter(|x| x.0 == read_path).collect();
        assert!(
            reads.iter().all(|x| x.1 == "reads" && x.3 == 0),
            "{reads:?}"
        );
        assert!(reads.iter().any(|x| x.2 == "ACCESSED"));
        assert!(reads.iter().any(|x| x.2 == "OPENED"));
        let status = oxquery_table::EventReader::status(&hub);
        let publisher = status.iter().find(|s| s.name == "inotify").unwrap();
        assert_eq!(publisher.kind, "publisher");
        assert!(publisher.events >= rows.len() as i64);
        assert_eq!(publisher.dropped, 0);
    }

    /// The reader's counters become `osquery_events` losses, each growth once.
    #[test]
    fn reader_losses_are_handed_on_once() {
        let tmp = tempfile::tempdir().unwrap();
        let hub = hub();
        let cfg = config(&[("t", format!("{}/%", tmp.path().display()))], &[]);
        let mut publisher = InotifyPublisher::new(&hub, &flags(true), &cfg).unwrap();
        let (ctx, _stop) = PublisherContext::detached("inotify");
        let grown = FileWatchStats {
            overflows: 2,
            watch_limit_misses: 5,
            ..FileWatchStats::default()
        };
        publisher.report_losses(&ctx, grown);
        publisher.report_losses(&ctx, grown);
        let (total, reasons) = ctx.stats.losses();
        assert_eq!(total, 7);
        assert!(reasons.contains("inotify queue overflow: 2"), "{reasons}");
        assert!(reasons.contains("max_user_watches reached: 5"), "{reasons}");
    }

    /// A file matching a rule, written under a category that `yara.file_paths` maps to
    /// a signature group: `yara_events` shows the match; a file matching nothing gets a
    /// row with count 0.
    #[cfg(feature = "yara")]
    #[test]
    fn written_files_are_scanned_into_yara_events() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir(root.join("w")).unwrap();
        let rule = root.join("r.yar");
        fs::write(
            &rule,
            "rule planted { strings: $p = \"PLANTED-42\" condition: $p }",
        )
        .unwrap();
        let mut cfg = config(&[("scanned", format!("{}/w/%", root.display()))], &[]);
        cfg.yara = Some(serde_json::json!({
            "signatures": {"sigs": [rule.display().to_string()]},
            "file_paths": {"scanned": ["sigs"]},
        }));
        let hub = hub();
        let publisher = InotifyPublisher::new(&hub, &flags(true), &cfg).unwrap();
        assert_eq!(publisher.subscribers(), ["file_events", "yara_events"]);
        hub.start(vec![Box::new(publisher)]);
        let host = Host {
            events: Some(Arc::new(hub.clone())),
            ..Host::default()
        };
        let scan = || -> Vec<(Value, i64, String)> {
            let ctx = QueryContext::everything(&yara_events::SPEC, &host);
            let rows = Rows::collect(&ctx, yara_events::TABLE.generate).unwrap();
            use yara_events::Col;
            rows.iter()
                .map(|r| {
                    (
                        r[Col::target_path as usize].clone(),
                        r[Col::count as usize].as_i64().unwrap(),
                        r[Col::matches as usize].to_string(),
                    )
                })
                .collect()
        };
        let bad = root.join("w/bad.bin");
        let clean = root.join("w/clean.txt");
        let ready = oxquery_test_support::wait_until(Duration::from_secs(10), || {
            fs::write(&clean, b"nothing here").unwrap();
            scan().iter().any(|r| r.0 == Value::from(clean.as_path()))
        });
        assert!(ready, "the publisher never scanned the probe");
        fs::write(&bad, b"xx PLANTED-42 xx").unwrap();
        let rows = oxquery_test_support::poll(Duration::from_secs(10), || {
            let rows = scan();
            rows.iter()
                .any(|r| r.0 == Value::from(bad.as_path()) && r.1 == 1)
                .then_some(rows)
        })
        .expect("a yara_events row for the planted file");
        hub.stop();
        let hit = rows
            .iter()
            .find(|r| r.0 == Value::from(bad.as_path()) && r.1 == 1)
            .unwrap();
        assert_eq!(hit.2, "planted");
        assert!(
            rows.iter()
                .filter(|r| r.0 == Value::from(clean.as_path()))
                .all(|r| r.1 == 0 && r.2.is_empty())
        );
    }
}
