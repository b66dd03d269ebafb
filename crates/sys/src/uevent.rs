//! Kernel uevents (`NETLINK_KOBJECT_UEVENT`, group 1: the kernel's own, before udev):
//! a device was added, removed, changed, bound to a driver...
//!
//! A message is `action@devpath` then NUL-separated `KEY=VALUE` properties (`ACTION`,
//! `DEVPATH`, `SUBSYSTEM`, `DEVTYPE`, `DEVNAME`, `DRIVER`, `MAJOR`/`MINOR`, `SEQNUM`,
//! `PRODUCT`, `MODALIAS`...). [`parse_uevent`] keeps every property as bytes; messages
//! libudev sends (tagged `libudev`, udev's processed copies) are ignored, as are datagrams
//! from any sender but the kernel (see [`crate::netlink_multicast`]).
//!
//! [`hardware_facts`] gives what osquery's `hardware_events` reports. osquery reads udev's
//! database, which kernel uevents do not carry, so each fact comes from here instead:
//! * `path` (udev's devnode): `/dev/` + the uevent's `DEVNAME`.
//! * `type`: the uevent's `DEVTYPE`; `driver`: its `DRIVER`, else the sysfs `driver` link.
//! * `vendor_id`/`model_id`/`revision`/`serial` (udev's `ID_VENDOR_ID`, `ID_MODEL_ID`,
//!   `ID_REVISION`, `ID_SERIAL_SHORT` from its `usb_id` builtin): the USB device's
//!   `idVendor`, `idProduct`, `bcdDevice` and `serial` in sysfs, found by walking up from
//!   the device as `usb_id` does; for a PCI device, its `vendor`, `device` and `revision`
//!   files. When sysfs no longer has the device (a `remove`), the uevent's own `PRODUCT`
//!   (USB) or `PCI_ID` gives the ids.
//! * `vendor`/`model` (udev's `ID_*_FROM_DATABASE`, from its hwdb built from the same
//!   lists): the names in the host's `usb.ids`/`pci.ids` ([`crate::hwids`]).
//!
//! Losses: `ENOBUFS` overruns, oversize and malformed messages are counted in
//! [`UeventReader::loss`]. The kernel gives no time: events carry the receive time.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netlink_sys::protocols::NETLINK_KOBJECT_UEVENT;

use crate::fs::{FileReader, parse_u64};
use crate::hwids::IdDatabase;
use crate::netlink_multicast::{LossCounters, MulticastSocket};

/// The kernel's multicast group (udev re-sends processed events to group 2).
const KERNEL_GROUP: u32 = 1;
/// Receive buffer asked for: a burst of a few thousand uevents (a USB hub with its
/// devices, coldplug, a thousand loop devices).
pub const RECEIVE_BUFFER: usize = 4 << 20;
/// The kernel builds a uevent in 2 KiB (`UEVENT_BUFFER_SIZE`) plus the header.
const MAX_DATAGRAM: usize = 16 << 10;
/// How far up sysfs the USB device of an interface or disk is looked for.
const MAX_SYSFS_DEPTH: usize = 32;

/// One kernel uevent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    /// Receive time, unix seconds (the kernel sends none).
    pub time: i64,
    /// `add`, `remove`, `change`, `move`, `online`, `offline`, `bind`, `unbind`.
    pub action: Vec<u8>,
    /// The device's path under `/sys` (`/devices/virtual/block/loop0`).
    pub devpath: Vec<u8>,
    /// Every `KEY=VALUE`, in the kernel's order.
    pub properties: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Uevent {
    /// The value of property `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.properties
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    pub fn subsystem(&self) -> Option<&[u8]> {
        self.get("SUBSYSTEM")
    }

    pub fn devtype(&self) -> Option<&[u8]> {
        self.get("DEVTYPE")
    }

    /// The device node's name under `/dev` (`loop0`, `bus/usb/001/002`).
    pub fn devname(&self) -> Option<&[u8]> {
        self.get("DEVNAME")
    }

    pub fn driver(&self) -> Option<&[u8]> {
        self.get("DRIVER")
    }

    pub fn seqnum(&self) -> Option<u64> {
        self.get("SEQNUM").and_then(parse_u64)
    }

    /// `(MAJOR, MINOR)` of a device node.
    pub fn dev_numbers(&self) -> Option<(u32, u32)> {
        let n = |k| {
            self.get(k)
                .and_then(parse_u64)
                .and_then(|v| u32::try_from(v).ok())
        };
        Some((n("MAJOR")?, n("MINOR")?))
    }
}

