//! The Linux audit netlink interface (`NETLINK_AUDIT`) behind the audit event tables
//! (process_events, socket_events, user_events, process_file_events, selinux_events,
//! apparmor_events, seccomp_events).
//!
//! * [`AuditSession`]: control. Reads the status, sets our pid / `enabled` / backlog
//!   settings, lists, adds and deletes rules, and remembers every change so
//!   [`AuditSession::restore`] (also run on drop) deletes exactly the rules it added and
//!   puts the settings back as they were (osquery's `--audit_force_unconfigure`).
//! * Ownership: only one process (the "audit daemon") receives events. [`AuditOwner`]
//!   says who holds the socket, whether it lives and whether it is an audit daemon
//!   ([`AUDIT_DAEMONS`], by executable name); [`AuditSession::take_socket`] takes it only
//!   as [`TakeOver`] allows, so we never fight auditd unless told to. The kernel itself
//!   refuses to replace a healthy holder (`EEXIST`): taking over only ever succeeds from
//!   a dead one. [`AuditReader::lost_socket_to`] reports when another process holds it
//!   later.
//! * [`AuditRule`] / [`SyscallSet`]: the syscall rules the tables install (exit filter,
//!   native 64-bit arch, key `oxquery`).
//! * [`AuditReader`]: the event reader. `next_batch(timeout)` polls the socket, reads all
//!   records available, groups them into [`AuditEvent`]s (module `assemble`: by the
//!   serial of `audit(TIME:SERIAL)`, closed by EOE; user messages alone; others after a
//!   timeout) and returns at the latest after the timeout. [`AuditReader::read_log`]
//!   reads the kernel's read-only copy of the records instead (`AUDIT_NLGRP_READLOG`):
//!   beside an audit daemon, without taking anything from it.
//! * Pure parsers for record text in [`record`] (fields, hex and quoted values, socket
//!   addresses) and netlink datagrams in `socket` (the kernel stamps event records with
//!   the payload length as `nlmsg_len`; the datagram's size is used instead). Records are
//!   bytes throughout: record text is not always UTF-8.
//!
//! What is lost and how it is counted ([`AuditStats`], each also a rate-limited
//! `log::warn!`): `ENOBUFS` on our socket (the kernel dropped records for us), the growth
//! of the kernel's `lost` counter (backlog full, rate limit; read every
//! [`STATUS_INTERVAL`]), records without a header, syscall events flushed without their
//! EOE, groups evicted because too many were open, records over the per-event limits.
//! What is not seen at all: syscalls of 32-bit programs (rules name the native arch
//! only), and everything while another process holds the socket.

mod assemble;
mod owner;
mod reader;
pub mod record;
mod rules;
mod session;
mod socket;
mod syscalls_x86_64;

pub use assemble::{
    Assembler, AssemblerStats, AuditEvent, Ending, Execve, MAX_EVENT_BYTES, MAX_PENDING,
    MAX_RECORDS, PathRecord, Record, RecordClass, Syscall, classify, record_type_name,
};
pub use owner::{AUDIT_DAEMONS, AuditOwner, daemon_name, describe_owner};
pub use reader::{AuditReader, AuditStats, EVENT_TIMEOUT, MAX_BATCH_RECORDS, STATUS_INTERVAL};
pub use record::{AuditTime, SockAddr};
pub use rules::{AuditRule, NATIVE_ARCH, RULE_KEY, SyscallSet, syscall_name};
pub use session::{AuditSession, Ownership, TakeOver};
pub use socket::{AuditSocket, AuditStatus, RawRecord};
pub use syscalls_x86_64::x86_64_syscall_name;

#[cfg(test)]
mod live_tests;
#[cfg(any(test, feature = "audit-testing"))]
pub mod testing;
