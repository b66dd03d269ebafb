//! Text into roff (man(7)): escapes, so descriptions written for `--help` print as
//! written.

/// `text` as roff running text: backslashes escaped, a leading `.` or `'` (a request)
/// defused, and the dashes that start an option (`--name`, `-1`) as `\-` so they print
/// and copy as ASCII hyphen-minus (a plain `-` may become a typographic hyphen).
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' if option_dash(&chars, i) => out.push_str("\\-"),
            _ => out.push(c),
        }
    }
    let mut lines = Vec::new();
    for line in out.split('\n') {
        if line.starts_with('.') || line.starts_with('\'') {
            lines.push(format!("\\&{line}"));
        } else {
            lines.push(line.to_owned());
        }
    }
    lines.join("\n")
}

/// Whether the dash at `i` begins (or continues) an option or a negative number: at the
/// start of a word, or after another such dash.
fn option_dash(chars: &[char], i: usize) -> bool {
    let before = i.checked_sub(1).map(|j| chars[j]);
    let starts_word = before.is_none_or(|b| b.is_whitespace() || "([\"'/|=,".contains(b));
    let after_dash = before == Some('-') && i >= 1 && option_dash(chars, i - 1);
    let next = chars.get(i + 1).copied();
    (starts_word || after_dash) && next.is_some_and(|n| n.is_ascii_alphanumeric() || n == '-')
}

/// A macro argument: [`text`], quoted when it holds spaces (a `"` inside as `\(dq`).
pub fn argument(value: &str) -> String {
    let escaped = text(value).replace('"', "\\(dq");
    if escaped.contains(' ') || escaped.is_empty() {
        format!("\"{escaped}\"")
    } else {
        escaped
    }
}

/// `text` in bold (an option, a command, a file).
pub fn bold(value: &str) -> String {
    format!("\\fB{}\\fR", text(value))
}

/// `text` in italics (a placeholder).
pub fn italic(value: &str) -> String {
    format!("\\fI{}\\fR", text(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_roff_would_read() {
        assert_eq!(text("a\\b"), "a\\eb");
        assert_eq!(text(".schema"), "\\&.schema");
        assert_eq!(text("'quoted"), "\\&'quoted");
        assert_eq!(
            text("see --config_path, comma-separated, -1 loose"),
            "see \\-\\-config_path, comma-separated, \\-1 loose"
        );
        assert_eq!(text("a - b"), "a - b");
        assert_eq!(argument("two words"), "\"two words\"");
        assert_eq!(argument("one"), "one");
    }
}
