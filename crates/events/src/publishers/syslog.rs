//! The `syslog` publisher: the rsyslog pipe (`oxquery_sys::syslog_pipe`) into
//! `syslog_events`. It runs only with `--enable_syslog`, as in osquery; the pipe is
//! `--syslog_pipe_path`, read at most `--syslog_rate_limit` lines per 200 ms (0: no
//! limit), and the table keeps its events for `--syslog_events_expiry` seconds, at most
//! `--syslog_events_max` of them, instead of the `--events_*` bounds.
//!
//! A pipe that cannot be used (a file or a link at the path, another reader holding it)
//! fails the run with the reason; the hub logs it and tries again later, so fixing the
//! path needs no restart. Lines lost (malformed, too long, over the rate limit with the
//! backlog full) reach `osquery_events` through [`PublisherContext::lost`].

use crate::tables::syslog_events;
use crate::{EventHub, Limits, Publisher, PublisherContext, READ_TIMEOUT, Subscriber};
use oxquery_flags::{Flags, flag};
use oxquery_sys::syslog_pipe::{PipeConfig, PipeStats, SyslogPipe, rate_limit_from_flag};

/// The publisher, when `--enable_syslog` is on and `syslog_events` is not disabled.
pub fn new(hub: &EventHub, flags: &Flags) -> Option<Box<dyn Publisher>> {
    if !flags.get(flag::enable_syslog) {
        log::debug!("The syslog event publisher is off (--enable_syslog)");
        return None;
    }
    let limits = Limits {
        expiry: flags.get(flag::syslog_events_expiry),
        max: flags.get(flag::syslog_events_max),
    };
    let subscriber = hub.subscribe(&syslog_events::SPEC, syslog_events::PUBLISHER, Some(limits))?;
    let mut pipe = PipeConfig::new(flags.get(flag::syslog_pipe_path));
    pipe.rate_limit = rate_limit_from_flag(flags.get(flag::syslog_rate_limit));
    Some(Box::new(SyslogPublisher { pipe, subscriber }))
}

/// Reads the pipe and adds each message to `syslog_events`.
pub struct SyslogPublisher {
    pipe: PipeConfig,
    subscriber: Subscriber,
}

