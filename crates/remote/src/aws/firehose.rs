//! Data Firehose: `PutRecordBatch` and `DescribeDeliveryStream` (JSON 1.1 protocol,
//! target prefix `Firehose_20150804`), with osquery's limits: 500 records and
//! 4,000,000 bytes per request, a record below 1,000,000 bytes, each ending with a
//! newline so the objects Firehose writes keep one line per record.

use std::sync::atomic::AtomicBool;

use base64::Engine as _;
use serde_json::{Value, json};

use super::{AwsClient, AwsError, Limits, PutAnswer, RecordStream, per_record};

pub const LIMITS: Limits = Limits {
    records: 500,
    record_bytes: 1_000_000,
    batch_bytes: 4_000_000,
    newline: true,
};

pub struct Firehose {
    client: AwsClient,
    stream: String,
}

impl Firehose {
    pub fn new(client: AwsClient, stream: String) -> Firehose {
        Firehose { client, stream }
    }
}

impl RecordStream for Firehose {
    fn plugin(&self) -> &'static str {
        "aws_firehose"
    }

    fn stream_name(&self) -> &str {
        &self.stream
    }

    fn limits(&self) -> Limits {
        LIMITS
    }

    fn put(&self, records: &[Vec<u8>], stop: &AtomicBool) -> Result<PutAnswer, AwsError> {
        let engine = base64::engine::general_purpose::STANDARD;
        let entries: Vec<Value> = records
            .iter()
            .map(|r| json!({"Data": engine.encode(r)}))
            .collect();
        let answer = self.client.call_json(
            "Firehose_20150804.PutRecordBatch",
            &json!({"DeliveryStreamName": self.stream, "Records": entries}),
            stop,
        )?;
        Ok(per_record(&answer, "RequestResponses", records.len()))
    }

    fn check(&self, stop: &AtomicBool) -> Result<String, AwsError> {
        let answer = self.client.call_json(
            "Firehose_20150804.DescribeDeliveryStream",
            &json!({"DeliveryStreamName": self.stream}),
            stop,
        )?;
        Ok(answer
            .pointer("/DeliveryStreamDescription/DeliveryStreamStatus")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN")
            .to_owned())
    }
}
