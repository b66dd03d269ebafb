//! Linux software RAID (md) status: `/proc/mdstat` parsed, and each array's
//! `/sys/block/<md>/md` attributes.
//!
//! `/proc/mdstat` looks like:
//!
//! ```text
//! Personalities : [raid1] [raid6] [raid5] [raid4]
//! md1 : active raid5 sdd[3] sdc[1] sdb[0](F)
//!       1953260544 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [UU_]
//!       [=>..................]  recovery =  8.5% (83120512/976630272) finish=120.3min speed=123456K/sec
//!       bitmap: 1/8 pages [4KB], 65536KB chunk
//!
//! unused devices: <none>
//! ```
//!
//! The parser takes text and never panics: lines that do not fit are skipped.

use std::path::Path;

/// Progress of one resync, recovery, reshape or check.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Progress {
    /// `8.5% (83120512/976630272)`, or a state such as `DELAYED`.
    pub progress: String,
    /// `120.3min`.
    pub finish: String,
    /// `123456K/sec`.
    pub speed: String,
}

/// One member as the array's line lists it: `sdb1[1](F)`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Member {
    /// `sdb1`.
    pub name: String,
    /// The descriptor number in brackets.
    pub number: Option<i64>,
    /// `(F)` faulty, `(S)` spare, `(W)` write-mostly, `(R)` replacement, `(J)` journal.
    pub flags: String,
}

/// One array of `/proc/mdstat`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Array {
    /// `md1`.
    pub name: String,
    /// `active` or `inactive`.
    pub status: String,
    /// `(auto-read-only)` and the like, without the parentheses.
    pub modes: Vec<String>,
    /// `raid5`, `linear`; empty for an inactive array.
    pub personality: String,
    pub members: Vec<Member>,
    /// Usable size in 1 KiB blocks.
    pub blocks: Option<i64>,
    /// The words between the size and the `[n/m]` counts (`super 1.2 level 5, ...`).
    pub other: String,
    /// `[n/m]`: slots in the array and working members.
    pub slots: Option<(i64, i64)>,
    /// `[UU_]`.
    pub member_states: String,
    pub recovery: Option<Progress>,
    pub resync: Option<Progress>,
    pub reshape: Option<Progress>,
    pub check: Option<Progress>,
    /// `bitmap: 1/8 pages [4KB], 65536KB chunk[, file: /path]`.
    pub bitmap_on_mem: Option<String>,
    pub bitmap_chunk_size: Option<String>,
    pub bitmap_external_file: Option<String>,
}

/// `/proc/mdstat`, parsed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MdStat {
    /// `raid1`, `raid5`, ... (the brackets removed).
    pub personalities: Vec<String>,
    pub arrays: Vec<Array>,
    /// What follows `unused devices:` (`<none>` when nothing).
    pub unused: String,
}

/// Reads `path` (at most 1 MiB: mdstat is a few lines per array) and parses it.
pub fn read(path: &Path) -> std::io::Result<MdStat> {
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(path)?
        .take(1 << 20)
        .read_to_end(&mut text)?;
    Ok(parse(&String::from_utf8_lossy(&text)))
}

/// `raid1` → 1, `linear` → -1, as the kernel numbers levels (`mdu_array_info_t.level`).
pub fn level_number(personality: &str) -> Option<i64> {
    match personality {
        "linear" => Some(-1),
        "multipath" => Some(-4),
        "faulty" => Some(-5),
        p => p.strip_prefix("raid")?.parse().ok(),
    }
}

fn parse_member(word: &str) -> Member {
    let (name, rest) = match word.find('[') {
        Some(i) => (&word[..i], &word[i..]),
        None => (word, ""),
    };
    let number = rest
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(n, _)| n.parse().ok());
    let flags: String = rest
        .split('(')
        .skip(1)
        .filter_map(|f| f.strip_suffix(')'))
        .collect();
    Member {
        name: name.to_owned(),
        number,
        flags,
    }
}

/// `8.5% (83120512/976630272) finish=120.3min speed=123456K/sec`, or `DELAYED`.
fn parse_progress(text: &str) -> Progress {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut p = Progress::default();
    let mut progress = Vec::new();
    for w in words {
        if let Some(f) = w.strip_prefix("finish=") {
            p.finish = f.to_owned();
        } else if let Some(s) = w.strip_prefix("speed=") {
            p.speed = s.to_owned();
        } else {
            progress.push(w);
        }
    }
    p.progress = progress.join(" ");
    p
}