/// A datagram that is not a well-formed uevent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Parses one uevent datagram received at `time`. `Ok(None)` for libudev's messages.
///
/// The header must be `action@devpath`; an `ACTION` or `DEVPATH` property that
/// contradicts it makes the message malformed. Empty fields and fields without `=` are
/// skipped.
pub fn parse_uevent(bytes: &[u8], time: i64) -> Result<Option<Uevent>, Malformed> {
    if bytes.starts_with(b"libudev\0") {
        return Ok(None);
    }
    let mut fields = bytes.split(|b| *b == 0);
    let header = fields.next().ok_or(Malformed)?;
    let at = memchr::memchr(b'@', header).ok_or(Malformed)?;
    let (action, devpath) = (&header[..at], &header[at + 1..]);
    if action.is_empty() || !devpath.starts_with(b"/") {
        return Err(Malformed);
    }
    let mut properties = Vec::new();
    for field in fields {
        let Some(eq) = memchr::memchr(b'=', field) else {
            continue;
        };
        if eq == 0 {
            continue;
        }
        let (key, value) = (&field[..eq], &field[eq + 1..]);
        let agrees = match key {
            b"ACTION" => value == action,
            b"DEVPATH" => value == devpath,
            _ => true,
        };
        if !agrees {
            return Err(Malformed);
        }
        properties.push((key.to_vec(), value.to_vec()));
    }
    Ok(Some(Uevent {
        time,
        action: action.to_vec(),
        devpath: devpath.to_vec(),
        properties,
    }))
}

/// A listener on the kernel's uevents.
pub struct UeventReader {
    socket: MulticastSocket,
}

impl UeventReader {
    /// Binds to the kernel's uevent group (any user may; only root gets a buffer past
    /// `rmem_max`).
    pub fn open() -> io::Result<UeventReader> {
        let socket = MulticastSocket::open(
            NETLINK_KOBJECT_UEVENT,
            KERNEL_GROUP,
            RECEIVE_BUFFER,
            MAX_DATAGRAM,
            "kernel uevents",
        )?;
        log::debug!(
            "kernel uevents: listening, receive buffer {} bytes",
            socket.rcvbuf()
        );
        Ok(UeventReader { socket })
    }

    /// The uevents that arrive within `timeout` (all that are queued when some are; an
    /// empty Vec when none came in time).
    pub fn next_batch(&mut self, timeout: Duration) -> io::Result<Vec<Uevent>> {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut events = Vec::new();
        let mut malformed = 0u64;
        self.socket
            .drain(timeout, |datagram| match parse_uevent(datagram, time) {
                Ok(Some(e)) => events.push(e),
                Ok(None) => {}
                Err(Malformed) => malformed += 1,
            })?;
        if malformed > 0 {
            self.socket.loss.malformed += malformed;
            log::warn!(
                "kernel uevents: dropped {malformed} malformed message(s); {} so far",
                self.socket.loss.malformed
            );
        }
        Ok(events)
    }

    /// What was lost since the reader opened.
    pub fn loss(&self) -> LossCounters {
        self.socket.loss
    }
}

/// The names databases [`hardware_facts`] looks ids up in; load once, keep.
#[derive(Debug, Default)]
pub struct IdNames {
    pub usb: Option<IdDatabase>,
    pub pci: Option<IdDatabase>,
}

impl IdNames {
    /// The host's `usb.ids` and `pci.ids`, each `None` when not installed.
    pub fn load() -> IdNames {
        IdNames {
            usb: IdDatabase::load_first(crate::hwids::USB_IDS_PATHS).map(|(_, db)| db),
            pci: IdDatabase::load_first(crate::hwids::PCI_IDS_PATHS).map(|(_, db)| db),
        }
    }
}

/// What osquery's `hardware_events` reports of a uevent (see the module docs for where
/// each comes from). Text is as sysfs and the uevent have it; absent facts are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HardwareFacts {
    pub action: Vec<u8>,
    /// `/dev/<DEVNAME>`, empty when the device has no node.
    pub path: Vec<u8>,
    /// `DEVTYPE`.
    pub devtype: Vec<u8>,
    pub driver: Vec<u8>,
    pub vendor: String,
    /// Four lower-case hex digits (`8086`).
    pub vendor_id: String,
    pub model: String,
    pub model_id: String,
    pub serial: Vec<u8>,
    pub revision: String,
}

