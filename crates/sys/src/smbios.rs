//! SMBIOS (DMI) tables as Linux exports them in `/sys/firmware/dmi/tables`: the entry
//! point (`smbios_entry_point`, SMBIOS 2.x `_SM_`, 3.x `_SM3_` or legacy `_DMI_`) and the
//! structure table (`DMI`).
//!
//! [`Smbios::read`] loads both; [`Smbios::structures`] walks the table. Every read is
//! bounds-checked: a truncated or corrupted blob ends the walk early (or fails the entry
//! point check), it never panics, and each step moves forward by at least one structure
//! header, so the walk always ends.
//!
//! Field offsets and meanings are those of DMTF DSP0134 (the SMBIOS reference).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Where the kernel exports the firmware's SMBIOS tables.
pub const SYSFS_DMI_DIR: &str = "/sys/firmware/dmi/tables";
/// The entry point file inside the tables directory.
pub const ENTRY_POINT_FILE: &str = "smbios_entry_point";
/// The structure table file inside the tables directory.
pub const TABLE_FILE: &str = "DMI";

/// The type of the End-of-Table structure: the walk stops after it.
pub const END_OF_TABLE: u8 = 127;

/// An entry point is at most 0x1F bytes (2.x) or 0x18 (3.x); more is never read.
const ENTRY_POINT_MAX: u64 = 0x100;

/// Why there are no SMBIOS tables to read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: not a valid SMBIOS entry point: {why}")]
    EntryPoint { path: PathBuf, why: &'static str },
}

impl Error {
    /// Whether the host simply has no SMBIOS tables (no file), rather than unreadable
    /// or damaged ones.
    pub fn is_absent(&self) -> bool {
        matches!(self, Error::Read { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// What the entry point says about the structure table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryPoint {
    /// SMBIOS version, major and minor.
    pub version: (u8, u8),
    /// The table's exact length (2.x, legacy DMI) or its maximum length (3.x).
    pub table_length: u32,
    /// The table's physical address (not used to read: sysfs exports the table itself).
    pub table_address: u64,
    /// The number of structures (2.x and legacy DMI only).
    pub structure_count: Option<u16>,
}

/// Whether the bytes sum to zero modulo 256, as every entry point's checksum requires.
fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == 0
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl EntryPoint {
    /// Parses an entry point, checking its anchor, length and checksums.
    pub fn parse(b: &[u8]) -> Result<EntryPoint, &'static str> {
        if b.starts_with(b"_SM3_") {
            let len = *b.get(0x06).ok_or("truncated")? as usize;
            let ep = b.get(..len).ok_or("truncated")?;
            if len < 0x18 {
                return Err("3.x entry point shorter than 0x18 bytes");
            }
            if !checksum_ok(ep) {
                return Err("bad checksum");
            }
            Ok(EntryPoint {
                version: (ep[0x07], ep[0x08]),
                table_length: le_u32(ep, 0x0C).ok_or("truncated")?,
                table_address: le_u64(ep, 0x10).ok_or("truncated")?,
                structure_count: None,
            })
        } else if b.starts_with(b"_SM_") {
            let len = *b.get(0x05).ok_or("truncated")? as usize;
            // 0x1E: some firmware says 0x1E for the 0x1F-byte 2.1 layout (dmidecode
            // accepts it too); the checksum then covers the bytes it says.
            if len < 0x1E {
                return Err("2.x entry point shorter than 0x1E bytes");
            }
            let ep = b.get(..len.max(0x1F)).ok_or("truncated")?;
            if !checksum_ok(&ep[..len]) {
                return Err("bad checksum");
            }
            let dmi = &ep[0x10..0x1F];
            if !dmi.starts_with(b"_DMI_") || !checksum_ok(dmi) {
                return Err("bad intermediate _DMI_ anchor or checksum");
            }
            Ok(EntryPoint {
                version: (ep[0x06], ep[0x07]),
                ..Self::legacy_fields(dmi)
            })
        } else if b.starts_with(b"_DMI_") {
            let ep = b.get(..0x0F).ok_or("truncated")?;
            if !checksum_ok(ep) {
                return Err("bad checksum");
            }
            Ok(EntryPoint {
                version: (ep[0x0E] >> 4, ep[0x0E] & 0x0F),
                ..Self::legacy_fields(ep)
            })
        } else {
            Err("no _SM3_, _SM_ or _DMI_ anchor")
        }
    }

    /// The table fields of a 15-byte `_DMI_` structure (checked to be that long).
    fn legacy_fields(dmi: &[u8]) -> EntryPoint {
        EntryPoint {
            version: (dmi[0x0E] >> 4, dmi[0x0E] & 0x0F),
            table_length: u32::from(le_u16(dmi, 0x06).unwrap_or(0)),
            table_address: u64::from(le_u32(dmi, 0x08).unwrap_or(0)),
            structure_count: le_u16(dmi, 0x0C),
        }
    }
}

/// An entry point and its structure table.
#[derive(Debug, Clone)]
pub struct Smbios {
    pub entry_point: EntryPoint,
    table: Vec<u8>,
}

/// Reads at most `limit` bytes of `path`.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let err = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    File::open(path)
        .map_err(err)?
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    Ok(bytes)
}

impl Smbios {
    /// Reads `dir/smbios_entry_point` and `dir/DMI` (`dir` is [`SYSFS_DMI_DIR`] on a
    /// live host). The table is read up to the length the entry point gives.
    pub fn read(dir: &Path) -> Result<Smbios, Error> {
        let path = dir.join(ENTRY_POINT_FILE);
        let entry = read_limited(&path, ENTRY_POINT_MAX)?;
        let entry_point = EntryPoint::parse(&entry).map_err(|why| Error::EntryPoint {
            path: path.clone(),
            why,
        })?;
        let table = read_limited(&dir.join(TABLE_FILE), u64::from(entry_point.table_length))?;
        Ok(Smbios { entry_point, table })
    }

