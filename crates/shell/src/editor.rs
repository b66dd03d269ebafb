//! The interactive shell's line editor, in the manner of linenoise (osquery's editor).
//!
//! What reaches the terminal is what osquery's editor writes: the prompt as it is, with
//! nothing before it (no bracketed-paste or synchronized-output switches, no `\r ESC[K`),
//! typed characters at the end of the line echoed as they are, and a redraw only when
//! an edit needs one. Programs that drive `osqueryi` through a pty read the prompt and
//! the echo as plain text. rustyline, used before, cannot be told to leave those
//! sequences out.
//!
//! Keys: printable text, Enter, Backspace/Delete, arrows, Home/End, Ctrl-A/E/B/F, Ctrl-K/U/W
//! (kill) and Ctrl-Y (yank), Alt-B/F and Ctrl-arrows (words), Up/Down and Ctrl-P/N
//! (history), TAB (completion: the common prefix, then the list), Ctrl-L (clear),
//! Ctrl-C (abandon the line), Ctrl-D (end of input on an empty line).

use std::fmt::Write as _;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use unicode_width::UnicodeWidthStr;

/// What one [`read_line`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    Line(String),
    /// Ctrl-C: the line was abandoned.
    Interrupted,
    /// Ctrl-D on an empty line, or the terminal went away.
    Eof,
}

/// Completion candidates for the word ending at a byte position: the byte where that word
/// starts and the words that may replace it.
pub type Completer<'a> = dyn Fn(&str, usize) -> (usize, Vec<String>) + 'a;

/// Entered lines, oldest first, as a plain file of one line each (linenoise's format).
pub struct History {
    entries: Vec<String>,
    max: usize,
}

impl History {
    pub fn new(max: usize) -> History {
        History {
            entries: Vec::new(),
            max,
        }
    }

    /// Adds a line unless it is blank or repeats the newest entry.
    pub fn add(&mut self, line: &str) {
        if line.trim().is_empty() || self.entries.last().is_some_and(|l| l == line) {
            return;
        }
        self.entries.push(line.to_owned());
        let excess = self.entries.len().saturating_sub(self.max);
        self.entries.drain(..excess);
    }

    /// Reads a history file. A file rustyline wrote (first line `#V2`, `\\` and `\n`
    /// escaped) is read too.
    pub fn load(&mut self, path: &Path) -> io::Result<()> {
        let text = String::from_utf8_lossy(&std::fs::read(path)?).into_owned();
        let mut lines = text.lines().peekable();
        let escaped = lines.peek() == Some(&"#V2");
        if escaped {
            lines.next();
        }
        for line in lines {
            if escaped {
                self.add(&unescape_v2(line));
            } else {
                self.add(line);
            }
        }
        Ok(())
    }

    /// Writes the history file, readable by its owner only (it holds whatever was typed).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut text = String::new();
        for entry in &self.entries {
            text.push_str(entry);
            text.push('\n');
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(text.as_bytes())
    }

    pub fn entries(&self) -> &[String] {
        &self.entries
    }
}

fn unescape_v2(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some('n')) => {
                chars.next();
                out.push('\n');
            }
            ('\\', Some('\\')) => {
                chars.next();
                out.push('\\');
            }
            (c, _) => out.push(c),
        }
    }
    out
}

/// Reads one line from the terminal on stdin, showing `prompt` (which may hold colour
/// escapes; `prompt_width` is the columns it takes) on stdout.
pub fn read_line(
    prompt: &str,
    prompt_width: usize,
    history: &History,
    complete: &Completer<'_>,
) -> io::Result<Input> {
    let mut out = io::stdout().lock();
    let Ok(raw) = RawMode::enable() else {
        // Not a terminal after all: a plain read.
        out.write_all(prompt.as_bytes())?;
        out.flush()?;
        let mut line = String::new();
        if io::stdin().lock().read_line(&mut line)? == 0 {
            return Ok(Input::Eof);
        }
        let line = line.strip_suffix('\n').unwrap_or(&line);
        return Ok(Input::Line(
            line.strip_suffix('\r').unwrap_or(line).to_owned(),
        ));
    };
    out.write_all(prompt.as_bytes())?;
    out.flush()?;
    let mut editor = LineEditor {
        out,
        prompt,
        prompt_width,
        buf: String::new(),
        pos: 0,
        cursor_row: prompt_width.saturating_sub(1) / terminal_columns(),
        killed: String::new(),
        history: history.entries(),
        history_index: history.entries().len(),
        saved: String::new(),
    };
    let input = editor.run(complete);
    drop(raw);
    input
}

