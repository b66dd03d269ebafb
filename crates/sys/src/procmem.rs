//! A process's memory: its mappings from `/proc/<pid>/maps` and their bytes from
//! `/proc/<pid>/mem`.
//!
//! Reading another process's memory needs ptrace access to it (same user and a permissive
//! `kernel.yama.ptrace_scope`, or CAP_SYS_PTRACE); without it opening `mem` fails and the
//! caller skips the process. Regions the kernel refuses to hand out (`[vvar]`, guard pages,
//! device mappings) fail their read and are skipped one by one.

use crate::proc::{ProcPath, parse_maps_line};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// One line of `/proc/<pid>/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub readable: bool,
    pub writable: bool,
    pub executable: bool,
    /// The mapped path or pseudo-name (`[heap]`, `[stack]`), empty for anonymous memory.
    pub path: Vec<u8>,
}

/// Parses the text of a `maps` file (lines through [`crate::proc::parse_maps_line`]);
/// malformed lines are skipped.
pub fn parse_maps(text: &[u8]) -> Vec<Region> {
    let hex = |s: &[u8]| {
        std::str::from_utf8(s)
            .ok()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
    };
    text.split(|b| *b == b'\n')
        .filter_map(parse_maps_line)
        .filter_map(|e| {
            let (start, end) = (hex(e.start)?, hex(e.end)?);
            (end > start).then(|| Region {
                start,
                end,
                readable: e.perms[0] == b'r',
                writable: e.perms[1] == b'w',
                executable: e.perms[2] == b'x',
                path: e.path.to_vec(),
            })
        })
        .collect()
}

/// An open handle on a process's memory.
#[derive(Debug)]
pub struct ProcessMemory {
    mem: File,
    regions: Vec<Region>,
}

impl ProcessMemory {
    /// Opens `/proc/<pid>/mem` and reads the process's mappings.
    pub fn open(pid: u32) -> io::Result<ProcessMemory> {
        let base = ProcPath::new(pid);
        let prefix = Path::new(std::ffi::OsStr::from_bytes(base.prefix()));
        let maps = std::fs::read(prefix.join("maps"))?;
        let mem = File::open(prefix.join("mem"))?;
        Ok(ProcessMemory {
            mem,
            regions: parse_maps(&maps),
        })
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Reads the readable regions in pieces of at most `chunk` bytes, consecutive pieces of a
    /// region overlapping by `overlap` bytes so a short pattern on a boundary is seen
    /// whole. `visit` gets the address of each piece and its bytes. A region whose read
    /// fails is skipped from that point on.
    pub fn for_each_chunk(&self, chunk: usize, overlap: usize, mut visit: impl FnMut(u64, &[u8])) {
        let chunk = chunk.max(overlap + 4096);
        let mut buf = vec![0u8; chunk];
        for r in self.regions.iter().filter(|r| r.readable) {
            let mut at = r.start;
            while at < r.end {
                let want = usize::try_from(r.end - at).unwrap_or(usize::MAX).min(chunk);
                let n = match self.mem.read_at(&mut buf[..want], at) {
                    Ok(n) if n > 0 => n,
                    _ => break,
                };
                visit(at, &buf[..n]);
                if at + n as u64 >= r.end {
                    break;
                }
                at += n.saturating_sub(overlap).max(1) as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_parse_and_junk_is_skipped() {
        let text = b"55d0c8a00000-55d0c8a02000 r--p 00000000 08:01 1234 /usr/bin/my prog\n\
7ffd1e000000-7ffd1e021000 rw-p 00000000 00:00 0                          [stack]\n\
7f0000000000-7f0000001000 ---p 00000000 00:00 0\n\
zzzz-1 r--p\n\
20-10 r--p 00000000 00:00 0\n\n";
        let r = parse_maps(text);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].start, 0x55d0c8a00000);
        assert_eq!(r[0].path, b"/usr/bin/my prog");
        assert!(r[1].readable && r[1].writable && !r[1].executable);
        assert_eq!(r[1].path, b"[stack]");
        assert!(!r[2].readable && r[2].path.is_empty());
    }

    #[test]
    fn own_memory_contains_a_marker() {
        let marker = format!("procmem-marker-{}-{:x}", std::process::id(), 0xfeed_u32);
        let held = std::hint::black_box(marker.clone().into_bytes());
        let mem = ProcessMemory::open(std::process::id()).unwrap();
        let mut found = false;
        mem.for_each_chunk(1 << 20, 256, |_, data| {
            if memchr::memmem::find(data, marker.as_bytes()).is_some() {
                found = true;
            }
        });
        assert!(found);
        drop(held);
    }
}
