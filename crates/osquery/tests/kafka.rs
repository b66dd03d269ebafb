//! osqueryd's `kafka_producer` logger as a process, against librdkafka's mock cluster
//! running in this test process on loopback: results reach the topics the config names,
//! the same lines as the filesystem logger's copy, and none is lost while the broker is
//! away. Without the `kafka` feature, the plugin is refused with a clear message.

#[allow(dead_code)]
mod daemon_support;

use daemon_support::Sandbox;

#[cfg(not(feature = "kafka"))]
#[test]
fn a_build_without_kafka_refuses_the_plugin_and_says_why() {
    let s = Sandbox::new();
    s.write_config("{}");
    let out = s.run(&[
        "--disable_watchdog",
        "--logger_plugin=filesystem,kafka_producer",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("built without Kafka support"), "{stderr}");
}

#[cfg(feature = "kafka")]
mod with_kafka {
    use super::*;
    use daemon_support::wait_until;
    use std::time::Duration;

    const LONG: Duration = Duration::from_secs(30);
    use oxquery_daemon::logger::kafka::rdkafka;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::mocking::MockCluster;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    use serde_json::{Map, Value};
    use std::path::Path;

    /// Reads a topic from the start, accumulating across calls.
    struct Reader {
        consumer: BaseConsumer,
        lines: Vec<(Vec<u8>, String)>,
    }

    impl Reader {
        fn new(bootstrap: &str, topic: &str) -> Reader {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", bootstrap)
                .set("group.id", "oxquery-test")
                .set("enable.auto.commit", "false")
                .create()
                .unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, 0, Offset::Beginning)
                .unwrap();
            consumer.assign(&tpl).unwrap();
            Reader {
                consumer,
                lines: Vec::new(),
            }
        }

        /// Takes what arrived within a short poll.
        fn read(&mut self) -> &[(Vec<u8>, String)] {
            while let Some(Ok(m)) = self.consumer.poll(Duration::from_millis(200)) {
                self.lines.push((
                    m.key().unwrap_or_default().to_vec(),
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                ));
            }
            &self.lines
        }

        fn payloads(&mut self) -> Vec<String> {
            self.read().iter().map(|(_, p)| p.clone()).collect()
        }
    }

    /// The filesystem logger's lines of query `name`, as text.
    fn file_lines(results: &Path, name: &str) -> Vec<String> {
        std::fs::read_to_string(results)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                serde_json::from_str::<Map<String, Value>>(l)
                    .is_ok_and(|m| m.get("name") == Some(&Value::from(name)))
            })
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn results_reach_their_topics_and_wait_out_a_broker_outage() {
        let cluster = MockCluster::new(1).expect("librdkafka mock cluster");
        for topic in ["base", "files"] {
            cluster.create_topic(topic, 1, 1).unwrap();
        }
        let bootstrap = cluster.bootstrap_servers();
        let s = Sandbox::new();
        let watched = s.path().join("watched");
        std::fs::create_dir(&watched).unwrap();
        std::fs::write(watched.join("a0"), b"").unwrap();
        s.write_config(&format!(
            r#"{{"schedule": {{
                "files": {{"query": "SELECT filename FROM file WHERE directory = '{}'", "interval": 1}},
                "one": {{"query": "SELECT 1 AS one", "interval": 1}}
              }},
              "kafka_topics": {{"files": ["files"]}}}}"#,
            watched.display()
        ));
        let mut d = s.start(
            "kafka",
            &[
                "--disable_watchdog",
                "--logger_plugin=filesystem,kafka_producer",
                &format!("--logger_kafka_brokers={bootstrap}"),
                "--logger_kafka_topic=base",
                "--logger_kafka_compression=gzip",
            ],
        );
        let results = s.results_log();
        let mut files = Reader::new(&bootstrap, "files");
        let mut base = Reader::new(&bootstrap, "base");
        // Both queries' first results, in the file and on their topics.
        assert!(
            wait_until(LONG, || {
                !file_lines(&results, "one").is_empty()
                    && !file_lines(&results, "files").is_empty()
                    && base.payloads().len() == file_lines(&results, "one").len()
                    && files.payloads().len() == file_lines(&results, "files").len()
            }),
            "first results: file {:?}, topics {:?} {:?}\n{}",
            std::fs::read_to_string(&results),
            files.payloads(),
            base.payloads(),
            d.stderr_text()
        );

        // The broker goes away; new results are logged to the file meanwhile.
        cluster.broker_down(-1).unwrap();
        for i in 1..=5 {
            std::fs::write(watched.join(format!("b{i}")), b"").unwrap();
        }
        assert!(
            wait_until(LONG, || file_lines(&results, "files").len() >= 6),
            "{}",
            d.stderr_text()
        );
        // Until a write has failed: the lines are then the outbox's to keep, not
        // librdkafka's (it gives a message up after its delivery timeout).
        assert!(
            wait_until(LONG, || d
                .stderr_text()
                .contains("Logger plugin kafka_producer failed to write")),
            "{}",
            d.stderr_text()
        );
        cluster.broker_up(-1).unwrap();
        // Everything the file has reaches the topic once the broker is back.
        let mut got = Vec::new();
        let complete = wait_until(LONG, || {
            got = files.payloads();
            let want = file_lines(&results, "files");
            want.len() >= 6 && got.len() >= want.len()
        });
        assert!(complete, "topic files {got:?}\n{}", d.stderr_text());

        // Away again, and the daemon is stopped meanwhile: it does not wait for the
        // broker (SIGTERM cuts a write's wait short), and the lines stay in the database
        // for the next daemon, which delivers them once the broker is back.
        cluster.broker_down(-1).unwrap();
        for i in 1..=3 {
            std::fs::write(watched.join(format!("c{i}")), b"").unwrap();
        }
        assert!(
            wait_until(LONG, || file_lines(&results, "files").len() >= 9),
            "{}",
            d.stderr_text()
        );
        let (status, took) = d.terminate(LONG);
        assert!(status.success(), "{}", d.stderr_text());
        eprintln!("SIGTERM to exit with the broker down: {took:?}");
        assert_eq!(
            files.payloads().len(),
            6,
            "delivered while the broker was down"
        );
        cluster.broker_up(-1).unwrap();
        let mut d = s.start(
            "kafka-again",
            &[
                "--disable_watchdog",
                "--logger_plugin=filesystem,kafka_producer",
                &format!("--logger_kafka_brokers={bootstrap}"),
                "--logger_kafka_topic=base",
            ],
        );
        let complete = wait_until(LONG, || {
            got = files.payloads();
            got.len() >= 9
        });
        assert!(complete, "topic files {got:?}\n{}", d.stderr_text());
        let (status, _) = d.terminate(LONG);
        assert!(status.success(), "{}", d.stderr_text());

        // Same lines, same order, none lost; a duplicate would show as an extra line.
        assert_eq!(files.payloads(), file_lines(&results, "files"));
        assert_eq!(base.payloads(), file_lines(&results, "one"));
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let hostname = hostname.trim();
        for (key, _) in files.read().iter().chain(base.read()) {
            assert_eq!(key, format!("{hostname}_osqueryd").as_bytes());
        }
    }
}
