//! `last`: login and logout history from the wtmp file.

use oxquery_sys::users::utmp::{self, Record};
use oxquery_table::{QueryContext, Rows, TableResult, table};

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

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    match std::fs::read(utmp::WTMP_PATH) {
        Ok(bytes) => {
            if bytes.is_empty() {
                log::info!("Table last: {} is empty; no rows", utmp::WTMP_PATH);
            }
            generate_from(&utmp::parse(&bytes), rows)
        }
        Err(e) => log::info!("Table last: cannot read {} ({e}); no rows", utmp::WTMP_PATH),
    }
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

    #[test]
    fn live_wtmp_matches_record_types() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let expected = match std::fs::read(utmp::WTMP_PATH) {
            Ok(b) => b
                .chunks_exact(utmp::RECORD_SIZE)
                .filter(|c| matches!(i16::from_ne_bytes([c[0], c[1]]), 7 | 8))
                .count(),
            Err(_) => 0,
        };
        assert_eq!(rows.len(), expected);
    }
}
