//! osqueryd with `--logger_plugin=filesystem,aws_kinesis,aws_firehose` against moto on
//! loopback (records read back through boto3): every result line the filesystem logger
//! wrote reaches Kinesis and Firehose once, with osquery's `log_type`, status lines reach
//! Kinesis, and a stream that does not exist stops the start with the reason.

#[allow(dead_code)]
mod daemon_support;

use daemon_support::{Sandbox, wait_until};
use oxquery_remote::aws::testing::Moto;
use serde_json::{Value, json};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn moto() -> Option<Moto> {
    oxquery_test_support::require("moto_server", Moto::start())
}

fn aws_args(moto: &Moto) -> Vec<String> {
    let url = moto.url();
    vec![
        "--disable_watchdog".into(),
        "--logger_plugin=filesystem,aws_kinesis,aws_firehose".into(),
        "--aws_access_key_id=AKIDOXQUERYTEST".into(),
        "--aws_secret_access_key=test-secret".into(),
        "--aws_region=us-east-1".into(),
        "--aws_kinesis_stream=osq-results".into(),
        format!("--aws_kinesis_endpoint={url}"),
        "--aws_kinesis_period=1".into(),
        "--aws_firehose_stream=osq-delivery".into(),
        format!("--aws_firehose_endpoint={url}"),
        "--aws_firehose_period=1".into(),
        "--host_identifier=specified".into(),
        "--specified_identifier=aws-test-host".into(),
    ]
}

/// Records as read back, split by `log_type` (removed from each).
fn by_type(records: impl IntoIterator<Item = String>) -> (Vec<Value>, Vec<Value>) {
    let (mut results, mut statuses) = (Vec::new(), Vec::new());
    for record in records {
        let mut value: Value = serde_json::from_str(&record).expect("a JSON record");
        let kind = value
            .as_object_mut()
            .and_then(|o| o.remove("log_type"))
            .expect("every record has log_type");
        match kind.as_str() {
            Some("result") => results.push(value),
            Some("status") => statuses.push(value),
            other => panic!("log_type {other:?}"),
        }
    }
    (results, statuses)
}

#[test]
fn result_lines_reach_kinesis_and_firehose_once_and_statuses_reach_kinesis() {
    let Some(moto) = moto() else { return };
    moto.boto(&["create-kinesis", "osq-results"]);
    moto.boto(&["create-firehose", "osq-delivery", "osq-bucket"]);
    let s = Sandbox::new();
    s.write_config(
        &json!({"schedule": {"aws_q": {"query": "select 'to aws' as source, unix_time as t from time", "interval": 1}}})
            .to_string(),
    );
    let args = aws_args(&moto);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = s.start("aws", &args);
    assert!(
        wait_until(LONG, || s.results_of("aws_q").len() >= 3),
        "no results\n{}",
        d.stderr_text()
    );
    // The last drain at SIGTERM sends what the period held back.
    d.terminate(LONG);
    let written: Vec<Value> = s.results().into_iter().map(Value::Object).collect();
    assert!(written.len() >= 3);

    let kinesis = moto.kinesis_records("osq-results");
    assert!(kinesis.iter().all(|(_, key)| key == "aws-test-host"));
    let (results, statuses) = by_type(kinesis.into_iter().map(|(d, _)| d));
    assert_eq!(
        results, written,
        "Kinesis results differ from the results log"
    );
    // osquery's status shape, with the start-up line among them.
    assert!(!statuses.is_empty());
    assert!(
        statuses
            .iter()
            .all(|s| s["hostIdentifier"] == "aws-test-host"
                && s.get("severity").is_some()
                && s.get("message").is_some())
    );

    let text = moto.boto(&["s3-text", "osq-bucket"]);
    let (mut results, statuses) = by_type(text.as_str().unwrap().lines().map(str::to_owned));
    // osquery's Firehose plugin sends no status lines.
    assert!(statuses.is_empty());
    let key = |v: &Value| v.to_string();
    let mut expected = written.clone();
    results.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(
        results, expected,
        "Firehose results differ from the results log"
    );
}

#[test]
fn a_stream_that_does_not_exist_stops_the_start_with_the_reason() {
    let Some(moto) = moto() else { return };
    moto.boto(&["create-firehose", "osq-delivery", "osq-bucket-2"]);
    let s = Sandbox::new();
    s.write_config("{}");
    let args = aws_args(&moto);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = s.run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Error initializing aws_kinesis logger: stream osq-results")
            && stderr.contains("ResourceNotFoundException"),
        "{stderr}"
    );
}

#[test]
fn a_missing_stream_name_is_osquery_s_error() {
    let s = Sandbox::new();
    s.write_config("{}");
    let out = s.run(&[
        "--disable_watchdog",
        "--logger_plugin=aws_firehose",
        "--aws_access_key_id=A",
        "--aws_secret_access_key=B",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("Stream name must be specified with --aws_firehose_stream"),
        "{stderr}"
    );
}

#[test]
fn results_logged_while_aws_is_unreachable_arrive_once_it_answers() {
    // Only to learn whether moto is there: the test's own moto starts later.
    if moto().is_none() {
        return;
    }
    let port = oxquery_remote::aws::testing::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let s = Sandbox::new();
    s.write_config(
        &json!({"schedule": {"late_q": {"query": "select 'queued' as source, unix_time as t from time", "interval": 1}}})
            .to_string(),
    );
    let args = [
        "--disable_watchdog".to_owned(),
        "--logger_plugin=filesystem,aws_kinesis".to_owned(),
        "--aws_access_key_id=AKIDOXQUERYTEST".to_owned(),
        "--aws_secret_access_key=test-secret".to_owned(),
        "--aws_kinesis_stream=osq-late".to_owned(),
        format!("--aws_kinesis_endpoint={url}"),
        "--aws_kinesis_period=1".to_owned(),
        "--aws_kinesis_disable_log_status".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = s.start("late", &args);
    // Results pile up while nothing listens on the endpoint.
    assert!(
        wait_until(LONG, || s.results_of("late_q").len() >= 3),
        "no results\n{}",
        d.stderr_text()
    );
    assert!(
        d.stderr_text().contains("cannot check stream osq-late now"),
        "{}",
        d.stderr_text()
    );
    let moto = Moto::start_on(port).expect("moto on the chosen port");
    moto.boto(&["create-kinesis", "osq-late"]);
    let delivered = || moto.kinesis_records("osq-late").len();
    assert!(
        wait_until(LONG, || delivered() >= 3),
        "nothing delivered after AWS came back\n{}",
        d.stderr_text()
    );
    d.terminate(LONG);
    let written: Vec<Value> = s.results().into_iter().map(Value::Object).collect();
    let (results, statuses) = by_type(moto.kinesis_records("osq-late").into_iter().map(|(d, _)| d));
    assert!(statuses.is_empty(), "--aws_kinesis_disable_log_status");
    assert_eq!(
        results, written,
        "Kinesis results differ from the results log"
    );
}