    /// An entry point and a table already in memory; the table is cut to the entry
    /// point's length.
    pub fn new(entry_point: EntryPoint, mut table: Vec<u8>) -> Smbios {
        table.truncate(entry_point.table_length as usize);
        Smbios { entry_point, table }
    }

    /// The structure table's bytes.
    pub fn table(&self) -> &[u8] {
        &self.table
    }

    /// The structures in table order, up to the End-of-Table structure (included), the
    /// end of the table, or the first damaged structure (excluded).
    pub fn structures(&self) -> Structures<'_> {
        Structures {
            rest: &self.table,
            index: 0,
        }
    }
}

/// Iterator over the structures of a table.
#[derive(Debug, Clone)]
pub struct Structures<'a> {
    rest: &'a [u8],
    index: usize,
}

impl<'a> Iterator for Structures<'a> {
    type Item = Structure<'a>;

    fn next(&mut self) -> Option<Structure<'a>> {
        let rest = std::mem::take(&mut self.rest);
        let header = rest.get(..4)?;
        let formatted_len = usize::from(header[1]);
        // A formatted area shorter than its own header, or past the end, is damage:
        // nothing after it can be trusted.
        let formatted = rest.get(..formatted_len).filter(|_| formatted_len >= 4)?;
        // The string set ends with a double NUL (two NULs when there are no strings).
        let tail = &rest[formatted_len..];
        let set_len = memchr::memmem::find(tail, b"\0\0")?;
        let size = formatted_len + set_len + 2;
        let structure = Structure {
            index: self.index,
            kind: header[0],
            handle: u16::from_le_bytes([header[2], header[3]]),
            formatted,
            strings: &tail[..set_len],
            raw: &rest[..size],
        };
        self.index += 1;
        if structure.kind != END_OF_TABLE {
            self.rest = &rest[size..];
        }
        Some(structure)
    }
}

