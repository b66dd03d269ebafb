//! Host identity: names, kernel identification and the host UUID.
//!
//! The host UUID is shared by `system_info.uuid`, `osquery_info.uuid` and the host
//! identifier, so every caller must get the same value for the life of the process:
//! [`host_uuid`] computes it once.

use std::ffi::CStr;
use std::sync::OnceLock;

/// Where Linux exposes the SMBIOS system UUID (root-only; absent without DMI).
pub const PRODUCT_UUID_PATH: &str = "/sys/class/dmi/id/product_uuid";

/// UUIDs some firmware ships in every unit; useless for telling hosts apart.
const PLACEHOLDER_UUIDS: [&str; 4] = [
    "00000000-0000-0000-0000-000000000000",
    "03000200-0400-0500-0006-000700080009",
    "03020100-0504-0706-0809-0a0b0c0d0e0f",
    "10000000-0000-8000-0040-000000000000",
];

/// The fields of `uname(2)` tables report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uname {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
}

/// `uname(2)`, or `None` if the call fails.
pub fn uname() -> Option<Uname> {
    // SAFETY: utsname is plain old data; uname fills it on success.
    let mut buf: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: buf is a valid, writable utsname.
    if unsafe { libc::uname(&mut buf) } != 0 {
        return None;
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(Uname {
        sysname: field(&buf.sysname),
        nodename: field(&buf.nodename),
        release: field(&buf.release),
        version: field(&buf.version),
        machine: field(&buf.machine),
    })
}

/// `gethostname(2)`, trimmed; `None` if the call fails.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for len - 1 bytes; the last byte stays NUL.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) } != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).trim().to_owned())
}

/// The fully qualified host name: the canonical name the resolver gives for
/// [`hostname`], or the plain host name when resolution fails (as osquery does).
pub fn fqdn() -> Option<String> {
    let name = hostname()?;
    let Ok(cname) = std::ffi::CString::new(name.clone()) else {
        return Some(name);
    };
    // SAFETY: addrinfo is plain old data; zeroed is a valid "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_flags = libc::AI_CANONNAME;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: cname is NUL-terminated, hints is valid, res receives a list we free below.
    let rc = unsafe { libc::getaddrinfo(cname.as_ptr(), std::ptr::null(), &hints, &mut res) };
    let mut out = name;
    if rc == 0 && !res.is_null() {
        // SAFETY: res points to the first entry getaddrinfo returned.
        let canon = unsafe { (*res).ai_canonname };
        if !canon.is_null() {
            // SAFETY: ai_canonname is a NUL-terminated string owned by the list.
            out = unsafe { CStr::from_ptr(canon) }
                .to_string_lossy()
                .into_owned();
        }
    }
    if !res.is_null() {
        // SAFETY: res came from a successful getaddrinfo and is freed once.
        unsafe { libc::freeaddrinfo(res) };
    }
    Some(out)
}

/// Cleans the content of `product_uuid`: newlines and surrounding whitespace removed,
/// cut at the first NUL. `None` when nothing usable remains or it is a known placeholder.
pub fn parse_hardware_uuid(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let text: String = text.chars().filter(|c| *c != '\n').collect();
    let text = text.trim();
    let text = text.split('\0').next().unwrap_or("");
    if text.is_empty() {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if PLACEHOLDER_UUIDS.contains(&lower.as_str()) {
        return None;
    }
    Some(text.to_owned())
}

/// The SMBIOS system UUID, if readable and not a placeholder.
pub fn hardware_uuid() -> Option<String> {
    let raw = std::fs::read(PRODUCT_UUID_PATH).ok()?;
    parse_hardware_uuid(&raw)
}

/// A random (version 4) UUID in lowercase text; `None` if the kernel gives no randomness.
pub fn random_uuid() -> Option<String> {
    let mut b = [0u8; 16];
    // SAFETY: b is writable for its full length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        return None;
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// The host UUID: the hardware UUID, or (as osquery does when there is none, e.g. in a
/// VM without DMI) a random UUID. Computed once, so every part of the process agrees.
/// osquery persists the random fallback in its database; until oxquery has one, the
/// fallback lives for the process only.
pub fn host_uuid() -> Option<String> {
    static UUID: OnceLock<Option<String>> = OnceLock::new();
    UUID.get_or_init(|| hardware_uuid().or_else(random_uuid))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_and_rejects_hardware_uuids() {
        assert_eq!(
            parse_hardware_uuid(b"4C4C4544-0042-3510-8052-B4C04F4E4B32\n").as_deref(),
            Some("4C4C4544-0042-3510-8052-B4C04F4E4B32")
        );
        assert_eq!(parse_hardware_uuid(b"abc\0\0\0").as_deref(), Some("abc"));
        assert_eq!(parse_hardware_uuid(b"\n  \n"), None);
        assert_eq!(parse_hardware_uuid(b""), None);
        assert_eq!(
            parse_hardware_uuid(b"03000200-0400-0500-0006-000700080009\n"),
            None
        );
        assert_eq!(
            parse_hardware_uuid(b"03020100-0504-0706-0809-0A0B0C0D0E0F"),
            None
        );
    }

    #[test]
    fn random_uuid_is_version_4() {
        let u = random_uuid().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, random_uuid().unwrap());
    }

    #[test]
    fn host_uuid_is_stable_and_prefers_hardware() {
        let first = host_uuid().unwrap();
        assert_eq!(host_uuid().unwrap(), first);
        if let Some(hw) = hardware_uuid() {
            assert_eq!(first, hw);
        }
    }

    #[test]
    fn names_agree_with_the_kernel() {
        let uts = uname().unwrap();
        assert_eq!(uts.sysname, "Linux");
        let kernel_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(hostname().unwrap(), kernel_name.trim());
        assert_eq!(uts.nodename, kernel_name.trim());
        let osrelease = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(uts.release, osrelease.trim());
        // The canonical name starts with the short name unless DNS renames the host.
        assert!(!fqdn().unwrap().is_empty());
    }
}
