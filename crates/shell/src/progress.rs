//! A progress line on stderr for a statement that runs long (a `%%` walk in `file`,
//! hashing a tree): after [`DELAY`] a spinner with the elapsed time and the rows the
//! tables have produced, redrawn in place and erased when the statement's result is
//! ready. The shell starts one only when stderr is a terminal, so piped or captured
//! stderr never sees it and a non-terminal run pays nothing (no thread is started; the
//! engine's row counter is one addition per batch of rows whether read or not).

use oxquery_engine::RowsRead;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Statements quicker than this show nothing.
pub(crate) const DELAY: Duration = Duration::from_secs(1);
/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(100);
/// ASCII, so any terminal font shows it.
const FRAMES: [char; 4] = ['|', '/', '-', '\\'];

/// A running indicator; [`Indicator::finish`] (or dropping it) erases it.
pub(crate) struct Indicator {
    /// Set when the statement is done; the drawing thread waits on it.
    done: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Indicator {
    /// Starts watching a statement that starts now; `rows` counts the rows the tables
    /// produce.
    pub(crate) fn start(rows: RowsRead) -> Indicator {
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let watched = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("progress".to_owned())
            .spawn(move || draw(&watched, &rows))
            .ok();
        Indicator { done, thread }
    }

    /// Stops the indicator and erases its line (if it was drawn) before the caller
    /// prints anything.
    pub(crate) fn finish(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let (lock, wake) = &*self.done;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_one();
        let _ = thread.join();
    }
}

impl Drop for Indicator {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The drawing thread: waits [`DELAY`], then redraws every [`TICK`] until done. Each
/// drawing happens under the lock `finish` takes, so the line is never half-written
/// when the result is printed.
fn draw(done: &(Mutex<bool>, Condvar), rows: &RowsRead) {
    let started = Instant::now();
    let first = rows.get();
    let (lock, wake) = done;
    let mut finished = lock.lock().unwrap_or_else(|p| p.into_inner());
    let mut wait = DELAY;
    let mut frame = 0;
    let mut drawn = false;
    loop {
        finished = wake
            .wait_timeout_while(finished, wait, |d| !*d)
            .unwrap_or_else(|p| p.into_inner())
            .0;
        let mut stderr = io::stderr().lock();
        if *finished {
            if drawn {
                // Back to the start of the line, and clear it.
                let _ = stderr.write_all(b"\r\x1b[K");
                let _ = stderr.flush();
            }
            return;
        }
        let line = status_line(
            FRAMES[frame % FRAMES.len()],
            started.elapsed(),
            rows.get().saturating_sub(first),
        );
        let _ = write!(stderr, "\r\x1b[K{line}");
        let _ = stderr.flush();
        drawn = true;
        frame += 1;
        wait = TICK;
    }
}

/// What the line says: short, so it never wraps (a wrapped line could not be erased).
fn status_line(frame: char, elapsed: Duration, rows: u64) -> String {
    let plural = if rows == 1 { "" } else { "s" };
    format!(
        "{frame} running {:.1}s, {rows} row{plural} read",
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_short() {
        assert_eq!(
            status_line('|', Duration::from_millis(1300), 1),
            "| running 1.3s, 1 row read"
        );
        let long = status_line('/', Duration::from_secs(86_400 * 7), u64::MAX);
        assert_eq!(long, "/ running 604800.0s, 18446744073709551615 rows read");
        assert!(long.len() < 60);
    }
}
