//! `logged_in_users`: current sessions from the utmp file.

use oxquery_sys::users::utmp::{self, Record};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "logged_in_users",
    description: "Entries of the utmp database (/var/run/utmp): who is logged in on which terminal, from where and since when, plus the boot, run-level and init records; entries of pid 1 are left out.",
    attributes: [CACHEABLE],
    columns: {
        r#type: Text [] "Record kind: user, login, dead, init, boot_time, runlevel, ... (unknown otherwise)",
        user: Text [] "User name of the session",
        tty: Text [] "Terminal line, without /dev/",
        host: Text [] "Remote host name or address, if any",
        time: BigInt [] "When the record was written, seconds since the Unix epoch",
        pid: Integer [] "Process of the session (login shell, getty, ...)",
        sid: Text [OTHER_PLATFORM] "Windows session security identifier; NULL here",
        registry_hive: Text [OTHER_PLATFORM] "Windows registry hive of the session; NULL here",
    },
    examples: ["select * from logged_in_users where type = 'user'"],
}

fn type_name(t: i16) -> &'static str {
    match t {
        utmp::EMPTY => "empty",
        utmp::BOOT_TIME => "boot_time",
        utmp::NEW_TIME => "new_time",
        utmp::OLD_TIME => "old_time",
        utmp::INIT_PROCESS => "init",
        utmp::LOGIN_PROCESS => "login",
        utmp::USER_PROCESS => "user",
        utmp::DEAD_PROCESS => "dead",
        utmp::RUN_LVL => "runlevel",
        utmp::ACCOUNTING => "accounting",
        _ => "unknown",
    }
}

