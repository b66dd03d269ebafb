//! Where SQL statements end, found in one pass, and the bounds on what the shell reads.
//!
//! SQLite's `sqlite3_complete` says whether a text ends with a complete statement by
//! scanning all of it, and `sqlite3_prepare` copies all the text it is given: asked again
//! after every `;`, both re-read what follows or precedes, which made a `--query_file` of
//! 200,000 statements quadratic. [`Scanner`] follows the same rules byte by byte and
//! keeps its state between calls (inside a quoted string or identifier, a comment, or the
//! body of a `CREATE TRIGGER`, whose `;` do not end it), so each byte is looked at once;
//! [`split`] and [`StatementReader`] hand SQLite one statement at a time.
//!
//! Input is bounded before it reaches memory: a statement longer than
//! [`MAX_STATEMENT_BYTES`], or any NUL byte, stops the input with an error instead of
//! growing without end (`osqueryi < /dev/zero`).

use std::fmt;
use std::io::{self, BufRead, Read};

/// The longest statement the shell reads: 64 MiB. SQLite's own limit
/// (`SQLITE_MAX_SQL_LENGTH`) is 1 GB, but a statement costs several times its length
/// (our buffer, SQLite's copy in `prepare`, its parse tree), so accepting that much would
/// let one line of input take gigabytes. No real query comes near 64 MiB; reading one
/// that long costs a few hundred MB at most.
pub const MAX_STATEMENT_BYTES: usize = 64 << 20;

/// Why the shell stopped reading its input.
#[derive(Debug)]
pub enum InputError {
    /// A statement (or line) longer than [`MAX_STATEMENT_BYTES`].
    TooLong,
    /// A NUL byte: the input is not SQL text.
    Nul,
    /// A statement whose bytes are not UTF-8 (SQLite reads SQL as UTF-8).
    NotUtf8,
    Io(io::Error),
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::TooLong => write!(
                f,
                "statement longer than {} MiB, the shell's limit",
                MAX_STATEMENT_BYTES >> 20
            ),
            InputError::Nul => f.write_str("input contains a NUL byte: it is not SQL text"),
            InputError::NotUtf8 => f.write_str("statement is not valid UTF-8"),
            InputError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Where the scan is inside one token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Lex {
    /// Between tokens.
    #[default]
    Between,
    /// In a word (letters, digits, `_`, `$`, bytes above 0x7f): kept to spot keywords.
    Word,
    /// After one `-`: a comment if another follows.
    Dash,
    /// After one `/`: a comment if `*` follows.
    Slash,
    /// In a `--` comment, up to the end of the line.
    LineComment,
    /// In a `/* */` comment.
    BlockComment,
    /// In a `/* */` comment, just after a `*`.
    BlockStar,
    /// In a quoted string or identifier that the given byte closes (`'`, `"`, `` ` ``, `]`).
    Quoted(u8),
}

/// What a token is to the statement boundary rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Semi,
    /// Whitespace or a comment.
    Space,
    Explain,
    Create,
    Temp,
    Trigger,
    End,
    Other,
}

/// Where the scan is in the statement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Stmt {
    /// Nothing but whitespace and comments yet.
    #[default]
    Empty,
    /// Just after the `;` that ended a statement (whitespace and comments may follow).
    Ended,
    /// In a statement; its next `;` ends it.
    Plain,
    /// After a leading `EXPLAIN` (and any words: `EXPLAIN QUERY PLAN`).
    Explain,
    /// After a leading `CREATE` (and `TEMP`): a `TRIGGER` may follow.
    Create,
    /// In a trigger's body: only `; END ;` ends it.
    Trigger,
    /// In a trigger's body, after a `;`.
    TriggerSemi,
    /// In a trigger's body, after `; END`.
    TriggerEnd,
}