/// The text after `key` (`recovery`, ...) followed by `=` with optional spaces, if the
/// line has it.
fn after_key<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    let i = line.find(key)?;
    let rest = line[i + key.len()..].trim_start().strip_prefix('=')?;
    Some(rest.trim())
}

/// Parses `/proc/mdstat` text.
pub fn parse(text: &str) -> MdStat {
    let mut stat = MdStat::default();
    let mut current: Option<Array> = None;
    let mut config_next = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("Personalities :") {
            stat.personalities = rest
                .split_whitespace()
                .filter_map(|p| p.strip_prefix('[')?.strip_suffix(']'))
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("unused devices:") {
            stat.arrays.extend(current.take());
            stat.unused = rest.trim().to_owned();
            continue;
        }
        // An array's first line starts at column 0: `md1 : active raid5 ...`.
        if !line.starts_with([' ', '\t']) {
            let Some((name, rest)) = trimmed.split_once(" : ") else {
                continue;
            };
            stat.arrays.extend(current.take());
            let mut array = Array {
                name: name.trim().to_owned(),
                ..Array::default()
            };
            let mut words = rest.split_whitespace();
            array.status = words.next().unwrap_or("").to_owned();
            for w in words {
                if let Some(mode) = w.strip_prefix('(').and_then(|w| w.strip_suffix(')')) {
                    array.modes.push(mode.to_owned());
                } else if array.personality.is_empty()
                    && !w.contains('[')
                    && array.status == "active"
                {
                    array.personality = w.to_owned();
                } else {
                    array.members.push(parse_member(w));
                }
            }
            current = Some(array);
            config_next = true;
            continue;
        }
        let Some(array) = current.as_mut() else {
            continue;
        };
        if config_next {
            config_next = false;
            let words: Vec<&str> = trimmed.split_whitespace().collect();
            if words.get(1) == Some(&"blocks") {
                array.blocks = words[0].parse().ok();
            }
            // The counts and the state map close an active array's line.
            let n = words.len();
            let counts = words
                .iter()
                .rposition(|w| w.starts_with('[') && w.contains('/') && w.ends_with(']'));
            if let Some(c) = counts {
                array.slots = words[c]
                    .trim_matches(['[', ']'])
                    .split_once('/')
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
                if let Some(states) = words.get(c + 1) {
                    array.member_states = states.to_string();
                }
            }
            let start = if array.blocks.is_some() { 2 } else { 0 };
            let end = counts.unwrap_or(n).max(start);
            array.other = words[start..end].join(" ");
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("bitmap:") {
            let parts: Vec<&str> = rest.split(',').map(str::trim).collect();
            if parts.len() >= 2 {
                array.bitmap_on_mem = Some(parts[0].to_owned());
                array.bitmap_chunk_size = Some(parts[1].to_owned());
                array.bitmap_external_file = Some(
                    parts
                        .get(2)
                        .and_then(|p| p.strip_prefix("file:"))
                        .map(|f| f.trim().to_owned())
                        .unwrap_or_default(),
                );
            }
            continue;
        }
        for (key, slot) in [
            ("recovery", &mut array.recovery),
            ("resync", &mut array.resync),
            ("reshape", &mut array.reshape),
            ("check", &mut array.check),
        ] {
            if let Some(rest) = after_key(trimmed, key) {
                *slot = Some(parse_progress(rest));
                break;
            }
        }
    }
    stat.arrays.extend(current.take());
    stat
}

/// One member of an array as `/sys/block/<md>/md/dev-<name>` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysMember {
    /// `sdb1`.
    pub name: String,
    /// Its role in the array; `None` for a spare or a failed member (`none`).
    pub slot: Option<i64>,
    /// The kernel's comma-separated flags: `in_sync`, `faulty`, `spare`, `write_mostly`.
    pub state: String,
}

/// An array's sysfs attributes (`/sys/block/<md>/md`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SysArray {
    pub level: Option<String>,
    pub raid_disks: Option<i64>,
    /// Bytes.
    pub chunk_size: Option<i64>,
    pub array_state: Option<String>,
    pub metadata_version: Option<String>,
    pub members: Vec<SysMember>,
}

