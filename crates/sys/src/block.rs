//! Block devices as sysfs shows them (`/sys/class/block`), and what their first bytes
//! say: the file system, swap area or container a device holds, with its UUID and label,
//! the way `blkid` names them.
//!
//! Everything is read-only and bounded: a sysfs attribute is at most a page, a device
//! probe reads at most [`PROBE_BYTES`] from the start of the device (non-blocking, through
//! the safe opener, which refuses FIFOs and sockets). A truncated or corrupted attribute
//! or superblock gives `None`, never a panic.

use crate::safe_read::{FileKinds, OverLimit, Policy, SafeFile};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the kernel lists every block device (disks, partitions, loop, dm, md).
pub const SYS_CLASS_BLOCK: &str = "/sys/class/block";
/// Where device nodes live.
pub const DEV: &str = "/dev";

/// Bytes read from the start of a device to probe it: btrfs's superblock ends at
/// 64 KiB + 4 KiB; swap's signature sits at the end of the first page (up to 64 KiB
/// pages); the LUKS2 binary header is 4 KiB.
pub const PROBE_BYTES: usize = 68 * 1024;

/// Longest sysfs attribute kept (the kernel renders at most a page).
const MAX_ATTR: u64 = 4096;

/// The block devices of one sysfs tree and their nodes.
#[derive(Debug, Clone)]
pub struct BlockDevices {
    /// `/sys/class/block`, or a fixture's copy.
    pub class_dir: PathBuf,
    /// `/dev`, or a fixture's directory holding device images named like the devices.
    pub dev_dir: PathBuf,
}

impl Default for BlockDevices {
    fn default() -> Self {
        BlockDevices {
            class_dir: PathBuf::from(SYS_CLASS_BLOCK),
            dev_dir: PathBuf::from(DEV),
        }
    }
}

impl BlockDevices {
    /// Every device's kernel name (`vda`, `vda1`, `dm-0`), sorted; empty when sysfs has
    /// no block class.
    pub fn names(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.class_dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// The device with kernel name `name`, when sysfs lists it. A name with a `/` or
    /// that is `.`/`..` is no device name and gives `None`.
    pub fn device(&self, name: &str) -> Option<BlockDevice> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return None;
        }
        let dir = self.class_dir.join(name);
        dir.exists().then(|| BlockDevice {
            name: name.to_owned(),
            dir,
            node: PathBuf::from(node_path(&self.dev_dir, name)),
        })
    }

    /// The device a node path such as `/dev/vda1` names. Sysfs spells a `/` in a node
    /// name as `!` (`/dev/cciss/c0d0` is `cciss!c0d0`).
    pub fn device_for_node(&self, node: &str) -> Option<BlockDevice> {
        let rest = Path::new(node).strip_prefix(&self.dev_dir).ok()?;
        let name = rest.to_str()?.replace('/', "!");
        self.device(&name)
    }

    /// The node path of a kernel name, as the tables print it (`/dev/vda1`,
    /// `/dev/cciss/c0d0` for `cciss!c0d0`).
    pub fn node_of(&self, name: &str) -> String {
        node_path(&self.dev_dir, name)
    }
}

/// The node of kernel name `name` under `dev_dir` (sysfs's `!` is the node's `/`).
fn node_path(dev_dir: &Path, name: &str) -> String {
    dev_dir
        .join(name.replace('!', "/"))
        .to_string_lossy()
        .into_owned()
}

/// One block device in sysfs.
#[derive(Debug, Clone)]
pub struct BlockDevice {
    /// Kernel name (`vda1`).
    pub name: String,
    /// Its sysfs directory (`/sys/class/block/vda1`).
    pub dir: PathBuf,
    /// Its node (`/dev/vda1`).
    pub node: PathBuf,
}