impl Stmt {
    fn after(self, token: Token) -> Stmt {
        use Stmt::*;
        match (self, token) {
            (Trigger | TriggerSemi, Token::Semi) => TriggerSemi,
            (_, Token::Semi) => Ended,
            (state, Token::Space) => state,
            (TriggerSemi, Token::End) => TriggerEnd,
            (Trigger | TriggerSemi | TriggerEnd, _) => Trigger,
            (Empty | Ended, Token::Explain) => Explain,
            (Empty | Ended | Explain, Token::Create) => Create,
            (Explain, Token::Other) => Explain,
            (Create, Token::Temp) => Create,
            (Create, Token::Trigger) => Trigger,
            _ => Plain,
        }
    }
}

/// The longest keyword that matters here, `TEMPORARY`.
const KEYWORD_MAX: usize = 9;

/// SQLite's statement-boundary rules, applied as bytes arrive. Bytes above 0x7f are
/// word bytes, so UTF-8 text (or any bytes) can be fed in arbitrary pieces.
#[derive(Debug, Clone, Default)]
pub struct Scanner {
    lex: Lex,
    stmt: Stmt,
    /// The word being read, lower-cased, while it is no longer than a keyword.
    word: [u8; KEYWORD_MAX],
    word_len: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner::default()
    }

    /// Whether the text scanned so far ends with a complete statement: what
    /// `sqlite3_complete` answers for it (a `--` comment must have its line end).
    pub fn is_complete(&self) -> bool {
        self.stmt == Stmt::Ended && self.lex == Lex::Between
    }

    /// Scans all of `bytes`.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.step(b);
        }
    }

    /// Scans `bytes` up to the first `;` that ends a statement and returns the offset
    /// just past it; `None` (all scanned) if there is none.
    pub fn find_end(&mut self, bytes: &[u8]) -> Option<usize> {
        bytes.iter().position(|&b| self.step(b)).map(|i| i + 1)
    }

    /// Scans one byte; true if it is a `;` that ends a statement.
    fn step(&mut self, b: u8) -> bool {
        let token = match self.lex {
            Lex::Quoted(close) => {
                if b == close {
                    self.lex = Lex::Between;
                    return self.token(Token::Other);
                }
                return false;
            }
            Lex::LineComment => {
                if b == b'\n' {
                    self.lex = Lex::Between;
                    return self.token(Token::Space);
                }
                return false;
            }
            Lex::BlockComment => {
                if b == b'*' {
                    self.lex = Lex::BlockStar;
                }
                return false;
            }
            Lex::BlockStar => {
                self.lex = match b {
                    b'/' => {
                        self.lex = Lex::Between;
                        return self.token(Token::Space);
                    }
                    b'*' => Lex::BlockStar,
                    _ => Lex::BlockComment,
                };
                return false;
            }
            Lex::Word if is_word_byte(b) => {
                if self.word_len < KEYWORD_MAX {
                    self.word[self.word_len] = b.to_ascii_lowercase();
                }
                self.word_len += 1;
                return false;
            }
            Lex::Dash if b == b'-' => {
                self.lex = Lex::LineComment;
                return false;
            }
            Lex::Slash if b == b'*' => {
                self.lex = Lex::BlockComment;
                return false;
            }
            // The pending word or lone `-`/`/` ends here; `b` starts what follows.
            Lex::Word => Some(self.keyword()),
            Lex::Dash | Lex::Slash => Some(Token::Other),
            Lex::Between => None,
        };
        if let Some(token) = token {
            self.lex = Lex::Between;
            // Only a `;` ends a statement, and `b` is not part of this token.
            self.token(token);
        }
        match b {
            b';' => self.token(Token::Semi),
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => self.token(Token::Space),
            b'\'' | b'"' | b'`' => {
                self.lex = Lex::Quoted(b);
                false
            }
            b'[' => {
                self.lex = Lex::Quoted(b']');
                false
            }
            b'-' => {
                self.lex = Lex::Dash;
                false
            }
            b'/' => {
                self.lex = Lex::Slash;
                false
            }
            b if is_word_byte(b) => {
                self.lex = Lex::Word;
                self.word[0] = b.to_ascii_lowercase();
                self.word_len = 1;
                false
            }
            _ => self.token(Token::Other),
        }
    }

    /// The word just read, as a token.
    fn keyword(&self) -> Token {
        if self.word_len > KEYWORD_MAX {
            return Token::Other;
        }
        match &self.word[..self.word_len] {
            b"explain" => Token::Explain,
            b"create" => Token::Create,
            b"temp" | b"temporary" => Token::Temp,
            b"trigger" => Token::Trigger,
            b"end" => Token::End,
            _ => Token::Other,
        }
    }

    /// Applies a token; true if it ended a statement.
    fn token(&mut self, token: Token) -> bool {
        let before = self.stmt;
        self.stmt = before.after(token);
        token == Token::Semi && self.stmt == Stmt::Ended
    }
}