/// One structure: its header, formatted area and string set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Structure<'a> {
    /// Position in the table, from 0.
    pub index: usize,
    /// The structure type (4 processor, 17 memory device, ...).
    pub kind: u8,
    pub handle: u16,
    /// The formatted area, header included.
    pub formatted: &'a [u8],
    /// The string set without its final double NUL; strings are NUL-separated.
    strings: &'a [u8],
    /// The whole structure: formatted area, strings and the terminating NULs.
    pub raw: &'a [u8],
}

impl<'a> Structure<'a> {
    /// The byte at `offset` of the formatted area, if the area is that long.
    pub fn byte(&self, offset: usize) -> Option<u8> {
        self.formatted.get(offset).copied()
    }

    pub fn word(&self, offset: usize) -> Option<u16> {
        le_u16(self.formatted, offset)
    }

    pub fn dword(&self, offset: usize) -> Option<u32> {
        le_u32(self.formatted, offset)
    }

    pub fn qword(&self, offset: usize) -> Option<u64> {
        le_u64(self.formatted, offset)
    }

    /// String number `number` (from 1) of the string set; `None` for 0 ("no string") or
    /// a number past the set.
    pub fn string(&self, number: u8) -> Option<&'a [u8]> {
        if number == 0 || self.strings.is_empty() {
            return None;
        }
        self.strings.split(|b| *b == 0).nth(usize::from(number) - 1)
    }

    /// The strings of the set, in order.
    pub fn strings(&self) -> impl Iterator<Item = &'a [u8]> {
        let strings = self.strings;
        strings
            .split(|b| *b == 0)
            .take(if strings.is_empty() { 0 } else { usize::MAX })
    }

    /// The string whose number is the byte at `offset`, as text with trailing blanks
    /// removed (firmware pads some fields); `None` when the area is shorter, the number
    /// is 0 or no such string exists.
    pub fn text(&self, offset: usize) -> Option<String> {
        self.string(self.byte(offset)?).map(text_of)
    }
}

/// SMBIOS string bytes as text: invalid UTF-8 replaced, trailing blanks removed.
pub fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_owned()
}

/// A builder of SMBIOS blobs for tests (test hosts often have no DMI), with the
/// `smbios-testing` feature.
#[cfg(any(test, feature = "smbios-testing"))]
pub mod testing {

    use std::path::Path;

    /// One structure to build: type, handle, formatted area after the 4-byte header,
    /// and strings.
    pub fn structure(kind: u8, handle: u16, body: &[u8], strings: &[&str]) -> Vec<u8> {
        let mut s = vec![kind, (body.len() + 4) as u8];
        s.extend_from_slice(&handle.to_le_bytes());
        s.extend_from_slice(body);
        for string in strings {
            s.extend_from_slice(string.as_bytes());
            s.push(0);
        }
        if strings.is_empty() {
            s.push(0);
        }
        s.push(0);
        s
    }

