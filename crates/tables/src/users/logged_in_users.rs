//! `logged_in_users`: current sessions from the utmp file.

use oxquery_sys::users::utmp::{self, Record};
use oxquery_table::{QueryContext, Rows, TableResult, table};

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

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    match std::fs::read(utmp::UTMP_PATH) {
        Ok(bytes) => generate_from(&utmp::parse(&bytes), rows),
        Err(e) => log::info!(
            "Table logged_in_users: cannot read {} ({e}); no rows",
            utmp::UTMP_PATH
        ),
    }
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

    #[test]
    fn live_utmp_record_count() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let expected = match std::fs::read(utmp::UTMP_PATH) {
            Ok(b) => (0..b.len() / utmp::RECORD_SIZE)
                .filter(|i| {
                    let o = i * utmp::RECORD_SIZE + 4;
                    i32::from_ne_bytes(b[o..o + 4].try_into().unwrap()) != 1
                })
                .count(),
            Err(_) => 0,
        };
        assert_eq!(rows.len(), expected);
    }
}
