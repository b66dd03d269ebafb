//! Values as SQLite itself prints them (`sqlite3_column_text`), which is what osqueryi shows.

/// Formats a double like SQLite's `%!.15g`: 15 significant digits, no trailing zeros,
/// and always a decimal point or exponent (`1.0`, `3.14159`, `1.0e+20`).
pub fn format_real(value: f64) -> String {
    if value.is_nan() {
        return String::new();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Scientific form with 15 significant digits gives us the digits and exponent.
    let sci = format!("{:.14e}", value);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} output has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if !(-4..15).contains(&exp) {
        // %g switches to exponent form; '!' keeps a ".0" when there is a single digit.
        out.push_str(&digits[..1]);
        out.push('.');
        if digits.len() > 1 {
            out.push_str(&digits[1..]);
        } else {
            out.push('0');
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let point = exp as usize + 1;
        if digits.len() <= point {
            out.push_str(digits);
            for _ in digits.len()..point {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::format_real;

    #[test]
    fn matches_sqlite_text_of_reals() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for v in [
            1.0,
            3.14159,
            0.5,
            -2.25,
            1e20,
            1e15,
            1e14,
            123456789012345.0,
            0.0001,
            0.00001,
            1.0 / 3.0,
            2.5e-10,
            -1e100,
            100.0,
            0.1 + 0.2,
            12345.678,
        ] {
            let sqlite: String = conn
                .query_row("SELECT CAST(?1 AS TEXT)", [v], |r| r.get(0))
                .unwrap();
            assert_eq!(format_real(v), sqlite, "formatting {v:e}");
        }
    }
}
