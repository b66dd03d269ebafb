//! Kinesis Data Streams: `PutRecords` and `DescribeStreamSummary` (JSON 1.1 protocol,
//! target prefix `Kinesis_20131202`), with osquery's limits: 500 records per request,
//! 5,000,000 bytes per request, a record's data below 1,000,000 - 256 bytes (the room
//! AWS keeps for its partition key).

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use base64::Engine as _;
use serde_json::{Value, json};

use super::{AwsClient, AwsError, Limits, PutAnswer, RecordStream, per_record};

pub const LIMITS: Limits = Limits {
    records: 500,
    record_bytes: 1_000_000 - 256,
    batch_bytes: 5_000_000,
    newline: false,
};

/// The partition key of each record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionKey {
    /// The host identifier, for every record (osquery's default).
    Fixed(String),
    /// A new random UUID-shaped key per record (`--aws_kinesis_random_partition_key`),
    /// spreading records over the shards.
    Random,
}

pub struct Kinesis {
    client: AwsClient,
    stream: String,
    key: PartitionKey,
    random: RandomKeys,
}

impl Kinesis {
    pub fn new(client: AwsClient, stream: String, key: PartitionKey) -> Kinesis {
        Kinesis {
            client,
            stream,
            key,
            random: RandomKeys::new(),
        }
    }

    fn partition_key(&self) -> String {
        match &self.key {
            PartitionKey::Fixed(k) if !k.is_empty() => k.clone(),
            // An empty host identifier is not a valid key; a random one is.
            _ => self.random.next(),
        }
    }
}

/// UUID-shaped random keys. Not for secrecy: two seeded hashes of a counter are spread
/// enough for shard assignment, without a random-number crate.
struct RandomKeys {
    state: RandomState,
    counter: AtomicU64,
}

impl RandomKeys {
    fn new() -> RandomKeys {
        RandomKeys {
            state: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let a = self.state.hash_one(n);
        let b = self.state.hash_one(!n);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

impl RecordStream for Kinesis {
    fn plugin(&self) -> &'static str {
        "aws_kinesis"
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
            .map(|r| json!({"Data": engine.encode(r), "PartitionKey": self.partition_key()}))
            .collect();
        let answer = self.client.call_json(
            "Kinesis_20131202.PutRecords",
            &json!({"StreamName": self.stream, "Records": entries}),
            stop,
        )?;
        Ok(per_record(&answer, "Records", records.len()))
    }

    fn check(&self, stop: &AtomicBool) -> Result<String, AwsError> {
        let answer = self.client.call_json(
            "Kinesis_20131202.DescribeStreamSummary",
            &json!({"StreamName": self.stream}),
            stop,
        )?;
        Ok(answer
            .pointer("/StreamDescriptionSummary/StreamStatus")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN")
            .to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_keys_differ_and_look_like_uuids() {
        let keys = RandomKeys::new();
        let all: std::collections::HashSet<String> = (0..1000).map(|_| keys.next()).collect();
        assert_eq!(all.len(), 1000);
        assert!(
            all.iter()
                .all(|k| k.len() == 36 && k.as_bytes()[14] == b'4')
        );
    }
}
