//! `smart_drive_info`: identity and SMART state of ATA drives, from the drive's own
//! IDENTIFY DEVICE data.
//!
//! osquery 3.3.2 filled this table through libsmartctl (smartmontools' `smartctl -i`).
//! Here each whole disk of `/sys/block` with a non-zero size is asked for its 512-byte
//! IDENTIFY DEVICE data with an ATA PASS-THROUGH (16) command over the SCSI generic
//! `SG_IO` ioctl (what smartctl does for SATA disks behind the kernel's SCSI layer), and
//! the columns are decoded from it as `smartctl -i` prints them: model, serial,
//! firmware, WWN, capacity (`500,107,862,016 bytes [500 GB]`), sector sizes, rotation
//! rate, form factor, ATA and SATA versions, SMART support and enablement.
//!
//! What differs from osquery: `model_family` and `in_smartctl_db` come from smartctl's
//! drive database, which is not read here (NULL); `ata_version` names the major version
//! only (`ACS-3`, without smartctl's minor-revision text); `power_mode`, `warnings`,
//! `disk_id` and `driver_type` (RAID controller pass-through) are NULL; partitions are
//! not asked again (osquery repeated each disk's row for its partitions). Disks that do
//! not speak ATA through SG_IO (virtio, NVMe, USB bridges that refuse pass-through)
//! give no row and a verbose log saying so, as does a host without such disks.

use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

table! {
    name: "smart_drive_info",
    description: "Drive identity and SMART state of ATA/SATA disks from their IDENTIFY DEVICE data (ATA pass-through over SG_IO), decoded as smartctl -i prints it.",
    columns: {
        device_name: Text [INDEX] "Block device asked, e.g. /dev/sda",
        disk_id: Integer [] "Disk number behind a RAID controller; NULL (controllers are not asked)",
        driver_type: Text [] "RAID controller driver used to reach the disk; NULL (controllers are not asked)",
        model_family: Text [] "Drive family from smartctl's drive database; NULL (the database is not read)",
        device_model: Text [] "Model number the drive reports",
        serial_number: Text [] "Serial number the drive reports",
        lu_wwn_device_id: Text [] "World wide name: NAA, OUI and vendor ID in hex, as smartctl prints it (5 0014ee 2b1c2d3e4)",
        additional_product_id: Text [] "Additional product identifier (IDENTIFY words 170-173), when set",
        firmware_version: Text [] "Firmware revision the drive reports",
        user_capacity: Text [] "Capacity as smartctl prints it: bytes with thousands separators and the SI size",
        sector_sizes: Text [] "Logical and physical sector sizes (512 bytes logical, 4096 bytes physical)",
        rotation_rate: Text [] "Nominal rotation rate (7200 rpm) or Solid State Device; NULL when not reported",
        form_factor: Text [] "Nominal form factor (2.5 inches, M.2, ...); NULL when not reported",
        in_smartctl_db: Integer [] "1 if smartctl's drive database knows the drive; NULL (the database is not read)",
        ata_version: Text [] "Newest ATA standard the drive supports (ATA8-ACS, ACS-2, ACS-3, ...)",
        transport_type: Text [] "Transport (Serial or Parallel) for drives that report no SATA version",
        sata_version: Text [] "SATA version and link speeds, e.g. SATA 3.2, 6.0 Gb/s (current: 6.0 Gb/s)",
        read_device_identity_failure: Text [] "Why the IDENTIFY data could not be used; NULL when it was",
        smart_supported: Text [] "SMART support as smartctl states it (Available - device has SMART capability.)",
        smart_enabled: Text [] "Enabled or Disabled",
        packet_device_type: Text [] "Device type of an ATAPI (packet) device, e.g. CD/DVD",
        power_mode: Text [] "Power mode; NULL (CHECK POWER MODE is not sent)",
        warnings: Text [] "Warnings from smartctl's drive database; NULL",
    },
    examples: ["select device_name, device_model, serial_number, smart_enabled from smart_drive_info"],
}

