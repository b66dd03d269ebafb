//! Operating-system readers that tables share.
//!
//! * [`fs`]: reading small kernel files (`/proc`, `/sys`) with one `read` into a reused
//!   buffer, the measured hot path of every process table.
//!
//! Invariant: nothing here knows about tables or SQL; these are plain functions over the OS.

pub mod fs;
