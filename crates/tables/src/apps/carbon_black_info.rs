//! `carbon_black_info`: the Carbon Black EDR sensor's settings and queue sizes, from its
//! state directory `/var/lib/cb`.
//!
//! As osquery on Linux: `sensor.id` (16 bytes; the hex digits from offset 11 are the
//! sensor id), `[CB]` keys of `sensorsettings.ini` (`%20` and `%3A` unescaped in the
//! config name and server), and the sizes of the queued files below the directory
//! (`filedata`/`metadata`: binaries; `events*`: events). Columns the Linux sensor does
//! not record are 0, and `sensor_ip_addr` '' (osquery's values).
//!
//! Differences, on purpose: without `/var/lib/cb` there is no sensor and no row (osquery
//! returns one row of NULLs); `collect_processes` is the file's value (osquery reads it,
//! then overwrites it with 0); a setting that is not a number is NULL, a missing one -1
//! (osquery's default).

use crate::common;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::collections::HashMap;
use std::path::Path;

table! {
    name: "carbon_black_info",
    description: "The Carbon Black EDR sensor's id, settings and queue sizes, one row when /var/lib/cb exists (no rows without a sensor).",
    columns: {
        sensor_id: Integer [] "Sensor id (from the last hex digits of /var/lib/cb/sensor.id)",
        config_name: Text [] "Name of the sensor's configuration (ConfigName)",
        collect_store_files: Integer [] "Whether binaries are sent to the server (CollectStoreFiles)",
        collect_module_loads: Integer [] "Whether module loads are collected (CollectModuleLoads)",
        collect_module_info: Integer [] "Whether module information is collected (CollectModuleInfo)",
        collect_file_mods: Integer [] "Whether file modifications are collected (CollectFileMods)",
        collect_reg_mods: Integer [] "Whether registry modifications are collected (CollectRegMods; Windows)",
        collect_net_conns: Integer [] "Whether network connections are collected (CollectNetConns)",
        collect_processes: Integer [] "Whether process events are collected (CollectProcesses)",
        collect_cross_processes: Integer [] "Whether cross-process events are collected (CollectCrossProcess)",
        collect_emet_events: Integer [] "Whether EMET events are collected (CollectEmetEvents; Windows)",
        collect_data_file_writes: Integer [] "Whether data file writes are collected; 0 on Linux",
        collect_process_user_context: Integer [] "Whether process user context is collected; 0 on Linux",
        collect_sensor_operations: Integer [] "Whether sensor operations are collected; 0 on Linux",
        log_file_disk_quota_mb: Integer [] "Event log disk quota in MB; 0 on Linux",
        log_file_disk_quota_percentage: Integer [] "Event log disk quota in percent; 0 on Linux",
        protection_disabled: Integer [] "Whether protection is disabled; 0 on Linux",
        sensor_ip_addr: Text [] "Sensor IP address; '' on Linux",
        sensor_backend_server: Text [] "Server the sensor reports to (SensorBackendServer)",
        event_queue: Integer [] "Bytes of event files waiting to be sent (events*)",
        binary_queue: Integer [] "Bytes of binaries waiting to be sent (filedata, metadata)",
    },
    aliases: ["cb_info"],
    examples: ["select sensor_id, config_name, sensor_backend_server from carbon_black_info"],
}

/// The sensor's state directory.
const CB_DIR: &str = "/var/lib/cb";

/// How deep the queue walk goes below the state directory.
const MAX_DEPTH: usize = 16;

/// The sensor id from the content of `sensor.id`: 16 bytes, of which the hex digits
/// from offset 11 are read (as osquery's `std::hex` extraction: the leading run of hex
/// digits); `None` for any other length or no digits there.
fn sensor_id(content: &[u8]) -> Option<i64> {
    if content.len() != 16 {
        return None;
    }
    let digits: Vec<u8> = content[11..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_hexdigit)
        .collect();
    let text = std::str::from_utf8(&digits).ok()?;
    u32::from_str_radix(text, 16).ok().map(i64::from)
}

/// The `key = value` pairs of an INI file's `[CB]` section (keys as written, values
/// trimmed; `;` and `#` lines are comments).
fn cb_section(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut in_cb = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_cb = section.trim() == "CB";
            continue;
        }
        if in_cb && let Some((k, v)) = line.split_once('=') {
            out.entry(k.trim().to_owned())
                .or_insert_with(|| v.trim().to_owned());
        }
    }
    out
}

