//! ELF files for the `elf_*` tables: one read of the file, then only the parts a table
//! asks for (header, program headers, section headers, a symbol table, the dynamic
//! array) are decoded, with goblin's bounds-checked readers.
//!
//! Hostile input is expected: a truncated or garbage file yields an [`ElfError`] (or
//! `Ok(None)` when it is not ELF at all), never a panic. Counts taken from the file are
//! checked against its size before anything is allocated for them. Files are opened
//! through [`crate::safe_read`] (a FIFO cannot block, `--read_max` bounds the bytes read),
//! and a file without the ELF magic is left after its first 64 bytes.

use crate::safe_read::{self, OverLimit, Policy, SafeFile};
use goblin::container::{Container, Ctx};
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub use goblin::elf::header::Header;
pub use goblin::elf::program_header::ProgramHeader;
pub use goblin::elf::section_header::SectionHeader;
pub use goblin::elf::sym::Sym;

/// Section types the tables pick out.
pub const SHT_SYMTAB: u32 = 2;
pub const SHT_DYNAMIC: u32 = 6;
pub const SHT_DYNSYM: u32 = 11;

const SHN_XINDEX: usize = 0xffff;
const DT_NULL: i64 = 0;

/// Why an ELF file could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ElfError(String);

impl From<goblin::error::Error> for ElfError {
    fn from(e: goblin::error::Error) -> Self {
        ElfError(e.to_string())
    }
}

fn malformed(what: &str) -> ElfError {
    ElfError(format!("malformed ELF: {what}"))
}

/// Whether `bytes` starts with the ELF magic.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// The ELF header's size in a 64-bit file (a 32-bit one's is smaller).
const HEADER_LEN: u64 = 64;

/// Opens `path` through [`safe_read`] under `policy` (its `limit` is the most read of
/// the whole file) and reads the first [`HEADER_LEN`] bytes: the open file and those
/// bytes, or `None` when the path is a directory or the bytes are not ELF. A FIFO, socket
/// or device, a read that would wait, and the open's own errors are errors.
fn open_elf(path: &Path, policy: &Policy) -> io::Result<Option<(SafeFile, Vec<u8>)>> {
    // The limit is enforced below, after the magic: a huge file that is not ELF is
    // passed over, not reported. One byte over the limit is how a longer file shows.
    let reading = Policy {
        limit: policy.limit.saturating_add(1),
        over_limit: OverLimit::Truncate,
        ..*policy
    };
    let mut file = match SafeFile::open(path, &reading) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::IsADirectory => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut head = Vec::with_capacity(HEADER_LEN as usize);
    (&mut file).take(HEADER_LEN).read_to_end(&mut head)?;
    if !is_elf(&head) {
        return Ok(None);
    }
    Ok(Some((file, head)))
}

/// Reads only the ELF header of `path` (at most 64 bytes, whatever `policy.limit`):
/// `Ok(None)` when the path is a directory or not ELF.
pub fn read_header(path: &Path, policy: &Policy) -> io::Result<Option<Result<Header, ElfError>>> {
    let header_only = Policy {
        limit: HEADER_LEN,
        ..*policy
    };
    let Some((_, head)) = open_elf(path, &header_only)? else {
        return Ok(None);
    };
    Ok(Some(parse_header(&head).map(|(h, _)| h)))
}

fn parse_header(bytes: &[u8]) -> Result<(Header, Ctx), ElfError> {
    let header = goblin::elf::Elf::parse_header(bytes)?;
    let ctx = Ctx::new(header.container()?, header.endianness()?);
    Ok((header, ctx))
}

/// Reads each of `paths` as an ELF file under `policy` and calls `visit` with the path (as
/// lossy UTF-8 text) and the file. Directories and files that are not ELF are skipped;
/// a file that cannot be read (a FIFO, over the limit, ...) goes to `unreadable`, and an
/// error `visit` returns or a broken header is logged at debug level under `who`; either
/// skips only that file.
pub fn for_each_file<'p>(
    paths: impl IntoIterator<Item = &'p OsString>,
    policy: &Policy,
    who: &str,
    stop: &dyn Fn() -> bool,
    mut visit: impl FnMut(&Path, &ElfFile) -> Result<(), ElfError>,
    mut unreadable: impl FnMut(&Path, &io::Error),
) {
    for path in paths {
        if stop() {
            return;
        }
        let shown = String::from_utf8_lossy(path.as_bytes());
        let outcome = match ElfFile::read(Path::new(path), policy) {
            Ok(None) => continue,
            Ok(Some(parsed)) => parsed.and_then(|elf| visit(Path::new(path), &elf)),
            Err(e) => {
                unreadable(Path::new(path), &e);
                continue;
            }
        };
        if let Err(e) = outcome {
            log::debug!("{who}: {shown}: {e}");
        }
    }
}

/// A whole ELF file in memory with its decoded header.
pub struct ElfFile {
    bytes: Vec<u8>,
    header: Header,
    ctx: Ctx,
}

