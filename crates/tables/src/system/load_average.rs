//! `load_average`: the 1, 5 and 15 minute load averages from `/proc/loadavg`.

use oxquery_sys::fs::FileReader;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "load_average",
    description: "Run-queue load of the host averaged over 1, 5 and 15 minutes, from /proc/loadavg.",
    columns: {
        period: Text [] "Window of the average: 1m, 5m or 15m",
        average: Text [] "Load value for that window, as text with six decimals",
    },
    examples: ["select * from load_average"],
}

const PROC_LOADAVG: &str = "/proc/loadavg";
const PERIODS: [&str; 3] = ["1m", "5m", "15m"];

/// The three averages from `/proc/loadavg` (`0.52 0.58 0.59 1/467 12345`).
fn parse_loadavg(text: &[u8]) -> Option<[f64; 3]> {
    let text = std::str::from_utf8(text).ok()?;
    let mut words = text.split_ascii_whitespace();
    let mut out = [0.0; 3];
    for slot in &mut out {
        *slot = words.next()?.parse().ok().filter(|v: &f64| v.is_finite())?;
    }
    Some(out)
}

/// osquery prints the averages with C++ `std::to_string(double)`: six decimals.
fn format_average(value: f64) -> String {
    format!("{value:.6}")
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut reader = FileReader::new();
    let loads = match reader.read(PROC_LOADAVG) {
        Ok(text) => parse_loadavg(text),
        Err(e) => {
            log::warn!("load_average: cannot read {PROC_LOADAVG}: {e}");
            return Ok(());
        }
    };
    let Some(loads) = loads else {
        log::warn!("load_average: unexpected content in {PROC_LOADAVG}");
        return Ok(());
    };
    for (period, load) in PERIODS.iter().zip(loads) {
        let mut row = rows.row();
        row.set(Col::period, *period);
        row.set(Col::average, format_average(load));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    #[test]
    fn parses_and_formats_like_osquery() {
        assert_eq!(
            parse_loadavg(b"0.52 0.58 12.00 1/467 12345\n"),
            Some([0.52, 0.58, 12.0])
        );
        assert_eq!(parse_loadavg(b"0.52 0.58"), None);
        assert_eq!(parse_loadavg(b"a b c"), None);
        assert_eq!(parse_loadavg(b"nan 1 2"), None);
        assert_eq!(parse_loadavg(b""), None);
        assert_eq!(format_average(0.52), "0.520000");
        assert_eq!(format_average(12.0), "12.000000");
    }

    #[test]
    fn agrees_with_proc_loadavg() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert_eq!(rows.len(), 3);
        let text = std::fs::read_to_string(PROC_LOADAVG).unwrap();
        let expected: Vec<f64> = text
            .split_whitespace()
            .take(3)
            .map(|w| w.parse().unwrap())
            .collect();
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row[Col::period as usize], Value::from(PERIODS[i]));
            let Value::Text(avg) = &row[Col::average as usize] else {
                panic!("average is not text");
            };
            assert_eq!(avg.split('.').nth(1).unwrap().len(), 6);
            // The kernel updates the averages every 5 s; allow a change between reads.
            let got: f64 = avg.parse().unwrap();
            assert!((got - expected[i]).abs() < 1.0, "{got} vs {}", expected[i]);
        }
    }
}
