//! Config sources of the filesystem plugin: which files, how their text is cleaned up,
//! the size and nesting limits, and the SHA1 of each.

use super::ConfigError;
use super::duplicates::duplicate_keys;
use serde_json::Value as Json;
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Largest source text accepted once comments are stripped (osquery parses iteratively
/// and caps the input so a hostile source cannot exhaust memory).
pub const MAX_CONFIG_SIZE: usize = 4 * 1024 * 1024;

/// Largest config or pack file read (osquery reads them bounded by `--read_max`, whose
/// default this is); comments count here, [`MAX_CONFIG_SIZE`] applies after stripping.
pub const MAX_SOURCE_FILE_SIZE: u64 = 50 * 1024 * 1024;

/// Deepest nesting accepted, counting the root object as level 1 and scalars as a level.
pub const MAX_CONFIG_DEPTH: usize = 32;

/// One config source as read: its name (the file path) and its raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The key osquery uses for the source: the file's path as given.
    pub name: String,
    /// The file's content, unmodified (what `--config_dump` prints).
    pub content: String,
    /// Lower-case hex SHA1 of `content`.
    pub sha1: String,
}

impl Source {
    /// A source from text (also used for sources that do not come from files).
    pub fn new(name: impl Into<String>, content: impl Into<String>) -> Source {
        let content = content.into();
        Source {
            name: name.into(),
            sha1: sha1_hex(content.as_bytes()),
            content,
        }
    }
}

