//! The syscall rules the audit tables install, as `auditctl -a always,exit -F arch=b64
//! -S ... -k oxquery` would write them.
//!
//! Only the native 64-bit ABI is watched (as osquery does): a 32-bit program's syscalls
//! (`arch=b32`) are not audited by these rules.

use netlink_packet_audit::{
    RuleAction, RuleField, RuleFieldFlags, RuleFlags, RuleMessage, RuleSyscalls,
};

/// The key our rules carry (`-k oxquery`): the records they cause say `key="oxquery"`,
/// and `auditctl -l` shows whose rules they are.
pub const RULE_KEY: &str = "oxquery";

/// The native architecture as the audit `arch` field names it.
#[cfg(target_arch = "x86_64")]
pub const NATIVE_ARCH: u32 = netlink_packet_audit::AUDIT_ARCH_X86_64;
#[cfg(target_arch = "aarch64")]
pub const NATIVE_ARCH: u32 = netlink_packet_audit::AUDIT_ARCH_AARCH64;

/// A set of syscalls for one table's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallSet {
    /// `execve`, `execveat`: process_events.
    Exec,
    /// `clone`, `clone3`, `fork`, `vfork`: process_events with fork events allowed.
    Fork,
    /// `kill`, `tkill`, `tgkill`: process_events with kill events allowed.
    Kill,
    /// `connect`, `bind`, `accept`, `accept4`: socket_events.
    Socket,
    /// File creation, opening, renaming, linking, removal and truncation:
    /// process_file_events.
    FileAccess,
}

impl SyscallSet {
    /// The syscall numbers of the set on this architecture.
    pub fn syscalls(self) -> Vec<u32> {
        let numbers: &[libc::c_long] = match self {
            SyscallSet::Exec => &[libc::SYS_execve, libc::SYS_execveat],
            SyscallSet::Fork => &[
                libc::SYS_clone,
                libc::SYS_clone3,
                #[cfg(target_arch = "x86_64")]
                libc::SYS_fork,
                #[cfg(target_arch = "x86_64")]
                libc::SYS_vfork,
            ],
            SyscallSet::Kill => &[libc::SYS_kill, libc::SYS_tkill, libc::SYS_tgkill],
            SyscallSet::Socket => &[
                libc::SYS_connect,
                libc::SYS_bind,
                libc::SYS_accept,
                libc::SYS_accept4,
            ],
            SyscallSet::FileAccess => &[
                #[cfg(target_arch = "x86_64")]
                libc::SYS_open,
                #[cfg(target_arch = "x86_64")]
                libc::SYS_creat,
                libc::SYS_openat,
                libc::SYS_openat2,
                libc::SYS_open_by_handle_at,
                libc::SYS_truncate,
                libc::SYS_ftruncate,
                #[cfg(target_arch = "x86_64")]
                libc::SYS_rename,
                libc::SYS_renameat,
                libc::SYS_renameat2,
                #[cfg(target_arch = "x86_64")]
                libc::SYS_unlink,
                libc::SYS_unlinkat,
                #[cfg(target_arch = "x86_64")]
                libc::SYS_link,
                libc::SYS_linkat,
                #[cfg(target_arch = "x86_64")]
                libc::SYS_symlink,
                libc::SYS_symlinkat,
                #[cfg(target_arch = "x86_64")]
                libc::SYS_mkdir,
                libc::SYS_mkdirat,
                #[cfg(target_arch = "x86_64")]
                libc::SYS_rmdir,
                #[cfg(target_arch = "x86_64")]
                libc::SYS_mknod,
                libc::SYS_mknodat,
            ],
        };
        numbers.iter().map(|n| *n as u32).collect()
    }
}

