//! Result printers for every output mode. Each takes one statement's columns and rows as
//! SQLite's text (plus whether a value is a number, for typed JSON) and, unless told the
//! output is a terminal, writes exactly what osqueryi writes.
//!
//! On a terminal, pretty mode is allowed to differ from osquery so that results stay
//! readable: control characters in cells are escaped, widths count display cells, and a
//! table wider than the terminal is printed as one block per row ([`Expand`]).

use oxquery_format::json::{self, Scalar};
use std::io::{self, Write};
use unicode_width::UnicodeWidthChar;

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

/// When pretty mode prints one block per row instead of a box (`--pretty_expand`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expand {
    /// Only on a terminal, and only for a table wider than it.
    Auto,
    /// Always, terminal or not.
    Always,
    /// Never: the box, as osquery prints it.
    Never,
}

impl Expand {
    pub fn parse(word: &str) -> Option<Expand> {
        Some(match word {
            "auto" => Expand::Auto,
            "always" => Expand::Always,
            "never" => Expand::Never,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Expand::Auto => "auto",
            Expand::Always => "always",
            Expand::Never => "never",
        }
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
    /// `--json_typed`: JSON output shows numbers as numbers and NULL as `null`.
    pub json_typed: bool,
    pub expand: Expand,
    /// Results go to a terminal: pretty mode escapes control characters and may expand.
    pub to_terminal: bool,
    /// That terminal's columns, when it reports them.
    pub terminal_width: Option<usize>,
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
            json_typed: false,
            expand: Expand::Auto,
            to_terminal: false,
            terminal_width: None,
            headers: true,
            separator: "|".to_owned(),
            nullvalue: String::new(),
            widths: Vec::new(),
        }
    }
}

/// One value as SQLite's text (`None` = NULL), and whether SQLite typed it as a number.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub text: Option<String>,
    pub numeric: bool,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Cell {
        Cell {
            text: Some(text.into()),
            numeric: false,
        }
    }

    pub fn number(text: impl Into<String>) -> Cell {
        Cell {
            text: Some(text.into()),
            numeric: true,
        }
    }

    pub fn null() -> Cell {
        Cell {
            text: None,
            numeric: false,
        }
    }
}

/// One statement's result.
pub struct Table<'a> {
    pub columns: &'a [String],
    pub rows: &'a [Vec<Cell>],
}

/// What [`print()`] did that the user should be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printed {
    AsAsked,
    /// Auto mode printed blocks because the table is wider than the terminal.
    Expanded,
}

/// Prints `table` in the current mode.
pub fn print(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<Printed> {
    match format.mode {
        Mode::Pretty if format.json_pretty => print_json_pretty(out, format, table),
        Mode::Pretty if format.json || format.json_typed => print_json(out, format, table),
        Mode::Pretty => return print_pretty(out, format, table),
        Mode::Line => print_line(out, format, table),
        Mode::Column => print_column(out, format, table),
        Mode::List => print_list(out, format, table),
        Mode::Csv => print_csv(out, format, table),
    }
    .map(|()| Printed::AsAsked)
}

fn text<'a>(format: &'a Format, cell: &'a Cell) -> &'a str {
    cell.text.as_deref().unwrap_or(&format.nullvalue)
}

/// `s` with control characters shown as escapes, so a cell stays on its line.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.into()
}

/// Terminal cells `s` occupies (escaped text has no control characters).
fn display_width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

fn print_pretty(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<Printed> {
    if table.rows.is_empty() || table.columns.is_empty() {
        return Ok(Printed::AsAsked);
    }
    if !format.to_terminal {
        return match format.expand {
            Expand::Always => print_expanded(out, format, table, None),
            Expand::Auto | Expand::Never => print_box(out, format, table),
        }
        .map(|()| Printed::AsAsked);
    };
    let escaped: Vec<Vec<String>> = table
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| escape_controls(text(format, c)).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = table.columns.iter().map(|c| display_width(c)).collect();
    for row in &escaped {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(display_width(cell));
        }
    }
    let needed = widths.iter().map(|w| w + 3).sum::<usize>() + 1;
    let terminal = format.terminal_width;
    let expand = match format.expand {
        Expand::Always => true,
        Expand::Never => false,
        Expand::Auto => terminal.is_some_and(|t| needed > t),
    };
    if expand {
        print_expanded(out, format, table, terminal)?;
        return Ok(if format.expand == Expand::Auto {
            Printed::Expanded
        } else {
            Printed::AsAsked
        });
    }
    let rows: Vec<Vec<&str>> = escaped
        .iter()
        .map(|r| r.iter().map(String::as_str).collect())
        .collect();
    let header: Vec<&str> = table.columns.iter().map(String::as_str).collect();
    out.write_all(render_box(&header, &rows, &widths, display_width).as_bytes())?;
    Ok(Printed::AsAsked)
}

