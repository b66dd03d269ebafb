//! The publishers, one file each.

pub mod audit;
pub mod proc_connector;
pub mod syslog;
pub mod udev;
