//! osquery's carve upload: a start request (`--carver_start_endpoint`) announcing the
//! archive (`block_count`, `block_size`, `carve_size`, `carve_id`, `request_id`,
//! `node_key`) answered with a `session_id`, then one continue request
//! (`--carver_continue_endpoint`) per block of `--carver_block_size` bytes, base64 in
//! `data`, with `block_id` counting from 0. The bodies are osquery's, key for key.
//!
//! Unlike osquery, which logs a block it could not send and goes on (then reports the
//! carve a success with a hole in it), a block is retried and the upload fails if it
//! still cannot be sent: the server never holds a carve with a missing block that the
//! agent calls a success.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::enroll::{NodeKeys, sleep_unless_stopped};

/// Tries of the start request and of each block (waits of i² seconds between them).
pub const ATTEMPTS: u64 = 3;

/// What the carver flags say about the upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarveSettings {
    /// `--carver_start_endpoint`.
    pub start_endpoint: String,
    /// `--carver_continue_endpoint`.
    pub continue_endpoint: String,
    /// `--carver_block_size`: bytes per block (at least 1).
    pub block_size: u64,
}

/// Why an upload ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadError {
    /// The daemon is stopping.
    Stopped,
    /// The server refused or could not be reached; the message says where.
    Failed(String),
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadError::Stopped => write!(f, "the daemon is stopping"),
            UploadError::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// How many blocks of `block_size` hold `size` bytes.
pub fn block_count(size: u64, block_size: u64) -> u64 {
    size.div_ceil(block_size.max(1))
}

/// The start request's body, without `node_key` (added with the key when it is sent).
pub fn start_request(
    settings: &CarveSettings,
    size: u64,
    carve_id: &str,
    request_id: &str,
) -> Value {
    json!({
        "block_count": block_count(size, settings.block_size),
        "block_size": settings.block_size.max(1),
        "carve_size": size,
        "carve_id": carve_id,
        "request_id": request_id,
    })
}

/// One continue request's body.
pub fn block_request(block_id: u64, session_id: &str, request_id: &str, data: &[u8]) -> Value {
    json!({
        "block_id": block_id,
        "session_id": session_id,
        "request_id": request_id,
        "data": base64::engine::general_purpose::STANDARD.encode(data),
    })
}

/// Uploads the `size` bytes `archive` holds as carve `carve_id`. `stop` ends it between
/// requests and during the waits.
pub fn upload(
    keys: &NodeKeys,
    settings: &CarveSettings,
    carve_id: &str,
    request_id: &str,
    archive: &mut impl Read,
    size: u64,
    stop: &AtomicBool,
) -> Result<(), UploadError> {
    let answer = keys
        .post_with_key(
            &settings.start_endpoint,
            start_request(settings, size, carve_id, request_id),
            false,
            ATTEMPTS,
            stop,
        )
        .map_err(|e| stopped_or(stop, format!("the carve start request failed: {e}")))?;
    let session_id = match answer.get("session_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => {
            return Err(UploadError::Failed(
                "the server answered an empty session_id".to_owned(),
            ));
        }
        Some(_) => {
            return Err(UploadError::Failed(
                "the server answered a session_id that is not a string".to_owned(),
            ));
        }
        None => {
            return Err(UploadError::Failed(
                "the server answered no session_id".to_owned(),
            ));
        }
    };
    let block_size = settings.block_size.max(1);
    let mut block = Vec::new();
    for block_id in 0..block_count(size, block_size) {
        let len = (size - block_id * block_size).min(block_size);
        block.resize(usize::try_from(len).unwrap_or(usize::MAX), 0);
        archive.read_exact(&mut block).map_err(|e| {
            UploadError::Failed(format!("cannot read block {block_id} of the archive: {e}"))
        })?;
        let body = block_request(block_id, &session_id, request_id, &block);
        send_block(keys, &settings.continue_endpoint, &body, stop)
            .map_err(|e| stopped_or(stop, format!("block {block_id} could not be sent: {e}")))?;
    }
    Ok(())
}

