//! The interactive shell's line editor, in the manner of linenoise (osquery's editor).
//!
//! What reaches the terminal is what osquery's editor writes: the prompt as it is, with
//! nothing before it (no bracketed-paste or synchronized-output switches, no `\r ESC[K`),
//! typed characters at the end of the line echoed as they are, and a redraw only when
//! an edit needs one. Programs that drive `osqueryi` through a pty read the prompt and
//! the echo as plain text. rustyline, used before, cannot be told to leave those
//! sequences out.
//!
//! Keys: printable text, Enter, Backspace/Delete, arrows, Home/End, Ctrl-A/E/B/F,
//! Ctrl-K/U/W (kill) and Ctrl-Y (yank), Alt-B/F and Ctrl-arrows (words), Up/Down and
//! Ctrl-P/N (history), Ctrl-R (history search), TAB (completion: the common prefix, then
//! the list), Ctrl-L (clear), Ctrl-C (abandon the line), Ctrl-D (end of input on an
//! empty line).

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
    edit(Tty { out, raw }, prompt, prompt_width, history, complete)
}

/// What the editor needs from a terminal: its input bytes, its width and its output.
trait Terminal: Write {
    /// The next input byte; `None` at end of input.
    fn read_byte(&mut self) -> io::Result<Option<u8>>;
    /// The terminal's columns now (it may have been resized).
    fn columns(&self) -> usize;
    /// Ctrl-Z: stops the process with the terminal as it was, until it is continued.
    fn suspend(&mut self) -> io::Result<()>;
}

/// The terminal on stdin and stdout, in raw mode while this lives.
struct Tty {
    out: io::StdoutLock<'static>,
    raw: RawMode,
}

impl Write for Tty {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Terminal for Tty {
    fn read_byte(&mut self) -> io::Result<Option<u8>> {
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

    /// 80 when the terminal does not say.
    fn columns(&self) -> usize {
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

    fn suspend(&mut self) -> io::Result<()> {
        self.raw.restore()?;
        // SAFETY: raise has no preconditions; SIGTSTP stops the process (its default).
        unsafe { libc::raise(libc::SIGTSTP) };
        self.raw.apply()
    }
}

/// Writes the prompt and edits one line on `term`.
fn edit<T: Terminal>(
    mut term: T,
    prompt: &str,
    prompt_width: usize,
    history: &History,
    complete: &Completer<'_>,
) -> io::Result<Input> {
    term.write_all(prompt.as_bytes())?;
    term.flush()?;
    let cursor_row = prompt_width.saturating_sub(1) / term.columns().max(1);
    let mut editor = LineEditor {
        term,
        prompt,
        prompt_width,
        buf: String::new(),
        pos: 0,
        cursor_row,
        killed: String::new(),
        history: history.entries(),
        history_index: history.entries().len(),
        saved: String::new(),
        pending: None,
    };
    editor.run(complete)
}

struct LineEditor<'a, T: Terminal> {
    term: T,
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
    /// A key read by the history search that the line editor is still to act on.
    pending: Option<u8>,
}

impl<T: Terminal> LineEditor<'_, T> {
    fn run(&mut self, complete: &Completer<'_>) -> io::Result<Input> {
        loop {
            let byte = match self.pending.take() {
                Some(byte) => byte,
                None => match self.term.read_byte()? {
                    Some(byte) => byte,
                    None => return Ok(Input::Eof),
                },
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
                0x1a => {
                    self.term.suspend()?;
                    // Continued: the job-control shell has moved to a fresh line.
                    self.cursor_row = 0;
                    self.refresh()?;
                }
                0x12 => {
                    if let Some(input) = self.search()? {
                        return Ok(input);
                    }
                }
                0x10 => self.history_move(-1)?,
                0x0e => self.history_move(1)?,
                0x1b => self.escape()?,
                b if b < 0x20 => {}
                b => {
                    if let Some(c) = self.read_char(b)? {
                        self.insert(c.encode_utf8(&mut [0; 4]))?;
                    }
                }
            }
        }
    }

