//! The manager's one connection to an extension's socket. The SDKs serve an extension
//! with a single-threaded server (the Python SDK's `TSimpleServer` takes one connection
//! at a time), so every call to one extension goes over this connection, one at a time;
//! a connection that failed is dropped and the next call connects again.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use crate::client::AnswerRows;
use crate::generated::{ExtensionCode, TExtensionSyncClient};
use crate::{CallError, Client, ClientError, PluginRequest, PluginResponse};

/// The SDKs register an extension before its own server listens, so a call made right
/// after the registration (a query of its table) may find no socket yet: connecting
/// waits this long (at most the call's timeout) for it to appear.
const LISTEN_GRACE: Duration = Duration::from_secs(2);

/// How a health check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Alive,
    /// Another call holds the connection: the extension is busy answering it.
    Busy,
    Failed,
}

/// A serialized connection to one extension.
pub struct Link {
    path: PathBuf,
    timeout: Duration,
    client: Mutex<Option<Client>>,
}

impl Link {
    pub fn new(path: PathBuf, timeout: Duration) -> Link {
        Link {
            path,
            timeout,
            client: Mutex::new(None),
        }
    }

    /// The extension's socket.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_client<T>(
        &self,
        mut slot: MutexGuard<'_, Option<Client>>,
        f: impl FnOnce(&mut Client) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        if slot.is_none() {
            *slot = Some(self.connect()?);
        }
        let client = slot.as_mut().expect("connected above");
        let result = f(client);
        if matches!(result, Err(CallError::Client(_))) {
            // The exchange broke part-way: the stream is out of step.
            *slot = None;
        }
        result
    }

    fn connect(&self) -> Result<Client, ClientError> {
        let deadline = Instant::now() + LISTEN_GRACE.min(self.timeout);
        loop {
            match Client::connect(&self.path, self.timeout) {
                Err(ClientError::Connect { ref source, .. })
                    if matches!(
                        source.kind(),
                        ErrorKind::NotFound | ErrorKind::ConnectionRefused
                    ) && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                connected => return connected,
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Client>> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `call(registry, item, request)`: the rows of a successful answer.
    pub fn call(
        &self,
        registry: &str,
        item: &str,
        request: &PluginRequest,
    ) -> Result<PluginResponse, CallError> {
        self.with_client(self.lock(), |client| {
            let answer = client
                .calls()
                .call(registry.to_owned(), item.to_owned(), request.clone())
                .map_err(|e| CallError::Client(e.into()))?;
            let status = answer.status.unwrap_or_default();
            match status.code.unwrap_or(0) {
                0 => Ok(answer.response.unwrap_or_default()),
                code => Err(CallError::Failed {
                    code,
                    message: status.message.unwrap_or_default(),
                }),
            }
        })
    }

    /// `call(registry, item, request)` with each row of a successful answer handed to
    /// `rows` as it is read ([`Client::call_rows`]); a non-zero status is the error
    /// (rows read before it, if the extension sent them first, were handed over).
    pub fn call_rows(
        &self,
        registry: &str,
        item: &str,
        request: &PluginRequest,
        rows: impl AnswerRows,
    ) -> Result<(), CallError> {
        self.with_client(self.lock(), |client| {
            let status = client
                .call_rows(registry, item, request, rows)
                .map_err(|e| CallError::Client(e.into()))?;
            match status.code {
                0 => Ok(()),
                code => Err(CallError::Failed {
                    code,
                    message: status.message,
                }),
            }
        })
    }

    /// A ping, unless a call is running (then the extension is answering: `Busy`).
    pub fn ping(&self) -> Health {
        let slot = match self.client.try_lock() {
            Ok(slot) => slot,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Health::Busy,
        };
        let pinged = self.with_client(slot, |client| {
            client
                .calls()
                .ping()
                .map_err(|e| CallError::Client(e.into()))
        });
        match pinged {
            Ok(status) if status.code != Some(ExtensionCode::EXT_FAILED.0) => Health::Alive,
            _ => Health::Failed,
        }
    }

    /// Asks the extension to exit (`shutdown`); it answers before it goes.
    pub fn shutdown(&self) -> Result<(), CallError> {
        self.with_client(self.lock(), |client| {
            client
                .calls()
                .shutdown()
                .map_err(|e| CallError::Client(e.into()))
        })
    }
}
