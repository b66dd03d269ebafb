//! `last`: login and logout history from the wtmp file.

use oxquery_sys::users::utmp::{self, Record};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "last",
    description: "Login and logout history: the user-process and dead-process records of /var/log/wtmp, oldest first.",
    attributes: [CACHEABLE],
    columns: {
        username: Text [] "User name of the session",
        tty: Text [] "Terminal line, without /dev/",
        pid: Integer [] "Process of the session",
        r#type: Integer [] "utmp record type number (7 login, 8 logout)",
        type_name: Text [] "Record type as text (user-process, dead-process)",
        time: Integer [] "When the record was written, seconds since the Unix epoch",
        host: Text [] "Remote host name or address, if any",
    },
    examples: ["select * from last"],
}

fn type_name(t: i16) -> &'static str {
    match t {
        utmp::EMPTY => "empty",
        utmp::RUN_LVL => "run-level",
        utmp::BOOT_TIME => "boot-time",
        utmp::NEW_TIME => "new-time",
        utmp::OLD_TIME => "old-time",
        utmp::INIT_PROCESS => "init-process",
        utmp::LOGIN_PROCESS => "login-process",
        utmp::USER_PROCESS => "user-process",
        utmp::DEAD_PROCESS => "dead-process",
        _ => "",
    }
}

fn generate_from(records: &[Record], rows: &mut Rows) {
    for r in records
        .iter()
        .filter(|r| matches!(r.ut_type, utmp::USER_PROCESS | utmp::DEAD_PROCESS))
    {
        let mut row = rows.row();
        row.set(Col::username, r.user.as_str());
        row.set(Col::tty, r.line.as_str());
        row.set(Col::pid, r.pid);
        row.set(Col::r#type, r.ut_type);
        row.set(Col::type_name, type_name(r.ut_type));
        row.set(Col::time, r.tv_sec);
        row.set(Col::host, r.host.as_str());
    }
}

/// The rows of the wtmp file at `path` (the tests read files they wrote).
fn read_wtmp(path: &Path, rows: &mut Rows) {
    match std::fs::read(path) {
        Ok(bytes) => {
            if bytes.is_empty() {
                log::info!("Table last: {} is empty; no rows", path.display());
            }
            generate_from(&utmp::parse(&bytes), rows)
        }
        Err(e) => log::info!("Table last: cannot read {} ({e}); no rows", path.display()),
    }
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    read_wtmp(Path::new(utmp::WTMP_PATH), rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    #[test]
    fn packed_wtmp_keeps_logins_and_logouts() {
        let rec = |t: i16, pid: i32, user: &str, sec: i64| Record {
            ut_type: t,
            pid,
            line: "pts/1".into(),
            user: user.into(),
            host: "h.example".into(),
            tv_sec: sec,
            ..Record::default()
        };
        let records = [
            rec(utmp::BOOT_TIME, 0, "reboot", 10),
            rec(utmp::USER_PROCESS, 100, "bob", 20),
            rec(utmp::DEAD_PROCESS, 100, "", 30),
            rec(utmp::RUN_LVL, 53, "runlevel", 40),
        ];
        let mut bytes: Vec<u8> = records.iter().flat_map(utmp::encode).collect();
        bytes.extend_from_slice(&[7; 383]);
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_from(&utmp::parse(&bytes), &mut rows);
        assert_eq!(rows.len(), 2);
        let r0 = rows.get(0).unwrap();
        assert_eq!(r0[Col::username as usize], Value::from("bob"));
        assert_eq!(r0[Col::r#type as usize], Value::from(7));
        assert_eq!(r0[Col::type_name as usize], Value::from("user-process"));
        assert_eq!(r0[Col::time as usize], Value::from(20));
        let r1 = rows.get(1).unwrap();
        assert_eq!(r1[Col::type_name as usize], Value::from("dead-process"));
        assert_eq!(r1[Col::pid as usize], Value::from(100));
    }

    /// `(username, tty, pid, type, time, host)` of a row.
    type Tuple = (String, String, i64, i64, i64, String);

    fn tuples(rows: &Rows) -> Vec<Tuple> {
        rows.iter()
            .map(|r| {
                (
                    r[Col::username as usize].to_string(),
                    r[Col::tty as usize].to_string(),
                    r[Col::pid as usize].as_i64().unwrap(),
                    r[Col::r#type as usize].as_i64().unwrap(),
                    r[Col::time as usize].as_i64().unwrap(),
                    r[Col::host as usize].to_string(),
                )
            })
            .collect()
    }

    /// What `utmpdump` reads from `path`, as the rows `last` should give: its login
    /// and logout records. `None` when utmpdump is missing (outside CI).
    fn expected_from_utmpdump(path: &Path) -> Option<Vec<Tuple>> {
        let dumped = crate::common::testing::utmpdump(path)?;
        Some(
            dumped
                .into_iter()
                .filter(|d| matches!(d.ut_type, 7 | 8))
                .map(|d| (d.user, d.tty, d.pid, d.ut_type, d.time, d.host))
                .collect(),
        )
    }

    /// A wtmp file this test writes, read through the table's file path, gives the rows
    /// `utmpdump` reads from it.
    #[test]
    fn written_wtmp_file_agrees_with_utmpdump() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wtmp");
        let rec = |t, pid, user, line, host, sec| {
            crate::common::testing::utmp_record(t, pid, user, line, host, sec, 250)
        };
        let records = [
            rec(utmp::BOOT_TIME, 0, "reboot", "~", "6.1.0", 1_600_000_000),
            rec(
                utmp::USER_PROCESS,
                3100,
                "alice",
                "pts/0",
                "192.0.2.7",
                1_600_000_100,
            ),
            rec(utmp::USER_PROCESS, 3200, "bob", "tty2", "", 1_700_000_000),
            rec(utmp::DEAD_PROCESS, 3100, "", "pts/0", "", 1_700_000_500),
            rec(utmp::RUN_LVL, 53, "runlevel", "~", "", 1_700_000_600),
            rec(utmp::LOGIN_PROCESS, 800, "LOGIN", "tty1", "", 1_700_000_700),
        ];
        let bytes: Vec<u8> = records.iter().flat_map(utmp::encode).collect();
        std::fs::write(&path, bytes).unwrap();
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        read_wtmp(&path, &mut rows);
        let got = tuples(&rows);
        assert_eq!(got.len(), 3, "{got:?}");
        let Some(expected) = expected_from_utmpdump(&path) else {
            return;
        };
        assert_eq!(got, expected);
    }

    /// The live rows are the login/logout records `utmpdump` reads from wtmp; with no
    /// wtmp (or an empty one, as in containers) there must be no rows.
    #[test]
    fn live_wtmp_agrees_with_utmpdump() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let path = Path::new(utmp::WTMP_PATH);
        if !path.exists() {
            let rows = Rows::collect(&ctx, generate).unwrap();
            assert_eq!(rows.len(), 0);
            eprintln!(
                "last: no {}; checked that there are no rows",
                path.display()
            );
            return;
        }
        let Some(before) = expected_from_utmpdump(path) else {
            return;
        };
        let got = tuples(&Rows::collect(&ctx, generate).unwrap());
        let after = expected_from_utmpdump(path).unwrap();
        // Logins while the test runs append records: what utmpdump read before our scan
        // starts our rows, and our rows start what it read after.
        assert!(got.len() >= before.len() && after.len() >= got.len());
        assert_eq!(got[..before.len()], before[..]);
        assert_eq!(after[..got.len()], got[..]);
        eprintln!("last: {} live rows agree with utmpdump", got.len());
    }
}