    /// An escape sequence: arrows, Home/End/Delete, Alt-B/F, Ctrl-arrows.
    fn escape(&mut self) -> io::Result<()> {
        let Some(kind) = self.term.read_byte()? else {
            return Ok(());
        };
        let (params, last) = match kind {
            b'[' => {
                let mut params = String::new();
                loop {
                    let Some(b) = self.term.read_byte()? else {
                        return Ok(());
                    };
                    if (0x40..=0x7e).contains(&b) {
                        break (params, b);
                    }
                    params.push(char::from(b));
                }
            }
            b'O' => match self.term.read_byte()? {
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
        self.term.write_all(text.as_bytes())?;
        self.term.flush()
    }

    fn columns(&self) -> usize {
        self.term.columns().max(1)
    }

    /// The character a UTF-8 sequence starting with `first` encodes (the rest is read);
    /// `None` for an invalid sequence or a control character.
    fn read_char(&mut self, first: u8) -> io::Result<Option<char>> {
        let len = match first {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => return Ok(None),
        };
        let mut bytes = vec![first];
        for _ in 1..len {
            match self.term.read_byte()? {
                Some(b) => bytes.push(b),
                None => return Ok(None),
            }
        }
        Ok(std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.chars().next())
            .filter(|c| !c.is_control()))
    }

    /// Inserts at the cursor. At the end of a line with room left, the text is only
    /// echoed, as linenoise does; otherwise the line is redrawn.
    fn insert(&mut self, text: &str) -> io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let at_end = self.pos == self.buf.len();
        let column = (self.prompt_width + self.buf.width()) % self.columns();
        self.buf.insert_str(self.pos, text);
        self.pos += text.len();
        if at_end && column + text.width() < self.columns() {
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
        let cols = self.columns();
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
        let (text, row) = draw(
            self.cursor_row,
            self.columns(),
            (self.prompt, self.prompt_width),
            &self.buf,
            self.pos,
        );
        self.cursor_row = row;
        self.write(&text)
    }

    /// Ctrl-R: searches the history backwards for the typed text, showing
    /// ``(reverse-i-search)`text': match``. Ctrl-R again finds an older match, Enter runs
    /// the match, Ctrl-G or Ctrl-C gives the line back as it was, and any other key takes
    /// the match into the line and then does what it does there.
    fn search(&mut self) -> io::Result<Option<Input>> {
        let mut query = String::new();
        let mut found: Option<usize> = None;
        loop {
            let shown = found.map_or("", |i| self.history[i].as_str());
            let at = shown.find(query.as_str()).filter(|_| found.is_some());
            let prompt = format!("(reverse-i-search)`{query}': ");
            let (text, row) = draw(
                self.cursor_row,
                self.columns(),
                (&prompt, prompt.width()),
                shown,
                at.unwrap_or(0),
            );
            self.cursor_row = row;
            self.write(&text)?;
            let Some(byte) = self.term.read_byte()? else {
                return Ok(Some(Input::Eof));
            };
            match byte {
                0x12 => match self.find(&query, found.unwrap_or(self.history.len())) {
                    Some(i) => found = Some(i),
                    None => self.write("\x07")?,
                },
                0x7f | 0x08 => {
                    query.pop();
                    found = self.find(&query, self.history.len());
                }
                0x07 | 0x03 => {
                    self.refresh()?;
                    return Ok(None);
                }
                b if b >= 0x20 => {
                    if let Some(c) = self.read_char(b)? {
                        query.push(c);
                        // The current match stays while it still contains the text.
                        let from = found.map_or(self.history.len(), |i| i + 1);
                        found = self.find(&query, from);
                    }
                }
                other => {
                    if let Some(i) = found {
                        self.buf = self.history[i].clone();
                        self.pos = self.buf.len();
                        self.history_index = i;
                    }
                    self.refresh()?;
                    self.pending = Some(other);
                    return Ok(None);
                }
            }
        }
    }

    /// The newest history entry before `before` that contains `query`.
    fn find(&self, query: &str, before: usize) -> Option<usize> {
        if query.is_empty() {
            return None;
        }
        self.history[..before.min(self.history.len())]
            .iter()
            .rposition(|entry| entry.contains(query))
    }
}

/// The bytes that draw `prompt` (text and columns) and `text` again from the prompt's
/// first row, the cursor being on row `cursor_row` of them now, and put the cursor at
/// byte `pos` of `text`; and the row it ends on.
fn draw(
    cursor_row: usize,
    cols: usize,
    (prompt, prompt_width): (&str, usize),
    text: &str,
    pos: usize,
) -> (String, usize) {
    let mut out = String::new();
    if cursor_row > 0 {
        let _ = write!(out, "\x1b[{cursor_row}A");
    }
    out.push_str("\r\x1b[J");
    out.push_str(prompt);
    out.push_str(text);
    let total = prompt_width + text.width();
    // A line that ends exactly at the margin leaves the cursor waiting to wrap: move it
    // to the next row so the row arithmetic below holds.
    if total > 0 && total.is_multiple_of(cols) {
        out.push('\n');
    }
    let end_row = total / cols;
    let at = prompt_width + text[..pos].width();
    let (row, column) = (at / cols, at % cols);
    if end_row > row {
        let _ = write!(out, "\x1b[{}A", end_row - row);
    }
    out.push('\r');
    if column > 0 {
        let _ = write!(out, "\x1b[{column}C");
    }
    (out, row)
}

/// Word boundaries for Alt-B/F and Ctrl-arrows.
fn is_word_separator(c: char) -> bool {
    !(c.is_alphanumeric() || c == '_')
}

/// The terminal in raw mode for as long as this lives. Pending input is kept when the
/// mode changes (a pasted second line is read by the next prompt), and output
/// processing stays on, so `\n` still starts a new line.
struct RawMode {
    saved: libc::termios,
    raw: libc::termios,
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
        let mode = RawMode { saved, raw };
        mode.apply()?;
        Ok(mode)
    }

