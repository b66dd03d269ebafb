//! A netlink socket subscribed to a kernel multicast group, read in bounded batches with
//! a timeout: the shared mechanism of the event readers over netlink
//! ([`crate::proc_connector`], [`crate::uevent`]).
//!
//! The kernel multicasts into each listener's receive queue; when that queue is full it
//! drops the message and the next `recv` fails with `ENOBUFS`. Nothing says how many were
//! lost, so each `ENOBUFS` is counted as one overrun (at least one message gone), logged as
//! a warning with the running count (at most once per [`WARN_EVERY`]), and reading goes on: the socket stays usable. A large receive
//! buffer (`SO_RCVBUFFORCE` as root, past `rmem_max`; else `SO_RCVBUF`) makes overruns rare.
//!
//! Only the kernel's own messages count: a datagram whose sender port is not 0 (another
//! process, which needs privileges to send to these groups) is dropped and counted.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use netlink_sys::{Socket, SocketAddr};

/// Most datagrams one [`MulticastSocket::drain`] reads before it returns, so a caller
/// under a flood still gets back to check its stop flag.
pub const MAX_DATAGRAMS_PER_DRAIN: usize = 4096;

/// `SO_ATTACH_FILTER` (asm-generic and x86; the libc crate does not export it for Linux).
const SO_ATTACH_FILTER: libc::c_int = 26;

/// The shortest time between two overrun warnings: a sustained overload warns (with the
/// running count) every so often, not at each overrun.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Every way a netlink event reader loses or refuses a message, counted since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LossCounters {
    /// `recv` failed with `ENOBUFS`: the kernel dropped at least one message each time
    /// because the receive queue was full (we read too slowly).
    pub overruns: u64,
    /// Datagrams longer than the read buffer (`MSG_TRUNC`), dropped whole.
    pub truncated: u64,
    /// Messages that could not be parsed (bad lengths, missing fields), dropped.
    pub malformed: u64,
    /// Datagrams not sent by the kernel (sender port other than 0), dropped.
    pub foreign: u64,
}

/// One multicast listener socket with its read buffer and loss counters.
pub struct MulticastSocket {
    socket: Socket,
    buf: Vec<u8>,
    pub(crate) loss: LossCounters,
    /// What the socket is, for log messages (`"process connector"`).
    label: &'static str,
    /// When the last overrun warning was logged: at most one per [`WARN_EVERY`].
    last_warning: Option<Instant>,
    /// The receive buffer the kernel granted, in bytes.
    rcvbuf: usize,
}

impl MulticastSocket {
    /// Opens a `protocol` socket bound to the multicast `groups` bitmask with a receive
    /// buffer of about `rcvbuf` bytes, reading datagrams of up to `max_datagram` bytes.
    pub fn open(
        protocol: isize,
        groups: u32,
        rcvbuf: usize,
        max_datagram: usize,
        label: &'static str,
    ) -> io::Result<MulticastSocket> {
        let mut socket = Socket::new(protocol)?;
        let requested = libc::c_int::try_from(rcvbuf).unwrap_or(libc::c_int::MAX);
        // SO_RCVBUFFORCE (needs CAP_NET_ADMIN) ignores net.core.rmem_max; SO_RCVBUF is
        // silently capped by it.
        if setsockopt_int(&socket, libc::SO_RCVBUFFORCE, requested).is_err() {
            setsockopt_int(&socket, libc::SO_RCVBUF, requested)?;
        }
        let rcvbuf = socket.get_rx_buf_sz().unwrap_or(0);
        socket.bind(&SocketAddr::new(0, groups))?;
        Ok(MulticastSocket {
            socket,
            buf: Vec::with_capacity(max_datagram),
            loss: LossCounters::default(),
            label,
            last_warning: None,
            rcvbuf,
        })
    }

    /// This socket's netlink port id (the kernel assigned it at bind).
    pub fn port(&self) -> io::Result<u32> {
        let mut addr = SocketAddr::new(0, 0);
        self.socket.get_address(&mut addr)?;
        Ok(addr.port_number())
    }