const SYS_BLOCK: &str = "/sys/block";

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let wanted = ctx.eq_texts(Col::device_name);
    let mut disks = whole_disks(Path::new(SYS_BLOCK));
    if let Some(wanted) = &wanted {
        disks.retain(|d| wanted.iter().any(|w| w == d));
    }
    let mut found = 0;
    for device in &disks {
        ctx.check()?;
        match ata_identify(Path::new(device)) {
            Ok(data) => match Identify::parse(&data) {
                Ok(id) => {
                    found += 1;
                    add_row(rows, device, &id);
                }
                Err(why) => {
                    log::info!("Table smart_drive_info: {device}: unusable IDENTIFY data: {why}")
                }
            },
            Err(why) => log::info!("Table smart_drive_info: {device}: no ATA IDENTIFY data: {why}"),
        }
    }
    if found == 0 {
        log::info!(
            "Table smart_drive_info: none of {} disks answers ATA IDENTIFY DEVICE (no SMART-capable ATA drive)",
            disks.len()
        );
    }
    Ok(())
}

/// `/dev/<name>` of each entry of `/sys/block` whose size is not 0, sorted.
fn whole_disks(sys_block: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(sys_block) else {
        return Vec::new();
    };
    let mut disks: Vec<String> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let size = std::fs::read_to_string(sys_block.join(&name).join("size")).ok()?;
            (size.trim() != "0").then(|| format!("/dev/{name}"))
        })
        .collect();
    disks.sort();
    disks
}

/// Linux's `struct sg_io_hdr` (scsi/sg.h).
#[repr(C)]
struct SgIoHdr {
    interface_id: libc::c_int,
    dxfer_direction: libc::c_int,
    cmd_len: libc::c_uchar,
    mx_sb_len: libc::c_uchar,
    iovec_count: libc::c_ushort,
    dxfer_len: libc::c_uint,
    dxferp: *mut libc::c_void,
    cmdp: *const libc::c_uchar,
    sbp: *mut libc::c_uchar,
    timeout: libc::c_uint,
    flags: libc::c_uint,
    pack_id: libc::c_int,
    usr_ptr: *mut libc::c_void,
    status: libc::c_uchar,
    masked_status: libc::c_uchar,
    msg_status: libc::c_uchar,
    sb_len_wr: libc::c_uchar,
    host_status: libc::c_ushort,
    driver_status: libc::c_ushort,
    resid: libc::c_int,
    duration: libc::c_uint,
    info: libc::c_uint,
}

const SG_IO: libc::c_ulong = 0x2285;
const SG_DXFER_FROM_DEV: libc::c_int = -3;

/// The IDENTIFY DEVICE data of `device`, through ATA PASS-THROUGH (16).
fn ata_identify(device: &Path) -> Result<[u8; 512], String> {
    // A kernel device node, not a file users control; O_NONBLOCK so that opening a
    // drive without media does not wait.
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(device)
        .map_err(|e| format!("cannot open ({e})"))?;
    let mut data = [0u8; 512];
    let mut sense = [0u8; 32];
    // Protocol 4 (PIO data-in), data from the device counted in sectors of the
    // sector count field (1), command 0xEC (IDENTIFY DEVICE).
    let cdb: [u8; 16] = [0x85, 4 << 1, 0x0e, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xec, 0];
    let mut hdr = SgIoHdr {
        interface_id: i32::from(b'S'),
        dxfer_direction: SG_DXFER_FROM_DEV,
        cmd_len: cdb.len() as u8,
        mx_sb_len: sense.len() as u8,
        iovec_count: 0,
        dxfer_len: data.len() as u32,
        dxferp: data.as_mut_ptr().cast(),
        cmdp: cdb.as_ptr(),
        sbp: sense.as_mut_ptr(),
        timeout: 5000,
        flags: 0,
        pack_id: 0,
        usr_ptr: std::ptr::null_mut(),
        status: 0,
        masked_status: 0,
        msg_status: 0,
        sb_len_wr: 0,
        host_status: 0,
        driver_status: 0,
        resid: 0,
        duration: 0,
        info: 0,
    };
    // SAFETY: the header points at buffers that live across the call, with their sizes.
    let ret = unsafe { libc::ioctl(dev.as_raw_fd(), SG_IO, &mut hdr as *mut SgIoHdr) };
    if ret == -1 {
        return Err(format!(
            "SG_IO refused ({}): not a SCSI/ATA device",
            std::io::Error::last_os_error()
        ));
    }
    if hdr.status != 0 || hdr.host_status != 0 || (hdr.driver_status & 0x0f) != 0 {
        return Err(format!(
            "ATA pass-through failed (status {}, host {}, driver {})",
            hdr.status, hdr.host_status, hdr.driver_status
        ));
    }
    Ok(data)
}