struct LineEditor<'a> {
    out: io::StdoutLock<'static>,
    prompt: &'a str,
    prompt_width: usize,
    buf: String,
    /// Cursor, a byte index on a character boundary of `buf`.
    pos: usize,
    /// The terminal row of the cursor, counted from the prompt's first row.
    cursor_row: usize,
    /// The text the last kill removed (Ctrl-Y inserts it).
    killed: String,
    history: &'a [String],
    /// The history entry shown; `history.len()` is the line being typed.
    history_index: usize,
    /// The line being typed, kept while history entries are shown.
    saved: String,
}

impl LineEditor<'_> {
    fn run(&mut self, complete: &Completer<'_>) -> io::Result<Input> {
        loop {
            let Some(byte) = read_byte()? else {
                return Ok(Input::Eof);
            };
            match byte {
                b'\r' | b'\n' => {
                    if self.pos != self.buf.len() {
                        self.pos = self.buf.len();
                        self.refresh()?;
                    }
                    self.write("\n")?;
                    return Ok(Input::Line(std::mem::take(&mut self.buf)));
                }
                0x03 => {
                    self.write("^C\n")?;
                    return Ok(Input::Interrupted);
                }
                0x04 if self.buf.is_empty() => {
                    self.write("\n")?;
                    return Ok(Input::Eof);
                }
                0x04 => self.delete_forward()?,
                0x7f | 0x08 => self.delete_backward()?,
                b'\t' => self.complete(complete)?,
                0x01 => self.move_to(0)?,
                0x05 => self.move_to(self.buf.len())?,
                0x02 => self.move_to(self.prev_char())?,
                0x06 => self.move_to(self.next_char())?,
                0x0b => self.kill(self.pos, self.buf.len())?,
                0x15 => self.kill(0, self.pos)?,
                0x17 => self.kill(self.word_start(char::is_whitespace), self.pos)?,
                0x19 => self.insert(&self.killed.clone())?,
                0x0c => {
                    self.write("\x1b[H\x1b[2J")?;
                    self.cursor_row = 0;
                    self.refresh()?;
                }
                0x10 => self.history_move(-1)?,
                0x0e => self.history_move(1)?,
                0x1b => self.escape()?,
                b if b < 0x20 => {}
                b => {
                    if let Some(c) = read_char(b)? {
                        self.insert(c.encode_utf8(&mut [0; 4]))?;
                    }
                }
            }
        }
    }

    /// An escape sequence: arrows, Home/End/Delete, Alt-B/F, Ctrl-arrows.
    fn escape(&mut self) -> io::Result<()> {
        let Some(kind) = read_byte()? else {
            return Ok(());
        };
        let (params, last) = match kind {
            b'[' => {
                let mut params = String::new();
                loop {
                    let Some(b) = read_byte()? else {
                        return Ok(());
                    };
                    if (0x40..=0x7e).contains(&b) {
                        break (params, b);
                    }
                    params.push(char::from(b));
                }
            }
            b'O' => match read_byte()? {
                Some(b) => (String::new(), b),
                None => return Ok(()),
            },
            b'b' => return self.move_to(self.word_start(is_word_separator)),
            b'f' => return self.move_to(self.word_end()),
            _ => return Ok(()),
        };
        // `1;5C` and friends: a modifier (Ctrl, Alt) makes the arrow move by words.
        let by_word = params.contains(';');
        match (last, params.as_str()) {
            (b'A', _) => self.history_move(-1),
            (b'B', _) => self.history_move(1),
            (b'C', _) if by_word => self.move_to(self.word_end()),
            (b'D', _) if by_word => self.move_to(self.word_start(is_word_separator)),
            (b'C', _) => self.move_to(self.next_char()),
            (b'D', _) => self.move_to(self.prev_char()),
            (b'H', _) | (b'~', "1" | "7") => self.move_to(0),
            (b'F', _) | (b'~', "4" | "8") => self.move_to(self.buf.len()),
            (b'~', "3") => self.delete_forward(),
            _ => Ok(()),
        }
    }

    fn write(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    /// Inserts at the cursor. At the end of a line with room left, the text is only
    /// echoed, as linenoise does; otherwise the line is redrawn.
    fn insert(&mut self, text: &str) -> io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let at_end = self.pos == self.buf.len();
        let column = (self.prompt_width + self.buf.width()) % terminal_columns();
        self.buf.insert_str(self.pos, text);
        self.pos += text.len();
        if at_end && column + text.width() < terminal_columns() {
            self.write(text)
        } else {
            self.refresh()
        }
    }

    fn delete_backward(&mut self) -> io::Result<()> {
        if self.pos == 0 {
            return Ok(());
        }
        let start = self.prev_char();
        self.buf.replace_range(start..self.pos, "");
        self.pos = start;
        self.refresh()
    }

    fn delete_forward(&mut self) -> io::Result<()> {
        if self.pos == self.buf.len() {
            return Ok(());
        }
        let end = self.next_char();
        self.buf.replace_range(self.pos..end, "");
        self.refresh()
    }

    fn kill(&mut self, start: usize, end: usize) -> io::Result<()> {
        if start >= end {
            return Ok(());
        }
        self.killed = self.buf[start..end].to_owned();
        self.buf.replace_range(start..end, "");
        self.pos = start;
        self.refresh()
    }

    fn move_to(&mut self, pos: usize) -> io::Result<()> {
        if pos == self.pos {
            return Ok(());
        }
        self.pos = pos;
        self.refresh()
    }

    fn prev_char(&self) -> usize {
        self.buf[..self.pos]
            .char_indices()
            .next_back()
            .map_or(0, |(i, _)| i)
    }

    fn next_char(&self) -> usize {
        self.buf[self.pos..]
            .chars()
            .next()
            .map_or(self.pos, |c| self.pos + c.len_utf8())
    }

    /// The start of the word before the cursor, words being separated by `separator`.
    fn word_start(&self, separator: fn(char) -> bool) -> usize {
        let head = &self.buf[..self.pos];
        let trimmed = head.trim_end_matches(separator);
        trimmed
            .char_indices()
            .rev()
            .find(|(_, c)| separator(*c))
            .map_or(0, |(i, c)| i + c.len_utf8())
    }

    /// The end of the word after the cursor.
    fn word_end(&self) -> usize {
        let tail = &self.buf[self.pos..];
        let skipped = tail.len() - tail.trim_start_matches(is_word_separator).len();
        tail[skipped..]
            .char_indices()
            .find(|(_, c)| is_word_separator(*c))
            .map_or(self.buf.len(), |(i, _)| self.pos + skipped + i)
    }

    fn history_move(&mut self, step: isize) -> io::Result<()> {
        let Some(index) = self.history_index.checked_add_signed(step) else {
            return Ok(());
        };
        if index > self.history.len() {
            return Ok(());
        }
        if self.history_index == self.history.len() {
            self.saved = self.buf.clone();
        }
        self.history_index = index;
        self.buf = match self.history.get(index) {
            Some(entry) => entry.clone(),
            None => self.saved.clone(),
        };
        self.pos = self.buf.len();
        self.refresh()
    }

    /// TAB: one candidate replaces the word; several extend it by their common prefix, or
    /// are listed below the line when there is nothing to extend.
    fn complete(&mut self, complete: &Completer<'_>) -> io::Result<()> {
        let (start, candidates) = complete(&self.buf, self.pos);
        let start = start.min(self.pos);
        let word = &self.buf[start..self.pos];
        let Some(first) = candidates.first() else {
            return self.write("\x07");
        };
        let common = candidates.iter().fold(first.as_str(), |prefix, c| {
            let shared = prefix
                .char_indices()
                .zip(c.chars())
                .find(|((_, a), b)| a != b)
                .map_or(prefix.len().min(c.len()), |((i, _), _)| i);
            &prefix[..shared]
        });
        if let Some(rest) = common.strip_prefix(word).filter(|r| !r.is_empty()) {
            return self.insert(rest);
        }
        if candidates.len() == 1 {
            return self.write("\x07");
        }
        // List them on the lines below, then draw the prompt and line again.
        let cols = terminal_columns();
        let end_row = (self.prompt_width + self.buf.width()) / cols;
        let mut text = String::new();
        if end_row > self.cursor_row {
            let _ = write!(text, "\x1b[{}B", end_row - self.cursor_row);
        }
        text.push('\n');
        text.push_str(&candidates.join("  "));
        text.push('\n');
        self.write(&text)?;
        self.cursor_row = 0;
        self.refresh()
    }

    /// Draws the prompt and the line again from the prompt's first row, and puts the
    /// cursor where `pos` is.
    fn refresh(&mut self) -> io::Result<()> {
        let cols = terminal_columns();
        let mut text = String::new();
        if self.cursor_row > 0 {
            let _ = write!(text, "\x1b[{}A", self.cursor_row);
        }
        text.push_str("\r\x1b[J");
        text.push_str(self.prompt);
        text.push_str(&self.buf);
        let total = self.prompt_width + self.buf.width();
        // A line that ends exactly at the margin leaves the cursor waiting to wrap: move
        // it to the next row so the row arithmetic below holds.
        if total > 0 && total.is_multiple_of(cols) {
            text.push('\n');
        }
        let end_row = total / cols;
        let at = self.prompt_width + self.buf[..self.pos].width();
        let (row, column) = (at / cols, at % cols);
        if end_row > row {
            let _ = write!(text, "\x1b[{}A", end_row - row);
        }
        text.push('\r');
        if column > 0 {
            let _ = write!(text, "\x1b[{column}C");
        }
        self.cursor_row = row;
        self.write(&text)
    }
}

