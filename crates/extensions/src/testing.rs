//! A stand-in extension manager for tests of clients (the shell's `--connect`): it serves
//! the `ExtensionManager` service on a unix socket with the generated processor, and
//! answers `query`/`getQueryColumns` with what the test's `answer` function says about
//! each SQL text. Every SQL text it receives is recorded, so a test can check what the
//! client sent. Tests that can start the real manager (our daemon's socket) should use
//! that instead; this exists for the client side alone.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::server::TProcessor;
use thrift::transport::{TBufferedReadTransport, TBufferedWriteTransport};

use crate::generated::{
    ExtensionManagerSyncHandler, ExtensionManagerSyncProcessor, ExtensionPluginRequest,
    ExtensionRegistry, ExtensionResponse, ExtensionRouteUUID, ExtensionStatus,
    ExtensionSyncHandler, InternalExtensionInfo, InternalExtensionList, InternalOptionList,
};

/// What the manager answers to one SQL text.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A result: `(name, type)` per column in order (the `getQueryColumns` answer) and
    /// the rows as the wire carries them, one map per row.
    Rows {
        columns: Vec<(String, String)>,
        rows: Vec<BTreeMap<String, String>>,
    },
    /// A failed query: the status code and message of both calls' answers.
    Failure { code: i32, message: String },
    /// The manager dies during the call: the connection is closed with no answer.
    Hangup,
}

impl Answer {
    /// `Rows` from string slices, for tests that spell a table out.
    pub fn rows(columns: &[(&str, &str)], rows: &[&[&str]]) -> Answer {
        let names: Vec<String> = columns.iter().map(|(n, _)| (*n).to_owned()).collect();
        Answer::Rows {
            columns: columns
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect(),
            rows: rows
                .iter()
                .map(|row| {
                    names
                        .iter()
                        .cloned()
                        .zip(row.iter().map(|v| (*v).to_owned()))
                        .collect()
                })
                .collect(),
        }
    }
}

type AnswerFn = dyn Fn(&str) -> Answer + Send + Sync;

/// A running stand-in manager. Dropping it stops it.
pub struct TestManager {
    path: PathBuf,
    stopping: Arc<AtomicBool>,
    /// Every accepted connection, so [`TestManager::stop`] can cut them.
    connections: Arc<Mutex<Vec<UnixStream>>>,
    received: Arc<Mutex<Vec<String>>>,
    accept_loop: Option<JoinHandle<()>>,
}