/// Lower-case hex SHA1 of `bytes`.
pub fn sha1_hex(bytes: &[u8]) -> String {
    let digest = Sha1::digest(bytes);
    let mut out = String::with_capacity(40);
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Reads the filesystem plugin's sources: `<config_path>` and every regular file matching
/// `<config_path>.d/*.conf`. Returned in name order, which is the order osquery applies
/// them in (its sources live in a sorted map), so the main file comes before its `.d`
/// files. A missing main file, or one that is not a regular file, is an error; an unreadable `.d` file is skipped with a
/// warning, as osquery does.
pub fn read_sources(config_path: &Path) -> Result<Vec<Source>, ConfigError> {
    let main = config_path.to_string_lossy().into_owned();
    let text = read_text(config_path)?;
    let mut sources = BTreeMap::new();
    let pattern = format!("{main}.d/%.conf");
    for path in glob_files(&pattern) {
        match read_text(&path) {
            Ok(text) => {
                let name = path.to_string_lossy().into_owned();
                sources.insert(name.clone(), Source::new(name, text));
            }
            Err(e) => log::warn!("Skipping config source {}: {e}", path.display()),
        }
    }
    sources.insert(main.clone(), Source::new(main, text));
    Ok(sources.into_values().collect())
}

/// Regular files matching an osquery path pattern (`%` or `*` wildcards), sorted.
pub(crate) fn glob_files(pattern: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let glob = oxquery_sys::pattern::like_to_glob(pattern);
    let _ = oxquery_sys::pattern::glob(&glob, |p| {
        // glob(3) marks directories with a trailing '/'.
        if !p.as_os_str().to_string_lossy().ends_with('/') && p.is_file() {
            found.push(p.to_path_buf());
        }
        ControlFlow::Continue(())
    });
    found.sort();
    found
}

/// Reads a config or pack file as UTF-8 text; errors name the file. Nothing at `path`
/// is [`ConfigError::Missing`]. The file is opened without blocking and only a regular
/// file is read, so a FIFO, a device or a directory is reported as what it is ("is a
/// directory", "not a regular file: a FIFO") and can never stall the program.
pub(crate) fn read_text(path: &Path) -> Result<String, ConfigError> {
    let shown = || path.to_string_lossy().into_owned();
    let policy = oxquery_sys::safe_read::Policy::user_file(MAX_SOURCE_FILE_SIZE);
    let bytes =
        oxquery_sys::safe_read::read_bounded(path, &policy).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ConfigError::Missing(shown()),
            std::io::ErrorKind::FileTooLarge => ConfigError::Read {
                path: shown(),
                message: format!("larger than {MAX_SOURCE_FILE_SIZE} bytes"),
            },
            _ => ConfigError::Read {
                path: shown(),
                message: e.to_string(),
            },
        })?;
    String::from_utf8(bytes).map_err(|e| ConfigError::Invalid {
        origin: shown(),
        message: format!(
            "not valid UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Joins backslash-newline continuations, then blanks lines whose trimmed text starts
/// with `#` or `//`, as osquery strips them. Line numbers stay true: a comment line
/// becomes an empty line, and each newline a continuation joined is put back as an
/// empty line after the joined one, so a JSON error's line (and a duplicate key's) is the
/// line in the file. Leading whitespace becomes one space per character (columns stay
/// true too) and trailing whitespace goes; JSON strings cannot span lines, so this never
/// changes a value.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut joined = String::new();
    let mut continued = 0usize;
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        // `\` then CRLF or LF continues the line (not on the last line: no newline).
        let body = line.strip_suffix('\r').unwrap_or(line);
        if lines.peek().is_some()
            && let Some(head) = body.strip_suffix('\\')
        {
            joined.push_str(head);
            continued += 1;
            continue;
        }
        joined.push_str(line);
        let content = joined.trim_start();
        if !(content.starts_with('#') || content.starts_with("//")) {
            let indent = joined.len() - content.len();
            out.extend(std::iter::repeat_n(' ', joined[..indent].chars().count()));
            out.push_str(content.trim_end());
        }
        out.push('\n');
        out.extend(std::iter::repeat_n('\n', continued));
        joined.clear();
        continued = 0;
    }
    out
}

/// Strips comments and parses `text` as a config document: at most [`MAX_CONFIG_SIZE`]
/// bytes, at most [`MAX_CONFIG_DEPTH`] levels, with an object at the root. A key given
/// twice in one object is a warning (logged and added to `warnings`) naming both lines;
/// the later value is the one kept.
pub(crate) fn parse_document(
    origin: &str,
    text: &str,
    warnings: &mut Vec<String>,
) -> Result<serde_json::Map<String, Json>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        message,
    };
    let stripped = strip_comments(text);
    // Counted as osquery counts its stripped text, which has neither the indentation nor
    // the blank lines kept here for true line numbers.
    let size: usize = stripped
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty())
        .map(|l| l.len() + 1)
        .sum();
    if size > MAX_CONFIG_SIZE {
        return Err(invalid(format!(
            "the config is {size} bytes after removing comments; the limit is {MAX_CONFIG_SIZE} bytes"
        )));
    }
    // serde_json's own recursion limit (128) bounds the parser's stack before our
    // tighter depth check runs on the parsed value.
    let doc: Json =
        serde_json::from_str(&stripped).map_err(|e| invalid(format!("invalid JSON: {e}")))?;
    let Json::Object(map) = doc else {
        return Err(invalid(format!(
            "the root of the config must be a JSON object, not {}",
            kind(&doc)
        )));
    };
    let depth = 1 + map.values().map(depth).max().unwrap_or(0);
    if depth > MAX_CONFIG_DEPTH {
        return Err(invalid(format!(
            "the config nests {depth} levels deep; at most {MAX_CONFIG_DEPTH} are allowed"
        )));
    }
    for dup in duplicate_keys(&stripped) {
        let message = format!(
            "{origin}: key {} is given twice, at lines {} and {}; only the value at line {} is used",
            dup.path, dup.earlier_line, dup.line, dup.line
        );
        log::warn!("{message}");
        warnings.push(message);
    }
    Ok(map)
}

/// Nesting levels of a value: a scalar is one level, a container one more than its
/// deepest member.
pub(crate) fn depth(value: &Json) -> usize {
    // Iterative so that depth itself cannot overflow the stack.
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, level)) = stack.pop() {
        deepest = deepest.max(level);
        match v {
            Json::Array(items) => stack.extend(items.iter().map(|i| (i, level + 1))),
            Json::Object(map) => stack.extend(map.values().map(|i| (i, level + 1))),
            _ => {}
        }
    }
    deepest
}

/// The JSON type name of a value, for messages.
pub(crate) fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// `--config_dump`'s output: one `{"<source>": <raw content>}` line per source, in source
/// order. The content is printed as is, as osquery does, even if it is not valid JSON.
pub fn dump(sources: &[Source]) -> String {
    let mut out = String::new();
    for source in sources {
        out.push_str(&format!("{{\"{}\": {}}}\n", source.name, source.content));
    }
    out
}

/// The combined config hash (`osquery_info.config_hash`): SHA1 over the concatenated hex
/// digests of the sources in source order.
pub fn combined_hash(sources: &[Source]) -> String {
    let mut all = String::with_capacity(sources.len() * 40);
    for source in sources {
        all.push_str(&source.sha1);
    }
    sha1_hex(all.as_bytes())
}
