//! The daemon's side of the `aws_kinesis` and `aws_firehose` logger plugins: their
//! clients built once from the `--aws_*` flags (one credential chain for both), the
//! streams checked at start, and Kinesis' status sender.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxquery_flags::{Flags, flag};
use oxquery_remote::aws::firehose::Firehose;
use oxquery_remote::aws::kinesis::{Kinesis, PartitionKey};
use oxquery_remote::aws::{
    AwsClient, AwsEnv, AwsError, AwsHttp, AwsSettings, CredentialChain, RecordStream, endpoint,
};

use crate::item::Decorations;
use crate::logger::aws::{AwsSink, send_status};
use crate::logger::tls::{attach_status_queue, spawn_status_sender};
use crate::logger::{HostIdentifier, StatusControl};
use crate::sink::Sink;

/// The AWS logger plugins `--logger_plugin` names.
pub(super) struct AwsLoggers {
    pub sinks: Vec<Box<dyn Sink>>,
    /// Kinesis, when its status lines are to be sent.
    status: Option<Arc<dyn RecordStream>>,
}

fn named(flags: &Flags, plugin: &str) -> bool {
    flags
        .get(flag::logger_plugin)
        .split(',')
        .any(|p| p.trim() == plugin)
}

/// Builds the AWS sinks `--logger_plugin` names. A missing stream name, a bad region
/// setting or a stream AWS says does not exist stop the daemon with the reason; AWS
/// unreachable at start only warns (the lines wait in the store).
pub(super) fn loggers(
    flags: &Flags,
    host_identifier: &str,
    stop: &Arc<AtomicBool>,
) -> Result<AwsLoggers, String> {
    let kinesis = named(flags, "aws_kinesis");
    let firehose = named(flags, "aws_firehose");
    let mut out = AwsLoggers {
        sinks: Vec::new(),
        status: None,
    };
    if !kinesis && !firehose {
        return Ok(out);
    }
    let env = AwsEnv::from_process();
    let settings = AwsSettings::from_flags(flags, &env);
    let http = AwsHttp::new(&settings, oxquery_engine::instance::VERSION)?;
    let chain = Arc::new(CredentialChain::new(
        settings.clone(),
        env.clone(),
        http.clone(),
    ));
    let client = |service: &'static str, region_flag: &str, endpoint_flag: &str| {
        let region = settings.region(region_flag, &env)?;
        let url = endpoint(service, endpoint_flag, &env, &region, settings.fips);
        log::info!("AWS {service}: endpoint {url}, region {region}");
        Ok::<_, String>(AwsClient::new(
            http.clone(),
            Arc::clone(&chain),
            url,
            region,
            service,
        ))
    };
    if kinesis {
        let name = flags.get(flag::aws_kinesis_stream);
        if name.is_empty() {
            return Err("Error initializing Kinesis logger: Stream name must be specified with --aws_kinesis_stream".to_owned());
        }
        let key = if flags.get(flag::aws_kinesis_random_partition_key) {
            PartitionKey::Random
        } else {
            PartitionKey::Fixed(host_identifier.to_owned())
        };
        let stream: Arc<dyn RecordStream> = Arc::new(Kinesis::new(
            client(
                "kinesis",
                flags.get(flag::aws_kinesis_region),
                flags.get(flag::aws_kinesis_endpoint),
            )?,
            name.to_owned(),
            key,
        ));
        check(&*stream, stop)?;
        let period = Duration::from_secs(flags.get(flag::aws_kinesis_period));
        out.sinks.push(Box::new(AwsSink::new(
            Arc::clone(&stream),
            period,
            Arc::clone(stop),
        )));
        if !flags.get(flag::aws_kinesis_disable_log_status) {
            out.status = Some(stream);
        }
    }
    if firehose {
        let name = flags.get(flag::aws_firehose_stream);
        if name.is_empty() {
            return Err("Error initializing Firehose logger: Stream name must be specified with --aws_firehose_stream".to_owned());
        }
        let stream: Arc<dyn RecordStream> = Arc::new(Firehose::new(
            client(
                "firehose",
                flags.get(flag::aws_firehose_region),
                flags.get(flag::aws_firehose_endpoint),
            )?,
            name.to_owned(),
        ));
        check(&*stream, stop)?;
        let period = Duration::from_secs(flags.get(flag::aws_firehose_period));
        out.sinks
            .push(Box::new(AwsSink::new(stream, period, Arc::clone(stop))));
    }
    Ok(out)
}

/// The stream must exist: AWS saying it does not (or refusing the credentials) stops
/// the start; no answer, throttling or missing credentials only warn, since the lines
/// wait in the store until AWS answers.
fn check(stream: &dyn RecordStream, stop: &AtomicBool) -> Result<(), String> {
    let plugin = stream.plugin();
    let name = stream.stream_name();
    match stream.check(stop) {
        Ok(status) if status == "ACTIVE" || status == "UPDATING" => {
            log::info!("{plugin} logging initialized with stream: {name}");
            Ok(())
        }
        Ok(status) => {
            log::warn!("{plugin}: stream {name} is {status}; records wait until it is active");
            Ok(())
        }
        Err(e @ AwsError::Service { .. }) if !e.retryable() => Err(format!(
            "Error initializing {plugin} logger: stream {name}: {e}"
        )),
        Err(e) => {
            log::warn!(
                "{plugin}: cannot check stream {name} now ({e}); results are kept until it answers"
            );
            Ok(())
        }
    }
}

/// Sends the status log to Kinesis too, every `--aws_kinesis_period` seconds.
pub(super) fn start_status(
    loggers: &AwsLoggers,
    flags: &Flags,
    control: Option<&StatusControl>,
    host: HostIdentifier,
    decorations: Arc<Mutex<Decorations>>,
    stop: &Arc<AtomicBool>,
) {
    let (Some(stream), Some(control)) = (&loggers.status, control) else {
        return;
    };
    let queue = attach_status_queue(control, host, decorations);
    let period = Duration::from_secs(flags.get(flag::aws_kinesis_period).max(1));
    let (stream, sender_stop) = (Arc::clone(stream), Arc::clone(stop));
    let batch = stream.limits().records;
    if let Err(e) = spawn_status_sender(
        "aws_kinesis",
        period,
        batch,
        queue,
        Arc::clone(stop),
        move |lines| send_status(&*stream, lines, &sender_stop),
    ) {
        log::error!("Cannot start the Kinesis status logger: {e}");
    }
}
