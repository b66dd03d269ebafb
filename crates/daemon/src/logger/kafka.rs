//! The `kafka_producer` logger plugin (the `kafka` feature): result and snapshot lines
//! published to Kafka through librdkafka, as osquery's plugin publishes them.
//!
//! What osquery does, and so this does:
//! * each line goes to the topic the config's `kafka_topics` names for its query (the
//!   line's `"name"`), else to `--logger_kafka_topic`; a line with neither is not sent
//!   (logged as an error with the query's name);
//! * the message key is `<hostname>_osqueryd`, the client id the host name;
//! * `--logger_kafka_brokers` is librdkafka's `bootstrap.servers`, `--logger_kafka_acks`
//!   its `acks`, `--logger_kafka_compression` its `compression.codec` (values passed as
//!   they are, so librdkafka refuses a wrong one at start-up);
//! * status lines are not sent (osquery's plugin has no status log).
//!
//! Where it differs: osquery hands a line to librdkafka and forgets it, so a broker
//! that is away loses what the producer's queue cannot keep. Here `write` returns `Ok`
//! only once the broker acknowledged every line of the batch (as `acks` asks: with
//! `acks=0` a line counts as acknowledged once sent), so the outbox keeps a batch and
//! retries it while the brokers are away: nothing is lost below `--buffered_log_max`.
//! A batch that partly failed is retried without the lines already acknowledged (the
//! sink remembers them by the batch's checkpoint). Delivery is still at-least-once: a
//! line the broker stored but whose acknowledgement was lost (a timeout, a connection
//! cut), or a batch cut by a crash, is sent again. Waits are bounded: a message gives up
//! after [`DELIVERY_TIMEOUT`], and once the daemon stops a write waits at most
//! [`STOP_GRACE`] (osquery's own flush at shutdown waits 3 s).
//!
//! The brokers are not reached at start-up: like osquery, the producer connects in the
//! background and an unreachable broker shows as failed batches, retried.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxquery_flags::{Flags, flag};
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig,
};

use crate::item::Stream;
use crate::sink::Sink;

/// The Kafka client, for the process tests' mock cluster and consumer (so the `oxquery`
/// crate's tests need no dependency of their own that every build would compile).
#[doc(hidden)]
pub use rdkafka;

/// How long librdkafka tries to deliver a message (`message.timeout.ms`) before it
/// fails it; the batch is then retried by the outbox. Bounds how long one write holds
/// the logger thread while the brokers are away.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write still waits for acknowledgements once the daemon is stopping.
pub const STOP_GRACE: Duration = Duration::from_secs(3);
/// The program name in the message key (osquery's is its binary's name).
const PROGRAM: &str = "osqueryd";

/// What the Kafka logger flags and the config's `kafka_topics` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `--logger_kafka_brokers`: librdkafka's `bootstrap.servers`.
    pub brokers: String,
    /// `--logger_kafka_topic`: the topic of lines no `kafka_topics` entry names.
    pub topic: String,
    /// `--logger_kafka_acks`: 0, 1 or all.
    pub acks: String,
    /// `--logger_kafka_compression`: none or gzip.
    pub compression: String,
    /// `kafka_topics`: topic → query names.
    pub topics: BTreeMap<String, Vec<String>>,
    /// The host name: the client id and the first part of the message key.
    pub hostname: String,
    /// `--verbose`: librdkafka's own debug lines go to the status log, as osquery asks.
    pub verbose: bool,
    /// How long librdkafka tries each message ([`DELIVERY_TIMEOUT`]; tests shorten it).
    pub delivery_timeout: Duration,
}

impl KafkaSettings {
    pub fn from_flags(flags: &Flags, topics: &BTreeMap<String, Vec<String>>) -> KafkaSettings {
        KafkaSettings {
            brokers: flags.get(flag::logger_kafka_brokers).to_owned(),
            topic: flags.get(flag::logger_kafka_topic).to_owned(),
            acks: flags.get(flag::logger_kafka_acks).to_owned(),
            compression: flags.get(flag::logger_kafka_compression).to_owned(),
            topics: topics.clone(),
            hostname: oxquery_sys::host::hostname().unwrap_or_default(),
            verbose: flags.get(flag::verbose),
            delivery_timeout: DELIVERY_TIMEOUT,
        }
    }