/// Where a device's ids were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bus {
    Usb,
    Pci,
}

/// The facts of `event`, reading the device's sysfs directory under `sysfs` (`/sys`) as
/// it is now (gone after a `remove`).
pub fn hardware_facts(event: &Uevent, sysfs: &Path, names: &IdNames) -> HardwareFacts {
    let mut facts = HardwareFacts {
        action: event.action.clone(),
        ..HardwareFacts::default()
    };
    if let Some(name) = event.devname().filter(|n| !n.is_empty()) {
        facts.path = [b"/dev/".as_slice(), name].concat();
    }
    facts.devtype = event.devtype().unwrap_or_default().to_vec();
    let mut reader = FileReader::new();
    let device = sysfs_dir(sysfs, &event.devpath);
    facts.driver = match event.driver() {
        Some(d) => d.to_vec(),
        None => device
            .as_deref()
            .and_then(|d| std::fs::read_link(d.join("driver")).ok())
            .and_then(|l| l.file_name().map(|n| n.as_encoded_bytes().to_vec()))
            .unwrap_or_default(),
    };

    let mut ids: Option<(Bus, u16, u16)> = None;
    if let Some(dir) = device
        .as_deref()
        .and_then(|d| id_device(&sysfs.join("devices"), d, &mut reader))
    {
        let (bus, vendor, model) = dir.1;
        ids = Some((bus, vendor, model));
        let attr = |reader: &mut FileReader, name: &str| -> Vec<u8> {
            reader
                .read(dir.0.join(name))
                .map(|v| v.trim_ascii().to_vec())
                .unwrap_or_default()
        };
        match bus {
            Bus::Usb => {
                facts.serial = attr(&mut reader, "serial");
                facts.revision = String::from_utf8_lossy(&attr(&mut reader, "bcdDevice")).into();
            }
            Bus::Pci => {
                let rev = attr(&mut reader, "revision");
                facts.revision = String::from_utf8_lossy(strip_0x(&rev)).into();
            }
        }
    } else if let Some(product) = event.get("PRODUCT") {
        // USB `PRODUCT=vid/pid/bcdDevice`, hex without leading zeros.
        let mut parts = product.split(|b| *b == b'/');
        if let (Some(v), Some(p), Some(rev)) = (parts.next(), parts.next(), parts.next())
            && let (Some(v), Some(p)) = (hex_u16(v), hex_u16(p))
        {
            ids = Some((Bus::Usb, v, p));
            if let Some(rev) = hex_u16(rev) {
                facts.revision = format!("{rev:04x}");
            }
        }
    } else if let Some(pci) = event.get("PCI_ID") {
        // `PCI_ID=8086:1237`
        let mut parts = pci.split(|b| *b == b':');
        if let (Some(v), Some(d)) = (
            parts.next().and_then(hex_u16),
            parts.next().and_then(hex_u16),
        ) {
            ids = Some((Bus::Pci, v, d));
        }
    }
    if let Some((bus, vendor, model)) = ids {
        facts.vendor_id = format!("{vendor:04x}");
        facts.model_id = format!("{model:04x}");
        let db = match bus {
            Bus::Usb => names.usb.as_ref(),
            Bus::Pci => names.pci.as_ref(),
        };
        if let Some(db) = db {
            facts.vendor = db.vendor(vendor).unwrap_or_default().to_owned();
            facts.model = db.device(vendor, model).unwrap_or_default().to_owned();
        }
    }
    facts
}

/// `sysfs` + `devpath`, refused when the devpath could leave `sysfs/devices`.
fn sysfs_dir(sysfs: &Path, devpath: &[u8]) -> Option<PathBuf> {
    let rel = devpath.strip_prefix(b"/devices/")?;
    if rel
        .split(|b| *b == b'/')
        .any(|c| c.is_empty() || c == b"." || c == b"..")
    {
        return None;
    }
    use std::os::unix::ffi::OsStrExt;
    Some(sysfs.join("devices").join(std::ffi::OsStr::from_bytes(rel)))
}