/// What IDENTIFY DEVICE data says, decoded as `smartctl -i` prints it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Identify {
    model: String,
    serial: String,
    firmware: String,
    wwn: Option<String>,
    additional_product_id: Option<String>,
    capacity: Option<String>,
    sector_sizes: Option<String>,
    rotation_rate: Option<String>,
    form_factor: Option<String>,
    ata_version: Option<String>,
    transport: Option<String>,
    sata_version: Option<String>,
    smart_supported: String,
    smart_enabled: String,
    packet_device_type: Option<String>,
}

impl Identify {
    /// Decodes the 256 little-endian words of IDENTIFY (PACKET) DEVICE data.
    fn parse(data: &[u8]) -> Result<Identify, String> {
        if data.len() < 512 {
            return Err(format!("{} bytes, 512 expected", data.len()));
        }
        let w = |i: usize| u16::from_le_bytes([data[2 * i], data[2 * i + 1]]);
        if (0..256).all(|i| w(i) == 0) {
            return Err("all zero".to_owned());
        }
        // Word 255: 0xA5 signature, then a checksum making all bytes sum to zero.
        if data[510] == 0xa5 && data.iter().take(512).fold(0u8, |a, b| a.wrapping_add(*b)) != 0 {
            return Err("checksum mismatch".to_owned());
        }
        // A word is valid when it is neither 0 nor 0xFFFF (smartctl's test).
        let valid = |v: u16| v != 0 && v != 0xffff;
        let packet = w(0) & 0x8000 != 0;

        let mut id = Identify {
            model: ata_string(data, 27, 20),
            serial: ata_string(data, 10, 10),
            firmware: ata_string(data, 23, 4),
            ..Identify::default()
        };
        // WWN (words 108-111) when word 87 (or 84) says it is supported.
        let wwn_ok = (w(87) & 0xc000 == 0x4000 && w(87) & 0x100 != 0)
            || (w(84) & 0xc000 == 0x4000 && w(84) & 0x100 != 0);
        if wwn_ok {
            let wwn = (u64::from(w(108)) << 48)
                | (u64::from(w(109)) << 32)
                | (u64::from(w(110)) << 16)
                | u64::from(w(111));
            id.wwn = Some(format!(
                "{:x} {:06x} {:09x}",
                wwn >> 60,
                (wwn >> 36) & 0xff_ffff,
                wwn & 0xf_ffff_ffff
            ));
        }
        let product = ata_string(data, 170, 4);
        if !product.is_empty() {
            id.additional_product_id = Some(product);
        }
        if !packet {
            // Sector sizes (word 106 valid when bits 15:14 are 01).
            let w106 = w(106);
            let mut logical: u64 = 512;
            let mut physical: u64 = 512;
            if w106 & 0xc000 == 0x4000 {
                if w106 & 0x1000 != 0 {
                    let words = u64::from(w(117)) | u64::from(w(118)) << 16;
                    if words >= 256 {
                        logical = words * 2;
                    }
                }
                if w106 & 0x2000 != 0 {
                    physical = logical << (w106 & 0x0f).min(15);
                } else {
                    physical = logical;
                }
            }
            id.sector_sizes = Some(if logical == physical {
                format!("{logical} bytes logical/physical")
            } else {
                format!("{logical} bytes logical, {physical} bytes physical")
            });
            // Capacity: 48-bit LBA count (words 100-103) when supported, else 60-61.
            let lba28 = u64::from(w(60)) | u64::from(w(61)) << 16;
            let lba48 = (0..4).fold(0u64, |a, i| a | u64::from(w(100 + i)) << (16 * i));
            let sectors = if w(83) & 0xc000 == 0x4000 && w(83) & 0x0400 != 0 && lba48 != 0 {
                lba48
            } else {
                lba28
            };
            if sectors > 0 {
                id.capacity = Some(capacity_text(sectors.saturating_mul(logical)));
            }
        }
        id.rotation_rate = match w(217) {
            1 => Some("Solid State Device".to_owned()),
            r @ 0x0401..=0xfffe => Some(format!("{r} rpm")),
            _ => None,
        };
        id.form_factor = match w(168) & 0x0f {
            1 => Some("5.25 inches"),
            2 => Some("3.5 inches"),
            3 => Some("2.5 inches"),
            4 => Some("1.8 inches"),
            5 => Some("< 1.8 inches"),
            6 => Some("mSATA"),
            7 => Some("M.2"),
            8 => Some("MicroSSD"),
            9 => Some("CFast"),
            _ => None,
        }
        .map(str::to_owned);
        let major = w(80);
        if valid(major) {
            const NAMES: [&str; 16] = [
                "",
                "ATA-1",
                "ATA-2",
                "ATA-3",
                "ATA/ATAPI-4",
                "ATA/ATAPI-5",
                "ATA/ATAPI-6",
                "ATA/ATAPI-7",
                "ATA8-ACS",
                "ACS-2",
                "ACS-3",
                "ACS-4",
                "ACS-5",
                "ACS-6",
                "ACS-7",
                "",
            ];
            let top = (1..15).rev().find(|b| major & (1 << b) != 0);
            id.ata_version = top.map(|b| NAMES[b].to_owned());
        }
        let w222 = w(222);
        if valid(w222) {
            let kind = w222 >> 12;
            let versions = w222 & 0x07ff;
            if kind == 1 && versions != 0 {
                const SATA: [&str; 11] = [
                    "ATA8-AST",
                    "SATA 1.0a",
                    "SATA II Ext",
                    "SATA 2.5",
                    "SATA 2.6",
                    "SATA 3.0",
                    "SATA 3.1",
                    "SATA 3.2",
                    "SATA 3.3",
                    "SATA 3.4",
                    "SATA 3.5",
                ];
                let top = (0..11)
                    .rev()
                    .find(|b| versions & (1 << b) != 0)
                    .unwrap_or(0);
                let mut text = SATA[top].to_owned();
                let speed = |code: u16| match code {
                    1 => Some("1.5 Gb/s"),
                    2 => Some("3.0 Gb/s"),
                    3 => Some("6.0 Gb/s"),
                    _ => None,
                };
                let w76 = w(76);
                if valid(w76) {
                    let max = (1..=3).rev().find(|b| w76 & (1 << b) != 0);
                    if let Some(max) = max.and_then(speed) {
                        text.push_str(", ");
                        text.push_str(max);
                    }
                    if let Some(current) = speed((w(77) >> 1) & 0x7) {
                        text.push_str(&format!(" (current: {current})"));
                    }
                }
                id.sata_version = Some(text);
            } else {
                id.transport = Some(if kind == 1 { "Serial" } else { "Parallel" }.to_owned());
            }
        }
        // SMART: word 82 bit 0 (supported), word 85 bit 0 (enabled).
        let supported = valid(w(82)) && w(82) & 1 != 0;
        id.smart_supported = if supported {
            "Available - device has SMART capability."
        } else {
            "Unavailable - device lacks SMART capability."
        }
        .to_owned();
        id.smart_enabled = if supported && valid(w(85)) && w(85) & 1 != 0 {
            "Enabled"
        } else {
            "Disabled"
        }
        .to_owned();
        if packet {
            id.packet_device_type = Some(
                match (w(0) >> 8) & 0x1f {
                    0x00 => "Direct-access device",
                    0x01 => "Sequential-access device",
                    0x05 => "CD/DVD",
                    0x07 => "Optical memory device",
                    _ => "Unknown",
                }
                .to_owned(),
            );
        }
        Ok(id)
    }
}