/// The statements of `sql` in order, each up to and including the `;` that ends it, then
/// the text after the last one (if any: SQLite runs a final statement without `;`, and
/// finds nothing to run in whitespace or comments).
pub fn split(sql: &str) -> impl Iterator<Item = &str> {
    let mut scanner = Scanner::new();
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= sql.len() {
            return None;
        }
        let end = match scanner.find_end(&sql.as_bytes()[start..]) {
            Some(n) => start + n,
            None => sql.len(),
        };
        // A `;` is one byte, so `end` is on a character boundary.
        let statement = &sql[start..end];
        start = end;
        Some(statement)
    })
}

/// How much a [`StatementReader`] asks its source for at a time.
const READ_CHUNK: usize = 64 << 10;

/// Past this size an input buffer gets room for its whole bound at once.
const GROW_TO_BOUND_FROM: usize = 1 << 20;

/// How much to reserve exactly for `additional` more bytes in a buffer of `len` bytes
/// and `capacity` that holds at most `bound`, or `None` to let it grow as it would. A
/// buffer past [`GROW_TO_BOUND_FROM`] gets room up to `bound` in one step: grown by
/// doubling, it would leave every outgrown buffer with the allocator, which hands freed
/// memory back to the system lazily (mimalloc), and a statement at the limit would cost
/// about twice the limit in RSS. Room not yet written costs only address space.
pub(crate) fn room_to_bound(
    len: usize,
    capacity: usize,
    additional: usize,
    bound: usize,
) -> Option<usize> {
    let needed = len.saturating_add(additional);
    (needed > capacity && needed > GROW_TO_BOUND_FROM && needed <= bound).then(|| bound - len)
}

/// Reads SQL from a file or pipe one statement at a time, keeping in memory only the
/// statement being read (at most [`MAX_STATEMENT_BYTES`]).
pub struct StatementReader<R> {
    source: R,
    buf: Vec<u8>,
    /// Where the statement being read starts in `buf`.
    start: usize,
    /// How much of `buf` the scanner has seen.
    scanned: usize,
    scanner: Scanner,
    at_end: bool,
}

impl<R: Read> StatementReader<R> {
    pub fn new(source: R) -> StatementReader<R> {
        StatementReader {
            source,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            scanner: Scanner::new(),
            at_end: false,
        }
    }

    /// The next statement with its `;` (the last one may lack it, or be only
    /// whitespace and comments); `None` at the end of the input.
    pub fn next_statement(&mut self) -> Result<Option<String>, InputError> {
        loop {
            if let Some(n) = self.scanner.find_end(&self.buf[self.scanned..]) {
                let end = self.scanned + n;
                return self.take(end).map(Some);
            }
            self.scanned = self.buf.len();
            if self.buf.len() - self.start > MAX_STATEMENT_BYTES {
                return Err(InputError::TooLong);
            }
            if self.at_end {
                return if self.start == self.buf.len() {
                    Ok(None)
                } else {
                    self.take(self.buf.len()).map(Some)
                };
            }
            self.read_more()?;
        }
    }

