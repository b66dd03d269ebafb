//! The publishers, one file each.

pub mod audit;
pub mod inotify;
pub mod proc_connector;
pub mod syslog;
pub mod udev;
