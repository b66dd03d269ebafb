//! Operating-system readers that tables share.
//!
//! * [`audit`]: the audit netlink socket: status, rules and taking the socket without
//!   fighting an audit daemon, and the event reader that assembles records into events.
//! * [`block`]: block devices in sysfs and what their first bytes hold (`blkid`'s type,
//!   UUID and label).
//! * [`digest`]: MD5, SHA-1 and SHA-256 of a stream in one pass, under a byte limit.
//! * [`disk`]: partition tables (MBR, GPT) of a block device or image file, read-only.
//! * [`extfs`]: a read-only ext2/3/4 reader for file systems inside a [`disk::Disk`].
//! * [`fs`]: reading small kernel files (`/proc`, `/sys`) with one `read` into a reused
//!   buffer, the measured hot path of every process table.
//! * [`hwids`]: the host's `pci.ids` and `usb.ids` (vendor, device and class names).
//! * [`host`]: host names, `uname`, and the host UUID every part of the process shares.
//! * [`inotify`]: file changes under osquery's `file_paths` patterns (the `file_events`
//!   reader): recursive and wildcard watches, exclusions, counted losses.
//! * [`lines`]: the lines of the text files and program output tables parse, overlong
//!   lines skipped, and the fields/comment split of the classic `/etc` databases.
//! * [`mdstat`]: software RAID status from `/proc/mdstat` and `/sys/block/<md>/md`.
//! * [`mounts`]: the mount table (`/proc/self/mounts`, octal escapes undone) and `statfs(2)`.
//! * [`pattern`]: osquery's `LIKE` path patterns (`%`, `%%`) expanded with glob(3) and a
//!   loop-safe recursive walk, for `file`, `hash` and every other path table.
//! * [`proc`]: per-process readers and parsers for `/proc/<pid>` (stat, status, io,
//!   cgroup, cmdline, descriptors) and the pid listing.
//! * [`procmem`]: a process's mappings and memory (`/proc/<pid>/maps`, `mem`).
//! * `yara` (feature `yara`): YARA rule compilation and file/process scans with yara-x.
//! * [`net`]: every network namespace's sockets (sock_diag netlink dumps, the
//!   `/proc/<pid>/net/*` text tables as the fallback) joined with process descriptors,
//!   read once per namespace.
//! * [`netlink`]: synchronous `NETLINK_ROUTE` dumps (links, addresses, routes,
//!   neighbours) as plain structs.
//! * [`netlink_multicast`]: a kernel multicast netlink socket read in bounded batches
//!   with a timeout, `ENOBUFS` overruns counted: the base of the netlink event readers.
//! * [`proc_connector`]: process events (exec, fork, exit, uid/gid...) from the kernel's
//!   connector, and what `/proc/<pid>` shows right after an exec.
//! * [`uevent`]: kernel uevents (devices added, removed, changed) and the
//!   `hardware_events` facts of each (sysfs ids, `usb.ids`/`pci.ids` names).
//! * [`users`]: accounts and groups (passwd/group files and NSS), the per-user home
//!   iteration of user-data tables, and utmp/wtmp login records.
//! * [`safe_read`]: the one way to open files users control (FIFOs, device links, huge or
//!   swapped files cannot block or flood a read); `--read_max` counted on bytes read.
//! * [`exec`]: running a helper program from a fixed set of directories, with a timeout,
//!   an output cap and a cancellation check.
//! * [`elf`]: ELF headers, sections, segments, symbols and dynamic entries (goblin).
//! * [`files`]: the path set behind `path =`/`LIKE` constraints, and reading regular
//!   files whole or in part.
//! * [`xattr`]: extended attribute names and values of a path.
//! * [`smbios`]: the firmware's SMBIOS (DMI) tables from `/sys/firmware/dmi/tables`:
//!   entry point, structures and their strings, bounds-checked.
//! * [`rpmdb`]: the RPM package database (SQLite or Berkeley DB) and its package headers,
//!   read without librpm.
//! * [`sqlite_file`]: read-only queries of an SQLite file another program owns and may be
//!   writing (rusqlite, the engine's build of SQLite).
//! * [`systemd`]: systemd's manager over D-Bus (zbus): the unit list and unit properties.
//! * [`syslog_pipe`]: the named pipe rsyslog writes CSV syslog lines into (`syslog_events`):
//!   created safely, read under a rate limit, every dropped line counted.
//!
//! Invariant: nothing here knows about tables or SQL; these are plain functions over the OS.

pub mod audit;
pub mod block;
pub mod cgroup;
pub mod digest;
pub mod disk;
pub mod elf;
pub mod exec;
pub mod extfs;
pub mod files;
pub mod fs;
pub mod host;
pub mod hwids;
pub mod inotify;
pub mod lines;
pub mod mdstat;
pub mod mounts;
pub mod net;
pub mod netlink;
pub mod netlink_multicast;
pub mod pattern;
pub mod proc;
pub mod proc_connector;
pub mod procmem;
pub mod rpmdb;
pub mod safe_read;
pub mod smbios;
pub mod sqlite_file;
pub mod syslog_pipe;
pub mod systemd;
pub mod uevent;
pub mod users;
pub mod xattr;
#[cfg(feature = "yara")]
pub mod yara;