/// The directory holding the device's ids, with them: the device itself or its nearest
/// USB ancestor (`idVendor`/`idProduct`, what udev's `usb_id` reads), or the device
/// itself when it is a PCI function (`vendor`/`device`).
fn id_device(
    devices_root: &Path,
    device: &Path,
    reader: &mut FileReader,
) -> Option<(PathBuf, (Bus, u16, u16))> {
    let hex = |reader: &mut FileReader, p: PathBuf| -> Option<u16> {
        reader
            .read(p)
            .ok()
            .and_then(|v| hex_u16(strip_0x(v.trim_ascii())))
    };
    let is_pci = std::fs::read_link(device.join("subsystem"))
        .ok()
        .is_some_and(|l| l.file_name().is_some_and(|n| n == "pci"));
    if is_pci {
        let v = hex(reader, device.join("vendor"))?;
        let d = hex(reader, device.join("device"))?;
        return Some((device.to_owned(), (Bus::Pci, v, d)));
    }
    let mut dir = device;
    for _ in 0..MAX_SYSFS_DEPTH {
        if dir == devices_root || !dir.starts_with(devices_root) {
            return None;
        }
        if let (Some(v), Some(p)) = (
            hex(reader, dir.join("idVendor")),
            hex(reader, dir.join("idProduct")),
        ) {
            return Some((dir.to_owned(), (Bus::Usb, v, p)));
        }
        dir = dir.parent()?;
    }
    None
}

fn strip_0x(v: &[u8]) -> &[u8] {
    v.strip_prefix(b"0x").unwrap_or(v)
}