    fn apply(&self) -> io::Result<()> {
        set_termios(&self.raw)
    }

    fn restore(&self) -> io::Result<()> {
        set_termios(&self.saved)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

fn set_termios(settings: &libc::termios) -> io::Result<()> {
    // SAFETY: a valid fd and a pointer to a termios for the call.
    if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, settings) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use unicode_width::UnicodeWidthChar;

    /// Scripted keys in, bytes out, a fixed width.
    struct Fake {
        keys: VecDeque<u8>,
        output: Vec<u8>,
        cols: usize,
    }

    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Terminal for &mut Fake {
        fn read_byte(&mut self) -> io::Result<Option<u8>> {
            Ok(self.keys.pop_front())
        }
        fn columns(&self) -> usize {
            self.cols
        }
        fn suspend(&mut self) -> io::Result<()> {
            self.output.extend_from_slice(b"<stopped>\n");
            Ok(())
        }
    }

    /// Edits one line from `keys` on a `cols`-wide terminal; returns the result and the
    /// bytes written.
    fn session(keys: &[u8], cols: usize, history: &History) -> (Input, String) {
        let tables = ["osquery_info", "osquery_flags", "processes"];
        let complete = |line: &str, pos: usize| {
            let start = line[..pos].rfind(' ').map_or(0, |i| i + 1);
            let word = &line[start..pos];
            let found: Vec<String> = tables
                .iter()
                .filter(|t| t.starts_with(word))
                .map(|t| t.to_string())
                .collect();
            (start, found)
        };
        let mut fake = Fake {
            keys: keys.iter().copied().collect(),
            output: Vec::new(),
            cols,
        };
        let input = edit(&mut fake, "> ", 2, history, &complete).unwrap();
        (input, String::from_utf8(fake.output).unwrap())
    }

    /// What a terminal shows after `bytes`: an xterm-like screen (autowrap with the
    /// cursor waiting at the margin, wide characters wrapping early), enough of it for
    /// the editor's sequences. `\n` also returns the carriage, as the tty's output
    /// processing does. Returns the rows (right-trimmed) and the cursor.
    fn screen(bytes: &str, cols: usize) -> (Vec<String>, (usize, usize)) {
        let mut rows: Vec<Vec<char>> = vec![vec![' '; cols]; 20];
        let (mut r, mut c, mut pending) = (0usize, 0usize, false);
        let mut chars = bytes.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '\x1b' => {
                    assert_eq!(chars.next(), Some('['));
                    let mut param = String::new();
                    let last = loop {
                        let x = chars.next().unwrap();
                        if x.is_ascii_alphabetic() {
                            break x;
                        }
                        param.push(x);
                    };
                    let n: usize = param.parse().unwrap_or(1);
                    pending = false;
                    match (last, param.as_str()) {
                        ('A', _) => r -= n,
                        ('B', _) => r += n,
                        ('C', _) => c = (c + n).min(cols - 1),
                        ('J', "") => {
                            rows[r][c..].fill(' ');
                            for row in &mut rows[r + 1..] {
                                row.fill(' ');
                            }
                        }
                        ('H', _) => (r, c) = (0, 0),
                        ('J', "2") => rows.iter_mut().for_each(|row| row.fill(' ')),
                        other => panic!("unexpected sequence {other:?}"),
                    }
                }
                '\r' => (c, pending) = (0, false),
                '\n' => (r, c, pending) = (r + 1, 0, false),
                '\x07' => {}
                ch => {
                    let w = ch.width().unwrap_or(0);
                    if pending || c + w > cols {
                        (r, c, pending) = (r + 1, 0, false);
                    }
                    rows[r][c] = ch;
                    if w == 2 {
                        rows[r][c + 1] = '\0';
                    }
                    if c + w >= cols {
                        (c, pending) = (cols - 1, true);
                    } else {
                        c += w;
                    }
                }
            }
        }
        let mut text: Vec<String> = rows
            .iter()
            .map(|row| {
                row.iter()
                    .filter(|ch| **ch != '\0')
                    .collect::<String>()
                    .trim_end()
                    .to_owned()
            })
            .collect();
        while text.last().is_some_and(String::is_empty) {
            text.pop();
        }
        (text, (r, c))
    }