/// Word boundaries for Alt-B/F and Ctrl-arrows.
fn is_word_separator(c: char) -> bool {
    !(c.is_alphanumeric() || c == '_')
}

/// The terminal's columns (80 when it does not say).
fn terminal_columns() -> usize {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        // SAFETY: winsize is plain old data; TIOCGWINSZ fills it or fails.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: a valid fd number and a pointer to a winsize for the call.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0 && size.ws_col > 0 {
            return usize::from(size.ws_col);
        }
    }
    80
}

/// One byte from stdin; `None` at end of input.
fn read_byte() -> io::Result<Option<u8>> {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into a valid one-byte buffer.
        let n = unsafe { libc::read(libc::STDIN_FILENO, (&raw mut byte).cast(), 1) };
        match n {
            1 => return Ok(Some(byte)),
            0 => return Ok(None),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// The character a UTF-8 sequence starting with `first` encodes (the rest is read from
/// stdin); `None` for an invalid sequence.
fn read_char(first: u8) -> io::Result<Option<char>> {
    let len = match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return Ok(None),
    };
    let mut bytes = vec![first];
    for _ in 1..len {
        match read_byte()? {
            Some(b) => bytes.push(b),
            None => return Ok(None),
        }
    }
    Ok(std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.chars().next())
        .filter(|c| !c.is_control()))
}