/// 1 to 4 hex digits.
fn hex_u16(v: &[u8]) -> Option<u16> {
    if v.is_empty() || v.len() > 4 || !v.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(v).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOP_CHANGE: &[u8] = b"change@/devices/virtual/block/loop3\0ACTION=change\0\
DEVPATH=/devices/virtual/block/loop3\0SUBSYSTEM=block\0DISK_MEDIA_CHANGE=1\0\
MAJOR=7\0MINOR=3\0DEVNAME=loop3\0DEVTYPE=disk\0DISKSEQ=12\0SEQNUM=4021\0";

    const USB_ADD: &[u8] = b"add@/devices/pci0000:00/0000:00:14.0/usb1/1-2\0ACTION=add\0\
DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2\0SUBSYSTEM=usb\0\
DEVNAME=bus/usb/001/005\0DEVTYPE=usb_device\0PRODUCT=781/5567/100\0TYPE=0/0/0\0\
BUSNUM=001\0DEVNUM=005\0SEQNUM=5000\0MAJOR=189\0MINOR=4\0";

    #[test]
    fn parses_a_loop_device_change() {
        let e = parse_uevent(LOOP_CHANGE, 7).unwrap().unwrap();
        assert_eq!(e.time, 7);
        assert_eq!(e.action, b"change");
        assert_eq!(e.devpath, b"/devices/virtual/block/loop3");
        assert_eq!(e.subsystem(), Some(&b"block"[..]));
        assert_eq!(e.devtype(), Some(&b"disk"[..]));
        assert_eq!(e.devname(), Some(&b"loop3"[..]));
        assert_eq!(e.dev_numbers(), Some((7, 3)));
        assert_eq!(e.seqnum(), Some(4021));
        assert_eq!(e.driver(), None);
        assert_eq!(e.get("DISK_MEDIA_CHANGE"), Some(&b"1"[..]));
        assert_eq!(e.properties.len(), 10);
    }

    #[test]
    fn libudev_messages_are_ignored() {
        let mut m = b"libudev\0".to_vec();
        m.extend_from_slice(&0xfeed_cafe_u32.to_be_bytes());
        m.extend_from_slice(&[0; 32]);
        assert_eq!(parse_uevent(&m, 0), Ok(None));
    }

    #[test]
    fn bad_headers_and_contradictions_are_malformed() {
        for bad in [
            &b""[..],
            b"\0",
            b"add\0ACTION=add\0",
            b"@/devices/x\0",
            b"add@\0",
            b"add@devices/x\0",
            b"add@/devices/x\0ACTION=remove\0",
            b"add@/devices/x\0DEVPATH=/devices/y\0",
        ] {
            assert_eq!(parse_uevent(bad, 0), Err(Malformed), "{bad:?}");
        }
        // Fields without '=' or with an empty key are skipped, not fatal.
        let e = parse_uevent(b"add@/devices/x\0junk\0=v\0\0K=\0", 0)
            .unwrap()
            .unwrap();
        assert_eq!(e.properties, vec![(b"K".to_vec(), Vec::new())]);
        // A header with no NUL at all still parses (a truncated last field).
        assert!(parse_uevent(b"add@/devices/x", 0).unwrap().is_some());
    }

    #[test]
    fn every_truncation_and_random_bytes_are_safe() {
        for cut in 0..USB_ADD.len() {
            let _ = parse_uevent(&USB_ADD[..cut], 0);
        }
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..3000 {
            let n = (x % 200) as usize;
            let mut junk = b"add@/devices/".to_vec();
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // Bias towards the separators the parser looks at.
                junk.push(match x % 8 {
                    0 => 0,
                    1 => b'=',
                    2 => b'/',
                    _ => (x >> 8) as u8,
                });
            }
            if let Ok(Some(e)) = parse_uevent(&junk, 0) {
                // The facts of a hostile event never escape sysfs/devices.
                let facts =
                    hardware_facts(&e, Path::new("/nonexistent-sysfs"), &IdNames::default());
                assert_eq!(facts.action, b"add");
            }
        }
    }

    #[test]
    fn devpaths_that_leave_sysfs_are_refused() {
        let sys = Path::new("/sys");
        assert_eq!(
            sysfs_dir(sys, b"/devices/virtual/block/loop0"),
            Some(PathBuf::from("/sys/devices/virtual/block/loop0"))
        );
        for bad in [
            &b"/devices/../etc"[..],
            b"/devices//x",
            b"/class/x",
            b"/devices/a/./b",
        ] {
            assert_eq!(sysfs_dir(sys, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn usb_ids_from_the_uevent_when_sysfs_is_gone() {
        let e = parse_uevent(USB_ADD, 0).unwrap().unwrap();
        let names = IdNames {
            usb: Some(IdDatabase::parse(
                b"0781  SanDisk Corp.\n\t5567  Cruzer Blade\n",
            )),
            pci: None,
        };
        let f = hardware_facts(&e, Path::new("/nonexistent-sysfs"), &names);
        assert_eq!(f.path, b"/dev/bus/usb/001/005");
        assert_eq!(f.devtype, b"usb_device");
        assert_eq!(f.vendor_id, "0781");
        assert_eq!(f.model_id, "5567");
        assert_eq!(f.revision, "0100");
        assert_eq!(f.vendor, "SanDisk Corp.");
        assert_eq!(f.model, "Cruzer Blade");
        assert_eq!(f.serial, b"");
    }

    /// A fake sysfs: a USB stick's disk under its USB device, whose attributes give the ids.
    #[test]
    fn usb_ids_from_the_nearest_usb_ancestor_in_sysfs() {
        let root = tempfile::tempdir().unwrap();
        let usb = root.path().join("devices/pci0000:00/0000:00:14.0/usb1/1-2");
        let disk = usb.join("1-2:1.0/host0/target0:0:0/0:0:0:0/block/sdb");
        std::fs::create_dir_all(&disk).unwrap();
        for (name, value) in [
            ("idVendor", "0781\n"),
            ("idProduct", "5567\n"),
            ("bcdDevice", "0126\n"),
            ("serial", "4C530001\n"),
        ] {
            std::fs::write(usb.join(name), value).unwrap();
        }
        let e = parse_uevent(
            b"add@/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host0/target0:0:0/0:0:0:0/block/sdb\0\
SUBSYSTEM=block\0DEVNAME=sdb\0DEVTYPE=disk\0",
            0,
        )
        .unwrap()
        .unwrap();
        let f = hardware_facts(&e, root.path(), &IdNames::default());
        assert_eq!(f.path, b"/dev/sdb");
        assert_eq!(f.vendor_id, "0781");
        assert_eq!(f.model_id, "5567");
        assert_eq!(f.revision, "0126");
        assert_eq!(f.serial, b"4C530001");
        // No names database: no names, not made-up ones.
        assert_eq!(f.vendor, "");
    }

    #[test]
    fn hex_ids() {
        assert_eq!(hex_u16(b"781"), Some(0x781));
        assert_eq!(hex_u16(b"ffff"), Some(0xffff));
        assert_eq!(hex_u16(b"10000"), None);
        assert_eq!(hex_u16(b""), None);
        assert_eq!(hex_u16(b"+1"), None);
    }

    /// Reads uevents until one for the block device `name` comes, or 20 s pass.
    fn next_for(reader: &mut UeventReader, name: &[u8]) -> Option<Uevent> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let events = reader.next_batch(Duration::from_millis(100)).unwrap();
            if let Some(e) = events
                .into_iter()
                .find(|e| e.subsystem() == Some(b"block") && e.devname() == Some(name))
            {
                return Some(e);
            }
        }
        None
    }

    #[test]
    fn live_loop_device_attach_and_detach_are_seen() {
        let Some(losetup) = oxquery_test_support::require_tool("losetup") else {
            return;
        };
        let Some(mut reader) =
            oxquery_test_support::require("a uevent socket", UeventReader::open())
        else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let backing = dir.path().join("backing");
        std::fs::File::create(&backing)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let Some(device) = oxquery_test_support::require(
            "losetup attaching a loop device",
            oxquery_test_support::LoopDevice::attach(&losetup, &backing),
        ) else {
            return;
        };
        let name = device.name().as_bytes().to_vec();

        // Attaching announces the new size: a change (or an add, when losetup had to
        // create the device).
        let attached = next_for(&mut reader, &name).expect("a uevent for the attached loop device");
        assert!(
            matches!(&attached.action[..], b"change" | b"add"),
            "{attached:?}"
        );
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(device.path()).unwrap().rdev();
        assert_eq!(
            attached.dev_numbers(),
            Some((libc::major(rdev), libc::minor(rdev)))
        );
        let sys_dev = std::fs::read_to_string(format!("/sys/block/{}/dev", device.name())).unwrap();
        assert_eq!(
            sys_dev.trim(),
            format!("{}:{}", libc::major(rdev), libc::minor(rdev))
        );
        let facts = hardware_facts(&attached, Path::new("/sys"), &IdNames::load());
        assert_eq!(facts.path, device.path().as_bytes());
        assert_eq!(facts.devtype, b"disk");
        assert_eq!(facts.action, attached.action);
        // A virtual device: no bus, so no ids or names.
        assert_eq!((facts.vendor_id.as_str(), facts.model.as_str()), ("", ""));

        drop(device);
        let detached = next_for(&mut reader, &name).expect("a uevent for the detached loop device");
        assert_eq!(detached.action, b"change");
        assert!(detached.seqnum() > attached.seqnum());
        assert_eq!(reader.loss(), LossCounters::default());
    }

    /// A PCI function's facts from the real sysfs, cross-checked with its own files.
    #[test]
    fn live_pci_device_facts_from_sysfs() {
        let Some(entry) = std::fs::read_dir("/sys/bus/pci/devices")
            .ok()
            .and_then(|mut d| d.next())
            .and_then(Result::ok)
        else {
            eprintln!("no PCI devices here");
            return;
        };
        let real = std::fs::canonicalize(entry.path()).unwrap();
        let devpath = real.strip_prefix("/sys").unwrap();
        let mut msg = b"change@/".to_vec();
        msg.extend_from_slice(devpath.as_os_str().as_encoded_bytes());
        msg.extend_from_slice(b"\0SUBSYSTEM=pci\0");
        let e = parse_uevent(&msg, 0).unwrap().unwrap();
        let names = IdNames::load();
        let f = hardware_facts(&e, Path::new("/sys"), &names);
        let read = |n: &str| {
            let v = std::fs::read_to_string(real.join(n)).unwrap();
            v.trim().trim_start_matches("0x").to_owned()
        };
        assert_eq!(f.vendor_id, read("vendor"));
        assert_eq!(f.model_id, read("device"));
        assert_eq!(f.revision, read("revision"));
        if let Some(pci) = &names.pci {
            let v = u16::from_str_radix(&f.vendor_id, 16).unwrap();
            assert_eq!(f.vendor, pci.vendor(v).unwrap_or_default());
        }
        let driver = std::fs::read_link(real.join("driver"))
            .ok()
            .map(|l| l.file_name().unwrap().as_encoded_bytes().to_vec())
            .unwrap_or_default();
        assert_eq!(f.driver, driver);
    }
}
