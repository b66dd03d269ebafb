//! Line-oriented text that tables parse (`/etc/hosts`, `/etc/services`,
//! `/etc/protocols`, `resolv.conf`, `iptables-save` output), with bounded work per line.

use std::borrow::Cow;

/// The longest line a parser looks at; a longer one is skipped (and logged).
pub const MAX_LINE: usize = 64 * 1024;

/// The lines of `text` (split at `\n`, invalid UTF-8 replaced). A line longer than
/// [`MAX_LINE`] bytes is skipped with a log line naming `what` (the table reading it).
pub fn text_lines<'a>(text: &'a [u8], what: &'a str) -> impl Iterator<Item = Cow<'a, str>> {
    text.split(|b| *b == b'\n').filter_map(move |line| {
        if line.len() > MAX_LINE {
            log::info!("{what}: skipping a line of {} bytes", line.len());
            return None;
        }
        Some(String::from_utf8_lossy(line))
    })
}

/// A line of the classic `/etc` databases (`services`, `protocols`): its
/// whitespace-separated fields before the first `#`, and the comment parts after it
/// (trimmed, empty ones dropped, joined with ` # `; `None` without any).
pub fn fields_and_comment(line: &str) -> (Vec<&str>, Option<String>) {
    let mut parts = line.split('#');
    let data = parts.next().unwrap_or("");
    let comments: Vec<&str> = parts.map(str::trim).filter(|p| !p.is_empty()).collect();
    (
        data.split_ascii_whitespace().collect(),
        (!comments.is_empty()).then(|| comments.join(" # ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_lines_are_skipped_and_bytes_replaced() {
        let mut text = b"first\n\xffsecond\r\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE + 1));
        text.extend_from_slice(b"\n");
        text.extend(std::iter::repeat_n(b'y', MAX_LINE));
        let lines: Vec<Cow<str>> = text_lines(&text, "test").collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "first");
        assert_eq!(lines[1], "\u{fffd}second\r");
        assert_eq!(lines[2].len(), MAX_LINE);
        assert_eq!(text_lines(b"", "test").count(), 1);
    }

    #[test]
    fn fields_and_comment_parts() {
        assert_eq!(
            fields_and_comment("ssh 22/tcp  # one #  # two "),
            (vec!["ssh", "22/tcp"], Some("one # two".to_owned()))
        );
        assert_eq!(
            fields_and_comment("  tcp\t6 TCP"),
            (vec!["tcp", "6", "TCP"], None)
        );
        assert_eq!(fields_and_comment("# only a comment").0, Vec::<&str>::new());
        assert_eq!(fields_and_comment(""), (vec![], None));
    }
}
