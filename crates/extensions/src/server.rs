//! The manager's socket: where it is made (and what is refused), the accept loop (one
//! thread per connection: a client such as an extension's watchdog keeps its connection
//! for its whole life, so a fixed pool would be pinned), reading messages bounded in size
//! and time, and a stop that wakes every blocked thread and removes the socket.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, BufWriter, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TInputProtocol, TMessageIdentifier, TMessageType,
    TOutputProtocol,
};
use thrift::{ApplicationError, ApplicationErrorKind, TConfiguration};

use crate::generated::{
    ExtensionManagerSyncHandler, TExtensionManagerProcessFunctions, TExtensionProcessFunctions,
};

/// The longest string a message may carry when `--thrift_string_size_limit` is 0
/// (osquery's "unlimited"): far above any SQL text or registry, far below what a hostile
/// length prefix could make us allocate.
pub const STRING_MAX: usize = 16 << 20;
/// The most bytes one message may take, whatever its strings and containers say.
pub const MESSAGE_MAX: usize = 64 << 20;

/// How connections are read.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `--thrift_timeout`: how long a started message may take to arrive, and a reply to
    /// be written. Between messages a client may stay idle (osquery's server sets no
    /// timeout there either).
    pub timeout: Duration,
    /// `--thrift_string_size_limit`; 0 is [`STRING_MAX`].
    pub string_limit: usize,
    /// `--thrift_verbose`: log why a connection was closed at info level, not debug.
    pub verbose: bool,
}

impl Limits {
    fn string_max(&self) -> usize {
        if self.string_limit == 0 {
            STRING_MAX
        } else {
            self.string_limit
        }
    }
    fn message_max(&self) -> usize {
        MESSAGE_MAX.max(self.string_max().saturating_mul(2))
    }
}

/// Why the socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}: the directory is writable by others and not sticky")]
    UnsafeDirectory(PathBuf),
    #[error("{0}: the directory is owned by another user")]
    ForeignDirectory(PathBuf),
    #[error("{0}: exists and is not a socket")]
    NotASocket(PathBuf),
    #[error("{0}: another process serves this socket")]
    InUse(PathBuf),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> BindError + '_ {
    move |source| BindError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `<socket>.<suffix>`: an extension's socket is the manager's with its uuid appended.
pub fn with_suffix(socket: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(socket.as_os_str());
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Makes the listening socket at `path`: its directory created owner-only if missing,
/// and refused when others could swap the socket under us (writable by group or others
/// without the sticky bit, or owned by another user than us or root). A socket left by
/// a process that died is replaced, one that answers is not; any other file is refused.
/// Stale extension sockets (`<path>.*`) are removed. The socket is bound under a
/// temporary name, made `0600`, then renamed into place, so it is never reachable with
/// looser permissions.
pub fn bind(path: &Path) -> Result<UnixListener, BindError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_error(&dir))?;
    }
    let meta = std::fs::metadata(&dir).map_err(io_error(&dir))?;
    let mode = meta.permissions().mode();
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(BindError::ForeignDirectory(dir));
    }
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(BindError::UnsafeDirectory(dir));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => return Err(BindError::NotASocket(path.into())),
        Ok(_) => {
            if UnixStream::connect(path).is_ok() {
                return Err(BindError::InUse(path.into()));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(path)(e)),
    }
    remove_extension_sockets(path);
    let temporary = with_suffix(path, &format!("binding-{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let listener = UnixListener::bind(&temporary).map_err(io_error(&temporary))?;
    let placed = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&temporary);
        return Err(io_error(path)(e));
    }
    Ok(listener)
}

