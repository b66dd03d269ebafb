//! The PCI and USB id databases (`pci.ids`, `usb.ids`) the host ships: vendor, device,
//! subsystem and class names by numeric id, as `lspci`/`lsusb` print them.
//!
//! Both files share one layout: a vendor line (`8086  Intel Corporation`), its devices
//! indented by one tab, their subsystems (PCI) or interfaces (USB) by two; then a class
//! section (`C 06  Bridge`, subclasses by one tab, programming interfaces or protocols by
//! two). `usb.ids` has more sections (`AT`, `HID`, `L`, ...), whose lines start with
//! other words and are skipped with everything indented under them.
//!
//! The parser is bounded: the file is read up to [`MAX_DB_BYTES`] under the safe opener,
//! lines that do not fit the layout are skipped, a later duplicate id never replaces the
//! first, and nothing it meets (a truncated line, binary garbage) can make it panic.

use crate::safe_read::{self, FileKinds, OverLimit, Policy};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// Where distributions install `pci.ids`, in the order `lspci` looks.
pub const PCI_IDS_PATHS: &[&str] = &[
    "/usr/share/misc/pci.ids",
    "/usr/share/hwdata/pci.ids",
    "/usr/share/pci.ids",
];

/// Where distributions install `usb.ids`.
pub const USB_IDS_PATHS: &[&str] = &[
    "/usr/share/misc/usb.ids",
    "/usr/share/hwdata/usb.ids",
    "/var/lib/usbutils/usb.ids",
    "/usr/share/usb.ids",
];

/// Most bytes of an ids file read (today's `pci.ids` is about 1.4 MB).
pub const MAX_DB_BYTES: u64 = 32 << 20;

/// A vendor's name and its devices.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Vendor {
    name: String,
    devices: HashMap<u16, Device>,
}

/// A device's name and its subsystems' names by (subvendor, subdevice).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Device {
    name: String,
    subsystems: HashMap<(u16, u16), String>,
}

/// A class's name and its subclasses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Class {
    name: String,
    subclasses: HashMap<u8, Subclass>,
}

/// A subclass's name and its programming interfaces (PCI) or protocols (USB).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Subclass {
    name: String,
    interfaces: HashMap<u8, String>,
}

/// A parsed `pci.ids` or `usb.ids`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IdDatabase {
    vendors: HashMap<u16, Vendor>,
    classes: HashMap<u8, Class>,
}

/// Which part of the file the parser is in.
#[derive(Clone, Copy)]
enum Section {
    /// Before any vendor, or after a line that broke the layout.
    None,
    Vendor(u16),
    Device(u16, u16),
    Class(u8),
    Subclass(u8, u8),
    /// A section we do not keep (`usb.ids`' `HID`, `L`, ...): its lines are skipped.
    Other,
}

/// The id at the start of `text` (`digits` hex digits) and the name after the two-space
/// separator, or `None` when the line does not have that shape.
fn id_and_name(text: &str, digits: usize) -> Option<(u32, &str)> {
    let id = text.get(..digits)?;
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let rest = text.get(digits..)?;
    // The separator is whitespace (two spaces in practice); a bare id has no name.
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let name = rest.trim();
    if name.is_empty() {
        return None;
    }
    Some((u32::from_str_radix(id, 16).ok()?, name))
}

