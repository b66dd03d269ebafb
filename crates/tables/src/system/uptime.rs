//! `uptime`: time since the host booted, from `/proc/uptime`.

use oxquery_sys::fs::FileReader;
use oxquery_table::{QueryContext, Rows, TableError, TableResult, table};

table! {
    name: "uptime",
    description: "Time elapsed since the host booted, from /proc/uptime, also split into days, hours, minutes and seconds.",
    columns: {
        days: Integer [] "Whole days since boot",
        hours: Integer [] "Hours beyond the whole days (0-23)",
        minutes: Integer [] "Minutes beyond the whole hours (0-59)",
        seconds: Integer [] "Seconds beyond the whole minutes (0-59)",
        total_seconds: BigInt [] "Whole seconds since boot, suspended time included",
    },
    examples: ["select * from uptime"],
}

const PROC_UPTIME: &str = "/proc/uptime";

/// Whole seconds since boot from the first field of `/proc/uptime` (`12345.67 ...`).
fn parse_uptime(text: &[u8]) -> Option<i64> {
    let first = text.split(|b| b.is_ascii_whitespace()).next()?;
    let whole = first.split(|b| *b == b'.').next()?;
    oxquery_sys::fs::parse_i64(whole).filter(|_| !whole.is_empty())
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut reader = FileReader::new();
    let text = reader
        .read(PROC_UPTIME)
        .map_err(|e| TableError::io(PROC_UPTIME, e))?;
    let total = parse_uptime(text)
        .ok_or_else(|| TableError::msg(format!("{PROC_UPTIME}: unexpected content")))?;
    let mut row = rows.row();
    row.set(Col::days, total / 86_400);
    row.set(Col::hours, total % 86_400 / 3_600);
    row.set(Col::minutes, total % 3_600 / 60);
    row.set(Col::seconds, total % 60);
    row.set(Col::total_seconds, total);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    #[test]
    fn parses_proc_uptime_format() {
        assert_eq!(parse_uptime(b"350735.47 234388.90\n"), Some(350_735));
        assert_eq!(parse_uptime(b""), None);
        assert_eq!(parse_uptime(b"garbage"), None);
    }

    #[test]
    fn agrees_with_proc_uptime_and_splits_consistently() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        let before = parse_uptime(&std::fs::read(PROC_UPTIME).unwrap()).unwrap();
        generate(&ctx, &mut rows).unwrap();
        let after = parse_uptime(&std::fs::read(PROC_UPTIME).unwrap()).unwrap();
        assert_eq!(rows.len(), 1);
        let row = rows.get(0).unwrap();
        let int = |c: Col| match row[c as usize] {
            Value::Integer(i) => i,
            ref v => panic!("{c:?} is {v:?}"),
        };
        let total = int(Col::total_seconds);
        assert!(before <= total && total <= after);
        assert_eq!(
            int(Col::days) * 86_400
                + int(Col::hours) * 3_600
                + int(Col::minutes) * 60
                + int(Col::seconds),
            total
        );
    }
}