    /// The message key osquery uses: `<hostname>_<program>`.
    pub fn message_key(&self) -> String {
        format!("{}_{PROGRAM}", self.hostname)
    }

    /// The producer's librdkafka configuration.
    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in [
            ("bootstrap.servers", self.brokers.as_str()),
            ("client.id", self.hostname.as_str()),
            ("acks", self.acks.as_str()),
            ("compression.codec", self.compression.as_str()),
        ] {
            // osquery leaves a setting whose flag is empty at librdkafka's default.
            if !value.is_empty() {
                config.set(key, value);
            }
        }
        config.set(
            "message.timeout.ms",
            self.delivery_timeout.as_millis().max(1).to_string(),
        );
        if self.verbose {
            config.set("debug", "all");
        }
        config
    }
}

/// Which topic a query's lines go to.
#[derive(Debug, Clone)]
struct Routes {
    by_query: HashMap<String, String>,
    base: Option<String>,
}

impl Routes {
    fn new(settings: &KafkaSettings) -> Routes {
        let mut by_query = HashMap::new();
        for (topic, queries) in &settings.topics {
            for query in queries.iter().filter(|q| !q.is_empty()) {
                by_query.insert(query.clone(), topic.clone());
            }
        }
        Routes {
            by_query,
            base: (!settings.topic.is_empty()).then(|| settings.topic.clone()),
        }
    }

    /// The topic of `line` (its `"name"` routed by `kafka_topics`, else the base topic),
    /// or `Err` with the query name when there is none.
    fn topic_for(&self, line: &[u8]) -> Result<&str, String> {
        let name = query_name(line);
        if let Some(topic) = name.as_deref().and_then(|n| self.by_query.get(n)) {
            return Ok(topic);
        }
        self.base.as_deref().ok_or_else(|| name.unwrap_or_default())
    }
}

/// The top-level `"name"` of a JSON line, if it is a string. Bytes that are not UTF-8
/// (a value logged as it is) are replaced for this look-up only.
fn query_name(line: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    match serde_json::from_str::<serde_json::Value>(&text).ok()? {
        serde_json::Value::Object(mut map) => match map.remove("name")? {
            serde_json::Value::String(name) => Some(name),
            _ => None,
        },
        _ => None,
    }
}

/// A delivery report: the write's generation and line index (packed in the opaque),
/// and librdkafka's verdict.
type Report = (usize, Result<(), String>);

/// Collects delivery reports for the sink (called from `poll` on the logger thread).
struct Reports {
    done: Mutex<Vec<Report>>,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let verdict = match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.to_string()),
        };
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((opaque, verdict));
    }
}

/// Index bits of a delivery opaque; the bits above hold the write's generation, so a
/// late report of an abandoned write is not taken for one of the current write.
const INDEX_BITS: u32 = 32;

/// What the last batch's write achieved, by the checkpoint the outbox stored with it.
struct Progress {
    checkpoint: String,
    acked: Vec<bool>,
}

/// Errors starting the plugin.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    #[error(
        "kafka_producer has no topic: set --logger_kafka_topic or name topics in the config's kafka_topics"
    )]
    NoTopic,
    #[error(
        "kafka_producer: {0:?} asks for TLS (ssl://), which this build's librdkafka does not have"
    )]
    NoTls(String),
    #[error("kafka_producer: {0}")]
    Client(#[from] KafkaError),
}

pub struct KafkaSink {
    producer: BaseProducer<Reports>,
    routes: Routes,
    key: String,
    stop: Arc<AtomicBool>,
    delivery_timeout: Duration,
    /// Numbers each write, for its reports.
    generation: usize,
    /// Tells this process's checkpoints from a previous one's.
    run_id: String,
    checkpoints: u64,
    /// The checkpoint handed out for the batch about to be written.
    next_checkpoint: Option<String>,
    progress: Option<Progress>,
}