impl TestManager {
    /// Listens on `path` (which must not exist) and answers every query with `answer`.
    pub fn start(
        path: &Path,
        answer: impl Fn(&str) -> Answer + Send + Sync + 'static,
    ) -> io::Result<TestManager> {
        let listener = UnixListener::bind(path)?;
        let stopping = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let received = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<AnswerFn> = Arc::new(answer);
        let accept_loop = {
            let stopping = Arc::clone(&stopping);
            let connections = Arc::clone(&connections);
            let received = Arc::clone(&received);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if let Ok(copy) = stream.try_clone() {
                        lock(&connections).push(copy);
                    }
                    let handler = Handler {
                        answer: Arc::clone(&answer),
                        received: Arc::clone(&received),
                        stream: stream.try_clone().ok(),
                    };
                    std::thread::spawn(move || serve(stream, handler));
                }
            })
        };
        Ok(TestManager {
            path: path.to_owned(),
            stopping,
            connections,
            received,
            accept_loop: Some(accept_loop),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SQL texts received by `query` and `getQueryColumns`, in order.
    pub fn received(&self) -> Vec<String> {
        lock(&self.received).clone()
    }

    /// Stops as a dying manager does: open connections are cut and the socket file is
    /// gone, so the next connect fails.
    pub fn stop(&mut self) {
        let Some(accept_loop) = self.accept_loop.take() else {
            return;
        };
        self.stopping.store(true, Ordering::SeqCst);
        // A connection wakes the accept loop, which then sees `stopping`. When the socket
        // file is already gone (its directory was removed first) nothing can reach the
        // loop: it is left blocked, with its listener, until the process ends.
        if UnixStream::connect(&self.path).is_ok() {
            let _ = accept_loop.join();
        }
        for stream in lock(&self.connections).drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for TestManager {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Answers calls on one connection until the client closes it (or it is cut).
fn serve(stream: UnixStream, handler: Handler) {
    let Ok(read) = stream.try_clone() else { return };
    let mut input = TBinaryInputProtocol::new(TBufferedReadTransport::new(read), false);
    let mut output = TBinaryOutputProtocol::new(TBufferedWriteTransport::new(stream), true);
    let processor = ExtensionManagerSyncProcessor::new(handler);
    while processor.process(&mut input, &mut output).is_ok() {}
}

struct Handler {
    answer: Arc<AnswerFn>,
    received: Arc<Mutex<Vec<String>>>,
    /// This connection, for [`Answer::Hangup`].
    stream: Option<UnixStream>,
}

impl Handler {
    fn respond(
        &self,
        sql: String,
        shape: impl Fn(
            Vec<(String, String)>,
            Vec<BTreeMap<String, String>>,
        ) -> Vec<BTreeMap<String, String>>,
    ) -> thrift::Result<ExtensionResponse> {
        let answer = (self.answer)(&sql);
        lock(&self.received).push(sql);
        match answer {
            Answer::Rows { columns, rows } => Ok(ExtensionResponse::new(
                ExtensionStatus::new(0, "OK".to_owned(), None),
                shape(columns, rows),
            )),
            Answer::Failure { code, message } => Ok(ExtensionResponse::new(
                ExtensionStatus::new(code, message, None),
                Vec::new(),
            )),
            Answer::Hangup => {
                if let Some(stream) = &self.stream {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                }
                Err(io::Error::from(io::ErrorKind::ConnectionAborted).into())
            }
        }
    }
}

fn unused<T>(call: &str) -> thrift::Result<T> {
    Err(thrift::Error::Application(thrift::ApplicationError::new(
        thrift::ApplicationErrorKind::UnknownMethod,
        format!("the test manager does not answer {call}"),
    )))
}

impl ExtensionSyncHandler for Handler {
    fn handle_ping(&self) -> thrift::Result<ExtensionStatus> {
        Ok(ExtensionStatus::new(0, "pong".to_owned(), 0))
    }

    fn handle_call(
        &self,
        _registry: String,
        _item: String,
        _request: ExtensionPluginRequest,
    ) -> thrift::Result<ExtensionResponse> {
        unused("call")
    }

    fn handle_shutdown(&self) -> thrift::Result<()> {
        unused("shutdown")
    }
}

impl ExtensionManagerSyncHandler for Handler {
    fn handle_extensions(&self) -> thrift::Result<InternalExtensionList> {
        unused("extensions")
    }

    fn handle_options(&self) -> thrift::Result<InternalOptionList> {
        unused("options")
    }

    fn handle_register_extension(
        &self,
        _info: InternalExtensionInfo,
        _registry: ExtensionRegistry,
    ) -> thrift::Result<ExtensionStatus> {
        unused("registerExtension")
    }

    fn handle_deregister_extension(
        &self,
        _uuid: ExtensionRouteUUID,
    ) -> thrift::Result<ExtensionStatus> {
        unused("deregisterExtension")
    }

    fn handle_query(&self, sql: String) -> thrift::Result<ExtensionResponse> {
        self.respond(sql, |_, rows| rows)
    }

    fn handle_get_query_columns(&self, sql: String) -> thrift::Result<ExtensionResponse> {
        self.respond(sql, |columns, _| {
            columns
                .into_iter()
                .map(|(name, ty)| BTreeMap::from([(name, ty)]))
                .collect()
        })
    }
}
