//! Stopping a query: cancellation, deadlines, and a scan whose reader went away.
//!
//! The engine owns one [`Cancel`] per connection and hands it to every scan; another
//! thread (the daemon on SIGTERM, a watchdog) cancels it, and a deadline fires by
//! itself. Generators observe both through [`crate::QueryContext::check`], SQLite through
//! the engine's progress handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why a query or scan stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The reader wants no more rows (a `LIMIT` was reached, the statement finished).
    Closed,
    /// Someone cancelled the query.
    Cancelled,
    /// The query ran past its deadline.
    Deadline,
    /// The query's thread grew past its memory budget (see [`crate::memory`]).
    Memory,
}

impl StopReason {
    /// A short word for logs and tables: `closed`, `cancelled`, `timeout`, `memory`.
    pub fn keyword(self) -> &'static str {
        match self {
            StopReason::Closed => "closed",
            StopReason::Cancelled => "cancelled",
            StopReason::Deadline => "timeout",
            StopReason::Memory => "memory",
        }
    }

    /// The reason a [`StopReason::keyword`] names.
    pub fn from_keyword(word: &str) -> Option<StopReason> {
        [
            StopReason::Closed,
            StopReason::Cancelled,
            StopReason::Deadline,
            StopReason::Memory,
        ]
        .into_iter()
        .find(|r| r.keyword() == word)
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::Closed => "the query stopped reading",
            StopReason::Cancelled => "the query was cancelled",
            StopReason::Deadline => "the query ran past its deadline",
            StopReason::Memory => "the query went over its memory budget",
        })
    }
}

const NO_DEADLINE: u64 = u64::MAX;

/// A cancellation flag plus an optional deadline, shared by clones.
#[derive(Debug, Clone)]
pub struct Cancel {
    inner: Arc<CancelInner>,
}

#[derive(Debug)]
struct CancelInner {
    cancelled: AtomicBool,
    /// Nanoseconds after `origin`; `NO_DEADLINE` when none is set.
    deadline: AtomicU64,
    origin: Instant,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel::new()
    }
}

impl Cancel {
    pub fn new() -> Self {
        Cancel {
            inner: Arc::new(CancelInner {
                cancelled: AtomicBool::new(false),
                deadline: AtomicU64::new(NO_DEADLINE),
                origin: Instant::now(),
            }),
        }
    }

    /// Cancels whatever runs under this token (from any thread).
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
    }

    /// Sets (or clears) the instant after which the query stops.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        let nanos = match deadline {
            None => NO_DEADLINE,
            Some(at) => {
                let after = at.saturating_duration_since(self.inner.origin);
                u64::try_from(after.as_nanos()).unwrap_or(NO_DEADLINE - 1)
            }
        };
        self.inner.deadline.store(nanos, Ordering::Release);
    }

    /// Sets a deadline `timeout` from now.
    pub fn set_timeout(&self, timeout: Duration) {
        self.set_deadline(Some(Instant::now() + timeout));
    }

    /// Clears the flag and the deadline, for the next query.
    pub fn reset(&self) {
        self.inner.cancelled.store(false, Ordering::Release);
        self.inner.deadline.store(NO_DEADLINE, Ordering::Release);
    }

    /// Why work under this token must stop, if it must. The memory budget is the
    /// calling thread's (the query's thread; see [`crate::memory::Window`]).
    #[inline]
    pub fn status(&self) -> Option<StopReason> {
        if self.inner.cancelled.load(Ordering::Acquire) {
            return Some(StopReason::Cancelled);
        }
        if crate::memory::over_budget() {
            return Some(StopReason::Memory);
        }
        let deadline = self.inner.deadline.load(Ordering::Acquire);
        if deadline != NO_DEADLINE && self.inner.origin.elapsed().as_nanos() >= u128::from(deadline)
        {
            return Some(StopReason::Deadline);
        }
        None
    }
}

/// What one scan watches: the query's token and the scan's own "reader is gone" flag.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    query: Cancel,
    scan_closed: Option<Arc<AtomicBool>>,
}

impl Interrupt {
    pub fn new(query: Cancel, scan_closed: Option<Arc<AtomicBool>>) -> Self {
        Interrupt { query, scan_closed }
    }

    #[inline]
    pub fn status(&self) -> Option<StopReason> {
        if self
            .scan_closed
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Acquire))
        {
            return Some(StopReason::Closed);
        }
        self.query.status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_deadline_and_reset() {
        let token = Cancel::new();
        assert_eq!(token.status(), None);
        token.set_deadline(Some(Instant::now() + Duration::from_secs(3600)));
        assert_eq!(token.status(), None);
        token.set_deadline(Some(Instant::now()));
        assert_eq!(token.status(), Some(StopReason::Deadline));
        token.reset();
        assert_eq!(token.status(), None);
        token.clone().cancel();
        assert_eq!(token.status(), Some(StopReason::Cancelled));
        token.reset();
        let window = crate::memory::Window::open(Some(10));
        crate::memory::note_alloc(11);
        assert_eq!(token.status(), Some(StopReason::Memory));
        crate::memory::note_free(11);
        window.close();
        assert_eq!(token.status(), None);
        let closed = Arc::new(AtomicBool::new(false));
        let scan = Interrupt::new(token.clone(), Some(Arc::clone(&closed)));
        assert_eq!(scan.status(), None);
        closed.store(true, Ordering::Release);
        assert_eq!(scan.status(), Some(StopReason::Closed));
    }
}