/// osquery's box, byte for byte: widths count code points and cells are printed raw.
fn print_box(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<()> {
    // Widths count code points, not bytes or display cells, as osquery does.
    let len = |s: &str| s.chars().count();
    let rows: Vec<Vec<&str>> = table
        .rows
        .iter()
        .map(|r| r.iter().map(|c| text(format, c)).collect())
        .collect();
    let header: Vec<&str> = table.columns.iter().map(String::as_str).collect();
    let mut widths: Vec<usize> = header.iter().map(|c| len(c)).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(len(cell));
        }
    }
    out.write_all(render_box(&header, &rows, &widths, len).as_bytes())
}

fn render_box(
    header: &[&str],
    rows: &[Vec<&str>],
    widths: &[usize],
    len: fn(&str) -> usize,
) -> String {
    let mut rule = String::from("+");
    for w in widths {
        rule.push_str(&"-".repeat(w + 2));
        rule.push('+');
    }
    rule.push('\n');
    let line = |cells: &[&str]| {
        let mut s = String::from("|");
        for (cell, w) in cells.iter().zip(widths) {
            s.push(' ');
            s.push_str(cell);
            s.push_str(&" ".repeat(w - len(cell)));
            s.push_str(" |");
        }
        s.push('\n');
        s
    };
    let mut buf = rule.clone();
    buf.push_str(&line(header));
    buf.push_str(&rule);
    for row in rows {
        buf.push_str(&line(row));
    }
    buf.push_str(&rule);
    buf
}

/// Pretty mode for wide results: one block per row, a `-[ RECORD n ]` rule and one
/// `name | value` line per column (psql's expanded display). Values longer than the
/// terminal continue on further lines under the value column.
fn print_expanded(
    out: &mut dyn Write,
    format: &Format,
    table: &Table<'_>,
    terminal: Option<usize>,
) -> io::Result<()> {
    let name_width = table
        .columns
        .iter()
        .map(|c| display_width(c))
        .max()
        .unwrap_or(0);
    // Folding narrower than this would make values unreadable; let the terminal wrap.
    const MIN_VALUE_WIDTH: usize = 16;
    let value_width = terminal
        .map(|t| t.saturating_sub(name_width + 3))
        .filter(|w| *w >= MIN_VALUE_WIDTH);
    let mut buf = String::new();
    for (n, row) in table.rows.iter().enumerate() {
        let mut lines = Vec::new();
        for (name, cell) in table.columns.iter().zip(row) {
            let value = escape_controls(text(format, cell));
            let pad = " ".repeat(name_width - display_width(name));
            let mut pieces = fold(&value, value_width).into_iter();
            lines.push(format!(
                "{name}{pad} | {}",
                pieces.next().unwrap_or_default()
            ));
            for piece in pieces {
                lines.push(format!("{} | {piece}", " ".repeat(name_width)));
            }
        }
        let widest = lines.iter().map(|l| display_width(l)).max().unwrap_or(0);
        let title = format!("-[ RECORD {} ]", n + 1);
        let rule_width = terminal.map_or(widest, |t| widest.min(t));
        buf.push_str(&title);
        buf.push_str(&"-".repeat(rule_width.saturating_sub(title.len())));
        buf.push('\n');
        for line in lines {
            buf.push_str(&line);
            buf.push('\n');
        }
    }
    out.write_all(buf.as_bytes())
}

/// Splits `s` into pieces of at most `width` display cells (all of it if `None`).
fn fold(s: &str, width: Option<usize>) -> Vec<String> {
    let Some(width) = width else {
        return vec![s.to_owned()];
    };
    let mut pieces = vec![String::new()];
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width && used > 0 {
            pieces.push(String::new());
            used = 0;
        }
        pieces.last_mut().expect("never empty").push(c);
        used += w;
    }
    pieces
}