fn generate_from(records: &[Record], rows: &mut Rows) {
    for r in records.iter().filter(|r| r.pid != 1) {
        let mut row = rows.row();
        row.set(Col::r#type, type_name(r.ut_type));
        row.set(Col::user, r.user.as_str());
        row.set(Col::tty, r.line.as_str());
        row.set(Col::host, r.host.as_str());
        row.set(Col::time, r.tv_sec);
        row.set(Col::pid, r.pid);
    }
}

/// The rows of the utmp file at `path` (the tests read files they wrote).
fn read_utmp(path: &Path, rows: &mut Rows) {
    match std::fs::read(path) {
        Ok(bytes) => generate_from(&utmp::parse(&bytes), rows),
        Err(e) => log::info!(
            "Table logged_in_users: cannot read {} ({e}); no rows",
            path.display()
        ),
    }
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    read_utmp(Path::new(utmp::UTMP_PATH), rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    #[test]
    fn packed_records() {
        let rec = |t: i16, pid: i32, user: &str, line: &str, host: &str, sec: i64| Record {
            ut_type: t,
            pid,
            line: line.into(),
            user: user.into(),
            host: host.into(),
            tv_sec: sec,
            ..Record::default()
        };
        let records = [
            rec(utmp::BOOT_TIME, 0, "reboot", "~", "6.1.0", 1_700_000_000),
            rec(utmp::INIT_PROCESS, 1, "", "", "", 1_700_000_001),
            rec(
                utmp::USER_PROCESS,
                4242,
                "alice",
                "pts/0",
                "192.0.2.7",
                1_700_000_100,
            ),
            rec(utmp::LOGIN_PROCESS, 800, "LOGIN", "tty1", "", 1_700_000_002),
            rec(77, 9, "x", "y", "z", 5),
        ];
        let mut bytes: Vec<u8> = records.iter().flat_map(utmp::encode).collect();
        bytes.extend_from_slice(&[0xAB; 200]); // truncated tail
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_from(&utmp::parse(&bytes), &mut rows);
        let got: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r[..6].iter().map(Value::to_string).collect())
            .collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            [
                s(&["boot_time", "reboot", "~", "6.1.0", "1700000000", "0"]),
                s(&["user", "alice", "pts/0", "192.0.2.7", "1700000100", "4242"]),
                s(&["login", "LOGIN", "tty1", "", "1700000002", "800"]),
                s(&["unknown", "x", "y", "z", "5", "9"]),
            ]
        );
    }

    type Tuple = (String, String, String, String, i64, i64);

    /// `(type, user, tty, host, time, pid)` of the rows.
    fn tuples(rows: &Rows) -> Vec<Tuple> {
        rows.iter()
            .map(|r| {
                (
                    r[Col::r#type as usize].to_string(),
                    r[Col::user as usize].to_string(),
                    r[Col::tty as usize].to_string(),
                    r[Col::host as usize].to_string(),
                    r[Col::time as usize].as_i64().unwrap(),
                    r[Col::pid as usize].as_i64().unwrap(),
                )
            })
            .collect()
    }

    /// What `utmpdump` reads from `path`, as the rows should be: every record but those
    /// of pid 1. `None` when utmpdump is missing (outside CI).
    fn expected_from_utmpdump(path: &Path) -> Option<Vec<Tuple>> {
        let dumped = crate::common::testing::utmpdump(path)?;
        Some(
            dumped
                .into_iter()
                .filter(|d| d.pid != 1)
                .map(|d| {
                    let kind = type_name(i16::try_from(d.ut_type).unwrap()).to_owned();
                    (kind, d.user, d.tty, d.host, d.time, d.pid)
                })
                .collect(),
        )
    }

    /// A utmp file this test writes, read through the table's file path, gives the
    /// records `utmpdump` reads from it (less pid 1's).
    #[test]
    fn written_utmp_file_agrees_with_utmpdump() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("utmp");
        let rec = |t, pid, user, line, host, sec| {
            crate::common::testing::utmp_record(t, pid, user, line, host, sec, 999_999)
        };
        let records = [
            rec(utmp::BOOT_TIME, 0, "reboot", "~", "6.1.0", 1_650_000_000),
            rec(utmp::RUN_LVL, 53, "runlevel", "~", "6.1.0", 1_650_000_001),
            rec(utmp::INIT_PROCESS, 1, "", "", "", 1_650_000_002),
            rec(utmp::LOGIN_PROCESS, 800, "LOGIN", "tty1", "", 1_650_000_003),
            rec(
                utmp::USER_PROCESS,
                4242,
                "alice",
                "pts/0",
                "192.0.2.7",
                1_750_000_000,
            ),
            rec(utmp::DEAD_PROCESS, 4300, "", "pts/1", "", 1_750_000_100),
        ];
        let bytes: Vec<u8> = records.iter().flat_map(utmp::encode).collect();
        std::fs::write(&path, bytes).unwrap();
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        read_utmp(&path, &mut rows);
        let got = tuples(&rows);
        assert_eq!(got.len(), 5, "{got:?}");
        let Some(expected) = expected_from_utmpdump(&path) else {
            return;
        };
        assert_eq!(got, expected);
    }

    /// The live rows are the records `utmpdump` reads from utmp (less pid 1's); with no
    /// utmp (as in containers) there must be no rows.
    #[test]
    fn live_utmp_agrees_with_utmpdump() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let path = Path::new(utmp::UTMP_PATH);
        let scan = || tuples(&Rows::collect(&ctx, generate).unwrap());
        if !path.exists() {
            assert_eq!(scan(), []);
            eprintln!(
                "logged_in_users: no {}; checked that there are no rows",
                path.display()
            );
            return;
        }
        let Some(_) = expected_from_utmpdump(path) else {
            return;
        };
        // utmp is rewritten in place as sessions come and go: retry until a scan and
        // the utmpdump read after it see the same file (the last pair is compared).
        let read_pair = || {
            let got = scan();
            (got, expected_from_utmpdump(path).unwrap())
        };
        let (got, expected) =
            oxquery_test_support::poll(std::time::Duration::from_secs(10), || {
                Some(read_pair()).filter(|(got, expected)| got == expected)
            })
            .unwrap_or_else(read_pair);
        assert_eq!(got, expected);
        eprintln!(
            "logged_in_users: {} live rows agree with utmpdump",
            got.len()
        );
    }
}