    fn fix_checksum(bytes: &mut [u8], at: usize) {
        bytes[at] = 0;
        let sum = bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b));
        bytes[at] = 0u8.wrapping_sub(sum);
    }

    /// A 2.x entry point (version 2.8) for `table`, placed at physical address `address`.
    pub fn entry_point_2(table: &[u8], count: u16, address: u32) -> Vec<u8> {
        let mut ep = vec![0u8; 0x1F];
        ep[..4].copy_from_slice(b"_SM_");
        ep[0x05] = 0x1F;
        ep[0x06] = 2;
        ep[0x07] = 8;
        ep[0x08..0x0A].copy_from_slice(&0x100u16.to_le_bytes());
        ep[0x10..0x15].copy_from_slice(b"_DMI_");
        ep[0x16..0x18].copy_from_slice(&(table.len() as u16).to_le_bytes());
        ep[0x18..0x1C].copy_from_slice(&address.to_le_bytes());
        ep[0x1C..0x1E].copy_from_slice(&count.to_le_bytes());
        ep[0x1E] = 0x28;
        fix_checksum(&mut ep[0x10..0x1F], 0x05);
        fix_checksum(&mut ep, 0x04);
        ep
    }

    /// A 3.x entry point (version 3.3) for `table`, at physical address `address`.
    pub fn entry_point_3(table: &[u8], address: u64) -> Vec<u8> {
        let mut ep = vec![0u8; 0x18];
        ep[..5].copy_from_slice(b"_SM3_");
        ep[0x06] = 0x18;
        ep[0x07] = 3;
        ep[0x08] = 3;
        ep[0x0A] = 1;
        ep[0x0C..0x10].copy_from_slice(&(table.len() as u32).to_le_bytes());
        ep[0x10..0x18].copy_from_slice(&address.to_le_bytes());
        fix_checksum(&mut ep, 0x05);
        ep
    }

    /// Writes `entry_point` and `table` as sysfs lays them out in `dir`.
    pub fn write_sysfs(dir: &Path, entry_point: &[u8], table: &[u8]) {
        std::fs::write(dir.join(super::ENTRY_POINT_FILE), entry_point).unwrap();
        std::fs::write(dir.join(super::TABLE_FILE), table).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn sample_table() -> Vec<u8> {
        let mut t = structure(
            0,
            0x0000,
            &[1, 2, 0, 0xF0, 3, 0],
            &["Vendor  ", "1.0", "01/01/2026"],
        );
        t.extend(structure(11, 0x0001, &[2], &["first", "second"]));
        t.extend(structure(17, 0x0011, &[0x10, 0x00], &[]));
        t.extend(structure(END_OF_TABLE, 0x0012, &[], &[]));
        t
    }

    #[test]
    fn walks_structures_and_looks_up_strings() {
        let table = sample_table();
        let ep = EntryPoint::parse(&entry_point_3(&table, 0x1000)).unwrap();
        assert_eq!(ep.version, (3, 3));
        let smbios = Smbios::new(ep, table.clone());
        let all: Vec<Structure> = smbios.structures().collect();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].kind, 0);
        assert_eq!(all[0].text(0x04).as_deref(), Some("Vendor"));
        assert_eq!(all[0].text(0x05).as_deref(), Some("1.0"));
        assert_eq!(all[0].text(0x06), None, "string number 0 is no string");
        assert_eq!(
            all[0].text(0x07),
            None,
            "string number 240 of a 3-string set"
        );
        assert_eq!(all[0].text(0x08).as_deref(), Some("01/01/2026"));
        assert_eq!(all[0].byte(0x40), None);
        assert_eq!(all[1].handle, 1);
        let oem: Vec<&[u8]> = all[1].strings().collect();
        assert_eq!(oem, vec![&b"first"[..], &b"second"[..]]);
        assert_eq!(all[2].strings().count(), 0);
        assert_eq!(all[2].string(1), None);
        assert_eq!(all[2].word(4), Some(0x10));
        assert_eq!(all[2].dword(4), None);
        assert_eq!(all[3].kind, END_OF_TABLE);
        let sizes: usize = all.iter().map(|s| s.raw.len()).sum();
        assert_eq!(sizes, table.len());
    }

    #[test]
    fn stops_at_end_of_table() {
        let mut table = sample_table();
        table.extend(structure(1, 0x0020, &[0; 4], &[]));
        let ep = EntryPoint::parse(&entry_point_2(&table, 5, 0x20)).unwrap();
        assert_eq!(ep.version, (2, 8));
        assert_eq!(ep.structure_count, Some(5));
        let kinds: Vec<u8> = Smbios::new(ep, table)
            .structures()
            .map(|s| s.kind)
            .collect();
        assert_eq!(kinds, vec![0, 11, 17, END_OF_TABLE]);
    }

    #[test]
    fn reads_sysfs_layout_and_cuts_the_table_to_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let table = sample_table();
        let mut file = table.clone();
        file.extend_from_slice(b"junk after the table");
        write_sysfs(dir.path(), &entry_point_2(&table, 4, 0xF0000), &file);
        let smbios = Smbios::read(dir.path()).unwrap();
        assert_eq!(smbios.table(), &table[..]);
        assert_eq!(smbios.entry_point.table_address, 0xF0000);
        let missing = Smbios::read(&dir.path().join("nope")).unwrap_err();
        assert!(missing.is_absent(), "{missing}");
    }

    #[test]
    fn rejects_bad_entry_points() {
        let table = sample_table();
        let good3 = entry_point_3(&table, 0);
        let good2 = entry_point_2(&table, 4, 0);
        for ep in [&good3, &good2] {
            for cut in 0..ep.len() {
                assert!(EntryPoint::parse(&ep[..cut]).is_err(), "cut at {cut}");
            }
            for at in 0..ep.len() {
                let mut bad = ep.clone();
                bad[at] ^= 0x01;
                assert!(EntryPoint::parse(&bad).is_err(), "flip at {at}");
            }
        }
        assert!(EntryPoint::parse(b"").is_err());
        assert!(EntryPoint::parse(b"_SM3_\x05\xff").is_err());
    }

    #[test]
    fn reads_legacy_dmi_and_short_2x_entry_points() {
        let table = sample_table();
        // A legacy 15-byte _DMI_ entry point (BCD revision 2.1), from a 2.x one.
        let legacy = entry_point_2(&table, 4, 0xE0000)[0x10..0x1F].to_vec();
        let ep = EntryPoint::parse(&legacy).unwrap();
        assert_eq!(ep.version, (2, 8));
        assert_eq!(ep.table_length as usize, table.len());
        assert_eq!(ep.table_address, 0xE0000);
        // A 2.x entry point whose length byte says 0x1E, checksummed over 0x1E bytes.
        let mut short = entry_point_2(&table, 4, 0);
        short[0x05] = 0x1E;
        short[0x04] = 0;
        let sum = short[..0x1E].iter().fold(0u8, |s, b| s.wrapping_add(*b));
        short[0x04] = 0u8.wrapping_sub(sum);
        assert_eq!(EntryPoint::parse(&short).unwrap().structure_count, Some(4));
    }

    /// A small xorshift generator: reproducible pseudo-random cuts and flips.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn random_truncations_and_byte_flips_never_panic_or_hang() {
        let mut table = sample_table();
        for i in 0..20u16 {
            table.extend(structure(
                17,
                0x100 + i,
                &[0xAB; 0x50],
                &["DIMM", "BANK", "Maker"],
            ));
        }
        table.extend(structure(END_OF_TABLE, 0xFFFF, &[], &[]));
        let ep = EntryPoint::parse(&entry_point_3(&table, 0)).unwrap();
        let mut state = 0x9E37_79B9_7F4A_7C15;
        for round in 0..5000 {
            let mut blob = table.clone();
            let cut = (xorshift(&mut state) as usize) % (blob.len() + 1);
            blob.truncate(cut);
            for _ in 0..(round % 8) {
                if blob.is_empty() {
                    break;
                }
                let at = (xorshift(&mut state) as usize) % blob.len();
                blob[at] = xorshift(&mut state) as u8;
            }
            let len = blob.len();
            let smbios = Smbios::new(ep, blob);
            let mut walked = 0;
            for s in smbios.structures() {
                walked += s.raw.len();
                for offset in 0..0x60 {
                    let _ = (
                        s.byte(offset),
                        s.word(offset),
                        s.dword(offset),
                        s.qword(offset),
                    );
                    let _ = s.text(offset);
                }
                for n in 0..=255 {
                    let _ = s.string(n);
                }
            }
            assert!(walked <= len, "walked {walked} of {len} bytes");
        }
    }
}
