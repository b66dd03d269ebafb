//! The aws_kinesis and aws_firehose sinks against moto on loopback (records read back
//! through boto3 and compared with the lines written), and against a stand-in in front
//! of moto that throttles and refuses part of a request first.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxquery_daemon::item::Stream;
use oxquery_daemon::logger::aws::AwsSink;
use oxquery_daemon::sink::Sink;
use oxquery_remote::aws::firehose::Firehose;
use oxquery_remote::aws::kinesis::{Kinesis, PartitionKey};
use oxquery_remote::aws::testing::{Moto, PlainServer, forward};
use oxquery_remote::aws::{
    AwsClient, AwsEnv, AwsHttp, AwsSettings, CredentialChain, CredentialSettings, ImdsSettings,
    RecordStream,
};
use oxquery_remote::testing::Response;
use serde_json::{Value, json};

fn client(endpoint: &str, service: &'static str) -> AwsClient {
    let settings = AwsSettings {
        region: "us-east-1".to_owned(),
        profile_name: String::new(),
        fips: false,
        proxy: None,
        debug: false,
        credentials: CredentialSettings {
            access_key_id: "AKIDTEST".to_owned(),
            secret_access_key: "test-secret".to_owned(),
            session_token: String::new(),
            profile_name: String::new(),
            sts_arn_role: String::new(),
            sts_region: String::new(),
            sts_session_name: "default".to_owned(),
            sts_timeout: Duration::from_secs(3600),
        },
        imds: ImdsSettings {
            endpoint: "http://127.0.0.1:9".to_owned(),
            attempts: 1,
            interval: Duration::ZERO,
            disable_v1_fallback: true,
        },
    };
    let http = AwsHttp::new(&settings, "test").unwrap();
    let chain = Arc::new(CredentialChain::new(
        settings,
        AwsEnv::default(),
        http.clone(),
    ));
    AwsClient::new(
        http,
        chain,
        endpoint.to_owned(),
        "us-east-1".to_owned(),
        service,
    )
}

fn moto() -> Option<Moto> {
    oxquery_test_support::require("moto_server", Moto::start())
}

/// Result lines as the formatter writes them, `n` of them, with bytes JSON escapes.
fn result_lines(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"name":"pack_q","hostIdentifier":"host-a","calendarTime":"Sun Dec  6 19:00:00 2026 UTC","unixTime":1796583600,"epoch":0,"counter":{i},"numerics":false,"columns":{{"n":"{i}","path":"/tmp/\u00e9 \"x\""}},"action":"added"}}"#
            )
            .into_bytes()
        })
        .collect()
}

/// A record as read back: the line's JSON object plus `log_type`.
fn line_of_record(record: &str, log_type: &str) -> Value {
    let mut value: Value = serde_json::from_str(record).expect("a JSON record");
    let object = value.as_object_mut().expect("an object");
    assert_eq!(object.remove("log_type"), Some(json!(log_type)), "{record}");
    value
}

fn parsed(lines: &[Vec<u8>]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[test]
fn kinesis_and_firehose_receive_every_result_line_once() {
    let Some(moto) = moto() else { return };
    moto.boto(&["create-kinesis", "oxq-results"]);
    moto.boto(&["create-firehose", "oxq-delivery", "oxq-bucket"]);
    let stop = Arc::new(AtomicBool::new(false));
    let kinesis: Arc<dyn RecordStream> = Arc::new(Kinesis::new(
        client(&moto.url(), "kinesis"),
        "oxq-results".to_owned(),
        PartitionKey::Fixed("host-a".to_owned()),
    ));
    let firehose: Arc<dyn RecordStream> = Arc::new(Firehose::new(
        client(&moto.url(), "firehose"),
        "oxq-delivery".to_owned(),
    ));
    assert_eq!(kinesis.check(&stop).unwrap(), "ACTIVE");
    assert_eq!(firehose.check(&stop).unwrap(), "ACTIVE");

    // 1,201 lines: three Kinesis/Firehose requests of at most 500, and a line that is not
    // JSON, which osquery drops.
    let mut lines = result_lines(1200);
    lines.insert(700, b"not json".to_vec());
    for stream in [&kinesis, &firehose] {
        let mut sink = AwsSink::new(Arc::clone(stream), Duration::ZERO, Arc::clone(&stop));
        sink.write(Stream::Results, &lines).unwrap();
    }
    let expected = parsed(&result_lines(1200));

    let records = moto.kinesis_records("oxq-results");
    let got: Vec<Value> = records
        .iter()
        .map(|(d, _)| line_of_record(d, "result"))
        .collect();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "Kinesis records differ from the lines");
    assert!(records.iter().all(|(_, key)| key == "host-a"));

    let text = moto.boto(&["s3-text", "oxq-bucket"]);
    let text = text.as_str().unwrap();
    assert!(text.ends_with('\n'));
    // One S3 object per request; objects written within the same second have no order
    // between them, so records are compared in the order of their counter.
    let mut got: Vec<Value> = text.lines().map(|l| line_of_record(l, "result")).collect();
    got.sort_by_key(|v| v["counter"].as_u64());
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "Firehose records differ from the lines");
}

