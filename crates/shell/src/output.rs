//! Result printers for every output mode. Each takes one statement's columns and rows as
//! SQLite's text (`None` = NULL) and writes exactly what osqueryi writes.

use std::io::{self, Write};

/// The `.mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pretty,
    Line,
    Column,
    List,
    Csv,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Pretty => "pretty",
            Mode::Line => "line",
            Mode::Column => "column",
            Mode::List => "list",
            Mode::Csv => "csv",
        }
    }

    /// Parses a `.mode` argument (plural spellings are accepted, as osquery does).
    pub fn parse(word: &str) -> Option<Mode> {
        Some(match word {
            "line" | "lines" => Mode::Line,
            "column" | "columns" => Mode::Column,
            "list" => Mode::List,
            "pretty" => Mode::Pretty,
            "csv" => Mode::Csv,
            _ => return None,
        })
    }
}

/// How results are printed; changed by flags and dot commands.
#[derive(Debug, Clone)]
pub struct Format {
    pub mode: Mode,
    /// `--json`: pretty mode prints compact JSON instead of a box.
    pub json: bool,
    /// `--json_pretty`: pretty mode prints indented JSON.
    pub json_pretty: bool,
    pub headers: bool,
    pub separator: String,
    pub nullvalue: String,
    /// `.width`: column-mode widths (negative = right-aligned, 0 = automatic).
    pub widths: Vec<i32>,
}

impl Default for Format {
    fn default() -> Self {
        Format {
            mode: Mode::Pretty,
            json: false,
            json_pretty: false,
            headers: true,
            separator: "|".to_owned(),
            nullvalue: String::new(),
            widths: Vec::new(),
        }
    }
}

/// One statement's result as text.
pub struct Table<'a> {
    pub columns: &'a [String],
    pub rows: &'a [Vec<Option<String>>],
}

/// Prints `table` in the current mode.
pub fn print(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<()> {
    match format.mode {
        Mode::Pretty if format.json_pretty => print_json_pretty(out, format, table),
        Mode::Pretty if format.json => print_json(out, format, table),
        Mode::Pretty => print_pretty(out, format, table),
        Mode::Line => print_line(out, format, table),
        Mode::Column => print_column(out, format, table),
        Mode::List => print_list(out, format, table),
        Mode::Csv => print_csv(out, format, table),
    }
}

fn text<'a>(format: &'a Format, cell: &'a Option<String>) -> &'a str {
    cell.as_deref().unwrap_or(&format.nullvalue)
}

fn print_pretty(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<()> {
    if table.rows.is_empty() || table.columns.is_empty() {
        return Ok(());
    }
    // Widths count code points, not bytes or display cells, as osquery does.
    let len = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = table.columns.iter().map(|c| len(c)).collect();
    for row in table.rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(len(text(format, cell)));
        }
    }
    let mut rule = String::from("+");
    for w in &widths {
        rule.push_str(&"-".repeat(w + 2));
        rule.push('+');
    }
    rule.push('\n');
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::from("|");
        for (cell, w) in cells.zip(&widths) {
            s.push(' ');
            s.push_str(cell);
            s.push_str(&" ".repeat(w - len(cell)));
            s.push_str(" |");
        }
        s.push('\n');
        s
    };
    let mut buf = rule.clone();
    buf.push_str(&line(&mut table.columns.iter().map(String::as_str)));
    buf.push_str(&rule);
    for row in table.rows {
        buf.push_str(&line(&mut row.iter().map(|c| text(format, c))));
    }
    buf.push_str(&rule);
    out.write_all(buf.as_bytes())
}

/// One row as a JSON object with sorted keys and string values (later duplicates win).
fn json_row(format: &Format, columns: &[String], row: &[Option<String>]) -> serde_json::Value {
    let mut pairs: Vec<(&String, &str)> = columns
        .iter()
        .zip(row)
        .map(|(c, v)| (c, text(format, v)))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        map.insert(k.clone(), serde_json::Value::String(v.to_owned()));
    }
    serde_json::Value::Object(map)
}