/// A value for typed JSON: numbers as numbers, NULL as `null`, the rest as strings.
fn typed_json(cell: &Cell) -> Scalar<'_> {
    let Some(text) = &cell.text else {
        return Scalar::Null;
    };
    if cell.numeric {
        if let Ok(i) = text.parse::<i64>() {
            return Scalar::Int(i);
        }
        // SQLite writes infinities as `Inf`, which JSON cannot hold: kept as text.
        if let Some(d) = text.parse::<f64>().ok().filter(|d| d.is_finite()) {
            return Scalar::Real(d);
        }
    }
    Scalar::Str(text)
}

/// One row's members with sorted keys, as osquery's row map holds them (of duplicate
/// column names the last wins). osquery's values are all strings (NULL as the
/// nullvalue); `--json_typed` keeps SQLite's types.
fn json_members<'a>(
    format: &'a Format,
    columns: &'a [String],
    row: &'a [Cell],
) -> Vec<(&'a str, Scalar<'a>)> {
    let mut members: Vec<(&str, Scalar<'_>)> = columns
        .iter()
        .zip(row)
        .map(|(k, cell)| {
            let value = if format.json_typed {
                typed_json(cell)
            } else {
                Scalar::Str(text(format, cell))
            };
            (k.as_str(), value)
        })
        .collect();
    // Stable: equal keys stay in column order, so keeping the last of each run keeps the
    // last column.
    members.sort_by(|a, b| a.0.cmp(b.0));
    let mut unique: Vec<(&str, Scalar<'_>)> = Vec::with_capacity(members.len());
    for member in members {
        match unique.last_mut() {
            Some(last) if last.0 == member.0 => *last = member,
            _ => unique.push(member),
        }
    }
    unique
}

/// osquery's `jsonPrint`: `[`, each row compact on its own line indented by two spaces,
/// `]`.
fn print_json(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<()> {
    let mut buf = String::from("[\n");
    for (i, row) in table.rows.iter().enumerate() {
        if i > 0 {
            buf.push_str(",\n");
        }
        buf.push_str("  ");
        json::push_object(&mut buf, json_members(format, table.columns, row));
    }
    buf.push_str("\n]\n");
    out.write_all(buf.as_bytes())
}

fn print_json_pretty(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<()> {
    let mut buf = String::new();
    json::push_objects_pretty(
        &mut buf,
        table
            .rows
            .iter()
            .map(|row| json_members(format, table.columns, row)),
    );
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
        line(&mut row.iter().map(|c| c.text.as_deref()));
    }
    out.write_all(buf.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: &Format, columns: &[&str], rows: &[&[Option<&str>]]) -> String {
        let columns: Vec<String> = columns.iter().map(|s| s.to_string()).collect();
        let rows: Vec<Vec<Cell>> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| c.map_or_else(Cell::null, Cell::text))
                    .collect()
            })
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

    #[test]
    fn terminal_helpers() {
        assert_eq!(
            escape_controls("a\tb\nc\r\u{1b}[0m"),
            "a\\tb\\nc\\r\\x1b[0m"
        );
        assert!(matches!(
            escape_controls("plain é"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(fold("abcdefg", Some(3)), ["abc", "def", "g"]);
        assert_eq!(fold("", Some(3)), [""]);
        assert_eq!(fold("abc", None), ["abc"]);
        // A wide character never straddles two pieces.
        assert_eq!(fold("ab日本", Some(3)), ["ab", "日", "本"]);
        assert_eq!(display_width("日本a"), 5);
    }

    #[test]
    fn auto_expands_only_on_a_narrow_terminal() {
        let mut f = Format {
            to_terminal: true,
            terminal_width: Some(12),
            ..Format::default()
        };
        let s = render(&f, &["a", "b"], &[&[Some("1"), Some("two\nlines")]]);
        assert_eq!(s, "-[ RECORD 1 ]\na | 1\nb | two\\nlines\n");
        f.terminal_width = Some(80);
        let s = render(&f, &["a", "b"], &[&[Some("1"), Some("two\nlines")]]);
        assert_eq!(
            s,
            "+---+------------+\n| a | b          |\n+---+------------+\n| 1 | two\\nlines |\n+---+------------+\n"
        );
    }
}