/// Removes the sockets `<path>.*` (extensions' sockets of an earlier manager, or of this
/// one when it stops). Only sockets: another file with such a name is not ours.
pub fn remove_extension_sockets(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut prefix = name.as_bytes().to_vec();
    prefix.push(b'.');
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry.file_name().as_bytes().starts_with(&prefix)
            && entry.file_type().is_ok_and(|t| t.is_socket());
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The connections being served, so a stop can wake their threads.
#[derive(Default)]
struct Connections {
    next: AtomicU64,
    open: Mutex<HashMap<u64, UnixStream>>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, UnixStream>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running accept loop.
pub struct Server {
    path: PathBuf,
    listener_fd: i32,
    stopping: Arc<AtomicBool>,
    connections: Arc<Connections>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `listener` on a thread of its own; each connection gets a thread and a
    /// handler made by `handler` on that thread (it may hold what cannot move between
    /// threads, such as an engine).
    pub fn start<H, F>(path: PathBuf, listener: UnixListener, limits: Limits, handler: F) -> Server
    where
        H: ExtensionManagerSyncHandler,
        F: Fn() -> H + Send + Sync + 'static,
    {
        let stopping = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Connections::default());
        let listener_fd = listener.as_raw_fd();
        let handler = Arc::new(handler);
        let accept = {
            let stopping = Arc::clone(&stopping);
            let connections = Arc::clone(&connections);
            std::thread::Builder::new()
                .name("extensions-accept".into())
                .spawn(move || {
                    accept_loop(&listener, &stopping, &connections, &limits, &handler);
                })
                .expect("spawning the extension manager's accept thread")
        };
        Server {
            path,
            listener_fd,
            stopping,
            connections,
            accept: Some(accept),
        }
    }

    /// Stops accepting, closes every connection (their threads end at their next read),
    /// waits for the accept thread and removes the socket file.
    pub fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // SAFETY: the fd belongs to the listener the accept thread still owns (it exits
        // only after seeing `stopping`); shutdown on a listening socket makes a blocked
        // accept return on Linux.
        unsafe {
            libc::shutdown(self.listener_fd, libc::SHUT_RDWR);
        }
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for stream in self.connections.lock().values() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop<H, F>(
    listener: &UnixListener,
    stopping: &AtomicBool,
    connections: &Arc<Connections>,
    limits: &Limits,
    handler: &Arc<F>,
) where
    H: ExtensionManagerSyncHandler,
    F: Fn() -> H + Send + Sync + 'static,
{
    loop {
        let accepted = listener.accept();
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                log::warn!("Extension manager: accepting a connection: {e}");
                // A persistent failure (out of descriptors) must not spin.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let id = connections.next.fetch_add(1, Ordering::Relaxed);
        match stream.try_clone() {
            Ok(copy) => {
                connections.lock().insert(id, copy);
            }
            Err(e) => {
                log::warn!("Extension manager: cannot keep a connection: {e}");
                continue;
            }
        }
        let connections = Arc::clone(connections);
        let limits = limits.clone();
        let handler = Arc::clone(handler);
        let spawned = std::thread::Builder::new()
            .name("extensions-conn".into())
            .spawn(move || {
                let handler = handler();
                if let Err(why) = serve_connection(stream, &limits, &handler) {
                    if limits.verbose {
                        log::info!("Extension manager: closing a connection: {why}");
                    } else {
                        log::debug!("Extension manager: closing a connection: {why}");
                    }
                }
                connections.lock().remove(&id);
            });
        if let Err(e) = spawned {
            log::warn!("Extension manager: cannot start a connection thread: {e}");
        }
    }
}

/// Reads a connection's bytes for the protocol: waits without a deadline for a message
/// to start, then gives it `timeout` per read, and fails once one message took more than
/// `limit` bytes.
struct MessageReader {
    inner: BufReader<UnixStream>,
    control: UnixStream,
    consumed: Rc<Cell<usize>>,
    limit: usize,
    timeout: Duration,
}

impl Read for MessageReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.consumed.get() == 0 && self.inner.buffer().is_empty() {
            self.control.set_read_timeout(None)?;
            let waited = self.inner.fill_buf().map(|b| b.len());
            self.control.set_read_timeout(Some(self.timeout))?;
            if waited? == 0 {
                return Ok(0);
            }
        }
        let n = self.inner.read(buf)?;
        let total = self.consumed.get() + n;
        if total > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a message over {} bytes", self.limit),
            ));
        }
        self.consumed.set(total);
        Ok(n)
    }
}

