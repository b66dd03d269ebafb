//! A bounded HTTP/1.1 `GET` over a unix socket, for the container engines' REST APIs
//! (Docker's Engine API; LXD's speaks the same way).
//!
//! Everything is bounded, since the daemon on the other end may be wedged or hostile: the
//! connect (a listener whose backlog is full would block a plain `connect` for ever), the
//! wait for each byte ([`Limits::idle`]), the whole exchange ([`Limits::total`]) and the
//! response's size ([`Limits::max_response`]). The read waits in short slices so the query's
//! cancellation is seen mid-request. The response is framed by `Content-Length`, chunked
//! encoding or the end of the connection (`Connection: close` is asked for); a body cut
//! short in any of the three is an error, not a partial document.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a request may take and how much it may read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Until the socket accepts the connection.
    pub connect: Duration,
    /// The longest wait for the next byte of the response.
    pub idle: Duration,
    /// The whole request, connect to last byte.
    pub total: Duration,
    /// The most bytes of response (head and body).
    pub max_response: usize,
}

impl Limits {
    /// For the local daemons: they answer in milliseconds, except Docker's one-shot
    /// `stats`, which samples for about two seconds before it answers.
    pub const DEFAULT: Limits = Limits {
        connect: Duration::from_secs(2),
        idle: Duration::from_secs(10),
        total: Duration::from_secs(30),
        max_response: 64 * 1024 * 1024,
    };
}

/// How often a blocked read or connect looks at the cancellation.
const SLICE: Duration = Duration::from_millis(50);

/// Why a request gave no document.
#[derive(Debug)]
pub enum ApiError {
    /// Nothing listens there: the socket file is missing, or refuses (no daemon).
    NoDaemon(std::io::Error),
    /// The caller's stop condition held (the query was cancelled or closed).
    Stopped,
    /// A limit of [`Limits`] was reached; the text says which.
    Limit(String),
    /// The daemon answered with an error status; `message` is its `message` field.
    Status { code: u16, message: String },
    /// The response is not HTTP, is cut short, or its body is not JSON.
    Malformed(String),
    /// Another I/O error.
    Io(std::io::Error),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::NoDaemon(e) => write!(f, "no daemon listens on the socket ({e})"),
            ApiError::Stopped => f.write_str("the query stopped"),
            ApiError::Limit(what) => f.write_str(what),
            ApiError::Status { code, message } => write!(f, "status {code}: {message}"),
            ApiError::Malformed(what) => write!(f, "malformed response: {what}"),
            ApiError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// `GET target` (a path with its query string) on the HTTP server at the unix socket
/// `socket`, and the response body parsed as JSON. `stopped` is polled while waiting.
pub fn get_json(
    socket: &Path,
    target: &str,
    limits: &Limits,
    stopped: &dyn Fn() -> bool,
) -> Result<serde_json::Value, ApiError> {
    let body = get(socket, target, limits, stopped)?;
    serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(format!("body is not JSON: {e}")))
}

/// `GET target` on the HTTP server at the unix socket `socket`: the body of a 2xx answer.
pub fn get(
    socket: &Path,
    target: &str,
    limits: &Limits,
    stopped: &dyn Fn() -> bool,
) -> Result<Vec<u8>, ApiError> {
    let start = Instant::now();
    let mut stream = connect(socket, limits, start, stopped)?;
    // No user text reaches the request line unescaped: callers build `target` from
    // checked identifiers and percent-encoded filters; refuse anything else.
    if target.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(ApiError::Malformed(format!(
            "refusing a request target with spaces or control bytes: {target:?}"
        )));
    }
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: oxquery\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream
        .set_write_timeout(Some(limits.idle))
        .map_err(ApiError::Io)?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                ApiError::Limit(format!("the daemon took no request for {:?}", limits.idle))
            }
            _ => ApiError::Io(e),
        })?;
    read_response(&mut stream, limits, start, stopped)
}