    /// The statement from `start` to `end`, which becomes the next start.
    fn take(&mut self, end: usize) -> Result<String, InputError> {
        if end - self.start > MAX_STATEMENT_BYTES {
            return Err(InputError::TooLong);
        }
        let bytes = &self.buf[self.start..end];
        self.start = end;
        self.scanned = end;
        String::from_utf8(bytes.to_vec()).map_err(|_| InputError::NotUtf8)
    }

    fn read_more(&mut self) -> Result<(), InputError> {
        // What is already handed out goes; only the statement being read stays. Done once
        // per read, so the bytes moved are bounded by the bytes read.
        self.buf.drain(..self.start);
        self.scanned -= self.start;
        self.start = 0;
        let old = self.buf.len();
        // The statement being read, a chunk past the limit, and the chunk now read.
        let bound = MAX_STATEMENT_BYTES + 2 * READ_CHUNK;
        if let Some(room) = room_to_bound(old, self.buf.capacity(), READ_CHUNK, bound) {
            self.buf.reserve_exact(room);
        }
        self.buf.resize(old + READ_CHUNK, 0);
        let n = loop {
            match self.source.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(InputError::Io(e));
                }
            }
        };
        self.buf.truncate(old + n);
        self.at_end = n == 0;
        if self.buf[old..].contains(&0) {
            return Err(InputError::Nul);
        }
        Ok(())
    }
}