impl IdDatabase {
    /// Parses the text of an ids file; lines that do not fit are skipped.
    pub fn parse(text: &[u8]) -> IdDatabase {
        let mut db = IdDatabase::default();
        let mut section = Section::None;
        for raw in text.split(|&b| b == b'\n') {
            // Names are UTF-8 today; older copies had Latin-1, which is kept readable.
            let line = String::from_utf8_lossy(raw);
            let line = line.trim_end_matches(['\r', ' ']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let tabs = line.bytes().take_while(|&b| b == b'\t').count();
            let text = &line[tabs..];
            section = match (tabs, section) {
                (0, _) => db.top_line(text),
                (1, Section::Vendor(v) | Section::Device(v, _)) => match id_and_name(text, 4) {
                    Some((d, name)) => {
                        let d = d as u16;
                        if let Some(vendor) = db.vendors.get_mut(&v) {
                            vendor.devices.entry(d).or_insert_with(|| Device {
                                name: name.to_owned(),
                                subsystems: HashMap::new(),
                            });
                        }
                        Section::Device(v, d)
                    }
                    None => Section::Vendor(v),
                },
                (2, Section::Device(v, d)) => {
                    // PCI: `subvendor subdevice  name`; USB: `interface  name` (not kept).
                    let sub = text.get(..9).and_then(|ids| {
                        let (sv, sd) = ids.split_once(' ')?;
                        let sv = u16::from_str_radix(sv, 16).ok()?;
                        let sd = u16::from_str_radix(sd, 16).ok()?;
                        let name = text.get(9..)?.trim();
                        (!name.is_empty()).then_some(((sv, sd), name))
                    });
                    if let Some((key, name)) = sub
                        && let Some(device) = db
                            .vendors
                            .get_mut(&v)
                            .and_then(|vendor| vendor.devices.get_mut(&d))
                    {
                        device
                            .subsystems
                            .entry(key)
                            .or_insert_with(|| name.to_owned());
                    }
                    section
                }
                (1, Section::Class(c) | Section::Subclass(c, _)) => match id_and_name(text, 2) {
                    Some((s, name)) => {
                        let s = s as u8;
                        if let Some(class) = db.classes.get_mut(&c) {
                            class.subclasses.entry(s).or_insert_with(|| Subclass {
                                name: name.to_owned(),
                                interfaces: HashMap::new(),
                            });
                        }
                        Section::Subclass(c, s)
                    }
                    None => Section::Class(c),
                },
                (2, Section::Subclass(c, s)) => {
                    if let Some((p, name)) = id_and_name(text, 2)
                        && let Some(subclass) = db
                            .classes
                            .get_mut(&c)
                            .and_then(|class| class.subclasses.get_mut(&s))
                    {
                        subclass
                            .interfaces
                            .entry(p as u8)
                            .or_insert_with(|| name.to_owned());
                    }
                    section
                }
                // Indented lines under a section we skip, or out of place.
                (_, s) => s,
            };
        }
        db
    }

    /// A line at column 0: a vendor, a class, or the start of a section we skip.
    fn top_line(&mut self, text: &str) -> Section {
        if let Some(rest) = text.strip_prefix("C ") {
            return match id_and_name(rest, 2) {
                Some((c, name)) => {
                    let c = c as u8;
                    self.classes.entry(c).or_insert_with(|| Class {
                        name: name.to_owned(),
                        subclasses: HashMap::new(),
                    });
                    Section::Class(c)
                }
                None => Section::Other,
            };
        }
        match id_and_name(text, 4) {
            Some((v, name)) => {
                let v = v as u16;
                self.vendors.entry(v).or_insert_with(|| Vendor {
                    name: name.to_owned(),
                    devices: HashMap::new(),
                });
                Section::Vendor(v)
            }
            None => Section::Other,
        }
    }

    /// Reads and parses the ids file at `path` (at most [`MAX_DB_BYTES`]; a longer file
    /// is parsed up to there).
    pub fn load(path: &Path) -> io::Result<IdDatabase> {
        let policy = Policy {
            limit: MAX_DB_BYTES,
            over_limit: OverLimit::Truncate,
            kinds: FileKinds::Regular,
            follow_symlinks: true,
            open_as: None,
        };
        let text = safe_read::read_bounded(path, &policy)?;
        Ok(IdDatabase::parse(&text))
    }

    /// The first of `paths` that can be read, parsed, with its path; `None` when none can.
    pub fn load_first(paths: &[impl AsRef<Path>]) -> Option<(PathBuf, IdDatabase)> {
        paths.iter().find_map(|p| {
            let p = p.as_ref();
            IdDatabase::load(p).ok().map(|db| (p.to_owned(), db))
        })
    }

    pub fn vendor(&self, vendor: u16) -> Option<&str> {
        self.vendors.get(&vendor).map(|v| v.name.as_str())
    }

    pub fn device(&self, vendor: u16, device: u16) -> Option<&str> {
        self.vendors
            .get(&vendor)?
            .devices
            .get(&device)
            .map(|d| d.name.as_str())
    }

    /// A PCI subsystem's name, listed under its device: `(vendor, device)` of the chip,
    /// `(subvendor, subdevice)` of the board.
    pub fn subsystem(
        &self,
        vendor: u16,
        device: u16,
        subvendor: u16,
        subdevice: u16,
    ) -> Option<&str> {
        self.vendors
            .get(&vendor)?
            .devices
            .get(&device)?
            .subsystems
            .get(&(subvendor, subdevice))
            .map(String::as_str)
    }

    pub fn class(&self, class: u8) -> Option<&str> {
        self.classes.get(&class).map(|c| c.name.as_str())
    }

    pub fn subclass(&self, class: u8, subclass: u8) -> Option<&str> {
        self.classes
            .get(&class)?
            .subclasses
            .get(&subclass)
            .map(|s| s.name.as_str())
    }

    /// A PCI programming interface's or a USB protocol's name.
    pub fn interface(&self, class: u8, subclass: u8, interface: u8) -> Option<&str> {
        self.classes
            .get(&class)?
            .subclasses
            .get(&subclass)?
            .interfaces
            .get(&interface)
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# comment line
#\tindented comment
8086  Intel Corporation
\t0d57  Some host bridge
\t1234  Some NIC
\t\t8086 0001  NIC board one
\t\t1af4 1100  QEMU board
1af4  Red Hat, Inc.
\t1041  Virtio 1.0 network device
8086  Duplicate vendor must not win
C 06  Bridge
\t00  Host bridge
\t04  PCI bridge
\t\t00  Normal decode
C 09  Hub
\t00  Unused
\t\t01  Single TT
HID 22  Report
\t0000  indented line of a skipped section
AT 0409  English
";

    #[test]
    fn parses_vendors_devices_subsystems_and_classes() {
        let db = IdDatabase::parse(SAMPLE.as_bytes());
        assert_eq!(db.vendor(0x8086), Some("Intel Corporation"));
        assert_eq!(db.vendor(0x1af4), Some("Red Hat, Inc."));
        assert_eq!(db.device(0x8086, 0x0d57), Some("Some host bridge"));
        assert_eq!(db.device(0x1af4, 0x1041), Some("Virtio 1.0 network device"));
        assert_eq!(db.device(0x1af4, 0x0d57), None);
        assert_eq!(
            db.subsystem(0x8086, 0x1234, 0x1af4, 0x1100),
            Some("QEMU board")
        );
        assert_eq!(
            db.subsystem(0x8086, 0x1234, 0x8086, 0x0001),
            Some("NIC board one")
        );
        assert_eq!(db.subsystem(0x8086, 0x0d57, 0x8086, 0x0001), None);
        assert_eq!(db.class(0x06), Some("Bridge"));
        assert_eq!(db.subclass(0x06, 0x04), Some("PCI bridge"));
        assert_eq!(db.interface(0x06, 0x04, 0x00), Some("Normal decode"));
        assert_eq!(db.interface(0x09, 0x00, 0x01), Some("Single TT"));
        assert_eq!(db.subclass(0x06, 0x01), None);
        // The skipped sections added nothing.
        assert_eq!(db.vendors.len(), 2);
        assert_eq!(db.classes.len(), 2);
    }

    #[test]
    fn truncated_and_corrupted_files_give_what_fits() {
        let whole = SAMPLE.as_bytes();
        for cut in 0..whole.len() {
            let db = IdDatabase::parse(&whole[..cut]);
            // Whatever the cut kept, a name is never partial garbage of an id.
            if let Some(name) = db.vendor(0x8086) {
                assert!("Intel Corporation".starts_with(name), "{name:?}");
            }
        }
        let garbage: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let _ = IdDatabase::parse(&garbage);
        let _ = IdDatabase::parse(b"\t\t\t\t\n\t\t1234 \nC \nC zz  x\n12345\n\t\tzz zz  q\n");
        assert_eq!(IdDatabase::parse(b"8086\n8086  \n").vendor(0x8086), None);
    }

    #[test]
    fn missing_files_are_none() {
        assert!(IdDatabase::load_first(&["/nonexistent/pci.ids"]).is_none());
    }

    /// The host's own database, when it has one, names the vendors `lspci` would.
    #[test]
    fn host_database_loads() {
        let Some((path, db)) = IdDatabase::load_first(PCI_IDS_PATHS) else {
            return;
        };
        assert!(
            db.vendor(0x8086).is_some(),
            "{} has no Intel",
            path.display()
        );
    }
}
