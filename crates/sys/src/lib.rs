//! Operating-system readers that tables share.
//!
//! * [`fs`]: reading small kernel files (`/proc`, `/sys`) with one `read` into a reused
//!   buffer, the measured hot path of every process table.
//! * [`host`]: host names, `uname`, and the host UUID every part of the process shares.
//!
//! Invariant: nothing here knows about tables or SQL; these are plain functions over the OS.

pub mod fs;
pub mod host;