/// Reads one line (with its `\n`, if any) into `line`, refusing a NUL byte and a line
/// longer than `limit` bytes (without its `\n`) before reading the rest of it. False at
/// the end of the input.
pub fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, InputError> {
    line.clear();
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(InputError::Io(e)),
        };
        if available.is_empty() {
            return Ok(!line.is_empty());
        }
        let (chunk, ends_line) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        if chunk.contains(&0) {
            return Err(InputError::Nul);
        }
        if line.len() + chunk.len() - usize::from(ends_line) > limit {
            return Err(InputError::TooLong);
        }
        let bound = limit.saturating_add(1);
        if let Some(room) = room_to_bound(line.len(), line.capacity(), chunk.len(), bound) {
            line.reserve_exact(room);
        }
        line.extend_from_slice(chunk);
        let used = chunk.len();
        reader.consume(used);
        if ends_line {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_engine::is_complete;

    /// The scanner's answer for the whole of `text`.
    fn complete(text: &str) -> bool {
        let mut scanner = Scanner::new();
        scanner.feed(text.as_bytes());
        scanner.is_complete()
    }

    const CASES: &[&str] = &[
        "",
        " ",
        ";",
        " ; ",
        "select 1",
        "select 1;",
        "select 1; ",
        "select 1;\n",
        "select 1; -- done",
        "select 1; -- done\n",
        "select 1 -- ;",
        "select 1; /* x */",
        "select 1; /* x",
        "select 1; /*/ ;",
        "select 1; /**/",
        "select ';'",
        "select ';';",
        "select 'it''s';",
        "select \"a;b\";",
        "select [a;b];",
        "select `a;b`;",
        "select [a;b",
        "select 1; select",
        "select 1 - 1;",
        "select 4 / 2;",
        "select -1;-",
        "select 1;/",
        "create table t(a);",
        "create trigger x after insert on t begin select 1;",
        "create trigger x after insert on t begin select 1; end",
        "create trigger x after insert on t begin select 1; end;",
        "CREATE TEMP TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; END;",
        "create temporary trigger x after insert on t begin select 1; select 2; end ;",
        "create trigger x begin select 1; end_x; end;",
        "create trigger x begin select 1; end /* c */ ;",
        "explain create trigger x begin select 1;",
        "explain query plan create trigger x begin select 1;",
        "explain query plan create trigger x begin select 1; end;",
        "explain select 1;",
        "select 1 as trigger;",
        "create view v as select 1 as end;",
        "select 'é';",
        "select 'é' as ñ;",
        "create$ trigger x begin select 1;",
        "createtrigger x begin select 1;",
        "select 1;; ;",
        "end; trigger;",
        "create temp temp trigger begin ; end;",
        "create trigger begin ;; end ;",
        "create trigger begin ; -- c\n end;",
        "create trigger begin ; end -- c",
        "create trigger begin ; end; -- c",
    ];

    #[test]
    fn agrees_with_sqlite_on_chosen_cases() {
        for case in CASES {
            assert_eq!(complete(case), is_complete(case), "{case:?}");
        }
    }

    #[test]
    fn agrees_with_sqlite_on_generated_text() {
        // Every sequence of up to 5 pieces, from pieces that exercise each rule; a fixed
        // pseudo-random walk adds longer ones. SQLite's sqlite3_complete is the reference.
        let pieces = [
            ";", " ", "\n", "select", "1", "'", "\"", "[", "]", "`", "-", "--", "/", "*", "/*",
            "*/", "create", "temp", "trigger", "end", "explain", "x", "é", "$",
        ];
        let mut checked = 0;
        let mut text = String::new();
        fn walk(pieces: &[&str], text: &mut String, depth: usize, checked: &mut usize) {
            let mut scanner = Scanner::new();
            scanner.feed(text.as_bytes());
            assert_eq!(scanner.is_complete(), is_complete(text), "{text:?}");
            *checked += 1;
            if depth == 0 {
                return;
            }
            for p in pieces {
                let len = text.len();
                text.push_str(p);
                walk(pieces, text, depth - 1, checked);
                text.truncate(len);
            }
        }
        walk(&pieces[..], &mut text, 4, &mut checked);
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            text.clear();
            for _ in 0..12 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(pieces[(seed % pieces.len() as u64) as usize]);
                text.push(' ');
            }
            assert_eq!(complete(&text), is_complete(&text), "{text:?}");
            checked += 1;
        }
        assert!(checked > 300_000, "{checked}");
    }

    #[test]
    fn text_fed_in_pieces_scans_as_a_whole() {
        for case in CASES {
            for cut in 0..=case.len() {
                let mut scanner = Scanner::new();
                scanner.feed(&case.as_bytes()[..cut]);
                scanner.feed(&case.as_bytes()[cut..]);
                assert_eq!(
                    scanner.is_complete(),
                    is_complete(case),
                    "{case:?} at {cut}"
                );
            }
        }
    }

    #[test]
    fn split_gives_each_statement_with_its_semicolon() {
        let parts: Vec<&str> = split("select 1; select ';'; \n-- c\nselect 2").collect();
        assert_eq!(parts, ["select 1;", " select ';';", " \n-- c\nselect 2"]);
        let trigger = "create trigger t after insert on x begin select 1; select 2; end; select 3;";
        let parts: Vec<&str> = split(trigger).collect();
        assert_eq!(
            parts,
            [
                "create trigger t after insert on x begin select 1; select 2; end;",
                " select 3;"
            ]
        );
        assert_eq!(split("").count(), 0);
        assert_eq!(split("select 1;").collect::<Vec<_>>(), ["select 1;"]);
        // Each part is exactly one statement for SQLite: it is complete and nothing
        // before its end is.
        let text = "select 'a;b' as \"c;d\"; /* ; */ select [e;f] from t; -- ;\n";
        for part in split(text) {
            if is_complete(part) {
                let end = part.rfind(';').unwrap();
                assert!(!is_complete(&part[..end]), "{part:?}");
            }
        }
    }

    /// A reader that hands out at most `n` bytes per read, to cut statements anywhere.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn read_all(bytes: &[u8], per_read: usize) -> Result<Vec<String>, InputError> {
        let mut reader = StatementReader::new(Trickle(bytes, per_read));
        let mut out = Vec::new();
        while let Some(s) = reader.next_statement()? {
            out.push(s);
        }
        Ok(out)
    }

    #[test]
    fn the_reader_gives_the_statements_split_gives() {
        let text =
            "select 1;\nselect 'x;\ny';create trigger t begin select 1; end;\n-- tail\nselect 2";
        let want: Vec<&str> = split(text).collect();
        for per_read in [1, 2, 3, 7, 64, 100_000] {
            assert_eq!(
                read_all(text.as_bytes(), per_read).unwrap(),
                want,
                "{per_read}"
            );
        }
        assert!(read_all(b"", 10).unwrap().is_empty());
    }

    #[test]
    fn the_reader_refuses_nul_long_and_non_utf8_statements() {
        assert!(matches!(
            read_all(b"select 1;\0", 100),
            Err(InputError::Nul)
        ));
        assert!(matches!(
            read_all(b"select 1; select '\xff';", 100),
            Err(InputError::NotUtf8)
        ));
        // A statement one byte over the limit is refused once that much has been read;
        // one at the limit is not.
        let mut long = vec![b'x'; MAX_STATEMENT_BYTES - 1];
        long.push(b';');
        assert_eq!(
            read_all(&long, READ_CHUNK).unwrap()[0].len(),
            MAX_STATEMENT_BYTES
        );
        long.insert(0, b'x');
        assert!(matches!(
            read_all(&long, READ_CHUNK),
            Err(InputError::TooLong)
        ));
        // /dev/zero: refused at the first read, not after filling memory.
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let mut reader = StatementReader::new(zero);
        assert!(matches!(reader.next_statement(), Err(InputError::Nul)));
        assert!(reader.buf.len() <= READ_CHUNK);
    }

    #[test]
    fn lines_are_bounded_before_they_are_read() {
        let mut line = Vec::new();
        let mut input = io::Cursor::new(b"ab\ncd".to_vec());
        assert!(read_line_bounded(&mut input, &mut line, 2).unwrap());
        assert_eq!(line, b"ab\n");
        assert!(read_line_bounded(&mut input, &mut line, 2).unwrap());
        assert_eq!(line, b"cd");
        assert!(!read_line_bounded(&mut input, &mut line, 2).unwrap());
        let mut input = io::Cursor::new(b"abc\n".to_vec());
        assert!(matches!(
            read_line_bounded(&mut input, &mut line, 2),
            Err(InputError::TooLong)
        ));
        let mut input = io::Cursor::new(b"a\0\n".to_vec());
        assert!(matches!(
            read_line_bounded(&mut input, &mut line, 10),
            Err(InputError::Nul)
        ));
        let mut zero = io::BufReader::new(std::fs::File::open("/dev/zero").unwrap());
        assert!(matches!(
            read_line_bounded(&mut zero, &mut line, MAX_STATEMENT_BYTES),
            Err(InputError::Nul)
        ));
    }

    #[test]
    fn a_large_line_gets_room_for_its_bound_once() {
        // Small buffers grow as Vec does.
        assert_eq!(room_to_bound(10, 16, 100, MAX_STATEMENT_BYTES), None);
        assert_eq!(room_to_bound(10, 200, 100, MAX_STATEMENT_BYTES), None);
        // Past the threshold: up to the bound, in one step.
        let big = GROW_TO_BOUND_FROM;
        assert_eq!(room_to_bound(big, big, 10, 5 * big), Some(4 * big));
        // Beyond the bound (the caller fails it) or with room left: nothing more.
        assert_eq!(room_to_bound(big, big, 5 * big, 5 * big), None);
        assert_eq!(room_to_bound(big, 5 * big, 10, 5 * big), None);
        // A 3 MiB line is read with one allocation past the first MiB.
        let text = vec![b'x'; 3 << 20];
        let mut input = io::BufReader::new(io::Cursor::new(text));
        let mut line = Vec::new();
        assert!(read_line_bounded(&mut input, &mut line, 5 << 20).unwrap());
        assert_eq!(line.len(), 3 << 20);
        assert_eq!(line.capacity(), (5 << 20) + 1);
    }
}