    fn line(text: &str) -> Input {
        Input::Line(text.to_owned())
    }

    #[test]
    fn plain_typing_writes_the_prompt_and_the_echo_only() {
        let (input, out) = session(b"select 1;\r", 80, &History::new(10));
        assert_eq!(input, line("select 1;"));
        assert_eq!(out, "> select 1;\n");
    }

    #[test]
    fn edits_inside_a_line_that_wraps() {
        let keys = [
            &b"abcdefghijklmnopqrstuvwxyz"[..],
            &b"\x1b[D".repeat(20),
            b"XY",
            b"\x7f\x7f\x7f",
        ]
        .concat();
        // "> " and 25 characters on a 10-column terminal: three rows.
        let text = ["> abcdeghi", "jklmnopqrs", "tuvwxyz"];
        let (input, out) = session(&keys, 10, &History::new(10));
        assert_eq!(input, Input::Eof);
        assert_eq!(screen(&out, 10), (text.map(String::from).to_vec(), (0, 7)));
        // Home and End.
        let (_, out) = session(&[&keys[..], b"\x01"].concat(), 10, &History::new(10));
        assert_eq!(screen(&out, 10).1, (0, 2));
        let (_, out) = session(&[&keys[..], b"\x01\x05"].concat(), 10, &History::new(10));
        assert_eq!(screen(&out, 10).1, (2, 7));
        // Enter from the middle leaves the cursor below the whole line.
        let (input, out) = session(&[&keys[..], b"\r"].concat(), 10, &History::new(10));
        assert_eq!(input, line("abcdeghijklmnopqrstuvwxyz"));
        assert_eq!(screen(&out, 10), (text.map(String::from).to_vec(), (3, 0)));
    }

    #[test]
    fn a_line_ending_at_the_margin_and_wide_characters() {
        // 2 + 8 = 10 columns: the cursor moves to the next row, where typing goes on.
        let (_, out) = session(b"abcdefghi", 10, &History::new(10));
        assert_eq!(
            screen(&out, 10),
            (vec!["> abcdefgh".to_owned(), "i".to_owned()], (1, 1))
        );
        let (_, out) = session(b"abcdefghi\x1b[D\x1b[D", 10, &History::new(10));
        assert_eq!(screen(&out, 10).1, (0, 9));
        // Double-width characters count two columns.
        let (input, out) = session("日本語日本\x1b[D\x1b[D".as_bytes(), 10, &History::new(10));
        assert_eq!(input, Input::Eof);
        assert_eq!(
            screen(&out, 10),
            (vec!["> 日本語日".to_owned(), "本".to_owned()], (0, 8))
        );
    }

