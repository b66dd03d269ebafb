//! Result printers for every output mode. Each takes one statement's columns and rows as
//! SQLite's text (plus whether a value is a number, for typed JSON) and, unless told the
//! output is a terminal, writes exactly what osqueryi writes: the bytes of each value,
//! including bytes that are not UTF-8 (a file name may hold any).
//!
//! On a terminal, output differs from osquery so that a value cannot rewrite the screen:
//! in every mode, values and headers show control characters, bidirectional-override
//! characters and bytes that are not UTF-8 as escapes ([`terminal_text`]; JSON keeps its
//! own escapes and writes the overrides as `\uXXXX`). Pretty mode also counts widths in
//! display cells and prints a table wider than the terminal as one block per row
//! ([`Expand`]).

use oxquery_format::json::{self, Scalar};
use std::borrow::Cow;
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
    /// Every mode, in `.help`'s order.
    pub const ALL: [Mode; 5] = [
        Mode::Csv,
        Mode::Column,
        Mode::Line,
        Mode::List,
        Mode::Pretty,
    ];

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
/// The text is bytes: SQLite's TEXT need not be UTF-8.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub text: Option<Vec<u8>>,
    pub numeric: bool,
}

impl Cell {
    pub fn text(text: impl Into<Vec<u8>>) -> Cell {
        Cell {
            text: Some(text.into()),
            numeric: false,
        }
    }

    pub fn number(text: impl Into<String>) -> Cell {
        Cell {
            text: Some(text.into().into_bytes()),
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
#[derive(Clone, Copy)]
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
    let json = format.json_pretty || format.json || format.json_typed;
    if format.mode == Mode::Pretty && json {
        let mut buf = Vec::new();
        if format.json_pretty {
            print_json_pretty(&mut buf, format, table);
        } else {
            print_json(&mut buf, format, table);
        }
        if format.to_terminal {
            buf = terminal_json(&buf);
        }
        return out.write_all(&buf).map(|()| Printed::AsAsked);
    }
    // On a terminal every printer sees escaped headers and values; the escapes are
    // plain text, so the printers stay the same. (The separator and nullvalue are the
    // user's own and stay as typed: a tab separator is common.)
    let safe = format.to_terminal.then(|| SafeTable::new(table));
    let table = match &safe {
        Some(safe) => safe.table(),
        None => *table,
    };
    match format.mode {
        Mode::Pretty => return print_pretty(out, format, &table),
        Mode::Line => print_line(out, format, &table),
        Mode::Column => print_column(out, format, &table),
        Mode::List => print_list(out, format, &table),
        Mode::Csv => print_csv(out, format, &table),
    }
    .map(|()| Printed::AsAsked)
}

fn text<'a>(format: &'a Format, cell: &'a Cell) -> &'a [u8] {
    cell.text.as_deref().unwrap_or(format.nullvalue.as_bytes())
}

/// A table with every header and value passed through [`terminal_text`].
struct SafeTable {
    columns: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl SafeTable {
    fn new(table: &Table<'_>) -> SafeTable {
        let safe = |bytes: &[u8]| terminal_text(bytes).into_owned();
        SafeTable {
            columns: table.columns.iter().map(|c| safe(c.as_bytes())).collect(),
            rows: table
                .rows
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|cell| Cell {
                            text: cell.text.as_deref().map(|t| safe(t).into_bytes()),
                            numeric: cell.numeric,
                        })
                        .collect()
                })
                .collect(),
        }
    }

    fn table(&self) -> Table<'_> {
        Table {
            columns: &self.columns,
            rows: &self.rows,
        }
    }
}

/// Characters that change the direction of the text after them: a value holding one
/// could make what follows it read differently ("Trojan Source").
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `bytes` as text safe to show on a terminal, on one line: `\n`, `\t`, `\r`, other
/// control characters as `\xHH`, bidirectional controls as `\uHHHH` and bytes that are
/// not UTF-8 as `\xHH`. Everything else is unchanged.
pub fn terminal_text(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes)
        && !s.chars().any(|c| c.is_control() || is_bidi_control(c))
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
                c if is_bidi_control(c) => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    Cow::Owned(out)
}