/// Sends one block as osquery does: its body as is (no `node_key` in it), the node key
/// in the `Authorization` header; retried [`ATTEMPTS`] times.
fn send_block(
    keys: &NodeKeys,
    endpoint: &str,
    body: &Value,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        if stop.load(Ordering::SeqCst) {
            return Err("the daemon is stopping".to_owned());
        }
        let key = keys.get(stop)?;
        match keys.client().post(endpoint, body, false, Some(&key)) {
            Ok(_) => return Ok(()),
            Err(e) => {
                keys.after_failure(&e);
                last = e.to_string();
            }
        }
        if attempt < ATTEMPTS && !sleep_unless_stopped(Duration::from_secs(attempt * attempt), stop)
        {
            return Err("the daemon is stopping".to_owned());
        }
    }
    Err(last)
}

fn stopped_or(stop: &AtomicBool, message: String) -> UploadError {
    if stop.load(Ordering::SeqCst) {
        UploadError::Stopped
    } else {
        UploadError::Failed(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CarveServer, Response, TestServer};
    use oxquery_store::Store;
    use std::sync::{Arc, Mutex};

    fn settings(block_size: u64) -> CarveSettings {
        CarveSettings {
            start_endpoint: CarveServer::START.to_owned(),
            continue_endpoint: CarveServer::CONTINUE.to_owned(),
            block_size,
        }
    }

    fn server(carves: &Arc<CarveServer>) -> TestServer {
        let carves = Arc::clone(carves);
        TestServer::start(move |r| {
            if r.path == "/enroll" {
                return Response::Json(json!({"node_key": "nk"}));
            }
            carves
                .answer(r)
                .unwrap_or(Response::Json(json!({"error": "unexpected request"})))
        })
    }

    #[test]
    fn blocks_reassemble_to_the_archive_in_osquery_bodies() {
        let carves = Arc::new(CarveServer::default());
        let server = server(&carves);
        let keys = server.node_keys(Arc::new(Mutex::new(Store::in_memory().unwrap())));
        // 2.5 blocks of bytes that differ from block to block.
        let archive: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
        upload(
            &keys,
            &settings(1000),
            "guid-1",
            "req-1",
            &mut &archive[..],
            archive.len() as u64,
            &AtomicBool::new(false),
        )
        .unwrap();
        let sessions = carves.sessions();
        assert_eq!(sessions.len(), 1);
        let session = &sessions[0];
        assert_eq!(session.data(), archive);
        assert_eq!(
            session.start,
            json!({"block_count": 3, "block_size": 1000, "carve_size": 2500,
                   "carve_id": "guid-1", "request_id": "req-1", "node_key": "nk"})
        );
        let blocks = server.requests_to(CarveServer::CONTINUE);
        assert_eq!(blocks.len(), 3);
        let mut keys_of_block: Vec<String> = blocks[0]
            .json()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys_of_block.sort();
        assert_eq!(
            keys_of_block,
            ["block_id", "data", "request_id", "session_id"]
        );
        assert_eq!(blocks[2].json()["block_id"], 2);
        assert_eq!(blocks[0].header("authorization"), Some("NodeKey nk"));
    }

    #[test]
    fn a_start_answer_without_session_id_fails_the_upload() {
        let server = TestServer::start(|r| match r.path.as_str() {
            "/enroll" => Response::Json(json!({"node_key": "nk"})),
            _ => Response::Json(json!({"session": "x"})),
        });
        let keys = server.node_keys(Arc::new(Mutex::new(Store::in_memory().unwrap())));
        let err = upload(
            &keys,
            &settings(10),
            "g",
            "",
            &mut &b"abc"[..],
            3,
            &AtomicBool::new(false),
        )
        .unwrap_err();
        assert_eq!(
            err,
            UploadError::Failed("the server answered no session_id".to_owned())
        );
        assert!(server.requests_to(CarveServer::CONTINUE).is_empty());
    }

    #[test]
    fn block_counts_round_up() {
        assert_eq!(block_count(0, 8192), 0);
        assert_eq!(block_count(1, 8192), 1);
        assert_eq!(block_count(8192, 8192), 1);
        assert_eq!(block_count(8193, 8192), 2);
        assert_eq!(block_count(5, 0), 5);
    }
}
