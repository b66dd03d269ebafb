//! `carves`: the daemon's file carves, and the way to ask for one.
//!
//! `SELECT * FROM carves` lists the carves stored in the daemon's store (domain
//! `carves`, keys `carves.<guid>`). `SELECT * FROM carves WHERE path LIKE '/etc/%.conf'
//! AND carve = 1` also schedules a carve of the regular files the constraints name, as
//! osquery does: each `path =` value as written, each `LIKE` pattern expanded as the
//! `file` table expands it (`%` within a directory, a trailing `%%` recursing). The
//! carver in `osqueryd` then packs them into a tar archive (zstd with
//! `--carver_compression`) and uploads it to the fleet server's
//! `--carver_start_endpoint`/`--carver_continue_endpoint`; the row's `status` follows it
//! (`SCHEDULED`, `STARTING`, `PENDING`, `SUCCESS` or a failure).
//!
//! Carving needs `--disable_carver=false`; otherwise `carve = 1` schedules nothing and
//! logs a warning. Unlike osquery, only a non-zero `carve` value schedules (osquery
//! carves on `carve = 0` too), and the row of the carve just scheduled has `carve` = 1
//! (osquery shows 0 on every row), so the scheduling query returns it, with its
//! `carve_guid`, instead of nothing. The shell keeps no carves: there the table is empty
//! and `carve = 1` is refused with a warning (only `osqueryd` uploads).
//!
//! The work here is only the pattern expansion and the store writes: files are read by
//! the carver, through the safe opener, never by this table.

use oxquery_sys::pattern::Select;
use oxquery_table::{CarveRecord, QueryContext, Rows, TableResult, table};

use crate::common::constrained_paths;

table! {
    name: "carves",
    description: "File carves of osqueryd: each archive of files scheduled for upload to the fleet server, its state and digest. `WHERE path LIKE ... AND carve = 1` (with `--disable_carver=false`) schedules a new carve of the regular files the path constraints name; the carver packs them into a tar archive (zstd with `--carver_compression`), each file at most `--read_max` bytes, and uploads it in `--carver_block_size` blocks. Empty in osqueryi, which never uploads.",
    columns: {
        time: BigInt [] "Unix time the carve was scheduled",
        sha256: Text [COLLATE_NOCASE] "SHA-256 of the uploaded archive (after compression) in lowercase hex; empty until it is made",
        size: BigInt [] "Bytes of the uploaded archive (after compression); -1 until it is made",
        path: Text [ADDITIONAL] "The carved paths, joined by commas; constrained with carve = 1 it names what to carve (= as written, LIKE patterns expanded, %% recursing)",
        status: Text [] "SCHEDULED, STARTING, PENDING (archiving and uploading), SUCCESS, or what failed: CREATE PATHS FAILED, ARCHIVE FAILED, COMPRESS FAILED, DATA POST FAILED",
        carve_guid: Text [INDEX | COLLATE_NOCASE] "Identifier of the carve (sent to the server as carve_id)",
        request_id: Text [] "Id of the distributed query that asked for the carve; empty when none did",
        carve: Integer [ADDITIONAL] "Constrain to 1 (with path) to schedule a carve; 1 on the row of the carve the query just scheduled, else 0",
    },
    examples: [
        "select * from carves",
        "select carve_guid, status from carves where path like '/etc/ssh/%' and carve = 1",
    ],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let carves = ctx.host().carves.as_ref();
    let asked = ctx
        .eq_integers(Col::carve)
        .is_some_and(|v| v.iter().any(|n| *n != 0));
    let mut scheduled: Option<CarveRecord> = None;
    if asked {
        match carves {
            None => log::warn!(
                "Cannot carve: carves are scheduled and uploaded by osqueryd, not osqueryi"
            ),
            Some(carves) => scheduled = schedule(ctx, carves.as_ref()),
        }
    }
    let Some(carves) = carves else {
        log::info!("carves: no carver in this process (only osqueryd keeps carves)");
        return Ok(());
    };
    let stored = match carves.list() {
        Ok(stored) => stored,
        Err(e) => {
            log::warn!("Cannot read the stored carves: {e}");
            return Ok(());
        }
    };
    let guids = ctx.eq_texts(Col::carve_guid);
    for carve in stored {
        ctx.check()?;
        if let Some(guids) = &guids
            && !guids
                .iter()
                .any(|g| g.eq_ignore_ascii_case(&carve.carve_guid))
        {
            continue;
        }
        let just_scheduled = scheduled
            .as_ref()
            .is_some_and(|s| s.carve_guid == carve.carve_guid);
        let mut row = rows.row();
        row.set(Col::time, carve.time);
        row.set(Col::sha256, carve.sha256);
        row.set(Col::size, carve.size);
        row.set(Col::path, carve.path);
        row.set(Col::status, carve.status);
        row.set(Col::carve_guid, carve.carve_guid);
        row.set(Col::request_id, carve.request_id);
        row.set(Col::carve, i64::from(just_scheduled));
    }
    Ok(())
}

