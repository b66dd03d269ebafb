//! The publishers, one file each.

pub mod inotify;
pub mod syslog;