/// An ATA string: `words` words from word `first`, each word's two bytes swapped, outer
/// spaces trimmed; bytes outside printable ASCII become `?`.
fn ata_string(data: &[u8], first: usize, words: usize) -> String {
    let mut out = String::with_capacity(words * 2);
    for i in first..first + words {
        for b in [data[2 * i + 1], data[2 * i]] {
            out.push(if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            });
        }
    }
    out.trim_matches(|c| c == ' ' || c == '?').to_owned()
}

/// smartctl's capacity: `500,107,862,016 bytes [500 GB]` (three significant digits).
fn capacity_text(bytes: u64) -> String {
    let digits = bytes.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut unit = 0;
    let mut scale: u64 = 1;
    while unit + 1 < UNITS.len() && bytes / scale >= 1000 {
        scale *= 1000;
        unit += 1;
    }
    let value = bytes as f64 / scale as f64;
    let human = if unit == 0 || value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    format!("{grouped} bytes [{human} {}]", UNITS[unit])
}

fn add_row(rows: &mut Rows, device: &str, id: &Identify) {
    let mut row = rows.row();
    row.set(Col::device_name, device);
    row.set(Col::device_model, id.model.as_str());
    row.set(Col::serial_number, id.serial.as_str());
    row.set(Col::lu_wwn_device_id, id.wwn.clone());
    row.set(Col::additional_product_id, id.additional_product_id.clone());
    row.set(Col::firmware_version, id.firmware.as_str());
    row.set(Col::user_capacity, id.capacity.clone());
    row.set(Col::sector_sizes, id.sector_sizes.clone());
    row.set(Col::rotation_rate, id.rotation_rate.clone());
    row.set(Col::form_factor, id.form_factor.clone());
    row.set(Col::ata_version, id.ata_version.clone());
    row.set(Col::transport_type, id.transport.clone());
    row.set(Col::sata_version, id.sata_version.clone());
    row.set(Col::smart_supported, id.smart_supported.as_str());
    row.set(Col::smart_enabled, id.smart_enabled.as_str());
    row.set(Col::packet_device_type, id.packet_device_type.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// IDENTIFY DEVICE data of an invented SATA SSD, as a drive would send it.
    fn fixture() -> [u8; 512] {
        let mut words = [0u16; 256];
        let mut put_str = |first: usize, len: usize, s: &str| {
            let mut bytes = s.as_bytes().to_vec();
            bytes.resize(len * 2, b' ');
            for i in 0..len {
                words[first + i] = u16::from(bytes[2 * i]) << 8 | u16::from(bytes[2 * i + 1]);
            }
        };
        put_str(10, 10, "  S3Z9NB0K123456X");
        put_str(23, 4, "RVT04B6Q");
        put_str(27, 20, "Samsung SSD 860 EVO 500GB");
        words[0] = 0x0040;
        words[49] = 0x0200; // LBA supported
        words[60] = 0xffff;
        words[61] = 0x0fff;
        words[76] = 0x000e; // 1.5, 3.0 and 6.0 Gb/s
        words[77] = 0x0006; // current: 6.0 Gb/s
        words[80] = 0x07f0; // ATA/ATAPI-4 .. ACS-3
        words[82] = 0x746b; // SMART supported
        words[83] = 0x7d69; // 48-bit addresses
        words[84] = 0x6163; // WWN supported
        words[85] = 0x7469; // SMART enabled
        words[86] = 0xbc41;
        words[87] = 0x6163;
        let sectors: u64 = 976_773_168;
        for i in 0..4 {
            words[100 + i] = (sectors >> (16 * i)) as u16;
        }
        words[106] = 0x6003; // 8 logical sectors per physical sector
        words[108] = 0x5002;
        words[109] = 0x538e;
        words[110] = 0x4011;
        words[111] = 0x2233;
        words[168] = 0x0003; // 2.5 inches
        words[217] = 0x0001; // solid state
        words[222] = 0x103f; // Serial, ATA8-AST .. SATA 3.0
        let mut data = [0u8; 512];
        for (i, w) in words.iter().enumerate() {
            data[2 * i..2 * i + 2].copy_from_slice(&w.to_le_bytes());
        }
        data[510] = 0xa5;
        let sum = data[..511].iter().fold(0u8, |a, b| a.wrapping_add(*b));
        data[511] = 0u8.wrapping_sub(sum);
        data
    }

    /// What `hdparm --Istdin` (an independent decoder of IDENTIFY data) prints.
    fn hdparm(tool: &Path, data: &[u8]) -> String {
        let words: Vec<String> = data
            .chunks(2)
            .map(|c| format!("{:04x}", u16::from_le_bytes([c[0], c[1]])))
            .collect();
        let text: String = words.chunks(8).map(|l| l.join(" ") + "\n").collect();
        let mut child = Command::new(tool)
            .arg("--Istdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn field<'a>(text: &'a str, label: &str) -> &'a str {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("{label} in {text}"))
            .trim()
    }

    #[test]
    fn fixture_decodes_as_hdparm_says() {
        let Some(tool) = oxquery_test_support::require_tool("hdparm") else {
            return;
        };
        let data = fixture();
        let id = Identify::parse(&data).unwrap();
        let h = hdparm(&tool, &data);
        assert_eq!(id.model, field(&h, "Model Number:"));
        assert_eq!(id.serial, field(&h, "Serial Number:"));
        assert_eq!(id.firmware, field(&h, "Firmware Revision:"));
        let sectors: u64 = field(&h, "LBA48  user addressable sectors:")
            .parse()
            .unwrap();
        let logical: u64 = field(&h, "Logical  Sector size:")
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let physical: u64 = field(&h, "Physical Sector size:")
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            id.sector_sizes.as_deref(),
            Some(format!("{logical} bytes logical, {physical} bytes physical").as_str())
        );
        assert!(
            id.capacity
                .as_deref()
                .unwrap()
                .starts_with(&capacity_text(sectors * logical))
        );
        assert_eq!(
            id.capacity.as_deref(),
            Some("500,107,862,016 bytes [500 GB]")
        );
        assert!(h.contains("Solid State Device"), "{h}");
        assert_eq!(id.rotation_rate.as_deref(), Some("Solid State Device"));
        assert_eq!(id.form_factor.as_deref(), Some("2.5 inches"));
        assert!(field(&h, "Form Factor:").starts_with("2.5 inch"));
        let wwn = field(&h, "Logical Unit WWN Device Identifier:");
        assert_eq!(id.wwn.as_deref().unwrap().replace(' ', ""), wwn);
        assert_eq!(id.wwn.as_deref(), Some("5 002538 e40112233"));
        // hdparm marks enabled features with '*'.
        let smart = h.lines().find(|l| l.contains("SMART feature set")).unwrap();
        assert!(smart.trim_start().starts_with('*'), "{smart}");
        assert_eq!(
            id.smart_supported,
            "Available - device has SMART capability."
        );
        assert_eq!(id.smart_enabled, "Enabled");
        // hdparm lists the supported major versions by number, newest first: 10 is ACS-3.
        let newest = field(&h, "Supported:").split_whitespace().next().unwrap();
        assert_eq!(newest, "10");
        assert_eq!(id.ata_version.as_deref(), Some("ACS-3"));
        assert_eq!(
            id.sata_version.as_deref(),
            Some("SATA 3.0, 6.0 Gb/s (current: 6.0 Gb/s)")
        );
        let transport = field(&h, "Transport:");
        assert!(transport.starts_with("Serial, ATA8-AST"), "{transport}");
        assert!(transport.ends_with("SATA Rev 3.0"), "{transport}");
    }

    #[test]
    fn smart_off_rotating_disk_and_packet_device() {
        let mut data = fixture();
        let set = |data: &mut [u8; 512], word: usize, v: u16| {
            data[2 * word..2 * word + 2].copy_from_slice(&v.to_le_bytes());
        };
        set(&mut data, 85, 0x7468);
        set(&mut data, 217, 7200);
        set(&mut data, 106, 0x4000);
        data[510] = 0; // no checksum signature
        let id = Identify::parse(&data).unwrap();
        assert_eq!(id.smart_enabled, "Disabled");
        assert_eq!(id.rotation_rate.as_deref(), Some("7200 rpm"));
        assert_eq!(
            id.sector_sizes.as_deref(),
            Some("512 bytes logical/physical")
        );
        set(&mut data, 0, 0x85c0);
        let id = Identify::parse(&data).unwrap();
        assert_eq!(id.packet_device_type.as_deref(), Some("CD/DVD"));
        assert_eq!(id.capacity, None);
    }

    #[test]
    fn capacities_print_as_smartctl() {
        assert_eq!(
            capacity_text(1_000_204_886_016),
            "1,000,204,886,016 bytes [1.00 TB]"
        );
        assert_eq!(
            capacity_text(32_017_047_552),
            "32,017,047,552 bytes [32.0 GB]"
        );
        assert_eq!(capacity_text(512), "512 bytes [512 B]");
    }

    #[test]
    fn damaged_data_is_an_error_or_a_row_never_a_panic() {
        let data = fixture();
        for len in 0..512 {
            assert!(Identify::parse(&data[..len]).is_err());
        }
        assert!(Identify::parse(&[0u8; 512]).is_err());
        // A bad checksum is refused.
        let mut bad = data;
        bad[100] ^= 1;
        assert!(Identify::parse(&bad).is_err());
        // Any word set to anything, signature off: decodes without panicking.
        for word in 0..255 {
            for v in [0u16, 0xffff, 0x8000, 0x4fff, 0x1234] {
                let mut d = data;
                d[510] = 0;
                d[2 * word..2 * word + 2].copy_from_slice(&v.to_le_bytes());
                let _ = Identify::parse(&d);
            }
        }
        assert!(Identify::parse(&[0xff; 512]).is_ok());
    }

    /// The host: every whole disk is asked; only ATA disks give rows. This VM's virtio
    /// disk refuses SG_IO, so it gives none, and the log says why.
    #[test]
    fn host_disks_without_ata_give_no_rows_and_say_why() {
        let (rows, logged) = crate::common::testing::capture_log(|| {
            crate::testing::scan_everything(&SPEC, generate)
                .iter()
                .map(<[oxquery_table::Value]>::to_vec)
                .collect::<Vec<_>>()
        });
        let disks = whole_disks(Path::new(SYS_BLOCK));
        for row in &rows {
            let name = crate::testing::text(&row[Col::device_name as usize]);
            assert!(disks.contains(&name), "{name} not in {disks:?}");
        }
        if rows.is_empty() {
            assert!(
                logged
                    .iter()
                    .any(|(l, m)| *l == log::Level::Info && m.contains("smart_drive_info"))
            );
        }
        // A drive that answered: hdparm -I asks it again, independently.
        if !rows.is_empty() {
            let tool = oxquery_test_support::require_tool("hdparm").expect("hdparm");
            for row in &rows {
                let device = crate::testing::text(&row[Col::device_name as usize]);
                let h = crate::testing::tool_stdout(tool.to_str().unwrap(), &["-I", &device]);
                let model = crate::testing::text(&row[Col::device_model as usize]);
                assert_eq!(model, field(&h, "Model Number:"), "{device}");
                let serial = crate::testing::text(&row[Col::serial_number as usize]);
                assert_eq!(serial, field(&h, "Serial Number:"), "{device}");
            }
        }
        let virtio: Vec<_> = disks.iter().filter(|d| d.starts_with("/dev/vd")).collect();
        for d in virtio {
            assert!(
                !rows
                    .iter()
                    .any(|r| crate::testing::text(&r[Col::device_name as usize]) == *d)
            );
        }
    }
}