    /// The receive buffer size the kernel granted (doubled for its bookkeeping).
    pub fn rcvbuf(&self) -> usize {
        self.rcvbuf
    }

    /// Attaches a classic BPF program that the kernel runs on each message before queueing
    /// it: a message the program rejects never reaches this socket, costs no wake-up and
    /// cannot overrun the queue.
    pub fn attach_filter(&self, program: &[libc::sock_filter]) -> io::Result<()> {
        let len = libc::c_ushort::try_from(program.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let fprog = libc::sock_fprog {
            len,
            // The kernel copies the program and never writes through this pointer.
            filter: program.as_ptr().cast_mut(),
        };
        // SAFETY: fprog points at `len` instructions that live for the call.
        let rc = unsafe {
            libc::setsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_ATTACH_FILTER,
                (&fprog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Sends `bytes` to the kernel (port 0).
    pub fn send_to_kernel(&self, bytes: &[u8]) -> io::Result<()> {
        self.socket.send_to(bytes, &SocketAddr::new(0, 0), 0)?;
        Ok(())
    }

    /// Waits up to `timeout` for the socket to be readable, then reads every datagram
    /// already queued (at most [`MAX_DATAGRAMS_PER_DRAIN`]) without blocking and hands
    /// each one the kernel sent to `f`. Returns the number of datagrams read (0 when the
    /// wait timed out or a signal interrupted it).
    pub fn drain(&mut self, timeout: Duration, mut f: impl FnMut(&[u8])) -> io::Result<usize> {
        if !self.wait_readable(timeout)? {
            return Ok(0);
        }
        let mut count = 0;
        while count < MAX_DATAGRAMS_PER_DRAIN {
            self.buf.clear();
            let capacity = self.buf.capacity();
            match self
                .socket
                .recv_from(&mut self.buf, libc::MSG_DONTWAIT | libc::MSG_TRUNC)
            {
                Ok((len, sender)) => {
                    count += 1;
                    if len > capacity {
                        self.loss.truncated += 1;
                        log::warn!(
                            "{}: dropped a {len}-byte message larger than the {capacity}-byte buffer",
                            self.label
                        );
                    } else if sender.port_number() != 0 {
                        self.loss.foreign += 1;
                        log::debug!(
                            "{}: ignored a message from port {}, not the kernel",
                            self.label,
                            sender.port_number()
                        );
                    } else {
                        f(&self.buf[..len]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    count += 1;
                    self.note_overrun();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(count)
    }

    fn note_overrun(&mut self) {
        self.loss.overruns += 1;
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
        {
            self.last_warning = Some(now);
            log::warn!(
                "{}: the kernel dropped events because they were read too slowly (ENOBUFS); {} overrun(s) so far",
                self.label,
                self.loss.overruns
            );
        }
    }

    /// poll(2) for input; `false` on timeout or a signal.
    fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: pfd is one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        // POLLERR is how a pending ENOBUFS shows; the recv reports it.
        Ok(n > 0)
    }
}

fn setsockopt_int(socket: &Socket, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: value lives for the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads a native-endian `u16` at `at`, `None` past the end.
pub(crate) fn ne_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes([b[0], b[1]]))
}

/// Reads a native-endian `u32` at `at`, `None` past the end.
pub(crate) fn ne_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a native-endian `u64` at `at`, `None` past the end.
pub(crate) fn ne_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_ne_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_stop_at_the_end() {
        let b = [1u8, 0, 0, 0, 2, 0, 0, 0];
        assert_eq!(ne_u32(&b, 0), Some(u32::from_ne_bytes([1, 0, 0, 0])));
        assert_eq!(ne_u32(&b, 5), None);
        assert_eq!(ne_u64(&b, 0), Some(u64::from_ne_bytes(b)));
        assert_eq!(ne_u64(&b, 1), None);
        assert_eq!(ne_u16(&b, 7), None);
        assert_eq!(ne_u16(&b, usize::MAX), None);
    }
}
