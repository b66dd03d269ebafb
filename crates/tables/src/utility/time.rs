//! `time`: the current time. As in osquery 5, the calendar fields are UTC; only
//! `local_timezone` describes the host's local zone.

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "time",
    description: "The clock at query time, broken down in UTC, plus the name of the host's local zone.",
    attributes: [UTILITY],
    columns: {
        weekday: Text [] "Full English name of the UTC day, e.g. Monday",
        year: Integer [] "UTC year, four digits",
        month: Integer [] "UTC month, 1 to 12",
        day: Integer [] "UTC day of the month, 1 to 31",
        hour: Integer [] "UTC hour, 0 to 23",
        minutes: Integer [] "UTC minute, 0 to 59",
        seconds: Integer [] "UTC second, 0 to 59",
        timezone: Text [] "Zone the broken-down fields use: always the text UTC",
        local_timezone: Text [] "Abbreviated name of the host's local zone (e.g. CET); UTC if it has none",
        unix_time: Integer [] "Seconds elapsed since 1970-01-01 00:00:00 UTC",
        timestamp: Text [] "ctime-like rendering followed by UTC, e.g. Mon Nov 30 02:27:52 2026 UTC",
        datetime: Text [] "UTC date and time in ISO 8601 form, e.g. 2026-11-30T02:27:52Z",
        iso_8601: Text [] "Same ISO 8601 UTC text as datetime",
        win_timestamp: BigInt [OTHER_PLATFORM] "Windows only: 100-nanosecond ticks since 1601-01-01",
    },
    column_aliases: { date_time => datetime },
    examples: ["select * from time"],
}

unsafe extern "C" {
    /// Loads the local zone rules (`TZ` or /etc/localtime); not exported by `libc`.
    fn tzset();
}

/// Formats `tm` with strftime; `None` if the result does not fit or is empty.
fn strftime(format: &std::ffi::CStr, tm: &libc::tm) -> Option<String> {
    let mut buf = [0u8; 128];
    // SAFETY: buf is writable for its length, format is NUL-terminated, tm is valid.
    let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), format.as_ptr(), tm) };
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Every value of the row for one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Now {
    weekday: String,
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minutes: i64,
    seconds: i64,
    local_timezone: String,
    unix_time: i64,
    timestamp: String,
    iso_8601: String,
}

fn now_at(unix_time: libc::time_t) -> Option<Now> {
    // SAFETY: tm is plain old data; gmtime_r fills it and reports failure with NULL.
    let mut gmt: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::gmtime_r(&unix_time, &mut gmt) }.is_null() {
        return None;
    }
    // SAFETY: as above.
    let mut local: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: tzset only reads the environment and zone files; pointers are valid.
    let local_ok = unsafe {
        tzset();
        !libc::localtime_r(&unix_time, &mut local).is_null()
    };
    let local_timezone = local_ok
        .then(|| strftime(c"%Z", &local))
        .flatten()
        .filter(|z| !z.is_empty())
        // osquery falls back to UTC when the zone has no name.
        .unwrap_or_else(|| "UTC".into());
    Some(Now {
        weekday: strftime(c"%A", &gmt)?,
        year: i64::from(gmt.tm_year) + 1900,
        month: i64::from(gmt.tm_mon) + 1,
        day: i64::from(gmt.tm_mday),
        hour: i64::from(gmt.tm_hour),
        minutes: i64::from(gmt.tm_min),
        seconds: i64::from(gmt.tm_sec),
        local_timezone,
        unix_time,
        // asctime(3)'s layout (the process keeps the C locale), then the zone.
        timestamp: format!("{} UTC", strftime(c"%a %b %e %H:%M:%S %Y", &gmt)?),
        iso_8601: strftime(c"%Y-%m-%dT%H:%M:%SZ", &gmt)?,
    })
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    // SAFETY: time(NULL) only returns the clock.
    let unix_time = unsafe { libc::time(std::ptr::null_mut()) };
    let Some(now) = now_at(unix_time) else {
        log::warn!("time: cannot convert the clock value {unix_time}");
        return Ok(());
    };
    let mut row = rows.row();
    row.set(Col::weekday, now.weekday);
    row.set(Col::year, now.year);
    row.set(Col::month, now.month);
    row.set(Col::day, now.day);
    row.set(Col::hour, now.hour);
    row.set(Col::minutes, now.minutes);
    row.set(Col::seconds, now.seconds);
    row.set(Col::timezone, "UTC");
    row.set(Col::local_timezone, now.local_timezone);
    row.set(Col::unix_time, now.unix_time);
    row.set(Col::timestamp, now.timestamp);
    row.set(Col::datetime, now.iso_8601.clone());
    row.set(Col::iso_8601, now.iso_8601);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    #[test]
    fn formats_a_known_instant() {
        // 2026-11-30T02:27:52Z, a Monday.
        let now = now_at(1_796_005_672).unwrap();
        assert_eq!(now.weekday, "Monday");
        assert_eq!(
            (
                now.year,
                now.month,
                now.day,
                now.hour,
                now.minutes,
                now.seconds
            ),
            (2026, 11, 30, 2, 27, 52)
        );
        assert_eq!(now.iso_8601, "2026-11-30T02:27:52Z");
        assert_eq!(now.timestamp, "Mon Nov 30 02:27:52 2026 UTC");
        // Single-digit days are space-padded, as asctime does.
        assert_eq!(now_at(0).unwrap().timestamp, "Thu Jan  1 00:00:00 1970 UTC");
    }

    #[test]
    fn agrees_with_date_and_is_consistent() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let date = || {
            let out = std::process::Command::new("date")
                .args(["-u", "+%s"])
                .output()
                .unwrap();
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse::<i64>()
                .unwrap()
        };
        let before = date();
        let rows = Rows::collect(&ctx, generate).unwrap();
        let after = date();
        assert_eq!(rows.len(), 1);
        let row = rows.get(0).unwrap();
        let int = |c: Col| match row[c as usize] {
            Value::Integer(i) => i,
            ref v => panic!("{c:?} is {v:?}"),
        };
        let unix = int(Col::unix_time);
        assert!(before <= unix && unix <= after);
        // The fields must describe unix_time exactly: rebuild the instant from them.
        let days = days_from_civil(int(Col::year), int(Col::month), int(Col::day));
        assert_eq!(
            days * 86_400 + int(Col::hour) * 3_600 + int(Col::minutes) * 60 + int(Col::seconds),
            unix
        );
        let iso = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            int(Col::year),
            int(Col::month),
            int(Col::day),
            int(Col::hour),
            int(Col::minutes),
            int(Col::seconds)
        );
        assert_eq!(row[Col::datetime as usize], Value::from(iso.as_str()));
        assert_eq!(row[Col::iso_8601 as usize], Value::from(iso.as_str()));
        let weekdays = [
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
        ];
        assert_eq!(
            row[Col::weekday as usize],
            Value::from(weekdays[days.rem_euclid(7) as usize])
        );
        assert_eq!(row[Col::timezone as usize], Value::from("UTC"));
        let Value::Text(ts) = &row[Col::timestamp as usize] else {
            panic!()
        };
        assert!(ts.ends_with(&format!("{} UTC", int(Col::year))));
        assert!(!row[Col::local_timezone as usize].is_null());
        assert_eq!(row[Col::win_timestamp as usize], Value::Null);
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (independent of libc).
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
}