impl Publisher for SyslogPublisher {
    fn name(&self) -> &'static str {
        syslog_events::PUBLISHER
    }

    fn subscribers(&self) -> Vec<String> {
        vec![self.subscriber.name().to_owned()]
    }

    fn run(&mut self, ctx: &PublisherContext) -> Result<(), String> {
        let mut pipe = SyslogPipe::open(self.pipe.clone()).map_err(|e| e.to_string())?;
        // What the pipe had lost when last handed to the context.
        let mut counted = PipeStats::default();
        while !ctx.stopping() {
            let batch = pipe
                .next_batch(READ_TIMEOUT)
                .map_err(|e| format!("{}: reading: {e}", pipe.path().display()))?;
            for event in &batch {
                self.subscriber.add(syslog_events::row(event));
            }
            ctx.published(batch.len() as u64);
            let stats = pipe.stats();
            ctx.lost("malformed line", stats.malformed - counted.malformed);
            ctx.lost("line too long", stats.overlong - counted.overlong);
            ctx.lost(
                "over syslog_rate_limit",
                stats.rate_limited - counted.rate_limited,
            );
            counted = stats;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HubSettings;
    use oxquery_engine::{Engine, TableFilter};
    use oxquery_store::Store;
    use oxquery_table::{EventReader, InstanceInfo, TableDef, Value};
    use std::io::Write;
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    static TABLES: [&TableDef; 1] = [&syslog_events::TABLE];

    fn flags(pipe: &Path, extra: &[(&str, &str)]) -> Flags {
        let mut flags = Flags::new();
        flags.set("enable_syslog", "true").unwrap();
        flags
            .set("syslog_pipe_path", pipe.to_str().unwrap())
            .unwrap();
        for (name, value) in extra {
            flags.set(name, value).unwrap();
        }
        flags
    }

    fn start(flags: &Flags) -> (EventHub, Engine) {
        let hub = EventHub::new(
            Arc::new(Mutex::new(Store::in_memory().unwrap())),
            HubSettings::default(),
        );
        let publisher = new(&hub, flags).expect("enabled");
        hub.start(vec![publisher]);
        let engine =
            Engine::new(&TABLES, &TableFilter::default(), InstanceInfo::default()).unwrap();
        engine.set_event_reader(Some(Arc::new(hub.clone())));
        (hub, engine)
    }

    /// Writes `lines` into the pipe as rsyslog does, once the publisher has made it.
    fn send(pipe: &Path, lines: &[String]) {
        assert!(
            oxquery_test_support::wait_until(Duration::from_secs(10), || pipe.exists()),
            "the publisher never made {}",
            pipe.display()
        );
        let mut w = std::fs::OpenOptions::new().write(true).open(pipe).unwrap();
        for line in lines {
            w.write_all(line.as_bytes()).unwrap();
        }
    }

    fn line(tag: &str, message: &str) -> String {
        format!(
            "\"2026-12-06T13:35:10.123456+00:00\",\"web-1\",\"4\",\"authpriv\",\"{tag}:\",\"{}\"\n",
            message.replace('"', "\"\"")
        )
    }

    fn rows(engine: &Engine, sql: &str) -> Vec<Vec<Value>> {
        engine.query(sql).unwrap().rows
    }

    fn wait_rows(engine: &Engine, sql: &str, n: usize) -> Vec<Vec<Value>> {
        oxquery_test_support::poll(Duration::from_secs(10), || {
            let got = rows(engine, sql);
            (got.len() >= n).then_some(got)
        })
        .unwrap_or_else(|| panic!("{n} rows never came from {sql}: {:?}", rows(engine, sql)))
    }

    #[test]
    fn is_off_without_enable_syslog() {
        let dir = tempfile::tempdir().unwrap();
        let hub = EventHub::new(
            Arc::new(Mutex::new(Store::in_memory().unwrap())),
            HubSettings::default(),
        );
        let flags = flags(&dir.path().join("pipe"), &[("enable_syslog", "false")]);
        assert!(new(&hub, &flags).is_none());
        assert!(!dir.path().join("pipe").exists());
    }

    #[test]
    fn messages_written_into_the_pipe_are_rows_of_syslog_events_and_syslog() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = dir.path().join("osquery/syslog_pipe");
        let (hub, engine) = start(&flags(&pipe, &[]));
        let before = crate::unix_now();
        send(
            &pipe,
            &[
                line("sshd[812]", "Failed password for root from 10.0.0.9"),
                "not, a syslog line\n".to_owned(),
                line("sudo", "al : TTY=pts/0 ; COMMAND=\"/bin/true\", twice"),
            ],
        );
        let sql =
            "select time, datetime, host, severity, facility, tag, message from syslog_events";
        let got = wait_rows(&engine, sql, 2);
        let after = crate::unix_now();
        assert_eq!(got.len(), 2);
        for row in &got {
            let time = row[0].as_i64().unwrap();
            assert!(
                (before..=after).contains(&time),
                "{time} not in {before}..={after}"
            );
            assert_eq!(
                &row[1..5],
                &[
                    Value::from("2026-12-06T13:35:10.123456+00:00"),
                    Value::from("web-1"),
                    Value::Integer(4),
                    Value::from("authpriv"),
                ]
            );
        }
        assert_eq!(
            (got[0][5].clone(), got[0][6].clone()),
            (
                Value::from("sshd[812]"),
                Value::from("Failed password for root from 10.0.0.9")
            )
        );
        assert_eq!(
            got[1][6],
            Value::from("al : TTY=pts/0 ; COMMAND=\"/bin/true\", twice")
        );
        // The osquery alias is a view of the same rows.
        assert_eq!(rows(&engine, "select tag from syslog").len(), 2);
        // The malformed line is counted against the publisher, by reason (once the
        // publisher's thread is past the batch).
        let counted =
            |s: &oxquery_table::EventStatus| (s.events, s.dropped, s.dropped_reasons.clone());
        let want = (2, 1, "malformed line: 1".to_owned());
        let publisher = || {
            hub.status()
                .into_iter()
                .find(|s| s.name == "syslog")
                .unwrap()
        };
        oxquery_test_support::wait_until(Duration::from_secs(10), || counted(&publisher()) == want);
        assert_eq!(counted(&publisher()), want);
        hub.stop();
    }

    #[test]
    fn syslog_events_max_bounds_the_table_not_events_max() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = dir.path().join("syslog_pipe");
        let (hub, engine) = start(&flags(&pipe, &[("syslog_events_max", "3")]));
        let lines: Vec<String> = (0..5).map(|i| line("app", &format!("n{i}"))).collect();
        send(&pipe, &lines);
        // All five are published; the cap keeps the newest three (counted as dropped).
        assert!(oxquery_test_support::wait_until(
            Duration::from_secs(10),
            || {
                hub.status()
                    .iter()
                    .any(|s| s.name == "syslog" && s.events == 5)
            }
        ));
        hub.flush();
        let got: Vec<Value> = rows(&engine, "select message from syslog_events")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        assert_eq!(got, ["n2", "n3", "n4"].map(Value::from));
        let subscriber = hub
            .status()
            .into_iter()
            .find(|s| s.name == "syslog_events")
            .unwrap();
        assert_eq!(
            (subscriber.dropped, subscriber.dropped_reasons.as_str()),
            (2, "events_max: 2")
        );
        hub.stop();
    }

    #[test]
    fn a_regular_file_at_the_pipe_path_fails_the_run_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("syslog_pipe");
        std::fs::write(&path, b"keep me").unwrap();
        let hub = EventHub::new(
            Arc::new(Mutex::new(Store::in_memory().unwrap())),
            HubSettings::default(),
        );
        let mut publisher = new(&hub, &flags(&path, &[])).unwrap();
        let (ctx, _stop) = PublisherContext::detached("syslog");
        let err = publisher.run(&ctx).unwrap_err();
        assert!(err.contains("not a FIFO"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }
}