#[test]
fn random_partition_keys_spread_records() {
    let Some(moto) = moto() else { return };
    moto.boto(&["create-kinesis", "oxq-spread", "4"]);
    let stream: Arc<dyn RecordStream> = Arc::new(Kinesis::new(
        client(&moto.url(), "kinesis"),
        "oxq-spread".to_owned(),
        PartitionKey::Random,
    ));
    let mut sink = AwsSink::new(stream, Duration::ZERO, Arc::default());
    sink.write(Stream::Results, &result_lines(40)).unwrap();
    let records = moto.kinesis_records("oxq-spread");
    let keys: std::collections::HashSet<&str> = records.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(records.len(), 40);
    assert_eq!(keys.len(), 40);
}

/// In front of moto: the first PutRecords is throttled, the second loses records 1 and
/// 3 (not passed on to moto, reported failed), the third answers 503; the rest pass.
#[test]
fn throttling_and_partial_failures_lose_and_repeat_nothing() {
    let Some(moto) = moto() else { return };
    moto.boto(&["create-kinesis", "oxq-throttled"]);
    let url = moto.url();
    let seen = Arc::new(AtomicUsize::new(0));
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let stand_in = {
        let (seen, sizes) = (Arc::clone(&seen), Arc::clone(&sizes));
        PlainServer::start(move |r| {
            let target = r.header("x-amz-target").unwrap_or_default().to_owned();
            if target != "Kinesis_20131202.PutRecords" {
                return forward(&url, r, &r.body);
            }
            let mut body = r.json();
            let n = body["Records"].as_array().map_or(0, Vec::len);
            sizes.lock().unwrap().push(n);
            match seen.fetch_add(1, Ordering::SeqCst) {
                0 => Response::Body(
                    400,
                    br#"{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard"}"#.to_vec(),
                ),
                1 => {
                    let records = body["Records"].as_array_mut().unwrap();
                    let kept: Vec<Value> = records
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != 1 && *i != 3)
                        .map(|(_, r)| r.clone())
                        .collect();
                    *records = kept;
                    let Response::Body(200, answer) = forward(&url, r, body.to_string().as_bytes())
                    else {
                        return Response::Body(500, Vec::new());
                    };
                    let mut answer: Value = serde_json::from_slice(&answer).unwrap();
                    let results = answer["Records"].as_array_mut().unwrap();
                    let failed = json!({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"});
                    results.insert(1, failed.clone());
                    results.insert(3, failed);
                    answer["FailedRecordCount"] = json!(2);
                    Response::Json(answer)
                }
                2 => Response::Body(503, b"<html>busy</html>".to_vec()),
                _ => forward(&url, r, &r.body),
            }
        })
    };
    let stream: Arc<dyn RecordStream> = Arc::new(Kinesis::new(
        client(&stand_in.url(), "kinesis"),
        "oxq-throttled".to_owned(),
        PartitionKey::Fixed("host-a".to_owned()),
    ));
    let mut sink = AwsSink::new(stream, Duration::ZERO, Arc::default());
    let lines = result_lines(600);
    sink.write(Stream::Results, &lines).unwrap();
    // Requests: 500 throttled, 500 with two lost, the two again (503), the two again,
    // then the last 100.
    assert_eq!(*sizes.lock().unwrap(), [500, 500, 2, 2, 100]);
    let mut got: Vec<String> = moto
        .kinesis_records("oxq-throttled")
        .iter()
        .map(|(d, _)| line_of_record(d, "result").to_string())
        .collect();
    let mut expected: Vec<String> = parsed(&lines).iter().map(Value::to_string).collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

/// AWS goes away in the middle of a batch: the write fails at once, and once AWS is
/// back the outbox's retry of the batch completes it without repeating what was accepted.
#[test]
fn an_outage_fails_the_batch_and_the_retry_sends_only_the_rest() {
    let Some(moto) = moto() else { return };
    moto.boto(&["create-kinesis", "oxq-outage"]);
    let url = moto.url();
    let calls = Arc::new(AtomicUsize::new(0));
    let up = Arc::new(AtomicBool::new(true));
    let stand_in = {
        let (calls, up) = (Arc::clone(&calls), Arc::clone(&up));
        PlainServer::start(move |r| {
            if r.header("x-amz-target") == Some("Kinesis_20131202.PutRecords") {
                // The first request passes, then AWS goes away until the test says.
                if calls.fetch_add(1, Ordering::SeqCst) == 1 {
                    up.store(false, Ordering::SeqCst);
                }
                if !up.load(Ordering::SeqCst) {
                    return Response::Close;
                }
            }
            forward(&url, r, &r.body)
        })
    };
    let stream: Arc<dyn RecordStream> = Arc::new(Kinesis::new(
        client(&stand_in.url(), "kinesis"),
        "oxq-outage".to_owned(),
        PartitionKey::Fixed("host-a".to_owned()),
    ));
    let mut sink = AwsSink::new(stream, Duration::ZERO, Arc::default());
    let lines = result_lines(700);
    let err = sink.write(Stream::Results, &lines).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("200 of 700 records not accepted"),
        "{err}"
    );
    assert_eq!(moto.kinesis_records("oxq-outage").len(), 500);
    up.store(true, Ordering::SeqCst);
    sink.resume(Stream::Results, "", &lines).unwrap();
    let got: Vec<Value> = moto
        .kinesis_records("oxq-outage")
        .iter()
        .map(|(d, _)| line_of_record(d, "result"))
        .collect();
    assert_eq!(got, parsed(&lines));
}