impl KafkaSink {
    /// The producer of `settings`; `stop` is the daemon's, which bounds every wait.
    /// Nothing is sent yet, and the brokers need not be up.
    pub fn new(
        settings: &KafkaSettings,
        stop: Arc<AtomicBool>,
    ) -> Result<KafkaSink, KafkaSetupError> {
        let routes = Routes::new(settings);
        if routes.base.is_none() && routes.by_query.is_empty() {
            return Err(KafkaSetupError::NoTopic);
        }
        if settings.brokers.to_ascii_lowercase().contains("ssl://") {
            return Err(KafkaSetupError::NoTls(settings.brokers.clone()));
        }
        let producer = settings
            .client_config()
            .create_with_context::<_, BaseProducer<Reports>>(Reports {
                done: Mutex::new(Vec::new()),
            })?;
        Ok(KafkaSink {
            producer,
            routes,
            key: settings.message_key(),
            stop,
            delivery_timeout: settings.delivery_timeout,
            generation: 0,
            run_id: oxquery_sys::host::random_uuid().unwrap_or_else(|| {
                format!("{}-{:?}", std::process::id(), std::time::SystemTime::now())
            }),
            checkpoints: 0,
            next_checkpoint: None,
            progress: None,
        })
    }

    /// Sends the lines not yet `acked` and waits for their reports; marks each
    /// acknowledged one. `Ok` when every line is acknowledged (or has no topic).
    fn send(&mut self, lines: &[Vec<u8>], acked: &mut [bool]) -> io::Result<()> {
        self.generation = (self.generation + 1) & ((1 << (usize::BITS - INDEX_BITS)) - 1);
        let generation = self.generation;
        let mut unrouted: BTreeMap<String, usize> = BTreeMap::new();
        let mut expected = 0usize;
        // Reports of this write taken so far (some arrive while later lines are queued).
        let mut reported = 0usize;
        let mut waiter = Waiter::new(&self.stop, self.delivery_timeout);
        let mut failure: Option<String> = None;
        for (i, line) in lines.iter().enumerate() {
            if acked[i] {
                continue;
            }
            let topic = match self.routes.topic_for(line) {
                Ok(topic) => topic,
                Err(name) => {
                    // osquery drops such a line too; retrying would not give it a topic.
                    *unrouted.entry(name).or_default() += 1;
                    acked[i] = true;
                    continue;
                }
            };
            let opaque = (generation << INDEX_BITS) | i;
            let mut record = BaseRecord::with_opaque_to(topic, opaque)
                .payload(line.as_slice())
                .key(self.key.as_bytes());
            loop {
                match self.producer.send(record) {
                    Ok(()) => {
                        expected += 1;
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The producer's queue is full: let deliveries make room.
                        record = back;
                        self.producer.poll(Duration::from_millis(100));
                        reported += collect(&self.producer, generation, acked, &mut failure);
                        if let Err(e) = waiter.check() {
                            self.abandon();
                            return Err(e);
                        }
                    }
                    Err((e, _)) => {
                        // This line fails (librdkafka refuses its topic for now); the
                        // others still go, and the retry sends only what failed.
                        failure.get_or_insert(format!("cannot queue a message for {topic}: {e}"));
                        break;
                    }
                }
            }
        }
        for (name, count) in &unrouted {
            log::error!(
                "Kafka logger: no topic for query {name:?} (no kafka_topics entry and no --logger_kafka_topic); {count} line(s) not sent"
            );
        }
        while reported < expected {
            self.producer.poll(Duration::from_millis(100));
            reported += collect(&self.producer, generation, acked, &mut failure);
            if reported < expected
                && let Err(e) = waiter.check()
            {
                self.abandon();
                return Err(e);
            }
        }
        match failure {
            None => Ok(()),
            Some(e) => {
                let missing = acked.iter().filter(|a| !**a).count();
                Err(io::Error::other(format!(
                    "{missing} of {} message(s) not acknowledged: {e}",
                    lines.len()
                )))
            }
        }
    }