/// Serves one connection until the client closes it (`Ok`) or sends what cannot be read
/// (`Err`, the reason). Only this connection is closed either way.
fn serve_connection<H: ExtensionManagerSyncHandler>(
    stream: UnixStream,
    limits: &Limits,
    handler: &H,
) -> Result<(), String> {
    let consumed = Rc::new(Cell::new(0));
    let setup = || -> io::Result<(UnixStream, UnixStream)> {
        stream.set_write_timeout(Some(limits.timeout))?;
        Ok((stream.try_clone()?, stream.try_clone()?))
    };
    let (read, control) = setup().map_err(|e| e.to_string())?;
    let config = TConfiguration::builder()
        .max_string_size(Some(limits.string_max()))
        .max_message_size(Some(limits.message_max()))
        .max_frame_size(None)
        .build()
        .map_err(|e| e.to_string())?;
    let reader = MessageReader {
        inner: BufReader::new(read),
        control,
        consumed: Rc::clone(&consumed),
        limit: limits.message_max(),
        timeout: limits.timeout,
    };
    // Non-strict reads: a client may omit the version header, as osquery accepts.
    let mut input = TBinaryInputProtocol::with_config(reader, false, config);
    let mut output = TBinaryOutputProtocol::new(BufWriter::new(stream), true);
    loop {
        consumed.set(0);
        let ident = match input.read_message_begin() {
            Ok(ident) => ident,
            Err(thrift::Error::Transport(e))
                if e.kind == thrift::TransportErrorKind::EndOfFile && consumed.get() == 0 =>
            {
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        };
        if ident.message_type != TMessageType::Call && ident.message_type != TMessageType::OneWay {
            return Err(format!("a {:?} message from a client", ident.message_type));
        }
        dispatch(&ident, handler, &mut input, &mut output).map_err(|e| e.to_string())?;
    }
}

fn dispatch<H: ExtensionManagerSyncHandler>(
    ident: &TMessageIdentifier,
    handler: &H,
    i: &mut dyn TInputProtocol,
    o: &mut dyn TOutputProtocol,
) -> thrift::Result<()> {
    let seq = ident.sequence_number;
    type Manager = TExtensionManagerProcessFunctions;
    type Extension = TExtensionProcessFunctions;
    match ident.name.as_str() {
        "ping" => Extension::process_ping(handler, seq, i, o),
        "call" => Extension::process_call(handler, seq, i, o),
        "shutdown" => Extension::process_shutdown(handler, seq, i, o),
        "extensions" => Manager::process_extensions(handler, seq, i, o),
        "options" => Manager::process_options(handler, seq, i, o),
        "registerExtension" => Manager::process_register_extension(handler, seq, i, o),
        "deregisterExtension" => Manager::process_deregister_extension(handler, seq, i, o),
        "query" => Manager::process_query(handler, seq, i, o),
        "getQueryColumns" => Manager::process_get_query_columns(handler, seq, i, o),
        other => {
            // Its arguments are not read: answer, then close (the stream is out of step).
            let error = ApplicationError::new(
                ApplicationErrorKind::UnknownMethod,
                format!("unknown method {other}"),
            );
            o.write_message_begin(&TMessageIdentifier::new(
                other,
                TMessageType::Exception,
                seq,
            ))?;
            thrift::Error::write_application_error_to_out_protocol(&error, o)?;
            o.write_message_end()?;
            o.flush()?;
            Err(thrift::Error::Application(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Client;
    use crate::generated::{
        ExtensionPluginRequest, ExtensionRegistry, ExtensionResponse, ExtensionStatus,
        ExtensionSyncHandler, InternalExtensionInfo, InternalExtensionList, InternalOptionList,
        TExtensionManagerSyncClient, TExtensionSyncClient,
    };
    use std::io::Write;

    /// Answers `query` with the SQL it was sent (enough to see a message arrived whole).
    struct Echo;
    impl ExtensionSyncHandler for Echo {
        fn handle_ping(&self) -> thrift::Result<ExtensionStatus> {
            Ok(ExtensionStatus::new(0, "pong".to_owned(), 0))
        }
        fn handle_call(
            &self,
            _: String,
            _: String,
            _: ExtensionPluginRequest,
        ) -> thrift::Result<ExtensionResponse> {
            Ok(ExtensionResponse::default())
        }
        fn handle_shutdown(&self) -> thrift::Result<()> {
            Ok(())
        }
    }
    impl ExtensionManagerSyncHandler for Echo {
        fn handle_extensions(&self) -> thrift::Result<InternalExtensionList> {
            Ok(InternalExtensionList::new())
        }
        fn handle_options(&self) -> thrift::Result<InternalOptionList> {
            Ok(InternalOptionList::new())
        }
        fn handle_register_extension(
            &self,
            _: InternalExtensionInfo,
            _: ExtensionRegistry,
        ) -> thrift::Result<ExtensionStatus> {
            Ok(ExtensionStatus::default())
        }
        fn handle_deregister_extension(&self, _: i64) -> thrift::Result<ExtensionStatus> {
            Ok(ExtensionStatus::default())
        }
        fn handle_query(&self, sql: String) -> thrift::Result<ExtensionResponse> {
            Ok(ExtensionResponse::new(
                ExtensionStatus::new(0, sql, 0),
                Vec::new(),
            ))
        }
        fn handle_get_query_columns(&self, _: String) -> thrift::Result<ExtensionResponse> {
            Ok(ExtensionResponse::default())
        }
    }

    fn limits() -> Limits {
        Limits {
            timeout: Duration::from_secs(2),
            string_limit: 1000,
            verbose: true,
        }
    }

    fn echo(client: &mut Client, sql: &str) -> String {
        let answer = client.calls().query(sql.to_owned()).unwrap();
        answer.status.unwrap().message.unwrap()
    }

    #[test]
    fn the_socket_is_owner_only_and_stale_ones_go_but_live_ones_and_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("sub/osquery.em");
        // A missing directory is made owner-only.
        let listener = bind(&socket).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(socket.parent().unwrap()), 0o700);
        assert_eq!(mode(&socket), 0o600);
        // Served: a second manager is refused.
        assert!(matches!(bind(&socket), Err(BindError::InUse(_))));
        drop(listener);
        // Left by a dead process: replaced; stale extension sockets go, other files stay.
        let stale = with_suffix(&socket, "4242");
        drop(UnixListener::bind(&stale).unwrap());
        let other = with_suffix(&socket, "bak");
        std::fs::write(&other, b"keep").unwrap();
        let listener = bind(&socket).unwrap();
        assert!(!stale.exists());
        assert!(other.exists());
        drop(listener);
        std::fs::remove_file(&socket).unwrap();
        std::fs::write(&socket, b"a file").unwrap();
        assert!(matches!(bind(&socket), Err(BindError::NotASocket(_))));
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            bind(&open.join("osquery.em")),
            Err(BindError::UnsafeDirectory(_))
        ));
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(bind(&open.join("osquery.em")).is_ok());
    }

    #[test]
    fn bad_frames_close_their_connection_only_and_stop_wakes_everyone() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("osquery.em");
        let listener = bind(&socket).unwrap();
        let mut server = Server::start(socket.clone(), listener, limits(), || Echo);
        // A client that stays connected across the garbage.
        let mut steady = Client::connect(&socket, Duration::from_secs(5)).unwrap();
        assert_eq!(echo(&mut steady, "select 1"), "select 1");
        // A non-strict client (no version header) is read too.
        let mut loose = UnixStream::connect(&socket).unwrap();
        let message = b"\x00\x00\x00\x04ping\x01\x00\x00\x00\x07\x00".to_vec();
        loose.write_all(&message).unwrap();
        let mut reply = [0u8; 4];
        loose.read_exact(&mut reply).unwrap();
        assert_eq!(reply, [0x80, 0x01, 0x00, 0x02], "a strict reply");
        for garbage in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            &b"\x80\x01\x00\x01\x7f\xff\xff\xff"[..],
            &b"\x80\x01\x00\x01\x00\x00\x00\x05query\x00\x00\x00\x00\x0b\x00\x01\x00\x00\x10\x00"[..],
            &b"\x80\x01\x00\x01\x00\x00\x00\x05query\x00\x00\x00\x00\x0f\x00\x01\x0b\x7f\xff\xff\xff"[..],
        ] {
            let mut bad = UnixStream::connect(&socket).unwrap();
            bad.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            bad.write_all(garbage).unwrap();
            let mut rest = Vec::new();
            // Closed by the server: the read ends (with an exception reply or nothing).
            bad.read_to_end(&mut rest).unwrap();
        }
        // A message that starts and stalls is dropped after the timeout.
        let mut stalled = UnixStream::connect(&socket).unwrap();
        stalled.write_all(b"\x80\x01\x00\x01\x00\x00").unwrap();
        stalled
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut rest = Vec::new();
        stalled.read_to_end(&mut rest).unwrap();
        assert_eq!(echo(&mut steady, "select 2"), "select 2");
        let mut fresh = Client::connect(&socket, Duration::from_secs(5)).unwrap();
        assert_eq!(fresh.calls().ping().unwrap().message.unwrap(), "pong");
        // An idle connection is not timed out between messages, but a stop closes it.
        let mut idle = UnixStream::connect(&socket).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        server.stop();
        assert!(!socket.exists());
        assert_eq!(idle.read(&mut [0u8; 1]).unwrap(), 0);
        assert!(echo_fails(&mut steady));
    }

    fn echo_fails(client: &mut Client) -> bool {
        client.calls().query("select 3".to_owned()).is_err()
    }
}