/// The name of a syscall of the [`SyscallSet`]s (`execve`, `connect`...), for the
/// tables' `syscall`/`action` columns.
pub fn syscall_name(number: u32) -> Option<&'static str> {
    let n = libc::c_long::from(number);
    let names: &[(libc::c_long, &str)] = &[
        (libc::SYS_execve, "execve"),
        (libc::SYS_execveat, "execveat"),
        (libc::SYS_clone, "clone"),
        (libc::SYS_clone3, "clone3"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_fork, "fork"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_vfork, "vfork"),
        (libc::SYS_kill, "kill"),
        (libc::SYS_tkill, "tkill"),
        (libc::SYS_tgkill, "tgkill"),
        (libc::SYS_connect, "connect"),
        (libc::SYS_bind, "bind"),
        (libc::SYS_accept, "accept"),
        (libc::SYS_accept4, "accept4"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_open, "open"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_creat, "creat"),
        (libc::SYS_openat, "openat"),
        (libc::SYS_openat2, "openat2"),
        (libc::SYS_open_by_handle_at, "open_by_handle_at"),
        (libc::SYS_truncate, "truncate"),
        (libc::SYS_ftruncate, "ftruncate"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_rename, "rename"),
        (libc::SYS_renameat, "renameat"),
        (libc::SYS_renameat2, "renameat2"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_unlink, "unlink"),
        (libc::SYS_unlinkat, "unlinkat"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_link, "link"),
        (libc::SYS_linkat, "linkat"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_symlink, "symlink"),
        (libc::SYS_symlinkat, "symlinkat"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_mkdir, "mkdir"),
        (libc::SYS_mkdirat, "mkdirat"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_rmdir, "rmdir"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_mknod, "mknod"),
        (libc::SYS_mknodat, "mknodat"),
    ];
    names.iter().find(|(k, _)| *k == n).map(|(_, name)| *name)
}

/// An audit rule as the kernel holds it. Equality is the kernel's: a rule is deleted by
/// sending back an identical one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRule {
    message: RuleMessage,
}

impl AuditRule {
    /// `-a always,exit -F arch=<native> -S <set> -k oxquery`.
    pub fn syscall_exit(set: SyscallSet) -> AuditRule {
        Self::syscall_exit_numbers(&set.syscalls(), RULE_KEY)
    }

    /// `-a always,exit -F arch=<native> -S <syscalls> -k <key>`.
    pub fn syscall_exit_numbers(syscalls: &[u32], key: &str) -> AuditRule {
        let mut message = RuleMessage::new();
        message.flags = RuleFlags::FilterExit;
        message.action = RuleAction::Always;
        message
            .fields
            .push((RuleField::Arch(NATIVE_ARCH), RuleFieldFlags::Equal));
        message
            .fields
            .push((RuleField::Filterkey(key.to_string()), RuleFieldFlags::Equal));
        let mut mask = RuleSyscalls::new_zeroed();
        for s in syscalls {
            mask.set(*s);
        }
        message.syscalls = mask;
        AuditRule { message }
    }

    pub(crate) fn from_message(message: RuleMessage) -> AuditRule {
        AuditRule { message }
    }

    pub(crate) fn message(&self) -> &RuleMessage {
        &self.message
    }

    /// The rule's `-k` key, if any.
    pub fn key(&self) -> Option<&str> {
        self.message.fields.iter().find_map(|(f, _)| match f {
            RuleField::Filterkey(k) => Some(k.as_str()),
            _ => None,
        })
    }

    /// The syscall numbers the rule names (all of them for a rule without `-S`).
    pub fn syscalls(&self) -> Vec<u32> {
        self.message.syscalls.clone().into_iter().collect()
    }

    /// Whether it is an `exit` filter rule (the syscall rules).
    pub fn is_exit_filter(&self) -> bool {
        self.message.flags == RuleFlags::FilterExit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_rule_names_execve_and_execveat_with_key() {
        let rule = AuditRule::syscall_exit(SyscallSet::Exec);
        let mut want = vec![libc::SYS_execve as u32, libc::SYS_execveat as u32];
        want.sort();
        assert_eq!(rule.syscalls(), want);
        assert_eq!(rule.key(), Some(RULE_KEY));
        assert!(rule.is_exit_filter());
        assert_eq!(syscall_name(libc::SYS_execve as u32), Some("execve"));
        assert_eq!(syscall_name(libc::SYS_accept4 as u32), Some("accept4"));
        assert_eq!(syscall_name(u32::MAX), None);
        // Every syscall of every set has a name.
        for set in [
            SyscallSet::Exec,
            SyscallSet::Fork,
            SyscallSet::Kill,
            SyscallSet::Socket,
            SyscallSet::FileAccess,
        ] {
            for n in set.syscalls() {
                assert!(syscall_name(n).is_some(), "{set:?} {n}");
            }
        }
        // Each set is distinct and non-empty.
        let sets = [
            SyscallSet::Exec,
            SyscallSet::Fork,
            SyscallSet::Kill,
            SyscallSet::Socket,
            SyscallSet::FileAccess,
        ];
        for (i, a) in sets.iter().enumerate() {
            assert!(!a.syscalls().is_empty());
            for b in &sets[i + 1..] {
                assert_ne!(a.syscalls(), b.syscalls(), "{a:?} {b:?}");
            }
        }
    }
}