/// (event bytes, binary bytes) of the files below `dir` (links not followed).
fn queue_sizes(dir: &Path) -> (u64, u64) {
    let mut events = 0u64;
    let mut binaries = 0u64;
    let mut stack = vec![(dir.to_owned(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let name = entry.file_name();
            let name = name.as_encoded_bytes();
            if meta.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((entry.path(), depth + 1));
                }
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            if name == b"filedata" || name == b"metadata" {
                binaries += meta.len();
            }
            // boost's stem: the name up to its last dot (a leading dot is part of it).
            let stem = match name.iter().rposition(|&b| b == b'.') {
                Some(i) if i > 0 => &name[..i],
                _ => name,
            };
            if stem == b"events" {
                events += meta.len();
            }
        }
    }
    (events, binaries)
}

fn generate_in(ctx: &QueryContext, dir: &Path, rows: &mut Rows) {
    if !dir.is_dir() {
        log::info!(
            "Table carbon_black_info: no Carbon Black sensor ({} does not exist)",
            dir.display()
        );
        return;
    }
    let policy = common::user_file_policy(ctx);
    let id = common::read_file(ctx, &dir.join("sensor.id"), &policy);
    let settings = common::read_file(ctx, &dir.join("sensorsettings.ini"), &policy)
        .map(|b| cb_section(&String::from_utf8_lossy(&b)));
    let (events, binaries) = queue_sizes(dir);
    let mut row = rows.row();
    row.set(Col::sensor_id, id.as_deref().and_then(sensor_id));
    if let Some(s) = settings {
        let text = |key: &str| s.get(key).cloned().unwrap_or_default();
        let int = |key: &str| match s.get(key) {
            Some(v) => v.parse::<i64>().ok(),
            None => Some(-1),
        };
        row.set(Col::config_name, text("ConfigName").replace("%20", " "));
        row.set(Col::collect_store_files, int("CollectStoreFiles"));
        row.set(Col::collect_module_loads, int("CollectModuleLoads"));
        row.set(Col::collect_module_info, int("CollectModuleInfo"));
        row.set(Col::collect_file_mods, int("CollectFileMods"));
        row.set(Col::collect_reg_mods, int("CollectRegMods"));
        row.set(Col::collect_net_conns, int("CollectNetConns"));
        row.set(Col::collect_processes, int("CollectProcesses"));
        row.set(Col::collect_cross_processes, int("CollectCrossProcess"));
        row.set(Col::collect_emet_events, int("CollectEmetEvents"));
        row.set(
            Col::sensor_backend_server,
            text("SensorBackendServer").replace("%3A", ":"),
        );
        for zero in [
            Col::collect_data_file_writes,
            Col::collect_sensor_operations,
            Col::log_file_disk_quota_mb,
            Col::log_file_disk_quota_percentage,
            Col::protection_disabled,
            Col::collect_process_user_context,
        ] {
            row.set(zero, 0);
        }
        row.set(Col::sensor_ip_addr, "");
    }
    row.set(Col::event_queue, events);
    row.set(Col::binary_queue, binaries);
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_in(ctx, Path::new(CB_DIR), rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing;
    use oxquery_table::{Host, Value};
    use std::fs;

    fn rows_in(dir: &Path) -> (Vec<Vec<Value>>, Vec<(log::Level, String)>) {
        let dir = dir.to_owned();
        testing::within_10s(move || {
            testing::capture_log(|| {
                let host = Host::default();
                let ctx = QueryContext::everything(&SPEC, &host);
                let mut rows = Rows::for_context(&ctx);
                generate_in(&ctx, &dir, &mut rows);
                rows.iter().map(<[Value]>::to_vec).collect()
            })
        })
    }

    const INI: &str = "[CB]\nConfigName=Default%20Settings\nCollectStoreFiles=1\n\
        CollectModuleLoads=1\nCollectModuleInfo=0\nCollectFileMods=1\nCollectRegMods=0\n\
        CollectNetConns=1\nCollectProcesses=1\nCollectCrossProcess=0\nCollectEmetEvents=0\n\
        SensorBackendServer=https%3A//cb.example:443\n[Other]\nConfigName=ignored\n";

    /// A state directory written here: every value the row has is checked against the
    /// files (the INI also read by Python's configparser, an independent INI reader).
    #[test]
    fn a_sensor_directory_written_here() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("sensor.id"), b"0000000000012ab\n").unwrap();
        fs::write(dir.path().join("sensorsettings.ini"), INI).unwrap();
        fs::create_dir_all(dir.path().join("store/a")).unwrap();
        fs::write(dir.path().join("store/a/filedata"), vec![0u8; 1000]).unwrap();
        fs::write(dir.path().join("store/a/metadata"), vec![0u8; 24]).unwrap();
        fs::create_dir_all(dir.path().join("data/eventlog")).unwrap();
        fs::write(dir.path().join("data/eventlog/events.1"), vec![0u8; 300]).unwrap();
        fs::write(dir.path().join("data/eventlog/events"), vec![0u8; 5]).unwrap();
        fs::write(dir.path().join("data/eventlog/other"), vec![0u8; 7]).unwrap();
        let (rows, _) = rows_in(dir.path());
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        // "12ab" from offset 11 of the 16 bytes (the newline ends the digits).
        assert_eq!(r[Col::sensor_id as usize], Value::from(0x12ab));
        assert_eq!(r[Col::event_queue as usize], Value::from(305));
        assert_eq!(r[Col::binary_queue as usize], Value::from(1024));
        assert_eq!(r[Col::sensor_ip_addr as usize], Value::from(""));
        assert_eq!(r[Col::protection_disabled as usize], Value::from(0));

        let Some(python) = oxquery_test_support::require_tool("python3") else {
            return;
        };
        let probe = "import configparser, json, sys\n\
            c = configparser.ConfigParser(interpolation=None); c.optionxform = str\n\
            c.read(sys.argv[1]); print(json.dumps(dict(c['CB'])))";
        let ini = dir.path().join("sensorsettings.ini");
        let out = crate::testing::tool_stdout(
            python.to_str().unwrap(),
            &["-c", probe, ini.to_str().unwrap()],
        );
        let cb: HashMap<String, String> = serde_json::from_str(&out).unwrap();
        let columns = [
            ("CollectStoreFiles", Col::collect_store_files),
            ("CollectModuleLoads", Col::collect_module_loads),
            ("CollectModuleInfo", Col::collect_module_info),
            ("CollectFileMods", Col::collect_file_mods),
            ("CollectRegMods", Col::collect_reg_mods),
            ("CollectNetConns", Col::collect_net_conns),
            ("CollectProcesses", Col::collect_processes),
            ("CollectCrossProcess", Col::collect_cross_processes),
            ("CollectEmetEvents", Col::collect_emet_events),
        ];
        for (key, col) in columns {
            let v: i64 = cb[key].parse().unwrap();
            assert_eq!(r[col as usize], Value::from(v), "{key}");
        }
        assert_eq!(
            r[Col::config_name as usize],
            Value::from(cb["ConfigName"].replace("%20", " "))
        );
        assert_eq!(
            r[Col::sensor_backend_server as usize],
            Value::from(cb["SensorBackendServer"].replace("%3A", ":"))
        );
    }

    /// No sensor directory (as on this host): no rows, and the reason at info level.
    #[test]
    fn without_a_sensor_there_is_no_row() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("cb");
        let (rows, logged) = rows_in(&absent);
        assert!(rows.is_empty());
        testing::assert_logged(&logged, log::Level::Info, &absent, "no Carbon Black sensor");
        if !Path::new(CB_DIR).exists() {
            let rows = crate::testing::scan_everything(&SPEC, generate);
            assert!(rows.is_empty());
        }
    }

    /// Hostile files: a FIFO as sensor.id, a link to /dev/zero as the settings, a
    /// wrong-length id, a link loop in the queue: a row with what could be read, no hang.
    #[test]
    fn hostile_files_do_not_block() {
        let dir = tempfile::tempdir().unwrap();
        testing::mkfifo(&dir.path().join("sensor.id"));
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("sensorsettings.ini")).unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
        fs::write(dir.path().join("events.log"), b"12345").unwrap();
        let (rows, logged) = rows_in(dir.path());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][Col::sensor_id as usize], Value::Null);
        assert_eq!(rows[0][Col::config_name as usize], Value::Null);
        assert_eq!(rows[0][Col::event_queue as usize], Value::from(5));
        testing::assert_logged(
            &logged,
            log::Level::Warn,
            &dir.path().join("sensor.id"),
            "FIFO",
        );
        assert_eq!(sensor_id(b"short"), None);
        assert_eq!(sensor_id(b"0123456789Azzzzz"), None);
        let missing = cb_section("[CB]\nCollectNetConns = yes\n");
        assert_eq!(missing["CollectNetConns"], "yes");
    }
}