    /// Takes back what is still queued in the producer after a write gave up, so the
    /// retry is not preceded by a late copy (a request already on the wire may still
    /// arrive: at-least-once).
    fn abandon(&self) {
        self.producer
            .purge(PurgeConfig::default().queue().non_blocking());
        self.producer.poll(Duration::ZERO);
        self.producer
            .context()
            .done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Moves the reports of write `generation` into `acked`; returns how many arrived.
fn collect(
    producer: &BaseProducer<Reports>,
    generation: usize,
    acked: &mut [bool],
    failure: &mut Option<String>,
) -> usize {
    let reports = std::mem::take(
        &mut *producer
            .context()
            .done
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    let mut n = 0;
    for (opaque, verdict) in reports {
        if opaque >> INDEX_BITS != generation {
            continue;
        }
        let i = opaque & ((1 << INDEX_BITS) - 1);
        n += 1;
        match verdict {
            Ok(()) => {
                if let Some(a) = acked.get_mut(i) {
                    *a = true;
                }
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    n
}

/// The bound of one write: librdkafka fails every message by its delivery timeout; this
/// only guards against reports that never come, and shortens the wait to [`STOP_GRACE`]
/// once the daemon stops.
struct Waiter<'a> {
    stop: &'a AtomicBool,
    deadline: Instant,
    stopping: bool,
}

impl<'a> Waiter<'a> {
    fn new(stop: &'a AtomicBool, delivery_timeout: Duration) -> Waiter<'a> {
        Waiter {
            stop,
            deadline: Instant::now() + delivery_timeout + Duration::from_secs(5),
            stopping: false,
        }
    }

    fn check(&mut self) -> io::Result<()> {
        let now = Instant::now();
        if !self.stopping && self.stop.load(Ordering::SeqCst) {
            self.stopping = true;
            self.deadline = self.deadline.min(now + STOP_GRACE);
        }
        if now < self.deadline {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            if self.stopping {
                "the daemon is stopping before the brokers acknowledged the batch"
            } else {
                "no delivery report in time"
            },
        ))
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &'static str {
        "kafka_producer"
    }

    /// A name for the batch about to be written, so a retry of it skips the lines
    /// already acknowledged. It means nothing to another process: after a restart the
    /// batch is sent whole.
    fn checkpoint(&mut self, _stream: Stream) -> io::Result<Option<String>> {
        self.checkpoints += 1;
        let checkpoint = format!("{}.{}", self.run_id, self.checkpoints);
        self.next_checkpoint = Some(checkpoint.clone());
        Ok(Some(checkpoint))
    }

    fn write(&mut self, _stream: Stream, lines: &[Vec<u8>]) -> io::Result<()> {
        let mut acked = vec![false; lines.len()];
        let result = self.send(lines, &mut acked);
        self.progress = self
            .next_checkpoint
            .take()
            .map(|checkpoint| Progress { checkpoint, acked });
        result
    }

    fn resume(&mut self, _stream: Stream, checkpoint: &str, lines: &[Vec<u8>]) -> io::Result<()> {
        let mut acked = match self.progress.take() {
            Some(p) if p.checkpoint == checkpoint && p.acked.len() == lines.len() => p.acked,
            _ => vec![false; lines.len()],
        };
        let result = self.send(lines, &mut acked);
        if result.is_err() {
            self.progress = Some(Progress {
                checkpoint: checkpoint.to_owned(),
                acked,
            });
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{Decorations, LogLine, Payload};
    use crate::outbox::{Outbox, OutboxConfig, record};
    use crate::results::{Run, ScheduledQuery, compute};
    use oxquery_store::Store;
    use oxquery_table::Value;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::DefaultProducerContext;
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    use rdkafka::{Offset, TopicPartitionList};

    type Cluster = MockCluster<'static, DefaultProducerContext>;

    /// A one-broker mock cluster on loopback with `topics` (one partition each).
    fn cluster(topics: &[&str]) -> Cluster {
        let cluster = MockCluster::new(1).expect("librdkafka mock cluster");
        for topic in topics {
            cluster.create_topic(topic, 1, 1).unwrap();
        }
        cluster
    }

    fn settings(cluster: &Cluster, base: &str, topics: &[(&str, &[&str])]) -> KafkaSettings {
        KafkaSettings {
            brokers: cluster.bootstrap_servers(),
            topic: base.to_owned(),
            acks: "all".to_owned(),
            compression: "none".to_owned(),
            topics: topics
                .iter()
                .map(|(t, qs)| (t.to_string(), qs.iter().map(|q| q.to_string()).collect()))
                .collect(),
            hostname: "host-a".to_owned(),
            verbose: false,
            delivery_timeout: Duration::from_secs(2),
        }
    }

    fn sink(settings: &KafkaSettings) -> KafkaSink {
        KafkaSink::new(settings, Arc::new(AtomicBool::new(false))).unwrap()
    }

    /// Everything on `topic` (key, payload), read back by a consumer of its own until
    /// `n` messages came or a generous deadline passed.
    fn consume(cluster: &Cluster, topic: &str, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("group.id", "test")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while out.len() < n && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                out.push((
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                ));
            }
        }
        // Anything beyond `n` (a duplicate) shows too.
        while let Some(Ok(m)) = consumer.poll(Duration::from_millis(300)) {
            out.push((
                m.key().unwrap_or_default().to_vec(),
                m.payload().unwrap_or_default().to_vec(),
            ));
        }
        out
    }

    fn payloads(messages: &[(Vec<u8>, Vec<u8>)]) -> Vec<String> {
        messages
            .iter()
            .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
            .collect()
    }

    fn line(name: &str, i: usize) -> Vec<u8> {
        format!(
            r#"{{"name":"{name}","hostIdentifier":"h","columns":{{"i":"{i}"}},"action":"added"}}"#
        )
        .into_bytes()
    }

    #[test]
    fn query_names_route_lines_and_the_rest_take_the_base_topic() {
        let s = KafkaSettings {
            topics: [("special".to_owned(), vec!["q1".to_owned(), String::new()])].into(),
            ..settings_without_cluster("base")
        };
        let routes = Routes::new(&s);
        assert_eq!(routes.topic_for(&line("q1", 1)), Ok("special"));
        assert_eq!(routes.topic_for(&line("q2", 1)), Ok("base"));
        assert_eq!(routes.topic_for(b"not json"), Ok("base"));
        assert_eq!(routes.topic_for(br#"{"name": 5}"#), Ok("base"));
        // A value that is not UTF-8 does not hide the name.
        assert_eq!(
            routes.topic_for(b"{\"name\":\"q1\",\"v\":\"\xff\"}"),
            Ok("special")
        );
        let no_base = Routes::new(&KafkaSettings {
            topic: String::new(),
            ..s
        });
        assert_eq!(no_base.topic_for(&line("q2", 1)), Err("q2".to_owned()));
    }

    fn settings_without_cluster(base: &str) -> KafkaSettings {
        KafkaSettings {
            brokers: "127.0.0.1:1".to_owned(),
            topic: base.to_owned(),
            acks: "all".to_owned(),
            compression: "none".to_owned(),
            topics: BTreeMap::new(),
            hostname: "host-a".to_owned(),
            verbose: false,
            delivery_timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn settings_librdkafka_or_the_plugin_refuse_fail_at_start() {
        let stop = || Arc::new(AtomicBool::new(false));
        let no_topic = settings_without_cluster("");
        assert!(matches!(
            KafkaSink::new(&no_topic, stop()),
            Err(KafkaSetupError::NoTopic)
        ));
        for (acks, compression) in [("some", "none"), ("all", "rar")] {
            let s = KafkaSettings {
                acks: acks.to_owned(),
                compression: compression.to_owned(),
                ..settings_without_cluster("base")
            };
            let err = KafkaSink::new(&s, stop()).err().expect("refused");
            assert!(matches!(err, KafkaSetupError::Client(_)), "{err}");
        }
        let tls = KafkaSettings {
            brokers: "SSL://broker:9093".to_owned(),
            ..settings_without_cluster("base")
        };
        assert!(matches!(
            KafkaSink::new(&tls, stop()),
            Err(KafkaSetupError::NoTls(_))
        ));
        for (acks, compression) in [("0", "none"), ("1", "gzip"), ("all", "none")] {
            let s = KafkaSettings {
                acks: acks.to_owned(),
                compression: compression.to_owned(),
                ..settings_without_cluster("base")
            };
            KafkaSink::new(&s, stop()).unwrap();
        }
    }

    #[test]
    fn lines_arrive_on_their_topics_with_osquery_key() {
        let cluster = cluster(&["base", "special"]);
        let s = settings(&cluster, "base", &[("special", &["q1"])]);
        let mut sink = sink(&s);
        let lines: Vec<Vec<u8>> = (0..40)
            .map(|i| line(if i % 4 == 0 { "q1" } else { "q2" }, i))
            .collect();
        sink.checkpoint(Stream::Results).unwrap();
        sink.write(Stream::Results, &lines).unwrap();
        let special = consume(&cluster, "special", 10);
        let base = consume(&cluster, "base", 30);
        let text = |ls: Vec<&Vec<u8>>| -> Vec<String> {
            ls.iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect()
        };
        // One partition per topic: each topic keeps the order of its lines.
        assert_eq!(payloads(&special), text(lines.iter().step_by(4).collect()));
        assert_eq!(
            payloads(&base),
            text(
                lines
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 4 != 0)
                    .map(|(_, l)| l)
                    .collect()
            )
        );
        assert!(
            special
                .iter()
                .chain(&base)
                .all(|(k, _)| k == b"host-a_osqueryd")
        );
    }

    #[test]
    fn acks_zero_does_not_wait_for_the_broker_and_all_does() {
        // The broker refuses the next produce request: a producer waiting for
        // acknowledgements sees it, one with acks=0 never reads an answer.
        let cluster = cluster(&["base"]);
        let refuse = || {
            cluster.request_errors(
                RDKafkaApiKey::Produce,
                &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
            )
        };
        let mut waits = sink(&settings(&cluster, "base", &[]));
        refuse();
        let err = waits.write(Stream::Results, &[line("q", 1)]).unwrap_err();
        assert!(err.to_string().contains("1 of 1"), "{err}");
        let mut fire_and_forget = sink(&KafkaSettings {
            acks: "0".to_owned(),
            ..settings(&cluster, "base", &[])
        });
        // A first message to connect, so the refusal meets the next request.
        fire_and_forget
            .write(Stream::Results, &[line("q", 2)])
            .unwrap();
        refuse();
        fire_and_forget
            .write(Stream::Results, &[line("q", 3)])
            .unwrap();
        cluster.clear_request_errors(RDKafkaApiKey::Produce);
        // The refused line never reached the topic: that is what acks=0 means.
        assert_eq!(
            payloads(&consume(&cluster, "base", 1)),
            [String::from_utf8(line("q", 2)).unwrap()]
        );
    }

    #[test]
    fn a_partly_failed_batch_is_retried_without_the_acknowledged_lines() {
        let cluster = cluster(&["a", "b"]);
        let s = settings(&cluster, "a", &[("b", &["qb"])]);
        let mut sink = sink(&s);
        // Connect first, so that the refusal meets one of the batch's two requests
        // (librdkafka sends one produce request per partition).
        sink.write(Stream::Results, &[line("qa", 0), line("qb", 0)])
            .unwrap();
        let lines: Vec<Vec<u8>> = (1..=6)
            .map(|i| line(if i % 2 == 0 { "qb" } else { "qa" }, i))
            .collect();
        cluster.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
        );
        let checkpoint = sink.checkpoint(Stream::Results).unwrap().unwrap();
        let err = sink.write(Stream::Results, &lines).unwrap_err();
        assert!(err.to_string().contains("3 of 6"), "{err}");
        sink.resume(Stream::Results, &checkpoint, &lines).unwrap();
        let a = payloads(&consume(&cluster, "a", 4));
        let b = payloads(&consume(&cluster, "b", 4));
        let want = |name: &str| -> Vec<String> {
            (0..=6)
                .filter(|i| (*i == 0) || ((i % 2 == 0) == (name == "qb")))
                .map(|i| String::from_utf8(line(name, i)).unwrap())
                .collect()
        };
        // Every line once: the half that was acknowledged was not sent again.
        assert_eq!(a, want("qa"));
        assert_eq!(b, want("qb"));
    }

    /// Counts what a consumer received from the brokers, from its statistics.
    #[derive(Default)]
    struct Received {
        bytes: std::sync::atomic::AtomicU64,
        reports: std::sync::atomic::AtomicU64,
    }

    impl ClientContext for Received {
        fn stats_raw(&self, statistics: &[u8]) {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(statistics) else {
                return;
            };
            let bytes: u64 = v["brokers"]
                .as_object()
                .map(|b| b.values().filter_map(|b| b["rxbytes"].as_u64()).sum())
                .unwrap_or(0);
            self.bytes.store(bytes, Ordering::SeqCst);
            self.reports.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl rdkafka::consumer::ConsumerContext for Received {}

    /// Bytes a consumer receives from the broker to read the `n` messages on `base`.
    fn bytes_to_fetch(cluster: &Cluster, n: usize) -> u64 {
        let consumer: BaseConsumer<Received> = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("group.id", "test")
            .set("enable.auto.commit", "false")
            .set("statistics.interval.ms", "100")
            .create_with_context(Received::default())
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("base", 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while got < n && Instant::now() < deadline {
            if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
                got += 1;
            }
        }
        assert_eq!(got, n);
        // Statistics made after the last message arrived.
        let seen = consumer.context().reports.load(Ordering::SeqCst);
        while consumer.context().reports.load(Ordering::SeqCst) < seen + 2
            && Instant::now() < deadline
        {
            consumer.poll(Duration::from_millis(100));
        }
        consumer.context().bytes.load(Ordering::SeqCst)
    }

    #[test]
    fn gzip_compression_shrinks_what_goes_over_the_wire() {
        // Lines alike, as a query's rows are: gzip takes them to a fraction. The mock
        // broker stores batches as the producer compressed them and hands them out so.
        let lines: Vec<Vec<u8>> = (0..200)
            .map(|i| {
                format!(
                    r#"{{"name":"q","columns":{{"i":"{i}","path":"/usr/lib/x86_64-linux-gnu/{}"}}}}"#,
                    "lib".repeat(300)
                )
                .into_bytes()
            })
            .collect();
        let fetched = |compression: &str| {
            let cluster = cluster(&["base"]);
            let mut sink = sink(&KafkaSettings {
                compression: compression.to_owned(),
                ..settings(&cluster, "base", &[])
            });
            sink.write(Stream::Results, &lines).unwrap();
            bytes_to_fetch(&cluster, lines.len())
        };
        let plain = fetched("none");
        let gzip = fetched("gzip");
        let raw: usize = lines.iter().map(Vec::len).sum();
        assert!(plain as usize > raw, "plain {plain}, lines {raw}");
        assert!(gzip * 5 < plain, "gzip {gzip}, plain {plain}");
    }

    /// Results of query `name`, one JSON line per row, through the outbox as the daemon
    /// records them.
    fn record_run(store: &mut Store, name: &str, rows: std::ops::Range<i64>) -> Vec<String> {
        let q = ScheduledQuery::new(name, "SELECT i");
        let rows = rows
            .map(|i| [("i".to_owned(), Value::Integer(i))].into_iter().collect())
            .collect();
        let run = Run {
            unix_time: 1,
            epoch: 0,
            decorations: Decorations::new(),
        };
        let outcome = compute(store, &q, rows, run).unwrap();
        let written = std::cell::RefCell::new(Vec::new());
        record(store, &outcome, |item| {
            let Payload::Diff { added, .. } = &item.payload else {
                return Vec::new();
            };
            added
                .iter()
                .map(|r| {
                    let text =
                        serde_json::json!({"name": item.name, "i": r["i"].to_string()}).to_string();
                    written.borrow_mut().push(text.clone());
                    LogLine {
                        stream: Stream::Results,
                        text: text.into_bytes(),
                    }
                })
                .collect()
        })
        .unwrap();
        written.into_inner()
    }

    #[test]
    fn lines_wait_in_the_outbox_while_the_broker_is_away_and_none_is_lost() {
        let cluster = cluster(&["base"]);
        let mut outbox = Outbox::new(
            vec![Box::new(sink(&settings(&cluster, "base", &[])))],
            OutboxConfig {
                batch_lines: 50,
                retry_min: Duration::ZERO,
                retry_max: Duration::ZERO,
                ..OutboxConfig::default()
            },
        );
        let mut store = Store::in_memory().unwrap();
        let mut sent = record_run(&mut store, "q", 0..30);
        assert_eq!(outbox.drain(&mut store).unwrap().delivered, 30);
        cluster.broker_down(-1).unwrap();
        sent.extend(record_run(&mut store, "q", 30..150));
        let report = outbox.drain(&mut store).unwrap();
        assert_eq!(report.delivered, 0, "{report:?}");
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert_eq!(outbox.pending(&store, Stream::Results).unwrap(), 120);
        cluster.broker_up(-1).unwrap();
        let mut delivered = 0;
        for _ in 0..10 {
            delivered += outbox.drain(&mut store).unwrap().delivered;
            if delivered == 120 {
                break;
            }
        }
        assert_eq!(delivered, 120);
        assert_eq!(payloads(&consume(&cluster, "base", 150)), sent);
    }
}