impl std::fmt::Debug for ElfFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElfFile")
            .field("len", &self.bytes.len())
            .field("header", &self.header)
            .finish()
    }
}

impl ElfFile {
    /// Reads `path` through [`safe_read`] under `policy`: `Ok(None)` when it is a
    /// directory or does not start with the ELF magic (then only the first 64 bytes were
    /// read), `Ok(Some(Err))` when it does but its header is broken, and an error when it
    /// cannot be read: not a regular file (a FIFO, ...), more than `policy.limit` bytes
    /// (checked on the bytes read, so `/proc/self/pagemap` ends there too), a read that
    /// would wait.
    pub fn read(path: &Path, policy: &Policy) -> io::Result<Option<Result<ElfFile, ElfError>>> {
        let Some((mut file, mut bytes)) = open_elf(path, policy)? else {
            return Ok(None);
        };
        let limit = policy.limit;
        if file.size_hint() > limit {
            return Err(safe_read::too_large(limit));
        }
        // The size at the open sizes the buffer, never more than the limit.
        let expected = file.size_hint().min(limit).saturating_sub(HEADER_LEN);
        bytes.reserve(usize::try_from(expected).unwrap_or(0));
        file.read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            return Err(safe_read::too_large(limit));
        }
        Ok(Some(Self::parse(bytes)))
    }

    /// Decodes the header of an ELF image already in memory.
    pub fn parse(bytes: Vec<u8>) -> Result<ElfFile, ElfError> {
        let (header, ctx) = parse_header(&bytes)?;
        Ok(ElfFile { bytes, header, ctx })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// 64 for ELFCLASS64 files, 32 for ELFCLASS32.
    pub fn class_bits(&self) -> u32 {
        if self.ctx.container.is_big() { 64 } else { 32 }
    }

    /// The program headers (segments), in file order.
    pub fn segments(&self) -> Result<Vec<ProgramHeader>, ElfError> {
        let h = &self.header;
        if h.e_phnum == 0 {
            return Ok(Vec::new());
        }
        let offset = usize::try_from(h.e_phoff).map_err(|_| malformed("program header offset"))?;
        Ok(ProgramHeader::parse(
            &self.bytes,
            offset,
            usize::from(h.e_phnum),
            self.ctx,
        )?)
    }

    /// The section headers, in file order (index 0, the null section, included); the
    /// extended count of files with 65280 sections or more is honoured.
    pub fn sections(&self) -> Result<Vec<SectionHeader>, ElfError> {
        let h = &self.header;
        if h.e_shoff == 0 {
            return Ok(Vec::new());
        }
        let offset = usize::try_from(h.e_shoff).map_err(|_| malformed("section header offset"))?;
        Ok(SectionHeader::parse(
            &self.bytes,
            offset,
            usize::from(h.e_shnum),
            self.ctx,
        )?)
    }

    /// The bytes of a section's contents; `None` for NOBITS sections or ranges outside
    /// the file.
    pub fn section_data(&self, sh: &SectionHeader) -> Option<&[u8]> {
        if sh.sh_type == goblin::elf::section_header::SHT_NOBITS {
            return None;
        }
        let start = usize::try_from(sh.sh_offset).ok()?;
        let len = usize::try_from(sh.sh_size).ok()?;
        self.bytes.get(start..start.checked_add(len)?)
    }

    /// The NUL-terminated string at `offset` in string-table section `strtab`.
    pub fn string_in(&self, strtab: Option<&SectionHeader>, offset: usize) -> Option<&[u8]> {
        let data = self.section_data(strtab?)?;
        let rest = data.get(offset..)?;
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        Some(&rest[..end])
    }

    /// The section-name string table (`e_shstrndx`, or its extended form).
    pub fn names_section<'s>(&self, sections: &'s [SectionHeader]) -> Option<&'s SectionHeader> {
        let mut index = usize::from(self.header.e_shstrndx);
        if index == SHN_XINDEX {
            index = sections.first()?.sh_link as usize;
        }
        if index == 0 {
            return None;
        }
        sections.get(index)
    }

    /// The name of `sh`, lossily UTF-8; empty when the file has no usable name table.
    pub fn section_name(&self, names: Option<&SectionHeader>, sh: &SectionHeader) -> String {
        self.string_in(names, sh.sh_name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    /// The symbols of a SYMTAB or DYNSYM section, the null symbol at index 0 included.
    pub fn symbols(&self, sh: &SectionHeader) -> Result<Vec<Sym>, ElfError> {
        let entsize = Sym::size(self.ctx.container);
        let count =
            usize::try_from(sh.sh_size).map_err(|_| malformed("symbol table size"))? / entsize;
        let offset = usize::try_from(sh.sh_offset).map_err(|_| malformed("symbol table offset"))?;
        if count == 0 {
            return Ok(Vec::new());
        }
        Ok(Sym::parse(&self.bytes, offset, count, self.ctx)?)
    }

    /// The entries of a DYNAMIC section as (tag, value), up to and without `DT_NULL`
    /// (or to the end of the section when it has none).
    pub fn dynamic_entries(&self, sh: &SectionHeader) -> Result<Vec<(i64, u64)>, ElfError> {
        let data = self
            .section_data(sh)
            .ok_or_else(|| malformed("dynamic section outside the file"))?;
        let little = self.ctx.le.is_little();
        let mut out = Vec::new();
        match self.ctx.container {
            Container::Little => {
                for entry in data.chunks_exact(8) {
                    let word = |b: &[u8]| {
                        let a: [u8; 4] = b.try_into().unwrap_or_default();
                        if little {
                            u32::from_le_bytes(a)
                        } else {
                            u32::from_be_bytes(a)
                        }
                    };
                    let tag = i64::from(word(&entry[..4]) as i32);
                    if tag == DT_NULL {
                        break;
                    }
                    out.push((tag, u64::from(word(&entry[4..]))));
                }
            }
            Container::Big => {
                for entry in data.chunks_exact(16) {
                    let word = |b: &[u8]| {
                        let a: [u8; 8] = b.try_into().unwrap_or_default();
                        if little {
                            u64::from_le_bytes(a)
                        } else {
                            u64::from_be_bytes(a)
                        }
                    };
                    let tag = word(&entry[..8]) as i64;
                    if tag == DT_NULL {
                        break;
                    }
                    out.push((tag, word(&entry[8..])));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Runs `f` on a thread and waits for its answer: a liveness check (a hang fails the
    /// test instead of stalling it), not a timing, so the bound is generous.
    fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the read did not return: it blocks or never ends")
    }

    const READ_MAX: u64 = 50 << 20;

    #[test]
    fn a_fifo_is_an_error_at_once_and_a_directory_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        // No writer ever comes: a blocking open would wait forever.
        let f = fifo.clone();
        let err = within_10s(move || ElfFile::read(&f, &Policy::user_file(READ_MAX)).map(|_| ()))
            .unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let f = fifo.clone();
        let err = within_10s(move || read_header(&f, &Policy::user_file(READ_MAX)).map(|_| ()))
            .unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let d = dir.path().to_owned();
        assert!(
            within_10s(move || read_header(&d, &Policy::user_file(READ_MAX)).unwrap()).is_none()
        );
    }

    /// Without the magic, nothing past the header is read: an endless kernel file
    /// (`/proc/self/pagemap` would yield hundreds of gigabytes) and a 10 GiB file are
    /// passed over at once, even with no limit at all.
    #[test]
    fn a_file_without_the_magic_is_left_after_its_header() {
        let unlimited = Policy::user_file(u64::MAX);
        let pagemap = within_10s(move || {
            ElfFile::read(Path::new("/proc/self/pagemap"), &unlimited)
                .unwrap()
                .is_none()
        });
        assert!(pagemap);
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("huge");
        let f = std::fs::File::create(&huge).unwrap();
        f.set_len(10 << 30).unwrap();
        drop(f);
        // Over the limit by its size, but not ELF: skipped, not reported as too large.
        let h = huge.clone();
        let skipped = within_10s(move || {
            ElfFile::read(&h, &Policy::user_file(READ_MAX))
                .unwrap()
                .is_none()
        });
        assert!(skipped);
    }

    #[test]
    fn an_elf_file_over_the_limit_is_an_error() {
        let ls = std::fs::read("/bin/ls").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("ls");
        std::fs::write(&copy, &ls).unwrap();
        let len = ls.len() as u64;
        let whole = ElfFile::read(&copy, &Policy::user_file(len))
            .unwrap()
            .unwrap();
        assert_eq!(whole.unwrap().bytes, ls);
        let err = ElfFile::read(&copy, &Policy::user_file(len - 1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        // The header alone is read whatever the limit.
        let header = read_header(&copy, &Policy::user_file(10)).unwrap().unwrap();
        assert_eq!(header.unwrap().e_ident[..4], *b"\x7fELF");
    }

    #[test]
    fn garbage_and_truncated_input_is_an_error_not_a_panic() {
        let ls = std::fs::read("/bin/ls").unwrap();
        for cut in [
            4,
            5,
            16,
            20,
            40,
            63,
            64,
            100,
            1000,
            ls.len() / 2,
            ls.len() - 1,
        ] {
            let part = ls[..cut].to_vec();
            if let Ok(elf) = ElfFile::parse(part) {
                let sections = elf.sections().unwrap_or_default();
                let names = elf.names_section(&sections);
                for sh in &sections {
                    let _ = elf.section_name(names, sh);
                    let _ = elf.symbols(sh);
                    let _ = elf.dynamic_entries(sh);
                }
                let _ = elf.segments();
            }
        }
        // Random bytes behind a valid magic.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200 {
            let mut bytes = b"\x7fELF".to_vec();
            for _ in 0..(64 + round * 7) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push(seed as u8);
            }
            if let Ok(elf) = ElfFile::parse(bytes) {
                let _ = elf.segments();
                if let Ok(sections) = elf.sections() {
                    for sh in &sections {
                        let _ = elf.symbols(sh);
                        let _ = elf.dynamic_entries(sh);
                    }
                }
            }
        }
    }
}