/// JSON for a terminal: the same values, with bidirectional controls written as JSON's
/// `\uHHHH` escapes (their JSON meaning is unchanged) and bytes that are not UTF-8 as
/// U+FFFD. JSON already escapes control characters.
fn terminal_json(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    for chunk in json.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_bidi_control(c) {
                out.extend_from_slice(format!("\\u{:04X}", u32::from(c)).as_bytes());
            } else {
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
    out
}

/// Terminal cells `s` occupies (escaped text has no control characters).
fn display_width(s: &[u8]) -> usize {
    String::from_utf8_lossy(s)
        .chars()
        .map(|c| c.width().unwrap_or(0))
        .sum()
}

/// Characters in `s` as osquery counts them for its box: every byte that does not
/// continue a UTF-8 sequence (code points, for UTF-8 text).
fn code_points(s: &[u8]) -> usize {
    s.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

fn print_pretty(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<Printed> {
    if table.rows.is_empty() || table.columns.is_empty() {
        return Ok(Printed::AsAsked);
    }
    if !format.to_terminal {
        return match format.expand {
            Expand::Always => print_expanded(out, format, table, None),
            Expand::Auto | Expand::Never => print_box(out, format, table, code_points),
        }
        .map(|()| Printed::AsAsked);
    };
    // On a terminal the table was escaped already ([`SafeTable`]).
    let mut widths: Vec<usize> = table
        .columns
        .iter()
        .map(|c| display_width(c.as_bytes()))
        .collect();
    for row in table.rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(display_width(text(format, cell)));
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
    print_box(out, format, table, display_width)?;
    Ok(Printed::AsAsked)
}

/// osquery's box, byte for byte when `len` is [`code_points`]: cells are printed raw and
/// padded to the longest in their column.
fn print_box(
    out: &mut dyn Write,
    format: &Format,
    table: &Table<'_>,
    len: fn(&[u8]) -> usize,
) -> io::Result<()> {
    let rows: Vec<Vec<&[u8]>> = table
        .rows
        .iter()
        .map(|r| r.iter().map(|c| text(format, c)).collect())
        .collect();
    let header: Vec<&[u8]> = table.columns.iter().map(|c| c.as_bytes()).collect();
    let mut widths: Vec<usize> = header.iter().map(|c| len(c)).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(len(cell));
        }
    }
    let mut rule = b"+".to_vec();
    for w in &widths {
        rule.extend(std::iter::repeat_n(b'-', w + 2));
        rule.push(b'+');
    }
    rule.push(b'\n');
    let mut buf = rule.clone();
    let line = |buf: &mut Vec<u8>, cells: &[&[u8]]| {
        buf.push(b'|');
        for (cell, w) in cells.iter().zip(&widths) {
            buf.push(b' ');
            buf.extend_from_slice(cell);
            buf.extend(std::iter::repeat_n(b' ', w - len(cell)));
            buf.extend_from_slice(b" |");
        }
        buf.push(b'\n');
    };
    line(&mut buf, &header);
    buf.extend_from_slice(&rule);
    for row in &rows {
        line(&mut buf, row);
    }
    buf.extend_from_slice(&rule);
    out.write_all(&buf)
}

/// Pretty mode for wide results: one block per row, a `-[ RECORD n ]` rule and one
/// `name | value` line per column (psql's expanded display). Values longer than the
/// terminal continue on further lines under the value column. Values are shown escaped,
/// as on a terminal, whether or not output is one (`--pretty_expand=always`).
fn print_expanded(
    out: &mut dyn Write,
    format: &Format,
    table: &Table<'_>,
    terminal: Option<usize>,
) -> io::Result<()> {
    let width = |s: &str| display_width(s.as_bytes());
    let name_width = table.columns.iter().map(|c| width(c)).max().unwrap_or(0);
    // Folding narrower than this would make values unreadable; let the terminal wrap.
    const MIN_VALUE_WIDTH: usize = 16;
    let value_width = terminal
        .map(|t| t.saturating_sub(name_width + 3))
        .filter(|w| *w >= MIN_VALUE_WIDTH);
    let mut buf = String::new();
    for (n, row) in table.rows.iter().enumerate() {
        let mut lines = Vec::new();
        for (name, cell) in table.columns.iter().zip(row) {
            let value = terminal_text(text(format, cell));
            let pad = " ".repeat(name_width - width(name));
            let mut pieces = fold(&value, value_width).into_iter();
            lines.push(format!(
                "{name}{pad} | {}",
                pieces.next().unwrap_or_default()
            ));
            for piece in pieces {
                lines.push(format!("{} | {piece}", " ".repeat(name_width)));
            }
        }
        let widest = lines.iter().map(|l| width(l)).max().unwrap_or(0);
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
    if cell.numeric
        && let Ok(number) = std::str::from_utf8(text)
    {
        if let Ok(i) = number.parse::<i64>() {
            return Scalar::Int(i);
        }
        // SQLite writes infinities as `Inf`, which JSON cannot hold: kept as text.
        if let Some(d) = number.parse::<f64>().ok().filter(|d| d.is_finite()) {
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
fn print_json(buf: &mut Vec<u8>, format: &Format, table: &Table<'_>) {
    buf.extend_from_slice(b"[\n");
    for (i, row) in table.rows.iter().enumerate() {
        if i > 0 {
            buf.extend_from_slice(b",\n");
        }
        buf.extend_from_slice(b"  ");
        json::push_object(buf, json_members(format, table.columns, row));
    }
    buf.extend_from_slice(b"\n]\n");
}

fn print_json_pretty(buf: &mut Vec<u8>, format: &Format, table: &Table<'_>) {
    json::push_objects_pretty(
        buf,
        table
            .rows
            .iter()
            .map(|row| json_members(format, table.columns, row)),
    );
    buf.push(b'\n');
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
    let mut buf = Vec::new();
    for (i, row) in table.rows.iter().enumerate() {
        if i > 0 {
            buf.push(b'\n');
        }
        for (name, cell) in table.columns.iter().zip(row) {
            buf.extend_from_slice(format!("{name:>width$} = ").as_bytes());
            buf.extend_from_slice(text(format, cell));
            buf.push(b'\n');
        }
    }
    out.write_all(&buf)
}

/// Pads or truncates to `width` bytes (without splitting a UTF-8 sequence), printf
/// `%-*.*s` style; negative widths align right.
fn fit(buf: &mut Vec<u8>, s: &[u8], width: i32) {
    let w = width.unsigned_abs() as usize;
    let mut end = s.len().min(w);
    while end < s.len() && end > 0 && s[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    let cut = &s[..end];
    let pad = std::iter::repeat_n(b' ', w - cut.len());
    if width < 0 {
        buf.extend(pad);
        buf.extend_from_slice(cut);
    } else {
        buf.extend_from_slice(cut);
        buf.extend(pad);
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
    let sep = |i: usize| if i == last { &b"\n"[..] } else { &b"  "[..] };
    let mut buf = Vec::new();
    if format.headers {
        for (i, name) in table.columns.iter().enumerate() {
            fit(&mut buf, name.as_bytes(), widths[i]);
            buf.extend_from_slice(sep(i));
        }
        for (i, w) in widths.iter().enumerate() {
            buf.extend(std::iter::repeat_n(b'-', w.unsigned_abs() as usize));
            buf.extend_from_slice(sep(i));
        }
    }
    for row in table.rows {
        for (i, cell) in row.iter().enumerate() {
            fit(&mut buf, text(format, cell), widths[i]);
            buf.extend_from_slice(sep(i));
        }
    }
    out.write_all(&buf)
}

fn print_list(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<()> {
    if table.rows.is_empty() {
        return Ok(());
    }
    let mut buf = Vec::new();
    if format.headers {
        buf.extend_from_slice(table.columns.join(&format.separator).as_bytes());
        buf.push(b'\n');
    }
    for row in table.rows {
        let cells: Vec<&[u8]> = row.iter().map(|c| text(format, c)).collect();
        buf.extend_from_slice(&cells.join(format.separator.as_bytes()));
        buf.push(b'\n');
    }
    out.write_all(&buf)
}

/// Whether a CSV field needs quotes: empty, any control/space/quote/apostrophe/DEL or
/// non-ASCII byte, or the separator inside it.
fn csv_needs_quotes(field: &[u8], separator: &str) -> bool {
    field.is_empty()
        || field
            .iter()
            .any(|&b| b <= b' ' || b == b'"' || b == b'\'' || b >= 0x7f)
        || (!separator.is_empty()
            && field
                .windows(separator.len())
                .any(|w| w == separator.as_bytes()))
}

fn csv_field(buf: &mut Vec<u8>, field: Option<&[u8]>, format: &Format) {
    match field {
        None => buf.extend_from_slice(format.nullvalue.as_bytes()),
        Some(f) if csv_needs_quotes(f, &format.separator) => {
            buf.push(b'"');
            for &b in f {
                if b == b'"' {
                    buf.push(b'"');
                }
                buf.push(b);
            }
            buf.push(b'"');
        }
        Some(f) => buf.extend_from_slice(f),
    }
}

fn print_csv(out: &mut dyn Write, format: &Format, table: &Table<'_>) -> io::Result<()> {
    if table.rows.is_empty() {
        return Ok(());
    }
    let mut buf = Vec::new();
    let mut line = |fields: &mut dyn Iterator<Item = Option<&[u8]>>| {
        for (i, f) in fields.enumerate() {
            if i > 0 {
                buf.extend_from_slice(format.separator.as_bytes());
            }
            csv_field(&mut buf, f, format);
        }
        buf.push(b'\n');
    };
    if format.headers {
        line(&mut table.columns.iter().map(|c| Some(c.as_bytes())));
    }
    for row in table.rows {
        line(&mut row.iter().map(|c| c.text.as_deref()));
    }
    out.write_all(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(format: &Format, columns: &[&str], rows: Vec<Vec<Cell>>) -> Vec<u8> {
        let columns: Vec<String> = columns.iter().map(|s| s.to_string()).collect();
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
        out
    }

    fn render(format: &Format, columns: &[&str], rows: &[&[Option<&str>]]) -> String {
        let rows = rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| c.map_or_else(Cell::null, Cell::text))
                    .collect()
            })
            .collect();
        String::from_utf8(printed(format, columns, rows)).unwrap()
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
            terminal_text(b"a\tb\nc\r\x1b[0m\x07"),
            "a\\tb\\nc\\r\\x1b[0m\\x07"
        );
        assert!(matches!(
            terminal_text("plain é".as_bytes()),
            Cow::Borrowed(_)
        ));
        // Bidirectional overrides, C1 controls and bytes that are not UTF-8.
        assert_eq!(
            terminal_text("a\u{202e}b\u{2066}c\u{85}".as_bytes()),
            "a\\u202eb\\u2066c\\x85"
        );
        assert_eq!(terminal_text(b"a\xffb\xfe"), "a\\xffb\\xfe");
        assert_eq!(fold("abcdefg", Some(3)), ["abc", "def", "g"]);
        assert_eq!(fold("", Some(3)), [""]);
        assert_eq!(fold("abc", None), ["abc"]);
        // A wide character never straddles two pieces.
        assert_eq!(fold("ab日本", Some(3)), ["ab", "日", "本"]);
        assert_eq!(display_width("日本a".as_bytes()), 5);
    }

    fn render_bytes(format: &Format, columns: &[&str], cells: &[&[u8]]) -> Vec<u8> {
        let row = cells.iter().map(|c| Cell::text(c.to_vec())).collect();
        printed(format, columns, vec![row])
    }

    const ALL_MODES: [(Mode, bool); 7] = [
        (Mode::Pretty, false),
        (Mode::Line, false),
        (Mode::Column, false),
        (Mode::List, false),
        (Mode::Csv, false),
        // JSON, compact and indented.
        (Mode::Pretty, true),
        (Mode::Pretty, true),
    ];

    fn mode_format(i: usize, to_terminal: bool) -> Format {
        let (mode, json) = ALL_MODES[i];
        Format {
            mode,
            json: json && i == 5,
            json_pretty: json && i == 6,
            to_terminal,
            expand: Expand::Never,
            ..Format::default()
        }
    }

    #[test]
    fn piped_output_keeps_every_byte() {
        // A file name that is not UTF-8 and a process name that rewrites a terminal line.
        let name: &[u8] = b"a\xffb";
        let evil: &[u8] = b"evil\r\x1b[2Khidden";
        for i in 0..ALL_MODES.len() {
            let out = render_bytes(&mode_format(i, false), &["path", "name"], &[name, evil]);
            let has = |needle: &[u8]| out.windows(needle.len()).any(|w| w == needle);
            assert!(has(name), "mode {i}: {}", String::from_utf8_lossy(&out));
            // JSON escapes CR and ESC its own way; the others write them raw.
            if i < 5 {
                assert!(has(evil), "mode {i}: {}", String::from_utf8_lossy(&out));
            } else {
                assert!(has(b"evil\\r\\u001B[2Khidden"), "mode {i}");
            }
        }
    }

    #[test]
    fn terminal_output_escapes_values_and_headers_in_every_mode() {
        let evil: &[u8] = "evil\r\x1b[2Khidden\u{202e}txt.exe".as_bytes();
        for i in 0..ALL_MODES.len() {
            let out = render_bytes(
                &mode_format(i, true),
                &["bad\x1bheader", "path"],
                &[evil, b"a\xffb"],
            );
            let text = String::from_utf8(out).expect("a terminal gets UTF-8");
            assert!(
                !text
                    .chars()
                    .any(|c| (c.is_control() && c != '\n') || is_bidi_control(c)),
                "mode {i}: {text:?}"
            );
            if i < 5 {
                assert!(text.contains("bad\\x1bheader"), "mode {i}: {text}");
                assert!(
                    text.contains("evil\\r\\x1b[2Khidden\\u202etxt.exe"),
                    "mode {i}: {text}"
                );
                assert!(text.contains("a\\xffb"), "mode {i}: {text}");
            } else {
                // JSON: the same string values, the override as a JSON escape.
                assert!(
                    text.contains("evil\\r\\u001B[2Khidden\\u202Etxt.exe"),
                    "mode {i}: {text}"
                );
                assert!(text.contains("a\u{fffd}b"), "mode {i}: {text}");
            }
        }
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