    #[test]
    fn history_up_and_down_keep_the_typed_line() {
        let mut history = History::new(10);
        history.add("select 1;");
        history.add("select 2;");
        let (input, _) = session(b"\x1b[A\x1b[A\r", 80, &history);
        assert_eq!(input, line("select 1;"));
        let (input, _) = session(b"sel\x1b[A\x1b[B\x1b[B\r", 80, &history);
        assert_eq!(input, line("sel"));
        let (input, _) = session(b"\x10\x10\x10\x0e\r", 80, &history);
        assert_eq!(input, line("select 2;"));
    }

    #[test]
    fn reverse_search() {
        let mut history = History::new(10);
        for entry in [
            "select 1 from time;",
            "select 2;",
            "select 3 from time;",
            ".quit",
        ] {
            history.add(entry);
        }
        // The newest match, then an older one with Ctrl-R again; Enter runs it.
        let (input, _) = session(b"\x12time\r", 80, &history);
        assert_eq!(input, line("select 3 from time;"));
        let (input, out) = session(b"\x12time\x12\r", 80, &history);
        assert_eq!(input, line("select 1 from time;"));
        // The search line is shown in place of the prompt; the cursor is on the match.
        let shown = out.rsplit("\r\x1b[J").nth(1).unwrap();
        assert!(
            shown.starts_with("(reverse-i-search)`time': select 1 from time;"),
            "{out:?}"
        );
        // Another key takes the match into the line and acts there.
        let (input, _) = session(b"\x12 2\x05!\r", 80, &history);
        assert_eq!(input, line("select 2;!"));
        // Ctrl-G gives the typed line back.
        let (input, out) = session(b"abc\x12sel\x07d\r", 80, &history);
        assert_eq!(input, line("abcd"));
        let (rows, _) = screen(&out, 80);
        assert_eq!(rows, ["> abcd"]);
        // No match: a bell on Ctrl-R, nothing shown.
        let (input, _) = session(b"\x12zz\x12\x07\r", 80, &history);
        assert_eq!(input, line(""));
    }

    #[test]
    fn kill_yank_and_words() {
        let none = History::new(10);
        let (input, _) = session(b"select a  from\x17\x17x\x19\r", 80, &none);
        assert_eq!(input, line("select xa  "));
        let (input, _) = session(b"one two three\x1bb\x1bb\x0b\r", 80, &none);
        assert_eq!(input, line("one "));
        let (input, _) = session(b"one two\x01\x1bf!\x1b[1;5D\x04\r", 80, &none);
        assert_eq!(input, line("ne! two"));
        let (input, _) = session(b"abc\x1b[D\x15\r", 80, &none);
        assert_eq!(input, line("c"));
    }

    #[test]
    fn completion() {
        let none = History::new(10);
        let (input, _) = session(b"select * from proc\t;\r", 80, &none);
        assert_eq!(input, line("select * from processes;"));
        // Two candidates: the common prefix first, then the list.
        let (input, out) = session(b"from osq\t\t\r", 80, &none);
        assert_eq!(input, line("from osquery_"));
        let (rows, _) = screen(&out, 80);
        assert_eq!(
            rows,
            [
                "> from osquery_",
                "osquery_info  osquery_flags",
                "> from osquery_"
            ]
        );
        // Nothing to complete: a bell, the line unchanged.
        let (input, out) = session(b"zz\t\r", 80, &none);
        assert_eq!(input, line("zz"));
        assert_eq!(out, "> zz\x07\n");
    }

    #[test]
    fn interrupt_and_end_of_input() {
        let none = History::new(10);
        assert_eq!(
            session(b"abc\x03", 80, &none),
            (Input::Interrupted, "> abc^C\n".into())
        );
        assert_eq!(session(b"\x04", 80, &none), (Input::Eof, "> \n".into()));
        // Ctrl-Z: stopped, then the line is drawn again where the terminal is.
        let (input, out) = session(b"ab\x1ac\r", 80, &none);
        assert_eq!(input, line("abc"));
        assert_eq!(out, "> ab<stopped>\n\r\x1b[J> ab\r\x1b[4Cc\n");
        // Ctrl-D inside a line deletes the character under the cursor.
        assert_eq!(session(b"ab\x01\x04\r", 80, &none).0, line("b"));
    }

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