fn print_json(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<()> {
    let mut buf = String::from("[\n");
    for (i, row) in table.rows.iter().enumerate() {
        if i > 0 {
            buf.push_str(",\n");
        }
        buf.push_str("  ");
        buf.push_str(&json_row(format, table.columns, row).to_string());
    }
    buf.push_str("\n]\n");
    out.write_all(buf.as_bytes())
}

fn print_json_pretty(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<()> {
    let rows: Vec<serde_json::Value> = table
        .rows
        .iter()
        .map(|row| json_row(format, table.columns, row))
        .collect();
    let mut buf = serde_json::to_string_pretty(&rows).map_err(io::Error::other)?;
    buf.push('\n');
    out.write_all(buf.as_bytes())
}

fn print_line(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<()> {
    // Names are right-aligned to the longest (at least 5), counted in bytes like printf.
    let width = table
        .columns
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(5);
    let mut buf = String::new();
    for (i, row) in table.rows.iter().enumerate() {
        if i > 0 {
            buf.push('\n');
        }
        for (name, cell) in table.columns.iter().zip(row) {
            buf.push_str(&format!("{name:>width$} = {}\n", text(format, cell)));
        }
    }
    out.write_all(buf.as_bytes())
}

/// Pads or truncates to `width` bytes (without splitting a character), printf `%-*.*s` style.
fn fit(s: &str, width: i32) -> String {
    let w = width.unsigned_abs() as usize;
    let mut end = s.len().min(w);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let cut = &s[..end];
    let pad = " ".repeat(w - cut.len());
    if width < 0 {
        format!("{pad}{cut}")
    } else {
        format!("{cut}{pad}")
    }
}

fn print_column(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<()> {
    let Some(first) = table.rows.first() else {
        return Ok(());
    };
    // Automatic widths: at least 10, the header, and the first row's value.
    let widths: Vec<i32> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, name)| match format.widths.get(i) {
            Some(&w) if w != 0 => w,
            _ => {
                let value = first.get(i).map_or(0, |c| text(format, c).len());
                name.len().max(10).max(value) as i32
            }
        })
        .collect();
    let last = table.columns.len().saturating_sub(1);
    let sep = |i: usize| if i == last { "\n" } else { "  " };
    let mut buf = String::new();
    if format.headers {
        for (i, name) in table.columns.iter().enumerate() {
            buf.push_str(&fit(name, widths[i]));
            buf.push_str(sep(i));
        }
        for (i, w) in widths.iter().enumerate() {
            buf.push_str(&"-".repeat(w.unsigned_abs() as usize));
            buf.push_str(sep(i));
        }
    }
    for row in table.rows {
        for (i, cell) in row.iter().enumerate() {
            buf.push_str(&fit(text(format, cell), widths[i]));
            buf.push_str(sep(i));
        }
    }
    out.write_all(buf.as_bytes())
}

fn print_list(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<()> {
    if table.rows.is_empty() {
        return Ok(());
    }
    let mut buf = String::new();
    if format.headers {
        buf.push_str(&table.columns.join(&format.separator));
        buf.push('\n');
    }
    for row in table.rows {
        let cells: Vec<&str> = row.iter().map(|c| text(format, c)).collect();
        buf.push_str(&cells.join(&format.separator));
        buf.push('\n');
    }
    out.write_all(buf.as_bytes())
}

/// Whether a CSV field needs quotes: empty, any control/space/quote/apostrophe/DEL or
/// non-ASCII byte, or the separator inside it.
fn csv_needs_quotes(field: &str, separator: &str) -> bool {
    field.is_empty()
        || field
            .bytes()
            .any(|b| b <= b' ' || b == b'"' || b == b'\'' || b >= 0x7f)
        || (!separator.is_empty() && field.contains(separator))
}

fn csv_field(buf: &mut String, field: Option<&str>, format: &Format) {
    match field {
        None => buf.push_str(&format.nullvalue),
        Some(f) if csv_needs_quotes(f, &format.separator) => {
            buf.push('"');
            buf.push_str(&f.replace('"', "\"\""));
            buf.push('"');
        }
        Some(f) => buf.push_str(f),
    }
}

fn print_csv(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<()> {
    if table.rows.is_empty() {
        return Ok(());
    }
    let mut buf = String::new();
    let mut line = |fields: &mut dyn Iterator<Item = Option<&str>>| {
        for (i, f) in fields.enumerate() {
            if i > 0 {
                buf.push_str(&format.separator);
            }
            csv_field(&mut buf, f, format);
        }
        buf.push('\n');
    };
    if format.headers {
        line(&mut table.columns.iter().map(|c| Some(c.as_str())));
    }
    for row in table.rows {
        line(&mut row.iter().map(|c| c.as_deref()));
    }
    out.write_all(buf.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: &Format, columns: &[&str], rows: &[&[Option<&str>]]) -> String {
        let columns: Vec<String> = columns.iter().map(|s| s.to_string()).collect();
        let rows: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|r| r.iter().map(|c| c.map(str::to_owned)).collect())
            .collect();
        let mut out = Vec::new();
        print(
            &mut out,
            format,
            &Table {
                columns: &columns,
                rows: &rows,
            },
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    fn with(mode: Mode) -> Format {
        Format {
            mode,
            ..Format::default()
        }
    }

    #[test]
    fn pretty_counts_code_points() {
        let s = render(
            &with(Mode::Pretty),
            &["name", "n"],
            &[&[Some("héllo"), None]],
        );
        assert_eq!(
            s,
            "+-------+---+\n| name  | n |\n+-------+---+\n| héllo |   |\n+-------+---+\n"
        );
    }

    #[test]
    fn column_mode_pads_and_truncates() {
        let mut f = with(Mode::Column);
        let s = render(&f, &["a"], &[&[Some("x")], &[Some("yy")]]);
        assert_eq!(s, "a         \n----------\nx         \nyy        \n");
        f.widths = vec![-3];
        f.headers = false;
        let s = render(&f, &["a"], &[&[Some("abcd")], &[Some("é")]]);
        // printf pads by bytes: "é" is two of the three.
        assert_eq!(s, "abc\n é\n");
    }

    #[test]
    fn csv_quoting() {
        let f = with(Mode::Csv);
        let f = Format {
            separator: ",".into(),
            ..f
        };
        let s = render(
            &f,
            &["a b", "c"],
            &[
                &[Some("x,y"), Some("plain")],
                &[Some(""), None],
                &[Some("q\""), Some("é")],
            ],
        );
        assert_eq!(s, "\"a b\",c\n\"x,y\",plain\n\"\",\n\"q\"\"\",\"é\"\n");
    }
}