/// Connects without blocking: a unix socket answers `EAGAIN` while its listener's backlog
/// is full, which is retried (watching `stopped`) until [`Limits::connect`].
fn connect(
    socket: &Path,
    limits: &Limits,
    start: Instant,
    stopped: &dyn Fn() -> bool,
) -> Result<UnixStream, ApiError> {
    let path = socket.as_os_str().as_bytes();
    // SAFETY: a zeroed sockaddr_un is a valid empty address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if path.is_empty() || path.len() >= addr.sun_path.len() || path.contains(&0) {
        return Err(ApiError::NoDaemon(std::io::Error::new(
            ErrorKind::InvalidInput,
            "not a usable unix socket path",
        )));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(path) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: plain socket creation; the descriptor is owned by the stream at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(ApiError::Io(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh socket nobody else owns.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let len = (std::mem::size_of::<libc::sa_family_t>() + path.len() + 1) as libc::socklen_t;
    loop {
        // SAFETY: `addr` is an initialised sockaddr_un of at least `len` bytes.
        let rc = unsafe { libc::connect(fd, (&raw const addr).cast(), len) };
        if rc == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::EINPROGRESS) => {
                if stopped() {
                    return Err(ApiError::Stopped);
                }
                if start.elapsed() >= limits.connect {
                    return Err(ApiError::Limit(format!(
                        "the socket accepted no connection within {:?}",
                        limits.connect
                    )));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Some(libc::ENOENT) | Some(libc::ECONNREFUSED) | Some(libc::ENOTSOCK) => {
                return Err(ApiError::NoDaemon(err));
            }
            _ => return Err(ApiError::Io(err)),
        }
    }
    stream.set_nonblocking(false).map_err(ApiError::Io)?;
    stream.set_read_timeout(Some(SLICE)).map_err(ApiError::Io)?;
    Ok(stream)
}

/// How the body ends, from the response head.
#[derive(Debug, Clone, Copy)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// A parsed response head: status, framing, and where the body starts.
struct Head {
    code: u16,
    framing: Framing,
    body_start: usize,
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, ApiError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let body_start = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ApiError::Malformed(format!("bad response head: {e}"))),
    };
    let code = response.code.unwrap_or(0);
    let mut framing = Framing::UntilClose;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
            {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("content-length")
            && !matches!(framing, Framing::Chunked)
        {
            let len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| ApiError::Malformed("bad Content-Length".to_owned()))?;
            framing = Framing::Length(len);
        }
    }
    Ok(Some(Head {
        code,
        framing,
        body_start,
    }))
}