/// Reads one sysfs attribute, trimmed; `None` when absent, empty or not text.
pub fn read_attr(path: &Path) -> Option<String> {
    let mut text = String::new();
    fs::File::open(path)
        .ok()?
        .take(MAX_ATTR)
        .read_to_string(&mut text)
        .ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl BlockDevice {
    /// An attribute under the device's directory (`size`, `device/model`).
    pub fn attr(&self, rel: &str) -> Option<String> {
        read_attr(&self.dir.join(rel))
    }

    /// Whether this is a partition (sysfs gives partitions a `partition` attribute).
    pub fn is_partition(&self) -> bool {
        self.dir.join("partition").exists()
    }

    /// The kernel name of the disk a partition belongs to: the directory above the
    /// partition's own in the device tree. `None` for whole devices.
    pub fn partition_parent(&self) -> Option<String> {
        if !self.is_partition() {
            return None;
        }
        let real = fs::canonicalize(&self.dir).ok()?;
        let parent = real.parent()?.file_name()?.to_str()?.to_owned();
        Some(parent)
    }

    /// Size in 512-byte sectors (the kernel's unit for `size`, whatever the block size).
    pub fn size_sectors(&self) -> Option<i64> {
        self.attr("size")?.parse().ok()
    }

    /// The logical block size; a partition reports its disk's.
    pub fn logical_block_size(&self) -> Option<i64> {
        let own = self.attr("queue/logical_block_size");
        let value = match own {
            Some(v) => v,
            None => read_attr(&self.dir.join("../queue/logical_block_size"))?,
        };
        value.parse().ok()
    }

    /// The device-mapper UUID (`CRYPT-LUKS2-...`, `LVM-...`), for dm devices.
    pub fn dm_uuid(&self) -> Option<String> {
        self.attr("dm/uuid")
    }

    /// The devices this one is built on (`slaves/`: a dm or md device's members), sorted.
    pub fn slaves(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.dir.join("slaves")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// Reads the first [`PROBE_BYTES`] of the device node (fewer for a smaller device).
    pub fn read_start(&self) -> std::io::Result<Vec<u8>> {
        read_start(&self.node)
    }

    /// What the device holds (see [`probe`]). An empty device (a loop device with no
    /// file, a disconnected network block device, an empty drive) is not opened.
    pub fn signature(&self) -> Option<Signature> {
        if self.size_sectors() == Some(0) {
            return None;
        }
        match self.read_start() {
            Ok(start) => probe(&start),
            Err(e) => {
                log::debug!("cannot read {}: {e}", self.node.display());
                None
            }
        }
    }
}

/// Reads up to [`PROBE_BYTES`] from the start of a device node or image file.
pub fn read_start(path: &Path) -> std::io::Result<Vec<u8>> {
    let policy = Policy {
        limit: PROBE_BYTES as u64,
        over_limit: OverLimit::Truncate,
        kinds: FileKinds::RegularOrDevice,
        follow_symlinks: true,
        open_as: None,
    };
    let mut file = SafeFile::open(path, &policy)?;
    let mut out = Vec::with_capacity(PROBE_BYTES);
    file.read_to_end(&mut out)?;
    Ok(out)
}

/// What a device's first bytes hold, in `blkid`'s terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `ext4`, `swap`, `crypto_LUKS`, `xfs`, `btrfs`.
    pub kind: &'static str,
    pub uuid: Option<String>,
    pub label: Option<String>,
}

fn bytes_at(data: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
    data.get(offset..offset.checked_add(len)?)
}

fn u16_le(data: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes_at(data, offset, 2)?.try_into().ok()?,
    ))
}

fn u32_le(data: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes_at(data, offset, 4)?.try_into().ok()?,
    ))
}