/// The terminal in raw mode for as long as this lives. Pending input is kept when the
/// mode changes (a pasted second line is read by the next prompt), and output
/// processing stays on, so `\n` still starts a new line.
struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    fn enable() -> io::Result<RawMode> {
        // SAFETY: termios is plain old data that tcgetattr fills.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a valid fd and a pointer to a termios for the call.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut raw = saved;
        raw.c_iflag &= !(libc::BRKINT | libc::ICRNL | libc::INPCK | libc::ISTRIP | libc::IXON);
        raw.c_cflag |= libc::CS8;
        raw.c_lflag &= !(libc::ECHO | libc::ICANON | libc::IEXTEN | libc::ISIG);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: as above, with the termios to apply.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enable` on the same fd.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, &self.saved) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_newest_without_blanks_or_repeats() {
        let mut h = History::new(3);
        for line in ["a", "", "b", "b", "  ", "c", "d"] {
            h.add(line);
        }
        assert_eq!(h.entries(), ["b", "c", "d"]);
    }

    #[test]
    fn history_files_round_trip_and_rustyline_files_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h");
        let mut h = History::new(10);
        h.add("select 1;");
        h.add("select '\\';");
        h.save(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "select 1;\nselect '\\';\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut back = History::new(10);
        back.load(&path).unwrap();
        assert_eq!(back.entries(), h.entries());

        std::fs::write(&path, "#V2\nselect '\\\\';\n.quit\n").unwrap();
        let mut old = History::new(10);
        old.load(&path).unwrap();
        assert_eq!(old.entries(), ["select '\\';", ".quit"]);
    }
}