/// Decodes a chunked body: `Ok(None)` while it is incomplete.
fn decode_chunked(mut data: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
    let mut body = Vec::new();
    loop {
        let (consumed, size) = match httparse::parse_chunk_size(data) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(ApiError::Malformed("bad chunk size".to_owned())),
        };
        data = &data[consumed..];
        if size == 0 {
            // Trailer fields (none from these daemons) end with an empty line.
            let done = data.starts_with(b"\r\n") || data.windows(4).any(|w| w == b"\r\n\r\n");
            return Ok(done.then_some(body));
        }
        let size = usize::try_from(size)
            .map_err(|_| ApiError::Malformed("chunk size out of range".to_owned()))?;
        if data.len() < size.saturating_add(2) {
            return Ok(None);
        }
        if &data[size..size + 2] != b"\r\n" {
            return Err(ApiError::Malformed("chunk not ended by CRLF".to_owned()));
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The body, once `buf` (head included) holds all of it: `Ok(None)` while incomplete.
fn complete_body(buf: &[u8], head: &Head) -> Result<Option<Vec<u8>>, ApiError> {
    let rest = &buf[head.body_start..];
    match head.framing {
        Framing::Length(n) => Ok((rest.len() >= n).then(|| rest[..n].to_vec())),
        // Decoding from the start each time would be quadratic: only try once the bytes
        // end as a last chunk does.
        Framing::Chunked if rest.ends_with(b"\r\n\r\n") => decode_chunked(rest),
        Framing::Chunked | Framing::UntilClose => Ok(None),
    }
}

fn read_response(
    stream: &mut UnixStream,
    limits: &Limits,
    start: Instant,
    stopped: &dyn Fn() -> bool,
) -> Result<Vec<u8>, ApiError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let mut head: Option<Head> = None;
    let mut last_byte = Instant::now();
    let body = loop {
        if stopped() {
            return Err(ApiError::Stopped);
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                // The end of the connection: the body is what came, if its framing agrees.
                let Some(head) = &head else {
                    return Err(ApiError::Malformed(if buf.is_empty() {
                        "the connection closed without an answer".to_owned()
                    } else {
                        "the connection closed inside the response head".to_owned()
                    }));
                };
                let rest = &buf[head.body_start..];
                match head.framing {
                    Framing::UntilClose => break rest.to_vec(),
                    Framing::Length(n) => {
                        return Err(ApiError::Malformed(format!(
                            "body cut short: {} of {n} bytes",
                            rest.len()
                        )));
                    }
                    Framing::Chunked => match decode_chunked(rest)? {
                        Some(body) => break body,
                        None => {
                            return Err(ApiError::Malformed(
                                "chunked body cut short (no last chunk)".to_owned(),
                            ));
                        }
                    },
                }
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                last_byte = Instant::now();
                if buf.len() > limits.max_response {
                    return Err(ApiError::Limit(format!(
                        "response larger than {} bytes",
                        limits.max_response
                    )));
                }
                if head.is_none() {
                    head = parse_head(&buf)?;
                }
                if let Some(h) = &head
                    && let Some(body) = complete_body(&buf, h)?
                {
                    break body;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(ApiError::Io(e)),
        }
        if last_byte.elapsed() >= limits.idle {
            return Err(ApiError::Limit(format!(
                "the daemon sent nothing for {:?} ({} bytes so far)",
                limits.idle,
                buf.len()
            )));
        }
        if start.elapsed() >= limits.total {
            return Err(ApiError::Limit(format!(
                "the answer took longer than {:?}",
                limits.total
            )));
        }
    };
    let head = head.expect("a body implies a head");
    if !(200..300).contains(&head.code) {
        // Docker and LXD explain errors in a JSON `message` (LXD: `error`).
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .or_else(|| v.get("error"))
                    .and_then(|m| m.as_str().map(str::to_owned))
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
        return Err(ApiError::Status {
            code: head.code,
            message,
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const SHORT: Limits = Limits {
        connect: Duration::from_millis(500),
        idle: Duration::from_millis(300),
        total: Duration::from_secs(5),
        max_response: 1024 * 1024,
    };

    fn never() -> bool {
        false
    }

    /// A server on a fresh socket that reads one request head and writes `answer` (then
    /// closes, unless `hold` keeps the connection open without a word).
    fn serve(answer: Vec<u8>, hold: bool) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let mut stream = stream;
            let _ = stream.write_all(&answer);
            if hold {
                std::thread::sleep(Duration::from_secs(20));
            }
        });
        (dir, path)
    }

    fn get_from(answer: &[u8]) -> Result<serde_json::Value, ApiError> {
        let (_dir, path) = serve(answer.to_vec(), false);
        get_json(&path, "/version", &SHORT, &never)
    }

    #[test]
    fn reads_length_chunked_and_until_close_bodies() {
        let v = get_from(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"a\":1}\n").unwrap();
        assert_eq!(v["a"], 1);
        let v = get_from(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:2}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(v["a"], 2);
        let v = get_from(b"HTTP/1.0 200 OK\r\n\r\n[1,2]").unwrap();
        assert_eq!(v, serde_json::json!([1, 2]));
    }

    #[test]
    fn error_statuses_carry_the_daemons_message() {
        let e = get_from(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 27\r\n\r\n{\"message\":\"no such thing\"}",
        )
        .unwrap_err();
        assert!(
            matches!(&e, ApiError::Status { code: 404, message } if message == "no such thing"),
            "{e:?}"
        );
    }

    #[test]
    fn hostile_responses_are_errors_not_hangs() {
        let cases: [&[u8]; 7] = [
            b"",
            b"HTTP/1.1 200 OK\r\nContent-",
            b"not http at all\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"a\":1}",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n{\"a\":]",
        ];
        for answer in cases {
            let e = get_from(answer).unwrap_err();
            assert!(
                matches!(e, ApiError::Malformed(_)),
                "{:?}: {e:?}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    #[test]
    fn a_silent_daemon_hits_the_idle_limit() {
        let (_dir, path) = serve(Vec::new(), true);
        let e = get_json(&path, "/version", &SHORT, &never).unwrap_err();
        assert!(
            matches!(&e, ApiError::Limit(m) if m.contains("sent nothing")),
            "{e:?}"
        );
        // A head, then silence, in the middle of a body.
        let (_dir, path) = serve(
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{".to_vec(),
            true,
        );
        let e = get_json(&path, "/version", &SHORT, &never).unwrap_err();
        assert!(
            matches!(&e, ApiError::Limit(m) if m.contains("sent nothing")),
            "{e:?}"
        );
    }

    #[test]
    fn an_oversized_answer_stops_at_the_limit() {
        let mut answer = b"HTTP/1.1 200 OK\r\n\r\n[".to_vec();
        answer.resize(3 * 1024 * 1024, b'1');
        let (_dir, path) = serve(answer, false);
        let e = get_json(&path, "/version", &SHORT, &never).unwrap_err();
        assert!(
            matches!(&e, ApiError::Limit(m) if m.contains("larger")),
            "{e:?}"
        );
    }

    #[test]
    fn cancellation_is_seen_while_waiting() {
        let (_dir, path) = serve(Vec::new(), true);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            flag.store(true, Ordering::Relaxed);
        });
        // The idle limit is long here: only the stop flag can end the wait.
        let limits = Limits {
            idle: Duration::from_secs(60),
            total: Duration::from_secs(60),
            ..SHORT
        };
        let e = get_json(&path, "/version", &limits, &|| stop.load(Ordering::Relaxed)).unwrap_err();
        assert!(matches!(e, ApiError::Stopped), "{e:?}");
    }

    #[test]
    fn a_missing_or_dead_socket_is_no_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.sock");
        let e = get(&missing, "/version", &SHORT, &never).unwrap_err();
        assert!(matches!(e, ApiError::NoDaemon(_)), "{e:?}");
        // A socket file whose listener is gone refuses.
        let dead = dir.path().join("dead.sock");
        drop(UnixListener::bind(&dead).unwrap());
        let e = get(&dead, "/version", &SHORT, &never).unwrap_err();
        assert!(matches!(e, ApiError::NoDaemon(_)), "{e:?}");
    }

    #[test]
    fn a_full_backlog_is_bounded_by_the_connect_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.sock");
        // Never accepts: fill its backlog with connections nobody takes.
        let _listener = UnixListener::bind(&path).unwrap();
        let mut held = Vec::new();
        let e = loop {
            match connect(&path, &SHORT, Instant::now(), &never) {
                // Each connection waits in the backlog (nobody accepts) until it is full.
                Ok(stream) => held.push(stream),
                Err(ApiError::Limit(m)) => break m,
                Err(other) => panic!("{other:?}"),
            }
            assert!(held.len() < 100_000, "the backlog never filled");
        };
        assert!(e.contains("accepted no connection"));
    }

    #[test]
    fn targets_with_spaces_or_controls_are_refused() {
        let (_dir, path) = serve(b"HTTP/1.1 200 OK\r\n\r\n{}".to_vec(), false);
        let e = get(&path, "/x HTTP/1.1\r\nHost: y", &SHORT, &never).unwrap_err();
        assert!(matches!(e, ApiError::Malformed(_)), "{e:?}");
    }
}