/// Schedules a carve of the files the `path` constraints name; `None` when there is
/// nothing to carve or carving is refused (said in the log).
fn schedule(ctx: &QueryContext, carves: &dyn oxquery_table::Carves) -> Option<CarveRecord> {
    let mut paths = Vec::new();
    for path in constrained_paths(ctx, Col::path, Select::Files) {
        match path.into_string() {
            Ok(p) => paths.push(p),
            Err(p) => log::warn!(
                "Cannot carve {}: the path is not UTF-8",
                p.to_string_lossy()
            ),
        }
    }
    if paths.is_empty() {
        log::warn!("Cannot carve: the path constraints name no file");
        return None;
    }
    let request_id = ctx.host().request.id().unwrap_or_default();
    match carves.schedule(&paths, &request_id) {
        Ok(carve) => {
            log::info!(
                "Carve {} scheduled: {} files",
                carve.carve_guid,
                paths.len()
            );
            Some(carve)
        }
        Err(e) => {
            log::warn!("Cannot carve: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::capture_log;
    use oxquery_table::{Carves, Host, Op, Value};
    use std::sync::{Arc, Mutex};

    /// Carves kept in memory, as the daemon keeps them in its store: what the table
    /// hands over is checked against the files the test wrote.
    #[derive(Debug, Default)]
    struct Recorded {
        enabled: bool,
        carves: Mutex<Vec<CarveRecord>>,
        scheduled: Mutex<Vec<(Vec<String>, String)>>,
    }

    impl Carves for Recorded {
        fn list(&self) -> Result<Vec<CarveRecord>, String> {
            Ok(self.carves.lock().unwrap().clone())
        }
        fn schedule(&self, paths: &[String], request_id: &str) -> Result<CarveRecord, String> {
            if !self.enabled {
                return Err("carving is disabled (--disable_carver)".to_owned());
            }
            self.scheduled
                .lock()
                .unwrap()
                .push((paths.to_vec(), request_id.to_owned()));
            let mut carves = self.carves.lock().unwrap();
            let record = CarveRecord {
                carve_guid: format!("guid-{}", carves.len()),
                time: 1,
                status: "SCHEDULED".to_owned(),
                size: -1,
                path: paths.join(","),
                request_id: request_id.to_owned(),
                ..CarveRecord::default()
            };
            carves.push(record.clone());
            Ok(record)
        }
        fn function_enabled(&self) -> bool {
            false
        }
    }

    fn host(carves: &Arc<Recorded>) -> Host {
        Host {
            carves: Some(Arc::clone(carves) as Arc<dyn Carves>),
            ..Host::default()
        }
    }

    #[test]
    fn like_patterns_schedule_the_files_they_match_and_the_new_row_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        std::fs::write(dir.path().join("a.conf"), b"a").unwrap();
        std::fs::write(dir.path().join("b.conf"), b"b").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/c.conf"), b"c").unwrap();
        let carves = Arc::new(Recorded {
            enabled: true,
            ..Recorded::default()
        });
        let host = host(&carves);
        host.request.begin("q7");
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::path, Op::Like, format!("{root}/%%"))
            .with_constraint(Col::carve, Op::Eq, 1_i64);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let scheduled = carves.scheduled.lock().unwrap().clone();
        assert_eq!(
            scheduled,
            vec![(
                vec![
                    format!("{root}/a.conf"),
                    format!("{root}/b.conf"),
                    format!("{root}/sub/c.conf"),
                ],
                "q7".to_owned()
            )]
        );
        assert_eq!(rows.len(), 1);
        let row = rows.get(0).unwrap();
        assert_eq!(row[Col::carve as usize], Value::Integer(1));
        assert_eq!(row[Col::status as usize], Value::from("SCHEDULED"));
        assert_eq!(row[Col::request_id as usize], Value::from("q7"));
        assert_eq!(row[Col::carve_guid as usize], Value::from("guid-0"));

        // A plain listing schedules nothing and marks no row.
        host.request.end();
        let rows = Rows::collect(&QueryContext::everything(&SPEC, &host), generate).unwrap();
        assert_eq!(carves.scheduled.lock().unwrap().len(), 1);
        assert_eq!(rows.get(0).unwrap()[Col::carve as usize], Value::Integer(0));
    }

    #[test]
    fn a_disabled_carver_or_no_carver_schedules_nothing_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let carves = Arc::new(Recorded::default());
        let host = host(&carves);
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::path, Op::Eq, file.to_str().unwrap())
            .with_constraint(Col::carve, Op::Eq, 1_i64);
        let (rows, logged) = capture_log(|| Rows::collect(&ctx, generate).unwrap().len());
        assert_eq!(rows, 0);
        assert!(carves.scheduled.lock().unwrap().is_empty());
        assert!(
            logged.iter().any(|(level, m)| *level == log::Level::Warn
                && m.contains("disabled (--disable_carver)")),
            "{logged:?}"
        );

        let shell = Host::default();
        let ctx = QueryContext::everything(&SPEC, &shell)
            .with_constraint(Col::path, Op::Eq, file.to_str().unwrap())
            .with_constraint(Col::carve, Op::Eq, 1_i64);
        let (rows, logged) = capture_log(|| Rows::collect(&ctx, generate).unwrap().len());
        assert_eq!(rows, 0);
        assert!(
            logged
                .iter()
                .any(|(level, m)| *level == log::Level::Warn && m.contains("osqueryd")),
            "{logged:?}"
        );
    }

    #[test]
    fn carve_zero_or_no_path_schedules_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let carves = Arc::new(Recorded {
            enabled: true,
            ..Recorded::default()
        });
        let host = host(&carves);
        let root = dir.path().to_str().unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let zero = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::path, Op::Like, format!("{root}/%"))
            .with_constraint(Col::carve, Op::Eq, 0_i64);
        Rows::collect(&zero, generate).unwrap();
        // A pattern matching nothing: nothing to carve.
        let nothing = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::path, Op::Like, format!("{root}/none%"))
            .with_constraint(Col::carve, Op::Eq, 1_i64);
        Rows::collect(&nothing, generate).unwrap();
        assert!(carves.scheduled.lock().unwrap().is_empty());
    }
}