/// Reads `<sys_block>/<name>/md`; `None` when the array has no such directory.
pub fn read_sys(sys_block: &Path, name: &str) -> Option<SysArray> {
    use crate::block::read_attr;
    if name.contains('/') || name == ".." || name == "." {
        return None;
    }
    let md = sys_block.join(name).join("md");
    let entries = std::fs::read_dir(&md).ok()?;
    let mut members: Vec<SysMember> = entries
        .filter_map(|e| {
            let file = e.ok()?.file_name().into_string().ok()?;
            let member = file.strip_prefix("dev-")?.to_owned();
            let dir = md.join(&file);
            Some(SysMember {
                slot: read_attr(&dir.join("slot")).and_then(|s| s.parse().ok()),
                state: read_attr(&dir.join("state")).unwrap_or_default(),
                name: member,
            })
        })
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    let num = |attr: &str| read_attr(&md.join(attr)).and_then(|v| v.parse().ok());
    Some(SysArray {
        level: read_attr(&md.join("level")),
        raid_disks: num("raid_disks"),
        chunk_size: num("chunk_size"),
        array_state: read_attr(&md.join("array_state")),
        metadata_version: read_attr(&md.join("metadata_version")),
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SAMPLE: &str = "\
Personalities : [raid1] [raid6] [raid5] [raid4] [linear]
md1 : active raid5 sdd[3] sdc[1] sdb[0](F)
      1953260544 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [UU_]
      [=>...................]  recovery =  8.5% (83120512/976630272) finish=120.3min speed=123456K/sec
      bitmap: 1/8 pages [4KB], 65536KB chunk

md0 : active (auto-read-only) raid1 sdf1[1] sde1[0]
      976630464 blocks super 1.2 [2/2] [UU]
      \tresync=PENDING

md2 : inactive sdg[0](S)
      1046528 blocks super 1.2

unused devices: <none>
";

    #[test]
    fn parses_arrays() {
        let stat = parse(SAMPLE);
        assert_eq!(
            stat.personalities,
            ["raid1", "raid6", "raid5", "raid4", "linear"]
        );
        assert_eq!(stat.unused, "<none>");
        assert_eq!(stat.arrays.len(), 3);
        let md1 = &stat.arrays[0];
        assert_eq!(md1.name, "md1");
        assert_eq!(md1.status, "active");
        assert_eq!(md1.personality, "raid5");
        assert_eq!(md1.members.len(), 3);
        assert_eq!(md1.members[2].name, "sdb");
        assert_eq!(md1.members[2].number, Some(0));
        assert_eq!(md1.members[2].flags, "F");
        assert_eq!(md1.blocks, Some(1_953_260_544));
        assert_eq!(md1.other, "super 1.2 level 5, 512k chunk, algorithm 2");
        assert_eq!(md1.slots, Some((3, 2)));
        assert_eq!(md1.member_states, "[UU_]");
        let rec = md1.recovery.as_ref().unwrap();
        assert_eq!(rec.progress, "8.5% (83120512/976630272)");
        assert_eq!(rec.finish, "120.3min");
        assert_eq!(rec.speed, "123456K/sec");
        assert_eq!(md1.bitmap_on_mem.as_deref(), Some("1/8 pages [4KB]"));
        assert_eq!(md1.bitmap_chunk_size.as_deref(), Some("65536KB chunk"));
        assert_eq!(md1.bitmap_external_file.as_deref(), Some(""));
        let md0 = &stat.arrays[1];
        assert_eq!(md0.modes, ["auto-read-only"]);
        assert_eq!(md0.personality, "raid1");
        assert_eq!(md0.resync.as_ref().unwrap().progress, "PENDING");
        let md2 = &stat.arrays[2];
        assert_eq!(md2.status, "inactive");
        assert_eq!(md2.personality, "");
        assert_eq!(md2.members[0].flags, "S");
        assert_eq!(md2.slots, None);
        assert_eq!(level_number("raid10"), Some(10));
        assert_eq!(level_number("linear"), Some(-1));
        assert_eq!(level_number("container"), None);
    }

    #[test]
    fn truncated_and_corrupted_text() {
        for cut in 0..SAMPLE.len() {
            if SAMPLE.is_char_boundary(cut) {
                let _ = parse(&SAMPLE[..cut]);
            }
        }
        let _ = parse("md0 : \n [/] []\n recovery =\n bitmap: ,\n md : x y[[[]]((\n");
        let garbage: String = (0..50_000u32)
            .map(|i| char::from(b' ' + (i * 37 % 95) as u8))
            .collect();
        let _ = parse(&garbage);
        assert!(parse("").arrays.is_empty());
    }
}