/// A 16-byte binary UUID in its usual text form; `None` when all zero (no UUID).
pub fn format_uuid(raw: &[u8]) -> Option<String> {
    if raw.len() != 16 || raw.iter().all(|&b| b == 0) {
        return None;
    }
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// A NUL-padded text field; `None` when empty.
pub fn c_text(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let text = String::from_utf8_lossy(&raw[..end]).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The LUKS magic (`LUKS\xba\xbe`) that both header versions start with.
pub const LUKS_MAGIC: &[u8] = b"LUKS\xba\xbe";

/// Recognizes the start of a device: LUKS, ext2/3/4, XFS, btrfs or a swap area.
pub fn probe(data: &[u8]) -> Option<Signature> {
    probe_luks(data)
        .or_else(|| probe_ext(data))
        .or_else(|| probe_xfs(data))
        .or_else(|| probe_btrfs(data))
        .or_else(|| probe_swap(data))
}

fn probe_luks(data: &[u8]) -> Option<Signature> {
    if bytes_at(data, 0, 6)? != LUKS_MAGIC {
        return None;
    }
    let version = u16::from_be_bytes(bytes_at(data, 6, 2)?.try_into().ok()?);
    // Both versions keep the UUID as 40 bytes of text at 168; only LUKS2 has a label.
    let uuid = c_text(bytes_at(data, 168, 40)?);
    let label = match version {
        2 => c_text(bytes_at(data, 24, 48)?),
        _ => None,
    };
    Some(Signature {
        kind: "crypto_LUKS",
        uuid,
        label,
    })
}

fn probe_ext(data: &[u8]) -> Option<Signature> {
    const SB: usize = 1024;
    if u16_le(data, SB + 56)? != 0xEF53 {
        return None;
    }
    let compat = u32_le(data, SB + 92)?;
    let incompat = u32_le(data, SB + 96)?;
    let ro_compat = u32_le(data, SB + 100)?;
    // As blkid: features ext3 never had make it ext4; a journal without them, ext3.
    const EXT3_RO_COMPAT: u32 = 0x1 | 0x2 | 0x4;
    const EXT3_INCOMPAT: u32 = 0x2 | 0x4 | 0x10;
    const JOURNAL_DEV: u32 = 0x8;
    if incompat & JOURNAL_DEV != 0 {
        return Some(Signature {
            kind: "jbd",
            uuid: format_uuid(bytes_at(data, SB + 104, 16)?),
            label: c_text(bytes_at(data, SB + 120, 16)?),
        });
    }
    let kind = if ro_compat & !EXT3_RO_COMPAT != 0 || incompat & !EXT3_INCOMPAT != 0 {
        "ext4"
    } else if compat & 0x4 != 0 {
        "ext3"
    } else {
        "ext2"
    };
    Some(Signature {
        kind,
        uuid: format_uuid(bytes_at(data, SB + 104, 16)?),
        label: c_text(bytes_at(data, SB + 120, 16)?),
    })
}

fn probe_xfs(data: &[u8]) -> Option<Signature> {
    if bytes_at(data, 0, 4)? != b"XFSB" {
        return None;
    }
    Some(Signature {
        kind: "xfs",
        uuid: format_uuid(bytes_at(data, 32, 16)?),
        label: c_text(bytes_at(data, 108, 12)?),
    })
}

fn probe_btrfs(data: &[u8]) -> Option<Signature> {
    const SB: usize = 64 * 1024;
    if bytes_at(data, SB + 64, 8)? != b"_BHRfS_M" {
        return None;
    }
    Some(Signature {
        kind: "btrfs",
        uuid: format_uuid(bytes_at(data, SB + 32, 16)?),
        label: c_text(bytes_at(data, SB + 299, 256)?),
    })
}

fn probe_swap(data: &[u8]) -> Option<Signature> {
    // The signature ends the first page, whatever the page size was at mkswap time.
    let page = [4096usize, 8192, 16384, 32768, 65536]
        .into_iter()
        .find(|&page| {
            matches!(
                bytes_at(data, page - 10, 10),
                Some(b"SWAPSPACE2") | Some(b"SWAP-SPACE")
            )
        })?;
    let v2 = bytes_at(data, page - 10, 10)? == b"SWAPSPACE2";
    let (uuid, label) = if v2 {
        (
            format_uuid(bytes_at(data, 1024 + 12, 16)?),
            c_text(bytes_at(data, 1024 + 28, 16)?),
        )
    } else {
        (None, None)
    };
    Some(Signature {
        kind: "swap",
        uuid,
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_and_text_fields() {
        let raw: Vec<u8> = (1..=16).collect();
        assert_eq!(
            format_uuid(&raw).unwrap(),
            "01020304-0506-0708-090a-0b0c0d0e0f10"
        );
        assert_eq!(format_uuid(&[0; 16]), None);
        assert_eq!(format_uuid(&[1; 3]), None);
        assert_eq!(c_text(b"root\0\0\0"), Some("root".into()));
        assert_eq!(c_text(b"\0abc"), None);
    }

    #[test]
    fn truncated_and_garbage_starts_are_none_or_partial() {
        assert_eq!(probe(&[]), None);
        assert_eq!(probe(b"LUKS\xba"), None);
        // The LUKS magic and nothing after it: recognized only when the fields are there.
        assert_eq!(probe(b"LUKS\xba\xbe\x00\x01"), None);
        let mut ext = vec![0u8; 1024 + 58];
        ext[1024 + 56] = 0x53;
        ext[1024 + 57] = 0xEF;
        assert_eq!(probe(&ext), None, "magic without the feature fields");
        let garbage: Vec<u8> = (0..PROBE_BYTES as u32)
            .map(|i| (i * 31 % 253) as u8)
            .collect();
        let _ = probe(&garbage);
    }

    #[test]
    fn fixture_tree_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let class = dir.path().join("class");
        std::fs::create_dir_all(class.join("vdz/queue")).unwrap();
        std::fs::write(class.join("vdz/size"), "2048\n").unwrap();
        std::fs::write(class.join("vdz/queue/logical_block_size"), "4096\n").unwrap();
        std::fs::create_dir_all(class.join("vdz/vdz1")).unwrap();
        std::fs::write(class.join("vdz/vdz1/partition"), "1\n").unwrap();
        std::fs::write(class.join("vdz/vdz1/size"), "12x\n").unwrap();
        std::os::unix::fs::symlink(class.join("vdz/vdz1"), class.join("vdz1")).unwrap();
        let devices = BlockDevices {
            class_dir: class.clone(),
            dev_dir: dir.path().join("dev"),
        };
        assert_eq!(devices.names(), ["vdz", "vdz1"]);
        let disk = devices.device("vdz").unwrap();
        assert_eq!(disk.size_sectors(), Some(2048));
        assert_eq!(disk.partition_parent(), None);
        let part = devices.device("vdz1").unwrap();
        assert_eq!(part.partition_parent().as_deref(), Some("vdz"));
        assert_eq!(part.size_sectors(), None, "corrupted value");
        assert_eq!(part.logical_block_size(), Some(4096));
        assert!(devices.device("..").is_none());
        assert!(devices.device("a/b").is_none());
        let node = devices.node_of("vdz1");
        assert_eq!(devices.device_for_node(&node).unwrap().name, "vdz1");
        std::fs::create_dir_all(class.join("cciss!c0d0")).unwrap();
        let node = devices.node_of("cciss!c0d0");
        assert!(node.ends_with("dev/cciss/c0d0"), "{node}");
        let dev = devices.device_for_node(&node).unwrap();
        assert_eq!(dev.name, "cciss!c0d0");
        assert_eq!(dev.node, dir.path().join("dev/cciss/c0d0"));
        assert!(part.read_start().is_err(), "no node in the fixture");
    }

    /// `blkid -p -o export` of an image file: its `TYPE`, `UUID` and `LABEL`.
    fn blkid(image: &Path) -> Option<(String, Option<String>, Option<String>)> {
        let blkid = oxquery_test_support::require_tool("blkid")?;
        let out = std::process::Command::new(blkid)
            .args(["-p", "-o", "export"])
            .arg(image)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_owned))
        };
        Some((field("TYPE")?, field("UUID"), field("LABEL")))
    }

    fn run(tool: &str, args: &[&str], image: &Path) -> bool {
        let Some(path) = oxquery_test_support::require_tool(tool) else {
            return false;
        };
        let out = std::process::Command::new(path)
            .args(args)
            .arg(image)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        true
    }

    /// Images made by mkfs.ext4/ext2, mkswap and cryptsetup (LUKS1, LUKS2) probe as
    /// blkid probes them.
    #[test]
    fn agrees_with_blkid_on_images() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "passphrase").unwrap();
        let key = key.to_str().unwrap().to_owned();
        let made: Vec<(PathBuf, bool)> = [
            (
                "ext4",
                "mkfs.ext4",
                vec![
                    "-q",
                    "-F",
                    "-L",
                    "oxq-root",
                    "-U",
                    "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
                ],
            ),
            ("ext2", "mkfs.ext2", vec!["-q", "-F"]),
            ("swap", "mkswap", vec!["-L", "oxq-swap"]),
            (
                "luks2",
                "cryptsetup",
                vec![
                    "luksFormat",
                    "--batch-mode",
                    "--type",
                    "luks2",
                    "--pbkdf",
                    "pbkdf2",
                    "--pbkdf-force-iterations",
                    "1000",
                    "--label",
                    "oxq-luks",
                    "--key-file",
                    &key,
                ],
            ),
            (
                "luks1",
                "cryptsetup",
                vec![
                    "luksFormat",
                    "--batch-mode",
                    "--type",
                    "luks1",
                    "--pbkdf-force-iterations",
                    "1000",
                    "--key-file",
                    &key,
                ],
            ),
        ]
        .into_iter()
        .map(|(name, tool, args)| {
            let image = dir.path().join(name);
            // A LUKS2 header takes 16 MiB; sparse, so the size costs nothing.
            std::fs::File::create(&image)
                .unwrap()
                .set_len(20 << 20)
                .unwrap();
            let made = run(tool, &args, &image);
            (image, made)
        })
        .collect();
        let mut compared = 0;
        for (image, made) in made {
            if !made {
                continue;
            }
            let Some((kind, uuid, label)) = blkid(&image) else {
                continue;
            };
            let ours = probe(&read_start(&image).unwrap()).unwrap();
            assert_eq!(ours.kind, kind, "{}", image.display());
            assert_eq!(ours.uuid, uuid, "{}", image.display());
            assert_eq!(ours.label, label, "{}", image.display());
            compared += 1;
        }
        if std::env::var_os("CI").is_some_and(|v| v == "true") {
            assert_eq!(compared, 5);
        }
    }
}
