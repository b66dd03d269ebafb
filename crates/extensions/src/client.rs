//! A client of an extension manager's or an extension's socket.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::transport::{
    ReadHalf, TBufferedReadTransport, TBufferedWriteTransport, TIoChannel, WriteHalf,
};

use crate::generated::ExtensionManagerSyncClient;

type Input = TBinaryInputProtocol<TBufferedReadTransport<ReadHalf<UnixStream>>>;
type Output = TBinaryOutputProtocol<TBufferedWriteTransport<WriteHalf<UnixStream>>>;

/// What a call through a socket can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {path}: {source}")]
    Connect { path: String, source: io::Error },
    #[error(transparent)]
    Thrift(#[from] thrift::Error),
}

/// A connection to one socket. The `ExtensionManager` client speaks the `Extension`
/// calls too (`ping`, `call`, `shutdown`), so one type serves both kinds of socket.
pub struct Client {
    inner: ExtensionManagerSyncClient<Input, Output>,
}

impl Client {
    /// Connects to `path`; every read and write then waits at most `timeout`
    /// (`--thrift_timeout`).
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, ClientError> {
        let connect_error = |source| ClientError::Connect {
            path: path.display().to_string(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(connect_error)?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(connect_error)?;
        let (read, write) = stream.split()?;
        let input = TBinaryInputProtocol::new(TBufferedReadTransport::new(read), false);
        let output = TBinaryOutputProtocol::new(TBufferedWriteTransport::new(write), true);
        Ok(Client {
            inner: ExtensionManagerSyncClient::new(input, output),
        })
    }

    /// The generated client, with every call of both services
    /// (`TExtensionSyncClient`, `TExtensionManagerSyncClient`).
    pub fn calls(&mut self) -> &mut ExtensionManagerSyncClient<Input, Output> {
        &mut self.inner
    }
}
